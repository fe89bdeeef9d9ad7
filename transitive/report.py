"""All of the paper's evaluation figures for one network: runs the experiments when a figure first needs
them, saves every figure as PNG and PDF under the original file names, and writes a table of key numbers.

    ev = Evaluation(net, "figures", Options(batch=2000))
    ev.group("fig2")          # -> [figures/SDE.png, figures/SDE.pdf]
    ev.make_all()             # every figure, then key_numbers.json / key_numbers.md

Each experiment seeds the random number generator itself (seed + a fixed offset), so its result does not
depend on which figure was asked for first.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from . import analysis as an
from . import figures as fg
from .network import PlasticNetwork
from .representations import fit_recoded, fix_sign, pearson
from .task import massed_schedule, only_two_last_adjacent_schedule, standard_schedule, withheld_pair_schedule

RESPONSE_STEP = 1
FIG6_TRIAL = 18  # the trial where D, E is first shown (withheld-pair schedule): the paper's "trial 20"
PCA_TRIAL = 19  # the last learning trial
VIOLIN_TRIAL = 4
SIGN_TRIAL = 5  # v2's sign is fixed against the response of this trial


@dataclass
class Options:
    batch: int = 2000
    linking_batch: int | None = None  # default: 2 * batch (4000 for the paper's 2000)
    seed: int = 0
    chunk: int = 128
    recode_steps: int = 1000
    recode_attempts: int = 3
    fixed_items: bool = False  # FIXEDCUES
    reset_plastic_every_trial: bool = False  # RESETPWEVERYTRIAL (the episode runner must implement it)
    withhold_in_standard: bool = False  # HALFNOBARREDPAIRUNTILT18: the standard run is the withheld-pair one
    massed_trials: int = 10  # NBMASSEDTRIALS for the massed-presentation figure
    curves: dict = field(default_factory=dict)  # name -> learning-curve CSV, for learning_curve

    def validate(self) -> None:
        if self.batch < 20:
            raise ValueError(f"batch must be at least 20 (10 splits of 2 episodes), not {self.batch}")
        if self.linking_batch is not None and self.linking_batch < 20:
            raise ValueError(f"linking batch must be at least 20, not {self.linking_batch}")
        if self.massed_trials < 1:
            raise ValueError("massed_trials must be at least 1")
        if self.recode_steps < 1 or self.recode_attempts < 1:
            raise ValueError("recode_steps and recode_attempts must be positive")


GROUPS = {
    "fig2": ["SDE"],
    "fig3": ["SDE_LINKEDLISTS", "SDE_LINKEDLISTS_SHAM", "comp_treichler2003", "treichler"],
    "linking": ["SDE_LINKEDLISTS"],
    "sham": ["SDE_LINKEDLISTS_SHAM"],
    "fig4": ["PCA", "cuecorrs", "cuecorrs_step1"],
    "fig5": ["traces", "zoom", "violin"],
    "fig6": ["corrchanges34"],
    "fig7": ["originalFFcuereps_t18_DEonly", "adaptedFFcuereps_t18_DEonly", "adaptedFFcuereps_t18_allpairs",
             "adaptedwo", "adaptedFFcuereps_t1_DEonly", "psitildetodeltapsi"],
    "supplementary": ["decoding", "matrices", "lasttrial_cues", "lasttrial_rnn"],
    "toy": ["toymodel"],
    "massed": ["massed"],
    "onlytwolastadj": ["SDE_ONLYTWOLASTADJ"],
    "curve": ["learning_curve"],
}
STANDARD_GROUPS = ["fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "supplementary", "toy"]


class Evaluation:
    def __init__(self, net: PlasticNetwork, out, options: Options | None = None, log=print):
        self.net = net.eval()
        self.out = Path(out)
        self.options = options or Options()
        self.options.validate()
        self._started = time.perf_counter()
        self._print = log
        self.numbers: dict = {}

    def log(self, text: str) -> None:
        if self._print:
            self._print(f"[{time.perf_counter() - self._started:6.1f} s] {text}")

    # -----------------------------------------------------------------------------------------------------
    # Experiments, run on first use.
    def _seed(self, offset: int) -> None:
        torch.manual_seed(self.options.seed * 1000 + offset)

    def _items(self, batch: int, nbcues: int = an.ITEMS):
        return an.fixed_items(batch, nbcues) if self.options.fixed_items else None

    def _run(self, what: str, pairs: torch.Tensor, nbcues: int = an.ITEMS, **kwargs) -> an.EvalData:
        self.log(f"running {what}: {pairs.shape[0]} episodes of {pairs.shape[1]} trials")
        return an.run_evaluation(self.net, pairs, self._items(pairs.shape[0], nbcues), nbcues,
                                 chunk=self.options.chunk,
                                 reset_plastic_every_trial=self.options.reset_plastic_every_trial, **kwargs)

    @cached_property
    def standard(self) -> an.EvalData:
        self._seed(0)
        batch = self.options.batch
        if self.options.withhold_in_standard:
            return self._run("the standard evaluation (D,E withheld until trial 18 in half the batch)",
                             withheld_pair_schedule(batch))
        return self._run("the standard evaluation", standard_schedule(batch, an.ITEMS))

    @cached_property
    def withheld(self) -> an.EvalData:
        if self.options.withhold_in_standard:
            return self.standard
        self._seed(1)
        return self._run("the withheld-pair evaluation (Fig. 6)", withheld_pair_schedule(self.options.batch),
                         alignment_trials=(FIG6_TRIAL,), keep_rates=False)

    def _linking(self, sham: bool, offset: int) -> an.LinkingData:
        self._seed(offset)
        batch = self.options.linking_batch or 2 * self.options.batch
        self.log(f"running {'sham' if sham else 'list'} linking: {batch} x 3 episodes")
        return an.run_linking(self.net, batch, sham, self._items(batch), self.options.chunk,
                              self.options.reset_plastic_every_trial)

    @cached_property
    def linking(self) -> an.LinkingData:
        return self._linking(False, 2)

    @cached_property
    def sham(self) -> an.LinkingData:
        return self._linking(True, 3)

    @cached_property
    def massed(self) -> an.EvalData:
        self._seed(4)
        return self._run(f"massed presentation ({self.options.massed_trials} D,E trials)",
                         massed_schedule(self.options.batch, self.options.massed_trials),
                         alignment_trials=(), keep_rates=False)

    @cached_property
    def only_two_last_adjacent(self) -> an.EvalData:
        self._seed(5)
        return self._run("'only two last adjacent' (7 items)", only_two_last_adjacent_schedule(self.options.batch),
                         nbcues=7, alignment_trials=(), keep_rates=False)

    @cached_property
    def recoded(self):
        """Recoded representations of the standard run (Supplementary Note 8), sign fixed."""
        data = self.standard
        self.log(f"fitting recoded representations: {data.psi1.shape[0]} episodes x {data.psi1.shape[1]} items, "
                 f"{self.options.recode_steps} Adam steps")
        fit = fit_recoded(self.net, data.psi1, steps=self.options.recode_steps,
                          attempts=self.options.recode_attempts, seed=self.options.seed, log=self.log)
        fit = fix_sign(fit, data.trial_rates(SIGN_TRIAL)[:, 2], data.response[:, SIGN_TRIAL])
        self.numbers["recoded_fit"] = {"loss": fit.loss, "target": fit.target, "attempts": fit.attempts,
                                       "mean_cosine": fit.mean_cosine, "sign_flipped": fit.sign_flipped}
        return fit

    @cached_property
    def toy(self) -> dict:
        return an.toy_model_comparison(seed=self.options.seed)

    # -----------------------------------------------------------------------------------------------------
    # Figures.
    def figure(self, name: str) -> list[Path]:
        fig = getattr(self, "_fig_" + name)()
        if fig is None:
            return []
        paths = fg.save_figure(fig, self.out, name)
        self.log(f"wrote {paths[0]}")
        return paths

    def group(self, name: str) -> list[Path]:
        if name not in GROUPS:
            raise ValueError(f"unknown figure group {name!r}; known: {', '.join(GROUPS)}")
        return [p for figure in GROUPS[name] for p in self.figure(figure)]

    def make_all(self, groups=None) -> list[Path]:
        groups = list(STANDARD_GROUPS if groups is None else groups)
        if self.options.curves and "curve" not in groups:
            groups.append("curve")
        paths = [p for g in groups for p in self.group(g)]
        return paths + self.write_key_numbers()

    def _test_trials(self, data: an.EvalData, count: int = 10):
        return data.pairs[:, -count:], data.correct[:, -count:]

    def _fig_SDE(self):
        pairs, correct = self._test_trials(self.standard)
        return fg.plot_pair_performance(an.pair_accuracy_splits(pairs, correct), "Single list")

    def _fig_SDE_LINKEDLISTS(self):
        splits = an.pair_accuracy_splits(self.linking.pairs, self.linking.correct)
        return fg.plot_pair_performance(splits, "Linked", chance=True, ylabel="% correct\n(last trial)")

    def _fig_SDE_LINKEDLISTS_SHAM(self):
        splits = an.pair_accuracy_splits(self.sham.pairs, self.sham.correct)
        return fg.plot_pair_performance(splits, "Unlinked (sham)", chance=True, ylabel="% correct\n(last trial)")

    def _error_by_distance(self, data: an.LinkingData) -> dict:
        return {d: 1 - a for d, a in an.accuracy_by_distance(data.pairs, data.correct).items()}

    def _fig_comp_treichler2003(self):
        return fg.plot_error_by_distance(self._error_by_distance(self.linking), self._error_by_distance(self.sham))

    def _fig_treichler(self):
        return fg.plot_treichler(an.treichler_model(self.linking))

    def _fig_PCA(self):
        data = self.standard
        result = an.pca(data.trial_rates(PCA_TRIAL)[:, RESPONSE_STEP], self.net.output_direction.detach().cpu())
        self.numbers["pca"] = {"trial": PCA_TRIAL, "pc1_wout_corr": result["pc1_wout_corr"],
                               "explained_variance": result["explained"].tolist()}
        pairs = data.pairs[:, PCA_TRIAL]
        return fg.plot_pca(result, data.response[:, PCA_TRIAL].numpy(), (pairs[:, 0] < pairs[:, 1]).numpy(),
                           data.correct[:, PCA_TRIAL].numpy(), pairs[:, 0].numpy(), PCA_TRIAL)

    def _fig_cuecorrs(self):
        alignment = self.standard.alignment[PCA_TRIAL][:, 0].numpy()  # P at step 0 of trial 19
        return fg.plot_item_alignment(alignment, "Output representation\nCorr($\\psi_{t2}$(X), w$_{out}$)",
                                      f"P at the start of trial {PCA_TRIAL}")

    def _fig_cuecorrs_step1(self):
        alignment = pearson(self.standard.psi1, self.net.output_direction.detach().cpu()).numpy()
        return fg.plot_item_alignment(alignment, "Corr($\\psi_{t1}$(X), w$_{out}$)", "Feedforward representation")

    def _fig_traces(self):
        data = self.standard
        return fg.plot_traces(data.modulation[:4].numpy(), data.feedback[:4].numpy())

    def _fig_zoom(self):
        data = self.standard
        k = min(1, data.batch - 1)
        return fg.plot_zoom(data.modulation[k].numpy(), data.feedback[k].numpy())

    def _fig_violin(self):
        by_reward = an.modulation_by_reward(self.standard, VIOLIN_TRIAL)
        self.log(f"m(t) at trial {VIOLIN_TRIAL} by reward, Mann-Whitney: step 2 (paper 3) "
                 f"{fg.format_p(by_reward[2]['p'])}, step 3 (paper 4) {fg.format_p(by_reward[3]['p'])}")
        return fg.plot_violin(by_reward, VIOLIN_TRIAL)

    def _fig6_alignment(self) -> np.ndarray:
        data = self.withheld
        first = an.first_shown_at(data.pairs, FIG6_TRIAL)
        return data.alignment[FIG6_TRIAL][first].numpy()

    def _fig_corrchanges34(self):
        alignment = self._fig6_alignment()
        return fg.plot_alignment_changes(alignment, f"D,E or E,D shown for the first time at trial {FIG6_TRIAL} "
                                                    f"({len(alignment)} episodes)")

    def _by_order(self, values: torch.Tensor, trial: int) -> dict:
        pairs = self.standard.pairs
        return {"DE": values[an.shown_at(pairs, trial, (3, 4), ordered=True)].numpy(),
                "ED": values[an.shown_at(pairs, trial, (4, 3), ordered=True)].numpy()}

    def _fig_originalFFcuereps_t18_DEonly(self):
        cos = an.reinstatement(self.standard.trial_rates(18), self.standard.psi1)
        return fg.plot_reinstatement(self._by_order(cos, 18), "Cos($\\psi_{t1}$(X), r(t))",
                                     "Original stimulus representation, trial 18")

    def _recoded_reinstatement(self, trial: int) -> torch.Tensor:
        return an.reinstatement(self.standard.trial_rates(trial), self.recoded.v1)

    def _fig_adaptedFFcuereps_t18_DEonly(self):
        return fg.plot_reinstatement(self._by_order(self._recoded_reinstatement(18), 18),
                                     "Cos($\\tilde\\psi_{t1}$(X), r(t))", "Recoded stimulus representation, trial 18")

    def _fig_adaptedFFcuereps_t1_DEonly(self):
        return fg.plot_reinstatement(self._by_order(self._recoded_reinstatement(0), 0),
                                     "Cos($\\tilde\\psi_{t1}$(X), r(t))", "Recoded stimulus representation, trial 0")

    def _fig_adaptedFFcuereps_t18_allpairs(self):
        data = self.standard
        table = an.reinstatement_by_pair(data.trial_rates(18)[:, RESPONSE_STEP], self.recoded.v1, data.pairs[:, 18])
        return fg.plot_reinstatement_heatmap(table, f"Recoded stimulus representations, step 2 of trial 18 "
                                                    f"({data.batch} episodes)")

    def _recoded_output(self) -> dict:
        data = self.standard
        corr = pearson(data.trial_rates(18), self.recoded.v2).numpy()  # (batch, 4)
        response = data.response[:, 18].numpy()
        return {1: corr[response > 0], -1: corr[response < 0]}

    def _fig_adaptedwo(self):
        return fg.plot_recoded_output(self._recoded_output(),
                                      f"Corr($\\tilde w_{{out}}$, r(t)), trial 18, {self.standard.batch} runs")

    def _fig_psitildetodeltapsi(self):
        data, item = self.standard, 2  # C
        shown = an.shown_at(data.pairs, 18)
        x = self._recoded_reinstatement(18)[shown, RESPONSE_STEP, item].numpy()
        alignment = data.alignment[18][shown]
        y = (alignment[:, 3, item] - alignment[:, 2, item]).numpy()
        order = np.where(data.pairs[shown, 18, 0].numpy() == 3, 1, -1)
        return fg.plot_reinstatement_vs_change(x * order, y, order, "C", 18)

    def _fig_decoding(self):
        return fg.plot_decoding(an.decoding(self.standard), an.DECODING_TARGETS)

    def _fig_matrices(self):
        n = self.net.hidden_size
        return fg.plot_matrices(self.net.w.detach().cpu().numpy(), self.net.alpha.detach().cpu().expand(n, n).numpy(),
                                self.standard.final_plastic.numpy())

    def _last_trial_examples(self, count: int = 8):
        data = self.standard
        count = min(count, data.batch)
        pairs = data.pairs[:count, -1]
        names = [f"ep {b}: {an.item_letters()[i]}{an.item_letters()[j]}" for b, (i, j) in enumerate(pairs.tolist())]
        return data, pairs, names, count

    def _fig_lasttrial_cues(self):
        data, pairs, names, count = self._last_trial_examples()
        stimuli = data.items[torch.arange(count)[:, None], pairs]  # (count, 2, 15)
        return fg.plot_last_trial_items(stimuli.numpy(), names)

    def _fig_lasttrial_rnn(self):
        data, _, names, count = self._last_trial_examples(4)
        return fg.plot_last_trial_rates(data.trial_rates(data.ntrials - 1)[:count].numpy(), names)

    def _fig_massed(self):
        pairs, correct = self._test_trials(self.massed)
        reference = 100 * an.median_iqr(an.pair_accuracy_splits(*self._test_trials(self.standard)))[0]
        return fg.plot_pair_performance(an.pair_accuracy_splits(pairs, correct),
                                        f"After {self.options.massed_trials} massed D,E trials "
                                        f"(dashed: standard)", reference=reference)

    def _fig_SDE_ONLYTWOLASTADJ(self):
        pairs, correct = self._test_trials(self.only_two_last_adjacent)
        accuracy = {k: v for k, v in an.accuracy_per_pair(pairs, correct, 7).items() if not np.isnan(v)}
        return fg.plot_accuracy_bars(accuracy, "Only two last adjacent (7 items): test trials")

    def _fig_toymodel(self):
        return fg.plot_toy_model(self.toy)

    def _fig_learning_curve(self):
        from .training import read_curve
        curves = {name: read_curve(path) for name, path in self.options.curves.items() if Path(path).exists()}
        if not curves:
            self.log("no learning curve: meta-training writes one beside the parameter file (.csv)")
            return None
        return fg.plot_learning_curves(curves)

    # -----------------------------------------------------------------------------------------------------
    # Key numbers.
    def key_numbers(self) -> dict:
        """The numbers the figures show, for whatever experiments have been run (nothing new is run)."""
        numbers = dict(self.numbers)
        done = self.__dict__
        letters = an.item_letters()
        if "standard" in done:
            data = self.standard
            pairs, correct = self._test_trials(data)
            distance = (pairs[..., 0] - pairs[..., 1]).abs()
            by_pair = an.accuracy_per_pair(pairs, correct)
            numbers["standard"] = {
                "episodes": data.batch, "test_accuracy": correct.float().mean().item(),
                "adjacent_accuracy": correct[distance == 1].float().mean().item(),
                "nonadjacent_accuracy": correct[distance > 1].float().mean().item(),
                "accuracy_by_distance": an.accuracy_by_distance(pairs, correct),
                "end_anchor": an.end_anchor(by_pair), "accuracy_by_pair": by_pair,
                "modulation": an.modulation_summary(data),
                "cuecorrs_t2_trial19": dict(zip(letters, data.alignment[PCA_TRIAL][:, 0].mean(0).tolist())),
            }
            violin = an.modulation_by_reward(data, VIOLIN_TRIAL)
            numbers["violin_trial4"] = {f"step{s}": {"mean_rewarded": float(np.mean(v["values"][1])) if len(v["values"][1]) else None,
                                                     "mean_unrewarded": float(np.mean(v["values"][-1])) if len(v["values"][-1]) else None,
                                                     "mann_whitney_p": v["p"]} for s, v in violin.items()}
        if "withheld" in done:
            alignment = self._fig6_alignment()
            numbers["fig6_first_DE_at_trial18"] = {
                "episodes": len(alignment),
                "change_at_step2": dict(zip(letters, (alignment[:, 2] - alignment[:, 1]).mean(0).tolist())),
                "change_at_step3": dict(zip(letters, (alignment[:, 3] - alignment[:, 2]).mean(0).tolist()))}
        if "recoded" in done:
            by_order = self._by_order(self._recoded_reinstatement(18), 18)
            numbers["fig7b_recoded_at_step1_trial18"] = {
                order: {"episodes": len(v), **dict(zip(letters, v[:, RESPONSE_STEP].mean(0).tolist()))}
                for order, v in by_order.items() if len(v)}
            numbers["edfig3_recoded_output_trial18"] = {
                ("choose1" if s > 0 else "choose2"): v.mean(0).tolist() for s, v in self._recoded_output().items() if len(v)}
        for name in ("linking", "sham"):
            if name in done:
                data = getattr(self, name)
                numbers[name] = {"episodes": len(data.correct), "accuracy": data.correct.float().mean().item(),
                                 "across_list_accuracy": an.linking_across_lists(data),
                                 "error_by_distance": self._error_by_distance(data),
                                 "accuracy_by_pair": an.accuracy_per_pair(data.pairs, data.correct)}
        if "massed" in done:
            pairs, correct = self._test_trials(self.massed)
            numbers["massed"] = {"massed_trials": self.options.massed_trials,
                                 "test_accuracy": correct.float().mean().item(),
                                 "accuracy_by_pair": an.accuracy_per_pair(pairs, correct)}
        if "toy" in done:
            numbers["toy_model"] = {rule: {"mean_corr_without": float(r["correlation"][False].mean()),
                                           "mean_corr_with": float(r["correlation"][True].mean()),
                                           "mann_whitney_p": r["p"]} for rule, r in self.toy.items()}
        return numbers

    def save_records(self) -> list[Path]:
        """outcomes_0.npz and allrates_thisep_0.npy of the standard run, as the original's EVAL mode wrote
        them (the rates take about 190 MB for 2000 episodes)."""
        paths = an.save_records(self.standard, self.out)
        self.log(f"wrote {paths[0]} and {paths[1]}")
        return paths

    def write_key_numbers(self) -> list[Path]:
        numbers = self.key_numbers()
        self.out.mkdir(parents=True, exist_ok=True)
        paths = [self.out / "key_numbers.json", self.out / "key_numbers.md"]
        paths[0].write_text(json.dumps(numbers, indent=1, default=_jsonable) + "\n")
        paths[1].write_text(key_numbers_markdown(numbers))
        self.log(f"wrote {paths[0]} and {paths[1]}")
        return paths


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _flatten(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, (list, tuple)):
        rows.append((prefix, ", ".join(_format(v) for v in value)))
    else:
        rows.append((prefix, _format(value)))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def key_numbers_markdown(numbers: dict) -> str:
    rows: list = []
    _flatten("", numbers, rows)
    lines = ["# Key numbers", "", "Trials and steps are 0-based (the paper's step k is step k-1 here).", "",
             "| quantity | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"
