"""Plotting the paper's panels (matplotlib, no pyplot: safe with any backend, in threads and in Colab).

Each `plot_*` function takes numbers (see `analysis` and `stats`) and returns a `matplotlib.figure.Figure`;
`save_figure` writes it as PNG and PDF. Callers pass 0-based trial and step indices; titles and axes use the
paper's numbering: trials 1-30 (0-based trial t is "trial t+1") and steps 1-4 (stimulus, response,
feedback, delay).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .analysis import adjacent_ordered_pairs
from .stats import (MACAQUE_ERRORS, MACAQUE_PAIRS, MODEL_PAIRS, item_letters, median_iqr, pair_distances,
                    pair_labels)

STEP_ROLES = ("stimulus", "response", "feedback", "delay")
STEPS = tuple(f"Step {k + 1} ({role})" for k, role in enumerate(STEP_ROLES))
DISTANCE_COLOURS = ["C0", "C1", "C2", "C3", "C4", "C5", "C7"]
PAIR_STYLES = {"DE": dict(color="#4b3f9e", marker="D", linestyle="-"),
               "ED": dict(color="#3fb8c4", marker="D", linestyle="--")}


def save_figure(fig: Figure, out_dir, name: str, dpi: int = 150) -> list[Path]:
    """Write `name`.png and `name`.pdf into out_dir; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def format_p(p: float) -> str:
    """'p = 3.2e-05'; 'p < 1e-300' where the test's p underflows to 0."""
    return "p < 1e-300" if p == 0 else f"p = {p:.1e}"


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _item_axis(ax, nbcues: int = 8, label: str | None = None):
    ax.set_xticks(range(nbcues))
    ax.set_xticklabels(item_letters(nbcues))
    if label:
        ax.set_xlabel(label)


# ---------------------------------------------------------------------------------------------------------
# Behaviour (Figs. 2a, 3, Extended Data Fig. 1, Supplementary Note 9).

def _pair_positions(nbcues: int = 8) -> np.ndarray:
    """x position of each pair: pairs of one distance side by side, a gap between distances."""
    distances = pair_distances(nbcues)
    return np.arange(len(distances)) + (distances - 1) * 1.0


def draw_pair_performance(ax, splits: np.ndarray, nbcues: int = 8, chance: bool = False,
                          ylabel: str = "% correct\n(last 10 trials)", reference: np.ndarray | None = None):
    """Median (line) and interquartile range (band) over splits of % correct per pair, one colour per
    symbolic distance; `reference` (per pair, in %) is drawn as a grey dashed line."""
    median, low, high = (100 * v for v in median_iqr(splits))
    x = _pair_positions(nbcues)
    distances = pair_distances(nbcues)
    for d in range(1, nbcues):
        k = distances == d
        colour = DISTANCE_COLOURS[(d - 1) % len(DISTANCE_COLOURS)]
        ax.fill_between(x[k], low[k], high[k], color=colour, alpha=0.3, linewidth=0)
        ax.plot(x[k], median[k], color=colour, marker="o", markersize=3)
        if reference is not None:
            ax.plot(x[k], reference[k], color="0.5", linestyle="--", linewidth=1)
    if chance:
        ax.axhline(50, color="0.5", linestyle="--", linewidth=1)
    labels = pair_labels(nbcues)
    ax.set_xticks(x)
    ax.set_xticklabels([label if k % 2 == 0 else "\n" + label for k, label in enumerate(labels)], fontsize=7)
    ax.set_ylabel(ylabel)
    centres = [x[distances == d].mean() for d in range(1, nbcues)]
    below = dict(xycoords=("data", "axes fraction"), textcoords="offset points", ha="center", va="top",
                 annotation_clip=False, fontsize=8)
    for d, centre in enumerate(centres, start=1):
        ax.annotate(str(d), (centre, 0), xytext=(0, -32), **below)
    ax.annotate("Symbolic\ndistance", (x[0] - 1.5, 0), xytext=(0, -32), **{**below, "ha": "right"})
    ax.annotate("Adjacent", (centres[0], 0), xytext=(0, -44), **below)
    if nbcues > 2:
        ax.annotate("Nonadjacent", ((centres[1] + centres[-1]) / 2, 0), xytext=(0, -44), **below)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_pair_performance(splits: np.ndarray, title: str = "", chance: bool = False, nbcues: int = 8,
                          ylabel: str = "% correct\n(last 10 trials)", reference=None) -> Figure:
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    draw_pair_performance(ax, splits, nbcues, chance, ylabel, reference)
    ax.set_title(title)
    return fig


def plot_error_by_distance(linked: dict, sham: dict, nbcues: int = 8) -> Figure:
    """Fig. 3c (comp_treichler2003): % error by symbolic distance 1..nbcues-1 of the test pair, linked vs
    unlinked (sham). linked, sham: distance -> error rate (0-1); a distance never tested is left blank."""
    fig = _figure(3.6, 3.0)
    ax = fig.add_subplot()
    distances = np.arange(1, nbcues)
    for values, label, style in ((sham, "Unlinked (sham)", dict(color="0.6", linestyle="--", marker="o", mfc="white")),
                                 (linked, "Linked", dict(color="black", marker="o"))):
        ax.plot(distances, [100 * values.get(int(d), np.nan) for d in distances], label=label, **style)
    ax.set_xlabel("Symbolic distance")
    ax.set_ylabel("% error")
    ax.set_xticks(distances)
    ax.set_xlim(0.5, nbcues - 0.5)
    ax.legend(frameon=False)
    return fig


def macaque_percent_correct() -> list[list[float]]:
    """Treichler & Van Tilburg's error rates as % correct, the whole list reversed (as the original): the
    macaques learned list A-E last, the model its list A-D first; reversing the list and reading the
    letters backwards (J..F as A..E) puts the list learned first on the left in both panels, so the labels
    stay AE BE CE DE | AF .. | EG .. | FG .. FJ."""
    flat = [100 * (1 - e) for group in MACAQUE_ERRORS for e in group][::-1]
    sizes = [len(g) for g in MACAQUE_PAIRS]
    return [flat[sum(sizes[:k]):sum(sizes[:k + 1])] for k in range(len(sizes))]


def plot_treichler(model: list[list[float]]) -> Figure:
    """Pairs around the link, macaques (Treichler & Van Tilburg 1996, Table 2; see
    `macaque_percent_correct`) next to the model. model: % correct of the groups AD BD CD | AE BE CE |
    DF DG DH | EF EG EH of list linking, the median over the 10 splits (`stats.treichler_model`)."""
    fig = _figure(8.0, 3.0)
    for k, (groups, names, title) in enumerate((
            (macaque_percent_correct(), MACAQUE_PAIRS, "Macaques (lists A-E, F-J; link EF)"),
            (model, MODEL_PAIRS, "Model (lists A-D, E-H; link DE), median of 10 splits"))):
        ax = fig.add_subplot(1, 2, k + 1)
        x0, ticks, labels = 0, [], []
        for values, pairs in zip(groups, names):
            x = np.arange(len(values)) + x0
            ax.plot(x, values, marker="o", color="C0")
            ticks += list(x)
            labels += [("\n" if i % 2 else "") + p for i, p in enumerate(pairs)]
            x0 += len(values) + 1
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("% correct")
        ax.set_ylim(0, 105)
    return fig


def plot_accuracy_bars(accuracy: dict, title: str) -> Figure:
    """% correct per pair as bars (the 'only two last adjacent' test)."""
    fig = _figure(4.0, 3.0)
    ax = fig.add_subplot()
    names = list(accuracy)
    ax.bar(range(len(names)), [100 * accuracy[n] for n in names], color="C0")
    ax.axhline(50, color="0.5", linestyle=":")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("% correct")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    return fig


def plot_learning_curves(curves: dict, width: int = 10) -> Figure:
    """Fig. 1f: % correct on the test trials vs episode, boxcar-smoothed; curves: name -> list of rows."""
    from .training import smooth
    fig = _figure(4.5, 3.0)
    ax = fig.add_subplot()
    for name, rows in curves.items():
        episodes = [r["episode"] for r in rows]
        values = smooth([r["percent_correct"] for r in rows], width)
        ax.plot(episodes[len(episodes) - len(values):], values, label=name, linewidth=1)
    ax.set_xlabel("Episodes")
    ax.set_ylabel("% correct\n(last 10 trials)")
    ax.set_ylim(50, 100)
    if len(curves) > 1:
        ax.legend(frameon=False, fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation (Fig. 5).

def _modulation_trace(modulation: np.ndarray, blank_first_steps: bool = True) -> np.ndarray:
    """m(t) per step; with `blank_first_steps`, 0 at steps 1 and 2 of each trial, where it has no effect
    when the trace is reset at every trial (the original blanks them only then in `traces`, always in
    `zoom`)."""
    m = np.array(modulation, dtype=float).reshape(-1, 4)
    if blank_first_steps:
        m[:, :2] = 0.0
    return m.reshape(-1)


def _trial_axis(nsteps: int) -> np.ndarray:
    """x of each step in trial units, in the paper's numbering: trial k spans [k, k + 1)."""
    return 1 + np.arange(nsteps) / 4


def plot_traces(modulation: np.ndarray, feedback: np.ndarray, highlight=None, blank_first_steps: bool = True) -> Figure:
    """Fig. 5a: m(t) and the reward perceived R(t) for the first 4 episodes given. modulation, feedback:
    (episodes, nsteps). highlight: (first, last) 0-based trials, inclusive, shaded orange (the massed
    trials); blank_first_steps: see `_modulation_trace` (False when rates and trace carry across trials)."""
    fig = _figure(8.0, 5.0)
    nsteps = modulation.shape[1]
    ntrials = nsteps // 4
    for k in range(min(4, len(modulation))):
        ax = fig.add_subplot(2, 2, k + 1)
        t = _trial_axis(nsteps)
        ax.plot(t, _modulation_trace(modulation[k], blank_first_steps), color="red", linewidth=1, label="m(t)")
        ax.plot(t, feedback[k], color="blue", linewidth=1, label="R(t)")
        if highlight is not None:
            ax.axvspan(highlight[0] + 1, highlight[1] + 2, color="orange", alpha=0.2, linewidth=0)
        ax.set_xticks([1] + list(range(10, ntrials + 1, 10)))
        ax.set_xlim(1, ntrials + 1)
        if k >= 2:
            ax.set_xlabel("Trial")
        if k == 0:
            ax.legend(frameon=False, fontsize=8, loc="upper right")
            ax.set_title("Neuromodulation and reward", fontsize=9)
    return fig


def plot_zoom(modulation: np.ndarray, feedback: np.ndarray, first: int = 4, trials: int = 4) -> Figure:
    """Fig. 5b: one episode (modulation, feedback: (nsteps,)), `trials` trials from 0-based trial `first`
    and one more step (17 steps by default: the paper's trials 5-8 and the first step of trial 9); m at the
    feedback step (circle) and the delay step (cross), R(t) on a twin axis."""
    fig = _figure(4.5, 3.0)
    ax = fig.add_subplot()
    steps = np.arange(first * 4, min(first * 4 + 4 * trials + 1, len(modulation)))
    t = _trial_axis(len(modulation))[steps]
    m = _modulation_trace(modulation)[steps]
    role = steps % 4
    ax.plot(t, m, color="red", linewidth=1)
    ax.plot(t[role == 2], m[role == 2], "o", color="red", label="Step 3 (feedback)")
    ax.plot(t[role == 3], m[role == 3], "x", color="red", markersize=8, label="Step 4 (delay)")
    starts = np.arange(first + 1, first + trials + 2)
    for trial in starts:
        ax.axvline(trial, color="0.3", linestyle=":", linewidth=0.8)
    limit = max(4.0, 1.1 * np.abs(m).max())
    ax.set_ylim(-limit, limit)
    ax.set_ylabel("m(t)", color="red")
    ax.set_xlabel("Trial")
    ax.set_xticks(starts)
    twin = ax.twinx()
    twin.plot(t, feedback[steps], color="blue", linewidth=1)
    twin.set_ylabel("R(t)", color="blue")
    twin.set_ylim(-1.5, 1.5)
    twin.set_yticks((-1, 0, 1))
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    return fig


def plot_violin(by_reward: dict, trial: int) -> Figure:
    """Fig. 5c: m at the feedback and delay steps of one trial (0-based), split by that trial's reward.
    by_reward: `stats.modulation_by_reward` ({"feedback"/"delay": {"values": {+1, -1}, "p"}}). Violin
    widths are proportional to the share of episodes in each group (as the original)."""
    fig = _figure(4.0, 2.8)
    for k, (name, step) in enumerate((("feedback", 2), ("delay", 3))):
        ax = fig.add_subplot(1, 2, k + 1)
        groups = [np.asarray(by_reward[name]["values"][r]) for r in (-1, 1)]
        total = sum(len(g) for g in groups)
        present = [i for i, g in enumerate(groups) if len(g)]
        if present:
            parts = ax.violinplot([groups[i] for i in present], positions=present, showextrema=False,
                                  showmedians=True, widths=[len(groups[i]) / total for i in present])
            for body in parts["bodies"]:
                body.set_facecolor("red")
                body.set_alpha(0.5)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["Rew-", "Rew+"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_title(f"{STEPS[step]}\n{format_p(by_reward[name]['p'])}", fontsize=8)
        if k == 0:
            ax.set_ylabel(f"m(t), trial {trial + 1}")
    return fig


# ---------------------------------------------------------------------------------------------------------
# Representations (Figs. 4, 6, 7, 8, Extended Data Fig. 3).

def plot_pca(pca: dict, response, ordered, correct, first_item, trial: int) -> Figure:
    """Fig. 4a: PCA of r at the response step of `trial` (0-based), 4 colourings; w_out as an arrow
    (its direction in the PC plane, not shifted by the mean). first_item: item 1 (0-based); the last panel
    shows items A-D."""
    scores = pca["scores"]
    fig = _figure(12.0, 3.2)
    panels = [
        ("Choose 1 / Choose 2", [(response > 0, "red", "Choose 1"), (response < 0, "blue", "Choose 2")]),
        ("Correct order", [(ordered, "red", "Item 1 > 2"), (~ordered, "blue", "Item 2 > 1")]),
        ("Correct / incorrect", [(correct, "black", "Correct"), (~correct, "red", "Incorrect")]),
        ("Item 1", [(first_item == k, f"C{k}", "ABCD"[k]) for k in range(4)]),
    ]
    scale = np.abs(scores[:, 0]).max() * 0.8
    first = None
    for k, (title, groups) in enumerate(panels):
        ax = fig.add_subplot(1, 4, k + 1, sharex=first, sharey=first)
        first = first or ax
        for mask, colour, label in groups:
            ax.scatter(scores[mask, 0], scores[mask, 1], s=3, color=colour, alpha=0.5, label=label, linewidths=0)
        arrow = pca["wout_in_pcs"] * scale
        ax.annotate("", xy=(arrow[0], arrow[1]), xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=1.5))
        ax.text(arrow[0], arrow[1], " W$_{out}$", fontsize=8)
        ax.set_xlabel("PC1")
        if k == 0:
            ax.set_ylabel("PC2")
        ax.set_title(title, fontsize=9)
        ax.legend(frameon=False, fontsize=7, markerscale=3, loc="upper left")
    fig.suptitle(f"r at step 2 (response) of trial {trial + 1}; corr(PC1, w_out) = {pca['pc1_wout_corr']:.2f}",
                 fontsize=9)
    return fig


def _mean_sd(ax, values: np.ndarray, **style):
    """Mean and s.d. over axis 0, one point per item."""
    values = np.asarray(values, dtype=float)
    x = np.arange(values.shape[-1])
    ax.errorbar(x, np.nanmean(values, 0), yerr=np.nanstd(values, 0), capsize=0, markersize=4, **style)


def plot_item_alignment(alignment: np.ndarray, ylabel: str, title: str = "") -> Figure:
    """Fig. 4b: corr(psi(X), w_out) per item, mean +- s.d. over episodes. alignment: (batch, K)."""
    fig = _figure(3.2, 2.8)
    ax = fig.add_subplot()
    _mean_sd(ax, alignment, color="C1", ecolor="black", marker="o", mfc="black", mec="black")
    ax.axhline(0, color="0.8", linewidth=0.8)
    _item_axis(ax, alignment.shape[-1], "Single item (X)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig


def plot_alignment_changes(alignment: np.ndarray, title: str) -> Figure:
    """Fig. 6: alignment of every item's psi_t2 with w_out using P after each step (top), change from the
    previous step (bottom; steps 1 and 2 cannot change). alignment: (episodes, 4, K)."""
    fig = _figure(10.0, 4.6)
    nbcues = alignment.shape[-1]
    top = [fig.add_subplot(2, 4, s + 1) for s in range(4)]
    for s, ax in enumerate(top):
        _mean_sd(ax, alignment[:, s], color="C1", ecolor="black", marker="o", mfc="black", mec="black")
        ax.set_title(STEPS[s])
        ax.set_ylim(-0.8, 0.8)
        _item_axis(ax, nbcues)
        if s == 0:
            ax.set_ylabel("Output representation\nCorr($\\psi_{t2}$(X), w$_{out}$)")
    for s in range(4):
        ax = fig.add_subplot(2, 4, 5 + s)
        if s < 2:  # P does not change at steps 0 and 1: the trace is 0 there
            ax.text(0.5, 0.5, "No\nchange", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if s == 0:
                ax.set_ylabel("Change from\nprevious step")
            continue
        change = alignment[:, s] - alignment[:, s - 1]
        ax.bar(range(nbcues), change.mean(0), yerr=change.std(0), color="C3", ecolor="black")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylim(-0.7, 0.7)
        _item_axis(ax, nbcues)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_reinstatement(by_order: dict, ylabel: str, title: str) -> Figure:
    """Figs. 7a, 7b: cosine(item representation, r(t)) at each step of a trial, for episodes showing D, E
    and E, D. by_order: 'DE' / 'ED' -> (episodes, 4, K)."""
    fig = _figure(10.0, 2.8)
    axes = [fig.add_subplot(1, 4, s + 1) for s in range(4)]
    limit = max([np.abs(np.nanmean(v, 0)).max() + np.nanstd(v, 0).max() for v in by_order.values() if len(v)] + [0.1])
    for s, ax in enumerate(axes):
        for name, values in by_order.items():
            if len(values):
                _mean_sd(ax, values[:, s], label=f"{name} ({len(values)})", **PAIR_STYLES[name])
        ax.axhline(0, color="0.8", linewidth=0.8)
        ax.set_ylim(-1.1 * limit, 1.1 * limit)
        ax.set_title(STEPS[s])
        _item_axis(ax, 8)
        if s == 0:
            ax.set_ylabel(ylabel)
    axes[-1].legend(frameon=False, fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_reinstatement_heatmap(table: np.ndarray, title: str) -> Figure:
    """Fig. 8: mean cosine(psi~_t1(X), r) at the response step for each ordered adjacent pair shown (items
    x pairs); colours symmetric around 0 up to the largest |value| (as the original)."""
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    limit = float(np.nanmax(np.abs(table))) if np.isfinite(table).any() else 1.0
    image = ax.imshow(table, cmap="bwr", vmin=-limit, vmax=limit, aspect="auto")
    pairs = adjacent_ordered_pairs(table.shape[0])
    letters = item_letters(table.shape[0])
    ax.set_xticks(range(len(pairs)))
    ax.set_xticklabels([letters[i] + letters[j] for i, j in pairs], fontsize=7)
    ax.set_yticks(range(table.shape[0]))
    ax.set_yticklabels([f"$\\tilde\\psi_{{t1}}$({x})" for x in letters])
    ax.set_xlabel("Pair shown")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.6)
    return fig


def plot_recoded_output(by_response: dict, title: str) -> Figure:
    """Extended Data Fig. 3: corr(r(t), w~_out) at each step, for responses choose 1 and choose 2."""
    fig = _figure(4.2, 3.0)
    ax = fig.add_subplot()
    styles = {1: dict(color="C1", marker="D", mfc="#4b3f9e", label="Choose 1 (Resp+)"),
              -1: dict(color="purple", marker="D", linestyle="--", mfc="#3fb8c4", label="Choose 2 (Resp-)")}
    for sign, values in by_response.items():
        if len(values):
            ax.errorbar(range(4), values.mean(0), yerr=values.std(0), ecolor="black", capsize=0, **styles[sign])
    ax.axhline(0, color="0.8", linewidth=0.8)
    ax.set_xticks(range(4))
    ax.set_xticklabels([s.replace(" (", "\n(") for s in STEPS], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_reinstatement_vs_change(reinstatement, change, response, correct, item: str = "C", trial: int = 18,
                                 order=None) -> Figure:
    """psitildetodeltapsi: how strongly an item's recoded representation is reinstated at the response step
    against how much its output alignment then changes at the delay step, for the episodes whose trial
    `trial` (0-based) shows the barred pair (D,E or E,D). Inputs, one value per episode (see
    `analysis.reinstatement_vs_change`, which computes them):

    reinstatement: cosine(psi~_t1(item), r) at step 2 (response) of that trial (recoded psi~, Supp. Note 8);
    change: corr(psi_t2(item), w_out) with P after step 4 (delay) minus the same after step 3 (feedback);
    response: the response of that trial (+1 choose item 1, -1 choose item 2); correct: bool;
    order (optional): +1 where the pair is shown in its own order (D,E), -1 reversed (E,D).

    Left: reinstatement vs change (reversed-order episodes marked apart when `order` is given). Right:
    reinstatement x response vs change, correct and incorrect trials apart (as the original)."""
    x, y = np.asarray(reinstatement, float), np.asarray(change, float)
    response, correct = np.asarray(response, float), np.asarray(correct, bool)
    fig = _figure(7.0, 3.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, sharey=None)
    if order is None:
        left.scatter(x, y, s=6, color="C0")
    else:
        for sign, label, style in ((1, "in order", dict(color="#4b3f9e")), (-1, "reversed", dict(color="#3fb8c4"))):
            mask = np.asarray(order) == sign
            left.scatter(x[mask], y[mask], s=6, label=f"{label} ({mask.sum()})", **style)
        left.legend(frameon=False, fontsize=7)
    right.scatter(x[correct] * response[correct], y[correct], s=14, marker="+", color="c",
                  label=f"Correct ({correct.sum()})")
    right.scatter(x[~correct] * response[~correct], y[~correct], s=6, color="r", label=f"Incorrect ({(~correct).sum()})")
    right.legend(frameon=False, fontsize=7)
    reinstated = f"cos($\\tilde\\psi_{{t1}}$({item}), r) at step 2"
    left.set_xlabel(reinstated)
    right.set_xlabel(reinstated + " x response")
    left.set_ylabel(f"change of corr($\\psi_{{t2}}$({item}), w$_{{out}}$)\nat step 4 (delay)")
    for ax in (left, right):
        ax.axhline(0, color="0.8", linewidth=0.8)
        ax.axvline(0, color="0.8", linewidth=0.8)
    fig.suptitle(f"Trial {trial + 1}, episodes showing the barred pair ({len(x)})", fontsize=9)
    return fig


def plot_decoding(table: np.ndarray, names, first_test: int = 20) -> Figure:
    """Supplementary Fig. 5: per trial (table row t = trial t+1), held-out corr(prediction, truth) of
    linear decoders from r at the response step; a dashed line before the first test trial (0-based)."""
    fig = _figure(6.0, 3.4)
    ax = fig.add_subplot()
    trials = np.arange(1, table.shape[0] + 1)
    for k, name in enumerate(names):
        ax.plot(trials, table[:, k], marker=".", label=name)
    ax.axvline(first_test + 0.5, color="0.6", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Trial")
    ax.set_ylabel("corr(decoded, true)\n(held-out episodes)")
    ax.set_ylim(-0.2, 1.05)
    ax.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig


# ---------------------------------------------------------------------------------------------------------
# Matrices and the last trial (code-only figures of the original).

def plot_matrices(w: np.ndarray, alpha: np.ndarray, plastic: np.ndarray) -> Figure:
    fig = _figure(10.0, 3.2)
    for k, (matrix, title) in enumerate(((w, "W$_{rec}$"), (alpha, "A (plasticity)"),
                                        (plastic, "P at the end of the first episode"))):
        ax = fig.add_subplot(1, 3, k + 1)
        limit = np.abs(matrix).max() or 1.0
        image = ax.imshow(matrix, cmap="bwr", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _pair_letters(pair) -> str | None:
    """'DF' from (3, 5) or from 'DF' (in the order shown); None stays None."""
    if pair is None or isinstance(pair, str):
        return pair
    return "".join(item_letters(26)[int(k)] for k in pair)


def plot_last_trial_items(stimuli: np.ndarray, pair=None) -> Figure:
    """lasttrial_cues: the two items (+-1 vectors) shown in the last trial of one episode (the original
    shows batch element 0). stimuli: (2, item size); pair (optional, for the labels): the items' 0-based
    indices in the order shown, e.g. (3, 5), or their letters, e.g. "DF"."""
    fig = _figure(2.4, 3.6)
    letters = _pair_letters(pair)
    for k in range(2):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.imshow(np.asarray(stimuli[k])[:, None], cmap="gray", vmin=-1, vmax=1, aspect="auto",
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"Item {k + 1}" + (f"\n({letters[k]})" if letters else ""), fontsize=8)
    fig.suptitle("Items of the last trial", fontsize=9)
    return fig


def plot_last_trial_rates(rates: np.ndarray, pair=None) -> Figure:
    """lasttrial_rnn: r at the 4 steps of the last trial of one episode (the original shows batch element
    0). rates: (4, n); neurons down, steps across; pair (optional): as in `plot_last_trial_items`."""
    fig = _figure(3.0, 6.0)
    ax = fig.add_subplot()
    image = ax.imshow(np.asarray(rates).T, cmap="bwr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(4))
    ax.set_xticklabels([f"{k + 1} {role}" for k, role in enumerate(STEP_ROLES)], fontsize=7, rotation=45,
                       ha="right")
    ax.set_xlabel("Step")
    ax.set_ylabel("Neuron")
    letters = _pair_letters(pair)
    ax.set_title("Rates in the last trial" + (f"\n(items {letters[0]}, {letters[1]})" if letters else ""), fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.5)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Toy model (Supplementary Note 2).

def plot_toy_model(comparison: dict) -> Figure:
    """Final value per item (mean +- s.d.) with and without reinstatement, for both update rules, and the
    distributions of the correlation between final values and item index (`analysis.rank_correlation`,
    as the original: A is item 0 and ranks highest, so good ordering is near -1)."""
    fig = _figure(10.0, 3.0)
    boxes, labels = [], []
    for k, (rule, title) in enumerate((("every_trial", "Update every trial"), ("errors_only", "Update on errors only"))):
        ax = fig.add_subplot(1, 3, k + 1)
        result = comparison[rule]
        for flag, style in ((False, dict(color="0.5", linestyle="--", label="no reinstatement")),
                            (True, dict(color="C0", label="with reinstatement"))):
            values = result["values"][flag]
            ax.errorbar(range(values.shape[1]), values.mean(0), yerr=values.std(0), marker="o", capsize=2, **style)
            boxes.append(result["correlation"][flag])
            labels.append(f"{'reinst.' if flag else 'none'}\n{'errors' if rule == 'errors_only' else 'every'}")
        _item_axis(ax, values.shape[1], "Item")
        ax.set_ylabel("Final value")
        ax.set_title(f"{title} ({format_p(result['p'])})", fontsize=9)
        ax.legend(frameon=False, fontsize=7)
    ax = fig.add_subplot(1, 3, 3)
    ax.boxplot(boxes, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("corr(final values, item index)\n(-1: perfectly ordered)")
    ax.set_title("Toy model, 20 trials", fontsize=9)
    return fig
