/*
 * evaluate.c - the evaluator: a model's loss and predictions over a range
 * of a dataset in DN_MODE_INFER (evaluation, nothing kept for a backward pass), in chunks spread over threads, with
 * results that depend on neither.
 */
#include "evaluate.h"

#include "internal.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Most images per forward pass in dn_evaluate. */
#define MAX_EVAL_BATCH 4096
#define DEFAULT_EVAL_BATCH 64

typedef struct eval_job {
    const dn_model *m;
    const dn_dataset *ds;
    dn_evaluator *e;
    size_t first, count;
    atomic_size_t next;     /* next chunk to take */
    atomic_int failed;
    float *logp;            /* (count, classes) or NULL */
} eval_job;

/* Image i of the range from one row of log-probabilities. */
static void score_image(eval_job *j, size_t i, const float *row, int classes)
{
    unsigned label = j->ds->labels[j->first + i];
    j->e->nll[i] = label < (unsigned)classes ? -(double)row[label] : NAN;
    j->e->hit[i] = (unsigned)dn_argmax(row, classes) == label;
    if (j->logp)
        memcpy(j->logp + i * (size_t)classes, row, (size_t)classes * sizeof *row);
}

static void eval_chunks(void *ctx, int tid)
{
    eval_job *j = ctx;
    dn_scratch *s = &j->e->scratch[tid];
    const dn_dataset *ds = j->ds;
    int classes = dn_model_classes(j->m);
    size_t chunk = (size_t)j->e->chunk, plane = (size_t)ds->rows * ds->cols;
    size_t nchunks = (j->count + chunk - 1) / chunk;
    for (;;) {
        size_t c = atomic_fetch_add(&j->next, 1);
        if (c >= nchunks)
            break;
        size_t lo = c * chunk;
        int B = (int)(j->count - lo < chunk ? j->count - lo : chunk);
        for (int b = 0; b < B; b++)
            dn_dataset_image(ds, j->first + lo + (size_t)b, s->x + (size_t)b * plane);
        const float *out = dn_model_forward(j->m, s->work, s->x, B, DN_MODE_INFER, NULL);
        if (!out) { // (B, classes)
            atomic_store(&j->failed, 1);
            continue;
        }
        for (int b = 0; b < B; b++)
            score_image(j, lo + (size_t)b, out + (size_t)b * (size_t)classes, classes);
    }
}

dn_status dn_evaluator_init(dn_evaluator *e, dn_pool *p, dn_scratch *s, int chunk, size_t cap,
                            dn_error *err)
{
    memset(e, 0, sizeof *e);
    e->pool = p;
    e->scratch = s;
    e->chunk = chunk;
    e->cap = cap;
    e->nll = malloc((cap ? cap : 1) * sizeof *e->nll);
    e->hit = malloc(cap ? cap : 1);
    if (!e->nll || !e->hit) {
        dn_evaluator_free(e);
        return dn_fail(err, DN_ERR_NOMEM, "out of memory evaluating %zu images", cap);
    }
    return DN_OK;
}

void dn_evaluator_free(dn_evaluator *e)
{
    free(e->nll);
    free(e->hit);
    memset(e, 0, sizeof *e);
}

dn_status dn_evaluator_run(dn_evaluator *e, const dn_model *m, const dn_dataset *ds,
                           size_t first, size_t count, float *logp, double *loss,
                           size_t *correct, dn_error *err)
{
    eval_job j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.ds = ds;
    j.e = e;
    j.first = first;
    assert(count <= e->cap);
    j.count = count;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    j.logp = logp;
    dn_pool_run(e->pool, eval_chunks, &j);
    if (atomic_load(&j.failed))
        return dn_fail(err, DN_ERR_SHAPE, "evaluation: the model's forward pass refused a "
                       "batch of %d images of %ux%u (does the model fit the dataset?)",
                       e->chunk, ds->rows, ds->cols);
    double sum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < j.count; i++) {
        sum += e->nll[i];
        hits += e->hit[i];
    }
    if (loss)
        *loss = j.count ? sum / (double)j.count : NAN;
    if (correct)
        *correct = hits;
    return DN_OK;
}

dn_status dn_check_fit(const dn_model *m, const dn_dataset *ds, const char *what,
                       dn_error *err)
{
    if (m->input.c != 1 || (uint32_t)m->input.h != ds->rows || (uint32_t)m->input.w != ds->cols)
        return dn_fail(err, DN_ERR_SHAPE, "the model takes %dx%dx%d inputs but the %s images "
                       "are 1x%ux%u", m->input.c, m->input.h, m->input.w, what, ds->rows,
                       ds->cols);
    return dn_model_check_classifier(m, 10, err);
}

dn_status dn_evaluate(const dn_model *m, const dn_dataset *ds, size_t first, size_t count,
                      int threads, int batch, float *logp, double *loss, size_t *correct,
                      dn_error *err)
{
    if (!m || !ds)
        return dn_fail(err, DN_ERR_ARG, "dn_evaluate: NULL model or dataset");
    if (first > ds->n || count > ds->n - first)
        return dn_fail(err, DN_ERR_ARG, "dn_evaluate: images %zu..%zu are outside the %zu "
                       "of the dataset", first, first + count, ds->n);
    dn_status st = dn_check_fit(m, ds, ds->name, err);
    if (st || count == 0) {
        if (!st && loss)
            *loss = NAN;
        if (!st && correct)
            *correct = 0;
        return st;
    }
    int chunk = batch > 0 ? (batch > MAX_EVAL_BATCH ? MAX_EVAL_BATCH : batch)
                          : DEFAULT_EVAL_BATCH;
    int n = dn_pool_threads(threads);
    size_t nchunks = (count + (size_t)chunk - 1) / (size_t)chunk;
    if ((size_t)n > nchunks)
        n = (int)nchunks;
    dn_pool p;
    memset(&p, 0, sizeof p);
    dn_evaluator e;
    memset(&e, 0, sizeof e);
    dn_scratch *s = dn_scratch_new(m, n, chunk, 0);
    if (!s)
        st = dn_fail(err, DN_ERR_NOMEM, "out of memory evaluating %zu images", count);
    if (!st)
        st = dn_evaluator_init(&e, &p, s, chunk, count, err);
    if (!st)
        st = dn_pool_start(&p, n, err);
    if (!st)
        st = dn_evaluator_run(&e, m, ds, first, count, logp, loss, correct, err);
    dn_pool_stop(&p);
    dn_evaluator_free(&e);
    dn_scratch_free(s, n);
    return st;
}
