"""main.ipynb: generated from the package (never stale), its switches, and a run in an empty folder that writes
the same key numbers as the `figures` command."""
from __future__ import annotations

import base64
import importlib.util
import json
import lzma
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import assert_pdf_whole, assert_png_drawn

from transitive.evaluation import keynumbers
from transitive.interface import notebook
from transitive.figures import panels
from transitive.model.io import ParameterFileError, save_network
from transitive.model.network import PlasticNetwork
from transitive.interface.notebook import ConfigError, NotebookConfig, StopNotebook, meta_train

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "main.ipynb"
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


def library_cell(nb):
    return nb.cells[builder().library_index(nb)]


def test_committed_notebook_is_what_the_generator_writes():
    reason = builder().stale_reason(NOTEBOOK)
    assert reason is None, f"{reason}: run python tools/build_notebook.py"


def test_generator_notices_a_changed_package(tmp_path):
    """A change of one packaged module (its text packed again) makes the notebook stale; packing the same files
    differently (e.g. another xz version) does not."""
    tools = builder()
    nb = tools.build()
    library = library_cell(nb)
    sources = tools.carried_sources(library.source)
    assert sources == tools.package_sources()
    packed = tools.PACKED_PACKAGE.search(library.source)[1]
    repacked = tools.literals(base64.b85encode(lzma.compress(notebook.unpack(tools.joined(packed)),
                                                             preset=1)).decode())  # the same bytes
    assert repacked != packed
    stale = tmp_path / "main.ipynb"
    library.source = library.source.replace(packed, repacked)
    nbformat.write(nb, stale)
    assert tools.stale_reason(stale) is None
    sources["figures/panels.py"] = sources["figures/panels.py"].replace("def ", "def  ", 1)
    library.source = library.source.replace(repacked, tools.literals(tools.packed_sources(sources)))
    nbformat.write(nb, stale)
    assert "library cell" in tools.stale_reason(stale)


def test_library_cell_holds_the_modules_the_notebook_uses_and_no_others():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    library = library_cell(nb)
    assert library.cell_type == "code" and library.source.startswith("#@title")
    assert library.metadata["jupyter"]["source_hidden"] is True and library.metadata["cellView"] == "form"
    held = set(builder().carried_sources(library.source))
    for needed in ("evaluation/runs.py", "figures/panels.py", "evaluation/stats.py", "figures/behaviour.py",
                   "interface/notebook.py", "training/trainer.py", "model/__init__.py", "engine/csrc/plastic_trial.cpp"):
        assert needed in held
    for unused in ("interface/cli.py", "scale/sweep.py", "scale/benchmark.py", "evaluation/classify.py", "__main__.py"):
        assert unused not in held
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_figure_cells_are_the_figure_functions():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for name, p in panels.FIGURES.items():
        cell = next(s for s in sources if s.startswith(f'if config.makes("{name}"):'))
        printing = f'\n    print(printed(runs, "{name}"))  # what the original prints here'
        assert cell.endswith(f'show(fig, "{name}")' + (printing if name in keynumbers.PRINTED else ""))
        assert 3 <= len(cell.splitlines()) <= 16, name
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
    "NETWORK": ("no-modulation", lambda c: c.train_config().network == "no-modulation"),
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
    (dict(SHOWALLSELECTS=False, ADDBARREDPAIR=[5, 6]), "ADDBARREDPAIR: expected an adjacent pair next to"),
    (dict(PROBAOLDDATA=2.0), "PROBAOLDDATA: expected a number from 0 to 1"),
    (dict(NBMASSEDTRIALS=500), "NBMASSEDTRIALS: expected a whole number from 1 to 100"),
    (dict(BARREDPAIR=3), "BARREDPAIR must be a list of two items"),
    (dict(BATCHSIZE=10), "BATCHSIZE"),
    (dict(BATCHSIZE="2000"), "whole number"),
    (dict(EVAL=1), "True or False"),
    (dict(NETWORK="my_rule.py:Missing"), "NETWORK: network file not found"),
])
def test_impossible_switches_give_one_clear_line(switches, message):
    with pytest.raises(ConfigError, match=message) as error:
        NotebookConfig(**switches).validate()
    assert len(error.value._render_traceback_()) == 1


def test_the_network_switch_loads_the_class_it_names(tmp_path):
    """NETWORK names the class for evaluation as for training; a file of another class is one line."""
    from transitive.model.variants import UnmodulatedNetwork
    from transitive.model.io import ParameterFileError, save_network
    save_network(UnmodulatedNetwork(), tmp_path / "net.dat")
    net = NotebookConfig(NETWORK="no-modulation", NETFILE=str(tmp_path / "net.dat")).validate().load_network()
    assert isinstance(net, UnmodulatedNetwork)
    with pytest.raises(ParameterFileError, match="modulation_constant"):
        NotebookConfig(NETFILE=str(tmp_path / "net.dat")).validate().load_network()


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
        self.members[0].episode = 2  # as if Ctrl-C had stopped the run at episode 2

    monkeypatch.setattr(training.Trainer, "train", stop_after_two)
    config = NotebookConfig(EVAL=False, TRAINEPISODES=5, NETFILE=str(tmp_path / "net.dat")).validate()
    with pytest.raises(StopNotebook, match="stopped at episode 2 of 5") as stopped:
        meta_train(config)
    assert len(stopped.value._render_traceback_()) == 1 and "resume" in str(stopped.value)


# ---------------------------------------------------------------------------------------------------------
# The files the notebook carries, and what a new user meets.
def test_packing_gives_back_the_same_bytes():
    for data in (b"", b"abc", bytes(range(256)) * 3 + b"x", (ROOT / "net_passive.dat").read_bytes()):
        text = notebook.pack(data)
        assert notebook.unpack(text) == data
        assert all(len(line) <= notebook.PACKED_LINE for line in text.splitlines())
        assert not set(text) & set("'\"\\")  # safe inside a triple-quoted string


def test_the_notebook_carries_our_networks_byte_for_byte():
    tools = builder()
    library = library_cell(nbformat.read(NOTEBOOK, as_version=4)).source
    carried = {name: (digest, notebook.unpack(text)) for name, (digest, text) in tools.carried_files(library).items()}
    assert sorted(carried) == sorted(notebook.BUNDLED) == sorted(tools.BUNDLED_FILES)
    for name, path in tools.BUNDLED_FILES.items():
        digest, data = carried[name]
        assert data == path.read_bytes() and digest == tools.sha256(data), name
    assert NOTEBOOK.stat().st_size < 1.5e6  # the networks packed: 0.96 MB of files, 0.84 MB of text


def test_check_fails_when_a_carried_network_is_stale(tmp_path, monkeypatch, capsys):
    tools = builder()
    retrained = bytearray((ROOT / "net_active.dat").read_bytes())
    retrained[-100] ^= 1  # one bit of the parameters
    (tmp_path / "net_active.dat").write_bytes(bytes(retrained))
    monkeypatch.setitem(tools.BUNDLED_FILES, "net_active.dat", tmp_path / "net_active.dat")
    assert "net_active.dat" in tools.stale_reason(NOTEBOOK) and "net_passive" not in tools.stale_reason(NOTEBOOK)
    monkeypatch.setattr(tools, "NOTEBOOK", NOTEBOOK)
    assert tools.main(["--check"]) == 1 and "net_active.dat" in capsys.readouterr().err


def test_check_fails_when_the_carried_text_is_damaged(tmp_path):
    tools = builder()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    library = library_cell(nb)
    source = library.source
    start = source.index("'net_passive.dat': ")
    k = source.index('\n    "', start) + 1 + 4 * (tools.WRAP + 1) + 10  # inside the 5th line of its packed text
    assert source[k] not in '"\n '
    library.source = source[:k] + ("0" if source[k] != "0" else "1") + source[k + 1:]
    nbformat.write(nb, tmp_path / "main.ipynb")
    assert "net_passive.dat" in tools.stale_reason(tmp_path / "main.ipynb")


def test_carried_files_are_written_only_where_missing(tmp_path):
    files = {"a.dat": (builder().sha256(b"new"), notebook.pack(b"new")), "b.dat": (builder().sha256(b"B"), notebook.pack(b"B"))}
    (tmp_path / "a.dat").write_bytes(b"the user's own")
    said = []
    assert notebook.write_bundled(files, tmp_path, say=said.append) == ["b.dat"]
    assert (tmp_path / "a.dat").read_bytes() == b"the user's own" and (tmp_path / "b.dat").read_bytes() == b"B"
    assert len(said) == 1 and "b.dat" in said[0]
    assert notebook.write_bundled(files, tmp_path, say=said.append) == [] and len(said) == 1
    with pytest.raises(StopNotebook, match="c.dat is damaged") as damaged:
        notebook.write_bundled({"c.dat": ("0" * 64, notebook.pack(b"C"))}, tmp_path)
    assert len(damaged.value._render_traceback_()) == 1 and not (tmp_path / "c.dat").exists()


def test_without_net_dat_our_active_network_is_analysed_and_it_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("net_active.dat", "net_passive.dat"):
        shutil.copy(ROOT / name, tmp_path / name)
    said = []
    assert NotebookConfig().network_file(say=said.append) == Path("net_active.dat")
    assert len(said) == 1 and 'NETFILE = "net_passive.dat"' in said[0] and "upload" in said[0] and "net.dat" in said[0]
    assert NotebookConfig(NETFILE="net_passive.dat").network_file(say=said.append) == Path("net_passive.dat")
    shutil.copy(ROOT / "net_passive.dat", tmp_path / "net.dat")  # the user's own
    assert NotebookConfig().network_file(say=said.append) == Path("net.dat") and len(said) == 1
    net = NotebookConfig().load_network()
    assert torch.equal(net.w, torch.load(ROOT / "net_passive.dat")["w"])


def test_a_missing_file_gives_the_command_lines_one_line(tmp_path, monkeypatch, capsys):
    from transitive.interface.cli import main
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterFileError) as missing:
        NotebookConfig(NETFILE="mine.dat").validate().load_network()
    assert missing.value._render_traceback_() == ["ParameterFileError: parameter file not found: mine.dat"]
    assert main(["figures", "mine.dat", "--out", "out"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing.value}"
    (tmp_path / "net.dat").write_bytes((ROOT / "net_active.dat").read_bytes()[:5000])  # an upload cut short
    with pytest.raises(ParameterFileError) as unreadable:
        NotebookConfig().validate().load_network()
    shown = unreadable.value._render_traceback_()
    assert len(shown) == 1 and shown[0].startswith("ParameterFileError: cannot read parameter file net.dat")


def test_device_switch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert NotebookConfig().validate().device() == "cpu" and NotebookConfig(DEVICE="cpu").device() == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available") as asked:
        NotebookConfig(DEVICE="cuda").validate()
    assert len(asked.value._render_traceback_()) == 1
    with pytest.raises(ConfigError, match="DEVICE must be"):
        NotebookConfig(DEVICE="gpu").validate()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert NotebookConfig().validate().device() == "cuda" and NotebookConfig(DEVICE="cpu").device() == "cpu"
    assert NotebookConfig(DEVICE="cuda:1").validate().device() == "cuda:1"


def test_training_in_a_drive_folder_resumes_from_there(tmp_path, monkeypatch):
    """DRIVEFOLDER: NETFILE, its checkpoint and log live in a folder (here a subfolder) of the mounted Drive,
    and a new runtime resumes from them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(notebook, "DRIVE_MOUNT", str(tmp_path / "drive"))
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    folder = tmp_path / "drive" / "MyDrive" / "runs" / "seed 0"
    said = []
    first = meta_train(NotebookConfig(EVAL=False, TRAINEPISODES=1, DRIVEFOLDER="runs/seed 0").validate(),
                       say=said.append)
    assert first.finished and {"net.dat", "net.ckpt", "net.csv"} <= {p.name for p in folder.iterdir()}
    assert f"meta-training into {folder / 'net.dat'}" in said[0] and "resuming" not in said[0]
    assert not (tmp_path / "net.dat").exists()
    second = meta_train(NotebookConfig(EVAL=False, TRAINEPISODES=2, DRIVEFOLDER="runs/seed 0").validate(),
                        say=said.append)
    assert "resuming at episode 1" in said[-2] and second.episode == 2 and second.episodes_run == 1
    evaluated = NotebookConfig(DRIVEFOLDER="runs/seed 0")
    assert evaluated.network_file() == folder / "net.dat"
    assert torch.equal(evaluated.load_network().w, second.net.w.detach())
    assert evaluated.runs(evaluated.load_network(), log=None).curves == {"this run": folder / "net.csv"}


def test_a_drive_folder_outside_colab_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "DRIVE_MOUNT", str(tmp_path / "no drive"))
    monkeypatch.setitem(sys.modules, "google.colab", None)  # not in Colab: importing it fails
    with pytest.raises(ConfigError, match="Colab") as outside:
        NotebookConfig(DRIVEFOLDER="transitive").network_file()
    assert len(outside.value._render_traceback_()) == 1


def test_meta_training_says_where_it_saves_and_an_interruption_is_one_line(tmp_path, monkeypatch):
    from transitive import training

    def interrupted(self):
        self.members[0].episode = 3
        raise KeyboardInterrupt  # a second Ctrl-C: the training stops at once

    monkeypatch.setattr(training.Trainer, "train", interrupted)
    said = []
    config = NotebookConfig(EVAL=False, TRAINEPISODES=5, NETFILE=str(tmp_path / "sub" / "net.dat")).validate()
    with pytest.raises(StopNotebook, match="interrupted at episode 3 of 5") as stopped:
        meta_train(config, say=said.append)
    assert len(stopped.value._render_traceback_()) == 1 and "resume" in str(stopped.value)
    assert said == [f"meta-training into {tmp_path / 'sub' / 'net.dat'} (net.ckpt and net.csv beside it, saved every "
                    "200 episodes)"]


# ---------------------------------------------------------------------------------------------------------
# main.ipynb executed, alone in an empty folder, at 20 episodes (one thread: the many small operations of a
# 20-episode run are faster that way on a busy CPU).
def prepared(folder: Path, netfile: str | None = None, keep=None):
    """main.ipynb copied alone into `folder`, set to 20 episodes (and NETFILE); `keep(source)` picks the code
    cells after the set-up cell to keep."""
    shutil.copy(NOTEBOOK, folder / "main.ipynb")
    nb = nbformat.read(folder / "main.ipynb", as_version=4)
    config = config_cell(nb)
    config.source, count = re.subn(r"^BATCHSIZE = 2000", "BATCHSIZE = 20", config.source, flags=re.M)
    assert count == 1
    if netfile:
        config.source, count = re.subn(r'^NETFILE = "net.dat"', f'NETFILE = "{netfile}"', config.source, flags=re.M)
        assert count == 1
    library_cell(nb).source += "\nimport torch\ntorch.set_num_threads(1)"
    if keep:
        setup = setup_index(nb)
        nb.cells = nb.cells[:setup + 1] + [c for c in nb.cells[setup + 1:] if c.cell_type == "code" and keep(c.source)]
    return nb


def execute(nb, folder: Path):
    nbclient = pytest.importorskip("nbclient")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return nb


def setup_index(nb) -> int:
    return next(k for k, cell in enumerate(nb.cells) if k > 0 and "config = NotebookConfig" in cell.source)


def outputs(nb, kind: str) -> list:
    return [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == kind]


def printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


@pytest.fixture(scope="module")
def run_all(tmp_path_factory):
    """What a new Colab user gets: main.ipynb alone in an empty folder, no net.dat, "Run all"."""
    folder = tmp_path_factory.mktemp("colab")
    return folder, execute(prepared(folder), folder)


def test_run_all_with_nothing_uploaded_makes_the_figures_of_our_active_network(run_all):
    folder, nb = run_all
    assert not outputs(nb, "error")
    for name in ("net_active.dat", "net_passive.dat"):
        assert (folder / name).read_bytes() == (ROOT / name).read_bytes()
    note = [line for line in printed(nb.cells[setup_index(nb)]).splitlines() if "not found" in line]
    assert len(note) == 1 and "analysing net_active.dat" in note[0] and 'NETFILE = "net_passive.dat"' in note[0]
    figures = folder / "figures"
    for name in panels.names_for("standard"):  # every figure, the learning curve from the carried log too
        assert_png_drawn(figures / f"{name}.png")
        assert_pdf_whole(figures / f"{name}.pdf")
    assert (folder / "transitive" / "GENERATED_BY_MAIN_IPYNB").exists()
    assert len([o for o in outputs(nb, "display_data") if "image/png" in o["data"]]) >= 20
    numbers = json.loads((figures / "key_numbers.json").read_text())
    assert numbers["settings"]["network"] == "net_active.dat"
    assert "fig6_first_shown_trial19" in numbers and "recoded" in numbers


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_the_executed_notebook_survives_a_save(run_all, tmp_path):
    """Saved and opened again, the run notebook shows no widget (a widget's model is gone once the kernel is:
    JupyterLab then shows "Error displaying widget"); its progress bars are text, and the key-numbers cell shows
    the headline numbers (about 20 rows) and one line pointing to the full table."""
    folder, nb = run_all
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    reopened = nbformat.read(saved, as_version=4)
    nbformat.validate(reopened)
    every = [o for cell in reopened.cells for o in cell.get("outputs", [])]
    assert not [o for o in every if WIDGET_VIEW in o.get("data", {})]
    assert "widgets" not in reopened.metadata  # no saved widget state either
    streams = [o for o in every if o.get("output_type") == "stream"]
    bars = "".join(o["text"] for o in streams if o.get("name") == "stdout")
    assert "chunk" in bars and "recoded fit 1" in bars  # the evaluation's progress bars, as text
    # ... on standard output, ended where they stopped: no empty (pink) standard-error box where a bar was
    assert [o["text"] for o in streams if o.get("name") == "stderr" and not shown(o["text"]).strip()] == []
    assert all(shown(o["text"]).strip() for o in streams)  # no empty box of standard output either
    cell = next(c for c in reopened.cells if "write_key_numbers(" in c.source)
    tables = [o["data"]["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {})]
    assert len(tables) == 1 and 12 <= tables[0].count("\n| ") <= 22 and "# " not in tables[0]
    assert "standard test accuracy" in tables[0] and "published" in tables[0]
    pointer = printed(cell).strip().splitlines()
    assert len(pointer) == 1 and pointer[0].startswith("every key number: ") and "key_numbers.md" in pointer[0]
    full = (folder / pointer[0].split(": ", 1)[1].split(" (")[0]).read_text()
    assert full.count("\n| ") > 200 and "## Headline numbers" in full and "## Every number" in full


def shown(text: str) -> str:
    """A stream's text as Jupyter shows it: on each line, what the last carriage return left."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def test_the_notebook_writes_the_key_numbers_of_the_figures_command(run_all):
    folder, _ = run_all
    # Run from a folder without the notebook's copy of the package (./transitive, which holds no command
    # line), so that the installed package answers.
    elsewhere = folder / "command"
    elsewhere.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "transitive", "figures", str(folder / "net_active.dat"), "--batch", "20",
               "--seed", "0", "--out", str(folder / "cli"), "--threads", "1", "--device", "cpu", "--quiet"]
    subprocess.run(command, cwd=elsewhere, check=True, capture_output=True)
    from_notebook = json.loads((folder / "figures" / "key_numbers.json").read_text())
    assert from_notebook == json.loads((folder / "cli" / "key_numbers.json").read_text())


def test_one_word_swaps_to_our_passive_network(run_all, tmp_path):
    """NETFILE = "net_passive.dat": the passive network is analysed (here only Fig. 2a and the key numbers)."""
    nb = execute(prepared(tmp_path, "net_passive.dat", keep=lambda s: 'makes("SDE")' in s or "write_key_numbers" in s),
                 tmp_path)
    assert not outputs(nb, "error") and "not found" not in printed(nb.cells[setup_index(nb)])
    assert (tmp_path / "figures" / "SDE.png").exists()
    passive = json.loads((tmp_path / "figures" / "key_numbers.json").read_text())
    active = json.loads((run_all[0] / "figures" / "key_numbers.json").read_text())
    assert passive["settings"]["network"] == "net_passive.dat"
    assert passive["standard"]["test_accuracy"] != active["standard"]["test_accuracy"]
    # The passive network's m(t) is zero at the delay step; the active one's is large after an error.
    assert abs(passive["standard"]["modulation"]["delay"]["mean_unrewarded"]) < 0.05
    assert active["standard"]["modulation"]["delay"]["mean_unrewarded"] > 1


@pytest.mark.parametrize("switch, mode", [("NBMASSEDTRIALS = 3", "massed"), ("LINKEDLISTSEVAL = True", "linking")])
def test_run_all_in_an_experiment_mode_makes_the_figures_of_that_mode(tmp_path, switch, mode):
    """With an experiment's switch the notebook makes, from that experiment's run, the figures the original
    makes in that mode (the registry's list), and prints the original's numbers under them."""
    nb = prepared(tmp_path)
    config = config_cell(nb)
    name = switch.split(" = ")[0]
    config.source, count = re.subn(rf"^{name} = .*$", switch, config.source, flags=re.M)
    assert count == 1
    execute(nb, tmp_path)
    assert not outputs(nb, "error")
    made = {p.stem for p in (tmp_path / "figures").glob("*.png")}
    assert made == set(panels.names_for(mode))
    text = "".join(printed(cell) for cell in nb.cells)
    assert "median_by_pair.AB" in text and f"not made in the '{mode}' experiment" in text


def test_a_missing_user_file_stops_run_all_with_one_line(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = prepared(tmp_path, "mine.dat")
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        execute(nb, tmp_path)
    errors = outputs(nb, "error")
    assert len(errors) == 1 and errors[0]["traceback"] == ["ParameterFileError: parameter file not found: mine.dat"]
    setup = setup_index(nb)
    assert errors[0] in nb.cells[setup].outputs
    assert all(cell.get("execution_count") is None for cell in nb.cells[setup + 1:] if cell.cell_type == "code")


def test_every_switch_declares_the_setting_it_sets():
    """Each switch declares the field of Settings / TrainConfig it sets (checked by that field's declaration),
    feeds a value derived from several switches (notebook.DERIVED), or acts in the notebook itself."""
    from dataclasses import fields as dataclass_fields
    from transitive.evaluation.runs import Settings
    from transitive.training.config import TrainConfig
    settings_fields = {f.name for f in dataclass_fields(Settings)}
    train_fields = {f.name for f in dataclass_fields(TrainConfig)}
    in_notebook = {"EVAL", "NETFILE", "DRIVEFOLDER", "FIGURES", "DEVICE", "MIXNETWORKS", "MIXNETWORKSFILE",
                   "LINKEDLISTSEVAL", "LINKINGISSHAM", "NBMASSEDTRIALS", "ONLYTWOLASTADJ", "VECTALPHA", "SCALARALPHA",
                   "SHOWALLSELECTS", "ADDBARREDPAIR"}
    for f in dataclass_fields(NotebookConfig):
        evaluation, training = f.metadata["evaluation"], f.metadata["training"]
        assert evaluation is None or evaluation in settings_fields, f.name
        assert training is None or training in train_fields, f.name
        assert bool(evaluation or training) != (f.name in in_notebook), f.name
    for name, (evaluation, training, switch) in notebook.DERIVED.items():
        assert isinstance(getattr(NotebookConfig, name), property) and switch in in_notebook
        assert (evaluation or training) and (evaluation is None or evaluation in settings_fields)
    changed = NotebookConfig(SHOWALLSELECTS=False, ADDBARREDPAIR=[4, 5], NBMASSEDTRIALS=0, SEED=7)
    assert changed.settings().add_barred_pair == (4, 5) and changed.settings().massed_trials == 10
    assert changed.settings().seed == changed.train_config().seed == 7
