"""Command line: `python -m transitive COMMAND ...` (see `python -m transitive --help`).

Each command is a small function taking the parsed arguments; `COMMANDS` maps names to (function, setup of
its arguments). Errors the user can fix (a bad file, impossible options) end in one line and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from .io import ParameterFileError


class UsageError(Exception):
    """Impossible options; the message is one line for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def _print_json(result: dict) -> None:
    print(json.dumps(result))


def _seed(args) -> None:
    torch.manual_seed(args.seed)


# ---------------------------------------------------------------------------------------------------------
def _setup_train(p):
    p.add_argument("--out", required=True, help="parameter file to write (net.dat); checkpoint and curve beside it")
    p.add_argument("--episodes", type=_positive, default=30000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--regime", choices=("simple", "continual"), default="continual")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out")
    p.add_argument("--start-from", metavar="CKPT", default=None,
                   help="branch from another run's checkpoint (parameters, optimizer, random state, episode); "
                        "this run's options apply from there on; ignored once this run has its own checkpoint")
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--save-every", type=_positive, default=200)
    p.add_argument("--alpha", choices=("synapse", "neuron", "scalar"), default="synapse",
                   help="plasticity coefficient per synapse (default), per neuron, or one scalar")
    p.add_argument("--positive-alpha", action="store_true", help="|alpha| at initialisation")
    p.add_argument("--clip-alpha", action="store_true", help="with --positive-alpha: clip alpha at 0 after each step")
    p.add_argument("--frozen-input", action="store_true", help="never update the input weights (i2h)")
    p.add_argument("--step3-penalty", type=float, default=0.0,
                   help="L1 penalty on |m(t)| at step 3 of each trial (favours the passive solution)")
    p.add_argument("--step3-ratio-penalty", type=float, default=0.0,
                   help="penalty on mean |m| at step 3 / mean |m| at step 2 (favours the passive solution)")
    p.add_argument("--step3-drive-penalty", type=float, default=0.0,
                   help="penalty on mean |m(t)|/DAmult at step 3 (favours the passive solution; the gain DAmult "
                        "is left free)")
    p.add_argument("--lda", type=float, default=0.0, help="L1 penalty on |m(t)|/DAmult")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch")
    p.add_argument("--device", default=default_device())
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args):
    from .loss import LossWeights
    from .training import TrainConfig, train
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(episodes=args.episodes, seed=args.seed, regime=args.regime, batch=args.batch,
                         save_every=args.save_every, alpha_shape=args.alpha, positive_alpha=args.positive_alpha,
                         clip_alpha=args.clip_alpha, frozen_input=args.frozen_input, device=args.device,
                         loss=LossWeights(step3_modulation=args.step3_penalty, step3_ratio=args.step3_ratio_penalty,
                                         step3_drive=args.step3_drive_penalty,
                                         lda=args.lda))
    try:
        config.validate()
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    trainer = train(config, args.out, resume=args.resume, progress=not args.quiet, start_from=args.start_from)
    last = trainer.curve[-10:]
    correct = sum(r["percent_correct"] for r in last) / max(len(last), 1)
    status = "stopped (resume with --resume)" if trainer.stop_requested else "done"
    print(f"{status}: episode {trainer.episode}/{config.episodes}, {trainer.episodes_run} episodes in "
          f"{trainer.seconds:.0f} s, recent test-trial correct {correct:.1f}%, saved {args.out}")


def _setup_eval(p):
    p.add_argument("file", help="parameter file (net.dat)")
    p.add_argument("--batch", type=_positive, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (last line)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch (1 is best on a busy machine)")
    p.add_argument("--device", default=default_device())


def _load(args):
    from .io import load_network
    if args.threads:
        torch.set_num_threads(args.threads)
    return load_network(args.file, args.device)


def _format_table(title: str, values: dict) -> str:
    return title + "\n" + "  ".join(f"{k}:{v:.2f}" for k, v in values.items())


def cmd_eval(args):
    from .experiments import evaluate
    net = _load(args)
    _seed(args)
    result = evaluate(net, args.batch)
    if args.json:
        _print_json(result)
        return
    print(f"standard evaluation of {args.file}: {args.batch} episodes, 8 items")
    print(f"test accuracy {result['test_accuracy']:.3f}  (adjacent {result['adjacent_accuracy']:.3f}, "
          f"non-adjacent {result['nonadjacent_accuracy']:.3f})")
    print(_format_table("accuracy by symbolic distance", result["accuracy_by_distance"]))
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_linking(p):
    _setup_eval(p)
    p.set_defaults(batch=4000)
    p.add_argument("--sham", action="store_true", help="sham linking: one B,C trial instead of four D,E trials")


def cmd_linking(args):
    from .experiments import evaluate_linking
    net = _load(args)
    _seed(args)
    result = evaluate_linking(net, args.batch, sham=args.sham)
    if args.json:
        _print_json(result)
        return
    name = "sham linking" if args.sham else "list linking"
    print(f"{name} with {args.file}: {args.batch} episodes, last trial scored")
    print(f"accuracy {result['accuracy']:.3f}  (across lists {result['across_list_accuracy']:.3f}, "
          f"within lists {result['within_list_accuracy']:.3f})")
    print(_format_table("accuracy by pair", result["accuracy_by_pair"]))


def _setup_bench(p):
    p.add_argument("--episodes", type=_positive, default=3)
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch")
    p.add_argument("--device", default=default_device())
    p.add_argument("--json", action="store_true")


def cmd_bench(args):
    from .benchmark import compare
    if args.threads:
        torch.set_num_threads(args.threads)
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
    result = classify(_load(args), args.batch, seed=args.seed, behaviour=not args.no_linking)
    if args.json:
        _print_json(result)
        return
    print(format_report(result, args.file))


def _setup_sweep(p):
    p.add_argument("--seeds", required=True, help="seeds to train, e.g. 0-29 or 0,3,5-7")
    p.add_argument("--out", required=True, help="sweep folder: one seed_<k>/net.dat per seed, logs/ for the jobs")
    p.add_argument("--episodes", type=_positive, default=30000)
    p.add_argument("--regime", choices=("simple", "continual"), default="continual")
    p.add_argument("--executor", choices=("slurm", "local"), required=True,
                   help="slurm: one job per seed (an array); local: jobs on this machine (see --parallel)")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--time", type=_positive, default=24 * 60, help="time limit per job in minutes (default 1440); "
                   "a job that reaches it is checkpointed and requeued (3 times at most)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (default 0: train on CPU)")
    p.add_argument("--cpus", type=_positive, default=1, help="CPUs per job, also its torch threads (default 1)")
    p.add_argument("--mem", type=float, default=4, help="memory per job in GB")
    p.add_argument("--parallel", type=_positive, default=None,
                   help="local: jobs at once (default 1); slurm: most array tasks running at once")
    p.add_argument("--wait", action="store_true", help="stay and print progress until every job has ended")
    p.add_argument("--poll", type=float, default=60.0, help="seconds between progress checks")
    p.add_argument("--dry-run", action="store_true", help="only say what would be done for each seed")


def cmd_sweep(args):
    from .sweep import Resources, SweepError, parse_seeds, plan_sweep, run_sweep
    from .training import TrainConfig
    try:
        seeds = parse_seeds(args.seeds)
        if args.dry_run:
            for state in plan_sweep(seeds, args.out, TrainConfig(episodes=args.episodes, regime=args.regime)):
                print(f"seed {state.seed}: {state.action}" + (f" ({state.note})" if state.note != state.action else ""))
            return
        resources = Resources(executor=args.executor, partition=args.partition, time_min=args.time, gpus=args.gpus,
                              cpus=args.cpus, mem_gb=args.mem, parallel=args.parallel)
        result = run_sweep(seeds, args.out, episodes=args.episodes, regime=args.regime, resources=resources,
                           wait=args.wait, poll_s=args.poll)
    except SweepError as error:
        raise UsageError(f"sweep: {error}") from None
    failed = [s for s, r in result["results"].items() if "error" in r]
    if failed:
        raise UsageError(f"sweep: jobs failed for seeds {failed}; see the logs named above")


def _setup_curves(p):
    p.add_argument("folder", help="sweep folder (holding seed_<k>/net.csv)")
    p.add_argument("--out", required=True, help="figure to write (PNG, PDF, ...); the summary table goes beside it (.csv)")
    p.add_argument("--batch", type=_positive, default=200, help="episodes per experiment when classifying each run")
    p.add_argument("--no-classify", action="store_true", help="do not classify the runs (no grey curves)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")


def cmd_curves(args):
    from pathlib import Path
    from .sweep import SweepError, format_summary, learning_curves
    try:
        rows = learning_curves(args.folder, args.out, batch=args.batch, classify=not args.no_classify,
                               seed=args.seed, device=args.device)
    except SweepError as error:
        raise UsageError(f"curves: {error}") from None
    print(format_summary(rows))
    print(f"figure {args.out}; table {Path(args.out).with_suffix('.csv')}")


def _setup_figures(p):
    p.add_argument("file", nargs="?", default="net_active.dat", help="parameter file (default net_active.dat)")
    p.add_argument("--out", required=True, help="folder for the figures (PNG and PDF) and key_numbers.json/.md")
    p.add_argument("--batch", type=_positive, default=2000, help="standard-evaluation episodes (list linking: twice as many)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--massed", type=_positive, default=None, metavar="K",
                   help="also the massed-presentation figure with K D,E trials (Supplementary Note 9)")
    p.add_argument("--curve", action="append", default=[], metavar="CSV",
                   help="learning-curve CSV for Fig. 1f (repeatable; default: FILE with .csv if it exists)")
    p.add_argument("--only", default=None, metavar="GROUPS",
                   help="comma-separated figure groups instead of all, e.g. fig2,fig3 (see transitive.report.GROUPS)")
    p.add_argument("--records", action="store_true",
                   help="also outcomes_0.npz and allrates_thisep_0.npy of the standard run (~190 MB for 2000)")
    p.add_argument("--recode-steps", type=_positive, default=1000,
                   help="Adam steps of the recoded-representation fit (Supplementary Note 8; default 1000)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads for torch")
    p.add_argument("--device", default=default_device())


def cmd_figures(args):
    from pathlib import Path
    from .report import GROUPS, STANDARD_GROUPS, Evaluation, Options
    groups = STANDARD_GROUPS + (["massed"] if args.massed else [])
    if args.only:
        groups = [g.strip() for g in args.only.split(",") if g.strip()]
        unknown = [g for g in groups if g not in GROUPS]
        if unknown or not groups:
            raise UsageError(f"figures: unknown figure group(s) {', '.join(unknown) or '(none)'}; "
                             f"known: {', '.join(GROUPS)}")
    if args.batch < 20:
        raise UsageError(f"figures: --batch must be at least 20 (10 splits of 2 episodes), not {args.batch}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"figures: --out {out} exists and is not a folder")
    for curve in args.curve:
        if not Path(curve).is_file():
            raise UsageError(f"figures: learning-curve file not found: {curve}")
    if args.threads:
        torch.set_num_threads(args.threads)
    net = _load(args)
    default_curve = Path(args.file).with_suffix(".csv")
    curves = args.curve or ([default_curve] if default_curve.is_file() else [])
    options = Options(batch=args.batch, seed=args.seed, massed_trials=args.massed or 10,
                      recode_steps=args.recode_steps, curves={Path(c).stem: c for c in curves})
    evaluation = Evaluation(net, out, options)
    paths = evaluation.make_all(groups) + (evaluation.save_records() if args.records else [])
    print(f"wrote {len(paths)} files to {out}")


COMMANDS = {
    "train": (cmd_train, _setup_train, "meta-train a network (A2C, SPEC section 5)"),
    "eval": (cmd_eval, _setup_eval, "standard evaluation: 20 learning + 10 test trials, 8 items"),
    "linking": (cmd_linking, _setup_linking, "list linking (Fig. 3a) or sham (Fig. 3b)"),
    "bench": (cmd_bench, _setup_bench, "seconds per training episode: package vs plain step-by-step"),
    "classify": (cmd_classify, _setup_classify, "active or passive? from list linking and from m(t)"),
    "sweep": (cmd_sweep, _setup_sweep, "train one network per seed through submitit (SLURM or local)"),
    "curves": (cmd_curves, _setup_curves, "Fig. 1f from a sweep folder: learning curves, passive runs grey"),
    "figures": (cmd_figures, _setup_figures, "every evaluation figure of the paper (PNG + PDF) and key numbers"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m transitive",
                     description="Plastic networks for transitive inference and list linking (Miconi & Kay 2024).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (function, setup, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        setup(p)
        p.set_defaults(function=function)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "device", "cpu").startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"{args.command}: --device {args.device} asked for, but CUDA is not available")
        args.function(args)
    except (UsageError, ParameterFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
