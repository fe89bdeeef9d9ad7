"""The default thread count on a shared machine (transitive.interface.threads) and OpenMP's wait policy.

Behaviour, not timing: given the cores and how many other processes keep busy, which thread count is chosen;
an explicit choice wins; and OpenMP (libgomp) really starts with waiting threads that sleep.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
import torch

from transitive.interface import threads
from transitive.interface.options import set_threads


@pytest.mark.parametrize("cpus, busy, ceiling, expected", [
    (2, 0.0, 2, 2),    # a quiet 2-core machine: torch's own 2
    (2, 0.4, 2, 2),    # a little background work does not take a core
    (2, 0.6, 2, 1),    # one core mostly busy
    (2, 1.0, 2, 1),
    (2, 2.0, 2, 1),    # both cores taken by other jobs: one thread, never zero
    (2, 9.0, 2, 1),
    (16, 3.0, 8, 8),   # never more than torch's choice (its physical cores)
    (16, 12.2, 8, 4),
    (1, 0.0, 1, 1),
])
def test_threads_are_the_free_cores_at_most_torchs_choice(cpus, busy, ceiling, expected):
    assert threads.threads_for(cpus, busy, ceiling) == expected


def test_an_explicit_count_wins_over_a_busy_machine():
    choice = threads.choose_threads(explicit=2, cpus=2, busy=5.0, ceiling=2, environ={})
    assert choice.threads == 2 and not choice.lowered and "as asked" in choice.why


def test_omp_num_threads_in_the_environment_keeps_torchs_count():
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        choice = threads.choose_threads(cpus=2, busy=2.0, ceiling=2, environ={name: "2"})
        assert choice.threads is None and name in choice.why


def test_a_busy_machine_lowers_the_count_and_says_so():
    choice = threads.choose_threads(cpus=2, busy=1.9, ceiling=2, environ={})
    assert (choice.threads, choice.lowered) == (1, True)
    assert choice.why == "1 thread (2 cores, 1.9 kept busy by other processes)"
    quiet = threads.choose_threads(cpus=2, busy=0.1, ceiling=2, environ={})
    assert (quiet.threads, quiet.lowered) == (2, False)


def test_busy_is_the_larger_of_the_load_average_and_the_processes_running_now(monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    readings = iter([3, 2, 4, 2, 5])  # others running now, read 5 times: a passing process does not count
    monkeypatch.setattr(threads, "_running_others", lambda: next(readings))
    assert threads.busy_cpus(pause=0) == 2
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.5, 0.0, 0.0))  # jobs that just paused
    monkeypatch.setattr(threads, "_running_others", lambda: 0)
    assert threads.busy_cpus(pause=0) == 3.5
    monkeypatch.setattr(threads, "_running_others", lambda: None)  # no /proc/loadavg
    assert threads.busy_cpus(pause=0) == 3.5


def test_a_container_quota_lowers_the_usable_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.usable_cpus() == 8
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.usable_cpus() == 2
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.2)
    assert threads.usable_cpus() == 1


@pytest.fixture
def two_threads_by_default():
    """torch's own choice as on a 2-core machine (the suite runs with 1), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_commands_use_the_free_cores_unless_told(monkeypatch, capsys, two_threads_by_default):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(threads, "busy_cpus", lambda: 2.0)  # two other jobs
    set_threads(argparse.Namespace(threads=None, quiet=False))
    assert torch.get_num_threads() == 1
    assert capsys.readouterr().err == ("busy machine: torch uses 1 thread (2 cores, 2.0 kept busy by other "
                                       "processes); --threads N to choose\n")
    set_threads(argparse.Namespace(threads=2, quiet=False))  # --threads 2 wins
    assert torch.get_num_threads() == 2 and capsys.readouterr().err == ""
    set_threads(argparse.Namespace(threads=None, quiet=True))  # --quiet: the same choice, no line
    assert torch.get_num_threads() == 1 and capsys.readouterr().err == ""
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "busy_cpus", lambda: 0.0)  # a quiet machine: torch's own 2, nothing said
    set_threads(argparse.Namespace(threads=None, quiet=False))
    assert torch.get_num_threads() == 2 and capsys.readouterr().err == ""


def _openmp_settings(code: str, **environ) -> str:
    """What libgomp says it started with (OMP_DISPLAY_ENV=VERBOSE) in a fresh Python running `code`."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(OMP_DISPLAY_ENV="VERBOSE", **environ)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if "GOMP_SPINCOUNT" not in result.stderr:
        pytest.skip("torch's OpenMP is not GNU libgomp here: it does not show its wait policy")
    return result.stderr


@pytest.mark.parametrize("entry", ["import transitive", "from transitive.interface.cli import main"])
def test_openmp_threads_sleep_when_they_wait(entry):
    """Importing the package (the notebook's library cell; the command line's entry point) before torch makes
    OpenMP's waiting threads sleep at once: no spinning (GOMP_SPINCOUNT 0). Without it libgomp spins."""
    assert "GOMP_SPINCOUNT = '0'" in _openmp_settings(f"{entry}\nimport torch")
    assert "GOMP_SPINCOUNT = '0'" not in _openmp_settings("import torch")  # what torch does by itself
    kept = _openmp_settings(f"{entry}\nimport torch", OMP_WAIT_POLICY="ACTIVE")  # the user's choice stays
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in kept
