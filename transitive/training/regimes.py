"""The two training regimes as task code: which trials each meta-training episode shows, and when the network
starts afresh (docs/method.md, section 5).

- simple: every episode draws a list length in min_items..max_items, new items and a standard schedule,
  and the network starts from a fresh state;
- continual: the list length, the kept items and the network's state carry over between resets (every
  `resets_every` episodes); each episode draws new items and keeps them; in each test trial, each batch
  element shows its pair with the items of a random earlier episode since the reset, with probability
  `old_items_probability`.

Every draw comes from the run's generator, in a fixed order (list length at a reset, items, pairs, old
items), so a run is the same whether it is trained alone, in a population or resumed from a checkpoint.
`draw_trials` draws the trials of several runs at once (each from its own generator, in that same order):
one host read for the list lengths at a reset and a few for the items, whatever the number of runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..model.item_draws import draw_item_stack
from ..model.task import CUE_SIZE, Trials


@dataclass
class Curriculum:
    """The regime's state between episodes: the list length and the items kept since the last reset."""

    regime: str = "continual"
    batch: int = 32
    min_items: int = 4
    max_items: int = 8
    learning_trials: int = 20
    test_trials: int = 10
    resets_every: int = 3
    old_items_probability: float = 0.25
    nbcues: int | None = None  # the list length since the last reset
    kept_items: list = field(default_factory=list)  # (batch, nbcues, cs) per episode since the last reset

    @classmethod
    def of(cls, config) -> "Curriculum":
        """The curriculum of a TrainConfig."""
        return cls(config.regime, config.batch, config.min_items, config.max_items, config.learning_trials,
                   config.test_trials, config.resets_every, config.old_items_probability)

    def resets_at(self, episode: int) -> bool:
        """Whether episode `episode` starts afresh (new list length, nothing kept, fresh network state)."""
        return self.regime == "simple" or episode % self.resets_every == 0


def draw_trials(curricula: list[Curriculum], episodes: list[int], generators: list[torch.Generator]) -> list[Trials]:
    """Each curriculum's trials of its episode, from its own generator, in the order one run alone would draw
    them step by step (list length at a reset; items, `task.draw_items`; the learning trials' adjacent pairs
    and their order and the test trials' pairs, `task.standard_schedule`; then, in each test trial, whether
    and from which earlier episode since the reset its items are shown: tests/test_regimes.py writes that
    out), with only the random draws per curriculum: the items of all lists are drawn together
    (`draw_item_stack`) and the pairs, stimuli and old items computed for all at once."""
    first = curricula[0]
    shared = {(c.batch, c.learning_trials, c.test_trials, c.regime, c.old_items_probability,
               len(c.kept_items) if not c.resets_at(e) else 0) for c, e in zip(curricula, episodes)}
    if len(shared) > 1:  # drawn together only with the same shapes
        return [draw_trials([c], [e], [g])[0] for c, e, g in zip(curricula, episodes, generators)]
    device = generators[0].device
    resets = [c for c, e in zip(curricula, episodes) if c.resets_at(e)]
    if resets:
        lengths = [torch.randint(c.min_items, c.max_items + 1, (1,), device=device, generator=g)
                   for c, e, g in zip(curricula, episodes, generators) if c.resets_at(e)]
        for c, n in zip(resets, torch.cat(lengths).tolist()):  # one host read for every list length
            c.nbcues, c.kept_items = int(n), []
    batch, learning, tests = first.batch, first.learning_trials, first.test_trials
    lengths = [c.nbcues for c in curricula]
    items = draw_item_stack(batch, lengths, generators, CUE_SIZE, device=device)  # (K, batch, longest, cs)
    mixing = first.regime == "continual" and bool(first.kept_items)
    draws = []
    for c, g in zip(curricula, generators):  # each generator's draws, in the order of a run alone
        draws.append([torch.randint(0, c.nbcues - 1, (batch, learning), device=device, generator=g),
                      torch.rand(batch, learning, device=device, generator=g),
                      torch.randint(0, c.nbcues, (batch, tests), device=device, generator=g),
                      torch.randint(1, c.nbcues, (batch, tests), device=device, generator=g)])
        if mixing:
            draws[-1] += [torch.randint(0, len(c.kept_items), (batch, tests), device=device, generator=g),
                          torch.rand(batch, tests, device=device, generator=g)]
    adjacent, flip, test_first, test_step, *old_draws = (torch.stack(d) for d in zip(*draws))
    pair = torch.stack([adjacent, adjacent + 1], -1)
    count = torch.tensor(lengths, device=device).view(-1, 1, 1)
    pairs = torch.cat([torch.where((flip < 0.5)[..., None], pair.flip(-1), pair),
                       torch.stack([test_first, (test_first + test_step) % count], -1)], 2)  # (K, batch, T, 2)
    members, ntrials = len(curricula), learning + tests
    index = pairs.reshape(members, batch, -1, 1).expand(-1, -1, -1, CUE_SIZE)
    stimuli = torch.gather(items, 2, index).reshape(members, batch, ntrials, 2, CUE_SIZE)
    if mixing:
        which, use = old_draws
        longest = items.shape[2]
        old = torch.stack([torch.nn.functional.pad(torch.stack(c.kept_items, 1), (0, 0, 0, longest - c.nbcues))
                           for c in curricula])  # (K, batch, episodes, longest, cs)
        member = torch.arange(members, device=device)[:, None, None, None]
        element = torch.arange(batch, device=device)[None, :, None, None]
        shown = old[member, element, which[..., None], pairs[:, :, -tests:]]  # (K, batch, tests, 2, cs)
        use_old = (use < first.old_items_probability)[..., None, None]
        stimuli = torch.cat([stimuli[:, :, :learning], torch.where(use_old, shown, stimuli[:, :, learning:])], 2)
    trials = []
    for k, c in enumerate(curricula):
        if c.regime == "continual":
            c.kept_items.append(items[k, :, :c.nbcues].clone())
        trials.append(Trials(pairs[k], stimuli[k]))
    return trials
