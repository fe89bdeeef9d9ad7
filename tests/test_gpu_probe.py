"""The GPU kernels check themselves against the network's definition before the engine uses them
(transitive/engine/gpu_probe.py), and the line that names TRANSITIVE_KERNEL when a launch fails. On the CPU the
kernels run in Triton's interpreter; failures are injected by replacing one kernel with one that raises, wrong
results by a wrong coefficient in the forward or the backward pass."""
from __future__ import annotations

import pytest
from conftest import TRITON_MISSING
import torch

from transitive.engine import backends, gpu_probe, rule
from transitive.engine.backends import run_kernel
from transitive.engine.definition import run_definition
from transitive.model.network import PlasticNetwork

pytest.importorskip("triton", reason=TRITON_MISSING)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
N = 16


@pytest.fixture(autouse=True)
def fresh_results(monkeypatch):
    problem = backends.triton_available()
    if problem:
        pytest.skip(problem)
    monkeypatch.setattr(gpu_probe, "_results", {})


class _Failing:
    """A kernel whose launch raises, as a compile or launch error would."""

    def __init__(self, message: str):
        self.message = message

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            raise RuntimeError(self.message)
        return launch


def check():
    return gpu_probe.kernel_failure(DEVICE, N, run_kernel, run_definition)


def _fail(monkeypatch, kernel: str, message: str = "injected failure\nsecond line of a long compiler error"):
    from transitive.engine import gpu_kernel
    monkeypatch.setattr(gpu_kernel, kernel, _Failing(message))


def test_probe_passes_on_working_kernels_and_remembers():
    assert check() is None
    assert list(gpu_probe._results.values()) == [None]


@pytest.mark.parametrize("kernel", ["_forward_3", "_backward_2"])
def test_probe_reports_a_failing_kernel_in_one_line_naming_the_switch(monkeypatch, kernel):
    _fail(monkeypatch, kernel)
    problem = check()
    assert problem is not None and "\n" not in problem
    assert "test run" in problem and "RuntimeError: injected failure" in problem and "second line" not in problem
    assert "set TRANSITIVE_KERNEL=torch to use the PyTorch runner" in problem
    monkeypatch.undo()  # the kernel works again, but the answer for this device and n is kept
    monkeypatch.setattr(gpu_probe, "_results", {(gpu_probe._device_key(DEVICE), N): problem})
    assert check() == problem


def test_a_wrong_coefficient_in_the_forward_pass_is_found_and_named(monkeypatch):
    """eta 1% too large inside the kernels: the check names the largest difference, in one line, and the
    engine steps aside to the definition (here by a warning; TRANSITIVE_KERNEL=triton stops with the line)."""
    from transitive.engine import gpu_kernel
    real = gpu_kernel.FusedTrials.apply

    def wrong_eta(drive, plastic, w, alpha, eta, *rest):
        return real(drive, plastic, w, alpha, eta * 1.01, *rest)
    monkeypatch.setattr(gpu_kernel.FusedTrials, "apply", wrong_eta)
    problem = check()
    assert problem.startswith(f"the GPU kernels differ from the network's definition on {gpu_probe._device_key(DEVICE)} "
                              f"at n = {N} (largest difference: ") and "\n" not in problem
    assert "from float64 where" in problem and "is allowed" in problem


def test_a_wrong_coefficient_in_the_backward_pass_is_found_and_named(monkeypatch):
    """The forward pass right, the gradient of W 1% off: the check names that gradient."""
    from transitive.engine import gpu_kernel
    real = gpu_kernel.FusedTrials.backward

    def wrong_w_gradient(ctx, *grads):
        g_drive, g_plastic, g_w, *rest = real(ctx, *grads)
        return (g_drive, g_plastic, g_w * 1.01, *rest)
    monkeypatch.setattr(gpu_kernel.FusedTrials, "backward", staticmethod(wrong_w_gradient))
    problem = check()
    assert "largest difference: gradient of w," in problem


def test_the_drift_rule_is_the_tests_rule():
    import tolerance
    assert (tolerance.DRIFT_FACTOR, tolerance.DRIFT_FLOOR) == (gpu_probe.DRIFT_FACTOR, gpu_probe.DRIFT_FLOOR)


def test_probe_reports_non_finite_results(monkeypatch):
    from transitive.engine import gpu_kernel
    real = gpu_kernel.FusedTrials.apply

    def poisoned(*args):
        rates, *rest = real(*args)
        return (rates * float("nan"), *rest)
    monkeypatch.setattr(gpu_kernel.FusedTrials, "apply", poisoned)
    assert "non-finite" in check()


def test_choose_runs_the_probe_and_a_forced_triton_names_the_failure(monkeypatch):
    net = PlasticNetwork(hidden_size=N).to(DEVICE)
    monkeypatch.setenv(backends.ENV_SWITCH, "triton")
    assert backends.choose([net]) == "triton"
    assert (gpu_probe._device_key(DEVICE), N) in gpu_probe._results  # the test run happened
    monkeypatch.setattr(gpu_probe, "_results", {})
    _fail(monkeypatch, "_forward_1")
    with pytest.raises(RuntimeError, match=r"TRANSITIVE_KERNEL=triton: the GPU kernels failed a test run .*"
                                           r"injected failure.*set TRANSITIVE_KERNEL=torch"):
        backends.choose([net])


def test_automatic_choice_falls_back_to_the_pytorch_runner_with_one_line(monkeypatch):
    """On a GPU (simulated: `choose` reads the device and dtype of the networks' first parameter), a failed
    test run means the PyTorch runner and one warning naming the switch."""
    class OnCuda:
        hidden_size = N

        def parameters(self):
            yield type("Parameter", (), {"device": torch.device("cuda"), "dtype": torch.float32})()
    monkeypatch.delenv(backends.ENV_SWITCH, raising=False)
    monkeypatch.setattr(backends, "_kernel_problem", lambda nets, verified: None)  # the rule is the verified one
    monkeypatch.setattr(rule, "_told", set())
    asked = []

    def failing(device, n, *runners):
        asked.append((device.type, n))
        return f"the GPU kernels failed a test run on cuda:0 (RuntimeError: injected); {gpu_probe.ADVICE}"
    monkeypatch.setattr(gpu_probe, "kernel_failure", failing)
    with pytest.warns(RuntimeWarning, match="PyTorch episode runner on the GPU: the GPU kernels failed a test run"
                                            ".*set TRANSITIVE_KERNEL=torch") as caught:
        assert backends.choose([OnCuda()]) == "torch"
    assert len(caught) == 1 and asked == [("cuda", N)]


def test_a_later_launch_failure_names_the_switch(monkeypatch):
    """After the test run, a kernel that fails in an episode (forward or backward) stops with the same advice."""
    from transitive.engine import gpu_kernel
    n, k = N, 1
    drive = torch.randn(1, 2, 5, n, device=DEVICE, requires_grad=True)
    args = (drive, torch.zeros(1, n, n, device=DEVICE), torch.randn(k, n, n, device=DEVICE) * 0.2,
            torch.zeros(k, n, n, device=DEVICE), torch.full((k,), 0.5, device=DEVICE), torch.ones(k, device=DEVICE),
            torch.randn(k, 2, n, device=DEVICE), torch.zeros(k, 2, device=DEVICE), torch.randn(k, 2, n, device=DEVICE),
            torch.zeros(k, 2, device=DEVICE), 1, None, torch.rand(1, 2, device=DEVICE), (), True)
    _fail(monkeypatch, "_forward_2", "out of resources")
    with pytest.raises(RuntimeError, match=r"^the GPU kernels failed \(RuntimeError: out of resources\); "
                                           r"set TRANSITIVE_KERNEL=torch to use the PyTorch runner$"):
        gpu_kernel.FusedTrials.apply(*args)
    monkeypatch.undo()
    rates = gpu_kernel.FusedTrials.apply(*args)[0]
    _fail(monkeypatch, "_backward_4", "illegal address")
    with pytest.raises(RuntimeError, match=r"the GPU kernels failed \(RuntimeError: illegal address\); set "
                                           r"TRANSITIVE_KERNEL=torch"):
        rates.sum().backward()


def test_running_out_of_memory_is_not_blamed_on_the_kernels(monkeypatch):
    with pytest.raises(torch.cuda.OutOfMemoryError):
        with gpu_probe.naming_the_switch():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
