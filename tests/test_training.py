"""Meta-training: determinism, checkpoints, resumption as if uninterrupted, atomic saves."""
import csv
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from transitive.model import io as tio
from transitive.engine.episode import run_episode, run_episodes
from transitive.model.io import ParameterFileError, load_network
from transitive.training.trainer import CURVE_COLUMNS, TrainConfig, Trainer, paths_for, read_curve, train


def small_config(**changes):
    values = dict(episodes=6, batch=3, seed=7, save_every=2, log_every=1, burn_in=1, max_items=5,
                  learning_trials=4, test_trials=3, regime="continual")
    values.update(changes)
    return TrainConfig(**values)


def state_of(trainer):
    return {k: v.clone() for k, v in trainer.net.state_dict().items()}


def timeless(curve):
    """A training log without its one measured (not reproducible) column."""
    return [{k: v for k, v in row.items() if k != "episodes_per_second"} for row in curve]


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_run(tmp_path):
    a = train(small_config(episodes=4), tmp_path / "a.dat", progress=False)
    b = train(small_config(episodes=4), tmp_path / "b.dat", progress=False)
    c = train(small_config(episodes=4, seed=8), tmp_path / "c.dat", progress=False)
    assert_same_params(state_of(a), state_of(b))
    assert timeless(a.curve) == timeless(b.curve)
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
    assert timeless(whole.curve) == timeless(resumed.curve)
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
    for changes in (dict(alpha_shape="neuron"), dict(alpha_shape="scalar")):
        trainer = train(small_config(episodes=2, **changes), tmp_path / f"{changes['alpha_shape']}.dat", progress=False)
        assert trainer.net.alpha_shape == changes["alpha_shape"]
        assert load_network(trainer.paths["params"]).alpha_shape == changes["alpha_shape"]


def test_positive_alpha_clips_after_every_step_and_init_only_does_not(tmp_path):
    """POSALPHA: |alpha| at init and alpha >= 0 after every step; POSALPHAINITONLY: |alpha| at init only."""
    runs = {}
    for name in ("positive_alpha", "positive_alpha_init_only"):
        trainer = Trainer(small_config(episodes=2, lr=1e-3, **{name: True}), tmp_path / f"{name}.dat", progress=False)
        assert (trainer.net.alpha >= 0).all()
        trainer.train()
        runs[name] = trainer.net.alpha.detach()
    assert (runs["positive_alpha"] >= 0).all() and (runs["positive_alpha"] == 0).any()
    assert (runs["positive_alpha_init_only"] < 0).any()  # one Adam step of ~lr pushes small ones below 0
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(positive_alpha=True, positive_alpha_init_only=True).validate()


def test_older_configs_map_to_the_present_alpha_switches():
    old = lambda **alpha: TrainConfig.from_dict({**asdict(TrainConfig()), **alpha})  # noqa: E731
    clipped = old(positive_alpha=True, clip_alpha=True)
    assert clipped.positive_alpha and not clipped.positive_alpha_init_only
    init_only = old(positive_alpha=True, clip_alpha=False)
    assert init_only.positive_alpha_init_only and not init_only.positive_alpha
    assert not old(positive_alpha=False, clip_alpha=False).positive_alpha
    assert not hasattr(TrainConfig(), "clip_alpha")


def test_frozen_input_zeroes_two_thirds_of_the_input_rows_and_never_trains_them(tmp_path):
    trainer = Trainer(small_config(episodes=3, frozen_input=True), tmp_path / "frozen.dat", progress=False)
    weight, bias = trainer.net.i2h.weight, trainer.net.i2h.bias
    third = trainer.net.hidden_size // 3
    assert (weight[third:] == 0).all() and (weight[:third] != 0).all()
    assert (bias == 0).all()  # the whole input bias, as the original's add-on
    before = (weight.detach().clone(), bias.detach().clone())
    w_before = trainer.net.w.detach().clone()
    trainer.train()
    assert torch.equal(trainer.net.i2h.weight, before[0]) and torch.equal(trainer.net.i2h.bias, before[1])
    assert not torch.equal(trainer.net.w, w_before)  # the rest did train
    # the same initial values as an unfrozen network of the same seed, in the first third
    plain = Trainer(small_config(episodes=3), tmp_path / "plain.dat", progress=False)
    assert torch.equal(plain.net.i2h.weight[:third], before[0][:third])
    assert (plain.net.i2h.weight[third:] != 0).any()
    resumed = Trainer(small_config(episodes=3, frozen_input=True), tmp_path / "frozen.dat", resume=True, progress=False)
    assert not resumed.net.i2h.weight.requires_grad and torch.equal(resumed.net.i2h.weight, before[0])


def test_branching_from_another_runs_checkpoint(tmp_path):
    """--start-from: the branch continues the source run exactly, but under its own loss settings."""
    from transitive.training.loss import LossWeights
    source = train(small_config(episodes=4), tmp_path / "source.dat", progress=False)
    source_checkpoint = paths_for(tmp_path / "source.dat")["checkpoint"]
    same = train(small_config(episodes=6), tmp_path / "same.dat", progress=False, start_from=source_checkpoint)
    whole = train(small_config(episodes=6), tmp_path / "whole.dat", progress=False)
    assert_same_params(state_of(whole), state_of(same))  # a branch with unchanged settings = the source run
    assert timeless(same.curve) == timeless(whole.curve) and same.run.started_from["episode"] == 4

    penalised = small_config(episodes=6, loss=LossWeights(delay_feedback_ratio=1.0))
    branch = train(penalised, tmp_path / "branch.dat", progress=False, start_from=source_checkpoint)
    assert branch.episode == 6 and timeless(branch.curve[:4]) == timeless(source.curve)
    assert not torch.equal(state_of(branch)["h2DA.weight"], state_of(whole)["h2DA.weight"])
    # Resuming the branch keeps its own settings and its origin; a resumed run with other settings is refused.
    resumed = Trainer(small_config(episodes=8, loss=LossWeights(delay_feedback_ratio=1.0)), tmp_path / "branch.dat",
                      resume=True, progress=False, start_from=source_checkpoint)
    assert resumed.episode == 6 and resumed.run.started_from == branch.run.started_from
    with pytest.raises(ParameterFileError, match="delay_feedback_ratio|loss"):
        Trainer(small_config(episodes=8), tmp_path / "branch.dat", resume=True, progress=False)
    # Branching needs the same network layout and a source before the last episode.
    with pytest.raises(ParameterFileError, match="alpha_shape"):
        Trainer(small_config(alpha_shape="neuron"), tmp_path / "other.dat", progress=False, start_from=source_checkpoint)
    with pytest.raises(ParameterFileError, match="episode 4"):
        Trainer(small_config(episodes=4), tmp_path / "late.dat", progress=False, start_from=source_checkpoint)


# ---------------------------------------------------------------------------------------------------------
# Random state, one episode in three methods, settings handed to the runner and the optimizer.

def test_the_callers_random_state_is_left_alone(tmp_path):
    torch.manual_seed(99)
    before = torch.get_rng_state()
    trainer = Trainer(small_config(episodes=3), tmp_path / "a.dat", progress=False)
    trainer.train()
    assert torch.equal(torch.get_rng_state(), before)
    resumed = Trainer(small_config(episodes=5), tmp_path / "a.dat", resume=True, progress=False)
    resumed.train()
    assert torch.equal(torch.get_rng_state(), before)
    # ... and a run does not depend on it either
    torch.manual_seed(12345)
    again = train(small_config(episodes=3), tmp_path / "b.dat", progress=False)
    assert timeless(again.curve) == timeless(resumed.curve[:3])


def test_one_episode_is_trials_then_episode_then_loss_then_step(tmp_path):
    """train_one_episode's values are, for the member's own trials, episode and loss (run here by hand on a
    twin of the same seed), the loss terms, the gradient norm before clipping and m(t); the step applied was
    clipped."""
    from transitive.training.loss import loss_terms
    from transitive.training.regimes import draw_trials
    from transitive.training.seed_run import SeedRun
    config = small_config(episodes=3, grad_clip=1e-3)
    trainer = Trainer(config, tmp_path / "a.dat", progress=False)
    twin = SeedRun(config, tmp_path / "b.dat")
    assert not trainer.finished
    twin.start_episode()
    trials = draw_trials([twin.curriculum], [twin.episode], [twin.generator])[0]
    assert trials.ntrials == config.learning_trials + config.test_trials and trials.batch == config.batch
    record = run_episode(twin.net, trials, generator=twin.generator)
    terms = loss_terms(record, config.loss, twin.net.modulation_gain)
    params = [p for p in twin.net.parameters()]
    grads = torch.autograd.grad(terms["loss"], params)
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    [(member, values)] = trainer.train_one_episode()
    assert member is trainer.members[0]
    assert list(values) == [c for c in CURVE_COLUMNS if c not in ("episode", "episodes_per_second")]
    assert values["grad_norm"] == pytest.approx(norm, rel=1e-4) and norm > 100 * config.grad_clip
    clipped = torch.sqrt(sum((p.grad ** 2).sum() for p in trainer.net.parameters())).item()
    assert clipped == pytest.approx(config.grad_clip, rel=1e-3)  # what was applied was clipped
    for column, term in (("loss", "loss"), ("policy_loss", "policy"), ("value_loss", "value"),
                         ("entropy_term", "entropy"), ("plastic_penalty", "plastic_penalty")):
        assert values[column] == pytest.approx(terms[term].item(), rel=1e-5), column
    test_steps = record.rewards[:, -4 * config.test_trials:]
    assert values["test_reward"] == pytest.approx(test_steps.sum(1).mean().item())
    assert values["percent_correct"] == pytest.approx(50 + 5 * values["test_reward"])
    assert values["test_accuracy"] == pytest.approx(record.correct[:, -config.test_trials:].float().mean().item())
    assert values["modulation_feedback"] == pytest.approx(record.modulation[:, 2::4].abs().mean().item())
    assert values["modulation_delay"] == pytest.approx(record.modulation[:, 3::4].abs().mean().item())
    assert (values["eta"], values["DAmult"]) == pytest.approx((0.7, 1.0))  # episode 0: burn-in, no step
    assert values["alpha_abs_mean"] == pytest.approx(trainer.net.alpha.abs().mean().item())
    assert trainer.run.carried is not None  # continual regime: the final state is kept
    trainer.members[0].episode = 3
    assert trainer.finished


def test_training_log_columns_and_values(tmp_path):
    """A 3-episode run: the CSV has the columns in order, one row per episode, equal to train_one_episode's."""
    out = tmp_path / "net.dat"
    trainer = train(small_config(episodes=3, save_every=3), out, progress=False)
    with open(paths_for(out)["curve"]) as f:
        header = next(csv.reader(f))
    assert header == list(CURVE_COLUMNS)
    rows = read_curve(paths_for(out)["curve"])
    assert [r["episode"] for r in rows] == [0, 1, 2]
    assert rows == trainer.curve  # floats written in full: read back exactly
    # the same seed's first episode, one step at a time, gives the first row
    by_hand = Trainer(small_config(episodes=3), tmp_path / "other.dat", progress=False)
    [(_, values)] = by_hand.train_one_episode()
    assert {k: v for k, v in rows[0].items() if k not in ("episode", "episodes_per_second")} == pytest.approx(values)
    assert all(r["episodes_per_second"] > 0 for r in rows)
    assert rows[2]["alpha_abs_mean"] != rows[0]["alpha_abs_mean"]  # steps from episode 1 on (burn_in=1)
    assert all(0 <= r["test_accuracy"] <= 1 and r["grad_norm"] > 0 and r["modulation_feedback"] > 0 for r in rows)


def test_read_curve_reads_the_older_four_column_logs(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("episode,test_reward,percent_correct,loss\n0,-0.5,47.5,0.01\n10,1.0,55.0,0.02\n")
    assert read_curve(old) == [{"episode": 0, "test_reward": -0.5, "percent_correct": 47.5, "loss": 0.01},
                               {"episode": 10, "test_reward": 1.0, "percent_correct": 55.0, "loss": 0.02}]
    shipped = Path(__file__).resolve().parents[1] / "net_active.csv"
    if shipped.exists():
        rows = read_curve(shipped)
        assert len(rows) > 100 and set(rows[0]) >= {"episode", "test_reward", "percent_correct", "loss"}


def test_tensorboard_when_installed_and_one_warning_line_when_not(tmp_path, monkeypatch, capsys):
    import sys
    import types
    written = []

    class FakeWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            written.append((self.log_dir, tag, value, step))

        def close(self):
            written.append("closed")

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    trainer = train(small_config(episodes=2, tensorboard=True), tmp_path / "net.dat", progress=False)
    assert written[-1] == "closed"
    scalars = written[:-1]
    assert {w[0] for w in scalars} == {str(tmp_path / "net.tensorboard")}
    assert [(tag, step) for _, tag, _, step in scalars] == \
        [(f"train/{c}", e) for e in (0, 1) for c in CURVE_COLUMNS if c != "episode"]
    assert scalars[0][2] == trainer.curve[0]["test_reward"]

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: not installed
    capsys.readouterr()
    trainer = train(small_config(episodes=2, tensorboard=True), tmp_path / "other.dat", progress=False)
    err = capsys.readouterr().err
    assert trainer.episode == 2 and len(err.strip().splitlines()) == 1 and "TensorBoard" in err
    # a resumed run may switch TensorBoard on or off
    Trainer(small_config(episodes=4), tmp_path / "other.dat", resume=True, progress=False)


def test_settings_reach_the_runner_and_the_optimizer(tmp_path, monkeypatch):
    from transitive.training import loss
    from transitive.training.loss import LossWeights
    seen = []

    def recording_runner(*args, **kwargs):
        seen.append((args, kwargs))
        return run_episodes(*args, **kwargs)

    monkeypatch.setattr(loss, "run_episodes", recording_runner)
    config = small_config(episodes=1, reset_rates_every_trial=False, reset_trace_every_trial=False,
                          loss=LossWeights(action1_penalty=0.05, weight_decay=1e-3))
    trainer = train(config, tmp_path / "a.dat", progress=False)
    (nets, episodes), options = seen[0]
    assert nets == [trainer.net] and options["action_penalty"] == 0.05
    assert not options["reset_rates_every_trial"] and not options["reset_trace_every_trial"]
    assert all(group["weight_decay"] == 1e-3 for group in trainer.run.optimizer.param_groups)


def test_a_checkpoint_without_generator_state_resumes_with_a_warning(tmp_path, capsys):
    out = tmp_path / "old.dat"
    train(small_config(episodes=2), out, progress=False)
    checkpoint = paths_for(out)["checkpoint"]
    saved = torch.load(checkpoint, weights_only=True)
    del saved["generator"]
    saved["config"]["clip_alpha"] = False  # as an older version wrote it
    torch.save(saved, checkpoint)
    capsys.readouterr()
    resumed = train(small_config(episodes=4), out, resume=True, progress=False)
    assert resumed.episode == 4 and "random" in capsys.readouterr().err


def test_every_loss_term_in_the_total_is_a_column_of_the_log(tmp_path):
    """Optional penalties, when weighted, get their own column (and TensorBoard scalar): the logged terms add
    up to the logged loss."""
    from transitive.training.loss import LossWeights
    out = tmp_path / "net.dat"
    config = small_config(episodes=2, loss=LossWeights(modulation_l1=0.01, rate_l1=0.02, delay_drive=0.5))
    train(config, out, progress=False)
    with open(paths_for(out)["curve"]) as f:
        header = next(csv.reader(f))
    assert header == [*CURVE_COLUMNS, "modulation_penalty", "rate_penalty", "delay_drive"]
    for row in read_curve(paths_for(out)["curve"]):
        terms = ("policy_loss", "value_loss", "entropy_term", "plastic_penalty", "modulation_penalty",
                 "rate_penalty", "delay_drive")
        assert all(row[t] != 0 for t in terms[4:])
        assert sum(row[t] for t in terms) == pytest.approx(row["loss"], rel=1e-5)
    plain = tmp_path / "plain.dat"
    train(small_config(episodes=1), plain, progress=False)
    with open(paths_for(plain)["curve"]) as f:
        assert next(csv.reader(f)) == list(CURVE_COLUMNS)  # no weight, no column


def test_loss_weights_under_their_earlier_names_still_load():
    """Checkpoints and sweep records written before the loss weights were named for what they weigh."""
    old = {"episodes": 5, "loss": {"lda": 0.1, "lhl1": 0.2, "wp": 0.3, "l2": 0.4, "step3_modulation": 0.5,
                                   "step3_ratio": 0.6, "step3_drive": 0.7, "discount": 0.8}}
    loss = TrainConfig.from_dict(old).loss
    assert (loss.modulation_l1, loss.rate_l1, loss.action1_penalty, loss.weight_decay, loss.delay_modulation_l1,
            loss.delay_feedback_ratio, loss.delay_drive, loss.discount) == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
