"""Several runs' trials drawn together (regimes.draw_trials) equal each run's trials drawn alone
(Curriculum.trials_alone, step by step): the same lists, pairs, stimuli and kept items, each generator left
in the same state, over resets and episodes with old items."""
import pytest
import torch

from transitive.training.regimes import Curriculum, draw_trials


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
            expected = theirs.trials_alone(episode, their_own)
            assert torch.equal(trials.pairs, expected.pairs) and torch.equal(trials.stimuli, expected.stimuli)
            assert mine.nbcues == theirs.nbcues and len(mine.kept_items) == len(theirs.kept_items)
            assert all(torch.equal(a, b) for a, b in zip(mine.kept_items, theirs.kept_items))
            assert torch.equal(own.get_state(), their_own.get_state())
    assert len({c.nbcues for c in alone}) > 1  # the lists differ in length: the padded path is exercised


def test_runs_at_different_episodes_are_drawn_each_alone():
    c1, c2, r1, r2 = (Curriculum(batch=4, learning_trials=3, test_trials=2) for _ in range(4))
    g1, g2, h1, h2 = (torch.Generator().manual_seed(s) for s in (1, 2, 1, 2))
    draw_trials([c1], [0], [g1])
    r1.trials_alone(0, h1)
    a, b = draw_trials([c1, c2], [1, 0], [g1, g2])  # one run with an old list, one at its reset
    assert torch.equal(a.stimuli, r1.trials_alone(1, h1).stimuli)
    assert torch.equal(b.stimuli, r2.trials_alone(0, h2).stimuli)
