/*
 * evaluate.h - the evaluator (src/evaluate.c) as the trainer uses it: on
 * the trainer's own pool and scratch buffers, after every epoch. Internal
 * to libdigitnet; programs call dn_evaluate.
 */
#ifndef DN_EVALUATE_H
#define DN_EVALUATE_H

#include "pool.h"

/* Evaluation over a pool that someone else owns. */
typedef struct dn_evaluator {
    dn_pool *pool;          /* borrowed */
    dn_scratch *scratch;    /* borrowed: one per pool thread, each made for
                               at least `chunk` images */
    int chunk;              /* images per forward pass */
    size_t cap;             /* most images per run */
    double *nll;            /* (cap) each image's loss */
    uint8_t *hit;           /* (cap) 1 where the predicted class is right */
} dn_evaluator;

/* Sets e up for runs of up to cap images. On failure e holds nothing to
 * free. */
dn_status dn_evaluator_init(dn_evaluator *e, dn_pool *p, dn_scratch *s, int chunk, size_t cap,
                            dn_error *err);
void dn_evaluator_free(dn_evaluator *e);

/* Evaluates images [first, first + count) of ds (count <= cap) in
 * DN_MODE_EVAL: logp (count, classes) if not NULL, the mean NLL into *loss
 * and the number right into *correct. Sums in image order, so the result is
 * the same for any thread count. */
dn_status dn_evaluator_run(dn_evaluator *e, const dn_model *m, const dn_dataset *ds,
                           size_t first, size_t count, float *logp, double *loss,
                           size_t *correct, dn_error *err);

/* DN_ERR_SHAPE unless m takes ds's images (1 x rows x cols) and has at
 * least two outputs; `what` names the images in the message. */
dn_status dn_check_fit(const dn_model *m, const dn_dataset *ds, const char *what,
                       dn_error *err);

#endif
