"""Speed of meta-training: the package's episode runner against the plain step-by-step one, same run."""
from __future__ import annotations

import time

import torch

from .episode import run_episode, run_episode_plain
from .loss import a2c_loss
from .network import PlasticNetwork
from .task import draw_items, present, standard_schedule


def seconds_per_episode(runner, episodes: int = 3, batch: int = 32, nbcues: int = 8, device="cpu",
                        warmup: int = 1, seed: int = 0) -> float:
    """Mean wall time of one training episode (forward, loss, backward, Adam step) with `runner`."""
    torch.manual_seed(seed)
    net = PlasticNetwork().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-6)
    times = []
    for k in range(warmup + episodes):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trials = present(draw_items(batch, nbcues, device=device), standard_schedule(batch, nbcues, device=device))
        loss = a2c_loss(runner(net, trials), net)
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
