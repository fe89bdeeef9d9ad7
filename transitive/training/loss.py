"""The advantage actor-critic loss of an episode (see docs/method.md, meta-training), and one training
episode of K members: their episodes in one engine call, every member's loss and the training log's numbers.

`loss_terms` returns every term as it enters the total (weights applied, divided by the episode length
where the original divides), so the terms add up to the loss; `a2c_loss` returns the total only.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from ..model.task import DELAY, FEEDBACK, STEPS_PER_TRIAL
from ..engine.episode import EpisodeRecord, Episodes, run_episodes


@dataclass
class LossWeights:
    discount: float = field(default=0.9, metadata={
        "help": "discount factor of the returns (gr)"})
    entropy: float = field(default=0.1, metadata={
        "help": "weight of the sum-of-squares stand-in for the entropy bonus (bent)"})
    value: float = field(default=0.1, metadata={
        "help": "weight of the critic's squared advantage (blossv)"})
    late_multiplier: float = field(default=3.0, metadata={
        "help": "policy-loss multiplier of the late steps: those after the first step of the last late_trials "
                "trials (step t > eplen - 4 * late_trials, strictly, as in the original: the first step of "
                "those trials keeps 1) (testlmult)"})
    late_trials: int = field(default=10, metadata={
        "help": "the late multiplier starts after the first step of this many final trials (nbtesttrials in "
                "the original's rule)"})
    plastic_l2: float = field(default=1e-4, metadata={
        "help": "penalty on the mean square of the final plastic weights, not divided by episode length (lpw)"})
    modulation_l1: float = field(default=0.0, metadata={
        "help": "L1 penalty on |m(t)| / DAmult, summed over steps and batch, divided by episode length (the "
                "original's lda)"})
    rate_l1: float = field(default=0.0, metadata={
        "help": "L1 penalty on the mean |r(t)|, summed over steps, divided by episode length (lhl1)"})
    action1_penalty: float = field(default=0.0, metadata={
        "help": "subtracted from the reward of every step at which action 1 is taken, so it enters the returns "
                "and the reward input (wp)"})
    weight_decay: float = field(default=0.0, metadata={
        "help": "L2 weight decay of the Adam optimizer (l2)"})
    delay_modulation_l1: float = field(default=0.0, metadata={
        "help": "L1 penalty on |m(t)| at the delay step (step 4) of each trial, mean over batch"})
    delay_feedback_ratio: float = field(default=0.0, metadata={
        "help": "penalty on mean |m| at the delay step (4) over mean |m| at the feedback step (3) (favours the "
                "passive solution)"})
    delay_drive: float = field(default=0.0, metadata={
        "help": "penalty on mean |m| / DAmult at the delay step (4): the modulator's drive, whatever its gain"})

    # The names of earlier versions (and of the original's code), for checkpoints and options.
    OLD_NAMES = {"lda": "modulation_l1", "lhl1": "rate_l1", "wp": "action1_penalty", "l2": "weight_decay",
                 "step3_modulation": "delay_modulation_l1", "step3_ratio": "delay_feedback_ratio",
                 "step3_drive": "delay_drive"}


# The optional terms of `loss_terms` (present when their weight is nonzero), with the weight of each.
OPTIONAL_TERMS = {"modulation_penalty": "modulation_l1", "rate_penalty": "rate_l1",
                  "delay_modulation": "delay_modulation_l1", "delay_ratio": "delay_feedback_ratio",
                  "delay_drive": "delay_drive"}


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """R_t = reward_t + discount * R_{t+1} over the last axis (steps), for any leading axes (batch, or
    members and batch): one product with the matrix of discount powers, R = rewards @ D with
    D[s, t] = discount ** (s - t) for s >= t, else 0."""
    return rewards @ _discount_matrix(rewards.shape[-1], float(discount), rewards.dtype, rewards.device)


@functools.lru_cache(maxsize=16)
def _discount_matrix(nsteps: int, discount: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(nsteps, nsteps): discount ** (s - t) at row s, column t when s >= t, else 0 (powers in float64, then
    rounded once to `dtype`). Made once per length, discount and device."""
    steps = torch.arange(nsteps, dtype=torch.float64)
    lag = steps[:, None] - steps[None, :]
    powers = torch.where(lag >= 0, torch.tensor(discount, dtype=torch.float64) ** lag.clamp(min=0), 0.0)
    return powers.to(dtype=dtype, device=device)


def loss_terms(record: EpisodeRecord, weights: LossWeights = LossWeights(), gain=None) -> dict:
    """The loss's terms and their sum under "loss". Always present: policy, entropy, value, plastic_penalty;
    the optional penalties appear only when their weight is nonzero. `gain`, the modulation gain DAmult
    (`net.modulation_gain`), is needed by the modulation_l1 and delay_drive penalties only.

    A record of one network gives scalar terms. A record of K networks stacked along a leading member axis
    (`run_episodes(..., stacked=True)`, with `gain` (K, 1, 1): `gains(nets)`) gives each term as (K,):
    every network's own loss, computed for all at once."""
    batch, eplen = record.rewards.shape[-2:]
    advantage = discounted_returns(record.rewards, weights.discount) - record.values
    log_probs = torch.log_softmax(record.logits, -1)
    chosen = log_probs.gather(-1, record.actions.unsqueeze(-1)).squeeze(-1)  # (..., batch, eplen)
    steps = torch.arange(eplen, device=chosen.device)
    multiplier = torch.where(steps > eplen - STEPS_PER_TRIAL * weights.late_trials, weights.late_multiplier, 1.0)
    modulation = record.modulation
    episode, matrices = (-2, -1), (-3, -2, -1)  # the axes of one network's (batch, steps) and (batch, n, n)
    terms = {
        "policy": -(multiplier * (chosen * advantage.detach()).sum(-2)).sum(-1) / batch / eplen,
        "entropy": weights.entropy * (log_probs.exp() ** 2).sum(matrices) / batch / eplen,
        "value": weights.value * (advantage ** 2).sum(episode) / batch / eplen,
        "plastic_penalty": weights.plastic_l2 * (record.final_state.plastic_weights ** 2).mean(matrices),
    }
    if weights.modulation_l1:
        # Summed over the batch, not averaged (as in the original); 1e-8 guards a zero gain.
        terms["modulation_penalty"] = weights.modulation_l1 * (modulation.abs() / (1e-8 + gain)).sum(episode) / eplen
    if weights.rate_l1:
        terms["rate_penalty"] = weights.rate_l1 * record.rates.abs().mean(matrices)
    delay = modulation[..., DELAY::STEPS_PER_TRIAL].abs()
    if weights.delay_modulation_l1:
        terms["delay_modulation"] = weights.delay_modulation_l1 * delay.sum(episode) / batch / eplen
    if weights.delay_feedback_ratio:
        # Scale-free: shrinking m everywhere does not lower it, only a quieter delay step relative to the
        # feedback step.
        feedback = modulation[..., FEEDBACK::STEPS_PER_TRIAL].abs()
        terms["delay_ratio"] = weights.delay_feedback_ratio * delay.mean(episode) / (feedback.mean(episode) + 1e-3)
    if weights.delay_drive:
        # Dividing by DAmult leaves the gain free: a shared gain cannot be shrunk to silence the delay step
        # (and the feedback step with it), and a loud feedback step is not rewarded either.
        terms["delay_drive"] = weights.delay_drive * delay.mean(episode) / gain.abs().reshape(-1).squeeze()
    terms["loss"] = sum(terms.values())
    return terms


def a2c_loss(record: EpisodeRecord, weights: LossWeights = LossWeights(), gain=None) -> torch.Tensor:
    """The total loss of one episode (the sum of `loss_terms`)."""
    return loss_terms(record, weights, gain)["loss"]


def gains(nets) -> torch.Tensor:
    """The modulation gains DAmult of K networks, (K, 1, 1): the `gain` of a stacked record's loss."""
    return torch.stack([net.modulation_gain.reshape(()) for net in nets]).reshape(-1, 1, 1)


# ---------------------------------------------------------------------------------------------------------
# One training episode of K members.

# Per-member numbers of an episode (in this order), for the training log.
STATS = ("test_reward", "percent_correct", "test_accuracy", "loss", "policy_loss", "value_loss", "entropy_term",
         "plastic_penalty", "modulation_feedback", "modulation_delay", *OPTIONAL_TERMS)


def episode_stats(record, terms: dict, test_trials: int) -> torch.Tensor:
    """The numbers of STATS of an episode, as one tensor (no host synchronisation): (len(STATS),) for one
    network's record, (K, len(STATS)) for a stacked record of K networks."""
    episode = (-2, -1)
    test_reward = record.rewards[..., -STEPS_PER_TRIAL * test_trials:].sum(-1).mean(-1)
    zero = torch.zeros_like(test_reward)
    return torch.stack([v.detach().float().expand_as(test_reward) for v in (
        test_reward, 50 + 5 * test_reward, record.correct[..., -test_trials:].float().mean(episode), terms["loss"],
        terms["policy"], terms["value"], terms["entropy"], terms["plastic_penalty"],
        record.modulation[..., FEEDBACK::STEPS_PER_TRIAL].abs().mean(episode),
        record.modulation[..., DELAY::STEPS_PER_TRIAL].abs().mean(episode),
        *(terms.get(name, zero) for name in OPTIONAL_TERMS))], -1)


def episode_loss(nets, episodes: Episodes, config):
    """The episodes of the members' networks `nets` (one engine call, the options of the TrainConfig
    `config`) and their losses, computed for all members at once (one stacked record: the operations do not
    grow with the number of members). Returns (summed loss, STATS per member (K, len(STATS)), final rates,
    final trace, final plastic weights (stacked, detached))."""
    record = run_episodes(nets, episodes, action_penalty=config.loss.action1_penalty,
                          reset_rates_every_trial=config.reset_rates_every_trial,
                          reset_trace_every_trial=config.reset_trace_every_trial, stacked=True)
    terms = loss_terms(record, config.loss, gains(nets))
    stats = episode_stats(record, terms, config.test_trials)
    final = record.final_state
    return (terms["loss"].sum(), stats, final.rates.detach(), final.trace.detach(), final.plastic_weights.detach())
