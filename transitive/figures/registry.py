"""The registry of the paper's figures (`FIGURES`): name -> `Panel`, the declaration of one figure (the
function of the runs that draws it, in `panels`, the paper's panel, its group, the experiment modes that make it,
its file name), and how the figures are made and saved (`make_figures`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import figures

EVERY_FIGURE = ("standard", "massed")  # the modes in which the original runs every analysis cell
LAST_TRIAL = EVERY_FIGURE + ("linking", "sham", "onlytwolastadj")  # the cells every mode reaches

# Each group of figures, with the heading and text of its section in main.ipynb (and in docs/figures.md's order).
GROUPS = {
    "fig2": "## Fig. 2a: performance per pair\n\nTest trials (21-30), 10 splits of the episodes: median and "
            "interquartile range per pair, one colour per symbolic distance.",
    "fig3": "## Fig. 3: list linking, sham, and the comparison with macaques\n\nTwo lists (A-D, E-H) learned in "
            "separate episodes, then four trials of the linking pair D,E (sham: one trial of B,C); the last trial "
            "is scored. Twice as many episodes as `BATCHSIZE`.",
    "massed": "## Massed presentation (Supplementary Note 9)\n\nIn the standard mode: 10 extra D,E trials after "
              "learning. `NBMASSEDTRIALS > 0` runs only this experiment, and every figure cell below then uses "
              "the massed run, as the original.",
    "fig4": "## Fig. 4: the response step and the learned item representations",
    "fig5": "## Fig. 5: neuromodulation m(t)\n\nm(t) is shown as 0 at the stimulus and response steps, where it has "
            "no effect (the eligibility trace is 0 there).",
    "fig6": "## Fig. 6 and Extended Data Fig. 2: representation changes within the trial where a pair is first "
            "shown\n\nIn the standard mode from a run where the batch elements above `BATCHSIZE // 2` see the pair "
            "(D,E; Extended Data Fig. 2: C,D or E,F) for the first time at trial 19 (the captions' trial 20); Fig. 6 "
            "in the massed mode from the massed run.",
    "fig7": "## Figs. 7, 8 and Extended Data Fig. 3: reinstatement of recoded representations\n\nThe recoded "
            "representations (Supplementary Note 8) are fitted when a cell first needs them: one fit of 1000 Adam "
            "steps, as the original, made again only if clearly bad (loss above 99% of the original's target).",
    "supplementary": "## Supplementary: decoding, weight matrices, the last trial",
    "toy": "## Toy model (Supplementary Note 2)",
    "curve": "## Learning curve (Fig. 1f)\n\nFrom the training log (`.csv`) beside `NETFILE`, written by meta-training; "
             "this notebook carries our two networks' logs. Below the accuracy, mean |m(t)| at the feedback and delay "
             "steps when the log has those columns (our networks' logs predate them).",
}


@dataclass(frozen=True)
class Panel:
    name: str  # the original's file name (with its default BARREDPAIR, ADDBARREDPAIR)
    paper: str  # the paper's panel
    group: str  # a set of figures made together (fig2, fig3, ...)
    original: tuple  # the experiment modes (Settings.experiment) in which the original makes it
    function: Callable
    when: Callable | None = None  # a further condition on the Settings, as in the original
    file: Callable | None = None  # the file name from the Settings, where the original's depends on them

    def make(self, runs):
        return self.function(runs)

    def made_with(self, settings) -> bool:
        """Made in the original's modes, and in the standard mode always (our addition)."""
        return ((settings.experiment in self.original or settings.experiment == "standard")
                and (self.when is None or self.when(settings)))

    def file_name(self, settings) -> str:
        return self.file(settings) if self.file else self.name

    @property
    def made_in(self) -> str:
        """The modes in which it is made, for tables: the original's, then ours."""
        ours = "" if "standard" in self.original else ("standard (ours)" if self.original else
                                                      "standard only (ours; the original does not make it)")
        return ", ".join(list(self.original) + ([ours] if ours else []))


FIGURES: dict[str, Panel] = {}


def panel(name: str, paper: str, group: str, original=EVERY_FIGURE, when=None, file=None):
    assert group in GROUPS, f"{name}: the group {group!r} is not declared in GROUPS"

    def register(function):
        FIGURES[name] = Panel(name, paper, group, tuple(original), function, when, file)
        return function
    return register


def names_for(settings, groups=None) -> list[str]:
    """The figures made with these Settings (or in this experiment mode, given its name), optionally only
    those of some groups, in registry order."""
    if isinstance(settings, str):
        from ..evaluation.runs import Settings
        settings = Settings(experiment=settings)
    return [name for name, p in FIGURES.items() if p.made_with(settings) and (groups is None or p.group in groups)]


def groups() -> list[str]:
    return list(dict.fromkeys(p.group for p in FIGURES.values()))


def make_figures(runs, out, names, show=None, workers: int = 1) -> list[Path]:
    """Make, save (PNG and PDF, under the original file names) and optionally show each named figure.

    workers > 1 (without show): every figure is made first (the runs they need have the CPU to themselves),
    then `workers` processes write them at once (`figures.save_figures`: the same files)."""
    if workers > 1 and show is None:
        made = {FIGURES[name].file_name(runs.settings): _make(runs, name) for name in names}
        return figures.save_figures({file: fig for file, fig in made.items() if fig is not None}, out, workers,
                                    log=runs.log)
    paths = []
    for name in names:
        fig = _make(runs, name)
        if fig is None:
            continue
        saved = figures.save_figure(fig, out, FIGURES[name].file_name(runs.settings))
        runs.log(f"wrote {saved[0]}")
        if show:
            show(saved[0])
        paths += saved
    return paths


def _make(runs, name: str):
    fig = FIGURES[name].make(runs)
    if fig is None:
        runs.log(f"{name}: nothing to plot")
    return fig


def not_fixed(settings) -> bool:
    """The original saves no SDE figure with FIXEDCUES."""
    return not settings.fixed_items
