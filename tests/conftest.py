import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
sys.path.insert(0, str(ROOT))


def reference_file(name: str) -> Path:
    """A published parameter file from ../shared/reference; the test is skipped where it is absent."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} not available (no ../shared/reference in this checkout)")
    return path


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(1234)
    yield
