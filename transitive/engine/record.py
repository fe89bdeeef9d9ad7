"""What goes into an episode of K networks (`Episodes`: their trials, carried states and random numbers) and
what comes out (`EpisodeRecord`), and what every runner of the engine shares to make one: the task's inputs
of the trials, the parameters of K networks stacked, the episode's ending (the actions of the steps other
than the response, the rewards, one record per member or one for all).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.network import NetworkState
from ..model.task import INPUT_SIZE, RESPONSE, STEPS_PER_TRIAL, Trials, base_inputs


@dataclass
class EpisodeRecord:
    """Everything an episode produced. Step-indexed tensors have nsteps = 4 * ntrials."""

    pairs: torch.Tensor  # (batch, ntrials, 2)
    inputs: torch.Tensor  # (batch, nsteps, 37)
    actions: torch.Tensor  # (batch, nsteps) long, sampled at every step
    rewards: torch.Tensor  # (batch, nsteps): +-1 at step 1 of every trial, 0 elsewhere, minus the action
    #                        penalty (if any) at every step where action 1 was taken
    correct: torch.Tensor  # (batch, ntrials) bool: the response (step 1) was right
    logits: torch.Tensor  # (batch, nsteps, 2)
    values: torch.Tensor  # (batch, nsteps)
    modulation: torch.Tensor  # (batch, nsteps): m(t)
    rates: torch.Tensor  # (batch, nsteps, n)
    final_state: NetworkState
    snapshots: dict = field(default_factory=dict)  # trial -> (batch, 4, n, n) float16: P after each step

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    @property
    def response(self) -> torch.Tensor:
        """(batch, ntrials): +1 for action 1 at step 1, -1 for action 0."""
        return self.actions[:, RESPONSE::STEPS_PER_TRIAL] * 2 - 1


@dataclass
class Episodes:
    """K members' episodes, ready for the engine: pairs (K, B, T, 2) and stimuli (K, B, T, 2, cs) of their
    trials; either their noise (uniform (K, T, B), exponential (K, B * nsteps, 2)) or forced actions
    (K, B, nsteps); their carried state, stacked (K, B, ...), or None (fresh)."""

    pairs: torch.Tensor
    stimuli: torch.Tensor
    uniform: torch.Tensor | None = None
    exponential: torch.Tensor | None = None
    state: NetworkState | None = None
    actions: torch.Tensor | None = None

    @classmethod
    def draw(cls, trials, generators=None, states=None, actions=None, device=None) -> "Episodes":
        """The members' trials (one `Trials` each, same shape), carried states (None: fresh; all or none)
        and forced actions (None: drawn, from each member's generator, None for torch's global one)."""
        pairs, stimuli = torch.stack([t.pairs for t in trials]), torch.stack([t.stimuli for t in trials])
        batch, ntrials = trials[0].batch, trials[0].ntrials
        device = pairs.device if device is None else device
        uniform = exponential = None
        if actions is None:
            noise = [(torch.rand(ntrials, batch, device=device, generator=g),
                      torch.empty(batch * ntrials * STEPS_PER_TRIAL, 2, device=device).exponential_(1, generator=g))
                     for g in (generators or [None] * len(trials))]
            uniform, exponential = (torch.stack(part) for part in zip(*noise))
        states = list(states or [None] * len(trials))
        if any(s is None for s in states) and not all(s is None for s in states):
            raise ValueError("members must all carry a state or all start fresh")
        state = None if states[0] is None else NetworkState(*(torch.stack(list(part)) for part in zip(
            *((s.rates, s.trace, s.plastic_weights) for s in states))))
        return cls(pairs, stimuli, uniform, exponential, state, None if actions is None else torch.stack(actions))

    def tensors(self, n: int) -> tuple:
        """(pairs, stimuli, uniform, exponential, rates, trace, P) of drawn episodes, the state zeros when
        fresh (from a zero state the blank steps leave P exactly 0): the inputs of a captured episode."""
        members, batch = self.pairs.shape[:2]
        state = self.state or NetworkState(*(torch.zeros(members, batch, *shape, device=self.pairs.device)
                                             for shape in ((n,), (n, n), (n, n))))
        return (self.pairs, self.stimuli, self.uniform, self.exponential, state.rates, state.trace,
                state.plastic_weights)

    @classmethod
    def of_tensors(cls, pairs, stimuli, uniform, exponential, rates, trace, plastic) -> "Episodes":
        return cls(pairs, stimuli, uniform, exponential, NetworkState(rates, trace, plastic))


def reward_of(action: torch.Tensor, correct_action: torch.Tensor) -> torch.Tensor:
    return torch.where(action == correct_action, 1.0, -1.0)


def every_step(per_trial: torch.Tensor) -> torch.Tensor:
    """(..., ntrials) -> (..., nsteps): each trial's value at its 4 steps (no host synchronisation)."""
    return per_trial.unsqueeze(-1).expand(*per_trial.shape, STEPS_PER_TRIAL).reshape(*per_trial.shape[:-1], -1)


def sample_from_exponential(probabilities: torch.Tensor, exponential: torch.Tensor) -> torch.Tensor:
    """What torch.multinomial(probabilities, 1) returns when its generator would draw `exponential` (it draws
    q ~ Exp(1) of the probabilities' shape and takes argmax(p / q))."""
    return torch.argmax(probabilities / exponential, -1)


def split_members(stacked: torch.Tensor) -> tuple:
    """(K, ...) -> the K members' tensors. unbind, whose backward is one stack (indexing each member would
    zero-fill and scatter per member); for one member a squeeze, whose backward costs nothing."""
    return (stacked.squeeze(0),) if stacked.shape[0] == 1 else stacked.unbind(0)


def stack_parameters(nets, names=None) -> dict:
    """{name: (K, ...)}: the networks' parameters and buffers (those of `names`, else all), stacked along a
    member axis. Differentiable: gradients reach each network's own tensors, which its optimizer steps (so
    `torch.stack`, not `torch.func.stack_module_state`, whose stacked tensors are new leaves)."""
    named = [dict(net.named_parameters()) | dict(net.named_buffers()) for net in nets]
    return {name: torch.stack([tensors[name] for tensors in named]) for name in (names or named[0])}


def task_inputs(pairs: torch.Tensor, stimuli: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of every step without the feedback (K, B, T, 4, 37), and the correct actions (K, B, T), of
    K members' trials: pairs (K, B, T, 2), stimuli (K, B, T, 2, cs)."""
    members, batch, ntrials = pairs.shape[:3]
    flat = Trials(pairs.reshape(members * batch, ntrials, 2), stimuli.reshape(members * batch, *stimuli.shape[2:]))
    inputs = base_inputs(flat).reshape(members, batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE).to(dtype)
    return inputs, flat.correct_action.reshape(members, batch, ntrials)


def finish(pairs, inputs, correct_action, response, logits, values, modulation, rates, final_trace, final_plastic,
           snapshots, actions=None, exponential=None, action_penalty: float = 0.0, stacked: bool = False):
    """The episode's ending, every runner's: the actions of the steps other than the response (which do not
    affect the dynamics, unless penalised) sampled from the pre-drawn `exponential` (K, B * nsteps, 2) unless
    `actions` (K, B, nsteps) are given; the rewards (+-1 at the response step, minus the action penalty at
    every action 1); the records. Every argument has the member axis first; inputs (K, B, nsteps, 37),
    response and correct_action (K, B, T), rates (K, B, nsteps, n)."""
    members, batch, ntrials = pairs.shape[:3]
    nsteps = ntrials * STEPS_PER_TRIAL
    if actions is None:
        sampled = sample_from_exponential(torch.softmax(logits.detach(), -1),
                                          exponential.reshape(members, batch, nsteps, 2))
        is_response = torch.arange(nsteps, device=logits.device) % STEPS_PER_TRIAL == RESPONSE
        actions = torch.where(is_response, every_step(response), sampled)
    rewards = torch.zeros(members, batch, ntrials, STEPS_PER_TRIAL, device=inputs.device, dtype=inputs.dtype)
    rewards[..., RESPONSE] = reward_of(response, correct_action)
    rewards = rewards.reshape(members, batch, nsteps)
    if action_penalty:
        rewards = rewards - action_penalty * (actions == 1).float()
    return member_records(pairs, inputs, actions, rewards, response == correct_action, logits, values, modulation,
                          rates, rates[:, :, -1], final_trace, final_plastic, snapshots, stacked)


def member_records(pairs, inputs, actions, rewards, correct, logits, values, modulation, rates, final_rates,
                   final_trace, final_plastic, snapshots, stacked: bool = False):
    """One EpisodeRecord per member from stacked (K, batch, ...) tensors (views, not copies); snapshots:
    {trial: (K, batch, 4, n, n)}. `stacked`: instead, the one record of all members, every field with the
    member axis (what the loss of all members at once reads)."""
    if stacked:
        return EpisodeRecord(pairs=pairs, inputs=inputs, actions=actions, rewards=rewards, correct=correct,
                             logits=logits, values=values, modulation=modulation, rates=rates,
                             final_state=NetworkState(final_rates, final_trace, final_plastic), snapshots=snapshots)
    per_member = [split_members(x) for x in (pairs, inputs, actions, rewards, correct, logits, values, modulation,
                                             rates, final_rates, final_trace, final_plastic)]
    return [EpisodeRecord(pairs=p, inputs=i, actions=a, rewards=r, correct=c, logits=lo, values=v, modulation=m,
                          rates=ra, final_state=NetworkState(last, trace, plastic),
                          snapshots={t: s[k] for t, s in snapshots.items()})
            for k, (p, i, a, r, c, lo, v, m, ra, last, trace, plastic) in enumerate(zip(*per_member))]


def stacked_record(records) -> EpisodeRecord:
    """The records of K networks as one, every field with a leading member axis (one stack per field,
    whatever K). Snapshots are left out. (The engine gives this directly: `run_episodes(..., stacked=True)`.)"""
    fields = ("pairs", "inputs", "actions", "rewards", "correct", "logits", "values", "modulation", "rates")
    stacked = {name: torch.stack([getattr(r, name) for r in records]) for name in fields}
    final = NetworkState(*(torch.stack([getattr(r.final_state, name) for r in records])
                           for name in ("rates", "trace", "plastic_weights")))
    return EpisodeRecord(**stacked, final_state=final)
