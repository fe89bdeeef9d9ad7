"""The fast runner (the kernels) equals the networks' definition run step by step, uncompiled (docs/method.md),
over whole episodes; the options only the reference runs."""
import pytest
import torch
from conftest import run_reference
from tolerance import assert_float32_close

from transitive.engine.episode import run_episode
from transitive.training.loss import a2c_loss
from transitive.model.network import NetworkState, PlasticNetwork
from transitive.model.task import draw_items, present, standard_schedule


def strong_network(seed=0):
    """A network with realistic magnitudes: strong plasticity, eta > 1 (as in the published files)."""
    torch.manual_seed(seed)
    net = PlasticNetwork()
    with torch.no_grad():
        net.alpha.uniform_(-0.05, 0.05)
        net.eta.fill_(1.2)
        net.modulation_gain.fill_(1.6)
        net.h2DA.weight.mul_(4)
    return net


def run_both(net, trials, state=None, snapshot_trials=()):
    actions = run_episode(net, trials, state=state).actions
    results = []
    for runner in (run_episode, run_reference):
        net.zero_grad()
        record = runner(net, trials, state=state, actions=actions, snapshot_trials=snapshot_trials)
        loss = a2c_loss(record)
        loss.backward()
        results.append((record, loss.item(), {k: p.grad.clone() for k, p in net.named_parameters()}))
    return results


# The fast path sums in another order than the plain runner over whole 30-trial episodes (float32 drift of a
# fresh full-size episode against float64: 1.7e-5 of the rates' scale, 1.2e-5 of the gradients',
# docs/measurements/float32_drift_2026-12-01.md): each quantity may differ by 1024 float32 units of its own scale
# (1.2e-4 of it), the final state, after the whole episode, by 8 times that.
EPISODE_UNITS = 1024


def assert_same(fast, plain, units: float = EPISODE_UNITS):
    (rec_f, loss_f, grad_f), (rec_p, loss_p, grad_p) = fast, plain
    assert_float32_close(torch.tensor(loss_f), torch.tensor(loss_p), "loss", units)
    for name in ("inputs", "actions", "rewards", "correct"):
        assert torch.equal(getattr(rec_f, name), getattr(rec_p, name)), name
    for name in ("rates", "logits", "values", "modulation"):
        assert_float32_close(getattr(rec_f, name), getattr(rec_p, name), name, units)
    for name in ("rates", "trace", "plastic_weights"):
        assert_float32_close(getattr(rec_f.final_state, name), getattr(rec_p.final_state, name), f"final {name}",
                             8 * units)
    for name in grad_f:
        assert_float32_close(grad_f[name], grad_p[name], f"gradient of {name}", units)


@pytest.mark.parametrize("nbcues", [4, 8])
def test_fast_equals_plain_from_fresh_state(nbcues):
    net = strong_network()
    trials = present(draw_items(4, nbcues), standard_schedule(4, nbcues))
    fast, plain = run_both(net, trials, snapshot_trials=(0, 18))
    assert_same(fast, plain)
    for t in (0, 18):
        torch.testing.assert_close(fast[0].snapshots[t].float(), plain[0].snapshots[t].float(), atol=0.05, rtol=1e-2)
    assert fast[0].snapshots[0].shape == (4, 4, 200, 200)


def test_fast_equals_plain_with_carried_state_and_clipping():
    torch.manual_seed(1)
    net = PlasticNetwork()  # milder than strong_network: a large carried P makes the strong one chaotic
    with torch.no_grad():
        net.eta.fill_(1.2)
        net.modulation_gain.fill_(1.6)
    batch = 3
    plastic = torch.randn(batch, 200, 200) * 2
    plastic[:, :20, :20] = 49.99 * torch.sign(torch.randn(batch, 20, 20))  # some synapses at the clip
    state = NetworkState(torch.rand(batch, 200) * 2 - 1, torch.randn(batch, 200, 200) * 0.5, plastic)
    trials = present(draw_items(batch, 6), standard_schedule(batch, 6))
    fast, plain = run_both(net, trials, state=state)
    assert (fast[0].final_state.plastic_weights.abs() == 50).any()  # the clip was exercised
    assert_same(fast, plain)


def test_blank_steps_change_nothing_from_fresh_state_but_do_from_carried_state():
    net = strong_network(2)
    trials = present(draw_items(2, 5), standard_schedule(2, 5))
    actions = run_episode(net, trials).actions
    with torch.no_grad():
        fresh = run_episode(net, trials, actions=actions)
        zero = run_episode(net, trials, state=NetworkState.fresh(2), actions=actions)
        torch.testing.assert_close(fresh.rates, zero.rates)
        carried = run_episode(net, trials, state=fresh.final_state, actions=actions)
        assert (carried.rates - fresh.rates).abs().max() > 1e-3


def test_the_kernel_path_runs_the_definitions_blank_steps():
    """With a carried state, the kernel path starts from P after the definition's own blank steps (the one
    routine): bit for bit, with and without gradients, and the clip is exercised."""
    from transitive.engine.definition import blank_plastic_weights, blank_steps
    net = strong_network(3)
    generator = torch.Generator().manual_seed(0)
    state = NetworkState(torch.rand(1, 6, 200, generator=generator) * 2 - 1,
                         torch.randn(1, 6, 200, 200, generator=generator) * 0.5,
                         torch.randn(1, 6, 200, 200, generator=generator) * 30)
    with torch.no_grad():
        reference = NetworkState(state.rates[0], state.trace[0], state.plastic_weights[0])
        for _ in range(2):
            reference = net.step(torch.zeros(6, 37), reference)[3]
        kernel_start = blank_plastic_weights([net], state)
    assert (reference.plastic_weights.abs() == 50).any()
    assert torch.equal(kernel_start[0], reference.plastic_weights)
    differentiable = blank_steps(net, None, state, torch.float32).plastic_weights
    assert differentiable.requires_grad
    assert torch.equal(differentiable.detach(), kernel_start)


def test_actions_are_sampled_from_the_policy():
    net = PlasticNetwork()
    with torch.no_grad():
        net.h2o.weight.zero_()
        net.h2o.bias.copy_(torch.tensor([0.0, 2.0]))  # p(action 1) = sigmoid(2) = 0.881
    trials = present(draw_items(400, 8), standard_schedule(400, 8))
    with torch.no_grad():
        record = run_episode(net, trials)
    assert record.actions.float().mean().item() == pytest.approx(0.881, abs=0.01)
    assert record.response.float().mean().item() == pytest.approx(2 * 0.881 - 1, abs=0.02)
    expected = torch.where(record.actions[:, 1::4] == trials.correct_action, 1.0, -1.0)
    assert torch.equal(record.rewards[:, 1::4], expected)
    assert (record.rewards.reshape(400, 30, 4)[:, :, [0, 2, 3]] == 0).all()


def test_reset_plastic_every_trial_matches_plain_and_removes_learning():
    net = strong_network(3)
    trials = present(draw_items(3, 6), standard_schedule(3, 6))
    actions = run_episode(net, trials).actions
    with torch.no_grad():
        fast = run_episode(net, trials, actions=actions, reset_plastic_every_trial=True, snapshot_trials=(5,))
        plain = run_reference(net, trials, actions=actions, reset_plastic_every_trial=True)
        normal = run_episode(net, trials, actions=actions, snapshot_trials=(5,))
    assert_float32_close(fast.rates, plain.rates, "rates", EPISODE_UNITS)
    # P starts every trial at 0 (it still changes within the trial, at steps 2 and 3).
    assert (fast.snapshots[5][:, :2] == 0).all() and (fast.snapshots[5][:, 3] != 0).any()
    assert (normal.snapshots[5][:, 0] != 0).any()
    assert (fast.rates - normal.rates).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------------------
# Options only the reference runs (the definition, whatever the backend): an action penalty, r or H carried
# across trials.

def small_episode(seed=4, batch=3, nbcues=5, learning=3, tests=2):
    net = strong_network(seed)
    trials = present(draw_items(batch, nbcues), standard_schedule(batch, nbcues, learning, tests))
    with torch.no_grad():
        actions = run_episode(net, trials).actions
    return net, trials, actions


def test_action_penalty_enters_the_rewards_and_the_next_steps_reward_input():
    net, trials, actions = small_episode()
    penalty = 0.25
    with torch.no_grad():
        record = run_episode(net, trials, actions=actions, action_penalty=penalty)
        plain = run_reference(net, trials, actions=actions, action_penalty=penalty)
        unpenalised = run_episode(net, trials, actions=actions)
    assert torch.equal(record.rates, plain.rates)  # the engine handed it to the definition
    # by hand: +-1 for the response, minus the penalty at every step where action 1 was taken
    expected = torch.zeros(actions.shape)
    expected[:, 1::4] = torch.where(actions[:, 1::4] == trials.correct_action, 1.0, -1.0)
    expected -= penalty * (actions == 1).float()
    assert torch.equal(record.rewards, expected)
    assert (record.rewards[:, 0::4] != 0).any()  # nonzero at other steps than the response
    # input 33 shows the previous step's reward (0 at the first step), across trials too
    shown = torch.cat([torch.zeros(actions.shape[0], 1), expected[:, :-1]], 1)
    assert torch.equal(record.inputs[..., 33], shown)
    # the rest of the input is unchanged, and without the penalty everything is as before
    others = [i for i in range(37) if i != 33]
    assert torch.equal(record.inputs[..., others], unpenalised.inputs[..., others])
    assert torch.equal(unpenalised.inputs[..., 33], torch.cat([torch.zeros(actions.shape[0], 1),
                                                                unpenalised.rewards[:, :-1]], 1))
    assert (record.rates - unpenalised.rates).abs().max() > 1e-4


def hand_loop(net, trials, actions, reset_rates, reset_trace):
    """The episode written out step by step with the trial resets as options (forced actions)."""
    from transitive.model.task import base_inputs, feedback_inputs
    batch, n = trials.batch, net.hidden_size
    state = NetworkState.fresh(batch, n)
    for _ in range(2):  # blank steps
        state = net.step(torch.zeros(batch, 37), state)[3]
    inputs, rates = base_inputs(trials), []
    for t in range(trials.ntrials):
        state = NetworkState(torch.zeros(batch, n) if reset_rates else state.rates,
                             torch.zeros(batch, n, n) if reset_trace else state.trace, state.plastic_weights)
        for s in range(4):
            x = inputs[:, t, s]
            if s == 2:
                response = actions[:, 4 * t + 1]
                reward = torch.where(response == trials.correct_action[:, t], 1.0, -1.0)
                x = x + feedback_inputs(reward, response)
            state = net.step(x, state)[3]
            rates.append(state.rates)
    return torch.stack(rates, 1), state


@pytest.mark.parametrize("reset_rates, reset_trace", [(False, True), (True, False), (False, False)])
def test_carrying_rates_or_trace_across_trials(reset_rates, reset_trace):
    net, trials, actions = small_episode()
    options = dict(reset_rates_every_trial=reset_rates, reset_trace_every_trial=reset_trace)
    with torch.no_grad():
        record = run_episode(net, trials, actions=actions, **options)
        plain = run_reference(net, trials, actions=actions, **options)
        reset = run_episode(net, trials, actions=actions)
        rates, final = hand_loop(net, trials, actions, reset_rates, reset_trace)
        as_before = hand_loop(net, trials, actions, True, True)[0]
    assert torch.equal(record.rates, plain.rates)
    assert_float32_close(record.rates, rates, "rates", EPISODE_UNITS)
    assert_float32_close(record.final_state.plastic_weights, final.plastic_weights, "final P", EPISODE_UNITS)
    assert (record.rates - reset.rates).abs().max() > 1e-3
    assert_float32_close(reset.rates, as_before, "rates", EPISODE_UNITS)  # the hand loop is the definition


def test_frozen_input_network_starts_as_the_original_add_on():
    """Frozen input weights (Supplementary Note 6): rows n//3 and above of W_in and the WHOLE input bias start
    at 0, and the input layer is not trained."""
    torch.manual_seed(3)
    net, plain = PlasticNetwork(frozen_input=True), PlasticNetwork()
    third = net.hidden_size // 3
    assert (net.i2h.weight[third:] == 0).all() and (net.i2h.weight[:third] != 0).all()
    assert (net.i2h.bias == 0).all() and (plain.i2h.bias != 0).all()
    assert not net.i2h.weight.requires_grad and not net.i2h.bias.requires_grad and net.w.requires_grad


def test_penalised_actions_are_sampled_at_their_steps_from_the_episodes_noise():
    """With an action penalty every step's action enters the next step's input: the definition samples it at
    its step from the pre-drawn noise. Forcing those actions gives the same episode, bit for bit."""
    net, trials, _ = small_episode()
    with torch.no_grad():
        sampled = run_episode(net, trials, generator=torch.Generator().manual_seed(3), action_penalty=0.25)
        forced = run_episode(net, trials, actions=sampled.actions, action_penalty=0.25)
        again = run_episode(net, trials, generator=torch.Generator().manual_seed(3), action_penalty=0.25)
    assert torch.equal(sampled.actions, again.actions)
    off_response = sampled.actions.reshape(trials.batch, -1, 4)[:, :, [0, 2, 3]]
    assert 0 < off_response.float().mean() < 1  # both actions drawn at the other steps
    for name in ("rates", "inputs", "rewards", "logits"):
        assert torch.equal(getattr(sampled, name), getattr(forced, name)), name
