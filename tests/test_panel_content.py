"""What the figures show, not only that they are made: for a small evaluation of the shipped active network,
each panel is made through the registry, the numbers it plots are read back from the matplotlib Figure (line
data, fill bands, violin bodies and medians, images, tick labels, titles), and compared with the same
quantities computed here, in plain numpy, from the run's raw records: the pairs shown, the responses, the
reward input R(t), m(t), the rates, the items and the network's weights. Nothing here calls the `stats` or
`analysis` function that the panel uses.

Conventions read from the records, not from the package: a trial has 4 steps (stimulus, response, feedback,
delay; the paper's steps 1-4), so trial t (0-based) is steps 4t..4t+3 and its reward is R(t) at step 4t+2;
item k has rank k (A = 0 is the highest), so item 1 comes first in the order when its index is the lower;
response +1 is action 1 ("choose item 1"). Trials are labelled as the paper does: 0-based trial t is trial t+1.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from transitive.evaluation.runs import Runs, Settings
from transitive.figures import panels
from transitive.model.io import load_network

ROOT = Path(__file__).resolve().parents[1]
LETTERS = "ABCDEFGH"
STEP_TITLES = ("Step 1 (stimulus)", "Step 2 (response)", "Step 3 (feedback)", "Step 4 (delay)")
BATCH = 40  # every ordered adjacent pair occurs at trial 19, both rewards at trial 5 (seed 0)


@pytest.fixture(scope="module")
def runs():
    net = load_network(ROOT / "net_active.dat")
    runs = Runs(net, Settings(batch=BATCH, chunk=BATCH, seed=0, progress=False, recode_steps=20, recode_attempts=1),
                log=None, curves={"active": ROOT / "net_active.csv"})
    return runs


def make(runs, name):
    return panels.FIGURES[name].make(runs)


def numpy_records(run):
    """The raw per-step and per-trial records of a run as numpy arrays."""
    return dict(pairs=run.pairs.numpy(), response=run.response.numpy().astype(float),
                m=run.modulation.numpy().astype(float), R=run.feedback.numpy().astype(float))


def reward(records, trial):
    """(batch,) R(t) at the feedback step (step 3) of a 0-based trial."""
    return records["R"][:, 4 * trial + 2]


def unordered(i, j):
    a, b = sorted((int(i), int(j)))
    return LETTERS[a] + LETTERS[b]


def tick_texts(labels):
    return [t.get_text().replace("\n", "") for t in labels]


def same(a, b, tol=1e-6):
    """Equal arrays, NaN where the other has NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, equal_nan=True)


# ---------------------------------------------------------------------------------------------------------
# The records themselves: the reward follows the response and the order of the pair.

def test_the_records_reward_the_response_that_follows_the_order(runs):
    rec = numpy_records(runs.standard)
    batch, ntrials = rec["pairs"].shape[:2]
    assert (batch, ntrials) == (BATCH, 30) and rec["m"].shape == rec["R"].shape == (BATCH, 120)
    R = rec["R"].reshape(batch, ntrials, 4)
    assert np.all(np.abs(R[:, :, 2]) == 1) and np.all(R[:, :, [0, 1, 3]] == 0)  # +-1 at step 3 only
    right = (rec["response"] > 0) == (rec["pairs"][..., 0] < rec["pairs"][..., 1])
    assert np.array_equal(R[:, :, 2] > 0, right)
    assert np.array_equal(runs.standard.correct.numpy(), right)
    assert 0.7 < right[:, 20:].mean() <= 1  # the active network has learned the order by the test trials


# ---------------------------------------------------------------------------------------------------------
# Figs. 2a, 3a, 3b (SDE, SDE_LINKEDLISTS, SDE_LINKEDLISTS_SHAM): % correct per pair, median and interquartile
# range over 10 splits of the episodes: the test trials 21-30 of the standard run; the last (scored) trial of
# list linking and of sham.

@pytest.mark.parametrize("name, run_name, title, ylabel", [
    ("SDE", "standard", "Single list", "% correct\n(last 10 trials)"),
    ("SDE_LINKEDLISTS", "linking", "Linked", "% correct\n(last trial)"),
    ("SDE_LINKEDLISTS_SHAM", "sham", "Unlinked (sham)", "% correct\n(last trial)")])
def test_performance_per_pair_plots_the_split_medians(runs, name, run_name, title, ylabel):
    run = getattr(runs, run_name)
    rec = numpy_records(run)
    scored = range(20, 30) if run_name == "standard" else [run.ntrials - 1]
    order = [(i, i + d) for d in range(1, 8) for i in range(8 - d)]  # AB BC .. GH AC .. AH
    names = [LETTERS[i] + LETTERS[j] for i, j in order]
    size = run.batch // 10
    splits = np.full((10, len(order)), np.nan)
    for s in range(10):
        hits = {name: [] for name in names}
        for b in range(s * size, (s + 1) * size):
            for t in scored:
                hits[unordered(*rec["pairs"][b, t])].append(reward(rec, t)[b] > 0)
        splits[s] = [np.mean(hits[n]) if hits[n] else np.nan for n in names]
    with warnings.catch_warnings():  # a pair never shown: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        median, low, high = (100 * np.nanpercentile(splits, q, axis=0) for q in (50, 25, 75))
    assert np.isfinite(median).sum() >= 20 and (low[np.isfinite(low)] < 100).any()  # informative

    fig = make(runs, name)
    ax, = fig.axes
    assert ax.get_title() == title and ax.get_ylabel() == ylabel
    assert tick_texts(ax.get_xticklabels()) == names  # the paper's order: by symbolic distance, then position
    where = dict(zip(np.round(ax.get_xticks(), 6), names))
    curves = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(curves) == 7  # one line per symbolic distance
    plotted = {}
    for d, line in enumerate(curves, start=1):
        shown = [where[round(x, 6)] for x in line.get_xdata()]
        assert {ord(n[1]) - ord(n[0]) for n in shown} == {d}
        plotted.update(zip(shown, line.get_ydata()))
    same([plotted[n] for n in names], median)
    # the bands: interquartile range at each pair's position (nothing drawn where no split shows the pair)
    vertices = np.concatenate([p.vertices for c in ax.collections for p in c.get_paths()])
    for x, pair in where.items():
        k = names.index(pair)
        ys = vertices[np.isclose(vertices[:, 0], x), 1]
        if np.isnan(median[k]):
            assert ys.size == 0, pair
        else:
            assert ys.min() == pytest.approx(low[k]) and ys.max() == pytest.approx(high[k]), pair
    chance = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in chance] == ([] if run_name == "standard" else [[50, 50]])
    assert [t.get_text() for t in ax.texts][:7] == [str(d) for d in range(1, 8)]  # the distances below the axis


# ---------------------------------------------------------------------------------------------------------
# Fig. 3c (comp_treichler2003): % error by symbolic distance on the scored trial, linked vs sham.

def test_error_by_symbolic_distance_of_linking_and_sham(runs):
    fig = make(runs, "comp_treichler2003")
    ax, = fig.axes
    assert ax.get_xlabel() == "Symbolic distance" and ax.get_ylabel() == "% error"
    assert list(ax.get_xticks()) == list(range(1, 8))
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"Linked", "Unlinked (sham)"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Unlinked (sham)", "Linked"]
    for label, run in (("Linked", runs.linking), ("Unlinked (sham)", runs.sham)):
        rec = numpy_records(run)
        last = run.ntrials - 1  # the scored trial: the last of the linking episode
        distance = np.abs(rec["pairs"][:, last, 0] - rec["pairs"][:, last, 1])
        wrong = reward(rec, last) < 0
        expected = [100 * wrong[distance == d].mean() if (distance == d).any() else np.nan for d in range(1, 8)]
        assert list(lines[label].get_xdata()) == list(range(1, 8))
        same(lines[label].get_ydata(), expected)
        assert np.isfinite(expected).sum() >= 4, label


# ---------------------------------------------------------------------------------------------------------
# Supplementary Fig. 5 (decoding): a curve per trial, numbered 1-30.

def test_decoding_curves_per_trial_match_a_least_squares_fit(runs):
    run = runs.standard
    rec = numpy_records(run)
    rates = run.rates.numpy().astype(float)  # (batch, 120 steps, n)
    first, second = rec["pairs"][..., 0].astype(float), rec["pairs"][..., 1].astype(float)
    right = np.stack([reward(rec, t) > 0 for t in range(30)], 1).astype(float)
    targets = {"item 1 is A": first == 0, "item 1 is D": first == 3, "rank of item 1": first,
               "ordered (item 1 > item 2)": first < second, "rank difference": second - first,
               "response correct": right, "response sign": rec["response"]}
    held = BATCH // 5  # fewer than 1000 episodes: the last fifth is held out
    expected = {}
    for name, truth in targets.items():
        truth = np.asarray(truth, float)
        curve = []
        for t in range(30):
            x = np.column_stack([rates[:, 4 * t + 1], np.ones(BATCH)])  # r at step 2 (response), and a constant
            coef = np.linalg.lstsq(x[:-held], truth[:-held, t], rcond=None)[0]
            guess, true = x[-held:] @ coef, truth[-held:, t]
            ok = guess.std() > 0 and true.std() > 0
            curve.append(np.corrcoef(guess, true)[0, 1] if ok else np.nan)
        expected[name] = np.array(curve)

    fig = make(runs, "decoding")
    ax, = fig.axes
    assert ax.get_xlabel() == "Trial"
    curves = [line for line in ax.lines if line.get_label() in targets]
    assert [line.get_label() for line in curves] == list(targets)
    for line in curves:
        assert list(line.get_xdata()) == list(range(1, 31)), line.get_label()  # trials 1-30
        same(line.get_ydata(), expected[line.get_label()], tol=1e-5)
    assert sum(np.isfinite(e).sum() for e in expected.values()) > 100
    dashed, = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert list(dashed.get_xdata()) == [20.5, 20.5]  # between the last learning trial (20) and the first test trial


# ---------------------------------------------------------------------------------------------------------
# Fig. 5: neuromodulation m(t) and reward R(t).

def test_traces_show_m_and_r_of_the_first_four_episodes(runs):
    rec = numpy_records(runs.standard)
    fig = make(runs, "traces")
    assert len(fig.axes) == 4
    x = 1 + np.arange(120) / 4  # trial k spans [k, k + 1) in the paper's numbering
    for episode, ax in enumerate(fig.axes):
        m, R = ax.lines[0], ax.lines[1]
        assert (m.get_label(), R.get_label()) == ("m(t)", "R(t)")
        same(m.get_xdata(), x)
        assert list(m.get_xdata()[::4]) == list(range(1, 31))  # each trial's stimulus step at its number
        expected = rec["m"][episode].reshape(30, 4).copy()
        expected[:, :2] = 0  # steps 1-2: blank (r and the trace are reset, m(t) cannot change P there)
        same(m.get_ydata(), expected.reshape(-1))
        same(R.get_ydata(), rec["R"][episode])
        assert list(ax.get_xticks()) == [1, 10, 20, 30] and ax.get_xlim() == (1, 31)
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "Trial", "Trial"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["m(t), R(t)", "", "m(t), R(t)", ""]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["m(t): neuromodulation", "R(t): reward perceived"]
    assert fig.axes[0].get_title() == "Neuromodulation and reward"


def test_zoom_shows_the_caption_s_trials_4_to_8_of_the_second_episode(runs):
    rec = numpy_records(runs.standard)
    fig = make(runs, "zoom")
    ax, twin = fig.axes
    steps = np.arange(16, 33)  # trials 5-8 (0-based 4-7) and the first step of trial 9
    m = rec["m"][1].copy()
    m[(np.arange(120) % 4) < 2] = 0
    trace, at_feedback, at_delay = ax.lines[:3]
    same(trace.get_xdata(), 1 + steps / 4)
    same(trace.get_ydata(), m[steps])
    same(at_feedback.get_xdata(), [5.5, 6.5, 7.5, 8.5])
    same(at_feedback.get_ydata(), rec["m"][1, [4 * t + 2 for t in range(4, 8)]])
    same(at_delay.get_xdata(), [5.75, 6.75, 7.75, 8.75])
    same(at_delay.get_ydata(), rec["m"][1, [4 * t + 3 for t in range(4, 8)]])
    assert [at_feedback.get_label(), at_delay.get_label()] == ["Step 3 (feedback)", "Step 4 (delay)"]
    assert list(ax.get_xticks()) == [5, 6, 7, 8, 9]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "5", "6", "7", "8"]  # the caption's "trials 4-8"
    assert (ax.get_xlabel(), ax.get_ylabel(), twin.get_ylabel()) == ("Trial (counted from 0, as the caption)", "m(t)",
                                                                     "R(t)")
    same(twin.lines[0].get_ydata(), rec["R"][1, steps])


def test_violin_splits_m_at_trial_5_by_its_reward(runs):
    from scipy.stats import mannwhitneyu
    rec = numpy_records(runs.standard)
    trial = 4  # the paper's trial 5
    rewarded = reward(rec, trial) > 0
    assert 0 < rewarded.sum() < BATCH
    fig = make(runs, "violin")
    assert fig.axes[0].get_ylabel() == "m(t), trial 5"
    for ax, step, title in zip(fig.axes, (2, 3), STEP_TITLES[2:]):
        m = rec["m"][:, 4 * trial + step]
        groups = (m[~rewarded], m[rewarded])  # x = 0: Rew-, x = 1: Rew+
        assert tick_texts(ax.get_xticklabels()) == ["Rew-", "Rew+"]
        p = mannwhitneyu(groups[1], groups[0]).pvalue
        assert ax.get_title() == f"{title}\np = {p:.1e}"
        *bodies, medians = ax.collections
        assert len(bodies) == 2
        for x, (body, group) in enumerate(zip(bodies, groups)):
            xs, ys = body.get_paths()[0].vertices.T
            assert (xs.min() + xs.max()) / 2 == pytest.approx(x)
            assert xs.max() - xs.min() == pytest.approx(len(group) / BATCH)  # width: the share of episodes
            assert ys.min() == pytest.approx(group.min()) and ys.max() == pytest.approx(group.max())
        same([s[0, 1] for s in medians.get_segments()], [np.median(g) for g in groups])
        same([s[:, 0].mean() for s in medians.get_segments()], [0, 1])


# ---------------------------------------------------------------------------------------------------------
# Representations.

def test_feedforward_alignment_of_each_item_from_the_weights(runs):
    """Fig. 4b (cuecorrs_step1): corr(psi_t1(X), w_out) per item, mean and s.d. over episodes, with psi_t1
    computed here from the items and the input weights: item X alone as item 1 (inputs 0-14), the bias
    input (31) on, one step from r = 0."""
    net = runs.net
    w_in, b_in = net.i2h.weight.detach().double().numpy(), net.i2h.bias.detach().double().numpy()
    w_out = (net.h2o.weight[1] - net.h2o.weight[0]).detach().double().numpy()  # the direction favouring action 1
    items = runs.standard.items.numpy().astype(float)  # (batch, 8, 15)
    psi = np.tanh(items @ w_in[:, 0:15].T + w_in[:, 31] + b_in)  # (batch, 8, n)
    a = psi - psi.mean(-1, keepdims=True)
    w = w_out - w_out.mean()
    corr = (a @ w) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(w))  # (batch, 8)

    fig = make(runs, "cuecorrs_step1")
    ax, = fig.axes
    assert ax.get_title() == "Feedforward representation" and ax.get_xlabel() == "Single item (X)"
    assert tick_texts(ax.get_xticklabels()) == list(LETTERS)
    line = ax.lines[0]
    same(line.get_xdata(), range(8))
    same(line.get_ydata(), corr.mean(0), tol=1e-5)
    bars = ax.collections[0].get_segments()  # the error bars: mean -+ s.d.
    same([s[:, 1].min() for s in bars], corr.mean(0) - corr.std(0), tol=1e-5)
    same([s[:, 1].max() for s in bars], corr.mean(0) + corr.std(0), tol=1e-5)


def test_reinstatement_heatmap_per_ordered_pair_at_trial_19(runs):
    """Fig. 8 (adaptedFFcuereps_t18_allpairs): mean cos(psi~_t1(X), r) at step 2 of trial 19 over the episodes
    showing each ordered adjacent pair then; psi~_t1 = the recoded representations (the run's fit)."""
    run = runs.standard
    rec = numpy_records(run)
    trial = 18  # the 19th trial, "trial 20" in the paper's caption
    r = run.rates.numpy().astype(float)[:, 4 * trial + 1]  # (batch, n)
    v1 = runs.recoded.v1.detach().numpy().astype(float)  # (batch, 8, n)
    cos = np.einsum("bkn,bn->bk", v1, r) / (np.linalg.norm(v1, axis=-1) * np.linalg.norm(r, axis=-1)[:, None])
    columns = [p for k in range(7) for p in ((k, k + 1), (k + 1, k))]  # AB BA BC CB .. GH HG
    expected = np.full((8, 14), np.nan)
    for c, pair in enumerate(columns):
        shown = (rec["pairs"][:, trial, 0] == pair[0]) & (rec["pairs"][:, trial, 1] == pair[1])
        if shown.any():
            expected[:, c] = cos[shown].mean(0)
    assert np.isfinite(expected).all()  # every ordered adjacent pair shown at trial 19 in this batch

    fig = make(runs, "adaptedFFcuereps_t18_allpairs")
    ax = fig.axes[0]
    image, = ax.images
    same(np.ma.filled(image.get_array(), np.nan), expected, tol=1e-5)
    limit = np.abs(expected).max()
    assert image.get_clim() == pytest.approx((-limit, limit), rel=1e-5)  # colours symmetric around 0
    assert tick_texts(ax.get_xticklabels()) == [LETTERS[i] + LETTERS[j] for i, j in columns]
    assert tick_texts(ax.get_yticklabels()) == [f"$\\tilde\\psi_{{t1}}$({x})" for x in LETTERS]
    assert ax.get_xlabel() == "Pair shown"
    # titled as the paper's caption numbers this trial ("trial 20"), the code's 0-based trial 18
    assert ax.get_title().startswith("Recoded stimulus representations, response step of trial 20 (40 episodes)")


def test_last_trial_rates_of_the_first_episode(runs):
    run = runs.standard
    rec = numpy_records(run)
    fig = make(runs, "lasttrial_rnn")
    ax = fig.axes[0]
    image, = ax.images
    same(image.get_array(), run.rates.numpy()[0, 116:120].T)  # trial 30's 4 steps; neurons down, steps across
    assert tick_texts(ax.get_xticklabels()) == ["1 stimulus", "2 response", "3 feedback", "4 delay"]
    i, j = rec["pairs"][0, 29]
    assert ax.get_title() == f"Rates in the last trial\n(items {LETTERS[i]}, {LETTERS[j]})"


# ---------------------------------------------------------------------------------------------------------
# Fig. 1f (learning_curve): the training log, boxcar-smoothed.

def test_learning_curve_is_the_smoothed_log(runs):
    with open(ROOT / "net_active.csv") as f:
        rows = list(csv.DictReader(f))
    episode = np.array([float(r["episode"]) for r in rows])
    correct = np.array([float(r["percent_correct"]) for r in rows])
    smoothed = np.convolve(correct, np.ones(10) / 10, mode="valid")
    fig = make(runs, "learning_curve")
    ax, = fig.axes  # this log has no modulation columns: one panel
    line = ax.lines[0]
    same(line.get_xdata(), episode[9:])
    same(line.get_ydata(), smoothed, tol=1e-9)
    assert ax.get_xlabel() == "Episode" and ax.get_ylabel() == "% correct\n(test trials)"
    assert smoothed[-1] > 90  # the active network ends near the paper's accuracy
