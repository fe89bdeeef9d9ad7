"""Running episodes: the fast batched runner and the plain step-by-step one it must equal.

The fast runner exploits the trial structure (docs/method.md, time loop). r and H are reset at every trial
start, so:
- step 0 has no recurrent input: its rates depend on the stimulus only and are computed for all trials
  at once;
- the trace is 0 after step 0 and eta * tanh(r1 r0^T) after step 1, so P changes only at steps 2 and 3,
  and W + alpha * P is formed twice per trial, not four times;
- outputs, values and m(t) of every step are computed after the loop in one batched product each, and
  the actions that do not affect the dynamics (all but step 1's) are sampled then.
Blank steps at the start of an episode change nothing from a fresh state and are skipped then; with a
carried state they are run as plain steps. Options that break these assumptions (a penalty on action 1,
which makes every step's action matter; r or H carried across trials) are run by the plain runner.

On the CPU each trial runs through a compiled kernel with a hand-derived backward (`transitive.kernels`);
the PyTorch version of the same trial loop (`_trials_torch`) serves other devices and is the fallback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import kernels
from .network import PLASTIC_CLIP, NetworkState, PlasticNetwork
from .task import FEEDBACK, RESPONSE, REWARD, STEPS_PER_TRIAL, Trials, base_inputs, feedback_inputs

BLANK_STEPS = 2


@dataclass
class EpisodeRecord:
    """Everything an episode produced. Step-indexed tensors have nsteps = 4 * ntrials."""

    pairs: torch.Tensor  # (batch, ntrials, 2)
    inputs: torch.Tensor  # (batch, nsteps, 37)
    actions: torch.Tensor  # (batch, nsteps) long, sampled at every step
    rewards: torch.Tensor  # (batch, nsteps): +-1 at step 1 of every trial, 0 elsewhere, minus the action
    #                        penalty (if any) at every step where action 1 was taken
    correct: torch.Tensor  # (batch, ntrials) bool: the response (step 1) was right
    logits: torch.Tensor  # (batch, nsteps, 2)
    values: torch.Tensor  # (batch, nsteps)
    modulation: torch.Tensor  # (batch, nsteps): m(t)
    rates: torch.Tensor  # (batch, nsteps, n)
    final_state: NetworkState
    snapshots: dict = field(default_factory=dict)  # trial -> (batch, 4, n, n) float16: P after each step

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    @property
    def response(self) -> torch.Tensor:
        """(batch, ntrials): +1 for action 1 at step 1, -1 for action 0."""
        return self.actions[:, RESPONSE::STEPS_PER_TRIAL] * 2 - 1

    @property
    def trial_rewards(self) -> torch.Tensor:
        return self.rewards[:, RESPONSE::STEPS_PER_TRIAL]


def sample_actions(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    probabilities = torch.softmax(logits.detach(), -1)
    return torch.multinomial(probabilities.reshape(-1, probabilities.shape[-1]), 1,
                             generator=generator).reshape(logits.shape[:-1])


def _reward(action: torch.Tensor, correct_action: torch.Tensor) -> torch.Tensor:
    return torch.where(action == correct_action, 1.0, -1.0)


def run_blank_steps(net: PlasticNetwork, state: NetworkState) -> NetworkState:
    """The all-zero input steps at the start of every episode (they matter only for a carried state)."""
    zeros = torch.zeros(state.rates.shape[0], net.i2h.in_features, device=state.rates.device)
    for _ in range(BLANK_STEPS):
        state = net.step(zeros, state)[3]
    return state


def _matvec(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Batched matrix-vector product; an elementwise product and sum beats bmm for one column on CPU."""
    return (matrices * vectors.unsqueeze(1)).sum(-1)


def run_episode(net: PlasticNetwork, trials: Trials, state: NetworkState | None = None,
                actions: torch.Tensor | None = None, snapshot_trials=(),
                reset_plastic_every_trial: bool = False, generator: torch.Generator | None = None,
                action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                reset_trace_every_trial: bool = True) -> EpisodeRecord:
    """Run one episode for the whole batch, fast. `state` None means fresh (zero) state.

    actions: optional (batch, nsteps) long tensor forcing the actions instead of sampling them.
    snapshot_trials: trials for which P after each of the 4 steps is kept (float16).
    reset_plastic_every_trial: P is set to 0 at every trial start (the RESETPWEVERYTRIAL control: no
    learning across trials).
    generator: the random number generator for the sampled actions (None: torch's global one).
    action_penalty: subtracted from the reward of every step at which action 1 is taken (the original's
    `wp`); it enters the rewards, hence the returns, and the reward input of the next step.
    reset_rates_every_trial, reset_trace_every_trial: r (resp. H) is set to 0 at every trial start (the
    original's RESETHIDDENEVERYTRIAL, RESETETEVERYTRIAL); False carries it over from the previous trial.
    A nonzero action penalty or a False reset flag runs the episode with `run_episode_plain`.

    On the CPU (float32) the trials run through the compiled kernel of `transitive.kernels` (forward and
    hand-derived backward); elsewhere, or when it cannot be built, or with TRANSITIVE_KERNEL=torch,
    through the PyTorch code below. Both give the same results as `run_episode_plain` up to float32
    rounding, and the same sampled actions for the same random seed (except for ties within rounding).
    """
    if action_penalty or not (reset_rates_every_trial and reset_trace_every_trial):
        return run_episode_plain(net, trials, state, actions, snapshot_trials, reset_plastic_every_trial,
                                 generator, action_penalty, reset_rates_every_trial, reset_trace_every_trial)
    batch, ntrials = trials.batch, trials.ntrials
    device = net.w.device
    n = net.hidden_size
    if state is None:
        plastic = torch.zeros(batch, n, n, device=device)
    else:
        plastic = run_blank_steps(net, state).plastic_weights

    inputs = base_inputs(trials)  # (batch, ntrials, 4, 37)
    drive = net.i2h(inputs)  # feedforward input of every step, minus the step-2 feedback
    stimulus_rates = torch.tanh(drive[:, :, 0])  # step 0: no recurrent input after the reset
    correct_action = trials.correct_action
    # The response of each trial is action 1 when uniform < p(action 1); forced actions replace it.
    forced = None if actions is None else actions[:, RESPONSE::STEPS_PER_TRIAL]
    uniform = torch.rand(ntrials, batch, device=device, generator=generator) if actions is None else None
    run_trials = _trials_kernel if kernels.use_kernel(net) else _trials_torch
    rates, response, plastic, final_trace, snapshots = run_trials(
        net, plastic, drive, stimulus_rates, correct_action, forced, uniform, snapshot_trials,
        reset_plastic_every_trial)

    reward = _reward(response, correct_action)
    inputs = inputs.clone()
    inputs[:, :, 2] += feedback_inputs(reward.flatten(), response.flatten()).reshape(batch, ntrials, -1)
    logits = net.h2o(rates).reshape(batch, -1, 2)
    if actions is None:
        actions = sample_actions(logits, generator)
        actions.view(batch, ntrials, STEPS_PER_TRIAL)[:, :, RESPONSE] = response
    rewards = torch.zeros(batch, ntrials, STEPS_PER_TRIAL, device=device)
    rewards[:, :, RESPONSE] = reward
    return EpisodeRecord(
        pairs=trials.pairs, inputs=inputs.reshape(batch, -1, inputs.shape[-1]), actions=actions,
        rewards=rewards.reshape(batch, -1), correct=response == correct_action,
        logits=logits, values=net.h2v(rates).reshape(batch, -1),
        modulation=net.modulation(rates).reshape(batch, -1), rates=rates.reshape(batch, -1, n),
        final_state=NetworkState(rates[:, -1, 3], final_trace, plastic), snapshots=snapshots)


def _sample_response(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    return (uniform < torch.softmax(logits.detach(), -1)[:, 1]).long()


def _snapshot(start: torch.Tensor, middle: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """P after each step of a trial, float16 (batch, 4, n, n): steps 0 and 1 leave P unchanged."""
    snapshot = torch.empty(start.shape[0], STEPS_PER_TRIAL, *start.shape[1:], dtype=torch.float16,
                           device=start.device)
    for step, weights in enumerate((start, start, middle, end)):
        snapshot[:, step].copy_(weights.detach())
    return snapshot


def _trials_kernel(net, plastic, drive, stimulus_rates, correct_action, forced, uniform, snapshot_trials,
                   reset=False):
    """All trials through `kernels.PlasticTrial`, one call per trial (the response is chosen inside)."""
    batch, ntrials, _, n = drive.shape
    # Step 2's drive for either response (the reward follows from the response and the correct action).
    candidates = torch.arange(2, device=drive.device).expand(batch, ntrials, 2)
    feedback = feedback_inputs(_reward(candidates, correct_action.unsqueeze(-1)).flatten(), candidates.flatten())
    step2 = drive[:, :, 2:3] + F.linear(feedback.reshape(batch, ntrials, 2, -1), net.i2h.weight)
    # Per-trial tensors, unbound along the trial (the backward of unbind is one stack, not one scatter
    # per trial).
    step2 = step2.transpose(0, 1).contiguous().unbind(0)  # ntrials x (batch, 2, n)
    step0 = stimulus_rates.transpose(0, 1).contiguous().unbind(0)  # ntrials x (batch, n)
    step1 = drive[:, :, 1].transpose(0, 1).contiguous().unbind(0)
    step3 = drive[:, :, 3].transpose(0, 1).contiguous().unbind(0)
    forced = [None] * ntrials if forced is None else forced.t().long().contiguous().unbind(0)
    uniform = [None] * ntrials if uniform is None else uniform.unbind(0)
    w, alpha = net.w.contiguous(), net.alpha.expand(n, n).contiguous()
    wout, bout = net.h2o.weight.detach().contiguous(), net.h2o.bias.detach().contiguous()
    rates, responses, snapshots = [], [], {}
    plastic = plastic.contiguous()
    for t in range(ntrials):
        if reset:
            plastic = torch.zeros_like(plastic)
        start = plastic
        r1, r2, r3, plastic, response, middle, trace = kernels.PlasticTrial.apply(
            plastic, step0[t], step1[t], step2[t], step3[t], w, alpha, net.etaet, net.DAmult,
            net.h2DA.weight, net.h2DA.bias, wout, bout, forced[t], uniform[t], t in snapshot_trials,
            t == ntrials - 1)
        if t in snapshot_trials:
            snapshots[t] = _snapshot(start, middle, plastic)
        rates.append(torch.stack([step0[t], r1, r2, r3], 1))
        responses.append(response)
    rates = torch.stack(rates, 1)  # (batch, ntrials, 4, n)
    return rates, torch.stack(responses, 1), plastic, trace, snapshots


def _trials_torch(net, plastic, drive, stimulus_rates, correct_action, forced, uniform, snapshot_trials,
                  reset=False):
    """All trials in PyTorch (any device): W + alpha P is formed twice per trial, not four times."""
    ntrials = drive.shape[1]
    eta = net.etaet
    rates, responses, snapshots = [], [], {}
    for t in range(ntrials):
        if reset:
            plastic = torch.zeros_like(plastic)
        r0 = stimulus_rates[:, t]
        weights = net.effective_weights(plastic)
        r1 = torch.tanh(drive[:, t, 1] + _matvec(weights, r0))
        action = _sample_response(net.h2o(r1), uniform[t]) if forced is None else forced[:, t]
        feedback = feedback_inputs(_reward(action, correct_action[:, t]), action)
        r2 = torch.tanh(drive[:, t, 2] + F.linear(feedback, net.i2h.weight) + _matvec(weights, r1))
        trace = eta * net.hebbian(r1, r0)
        start = plastic
        plastic = torch.clamp(torch.addcmul(plastic, net.modulation(r2)[:, None, None], trace),
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        middle = plastic
        weights = net.effective_weights(plastic)
        r3 = torch.tanh(drive[:, t, 3] + _matvec(weights, r2))
        trace = torch.lerp(trace, net.hebbian(r2, r1), eta)
        plastic = torch.clamp(torch.addcmul(plastic, net.modulation(r3)[:, None, None], trace),
                              -PLASTIC_CLIP, PLASTIC_CLIP)
        if t in snapshot_trials:
            snapshots[t] = _snapshot(start, middle, plastic)
        rates.append(torch.stack([r0, r1, r2, r3], 1))
        responses.append(action)
    final_trace = torch.lerp(trace, net.hebbian(r3, r2), eta)
    return torch.stack(rates, 1), torch.stack(responses, 1), plastic, final_trace, snapshots


def run_episode_plain(net: PlasticNetwork, trials: Trials, state: NetworkState | None = None,
                      actions: torch.Tensor | None = None, snapshot_trials=(),
                      reset_plastic_every_trial: bool = False, generator: torch.Generator | None = None,
                      action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                      reset_trace_every_trial: bool = True) -> EpisodeRecord:
    """The same episode, one `net.step` at a time over every step (the definition the fast path must equal).

    The options are those of `run_episode`. The reward input (33) of each step is the reward of the step
    before (0 at the first step of the episode): the trial's reward at step 2 and, with an action penalty,
    the penalty at any step following an action 1 (also across trials).
    """
    batch, ntrials = trials.batch, trials.ntrials
    device = net.w.device
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
            logits, value, modulation, state = net.step(step_input, state)
            step = t * STEPS_PER_TRIAL + s
            action = sample_actions(logits, generator) if actions is None else actions[:, step]
            reward = torch.zeros(batch, device=device)
            if s == RESPONSE:
                response = action
                reward = _reward(action, correct_action[:, t])
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
