"""Plot functions on small synthetic inputs, the analyses behind Figs. 6 and 7 (selections, reinstatement vs
change, similarity preservation), the toy model's correlation sign and the withheld-pair schedules."""
import numpy as np
import pytest
import torch

from transitive.evaluation import analysis as an
from transitive import figures as fg
from transitive.evaluation import stats
from transitive.model.schedules import withheld_pair_schedule
from transitive.evaluation.stats import MACAQUE_ERRORS, MACAQUE_PAIRS

RNG = np.random.default_rng(0)


def episode_traces(episodes=4, trials=30):
    modulation = RNG.normal(0, 2, (episodes, 4 * trials))
    feedback = np.zeros((episodes, 4 * trials))
    feedback[:, 2::4] = RNG.choice([-1, 1], (episodes, trials))
    return modulation, feedback


# ---------------------------------------------------------------------------------------------------------
# Neuromodulation (Fig. 5).

def test_traces_shade_the_highlighted_trials_only_when_asked():
    modulation, feedback = episode_traces()
    plain = fg.plot_traces(modulation, feedback)
    assert len(plain.axes) == 4 and all(not ax.patches for ax in plain.axes)
    massed = fg.plot_traces(modulation, feedback, highlight=(20, 29))
    for ax in massed.axes:
        (span,) = ax.patches
        assert (span.get_x(), span.get_x() + span.get_width()) == (21, 31)  # trials 21-30 of the paper
        assert span.get_facecolor()[:3] == pytest.approx((1.0, 0.647, 0.0), abs=1e-3)  # orange
    # m(t) is blanked at the stimulus and response steps unless asked otherwise.
    m = plain.axes[0].lines[0].get_ydata()
    assert (m[0::4] == 0).all() and (m[1::4] == 0).all()
    kept = fg.plot_traces(modulation, feedback, blank_first_steps=False).axes[0].lines[0].get_ydata()
    assert np.allclose(kept, modulation[0])


def test_traces_label_the_y_axis_and_name_m_and_r_in_one_legend_for_every_panel():
    modulation, feedback = episode_traces()
    fig = fg.plot_traces(modulation, feedback)
    assert [ax.get_ylabel() for ax in fig.axes] == ["m(t), R(t)", "", "m(t), R(t)", ""]
    (legend,) = fig.legends  # the figure's, shared by the four panels
    assert [t.get_text() for t in legend.get_texts()] == ["m(t): neuromodulation", "R(t): reward perceived"]
    assert [line.get_color() for line in legend.get_lines()] == ["red", "blue"]
    assert all(ax.get_legend() is None for ax in fig.axes)


def test_zoom_spans_four_trials_and_one_step():
    modulation, feedback = episode_traces(1)
    ax = fg.plot_zoom(modulation[0], feedback[0]).axes[0]
    x, m = ax.lines[0].get_data()
    assert len(x) == 17 and x[0] == 5 and x[-1] == 9  # the 5th to 8th trials, then the 9th trial's first step
    assert np.allclose(m[2::4], modulation[0, 18:33:4])  # feedback steps of 0-based trials 4..7
    assert list(ax.get_xticks()) == [5, 6, 7, 8, 9]  # where each trial starts ...
    # ... labelled as the caption counts them: "Expanded view of trials 4-8"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "5", "6", "7", "8"]


def test_the_caption_numbers_of_trials():
    from transitive.evaluation.choices import CHANGE_TRIAL, CUE_TRIAL, VIOLIN_TRIAL, caption_trial
    assert caption_trial(CHANGE_TRIAL) == 20  # Figs. 6-8, ED Fig. 3: "trial 20" is the 19th trial
    assert caption_trial(CUE_TRIAL) == 20 and caption_trial(VIOLIN_TRIAL) == 5 and caption_trial(0) == 1


def test_m_figures_say_when_the_sign_is_the_paper_s_opposite():
    modulation, feedback = episode_traces()
    modulation[:, 3::4] = -2.0 * feedback[:, 2::4]  # the delay step: lower after a reward than after an error
    assert stats.sign_against_paper(torch.tensor(modulation), torch.tensor(feedback)) == "opposite"
    assert stats.sign_against_paper(torch.tensor(-modulation), torch.tensor(feedback)) == "same"
    flat = modulation.copy()
    flat[:, 3::4] = 0.0  # a passive network: the delay step does not depend on the reward
    assert stats.sign_against_paper(torch.tensor(flat), torch.tensor(feedback)) is None
    by_reward = {name: {"values": {1: RNG.normal(size=30), -1: RNG.normal(size=10)}, "p": 0.01}
                 for name in ("feedback", "delay")}
    for fig in (fg.plot_traces(modulation, feedback, sign="opposite"),
                fg.plot_zoom(modulation[0], feedback[0], sign="opposite"), fg.plot_violin(by_reward, 4, sign="opposite")):
        (note,) = fig.texts
        assert "opposite sign to the paper's" in note.get_text() and "arbitrary" in note.get_text()
    for sign in ("same", None):
        assert not fg.plot_zoom(modulation[0], feedback[0], sign=sign).texts


def test_violin_takes_the_stats_keys_and_numbers_trials_from_one():
    by_reward = {name: {"values": {1: RNG.normal(size=30), -1: RNG.normal(size=10)}, "p": 0.01}
                 for name in ("feedback", "delay")}
    fig = fg.plot_violin(by_reward, 4)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "m(t), trial 5"
    assert "feedback" in fig.axes[0].get_title() and "delay" in fig.axes[1].get_title()


# ---------------------------------------------------------------------------------------------------------
# Behaviour (Fig. 3).

def test_error_by_distance_always_spans_distances_one_to_seven():
    fig = fg.plot_error_by_distance({1: 0.2, 3: 0.1}, {d: 0.5 for d in range(1, 8)})
    for line in fig.axes[0].lines:
        assert list(line.get_xdata()) == list(range(1, 8))
    linked = fig.axes[0].lines[1].get_ydata()
    assert linked[0] == pytest.approx(20) and np.isnan(linked[1]) and linked[2] == pytest.approx(10)


def test_treichler_plots_macaque_percent_correct_reversed_with_labels_in_table_order():
    model = [[70.0, 80.0, 90.0], [75.0, 85.0, 95.0], [60.0, 70.0, 80.0], [65.0, 75.0, 85.0]]
    fig = fg.plot_treichler(model)
    macaques, modelled = fig.axes
    plotted = np.concatenate([line.get_ydata() for line in macaques.lines])
    table = [e for group in MACAQUE_ERRORS for e in group]
    assert np.allclose(plotted, [100 * (1 - e) for e in reversed(table)])
    assert plotted[0] == pytest.approx(94) and plotted[-1] == pytest.approx(100)  # 1 - FJ first, 1 - AE last
    labels = [t.get_text().strip() for t in macaques.get_xticklabels()]
    assert labels == [p for group in MACAQUE_PAIRS for p in group]
    assert np.allclose(np.concatenate([line.get_ydata() for line in modelled.lines]), np.ravel(model))
    assert all(ax.get_ylabel() == "% correct" for ax in fig.axes)


# ---------------------------------------------------------------------------------------------------------
# Representations (Figs. 4, 6, 7, Supplementary Fig. 5).

def test_reinstatement_vs_change_has_the_response_panel_split_by_correctness():
    n = 50
    x, y = RNG.normal(size=n), RNG.normal(size=n)
    response, correct = RNG.choice([-1, 1], n), RNG.random(n) < 0.6
    fig = fg.plot_reinstatement_vs_change(x, y, response, correct, "C", 18, order=RNG.choice([-1, 1], n))
    left, right = fig.axes
    assert sum(len(c.get_offsets()) for c in left.collections) == n
    right_correct, right_wrong = right.collections
    assert np.allclose(right_correct.get_offsets()[:, 0], (x * response)[correct])
    assert np.allclose(right_wrong.get_offsets()[:, 1], y[~correct])
    assert "Trial 20" in fig.get_suptitle()  # the 0-based trial 18, numbered as the captions number it


def test_reinstatement_vs_change_inputs_from_run_arrays():
    batch, trial = 6, 18
    pairs = torch.zeros(batch, 30, 2, dtype=torch.long)
    pairs[:, :, 1] = 1
    pairs[:3, trial] = torch.tensor([3, 4])
    pairs[3, trial] = torch.tensor([4, 3])
    cos = torch.arange(batch * 4 * 8, dtype=torch.float).reshape(batch, 4, 8)
    alignment = torch.rand(batch, 4, 8)
    response = torch.ones(batch, 30)
    response[1, trial] = -1
    correct = torch.ones(batch, 30, dtype=torch.bool)
    inputs = an.reinstatement_vs_change(cos, alignment, pairs, response, correct, trial=trial, item=2)
    assert len(inputs["reinstatement"]) == 4  # episodes 0-3 show D,E or E,D at that trial
    assert np.allclose(inputs["reinstatement"], cos[:4, 1, 2].numpy())  # the response step
    assert np.allclose(inputs["change"], (alignment[:4, 3, 2] - alignment[:4, 2, 2]).numpy())  # delay - feedback
    assert list(inputs["order"]) == [1, 1, 1, -1] and list(inputs["response"]) == [1, -1, 1, 1]


def test_first_shown_selection_with_and_without_the_added_pair():
    pairs = torch.tensor([[[0, 1]] * 20] * 4)
    pairs[:, 18] = torch.tensor([4, 3])
    pairs[1, 5] = torch.tensor([3, 4])  # D,E already shown: never selected
    pairs[2, 7] = torch.tensor([3, 2])  # C,D shown before: dropped with the added pair
    pairs[3, 18] = torch.tensor([1, 2])  # D,E not shown at trial 19
    assert stats.first_shown_at(pairs, 18).tolist() == [True, False, True, False]
    assert stats.first_shown_at(pairs, 18, add_pair=(2, 3)).tolist() == [True, False, False, False]


def test_alignment_change_numbers():
    alignment = np.zeros((3, 4, 8))
    alignment[:, 2, 1] = 1.0  # B rises at the feedback step ...
    alignment[:, 3, 1] = 0.5  # ... and falls back by half at the delay step
    numbers = an.alignment_changes(alignment)
    assert numbers["episodes"] == 3
    assert numbers["change_feedback"][1] == 1.0 and numbers["change_delay"][1] == -0.5
    assert numbers["mean"].shape == (4, 8) and not numbers["change_delay_sd"].any()


def test_similarity_preservation_matches_the_definition():
    psi1 = torch.randn(40, 8, 30, dtype=torch.float64)
    assert np.allclose(an.similarity_preservation(psi1, psi1), 1.0)
    assert np.allclose(an.similarity_preservation(psi1, -2 * psi1 + 3), 1.0)  # correlations are unchanged
    psi2 = psi1 @ torch.randn(30, 30, dtype=torch.float64) * 0.3 + torch.randn(40, 8, 30, dtype=torch.float64)
    values = an.similarity_preservation(psi1, psi2)
    upper = np.triu_indices(8, 1)
    for b in (0, 7):
        s1 = np.corrcoef(psi1[b].numpy())[upper]
        s2 = np.corrcoef(psi2[b].numpy())[upper]
        assert values[b] == pytest.approx(np.corrcoef(s1, s2)[0, 1])
    unrelated = an.similarity_preservation(psi1, torch.randn(40, 8, 30, dtype=torch.float64))
    assert abs(unrelated.mean()) < 0.15 < values.mean()
    summary = an.similarity_summary(np.append(values, np.nan))
    assert summary["episodes"] == 40 and summary["min"] <= summary["median"] <= summary["max"]
    assert summary["mean"] == pytest.approx(values.mean()) and summary["fraction_positive"] == (values > 0).mean()


def test_decoding_and_pca_number_trials_from_one():
    fig = fg.plot_decoding(RNG.random((30, 7)), an.DECODING_TARGETS)
    assert fig.axes[0].lines[0].get_xdata()[0] == 1 and fig.axes[0].lines[0].get_xdata()[-1] == 30
    result = an.pca(torch.randn(60, 10), torch.randn(10))
    fig = fg.plot_pca(result, RNG.choice([-1, 1], 60), RNG.random(60) < 0.5, RNG.random(60) < 0.8,
                      RNG.integers(0, 8, 60), trial=19)
    assert "trial 20" in fig.get_suptitle() and len(fig.axes) == 4


def test_last_trial_figures_show_one_episode():
    items = fg.plot_last_trial_items(np.sign(RNG.normal(size=(2, 15))), pair=(3, 5))
    assert len(items.axes) == 2
    assert [ax.images[0].get_array().shape for ax in items.axes] == [(15, 1), (15, 1)]
    assert "(D)" in items.axes[0].get_xlabel() and "(F)" in items.axes[1].get_xlabel()
    assert "(F)" in fg.plot_last_trial_items(np.ones((2, 15)), "DF").axes[1].get_xlabel()
    rates = fg.plot_last_trial_rates(np.tanh(RNG.normal(size=(4, 200))), "DF")
    assert rates.axes[0].images[0].get_array().shape == (200, 4) and "D, F" in rates.axes[0].get_title()


# ---------------------------------------------------------------------------------------------------------
# Toy model (Supplementary Note 2).

def test_toy_model_correlates_with_the_item_index():
    assert np.allclose(an.rank_correlation(np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])), [-1.0, 1.0])
    result = an.toy_model_comparison(episodes=200)
    for rule in ("every_trial", "errors_only"):
        corr = result[rule]["correlation"]
        assert corr[False].mean() < 0 and corr[True].mean() < corr[False].mean() - 0.1  # A (index 0) ends highest
    fig = fg.plot_toy_model(result)
    assert "item index" in fig.axes[2].get_ylabel()


# ---------------------------------------------------------------------------------------------------------
# Withheld pairs (HALFNOBARREDPAIRUNTILT18, BARREDPAIR, ADDBARREDPAIR).

def shows(pairs, pair):
    low, high = sorted(pair)
    return (pairs.min(-1).values == low) & (pairs.max(-1).values == high)


@pytest.mark.parametrize("add_pair", [None, (2, 3), (4, 5)])
def test_withheld_schedule_hides_the_pairs_in_the_upper_half_until_trial_19(add_pair):
    batch = 41
    pairs = withheld_pair_schedule(batch, add_pair=add_pair, generator=torch.Generator().manual_seed(3))
    assert pairs.shape == (batch, 30, 2)
    upper = pairs[batch // 2 + 1:]
    assert not shows(upper[:, :18], (3, 4)).any()
    assert shows(upper[:, 18], (3, 4)).all()
    assert (upper[:, 18, 0] == 3).any() and (upper[:, 18, 0] == 4).any()  # both orders occur
    assert ((upper[:, :20, 0] - upper[:, :20, 1]).abs() == 1).all()  # learning trials stay adjacent
    if add_pair is not None:
        assert not shows(upper[:, :18], add_pair).any()
        assert stats.first_shown_at(upper, 18, add_pair=add_pair).all()
    lower = pairs[:batch // 2 + 1]
    assert shows(lower[:, :18], (3, 4)).any()  # the rest follows the standard schedule
    if add_pair is not None:
        assert shows(lower[:, :18], add_pair).any()


def test_withheld_schedule_refuses_bad_pairs():
    with pytest.raises(ValueError, match="adjacent"):
        withheld_pair_schedule(8, pair=(2, 4))
    with pytest.raises(ValueError, match="next to the barred pair"):
        withheld_pair_schedule(8, add_pair=(4, 3))
    with pytest.raises(ValueError, match="learning trials"):
        withheld_pair_schedule(8, reveal_trial=25)


# ---------------------------------------------------------------------------------------------------------
# Axis limits and legends a reader can use (issue 27).

def test_alignment_changes_keep_every_error_bar_inside_the_axes():
    alignment = RNG.normal(0, 0.05, (50, 4, 8))
    alignment[:, 2:, 4] -= 0.6  # E's change at the feedback step: mean -0.6 ...
    alignment[:, 2:, 4] += RNG.normal(0, 0.25, (50, 1))  # ... with an s.d. of 0.25: past the original's -0.7
    fig = fg.plot_alignment_changes(alignment, "test")
    bottom = [ax for ax in fig.axes[4:] if ax.patches]  # the two panels of changes
    for ax in bottom:
        low, high = ax.get_ylim()
        assert ax.collections
        for line in ax.collections:  # the error bars
            for segment in line.get_segments():
                assert low <= segment[:, 1].min() and segment[:, 1].max() <= high
    assert bottom[0].get_ylim()[0] < -0.7 and bottom[0].get_ylim() == bottom[1].get_ylim()
    small = fg.plot_alignment_changes(RNG.normal(0, 0.05, (50, 4, 8)), "test")
    assert [ax.get_ylim() for ax in small.axes[:4]] == [(-0.8, 0.8)] * 4  # the original's limits when they do
    assert [ax.get_ylim() for ax in small.axes[4:] if ax.patches] == [(-0.7, 0.7)] * 2


def test_pca_legends_are_large_and_below_the_points():
    result = an.pca(torch.randn(60, 10), torch.randn(10))
    fig = fg.plot_pca(result, RNG.choice([-1, 1], 60), RNG.random(60) < 0.5, RNG.random(60) < 0.8,
                      RNG.integers(0, 4, 60), trial=19)
    for ax in fig.axes:
        legend = ax.get_legend()
        assert all(text.get_fontsize() >= 10 for text in legend.get_texts())
        assert legend.get_bbox_to_anchor().y1 < ax.get_window_extent().y0  # under the panel
