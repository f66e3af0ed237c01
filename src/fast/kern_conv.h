/*
 * kern_conv.h - the convolution stage of the fast kernels: blocks of
 * accumulators over staged planes (forward and input gradient), the fused
 * ReLU + 2x2 pool + dropout epilogue, gradient routing and the weight
 * gradient.
 * Included by kern.h only (see there), once per instruction set.
 */
/* ------------------------------------------------------------------------ */
/* Convolution blocks                                                       */
/* ------------------------------------------------------------------------ */

/* Where a convolution block reads: input channel i's staged plane at
 * planes + i * plane (row stride rs, output row oy reads rows oy * stride
 * + ky), and the weight of (output o, input i, tap t) at w[o * wso + i *
 * wsi + t], or of tap K*K-1-t with flip (the input gradient's kernel).
 * Each block copies the weights it reads into pack, channel pair by
 * channel pair (K*K contiguous floats each), so that a block finds every
 * weight at a constant offset from one pointer. */
typedef struct conv_src {
    const float *planes;
    size_t plane;
    int rs, stride, K;
    const float *w;
    size_t wso, wsi;
    int flip;
    float *pack;
} conv_src;

typedef v16 conv_acc[KB_MAX][2][NVT_MAX];

/* Adds to acc[o][r][j] (o < N, r < 2, j < NVT) the convolution of output
 * rows oy0 + r, columns x0 + 16 j + lane, of the N output channels whose
 * weights wb holds (tap t of output o and input ii at wb[(ii * N + o) *
 * K*K + t], conv_run packs them), over input channels kin[0..nin). KC is
 * the kernel size when known at compile time (0: s->K); S1 says (at
 * compile time) that the stride is 1; FL that the kernel is flipped.
 * Every stride-1 convolution sums in the same order whether or not its
 * size is specialised, so a sanitized build (no specialised copies) gives
 * the same bits.
 *
 * With stride 1, output row 1 reads at kernel row ky the input row that
 * row 0 reads at ky + 1: the taps are visited a column at a time, down
 * the kernel rows, so that each input row is loaded once for both output
 * rows (K + 1 loads per column, not 2 K). */
#if DN_KERN_ISA == 1
/* With AVX2 a v16 is two ymm, and 16 registers hold no block of v16
 * accumulators and their operands: the same sums run one ymm of columns
 * at a time, so that a block keeps 2 * N ymm accumulators, the two input
 * rows and one broadcast weight in registers (N = 5: 13 of the 16; with
 * N = 6 gcc 12 spills inside the loop). */
KI void conv_block(const int N, const int NVT, const int KC, const int S1, const int FL,
                   conv_acc acc, const conv_src *s, const float *wb, const int *kin, int nin,
                   int oy0, int x0)
{
    const int K = KC ? KC : s->K, KK = K * K, rs = s->rs, step = s->stride * rs;
    for (int j = 0; j < NVT; j++)
        for (int h = 0; h < NP; h++) {
            vnf c0[KB_MAX], c1[KB_MAX];
            for (int o = 0; o < N; o++)
                c0[o] = acc[o][0][j].p[h], c1[o] = acc[o][1][j].p[h];
            const float *wi = wb;
            for (int ii = 0; ii < nin; ii++, wi += N * KK) {
                const float *pl = s->planes + (size_t)kin[ii] * s->plane + (size_t)oy0 * step +
                                  x0 + 16 * j + VN * h;
                if (S1) {
#pragma GCC unroll 7
                    for (int kx = 0; kx < K; kx++) {
                        const float *rp = pl + kx;
                        vnf a0 = ldvn(rp);
#pragma GCC unroll 7
                        for (int ky = 0; ky < K; ky++) {
                            rp += rs;
                            vnf a1 = ldvn(rp);
                            int t = FL ? KK - 1 - (ky * K + kx) : ky * K + kx;
                            for (int o = 0; o < N; o++) {
                                vnf w = bcvn(wi[o * KK + t]);
                                c0[o] = a0 * w + c0[o];
                                c1[o] = a1 * w + c1[o];
                            }
                            a0 = a1;
                        }
                    }
                    continue;
                }
                for (int ky = 0; ky < K; ky++) {
                    const float *r0 = pl + (size_t)ky * rs, *r1 = r0 + step;
                    for (int kx = 0; kx < K; kx++) {
                        int t = FL ? KK - 1 - (ky * K + kx) : ky * K + kx;
                        vnf a0 = ldvn(r0 + kx), a1 = ldvn(r1 + kx);
                        for (int o = 0; o < N; o++) {
                            vnf w = bcvn(wi[o * KK + t]);
                            c0[o] = a0 * w + c0[o];
                            c1[o] = a1 * w + c1[o];
                        }
                    }
                }
            }
            for (int o = 0; o < N; o++)
                acc[o][0][j].p[h] = c0[o], acc[o][1][j].p[h] = c1[o];
        }
}
#else
KI void conv_block(const int N, const int NVT, const int KC, const int S1, const int FL,
                   conv_acc acc, const conv_src *s, const float *wb, const int *kin, int nin,
                   int oy0, int x0)
{
    const int K = KC ? KC : s->K, KK = K * K, rs = s->rs, step = s->stride * rs;
    const float *wi = wb;
    for (int ii = 0; ii < nin; ii++, wi += N * KK) {
        const float *pl = s->planes + (size_t)kin[ii] * s->plane + (size_t)oy0 * step + x0;
        if (S1) {
#pragma GCC unroll 7
            for (int kx = 0; kx < K; kx++) {
                const float *rp = pl + kx;
                v16 a0[NVT_MAX], a1[NVT_MAX];
                for (int j = 0; j < NVT; j++)
                    a0[j] = ld(rp + 16 * j);
#pragma GCC unroll 7
                for (int ky = 0; ky < K; ky++) {
                    rp += rs;
                    for (int j = 0; j < NVT; j++)
                        a1[j] = ld(rp + 16 * j);
                    int t = FL ? KK - 1 - (ky * K + kx) : ky * K + kx;
                    /* Each broadcast weight serves both rows and every
                     * vector. */
                    for (int o = 0; o < N; o++) {
                        v16 ws = splat(wi[o * KK + t]);
                        for (int j = 0; j < NVT; j++) {
                            acc[o][0][j] = fma16(a0[j], ws, acc[o][0][j]);
                            acc[o][1][j] = fma16(a1[j], ws, acc[o][1][j]);
                        }
                    }
                    for (int j = 0; j < NVT; j++)
                        a0[j] = a1[j];
                }
            }
            continue;
        }
        for (int ky = 0; ky < K; ky++) {
            const float *r0 = pl + (size_t)ky * rs, *r1 = r0 + step;
            for (int kx = 0; kx < K; kx++) {
                int t = FL ? KK - 1 - (ky * K + kx) : ky * K + kx;
                v16 a0[NVT_MAX], a1[NVT_MAX];
                for (int j = 0; j < NVT; j++) {
                    a0[j] = ld(r0 + kx + 16 * j);
                    a1[j] = ld(r1 + kx + 16 * j);
                }
                for (int o = 0; o < N; o++) {
                    v16 ws = splat(wi[o * KK + t]);
                    for (int j = 0; j < NVT; j++) {
                        acc[o][0][j] = fma16(a0[j], ws, acc[o][0][j]);
                        acc[o][1][j] = fma16(a1[j], ws, acc[o][1][j]);
                    }
                }
            }
        }
    }
}
#endif

/* n pooled values m to dst and to dst2 (the next convolution's plane),
 * each unless NULL. */
KI void pooled_store(v16 m, float *dst, float *dst2, int n)
{
    if (dst)
        stn(dst, m, n);
    if (dst2)
        stn(dst2, m, n);
}

/* The end of both pool epilogues: the pooled values m (see pooled_store),
 * their arg-max codes c to code. */
KI void pool_store(v16 m, vi16 c, float *dst, uint8_t *code, float *dst2, int n)
{
    pooled_store(m, dst, dst2, n);
    codes_stn(code, c, n);
}

/* The pooled values alone, for a pass that keeps no arg-max (DN_MODE_INFER):
 * after the ReLU no lane is NaN, and the maximum of such values is exact in
 * any order, so these are the bits of pool_epilogue (and the ReLU's zeros
 * are +0, as there). */
KI void pool_max(v16 r0, v16 r1, float scale, float *dst, float *dst2, int n)
{
    v16 v = vmax(relu(r0), relu(r1));
    pooled_store(vscale(vmax(evens(v, v), odds(v, v)), scale), dst, dst2, n);
}

/* The same for 32 columns (pool_epilogue2). */
KI void pool_max2(v16 r0a, v16 r0b, v16 r1a, v16 r1b, float scale, float *dst, float *dst2,
                  int n)
{
    v16 va = vmax(relu(r0a), relu(r1a)), vb = vmax(relu(r0b), relu(r1b));
    pooled_store(vscale(vmax(evens(va, vb), odds(va, vb)), scale), dst, dst2, n);
}

/* ReLU, 2x2 max-pool and dropout scale of 16 columns of two conv rows into
 * n <= 8 pooled values and their arg-max codes. The first maximum in scan
 * order wins, as in the general kernel: top row first (left before right),
 * then the bottom row only where strictly greater. */
KI void pool_epilogue(v16 r0, v16 r1, float scale, float *dst, uint8_t *code, float *dst2,
                      int n)
{
    r0 = relu(r0), r1 = relu(r1);
    /* Lanes 0..7: pairs of the top row; 8..15: of the bottom row. Each
     * t ? a : b with t = a > b is vmax(a, b), and after the ReLU the
     * maximum m is +0 where no lane is live. */
    v16 e = evens(r0, r1), o = odds(r0, r1);
    vi16 t = vgt(o, e);
    v16 m = vmax(o, e);
    vi16 c = vaddi(vandi(t, splati(1)), ldi(k_bottom2));
    v16 mb = swap_halves(m);
    vi16 cb = swap_halves_i(c);
    vi16 tb = vgt(mb, m);
    m = vmax(mb, m);
    c = seli(tb, cb, c);
    c = seli(vgt(m, splat(0.0f)), c, splati(DN_AM_NONE));
    pool_store(vscale(m, scale), c, dst, code, dst2, n);
}

/* The same for 32 columns (two vectors of each row) into n <= 16 pooled
 * values: one pass of the epilogue where a row is two vectors wide. */
KI void pool_epilogue2(v16 r0a, v16 r0b, v16 r1a, v16 r1b, float scale, float *dst,
                       uint8_t *code, float *dst2, int n)
{
    r0a = relu(r0a), r0b = relu(r0b), r1a = relu(r1a), r1b = relu(r1b);
    v16 e0 = evens(r0a, r0b), o0 = odds(r0a, r0b);
    v16 e1 = evens(r1a, r1b), o1 = odds(r1a, r1b);
    vi16 t0 = vgt(o0, e0), t1 = vgt(o1, e1);
    v16 top = vmax(o0, e0), bot = vmax(o1, e1);
    vi16 ct = vandi(t0, splati(1)), cb = vaddi(vandi(t1, splati(1)), splati(2));
    vi16 tb = vgt(bot, top);
    v16 m = vmax(bot, top);
    vi16 c = seli(tb, cb, ct);
    c = seli(vgt(m, splat(0.0f)), c, splati(DN_AM_NONE));
    pool_store(vscale(m, scale), c, dst, code, dst2, n);
}

/* What a forward block writes: the stage output of one sample, and the
 * same values into the next convolution's staged planes when it reads
 * them there (next: output pixel (o, y, x) at next[o * nplane + y * nrs +
 * x], its padding already added; NULL when not). A pass that keeps nothing
 * for backward (DN_MODE_INFER) stores no arg-max codes; act is NULL where
 * nobody reads it (see conv_forward). */
typedef struct conv_out {
    float *act;             // (O, PH, PW) pooled, or (O, OH, OW); or NULL
    uint8_t *code;          // (O, PH, PW) pool arg-max, or NULL
    const float *bias;      // (O)
    const float *scale;     // (O) dropout scale of this sample, or NULL
    float *next;
    size_t nplane;
    int nrs;
    int relu, pool, OH, OW, stride;
} conv_out;

/* One forward block: bias, convolution, then ReLU + pool or ReLU, the
 * dropout scale and the store. */
KI void conv_fwd_block(const int N, const int NVT, const int KC, const int S1, const conv_src *s,
                       const float *wb, const conv_out *dout, const int *kin, int nin,
                       const int *ko, int oy0, int x0)
{
    /* A copy the stores cannot alias (the codes are bytes, which alias
     * everything): its fields stay in registers across the channels. */
    const conv_out d[1] = {*dout};
    conv_acc acc;
    for (int o = 0; o < N; o++) {
        v16 b0 = splat(d->bias[ko[o]]);
        for (int j = 0; j < NVT; j++)
            acc[o][0][j] = acc[o][1][j] = b0;
    }
    conv_block(N, NVT, KC, S1, 0, acc, s, wb, kin, nin, oy0, x0);
    for (int o = 0; o < N; o++) {
        float sc = d->scale ? d->scale[ko[o]] : 1.0f;
        if (d->pool) {
            int PH = d->OH / 2, PW = d->OW / 2;
            size_t at = ((size_t)ko[o] * PH + oy0 / 2) * PW;
            float *nx = d->next ? d->next + ko[o] * d->nplane + (size_t)(oy0 / 2) * d->nrs : NULL;
            float *y = d->act ? d->act + at : NULL;
            /* One pass of the epilogue: NVT vectors a row, 8 * NVT pooled. */
            int px = x0 / 2, n = min_i(8 * NVT, PW - px);
            float *yp = y ? y + px : NULL, *np = nx ? nx + px : NULL;
            if (n <= 0)
                continue;
            if (NVT == 2 && d->code)
                pool_epilogue2(acc[o][0][0], acc[o][0][NVT - 1], acc[o][1][0],
                               acc[o][1][NVT - 1], sc, yp, d->code + at + px, np, n);
            else if (NVT == 2)
                pool_max2(acc[o][0][0], acc[o][0][NVT - 1], acc[o][1][0], acc[o][1][NVT - 1],
                          sc, yp, np, n);
            else if (d->code)
                pool_epilogue(acc[o][0][0], acc[o][1][0], sc, yp, d->code + at + px, np, n);
            else
                pool_max(acc[o][0][0], acc[o][1][0], sc, yp, np, n);
            continue;
        }
        for (int r = 0; r < 2; r++) {
            int oy = oy0 + r;
            if (oy >= d->OH)
                break;
            /* act is NULL only where next is set, which is at stride 1. */
            float *row = d->act ? d->act + ((size_t)ko[o] * d->OH + oy) * d->OW : NULL;
            float *nrow = d->next ? d->next + ko[o] * d->nplane + (size_t)oy * d->nrs : NULL;
            for (int j = 0; j < NVT; j++) {
                v16 v = acc[o][r][j];
                if (d->relu)
                    v = relu(v);
                v = vscale(v, sc);
                int x = x0 + 16 * j;
                if (d->stride == 1) {
                    int n = min_i(16, d->OW - x);
                    if (n > 0 && row)
                        stn(row + x, v, n);
                    if (n > 0 && nrow)
                        stn(nrow + x, v, n);
                } else {
                    /* Columns were computed at stride 1; keep every
                     * stride-th. */
                    float t[16];
                    st(t, v);
                    for (int l = 0; l < 16; l++)
                        if ((x + l) % d->stride == 0 && (x + l) / d->stride < d->OW)
                            row[(x + l) / d->stride] = t[l];
                }
            }
        }
    }
}

/* One input-gradient block: the convolution stored into rows < H, columns
 * < W of the gradient planes dx (C, H, W). */
KI void conv_dx_block(const int N, const int NVT, const int KC, const int S1, const conv_src *s,
                      const float *wb, float *dx, int H, int W, const int *kin, int nin,
                      const int *ko, int oy0, int x0)
{
    conv_acc acc;
    for (int o = 0; o < N; o++)
        for (int j = 0; j < NVT; j++)
            acc[o][0][j] = acc[o][1][j] = splat(0.0f);
    conv_block(N, NVT, KC, S1, 1, acc, s, wb, kin, nin, oy0, x0);
    for (int o = 0; o < N; o++)
        for (int r = 0; r < 2 && oy0 + r < H; r++)
            for (int j = 0; j < NVT; j++) {
                int x = x0 + 16 * j, n = min_i(16, W - x);
                if (n > 0)
                    stn(dx + ((size_t)ko[o] * H + oy0 + r) * W + x, acc[o][r][j], n);
            }
}

/* Calls BLOCK(n) for a compile-time n equal to the runtime nb, up to lim. */
#define DN_SWITCH8(nb, lim, BLOCK)                                           \
    switch (nb) {                                                            \
    case 1: BLOCK(1); break;                                                 \
    case 2: if ((lim) >= 2) BLOCK(2); break;                                 \
    case 3: if ((lim) >= 3) BLOCK(3); break;                                 \
    case 4: if ((lim) >= 4) BLOCK(4); break;                                 \
    case 5: if ((lim) >= 5) BLOCK(5); break;                                 \
    case 6: if ((lim) >= 6) BLOCK(6); break;                                 \
    case 7: if ((lim) >= 7) BLOCK(7); break;                                 \
    default: if ((lim) >= 8) BLOCK(8); break;                                \
    }

/* The KK taps of one (output, input) pair from w to dst. Training packs
 * for every sample (its kept channels change), so the copy is whole
 * vectors where it can be: from KK = 16 up the last vector overlaps the
 * one before instead of being masked. */
KI void copy_taps(float *dst, const float *w, const int KK)
{
    if (KK < 16) {
        stn(dst, ldn(w, KK), KK);
        return;
    }
    int t = 0;
    for (; t + 16 < KK; t += 16)
        st(dst + t, ld(w + t));
    st(dst + KK - 16, ld(w + KK - 16));
}

/* Every block of a convolution: rows in pairs (the first 2 * (rows/2)
 * when pooling), NV vectors across, output channels ko[0..nout) in
 * blocks, for a kernel size KC known at compile time (0: any), their
 * weights gathered again when repack is set (else as the last call left
 * them). dx NULL: forward into d; else the input gradient into dx. */
KI void conv_run_k(const int KC, const int S1, const conv_src *s, int repack, const conv_out *d, float *dx,
                   int H, int W, int rows, int NV, const int *kin, int nin, const int *ko,
                   int nout)
{
    int nvt = NVT_MAX >= 2 && NV >= 2 ? 2 : 1, kb = nvt == 2 ? KB2 : KB1;
    const int KK = KC ? KC * KC : s->K * s->K;
    /* The fewest blocks of at most kb channels, their sizes differing by
     * at most one (16 channels in blocks of 5 would leave a block of 1). */
    int nblk = (nout + kb - 1) / kb;
    for (int bi = 0; bi < nblk; bi++) {
        int o0 = bi * nout / nblk, nb = (bi + 1) * nout / nblk - o0;
        const int *k = ko + o0;
        /* Each block's weights at their own place, so that the next
         * sample with the same channels reuses them. */
        float *wb = s->pack + (size_t)o0 * nin * KK;
        for (int ii = 0; repack && ii < nin; ii++)
            for (int o = 0; o < nb; o++) {
                const float *w = s->w + (size_t)k[o] * s->wso + (size_t)kin[ii] * s->wsi;
                copy_taps(wb + ((size_t)ii * nb + o) * KK, w, KK);
            }
        for (int oy0 = 0; oy0 < rows; oy0 += 2)
            for (int xv = 0; xv < NV;) {
                int x0 = 16 * xv, two = nvt == 2 && xv + 1 < NV;
                if (dx) {
#define DX1(n) conv_dx_block(n, 1, KC, S1, s, wb, dx, H, W, kin, nin, k, oy0, x0)
#define DX2(n) conv_dx_block(n, NVT_MAX, KC, S1, s, wb, dx, H, W, kin, nin, k, oy0, x0)
                    if (two) {
                        DN_SWITCH8(nb, KB2, DX2)
                    } else {
                        DN_SWITCH8(nb, KB1, DX1)
                    }
                } else {
#define FW1(n) conv_fwd_block(n, 1, KC, S1, s, wb, d, kin, nin, k, oy0, x0)
#define FW2(n) conv_fwd_block(n, NVT_MAX, KC, S1, s, wb, d, kin, nin, k, oy0, x0)
                    if (two) {
                        DN_SWITCH8(nb, KB2, FW2)
                    } else {
                        DN_SWITCH8(nb, KB1, FW1)
                    }
                }
                xv += two ? 2 : 1;
            }
    }
}

/* conv_run_k with the common kernel sizes 3 and 5 unrolled. Under
 * AddressSanitizer every size takes the general path: gcc checks each of
 * the unrolled copies' 64-byte loads through __asan_loadN, which made the
 * sanitized build's convolutions six times slower (evaluating 10,000
 * images 10.1 s instead of 2.2 s) and pushed digitnet serve's start past
 * the tests' time limits. The general path runs the same code with K
 * read at run time, so the sanitizer still checks every access pattern;
 * test_fast checks the specialised copies' results in the other builds. */
#if defined(__SANITIZE_ADDRESS__)
#define DN_CONV_SPECIALISE 0
#else
#define DN_CONV_SPECIALISE 1
#endif
static void conv_run(const conv_src *s, int repack, const conv_out *d, float *dx, int H, int W,
                     int rows, int NV, const int *kin, int nin, const int *ko, int nout)
{
    if (s->stride != 1) {
        conv_run_k(0, 0, s, repack, d, dx, H, W, rows, NV, kin, nin, ko, nout);
        return;
    }
    switch (DN_CONV_SPECIALISE ? s->K : 0) {
    case 3: conv_run_k(3, 1, s, repack, d, dx, H, W, rows, NV, kin, nin, ko, nout); break;
    case 5: conv_run_k(5, 1, s, repack, d, dx, H, W, rows, NV, kin, nin, ko, nout); break;
    default: conv_run_k(0, 1, s, repack, d, dx, H, W, rows, NV, kin, nin, ko, nout); break;
    }
}

/* ------------------------------------------------------------------------ */
/* Convolution stage                                                        */
/* ------------------------------------------------------------------------ */

/* Whether a sample's channel lists a[0..na) and b[0..nb) differ from the
 * last sample's, which prev holds (and then takes these): only then do
 * the blocks gather their weights again. */
static int lists_changed(int *prev, const int *a, int na, const int *b, int nb)
{
    int changed = prev[0] != na || prev[1] != nb ||
                  memcmp(prev + 2, a, (size_t)na * sizeof *a) ||
                  memcmp(prev + 2 + na, b, (size_t)nb * sizeof *b);
    if (changed) {
        prev[0] = na, prev[1] = nb;
        memcpy(prev + 2, a, (size_t)na * sizeof *a);
        memcpy(prev + 2 + na, b, (size_t)nb * sizeof *b);
    }
    return changed;
}

/* Whether the backward pass finds the batch's input planes as the forward
 * pass staged them. */
static int conv_planes_kept(const dn_fast_stage *s, int B)
{
    return s->staged ? B <= s->chunk : B <= s->sub;
}

/* Where sample b's staged input planes lie in the stage's buffer during
 * a forward pass over samples b0..: a stage whose planes the stage before
 * writes (staged) holds the samples of one chunk; any other holds the
 * whole batch when it fits the backward pass's block (which then finds
 * them staged), else, or when no backward follows, one sample at a time. */
static float *conv_planes(const dn_fast_stage *s, const dn_fast_pass *a, int b, int b0)
{
    int slot = s->staged ? b - b0 : !a->infer && a->B <= s->sub ? b : 0;
    return s->xs + (size_t)slot * s->C * s->xs_plane;
}

/* The forward pass of samples b0..b0+nb-1. */
static void conv_forward(dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a,
                         const float *in, int b0, int nb)
{
    const dn_layer *L = &a->m->layers[s->main];
    const float *mask_in = mask_of(a, s->in_drop), *mask_out = mask_of(a, s->drop);
    int H = s->in.h, W = s->in.w, C = s->C, O = s->O;
    uint8_t *kin_f = p->keep, *kout_f = p->keep_out;
    int KK = s->K * s->K;
    conv_src src = {s->xs, s->xs_plane, s->xs_rs, s->stride, s->K, a->params + L->w_off,
                    (size_t)C * KK, (size_t)KK, 0, s->pack};
    size_t oplane = (size_t)s->out.h * s->out.w;
    int *kin = p->list, *kout = kin + p->ch;
    /* The next stage, when this one writes its planes. */
    const dn_fast_stage *nx = s->to_next ? s + 1 : NULL;
    for (int b = b0; b < b0 + nb; b++) {
        keep_flags(kin_f, mask_in, b, C, p->sparse);
        keep_flags(kout_f, mask_out, b, O, p->sparse);
        int nin = keep_list(kin_f, C, kin), nout = keep_list(kout_f, O, kout);
        int repack = lists_changed(s->packed, kin, nin, kout, nout);
        float *planes = conv_planes(s, a, b, b0);
        const float *inb = in + (size_t)b * s->in_ld; // (C, H, W)
        for (int t = 0; t < nin && !s->staged; t++)
            stage_plane(planes + (size_t)kin[t] * s->xs_plane, s->xs_rows, s->xs_rs, s->xs_rs,
                        inb + (size_t)kin[t] * H * W, H, W, s->pad, s->pad);
        src.planes = planes;
        /* The stage output that only the next convolution reads, from
         * planes it keeps (its backward pass stages nothing), and a pooled
         * one's backward pass does not read (it routes by the codes), is
         * not stored. */
        int act_read = !nx || (!a->infer && (s->pool < 0 || !conv_planes_kept(nx, a->B)));
        conv_out d = {act_read ? s->act + (size_t)b * s->out_ld : NULL,
                      s->code && !a->infer ? s->code + (size_t)b * O * oplane : NULL,
                      a->params + L->b_off,
                      mask_out ? mask_out + (size_t)b * O : NULL,
                      nx ? conv_planes(nx, a, b, b0) + (size_t)nx->pad * nx->xs_rs + nx->pad
                         : NULL,
                      nx ? nx->xs_plane : 0,
                      nx ? nx->xs_rs : 0,
                      s->relu >= 0, s->pool >= 0, s->OH, s->OW, s->stride};
        /* A dropped channel is zeros of the output, except where only the
         * next convolution reads it, which skips dropped channels. */
        for (int o = 0; o < O && !nx; o++)
            if (!kout_f[o])
                memset(d.act + o * oplane, 0, oplane * sizeof *d.act);
        int rows = s->code ? 2 * (s->OH / 2) : s->OH;
        conv_run(&src, repack, &d, NULL, 0, 0, rows, s->NV, kin, nin, kout, nout);
    }
}

/* One input row of dw_block: each of its K vectors (the taps kx) meets the
 * gradient rows of kernel rows k0..k1 (dv[q][k], loaded here from dr[q]
 * upwards) of output channels q0..q1-1. */
KI void dw_row(const int K, const int KYC, const int q0, const int q1, const int k0,
               const int k1, vw *acc, const float *xr, const float *const *dr, int drs)
{
    vw dv[2][7];
    for (int q = q0; q < q1; q++)
        for (int k = k0; k <= k1; k++)
            dv[q][k] = ldw(dr[q] - (size_t)k * drs);
    for (int kx = 0; kx < K; kx++) {
        vw xv = ldw(xr + kx);
        for (int q = q0; q < q1; q++)
            for (int k = k0; k <= k1; k++)
                acc[(q * KYC + k) * K + kx] = fmaw(dv[q][k], xv, acc[(q * KYC + k) * K + kx]);
    }
}

/* The rows of one sample for dw_block: the accumulators of output
 * channels q0..q1-1 of the block (a sample that dropped the other channel
 * of a pair adds nothing to its sums, exactly as its zero plane would).
 * Input row r meets gradient row r - k for kernel row k, which lies in
 * the map only for 0 <= r - k < dwh: the first and last KYC - 1 input
 * rows skip the kernel rows whose gradient row is the zero border (exact
 * zeros of the sum, so the same bits), a fifth of the products for a 5x5
 * kernel over 14 rows. */
KI void dw_rows(const int K, const int KYC, const int q0, const int q1, vw *acc,
                const float *X, const float *const *D, int xrs, int drs, int E, int NV, int dwh)
{
    for (int j = 0; j < NV * (16 / WV); j++) {
        const float *xr = X + WV * j;
        const float *dr[2];
        for (int q = q0; q < q1; q++)
            dr[q] = D[q] + (size_t)E * drs + WV * j;
        int r = 0;
        if (dwh >= KYC) {
#pragma GCC unroll 7
            for (int h = 0; h < KYC - 1; h++, r++, xr += xrs) {
                dw_row(K, KYC, q0, q1, 0, h, acc, xr, dr, drs);
                for (int q = q0; q < q1; q++)
                    dr[q] += drs;
            }
            for (; r < dwh; r++, xr += xrs) {
                dw_row(K, KYC, q0, q1, 0, KYC - 1, acc, xr, dr, drs);
                for (int q = q0; q < q1; q++)
                    dr[q] += drs;
            }
#pragma GCC unroll 7
            for (int t = 1; t < KYC; t++, xr += xrs) {
                dw_row(K, KYC, q0, q1, t, KYC - 1, acc, xr, dr, drs);
                for (int q = q0; q < q1; q++)
                    dr[q] += drs;
            }
            continue;
        }
        for (; r < KYC - 1 + dwh; r++, xr += xrs) {
            dw_row(K, KYC, q0, q1, 0, KYC - 1, acc, xr, dr, drs);
            for (int q = q0; q < q1; q++)
                dr[q] += drs;
        }
    }
}

/* The weight gradient of output channels o0..o0+NO-1 and input channel c,
 * summed over the samples tl[0..nt) of a block, added into dw (NO, C, K,
 * K): for each input row r, the gradient rows r - ky meet it at every kx;
 * a chunk of KYC kernel rows at a time keeps NO * KYC * K accumulators in
 * registers, and each input vector loaded serves all of them. Gradient
 * rows outside the map are the planes' zero border. With NO = 2, kept[u]
 * says which of the two channels sample tl[u] keeps (bit 0 the first, bit
 * 1 the second); a dropped channel's plane is not read. */
KI void dw_block(const int NO, const int K, const int KYC, const dn_fast_stage *s,
                 const float *xs, const float *ds, const int *tl, const uint8_t *kept, int nt,
                 int o0, int c, float *dw)
{
    const int E = s->E, NV = s->NV, xrs = s->xs_rs, drs = s->ds_rs, dwh = s->dwh;
    /* Every loop over acc unrolls completely (its indices constants), so
     * that the accumulators stay registers and are not an array in memory
     * cleared with a string store. */
#pragma GCC unroll 7
    for (int ky0 = 0; ky0 < K; ky0 += KYC) {
        vw acc[DW_ACC > 7 ? DW_ACC : 7]; /* [(q * KYC + k) * K + kx] */
#pragma GCC unroll 32
        for (int k = 0; k < NO * KYC * K; k++)
            acc[k] = (vw){0};
        for (int u = 0; u < nt; u++) {
            const float *X = xs + ((size_t)tl[u] * s->C + c) * s->xs_plane + (size_t)ky0 * xrs;
            const float *D[2];
            for (int q = 0; q < NO; q++)
                D[q] = ds + ((size_t)tl[u] * s->O + o0 + q) * s->ds_plane;
            /* Columns outside, rows inside: the row loop is the long one. */
            if (NO == 1 || kept[u] == 3)
                dw_rows(K, KYC, 0, NO, acc, X, D, xrs, drs, E, NV, dwh);
            else if (kept[u] == 1)
                dw_rows(K, KYC, 0, 1, acc, X, D, xrs, drs, E, NV, dwh);
            else
                dw_rows(K, KYC, 1, 2, acc, X, D, xrs, drs, E, NV, dwh);
        }
        /* Lanes to sums, sixteen accumulators at a time. */
        float z[DW_ACC > 16 ? 32 : 16];
        int n = NO * KYC * K, i = 0;
#if DN_KERN_ISA != 1
#pragma GCC unroll 2
        for (; i + 16 <= n; i += 16)
            hsum16(acc + i, z + i);
#endif
#pragma GCC unroll 32
        for (; i < n; i++)
            z[i] = hsumw(acc[i]);
        for (int q = 0; q < NO; q++)
            for (int k = 0; k < KYC && ky0 + k < K; k++)
                for (int kx = 0; kx < K; kx++)
                    dw[(size_t)q * s->C * K * K + (ky0 + k) * K + kx] += z[(q * KYC + k) * K + kx];
    }
}

/* The same for kernels wider than 7: one kernel row and 8 taps at a time. */
static void dw_pair_wide(const dn_fast_stage *s, const float *xs, const float *ds, const int *tl,
                         int nt, int o, int c, float *dw)
{
    const int K = s->K, E = s->E, NV = s->NV, xrs = s->xs_rs, drs = s->ds_rs;
    for (int ky = 0; ky < K; ky++)
        for (int kx0 = 0; kx0 < K; kx0 += 8) {
            v16 acc[8];
            for (int k = 0; k < 8; k++)
                acc[k] = splat(0.0f);
            for (int u = 0; u < nt; u++) {
                const float *X = xs + ((size_t)tl[u] * s->C + c) * s->xs_plane;
                const float *D = ds + ((size_t)tl[u] * s->O + o) * s->ds_plane;
                for (int r = ky; r < ky + s->dwh; r++)
                    for (int j = 0; j < NV; j++) {
                        v16 dv = ld(D + (size_t)(E + r - ky) * drs + 16 * j);
                        const float *xr = X + (size_t)r * xrs + 16 * j + kx0;
                        for (int k = 0; k < 8 && kx0 + k < K; k++)
                            acc[k] = fma16(dv, ld(xr + k), acc[k]);
                    }
            }
            for (int k = 0; k < 8 && kx0 + k < K; k++)
                dw[ky * K + kx0 + k] += hsum(acc[k]);
        }
}

/* Weight-gradient blocking by kernel size: NO output channels and KYC
 * kernel rows per chunk, NO * KYC * K accumulators in registers, chosen
 * so that few loads feed many FMAs and no chunk runs past the last
 * kernel row. */
#if DN_KERN_ISA == 2
#define DW_NO(K) ((K) <= 4 ? 2 : 1)
#define DW_KYC(K) ((K) == 4 ? 2 : (K) <= 3 ? (K) : (K) == 5 ? 5 : 3)
#else
#define DW_NO(K) 1
#define DW_KYC(K) ((DW_ACC / (K)) < 1 ? 1 : (DW_ACC / (K)) > (K) ? (K) : (DW_ACC / (K)))
#endif

static const int32_t k_parity[16] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};

/* Routes a pooled gradient g (PH, PW), times the dropout scale f, to the
 * arg-max of each 2x2 window in D (row stride rs, conv pixel (y, x) at
 * D[y * rs + x]): eight windows, two rows of sixteen, a vector at a time.
 * Every row pair and the columns up to the vector's end are written, so
 * nothing needs clearing first. Returns the sum (the bias gradient),
 * summed by lane over the whole map and the lanes once at the end. */
static double route_pool(float *D, int rs, const float *g, const uint8_t *code, int PH, int PW,
                         float f)
{
    vi16 par = ldi(k_parity), par2 = vaddi(par, splati(2));
    v16 acc = splat(0.0f);
    for (int py = 0; py < PH; py++) {
        for (int px = 0; px < PW; px += 8) {
            int n = min_i(8, PW - px);
            /* Lanes past n carry gradient 0, wherever their code points. */
            v16 gv = twice_lo(vscale(ldn(g + py * PW + px, n), f));
            vi16 c = codes_ldn_twice(code + py * PW + px, n);
            v16 r0 = sel(veqi(c, par), gv, splat(0.0f));
            v16 r1 = sel(veqi(c, par2), gv, splat(0.0f));
            st(D + (size_t)(2 * py) * rs + 2 * px, r0);
            st(D + (size_t)(2 * py + 1) * rs + 2 * px, r1);
            acc = vadd(acc, vadd(r0, r1));
        }
    }
    return hsum(acc);
}

/* Routes g (OH, OW), times f and, with relu, where the output y is
 * positive, to D at (oy * stride, ox * stride). Returns the sum (with
 * stride 1 by lane over the map, the lanes summed at the end). */
static double route_plain(float *D, int rs, int stride, const float *g, const float *y, int OH,
                          int OW, int relu, float f)
{
    double sum = 0.0;
    v16 acc = splat(0.0f);
    for (int oy = 0; oy < OH; oy++) {
        const float *gr = g + (size_t)oy * OW, *yr = y + (size_t)oy * OW;
        float *Dr = D + (size_t)oy * stride * rs;
        if (stride == 1) {
            for (int ox = 0; ox < OW; ox += 16) {
                int n = min_i(16, OW - ox);
                v16 v = vscale(ldn(gr + ox, n), f);
                if (relu)
                    v = sel(vgt(ldn(yr + ox, n), splat(0.0f)), v, splat(0.0f));
                stn(Dr + ox, v, n);
                acc = vadd(acc, v);
            }
            continue;
        }
        float rsum = 0.0f;
        for (int ox = 0; ox < OW; ox++) {
            float v = relu && !(yr[ox] > 0.0f) ? 0.0f : gr[ox] * f;
            Dr[(size_t)ox * stride] = v;
            rsum += v;
        }
        sum += rsum;
    }
    return sum + hsum(acc);
}

/* Stages the inputs of samples b0..b0+ns-1 into their planes (unless the
 * forward pass left them there) and routes their output gradients
 * (dropout, pool arg-max or ReLU) into theirs, adding each channel's sum
 * to p->dsum (the bias gradient). */
static void conv_bwd_route(dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a,
                           const float *in, const float *gout, int b0, int ns)
{
    const float *mask_in = mask_of(a, s->in_drop), *mask_out = mask_of(a, s->drop);
    const int H = s->in.h, W = s->in.w, C = s->C, O = s->O, E = s->E, st = s->stride;
    size_t oplane = (size_t)s->out.h * s->out.w;
    /* The forward pass left them staged, or they are staged here. */
    const int kept = conv_planes_kept(s, a->B);
    for (int t = 0; t < ns; t++) {
        int b = b0 + t;
        uint8_t *fi = p->keep + (size_t)t * C, *fo = p->keep_out + (size_t)t * O;
        keep_flags(fi, mask_in, b, C, p->sparse);
        keep_flags(fo, mask_out, b, O, p->sparse);
        const float *inb = in + (size_t)b * s->in_ld;
        for (int c = 0; c < C && !kept; c++)
            if (fi[c])
                stage_plane(s->xs + ((size_t)t * C + c) * s->xs_plane, s->xs_rows, s->xs_rs,
                            s->xs_rs, inb + (size_t)c * H * W, H, W, s->pad, s->pad);
        const float *gb = gout + (size_t)b * s->out_ld, *actb = s->act + (size_t)b * s->out_ld;
        const float *sc = mask_out ? mask_out + (size_t)b * O : NULL;
        for (int o = 0; o < O; o++) {
            float *D = s->ds + ((size_t)t * O + o) * s->ds_plane;
            /* Nothing reads a dropped channel's plane. A stride above 1
             * leaves gaps between the routed values. */
            if (!fo[o])
                continue;
            if (st > 1)
                for (int y = 0; y < s->dwh; y++)
                    memset(D + (size_t)(E + y) * s->ds_rs, 0, (size_t)s->dww * sizeof *D);
            float f = sc ? sc[o] : 1.0f;
            if (s->code)
                p->dsum[o] += route_pool(D + (size_t)E * s->ds_rs, s->ds_rs, gb + o * oplane,
                                         s->code + ((size_t)b * O + o) * oplane, s->OH / 2,
                                         s->OW / 2, f);
            else
                p->dsum[o] += route_plain(D + (size_t)E * s->ds_rs, s->ds_rs, st,
                                          gb + o * oplane, actb + o * oplane, s->OH, s->OW,
                                          s->relu >= 0, f);
        }
    }
}

/* The weight gradient of the ns routed samples, added into dw (O, C, K,
 * K): output channels in pairs (small kernels) or one by one, each with
 * each input channel over the samples that keep both. */
static void conv_bwd_weights(dn_fast_plan *p, const dn_fast_stage *s, int ns, float *dw)
{
    const int C = s->C, O = s->O, K = s->K, KK = K * K;
    const int NO = K <= 7 ? (K <= 4 ? DW_NO(1) : DW_NO(5)) : 1;
    int *tl = p->list;
    uint8_t *kept = p->pair;
    const uint8_t *keep_in = p->keep, *keep_out = p->keep_out;
    for (int o0 = 0; o0 < O; o0 += NO) {
        int no = min_i(NO, O - o0);
        for (int c = 0; c < C; c++) {
            /* The samples that keep c and one of the block's outputs,
             * without a branch (the flags are random: a branch on them
             * mispredicts every other time). */
            int nt = 0;
            for (int t = 0; t < ns; t++) {
                const uint8_t *fo = keep_out + (size_t)t * O + o0;
                int k = fo[0] | (no > 1 && fo[1]) << 1;
                kept[nt] = (uint8_t)k;
                tl[nt] = t;
                nt += keep_in[(size_t)t * C + c] & (k != 0);
            }
            if (!nt)
                continue;
            float *d = dw + ((size_t)o0 * C + c) * KK;
#if DN_KERN_ISA == 2
            if (no == 2) {
                switch (K) {
#define DW2(k) case k: dw_block(2, k, DW_KYC(k), s, s->xs, s->ds, tl, kept, nt, o0, c, d); break;
                DW2(1) DW2(2) DW2(3) DW2(4)
                }
                continue;
            }
#endif
            switch (K) {
#define DW1(k) case k: dw_block(1, k, DW_KYC(k), s, s->xs, s->ds, tl, kept, nt, o0, c, d); break;
            DW1(1) DW1(2) DW1(3) DW1(4) DW1(5) DW1(6) DW1(7)
            default: dw_pair_wide(s, s->xs, s->ds, tl, nt, o0, c, d); break;
            }
        }
    }
}

/* The input gradient of the ns routed samples into gin: the forward
 * kernel over the routed planes, outputs and inputs swapping roles and the
 * kernel flipped; dropped input channels get zeros. */
static void conv_bwd_inputs(dn_fast_plan *p, const dn_fast_stage *s, const float *wt, int b0,
                            int ns, float *gin)
{
    const int H = s->in.h, W = s->in.w, C = s->C, O = s->O;
    int *kin = p->list, *kout = kin + p->ch;
    /* The forward pass's packing is of no use here. */
    s->packed[0] = -1;
    const int KK = s->K * s->K;
    conv_src src = {NULL, s->ds_plane, s->ds_rs, 1, s->K, wt, (size_t)KK, (size_t)C * KK, 1,
                    s->pack};
    /* Where the flipped kernel starts: row E - q, column -q, q = K - 1 - pad
     * (see conv_geometry). */
    ptrdiff_t from = (ptrdiff_t)(2 * s->pad + 2) * s->ds_rs - (s->K - 1 - s->pad);
    for (int t = 0; t < ns; t++) {
        const uint8_t *fi = p->keep + (size_t)t * C, *fo = p->keep_out + (size_t)t * O;
        int nin = keep_list(fi, C, kin), nout = keep_list(fo, O, kout);
        int repack = lists_changed(s->packed, kout, nout, kin, nin);
        float *gb = gin + (size_t)(b0 + t) * s->in_ld;
        for (int c = 0; c < C; c++)
            if (!fi[c])
                memset(gb + (size_t)c * H * W, 0, (size_t)H * W * sizeof *gb);
        src.planes = s->ds + (size_t)t * O * s->ds_plane + from;
        conv_run(&src, repack, NULL, gb, H, W, H, s->NVx, kout, nout, kin, nin);
    }
}

static void conv_backward(dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a,
                          const float *in, const float *gout, float *gin)
{
    const dn_layer *L = &a->m->layers[s->main];
    float *dw = a->grads + L->w_off, *db = a->grads + L->b_off;
    memset(dw, 0, (size_t)s->O * s->C * s->K * s->K * sizeof *dw);
    for (int o = 0; o < s->O; o++)
        p->dsum[o] = 0.0;
    for (int b0 = 0; b0 < a->B; b0 += s->sub) {
        int ns = min_i(s->sub, a->B - b0);
        conv_bwd_route(p, s, a, in, gout, b0, ns);
        conv_bwd_weights(p, s, ns, dw);
        if (gin)
            conv_bwd_inputs(p, s, a->params + L->w_off, b0, ns, gin);
    }
    for (int o = 0; o < s->O; o++)
        db[o] = (float)p->dsum[o];
}

