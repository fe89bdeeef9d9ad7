"""Speed of meta-training: the package's episode runner against the networks' definition run step by step
and uncompiled (`compare`), and a population of networks trained at once against one trained alone
(`population_speed`), with the PyTorch operations and host synchronisations of its training episodes counted
(`count_work`)."""
from __future__ import annotations

import collections
import contextlib
import functools
import time

import torch

from ..model.network import PlasticNetwork
from ..model.task import draw_items, present, standard_schedule
from ..engine.episode import run_episode
from ..training.loss import a2c_loss


def training_episode(runner, network=PlasticNetwork, batch: int = 32, nbcues: int = 8, device="cpu", seed: int = 0):
    """A function that times one training episode (forward, loss, backward, Adam step) of a new network of
    class `network` (or spec, `transitive.model.variants`) with `runner`, and returns its wall time."""
    from ..model.variants import build_network
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        net = build_network(network).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-6)

    def one() -> float:
        _synchronize(device)
        start = time.perf_counter()
        trials = present(draw_items(batch, nbcues, device=device, generator=generator),
                         standard_schedule(batch, nbcues, device=device, generator=generator))
        loss = a2c_loss(runner(net, trials, generator=generator))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 2.0)
        optimizer.step()
        _synchronize(device)
        return time.perf_counter() - start
    return one


def seconds_per_episode(runner, episodes: int = 3, batch: int = 32, nbcues: int = 8, device="cpu",
                        warmup: int = 1, seed: int = 0, network=PlasticNetwork) -> float:
    """Mean wall time of one training episode (forward, loss, backward, Adam step) with `runner`."""
    one = training_episode(runner, network, batch, nbcues, device, seed)
    times = [one() for _ in range(warmup + episodes)][warmup:]
    return sum(times) / len(times)


def network_speed(network, episodes: int = 3, batch: int = 32, device="cpu", eager: bool = True) -> dict:
    """Training speed of a network class (a spec, `transitive.model.variants`) against the published network
    through its kernel, in one run: seconds per episode (medians) of the published network, of `network`'s
    own definition compiled and, with `eager`, uncompiled, their episodes alternating so that a machine shared
    with other work slows all alike. The compile (the first compiled episode, less a timed one) is apart."""
    import statistics

    from ..model.variants import class_name
    runners = {"published": training_episode(run_episode, PlasticNetwork, batch, device=device),
               "compiled": training_episode(functools.partial(run_episode, backend="compiled"), network, batch,
                                            device=device)}
    if eager:
        runners["eager"] = training_episode(functools.partial(run_episode, backend="eager"), network, batch,
                                            device=device)
    first = {name: one() for name, one in runners.items()}  # warm-up; the compile
    times = {name: [] for name in runners}
    for _ in range(episodes):
        for name, one in runners.items():
            times[name].append(one())
    seconds = {name: statistics.median(values) for name, values in times.items()}
    result = {"device": str(device), "batch": batch, "episodes": episodes, "threads": torch.get_num_threads(),
              "network": class_name(network), "published_seconds_per_episode": seconds["published"],
              "compiled_seconds_per_episode": seconds["compiled"],
              "compile_seconds": first["compiled"] - seconds["compiled"],
              "compiled_vs_published": seconds["compiled"] / seconds["published"]}
    if eager:
        result.update(eager_seconds_per_episode=seconds["eager"],
                      eager_vs_published=seconds["eager"] / seconds["published"],
                      eager_vs_compiled=seconds["eager"] / seconds["compiled"])
    return result


def compare(episodes: int = 3, batch: int = 32, device="cpu") -> dict:
    fast = seconds_per_episode(run_episode, episodes, batch, device=device)
    plain = seconds_per_episode(functools.partial(run_episode, backend="eager"), episodes, batch, device=device)
    return {"device": str(device), "batch": batch, "episodes": episodes, "threads": torch.get_num_threads(),
            "fast_seconds_per_episode": fast, "plain_seconds_per_episode": plain, "speedup": plain / fast}


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    return time.perf_counter() - start


def _backend(device) -> str:
    from ..engine.backends import choose
    from ..model.network import PlasticNetwork
    return choose([PlasticNetwork().to(device)])


def _population_step(trainer) -> None:
    for member, _values in trainer.train_one_episode():
        member.episode += 1


def population_speed(population: int, episodes: int, batch: int = 32, device="cpu", warmup: int | None = None,
                     separate: bool | None = None, counted: int = 3) -> dict:
    """Training speed of a population of `population` networks (seeds 0..population-1) trained at once, in
    episodes per second summed over the members and per member, after `warmup` episodes (which include the
    CUDA-graph capture on a GPU). With `separate`, one network trained alone the usual way (`Trainer`) is
    timed too, its episodes alternating with the population's (so that a machine shared with other work
    slows both alike); times are medians over the episodes. Both run the same trainer (one member, or
    `population` members). Continual regime, Adam steps from the first episode, nothing saved. Defaults:
    warm-up 2 episodes on the CPU, 5 on a GPU (the kernels' compilation and the CUDA-graph capture happen
    there); `separate` when the population has more than one member. On CUDA the peak GPU memory is
    reported too. Then `counted` more episodes of the population (none of them logged, one a reset) have
    their PyTorch operations and host synchronisations counted (`count_work`; 0: not counted)."""
    import statistics
    import tempfile

    from ..training.trainer import TrainConfig, Trainer

    cuda = torch.device(device).type == "cuda"
    warmup = (5 if cuda else 2) if warmup is None else warmup
    separate = population > 1 if separate is None else separate
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig(episodes=warmup + episodes + counted + 1, batch=batch, burn_in=0, device=str(device))
    result = {"device": str(device), "batch": batch, "population": population, "episodes": episodes,
              "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder, progress=False, seeds=range(population))
        alone = Trainer(config, f"{folder}/alone.dat", progress=False) if separate else None
        together, single = [], []
        for k in range(warmup + episodes):
            seconds = _timed(lambda: _population_step(trainer), device)
            if k >= warmup:
                together.append(seconds)
            if alone is not None:
                seconds = _timed(lambda: _population_step(alone), device)
                if k >= warmup:
                    single.append(seconds)
        seconds = statistics.median(together)
        result.update(backend=_backend(device), cuda_graphs=bool(trainer.cuda_graphs and trainer._graphs),
                      seconds_per_population_episode=seconds, seconds_per_member_episode=seconds / population,
                      episodes_per_second=population / seconds, episodes_per_second_per_member=1 / seconds)
        if cuda:
            result["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
        if counted:
            result.update(count_work(trainer, counted))
        if alone is not None:
            one = statistics.median(single)
            result.update(separate_seconds_per_episode=one, separate_episodes_per_second=1 / one,
                          member_episode_vs_separate=seconds / population / one)  # < 1: the population is faster
    return result


# ---------------------------------------------------------------------------------------------------------
# Counting the work of an episode: PyTorch operations and host synchronisations.

# Operations whose result the host must wait for, whatever the device: a tensor read as a Python number,
# or an output whose size depends on the values.
SYNCING_OPERATIONS = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique", "_unique2",
                      "unique_consecutive", "unique_dim", "repeat_interleave", "equal", "is_nonzero")


def _forces_sync(func, args, kwargs) -> bool:
    name = func.overloadpacket.__name__
    if name in SYNCING_OPERATIONS:  # repeat_interleave only without its output size
        return name != "repeat_interleave" or kwargs.get("output_size") is None
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):  # boolean masks become indices
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] or ())
    if name == "_to_copy":  # a tensor moved to another device (a GPU tensor read on the host)
        return "device" in kwargs and torch.device(kwargs["device"]) != args[0].device
    if name == "copy_":
        return args[0].device != args[1].device
    return False


def _optimizer_bookkeeping(name: str, args) -> bool:
    """A CPU tensor read by torch.optim itself: Adam's step counters, which stay on the CPU whatever the
    parameters' device (capturable and fused Adam keep them on the device but never read them), so the read
    waits for no device."""
    import inspect

    if name != "_local_scalar_dense" or args[0].device.type != "cpu":
        return False
    frame = inspect.currentframe()
    for _ in range(12):
        frame = frame.f_back if frame is not None else None
        if frame is not None and frame.f_globals.get("__name__", "").startswith("torch.optim"):
            return True
    return False


class WorkCounter:
    """Counts the PyTorch operations (aten operations, as a TorchDispatchMode sees them: a foreach operation
    over many tensors counts once) and the host synchronisations (the operations of SYNCING_OPERATIONS, a
    boolean-mask index, a copy between devices, and every Tensor.tolist / Tensor.numpy, which the mode does
    not see) run inside `with counter:`. `operations` and `syncs` are totals; `by_name` the operations by
    name, `syncs_by_name` the syncs by cause and `syncs_by_place` by the package's file that asked; with
    `by_phase`, the operations by the phase set in `phase` (see `count_work`)."""

    def __init__(self):
        self.operations, self.syncs = 0, 0
        self.by_name: collections.Counter = collections.Counter()
        self.by_phase: collections.Counter = collections.Counter()
        self.syncs_by_name: collections.Counter = collections.Counter()
        self.syncs_by_place: collections.Counter = collections.Counter()
        self.phase = "other"
        self._mode = None
        self._patched = {}

    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.overloadpacket.__name__
                counter.operations += 1
                counter.by_name[name] += 1
                counter.by_phase[counter.phase] += 1
                if _forces_sync(func, args, kwargs or {}) and not _optimizer_bookkeeping(name, args):
                    counter._sync(name)
                return func(*args, **(kwargs or {}))

        for method in ("tolist", "numpy"):
            original = getattr(torch.Tensor, method)
            self._patched[method] = original

            def counted(tensor, *args, _original=original, _name=method, **kwargs):
                self._sync(_name)
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, method, counted)
        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def _sync(self, name: str) -> None:
        import traceback

        self.syncs += 1
        self.syncs_by_name[name] += 1
        ours = [f.filename for f in traceback.extract_stack()[:-2] if "/transitive/" in f.filename
                and not f.filename.endswith("scale/benchmark.py")]
        self.syncs_by_place[ours[-1].rsplit("/transitive/", 1)[-1] if ours else "elsewhere"] += 1

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)
        for method, original in self._patched.items():
            setattr(torch.Tensor, method, original)
        self._patched = {}
        return False


# The phases of a training episode that `count_work` tells apart: (module, function) set the phase while
# they run; the rest (zero_grad, the finite check, the log's numbers) is "other".
PHASES = {"trials": ("transitive.training.trainer", "draw_trials"),
          "episode": ("transitive.training.trainer", "episode_loss"),
          "step": ("transitive.training.trainer", "step_members")}


def count_work(trainer, episodes: int = 3) -> dict:
    """The trainer's next `episodes` training episodes counted with a `WorkCounter`: PyTorch operations and
    host synchronisations per episode (the mean over the episodes, and the largest of one), the operations
    per episode by phase (trials: drawing them; episode: the episodes and losses, uncaptured; backward; step:
    clipping, Adam; other), and the syncs by cause and by the package's file that asked."""
    import importlib

    counters = []
    for _ in range(episodes):
        counter = WorkCounter()
        originals = []
        for phase, (module_name, function) in PHASES.items():
            module = importlib.import_module(module_name)
            if hasattr(module, function):  # (an older trainer has other functions: their work is "other")
                originals.append((module, function, getattr(module, function)))
                setattr(module, function, _in_phase(counter, phase, getattr(module, function)))
        backward = torch.Tensor.backward
        torch.Tensor.backward = _in_phase(counter, "backward", backward)
        try:
            with counter, _cuda_syncs(trainer.device) as caught:
                _population_step(trainer)
            counter.cuda_syncs = len(caught)
        finally:
            for module, function, original in originals:
                setattr(module, function, original)
            torch.Tensor.backward = backward
        counters.append(counter)

    def mean(values):
        return sum(values) / len(values)

    phases = sorted({p for c in counters for p in c.by_phase})
    return {"operations_per_episode": mean([c.operations for c in counters]),
            "operations_max": max(c.operations for c in counters),
            "operations_by_phase": {p: mean([c.by_phase[p] for c in counters]) for p in phases},
            "syncs_per_episode": mean([c.syncs for c in counters]), "syncs_max": max(c.syncs for c in counters),
            "syncs_by_cause": dict(sum((c.syncs_by_name for c in counters), collections.Counter())),
            "syncs_by_place": dict(sum((c.syncs_by_place for c in counters), collections.Counter())),
            "counted_episodes": episodes,
            **({"cuda_sync_warnings_per_episode": mean([c.cuda_syncs for c in counters])}
               if trainer.device.type == "cuda" else {})}


@contextlib.contextmanager
def _cuda_syncs(device):
    """On CUDA, PyTorch's own record of the calls that synchronise with the device (set_sync_debug_mode's
    warnings), as a list; elsewhere an empty list."""
    if torch.device(device).type != "cuda":
        yield []
        return
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")


def _in_phase(counter: WorkCounter, phase: str, function):
    def counted(*args, **kwargs):
        outer, counter.phase = counter.phase, phase
        try:
            return function(*args, **kwargs)
        finally:
            counter.phase = outer
    return counted
