"""The sweep through a real SLURM cluster: the one-node cluster of tools/slurm_up.sh (`.ci/run` starts it before
the tests and stops it after). Skipped, with the reason, where no such cluster answers.

The test runs `transitive sweep --executor slurm --wait` as a command, with tiny trainings, and does to its
jobs what a cluster does: a preemption by a job of a higher-priority partition (SIGUSR2: the tasks checkpoint,
are requeued and resume), `scontrol requeue` (SIGTERM: the task saves, and SLURM runs it again), and a task
killed with SIGKILL while `sacct` does not answer. One sweep goes through all three, one after the other: each
start of a task costs some 15 s here (importing torch) and each requeue some 12 s (SLURM holds a requeued
job until its credential expires), so separate sweeps would double the file's two minutes. Every wait has a
time limit, and the test cancels its jobs.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_png_drawn

from transitive.figures.curves import learning_curves
from transitive.scale.sweep import checkpoint_episode, read_record, seed_params
from transitive.training.trainer import paths_for, read_curve

TINY = ["--batch", "4", "--save-every", "1", "--log-every", "1", "--burn-in", "1"]
JOB = ["--mem", "1", "--time", "60", "--cpus", "1", "--poll", "1"]  # --time 60: a SIGUSR2 is a preemption


def _why_no_cluster() -> str | None:
    if os.geteuid() != 0:
        return "not root: the SLURM tests need the cluster of tools/slurm_up.sh, which needs root"
    if shutil.which("sinfo") is None:
        if shutil.which("apt-get") is None:
            return "no SLURM here (no sinfo) and no apt-get to install it"
        return "no SLURM cluster here (sinfo is absent): tools/slurm_up.sh installs and starts one"
    try:
        answer = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError) as error:
        return f"no SLURM cluster answers (sinfo: {error}): tools/slurm_up.sh starts one"
    states = answer.stdout.split()
    if answer.returncode != 0 or not states:
        said = " ".join(answer.stderr.split())[:80]
        return f"no SLURM cluster answers (sinfo: {said}): tools/slurm_up.sh starts one"
    if any(state != "idle" for state in states):
        return f"the SLURM node is {states[0]}, not idle (its jobs would slow or block these tests)"
    return None


WHY = _why_no_cluster()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")


class Sweep:
    """`transitive sweep ... --executor slurm --wait` running as a command; its output is read as it comes."""

    def __init__(self, out: Path, seeds: str, episodes: int, path_first: Path | None = None):
        self.out, self.episodes = out, episodes
        self.log = out.parent / f"{out.name}.out"
        env = dict(os.environ)
        if path_first is not None:
            env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
        command = [sys.executable, "-m", "transitive", "sweep", "--seeds", seeds, "--executor", "slurm", "--out",
                   str(out), "--episodes", str(episodes), "--wait", *TINY, *JOB]
        self.process = subprocess.Popen(command, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env)
        self.seen: dict[str, float] = {}  # line -> when it was first read

    def lines(self) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        now = time.time()
        for line in text.splitlines():
            self.seen.setdefault(line, now)
        return text.splitlines()

    def task(self, seed: int) -> str:
        return read_record(self.out)["jobs"][str(seed)]["job_id"]

    def job_log(self, seed: int) -> str:
        return Path(read_record(self.out)["jobs"][str(seed)]["stdout"]).read_text()

    def wait_saved(self, seeds, episode: int, limit_s: float) -> None:
        """Until every seed's checkpoint has reached `episode` (the jobs have started and are training)."""
        deadline = time.time() + limit_s
        while any((checkpoint_episode(seed_params(self.out, s))[0] or 0) < episode for s in seeds):
            assert self.process.poll() is None, "\n".join(self.lines()[-20:])
            assert time.time() < deadline, f"no checkpoint at episode {episode} in {limit_s} s"
            time.sleep(0.2)

    def wait_end(self, limit_s: float) -> int:
        deadline = time.time() + limit_s
        while self.process.poll() is None:
            self.lines()
            assert time.time() < deadline, "sweep --wait still running:\n" + "\n".join(self.lines()[-20:])
            time.sleep(0.2)
        self.lines()
        return self.process.returncode

    def stop(self) -> None:
        """End the command if it still runs, cancel every job it submitted, and wait until SLURM lists none."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        record = read_record(self.out)
        jobs = sorted({entry["job_id"].split("_")[0] for entry in record.get("jobs", {}).values()})
        _cancel(jobs)


def _cancel(jobs) -> None:
    if not jobs:
        return
    subprocess.run(["scancel", *jobs], capture_output=True, timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        listed = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=30)
        if not {line.split("_")[0] for line in listed.stdout.split()} & set(jobs):
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs {jobs} still listed by squeue 30 s after scancel")


@pytest.fixture
def sweeps():
    started: list[Sweep] = []
    other_jobs: list[str] = []
    yield started, other_jobs
    for sweep in started:
        sweep.stop()
    _cancel(other_jobs)


def _episodes_logged(out: Path, seed: int) -> list[int]:
    return [int(row["episode"]) for row in read_curve(paths_for(seed_params(out, seed))["curve"])]


def _job_process(task: str) -> int:
    """The Python process that runs array task `task` ("<job>_<index>"): its submitit worker, not srun."""
    job, index = task.split("_")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"submitit.core._submit" not in argv or not Path(argv[0].decode()).name.startswith("python"):
                continue
            environ = set((proc / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if {f"SLURM_ARRAY_JOB_ID={job}".encode(), f"SLURM_ARRAY_TASK_ID={index}".encode()} <= environ:
            return int(proc.name)
    raise AssertionError(f"no process runs task {task}")


def test_sweep_on_slurm_preempted_requeued_and_killed(tmp_path, sweeps):
    """One sweep of two seeds (a job array) through what a cluster does to jobs, with `--wait`, and without
    accounting (a `sacct` that fails, as where slurmdbd is absent: the sweep must not need it):

    1. a job of the `high` partition that needs the whole node preempts both tasks: each gets SIGUSR2
       (preempt_send_user_signal), checkpoints after its current episode, is requeued and resumes there;
    2. then task 0 is requeued with `scontrol requeue` (SIGTERM: it saves and ends, SLURM runs it again):
       `--wait` follows it to its real end instead of calling it stopped early;
    3. and task 1 is killed with SIGKILL: `--wait` says within a minute that it failed, which seed and why.

    No episode is lost or repeated in either training log, and `curves` draws Fig. 1f from the folder."""
    started, other_jobs = sweeps
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text("#!/bin/sh\necho 'sacct: error: accounting storage is disabled' >&2\nexit 1\n")
    (fake / "sacct").chmod(0o755)
    out, episodes = tmp_path / "sweep", 48  # room: a task must still be training when each signal comes
    sweep = Sweep(out, "0-1", episodes, path_first=fake)
    started.append(sweep)

    # 1. preemption by a higher-priority partition
    sweep.wait_saved([0, 1], 2, limit_s=120)
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True, timeout=30).stdout.split()[0]
    high = subprocess.run(["sbatch", "--parsable", "--partition", "high", "--cpus-per-task", cpus, "--mem", "100",
                           "--output", "/dev/null", "--wrap", "sleep 1"], capture_output=True, text=True, timeout=30)
    assert high.returncode == 0, high.stderr
    other_jobs.append(high.stdout.strip().split(";")[0])
    resumed_at = {}
    deadline = time.time() + 90
    while len(resumed_at) < 2:
        for seed in (0, 1):
            found = re.search(r"resuming at episode (\d+)", sweep.job_log(seed))
            if found:
                resumed_at[seed] = int(found.group(1))
        assert sweep.process.poll() is None and time.time() < deadline, "\n".join(sweep.lines()[-20:])
        time.sleep(0.2)
    for seed in (0, 1):
        stopped = re.findall(r"checkpointed at episode (\d+); requeued", sweep.job_log(seed))
        assert stopped == [str(resumed_at[seed])] and resumed_at[seed] >= 2, sweep.job_log(seed)[-2000:]
        assert "this job is preempted" in Path(read_record(out)["jobs"][str(seed)]["stderr"]).read_text()

    # 2. and 3. once both train again: scontrol requeue task 0, SIGKILL task 1
    sweep.wait_saved([0, 1], max(resumed_at.values()) + 1, limit_s=60)
    requeue = subprocess.run(["scontrol", "requeue", sweep.task(0)], capture_output=True, text=True, timeout=30)
    assert requeue.returncode == 0, requeue.stderr
    os.kill(_job_process(sweep.task(1)), 9)
    killed = time.time()

    assert sweep.wait_end(limit_s=240) == 2, "\n".join(sweep.lines()[-20:])  # a seed failed: exit status 2
    lines = sweep.lines()
    failed = [line for line in lines if line.startswith(f"seed 1: job {sweep.task(1)} FAILED")]
    assert failed, "\n".join(lines[-20:])
    assert "left the queue without a result (sacct does not answer" in failed[0] and "Killed" in failed[0]
    assert sweep.seen[failed[0]] - killed < 60
    assert not any("stopped at episode" in line for line in lines)
    assert "all jobs ended: 1 finished, 0 stopped early, 1 failed" in lines
    log = sweep.job_log(0)
    assert "SIGTERM, stopping after the current episode" in log and len(re.findall("resuming at episode", log)) == 2
    assert checkpoint_episode(seed_params(out, 0))[0] == episodes
    reached = checkpoint_episode(seed_params(out, 1))[0]
    assert resumed_at[1] < reached < episodes
    assert _episodes_logged(out, 0) == list(range(episodes))  # none lost, none repeated
    # The killed task: the log it resumes from (the checkpoint's) ends where the checkpoint does; net.csv, written
    # just before the checkpoint, may hold the one row more of an episode whose checkpoint the kill cut off
    # (a resume rewrites net.csv from the checkpoint).
    saved = torch.load(paths_for(seed_params(out, 1))["checkpoint"], map_location="cpu", weights_only=False)
    assert [int(row["episode"]) for row in saved["curve"]] == list(range(reached))
    logged = _episodes_logged(out, 1)
    assert logged in (list(range(reached)), list(range(reached + 1)))

    figure = tmp_path / "fig1f.png"  # `curves` (classifying tiny networks would only cost time)
    rows = learning_curves(out, figure, classify=False, echo=lambda *_: None)
    assert_png_drawn(figure)
    assert [(row["seed"], row["last_logged_episode"]) for row in rows] == [(0, episodes - 1), (1, len(logged) - 1)]
