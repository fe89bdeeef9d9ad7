"""tools/memory_model.py against the tensors autograd actually keeps: the forward of a training episode with a
carried state (its blank steps with a gradient path) through the GPU kernels (Triton's interpreter on the
CPU), at a tiny size."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import TRITON_MISSING
import torch

from transitive.engine import Episodes, backends, run_episodes
from transitive.model.network import NetworkState, PlasticNetwork
from transitive.model.task import draw_items, present, standard_schedule
from transitive.training.loss import LossWeights, loss_terms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import memory_model  # noqa: E402

pytest.importorskip("triton", reason=TRITON_MISSING)
MEMBERS, BATCH, N, LEARNING, TESTS = 2, 3, 16, 2, 1


def saved_matrices_per_element(state_requires_grad: bool = False) -> float:
    """n x n matrices per element among the tensors saved for the backward (each storage once; tensors whose
    size is not a whole number of (batch, n, n) blocks, the parameters among them, left out)."""
    nets = [PlasticNetwork(hidden_size=N) for _ in range(MEMBERS)]
    g = torch.Generator().manual_seed(3)
    trials = [present(draw_items(BATCH, 6, generator=g), standard_schedule(BATCH, 6, LEARNING, TESTS, generator=g))
              for _ in range(MEMBERS)]
    states = [NetworkState(torch.rand(BATCH, N) - 0.5, torch.rand(BATCH, N, N) - 0.5, torch.randn(BATCH, N, N) * 10)
              for _ in range(MEMBERS)]
    episodes = Episodes.draw(trials, [torch.Generator().manual_seed(k) for k in range(MEMBERS)], states)
    backends.choose(nets, "triton")  # the kernels' test run, outside the count
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes() // tensor.element_size()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        records = run_episodes(nets, episodes, backend="triton")
        total = sum(loss_terms(r, LossWeights())["loss"] for r in records)
    total.backward()  # the graph was whole
    block = BATCH * N * N
    return sum(size for size in storages.values() if size % block == 0) / (N * N * MEMBERS * BATCH)


def test_the_model_counts_the_matrices_the_episode_keeps():
    if backends.triton_available():
        pytest.skip(backends.triton_available())
    measured = saved_matrices_per_element()
    # the model's kept matrices, and the carried trace and P (the model counts them among the graph's inputs),
    # which the first blank step saves
    assert measured == memory_model.saved_matrices(LEARNING + TESTS) + 2


def test_capture_peak_parts_and_the_t4():
    one, thirty = memory_model.capture_peak(1), memory_model.capture_peak(30)
    matrix = 32 * 200 * 200 * 4
    assert one["kept for the backward"] == (31 + 1 + 7) * matrix
    assert thirty["total"] > 29 * one["total"]  # almost all of it grows with the members
    freed = memory_model.capture_peak(30, warmup_freed=True)
    assert "warm-up blocks still cached" not in freed and freed["total"] < 0.6 * thirty["total"]
    k = memory_model.largest_members(14.5)
    assert memory_model.capture_peak(k)["total"] <= 14.5 * 2 ** 30 < memory_model.capture_peak(k + 1)["total"]
