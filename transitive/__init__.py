"""Plastic recurrent networks meta-trained for transitive inference and list linking.

A port of Miconi & Kay, "Neural mechanisms of relational learning and fast knowledge reassembly in plastic
neural networks" (Nature Neuroscience 2024); what it computes is described in docs/method.md. The command
line is `transitive` (the same as `python -m transitive`; see `transitive --help`).
"""
import os as _os

# Before torch starts OpenMP (its first import): threads waiting for the others sleep instead of spinning, so that
# a machine shared with other work does not slow our jobs several times over (transitive/interface/threads.py).
# OMP_WAIT_POLICY=ACTIVE in the environment keeps spinning; torch imported before this package keeps its own.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib import metadata as _metadata  # noqa: E402 (after the line above on purpose)

from .engine.episode import EpisodeRecord, run_episode
from .evaluation.runs import Run, Runs, Settings
from .model.io import ParameterFileError, load_network, save_network
from .model.network import NetworkState, PlasticNetwork
from .model.task import Trials, draw_items, present, standard_schedule
from .training.trainer import TrainConfig, Trainer, train

try:
    __version__ = _metadata.version("transitive")  # pyproject.toml's version, once installed
except _metadata.PackageNotFoundError:
    __version__ = "unknown (not installed: python tools/install.py)"

__all__ = ["EpisodeRecord", "run_episode", "ParameterFileError", "load_network",
           "save_network", "NetworkState", "PlasticNetwork", "Run", "Runs", "Settings", "Trials", "draw_items",
           "present", "standard_schedule", "TrainConfig", "Trainer", "train"]
