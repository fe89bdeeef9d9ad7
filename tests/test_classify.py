"""classify: the rule on synthetic numbers, and the two published networks (skipped without ../shared/reference)."""
import math
from pathlib import Path

import pytest
import torch
from conftest import reference_skip_reason

from transitive.evaluation.classify import Rule, behaviour_verdict, classify, combine, effect_size, modulation_verdict

REFERENCE = Path(__file__).parents[2] / "shared" / "reference"


def _m(d2, d3, step2_means=(-1.4, -2.9)):
    return {"feedback": {"effect_size": d2, "mean_rewarded": step2_means[0], "mean_unrewarded": step2_means[1]},
            "delay": {"effect_size": d3, "mean_rewarded": 0.6, "mean_unrewarded": -3.0}}


def _b(across=0.87, sham=0.5, near=0.55):
    return {"across_list_linking": across, "link_gain": across - sham, "near_link_accuracy": near}



def test_modulation_rule_on_synthetic_numbers():
    assert modulation_verdict(_m(1.6, 5.6))[0] == "active"  # the paper's active network, roughly
    assert modulation_verdict(_m(-2.3, 0.4))[0] == "passive"  # the paper's passive network, roughly
    assert modulation_verdict(_m(0.3, 0.5))[0] == "unclear"  # m(t) does not follow the reward
    assert modulation_verdict(_m(2.0, 2.5))[0] == "unclear"  # both steps alike
    assert modulation_verdict(_m(1.0, 4.0, step2_means=(0.5, -1.0)))[0] == "unclear"  # step 2 changes sign
    assert modulation_verdict(_m(-1.0, -4.0, step2_means=(0.5, 2.0)))[0] == "active"  # sign of m is free
    assert modulation_verdict(_m(float("nan"), 1.0))[0] == "unclear"


def test_behaviour_rule_and_combination_on_synthetic_numbers():
    assert behaviour_verdict(_b(near=0.55))[0] == "active"
    assert behaviour_verdict(_b(across=0.80, near=0.18))[0] == "passive"
    assert behaviour_verdict(_b(near=0.35))[0] == "unclear"  # between the thresholds
    assert behaviour_verdict(_b(across=0.55, sham=0.5, near=0.1))[0] == "unclear"  # no linking at all
    assert behaviour_verdict(_b(near=0.1), Rule(passive_below=0.05, active_from=0.06))[0] == "active"
    assert combine("active", "active") == ("active", "both")
    assert combine("unclear", "passive") == ("passive", "m(t) only")
    assert combine("active", "unclear") == ("active", "behaviour only")
    assert combine("active", "passive") == ("unclear", "indicators disagree")
    assert combine("unclear", "unclear")[0] == "unclear"
    assert combine("active", "active", test_accuracy=0.5)[0] == "unclear"  # not trained
    assert combine("passive", "passive", test_accuracy=0.8) == ("passive", "both")


def test_effect_size():
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 2.0])
    assert effect_size(a, b) == pytest.approx(1.0)
    assert effect_size(b, a) == pytest.approx(-1.0)
    assert math.isnan(effect_size(a, torch.tensor([1.0])))
    assert effect_size(torch.ones(3), torch.zeros(3)) == math.inf


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=reference_skip_reason())
def test_reference_networks(one_thread):
    from transitive.model.io import load_network
    results = {name: classify(load_network(REFERENCE / f"paper_net_{name}.dat"), batch=96, seed=0)
               for name in ("active", "passive")}
    active, passive = results["active"], results["passive"]
    # m(t): decisive already with a small batch
    assert active["modulation"]["verdict"] == "active"
    assert passive["modulation"]["verdict"] == "passive"
    assert abs(active["modulation"]["delay"]["effect_size"]) > 3 * abs(active["modulation"]["feedback"]["effect_size"])
    assert abs(passive["modulation"]["feedback"]["effect_size"]) > 3 * abs(passive["modulation"]["delay"]["effect_size"])
    # behaviour: a few dozen scored trials only, so compare the two networks rather than thresholds
    assert active["behaviour"]["near_link_accuracy"] > passive["behaviour"]["near_link_accuracy"]
    assert active["behaviour"]["across_list_linking"] > active["behaviour"]["across_list_sham"]
    assert active["verdict"] in ("active", "unclear") and passive["verdict"] in ("passive", "unclear")
