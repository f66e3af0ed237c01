/*
 * kern.h - the arithmetic of the fast kernels, written once on a 16-float
 * vector (vec.h: one zmm register, two ymm or four xmm) and compiled by
 * kern_c.c, kern_avx2.c and kern_avx512.c for their instruction sets. The
 * includer defines DN_KERN_ISA (0 C, 1 AVX2, 2 AVX-512) and
 * DN_KERN_NAME(x), and has selected the target. See fast_impl.h for the
 * buffers' geometry.
 *
 * Per sample, forward:
 *   conv1 + ReLU + pool1 + dropout, fused, for the kept channels only,
 *     into zero-bordered planes: 2 output rows x (up to 4) channels at a
 *     time so each input vector feeds several accumulators;
 *   conv2 + ReLU + pool2 + dropout, fused, for kept outputs over kept
 *     inputs: a pair of output rows for up to 8 channels in registers;
 *   fc1 over the 16-float vectors of its input that hold a kept channel,
 *     fc2 and log_softmax as the general kernels.
 * Backward, per chunk: the head and fc2; fc1's weight gradient vector by
 * vector over the samples that keep it (each element written once); then
 * per sample fc1's input gradient, pool2 routing, conv2's weight gradient
 * for kept (output, input) pairs, its input gradient as a convolution of
 * the output gradient with the reversed kernel (the forward kernel), and
 * conv1's weight gradient. Nothing allocates.
 */
#include "fast/fast_impl.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Vectors are passed by value only between static inline functions of one
 * target, so the ABI warnings about 64-byte vectors do not apply (the
 * Makefile also passes -Wno-psabi for GCC's one-time note). */
#pragma GCC diagnostic ignored "-Wpsabi"

#include "fast/vec.h"

/* Register blocking per instruction set: 32 zmm registers hold far more
 * accumulators than 16 ymm (a v16 is two of them) or 16 xmm (four). */
#if DN_KERN_ISA == 2
#define KB1 4   /* conv1 output channels per block */
#define KB2 8   /* conv2 (and its input gradient) channels per block */
#define KY2 5   /* conv2 weight-gradient kernel rows per sweep */
#define KY1 3   /* conv1 weight-gradient kernel rows per sweep */
#define KJ 16   /* fc1 outputs per block */
#define KV 8    /* fc1 input-gradient vectors per block */
#elif DN_KERN_ISA == 1
#define KB1 1
#define KB2 2
#define KY2 1
#define KY1 1
#define KJ 4
#define KV 2
#else
#define KB1 1
#define KB2 1
#define KY2 1
#define KY1 1
#define KJ 2
#define KV 1
#endif

static const int32_t k_parity[16] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
static const int32_t k_first14[16] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0};
static const int32_t k_first7[16] = {-1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const int32_t k_bottom2[16] = {0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2};

/* ------------------------------------------------------------------------ */
/* Kept channels                                                            */
/* ------------------------------------------------------------------------ */

/* Channels of one sample to compute: those with a non-zero scale, or all
 * of them when not skipping. Returns the count. */
KI int kept(const float *scale, int C, int sparse, int *list)
{
    int n = 0;
    for (int c = 0; c < C; c++)
        if (!sparse || scale[c] != 0.0f)
            list[n++] = c;
    return n;
}

/* fc1 input vectors (16 floats of the 784) touching a kept conv2 channel
 * (49 floats each). */
KI uint64_t active_vectors(const int *k2, int n2)
{
    uint64_t act = 0;
    for (int i = 0; i < n2; i++)
        for (int v = k2[i] * 49 / 16; v <= (k2[i] * 49 + 48) / 16; v++)
            act |= (uint64_t)1 << v;
    return act;
}

/* ------------------------------------------------------------------------ */
/* Pooling epilogues                                                        */
/* ------------------------------------------------------------------------ */

/* ReLU, 2x2 max-pool and dropout scale of two 32-wide conv1 rows (lo: x
 * 0..15, hi: x 16..31, valid up to 27) into a 16-float pooled row (14
 * valid, the rest 0) and its arg-max codes. The first maximum in scan
 * order wins, as in the general kernel: top row first (left before
 * right), then the bottom row only where strictly greater. */
KI void pool1_epilogue(v16 r0lo, v16 r0hi, v16 r1lo, v16 r1hi, float scale, float *dst,
                       uint8_t *code)
{
    r0lo = relu(r0lo), r0hi = relu(r0hi), r1lo = relu(r1lo), r1hi = relu(r1hi);
    v16 e0 = evens(r0lo, r0hi), o0 = odds(r0lo, r0hi);
    v16 e1 = evens(r1lo, r1hi), o1 = odds(r1lo, r1hi);
    vi16 t0 = vgt(o0, e0), t1 = vgt(o1, e1);
    v16 top = sel(t0, o0, e0), bot = sel(t1, o1, e1);
    vi16 ct = vandi(t0, splati(1)), cb = vaddi(vandi(t1, splati(1)), splati(2));
    vi16 tb = vgt(bot, top);
    v16 m = sel(tb, bot, top);
    vi16 c = seli(tb, cb, ct);
    vi16 live = vandi(vgt(m, splat(0.0f)), ldi(k_first14));
    m = vscale(sel(live, m, splat(0.0f)), scale);
    c = seli(live, c, splati(DN_AM_NONE));
    st(dst, m);
    codes_st(code, c, 16);
}

/* The same for two 16-wide conv2 rows (14 valid) into 7 pooled values and
 * 8 codes (the 8th DN_AM_NONE). */
KI void pool2_epilogue(v16 r0, v16 r1, float scale, float *dst, uint8_t *code)
{
    r0 = relu(r0), r1 = relu(r1);
    /* Lanes 0..7: pairs of the top row; 8..15: of the bottom row. */
    v16 e = evens(r0, r1), o = odds(r0, r1);
    vi16 t = vgt(o, e);
    v16 m = sel(t, o, e);
    vi16 c = vaddi(vandi(t, splati(1)), ldi(k_bottom2));
    v16 mb = swap_halves(m);
    vi16 cb = swap_halves_i(c);
    vi16 tb = vgt(mb, m);
    m = sel(tb, mb, m);
    c = seli(tb, cb, c);
    vi16 live = vandi(vgt(m, splat(0.0f)), ldi(k_first7));
    m = vscale(sel(live, m, splat(0.0f)), scale);
    c = seli(live, c, splati(DN_AM_NONE));
    st7(dst, m);
    codes_st(code, c, 8);
}

/* ------------------------------------------------------------------------ */
/* Convolutions                                                             */
/* ------------------------------------------------------------------------ */

/* conv1 (3x3, pad 1) for N output channels k[0..N) of one sample, fused
 * with ReLU, pool1 and the dropout scale: pooled row r comes from output
 * rows 2r and 2r+1, each two vectors wide. */
KI void conv1_block(const int N, const dn_fast_pass *p, const float *xp, const int *k,
                    const float *sc, float *p1, uint8_t *am)
{
    for (int r = 0; r < 14; r++) {
        v16 a[KB1][4]; /* row 0 lo, row 0 hi, row 1 lo, row 1 hi */
        const float *w[KB1];
        for (int o = 0; o < N; o++) {
            v16 b0 = splat(p->b_c1[k[o]]);
            a[o][0] = a[o][1] = a[o][2] = a[o][3] = b0;
            w[o] = p->w_c1 + k[o] * 9;
        }
        const float *row = xp + 2 * r * XP_STRIDE;
#pragma GCC unroll 4
        for (int iy = 0; iy < 4; iy++) {
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                v16 vlo = ld(row + iy * XP_STRIDE + kx), vhi = ld(row + iy * XP_STRIDE + kx + 16);
                for (int o = 0; o < N; o++) {
                    if (iy < 3) {
                        v16 ws = splat(w[o][iy * 3 + kx]);
                        a[o][0] = fma16(vlo, ws, a[o][0]);
                        a[o][1] = fma16(vhi, ws, a[o][1]);
                    }
                    if (iy > 0) {
                        v16 ws = splat(w[o][(iy - 1) * 3 + kx]);
                        a[o][2] = fma16(vlo, ws, a[o][2]);
                        a[o][3] = fma16(vhi, ws, a[o][3]);
                    }
                }
            }
        }
        for (int o = 0; o < N; o++)
            pool1_epilogue(a[o][0], a[o][1], a[o][2], a[o][3], sc[k[o]],
                           p1 + k[o] * PL_SIZE + PL_AT(r, 0),
                           am + (k[o] * 14 + r) * 16);
    }
}

/* A 5x5 convolution (pad 2) over 14x14 planes: output rows 2r and 2r+1 of
 * N output channels kout[0..N), summed over input channels kin[0..nin),
 * added into a0 and a1. The weight of (output o, input i, tap t) is
 * wb[o * wso + i * wsi + t], or of tap 24 - t with rev (a compile-time
 * constant). Forward passes the weights as they are; the input gradient
 * passes them reversed, with the two strides swapped. */
KI void conv5_rows(const int N, v16 *a0, v16 *a1, const float *planes, const int *kin, int nin,
                   const float *wb, int wso, int wsi, const int *kout, int r, const int rev)
{
    for (int ii = 0; ii < nin; ii++) {
        const int i = kin[ii];
        const float *pl = planes + i * PL_SIZE + PL_AT(2 * r - 2, -2);
        const float *w[KB2];
        for (int o = 0; o < N; o++)
            w[o] = wb + kout[o] * wso + i * wsi;
        /* Each broadcast weight serves both rows. */
#pragma GCC unroll 5
        for (int ky = 0; ky < 5; ky++) {
#pragma GCC unroll 5
            for (int kx = 0; kx < 5; kx++) {
                v16 v0 = ld(pl + ky * PL_STRIDE + kx), v1 = ld(pl + (ky + 1) * PL_STRIDE + kx);
                for (int o = 0; o < N; o++) {
                    v16 ws = splat(w[o][rev ? 24 - (ky * 5 + kx) : ky * 5 + kx]);
                    a0[o] = fma16(v0, ws, a0[o]);
                    a1[o] = fma16(v1, ws, a1[o]);
                }
            }
        }
    }
}

/* conv2 + ReLU + pool2 + dropout for N output channels k2o[0..N) of one
 * sample, over its kept input channels. */
KI void conv2_block(const int N, const dn_fast_pass *p, const float *p1, const int *k1, int n1,
                    const int *k2o, const float *sc, float *a2, uint8_t *am)
{
    for (int r = 0; r < 7; r++) {
        v16 a0[KB2], a1[KB2];
        for (int o = 0; o < N; o++)
            a0[o] = a1[o] = splat(p->b_c2[k2o[o]]);
        conv5_rows(N, a0, a1, p1, k1, n1, p->w_c2, C1 * 25, 25, k2o, r, 0);
        for (int o = 0; o < N; o++)
            pool2_epilogue(a0[o], a1[o], sc[k2o[o]], a2 + k2o[o] * 49 + r * 7,
                           am + (k2o[o] * 7 + r) * 8);
    }
}

/* The input gradient of conv2 for N channels k1o[0..N) of pool1's output:
 * rows of dp1 (C1, 14, 16), lanes 14 and 15 meaningless. */
KI void conv2_dx_block(const int N, const float *dy2, const int *k2, int n2,
                       const float *w_c2, const int *k1o, float *dp1)
{
    for (int r = 0; r < 7; r++) {
        v16 a0[KB2], a1[KB2];
        for (int o = 0; o < N; o++)
            a0[o] = a1[o] = splat(0.0f);
        conv5_rows(N, a0, a1, dy2, k2, n2, w_c2, 25, C1 * 25, k1o, r, 1);
        for (int o = 0; o < N; o++) {
            st(dp1 + (k1o[o] * 14 + 2 * r) * 16, a0[o]);
            st(dp1 + (k1o[o] * 14 + 2 * r + 1) * 16, a1[o]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */
/* ------------------------------------------------------------------------ */

/* fc1 + ReLU of NS (1 or 2) samples over the input vectors in act, the
 * union of theirs: a sample's input is zero on the vectors it does not
 * hold, so each still gets its exact sum, and every weight vector loaded
 * (from L2: fc1 is 200 kB) serves both. */
#define KJ2 (KJ / 2)
KI void fc1_forward(const int NS, const dn_fast_pass *p, const float *const *a2, uint64_t act,
                    float *const *h)
{
    const int J = NS == 1 ? KJ : KJ2;
    for (int j0 = 0; j0 < HID; j0 += J) {
        v16 acc[KJ];
        for (int j = 0; j < KJ; j++)
            acc[j] = splat(0.0f);
        for (uint64_t m = act; m; m &= m - 1) {
            int v = __builtin_ctzll(m);
            const float *wv = p->w_f1 + (size_t)j0 * FC_IN + 16 * v;
            if (NS == 1) {
                v16 x = ld(a2[0] + 16 * v);
                for (int j = 0; j < KJ; j++)
                    acc[j] = fma16(ld(wv + (size_t)j * FC_IN), x, acc[j]);
            } else {
                v16 x0 = ld(a2[0] + 16 * v), x1 = ld(a2[1] + 16 * v);
                for (int j = 0; j < KJ2; j++) {
                    v16 w = ld(wv + (size_t)j * FC_IN);
                    acc[j] = fma16(w, x0, acc[j]);
                    acc[KJ2 + j] = fma16(w, x1, acc[KJ2 + j]);
                }
            }
        }
        float z[KJ];
        if (KJ == 16) {
            hsum16(acc, z);
        } else {
            for (int j = 0; j < KJ; j++)
                z[j] = hsum(acc[j]);
        }
        for (int t = 0; t < NS; t++)
            for (int j = 0; j < J; j++) {
                float y = z[t * J + j] + p->b_f1[j0 + j];
                h[t][j0 + j] = y > 0.0f ? y : 0.0f;
            }
    }
}

/* fc2 and log_softmax of one sample, the general kernels' arithmetic. */
KI void head_forward(const dn_fast_pass *p, const float *h, float *logp)
{
    float z[NCLS];
    for (int o = 0; o < NCLS; o++) {
        const float *wrow = p->w_f2 + o * HID;
        float s = 0.0f;
        for (int i = 0; i < HID; i++)
            s += h[i] * wrow[i];
        z[o] = s + p->b_f2[o];
    }
    float mx = z[0];
    for (int i = 1; i < NCLS; i++)
        if (z[i] > mx)
            mx = z[i];
    double sum = 0.0;
    for (int i = 0; i < NCLS; i++)
        sum += exp((double)z[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < NCLS; i++)
        logp[i] = (float)((double)z[i] - lse);
}

void DN_KERN_NAME(dn_fast_fwd)(dn_fast_state *s, const dn_fast_pass *p)
{
    for (int b = 0; b < p->B; b++) {
        float *xp = s->xpad + (size_t)b * XP_SIZE;          // (30, 36)
        float *p1 = s->p1 + (size_t)b * C1 * PL_SIZE;       // (8, 22, 20)
        float *a2 = s->a2 + (size_t)b * A2_SIZE;            // (784 + 16)
        uint8_t *am1 = s->am1 + (size_t)b * C1 * 14 * 16;   // (8, 14, 16)
        uint8_t *am2 = s->am2 + (size_t)b * C2 * 7 * 8;     // (16, 7, 8)
        const float *s1 = s->s1 + b * C1, *s2 = s->s2 + b * C2;
        int k1[C1], k2[C2];
        int n1 = kept(s1, C1, s->sparse, k1), n2 = kept(s2, C2, s->sparse, k2);

        const float *x = p->x + (size_t)b * 28 * 28;        // (28, 28)
        for (int y = 0; y < 28; y++)
            memcpy(xp + (y + 1) * XP_STRIDE + 1, x + y * 28, 28 * sizeof *x);

        for (int o0 = 0; o0 < n1; o0 += KB1) {
            int nb = n1 - o0 < KB1 ? n1 - o0 : KB1;
            const int *ko = k1 + o0;
            switch (nb) {
            case 1: conv1_block(1, p, xp, ko, s1, p1, am1); break;
            case 2: if (KB1 >= 2) conv1_block(2, p, xp, ko, s1, p1, am1); break;
            case 3: if (KB1 >= 3) conv1_block(3, p, xp, ko, s1, p1, am1); break;
            default: if (KB1 >= 4) conv1_block(4, p, xp, ko, s1, p1, am1); break;
            }
        }

        /* Dropped conv2 channels are zeros of fc1's input. */
        for (int c = 0; c < C2; c++)
            if (s->sparse && s2[c] == 0.0f)
                memset(a2 + c * 49, 0, 49 * sizeof *a2);
        for (int o0 = 0; o0 < n2; o0 += KB2) {
            int nb = n2 - o0 < KB2 ? n2 - o0 : KB2;
            const int *ko = k2 + o0;
            switch (nb) {
            case 1: conv2_block(1, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 2: if (KB2 >= 2) conv2_block(2, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 3: if (KB2 >= 3) conv2_block(3, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 4: if (KB2 >= 4) conv2_block(4, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 5: if (KB2 >= 5) conv2_block(5, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 6: if (KB2 >= 6) conv2_block(6, p, p1, k1, n1, ko, s2, a2, am2); break;
            case 7: if (KB2 >= 7) conv2_block(7, p, p1, k1, n1, ko, s2, a2, am2); break;
            default: if (KB2 >= 8) conv2_block(8, p, p1, k1, n1, ko, s2, a2, am2); break;
            }
        }

        s->act[b] = active_vectors(k2, n2);
    }
    /* fc1 two samples at a time, then the head. */
    for (int b = 0; b < p->B; b += 2) {
        int ns = p->B - b < 2 ? 1 : 2;
        const float *a2[2] = {s->a2 + (size_t)b * A2_SIZE, s->a2 + (size_t)(b + ns - 1) * A2_SIZE};
        float *h[2] = {s->h + (size_t)b * HID, s->h + (size_t)(b + ns - 1) * HID};
        if (ns == 2)
            fc1_forward(2, p, a2, s->act[b] | s->act[b + 1], h);
        else
            fc1_forward(1, p, a2, s->act[b], h);
        for (int t = 0; t < ns; t++)
            head_forward(p, h[t], p->logp + (size_t)(b + t) * NCLS);
    }
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */
/* ------------------------------------------------------------------------ */

/* conv2's weight gradient of one (output, input) pair of one sample, by
 * lane, into dw (25, 16): written when first, added otherwise. Input row i
 * meets gradient rows i + 2 - ky for every ky, so a window of five
 * gradient rows slides down the input and each input vector loaded feeds
 * five accumulators; gradient rows outside the map are the plane's zero
 * border. */
KI void conv2_dw_pair(const float *dyp, const float *xpl, float *dw, int first)
{
    for (int ky0 = 0; ky0 < 5; ky0 += KY2) {
        v16 acc[KY2][5];
        for (int k = 0; k < KY2; k++)
            for (int kx = 0; kx < 5; kx++)
                acc[k][kx] = splat(0.0f);
#pragma GCC unroll 18
        for (int i = -2; i < 16; i++) {
            const float *row = xpl + PL_AT(i, -2);
#pragma GCC unroll 5
            for (int kx = 0; kx < 5; kx++) {
                v16 v = ld(row + kx);
                for (int k = 0; k < KY2; k++) {
                    int y = i + 2 - (ky0 + k);
                    /* Known at compile time where the loops unroll. */
                    if (y >= 0 && y < 14)
                        acc[k][kx] = fma16(ld(dyp + PL_AT(y, 0)), v, acc[k][kx]);
                }
            }
        }
        for (int k = 0; k < KY2; k++)
            for (int kx = 0; kx < 5; kx++) {
                float *d = dw + ((ky0 + k) * 5 + kx) * 16;
                st(d, first ? acc[k][kx] : vadd(ld(d), acc[k][kx]));
            }
    }
}

/* conv1's weight and bias gradient of one channel of one sample: the
 * pooled gradient (dp1 row times the dropout scale) goes to each window's
 * arg-max, then meets the padded input. */
KI void conv1_dw_channel(const float *dp1c, const uint8_t *amc, float scale, const float *xp,
                         float *dy1, float *dw, float *db)
{
    v16 dbacc = splat(0.0f);
    for (int r = 0; r < 14; r++) {
        v16 g = vscale(ld(dp1c + r * 16), scale);
        vi16 c = codes_ld(amc + r * 16, 16);
        v16 glo = twice_lo(g), ghi = twice_hi(g);
        vi16 clo = twice_lo_i(c), chi = twice_hi_i(c);
        vi16 par = ldi(k_parity), par2 = vaddi(par, splati(2));
        v16 z = splat(0.0f);
        v16 t0 = sel(veqi(clo, par), glo, z), t1 = sel(veqi(chi, par), ghi, z);
        v16 b0 = sel(veqi(clo, par2), glo, z), b1 = sel(veqi(chi, par2), ghi, z);
        st(dy1 + 2 * r * 32, t0);
        st(dy1 + 2 * r * 32 + 16, t1);
        st(dy1 + (2 * r + 1) * 32, b0);
        st(dy1 + (2 * r + 1) * 32 + 16, b1);
        dbacc = vadd(dbacc, vadd(vadd(t0, t1), vadd(b0, b1)));
    }
    st(db, vadd(ld(db), dbacc));
    for (int ky0 = 0; ky0 < 3; ky0 += KY1) {
        v16 acc[KY1][3];
        for (int i = 0; i < KY1; i++)
            acc[i][0] = acc[i][1] = acc[i][2] = splat(0.0f);
        for (int y = 0; y < 28; y++) {
            v16 dlo = ld(dy1 + y * 32), dhi = ld(dy1 + y * 32 + 16);
            for (int i = 0; i < KY1; i++) {
                const float *row = xp + (y + ky0 + i) * XP_STRIDE;
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) {
                    acc[i][kx] = fma16(dlo, ld(row + kx), acc[i][kx]);
                    acc[i][kx] = fma16(dhi, ld(row + kx + 16), acc[i][kx]);
                }
            }
        }
        for (int i = 0; i < KY1; i++)
            for (int kx = 0; kx < 3; kx++) {
                float *d = dw + ((ky0 + i) * 3 + kx) * 16;
                st(d, vadd(ld(d), acc[i][kx]));
            }
    }
}

void DN_KERN_NAME(dn_fast_bwd)(dn_fast_state *s, const dn_fast_pass *p)
{
    const int B = p->B;

    /* The head: log_softmax + NLL gradient (as the general kernels), fc2's
     * gradients, and the gradient at fc1's output through its ReLU. */
    for (int o = 0; o < NCLS; o++)
        for (int i = 0; i < HID; i++)
            p->g_f2w[o * HID + i] = 0.0f;
    double db2f[NCLS] = {0};
    for (int b = 0; b < B; b++) {
        const float *y = p->logp + (size_t)b * NCLS;
        const float *h = s->h + (size_t)b * HID;
        float *dh = s->dh + (size_t)b * HID;
        float dz[NCLS];
        double sum = p->labels[b] < NCLS ? -(double)p->scale : 0.0;
        for (int i = 0; i < NCLS; i++) {
            float dy = i == p->labels[b] ? -p->scale : 0.0f;
            dz[i] = (float)(dy - exp((double)y[i]) * sum);
        }
        for (int i = 0; i < HID; i++)
            dh[i] = 0.0f;
        for (int o = 0; o < NCLS; o++) {
            const float *wrow = p->w_f2 + o * HID;
            float *gw = p->g_f2w + o * HID;
            for (int i = 0; i < HID; i++) {
                dh[i] += dz[o] * wrow[i];
                gw[i] += dz[o] * h[i];
            }
            db2f[o] += dz[o];
        }
        for (int i = 0; i < HID; i++)
            dh[i] = h[i] > 0.0f ? dh[i] : 0.0f;
    }
    for (int o = 0; o < NCLS; o++)
        p->g_f2b[o] = (float)db2f[o];

    /* fc1's weight gradient, one 16-float input vector at a time over the
     * samples whose kept channels touch it: every element written once. */
    for (int v = 0; v < FC_VECS; v++) {
        int ns = 0;
        for (int b = 0; b < B; b++)
            if (s->act[b] >> v & 1)
                s->list[ns++] = b;
        float *gw = p->g_f1w + 16 * v;
        for (int j0 = 0; j0 < HID; j0 += KJ) {
            v16 acc[KJ];
            for (int j = 0; j < KJ; j++)
                acc[j] = splat(0.0f);
            /* A zero dh (a unit ReLU cut off) adds exact zeros. */
            for (int t = 0; t < ns; t++) {
                int b = s->list[t];
                v16 x = ld(s->a2 + (size_t)b * A2_SIZE + 16 * v);
                const float *dh = s->dh + (size_t)b * HID + j0;
                for (int j = 0; j < KJ; j++)
                    acc[j] = fma16(splat(dh[j]), x, acc[j]);
            }
            for (int j = 0; j < KJ; j++)
                st(gw + (size_t)(j0 + j) * FC_IN, acc[j]);
        }
    }
    for (int j = 0; j < HID; j++) {
        double db = 0.0;
        for (int b = 0; b < B; b++)
            db += s->dh[(size_t)b * HID + j];
        p->g_f1b[j] = (float)db;
    }

    /* Per-chunk accumulators of the convolutions. */
    memset(s->dw1v, 0, C1 * 9 * 16 * sizeof *s->dw1v);
    memset(s->db1v, 0, C1 * 16 * sizeof *s->db1v);
    memset(s->db2v, 0, C2 * 16 * sizeof *s->db2v);
    memset(s->touched, 0, sizeof s->touched);

    for (int b = 0; b < B; b++) {
        const float *s1 = s->s1 + b * C1, *s2 = s->s2 + b * C2;
        int k1[C1], k2[C2];
        int n1 = kept(s1, C1, s->sparse, k1), n2 = kept(s2, C2, s->sparse, k2);
        const float *dh = s->dh + (size_t)b * HID;

        /* fc1's input gradient on the vectors that hold kept channels,
         * over the hidden units whose ReLU passed a gradient. */
        int vl[FC_VECS], nv = 0, jl[HID], nj = 0;
        for (uint64_t m = s->act[b]; m; m &= m - 1)
            vl[nv++] = __builtin_ctzll(m);
        for (int j = 0; j < HID; j++)
            if (dh[j] != 0.0f)
                jl[nj++] = j;
        for (int t0 = 0; t0 < nv; t0 += KV) {
            int nt = nv - t0 < KV ? nv - t0 : KV;
            v16 acc[KV];
            for (int t = 0; t < KV; t++)
                acc[t] = splat(0.0f);
            for (int jj = 0; jj < nj; jj++) {
                v16 d = splat(dh[jl[jj]]);
                const float *wrow = p->w_f1 + (size_t)jl[jj] * FC_IN;
                for (int t = 0; t < KV; t++)
                    if (t < nt)
                        acc[t] = fma16(d, ld(wrow + 16 * vl[t0 + t]), acc[t]);
            }
            for (int t = 0; t < nt; t++)
                st(s->da2 + 16 * vl[t0 + t], acc[t]);
        }

        /* Through dropout, pool2 and ReLU to conv2's output: each pooled
         * gradient goes to its window's arg-max. */
        const uint8_t *am2 = s->am2 + (size_t)b * C2 * 7 * 8;
        for (int t = 0; t < n2; t++) {
            int o = k2[t];
            float *dyp = s->dy2 + o * PL_SIZE;
            v16 dbacc = splat(0.0f);
            for (int r = 0; r < 7; r++) {
                v16 g = twice_lo(vscale(ld8(s->da2 + o * 49 + r * 7), s2[o]));
                vi16 c = twice_lo_i(codes_ld(am2 + (o * 7 + r) * 8, 8));
                vi16 par = ldi(k_parity);
                v16 r0 = sel(veqi(c, par), g, splat(0.0f));
                v16 r1 = sel(veqi(c, vaddi(par, splati(2))), g, splat(0.0f));
                st(dyp + PL_AT(2 * r, 0), r0);
                st(dyp + PL_AT(2 * r + 1, 0), r1);
                dbacc = vadd(dbacc, vadd(r0, r1));
            }
            st(s->db2v + o * 16, vadd(ld(s->db2v + o * 16), dbacc));
        }

        /* conv2's weight gradient for the kept pairs. */
        const float *p1 = s->p1 + (size_t)b * C1 * PL_SIZE;
        for (int t = 0; t < n2; t++)
            for (int u = 0; u < n1; u++) {
                int pair = k2[t] * C1 + k1[u];
                conv2_dw_pair(s->dy2 + k2[t] * PL_SIZE, p1 + k1[u] * PL_SIZE,
                              s->dw2v + (size_t)pair * 25 * 16, !s->touched[pair]);
                s->touched[pair] = 1;
            }

        /* conv2's input gradient on the kept pool1 channels. */
        for (int o0 = 0; o0 < n1; o0 += KB2) {
            int nb = n1 - o0 < KB2 ? n1 - o0 : KB2;
            const int *ko = k1 + o0;
            switch (nb) {
            case 1: conv2_dx_block(1, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 2: if (KB2 >= 2) conv2_dx_block(2, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 3: if (KB2 >= 3) conv2_dx_block(3, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 4: if (KB2 >= 4) conv2_dx_block(4, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 5: if (KB2 >= 5) conv2_dx_block(5, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 6: if (KB2 >= 6) conv2_dx_block(6, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            case 7: if (KB2 >= 7) conv2_dx_block(7, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            default: if (KB2 >= 8) conv2_dx_block(8, s->dy2, k2, n2, p->w_c2, ko, s->dp1); break;
            }
        }

        /* conv1's weight gradient. */
        const float *xp = s->xpad + (size_t)b * XP_SIZE;
        const uint8_t *am1 = s->am1 + (size_t)b * C1 * 14 * 16;
        for (int u = 0; u < n1; u++) {
            int i = k1[u];
            conv1_dw_channel(s->dp1 + i * 14 * 16, am1 + i * 14 * 16, s1[i], xp, s->dy1,
                             s->dw1v + i * 9 * 16, s->db1v + i * 16);
        }
    }

    /* Lanes to sums. */
    for (int t = 0; t < C2 * C1 * 25; t += 16) {
        v16 v[16];
        for (int k = 0; k < 16; k++)
            v[k] = ld(s->dw2v + (size_t)(t + k) * 16);
        hsum16(v, p->g_c2w + t);
    }
    for (int pair = 0; pair < C2 * C1; pair++)
        if (!s->touched[pair])
            memset(p->g_c2w + pair * 25, 0, 25 * sizeof *p->g_c2w);
    for (int o = 0; o < C2; o++)
        p->g_c2b[o] = hsum(ld(s->db2v + o * 16));
    for (int i = 0; i < C1; i++) {
        for (int t = 0; t < 9; t++)
            p->g_c1w[i * 9 + t] = hsum(ld(s->dw1v + (i * 9 + t) * 16));
        p->g_c1b[i] = hsum(ld(s->db1v + i * 16));
    }
}
