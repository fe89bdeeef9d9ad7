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
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--save-every", type=_positive, default=200)
    p.add_argument("--alpha", choices=("synapse", "neuron", "scalar"), default="synapse",
                   help="plasticity coefficient per synapse (default), per neuron, or one scalar")
    p.add_argument("--positive-alpha", action="store_true", help="|alpha| at initialisation")
    p.add_argument("--clip-alpha", action="store_true", help="with --positive-alpha: clip alpha at 0 after each step")
    p.add_argument("--frozen-input", action="store_true", help="never update the input weights (i2h)")
    p.add_argument("--step3-penalty", type=float, default=0.0,
                   help="L1 penalty on |m(t)| at step 3 of each trial (favours the passive solution)")
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
                         loss=LossWeights(step3_modulation=args.step3_penalty, lda=args.lda))
    try:
        config.validate()
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    trainer = train(config, args.out, resume=args.resume, progress=not args.quiet)
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
    p.add_argument("--device", default=default_device())


def _load(args):
    from .io import load_network
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
    p.add_argument("--device", default=default_device())
    p.add_argument("--json", action="store_true")


def cmd_bench(args):
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


COMMANDS = {
    "train": (cmd_train, _setup_train, "meta-train a network (A2C, SPEC section 5)"),
    "eval": (cmd_eval, _setup_eval, "standard evaluation: 20 learning + 10 test trials, 8 items"),
    "linking": (cmd_linking, _setup_linking, "list linking (Fig. 3a) or sham (Fig. 3b)"),
    "bench": (cmd_bench, _setup_bench, "seconds per training episode: package vs plain step-by-step"),
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
