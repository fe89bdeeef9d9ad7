"""The engine's one entry point: an episode of K networks x a batch of episodes each (one network is K = 1).

    Episodes.draw      the members' trials stacked, their carried states stacked, and the random numbers of
                       their episodes drawn, each from its member's own generator
    run_episodes       the backend for these networks (`backends.choose`: a kernel only for the rule it was
                       verified against, else the networks' own definition, `definition.run_definition`),
                       the episodes through it -> one EpisodeRecord per network, or one for all

Training (all seeds of a population at once) and evaluation (`run_episode`, one network) both run this. The
random numbers of an episode are drawn before it, in a fixed order and shape: per member, first one uniform
number per trial and batch element (the response is action 1 where it is below p(action 1)), then the
exponential variates behind `torch.multinomial`'s sampling of every step's action (`sample_from_exponential`).
So a member samples exactly the actions its own run would draw, whatever the other members, and an episode
has no random draw (nor host synchronisation) of its own: it can be captured as a CUDA graph.
"""
from __future__ import annotations

import torch

from ..model.network import NetworkState, PlasticNetwork
from ..model.task import Trials
from . import backends, compiled
from .definition import BLANK_STEPS, run_definition
from .record import EpisodeRecord, Episodes, reward_of

__all__ = ["BLANK_STEPS", "EpisodeRecord", "Episodes", "run_episode", "run_episodes", "reward_of"]


def run_episodes(nets, episodes: Episodes, snapshot_trials=(), reset_plastic_every_trial: bool = False,
                 action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                 reset_trace_every_trial: bool = True, backend: str | None = None, vectorise: bool | None = None,
                 stacked: bool = False):
    """One episode of every network of `nets` (K networks of one class) on `episodes`.

    snapshot_trials: trials for which P after each of the 4 steps is kept (float16).
    reset_plastic_every_trial: P is set to 0 at every trial start (the RESETPWEVERYTRIAL control: no
    learning across trials).
    action_penalty: subtracted from the reward of every step at which action 1 is taken (the original's
    `wp`); it enters the rewards, hence the returns, and the reward input of the next step.
    reset_rates_every_trial, reset_trace_every_trial: r (resp. H) is set to 0 at every trial start (the
    original's RESETHIDDENEVERYTRIAL, RESETETEVERYTRIAL); False carries it over from the previous trial.
    These three options run the networks' definition (`definition.run_definition`): the kernels assume
    neither.
    backend: "torch" (the networks' own definition, step by step; "eager" or "compiled": never or always
    compiled), "cpp" or "triton" (the kernels, for the verified rule only: `transitive.engine.rule`); None
    chooses the fastest that runs these networks' rule (`backends.choose`).
    vectorise: for the definition, run the networks as one by vmap (None: on CUDA only).

    All backends give the same results up to float32 rounding, and the same sampled actions for the same
    random numbers (except for ties within rounding). Returns one EpisodeRecord per network (views into
    stacked tensors), or with `stacked` the one record of all networks (every field with the member axis
    first)."""
    nets = list(nets)
    compile_mode = compiled.mode(backends.requested(backend))
    reference = bool(action_penalty) or not (reset_rates_every_trial and reset_trace_every_trial)
    choice = "torch" if reference else backends.choose(nets, backend)
    if choice == "torch" or (choice == "triton" and reset_plastic_every_trial):  # the GPU kernels carry P
        return run_definition(nets, episodes, snapshot_trials, reset_plastic_every_trial, vectorise, stacked,
                              compile_mode, action_penalty, not reset_rates_every_trial, not reset_trace_every_trial)
    return backends.run_kernel(choice, nets, episodes, snapshot_trials, reset_plastic_every_trial, stacked)


def run_episode(net: PlasticNetwork, trials: Trials, state: NetworkState | None = None,
                actions: torch.Tensor | None = None, snapshot_trials=(),
                reset_plastic_every_trial: bool = False, generator: torch.Generator | None = None,
                action_penalty: float = 0.0, reset_rates_every_trial: bool = True,
                reset_trace_every_trial: bool = True, backend: str | None = None) -> EpisodeRecord:
    """One network's episode for the whole batch: `run_episodes` with K = 1. `state` None means fresh (zero)
    state; actions: optional (batch, nsteps) long tensor forcing the actions instead of sampling them;
    generator: the random number generator of the sampled actions (None: torch's global one); the other
    options are those of `run_episodes`."""
    episodes = Episodes.draw([trials], [generator], [state], None if actions is None else [actions],
                             next(net.parameters()).device)
    return run_episodes([net], episodes, snapshot_trials, reset_plastic_every_trial, action_penalty,
                        reset_rates_every_trial, reset_trace_every_trial, backend)[0]
