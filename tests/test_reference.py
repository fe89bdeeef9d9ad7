"""The published parameter files load unchanged and evaluate as the original did (docs/method.md, "What the
published networks do"): the numbers behind Figs. 2a and 3 and Extended Data Fig. 1."""
import pytest

from conftest import reference_file
from transitive.evaluation import stats
from transitive.model.io import load_network
from transitive.evaluation.runs import Runs, Settings


def reference_runs(name: str) -> Runs:
    net = load_network(reference_file(f"paper_net_{name}.dat"))
    return Runs(net, Settings(batch=300, linking_batch=1000, chunk=500, progress=False), log=None)


def test_reference_active_network_reproduces_fig2a_and_fig3():
    runs = reference_runs("active")
    assert runs.net.etaet.item() > 1.0  # eta may exceed 1 (1.19 in this file)
    standard = stats.behaviour(runs.standard.test_pairs, runs.standard.test_correct)
    assert 0.87 <= standard.accuracy <= 0.95
    by_distance = standard.accuracy_by_distance
    assert by_distance[1] < by_distance[3] < by_distance[5] <= by_distance[7]  # symbolic distance effect
    assert by_distance[7] > 0.97
    assert stats.end_anchor(standard.accuracy_by_pair)["end_pairs_AB_GH"] > \
        stats.end_anchor(standard.accuracy_by_pair)["middle_pairs_CD_DE_EF"]  # end-anchor effect
    linked = stats.linking(runs.linking.pairs[:, -1], runs.linking.correct[:, -1])
    sham = stats.linking(runs.sham.pairs[:, -1], runs.sham.correct[:, -1])
    assert linked.across_list_accuracy == pytest.approx(0.87, abs=0.05)  # Fig. 3a
    assert sham.across_list_accuracy == pytest.approx(0.52, abs=0.07)  # Fig. 3b


def test_reference_passive_network_reaches_its_accuracy_and_fails_to_link():
    runs = reference_runs("passive")
    assert 0.77 <= runs.standard.test_correct.float().mean().item() <= 0.87
    linked = stats.accuracy_by_pair(runs.linking.pairs[:, -1], runs.linking.correct[:, -1])
    assert (linked["CD"] + linked["EF"] + linked["CF"]) / 3 < 0.35  # Extended Data Fig. 1: far below chance
