"""Behavioural statistics: pairs, splits, accuracy by pair and distance, list-linking scores, Treichler, m(t)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transitive.evaluation import stats


def test_pair_order_and_labels():
    labels = stats.pair_labels()
    assert labels[:7] == ["AB", "BC", "CD", "DE", "EF", "FG", "GH"]
    assert labels[7:13] == ["AC", "BD", "CE", "DF", "EG", "FH"]
    assert labels[-3:] == ["AG", "BH", "AH"] and len(labels) == 28
    assert list(stats.pair_distances()) == [d for d in range(1, 8) for _ in range(8 - d)]
    assert stats.pair_name(4, 3) == stats.pair_name(3, 4) == "DE"


def test_pair_accuracy_splits_per_split_and_pair():
    # 4 episodes, 2 splits; episode e shows AB then BA (either order counts as 'AB') and GH.
    pairs = torch.tensor([[[0, 1], [1, 0], [6, 7]]] * 4)
    correct = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=torch.bool)
    splits = stats.pair_accuracy_splits(pairs, correct, nsplits=2)
    labels = stats.pair_labels()
    ab, gh, cd = labels.index("AB"), labels.index("GH"), labels.index("CD")
    assert splits.shape == (2, 28)
    assert splits[0, ab] == pytest.approx(3 / 4) and splits[1, ab] == pytest.approx(1 / 4)
    assert splits[0, gh] == pytest.approx(1 / 2) and splits[1, gh] == pytest.approx(1.0)
    assert np.isnan(splits[:, cd]).all()
    with pytest.raises(ValueError):
        stats.pair_accuracy_splits(pairs, correct, nsplits=5)


def test_median_iqr_ignores_nan():
    values = np.array([[0.1, np.nan], [0.2, np.nan], [0.3, 1.0], [0.4, np.nan], [0.5, np.nan]])
    median, low, high = stats.median_iqr(values)
    assert median[0] == pytest.approx(0.3) and low[0] == pytest.approx(0.2) and high[0] == pytest.approx(0.4)
    assert median[1] == low[1] == high[1] == 1.0


def test_behaviour_by_hand():
    pairs = torch.tensor([[[0, 1], [2, 0], [7, 5]], [[1, 0], [0, 7], [3, 4]]])
    correct = torch.tensor([[True, False, True], [False, True, True]])
    b = stats.behaviour(pairs, correct)
    assert b.episodes == 2 and b.accuracy == pytest.approx(4 / 6)
    assert b.adjacent_accuracy == pytest.approx(2 / 3)  # AB, BA, DE: right, wrong, right
    assert b.nonadjacent_accuracy == pytest.approx(2 / 3)  # CA, AH, HF
    assert b.accuracy_by_distance == pytest.approx({1: 2 / 3, 2: 1 / 2, 7: 1.0})
    assert b.accuracy_by_pair["AB"] == pytest.approx(0.5) and np.isnan(b.accuracy_by_pair["BC"])
    assert stats.end_anchor(b.accuracy_by_pair) == pytest.approx({"end_pairs_AB_GH": 0.5,
                                                                 "middle_pairs_CD_DE_EF": 1.0})


def test_linking_scores_across_and_within_lists():
    pairs = torch.tensor([[0, 4], [7, 3], [0, 1], [5, 6]])  # across, across, within, within
    correct = torch.tensor([True, False, True, True])
    result = stats.linking(pairs, correct)
    assert result.across_list_accuracy == 0.5 and result.within_list_accuracy == 1.0
    assert result.error_by_distance == pytest.approx({1: 0.0, 4: 0.5})


def test_treichler_model_is_the_median_over_splits_in_percent():
    # 10 episodes (one per split) each showing AD once: 7 right, 3 wrong -> median of 0/1 values = 1 -> 100%
    pairs = torch.tensor([[0, 3]] * 10)
    correct = torch.tensor([True] * 7 + [False] * 3)
    model = stats.treichler_model(pairs, correct)
    assert [len(g) for g in model] == [3, 3, 3, 3]
    assert model[0][0] == 100.0 and np.isnan(model[0][1])
    assert stats.MACAQUE_ERRORS[2][0] == 0.58 and stats.MACAQUE_PAIRS[3][3] == "FJ"


def test_shown_and_first_shown():
    pairs = torch.tensor([[[3, 4], [0, 1], [4, 3]],
                          [[0, 1], [1, 2], [4, 3]],
                          [[0, 1], [1, 2], [3, 4]],
                          [[0, 1], [1, 2], [2, 3]]])
    assert stats.shown_at(pairs, 2).tolist() == [True, True, True, False]
    assert stats.shown_at(pairs, 2, (3, 4), ordered=True).tolist() == [False, False, True, False]
    assert stats.first_shown_at(pairs, 2).tolist() == [False, True, True, False]


def test_modulation_by_reward_splits_on_the_perceived_reward():
    torch.manual_seed(3)
    batch, ntrials = 300, 3
    correct = torch.rand(batch, ntrials) < 0.5
    feedback = torch.zeros(batch, ntrials * 4)
    feedback[:, 2::4] = correct.float() * 2 - 1
    modulation = torch.randn(batch, ntrials * 4)
    modulation[:, 3::4] -= 3 * (~correct).float()  # the delay step depends on the reward
    result = stats.modulation_by_reward(modulation, feedback, trial=1)
    rewarded, unrewarded = result["delay"]["values"][1], result["delay"]["values"][-1]
    assert len(rewarded) == int(correct[:, 1].sum()) and len(rewarded) + len(unrewarded) == batch
    assert unrewarded.mean() < rewarded.mean() - 2 and result["delay"]["p"] < 1e-10
    assert result["feedback"]["p"] > 1e-3
    summary = stats.modulation_summary(modulation, feedback)
    assert summary["delay"]["mean_unrewarded"] < summary["delay"]["mean_rewarded"] - 2
