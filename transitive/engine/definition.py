"""The step-by-step runner: an episode of K networks run through each network's own definition
(`net(inputs, state)`, i.e. its `step`), the engine's "torch" backend and the reference every other backend is
tested against.

It runs any rule (a subclass that overrides `step` or a helper, an edited definition, a control network) on
any device; the kernels are faster specialisations of it for the verified rule. It assumes only the task's
structure, not the rule's: an episode with a carried state starts with two all-zero input steps
(`blank_steps`, the one routine every path runs), and every trial starts from zero rates and trace (the
plastic weights carry over, unless reset). What only the reference needs are options: r or H carried across
trials, a penalty on action 1 (then every step's action matters: it is sampled at its step, from the same
pre-drawn noise, and the reward input of the next step shows the penalised reward).

The episode is a loop over trials, each one call of `trial` (the trial's four steps through `step`): run
eagerly, or, where `transitive.engine.compiled` decides so, that same function compiled by torch.compile.

K networks run either one after the other (`vectorise=False`, the CPU's choice: each network's (batch, n, n)
tensors stay in cache) or as one, by `torch.func.vmap` of `torch.func.functional_call` over their parameters
stacked along a leading member axis (`record.stack_parameters`; the GPU's choice: one launch per operation for
all members). Both give each network exactly its own episode and its own gradients.
"""
from __future__ import annotations

import functools
import time

import torch
from torch.func import functional_call, vmap
from torch.utils.checkpoint import checkpoint

from ..model.network import NetworkState
from ..model.variants import check_step_outputs
from ..model.task import ACTION, FEEDBACK, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL
from . import compiled
from .record import finish, reward_of, sample_from_exponential, stack_parameters, stacked_record, task_inputs
from .torch_support import vmap_under_checkpointing

BLANK_STEPS = 2


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
    itself (K = 1); else the members' stacked parameters (`stack_parameters`), run as one by vmap."""
    if parameters is None:
        return tuple(x.unsqueeze(0) for x in _state_tuple(
            template, template(inputs[0], NetworkState(rates[0], trace[0], plastic[0])), inputs.shape[1]))
    return vmap(functools.partial(_member_step, template))(parameters, inputs, rates, trace, plastic)


def blank_steps(template, parameters, state: NetworkState, dtype) -> NetworkState:
    """The all-zero input steps that start an episode with a carried (K, B, ...) state (`step`'s template
    and parameters); from a fresh state they leave P exactly 0."""
    zeros = torch.zeros(*state.rates.shape[:2], INPUT_SIZE, device=state.rates.device, dtype=dtype)
    rates, trace, plastic = state.rates, state.trace, state.plastic_weights
    for _ in range(BLANK_STEPS):
        rates, trace, plastic = step(template, parameters, zeros, rates, trace, plastic)[3:]
    return NetworkState(rates, trace, plastic)


def blank_plastic_weights(nets, state: NetworkState, vectorise: bool | None = None) -> torch.Tensor:
    """P after the blank steps from a carried stacked state (what a kernel's episode starts from)."""
    dtype = next(nets[0].parameters()).dtype
    if _vectorise(nets, vectorise):
        return blank_steps(nets[0], stack_parameters(nets), state, dtype).plastic_weights
    return torch.stack([blank_steps(net, None, _member(state, k), dtype).plastic_weights[0]
                        for k, net in enumerate(nets)])


def trial(template, parameters, inputs, correct_action, chosen, draws, plastic, keep_plastic: bool = False):
    """One trial of the members (`step`'s template and parameters) from P at its start, r and H zero.
    inputs (K, B, 4, 37) without the feedback; correct_action (K, B); the response chosen (K, B), or None to
    draw it: action 1 where draws (K, B) < p(action 1). -> (step inputs, logits, values, m(t), rates), each
    with a step axis of 4 (axis 2); the response (K, B); P after each step (K, B, 4, n, n) if keep_plastic,
    else None; H and P at its end. The episode runs this eagerly or compiled (`transitive.engine.compiled`)."""
    return reference_trial(template, parameters, inputs, correct_action, chosen, draws, plastic, keep_plastic)[:9]


def reference_trial(template, parameters, inputs, correct_action, chosen, draws, plastic, keep_plastic=False,
                    start=None, penalty: float = 0.0, forced=None, noise=None, previous_reward=None):
    """`trial` with the options only the reference runs: start, (r, H) at the trial's start (either None:
    zeros, as in `trial`); a penalty on action 1, which needs every step's action (forced (K, B, 4), else
    sampled from the pre-drawn noise (K, B, 4, 2)) and shows the previous step's reward (previous_reward
    (K, B)) at input 33. Returns `trial`'s results, then the steps' actions (K, B, 4) and the last step's
    reward (None without a penalty)."""
    members, batch, n = *inputs.shape[:2], plastic.shape[-1]
    rates, trace = start if start is not None else (None, None)
    rates = plastic.new_zeros(members, batch, n) if rates is None else rates
    trace = plastic.new_zeros(members, batch, n, n) if trace is None else trace
    response = None
    kept = {name: [] for name in ("inputs", "logits", "values", "modulation", "rates", "plastic", "actions")}
    for s in range(STEPS_PER_TRIAL):
        x = inputs[:, :, s]
        if s == FEEDBACK:  # the reward and the action of the response step
            x = x.clone()
            x[..., REWARD] = (previous_reward if penalty else reward_of(response, correct_action)).to(x.dtype)
            x[..., ACTION] = torch.stack([1 - response, response], -1).to(x.dtype)
        elif penalty:
            x = x.clone()
            x[..., REWARD] = previous_reward.to(x.dtype)
        out, value, m, rates, trace, plastic = step(template, parameters, x, rates, trace, plastic)
        if s == RESPONSE:
            response = chosen if chosen is not None else (draws < torch.softmax(out.detach(), -1)[..., 1]).long()
        if penalty:
            action = response if s == RESPONSE else forced[..., s] if forced is not None else \
                sample_from_exponential(torch.softmax(out.detach(), -1), noise[:, :, s])
            reward = reward_of(response, correct_action) if s == RESPONSE else torch.zeros_like(previous_reward)
            previous_reward = reward - penalty * (action == 1).float()
            kept["actions"].append(action)
        for name, value_ in zip(kept, (x, out, value, m, rates, plastic)):
            kept[name].append(value_)
    stacked = [torch.stack(kept[name], 2) for name in ("inputs", "logits", "values", "modulation", "rates")]
    actions = torch.stack(kept["actions"], 2) if penalty else None
    return (*stacked, response, torch.stack(kept["plastic"], 2) if keep_plastic else None, trace, plastic,
            actions, previous_reward)


def _vectorise(nets, vectorise: bool | None) -> bool:
    if vectorise is None:
        vectorise = next(nets[0].parameters()).device.type == "cuda"
    return bool(vectorise) and len(nets) > 1 and (not torch.is_grad_enabled() or vmap_under_checkpointing())


def _member(x, k: int):
    """Member k of a stacked tensor or state, keeping the member axis (None stays None)."""
    if x is None or isinstance(x, torch.Tensor):
        return None if x is None else x[k:k + 1]
    return NetworkState(x.rates[k:k + 1], x.trace[k:k + 1], x.plastic_weights[k:k + 1])


def run_definition(nets, episodes, snapshot_trials=(), reset_plastic_every_trial: bool = False,
                   vectorise: bool | None = None, stacked: bool = False, compile_mode: str = "auto",
                   action_penalty: float = 0.0, carry_rates: bool = False, carry_trace: bool = False):
    """One episode of every network (`transitive.engine.episode.Episodes`; the options as `run_episodes`);
    vectorise: run the networks as one (vmap) rather than one after the other (None: on CUDA only);
    stacked: one record of all networks instead of one each; compile_mode: "auto", "eager" or "compiled"
    (`transitive.engine.compiled`); action_penalty, carry_rates, carry_trace: the reference's options."""
    options = (snapshot_trials, reset_plastic_every_trial, compile_mode, action_penalty, carry_rates, carry_trace)
    tensors = (episodes.pairs, episodes.stimuli, episodes.uniform, episodes.exponential, episodes.state,
               episodes.actions)
    if _vectorise(nets, vectorise):
        return _episode(nets[0], stack_parameters(nets), *tensors, *options, stacked)
    records = []
    for k, net in enumerate(nets):
        records += _episode(net, None, *(_member(x, k) for x in tensors), *options)
    return stacked_record(records) if stacked else records


def _trials(template, parameters, inputs, correct_action, actions, uniform, exponential, plastic, start,
            snapshot_trials, reset_plastic, compile_mode, penalty):
    """Every trial of the episode, each through `trial` (`reference_trial` with the reference's options, start
    or penalty): compiled where `transitive.engine.compiled` says so, else eagerly (with gradients,
    checkpointed: each trial's activations are recomputed in the backward pass, so what is kept is P at trial
    boundaries, not every step's (K, B, n, n) tensors). -> per-trial outputs, snapshots, H and P at the end."""
    members, batch, ntrials = inputs.shape[:3]
    gradients = torch.is_grad_enabled()
    reference = start is not None or bool(penalty)
    noise = None if actions is not None or not penalty else exponential.reshape(members, batch, ntrials, 4, 2)
    previous_reward = inputs.new_zeros(members, batch, dtype=torch.float32) if penalty else None

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

    function, key = None, None
    if not reference:
        key = compiled.key_of(template, parameters is not None, members, batch, actions is not None)
        function = compiled.trial_function(trial, compile_mode, key, template, parameters,
                                           arguments(0, plastic, gradients))
    begin = time.perf_counter()
    per_trial, snapshots, trace = [], {}, None
    for t in range(ntrials):
        args = arguments(t, plastic, gradients and function is not None)
        keep, result = t in snapshot_trials, None
        if function is not None and not keep:
            try:
                result = function(template, parameters, *args)
            except Exception as error:  # noqa: BLE001 - the compiled trial failed: said once, eager from now on
                if compile_mode == "compiled":
                    raise
                compiled.failed(key, error)
                function = None
        if result is None:  # eagerly: `trial`, or with the reference's options
            steps = slice(t * STEPS_PER_TRIAL, (t + 1) * STEPS_PER_TRIAL)
            extra = (start, penalty, None if actions is None else actions[:, :, steps],
                     None if noise is None else noise[:, :, t], previous_reward) if reference else ()
            result = checkpoint(reference_trial, template, parameters, *args, keep, *extra, use_reentrant=False) \
                if gradients else reference_trial(template, parameters, *args, keep, *extra)
        *result, step_actions, previous_reward = result if len(result) > 9 else (*result, None, None)
        if start is not None:  # r and H carried into the next trial, where asked
            start = (result[4][:, :, -1] if start[0] is not None else None, result[7] if start[1] is not None else None)
        steps_plastic, trace, plastic = result[6:]
        per_trial.append((*result[:6], step_actions))
        if keep:
            snapshots[t] = steps_plastic.detach().half()
    if key is not None and function is None:
        compiled.count_eager(key, time.perf_counter() - begin)
    return per_trial, snapshots, trace, plastic


def _episode(template, parameters, pairs, stimuli, uniform, exponential, state, actions, snapshot_trials,
             reset_plastic, compile_mode, penalty, carry_rates, carry_trace, stacked: bool = False):
    """The episode of stacked members (K, B, ...) through `step` (`template` and `parameters` as there)."""
    members, batch, ntrials = pairs.shape[:3]
    n, dtype = template.hidden_size, next(template.parameters()).dtype
    inputs, correct_action = task_inputs(pairs, stimuli, dtype)
    device = inputs.device
    start = None
    if carry_rates or carry_trace:  # the blank steps' r and H reach the first trial: run them from a fresh state too
        state = state or NetworkState(*(torch.zeros(members, batch, *shape, device=device, dtype=dtype)
                                        for shape in ((n,), (n, n), (n, n))))
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=device, dtype=dtype)
    else:
        blank = blank_steps(template, parameters, state, dtype)
        plastic = blank.plastic_weights
        if carry_rates or carry_trace:
            start = (blank.rates if carry_rates else None, blank.trace if carry_trace else None)
    per_trial, snapshots, trace, plastic = _trials(template, parameters, inputs, correct_action, actions, uniform,
                                                   exponential, plastic, start, snapshot_trials, reset_plastic,
                                                   compile_mode, penalty)
    step_inputs, logits, values, modulation, rates = (torch.cat(parts, 2) for parts in list(zip(*per_trial))[:5])
    response = torch.stack([outputs[5] for outputs in per_trial], 2)  # (K, B, T)
    if penalty and actions is None:  # sampled at their steps
        actions = torch.cat([outputs[6] for outputs in per_trial], 2)
    return finish(pairs, step_inputs, correct_action, response, logits, values, modulation, rates, trace, plastic,
                  snapshots, actions, exponential, penalty, stacked)
