/*
 * kern.h - the arithmetic of the fast kernels, written once on a 16-float
 * vector (vec.h: one zmm register, two ymm or four xmm) and compiled by
 * kern_c.c, kern_avx2.c and kern_avx512.c for their instruction sets. The
 * includer defines DN_KERN_ISA (0 C, 1 AVX2, 2 AVX-512) and
 * DN_KERN_NAME(x), and has selected the target. The stages, their planes
 * and buffers are described in fast_impl.h.
 *
 * Forward, per stage: a convolution sample by sample over its kept input
 * channels into its kept output channels, blocks of two output rows x one
 * or two vectors x several channels in registers, with ReLU, 2x2 pooling
 * and the dropout scale applied to the registers before they are stored;
 * a fully connected layer a few samples at a time over the input vectors
 * they hold; pooling, ReLU and dropout stages as plain loops.
 * Backward, per stage in reverse: the output gradient is routed (dropout,
 * pooling arg-max, ReLU) into zero-bordered planes; the weight gradient of
 * each (output, input) channel pair sums over the samples of a block in
 * registers; the input gradient is the forward kernel run over those planes
 * with the kernel flipped. Nothing allocates.
 */
#include "fast/fast_impl.h"
#include "layers/layers.h"

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
#define KB1 8       /* conv output channels per block, one vector per row */
#define KB2 6       /* ... two vectors per row */
#define NVT_MAX 2
#define DW_ACC 25   /* weight-gradient accumulators */
#define FC_ACC 16   /* fc accumulators (samples x outputs) */
#define G_MAX 8     /* fc samples per block */
#elif DN_KERN_ISA == 1
/* AVX2: conv_block and the weight gradient work on one ymm of columns at
 * a time (see there): 2 x 5 conv accumulators, 9 weight-gradient ones. */
#define KB1 5
#define KB2 1
#define NVT_MAX 1
#define DW_ACC 9
#define FC_ACC 4
#define G_MAX 4
#else
#define KB1 1
#define KB2 1
#define NVT_MAX 1
#define DW_ACC 3
#define FC_ACC 2
#define G_MAX 2
#endif
#define KB_MAX (KB1 > KB2 ? KB1 : KB2)

static const int32_t k_bottom2[16] = {0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2};

static inline int min_i(int a, int b)
{
    return a < b ? a : b;
}

/* ------------------------------------------------------------------------ */
/* Kept channels                                                            */
/* ------------------------------------------------------------------------ */

/* Kept flags of C channels of sample b from a (B, C) dropout scale: all
 * kept without one, or when not skipping. */
static void keep_flags(uint8_t *keep, const float *mask, int b, int C, int sparse)
{
    for (int c = 0; c < C; c++)
        keep[c] = !sparse || !mask || mask[(size_t)b * C + c] != 0.0f;
}

/* The kept channels' indices into list; returns how many. Every index is
 * stored and the count advances by the flag: the flags are random, and a
 * branch on them would mispredict every other time. */
static int keep_list(const uint8_t *keep, int C, int *list)
{
    int n = 0;
    for (int c = 0; c < C; c++) {
        list[n] = c;
        n += keep[c] != 0;
    }
    return n;
}

/* The mask of layer l for this pass, or NULL. */
static const float *mask_of(const dn_fast_pass *a, int l)
{
    return l >= 0 && a->masks ? a->masks[l] : NULL;
}

/* ------------------------------------------------------------------------ */
/* Staged planes                                                            */
/* ------------------------------------------------------------------------ */

/* src (h, w) into dst, pixel (y, x) at row top + y, column left + x,
 * clipped to rows x cols (row stride rs). What lies outside is not
 * touched: the borders stay as they are (zero). Rows are short (a few
 * vectors), so they are copied a vector at a time rather than by memcpy
 * calls. */
static void stage_plane(float *dst, int rows, int cols, int rs, const float *src, int h, int w,
                        int top, int left)
{
    int x0 = left < 0 ? -left : 0, x1 = min_i(w, cols - left);
    if (x1 <= x0)
        return;
    for (int y = top < 0 ? -top : 0; y < h && top + y < rows; y++) {
        float *d = dst + (size_t)(top + y) * rs + left;
        const float *s = src + (size_t)y * w;
        for (int x = x0; x < x1; x += 16) {
            int n = min_i(16, x1 - x);
            stn(d + x, ldn(s + x, n), n);
        }
    }
}

#include "fast/kern_conv.h"
#include "fast/kern_fc.h"
#include "fast/kern_pool.h"

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */
/* ------------------------------------------------------------------------ */

void DN_KERN_NAME(dn_fast_fwd)(dn_fast_plan *p, const dn_fast_pass *a)
{
    size_t n_in = (size_t)p->input.c * p->input.h * p->input.w;
    /* Backward needs the input after the caller may have reused x, unless
     * none follows or the first stage is a convolution that keeps the
     * batch's staged planes for it; then the first stage reads x as it is
     * when the plan's rows are the caller's. */
    const dn_fast_stage *s0 = &p->stages[0];
    const float *in = p->x;
    if (n_in == p->in_ld && (a->infer || (s0->kind == DN_STAGE_CONV && conv_planes_kept(s0, a->B))))
        in = a->x;
    else
        for (int b = 0; b < a->B; b++)
            memcpy(p->x + (size_t)b * p->in_ld, a->x + (size_t)b * n_in, n_in * sizeof *a->x);
    /* The weights may have changed since the last pass. */
    for (int i = 0; i < p->n_stages; i++)
        if (p->stages[i].packed)
            p->stages[i].packed[0] = -1;
    for (int i = 0; i < p->n_stages; i++) {
        const dn_fast_stage *s = &p->stages[i];
        if (s->kind == DN_STAGE_CONV) {
            /* A run of convolutions writing each other's planes: the
             * batch through all of them at once when their buffers hold
             * it for the backward pass, else one sample at a time, its
             * planes hot in the cache (see fast_impl.h). */
            int j = i, chunk = a->B <= s->chunk && !a->infer ? a->B : 1;
            while (p->stages[j].to_next)
                j++;
            for (int b0 = 0; b0 < a->B; b0 += chunk)
                for (int k = i; k <= j; k++)
                    conv_forward(p, &p->stages[k], a, k > i ? p->stages[k - 1].act : in, b0,
                                 min_i(chunk, a->B - b0));
            i = j;
            in = p->stages[j].act;
            continue;
        }
        switch (s->kind) {
        case DN_STAGE_FC: fc_forward(p, s, a, in); break;
        case DN_STAGE_POOL: pool_forward(s, a, in); break;
        default: elementwise_forward(s, a, in); break;
        }
        in = s->act;
    }
    /* The head: log_softmax as the general kernel, or the output as is. */
    const dn_fast_stage *last = &p->stages[p->n_stages - 1];
    int n = p->classes;
    for (int b = 0; b < a->B; b++) {
        const float *z = last->act + (size_t)b * last->out_ld;
        float *y = a->logp + (size_t)b * n;
        if (p->head_logsoftmax)
            dn_logsoftmax_forward(y, z, 1, n);
        else
            memcpy(y, z, (size_t)n * sizeof *y);
    }
}

void DN_KERN_NAME(dn_fast_bwd)(dn_fast_plan *p, const dn_fast_pass *a)
{
    const dn_fast_stage *last = &p->stages[p->n_stages - 1];
    int n = p->classes, cur = 0;
    /* The NLL gradient, through log_softmax as the general kernels. */
    for (int b = 0; b < a->B; b++) {
        const float *y = a->logp_fwd + (size_t)b * n;
        float *g = p->g[cur] + (size_t)b * last->out_ld;
        int lb = a->labels[b];
        double sum = lb < n ? -(double)a->scale : 0.0;
        for (int i = 0; i < n; i++) {
            float dy = i == lb ? -a->scale : 0.0f;
            g[i] = p->head_logsoftmax ? (float)(dy - exp((double)y[i]) * sum) : dy;
        }
    }
    for (int i = p->n_stages - 1; i >= 0; i--) {
        const dn_fast_stage *s = &p->stages[i];
        const float *in = i > 0 ? p->stages[i - 1].act : p->x;
        const float *gout = p->g[cur];
        /* Nobody needs the gradient of the input image. */
        float *gin = i > 0 ? p->g[1 - cur] : NULL;
        switch (s->kind) {
        case DN_STAGE_CONV: conv_backward(p, s, a, in, gout, gin); break;
        case DN_STAGE_FC: fc_backward(p, s, a, in, gout, gin); break;
        case DN_STAGE_POOL:
            if (gin)
                pool_backward(s, a, gout, gin);
            break;
        default:
            if (gin)
                elementwise_backward(s, a, in, gout, gin);
            break;
        }
        cur = 1 - cur;
    }
}
