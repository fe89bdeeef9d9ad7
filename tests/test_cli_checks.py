"""Bad input is refused before any work: an output place that cannot be created or written ends every command
that writes with exit code 2 and one line, within seconds; a file that is not a PyTorch file says so."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from transitive.interface import cli
from transitive.model.io import (OutputPathError, ParameterFileError, check_output_file, check_output_folder,
                           load_network, save_network)
from transitive.model.network import PlasticNetwork


@pytest.fixture
def no_work(monkeypatch):
    """Any attempt to load a network, train, sweep or draw curves fails the test."""
    import transitive.training.trainer  # noqa: F401  (imported before patching what they use)
    import transitive.figures.curves  # noqa: F401
    import transitive.scale.sweep  # noqa: F401

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the output place was checked")
    for target in ("transitive.model.io.load_network", "transitive.training.trainer.Trainer",
                   "transitive.scale.sweep.run_sweep", "transitive.scale.sweep.plan_sweep", "transitive.figures.curves.learning_curves"):
        monkeypatch.setattr(target, refuse)


def bad_places(tmp_path):
    """Folders that cannot be made or written: under /proc, under a file, under read-only /sys."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    places = [("/proc/forbidden/x", "cannot be created"), (a_file / "x", "is a file, not a folder"),
              ("/sys/transitive-test", "cannot be")]
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        places.append((read_only / "x", "cannot be written"))
    return places


def one_error_line(capsys, words):
    code = cli.main(list(map(str, words)))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, (code, lines)
    return lines[0]


def test_output_checks_before_any_work(capsys, tmp_path, no_work):
    net = tmp_path / "net.dat"
    net.write_bytes(b"PK\x03\x04")  # never read: the check comes first
    for place, reason in bad_places(tmp_path):
        commands = [["train", "--out", f"{place}/net.dat"],
                    ["train", "--seeds", "0-1", "--out", place],
                    ["figures", net, "--out", place],
                    ["curves", tmp_path, "--out", f"{place}/fig1f.png"],
                    ["sweep", "--seeds", "0-1", "--executor", "local", "--out", place]]
        for words in commands:
            line = one_error_line(capsys, words)
            assert line.startswith(f"error: --out {place}") and reason in line, (words, line)


def test_output_file_that_is_a_folder(capsys, tmp_path, no_work):
    line = one_error_line(capsys, ["train", "--out", tmp_path])
    assert "is a folder" in line


def test_check_helpers(tmp_path):
    folder = check_output_folder(tmp_path / "new" / "deeper")
    assert folder.is_dir() and list(folder.iterdir()) == []  # made, and the probe file removed
    assert check_output_file(tmp_path / "other" / "net.dat").parent.is_dir()
    with pytest.raises(OutputPathError, match="--figures-dir /proc/forbidden"):
        check_output_folder("/proc/forbidden", option="--figures-dir")


def test_forbidden_output_ends_the_command_with_one_line():
    # That no work starts first is proven in-process by `no_work` above; a wall-clock bound would measure the
    # machine's load, not the order of the checks.
    result = subprocess.run([sys.executable, "-m", "transitive", "figures", "net_active.dat", "--out",
                             "/proc/forbidden/x"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == \
        ["error: --out /proc/forbidden/x: this folder cannot be created (No such file or directory)"]


def test_not_a_torch_file_in_plain_words(tmp_path):
    text = tmp_path / "notes.dat"
    text.write_text("hello, this is text\n")
    with pytest.raises(ParameterFileError, match=r"notes.dat is not a PyTorch parameter file"):
        load_network(text)
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    with pytest.raises(ParameterFileError, match="empty"):
        load_network(empty)
    good = tmp_path / "net.dat"
    torch.manual_seed(0)
    save_network(PlasticNetwork(), good)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ParameterFileError, match="not a complete torch file"):
        load_network(truncated)
    legacy = tmp_path / "legacy.dat"  # torch's older, non-zip format still loads
    torch.save(PlasticNetwork().state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert isinstance(load_network(legacy), PlasticNetwork)


def test_an_existing_file_as_the_output_folder_is_named_a_file(capsys, tmp_path, no_work):
    text = tmp_path / "text.dat"
    text.write_text("x")
    line = one_error_line(capsys, ["figures", "net_active.dat", "--out", text])
    assert line == f"error: --out {text}: is a file, not a folder; give a folder's name"


def test_a_refused_option_leaves_no_output_folder(capsys, tmp_path, no_work):
    out = tmp_path / "figures"
    line = one_error_line(capsys, ["figures", "net_active.dat", "--out", out, "--only", "nosuchgroup"])
    assert "unknown figure group" in line and not out.exists()


def test_figures_stopped_before_its_first_file_removes_the_folder_it_made(capsys, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_make_figures", interrupted)
    out = tmp_path / "new" / "figures"
    assert cli.main(["figures", "net_active.dat", "--out", str(out)]) == 130
    assert "created by this command and still empty, is removed" in capsys.readouterr().err and not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made is never removed
    assert cli.main(["figures", "net_active.dat", "--out", str(kept)]) == 130 and kept.is_dir()


def test_a_created_folder_is_named_in_one_line(capsys, tmp_path):
    check_output_file(tmp_path / "a" / "b" / "net.dat")
    assert capsys.readouterr().err == f"--out: created the folder {(tmp_path / 'a').resolve()}\n"
    check_output_file(tmp_path / "a" / "b" / "other.dat")  # it exists now: nothing said
    check_output_folder(tmp_path / "c", option="--figures-dir", announce=True)
    assert capsys.readouterr().err == f"--figures-dir: created the folder {(tmp_path / 'c').resolve()}\n"
    check_output_folder(tmp_path / "d")  # a command's own output folder: made without a word
    assert capsys.readouterr().err == "" and (tmp_path / "d").is_dir()


def test_figures_that_fail_on_their_input_leave_no_output_folder(capsys, tmp_path):
    out = tmp_path / "figures"
    line = one_error_line(capsys, ["figures", tmp_path / "missing.dat", "--out", out])
    assert "not found" in line and not out.exists()


def test_the_virtual_environment_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", ".venv/bin/python"], cwd=ROOT)
    assert result.returncode == 0
