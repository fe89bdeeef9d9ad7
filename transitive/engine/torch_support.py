"""What the installed PyTorch can run. The package runs on PyTorch 2.1 and later (pyproject.toml's floor; the
versions tried are in docs/measurements/torch_versions_2026-12-04.md). One path needs more: several networks
run as one by `torch.func.vmap` inside activation checkpointing (the definition's vectorised episode with
gradients, the "torch" backend's choice on CUDA) needs PyTorch 2.5; earlier versions raise "torch.func
transforms don't yet support saved tensor hooks". There the definition runs the networks one after the other
instead (each network's episode and gradients, as vmap gives them up to float32 rounding: tests/test_rule.py),
and says so once, in one line."""
from __future__ import annotations

import torch

from .rule import say_once

VMAP_UNDER_CHECKPOINTING = "2.5"  # the first PyTorch whose torch.func transforms accept saved-tensor hooks


def vmap_under_checkpointing() -> bool:
    """Whether vmap may run inside non-reentrant activation checkpointing here; if not, a one-line notice
    (once per process) that the networks run one after the other."""
    if torch.__version__ >= VMAP_UNDER_CHECKPOINTING:
        return True
    say_once(f"PyTorch {torch.__version__} runs the networks of the definition one after the other when training "
             f"(vmap under activation checkpointing needs PyTorch {VMAP_UNDER_CHECKPOINTING}; the same episodes, "
             f"more launches)")
    return False
