"""The numbers behind the paper's figures (SPEC section 8): evaluation runs reduced to what the analyses
need, performance per pair in splits, PCA, neuromodulation statistics, decoding, list-linking comparisons
and the toy model of Supplementary Note 2. Plotting is in `figures`, orchestration in `report`.

Trials, steps and items are 0-based here, as in the SPEC ("trial 18" is the paper's trial 19 or 20
depending on the figure; "step 2" is the paper's step 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .experiments import run_schedules
from .network import PlasticNetwork
from .representations import output_alignment, psi_t1, psi_t2
from .task import LETTERS, REWARD, STEPS_PER_TRIAL, draw_items, linking_schedules, pair_name, pair_order

ITEMS = 8
DE = (3, 4)  # the pair D, E


def pair_labels(nbcues: int = ITEMS) -> list[str]:
    return [pair_name(i, j) for i, j in pair_order(nbcues)]


def pair_distances(nbcues: int = ITEMS) -> np.ndarray:
    return np.array([j - i for i, j in pair_order(nbcues)])


# ---------------------------------------------------------------------------------------------------------
# Evaluation runs, reduced chunk by chunk (the P snapshots never exist for the whole batch at once).

@dataclass
class EvalData:
    """One evaluation episode for a batch, reduced to what the analyses use."""

    items: torch.Tensor  # (batch, K, 15)
    pairs: torch.Tensor  # (batch, ntrials, 2)
    correct: torch.Tensor  # (batch, ntrials) bool
    response: torch.Tensor  # (batch, ntrials) +-1
    modulation: torch.Tensor  # (batch, nsteps) m(t)
    feedback: torch.Tensor  # (batch, nsteps) the reward perceived (input 33): +-1 at step 2 of each trial
    rates: torch.Tensor | None  # (batch, nsteps, n)
    psi1: torch.Tensor  # (batch, K, n) feedforward item representations
    actions: torch.Tensor | None = None  # (batch, nsteps) the action sampled at every step
    alignment: dict = field(default_factory=dict)  # trial -> (batch, 4, K): corr(psi_t2 with P after each step, w_out)
    final_plastic: torch.Tensor | None = None  # (n, n): P at the end of the first episode of the batch

    @property
    def batch(self) -> int:
        return self.pairs.shape[0]

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    def trial_rates(self, trial: int) -> torch.Tensor:
        """(batch, 4, n): the rates of the 4 steps of one trial."""
        return self.rates[:, trial * STEPS_PER_TRIAL:(trial + 1) * STEPS_PER_TRIAL]


def fixed_items(batch: int, nbcues: int = ITEMS) -> torch.Tensor:
    """FIXEDCUES: the same item vectors in every batch element."""
    return draw_items(1, nbcues).expand(batch, -1, -1).clone()


@torch.no_grad()
def run_evaluation(net: PlasticNetwork, pairs: torch.Tensor, items: torch.Tensor | None = None,
                   nbcues: int = ITEMS, chunk: int = 128, alignment_trials=(18, 19), keep_rates: bool = True,
                   reset_plastic_every_trial: bool = False) -> EvalData:
    """Run one episode with the pair schedule `pairs` (batch, ntrials, 2) and reduce it.

    For each trial in `alignment_trials`, the P recorded after each of its 4 steps is turned into the
    alignment corr(psi_t2(X), w_out) of every item, then dropped."""
    batch, ntrials = pairs.shape[:2]
    items = draw_items(batch, nbcues) if items is None else items
    alignment_trials = tuple(t for t in alignment_trials if t < ntrials)
    parts = []
    for begin in range(0, batch, chunk):
        part = slice(begin, min(begin + chunk, batch))
        snapshots = alignment_trials + ((ntrials - 1,) if begin == 0 else ())
        record = run_schedules(net, [pairs[part]], nbcues, items=items[part], chunk=chunk,
                               snapshot_trials=snapshots, reset_plastic_every_trial=reset_plastic_every_trial)[0]
        psi1 = psi_t1(net, items[part]).cpu()
        alignment = {}
        for t in alignment_trials:
            steps = [output_alignment(net, psi_t2(net, psi1.to(net.w.device), record.snapshots[t][:, s].to(net.w.device)))
                     for s in range(STEPS_PER_TRIAL)]
            alignment[t] = torch.stack(steps, 1).cpu()
        parts.append(dict(
            pairs=record.pairs, correct=record.correct, response=record.response,
            modulation=record.modulation, feedback=record.inputs[..., REWARD],
            rates=record.rates if keep_rates else None, psi1=psi1, alignment=alignment, actions=record.actions,
            final_plastic=record.snapshots[ntrials - 1][0, 3].float() if begin == 0 else None))
    cat = (lambda key: torch.cat([p[key] for p in parts]))
    return EvalData(items=items, pairs=cat("pairs"), correct=cat("correct"), response=cat("response"),
                    modulation=cat("modulation"), feedback=cat("feedback"),
                    rates=cat("rates") if keep_rates else None, psi1=cat("psi1"), actions=cat("actions"),
                    alignment={t: torch.cat([p["alignment"][t] for p in parts]) for t in alignment_trials},
                    final_plastic=parts[0]["final_plastic"])


def save_records(data: EvalData, out, episode: int = 0) -> list:
    """The original's EVAL records: outcomes_<episode>.npz with c (correct), a (adjacent pair), cp (ordered
    pair), r (response +-1), ac (actions at every step), plus m (m(t)) and rw (reward perceived), per trial
    or per step; and allrates_thisep_<episode>.npy, the rates as (batch, n, nsteps) float32."""
    from pathlib import Path
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = out / f"outcomes_{episode}.npz"
    np.savez_compressed(outcomes, c=data.correct.numpy(), a=((data.pairs[..., 0] - data.pairs[..., 1]).abs() == 1).numpy(),
                        cp=data.pairs.numpy(), r=data.response.numpy(), ac=data.actions.numpy(),
                        m=data.modulation.numpy(), rw=data.feedback.numpy())
    rates = out / f"allrates_thisep_{episode}.npy"
    np.save(rates, data.rates.transpose(1, 2).float().numpy())
    return [outcomes, rates]


@dataclass
class LinkingData:
    """The scored last trial of list linking or sham: pair (batch, 2) and correctness (batch,)."""

    pairs: torch.Tensor
    correct: torch.Tensor
    sham: bool


@torch.no_grad()
def run_linking(net: PlasticNetwork, batch: int, sham: bool = False, items: torch.Tensor | None = None,
                chunk: int = 128, reset_plastic_every_trial: bool = False) -> LinkingData:
    """List linking (Fig. 3a) or sham (Fig. 3b): three episodes with the state carried over."""
    schedules = linking_schedules(batch, sham=sham)
    items = draw_items(batch, ITEMS) if items is None else items
    pairs, correct = [], []
    for begin in range(0, batch, chunk):
        part = slice(begin, min(begin + chunk, batch))
        last = run_schedules(net, [s[part] for s in schedules], ITEMS, items=items[part], chunk=chunk,
                             reset_plastic_every_trial=reset_plastic_every_trial)[-1]
        pairs.append(last.pairs[:, -1])
        correct.append(last.correct[:, -1])
    return LinkingData(torch.cat(pairs), torch.cat(correct), sham)


# ---------------------------------------------------------------------------------------------------------
# Performance per pair (Figs. 2a, 3a, 3b): 10 splits of the episodes, median and interquartile range.

def pair_accuracy_splits(pairs: torch.Tensor, correct: torch.Tensor, nsplits: int = 10,
                         nbcues: int = ITEMS) -> np.ndarray:
    """(nsplits, npairs): accuracy per unordered pair (paper order) within each split of the episodes.

    pairs (batch, ntrials, 2), correct (batch, ntrials): the trials to score (e.g. the 10 test trials).
    Episodes are split into `nsplits` consecutive groups of batch // nsplits (the rest is dropped); a
    pair never shown in a split gives NaN there."""
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


def accuracy_per_pair(pairs: torch.Tensor, correct: torch.Tensor, nbcues: int = ITEMS) -> dict:
    """Accuracy per unordered pair over all given trials, in the paper's pair order."""
    table = pair_accuracy_splits(pairs, correct, 1, nbcues)[0]
    return dict(zip(pair_labels(nbcues), table.tolist()))


def accuracy_by_distance(pairs: torch.Tensor, correct: torch.Tensor) -> dict:
    distance = (pairs[..., 0] - pairs[..., 1]).abs().flatten()
    ok = correct.flatten().float()
    return {int(d): ok[distance == d].mean().item() for d in range(1, int(distance.max()) + 1)
            if (distance == d).any()}


def end_anchor(by_pair: dict) -> dict:
    """Mean accuracy of the end adjacent pairs (AB, GH) and of the middle ones (CD, DE, EF)."""
    return {"end_pairs_AB_GH": float(np.nanmean([by_pair["AB"], by_pair["GH"]])),
            "middle_pairs_CD_DE_EF": float(np.nanmean([by_pair["CD"], by_pair["DE"], by_pair["EF"]]))}


def linking_across_lists(data: LinkingData) -> float:
    first_list = data.pairs < 4
    across = first_list[:, 0] != first_list[:, 1]
    return data.correct[across].float().mean().item()


# ---------------------------------------------------------------------------------------------------------
# Treichler & Van Tilburg (1996), Table 2: macaque error rates around the linking pair (lists A-E, F-J).

MACAQUE_PAIRS = [["AE", "BE", "CE", "DE"], ["AF", "BF", "CF", "DF"], ["EG", "EH", "EI", "EJ"], ["FG", "FH", "FI", "FJ"]]
MACAQUE_ERRORS = [[.00, .11, .17, .28], [.03, .08, .22, .25], [.58, .44, .31, .17], [.58, .36, .17, .06]]
# The same positions relative to the link for the model's lists A-D, E-H (link D, E).
MODEL_PAIRS = [["AD", "BD", "CD"], ["AE", "BE", "CE"], ["DF", "DG", "DH"], ["EF", "EG", "EH"]]


def treichler_model(data: LinkingData) -> list[list[float]]:
    """Percent correct of the model's pairs corresponding to Treichler's groups (list linking)."""
    by_pair = accuracy_per_pair(data.pairs, data.correct)
    return [[100 * by_pair[p] for p in group] for group in MODEL_PAIRS]


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation (Fig. 5).

def modulation_by_reward(data: EvalData, trial: int = 4) -> dict:
    """m(t) at steps 2 and 3 of `trial`, split by that trial's reward, with Mann-Whitney tests."""
    from scipy.stats import mannwhitneyu
    reward = data.feedback[:, trial * STEPS_PER_TRIAL + 2].numpy()
    result = {}
    for step in (2, 3):
        m = data.modulation[:, trial * STEPS_PER_TRIAL + step].numpy()
        groups = {+1: m[reward > 0], -1: m[reward < 0]}
        p = float(mannwhitneyu(groups[1], groups[-1]).pvalue) if all(g.size for g in groups.values()) else float("nan")
        result[step] = {"values": groups, "p": p}
    return result


def modulation_summary(data: EvalData) -> dict:
    """Over all trials: mean m at steps 2 and 3 for rewarded and unrewarded trials, fraction negative."""
    reward = data.feedback[:, 2::STEPS_PER_TRIAL]
    summary = {}
    for step in (2, 3):
        m = data.modulation[:, step::STEPS_PER_TRIAL]
        summary[f"step{step}"] = {
            "mean_rewarded": m[reward > 0].mean().item() if (reward > 0).any() else float("nan"),
            "mean_unrewarded": m[reward < 0].mean().item() if (reward < 0).any() else float("nan"),
            "fraction_negative": (m < 0).float().mean().item()}
    return summary


# ---------------------------------------------------------------------------------------------------------
# Representations (Figs. 4, 6, 7, 8).

def pca(rates: torch.Tensor, w_out: torch.Tensor, components: int = 2) -> dict:
    """PCA of rates (batch, n). PC1 is oriented to correlate positively with w_out."""
    x = rates.double().numpy()
    centred = x - x.mean(0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    w = w_out.double().numpy()
    axes = vt[:components]
    if np.corrcoef(axes[0], w)[0, 1] < 0:
        axes[0] = -axes[0]
    variance = singular ** 2
    return {"scores": centred @ axes.T, "axes": axes, "explained": variance[:components] / variance.sum(),
            "pc1_wout_corr": float(np.corrcoef(axes[0], w)[0, 1]), "wout_in_pcs": axes @ w / np.linalg.norm(w)}


def shown_at(pairs: torch.Tensor, trial: int, pair=DE, ordered: bool = False) -> torch.Tensor:
    """(batch,) bool: the pair is shown at `trial` (in this order if `ordered`)."""
    shown = pairs[:, trial]
    target = torch.tensor(pair)
    same = (shown == target).all(-1)
    return same if ordered else same | (shown == target.flip(0)).all(-1)


def first_shown_at(pairs: torch.Tensor, trial: int, pair=DE) -> torch.Tensor:
    """(batch,) bool: the pair (either order) is shown at `trial` and in no earlier trial."""
    earlier = torch.zeros(pairs.shape[0], dtype=torch.bool)
    for t in range(trial):
        earlier |= shown_at(pairs, t, pair)
    return shown_at(pairs, trial, pair) & ~earlier


def reinstatement(rates: torch.Tensor, representations: torch.Tensor) -> torch.Tensor:
    """cosine(representation of each item, r at each step): rates (batch, S, n), representations (batch, K, n)
    -> (batch, S, K)."""
    r = rates / rates.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    v = representations / representations.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("bsn,bkn->bsk", r.float(), v.float())


def adjacent_ordered_pairs(nbcues: int = ITEMS) -> list[tuple[int, int]]:
    """AB BA BC CB ... GH HG (Fig. 8's columns)."""
    return [p for k in range(nbcues - 1) for p in ((k, k + 1), (k + 1, k))]


def reinstatement_by_pair(rates_step: torch.Tensor, representations: torch.Tensor, pairs_shown: torch.Tensor,
                          nbcues: int = ITEMS) -> np.ndarray:
    """(K, 14): mean cosine(psi~(X), r) for each ordered adjacent pair shown (NaN if never shown)."""
    cos = reinstatement(rates_step.unsqueeze(1), representations)[:, 0]  # (batch, K)
    table = np.full((representations.shape[1], 2 * (nbcues - 1)), np.nan)
    for c, pair in enumerate(adjacent_ordered_pairs(nbcues)):
        mask = (pairs_shown == torch.tensor(pair)).all(-1)
        if mask.any():
            table[:, c] = cos[mask].mean(0).numpy()
    return table


# ---------------------------------------------------------------------------------------------------------
# Decoding (Supplementary Fig. 5).

DECODING_TARGETS = ("item 1 is A", "item 1 is D", "rank of item 1", "ordered (item 1 > item 2)",
                    "rank difference", "response correct", "response sign")


def decoding_targets(data: EvalData) -> np.ndarray:
    """(batch, ntrials, 7) targets, in the order of DECODING_TARGETS."""
    first, second = data.pairs[..., 0], data.pairs[..., 1]
    return torch.stack([first == 0, first == 3, first, first < second, second - first, data.correct,
                        data.response], -1).double().numpy()


def decoding(data: EvalData, holdout: int = 200, step: int = 1) -> np.ndarray:
    """(ntrials, 7): per trial, least-squares linear regression from r at `step` to each target, fitted on
    all but the last `holdout` episodes; corr(prediction, truth) on those (NaN where truth is constant).
    With fewer than 5 * holdout episodes, the last fifth is held out."""
    holdout = min(holdout, data.batch // 5)
    targets = torch.from_numpy(decoding_targets(data))
    result = np.full((data.ntrials, targets.shape[-1]), np.nan)
    for t in range(data.ntrials):
        x = data.rates[:, t * STEPS_PER_TRIAL + step].double()
        x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)
        # All targets at once; gelsy (QR with pivoting) also handles fewer episodes than neurons.
        coef = torch.linalg.lstsq(x[:-holdout], targets[:-holdout, t], driver="gelsy").solution
        predicted = (x[-holdout:] @ coef).numpy()
        truth = targets[-holdout:, t].numpy()
        for k in range(targets.shape[-1]):
            if truth[:, k].std() > 0 and predicted[:, k].std() > 0:
                result[t, k] = np.corrcoef(predicted[:, k], truth[:, k])[0, 1]
    return result


# ---------------------------------------------------------------------------------------------------------
# Toy model (Supplementary Note 2): values learned from adjacent pairs, with or without reinstatement.

def toy_model(episodes: int = 1000, nbcues: int = ITEMS, trials: int = 20, reinstatement: bool = True,
              errors_only: bool = False, seed: int = 0) -> np.ndarray:
    """(episodes, nbcues) final values. Each trial shows a random adjacent pair (k, k+1); then
    value[k] += 1 and value[k+1] -= 1 (with `errors_only`, only when value[k+1] > value[k]); with
    reinstatement also value[k-1] += 0.5 and value[k+2] -= 0.5 where those items exist."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-1, 1, (episodes, nbcues))
    rows = np.arange(episodes)
    for _ in range(trials):
        k = rng.integers(0, nbcues - 1, episodes)
        update = values[rows, k + 1] > values[rows, k] if errors_only else np.ones(episodes, bool)
        step = update.astype(float)
        values[rows, k] += step
        values[rows, k + 1] -= step
        if reinstatement:
            before, after = k - 1, k + 2
            has_before, has_after = before >= 0, after < nbcues
            values[rows[has_before], before[has_before]] += 0.5 * step[has_before]
            values[rows[has_after], after[has_after]] -= 0.5 * step[has_after]
    return values


def rank_correlation(values: np.ndarray) -> np.ndarray:
    """Per episode, Pearson correlation between the values and the true order (A highest)."""
    order = -np.arange(values.shape[1], dtype=float)
    centred = values - values.mean(1, keepdims=True)
    o = order - order.mean()
    return centred @ o / (np.linalg.norm(centred, axis=1) * np.linalg.norm(o) + 1e-12)


def toy_model_comparison(episodes: int = 1000, seed: int = 0) -> dict:
    """For both update rules (every trial, errors only): final values and rank correlations with and without
    reinstatement, and the Mann-Whitney test between the two."""
    from scipy.stats import mannwhitneyu
    result = {}
    for errors_only in (False, True):
        runs = {flag: toy_model(episodes, reinstatement=flag, errors_only=errors_only, seed=seed)
                for flag in (False, True)}
        corr = {flag: rank_correlation(v) for flag, v in runs.items()}
        result["errors_only" if errors_only else "every_trial"] = {
            "values": runs, "correlation": corr,
            "p": float(mannwhitneyu(corr[True], corr[False]).pvalue)}
    return result


def item_letters(nbcues: int = ITEMS) -> list[str]:
    return list(LETTERS[:nbcues])
