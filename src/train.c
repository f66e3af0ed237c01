/*
 * train.c - the trainer: deterministic mini-batch gradient descent over a
 * thread pool (src/pool.c), evaluated after every epoch (src/evaluate.c)
 * and checkpointed for an exact resume (src/checkpoint.c).
 *
 * Determinism. Every random draw is keyed by (seed, purpose, epoch, image
 * index), never by thread or batch position: epoch e's order is a
 * Fisher-Yates permutation from dn_key(seed, SHUFFLE, e, 0), image i's
 * dropout masks come from dn_key(seed, DROPOUT, e, i) and its augmentation
 * from dn_key(seed, AUGMENT, e, i). A batch is cut into fixed chunks of
 * dn_train_chunk(model) samples; each chunk's gradient (scaled by 1/batch)
 * goes to
 * its own buffer, whichever thread computes it, and the buffers are summed
 * in chunk order. Float addition is then done in the same order for any
 * thread count, so the weights are bit-identical for 1 or N threads.
 *
 * Stopping. A stop requested through the progress callback finishes the
 * current batch and writes a mid-epoch checkpoint, so at most one batch of
 * work is lost.
 *
 * Divergence. A non-finite loss, or a parameter the optimizer step made
 * NaN or infinite (checked on every step), stops the run with
 * DN_ERR_NUMERIC before anything more is written, so the last checkpoint
 * is a model that still works.
 */
#include "checkpoint.h"
#include "evaluate.h"
#include "internal.h"
#include "pool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Samples per evaluation chunk inside the trainer. */
#define EVAL_CHUNK 32

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* One batch                                                                */
/* ------------------------------------------------------------------------ */

typedef struct chunk_job {
    const dn_model *m;
    const dn_dataset *ds;
    const dn_train_config *cfg;
    dn_scratch *scratch;    /* one per thread */
    const uint32_t *perm;   /* (n_train) this epoch's order */
    size_t start;           /* first position of the batch in perm */
    int bs;                 /* images in this batch */
    int chunk;              /* images per chunk (dn_train_chunk) */
    int epoch;              /* 0-based */
    float **grads;          /* (chunks) each (n_params) */
    double *chunk_loss;     /* (chunks) summed loss of each chunk */
    atomic_int next;
    atomic_int failed;
} chunk_job;

/* The inputs, labels and dropout keys of images [lo, lo + B) of the batch
 * into s. */
static void load_chunk(const chunk_job *j, dn_scratch *s, int lo, int B)
{
    const dn_dataset *ds = j->ds;
    const dn_train_config *c = j->cfg;
    size_t plane = (size_t)ds->rows * ds->cols;
    for (int b = 0; b < B; b++) {
        uint32_t i = j->perm[j->start + (size_t)(lo + b)];
        float *x = s->x + (size_t)b * plane; // (rows, cols)
        if (c->augment)
            dn_augment_image(ds->images + (size_t)i * plane, (int)ds->rows, (int)ds->cols,
                             dn_key(c->seed, DN_STREAM_AUGMENT, (uint64_t)j->epoch, i),
                             ds->mean, ds->std, x);
        else
            dn_dataset_image(ds, i, x);
        s->labels[b] = ds->labels[i];
        s->keys[b] = dn_key(c->seed, DN_STREAM_DROPOUT, (uint64_t)j->epoch, i);
    }
}

int dn_train_chunk(const dn_model *m)
{
    return m && m->n_params > DN_TRAIN_CHUNK_PARAMS ? 2 * DN_TRAIN_CHUNK : DN_TRAIN_CHUNK;
}

static void train_chunks(void *ctx, int tid)
{
    chunk_job *j = ctx;
    dn_scratch *s = &j->scratch[tid];
    const int chunk = j->chunk;
    int nchunks = (j->bs + chunk - 1) / chunk;
    float scale = 1.0f / (float)j->bs;
    for (;;) {
        int ch = atomic_fetch_add(&j->next, 1);
        if (ch >= nchunks)
            break;
        int lo = ch * chunk;
        int B = j->bs - lo < chunk ? j->bs - lo : chunk;
        load_chunk(j, s, lo, B);
        if (!dn_model_forward(j->m, s->work, s->x, B, DN_MODE_TRAIN, s->keys)) {
            atomic_store(&j->failed, 1);
            continue;
        }
        j->chunk_loss[ch] = dn_model_loss(j->m, s->work, s->labels, B) * B;
        dn_model_backward(j->m, s->work, s->labels, B, scale, j->grads[ch]);
    }
}

/* The sum of the chunk gradients and the optimizer step, each thread on its
 * own slice of the parameters. Every element sees the same operations in
 * the same order (chunks 0, 1, 2, ... then the update) however the slices
 * fall, so the weights do not depend on the number of threads. */
typedef struct update_job {
    dn_optim *optim;
    float *params;      /* (n) */
    float **grads;      /* (used) each (n); the sum goes into grads[0] */
    int used;
    size_t n;
    double lr;
    int threads;
    atomic_int nonfinite;   /* a slice holds NaN or Inf after the step */
} update_job;

static void update_slices(void *ctx, int tid)
{
    update_job *u = ctx;
    /* Slices of whole 64-byte lines, so threads never share a cache line. */
    size_t per = (u->n + (size_t)u->threads - 1) / (size_t)u->threads;
    per = (per + 15) & ~(size_t)15;
    size_t lo = per * (size_t)tid, hi = lo + per < u->n ? lo + per : u->n;
    /* A block at a time (8 kB of each buffer), so that the sum, the step
     * and the check find it in the L1 cache instead of each sweeping the
     * whole slice (a batch's chunk gradients fill most of the L2 cache). */
    const size_t blk = 2048;
    for (size_t b = lo; b < hi; b += blk) {
        size_t n = hi - b < blk ? hi - b : blk;
        for (int c = 1; c < u->used; c++)
            dn_add_floats(u->grads[0] + b, u->grads[c] + b, n);
        dn_optim_step_range(u->optim, u->params, u->grads[0], u->lr, b, b + n);
        /* A NaN that a ReLU later maps to 0 leaves the loss finite, so the
         * loss alone does not show divergence. */
        if (!dn_floats_finite(u->params + b, n))
            atomic_store(&u->nonfinite, 1);
    }
}

/* The name of parameter i, e.g. "fc1.weight[123]". */
static void param_name(const dn_model *m, size_t i, char *buf, size_t size)
{
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        if (L->w_len && i >= L->w_off && i - L->w_off < L->w_len) {
            snprintf(buf, size, "%s.weight[%zu]", L->name, i - L->w_off);
            return;
        }
        if (L->b_len && i >= L->b_off && i - L->b_off < L->b_len) {
            snprintf(buf, size, "%s.bias[%zu]", L->name, i - L->b_off);
            return;
        }
    }
    snprintf(buf, size, "parameter %zu", i);
}

/* The error for parameters that the step of batch b of epoch e made
 * non-finite: how many, the first, and the likely cause. */
static dn_status diverged(const dn_model *m, const dn_optim_config *o, int e, long b,
                          long batches, dn_error *err)
{
    size_t count = 0, first = 0;
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i]) && count++ == 0)
            first = i;
    char name[64];
    param_name(m, first, name, sizeof name);
    int eps0 = o->kind != DN_OPTIM_SGD && o->eps == 0;
    return dn_fail(err, DN_ERR_NUMERIC, "epoch %d, batch %ld of %ld: training diverged: the "
                   "optimizer step made %zu of %zu parameters NaN or infinite (first %s); %s",
                   e + 1, b + 1, batches, count, m->n_params, name,
                   eps0 ? "eps is 0, so a parameter whose gradient is 0 gets 0/0; use eps > 0"
                        : "try a lower learning rate");
}

static void shuffle(uint32_t *perm, size_t n, uint64_t seed, int epoch)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    dn_rng r;
    dn_rng_seed(&r, dn_key(seed, DN_STREAM_SHUFFLE, (uint64_t)epoch, 0));
    for (size_t i = n - 1; i > 0; i--) {
        size_t k = dn_rng_below(&r, (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[k];
        perm[k] = t;
    }
}

/* ------------------------------------------------------------------------ */
/* The run                                                                  */
/* ------------------------------------------------------------------------ */

/* A training run: what it trains on, what it owns (freed in one place) and
 * where it stands. */
typedef struct trainer {
    dn_model *m;
    const dn_dataset *train;
    const dn_train_config *cfg;
    size_t n_train;         /* training images: [0, n_train) of train */
    long batches;           /* per epoch */
    const dn_dataset *eval_ds; /* evaluated on [eval_first, + n_eval) */
    size_t eval_first, n_eval;
    const char *split;      /* "val", "test" or NULL */

    dn_pool pool;
    dn_scratch *scratch;    /* (n_scratch), one per thread */
    int n_scratch;
    dn_evaluator eval;
    dn_optim optim;
    uint32_t *perm;         /* (n_train) */
    float *grad_block;      /* (chunks, stride) */
    float **grads;          /* (chunks) pointers into grad_block */
    double *chunk_loss;     /* (chunks) */
    dn_file_extras *extras; /* checkpoint being written */
    char *recipe;

    dn_train_pos pos;
    double t0;              /* start of this epoch (this process) */
    size_t images_here;     /* trained in this epoch by this process */
    dn_train_progress p;    /* what the callback sees */
} trainer;

static void trainer_free(trainer *t)
{
    dn_pool_stop(&t->pool);
    dn_evaluator_free(&t->eval);
    dn_scratch_free(t->scratch, t->n_scratch);
    dn_optim_free(&t->optim);
    free(t->perm);
    dn_free(t->grad_block);
    free(t->grads);
    free(t->chunk_loss);
    free(t->extras);
    free(t->recipe);
}

static dn_status check_config(const dn_train_config *c, const dn_dataset *train, dn_error *err)
{
    if (c->epochs < 0)
        return dn_fail(err, DN_ERR_ARG, "epochs must be >= 0, got %d", c->epochs);
    if (train->n > UINT32_MAX)
        return dn_fail(err, DN_ERR_ARG, "%zu training images are more than supported", train->n);
    if (c->val >= train->n)
        return dn_fail(err, DN_ERR_ARG, "cannot hold out %zu of %zu training images for "
                       "validation", c->val, train->n);
    return dn_recipe_check(c, err);
}

/* What the run trains and evaluates on. Training images are [0, n_train);
 * validation ones the last val. */
static void plan(trainer *t, dn_model *m, const dn_dataset *train, const dn_dataset *test,
                 const dn_train_config *cfg)
{
    t->m = m;
    t->train = train;
    t->cfg = cfg;
    t->n_train = train->n - cfg->val;
    if (cfg->limit && cfg->limit < t->n_train)
        t->n_train = cfg->limit;
    t->batches = (long)((t->n_train + (size_t)cfg->batch - 1) / (size_t)cfg->batch);
    t->eval_ds = cfg->val ? train : test;
    t->eval_first = cfg->val ? train->n - cfg->val : 0;
    t->n_eval = cfg->val ? cfg->val : test ? test->n : 0;
    t->split = cfg->val ? "val" : test ? "test" : NULL;
}

/* Allocates everything the run needs, restores a checkpoint's state and
 * starts the threads. On failure t holds what trainer_free frees. */
static dn_status trainer_setup(trainer *t, const dn_file_extras *resume, dn_error *err)
{
    const dn_train_config *cfg = t->cfg;
    const dn_model *m = t->m;
    int chunk = dn_train_chunk(m);
    int nchunks = (cfg->batch + chunk - 1) / chunk;
    int threads = dn_pool_threads(cfg->threads);
    t->recipe = dn_recipe_json(cfg);
    t->n_scratch = threads;
    t->scratch = dn_scratch_new(m, threads, EVAL_CHUNK > chunk ? EVAL_CHUNK : chunk,
                                cfg->reference);
    t->perm = malloc(t->n_train * sizeof *t->perm);
    size_t stride = (m->n_params + 15) & ~(size_t)15, gtotal = 0;
    if (dn_mul_size(stride, (size_t)nchunks, &gtotal))
        t->grad_block = dn_alloc_floats(gtotal);
    t->grads = calloc((size_t)nchunks, sizeof *t->grads);
    t->chunk_loss = calloc((size_t)nchunks, sizeof *t->chunk_loss);
    t->extras = calloc(1, sizeof *t->extras);
    if (!t->recipe || !t->scratch || !t->perm || !t->grad_block || !t->grads ||
        !t->chunk_loss || !t->extras)
        return dn_fail(err, DN_ERR_NOMEM, "out of memory setting up training (%d threads, "
                       "batch %d, %zu parameters)", threads, cfg->batch, m->n_params);
    for (int c = 0; c < nchunks; c++)
        t->grads[c] = t->grad_block + (size_t)c * stride;
    dn_status st = dn_evaluator_init(&t->eval, &t->pool, t->scratch, EVAL_CHUNK, t->n_eval, err);
    if (!st)
        st = dn_optim_init(&t->optim, &cfg->optim, m->n_params, err);
    if (!st && resume)
        st = dn_checkpoint_restore(resume, t->recipe, &t->optim, &t->pos, t->n_train,
                                   t->batches, err);
    if (!st)
        st = dn_pool_start(&t->pool, threads, err);
    return st;
}

static dn_status save_checkpoint(trainer *t, dn_error *err)
{
    return dn_checkpoint_save(t->m, t->cfg, t->recipe, &t->optim, &t->pos, t->n_train,
                              t->extras, err);
}

/* The chunks of batch b of epoch e, then the gradient sum and the
 * optimizer step; *lr gets the batch's learning rate. */
static dn_status train_batch(trainer *t, int e, long b, double *lr, dn_error *err)
{
    const dn_train_config *cfg = t->cfg;
    size_t start = (size_t)b * (size_t)cfg->batch;
    int bs = (int)(t->n_train - start < (size_t)cfg->batch ? t->n_train - start
                                                            : (size_t)cfg->batch);
    chunk_job j;
    memset(&j, 0, sizeof j);
    j.m = t->m;
    j.ds = t->train;
    j.cfg = cfg;
    j.scratch = t->scratch;
    j.perm = t->perm;
    j.start = start;
    j.bs = bs;
    j.chunk = dn_train_chunk(t->m);
    j.epoch = e;
    j.grads = t->grads;
    j.chunk_loss = t->chunk_loss;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    dn_pool_run(&t->pool, train_chunks, &j);
    if (atomic_load(&j.failed))
        return dn_fail(err, DN_ERR_SHAPE, "epoch %d, batch %ld: the forward pass refused the "
                       "batch", e + 1, b + 1);
    /* Chunk order, whatever thread computed which chunk. */
    int used = (bs + j.chunk - 1) / j.chunk;
    double loss = t->chunk_loss[0];
    for (int c = 1; c < used; c++)
        loss += t->chunk_loss[c];
    *lr = dn_sched_lr(&cfg->sched, cfg->optim.lr, e, cfg->epochs, b, t->batches);
    if (!isfinite(loss))
        return dn_fail(err, DN_ERR_NUMERIC, "epoch %d, batch %ld of %ld: the loss is %g; "
                       "training diverged, try a lower learning rate (this one was %g)",
                       e + 1, b + 1, t->batches, loss / bs, *lr);
    update_job u = {&t->optim, t->m->params, t->grads, used, t->m->n_params, *lr, t->pool.n, 0};
    atomic_init(&u.nonfinite, 0);
    dn_pool_run(&t->pool, update_slices, &u);
    dn_optim_step_end(&t->optim);
    if (atomic_load(&u.nonfinite))
        return diverged(t->m, &cfg->optim, e, b, t->batches, err);
    t->pos.loss_sum += loss;
    t->pos.loss_count += bs;
    t->pos.epoch = e;
    t->pos.batch = b + 1;
    t->images_here += (size_t)bs;
    return DN_OK;
}

static void clock_progress(trainer *t)
{
    t->p.seconds = now_seconds() - t->t0;
    t->p.images_per_s = t->p.seconds > 0 ? (double)t->images_here / t->p.seconds : 0;
}

/* After batch b: tells the callback, and stops (with a checkpoint) when it
 * asks to, unless this was the epoch's last batch. */
static dn_status after_batch(trainer *t, int e, long b, double lr, dn_error *err)
{
    const dn_train_config *cfg = t->cfg;
    t->p.batch = b + 1;
    t->p.lr = lr;
    t->p.train_loss = t->pos.loss_sum / t->pos.loss_count;
    clock_progress(t);
    if (!cfg->progress || !cfg->progress(&t->p, cfg->user) || b + 1 >= t->batches)
        return DN_OK;
    if (cfg->checkpoint) {
        dn_status st = save_checkpoint(t, err);
        if (st)
            return st;
    }
    return dn_fail(err, DN_ERR_INTERRUPTED, "stopped in epoch %d after batch %ld of %ld%s%s",
                   e + 1, b + 1, t->batches, cfg->checkpoint ? "; checkpoint written to " : "",
                   cfg->checkpoint ? cfg->checkpoint : "");
}

/* The batches of epoch e still to do; *lr gets the last one's rate. */
static dn_status run_batches(trainer *t, int e, double *lr, dn_error *err)
{
    t->t0 = now_seconds();
    t->images_here = 0;
    shuffle(t->perm, t->n_train, t->cfg->seed, e);
    memset(&t->p, 0, sizeof t->p);
    t->p.epoch = e + 1;
    t->p.epochs = t->cfg->epochs;
    t->p.batches = t->batches;
    t->p.images = t->n_train;
    dn_status st = DN_OK;
    for (long b = e == t->pos.epoch ? t->pos.batch : 0; b < t->batches && !st; b++) {
        double batch_lr = *lr;
        st = train_batch(t, e, b, &batch_lr, err);
        if (!st) {
            *lr = batch_lr;
            st = after_batch(t, e, b, batch_lr, err);
        }
    }
    return st;
}

/* End of epoch e: evaluate, checkpoint, tell the callback. */
static dn_status end_epoch(trainer *t, int e, double lr, dn_error *err)
{
    const dn_train_config *cfg = t->cfg;
    dn_train_progress *p = &t->p;
    clock_progress(t);
    p->lr = lr;
    p->batch = t->batches;
    p->train_loss = t->pos.loss_count > 0 ? t->pos.loss_sum / t->pos.loss_count : NAN;
    p->epoch_done = 1;
    p->split = t->split;
    p->eval_loss = p->eval_acc = p->eval_acc_se = NAN;
    dn_status st = DN_OK;
    if (t->split && t->n_eval) {
        size_t correct = 0;
        st = dn_evaluator_run(&t->eval, t->m, t->eval_ds, t->eval_first, t->n_eval, NULL,
                              &p->eval_loss, &correct, err);
        if (st)
            return st;
        p->eval_n = t->n_eval;
        p->eval_acc = dn_accuracy(correct, t->n_eval, &p->eval_acc_se);
    }
    t->pos = (dn_train_pos){e + 1, 0, 0, 0};
    /* The callback hears of the epoch before its checkpoint is written, so
     * that what it records can go into the same write (dn_train_saver). */
    p->seconds = now_seconds() - t->t0;
    int stop = cfg->progress && cfg->progress(p, cfg->user);
    if (cfg->checkpoint && (st = save_checkpoint(t, err)) != DN_OK)
        return st;
    if (stop && e + 1 < cfg->epochs)
        return dn_fail(err, DN_ERR_INTERRUPTED, "stopped after epoch %d of %d%s%s", e + 1,
                       cfg->epochs, cfg->checkpoint ? "; checkpoint written to " : "",
                       cfg->checkpoint ? cfg->checkpoint : "");
    return DN_OK;
}

dn_status dn_train(dn_model *m, const dn_dataset *train, const dn_dataset *test,
                   const dn_train_config *cfg, const dn_file_extras *resume, dn_error *err)
{
    if (!m || !train || !cfg)
        return dn_fail(err, DN_ERR_ARG, "dn_train: NULL model, dataset or config");
    dn_status st = check_config(cfg, train, err);
    if (!st)
        st = dn_check_fit(m, train, "training", err);
    if (!st && test && !cfg->val)
        st = dn_check_fit(m, test, "test", err);
    if (st)
        return st;

    /* The model file records what the inputs were normalised with. */
    m->mean = train->mean;
    m->std = train->std;
    snprintf(m->dataset, sizeof m->dataset, "%s", train->name);

    trainer t;
    memset(&t, 0, sizeof t);
    plan(&t, m, train, test, cfg);
    st = trainer_setup(&t, resume, err);
    for (int e = t.pos.epoch; e < cfg->epochs && !st; e++) {
        double lr = cfg->optim.lr;
        st = run_batches(&t, e, &lr, err);
        if (!st)
            st = end_epoch(&t, e, lr, err);
    }
    /* Zero epochs still leave a model file (the initial weights) that a
     * later run can resume. */
    if (!st && !resume && cfg->epochs == 0 && cfg->checkpoint)
        st = save_checkpoint(&t, err);
    trainer_free(&t);
    return st;
}
