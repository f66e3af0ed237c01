/*
 * fast.h - the fast kernels (src/fast/) as src/model.c sees them.
 *
 * One implementation for every network the spec language accepts:
 * convolutions of any channels, kernel, padding and stride, max-pooling of
 * any window, fully connected layers of any size, ReLU, Dropout2d,
 * flatten and log-softmax, vectorised with one source compiled for
 * AVX-512, AVX2 and portable C and chosen at run time. The model owns the
 * plan: dn_work_new makes it with the workspace and dn_work_free frees it;
 * the model draws the dropout masks (once, dn_dropout2d_mask) and hands
 * them and every buffer over as arguments. Nothing here calls back into
 * src/model.c. Results agree with the general kernels (src/layers) within
 * rounding (tests/test_fast.c).
 */
#ifndef DN_FAST_H
#define DN_FAST_H

#include "digitnet.h"

/* A model's layers grouped into fused stages, with every buffer the fast
 * passes need for batches of up to max_batch. */
typedef struct dn_fast_plan dn_fast_plan;

/* The plan for m and batches of 1..max_batch; NULL when the fast kernels
 * were not built (a compiler without GNU vector extensions) or memory ran
 * out, in which case the general kernels run. */
dn_fast_plan *dn_fast_plan_new(const dn_model *m, int max_batch);
void dn_fast_plan_free(dn_fast_plan *p);

/* Forward pass of B samples x (B, input) through m (the model the plan was
 * made for, or one of the same shapes) into logp (B, classes). masks[l] is
 * the (B, C) Dropout2d scale of dropout layer l, or NULL for the identity
 * (evaluation); entries of other layers are ignored. infer: no backward
 * pass follows, so nothing is kept for one (DN_MODE_INFER). */
void dn_fast_forward(dn_fast_plan *p, const dn_model *m, const float *x, int B,
                     const float *const *masks, int infer, float *logp);
/* Backward pass after dn_fast_forward of the same B on the same plan, with
 * the same masks and logp: writes every element of grads (n_params), the
 * gradient of scale * sum_b NLL(b). */
void dn_fast_backward(dn_fast_plan *p, const dn_model *m, const float *const *masks,
                      const float *logp, const uint8_t *labels, int B, float scale,
                      float *grads);

/* Instruction sets of the fast kernels: portable C (GNU vector extensions,
 * whatever the compiler's baseline target is), AVX2+FMA, AVX-512. */
enum {
    DN_FAST_ISA_C = 0,
    DN_FAST_ISA_AVX2 = 1,
    DN_FAST_ISA_AVX512 = 2
};
/* The best instruction set this machine runs; -1 when the fast kernels
 * were not built. */
int dn_fast_best_isa(void);
/* "c", "avx2", "avx512"; "none" for anything else. */
const char *dn_fast_isa_name(int isa);

/* For tests and benchmarks, from the next pass on. dn_fast_set_isa forces
 * an instruction set (-1: the best) and returns the one in effect, the
 * best one when the machine lacks the requested set. dn_fast_set_sparse
 * (p, 0) computes every channel and multiplies dropped ones by 0 instead
 * of skipping them (1, the default); the results are equal. */
int dn_fast_set_isa(dn_fast_plan *p, int isa);
int dn_fast_set_sparse(dn_fast_plan *p, int on);

#endif
