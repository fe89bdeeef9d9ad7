"""The engine: one episode of K networks x a batch, through one of three backends of the same trial loop
(PyTorch, the CPU C++ kernel, the Triton GPU kernels), and the plain step-by-step runner that defines them.

Layer 2 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the model.
"""
from .episode import run_episode, run_episode_plain
from .members import EpisodeRecord, run_members

__all__ = ["run_episode", "run_episode_plain", "EpisodeRecord", "run_members"]
