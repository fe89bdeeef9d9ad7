import torch

from transitive.model.schedules import linking_schedules, massed_schedule, only_two_last_adjacent_schedule
from transitive.model.task import (ACTION, BIAS, GO, ITEM1, ITEM2, REWARD, TIME, base_inputs, draw_items,
                             feedback_inputs, present, standard_schedule)


def test_items_are_pm1_and_dissimilar():
    items = draw_items(500, 8)
    assert set(items.unique().tolist()) == {-1.0, 1.0}
    agreement = (items.unsqueeze(1) == items.unsqueeze(2)).float().mean(-1)  # (batch, 8, 8)
    off_diagonal = ~torch.eye(8, dtype=torch.bool)
    assert agreement[:, off_diagonal].max() <= 0.66
    # The rule binds: unconstrained draws would often agree in 10 or more of 15 positions.
    free = torch.randint(0, 2, (500, 8, 15)) * 2 - 1
    free_agreement = (free.unsqueeze(1) == free.unsqueeze(2)).float().mean(-1)[:, off_diagonal]
    assert free_agreement.max() > 0.66


def test_learning_trials_adjacent_and_test_trials_cover_all_pairs():
    pairs = standard_schedule(4000, 6)
    learning, test = pairs[:, :20], pairs[:, 20:]
    assert ((learning[..., 0] - learning[..., 1]).abs() == 1).all()
    assert (test[..., 0] != test[..., 1]).all() and pairs.max() == 5 and pairs.min() == 0
    ordered = {(int(a), int(b)) for a, b in test.reshape(-1, 2)}
    assert ordered == {(a, b) for a in range(6) for b in range(6) if a != b}
    adjacent = {(int(a), int(b)) for a, b in learning.reshape(-1, 2)}
    assert adjacent == {(k, k + 1) for k in range(5)} | {(k + 1, k) for k in range(5)}


def test_correct_action_is_one_when_item1_ranks_higher():
    pairs = torch.tensor([[[0, 1], [1, 0], [2, 7], [7, 2]]])
    trials = present(draw_items(1, 8), pairs)
    assert trials.correct_action.tolist() == [[1, 0, 1, 0]]


def test_present_shows_the_items_of_the_pair():
    items = draw_items(3, 8)
    pairs = standard_schedule(3, 8)
    trials = present(items, pairs)
    for b in range(3):
        for t in range(30):
            assert torch.equal(trials.stimuli[b, t, 0], items[b, pairs[b, t, 0]])
            assert torch.equal(trials.stimuli[b, t, 1], items[b, pairs[b, t, 1]])


def test_input_layout():
    items = draw_items(2, 8)
    trials = present(items, standard_schedule(2, 8))
    inputs = base_inputs(trials)  # (batch, trials, 4, 37)
    assert inputs.shape == (2, 30, 4, 37)
    assert torch.equal(inputs[:, :, 0, ITEM1], trials.stimuli[:, :, 0])
    assert torch.equal(inputs[:, :, 0, ITEM2], trials.stimuli[:, :, 1])
    assert (inputs[:, :, 1:, :30] == 0).all()  # items only at step 0
    assert (inputs[:, :, 1, GO] == 1).all() and (inputs[:, :, [0, 2, 3], GO] == 0).all()
    assert (inputs[..., BIAS] == 1).all()
    expected_time = torch.arange(120).float().reshape(30, 4) / 120
    assert torch.allclose(inputs[0, :, :, TIME], expected_time)
    assert (inputs[..., 33:] == 0).all()  # reward and action come from the response
    feedback = feedback_inputs(torch.tensor([1.0, -1.0]), torch.tensor([0, 1]))
    assert feedback[:, REWARD].tolist() == [1.0, -1.0]
    assert feedback[:, ACTION].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert (feedback[:, 34] == 0).all() and feedback.abs().sum().item() == 4


def test_linking_schedules():
    first, second, third = linking_schedules(2000)
    assert first.shape == (2000, 10, 2) and first.max() <= 3
    assert second.min() >= 4 and ((second[..., 0] - second[..., 1]).abs() == 1).all()
    assert third.shape == (2000, 5, 2)
    assert (third[:, :4].sort(-1).values == torch.tensor([3, 4])).all()
    assert (third[:, :4, 0] == 3).float().mean().item() == __import__("pytest").approx(0.5, abs=0.05)
    sham = linking_schedules(10, sham=True)[2]
    assert sham.shape == (10, 2, 2) and (sham[:, 0] == torch.tensor([1, 2])).all()


def test_massed_and_only_two_last_adjacent_schedules():
    massed = massed_schedule(50, 4, pair=(3, 4))
    assert massed.shape == (50, 34, 2) and (massed[:, 20:24] == torch.tensor([3, 4])).all()
    special = only_two_last_adjacent_schedule(300)
    tests = {tuple(sorted(p)) for p in special[:, 20:28].reshape(-1, 2).tolist()}
    assert tests == {(0, 2), (2, 4), (4, 6), (0, 3), (3, 6)}
    last = special[:, 28:]
    assert ((last[..., 0] - last[..., 1]).abs() == 1).all() and not ((last == 0) | (last == 6)).any()


def test_the_same_generator_state_gives_the_same_draws():
    first = standard_schedule(5, 8, generator=torch.Generator().manual_seed(3))
    again = standard_schedule(5, 8, generator=torch.Generator().manual_seed(3))
    other = standard_schedule(5, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
