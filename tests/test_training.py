"""Meta-training: determinism, checkpoints, resumption as if uninterrupted, atomic saves."""
import csv

import pytest
import torch

from transitive import io as tio
from transitive.io import ParameterFileError, load_network
from transitive.training import TrainConfig, Trainer, paths_for, train


def small_config(**changes):
    values = dict(episodes=6, batch=3, seed=7, save_every=2, log_every=1, burn_in=1, max_items=5,
                  learning_trials=4, test_trials=3, regime="continual")
    values.update(changes)
    return TrainConfig(**values)


def state_of(trainer):
    return {k: v.clone() for k, v in trainer.net.state_dict().items()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_run(tmp_path):
    a = train(small_config(episodes=4), tmp_path / "a.dat", progress=False)
    b = train(small_config(episodes=4), tmp_path / "b.dat", progress=False)
    c = train(small_config(episodes=4, seed=8), tmp_path / "c.dat", progress=False)
    assert_same_params(state_of(a), state_of(b))
    assert a.curve == b.curve
    assert any(not torch.equal(state_of(a)[k], state_of(c)[k]) for k in state_of(a))


def test_training_changes_parameters_after_burn_in(tmp_path):
    torch.manual_seed(7)
    trainer = Trainer(small_config(episodes=1, burn_in=1), tmp_path / "x.dat", progress=False)
    before = state_of(trainer)
    trainer.train()
    assert_same_params(before, state_of(trainer))  # episode 0 is burn-in: no step
    trainer.config.episodes = 2
    trainer.train()
    assert not torch.equal(before["w"], state_of(trainer)["w"])


def stop_after_three(config, out):
    """Train until the end of episode 3 (not a save point, mid-way between resets), as if interrupted."""
    first = Trainer(config, out, progress=False)
    original = first.train_one_episode

    def one_episode():
        result = original()
        if first.episode == 2:
            first.stop_requested = True
        return result

    first.train_one_episode = one_episode
    first.train()
    assert first.episode == 3 and paths_for(out)["checkpoint"].exists()


@pytest.mark.parametrize("regime", ["continual", "simple"])
def test_resume_continues_as_if_uninterrupted(tmp_path, regime):
    whole = train(small_config(regime=regime), tmp_path / "whole.dat", progress=False)
    # The same run, stopped after episode 3 (not a save point, mid-way between resets) and resumed.
    stop_after_three(small_config(regime=regime), tmp_path / "parts.dat")
    resumed = train(small_config(regime=regime), tmp_path / "parts.dat", resume=True, progress=False)
    assert resumed.episode == 6
    assert_same_params(state_of(whole), state_of(resumed))
    assert whole.curve == resumed.curve
    assert_same_params(load_network(tmp_path / "whole.dat").state_dict(), load_network(tmp_path / "parts.dat").state_dict())


def test_outputs_curve_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run" / "net.dat"
    trainer = train(small_config(episodes=4, log_every=2), out, progress=False)
    paths = paths_for(out)
    rows = list(csv.DictReader(open(paths["curve"])))
    assert [int(float(r["episode"])) for r in rows] == [0, 2]
    for r in rows:
        assert float(r["percent_correct"]) == pytest.approx(50 + 5 * float(r["test_reward"]))
        assert -3 <= float(r["test_reward"]) <= 3
    assert load_network(out) is not None and trainer.episode == 4
    with pytest.raises(ParameterFileError, match="--resume"):
        Trainer(small_config(episodes=4), out, progress=False)
    with pytest.raises(ParameterFileError, match="other settings"):
        Trainer(small_config(episodes=8, batch=5), out, resume=True, progress=False)


def test_atomic_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "net.dat"
    tio.atomic_save({"x": torch.ones(3)}, path)

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(tio.torch, "save", broken_save)
    with pytest.raises(OSError):
        tio.atomic_save({"x": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["net.dat"]


def test_variants(tmp_path):
    for changes in (dict(alpha_shape="neuron"), dict(alpha_shape="scalar"),
                    dict(positive_alpha=True, clip_alpha=True), dict(frozen_input=True)):
        trainer = train(small_config(episodes=2, **changes), tmp_path / f"{len(changes)}{changes}.dat", progress=False)
        net = trainer.net
        if "alpha_shape" in changes:
            assert net.alpha_shape == changes["alpha_shape"]
            assert load_network(trainer.paths["params"]).alpha_shape == changes["alpha_shape"]
        if changes.get("clip_alpha"):
            assert (net.alpha >= 0).all()
        if changes.get("frozen_input"):
            torch.manual_seed(7)
            from transitive.network import PlasticNetwork
            assert torch.equal(PlasticNetwork().i2h.weight, net.i2h.weight)
    with pytest.raises(ValueError):
        TrainConfig(clip_alpha=True).validate()


def test_branching_from_another_runs_checkpoint(tmp_path):
    """--start-from: the branch continues the source run exactly, but under its own loss settings."""
    from transitive.loss import LossWeights
    source = train(small_config(episodes=4), tmp_path / "source.dat", progress=False)
    source_checkpoint = paths_for(tmp_path / "source.dat")["checkpoint"]
    same = train(small_config(episodes=6), tmp_path / "same.dat", progress=False, start_from=source_checkpoint)
    whole = train(small_config(episodes=6), tmp_path / "whole.dat", progress=False)
    assert_same_params(state_of(whole), state_of(same))  # a branch with unchanged settings = the source run
    assert same.curve == whole.curve and same.started_from["episode"] == 4

    penalised = small_config(episodes=6, loss=LossWeights(step3_ratio=1.0))
    branch = train(penalised, tmp_path / "branch.dat", progress=False, start_from=source_checkpoint)
    assert branch.episode == 6 and branch.curve[:4] == source.curve
    assert not torch.equal(state_of(branch)["h2DA.weight"], state_of(whole)["h2DA.weight"])
    # Resuming the branch keeps its own settings and its origin; a resumed run with other settings is refused.
    resumed = Trainer(small_config(episodes=8, loss=LossWeights(step3_ratio=1.0)), tmp_path / "branch.dat",
                      resume=True, progress=False, start_from=source_checkpoint)
    assert resumed.episode == 6 and resumed.started_from == branch.started_from
    with pytest.raises(ParameterFileError, match="step3_ratio|loss"):
        Trainer(small_config(episodes=8), tmp_path / "branch.dat", resume=True, progress=False)
    # Branching needs the same network layout and a source before the last episode.
    with pytest.raises(ParameterFileError, match="alpha_shape"):
        Trainer(small_config(alpha_shape="neuron"), tmp_path / "other.dat", progress=False, start_from=source_checkpoint)
    with pytest.raises(ParameterFileError, match="episode 4"):
        Trainer(small_config(episodes=4), tmp_path / "late.dat", progress=False, start_from=source_checkpoint)
