/*
 * fast_impl.h - what the fast kernels' files share: the plan (a model's
 * layers grouped into fused stages, with their geometry and buffers) and
 * the passes each instruction set implements.
 *
 * Stages. A stage is one main operation and the layers fused after it:
 *   conv [relu] [maxpool 2x2 stride 2, only after relu] [dropout2d]
 *   fc [relu] [dropout2d]
 *   maxpool [dropout2d]      relu [dropout2d]      dropout2d
 * flatten is no stage (NCHW already is the flat layout) and a final
 * log-softmax is the head. Each stage keeps its output for the next one
 * and for backward, (B, out) with a per-sample stride rounded up to 16
 * floats whose tail stays 0.
 *
 * Convolutions run directly on zero-bordered copies ("staged planes") of
 * their input channels, 16 output columns to a vector, two output rows and
 * several output channels per block of accumulators, so that padding costs
 * no test and each loaded input vector feeds many FMAs. The input gradient
 * is the same kernel over the staged output gradient with the kernel
 * flipped (a stride above 1 spreads the gradient out with zeros between);
 * the weight gradient slides a window of gradient rows down each input
 * plane, pair by pair of channels, summing over the samples in registers.
 * A convolution whose output is the next convolution's input writes it
 * into that one's staged planes too, and the backward pass finds a
 * training batch's planes where the forward pass left them. The blocks'
 * weights are packed once per pass and channel set.
 *
 * Dropout sparsity. A channel whose Dropout2d scale is 0 is skipped: the
 * stage that produces it does not compute it, a convolution that reads it
 * does not visit it, a fully connected layer skips the 16-float vectors of
 * its input that hold only dropped channels, and no gradient is formed for
 * it. The skipped terms are exact zeros of the dense computation, so the
 * results are the same (dn_fast_set_sparse(p, 0) runs the dense one).
 */
#ifndef DN_FAST_IMPL_H
#define DN_FAST_IMPL_H

#include "fast.h"

#include <stddef.h>
#include <stdint.h>

typedef enum dn_stage_kind {
    DN_STAGE_CONV,
    DN_STAGE_FC,
    DN_STAGE_POOL,
    DN_STAGE_RELU,
    DN_STAGE_DROP
} dn_stage_kind;

/* Arg-max codes of a fused 2x2 pool: 0..3 is the window position (dy * 2 +
 * dx) of the first maximum; DN_AM_NONE means no gradient passes (the
 * pooled ReLU output is 0). */
#define DN_AM_NONE 4

typedef struct dn_fast_stage {
    dn_stage_kind kind;
    /* The model's layers in their roles (indices into dn_model.layers,
     * -1 when the stage has none). */
    int main;           /* the conv, fc, maxpool, relu or dropout2d */
    int relu;           /* ReLU fused after a conv or fc */
    int pool;           /* 2x2 stride-2 max-pool fused after conv + ReLU */
    int drop;           /* Dropout2d fused at the end */
    int in_drop;        /* the dropout2d whose output is this stage's input */
    dn_shape in, out;   /* the stage's input and output */
    size_t in_ld, out_ld; /* per-sample strides of input and output (floats) */
    /* conv: C -> O channels, K x K, pad, stride; conv output OH x OW.
     * fc: C = inputs, O = outputs. */
    int C, O, K, pad, stride, OH, OW;
    /* conv geometry. Computed rows are NV vectors wide over the stride-1
     * extent dww = (OW-1)*stride+1 (dwh likewise down). Staged input
     * planes: xs_rows x xs_rs, input pixel (y, x) at (y + pad, x + pad).
     * Staged output gradient planes: ds_rows x ds_rs (a multiple of 16),
     * gradient (oy, ox) at (E + oy*stride, ox*stride). */
    int NV, dwh, dww, E;
    int xs_rows, xs_rs, ds_rows, ds_rs;
    size_t xs_plane, ds_plane;
    int NVx;            /* vectors per row of the input gradient (W wide) */
    int sub;            /* samples per block of the weight gradient: as many
                           as keep a block's planes of two output channels
                           in the L1 cache while the input channels pass */
    /* conv feeding conv: the first writes its output into the second's
     * staged planes as well (to_next), which then reads them as they are
     * (staged) instead of staging its input. A forward pass takes a batch
     * of up to chunk samples through such a run of convolutions at once,
     * every staged stage keeping each sample's planes for the backward
     * pass (chunk is the least sub of the run); a larger batch goes
     * through one sample at a time, its planes hot in the cache. */
    int to_next, staged, chunk;
    /* fc: vectors of 16 inputs, samples per block. */
    int nvec, group;
    /* Buffers. */
    float *act;         // (max_batch, out_ld) stage output
    uint8_t *code;      // (max_batch, O, OH/2, OW/2) fused pool arg-max
    int32_t *argmax;    // (max_batch, out) maxpool stage: index in its input plane
    uint64_t *active;   // (max_batch, words) fc: input vectors holding a kept channel
    int words;          /* uint64 words per sample of active */
    float *pack;        // (O * C * K * K + 16) conv: the blocks' weights, packed
    int *packed;        // (2 + C + O) conv: the channel lists pack holds (see
                        // lists_changed), packed[0] = -1: none
    float *xs;          // (sub, C, xs_rows, xs_rs) conv: staged inputs
    float *ds;          // (sub, O, ds_rows, ds_rs) conv: staged output gradients
} dn_fast_stage;

struct dn_fast_plan {
    int max_batch;
    int isa;            /* DN_FAST_ISA_* in use */
    int sparse;         /* skip dropped channels (default 1) */
    int n_stages;
    dn_fast_stage stages[DN_MAX_LAYERS];
    int head_logsoftmax;/* the last layer is a log-softmax */
    dn_shape input;
    size_t in_ld;       /* per-sample stride of the input copy */
    int classes;
    int sub;            /* samples per backward block of a convolution */
    int ch;             /* the most channels of any tensor */
    float *x;           // (max_batch, in_ld) copy of the input, for backward
    float *g[2];        // (max_batch, largest ld) gradients, ping-pong
    uint64_t *un;       // (largest words) fc: union of a block's input vectors
    float *dy;          // (max_batch, largest fc O) fc output gradient
    double *dsum;       // (largest O) bias-gradient sums
    uint8_t *keep;      // (max_batch, largest C) kept input channels
    uint8_t *keep_out;  // (max_batch, largest C) kept output channels
    uint8_t *pair;      // (max_batch) which of a pair of channels a sample keeps
    int *list;          // (max_batch + 2 * largest C) scratch lists
    void *block;        /* the one allocation all buffers live in */
};

/* What one pass works on. */
typedef struct dn_fast_pass {
    const dn_model *m;
    const float *params;
    const float *const *masks;  /* per layer: (B, C) or NULL */
    const float *x;             // (B, input) forward
    int infer;                  /* forward: no backward follows, keep nothing */
    float *logp;                // (B, classes) forward output
    const float *logp_fwd;      // (B, classes) backward: that output
    const uint8_t *labels;      // (B) backward
    float scale;                // backward: gradient of scale * sum NLL
    float *grads;               // (n_params) backward
    int B;
} dn_fast_pass;

/* The kernels are written with GNU C vector extensions and
 * __builtin_shufflevector (GCC 12, Clang); with another compiler the fast
 * path stays off and the general kernels run. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define DN_FAST_KERNELS 1
#if defined(__x86_64__)
#define DN_FAST_KERNELS_X86 1
#endif
#endif

/* The passes, one set per instruction set (src/fast/kern_*.c, each the
 * same src/fast/kern.h compiled for its target). */
void dn_fast_fwd_c(dn_fast_plan *p, const dn_fast_pass *a);
void dn_fast_bwd_c(dn_fast_plan *p, const dn_fast_pass *a);
#if defined(DN_FAST_KERNELS_X86)
void dn_fast_fwd_avx2(dn_fast_plan *p, const dn_fast_pass *a);
void dn_fast_bwd_avx2(dn_fast_plan *p, const dn_fast_pass *a);
void dn_fast_fwd_avx512(dn_fast_plan *p, const dn_fast_pass *a);
void dn_fast_bwd_avx512(dn_fast_plan *p, const dn_fast_pass *a);
#endif

#endif
