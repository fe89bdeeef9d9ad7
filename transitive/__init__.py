"""Plastic recurrent networks meta-trained for transitive inference and list linking.

A port of Miconi & Kay, "Neural mechanisms of relational learning and fast knowledge reassembly in plastic
neural networks" (Nature Neuroscience 2024). Modules: network, task, episode, loss, training, experiments,
io, cli.
"""
from .episode import EpisodeRecord, run_episode, run_episode_plain
from .io import ParameterFileError, load_network, save_network
from .network import NetworkState, PlasticNetwork
from .task import Trials, draw_items, present, standard_schedule

__all__ = ["EpisodeRecord", "run_episode", "run_episode_plain", "ParameterFileError", "load_network",
           "save_network", "NetworkState", "PlasticNetwork", "Trials", "draw_items", "present",
           "standard_schedule"]
