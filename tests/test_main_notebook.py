"""main.ipynb: generated from the package (never stale), its switches, and a run in an empty folder that writes
the same key numbers as the `figures` command."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
import torch

from transitive import panels
from transitive.io import save_network
from transitive.network import PlasticNetwork
from transitive.notebook import ConfigError, NotebookConfig, StopNotebook, meta_train

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "main.ipynb"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_net_active.dat"
# The original notebook's switches (and the original's parameters the notebook exposes).
ORIGINAL_SWITCHES = ["EVAL", "LINKEDLISTSEVAL", "LINKINGISSHAM", "SHOWFIRSTHALFFIRST", "NBMASSEDTRIALS", "MASSEDPAIR",
                     "ONLYTWOLASTADJ", "HALFNOBARREDPAIRUNTILT18", "BARREDPAIR", "SHOWALLSELECTS", "ADDBARREDPAIR", "FIXEDCUES", "RESETPWEVERYTRIAL",
                     "RESETHIDDENEVERYTRIAL", "RESETETEVERYTRIAL", "MIXNETWORKS", "VECTALPHA", "SCALARALPHA",
                     "POSALPHA", "POSALPHAINITONLY", "PROBAOLDDATA", "NBEPSBWRESETS", "TRAINEPISODES", "BATCHSIZE"]


def builder():
    spec = importlib.util.spec_from_file_location("build_notebook", ROOT / "tools" / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_cell(nb):
    return next(cell for cell in nb.cells if cell.source.startswith("#@title Configuration"))


def test_committed_notebook_is_what_the_generator_writes():
    reason = builder().stale_reason(NOTEBOOK)
    assert reason is None, f"{reason}: run python tools/build_notebook.py"


def test_generator_notices_a_changed_package(tmp_path):
    tools = builder()
    nb = tools.build()
    nb.cells[0].source = nb.cells[0].source.replace("def ", "def  ", 1)
    stale = tmp_path / "main.ipynb"
    nbformat.write(nb, stale)
    assert "library cell" in tools.stale_reason(stale)


def test_library_cell_holds_the_modules_the_notebook_uses_and_no_others():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    library = nb.cells[0]
    assert library.cell_type == "code" and library.source.startswith("#@title")
    assert library.metadata["jupyter"]["source_hidden"] is True and library.metadata["cellView"] == "form"
    held = set(re.findall(r"^    '([\w/.]+)': ", library.source, re.M))
    for needed in ("runs.py", "panels.py", "stats.py", "figures/behaviour.py", "notebook.py", "training.py", "csrc/plastic_trial.cpp"):
        assert needed in held
    for unused in ("cli.py", "sweep.py", "benchmark.py", "classify.py", "__main__.py"):
        assert unused not in held
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_figure_cells_are_the_figure_functions():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for name, p in panels.FIGURES.items():
        cell = next(s for s in sources if s.startswith(f'if config.makes("{name}"):'))
        assert cell.endswith(f'show(fig, "{name}")')
        assert 3 <= len(cell.splitlines()) <= 15, name
    sde = next(s for s in sources if s.startswith('if config.makes("SDE")'))
    assert "stats.pair_accuracy_splits(run.test_pairs, run.test_correct)" in sde


def test_figure_cells_use_only_names_the_set_up_cell_defines():
    """A figure cell must run in the notebook, where only the set-up cell's names exist (a name missing there
    fails only when the line runs, e.g. with a learning curve present)."""
    import ast
    import builtins
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(cell.source for cell in nb.cells[1:] if "config = NotebookConfig.from_namespace" in cell.source)
    defined = set(dir(builtins)) | {f.name for f in fields(NotebookConfig)}
    for node in ast.walk(ast.parse(setup)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.FunctionDef):
            defined.add(node.name)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("if config.makes("):
            tree = ast.parse(cell.source)
            stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            stored |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            assert used <= defined | stored, (cell.source.splitlines()[0], used - defined - stored)


def test_configuration_cell_has_every_original_switch():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    config = config_cell(nb)
    assert nb.cells.index(config) <= 3
    lines = config.source.splitlines()
    for name in ORIGINAL_SWITCHES:
        assert re.search(rf"^{name} = ", config.source, re.M), name
    for k, line in enumerate(lines):  # every switch under one line saying what it does
        if re.match(r"^[A-Z0-9]+ = ", line):
            assert lines[k - 1].startswith("# ") and len(lines[k - 1]) > 12, line
    namespace = {}
    exec(config.source, namespace)
    assert NotebookConfig.from_namespace(namespace).validate() == NotebookConfig()
    assert {f.name for f in fields(NotebookConfig)} <= set(namespace)


# Each switch, a value other than its default, and what it must change.
SWITCH_EFFECTS = {
    "EVAL": (False, lambda c: c.EVAL is False),
    "LINKEDLISTSEVAL": (True, lambda c: c.settings().experiment == "linking"),
    "LINKINGISSHAM": (True, lambda c: c.settings().experiment == "sham"),
    "SHOWFIRSTHALFFIRST": (False, lambda c: c.settings().first_half_first is False),
    "NBMASSEDTRIALS": (4, lambda c: (c.settings().experiment, c.settings().massed_trials) == ("massed", 4)),
    "MASSEDPAIR": ([2, 3], lambda c: c.settings().massed_pair == (2, 3)),
    "ONLYTWOLASTADJ": (True, lambda c: c.settings().experiment == "onlytwolastadj"),
    "HALFNOBARREDPAIRUNTILT18": (True, lambda c: c.settings().withhold_in_standard),
    "BARREDPAIR": ([4, 5], lambda c: c.settings().barred_pair == (4, 5)),
    "SHOWALLSELECTS": (False, lambda c: c.settings().add_barred_pair == (2, 3) and c.makes("corrchanges34_add23")),
    "ADDBARREDPAIR": ([4, 5], lambda c: c.settings().add_barred_pair == (4, 5)),
    "FIXEDCUES": (True, lambda c: c.settings().fixed_items),
    "RESETPWEVERYTRIAL": (True, lambda c: c.settings().reset_plastic_every_trial),
    "RESETHIDDENEVERYTRIAL": (False, lambda c: not c.settings().reset_rates_every_trial
                              and not c.train_config().reset_rates_every_trial),
    "RESETETEVERYTRIAL": (False, lambda c: not c.settings().reset_trace_every_trial
                          and not c.train_config().reset_trace_every_trial),
    "MIXNETWORKS": (True, lambda c: c.MIXNETWORKS),
    "VECTALPHA": (True, lambda c: c.train_config().alpha_shape == "neuron"),
    "SCALARALPHA": (True, lambda c: c.train_config().alpha_shape == "scalar"),
    "POSALPHA": (True, lambda c: c.train_config().positive_alpha and not c.train_config().positive_alpha_init_only),
    "POSALPHAINITONLY": (True, lambda c: c.train_config().positive_alpha_init_only),
    "FROZENINPUTWEIGHTS": (True, lambda c: c.train_config().frozen_input),
    "PROBAOLDDATA": (0.5, lambda c: c.train_config().old_items_probability == 0.5),
    "NBEPSBWRESETS": (1, lambda c: c.train_config().resets_every == 1),
    "TRAINEPISODES": (50, lambda c: c.train_config().episodes == 50),
    "BATCHSIZE": (100, lambda c: c.settings().batch == 100),
    "SEED": (3, lambda c: c.settings().seed == 3 and c.train_config().seed == 3),
}


@pytest.mark.parametrize("name", sorted(SWITCH_EFFECTS))
def test_every_switch_changes_behaviour(name):
    value, effect = SWITCH_EFFECTS[name]
    extra = {"LINKINGISSHAM": {"LINKEDLISTSEVAL": True}, "ADDBARREDPAIR": {"SHOWALLSELECTS": False}}.get(name, {})
    config = NotebookConfig(**{name: value, **extra}).validate()
    assert effect(config)
    assert not effect(NotebookConfig(**extra))


def test_every_original_switch_has_a_tested_effect():
    assert set(ORIGINAL_SWITCHES) - {"MIXNETWORKSFILE"} <= set(SWITCH_EFFECTS)


@pytest.mark.parametrize("switches, message", [
    (dict(LINKINGISSHAM=True), "LINKEDLISTSEVAL"),
    (dict(LINKEDLISTSEVAL=True, NBMASSEDTRIALS=5), "one at a time"),
    (dict(ONLYTWOLASTADJ=True, HALFNOBARREDPAIRUNTILT18=True), "one at a time"),
    (dict(HALFNOBARREDPAIRUNTILT18=True, FIXEDCUES=True), "FIXEDCUES"),
    (dict(EVAL=False, LINKEDLISTSEVAL=True), "only apply when EVAL"),
    (dict(EVAL=False, NBMASSEDTRIALS=3), "only apply when EVAL"),
    (dict(VECTALPHA=True, SCALARALPHA=True), "at most one"),
    (dict(POSALPHA=True, POSALPHAINITONLY=True), "at most one"),
    (dict(NBMASSEDTRIALS=-1), "NBMASSEDTRIALS"),
    (dict(BARREDPAIR=[3, 3]), "BARREDPAIR"),
    (dict(MASSEDPAIR=[3, 9]), "MASSEDPAIR"),
    (dict(BARREDPAIR=[2, 4]), "adjacent"),
    (dict(SHOWALLSELECTS=False, ADDBARREDPAIR=[5, 6]), "next to BARREDPAIR"),
    (dict(PROBAOLDDATA=2.0), "probability"),
    (dict(BATCHSIZE=10), "BATCHSIZE"),
    (dict(BATCHSIZE="2000"), "whole number"),
    (dict(EVAL=1), "True or False"),
])
def test_impossible_switches_give_one_clear_line(switches, message):
    with pytest.raises(ConfigError, match=message) as error:
        NotebookConfig(**switches).validate()
    assert len(error.value._render_traceback_()) == 1


def test_mixed_networks_take_the_output_weights_of_the_second_file(tmp_path):
    torch.manual_seed(0)
    first, second = PlasticNetwork(), PlasticNetwork()
    save_network(first, tmp_path / "net.dat")
    save_network(second, tmp_path / "netB.dat")
    config = NotebookConfig(NETFILE=str(tmp_path / "net.dat"), MIXNETWORKS=True,
                            MIXNETWORKSFILE=str(tmp_path / "netB.dat")).validate()
    net = config.load_network()
    assert torch.equal(net.h2o.weight, second.h2o.weight) and torch.equal(net.w, first.w)
    with pytest.raises(ConfigError, match="VECTALPHA = True"):
        save_network(PlasticNetwork(alpha_shape="neuron"), tmp_path / "vect.dat")
        NotebookConfig(NETFILE=str(tmp_path / "vect.dat")).load_network()


def test_meta_training_from_the_notebook_writes_a_network_it_can_load(tmp_path):
    config = NotebookConfig(EVAL=False, TRAINEPISODES=2, NETFILE=str(tmp_path / "net.dat"), POSALPHA=True).validate()
    trainer = meta_train(config)
    assert trainer.finished and trainer.config.regime == "continual" and trainer.config.positive_alpha
    loaded = NotebookConfig(NETFILE=config.NETFILE).validate().load_network()
    assert torch.equal(loaded.w, trainer.net.w.detach())
    assert (tmp_path / "net.ckpt").exists() and (tmp_path / "net.csv").exists()


def test_an_interrupted_meta_training_stops_the_notebook_with_one_line(tmp_path, monkeypatch):
    from transitive import training

    def stop_after_two(self):
        self.episode = 2  # as if Ctrl-C had stopped the run at episode 2

    monkeypatch.setattr(training.Trainer, "train", stop_after_two)
    config = NotebookConfig(EVAL=False, TRAINEPISODES=5, NETFILE=str(tmp_path / "net.dat")).validate()
    with pytest.raises(StopNotebook, match="stopped at episode 2 of 5") as stopped:
        meta_train(config)
    assert len(stopped.value._render_traceback_()) == 1 and "resume" in str(stopped.value)


# ---------------------------------------------------------------------------------------------------------
def test_notebook_runs_alone_and_writes_the_key_numbers_of_the_figures_command(tmp_path):
    """Only main.ipynb and a net.dat (the published one when ../shared/reference exists, else a freshly
    initialised network) in an empty folder, 20 episodes: every cell runs, the figures are written, and
    `transitive figures net.dat --batch 20 --seed 0` writes the same key_numbers.json."""
    nbclient = pytest.importorskip("nbclient")
    shutil.copy(NOTEBOOK, tmp_path / "main.ipynb")
    if REFERENCE.exists():
        shutil.copy(REFERENCE, tmp_path / "net.dat")
    else:
        torch.manual_seed(0)
        save_network(PlasticNetwork(), tmp_path / "net.dat")
    shutil.copy(ROOT / "runs" / "active" / "net_active.csv", tmp_path / "net.csv")  # a training log beside it
    nb = nbformat.read(tmp_path / "main.ipynb", as_version=4)
    config = config_cell(nb)
    config.source, count = re.subn(r"^BATCHSIZE = 2000", "BATCHSIZE = 20", config.source, flags=re.M)
    assert count == 1
    # One thread: the many small operations of a 20-episode run are faster that way on a busy CPU.
    nb.cells[0].source += "\nimport torch\ntorch.set_num_threads(1)"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    figures = tmp_path / "figures"
    for name in panels.names_for("standard"):
        assert (figures / f"{name}.png").stat().st_size > 1000, name
        assert (figures / f"{name}.pdf").stat().st_size > 1000, name
    assert (tmp_path / "transitive" / "GENERATED_BY_MAIN_IPYNB").exists()
    shown = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= 20

    command = [sys.executable, "-m", "transitive", "figures", "net.dat", "--batch", "20", "--seed", "0",
               "--out", "cli", "--threads", "1", "--device", "cpu"]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    from_notebook = json.loads((figures / "key_numbers.json").read_text())
    from_command = json.loads((tmp_path / "cli" / "key_numbers.json").read_text())
    assert from_notebook == from_command
    assert "fig6_first_shown_trial19" in from_notebook and "recoded" in from_notebook
