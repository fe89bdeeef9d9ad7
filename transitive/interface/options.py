"""Command-line options made from dataclass fields, and argument types whose errors read as plain words.

`add_dataclass_options(parser, TrainConfig)` adds one option per field of the dataclass, and one per field
of every nested dataclass field (TrainConfig.loss -> `--loss-<name>`): the option is the field name with
dashes (`burn_in` -> `--burn-in`), its help text is the field's `metadata["help"]`, and its default is the
field's default. Whole numbers, numbers and text become typed options; a yes/no field becomes a pair
`--name` / `--no-name`; `metadata["choices"]` limits the values. `config_from_options(TrainConfig, args)`
builds the dataclass back from the parsed arguments.

`Parser` and `HelpFormatter` make argparse end a bad command line in one plain line (`UsageError`) and show
every option's default in `--help`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import signal
import sys
import types
import typing

import torch

from ..training.config import LARGEST_SEED, Range, whole

PROG = "transitive"


class UsageError(Exception):
    """Impossible options; the message is one line for the user."""


class Interrupted(Exception):
    """A command stopped by a signal (Ctrl-C: SIGINT): the message is one line saying where it stopped, what
    was kept and how to go on; the command line exits with `status` (128 + the signal's number: 130 for
    SIGINT, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.status = 128 + int(signum)


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def command_line(args, *extra: str) -> str:
    """The command as the user typed it (`args.argv`, kept by `cli.main`), with `extra` options added unless
    already there: e.g. the command that resumes an interrupted run."""
    words = list(getattr(args, "argv", None) or [args.command])
    words += [word for word in extra if word not in words]
    return shlex.join([PROG, *words])


def _plain_words(message: str) -> str:
    """argparse's messages, in plain words: 'argument --batch: invalid choice: ...' -> '--batch: expected ...'."""
    message = re.sub(r"invalid choice: (\S+) \(choose from (.*)\)$",
                     lambda m: f"expected one of {m.group(2).replace(chr(39), '')}, got {m.group(1)}", message)
    message = message.replace("expected one argument", "expected a value after it")
    message = message.replace("the following arguments are required:", "missing required argument(s):")
    message = message.replace("unrecognized arguments:", "unknown option(s) or argument(s):")
    match = re.match(r"argument ([^:]+): (.*)$", message)
    if match:
        names, rest = match.groups()
        if names in ("command", "COMMAND"):
            return "COMMAND: " + rest.replace("expected one of", "expected a command, one of")
        return f"{names}: {rest}"
    return message


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        message = _plain_words(message)
        command = self.prog[len(PROG):].strip()
        if not message.startswith("-") and command:
            message = f"{command}: {message}"
        raise UsageError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' after every option that has a default (not after plain on/off switches, whose
    default is off, nor after required options)."""

    def _get_help_string(self, action):
        text = action.help or ""
        allowed = getattr(action.type, "allowed", None)
        if allowed and "%(default)" not in text:
            text += f"; {allowed}"
        if "%(default)" in text or action.default in (None, argparse.SUPPRESS, []) or action.required:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text
        return text + " (default: %(default)s)"


# ---------------------------------------------------------------------------------------------------------
# Argument types. argparse prefixes their message with the option ("--batch: ..."; see Parser above).

def _quoted(value: str) -> str:
    return repr(str(value))


def _argument_type(convert, accept, expected: str):
    """An argparse type: `convert` the text, refuse it unless `accept(value)`, saying what was expected."""
    def parse(value: str):
        try:
            result = convert(value)
        except ValueError:
            result = None
        if result is None or not accept(result):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {_quoted(value)}")
        return result
    parse.__name__ = expected.replace(" ", "_")
    return parse


whole_number = _argument_type(int, lambda x: True, "a whole number")
positive_whole_number = _argument_type(int, lambda x: x >= 1, "a positive whole number")
nonnegative_whole_number = _argument_type(int, lambda x: x >= 0, "a whole number, 0 or more")
number = _argument_type(float, lambda x: True, "a number")
positive_number = _argument_type(float, lambda x: x > 0, "a positive number")


def in_range(allowed: Range):
    """An argparse type for the values of `allowed` (whole numbers or numbers); `--help` shows the range."""
    parse = _argument_type(int if allowed.whole else float, allowed.allows, allowed.text)
    parse.allowed = allowed.text
    return parse


# The ranges of the options that are not training settings (those are in training.config.SETTING_RANGES).
seed_number = in_range(whole(0, LARGEST_SEED))
evaluation_episodes = in_range(whole(20, 100_000))  # 10 splits of at least 2 episodes; ~50 times the paper's
thread_count = in_range(whole(1, 1024))


# ---------------------------------------------------------------------------------------------------------
# Options from dataclass fields.

def option_name(field_name: str, prefix: str = "") -> str:
    """'burn_in' -> '--burn-in'; with prefix 'loss': 'delay_drive' -> '--loss-delay-drive'."""
    name = f"{prefix}_{field_name}" if prefix else field_name
    return "--" + name.replace("_", "-")


def _dest(field_name: str, prefix: str = "") -> str:
    return f"{prefix}__{field_name}" if prefix else field_name


def _plain_type(hint):
    """int | None -> (int, True); int -> (int, False)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _option_type(kind, field: dataclasses.Field, positive: bool = False, allowed: Range | None = None):
    if allowed is not None and kind in (int, float):
        return in_range(allowed)
    positive = positive or field.metadata.get("positive", False)
    if kind is int:
        if positive:
            return positive_whole_number
        minimum = field.metadata.get("min")
        return nonnegative_whole_number if minimum == 0 else whole_number
    if kind is float:
        return positive_number if positive else number
    return str


def dataclass_option_fields(cls, prefix: str = "", exclude=()):
    """(field, dest, option, type, default, nested prefix) for every option `add_dataclass_options` adds."""
    hints = typing.get_type_hints(cls)
    rows = []
    for field in dataclasses.fields(cls):
        if field.name in exclude or not field.init:
            continue
        kind, _ = _plain_type(hints[field.name])
        if dataclasses.is_dataclass(kind):
            rows += dataclass_option_fields(kind, prefix=field.name)
            continue
        rows.append((field, _dest(field.name, prefix), option_name(field.name, prefix), kind, _default(field),
                     prefix))
    return rows


def add_dataclass_options(parser, cls, exclude=(), aliases=None, defaults=None, choices=None, positive=(),
                          ranges=None, title=None):
    """One option per field of `cls` (and of its nested dataclass fields) on `parser`.

    `exclude`: top-level field names to leave out; `aliases`: {"loss.modulation_l1": ["--lda"], ...} further spellings;
    `defaults`: {"device": "cuda"} defaults other than the field's; `choices`: {"regime": (...)} where the
    field's metadata has none; `positive`: fields ("batch", "loss.late_trials") whose value must be above 0
    (as does `metadata["positive"]`); `ranges`: {"lr": Range(...)} the allowed values of numeric fields (refused
    by the option, shown in its help). Keys of nested fields are "<field>.<nested field>". Returns the group."""
    aliases, defaults, choices, ranges = aliases or {}, defaults or {}, choices or {}, ranges or {}
    group = parser.add_argument_group(title or f"{cls.__name__} settings")
    for field, dest, option, kind, default, prefix in dataclass_option_fields(cls, exclude=exclude):
        key = f"{prefix}.{field.name}" if prefix else field.name
        names = [option] + [a for a in aliases.get(key, ()) if a != option]
        help_text = field.metadata.get("help") or f"{cls.__name__}.{key.replace('.', ' ')}"
        default = defaults.get(key, default)
        if kind is bool:
            group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                               help=help_text)
            continue
        allowed = field.metadata.get("choices") or choices.get(key)
        group.add_argument(*names, dest=dest, type=_option_type(kind, field, key in positive, ranges.get(key)), default=default,
                           choices=tuple(allowed) if allowed else None, metavar=_metavar(kind, allowed),
                           help=help_text)
    return group


def _metavar(kind, allowed):
    if allowed:
        return "{" + ",".join(map(str, allowed)) + "}"
    return {int: "N", float: "X"}.get(kind, "TEXT")


def config_from_options(cls, args, exclude=(), **overrides):
    """The dataclass `cls` built from parsed `args` (fields in `exclude` keep their defaults unless given in
    `overrides`)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init or field.name in exclude:
            continue
        kind, _ = _plain_type(hints[field.name])
        if dataclasses.is_dataclass(kind):
            values[field.name] = kind(**{f.name: getattr(args, _dest(f.name, field.name))
                                         for f in dataclasses.fields(kind) if f.init})
        else:
            values[field.name] = getattr(args, field.name)
    values.update(overrides)
    return cls(**values)


# ---------------------------------------------------------------------------------------------------------
# Options every command shares.

def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def print_json(result: dict) -> None:
    print(json.dumps(result))


def set_threads(args) -> None:
    """torch's thread count: --threads N, else the cores free when the command starts (transitive.interface.threads);
    when other processes keep cores busy, one line on standard error says so (unless --quiet)."""
    from .threads import use_free_cores
    choice = use_free_cores(getattr(args, "threads", None))
    if choice.lowered and not getattr(args, "quiet", False):
        print(f"busy machine: torch uses {choice.why}; --threads N to choose", file=sys.stderr, flush=True)


def add_network_option(p):
    """--network: the class the parameter file is loaded into (the one it was trained with)."""
    p.add_argument("--network", default="plastic", metavar="CLASS",
                   help="the network class the file was trained with: plastic (the paper's), no-plasticity, "
                        "no-modulation, or FILE.py:Class / module:Class (docs/extending.md)")


def add_threads_device(p, device=None):
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help="CPU threads for torch (default: the cores free when it starts, at most torch's choice)")
    p.add_argument("--device", default=device or default_device(), help="cpu, cuda or cuda:K")


def parse_seed_list(text: str) -> list[int]:
    from ..scale.sweep import SweepError, parse_seeds
    try:
        return parse_seeds(text)
    except SweepError as error:
        raise UsageError(f"--seeds: {error}") from None
