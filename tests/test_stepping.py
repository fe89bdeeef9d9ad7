"""The step after the backward for all members at once (transitive.training.stepping): the numbers of
clip_grad_norm_ and Adam.step member by member, bit for bit, with the optimizers' states as Adam keeps them;
and training that diverges stops with one line, keeping the files of the last save."""
import copy

import pytest
import torch

from transitive.interface.cli import main
from transitive.model.network import PlasticNetwork
from transitive.training import stepping
from transitive.training.stepping import TrainingDiverged, adam_step, clip_gradients
from transitive.training.trainer import TrainConfig, Trainer, paths_for


def networks(count: int):
    torch.manual_seed(0)
    return [PlasticNetwork(hidden_size=12) for _ in range(count)]


def give_gradients(step: int, *groups):
    """The same random gradients to the networks of every group; large on odd steps (clipped), small on even."""
    g = torch.Generator().manual_seed(step)
    for nets in zip(*groups):
        for params in zip(*(n.parameters() for n in nets)):
            gradient = torch.randn(params[0].shape, generator=g) * (30.0 if step % 2 else 0.01)
            for p in params:
                p.grad = gradient.clone()


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_clipping_and_adam_together_equal_member_by_member(weight_decay):
    together, alone = networks(3), networks(3)
    def make(nets):
        return [torch.optim.Adam(n.parameters(), lr=1e-3, eps=1e-6, weight_decay=weight_decay) for n in nets]

    optimizers, references = make(together), make(alone)
    optimizers[2].param_groups[0]["lr"] = references[2].param_groups[0]["lr"] = 3e-4  # lr may differ by member
    for step in range(4):
        give_gradients(step, together, alone)
        limits = (3.0, 3.0, 0.7) if step % 2 else (2.0, 2.0, 2.0)  # differing by member, or one for all
        norms = clip_gradients([list(n.parameters()) for n in together], list(limits))
        expected = [torch.nn.utils.clip_grad_norm_(n.parameters(), c) for n, c in zip(alone, limits)]
        assert torch.equal(norms, torch.stack(expected))
        adam_step(optimizers)
        for o in references:
            o.step()
        for a, b in zip(together, alone):
            for p, q in zip(a.parameters(), b.parameters()):
                assert torch.equal(p.grad, q.grad) and torch.equal(p, q)
    for o, r in zip(optimizers, references):  # the checkpoints' optimizer states are Adam's own
        mine, theirs = o.state_dict(), r.state_dict()
        assert mine["param_groups"] == theirs["param_groups"] and mine["state"].keys() == theirs["state"].keys()
        for index, state in theirs["state"].items():
            for name, value in state.items():
                ours = mine["state"][index][name]
                assert torch.equal(ours, value) and ours.dtype == value.dtype


def test_a_loaded_optimizer_continues_from_its_steps():
    together, alone = networks(1), networks(1)
    first = torch.optim.Adam(together[0].parameters(), lr=1e-3)
    reference = torch.optim.Adam(alone[0].parameters(), lr=1e-3)
    for step in range(3):
        give_gradients(step, together, alone)
        adam_step([first])
        reference.step()
    resumed = torch.optim.Adam(together[0].parameters(), lr=1e-3)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    give_gradients(3, together, alone)
    adam_step([resumed])
    reference.step()
    for p, q in zip(together[0].parameters(), alone[0].parameters()):
        assert torch.equal(p, q)


# ---------------------------------------------------------------------------------------------------------
# Divergence.

def tiny(**changes):
    values = dict(episodes=6, batch=2, save_every=2, log_every=3, burn_in=0, max_items=4, learning_trials=3,
                  test_trials=2, regime="continual")
    values.update(changes)
    return TrainConfig(**values)


def poison_at(monkeypatch, episode: int, seed: int | None = None, what: str = "gradient"):
    """From `episode` on, member `seed` (any member when None) gets a NaN gradient (before the clipping) or a
    NaN parameter (after the Adam step)."""
    original = stepping.step_members

    def step_members(members, finals):
        for m in members:
            if m.episode >= episode and (seed is None or m.config.seed == seed):
                if what == "gradient":
                    m.net.w.grad[0, 0] = float("nan")
        norms = original(members, finals)
        for m in members:
            if what == "parameter" and m.episode >= episode and (seed is None or m.config.seed == seed):
                with torch.no_grad():
                    m.net.alpha.view(-1)[0] = float("inf")
        return norms

    monkeypatch.setattr("transitive.training.trainer.step_members", step_members)


@pytest.mark.parametrize("what", ["gradient", "parameter"])
def test_a_non_finite_gradient_or_parameter_stops_training_and_keeps_the_last_save(tmp_path, monkeypatch, what):
    poison_at(monkeypatch, 3, what=what)
    trainer = Trainer(tiny(seed=4), tmp_path / "net.dat", progress=False)
    with pytest.raises(TrainingDiverged) as error:
        trainer.train()
    message = str(error.value)
    assert "\n" not in message and "episode 3 " in message and "seed 4" in message
    assert ("gradient norm nan" in message) if what == "gradient" else ("parameters alpha after the step" in message)
    saved = torch.load(paths_for(tmp_path / "net.dat")["checkpoint"], weights_only=False)
    assert saved["episode"] == 2 and [row["episode"] for row in saved["curve"]] == [0]
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    params = torch.load(tmp_path / "net.dat", weights_only=True)
    assert all(torch.equal(params[k], saved["model"][k]) for k in saved["model"])


def test_a_population_names_the_seed_that_diverged(tmp_path, monkeypatch):
    poison_at(monkeypatch, 1, seed=6)
    trainer = Trainer(tiny(), tmp_path, progress=False, seeds=[5, 6])
    with pytest.raises(TrainingDiverged, match=r"episode 1 \(seed 6\)"):
        trainer.train()
    assert not paths_for(tmp_path / "seed_6" / "net.dat")["checkpoint"].exists()  # nothing saved before episode 2


def test_train_command_says_one_line_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    poison_at(monkeypatch, 2)
    out = tmp_path / "net.dat"
    status = main(["train", "--out", out, "--episodes", "5", "--batch", "2", "--burn-in", "0", "--lr", "1",
                   "--learning-trials", "3", "--test-trials", "2", "--max-items", "4", "--save-every", "2",
                   "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert status != 0 and len(lines) == 1 and "training diverged at episode 2" in lines[0]
    assert torch.load(paths_for(out)["checkpoint"], weights_only=False)["episode"] == 2


def test_one_read_of_the_device_per_episode(tmp_path, monkeypatch):
    """The trainer itself (drawing, loss, clipping, Adam, divergence check) reads the device once per episode
    that is not logged (the engine's own reads aside: here the definition, which has none)."""
    from transitive.scale.benchmark import WorkCounter
    monkeypatch.setenv("TRANSITIVE_KERNEL", "torch")
    trainer = Trainer(tiny(episodes=8, log_every=100), tmp_path, progress=False, seeds=[1, 2, 3])
    for m, _ in trainer.train_one_episode():  # episode 0: logged, and the optimizers' first step
        m.episode += 1
    for episode in (1, 2, 3):  # 3: a reset, the list lengths are read too
        with WorkCounter() as counter:
            for m, _ in trainer.train_one_episode():
                m.episode += 1
        # the check (1), the item draws' progress (1 read per 16 rounds: 1 here), the list lengths at a reset
        assert counter.syncs == (3 if episode == 3 else 2), counter.syncs_by_name
        assert counter.syncs_by_name == {"tolist": counter.syncs}
