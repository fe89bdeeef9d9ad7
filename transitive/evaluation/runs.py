"""The evaluation layer: each experiment run at most once per network, batch and seed, reduced to what the
analyses use, and shared by every command, figure and notebook cell.

    runs = Runs(net, Settings(batch=2000, seed=0))
    runs.standard            # 20 learning + 10 test trials, 8 items (run on first use, then kept)
    runs.linking, runs.sham  # list linking and its control: three episodes with the state carried over
    runs.withheld            # Fig. 6's run: D,E withheld until trial 19 in half the batch
    runs.withheld_cd, runs.withheld_ef  # Extended Data Fig. 2a, 2b: C,D or E,F withheld instead
    runs.massed, runs.only_two_last_adjacent, runs.recoded, runs.toy
    runs.main                # the records of the selected experiment (Settings.experiment), as the original
                             # keeps them: for list linking and sham, those of the linking episode

The experiments are declared once each in `transitive.evaluation.experiments` (the registry); every one
draws from its own random generator, seeded from (seed, experiment), so its result does
not depend on which figure asked for it first, and the caller's global random state is never touched. A run
keeps the recipe of its episodes: what it did not keep (the rates, the item alignments of a trial) is
computed on first use by running the same episodes again, then kept (`Run.alignment[trial]`,
`Run.trial_rates(trial)`). Trials and steps are 0-based in the code; the figures and key numbers use the
paper's numbering (trials 1-30, steps 1-4).
"""
from __future__ import annotations

import dataclasses
import time
from functools import cached_property

import torch

from ..model.network import PlasticNetwork
from ..model.task import draw_items
from .choices import SIGN_TRIAL, SNAPSHOT_TRIALS
from .experiments import EXPERIMENTS, MODES, Experiment
from .records import ByTrial, Run, run_experiment, save_records  # noqa: F401 (the evaluation layer's API)
from .item_representations import fit_recoded, fix_sign
from .settings import Settings

_PRINT = object()  # log's default: print, unless progress is off


class Runs:
    """The experiments of one network, run on first use and kept (see the module docstring): one attribute per
    experiment of the registry (`runs.standard`, `runs.withheld`, ...), then the recoded fit and the toy model."""

    def __init__(self, net: PlasticNetwork, settings: Settings = Settings(), log=_PRINT, curves: dict | None = None,
                 progress: bool | None = None):
        """`curves`: name -> training log (CSV) written by meta-training, for its learning curve (Fig. 1f).
        `log`: where the lines saying what runs go (default: printed, unless progress is off); `progress`: False
        prints nothing at all, no bar and no lines (as Settings(progress=False) with log=None)."""
        if progress is not None:
            settings = dataclasses.replace(settings, progress=progress)
        self.net = net.eval()
        self.settings = settings.validate()
        self.curves = dict(curves or {})
        self._print = (print if self.settings.progress else None) if log is _PRINT else log
        self._started = time.perf_counter()
        self._made: dict[str, Run] = {}
        self._episodes = {}

    def log(self, text: str) -> None:
        if self._print:
            self._print(f"[{time.perf_counter() - self._started:6.1f} s] {text}")

    def done(self) -> list[str]:
        """The runs made so far, in the registry's order, then the recoded fit and the toy model if made."""
        return [name for name in EXPERIMENTS if name in self._made] + [
            name for name in ("recoded", "toy") if name in self.__dict__]

    def made(self) -> list[tuple[Experiment, Run]]:
        """(declaration, run) of each experiment run so far, in the registry's order."""
        return [(EXPERIMENTS[name], self._made[name]) for name in EXPERIMENTS if name in self._made]

    def run(self, name: str) -> Run:
        """The run of the experiment `name` (the registry's), made on first use (or the run that stands in for
        it with these settings, e.g. the massed run for Fig. 6's in the massed mode)."""
        if name not in self._made:
            experiment = EXPERIMENTS[name]
            other = experiment.stands_in(self.settings) if experiment.stands_in else None
            self._made[name] = self.run(other) if other else self._run(experiment)
        return self._made[name]

    # -----------------------------------------------------------------------------------------------------
    def _run(self, experiment: Experiment) -> Run:
        """Run an experiment from its own random generators, seeded from (seed, experiment): as the selected
        experiment, keeping its rates and the item alignments of the figures' trials, otherwise only what it
        declares; what it does not keep is computed when first asked for, from the recipe it keeps to run the
        same episodes again."""
        settings, net, log = self.settings, self.net, self.log
        seed = settings.seed * 1000 + experiment.seed_offset
        draws = torch.Generator().manual_seed(seed)  # items and schedules, on the CPU
        device = net.w.device
        sampling = draws if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        batch = experiment.batch(settings)
        if settings.fixed_items:
            items = draw_items(1, experiment.nbcues, generator=draws).expand(batch, -1, -1).clone()
        else:
            items = draw_items(batch, experiment.nbcues, generator=draws)
        schedules = experiment.schedules(settings, batch, draws)
        ntrials = sum(s.shape[1] for s in schedules)
        options = dict(first_test_trial=ntrials - experiment.test_trials,
                       highlight=experiment.highlight(settings) if experiment.highlight else None)
        if experiment.mode == settings.experiment:
            kept = dict(rates_from=experiment.rates_from, snapshot_trials=SNAPSHOT_TRIALS)
        else:
            kept = dict(rates_from=None, snapshot_trials=experiment.snapshot_trials)
        start = sampling.get_state()  # the sampling generator as the episodes start
        description, size = experiment.description(settings), f"{batch} episodes of {ntrials} trials"

        def again(snapshot_trials=(), rates_from=None, why=""):
            log(f"running {description} again for {why} ({size})")
            generator = torch.Generator(sampling.device)
            generator.set_state(start)
            return run_experiment(net, experiment.name, schedules, items, generator, settings, rates_from=rates_from,
                                  snapshot_trials=snapshot_trials, **options)

        started = time.perf_counter()
        log(f"running {description}: {size}")
        run = run_experiment(net, experiment.name, schedules, items, sampling, settings, **kept, **options)
        run.rerun = again
        log(f"done in {time.perf_counter() - started:.1f} s")
        return run

    @cached_property
    def recoded(self):
        """Recoded representations of the selected experiment's run (Supplementary Note 8), sign fixed against
        the response of trial 6 (0-based 5). One fit, as the original; made again only when clearly bad."""
        run = self.main
        self.log(f"fitting recoded representations: {run.psi1.shape[0]} episodes x {run.psi1.shape[1]} items, "
                 f"{self.settings.recode_steps} Adam steps")
        fit = fit_recoded(self.net, run.psi1, steps=self.settings.recode_steps,
                          attempts=self.settings.recode_attempts, seed=self.settings.seed, log=self.log,
                          progress=self.settings.progress)
        return fix_sign(fit, run.trial_rates(SIGN_TRIAL)[:, 2], run.response[:, SIGN_TRIAL])

    @cached_property
    def toy(self) -> dict:
        from .analysis import toy_model_comparison
        return toy_model_comparison(seed=self.settings.seed)

    @property
    def selected(self) -> Run:
        """The selected experiment's run with all its episodes (list linking and sham: the three)."""
        return self.run(MODES[self.settings.experiment].name)

    @property
    def main(self) -> Run:
        """The records of the selected experiment, as the original keeps them: the standard, massed or 'only
        two last adjacent' run; for list linking and sham, the linking episode (its 4 trials of D,E, then the
        scored trial; sham: one B,C trial, then the scored trial), with P carried over from the two lists."""
        episode = MODES[self.settings.experiment].main_episode
        if episode is None:
            return self.selected
        if self.settings.experiment not in self._episodes:
            self._episodes[self.settings.experiment] = self.selected.episode(episode)
        return self._episodes[self.settings.experiment]


for _experiment in EXPERIMENTS.values():  # runs.standard, runs.withheld, ...: one property per experiment
    setattr(Runs, _experiment.name, property(lambda self, name=_experiment.name: self.run(name),
                                             doc=f"The run of the experiment {_experiment.name!r}, made on first use."))
