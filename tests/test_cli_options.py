"""The command line's options come from the one configuration: every TrainConfig and LossWeights field is an
option of `train` and `sweep`, setting it reaches the configuration, every --help shows defaults, and
argument errors name the option and the expected value in plain words."""
import dataclasses
import re
import typing

import pytest

from transitive.interface import cli, cli_training
from transitive.training.trainer import TrainConfig


def config_fields():
    """(key, field, nested) for every field, nested ones included: 'batch', 'loss.discount', ..."""
    hints = typing.get_type_hints(TrainConfig)
    rows = []
    for field in dataclasses.fields(TrainConfig):
        if dataclasses.is_dataclass(hints[field.name]):
            rows += [(f"{field.name}.{f.name}", f, True) for f in dataclasses.fields(hints[field.name])]
        else:
            rows.append((field.name, field, False))
    return rows


def option_for(key: str) -> str:
    prefix, _, name = key.rpartition(".")
    return "--" + (f"{prefix}_{name}" if prefix else name).replace("_", "-")


def other_value(key: str, field):
    """Command-line words that set `field` to a valid value other than its default, and that value."""
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    option = option_for(key)
    if isinstance(default, bool):
        return ([f"--no-{option[2:]}"] if default else [option]), not default
    if isinstance(default, int):
        value = default + 1
    elif isinstance(default, float):
        value = default / 2 if default else 0.5
    elif key == "regime":
        value = "simple" if default == "continual" else "continual"
    elif key == "alpha_shape":
        value = "neuron" if default != "neuron" else "synapse"
    elif key == "device":
        value = "cpu:0"  # another spelling of the CPU: no GPU needed
    elif key == "network":
        value = "no-modulation"  # a control (the classes' own names are checked)
    else:
        value = f"{default}x"
    return [option, str(value)], value


def value_of(config, key):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def parse(*words):
    return cli.build_parser().parse_args(list(map(str, words)))


def test_every_field_has_an_option_with_help_and_default():
    text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for key, field, _ in config_fields():
        assert option_for(key) in text, key
        assert field.metadata.get("help"), f"{key} has no help text in its metadata"


@pytest.mark.parametrize("key,field", [(k, f) for k, f, _ in config_fields()], ids=lambda x: str(x)[:30])
def test_setting_each_field_reaches_the_train_config(key, field, tmp_path):
    words, expected = other_value(key, field)
    args = parse("train", "--out", tmp_path / "net.dat", *words)
    config = cli_training._config(args, "train")
    assert value_of(config, key) == expected
    untouched = TrainConfig(device=cli_training.default_device())
    for other, _, _ in config_fields():  # nothing else moved
        if other != key:
            assert value_of(config, other) == value_of(untouched, other), other


def test_train_command_trains_with_the_options(monkeypatch, tmp_path):
    seen = {}

    class FakeTrainer:
        curve, episode, episodes_run, seconds, stop_requested = [], 7, 0, 0.0, False

        def __init__(self, config, out, resume=False, progress=True, start_from=None, seeds=None, stop_after=None):
            seen.update(config=config, out=out, resume=resume, progress=progress, seeds=seeds)

        def train(self):
            return self

    monkeypatch.setattr("transitive.training.trainer.Trainer", FakeTrainer)
    out = tmp_path / "net.dat"
    assert cli.main(["train", "--out", str(out), "--lr", "3e-4", "--burn-in", "5", "--loss-discount", "0.5",
                     "--step3-drive-penalty", "1.0", "--alpha", "scalar", "--positive-alpha", "--quiet",
                     "--regime", "simple"]) == 0
    config = seen["config"]
    assert (config.lr, config.burn_in, config.loss.discount, config.loss.delay_drive) == (3e-4, 5, 0.5, 1.0)
    assert (config.alpha_shape, config.positive_alpha, config.regime) == ("scalar", True, "simple")
    assert seen["out"] == str(out) and seen["progress"] is False and seen["seeds"] is None


def test_sweep_passes_every_setting(monkeypatch, tmp_path):
    seen = {}

    def fake_run_sweep(seeds, out, config=None, resources=None, wait=False, poll_s=60.0, echo=print, population=1):
        seen.update(seeds=seeds, config=config, population=population)
        return {"states": [], "jobs": {}, "results": {}}

    monkeypatch.setattr("transitive.scale.sweep.run_sweep", fake_run_sweep)
    assert cli.main(["sweep", "--seeds", "0-2", "--out", str(tmp_path / "sweep"), "--executor", "local",
                     "--episodes", "50", "--batch", "4", "--loss-entropy", "0.2", "--lr", "2e-4",
                     "--regime", "simple", "--population", "2"]) == 0
    config = seen["config"]  # the configuration itself, not taken apart
    assert seen["seeds"] == [0, 1, 2] and seen["population"] == 2 and isinstance(config, TrainConfig)
    assert (config.episodes, config.batch, config.lr, config.loss.entropy, config.regime) == (50, 4, 2e-4, 0.2,
                                                                                             "simple")


def test_every_help_shows_defaults():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == set(cli.COMMANDS)
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        shown = 0
        for action in sub._actions:
            if action.default in (None, False, [], "==SUPPRESS==") or action.required or not action.option_strings:
                continue
            assert f"(default: {action.default})" in text, f"{name} {action.option_strings[0]}"
            shown += 1
        assert shown >= 1, name
    assert "(default: 0.0001)" in " ".join(commands["train"].format_help().split())


def error_line(capsys, *words):
    assert cli.main(list(map(str, words))) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_argument_errors_in_plain_words(capsys, tmp_path):
    assert error_line(capsys, "linking", "x.dat", "--batch", "abc") == \
        "error: --batch: expected a whole number from 20 to 100,000, got 'abc'"
    assert error_line(capsys, "eval", "x.dat", "--batch", "0") == \
        "error: --batch: expected a whole number from 20 to 100,000, got '0'"
    out = tmp_path / "net.dat"
    assert error_line(capsys, "train", "--out", out, "--lr", "fast") == \
        "error: --lr: expected a number above 0, at most 1, got 'fast'"
    assert error_line(capsys, "train", "--out", out, "--seed", "1.5") == \
        "error: --seed: expected a whole number from 0 to 4,294,967,295, got '1.5'"
    line = error_line(capsys, "train", "--out", out, "--regime", "weird")
    assert line.startswith("error: --regime: expected one of simple, continual, got 'weird'")
    line = error_line(capsys, "train", "--out", out, "--loss-entropy", "x")
    assert line == "error: --loss-entropy: expected a number from 0 to 1000, got 'x'"
    line = error_line(capsys, "figures", "--out", tmp_path, "--batch")
    assert line == "error: --batch: expected a value after it"
    for line in (error_line(capsys, "nonsense"), error_line(capsys, "eval"),
                 error_line(capsys, "train", "--out", out, "--no-such-option")):
        assert not re.search(r"_positive|invalid \w+ value|Traceback", line), line


@pytest.mark.parametrize("options, expected", [
    (["--lr", "-1"], "--lr: expected a number above 0, at most 1"),
    (["--loss-discount", "3"], "--loss-discount: expected a number from 0 to 1"),
    (["--old-items-probability", "1.5"], "--old-items-probability: expected a number from 0 to 1"),
    (["--min-items", "7", "--max-items", "5"], "--min-items: expected at most max_items"),
    (["--device", "gpu"], "--device: expected a torch device"),
    (["--loss-late-trials", "-1"], "--loss-late-trials: expected a whole number from 0 to 1,000"),
    (["--test-trials", "0"], "--test-trials: expected a whole number from 1 to 1,000"),
])
def test_every_setting_out_of_range_is_one_line_naming_its_option(tmp_path, capsys, options, expected):
    from transitive.interface import cli
    code = cli.main(["train", "--out", str(tmp_path / "net.dat"), *options])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not list(tmp_path.iterdir())  # nothing started


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    from transitive.interface import cli
    for out, seeds in ((tmp_path / "net.dat", []), (tmp_path / "pop", ["--seeds", "0-1"])):
        code = cli.main(["train", "--out", str(out), "--resume", *seeds])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "--resume: no checkpoint" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("old, field", [("--lda", "modulation_l1"), ("--loss-lda", "modulation_l1"),
                                        ("--loss-wp", "action1_penalty"), ("--loss-l2", "weight_decay"),
                                        ("--loss-lhl1", "rate_l1"), ("--step3-penalty", "delay_modulation_l1"),
                                        ("--loss-step3-ratio", "delay_feedback_ratio"),
                                        ("--step3-drive-penalty", "delay_drive")])
def test_earlier_spellings_of_the_loss_options_still_work(tmp_path, old, field):
    config = cli_training._config(parse("train", "--out", tmp_path / "net.dat", old, "0.25"), "train")
    assert getattr(config.loss, field) == 0.25
