"""Command line: `transitive COMMAND ...`, the same as `python -m transitive COMMAND ...` (see `--help`).

Each command is a small function taking the parsed arguments; `COMMANDS` maps names to (function, setup of
its arguments, one-line description). Errors the user can fix (a bad file, impossible options, an output
place that cannot be written) end in one line and exit code 2, and output places are checked before any work.
The training commands (train, sweep, bench, curves) are in `transitive.interface.cli_training`; the evaluation
commands (eval, linking, classify, figures) are here. What the settings mean: docs/method.md.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time

import torch

from ..evaluation.settings import Settings
from ..model.errors import ChoiceError
from ..model.io import OneLineError, check_output_folder, remove_if_empty
from ..model.schedules import check_pair
from ..model.task import ITEMS, LETTERS
from .cli_training import (_setup_bench, _setup_curves, _setup_sweep, _setup_train, cmd_bench, cmd_curves, cmd_sweep,
                           cmd_train, option_error)
from .options import (PROG, HelpFormatter, Interrupted, Parser, UsageError, add_network_option, add_settings_options,
                      add_threads_device, command_line, print_json, set_threads)


def _setup_eval(p, batch: int = 2000, batch_help: str = "episodes evaluated"):
    p.add_argument("file", help="parameter file (net.dat)")
    add_settings_options(p, Settings, only=("batch", "seed"), defaults={"batch": batch},
                         helps={"batch": batch_help}, title="evaluation settings")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage lines (on standard error)")
    add_network_option(p)
    add_threads_device(p)


def _load(args):
    from ..model.io import load_network
    net = load_network(args.file, args.device, args.network)  # a bad file is one line, before any other word
    set_threads(args)
    return net


def _format_table(title: str, values: dict) -> str:
    return title + "\n" + "  ".join(f"{k}:{v:.2f}" for k, v in values.items())


def _runs(args, net, heard: list | None = None, **settings):
    """The evaluation runs of a command (transitive.evaluation.runs): stage lines and progress bars on standard error
    unless --quiet; `heard` (a list) gets every stage line, also with --quiet."""
    from ..evaluation.runs import Runs
    quiet = getattr(args, "quiet", False)
    try:
        chosen = Settings(seed=args.seed, progress=not quiet, **settings).validate()
    except ChoiceError as error:
        raise option_error(error, args.command, getattr(args, "argv", None)) from None

    def log(text):
        if heard is not None:
            heard.append(text)
        if not quiet:
            print(text, file=sys.stderr)
    return Runs(net, chosen, log=None if quiet and heard is None else log)


def cmd_eval(args):
    from ..evaluation import stats
    runs = _runs(args, _load(args), batch=args.batch)
    run = runs.standard
    behaviour = stats.behaviour(run.test_pairs, run.test_correct).as_dict()
    result = {"episodes": behaviour.pop("episodes"), "test_accuracy": behaviour.pop("accuracy"), **behaviour}
    if args.json:
        print_json(result)
        return
    print(f"standard evaluation of {args.file}: {args.batch} episodes, 8 items, test trials 21-30")
    print(f"test accuracy {result['test_accuracy']:.3f}  (adjacent {result['adjacent_accuracy']:.3f}, "
          f"non-adjacent {result['nonadjacent_accuracy']:.3f})")
    print(_format_table("accuracy by symbolic distance", result["accuracy_by_distance"]))
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_linking(p):
    _setup_eval(p, 4000)
    p.add_argument("--sham", action="store_true", help="sham linking: one B,C trial instead of four D,E trials")


def cmd_linking(args):
    from ..evaluation import stats
    runs = _runs(args, _load(args), linking_batch=args.batch)
    run = runs.sham if args.sham else runs.linking
    result = stats.linking(run.pairs[:, -1], run.correct[:, -1]).as_dict()
    if args.json:
        print_json(result)
        return
    name = "sham linking" if args.sham else "list linking"
    print(f"{name} with {args.file}: {args.batch} episodes, the last trial (trial {run.ntrials} of the three "
          "episodes) scored")
    print(f"accuracy {result['accuracy']:.3f}  (across lists {result['across_list_accuracy']:.3f}, "
          f"within lists {result['within_list_accuracy']:.3f})")
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_classify(p):
    _setup_eval(p, 1000)
    p.add_argument("--no-linking", action="store_true", help="skip list linking: judge from m(t) only (faster)")


def cmd_classify(args):
    from ..evaluation.classify import classify, format_report
    runs = _runs(args, _load(args), batch=args.batch, linking_batch=args.batch)
    result = classify(runs.net, behaviour=not args.no_linking, runs=runs)
    if args.json:
        print_json(result)
        return
    print(format_report(result, args.file))


def _setup_figures(p):
    p.add_argument("file", nargs="?", default="net_active.dat", help="parameter file")
    p.add_argument("--out", required=True, help="folder for the figures (PNG and PDF) and key_numbers.json/.md")
    add_settings_options(p, Settings, only=("batch", "seed", "experiment", "massed_trials", "recode_steps"),
                         title="evaluation settings")
    p.add_argument("--add-barred-pair", default=None, metavar="XY",
                   help="also corrchanges34_add23: Fig. 6 where this pair next to D,E (CD or EF) is also unseen "
                        "before trial 19")
    p.add_argument("--curve", action="append", default=[], metavar="CSV",
                   help="learning-curve CSV for Fig. 1f (repeatable; default: FILE with .csv if it exists)")
    p.add_argument("--only", default=None, metavar="GROUPS",
                   help="comma-separated figure groups instead of all: " + ", ".join(_figure_groups()))
    p.add_argument("--classify", action="store_true",
                   help="also classify.txt / classify.json (active or passive) from the same runs")
    p.add_argument("--records", action="store_true",
                   help="also the original's records of the experiment's run: outcomes_K.npz and allrates_thisep_K.npy "
                        "per episode K (~190 MB for 2000 standard episodes)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage lines (on standard error)")
    add_network_option(p)
    add_threads_device(p)


def _figure_groups() -> list[str]:
    from ..figures.panels import groups
    return groups()


def _pair_letters(text: str | None):
    """--add-barred-pair's letters (CD) as a pair of items, checked as the setting is (next to D,E)."""
    if text is None:
        return None
    letters = LETTERS[:ITEMS]
    pair = [letters.find(c) for c in text.upper()] if len(text) == 2 and text.isalpha() else text
    try:
        return check_pair(pair, ITEMS, "figures: --add-barred-pair", next_to=Settings().barred_pair)
    except ChoiceError as error:
        raise UsageError(str(error)) from None


def cmd_figures(args):
    from pathlib import Path
    groups = None
    if args.only:
        groups = [g.strip() for g in args.only.split(",") if g.strip()]
        unknown = [g for g in groups if g not in _figure_groups()]
        if unknown or not groups:
            raise UsageError(f"figures: --only: unknown figure group(s) {', '.join(unknown) or '(none)'}; "
                             f"known: {', '.join(_figure_groups())}")
    for curve in args.curve:
        if not Path(curve).is_file():
            raise UsageError(f"figures: learning-curve file not found: {curve}")
    added = _pair_letters(args.add_barred_pair)
    new_folder = not Path(args.out).exists()
    check_output_folder(args.out)  # after every option is checked: a wrong option leaves no folder behind
    started, heard = time.time(), []
    try:
        _make_figures(args, groups, added, heard)
    except KeyboardInterrupt:
        message = _figures_interrupted(args, started, heard)
        if remove_if_empty(args.out, new_folder):
            message += f" (the folder {args.out}, created by this command and still empty, is removed)"
        raise Interrupted(message) from None
    except OneLineError:  # e.g. the parameter file: the folder made for nothing does not stay behind
        remove_if_empty(args.out, new_folder)
        raise


def _figures_interrupted(args, started: float, heard: list) -> str:
    """Where an interrupted `figures` stopped, the complete files it had written (figures are written whole
    or not at all), and the command that makes them all."""
    from pathlib import Path
    stages = [re.sub(r"^\[[\s\d.]+ s\] ", "", line) for line in heard]
    stages = [line for line in stages if line.startswith(("running ", "fitting ", "done in ", "wrote "))]
    if not stages:
        stage = "before the first run"
    elif stages[-1].startswith(("running ", "fitting ")):
        stage = f"while {stages[-1]}"
    else:
        stage = "while drawing the figures"
    written = sorted(p.name for p in Path(args.out).iterdir()
                     if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= started)
    if written:
        shown = ", ".join(written[:4]) + (f" and {len(written) - 4} more" if len(written) > 4 else "")
        kept = f"kept the {len(written)} complete files written before it in {args.out} ({shown})"
    else:
        kept = f"no file written yet in {args.out}"
    return f"interrupted (Ctrl-C) {stage}: {kept}; make them all with: {command_line(args)}"


def _make_figures(args, groups, added, heard: list) -> None:
    from pathlib import Path
    from ..evaluation.keynumbers import write_key_numbers
    from ..figures.panels import make_figures, names_for
    net = _load(args)
    default_curve = Path(args.file).with_suffix(".csv")
    curves = args.curve or ([default_curve] if default_curve.is_file() else [])
    runs = _runs(args, net, heard, batch=args.batch, experiment=args.experiment, massed_trials=args.massed_trials,
                 add_barred_pair=added, recode_steps=args.recode_steps)
    runs.curves = {Path(c).stem: c for c in curves}
    paths = make_figures(runs, args.out, names_for(runs.settings, groups), workers=torch.get_num_threads())
    paths += write_key_numbers(runs, args.out, network=Path(args.file).name)
    if args.classify:
        from ..evaluation.classify import classify, format_report
        result = classify(net, runs=runs)
        Path(args.out, "classify.json").write_text(json.dumps(result, indent=1) + "\n")
        Path(args.out, "classify.txt").write_text(format_report(result, args.file) + "\n")
        print(format_report(result, args.file))
    if args.records:
        from ..evaluation.runs import save_records
        paths += save_records(runs.selected, args.out)
    print(f"wrote {len(paths)} files to {args.out}")


COMMANDS = {
    "train": (cmd_train, _setup_train, "meta-train a network by advantage actor-critic (docs/method.md, "
                                       "'Meta-training')"),
    "eval": (cmd_eval, _setup_eval, "standard evaluation: 20 learning + 10 test trials, 8 items"),
    "linking": (cmd_linking, _setup_linking, "list linking (Fig. 3a) or sham (Fig. 3b)"),
    "bench": (cmd_bench, _setup_bench, "seconds per training episode: package vs plain step-by-step"),
    "classify": (cmd_classify, _setup_classify, "active or passive? from list linking and from m(t)"),
    "sweep": (cmd_sweep, _setup_sweep, "train one network per seed through submitit (SLURM or local)"),
    "curves": (cmd_curves, _setup_curves, "Fig. 1f from a sweep folder: learning curves, passive runs grey"),
    "figures": (cmd_figures, _setup_figures, "every evaluation figure of the paper (PNG + PDF) and key numbers"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, formatter_class=HelpFormatter,
                     description="Plastic networks for transitive inference and list linking (Miconi & Kay 2024); "
                                 "the method: docs/method.md. Also run as `python -m transitive`.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"transitive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for name, (function, setup, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        setup(p)
        p.set_defaults(function=function)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(word) for word in argv]
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # for the command that resumes an interrupted run
        if getattr(args, "device", "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"{args.command}: --device {args.device} asked for, but CUDA is not available")
        args.function(args)
    except Interrupted as stop:
        print(stop, file=sys.stderr)
        return stop.status
    except OneLineError as error:  # every error the user can fix: a bad option, file, setting, output place
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
