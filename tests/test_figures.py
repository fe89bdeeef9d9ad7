"""Every figure is written as a non-empty PNG and PDF; the `figures` command and its errors."""
from __future__ import annotations

import json

import pytest
import torch

from transitive import figures as fg
from transitive.cli import main
from transitive.io import save_network
from transitive.network import PlasticNetwork
from transitive.report import GROUPS, Evaluation, Options, key_numbers_markdown



@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """A freshly initialised network, 20 episodes (40 for linking), a short recoded fit: the data are computed
    once, on first use, and shared by the tests below."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("figures")
    options = Options(batch=20, recode_steps=20, recode_attempts=1, massed_trials=3, chunk=16)
    return Evaluation(PlasticNetwork(), out, options, log=None)


def assert_written(paths, names):
    assert sorted(p.name for p in paths) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "pdf"))
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000
        assert data.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")


FIGURES = sorted({name for group, names in GROUPS.items() if group != "curve" for name in names})


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_written(evaluation, name):
    assert_written(evaluation.figure(name), [name])


def test_groups_cover_every_figure_of_the_spec():
    spec = ["SDE", "SDE_LINKEDLISTS", "SDE_LINKEDLISTS_SHAM", "comp_treichler2003", "treichler", "traces", "zoom",
            "violin", "PCA", "cuecorrs", "cuecorrs_step1", "corrchanges34", "originalFFcuereps_t18_DEonly",
            "adaptedFFcuereps_t18_DEonly", "adaptedFFcuereps_t18_allpairs", "adaptedwo", "adaptedFFcuereps_t1_DEonly",
            "psitildetodeltapsi", "decoding", "learning_curve", "matrices", "lasttrial_cues", "lasttrial_rnn"]
    assert set(spec) <= set(FIGURES) | {"learning_curve"}
    assert {"massed", "toymodel"} <= set(FIGURES)


def test_evaluation_group_runs_its_figures(evaluation):
    assert_written(evaluation.group("fig3"), GROUPS["fig3"])
    assert evaluation.linking.pairs.shape == (40, 2)
    with pytest.raises(ValueError, match="unknown figure group"):
        evaluation.group("fig9")


def test_learning_curve_figure(tmp_path, evaluation):
    curve = tmp_path / "net.csv"
    rows = "\n".join(f"{10 * k},{k % 5 - 2},{50 + 5 * (k % 5 - 2)},0.1" for k in range(40))
    curve.write_text("episode,test_reward,percent_correct,loss\n" + rows + "\n")
    ev = Evaluation(evaluation.net, tmp_path / "out", Options(batch=20, curves={"run": curve}), log=None)
    assert_written(ev.group("curve"), ["learning_curve"])
    assert Evaluation(evaluation.net, tmp_path / "none", Options(batch=20), log=None).group("curve") == []


def test_key_numbers_cover_what_was_run(evaluation):
    evaluation.group("fig2")
    json_path, md_path = evaluation.write_key_numbers()
    numbers = json.loads(json_path.read_text())
    assert numbers["standard"]["episodes"] == 20
    assert 0 <= numbers["standard"]["test_accuracy"] <= 1
    assert set(numbers["standard"]["accuracy_by_pair"]) >= {"AB", "AH"}
    assert "| standard.test_accuracy |" in md_path.read_text()


def test_markdown_table_flattens_nested_numbers():
    text = key_numbers_markdown({"a": {"b": 0.5, "c": [1.0, 2.0]}, "d": 3})
    assert "| a.b | 0.500 |" in text and "| a.c | 1.000, 2.000 |" in text and "| d | 3 |" in text


def test_figures_use_no_pyplot(tmp_path):
    import inspect
    assert "matplotlib.pyplot" not in inspect.getsource(fg) and "import pyplot" not in inspect.getsource(fg)
    fig = fg.plot_error_by_distance({1: 0.1, 2: 0.2}, {1: 0.3, 2: 0.5})
    assert fig.axes[0].get_ylabel() == "% incorrect"
    assert_written(fg.save_figure(fig, tmp_path, "x"), ["x"])


# ---------------------------------------------------------------------------------------------------------
# The command line.

def test_figures_command_writes_figures_and_key_numbers(tmp_path, capsys):
    torch.manual_seed(0)
    net_file = tmp_path / "net.dat"
    save_network(PlasticNetwork(), net_file)
    out = tmp_path / "figs"
    code = main(["figures", str(net_file), "--out", str(out), "--batch", "20", "--only", "fig2,fig3",
                 "--threads", "1"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    for name in GROUPS["fig2"] + GROUPS["fig3"]:
        assert {f"{name}.png", f"{name}.pdf"} <= names
    assert {"key_numbers.json", "key_numbers.md"} <= names
    numbers = json.loads((out / "key_numbers.json").read_text())
    assert numbers["linking"]["episodes"] == 40 and numbers["standard"]["episodes"] == 20
    assert "PCA.png" not in names
    assert "wrote" in capsys.readouterr().out


def test_figures_command_default_groups(monkeypatch, tmp_path):
    """Without --only: every standard-evaluation group, massed with --massed, the curve beside FILE."""
    import transitive.report as report
    seen = {}
    monkeypatch.setattr(report.Evaluation, "make_all", lambda self, groups: seen.update(
        groups=groups, options=self.options) or [])
    net_file = tmp_path / "net.dat"
    save_network(PlasticNetwork(), net_file)
    (tmp_path / "net.csv").write_text("episode,test_reward,percent_correct,loss\n0,0,50,0\n")
    assert main(["figures", str(net_file), "--out", str(tmp_path / "o"), "--massed", "7"]) == 0
    assert seen["groups"] == report.STANDARD_GROUPS + ["massed"]
    assert seen["options"].massed_trials == 7 and seen["options"].batch == 2000
    assert list(seen["options"].curves.values()) == [net_file.with_suffix(".csv")]


@pytest.mark.parametrize("arguments, message", [
    (["missing.dat", "--out", "{tmp}/o"], "not found"),
    (["{net}", "--out", "{tmp}/o", "--batch", "5"], "at least 20"),
    (["{net}", "--out", "{net}"], "not a folder"),
    (["{net}", "--out", "{tmp}/o", "--batch", "0"], "positive"),
    (["{net}", "--out", "{tmp}/o", "--curve", "{tmp}/nope.csv"], "learning-curve file not found"),
    (["{net}"], "--out"),
    (["{net}", "--out", "{tmp}/o", "--only", "fig9"], "unknown figure group"),
])
def test_figures_command_errors_are_one_line(tmp_path, capsys, arguments, message):
    net_file = tmp_path / "net.dat"
    save_network(PlasticNetwork(), net_file)
    argv = ["figures"] + [a.format(tmp=tmp_path, net=net_file) for a in arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_switch_options_change_the_runs(tmp_path):
    """HALFNOBARREDPAIRUNTILT18: the standard run is the withheld-pair one (and feeds Fig. 6);
    FIXEDCUES: the same items in every episode."""
    torch.manual_seed(1)
    ev = Evaluation(PlasticNetwork(), tmp_path, Options(batch=20, withhold_in_standard=True, fixed_items=True),
                    log=None)
    assert ev.withheld is ev.standard
    pairs = ev.standard.pairs
    first_half = pairs[:10, :18]
    assert not ((first_half.min(-1).values == 3) & (first_half.max(-1).values == 4)).any()
    assert (pairs[:10, 18].sort(-1).values == torch.tensor([3, 4])).all()
    assert torch.equal(ev.standard.items, ev.standard.items[:1].expand_as(ev.standard.items))
    assert_written(ev.figure("corrchanges34"), ["corrchanges34"])


def test_records_of_the_original_eval_mode(evaluation):
    import numpy as np
    outcomes, rates = evaluation.save_records()
    assert outcomes.name == "outcomes_0.npz" and rates.name == "allrates_thisep_0.npy"
    saved = np.load(outcomes)
    assert {"c", "a", "cp", "r", "ac", "m", "rw"} <= set(saved.files)
    assert saved["cp"].shape == (20, 30, 2) and saved["ac"].shape == (20, 120)
    assert (saved["a"] == (np.abs(saved["cp"][..., 0] - saved["cp"][..., 1]) == 1)).all()
    assert set(np.unique(saved["r"])) <= {-1, 1}
    assert np.load(rates).shape == (20, 200, 120)
