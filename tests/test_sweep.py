"""Seed sweeps through submitit's local executor: tiny trainings, resumption, skipping, and Fig. 1f."""
import csv
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_png_drawn

from transitive.figures.curves import learning_curves
from transitive.scale.sweep import (Resources, SweepError, checkpoint_episode, make_executor,
                              parse_seeds, plan_sweep, run_sweep, seed_params)
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
