import os
import signal
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton kernels run in Triton's CPU interpreter (it is chosen when they are first imported).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Why the GPU kernels' tests skip where Triton is missing (python tools/install.py --no-triton leaves it out).
TRITON_MISSING = ("Triton is not installed: the GPU kernels' tests run in it (without a GPU, in its CPU "
                  "interpreter); python tools/install.py installs it, --no-triton leaves it out")



def run_reference(net, trials, **options):
    """The reference every backend is tested against: the networks' own definition, step by step, uncompiled
    (`run_episode` with backend "eager")."""
    from transitive.engine.episode import run_episode
    return run_episode(net, trials, backend="eager", **options)


ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"


def assert_png_drawn(path, inches=None, dpi: int = 150) -> None:
    """A saved figure's PNG decodes to an RGB(A) image that is not blank (some of it inked, more than one
    colour), of about the figure's size in pixels: `inches`, the figure's (width, height), where known
    (figures are saved with bbox_inches="tight", cropped to what is drawn), else of a figure's size."""
    import numpy as np
    from matplotlib.image import imread
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4), (Path(path).name, image.shape)
    height, width = image.shape[:2]
    if inches is not None:
        w, h = (dpi * v for v in inches)
        assert 0.8 * w <= width <= 1.15 * w and 0.8 * h <= height <= 1.15 * h, (Path(path).name, image.shape, w, h)
    else:
        assert 100 <= min(height, width) and max(height, width) <= 3000, (Path(path).name, image.shape)
    rgb = image[..., :3]
    inked = (rgb < 0.5).any(-1).mean()  # dark pixels: lines, text, markers
    assert 0.002 < inked < 0.5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 2, (Path(path).name, inked)


def assert_pdf_whole(path) -> None:
    """A saved figure's PDF: a whole file (header to end-of-file marker) with a page."""
    data = Path(path).read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF") and b"/Type /Page" in data, Path(path).name


def reference_skip_reason(name: str = "paper_net_*.dat") -> str:
    """Why a test that compares with the original release's files is skipped, in words a user understands."""
    return (f"compares with the original release's published networks ({name}), which this project does not ship: "
            f"put them in {REFERENCE} to run it")


def reference_file(name: str) -> Path:
    """A published parameter file from ../shared/reference; the test is skipped where it is absent."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(reference_skip_reason(name))
    return path


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


CTRL_C_LEFT_IGNORED: list[str] = []


@pytest.fixture(autouse=True)
def ctrl_c_as_found(request):
    """Each test leaves Ctrl-C (SIGINT) as it found it. A process started with SIGINT ignored keeps it ignored,
    so a test that left it ignored in this process made every later `transitive` command of the Ctrl-C tests
    deaf to Ctrl-C (seen once with the tests spread over processes). Restored here; the tests that changed it
    are named at the end of the run."""
    found = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not found:
        CTRL_C_LEFT_IGNORED.append(request.node.nodeid)
        signal.signal(signal.SIGINT, found)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread for the whole suite: the tests run many small operations, for which one thread is
    faster than two on a 2-core machine (test_kernels checks that more threads give the same results)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter):
    if CTRL_C_LEFT_IGNORED:
        terminalreporter.write_line("tests that left Ctrl-C changed (restored after each): "
                                    + ", ".join(CTRL_C_LEFT_IGNORED))
