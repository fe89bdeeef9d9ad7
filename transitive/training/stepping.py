"""The step after the backward, for all members at once: each member's gradient-norm clipping (its own norm
and coefficient), then Adam over every member's parameters, each in a handful of foreach operations, with the
numbers of `torch.nn.utils.clip_grad_norm_` and `torch.optim.Adam.step` run member by member (the tests
check them bit for bit). Each member keeps its own `torch.optim.Adam`: its state (step, exp_avg,
exp_avg_sq per parameter) is created and updated here exactly as Adam does, so its state_dict, and the
checkpoints, are as before.

`finite_check` is the divergence test of an episode: one tensor saying, per member, whether its loss, its
gradient norm and its parameters after the step are all finite; the trainer reads it once per episode and
raises `TrainingDiverged` (one line naming the episode and the seed) before anything of that episode is
logged or saved.
"""
from __future__ import annotations

import weakref

import torch
from torch.optim.optimizer import _get_scalar_dtype

from ..model.errors import OneLineError

_EPSILON = 1e-6  # clip_grad_norm_'s guard: coefficient max_norm / (norm + 1e-6)
# Adam's options this module implements (those of TrainConfig's optimizer); others step member by member.
_PLAIN_ADAM = dict(amsgrad=False, maximize=False, capturable=False, differentiable=False, fused=None,
                   decoupled_weight_decay=False)
_steps_taken: "weakref.WeakKeyDictionary[torch.optim.Optimizer, int]" = weakref.WeakKeyDictionary()


class TrainingDiverged(OneLineError):
    """A non-finite loss, gradient or parameter: training stops, and the files of the last save are kept."""


def clip_gradients(parameter_lists: list[list[torch.nn.Parameter]], max_norms: list[float]) -> torch.Tensor:
    """Each member's gradients (parameter_lists[k], those with a gradient) scaled by min(1, max_norm /
    (norm + 1e-6)), norm the 2-norm of all its gradients together, as clip_grad_norm_ does. Returns the
    members' norms before clipping, (K,)."""
    grads = [[p.grad for p in params if p.grad is not None] for params in parameter_lists]
    every = [g for member in grads for g in member]
    norms = torch.stack(torch._foreach_norm(every, 2.0))
    counts = [len(member) for member in grads]
    if len(set(counts)) == 1:
        totals = torch.linalg.vector_norm(norms.view(len(grads), counts[0]), 2.0, dim=1)
    else:
        totals = torch.stack([torch.linalg.vector_norm(part, 2.0) for part in norms.split(counts)])
    # max_norm / (norm + 1e-6) as clip_grad_norm_ computes it: a number over a tensor is its reciprocal times it
    limits = max_norms[0] if len(set(max_norms)) == 1 else torch.tensor(max_norms, dtype=totals.dtype,
                                                                         device=totals.device)
    coefficients = torch.clamp((totals + _EPSILON).reciprocal() * limits, max=1.0)
    for member, coefficient in zip(grads, coefficients.unbind()):  # one launch per member (a 0-dim factor)
        torch._foreach_mul_(member, coefficient)
    return totals


def adam_step(optimizers: list[torch.optim.Adam]) -> None:
    """One Adam step of every optimizer (each with its one parameter group), as optimizer.step() would do
    it, with the operations of all of them together."""
    together = [o for o in optimizers if _plain(o)]
    for optimizer in optimizers:
        if optimizer not in together:
            optimizer.step()
    groups: dict[tuple, list] = {}
    for optimizer in together:
        group = optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        groups.setdefault((beta1, beta2, group["eps"], group["weight_decay"]), []).append(optimizer)
    for (beta1, beta2, eps, weight_decay), members in groups.items():
        _adam_together(members, beta1, beta2, eps, weight_decay)


def _plain(optimizer) -> bool:
    return (type(optimizer) is torch.optim.Adam and len(optimizer.param_groups) == 1
            and all(optimizer.param_groups[0].get(k, v) == v for k, v in _PLAIN_ADAM.items())
            and not torch.is_tensor(optimizer.param_groups[0]["lr"]))


def _state_of(optimizer, parameter) -> dict:
    """The parameter's Adam state, created as Adam creates it on its first step."""
    state = optimizer.state[parameter]
    if len(state) == 0:
        state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
        state["exp_avg"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
    return state


def _steps_before(optimizer, states: list[dict]) -> int:
    """The optimizer's steps so far, kept on the host (read once from its state: all its parameters have
    taken the same number of steps)."""
    if optimizer not in _steps_taken:
        steps = torch.stack([s["step"] for s in states]).tolist() if states else []
        if len(set(steps)) > 1:
            raise ValueError(f"the optimizer's parameters have taken different numbers of steps ({sorted(set(steps))})")
        _steps_taken[optimizer] = int(steps[0]) if steps else 0
    return _steps_taken[optimizer]


def _adam_together(optimizers, beta1, beta2, eps, weight_decay) -> None:
    params, grads, exp_avgs, exp_avg_sqs, steps, step_sizes, corrections = [], [], [], [], [], [], []
    for optimizer in optimizers:
        mine = [p for p in optimizer.param_groups[0]["params"] if p.grad is not None]
        states = [_state_of(optimizer, p) for p in mine]
        step = _steps_before(optimizer, states) + 1
        _steps_taken[optimizer] = step
        lr = optimizer.param_groups[0]["lr"]
        bias_correction1 = 1 - beta1 ** float(step)
        bias_correction2 = 1 - beta2 ** float(step)
        params += mine
        grads += [p.grad for p in mine]
        exp_avgs += [s["exp_avg"] for s in states]
        exp_avg_sqs += [s["exp_avg_sq"] for s in states]
        steps += [s["step"] for s in states]
        step_sizes += [-(lr / bias_correction1)] * len(mine)
        corrections += [bias_correction2 ** 0.5] * len(mine)
    if not params:
        return
    with torch.no_grad():
        torch._foreach_add_(steps, 1)
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, corrections)
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)


def finite_check(losses: torch.Tensor, grad_norms: torch.Tensor, parameter_lists) -> torch.Tensor:
    """(K,) bool on the device: member k's loss, gradient norm and every parameter are finite (its parameters
    through their norms, one foreach operation for all members)."""
    every = [p for params in parameter_lists for p in params]
    with torch.no_grad():
        norms = torch.stack(torch._foreach_norm(every, 2.0))
    counts = [len(params) for params in parameter_lists]
    if len(set(counts)) == 1:
        parameters = norms.view(len(counts), counts[0]).sum(1)
    else:
        parameters = torch.stack([part.sum() for part in norms.split(counts)])
    return torch.isfinite(torch.stack([losses.float(), grad_norms.float(), parameters.float()])).all(0)


def step_members(members, final_states) -> torch.Tensor:
    """After the backward of an episode, for the members (`Member`s) together: each one's gradient-norm
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
