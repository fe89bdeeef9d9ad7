"""The step after the backward, for all members at once: each member's gradient-norm clipping
(`torch.nn.utils.clip_grad_norm_` with its own coefficient), then Adam over every member's parameters through
PyTorch's functional Adam (`torch.optim.adam.adam`, what `torch.optim.Adam.step` runs), one call for the
members that share lr, betas, eps and weight decay. The numbers are those of clipping and `Adam.step` member by
member (the tests check them bit for bit). Each member keeps its own `torch.optim.Adam`: its state (step,
exp_avg, exp_avg_sq per parameter) is created here as Adam creates it and updated by Adam's own function, so
its state_dict, and the checkpoints, are Adam's.

`finite_check` is the divergence test of an episode: one tensor saying, per member, whether its loss, its
gradient norm and its parameters after the step are all finite; the trainer reads it once per episode and
raises `TrainingDiverged` (one line naming the episode and the seed) before anything of that episode is
logged or saved.

Only public PyTorch names are used here (tests/test_private_names.py): no foreach operation is public, so
the batching over members is left to Adam's own function, which picks foreach kernels where Adam would.
"""
from __future__ import annotations

import torch
from torch.optim.adam import adam as functional_adam

from ..model.errors import OneLineError
from .loss import OPTIONAL_TERMS

# Adam's options the functional call reproduces (those of TrainConfig's optimizer); others step member by member.
_PLAIN_ADAM = dict(amsgrad=False, maximize=False, capturable=False, differentiable=False, fused=None,
                  decoupled_weight_decay=False)


class TrainingDiverged(OneLineError):
    """A non-finite loss, gradient or parameter: training stops, and the files of the last save are kept."""


def clip_gradients(parameter_lists: list[list[torch.nn.Parameter]], max_norms: list[float]) -> torch.Tensor:
    """Each member's gradients (parameter_lists[k], those with a gradient) scaled by min(1, max_norm /
    (norm + 1e-6)), norm the 2-norm of all its gradients together: `clip_grad_norm_` member by member.
    Returns the members' norms before clipping, (K,)."""
    return torch.stack([torch.nn.utils.clip_grad_norm_(params, max_norm)
                        for params, max_norm in zip(parameter_lists, max_norms)])


def adam_step(optimizers: list[torch.optim.Adam]) -> None:
    """One Adam step of every optimizer (each with its one parameter group), as optimizer.step() would do
    it, with the members that share their options in one call of Adam's function."""
    together = [o for o in optimizers if _plain(o)]
    for optimizer in optimizers:
        if optimizer not in together:
            optimizer.step()
    groups: dict[tuple, list] = {}
    for optimizer in together:
        group = optimizer.param_groups[0]
        key = (*group["betas"], group["eps"], group["weight_decay"], group["lr"])
        groups.setdefault(key, []).append(optimizer)
    for (beta1, beta2, eps, weight_decay, lr), members in groups.items():
        _adam_together(members, beta1, beta2, eps, weight_decay, lr)


def _plain(optimizer) -> bool:
    return (type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1
            and all(optimizer.param_groups[0].get(k, v) == v for k, v in _PLAIN_ADAM.items())
            and not torch.is_tensor(optimizer.param_groups[0]["lr"]))


def _state_of(optimizer, parameter) -> dict:
    """The parameter's Adam state, created as Adam creates it on its first step (a step counter on the CPU,
    float64 under a float64 default dtype and float32 otherwise). Written out here because Adam makes it in
    its private `_init_group`, and the functional Adam takes the state ready-made."""
    state = optimizer.state[parameter]
    if len(state) == 0:
        step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        state["step"] = torch.tensor(0.0, dtype=step_dtype)
        state["exp_avg"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
    return state


def _adam_together(optimizers, beta1, beta2, eps, weight_decay, lr) -> None:
    params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
    for optimizer in optimizers:
        mine = [p for p in optimizer.param_groups[0]["params"] if p.grad is not None]
        states = [_state_of(optimizer, p) for p in mine]
        params += mine
        grads += [p.grad for p in mine]
        exp_avgs += [s["exp_avg"] for s in states]
        exp_avg_sqs += [s["exp_avg_sq"] for s in states]
        steps += [s["step"] for s in states]
    if not params:
        return
    with torch.no_grad():  # foreach=None: Adam's own choice of implementation for these parameters
        functional_adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=None, amsgrad=False,
                        beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=False)


def finite_check(losses: torch.Tensor, grad_norms: torch.Tensor, parameter_lists) -> torch.Tensor:
    """(K,) bool on the device: member k's loss, gradient norm and every parameter are finite (the
    parameters of all members tested in one flat copy)."""
    counts = [sum(p.numel() for p in params) for params in parameter_lists]
    with torch.no_grad():
        finite = torch.isfinite(torch.cat([p.reshape(-1) for params in parameter_lists for p in params]))
    if len(set(counts)) == 1:
        parameters = finite.view(len(counts), counts[0]).all(1)
    else:
        parameters = torch.stack([part.all() for part in finite.split(counts)])
    return torch.isfinite(torch.stack([losses.float(), grad_norms.float()])).all(0) & parameters


def step_members(members, final_states) -> torch.Tensor:
    """After the backward of an episode, for the members (`SeedRun`s) together: each one's gradient-norm
    clipping; after its burn-in an Adam step (and alpha clipped at 0 with positive_alpha); its final state
    kept (continual regime). Returns the gradient norms before clipping, (K,), on the device."""
    grad_norms = clip_gradients([list(m.net.parameters()) for m in members], [m.config.grad_clip for m in members])
    stepping = [m for m in members if m.episode >= m.config.burn_in]
    adam_step([m.optimizer for m in stepping])
    for m in stepping:
        if m.config.positive_alpha:
            m.net.clip_alpha_at_zero()
    for m, final in zip(members, final_states):
        if m.config.regime == "continual":  # (the engine's final states are already detached copies)
            tensors = (final.rates, final.trace, final.plastic_weights)
            m.carried = final.detach() if any(t.requires_grad for t in tensors) else final
    return grad_norms


def divergence(member, loss: float, grad_norm: float) -> TrainingDiverged:
    """The one-line error of a member whose episode gave a non-finite loss, gradient or parameter."""
    bad = [name for name in member.net.state_dict() if not torch.isfinite(member.net.state_dict()[name]).all()]
    causes = [f"loss {loss}" if not torch.isfinite(torch.tensor(loss)) else "",
              f"gradient norm {grad_norm}" if not torch.isfinite(torch.tensor(grad_norm)) else "",
              f"parameters {', '.join(bad)} after the step" if bad else ""]
    what = "; ".join(c for c in causes if c) or "a non-finite number"
    return TrainingDiverged(
        f"training diverged at episode {member.episode} (seed {member.config.seed}): {what}; stopped without "
        f"saving this episode, the files of the last save are kept (try a lower --lr or --grad-clip)")


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
