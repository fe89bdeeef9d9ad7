"""One seed's meta-training run (docs/method.md, meta-training): what the trainer advances, one or several
at once (a population).

    the regime's trials (`transitive.training.regimes`); at a reset, a fresh network state   start_episode
    ... the trainer runs the episode, backpropagates its loss and steps (`stepping`) ...
    every 10th episode: a row of the training log; every 200th: save                           log, save

The network is initialised from the run's seed without touching the caller's random state; every random
draw (list length, items, pairs, old items, actions) comes from the run's own generator. A checkpoint holds
everything needed to continue exactly as if never interrupted: parameters, optimizer, the generator's
state, the carried network state and kept items, and the training log.
"""
from __future__ import annotations

import csv
import io
import sys
from dataclasses import asdict

import torch

from ..model.io import ParameterFileError, atomic_save, atomic_write_text, read_torch_file, save_network
from ..model.network import NetworkState, PlasticNetwork
from ..model.variants import build_network, same_network
from .config import CURVE_COLUMNS, RESUME_MAY_CHANGE, TrainConfig, paths_for
from .loss import OPTIONAL_TERMS
from .regimes import Curriculum


def _build_network(config: TrainConfig) -> PlasticNetwork:
    """The network of a fresh run, of the class config.network names (`transitive.model.variants`),
    initialised from config.seed without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):  # the network is initialised on the CPU, then moved
        torch.random.default_generator.manual_seed(config.seed)
        return build_network(config.network, alpha_shape=config.alpha_shape,
                             positive_alpha=config.positive_alpha or config.positive_alpha_init_only,
                             frozen_input=config.frozen_input)


class SeedRun:
    """One seed's run: its network, Adam state, random generator, episode count, carried state and kept items,
    training log and files. Every random draw of the run comes from `self.generator`; the `Trainer` advances
    one or more members together.

    A fresh member (no checkpoint at `out`), a resumed one (`resume`: its checkpoint holds everything needed to
    continue as if never interrupted) or a branch (`start_from`, see below)."""

    def __init__(self, config: TrainConfig, out, resume: bool = False, start_from=None):
        """`start_from`: another run's checkpoint to branch from when this run has none yet (its parameters,
        optimizer, random state, carried state, episode count and curve); this run's own settings (for
        example a loss penalty) apply from that episode on."""
        config.validate()
        self.config, self.paths = config, paths_for(out)
        self.device = torch.device(config.device)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.started_from = None
        self._board = None  # the TensorBoard writer while training runs with config.tensorboard
        checkpoint = self.paths["checkpoint"]
        if resume and checkpoint.exists():
            self._load_checkpoint(checkpoint)
        elif checkpoint.exists():
            raise ParameterFileError(f"{checkpoint} exists: add --resume to continue that run, or remove it")
        elif start_from is not None:
            self._load_checkpoint(start_from, branch=True)
            self.started_from = {"checkpoint": str(start_from), "episode": self.episode}
        else:
            self._start_fresh()

    @property
    def finished(self) -> bool:
        return self.episode >= self.config.episodes

    # ---------------------------------------------------------------------------------------------------
    def _start_fresh(self) -> None:
        self.net = _build_network(self.config).to(self.device)
        self.optimizer = self._make_optimizer()
        self.episode = 0
        self.curve: list[dict] = []
        self.carried = None  # network state carried between episodes (continual regime)
        self.curriculum = Curriculum.of(self.config)  # list length and kept items (continual regime)
        self.elapsed = 0.0  # training wall time, in seconds, summed over all sessions of this run

    def _make_optimizer(self):
        trainable = [p for p in self.net.parameters() if p.requires_grad]  # frozen input: not i2h
        return torch.optim.Adam(trainable, lr=self.config.lr, eps=self.config.adam_eps,
                                weight_decay=self.config.loss.weight_decay)

    def _load_checkpoint(self, path, branch: bool = False) -> None:
        saved = read_torch_file(path, self.device, what="checkpoint")
        try:
            config = TrainConfig.from_dict(saved["config"])
        except (KeyError, TypeError) as error:
            raise ParameterFileError(f"{path} is not a training checkpoint ({error})") from None
        # Resuming needs the same settings; branching only the same network layout.
        compared = ("alpha_shape", "frozen_input", "network") if branch else \
            [k for k in asdict(config) if k not in RESUME_MAY_CHANGE]
        changed = sorted(k for k in compared if asdict(config)[k] != asdict(self.config)[k]
                         and not (k == "network" and same_network(config.network, self.config.network)))
        if "network" in changed:
            raise ParameterFileError(f"{path} was made by network {config.network!r}, not {self.config.network!r} "
                                     f"as given; {'branch' if branch else 'resume'} with --network {config.network}")
        if changed:
            hint = "branch with the same network layout" if branch else "resume with the same options"
            raise ParameterFileError(f"{path} was made with other settings ({', '.join(changed)}); {hint}")
        if branch and saved["episode"] >= self.config.episodes:
            raise ParameterFileError(f"{path} is at episode {saved['episode']}, not before --episodes "
                                     f"{self.config.episodes}")
        self.net = _build_network(config).to(self.device)
        self.net.load_state_dict(saved["model"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(saved["optimizer"])
        for group in self.optimizer.param_groups:  # a branch trains under its own settings
            group.update(lr=self.config.lr, eps=self.config.adam_eps, weight_decay=self.config.loss.weight_decay)
        self.episode = saved["episode"]
        self.curve = saved["curve"]
        self.elapsed = saved.get("elapsed", 0.0)
        self.started_from = saved.get("started_from")
        self.curriculum = Curriculum.of(self.config)
        self.curriculum.nbcues, self.curriculum.kept_items = saved["nbcues"], list(saved["kept_items"])
        self.carried = None
        if saved["carried"] is not None:
            self.carried = NetworkState(*saved["carried"])
        if saved.get("generator") is not None:
            self.generator.set_state(saved["generator"].cpu())
        else:  # written before runs had their own generator: continue with a new, still seeded, stream
            self.generator.manual_seed(config.seed * 1_000_003 + self.episode)
            sys.stderr.write(f"warning: {path} has no random generator state (an older version wrote it); "
                             f"the run continues with a new random stream\n")

    @property
    def at_reset(self) -> bool:
        """Whether the next episode starts afresh (the simple regime, or a reset of the continual one): the
        carried state, kept items and list length are then not needed to continue."""
        return self.curriculum.resets_at(self.episode)

    def save(self) -> None:
        """Parameter file, checkpoint and curve, each written atomically (checkpoint last). At a reset the
        checkpoint leaves out the carried state and kept items (the next episode draws new ones): about 1 MB
        instead of 14 MB at batch 32."""
        save_network(self.net, self.paths["params"])
        self._write_curve()
        carried = None if self.at_reset else self.carried
        atomic_save({
            "config": asdict(self.config), "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "episode": self.episode, "curve": self.curve,
            "nbcues": None if self.at_reset else self.curriculum.nbcues,
            "kept_items": [] if self.at_reset else self.curriculum.kept_items,
            "generator": self.generator.get_state(), "elapsed": self.elapsed, "started_from": self.started_from,
            "carried": None if carried is None else (carried.rates, carried.trace, carried.plastic_weights),
        }, self.paths["checkpoint"])

    def _write_curve(self) -> None:
        buffer = io.StringIO()
        optional = [name for name in OPTIONAL_TERMS if any(name in row for row in self.curve)]
        writer = csv.DictWriter(buffer, fieldnames=[*CURVE_COLUMNS, *optional], restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.curve)
        atomic_write_text(buffer.getvalue(), self.paths["curve"])

    # ---------------------------------------------------------------------------------------------------
    def start_episode(self) -> None:
        """At a reset the network starts afresh (no carried state)."""
        if self.at_reset:
            self.carried = None

    def log(self, values: dict, episodes_per_second: float) -> dict:
        """Append the current episode's row to the training log (and TensorBoard); returns the row."""
        row = {"episode": self.episode, **values, "episodes_per_second": episodes_per_second}
        self.curve.append(row)
        if self._board is not None:
            for name, value in row.items():
                if name != "episode":
                    self._board.add_scalar(f"train/{name}", value, self.episode)
        return row

    def open_board(self) -> None:
        """The TensorBoard writer, when config.tensorboard (a warning line when TensorBoard is missing)."""
        self._board = None
        if not self.config.tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            sys.stderr.write("warning: TensorBoard is not installed (pip install tensorboard); "
                             "the training log goes to the CSV file only\n")
            return
        self._board = SummaryWriter(log_dir=str(self.paths["tensorboard"]))

    def close_board(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None
