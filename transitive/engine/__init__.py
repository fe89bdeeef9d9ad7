"""The engine: one episode of K networks x a batch, through one of three backends of the same trial loop
(the networks' own definition step by step, the CPU C++ kernel, the Triton GPU kernels), behind one entry
point (`run_episodes`; `run_episode` for one network).

Layer 2 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the model.
"""
from .episode import Episodes, run_episode, run_episodes
from .record import EpisodeRecord

__all__ = ["Episodes", "EpisodeRecord", "run_episode", "run_episodes"]
