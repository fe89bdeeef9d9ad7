"""Figures: plotting the paper's panels, the registry of figures (`registry`), the figures themselves (`panels`) and
Fig. 1f from a sweep (`curves`).

Layer 6 of 7 (model, engine, training, scale, evaluation, figures, interface); it may import the layers
below it. The plots use matplotlib without pyplot (safe with any backend, in threads and in Colab).

Each `plot_*` function takes numbers (see `stats` and `analysis`) and returns a `matplotlib.figure.Figure`;
`save_figure` writes it as PNG and PDF (`save_figures` several, optionally in worker processes). Callers
pass 0-based trial and step indices; titles and axes use the paper's numbering: trials 1-30 (0-based trial t is "trial t+1") and steps 1-4 (stimulus, response,
feedback, delay). One module per kind of figure: behaviour, neuromodulation, representations.
"""
from .behaviour import (draw_pair_performance, macaque_percent_correct, plot_accuracy_bars, plot_error_by_distance,
                        plot_learning_curves, plot_pair_performance, plot_toy_model, plot_treichler)
from .common import STEPS, format_p, save_figure, save_figures
from .neuromodulation import plot_traces, plot_violin, plot_zoom
from .representations import (plot_alignment_changes, plot_decoding, plot_item_alignment, plot_last_trial_items,
                              plot_last_trial_rates, plot_matrices, plot_pca, plot_recoded_output, plot_reinstatement,
                              plot_reinstatement_heatmap, plot_reinstatement_vs_change)

__all__ = ["draw_pair_performance", "macaque_percent_correct", "plot_accuracy_bars", "plot_error_by_distance",
           "plot_learning_curves", "plot_pair_performance", "plot_toy_model", "plot_treichler", "STEPS",
           "format_p", "save_figure", "save_figures", "plot_traces", "plot_violin", "plot_zoom", "plot_alignment_changes",
           "plot_decoding", "plot_item_alignment", "plot_last_trial_items", "plot_last_trial_rates", "plot_matrices",
           "plot_pca", "plot_recoded_output", "plot_reinstatement", "plot_reinstatement_heatmap",
           "plot_reinstatement_vs_change"]
