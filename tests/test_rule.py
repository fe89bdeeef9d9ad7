"""One definition of the rule: the kernels run only the rule they were verified against, and any change to
the definition (a subclass, an edit, a replaced method) is what every runner runs, with one line saying so.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from conftest import run_reference
from tolerance import assert_float32_close
from transitive import PlasticNetwork, run_episode
from transitive.engine import backends, cpu_kernel, rule
from transitive.engine.episode import Episodes, run_episodes
from transitive.model.task import draw_items, present, standard_schedule
from transitive.model.variants import network_class, same_network
from transitive.training.config import TrainConfig
from transitive.training.trainer import Trainer

BATCH, LEARNING, TESTS = 3, 4, 2
STEPS = 4 * (LEARNING + TESTS)


# The two changed rules of examples/changed_rules.py (what `transitive bench --network` times), loaded once by
# its path as a researcher's file is: a trace halved after every step; P decayed by a parameter of its own.
CHANGED_RULES = f"{Path(__file__).resolve().parents[1] / 'examples' / 'changed_rules.py'}"
HalvedTraceNetwork = network_class(f"{CHANGED_RULES}:HalvedTraceNetwork")
DecayNetwork = network_class(f"{CHANGED_RULES}:DecayNetwork")


class SameRuleNetwork(PlasticNetwork):
    """A subclass that changes nothing of the rule: the kernels still apply."""


def strong(cls=PlasticNetwork, seed=0):
    torch.manual_seed(seed)
    net = cls()
    with torch.no_grad():
        net.alpha.mul_(5)
        net.modulation_gain.fill_(2.0)
    return net


def episode(seed=1, batch=BATCH):
    torch.manual_seed(seed)
    return present(draw_items(batch, 6), standard_schedule(batch, 6, LEARNING, TESTS)), \
        torch.randint(0, 2, (batch, STEPS))


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    monkeypatch.setattr(rule, "_told", set())
    monkeypatch.delenv(backends.ENV_SWITCH, raising=False)


def test_kernels_were_verified_against_this_definition():
    """Fails when PlasticNetwork.step or a helper it calls changes and the kernels' records are not updated:
    re-run tests/test_kernels.py and tests/test_gpu_kernel.py against the new definition (changing the
    kernels where they no longer agree), then set VERIFIED_RULE to the fingerprint printed here."""
    fingerprint = rule.rule_fingerprint(PlasticNetwork)
    assert cpu_kernel.VERIFIED_RULE == fingerprint, f"CPU kernel: re-verify, then VERIFIED_RULE = {fingerprint}"
    gpu_kernel = pytest.importorskip("transitive.engine.gpu_kernel")
    assert gpu_kernel.VERIFIED_RULE == fingerprint, f"GPU kernels: re-verify, then VERIFIED_RULE = {fingerprint}"


def test_fingerprint_follows_the_code_not_its_comments(tmp_path):
    from transitive.model.variants import network_class
    body = "    def step(self, inputs, state):\n{doc}        logits, value, m, new = super().step(inputs, state)\n" \
           "        return logits, value, {m}, new\n"
    versions = {"plain": body.format(doc="", m="m"),
                "commented": body.format(doc='        """A docstring."""\n\n        # a comment\n', m="(m)"),
                "changed": body.format(doc="", m="m * 2")}
    prints = {}
    for name, text in versions.items():
        (tmp_path / f"{name}.py").write_text("from transitive import PlasticNetwork\n\n\n"
                                             f"class Net(PlasticNetwork):\n{text}")
        prints[name] = rule.rule_fingerprint(network_class(f"{tmp_path / name}.py:Net"))["step"]
    assert prints["plain"] == prints["commented"] != prints["changed"]
    assert prints["plain"] != rule.rule_fingerprint(PlasticNetwork)["step"]


def test_a_subclass_that_changes_step_runs_its_own_rule_with_one_line():
    trials, actions = episode()
    net = strong(HalvedTraceNetwork)
    with pytest.warns(RuntimeWarning, match=r"HalvedTraceNetwork\.step differs") as caught:
        fast = run_episode(net, trials, actions=actions)
    assert len([w for w in caught if "HalvedTraceNetwork" in str(w.message)]) == 1
    assert "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once only
        run_episode(net, trials, actions=actions)
    plain = run_reference(net, trials, actions=actions)
    published = PlasticNetwork()
    published.load_state_dict(net.state_dict())
    old_rule = run_episode(published, trials, actions=actions)
    assert_float32_close(fast.rates, plain.rates, "rates")
    assert_float32_close(fast.final_state.plastic_weights, plain.final_state.plastic_weights, "final P")
    assert (fast.rates - old_rule.rates).abs().max() > 0.05  # not the published rule's numbers


def test_a_forced_kernel_refuses_a_changed_rule(monkeypatch):
    monkeypatch.setenv(backends.ENV_SWITCH, "cpp")
    with pytest.raises(RuntimeError, match=r"TRANSITIVE_KERNEL=cpp: HalvedTraceNetwork\.step differs"):
        backends.choose([strong(HalvedTraceNetwork)])
    assert backends.choose([strong(SameRuleNetwork)]) == "cpp"  # same rule: the kernel applies


def test_an_edit_of_the_definition_is_not_run_by_the_old_kernel(monkeypatch):
    """As if network.py had been edited without re-verifying the kernel: its record no longer matches."""
    stale = dict(cpu_kernel.VERIFIED_RULE, hebbian="0" * 16)
    monkeypatch.setattr(cpu_kernel, "VERIFIED_RULE", stale)
    with pytest.warns(RuntimeWarning, match=r"PlasticNetwork\.hebbian differs"):
        assert backends.choose([strong()]) == "torch"


def test_a_replaced_definition_reaches_running_training_and_evaluation(monkeypatch, tmp_path):
    def broken_step(self, inputs, state):
        raise RuntimeError("the replaced step ran")

    monkeypatch.setattr(PlasticNetwork, "step", broken_step)
    trials, actions = episode()
    with pytest.warns(RuntimeWarning, match="PlasticNetwork.step differs"), \
            pytest.raises(RuntimeError, match="the replaced step ran"):
        run_episode(strong(), trials, actions=actions)
    config = TrainConfig(episodes=1, batch=2, learning_trials=2, test_trials=1, max_items=4, regime="simple")
    with pytest.raises(RuntimeError, match="the replaced step ran"):
        Trainer(config, tmp_path / "net.dat", progress=False).train()
    from transitive.evaluation.runs import Runs, Settings
    with pytest.raises(RuntimeError, match="the replaced step ran"):
        Runs(strong(), Settings(batch=20, progress=False)).standard


def test_an_instance_attribute_counts_as_a_change():
    net = strong()
    net.step = lambda inputs, state: PlasticNetwork.step(net, inputs, state)
    assert rule.changed_methods(net, cpu_kernel.VERIFIED_RULE) == ["step"]
    assert backends.choose([strong()]) == "cpp"


def test_a_new_parameter_is_stacked_and_trained(tmp_path):
    net = DecayNetwork()
    assert rule.kernel_mismatch(SameRuleNetwork(), cpu_kernel.VERIFIED_RULE) is None
    assert "plastic_decay" in rule.layout_mismatch(net)
    config = TrainConfig(episodes=2, batch=2, learning_trials=3, test_trials=2, max_items=4, regime="simple",
                         burn_in=0, lr=0.01, network=f"{CHANGED_RULES}:DecayNetwork")
    with pytest.warns(RuntimeWarning, match="DecayNetwork"):
        trainer = Trainer(config, tmp_path / "net.dat", progress=False).train()
    assert same_network(type(trainer.net), DecayNetwork)  # the file's class (run again by the trainer's load)
    assert trainer.net.plastic_decay.item() != pytest.approx(0.9, abs=1e-6)  # it trained
    saved = torch.load(tmp_path / "net.dat", weights_only=True)
    assert "plastic_decay" in saved


@pytest.mark.parametrize("cls", [PlasticNetwork, HalvedTraceNetwork])
def test_members_vectorised_equal_members_one_by_one_and_alone(cls):
    """The definition for K = 3 networks: vmap over stacked parameters, one after the other, and each network
    alone give the same episodes and each network the same gradients."""
    nets = [strong(cls, seed=k) for k in range(3)]
    made = [episode(seed=10 + k) for k in range(3)]
    episodes = Episodes.draw([t for t, _ in made], [torch.Generator().manual_seed(k) for k in range(3)])
    results = {}
    for mode in ("vmap", "loop", "alone"):
        for net in nets:
            net.zero_grad()
        if mode == "alone":
            records = [run_episodes([net], Episodes(*(x[k:k + 1] for x in (episodes.pairs, episodes.stimuli,
                                                                             episodes.uniform, episodes.exponential))),
                                    backend="torch")[0] for k, net in enumerate(nets)]
        else:
            records = run_episodes(nets, episodes, backend="torch", vectorise=mode == "vmap")
        loss = sum((r.logits ** 2).sum() + r.values.sum() + (r.final_state.plastic_weights ** 2).mean() for r in records)
        loss.backward()
        results[mode] = ([r.rates.detach() for r in records], [r.actions for r in records],
                         [{name: p.grad.clone() for name, p in net.named_parameters()} for net in nets])
    for mode in ("vmap", "alone"):
        for k, (a, b) in enumerate(zip(results["loop"][0], results[mode][0])):
            assert_float32_close(b, a, f"{mode}, network {k}: rates")
        assert all(torch.equal(a, b) for a, b in zip(results["loop"][1], results[mode][1]))
        for k, (a, b) in enumerate(zip(results["loop"][2], results[mode][2])):
            for name in a:  # each gradient to its own scale: entries are differences of far larger terms
                assert_float32_close(b[name], a[name], f"{mode}, network {k}: gradient of {name}")
