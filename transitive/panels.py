"""The paper's figures as a registry: name -> a short function of the runs that returns a Figure.

Each function says which run it uses, what it computes and what it plots; the package's functions do the
work (`stats`, `analysis` for the numbers, `figures` for drawing). main.ipynb shows each function's body
as its figure cell, so a reader can change a trial or a pair there and re-run it.

    fig = FIGURES["SDE"].make(runs)       # or make_figures(runs, "figures", ["SDE"])

Trials and steps are 0-based in the code (trial 18 is the paper's trial 19; step 2 is the feedback step,
the paper's step 3); the plots label them as the paper does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import analysis, figures, stats
from .representations import pearson
from .training import read_curve

STANDARD = ("standard",)


@dataclass(frozen=True)
class Panel:
    name: str  # the original's file name
    paper: str  # the paper's panel
    group: str  # a set of figures made together (fig2, fig3, ...)
    modes: tuple  # the experiments (Settings.experiment) in which the original makes it
    function: Callable
    when: Callable | None = None  # a further condition on the Settings

    def make(self, runs):
        return self.function(runs)

    def made_with(self, settings) -> bool:
        return settings.experiment in self.modes and (self.when is None or self.when(settings))


FIGURES: dict[str, Panel] = {}


def panel(name: str, paper: str, group: str, modes=STANDARD, when=None):
    def register(function):
        FIGURES[name] = Panel(name, paper, group, tuple(modes), function, when)
        return function
    return register


def names_for(settings, groups=None) -> list[str]:
    """The figures made with these Settings (or in this experiment mode, given its name), optionally only
    those of some groups, in registry order."""
    if isinstance(settings, str):
        from .runs import Settings
        settings = Settings(experiment=settings)
    return [name for name, p in FIGURES.items() if p.made_with(settings) and (groups is None or p.group in groups)]


def groups() -> list[str]:
    return list(dict.fromkeys(p.group for p in FIGURES.values()))


def make_figures(runs, out, names, show=None) -> list[Path]:
    """Make, save (PNG and PDF, under the original file names) and optionally show each named figure."""
    paths = []
    for name in names:
        fig = FIGURES[name].make(runs)
        if fig is None:
            runs.log(f"{name}: nothing to plot")
            continue
        saved = figures.save_figure(fig, out, name)
        runs.log(f"wrote {saved[0]}")
        if show:
            show(saved[0])
        paths += saved
    return paths


# ---------------------------------------------------------------------------------------------------------
# Behaviour: Figs. 2a, 3.

@panel("SDE", "Fig. 2a", "fig2", modes=("standard", "massed"))
def SDE(runs):
    run = runs.main  # the standard evaluation (the massed run when NBMASSEDTRIALS > 0)
    # % correct per pair on the test trials, in 10 splits of the episodes: (10, 28)
    splits = stats.pair_accuracy_splits(run.test_pairs, run.test_correct)
    return figures.plot_pair_performance(splits, "Single list")


@panel("SDE_LINKEDLISTS", "Fig. 3a", "fig3", modes=("standard", "linking"))
def SDE_LINKEDLISTS(runs):
    run = runs.linking  # lists A-D and E-H learned apart, then 4 trials of D,E; the last trial is scored
    splits = stats.pair_accuracy_splits(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_pair_performance(splits, "Linked", chance=True, ylabel="% correct\n(last trial)")


@panel("SDE_LINKEDLISTS_SHAM", "Fig. 3b", "fig3", modes=("standard", "sham"))
def SDE_LINKEDLISTS_SHAM(runs):
    run = runs.sham  # as list linking, but one trial of B,C instead of the four D,E trials
    splits = stats.pair_accuracy_splits(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_pair_performance(splits, "Unlinked (sham)", chance=True, ylabel="% correct\n(last trial)")


@panel("comp_treichler2003", "Fig. 3c", "fig3")
def comp_treichler2003(runs):
    # % error on the scored trial by symbolic distance, linked vs unlinked (sham)
    linked = stats.linking(runs.linking.pairs[:, -1], runs.linking.correct[:, -1]).error_by_distance
    sham = stats.linking(runs.sham.pairs[:, -1], runs.sham.correct[:, -1]).error_by_distance
    return figures.plot_error_by_distance(linked, sham)


@panel("treichler", "code only (Treichler & Van Tilburg 1996)", "fig3", modes=("standard", "linking", "sham"))
def treichler(runs):
    run = runs.main if runs.settings.experiment in ("linking", "sham") else runs.linking
    # % correct (median of 10 splits) of the pairs around the link, next to the macaques' error rates
    model = stats.treichler_model(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_treichler(model)


# ---------------------------------------------------------------------------------------------------------
# Representations: Fig. 4.

@panel("PCA", "Fig. 4a", "fig4")
def PCA(runs):
    run, trial = runs.standard, 19  # the last learning trial (the paper's trial 20)
    rates = run.trial_rates(trial)[:, 1]  # r at the response step
    result = analysis.pca(rates, runs.net.output_direction.detach().cpu())
    pairs = run.pairs[:, trial]
    return figures.plot_pca(result, run.response[:, trial].numpy(), (pairs[:, 0] < pairs[:, 1]).numpy(),
                            run.correct[:, trial].numpy(), pairs[:, 0].numpy(), trial)


@panel("cuecorrs", "Fig. 4b", "fig4")
def cuecorrs(runs):
    trial = 19
    # corr(psi_t2(X), w_out) of every item X, with P recorded at the start (stimulus step) of the trial
    alignment = runs.standard.alignment[trial][:, 0].numpy()
    return figures.plot_item_alignment(alignment, "Output representation\nCorr($\\psi_{t2}$(X), w$_{out}$)",
                                       f"P at the start of trial {trial + 1}")


@panel("cuecorrs_step1", "Fig. 4b", "fig4")
def cuecorrs_step1(runs):
    # corr(psi_t1(X), w_out): the feedforward representation of each item, before any recurrence
    alignment = pearson(runs.standard.psi1, runs.net.output_direction.detach().cpu()).numpy()
    return figures.plot_item_alignment(alignment, "Corr($\\psi_{t1}$(X), w$_{out}$)", "Feedforward representation")


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation: Fig. 5.

@panel("traces", "Fig. 5a", "fig5", modes=("standard", "massed", "linking", "sham"))
def traces(runs):
    run, settings = runs.main, runs.settings  # massed trials, if any, are shaded
    # m(t) is drawn as 0 at the stimulus and response steps, where it cannot change P (when r and H are reset)
    blank = settings.reset_rates_every_trial and settings.reset_trace_every_trial
    return figures.plot_traces(run.modulation[:4].numpy(), run.feedback[:4].numpy(), highlight=run.highlight,
                               blank_first_steps=blank)


@panel("zoom", "Fig. 5b", "fig5")
def zoom(runs):
    run, episode = runs.standard, min(1, runs.standard.batch - 1)
    return figures.plot_zoom(run.modulation[episode].numpy(), run.feedback[episode].numpy())


@panel("violin", "Fig. 5c", "fig5", modes=("standard", "linking", "sham"))
def violin(runs):
    run, trial = runs.main, 4  # the paper's trial 5
    # m(t) at the feedback and delay steps, split by the trial's reward (Mann-Whitney test)
    by_reward = stats.modulation_by_reward(run.modulation, run.feedback, trial)
    return figures.plot_violin(by_reward, trial)


# ---------------------------------------------------------------------------------------------------------
# Plasticity within a trial: Fig. 6.

@panel("corrchanges34", "Fig. 6", "fig6")
def corrchanges34(runs):
    run, trial, pair = runs.withheld, 18, runs.settings.barred_pair  # D,E first shown at the paper's trial 19
    first = stats.first_shown_at(run.pairs, trial, pair)
    alignment = run.alignment[trial][first].numpy()  # (episodes, 4 steps, 8 items): P after each step
    return figures.plot_alignment_changes(alignment, f"{stats.pair_name(*pair)} shown for the first time at trial "
                                                     f"{trial + 1} ({len(alignment)} episodes)")


@panel("corrchanges34_add23", "code only (Fig. 6 variant)", "fig6", when=lambda s: s.add_barred_pair is not None)
def corrchanges34_add23(runs):
    run, trial = runs.withheld_added, 18
    pair, added = runs.settings.barred_pair, runs.settings.add_barred_pair  # D,E and C,D: both unseen before
    first = stats.first_shown_at(run.pairs, trial, pair, add_pair=added)
    alignment = run.alignment[trial][first].numpy()
    return figures.plot_alignment_changes(alignment, f"{stats.pair_name(*pair)} first shown at trial {trial + 1}, "
                                                     f"{stats.pair_name(*added)} never before ({len(alignment)} episodes)")


# ---------------------------------------------------------------------------------------------------------
# Reinstatement: Figs. 7, 8, Extended Data Fig. 3.

def by_order(run, values, trial: int, pair=(3, 4)) -> dict:
    """values (batch, ...) split into the episodes showing `pair` in order and in reverse at `trial`."""
    name = stats.pair_name(*pair)
    return {name: values[stats.shown_at(run.pairs, trial, pair, ordered=True)].numpy(),
            name[::-1]: values[stats.shown_at(run.pairs, trial, pair[::-1], ordered=True)].numpy()}


@panel("originalFFcuereps_t18_DEonly", "Fig. 7a", "fig7")
def originalFFcuereps_t18_DEonly(runs):
    run, trial = runs.standard, 18
    cos = analysis.reinstatement(run.trial_rates(trial), run.psi1)  # cos(psi_t1(X), r(t)): (batch, 4, 8)
    return figures.plot_reinstatement(by_order(run, cos, trial), "Cos($\\psi_{t1}$(X), r(t))",
                                      f"Original stimulus representation, trial {trial + 1}")


@panel("adaptedFFcuereps_t18_DEonly", "Fig. 7b", "fig7")
def adaptedFFcuereps_t18_DEonly(runs):
    run, trial = runs.standard, 18
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)  # cos(psi~_t1(X), r(t))
    return figures.plot_reinstatement(by_order(run, cos, trial), "Cos($\\tilde\\psi_{t1}$(X), r(t))",
                                      f"Recoded stimulus representation, trial {trial + 1}")


@panel("adaptedFFcuereps_t1_DEonly", "code only", "fig7")
def adaptedFFcuereps_t1_DEonly(runs):
    run, trial = runs.standard, 0
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)
    return figures.plot_reinstatement(by_order(run, cos, trial), "Cos($\\tilde\\psi_{t1}$(X), r(t))",
                                      f"Recoded stimulus representation, trial {trial + 1}")


@panel("adaptedFFcuereps_t18_allpairs", "Fig. 8", "fig7")
def adaptedFFcuereps_t18_allpairs(runs):
    run, trial = runs.standard, 18
    # mean cos(psi~_t1(X), r) at the response step, for each ordered adjacent pair shown: (8 items, 14 pairs)
    table = analysis.reinstatement_by_pair(run.trial_rates(trial)[:, 1], runs.recoded.v1, run.pairs[:, trial])
    return figures.plot_reinstatement_heatmap(table, f"Recoded stimulus representations, response step of trial "
                                                     f"{trial + 1} ({run.batch} episodes)")


@panel("adaptedwo", "Extended Data Fig. 3", "fig7")
def adaptedwo(runs):
    run, trial = runs.standard, 18
    corr = pearson(run.trial_rates(trial), runs.recoded.v2).numpy()  # corr(r(t), w~_out): (batch, 4)
    response = run.response[:, trial].numpy()
    return figures.plot_recoded_output({1: corr[response > 0], -1: corr[response < 0]},
                                       f"Corr($\\tilde w_{{out}}$, r(t)), trial {trial + 1}, {run.batch} runs")


@panel("psitildetodeltapsi", "code only", "fig7")
def psitildetodeltapsi(runs):
    run, trial, item = runs.standard, 18, 2  # item C, in episodes showing D,E or E,D at the paper's trial 19
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)  # cos(psi~_t1(X), r(t)): (batch, 4, 8)
    # C's reinstatement at the response step against the change of C's alignment at the delay step
    numbers = analysis.reinstatement_vs_change(cos, run.alignment[trial], run.pairs, run.response, run.correct,
                                               trial, item, pair=runs.settings.barred_pair)
    return figures.plot_reinstatement_vs_change(**numbers, item="C", trial=trial)


# ---------------------------------------------------------------------------------------------------------
# Supplementary.

@panel("decoding", "Supplementary Fig. 5", "supplementary")
def decoding(runs):
    # per trial, a linear decoder from r at the response step, scored on the last 200 episodes
    return figures.plot_decoding(analysis.decoding(runs.standard), analysis.DECODING_TARGETS)


@panel("matrices", "code only", "supplementary")
def matrices(runs):
    net, n = runs.net, runs.net.hidden_size
    return figures.plot_matrices(net.w.detach().cpu().numpy(), net.alpha.detach().cpu().expand(n, n).numpy(),
                                 runs.standard.final_plastic.numpy())  # P at the end of episode 0


@panel("lasttrial_cues", "code only", "supplementary")
def lasttrial_cues(runs):
    run, episode = runs.standard, 0
    pair = run.pairs[episode, -1]  # the items shown in the last trial, in the order shown
    return figures.plot_last_trial_items(run.items[episode, pair].numpy(), pair.tolist())


@panel("lasttrial_rnn", "code only", "supplementary")
def lasttrial_rnn(runs):
    run, episode = runs.standard, 0
    rates = run.trial_rates(run.ntrials - 1)[episode].numpy()  # (4 steps, 200 neurons)
    return figures.plot_last_trial_rates(rates, run.pairs[episode, -1].tolist())


@panel("toymodel", "Supplementary Note 2", "toy")
def toymodel(runs):
    # item values learned from adjacent pairs, with and without reinstatement of the neighbours
    return figures.plot_toy_model(runs.toy)


@panel("massed", "Supplementary Note 9", "massed")
def massed(runs):
    run = runs.massed  # 10 trials of D,E (in that order) after learning, then the 10 test trials
    splits = stats.pair_accuracy_splits(run.test_pairs, run.test_correct)
    standard = 100 * stats.median_iqr(stats.pair_accuracy_splits(runs.standard.test_pairs,
                                                                  runs.standard.test_correct))[0]
    return figures.plot_pair_performance(splits, f"After {runs.settings.massed_trials} massed D,E trials "
                                                 "(dashed: standard)", reference=standard)


@panel("SDE_ONLYTWOLASTADJ", "code only", "onlytwolastadj", modes=("onlytwolastadj",))
def SDE_ONLYTWOLASTADJ(runs):
    run = runs.only_two_last_adjacent  # 7 items; test trials show AC, CE, EG, AD, DG
    accuracy = stats.accuracy_by_pair(run.test_pairs, run.test_correct, nbcues=7)
    shown = {pair: value for pair, value in accuracy.items() if value == value}  # drop pairs never shown
    return figures.plot_accuracy_bars(shown, "Only two last adjacent (7 items): test trials")


@panel("learning_curve", "Fig. 1f", "curve", modes=("standard",))
def learning_curve(runs):
    # the learning curves written by meta-training beside the parameter file (net.csv), if any
    curves = {name: read_curve(path) for name, path in runs.curves.items() if Path(path).exists()}
    return figures.plot_learning_curves(curves) if curves else None
