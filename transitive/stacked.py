"""One episode of K independent networks run as one batch: their parameters stacked along a leading axis.

This is the trial loop of `episode._trials_torch`, with every parameter carrying a leading member axis:
W is (K, n, n) and is broadcast over each member's batch, P is (K, batch, n, n), and the linear layers are
batched products over the members. It has no host synchronisation and no random draws of its own: the
random numbers a single run would draw inside `run_episode` (the uniforms that decide each response, and
the exponential variates behind `torch.multinomial`'s sampling of the other steps' actions) are drawn
beforehand from each member's own generator, in the same order and shapes, by `draw_noise`. So a member
samples exactly the actions its own run would (up to ties within float32 rounding), and the whole episode
can be captured as a CUDA graph (`transitive.population`).

`torch.multinomial` with one sample draws q ~ Exp(1) of the probabilities' shape and takes argmax(p / q);
`sample_from_exponential` does the same with q given.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .episode import BLANK_STEPS, EpisodeRecord
from .network import PLASTIC_CLIP, NetworkState
from .task import ACTION, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs

# The parameters of a PlasticNetwork, in the order of the stacked tuple.
PARAMETER_NAMES = ("w", "alpha", "etaet", "DAmult", "i2h.weight", "i2h.bias", "h2DA.weight", "h2DA.bias",
                   "h2o.weight", "h2o.bias", "h2v.weight", "h2v.bias")


@dataclass
class StackedParameters:
    """Each field (K, ...) : member k's parameter at index k."""

    w: torch.Tensor
    alpha: torch.Tensor
    etaet: torch.Tensor
    DAmult: torch.Tensor
    in_weight: torch.Tensor
    in_bias: torch.Tensor
    mod_weight: torch.Tensor
    mod_bias: torch.Tensor
    out_weight: torch.Tensor
    out_bias: torch.Tensor
    value_weight: torch.Tensor
    value_bias: torch.Tensor

    @classmethod
    def of(cls, tensors) -> "StackedParameters":
        return cls(*tensors)

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)

    @property
    def members(self) -> int:
        return self.w.shape[0]

    def member(self, k: int) -> "MemberView":
        return MemberView(self, k)


class MemberView:
    """Member k's slices of the stacked parameters under the network's attribute names (what the loss reads)."""

    def __init__(self, stacked: StackedParameters, k: int):
        self.w, self.alpha = stacked.w[k], stacked.alpha[k]
        self.etaet, self.DAmult = stacked.etaet[k], stacked.DAmult[k]


def member_parameters(net) -> list[torch.Tensor]:
    named = dict(net.named_parameters())
    return [named[name] for name in PARAMETER_NAMES]


def stack_parameters(nets) -> StackedParameters:
    """Stack the members' parameters (differentiable: gradients flow back to each member's own tensors)."""
    per_member = [member_parameters(net) for net in nets]
    return StackedParameters.of(torch.stack(list(group)) for group in zip(*per_member))


# ---------------------------------------------------------------------------------------------------------
# Random numbers, drawn before the episode in the order `run_episode` draws them.

def draw_noise(generators, batch: int, ntrials: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(uniform (K, ntrials, batch), exponential (K, batch * nsteps, 2)): per member, first the uniforms of
    the responses, then the exponential variates of the other steps' action sampling."""
    uniform, exponential = [], []
    nsteps = ntrials * STEPS_PER_TRIAL
    for generator in generators:
        uniform.append(torch.rand(ntrials, batch, device=device, generator=generator))
        exponential.append(torch.empty(batch * nsteps, 2, device=device).exponential_(1, generator=generator))
    return torch.stack(uniform), torch.stack(exponential)


def sample_from_exponential(probabilities: torch.Tensor, exponential: torch.Tensor) -> torch.Tensor:
    """What torch.multinomial(probabilities, 1) returns when its generator would draw `exponential`."""
    return torch.argmax(probabilities / exponential, -1)


# ---------------------------------------------------------------------------------------------------------
# The stacked network.

def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member k's x[k] (..., in) through its own layer (weight[k] (out, in), bias[k]) -> (K, ..., out)."""
    members, inner = x.shape[0], x.shape[1:-1]
    flat = x.reshape(members, -1, x.shape[-1])
    y = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return y.reshape(members, *inner, weight.shape[1])


def _per_member(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """(K, 1) scalar parameters -> (K, 1, ..., 1) with `ndim` axes, to broadcast against (K, ...)."""
    return value.reshape(value.shape[0], *([1] * (ndim - 1)))


def _modulation(params: StackedParameters, rates: torch.Tensor) -> torch.Tensor:
    """m(t) of rates (K, ..., n) -> (K, ...)."""
    d = torch.tanh(_linear(rates, params.mod_weight, params.mod_bias))
    return _per_member(params.DAmult, d.dim() - 1) * (d[..., 0] - d[..., 1])


def _effective_weights(params: StackedParameters, plastic: torch.Tensor) -> torch.Tensor:
    """W + alpha * P per member: (K, batch, n, n)."""
    return torch.addcmul(params.w.unsqueeze(1), params.alpha.unsqueeze(1), plastic)


def _matvec(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return torch.matmul(matrices, vectors.unsqueeze(-1)).squeeze(-1)


def _hebbian(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    return torch.tanh(post.unsqueeze(-1) * pre.unsqueeze(-2))


def blank_steps(params: StackedParameters, state: NetworkState) -> torch.Tensor:
    """The all-zero input steps that start an episode with a carried state; returns P after them."""
    rates, trace, plastic = state.rates, state.trace, state.plastic_weights
    eta = _per_member(params.etaet, 4)
    for _ in range(BLANK_STEPS):
        new_rates = torch.tanh(params.in_bias.unsqueeze(1) + _matvec(_effective_weights(params, plastic), rates))
        plastic = torch.clamp(plastic + _modulation(params, new_rates)[..., None, None] * trace,
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        trace = (1 - eta) * trace + eta * _hebbian(new_rates, rates)
        rates = new_rates
    return plastic


def _feedback_drive(params: StackedParameters, reward: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """W_in times step 2's reward and action inputs (no bias): (K, batch, n)."""
    reward_column = params.in_weight[:, :, REWARD].unsqueeze(1)
    action_columns = params.in_weight[:, :, ACTION]  # (K, n, 2)
    chosen = torch.where(action.unsqueeze(-1) == 1, action_columns[:, :, 1].unsqueeze(1),
                         action_columns[:, :, 0].unsqueeze(1))
    return reward.unsqueeze(-1) * reward_column + chosen


def _every_step(per_trial: torch.Tensor) -> torch.Tensor:
    """(..., ntrials) -> (..., nsteps): each trial's value at its 4 steps (no host synchronisation)."""
    return per_trial.unsqueeze(-1).expand(*per_trial.shape, STEPS_PER_TRIAL).reshape(*per_trial.shape[:-1], -1)


def _reward(action: torch.Tensor, correct_action: torch.Tensor) -> torch.Tensor:
    return torch.where(action == correct_action, 1.0, -1.0)


def stacked_episode(params: StackedParameters, pairs: torch.Tensor, stimuli: torch.Tensor, uniform: torch.Tensor,
                    exponential: torch.Tensor, state: NetworkState | None = None) -> list[EpisodeRecord]:
    """Run one episode of every member. pairs (K, batch, ntrials, 2), stimuli (K, batch, ntrials, 2, cs),
    noise from `draw_noise`, state: stacked (K, batch, ...) carried state or None (fresh).

    Returns one EpisodeRecord per member (views into stacked tensors), as `run_episode` would give it."""
    members, batch, ntrials = pairs.shape[:3]
    n = params.w.shape[-1]
    nsteps = ntrials * STEPS_PER_TRIAL
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=params.w.device)
    else:
        plastic = blank_steps(params, state)
    flat = Trials(pairs.reshape(members * batch, ntrials, 2), stimuli.reshape(members * batch, *stimuli.shape[2:]))
    inputs = base_inputs(flat).reshape(members, batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE)
    correct_action = flat.correct_action.reshape(members, batch, ntrials)
    drive = _linear(inputs, params.in_weight, params.in_bias)  # (K, batch, ntrials, 4, n)
    out_weight, out_bias = params.out_weight.detach(), params.out_bias.detach()
    eta = _per_member(params.etaet, 4)

    rates, responses = [], []
    for t in range(ntrials):
        r0 = torch.tanh(drive[:, :, t, 0])
        weights = _effective_weights(params, plastic)
        r1 = torch.tanh(drive[:, :, t, 1] + _matvec(weights, r0))
        p1 = torch.softmax(_linear(r1.detach(), out_weight, out_bias), -1)[..., 1]
        action = (uniform[:, t] < p1).long()
        reward = _reward(action, correct_action[:, :, t])
        r2 = torch.tanh(drive[:, :, t, 2] + _feedback_drive(params, reward, action) + _matvec(weights, r1))
        trace = eta * _hebbian(r1, r0)
        plastic = torch.clamp(torch.addcmul(plastic, _modulation(params, r2)[..., None, None], trace),
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        weights = _effective_weights(params, plastic)
        r3 = torch.tanh(drive[:, :, t, 3] + _matvec(weights, r2))
        trace = torch.lerp(trace, _hebbian(r2, r1), eta)
        plastic = torch.clamp(torch.addcmul(plastic, _modulation(params, r3)[..., None, None], trace),
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        rates.append(torch.stack([r0, r1, r2, r3], 2))
        responses.append(action)
    final_trace = torch.lerp(trace, _hebbian(r3, r2), eta)
    rates = torch.stack(rates, 2)  # (K, batch, ntrials, 4, n)
    response = torch.stack(responses, 2)  # (K, batch, ntrials)

    reward = _reward(response, correct_action)
    feedback = torch.zeros(members, batch, ntrials, INPUT_SIZE, device=inputs.device)
    feedback[..., REWARD] = reward
    feedback[..., ACTION] = torch.stack([1 - response, response], -1).float()  # one-hot, without a check
    inputs = inputs.clone()
    inputs[:, :, :, 2] += feedback
    logits = _linear(rates, params.out_weight, params.out_bias).reshape(members, batch, nsteps, 2)
    sampled = sample_from_exponential(torch.softmax(logits.detach(), -1),
                                      exponential.reshape(members, batch, nsteps, 2))
    is_response = (torch.arange(nsteps, device=logits.device) % STEPS_PER_TRIAL == RESPONSE)
    actions = torch.where(is_response, _every_step(response), sampled)
    rewards = torch.where(is_response, _every_step(reward), 0.0)
    values = _linear(rates, params.value_weight, params.value_bias).reshape(members, batch, nsteps)
    modulation = _modulation(params, rates).reshape(members, batch, nsteps)
    correct = response == correct_action
    step_rates = rates.reshape(members, batch, nsteps, n)
    return [EpisodeRecord(pairs=pairs[k], inputs=inputs[k].reshape(batch, nsteps, INPUT_SIZE), actions=actions[k],
                          rewards=rewards[k], correct=correct[k], logits=logits[k], values=values[k],
                          modulation=modulation[k], rates=step_rates[k],
                          final_state=NetworkState(rates[k, :, -1, 3], final_trace[k], plastic[k]))
            for k in range(members)]


def stack_states(states) -> NetworkState | None:
    """Members' carried states -> one stacked state (None when every member starts fresh)."""
    if all(s is None for s in states):
        return None
    if any(s is None for s in states):
        raise ValueError("members must all carry a state or all start fresh")
    return NetworkState(*(torch.stack(list(group)) for group in
                          zip(*((s.rates, s.trace, s.plastic_weights) for s in states))))
