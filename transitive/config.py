"""The one configuration of meta-training (`TrainConfig`, from which the command line's options are made) and
where a run writes its files.

A run writes its parameter file (`net.dat`), a checkpoint beside it (`net.ckpt`), its training log (`net.csv`)
and, optionally, a TensorBoard folder. Several seeds trained together (a population, or a sweep) write one
folder per seed: `DIR/seed_<k>/net.dat` and the rest beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from .loss import LossWeights

REGIMES = ("simple", "continual")
# The training log's columns, in order (see `Trainer.learn`); older logs have only the first three and "loss".
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
    frozen_input: bool = _option(False, "input weights of neurons n/3 and above start at 0 and the input layer "
                                        "is never trained")
    reset_rates_every_trial: bool = _option(True, "set the rates r to 0 at every trial start "
                                                  "(RESETHIDDENEVERYTRIAL)")
    reset_trace_every_trial: bool = _option(True, "set the eligibility trace H to 0 at every trial start "
                                                  "(RESETETEVERYTRIAL)")
    tensorboard: bool = _option(False, "also write the training log to a TensorBoard folder beside the "
                                       "parameter file (needs the tensorboard package)")
    loss: LossWeights = field(default_factory=LossWeights, metadata={"help": "weights of the loss's terms"})
    device: str = _option("cpu", "torch device to train on, e.g. cpu or cuda")

    def validate(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, not {self.regime!r}")
        if self.positive_alpha and self.positive_alpha_init_only:
            raise ValueError("choose one of positive_alpha (POSALPHA) and positive_alpha_init_only "
                             "(POSALPHAINITONLY), not both")
        if not 2 <= self.min_items <= self.max_items:
            raise ValueError("need 2 <= min_items <= max_items")
        if self.episodes < 1 or self.batch < 1 or self.save_every < 1 or self.log_every < 1:
            raise ValueError("episodes, batch, save_every and log_every must be positive")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """From `asdict` output (a checkpoint's), also one written before positive_alpha took its present
        meaning: then positive_alpha alone meant |alpha| at init only, and clip_alpha added the clipping."""
        values = dict(values)
        if "clip_alpha" in values:
            clipped = bool(values.pop("clip_alpha"))
            positive = bool(values.get("positive_alpha", False))
            values["positive_alpha"] = positive and clipped
            values["positive_alpha_init_only"] = positive and not clipped
        loss_names = {f.name for f in fields(LossWeights)}
        values["loss"] = LossWeights(**{k: v for k, v in values.get("loss", {}).items() if k in loss_names})
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
