"""Seed sweeps through submitit's local executor: tiny trainings, resumption, skipping, and Fig. 1f."""
import csv
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import assert_png_drawn

from transitive.figures.curves import learning_curves
from transitive.scale.sweep import (Resources, SweepError, checkpoint_episode, make_executor,
                              parse_seeds, plan_sweep, run_sweep, seed_params)
from transitive.scale.sweepwait import SlurmWatch
from transitive.training.trainer import TrainConfig, paths_for, read_curve, train

TINY = dict(batch=4, save_every=1, burn_in=1, log_every=1)
SENTINEL = 12345.0



def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,5-7") == [0, 3, 5, 6, 7]
    assert parse_seeds(" 2 , 2,1") == [1, 2]
    for bad in ("", "a", "3-1", "1-2-3"):
        with pytest.raises(SweepError):
            parse_seeds(bad)


def _job_process(controller: int) -> int:
    """The process running a local job's function: the descendant of its controller that runs submitit._submit."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(proc.name))
    todo = [controller]
    while todo:
        pid = todo.pop()
        try:
            if b"submitit.core._submit" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    raise AssertionError(f"no job process under {controller}")


def test_local_sweep_resumes_interrupts_and_skips(tmp_path, one_thread):
    out = tmp_path / "sweep"
    # seed 1 was trained part-way before the sweep; mark its checkpoint so that a restart would show
    partial = seed_params(out, 1)
    train(TrainConfig(episodes=2, seed=1, **TINY), partial, progress=False)
    checkpoint = paths_for(partial)["checkpoint"]
    saved = torch.load(checkpoint, weights_only=True)
    saved["curve"][0]["loss"] = SENTINEL
    torch.save(saved, checkpoint)
    plan = {s.seed: s.action for s in plan_sweep([0, 1], out, TrainConfig(episodes=10, **TINY))}
    assert plan == {0: "start", 1: "resume"}

    lines = []
    result = run_sweep([0, 1], out, episodes=10, resources=Resources(executor="local", cpus=1, parallel=2),
                       echo=lines.append, **TINY)
    assert set(result["jobs"]) == {0, 1}
    assert any("submitted job" in line and "log" in line for line in lines)

    # preempt seed 0's job (SIGUSR2, as SLURM does): it checkpoints, is requeued and resumes
    deadline = time.time() + 120
    while (checkpoint_episode(seed_params(out, 0))[0] or 0) < 1:
        assert time.time() < deadline and not result["jobs"][0].done(), "seed 0 never saved"
        time.sleep(0.05)
    pid = _job_process(int(result["jobs"][0].job_id))
    os.kill(pid, signal.SIGSTOP)  # hold it still, so that the signal lands before the last episode
    os.kill(pid, signal.SIGUSR2)
    os.kill(pid, signal.SIGCONT)
    outcomes = {seed: job.result() for seed, job in result["jobs"].items()}

    assert all(o["finished"] and o["episode"] == 10 for o in outcomes.values())
    for seed in (0, 1):
        assert checkpoint_episode(seed_params(out, seed))[0] == 10
        assert seed_params(out, seed).exists()
        assert [int(r["episode"]) for r in read_curve(paths_for(seed_params(out, seed))["curve"])] == list(range(10))
    log0 = Path(result["jobs"][0].paths.stdout).read_text()
    assert "checkpointed at episode" in log0 and "resuming at episode" in log0
    log1 = Path(result["jobs"][1].paths.stdout).read_text()
    assert "resuming at episode 2" in log1  # continued from the checkpoint ...
    assert read_curve(paths_for(seed_params(out, 1))["curve"])[0]["loss"] == SENTINEL  # ... not restarted

    # the same sweep again: every seed finished, nothing submitted
    again = run_sweep([0, 1], out, episodes=10, resources=Resources(executor="local", cpus=1), echo=lines.append,
                      **TINY)
    assert again["jobs"] == {} and {s.action for s in again["states"]} == {"skip"}
    # other settings than the checkpoint's are refused, not silently restarted
    assert {s.action for s in plan_sweep([0], out, TrainConfig(episodes=9, batch=8, save_every=1, burn_in=1,
                                                               log_every=1))} == {"conflict"}


def test_slurm_submission_script(tmp_path, monkeypatch):
    import submitit.slurm.slurm as slurm
    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = make_executor(Resources(executor="slurm", partition="gpu", time_min=90, gpus=1, cpus=4, mem_gb=8,
                                       parallel=5), tmp_path / "logs")
    script = executor._executor._make_submission_file_text("python -m x", "uid")
    for flag in ("--partition=gpu", "--time=90", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=8GB",
                 "--signal=USR2@120"):
        assert flag in script
    assert executor._executor.parameters["array_parallelism"] == 5


def _fake_curve(path: Path, final: float, points: int = 40):
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["episode", "test_reward", "percent_correct", "loss"])
        for k in range(points):
            correct = 50 + (final - 50) * k / (points - 1)
            writer.writerow([10 * k, (correct - 50) / 5, correct, 1.0])


def test_curves_on_a_synthetic_sweep(tmp_path):
    folder = tmp_path / "sweep"
    for seed, final in ((0, 90.0), (1, 80.0), (2, 60.0)):
        _fake_curve(folder / f"seed_{seed}" / "net.csv", final)
        (folder / f"seed_{seed}" / "net.dat").write_bytes(b"")  # the fake classifier never reads it
    verdicts = {"seed_0": "active", "seed_1": "passive", "seed_2": "unclear"}

    def fake_classifier(params):
        return {"verdict": verdicts[params.parent.name], "agreement": "both",
                "behaviour": {"near_link_accuracy": 0.5},
                "modulation": {"feedback": {"effect_size": 1.0}, "delay": {"effect_size": 5.0}}}

    figure = tmp_path / "fig1f.png"
    rows = learning_curves(folder, figure, classifier=fake_classifier, echo=lambda *_: None)
    assert_png_drawn(figure)
    assert [r["verdict"] for r in rows] == ["active", "passive", "unclear"]
    assert rows[1]["colour"] == "0.6" and rows[0]["colour"] != "0.6"  # passive runs grey
    assert rows[0]["final_percent_correct"] == pytest.approx(sum(50 + 40 * k / 39 for k in range(30, 40)) / 10)
    with open(figure.with_suffix(".csv")) as f:
        table = list(csv.DictReader(f))
    assert [t["seed"] for t in table] == ["0", "1", "2"] and table[1]["verdict"] == "passive"
    plain = learning_curves(folder, tmp_path / "plain.png", classify=False, echo=lambda *_: None)
    assert {r["verdict"] for r in plain} == {"not classified"}
    with pytest.raises(SweepError):
        learning_curves(tmp_path / "empty", tmp_path / "x.png", classify=False)


class _FakeSlurmJob:
    """What SlurmWatch reads of a submitit job: its task id and its files."""

    def __init__(self, task: str, folder: Path):
        self.job_id = task
        self.paths = SimpleNamespace(result_pickle=folder / f"{task}_0_result.pkl", stderr=folder / f"{task}_0_log.err")


def test_slurm_watch_follows_a_requeued_task_and_names_why_one_died(tmp_path, monkeypatch):
    """`sweep --wait` on SLURM (transitive.scale.sweepwait): squeue and sacct are stand-ins here (scripts that
    print what the test wrote), the real ones are in tests/test_slurm.py."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {tmp_path}/squeue.txt\n")
    (bin_dir / "sacct").write_text(f"#!/bin/sh\n[ -e {tmp_path}/sacct.txt ] || exit 1\ncat {tmp_path}/sacct.txt\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    began = float(int(time.time()) - 1000)

    def queue(line: str = "", start: float | None = None) -> None:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)) if start is not None else "N/A"
        (tmp_path / "squeue.txt").write_text(line.replace("START", when) + "\n")
        watch.refresh(lambda *_: None)

    def result_written(job, at: float) -> None:
        job.paths.result_pickle.write_bytes(b"x")
        os.utime(job.paths.result_pickle, (at, at))

    # SIGTERM (scontrol requeue): the first run saves and writes a result, and SLURM queues the task again;
    # it is cancelled while queued: that first result is not its end
    job, watch = _FakeSlurmJob("7_0", tmp_path), SlurmWatch(grace_s=0)
    queue("7_0|RUNNING|START", began)
    assert watch.status(job) == ("running", "")
    result_written(job, began + 30)
    queue("7_0|PENDING|START", began + 60)
    assert watch.status(job) == ("running", "")
    queue()
    (tmp_path / "sacct.txt").write_text("CANCELLED by 0|0:0\n")
    assert watch.status(job) == ("failed", "left the queue without a result (SLURM says CANCELLED by 0, exit code 0:0)")

    # the same, the queued state unseen (between two polls): the result is older than the run seen last;
    # that run is killed (no result of its own), and without accounting the job's own log says why
    job, watch = _FakeSlurmJob("7_1", tmp_path), SlurmWatch(grace_s=0)
    queue("7_1|RUNNING|START", began)
    assert watch.status(job) == ("running", "")
    result_written(job, began + 30)
    queue("7_1|RUNNING|START", began + 100)
    assert watch.status(job) == ("running", "")
    queue()
    (tmp_path / "sacct.txt").unlink()
    job.paths.stderr.write_text("submitit WARNING - Bypassing signal SIGCONT\nsrun: error: vm: task 0: Killed\n\n")
    assert watch.status(job) == ("failed", "left the queue without a result (sacct does not answer; its log: srun: "
                                           "error: vm: task 0: Killed)")
    result_written(job, began + 150)  # a result of the last run: the task's end
    assert watch.status(job) == ("result", "")

    # a task still listed (completing) after its result is written: that result is its last one
    job, watch = _FakeSlurmJob("8", tmp_path), SlurmWatch(grace_s=0)
    queue("8|RUNNING|START", began)
    result_written(job, began + 40)
    queue("8|COMPLETING|START", began)
    assert watch.status(job) == ("running", "")
    queue()
    assert watch.status(job) == ("result", "")
    # squeue silent: every task counts as running
    (bin_dir / "squeue").write_text("#!/bin/sh\nexit 1\n")
    watch.refresh(lambda *_: None)
    assert watch.states is None and watch.status(_FakeSlurmJob("9_1", tmp_path)) == ("running", "")
