"""What the evaluation runs depend on (`Settings`), each setting declared once with its range or choices and its
help (`transitive.training.config.setting`): the command line's evaluation options and the notebook's switches
are made from these declarations, and `validate` checks them."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.schedules import check_pair
from ..model.task import ITEMS
from ..training.config import LARGEST_SEED, SettingError, check_settings, setting, whole
from .experiments import MODES

EPISODES = whole(20, 100_000)  # 10 splits of at least 2 episodes; about 50 times the paper's


@dataclass(frozen=True)
class Settings:
    """What the runs depend on. The names in brackets are the original notebook's switches."""

    batch: int = setting(2000, "episodes of the standard evaluation; list linking and sham: twice as many "
                               "(BATCHSIZE)", EPISODES)
    linking_batch: int | None = setting(None, "episodes of list linking and sham (default: 2 * batch, as the "
                                              "original's 4000 for 2000)", EPISODES)
    seed: int = setting(0, "seed of the random draws", whole(0, LARGEST_SEED))
    experiment: str = setting("standard", "the selected experiment (the notebook's experiment mode): standard "
                                          "makes every figure; the others make the figures the original makes "
                                          "from that experiment's run", choices=tuple(MODES))
    chunk: int = setting(128, "episodes run at once", whole(1, 100_000))
    fixed_items: bool = setting(False, "the same item vectors in every episode (FIXEDCUES)")
    reset_plastic_every_trial: bool = setting(False, "control without learning across trials (RESETPWEVERYTRIAL)")
    reset_rates_every_trial: bool = setting(True, "rates r reset at every trial start (RESETHIDDENEVERYTRIAL)")
    reset_trace_every_trial: bool = setting(True, "trace H reset at every trial start (RESETETEVERYTRIAL)")
    withhold_in_standard: bool = setting(False, "the standard run withholds the barred pair in half the batch "
                                                "(HALFNOBARREDPAIRUNTILT18)")
    barred_pair: tuple = setting((3, 4), "the pair withheld until trial 19 for Fig. 6 (BARREDPAIR)")
    add_barred_pair: tuple | None = setting(None, "a pair next to the barred pair also withheld: Fig. 6's variant "
                                                  "corrchanges34_add23 (ADDBARREDPAIR with SHOWALLSELECTS off)")
    massed_trials: int = setting(10, "massed trials of the massed pair after learning (Supplementary Note 9): the "
                                     "massed figure of the standard mode, or the run of every figure with "
                                     "--experiment massed (NBMASSEDTRIALS)", whole(1, 100), aliases=["--massed"])
    massed_pair: tuple = setting((3, 4), "the massed pair, in this order (MASSEDPAIR)")
    first_half_first: bool = setting(True, "list linking shows A-D before E-H (SHOWFIRSTHALFFIRST)")
    recode_steps: int = setting(1000, "Adam steps of the recoded-representation fit (Supplementary Note 8)",
                                whole(1, 100_000))
    recode_attempts: int = setting(3, "the recoded fit is made again only when clearly bad, at most this many fits",
                                   whole(1, 100))
    progress: bool = setting(True, "a progress bar over the chunks of each run")

    def validate(self) -> "Settings":
        """The settings, or SettingError (one line naming the setting and its allowed values)."""
        check_settings(self)
        check_pair(self.massed_pair, ITEMS, "massed_pair")
        check_pair(self.barred_pair, ITEMS, "barred_pair", adjacent=True)
        if self.add_barred_pair is not None:
            check_pair(self.add_barred_pair, ITEMS, "add_barred_pair", next_to=self.barred_pair)
        if self.withhold_in_standard and self.experiment != "standard":
            raise SettingError("withhold_in_standard", f"withholding the barred pair in the standard run goes with "
                                                       f"the standard experiment only, not {self.experiment!r}")
        return self

    @property
    def linking_episodes(self) -> int:
        """Episodes of list linking and sham: twice the batch (the original's 4000), the batch with fixed items
        (the original's FIXEDCUES forces 2000), unless set."""
        return self.linking_batch or (self.batch if self.fixed_items else 2 * self.batch)
