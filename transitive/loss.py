"""The advantage actor-critic loss of one episode (SPEC section 5)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .episode import EpisodeRecord
from .task import STEPS_PER_TRIAL


@dataclass
class LossWeights:
    discount: float = 0.9  # gamma of the returns
    entropy: float = 0.1  # weight of the sum-of-squares "entropy" term (blossv in the original)
    value: float = 0.1  # weight of the critic's squared advantage
    late_multiplier: float = 3.0  # policy weight of the steps after eplen - 4 * late_trials
    late_trials: int = 10
    plastic_l2: float = 1e-4  # penalty on mean(P_final^2)
    lda: float = 0.0  # L1 penalty on |m(t)| / DAmult, mean over batch, summed over steps, / eplen
    lhl1: float = 0.0  # L1 penalty on mean |r(t)|
    wp: float = 0.0  # penalty for choosing action 1 (mean over batch of its probability, summed, / eplen)
    step3_modulation: float = 0.0  # L1 penalty on |m| at step 3 of each trial
    step3_ratio: float = 0.0  # penalty on mean |m| at step 3 / mean |m| at step 2 (favours the passive solution)
    step3_drive: float = 0.0  # penalty on mean |m| / DAmult at step 3: the modulator's drive, whatever its gain


def discounted_returns(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """R_t = discount * R_{t+1} + reward_t, backwards over (batch, nsteps)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        running = discount * running + rewards[:, t]
        returns[:, t] = running
    return returns


def a2c_loss(record: EpisodeRecord, net=None, weights: LossWeights = LossWeights()) -> torch.Tensor:
    batch, eplen = record.rewards.shape
    advantage = discounted_returns(record.rewards, weights.discount) - record.values
    log_probs = torch.log_softmax(record.logits, -1)
    chosen = log_probs.gather(-1, record.actions.unsqueeze(-1)).squeeze(-1)  # (batch, eplen)
    steps = torch.arange(eplen, device=chosen.device)
    multiplier = torch.where(steps > eplen - STEPS_PER_TRIAL * weights.late_trials, weights.late_multiplier, 1.0)
    policy = -(multiplier * (chosen * advantage.detach()).sum(0)).sum() / batch
    entropy = weights.entropy * (log_probs.exp() ** 2).sum() / batch
    value = (advantage ** 2).sum() / batch
    loss = (policy + entropy + weights.value * value) / eplen
    loss = loss + weights.plastic_l2 * (record.final_state.plastic_weights ** 2).mean()
    if weights.lda:
        loss = loss + weights.lda * (record.modulation.abs() / net.DAmult).sum() / batch / eplen
    if weights.step3_modulation:
        loss = loss + weights.step3_modulation * record.modulation[:, 3::STEPS_PER_TRIAL].abs().sum() / batch / eplen
    if weights.step3_ratio:
        # Scale-free: shrinking m everywhere does not lower it, only a quieter step 3 relative to step 2.
        step2 = record.modulation[:, 2::STEPS_PER_TRIAL].abs().mean()
        step3 = record.modulation[:, 3::STEPS_PER_TRIAL].abs().mean()
        loss = loss + weights.step3_ratio * step3 / (step2 + 1e-3)
    if weights.step3_drive:
        # Dividing by DAmult leaves the gain free: a shared gain cannot be shrunk to silence step 3
        # (and step 2 with it), and a loud step 2 is not rewarded either.
        loss = loss + weights.step3_drive * record.modulation[:, 3::STEPS_PER_TRIAL].abs().mean() / net.DAmult.abs().squeeze()
    if weights.lhl1:
        loss = loss + weights.lhl1 * record.rates.abs().mean()
    if weights.wp:
        loss = loss + weights.wp * log_probs[..., 1].exp().sum() / batch / eplen
    return loss
