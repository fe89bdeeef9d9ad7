"""Meta-training: the A2C loss and its extra terms, the configuration, the regimes (the continual curriculum),
each seed's run (SeedRun) and the trainer that runs K seeds in one engine call per episode.

Layer 3 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the model and
the engine.
"""
from .config import TrainConfig
from .loss import LossWeights
from .trainer import Trainer, read_curve, train

__all__ = ["TrainConfig", "LossWeights", "Trainer", "read_curve", "train"]
