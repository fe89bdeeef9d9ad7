"""The plastic recurrent network (docs/method.md, network).

The parameter names (`w`, `alpha`, `etaet`, `DAmult`, `i2h`, `h2DA`, `h2o`, `h2v`) are the file format of
the original release and are kept as they are; readable aliases are provided as properties.

One time step (`PlasticNetwork.step`, the rule's one definition; docs/extending.md says how to change it),
for input i(t), previous rates r(t-1), eligibility trace H and plastic weights P:

    r(t) = tanh(W_in i(t) + b_in + (W + alpha * P) r(t-1))
    m(t) = DAmult * (d_0 - d_1),  d = tanh(W_mod r(t) + b_mod)
    P   <- clip(P + m(t) H, -50, 50)           (H from before this step)
    H   <- (1 - eta) H + eta tanh(r(t) r(t-1)^T)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .task import INPUT_SIZE  # the input vector's layout is the task's

HIDDEN_SIZE = 200
PLASTIC_CLIP = 50.0

ALPHA_SHAPES = ("synapse", "neuron", "scalar")


@dataclass
class NetworkState:
    """What changes within (and, when carried over, between) episodes: rates, eligibility trace, plastic weights."""

    rates: torch.Tensor  # (batch, n)
    trace: torch.Tensor  # (batch, n, n)
    plastic_weights: torch.Tensor  # (batch, n, n)

    @classmethod
    def fresh(cls, batch: int, hidden_size: int = HIDDEN_SIZE, device=None) -> "NetworkState":
        zeros = torch.zeros(batch, hidden_size, hidden_size, device=device)
        return cls(torch.zeros(batch, hidden_size, device=device), zeros, zeros.clone())

    def detach(self) -> "NetworkState":
        return NetworkState(self.rates.detach(), self.trace.detach(), self.plastic_weights.detach())


class PlasticNetwork(nn.Module):
    """Recurrent network with neuromodulated Hebbian plasticity.

    alpha_shape: "synapse" (one plasticity coefficient per synapse, the paper's network), "neuron" (one per
    postsynaptic neuron) or "scalar" (one shared). positive_alpha takes |alpha| at initialisation (keeping
    it positive during training is the trainer's job, see `clip_alpha_at_zero`).
    frozen_input: the "frozen input weights" control (Supplementary Note 6), initialised as the original's
    add-on does: rows n//3 and above of the input weights and the whole input bias start at 0, so only the
    first third of the neurons receive input (and none a constant drive); the input layer is excluded from
    training (requires_grad False).
    """

    def __init__(self, hidden_size: int = HIDDEN_SIZE, input_size: int = INPUT_SIZE,
                 alpha_shape: str = "synapse", positive_alpha: bool = False, frozen_input: bool = False):
        super().__init__()
        if alpha_shape not in ALPHA_SHAPES:
            raise ValueError(f"alpha_shape must be one of {ALPHA_SHAPES}, not {alpha_shape!r}")
        n = hidden_size
        bound = 1.0 / math.sqrt(n)
        self.w = nn.Parameter(torch.empty(n, n).uniform_(-bound, bound))
        shape = {"synapse": (n, n), "neuron": (n, 1), "scalar": (1, 1)}[alpha_shape]
        alpha = torch.empty(shape).uniform_(-0.01, 0.01)
        self.alpha = nn.Parameter(alpha.abs() if positive_alpha else alpha)
        self.etaet = nn.Parameter(torch.tensor([0.7]))
        self.DAmult = nn.Parameter(torch.tensor([1.0]))
        self.i2h = nn.Linear(input_size, n)
        self.h2DA = nn.Linear(n, 2)
        self.h2o = nn.Linear(n, 2)
        self.h2v = nn.Linear(n, 1)
        if frozen_input:
            with torch.no_grad():
                self.i2h.weight[n // 3:] = 0.0
                self.i2h.bias.zero_()
            self.i2h.requires_grad_(False)

    # Readable names for the file-format parameters.
    @property
    def hidden_size(self) -> int:
        return self.w.shape[0]

    @property
    def recurrent_weights(self) -> torch.Tensor:
        return self.w

    @property
    def plasticity(self) -> torch.Tensor:
        return self.alpha

    @property
    def eta(self) -> torch.Tensor:
        return self.etaet

    @property
    def modulation_gain(self) -> torch.Tensor:
        return self.DAmult

    @property
    def alpha_shape(self) -> str:
        rows, cols = self.alpha.shape
        return "synapse" if cols > 1 else ("neuron" if rows > 1 else "scalar")

    @property
    def output_direction(self) -> torch.Tensor:
        """w_out of the analyses: the direction in rate space that favours action 1."""
        return self.h2o.weight[1] - self.h2o.weight[0]

    def modulation(self, rates: torch.Tensor) -> torch.Tensor:
        """m(t) for rates of any leading shape (..., n) -> (...)."""
        d = torch.tanh(self.h2DA(rates))
        return self.modulation_gain * (d[..., 0] - d[..., 1])

    def effective_weights(self, plastic_weights: torch.Tensor) -> torch.Tensor:
        """W + alpha * P, one matrix per episode."""
        return torch.addcmul(self.recurrent_weights, self.plasticity, plastic_weights)

    def hebbian(self, post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        """tanh(r(t) r(t-1)^T): row = postsynaptic, column = presynaptic."""
        return torch.tanh(post.unsqueeze(2) * pre.unsqueeze(1))

    def forward(self, inputs: torch.Tensor, state: NetworkState):
        """`net(inputs, state)` is one time step: `step` (the nn.Module convention, so that
        `torch.func.functional_call` runs the rule over stacked parameters)."""
        return self.step(inputs, state)

    def step(self, inputs: torch.Tensor, state: NetworkState):
        """One time step: THE definition of the rule (the equations above), the only one in the package.
        Every runner calls it through `forward`, except the compiled kernels, which are verified
        specialisations of it and step aside when it changes (`transitive.engine.rule`).
        inputs (batch, 37) -> (logits (batch, 2), value (batch,), modulation m(t) (batch,), new state)."""
        recurrent = torch.bmm(self.effective_weights(state.plastic_weights), state.rates.unsqueeze(2)).squeeze(2)
        rates = torch.tanh(self.i2h(inputs) + recurrent)
        modulation = self.modulation(rates)
        plastic = torch.clamp(state.plastic_weights + modulation[:, None, None] * state.trace,
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        eta = self.eta
        trace = (1 - eta) * state.trace + eta * self.hebbian(rates, state.rates)
        return self.h2o(rates), self.h2v(rates).squeeze(-1), modulation, NetworkState(rates, trace, plastic)

    def clip_alpha_at_zero(self) -> None:
        """The 'positive alpha, clipped' variant: called after every optimizer step."""
        with torch.no_grad():
            self.alpha.clamp_(min=0.0)
