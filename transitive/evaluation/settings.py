"""What the evaluation runs depend on (`Settings`), and the experiments there are (`EXPERIMENTS`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.task import ITEMS
from .choices import check_pair

EXPERIMENTS = ("standard", "linking", "sham", "massed", "onlytwolastadj")
# Offsets of each experiment's seed (seed * 1000 + offset): independent draws per experiment.
SEED_OFFSETS = {"standard": 0, "withheld": 1, "linking": 2, "sham": 3, "massed": 4, "onlytwolastadj": 5,
                "withheld_added": 6}


@dataclass(frozen=True)
class Settings:
    """What the runs depend on. The names in comments are the original notebook's switches."""

    batch: int = 2000  # BATCHSIZE: episodes of the standard evaluation
    linking_batch: int | None = None  # list linking and sham: by default 2 * batch (4000 for 2000), as the original
    seed: int = 0
    experiment: str = "standard"  # the selected experiment, see EXPERIMENTS
    chunk: int = 128  # episodes run at once
    fixed_items: bool = False  # FIXEDCUES: the same item vectors in every episode (list linking: batch episodes)
    reset_plastic_every_trial: bool = False  # RESETPWEVERYTRIAL: control without learning across trials
    reset_rates_every_trial: bool = True  # RESETHIDDENEVERYTRIAL
    reset_trace_every_trial: bool = True  # RESETETEVERYTRIAL
    withhold_in_standard: bool = False  # HALFNOBARREDPAIRUNTILT18: the standard run withholds BARREDPAIR
    barred_pair: tuple = (3, 4)  # BARREDPAIR
    add_barred_pair: tuple | None = None  # ADDBARREDPAIR with SHOWALLSELECTS off: also withheld (corrchanges34_add23)
    massed_trials: int = 10  # NBMASSEDTRIALS (the standard mode's massed figure uses 10)
    massed_pair: tuple = (3, 4)  # MASSEDPAIR
    first_half_first: bool = True  # SHOWFIRSTHALFFIRST: list linking shows A-D before E-H
    recode_steps: int = 1000
    recode_attempts: int = 3  # the recoded fit is made again only when clearly bad, at most this many fits
    progress: bool = True  # a progress bar over the chunks of each run

    def validate(self) -> "Settings":
        """The settings, or ValueError (one line naming the setting and its allowed values)."""
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"experiment: expected one of {', '.join(EXPERIMENTS)}, got {self.experiment!r}")
        if self.batch < 20:
            raise ValueError(f"batch: expected at least 20 episodes (10 splits of 2), got {self.batch}")
        if self.linking_batch is not None and self.linking_batch < 20:
            raise ValueError(f"linking batch: expected at least 20 episodes, got {self.linking_batch}")
        if self.massed_trials < 1:
            raise ValueError(f"massed trials: expected at least 1, got {self.massed_trials}")
        if self.recode_steps < 1 or self.recode_attempts < 1:
            raise ValueError("recode steps and recode attempts: expected positive numbers")
        for name, pair in (("barred pair", self.barred_pair), ("massed pair", self.massed_pair),
                           ("added barred pair", self.add_barred_pair)):
            if pair is not None:
                check_pair(tuple(pair), ITEMS, name)
        if abs(self.barred_pair[0] - self.barred_pair[1]) != 1:
            raise ValueError(f"barred pair: expected two adjacent items such as (3, 4), got {self.barred_pair}")
        added = self.add_barred_pair
        if added is not None and (abs(added[0] - added[1]) != 1 or sorted(added) == sorted(self.barred_pair)
                                  or not set(added) & set(self.barred_pair)):
            raise ValueError(f"added barred pair: expected an adjacent pair next to the barred pair "
                             f"{tuple(self.barred_pair)}, such as (2, 3) for (3, 4), got {tuple(added)}")
        if self.withhold_in_standard and self.experiment != "standard":
            raise ValueError(f"withholding the barred pair in the standard run (HALFNOBARREDPAIRUNTILT18) goes with the "
                             f"standard experiment only, not {self.experiment!r}")
        return self

    @property
    def linking_episodes(self) -> int:
        """Episodes of list linking and sham: twice the batch (the original's 4000), the batch with fixed items
        (the original's FIXEDCUES forces 2000), unless set."""
        return self.linking_batch or (self.batch if self.fixed_items else 2 * self.batch)
