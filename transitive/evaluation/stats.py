"""Behavioural statistics of evaluation runs: accuracy by pair and by symbolic distance, splits with median
and interquartile range (Figs. 2a, 3), list-linking scores, the Treichler comparison, and neuromodulation
split by reward (Fig. 5c).

One function per statistic; every function takes plain tensors (pairs (batch, ntrials, 2), correct
(batch, ntrials) and the like), so any run and any selection of trials can be scored the same way.
Pair names are unordered ("AB" for A,B and B,A); pairs are listed in the paper's order (symbolic distance,
then position).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..model.task import DELAY, FEEDBACK, ITEMS, LETTERS, STEPS_PER_TRIAL, shows
from .choices import check_pair, check_trial



def pair_order(nbcues: int = ITEMS) -> list[tuple[int, int]]:
    """Pairs ordered by symbolic distance, then position: AB BC ... GH AC BD ... AH."""
    return [(i, i + d) for d in range(1, nbcues) for i in range(nbcues - d)]


def pair_name(i: int, j: int) -> str:
    """Unordered pair name, 'AB' for (0, 1) or (1, 0)."""
    a, b = sorted((int(i), int(j)))
    return LETTERS[a] + LETTERS[b]


def pair_labels(nbcues: int = ITEMS) -> list[str]:
    return [pair_name(i, j) for i, j in pair_order(nbcues)]


def pair_distances(nbcues: int = ITEMS) -> np.ndarray:
    return np.array([j - i for i, j in pair_order(nbcues)])


def item_letters(nbcues: int = ITEMS) -> list[str]:
    return list(LETTERS[:nbcues])


# ---------------------------------------------------------------------------------------------------------
# Accuracy per pair and per distance.

def pair_accuracy_splits(pairs: torch.Tensor, correct: torch.Tensor, nsplits: int = 10,
                         nbcues: int = ITEMS) -> np.ndarray:
    """(nsplits, npairs): accuracy per unordered pair (paper order) within each split of the episodes.

    pairs (batch, ntrials, 2) or (batch, 2), correct (batch, ntrials) or (batch,): the trials to score.
    Episodes are split into `nsplits` consecutive groups of batch // nsplits (the rest is dropped); a pair
    never shown in a split gives NaN there."""
    if pairs.dim() == 2:
        pairs, correct = pairs.unsqueeze(1), correct.unsqueeze(1)
    size = pairs.shape[0] // nsplits
    if size < 1:
        raise ValueError(f"need at least {nsplits} episodes for {nsplits} splits, got {pairs.shape[0]}")
    low = pairs.min(-1).values.numpy()
    high = pairs.max(-1).values.numpy()
    ok = correct.float().numpy()
    result = np.full((nsplits, len(pair_order(nbcues))), np.nan)
    for s in range(nsplits):
        rows = slice(s * size, (s + 1) * size)
        for k, (i, j) in enumerate(pair_order(nbcues)):
            mask = (low[rows] == i) & (high[rows] == j)
            if mask.any():
                result[s, k] = ok[rows][mask].mean()
    return result


def median_iqr(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, 25th and 75th percentiles over axis 0, ignoring NaN (all-NaN columns give NaN)."""
    values = np.asarray(values, dtype=float)
    out = np.full((3, values.shape[1]), np.nan)
    for k in range(values.shape[1]):
        column = values[:, k][~np.isnan(values[:, k])]
        if column.size:
            out[:, k] = np.percentile(column, [50, 25, 75])
    return out[0], out[1], out[2]


def accuracy_by_pair(pairs: torch.Tensor, correct: torch.Tensor, nbcues: int = ITEMS) -> dict[str, float]:
    """Accuracy per unordered pair over all the given trials, in the paper's order (NaN: never shown)."""
    table = pair_accuracy_splits(pairs, correct, 1, nbcues)[0]
    return dict(zip(pair_labels(nbcues), table.tolist()))


def accuracy_by_distance(pairs: torch.Tensor, correct: torch.Tensor) -> dict[int, float]:
    """Accuracy per symbolic distance |rank 1 - rank 2|, for the distances that occur."""
    distance = (pairs[..., 0] - pairs[..., 1]).abs().flatten()
    ok = correct.flatten().float()
    return {int(d): ok[distance == d].mean().item() for d in range(1, int(distance.max()) + 1)
            if (distance == d).any()}


def end_anchor(by_pair: dict) -> dict[str, float]:
    """Mean accuracy of the end adjacent pairs (AB, GH) and of the middle ones (CD, DE, EF)."""
    return {"end_pairs_AB_GH": float(np.nanmean([by_pair["AB"], by_pair["GH"]])),
            "middle_pairs_CD_DE_EF": float(np.nanmean([by_pair["CD"], by_pair["DE"], by_pair["EF"]]))}


def pair_medians_and_counts(pairs: torch.Tensor, correct: torch.Tensor, nsplits: int = 10, nbcues: int = ITEMS) -> dict:
    """The numbers behind a performance-per-pair figure (Figs. 2a, 3a, 3b), as the original prints them: per
    pair, the median accuracy over the `nsplits` splits, and the number of trials scored (all splits)."""
    splits = pair_accuracy_splits(pairs, correct, nsplits, nbcues)
    median = median_iqr(splits)[0]
    if pairs.dim() == 2:
        pairs = pairs.unsqueeze(1)
    low, high = pairs.min(-1).values, pairs.max(-1).values
    counts = [int(((low == i) & (high == j)).sum()) for i, j in pair_order(nbcues)]
    return {"median_by_pair": dict(zip(pair_labels(nbcues), median.tolist())),
            "trials_by_pair": dict(zip(pair_labels(nbcues), counts))}


def adjacent_accuracy(pairs: torch.Tensor, correct: torch.Tensor) -> float:
    """Accuracy on the adjacent pairs among the given trials (NaN if none); 'only two last adjacent' prints
    it for its last two trials."""
    adjacent = (pairs[..., 0] - pairs[..., 1]).abs() == 1
    return correct[adjacent].float().mean().item() if adjacent.any() else float("nan")


@dataclass
class Behaviour:
    """Scores of a set of trials (e.g. the 10 test trials of the standard evaluation)."""

    episodes: int
    accuracy: float
    adjacent_accuracy: float
    nonadjacent_accuracy: float
    accuracy_by_distance: dict
    accuracy_by_pair: dict

    def as_dict(self) -> dict:
        return asdict(self)


def behaviour(pairs: torch.Tensor, correct: torch.Tensor, nbcues: int = ITEMS) -> Behaviour:
    if pairs.dim() == 2:
        pairs, correct = pairs.unsqueeze(1), correct.unsqueeze(1)
    adjacent = (pairs[..., 0] - pairs[..., 1]).abs() == 1
    ok = correct.float()
    return Behaviour(episodes=pairs.shape[0], accuracy=ok.mean().item(),
                     adjacent_accuracy=ok[adjacent].mean().item() if adjacent.any() else float("nan"),
                     nonadjacent_accuracy=ok[~adjacent].mean().item() if (~adjacent).any() else float("nan"),
                     accuracy_by_distance=accuracy_by_distance(pairs, correct),
                     accuracy_by_pair=accuracy_by_pair(pairs, correct, nbcues))


# ---------------------------------------------------------------------------------------------------------
# List linking (Fig. 3).

def across_lists(pairs: torch.Tensor, list_size: int = 4) -> torch.Tensor:
    """(batch,) bool: the pair (batch, 2) has one item from each list (A-D and E-H)."""
    first_list = pairs < list_size
    return first_list[..., 0] != first_list[..., 1]


@dataclass
class Linking:
    """Scores of the last (test) trial of list linking or sham."""

    episodes: int
    accuracy: float
    across_list_accuracy: float
    within_list_accuracy: float
    error_by_distance: dict
    accuracy_by_pair: dict

    def as_dict(self) -> dict:
        return asdict(self)


def linking(pairs: torch.Tensor, correct: torch.Tensor) -> Linking:
    """pairs (batch, 2), correct (batch,): the scored trial of each episode."""
    across = across_lists(pairs)
    ok = correct.float()
    return Linking(episodes=pairs.shape[0], accuracy=ok.mean().item(),
                   across_list_accuracy=ok[across].mean().item() if across.any() else float("nan"),
                   within_list_accuracy=ok[~across].mean().item() if (~across).any() else float("nan"),
                   error_by_distance={d: 1 - a for d, a in accuracy_by_distance(pairs, correct).items()},
                   accuracy_by_pair=accuracy_by_pair(pairs, correct))


# Treichler & Van Tilburg (1996), Table 2: macaque error rates around the link (lists A-E and F-J).
MACAQUE_PAIRS = [["AE", "BE", "CE", "DE"], ["AF", "BF", "CF", "DF"], ["EG", "EH", "EI", "EJ"], ["FG", "FH", "FI", "FJ"]]
MACAQUE_ERRORS = [[.00, .11, .17, .28], [.03, .08, .22, .25], [.58, .44, .31, .17], [.58, .36, .17, .06]]
# The same positions relative to the link for the model's lists A-D and E-H (link D,E).
MODEL_PAIRS = [["AD", "BD", "CD"], ["AE", "BE", "CE"], ["DF", "DG", "DH"], ["EF", "EG", "EH"]]


def treichler_model(pairs: torch.Tensor, correct: torch.Tensor, nsplits: int = 10) -> list[list[float]]:
    """% correct of the model's pairs matching Treichler's groups: the median over `nsplits` splits."""
    median = median_iqr(pair_accuracy_splits(pairs, correct, nsplits))[0]
    by_pair = dict(zip(pair_labels(), median.tolist()))
    return [[100 * by_pair[p] for p in group] for group in MODEL_PAIRS]


# ---------------------------------------------------------------------------------------------------------
# Which episodes show a pair when.

def shown_at(pairs: torch.Tensor, trial: int, pair=(3, 4), ordered: bool = False, nbcues: int = ITEMS) -> torch.Tensor:
    """(batch,) bool: `pair` (two of `nbcues` items) is shown at `trial` (0-based; in this order if
    `ordered`). A trial or pair out of range: ChoiceError."""
    trial, pair = check_trial(trial, pairs.shape[1]), check_pair(pair, nbcues)
    shown = pairs[:, trial]
    return (shown == torch.tensor(pair)).all(-1) if ordered else shows(shown, pair)


def first_shown_at(pairs: torch.Tensor, trial: int, pair=(3, 4), add_pair=None, nbcues: int = ITEMS) -> torch.Tensor:
    """(batch,) bool: `pair` (either order) is shown at `trial` (0-based) and in no earlier trial (Fig. 6);
    with `add_pair` (ADDBARREDPAIR, SHOWALLSELECTS off), that pair is shown in no earlier trial either.
    pairs: (batch, ntrials, 2). A trial or pair out of range: ChoiceError."""
    trial, pair = check_trial(trial, pairs.shape[1]), check_pair(pair, nbcues)
    if add_pair is not None:
        add_pair = check_pair(add_pair, nbcues, "added pair")
    selected = shows(pairs[:, trial], pair) & ~shows(pairs[:, :trial], pair).any(1)
    if add_pair is not None:
        selected &= ~shows(pairs[:, :trial], add_pair).any(1)
    return selected


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation (Fig. 5).

def modulation_by_reward(modulation: torch.Tensor, feedback: torch.Tensor, trial: int = 4) -> dict:
    """m(t) at the feedback and delay steps of `trial` (0-based), split by that trial's reward, with a
    Mann-Whitney test. modulation, feedback: (batch, nsteps); feedback is the reward input (+-1 at the
    feedback step). Returns {"feedback": {"values": {+1: ..., -1: ...}, "p": p}, "delay": {...}}."""
    from scipy.stats import mannwhitneyu
    trial = check_trial(trial, modulation.shape[1] // STEPS_PER_TRIAL)
    reward = feedback[:, trial * STEPS_PER_TRIAL + FEEDBACK].numpy()
    result = {}
    for name, step in (("feedback", FEEDBACK), ("delay", DELAY)):
        m = modulation[:, trial * STEPS_PER_TRIAL + step].numpy()
        groups = {+1: m[reward > 0], -1: m[reward < 0]}
        p = float(mannwhitneyu(groups[1], groups[-1]).pvalue) if all(g.size for g in groups.values()) else float("nan")
        result[name] = {"values": groups, "p": p}
    return result


# The sign of m(t) is arbitrary: m(t) with the opposite sign and the plastic coefficients A negated make the same
# network. The paper's active network has m(t) at the delay step above 0 after a reward and below 0 after an
# error (+0.65 vs -3.03); a network whose delay step orders them the other way has the opposite convention.
SIGN_NOTE = "the sign of m(t) is arbitrary (m(t) and A negated make the same network)"


def sign_against_paper(modulation: torch.Tensor, feedback: torch.Tensor) -> str | None:
    """"same" or "opposite": whether m(t) at the delay step is higher after a reward than after an error, as in
    the paper's Fig. 5, or lower; None where the delay step does not depend on the reward (a passive network:
    the difference is under 0.1)."""
    delay = modulation_summary(modulation, feedback)["delay"]
    return sign_from_means(delay["mean_rewarded"], delay["mean_unrewarded"])


def sign_from_means(rewarded: float | None, unrewarded: float | None) -> str | None:
    """`sign_against_paper` from the mean m(t) at the delay step after rewarded and unrewarded responses."""
    if rewarded is None or unrewarded is None or not abs(rewarded - unrewarded) >= 0.1:  # nan: not compared
        return None
    return "same" if rewarded > unrewarded else "opposite"


def modulation_summary(modulation: torch.Tensor, feedback: torch.Tensor) -> dict:
    """Over all trials: mean m(t) at the feedback and delay steps after rewarded and unrewarded responses,
    and the fraction of negative values."""
    reward = feedback[:, FEEDBACK::STEPS_PER_TRIAL]
    summary = {}
    for name, step in (("feedback", FEEDBACK), ("delay", DELAY)):
        m = modulation[:, step::STEPS_PER_TRIAL]
        summary[name] = {
            "mean_rewarded": m[reward > 0].mean().item() if (reward > 0).any() else float("nan"),
            "mean_unrewarded": m[reward < 0].mean().item() if (reward < 0).any() else float("nan"),
            "fraction_negative": (m < 0).float().mean().item()}
    return summary
