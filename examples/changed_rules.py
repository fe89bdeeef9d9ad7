"""Two small changes of the published rule, used to time the compiled definition (`transitive bench --network
examples/changed_rules.py:HalvedTraceNetwork`; docs/measurements/compiled_definition_cpu_2026-12-05.md), and
the changed rules tests/test_rule.py and tests/test_compiled.py check the engine with (they load this file)."""
from __future__ import annotations

import torch
from torch import nn

from transitive import NetworkState, PlasticNetwork


class HalvedTraceNetwork(PlasticNetwork):
    """The eligibility trace halved after every step."""

    def step(self, inputs, state):
        logits, value, modulation, new = super().step(inputs, state)
        return logits, value, modulation, NetworkState(new.rates, new.trace * 0.5, new.plastic_weights)


class DecayNetwork(PlasticNetwork):
    """A parameter of its own: P decays by a learned factor at every step."""

    def __init__(self, **options):
        super().__init__(**options)
        self.plastic_decay = nn.Parameter(torch.tensor(0.9))

    def step(self, inputs, state):
        logits, value, modulation, new = super().step(inputs, state)
        return logits, value, modulation, NetworkState(new.rates, new.trace, new.plastic_weights * self.plastic_decay)
