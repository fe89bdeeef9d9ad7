"""Speed of meta-training: the package's episode runner against the plain step-by-step one (`compare`), and
a population of networks trained at once against one trained alone (`population_speed`)."""
from __future__ import annotations

import time

import torch

from ..model.network import PlasticNetwork
from ..model.task import draw_items, present, standard_schedule
from ..engine.episode import run_episode, run_episode_plain
from ..training.loss import a2c_loss


def seconds_per_episode(runner, episodes: int = 3, batch: int = 32, nbcues: int = 8, device="cpu",
                        warmup: int = 1, seed: int = 0) -> float:
    """Mean wall time of one training episode (forward, loss, backward, Adam step) with `runner`."""
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        net = PlasticNetwork().to(device)
    generator = torch.Generator(device).manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-6)
    times = []
    for k in range(warmup + episodes):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trials = present(draw_items(batch, nbcues, device=device, generator=generator),
                         standard_schedule(batch, nbcues, device=device, generator=generator))
        loss = a2c_loss(runner(net, trials, generator=generator), net)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 2.0)
        optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def compare(episodes: int = 3, batch: int = 32, device="cpu") -> dict:
    fast = seconds_per_episode(run_episode, episodes, batch, device=device)
    plain = seconds_per_episode(run_episode_plain, episodes, batch, device=device)
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
    return choose(torch.empty(200, 200, device=device))


def _population_step(trainer) -> None:
    for member, _values in trainer.train_one_episode():
        member.episode += 1


def population_speed(population: int, episodes: int, batch: int = 32, device="cpu", warmup: int | None = None,
                     separate: bool | None = None) -> dict:
    """Training speed of a population of `population` networks (seeds 0..population-1) trained at once, in
    episodes per second summed over the members and per member, after `warmup` episodes (which include the
    CUDA-graph capture on a GPU). With `separate`, one network trained alone the usual way (`Trainer`) is
    timed too, its episodes alternating with the population's (so that a machine shared with other work
    slows both alike); times are medians over the episodes. Both run the same trainer (one member, or
    `population` members). Continual regime, Adam steps from the first episode, nothing saved. Defaults:
    warm-up 2 episodes on the CPU, 5 on a GPU (the kernels' compilation and the CUDA-graph capture happen
    there); `separate` when the population has more than one member. On CUDA the peak GPU memory is
    reported too."""
    import statistics
    import tempfile

    from ..training.trainer import TrainConfig, Trainer

    cuda = torch.device(device).type == "cuda"
    warmup = (5 if cuda else 2) if warmup is None else warmup
    separate = population > 1 if separate is None else separate
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig(episodes=warmup + episodes + 1, batch=batch, burn_in=0, device=str(device))
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
        if alone is not None:
            one = statistics.median(single)
            result.update(separate_seconds_per_episode=one, separate_episodes_per_second=1 / one,
                          member_episode_vs_separate=seconds / population / one)  # < 1: the population is faster
    return result
