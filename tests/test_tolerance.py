"""The float32 tolerances of the tests (tests/tolerance.py): a reordered sum passes on any machine, a wrong
result fails."""
import pytest
import torch

from tolerance import EPS32, UNITS, assert_float32_close, assert_within_drift


def gradient_like(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries that are sums of large terms which mostly cancel, summed in two orders."""
    g = torch.Generator().manual_seed(seed)
    terms = torch.randn(64, 500, generator=g) * 8
    terms[:, -1] = -terms[:, :-1].sum(1) + torch.randn(64, generator=g) * 1e-3  # small results of large terms
    forward = terms.sum(1)
    backward = terms.flip(1).cumsum(1)[:, -1]
    return forward, backward


def test_a_reordered_sum_passes_where_a_per_entry_relative_tolerance_fails():
    forward, backward = gradient_like()
    assert not torch.equal(forward, backward)  # rounding differs with the order
    with pytest.raises(AssertionError):  # the old rule: rtol 1e-5 of each entry
        torch.testing.assert_close(forward, backward, rtol=1e-5, atol=1e-7)
    bigger = torch.cat([forward, torch.tensor([8.0])])  # the tensor's scale: its largest entry
    assert_float32_close(torch.cat([backward, torch.tensor([8.0])]), bigger, "reordered")


def test_a_wrong_entry_fails():
    expected = torch.randn(100) * 3
    wrong = expected.clone()
    wrong[17] *= 1.001  # a coefficient 0.1% off in one entry
    with pytest.raises(AssertionError, match="allowed"):
        assert_float32_close(wrong, expected, "wrong entry")
    slightly = expected + UNITS * EPS32 * expected.abs().max() * 0.5
    assert_float32_close(slightly, expected, "within the bound")
    with pytest.raises(AssertionError, match="shape"):
        assert_float32_close(expected[:10], expected, "shape")


def test_the_drift_rule_measures_the_reference_s_own_error():
    exact = torch.randn(50, dtype=torch.float64)
    reference = exact.float()  # float32 rounding only
    assert_within_drift(exact.float() + 1e-7, reference, exact, "close", floor=0)
    with pytest.raises(AssertionError, match="from float64"):
        assert_within_drift(exact.float() + 1e-3, reference, exact, "far", floor=0)
