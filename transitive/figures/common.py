"""What every figure module shares: step names, colours, saving as PNG and PDF, small axis helpers."""
from __future__ import annotations

import io
import multiprocessing
import signal
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..model.io import atomic_write_bytes
from ..model.task import STEP_NAMES
from ..evaluation.stats import item_letters

STEPS = tuple(f"Step {k + 1} ({role})" for k, role in enumerate(STEP_NAMES))
DISTANCE_COLOURS = ["C0", "C1", "C2", "C3", "C4", "C5", "C7"]
PAIR_STYLES = {"DE": dict(color="#4b3f9e", marker="D", linestyle="-"),
               "ED": dict(color="#3fb8c4", marker="D", linestyle="--")}


def save_figure(fig: Figure, out_dir, name: str, dpi: int = 150) -> list[Path]:
    """Write `name`.png and `name`.pdf into out_dir, each whole or not at all (drawn in memory, then written
    atomically: an interruption leaves no half file); returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path, options in ((paths[0], {"dpi": dpi}), (paths[1], {})):
        drawn = io.BytesIO()
        fig.savefig(drawn, format=path.suffix[1:], bbox_inches="tight", **options)
        atomic_write_bytes(drawn.getvalue(), path)
    return paths


def save_figures(figures: dict, out_dir, workers: int = 1, log=None) -> list[Path]:
    """Write each figure (file name -> Figure) as `save_figure` does; returns the paths in the figures' order
    (PNG, then PDF) and tells `log` of each PNG, in that order too.

    Drawing a figure takes one core; with workers > 1, that many processes draw at once, one figure each
    at a time. They get each figure pickled (a matplotlib Figure pickles whole) and write the same
    files as this process would. They are forked where the platform can fork (cheap: nothing to import;
    they run matplotlib only, never torch, so torch's threads do not matter to them), else spawned."""
    log = log or (lambda text: None)
    workers = min(workers, len(figures))
    if workers <= 1:
        return _in_order((save_figure(fig, out_dir, name) for name, fig in figures.items()), log)
    start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(start),
                             initializer=_leave_ctrl_c_to_the_parent) as pool:
        pending = [pool.submit(save_figure, fig, out_dir, name) for name, fig in figures.items()]
        try:
            return _in_order((written.result() for written in pending), log)
        except KeyboardInterrupt:  # the figures being written are finished, the others not started
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _leave_ctrl_c_to_the_parent() -> None:
    """In a worker: Ctrl-C (sent to the whole process group) is for the parent, which stops handing out
    figures; the worker finishes the one it writes, quietly (no traceback of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _in_order(written, log) -> list[Path]:
    paths = []
    for png, pdf in written:
        log(f"wrote {png}")
        paths += [png, pdf]
    return paths


def format_p(p: float) -> str:
    """'p = 3.2e-05'; 'p < 1e-300' where the test's p underflows to 0."""
    return "p < 1e-300" if p == 0 else f"p = {p:.1e}"


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def item_axis(ax, nbcues: int = 8, label: str | None = None):
    ax.set_xticks(range(nbcues))
    ax.set_xticklabels(item_letters(nbcues))
    if label:
        ax.set_xlabel(label)



def mean_sd(ax, values: np.ndarray, **style):
    """Mean and s.d. over axis 0, one point per item."""
    values = np.asarray(values, dtype=float)
    x = np.arange(values.shape[-1])
    with warnings.catch_warnings():  # no episode selected: nothing drawn
        warnings.simplefilter("ignore", RuntimeWarning)
        ax.errorbar(x, np.nanmean(values, 0), yerr=np.nanstd(values, 0), capsize=0, markersize=4, **style)

