/*
 * fast_impl.h - what the fast kernels' files share: the per-work state,
 * its buffer geometry, and the passes each instruction set implements.
 *
 * The fast path handles exactly the lecture's CNN_MNIST:
 *   conv1 1->8 k3 p1, relu, maxpool 2, dropout2d (layer 3),
 *   conv2 8->16 k5 p2, relu, maxpool 2, dropout2d (layer 7),
 *   flatten, fc1 784->64, relu, fc2 64->10, logsoftmax.
 *
 * Geometry. Vectors are 16 floats. A 14x14 map (conv2's input, and the
 * gradient of conv2's output) is kept as a zero-bordered "plane" of
 * PL_ROWS x PL_STRIDE floats with pixel (y, x) at PL_AT(y, x), so that a
 * 16-float load at any of the 5x5 taps stays inside it and reads zeros
 * outside the image: padding costs no test. (Two zero rows would do for
 * the convolutions; conv2's weight gradient slides a window of five
 * gradient rows over the input and wants four.) The 28x28
 * input is kept the same way with a border of 1 (XP_ROWS x XP_STRIDE).
 * Borders are zeroed once at allocation and never written again.
 *
 * Dropout sparsity. A channel whose Dropout2d scale is 0 is skipped
 * everywhere: conv1 does not compute it, conv2 does not read it, its
 * gradient is never formed; a conv2 channel dropped after pool2 is not
 * computed and its 49 fc1 columns are not visited. The skipped terms are
 * exact zeros in the dense computation, so results are equal either way
 * (dn_fast_set_sparse(w, 0) runs the dense computation for the tests).
 */
#ifndef DN_FAST_IMPL_H
#define DN_FAST_IMPL_H

#include "fast.h"

#include <stdint.h>

#define C1 8                    /* conv1 output channels */
#define C2 16                   /* conv2 output channels */
#define HID 64                  /* fc1 outputs */
#define NCLS 10                 /* fc2 outputs */
#define FC_IN (C2 * 49)         /* 784 */
#define FC_VECS (FC_IN / 16)    /* 49 vectors of 16 span fc1's input */

#define XP_ROWS 30
#define XP_STRIDE 36
#define XP_SIZE (XP_ROWS * XP_STRIDE)   /* padded input, border 1 */
#define PL_ROWS 22
#define PL_STRIDE 20
#define PL_SIZE (PL_ROWS * PL_STRIDE)   /* padded 14x14 map */
#define PL_AT(y, x) (((y) + 4) * PL_STRIDE + (x) + 2) /* rows -4..17, cols -2..17 */
#define A2_SIZE (FC_IN + 16)            /* pool2 output + spill room */

struct dn_fast_state {
    int max_batch;
    int isa;                /* DN_FAST_ISA_* in use */
    int sparse;             /* skip dropped channels (default 1) */
    int B;                  /* samples of the last forward */
    /* Per sample b < max_batch, kept from forward for backward. */
    float *xpad;            // (max_batch, XP_ROWS, XP_STRIDE) padded input
    float *p1;              // (max_batch, C1, PL_ROWS, PL_STRIDE) pool1 * mask
    float *a2;              // (max_batch, A2_SIZE) pool2 * mask = fc1 input
    float *h;               // (max_batch, HID) relu(fc1)
    float *dh;              // (max_batch, HID) gradient at fc1's output
    uint8_t *am1;           // (max_batch, C1, 14, 16) pool1 arg-max codes
    uint8_t *am2;           // (max_batch, C2, 7, 8) pool2 arg-max codes
    float *s1;              // (max_batch, C1) dropout scale after pool1
    float *s2;              // (max_batch, C2) dropout scale after pool2
    uint64_t *act;          // (max_batch) bit v: fc1 input vector v (16
                            //   floats) holds a kept channel
    int *list;              // (max_batch) scratch list of samples
    /* Backward scratch, one sample at a time. */
    float *da2;             // (A2_SIZE) gradient at fc1's input
    float *dy2;             // (C2, PL_ROWS, PL_STRIDE) gradient at conv2's output
    float *dp1;             // (C1, 14, 16) gradient at pool1's output
    float *dy1;             // (28, 32) gradient at conv1's output, one channel
    float *dw2v;            // (C2, C1, 25, 16) conv2 weight gradient, by lane
    float *dw1v;            // (C1, 9, 16) conv1 weight gradient, by lane
    float *db1v;            // (C1, 16)
    float *db2v;            // (C2, 16)
    uint8_t touched[C2 * C1]; /* dw2v pair written in this backward */
    void *block;            /* the one allocation all of this lives in */
};

/* Arg-max codes: 0..3 is the window position (dy * 2 + dx) of the first
 * maximum; DN_AM_NONE means no gradient passes (the pooled ReLU output is
 * 0, or the lane is past the map's edge). */
#define DN_AM_NONE 4

/* What one pass works on: parameters, input or labels, outputs. */
typedef struct dn_fast_pass {
    const float *w_c1, *b_c1;   // (8, 1, 3, 3), (8)
    const float *w_c2, *b_c2;   // (16, 8, 5, 5), (16)
    const float *w_f1, *b_f1;   // (64, 784), (64)
    const float *w_f2, *b_f2;   // (10, 64), (10)
    const float *x;             // (B, 1, 28, 28) forward input
    float *logp;                // (B, 10) forward output
    const uint8_t *labels;      // (B) backward
    float scale;                // backward: gradient of scale * sum NLL
    float *g_c1w, *g_c1b, *g_c2w, *g_c2b, *g_f1w, *g_f1b, *g_f2w, *g_f2b;
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
void dn_fast_fwd_c(dn_fast_state *s, const dn_fast_pass *p);
void dn_fast_bwd_c(dn_fast_state *s, const dn_fast_pass *p);
#if defined(DN_FAST_KERNELS_X86)
void dn_fast_fwd_avx2(dn_fast_state *s, const dn_fast_pass *p);
void dn_fast_bwd_avx2(dn_fast_state *s, const dn_fast_pass *p);
void dn_fast_fwd_avx512(dn_fast_state *s, const dn_fast_pass *p);
void dn_fast_bwd_avx512(dn_fast_state *s, const dn_fast_pass *p);
#endif

#endif
