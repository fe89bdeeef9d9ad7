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
    earlier item of the same list in more than `max_agreement` of positions (see `draw_item_lists`)."""
    return draw_item_lists(batch, [nbcues], [generator], cue_size, max_agreement, device)[0]


def draw_item_lists(batch: int, nbcues, generators, cue_size: int = CUE_SIZE, max_agreement: float = 0.66,
                    device=None) -> list[torch.Tensor]:
    """One list of items (batch, nbcues[m], cue_size) from each generator m (None: the default one), all
    lists at once: each generator gives exactly the numbers, in the order, of drawing its list alone by
    rounds (`items_by_rounds`), and is left where that would leave it.

    By rounds, item k's first candidates take the next batch rows of random signs, then the rejected
    elements (in batch order) the next rows, and so on until none is rejected. Here every round of every list
    is one step of tensor operations on all lists together, without the host. On the CPU, a generator's
    rows are one stream whatever the calls (checked by the tests): each list draws a pool of rows at once,
    takes its rows from the pool in order, and at the end its generator is set back and advanced by exactly
    the rows taken; the host reads the lists' progress once every 16 rounds (3 or 4 times for 8 items at
    batch 32). On a GPU the numbers of a call depend on the calls themselves, so each round draws, for each
    list, the exact number of rows rejected: one host read per round for all lists together."""
    device = torch.device(device if device is not None else "cpu")
    generators = [_default_generator(device) if g is None else g for g in generators]
    nbcues = [int(n) for n in nbcues]
    if device.type == "cpu":
        return _lists_from_pools(batch, nbcues, generators, cue_size, max_agreement)
    return _lists_by_exact_rounds(batch, nbcues, generators, cue_size, max_agreement, device)


def items_by_rounds(batch: int, nbcues: int, cue_size: int = CUE_SIZE, max_agreement: float = 0.66,
                    device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """`draw_items` as a plain loop over items and rounds (the definition `draw_item_lists` follows)."""
    items = torch.empty(batch, nbcues, cue_size, device=device)
    for k in range(nbcues):
        todo = torch.ones(batch, dtype=torch.bool, device=device)
        while True:
            count = int(todo.sum())
            candidates = torch.randint(0, 2, (count, cue_size), device=device, generator=generator).float() * 2 - 1
            items[todo, k] = candidates
            if k == 0:
                break
            agreement = (items[:, k:k + 1] == items[:, :k]).float().mean(-1)  # (batch, k)
            todo = (agreement > max_agreement).any(-1)
            if not todo.any():
                break
    return items


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


class _Rounds:
    """The state of drawing K lists by rounds, all at once: each list's current item k, its candidates, which
    batch elements still need a new candidate (todo) and whether the list is complete (done)."""

    def __init__(self, batch: int, nbcues: list[int], cue_size: int, max_agreement: float, device):
        members, longest = len(nbcues), max(max(nbcues), 1)
        self.max_agreement = max_agreement
        self.nbcues = torch.tensor(nbcues, device=device)
        self.items = torch.zeros(members, batch, longest, cue_size, device=device)
        self.candidates = torch.zeros(members, batch, cue_size, device=device)
        self.item = torch.zeros(members, dtype=torch.long, device=device)
        self.done = self.nbcues == 0
        self.todo = (~self.done)[:, None].expand(members, batch).clone()
        self.positions = torch.arange(longest, device=device)

    def step(self, rows: torch.Tensor) -> None:
        """One round of every list: `rows` (K, batch, cue_size) +-1 are the new candidates of the todo
        elements; the others keep theirs."""
        members, batch, longest, cue_size = self.items.shape
        self.candidates = torch.where(self.todo[..., None], rows, self.candidates)
        slot = self.item.clamp(max=longest - 1).view(members, 1, 1, 1).expand(members, batch, 1, cue_size)
        self.items.scatter_(2, slot, self.candidates[:, :, None])
        agreement = (self.items == self.candidates[:, :, None]).float().mean(-1)  # (K, batch, items)
        earlier = self.positions < self.item[:, None, None]
        todo = ((agreement > self.max_agreement) & earlier).any(-1) & ~self.done[:, None]
        finished = ~todo.any(1) & ~self.done
        self.item = self.item + finished
        self.done = self.item >= self.nbcues
        self.todo = todo | (finished & ~self.done)[:, None]

    def lists(self, nbcues: list[int]) -> list[torch.Tensor]:
        return [self.items[m, :, :n].clone() for m, n in enumerate(nbcues)]


def _pool_rows(batch: int, nbcues: int) -> int:
    """Rows of random signs a list of `nbcues` items takes, with margin: item k is accepted with probability
    about (1 - 0.151) ** k (10 or more agreeing signs of 15, 0.151, against each earlier item)."""
    expected = sum(1.18 ** k for k in range(nbcues))
    return int(1.5 * expected * batch) + 64


def _lists_from_pools(batch, nbcues, generators, cue_size, max_agreement) -> list[torch.Tensor]:
    margin = 1
    while True:
        states = [g.get_state() for g in generators]
        sizes = [margin * _pool_rows(batch, n) for n in nbcues]
        pools = [torch.randint(0, 2, (size, cue_size), generator=g) for size, g in zip(sizes, generators)]
        longest = max(sizes)
        pool = torch.stack([torch.nn.functional.pad(p, (0, 0, 0, longest - p.shape[0])) for p in pools]
                           if len(pools) > 1 else pools).float() * 2 - 1  # (K, rows, cue_size)
        rounds = _Rounds(batch, nbcues, cue_size, max_agreement, pool.device)
        taken = torch.zeros(len(nbcues), dtype=torch.long)
        while True:
            for _ in range(16):
                rank = rounds.todo.cumsum(1) - 1
                index = (taken[:, None] + rank).clamp(0, longest - 1)[..., None].expand(-1, -1, cue_size)
                taken = taken + rounds.todo.sum(1)
                rounds.step(pool.gather(1, index))
            progress = torch.cat([rounds.done.long(), taken]).tolist()  # the host's only read
            done, counts = progress[:len(nbcues)], progress[len(nbcues):]
            if all(done) or any(c > s for c, s in zip(counts, sizes)):
                break
        if all(c <= s for c, s in zip(counts, sizes)):
            break
        for g, state in zip(generators, states):  # a pool ran out (rare): again with larger pools
            g.set_state(state)
        margin *= 2
    for g, state, count in zip(generators, states, counts):  # leave each generator after its rows taken
        g.set_state(state)
        torch.randint(0, 2, (count, cue_size), generator=g)
    return rounds.lists(nbcues)


def _lists_by_exact_rounds(batch, nbcues, generators, cue_size, max_agreement, device) -> list[torch.Tensor]:
    rounds = _Rounds(batch, nbcues, cue_size, max_agreement, device)
    block = torch.zeros(len(nbcues), batch, cue_size, dtype=torch.long, device=device)
    while True:
        counts = rounds.todo.sum(1).tolist()  # one host read per round, for all lists
        if not any(counts):
            return rounds.lists(nbcues)
        for m, (count, g) in enumerate(zip(counts, generators)):
            if count:
                block[m, :count] = torch.randint(0, 2, (count, cue_size), device=device, generator=g)
        rank = (rounds.todo.cumsum(1) - 1).clamp(min=0)[..., None].expand(-1, -1, cue_size)
        rounds.step(block.gather(1, rank).float() * 2 - 1)


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
