"""The command line: results as JSON, and bad input ending in one clear line and a non-zero exit."""
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, reference_file
from transitive.model.io import save_network
from transitive.model.network import PlasticNetwork


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "transitive", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def fresh_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "net.dat"
    torch.manual_seed(0)
    save_network(PlasticNetwork(), path)
    return path


def test_bad_parameter_files(tmp_path, fresh_file):
    assert_one_line_error(run("eval", tmp_path / "missing.dat"), "not found")
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(fresh_file.read_bytes()[:5000])
    assert_one_line_error(run("eval", truncated), "truncated.dat")
    text = tmp_path / "text.dat"
    text.write_text("hello")
    assert_one_line_error(run("linking", text), "text.dat is not a PyTorch parameter file")
    wrong = tmp_path / "wrong.dat"
    state = PlasticNetwork().state_dict()
    state["w"] = torch.zeros(10, 10)
    torch.save(state, wrong)
    assert_one_line_error(run("eval", wrong), "'w'", "(200, 200)")
    missing_key = tmp_path / "missing_key.dat"
    del state["h2v.bias"]
    torch.save(state, missing_key)
    assert_one_line_error(run("eval", missing_key), "h2v.bias")
    not_dict = tmp_path / "list.dat"
    torch.save([torch.zeros(2)], not_dict)
    assert_one_line_error(run("eval", not_dict), "state_dict")
    assert_one_line_error(run("eval", tmp_path), "folder")


def test_impossible_options(tmp_path, fresh_file):
    assert_one_line_error(run("train", "--out", tmp_path / "x.dat", "--positive-alpha", "--positive-alpha-init-only"),
                          "positive_alpha")
    assert_one_line_error(run("eval", fresh_file, "--batch", "0"), "a whole number from 20 to 100,000")
    assert_one_line_error(run("train", "--out", tmp_path / "x.dat", "--regime", "weird"), "regime")
    assert_one_line_error(run("eval", fresh_file, "--device", "cuda:7"), "CUDA") if not torch.cuda.is_available() else None
    assert_one_line_error(run("nonsense"), "expected a command", "'nonsense'")


def test_train_then_resume_then_eval_json(tmp_path):
    out = tmp_path / "net.dat"
    first = run("train", "--out", out, "--episodes", "2", "--batch", "2", "--save-every", "1", "--quiet")
    assert first.returncode == 0, first.stderr
    again = run("train", "--out", out, "--episodes", "3", "--batch", "2", "--quiet")
    assert_one_line_error(again, "--resume")
    resumed = run("train", "--out", out, "--episodes", "3", "--batch", "2", "--save-every", "1", "--resume", "--quiet")
    assert resumed.returncode == 0 and "episode 3/3" in resumed.stdout
    result = run("eval", out, "--batch", "20", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary["accuracy_by_distance"]) == {str(d) for d in range(1, 8)}
    assert len(summary["accuracy_by_pair"]) == 28 and "AH" in summary["accuracy_by_pair"]
    for key in ("test_accuracy", "adjacent_accuracy", "nonadjacent_accuracy"):
        assert 0 <= summary[key] <= 1


def test_linking_json_on_reference_file():
    path = reference_file("paper_net_active.dat")
    result = run("linking", path, "--batch", "400", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["across_list_accuracy"] > 0.75
    assert set(summary["error_by_distance"]) == {str(d) for d in range(1, 8)}
    sham = json.loads(run("linking", path, "--batch", "400", "--sham", "--json").stdout.strip().splitlines()[-1])
    assert sham["across_list_accuracy"] < 0.65
