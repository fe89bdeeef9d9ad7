"""How far float32 runs of the episode drift from float64, at full size, on the CPU: the measurement behind the
tolerances of the full-size GPU tests (tests/test_gpu_kernel.py, tests/test_cuda.py).

    python tools/float32_drift.py                 # every case, the plain runner and the GPU kernels
    python tools/float32_drift.py --no-kernels    # the plain runner only (the kernels' interpreter is slow)

The networks, episodes and carried states are those of tests/test_gpu_kernel.py at the sizes it uses on a GPU
(200 neurons, batch 4, 20 + 10 trials). Each run is compared with the plain step-by-step runner in float64
with the same (forced) actions:
- "plain32": the plain runner in float32 (PyTorch's ordering of the sums);
- "kernel32": the Triton kernels in float32, through Triton's CPU interpreter (the GPU's ordering of the sums;
  the interpreter's exp is exact where the GPU's ex2.approx is about 2 ulp off).
Printed per case: the largest difference of each quantity, relative to max(1, its float64 scale) as the tests
measure it (gradients: relative to the gradient's own largest entry), and for the carried states the rates'
difference by trial.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")  # the kernels on the CPU
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402

import test_gpu_kernel as cases  # noqa: E402  (its networks, episodes and states; sizes set below)
from transitive.engine import Episodes, run_episode, run_episodes  # noqa: E402
from transitive.model.network import NetworkState  # noqa: E402
from transitive.model.task import Trials  # noqa: E402

QUANTITIES = ("rates", "logits", "values", "modulation")
FINAL = ("rates", "trace", "plastic_weights")


def set_sizes(trials: int) -> None:
    cases.N, cases.BATCH, cases.DEVICE = 200, 4, "cpu"
    cases.LEARNING, cases.TESTS = (20, 10) if trials == 30 else (trials, 0) if trials < 10 else (trials - 5, 5)


def sampled_actions(nets, trials, states):
    g = [torch.Generator().manual_seed(30 + k) for k in range(len(nets))]
    with torch.no_grad():
        records = run_episodes(nets, Episodes.draw(trials, g, states), backend="torch")
    return torch.stack([r.actions for r in records])


def outcome(records, nets):
    terms = cases.member_losses(records, nets)
    sum(t["loss"] for t in terms).backward()
    grads = cases.gradients(nets)
    return records, terms, grads


def run_plain(nets, trials, states, actions, dtype):
    nets = [copy.deepcopy(net).to(dtype) for net in nets]
    trials = [Trials(t.pairs, t.stimuli.to(dtype)) for t in trials]
    states = [None if s is None else NetworkState(*(getattr(s, f).to(dtype) for f in FINAL)) for s in states]
    for net in nets:
        net.zero_grad()
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        records = [run_episode(net, t, state=s, actions=a, backend="eager")
                   for net, t, s, a in zip(nets, trials, states, actions)]
        return outcome(records, nets)
    finally:
        torch.set_default_dtype(default)


def run_kernels(nets, trials, states, actions):
    nets = [copy.deepcopy(net) for net in nets]
    for net in nets:
        net.zero_grad()
    records = run_episodes(nets, Episodes.draw(trials, states=states, actions=list(actions)), backend="triton")
    return outcome(records, nets)


def difference(a, b, relative_to_self=False) -> float:
    b = b.double()
    scale = b.abs().max().item() if relative_to_self else max(1.0, b.abs().max().item())
    return (a.double() - b).abs().max().item() / max(scale, 1e-30)


def compare(run, exact) -> dict:
    """The largest difference of each quantity over the members."""
    worst = {}

    def note(name, value):
        worst[name] = max(worst.get(name, 0.0), value)
    for k, (a, b) in enumerate(zip(run[0], exact[0])):
        for name in QUANTITIES:
            note(name, difference(getattr(a, name), getattr(b, name)))
        for name in FINAL:
            note("final " + name, difference(getattr(a.final_state, name), getattr(b.final_state, name)))
        for term in exact[1][k]:
            note("loss terms", difference(run[1][k][term], exact[1][k][term]))
        for name, grad in exact[2][k].items():
            note("gradients (relative)", difference(run[2][k][name], grad, relative_to_self=True))
    return worst


def rates_by_trial(run, exact) -> list[float]:
    a = torch.stack([r.rates for r in run[0]]).double()
    b = torch.stack([r.rates for r in exact[0]]).double()
    per_step = (a - b).abs().amax(dim=(0, 1, 3))  # (nsteps,)
    return per_step.reshape(-1, 4).amax(1).tolist()


def measure(name, nets, trials, states, kernels: bool) -> None:
    started = time.time()
    actions = sampled_actions(nets, trials, states)
    exact = run_plain(nets, trials, states, actions, torch.float64)
    runs = {"plain32": run_plain(nets, trials, states, actions, torch.float32)}
    if kernels:
        runs["kernel32"] = run_kernels(nets, trials, states, actions)
    print(f"\n== {name} ({len(nets)} networks, {trials[0].ntrials} trials, {time.time() - started:.0f} s)")
    results = {runner: compare(run, exact) for runner, run in runs.items()}
    for quantity in results["plain32"]:
        print(f"  {quantity:22s}" + "".join(f"  {runner} {r[quantity]:9.2e}" for runner, r in results.items()))
    if states[0] is not None:
        for runner, run in runs.items():
            by_trial = rates_by_trial(run, exact)
            shown = [t for t in (1, 2, 3, 5, 10, 20, 30) if t <= len(by_trial)]
            print(f"  rates by trial, {runner}: " + ", ".join(f"{t}: {by_trial[t - 1]:.1e}" for t in shown))
    return exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-kernels", action="store_true", help="the plain runner only")
    args = parser.parse_args()
    kernels = not args.no_kernels
    sys.stdout.reconfigure(line_buffering=True)  # each case as it is measured
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    set_sizes(30)
    nets, trials = cases.networks(2), cases.episodes(2)
    exact = measure("fresh episode", nets, trials, [None] * 2, kernels)
    carried = [r.final_state for r in exact[0]]  # float64 final states, as float32
    carried = [NetworkState(*(getattr(s, f).detach().float() for f in FINAL)) for s in carried]
    measure("carried from the fresh episode's final state", nets, cases.episodes(2, seed=6), carried, kernels)
    for count in (30, 5):
        set_sizes(count)
        nets, trials = cases.networks(2), cases.episodes(2)
        measure(f"carried state with P beyond the clip, {count} trials", nets, trials, cases.carried_states(2),
                kernels)


if __name__ == "__main__":
    main()
