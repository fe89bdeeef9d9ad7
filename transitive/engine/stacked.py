"""K independent networks as one, for the kernels: their parameters stacked along a leading member axis, and
the random numbers of their episodes drawn beforehand.

W is (K, n, n) and is broadcast over each member's batch, P is (K, batch, n, n), and the linear layers are
batched products over the members (`transitive.engine.members` runs episodes on these). The random numbers a run
draws for an episode (the uniforms that decide each response, and the exponential variates behind
`torch.multinomial`'s sampling of the other steps' actions) are drawn before the episode from each member's
own generator, in a fixed order and shape, by `draw_noise`. So a member samples exactly the actions its own
run would draw, whatever the other members, and an episode has no random draw (nor host synchronisation) of
its own: it can be captured as a CUDA graph.

`torch.multinomial` with one sample draws q ~ Exp(1) of the probabilities' shape and takes argmax(p / q);
`sample_from_exponential` does the same with q given.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.network import NetworkState
from ..model.task import STEPS_PER_TRIAL

# The parameters the kernels read (the published network's, `transitive.engine.rule.KERNEL_LAYOUT`), in the
# order of the stacked tuple. The "torch" backend stacks every parameter of any network instead
# (`transitive.engine.definition.stacked_parameters`).
PARAMETER_NAMES = ("w", "alpha", "etaet", "DAmult", "i2h.weight", "i2h.bias", "h2DA.weight", "h2DA.bias",
                   "h2o.weight", "h2o.bias", "h2v.weight", "h2v.bias")


@dataclass
class StackedParameters:
    """Each field (K, ...) : member k's parameter at index k."""

    w: torch.Tensor
    alpha: torch.Tensor
    eta: torch.Tensor  # the file's etaet
    modulation_gain: torch.Tensor  # the file's DAmult
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

def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member k's x[k] (..., in) through its own layer (weight[k] (out, in), bias[k]) -> (K, ..., out)."""
    members, inner = x.shape[0], x.shape[1:-1]
    flat = x.reshape(members, -1, x.shape[-1])
    y = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return y.reshape(members, *inner, weight.shape[1])


def per_member(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """(K, 1) scalar parameters -> (K, 1, ..., 1) with `ndim` axes, to broadcast against (K, ...)."""
    return value.reshape(value.shape[0], *([1] * (ndim - 1)))


def modulation(params: StackedParameters, rates: torch.Tensor) -> torch.Tensor:
    """m(t) of rates (K, ..., n) -> (K, ...)."""
    d = torch.tanh(linear(rates, params.mod_weight, params.mod_bias))
    return per_member(params.modulation_gain, d.dim() - 1) * (d[..., 0] - d[..., 1])


def effective_weights(params: StackedParameters, plastic: torch.Tensor,
                      out: torch.Tensor | None = None) -> torch.Tensor:
    """W + alpha * P per member: (K, batch, n, n) (written into `out` if given)."""
    return torch.addcmul(params.w.unsqueeze(1), params.alpha.unsqueeze(1), plastic, out=out)


def matvec(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return torch.matmul(matrices, vectors.unsqueeze(-1)).squeeze(-1)


def hebbian(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    return torch.tanh(post.unsqueeze(-1) * pre.unsqueeze(-2))


def split_members(stacked: torch.Tensor) -> tuple:
    """(K, ...) -> the K members' tensors. unbind, whose backward is one stack (indexing each member would
    zero-fill and scatter per member); for one member a squeeze, whose backward costs nothing."""
    return (stacked.squeeze(0),) if stacked.shape[0] == 1 else stacked.unbind(0)


def stack_states(states) -> NetworkState | None:
    """Members' carried states -> one stacked state (None when every member starts fresh)."""
    if all(s is None for s in states):
        return None
    if any(s is None for s in states):
        raise ValueError("members must all carry a state or all start fresh")
    return NetworkState(*(torch.stack(list(group)) for group in
                          zip(*((s.rates, s.trace, s.plastic_weights) for s in states))))
