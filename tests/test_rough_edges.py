"""A new user's rough edges (issue 27): absurd numbers refused before any work, a truncated parameter file in
one whole line, files written with the ordinary mode, the recoded fit's progress and verdict."""
import dataclasses
import os
import typing
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from transitive.interface import cli
from transitive.model.io import ParameterFileError, atomic_save, atomic_write_bytes, atomic_write_text, load_network
from transitive.training.config import SETTING_RANGES, Range, SettingError, TrainConfig
from transitive.training.loss import LossWeights


def one_error_line(capsys, words) -> str:
    code = cli.main([str(w) for w in words])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, (code, lines)
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Loading a network, training or sweeping fails the test: a refusal must come first."""
    import transitive.scale.sweep  # noqa: F401
    import transitive.training.trainer  # noqa: F401

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the options were checked")
    for target in ("transitive.model.io.load_network", "transitive.training.trainer.Trainer",
                   "transitive.scale.sweep.run_sweep", "transitive.scale.sweep.plan_sweep"):
        monkeypatch.setattr(target, refuse)


# ---------------------------------------------------------------------------------------------------------
# Every numeric option has a range.

def test_every_numeric_training_setting_has_a_range():
    numeric = []
    for cls, prefix in ((TrainConfig, ""), (LossWeights, "loss.")):
        hints = typing.get_type_hints(cls)
        numeric += [prefix + f.name for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]
    assert sorted(numeric) == sorted(SETTING_RANGES)
    defaults = TrainConfig()
    defaults.validate()  # the defaults lie inside their ranges


@pytest.mark.parametrize("words, expected", [
    (["--lr", "1e9"], "--lr: expected a number above 0, at most 1, got '1e9'"),
    (["--lr", "5"], "--lr: expected a number above 0, at most 1, got '5'"),
    (["--lr", "nan"], "--lr: expected a number above 0, at most 1, got 'nan'"),
    (["--batch", "-3"], "--batch: expected a whole number from 1 to 65,536, got '-3'"),
    (["--grad-clip", "1e12"], "--grad-clip: expected a number above 0, at most 1000, got '1e12'"),
    (["--episodes", "100000000"], "--episodes: expected a whole number from 1 to 10,000,000"),
    (["--adam-eps", "inf"], "--adam-eps: expected a number above 0, at most 1"),
    (["--loss-entropy", "1e6"], "--loss-entropy: expected a number from 0 to 1000"),
    (["--seed", "-1"], "--seed: expected a whole number from 0 to 4,294,967,295"),
])
def test_absurd_training_settings_are_refused_before_any_work(tmp_path, capsys, no_work, words, expected):
    for command in (["train", "--out", tmp_path / "run" / "net.dat"],
                    ["sweep", "--seeds", "0-1", "--executor", "local", "--out", tmp_path / "sweep"]):
        if command[0] == "sweep" and words[0] == "--seed":
            continue  # a sweep has --seeds
        line = one_error_line(capsys, command + words)
        assert line.startswith(f"error: {expected}"), line
    assert not list(tmp_path.iterdir())  # no file, no folder


@pytest.mark.parametrize("words, expected", [
    (["eval", "net_active.dat", "--batch", "10000000"], "--batch: expected a whole number from 20 to 100,000"),
    (["eval", "net_active.dat", "--seed", "-5"], "--seed: expected a whole number from 0 to 4,294,967,295"),
    (["classify", "net_active.dat", "--threads", "100000"], "--threads: expected a whole number from 1 to 1,024"),
    (["figures", "net_active.dat", "--out", "OUT", "--recode-steps", "1e9"], "--recode-steps: expected a whole"),
    (["figures", "net_active.dat", "--out", "OUT", "--massed", "5000"], "--massed-trials: expected a whole number from 1"),
    (["bench", "--batch", "0"], "--batch: expected a whole number from 1 to 65,536"),
    (["bench", "--episodes", "1000000"], "--episodes: expected a whole number from 1 to 1,000"),
    (["train", "--out", "OUT/net.dat", "--stop-after-minutes", "-1"], "--stop-after-minutes: expected a number above 0"),
    (["sweep", "--seeds", "0", "--executor", "local", "--out", "OUT", "--mem", "1e9"], "--mem: expected a number"),
    (["sweep", "--seeds", "0", "--executor", "local", "--out", "OUT", "--poll", "0"], "--poll: expected a number above 0"),
    (["curves", "OUT", "--out", "OUT/f.png", "--batch", "1"], "--batch: expected a whole number from 20"),
])
def test_absurd_numbers_of_the_other_commands_are_refused(tmp_path, capsys, no_work, words, expected):
    words = [str(tmp_path / w[3:]) if w.startswith("OUT") else w for w in
             (w.replace("net_active.dat", str(ROOT / "net_active.dat")) for w in words)]
    line = one_error_line(capsys, words)
    assert line.startswith(f"error: {expected}"), line
    assert not list(tmp_path.iterdir())


def test_help_says_each_range():
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    train = " ".join(commands["train"].format_help().split())
    assert "Adam learning rate (lr); a number above 0, at most 1 (default: 0.0001)" in train
    assert "a whole number from 1 to 65,536 (default: 32)" in train
    figures = " ".join(commands["figures"].format_help().split())
    assert "a whole number from 20 to 100,000 (default: 2000)" in figures


def test_the_api_refuses_the_same_values():
    with pytest.raises(SettingError, match="lr: expected a number above 0, at most 1"):
        TrainConfig(lr=5.0).validate()
    with pytest.raises(SettingError, match="grad_clip"):
        TrainConfig(grad_clip=1e12).validate()
    assert Range(0, 1, above_low=True).allows(1) and not Range(0, 1, above_low=True).allows(0)
    assert not Range(1, 10, whole=True).allows(2.0) and not Range(1, 10, whole=True).allows(True)


# ---------------------------------------------------------------------------------------------------------
# Messages: a parameter file cut short.

def test_a_truncated_parameter_file_is_one_whole_line(tmp_path, capsys):
    half = tmp_path / "half.dat"
    data = (ROOT / "net_active.dat").read_bytes()
    half.write_bytes(data[:len(data) // 2])
    with pytest.raises(ParameterFileError) as caught:
        load_network(half)
    message = str(caught.value)
    assert message.startswith(f"cannot read parameter file {half}: the file is truncated or damaged, not a "
                              "complete torch file")
    assert message.endswith(")") and "miniz" not in message and len(message) < 300, message
    line = one_error_line(capsys, ["eval", half])
    assert line == f"error: {message}"


# ---------------------------------------------------------------------------------------------------------
# Files: every atomic write gives the ordinary mode (0666 less the umask), not mkstemp's 0600.

@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield 0o644
    os.umask(previous)


def mode(path) -> int:
    return Path(path).stat().st_mode & 0o777


def test_atomic_writes_have_the_ordinary_mode(tmp_path, umask_022):
    from transitive.model.io import save_network
    from transitive.model.network import PlasticNetwork
    atomic_save({"x": torch.zeros(2)}, tmp_path / "a.pt")
    atomic_write_text("text", tmp_path / "a.txt")
    atomic_write_bytes(b"bytes", tmp_path / "a.bin")
    save_network(PlasticNetwork(), tmp_path / "net.dat")
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == dict.fromkeys(["a.pt", "a.txt", "a.bin", "net.dat"],
                                                                           umask_022)
    os.umask(0o077)  # and a private umask is respected
    atomic_write_text("text", tmp_path / "private.txt")
    assert mode(tmp_path / "private.txt") == 0o600


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path):
    def fail(f):
        raise OSError("disk full")
    from transitive.model.io import _atomic_write
    with pytest.raises(OSError):
        _atomic_write(tmp_path / "x.txt", fail)
    assert not list(tmp_path.iterdir())


def test_a_training_run_and_a_sweep_record_have_the_ordinary_mode(tmp_path, umask_022):
    from transitive.scale.sweep import _write_record
    from transitive.training.trainer import train
    out = tmp_path / "net.dat"
    train(TrainConfig(episodes=2, batch=2, save_every=1, log_every=1, burn_in=0, max_items=5, learning_trials=4,
                      test_trials=2), out, progress=False)
    _write_record(tmp_path, {"jobs": {}})
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == dict.fromkeys(
        ["net.dat", "net.ckpt", "net.csv", "sweep.json"], umask_022)


# ---------------------------------------------------------------------------------------------------------
# The recoded fit: a progress bar over its steps, and a last line that says whether it reached its target.

def test_fit_verdict_says_what_the_target_is_for_and_whether_the_figures_are_valid():
    from transitive.evaluation.item_representations import fit_verdict
    assert fit_verdict(1, -1215.7, -800.0) == \
        "recoded fit 1: loss -1215.7, convergence target -800.0 (lower is better): converged, figures valid"
    assert fit_verdict(1, -795.0, -800.0).endswith(": within 1% of it, converged, figures valid")
    assert fit_verdict(1, -100.0, -800.0, again=True).endswith(": not converged, figures from it are unreliable; "
                                                                "fitting again")


def test_the_recoded_fit_shows_its_steps_and_its_verdict(capsys):
    from transitive.evaluation.item_representations import fit_recoded
    from transitive.model.network import PlasticNetwork
    net = PlasticNetwork()
    psi = torch.tanh(torch.randn(3, 4, net.w.shape[0]))
    lines = []
    fit_recoded(net, psi, steps=7, attempts=1, log=lines.append, progress=True)
    bar = capsys.readouterr().err
    assert "recoded fit 1" in bar and "/7 [" in bar and "step" in bar
    assert len(lines) == 1 and lines[0].startswith("recoded fit 1: loss ") and "target" in lines[0]
    assert "converged, figures valid" in lines[0] or "not converged" in lines[0]
    fit_recoded(net, psi, steps=7, attempts=1, log=lines.append)  # no bar unless asked
    assert capsys.readouterr().err == ""
