"""The paper's figures, one short function of the runs each that returns a Figure, declared in the registry
(`transitive.figures.registry`) by `@panel`.

Each function says which run it uses, what it computes and what it plots; the package's functions do the
work (`stats`, `analysis` for the numbers, `figures` for drawing). main.ipynb shows each function's body
as its figure cell, so a reader can change a trial or a pair there and re-run it (any trial: what the run did
not keep is computed on first use).

    fig = FIGURES["SDE"].make(runs)       # or make_figures(runs, "figures", ["SDE"])

`Panel.original` lists the experiment modes in which the original notebook makes the figure; a figure is
made in those modes, and in the standard mode always (so that one run of the standard mode gives every
panel of the paper). Trials and steps are 0-based in the code (trial 18 is the paper's trial 19; the trials
the original chose are named in `transitive.evaluation.choices`); the plots label them as the paper does.
"""
from __future__ import annotations

from pathlib import Path

from .. import figures
from ..model.schedules import DE
from ..model.task import RESPONSE, STIMULUS
from ..training.trainer import read_curve
from ..evaluation import analysis, stats
from ..evaluation.analysis import by_order
from ..evaluation.choices import (CHANGE_TRIAL, caption_trial, CUE_TRIAL, DECODING_STEP, FIRST_TRIAL, VIOLIN_TRIAL, ZOOM_EPISODE,
                                  ZOOM_TRIAL)
from ..evaluation.item_representations import pearson
from .registry import (EVERY_FIGURE, FIGURES, GROUPS, LAST_TRIAL, Panel, groups, make_figures, names_for,  # noqa: F401
                       not_fixed, panel)


def _digits(pair) -> str:
    return "".join(str(k) for k in pair)


# ---------------------------------------------------------------------------------------------------------
# Behaviour: Figs. 2a, 3.

@panel("SDE", "Fig. 2a", "fig2", when=not_fixed)
def SDE(runs):
    run = runs.main  # the standard evaluation (the massed run when NBMASSEDTRIALS > 0)
    # % correct per pair on the test trials, in 10 splits of the episodes: (10, 28)
    splits = stats.pair_accuracy_splits(run.test_pairs, run.test_correct)
    return figures.plot_pair_performance(splits, "Single list")


@panel("SDE_LINKEDLISTS", "Fig. 3a", "fig3", original=("linking",), when=not_fixed)
def SDE_LINKEDLISTS(runs):
    run = runs.linking  # lists A-D and E-H learned apart, then 4 trials of D,E; the last trial is scored
    splits = stats.pair_accuracy_splits(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_pair_performance(splits, "Linked", chance=True, ylabel="% correct\n(last trial)")


@panel("SDE_LINKEDLISTS_SHAM", "Fig. 3b", "fig3", original=("sham",), when=not_fixed)
def SDE_LINKEDLISTS_SHAM(runs):
    run = runs.sham  # as list linking, but one trial of B,C instead of the four D,E trials
    splits = stats.pair_accuracy_splits(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_pair_performance(splits, "Unlinked (sham)", chance=True, ylabel="% correct\n(last trial)")


@panel("comp_treichler2003", "Fig. 3c", "fig3", original=("linking", "sham"))
def comp_treichler2003(runs):
    # % error on the scored trial by symbolic distance, linked vs unlinked (sham)
    linked = stats.linking(runs.linking.pairs[:, -1], runs.linking.correct[:, -1]).error_by_distance
    sham = stats.linking(runs.sham.pairs[:, -1], runs.sham.correct[:, -1]).error_by_distance
    return figures.plot_error_by_distance(linked, sham)


@panel("treichler", "code only (Treichler & Van Tilburg 1996)", "fig3", original=("linking", "sham"))
def treichler(runs):
    run = runs.sham if runs.settings.experiment == "sham" else runs.linking
    # % correct (median of 10 splits) of the pairs around the link, next to the macaques' error rates
    model = stats.treichler_model(run.pairs[:, -1], run.correct[:, -1])
    return figures.plot_treichler(model)


# ---------------------------------------------------------------------------------------------------------
# Representations: Fig. 4.

@panel("PCA", "Fig. 4a", "fig4")
def PCA(runs):
    run = runs.main
    trial = CUE_TRIAL  # the last learning trial (the paper's trial 20)
    rates = run.trial_rates(trial)[:, RESPONSE]  # r at the response step
    result = analysis.pca(rates, runs.net.output_direction.detach().cpu())
    pairs = run.pairs[:, trial]
    return figures.plot_pca(result, run.response[:, trial].numpy(), (pairs[:, 0] < pairs[:, 1]).numpy(),
                            run.correct[:, trial].numpy(), pairs[:, 0].numpy(), trial)


@panel("cuecorrs", "Fig. 4b", "fig4")
def cuecorrs(runs):
    run = runs.main
    trial = CUE_TRIAL
    # corr(psi_t2(X), w_out) of every item X, with P recorded at the start (stimulus step) of the trial
    alignment = run.alignment[trial][:, STIMULUS].numpy()
    return figures.plot_item_alignment(alignment, "Output representation\nCorr($\\psi_{t2}$(X), w$_{out}$)",
                                       f"P at the start of trial {caption_trial(trial)}")


@panel("cuecorrs_step1", "Fig. 4b", "fig4")
def cuecorrs_step1(runs):
    # corr(psi_t1(X), w_out): the feedforward representation of each item, before any recurrence
    alignment = pearson(runs.main.psi1, runs.net.output_direction.detach().cpu()).numpy()
    return figures.plot_item_alignment(alignment, "Corr($\\psi_{t1}$(X), w$_{out}$)", "Feedforward representation")


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation: Fig. 5.

@panel("traces", "Fig. 5a", "fig5", original=LAST_TRIAL)
def traces(runs):
    run, settings = runs.main, runs.settings  # massed trials are shaded; list linking: its linking episode
    # m(t) is drawn as 0 at the stimulus and response steps, where it cannot change P (when r and H are reset)
    blank = settings.reset_rates_every_trial and settings.reset_trace_every_trial
    return figures.plot_traces(run.modulation[:4].numpy(), run.feedback[:4].numpy(), highlight=run.highlight,
                               blank_first_steps=blank, sign=stats.sign_against_paper(run.modulation, run.feedback))


@panel("zoom", "Fig. 5b", "fig5", original=("standard", "massed", "onlytwolastadj"))
def zoom(runs):
    run = runs.main
    episode = min(ZOOM_EPISODE, run.batch - 1)  # the second example episode of traces
    trial = ZOOM_TRIAL  # the first trial shown ("trial 4" in the caption, counted from 0), then 3 more and a step
    return figures.plot_zoom(run.modulation[episode].numpy(), run.feedback[episode].numpy(),
                             first=run.check_trial(trial), sign=stats.sign_against_paper(run.modulation, run.feedback))


@panel("violin", "Fig. 5c", "fig5", original=("standard", "massed", "linking", "onlytwolastadj"))
def violin(runs):
    run = runs.main  # list linking: the linking episode, whose trial 5 is the scored one
    trial = VIOLIN_TRIAL  # the paper's trial 5
    # m(t) at the feedback and delay steps, split by the trial's reward (Mann-Whitney test)
    by_reward = stats.modulation_by_reward(run.modulation, run.feedback, trial)
    return figures.plot_violin(by_reward, trial, sign=stats.sign_against_paper(run.modulation, run.feedback))


# ---------------------------------------------------------------------------------------------------------
# Plasticity within a trial: Fig. 6.

@panel("corrchanges34", "Fig. 6", "fig6", file=lambda s: f"corrchanges{_digits(s.barred_pair)}")
def corrchanges34(runs):
    run = runs.withheld  # D,E withheld until trial 19 in half the batch (massed mode: the massed run)
    trial = CHANGE_TRIAL  # where D,E can be shown for the first time ("trial 20" in the caption)
    pair = runs.settings.barred_pair  # BARREDPAIR
    first = stats.first_shown_at(run.pairs, trial, pair)  # episodes showing the pair then, and never before
    alignment = run.alignment[trial][first].numpy()  # (episodes, 4 steps, 8 items): P after each step
    return figures.plot_alignment_changes(alignment, f"{stats.pair_name(*pair)} shown for the first time at trial "
                                                     f"{caption_trial(trial)} ({len(alignment)} episodes)")


@panel("corrchanges34_add23", "code only (Fig. 6 variant)", "fig6", when=lambda s: s.add_barred_pair is not None,
       file=lambda s: f"corrchanges{_digits(s.barred_pair)}_add{_digits(s.add_barred_pair)}")
def corrchanges34_add23(runs):
    run = runs.withheld_added  # both pairs withheld until trial 19 in half the batch (massed: the massed run)
    trial = CHANGE_TRIAL
    pair, added = runs.settings.barred_pair, runs.settings.add_barred_pair  # D,E and C,D: both unseen before
    first = stats.first_shown_at(run.pairs, trial, pair, add_pair=added)
    alignment = run.alignment[trial][first].numpy()
    return figures.plot_alignment_changes(alignment, f"{stats.pair_name(*pair)} first shown at trial {caption_trial(trial)}, "
                                                     f"{stats.pair_name(*added)} never before ({len(alignment)} episodes)")


@panel("edfig2a_corrchanges23", "Extended Data Fig. 2a", "fig6", original=())
def edfig2a_corrchanges23(runs):
    run = runs.withheld_cd  # Fig. 6 with C,D instead of D,E withheld until trial 19 in half the batch
    trial, pair = CHANGE_TRIAL, (2, 3)
    first = stats.first_shown_at(run.pairs, trial, pair)  # episodes showing C,D then, and never before
    alignment = run.alignment[trial][first].numpy()  # (episodes, 4 steps, 8 items): P after each step
    return figures.plot_alignment_changes(alignment, f"CD shown for the first time at trial {caption_trial(trial)} "
                                                     f"({len(alignment)} episodes)")


@panel("edfig2b_corrchanges45", "Extended Data Fig. 2b", "fig6", original=())
def edfig2b_corrchanges45(runs):
    run = runs.withheld_ef  # Fig. 6 with E,F instead of D,E withheld until trial 19 in half the batch
    trial, pair = CHANGE_TRIAL, (4, 5)
    first = stats.first_shown_at(run.pairs, trial, pair)  # episodes showing E,F then, and never before
    alignment = run.alignment[trial][first].numpy()
    return figures.plot_alignment_changes(alignment, f"EF shown for the first time at trial {caption_trial(trial)} "
                                                     f"({len(alignment)} episodes)")


# ---------------------------------------------------------------------------------------------------------
# Reinstatement: Figs. 7, 8, Extended Data Fig. 3.

@panel("originalFFcuereps_t18_DEonly", "Fig. 7a", "fig7")
def originalFFcuereps_t18_DEonly(runs):
    run = runs.main
    trial = CHANGE_TRIAL  # the 19th trial, "trial 20" in the paper's captions
    pair = DE  # episodes showing D,E vs E,D then
    cos = analysis.reinstatement(run.trial_rates(trial), run.psi1)  # cos(psi_t1(X), r(t)): (batch, 4, 8)
    return figures.plot_reinstatement(by_order(run, cos, trial, pair), "Cos($\\psi_{t1}$(X), r(t))",
                                      f"Original stimulus representation, trial {caption_trial(trial)}")


@panel("adaptedFFcuereps_t18_DEonly", "Fig. 7b", "fig7")
def adaptedFFcuereps_t18_DEonly(runs):
    run = runs.main
    trial = CHANGE_TRIAL
    pair = DE
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)  # cos(psi~_t1(X), r(t))
    return figures.plot_reinstatement(by_order(run, cos, trial, pair), "Cos($\\tilde\\psi_{t1}$(X), r(t))",
                                      f"Recoded stimulus representation, trial {caption_trial(trial)}")


@panel("adaptedFFcuereps_t1_DEonly", "code only", "fig7")
def adaptedFFcuereps_t1_DEonly(runs):
    run = runs.main
    trial = FIRST_TRIAL  # before any learning (the paper's trial 1)
    pair = DE
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)
    return figures.plot_reinstatement(by_order(run, cos, trial, pair), "Cos($\\tilde\\psi_{t1}$(X), r(t))",
                                      f"Recoded stimulus representation, trial {caption_trial(trial)}")


@panel("adaptedFFcuereps_t18_allpairs", "Fig. 8", "fig7")
def adaptedFFcuereps_t18_allpairs(runs):
    run = runs.main
    trial = CHANGE_TRIAL
    # mean cos(psi~_t1(X), r) at the response step, for each ordered adjacent pair shown: (8 items, 14 pairs)
    rates = run.trial_rates(trial)[:, RESPONSE]
    table = analysis.reinstatement_by_pair(rates, runs.recoded.v1, run.pairs[:, trial])
    return figures.plot_reinstatement_heatmap(table, f"Recoded stimulus representations, response step of trial "
                                                     f"{caption_trial(trial)} ({run.batch} episodes)")


@panel("adaptedwo", "Extended Data Fig. 3", "fig7")
def adaptedwo(runs):
    run = runs.main
    trial = CHANGE_TRIAL
    corr = pearson(run.trial_rates(trial), runs.recoded.v2).numpy()  # corr(r(t), w~_out): (batch, 4)
    response = run.response[:, trial].numpy()
    return figures.plot_recoded_output({1: corr[response > 0], -1: corr[response < 0]},
                                       f"Corr($\\tilde w_{{out}}$, r(t)), trial {caption_trial(trial)}, {run.batch} runs")


@panel("psitildetodeltapsi", "code only", "fig7")
def psitildetodeltapsi(runs):
    run = runs.main
    trial = CHANGE_TRIAL
    pair = runs.settings.barred_pair  # episodes showing it (either order) at that trial
    item = 2  # C
    cos = analysis.reinstatement(run.trial_rates(trial), runs.recoded.v1)  # cos(psi~_t1(X), r(t)): (batch, 4, 8)
    # the item's reinstatement at the response step against the change of its alignment at the delay step
    numbers = analysis.reinstatement_vs_change(cos, run.alignment[trial], run.pairs, run.response, run.correct,
                                               trial, item, pair=pair)
    return figures.plot_reinstatement_vs_change(**numbers, item=stats.item_letters()[item], trial=trial,
                                                pair=stats.pair_name(*pair))


# ---------------------------------------------------------------------------------------------------------
# Supplementary.

@panel("decoding", "Supplementary Fig. 5", "supplementary")
def decoding(runs):
    run = runs.main  # all its trials (40 with 10 massed trials, shaded)
    step = DECODING_STEP  # r at the response step
    # per trial, a linear decoder from r at that step, scored on the last 200 episodes
    table = analysis.decoding(run, step=step)
    return figures.plot_decoding(table, analysis.DECODING_TARGETS, run.first_test_trial, highlight=run.highlight)


@panel("matrices", "code only", "supplementary", original=LAST_TRIAL)
def matrices(runs):
    net, n, run = runs.net, runs.net.hidden_size, runs.main
    return figures.plot_matrices(net.w.detach().cpu().numpy(), net.alpha.detach().cpu().expand(n, n).numpy(),
                                 run.final_plastic.numpy())  # P at the end of the run, in episode 1


@panel("lasttrial_cues", "code only", "supplementary", original=LAST_TRIAL)
def lasttrial_cues(runs):
    run, episode = runs.main, 0
    trial = run.ntrials - 1  # the last trial (list linking: the scored one)
    shown = run.pairs[episode, run.check_trial(trial)]  # the items shown then, in the order shown
    return figures.plot_last_trial_items(run.items[episode, shown].numpy(), shown.tolist())


@panel("lasttrial_rnn", "code only", "supplementary", original=LAST_TRIAL)
def lasttrial_rnn(runs):
    run, episode = runs.main, 0
    trial = run.ntrials - 1
    rates = run.trial_rates(trial)[episode].numpy()  # (4 steps, 200 neurons)
    return figures.plot_last_trial_rates(rates, run.pairs[episode, trial].tolist())


@panel("massed", "Supplementary Note 9", "massed", original=())
def massed(runs):
    run = runs.massed  # 10 trials of D,E (MASSEDPAIR, in that order) after learning, then the 10 test trials
    splits = stats.pair_accuracy_splits(run.test_pairs, run.test_correct)
    standard = 100 * stats.median_iqr(stats.pair_accuracy_splits(runs.standard.test_pairs,
                                                                  runs.standard.test_correct))[0]
    shown = "".join(stats.item_letters()[k] for k in runs.settings.massed_pair)
    return figures.plot_pair_performance(splits, f"After {runs.settings.massed_trials} massed {shown} trials "
                                                 "(dashed: standard)", reference=standard)


@panel("toymodel", "Supplementary Note 2", "toy", original=())
def toymodel(runs):
    # item values learned from adjacent pairs, with and without reinstatement of the neighbours
    return figures.plot_toy_model(runs.toy)


@panel("learning_curve", "Fig. 1f", "curve", original=())
def learning_curve(runs):
    # the learning curves written by meta-training beside the parameter file (net.csv), if any
    curves = {name: read_curve(path) for name, path in runs.curves.items() if Path(path).exists()}
    return figures.plot_learning_curves(curves) if curves else None
