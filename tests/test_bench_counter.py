"""The work counter of `bench` (transitive.scale.benchmark): PyTorch operations and host synchronisations."""
import json

import torch

from transitive.interface.cli import main
from transitive.model.item_draws import draw_item_lists
from transitive.scale.benchmark import WorkCounter


def test_the_counter_sees_operations_and_every_kind_of_sync():
    x = torch.arange(6.0) - 2
    with WorkCounter() as quiet:
        y = (x * 2 + 1).relu()
        torch._foreach_mul_([y, x.clone()], 3.0)  # a foreach operation counts once
    assert quiet.operations == 5 and quiet.syncs == 0
    with WorkCounter() as counter:
        x.sum().item()  # _local_scalar_dense
        x[x > 0]  # a boolean mask: its size depends on the values
        x.tolist()
        x.nonzero()
        bool(x.any())
    assert counter.syncs == 5, counter.syncs_by_name
    assert set(counter.syncs_by_name) == {"_local_scalar_dense", "index", "tolist", "nonzero"}
    assert x.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]  # Tensor.tolist is given back afterwards
    assert counter.syncs == 5


def test_drawing_items_for_many_lists_costs_about_what_one_list_does():
    """The rounds are steps for all lists together: 8 lists cost far less than 8 times one list (the longest
    list's rounds decide), with the same few reads."""
    counts = {}
    for lists in (1, 8):
        with WorkCounter() as counter:
            draw_item_lists(32, [8] * lists, [torch.Generator().manual_seed(s) for s in range(lists)], 15)
        counts[lists] = counter
    assert counts[8].operations < 1.6 * counts[1].operations
    assert counts[8].syncs <= 5 and counts[1].syncs <= 5


def test_bench_reports_operations_and_syncs_per_episode(capsys):
    assert main(["bench", "--population", "1", "--episodes", "1", "--batch", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["operations_per_episode"] > 100 and result["counted_episodes"] == 3
    assert set(result["operations_by_phase"]) >= {"trials", "episode", "backward", "step"}
    assert result["syncs_per_episode"] == sum(result["syncs_by_cause"].values()) / 3
    assert "training/trainer.py" in result["syncs_by_place"]  # the one check per episode
