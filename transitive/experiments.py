"""Evaluation experiments (SPEC sections 6 and 7) and their summary numbers.

An experiment is data: a list of pair schedules, one per episode, run one after the other on the same
items with the network state carried over between episodes (one episode for the standard evaluation, three
for list linking). `run_schedules` runs any such list without gradients, in chunks of the batch.
"""
from __future__ import annotations

from dataclasses import fields

import torch

from .episode import EpisodeRecord, run_episode
from .network import NetworkState, PlasticNetwork
from .task import (draw_items, linking_schedules, massed_schedule, only_two_last_adjacent_schedule,
                   pair_name, pair_order, present, standard_schedule, withheld_pair_schedule)

ALL_ITEMS = 8


def cat_records(records: list[EpisodeRecord]) -> EpisodeRecord:
    """Concatenate records of batch chunks along the batch."""
    first = records[0]
    values = {}
    for f in fields(EpisodeRecord):
        parts = [getattr(r, f.name) for r in records]
        if f.name == "final_state":
            values[f.name] = NetworkState(*(torch.cat([getattr(p, k) for p in parts])
                                            for k in ("rates", "trace", "plastic_weights")))
        elif f.name == "snapshots":
            values[f.name] = {t: torch.cat([p[t] for p in parts]) for t in first.snapshots}
        else:
            values[f.name] = torch.cat(parts)
    return EpisodeRecord(**values)


def _to_cpu(record: EpisodeRecord, keep_state: bool) -> EpisodeRecord:
    values = {f.name: getattr(record, f.name) for f in fields(EpisodeRecord)}
    for k, v in values.items():
        if isinstance(v, torch.Tensor):
            values[k] = v.cpu()
    values["snapshots"] = {t: s.cpu() for t, s in record.snapshots.items()}
    state = record.final_state
    values["final_state"] = state if keep_state else NetworkState(state.rates.cpu(), state.rates.new_zeros(0).cpu(),
                                                                  state.plastic_weights.new_zeros(0).cpu())
    return EpisodeRecord(**values)


@torch.no_grad()
def run_schedules(net: PlasticNetwork, schedules: list[torch.Tensor], nbcues: int = ALL_ITEMS,
                  items: torch.Tensor | None = None, chunk: int = 128, snapshot_trials=(),
                  reset_plastic_every_trial: bool = False) -> list[EpisodeRecord]:
    """Run consecutive episodes (one per schedule) on the same items, carrying the state over.

    Returns one record per episode, on the CPU, for the whole batch. Snapshots of P are kept for
    `snapshot_trials` of every episode. reset_plastic_every_trial (the RESETPWEVERYTRIAL control) is
    passed on to `run_episode`.
    """
    options = {"reset_plastic_every_trial": True} if reset_plastic_every_trial else {}
    device = net.w.device
    batch = schedules[0].shape[0]
    if items is None:
        items = draw_items(batch, nbcues)
    per_episode = [[] for _ in schedules]
    for begin in range(0, batch, chunk):
        part = slice(begin, min(begin + chunk, batch))
        state = None
        for k, pairs in enumerate(schedules):
            trials = present(items[part], pairs[part]).to(device)
            record = run_episode(net, trials, state=state, snapshot_trials=snapshot_trials, **options)
            state = record.final_state
            per_episode[k].append(_to_cpu(record, keep_state=False))
    return [cat_records(parts) for parts in per_episode]


# ---------------------------------------------------------------------------------------------------------
# The experiments of SPEC section 7, as lists of schedules.

def standard(batch: int, nbcues: int = ALL_ITEMS):
    return [standard_schedule(batch, nbcues)]


def linking(batch: int, sham: bool = False):
    return linking_schedules(batch, sham=sham)


def massed(batch: int, extra: int):
    return [massed_schedule(batch, extra)]


def withheld_pair(batch: int):
    return [withheld_pair_schedule(batch)]


def only_two_last_adjacent(batch: int):
    return [only_two_last_adjacent_schedule(batch)]


# ---------------------------------------------------------------------------------------------------------
# Summary numbers.

def accuracy_by_pair(pairs: torch.Tensor, correct: torch.Tensor, nbcues: int = ALL_ITEMS) -> dict:
    """Accuracy per unordered pair ('AB', ...) over the given trials, in the paper's pair order."""
    low = pairs.min(-1).values.flatten()
    high = pairs.max(-1).values.flatten()
    correct = correct.flatten().float()
    result = {}
    for i, j in pair_order(nbcues):
        mask = (low == i) & (high == j)
        result[pair_name(i, j)] = correct[mask].mean().item() if mask.any() else float("nan")
    return result


def accuracy_by_distance(pairs: torch.Tensor, correct: torch.Tensor, nbcues: int = ALL_ITEMS) -> dict:
    distance = (pairs[..., 0] - pairs[..., 1]).abs().flatten()
    correct = correct.flatten().float()
    return {str(d): correct[distance == d].mean().item() if (distance == d).any() else float("nan")
            for d in range(1, nbcues)}


def standard_summary(record: EpisodeRecord, test_trials: int = 10) -> dict:
    pairs, correct = record.pairs[:, -test_trials:], record.correct[:, -test_trials:]
    adjacent = (pairs[..., 0] - pairs[..., 1]).abs() == 1
    return {
        "episodes": record.pairs.shape[0],
        "test_accuracy": correct.float().mean().item(),
        "adjacent_accuracy": correct[adjacent].float().mean().item(),
        "nonadjacent_accuracy": correct[~adjacent].float().mean().item(),
        "accuracy_by_distance": accuracy_by_distance(pairs, correct),
        "accuracy_by_pair": accuracy_by_pair(pairs, correct),
    }


def linking_summary(record: EpisodeRecord) -> dict:
    """Scores the last trial of the third episode of list linking or sham."""
    pairs, correct = record.pairs[:, -1:], record.correct[:, -1:]
    first_list = pairs < 4
    across = (first_list[..., 0] != first_list[..., 1]).flatten()
    by_distance = accuracy_by_distance(pairs, correct)
    flat = correct.flatten().float()
    return {
        "episodes": record.pairs.shape[0],
        "accuracy": flat.mean().item(),
        "across_list_accuracy": flat[across].mean().item(),
        "within_list_accuracy": flat[~across].mean().item(),
        "accuracy_by_pair": accuracy_by_pair(pairs, correct),
        "error_by_distance": {d: 1 - a for d, a in by_distance.items()},
    }


def evaluate(net: PlasticNetwork, batch: int = 2000, chunk: int = 128) -> dict:
    """The standard evaluation (8 items, 20 learning + 10 test trials)."""
    return standard_summary(run_schedules(net, standard(batch), chunk=chunk)[0])


def evaluate_linking(net: PlasticNetwork, batch: int = 4000, sham: bool = False, chunk: int = 128) -> dict:
    return linking_summary(run_schedules(net, linking(batch, sham), chunk=chunk)[-1])
