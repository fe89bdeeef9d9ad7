import os
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton kernels run in Triton's CPU interpreter (it is chosen when they are first imported).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


def reference_file(name: str) -> Path:
    """A published parameter file from ../shared/reference; the test is skipped where it is absent."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} not available (no ../shared/reference in this checkout)")
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread for the whole suite: the tests run many small operations, for which one thread is
    faster than two on a 2-core machine (test_kernels checks that more threads give the same results)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
