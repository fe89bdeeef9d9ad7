"""Analyses of the network's representations (Figs. 4, 6-8, Supplementary Fig. 5) and the toy model of
Supplementary Note 2. Behavioural statistics are in `stats`, the runs they analyse in `runs`, plotting in
`figures`.

Trials, steps and items are 0-based in the code (the paper's trial 19 is trial 18 here).
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.schedules import DE
from ..model.task import DELAY, FEEDBACK, ITEMS, RESPONSE, STEPS_PER_TRIAL, shows
from .choices import check_item, check_pair, check_trial
from .stats import pair_name, shown_at



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


def by_order(run, values, trial: int, pair=DE) -> dict:
    """values (batch, ...) split into the episodes of `run` showing `pair` in its order and reversed at
    `trial` (Fig. 7): {"DE": ..., "ED": ...}, the pair in order first (numpy)."""
    name = pair_name(*pair)
    first, second = (name, name[::-1]) if pair[0] < pair[1] else (name[::-1], name)
    return {first: values[shown_at(run.pairs, trial, pair, ordered=True, nbcues=run.nbcues)].numpy(),
            second: values[shown_at(run.pairs, trial, pair[::-1], ordered=True, nbcues=run.nbcues)].numpy()}


# ---------------------------------------------------------------------------------------------------------
# Fig. 6 (corrchanges34, corrchanges34_add23): episodes where a pair is first shown at a given trial.

def alignment_changes(alignment) -> dict:
    """The numbers of Fig. 6 for the selected episodes. alignment: (episodes, 4, K), corr(psi_t2(X), w_out)
    with P after each step of the trial. Returns episodes; mean and sd (4, K) of the alignment after each
    step; change_feedback and change_delay (K,): mean change of each item's alignment at the feedback step
    (step 3) and the delay step (step 4), with their sd (change_feedback_sd, change_delay_sd)."""
    a = np.asarray(alignment, dtype=float)
    feedback, delay = a[:, 2] - a[:, 1], a[:, 3] - a[:, 2]
    return {"episodes": len(a), "mean": a.mean(0), "sd": a.std(0),
            "change_feedback": feedback.mean(0), "change_feedback_sd": feedback.std(0),
            "change_delay": delay.mean(0), "change_delay_sd": delay.std(0)}


# ---------------------------------------------------------------------------------------------------------
# Reinstatement of an item against the change of its alignment (psitildetodeltapsi).

def reinstatement_vs_change(recoded_cos, alignment, pairs, response, correct, trial: int = 18, item: int = 2,
                            pair=DE) -> dict:
    """Inputs of `figures.plot_reinstatement_vs_change`, for the episodes whose trial `trial` (0-based)
    shows `pair` in either order (not only the first time).

    recoded_cos: (batch, 4, K) cosine(psi~_t1(X), r) at each step of that trial, i.e.
    `reinstatement(run.trial_rates(trial), recoded.v1)`; alignment: (batch, 4, K) corr(psi_t2(X), w_out)
    with P after each step of that trial (`run.alignment[trial]`); pairs (batch, ntrials, 2); response
    (batch, ntrials) +-1; correct (batch, ntrials) bool.

    Returns numpy arrays over the selected episodes: reinstatement (cosine of `item` at the response step),
    change (alignment of `item` after the delay step minus after the feedback step), response and correct
    (of that trial), order (+1 where `pair` is shown in its own order, -1 reversed). A trial, item or pair
    out of range: ChoiceError."""
    nbcues = torch.as_tensor(alignment).shape[-1]
    trial, item = check_trial(trial, pairs.shape[1]), check_item(item, nbcues)
    pair = check_pair(pair, nbcues)
    shown = shows(pairs[:, trial], pair)
    first = pairs[shown, trial, 0]
    a = torch.as_tensor(alignment)[shown]
    return {"reinstatement": torch.as_tensor(recoded_cos)[shown, RESPONSE, item].numpy(),
            "change": (a[:, DELAY, item] - a[:, FEEDBACK, item]).numpy(),
            "response": torch.as_tensor(response)[shown, trial].numpy(),
            "correct": torch.as_tensor(correct)[shown, trial].numpy().astype(bool),
            "order": np.where(first.numpy() == pair[0], 1, -1)}


# ---------------------------------------------------------------------------------------------------------
# Similarity preservation: do the learned representations keep the similarity structure of the items?

def similarity_preservation(psi1, psi2) -> np.ndarray:
    """(batch,): per episode, how much of the items' similarity structure survives from psi1 to psi2.

    psi1, psi2: (batch, K, n), e.g. psi_t1 (feedforward) and psi_t2 with P at the start of trial 20 (the
    representations of Fig. 4b). In each episode, the Pearson correlations between the K items'
    representations form two K x K matrices; their K (K - 1) / 2 entries above the diagonal form two
    vectors, and the value is the Pearson correlation between these vectors (NaN if one is constant)."""
    def similarities(psi):
        x = torch.as_tensor(psi).double()
        x = x - x.mean(-1, keepdim=True)
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        upper = torch.triu_indices(x.shape[1], x.shape[1], 1)
        return (x @ x.transpose(1, 2))[:, upper[0], upper[1]].numpy()
    a, b = similarities(psi1), similarities(psi2)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def similarity_summary(values) -> dict:
    """The numbers the original prints for `similarity_preservation`'s values: mean, sd (population),
    min, median, max, the fraction of episodes above 0, and the number of episodes (NaN ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"episodes": 0, **{k: float("nan") for k in ("mean", "sd", "min", "median", "max", "fraction_positive")}}
    return {"episodes": int(v.size), "mean": float(v.mean()), "sd": float(v.std()), "min": float(v.min()),
            "median": float(np.median(v)), "max": float(v.max()), "fraction_positive": float((v > 0).mean())}


# ---------------------------------------------------------------------------------------------------------
# Decoding (Supplementary Fig. 5).

DECODING_TARGETS = ("item 1 is A", "item 1 is D", "rank of item 1", "ordered (item 1 > item 2)",
                    "rank difference", "response correct", "response sign")


def decoding_targets(data) -> np.ndarray:
    """(batch, ntrials, 7) targets, in the order of DECODING_TARGETS."""
    first, second = data.pairs[..., 0], data.pairs[..., 1]
    return torch.stack([first == 0, first == 3, first, first < second, second - first, data.correct,
                        data.response], -1).double().numpy()


def decoding(data, holdout: int = 200, step: int = 1) -> np.ndarray:
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


def cross_step_decoding(data, trials=(0, 6, 12, 18, 24), item: int = 3, train_step: int = 0, test_step: int = 1,
                        holdout: int = 200) -> dict:
    """The original's cross-step decoding ("curvenn"): per trial, a linear regression from r at `train_step`
    (the stimulus step) to "item 1 is `item`" (D), fitted on all but the last `holdout` episodes, then
    applied to r at `test_step` (the response step) of the held-out episodes; corr(prediction, truth) there
    (NaN where either is constant). Returns {trial (0-based): corr} for the given trials (the original's:
    every 6th trial)."""
    holdout = min(holdout, data.batch // 5)
    result = {}
    for t in trials:
        t = check_trial(t, data.ntrials)
        steps = data.trial_rates(t).double()
        truth = (data.pairs[:, t, 0] == item).double()
        ones = torch.ones(data.batch, 1, dtype=torch.float64)
        train = torch.cat([steps[:-holdout, train_step], ones[:-holdout]], 1)
        coef = torch.linalg.lstsq(train, truth[:-holdout, None], driver="gelsy").solution
        predicted = (torch.cat([steps[-holdout:, test_step], ones[-holdout:]], 1) @ coef)[:, 0].numpy()
        held = truth[-holdout:].numpy()
        ok = predicted.std() > 0 and held.std() > 0
        result[t] = float(np.corrcoef(predicted, held)[0, 1]) if ok else float("nan")
    return result


def weight_correlations(net) -> dict:
    """Correlations the original prints about the weights: between the input weights of item 1 and of item 2
    (the two halves of the stimulus input, flattened), and between the two rows of the output weights."""
    w_in = net.i2h.weight.detach().cpu().double()
    item1, item2 = w_in[:, 0:15].flatten(), w_in[:, 15:30].flatten()
    w_out = net.h2o.weight.detach().cpu().double()
    return {"win_item1_vs_item2": float(np.corrcoef(item1.numpy(), item2.numpy())[0, 1]),
            "wout_row1_vs_row2": float(np.corrcoef(w_out[0].numpy(), w_out[1].numpy())[0, 1])}


def recoded_output_vs_response(rates, v2, response, correct) -> dict:
    """How the recoded output w~_out (v2) shows in r at one step, against that trial's response (+-1) and
    correctness, across episodes (the numbers the original prints before and after fixing v2's sign): the
    correlation of cosine(v2, r) with the response and with correctness, and of corr(v2, r) with the response.
    rates: (batch, n); response, correct: (batch,)."""
    from .item_representations import cosine, pearson
    rates, v2 = rates.double(), v2.double()
    cos, corr = cosine(rates, v2).numpy(), pearson(rates, v2).numpy()
    response, correct = np.asarray(response, float), np.asarray(correct, float)

    def r(a, b):
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return {"cos_vs_response": r(cos, response), "cos_vs_correct": r(cos, correct),
            "corr_vs_response": r(corr, response)}


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
    """Per episode, Pearson correlation between the values and the item index 0..K-1 (as the original:
    np.arange). Item 0 ("A") ranks highest, so a well-ordered set of values gives a correlation near -1."""
    index = np.arange(values.shape[1], dtype=float)
    centred = values - values.mean(1, keepdims=True)
    o = index - index.mean()
    return centred @ o / (np.linalg.norm(centred, axis=1) * np.linalg.norm(o) + 1e-12)


def toy_model_comparison(episodes: int = 1000, seed: int = 0) -> dict:
    """For both update rules (every trial, errors only): final values, their correlations with the item index
    (`rank_correlation`: more negative is better ordered) with and without reinstatement, and the two-sided
    Mann-Whitney test between the two."""
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
