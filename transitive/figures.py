"""Plotting the paper's panels (matplotlib, no pyplot: safe with any backend, in threads and in Colab).

Each `plot_*` function takes numbers (see `analysis`) and returns a `matplotlib.figure.Figure`;
`save_figure` writes it as PNG and PDF. Steps are labelled as in the paper (Step 1..4 for the 0-based steps
0..3); trial numbers in titles are the 0-based indices of the SPEC.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .analysis import (MACAQUE_ERRORS, MACAQUE_PAIRS, MODEL_PAIRS, adjacent_ordered_pairs, item_letters,
                       median_iqr, pair_distances, pair_labels)

STEPS = ("Step 1", "Step 2", "Step 3", "Step 4")
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


def plot_error_by_distance(linked: dict, sham: dict) -> Figure:
    """Fig. 3c: % error by symbolic distance of the test pair, linked vs unlinked (sham)."""
    fig = _figure(3.6, 3.0)
    ax = fig.add_subplot()
    for values, label, style in ((sham, "Unlinked", dict(color="0.6", linestyle="--", marker="o", mfc="white")),
                                 (linked, "Linked", dict(color="black", marker="o"))):
        d = sorted(values)
        ax.plot(d, [100 * values[k] for k in d], label=label, **style)
    ax.set_xlabel("Symbolic distance")
    ax.set_ylabel("% incorrect")
    ax.set_xticks(range(1, 8))
    ax.legend(frameon=False)
    return fig


def plot_treichler(model: list[list[float]]) -> Figure:
    """Macaque error rates around the link (Treichler & Van Tilburg 1996, Table 2) next to the model's
    percent correct for the corresponding pairs of list linking."""
    fig = _figure(8.0, 3.0)
    for ax, groups, names, title, ylabel in (
            (fig.add_subplot(1, 2, 1), [[100 * e for e in g] for g in MACAQUE_ERRORS], MACAQUE_PAIRS,
             "Macaques (lists A-E, F-J; link EF)", "% error"),
            (fig.add_subplot(1, 2, 2), model, MODEL_PAIRS, "Model (lists A-D, E-H; link DE)", "% correct")):
        x0, ticks, labels = 0, [], []
        for g, (values, pairs) in enumerate(zip(groups, names)):
            x = np.arange(len(values)) + x0
            ax.plot(x, values, marker="o", color=f"C{g}")
            ticks += list(x)
            labels += pairs
            x0 += len(values) + 1
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, fontsize=7, rotation=90)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100)
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

def _modulation_trace(modulation: np.ndarray) -> np.ndarray:
    m = np.array(modulation, dtype=float).reshape(-1, 4)
    m[:, :2] = 0.0  # m at steps 0 and 1 has no effect (the trace is 0 there)
    return m.reshape(-1)


def plot_traces(modulation: np.ndarray, feedback: np.ndarray) -> Figure:
    """Fig. 5a: m(t) (0 at steps 1, 2 of each trial) and the reward perceived, for 4 example episodes."""
    fig = _figure(8.0, 5.0)
    for k in range(min(4, len(modulation))):
        ax = fig.add_subplot(2, 2, k + 1)
        t = np.arange(modulation.shape[1]) / 4
        ax.plot(t, _modulation_trace(modulation[k]), color="red", linewidth=1, label="m(t)")
        ax.plot(t, feedback[k], color="black", linewidth=1, label="R(t)")
        if k >= 2:
            ax.set_xlabel("Trial")
        if k == 0:
            ax.legend(frameon=False, fontsize=8, loc="upper right")
            ax.set_title("Neuromodulation and reward", fontsize=9)
    return fig


def plot_zoom(modulation: np.ndarray, feedback: np.ndarray, first: int = 4, last: int = 8) -> Figure:
    """Fig. 5b: trials first..last of one episode; m at step 3 (circle) and step 4 (cross)."""
    fig = _figure(4.0, 2.6)
    ax = fig.add_subplot()
    steps = np.arange(first * 4, (last + 1) * 4)
    t = steps / 4
    m = _modulation_trace(modulation)[steps]
    ax.plot(t, m, color="red", linewidth=1)
    ax.plot(t[2::4], m[2::4], "o", color="red", label="Step 3")
    ax.plot(t[3::4], m[3::4], "x", color="red", markersize=8, label="Step 4")
    for trial in range(first, last + 1):
        ax.axvline(trial, color="0.7", linestyle="--", linewidth=0.8)
    ax.set_ylabel("m(t)", color="red")
    ax.set_xlabel("Trial")
    ax.set_xticks(range(first, last + 1))
    twin = ax.twinx()
    twin.plot(t, feedback[steps], color="black", linewidth=1)
    twin.set_ylabel("R(t)")
    twin.set_ylim(-1.5, 1.5)
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    return fig


def plot_violin(by_reward: dict, trial: int) -> Figure:
    """Fig. 5c: m at step 3 and 4 (0-based 2, 3) of one trial, split by that trial's reward."""
    fig = _figure(4.0, 2.8)
    for k, step in enumerate((2, 3)):
        ax = fig.add_subplot(1, 2, k + 1)
        groups = [by_reward[step]["values"][r] for r in (-1, 1)]
        present = [i for i, g in enumerate(groups) if len(g)]
        if present:
            parts = ax.violinplot([groups[i] for i in present], positions=present, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor("red")
                body.set_alpha(0.5)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["-1", "1"])
        ax.set_xlabel("R(t)")
        ax.set_title(f"{STEPS[step]}\n{format_p(by_reward[step]['p'])}", fontsize=8)
        if k == 0:
            ax.set_ylabel(f"m(t), trial {trial}")
    return fig


# ---------------------------------------------------------------------------------------------------------
# Representations (Figs. 4, 6, 7, 8, Extended Data Fig. 3).

def plot_pca(pca: dict, response, ordered, correct, first_item, trial: int) -> Figure:
    """Fig. 4a: PCA of r at step 2 (0-based 1) of a trial, 4 colourings; w_out as an arrow."""
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
    fig.suptitle(f"r at step 2 of trial {trial}; corr(PC1, w_out) = {pca['pc1_wout_corr']:.2f}", fontsize=9)
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
        ax.set_ylim(-0.6, 0.6)
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
    """Fig. 8: mean cosine(psi~_t1(X), r) at step 2 for each ordered adjacent pair shown (items x pairs)."""
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    image = ax.imshow(table, cmap="bwr", vmin=-0.3, vmax=0.3, aspect="auto")
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
    ax.set_xticklabels(STEPS)
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_reinstatement_vs_change(x: np.ndarray, y: np.ndarray, order: np.ndarray, item: str, trial: int) -> Figure:
    """psi~ reinstatement of an item at step 2 (x, signed: multiplied by +1 for D,E and -1 for E,D, so
    that both orders read alike) against the change of its alignment at step 4 (y)."""
    fig = _figure(3.6, 3.2)
    ax = fig.add_subplot()
    for name, sign in (("DE", 1), ("ED", -1)):
        mask = order == sign
        ax.scatter(x[mask], y[mask], s=8, color=PAIR_STYLES[name]["color"], label=name)
    r = np.corrcoef(x, y)[0, 1] if len(x) > 2 and x.std() > 0 and y.std() > 0 else float("nan")
    ax.set_xlabel(f"cos($\\tilde\\psi_{{t1}}$({item}), r) at step 2\n(sign flipped for E,D)")
    ax.set_ylabel(f"change of corr($\\psi_{{t2}}$({item}), w$_{{out}}$) at step 4")
    ax.set_title(f"trial {trial}, episodes showing D,E or E,D: r = {r:.2f}", fontsize=8)
    ax.axhline(0, color="0.8", linewidth=0.8)
    ax.axvline(0, color="0.8", linewidth=0.8)
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_decoding(table: np.ndarray, names, first_test: int = 20) -> Figure:
    """Supplementary Fig. 5: per trial, held-out corr(prediction, truth) of linear decoders from r at step 2."""
    fig = _figure(6.0, 3.4)
    ax = fig.add_subplot()
    for k, name in enumerate(names):
        ax.plot(range(table.shape[0]), table[:, k], marker=".", label=name)
    ax.axvline(first_test - 0.5, color="0.6", linestyle="--", linewidth=0.8)
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
                                        (plastic, "P, end of episode 0"))):
        ax = fig.add_subplot(1, 3, k + 1)
        limit = np.abs(matrix).max() or 1.0
        image = ax.imshow(matrix, cmap="bwr", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_last_trial_items(stimuli: np.ndarray, names) -> Figure:
    """The two items shown in the last trial of a few episodes. stimuli: (episodes, 2, 15)."""
    fig = _figure(6.0, 0.45 * len(stimuli) + 1.0)
    ax = fig.add_subplot()
    gap = np.zeros((len(stimuli), 1))
    image = np.hstack([stimuli[:, 0], gap, stimuli[:, 1]])
    ax.imshow(image, cmap="gray", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(stimuli)))
    ax.set_yticklabels(names)
    ax.set_xticks([7, 23])
    ax.set_xticklabels(["item 1", "item 2"])
    ax.set_title("Items of the last trial", fontsize=9)
    return fig


def plot_last_trial_rates(rates: np.ndarray, names) -> Figure:
    """Rates of the 4 steps of the last trial, for a few episodes. rates: (episodes, 4, n)."""
    fig = _figure(8.0, 1.0 * len(rates) + 0.8)
    for k, (r, name) in enumerate(zip(rates, names)):
        ax = fig.add_subplot(len(rates), 1, k + 1)
        ax.imshow(r, cmap="bwr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(4))
        ax.set_yticklabels(STEPS, fontsize=6)
        ax.set_ylabel(name, fontsize=7)
        if k < len(rates) - 1:
            ax.set_xticks([])
    fig.axes[-1].set_xlabel("Neuron")
    fig.suptitle("Rates in the last trial", fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------------------------
# Toy model (Supplementary Note 2).

def plot_toy_model(comparison: dict) -> Figure:
    """Final value per item (mean +- s.d.) with and without reinstatement, for both update rules, and the
    distributions of the correlation between values and true order."""
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
    ax.set_ylabel("corr(values, true order)")
    ax.set_title("Toy model, 20 trials", fontsize=9)
    return fig
