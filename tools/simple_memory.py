"""Peak memory and seconds per episode of simple.ipynb's training code (a benchmark, not a test).

    python tools/simple_memory.py [--notebook simple.ipynb] [--episodes 2] [--batch 32] [--device cpu]

Runs the notebook's code cell as a module (so its 30,000-episode loop does not start), then calls its own
`train` for a few episodes of the paper's batch of 32, saving into a temporary folder. Prints the peak
resident memory of this process (VmHWM, torch included) and the seconds per episode. Run one measurement
per process: the peak is that of the whole process. To measure an earlier version of the notebook:

    git show HEAD:simple.ipynb > /tmp/simple_before.ipynb
    python tools/simple_memory.py --notebook /tmp/simple_before.ipynb
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
import types
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "simple.ipynb"


def memory_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process in MiB; ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2 ** 20  # kB on Linux, bytes on macOS


def load_notebook(path: Path) -> types.ModuleType:
    """The notebook's code cell(s) run as a module named 'simple_notebook' (not '__main__')."""
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    module = types.ModuleType("simple_notebook")
    sys.modules[module.__name__] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="the notebook to measure")
    parser.add_argument("--episodes", type=positive, default=2, help="episodes of meta-training")
    parser.add_argument("--batch", type=positive, default=32, help="episodes run in parallel")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        parser.error(f"--notebook: no such file: {args.notebook}")

    import torch

    notebook = load_notebook(args.notebook)
    before = memory_mib("VmRSS")
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()) as printed:
        started = time.perf_counter()
        notebook.train(nb_episodes=args.episodes, save_every=10 ** 9, save_path=f"{folder}/net.dat",
                       batch_size=args.batch, seed=args.seed, device=args.device)
        elapsed = time.perf_counter() - started
    print(f"notebook: {args.notebook}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}, "
          f"batch {args.batch}, {args.episodes} episode(s)")
    print("notebook's progress line: " + (printed.getvalue().strip().splitlines() or ["(none)"])[0])
    print(f"resident memory before training: {before:,.0f} MiB")
    print(f"peak resident memory: {memory_mib('VmHWM'):,.0f} MiB")
    print(f"seconds per episode: {elapsed / args.episodes:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
