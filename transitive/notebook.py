"""The switches of main.ipynb (the original notebook's names) and the helpers its cells call.

    config = NotebookConfig(EVAL=True, LINKEDLISTSEVAL=False, ...)
    config.validate()                      # ConfigError with a one-line message for impossible combinations
    net = config.load_network()            # net.dat (output weights from MIXNETWORKSFILE with MIXNETWORKS)
    ev = config.evaluation(net, "figures")
    show_group(config, ev, "fig2")         # runs what the figure needs, saves PNG + PDF, displays the PNGs

Exactly one experiment is selected by the switches, as in the original: list linking (LINKEDLISTSEVAL, sham
with LINKINGISSHAM), massed presentation (NBMASSEDTRIALS > 0), 'only two last adjacent' (ONLYTWOLASTADJ),
or, by default, the standard evaluation, whose cells then produce every figure of the paper (list linking,
sham and massed presentation with 10 trials included). FIXEDCUES, RESETPWEVERYTRIAL, MIXNETWORKS and
HALFNOBARREDPAIRUNTILT18 modify the runs of whichever experiment is selected.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .network import ALPHA_SHAPES

DEFAULT_MASSED_TRIALS = 10


class ConfigError(ValueError):
    """An impossible combination of switches; the message is one line for the user."""


@dataclass
class NotebookConfig:
    EVAL: bool = True  # True: analyse NETFILE; False: meta-train (continual regime) and save NETFILE every 200
    LINKEDLISTSEVAL: bool = False  # list linking (Fig. 3a)
    LINKINGISSHAM: bool = False  # with LINKEDLISTSEVAL: the sham control (Fig. 3b)
    HALFNOBARREDPAIRUNTILT18: bool = False  # half the batch sees D,E first at trial 18 (more samples for Fig. 6)
    NBMASSEDTRIALS: int = 0  # > 0: massed presentation of D,E after learning (Supplementary Note 9)
    ONLYTWOLASTADJ: bool = False  # 7 items, tests on {A,C} {C,E} {E,G} {A,D} {D,G}
    FIXEDCUES: bool = False  # the same item vectors in the whole batch
    RESETPWEVERYTRIAL: bool = False  # control: plastic weights reset every trial (no learning)
    MIXNETWORKS: bool = False  # output weights (h2o) from MIXNETWORKSFILE
    MIXNETWORKSFILE: str = "net2.dat"
    ALPHATYPE: str = "synapse"  # plasticity coefficients: per "synapse", per "neuron", or one "scalar"
    POSALPHA: bool = False  # meta-training: |alpha| at initialisation
    CLIPALPHA: bool = False  # meta-training, with POSALPHA: clip alpha at 0 after every step
    BATCHSIZE: int = 2000  # evaluation episodes (meta-training uses batches of 32)
    NETFILE: str = "net.dat"
    TRAINEPISODES: int = 30000
    SEED: int = 0

    @classmethod
    def from_namespace(cls, namespace: dict) -> "NotebookConfig":
        """Pick the switches out of a dict such as the notebook's globals()."""
        return cls(**{k: namespace[k] for k in asdict(cls()) if k in namespace})

    # -----------------------------------------------------------------------------------------------------
    def validate(self) -> "NotebookConfig":
        for name, value in asdict(self).items():
            expected = type(getattr(NotebookConfig, name))
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{name} must be an integer, not {value!r}")
            if expected is bool and not isinstance(value, bool):
                raise ConfigError(f"{name} must be True or False, not {value!r}")
            if expected is str and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, not {value!r}")
        if self.ALPHATYPE not in ALPHA_SHAPES:
            raise ConfigError(f"ALPHATYPE must be one of {', '.join(ALPHA_SHAPES)}, not {self.ALPHATYPE!r}")
        if self.CLIPALPHA and not self.POSALPHA:
            raise ConfigError("CLIPALPHA needs POSALPHA = True (alpha is clipped at 0 only when it starts positive)")
        if self.NBMASSEDTRIALS < 0:
            raise ConfigError(f"NBMASSEDTRIALS must be 0 or more, not {self.NBMASSEDTRIALS}")
        if self.LINKINGISSHAM and not self.LINKEDLISTSEVAL:
            raise ConfigError("LINKINGISSHAM is a variant of list linking: set LINKEDLISTSEVAL = True too")
        schedules = [name for name, on in (("LINKEDLISTSEVAL", self.LINKEDLISTSEVAL),
                                           ("NBMASSEDTRIALS > 0", self.NBMASSEDTRIALS > 0),
                                           ("ONLYTWOLASTADJ", self.ONLYTWOLASTADJ),
                                           ("HALFNOBARREDPAIRUNTILT18", self.HALFNOBARREDPAIRUNTILT18)) if on]
        if len(schedules) > 1:
            raise ConfigError(f"{' and '.join(schedules)} each choose the pairs shown: use one at a time")
        if not self.EVAL:
            eval_only = [name for name in ("LINKEDLISTSEVAL", "LINKINGISSHAM", "HALFNOBARREDPAIRUNTILT18",
                                           "ONLYTWOLASTADJ", "FIXEDCUES", "RESETPWEVERYTRIAL", "MIXNETWORKS")
                         if getattr(self, name)] + (["NBMASSEDTRIALS"] if self.NBMASSEDTRIALS else [])
            if eval_only:
                raise ConfigError(f"{', '.join(eval_only)} only apply when EVAL = True (evaluation); "
                                  "meta-training always uses the standard task")
            if self.TRAINEPISODES < 1:
                raise ConfigError(f"TRAINEPISODES must be positive, not {self.TRAINEPISODES}")
        elif self.BATCHSIZE < 20:
            raise ConfigError(f"BATCHSIZE must be at least 20 for evaluation (10 splits), not {self.BATCHSIZE}")
        return self

    # -----------------------------------------------------------------------------------------------------
    @property
    def experiment(self) -> str:
        if self.LINKEDLISTSEVAL:
            return "sham" if self.LINKINGISSHAM else "linking"
        if self.NBMASSEDTRIALS > 0:
            return "massed"
        if self.ONLYTWOLASTADJ:
            return "onlytwolastadj"
        return "standard"

    def groups(self) -> list[str]:
        """The figure groups (see report.GROUPS) this configuration produces."""
        from .report import STANDARD_GROUPS
        if self.experiment == "standard":
            return STANDARD_GROUPS + ["massed", "curve"]
        return [self.experiment]

    def load_network(self, device: str = "cpu"):
        """NETFILE, with the output weights of MIXNETWORKSFILE when MIXNETWORKS."""
        from .io import load_network
        net = load_network(self.NETFILE, device)
        if net.alpha_shape != self.ALPHATYPE:
            raise ConfigError(f"{self.NETFILE} has plasticity coefficients per {net.alpha_shape}, "
                              f"but ALPHATYPE = {self.ALPHATYPE!r}: set ALPHATYPE = {net.alpha_shape!r}")
        if self.MIXNETWORKS:
            other = load_network(self.MIXNETWORKSFILE, device)
            net.h2o.load_state_dict(other.h2o.state_dict())
        return net

    def evaluation(self, net, out, log=print):
        from .report import Evaluation, Options
        curve = Path(self.NETFILE).with_suffix(".csv")
        options = Options(batch=self.BATCHSIZE, seed=self.SEED, fixed_items=self.FIXEDCUES,
                          reset_plastic_every_trial=self.RESETPWEVERYTRIAL,
                          withhold_in_standard=self.HALFNOBARREDPAIRUNTILT18,
                          massed_trials=self.NBMASSEDTRIALS or DEFAULT_MASSED_TRIALS,
                          curves={"this run": curve} if curve.exists() else {})
        return Evaluation(net, out, options, log=log)

    def train_config(self, device: str = "cpu"):
        from .training import TrainConfig
        return TrainConfig(episodes=self.TRAINEPISODES, regime="continual", seed=self.SEED, save_every=200,
                           alpha_shape=self.ALPHATYPE, positive_alpha=self.POSALPHA, clip_alpha=self.CLIPALPHA,
                           device=device)


def show_group(config: NotebookConfig, ev, group: str) -> None:
    """Produce one figure group if this configuration selects it, and display its PNGs (the files are in
    ev.out)."""
    if group not in config.groups():
        print(f"({group}: not part of the selected experiment '{config.experiment}')")
        return
    show(ev.group(group))


def show(paths) -> None:
    """Display the PNG files among `paths` (in a notebook; prints the names elsewhere)."""
    pngs = [Path(p) for p in paths if str(p).endswith(".png")]
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
        if get_ipython() is None:
            raise ImportError
    except ImportError:
        for p in pngs:
            print(p)
        return
    for p in pngs:
        display(Image(filename=str(p)))
