"""The figure registry: which figures each experiment mode makes (those of the original, and in the standard
mode every figure), from which run, under which file name, and the key numbers."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from transitive.evaluation import keynumbers
from transitive.figures import panels
from transitive.evaluation.choices import ChoiceError
from transitive.model.network import PlasticNetwork
from transitive.evaluation.runs import Runs, Settings

ROOT = Path(__file__).resolve().parents[1]
# What the original notebook makes in each mode (its cells, read one by one).
ORIGINAL = {
    "standard": {"lasttrial_cues", "lasttrial_rnn", "matrices", "traces", "zoom", "violin", "SDE", "decoding", "PCA",
                 "cuecorrs", "cuecorrs_step1", "corrchanges34", "originalFFcuereps_t18_DEonly",
                 "adaptedFFcuereps_t18_DEonly", "adaptedwo", "adaptedFFcuereps_t1_DEonly",
                 "adaptedFFcuereps_t18_allpairs", "psitildetodeltapsi"},
    "linking": {"lasttrial_cues", "lasttrial_rnn", "matrices", "traces", "violin", "SDE_LINKEDLISTS", "treichler",
                "comp_treichler2003"},
    "sham": {"lasttrial_cues", "lasttrial_rnn", "matrices", "traces", "SDE_LINKEDLISTS_SHAM", "treichler",
             "comp_treichler2003"},
    "onlytwolastadj": {"lasttrial_cues", "lasttrial_rnn", "matrices", "traces", "zoom", "violin"},
}
ORIGINAL["massed"] = ORIGINAL["standard"]
MODE_ROWS = {"standard": "standard (default)", "massed": "massed (NBMASSEDTRIALS > 0)",
             "linking": "list linking (LINKEDLISTSEVAL)", "sham": "sham (with LINKINGISSHAM)",
             "onlytwolastadj": "only two last adjacent (ONLYTWOLASTADJ)"}


def tiny_runs(**settings) -> Runs:
    torch.manual_seed(0)
    net = PlasticNetwork()
    runs = Runs(net, Settings(**{"batch": 20, "chunk": 20, "progress": False, "recode_steps": 5,
                                 "recode_attempts": 1, "massed_trials": 3, **settings}), log=None)
    runs.curves = {"active": ROOT / "net_active.csv"}
    return runs


def documented_modes() -> dict:
    """mode -> (what the original makes, what we make): the backquoted names of docs/figures.md's table."""
    text = (ROOT / "docs" / "figures.md").read_text()
    table = {}
    for mode, row in MODE_ROWS.items():
        line = next(line for line in text.splitlines() if line.startswith(f"| {row} |"))
        cells = line.split(" | ")
        table[mode] = tuple(set(re.findall(r"`(\w+)`", cell)) for cell in cells[1:3])
    return table


def test_the_registry_records_the_modes_of_the_original():
    for mode, names in ORIGINAL.items():
        conditional = {"corrchanges34_add23"}  # with SHOWALLSELECTS = False, in the standard and massed modes
        assert {name for name, p in panels.FIGURES.items() if mode in p.original} - conditional == names, mode
        made = set(panels.names_for(mode))
        assert made == (names if mode != "standard" else set(panels.FIGURES) - {"corrchanges34_add23"}), mode
    assert documented_modes() == {mode: (ORIGINAL[mode], set(panels.names_for(mode))) for mode in ORIGINAL}
    assert panels.FIGURES["corrchanges34_add23"].original == ("standard", "massed")
    assert panels.FIGURES["massed"].made_in == "standard only (ours; the original does not make it)"
    assert panels.FIGURES["treichler"].made_in == "linking, sham, standard (ours)"


@pytest.fixture(scope="module")
def standard_made(tmp_path_factory):
    """Every figure of the standard mode (with SHOWALLSELECTS off: also corrchanges34_add23), made once."""
    runs = tiny_runs(add_barred_pair=(2, 3))
    return runs, panels.make_figures(runs, tmp_path_factory.mktemp("standard"), panels.names_for(runs.settings))


@pytest.mark.parametrize("mode", sorted(ORIGINAL))
def test_each_mode_makes_the_files_listed_in_the_docs(mode, tmp_path, standard_made):
    if mode == "standard":
        paths, added = standard_made[1], {"corrchanges34_add23"}
    else:
        runs, added = tiny_runs(experiment=mode), set()
        paths = panels.make_figures(runs, tmp_path, panels.names_for(runs.settings))
    made = {p.stem for p in paths if p.suffix == ".png"}
    assert made == documented_modes()[mode][1] | added
    assert {p.stem for p in paths if p.suffix == ".pdf"} == made


@pytest.mark.parametrize("mode, used", [("massed", ["withheld", "massed", "recoded"]),
                                        ("linking", ["linking", "sham"]), ("sham", ["linking", "sham"]),
                                        ("onlytwolastadj", ["only_two_last_adjacent"])])
def test_experiment_modes_use_their_own_run(mode, used):
    runs = tiny_runs(experiment=mode)
    for name in panels.names_for(mode):
        assert isinstance(panels.FIGURES[name].make(runs), Figure), name
    assert runs.done() == used  # massed: Fig. 6's run is the massed run itself


def test_linking_figures_show_the_linking_episode():
    runs = tiny_runs(experiment="linking")
    traces = panels.FIGURES["traces"].make(runs)
    assert all(ax.get_xlim() == (1, 6) for ax in traces.axes)  # its 5 trials
    violin = panels.FIGURES["violin"].make(runs)
    assert "trial 5" in violin.axes[0].get_ylabel()  # the scored trial of the linking episode
    assert runs.main.final_plastic is not None and runs.main.test_correct.shape == (40, 1)


def test_fixed_items_make_no_sde_and_file_names_follow_the_pairs():
    assert not {"SDE", "SDE_LINKEDLISTS", "SDE_LINKEDLISTS_SHAM"} & set(panels.names_for(Settings(fixed_items=True)))
    settings = Settings(barred_pair=(4, 5), add_barred_pair=(3, 4))
    names = panels.names_for(settings)
    assert [panels.FIGURES[n].file_name(settings) for n in names if n.startswith("corrchanges")] == \
        ["corrchanges45", "corrchanges45_add34"]


def test_massed_trials_are_shaded_in_the_traces():
    runs = tiny_runs(experiment="massed")
    for name in ("traces", "decoding"):
        fig = panels.FIGURES[name].make(runs)
        spans = [p for ax in fig.axes for p in ax.patches + ax.collections
                 if tuple(round(c, 2) for c in p.get_facecolor()[:3]) == (1.0, 0.65, 0.0)]  # orange
        assert spans, name
    assert runs.main.ntrials == 33 and runs.massed is runs.main
    plain = panels.FIGURES["traces"].make(tiny_runs())
    assert not [p for ax in plain.axes for p in ax.patches
                if tuple(round(c, 2) for c in p.get_facecolor()[:3]) == (1.0, 0.65, 0.0)]


def _texts(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig).draw()  # tick labels exist once drawn
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    return " ".join(texts + [fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""])


def _cell_with(p, trial=None, pair=None):
    """The figure function's body (its notebook cell) with `trial = ...` and `pair = ...` lines replaced."""
    lines = inspect.getsource(p.function).splitlines()
    source = "\n".join(lines[next(k for k, line in enumerate(lines) if line.startswith("def ")):])
    if trial is not None:
        source = re.sub(r"^(\s+)trial = .*$", rf"\1trial = {trial}", source, flags=re.M)
    if pair is not None:
        source = re.sub(r"^(\s+)pair = .*$", rf"\1pair = {pair}", source, flags=re.M)
    namespace = dict(vars(panels))
    exec(compile(source, p.name, "exec"), namespace)
    return namespace[p.function.__name__]


def test_every_figure_cell_runs_with_another_trial_and_another_pair():
    """Change the trial or the pair in a figure cell and re-run it: the run computes what the cell asks for
    (rates, item alignments of any trial), and the figure shows that trial and pair."""
    runs = tiny_runs(add_barred_pair=(2, 3))
    with_trial = [p for p in panels.FIGURES.values() if re.search(r"^\s+trial = ", inspect.getsource(p.function), re.M)]
    with_pair = [p for p in panels.FIGURES.values() if re.search(r"^\s+pair = ", inspect.getsource(p.function), re.M)]
    assert len(with_trial) >= 14 and len(with_pair) >= 5
    for p in with_trial:
        fig = _cell_with(p, trial=10)(runs)
        assert isinstance(fig, Figure), p.name
        if not p.name.startswith("lasttrial"):
            assert "11" in _texts(fig), p.name  # trial 11 in the paper's numbering
        with pytest.raises(ChoiceError, match="trial: expected a trial from 0 to 29"):
            _cell_with(p, trial=30)(runs)
    for p in with_pair:
        fig = _cell_with(p, trial=12, pair=(1, 2))(runs)
        assert "BC" in _texts(fig) or "CB" in _texts(fig), p.name
        with pytest.raises(ChoiceError, match="pair: expected two different items from 0 to 7"):
            _cell_with(p, pair=(3, 9))(runs)
    assert {10, 12} <= set(runs.standard.products) and runs.standard.kept_rates is not None


def test_every_standard_figure_and_key_numbers_in_the_papers_numbering(tmp_path, standard_made):
    runs, paths = standard_made
    made = {p.stem for p in paths}
    assert made == set(panels.names_for(runs.settings))
    assert "corrchanges34_add23" in made
    numbers = keynumbers.key_numbers(runs)
    text = json.dumps(numbers)
    assert "step2" not in text and "step3" not in text and "trial18" not in text
    standard = numbers["standard"]
    assert "cuecorrs_trial20" in standard and "violin_trial5" in standard
    assert set(standard["violin_trial5"]) == {"feedback", "delay"}
    assert set(numbers["fig6_first_shown_trial19"]) == {"episodes", "change_at_feedback_step", "change_at_delay_step"}
    # every batch element above batch // 2 withholds both pairs until trial 19, so all of them are selected
    assert numbers["fig6_add_first_shown_trial19"]["episodes"] >= 20 - (20 // 2 + 1)
    assert standard["similarity_preservation_trial20"]["episodes"] == 20
    # the original's printed statistics, in the paper's numbering
    assert list(standard["cross_step_decoding_item1_is_D"]) == ["trial1", "trial7", "trial13", "trial19", "trial25"]
    assert set(standard["sde_splits"]) == {"median_by_pair", "trials_by_pair"}
    assert sum(standard["sde_splits"]["trials_by_pair"].values()) == 20 * 10
    assert 0 <= standard["fraction_negative_m_delay_step_trial19"] <= 1
    assert set(numbers["network"]) == {"win_item1_vs_item2", "wout_row1_vs_row2"}
    assert set(numbers["recoded"]["recoded_output_vs_response"]) == {"trial19_feedback_step", "trial6_feedback_step"}
    assert sum(numbers["linking"]["sde_splits"]["trials_by_pair"].values()) == 40
    written = keynumbers.write_key_numbers(runs, tmp_path)
    assert json.loads(written[0].read_text()) == keynumbers.plain(numbers)  # NaN written as null
    assert "| standard.test_accuracy |" in written[1].read_text()
    for name in keynumbers.PRINTED:  # what the notebook prints under the figures: the same values
        if name != "only_two_last_adjacent":
            assert all(": " in line for line in keynumbers.printed(runs, name).splitlines()), name


def test_only_two_last_adjacent_prints_the_adjacent_accuracy_of_its_last_two_trials():
    runs = tiny_runs(experiment="onlytwolastadj")
    text = keynumbers.printed(runs, "only_two_last_adjacent")
    value = float(text.split(": ")[1])
    last = runs.main.correct[:, -2:].float().mean().item()  # both last trials show adjacent pairs
    assert text.startswith("last_two_trials_adjacent_accuracy: ") and value == pytest.approx(last, abs=1e-3)
    assert keynumbers.key_numbers(runs)["only_two_last_adjacent"]["last_two_trials_adjacent_accuracy"] == \
        pytest.approx(last)
