"""Representations: PCA (Fig. 4a), item alignment (Figs. 4b, 6), reinstatement (Figs. 7, 8, Extended Data
Fig. 3), decoding (Supplementary Fig. 5), weight matrices and the last trial."""
from __future__ import annotations

import warnings

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.analysis import adjacent_ordered_pairs
from ..evaluation.choices import caption_trial
from ..evaluation.stats import item_letters
from ..model.task import STEP_NAMES
from .common import PAIR_STYLES, STEPS, item_axis, mean_sd, new_figure

def plot_pca(pca: dict, response, ordered, correct, first_item, trial: int) -> Figure:
    """Fig. 4a: PCA of r at the response step of `trial` (0-based), 4 colourings; w_out as an arrow
    (its direction in the PC plane, not shifted by the mean). first_item: item 1 (0-based); the last panel
    shows items A-D."""
    scores = pca["scores"]
    fig = new_figure(12.0, 3.6)
    panels = [
        ("Choose 1 / Choose 2", [(response > 0, "red", "Choose 1"), (response < 0, "blue", "Choose 2")]),
        ("Correct order", [(ordered, "red", "Item 1 > 2"), (~ordered, "blue", "Item 2 > 1")]),
        ("Correct / incorrect", [(correct, "black", "Correct"), (~correct, "red", "Incorrect")]),
        ("Item 1 (trials whose item 1 is A-D only)", [(first_item == k, f"C{k}", "ABCD"[k]) for k in range(4)]),
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
        # below the panel, where it hides no point, and large enough to read at notebook width
        ax.legend(frameon=False, fontsize=10, markerscale=5, handletextpad=0.1, columnspacing=0.8,
                  ncols=len(groups), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle(f"r at step 2 (response) of trial {caption_trial(trial)}; "
                 f"corr(PC1, w_out) = {pca['pc1_wout_corr']:.2f}",
                 fontsize=9)
    return fig



def plot_item_alignment(alignment: np.ndarray, ylabel: str, title: str = "") -> Figure:
    """Fig. 4b: corr(psi(X), w_out) per item, mean +- s.d. over episodes. alignment: (batch, K)."""
    fig = new_figure(3.2, 2.8)
    ax = fig.add_subplot()
    mean_sd(ax, alignment, color="C1", ecolor="black", marker="o", mfc="black", mec="black")
    ax.axhline(0, color="0.8", linewidth=0.8)
    item_axis(ax, alignment.shape[-1], "Single item (X)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return fig


def plot_alignment_changes(alignment: np.ndarray, title: str) -> Figure:
    """Fig. 6: alignment of every item's psi_t2 with w_out using P after each step (top), change from the
    previous step (bottom; steps 1 and 2 cannot change). alignment: (episodes, 4, K)."""
    fig = new_figure(10.0, 4.6)
    nbcues = alignment.shape[-1]
    changes = alignment[:, 1:] - alignment[:, :-1]  # (episodes, 3, K): from each step to the next
    top = [fig.add_subplot(2, 4, s + 1) for s in range(4)]
    for s, ax in enumerate(top):
        mean_sd(ax, alignment[:, s], color="C1", ecolor="black", marker="o", mfc="black", mec="black")
        ax.set_title(STEPS[s])
        ax.set_ylim(*_symmetric_limits(alignment, 0.8))
        item_axis(ax, nbcues)
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
        change = changes[:, s - 1]
        with warnings.catch_warnings():  # no episode selected: an empty plot
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.bar(range(nbcues), change.mean(0), yerr=change.std(0), color="C3", ecolor="black")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylim(*_symmetric_limits(changes[:, 1:], 0.7))
        item_axis(ax, nbcues)
    fig.suptitle(title, fontsize=9)
    return fig


def _symmetric_limits(values: np.ndarray, least: float) -> tuple[float, float]:
    """(-L, L) for panels of mean +- s.d. over axis 0: L is `least` (the original's limit), or more where an
    error bar would run past it (5% margin)."""
    with warnings.catch_warnings():  # no episode selected
        warnings.simplefilter("ignore", RuntimeWarning)
        reach = np.nanmax(np.abs(np.nanmean(values, 0)) + np.nanstd(values, 0)) if len(values) else np.nan
    limit = max(least, 1.05 * reach) if np.isfinite(reach) else least
    return -limit, limit


def plot_reinstatement(by_order: dict, ylabel: str, title: str) -> Figure:
    """Figs. 7a, 7b: cosine(item representation, r(t)) at each step of a trial, for episodes showing a pair
    in its order and reversed. by_order: e.g. 'DE' / 'ED' -> (episodes, 4, K), the pair in order first."""
    fig = new_figure(10.0, 2.8)
    axes = [fig.add_subplot(1, 4, s + 1) for s in range(4)]
    limit = max([np.abs(np.nanmean(v, 0)).max() + np.nanstd(v, 0).max() for v in by_order.values() if len(v)] + [0.1])
    styles = list(PAIR_STYLES.values())  # in order, reversed
    for s, ax in enumerate(axes):
        for k, (name, values) in enumerate(by_order.items()):
            if len(values):
                mean_sd(ax, values[:, s], label=f"{name} ({len(values)})", **styles[k % 2])
        ax.axhline(0, color="0.8", linewidth=0.8)
        ax.set_ylim(-1.1 * limit, 1.1 * limit)
        ax.set_title(STEPS[s])
        item_axis(ax, 8)
        if s == 0:
            ax.set_ylabel(ylabel)
    axes[-1].legend(frameon=False, fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_reinstatement_heatmap(table: np.ndarray, title: str) -> Figure:
    """Fig. 8: mean cosine(psi~_t1(X), r) at the response step for each ordered adjacent pair shown (items
    x pairs); colours symmetric around 0 up to the largest |value| (as the original)."""
    fig = new_figure(6.0, 3.6)
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
    fig.colorbar(image, ax=ax, shrink=0.6, label="mean cos($\\tilde\\psi_{t1}$(X), r)")
    return fig


def plot_recoded_output(by_response: dict, title: str) -> Figure:
    """Extended Data Fig. 3: corr(r(t), w~_out) at each step, for responses choose 1 and choose 2."""
    fig = new_figure(4.2, 3.0)
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
                                 order=None, pair: str = "DE") -> Figure:
    """psitildetodeltapsi: how strongly an item's recoded representation is reinstated at the response step
    against how much its output alignment then changes at the delay step, for the episodes whose trial
    `trial` (0-based) shows the barred pair (D,E or E,D). Inputs, one value per episode (see
    `analysis.reinstatement_vs_change`, which computes them):

    reinstatement: cosine(psi~_t1(item), r) at step 2 (response) of that trial (recoded psi~, Supp. Note 8);
    change: corr(psi_t2(item), w_out) with P after step 4 (delay) minus the same after step 3 (feedback);
    response: the response of that trial (+1 choose item 1, -1 choose item 2); correct: bool;
    order (optional): +1 where the pair is shown in its own order (D,E), -1 reversed (E,D); pair: its name.

    Left: reinstatement vs change (reversed-order episodes marked apart when `order` is given). Right:
    reinstatement x response vs change, correct and incorrect trials apart (as the original)."""
    x, y = np.asarray(reinstatement, float), np.asarray(change, float)
    response, correct = np.asarray(response, float), np.asarray(correct, bool)
    fig = new_figure(7.0, 3.2)
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
    fig.suptitle(f"Trial {caption_trial(trial)}, episodes showing {pair} in either order ({len(x)})", fontsize=9)
    return fig


def plot_decoding(table: np.ndarray, names, first_test: int = 20, highlight=None) -> Figure:
    """Supplementary Fig. 5: per trial (table row t = trial t+1), held-out corr(prediction, truth) of
    linear decoders from r at the response step; a dashed line before the first test trial (0-based);
    highlight: (first, last) 0-based trials shaded orange (massed trials)."""
    fig = new_figure(6.0, 3.4)
    ax = fig.add_subplot()
    trials = np.arange(1, table.shape[0] + 1)
    if highlight is not None:
        ax.axvspan(highlight[0] + 0.5, highlight[1] + 1.5, color="orange", alpha=0.2, linewidth=0)
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
    fig = new_figure(10.0, 3.2)
    for k, (matrix, title) in enumerate(((w, "W$_{rec}$"), (alpha, "A (plasticity)"),
                                        (plastic, "P at the end (first episode of the batch)"))):
        ax = fig.add_subplot(1, 3, k + 1)
        limit = np.abs(matrix).max() or 1.0
        image = ax.imshow(matrix, cmap="bwr", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
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
    fig = new_figure(2.4, 3.6)
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
    fig = new_figure(3.0, 6.0)
    ax = fig.add_subplot()
    image = ax.imshow(np.asarray(rates).T, cmap="bwr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(4))
    ax.set_xticklabels([f"{k + 1} {role}" for k, role in enumerate(STEP_NAMES)], fontsize=7, rotation=45,
                       ha="right")
    ax.set_xlabel("Step")
    ax.set_ylabel("Neuron")
    letters = _pair_letters(pair)
    ax.set_title("Rates in the last trial" + (f"\n(items {letters[0]}, {letters[1]})" if letters else ""), fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.5, label="r (rate)")
    return fig


