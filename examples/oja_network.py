"""A changed plasticity rule, as a researcher would write it: Oja's rule in place of the plain Hebbian term.

The published eligibility trace accumulates tanh(r(t) r(t-1)^T). Oja's rule subtracts a decay that keeps
the plastic weights bounded without the clip: post * (pre - post * P). Everything else is the published
step. Train and evaluate it with the package's commands:

    transitive train --network examples/oja_network.py:OjaNetwork --out runs/oja/net.dat
    transitive eval runs/oja/net.dat --network examples/oja_network.py:OjaNetwork
    transitive figures runs/oja/net.dat --network examples/oja_network.py:OjaNetwork --out runs/oja/figures

The engine sees that `step` is not the rule its kernels were verified against, says so in one line, and
runs this definition step by step (docs/extending.md).
"""
import torch

from transitive import NetworkState, PlasticNetwork
from transitive.model.network import PLASTIC_CLIP


class OjaNetwork(PlasticNetwork):
    def step(self, inputs: torch.Tensor, state: NetworkState):
        recurrent = torch.bmm(self.effective_weights(state.plastic_weights), state.rates.unsqueeze(2)).squeeze(2)
        rates = torch.tanh(self.i2h(inputs) + recurrent)
        modulation = self.modulation(rates)
        plastic = torch.clamp(state.plastic_weights + modulation[:, None, None] * state.trace,
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        post, pre = rates.unsqueeze(2), state.rates.unsqueeze(1)
        oja = post * (pre - post * state.plastic_weights)  # Oja's term: Hebbian growth minus a decay of P
        trace = (1 - self.eta) * state.trace + self.eta * oja
        return self.h2o(rates), self.h2v(rates).squeeze(-1), modulation, NetworkState(rates, trace, plastic)
