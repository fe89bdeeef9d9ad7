"""Progress bars (transitive.model.progress): on standard error in a terminal; in a notebook on standard output,
left where they ended, so that the saved notebook shows no empty (pink) standard-error box where a bar was."""
from __future__ import annotations

import io
import sys

from transitive.model import progress


class KernelStream(io.StringIO):
    """Stands for ipykernel's OutStream (what sys.stdout is in JupyterLab, Colab and nbconvert)."""


KernelStream.__module__ = "ipykernel.iostream"


def shown(text: str) -> str:
    """What a notebook shows of a stream's text: on each line, what the last carriage return left."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n")).strip()


def test_a_kernels_stream_is_a_notebook():
    assert progress.in_notebook(KernelStream())
    assert not progress.in_notebook(io.StringIO())
    assert not progress.in_notebook(sys.__stdout__)


def test_in_a_notebook_a_bar_goes_to_standard_output_and_stays(monkeypatch, capsys):
    stdout = KernelStream()
    monkeypatch.setattr(sys, "stdout", stdout)
    for _ in progress.progress_bar(range(3), desc="standard", unit="chunk", leave=False):
        pass
    assert capsys.readouterr().err == ""  # nothing on standard error: no pink box
    assert shown(stdout.getvalue()).startswith("standard: 100%") and "3/3" in shown(stdout.getvalue())


def test_in_a_terminal_a_bar_goes_to_standard_error_and_is_cleared(capsys):
    bar = progress.progress_bar(total=7, desc="recoded fit 1", unit="step", leave=False)
    bar.update(7)
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == "" and "recoded fit 1" in captured.err
    assert shown(captured.err) == ""  # leave=False: the line is cleared when done (in a notebook: an empty box)
