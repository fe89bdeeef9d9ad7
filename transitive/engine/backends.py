"""The backends of the episode engine, and the choice between them (used by `transitive.engine.members`).

- "torch": the networks' own definition, trial by trial (`transitive.engine.definition`), compiled with
  torch.compile where it pays (`transitive.engine.compiled`): any rule, any device; the path of a changed
  rule and the fallback of the other two. TRANSITIVE_KERNEL=eager runs it never compiled, =compiled always.
- "cpp": the compiled CPU kernel of `transitive.engine.cpu_kernel` (one call per member and trial);
- "triton": the GPU kernels of `transitive.engine.gpu_kernel` (4 launches forward and 4 backward per trial for
  all members at once).
The two kernels are specialisations of the published rule: each records the fingerprint of the definition
it was verified against (`transitive.engine.rule`) and runs only for networks whose rule has it.

`choose` picks the fastest one that can run: "triton" on a CUDA device when Triton is installed, "cpp" on the
CPU when the kernel can be built, else "torch" (with one warning line saying why). TRANSITIVE_KERNEL=torch,
eager, compiled, cpp or triton forces one (an error when it cannot run). All are tested against the plain step-by-step
runner (`transitive.engine.episode.run_episode_plain`).

The kernels run all trials of K members x a batch of episodes from the same inputs and return the same
things:

    drive    (K, B, T, 4, n)  feedforward drive of each step: x0 (stimulus), x1 (go), x2 (without the
                              feedback), x3 (delay)
    feedback (K, B, T, 2, n)  x2 had the response been action 0, had it been action 1 (reward and action
                              inputs included)
    plastic  (K, B, n, n)     P at the start of the first trial
    forced   (K, B, T) long   the responses, or None to sample them: action 1 when uniform < p(action 1)
    uniform  (K, B, T)
    -> rates (K, B, T, 4, n), responses (K, B, T), P after the last trial, the trace after it, and
       {trial: (K, B, 4, n, n) float16} P after each step of the snapshot trials
"""
from __future__ import annotations

import os

import torch

from . import cpu_kernel, gpu_probe
from . import rule
from .stacked import StackedParameters, split_members

BACKENDS = ("torch", "cpp", "triton")
DEFINITION = ("torch", "eager", "compiled")  # the definition: compiled when it pays, never, always
ENV_SWITCH = cpu_kernel.ENV_SWITCH  # TRANSITIVE_KERNEL: torch, eager, compiled, cpp, triton, or unset (auto)

_triton_error: str | None = None
_warned: set = set()


def _gpu_kernel():
    """The Triton kernels' module (imported on first use: importing Triton takes a moment)."""
    from . import gpu_kernel
    return gpu_kernel


def triton_available() -> str | None:
    """None when the Triton kernels can be used, else why not."""
    global _triton_error
    if _triton_error is None:
        try:
            _gpu_kernel()
            _triton_error = ""
        except Exception as error:  # noqa: BLE001 - an ImportError, or a broken install
            _triton_error = f"Triton is not usable ({type(error).__name__}: {error})"
    return _triton_error or None


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        rule.say_once(message)


def requested(backend: str | None = None) -> str:
    """The backend asked for: `backend` if given, else TRANSITIVE_KERNEL, else "auto"."""
    value = (backend if backend is not None else os.environ.get(ENV_SWITCH, "auto")).strip().lower() or "auto"
    if value not in ("auto", *BACKENDS, *DEFINITION):
        raise ValueError(f"{ENV_SWITCH} must be one of {', '.join(dict.fromkeys(BACKENDS + DEFINITION))} or unset, "
                         f"not {value!r}")
    return value


def _kernel_problem(nets, verified: dict) -> str | None:
    """Why a kernel verified against `verified` does not implement these networks' rule (or None)."""
    for net in nets:
        problem = rule.kernel_mismatch(net, verified)
        if problem:
            return problem
    return None


def choose(nets, backend: str | None = None) -> str:
    """The backend for these networks (one class, one device and dtype): a kernel only where it runs and
    implements their rule; else "torch", their own definition (with one line saying why, once). A backend
    asked for (`backend`, or TRANSITIVE_KERNEL) that cannot run is an error."""
    choice = requested(backend)
    weights = next(nets[0].parameters())
    device, float32 = weights.device, weights.dtype == torch.float32
    if choice in DEFINITION:
        return "torch"
    if choice == "triton" or (choice == "auto" and device.type == "cuda"):
        problem = triton_available()
        if problem is None and not float32:
            problem = "the GPU kernels need float32 parameters"
        if problem is None and device.type != "cuda" and not _gpu_kernel().interpreted():
            problem = "the GPU kernels run on CUDA devices (or on the CPU under TRITON_INTERPRET=1, for tests)"
        rule_problem = None if problem else _kernel_problem(nets, _gpu_kernel().VERIFIED_RULE)
        if problem is None and rule_problem is None:
            problem = gpu_probe.kernel_failure(device, nets[0].hidden_size)  # a test run, once per device and n
            if problem is None:
                return "triton"
        if choice == "triton":
            raise RuntimeError(f"{ENV_SWITCH}=triton: {problem or rule_problem}")
        if rule_problem:
            rule.tell_once(rule_problem)
        else:
            _warn_once(f"using the slower PyTorch episode runner on the GPU: {problem}")
        return "torch"
    # the CPU: the compiled kernel where it can run
    suitable = device.type == "cpu" and float32 and nets[0].hidden_size % 8 == 0
    if choice == "cpp" and not suitable:
        raise RuntimeError(f"{ENV_SWITCH}=cpp needs float32 networks on the CPU with a multiple of 8 neurons")
    if not suitable:
        return "torch"
    rule_problem = _kernel_problem(nets, cpu_kernel.VERIFIED_RULE)
    if rule_problem:
        if choice == "cpp":
            raise RuntimeError(f"{ENV_SWITCH}=cpp: {rule_problem}")
        rule.tell_once(rule_problem)
        return "torch"
    try:
        cpu_kernel.library()
    except RuntimeError as error:
        if choice == "cpp":
            raise
        _warn_once(f"using the slower PyTorch episode runner ({error})")
        return "torch"
    return "cpp"


def run(backend: str, params: StackedParameters, drive, feedback, plastic, forced, uniform, snapshot_trials=(),
        reset_plastic_every_trial: bool = False):
    """The trials through `backend` (see the module docstring)."""
    return {"cpp": cpp_trials, "triton": triton_trials}[backend](
        params, drive, feedback, plastic, forced, uniform, snapshot_trials, reset_plastic_every_trial)


def _snapshot(start, middle, end) -> torch.Tensor:
    """P after each step of a trial, float16 (..., 4, n, n): steps 0 and 1 leave P unchanged."""
    return torch.stack([w.detach().half() for w in (start, start, middle, end)], -3)


def cpp_trials(params, drive, feedback, plastic, forced, uniform, snapshot_trials=(), reset=False):
    """One member at a time, one kernel call per trial (the kernel spreads the batch over the CPU's threads)."""
    members, batch, ntrials, _, n = drive.shape
    # per-member and per-trial pieces by unbind (its backward is one stack, not a zero fill and a scatter
    # per piece)
    each = {name: split_members(getattr(params, name)) for name in ("w", "alpha", "eta", "modulation_gain", "mod_weight",
                                                                      "mod_bias", "out_weight", "out_bias")}
    drive, feedback, plastic = split_members(drive), split_members(feedback), split_members(plastic)
    results = []
    for k in range(members):
        by_trial = drive[k].transpose(0, 1)  # (T, B, 4, n)
        step0 = torch.tanh(by_trial[:, :, 0]).contiguous().unbind(0)
        step1 = by_trial[:, :, 1].contiguous().unbind(0)
        step2 = feedback[k].transpose(0, 1).contiguous().unbind(0)
        step3 = by_trial[:, :, 3].contiguous().unbind(0)
        chosen = [None] * ntrials if forced is None else forced[k].t().contiguous().unbind(0)
        draws = [None] * ntrials if uniform is None else uniform[k].t().contiguous().unbind(0)
        w, alpha = each["w"][k].contiguous(), each["alpha"][k].expand(n, n).contiguous()
        wout, bout = each["out_weight"][k].detach().contiguous(), each["out_bias"][k].detach().contiguous()
        member_plastic = plastic[k].contiguous()
        rates, responses, snapshots = [], [], {}
        for t in range(ntrials):
            if reset:
                member_plastic = torch.zeros_like(member_plastic)
            start = member_plastic
            r1, r2, r3, member_plastic, response, middle, trace = cpu_kernel.PlasticTrial.apply(
                member_plastic, step0[t], step1[t], step2[t], step3[t], w, alpha, each["eta"][k], each["modulation_gain"][k],
                each["mod_weight"][k], each["mod_bias"][k], wout, bout, chosen[t], draws[t], t in snapshot_trials,
                t == ntrials - 1)
            if t in snapshot_trials:
                snapshots[t] = _snapshot(start, middle, member_plastic)
            rates.append(torch.stack([step0[t], r1, r2, r3], 1))
            responses.append(response)
        results.append((torch.stack(rates, 1), torch.stack(responses, 1), member_plastic, trace, snapshots))
    # (one member: a view with a member axis, not a copy)
    stack = (lambda xs: xs[0].unsqueeze(0)) if members == 1 else torch.stack  # noqa: E731
    rates, responses, plastic, trace, per_member_snapshots = zip(*results)
    snapshots = {t: stack([s[t] for s in per_member_snapshots]) for t in per_member_snapshots[0]}
    return stack(rates), stack(responses), stack(plastic), stack(trace), snapshots


def triton_trials(params, drive, feedback, plastic, forced, uniform, snapshot_trials=(), reset=False):
    members, batch, ntrials, _, n = drive.shape
    drive = torch.cat([drive[:, :, :, :2], feedback, drive[:, :, :, 3:]], 3)  # the kernels' layout: x0 x1 x2 x2 x3
    elements = members * batch
    snapshot_trials = tuple(sorted(t for t in set(snapshot_trials) if 0 <= t < ntrials))
    flat = lambda x: None if x is None else x.reshape(elements, *x.shape[2:])  # noqa: E731
    rates, final, responses, steps, trace = _gpu_kernel().FusedTrials.apply(
        flat(drive), flat(plastic), params.w, params.alpha.expand(members, n, n), params.eta.reshape(members),
        params.modulation_gain.reshape(members), params.mod_weight, params.mod_bias, params.out_weight, params.out_bias,
        batch, flat(forced), flat(uniform), snapshot_trials, True)
    unflat = lambda x: x.reshape(members, batch, *x.shape[1:])  # noqa: E731
    snapshots = {t: _snapshot(*(unflat(p) for p in steps[index])) for index, t in enumerate(snapshot_trials)}
    return unflat(rates), unflat(responses), unflat(final), unflat(trace), snapshots
