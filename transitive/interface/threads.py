"""How many CPU threads torch uses by default: as many as the machine has cores free, never more than torch's
own choice, at least one.

Why: torch's operations (and the compiled kernel) split each step among their threads and wait for the
slowest. When another process holds a core, one of the threads waits for that core at every operation, and a
job with 2 threads on a 2-core machine that another job also uses ran 3.6 times slower than with 1 thread
(docs/measurements/busy_machine_2026-12-04.md). So by default the commands and the notebook count the cores
that are free when they start: the cores this process may run on (its CPU affinity, and the container's CPU
quota when there is one) less those that other processes keep busy. "Busy" is the larger of two readings of
the Linux load (/proc/loadavg): the average number of running processes over the last minute, and the number
running now besides this one (the fewest of a few readings 20 ms apart, so that a process that only passes
by does not count). An explicit choice always wins: `--threads N`, or OMP_NUM_THREADS / MKL_NUM_THREADS set
in the environment (torch then keeps what they say).

The other half of the remedy is in transitive/__init__.py: OMP_WAIT_POLICY=PASSIVE (unless set otherwise)
before torch starts OpenMP, so that a thread waiting for the others sleeps instead of spinning on a core that
another thread (ours or another process's) needs.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

# Variables with which the user chooses the thread count themselves (torch reads them when it starts).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_for(cpus: int, busy: float, ceiling: int) -> int:
    """Threads for a machine with `cpus` usable cores of which `busy` are kept busy by other processes: the free
    cores (a busy reading is rounded to the nearest whole core), at most `ceiling` (torch's own choice), at least 1."""
    free = cpus - math.floor(busy + 0.5)
    return max(1, min(ceiling, free))


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity, lowered to the container's CPU quota (cgroup v2
    cpu.max or v1 cfs_quota_us) when there is one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def _cgroup_quota() -> float | None:
    """The container's CPU quota in cores (e.g. 1.5), or None when it has none or it cannot be read."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]  # "max 100000" when unlimited
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())  # -1 when unlimited
        period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _running_others() -> int | None:
    """Processes running now besides this one (the 4th field of /proc/loadavg, "running/total", counts this
    one too), or None where there is no /proc/loadavg."""
    try:
        running = int(open("/proc/loadavg").read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


def busy_cpus(readings: int = 5, pause: float = 0.02) -> float:
    """Cores kept busy by other processes: the larger of the 1-minute load average and the fewest processes
    running besides this one in `readings` readings `pause` seconds apart (0 where neither can be read)."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        average = 0.0
    now = []
    for k in range(readings):
        if k:
            time.sleep(pause)
        running = _running_others()
        if running is None:
            break
        now.append(running)
    return max(average, min(now) if now else 0.0)


@dataclass(frozen=True)
class ThreadChoice:
    threads: int | None  # None: torch's own choice is kept
    why: str
    lowered: bool = False  # fewer threads than torch's own choice, because other processes keep cores busy


def choose_threads(explicit: int | None = None, cpus: int | None = None, busy: float | None = None,
                   ceiling: int | None = None, environ=None) -> ThreadChoice:
    """The thread count to use: `explicit` if given; torch's own (None) when OMP_NUM_THREADS or MKL_NUM_THREADS
    is set in `environ`; else the free cores (`cpus`, `busy` and `ceiling`, torch's default, are read from the
    machine when not given)."""
    if explicit:
        return ThreadChoice(explicit, f"{explicit} thread{'s' if explicit > 1 else ''} (as asked)")
    environ = os.environ if environ is None else environ
    chosen = [name for name in THREAD_VARIABLES if environ.get(name)]
    if chosen:
        return ThreadChoice(None, f"torch's thread count ({chosen[0]}={environ[chosen[0]]})")
    if ceiling is None:
        import torch
        ceiling = torch.get_num_threads()
    cpus = usable_cpus() if cpus is None else cpus
    busy = busy_cpus() if busy is None else busy
    threads = threads_for(cpus, busy, ceiling)
    return ThreadChoice(threads, f"{threads} thread{'s' if threads > 1 else ''} ({cpus} cores, "
                                 f"{busy:.1f} kept busy by other processes)", threads < ceiling)


def use_free_cores(explicit: int | None = None, say=None) -> ThreadChoice:
    """Set torch's thread count as `choose_threads` says; `say` (e.g. print) gets one line saying why."""
    choice = choose_threads(explicit)
    if choice.threads is not None:
        import torch
        torch.set_num_threads(choice.threads)
    if say is not None:
        say(f"torch: {choice.why}")
    return choice
