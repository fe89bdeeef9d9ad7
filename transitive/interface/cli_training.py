"""The command line's training commands: `train` (one seed or several at once), `sweep` (seeds through
submitit), `bench` (speed) and `curves` (Fig. 1f from a sweep folder). `train` and `sweep` have one option per
setting of `TrainConfig` and of its loss weights (`--loss-<name>`), made from the settings' declarations
(`transitive.training.config.setting`); every setting is checked against its range before any work.
"""
from __future__ import annotations

import sys

from ..model.errors import ChoiceError
from ..model.io import check_output_file, check_output_folder
from ..training.config import SETTING_RANGES, Range, paths_for, seed_params, whole
from .options import (Interrupted, UsageError, add_settings_options, add_threads_device, command_line,
                      default_device, in_range, parse_seed_list, print_json, seed_number, set_threads, signal_name,
                      settings_from_options, thread_count)

MINUTES_IN_A_YEAR = 365 * 24 * 60
NOT_FOR_SWEEP = ("seed", "device")  # a sweep has --seeds, and its jobs pick their device


def _add_config_options(p, exclude=()):
    """Every setting of TrainConfig and of its loss weights as an option, made from their declarations."""
    from ..training.trainer import TrainConfig
    add_settings_options(p, TrainConfig, exclude=exclude, defaults={"device": default_device()},
                         title="training settings (TrainConfig; loss weights as --loss-<name>; docs/method.md)")


def option_error(error: ChoiceError, command: str, options=None) -> UsageError:
    """A setting's error as the command line says it: naming the setting's option (loss.discount ->
    --loss-discount; among `options` when given), or the command when the setting has none."""
    option = "--" + (error.setting or "").replace(".", "-").replace("_", "-")
    if error.setting and (options is None or option in options):
        return UsageError(f"{option}: {error.detail}")
    return UsageError(f"{command}: {error}")


def _config(args, command: str, **overrides):
    """The TrainConfig of the options, checked: a setting out of range is one line naming its option."""
    from ..training.trainer import TrainConfig
    config = settings_from_options(TrainConfig, args, **overrides)
    try:
        config.validate()
    except ChoiceError as error:
        raise option_error(error, command) from None
    return config


def _check_resume(args, seeds) -> None:
    """--resume needs the checkpoint(s) it continues from; say so before any work."""
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
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help="CPU threads for torch (default: the cores free when it starts, at most torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stop-after-minutes", type=in_range(Range(0, MINUTES_IN_A_YEAR, above_low=True)), default=None, metavar="M",
                   help="train for about M minutes, then stop where the carried state resets (at most "
                        "--resets-every - 1 episodes later) and save small checkpoints; continue with --resume "
                        "(a long run in chunks, e.g. on machines lent for a few minutes)")
    _add_config_options(p)


def cmd_train(args):
    seeds = parse_seed_list(args.seeds) if args.seeds is not None else None
    if seeds is not None and args.start_from:
        raise UsageError("train: --start-from works for one seed, not with --seeds")
    config = _config(args, "train")
    if args.resume:  # before the output place is made: a refused resume leaves nothing behind
        _check_resume(args, seeds)
    if seeds is None:
        check_output_file(args.out, announce=not args.quiet)
    else:
        check_output_folder(args.out, announce=not args.quiet)
    set_threads(args)
    from ..training.trainer import Trainer
    stop_after = None if args.stop_after_minutes is None else 60 * args.stop_after_minutes
    trainer = None
    try:
        trainer = Trainer(config, args.out, resume=args.resume, progress=not args.quiet, start_from=args.start_from,
                          seeds=seeds, stop_after=stop_after)
        if args.resume:
            print(_resuming(args, trainer, seeds), file=sys.stderr)
        trainer.train()
    except KeyboardInterrupt:  # before training began, or a second Ctrl-C: stopped at once
        raise Interrupted(_stopped_at_once(args, trainer, seeds)) from None
    signum = getattr(trainer, "stopped_by_signal", None)
    if signum and not trainer.finished:  # Ctrl-C (or SIGTERM): saved after the current episode
        raise Interrupted(_stopped_by_signal(args, trainer, config, seeds, signum), signum)
    status = "stopped (resume with --resume)" if trainer.stop_requested and not trainer.finished else "done"
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


def _episodes(trainer) -> str:
    """The episode the members reached: 'N', or 'N-M' where they differ."""
    reached = sorted({m.episode for m in trainer.members})
    return "-".join(map(str, reached[::max(len(reached) - 1, 1)]))


def _kept(args, seeds) -> str:
    if seeds is None:
        paths = paths_for(args.out)
        return f"{paths['params']}, {paths['checkpoint'].name} and {paths['curve'].name}"
    return f"each seed's net.dat, net.ckpt and net.csv in {args.out}/seed_<k>/"


def _resuming(args, trainer, seeds) -> str:
    if seeds is None:
        return f"resuming from episode {trainer.episode} (checkpoint {trainer.paths['checkpoint']})"
    return (f"resuming seeds {args.seeds} from episode {_episodes(trainer)} (checkpoints "
            f"{args.out}/seed_<k>/net.ckpt)")


def _stopped_by_signal(args, trainer, config, seeds, signum) -> str:
    """Where an interrupted run stopped (it saved there), what it kept, and the command that resumes it."""
    who = "" if seeds is None else f" (seeds {args.seeds})"
    return (f"interrupted ({signal_name(signum)}) at episode {_episodes(trainer)}/{config.episodes}{who}: saved "
            f"there and kept {_kept(args, seeds)}; resume with: {command_line(args, '--resume')}")


def _stopped_at_once(args, trainer, seeds) -> str:
    """After a KeyboardInterrupt (a second Ctrl-C, or one before training began): what the last saves kept."""
    if trainer is None:
        return f"interrupted before training began: nothing new was written; start again with: {command_line(args)}"
    from ..scale.sweep import checkpoint_episode
    params = [args.out] if seeds is None else [seed_params(args.out, seed) for seed in seeds]
    saved = sorted({episode for episode, _ in map(checkpoint_episode, params) if episode is not None})
    where = f"at once (second Ctrl-C) at episode {_episodes(trainer)}"
    if not saved:
        return f"interrupted {where}, before the first save: nothing kept; start again with: {command_line(args)}"
    last = "-".join(map(str, saved[::max(len(saved) - 1, 1)]))
    return (f"interrupted {where}: kept {_kept(args, seeds)} as last saved, at episode {last}; resume with: "
            f"{command_line(args, '--resume')}")


def _setup_bench(p):
    p.add_argument("--episodes", type=in_range(whole(1, 1000)), default=3, metavar="N",
                   help="timed training episodes (after one warm-up)")
    p.add_argument("--batch", type=in_range(SETTING_RANGES["batch"]), default=32, metavar="N", help="episodes per batch")
    p.add_argument("--population", type=in_range(whole(1, 1024)), default=None, metavar="N",
                   help="time a population of N networks trained at once instead, and report episodes per "
                        "second summed over the population")
    p.add_argument("--network", default=None, metavar="SPEC",
                   help="time this network (no-modulation, FILE.py:Class, module:Class) against the published "
                        "one instead: its own definition compiled (compile time apart) and uncompiled")
    p.add_argument("--no-eager", action="store_true", help="with --network: leave out the uncompiled definition")
    add_threads_device(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")


def cmd_bench(args):
    set_threads(args)
    if args.network:
        from ..model.variants import network_class
        from ..scale.benchmark import network_speed
        network_class(args.network)  # a wrong spec: one line, before any work
        result = network_speed(args.network, args.episodes, args.batch, args.device, eager=not args.no_eager)
        if args.json:
            print_json(result)
            return
        print(f"training, batch {args.batch}, {args.device} ({result['threads']} threads), median of "
              f"{args.episodes} episodes each, alternating, after one warm-up:")
        print(f"  published network (kernel):         {result['published_seconds_per_episode']:.3f} s/episode")
        print(f"  {result['network']}, compiled:  {result['compiled_seconds_per_episode']:.3f} s/episode "
              f"({result['compiled_vs_published']:.1f}x the published; compiling took {result['compile_seconds']:.0f} s)")
        if "eager_seconds_per_episode" in result:
            print(f"  {result['network']}, uncompiled: {result['eager_seconds_per_episode']:.3f} s/episode "
                  f"({result['eager_vs_published']:.1f}x the published)")
        return
    if args.population:
        from ..scale.benchmark import population_speed
        result = population_speed(args.population, args.episodes, args.batch, args.device)
        if args.json:
            print_json(result)
            return
        print(f"population of {args.population}, batch {args.batch}, {args.device}:")
        for key, value in result.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        return
    from ..scale.benchmark import compare
    result = compare(args.episodes, args.batch, args.device)
    if args.json:
        print_json(result)
        return
    print(f"training, batch {result['batch']}, {result['device']} ({result['threads']} threads), "
          f"mean of {result['episodes']} episodes after one warm-up:")
    print(f"  package (fast runner): {result['fast_seconds_per_episode']:.3f} s/episode")
    print(f"  plain step-by-step:    {result['plain_seconds_per_episode']:.3f} s/episode")
    print(f"  speed-up:              {result['speedup']:.1f}x")


def _setup_sweep(p):
    p.add_argument("--seeds", required=True, help="seeds to train, e.g. 0-29 or 0,3,5-7")
    p.add_argument("--out", required=True, help="sweep folder: one seed_<k>/net.dat per seed, logs/ for the jobs")
    p.add_argument("--executor", choices=("slurm", "local"), required=True,
                   help="slurm: one job per seed (an array); local: jobs on this machine (see --parallel)")
    p.add_argument("--population", type=in_range(whole(1, 1024)), default=None, metavar="K",
                   help="K seeds per job, trained at once in one process (default: one seed per job)")
    p.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    p.add_argument("--time", type=in_range(whole(1, MINUTES_IN_A_YEAR)), default=24 * 60, metavar="MINUTES",
                   help="time limit per job in minutes; a job that reaches it is checkpointed and requeued "
                        "(3 times at most)")
    p.add_argument("--gpus", type=in_range(whole(0, 64)), default=0, metavar="N", help="GPUs per job (0: train on CPU)")
    p.add_argument("--cpus", type=thread_count, default=1, metavar="N",
                   help="CPUs per job, also its torch threads")
    p.add_argument("--mem", type=in_range(Range(0, 65_536, above_low=True)), default=4, metavar="GB", help="memory per job in GB")
    p.add_argument("--parallel", type=in_range(whole(1, 100_000)), default=None, metavar="N",
                   help="local: jobs at once (default 1); slurm: most array tasks running at once (default all)")
    p.add_argument("--wait", action="store_true", help="stay and print progress until every job has ended")
    p.add_argument("--poll", type=in_range(Range(0, 24 * 3600, above_low=True)), default=60.0, metavar="SECONDS",
                   help="seconds between progress checks")
    p.add_argument("--dry-run", action="store_true", help="only say what would be done for each seed")
    _add_config_options(p, exclude=NOT_FOR_SWEEP)


def cmd_sweep(args):
    from ..scale.sweep import Resources, SweepError, SweepInterrupted, plan_sweep, run_sweep
    seeds = parse_seed_list(args.seeds)
    config = _config(args, "sweep")
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
    except SweepInterrupted as stop:
        raise Interrupted(f"{stop}; resume with the same command: {command_line(args)}") from None
    failed = [s for s, r in result["results"].items() if "error" in r]
    if failed:
        raise UsageError(f"sweep: jobs failed for seeds {failed}; see the logs named above")


def _setup_curves(p):
    from ..evaluation.settings import EPISODES
    p.add_argument("folder", help="sweep folder (holding seed_<k>/net.csv)")
    p.add_argument("--out", required=True, help="figure to write (PNG, PDF, ...); the summary table goes beside it (.csv)")
    p.add_argument("--batch", type=in_range(EPISODES), default=200, metavar="N",
                   help="episodes per experiment when classifying each run")
    p.add_argument("--no-classify", action="store_true", help="do not classify the runs (no grey curves)")
    p.add_argument("--seed", type=seed_number, default=0, metavar="N", help="seed of the classification's draws")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")


def cmd_curves(args):
    from pathlib import Path
    check_output_file(args.out)
    from ..figures.curves import format_summary, learning_curves
    from ..scale.sweep import SweepError
    try:
        rows = learning_curves(args.folder, args.out, batch=args.batch, classify=not args.no_classify,
                               seed=args.seed, device=args.device)
    except SweepError as error:
        raise UsageError(f"curves: {error}") from None
    print(format_summary(rows))
    print(f"figure {args.out}; table {Path(args.out).with_suffix('.csv')}")
