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

from ..model.task import CUE_SIZE, Trials, draw_item_lists, present, standard_schedule


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

    def trials(self, episode: int, generator: torch.Generator) -> Trials:
        """Episode `episode`'s items and pairs (at a reset, first a new list length; the caller then starts the
        network afresh)."""
        return draw_trials([self], [episode], [generator])[0]

    def _mix_old_items(self, trials: Trials, generator: torch.Generator) -> Trials:
        """In each test trial, each batch element shows its pair with a random earlier episode's items with
        probability old_items_probability."""
        batch, ntests, device = self.batch, self.test_trials, generator.device
        old = torch.stack(self.kept_items, 1)  # (batch, episodes, nbcues, cs)
        which = torch.randint(0, old.shape[1], (batch, ntests), device=device, generator=generator)
        use_old = torch.rand(batch, ntests, device=device, generator=generator) < self.old_items_probability
        pairs = trials.pairs[:, -ntests:]
        batch_index = torch.arange(batch, device=device)[:, None, None]
        old_stimuli = old[batch_index, which.unsqueeze(-1), pairs]  # (batch, ntests, 2, cs)
        stimuli = trials.stimuli.clone()
        stimuli[:, -ntests:] = torch.where(use_old[..., None, None], old_stimuli, stimuli[:, -ntests:])
        return Trials(trials.pairs, stimuli)


def draw_trials(curricula: list[Curriculum], episodes: list[int], generators: list[torch.Generator]) -> list[Trials]:
    """Each curriculum's trials of its episode, from its own generator, exactly as `Curriculum.trials` alone
    would draw them (list length at a reset, items, pairs, old items), with the items of all lists drawn
    together (`draw_item_lists`)."""
    if len({c.batch for c in curricula}) > 1:  # lists drawn together share the batch
        return [draw_trials([c], [e], [g])[0] for c, e, g in zip(curricula, episodes, generators)]
    resets = [c for c, e in zip(curricula, episodes) if c.resets_at(e)]
    if resets:
        lengths = [torch.randint(c.min_items, c.max_items + 1, (1,), device=g.device, generator=g)
                   for c, e, g in zip(curricula, episodes, generators) if c.resets_at(e)]
        for c, n in zip(resets, torch.cat(lengths).tolist()):  # one host read for every list length
            c.nbcues, c.kept_items = int(n), []
    first = curricula[0]
    items = draw_item_lists(first.batch, [c.nbcues for c in curricula], generators, CUE_SIZE,
                            device=generators[0].device)
    trials = []
    for c, g, own in zip(curricula, generators, items):
        pairs = standard_schedule(c.batch, c.nbcues, c.learning_trials, c.test_trials, g.device, generator=g)
        shown = present(own, pairs)
        if c.regime == "continual":
            if c.kept_items:
                shown = c._mix_old_items(shown, g)
            c.kept_items.append(own)
        trials.append(shown)
    return trials
