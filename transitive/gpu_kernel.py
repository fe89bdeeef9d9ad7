"""The trial loop of a whole episode as Triton kernels: forward and hand-derived backward, for K networks at once.

Why: on a GPU the PyTorch trial loop is a long chain of small elementwise passes over (elements, n, n)
temporaries (thousands of kernel launches per episode, and memory traffic for temporaries rather than
arithmetic). Here each trial is 4 kernels forward and 4 backward, each a pass over the plastic weights P of
every episode, cut into blocks of rows (one Triton program per episode and block of rows: many programs
even for a single network), with nothing but P, its gradient and small vectors in memory.

The equations are those of one trial derived in docs/method.md, section 8 (the CPU kernel of
`transitive.kernels` computes the same), with two changes of bookkeeping:
- An "element" is one episode of one member: elements e = k * batch + b, and every parameter carries a
  leading member axis (W, A: (K, n, n); eta, DAmult: (K,); W_mod (K, 2, n), b_mod (K, 2); W_out, b_out
  likewise, used to sample the response only).
- A vector that a pass needs whole (all of r1 to choose the action, all of r2 for m2 = M(r2), the column
  sums of a transposed product) is finished by the next kernel: each program writes its block's part, and
  the next kernel adds the parts in a fixed order. No atomics anywhere, so every result, gradients
  included, is the same from run to run.

Forward of trial t (kernels `_forward_1` .. `_forward_4`; x are the feedforward drives, r0 = tanh(x0)):

    1. r1 = tanh(x1 + (W + A * P) r0)
    2. action = forced, or u < softmax(W_out r1 + b_out)[1];   r2 = tanh(x2[action] + (W + A * P) r1)
    3. m2 = M(r2);  H1 = eta tanh(r1 r0^T);  P1 = clip(P + m2 H1);   r3 = tanh(x3 + (W + A * P1) r2)
    4. m3 = M(r3);  H2 = (1 - eta) H1 + eta tanh(r2 r1^T);  P2 = clip(P1 + m3 H2)   (-> next trial's P)
       (last trial, if asked: the final trace H3 = (1 - eta) H2 + eta tanh(r3 r2^T))

P at the start of every trial is kept for the backward (with gradients), else two buffers alternate.

Backward of trial t, last trial first (`_backward_1` .. `_backward_4`), given dLoss/d(rates) of the trial
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
as sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}), below by its Taylor polynomial to x^7 (relative error below
3e-7 everywhere).

Tests run these kernels on the CPU through Triton's interpreter (TRITON_INTERPRET=1, set before this module
is imported) at tiny sizes, against the plain step-by-step definition.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .network import PLASTIC_CLIP

ROWS_SWITCH = "TRANSITIVE_GPU_ROWS"  # rows of P per program (a power of 2); default by device, see rows_per_block


def interpreted() -> bool:
    """Whether these kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1 when this module was imported)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# ---------------------------------------------------------------------------------------------------------
# Small device functions.

@triton.jit
def _tanh(x):
    a = tl.abs(x)
    t = tl.exp(-2.0 * a)
    far = (1.0 - t) / (1.0 + t)
    s = a * a
    near = a * (1.0 + s * (-0.3333333333333333 + s * (0.13333333333333333 + s * (-0.05396825396825397))))
    y = tl.where(a < 0.125, near, far)
    return tl.where(x < 0.0, -y, y)


@triton.jit
def _modulation(r, wmod_ptr, bmod_ptr, gain, cols, cmask, n):
    """m = DAmult (d_0 - d_1), d = tanh(W_mod r + b_mod), for r given over the padded columns; returns m, d_0, d_1."""
    d0 = _tanh(tl.sum(tl.load(wmod_ptr + cols, mask=cmask, other=0.0) * r, axis=0) + tl.load(bmod_ptr))
    d1 = _tanh(tl.sum(tl.load(wmod_ptr + n + cols, mask=cmask, other=0.0) * r, axis=0) + tl.load(bmod_ptr + 1))
    return gain * (d0 - d1), d0, d1


@triton.jit
def _modulation_slope(wmod_ptr, gain, d0, d1, idx, mask, n):
    """dm/dr at the indices idx."""
    w0 = tl.load(wmod_ptr + idx, mask=mask, other=0.0)
    w1 = tl.load(wmod_ptr + n + idx, mask=mask, other=0.0)
    return gain * ((1.0 - d0 * d0) * w0 - (1.0 - d1 * d1) * w1)


@triton.jit
def _clip(x, bound):
    return tl.minimum(tl.maximum(x, -bound), bound)


@triton.jit
def _inside(g, x, bound):
    return tl.where((x >= -bound) & (x <= bound), g, 0.0)


# ---------------------------------------------------------------------------------------------------------
# Forward. Common arguments: element stride (es_*) of each per-element tensor, n, batch (elements per member),
# BR rows per program, NC the padded column count (a power of 2 >= n).

@triton.jit
def _forward_1(p_ptr, es_p, w_ptr, a_ptr, drive_ptr, es_d, rates_ptr, es_r, n, batch,
               BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    plastic = tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    weights = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + \
        tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0) * plastic
    r0 = tl.load(rates_ptr + e * es_r + cols, mask=cmask, other=0.0)
    x1 = tl.load(drive_ptr + e * es_d + n + rows, mask=rmask, other=0.0)
    r1 = _tanh(x1 + tl.sum(weights * r0[None, :], axis=1))
    tl.store(rates_ptr + e * es_r + n + rows, r1, mask=rmask)


@triton.jit
def _forward_2(p_ptr, es_p, w_ptr, a_ptr, drive_ptr, es_d, rates_ptr, es_r, wout_ptr, bout_ptr,
               choice_ptr, es_c, action_ptr, es_a, n, batch,
               FORCED: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    r1 = tl.load(rates_ptr + e * es_r + n + cols, mask=cmask, other=0.0)
    if FORCED:
        action = tl.load(choice_ptr + e * es_c).to(tl.int32)
    else:  # every program of the element computes the same action from the same r1
        l0 = tl.sum(tl.load(wout_ptr + k * 2 * n + cols, mask=cmask, other=0.0) * r1, axis=0) + \
            tl.load(bout_ptr + k * 2)
        l1 = tl.sum(tl.load(wout_ptr + k * 2 * n + n + cols, mask=cmask, other=0.0) * r1, axis=0) + \
            tl.load(bout_ptr + k * 2 + 1)
        top = tl.maximum(l0, l1)
        e0, e1 = tl.exp(l0 - top), tl.exp(l1 - top)
        action = (tl.load(choice_ptr + e * es_c) < e1 / (e0 + e1)).to(tl.int32)
    if rb == 0:
        tl.store(action_ptr + e * es_a, action.to(tl.int64))
    plastic = tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    weights = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + \
        tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0) * plastic
    x2 = tl.load(drive_ptr + e * es_d + (2 + action) * n + rows, mask=rmask, other=0.0)
    r2 = _tanh(x2 + tl.sum(weights * r1[None, :], axis=1))
    tl.store(rates_ptr + e * es_r + 2 * n + rows, r2, mask=rmask)


@triton.jit
def _forward_3(p_ptr, es_p, w_ptr, a_ptr, eta_ptr, gain_ptr, wmod_ptr, bmod_ptr, drive_ptr, es_d,
               rates_ptr, es_r, mod_ptr, es_m, middle_ptr, es_mid, n, batch, bound,
               MIDDLE: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    m2, _, _ = _modulation(r2, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, tl.load(gain_ptr + k), cols, cmask, n)
    if rb == 0:
        tl.store(mod_ptr + e * es_m, m2)
    eta = tl.load(eta_ptr + k)
    trace1 = eta * _tanh(r1_rows[:, None] * r0[None, :])
    plastic = _clip(tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0) + m2 * trace1, bound)
    if MIDDLE:
        tl.store(middle_ptr + e * es_mid + square, plastic.to(middle_ptr.dtype.element_ty), mask=mask)
    weights = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + \
        tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0) * plastic
    x3 = tl.load(drive_ptr + e * es_d + 4 * n + rows, mask=rmask, other=0.0)
    r3 = _tanh(x3 + tl.sum(weights * r2[None, :], axis=1))
    tl.store(base + 3 * n + rows, r3, mask=rmask)


@triton.jit
def _forward_4(p_ptr, es_p, out_ptr, es_o, eta_ptr, gain_ptr, wmod_ptr, bmod_ptr, rates_ptr, es_r,
               mod_ptr, es_m, trace_ptr, n, batch, bound,
               TRACE: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r1 = tl.load(base + n + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r3 = tl.load(base + 3 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    m2 = tl.load(mod_ptr + e * es_m)
    m3, _, _ = _modulation(r3, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, tl.load(gain_ptr + k), cols, cmask, n)
    if rb == 0:
        tl.store(mod_ptr + e * es_m + 1, m3)
    eta = tl.load(eta_ptr + k)
    trace1 = eta * _tanh(r1_rows[:, None] * r0[None, :])
    plastic = _clip(tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0) + m2 * trace1, bound)
    trace2 = (1.0 - eta) * trace1 + eta * _tanh(r2_rows[:, None] * r1[None, :])
    tl.store(out_ptr + e * es_o + square, _clip(plastic + m3 * trace2, bound), mask=mask)
    if TRACE:
        r3_rows = tl.load(base + 3 * n + rows, mask=rmask, other=0.0)
        trace3 = (1.0 - eta) * trace2 + eta * _tanh(r3_rows[:, None] * r2[None, :])
        tl.store(trace_ptr + e * n * n + square, trace3, mask=mask)


# ---------------------------------------------------------------------------------------------------------
# Backward. Scratch per element (reused by every trial): `rowpart` (E, 3, n) row-local parts of g_r1, g_r2,
# g_r3; `colpart` (E, 4, NB, n) column parts of g_r1 (from G2), g_r2 (from G3 and from the step-3 product),
# g_r1 (from the step-2 product); `partial` (E, 2, NB) parts of g_m3, g_m2. Accumulated over the trials,
# per element: g_A (E, n, n) and g_eta parts (E, NB). Written per trial: g_r0 parts (E, T, NB, n), g_m
# (E, T, 2), g_drive (E, T, 5, n) (the drives' gradients; x0's is finished outside from g_r0).

@triton.jit
def _recompute(p_ptr, eta, m2, m3, r0, r1, r2, r1_rows, r2_rows, square, mask, bound):
    """P, T1, H1, Q1, P1, T2, H2, Q2 of one block of rows."""
    plastic = tl.load(p_ptr + square, mask=mask, other=0.0)
    t1 = _tanh(r1_rows[:, None] * r0[None, :])
    h1 = eta * t1
    q1 = plastic + m2 * h1
    p1 = _clip(q1, bound)
    t2 = _tanh(r2_rows[:, None] * r1[None, :])
    h2 = (1.0 - eta) * h1 + eta * t2
    q2 = p1 + m3 * h2
    return plastic, t1, h1, q1, p1, t2, h2, q2


@triton.jit
def _backward_1(p_ptr, es_p, gp_ptr, gh3_ptr, eta_ptr, rates_ptr, es_r, mod_ptr, es_m,
                rowpart_ptr, colpart_ptr, partial_ptr, geta_ptr, n, batch, nblocks, bound,
                GH3: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r1 = tl.load(base + n + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    m2, m3 = tl.load(mod_ptr + e * es_m), tl.load(mod_ptr + e * es_m + 1)
    eta = tl.load(eta_ptr + k)
    plastic, t1, h1, q1, p1, t2, h2, q2 = _recompute(p_ptr + e * es_p, eta, m2, m3, r0, r1, r2, r1_rows,
                                                     r2_rows, square, mask, bound)
    g_q2 = _inside(tl.load(gp_ptr + e * n * n + square, mask=mask, other=0.0), q2, bound)
    g_m3 = tl.sum(tl.sum(g_q2 * h2, axis=1), axis=0)
    g_h2 = m3 * g_q2
    g_eta = 0.0
    if GH3:
        r3_rows = tl.load(base + 3 * n + rows, mask=rmask, other=0.0)
        g_h3 = tl.load(gh3_ptr + e * n * n + square, mask=mask, other=0.0)
        t3 = _tanh(r3_rows[:, None] * r2[None, :])
        big3 = eta * g_h3 * (1.0 - t3 * t3)
        tl.store(rowpart_ptr + e * 3 * n + 2 * n + rows, tl.sum(big3 * r2[None, :], axis=1), mask=rmask)
        tl.store(colpart_ptr + ((e * 4 + 1) * nblocks + rb) * n + cols, tl.sum(big3 * r3_rows[:, None], axis=0),
                 mask=cmask)
        g_eta += tl.sum(tl.sum(g_h3 * (t3 - h2), axis=1), axis=0)
        g_h2 += (1.0 - eta) * g_h3
    else:
        tl.store(rowpart_ptr + e * 3 * n + 2 * n + rows, tl.zeros([BR], dtype=tl.float32), mask=rmask)
        tl.store(colpart_ptr + ((e * 4 + 1) * nblocks + rb) * n + cols, tl.zeros([NC], dtype=tl.float32),
                 mask=cmask)
    g_eta += tl.sum(tl.sum(g_h2 * (t2 - h1), axis=1), axis=0)
    big2 = eta * g_h2 * (1.0 - t2 * t2)
    tl.store(rowpart_ptr + e * 3 * n + n + rows, tl.sum(big2 * r1[None, :], axis=1), mask=rmask)
    tl.store(colpart_ptr + ((e * 4 + 0) * nblocks + rb) * n + cols, tl.sum(big2 * r2_rows[:, None], axis=0),
             mask=cmask)
    tl.store(partial_ptr + (e * 2 + 0) * nblocks + rb, g_m3)
    tl.store(geta_ptr + e * nblocks + rb, tl.load(geta_ptr + e * nblocks + rb) + g_eta)


@triton.jit
def _column_sum(colpart_ptr, slot, e, nblocks, n, idx, mask):
    """Sum over the blocks of rows, in their order, of column parts `slot` of element e, at indices idx."""
    total = tl.zeros(idx.shape, dtype=tl.float32)
    for q in range(nblocks):
        total += tl.load(colpart_ptr + ((e * 4 + slot) * nblocks + q) * n + idx, mask=mask, other=0.0)
    return total


@triton.jit
def _block_sum(partial_ptr, slot, e, nblocks):
    total = 0.0
    for q in range(nblocks):
        total += tl.load(partial_ptr + (e * 2 + slot) * nblocks + q)
    return total


@triton.jit
def _backward_2(p_ptr, es_p, gp_ptr, gh3_ptr, w_ptr, a_ptr, ga_ptr, eta_ptr, gain_ptr, wmod_ptr, bmod_ptr,
                rates_ptr, es_r, grates_ptr, es_g, mod_ptr, es_m, gmod_ptr, es_gm, gdrive_ptr, es_gd,
                rowpart_ptr, colpart_ptr, partial_ptr, geta_ptr, gr0_ptr, es_g0, n, batch, nblocks, bound,
                GH3: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r1 = tl.load(base + n + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r3 = tl.load(base + 3 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    r3_rows = tl.load(base + 3 * n + rows, mask=rmask, other=0.0)
    m2, m3 = tl.load(mod_ptr + e * es_m), tl.load(mod_ptr + e * es_m + 1)
    eta = tl.load(eta_ptr + k)
    # g_z3 of this block's rows
    g_m3 = _block_sum(partial_ptr, 0, e, nblocks)
    if rb == 0:
        tl.store(gmod_ptr + e * es_gm + 1, g_m3)
    gain = tl.load(gain_ptr + k)
    _, d0, d1 = _modulation(r3, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, gain, cols, cmask, n)
    slope3 = _modulation_slope(wmod_ptr + k * 2 * n, gain, d0, d1, rows, rmask, n)
    g_r3 = tl.load(grates_ptr + e * es_g + 3 * n + rows, mask=rmask, other=0.0) + \
        tl.load(rowpart_ptr + e * 3 * n + 2 * n + rows, mask=rmask, other=0.0)
    g_z3 = (g_r3 + g_m3 * slope3) * (1.0 - r3_rows * r3_rows)
    tl.store(gdrive_ptr + e * es_gd + 4 * n + rows, g_z3, mask=rmask)

    plastic, t1, h1, q1, p1, t2, h2, q2 = _recompute(p_ptr + e * es_p, eta, m2, m3, r0, r1, r2, r1_rows,
                                                     r2_rows, square, mask, bound)
    g_q2 = _inside(tl.load(gp_ptr + e * n * n + square, mask=mask, other=0.0), q2, bound)
    g_h2 = m3 * g_q2
    if GH3:
        g_h2 += (1.0 - eta) * tl.load(gh3_ptr + e * n * n + square, mask=mask, other=0.0)
    alpha = tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0)
    outer3 = g_z3[:, None] * r2[None, :]
    g_p1 = g_q2 + alpha * outer3
    g_a = tl.load(ga_ptr + e * n * n + square, mask=mask, other=0.0) + outer3 * p1
    weights1 = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + alpha * p1
    tl.store(colpart_ptr + ((e * 4 + 2) * nblocks + rb) * n + cols, tl.sum(weights1 * g_z3[:, None], axis=0),
             mask=cmask)
    g_q1 = _inside(g_p1, q1, bound)
    tl.store(gp_ptr + e * n * n + square, g_q1, mask=mask)
    tl.store(partial_ptr + (e * 2 + 1) * nblocks + rb, tl.sum(tl.sum(g_q1 * h1, axis=1), axis=0))
    g_h1 = (1.0 - eta) * g_h2 + m2 * g_q1
    g_eta = tl.sum(tl.sum(g_h1 * t1, axis=1), axis=0)
    tl.store(geta_ptr + e * nblocks + rb, tl.load(geta_ptr + e * nblocks + rb) + g_eta)
    big1 = eta * g_h1 * (1.0 - t1 * t1)
    tl.store(rowpart_ptr + e * 3 * n + rows, tl.sum(big1 * r0[None, :], axis=1), mask=rmask)
    tl.store(gr0_ptr + e * es_g0 + rb * n + cols, tl.sum(big1 * r1_rows[:, None], axis=0), mask=cmask)
    tl.store(ga_ptr + e * n * n + square, g_a, mask=mask)


@triton.jit
def _backward_3(p_ptr, es_p, w_ptr, a_ptr, gain_ptr, wmod_ptr, bmod_ptr, rates_ptr, es_r, grates_ptr, es_g,
                action_ptr, es_a, gmod_ptr, es_gm, gdrive_ptr, es_gd, rowpart_ptr, colpart_ptr, partial_ptr,
                n, batch, nblocks, BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    g_m2 = _block_sum(partial_ptr, 1, e, nblocks)
    if rb == 0:
        tl.store(gmod_ptr + e * es_gm, g_m2)
    gain = tl.load(gain_ptr + k)
    _, d0, d1 = _modulation(r2, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, gain, cols, cmask, n)
    slope2 = _modulation_slope(wmod_ptr + k * 2 * n, gain, d0, d1, rows, rmask, n)
    g_r2 = tl.load(grates_ptr + e * es_g + 2 * n + rows, mask=rmask, other=0.0) + \
        tl.load(rowpart_ptr + e * 3 * n + n + rows, mask=rmask, other=0.0) + \
        _column_sum(colpart_ptr, 1, e, nblocks, n, rows, rmask) + \
        _column_sum(colpart_ptr, 2, e, nblocks, n, rows, rmask)
    g_z2 = (g_r2 + g_m2 * slope2) * (1.0 - r2_rows * r2_rows)
    action = tl.load(action_ptr + e * es_a).to(tl.int32)
    tl.store(gdrive_ptr + e * es_gd + (2 + action) * n + rows, g_z2, mask=rmask)
    weights = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + \
        tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0) * \
        tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    tl.store(colpart_ptr + ((e * 4 + 3) * nblocks + rb) * n + cols, tl.sum(weights * g_z2[:, None], axis=0),
             mask=cmask)


@triton.jit
def _backward_4(p_ptr, es_p, gp_ptr, w_ptr, a_ptr, ga_ptr, rates_ptr, es_r, grates_ptr, es_g,
                action_ptr, es_a, gdrive_ptr, es_gd, rowpart_ptr, colpart_ptr, gr0_ptr, es_g0, n, batch, nblocks,
                BR: tl.constexpr, NC: tl.constexpr):
    e, rb = tl.program_id(0), tl.program_id(1)
    k = e // batch
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    mask = rmask[:, None] & cmask[None, :]
    square = rows[:, None] * n + cols[None, :]
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r1 = tl.load(base + n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    g_r1 = tl.load(grates_ptr + e * es_g + n + rows, mask=rmask, other=0.0) + \
        tl.load(rowpart_ptr + e * 3 * n + rows, mask=rmask, other=0.0) + \
        _column_sum(colpart_ptr, 0, e, nblocks, n, rows, rmask) + \
        _column_sum(colpart_ptr, 3, e, nblocks, n, rows, rmask)
    g_z1 = g_r1 * (1.0 - r1_rows * r1_rows)
    tl.store(gdrive_ptr + e * es_gd + n + rows, g_z1, mask=rmask)
    action = tl.load(action_ptr + e * es_a).to(tl.int32)
    g_z2 = tl.load(gdrive_ptr + e * es_gd + (2 + action) * n + rows, mask=rmask, other=0.0)
    outer = g_z2[:, None] * r1[None, :] + g_z1[:, None] * r0[None, :]
    plastic = tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    alpha = tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0)
    tl.store(gp_ptr + e * n * n + square, tl.load(gp_ptr + e * n * n + square, mask=mask, other=0.0) +
             alpha * outer, mask=mask)
    tl.store(ga_ptr + e * n * n + square, tl.load(ga_ptr + e * n * n + square, mask=mask, other=0.0) +
             outer * plastic, mask=mask)
    weights = tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + alpha * plastic
    g_r0 = tl.load(gr0_ptr + e * es_g0 + rb * n + cols, mask=cmask, other=0.0) + \
        tl.sum(weights * g_z1[:, None], axis=0)
    tl.store(gr0_ptr + e * es_g0 + rb * n + cols, g_r0, mask=cmask)


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
            ctx.batch, ctx.geometry, ctx.eta_shape, ctx.damult_shape = batch, geometry, None, None
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
        for t in reversed(range(ntrials)):
            start, rates_t, g_rates_t = saved[:, t], rates[:, t], g_rates[:, t]
            mod_t, gmod_t, gdrive_t, action_t, gr0_t = (modulation[:, t], g_mod[:, t], g_drive[:, t], actions[:, t],
                                                        g_r0_parts[:, t])
            last = has_gh3 and t == ntrials - 1
            _backward_1[geometry.grid](start, es_p, g_plastic, g_h3, eta, rates_t, es_r, mod_t, es_m, rowpart, colpart,
                                       partial, g_eta_parts, n, batch, blocks, bound, GH3=last, **common)
            _backward_2[geometry.grid](start, es_p, g_plastic, g_h3, w, alpha, g_alpha_parts, eta, damult, wmod, bmod,
                                       rates_t, es_r, g_rates_t, es_g, mod_t, es_m, gmod_t, es_m, gdrive_t, es_gd,
                                       rowpart, colpart, partial, g_eta_parts, gr0_t, es_g0, n, batch, blocks,
                                       bound, GH3=last, **common)
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
