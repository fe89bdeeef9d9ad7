"""The forward pass of a trial as Triton kernels (`transitive.engine.gpu_kernel` runs them; the equations are in its
docstring and in docs/method.md, section 8), and the device functions both passes use.

Every kernel runs one program per episode e and block of BR rows of P (grid (E, n / BR)), over the NC padded
columns; arguments: each per-element tensor's element stride (es_*), n, the batch (elements per member: the
member of element e is e // batch). n, BR, NC (and the backward's block count) are compile-time constants:
the masks of the padded columns and the offsets within a matrix fold into constants, and the loops over the
blocks of rows in the backward have a fixed trip count (unrolled by the compiler). A per-element store made by
one program of the element (the action, m) is masked to block 0 rather than put under an `if` (the same
store; with the `if`, Triton 3.1's ptxas spills 8 bytes in `_forward_3` on sm_90).
"""
import triton
import triton.language as tl


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
def _block(n, batch, BR: tl.constexpr, NC: tl.constexpr):
    """This program's element e (an episode of member k = e // batch), its block rb of BR rows of P, the
    padded columns, their masks, and the offsets of the block in an n x n matrix.

    e is 64-bit, so every offset of an element's data (e * es_p, ...) is computed in 64 bits: the element
    stride of the saved P is 31 n^2 = 1,240,000 at n = 200, and e * es_p passes 2^31 from 1,733 elements
    (members x batch) on. The member k (a 32-bit quotient: its offsets k n^2 stay below 2^31 up to 53,000
    members) and the offsets within one element (rows, columns, n x n) are 32-bit."""
    program = tl.program_id(0)
    e, k, rb = program.to(tl.int64), program // batch, tl.program_id(1)
    rows = rb * BR + tl.arange(0, BR)
    cols = tl.arange(0, NC)
    rmask, cmask = rows < n, cols < n
    return (e, k, rb, rows, cols, rmask, cmask, rmask[:, None] & cmask[None, :], rows[:, None] * n + cols[None, :])


@triton.jit
def _effective(w_ptr, a_ptr, k, n, square, mask, plastic):
    """W + A * P over a block of rows, for member k."""
    return tl.load(w_ptr + k * n * n + square, mask=mask, other=0.0) + \
        tl.load(a_ptr + k * n * n + square, mask=mask, other=0.0) * plastic


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
def _forward_1(p_ptr, es_p, w_ptr, a_ptr, drive_ptr, es_d, rates_ptr, es_r, n: tl.constexpr, batch,
               BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
    plastic = tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    weights = _effective(w_ptr, a_ptr, k, n, square, mask, plastic)
    r0 = tl.load(rates_ptr + e * es_r + cols, mask=cmask, other=0.0)
    x1 = tl.load(drive_ptr + e * es_d + n + rows, mask=rmask, other=0.0)
    r1 = _tanh(x1 + tl.sum(weights * r0[None, :], axis=1))
    tl.store(rates_ptr + e * es_r + n + rows, r1, mask=rmask)


@triton.jit
def _forward_2(p_ptr, es_p, w_ptr, a_ptr, drive_ptr, es_d, rates_ptr, es_r, wout_ptr, bout_ptr,
               choice_ptr, es_c, action_ptr, es_a, n: tl.constexpr, batch,
               FORCED: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
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
    tl.store(action_ptr + e * es_a, action.to(tl.int64), mask=rb == 0)
    plastic = tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0)
    weights = _effective(w_ptr, a_ptr, k, n, square, mask, plastic)
    x2 = tl.load(drive_ptr + e * es_d + (2 + action) * n + rows, mask=rmask, other=0.0)
    r2 = _tanh(x2 + tl.sum(weights * r1[None, :], axis=1))
    tl.store(rates_ptr + e * es_r + 2 * n + rows, r2, mask=rmask)


@triton.jit
def _forward_3(p_ptr, es_p, w_ptr, a_ptr, eta_ptr, gain_ptr, wmod_ptr, bmod_ptr, drive_ptr, es_d,
               rates_ptr, es_r, mod_ptr, es_m, middle_ptr, es_mid, n: tl.constexpr, batch, bound,
               MIDDLE: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    m2, _, _ = _modulation(r2, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, tl.load(gain_ptr + k), cols, cmask, n)
    tl.store(mod_ptr + e * es_m, m2, mask=rb == 0)
    eta = tl.load(eta_ptr + k)
    trace1 = eta * _tanh(r1_rows[:, None] * r0[None, :])
    plastic = _clip(tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0) + m2 * trace1, bound)
    if MIDDLE:
        tl.store(middle_ptr + e * es_mid + square, plastic.to(middle_ptr.dtype.element_ty), mask=mask)
    weights = _effective(w_ptr, a_ptr, k, n, square, mask, plastic)
    x3 = tl.load(drive_ptr + e * es_d + 4 * n + rows, mask=rmask, other=0.0)
    r3 = _tanh(x3 + tl.sum(weights * r2[None, :], axis=1))
    tl.store(base + 3 * n + rows, r3, mask=rmask)


@triton.jit
def _forward_4(p_ptr, es_p, out_ptr, es_o, eta_ptr, gain_ptr, wmod_ptr, bmod_ptr, rates_ptr, es_r,
               mod_ptr, es_m, trace_ptr, n: tl.constexpr, batch, bound,
               TRACE: tl.constexpr, BR: tl.constexpr, NC: tl.constexpr):
    e, k, rb, rows, cols, rmask, cmask, mask, square = _block(n, batch, BR, NC)
    base = rates_ptr + e * es_r
    r0 = tl.load(base + cols, mask=cmask, other=0.0)
    r1 = tl.load(base + n + cols, mask=cmask, other=0.0)
    r2 = tl.load(base + 2 * n + cols, mask=cmask, other=0.0)
    r3 = tl.load(base + 3 * n + cols, mask=cmask, other=0.0)
    r1_rows = tl.load(base + n + rows, mask=rmask, other=0.0)
    r2_rows = tl.load(base + 2 * n + rows, mask=rmask, other=0.0)
    m2 = tl.load(mod_ptr + e * es_m)
    m3, _, _ = _modulation(r3, wmod_ptr + k * 2 * n, bmod_ptr + k * 2, tl.load(gain_ptr + k), cols, cmask, n)
    tl.store(mod_ptr + e * es_m + 1, m3, mask=rb == 0)
    eta = tl.load(eta_ptr + k)
    trace1 = eta * _tanh(r1_rows[:, None] * r0[None, :])
    plastic = _clip(tl.load(p_ptr + e * es_p + square, mask=mask, other=0.0) + m2 * trace1, bound)
    trace2 = (1.0 - eta) * trace1 + eta * _tanh(r2_rows[:, None] * r1[None, :])
    tl.store(out_ptr + e * es_o + square, _clip(plastic + m3 * trace2, bound), mask=mask)
    if TRACE:
        r3_rows = tl.load(base + 3 * n + rows, mask=rmask, other=0.0)
        trace3 = (1.0 - eta) * trace2 + eta * _tanh(r3_rows[:, None] * r2[None, :])
        tl.store(trace_ptr + e * n * n + square, trace3, mask=mask)
