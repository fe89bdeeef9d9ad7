"""The network's own definition compiled (transitive/engine/compiled.py): equal to the eager definition
(outputs, m(t), P, the loss and every gradient), compiled once per class and shape and never again from
episode to episode, one line when it compiles, and the eager definition when it cannot be compiled.

The compile itself runs once for this file, at a small size (16 neurons, batch 3): a few tens of seconds on
an idle machine."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters  # the test's look at dynamo's own counts (the package uses none)

from transitive import PlasticNetwork, run_episode
from transitive.engine import backends, compiled, rule
from transitive.model.task import draw_items, present, standard_schedule
from transitive.model.variants import network_class
from transitive.training.loss import a2c_loss

NEURONS, BATCH = 16, 3


# A changed rule as a researcher writes it (the trace halved after every step), from examples/changed_rules.py.
HalvedTraceNetwork = network_class(f"{Path(__file__).resolve().parents[1] / 'examples' / 'changed_rules.py'}"
                                   ":HalvedTraceNetwork")


class Untraceable(PlasticNetwork):
    """A rule the compiler cannot take whole: it reads a tensor as a Python number to decide."""

    def step(self, inputs, state):
        logits, value, modulation, new = super().step(inputs, state)
        if modulation.abs().max().item() > 1e9:
            raise RuntimeError("never")
        return logits, value, modulation, new


def network(cls=HalvedTraceNetwork, seed=0):
    torch.manual_seed(seed)
    net = cls(hidden_size=NEURONS)
    with torch.no_grad():
        net.alpha.mul_(20)  # plasticity that matters at this size
        net.modulation_gain.fill_(2.0)
    return net


def episode(net, backend, items=4, seed=1):
    """One training episode: the record, the loss and every gradient."""
    generator = torch.Generator().manual_seed(seed)
    trials = present(draw_items(BATCH, items, generator=generator),
                     standard_schedule(BATCH, items, 3, 2, generator=generator))
    net.zero_grad()
    record = run_episode(net, trials, generator=torch.Generator().manual_seed(seed + 100), backend=backend)
    loss = a2c_loss(record)
    loss.backward()
    return record, loss.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    monkeypatch.setattr(rule, "_told", set())
    monkeypatch.delenv(backends.ENV_SWITCH, raising=False)


class _Logged(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def first_compile():
    """The compile of this file (once): the first compiled episode, with the lines it said (warnings, and
    what torch's own loggers passed on)."""
    rule._told.clear()
    logged = _Logged()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("torch")]
    for logger in loggers:
        logger.addHandler(logged)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = episode(network(), "compiled")
    finally:
        for logger in loggers:
            logger.removeHandler(logged)
    return result, [str(w.message) for w in caught] + logged.messages


def test_compiled_equals_eager_outputs_p_loss_and_every_gradient(first_compile):
    (fast, fast_loss, fast_grads), lines = first_compile
    slow, slow_loss, slow_grads = episode(network(), "eager")
    for name in ("logits", "values", "modulation", "rates"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), rtol=0, atol=2e-6, msg=name)
    assert torch.equal(fast.actions, slow.actions) and torch.equal(fast.correct, slow.correct)
    for name in ("plastic_weights", "trace"):
        torch.testing.assert_close(getattr(fast.final_state, name), getattr(slow.final_state, name), rtol=0,
                                   atol=1e-5, msg=name)
    assert fast.final_state.plastic_weights.abs().max() > 0.1  # P did change
    torch.testing.assert_close(fast_loss, slow_loss, rtol=1e-5, atol=1e-6)
    for name, grad in slow_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    said = [line for line in lines if "compiled for" in line]
    assert len(said) == 1 and "\n" not in said[0]
    assert not [line for line in lines if "checkpoint" in line]  # torch's caution about the policy: not said
    assert said[0].startswith("HalvedTraceNetwork: ") and f"batch {BATCH} x {NEURONS} neurons on cpu" in said[0]


def test_the_backward_pass_keeps_tanh_and_clamp_and_recomputes_the_rest():
    """The compiled trial's checkpoint policy: what tanh and clamp return is kept for the backward pass
    (the Hebbian term and P after each step), every other operation is recomputed there."""
    from torch.utils.checkpoint import CheckpointPolicy
    aten = torch.ops.aten
    for kept in (aten.tanh.default, aten.clamp.default, aten.clamp.Tensor):
        assert compiled._keep_saved_operations(None, kept) == CheckpointPolicy.MUST_SAVE
    for recomputed in (aten.mul.Tensor, aten.add.Tensor, aten.bmm.default, aten.exp.default):
        assert compiled._keep_saved_operations(None, recomputed) == CheckpointPolicy.PREFER_RECOMPUTE


def test_no_recompilation_from_episode_to_episode(first_compile):
    """Other list lengths (so other numbers of trials), another network of the class, another seed: the
    compiled trial is reused, dynamo neither compiles a new graph nor recompiles a frame."""
    before = (dict(counters["stats"]), dict(counters["frames"]), sum(counters["recompiles"].values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing more is said either
        for k, items in enumerate((5, 7, 4)):
            episode(network(seed=k), "compiled", items=items, seed=k)
    after = (dict(counters["stats"]), dict(counters["frames"]), sum(counters["recompiles"].values()))
    assert after[0].get("unique_graphs") == before[0].get("unique_graphs")
    assert after[2] == before[2]
    assert after[0].get("calls_captured") == before[0].get("calls_captured")


def test_a_rule_the_compiler_cannot_take_runs_eagerly_with_one_line(monkeypatch):
    monkeypatch.setattr(compiled, "COMPILE_AFTER_SECONDS", 0.0)  # auto: compile at once
    with pytest.warns(RuntimeWarning, match=r"Untraceable: the network's own definition could not be compiled"
                                            r".*running it eagerly") as caught:
        fast, loss, grads = episode(network(Untraceable), None)
    assert len([w for w in caught if "could not be compiled" in str(w.message)]) == 1
    assert all("\n" not in str(w.message) for w in caught)
    slow, slow_loss, slow_grads = episode(network(Untraceable), "eager")
    assert torch.equal(fast.rates, slow.rates) and torch.equal(loss, slow_loss)
    with pytest.raises(compiled.CompileError, match="TRANSITIVE_KERNEL=compiled: Untraceable"):
        episode(network(Untraceable), "compiled", items=5)  # forced, on a new key: an error, not a fallback


def test_when_it_compiles(monkeypatch):
    """auto: only once a key's eager episodes have taken COMPILE_AFTER_SECONDS; eager: never; compiled: at
    once. (The compile is replaced by a stand-in here; the kernels' network is never compiled.)"""
    made = []
    monkeypatch.setattr(compiled, "_compile", lambda key, *args: made.append(key) or (None, 0.0))
    monkeypatch.setattr(compiled, "_entries", {})
    monkeypatch.setattr(compiled, "COMPILE_AFTER_SECONDS", 1e9)
    net = network(seed=3)
    episode(net, None)
    episode(net, "eager")
    assert made == []
    (entry,) = compiled._entries.values()
    assert entry.eager_seconds > 0  # the eager time counts towards the compile
    monkeypatch.setattr(compiled, "COMPILE_AFTER_SECONDS", entry.eager_seconds)
    episode(net, "eager")
    assert made == []
    episode(net, None)
    assert len(made) == 1 and made[0].network is HalvedTraceNetwork and made[0].batch == BATCH and made[0].gradients
    compiled._entries.clear()
    episode(net, "compiled", items=5)
    assert len(made) == 2
    made.clear()
    torch.manual_seed(0)
    published = PlasticNetwork()
    episode(published, None)  # the verified rule: the kernel, nothing compiled
    assert made == [] and backends.choose([published]) == "cpp"


def test_bench_of_a_network_checks_its_spec_before_any_work():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "transitive", "bench", "--network", "missing.py:Net", "--episodes",
                           "1"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "not found" in done.stderr


def test_a_pause_restarts_the_count(monkeypatch):
    """Eager episodes of one shape count towards a compile only while they come one after the other: the
    same small shape met now and then (as in a test suite) never adds up to one."""
    made = []
    monkeypatch.setattr(compiled, "_compile", lambda key, *args: made.append(key) or (None, 0.0))
    monkeypatch.setattr(compiled, "_entries", {})
    net = network(seed=4)
    monkeypatch.setattr(compiled, "COMPILE_AFTER_SECONDS", 1e9)
    episode(net, None)
    (entry,) = compiled._entries.values()
    entry.last_end -= 1000.0  # as if the last one ran long ago
    episode(net, None)
    assert entry.eager_seconds == entry.last_seconds  # counted from 0 again: only this episode
    episode(net, None)  # right after: the count goes on
    assert entry.eager_seconds > entry.last_seconds
    monkeypatch.setattr(compiled, "COMPILE_AFTER_SECONDS", entry.eager_seconds)
    episode(net, None)
    assert len(made) == 1  # due, and not restarted
