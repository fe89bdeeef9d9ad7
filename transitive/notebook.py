"""main.ipynb's switches (the original notebook's names) and the few helpers its cells call.

    config = NotebookConfig.from_namespace(globals()).validate()   # one clear line for impossible combinations
    net = config.load_network()          # NETFILE (output weights from MIXNETWORKSFILE with MIXNETWORKS)
    runs = config.runs(net)              # the experiments, run on first use (transitive.runs)
    if config.makes("SDE"): ...          # the figure cells: the bodies of transitive.panels' functions

One experiment is selected by the switches, as in the original: list linking (LINKEDLISTSEVAL, sham with
LINKINGISSHAM), massed presentation (NBMASSEDTRIALS > 0), 'only two last adjacent' (ONLYTWOLASTADJ), or, by
default, the standard evaluation, whose cells then make every figure of the paper. The analysis cells of the
original that also run in an experiment mode (e.g. SDE and traces with massed trials; treichler, traces and
violin with list linking) use that experiment's run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

DEFAULT_MASSED_TRIALS = 10
PAIR_SWITCHES = ("BARREDPAIR", "MASSEDPAIR", "ADDBARREDPAIR")


class ConfigError(ValueError):
    """An impossible combination of switches; the message is one line for the user."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback
        return [f"ConfigError: {self}"]


def _switch(default, help_text: str, factory: bool = False):
    """A switch of the configuration cell: its default and the one line the cell shows above it."""
    if factory:
        return field(default_factory=default, metadata={"help": help_text})
    return field(default=default, metadata={"help": help_text})


class StopNotebook(Exception):
    """Stops 'run all' with one line (IPython shows `_render_traceback_` instead of a traceback)."""

    def _render_traceback_(self):
        return [str(self)]


@dataclass
class NotebookConfig:
    EVAL: bool = _switch(True, "True: analyse NETFILE; False: meta-train (continual regime), saving NETFILE every 200 episodes")
    LINKEDLISTSEVAL: bool = _switch(False, "list linking (Fig. 3a)")
    LINKINGISSHAM: bool = _switch(False, "with LINKEDLISTSEVAL: the sham control (Fig. 3b)")
    SHOWFIRSTHALFFIRST: bool = _switch(True, "list linking: A-D learned before E-H (False: E-H first)")
    NBMASSEDTRIALS: int = _switch(0, "> 0: that many trials of MASSEDPAIR after learning (Supplementary Note 9)")
    MASSEDPAIR: list = _switch(lambda: [3, 4], "the massed pair, in this order (D, E)", factory=True)
    ONLYTWOLASTADJ: bool = _switch(False, "7 items; test trials on AC, CE, EG, AD, DG")
    HALFNOBARREDPAIRUNTILT18: bool = _switch(False, "batch elements above BATCHSIZE // 2 first see BARREDPAIR at trial 19")
    BARREDPAIR: list = _switch(lambda: [3, 4], "the withheld pair (Fig. 6)", factory=True)
    ADDBARREDPAIR: list = _switch(lambda: [2, 3], "with SHOWALLSELECTS off: a neighbour pair also unseen", factory=True)
    SHOWALLSELECTS: bool = _switch(True, "False: also corrchanges34_add23 (Fig. 6 with ADDBARREDPAIR unseen before trial 19)")
    FIXEDCUES: bool = _switch(False, "the same item vectors in the whole batch (debugging)")
    RESETPWEVERYTRIAL: bool = _switch(False, "control: plastic weights reset every trial (no learning)")
    RESETHIDDENEVERYTRIAL: bool = _switch(True, "rates r reset at every trial start (False: carried across trials)")
    RESETETEVERYTRIAL: bool = _switch(True, "eligibility trace H reset at every trial start (False: carried)")
    MIXNETWORKS: bool = _switch(False, "evaluation with the output weights (h2o) of MIXNETWORKSFILE")
    MIXNETWORKSFILE: str = _switch("netB.dat", "the second parameter file of MIXNETWORKS")
    VECTALPHA: bool = _switch(False, "one plasticity coefficient per neuron instead of per synapse")
    SCALARALPHA: bool = _switch(False, "one plasticity coefficient shared by all synapses")
    POSALPHA: bool = _switch(False, "meta-training: |alpha| at initialisation, clipped at 0 after every step")
    POSALPHAINITONLY: bool = _switch(False, "meta-training: |alpha| at initialisation only")
    FROZENINPUTWEIGHTS: bool = _switch(False, "meta-training: input weights frozen at their initial values (Suppl. Note 6)")
    PROBAOLDDATA: float = _switch(0.25, "meta-training: chance that a test trial shows an earlier episode's items")
    NBEPSBWRESETS: int = _switch(3, "meta-training: episodes between resets of the network state")
    TRAINEPISODES: int = _switch(30000, "meta-training: number of episodes")
    BATCHSIZE: int = _switch(2000, "evaluation episodes (list linking: twice as many); meta-training uses batches of 32")
    NETFILE: str = _switch("net.dat", "the parameter file analysed (EVAL = True) or trained (EVAL = False)")
    FIGURES: str = _switch("figures", "folder for the figures (PNG and PDF) and key numbers")
    SEED: int = _switch(0, "seed of every random draw of the evaluation (and of meta-training)")


    @classmethod
    def from_namespace(cls, namespace: dict) -> "NotebookConfig":
        """Pick the switches out of a dict such as the notebook's globals()."""
        return cls(**{f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    # -----------------------------------------------------------------------------------------------------
    def validate(self) -> "NotebookConfig":
        self._check_types()
        if self.VECTALPHA and self.SCALARALPHA:
            raise ConfigError("VECTALPHA and SCALARALPHA each choose the shape of alpha: set at most one")
        if self.POSALPHA and self.POSALPHAINITONLY:
            raise ConfigError("POSALPHA (|alpha| at init, then clipped at 0) and POSALPHAINITONLY (at init only): "
                              "set at most one")
        if self.NBMASSEDTRIALS < 0:
            raise ConfigError(f"NBMASSEDTRIALS must be 0 or more, not {self.NBMASSEDTRIALS}")
        if not 0 <= self.PROBAOLDDATA <= 1:
            raise ConfigError(f"PROBAOLDDATA is a probability (0 to 1), not {self.PROBAOLDDATA}")
        if self.LINKINGISSHAM and not self.LINKEDLISTSEVAL:
            raise ConfigError("LINKINGISSHAM is a variant of list linking: set LINKEDLISTSEVAL = True too")
        schedules = [name for name, on in (("LINKEDLISTSEVAL", self.LINKEDLISTSEVAL),
                                           ("NBMASSEDTRIALS > 0", self.NBMASSEDTRIALS > 0),
                                           ("ONLYTWOLASTADJ", self.ONLYTWOLASTADJ),
                                           ("HALFNOBARREDPAIRUNTILT18", self.HALFNOBARREDPAIRUNTILT18)) if on]
        if len(schedules) > 1:
            raise ConfigError(f"{' and '.join(schedules)} each choose the pairs shown: use one at a time")
        if abs(self.BARREDPAIR[0] - self.BARREDPAIR[1]) != 1:
            raise ConfigError(f"BARREDPAIR must be two adjacent items such as [3, 4], not {self.BARREDPAIR}")
        if not self.SHOWALLSELECTS and not _adjacent(self.ADDBARREDPAIR, self.BARREDPAIR):
            raise ConfigError("ADDBARREDPAIR must be an adjacent pair next to BARREDPAIR, such as [2, 3] for [3, 4]")
        if self.HALFNOBARREDPAIRUNTILT18 and self.FIXEDCUES:
            raise ConfigError("HALFNOBARREDPAIRUNTILT18 cannot be combined with FIXEDCUES (as in the original)")
        if not self.EVAL:
            eval_only = [name for name in ("LINKEDLISTSEVAL", "LINKINGISSHAM", "HALFNOBARREDPAIRUNTILT18",
                                           "ONLYTWOLASTADJ", "FIXEDCUES", "RESETPWEVERYTRIAL", "MIXNETWORKS")
                         if getattr(self, name)] + (["NBMASSEDTRIALS"] if self.NBMASSEDTRIALS else [])
            if eval_only:
                raise ConfigError(f"{', '.join(eval_only)} only apply when EVAL = True (evaluation); "
                                  "meta-training always uses the standard task")
            if self.TRAINEPISODES < 1 or self.NBEPSBWRESETS < 1:
                raise ConfigError("TRAINEPISODES and NBEPSBWRESETS must be positive")
        elif self.BATCHSIZE < 20:
            raise ConfigError(f"BATCHSIZE must be at least 20 for evaluation (10 splits), not {self.BATCHSIZE}")
        return self

    def _check_types(self) -> None:
        for f in fields(self):
            value, expected = getattr(self, f.name), f.type
            if expected == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be True or False, not {value!r}")
            if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{f.name} must be a whole number, not {value!r}")
            if expected == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{f.name} must be a number, not {value!r}")
            if expected == "str" and not isinstance(value, str):
                raise ConfigError(f"{f.name} must be a string, not {value!r}")
            if f.name in PAIR_SWITCHES and not _is_pair(value):
                raise ConfigError(f"{f.name} must be two different item indices from 0 to 7 such as [3, 4], "
                                  f"not {value!r}")

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

    @property
    def alpha_shape(self) -> str:
        return "neuron" if self.VECTALPHA else "scalar" if self.SCALARALPHA else "synapse"

    def makes(self, figure: str) -> bool:
        """Whether the selected experiment makes this figure (see transitive.panels.FIGURES)."""
        from .panels import FIGURES
        made = FIGURES[figure].made_with(self.settings())
        if not made:
            print(f"({figure}: not made in the '{self.experiment}' experiment with these switches)")
        return made

    def settings(self):
        from .runs import Settings
        return Settings(batch=self.BATCHSIZE, seed=self.SEED, experiment=self.experiment, fixed_items=self.FIXEDCUES,
                        reset_plastic_every_trial=self.RESETPWEVERYTRIAL,
                        reset_rates_every_trial=self.RESETHIDDENEVERYTRIAL,
                        reset_trace_every_trial=self.RESETETEVERYTRIAL,
                        withhold_in_standard=self.HALFNOBARREDPAIRUNTILT18, barred_pair=tuple(self.BARREDPAIR),
                        add_barred_pair=None if self.SHOWALLSELECTS else tuple(self.ADDBARREDPAIR),
                        massed_trials=self.NBMASSEDTRIALS or DEFAULT_MASSED_TRIALS, massed_pair=tuple(self.MASSEDPAIR),
                        first_half_first=self.SHOWFIRSTHALFFIRST)

    def runs(self, net, log=print):
        from .runs import Runs
        curve = Path(self.NETFILE).with_suffix(".csv")
        return Runs(net, self.settings(), log=log, curves={"this run": curve} if curve.exists() else {})

    def load_network(self, device: str = "cpu"):
        """NETFILE, with the output weights of MIXNETWORKSFILE when MIXNETWORKS."""
        from .io import load_network
        net = load_network(self.NETFILE, device)
        if net.alpha_shape != self.alpha_shape:
            switch = {"synapse": "VECTALPHA = SCALARALPHA = False", "neuron": "VECTALPHA = True",
                      "scalar": "SCALARALPHA = True"}[net.alpha_shape]
            raise ConfigError(f"{self.NETFILE} has plasticity coefficients per {net.alpha_shape}: set {switch}")
        if self.MIXNETWORKS:
            other = load_network(self.MIXNETWORKSFILE, device)
            net.h2o.load_state_dict(other.h2o.state_dict())
        return net

    def train_config(self, device: str = "cpu"):
        """The meta-training settings: the package's defaults (transitive.training.TrainConfig, the paper's
        values) with the switches of this notebook."""
        from .training import TrainConfig
        return TrainConfig(episodes=self.TRAINEPISODES, regime="continual", seed=self.SEED, save_every=200,
                           alpha_shape=self.alpha_shape, positive_alpha=self.POSALPHA,
                           positive_alpha_init_only=self.POSALPHAINITONLY, frozen_input=self.FROZENINPUTWEIGHTS,
                           old_items_probability=self.PROBAOLDDATA, resets_every=self.NBEPSBWRESETS,
                           reset_rates_every_trial=self.RESETHIDDENEVERYTRIAL,
                           reset_trace_every_trial=self.RESETETEVERYTRIAL, device=device)

    def as_dict(self) -> dict:
        return asdict(self)


def _adjacent(added, barred) -> bool:
    low, high = sorted(added)
    return high - low == 1 and sorted(added) != sorted(barred) and bool(set(added) & set(barred))


def _is_pair(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and 0 <= v < 8 for v in value)
            and value[0] != value[1])


def meta_train(config: NotebookConfig, device: str = "cpu"):
    """EVAL = False: meta-train into NETFILE (resuming its checkpoint if there is one). Stops the notebook
    with one line when the training did not reach its last episode (interrupted)."""
    from .training import Trainer
    trainer = Trainer(config.train_config(device), config.NETFILE, resume=True)
    trainer.train()
    if not trainer.finished:
        raise StopNotebook(f"meta-training stopped at episode {trainer.episode} of {config.TRAINEPISODES}; "
                           f"{config.NETFILE} and its checkpoint are saved: run this cell again to resume")
    print(f"meta-training done: {trainer.episode} episodes, parameters in {config.NETFILE}")
    return trainer


def save_and_show(fig, name: str, folder) -> list[Path]:
    """Save a figure as PNG and PDF under its original file name, and display it (in a notebook)."""
    from .figures import save_figure
    if fig is None:
        print(f"{name}: nothing to plot")
        return []
    paths = save_figure(fig, folder, name)
    show_png(paths[0])
    return paths


def show_png(path) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
        if get_ipython() is None:
            raise ImportError
    except ImportError:
        print(path)
        return
    display(Image(filename=str(path)))
