"""The backward pass of a trial as Triton kernels (`transitive.engine.gpu_kernel` runs them; the equations are in its
docstring and in docs/method.md, section 8): the sums across blocks of rows are finished by the next kernel,
in a fixed order, so gradients are the same from run to run.
"""
import triton
import triton.language as tl

from .gpu_forward import _block, _clip, _effective, _inside, _modulation, _modulation_slope, _tanh


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
                rowpart_ptr, colpart_ptr, partial_ptr, geta_ptr, n: tl.constexpr, batch, nblocks: tl.constexpr, bound,
                GH3: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
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
    """Sum over the blocks of rows, in their order, of column parts `slot` of element e, at indices idx.
    nblocks is a compile-time constant, so the loop is unrolled (fully on sm_90 at n = 200: its loads no longer
    wait for one another); the order of the additions, and so every bit of the sum, is that of the loop."""
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
                rowpart_ptr, colpart_ptr, partial_ptr, geta_ptr, gr0_ptr, es_g0, n: tl.constexpr, batch,
                nblocks: tl.constexpr, bound,
                GH3: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
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
    tl.store(gmod_ptr + e * es_gm + 1, g_m3, mask=rb == 0)
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
                n: tl.constexpr, batch, nblocks: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
    base = rates_ptr + e * es_r
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    g_m2 = _block_sum(partial_ptr, 1, e, nblocks)
    tl.store(gmod_ptr + e * es_gm, g_m2, mask=rb == 0)
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
    weights = _effective(w_ptr, a_ptr, k, n, square, mask, tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0))
    tl.store(colpart_ptr + ((e * 4 + 3) * nblocks + rb) * n + cols, tl.sum(weights * g_z2[:, None], axis=0),
             mask=cmask)


@triton.jit
def _backward_4(p_ptr, es_p, gp_ptr, w_ptr, a_ptr, ga_ptr, rates_ptr, es_r, grates_ptr, es_g,
                action_ptr, es_a, gdrive_ptr, es_gd, rowpart_ptr, colpart_ptr, gr0_ptr, es_g0, n: tl.constexpr, batch,
                nblocks: tl.constexpr,
                BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
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
