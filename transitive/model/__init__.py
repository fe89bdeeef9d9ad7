"""The model: the plastic recurrent network, the transitive-inference task, its schedules and the parameter files.

Layer 1 of 7 (model, engine, training, scale, evaluation, figures, interface); it imports nothing from the
package outside itself. The parameter files (io) sit here because every layer above reads or writes them.
"""
from .io import ParameterFileError, load_network, save_network
from .network import NetworkState, PlasticNetwork
from .task import Trials, draw_items, present, standard_schedule

__all__ = ["ParameterFileError", "load_network", "save_network", "NetworkState", "PlasticNetwork", "Trials",
           "draw_items", "present", "standard_schedule"]
