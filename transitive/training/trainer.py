"""Meta-training by advantage actor-critic (docs/method.md, meta-training): one trainer for one network or
for K networks (seeds) side by side, top to bottom.

    for each episode:
        every member draws its trials (its own generator; continual regime: resets, kept items)  regimes
        the episodes of all members in one engine call, their losses, one backward            loss.episode_loss
        per member: clip the gradient norm; after the burn-in an Adam step; keep the final state  stepping
        every 10th episode: a row of each member's training log (CSV, optionally TensorBoard);
        every 200th: save each member's net.dat, checkpoint and log

`train --seed k` is K = 1 and `train --seeds k` the same code with the file in a seed folder: they write
identical files. A member draws exactly what it would draw alone, whatever the other members (its random
numbers are drawn from its own generator before the episode), so a population of seeds equals the separate
runs. On CUDA the episode is captured as a CUDA graph (`cuda_graphs.GraphedEpisodeLoss`). SIGINT / SIGTERM stop
after the current episode and save; `resume` continues from the checkpoints as if never interrupted.
"""
from __future__ import annotations

import csv
import os
import signal
import threading
import time
import warnings
from dataclasses import replace

import torch

from ..model.network import NetworkState
from ..engine.episode import Episodes
from .config import CURVE_COLUMNS, REGIMES, TrainConfig, paths_for, seed_params
from .cuda_graphs import GRAPHS_SWITCH, GraphedEpisodeLoss, graph_parameters
from .loss import STATS, episode_loss
from .regimes import draw_trials
from .seed_run import SeedRun
from .stepping import (AFTER_STEP, TrainingDiverged, after_step_numbers, divergence, finite_check, log_values,
                       step_members)

__all__ = ["CURVE_COLUMNS", "REGIMES", "TrainConfig", "Trainer", "TrainingDiverged", "SeedRun", "paths_for",
           "seed_params", "train", "train_population", "read_curve", "smooth"]


class Trainer:
    """Trains one or more members to config.episodes (or until stopped), resuming if asked.

    out: the parameter file of a single run (seeds None: one member with config.seed), or the folder of a
    population (seeds given: one member per seed, in out/seed_<k>/net.dat). start_from: another run's
    checkpoint to branch a single run from (see `SeedRun`). cuda_graphs: capture the episode on CUDA (None:
    yes, unless TRANSITIVE_CUDA_GRAPHS=0). on_save: called with the member after each of its saves.
    stop_after: a time budget in seconds for this call of `train`: once spent, training stops at the first
    episode where every member's carried state resets (at most resets_every - 1 episodes later) and saves
    there, so that the checkpoints are small (a chunk of a long run, continued with `resume`)."""

    def __init__(self, config: TrainConfig, out, resume: bool = False, progress: bool = True, start_from=None,
                 seeds=None, cuda_graphs: bool | None = None, on_save=None, stop_after: float | None = None):
        config.validate()
        self.stop_after = stop_after  # seconds: then stop at the next reset (see `train`)
        self.on_save = on_save  # called with the member after each save (a sweep job's progress line)
        self.config, self.progress = config, progress
        self.device = torch.device(config.device)
        if seeds is None:
            self.members = [SeedRun(config, out, resume=resume, start_from=start_from)]
        else:
            seeds = [int(s) for s in seeds]
            if not seeds or len(set(seeds)) != len(seeds):
                raise ValueError("a population needs one or more distinct seeds")
            if start_from is not None:
                raise ValueError("branching (start_from) is for a single run")
            self.members = []
            for seed in seeds:
                params = seed_params(out, seed)
                params.parent.mkdir(parents=True, exist_ok=True)
                self.members.append(SeedRun(replace(config, seed=seed), params, resume=resume))
        if cuda_graphs is None:
            cuda_graphs = os.environ.get(GRAPHS_SWITCH, "1").strip() != "0"
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        self._graphs: dict[int, GraphedEpisodeLoss] = {}
        self.stop_requested = False

    @property
    def run(self) -> SeedRun:
        """A single run's `SeedRun` (its net, curve, paths, ...)."""
        if len(self.members) != 1:
            raise AttributeError("a population has no single run: use trainer.members")
        return self.members[0]

    # What a single run's callers read of it (the command line, the notebook).
    net = property(lambda self: self.run.net)
    curve = property(lambda self: self.run.curve)
    paths = property(lambda self: self.run.paths)

    @property
    def episode(self) -> int:
        """The episode count (a population's: that of its members furthest behind)."""
        return min(m.episode for m in self.members)

    @property
    def finished(self) -> bool:
        return all(m.finished for m in self.members)

    def save(self) -> None:
        for m in self.members:
            self._save(m)

    def _save(self, member: SeedRun) -> None:
        member.save()
        if self.on_save is not None:
            self.on_save(member)

    def _due(self) -> list[SeedRun]:
        """The members to advance now: the unfinished ones at the lowest episode (normally all of them)."""
        waiting = [m for m in self.members if not m.finished]
        if not waiting:
            return []
        lowest = min(m.episode for m in waiting)
        return [m for m in waiting if m.episode == lowest]

    # ---------------------------------------------------------------------------------------------------
    def train_one_episode(self) -> list[tuple[SeedRun, dict | None]]:
        """One episode of every due member (their episode counts are advanced by `train`). Returns (member,
        training-log values) pairs; the values are None on episodes the log does not record. Raises
        `TrainingDiverged` when a member's loss, gradient or parameters are not finite (nothing of the
        episode is logged or saved). The host reads the device once: whether every member is finite, with
        the log's numbers on logged episodes."""
        config = self.config
        members = self._due()
        for m in members:
            m.start_episode()
        trials = draw_trials([m.curriculum for m in members], [m.episode for m in members],
                             [m.generator for m in members])
        for m in members:
            m.optimizer.zero_grad(set_to_none=True)
        nets = [m.net for m in members]
        generators, states = [m.generator for m in members], [m.carried for m in members]
        episodes = Episodes.draw(trials, generators, states, device=self.device)
        graphed = self._graph_for(nets, episodes)
        if graphed is not None:
            total, stats, *final = graphed(*graph_parameters(nets), *episodes.tensors(nets[0].hidden_size))
            # An autograd.Function marks all its outputs differentiable; only the loss is.
            stats, final = stats.detach(), [f.detach() for f in final]
        else:
            total, stats, *final = episode_loss(nets, episodes, config)
        # own copies of each member's final state: a view would keep (and save) every member's state
        finals = [NetworkState(*(f[k].clone() for f in final)) for k in range(len(members))]
        total.backward()
        grad_norms = step_members(members, finals)
        finite = finite_check(stats[:, STATS.index("loss")], grad_norms, [list(m.net.parameters()) for m in members])
        logged = [m.episode % config.log_every == 0 for m in members]
        if any(logged):
            numbers = torch.cat([stats, after_step_numbers(members, grad_norms), finite[:, None].float()], 1)
            rows = numbers.tolist()  # the host's one read of the device
            good = [row[-1] == 1.0 for row in rows]
        else:
            rows, good = None, finite.tolist()  # the host's one read of the device
        if not all(good):
            k = good.index(False)
            loss, norm = torch.stack([stats[k, STATS.index("loss")], grad_norms[k].float()]).tolist()
            raise divergence(members[k], loss, norm)
        results = []
        for k, m in enumerate(members):
            values = log_values(m, dict(zip(STATS + AFTER_STEP, rows[k]))) if logged[k] else None
            results.append((m, values))
        return results

    def _graph_for(self, nets, episodes: Episodes):
        """The captured episode for these networks (captured on first use), or None to run uncaptured."""
        members = len(nets)
        if not self.cuda_graphs or members != len(self.members):
            return None
        if members not in self._graphs:
            sample = (*graph_parameters(nets), *episodes.tensors(nets[0].hidden_size))
            try:
                self._graphs[members] = GraphedEpisodeLoss(nets, self.config, sample)
            except Exception as error:  # capture is an optimisation: fall back to the same code uncaptured
                warnings.warn(f"transitive: CUDA graph capture failed ({type(error).__name__}: {error}); "
                              "training without CUDA graphs", RuntimeWarning)
                self.cuda_graphs = False
                torch.cuda.synchronize(self.device)
                return None
        return self._graphs[members]

    # ---------------------------------------------------------------------------------------------------
    def train(self) -> "Trainer":
        """Train every member to config.episodes (or until stopped: SIGINT / SIGTERM save after the current
        episode, and `stopped_by_signal` is then the signal's number; a second one stops at once, raising
        KeyboardInterrupt). Returns the trainer."""
        config = self.config
        self.stopped_by_signal = None
        if config.episodes <= config.burn_in:
            from ..engine.rule import say_once
            say_once(f"{config.episodes} episodes with a burn-in of {config.burn_in}: no optimizer step is made, the "
                     f"parameters stay as initialised (a shorter burn-in trains: --burn-in, TrainConfig(burn_in=...))")
        started = lap = time.time()
        marks = {id(m): (m.episode, started) for m in self.members}
        firsts = {id(m): m.episode for m in self.members}
        bar = None
        if self.progress:
            from ..model.progress import progress_bar  # in a notebook on standard output
            single = len(self.members) == 1
            bar = progress_bar(total=config.episodes * len(self.members), initial=sum(m.episode for m in self.members),
                       desc="meta-training" if single else f"population of {len(self.members)}", unit="ep",
                       smoothing=0.05)
        for m in self.members:
            m.open_board()
        try:
            with _stop_on_signals(self):
                while not self.finished and not self.stop_requested:
                    results = self.train_one_episode()
                    now = time.time()
                    for m, values in results:
                        if m.episode % config.log_every == 0:
                            mark_episode, mark_time = marks[id(m)]
                            rate = (m.episode + 1 - mark_episode) / max(now - mark_time, 1e-9)
                            marks[id(m)] = (m.episode + 1, now)
                            m.log(values, rate)
                        m.episode += 1
                        m.elapsed += now - lap
                        if m.episode % config.save_every == 0 or m.episode == config.episodes:
                            self._save(m)
                    lap = now
                    if (self.stop_after is not None and now - started >= self.stop_after
                            and all(m.at_reset for m in self.members)):
                        self.stop_requested = True
                    if bar is not None:
                        bar.update(len(results))
                        recent = [row["percent_correct"] for m in self.members for row in m.curve[-10:]]
                        if recent:
                            bar.set_postfix(correct=f"{sum(recent) / len(recent):.1f}%")
                if self.stop_requested:  # save unless just saved
                    for m in self.members:
                        if m.episode % config.save_every:
                            self._save(m)
        finally:
            for m in self.members:
                m.close_board()
            if bar is not None:
                bar.close()
        self.seconds = time.time() - started
        self.episodes_run = sum(m.episode - firsts[id(m)] for m in self.members)
        return self


class _stop_on_signals:
    """While training, SIGINT / SIGTERM ask the loop to stop after the current episode and save."""

    def __init__(self, trainer):
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
        self.trainer.stopped_by_signal = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


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


def train(config: TrainConfig, out, resume: bool = False, progress: bool = True, start_from=None) -> Trainer:
    """Train one network (config.seed) into the parameter file `out`."""
    trainer = Trainer(config, out, resume=resume, progress=progress, start_from=start_from)
    trainer.train()
    return trainer


def train_population(config: TrainConfig, seeds, out_dir, resume: bool = False, progress: bool = True,
                     cuda_graphs: bool | None = None) -> Trainer:
    """Train one network per seed side by side, into out_dir/seed_<k>/ (the sweep layout)."""
    trainer = Trainer(config, out_dir, resume=resume, progress=progress, seeds=seeds, cuda_graphs=cuda_graphs)
    trainer.train()
    return trainer
