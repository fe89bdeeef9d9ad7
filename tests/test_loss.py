"""The A2C loss (docs/method.md, meta-training) on small cases computed by hand."""
import math

import pytest
import torch
from tolerance import assert_float32_close

from transitive.engine.episode import EpisodeRecord
from transitive.training.loss import LossWeights, a2c_loss, discounted_returns, loss_terms
from transitive.model.network import NetworkState


def zero_record(batch: int, steps: int, **fields) -> EpisodeRecord:
    """An episode record of zeros (`steps` steps, 4 per trial, 3 units) with the given fields replaced."""
    trials = max(steps // 4, 1)
    values = dict(
        pairs=torch.zeros(batch, trials, 2, dtype=torch.long), inputs=torch.zeros(batch, steps, 37),
        actions=torch.zeros(batch, steps, dtype=torch.long), rewards=torch.zeros(batch, steps),
        correct=torch.zeros(batch, trials, dtype=torch.bool), logits=torch.zeros(batch, steps, 2),
        values=torch.zeros(batch, steps), modulation=torch.zeros(batch, steps), rates=torch.zeros(batch, steps, 3),
        final_state=NetworkState(torch.zeros(batch, 2), torch.zeros(batch, 2, 2), torch.zeros(batch, 2, 2)))
    values.update(fields)
    return EpisodeRecord(**values)


def test_discounted_returns():
    rewards = torch.tensor([[0.0, 1.0, 0.0, -1.0]])
    assert discounted_returns(rewards, 0.9).tolist()[0] == pytest.approx([0.9 - 0.729, 1 - 0.81, -0.9, -1.0])


def returns_by_loop(rewards: torch.Tensor, discount: float) -> torch.Tensor:
    """R_t = discount * R_{t+1} + reward_t, step by step backwards (the definition), in float64."""
    returns, running = torch.zeros_like(rewards, dtype=torch.float64), torch.zeros_like(rewards[..., 0], dtype=torch.float64)
    for t in reversed(range(rewards.shape[-1])):
        running = discount * running + rewards[..., t].double()
        returns[..., t] = running
    return returns


def test_discounted_returns_over_members_equal_the_loop():
    """Members x batch x 120 steps of random rewards (as in training: -1, 0, 1 and penalties), one product for
    all: the loop's returns to float32 rounding, for each discount."""
    g = torch.Generator().manual_seed(3)
    rewards = torch.randint(-1, 2, (3, 5, 120), generator=g).float() - 0.25 * torch.rand(3, 5, 120, generator=g)
    for discount in (0.0, 0.5, 0.9, 0.99, 1.0):
        returns = discounted_returns(rewards, discount)
        assert returns.dtype == torch.float32 and returns.shape == rewards.shape
        exact = returns_by_loop(rewards, discount)
        assert (returns.double() - exact).abs().max() <= 2e-6 * max(1.0, exact.abs().max().item()), discount
    # by hand: one reward of 1 at step 3 of 5 (discount 0.5) gives 0.125, 0.25, 0.5, 1, 0
    hand = torch.zeros(2, 1, 5)
    hand[1, 0, 3] = 1.0
    assert discounted_returns(hand, 0.5)[1, 0].tolist() == [0.125, 0.25, 0.5, 1.0, 0.0]
    assert discounted_returns(hand, 0.5)[0].abs().sum() == 0


def test_loss_by_hand():
    # batch 2, 4 steps; steps with t > eplen - 4 * late_trials = 0 get the multiplier 3 (strict >).
    rewards = [[0.0, 1.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]]
    values = [[0.5, 0.2, -0.1, 0.0], [0.1, 0.0, 0.3, -0.2]]
    logits = [[[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [1.0, 1.5]],
              [[0.5, -0.5], [0.0, 3.0], [1.0, 0.0], [-1.0, 0.0]]]
    actions = [[1, 0, 0, 1], [0, 1, 1, 0]]
    plastic = torch.tensor([1.0, -2.0, 3.0, 0.5]).reshape(1, 2, 2).repeat(2, 1, 1)
    weights = LossWeights(late_trials=1)

    expected_policy = expected_entropy = expected_value = 0.0
    for b in range(2):
        returns, running = [0.0] * 4, 0.0
        for t in reversed(range(4)):
            running = 0.9 * running + rewards[b][t]
            returns[t] = running
        for t in range(4):
            advantage = returns[t] - values[b][t]
            z = [math.exp(x) for x in logits[b][t]]
            p = [x / sum(z) for x in z]
            multiplier = 3.0 if t > 0 else 1.0
            expected_policy -= multiplier * math.log(p[actions[b][t]]) * advantage / 2
            expected_entropy += 0.1 * (p[0] ** 2 + p[1] ** 2) / 2
            expected_value += advantage ** 2 / 2
    expected = (expected_policy + expected_entropy + 0.1 * expected_value) / 4
    expected += 1e-4 * (1 + 4 + 9 + 0.25) / 4

    record = zero_record(2, 4, actions=torch.tensor(actions), rewards=torch.tensor(rewards),
                         logits=torch.tensor(logits), values=torch.tensor(values),
                         final_state=NetworkState(torch.zeros(2, 2), torch.zeros(2, 2, 2), plastic))
    assert a2c_loss(record, weights=weights).item() == pytest.approx(expected, rel=1e-6)


def test_advantage_is_detached_in_the_policy_term_only():
    values = torch.zeros(1, 4, requires_grad=True)
    logits = torch.zeros(1, 4, 2, requires_grad=True)
    record = zero_record(1, 4, actions=torch.tensor([[0, 1, 0, 0]]), rewards=torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
                         correct=torch.ones(1, 1, dtype=torch.bool), logits=logits, values=values)
    a2c_loss(record).backward()
    # d/dv of 0.1 * sum adv^2 / eplen = -0.2 * adv / 4; returns are (0.9, 1, 0, 0)
    assert values.grad[0].tolist() == pytest.approx([-0.2 * 0.9 / 4, -0.2 / 4, 0.0, 0.0])


def test_delay_step_penalties_by_hand():
    """The three penalties that favour the passive solution, on m(t) of 2 trials x 2 episodes."""
    modulation = torch.tensor([[0.0, 0.0, -1.0, 2.0, 0.0, 0.0, 3.0, -4.0],
                               [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, -0.5, 1.0]])

    def record():
        return zero_record(2, 8, modulation=modulation)

    gain = torch.tensor([2.0])
    base = a2c_loss(record(), LossWeights(plastic_l2=0.0), gain).item()
    step3 = [2.0, 4.0, 0.0, 1.0]  # |m| at step 3 of each trial of each episode
    step2 = [1.0, 3.0, 0.5, 0.5]

    def extra(**weights):
        return a2c_loss(record(), LossWeights(plastic_l2=0.0, **weights), gain).item() - base

    assert extra(delay_modulation_l1=0.5) == pytest.approx(0.5 * sum(step3) / 2 / 8)
    assert extra(delay_feedback_ratio=0.5) == pytest.approx(0.5 * (sum(step3) / 4) / (sum(step2) / 4 + 1e-3), rel=1e-5)
    assert extra(delay_drive=0.5) == pytest.approx(0.5 * sum(step3) / 4 / 2.0, rel=1e-5)


def test_delay_drive_penalty_leaves_the_gain_free():
    """The drive penalty has no gradient on DAmult (shrinking the shared gain cannot lower it)."""
    damult = torch.tensor([1.5], requires_grad=True)
    drive = torch.tensor([[0.0, 0.0, 0.3, -0.7]])
    record = zero_record(1, 4, modulation=damult * drive)
    a2c_loss(record, LossWeights(delay_drive=1.0), damult).backward()
    assert damult.grad.abs().item() < 1e-7
    damult.grad = None
    record.modulation = damult * drive
    a2c_loss(record, LossWeights(delay_modulation_l1=1.0), damult).backward()
    assert damult.grad.item() > 0  # the plain L1 penalty pushes the gain down


def test_modulation_penalty_is_summed_over_the_batch():
    """modulation_l1 (the original's lda) * sum over steps and batch of |m(t)| / (1e-8 + DAmult), divided by eplen only (the original's)."""
    modulation = torch.tensor([[0.0, 0.0, -1.0, 2.0, 0.0, 0.0, 3.0, -4.0],
                               [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, -0.5, 1.0]])
    gain = torch.tensor([2.0])
    record = zero_record(2, 8, modulation=modulation)
    base = a2c_loss(record, LossWeights(plastic_l2=0.0), gain).item()
    penalised = a2c_loss(record, LossWeights(plastic_l2=0.0, modulation_l1=0.5), gain).item()
    assert penalised - base == pytest.approx(0.5 * (1 + 2 + 3 + 4 + 0.5 + 0.5 + 1) / 2.0 / 8, rel=1e-6)


def test_terms_add_up_to_the_loss():
    modulation = torch.tensor([[0.0, 0.1, -1.0, 2.0]])
    record = zero_record(1, 4, modulation=modulation, rewards=torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
                         rates=torch.full((1, 4, 3), 0.5), values=torch.tensor([[0.2, 0.1, 0.0, -0.3]]))
    gain = torch.tensor([1.5])
    weights = LossWeights(modulation_l1=0.1, rate_l1=0.2, delay_modulation_l1=0.3, delay_feedback_ratio=0.4, delay_drive=0.5)
    terms = loss_terms(record, weights, gain)
    assert set(terms) == {"policy", "entropy", "value", "plastic_penalty", "modulation_penalty", "rate_penalty",
                          "delay_modulation", "delay_ratio", "delay_drive", "loss"}
    assert terms["loss"].item() == pytest.approx(sum(v.item() for k, v in terms.items() if k != "loss"))
    assert a2c_loss(record, weights, gain).item() == terms["loss"].item()
    assert terms["rate_penalty"].item() == pytest.approx(0.2 * 0.5)
    assert set(loss_terms(record)) == {"policy", "entropy", "value", "plastic_penalty", "loss"}


def test_action_penalty_acts_through_the_rewards_only():
    """action1_penalty (the original's wp) is no loss term: it changes the rewards (hence the returns and the advantage) of the episode."""
    from transitive.engine.episode import run_episode
    from transitive.model.network import PlasticNetwork
    from transitive.model.task import fixed_pairs, present

    torch.manual_seed(3)
    net = PlasticNetwork(hidden_size=8)
    trials = present(torch.randn(1, 3, 15).sign(), fixed_pairs(1, [(0, 1)]))  # one trial: action 1 is right
    actions = torch.tensor([[1, 1, 0, 1]])
    record = zero_record(1, 4, actions=actions, rewards=torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    assert a2c_loss(record, weights=LossWeights(action1_penalty=0.3)).item() == a2c_loss(record).item()

    with torch.no_grad():
        episode = run_episode(net, trials, actions=actions, action_penalty=0.3)
    rewards = [-0.3, 1.0 - 0.3, 0.0, -0.3]  # by hand
    assert episode.rewards[0].tolist() == pytest.approx(rewards)
    assert episode.inputs[0, :, 33].tolist() == pytest.approx([0.0] + rewards[:3])
    returns = [0.0] * 4
    running = 0.0
    for t in reversed(range(4)):
        running = 0.9 * running + rewards[t]
        returns[t] = running
    values = episode.values[0].tolist()
    expected_value = 0.1 * sum((r - v) ** 2 for r, v in zip(returns, values)) / 4
    assert loss_terms(episode)["value"].item() == pytest.approx(expected_value, rel=1e-5)


def test_the_loss_of_stacked_members_is_each_members_own():
    """loss_terms on a record of K networks stacked along a leading axis gives, term by term, what each
    network's own record gives (every optional penalty on), as one (K,) tensor per term (the gains (K, 1, 1))."""
    from transitive.engine import run_episode
    from transitive.engine.record import stacked_record
    from transitive.training.loss import gains
    from transitive.model.network import PlasticNetwork
    from transitive.model.task import draw_items, present, standard_schedule
    weights = LossWeights(modulation_l1=0.1, rate_l1=0.2, delay_modulation_l1=0.3, delay_feedback_ratio=0.4,
                          delay_drive=0.5)
    nets, records = [], []
    for k in range(3):
        torch.manual_seed(k)
        nets.append(PlasticNetwork())
        with torch.no_grad():
            nets[-1].modulation_gain.fill_(1.0 + k)
        records.append(run_episode(nets[-1], present(draw_items(2, 5), standard_schedule(2, 5, 4, 2))))
    together = loss_terms(stacked_record(records), weights, gains(nets))
    for k, (net, record) in enumerate(zip(nets, records)):
        alone = loss_terms(record, weights, net.modulation_gain)
        assert set(alone) == set(together)
        for name, value in alone.items():
            assert together[name].shape == (3,)
            assert_float32_close(together[name][k], value, f"network {k}: {name}")
