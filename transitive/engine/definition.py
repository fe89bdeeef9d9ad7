"""The engine's "torch" backend: an episode of K networks run step by step through each network's own
definition (`net(inputs, state)`, i.e. its `step`), with the engine's pre-drawn random numbers.

This is what runs for any rule the compiled kernels were not verified against (a subclass that overrides
`step` or a helper, an edited definition, a control network), and wherever a kernel cannot run. It assumes
only the task's structure, not the rule's: every trial starts from zero rates and trace (the plastic
weights carry over, unless reset), and an episode with a carried state starts with two all-zero input steps.

K networks run either one after the other (`vectorise=False`, the CPU's choice: each network's
(batch, n, n) tensors stay in cache) or as one, by `torch.func.vmap` of `torch.func.functional_call` over
their parameters stacked along a leading member axis (the GPU's choice: one launch per operation for all
members). Both give each network exactly its own episode and its own gradients. (The stack is made with
`torch.stack`, not `torch.func.stack_module_state`, whose stacked tensors are new leaves: here the gradients
must reach each network's own parameters, which its optimizer steps.)
"""
from __future__ import annotations

import torch
from torch.func import functional_call, vmap
from torch.utils.checkpoint import checkpoint

from ..model.network import NetworkState
from ..model.task import ACTION, FEEDBACK, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs
from .record import every_step, member_records, reward_of, stacked_record
from .stacked import sample_from_exponential
from .torch_support import vmap_under_checkpointing

BLANK_STEPS = 2


def stacked_parameters(nets) -> dict:
    """{name: (K, ...)}: every named parameter and buffer of the networks, stacked along a member axis
    (differentiable: gradients reach each network's own tensors)."""
    named = [dict(net.named_parameters()) | dict(net.named_buffers()) for net in nets]
    return {name: torch.stack([tensors[name] for tensors in named]) for name in named[0]}


def _state_tuple(outputs):
    logits, value, modulation, state = outputs
    return logits, value, modulation, state.rates, state.trace, state.plastic_weights


def stepper(nets, vectorise: bool):
    """A function of stacked tensors (inputs (K, B, 37), rates (K, B, n), trace and P (K, B, n, n)) ->
    (logits, value, m(t), rates, trace, P), each (K, B, ...): one time step of every network."""
    if vectorise:
        template, parameters = nets[0], stacked_parameters(nets)

        def one(member_parameters, inputs, rates, trace, plastic):
            return _state_tuple(functional_call(template, member_parameters,
                                                (inputs, NetworkState(rates, trace, plastic))))

        batched = vmap(one)
        return lambda inputs, rates, trace, plastic: batched(parameters, inputs, rates, trace, plastic)

    (net,) = nets  # one network: its own tensors, with a member axis of 1 (views, no copies)
    return lambda inputs, rates, trace, plastic: tuple(x.unsqueeze(0) for x in _state_tuple(
        net(inputs[0], NetworkState(rates[0], trace[0], plastic[0]))))


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
                   vectorise: bool | None = None, stacked: bool = False):
    """One episode of every network, the arguments as `transitive.engine.members.run_members`;
    vectorise: run the networks as one (vmap) rather than one after the other (None: on CUDA only);
    stacked: one record of all networks instead of one each."""
    if _vectorise(nets, vectorise):
        return _episode(stepper(nets, True), nets[0], pairs, stimuli, uniform, exponential, state, actions,
                        snapshot_trials, reset_plastic_every_trial, stacked)
    records = []
    for k, net in enumerate(nets):
        member = slice(k, k + 1)
        records += _episode(stepper([net], False), net, pairs[member], stimuli[member],
                            None if uniform is None else uniform[member],
                            None if exponential is None else exponential[member],
                            None if state is None else NetworkState(state.rates[member], state.trace[member],
                                                                    state.plastic_weights[member]),
                            None if actions is None else actions[member], snapshot_trials,
                            reset_plastic_every_trial)
    return stacked_record(records) if stacked else records


def _episode(step, net, pairs, stimuli, uniform, exponential, state, actions, snapshot_trials, reset_plastic,
             stacked: bool = False):
    """The episode of stacked members (K, B, ...) through `step` (see `stepper`)."""
    members, batch, ntrials = pairs.shape[:3]
    n, dtype = net.hidden_size, next(net.parameters()).dtype
    nsteps = ntrials * STEPS_PER_TRIAL
    flat = Trials(pairs.reshape(members * batch, ntrials, 2), stimuli.reshape(members * batch, *stimuli.shape[2:]))
    inputs = base_inputs(flat).reshape(members, batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE).to(dtype)
    correct_action = flat.correct_action.reshape(members, batch, ntrials)
    device = inputs.device
    if state is None:
        plastic = torch.zeros(members, batch, n, n, device=device, dtype=dtype)
    else:
        plastic = blank_steps(step, inputs, state).plastic_weights
    zero_rates = torch.zeros(members, batch, n, device=device, dtype=dtype)
    zero_trace = torch.zeros(members, batch, n, n, device=device, dtype=dtype)

    def trial(t: int, plastic: torch.Tensor):
        """Trial t from P at its start, r and H reset: (step inputs, logits, values, m(t), rates, each with a
        step axis of 4; the response; P after each step (float16, snapshot trials only); H and P at its end)."""
        rates, trace, response = zero_rates, zero_trace, None
        if reset_plastic:
            plastic = torch.zeros_like(plastic)
        kept = {name: [] for name in ("inputs", "logits", "values", "modulation", "rates", "plastic")}
        for s in range(STEPS_PER_TRIAL):
            x = inputs[:, :, t, s]
            if s == FEEDBACK:  # the reward and the action of the response step
                x = x.clone()
                x[..., REWARD] = reward_of(response, correct_action[:, :, t]).to(dtype)
                x[..., ACTION] = torch.stack([1 - response, response], -1).to(dtype)
            out, value, m, rates, trace, plastic = step(x, rates, trace, plastic)
            if s == RESPONSE:
                if actions is not None:
                    response = actions[:, :, t * STEPS_PER_TRIAL + RESPONSE]
                else:
                    response = (uniform[:, t] < torch.softmax(out.detach(), -1)[..., 1]).long()
            for name, value_ in zip(kept, (x, out, value, m, rates, plastic)):
                kept[name].append(value_)
        stacked = [torch.stack(kept[name], 2) for name in ("inputs", "logits", "values", "modulation", "rates")]
        steps_plastic = torch.stack(kept["plastic"], 2).detach().half() if t in snapshot_trials else None
        return (*stacked, response, steps_plastic, trace, plastic)

    # With gradients, each trial's activations are recomputed in the backward pass (activation
    # checkpointing): what is kept is P at trial boundaries, not every step's (K, B, n, n) tensors.
    checkpointed = torch.is_grad_enabled()
    per_trial, snapshots = [], {}
    for t in range(ntrials):
        if checkpointed:
            result = checkpoint(trial, t, plastic, use_reentrant=False)
        else:
            result = trial(t, plastic)
        *outputs, steps_plastic, trace, plastic = result
        per_trial.append(outputs)
        if t in snapshot_trials:
            snapshots[t] = steps_plastic
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
