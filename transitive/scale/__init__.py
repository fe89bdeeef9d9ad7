"""Scale: seed sweeps (on this machine or a cluster through submitit), their jobs, and the speed benchmark.

Layer 4 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the model, the
engine and training.
"""
