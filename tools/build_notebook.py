"""Write main.ipynb from the package, so that the notebook runs alone (e.g. on Colab) and its figure cells
are exactly the package's figure functions.

    python tools/build_notebook.py          # (re)write main.ipynb
    python tools/build_notebook.py --check  # exit 1 if main.ipynb is not what this script would write

main.ipynb is generated: edit the package (transitive/figures/panels.py for a figure) or the texts below, not the
notebook. The title and introduction come first. Then the library cell holds the modules of `transitive/` that
the notebook uses (and the C++ kernel source), packed (JSON, then transitive.interface.notebook.pack: xz, then
base85) as string literals of WRAP characters a line, so that a viewer that shows every cell (GitHub, nbconvert's
HTML) shows no line wider than the code's (it showed one line of 376,766 characters); run, it writes them into
./transitive (unless ./transitive is a checkout of this repository, which it then uses as it is) and imports the
package, and sets torch's threads to the cores free (transitive.interface.threads). The same cell carries our two
networks and their training logs (BUNDLED_FILES, packed the same way) and writes those that are missing beside the
notebook, so that "Run all" works with nothing uploaded.
Each figure cell is the body of the figure's function in transitive/figures/panels.py, run only when the
selected experiment makes that figure.

`--check` compares the cells' text, the package and the carried files by content: the notebook is stale when
what it carries does not unpack to the current package or to the bytes of the file it copies (e.g.
net_active.dat retrained).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import json
import lzma
import re
import sys
import textwrap
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from notebook_cells import AFTER, CONFIG_GROUPS, INTRO, LIBRARY_CODE, SETUP, TAIL  # noqa: E402 (the cells' texts)
from transitive.evaluation import keynumbers
from transitive.figures import panels
from transitive.interface.notebook import BUNDLED, NotebookConfig, pack, unpack

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "transitive"
NOTEBOOK = ROOT / "main.ipynb"
# The files the notebook carries, written beside it when missing: our networks and their training logs.
BUNDLED_FILES = {"net_active.dat": ROOT / "net_active.dat", "net_passive.dat": ROOT / "net_passive.dat",
                 "net_active.csv": ROOT / "net_active.csv", "net_passive.csv": ROOT / "net_passive.csv"}
assert tuple(BUNDLED_FILES) == BUNDLED
LIBRARY_TITLE = "#@title Library: the `transitive` package and our two networks"
# In the library cell, each packed text is a block of string literals, one a line ("\n    \"...\"" each, WRAP
# characters wide), that Python joins into one string: the package's files (as JSON) in _PACKAGE = (block\n), each
# carried file as 'name': ('sha256', (block\n)),. Packed: transitive.interface.notebook.pack (xz, then base85).
WRAP = 100
_BLOCK = r"((?:\n    \"[^\"\n]*\")+)"
PACKED = re.compile(r"^'([\w.]+)': \('([0-9a-f]{64})', \(" + _BLOCK + r"\n\)\),$", re.M)
PACKED_PACKAGE = re.compile(r"^_PACKAGE = \(" + _BLOCK + r"\n\)", re.M)
# What the notebook's own cells import; the library cell holds these and everything they import.
NOTEBOOK_IMPORTS = ("interface/notebook.py", "interface/threads.py", "evaluation/runs.py", "figures/panels.py", "evaluation/stats.py",
                    "evaluation/analysis.py", "figures/__init__.py", "evaluation/keynumbers.py",
                    "evaluation/item_representations.py", "training/trainer.py", "model/io.py")


def imported_files(path: Path) -> set[Path]:
    """The package's files imported by one of its modules (relative imports, any depth, also inside
    functions), with the __init__.py of every package on the way."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        for part in (node.module or "").split("."):
            if part:
                found.add(base / "__init__.py")
                base = base / part
        if base.with_suffix(".py").is_file():  # from .module import names
            found.add(base.with_suffix(".py"))
            continue
        found.add(base / "__init__.py")  # from .package import names: modules of it, or its own names
        found.update(base / f"{alias.name}.py" for alias in node.names if (base / f"{alias.name}.py").is_file())
    return {p for p in found if p.is_file()}


def used_files() -> list[Path]:
    """The notebook's modules and, transitively, the package files they import, plus __init__.py."""
    todo = [PACKAGE / "__init__.py"] + [PACKAGE / name for name in NOTEBOOK_IMPORTS]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        todo += sorted(imported_files(path)) + [folder / "__init__.py" for folder in path.parents
                                                 if PACKAGE in folder.parents]
    return sorted(seen)


def package_sources() -> dict[str, str]:
    files = {path.relative_to(PACKAGE).as_posix(): path.read_text() for path in used_files()}
    for data in sorted(PACKAGE.glob("engine/csrc/*")):
        files[data.relative_to(PACKAGE).as_posix()] = data.read_text()
    return files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundled_digests() -> dict[str, str]:
    """The sha256 of each file the notebook must carry, as it is in the repository now."""
    return {name: sha256(path.read_bytes()) for name, path in BUNDLED_FILES.items()}


def literals(text: str) -> str:
    """Packed `text` as a block of string literals, one a line of WRAP characters (indented, quoted)."""
    width = WRAP - 6
    return "".join(f'\n    "{text[k:k + width]}"' for k in range(0, len(text), width))


def joined(block: str) -> str:
    """The text a block of string literals holds (what Python makes of it)."""
    return "".join(re.findall(r'"([^"\n]*)"', block))


def carried_files(source: str) -> dict[str, tuple[str, str]]:
    """{name: (sha256 it is said to have, its packed text)} of each file a library cell carries."""
    return {name: (digest, joined(block)) for name, digest, block in PACKED.findall(source)}


def carried_digests(source: str) -> dict[str, str]:
    """The sha256 of what each file carried in a library cell unpacks to ('damaged' if it does not unpack)."""
    found = {}
    for name, (_, text) in carried_files(source).items():
        try:
            found[name] = sha256(unpack(text))
        except (ValueError, lzma.LZMAError):  # base85 or xz data that is not whole
            found[name] = "damaged"
    return found


def packed_text(data: bytes) -> str:
    """`data` packed, without line breaks (literals() then wraps it)."""
    return "".join(pack(data).split())


def packed_sources(sources: dict[str, str]) -> str:
    return packed_text(json.dumps(sources).encode())


def carried_sources(source: str) -> dict[str, str] | None:
    """The package's files carried by a library cell ({path: text}); None if there are none or they are damaged."""
    match = PACKED_PACKAGE.search(source)
    try:
        return json.loads(unpack(joined(match[1]))) if match else None
    except (ValueError, lzma.LZMAError):
        return None


def library_index(nb) -> int:
    """Where the library cell is (after the title and introduction)."""
    return next(k for k, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.source.startswith(LIBRARY_TITLE))


def library_cell_source() -> str:
    sources = package_sources()
    digest = hashlib.sha256("".join(f"{k}\0{v}\0" for k, v in sources.items()).encode()).hexdigest()[:12]
    lines = [
        f"{LIBRARY_TITLE} (generated by tools/build_notebook.py; do not edit here)",
        f"# The package's {len(sources)} files (content hash {digest}) and our networks with their training logs,",
        "# packed (xz, then base85): readable in the repository, as its folder transitive/ and the files at its root.",
        "# Running this cell writes the package into ./transitive (unless ./transitive is a checkout of the",
        "# repository, which is then used as it is), imports it, and writes the networks and logs beside the notebook",
        "# where they are missing.",
        "import base64, importlib, json, lzma, sys",
        "from pathlib import Path",
        "",
        f"_PACKAGE = ({literals(packed_sources(sources))}\n)",
        "_BUNDLED = {  # name: (sha256 of the file, the file packed)",
    ]
    for name, path in BUNDLED_FILES.items():
        data = path.read_bytes()
        lines.append(f"{name!r}: ({sha256(data)!r}, ({literals(packed_text(data))}\n)),")
    lines += ["}", LIBRARY_CODE]
    return "\n".join(lines)


COLAB_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def config_cell_source() -> str:
    """Every switch of NotebookConfig, grouped, each under one line saying what it does (Colab form fields
    for the simple types)."""
    switches = {f.name: f for f in dataclasses.fields(NotebookConfig)}
    listed = [name for _, names in CONFIG_GROUPS for name in names]
    assert sorted(listed) == sorted(switches), "CONFIG_GROUPS must list every switch of NotebookConfig once"
    defaults = NotebookConfig()
    lines = ["#@title Configuration: the original notebook's switches"]
    for header, names in CONFIG_GROUPS:
        lines.append(f"# ---- {header}")
        for name in names:
            value = getattr(defaults, name)
            kind = COLAB_TYPES.get(switches[name].type)
            form = f"  #@param {{type:\"{kind}\"}}" if kind else ""
            lines += [f"# {switches[name].metadata['help']}", f"{name} = {value!r}{form}".replace("'", '"')]
    return "\n".join(lines)


def panel_body(p: panels.Panel) -> str:
    """The body of a figure function, its `return X` turned into `fig = X` (continuation lines follow)."""
    lines = inspect.getsource(p.function).splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("def "))
    body = textwrap.dedent("\n".join(lines[start + 1:])).splitlines()
    out, returning = [], False
    for line in body:
        if line.startswith("return "):
            line, returning = "fig = " + line[len("return "):], True
        elif returning and line.startswith(" "):
            line = line[1:]
        out.append(line)
    return "\n".join(out)


def panel_cell(p: panels.Panel) -> str:
    body = textwrap.indent(panel_body(p), "    ")
    cell = f'if config.makes("{p.name}"):\n{body}\n    show(fig, "{p.name}")'
    if p.name in keynumbers.PRINTED:
        cell += f'\n    print(printed(runs, "{p.name}"))  # what the original prints here'
    return cell


def panel_markdown(p: panels.Panel) -> str:
    return f"**`{p.name}`** ({p.paper}; made in: {p.made_in})"


def tested_python() -> str:
    """The Python version the pinned set was tested with (the header of constraints.txt)."""
    match = re.search(r"^# Python (\d+\.\d+\.\d+)", (ROOT / "constraints.txt").read_text(), re.M)
    if not match:
        raise SystemExit("constraints.txt names no Python version in its header (tools/pin_versions.py writes it)")
    return match[1]


def notebook_metadata() -> dict:
    """The notebook's metadata as JupyterLab writes it once ipykernel's kernel is connected (on the tested
    Python), so that opening the notebook there changes nothing (JupyterLab marks a notebook modified when the
    kernel's kernelspec or language_info differ from the file's), and Colab's."""
    return {"colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                              "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                              "pygments_lexer": "ipython3", "version": tested_python()}}


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = notebook_metadata()
    library = nbformat.v4.new_code_cell(library_cell_source())
    library.metadata = {"cellView": "form", "jupyter": {"source_hidden": True}, "tags": ["library"]}
    config = nbformat.v4.new_code_cell(config_cell_source())
    config.metadata = {"cellView": "form", "tags": ["configuration"]}
    cells = [nbformat.v4.new_markdown_cell(INTRO), library, config, nbformat.v4.new_code_cell(SETUP)]
    for group in panels.groups():
        cells.append(nbformat.v4.new_markdown_cell(panels.GROUPS[group]))
        for p in panels.FIGURES.values():
            if p.group == group:
                cells += [nbformat.v4.new_markdown_cell(panel_markdown(p)), nbformat.v4.new_code_cell(panel_cell(p))]
                if p.name in AFTER:
                    cells.append(nbformat.v4.new_code_cell(AFTER[p.name]))
    for text, code in TAIL:
        cells += [nbformat.v4.new_markdown_cell(text), nbformat.v4.new_code_cell(code)]
    for k, cell in enumerate(cells):  # stable ids, so that rebuilding gives the same file
        cell["id"] = f"cell-{k:02d}"
    nb.cells = cells
    return nb


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def cell_contents(nb) -> list[tuple[str, str]]:
    """What must match for a notebook to be up to date: the kind and text of every cell (outputs, ids and
    metadata may differ, e.g. after running it in Jupyter), each carried file standing for what it unpacks to
    (another version of xz may pack the same bytes differently)."""
    def by_content(source: str) -> str:
        source = PACKED.sub(lambda m: f"{m[1]!r}: ({m[2]!r}, {carried_digests(m[0]).get(m[1], 'damaged')!r}),",
                            source)
        sources = carried_sources(source)
        package = "damaged" if sources is None else sha256(json.dumps(sources).encode())
        return PACKED_PACKAGE.sub(lambda m: f"_PACKAGE = {package!r}", source)
    return [(cell.cell_type, by_content(cell.source)) for cell in nb.cells]


def stale_reason(path: Path = NOTEBOOK) -> str | None:
    """None if `path` has the cells this script writes, else why not."""
    if not path.exists():
        return f"{path.name} does not exist"
    nb = nbformat.read(path, as_version=4)
    library = next((cell.source for cell in nb.cells if cell.source.startswith(LIBRARY_TITLE)), "")
    carried = carried_digests(library)
    changed = [name for name, digest in bundled_digests().items() if carried.get(name) != digest]
    if changed:
        files = [BUNDLED_FILES[name] for name in changed]
        shown = [str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f) for f in files]
        return f"{path.name} carries a copy of {', '.join(changed)} that is not the current file ({', '.join(shown)})"
    committed = cell_contents(nb)
    expected = cell_contents(build())
    if committed == expected:
        return None
    if len(committed) != len(expected):
        return f"{path.name} has {len(committed)} cells, the generator writes {len(expected)}"
    differing = [k for k, (a, b) in enumerate(zip(committed, expected)) if a != b]
    which = ("the library cell (the package changed)" if differing[0] == library_index(build())
             else f"cell {differing[0]}")
    return f"{path.name} differs from the generated notebook in {which}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that main.ipynb is up to date")
    args = parser.parse_args(argv)
    if args.check:
        reason = stale_reason()
        if reason:
            print(f"stale: {reason}; run python tools/build_notebook.py", file=sys.stderr)
            return 1
        print(f"{NOTEBOOK.name} is up to date")
        return 0
    NOTEBOOK.write_text(render(build()))
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
