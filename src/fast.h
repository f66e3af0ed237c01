/*
 * fast.h - the hook between the general layer kernels (src/layers, driven
 * by src/model.c) and the vectorised, fused, dropout-sparse kernels for the
 * lecture's architecture (src/fast/).
 *
 * dn_model_forward and dn_model_backward call these first (unless the work
 * was set to reference mode). They return 1 when they handled the pass and
 * 0 when the model or mode is not one they support, in which case the
 * general kernels run. A fast forward that returned 1 must be followed by a
 * fast backward on the same work; the results equal the general kernels'
 * (dropout masks come from the same dn_dropout2d_mask).
 */
#ifndef DN_FAST_H
#define DN_FAST_H

#include "digitnet.h"

/* Per-work state of the fast kernels: created by them on first use, kept
 * in the work's slot, and freed by dn_work_free through dn_fast_free. */
typedef struct dn_fast_state dn_fast_state;
void dn_fast_free(dn_fast_state *s);
/* Implemented in src/model.c. */
dn_fast_state **dn_work_fast_slot(dn_work *w);
int dn_work_max_batch(const dn_work *w);

int dn_fast_forward(const dn_model *m, dn_work *w, const float *x, int B,
                    dn_mode mode, const uint64_t *sample_keys);
int dn_fast_backward(const dn_model *m, dn_work *w, const uint8_t *labels,
                     int B, float scale, float *grads);

/* 1 if m is the architecture the fast kernels handle (the lecture's
 * CNN_MNIST, any dropout probability), else 0. */
int dn_fast_supports(const dn_model *m);

/* Instruction sets of the fast kernels: portable C (GNU vector extensions,
 * whatever the compiler's baseline target is), AVX2+FMA, AVX-512. */
enum {
    DN_FAST_ISA_C = 0,
    DN_FAST_ISA_AVX2 = 1,
    DN_FAST_ISA_AVX512 = 2
};
/* The best instruction set this machine runs; -1 when the fast kernels
 * were not built (a compiler without GNU vector extensions). */
int dn_fast_best_isa(void);
/* "c", "avx2", "avx512"; "none" for anything else. */
const char *dn_fast_isa_name(int isa);

/* For tests and benchmarks. Both take effect from the next forward pass
 * and may allocate the work's fast state (they return -1 if that fails).
 * dn_fast_set_isa forces an instruction set on this work (-1: the best
 * one) and returns the one in effect, which is the best one when the
 * machine lacks the requested set. dn_fast_set_sparse(w, 0) makes the
 * fast kernels compute every channel and multiply dropped ones by 0,
 * instead of skipping them (1, the default); results are equal. */
int dn_fast_set_isa(dn_work *w, int isa);
int dn_fast_set_sparse(dn_work *w, int on);

#endif
