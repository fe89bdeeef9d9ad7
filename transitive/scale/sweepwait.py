"""Following the jobs of a seed sweep (see `transitive.scale.sweep`) until they end, and what a Ctrl-C leaves.

Local jobs are followed through submitit (its controller process says when a job has ended). SLURM jobs are
followed through `squeue` instead, for two reasons:

- a task that SLURM requeues (`scontrol requeue`, a preemption that requeues) may end its first run with a
  result: it was stopped by SIGTERM and saved; submitit then takes the job for done while the requeued task
  is still pending or running. Here a task counts as ended only once squeue no longer lists it, and a result
  written before it was requeued is not taken for its final one.
- a task killed outright (SIGKILL, out of memory, a node failure) leaves no result, and submitit learns of its
  end only from `sacct`; where accounting does not answer it would wait for ever. Here a task that is no
  longer queued or running and has written no result is reported failed, with SLURM's state and exit code
  when `sacct` answers, or else the last error line of its own log.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from ..training.config import seed_params
from .sweepjobs import checkpoint_episode, curve_episode, job_seed_result

STOP_WAIT_S = 120  # how long an interrupted sweep waits for its local jobs to save and end
RESULT_GRACE_S = 5.0  # how long a task that left the queue may take to show its result file
QUERY_TIMEOUT_S = 30


def squeue_states() -> dict[str, tuple[str, float | None]] | None:
    """Task id ("123_4" for an array task, "123" otherwise) -> (state, start time of its current run as seconds
    since the epoch, or None), for every job of this user that SLURM still lists (queued, running, completing,
    requeued); None when squeue does not answer."""
    try:
        output = subprocess.run(["squeue", "-h", "-r", "-u", str(os.getuid()), "-o", "%i|%T|%S"], capture_output=True,
                                text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if output.returncode != 0:
        return None
    states = {}
    for line in output.stdout.splitlines():
        task, state, start = (line.strip().split("|") + ["", ""])[:3]
        if task:
            try:
                began = time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:  # N/A, Unknown
                began = None
            states[task] = (state, began)
    return states


def sacct_state(task: str) -> str | None:
    """'FAILED, exit code 9:0' for a task that accounting knows; None when sacct does not answer."""
    try:
        output = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State,ExitCode", "-j", task], capture_output=True,
                                text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split("|") for line in output.stdout.splitlines() if line.strip()]
    if output.returncode != 0 or not rows or len(rows[-1]) < 2:
        return None
    state, code = rows[-1][0].strip(), rows[-1][1].strip()
    return f"{state}, exit code {code}" if state else None


def last_error_line(log) -> str | None:
    """The last line of a job's error log that says what went wrong (a SLURM or srun error, a kill, a Python
    exception), without submitit's own notes; None if there is none."""
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return None
    wanted = re.compile(r"error|killed|cancelled|Error|Traceback|oom", re.IGNORECASE)
    for line in reversed(lines):
        line = line.strip()
        if line and not line.startswith("submitit ") and wanted.search(line):
            return line[:200]
    return None


class SlurmWatch:
    """Where each SLURM task stands, from one squeue call per poll (`refresh`).

    A task that has left the queue ended with a result if its result file was written by its last run: not
    one seen while the task was queued again (requeued), and not older than the start of the last run seen.
    """

    CLOCK_SLACK_S = 5.0  # the file's time and SLURM's may come from different clocks (a shared file system)

    def __init__(self, grace_s: float = RESULT_GRACE_S):
        self.grace_s = grace_s
        self.states: dict[str, tuple[str, float | None]] | None = {}
        self._stale: dict[str, float] = {}  # task -> time of a result file written by a run before a requeue
        self._started: dict[str, float] = {}  # task -> start of its last run seen running
        self._silent = False

    def refresh(self, echo) -> None:
        self.states = squeue_states()
        if self.states is None and not self._silent:
            echo("squeue does not answer: the jobs count as running until it does")
        self._silent = self.states is None

    def _current(self, task: str, written: float) -> bool:
        return written != self._stale.get(task) and written >= self._started.get(task, 0.0) - self.CLOCK_SLACK_S

    def status(self, job) -> tuple[str, str]:
        """("running", ""), ("result", "") when the task has ended with a result, or ("failed", why)."""
        task = str(job.job_id)
        pickle = Path(job.paths.result_pickle)
        if self.states is None or task in self.states:
            state, began = self.states[task] if self.states else ("", None)
            if began is not None and state in ("RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"):
                self._started[task] = began
            if pickle.exists():
                written = pickle.stat().st_mtime
                if state.startswith(("PENDING", "REQUEUE")) or not self._current(task, written):
                    self._stale[task] = written  # from a run before the task was queued again
            return "running", ""
        deadline = time.time() + self.grace_s
        while True:
            if pickle.exists() and self._current(task, pickle.stat().st_mtime):
                return "result", ""
            if time.time() >= deadline:
                break
            time.sleep(0.5)
        said = sacct_state(task)
        why = f"SLURM says {said}" if said else "sacct does not answer"
        logged = last_error_line(job.paths.stderr)
        if logged:
            why += f"; its log: {logged}"
        return "failed", f"left the queue without a result ({why})"


def follow(result, out, config, seeds, waiting, submit, resources, poll_s, echo, wait_all) -> None:
    """Poll jobs, print progress, submit waiting seed groups into free local slots, collect results."""
    jobs = result["jobs"]
    slots = max(1, resources.parallel or 1)
    watch = SlurmWatch() if resources.executor == "slurm" else None
    last_line, last_print = "", 0.0
    while True:
        if watch is not None:
            watch.refresh(echo)
        running: set[int] = set()
        for seed, job in jobs.items():
            if seed in result["results"]:
                continue
            if watch is not None:
                status, why = watch.status(job)
            else:
                status, why = ("result", "") if job.done() else ("running", "")
            if status == "running":
                running.add(id(job))
            elif status == "failed":
                result["results"][seed] = {"seed": seed, "error": why}
                echo(f"seed {seed}: job {job.job_id} FAILED: {why}; see {job.paths.stderr}")
            else:
                result["results"][seed] = _collect(job, seed, job_seed_result, echo)
        while waiting and len(running) < slots:
            group = waiting.pop(0)
            submit(group)
            running.add(id(jobs[group[0]]))
        progress = []
        for seed in seeds:
            ended = result["results"].get(seed, {})
            episode = ended.get("episode") if "episode" in ended else curve_episode(seed_params(out, seed))
            progress.append(f"{seed}:{episode or 0}")
        done = sum(1 for r in result["results"].values() if r.get("finished"))
        waiting_seeds = sum(len(g) for g in waiting)
        running_seeds = sum(1 for j in jobs.values() if id(j) in running)
        line = (f"[{time.strftime('%H:%M:%S')}] {done}/{len(jobs) + waiting_seeds} finished, {running_seeds} running, "
                f"{waiting_seeds} waiting; episodes per seed (of {config.episodes}; running ones: as last logged): "
                f"{' '.join(progress)}")
        now = time.time()
        if line.split("] ", 1)[1] != last_line or now - last_print > 10 * poll_s:
            echo(line)
            last_line, last_print = line.split("] ", 1)[1], now
        if not waiting and (not running or not wait_all):
            if not running:
                failed = sum(1 for r in result["results"].values() if "error" in r)
                echo(f"all jobs ended: {done} finished, {len(result['results']) - done - failed} stopped early, "
                     f"{failed} failed")
            break
        time.sleep(poll_s)


def _collect(job, seed: int, job_seed_result, echo) -> dict:
    """The outcome of a seed whose job has ended with a result (or an error raised in the job)."""
    try:
        outcome = job_seed_result(job.result(), seed)
    except Exception as error:  # the job failed: say where to look
        message = str(error).strip().splitlines()
        outcome = {"seed": seed, "error": message[-1] if message else repr(error)}
        echo(f"seed {seed}: job {job.job_id} FAILED ({outcome['error'][:200]}); see {job.paths.stderr}")
        return outcome
    if "error" in outcome:
        echo(f"seed {seed}: job {job.job_id}: {outcome['error']}")
    elif not outcome.get("finished"):
        echo(f"seed {seed}: job {job.job_id} stopped at episode {outcome.get('episode')}; "
             "run the sweep again to resume it")
    return outcome


def interrupted(result, out, seeds, config, resources, echo) -> str:
    """After Ctrl-C: local jobs are asked to stop (SIGTERM, which their controller hands on: each job saves
    after its current episode) and waited for, a second Ctrl-C ends the wait; SLURM jobs are left running.
    Returns the line that says where every seed stopped."""
    local = resources.executor == "local"
    if local:
        running = {id(job): job for job in result["jobs"].values() if not job.done()}
    else:
        listed = squeue_states()
        running = {id(job): job for job in result["jobs"].values() if listed is None or str(job.job_id) in listed}
    if local and running:
        echo(f"stopping {len(running)} running job(s): each saves after its current episode (Ctrl-C again: "
             "stop waiting)")
        deadline, asked = time.time() + STOP_WAIT_S, 0.0
        try:
            while any(not job.done() for job in running.values()) and time.time() < deadline:
                if time.time() - asked > 2:  # again: a job that was still starting may not have heard it
                    for job in running.values():
                        _ask_to_stop(job)
                    asked = time.time()
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    reached = " ".join(f"{seed}:{checkpoint_episode(seed_params(out, seed))[0] or 0}" for seed in seeds)
    still = [job for job in running.values() if local and not job.done()]
    if not local and running:
        left = f"; its {len(running)} SLURM job(s) keep running (squeue to see them, scancel to stop them)"
    elif still:
        left = f"; {len(still)} job(s) had not ended (still saving?): {', '.join(str(j.job_id) for j in still)}"
    else:
        left = ""
    return (f"interrupted (Ctrl-C): episode reached per seed, as last saved (of {config.episodes}): {reached}; each "
            f"{out}/seed_<k>/ keeps its net.dat, net.ckpt and net.csv{left}")


def _ask_to_stop(job) -> None:
    """SIGTERM to a local job's controller, which hands it on to the job (see sweepjobs)."""
    try:
        os.kill(int(job.job_id), signal.SIGTERM)
    except (ValueError, ProcessLookupError, PermissionError):
        pass
