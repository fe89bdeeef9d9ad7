"""simple.ipynb: its shape, its imports, its equivalence with the package, and the files it writes.

The notebook's single code cell is executed as a module under another name than "__main__", so its
definitions are available and its 30,000-episode training loop does not start.
"""
from __future__ import annotations

import ast
import os
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import reference_skip_reason
from tolerance import assert_float32_close

from transitive.engine.episode import run_episode
from transitive.model.io import load_network
from transitive.training.loss import a2c_loss
from transitive.model.network import PlasticNetwork
from transitive.model.task import draw_items, present, standard_schedule

NOTEBOOK = Path(__file__).resolve().parents[1] / "simple.ipynb"
REFERENCE_NET = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper_net_active.dat"
PARAMETER_KEYS = {"w", "alpha", "etaet", "DAmult", "i2h.weight", "i2h.bias", "h2DA.weight", "h2DA.bias",
                  "h2o.weight", "h2o.bias", "h2v.weight", "h2v.bias"}


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def code_source() -> str:
    return [cell for cell in read_notebook().cells if cell.cell_type == "code"][0].source



@pytest.fixture(scope="module")
def notebook():
    """The code cell run as a module named 'simple_notebook' (so `if __name__ == "__main__"` is false)."""
    module = types.ModuleType("simple_notebook")
    sys.modules[module.__name__] = module
    try:
        exec(compile(code_source(), str(NOTEBOOK), "exec"), module.__dict__)
        yield module
    finally:
        sys.modules.pop(module.__name__, None)


# ---------------------------------------------------------------------------------------------------------
def test_notebook_is_one_markdown_cell_then_one_code_cell():
    nb = read_notebook()
    nbformat.validate(nb)
    assert [cell.cell_type for cell in nb.cells] == ["markdown", "code"]
    text = nb.cells[0].source
    for words in ("Colab", "30,000", "net.dat", "200", "EVAL", "python -m transitive eval net.dat"):
        assert words in text
    assert not nb.cells[1].get("outputs")


def test_code_cell_imports_only_torch_numpy_and_the_standard_library():
    tree = ast.parse(code_source())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            imported.add(node.module.split(".")[0])
    assert "transitive" not in imported
    allowed = {"torch", "numpy"} | set(sys.stdlib_module_names)
    assert imported <= allowed, f"not allowed: {sorted(imported - allowed)}"
    # the training loop runs only when the cell is the main program (Jupyter, Colab)
    last = tree.body[-1]
    assert isinstance(last, ast.If) and "__main__" in ast.unparse(last.test)


def test_parameters_are_those_of_the_spec(notebook):
    nb = notebook
    assert (nb.HIDDEN_SIZE, nb.CUE_SIZE, nb.INPUT_SIZE, nb.NB_ACTIONS) == (200, 15, 37, 2)
    assert (nb.MIN_ITEMS, nb.MAX_ITEMS, nb.MAX_ITEM_AGREEMENT) == (4, 8, 0.66)
    assert (nb.NB_LEARNING_TRIALS, nb.NB_TEST_TRIALS, nb.STEPS_PER_TRIAL, nb.EPISODE_LENGTH) == (20, 10, 4, 120)
    assert nb.NB_BLANK_STEPS == 2 and nb.PLASTIC_CLIP == 50.0
    assert (nb.BATCH_SIZE, nb.DISCOUNT, nb.LATE_TRIALS, nb.LATE_MULTIPLIER) == (32, 0.9, 10, 3.0)
    assert (nb.ENTROPY_WEIGHT, nb.VALUE_WEIGHT, nb.PLASTIC_L2) == (0.1, 0.1, 1e-4)
    assert (nb.LEARNING_RATE, nb.ADAM_EPS, nb.GRAD_CLIP, nb.BURN_IN_EPISODES) == (1e-4, 1e-6, 2.0, 101)
    assert (nb.NB_EPISODES, nb.LOG_EVERY, nb.SAVE_EVERY, nb.SAVE_PATH) == (30000, 10, 200, "net.dat")


def test_network_has_the_parameter_file_layout(notebook):
    torch.manual_seed(0)
    state = notebook.PlasticNetwork().state_dict()
    reference = PlasticNetwork().state_dict()
    assert set(state) == PARAMETER_KEYS
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    assert all(v.dtype == torch.float32 for v in state.values())
    assert state["etaet"].item() == pytest.approx(0.7) and state["DAmult"].item() == 1.0
    assert state["alpha"].abs().max() <= 0.01 and state["w"].abs().max() <= 200 ** -0.5


def test_task_draws_follow_the_rules(notebook):
    torch.manual_seed(1)
    items = notebook.draw_items(16, 8)
    assert items.shape == (16, 8, 15) and set(items.unique().tolist()) == {-1.0, 1.0}
    agreement = (items.unsqueeze(2) == items.unsqueeze(1)).float().mean(-1)  # (batch, 8, 8)
    off_diagonal = ~torch.eye(8, dtype=torch.bool)
    assert agreement[:, off_diagonal].max() <= 0.66
    pairs = notebook.draw_pairs(200, 5)
    assert pairs.shape == (200, 30, 2)
    learning, test = pairs[:, :20], pairs[:, 20:]
    assert ((learning[..., 0] - learning[..., 1]).abs() == 1).all()
    assert (test[..., 0] != test[..., 1]).all() and pairs.min() == 0 and pairs.max() == 4
    assert (test[..., 0] - test[..., 1]).abs().max() > 1  # non-adjacent pairs do occur
    assert 0.4 < notebook.correct_actions(pairs).float().mean() < 0.6


def _gradients(net):
    return {name: p.grad.detach().clone() for name, p in net.named_parameters()}


def _compare_with_package(notebook, state_dict, batch=4, nbcues=8, seed=0):
    """Same parameters, items, pairs and actions in the notebook and in the package: returns
    (notebook loss, package loss, notebook grads, package grads, notebook record, package record)."""
    nb_net = notebook.PlasticNetwork()
    nb_net.load_state_dict(state_dict)
    package_net = PlasticNetwork()
    package_net.load_state_dict(nb_net.state_dict())  # the file format: the notebook's keys load as they are

    torch.manual_seed(seed)
    items = draw_items(batch, nbcues)
    pairs = standard_schedule(batch, nbcues)
    record = run_episode(package_net, present(items, pairs))
    package_loss = a2c_loss(record)
    package_loss.backward()

    nb_record = notebook.run_episode(nb_net, items, pairs, forced_actions=record.actions)
    nb_loss = notebook.a2c_loss(nb_record)
    nb_loss.backward()
    return nb_loss, package_loss, _gradients(nb_net), _gradients(package_net), nb_record, record


def _assert_equivalent(notebook, state_dict, loss_tolerance, gradient_tolerance):
    nb_loss, package_loss, nb_grads, package_grads, nb_record, record = _compare_with_package(notebook, state_dict)
    assert torch.equal(nb_record["actions"], record.actions)
    assert torch.equal(nb_record["rewards"], record.rewards)
    torch.testing.assert_close(nb_record["inputs"], record.inputs, rtol=0, atol=1e-7)
    torch.testing.assert_close(nb_record["values"], record.values, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(nb_record["final_plastic"], record.final_state.plastic_weights, rtol=1e-4, atol=1e-4)
    assert abs(nb_loss.item() - package_loss.item()) <= loss_tolerance * max(1.0, abs(package_loss.item()))
    assert set(nb_grads) == set(package_grads) == PARAMETER_KEYS
    for name in PARAMETER_KEYS:
        scale = package_grads[name].abs().max().item()
        difference = (nb_grads[name] - package_grads[name]).abs().max().item()
        assert difference <= gradient_tolerance * max(scale, 1e-6), (name, difference, scale)


def test_episode_and_loss_equal_the_package_fresh_network(notebook):
    torch.manual_seed(3)
    state_dict = notebook.PlasticNetwork().state_dict()
    _assert_equivalent(notebook, state_dict, loss_tolerance=1e-5, gradient_tolerance=1e-4)


@pytest.mark.skipif(not REFERENCE_NET.exists(), reason=reference_skip_reason("paper_net_active.dat"))
def test_episode_and_loss_equal_the_package_published_network(notebook):
    """The trained network uses its plasticity heavily (P reaches the clip): a stronger test of the update
    order. Its original file also loads into the notebook's network as it is."""
    state_dict = torch.load(REFERENCE_NET, map_location="cpu", weights_only=True)
    _assert_equivalent(notebook, state_dict, loss_tolerance=1e-4, gradient_tolerance=1e-3)


def test_blank_steps_change_nothing_from_fresh_state(notebook):
    """With forced actions the result does not depend on NB_BLANK_STEPS from a fresh state."""
    torch.manual_seed(4)
    net = notebook.PlasticNetwork()
    items, pairs = notebook.draw_items(3, 5), notebook.draw_pairs(3, 5)
    actions = torch.randint(0, 2, (3, 120))
    with torch.no_grad():
        with_blanks = notebook.run_episode(net, items, pairs, actions)
        saved = notebook.NB_BLANK_STEPS
        notebook.NB_BLANK_STEPS = 0
        try:
            without = notebook.run_episode(net, items, pairs, actions)
        finally:
            notebook.NB_BLANK_STEPS = saved
    assert torch.equal(with_blanks["scores"], without["scores"])
    assert torch.equal(with_blanks["final_plastic"], without["final_plastic"])


def test_training_loop_writes_a_loadable_net_dat(notebook, tmp_path, capsys):
    path = tmp_path / "net.dat"
    umask = os.umask(0o022)  # so that the file's mode tells the ordinary mode (0644 here) from mkstemp's 0600
    try:
        net, curve = notebook.train(nb_episodes=5, save_every=2, save_path=str(path), batch_size=1, seed=5,
                                    device="cpu")
    finally:
        os.umask(umask)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["net.dat"]  # no temporary file left behind
    loaded = load_network(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert set(saved) == PARAMETER_KEYS
    for key, value in net.state_dict().items():  # the last save (after the final episode) is the final network
        assert torch.equal(loaded.state_dict()[key], value)
    assert [episode for episode, _ in curve] == [0]
    assert 0.0 <= curve[0][1] <= 100.0
    progress = capsys.readouterr().out.splitlines()
    assert any(line.startswith("episode 0:") and " s/episode" in line for line in progress)  # with its speed
    # a first line at once (before any episode), saying what it does and where it saves
    assert progress[0].startswith("meta-training 5 episodes") and str(path) in progress[0]
    assert [line for line in progress if line.startswith("saved ")] == [
        f"saved {path} after {k} episodes" for k in (2, 4, 5)]  # a line at each save
    # after the first episode and ESTIMATE_AFTER (3) more, the measured speed and the time to the end
    estimate = [line for line in progress if "s/episode over episodes 1-3: all 5 episodes take about" in line]
    assert len(estimate) == 1 and progress.index(estimate[0]) < progress.index(f"saved {path} after 5 episodes")


def test_the_time_left_reads_in_minutes_hours_or_days(notebook):
    assert notebook.duration(40 * 60) == "40 min"
    assert notebook.duration(7.5 * 3600) == "7.5 hours"
    assert notebook.duration(30000 * 7.3) == "2.5 days"


def test_threads_are_the_cores_not_kept_busy(notebook, monkeypatch):
    """The notebook's torch threads (set when it runs as the main program): its cores less the load average."""
    monkeypatch.setattr(notebook.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for load, free in [(0.0, 2), (0.4, 2), (0.6, 1), (1.9, 1), (7.0, 1)]:
        monkeypatch.setattr(notebook.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert notebook.free_cores() == free, load
    source = code_source()
    main_block = source[source.index('if __name__ == "__main__":'):]
    assert "torch.set_num_threads(min(torch.get_num_threads(), free_cores()))" in main_block
    # OpenMP's threads sleep when they wait: set before torch is imported
    assert source.index('os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")') < source.index("import torch")


# ---------------------------------------------------------------------------------------------------------
# Recomputation of each trial in the backward pass (RECOMPUTE_TRIALS): same results, little kept in memory.

def _episode_and_gradients(notebook, state_dict, items, pairs, recompute, seed):
    net = notebook.PlasticNetwork()
    net.load_state_dict(state_dict)
    torch.manual_seed(seed)  # actions are sampled: the rerun of a trial must sample the same ones
    record = notebook.run_episode(net, items, pairs, recompute=recompute)
    loss = notebook.a2c_loss(record)
    loss.backward()
    return record, loss, _gradients(net)


@pytest.mark.parametrize("seed", [0, 1])
def test_recomputed_trials_give_the_same_episode_loss_and_gradients(notebook, seed):
    torch.manual_seed(10 + seed)
    state_dict = notebook.PlasticNetwork().state_dict()
    state_dict["alpha"] *= 30  # plasticity strong enough to matter (a fresh alpha is within +-0.01)
    items, pairs = notebook.draw_items(3, 6), notebook.draw_pairs(3, 6)
    plain, plain_loss, plain_grads = _episode_and_gradients(notebook, state_dict, items, pairs, False, seed)
    rerun, rerun_loss, rerun_grads = _episode_and_gradients(notebook, state_dict, items, pairs, True, seed)

    assert "Checkpoint" in type(rerun["final_plastic"].grad_fn).__name__  # the trials did run under checkpoint
    assert "Checkpoint" not in type(plain["final_plastic"].grad_fn).__name__
    assert torch.equal(rerun["actions"], plain["actions"]) and torch.equal(rerun["rewards"], plain["rewards"])
    for key in ("inputs", "scores", "values", "final_plastic"):
        assert_float32_close(rerun[key], plain[key], key)
    assert_float32_close(rerun_loss, plain_loss, "loss")
    assert set(rerun_grads) == PARAMETER_KEYS
    for name in PARAMETER_KEYS:
        assert plain_grads[name].abs().max() > 0, name  # every parameter gets a gradient
        assert_float32_close(rerun_grads[name], plain_grads[name], f"gradient of {name}")


def _bytes_kept_for_backward(notebook, recompute, batch=4):
    """Bytes of the distinct tensors that the forward pass of one episode keeps for the backward pass."""
    torch.manual_seed(7)
    net = notebook.PlasticNetwork()
    items, pairs = notebook.draw_items(batch, 5), notebook.draw_pairs(batch, 5)
    kept = {}

    def keep(tensor):
        kept[(tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())] = tensor
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        notebook.run_episode(net, items, pairs, recompute=recompute)
    return sum(nbytes for _, nbytes in kept)


def test_recomputation_keeps_little_for_the_backward_pass(notebook):
    """Without recomputation the forward pass keeps several (batch, n, n) tensors per step (122 steps); with it,
    about one per trial (P at its start) and those of the 2 blank steps."""
    one_plastic = 4 * notebook.HIDDEN_SIZE ** 2 * 4  # bytes of a (batch 4, n, n) float32 tensor
    plain = _bytes_kept_for_backward(notebook, recompute=False)
    recomputed = _bytes_kept_for_backward(notebook, recompute=True)
    assert plain > 3 * notebook.EPISODE_LENGTH * one_plastic
    assert recomputed < (notebook.NB_TRIALS + 8 * notebook.NB_BLANK_STEPS) * one_plastic
