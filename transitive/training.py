"""Meta-training by advantage actor-critic (SPEC section 5), top to bottom.

    for each episode:
        (continual regime) every 3rd episode: fresh state, new number of items, forget kept items
        draw items and the pair schedule; sometimes show old items in test trials (continual)
        run the episode, compute the A2C loss, backpropagate, clip the gradient norm
        after the burn-in: Adam step
        every 10th episode: log the test-trial reward; every 200th: save net.dat, checkpoint and curve

A checkpoint holds everything needed to continue exactly as if never interrupted: parameters, optimizer,
random number generator states, the carried network state and kept items, and the learning curve.
"""
from __future__ import annotations

import csv
import io
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .episode import run_episode
from .io import ParameterFileError, atomic_save, atomic_write_text, read_torch_file, save_network
from .loss import LossWeights, a2c_loss
from .network import PlasticNetwork
from .task import Trials, draw_items, present, standard_schedule

REGIMES = ("simple", "continual")
CURVE_COLUMNS = ("episode", "test_reward", "percent_correct", "loss")


@dataclass
class TrainConfig:
    episodes: int = 30000
    batch: int = 32
    regime: str = "continual"
    seed: int = 0
    lr: float = 1e-4
    adam_eps: float = 1e-6
    grad_clip: float = 2.0
    burn_in: int = 101  # no optimizer step in episodes 0..burn_in-1
    save_every: int = 200
    log_every: int = 10
    min_items: int = 4
    max_items: int = 8  # inclusive: nbcues is drawn from range(4, 9)
    learning_trials: int = 20
    test_trials: int = 10
    resets_every: int = 3  # continual regime: nbepsbwresets
    old_items_probability: float = 0.25  # continual regime: test pair shown with an earlier episode's items
    alpha_shape: str = "synapse"
    positive_alpha: bool = False
    clip_alpha: bool = False  # with positive alpha: clip alpha at 0 after every optimizer step
    frozen_input: bool = False
    loss: LossWeights = field(default_factory=LossWeights)
    device: str = "cpu"

    def validate(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, not {self.regime!r}")
        if self.clip_alpha and not self.positive_alpha:
            raise ValueError("clipping alpha at 0 needs positive alpha (--positive-alpha)")
        if not 2 <= self.min_items <= self.max_items:
            raise ValueError("need 2 <= min_items <= max_items")
        if self.episodes < 1 or self.batch < 1 or self.save_every < 1 or self.log_every < 1:
            raise ValueError("episodes, batch, save_every and log_every must be positive")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        values["loss"] = LossWeights(**values.get("loss", {}))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def paths_for(out) -> dict:
    """Where a run writes: the parameter file, its checkpoint and its learning curve."""
    out = Path(out)
    return {"params": out, "checkpoint": out.with_suffix(".ckpt"), "curve": out.with_suffix(".csv")}


class Trainer:
    """Holds a run's state; `train()` runs it to the end (or until interrupted), resuming if asked."""

    def __init__(self, config: TrainConfig, out, resume: bool = False, progress: bool = True, start_from=None):
        """`start_from`: another run's checkpoint to branch from when this run has none yet (its parameters,
        optimizer, random state, carried state, episode count and curve); this run's own settings (for
        example a loss penalty) apply from that episode on."""
        config.validate()
        self.config, self.paths, self.progress = config, paths_for(out), progress
        self.device = torch.device(config.device)
        self.stop_requested = False
        self.started_from = None
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

    # ---------------------------------------------------------------------------------------------------
    def _start_fresh(self) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        self.net = PlasticNetwork(alpha_shape=config.alpha_shape, positive_alpha=config.positive_alpha)
        self.net.to(self.device)
        self.optimizer = self._make_optimizer()
        self.episode = 0
        self.curve: list[dict] = []
        self.carried = None  # network state carried between episodes (continual regime)
        self.nbcues = None
        self.kept_items: list[torch.Tensor] = []
        self.elapsed = 0.0  # training wall time, in seconds, summed over all sessions of this run

    def _make_optimizer(self):
        if self.config.frozen_input:
            self.net.i2h.requires_grad_(False)
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.Adam(trainable, lr=self.config.lr, eps=self.config.adam_eps)

    def _load_checkpoint(self, path, branch: bool = False) -> None:
        saved = read_torch_file(path, self.device, what="checkpoint")
        try:
            config = TrainConfig.from_dict(saved["config"])
        except (KeyError, TypeError) as error:
            raise ParameterFileError(f"{path} is not a training checkpoint ({error})") from None
        # Resuming needs the same settings; branching only the same network layout.
        compared = ("alpha_shape", "frozen_input") if branch else \
            [k for k in asdict(config) if k not in ("episodes", "device", "save_every")]
        changed = sorted(k for k in compared if asdict(config)[k] != asdict(self.config)[k])
        if changed:
            hint = "branch with the same network layout" if branch else "resume with the same options"
            raise ParameterFileError(f"{path} was made with other settings ({', '.join(changed)}); {hint}")
        if branch and saved["episode"] >= self.config.episodes:
            raise ParameterFileError(f"{path} is at episode {saved['episode']}, not before --episodes "
                                     f"{self.config.episodes}")
        self.config.validate()
        self.net = PlasticNetwork(alpha_shape=config.alpha_shape).to(self.device)
        self.net.load_state_dict(saved["model"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(saved["optimizer"])
        self.episode = saved["episode"]
        self.curve = saved["curve"]
        self.elapsed = saved.get("elapsed", 0.0)
        self.started_from = saved.get("started_from")
        self.nbcues = saved["nbcues"]
        self.kept_items = list(saved["kept_items"])
        self.carried = None
        if saved["carried"] is not None:
            from .network import NetworkState
            self.carried = NetworkState(*saved["carried"])
        torch.set_rng_state(saved["rng"]["torch"].cpu())
        if self.device.type == "cuda" and saved["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(saved["rng"]["cuda"].cpu(), self.device)

    def save(self) -> None:
        """Parameter file, checkpoint and curve, each written atomically (checkpoint last)."""
        save_network(self.net, self.paths["params"])
        self._write_curve()
        carried = self.carried
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        atomic_save({
            "config": asdict(self.config), "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "episode": self.episode, "curve": self.curve,
            "nbcues": self.nbcues, "kept_items": self.kept_items, "rng": rng, "elapsed": self.elapsed,
            "started_from": self.started_from,
            "carried": None if carried is None else (carried.rates, carried.trace, carried.plastic_weights),
        }, self.paths["checkpoint"])

    def _write_curve(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        writer.writerows(self.curve)
        atomic_write_text(buffer.getvalue(), self.paths["curve"])

    # ---------------------------------------------------------------------------------------------------
    def episode_trials(self) -> Trials:
        """Draw this episode's items and pairs (and, in the continual regime, reset or carry state)."""
        config, device = self.config, self.device
        if config.regime == "simple" or self.episode % config.resets_every == 0:
            self.carried = None
            self.nbcues = int(torch.randint(config.min_items, config.max_items + 1, (1,)))
            self.kept_items = []
        items = draw_items(config.batch, self.nbcues, device=device)
        pairs = standard_schedule(config.batch, self.nbcues, config.learning_trials, config.test_trials, device)
        trials = present(items, pairs)
        if config.regime == "continual" and self.kept_items:
            trials = self._mix_old_items(trials)
        if config.regime == "continual":
            self.kept_items.append(items)
        return trials

    def _mix_old_items(self, trials: Trials) -> Trials:
        """In each test trial, each batch element shows its pair with a random earlier episode's items
        with probability old_items_probability."""
        config = self.config
        batch, ntests = config.batch, config.test_trials
        old = torch.stack(self.kept_items, 1)  # (batch, episodes, nbcues, cs)
        which = torch.randint(0, old.shape[1], (batch, ntests), device=self.device)
        use_old = torch.rand(batch, ntests, device=self.device) < config.old_items_probability
        pairs = trials.pairs[:, -ntests:]
        batch_index = torch.arange(batch, device=self.device)[:, None, None]
        old_stimuli = old[batch_index, which.unsqueeze(-1), pairs]  # (batch, ntests, 2, cs)
        stimuli = trials.stimuli.clone()
        stimuli[:, -ntests:] = torch.where(use_old[..., None, None], old_stimuli, stimuli[:, -ntests:])
        return Trials(trials.pairs, stimuli)

    def train_one_episode(self) -> tuple[float, float]:
        config = self.config
        trials = self.episode_trials()
        record = run_episode(self.net, trials, state=self.carried)
        loss = a2c_loss(record, self.net, config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
        if self.episode >= config.burn_in:
            self.optimizer.step()
            if config.clip_alpha:
                self.net.clip_alpha_at_zero()
        if config.regime == "continual":
            self.carried = record.final_state.detach()
        test_reward = record.trial_rewards[:, -config.test_trials:].sum(1).mean().item()
        return test_reward, loss.item()

    def train(self) -> list[dict]:
        config = self.config
        start, started = self.episode, time.time()
        lap = started
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=config.episodes, initial=start, desc="meta-training", unit="ep", smoothing=0.05)
        with _stop_on_signals(self):
            while self.episode < config.episodes and not self.stop_requested:
                test_reward, loss = self.train_one_episode()
                if self.episode % config.log_every == 0:
                    self.curve.append({"episode": self.episode, "test_reward": test_reward,
                                       "percent_correct": 50 + 5 * test_reward, "loss": loss})
                    if bar is not None:
                        recent = self.curve[-10:]
                        bar.set_postfix(correct=f"{sum(r['percent_correct'] for r in recent) / len(recent):.1f}%")
                self.episode += 1
                now = time.time()
                self.elapsed += now - lap
                lap = now
                if bar is not None:
                    bar.update(1)
                if self.episode % config.save_every == 0 or self.episode == config.episodes:
                    self.save()
            if self.stop_requested and self.episode % config.save_every:
                self.save()
        if bar is not None:
            bar.close()
        self.seconds = time.time() - started
        self.episodes_run = self.episode - start
        return self.curve


class _stop_on_signals:
    """While training, SIGINT / SIGTERM ask the loop to stop after the current episode and save."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.previous = trainer, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.trainer.stop_requested:  # a second signal: stop now
            raise KeyboardInterrupt
        self.trainer.stop_requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def train(config: TrainConfig, out, resume: bool = False, progress: bool = True, start_from=None) -> Trainer:
    trainer = Trainer(config, out, resume=resume, progress=progress, start_from=start_from)
    trainer.train()
    return trainer


def smooth(values, width: int = 10):
    """Boxcar smoothing (width 10) as in Fig. 1f; 'valid' part only."""
    values = list(values)
    if len(values) < width:
        return values
    return [sum(values[i:i + width]) / width for i in range(len(values) - width + 1)]


def read_curve(path) -> list[dict]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


