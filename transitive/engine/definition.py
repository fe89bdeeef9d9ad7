"""The engine's "torch" backend: an episode of K networks run step by step through each network's own
definition (`net(inputs, state)`, i.e. its `step`), with the engine's pre-drawn random numbers.

This is what runs for any rule the compiled kernels were not verified against (a subclass that overrides
`step` or a helper, an edited definition, a control network), and wherever a kernel cannot run. It assumes
only the task's structure, not the rule's: every trial starts from zero rates and trace (the plastic
weights carry over, unless reset), and an episode with a carried state starts with two all-zero input steps.

The episode is a loop over trials, each one call of `trial` (the trial's four steps through `step`): run
eagerly, or, where `transitive.engine.compiled` decides so, that same function compiled by torch.compile.

K networks run either one after the other (`vectorise=False`, the CPU's choice: each network's
(batch, n, n) tensors stay in cache) or as one, by `torch.func.vmap` of `torch.func.functional_call` over
their parameters stacked along a leading member axis (the GPU's choice: one launch per operation for all
members). Both give each network exactly its own episode and its own gradients. (The stack is made with
`torch.stack`, not `torch.func.stack_module_state`, whose stacked tensors are new leaves: here the gradients
must reach each network's own parameters, which its optimizer steps.)
"""
from __future__ import annotations

import functools
import time

import torch
from torch.func import functional_call, vmap
from torch.utils.checkpoint import checkpoint

from ..model.network import NetworkState
from ..model.variants import check_step_outputs
from ..model.task import ACTION, FEEDBACK, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs
from . import compiled
from .record import every_step, member_records, reward_of, stacked_record
from .stacked import sample_from_exponential
from .torch_support import vmap_under_checkpointing

BLANK_STEPS = 2


def stacked_parameters(nets) -> dict:
    """{name: (K, ...)}: every named parameter and buffer of the networks, stacked along a member axis
    (differentiable: gradients reach each network's own tensors)."""
    named = [dict(net.named_parameters()) | dict(net.named_buffers()) for net in nets]
    return {name: torch.stack([tensors[name] for tensors in named]) for name in named[0]}


def _state_tuple(net, outputs, batch: int):
    check_step_outputs(net, outputs, batch)  # a wrong rule: one line, not a failed unpacking
    logits, value, modulation, state = outputs
    return logits, value, modulation, state.rates, state.trace, state.plastic_weights


def _member_step(template, member_parameters, inputs, rates, trace, plastic):
    return _state_tuple(template, functional_call(template, member_parameters,
                                                  (inputs, NetworkState(rates, trace, plastic))), inputs.shape[0])


def step(template, parameters, inputs, rates, trace, plastic):
    """One time step of every member: inputs (K, B, 37), rates (K, B, n), trace and P (K, B, n, n) ->
    (logits, value, m(t), rates, trace, P), each (K, B, ...). parameters None: one network, `template`
    itself (K = 1); else the members' stacked parameters (`stacked_parameters`), run as one by vmap."""
    if parameters is None:
        return tuple(x.unsqueeze(0) for x in _state_tuple(
            template, template(inputs[0], NetworkState(rates[0], trace[0], plastic[0])), inputs.shape[1]))
    return vmap(functools.partial(_member_step, template))(parameters, inputs, rates, trace, plastic)


def stepper(nets, vectorise: bool):
    """`step` as a function of (inputs, rates, trace, P) for these networks (see `step`)."""
    if vectorise:
        template, parameters = nets[0], stacked_parameters(nets)
    else:
        (template,), parameters = nets, None  # one network: its own tensors, with a member axis of 1
    return functools.partial(step, template, parameters)


def trial(template, parameters, inputs, correct_action, chosen, draws, plastic, keep_plastic: bool = False):
    """One trial of the members (`step`'s template and parameters) from P at its start, r and H zero.
    inputs (K, B, 4, 37) without the feedback; correct_action (K, B); the response chosen (K, B), or None to
    draw it: action 1 where draws (K, B) < p(action 1). -> (step inputs, logits, values, m(t), rates), each
    with a step axis of 4 (axis 2); the response (K, B); P after each step (K, B, 4, n, n) if keep_plastic,
    else None; H and P at its end. The episode runs this eagerly or compiled (`transitive.engine.compiled`)."""
    members, batch, n = *inputs.shape[:2], plastic.shape[-1]
    rates = plastic.new_zeros(members, batch, n)
    trace = plastic.new_zeros(members, batch, n, n)
    response = None
    kept = {name: [] for name in ("inputs", "logits", "values", "modulation", "rates", "plastic")}
    for s in range(STEPS_PER_TRIAL):
        x = inputs[:, :, s]
        if s == FEEDBACK:  # the reward and the action of the response step
            x = x.clone()
            x[..., REWARD] = reward_of(response, correct_action).to(x.dtype)
            x[..., ACTION] = torch.stack([1 - response, response], -1).to(x.dtype)
        out, value, m, rates, trace, plastic = step(template, parameters, x, rates, trace, plastic)
        if s == RESPONSE:
            response = chosen if chosen is not None else (draws < torch.softmax(out.detach(), -1)[..., 1]).long()
        for name, value_ in zip(kept, (x, out, value, m, rates, plastic)):
            kept[name].append(value_)
    stacked = [torch.stack(kept[name], 2) for name in ("inputs", "logits", "values", "modulation", "rates")]
    return (*stacked, response, torch.stack(kept["plastic"], 2) if keep_plastic else None, trace, plastic)


def blank_steps(step, inputs_like: torch.Tensor, state: NetworkState) -> NetworkState:
    """The all-zero input steps that start an episode with a carried (K, B, ...) state."""
    zeros = torch.zeros(*state.rates.shape[:2], INPUT_SIZE, device=inputs_like.device, dtype=inputs_like.dtype)
    rates, trace, plastic = state.rates, state.trace, state.plastic_weights
    for _ in range(BLANK_STEPS):
        rates, trace, plastic = step(zeros, rates, trace, plastic)[3:]
    return NetworkState(rates, trace, plastic)


def blank_plastic_weights(nets, state: NetworkState, vectorise: bool | None = None) -> torch.Tensor:
    """P after the blank steps from a carried stacked state (what a kernel's episode starts from)."""
    vectorise = _vectorise(nets, vectorise)
    dtype = next(nets[0].parameters()).dtype
    if vectorise:
        return blank_steps(stepper(nets, True), state.rates.to(dtype), state).plastic_weights
    return torch.stack([blank_steps(stepper([net], False), state.rates.to(dtype), NetworkState(
        state.rates[k:k + 1], state.trace[k:k + 1], state.plastic_weights[k:k + 1])).plastic_weights[0]
        for k, net in enumerate(nets)])


def _vectorise(nets, vectorise: bool | None) -> bool:
    if vectorise is None:
        vectorise = next(nets[0].parameters()).device.type == "cuda"
    return bool(vectorise) and len(nets) > 1 and (not torch.is_grad_enabled() or vmap_under_checkpointing())


def run_definition(nets, pairs, stimuli, uniform=None, exponential=None, state: NetworkState | None = None,
                   actions=None, snapshot_trials=(), reset_plastic_every_trial: bool = False,
                   vectorise: bool | None = None, stacked: bool = False, compile_mode: str = "auto"):
    """One episode of every network, the arguments as `transitive.engine.members.run_members`;
    vectorise: run the networks as one (vmap) rather than one after the other (None: on CUDA only);
    stacked: one record of all networks instead of one each; compile_mode: "auto", "eager" or "compiled"
    (`transitive.engine.compiled`)."""
    if _vectorise(nets, vectorise):
        return _episode(nets[0], stacked_parameters(nets), pairs, stimuli, uniform, exponential, state, actions,
                        snapshot_trials, reset_plastic_every_trial, compile_mode, stacked)
    records = []
    for k, net in enumerate(nets):
        member = slice(k, k + 1)
        records += _episode(net, None, pairs[member], stimuli[member],
                            None if uniform is None else uniform[member],
                            None if exponential is None else exponential[member],
                            None if state is None else NetworkState(state.rates[member], state.trace[member],
                                                                    state.plastic_weights[member]),
                            None if actions is None else actions[member], snapshot_trials,
                            reset_plastic_every_trial, compile_mode)
    return stacked_record(records) if stacked else records


def _trials(template, parameters, inputs, correct_action, actions, uniform, plastic, snapshot_trials, reset_plastic,
            compile_mode):
    """Every trial of the episode, each through `trial`: compiled where `transitive.engine.compiled` says so,
    else eagerly (with gradients, checkpointed: each trial's activations are recomputed in the backward pass,
    so what is kept is P at trial boundaries, not every step's (K, B, n, n) tensors). -> per-trial outputs,
    snapshots, and H and P at the end."""
    members, batch, ntrials = inputs.shape[:3]
    gradients = torch.is_grad_enabled()

    def arguments(t, plastic, tracked: bool):
        """Trial t's tensors, contiguous (so that the number of trials does not reach their strides); tracked:
        P requires a gradient at every trial, as it does after the first (one compiled graph for all)."""
        chosen = None if actions is None else actions[:, :, t * STEPS_PER_TRIAL + RESPONSE].contiguous()
        draws = None if actions is not None else uniform[:, t].contiguous()
        if reset_plastic:
            plastic = torch.zeros_like(plastic)
        if tracked and not plastic.requires_grad:
            plastic = plastic.detach().requires_grad_()
        return inputs[:, :, t].contiguous(), correct_action[:, :, t].contiguous(), chosen, draws, plastic

    key = compiled.key_of(template, parameters is not None, members, batch, actions is not None)
    function = compiled.trial_function(trial, compile_mode, key, template, parameters,
                                       arguments(0, plastic, gradients))
    start = time.perf_counter()
    per_trial, snapshots, trace = [], {}, None
    for t in range(ntrials):
        args = arguments(t, plastic, gradients and function is not None)
        result = None
        if function is not None and t not in snapshot_trials:
            try:
                result = function(template, parameters, *args)
            except Exception as error:  # noqa: BLE001 - the compiled trial failed: said once, eager from now on
                if compile_mode == "compiled":
                    raise
                compiled.failed(key, error)
                function = None
        if result is None:
            keep = t in snapshot_trials
            result = checkpoint(trial, template, parameters, *args, keep, use_reentrant=False) if gradients else \
                trial(template, parameters, *args, keep)
        *outputs, steps_plastic, trace, plastic = result
        per_trial.append(outputs)
        if t in snapshot_trials:
            snapshots[t] = steps_plastic.detach().half()
    if function is None:
        compiled.count_eager(key, time.perf_counter() - start)
    return per_trial, snapshots, trace, plastic


def _episode(template, parameters, pairs, stimuli, uniform, exponential, state, actions, snapshot_trials,
             reset_plastic, compile_mode, stacked: bool = False):
    """The episode of stacked members (K, B, ...) through `step` (`template` and `parameters` as there)."""
    members, batch, ntrials = pairs.shape[:3]
    n, dtype = template.hidden_size, next(template.parameters()).dtype
    nsteps = ntrials * STEPS_PER_TRIAL
    flat = Trials(pairs.reshape(members * batch, ntrials, 2), stimuli.reshape(members * batch, *stimuli.shape[2:]))
    inputs = base_inputs(flat).reshape(members, batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE).to(dtype)
    correct_action = flat.correct_action.reshape(members, batch, ntrials)
    device = inputs.device
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=device, dtype=dtype)
    else:
        plastic = blank_steps(functools.partial(step, template, parameters), inputs, state).plastic_weights
    per_trial, snapshots, trace, plastic = _trials(template, parameters, inputs, correct_action, actions, uniform,
                                                   plastic, snapshot_trials, reset_plastic, compile_mode)
    step_inputs, logits, values, modulation, rates_kept = (torch.cat(parts, 2) for parts in list(zip(*per_trial))[:5])
    responses = [outputs[5] for outputs in per_trial]
    response = torch.stack(responses, 2)  # (K, B, T)
    if actions is None:
        sampled = sample_from_exponential(torch.softmax(logits.detach(), -1),
                                          exponential.reshape(members, batch, nsteps, 2))
        is_response = torch.arange(nsteps, device=device) % STEPS_PER_TRIAL == RESPONSE
        actions = torch.where(is_response, every_step(response), sampled)
    reward = reward_of(response, correct_action)
    rewards = torch.zeros(members, batch, ntrials, STEPS_PER_TRIAL, device=device, dtype=dtype)
    rewards[..., RESPONSE] = reward
    return member_records(pairs, step_inputs, actions, rewards.reshape(members, batch, nsteps),
                          response == correct_action, logits, values, modulation, rates_kept, rates_kept[:, :, -1],
                          trace, plastic, snapshots, stacked)
