"""The `figures` command (every figure as PNG and PDF, key numbers, classification, records) and its errors,
the learning-curve figure, and the key-number table."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_pdf_whole, assert_png_drawn

from transitive import figures as fg
from transitive.figures import panels
from transitive.interface.cli import main
from transitive.model.io import save_network
from transitive.evaluation.keynumbers import markdown
from transitive.model.network import PlasticNetwork
from transitive.evaluation.runs import Runs, Settings, save_records


@pytest.fixture
def net_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "net.dat"
    save_network(PlasticNetwork(), path)
    return path


def assert_written(paths, names, inches=None):
    """PNG and PDF of each name, with content: the PNG decodes to a drawn image of about the figure's size
    (`inches`: name -> the figure's (width, height), where known), the PDF is whole (conftest)."""
    assert sorted(p.name for p in paths) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "pdf"))
    for path in paths:
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG"), path.name
            assert_png_drawn(path, (inches or {}).get(path.stem))
        else:
            assert_pdf_whole(path)


def test_registry_covers_every_figure_of_the_original_and_the_paper_s_extended_data_fig_2():
    original = ["SDE", "SDE_LINKEDLISTS", "SDE_LINKEDLISTS_SHAM", "comp_treichler2003", "treichler", "traces", "zoom",
                "violin", "PCA", "cuecorrs", "cuecorrs_step1", "corrchanges34", "corrchanges34_add23",
                "originalFFcuereps_t18_DEonly", "adaptedFFcuereps_t18_DEonly", "adaptedFFcuereps_t18_allpairs",
                "adaptedwo", "adaptedFFcuereps_t1_DEonly", "psitildetodeltapsi", "decoding", "learning_curve",
                "matrices", "lasttrial_cues", "lasttrial_rnn", "massed", "toymodel"]
    extended_data_fig_2 = {"edfig2a_corrchanges23": "Extended Data Fig. 2a", "edfig2b_corrchanges45": "Extended Data Fig. 2b"}
    assert set(original) | set(extended_data_fig_2) == set(panels.FIGURES)
    assert all(panels.FIGURES[name].paper == paper for name, paper in extended_data_fig_2.items())


def test_learning_curve_figure(tmp_path):
    curve = tmp_path / "net.csv"
    rows = "\n".join(f"{10 * k},{k % 5 - 2},{50 + 5 * (k % 5 - 2)},0.1" for k in range(40))
    curve.write_text("episode,test_reward,percent_correct,loss\n" + rows + "\n")
    runs = Runs(PlasticNetwork(), Settings(batch=20, progress=False), log=None, curves={"run": curve})
    assert_written(panels.make_figures(runs, tmp_path / "out", ["learning_curve"]), ["learning_curve"],
                   inches={"learning_curve": (5.0, 3.2)})  # one panel: this log has no modulation columns
    runs.curves = {}
    assert panels.make_figures(runs, tmp_path / "none", ["learning_curve"]) == []


def test_learning_curves_show_the_modulation_columns_when_the_log_has_them():
    old = [{"episode": 10.0 * k, "percent_correct": 50.0 + k} for k in range(30)]
    new = [{**row, "modulation_feedback": 1.0, "modulation_delay": 0.1 * k} for k, row in enumerate(old)]
    assert len(fg.plot_learning_curves({"old": old}).axes) == 1
    fig = fg.plot_learning_curves({"a": new, "b": new}, verdicts={"a": "active", "b": "passive"})
    accuracy, modulation = fig.axes
    assert modulation.get_ylabel() == "mean |m(t)|" and len(modulation.lines) == 4 + 2  # 2 runs x 2 steps, legend
    assert accuracy.lines[1].get_color() == "0.6"  # passive runs grey, as in Fig. 1f


def test_markdown_table_flattens_nested_numbers():
    text = markdown({"a": {"b": 0.5, "c": [1.0, 2.0]}, "d": 3})
    assert "| a.b | 0.500 |" in text and "| a.c | 1.000, 2.000 |" in text and "| d | 3 |" in text


def test_figures_use_no_pyplot(tmp_path):
    import inspect
    from transitive.figures import behaviour, common, neuromodulation, representations
    for module in (behaviour, common, neuromodulation, representations):
        assert "pyplot" not in inspect.getsource(module)
    fig = fg.plot_error_by_distance({1: 0.1, 2: 0.2}, {1: 0.3, 2: 0.5})
    assert_written(fg.save_figure(fig, tmp_path, "x"), ["x"], inches={"x": tuple(fig.get_size_inches())})


def test_figures_written_by_worker_processes_are_the_same_files(tmp_path):
    """save_figures with two workers: the PNGs byte for byte as in this process, the paths in the figures'
    order, PNG then PDF."""
    made = {"first": fg.plot_error_by_distance({1: 0.1, 2: 0.2}, {1: 0.3, 2: 0.5}),
            "second": fg.plot_error_by_distance({1: 0.2, 2: 0.4}, {1: 0.1, 2: 0.3})}
    told = []
    here = fg.save_figures(made, tmp_path / "here", workers=1)
    there = fg.save_figures(made, tmp_path / "there", workers=2, log=told.append)
    assert [p.name for p in there] == ["first.png", "first.pdf", "second.png", "second.pdf"]
    assert told == [f"wrote {tmp_path / 'there' / name}.png" for name in made]
    for a, b in zip(here, there):
        assert a.name == b.name
        if a.suffix == ".png":
            assert a.read_bytes() == b.read_bytes()
    assert_written(there, list(made))


def test_records_of_the_original_eval_mode(tmp_path):
    run = Runs(PlasticNetwork(), Settings(batch=20, progress=False), log=None).standard
    outcomes, rates = save_records(run, tmp_path)
    assert outcomes.name == "outcomes_0.npz" and rates.name == "allrates_thisep_0.npy"
    saved = np.load(outcomes)
    assert {"c", "a", "cp", "r", "ac", "m", "rw"} <= set(saved.files)
    assert saved["cp"].shape == (20, 30, 2) and saved["ac"].shape == (20, 30, 4)  # the original's shapes
    assert (saved["ac"].reshape(20, 120) == run.actions.numpy()).all() and saved["m"].shape == (20, 120)
    assert (saved["a"] == (np.abs(saved["cp"][..., 0] - saved["cp"][..., 1]) == 1)).all()
    assert set(np.unique(saved["r"])) <= {-1, 1} and saved["c"].dtype.kind == "i"
    assert np.load(rates).shape == (20, 200, 120)


def test_records_of_list_linking_one_pair_of_files_per_episode(tmp_path):
    """As the original, which saves each of the three episodes; the figures use the last one."""
    run = Runs(PlasticNetwork(), Settings(batch=20, linking_batch=20, progress=False, experiment="linking"),
               log=None).linking
    paths = save_records(run, tmp_path)
    assert [p.name for p in paths] == ["outcomes_0.npz", "allrates_thisep_0.npy", "outcomes_1.npz",
                                       "allrates_thisep_1.npy", "outcomes_2.npz", "allrates_thisep_2.npy"]
    last = np.load(paths[4])
    assert last["cp"].shape == (20, 5, 2) and last["ac"].shape == (20, 5, 4)
    assert (last["cp"][:, :4].min(-1) == 3).all() and np.load(paths[5]).shape == (20, 200, 20)
    assert np.load(paths[1]).shape == (20, 200, 40)  # an earlier episode's rates: run again to get them


# ---------------------------------------------------------------------------------------------------------
# The command line.

def test_figures_command_writes_figures_key_numbers_and_classification(tmp_path, net_file, capsys):
    out = tmp_path / "figs"
    code = main(["figures", str(net_file), "--out", str(out), "--batch", "20", "--only", "fig2,fig3",
                 "--threads", "1", "--classify", "--quiet"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    for name in panels.names_for("standard", groups=["fig2", "fig3"]):
        assert {f"{name}.png", f"{name}.pdf"} <= names
    assert {"key_numbers.json", "key_numbers.md", "classify.txt", "classify.json"} <= names
    numbers = json.loads((out / "key_numbers.json").read_text())
    assert numbers["linking"]["episodes"] == 40 and numbers["standard"]["episodes"] == 20
    assert numbers["settings"] == {"network": net_file.name, "batch": 20, "linking_batch": 40, "seed": 0,
                                   "experiment": "standard"}
    classified = json.loads((out / "classify.json").read_text())
    assert classified["behaviour"]["linking_episodes"] == 40  # the figures' own linking run, not a new one
    assert "PCA.png" not in names
    captured = capsys.readouterr()
    assert "wrote" in captured.out and captured.err == ""  # --quiet: no stage lines


def test_figures_command_experiment_mode(tmp_path, net_file):
    out = tmp_path / "massed"
    assert main(["figures", str(net_file), "--out", str(out), "--batch", "20", "--experiment", "massed",
                 "--massed", "3", "--only", "fig2,fig5", "--records", "--quiet"]) == 0
    assert sorted(p.stem for p in out.glob("*.png")) == ["SDE", "traces", "violin", "zoom"]
    numbers = json.loads((out / "key_numbers.json").read_text())
    assert numbers["massed"]["massed_trials"] == 3 and "standard" not in numbers
    assert "cuecorrs_trial20" in numbers["massed"]  # the massed run is analysed as the standard one
    assert np.load(out / "outcomes_0.npz")["cp"].shape == (20, 33, 2)  # the records of the massed run


@pytest.mark.parametrize("arguments, message", [
    (["missing.dat", "--out", "{tmp}/o"], "not found"),
    (["{net}", "--out", "{tmp}/o", "--batch", "5"], "from 20 to 100,000"),
    (["{net}", "--out", "{net}"], "not a folder"),
    (["{net}", "--out", "{tmp}/o", "--batch", "0"], "from 20 to 100,000"),
    (["{net}", "--out", "{tmp}/o", "--curve", "{tmp}/nope.csv"], "learning-curve file not found"),
    (["{net}"], "--out"),
    (["{net}", "--out", "{tmp}/o", "--only", "fig9"], "unknown figure group"),
    (["{net}", "--out", "{tmp}/o", "--add-barred-pair", "CE"], "two adjacent items"),
    (["{net}", "--out", "{tmp}/o", "--add-barred-pair", "AB"], "next to the barred pair (3, 4)"),
    (["{net}", "--out", "{tmp}/o", "--add-barred-pair", "C"], "expected two different items"),
])
def test_figures_command_errors_are_one_line(tmp_path, capsys, net_file, arguments, message):
    argv = ["figures"] + [a.format(tmp=tmp_path, net=net_file) for a in arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
