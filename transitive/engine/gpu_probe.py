"""The GPU kernels check themselves against the network's own definition before the engine relies on them,
once per device and network size; and the one line that names the switch when they fail later.

Triton compiles the kernels at their first launch, so a Triton too old for the driver, a ptxas that does not
know the GPU or a kernel that needs more resources than the GPU has only shows there; and a GPU computes
tanh, exp and sums otherwise than the CPU on which the kernels were verified. `kernel_failure`, called by
`backends.choose`, runs one small episode (one network of the networks' n with realistic magnitudes, a
carried state, one episode of 3 trials) through the kernels with sampled responses, P kept at two trials and
the final trace, forward and backward, then again with the responses forced (every compile-time variant an
episode launches), and compares the outputs, values, m(t), rates, P and trace after the episode and every
parameter's gradient with the definition run step by step on the same device, in float32 and in float64,
with the same responses. The drift rule (`within_drift`, the rule of the CUDA tests): each quantity may be
no further from the float64 run than DRIFT_FACTOR times the float32 definition is, or DRIFT_FLOOR. Any
mismatch (or a failure to compile or run) is one line naming the largest difference; the engine then runs
the definition (or, with TRANSITIVE_KERNEL=triton, stops with that line). The check runs before any CUDA
graph is captured: `choose` is called when the engine first runs, eagerly (training's warm-up of the
capture included).

`naming_the_switch` wraps the launches of every later episode: a failure there (other than running out of GPU
memory, which the definition would not cure) becomes "the GPU kernels failed (...); set
TRANSITIVE_KERNEL=torch to use the PyTorch runner".
"""
from __future__ import annotations

import contextlib
import copy
import functools

import torch

from .cpu_kernel import ENV_SWITCH
from .record import Episodes

ADVICE = f"set {ENV_SWITCH}=torch to use the PyTorch runner"
# The drift rule: the kernels may be 4x as far from float64 as the float32 definition (their sums are ordered
# otherwise, a GPU's tanh is 1e-6 off rather than 3e-7), and never need to be closer than DRIFT_FLOOR relative
# to max(1, scale) (5x a fresh full-size episode's float32 drift; docs/measurements/float32_drift_2026-12-01.md).
DRIFT_FACTOR, DRIFT_FLOOR = 4.0, 1e-4

_results: dict = {}  # (device, n) -> None (the kernels agree with the definition) or the line saying why not


def drift(a: torch.Tensor, exact: torch.Tensor, relative: bool = False) -> float:
    """|a - exact| relative to exact's scale: max(1, its largest entry), or (relative, for gradients, whose
    scale may be far from 1) its largest entry itself."""
    largest = exact.detach().abs().max().item() if exact.numel() else 0.0
    scale = (largest if largest > 0 else 1.0) if relative else max(1.0, largest)
    return (a.detach().double() - exact.detach().double()).abs().max().item() / scale


def within_drift(a, b, exact, relative: bool = False, floor: float = DRIFT_FLOOR) -> tuple[float, float]:
    """(a's drift from the float64 run `exact`, the drift allowed: DRIFT_FACTOR x that of the float32
    reference `b`, at least `floor`). a is within the rule when the first is at most the second."""
    return drift(a, exact, relative), max(floor, DRIFT_FACTOR * drift(b, exact, relative))


def _summary(error: BaseException) -> str:
    """The error's type and the first line of its message (Triton's compile errors run to pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"{type(error).__name__}: {first[:300]}" if first else type(error).__name__


@contextlib.contextmanager
def naming_the_switch():
    """Launches of the GPU kernels: an error becomes one RuntimeError that names TRANSITIVE_KERNEL."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - a compile, launch or resource error of Triton or the driver
        raise RuntimeError(f"the GPU kernels failed ({_summary(error)}); {ADVICE}") from error


def _device_key(device) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def kernel_failure(device, n: int, run_kernel, run_definition) -> str | None:
    """None when the GPU kernels compile, run and agree with the network's definition on `device` for
    networks of n neurons; else one line saying why. Checked once per device and n (the answer is kept).
    run_kernel, run_definition: the engine's runners (`backends.run_kernel`, `definition.run_definition`)."""
    key = (_device_key(device), n)
    if key not in _results:
        device = torch.device(key[0])
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return None  # cannot synchronise inside a capture: the launches still name the switch if they fail
        try:
            largest = _check(device, n, run_kernel, run_definition)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever stops the kernels stops them for every episode
            cause = error.__cause__ if isinstance(error, RuntimeError) and error.__cause__ else error
            _results[key] = f"the GPU kernels failed a test run on {key[0]} ({_summary(cause)}); {ADVICE}"
        else:
            _results[key] = None if largest is None else \
                f"the GPU kernels differ from the network's definition on {key[0]} at n = {n} ({largest})"
    return _results[key]


def _network_and_episodes(device: torch.device, n: int):
    """A network of n neurons with realistic magnitudes (strong plasticity and modulation, eta > 1, as in the
    published files), a carried state with P beyond the clip, and one episode of 3 trials: all drawn from a
    generator of their own (the caller's random state is left alone)."""
    from ..model.network import NetworkState, PlasticNetwork
    from ..model.task import draw_items, present, standard_schedule
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = PlasticNetwork(hidden_size=n)
    with torch.no_grad():
        net.alpha.copy_(torch.rand(net.alpha.shape, generator=g) * 0.1 - 0.05)
        net.eta.fill_(1.2)
        net.modulation_gain.fill_(1.6)
        net.h2DA.weight.mul_(4)
    batch = 1
    trials = present(draw_items(batch, 5, generator=g), standard_schedule(batch, 5, 2, 1, generator=g))
    state = (torch.rand(batch, n, generator=g) * 2 - 1, torch.rand(batch, n, n, generator=g) * 0.2 - 0.1,
             (torch.randn(batch, n, n, generator=g) * 40).clamp(-60, 60))
    uniform = torch.Generator(device).manual_seed(1)
    return net.to(device), trials.to(device), NetworkState(*(x.to(device) for x in state)), uniform


def _run(net, episodes, run, dtype=torch.float32):
    """One episode of `net` through `run` in `dtype`: its actions, and its outputs and the gradients of a sum
    of them all, by name."""
    if dtype != torch.float32:
        net = copy.deepcopy(net).to(dtype)
        state = episodes.state
        episodes = Episodes(episodes.pairs, episodes.stimuli.to(dtype), episodes.uniform, episodes.exponential,
                            type(state)(*(x.to(dtype) for x in (state.rates, state.trace, state.plastic_weights))),
                            episodes.actions)
    record = run([net], episodes, snapshot_trials=(0, 2))[0]
    final = record.final_state
    outputs = {"rates": record.rates, "outputs": record.logits, "values": record.values, "m(t)": record.modulation,
               "final P": final.plastic_weights, "final trace": final.trace}
    loss = sum(weight * x.square().sum() for weight, x in zip((1, 2, 3, 4, 1e-3, 5), outputs.values()))
    names = [name for name, p in net.named_parameters() if p.requires_grad]
    gradients = torch.autograd.grad(loss, [p for p in net.parameters() if p.requires_grad])
    outputs.update({f"gradient of {name}": g for name, g in zip(names, gradients)})
    outputs.update({f"P after trial {t}": s[:, -1] for t, s in record.snapshots.items()})
    return record.actions, outputs


def _check(device: torch.device, n: int, run_kernel, run_definition) -> str | None:
    """The kernels against the definition on one episode (see the module docstring): None when every
    quantity is within the drift rule, else the largest difference, in words."""
    net, trials, state, uniform = _network_and_episodes(device, n)
    kernels = functools.partial(run_kernel, "triton")
    definition = functools.partial(run_definition, compile_mode="eager")
    with torch.inference_mode(False), torch.enable_grad():
        actions, kernel = _run(net, Episodes.draw([trials], [uniform], [state], device=device), kernels)
        forced = Episodes.draw([trials], states=[state], actions=[actions])
        _, reference = _run(net, forced, definition)
        _, exact = _run(net, forced, definition, torch.float64)
        with torch.no_grad():  # the kernels' variant with the responses given
            kernel["rates, responses forced"] = kernels([net], forced)[0].rates
        reference["rates, responses forced"], exact["rates, responses forced"] = reference["rates"], exact["rates"]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    worst, largest = 0.0, None
    for name, value in kernel.items():
        if not bool(torch.isfinite(value).all()):
            return f"non-finite {name}"
        floor = 2e-3 if name.startswith("P after") else DRIFT_FLOOR  # the kept P is float16
        gap, allowed = within_drift(value.float(), reference[name].float(), exact[name], name.startswith("gradient"),
                                    floor)
        if not gap <= allowed and gap / allowed > worst:
            worst, largest = gap / allowed, f"largest difference: {name}, {gap:.2g} from float64 where {allowed:.2g} " \
                                            f"is allowed"
    return largest
