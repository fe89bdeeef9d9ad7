"""One training episode captured as CUDA graphs (`GraphedEpisodeLoss`): on CUDA the episode and its backward
are captured once and replayed every episode. The random numbers are drawn before, from each member's
generator (`transitive.engine.episode.Episodes`), so nothing inside an episode waits for the host. If
capturing fails, the same function runs uncaptured (with a warning); TRANSITIVE_CUDA_GRAPHS=0 turns capturing
off.
"""
from __future__ import annotations

import contextlib

import torch

from ..engine.episode import Episodes
from .loss import episode_loss

GRAPHS_SWITCH = "TRANSITIVE_CUDA_GRAPHS"  # "0" turns CUDA graph capture off


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

    def __init__(self, nets, config, sample_args: tuple):
        count = len(graph_parameters(nets))  # the parameters come first, then the episode's inputs

        def loss_of(*tensors):
            return episode_loss(nets, Episodes.of_tensors(*tensors[count:]), config)

        inputs = tuple(t.detach().clone() for t in sample_args[count:])
        samples = graph_parameters(nets) + inputs
        with _quiet_stream_check():
            warm_up(loss_of, samples)
            self.graphed = torch.cuda.make_graphed_callables(loss_of, samples, allow_unused_input=True,
                                                             num_warmup_iters=0)

    def __call__(self, *tensors):
        with _quiet_stream_check():
            return self.graphed(*tensors)
