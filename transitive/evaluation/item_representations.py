"""Item representations inside the network (Figs. 4b, 6, 7, 8, Extended Data Fig. 3).

psi_t1(X): the rates after one step from r = 0 when item X is shown alone as item 1 (item 2 zero, bias 1,
           time 0, no reward): the feedforward representation, fixed within an episode.
psi_t2(X): one more step through W + A * P with the stimulus bits zeroed: the learned representation,
           which depends on the plastic weights P of the moment.

Recoded representations (Supplementary Note 8). For every episode b and item X a vector v1[b, X], and one
vector v2 shared by all episodes, are found that maximise

    sum_{b, X} cosine( (W + (v2 v1[b, X]^T) * A) psi_t1(b, X), w_out ).

The weight change (v2 v1^T) * A is never formed: ((v2 v1^T) * A) psi = v2 * (A (v1 * psi)), so the cost is one
(items x n) @ (n x n) product per step instead of items x n x n. psi~_t1(X) = v1[., X] and w~_out = v2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.network import PlasticNetwork
from ..model.task import BIAS, ITEM1, INPUT_SIZE


def pearson(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Pearson correlation along `dim` (broadcasting)."""
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp_min(1e-12)


def cosine(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp_min(1e-12)


def single_item_inputs(items: torch.Tensor) -> torch.Tensor:
    """(batch, K, 37): each item alone as item 1, bias 1, everything else 0 (time 0, no reward)."""
    inputs = torch.zeros(*items.shape[:2], INPUT_SIZE, device=items.device)
    inputs[..., ITEM1] = items
    inputs[..., BIAS] = 1.0
    return inputs


@torch.no_grad()
def psi_t1(net: PlasticNetwork, items: torch.Tensor) -> torch.Tensor:
    """(batch, K, n): feedforward representation of every item of every episode."""
    return torch.tanh(net.i2h(single_item_inputs(items.to(net.w.device))))


@torch.no_grad()
def psi_t2(net: PlasticNetwork, psi1: torch.Tensor, plastic: torch.Tensor) -> torch.Tensor:
    """(batch, K, n): one recurrent step from psi1 through W + A * P (P: (batch, n, n), any float dtype),
    with only the bias input on."""
    bias_only = torch.zeros(INPUT_SIZE, device=psi1.device)
    bias_only[BIAS] = 1.0
    weights = net.effective_weights(plastic.to(psi1.dtype))  # (batch, n, n)
    recurrent = torch.bmm(psi1, weights.transpose(1, 2))  # row b, item X: (W + A P_b) psi1[b, X]
    return torch.tanh(net.i2h(bias_only) + recurrent)


def output_alignment(net: PlasticNetwork, psi: torch.Tensor) -> torch.Tensor:
    """corr(psi, w_out) for every representation (..., n) -> (...)."""
    return pearson(psi, net.output_direction.detach())


# ---------------------------------------------------------------------------------------------------------
# Recoded representations (Supplementary Note 8).

@dataclass
class RecodedFit:
    v1: torch.Tensor  # (batch, K, n): psi~_t1 of every item of every episode
    v2: torch.Tensor  # (n,): w~_out
    loss: float  # final loss, -sum of cosines
    target: float  # the loss a fit had to reach
    attempts: int
    sign_flipped: bool = False

    @property
    def mean_cosine(self) -> float:
        return -self.loss / (self.v1.shape[0] * self.v1.shape[1])


def recoded_loss_and_grads(base, psi, alpha_t, w_unit, v1, v2, products=None):
    """Loss -sum cos(y, w) with y = base + v2 * z, z = (v1 * psi) A^T, and its gradients by hand (as
    autograd's, twice as fast on a CPU: fewer passes over the items, v2 folded into the second product).
    alpha_t: A^T as an (n, n) matrix; w_unit: w_out / |w_out|. products: optionally (A^T, v2 * A) in the
    dtype the two matrix products use (e.g. bfloat16; their results are turned back into float32)."""
    if products is None:
        products = (alpha_t, v2.unsqueeze(1) * alpha_t.T)
    z = ((v1 * psi).to(products[0].dtype) @ products[0]).float()
    y = torch.addcmul(base, z, v2)
    inverse_norm = y.norm(dim=-1).clamp_min(1e-12).reciprocal_()
    cos = (y @ w_unit).mul_(inverse_norm)
    # d(-cos)/dy = (cos * y / |y| - w) / |y|
    dy = torch.addr(y * (cos * inverse_norm * inverse_norm).unsqueeze(-1), inverse_norm, w_unit, alpha=-1)
    grad_v2 = (dy * z).sum(0)
    grad_v1 = (dy.to(products[1].dtype) @ products[1]).float().mul_(psi)
    return -cos.sum(), grad_v1, grad_v2


RESTART_FRACTION = 0.99  # a fit is made again only when clearly bad: its loss above 99% of the target
ROWS_PER_BLOCK = 2048  # rows (episode x item) per block on a CPU: a block's arrays stay in the caches


def _matmul_dtype(device) -> torch.dtype | None:
    """bfloat16 for the fit's two matrix products per step on CPUs with bfloat16 matrix units (Linux flags
    amx_bf16 or avx512_bf16; accumulation in float32; the fit ends within 1e-5 of the float32 fit); None
    (float32) elsewhere."""
    if device.type != "cpu":
        return None
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return None
    return torch.bfloat16 if (" amx_bf16" in flags or " avx512_bf16" in flags) else None


def _fit_once(base, psi, alpha, w_out, steps, lr, weight_decay, generator, rows: int | None = None,
              matmul_dtype=None, bar=None):
    """One fit: Adam on (v1, v2) from 0.01 * (uniform - 0.5), `steps` steps. The rows of v1 (one per episode
    and item) are independent given v2, so the gradients are computed block by block of `rows` rows (all
    at once by default), each block while it is in cache; then one Adam step for all. `bar`: a progress bar
    told of each step. Returns (v1, v2, loss)."""
    n = psi.shape[-1]
    v1 = 0.01 * (torch.rand(psi.shape, generator=generator, device=psi.device) - 0.5)
    v2 = (0.01 * (torch.rand(n, generator=generator, device=psi.device) - 0.5)).requires_grad_()
    blocks = [slice(k, k + (rows or len(psi))) for k in range(0, len(psi), rows or len(psi))]
    v1s = [v1[block].clone().requires_grad_() for block in blocks]  # one Adam parameter per block
    fused = _fused() if psi.device.type == "cpu" else {"fused": True}
    optimizer = torch.optim.Adam(v1s + [v2], lr=lr, weight_decay=weight_decay, **fused)
    alpha_t = alpha.expand(n, n).T.contiguous()
    w_unit = w_out / w_out.norm()
    with torch.no_grad():
        for _ in range(steps):
            products = (alpha_t, v2.unsqueeze(1) * alpha_t.T)
            if matmul_dtype is not None:
                products = tuple(m.to(matmul_dtype) for m in products)
            grad_v2 = torch.zeros_like(v2)
            for block, part in zip(blocks, v1s):
                _, part.grad, grad = recoded_loss_and_grads(base[block], psi[block], alpha_t, w_unit, part, v2,
                                                            products)
                grad_v2 += grad
            v2.grad = grad_v2
            optimizer.step()
            if bar is not None:
                bar.update()
        v1 = torch.cat(v1s)
        loss = recoded_loss_and_grads(base, psi, alpha_t, w_unit, v1, v2)[0].item()
    return v1, v2.detach(), loss


_FUSED = None


def _fused() -> dict:
    """Adam's fused implementation where this torch has it for the CPU (same update, one pass)."""
    global _FUSED
    if _FUSED is None:
        try:
            probe = torch.zeros(2, requires_grad=True)
            probe.grad = torch.ones(2)
            torch.optim.Adam([probe], fused=True).step()
            _FUSED = {"fused": True}
        except (RuntimeError, TypeError):
            _FUSED = {}
    return _FUSED


def fit_recoded(net: PlasticNetwork, psi1: torch.Tensor, steps: int = 1000, lr: float = 1e-3,
                weight_decay: float = 1e-2, target_per_item: float = -0.5, attempts: int = 3,
                seed: int = 0, log=None, progress: bool = False) -> RecodedFit:
    """Find v1 (batch, K, n) and v2 (n) (Supplementary Note 8): Adam (lr 1e-3, weight decay 1e-2), `steps`
    steps from 0.01 * (uniform - 0.5): one fit, as the original. The original's target is a loss of
    target_per_item per item (about -8000 for 2000 episodes x 8 items); a fit is made again only when it is
    clearly bad (its loss above RESTART_FRACTION of the target), at most `attempts` fits, the best kept.
    `log(text)` hears about each fit and whether it reached the target (`fit_verdict`); `progress`: a text
    progress bar over each fit's steps (on standard error, gone when the fit ends)."""
    device = net.w.device  # on a GPU where the network is there; the result is on the CPU
    psi = psi1.detach().float().to(device).reshape(-1, psi1.shape[-1])
    w_rec, alpha = net.w.detach().float(), net.alpha.detach().float()
    w_out = net.output_direction.detach().float()
    base = psi @ w_rec.T
    target = target_per_item * psi.shape[0]
    generator = torch.Generator(device).manual_seed(seed)
    rows = ROWS_PER_BLOCK if device.type == "cpu" else None
    best = None
    for attempt in range(1, attempts + 1):
        bar = None
        if progress:
            from ..model.progress import progress_bar  # in a notebook on standard output, kept when done
            bar = progress_bar(total=steps, desc=f"recoded fit {attempt}", unit="step", leave=False)
        try:
            v1, v2, loss = _fit_once(base, psi, alpha, w_out, steps, lr, weight_decay, generator, rows,
                                     _matmul_dtype(device), bar)
        finally:
            if bar is not None:
                bar.close()
        bad = loss > RESTART_FRACTION * target
        if best is None or loss < best.loss:
            best = RecodedFit(v1.reshape(psi1.shape).cpu(), v2.cpu(), loss, target, attempt)
        if log:
            log(fit_verdict(attempt, loss, target, again=bad and attempt < attempts,
                            kept=None if not bad or attempt < attempts else best))
        if not bad:
            break
    best.attempts = attempt
    return best


def fit_summary(loss: float, target: float) -> str:
    """What a fit's loss means: the target is the original's check that the fit converged (lower is better;
    the original fits again above it); a fit at or below it, or within RESTART_FRACTION of it, is converged and
    the figures drawn from it (Figs. 7, 8, Extended Data Fig. 3) are valid."""
    line = f"loss {loss:.1f}, convergence target {target:.1f} (lower is better)"
    if loss <= target:
        return f"{line}: converged, figures valid"
    if loss <= RESTART_FRACTION * target:
        return f"{line}: within {1 - RESTART_FRACTION:.0%} of it, converged, figures valid"
    return f"{line}: not converged, figures from it are unreliable"


def fit_verdict(attempt: int, loss: float, target: float, again: bool = False, kept: RecodedFit | None = None) -> str:
    """One line on a fit (`fit_summary`). `again`: the fit is made again; `kept`: no attempt is left, this is
    the best fit, kept."""
    line = f"recoded fit {attempt}: {fit_summary(loss, target)}"
    if loss <= RESTART_FRACTION * target:
        return line
    if again:
        return f"{line}; fitting again"
    if kept is not None:
        return f"{line}; after {attempt} fits the best (fit {kept.attempts}, loss {kept.loss:.1f}) is kept"
    return line


def fix_sign(fit: RecodedFit, rates: torch.Tensor, response: torch.Tensor) -> RecodedFit:
    """Flip v1 and v2 together (the objective cannot tell) so that cosine(v2, r) correlates positively with
    the response. rates: (batch, n), e.g. r at step 2 of trial 5; response: (batch,) +-1."""
    alignment = cosine(rates.float(), fit.v2)
    response = response.float()
    if response.std() > 0 and alignment.std() > 0 and pearson(alignment, response, 0) < 0:
        return RecodedFit(-fit.v1, -fit.v2, fit.loss, fit.target, fit.attempts, sign_flipped=True)
    return fit
