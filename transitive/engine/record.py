"""What an episode produced (`EpisodeRecord`), and the pieces every runner of the engine shares to make one:
the reward of a response, per-trial values spread over their steps, the per-member records of a stacked run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.network import NetworkState
from ..model.task import RESPONSE, STEPS_PER_TRIAL
from .stacked import split_members


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


def reward_of(action: torch.Tensor, correct_action: torch.Tensor) -> torch.Tensor:
    return torch.where(action == correct_action, 1.0, -1.0)


def every_step(per_trial: torch.Tensor) -> torch.Tensor:
    """(..., ntrials) -> (..., nsteps): each trial's value at its 4 steps (no host synchronisation)."""
    return per_trial.unsqueeze(-1).expand(*per_trial.shape, STEPS_PER_TRIAL).reshape(*per_trial.shape[:-1], -1)


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
    whatever K). Snapshots are left out. (The engine gives this directly: `run_members(..., stacked=True)`.)"""
    fields = ("pairs", "inputs", "actions", "rewards", "correct", "logits", "values", "modulation", "rates")
    stacked = {name: torch.stack([getattr(r, name) for r in records]) for name in fields}
    final = NetworkState(*(torch.stack([getattr(r.final_state, name) for r in records])
                           for name in ("rates", "trace", "plastic_weights")))
    return EpisodeRecord(**stacked, final_state=final)
