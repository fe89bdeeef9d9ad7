"""Command-line options made from the declared settings, and argument types whose errors read as plain words.

`add_settings_options(parser, TrainConfig)` adds one option per setting declared with
`transitive.training.config.setting` (nested ones as `--loss-<name>`): the option is the field's name with dashes
(`burn_in` -> `--burn-in`) and the declaration's other spellings; its help, default, range or choices come from
the declaration; a yes/no setting becomes a pair `--name` / `--no-name`. `settings_from_options(TrainConfig,
args)` builds the dataclass back. (A dataclass-to-CLI library such as tyro was tried: it prints its errors as
a box of several lines with the option's help, and spells nested options `--loss.discount`; our one-line errors
and the options' spellings would not survive it, so the mapping stays here, made from the declarations.)

`Parser` and `HelpFormatter` make argparse end a bad command line in one plain line (`UsageError`) and show
every option's default and range in `--help`.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import sys

import torch

from ..model.errors import OneLineError
from ..training.config import SETTING_RANGES, Range, declared_settings, whole

PROG = "transitive"


class UsageError(OneLineError):
    """Impossible options."""


class Interrupted(OneLineError):
    """A command stopped by a signal (Ctrl-C: SIGINT): the message says where it stopped, what was kept and how
    to go on; the command line exits with `status` (128 + the signal's number: 130 for SIGINT, 143 for SIGTERM)."""

    named = False

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
        return f"{names.split('/')[0]}: {rest}"  # the option's own name, not its other spellings
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

def in_range(allowed: Range):
    """An argparse type for the values of `allowed` (whole numbers or numbers); `--help` shows the range."""
    def parse(value: str):
        try:
            result = (int if allowed.whole else float)(value)
        except ValueError:
            result = None
        if result is None or not allowed.allows(result):
            raise argparse.ArgumentTypeError(f"expected {allowed.text}, got {str(value)!r}")
        return result
    parse.__name__ = parse.allowed = allowed.text
    return parse


seed_number = in_range(SETTING_RANGES["seed"])
thread_count = in_range(whole(1, 1024))


# ---------------------------------------------------------------------------------------------------------
# Options from the declared settings.

def add_settings_options(parser, cls, only=None, exclude=(), defaults=None, helps=None, title=None):
    """One option per declared setting of the dataclass `cls` (nested ones as --<field>-<name>), or only those
    named in `only`; `exclude`: top-level fields left out; `defaults`, `helps`: {name: ...} where a command's
    differ from the declaration's. The option's dest is the setting's name ("loss.discount")."""
    defaults, helps = defaults or {}, helps or {}
    group = parser.add_argument_group(title or f"{cls.__name__} settings")
    for name, default, declared in declared_settings(cls()):
        if name.split(".")[0] in exclude or (only is not None and name not in only):
            continue
        names = ["--" + name.replace(".", "-").replace("_", "-"), *declared.get("aliases", ())]
        default, help_text = defaults.get(name, default), helps.get(name) or declared.get("help") or name
        if isinstance(default, bool):
            group.add_argument(*names, dest=name, action=argparse.BooleanOptionalAction, default=default,
                               help=help_text)
            continue
        allowed, choices = declared.get("range"), declared.get("choices")
        metavar = ("{" + ",".join(map(str, choices)) + "}" if choices else
                   "TEXT" if allowed is None else "N" if allowed.whole else "X")
        group.add_argument(*names, dest=name, type=in_range(allowed) if allowed else str, default=default,
                           choices=tuple(choices) if choices else None, metavar=metavar, help=help_text)
    return group


def settings_from_options(cls, args, **overrides):
    """The dataclass `cls` from parsed `args` (settings without an option keep their defaults)."""
    defaults = cls()
    values: dict = {}
    for name, _, _ in declared_settings(defaults):
        if hasattr(args, name):
            top, _, nested = name.partition(".")
            if nested:
                values.setdefault(top, {})[nested] = getattr(args, name)
            else:
                values[top] = getattr(args, name)
    values = {k: type(getattr(defaults, k))(**v) if isinstance(v, dict) else v for k, v in values.items()}
    return cls(**{**values, **overrides})


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
