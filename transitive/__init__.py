"""Plastic recurrent networks meta-trained for transitive inference and list linking.

A port of Miconi & Kay, "Neural mechanisms of relational learning and fast knowledge reassembly in plastic
neural networks" (Nature Neuroscience 2024); what it computes is described in docs/method.md. The command
line is `transitive` (the same as `python -m transitive`; see `transitive --help`).
"""
from importlib import metadata as _metadata

from .engine.episode import EpisodeRecord, run_episode, run_episode_plain
from .evaluation.runs import Run, Runs, Settings
from .model.io import ParameterFileError, load_network, save_network
from .model.network import NetworkState, PlasticNetwork
from .model.task import Trials, draw_items, present, standard_schedule
from .training.trainer import TrainConfig, Trainer, train

try:
    __version__ = _metadata.version("transitive")  # pyproject.toml's version, once installed
except _metadata.PackageNotFoundError:
    __version__ = "unknown (not installed: python tools/install.py)"

__all__ = ["EpisodeRecord", "run_episode", "run_episode_plain", "ParameterFileError", "load_network",
           "save_network", "NetworkState", "PlasticNetwork", "Run", "Runs", "Settings", "Trials", "draw_items",
           "present", "standard_schedule", "TrainConfig", "Trainer", "train"]
