"""The one line that names the switch when the GPU kernels fail: `naming_the_switch` wraps their launches
(`transitive.engine.gpu_kernel`) and the test run of `transitive.engine.gpu_probe` reports with it."""
from __future__ import annotations

import contextlib

import torch

from .cpu_kernel import ENV_SWITCH

ADVICE = f"set {ENV_SWITCH}=torch to use the PyTorch runner"


def _summary(error: BaseException) -> str:
    """The error's type and the first line of its message (Triton's compile errors run to pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"{type(error).__name__}: {first[:300]}" if first else type(error).__name__


@contextlib.contextmanager
def naming_the_switch():
    """Launches of the GPU kernels: an error becomes one RuntimeError that names TRANSITIVE_KERNEL."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - a compile, launch or resource error of Triton or the driver
        raise RuntimeError(f"the GPU kernels failed ({_summary(error)}); {ADVICE}") from error
