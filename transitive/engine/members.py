"""The episode engine: one episode of K networks x a batch of episodes each, fast.

A single network is K = 1 (`transitive.engine.episode.run_episode`); seeds trained side by side (a
population, `transitive.training.trainer.Trainer` with several seeds) are K > 1. Both run this code.

Which path runs is decided per call (`backends.choose`): a compiled kernel only when the networks' rule is
the one it was verified against (`transitive.engine.rule`), else the networks' own definition, step by step
(`transitive.engine.definition`, the "torch" backend). The kernel path:

    blank steps (only with a carried state: from a fresh one they change nothing)
    the feedforward drive of every step, for both possible responses at the feedback step
    the trial loop, through a kernel (`transitive.engine.backends`: the CPU kernel or the GPU kernels)
    outputs, values and m(t) of every step in one batched product each; the actions of the steps other
    than the response (which do not affect the dynamics) sampled from the pre-drawn noise

It exploits the trial structure (docs/method.md, time loop): r and H are reset at every trial start, so
step 1 has no recurrent input, the trace is 0 after step 1 and eta tanh(r2 r1^T) after step 2, and P
changes only at steps 3 and 4 (feedback and delay). Options that break these assumptions (a penalty on
action 1, which makes every step's action matter; r or H carried across trials) are run by the plain
step-by-step runner (`transitive.engine.episode.run_episode_plain`), which every backend is tested against.
"""
from __future__ import annotations

import torch

from ..model.network import PLASTIC_CLIP, NetworkState
from ..model.task import ACTION, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs
from . import backends, compiled
from .definition import BLANK_STEPS, blank_plastic_weights, run_definition
from .record import EpisodeRecord, every_step, member_records, reward_of
from .stacked import (StackedParameters, effective_weights, linear, matvec, modulation, per_member,
                      sample_from_exponential, stack_parameters)

__all__ = ["BLANK_STEPS", "EpisodeRecord", "run_members", "reward_of"]

def blank_steps(nets, params: StackedParameters, state: NetworkState) -> torch.Tensor:
    """The all-zero input steps that start an episode with a carried state; returns P after them. They run
    the networks' definition (`definition.blank_plastic_weights`), except where no gradient is needed: there
    the verified rule's operations run in place (`_blank_steps_in_place`, without allocating a (K, batch, n, n)
    tensor at each one)."""
    tensors = (*params.as_tuple(), state.rates, state.trace, state.plastic_weights)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return blank_plastic_weights(nets, state)
    return _blank_steps_in_place(params, state)


@torch.no_grad()
def _blank_steps_in_place(params: StackedParameters, state: NetworkState) -> torch.Tensor:
    """The blank steps of the verified rule, each operation writing into a buffer (a specialisation, like the
    kernels: used only when the rule is the verified one; equal to the definition to float32 rounding)."""
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


def run_members(nets, pairs: torch.Tensor, stimuli: torch.Tensor, uniform=None, exponential=None,
                state: NetworkState | None = None, actions: torch.Tensor | None = None, snapshot_trials=(),
                reset_plastic_every_trial: bool = False, backend: str | None = None,
                vectorise: bool | None = None, stacked: bool = False):
    """One episode of every network of `nets` (K networks of one class). pairs (K, B, T, 2), stimuli
    (K, B, T, 2, cs); either the noise of `stacked.draw_noise` (uniform (K, T, B), exponential
    (K, B * nsteps, 2)) or forced actions (K, B, nsteps); state: stacked (K, B, ...) carried state or None
    (fresh); snapshot_trials: trials whose P after each step is kept (float16); reset_plastic_every_trial: P
    set to 0 at every trial start (a control: no learning across trials); backend: one of
    `backends.BACKENDS` ("eager" or "compiled": the definition, never or always compiled), None to choose
    (a kernel only for the verified rule, `transitive.engine.rule`);
    vectorise: for the "torch" backend, run the networks as one by vmap (None: on CUDA only).

    Returns one EpisodeRecord per network (views into stacked tensors), or with `stacked` the one record of
    all networks (every field with the member axis first)."""
    nets = list(nets)
    compile_mode = compiled.mode(backends.requested(backend))
    backend = backends.choose(nets, backend)
    if backend == "torch" or (backend == "triton" and reset_plastic_every_trial):  # the GPU kernels carry P
        return run_definition(nets, pairs, stimuli, uniform, exponential, state, actions, snapshot_trials,
                              reset_plastic_every_trial, vectorise, stacked, compile_mode)
    params = stack_parameters(nets)
    members, batch, ntrials = pairs.shape[:3]
    n = params.w.shape[-1]
    nsteps = ntrials * STEPS_PER_TRIAL
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=params.w.device, dtype=params.w.dtype)
    else:
        plastic = blank_steps(nets, params, state)
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
        actions = torch.where(is_response, every_step(response), sampled)
    rewards = torch.zeros(members, batch, ntrials, STEPS_PER_TRIAL, device=inputs.device, dtype=inputs.dtype)
    rewards[..., RESPONSE] = reward
    values = linear(rates, params.value_weight, params.value_bias).reshape(members, batch, nsteps)
    step_modulation = modulation(params, rates).reshape(members, batch, nsteps)
    return member_records(pairs, inputs.reshape(members, batch, nsteps, INPUT_SIZE), actions,
                          rewards.reshape(members, batch, nsteps), response == correct_action, logits, values,
                          step_modulation, rates.reshape(members, batch, nsteps, n), rates[:, :, -1, 3],
                          final_trace, plastic, snapshots, stacked)
