"""Behaviour: performance per pair (Figs. 2a, 3a, 3b, Extended Data Fig. 1), list linking against the
macaques (Fig. 3c), learning curves (Fig. 1f) and the toy model (Supplementary Note 2)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.stats import MACAQUE_ERRORS, MACAQUE_PAIRS, MODEL_PAIRS, median_iqr, pair_distances, pair_labels
from .common import DISTANCE_COLOURS, format_p, item_axis, new_figure

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
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot()
    draw_pair_performance(ax, splits, nbcues, chance, ylabel, reference)
    ax.set_title(title)
    return fig


def plot_error_by_distance(linked: dict, sham: dict, nbcues: int = 8) -> Figure:
    """Fig. 3c (comp_treichler2003): % error by symbolic distance 1..nbcues-1 of the test pair, linked vs
    unlinked (sham). linked, sham: distance -> error rate (0-1); a distance never tested is left blank."""
    fig = new_figure(3.6, 3.0)
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
    fig = new_figure(8.0, 3.0)
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
    fig = new_figure(4.0, 3.0)
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


PASSIVE_COLOUR = "0.6"
MODULATION_COLUMNS = ("modulation_feedback", "modulation_delay")


def _smoothed(rows, column: str, width: int):
    from ..training.trainer import smooth
    kept = [r for r in rows if column in r]
    values = smooth([r[column] for r in kept], width)
    return [r["episode"] for r in kept][len(kept) - len(values):], values


def plot_learning_curves(curves: dict, verdicts: dict | None = None, width: int = 10) -> Figure:
    """Fig. 1f: % correct on the test trials (10 per episode) against the episode, boxcar-smoothed (width 10);
    below it, when the training log has them, mean |m(t)| at the feedback step (dashed) and at the delay step
    (solid): the active solution's m(t) grows at the delay step, the passive one's at the feedback step.

    curves: name -> rows of a training log (transitive.training.trainer.read_curve); verdicts: name -> "active",
    "passive", ... (passive runs are drawn grey, unclear ones dashed, as in Fig. 1f)."""
    verdicts = verdicts or {}
    with_modulation = any(MODULATION_COLUMNS[0] in rows[-1] for rows in curves.values() if rows)
    fig = new_figure(5.0, 5.4 if with_modulation else 3.2)
    ax = fig.add_subplot(2, 1, 1) if with_modulation else fig.add_subplot()
    below = fig.add_subplot(2, 1, 2, sharex=ax) if with_modulation else None
    others = [c for c in ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")]
    labelled = set()
    for k, (name, rows) in enumerate(curves.items()):
        verdict = verdicts.get(name)
        colour = PASSIVE_COLOUR if verdict == "passive" else others[k % len(others)]
        style = "--" if verdict not in (None, "active", "passive") else "-"
        label = verdict if verdicts else name
        ax.plot(*_smoothed(rows, "percent_correct", width), color=colour, linestyle=style, linewidth=1,
                zorder=1 if verdict == "passive" else 2, label=None if label in labelled else label)
        labelled.add(label)
        if below is not None:
            for column, line in zip(MODULATION_COLUMNS, ("--", "-")):
                below.plot(*_smoothed(rows, column, width), color=colour, linestyle=line, linewidth=1)
    ax.axhline(50, color="k", linewidth=0.5, linestyle=":")
    ax.set_ylabel("% correct\n(test trials)")
    if len(curves) > 1 or verdicts:
        ax.legend(frameon=False, fontsize=7)
    if below is not None:
        below.set_ylabel("mean |m(t)|")
        below.plot([], [], color="k", linestyle="--", label="feedback step (3)")
        below.plot([], [], color="k", linestyle="-", label="delay step (4)")
        below.legend(frameon=False, fontsize=7)
        below.set_xlabel("Episode")
    else:
        ax.set_xlabel("Episode")
    for axis in (ax, below):
        if axis is not None:
            axis.spines[["top", "right"]].set_visible(False)
    return fig



# ---------------------------------------------------------------------------------------------------------
# Toy model (Supplementary Note 2).

def plot_toy_model(comparison: dict) -> Figure:
    """Final value per item (mean +- s.d.) with and without reinstatement, for both update rules, and the
    distributions of the correlation between final values and item index (`analysis.rank_correlation`,
    as the original: A is item 0 and ranks highest, so good ordering is near -1)."""
    fig = new_figure(10.0, 3.0)
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
        item_axis(ax, values.shape[1], "Item")
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
