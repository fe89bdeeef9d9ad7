"""Network classes by name: the two controls (no plasticity, no neuromodulation), a researcher's own class from
a file (the worked example examples/oja_network.py), trained and evaluated by the same commands, and parameter
files checked against the class they are loaded into."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from transitive import PlasticNetwork
from transitive.model.io import ParameterFileError, load_network
from transitive.model.variants import (NetworkClassError, NonPlasticNetwork, UnmodulatedNetwork, build_network,
                                       network_class)
from transitive.training.config import SettingError, TrainConfig
from transitive.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
OJA = f"{ROOT / 'examples' / 'oja_network.py'}:OjaNetwork"


def tiny(**changes):
    values = dict(episodes=2, batch=2, learning_trials=3, test_trials=2, max_items=4, regime="continual",
                  burn_in=0, lr=0.01, log_every=1)
    values.update(changes)
    return TrainConfig(**values)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "transitive", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_no_plasticity_keeps_alpha_and_p_at_zero(tmp_path):
    trainer = Trainer(tiny(network="no-plasticity"), tmp_path / "net.dat", progress=False)
    with pytest.warns(RuntimeWarning, match="NonPlasticNetwork.step"):
        trainer.train()
    net = trainer.net
    assert isinstance(net, NonPlasticNetwork) and not net.alpha.requires_grad
    assert torch.count_nonzero(net.alpha) == 0
    assert torch.count_nonzero(trainer.run.carried.plastic_weights) == 0  # the step did no P work
    assert trainer.curve[-1]["grad_norm"] > 0  # the rest trained
    # an ordinary parameter file: the published class reads it and, with alpha = 0, computes the same rates
    loaded = load_network(tmp_path / "net.dat", network="no-plasticity")
    assert torch.equal(loaded.w, net.w.detach())


def test_no_modulation_makes_m_a_learned_constant(tmp_path):
    trainer = Trainer(tiny(network="no-modulation"), tmp_path / "net.dat", progress=False)
    with pytest.warns(RuntimeWarning, match="UnmodulatedNetwork.modulation"):
        trainer.train()
    net = trainer.net
    assert isinstance(net, UnmodulatedNetwork)
    assert net.modulation_constant.item() != 0.0  # it trained
    from transitive import run_episode
    from transitive.model.task import draw_items, present, standard_schedule
    record = run_episode(net, present(draw_items(2, 4), standard_schedule(2, 4, 3, 2)))
    assert torch.all(record.modulation == net.modulation_constant.detach())  # whatever the rates
    with pytest.raises(ParameterFileError, match="--network no-modulation"):
        load_network(tmp_path / "net.dat")  # the checkpoint says which class
    (tmp_path / "net.ckpt").unlink()
    with pytest.raises(ParameterFileError, match="unexpected keys: modulation_constant"):
        load_network(tmp_path / "net.dat")  # the file's own keys say it is not the published network
    assert isinstance(load_network(tmp_path / "net.dat", network="no-modulation"), UnmodulatedNetwork)


def test_impossible_and_unknown_networks_are_one_line():
    with pytest.raises(SettingError, match="no-plasticity"):
        tiny(network="no-plasticity", positive_alpha=True).validate()
    for spec, message in (("oja", "expected plastic"), ("missing.py:Net", "not found"),
                          ("transitive.model.network:NetworkState", "not a subclass"),
                          ("transitive.model.network:Nothing", "defines no Nothing"),
                          ("no.such.module:Net", "cannot import")):
        with pytest.raises(NetworkClassError, match=message) as caught:
            network_class(spec)
        assert "\n" not in str(caught.value)
    with pytest.raises(SettingError, match="network"):
        tiny(network="missing.py:Net").validate()


def test_resuming_with_another_network_is_refused(tmp_path):
    Trainer(tiny(episodes=1, network="no-plasticity", save_every=1), tmp_path / "net.dat", progress=False).train()
    with pytest.raises(ParameterFileError, match="network"):
        Trainer(tiny(episodes=2), tmp_path / "net.dat", resume=True, progress=False)


def test_a_rule_from_a_file_trains_and_evaluates_through_the_commands(tmp_path):
    """The worked example of docs/extending.md: Oja's rule, trained and evaluated end to end by the CLI."""
    out = tmp_path / "oja" / "net.dat"
    trained = cli("train", "--network", OJA, "--out", out, "--episodes", "2", "--batch", "2", "--burn-in", "0",
                  "--learning-trials", "3", "--test-trials", "2", "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr.count("OjaNetwork.step differs") == 1
    assert type(build_network(OJA)).__name__ == "OjaNetwork"
    evaluated = cli("eval", out, "--network", OJA, "--batch", "20", "--json", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"test_accuracy"' in evaluated.stdout or "accuracy" in evaluated.stdout
    refused = cli("eval", out, "--batch", "20", "--quiet")  # the published class: refused in one line
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: ") and "OjaNetwork" in refused.stderr
    classified = cli("classify", out, "--network", OJA, "--batch", "20", "--no-linking", "--quiet")
    assert classified.returncode == 0, classified.stderr


class _ThreeOutputs(PlasticNetwork):
    def step(self, inputs, state):
        logits, value, modulation, new = super().step(inputs, state)
        return logits, value, new


class _WrongShape(PlasticNetwork):
    def step(self, inputs, state):
        logits, value, modulation, new = super().step(inputs, state)
        return logits, value[:, None], modulation, new


@pytest.mark.parametrize("cls, returned", [(_ThreeOutputs, r"3 values: tensor \(2, 2\), tensor \(2,\), NetworkState"),
                                           (_WrongShape, r"4 values: tensor \(2, 2\), tensor \(2, 1\), tensor \(2,\)")])
def test_a_step_returning_the_wrong_outputs_is_one_line(cls, returned, tmp_path):
    from transitive import run_episode
    from transitive.engine import backends
    from transitive.model.task import draw_items, present, standard_schedule
    from transitive.model.variants import RuleOutputError
    net = cls(hidden_size=8)
    trials = present(draw_items(2, 4), standard_schedule(2, 4, 2, 1))
    for run in (lambda: run_episode(net, trials, backend="eager"), lambda: run_episode(net, trials)):
        with pytest.raises(RuleOutputError, match=f"{cls.__name__}.step returned {returned}.*; expected 4 values") \
                as caught:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run()
        assert "\n" not in str(caught.value) and "(batch 2, n 8)" in str(caught.value)
    assert backends.requested("eager") == "eager"
    # from the command line: one line and exit 2
    source = tmp_path / "wrong.py"
    source.write_text("from transitive import PlasticNetwork\n\n\nclass Wrong(PlasticNetwork):\n"
                      "    def step(self, inputs, state):\n        return super().step(inputs, state)[:3]\n")
    trained = cli("train", "--network", f"{source}:Wrong", "--out", tmp_path / "net.dat", "--episodes", "1",
                  "--batch", "2", "--burn-in", "0", "--learning-trials", "2", "--test-trials", "1", "--quiet")
    assert trained.returncode == 2, trained.stderr
    last = trained.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Wrong.step returned 3 values" in last


def test_a_run_shorter_than_its_burn_in_says_it_makes_no_step(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"2 episodes with a burn-in of 5: no optimizer step") as caught:
        trainer = Trainer(tiny(burn_in=5), tmp_path / "net.dat", progress=False).train()
    assert len([w for w in caught if "burn-in" in str(w.message)]) == 1 and "\n" not in str(caught[0].message)
    untrained = Trainer(tiny(burn_in=5), tmp_path / "fresh.dat", progress=False).net  # the same seed, not trained
    assert all(torch.equal(a, b) for a, b in zip(trainer.net.state_dict().values(), untrained.state_dict().values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run that steps says nothing of the kind
        Trainer(tiny(burn_in=1, episodes=2), tmp_path / "other.dat", progress=False).train()
    said = cli("train", "--out", tmp_path / "cli.dat", "--episodes", "1", "--batch", "2", "--learning-trials", "2",
               "--test-trials", "1", "--quiet")
    assert said.returncode == 0 and said.stderr.count("no optimizer step is made") == 1, said.stderr


def test_resuming_names_both_networks_and_compares_what_specs_resolve_to(tmp_path, monkeypatch):
    from transitive.model.variants import same_network
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    relative, absolute = "examples/oja_network.py:OjaNetwork", OJA
    assert same_network(relative, absolute) and same_network("examples.oja_network:OjaNetwork", absolute)
    assert same_network(network_class(absolute), relative) and same_network("no-modulation", UnmodulatedNetwork)
    assert not same_network(relative, "examples/oja_network.py:Other") and not same_network("plastic", absolute)
    out = tmp_path / "net.dat"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(tiny(episodes=1, network=relative, save_every=1), out, progress=False).train()
        resumed = Trainer(tiny(episodes=2, network=absolute), out, resume=True, progress=False)
    assert resumed.members[0].episode == 1  # the same network, spelled otherwise: resumed
    with pytest.raises(ParameterFileError, match=r"made by network 'examples/oja_network.py:OjaNetwork', not "
                                                 r"'no-modulation' as given; resume with --network examples/") as caught:
        Trainer(tiny(episodes=2, network="no-modulation"), out, resume=True, progress=False)
    assert "\n" not in str(caught.value)


def test_a_file_made_by_another_class_is_never_read_as_the_published_network(tmp_path):
    from transitive.model.io import CLASS_KEY
    from transitive.model.network import PlasticNetwork as Published
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(tiny(episodes=1, network=OJA), tmp_path / "oja" / "net.dat", progress=False).train()
        Trainer(tiny(episodes=1), tmp_path / "plain" / "net.dat", progress=False).train()
    copied = tmp_path / "copied.dat"  # away from its checkpoint: only the file itself can tell
    copied.write_bytes((tmp_path / "oja" / "net.dat").read_bytes())
    with pytest.raises(ParameterFileError, match=r"made by OjaNetwork .*not PlasticNetwork") as caught:
        load_network(copied)
    assert "\n" not in str(caught.value)
    assert type(load_network(copied, network=OJA)).__name__ == "OjaNetwork"
    published = torch.load(tmp_path / "plain" / "net.dat", weights_only=True)
    assert list(published) == list(Published().state_dict())  # the original's format, exactly
    assert CLASS_KEY not in published


def test_from_python_the_table_and_classify_of_ones_own_network_print_nothing_without_progress(capsys):
    """docs/extending.md's example: the evaluation table and classify of one's own class, and
    Runs(..., progress=False) prints nothing (no bar, no lines)."""
    from transitive import Runs, Settings
    from transitive.evaluation import stats
    from transitive.evaluation.classify import classify, format_report
    net = build_network(OJA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = Runs(net, Settings(batch=20, linking_batch=20), progress=False)
        table = stats.behaviour(runs.standard.test_pairs, runs.standard.test_correct).as_dict()
        result = classify(net, runs=runs)
    assert 0 <= table["accuracy"] <= 1 and len(table["accuracy_by_distance"]) == 7
    assert "OjaNetwork" in format_report(result, "OjaNetwork")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
