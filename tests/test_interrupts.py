"""Ctrl-C (issue 27): an interrupted `train`, `sweep --executor local` or `figures` exits 130 (SIGTERM: 143) with
one line saying where it stopped, what it kept and the command that goes on; `--resume` says where from; a
run that finished exits 0 as before. The subprocess tests send SIGINT to the whole process group, as a
terminal's Ctrl-C does."""
import glob
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, assert_png_drawn
from transitive.interface import cli
from transitive.scale.sweep import checkpoint_episode, plan_sweep, seed_params
from transitive.training.config import TrainConfig
from transitive.training.trainer import Trainer

ONE_EPISODE = Trainer.train_one_episode
TINY = ["--batch", "2", "--learning-trials", "2", "--test-trials", "1", "--min-items", "4", "--max-items", "4",
        "--device", "cpu"]


STARTED: list[subprocess.Popen] = []


def _as_from_a_terminal() -> None:
    """A command started from a shell hears Ctrl-C, whatever this test process does with it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(words, stderr_path) -> subprocess.Popen:
    """`transitive WORDS` in a process group of its own (so that a signal to the group is a Ctrl-C)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "transitive", *map(str, words)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=open(stderr_path, "w"), text=True,
                               start_new_session=True, preexec_fn=_as_from_a_terminal)
    STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def no_process_left():
    """A test that fails before its Ctrl-C must not leave a 100,000-episode training (or its sweep job)
    running: the whole process group goes."""
    yield
    while STARTED:
        process = STARTED.pop()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"never {what}"
        time.sleep(0.1)


def ctrl_c(process: subprocess.Popen, seconds: float = 120) -> str:
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=seconds)
    return out


def last_line(path) -> str:
    lines = [line for line in Path(path).read_text().replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1]


def test_ctrl_c_stops_train_with_130_and_the_command_that_resumes(tmp_path, capsys):
    out, log = tmp_path / "net.dat", tmp_path / "stderr.txt"
    process = start(["train", "--out", out, "--episodes", "100000", "--save-every", "100000", "--threads", "1",
                     *TINY], log)
    wait_for(lambda: re.search(r"meta-training:.* [1-9]\d*/100000", log.read_text()), 60, "trained an episode")
    ctrl_c(process)
    assert process.returncode == 130
    line = last_line(log)
    match = re.fullmatch(r"interrupted \(Ctrl-C\) at episode (\d+)/100000: saved there and kept (\S+), net.ckpt "
                         r"and net.csv; resume with: (transitive train .* --resume)", line)
    assert match and match.group(2) == str(out), line
    episode = int(match.group(1))
    assert checkpoint_episode(out)[0] == episode > 0  # saved where it stopped (save_every is far away)
    # the command it gives resumes (here to two more episodes), and says from where
    words = shlex.split(match.group(3))[1:]
    words[words.index("--episodes") + 1] = str(episode + 2)
    assert cli.main(words + ["--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"resuming from episode {episode} (checkpoint {out.with_suffix('.ckpt')})" in captured.err
    assert captured.out.startswith(f"done: episode {episode + 2}/{episode + 2}")


def signal_at(monkeypatch, episode: int, *signals):
    """Trainer.train_one_episode raises `signals` in this process during the given episode (0-based)."""
    def train_one_episode(self):
        results = ONE_EPISODE(self)
        if self.episode == episode:
            for signum in signals:
                signal.raise_signal(signum)
        return results
    monkeypatch.setattr(Trainer, "train_one_episode", train_one_episode)


def train_words(out, episodes=6):
    return ["train", "--out", str(out), "--episodes", str(episodes), "--save-every", "2", "--burn-in", "0", "--quiet",
            *TINY]


def test_sigterm_exits_143_and_a_finished_run_exits_0(tmp_path, monkeypatch, capsys):
    signal_at(monkeypatch, 2, signal.SIGTERM)
    assert cli.main(train_words(tmp_path / "a.dat")) == 143
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted (SIGTERM) at episode 3/6: saved there") and len(err.splitlines()) == 1, err
    assert checkpoint_episode(tmp_path / "a.dat")[0] == 3
    signal_at(monkeypatch, 5, signal.SIGINT)  # during the last episode: the run is finished all the same
    assert cli.main(train_words(tmp_path / "b.dat")) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("done: episode 6/6") and "interrupted" not in captured.err


def test_a_second_ctrl_c_stops_at_once_and_says_what_the_last_save_kept(tmp_path, monkeypatch, capsys):
    signal_at(monkeypatch, 2, signal.SIGINT, signal.SIGINT)
    out = tmp_path / "net.dat"
    assert cli.main(train_words(out)) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interrupted at once (second Ctrl-C) at episode 2: kept "
                                                         f"{out}, net.ckpt and net.csv as last saved, at episode 2;")
    assert err.endswith("--resume") and checkpoint_episode(out)[0] == 2


def test_ctrl_c_of_a_population(tmp_path, monkeypatch, capsys):
    signal_at(monkeypatch, 1, signal.SIGINT)
    folder = tmp_path / "pop"
    words = train_words(folder)
    words[words.index("--out"):words.index("--out")] = ["--seeds", "0-1"]
    assert cli.main(words) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"interrupted (Ctrl-C) at episode 2/6 (seeds 0-1): saved there and kept each seed's "
                          f"net.dat, net.ckpt and net.csv in {folder}/seed_<k>/; resume with: transitive train "), err
    assert cli.main(words + ["--resume"]) == 0
    assert "resuming seeds 0-1 from episode 2 (checkpoints" in capsys.readouterr().err


def test_ctrl_c_stops_figures_with_130_keeping_only_whole_files(tmp_path):
    out, log = tmp_path / "figs", tmp_path / "stderr.txt"
    process = start(["figures", ROOT / "net_active.dat", "--out", out, "--batch", "40", "--only", "fig4,fig5",
                     "--threads", "2"], log)
    wait_for(lambda: "wrote" in log.read_text(), 120, "wrote a figure")
    ctrl_c(process)
    assert process.returncode == 130
    line = last_line(log)
    assert re.fullmatch(r"interrupted \(Ctrl-C\) while drawing the figures: kept the \d+ complete files written "
                        rf"before it in {out} \(.*\); make them all with: transitive figures .*--only fig4,fig5 "
                        r"--threads 2", line), line
    assert "Traceback" not in log.read_text()
    pngs = sorted(out.glob("*.png"))
    assert pngs and not (out / "key_numbers.json").exists()
    for png in pngs:
        assert_png_drawn(png)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_ctrl_c_stops_a_local_sweep_whose_jobs_save_first(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "stderr.txt"
    settings = ["--episodes", "100000", "--save-every", "100000", *TINY[:-2]]
    process = start(["sweep", "--seeds", "0", "--executor", "local", "--wait", "--poll", "0.2", "--cpus", "1",
                     "--out", out, *settings], log)

    def training():
        logs = glob.glob(f"{out}/logs/*_log.out")
        return logs and "starting of 100000" in Path(logs[0]).read_text()
    wait_for(training, 120, "started the job")
    time.sleep(1.0)
    ctrl_c(process)
    assert process.returncode == 130
    line = last_line(log)
    match = re.fullmatch(r"interrupted \(Ctrl-C\): episode reached per seed, as last saved \(of 100000\): 0:(\d+); "
                         rf"each {out}/seed_<k>/ keeps its net.dat, net.ckpt and net.csv; resume with the same "
                         r"command: transitive sweep .*", line)
    assert match, line
    episode = int(match.group(1))
    assert episode > 0 and checkpoint_episode(seed_params(out, 0))[0] == episode  # the job saved when asked
    job_log = Path(glob.glob(f"{out}/logs/*_log.out")[0]).read_text()
    assert "SIGTERM, stopping after the current episode" in job_log
    config = TrainConfig(episodes=100000, save_every=100000, batch=2, learning_trials=2, test_trials=1, min_items=4,
                         max_items=4)
    assert [(s.action, s.episode) for s in plan_sweep([0], out, config)] == [("resume", episode)]
