"""The transitive-inference task as data (docs/method.md, sections 2 and 3).

An episode is described by `Trials`: for every batch element and trial, the ordered pair of item indices
shown, and the two item vectors actually presented (normally the items of the pair; in continual training
sometimes the same indices from an earlier episode's items). Schedules (which pairs in which trial) are
plain tensors built by the functions below; the episode runner knows nothing about experiments.

Item k has rank k: item 0 ("A") is the highest. The correct response is action 1 when item 1 has the lower
index, action 0 otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .item_draws import draw_item_lists

CUE_SIZE = 15
INPUT_SIZE = 37
STEPS_PER_TRIAL = 4
LETTERS = "ABCDEFGHIJKLMNOP"  # item names; a list has at most this many items
ITEMS = 8  # the list of the evaluation experiments: A to H

# Input layout (docs/method.md, section 2).
ITEM1 = slice(0, 15)
ITEM2 = slice(15, 30)
GO = 30
BIAS = 31
TIME = 32
REWARD = 33
ACTION = slice(35, 37)  # one-hot of the action chosen at step 1, shown at step 2

# Trial steps (the paper numbers them 1..4).
STIMULUS, RESPONSE, FEEDBACK, DELAY = range(4)
STEP_NAMES = ("stimulus", "response", "feedback", "delay")  # the paper's steps 1-4


@dataclass
class Trials:
    pairs: torch.Tensor  # (batch, ntrials, 2) long: item indices (item 1, item 2)
    stimuli: torch.Tensor  # (batch, ntrials, 2, CUE_SIZE) float: the vectors shown

    @property
    def batch(self) -> int:
        return self.pairs.shape[0]

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    @property
    def correct_action(self) -> torch.Tensor:
        """(batch, ntrials) long: 1 when item 1 ranks higher (lower index)."""
        return (self.pairs[..., 0] < self.pairs[..., 1]).long()

    def to(self, device) -> "Trials":
        return Trials(self.pairs.to(device), self.stimuli.to(device))


def draw_items(batch: int, nbcues: int, cue_size: int = CUE_SIZE, max_agreement: float = 0.66,
               device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random +-1 item vectors (batch, nbcues, cue_size); a candidate is redrawn while it agrees with an
    earlier item of the same list in more than `max_agreement` of positions (`transitive.model.item_draws`:
    the numbers of drawing by rounds, with tensor operations and few host reads)."""
    return draw_item_lists(batch, [nbcues], [generator], cue_size, max_agreement, device)[0]


def present(items: torch.Tensor, pairs: torch.Tensor) -> Trials:
    """Trials showing, for each batch element, its own items at the given pairs."""
    batch, ntrials, _ = pairs.shape
    index = pairs.reshape(batch, -1, 1).expand(-1, -1, items.shape[-1])
    stimuli = torch.gather(items, 1, index).reshape(batch, ntrials, 2, items.shape[-1])
    return Trials(pairs, stimuli)


# ---------------------------------------------------------------------------------------------------------
# Pair schedules: functions returning (batch, ntrials, 2) long tensors.

def adjacent_pairs(batch: int, ntrials: int, low: int, high: int, device=None, generator=None) -> torch.Tensor:
    """Uniform over ordered adjacent pairs of items low..high (inclusive)."""
    first = torch.randint(low, high, (batch, ntrials), device=device, generator=generator)
    pair = torch.stack([first, first + 1], -1)
    flip = torch.rand(batch, ntrials, device=device, generator=generator) < 0.5
    return torch.where(flip.unsqueeze(-1), pair.flip(-1), pair)


def any_pairs(batch: int, ntrials: int, nbcues: int, device=None, generator=None) -> torch.Tensor:
    """Uniform over ordered pairs of two different items among 0..nbcues-1."""
    first = torch.randint(0, nbcues, (batch, ntrials), device=device, generator=generator)
    second = (first + torch.randint(1, nbcues, (batch, ntrials), device=device, generator=generator)) % nbcues
    return torch.stack([first, second], -1)


def fixed_pairs(batch: int, pairs, device=None) -> torch.Tensor:
    """The same ordered pairs in every batch element, one per trial."""
    return torch.tensor(pairs, device=device).reshape(1, -1, 2).expand(batch, -1, -1).clone()


def random_order(pairs: torch.Tensor, generator=None) -> torch.Tensor:
    """Each trial's pair shown in either order with probability 1/2."""
    flip = torch.rand(pairs.shape[:2], device=pairs.device, generator=generator) < 0.5
    return torch.where(flip.unsqueeze(-1), pairs.flip(-1), pairs)


def standard_schedule(batch: int, nbcues: int, n_learning: int = 20, n_test: int = 10, device=None,
                      generator=None):
    """Learning trials of adjacent pairs, then test trials of any pair."""
    return torch.cat([adjacent_pairs(batch, n_learning, 0, nbcues - 1, device, generator),
                      any_pairs(batch, n_test, nbcues, device, generator)], 1)


# ---------------------------------------------------------------------------------------------------------
# Input encoding.

def base_inputs(trials: Trials) -> torch.Tensor:
    """(batch, ntrials, 4, 37) input vectors, except the reward and action feedback of step 2, which depend
    on the response and are added while the episode runs (see `feedback_inputs`)."""
    batch, ntrials = trials.batch, trials.ntrials
    inputs = torch.zeros(batch, ntrials, STEPS_PER_TRIAL, INPUT_SIZE, device=trials.stimuli.device)
    inputs[:, :, STIMULUS, ITEM1] = trials.stimuli[:, :, 0]
    inputs[:, :, STIMULUS, ITEM2] = trials.stimuli[:, :, 1]
    inputs[:, :, RESPONSE, GO] = 1.0
    inputs[:, :, :, BIAS] = 1.0
    nsteps = ntrials * STEPS_PER_TRIAL
    inputs[:, :, :, TIME] = (torch.arange(nsteps, device=inputs.device).float() / nsteps).reshape(ntrials, 4)
    return inputs


def feedback_inputs(reward: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """(batch, 37): the part of step 2's input that reports the reward and the action taken at step 1."""
    inputs = torch.zeros(reward.shape[0], INPUT_SIZE, device=reward.device)
    inputs[:, REWARD] = reward
    inputs[:, ACTION] = torch.nn.functional.one_hot(action, 2).float()
    return inputs


def shows(pairs: torch.Tensor, pair) -> torch.Tensor:
    """(...) bool: each ordered pair of `pairs` (..., 2) is `pair` in either order."""
    low, high = sorted(int(k) for k in pair)
    return (pairs.min(-1).values == low) & (pairs.max(-1).values == high)
