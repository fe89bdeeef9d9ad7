"""main.ipynb's switches (the original notebook's names) and the few helpers its cells call.

    config = NotebookConfig.from_namespace(globals()).validate()   # one clear line for impossible combinations
    netfile = config.network_file()      # NETFILE; net_active.dat when the default net.dat is missing
    net = config.load_network(device, netfile)  # (output weights from MIXNETWORKSFILE with MIXNETWORKS)
    runs = config.runs(net, netfile)     # the experiments, run on first use (transitive.evaluation.runs)
    if config.makes("SDE"): ...          # the figure cells: the bodies of transitive.figures.panels' functions

One experiment is selected by the switches, as in the original: list linking (LINKEDLISTSEVAL, sham with
LINKINGISSHAM), massed presentation (NBMASSEDTRIALS > 0), 'only two last adjacent' (ONLYTWOLASTADJ), or, by
default, the standard evaluation, whose cells then make every figure of the paper. In an experiment mode,
every figure the original makes in that mode is made from that experiment's run (the massed run for all of
them; for list linking and sham, the records of the linking episode), as `transitive.figures.panels` records.

The notebook carries our two networks and their training logs (`BUNDLED`), packed as text (`pack`), and its
first cell writes them beside itself when they are missing (`write_bundled`), so that it runs with nothing
uploaded. Whatever the user can fix (a missing or unreadable file, impossible switches, an interrupted
training, a GPU asked for that is not there) stops the notebook with one line, not a traceback.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..model.errors import ChoiceError, OneLineError

DEFAULT_MASSED_TRIALS = 10
DEFAULT_NETFILE = "net.dat"
ACTIVE, PASSIVE = "net_active.dat", "net_passive.dat"
BUNDLED = (ACTIVE, PASSIVE, "net_active.csv", "net_passive.csv")  # the files the notebook carries
DRIVE_MOUNT = "/content/drive"  # where Colab mounts Google Drive (the user's files are in MyDrive/)
PACKED_LINE = 500  # characters per line of packed text


class ConfigError(OneLineError, ValueError):
    """An impossible switch or combination of switches."""


class StopNotebook(OneLineError):
    """Stops 'run all' with one line (IPython shows it instead of a traceback)."""

    named = False


def _switch(default, help_text: str, evaluation: str | None = None, training: str | None = None):
    """A switch of the configuration cell: its default, the one line the cell shows above it, and the setting it
    sets, if any: a field of the evaluation's Settings and/or of TrainConfig (whose declarations hold its range
    and choices: the switch is checked by them). A switch that sets neither acts in the notebook itself."""
    metadata = {"help": help_text, "evaluation": evaluation, "training": training}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class NotebookConfig:
    EVAL: bool = _switch(True, "True: analyse NETFILE; False: meta-train (continual regime), saving NETFILE every 200 episodes")
    LINKEDLISTSEVAL: bool = _switch(False, "list linking (Fig. 3a)")
    LINKINGISSHAM: bool = _switch(False, "with LINKEDLISTSEVAL: the sham control (Fig. 3b)")
    SHOWFIRSTHALFFIRST: bool = _switch(True, "list linking: A-D learned before E-H (False: E-H first)", "first_half_first")
    NBMASSEDTRIALS: int = _switch(0, "> 0: that many trials of MASSEDPAIR after learning (Supplementary Note 9)")
    MASSEDPAIR: list = _switch([3, 4], "the massed pair, in this order (D, E)", "massed_pair")
    ONLYTWOLASTADJ: bool = _switch(False, "7 items; test trials on AC, CE, EG, AD, DG")
    HALFNOBARREDPAIRUNTILT18: bool = _switch(False, "batch elements above BATCHSIZE // 2 first see BARREDPAIR at trial 19",
                                             "withhold_in_standard")
    BARREDPAIR: list = _switch([3, 4], "the withheld pair (Fig. 6)", "barred_pair")
    ADDBARREDPAIR: list = _switch([2, 3], "with SHOWALLSELECTS off: a neighbour pair also unseen")
    SHOWALLSELECTS: bool = _switch(True, "False: also corrchanges34_add23 (Fig. 6 with ADDBARREDPAIR unseen before trial 19)")
    FIXEDCUES: bool = _switch(False, "the same item vectors in the whole batch (debugging)", "fixed_items")
    RESETPWEVERYTRIAL: bool = _switch(False, "control: plastic weights reset every trial (no learning)",
                                      "reset_plastic_every_trial")
    RESETHIDDENEVERYTRIAL: bool = _switch(True, "rates r reset at every trial start (False: carried across trials)",
                                          "reset_rates_every_trial", "reset_rates_every_trial")
    RESETETEVERYTRIAL: bool = _switch(True, "eligibility trace H reset at every trial start (False: carried)",
                                      "reset_trace_every_trial", "reset_trace_every_trial")
    MIXNETWORKS: bool = _switch(False, "evaluation with the output weights (h2o) of MIXNETWORKSFILE")
    MIXNETWORKSFILE: str = _switch("netB.dat", "the second parameter file of MIXNETWORKS")
    VECTALPHA: bool = _switch(False, "one plasticity coefficient per neuron instead of per synapse")
    SCALARALPHA: bool = _switch(False, "one plasticity coefficient shared by all synapses")
    POSALPHA: bool = _switch(False, "meta-training: |alpha| at initialisation, clipped at 0 after every step",
                             training="positive_alpha")
    POSALPHAINITONLY: bool = _switch(False, "meta-training: |alpha| at initialisation only",
                                     training="positive_alpha_init_only")
    FROZENINPUTWEIGHTS: bool = _switch(False, "meta-training: input weights frozen at their initial values (Suppl. "
                                              "Note 6)", training="frozen_input")
    PROBAOLDDATA: float = _switch(0.25, "meta-training: chance that a test trial shows an earlier episode's items",
                                  training="old_items_probability")
    NBEPSBWRESETS: int = _switch(3, "meta-training: episodes between resets of the network state",
                                 training="resets_every")
    TRAINEPISODES: int = _switch(30000, "meta-training: number of episodes", training="episodes")
    BATCHSIZE: int = _switch(2000, "evaluation episodes (list linking: twice as many); meta-training uses batches of 32",
                             "batch")
    NETFILE: str = _switch(DEFAULT_NETFILE, "the parameter file analysed (EVAL = True; net.dat missing: our "
                           "net_active.dat; \"net_passive.dat\": our passive network) or trained (EVAL = False)")
    DRIVEFOLDER: str = _switch("", "Colab: a folder of your Google Drive (mounted when set) for NETFILE and its "
                               "checkpoint, which then outlive the runtime (\"\": beside the notebook)")
    FIGURES: str = _switch("figures", "folder for the figures (PNG and PDF) and key numbers")
    SEED: int = _switch(0, "seed of every random draw of the evaluation (and of meta-training)", "seed", "seed")
    NETWORK: str = _switch("plastic", "the network class trained or analysed: \"plastic\" (the paper's), the "
                           "controls \"no-plasticity\" and \"no-modulation\", or your own, \"FILE.py:Class\" "
                           "(docs/extending.md)", training="network")
    DEVICE: str = _switch("auto", "\"auto\": the GPU when there is one, else the CPU; or \"cpu\", \"cuda\"")

    @classmethod
    def from_namespace(cls, namespace: dict) -> "NotebookConfig":
        """Pick the switches out of a dict such as the notebook's globals()."""
        return cls(**{f.name: namespace[f.name] for f in fields(cls) if f.name in namespace})

    # -----------------------------------------------------------------------------------------------------
    def validate(self) -> "NotebookConfig":
        """The switches, checked: their types, the combinations the notebook refuses, then the settings they
        set, by the settings' own declarations (an error names the switch)."""
        from ..evaluation.experiments import MODES
        self._check_types()
        if self.VECTALPHA and self.SCALARALPHA:
            raise ConfigError("VECTALPHA and SCALARALPHA each choose the shape of alpha: set at most one")
        if self.POSALPHA and self.POSALPHAINITONLY:
            raise ConfigError("POSALPHA (|alpha| at init, then clipped at 0) and POSALPHAINITONLY (at init only): "
                              "set at most one")
        if self.NBMASSEDTRIALS < 0:
            raise ConfigError(f"NBMASSEDTRIALS must be 0 or more, not {self.NBMASSEDTRIALS}")
        for mode in MODES.values():  # a switch that refines a mode's selection needs the mode's first switch
            for refinement in mode.switches[1:]:
                if getattr(self, refinement) and not getattr(self, mode.switches[0]):
                    raise ConfigError(f"{refinement} goes with {mode.switches[0]}: set {mode.switches[0]} = True too")
        chosen = [name for name in dict.fromkeys(m.switches[0] for m in MODES.values() if m.switches)
                  if getattr(self, name)] + (["HALFNOBARREDPAIRUNTILT18"] if self.HALFNOBARREDPAIRUNTILT18 else [])
        if len(chosen) > 1:
            raise ConfigError(f"{' and '.join(chosen)} each choose the pairs shown: use one at a time")
        if self.HALFNOBARREDPAIRUNTILT18 and self.FIXEDCUES:
            raise ConfigError("HALFNOBARREDPAIRUNTILT18 cannot be combined with FIXEDCUES (as in the original)")
        eval_only = [name for name in (*dict.fromkeys(s for m in MODES.values() for s in m.switches),
                                       "HALFNOBARREDPAIRUNTILT18", "FIXEDCUES", "RESETPWEVERYTRIAL", "MIXNETWORKS")
                     if getattr(self, name)]
        if not self.EVAL and eval_only:
            raise ConfigError(f"{', '.join(eval_only)} only apply when EVAL = True (evaluation); "
                              "meta-training always uses the standard task")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.DEVICE):
            raise ConfigError(f'DEVICE must be "auto", "cpu" or "cuda", not {self.DEVICE!r}')
        for settings in (self.settings, self.train_config):
            try:
                settings().validate()
            except ChoiceError as error:
                raise ConfigError(f"{self._switch_of(error.setting)}: {error.detail}") from None
        if self.DEVICE.startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                raise ConfigError(f'DEVICE = "{self.DEVICE}" asked for, but CUDA is not available '
                                  "(Colab: Runtime > Change runtime type > a GPU)")
        return self

    def _check_types(self) -> None:
        kinds = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "list": (list, tuple)}
        words = {"bool": "True or False", "int": "a whole number", "float": "a number", "str": "a string",
                 "list": "a list of two items such as [3, 4]"}
        for f in fields(self):
            value = getattr(self, f.name)
            if (isinstance(value, bool) and f.type != "bool") or not isinstance(value, kinds[f.type]):
                raise ConfigError(f"{f.name} must be {words[f.type]}, not {value!r}")

    @staticmethod
    def _switch_of(setting: str | None) -> str:
        """The switch that sets `setting` (a field of Settings or TrainConfig)."""
        for f in fields(NotebookConfig):
            if setting in (f.metadata["evaluation"], f.metadata["training"]):
                return f.name
        return DERIVED.get(setting, (None, None, setting))[2]

    # -----------------------------------------------------------------------------------------------------
    @property
    def experiment(self) -> str:
        """The mode whose switches (transitive.evaluation.experiments) are all set, the most specific one."""
        from ..evaluation.experiments import MODES
        chosen = [m for m in MODES.values() if m.switches and all(getattr(self, s) for s in m.switches)]
        return max(chosen, key=lambda m: len(m.switches)).mode if chosen else "standard"

    @property
    def alpha_shape(self) -> str:
        return "neuron" if self.VECTALPHA else "scalar" if self.SCALARALPHA else "synapse"

    @property
    def add_barred_pair(self):
        """ADDBARREDPAIR when SHOWALLSELECTS is off (it is then withheld too), else None."""
        return None if self.SHOWALLSELECTS else tuple(self.ADDBARREDPAIR)

    @property
    def massed_trials(self) -> int:
        return self.NBMASSEDTRIALS or DEFAULT_MASSED_TRIALS

    def makes(self, figure: str) -> bool:
        """Whether the selected experiment makes this figure (see transitive.figures.registry.FIGURES)."""
        from ..figures.registry import FIGURES
        made = FIGURES[figure].made_with(self.settings())
        if not made:
            print(f"({figure}: not made in the '{self.experiment}' experiment with these switches)")
        return made

    def settings(self):
        """The evaluation settings (transitive.evaluation.Settings) these switches select."""
        from ..evaluation.runs import Settings
        return Settings(**self._fields("evaluation"))

    def _fields(self, target: str) -> dict:
        """{field: value} of the settings the switches (and the values derived from them) set in `target`."""
        values = {f.metadata[target]: getattr(self, f.name) for f in fields(self) if f.metadata[target]}
        values.update({dests[target == "training"]: getattr(self, name) for name, dests in DERIVED.items()
                       if dests[target == "training"]})
        return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}

    def device(self) -> str:
        """DEVICE, with "auto" the GPU when there is one."""
        if self.DEVICE != "auto":
            return self.DEVICE
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    def save_path(self) -> Path:
        """Where meta-training saves NETFILE (its checkpoint and log beside it): in DRIVEFOLDER when set."""
        return drive_folder(self.DRIVEFOLDER) / self.NETFILE if self.DRIVEFOLDER else Path(self.NETFILE)

    def network_file(self, say=print) -> Path:
        """The parameter file to analyse: NETFILE (in DRIVEFOLDER, then beside the notebook, when DRIVEFOLDER is
        set); when the default net.dat is missing, our active network net_active.dat, saying so in one line. A
        NETFILE that is nowhere is returned as it is: loading it then says that it was not found."""
        places = [self.save_path()] + ([Path(self.NETFILE)] if self.DRIVEFOLDER else [])
        found = next((path for path in places if path.exists()), None)
        if found is not None:
            return found
        if self.NETFILE == DEFAULT_NETFILE and Path(ACTIVE).is_file():
            if say:
                say(f"{places[0]} not found: analysing {ACTIVE} (our active network) instead; "
                    f'NETFILE = "{PASSIVE}" analyses the passive one, or upload your own network as {DEFAULT_NETFILE}')
            return Path(ACTIVE)
        return places[0]

    def runs(self, net, netfile=None, log=print):
        """The experiments of `net` (transitive.evaluation.runs.Runs); the learning curve is the .csv beside `netfile`."""
        from ..evaluation.runs import Runs
        curve = Path(netfile or self.network_file(say=None)).with_suffix(".csv")
        return Runs(net, self.settings(), log=log, curves={"this run": curve} if curve.exists() else {})

    def load_network(self, device: str = "cpu", netfile=None):
        """`netfile` (by default network_file()), with the output weights of MIXNETWORKSFILE when MIXNETWORKS."""
        from ..model.io import load_network
        netfile = netfile or self.network_file()
        net = load_network(netfile, device, self.NETWORK)
        if net.alpha_shape != self.alpha_shape:
            switch = {"synapse": "VECTALPHA = SCALARALPHA = False", "neuron": "VECTALPHA = True",
                      "scalar": "SCALARALPHA = True"}[net.alpha_shape]
            raise ConfigError(f"{netfile} has plasticity coefficients per {net.alpha_shape}: set {switch}")
        if self.MIXNETWORKS:
            other = load_network(self.MIXNETWORKSFILE, device, self.NETWORK)
            net.h2o.load_state_dict(other.h2o.state_dict())
        return net

    def train_config(self, device: str = "cpu"):
        """The meta-training settings: the package's defaults (transitive.training.TrainConfig, the paper's
        values) with the switches of this notebook, in the continual regime."""
        from ..training.config import TrainConfig
        return TrainConfig(regime="continual", save_every=200, device=device, **self._fields("training"))


# The values derived from several switches: (the field of Settings, the field of TrainConfig it sets, the switch
# an error about it names).
DERIVED = {"experiment": ("experiment", None, "LINKEDLISTSEVAL"), "alpha_shape": (None, "alpha_shape", "VECTALPHA"),
           "add_barred_pair": ("add_barred_pair", None, "ADDBARREDPAIR"),
           "massed_trials": ("massed_trials", None, "NBMASSEDTRIALS")}


def drive_folder(name: str) -> Path:
    """The folder `name` of the user's Google Drive, created if missing; in Colab the Drive is mounted first
    (Colab asks for permission). Elsewhere: ConfigError."""
    from ..model.io import check_output_folder
    drive = Path(DRIVE_MOUNT) / "MyDrive"
    if not drive.is_dir():
        try:
            from google.colab import drive as colab_drive
        except ImportError:
            raise ConfigError(f'DRIVEFOLDER = "{name}" keeps NETFILE in Google Drive, which Colab mounts; elsewhere '
                              'set DRIVEFOLDER = "" and give NETFILE a path such as "runs/net.dat"') from None
        colab_drive.mount(DRIVE_MOUNT)
    return check_output_folder(drive / name, "DRIVEFOLDER")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def meta_train(config: NotebookConfig, device: str = "cpu", say=print):
    """EVAL = False: meta-train into NETFILE (in DRIVEFOLDER when set), resuming its checkpoint if there is
    one; says where it saves. Stops the notebook with one line when the training did not reach its last
    episode (interrupted)."""
    from ..training.trainer import Trainer
    path = config.save_path()
    trainer = Trainer(config.train_config(device), path, resume=True)
    checkpoint = trainer.paths["checkpoint"].name
    where = (f"meta-training into {path.resolve()} ({checkpoint} and {trainer.paths['curve'].name} beside it, "
             f"saved every {trainer.config.save_every} episodes")
    where += f"; resuming at episode {trainer.episode})" if trainer.episode else ")"
    if in_colab() and not config.DRIVEFOLDER:
        where += "; Colab deletes these files with the runtime: set DRIVEFOLDER to keep them in Google Drive"
    say(where)
    try:
        trainer.train()
    except KeyboardInterrupt:
        raise StopNotebook(f"meta-training interrupted at episode {trainer.episode} of {config.TRAINEPISODES}; "
                           f"run this cell again to resume from the last save of {path}") from None
    if not trainer.finished:
        raise StopNotebook(f"meta-training stopped at episode {trainer.episode} of {config.TRAINEPISODES}; "
                           f"{path} and its checkpoint are saved: run this cell again to resume")
    say(f"meta-training done: {trainer.episode} episodes, parameters in {path}")
    return trainer


# ---------------------------------------------------------------------------------------------------------
# The files the notebook carries.
def pack(data: bytes) -> str:
    """Bytes as lines of text for a notebook cell: xz-compressed (lc=0, lp=pb=2: float32 parameters are
    4-byte aligned, which saves 9%), then base85 (no quotes or backslashes), in lines of PACKED_LINE."""
    import base64
    import lzma
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 0, "lp": 2, "pb": 2}]
    text = base64.b85encode(lzma.compress(data, format=lzma.FORMAT_XZ, filters=filters)).decode("ascii")
    return "\n".join(text[k:k + PACKED_LINE] for k in range(0, len(text), PACKED_LINE))


def unpack(text: str) -> bytes:
    """The bytes `pack` packed (its line breaks and any other white space ignored)."""
    import base64
    import lzma
    return lzma.decompress(base64.b85decode("".join(text.split())))


def write_bundled(files: dict, folder=".", say=print) -> list[str]:
    """Write the files the notebook carries ({name: (sha256, packed text)}) into `folder`, each only when it
    is missing there (a file of that name is never replaced). Returns the names written."""
    import hashlib
    import lzma
    from ..model.io import OutputPathError, atomic_write_bytes
    written = []
    for name, (digest, text) in files.items():
        path = Path(folder) / name
        if path.exists():
            continue
        try:
            data = unpack(text)
        except (ValueError, lzma.LZMAError):  # not whole base85, or xz data
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise StopNotebook(f"this notebook's copy of {name} is damaged (its checksum differs): "
                               "download main.ipynb again")
        try:
            atomic_write_bytes(data, path)
        except OSError as error:
            raise OutputPathError(f"cannot write {path} ({error.strerror or type(error).__name__})") from None
        written.append(name)
    if written:
        say(f"wrote {', '.join(written)} (our active and passive networks, their training logs) beside the notebook")
    return written


def save_and_show(fig, name: str, folder) -> list[Path]:
    """Save a figure as PNG and PDF under its original file name, and display it (in a notebook)."""
    from ..figures import save_figure
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
