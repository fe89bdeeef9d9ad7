"""Where do the plastic weights change? Mean |change of P| at each of the 4 steps of a trial.

    python tools/plastic_change.py net_active.dat net_passive.dat [--batch 200] [--trials 6-10]

Runs the standard evaluation (8 items, 20 learning + 10 test trials) with P kept after every step of the
given trials (numbered 1-30 as in the paper), and prints, per step (stimulus, response, feedback, delay),
the mean absolute change of P over synapses, episodes and trials. The passive solution (Extended Data
Fig. 1) changes P at the feedback step only; the active one at the feedback and delay steps.
"""
import argparse

import torch

from transitive.engine.episode import run_episode
from transitive.model.io import load_network
from transitive.model.task import STEP_NAMES, STEPS_PER_TRIAL, draw_items, present, standard_schedule


@torch.no_grad()
def change_by_step(net, batch: int, trials: range, seed: int = 0) -> torch.Tensor:
    """trials: 0-based, the first >= 1 (the change is measured from the end of the trial before)."""
    generator = torch.Generator().manual_seed(seed)
    episode = present(draw_items(batch, 8, generator=generator), standard_schedule(batch, 8, generator=generator))
    kept = (trials.start - 1, *trials)
    record = run_episode(net, episode, snapshot_trials=kept, generator=generator)
    total = torch.zeros(STEPS_PER_TRIAL)
    for t in trials:
        before = record.snapshots[t - 1][:, -1:].float()  # P at the end of the previous trial
        steps = torch.cat([before, record.snapshots[t].float()], 1)
        total += (steps[:, 1:] - steps[:, :-1]).abs().mean(dim=(0, 2, 3))
    return total / len(trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--trials", default="6-10", help="first-last trial, numbered 1-30 (first >= 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    first, last = (int(x) for x in args.trials.split("-"))
    for path in args.files:
        change = change_by_step(load_network(path), args.batch, range(max(first, 2) - 1, last), args.seed)
        share = change / change.sum()
        print(f"{path}: mean |change of P| at the " + ", ".join(
            f"{name} step {v:.4f}" for name, v in zip(STEP_NAMES, change.tolist()))
            + f"; share at the feedback step {share[2]:.2f}, at the delay step {share[3]:.2f}")


if __name__ == "__main__":
    main()
