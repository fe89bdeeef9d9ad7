"""Where do the plastic weights change? Mean |change of P| at each of the 4 steps of a trial.

    python tools/plastic_change.py net_active.dat net_passive.dat [--batch 200] [--trials 5-9]

Runs the standard evaluation (8 items, 20 learning + 10 test trials) with P kept after every step of the
given trials, and prints, per step (0-based: step 2 is the paper's step 3, reward perceived; step 3 the
paper's step 4, delay), the mean absolute change of P over synapses, episodes and trials. The passive
solution (Extended Data Fig. 1) changes P at step 2 only; the active one at steps 2 and 3.
"""
import argparse

import torch

from transitive.episode import run_episode
from transitive.io import load_network
from transitive.task import STEPS_PER_TRIAL, draw_items, present, standard_schedule


@torch.no_grad()
def change_by_step(net, batch: int, trials: range, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    episode = present(draw_items(batch, 8), standard_schedule(batch, 8))
    kept = (trials.start - 1, *trials)
    record = run_episode(net, episode, snapshot_trials=kept)
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
    parser.add_argument("--trials", default="5-9", help="first-last trial (0-based, first >= 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    first, last = (int(x) for x in args.trials.split("-"))
    for path in args.files:
        change = change_by_step(load_network(path), args.batch, range(max(first, 1), last + 1), args.seed)
        share = change / change.sum()
        print(f"{path}: mean |change of P| at steps 0-3: " + ", ".join(f"{v:.4f}" for v in change.tolist())
              + f"; share at step 2 {share[2]:.2f}, step 3 {share[3]:.2f}")


if __name__ == "__main__":
    main()
