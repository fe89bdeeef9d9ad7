"""main.ipynb: generated from the package (never stale), its switches, and a run in an empty folder."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from transitive.io import save_network
from transitive.network import PlasticNetwork
from transitive.notebook import ConfigError, NotebookConfig

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "main.ipynb"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_net_active.dat"
SWITCHES = ["EVAL", "LINKEDLISTSEVAL", "LINKINGISSHAM", "HALFNOBARREDPAIRUNTILT18", "NBMASSEDTRIALS",
            "ONLYTWOLASTADJ", "FIXEDCUES", "RESETPWEVERYTRIAL", "MIXNETWORKS", "ALPHATYPE", "POSALPHA", "CLIPALPHA",
            "BATCHSIZE"]


def builder():
    spec = importlib.util.spec_from_file_location("build_notebook", ROOT / "tools" / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_library_cell_comes_first_collapsed_and_holds_every_module():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    library = nb.cells[0]
    assert library.cell_type == "code" and library.source.startswith("#@title")
    assert library.metadata["jupyter"]["source_hidden"] is True and library.metadata["cellView"] == "form"
    for module in sorted((ROOT / "transitive").glob("*.py")):
        assert repr(module.name) in library.source
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_configuration_cell_has_the_original_switches():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    config = next(cell for cell in nb.cells if cell.source.startswith("#@title Configuration"))
    assert nb.cells.index(config) <= 3
    for name in SWITCHES:
        assert re.search(rf"^{name} = ", config.source, re.M), name
    namespace = {}
    exec(config.source, namespace)
    assert NotebookConfig.from_namespace(namespace).validate() == NotebookConfig()


@pytest.mark.parametrize("switches, message", [
    (dict(LINKINGISSHAM=True), "LINKEDLISTSEVAL"),
    (dict(LINKEDLISTSEVAL=True, NBMASSEDTRIALS=5), "one at a time"),
    (dict(ONLYTWOLASTADJ=True, HALFNOBARREDPAIRUNTILT18=True), "one at a time"),
    (dict(EVAL=False, LINKEDLISTSEVAL=True), "only apply when EVAL"),
    (dict(EVAL=False, NBMASSEDTRIALS=3), "only apply when EVAL"),
    (dict(CLIPALPHA=True), "POSALPHA"),
    (dict(ALPHATYPE="diagonal"), "ALPHATYPE"),
    (dict(NBMASSEDTRIALS=-1), "NBMASSEDTRIALS"),
    (dict(BATCHSIZE=10), "BATCHSIZE"),
    (dict(BATCHSIZE="2000"), "integer"),
    (dict(EVAL=1), "True or False"),
])
def test_impossible_switches_give_a_clear_message(switches, message):
    with pytest.raises(ConfigError, match=message):
        NotebookConfig(**switches).validate()


def test_switches_select_one_experiment():
    assert NotebookConfig().experiment == "standard"
    assert "fig7" in NotebookConfig().groups() and "massed" in NotebookConfig().groups()
    assert NotebookConfig(LINKEDLISTSEVAL=True).groups() == ["linking"]
    assert NotebookConfig(LINKEDLISTSEVAL=True, LINKINGISSHAM=True).groups() == ["sham"]
    assert NotebookConfig(NBMASSEDTRIALS=4).groups() == ["massed"]
    assert NotebookConfig(ONLYTWOLASTADJ=True).groups() == ["onlytwolastadj"]
    NotebookConfig(EVAL=False, POSALPHA=True, CLIPALPHA=True, ALPHATYPE="neuron").validate()


def test_reset_plastic_switch_is_accepted_in_eval_only():
    NotebookConfig(RESETPWEVERYTRIAL=True).validate()
    with pytest.raises(ConfigError, match="RESETPWEVERYTRIAL"):
        NotebookConfig(EVAL=False, RESETPWEVERYTRIAL=True).validate()


def test_mixed_networks_take_the_output_weights_of_the_second_file(tmp_path):
    torch.manual_seed(0)
    first, second = PlasticNetwork(), PlasticNetwork()
    save_network(first, tmp_path / "net.dat")
    save_network(second, tmp_path / "net2.dat")
    config = NotebookConfig(NETFILE=str(tmp_path / "net.dat"), MIXNETWORKS=True,
                            MIXNETWORKSFILE=str(tmp_path / "net2.dat")).validate()
    net = config.load_network()
    assert torch.equal(net.h2o.weight, second.h2o.weight) and torch.equal(net.w, first.w)
    with pytest.raises(ConfigError, match="ALPHATYPE = 'synapse'"):
        NotebookConfig(NETFILE=str(tmp_path / "net.dat"), ALPHATYPE="neuron").load_network()


def test_training_configuration_follows_the_switches():
    config = NotebookConfig(EVAL=False, ALPHATYPE="scalar", POSALPHA=True, TRAINEPISODES=30000).validate()
    train = config.train_config()
    assert (train.regime, train.episodes, train.save_every, train.alpha_shape, train.positive_alpha) == \
        ("continual", 30000, 200, "scalar", True)


# ---------------------------------------------------------------------------------------------------------
def test_notebook_runs_alone_in_an_empty_folder(tmp_path):
    """Only main.ipynb and a net.dat (the published one when ../shared/reference exists, else a freshly
    initialised network) in an empty folder, 20 episodes: every cell runs and the figures are written."""
    nbclient = pytest.importorskip("nbclient")
    shutil.copy(NOTEBOOK, tmp_path / "main.ipynb")
    if REFERENCE.exists():
        shutil.copy(REFERENCE, tmp_path / "net.dat")
    else:
        torch.manual_seed(0)
        save_network(PlasticNetwork(), tmp_path / "net.dat")
    nb = nbformat.read(tmp_path / "main.ipynb", as_version=4)
    config = next(cell for cell in nb.cells if cell.source.startswith("#@title Configuration"))
    config.source, count = re.subn(r"^BATCHSIZE = 2000", "BATCHSIZE = 20", config.source, flags=re.M)
    assert count == 1
    # One thread: the many small operations of a 20-episode run are faster that way on a busy CPU.
    nb.cells[0].source += "\nimport torch\ntorch.set_num_threads(1)"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    figures = tmp_path / "figures"
    for name in ("SDE", "SDE_LINKEDLISTS", "corrchanges34", "adaptedFFcuereps_t18_allpairs", "massed", "toymodel"):
        assert (figures / f"{name}.png").stat().st_size > 1000
        assert (figures / f"{name}.pdf").stat().st_size > 1000
    assert (figures / "key_numbers.json").exists()
    assert (tmp_path / "transitive" / "GENERATED_BY_MAIN_IPYNB").exists()
    shown = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= 20
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
