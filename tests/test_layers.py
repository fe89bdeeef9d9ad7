"""The package's layers, lowest first: a module imports only from its own layer or the layers below.

    model       the network, the task and its schedules, parameter files
    engine      running episodes: the engine, its backends and kernels, the plain runner
    training    the loss, the regimes, the trainer and its configuration
    scale       sweeps, populations on clusters, speed measurements
    evaluation  the experiments run on a trained network and their statistics and analyses
    figures     plots, the registry of the paper's panels, Fig. 1f from a sweep
    interface   the command line, its options, the notebook's switches

A new module must be given its layer here (the test fails on a module it does not know).
"""
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "transitive"
LAYERS = {
    "model": ["network", "task", "schedules", "io"],
    "engine": ["engine", "backends", "stacked", "episode", "kernels", "gpu_kernel", "gpu_forward", "gpu_backward"],
    "training": ["loss", "config", "member", "learning", "training", "regimes"],
    "scale": ["sweep", "sweepjobs", "benchmark"],
    "evaluation": ["runs", "stats", "analysis", "representations", "classify", "keynumbers", "records", "choices"],
    "figures": ["figures", "panels", "curves"],
    "interface": ["cli", "cli_training", "options", "notebook", "__main__", "__init__"],
}
ORDER = list(LAYERS)
LAYER_OF = {module: ORDER.index(layer) for layer, modules in LAYERS.items() for module in modules}
RELATIVE_IMPORT = re.compile(r"^\s*from (\.+)(\w*) import ([\w, ()]+)", re.M)


def module_of(path: Path) -> str:
    """The package-level module a file belongs to (a subpackage's files belong to the subpackage)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_modules(path: Path) -> set[str]:
    inside_subpackage = len(path.relative_to(PACKAGE).parts) > 1
    found = set()
    for dots, name, names in RELATIVE_IMPORT.findall(path.read_text()):
        if inside_subpackage and len(dots) == 1:
            continue  # a sibling in the same subpackage
        found.update([name] if name else [n.strip(" ()") for n in names.split(",") if n.strip(" ()")])
    return {m for m in found if (PACKAGE / f"{m}.py").exists() or (PACKAGE / m).is_dir()}


def test_every_module_has_a_layer():
    files = list(PACKAGE.rglob("*.py"))
    assert files
    unknown = sorted({module_of(p) for p in files} - set(LAYER_OF))
    assert not unknown, f"give these modules a layer in tests/test_layers.py: {unknown}"


def test_no_module_imports_from_a_layer_above():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_of(path)
        for imported in imported_modules(path):
            if LAYER_OF[imported] > LAYER_OF[module]:
                upward.append(f"{path.relative_to(PACKAGE)} ({ORDER[LAYER_OF[module]]}) imports {imported} "
                              f"({ORDER[LAYER_OF[imported]]})")
    assert not upward, "imports from a layer above:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule itself: a model module importing the trainer is caught."""
    fake = PACKAGE / "network.py"
    text = fake.read_text() + "\nfrom .training import Trainer\n"
    imported = set()
    for dots, name, names in RELATIVE_IMPORT.findall(text):
        imported.update([name] if name else [n.strip(" ()") for n in names.split(",")])
    assert "training" in imported and LAYER_OF["training"] > LAYER_OF["network"]
