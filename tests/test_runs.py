"""The evaluation layer: each experiment runs once per Runs, from its own generator, reduced correctly."""
from __future__ import annotations

import pytest
import torch

from conftest import reference_file
from transitive.evaluation import item_representations as rp
from transitive.evaluation import runs as runs_module
from transitive.evaluation import stats
from transitive.engine.episode import run_episode
from transitive.model.io import load_network
from transitive.model.network import PlasticNetwork
from transitive.evaluation.choices import ChoiceError
from transitive.evaluation.runs import Runs, Settings, run_experiment
from transitive.model.task import draw_items, present, standard_schedule


def net() -> PlasticNetwork:
    torch.manual_seed(0)
    return PlasticNetwork()


def small(**kwargs) -> Settings:
    return Settings(**{"batch": 20, "chunk": 8, "progress": False, **kwargs})


def test_reduction_equals_the_plain_record_and_its_snapshots():
    network = net()
    g = torch.Generator().manual_seed(5)
    pairs, items = standard_schedule(6, 8, generator=g), draw_items(6, 8, generator=g)
    run = run_experiment(network, "standard", [pairs], items, torch.Generator().manual_seed(1),
                         small(chunk=4), snapshot_trials=(18,))
    assert run.rates.shape == (6, 120, 200) and run.alignment[18].shape == (6, 4, 8)
    assert torch.allclose(run.alignment[18][:, 0], run.alignment[18][:, 1])  # P is unchanged at steps 1, 2
    assert run.final_plastic.shape == (200, 200) and run.episode_trials == (30,)
    # The first chunk again, directly: same draws from the same generator, same numbers.
    with torch.no_grad():
        record = run_episode(network, present(items[:4], pairs[:4]), snapshot_trials=(18,),
                             generator=torch.Generator().manual_seed(1))
        direct = rp.output_alignment(network, rp.psi_t2(network, rp.psi_t1(network, items[:4]),
                                                        record.snapshots[18][:, 3]))
    assert torch.equal(run.correct[:4], record.correct) and torch.allclose(run.rates[:4], record.rates)
    assert torch.allclose(direct, run.alignment[18][:4, 3], atol=1e-4)
    assert torch.equal(run.feedback[:4, 2::4], record.rewards[:, 1::4])  # the reward input at the feedback step


def test_each_experiment_runs_once_and_does_not_touch_the_global_random_state(monkeypatch):
    calls = []
    original = runs_module.run_experiment

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(runs_module, "run_experiment", counting)
    network = net()
    state = torch.get_rng_state()
    runs = Runs(network, small(), log=None)
    for _ in range(2):
        runs.standard, runs.linking, runs.sham, runs.withheld, runs.main
    assert calls == ["standard", "linking", "sham", "withheld"]
    assert runs.done() == ["standard", "withheld", "linking", "sham"]
    runs.toy
    assert runs.done() == ["standard", "withheld", "linking", "sham", "toy"]  # every cached run, none listed by hand
    assert torch.equal(state, torch.get_rng_state())


def test_results_do_not_depend_on_the_order_of_use():
    network = net()
    first = Runs(network, small(), log=None)
    first.linking, first.standard
    second = Runs(network, small(), log=None)
    second.standard, second.linking
    assert torch.equal(first.standard.correct, second.standard.correct)
    assert torch.equal(first.linking.pairs, second.linking.pairs)
    other_seed = Runs(network, small(seed=1), log=None)
    assert not torch.equal(other_seed.standard.pairs, first.standard.pairs)


def test_linking_and_sham_runs_have_three_episodes_and_score_the_last_trial():
    runs = Runs(net(), small(batch=20, linking_batch=24), log=None)
    linking, sham = runs.linking, runs.sham
    assert linking.episode_trials == (10, 10, 5) and sham.episode_trials == (10, 10, 2)
    assert linking.batch == 24 and linking.first_test_trial == 24 and linking.kept_rates is None
    assert Runs(net(), small(batch=20), log=None).settings.linking_episodes == 40  # twice the batch
    assert Runs(net(), small(batch=20, fixed_items=True), log=None).settings.linking_episodes == 20  # FIXEDCUES
    assert (linking.pairs[:, :10] < 4).all() and (linking.pairs[:, 10:20] >= 4).all()
    assert set(map(stats.pair_name, *linking.pairs[:, 20:24].reshape(-1, 2).T.tolist())) == {"DE"}
    assert (sham.pairs[:, 20] == torch.tensor([1, 2])).all()
    swapped = Runs(net(), small(linking_batch=24, first_half_first=False), log=None).linking
    assert (swapped.pairs[:, :10] >= 4).all() and (swapped.pairs[:, 10:20] < 4).all()


def test_massed_and_withheld_runs():
    runs = Runs(net(), small(massed_trials=3, massed_pair=(4, 3)), log=None)
    massed = runs.massed
    assert massed.ntrials == 33 and massed.first_test_trial == 23 and massed.highlight == (20, 22)
    assert (massed.pairs[:, 20:23] == torch.tensor([4, 3])).all()
    withheld = Runs(net(), small(batch=40), log=None).withheld
    later = withheld.pairs[40 // 2 + 1:]
    assert not any(stats.shown_at(later, t).any() for t in range(18))
    assert stats.shown_at(later, 18).all()
    assert withheld.alignment[18].shape == (40, 4, 8)


def test_modifiers_change_the_runs():
    network = net()
    plain = Runs(network, small(), log=None).standard
    fixed = Runs(network, small(fixed_items=True), log=None).standard
    assert (fixed.items == fixed.items[:1]).all() and not (plain.items == plain.items[:1]).all()
    no_learning = Runs(network, small(reset_plastic_every_trial=True), log=None).standard
    assert not torch.allclose(no_learning.rates[:, 8:], plain.rates[:, 8:])
    assert torch.allclose(no_learning.rates[:, :4], plain.rates[:, :4], atol=1e-6)  # the first trial is alike
    carried = Runs(network, small(reset_rates_every_trial=False, reset_trace_every_trial=False), log=None).standard
    assert carried.alignment[19].shape == (20, 4, 8) and carried.similarity[19].shape == (20,)
    # r and H are carried from the blank steps into trial 1 already: the stimulus step differs
    assert not torch.allclose(carried.rates[:, 0], plain.rates[:, 0], atol=1e-3)


@pytest.mark.parametrize("settings, message", [
    (dict(batch=10), "batch: expected a whole number from 20 to 100,000, got 10"),
    (dict(experiment="linked"), "experiment: expected one of standard, linking"),
    (dict(barred_pair=(3, 9)), "barred_pair: expected two different items from 0 to 7"),
    (dict(barred_pair=(2, 4)), "barred_pair: expected two adjacent items"),
    (dict(massed_pair=(5, 5)), "massed_pair: expected two different items"),
    (dict(add_barred_pair=(5, 6)), "add_barred_pair: expected an adjacent pair next to"),
    (dict(withhold_in_standard=True, experiment="massed"), "standard experiment only"),
])
def test_settings_are_checked_with_one_line_naming_the_setting(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        Settings(**settings).validate()
    assert "\n" not in str(error.value)


def test_any_trial_is_computed_on_first_use_from_the_same_episodes_then_kept(monkeypatch):
    """Item alignments and rates that a run did not keep are computed by running the same episodes again:
    the same numbers as if kept from the start; then kept (no third run)."""
    network = net()
    kept = Runs(network, small(), log=None).standard  # the selected experiment's run: trials 19, 20 and rates
    assert sorted(kept.products) == [18, 19] and kept.kept_rates is not None
    calls = []
    original = runs_module.run_experiment
    monkeypatch.setattr(runs_module, "run_experiment", lambda *a, **k: calls.append(k) or original(*a, **k))
    again = kept.alignment[7]  # another trial: the episodes are run again, with P of trial 8
    assert len(calls) == 1 and calls[0]["snapshot_trials"] == (7,) and again.shape == (20, 4, 8)
    assert torch.equal(kept.alignment[7], again) and kept.similarity[7].shape == (20,) and len(calls) == 1
    monkeypatch.setattr(runs_module, "SNAPSHOT_TRIALS", (7, 18, 19))  # trial 8 kept from the start instead
    from_start = Runs(network, small(), log=None).standard
    assert 7 in from_start.products and torch.equal(from_start.actions, kept.actions)
    assert torch.equal(from_start.alignment[7], again)
    withheld = Runs(network, small(), log=None).withheld  # not the selected run: no rates kept
    assert withheld.kept_rates is None and 18 in withheld.products
    rates = withheld.trial_rates(3)
    assert rates.shape == (20, 4, 200) and torch.equal(withheld.rates[:, 12:16], rates)
    with pytest.raises(ChoiceError, match=r"trial: expected a trial from 0 to 29 \(0-based: the paper's trials 1-30\), got 30"):
        kept.alignment[30]
    with pytest.raises(ChoiceError, match="trial: expected"):
        kept.trial_rates(-1)


def test_list_linking_as_the_original_keeps_it_the_linking_episode():
    """In the list-linking and sham modes the records are those of the linking episode: 4 trials of D,E (sham:
    one B,C trial), then the scored trial; P carried over from the two lists."""
    runs = Runs(net(), small(experiment="linking", linking_batch=24), log=None)
    main = runs.main
    assert main.ntrials == 5 and main.first_test_trial == 4 and main.episode_trials == (5,)
    assert torch.equal(main.pairs, runs.linking.pairs[:, 20:]) and main.modulation.shape == (24, 20)
    assert main.kept_rates.shape == (24, 20, 200) and main.final_plastic.shape == (200, 200)
    assert torch.equal(main.test_correct, runs.linking.correct[:, -1:])
    assert torch.equal(runs.linking.episode(0).pairs, runs.linking.pairs[:, :10])
    assert main.alignment[2].shape == (24, 4, 8)  # computed on first use, from the same three episodes
    sham = Runs(net(), small(experiment="sham", linking_batch=24), log=None).main
    assert sham.ntrials == 2 and (sham.pairs[:, 0] == torch.tensor([1, 2])).all()


def test_reference_network_shows_the_paper_effects():
    runs = Runs(load_network(reference_file("paper_net_active.dat")), small(batch=96, chunk=96), log=None)
    run = runs.standard
    assert run.test_correct.float().mean().item() > 0.8
    cue = run.alignment[19][:, 0].mean(0)
    assert cue[0] > cue[3] > cue[7] and cue[0] > 0.3 and cue[7] < -0.3  # Fig. 4b: rank-ordered alignment
    summary = stats.modulation_summary(run.modulation, run.feedback)
    assert summary["feedback"]["fraction_negative"] > 0.8  # Fig. 5: m at the feedback step is negative
    assert summary["delay"]["mean_unrewarded"] < summary["delay"]["mean_rewarded"] - 1


def test_every_declared_experiment_is_a_run_and_the_modes_are_the_choices():
    """The registry is the one declaration: each experiment is a run of Runs with draws of its own, and the
    selectable ones are the choices of Settings.experiment and of `figures --experiment`."""
    import dataclasses
    from transitive.evaluation.experiments import EXPERIMENTS, MODES
    from transitive.interface.cli import build_parser
    assert all(isinstance(getattr(Runs, name), property) for name in EXPERIMENTS)
    assert len({e.seed_offset for e in EXPERIMENTS.values()}) == len(EXPERIMENTS)
    declared = next(f for f in dataclasses.fields(Settings) if f.name == "experiment").metadata["choices"]
    figures = build_parser()._subparsers._group_actions[0].choices["figures"]
    option = next(a for a in figures._actions if "--experiment" in a.option_strings)
    assert tuple(declared) == tuple(option.choices) == tuple(MODES) == ("standard", "linking", "sham", "massed",
                                                                        "onlytwolastadj")


def test_extended_data_fig_2_runs_withhold_c_d_or_e_f_until_trial_19_in_half_the_batch():
    from transitive.evaluation.keynumbers import key_numbers
    runs = Runs(net(), small(batch=40), log=None)
    for name, pair, key in (("withheld_cd", (2, 3), "edfig2a"), ("withheld_ef", (4, 5), "edfig2b")):
        run = getattr(runs, name)
        later = run.pairs[40 // 2 + 1:]
        assert not any(stats.shown_at(later, t, pair).any() for t in range(18))
        assert stats.shown_at(later, 18, pair).all() and not stats.shown_at(later, 18).any()  # not D,E there
        assert 18 in run.products and run.alignment[18].shape == (40, 4, 8)  # kept as it ran
        numbers = key_numbers(runs)[f"{key}_first_shown_trial19"]
        assert numbers["episodes"] == int(stats.first_shown_at(run.pairs, 18, pair).sum()) >= 19
    assert runs.done() == ["withheld_cd", "withheld_ef"]
