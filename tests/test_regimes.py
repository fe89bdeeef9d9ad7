"""Several runs' trials drawn together (regimes.draw_trials) equal each run's trials drawn alone, step by step
(`trials_alone`, the definition written out here): the same lists, pairs, stimuli and kept items, each
generator left in the same state, over resets and episodes with old items."""
import pytest
import torch

from transitive.model.task import Trials, draw_items, present, standard_schedule
from transitive.training.regimes import Curriculum, draw_trials


def trials_alone(c: Curriculum, episode: int, generator: torch.Generator) -> Trials:
    """One run's trials of an episode, step by step: at a reset a new list length (nothing kept); new items
    and a standard schedule; continual regime: in each test trial, each batch element shows its pair with a
    random earlier episode's items (since the reset) with probability old_items_probability."""
    device = generator.device
    if c.resets_at(episode):
        c.nbcues = int(torch.randint(c.min_items, c.max_items + 1, (1,), device=device, generator=generator))
        c.kept_items = []
    items = draw_items(c.batch, c.nbcues, device=device, generator=generator)
    trials = present(items, standard_schedule(c.batch, c.nbcues, c.learning_trials, c.test_trials, device,
                                              generator=generator))
    if c.regime != "continual":
        return trials
    if c.kept_items:
        batch, tests = c.batch, c.test_trials
        old = torch.stack(c.kept_items, 1)  # (batch, episodes, nbcues, cs)
        which = torch.randint(0, old.shape[1], (batch, tests), device=device, generator=generator)
        use_old = torch.rand(batch, tests, device=device, generator=generator) < c.old_items_probability
        shown = old[torch.arange(batch)[:, None, None], which.unsqueeze(-1), trials.pairs[:, -tests:]]
        stimuli = trials.stimuli.clone()
        stimuli[:, -tests:] = torch.where(use_old[..., None, None], shown, stimuli[:, -tests:])
        trials = Trials(trials.pairs, stimuli)
    c.kept_items.append(items)
    return trials


@pytest.mark.parametrize("regime", ["continual", "simple"])
def test_trials_drawn_together_equal_each_run_alone(regime):
    seeds = [0, 3, 9]
    together = [Curriculum(regime=regime, batch=6, max_items=8, learning_trials=5, test_trials=4) for _ in seeds]
    alone = [Curriculum(regime=regime, batch=6, max_items=8, learning_trials=5, test_trials=4) for _ in seeds]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    refs = [torch.Generator().manual_seed(s) for s in seeds]
    for episode in range(7):  # resets at 0, 3 and 6 (continual); episodes 1, 2, 4, 5 show old items
        drawn = draw_trials(together, [episode] * 3, gens)
        for trials, mine, theirs, own, their_own in zip(drawn, together, alone, gens, refs):
            expected = trials_alone(theirs, episode, their_own)
            assert torch.equal(trials.pairs, expected.pairs) and torch.equal(trials.stimuli, expected.stimuli)
            assert mine.nbcues == theirs.nbcues and len(mine.kept_items) == len(theirs.kept_items)
            assert all(torch.equal(a, b) for a, b in zip(mine.kept_items, theirs.kept_items))
            assert torch.equal(own.get_state(), their_own.get_state())
    assert len({c.nbcues for c in alone}) > 1  # the lists differ in length: the padded path is exercised


def test_runs_at_different_episodes_are_drawn_each_alone():
    c1, c2, r1, r2 = (Curriculum(batch=4, learning_trials=3, test_trials=2) for _ in range(4))
    g1, g2, h1, h2 = (torch.Generator().manual_seed(s) for s in (1, 2, 1, 2))
    draw_trials([c1], [0], [g1])
    trials_alone(r1, 0, h1)
    a, b = draw_trials([c1, c2], [1, 0], [g1, g2])  # one run with an old list, one at its reset
    assert torch.equal(a.stimuli, trials_alone(r1, 1, h1).stimuli)
    assert torch.equal(b.stimuli, trials_alone(r2, 0, h2).stimuli)
