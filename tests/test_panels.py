"""The figure registry: which figures each experiment makes, from which run, and the key numbers."""
from __future__ import annotations

import json

import pytest
import torch
from matplotlib.figure import Figure

from transitive import keynumbers, panels
from transitive.network import PlasticNetwork
from transitive.runs import Runs, Settings


def tiny_runs(**settings) -> Runs:
    torch.manual_seed(0)
    net = PlasticNetwork()
    return Runs(net, Settings(**{"batch": 20, "chunk": 20, "progress": False, "recode_steps": 5,
                                 "recode_attempts": 1, **settings}), log=None)


def test_each_experiment_makes_the_figures_of_the_original():
    assert panels.names_for("massed") == ["SDE", "traces"]
    assert panels.names_for("linking") == ["SDE_LINKEDLISTS", "treichler", "traces", "violin"]
    assert panels.names_for("sham") == ["SDE_LINKEDLISTS_SHAM", "treichler", "traces", "violin"]
    assert panels.names_for("onlytwolastadj") == ["SDE_ONLYTWOLASTADJ"]
    standard = panels.names_for("standard")
    assert {"SDE", "PCA", "corrchanges34", "psitildetodeltapsi", "massed", "learning_curve"} <= set(standard)
    assert panels.names_for("standard", groups=["fig5"]) == ["traces", "zoom", "violin"]
    assert "corrchanges34_add23" not in standard
    assert "corrchanges34_add23" in panels.names_for(Settings(add_barred_pair=(2, 3)))


@pytest.mark.parametrize("experiment, used", [("massed", ["massed"]), ("linking", ["linking"]),
                                              ("sham", ["sham"])])
def test_experiment_modes_use_their_own_run(experiment, used):
    runs = tiny_runs(experiment=experiment, massed_trials=3)
    for name in panels.names_for(experiment):
        assert isinstance(panels.FIGURES[name].make(runs), Figure), name
    assert runs.done() == used


def test_massed_trials_are_shaded_in_the_traces():
    runs = tiny_runs(experiment="massed", massed_trials=3)
    fig = panels.FIGURES["traces"].make(runs)
    spans = [p for ax in fig.axes for p in ax.patches + ax.collections
             if tuple(round(c, 2) for c in p.get_facecolor()[:3]) == (1.0, 0.65, 0.0)]  # orange
    assert spans
    plain = panels.FIGURES["traces"].make(tiny_runs())
    assert not [p for ax in plain.axes for p in ax.patches
                if tuple(round(c, 2) for c in p.get_facecolor()[:3]) == (1.0, 0.65, 0.0)]


def test_every_standard_figure_and_key_numbers_in_the_papers_numbering(tmp_path):
    runs = tiny_runs(add_barred_pair=(2, 3))
    paths = panels.make_figures(runs, tmp_path, panels.names_for(runs.settings))
    made = {p.stem for p in paths}
    assert made == set(panels.names_for(runs.settings)) - {"learning_curve"}  # no training curve here
    assert "corrchanges34_add23" in made
    numbers = keynumbers.key_numbers(runs)
    text = json.dumps(numbers)
    assert "step2" not in text and "step3" not in text and "trial18" not in text
    assert "cuecorrs_trial20" in numbers["standard"] and "violin_trial5" in numbers["standard"]
    assert set(numbers["standard"]["violin_trial5"]) == {"feedback", "delay"}
    assert set(numbers["fig6_first_shown_trial19"]) == {"episodes", "change_at_feedback_step", "change_at_delay_step"}
    # every batch element above batch // 2 withholds both pairs until trial 19, so all of them are selected
    assert numbers["fig6_add_first_shown_trial19"]["episodes"] >= 20 - (20 // 2 + 1)
    assert numbers["standard"]["similarity_preservation_trial20"]["episodes"] == 20
    written = keynumbers.write_key_numbers(runs, tmp_path)
    assert json.loads(written[0].read_text()) == json.loads(json.dumps(numbers))
    assert "| standard.test_accuracy |" in written[1].read_text()
