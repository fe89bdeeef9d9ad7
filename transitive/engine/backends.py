"""The backends of the episode engine, the choice between them (used by `transitive.engine.episode`), and
the kernels' episode (`run_kernel`).

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
eager, compiled, cpp or triton forces one (an error when it cannot run). The kernels are tested against the
definition (tests/test_kernels.py, tests/test_gpu_kernel.py), and the GPU kernels check themselves against it
on each device and size before the engine relies on them (`gpu_probe.kernel_failure`).

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
from dataclasses import dataclass

import torch

from ..model.task import ACTION, REWARD, RESPONSE, STEPS_PER_TRIAL
from . import cpu_kernel, gpu_probe, rule
from .definition import blank_plastic_weights, run_definition
from .record import finish, reward_of, split_members, stack_parameters, task_inputs

BACKENDS = ("torch", "cpp", "triton")
DEFINITION = ("torch", "eager", "compiled")  # the definition: compiled when it pays, never, always
ENV_SWITCH = cpu_kernel.ENV_SWITCH  # TRANSITIVE_KERNEL: torch, eager, compiled, cpp, triton, or unset (auto)

_triton_error: str | None = None


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
            # checked against the definition, once per device and n
            problem = gpu_probe.kernel_failure(device, nets[0].hidden_size, run_kernel, run_definition)
            if problem is None:
                return "triton"
        if choice == "triton":
            raise RuntimeError(f"{ENV_SWITCH}=triton: {problem or rule_problem}")
        if rule_problem:
            rule.tell_once(rule_problem)
        else:
            rule.say_once(f"using the slower PyTorch episode runner on the GPU: {problem}")
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
        rule.say_once(f"using the slower PyTorch episode runner ({error})")
        return "torch"
    return "cpp"


# ---------------------------------------------------------------------------------------------------------
# The kernels' episode.

@dataclass
class StackedParameters:
    """The parameters the kernels read (`rule.KERNEL_LAYOUT`, in its order), each (K, ...): member k's at
    index k. W is (K, n, n), broadcast over each member's batch; the linear layers are batched products."""

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
    def of(cls, nets) -> "StackedParameters":
        """The networks' parameters, stacked (differentiable: gradients reach each network's own tensors)."""
        return cls(*stack_parameters(nets, rule.KERNEL_LAYOUT).values())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member k's x[k] (..., in) through its own layer (weight[k] (out, in), bias[k]) -> (K, ..., out)."""
    members, inner = x.shape[0], x.shape[1:-1]
    flat = x.reshape(members, -1, x.shape[-1])
    y = torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
    return y.reshape(members, *inner, weight.shape[1])


def modulation(params: StackedParameters, rates: torch.Tensor) -> torch.Tensor:
    """m(t) of rates (K, ..., n) -> (K, ...)."""
    d = torch.tanh(linear(rates, params.mod_weight, params.mod_bias))
    return params.modulation_gain.reshape(-1, *([1] * (d.dim() - 2))) * (d[..., 0] - d[..., 1])


def drives(params: StackedParameters, inputs: torch.Tensor, correct_action: torch.Tensor):
    """The feedforward drive W_in i + b_in of every step: (K, B, T, 4, n) without the feedback, and the
    feedback step's for either response (K, B, T, 2, n) (the reward follows from the response and the
    correct action). inputs (K, B, T, 4, 37) without the feedback."""
    drive = linear(inputs, params.in_weight, params.in_bias)  # (K, B, T, 4, n)
    columns = params.in_weight  # (K, n, 37)
    feedback = []
    for action in (0, 1):
        reward = reward_of(torch.full_like(correct_action, action), correct_action)  # (K, B, T)
        chosen = columns[:, :, ACTION][:, :, action]  # (K, n)
        feedback.append(reward.unsqueeze(-1) * columns[:, :, REWARD][:, None, None] + chosen[:, None, None])
    return drive, drive[:, :, :, 2:3] + torch.stack(feedback, 3)


def run_kernel(backend: str, nets, episodes, snapshot_trials=(), reset_plastic_every_trial: bool = False,
               stacked: bool = False):
    """One episode of every network through a kernel ("cpp" or "triton"): the blank steps (only with a
    carried state: from a fresh one they change nothing) through the definition; the feedforward drive of
    every step, for both possible responses at the feedback step; the trial loop through the kernel; outputs,
    values and m(t) of every step in one batched product each; the episode's ending (`record.finish`).

    It exploits the trial structure (docs/method.md, time loop): r and H are reset at every trial start, so
    step 1 has no recurrent input, the trace is 0 after step 1 and eta tanh(r2 r1^T) after step 2, and P
    changes only at steps 3 and 4 (feedback and delay)."""
    params = StackedParameters.of(nets)
    pairs, state, actions = episodes.pairs, episodes.state, episodes.actions
    members, batch, ntrials = pairs.shape[:3]
    n = params.w.shape[-1]
    nsteps = ntrials * STEPS_PER_TRIAL
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=params.w.device, dtype=params.w.dtype)
    else:
        plastic = blank_plastic_weights(nets, state)
    inputs, correct_action = task_inputs(pairs, episodes.stimuli, params.w.dtype)
    forced = None if actions is None else actions[:, :, RESPONSE::STEPS_PER_TRIAL].contiguous()
    draws = None if actions is not None else episodes.uniform.transpose(1, 2)  # (K, B, T)
    rates, response, plastic, final_trace, snapshots = {"cpp": cpp_trials, "triton": triton_trials}[backend](
        params, *drives(params, inputs, correct_action), plastic, forced, draws, snapshot_trials,
        reset_plastic_every_trial)
    inputs = inputs.clone()
    inputs[:, :, :, 2, REWARD] = reward_of(response, correct_action)
    inputs[:, :, :, 2, ACTION] = torch.stack([1 - response, response], -1).to(inputs.dtype)  # one-hot, unchecked
    logits = linear(rates, params.out_weight, params.out_bias).reshape(members, batch, nsteps, 2)
    values = linear(rates, params.value_weight, params.value_bias).reshape(members, batch, nsteps)
    return finish(pairs, inputs.reshape(members, batch, nsteps, -1), correct_action, response, logits, values,
                  modulation(params, rates).reshape(members, batch, nsteps), rates.reshape(members, batch, nsteps, n),
                  final_trace, plastic, snapshots, actions, episodes.exponential, stacked=stacked)


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
