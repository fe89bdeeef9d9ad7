"""Command line: `transitive COMMAND ...`, the same as `python -m transitive COMMAND ...` (see `--help`).

Each command is a small function taking the parsed arguments; `COMMANDS` maps names to (function, setup of
its arguments, one-line description). Errors the user can fix (a bad file, impossible options, an output
place that cannot be written) end in one line and exit code 2, and output places are checked before any work.
`train` and `sweep` have one option per field of `TrainConfig` and of its loss weights (`--loss-<name>`),
made from the fields themselves (`transitive.options`). What the settings mean: docs/method.md.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from .io import OutputPathError, ParameterFileError, check_output_file, check_output_folder
from .options import PROG, HelpFormatter, Parser, UsageError, add_dataclass_options, config_from_options, \
    positive_number, positive_whole_number, whole_number


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _print_json(result: dict) -> None:
    print(json.dumps(result))


def _set_threads(args) -> None:
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def _add_threads_device(p, device=None):
    p.add_argument("--threads", type=positive_whole_number, default=None, metavar="N",
                   help="CPU threads for torch (1 is best on a busy machine; default: torch's choice)")
    p.add_argument("--device", default=device or default_device(), help="cpu, cuda or cuda:K")


def _parse_seed_list(text: str) -> list[int]:
    from .sweep import SweepError, parse_seeds
    try:
        return parse_seeds(text)
    except SweepError as error:
        raise UsageError(f"--seeds: {error}") from None


# ---------------------------------------------------------------------------------------------------------
# Spellings kept from earlier versions, beside the generated `--<field>` / `--loss-<field>` options.
TRAIN_ALIASES = {"alpha_shape": ["--alpha"],
                 "loss.modulation_l1": ["--loss-lda", "--lda"], "loss.rate_l1": ["--loss-lhl1"],
                 "loss.action1_penalty": ["--loss-wp"], "loss.weight_decay": ["--loss-l2"],
                 "loss.delay_modulation_l1": ["--loss-step3-modulation", "--step3-penalty"],
                 "loss.delay_feedback_ratio": ["--loss-step3-ratio", "--step3-ratio-penalty"],
                 "loss.delay_drive": ["--loss-step3-drive", "--step3-drive-penalty"]}
POSITIVE_FIELDS = ("episodes", "batch", "save_every", "log_every", "resets_every", "learning_trials",
                   "test_trials", "min_items", "max_items")
NOT_FOR_SWEEP = ("seed", "device")  # a sweep has --seeds, and its jobs pick their device


def _add_config_options(p, exclude=()):
    """Every field of TrainConfig and of its loss weights as an option (see transitive.options)."""
    from .training import REGIMES, TrainConfig
    add_dataclass_options(p, TrainConfig, exclude=exclude, aliases=TRAIN_ALIASES,
                          defaults={"device": default_device()}, positive=POSITIVE_FIELDS,
                          choices={"regime": REGIMES, "alpha_shape": ("synapse", "neuron", "scalar")},
                          title="training settings (TrainConfig; loss weights as --loss-<name>; docs/method.md)")


def _config(args, command: str, exclude=(), **overrides):
    """The TrainConfig of the options, checked: a setting out of range is one line naming its option."""
    from .config import SettingError
    from .training import TrainConfig
    config = config_from_options(TrainConfig, args, exclude=exclude, **overrides)
    try:
        config.validate()
    except SettingError as error:
        option = "--" + error.setting.replace("loss.", "loss-").replace("_", "-")
        raise UsageError(f"{option}: {error.detail}") from None
    except ValueError as error:
        raise UsageError(f"{command}: {error}") from None
    return config


def _check_resume(args, seeds) -> None:
    """--resume needs the checkpoint(s) it continues from; say so before any work."""
    from .config import paths_for, seed_params
    params = [args.out] if seeds is None else [seed_params(args.out, seed) for seed in seeds]
    missing = [p for p in params if not paths_for(p)["checkpoint"].exists()]
    if missing and len(missing) == len(params):
        where = paths_for(missing[0])["checkpoint"] if seeds is None else f"{args.out}/seed_<k>/net.ckpt"
        raise UsageError(f"--resume: no checkpoint to continue from ({where}); leave out --resume to start")
    if missing:
        raise UsageError(f"--resume: no checkpoint for seed(s) {', '.join(p.parent.name[5:] for p in missing)} in "
                         f"{args.out}; leave out --resume to start them, or train the others with their --seeds")


def _setup_train(p):
    p.add_argument("--out", required=True,
                   help="parameter file to write (net.dat; checkpoint net.ckpt and learning curve net.csv beside "
                        "it); with --seeds, a folder holding one seed_<k>/net.dat per seed")
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="train several seeds at once in one process, e.g. 0-29 or 0,3,5-7 (instead of --seed)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out (with --seeds: "
                   "every seed's; an error when there is none)")
    p.add_argument("--start-from", metavar="CKPT", default=None,
                   help="branch from another run's checkpoint (parameters, optimizer, random state, episode); "
                        "this run's options apply from there on; ignored once this run has its own checkpoint")
    p.add_argument("--threads", type=positive_whole_number, default=None, metavar="N",
                   help="CPU threads for torch (1 is best on a busy machine; default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stop-after-minutes", type=positive_number, default=None, metavar="M",
                   help="train for about M minutes, then stop where the carried state resets (at most "
                        "--resets-every - 1 episodes later) and save small checkpoints; continue with --resume "
                        "(a long run in chunks, e.g. on machines lent for a few minutes)")
    _add_config_options(p)


def cmd_train(args):
    seeds = _parse_seed_list(args.seeds) if args.seeds is not None else None
    if seeds is not None and args.start_from:
        raise UsageError("train: --start-from works for one seed, not with --seeds")
    config = _config(args, "train")
    if seeds is None:
        check_output_file(args.out)
    else:
        check_output_folder(args.out)
    if args.resume:
        _check_resume(args, seeds)
    _set_threads(args)
    from .training import Trainer
    stop_after = None if args.stop_after_minutes is None else 60 * args.stop_after_minutes
    trainer = Trainer(config, args.out, resume=args.resume, progress=not args.quiet, start_from=args.start_from,
                      seeds=seeds, stop_after=stop_after).train()
    status = "stopped (resume with --resume)" if trainer.stop_requested else "done"
    if seeds is None:
        last = trainer.curve[-10:]
        correct = sum(r["percent_correct"] for r in last) / max(len(last), 1)
        print(f"{status}: episode {trainer.episode}/{config.episodes}, {trainer.episodes_run} episodes in "
              f"{trainer.seconds:.0f} s, recent test-trial correct {correct:.1f}%, saved {args.out}")
        return
    episodes = sorted({m.episode for m in trainer.members})
    reached = f", episode {'-'.join(map(str, episodes[::max(len(episodes) - 1, 1)]))}/{config.episodes}" \
        if episodes else ""
    print(f"{status}: seeds {args.seeds}{reached}, {trainer.episodes_run} member-episodes in {trainer.seconds:.0f} s; "
          f"each in {args.out}/seed_<k>/ (net.dat, net.ckpt, net.csv)")


def _setup_eval(p):
    p.add_argument("file", help="parameter file (net.dat)")
    p.add_argument("--batch", type=positive_whole_number, default=2000, metavar="N", help="episodes evaluated")
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="seed of the random draws")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage lines (on standard error)")
    _add_threads_device(p)


def _load(args):
    from .io import load_network
    _set_threads(args)
    return load_network(args.file, args.device)


def _format_table(title: str, values: dict) -> str:
    return title + "\n" + "  ".join(f"{k}:{v:.2f}" for k, v in values.items())


def _runs(args, net, **settings):
    """The evaluation runs of a command (transitive.runs): stage lines and progress bars on standard error
    unless --quiet."""
    from .runs import Runs, Settings
    quiet = getattr(args, "quiet", False)
    try:
        chosen = Settings(seed=args.seed, progress=not quiet, **settings).validate()
    except ValueError as error:
        raise UsageError(f"{args.command}: {error}") from None
    return Runs(net, chosen, log=None if quiet else (lambda text: print(text, file=sys.stderr)))


def cmd_eval(args):
    from . import stats
    runs = _runs(args, _load(args), batch=args.batch)
    run = runs.standard
    behaviour = stats.behaviour(run.test_pairs, run.test_correct).as_dict()
    result = {"episodes": behaviour.pop("episodes"), "test_accuracy": behaviour.pop("accuracy"), **behaviour}
    if args.json:
        _print_json(result)
        return
    print(f"standard evaluation of {args.file}: {args.batch} episodes, 8 items, test trials 21-30")
    print(f"test accuracy {result['test_accuracy']:.3f}  (adjacent {result['adjacent_accuracy']:.3f}, "
          f"non-adjacent {result['nonadjacent_accuracy']:.3f})")
    print(_format_table("accuracy by symbolic distance", result["accuracy_by_distance"]))
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_linking(p):
    _setup_eval(p)
    p.set_defaults(batch=4000)
    p.add_argument("--sham", action="store_true", help="sham linking: one B,C trial instead of four D,E trials")


def cmd_linking(args):
    from . import stats
    runs = _runs(args, _load(args), linking_batch=args.batch)
    run = runs.sham if args.sham else runs.linking
    result = stats.linking(run.pairs[:, -1], run.correct[:, -1]).as_dict()
    if args.json:
        _print_json(result)
        return
    name = "sham linking" if args.sham else "list linking"
    print(f"{name} with {args.file}: {args.batch} episodes, the last trial (trial {run.ntrials} of the three "
          "episodes) scored")
    print(f"accuracy {result['accuracy']:.3f}  (across lists {result['across_list_accuracy']:.3f}, "
          f"within lists {result['within_list_accuracy']:.3f})")
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_bench(p):
    p.add_argument("--episodes", type=positive_whole_number, default=3, metavar="N",
                   help="timed training episodes (after one warm-up)")
    p.add_argument("--batch", type=positive_whole_number, default=32, metavar="N", help="episodes per batch")
    p.add_argument("--population", type=positive_whole_number, default=None, metavar="N",
                   help="time a population of N networks trained at once instead, and report episodes per "
                        "second summed over the population")
    _add_threads_device(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")


def cmd_bench(args):
    _set_threads(args)
    if args.population:
        from .benchmark import population_speed
        result = population_speed(args.population, args.episodes, args.batch, args.device)
        if args.json:
            _print_json(result)
            return
        print(f"population of {args.population}, batch {args.batch}, {args.device}:")
        for key, value in result.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        return
    from .benchmark import compare
    result = compare(args.episodes, args.batch, args.device)
    if args.json:
        _print_json(result)
        return
    print(f"training, batch {result['batch']}, {result['device']} ({result['threads']} threads), "
          f"mean of {result['episodes']} episodes after one warm-up:")
    print(f"  package (fast runner): {result['fast_seconds_per_episode']:.3f} s/episode")
    print(f"  plain step-by-step:    {result['plain_seconds_per_episode']:.3f} s/episode")
    print(f"  speed-up:              {result['speedup']:.1f}x")


def _setup_classify(p):
    _setup_eval(p)
    p.set_defaults(batch=1000)
    p.add_argument("--no-linking", action="store_true", help="skip list linking: judge from m(t) only (faster)")


def cmd_classify(args):
    from .classify import classify, format_report
    runs = _runs(args, _load(args), batch=args.batch, linking_batch=args.batch)
    result = classify(runs.net, behaviour=not args.no_linking, runs=runs)
    if args.json:
        _print_json(result)
        return
    print(format_report(result, args.file))


def _setup_sweep(p):
    p.add_argument("--seeds", required=True, help="seeds to train, e.g. 0-29 or 0,3,5-7")
    p.add_argument("--out", required=True, help="sweep folder: one seed_<k>/net.dat per seed, logs/ for the jobs")
    p.add_argument("--executor", choices=("slurm", "local"), required=True,
                   help="slurm: one job per seed (an array); local: jobs on this machine (see --parallel)")
    p.add_argument("--population", type=positive_whole_number, default=None, metavar="K",
                   help="K seeds per job, trained at once in one process (default: one seed per job)")
    p.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    p.add_argument("--time", type=positive_whole_number, default=24 * 60, metavar="MINUTES",
                   help="time limit per job in minutes; a job that reaches it is checkpointed and requeued "
                        "(3 times at most)")
    p.add_argument("--gpus", type=whole_number, default=0, metavar="N", help="GPUs per job (0: train on CPU)")
    p.add_argument("--cpus", type=positive_whole_number, default=1, metavar="N",
                   help="CPUs per job, also its torch threads")
    p.add_argument("--mem", type=positive_number, default=4, metavar="GB", help="memory per job in GB")
    p.add_argument("--parallel", type=positive_whole_number, default=None, metavar="N",
                   help="local: jobs at once (default 1); slurm: most array tasks running at once (default all)")
    p.add_argument("--wait", action="store_true", help="stay and print progress until every job has ended")
    p.add_argument("--poll", type=positive_number, default=60.0, metavar="SECONDS",
                   help="seconds between progress checks")
    p.add_argument("--dry-run", action="store_true", help="only say what would be done for each seed")
    _add_config_options(p, exclude=NOT_FOR_SWEEP)


def cmd_sweep(args):
    from .sweep import Resources, SweepError, plan_sweep, run_sweep
    seeds = _parse_seed_list(args.seeds)
    config = _config(args, "sweep", exclude=NOT_FOR_SWEEP)
    check_output_folder(args.out)
    try:
        if args.dry_run:
            for state in plan_sweep(seeds, args.out, config):
                print(f"seed {state.seed}: {state.action}" + (f" ({state.note})" if state.note != state.action else ""))
            return
        resources = Resources(executor=args.executor, partition=args.partition, time_min=args.time, gpus=args.gpus,
                              cpus=args.cpus, mem_gb=args.mem, parallel=args.parallel)
        result = run_sweep(seeds, args.out, config, resources=resources, wait=args.wait, poll_s=args.poll,
                           population=args.population or 1)
    except SweepError as error:
        raise UsageError(f"sweep: {error}") from None
    failed = [s for s, r in result["results"].items() if "error" in r]
    if failed:
        raise UsageError(f"sweep: jobs failed for seeds {failed}; see the logs named above")


def _setup_curves(p):
    p.add_argument("folder", help="sweep folder (holding seed_<k>/net.csv)")
    p.add_argument("--out", required=True, help="figure to write (PNG, PDF, ...); the summary table goes beside it (.csv)")
    p.add_argument("--batch", type=positive_whole_number, default=200, metavar="N",
                   help="episodes per experiment when classifying each run")
    p.add_argument("--no-classify", action="store_true", help="do not classify the runs (no grey curves)")
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="seed of the classification's draws")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")


def cmd_curves(args):
    from pathlib import Path
    check_output_file(args.out)
    from .curves import format_summary, learning_curves
    from .sweep import SweepError
    try:
        rows = learning_curves(args.folder, args.out, batch=args.batch, classify=not args.no_classify,
                               seed=args.seed, device=args.device)
    except SweepError as error:
        raise UsageError(f"curves: {error}") from None
    print(format_summary(rows))
    print(f"figure {args.out}; table {Path(args.out).with_suffix('.csv')}")


def _setup_figures(p):
    from .runs import EXPERIMENTS
    p.add_argument("file", nargs="?", default="net_active.dat", help="parameter file")
    p.add_argument("--out", required=True, help="folder for the figures (PNG and PDF) and key_numbers.json/.md")
    p.add_argument("--batch", type=positive_whole_number, default=2000, metavar="N",
                   help="standard-evaluation episodes (list linking and sham: twice as many)")
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="seed of the random draws")
    p.add_argument("--experiment", choices=EXPERIMENTS, default="standard",
                   help="the notebook's experiment mode: standard makes every figure; the others make the figures "
                        "the original makes from that experiment's run")
    p.add_argument("--massed", type=positive_whole_number, default=10, metavar="K",
                   help="massed trials of D,E after learning (Supplementary Note 9): the massed figure of the "
                        "standard mode, or the run of every figure with --experiment massed")
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
    p.add_argument("--recode-steps", type=positive_whole_number, default=1000, metavar="N",
                   help="Adam steps of the recoded-representation fit (Supplementary Note 8)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage lines (on standard error)")
    _add_threads_device(p)


def _figure_groups() -> list[str]:
    from .panels import groups
    return groups()


def _pair_letters(text: str | None):
    if text is None:
        return None
    letters = "ABCDEFGH"
    if len(text) != 2 or any(c not in letters for c in text.upper()) or abs(letters.index(text[0].upper())
                                                                             - letters.index(text[1].upper())) != 1:
        raise UsageError(f"figures: --add-barred-pair: expected two adjacent items such as CD, got {text!r}")
    pair = tuple(letters.index(c) for c in text.upper())
    if sorted(pair) not in ([2, 3], [4, 5]):
        raise UsageError(f"figures: --add-barred-pair: expected CD or EF (a pair next to the barred pair D,E), "
                         f"got {text!r}")
    return pair


def cmd_figures(args):
    from pathlib import Path
    from .keynumbers import write_key_numbers
    from .panels import make_figures, names_for
    check_output_folder(args.out)
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
    net = _load(args)
    default_curve = Path(args.file).with_suffix(".csv")
    curves = args.curve or ([default_curve] if default_curve.is_file() else [])
    runs = _runs(args, net, batch=args.batch, experiment=args.experiment, massed_trials=args.massed,
                 add_barred_pair=added, recode_steps=args.recode_steps)
    runs.curves = {Path(c).stem: c for c in curves}
    paths = make_figures(runs, args.out, names_for(runs.settings, groups))
    paths += write_key_numbers(runs, args.out, network=Path(args.file).name)
    if args.classify:
        from .classify import classify, format_report
        result = classify(net, runs=runs)
        Path(args.out, "classify.json").write_text(json.dumps(result, indent=1) + "\n")
        Path(args.out, "classify.txt").write_text(format_report(result, args.file) + "\n")
        print(format_report(result, args.file))
    if args.records:
        from .runs import save_records
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
    from . import __version__
    parser.add_argument("--version", action="version", version=f"transitive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for name, (function, setup, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        setup(p)
        p.set_defaults(function=function)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "device", "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"{args.command}: --device {args.device} asked for, but CUDA is not available")
        args.function(args)
    except (UsageError, ParameterFileError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
