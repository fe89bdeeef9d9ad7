"""How close two float32 results must be: bounds that follow from the quantities compared, never from one
machine's rounding.

Two runs of one float32 computation that add the same terms in another order (vmap against a loop, K networks
against one, another CPU's vector width, a GPU) do not agree to the last bit. Their difference is rounding, and
rounding in a sum is proportional to the magnitude of what is summed, not to the result: an entry of a
gradient that is a small difference of large terms (4.66e-4 in a tensor whose largest entry is 8) carries an
absolute error of the large terms' size. A per-entry relative tolerance (rtol 1e-5) therefore passes on one
CPU and fails on another. Two rules instead:

- `assert_float32_close(a, b)`: |a - b| at most `units` float32 rounding units of the tensor's own scale (its
  largest entry, the magnitude its sums are made of). For results that differ only in the order of sums.
- `assert_within_drift(a, b, exact)`: where a float64 run of the same computation is at hand (same forced
  actions), `a` may be no further from it than DRIFT_FACTOR times the float32 reference `b` is. The allowance
  is measured on the spot, on whatever machine runs the test, so it holds where rounding differs and where a
  state is chaotic (docs/measurements/float32_drift_2026-12-01.md). A wrong coefficient is orders of
  magnitude beyond it.
"""
from __future__ import annotations

import torch

EPS32 = torch.finfo(torch.float32).eps  # 1.19e-7, one rounding unit of float32 at magnitude 1

# A fresh episode of a few trials accumulates a few hundred roundings of its largest terms in its gradients
# (measured against float64 at test size: 2e-7 to 4e-5 of the tensor's scale; two orderings differ by at most
# 4 units of the scale); 256 units (3e-5 of the scale) leave room for longer sums and other vector widths while
# a wrong rule, which moves entries by a sizeable part of the scale, stays far beyond it.
UNITS = 256

# The drift rule of the GPU tests, the one the GPU kernels check themselves with before the engine uses them
# (transitive/engine/gpu_probe.py): the fast path may be 4x as far from float64 as the float32 definition, and
# never needs to be closer than DRIFT_FLOOR relative to max(1, scale).
from transitive.engine.gpu_probe import DRIFT_FACTOR, DRIFT_FLOOR  # noqa: E402


def scale_of(t: torch.Tensor) -> float:
    """The magnitude a float32 tensor's rounding is measured against: its largest entry (1 for an all-zero one)."""
    largest = t.detach().abs().max().item() if t.numel() else 0.0
    return largest if largest > 0 else 1.0


def assert_float32_close(actual: torch.Tensor, expected: torch.Tensor, what: str = "", units: float = UNITS) -> None:
    """Equal up to the rounding of float32 sums: |actual - expected| <= units * EPS32 * scale(expected)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} against {tuple(expected.shape)}"
    gap = (actual.detach().double() - expected.detach().double()).abs().max().item() if actual.numel() else 0.0
    bound = units * EPS32 * scale_of(expected)
    assert gap <= bound, (f"{what}: differs by {gap:.3g}, allowed {bound:.3g} "
                          f"({units:g} float32 units of its scale {scale_of(expected):.3g})")


def drift(a: torch.Tensor, exact: torch.Tensor) -> float:
    """|a - exact| relative to exact's scale (at least 1)."""
    return (a.double() - exact.double()).abs().max().item() / max(1.0, exact.abs().max().item())


def relative_drift(a: torch.Tensor, exact: torch.Tensor) -> float:
    """|a - exact| relative to exact's own largest entry (for gradients, whose scale may be far from 1)."""
    return (a.double() - exact.double()).abs().max().item() / scale_of(exact)


def assert_within_drift(a, b, exact, what: str, relative: bool = False, floor: float = DRIFT_FLOOR) -> None:
    """a no further from the float64 run `exact` than DRIFT_FACTOR x b (the float32 reference), or `floor`;
    relative: measured against exact's own scale (gradients) instead of max(1, scale)."""
    measure = relative_drift if relative else drift
    bound = max(floor, DRIFT_FACTOR * measure(b, exact))
    assert measure(a, exact) <= bound, f"{what}: {measure(a, exact):.3g} from float64, allowed {bound:.3g}"
