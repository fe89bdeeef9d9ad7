"""The one configuration of meta-training (`TrainConfig`, from which the command line's options are made) and
where a run writes its files.

A run writes its parameter file (`net.dat`), a checkpoint beside it (`net.ckpt`), its training log (`net.csv`)
and, optionally, a TensorBoard folder. Several seeds trained together (a population, or a sweep) write one
folder per seed: `DIR/seed_<k>/net.dat` and the rest beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from ..model.network import ALPHA_SHAPES
from ..model.task import LETTERS
from .loss import LossWeights

MAX_ITEMS = len(LETTERS)  # the longest list the task can name


class SettingError(ValueError):
    """A training setting out of its range: `setting` names it (a TrainConfig field; loss weights as
    loss.<name>), the message says what is allowed."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"{setting}: {message}")
        self.setting, self.detail = setting, message

REGIMES = ("simple", "continual")
# The training log's columns, in order (see `learning.log_values`), then the optional loss terms whose weight
# is nonzero (loss.OPTIONAL_TERMS); older logs have only the first three and "loss".
CURVE_COLUMNS = ("episode", "test_reward", "percent_correct", "test_accuracy", "loss", "policy_loss", "value_loss",
                 "entropy_term", "plastic_penalty", "grad_norm", "modulation_feedback", "modulation_delay", "eta",
                 "DAmult", "alpha_abs_mean", "episodes_per_second")
RESUME_MAY_CHANGE = ("episodes", "device", "save_every", "tensorboard")  # other settings must match to resume


def _option(default, help: str):
    """A configuration field with its one-line help (the command line's options are made from these)."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    episodes: int = _option(30000, "number of meta-training episodes (nbiter)")
    batch: int = _option(32, "episodes run side by side for each optimizer step (bs)")
    regime: str = _option("continual", "'continual': network state carried over between resets (main.ipynb); "
                                       "'simple': fresh state every episode (simple.ipynb)")
    seed: int = _option(0, "seed of the network's initialisation and of every random draw of the run (rngseed)")
    lr: float = _option(1e-4, "Adam learning rate (lr)")
    adam_eps: float = _option(1e-6, "Adam epsilon (eps)")
    grad_clip: float = _option(2.0, "the gradient's norm is clipped to this (gc)")
    burn_in: int = _option(101, "no optimizer step during the first this many episodes (the original's "
                                "'numepisode > 100')")
    save_every: int = _option(200, "save the parameters, checkpoint and training log every this many episodes "
                                   "(save_every)")
    log_every: int = _option(10, "one row of the training log every this many episodes")
    min_items: int = _option(4, "fewest items in a list (nbcuesrange starts here)")
    max_items: int = _option(8, "most items in a list, inclusive (nbcuesrange = range(4, 9))")
    learning_trials: int = _option(20, "learning trials per episode, adjacent pairs only (nbtraintrials)")
    test_trials: int = _option(10, "test trials per episode, any pair (nbtesttrials)")
    resets_every: int = _option(3, "continual regime: fresh state and a new list length every this many "
                                   "episodes (nbepsbwresets)")
    old_items_probability: float = _option(0.25, "continual regime: chance that a test trial shows its pair with "
                                                 "an earlier episode's items (PROBAOLDDATA)")
    alpha_shape: str = _option("synapse", "plasticity coefficients: 'synapse' (the paper's), 'neuron' "
                                          "(VECTALPHA) or 'scalar' (SCALARALPHA)")
    positive_alpha: bool = _option(False, "|alpha| at initialisation and alpha clipped at 0 after every "
                                          "optimizer step (POSALPHA)")
    positive_alpha_init_only: bool = _option(False, "|alpha| at initialisation only (POSALPHAINITONLY)")
    frozen_input: bool = _option(False, "input weights of neurons n/3 and above and the whole input bias start "
                                        "at 0 (as the original's add-on) and the input layer is never trained")
    reset_rates_every_trial: bool = _option(True, "set the rates r to 0 at every trial start "
                                                  "(RESETHIDDENEVERYTRIAL)")
    reset_trace_every_trial: bool = _option(True, "set the eligibility trace H to 0 at every trial start "
                                                  "(RESETETEVERYTRIAL)")
    tensorboard: bool = _option(False, "also write the training log to a TensorBoard folder beside the "
                                       "parameter file (needs the tensorboard package)")
    loss: LossWeights = field(default_factory=LossWeights, metadata={"help": "weights of the loss's terms"})
    device: str = _option("cpu", "torch device to train on, e.g. cpu or cuda")

    def validate(self) -> None:
        """Every setting within its allowed range; raises SettingError naming the first one that is not."""
        for name, value, ok, allowed in self._ranges():
            if not ok:
                raise SettingError(name, f"expected {allowed}, got {value!r}")
        if self.min_items > self.max_items:
            raise SettingError("min_items", f"expected at most max_items ({self.max_items}), got {self.min_items}")
        if self.positive_alpha and self.positive_alpha_init_only:
            raise SettingError("positive_alpha", "choose one of positive_alpha (POSALPHA) and "
                                                 "positive_alpha_init_only (POSALPHAINITONLY), not both")

    def _ranges(self):
        """(setting, value, whether allowed, what is allowed) for every setting with a range."""
        def whole(x, low):
            return isinstance(x, int) and not isinstance(x, bool) and x >= low

        def number(x):
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        loss = self.loss
        try:
            torch_device_ok = bool(torch.device(self.device).type)
        except (RuntimeError, TypeError):
            torch_device_ok = False
        yield from (
            ("episodes", self.episodes, whole(self.episodes, 1), "a whole number >= 1"),
            ("batch", self.batch, whole(self.batch, 1), "a whole number >= 1"),
            ("regime", self.regime, self.regime in REGIMES, f"one of {', '.join(REGIMES)}"),
            ("seed", self.seed, whole(self.seed, 0), "a whole number >= 0"),
            ("lr", self.lr, number(self.lr) and self.lr > 0, "a number > 0"),
            ("adam_eps", self.adam_eps, number(self.adam_eps) and self.adam_eps > 0, "a number > 0"),
            ("grad_clip", self.grad_clip, number(self.grad_clip) and self.grad_clip > 0, "a number > 0"),
            ("burn_in", self.burn_in, whole(self.burn_in, 0), "a whole number >= 0"),
            ("save_every", self.save_every, whole(self.save_every, 1), "a whole number >= 1"),
            ("log_every", self.log_every, whole(self.log_every, 1), "a whole number >= 1"),
            ("min_items", self.min_items, whole(self.min_items, 2) and self.min_items <= MAX_ITEMS,
             f"a whole number from 2 to {MAX_ITEMS}"),
            ("max_items", self.max_items, whole(self.max_items, 2) and self.max_items <= MAX_ITEMS,
             f"a whole number from 2 to {MAX_ITEMS}"),
            ("learning_trials", self.learning_trials, whole(self.learning_trials, 0), "a whole number >= 0"),
            ("test_trials", self.test_trials, whole(self.test_trials, 1), "a whole number >= 1"),
            ("resets_every", self.resets_every, whole(self.resets_every, 1), "a whole number >= 1"),
            ("old_items_probability", self.old_items_probability,
             number(self.old_items_probability) and 0 <= self.old_items_probability <= 1, "a number from 0 to 1"),
            ("alpha_shape", self.alpha_shape, self.alpha_shape in ALPHA_SHAPES, f"one of {', '.join(ALPHA_SHAPES)}"),
            ("device", self.device, torch_device_ok, "a torch device such as cpu, cuda or cuda:1"),
            ("loss.discount", loss.discount, number(loss.discount) and 0 <= loss.discount <= 1, "a number from 0 to 1"),
            ("loss.late_trials", loss.late_trials, whole(loss.late_trials, 0), "a whole number >= 0"),
        )
        for name in ("entropy", "value", "late_multiplier", "plastic_l2", "modulation_l1", "rate_l1",
                     "action1_penalty", "weight_decay", "delay_modulation_l1", "delay_feedback_ratio", "delay_drive"):
            value = getattr(loss, name)
            yield f"loss.{name}", value, number(value) and value >= 0, "a number >= 0"

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
