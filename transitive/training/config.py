"""The one configuration of meta-training (`TrainConfig`), each setting declared once with its range or choices,
help and other spellings (`setting`, from which the command line's options, the notebook's switches and the
checks are made), and where a run writes its files.

A run writes its parameter file (`net.dat`), a checkpoint beside it (`net.ckpt`), its training log (`net.csv`)
and, optionally, a TensorBoard folder. Several seeds trained together (a population, or a sweep) write one
folder per seed: `DIR/seed_<k>/net.dat` and the rest beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import torch

from ..model.errors import ChoiceError
from ..model.network import ALPHA_SHAPES
from ..model.variants import NetworkClassError, network_class
from ..model.task import LETTERS
from .loss import LossWeights

MAX_ITEMS = len(LETTERS)  # the longest list the task can name


class SettingError(ChoiceError):
    """A setting out of its range: `setting` names it (a field; loss weights as loss.<name>), `detail` says what
    is allowed. The command line names the option instead, the notebook the switch."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"{setting}: {message}", setting)


REGIMES = ("simple", "continual")
# The training log's columns, in order (see `learning.log_values`), then the optional loss terms whose weight
# is nonzero (loss.OPTIONAL_TERMS); older logs have only the first three and "loss".
CURVE_COLUMNS = ("episode", "test_reward", "percent_correct", "test_accuracy", "loss", "policy_loss", "value_loss",
                 "entropy_term", "plastic_penalty", "grad_norm", "modulation_feedback", "modulation_delay", "eta",
                 "DAmult", "alpha_abs_mean", "episodes_per_second")
RESUME_MAY_CHANGE = ("episodes", "device", "save_every", "tensorboard")  # other settings must match to resume


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting: from `low` to `high`, both included (`low` excluded when
    `above_low`); whole numbers only when `whole`. Never NaN or infinite."""

    low: float
    high: float
    whole: bool = False
    above_low: bool = False

    def allows(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above_low else value >= self.low) and value <= self.high

    @property
    def text(self) -> str:
        """In words, e.g. 'a whole number from 1 to 65,536' or 'a number above 0, at most 1'."""
        def shown(x):
            return f"{x:,}" if self.whole else f"{x:g}"
        kind = "a whole number" if self.whole else "a number"
        if self.above_low:
            return f"{kind} above {shown(self.low)}, at most {shown(self.high)}"
        return f"{kind} from {shown(self.low)} to {shown(self.high)}"


def whole(low: int, high: int) -> Range:
    return Range(low, high, whole=True)


def setting(default, help: str, allowed: Range | None = None, choices=None, aliases=(), factory=None):
    """A setting, declared once: its default, its one-line help, its range (numbers) or choices (text) and any
    further spellings of its command-line option. The command line's options and `--help`, the notebook's
    switches and `validate` are made from these (`setting_rules`)."""
    metadata = {"help": help, "range": allowed, "choices": choices, "aliases": tuple(aliases),
                "optional": default is None and factory is None}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def check_settings(settings) -> None:
    """Every field of the dataclass `settings` (and of its nested dataclasses, as <field>.<name>) within its
    declared range or choices; SettingError naming the first that is not."""
    for name, value, declared in declared_settings(settings):
        if value is None and declared.get("optional"):  # an optional setting left unset
            continue
        allowed, choices = declared.get("range"), declared.get("choices")
        if allowed is not None and not allowed.allows(value):
            raise SettingError(name, f"expected {allowed.text}, got {value!r}")
        if choices is not None and value not in choices:
            raise SettingError(name, f"expected one of {', '.join(map(str, choices))}, got {value!r}")


def declared_settings(settings, prefix: str = ""):
    """(name, value, metadata) of every field of a dataclass instance, nested dataclasses as <field>.<name>,
    with the ranges of the loss weights (LOSS_RANGES) added."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if is_dataclass(value):
            yield from declared_settings(value, f.name)
            continue
        name = f"{prefix}.{f.name}" if prefix else f.name
        declared = dict(f.metadata)
        if prefix == "loss":
            declared.update(range=LOSS_RANGES[f.name], aliases=LOSS_ALIASES.get(f.name, ()))
        yield name, value, declared


LARGEST_SEED = 2**32 - 1  # (a member's episode seed is seed * 1_000_003 + episode, well within torch's 64 bits)
# The ranges are generous around the paper's values (lr 1e-4, gc 2, batch 32, 30000 episodes): what lies outside
# is a typo or a run that cannot learn (a learning rate above 1, a gradient clip of 1e12), refused before any
# work. The loss weights (training.loss.LossWeights) have their ranges and earlier spellings here.
LOSS_RANGES = {"discount": Range(0, 1), "late_trials": whole(0, 1000),
               **{name: Range(0, 1000) for name in (
                   "entropy", "value", "late_multiplier", "plastic_l2", "modulation_l1", "rate_l1", "action1_penalty",
                   "weight_decay", "delay_modulation_l1", "delay_feedback_ratio", "delay_drive")}}
LOSS_ALIASES = {"modulation_l1": ["--loss-lda", "--lda"], "rate_l1": ["--loss-lhl1"], "action1_penalty": ["--loss-wp"],
                "weight_decay": ["--loss-l2"], "delay_modulation_l1": ["--loss-step3-modulation", "--step3-penalty"],
                "delay_feedback_ratio": ["--loss-step3-ratio", "--step3-ratio-penalty"],
                "delay_drive": ["--loss-step3-drive", "--step3-drive-penalty"]}
LOTS = 10_000_000


@dataclass
class TrainConfig:
    episodes: int = setting(30000, "number of meta-training episodes (nbiter)", whole(1, LOTS))
    batch: int = setting(32, "episodes run side by side for each optimizer step (bs)", whole(1, 65_536))
    regime: str = setting("continual", "'continual': network state carried over between resets (main.ipynb); "
                                       "'simple': fresh state every episode (simple.ipynb)", choices=REGIMES)
    seed: int = setting(0, "seed of the network's initialisation and of every random draw of the run (rngseed)",
                        whole(0, LARGEST_SEED))
    lr: float = setting(1e-4, "Adam learning rate (lr)", Range(0, 1, above_low=True))
    adam_eps: float = setting(1e-6, "Adam epsilon (eps)", Range(0, 1, above_low=True))
    grad_clip: float = setting(2.0, "the gradient's norm is clipped to this (gc)", Range(0, 1000, above_low=True))
    burn_in: int = setting(101, "no optimizer step during the first this many episodes (the original's "
                                "'numepisode > 100')", whole(0, LOTS))
    save_every: int = setting(200, "save the parameters, checkpoint and training log every this many episodes "
                                   "(save_every)", whole(1, LOTS))
    log_every: int = setting(10, "one row of the training log every this many episodes", whole(1, LOTS))
    min_items: int = setting(4, "fewest items in a list (nbcuesrange starts here)", whole(2, MAX_ITEMS))
    max_items: int = setting(8, "most items in a list, inclusive (nbcuesrange = range(4, 9))", whole(2, MAX_ITEMS))
    learning_trials: int = setting(20, "learning trials per episode, adjacent pairs only (nbtraintrials)",
                                   whole(0, 1000))
    test_trials: int = setting(10, "test trials per episode, any pair (nbtesttrials)", whole(1, 1000))
    resets_every: int = setting(3, "continual regime: fresh state and a new list length every this many "
                                   "episodes (nbepsbwresets)", whole(1, 1_000_000))
    old_items_probability: float = setting(0.25, "continual regime: chance that a test trial shows its pair with "
                                                 "an earlier episode's items (PROBAOLDDATA)", Range(0, 1))
    alpha_shape: str = setting("synapse", "plasticity coefficients: 'synapse' (the paper's), 'neuron' "
                                          "(VECTALPHA) or 'scalar' (SCALARALPHA)", choices=ALPHA_SHAPES,
                               aliases=["--alpha"])
    positive_alpha: bool = setting(False, "|alpha| at initialisation and alpha clipped at 0 after every "
                                          "optimizer step (POSALPHA)")
    positive_alpha_init_only: bool = setting(False, "|alpha| at initialisation only (POSALPHAINITONLY)")
    frozen_input: bool = setting(False, "input weights of neurons n/3 and above and the whole input bias start "
                                        "at 0 (as the original's add-on) and the input layer is never trained")
    network: str = setting("plastic", "the network class: 'plastic' (the paper's), the controls 'no-plasticity' "
                                      "(alpha fixed at 0) and 'no-modulation' (m(t) a learned constant), or your "
                                      "own, FILE.py:Class or module:Class (docs/extending.md)")
    reset_rates_every_trial: bool = setting(True, "set the rates r to 0 at every trial start "
                                                  "(RESETHIDDENEVERYTRIAL)")
    reset_trace_every_trial: bool = setting(True, "set the eligibility trace H to 0 at every trial start "
                                                  "(RESETETEVERYTRIAL)")
    tensorboard: bool = setting(False, "also write the training log to a TensorBoard folder beside the "
                                       "parameter file (needs the tensorboard package)")
    loss: LossWeights = setting(None, "weights of the loss's terms", factory=LossWeights)
    device: str = setting("cpu", "torch device to train on, e.g. cpu or cuda")

    def validate(self) -> None:
        """Every setting within its declared range or choices, and the combinations that work together;
        raises SettingError naming the first one that is not."""
        check_settings(self)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise SettingError("device", f"expected a torch device such as cpu, cuda or cuda:1, got {self.device!r}")
        if self.min_items > self.max_items:
            raise SettingError("min_items", f"expected at most max_items ({self.max_items}), got {self.min_items}")
        try:
            network_class(self.network)
        except NetworkClassError as error:
            raise SettingError("network", str(error)) from None
        if self.network == "no-plasticity" and (self.positive_alpha or self.positive_alpha_init_only):
            raise SettingError("network", "the no-plasticity control has alpha fixed at 0: it takes neither "
                                          "positive_alpha nor positive_alpha_init_only")
        if self.positive_alpha and self.positive_alpha_init_only:
            raise SettingError("positive_alpha", "choose one of positive_alpha (POSALPHA) and "
                                                 "positive_alpha_init_only (POSALPHAINITONLY), not both")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """From `asdict` output (a checkpoint's), also one written by an earlier version: loss weights under
        their earlier names (lda, wp, step3_drive, ...), and positive_alpha before it took its present meaning
        (then positive_alpha alone meant |alpha| at init only, and clip_alpha added the clipping)."""
        values = dict(values)
        if "clip_alpha" in values:
            clipped = bool(values.pop("clip_alpha"))
            positive = bool(values.get("positive_alpha", False))
            values["positive_alpha"] = positive and clipped
            values["positive_alpha_init_only"] = positive and not clipped
        loss_names = {f.name for f in fields(LossWeights)}
        loss = {LossWeights.OLD_NAMES.get(k, k): v for k, v in values.get("loss", {}).items()}  # earlier names
        values["loss"] = LossWeights(**{k: v for k, v in loss.items() if k in loss_names})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Every numeric training setting's range, loss weights as loss.<name> (from the declarations above).
SETTING_RANGES = {name: declared["range"] for name, _, declared in declared_settings(TrainConfig())
                  if declared.get("range") is not None}


def paths_for(out) -> dict:
    """Where a run writes: the parameter file, its checkpoint, its training log and its TensorBoard folder."""
    out = Path(out)
    return {"params": out, "checkpoint": out.with_suffix(".ckpt"), "curve": out.with_suffix(".csv"),
            "tensorboard": out.with_suffix(".tensorboard")}


SEED_FOLDER = "seed_{}"
PARAMS_NAME = "net.dat"


def seed_params(out, seed: int) -> Path:
    """The parameter file of seed `seed` in a population's or sweep's folder `out`."""
    return Path(out) / SEED_FOLDER.format(seed) / PARAMS_NAME
