"""The interface: the command line (`transitive ...`), its shared options, and the notebook's switches.

Layer 7 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import every layer.
"""
