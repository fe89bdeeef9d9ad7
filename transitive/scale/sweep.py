"""Seed sweeps: one meta-training per seed, run through submitit (SLURM on a cluster, or this machine).

Layout of a sweep folder DIR:

    DIR/seed_<k>/net.dat   net.ckpt   net.csv     what `transitive.training.trainer` writes for out=DIR/seed_<k>/net.dat
    DIR/logs/                                    submitit's pickles and each job's stdout / stderr
    DIR/sweep.json                               the settings and the job id last submitted for each seed

Resuming. Every job trains with `resume=True`, so a job that starts where a checkpoint exists continues
from it. Jobs follow submitit's checkpointing protocol: on preemption or shortly before the time limit,
SLURM (or submitit's local controller) sends SIGUSR2; submitit then calls `TrainingJob.checkpoint()`,
which asks the training to stop after the current episode, waits until it has saved, and returns a new
submission of the same job; submitit requeues it, and the requeued job resumes from the checkpoint. To run
the training while the main thread stays free for that signal, the job trains in a worker thread. A plain
SIGTERM (or Ctrl-C, SIGINT) also stops the training after the current episode and saves; the job then ends
unfinished, and SLURM's own requeue or re-running the sweep resumes it. The jobs are in `sweepjobs`, the
Fig. 1f summary of a sweep folder in `curves`; following the jobs to their end (`--wait`) in `sweepwait`.

Populations. With `population=K` (> 1) the seeds still to train are grouped K per job, in seed order, and
each job trains its K seeds at once in one process (`transitive.training.trainer.Trainer` with seeds);
every seed keeps its own folder and checkpoint, so resuming, skipping and preemption work seed by seed as above.

Re-running the same sweep command skips seeds whose checkpoint has reached the final episode, skips seeds
whose last submitted job is still queued or running, and submits the others (resuming where a checkpoint
exists). A checkpoint made with other settings is reported and its seed left alone.

Ctrl-C. Local jobs ignore Ctrl-C (they are started with it ignored): on Ctrl-C the sweep asks each running
local job to stop (SIGTERM: it saves after its current episode), waits for them, and raises
`SweepInterrupted` saying the episode each seed reached; running the same sweep again resumes them. To stop
a local job yourself, send SIGTERM to its controller (its job id). SLURM jobs are left running.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..training.config import (RESUME_MAY_CHANGE, seed_params)  # the seed-folder layout (re-exported for the sweep's users)
from ..training.trainer import TrainConfig, paths_for, read_curve
from ..model.errors import OneLineError
from .sweepjobs import PopulationJob, TrainingJob, checkpoint_episode, curve_episode  # noqa: F401 (re-exported)
from .sweepwait import follow, interrupted, squeue_states

RECORD_NAME = "sweep.json"
EXECUTORS = ("slurm", "local")


class SweepError(OneLineError):
    """A sweep that cannot be run as asked; the message is one line for the user."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C while the sweep submits or follows its jobs: the message is one line saying where each seed
    stopped and what was kept (local jobs were asked to save and stop first)."""


# ---------------------------------------------------------------------------------------------------------
# Seeds and folders.

def parse_seeds(text: str) -> list[int]:
    """'0-29' or '0,3,5-7' -> sorted list of distinct seeds."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise SweepError(f"cannot read seeds {text!r}: use e.g. 0-29 or 0,3,5-7")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise SweepError(f"empty seed range {part!r}")
        seeds.update(range(low, high + 1))
    return sorted(seeds)


def seed_folders(out) -> dict[int, Path]:
    """Seed -> its folder, for every seed_<k> folder under `out`."""
    found = {}
    for path in Path(out).glob("seed_*"):
        match = re.fullmatch(r"seed_(\d+)", path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


# ---------------------------------------------------------------------------------------------------------
# Where a seed stands.

@dataclass
class SeedState:
    seed: int
    episode: int  # episodes done according to the checkpoint (or the curve), 0 if none
    episodes: int  # the episode to reach
    action: str  # "skip" (finished), "running" (its job is still queued or running), "resume", "start", "conflict"
    note: str = ""


def _settings_differ(saved: dict, config: TrainConfig) -> list[str]:
    try:
        saved_config = asdict(TrainConfig.from_dict(saved))
    except (TypeError, KeyError):
        return ["<unreadable config>"]
    wanted = asdict(config)
    return sorted(k for k, v in saved_config.items() if k not in RESUME_MAY_CHANGE and v != wanted.get(k))


def seed_state(out, seed: int, config: TrainConfig) -> SeedState:
    params = seed_params(out, seed)
    episode, saved = checkpoint_episode(params)
    if episode is not None:
        differ = _settings_differ(saved, replace(config, seed=seed))
        if differ:
            return SeedState(seed, episode, config.episodes, "conflict",
                             f"checkpoint made with other settings ({', '.join(differ)})")
        if episode >= config.episodes:
            return SeedState(seed, episode, config.episodes, "skip", "finished")
        return SeedState(seed, episode, config.episodes, "resume", f"resume at episode {episode}")
    logged = curve_episode(params)
    if logged is not None and params.exists() and logged >= config.episodes - config.log_every + 1:
        return SeedState(seed, config.episodes, config.episodes, "skip", "finished (curve; no checkpoint)")
    note = "start" if logged is None else f"no checkpoint: restarts (curve had {logged} episodes)"
    return SeedState(seed, 0, config.episodes, "start", note)


# ---------------------------------------------------------------------------------------------------------
# Submission.

@dataclass
class Resources:
    executor: str = "local"
    partition: str | None = None
    time_min: int = 24 * 60
    gpus: int = 0
    cpus: int = 1  # also the torch threads of the job: one thread per seed is the best use of cores
    mem_gb: float | None = 4
    parallel: int | None = None  # local: jobs at once (default 1); slurm: array parallelism (default all)
    max_timeouts: int = 3


def make_executor(resources: Resources, logs):
    """A submitit executor for the resources; each job's stdout and stderr go to logs/<job id>_0_log.out/.err."""
    import submitit
    if resources.executor not in EXECUTORS:
        raise SweepError(f"executor must be one of {EXECUTORS}, not {resources.executor!r}")
    folder = Path(logs)
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=resources.executor,
                                         slurm_max_num_timeout=resources.max_timeouts,
                                         local_max_num_timeout=resources.max_timeouts)
    except RuntimeError as error:  # no srun on this machine
        raise SweepError(f"cannot use SLURM here: {error}") from None
    parameters = {"timeout_min": int(resources.time_min), "gpus_per_node": int(resources.gpus),
                  "cpus_per_task": int(resources.cpus), "name": "transitive-sweep"}
    if resources.mem_gb:
        parameters["mem_gb"] = resources.mem_gb
    if resources.executor == "slurm":
        parameters["slurm_signal_delay_s"] = 120
        if resources.partition:
            parameters["slurm_partition"] = resources.partition
        if resources.parallel:
            parameters["slurm_array_parallelism"] = int(resources.parallel)
    executor.update_parameters(**parameters)
    return executor


def _record_path(out) -> Path:
    return Path(out) / RECORD_NAME


def read_record(out) -> dict:
    path = _record_path(out)
    if not path.exists():
        return {"jobs": {}}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"jobs": {}}


def _write_record(out, record: dict) -> None:
    from ..model.io import atomic_write_text
    atomic_write_text(json.dumps(record, indent=1, sort_keys=True), _record_path(out))


def job_alive(entry: dict) -> bool | None:
    """Whether a recorded job is still queued or running (None: cannot tell)."""
    job_id, executor = str(entry.get("job_id", "")), entry.get("executor")
    if executor == "local":
        try:
            pid = int(job_id)
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        try:  # a recycled pid is not our job
            return "submitit" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return True
    if executor == "slurm":
        states = squeue_states()  # every job of ours that SLURM still lists: queued, running, requeued
        return None if states is None else job_id in states
    return None


def plan_sweep(seeds, out, config: TrainConfig, check_jobs: bool = True) -> list[SeedState]:
    """Where each seed stands and what the sweep will do with it."""
    record = read_record(out) if check_jobs else {"jobs": {}}
    states = []
    for seed in seeds:
        state = seed_state(out, seed, replace(config, seed=seed))
        entry = record["jobs"].get(str(seed))
        if state.action in ("resume", "start") and entry and job_alive(entry):
            state = replace(state, action="running", note=f"job {entry['job_id']} still queued or running")
        states.append(state)
    return states


def group_seeds(seeds, population: int) -> list[tuple[int, ...]]:
    """Seeds in order, `population` per group (the last group may be smaller)."""
    seeds = list(seeds)
    return [tuple(seeds[i:i + population]) for i in range(0, len(seeds), population)]


def run_sweep(seeds, out, config: TrainConfig | None = None, resources: Resources | None = None,
              wait: bool = False, poll_s: float = 60.0, echo=print, population: int = 1, **settings) -> dict:
    """Submit one training per seed that is not finished yet; optionally wait for all of them.

    `config`: the training settings of every seed (its seed and device are the sweep's: each job picks its
    device); default the paper's. `settings`: TrainConfig fields that replace config's (episodes=..., for
    tests and variants). `population` K > 1: the seeds to train go K per job, trained at once in one process
    (with `resources.gpus` 1, one job per GPU). With the local executor at most
    `resources.parallel` jobs (default 1) run at once: if more are waiting, this call stays until all are
    submitted, and it waits for the end when `wait` is true. Returns {"states": [...], "jobs": {seed: job},
    "results": {seed: outcome}} (the seeds of one job share it).
    """
    resources = resources or Resources()
    out = Path(out)
    if not isinstance(population, int) or population < 1:
        raise SweepError(f"population must be a positive whole number, not {population!r}")
    try:
        config = replace(config or TrainConfig(), device="auto", **settings)
        replace(config, device="cpu").validate()
    except (TypeError, ValueError) as error:
        raise SweepError(str(error)) from None
    states = plan_sweep(seeds, out, config)
    for state in states:
        echo(f"seed {state.seed}: {state.note}" if state.action != "start" else f"seed {state.seed}: start")
    todo = [s.seed for s in states if s.action in ("resume", "start")]
    record = read_record(out)
    record.update({"executor": resources.executor, "episodes": config.episodes, "regime": config.regime,
                   "config": {k: v for k, v in asdict(config).items() if k not in ("seed", "device")}})
    if population > 1:
        record["population"] = population
    record.setdefault("jobs", {})
    result = {"states": states, "jobs": {}, "results": {}}
    if not todo:
        echo("nothing to submit: every seed is finished, queued or running" if states else "no seeds")
        return result
    try:
        _submit(group_seeds(todo, population), out, config, seeds, resources, record, result, population, wait,
                poll_s, echo)
    except KeyboardInterrupt:
        raise SweepInterrupted(interrupted(result, out, seeds, config, resources, echo)) from None
    return result


@contextmanager
def _jobs_ignore_ctrl_c(local: bool):
    """Local jobs are started with Ctrl-C ignored (processes inherit it): the terminal sends Ctrl-C to the
    whole process group, and submitit's local controller would answer it by killing its job within a
    second, before it saves. The sweep hears it instead and asks each job to stop (`_interrupted`)."""
    if not local or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _job_for(group, out, config: TrainConfig, population: int, resources: Resources):
    """The job that trains a group of seeds: one seed's TrainingJob, or a PopulationJob."""
    for seed in group:
        seed_params(out, seed).parent.mkdir(parents=True, exist_ok=True)
    if population == 1:
        return TrainingJob(replace(config, seed=group[0]), seed_params(out, group[0]), threads=resources.cpus)
    return PopulationJob(config, out, group, threads=resources.cpus)


def _submit(groups, out, config, seeds, resources: Resources, record: dict, result: dict, population: int,
            wait: bool, poll_s: float, echo) -> None:
    """Submit the groups' jobs (SLURM: all at once, as one array; local: as many as `resources.parallel`
    allows, then the others as slots free up), recording each in sweep.json; follow them if asked."""
    logs = out / "logs"
    executor = make_executor(resources, logs)

    def submit(group):
        with _jobs_ignore_ctrl_c(resources.executor == "local"):
            job = executor.submit(_job_for(group, out, config, population, resources))
        remember(group, job)

    def remember(group, job):
        entry = {"job_id": str(job.job_id), "executor": resources.executor,
                 "submitted": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}
        if population > 1:
            entry["seeds"] = list(group)
        for seed in group:
            result["jobs"][seed] = job
            record["jobs"][str(seed)] = dict(entry)
        _write_record(out, record)
        name = f"seed {group[0]}" if len(group) == 1 else f"seeds {','.join(map(str, group))}"
        echo(f"{name}: submitted job {job.job_id}; log {job.paths.stdout}")

    if resources.executor == "slurm":
        with executor.batch():
            pending = [(group, executor.submit(_job_for(group, out, config, population, resources)))
                       for group in groups]
        for group, job in pending:
            remember(group, job)
        echo(f"{len(pending)} jobs submitted to SLURM; logs in {logs}/")
        waiting: list[tuple[int, ...]] = []
    else:
        slots = max(1, resources.parallel or 1)
        waiting = list(groups)
        while waiting and _job_count(result["jobs"]) < slots:
            submit(waiting.pop(0))
        if waiting:
            echo(f"{len(waiting)} more jobs wait for a free slot ({slots} at once); staying to submit them")
    if wait or waiting:
        follow(result, out, config, seeds, waiting, submit, resources, poll_s, echo, wait)


def _job_count(jobs: dict) -> int:
    return len({id(job) for job in jobs.values()})
