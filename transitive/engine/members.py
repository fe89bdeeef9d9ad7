"""The episode engine: one episode of K networks x a batch of episodes each, fast.

A single network is K = 1 (`transitive.engine.episode.run_episode`); a population of seeds trained side by side
is K > 1 (`transitive.population`). Both run this code:

    blank steps (only with a carried state: from a fresh one they change nothing)
    the feedforward drive of every step, for both possible responses at the feedback step
    the trial loop, through a backend (`transitive.engine.backends`: PyTorch, the CPU kernel or the GPU kernels)
    outputs, values and m(t) of every step in one batched product each; the actions of the steps other
    than the response (which do not affect the dynamics) sampled from the pre-drawn noise

The fast path exploits the trial structure (docs/method.md, time loop): r and H are reset at every trial
start, so step 0 has no recurrent input, the trace is 0 after step 0 and eta tanh(r1 r0^T) after step 1,
and P changes only at steps 2 and 3. Options that break these assumptions (a penalty on action 1, which
makes every step's action matter; r or H carried across trials) are run by the plain step-by-step runner
(`transitive.engine.episode.run_episode_plain`), which is the definition every backend is tested against.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.network import PLASTIC_CLIP, NetworkState
from ..model.task import ACTION, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs
from . import backends
from .stacked import (StackedParameters, effective_weights, hebbian, linear, matvec, modulation, per_member,
                      sample_from_exponential, split_members)

BLANK_STEPS = 2


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


def blank_steps(params: StackedParameters, state: NetworkState) -> torch.Tensor:
    """The all-zero input steps that start an episode with a carried state; returns P after them (not the
    trace after the last one: every trial starts from H = 0). Where no gradient is needed, the same
    operations run in place (the same numbers, without allocating a (K, batch, n, n) tensor at each one)."""
    tensors = (*params.as_tuple(), state.rates, state.trace, state.plastic_weights)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return (_blank_steps_differentiable if needs_grad else _blank_steps_in_place)(params, state)


def _blank_steps_differentiable(params: StackedParameters, state: NetworkState) -> torch.Tensor:
    rates, trace, plastic = state.rates, state.trace, state.plastic_weights
    eta = per_member(params.eta, 4)
    for step in range(BLANK_STEPS):
        new_rates = torch.tanh(params.in_bias.unsqueeze(1) + matvec(effective_weights(params, plastic), rates))
        plastic = torch.clamp(plastic + modulation(params, new_rates)[..., None, None] * trace,
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        if step < BLANK_STEPS - 1:
            trace = (1 - eta) * trace + eta * hebbian(new_rates, rates)
        rates = new_rates
    return plastic


@torch.no_grad()
def _blank_steps_in_place(params: StackedParameters, state: NetworkState) -> torch.Tensor:
    """`_blank_steps_differentiable` with each operation writing into a buffer (the results are bitwise
    the same: the same kernels, with the operands of + and * swapped at most)."""
    rates, trace, plastic = state.rates, state.trace, state.plastic_weights
    eta = per_member(params.eta, 4)
    work = torch.empty_like(plastic)  # W + A * P, then the step's Hebbian term
    for step in range(BLANK_STEPS):
        weights = effective_weights(params, plastic, out=work)
        new_rates = torch.tanh(params.in_bias.unsqueeze(1) + matvec(weights, rates))
        change = torch.mul(modulation(params, new_rates)[..., None, None], trace)
        plastic = change.add_(plastic).clamp_(-PLASTIC_CLIP, PLASTIC_CLIP)
        if step < BLANK_STEPS - 1:
            hebbian_term = torch.mul(new_rates.unsqueeze(-1), rates.unsqueeze(-2), out=work).tanh_().mul_(eta)
            trace = torch.mul(1 - eta, trace).add_(hebbian_term)
        rates = new_rates
    return plastic


def drives(params: StackedParameters, inputs: torch.Tensor, correct_action: torch.Tensor):
    """The feedforward drive W_in i + b_in of every step: (K, B, T, 4, n) without the feedback, and the
    feedback step's for either response (K, B, T, 2, n) (the reward follows from the response and the
    correct action). inputs (K, B, T, 4, 37) without the feedback."""
    drive = linear(inputs, params.in_weight, params.in_bias)  # (K, B, T, 4, n)
    columns = params.in_weight  # (K, n, 37)
    feedback = []
    for action in (0, 1):
        reward = reward_of(torch.full_like(correct_action, action), correct_action)  # (K, B, T)
        chosen = columns[:, :, ACTION][:, :, action]  # (K, n)
        feedback.append(reward.unsqueeze(-1) * columns[:, :, REWARD][:, None, None] + chosen[:, None, None])
    return drive, drive[:, :, :, 2:3] + torch.stack(feedback, 3)


def _every_step(per_trial: torch.Tensor) -> torch.Tensor:
    """(..., ntrials) -> (..., nsteps): each trial's value at its 4 steps (no host synchronisation)."""
    return per_trial.unsqueeze(-1).expand(*per_trial.shape, STEPS_PER_TRIAL).reshape(*per_trial.shape[:-1], -1)


def run_members(params: StackedParameters, pairs: torch.Tensor, stimuli: torch.Tensor, uniform=None,
                exponential=None, state: NetworkState | None = None, actions: torch.Tensor | None = None,
                snapshot_trials=(), reset_plastic_every_trial: bool = False,
                backend: str | None = None) -> list[EpisodeRecord]:
    """One episode of every member. pairs (K, B, T, 2), stimuli (K, B, T, 2, cs); either the noise of
    `stacked.draw_noise` (uniform (K, T, B), exponential (K, B * nsteps, 2)) or forced actions (K, B, nsteps);
    state: stacked (K, B, ...) carried state or None (fresh); snapshot_trials: trials whose P after each step
    is kept (float16); reset_plastic_every_trial: P set to 0 at every trial start (a control: no learning
    across trials); backend: one of `backends.BACKENDS`, None to choose.

    Returns one EpisodeRecord per member (views into stacked tensors)."""
    members, batch, ntrials = pairs.shape[:3]
    n = params.w.shape[-1]
    nsteps = ntrials * STEPS_PER_TRIAL
    backend = backend or backends.choose(params.w)
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=params.w.device, dtype=params.w.dtype)
    else:
        plastic = blank_steps(params, state)
    flat = Trials(pairs.reshape(members * batch, ntrials, 2), stimuli.reshape(members * batch, *stimuli.shape[2:]))
    inputs = base_inputs(flat).reshape(members, batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE).to(params.w.dtype)
    correct_action = flat.correct_action.reshape(members, batch, ntrials)
    forced = None if actions is None else actions[:, :, RESPONSE::STEPS_PER_TRIAL].contiguous()
    draws = None if actions is not None else uniform.transpose(1, 2)  # (K, B, T)
    rates, response, plastic, final_trace, snapshots = backends.run(
        backend, params, *drives(params, inputs, correct_action), plastic, forced, draws, snapshot_trials,
        reset_plastic_every_trial)

    reward = reward_of(response, correct_action)
    feedback = torch.zeros(members, batch, ntrials, INPUT_SIZE, device=inputs.device, dtype=inputs.dtype)
    feedback[..., REWARD] = reward
    feedback[..., ACTION] = torch.stack([1 - response, response], -1).to(inputs.dtype)  # one-hot, without a check
    inputs = inputs.clone()
    inputs[:, :, :, 2] += feedback
    logits = linear(rates, params.out_weight, params.out_bias).reshape(members, batch, nsteps, 2)
    if actions is None:
        sampled = sample_from_exponential(torch.softmax(logits.detach(), -1),
                                          exponential.reshape(members, batch, nsteps, 2))
        is_response = (torch.arange(nsteps, device=logits.device) % STEPS_PER_TRIAL == RESPONSE)
        actions = torch.where(is_response, _every_step(response), sampled)
    rewards = torch.zeros(members, batch, ntrials, STEPS_PER_TRIAL, device=inputs.device, dtype=inputs.dtype)
    rewards[..., RESPONSE] = reward
    values = linear(rates, params.value_weight, params.value_bias).reshape(members, batch, nsteps)
    step_modulation = modulation(params, rates).reshape(members, batch, nsteps)
    correct = response == correct_action
    per_member = [split_members(x) for x in (
        pairs, inputs.reshape(members, batch, nsteps, INPUT_SIZE), actions, rewards.reshape(members, batch, nsteps),
        correct, logits, values, step_modulation, rates.reshape(members, batch, nsteps, n), rates[:, :, -1, 3],
        final_trace, plastic)]
    return [EpisodeRecord(pairs=p, inputs=i, actions=a, rewards=r, correct=c, logits=lo, values=v, modulation=m,
                          rates=ra, final_state=NetworkState(last, trace, plastic_k),
                          snapshots={t: s[k] for t, s in snapshots.items()})
            for k, (p, i, a, r, c, lo, v, m, ra, last, trace, plastic_k) in enumerate(zip(*per_member))]
