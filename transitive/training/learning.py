"""One training episode of K members: the episodes, every member's A2C loss and the numbers of the training log.

    stack the members' carried states and pre-drawn noise
    run the episodes (`transitive.engine.members`: one call for all members' networks)
    each member's loss (`transitive.training.loss`); their sum is backpropagated once
    the training log's numbers, as one tensor on the device (read on logged episodes only)

The networks' own rule decides the engine's path (`transitive.engine.backends.choose`): a compiled kernel
for the verified rule, else the networks' definition step by step; training and evaluation share it.

On CUDA the episode and its backward are captured once as CUDA graphs and replayed every episode
(`GraphedEpisodeLoss`): the random numbers are drawn before, from each member's generator, so nothing inside
an episode waits for the host. If capturing fails, the same function runs uncaptured (with a warning);
TRANSITIVE_CUDA_GRAPHS=0 turns capturing off.

Options the engine does not implement (a penalty on action 1, r or H carried across trials) run each member
through the plain step-by-step runner (`plain_episode_loss`), with the same loss and the same numbers.
"""
from __future__ import annotations

import contextlib

import torch

from ..model.network import NetworkState
from ..model.task import DELAY, FEEDBACK, STEPS_PER_TRIAL, Trials
from ..engine.episode import run_episode_plain
from ..engine.members import run_members
from .config import TrainConfig
from .loss import OPTIONAL_TERMS, loss_terms

GRAPHS_SWITCH = "TRANSITIVE_CUDA_GRAPHS"  # "0" turns CUDA graph capture off
# Per-member numbers of an episode (in this order), for the training log.
STATS = ("test_reward", "percent_correct", "test_accuracy", "loss", "policy_loss", "value_loss", "entropy_term",
         "plastic_penalty", "modulation_feedback", "modulation_delay", *OPTIONAL_TERMS)


def engine_supports(config: TrainConfig) -> bool:
    """Whether the engine runs this configuration's episodes (no action penalty, r and H reset at every trial
    start); otherwise every member runs through the plain runner."""
    return not config.loss.action1_penalty and config.reset_rates_every_trial and config.reset_trace_every_trial


def episode_stats(record, terms: dict, test_trials: int) -> torch.Tensor:
    """The numbers of STATS of an episode, as one tensor (no host synchronisation): (len(STATS),) for one
    network's record, (K, len(STATS)) for a stacked record of K networks."""
    episode = (-2, -1)
    test_reward = record.rewards[..., -STEPS_PER_TRIAL * test_trials:].sum(-1).mean(-1)
    zero = torch.zeros_like(test_reward)
    return torch.stack([v.detach().float().expand_as(test_reward) for v in (
        test_reward, 50 + 5 * test_reward, record.correct[..., -test_trials:].float().mean(episode), terms["loss"],
        terms["policy"], terms["value"], terms["entropy"], terms["plastic_penalty"],
        record.modulation[..., FEEDBACK::STEPS_PER_TRIAL].abs().mean(episode),
        record.modulation[..., DELAY::STEPS_PER_TRIAL].abs().mean(episode),
        *(terms.get(name, zero) for name in OPTIONAL_TERMS))], -1)


def episode_loss(nets, pairs, stimuli, uniform, exponential, state: NetworkState | None, config: TrainConfig):
    """The episodes and losses of the members' networks `nets`, the losses of all members computed at once
    (one stacked record: the operations do not grow with the number of members). Returns (summed loss, STATS
    per member (K, len(STATS)), final rates, final trace, final plastic weights (stacked, detached))."""
    record = run_members(nets, pairs, stimuli, uniform, exponential, state, stacked=True)
    terms = loss_terms(record, list(nets), config.loss)
    stats = episode_stats(record, terms, config.test_trials)
    final = record.final_state
    return (terms["loss"].sum(), stats, final.rates.detach(), final.trace.detach(), final.plastic_weights.detach())


def plain_episode_loss(member, trials: Trials):
    """One member's episode through the plain runner (options the engine does not implement): (loss, STATS
    (1, len(STATS)), final state)."""
    config = member.config
    record = run_episode_plain(member.net, trials, member.carried, generator=member.generator,
                               action_penalty=config.loss.action1_penalty, reset_rates_every_trial=config.reset_rates_every_trial,
                               reset_trace_every_trial=config.reset_trace_every_trial)
    terms = loss_terms(record, member.net, config.loss)
    return terms["loss"], episode_stats(record, terms, config.test_trials).unsqueeze(0), record.final_state


def zero_state(members: int, batch: int, n: int, device) -> NetworkState:
    zeros = torch.zeros(members, batch, n, n, device=device)
    return NetworkState(torch.zeros(members, batch, n, device=device), zeros, zeros.clone())


@contextlib.contextmanager
def _quiet_stream_check():
    """Capture warms up on a side stream, so the first backward's gradient accumulators sit on that stream:
    PyTorch warns that this costs a synchronisation. It is one-off and harmless here; silence it during the
    capture only."""
    switch = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
    if switch is not None:
        switch(False)
    try:
        yield
    finally:
        if switch is not None:
            switch(True)


def graph_parameters(nets) -> tuple:
    """Every parameter of the members' networks, in a fixed order: the first inputs of the captured episode."""
    return tuple(p for net in nets for p in net.parameters())


def warm_up(function, samples, iterations: int = 2) -> None:
    """Run `function` forward and backward on a side stream before its capture (what make_graphed_callables
    would do itself), then free the blocks the warm-up cached: the capture's memory pool then starts from the
    steady state, not on top of it (about half the capture peak; docs/measurements/gpu_memory_model_2026-12-01.md).
    Samples off CUDA (the tests' imitation of a capture) warm up on the current stream, with nothing to free."""
    differentiable = [t for t in samples if t.requires_grad]
    cuda = any(t.is_cuda for t in samples)
    stream = torch.cuda.Stream() if cuda else None
    if cuda:
        stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
        for _ in range(iterations):
            outputs = function(*samples)
            torch.autograd.grad(outputs[0], differentiable, allow_unused=True)
            del outputs
    if cuda:
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


class GraphedEpisodeLoss:
    """`episode_loss` of the networks `nets`, its forward and backward captured as CUDA graphs
    (torch.cuda.make_graphed_callables after our own warm-up, `warm_up`, whose cached blocks are freed
    before the capture; each call copies its
    arguments into the graphs' static inputs and replays). The graphs' first inputs are the networks'
    parameters themselves (`graph_parameters`): the episode reads them where they are, and the optimizer
    updates them in place, so a replay needs no copy of them, and their gradients are the graph's. The
    state is always given (zeros for a fresh start): from a zero state the blank steps leave P exactly 0 and
    add exactly zero gradients, so one graph serves fresh and carried episodes."""

    def __init__(self, nets, config: TrainConfig, sample_args: tuple):
        count = len(graph_parameters(nets))  # the parameters come first, then the episode's inputs

        def loss_of(*tensors):
            pairs, stimuli, uniform, exponential, rates, trace, plastic = tensors[count:]
            return episode_loss(nets, pairs, stimuli, uniform, exponential, NetworkState(rates, trace, plastic),
                                config)

        inputs = tuple(t.detach().clone() for t in sample_args[count:])
        samples = graph_parameters(nets) + inputs
        with _quiet_stream_check():
            warm_up(loss_of, samples)
            self.graphed = torch.cuda.make_graphed_callables(loss_of, samples, allow_unused_input=True,
                                                             num_warmup_iters=0)

    def __call__(self, *tensors):
        with _quiet_stream_check():
            return self.graphed(*tensors)


# Per-member numbers after the optimizer step (in this order), for the training log.
AFTER_STEP = ("grad_norm", "eta", "DAmult", "alpha_abs_mean")


def after_step_numbers(members, grad_norms: torch.Tensor) -> torch.Tensor:
    """(K, len(AFTER_STEP)) on the device: each member's gradient norm before clipping and its eta, DAmult and
    mean |alpha| after the step (no host synchronisation)."""
    with torch.no_grad():
        return torch.stack([torch.stack([norm.float(), m.net.eta.squeeze().float(),
                                         m.net.modulation_gain.squeeze().float(), m.net.alpha.abs().mean().float()])
                            for m, norm in zip(members, grad_norms.unbind())])


def log_values(member, numbers: dict) -> dict:
    """The training log's row (every column but episode and episodes_per_second, and the optional loss terms
    whose weight is nonzero) from an episode's numbers by name: its STATS and AFTER_STEP, read on the host."""
    values = {name: numbers[name] for name in ("test_reward", "percent_correct", "test_accuracy", "loss",
                                               "policy_loss", "value_loss", "entropy_term", "plastic_penalty",
                                               "grad_norm", "modulation_feedback", "modulation_delay", "eta",
                                               "DAmult", "alpha_abs_mean")}
    loss = member.config.loss
    values.update({name: numbers[name] for name, weight in OPTIONAL_TERMS.items() if getattr(loss, weight)})
    return values
