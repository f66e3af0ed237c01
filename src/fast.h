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

#endif
