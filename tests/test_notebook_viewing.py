"""main.ipynb where it is only viewed or opened: the title first, a library cell whose packed text is wrapped (as
GitHub and `jupyter nbconvert --to html` show every cell), and the metadata JupyterLab writes, so that opening it
there changes nothing."""
from __future__ import annotations

import importlib.util
import re
import sys

import nbformat
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "main.ipynb"


def builder():
    spec = importlib.util.spec_from_file_location("build_notebook", ROOT / "tools" / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_title_and_introduction_come_before_a_library_cell_of_short_lines(nb):
    tools = builder()
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Plastic networks")
    k = tools.library_index(nb)
    assert k == 1
    lines = nb.cells[k].source.splitlines()
    assert max(len(line) for line in lines) <= 120  # the packed text wrapped, as wide as the code
    packed = [line for line in lines if line.startswith('    "')]
    assert len(packed) > 5000 and max(len(line) for line in packed) == tools.WRAP
    assert len([line for line in packed if len(line) < tools.WRAP]) <= 1 + len(tools.BUNDLED_FILES)  # blocks' ends
    assert len(lines) - len(packed) <= 60  # the code around it
    assert "transitive/" in "\n".join(lines[:6])  # where the readable source is
    # Colab: the library and configuration cells keep their form titles (the code hidden behind them)
    for cell in (nb.cells[k], next(c for c in nb.cells if c.source.startswith("#@title Configuration"))):
        assert cell.metadata["cellView"] == "form" and cell.source.startswith("#@title ")


def test_the_metadata_is_what_jupyterlab_writes_with_ipykernel(nb):
    """JupyterLab marks a notebook modified when its kernel's kernelspec or language_info differ from the
    file's: they must be ipykernel's (on the tested Python; elsewhere only language_info.version differs)."""
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == len(ids)
    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    ipkernel = pytest.importorskip("ipykernel.ipkernel")
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": spec.display_name,
                                         "language": spec.language}
    reported = dict(ipkernel.IPythonKernel.language_info)
    tested = builder().tested_python()
    assert nb.metadata["language_info"] == {**reported, "version": tested}
    if sys.version.split()[0] == tested:
        assert nb.metadata["language_info"] == reported
    assert nb.metadata["colab"] == {"provenance": []}


def test_the_rendered_notebook_opens_with_the_title(nb):
    """As `jupyter nbconvert --to html` renders it (every cell shown, as on GitHub): the title, then the
    introduction, then a library cell of a few lines."""
    nbconvert = pytest.importorskip("nbconvert")
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    title = html.index("Plastic networks for transitive inference")
    library = html.index("#@title Library")
    assert title < html.index("Keeping a training in Colab") < library
    block = html[html.rfind("<pre", 0, library):html.index("</pre>", library)]
    text = re.sub(r"<[^>]+>", "", block)  # the code as shown, without its highlighting
    assert max(len(line) for line in text.splitlines()) <= 140  # no line of 376,766 characters (issue 30)
    assert re.search(r"transitive ready", block)
