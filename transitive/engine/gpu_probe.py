"""A test run of the GPU kernels on a device before the engine relies on them, and the one line that names the
switch when they fail later.

Triton compiles the kernels at their first launch, so a Triton too old for the driver, a ptxas that does not
know the GPU or a kernel that needs more resources than the GPU has only shows there. `kernel_failure`, called
by `backends.choose` once per device and network size, runs the kernels' autograd Function on one episode of
one network (2 trials, forward with sampled and with forced responses, and backward), at the networks' n and
with the device's rows per block: every compile-time variant an episode launches is compiled and run. It
synchronises (so a fault of the kernels surfaces here) and checks that the results are finite. A failure is
returned as one line that names TRANSITIVE_KERNEL; the engine then runs the PyTorch runner (or, with
TRANSITIVE_KERNEL=triton, stops with that line). The test runs before any CUDA graph is captured: `choose` is
called when the engine first runs, eagerly (training's warm-up of the capture included).

`naming_the_switch` wraps the launches of every later episode: a failure there (other than running out of GPU
memory, which the PyTorch runner would not cure) becomes "the GPU kernels failed (...); set
TRANSITIVE_KERNEL=torch to use the PyTorch runner".
"""
from __future__ import annotations

import torch

from .gpu_failures import ADVICE, _summary, naming_the_switch  # noqa: F401 (naming_the_switch: importable here)

_results: dict = {}  # (device, n) -> None (the kernels ran) or the line saying why not


def _device_key(device) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def kernel_failure(device, n: int) -> str | None:
    """None when the GPU kernels compile, run and give finite results on `device` for networks of n neurons;
    else one line saying why (and naming TRANSITIVE_KERNEL). Run once per device and n (the answer is kept)."""
    key = (_device_key(device), n)
    if key not in _results:
        device = torch.device(key[0])
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return None  # cannot synchronise inside a capture: the launches still name the switch if they fail
        try:
            _test_run(device, n)
            _results[key] = None
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever stops the kernels stops them for every episode
            cause = error.__cause__ if isinstance(error, RuntimeError) and error.__cause__ else error
            _results[key] = f"the GPU kernels failed a test run on {key[0]} ({_summary(cause)}); {ADVICE}"
    return _results[key]


def _test_run(device: torch.device, n: int) -> None:
    """One network, one episode of 2 trials through `FusedTrials`: sampled responses with P kept at trial 1
    and the final trace (forward and backward), then forced responses (forward only)."""
    from .gpu_kernel import FusedTrials
    g = torch.Generator().manual_seed(0)

    def draw(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device)

    with torch.inference_mode(False), torch.enable_grad():
        trials = 2
        drive = draw(1, trials, 5, n, scale=0.5).requires_grad_()
        plastic = draw(1, n, n, scale=0.1).requires_grad_()
        weights = [draw(1, n, n, scale=n ** -0.5), draw(1, n, n, scale=0.05), torch.full((1,), 0.5, device=device),
                   torch.full((1,), 1.0, device=device), draw(1, 2, n, scale=n ** -0.5), draw(1, 2, scale=0.1)]
        weights = [w.requires_grad_() for w in weights]
        readout = [draw(1, 2, n, scale=n ** -0.5), draw(1, 2, scale=0.1)]
        uniform = torch.rand(1, trials, generator=g).to(device)
        rates, final, actions, snapshots, trace = FusedTrials.apply(drive, plastic, *weights, *readout, 1, None, uniform,
                                                                    (0,), True)
        loss = rates.square().sum() + final.square().mean() + trace.square().mean()
        gradients = torch.autograd.grad(loss, [drive, plastic, *weights])
        with torch.no_grad():
            forced = FusedTrials.apply(drive, plastic, *weights, *readout, 1, actions.flip(-1).contiguous(), None, (),
                                       False)[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    results = [rates, final, trace, snapshots.float(), forced, *gradients]
    if not all(bool(torch.isfinite(x).all()) for x in results) or not bool((rates.abs() <= 1).all()):
        raise ArithmeticError("non-finite or out-of-range results")
