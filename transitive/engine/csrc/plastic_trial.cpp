// One trial of the plastic network, forward and backward; see transitive/engine/cpu_kernel.py and docs/method.md (section 8) for the equations.
// Inner loops run over 8 columns at a time with GCC vector extensions (AVX with -march=native, else pairs
// of SSE/NEON registers): n must be a multiple of 8.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

typedef float v8f __attribute__((vector_size(32)));

inline v8f load(const float* p) { v8f v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
inline v8f splat(float x) { return v8f{} + x; }
inline v8f vmin(v8f a, v8f b) { return a < b ? a : b; }
inline v8f vmax(v8f a, v8f b) { return a > b ? a : b; }
inline float hsum(v8f v) {
    float s = 0.0f;
    for (int k = 0; k < 8; ++k) s += v[k];
    return s;
}

// v as it stands: the compiler may not fuse the multiplication that made v into an addition that uses it
// (a fused multiply-add rounds once, so the bits would depend on the compiler's choice).
inline v8f settled(v8f v) {
#if defined(__AVX__)
    asm("" : "+x"(v));
#else
    asm("" : "+m"(v));
#endif
    return v;
}

// tanh(x) ~ x p(x^2) / q(x^2) on |x| <= 9 (tanh(9) is 1 in float32), p(0) = q(0) = 1. Written as
// x + x s d(s) / q(s) with s = x^2 and d = (p - q) / s where |x| <= 1, so that the rounding errors of the
// polynomials only touch the small correction (about 1 ulp); as x p / q beyond, where that form would
// cancel (a few ulps). Clipped to [-1, 1]. With Unit, x must be within [-1, 1] (products of two rates):
// only the first form is computed, with the same bits.
template <bool Unit = false>
inline v8f tanh_approx(v8f x) {
    if (!Unit) x = vmin(vmax(x, splat(-9.0f)), splat(9.0f));
    const v8f s = x * x;
    v8f q = splat(7.804604268502133e-07f);
    q = q * s + 0.0003291022922085823f;
    q = q * s + 0.025890179922810376f;
    q = q * s + 0.46717296286900034f;
    q = q * s + 1.0f;
    v8f d = splat(-7.670409564398874e-07f);
    d = d * s + -0.00030844121636025573f;
    d = d * s + -0.022391191778213845f;
    d = d * s + -0.3333332150363195f;
    v8f t;
    if (Unit) {
        t = x + settled(x * ((s * d) / q));
    } else {
        v8f p = splat(1.3419470410325901e-08f);
        p = p * s + 2.0661075848326566e-05f;
        p = p * s + 0.003498988144596529f;
        p = p * s + 0.13383974783268085f;
        p = p * s + 1.0f;
        const auto small = s <= 1.0f;
        const v8f xr = settled(x * ((small ? s * d : p) / q));
        t = small ? x + xr : xr;
    }
    return vmin(vmax(t, splat(-1.0f)), splat(1.0f));
}

inline v8f clip(v8f v, v8f lo, v8f hi) { return vmin(vmax(v, lo), hi); }
// g where lo <= v <= hi (torch.clamp passes the gradient at the bounds too), else 0
inline v8f pass_inside(v8f g, v8f v, v8f lo, v8f hi) { return ((v >= lo) & (v <= hi)) ? g : v8f{}; }

// sum over j = 0, 8, ..., n - 8 of the 8 lanes of term(j), with four independent accumulators (with one,
// every step would wait for the previous addition).
template <class T>
inline float row_sum(int64_t n, T term) {
    v8f a0{}, a1{}, a2{}, a3{};
    int64_t j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 += term(j); a1 += term(j + 8); a2 += term(j + 16); a3 += term(j + 24);
    }
    for (; j < n; j += 8) a0 += term(j);
    return hsum((a0 + a1) + (a2 + a3));
}

inline float dot(int64_t n, const float* a, const float* b) {
    return row_sum(n, [=](int64_t j) { return load(a + j) * load(b + j); });
}

// whether every |v_j| <= 1 (false for a NaN)
inline bool within_unit(int64_t n, const float* v) {
    for (int64_t j = 0; j < n; ++j)
        if (!(std::fabs(v[j]) <= 1.0f)) return false;
    return true;
}

// out_j = tanh_approx(post * pre_j), j < n; unit: |post| <= 1 and every |pre_j| <= 1.
void tanh_outer_row(int64_t n, float post, const float* pre, bool unit, float* out) {
    const v8f p = splat(post);
    if (unit)
        for (int64_t j = 0; j < n; j += 8) store(out + j, tanh_approx<true>(p * load(pre + j)));
    else
        for (int64_t j = 0; j < n; j += 8) store(out + j, tanh_approx(p * load(pre + j)));
}

// y_i = sum_j (W_ij + A_ij P_ij) v_j
void plastic_matvec(int64_t n, const float* W, const float* A, const float* P, const float* v, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        const float *Wi = W + i * n, *Ai = A + i * n, *Pi = P + i * n;
        y[i] = row_sum(n, [=](int64_t j) { return (load(Wi + j) + load(Ai + j) * load(Pi + j)) * load(v + j); });
    }
}

// y_j += sum_i (W_ij + A_ij P_ij) g_i   (the transposed product, accumulated)
void plastic_matvec_t(int64_t n, const float* W, const float* A, const float* P, const float* g, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        const float *Wi = W + i * n, *Ai = A + i * n, *Pi = P + i * n;
        const v8f gi = splat(g[i]);
        for (int64_t j = 0; j < n; j += 8)
            store(y + j, load(y + j) + (load(Wi + j) + load(Ai + j) * load(Pi + j)) * gi);
    }
}

struct Modulation {
    int64_t n; const float* w; const float* b; float gain;
    float operator()(const float* r) const {
        return gain * (std::tanh(dot(n, w, r) + b[0]) - std::tanh(dot(n, w + n, r) + b[1]));
    }
};

// The batch is cut into `groups` fixed groups (element b in group b % groups) that threads take one at a
// time, each calling f(group, b) for its elements in order. A thread the OS pauses then holds the others up
// by one group at most, and anything a group accumulates (g_A) is summed in an order that depends neither
// on the scheduling nor on the number of threads: runs are reproducible. The threads are torch's own
// OpenMP threads when built against torch's libgomp (no second pool spinning against torch's), else
// std::threads.
template <class F>
void over_batch(int64_t batch, int64_t groups, int64_t threads, F f) {
    auto run_group = [&](int64_t g) {
        for (int64_t b = g; b < batch; b += groups) f(g, b);
    };
    threads = std::min(threads, groups);
    if (threads <= 1) {
        for (int64_t g = 0; g < groups; ++g) run_group(g);
        return;
    }
#ifdef _OPENMP
    #pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t g = 0; g < groups; ++g) run_group(g);
#else
    std::atomic<int64_t> next{0};
    auto run = [&]() {
        for (int64_t g = next++; g < groups; g = next++) run_group(g);
    };
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < threads; ++t) pool.emplace_back(run);
    run();
    for (auto& t : pool) t.join();
#endif
}

}  // namespace

extern "C" {

// Shapes: W, A (n, n); wout, wmod (2, n); bout, bmod (2); P, Pend, Pmid (B, n, n); r*, x1, x3 (B, n);
// x2c (B, 2, n); m2, m3, uniform (B); forced, action (B) int64; scratch (groups, n * n + 3 * n).
// forced == nullptr: sample the action as uniform < p(action 1). Pmid (P after step 2) and Hend (the trace
// after step 3: (1 - eta) H2 + eta tanh(r3 r2^T)) are written unless nullptr.
void plastic_trial_forward(int64_t B, int64_t n, int64_t groups, int64_t threads,
                           const float* W, const float* A, const float* wout, const float* bout,
                           const float* wmod, const float* bmod, float eta, float damult, float clip_at,
                           const float* P, const float* r0, const float* x1, const float* x2c,
                           const float* x3, const int64_t* forced, const float* uniform,
                           float* r1, float* r2, float* r3, float* m2, float* m3, int64_t* action,
                           float* Pend, float* Pmid, float* Hend, float* scratch) {
    const int64_t nn = n * n;
    const Modulation mod{n, wmod, bmod, damult};
    over_batch(B, groups, threads, [=](int64_t group, int64_t b) {
        float* T1 = scratch + group * (nn + 3 * n);  // tanh(r1 r0^T), from step 2 to step 3
        float *y = T1 + nn, *t2 = y + n, *t3 = t2 + n;  // one row of tanh(r2 r1^T), tanh(r3 r2^T)
        const float* Pb = P + b * nn; float* Qb = Pend + b * nn;
        const float* s0 = r0 + b * n; float *s1 = r1 + b * n, *s2 = r2 + b * n, *s3 = r3 + b * n;
        // step 1
        plastic_matvec(n, W, A, Pb, s0, y);
        for (int64_t i = 0; i < n; ++i) s1[i] = std::tanh(x1[b * n + i] + y[i]);
        int64_t a;
        if (forced) {
            a = forced[b];
        } else {
            const float l0 = dot(n, wout, s1) + bout[0], l1 = dot(n, wout + n, s1) + bout[1];
            a = uniform[b] < 1.0f / (1.0f + std::exp(l0 - l1)) ? 1 : 0;
        }
        action[b] = a;
        // step 2
        plastic_matvec(n, W, A, Pb, s1, y);
        const float* x2 = x2c + (b * 2 + a) * n;
        for (int64_t i = 0; i < n; ++i) s2[i] = std::tanh(x2[i] + y[i]);
        const float mb2 = mod(s2);
        m2[b] = mb2;
        // P1 = clip(P + m2 eta T1), and step 3 with W + A P1
        const v8f veta = splat(eta), vm2 = splat(mb2), lo = splat(-clip_at), hi = splat(clip_at);
        // rates are within [-1, 1], and so their products: the short form of tanh_approx, same bits
        const bool unit01 = within_unit(n, s0) && within_unit(n, s1), unit12 = within_unit(n, s1) && within_unit(n, s2);
        for (int64_t i = 0; i < n; ++i) {
            const float *Wi = W + i * n, *Ai = A + i * n, *Pi = Pb + i * n;
            float *Qi = Qb + i * n, *Ti = T1 + i * n;
            v8f acc{};
            tanh_outer_row(n, s1[i], s0, unit01, Ti);
            for (int64_t j = 0; j < n; j += 8) {
                const v8f t1 = load(Ti + j);
                const v8f p1 = clip(load(Pi + j) + vm2 * (veta * t1), lo, hi);
                store(Qi + j, p1);
                acc += (load(Wi + j) + load(Ai + j) * p1) * load(s2 + j);
            }
            s3[i] = std::tanh(x3[b * n + i] + hsum(acc));
        }
        if (Pmid) std::memcpy(Pmid + b * nn, Qb, nn * sizeof(float));
        const float mb3 = mod(s3);
        m3[b] = mb3;
        // P2 = clip(P1 + m3 H2),  H2 = (1 - eta) eta T1 + eta T2
        const v8f vm3 = splat(mb3), decay = splat(1.0f - eta);
        const bool unit23 = Hend && unit12 && within_unit(n, s3);
        for (int64_t i = 0; i < n; ++i) {
            float* Qi = Qb + i * n; const float* Ti = T1 + i * n;
            float* Hi = Hend ? Hend + b * nn + i * n : nullptr;
            tanh_outer_row(n, s2[i], s1, unit12, t2);
            if (Hi) tanh_outer_row(n, s3[i], s2, unit23, t3);
            for (int64_t j = 0; j < n; j += 8) {
                const v8f h2 = decay * (veta * load(Ti + j)) + veta * load(t2 + j);
                store(Qi + j, clip(load(Qi + j) + vm3 * h2, lo, hi));
                if (Hi) store(Hi + j, decay * h2 + veta * load(t3 + j));
            }
        }
    });
}

// Inputs as in the forward, plus m2, m3 (B) from it; gr1, gr2, gr3 (B, n), gPend (B, n, n): incoming
// gradients; gHend (B, n, n): the one on the trace after step 3, or nullptr.
// Outputs: gP (B, n, n), gr0, gx1, gx3 (B, n), gx2c (B, 2, n) (zero for the response not taken), gW, gA
// (n, n), gwmod (2, n), gbmod (2), gdamult (1), geta (1). scratch (groups, 3 * n * n + 7 * n + 8).
void plastic_trial_backward(int64_t B, int64_t n, int64_t groups, int64_t threads,
                            const float* W, const float* A, const float* wmod, const float* bmod,
                            float eta, float damult, float clip_at,
                            const float* P, const float* r0, const float* r1, const float* r2,
                            const float* r3, const float* m2, const float* m3, const int64_t* action,
                            const float* gr1, const float* gr2, const float* gr3, const float* gPend,
                            const float* gHend,
                            float* gP, float* gr0, float* gx1, float* gx2c, float* gx3,
                            float* gW, float* gA, float* gwmod, float* gbmod, float* gdamult, float* geta,
                            float* scratch) {
    const int64_t nn = n * n;
    // per group: g_A, g_W, g_wmod, 4 sums (g_bmod 0, 1, g_DAmult, g_eta), then per element: T1, g_r1..3,
    // and one row each of T2 = tanh(r2 r1^T) and T3 = tanh(r3 r2^T)
    const int64_t sums = 2 * nn + 2 * n, stride = 3 * nn + 7 * n + 8;
    for (int64_t g = 0; g < groups; ++g) std::memset(scratch + g * stride, 0, (sums + 4) * sizeof(float));
    over_batch(B, groups, threads, [=](int64_t group, int64_t b) {
        const v8f veta = splat(eta), decay = splat(1.0f - eta), one = splat(1.0f);
        const v8f lo = splat(-clip_at), hi = splat(clip_at);
        float *gAc = scratch + group * stride, *gWc = gAc + nn, *gwmodc = gWc + nn, *sum = gwmodc + 2 * n;
        float *T1 = sum + 8, *g1 = T1 + nn, *g2 = g1 + n, *g3 = g2 + n, *T2 = g3 + n, *T3 = T2 + n;
        const float* Pb = P + b * nn; const float* gQ2in = gPend + b * nn; float* gPb = gP + b * nn;
        const float *s0 = r0 + b * n, *s1 = r1 + b * n, *s2 = r2 + b * n, *s3 = r3 + b * n;
        const float mb2 = m2[b], mb3 = m3[b];
        const v8f vm2 = splat(mb2), vm3 = splat(mb3);
        float* g0 = gr0 + b * n;
        for (int64_t i = 0; i < n; ++i) {
            g0[i] = 0.0f; g1[i] = gr1[b * n + i]; g2[i] = gr2[b * n + i]; g3[i] = gr3[b * n + i];
        }
        // m = DAmult (d0 - d1), d = tanh(w_m r + b_m): dm/d(w_mu . r + b_mu) = k_u, dm/dr = k_0 w_m0 + k_1 w_m1
        auto slopes = [&](const float* r, float* k, float& dd) {
            const float d0 = std::tanh(dot(n, wmod, r) + bmod[0]), d1 = std::tanh(dot(n, wmod + n, r) + bmod[1]);
            k[0] = damult * (1.0f - d0 * d0); k[1] = -damult * (1.0f - d1 * d1); dd = d0 - d1;
        };
        // g_m into the modulation parameters: g_wmod_u += g_m k_u r, g_bmod_u += g_m k_u, g_DAmult += g_m dd
        auto modulation_grads = [&](float gm, const float* k, float dd, const float* r) {
            for (int u = 0; u < 2; ++u) {
                const float gu = gm * k[u];
                for (int64_t j = 0; j < n; ++j) gwmodc[u * n + j] += gu * r[j];
                sum[u] += gu;
            }
            sum[2] += gm * dd;
        };
        float k2[2], k3[2], dd2, dd3;
        slopes(s2, k2, dd2);
        slopes(s3, k3, dd3);
        double sum_gm3 = 0.0, sum_geta = 0.0, sum_gm2 = 0.0;
        // B1: g_Q2 (kept in gP for B2), g_m3, the T2 branch into r1, r2, eta, and the final trace H3 =
        // (1 - eta) H2 + eta T3, T3 = tanh(r3 r2^T), when it has a gradient
        const float* gH3 = gHend ? gHend + b * nn : nullptr;
        const bool unit01 = within_unit(n, s0) && within_unit(n, s1), unit12 = within_unit(n, s1) && within_unit(n, s2);
        const bool unit23 = gH3 && unit12 && within_unit(n, s3);
        for (int64_t i = 0; i < n; ++i) {
            const float *Pi = Pb + i * n, *Gi = gQ2in + i * n, *gH3i = gH3 ? gH3 + i * n : nullptr;
            float *Ti = T1 + i * n, *gPi = gPb + i * n;
            const v8f post2 = splat(s2[i]), post3 = splat(s3[i]);
            tanh_outer_row(n, s1[i], s0, unit01, Ti);
            tanh_outer_row(n, s2[i], s1, unit12, T2);
            if (gH3i) tanh_outer_row(n, s3[i], s2, unit23, T3);
            v8f acc_m3{}, acc_eta{}, acc_r2{}, acc_r3{};
            for (int64_t j = 0; j < n; j += 8) {
                const v8f pre1 = load(s1 + j);
                const v8f t1 = load(Ti + j);
                const v8f h1 = veta * t1;
                const v8f p1 = clip(load(Pi + j) + vm2 * h1, lo, hi);
                const v8f t2 = load(T2 + j);
                const v8f h2 = decay * h1 + veta * t2;
                const v8f gq2 = pass_inside(load(Gi + j), p1 + vm3 * h2, lo, hi);
                store(gPi + j, gq2);
                acc_m3 += gq2 * h2;
                v8f gh2 = vm3 * gq2;
                if (gH3i) {
                    const v8f gh3 = load(gH3i + j), pre2 = load(s2 + j);
                    const v8f t3 = load(T3 + j);
                    acc_eta += gh3 * (t3 - h2);
                    const v8f G3 = veta * gh3 * (one - t3 * t3);
                    acc_r3 += G3 * pre2;
                    store(g2 + j, load(g2 + j) + G3 * post3);
                    gh2 += decay * gh3;
                }
                acc_eta += gh2 * (t2 - h1);
                const v8f G2 = veta * gh2 * (one - t2 * t2);
                acc_r2 += G2 * pre1;
                store(g1 + j, load(g1 + j) + G2 * post2);
            }
            g2[i] += hsum(acc_r2);
            g3[i] += hsum(acc_r3);
            sum_gm3 += hsum(acc_m3); sum_geta += hsum(acc_eta);
        }
        const float gmb3 = (float)sum_gm3;
        float* z3 = gx3 + b * n;
        for (int64_t i = 0; i < n; ++i)
            z3[i] = (g3[i] + gmb3 * (k3[0] * wmod[i] + k3[1] * wmod[n + i])) * (1.0f - s3[i] * s3[i]);
        modulation_grads(gmb3, k3, dd3, s3);
        // B2: through W2 = W + A P1 and P1 = clip(Q1) into W, A, P, r2, m2, and the T1 branch
        for (int64_t i = 0; i < n; ++i) {
            const float *Wi = W + i * n, *Ai = A + i * n, *Pi = Pb + i * n, *Ti = T1 + i * n;
            const float* gH3i = gH3 ? gH3 + i * n : nullptr;
            float *gPi = gPb + i * n, *gAi = gAc + i * n, *gWi = gWc + i * n;
            const v8f zi = splat(z3[i]), post1 = splat(s1[i]);
            v8f acc_m2{}, acc_eta{}, acc_r1{};
            for (int64_t j = 0; j < n; j += 8) {
                const v8f t1 = load(Ti + j), a = load(Ai + j);
                const v8f h1 = veta * t1;
                const v8f q1 = load(Pi + j) + vm2 * h1;
                const v8f p1 = clip(q1, lo, hi);
                const v8f gq2 = load(gPi + j);
                const v8f gw2 = zi * load(s2 + j);  // gradient on W2_ij
                store(gWi + j, load(gWi + j) + gw2);
                store(gAi + j, load(gAi + j) + gw2 * p1);
                store(g2 + j, load(g2 + j) + (load(Wi + j) + a * p1) * zi);
                const v8f gq1 = pass_inside(gq2 + a * gw2, q1, lo, hi);
                store(gPi + j, gq1);
                acc_m2 += gq1 * h1;
                v8f gh2 = vm3 * gq2;
                if (gH3i) gh2 += decay * load(gH3i + j);
                const v8f gh1 = decay * gh2 + vm2 * gq1;
                acc_eta += gh1 * t1;
                const v8f G1 = veta * gh1 * (one - t1 * t1);
                acc_r1 += G1 * load(s0 + j);
                store(g0 + j, load(g0 + j) + G1 * post1);
            }
            g1[i] += hsum(acc_r1);
            sum_gm2 += hsum(acc_m2); sum_geta += hsum(acc_eta);
        }
        const float gmb2 = (float)sum_gm2;
        sum[3] += (float)sum_geta;
        // g_x2 of the response taken: g_z2
        float* z2 = gx2c + (b * 2 + action[b]) * n;
        std::memset(gx2c + (b * 2 + 1 - action[b]) * n, 0, n * sizeof(float));
        for (int64_t i = 0; i < n; ++i)
            z2[i] = (g2[i] + gmb2 * (k2[0] * wmod[i] + k2[1] * wmod[n + i])) * (1.0f - s2[i] * s2[i]);
        modulation_grads(gmb2, k2, dd2, s2);
        // B3: g_r1 += W1^T g_z2
        plastic_matvec_t(n, W, A, Pb, z2, g1);
        float* z1 = gx1 + b * n;
        for (int64_t i = 0; i < n; ++i) z1[i] = g1[i] * (1.0f - s1[i] * s1[i]);
        // B4: the gradient G on W1 = W + A P, into W, P and A; g_r0 += W1^T g_z1
        for (int64_t i = 0; i < n; ++i) {
            const float *Wi = W + i * n, *Ai = A + i * n, *Pi = Pb + i * n;
            float *gPi = gPb + i * n, *gAi = gAc + i * n, *gWi = gWc + i * n;
            const v8f a2 = splat(z2[i]), a1 = splat(z1[i]);
            for (int64_t j = 0; j < n; j += 8) {
                const v8f a = load(Ai + j), p = load(Pi + j);
                const v8f G = a2 * load(s1 + j) + a1 * load(s0 + j);
                store(gWi + j, load(gWi + j) + G);
                store(gPi + j, load(gPi + j) + a * G);
                store(gAi + j, load(gAi + j) + G * p);
                store(g0 + j, load(g0 + j) + (load(Wi + j) + a * p) * a1);
            }
        }
    });
    // the groups' sums, in group order
    std::memcpy(gA, scratch, nn * sizeof(float));
    std::memcpy(gW, scratch + nn, nn * sizeof(float));
    std::memcpy(gwmod, scratch + 2 * nn, 2 * n * sizeof(float));
    float total[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t g = 0; g < groups; ++g) {
        const float* part = scratch + g * stride;
        if (g > 0) {
            for (int64_t k = 0; k < nn; ++k) gA[k] += part[k];
            for (int64_t k = 0; k < nn; ++k) gW[k] += part[nn + k];
            for (int64_t k = 0; k < 2 * n; ++k) gwmod[k] += part[2 * nn + k];
        }
        for (int u = 0; u < 4; ++u) total[u] += part[sums + u];
    }
    gbmod[0] = total[0]; gbmod[1] = total[1]; gdamult[0] = total[2]; geta[0] = total[3];
}

// out_j = tanh_approx(post * pre_j) through the short form (unit != 0: the caller vouches that |post| and every
// |pre_j| are <= 1) or the full one; n a multiple of 8. For tests: both forms give the same bits.
void tanh_outer_row_for_tests(int64_t n, float post, const float* pre, int64_t unit, float* out) {
    tanh_outer_row(n, post, pre, unit != 0, out);
}

}  // extern "C"
