"""Evaluation: the experiments run on a trained network (each run once and kept by `Runs`), their records,
the statistics and analyses of the paper's figures, the classification of a network, and the key numbers.

Layer 5 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the layers
below it.
"""
from .runs import Run, Runs, Settings

__all__ = ["Run", "Runs", "Settings"]
