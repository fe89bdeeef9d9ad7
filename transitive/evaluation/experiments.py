"""The experiments, as a registry (`EXPERIMENTS`): one declaration each, from which the runs (`Runs.<name>`), the
command line's `--experiment` choices (`MODES`), the notebook's experiment switches and the key numbers are made.

An experiment declares its pair schedules (one per episode, run with the state carried over), its batch, how
many trials at its end are scored, its seed offset (its draws are seeded by seed * 1000 + offset, so that no
run depends on which figure asked for it first), what it keeps as it runs, and its key numbers. One that can be
the selected experiment of a run (a mode) also names its `mode` and the original notebook's switches that select
it. How to add one, with its figure: docs/extending.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model.errors import ChoiceError
from ..model.schedules import (linking_schedules, massed_schedule, only_two_last_adjacent_schedule,
                               withheld_pair_schedule)
from ..model.task import ITEMS, standard_schedule
from . import keynumbers as numbers, stats
from .choices import CHANGE_TRIAL


@dataclass(frozen=True)
class Experiment:
    name: str  # the run: Runs.<name>
    description: Callable  # settings -> what runs, in words (for the lines saying what runs)
    schedules: Callable  # (settings, batch, generator) -> [one (batch, ntrials, 2) schedule per episode]
    seed_offset: int
    batch: Callable = lambda settings: settings.batch  # settings -> episodes
    test_trials: int = 10  # the trials at the end that are scored
    nbcues: int = ITEMS
    snapshot_trials: tuple = ()  # item alignments kept as it runs, also when it is not the selected experiment
    numbers: Callable | None = None  # (runs, run) -> its key numbers
    key: str = ""  # their name in key_numbers.json (default: the name)
    stands_in: Callable | None = None  # settings -> the run used instead of this one (None: its own)
    highlight: Callable | None = None  # settings -> (first, last) 0-based trials shaded in the traces
    # As a mode (Settings.experiment, --experiment, the notebook's switches):
    mode: str | None = None
    switches: tuple = ()  # the original notebook's switches that select it, all set
    rates_from: int = 0  # as the selected experiment, its rates are kept from this trial on
    main_episode: int | None = None  # the episode the original keeps as the experiment's records (None: all)

    @property
    def number_key(self) -> str:
        return self.key or self.name


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(*args, **kwargs) -> Experiment:
    declared = Experiment(*args, **kwargs)
    EXPERIMENTS[declared.name] = declared
    return declared


def _withheld_pair(name: str, pair, seed_offset: int, key: str) -> Experiment:
    """The evaluation with `pair` never shown before trial 19 and shown then, in the batch elements above
    batch // 2 (the other half as the standard schedule); Fig. 6's analysis reads its item alignments there."""
    return experiment(name, lambda s: f"the evaluation with {stats.pair_name(*pair)} withheld until trial 19 in half "
                                      "the batch",
                      lambda s, batch, g: [withheld_pair_schedule(batch, pair=pair, generator=g)], seed_offset,
                      snapshot_trials=(CHANGE_TRIAL,), key=key,
                      numbers=lambda runs, run: numbers.withheld(run, pair))


def _standard_schedules(settings, batch, generator):
    if settings.withhold_in_standard:  # HALFNOBARREDPAIRUNTILT18: the standard run withholds the barred pair
        return [withheld_pair_schedule(batch, pair=settings.barred_pair, generator=generator)]
    return [standard_schedule(batch, ITEMS, generator=generator)]


def _added_pair_stand_in(settings):
    if settings.add_barred_pair is None:
        raise ChoiceError("no added barred pair (ADDBARREDPAIR with SHOWALLSELECTS = False) in these settings")
    return "massed" if settings.experiment == "massed" else None


def _massed_numbers(runs, run) -> dict:
    if runs.settings.experiment == "massed":
        return {"massed_trials": runs.settings.massed_trials, **numbers.evaluation(runs, run)}
    return {"massed_trials": runs.settings.massed_trials, **stats.behaviour(run.test_pairs, run.test_correct).as_dict()}


# The registry, in the order of the runs' list (`Runs.done`) and of the key numbers.
experiment("standard", lambda s: "the standard evaluation" + (" (the barred pair withheld in half the batch)"
                                                              if s.withhold_in_standard else ""),
           _standard_schedules, 0, mode="standard", numbers=numbers.evaluation)
# Fig. 6: BARREDPAIR first shown at trial 19 in many episodes. Massed mode: the massed run, as the original
# (which selects the episodes that happen to show it first then); HALFNOBARREDPAIRUNTILT18: the standard run.
experiment("withheld", lambda s: f"the evaluation with {stats.pair_name(*s.barred_pair)} withheld until trial 19 "
                                 "in half the batch",
           lambda s, batch, g: [withheld_pair_schedule(batch, pair=s.barred_pair, generator=g)], 1,
           snapshot_trials=(CHANGE_TRIAL,), key=f"fig6_first_shown_trial{CHANGE_TRIAL + 1}",
           numbers=lambda runs, run: numbers.withheld(run, runs.settings.barred_pair),
           stands_in=lambda s: "massed" if s.experiment == "massed" else "standard" if s.withhold_in_standard else None)
# corrchanges34_add23: ADDBARREDPAIR (next to the barred pair) withheld too.
experiment("withheld_added", lambda s: f"the evaluation with {stats.pair_name(*s.barred_pair)} and "
                                       f"{stats.pair_name(*s.add_barred_pair)} withheld until trial 19 in half the batch",
           lambda s, batch, g: [withheld_pair_schedule(batch, pair=s.barred_pair, add_pair=s.add_barred_pair,
                                                       generator=g)], 6,
           snapshot_trials=(CHANGE_TRIAL,), key=f"fig6_add_first_shown_trial{CHANGE_TRIAL + 1}",
           numbers=lambda runs, run: numbers.withheld(run, runs.settings.barred_pair, runs.settings.add_barred_pair),
           stands_in=_added_pair_stand_in)
# Extended Data Fig. 2a, 2b: Fig. 6 with C,D or E,F withheld instead of D,E.
_withheld_pair("withheld_cd", (2, 3), 7, f"edfig2a_first_shown_trial{CHANGE_TRIAL + 1}")
_withheld_pair("withheld_ef", (4, 5), 8, f"edfig2b_first_shown_trial{CHANGE_TRIAL + 1}")
for _sham in (False, True):  # list linking (Fig. 3a) and its sham control (Fig. 3b): the last trial is scored
    experiment("sham" if _sham else "linking", lambda s, sham=_sham: "sham linking" if sham else "list linking",
               lambda s, batch, g, sham=_sham: linking_schedules(batch, sham=sham, first_half_first=s.first_half_first,
                                                                 generator=g),
               3 if _sham else 2, batch=lambda s: s.linking_episodes, test_trials=1, numbers=numbers.linking,
               mode="sham" if _sham else "linking", rates_from=20, main_episode=-1,
               switches=("LINKEDLISTSEVAL", "LINKINGISSHAM") if _sham else ("LINKEDLISTSEVAL",))
experiment("massed", lambda s: f"massed presentation ({s.massed_trials} trials of one pair after learning)",
           lambda s, batch, g: [massed_schedule(batch, s.massed_trials, pair=s.massed_pair, generator=g)], 4,
           highlight=lambda s: (20, 20 + s.massed_trials - 1), numbers=_massed_numbers, mode="massed",
           switches=("NBMASSEDTRIALS",))
experiment("only_two_last_adjacent", lambda s: "'only two last adjacent' (7 items)",
           lambda s, batch, g: [only_two_last_adjacent_schedule(batch, generator=g)], 5, nbcues=7,
           numbers=numbers.only_two_last_adjacent, mode="onlytwolastadj", switches=("ONLYTWOLASTADJ",))

MODES = {e.mode: e for e in EXPERIMENTS.values() if e.mode}  # the experiments a run can select
