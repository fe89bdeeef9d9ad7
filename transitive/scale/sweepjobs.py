"""The jobs of a seed sweep (see `transitive.scale.sweep`): one seed, or a population of seeds, trained in a worker
thread so that the main thread stays free for submitit's checkpointing signal.

On preemption or shortly before the time limit, SLURM (or submitit's local controller) sends SIGUSR2;
submitit then calls the job's `checkpoint()`, which asks the training to stop after the current episode,
waits until it has saved, and returns a new submission of the same job, which resumes from the checkpoint.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace

from ..training.trainer import TrainConfig, Trainer, paths_for, read_curve

class _BackgroundTraining:
    """What both jobs share: the training runs in a worker thread so that the main thread stays free for
    submitit's signal handler; SIGTERM and Ctrl-C stop it after the current episode (it saves), and
    `checkpoint()` does the same, then hands submitit a resubmission of the same job."""

    name = "training"

    def __getstate__(self):  # the thread and trainer never travel in a pickle
        state = dict(self.__dict__)
        state["_trainer"] = state["_thread"] = None
        return state

    def _device_config(self) -> TrainConfig:
        import torch
        if self.threads:
            torch.set_num_threads(self.threads)
        config = replace(self.config)
        if config.device == "auto":
            config.device = "cuda" if torch.cuda.is_available() else "cpu"
        return config

    def _train_in_thread(self, trainer) -> None:
        import torch
        self._trainer = trainer
        error: list[BaseException] = []

        def work():
            try:
                if self.threads:  # (OpenMP settings can be per thread)
                    torch.set_num_threads(self.threads)
                trainer.train()
            except BaseException as exc:  # handed to the main thread
                error.append(exc)

        def terminate(signum, frame):  # SIGTERM (e.g. preemption without SIGUSR2): save and end the job
            print(f"{self.name}: SIGTERM, stopping after the current episode", flush=True)
            trainer.stop_requested = True

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, terminate)
        self._thread = threading.Thread(target=work, name=f"train-{self.name.replace(' ', '-')}", daemon=True)
        self._thread.start()
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)  # the main thread stays free for submitit's signal handler
        except KeyboardInterrupt:  # cancelled: save after the current episode, then stop
            self._stop(wait_s=120)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if error:
            raise error[0]

    def _stop(self, wait_s: float) -> None:
        if self._trainer is not None:
            self._trainer.stop_requested = True
        if self._thread is not None:
            self._thread.join(timeout=wait_s)

    def _where(self) -> str:
        return "?"

    def _again(self):
        raise NotImplementedError

    def checkpoint(self, *args, **kwargs):
        """submitit's protocol: called on preemption / time-out; returns the submission that resumes."""
        import submitit
        self._stop(wait_s=60)  # finish the current episode and save (within SLURM's signal delay)
        print(f"{self.name}: checkpointed at {self._where()}; requeued, will resume", flush=True)
        return submitit.helpers.DelayedSubmission(self._again())


def _outcome(trainer, params) -> dict:
    recent = trainer.curve[-10:]
    return {"seed": trainer.config.seed, "episode": trainer.episode, "episodes": trainer.config.episodes,
            "finished": trainer.episode >= trainer.config.episodes,
            "final_percent_correct": sum(r["percent_correct"] for r in recent) / len(recent) if recent else None,
            "params": str(params)}


class TrainingJob(_BackgroundTraining):
    """The callable submitted for one seed: `job()` trains (resuming if a checkpoint exists)."""

    def __init__(self, config: TrainConfig, params, threads: int | None = None):
        self.config, self.params, self.threads = config, str(params), threads
        self._trainer = None
        self._thread = None

    @property
    def name(self) -> str:
        return f"seed {self.config.seed}"

    def __call__(self) -> dict:
        import torch
        config = self._device_config()
        trainer = Trainer(config, self.params, resume=True, progress=False)
        trainer.on_save = _progress_line(trainer)
        verb = f"resuming at episode {trainer.episode}" if trainer.episode else "starting"
        print(f"seed {config.seed}: {verb} of {config.episodes} ({config.regime} regime, batch {config.batch}, "
              f"{config.device}, {torch.get_num_threads()} threads) -> {self.params}", flush=True)
        self._train_in_thread(trainer)
        return _outcome(trainer, self.params)

    def _where(self) -> str:
        return f"episode {self._trainer.episode if self._trainer is not None else '?'}"

    def _again(self):
        return TrainingJob(self.config, self.params, self.threads)


class PopulationJob(_BackgroundTraining):
    """The callable submitted for a group of seeds trained at once (a `Trainer` with several members): `job()`
    trains them (each resuming from its checkpoint if it has one) and returns {"population": [per-seed
    outcome]}."""

    def __init__(self, config: TrainConfig, out, seeds, threads: int | None = None):
        self.config, self.out, self.seeds, self.threads = config, str(out), [int(s) for s in seeds], threads
        self._trainer = None
        self._thread = None

    @property
    def name(self) -> str:
        return f"seeds {','.join(map(str, self.seeds))}"

    def __call__(self) -> dict:
        import torch
        config = self._device_config()
        trainer = Trainer(config, self.out, resume=True, progress=False, seeds=self.seeds)
        trainer.on_save = _progress_line(trainer)
        for member in trainer.members:
            verb = f"resuming at episode {member.episode}" if member.episode else "starting"
            print(f"seed {member.config.seed}: {verb} of {config.episodes} in a population of {len(self.seeds)} "
                  f"({config.device}, {torch.get_num_threads()} threads) -> {member.paths['params']}", flush=True)
        self._train_in_thread(trainer)
        return {"population": [_outcome(m, m.paths["params"]) for m in trainer.members]}

    def _where(self) -> str:
        return f"episodes {[m.episode for m in self._trainer.members] if self._trainer is not None else '?'}"

    def _again(self):
        return PopulationJob(self.config, self.out, self.seeds, self.threads)


def _progress_line(trainer: Trainer):
    """After each save of a member: a progress line in the job's log (episodes per second since the job
    started)."""
    began, firsts = time.time(), {id(m): m.episode for m in trainer.members}

    def report(member) -> None:
        first = firsts[id(member)]
        recent = member.curve[-10:]
        correct = sum(r["percent_correct"] for r in recent) / len(recent) if recent else float("nan")
        elapsed = time.time() - began
        rate = (member.episode - first) / elapsed if elapsed > 0 else float("nan")
        print(f"seed {member.config.seed}: episode {member.episode}/{member.config.episodes}, recent test-trial "
              f"correct {correct:.1f}%, {rate:.2f} episodes/s, saved {member.paths['params']}", flush=True)
    return report


def job_seed_result(outcome: dict, seed: int) -> dict:
    """One seed's outcome from a job's result (a single seed's dict, or a population's)."""
    if "population" in outcome:
        for entry in outcome["population"]:
            if entry["seed"] == seed:
                return entry
        return {"seed": seed, "error": "not in its job's result"}
    return outcome


def checkpoint_episode(params) -> tuple[int | None, dict | None]:
    """(episode, config) saved in the checkpoint beside `params`, or (None, None) if there is none."""
    from ..model.io import read_torch_file
    checkpoint = paths_for(params)["checkpoint"]
    if not checkpoint.exists():
        return None, None
    saved = read_torch_file(checkpoint, what="checkpoint")
    return int(saved["episode"]), saved.get("config")


def curve_episode(params) -> int | None:
    """1 + the last episode logged in the learning curve beside `params` (None without a curve)."""
    curve = paths_for(params)["curve"]
    if not curve.exists():
        return None
    try:
        rows = read_curve(curve)
    except (OSError, ValueError, KeyError):
        return None
    return int(rows[-1]["episode"]) + 1 if rows else 0
