"""The path that needs a newer PyTorch than the floor (issue 36): several networks through the definition by
vmap inside activation checkpointing needs 2.5; below it the definition runs them one after the other when
gradients are on, with one line saying so, and keeps vmap without gradients."""
import warnings

import pytest
import torch
from torch.torch_version import TorchVersion

from transitive.engine import definition, torch_support
from transitive.model.network import PlasticNetwork


@pytest.mark.parametrize("version, vmap_with_gradients", [("2.4.1", False), ("2.3.1+cpu", False),
                                                           ("2.5.0", True), ("2.5.1+cu121", True), ("2.10.0", True)])
def test_vmap_under_checkpointing_from_2_5(monkeypatch, version, vmap_with_gradients):
    monkeypatch.setattr(torch, "__version__", TorchVersion(version))
    nets = [PlasticNetwork(hidden_size=8) for _ in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert definition._vectorise(nets, True) is vmap_with_gradients
        with torch.no_grad():
            assert definition._vectorise(nets, True) is True  # no checkpointing: vmap runs on any version
    lines = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if vmap_with_gradients:
        assert lines == []
    else:
        assert len(lines) == 1 and "\n" not in lines[0] and "needs PyTorch 2.5" in lines[0]
        assert version.split("+")[0] in lines[0]


def test_the_installed_pytorch_is_judged_by_its_own_version():
    assert torch_support.vmap_under_checkpointing() is (torch.__version__ >= "2.5")


@pytest.mark.parametrize("selective", [True, False])
def test_the_compiled_trials_checkpointing_without_the_policies_of_2_4(monkeypatch, selective):
    """Selective checkpointing (what the compiled definition's backward keeps) came with PyTorch 2.4; without
    it the trial is checkpointed whole: the same values and gradients either way."""
    from torch.utils import checkpoint as activation_checkpoint

    from transitive.engine import compiled
    if not selective:
        monkeypatch.delattr(activation_checkpoint, "create_selective_checkpoint_contexts")

    def trial(x, w):
        h = torch.tanh(x @ w)
        return (h * h).sum(), torch.clamp(h, -0.5, 0.5)

    x, w = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    loss, clipped = compiled._checkpointed(trial)(x, w)
    (loss + clipped.sum()).backward()
    grad = w.grad.clone()
    w.grad = None
    expected_loss, expected_clipped = trial(x, w)
    (expected_loss + expected_clipped.sum()).backward()
    assert torch.equal(loss, expected_loss) and torch.equal(clipped, expected_clipped)
    assert torch.allclose(grad, w.grad, rtol=1e-12, atol=0)
