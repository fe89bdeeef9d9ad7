"""Meta-training by advantage actor-critic (docs/method.md, meta-training), top to bottom.

    for each episode:                                                       Trainer method
        (continual regime) every 3rd episode: fresh state, new number of items, forget kept items
        draw items and the pair schedule; sometimes show old items in test trials   episode_trials
        run the episode from the carried state                                      run
        loss, backpropagate, clip the gradient norm; after the burn-in: Adam step   learn
        every 10th episode: a row of the training log (CSV beside the parameter file, optionally
        TensorBoard); every 200th: save net.dat, checkpoint and log                 train

Every random draw of a run (list length, items, pairs, old items, actions) comes from the run's own
generator, seeded with the run's seed; the network is initialised from the same seed without touching
the caller's random state. A checkpoint holds everything needed to continue exactly as if never
interrupted: parameters, optimizer, the generator's state, the carried network state and kept items,
and the training log.
"""
from __future__ import annotations

import csv
import io
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .episode import EpisodeRecord, run_episode
from .io import ParameterFileError, atomic_save, atomic_write_text, read_torch_file, save_network
from .loss import LossWeights, loss_terms
from .network import NetworkState, PlasticNetwork
from .task import DELAY, FEEDBACK, STEPS_PER_TRIAL, Trials, draw_items, present, standard_schedule

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


def _build_network(config: TrainConfig) -> PlasticNetwork:
    """The network of a fresh run, initialised from config.seed without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):  # the network is initialised on the CPU, then moved
        torch.random.default_generator.manual_seed(config.seed)
        return PlasticNetwork(alpha_shape=config.alpha_shape,
                              positive_alpha=config.positive_alpha or config.positive_alpha_init_only,
                              frozen_input=config.frozen_input)


class Trainer:
    """Holds a run's state; `train()` runs it to the end (or until interrupted), resuming if asked.

    One episode is `learn(run(episode_trials()))`; `train` adds the episode count, the training log,
    saving and the progress bar. Every random draw of the run comes from `self.generator`."""

    def __init__(self, config: TrainConfig, out, resume: bool = False, progress: bool = True, start_from=None):
        """`start_from`: another run's checkpoint to branch from when this run has none yet (its parameters,
        optimizer, random state, carried state, episode count and curve); this run's own settings (for
        example a loss penalty) apply from that episode on."""
        config.validate()
        self.config, self.paths, self.progress = config, paths_for(out), progress
        self.device = torch.device(config.device)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.stop_requested = False
        self.started_from = None
        self._board = None  # the TensorBoard writer while `train` runs with config.tensorboard
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
        self.nbcues = None
        self.kept_items: list[torch.Tensor] = []
        self.elapsed = 0.0  # training wall time, in seconds, summed over all sessions of this run

    def _make_optimizer(self):
        trainable = [p for p in self.net.parameters() if p.requires_grad]  # frozen input: not i2h
        return torch.optim.Adam(trainable, lr=self.config.lr, eps=self.config.adam_eps,
                                weight_decay=self.config.loss.l2)

    def _load_checkpoint(self, path, branch: bool = False) -> None:
        saved = read_torch_file(path, self.device, what="checkpoint")
        try:
            config = TrainConfig.from_dict(saved["config"])
        except (KeyError, TypeError) as error:
            raise ParameterFileError(f"{path} is not a training checkpoint ({error})") from None
        # Resuming needs the same settings; branching only the same network layout.
        compared = ("alpha_shape", "frozen_input") if branch else \
            [k for k in asdict(config) if k not in RESUME_MAY_CHANGE]
        changed = sorted(k for k in compared if asdict(config)[k] != asdict(self.config)[k])
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
            group.update(lr=self.config.lr, eps=self.config.adam_eps, weight_decay=self.config.loss.l2)
        self.episode = saved["episode"]
        self.curve = saved["curve"]
        self.elapsed = saved.get("elapsed", 0.0)
        self.started_from = saved.get("started_from")
        self.nbcues = saved["nbcues"]
        self.kept_items = list(saved["kept_items"])
        self.carried = None
        if saved["carried"] is not None:
            self.carried = NetworkState(*saved["carried"])
        if saved.get("generator") is not None:
            self.generator.set_state(saved["generator"].cpu())
        else:  # written before runs had their own generator: continue with a new, still seeded, stream
            self.generator.manual_seed(config.seed * 1_000_003 + self.episode)
            sys.stderr.write(f"warning: {path} has no random generator state (an older version wrote it); "
                             f"the run continues with a new random stream\n")

    def save(self) -> None:
        """Parameter file, checkpoint and curve, each written atomically (checkpoint last)."""
        save_network(self.net, self.paths["params"])
        self._write_curve()
        carried = self.carried
        atomic_save({
            "config": asdict(self.config), "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(), "episode": self.episode, "curve": self.curve,
            "nbcues": self.nbcues, "kept_items": self.kept_items, "generator": self.generator.get_state(),
            "elapsed": self.elapsed, "started_from": self.started_from,
            "carried": None if carried is None else (carried.rates, carried.trace, carried.plastic_weights),
        }, self.paths["checkpoint"])

    def _write_curve(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.curve)
        atomic_write_text(buffer.getvalue(), self.paths["curve"])

    # ---------------------------------------------------------------------------------------------------
    # One episode: episode_trials -> run -> learn.
    def episode_trials(self) -> Trials:
        """Draw this episode's items and pairs (and, in the continual regime, reset or carry state)."""
        config, device, generator = self.config, self.device, self.generator
        if config.regime == "simple" or self.episode % config.resets_every == 0:
            self.carried = None
            self.nbcues = int(torch.randint(config.min_items, config.max_items + 1, (1,), device=device,
                                            generator=generator))
            self.kept_items = []
        items = draw_items(config.batch, self.nbcues, device=device, generator=generator)
        pairs = standard_schedule(config.batch, self.nbcues, config.learning_trials, config.test_trials, device,
                                  generator=generator)
        trials = present(items, pairs)
        if config.regime == "continual" and self.kept_items:
            trials = self._mix_old_items(trials)
        if config.regime == "continual":
            self.kept_items.append(items)
        return trials

    def _mix_old_items(self, trials: Trials) -> Trials:
        """In each test trial, each batch element shows its pair with a random earlier episode's items
        with probability old_items_probability."""
        config, device, generator = self.config, self.device, self.generator
        batch, ntests = config.batch, config.test_trials
        old = torch.stack(self.kept_items, 1)  # (batch, episodes, nbcues, cs)
        which = torch.randint(0, old.shape[1], (batch, ntests), device=device, generator=generator)
        use_old = torch.rand(batch, ntests, device=device, generator=generator) < config.old_items_probability
        pairs = trials.pairs[:, -ntests:]
        batch_index = torch.arange(batch, device=device)[:, None, None]
        old_stimuli = old[batch_index, which.unsqueeze(-1), pairs]  # (batch, ntests, 2, cs)
        stimuli = trials.stimuli.clone()
        stimuli[:, -ntests:] = torch.where(use_old[..., None, None], old_stimuli, stimuli[:, -ntests:])
        return Trials(trials.pairs, stimuli)

    def run(self, trials: Trials) -> EpisodeRecord:
        """Run the episode from the carried state (None: fresh), sampling actions from the run's generator."""
        config = self.config
        return run_episode(self.net, trials, state=self.carried, generator=self.generator,
                           action_penalty=config.loss.wp, reset_rates_every_trial=config.reset_rates_every_trial,
                           reset_trace_every_trial=config.reset_trace_every_trial)

    def learn(self, record: EpisodeRecord, measure: bool = True) -> dict | None:
        """Loss, backward, gradient-norm clipping and (after the burn-in) an optimizer step, then alpha
        clipped at 0 (positive_alpha) and the final state kept (continual regime). Returns the training
        log's values for this episode (every column but episode and episodes_per_second), or None without
        `measure` (unlogged episodes: no transfer from the device)."""
        config, net = self.config, self.net
        terms = loss_terms(record, net, config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        grad_norm = self.apply_gradients(record.final_state)
        if not measure:
            return None
        tests = config.test_trials
        with torch.no_grad():
            measured = {
                "test_reward": record.rewards[:, -STEPS_PER_TRIAL * tests:].sum(1).mean(),
                "test_accuracy": record.correct[:, -tests:].float().mean(), "loss": terms["loss"],
                "policy_loss": terms["policy"], "value_loss": terms["value"], "entropy_term": terms["entropy"],
                "plastic_penalty": terms["plastic_penalty"], "grad_norm": grad_norm,
                "modulation_feedback": record.modulation[:, FEEDBACK::STEPS_PER_TRIAL].abs().mean(),
                "modulation_delay": record.modulation[:, DELAY::STEPS_PER_TRIAL].abs().mean(),
                "eta": net.etaet, "DAmult": net.DAmult, "alpha_abs_mean": net.alpha.abs().mean(),
            }
            numbers = torch.stack([v.detach().float().reshape(()) for v in measured.values()]).tolist()
        measured = dict(zip(measured, numbers))  # one transfer from the device for all of them
        # percent correct: the paper's conversion of the summed test reward (exact for 10 test trials)
        measured["percent_correct"] = 50 + 5 * measured["test_reward"]
        return {name: measured[name] for name in CURVE_COLUMNS if name in measured}

    def apply_gradients(self, final_state) -> torch.Tensor:
        """After the backward: gradient-norm clipping, (after the burn-in) an optimizer step and alpha clipped
        at 0 (positive_alpha), and the episode's final state kept (continual regime). Returns the gradient
        norm before clipping. (The population trainer calls this for each member after one joint backward.)"""
        config, net = self.config, self.net
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        if self.episode >= config.burn_in:
            self.optimizer.step()
            if config.positive_alpha:
                net.clip_alpha_at_zero()
        if config.regime == "continual":
            self.carried = final_state.detach()
        return grad_norm

    def train_one_episode(self) -> dict | None:
        """One episode at the current episode count (which `train` advances); returns `learn`'s values on
        the episodes the training log records, else None."""
        return self.learn(self.run(self.episode_trials()), measure=self.episode % self.config.log_every == 0)

    def log(self, values: dict, episodes_per_second: float) -> dict:
        """Append the current episode's row to the training log (and TensorBoard); returns the row."""
        row = {"episode": self.episode, **values, "episodes_per_second": episodes_per_second}
        self.curve.append(row)
        if self._board is not None:
            for name, value in row.items():
                if name != "episode":
                    self._board.add_scalar(f"train/{name}", value, self.episode)
        return row

    def _open_board(self):
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

    def train(self) -> list[dict]:
        config = self.config
        start, started = self.episode, time.time()
        lap = started
        rate_mark = (self.episode, started)  # episodes per second are measured between logged rows
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=config.episodes, initial=start, desc="meta-training", unit="ep", smoothing=0.05)
        self._open_board()
        try:
            with _stop_on_signals(self):
                while not self.finished and not self.stop_requested:
                    values = self.train_one_episode()
                    now = time.time()
                    if self.episode % config.log_every == 0:
                        rate = (self.episode + 1 - rate_mark[0]) / max(now - rate_mark[1], 1e-9)
                        rate_mark = (self.episode + 1, now)
                        self.log(values, rate)
                        if bar is not None:
                            recent = self.curve[-10:]
                            correct = sum(r["percent_correct"] for r in recent) / len(recent)
                            bar.set_postfix(correct=f"{correct:.1f}%")
                    self.episode += 1
                    self.elapsed += now - lap
                    lap = now
                    if bar is not None:
                        bar.update(1)
                    if self.episode % config.save_every == 0 or self.episode == config.episodes:
                        self.save()
                if self.stop_requested and self.episode % config.save_every:
                    self.save()
        finally:
            if self._board is not None:
                self._board.close()
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
    """The rows of a training log as dicts of floats; a column a row leaves empty (or an older log does not
    have: episode, test_reward, percent_correct, loss only) is absent from that row."""
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if k is not None and v not in ("", None)}
                for row in csv.DictReader(f)]


