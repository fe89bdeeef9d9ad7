"""Neuromodulation m(t): traces (Fig. 5a), one episode zoomed (Fig. 5b), m by reward (Fig. 5c)."""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.choices import caption_trial
from ..evaluation.stats import SIGN_NOTE
from .common import STEPS, format_p, new_figure


def _modulation_trace(modulation: np.ndarray, blank_first_steps: bool = True) -> np.ndarray:
    """m(t) per step; with `blank_first_steps`, 0 at steps 1 and 2 of each trial, where it has no effect
    when the trace is reset at every trial (the original blanks them only then in `traces`, always in
    `zoom`)."""
    m = np.array(modulation, dtype=float).reshape(-1, 4)
    if blank_first_steps:
        m[:, :2] = 0.0
    return m.reshape(-1)


def _sign_footnote(fig: Figure, sign: str | None) -> None:
    """Under a figure of m(t) whose sign is the opposite of the paper's (`stats.sign_against_paper`), say so,
    so that the figure is read against the paper's Fig. 5 up to sign."""
    if sign == "opposite":
        text = (f"This network's m(t) has the opposite sign to the paper's: {SIGN_NOTE}. "
                "Compare at which step m(t) depends on the reward, not its sign.")
        # wrapped to the figure's width (about 16 characters an inch at this size)
        fig.text(0.5, 0.0, textwrap.fill(text, int(16 * fig.get_figwidth())), ha="center", va="top", fontsize=7,
                 color="0.3")


def _trial_axis(nsteps: int) -> np.ndarray:
    """x of each step in trial units, in the paper's numbering: trial k spans [k, k + 1)."""
    return 1 + np.arange(nsteps) / 4


def plot_traces(modulation: np.ndarray, feedback: np.ndarray, highlight=None, blank_first_steps: bool = True,
                sign: str | None = None) -> Figure:
    """Fig. 5a: m(t) and the reward perceived R(t) for the first 4 episodes given. modulation, feedback:
    (episodes, nsteps). highlight: (first, last) 0-based trials, inclusive, shaded orange (the massed
    trials); blank_first_steps: see `_modulation_trace` (False when rates and trace carry across trials);
    sign: `stats.sign_against_paper` of the run ("opposite" adds a footnote)."""
    fig = new_figure(8.0, 5.0)
    nsteps = modulation.shape[1]
    ntrials = nsteps // 4
    for k in range(min(4, len(modulation))):
        ax = fig.add_subplot(2, 2, k + 1)
        t = _trial_axis(nsteps)
        ax.plot(t, _modulation_trace(modulation[k], blank_first_steps), color="red", linewidth=1, label="m(t)")
        ax.plot(t, feedback[k], color="blue", linewidth=1, label="R(t)")
        if highlight is not None:
            ax.axvspan(highlight[0] + 1, highlight[1] + 2, color="orange", alpha=0.2, linewidth=0)
        ax.set_xticks([1] + list(range(10, ntrials + 1, 10)) if ntrials >= 10 else range(1, ntrials + 2))
        ax.set_xlim(1, ntrials + 1)
        if k >= 2:
            ax.set_xlabel("Trial")
        if k % 2 == 0:
            ax.set_ylabel("m(t), R(t)")
        if k == 0:
            ax.set_title("Neuromodulation and reward", fontsize=9)
    # one legend for the four panels (episodes), above them, where it hides no trace
    fig.legend(fig.axes[0].get_lines()[:2], ["m(t): neuromodulation", "R(t): reward perceived"],
               loc="outside upper right", ncols=2, frameon=False, fontsize=9)
    _sign_footnote(fig, sign)
    return fig


def plot_zoom(modulation: np.ndarray, feedback: np.ndarray, first: int = 4, trials: int = 4,
              sign: str | None = None) -> Figure:
    """Fig. 5b: one episode (modulation, feedback: (nsteps,)), `trials` trials from 0-based trial `first`
    and one more step (17 steps by default); m at the feedback step (circle) and the delay step (cross), R(t)
    on a twin axis. The ticks mark where each trial starts and carry the 0-based trial numbers, as the
    paper's caption counts them ("trials 4-8": the 5th to the 9th trial). sign: as `plot_traces`."""
    fig = new_figure(4.5, 3.0)
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
    ax.set_xlabel("Trial (counted from 0, as the caption)")
    ax.set_xticks(starts, [str(trial - 1) for trial in starts])
    twin = ax.twinx()
    twin.plot(t, feedback[steps], color="blue", linewidth=1)
    twin.set_ylabel("R(t)", color="blue")
    twin.set_ylim(-1.5, 1.5)
    twin.set_yticks((-1, 0, 1))
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    _sign_footnote(fig, sign)
    return fig


def plot_violin(by_reward: dict, trial: int, sign: str | None = None) -> Figure:
    """Fig. 5c: m at the feedback and delay steps of one trial (0-based), split by that trial's reward.
    by_reward: `stats.modulation_by_reward` ({"feedback"/"delay": {"values": {+1, -1}, "p"}}). Violin
    widths are proportional to the share of episodes in each group (as the original). sign: as `plot_traces`."""
    fig = new_figure(4.0, 2.8)
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
            ax.set_ylabel(f"m(t), trial {caption_trial(trial)}")
    _sign_footnote(fig, sign)
    return fig
