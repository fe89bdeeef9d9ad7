"""Drawing the items of many lists at once, each from its own generator, exactly as drawing each list alone
round by round (`items_by_rounds`, the definition) would: the same numbers in the same order, and every
generator left where that leaves it.

By rounds, item k's first candidates take the next `batch` rows of random signs, then the rejected batch
elements (in batch order) the next rows, and so on until no element is rejected; a candidate is rejected while
it agrees with an earlier item of its list in more than `max_agreement` of the positions. Here every round of
every list is one step of tensor operations on all lists together (`_Rounds`), whatever the number of lists:

- on the CPU a generator's rows are one stream whatever the calls (the tests check it), so each list draws a
  pool of rows at once and takes its rows from the pool in order; at the end its generator is set back and
  advanced by exactly the rows taken. The host reads the lists' progress once every 16 rounds (3 or 4 times
  for 8 items at batch 32: about 50 rounds).
- on a GPU the numbers of a call depend on the calls themselves (its position in the generator's counter and
  the call's size), so no pool can give the rounds' numbers. There each list also takes its rows from a pool,
  drawn from its generator, which then stays where the pool leaves it: a stream of its own (deterministic for
  a seed, independent of the other lists, with the same distribution), and the host reads the progress once
  every 16 rounds, not once per round. `_lists_by_exact_rounds` keeps the rounds' own numbers on a GPU, at one
  host read per round (`draw_item_stack(..., exact=True)`).
"""
from __future__ import annotations

import functools

import torch

CHUNK = 16  # rounds between two reads of the progress (pools)


def items_by_rounds(batch: int, nbcues: int, cue_size: int, max_agreement: float = 0.66, device=None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, nbcues, cue_size) +-1: one list drawn alone, round by round (the definition)."""
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


def draw_item_lists(batch: int, nbcues, generators, cue_size: int, max_agreement: float = 0.66,
                    device=None) -> list[torch.Tensor]:
    """One list of items (batch, nbcues[m], cue_size) +-1 float from each generator m (None: the device's
    default generator), all drawn together, each exactly as `items_by_rounds` would draw it alone."""
    stack = draw_item_stack(batch, nbcues, generators, cue_size, max_agreement, device)
    return [stack[m, :, :int(n)].clone() for m, n in enumerate(nbcues)]


def draw_item_stack(batch: int, nbcues, generators, cue_size: int, max_agreement: float = 0.66,
                    device=None, exact: bool = False) -> torch.Tensor:
    """`draw_item_lists` as one tensor (K, batch, longest list, cue_size): list m's items, then zeros. On a GPU
    the lists come from pools (streams of their own, see the module docstring) unless `exact`."""
    device = torch.device(device if device is not None else "cpu")
    generators = [_default_generator(device) if g is None else g for g in generators]
    nbcues = [int(n) for n in nbcues]
    if device.type == "cpu":
        rounds = _lists_from_pools(batch, nbcues, generators, cue_size, max_agreement, device, rewind=True)
    elif exact:
        rounds = _lists_by_exact_rounds(batch, nbcues, generators, cue_size, max_agreement, device)
    else:
        rounds = _lists_from_pools(batch, nbcues, generators, cue_size, max_agreement, device, rewind=False)
    return rounds.items[:, :, :max(nbcues + [0])].float()


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator


@functools.lru_cache(maxsize=8)
def _most_agreeing_signs(cue_size: int, max_agreement: float) -> int:
    """The largest number of agreeing signs that `items_by_rounds` accepts: its test, the float32 mean of the
    agreements > max_agreement, evaluated by the same operation for every count."""
    counts = torch.arange(cue_size + 1)
    agreements = (torch.arange(cue_size)[None, :] < counts[:, None]).float()  # row c: c agreeing positions
    rejected = (agreements.mean(-1) > max_agreement).tolist()
    accepted = rejected.index(True) if True in rejected else cue_size + 1
    if any(not r for r in rejected[accepted:]):
        raise ValueError(f"max_agreement {max_agreement}: the test is not monotone in the count")
    return accepted - 1


class _Rounds:
    """K lists drawn by rounds together. Each list has its current item (`item`), its batch elements'
    candidates for it, which elements still need a new candidate (`todo`) and whether it is still drawing
    (`pending`). The items are int8 +-1 with 0 where no item is accepted yet (an extra slot past the longest
    list absorbs the writes of complete lists), so a candidate is compared with every slot and only accepted
    items can agree. Every tensor keeps the four axes (list, batch element, slot, sign), so that the
    operations broadcast without reshaping: about 25 operations per round for all lists."""

    def __init__(self, batch: int, nbcues: list[int], cue_size: int, max_agreement: float, device):
        members, longest = len(nbcues), max(nbcues + [0])
        self.limit = _most_agreeing_signs(cue_size, float(max_agreement))
        self.nbcues = torch.tensor(nbcues, device=device).view(members, 1, 1, 1)
        self.items = torch.zeros(members, batch, longest + 1, cue_size, dtype=torch.int8, device=device)
        self.candidates = torch.zeros(members, batch, 1, cue_size, dtype=torch.int8, device=device)
        self.item = torch.zeros(members, 1, 1, 1, dtype=torch.long, device=device)
        self.pending = self.item < self.nbcues
        self.todo = self.pending.expand(members, batch, 1, 1).clone()  # (K, batch, 1, 1) bool

    def step(self, rows: torch.Tensor) -> None:
        """One round of every list: `rows` (K, batch, 1, cue_size) int8 +-1 are the new candidates of the todo
        elements; the other elements keep theirs."""
        todo = self.todo
        self.candidates = torch.where(todo, rows, self.candidates)
        agreeing = (self.items == self.candidates).sum(-1, keepdim=True)  # (K, batch, slots, 1)
        todo_next = (agreeing > self.limit).any(2, keepdim=True) & todo
        finished = todo.any(1, keepdim=True) > todo_next.any(1, keepdim=True)  # every element accepted now
        slot = self.item.expand(-1, self.items.shape[1], 1, self.items.shape[3])
        self.items.scatter_(2, slot, self.candidates * finished)  # 0 unless finished
        self.item = self.item + finished
        self.pending = self.item < self.nbcues
        self.todo = todo_next | (finished & self.pending)

    @property
    def done(self) -> torch.Tensor:
        """(K,) bool: the list is complete."""
        return ~self.pending.view(-1)


def _pool_rows(batch: int, nbcues: int) -> int:
    """Rows of random signs to draw for a list of `nbcues` items, with margin: item k is accepted with
    probability about (1 - 0.151) ** k (10 or more agreeing signs of 15 against an earlier item: 0.151)."""
    expected = sum(1.18 ** k for k in range(nbcues))
    return int(1.5 * expected * batch) + 64


def _lists_from_pools(batch, nbcues, generators, cue_size, max_agreement, device, rewind: bool) -> _Rounds:
    """The lists from pools of rows; `rewind`: each generator is then left exactly where drawing by rounds
    leaves it (the CPU), else where its pools leave it (a GPU)."""
    margin = 1
    while True:
        states = [g.get_state() for g in generators] if rewind else None
        sizes = [margin * _pool_rows(batch, n) for n in nbcues]
        pools = [torch.randint(0, 2, (size, cue_size), generator=g, dtype=torch.int8, device=device)
                 for size, g in zip(sizes, generators)]
        longest = max(sizes)
        if len(pools) > 1:
            pools = [torch.nn.functional.pad(p, (0, 0, 0, longest - p.shape[0])) for p in pools]
        pool = (torch.stack(pools) * 2 - 1)[:, :, None]  # (K, rows, 1, cue_size) int8 +-1
        rounds = _Rounds(batch, nbcues, cue_size, max_agreement, pool.device)
        before = torch.full((len(nbcues), 1, 1, 1), -1, dtype=torch.long, device=device)  # the row before the next
        while True:
            for _ in range(CHUNK):
                index = (before + rounds.todo.cumsum(1)).clamp_(0, longest - 1).expand(-1, -1, 1, cue_size)
                before = before + rounds.todo.sum(1, keepdim=True)
                rounds.step(pool.gather(1, index))
            progress = torch.cat([rounds.done.long(), before.view(-1) + 1]).tolist()  # the host's only read
            done, counts = progress[:len(nbcues)], progress[len(nbcues):]
            if all(done) or any(c > s for c, s in zip(counts, sizes)):
                break
        if all(c <= s for c, s in zip(counts, sizes)):
            break
        if rewind:  # a pool ran out (rare): again with larger pools (on a GPU, from where the pools left off)
            for g, state in zip(generators, states):
                g.set_state(state)
        margin *= 2
    if rewind:
        for g, state, count in zip(generators, states, counts):  # each generator advanced by its rows taken
            g.set_state(state)
            torch.randint(0, 2, (count, cue_size), generator=g, dtype=torch.int8)
    return rounds


def _lists_by_exact_rounds(batch, nbcues, generators, cue_size, max_agreement, device) -> _Rounds:
    rounds = _Rounds(batch, nbcues, cue_size, max_agreement, device)
    block = torch.zeros(len(nbcues), batch, 1, cue_size, dtype=torch.int8, device=device)
    while True:
        counts = rounds.todo.sum(1).view(-1).tolist()  # one host read per round, for all lists
        if not any(counts):
            return rounds
        for m, (count, g) in enumerate(zip(counts, generators)):
            if count:
                block[m, :count, 0] = torch.randint(0, 2, (count, cue_size), device=device, generator=g)
        rank = (rounds.todo.cumsum(1) - 1).clamp_(min=0).expand(-1, -1, 1, cue_size)
        rounds.step(block.gather(1, rank) * 2 - 1)
