"""Population training: one trainer with K members (seeds) equals K separate runs (the same trainer with one
member), resumes, writes the sweep layout, and (with a GPU) its CUDA-graph capture equals the uncaptured path."""
import warnings
from dataclasses import replace

import pytest
import torch
from tolerance import assert_float32_close

from transitive.engine import rule
from transitive.engine.episode import Episodes, run_episode, run_episodes
from transitive.engine.record import sample_from_exponential
from transitive.training.loss import a2c_loss
from transitive.model.network import PlasticNetwork
from transitive.figures.curves import learning_curves
from transitive.scale.sweep import seed_params, seed_state
from transitive.model.task import draw_items, present, standard_schedule
from transitive.training.trainer import TrainConfig, Trainer, paths_for, read_curve, train_population

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny(**changes):
    """Continual regime (carried state after episode 0, reset at 3), short episodes, a save every 2."""
    values = dict(episodes=5, batch=3, save_every=2, log_every=1, burn_in=1, max_items=5, learning_trials=4,
                  test_trials=3, regime="continual")
    values.update(changes)
    return TrainConfig(**values)


def separate(config, seeds, folder):
    runs = []
    for seed in seeds:
        trainer = Trainer(replace(config, seed=seed), folder / f"alone_{seed}.dat", progress=False)
        trainer.train()
        runs.append(trainer)
    return runs


def biggest_difference(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.net.state_dict().values(), b.net.state_dict().values()))


def timeless(curve):
    return [{k: v for k, v in row.items() if k != "episodes_per_second"} for row in curve]


def close_curves(a, b, tolerance):
    assert len(a) == len(b)
    for row_a, row_b in zip(timeless(a), timeless(b)):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], rel=tolerance, abs=tolerance), key


# ---------------------------------------------------------------------------------------------------------
# The population against separate runs, on the CPU.

def test_population_equals_separate_runs(tmp_path):
    config = tiny()
    alone = separate(config, [0, 1], tmp_path)
    population = train_population(config, [0, 1], tmp_path / "pop", progress=False)
    assert [m.config.seed for m in population.members] == [0, 1]
    for run, member in zip(alone, population.members):
        assert member.episode == 5
        assert biggest_difference(run, member) <= 1e-5
        close_curves(run.curve, member.curve, 1e-5)
    assert biggest_difference(population.members[0], population.members[1]) > 1e-3  # different seeds differ


def test_train_seed_and_seeds_write_identical_files(tmp_path):
    """`train --seed 1` (a single run) and `train --seeds 1` (a population of one) are the same code: the same
    parameter file, training log and checkpoint contents."""
    config = tiny(episodes=3, seed=1)
    single = Trainer(config, tmp_path / "net.dat", progress=False).train()
    population = train_population(config, [1], tmp_path / "pop", progress=False)
    assert single.members[0].config == population.members[0].config
    mine, theirs = paths_for(tmp_path / "net.dat"), paths_for(seed_params(tmp_path / "pop", 1))
    for a, b in zip(torch.load(mine["params"]).values(), torch.load(theirs["params"]).values()):
        assert torch.equal(a, b)
    assert timeless(read_curve(mine["curve"])) == timeless(read_curve(theirs["curve"]))
    saved = [torch.load(p["checkpoint"], weights_only=True) for p in (mine, theirs)]
    assert saved[0]["episode"] == saved[1]["episode"] == 3
    assert torch.equal(saved[0]["generator"], saved[1]["generator"])


def stop_population_after(config, seeds, out, episodes):
    first = Trainer(config, out, progress=False, seeds=seeds)
    original = first.train_one_episode

    def one_episode():
        result = original()
        if result[0][0].episode == episodes - 1:
            first.stop_requested = True
        return result

    first.train_one_episode = one_episode
    first.train()
    assert [m.episode for m in first.members] == [episodes] * len(seeds)


def test_population_resumes_as_if_uninterrupted(tmp_path):
    config = tiny(episodes=6, batch=2)
    whole = train_population(config, [0, 1], tmp_path / "whole", progress=False)
    stop_population_after(config, [0, 1], tmp_path / "parts", 3)  # not a save point, between resets
    with pytest.raises(Exception, match="--resume"):
        Trainer(config, tmp_path / "parts", progress=False, seeds=[0, 1])
    resumed = train_population(config, [0, 1], tmp_path / "parts", resume=True, progress=False)
    for a, b in zip(whole.members, resumed.members):
        assert b.episode == 6
        assert biggest_difference(a, b) == 0
        assert timeless(a.curve) == timeless(b.curve)


def test_chunks_that_stop_at_resets_resume_as_if_uninterrupted(tmp_path):
    """A long run in chunks (train --stop-after-minutes): each chunk stops where the carried state resets, saves
    checkpoints without carried state or kept items, and the chunks resumed one after the other give the
    uninterrupted run."""
    config = tiny(episodes=8, batch=2, save_every=100)
    whole = train_population(config, [0, 1], tmp_path / "whole", progress=False)
    reached = []
    for chunk in range(5):
        trainer = Trainer(config, tmp_path / "chunks", resume=chunk > 0, progress=False, seeds=[0, 1],
                          stop_after=0.0).train()
        reached.append(trainer.episode)
        for m in trainer.members:
            saved = torch.load(m.paths["checkpoint"], weights_only=True)
            assert saved["episode"] == m.episode
            if not m.finished:  # stopped at a reset: nothing carried
                assert m.episode % config.resets_every == 0
                assert saved["carried"] is None and saved["kept_items"] == []
        if trainer.finished:
            break
    assert reached == [3, 6, 8]
    for a, b in zip(whole.members, trainer.members):
        assert biggest_difference(a, b) == 0
        assert timeless(a.curve) == timeless(b.curve)


def test_members_at_different_episodes_catch_up(tmp_path):
    """A member whose checkpoint is ahead waits until the others reach it; all end as separate runs (up to
    float32 rounding: the episodes of one member and of two run as batches of different sizes)."""
    config = tiny(episodes=4)
    alone = separate(config, [0, 1], tmp_path)
    Trainer(replace(config, seed=1, episodes=2), seed_params(tmp_path / "pop", 1), progress=False).train()
    population = train_population(config, [0, 1], tmp_path / "pop", resume=True, progress=False)
    for run, member in zip(alone, population.members):
        assert biggest_difference(run, member) <= 1e-6


def test_files_in_the_sweep_layout(tmp_path):
    config = tiny(episodes=3)
    out = tmp_path / "pop"
    train_population(config, [2, 5], out, progress=False)
    for seed in (2, 5):
        params = seed_params(out, seed)
        paths = paths_for(params)
        assert params.exists() and paths["checkpoint"].exists() and paths["curve"].exists()
        assert [int(r["episode"]) for r in read_curve(paths["curve"])] == [0, 1, 2]
        assert seed_state(out, seed, replace(config, seed=seed)).action == "skip"  # the sweep sees it finished
    rows = learning_curves(out, tmp_path / "fig.png", classify=False, echo=lambda *_: None)
    assert [r["seed"] for r in rows] == [2, 5]


def test_bad_population_requests():
    with pytest.raises(ValueError, match="distinct"):
        Trainer(tiny(), "unused", progress=False, seeds=[1, 1])
    with pytest.raises(ValueError, match="single run"):
        Trainer(tiny(), "unused", progress=False, seeds=[1], start_from="x.ckpt")


def test_population_with_options_only_the_definition_runs(tmp_path):
    """An action penalty (or r, H carried across trials) runs every member through the definition: the
    population still equals the separate runs."""
    config = tiny(episodes=2, batch=2, learning_trials=2, test_trials=2, reset_trace_every_trial=False)
    config.loss.action1_penalty = 0.1
    alone = separate(config, [0, 1], tmp_path)
    population = train_population(config, [0, 1], tmp_path / "pop", progress=False)
    for run, member in zip(alone, population.members):
        assert biggest_difference(run, member) <= 1e-6
        close_curves(run.curve, member.curve, 1e-6)


# ---------------------------------------------------------------------------------------------------------
# The stacked runner's parts.

def test_noise_reproduces_torch_sampling():
    """Episodes.draw + sample_from_exponential draw what torch.rand and torch.multinomial would."""
    logits = torch.randn(3, 28, 2)
    probabilities = torch.softmax(logits, -1)
    first, second = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    uniform = torch.rand(7, 3, generator=first)
    sampled = torch.multinomial(probabilities.reshape(-1, 2), 1, generator=first).reshape(3, 28)
    trials = present(draw_items(3, 5), standard_schedule(3, 5, 4, 3))
    episodes = Episodes.draw([trials], [second])
    assert torch.equal(episodes.uniform[0], uniform)
    assert torch.equal(sample_from_exponential(probabilities, episodes.exponential[0].reshape(3, 28, 2)), sampled)
    assert torch.equal(first.get_state(), second.get_state())


def members_and_trials(count=2, batch=3, nbcues=5):
    nets, trials = [], []
    for k in range(count):
        torch.manual_seed(k)
        nets.append(PlasticNetwork())
        trials.append(present(draw_items(batch, nbcues), standard_schedule(batch, nbcues, 4, 3)))
    return nets, trials


def run_stacked(nets, trials, generators, states):
    return run_episodes(nets, Episodes.draw(trials, generators, states))


def kernel_parameters(net) -> dict:
    """The parameters the kernels read, by name."""
    named = dict(net.named_parameters())
    return {name: named[name] for name in rule.KERNEL_LAYOUT}


def test_stacked_episode_equals_run_episode():
    """Records and gradients of each member match run_episode with the member's generator, fresh and carried."""
    nets, trials = members_and_trials()
    generators = [torch.Generator().manual_seed(10 + k) for k in range(2)]
    copies = [torch.Generator().manual_seed(0) for _ in range(2)]
    states = [None, None]
    for episode in range(2):  # fresh, then carried
        for generator, copy in zip(generators, copies):
            copy.set_state(generator.get_state())
        alone = [run_episode(net, t, state=s, generator=g) for net, t, s, g in zip(nets, trials, states, generators)]
        for net in nets:
            net.zero_grad()
        sum(a2c_loss(r) for r in alone).backward()
        expected = [[p.grad.clone() for p in kernel_parameters(net).values()] for net in nets]
        for net in nets:
            net.zero_grad()
        together = run_stacked(nets, trials, copies, states)
        sum(a2c_loss(r) for r in together).backward()
        for k in range(2):
            assert torch.equal(alone[k].actions, together[k].actions)
            assert torch.equal(alone[k].rewards, together[k].rewards)
            for name in ("logits", "values", "modulation", "rates", "inputs"):
                assert_float32_close(getattr(together[k], name), getattr(alone[k], name), f"network {k}: {name}")
            assert_float32_close(together[k].final_state.plastic_weights, alone[k].final_state.plastic_weights,
                                 f"network {k}: final P")
            for (name, p), grad in zip(kernel_parameters(nets[k]).items(), expected[k]):
                assert_float32_close(p.grad, grad, f"network {k}: gradient of {name}")
        states = [r.final_state.detach() for r in alone]


def test_zero_state_is_exactly_a_fresh_start():
    """What lets one CUDA graph serve fresh and carried episodes: blank steps from a zero state change nothing,
    in values and in gradients, to the last bit."""
    nets, trials = members_and_trials()
    results = []
    for fresh in (True, False):
        for net in nets:
            net.zero_grad()
        episodes = Episodes.draw(trials, [torch.Generator().manual_seed(k) for k in range(2)])
        if not fresh:  # the captured episode's inputs: the state given, all zeros
            episodes = Episodes.of_tensors(*episodes.tensors(200))
            assert not episodes.state.plastic_weights.any()
        records = run_episodes(nets, episodes)
        sum(a2c_loss(r) for r in records).backward()
        results.append(([r.logits.detach() for r in records], [r.final_state.plastic_weights.detach() for r in records],
                        [p.grad.clone() for net in nets for p in kernel_parameters(net).values()]))
    for first, second in zip(*results):
        assert all(torch.equal(a, b) for a, b in zip(first, second))


# ---------------------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU).

@cuda
def test_cuda_graphs_equal_uncaptured(tmp_path):
    config = tiny(episodes=6, batch=4, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture warns and falls back: fail instead
        graphed = train_population(config, [0, 1, 2], tmp_path / "graphs", progress=False, cuda_graphs=True)
    assert graphed.cuda_graphs and graphed._graphs
    plain = train_population(config, [0, 1, 2], tmp_path / "plain", progress=False, cuda_graphs=False)
    for a, b in zip(graphed.members, plain.members):
        assert biggest_difference(a, b) <= 1e-5
        close_curves(a.curve, b.curve, 1e-4)


@cuda
def test_cuda_population_equals_separate_runs(tmp_path):
    config = tiny(episodes=6, batch=4, device="cuda")
    alone = separate(config, [0, 1], tmp_path)
    population = train_population(config, [0, 1], tmp_path / "pop", progress=False)
    assert population.cuda_graphs
    for run, member in zip(alone, population.members):
        assert biggest_difference(run, member) <= 1e-5
        close_curves(run.curve, member.curve, 1e-4)
        assert torch.equal(run.generator.get_state(), member.generator.get_state())


@cuda
def test_cuda_population_resumes(tmp_path):
    config = tiny(episodes=6, batch=4, device="cuda")
    whole = train_population(config, [0, 1], tmp_path / "whole", progress=False)
    stop_population_after(config, [0, 1], tmp_path / "parts", 3)
    resumed = train_population(config, [0, 1], tmp_path / "parts", resume=True, progress=False)
    for a, b in zip(whole.members, resumed.members):
        assert biggest_difference(a, b) <= 1e-6


# ---------------------------------------------------------------------------------------------------------
# Sweeps with K seeds per job.

def test_grouping_seeds():
    from transitive.scale.sweep import group_seeds
    assert group_seeds([0, 1, 2, 3, 4], 2) == [(0, 1), (2, 3), (4,)]
    assert group_seeds([3, 5], 1) == [(3,), (5,)]


def test_local_sweep_with_a_population(tmp_path, one_thread):
    from transitive.scale.sweep import Resources, SweepError, checkpoint_episode, read_record, run_sweep
    options = dict(batch=2, save_every=2, burn_in=1, log_every=1, learning_trials=4, test_trials=3)
    out = tmp_path / "sweep"
    # seed 1 trained part-way before: its job must resume it, not restart it (the sentinel survives)
    partial = seed_params(out, 1)
    Trainer(TrainConfig(episodes=2, seed=1, **options), partial, progress=False).train()
    checkpoint = paths_for(partial)["checkpoint"]
    saved = torch.load(checkpoint, weights_only=True)
    saved["curve"][0]["loss"] = 12345.0
    torch.save(saved, checkpoint)

    lines = []
    result = run_sweep([0, 1, 2], out, episodes=4, resources=Resources(executor="local", cpus=1, parallel=2),
                       wait=True, poll_s=0.2, echo=lines.append, population=2, **options)
    assert result["jobs"][0] is result["jobs"][1] and result["jobs"][2] is not result["jobs"][0]
    assert any(line.startswith("seeds 0,1: submitted job") for line in lines)
    assert all(result["results"][seed]["finished"] for seed in (0, 1, 2))
    for seed in (0, 1, 2):
        assert checkpoint_episode(seed_params(out, seed))[0] == 4
    assert read_curve(paths_for(partial)["curve"])[0]["loss"] == 12345.0
    assert read_record(out)["jobs"]["0"]["seeds"] == [0, 1]
    log = (tmp_path / "sweep" / "logs").glob(f"{result['jobs'][0].job_id}_0_log.out")
    assert "seed 1: resuming at episode 2" in next(log).read_text()

    again = run_sweep([0, 1, 2], out, episodes=4, resources=Resources(executor="local", cpus=1), echo=lines.append,
                      population=2, **options)
    assert again["jobs"] == {} and {s.action for s in again["states"]} == {"skip"}
    with pytest.raises(SweepError, match="population"):
        run_sweep([0], out, episodes=4, population=0, echo=lines.append, **options)


def imitation_of_make_graphed_callables(function, sample_args, allow_unused_input=False, num_warmup_iters=3):
    """What torch.cuda.make_graphed_callables returns, without a GPU: every call copies its arguments into the
    static sample tensors and runs `function` on those; the backward returns gradients for the arguments
    that required grad at capture only (None for the others), as the captured backward graph does."""
    class Replayed(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):
            for static, given in zip(sample_args, inputs):
                if static.data_ptr() != given.data_ptr():  # as the real replay: the parameters are their own inputs
                    static.copy_(given)
            with torch.enable_grad():
                ctx.outputs = function(*sample_args)
            return tuple(o.detach() for o in ctx.outputs)

        @staticmethod
        def backward(ctx, *grads):
            needs = [s for s in sample_args if s.requires_grad]
            found = iter(torch.autograd.grad(ctx.outputs[0], needs, grads[0], allow_unused=allow_unused_input))
            return tuple(next(found) if s.requires_grad else None for s in sample_args)

    return lambda *args: Replayed.apply(*args)


def test_captured_path_plumbing_on_the_cpu(tmp_path, monkeypatch):
    """The population's CUDA-graph path (argument order, zero state for fresh episodes, static outputs
    copied before the next call), run on the CPU with an imitation of the capture: equals separate runs."""
    from transitive.training import cuda_graphs
    monkeypatch.setattr(cuda_graphs.torch.cuda, "make_graphed_callables", imitation_of_make_graphed_callables)
    config = tiny(episodes=4, batch=2)
    alone = separate(config, [0, 1], tmp_path)
    trainer = Trainer(config, tmp_path / "pop", progress=False, seeds=[0, 1])
    trainer.cuda_graphs = True
    trainer.train()
    assert list(trainer._graphs) == [2]
    for run, member in zip(alone, trainer.members):
        assert biggest_difference(run, member) <= 1e-5
        close_curves(run.curve, member.curve, 1e-4)
        assert not member.carried.plastic_weights.requires_grad


def test_population_speed_reports_aggregate_rate():
    from transitive.scale.benchmark import population_speed
    result = population_speed(2, episodes=1, batch=2, warmup=1)
    assert result["backend"] in ("cpp", "torch") and not result["cuda_graphs"]
    assert result["episodes_per_second"] == pytest.approx(2 * result["episodes_per_second_per_member"])
    assert result["seconds_per_member_episode"] == pytest.approx(result["seconds_per_population_episode"] / 2)
    assert result["member_episode_vs_separate"] > 0


@cuda
def test_cuda_population_speed_uses_graphs():
    from transitive.scale.benchmark import population_speed
    result = population_speed(3, episodes=2, batch=4, device="cuda")
    assert result["backend"] == "triton" and result["cuda_graphs"]
