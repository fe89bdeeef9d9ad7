"""The trial loop of a whole episode as Triton kernels: forward and hand-derived backward, for K networks at once.

Why: on a GPU the PyTorch trial loop is a long chain of small elementwise passes over (elements, n, n)
temporaries (thousands of kernel launches per episode, and memory traffic for temporaries rather than
arithmetic). Here each trial is 4 kernels forward and 4 backward, each a pass over the plastic weights P of
every episode, cut into blocks of rows (one Triton program per episode and block of rows: many programs
even for a single network), with nothing but P, its gradient and small vectors in memory.

The equations are those of one trial derived in docs/method.md, section 8 (the CPU kernel of
`transitive.engine.cpu_kernel` computes the same), with two changes of bookkeeping:
- An "element" is one episode of one member: elements e = k * batch + b, and every parameter carries a
  leading member axis (W, A: (K, n, n); eta, DAmult: (K,); W_mod (K, 2, n), b_mod (K, 2); W_out, b_out
  likewise, used to sample the response only).
- A vector that a pass needs whole (all of r1 to choose the action, all of r2 for m2 = M(r2), the column
  sums of a transposed product) is finished by the next kernel: each program writes its block's part, and
  the next kernel adds the parts in a fixed order. No atomics anywhere, so every result, gradients
  included, is the same from run to run.

Forward of trial t (the kernels of `transitive.engine.gpu_forward`; x are the feedforward drives, r0 = tanh(x0)):

    1. r1 = tanh(x1 + (W + A * P) r0)
    2. action = forced, or u < softmax(W_out r1 + b_out)[1];   r2 = tanh(x2[action] + (W + A * P) r1)
    3. m2 = M(r2);  H1 = eta tanh(r1 r0^T);  P1 = clip(P + m2 H1);   r3 = tanh(x3 + (W + A * P1) r2)
    4. m3 = M(r3);  H2 = (1 - eta) H1 + eta tanh(r2 r1^T);  P2 = clip(P1 + m3 H2)   (-> next trial's P)
       (last trial, if asked: the final trace H3 = (1 - eta) H2 + eta tanh(r3 r2^T))

P at the start of every trial is kept for the backward (with gradients), else two buffers alternate.

Backward of trial t, last trial first (the kernels of `transitive.engine.gpu_backward`), given dLoss/d(rates) of the trial
from the loss, dLoss/dP2 (the running gradient of P, updated in place to dLoss/dP) and, for the last trial,
dLoss/dH3 if the final trace is used:

    1. g_Q2 = g_P2 [Q2];  partial g_m3 = sum g_Q2 H2;  g_H2 = m3 g_Q2 + (1 - eta) g_H3;  G2 = eta g_H2 (1 - T2^2)
       -> g_r2 (row part), g_r1 (column parts), g_eta; and the terms of g_H3 (G3) when given
    2. g_z3 = (g_r3 + g_m3 M'(r3)) (1 - r3^2);  g_P1 = g_Q2 + A * g_z3 r2^T;  g_A += (g_z3 r2^T) * P1;
       g_r2 column parts from (W + A * P1)^T g_z3;  g_Q1 = g_P1 [Q1] (-> g_P);  partial g_m2 = sum g_Q1 H1;
       g_H1 = (1 - eta) g_H2 + m2 g_Q1;  G1 = eta g_H1 (1 - T1^2) -> g_r1 (row part), g_r0 (column parts)
    3. g_z2 = (g_r2 + g_m2 M'(r2)) (1 - r2^2);  g_r1 column parts from (W + A * P)^T g_z2
    4. g_z1 = g_r1 (1 - r1^2);  G = g_z2 r1^T + g_z1 r0^T;  g_P += A * G;  g_A += G * P;
       g_r0 column parts from (W + A * P)^T g_z1

([c] is 1 where -50 <= c <= 50, as torch.clamp passes the gradient at the bounds.) The kernels write the
gradients of the drives (g_x1 = g_z1, g_x2[action] = g_z2, g_x3 = g_z3), per element the accumulated
g_A and the parts of g_eta, g_r0 and of the per-step g_m2, g_m3. The autograd Function (`FusedTrials`)
finishes with a few batched PyTorch operations per episode: g_W = sum over elements and trials of the
outer products g_z r^T (one batched matrix product), g_A and g_eta summed per member in a fixed order, and
the modulation parameters' gradients from g_m through M's own autograd.

tanh is computed from exp (Triton has no tanh of its own that its CPU interpreter runs): for |x| >= 1/8
as sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}), below by its Taylor polynomial to x^7. With an exact exp (the
interpreter's) the relative error is below 3e-7 everywhere. On a GPU, tl.exp is ex2.approx.f32 (about 2 ulp)
and the division div.full.f32 (about 2 ulp); the cancellation in 1 - e^{-2|x|} multiplies exp's error by
e^{-2|x|} / (1 - e^{-2|x|}), 3.5 at |x| = 1/8, so tanh there is about 1e-6 off (relative), falling to a few
1e-7 from |x| = 1 on.

Launches are wrapped by `transitive.engine.gpu_probe.naming_the_switch`: a compile, launch or resource error
names TRANSITIVE_KERNEL (the PyTorch runner); `gpu_probe.kernel_failure` checks these kernels against the
network's definition once per device and size before the engine uses them.

Tests run these kernels on the CPU through Triton's interpreter (TRITON_INTERPRET=1, set before this module
is imported) at tiny sizes, against the plain step-by-step definition.
"""
from __future__ import annotations

import os

import torch
import triton

from ..model.network import PLASTIC_CLIP
from .gpu_backward import _backward_1, _backward_2, _backward_3, _backward_4
from .gpu_forward import _forward_1, _forward_2, _forward_3, _forward_4
from .gpu_probe import naming_the_switch

# The definition of the rule this kernel was verified against (`transitive.engine.rule.rule_fingerprint` of
# PlasticNetwork when tests/test_gpu_kernel.py last passed); the engine runs the kernel only for that rule.
VERIFIED_RULE = {"forward": "088f37eb7c026ac0", "step": "b956efff317a4dce", "modulation": "f9039534c3fd40b5",
                 "effective_weights": "5ff4b9b3a91f5a31", "hebbian": "4e0992f7ca3cf982"}

ROWS_SWITCH = "TRANSITIVE_GPU_ROWS"  # rows of P per program (a power of 2); default by device, see rows_per_block


def interpreted() -> bool:
    """Whether these kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1 when this module was imported)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# ---------------------------------------------------------------------------------------------------------
# Launch geometry.

def rows_per_block(device: torch.device, n: int) -> int:
    """Rows of P per program. A block of (rows x padded n) floats and the few like it that a pass needs live in
    registers: 8 rows by default (the largest kernel, `_backward_2`, then holds 244 registers per thread on
    sm_90 without spilling: tools/compile_gpu_kernels.py), 4 on GPUs older than compute capability 8.0 (the
    T4 of Colab's free tier: fewer registers per thread, more programs resident). TRANSITIVE_GPU_ROWS
    overrides it (a power of 2)."""
    chosen = os.environ.get(ROWS_SWITCH, "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1 or int(chosen) & (int(chosen) - 1):
            raise ValueError(f"{ROWS_SWITCH} must be a power of 2, not {chosen!r}")
        return int(chosen)
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8:
        return 4
    return 8


class _Geometry:
    def __init__(self, n: int, elements: int, device):
        self.n = n
        self.columns = triton.next_power_of_2(n)
        self.rows = min(rows_per_block(torch.device(device), n), self.columns)
        self.blocks = triton.cdiv(n, self.rows)
        self.grid = (elements, self.blocks)


# ---------------------------------------------------------------------------------------------------------
# The autograd Function.

class FusedTrials(torch.autograd.Function):
    """All trials of an episode through the kernels above.

    Inputs: drive (E, T, 5, n): per trial the drives x0, x1, x2 (had the response been action 0), x2 (action 1),
    x3; plastic (E, n, n): P at the start of the first trial; W, A (K, n, n) (A expanded to n x n); eta,
    DAmult (K,); W_mod (K, 2, n), b_mod (K, 2); W_out (K, 2, n), b_out (K, 2) (sampling only, no gradient);
    batch (elements per member: E = K * batch); forced (E, T) long or None; uniform (E, T) or None;
    snapshot_trials: a tuple of trials whose P is kept; keep_trace: return the final trace.
    Outputs: rates (E, T, 4, n), P after the last trial, responses (E, T) long, the snapshots (S, 3, E, n, n)
    float16: P at the start, after step 2 and after step 3 of each snapshot trial (no gradient), the final trace
    (E, n, n, or empty).
    """

    @staticmethod
    def forward(ctx, drive, plastic, w, alpha, eta, damult, wmod, bmod, wout, bout, batch, forced, uniform,
                snapshot_trials, keep_trace):
        elements, ntrials, _, n = drive.shape
        geometry = _Geometry(n, elements, drive.device)
        keep = any(ctx.needs_input_grad)
        drive, w, alpha = drive.contiguous(), w.contiguous(), alpha.contiguous()
        eta, damult = eta.reshape(-1).contiguous(), damult.reshape(-1).contiguous()
        wmod, bmod = wmod.contiguous(), bmod.contiguous()
        wout, bout = wout.detach().contiguous(), bout.detach().contiguous()
        rates = drive.new_empty(elements, ntrials, 4, n)
        rates[:, :, 0] = torch.tanh(drive[:, :, 0])
        # P at the start of every trial (and after the last) when a backward follows, else two alternating
        saved = drive.new_empty(elements, ntrials + 1 if keep else 2, n, n)
        saved[:, 0] = plastic
        modulation = drive.new_empty(elements, ntrials, 2)
        actions = torch.empty(elements, ntrials, dtype=torch.long, device=drive.device)
        choice = forced if forced is not None else uniform
        choice = choice.contiguous()
        # P at the start, after step 2 and after step 3 of the snapshot trials, in float16 (as the records keep it)
        snapshots = drive.new_empty(len(snapshot_trials), 3, elements, n, n, dtype=torch.float16)
        trace = drive.new_empty(elements, n, n) if keep_trace else drive.new_empty(0)
        es_r, es_d, es_p = ntrials * 4 * n, ntrials * 5 * n, saved.stride(0)
        bound = float(PLASTIC_CLIP)
        common = dict(BR=geometry.rows, NC=geometry.columns)
        with naming_the_switch():
            for t in range(ntrials):
                start = saved[:, t if keep else t % 2]
                end = saved[:, t + 1 if keep else (t + 1) % 2]
                kept = snapshot_trials.index(t) if t in snapshot_trials else None
                if kept is not None:
                    snapshots[kept, 0] = start
                rates_t, drive_t = rates[:, t], drive[:, t]
                _forward_1[geometry.grid](start, es_p, w, alpha, drive_t, es_d, rates_t, es_r, n, batch, **common)
                _forward_2[geometry.grid](start, es_p, w, alpha, drive_t, es_d, rates_t, es_r, wout, bout,
                                          choice[:, t], choice.stride(0), actions[:, t], actions.stride(0), n, batch,
                                          FORCED=forced is not None, **common)
                middle_out = snapshots[kept, 1] if kept is not None else saved
                _forward_3[geometry.grid](start, es_p, w, alpha, eta, damult, wmod, bmod, drive_t, es_d, rates_t, es_r,
                                          modulation[:, t], modulation.stride(0), middle_out, middle_out.stride(0),
                                          n, batch, bound, MIDDLE=kept is not None, **common)
                last = keep_trace and t == ntrials - 1
                _forward_4[geometry.grid](start, es_p, end, es_p, eta, damult, wmod, bmod, rates_t, es_r,
                                          modulation[:, t], modulation.stride(0), trace if last else saved, n, batch,
                                          bound, TRACE=last, **common)
                if kept is not None:
                    snapshots[kept, 2] = end
        final = saved[:, ntrials if keep else ntrials % 2].clone()
        if keep:
            ctx.save_for_backward(saved, rates, modulation, actions, w, alpha, eta, damult, wmod, bmod)
            ctx.batch, ctx.geometry = batch, geometry
        ctx.mark_non_differentiable(actions, snapshots)
        return rates, final, actions, snapshots, trace

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_rates, g_final, _g_actions, _g_snapshots, g_trace):
        saved, rates, modulation, actions, w, alpha, eta, damult, wmod, bmod = ctx.saved_tensors
        batch, geometry = ctx.batch, ctx.geometry
        elements, ntrials, _, n = rates.shape
        members, blocks = w.shape[0], geometry.blocks
        g_rates = torch.zeros_like(rates) if g_rates is None else g_rates.contiguous()
        g_plastic = torch.zeros_like(saved[:, 0]) if g_final is None else g_final.clone(memory_format=torch.contiguous_format)
        has_gh3 = g_trace is not None and g_trace.numel() > 0
        g_h3 = g_trace.contiguous() if has_gh3 else g_plastic
        g_alpha_parts = torch.zeros_like(g_plastic)
        g_eta_parts = rates.new_zeros(elements, blocks)
        g_drive = rates.new_zeros(elements, ntrials, 5, n)
        g_mod = rates.new_empty(elements, ntrials, 2)
        g_r0_parts = rates.new_empty(elements, ntrials, blocks, n)
        rowpart = rates.new_empty(elements, 3, n)
        colpart = rates.new_empty(elements, 4, blocks, n)
        partial = rates.new_empty(elements, 2, blocks)
        es_p, es_r, es_g, es_gd = saved.stride(0), ntrials * 4 * n, ntrials * 4 * n, ntrials * 5 * n
        es_g0, es_m, es_a = ntrials * blocks * n, ntrials * 2, ntrials
        bound = float(PLASTIC_CLIP)
        common = dict(BR=geometry.rows, NC=geometry.columns)
        with naming_the_switch():
            for t in reversed(range(ntrials)):
                start, rates_t, g_rates_t = saved[:, t], rates[:, t], g_rates[:, t]
                mod_t, gmod_t, gdrive_t, action_t, gr0_t = (modulation[:, t], g_mod[:, t], g_drive[:, t],
                                                            actions[:, t], g_r0_parts[:, t])
                last = has_gh3 and t == ntrials - 1
                _backward_1[geometry.grid](start, es_p, g_plastic, g_h3, eta, rates_t, es_r, mod_t, es_m, rowpart,
                                           colpart, partial, g_eta_parts, n, batch, blocks, bound, GH3=last, **common)
                _backward_2[geometry.grid](start, es_p, g_plastic, g_h3, w, alpha, g_alpha_parts, eta, damult, wmod,
                                           bmod, rates_t, es_r, g_rates_t, es_g, mod_t, es_m, gmod_t, es_m, gdrive_t,
                                           es_gd, rowpart, colpart, partial, g_eta_parts, gr0_t, es_g0, n, batch,
                                           blocks, bound, GH3=last, **common)
                _backward_3[geometry.grid](start, es_p, w, alpha, damult, wmod, bmod, rates_t, es_r, g_rates_t, es_g,
                                           action_t, es_a, gmod_t, es_m, gdrive_t, es_gd, rowpart, colpart, partial,
                                           n, batch, blocks, **common)
                _backward_4[geometry.grid](start, es_p, g_plastic, w, alpha, g_alpha_parts, rates_t, es_r, g_rates_t,
                                           es_g, action_t, es_a, gdrive_t, es_gd, rowpart, colpart, gr0_t, es_g0, n,
                                           batch, blocks, **common)
        # Finish per member, in a fixed order.
        r0 = rates[:, :, 0]
        g_r0 = g_rates[:, :, 0] + g_r0_parts.sum(2)
        g_drive[:, :, 0] = g_r0 * (1 - r0 * r0)
        g_z = torch.stack([g_drive[:, :, 1], g_drive[:, :, 2] + g_drive[:, :, 3], g_drive[:, :, 4]], 2)
        pre = rates[:, :, :3]  # r0, r1, r2: the presynaptic rates of steps 1, 2, 3
        g_w = torch.bmm(g_z.reshape(members, -1, n).transpose(1, 2), pre.reshape(members, -1, n))
        g_alpha = g_alpha_parts.reshape(members, batch, n, n).sum(1)
        g_eta = g_eta_parts.reshape(members, -1).sum(1)
        with torch.enable_grad():
            params = [p.detach().requires_grad_() for p in (damult, wmod, bmod)]
            gain, weight, bias = params
            steps = rates[:, :, 2:4].detach().reshape(members, -1, n)  # r2, r3 per member
            drives = torch.tanh(torch.baddbmm(bias.unsqueeze(1), steps, weight.transpose(1, 2)))
            m = gain.reshape(members, 1) * (drives[..., 0] - drives[..., 1])
            g_damult, g_wmod, g_bmod = torch.autograd.grad(m, params, g_mod.reshape(members, -1))
        return (g_drive, g_plastic, g_w, g_alpha, g_eta, g_damult, g_wmod, g_bmod, None, None, None, None, None,
                None, None)
