"""The package's layers are its subpackages, lowest first: a module imports only from its own layer or the
layers below.

    model       the network, the task and its schedules, parameter files
    engine      running episodes: the engine, its backends and kernels, the plain runner
    training    the loss, the regimes, the trainer and its configuration
    scale       sweeps, populations on clusters, speed measurements
    evaluation  the experiments run on a trained network and their statistics and analyses
    figures     plots, the registry of the paper's panels, Fig. 1f from a sweep
    interface   the command line, its options, the notebook's switches

Only transitive/__init__.py (the public API) and __main__.py sit outside them; they count as the interface.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "transitive"
ORDER = ["model", "engine", "training", "scale", "evaluation", "figures", "interface"]
TOP_LEVEL = {"__init__.py", "__main__.py"}


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "interface"


def imported_layers(path: Path) -> set[str]:
    """The layers a file imports from, by its relative imports (also those inside functions)."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0: transitive/x.py, 1: transitive/layer/x.py
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        assert node.level <= depth + 1, f"{path}: an import above the package"
        here = list(path.relative_to(PACKAGE).parts[:-1])[:depth + 1 - node.level]
        target = here + (node.module.split(".") if node.module else [])
        if target:
            found.add(target[0])
        else:  # `from .. import x`: x is a layer, or the package's own API
            found.update(alias.name for alias in node.names if alias.name in ORDER)
    return found


def upward_imports(path: Path) -> list[str]:
    layer = layer_of(path)
    return [f"{path.relative_to(PACKAGE)} ({layer}) imports {other}" for other in sorted(imported_layers(path))
            if other in ORDER and ORDER.index(other) > ORDER.index(layer)]


def test_every_module_sits_in_a_layer():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in TOP_LEVEL)
    assert not loose, f"move these modules into a layer's subpackage: {loose}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(ORDER)


@pytest.mark.parametrize("layer", ORDER)
def test_each_layer_says_what_it_holds_and_may_import(layer):
    doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
    assert doc and f"Layer {ORDER.index(layer) + 1} of 7" in doc


def test_no_module_imports_from_a_layer_above():
    upward = [line for path in sorted(PACKAGE.rglob("*.py")) for line in upward_imports(path)]
    assert not upward, "imports from a layer above:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule itself: a model module importing the trainer, even inside a function, is caught."""
    fake = PACKAGE / "model" / "network.py"
    text = fake.read_text() + "\n\ndef late():\n    from ..training.trainer import Trainer\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text if self == fake else Path.read_bytes(self).decode())
    assert upward_imports(fake) == ["model/network.py (model) imports training"]


def literal_constants(path: Path) -> dict[str, str]:
    """Module-level UPPER_CASE names bound to a literal (a number, a string, a tuple of them): name -> value."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper() and all(isinstance(n, (ast.Constant, ast.Tuple, ast.UnaryOp, ast.USub, ast.Load))
                                      for n in ast.walk(node.value)):
                found[name] = ast.unparse(node.value)
    return found


def test_each_constant_is_defined_once():
    seen: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in literal_constants(path):
            seen.setdefault(name, []).append(str(path.relative_to(PACKAGE)))
    twice = {name: places for name, places in seen.items() if len(places) > 1}
    assert not twice, f"defined in more than one module (define once, import elsewhere): {twice}"
    letters = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if '"ABCDEFGH' in p.read_text()]
    assert letters == ["model/task.py"], f"item letters spelled out outside model/task.py (use LETTERS): {letters}"


def imported_modules(path: Path) -> set[Path]:
    """The package's modules (not package __init__ files) that `path` imports by relative imports, also
    inside functions."""
    found = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = PACKAGE.joinpath(*path.relative_to(PACKAGE).parts[:depth + 1 - node.level])
        target = base.joinpath(*node.module.split(".")) if node.module else base
        candidates = [target.with_suffix(".py")] + [target / f"{alias.name}.py" for alias in node.names]
        found.update(c for c in candidates if c.is_file() and c.name != "__init__.py")
    return found


def import_cycles(graph: dict) -> list[list[str]]:
    """Every cycle of the graph, found by a depth-first search, as lists of module names."""
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for other in sorted(graph.get(node, ())):
            if state.get(other) == "open":
                cycles.append([str(p.relative_to(PACKAGE)) for p in trail[trail.index(other):] + [other]])
            elif other not in state:
                visit(other, trail + [other])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycle_between_modules():
    """Also imports inside functions, which hide a cycle from Python but not from a reader."""
    graph = {path: imported_modules(path) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}
    assert not import_cycles(graph), f"modules that import each other: {import_cycles(graph)}"


def test_the_cycle_check_sees_a_cycle_inside_a_function():
    a, b = PACKAGE / "evaluation" / "runs.py", PACKAGE / "evaluation" / "records.py"
    assert import_cycles({a: {b}, b: {a}}) == [["evaluation/records.py", "evaluation/runs.py", "evaluation/records.py"]]
    assert b in imported_modules(a)
