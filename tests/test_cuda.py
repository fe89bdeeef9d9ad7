"""The CUDA path: the same results as the plain definition and as the CPU, and training that resumes on a GPU.

Skipped where no GPU is present (CI has none); run on a GPU machine with `python -m pytest tests/test_cuda.py`.
"""
import copy

import pytest
import torch
from conftest import run_reference
from tolerance import assert_within_drift

from test_episode import run_both, small_episode, strong_network
from test_training import small_config, stop_after_three, timeless
from transitive.engine.episode import run_episode
from transitive.model.io import load_network
from transitive.training.loss import a2c_loss
from transitive.model.task import Trials, draw_items, present, standard_schedule
from transitive.training.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = "cuda"


# Two float32 orderings of this network drift apart, so the fast runner is compared with the plain runner in
# float64: no further from it than 4x the plain float32 run, or 1e-4 (tests/tolerance.py, the drift rule).


def test_fast_equals_plain_on_cuda():
    net = strong_network().to(CUDA)
    trials = present(draw_items(4, 8, device=CUDA), standard_schedule(4, 8, device=CUDA))
    fast, plain = run_both(net, trials, snapshot_trials=(0, 18))
    assert fast[0].rates.device.type == "cuda"
    exact_net = copy.deepcopy(net).double()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        exact = run_reference(exact_net, Trials(trials.pairs, trials.stimuli.double()), actions=fast[0].actions)
        exact_loss = a2c_loss(exact)
        exact_loss.backward()
    finally:
        torch.set_default_dtype(default)
    for name in ("inputs", "actions", "rewards", "correct"):
        assert torch.equal(getattr(fast[0], name), getattr(plain[0], name)), name
    for name in ("rates", "logits", "values", "modulation"):
        assert_within_drift(getattr(fast[0], name), getattr(plain[0], name), getattr(exact, name), name)
    for name in ("rates", "trace", "plastic_weights"):
        assert_within_drift(getattr(fast[0].final_state, name), getattr(plain[0].final_state, name),
                             getattr(exact.final_state, name), f"final {name}")
    assert_within_drift(torch.tensor(fast[1]), torch.tensor(plain[1]), exact_loss.detach().cpu(), "loss")
    for name, p in exact_net.named_parameters():
        assert_within_drift(fast[2][name], plain[2][name], p.grad, f"gradient of {name}")


def test_cuda_matches_cpu_on_the_same_episode():
    cpu_net = strong_network(5)
    gpu_net = strong_network(5).to(CUDA)
    items, pairs = draw_items(6, 8), standard_schedule(6, 8)
    cpu_trials, gpu_trials = present(items, pairs), present(items.to(CUDA), pairs.to(CUDA))
    with torch.no_grad():
        actions = run_episode(cpu_net, cpu_trials).actions
        on_cpu = run_episode(cpu_net, cpu_trials, actions=actions)
        on_gpu = run_episode(gpu_net, gpu_trials, actions=actions.to(CUDA))
        loss_cpu = a2c_loss(on_cpu).item()
        loss_gpu = a2c_loss(on_gpu).item()
    for name in ("rates", "logits", "values", "modulation"):
        torch.testing.assert_close(getattr(on_gpu, name).cpu(), getattr(on_cpu, name), atol=1e-4, rtol=1e-3,
                                   msg=name)
    torch.testing.assert_close(on_gpu.final_state.plastic_weights.cpu(), on_cpu.final_state.plastic_weights,
                               atol=1e-3, rtol=1e-3)
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-3, abs=1e-4)


def test_training_on_cuda_resumes_as_if_uninterrupted_and_loads_on_cpu(tmp_path):
    whole = train(small_config(device=CUDA), tmp_path / "whole.dat", progress=False)
    stop_after_three(small_config(device=CUDA), tmp_path / "parts.dat")
    resumed = train(small_config(device=CUDA), tmp_path / "parts.dat", resume=True, progress=False)
    assert resumed.episode == 6 and timeless(whole.curve) == timeless(resumed.curve)
    for key, value in whole.net.state_dict().items():
        assert value.device.type == "cuda"
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    on_cpu = load_network(tmp_path / "parts.dat")  # saved on a GPU, loads on the CPU
    for key, value in on_cpu.state_dict().items():
        assert value.device.type == "cpu"
        assert torch.equal(value, whole.net.state_dict()[key].cpu()), key


def test_training_on_cuda_leaves_the_callers_random_state_alone(tmp_path):
    torch.manual_seed(5)
    cpu_state, cuda_state = torch.get_rng_state(), torch.cuda.get_rng_state()
    trainer = train(small_config(episodes=3, device=CUDA), tmp_path / "a.dat", progress=False)
    assert trainer.run.generator.device.type == "cuda"
    assert torch.equal(torch.get_rng_state(), cpu_state) and torch.equal(torch.cuda.get_rng_state(), cuda_state)
    again = train(small_config(episodes=3, device=CUDA), tmp_path / "b.dat", progress=False)
    assert timeless(again.curve) == timeless(trainer.curve)


def test_plain_runner_options_on_cuda():
    """Action penalty and rates / trace carried across trials: the GPU gives the CPU's results."""
    net, trials, actions = small_episode()
    options = dict(action_penalty=0.25, reset_rates_every_trial=False, reset_trace_every_trial=False)
    with torch.no_grad():
        on_cpu = run_reference(net, trials, actions=actions, **options)
        on_gpu = run_episode(copy.deepcopy(net).to(CUDA), trials.to(CUDA), actions=actions.to(CUDA), **options)
    assert on_gpu.rewards.device.type == "cuda" and (on_gpu.rewards.cpu()[:, 0::4] != 0).any()
    assert torch.equal(on_gpu.rewards.cpu(), on_cpu.rewards)
    torch.testing.assert_close(on_gpu.inputs.cpu(), on_cpu.inputs)
    torch.testing.assert_close(on_gpu.rates.cpu(), on_cpu.rates, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(on_gpu.final_state.plastic_weights.cpu(), on_cpu.final_state.plastic_weights,
                               atol=1e-3, rtol=1e-3)
