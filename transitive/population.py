"""Population training: independent networks, one per seed, trained side by side in one process.

Each member is an ordinary `Trainer` with seed k: its own network, Adam state, random generator, carried
state, training log and files (DIR/seed_<k>/net.dat, net.ckpt, net.csv: the sweep layout), so a member
draws exactly what `train --seed k` draws, and `curves`, `classify` and resuming work unchanged. What the
population shares is the episode loop:

    every member draws its trials (its own generator)
    the episodes of all members run, then one backward
    per member: gradient-norm clipping, Adam step, carried state, training-log row, saving

Two ways to run the members' episodes:
- "members": each member through `Trainer.run` and `Trainer.learn` (on the CPU, the compiled kernel of
  `transitive.kernels`); the default on the CPU, where that kernel is faster than any stacked PyTorch code.
- "stacked": all members as one batch, parameters stacked along a leading axis (`transitive.stacked`),
  one backward over the summed losses; the default on other devices. On CUDA its forward and backward
  are captured once as CUDA graphs and replayed every episode (the random numbers are drawn before, from
  each member's generator, so nothing inside an episode waits for the host). If capturing fails, the
  uncaptured stacked path is used (with a warning); TRANSITIVE_CUDA_GRAPHS=0 turns capturing off.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace

import torch

from .loss import loss_terms
from .network import NetworkState
from .engine import run_members
from .stacked import MemberView, StackedParameters, draw_noise, stack_parameters, stack_states
from .task import DELAY, FEEDBACK, STEPS_PER_TRIAL
from .training import TrainConfig, Trainer, _stop_on_signals

RUNNERS = ("auto", "members", "stacked")
GRAPHS_SWITCH = "TRANSITIVE_CUDA_GRAPHS"  # "0" turns CUDA graph capture off
# Per-member numbers the stacked episode returns (in this order), for the training log.
STATS = ("test_reward", "percent_correct", "test_accuracy", "loss", "policy_loss", "value_loss", "entropy_term",
         "plastic_penalty", "modulation_feedback", "modulation_delay")


def stacked_supported(config: TrainConfig) -> bool:
    """Whether the stacked runner computes what `Trainer.run` does for this configuration (it implements the
    fast runner's episode: no action penalty, r and H reset at every trial start)."""
    return (not config.loss.wp and config.reset_rates_every_trial and config.reset_trace_every_trial)


def population_loss(params: StackedParameters, pairs, stimuli, uniform, exponential, state: NetworkState | None,
                    config: TrainConfig):
    """The stacked episode and every member's loss. Returns (summed loss, per-member STATS (K, len(STATS)),
    final rates, final trace, final plastic weights (stacked, detached)). No host synchronisation."""
    records = run_members(params, pairs, stimuli, uniform, exponential, state)
    tests = config.test_trials
    total, stats = 0.0, []
    for k, record in enumerate(records):
        terms = loss_terms(record, MemberView(params, k), config.loss)
        total = total + terms["loss"]
        test_reward = record.rewards[:, -STEPS_PER_TRIAL * tests:].sum(1).mean()
        stats.append(torch.stack([v.detach().float().reshape(()) for v in (
            test_reward, 50 + 5 * test_reward, record.correct[:, -tests:].float().mean(), terms["loss"],
            terms["policy"], terms["value"], terms["entropy"], terms["plastic_penalty"],
            record.modulation[:, FEEDBACK::STEPS_PER_TRIAL].abs().mean(),
            record.modulation[:, DELAY::STEPS_PER_TRIAL].abs().mean())]))
    final = [torch.stack([getattr(r.final_state, name) for r in records]).detach()
             for name in ("rates", "trace", "plastic_weights")]
    return (total, torch.stack(stats), *final)


class GraphedPopulationLoss:
    """`population_loss` for a fixed member count, its forward and backward captured as CUDA graphs
    (torch.cuda.make_graphed_callables: warm-up on a side stream, then capture; each call copies its
    arguments into the graphs' static inputs and replays). The state is always given (zeros for a fresh
    start): from a zero state the blank steps leave P exactly 0 and add exactly zero gradients, so one graph
    serves fresh and carried episodes."""

    def __init__(self, config: TrainConfig, sample_args: tuple):
        self.config = config

        def loss_of(*tensors):
            params = StackedParameters.of(tensors[:12])
            pairs, stimuli, uniform, exponential, rates, trace, plastic = tensors[12:]
            return population_loss(params, pairs, stimuli, uniform, exponential,
                                   NetworkState(rates, trace, plastic), config)

        samples = tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in sample_args)
        self.graphed = torch.cuda.make_graphed_callables(loss_of, samples, allow_unused_input=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the warm-up's blocks: the graphs replay from their own memory pool

    def __call__(self, *tensors):
        return self.graphed(*tensors)


class PopulationTrainer:
    """K member Trainers (one per seed, same settings otherwise) trained in lockstep; see the module notes.

    runner: "auto", "members" or "stacked"; cuda_graphs: capture the stacked episode on CUDA (None: yes,
    unless TRANSITIVE_CUDA_GRAPHS=0)."""

    def __init__(self, config: TrainConfig, seeds, out_dir, resume: bool = False, progress: bool = True,
                 runner: str = "auto", cuda_graphs: bool | None = None):
        from .sweep import seed_params
        seeds = [int(s) for s in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError("a population needs one or more distinct seeds")
        if runner not in RUNNERS:
            raise ValueError(f"runner must be one of {RUNNERS}, not {runner!r}")
        config.validate()
        self.config, self.seeds, self.progress = config, seeds, progress
        self.device = torch.device(config.device)
        if runner == "auto":
            runner = "members" if self.device.type == "cpu" or not stacked_supported(config) else "stacked"
        if runner == "stacked" and not stacked_supported(config):
            raise ValueError("the stacked runner does not implement an action penalty (loss.wp) or rates / traces "
                             "carried across trials; use runner='members'")
        self.runner = runner
        if cuda_graphs is None:
            cuda_graphs = os.environ.get(GRAPHS_SWITCH, "1").strip() != "0"
        self.cuda_graphs = bool(cuda_graphs) and runner == "stacked" and self.device.type == "cuda"
        self._graphs: dict[int, GraphedPopulationLoss] = {}
        self.members: list[Trainer] = []
        for seed in seeds:
            params = seed_params(out_dir, seed)
            params.parent.mkdir(parents=True, exist_ok=True)
            self.members.append(Trainer(replace(config, seed=seed), params, resume=resume, progress=False))
        self.stop_requested = False

    @property
    def finished(self) -> bool:
        return all(m.finished for m in self.members)

    def _due(self) -> list[Trainer]:
        """The members to advance now: the unfinished ones at the lowest episode (normally all of them)."""
        waiting = [m for m in self.members if not m.finished]
        if not waiting:
            return []
        lowest = min(m.episode for m in waiting)
        return [m for m in waiting if m.episode == lowest]

    # ---------------------------------------------------------------------------------------------------
    def train_one_episode(self) -> list[tuple[Trainer, dict | None]]:
        """One episode of every due member (episode counts are advanced by `train`). Returns (member, log
        values) pairs; the values are None for a stacked episode that is not logged."""
        members = self._due()
        trials = [m.episode_trials() for m in members]
        if self.runner == "members":
            return [(m, m.learn(m.run(t), measure=m.episode % self.config.log_every == 0))
                    for m, t in zip(members, trials)]
        return self._learn_stacked(members, trials)

    def _learn_stacked(self, members: list[Trainer], trials) -> list[tuple[Trainer, dict | None]]:
        config = self.config
        batch, ntrials = trials[0].batch, trials[0].ntrials
        uniform, exponential = draw_noise([m.generator for m in members], batch, ntrials, self.device)
        pairs = torch.stack([t.pairs for t in trials])
        stimuli = torch.stack([t.stimuli for t in trials])
        state = stack_states([m.carried for m in members])
        for m in members:
            m.optimizer.zero_grad(set_to_none=True)
        params = stack_parameters([m.net for m in members])
        graphed = self._graph_for(len(members), params, pairs, stimuli, uniform, exponential, state)
        if graphed is not None:
            if state is None:
                state = _zero_state(len(members), batch, params.w.shape[-1], self.device)
            total, stats, *final = graphed(*params.as_tuple(), pairs, stimuli, uniform, exponential,
                                           state.rates, state.trace, state.plastic_weights)
            # An autograd.Function marks all its outputs differentiable; only the loss is.
            stats, final = stats.detach(), [f.detach() for f in final]
        else:
            total, stats, *final = population_loss(params, pairs, stimuli, uniform, exponential, state, config)
        total.backward()
        logged = any(m.episode % config.log_every == 0 for m in members)
        stats = stats.tolist() if logged else None  # the only host synchronisation, on logged episodes
        results = []
        for k, m in enumerate(members):
            # own copies of the final state: a view would keep (and save) every member's state
            grad_norm = m.apply_gradients(NetworkState(*(f[k].clone() for f in final)))
            values = None
            if logged and m.episode % config.log_every == 0:
                values = _log_values(m, dict(zip(STATS, stats[k])), grad_norm)
            results.append((m, values))
        return results

    def _graph_for(self, members: int, params, pairs, stimuli, uniform, exponential, state):
        """The captured episode for this member count (captured on first use), or None to run uncaptured."""
        if not self.cuda_graphs or members != len(self.members):
            return None
        if members not in self._graphs:
            if state is None:
                state = _zero_state(members, pairs.shape[1], params.w.shape[-1], self.device)
            sample = (*params.as_tuple(), pairs, stimuli, uniform, exponential, state.rates, state.trace,
                      state.plastic_weights)
            try:
                self._graphs[members] = GraphedPopulationLoss(self.config, sample)
            except Exception as error:  # capture is an optimisation: fall back to the same code uncaptured
                warnings.warn(f"transitive: CUDA graph capture failed ({type(error).__name__}: {error}); "
                              "training the population without CUDA graphs", RuntimeWarning)
                self.cuda_graphs = False
                torch.cuda.synchronize(self.device)
                return None
        return self._graphs[members]

    # ---------------------------------------------------------------------------------------------------
    def save(self) -> None:
        for m in self.members:
            m.save()

    def train(self) -> list[list[dict]]:
        """Train every member to config.episodes (or until stopped: SIGINT / SIGTERM save after the current
        episode, as for one run). Returns the members' training logs."""
        config = self.config
        started = lap = time.time()
        marks = {id(m): (m.episode, started) for m in self.members}
        firsts = {id(m): m.episode for m in self.members}
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            done = sum(m.episode for m in self.members)
            bar = tqdm(total=config.episodes * len(self.members), initial=done, desc=f"population of "
                       f"{len(self.members)}", unit="ep", smoothing=0.05)
        for m in self.members:
            m._open_board() if hasattr(m, "_open_board") else setattr(m, "_board", None)
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
                            m.save()
                    lap = now
                    if bar is not None:
                        bar.update(len(results))
                        recent = [m.curve[-1]["percent_correct"] for m in self.members if m.curve]
                        if recent:
                            bar.set_postfix(correct=f"{sum(recent) / len(recent):.1f}%")
                if self.stop_requested:  # as one run does: save unless just saved
                    for m in self.members:
                        if m.episode % config.save_every:
                            m.save()
        finally:
            for m in self.members:
                if getattr(m, "_board", None) is not None:
                    m._board.close()
            if bar is not None:
                bar.close()
        self.seconds = time.time() - started
        self.episodes_run = sum(m.episode - firsts[id(m)] for m in self.members)
        return [m.curve for m in self.members]


def _zero_state(members: int, batch: int, n: int, device) -> NetworkState:
    zeros = torch.zeros(members, batch, n, n, device=device)
    return NetworkState(torch.zeros(members, batch, n, device=device), zeros, zeros.clone())


def _log_values(member: Trainer, stats: dict, grad_norm: torch.Tensor) -> dict:
    """The training log's values of `Trainer.learn`, from the stacked episode's numbers (after the step)."""
    net = member.net
    with torch.no_grad():
        after = torch.stack([grad_norm.detach().float().reshape(()), net.etaet.squeeze().float(),
                             net.DAmult.squeeze().float(), net.alpha.abs().mean().float()]).tolist()
    values = {name: stats[name] for name in ("test_reward", "percent_correct", "test_accuracy", "loss",
                                             "policy_loss", "value_loss", "entropy_term", "plastic_penalty")}
    values["grad_norm"] = after[0]
    values.update(modulation_feedback=stats["modulation_feedback"], modulation_delay=stats["modulation_delay"],
                  eta=after[1], DAmult=after[2], alpha_abs_mean=after[3])
    return values


def train_population(config: TrainConfig, seeds, out_dir, resume: bool = False, progress: bool = True,
                     runner: str = "auto", cuda_graphs: bool | None = None) -> PopulationTrainer:
    """Train one network per seed in this process, into out_dir/seed_<k>/ (see `PopulationTrainer`)."""
    trainer = PopulationTrainer(config, seeds, out_dir, resume=resume, progress=progress, runner=runner,
                                cuda_graphs=cuda_graphs)
    trainer.train()
    return trainer
