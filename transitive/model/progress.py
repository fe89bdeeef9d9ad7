"""Progress bars (tqdm, as text), placed where they read well: on standard error in a terminal, cleared when done
unless asked to stay; in a notebook, on standard output and left in place showing where they ended.

Why the notebook differs: Jupyter shows standard error in pink boxes, and a bar cleared when done (tqdm's
leave=False rewrites its line with spaces) left an empty pink box in the saved notebook, which reads as an
error. A text bar, not tqdm's widget bar: a widget bar does not survive reopening the notebook. Here in the
lowest layer so that training and evaluation use the same bars.
"""
from __future__ import annotations

import sys


def in_notebook(stream=None) -> bool:
    """Whether `stream` (standard output) is a Jupyter kernel's (JupyterLab, Colab, nbconvert)."""
    stream = sys.stdout if stream is None else stream
    return type(stream).__module__.split(".")[0] == "ipykernel"


def progress_bar(iterable=None, **options):
    """tqdm(iterable, **options) on standard error, or, in a notebook, on standard output and kept when done."""
    from tqdm import tqdm
    if in_notebook():
        options.update(file=sys.stdout, leave=True)
    return tqdm(iterable, **options)
