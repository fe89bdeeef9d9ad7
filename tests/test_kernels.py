"""The compiled trial kernel (transitive/engine/cpu_kernel.py) against the plain step-by-step runner and the PyTorch path.

Whole episodes with forced actions: outputs, m(t), P, the final state, the loss and every parameter gradient
must agree within float32 rounding of each quantity's scale (KERNEL_UNITS, tests/tolerance.py), including P
clipped at +-50, a carried state (blank steps, large P) and the per-neuron / scalar plasticity variants. Small batches and 8 trials keep
every test to a few seconds; the kernel is compiled once (cached on disk, about 5 s the very first time).
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from conftest import reference_skip_reason, run_reference
from tolerance import assert_float32_close

from transitive.engine import backends, cpu_kernel, rule
from transitive.engine.episode import run_episode
from transitive.training.loss import a2c_loss
from transitive.model.network import PLASTIC_CLIP, NetworkState, PlasticNetwork
from transitive.model.task import Trials, draw_items, present, standard_schedule

BATCH, LEARNING, TESTS = 4, 5, 3
STEPS = 4 * (LEARNING + TESTS)
PAPER_NET = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_net_active.dat"


@pytest.fixture(scope="module")
def kernel():
    try:
        cpu_kernel.library()
    except RuntimeError as error:
        pytest.skip(f"the trial kernel cannot be built here: {error}")



def make_net(seed: int = 0, gain: float | None = None, alpha_shape: str = "synapse") -> PlasticNetwork:
    torch.manual_seed(seed)
    net = PlasticNetwork(alpha_shape=alpha_shape)
    if gain is not None:  # a larger m(t) makes P reach the clip within a few trials
        with torch.no_grad():
            net.modulation_gain.fill_(gain)
    return net


def make_episode(seed: int = 1, batch: int = BATCH):
    torch.manual_seed(seed)
    trials = present(draw_items(batch, 8), standard_schedule(batch, 8, LEARNING, TESTS))
    return trials, torch.randint(0, 2, (batch, STEPS))


def large_state(batch: int = BATCH, n: int = 200, seed: int = 2) -> NetworkState:
    """A carried state with P beyond the clip (the blank steps clip it) and a non-zero trace."""
    g = torch.Generator().manual_seed(seed)
    plastic = (torch.randn(batch, n, n, generator=g) * 40).clamp(-60, 60)
    return NetworkState(torch.rand(batch, n, generator=g) * 2 - 1, torch.rand(batch, n, n, generator=g) * 0.2 - 0.1,
                        plastic)


def run(monkeypatch, path: str, net, trials, actions=None, state=None, loss_extra=None, **kwargs):
    """One episode with `path` ('cpp', 'torch' or 'plain'), its loss backpropagated; returns record, loss, grads."""
    monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "torch" if path == "plain" else path)
    runner = run_reference if path == "plain" else run_episode
    net.zero_grad()
    record = runner(net, trials, state=state, actions=actions, **kwargs)
    loss = a2c_loss(record)
    if loss_extra is not None:
        loss = loss + loss_extra(record)
    loss.backward()
    return record, loss.detach(), {k: p.grad.clone() for k, p in net.named_parameters()}


# The kernel orders every sum of an episode otherwise than PyTorch does (fused trial steps, its own reductions
# over 200 neurons and the batch), through episodes of up to 30 trials where P reaches the clip: results may
# differ by 1024 float32 units of each quantity's scale (1.2e-4 of it; rates: of 1, P: of 50, a gradient: of its
# largest entry). A wrong coefficient moves them by percents.
KERNEL_UNITS = 1024


def assert_records_close(a, b, units: float = KERNEL_UNITS):
    for name in ("pairs", "inputs", "actions", "rewards", "correct"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("rates", "logits", "values", "modulation"):
        assert_float32_close(getattr(a, name), getattr(b, name), name, units)
    for name in ("rates", "trace", "plastic_weights"):
        assert_float32_close(getattr(a.final_state, name), getattr(b.final_state, name), f"final {name}", units)


def assert_grads_close(a: dict, b: dict, units: float = KERNEL_UNITS):
    for name in b:
        assert_float32_close(a[name], b[name], f"gradient of {name}", units)


def assert_runs_close(a_run, b_run):
    """Records, loss and every parameter gradient of two runs of the same episode agree."""
    (a, loss_a, grads_a), (b, loss_b, grads_b) = a_run, b_run
    assert_records_close(a, b)
    assert_float32_close(loss_a, loss_b, "loss", KERNEL_UNITS)
    assert_grads_close(grads_a, grads_b)


def clipped_fraction(record) -> float:
    return (record.final_state.plastic_weights.abs() == PLASTIC_CLIP).float().mean().item()


# ---------------------------------------------------------------------------------------------------------
def test_fresh_state_matches_plain(kernel, monkeypatch):
    net = make_net(gain=20.0)
    trials, actions = make_episode()
    a, loss_a, grads_a = run(monkeypatch, "cpp", net, trials, actions)
    b, loss_b, grads_b = run(monkeypatch, "plain", net, trials, actions)
    assert_runs_close((a, loss_a, grads_a), (b, loss_b, grads_b))


def test_carried_state_with_clipping_matches_plain(kernel, monkeypatch):
    """Blank steps with a carried state whose P lies beyond +-50, and P at the clip throughout."""
    net = make_net(gain=5.0)
    trials, actions = make_episode()
    state = large_state()
    a, loss_a, grads_a = run(monkeypatch, "cpp", net, trials, actions, state=state)
    b, loss_b, grads_b = run(monkeypatch, "plain", net, trials, actions, state=state)
    assert clipped_fraction(b) > 0.01  # the clip and its zero gradient are exercised
    # sums over P of about 50 (the gradient on alpha): absolute tolerance relative to the largest entry
    assert_runs_close((a, loss_a, grads_a), (b, loss_b, grads_b))


def test_state_carried_from_an_earlier_episode_matches_plain(kernel, monkeypatch):
    """The continual regime: the state of an episode run by the same runner, detached, starts the next one."""
    net = make_net(gain=20.0)
    first, first_actions = make_episode(seed=3)
    trials, actions = make_episode(seed=4)
    records = {}
    for path in ("cpp", "plain"):
        monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "torch" if path == "plain" else path)
        with torch.no_grad():
            runner = run_reference if path == "plain" else run_episode
            state = runner(net, first, actions=first_actions).final_state
        records[path] = run(monkeypatch, path, net, trials, actions, state=state.detach())
    (a, loss_a, grads_a), (b, loss_b, grads_b) = records["cpp"], records["plain"]
    assert_runs_close((a, loss_a, grads_a), (b, loss_b, grads_b))


def test_matches_the_pytorch_path_including_sampling(kernel, monkeypatch):
    """Same seed, same sampled actions; and the same numbers as the PyTorch fallback."""
    net = make_net(gain=20.0)
    trials, _ = make_episode()
    state = large_state(seed=5)
    results = {}
    for path in ("cpp", "torch"):
        torch.manual_seed(7)
        results[path] = run(monkeypatch, path, net, trials, state=state)
    (a, loss_a, grads_a), (b, loss_b, grads_b) = results["cpp"], results["torch"]
    # records include identical actions, rewards and correctness
    assert_runs_close((a, loss_a, grads_a), (b, loss_b, grads_b))


def test_gradient_through_the_final_state(kernel, monkeypatch):
    """The final trace and rates are differentiable as with the plain runner."""
    net = make_net(gain=20.0)
    trials, actions = make_episode()
    weights = torch.linspace(-1, 1, 200)

    def extra(record):
        return (record.final_state.trace * weights).sum() * 1e-2 + record.final_state.rates.sum() * 1e-2

    a, loss_a, grads_a = run(monkeypatch, "cpp", net, trials, actions, loss_extra=extra)
    b, loss_b, grads_b = run(monkeypatch, "plain", net, trials, actions, loss_extra=extra)
    assert_float32_close(loss_a, loss_b, "loss", KERNEL_UNITS)
    assert_grads_close(grads_a, grads_b)


@pytest.mark.parametrize("alpha_shape", ["neuron", "scalar"])
def test_alpha_variants_match_plain(kernel, monkeypatch, alpha_shape):
    net = make_net(gain=20.0, alpha_shape=alpha_shape)
    trials, actions = make_episode()
    a, _, grads_a = run(monkeypatch, "cpp", net, trials, actions)
    b, _, grads_b = run(monkeypatch, "plain", net, trials, actions)
    assert_records_close(a, b)
    assert_grads_close(grads_a, grads_b)


def test_no_grad_run_and_snapshots(kernel, monkeypatch):
    """Evaluation: no gradients, a carried state, P after each step of chosen trials (float16)."""
    net = make_net(gain=20.0)
    trials, actions = make_episode()
    state = large_state(seed=6)
    records = {}
    for path, runner in (("cpp", run_episode), ("torch", run_reference)):
        monkeypatch.setenv(cpu_kernel.ENV_SWITCH, path)
        with torch.no_grad():
            records[path] = runner(net, trials, state=state, actions=actions, snapshot_trials=(0, 5, 7))
    a, b = records["cpp"], records["torch"]
    assert_records_close(a, b)
    assert set(a.snapshots) == {0, 5, 7}
    for t, snapshot in a.snapshots.items():
        assert snapshot.dtype == torch.float16 and snapshot.shape == (BATCH, 4, 200, 200)
        torch.testing.assert_close(snapshot.float(), b.snapshots[t].float(), rtol=2e-3, atol=1e-3)


def test_close_to_float64(kernel, monkeypatch):
    """Against the plain runner in float64: the kernel is within float32 tolerance of the exact result."""
    net = make_net(gain=20.0)
    trials, actions = make_episode()
    _, loss_a, grads_a = run(monkeypatch, "cpp", net, trials, actions)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        exact = run(monkeypatch, "plain", copy.deepcopy(net).double(),
                    Trials(trials.pairs, trials.stimuli.double()), actions)
    finally:
        torch.set_default_dtype(default)
    assert_float32_close(loss_a.double(), exact[1], "loss", KERNEL_UNITS)
    assert_grads_close({k: g.double() for k, g in grads_a.items()}, exact[2])


def test_threads_do_not_change_results(kernel, monkeypatch):
    """Batch elements spread over threads: the same rates, P and actions, and reproducible gradients."""
    net = make_net(gain=20.0)
    trials, actions = make_episode(batch=5)
    state = large_state(batch=5, seed=8)
    one = run(monkeypatch, "cpp", net, trials, actions, state=state)
    torch.set_num_threads(2)
    two = run(monkeypatch, "cpp", net, trials, actions, state=state)
    again = run(monkeypatch, "cpp", net, trials, actions, state=state)
    assert_records_close(two[0], one[0], units=0)
    assert_grads_close(two[2], again[2], units=0)  # whichever thread takes which batch elements
    assert_grads_close(two[2], one[2], units=256)  # torch's own sums depend on the thread count


@pytest.mark.skipif(not PAPER_NET.exists(), reason=reference_skip_reason("paper_net_active.dat"))
def test_published_network_matches_plain(kernel, monkeypatch):
    net = PlasticNetwork()
    net.load_state_dict(torch.load(PAPER_NET, map_location="cpu", weights_only=True))
    trials, actions = make_episode()
    a, loss_a, grads_a = run(monkeypatch, "cpp", net, trials, actions)
    b, loss_b, grads_b = run(monkeypatch, "plain", net, trials, actions)
    assert_runs_close((a, loss_a, grads_a), (b, loss_b, grads_b))


# ---------------------------------------------------------------------------------------------------------
def test_switch(monkeypatch):
    net = PlasticNetwork()
    monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "torch")
    assert backends.choose([net]) == "torch"
    monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "fast")
    with pytest.raises(ValueError):
        backends.choose([net])
    monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "cpp")
    with pytest.raises(RuntimeError):
        backends.choose([PlasticNetwork(hidden_size=20)])  # not a multiple of 8
    monkeypatch.delenv(cpu_kernel.ENV_SWITCH)
    assert backends.choose([copy.deepcopy(net).double()]) == "torch"  # float64: the PyTorch path, silently


def test_build_failure_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(cpu_kernel, "_library", None)
    monkeypatch.setattr(cpu_kernel, "_library_error", "RuntimeError: simulated build failure")
    monkeypatch.setattr(rule, "_told", set())
    monkeypatch.delenv(cpu_kernel.ENV_SWITCH, raising=False)
    net = PlasticNetwork()
    with pytest.warns(RuntimeWarning, match="simulated build failure"):
        assert backends.choose([net]) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backends.choose([net]) == "torch"  # warned once only
        trials, actions = make_episode(batch=2)
        record = run_episode(net, trials, actions=actions)  # runs on the PyTorch path
    assert record.rates.shape == (2, STEPS, 200)
    monkeypatch.setenv(cpu_kernel.ENV_SWITCH, "cpp")
    with pytest.raises(RuntimeError, match="simulated"):
        backends.choose([net])


def test_source_is_a_package_file_and_keys_the_cache():
    """The C++ source ships as transitive/engine/csrc/plastic_trial.cpp; another source text is another build."""
    path = Path(cpu_kernel.__file__).parent / cpu_kernel.SOURCE_FILE
    assert path.name == "plastic_trial.cpp" and path.parent.name == "csrc"
    text = cpu_kernel.source_text()
    assert text == path.read_text() and "plastic_trial_forward" in text and "plastic_trial_backward" in text
    key = cpu_kernel.cache_key(text, "g++", ["-O3"], None)
    assert key == cpu_kernel.cache_key(text, "g++", ["-O3"], None)
    assert key != cpu_kernel.cache_key(text + "\n// changed", "g++", ["-O3"], None)
    assert key != cpu_kernel.cache_key(text, "g++", ["-O2"], None)


def test_short_tanh_is_the_full_one_bit_for_bit(kernel):
    """Rates lie within [-1, 1], and so do their products: for those the kernel computes only the first form of
    its rational tanh. On a dense sample of every float in [-1, 1] (a million bit patterns, both signs, with
    0, subnormals and 1), times a few rates, the short form must give exactly the full form's bits, and both
    stay within 2 ulp of torch.tanh."""
    library = cpu_kernel.library()
    patterns = torch.arange(0, 0x3F800001, 1021, dtype=torch.int64)
    patterns = torch.cat([patterns, torch.tensor([0, 1, 2, 0x007FFFFF, 0x00800000, 0x3F7FFFFF, 0x3F800000])])
    positive = patterns.to(torch.int32).view(torch.float32)
    values = torch.cat([positive, -positive])
    values = torch.cat([values, torch.zeros((-len(values)) % 8)]).contiguous()  # whole rows of 8
    assert values.abs().max() == 1.0
    for post in (1.0, -1.0, 0.73, -0.0625, 0.999999):
        short, full = torch.empty_like(values), torch.empty_like(values)
        library.tanh_outer_row_for_tests(len(values), post, values.data_ptr(), 1, short.data_ptr())
        library.tanh_outer_row_for_tests(len(values), post, values.data_ptr(), 0, full.data_ptr())
        assert torch.equal(short.view(torch.int32), full.view(torch.int32)), post
        exact = torch.tanh((post * values.double()).float().double()).float()
        ulp = torch.finfo(torch.float32).eps * exact.abs().clamp_min(torch.finfo(torch.float32).tiny)
        assert ((full - exact).abs() <= 2 * ulp + 1e-45).all(), post
