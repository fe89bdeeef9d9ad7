"""Running one network's episodes: the fast runner (the engine with one member) and the plain step-by-step
runner, the reference every fast path must equal.

`run_episode` runs the batch through `transitive.engine.members` (K = 1; its backends: the compiled CPU kernel,
the GPU kernels, or the network's own definition step by step). `run_episode_plain` runs the network's time
step (`net(inputs, state)`, i.e. `net.step`) at every step, blank steps included, sampling each action with
`torch.multinomial`; it also serves the options the engine does not implement (a penalty on action 1, r or H
carried across trials).
"""
from __future__ import annotations

import torch

from ..model.network import NetworkState, PlasticNetwork
from ..model.variants import check_step_outputs
from ..model.task import FEEDBACK, INPUT_SIZE, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs, feedback_inputs
from .members import BLANK_STEPS, EpisodeRecord, reward_of, run_members
from .stacked import draw_noise

__all__ = ["BLANK_STEPS", "EpisodeRecord", "run_episode", "run_episode_plain", "run_blank_steps", "sample_actions"]


def sample_actions(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    probabilities = torch.softmax(logits.detach(), -1)
    return torch.multinomial(probabilities.reshape(-1, probabilities.shape[-1]), 1,
                             generator=generator).reshape(logits.shape[:-1])


def run_blank_steps(net: PlasticNetwork, state: NetworkState) -> NetworkState:
    """The all-zero input steps at the start of every episode (they matter only for a carried state)."""
    zeros = torch.zeros(state.rates.shape[0], INPUT_SIZE, device=state.rates.device, dtype=state.rates.dtype)
    for _ in range(BLANK_STEPS):
        outputs = net(zeros, state)
        check_step_outputs(net, outputs, zeros.shape[0])
        state = outputs[3]
    return state


def run_episode(net: PlasticNetwork, trials: Trials, state: NetworkState | None = None,
                actions: torch.Tensor | None = None, snapshot_trials=(),
                reset_plastic_every_trial: bool = False, generator: torch.Generator | None = None,
                action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                reset_trace_every_trial: bool = True, backend: str | None = None) -> EpisodeRecord:
    """Run one episode for the whole batch, fast. `state` None means fresh (zero) state.

    actions: optional (batch, nsteps) long tensor forcing the actions instead of sampling them.
    snapshot_trials: trials for which P after each of the 4 steps is kept (float16).
    reset_plastic_every_trial: P is set to 0 at every trial start (the RESETPWEVERYTRIAL control: no
    learning across trials).
    generator: the random number generator for the sampled actions (None: torch's global one). The episode
    draws, in this order, one uniform number per trial and batch element (the response is action 1 when it
    is below p(action 1)), then what `torch.multinomial` draws to sample the actions of every step.
    action_penalty: subtracted from the reward of every step at which action 1 is taken (the original's
    `wp`); it enters the rewards, hence the returns, and the reward input of the next step.
    reset_rates_every_trial, reset_trace_every_trial: r (resp. H) is set to 0 at every trial start (the
    original's RESETHIDDENEVERYTRIAL, RESETETEVERYTRIAL); False carries it over from the previous trial.
    A nonzero action penalty or a False reset flag runs the episode with `run_episode_plain`.
    backend: "torch" (the network's own definition, step by step), "cpp" or "triton" (the kernels, for the
    verified rule only: `transitive.engine.rule`); None chooses the fastest that runs this network's rule.

    All backends give the same results as `run_episode_plain` up to float32 rounding, and the same sampled
    actions for the same random seed (except for ties within rounding).
    """
    if action_penalty or not (reset_rates_every_trial and reset_trace_every_trial):
        return run_episode_plain(net, trials, state, actions, snapshot_trials, reset_plastic_every_trial,
                                 generator, action_penalty, reset_rates_every_trial, reset_trace_every_trial)
    uniform = exponential = None
    if actions is None:
        uniform, exponential = draw_noise([generator], trials.batch, trials.ntrials, next(net.parameters()).device)
    stacked_state = None if state is None else NetworkState(
        state.rates.unsqueeze(0), state.trace.unsqueeze(0), state.plastic_weights.unsqueeze(0))
    return run_members([net], trials.pairs.unsqueeze(0), trials.stimuli.unsqueeze(0), uniform, exponential,
                       stacked_state, None if actions is None else actions.unsqueeze(0), snapshot_trials,
                       reset_plastic_every_trial, backend)[0]


def run_episode_plain(net: PlasticNetwork, trials: Trials, state: NetworkState | None = None,
                      actions: torch.Tensor | None = None, snapshot_trials=(),
                      reset_plastic_every_trial: bool = False, generator: torch.Generator | None = None,
                      action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                      reset_trace_every_trial: bool = True) -> EpisodeRecord:
    """The same episode, one time step of the network (`net.step`) at a time (the reference of the engine).

    The options are those of `run_episode`. The reward input (33) of each step is the reward of the step
    before (0 at the first step of the episode): the trial's reward at step 2 and, with an action penalty,
    the penalty at any step following an action 1 (also across trials).
    """
    batch, ntrials = trials.batch, trials.ntrials
    device = next(net.parameters()).device
    n = net.hidden_size
    state = NetworkState.fresh(batch, n, device) if state is None else state
    state = run_blank_steps(net, state)
    inputs = base_inputs(trials)
    correct_action = trials.correct_action
    out = {k: [] for k in ("inputs", "actions", "rewards", "logits", "values", "modulation", "rates")}
    responses, snapshots = [], {}
    response = None  # the action of step 1 of each trial, reported at step 2
    previous_reward = torch.zeros(batch, device=device)  # what input 33 shows at the next step
    for t in range(ntrials):
        rates = torch.zeros(batch, n, device=device) if reset_rates_every_trial else state.rates
        trace = torch.zeros(batch, n, n, device=device) if reset_trace_every_trial else state.trace
        plastic = torch.zeros_like(state.plastic_weights) if reset_plastic_every_trial else state.plastic_weights
        state = NetworkState(rates, trace, plastic)
        steps = []
        for s in range(STEPS_PER_TRIAL):
            step_input = inputs[:, t, s]
            if s == FEEDBACK:
                step_input = step_input + feedback_inputs(previous_reward, response)
            elif action_penalty:
                step_input = step_input.clone()
                step_input[:, REWARD] = previous_reward
            outputs = net(step_input, state)
            check_step_outputs(net, outputs, batch)
            logits, value, modulation, state = outputs
            step = t * STEPS_PER_TRIAL + s
            action = sample_actions(logits, generator) if actions is None else actions[:, step]
            reward = torch.zeros(batch, device=device)
            if s == RESPONSE:
                response = action
                reward = reward_of(action, correct_action[:, t])
                responses.append(action)
            if action_penalty:
                reward = reward - action_penalty * (action == 1).float()
            previous_reward = reward
            for key, value_ in zip(out, (step_input, action, reward, logits, value, modulation, state.rates)):
                out[key].append(value_)
            steps.append(state.plastic_weights)
        if t in snapshot_trials:
            snapshots[t] = torch.stack(steps, 1).detach().half()
    out = {k: torch.stack(v, 1) for k, v in out.items()}
    response = torch.stack(responses, 1)
    return EpisodeRecord(pairs=trials.pairs, correct=response == correct_action, final_state=state,
                         snapshots=snapshots, **out)
