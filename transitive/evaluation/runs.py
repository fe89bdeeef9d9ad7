"""The evaluation layer: each experiment run at most once per network, batch and seed, reduced to what the
analyses use, and shared by every command, figure and notebook cell.

    runs = Runs(net, Settings(batch=2000, seed=0))
    runs.standard            # 20 learning + 10 test trials, 8 items (run on first use, then kept)
    runs.linking, runs.sham  # list linking and its control: three episodes with the state carried over
    runs.withheld            # Fig. 6's run: D,E withheld until trial 19 in half the batch
    runs.massed, runs.only_two_last_adjacent, runs.recoded, runs.toy
    runs.main                # the records of the selected experiment (Settings.experiment), as the original
                             # keeps them: for list linking and sham, those of the linking episode

Every experiment draws from its own random generator, seeded from (seed, experiment), so its result does
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
from ..model.schedules import (linking_schedules, massed_schedule, only_two_last_adjacent_schedule,
                               withheld_pair_schedule)
from ..model.task import ITEMS, draw_items, standard_schedule
from .choices import CHANGE_TRIAL, SIGN_TRIAL, SNAPSHOT_TRIALS, ChoiceError
from .records import ByTrial, Run, run_experiment, save_records  # noqa: F401 (the evaluation layer's API)
from .representations import fit_recoded, fix_sign
from .settings import EXPERIMENTS, SEED_OFFSETS, Settings  # noqa: F401 (the evaluation layer's API)
from .stats import pair_name

# ---------------------------------------------------------------------------------------------------------

_PRINT = object()  # log's default: print, unless progress is off


class Runs:
    """The experiments of one network, run on first use and kept (see the module docstring)."""

    def __init__(self, net: PlasticNetwork, settings: Settings = Settings(), log=_PRINT, curves: dict | None = None,
                 progress: bool | None = None):
        """`curves`: name -> learning-curve CSV written by meta-training (for Fig. 1f). `log`: where the lines
        saying what runs go (default: printed, unless progress is off); `progress`: False prints nothing at
        all, no bar and no lines (as Settings(progress=False) with log=None)."""
        if progress is not None:
            settings = dataclasses.replace(settings, progress=progress)
        self.net = net.eval()
        self.settings = settings.validate()
        self.curves = dict(curves or {})
        self._print = (print if self.settings.progress else None) if log is _PRINT else log
        self._started = time.perf_counter()
        self._episodes = {}

    def log(self, text: str) -> None:
        if self._print:
            self._print(f"[{time.perf_counter() - self._started:6.1f} s] {text}")

    def done(self) -> list[str]:
        """The runs made so far (each a cached property of this class), in the order they are defined."""
        return [name for name, value in vars(type(self)).items()
                if isinstance(value, cached_property) and name in self.__dict__]

    # -----------------------------------------------------------------------------------------------------
    def _generators(self, experiment: str) -> tuple[torch.Generator, torch.Generator]:
        """(generator for items and schedules, on the CPU; generator for the episode's sampling, on the
        network's device), both seeded from (seed, experiment)."""
        seed = self.settings.seed * 1000 + SEED_OFFSETS[experiment]
        draws = torch.Generator().manual_seed(seed)
        device = self.net.w.device
        sampling = draws if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        return draws, sampling

    def _items(self, batch: int, generator, nbcues: int = ITEMS) -> torch.Tensor:
        if self.settings.fixed_items:
            return draw_items(1, nbcues, generator=generator).expand(batch, -1, -1).clone()
        return draw_items(batch, nbcues, generator=generator)

    def _run(self, experiment: str, description: str, make_schedules, nbcues: int = ITEMS, batch: int | None = None,
             rates_from: int | None = None, snapshot_trials=(), **options) -> Run:
        """Run an experiment, keeping its rates (of trial `rates_from` and later; None: none) and the item
        alignments of `snapshot_trials`; what it does not keep is computed when first asked for, from the
        recipe the run keeps to run the same episodes again."""
        batch = batch or self.settings.batch
        draws, sampling = self._generators(experiment)
        items = self._items(batch, draws, nbcues)
        schedules = make_schedules(batch, draws)
        start = sampling.get_state()  # the sampling generator as the episodes start
        net, settings, log = self.net, self.settings, self.log
        size = f"{batch} episodes of {sum(s.shape[1] for s in schedules)} trials"

        def again(snapshot_trials=(), rates_from=None, why=""):
            log(f"running {description} again for {why} ({size})")
            generator = torch.Generator(sampling.device)
            generator.set_state(start)
            return run_experiment(net, experiment, schedules, items, generator, settings, rates_from=rates_from,
                                  snapshot_trials=snapshot_trials, **options)

        started = time.perf_counter()
        self.log(f"running {description}: {size}")
        run = run_experiment(net, experiment, schedules, items, sampling, settings, rates_from=rates_from,
                             snapshot_trials=snapshot_trials, **options)
        run.rerun = again
        self.log(f"done in {time.perf_counter() - started:.1f} s")
        return run

    def _kept(self, experiment: str, rates_from: int = 0) -> dict:
        """What a run keeps as it runs: as the selected experiment's run, its rates and the item alignments of
        the figures' trials; otherwise nothing (computed if ever asked for)."""
        if self.settings.experiment != experiment:
            return {}
        return {"rates_from": rates_from, "snapshot_trials": SNAPSHOT_TRIALS}

    # The runs, in the order `done` lists them.
    @cached_property
    def standard(self) -> Run:
        if self.settings.withhold_in_standard:
            return self._withheld("standard", main=True)
        return self._run("standard", "the standard evaluation",
                         lambda batch, g: [standard_schedule(batch, ITEMS, generator=g)], **self._kept("standard"))

    def _withheld(self, experiment: str, add_pair=None, main: bool = False) -> Run:
        pair = self.settings.barred_pair
        name = pair_name(*pair) + ("" if add_pair is None else " and " + pair_name(*add_pair))
        # Fig. 6 needs the item alignments of its trial: kept as it runs, also when not the selected experiment's
        # (then only those: the other trials' are computed if ever asked for)
        return self._run(experiment, f"the evaluation with {name} withheld until trial 19 in half the batch",
                         lambda batch, g: [withheld_pair_schedule(batch, pair=pair, add_pair=add_pair, generator=g)],
                         rates_from=0 if main else None, snapshot_trials=SNAPSHOT_TRIALS if main else (CHANGE_TRIAL,))

    @cached_property
    def withheld(self) -> Run:
        """Fig. 6's run, where BARREDPAIR is first shown at trial 19 in many episodes. Standard mode: a run
        that withholds it before trial 19 in the batch elements above batch // 2 (HALFNOBARREDPAIRUNTILT18:
        the standard run itself). Massed mode: the massed run, as the original (which selects the episodes
        that happen to show it first at trial 19)."""
        if self.settings.experiment == "massed":
            return self.massed
        if self.settings.withhold_in_standard:
            return self.standard
        return self._withheld("withheld")

    @cached_property
    def withheld_added(self) -> Run:
        """corrchanges34_add23: the barred pair and ADDBARREDPAIR both withheld before trial 19 in half the
        batch (the original selects such episodes from the run of Fig. 6; in the massed mode, so do we)."""
        if self.settings.add_barred_pair is None:
            raise ChoiceError("no added barred pair (ADDBARREDPAIR with SHOWALLSELECTS = False) in these settings")
        if self.settings.experiment == "massed":
            return self.massed
        return self._withheld("withheld_added", self.settings.add_barred_pair)

    def _linking(self, sham: bool) -> Run:
        experiment = "sham" if sham else "linking"
        first_half_first = self.settings.first_half_first
        run = self._run(experiment, "sham linking" if sham else "list linking",
                        lambda b, g: linking_schedules(b, sham=sham, first_half_first=first_half_first, generator=g),
                        batch=self.settings.linking_episodes, **self._kept(experiment, rates_from=20))
        run.first_test_trial = run.ntrials - 1
        return run

    @cached_property
    def linking(self) -> Run:
        return self._linking(sham=False)

    @cached_property
    def sham(self) -> Run:
        return self._linking(sham=True)

    @cached_property
    def massed(self) -> Run:
        k, pair = self.settings.massed_trials, self.settings.massed_pair
        return self._run("massed", f"massed presentation ({k} trials of one pair after learning)",
                         lambda batch, g: [massed_schedule(batch, k, pair=pair, generator=g)],
                         first_test_trial=20 + k, highlight=(20, 20 + k - 1), **self._kept("massed"))

    @cached_property
    def only_two_last_adjacent(self) -> Run:
        return self._run("onlytwolastadj", "'only two last adjacent' (7 items)",
                         lambda batch, g: [only_two_last_adjacent_schedule(batch, generator=g)], nbcues=7,
                         **self._kept("onlytwolastadj"))

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
        return getattr(self, {"onlytwolastadj": "only_two_last_adjacent"}.get(self.settings.experiment,
                                                                              self.settings.experiment))

    @property
    def main(self) -> Run:
        """The records of the selected experiment, as the original keeps them: the standard, massed or 'only
        two last adjacent' run; for list linking and sham, the linking episode (its 4 trials of D,E, then the
        scored trial; sham: one B,C trial, then the scored trial), with P carried over from the two lists."""
        experiment = self.settings.experiment
        if experiment not in ("linking", "sham"):
            return self.selected
        if experiment not in self._episodes:
            self._episodes[experiment] = self.selected.episode(-1)
        return self._episodes[experiment]
