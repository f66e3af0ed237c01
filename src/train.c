/*
 * train.c - the trainer and the evaluator: a persistent thread pool,
 * deterministic mini-batch gradient descent, checkpoints and exact resume.
 *
 * Determinism. Every random draw is keyed by (seed, purpose, epoch, image
 * index), never by thread or batch position: epoch e's order is a
 * Fisher-Yates permutation from dn_key(seed, SHUFFLE, e, 0), image i's
 * dropout masks come from dn_key(seed, DROPOUT, e, i) and its augmentation
 * from dn_key(seed, AUGMENT, e, i). A batch is cut into fixed chunks of
 * DN_TRAIN_CHUNK samples; each chunk's gradient (scaled by 1/batch) goes to
 * its own buffer, whichever thread computes it, and the buffers are summed
 * in chunk order. Float addition is then done in the same order for any
 * thread count, so the weights are bit-identical for 1 or N threads.
 *
 * Exact resume. A checkpoint is the model file plus the optimizer state
 * tensors, the step count and the position (epochs done, batches done in
 * the next epoch). Since nothing else carries over between batches, a run
 * resumed from it repeats the uninterrupted run's arithmetic exactly. A stop
 * requested through the progress callback finishes the current batch and
 * writes a mid-epoch checkpoint, so at most one batch of work is lost.
 */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Samples per evaluation chunk inside the trainer. */
#define EVAL_CHUNK 32
#define MAX_THREADS 256

/* ------------------------------------------------------------------------ */
/* Thread pool                                                              */
/* ------------------------------------------------------------------------ */

/* n threads including the caller: n - 1 workers wait for a job, run it
 * with their thread id and report back. Created once per training run so
 * that no thread is created per batch. */
typedef struct pool {
    int n;
    int started;            /* workers created */
    pthread_t *threads;     /* (n - 1) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;      /* job generation; workers run each once */
    int busy;               /* workers still in the current job */
    int quit;
    void (*fn)(void *ctx, int tid);
    void *ctx;
} pool;

typedef struct pool_arg {
    pool *p;
    int tid;
} pool_arg;

static void *pool_worker(void *arg)
{
    pool *p = ((pool_arg *)arg)->p;
    int tid = ((pool_arg *)arg)->tid;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        void (*fn)(void *, int) = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, tid);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_stop(pool *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++)
            pthread_join(p->threads[i], NULL);
    }
    if (p->n > 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
    }
    free(p->threads);
    memset(p, 0, sizeof *p);
}

static dn_status pool_start(pool *p, int n, dn_error *err)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n > 1) {
        p->threads = calloc((size_t)n - 1, sizeof *p->threads);
        if (!p->threads) {
            pool_stop(p);
            return dn_fail(err, DN_ERR_NOMEM, "out of memory for %d threads", n);
        }
    }
    for (int i = 1; i < n; i++) {
        pool_arg *a = malloc(sizeof *a);
        if (a) {
            a->p = p;
            a->tid = i;
        }
        /* The worker owns and frees a once it runs. */
        if (!a || pthread_create(&p->threads[i - 1], NULL, pool_worker, a) != 0) {
            free(a);
            pool_stop(p);
            return dn_fail(err, DN_ERR_NOMEM, "cannot start thread %d of %d", i + 1, n);
        }
        p->started++;
    }
    return DN_OK;
}

/* Runs fn(ctx, tid) on every thread (the caller is tid 0) and returns when
 * all are done. */
static void pool_run(pool *p, void (*fn)(void *, int), void *ctx)
{
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->ctx = ctx;
        p->busy = p->n - 1;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0);
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->busy > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

static int resolve_threads(int threads)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    return threads > MAX_THREADS ? MAX_THREADS : threads;
}

/* ------------------------------------------------------------------------ */
/* Per-thread buffers                                                       */
/* ------------------------------------------------------------------------ */

typedef struct lane {
    dn_work *work;
    float *x;               /* (chunk, rows*cols) inputs */
    uint8_t *labels;        /* (chunk) */
    uint64_t *keys;         /* (chunk) dropout keys */
} lane;

static void lanes_free(lane *lanes, int n)
{
    for (int t = 0; lanes && t < n; t++) {
        dn_work_free(lanes[t].work);
        dn_free(lanes[t].x);
        dn_free(lanes[t].labels);
        dn_free(lanes[t].keys);
    }
    free(lanes);
}

static lane *lanes_new(const dn_model *m, int n, int chunk)
{
    lane *lanes = calloc((size_t)n, sizeof *lanes);
    if (!lanes)
        return NULL;
    size_t plane = (size_t)m->input.c * m->input.h * m->input.w;
    for (int t = 0; t < n; t++) {
        lanes[t].work = dn_work_new(m, chunk);
        lanes[t].x = dn_alloc_floats(plane * (size_t)chunk);
        lanes[t].labels = dn_alloc_bytes((size_t)chunk);
        lanes[t].keys = dn_alloc_bytes((size_t)chunk * sizeof(uint64_t));
        if (!lanes[t].work || !lanes[t].x || !lanes[t].labels || !lanes[t].keys) {
            lanes_free(lanes, n);
            return NULL;
        }
    }
    return lanes;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                               */
/* ------------------------------------------------------------------------ */

typedef struct eval_job {
    const dn_model *m;
    const dn_dataset *ds;
    lane *lanes;
    size_t first, count;
    int chunk;              /* samples per chunk */
    atomic_size_t next;     /* next chunk to take */
    atomic_int failed;
    double *nll;            /* (count) per-image loss */
    uint8_t *hit;           /* (count) 1 if the arg-max is the label */
    float *logp;            /* (count, classes) or NULL */
} eval_job;

static void eval_chunks(void *ctx, int tid)
{
    eval_job *j = ctx;
    lane *ln = &j->lanes[tid];
    const dn_dataset *ds = j->ds;
    int classes = dn_model_classes(j->m);
    size_t plane = (size_t)ds->rows * ds->cols;
    size_t nchunks = (j->count + (size_t)j->chunk - 1) / (size_t)j->chunk;
    for (;;) {
        size_t c = atomic_fetch_add(&j->next, 1);
        if (c >= nchunks)
            break;
        size_t lo = c * (size_t)j->chunk;
        int B = (int)(j->count - lo < (size_t)j->chunk ? j->count - lo : (size_t)j->chunk);
        for (int b = 0; b < B; b++)
            dn_dataset_image(ds, j->first + lo + (size_t)b, ln->x + (size_t)b * plane);
        const float *out = dn_model_forward(j->m, ln->work, ln->x, B, DN_MODE_EVAL, NULL);
        if (!out) { // (B, classes)
            atomic_store(&j->failed, 1);
            continue;
        }
        for (int b = 0; b < B; b++) {
            const float *row = out + (size_t)b * (size_t)classes;
            size_t i = lo + (size_t)b;
            unsigned label = ds->labels[j->first + i];
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (row[k] > row[best])
                    best = k;
            j->nll[i] = label < (unsigned)classes ? -(double)row[label] : NAN;
            j->hit[i] = (unsigned)best == label;
            if (j->logp)
                memcpy(j->logp + i * (size_t)classes, row, (size_t)classes * sizeof *row);
        }
    }
}

/* Evaluates with an existing pool and lanes; nll and hit are (count)
 * scratch buffers. Sums in image order, so the result is the same for any
 * thread count. */
static dn_status eval_run(pool *p, lane *lanes, int chunk, const dn_model *m,
                          const dn_dataset *ds, size_t first, size_t count, double *nll,
                          uint8_t *hit, float *logp, double *loss, size_t *correct, dn_error *err)
{
    eval_job j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.ds = ds;
    j.lanes = lanes;
    j.first = first;
    j.count = count;
    j.chunk = chunk;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    j.nll = nll;
    j.hit = hit;
    j.logp = logp;
    pool_run(p, eval_chunks, &j);
    if (atomic_load(&j.failed))
        return dn_fail(err, DN_ERR_SHAPE, "evaluation: the model's forward pass refused a "
                       "batch of %d images of %ux%u (does the model fit the dataset?)",
                       chunk, ds->rows, ds->cols);
    double sum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < count; i++) {
        sum += nll[i];
        hits += hit[i];
    }
    if (loss)
        *loss = count ? sum / (double)count : NAN;
    if (correct)
        *correct = hits;
    return DN_OK;
}

static dn_status check_fit(const dn_model *m, const dn_dataset *ds, const char *what,
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
    dn_status st = check_fit(m, ds, ds->name, err);
    if (st)
        return st;
    if (count == 0) {
        if (loss)
            *loss = NAN;
        if (correct)
            *correct = 0;
        return DN_OK;
    }
    int chunk = batch > 0 ? (batch > 4096 ? 4096 : batch) : 64;
    int n = resolve_threads(threads);
    size_t nchunks = (count + (size_t)chunk - 1) / (size_t)chunk;
    if ((size_t)n > nchunks)
        n = (int)nchunks;
    double *nll = malloc(count * sizeof *nll);
    uint8_t *hit = malloc(count);
    lane *lanes = lanes_new(m, n, chunk);
    pool p;
    memset(&p, 0, sizeof p);
    if (!nll || !hit || !lanes)
        st = dn_fail(err, DN_ERR_NOMEM, "out of memory evaluating %zu images", count);
    else
        st = pool_start(&p, n, err);
    if (!st)
        st = eval_run(&p, lanes, chunk, m, ds, first, count, nll, hit, logp, loss, correct, err);
    if (p.n)
        pool_stop(&p);
    lanes_free(lanes, n);
    free(nll);
    free(hit);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Recipe and checkpoints                                                   */
/* ------------------------------------------------------------------------ */

void dn_train_defaults(dn_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 14;
    c->batch = 64;
    c->seed = 1;
    c->threads = 0;
    dn_optim_defaults(&c->optim, DN_OPTIM_ADADELTA);
    dn_sched_defaults(&c->sched, DN_SCHED_STEP);
}

/* The recipe as one JSON object: everything that decides the arithmetic
 * (the total epoch count is kept apart, since a resume may extend it).
 * Reals are written with 17 significant digits, so they read back exactly.
 * Returns a malloc'd string or NULL. */
static char *recipe_json(const dn_train_config *c)
{
    const dn_optim_config *o = &c->optim;
    const dn_sched_config *s = &c->sched;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    json_t *j = json_pack(
        "{s:i, s:s, s:s, s:f, s:f, s:f, s:f, s:b, s:f, s:f, s:f, s:f, s:b,"
        " s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:b, s:I, s:I}",
        "batch", c->batch, "seed", seed, "optim", dn_optim_name(o->kind), "lr", o->lr,
        "weight_decay", o->weight_decay, "momentum", o->momentum, "dampening", o->dampening,
        "nesterov", o->nesterov, "rho", o->rho, "eps", o->eps, "beta1", o->beta1, "beta2",
        o->beta2, "amsgrad", o->amsgrad, "schedule", dn_sched_name(s->kind), "step_size",
        s->step_size, "gamma", s->gamma, "eta_min", s->eta_min, "pct_start", s->pct_start,
        "div_factor", s->div_factor, "final_div_factor", s->final_div_factor, "augment",
        c->augment, "val", (json_int_t)c->val, "limit", (json_int_t)c->limit);
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(j);
    return text;
}

static int meta_add(dn_file_extras *x, const char *key, const char *fmt, ...)
    DN_PRINTF(3, 4);

static int meta_add(dn_file_extras *x, const char *key, const char *fmt, ...)
{
    if (x->n_meta >= DN_FILE_MAX_META)
        return 0;
    snprintf(x->meta[x->n_meta].key, sizeof x->meta[x->n_meta].key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(x->meta[x->n_meta].value, sizeof x->meta[x->n_meta].value, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof x->meta[x->n_meta].value)
        return 0;
    x->n_meta++;
    return 1;
}

/* Where training stands; what a checkpoint records besides the weights and
 * the optimizer state. */
typedef struct train_pos {
    int epoch;              /* epochs completed */
    long batch;             /* batches completed in epoch `epoch` */
    double loss_sum;        /* summed loss of those batches' images */
    double loss_count;      /* their number of images */
} train_pos;

static dn_status save_checkpoint(const dn_model *m, const dn_train_config *c,
                                 const char *recipe, const dn_optim *o, const train_pos *pos,
                                 size_t n_train, dn_file_extras *x, dn_error *err)
{
    memset(x, 0, sizeof *x);
    for (int i = 0; i < o->n_state; i++) {
        snprintf(x->tensors[i].name, sizeof x->tensors[i].name, "optim.%s", o->state_name[i]);
        x->tensors[i].data = o->state[i];
        x->tensors[i].len = o->n;
    }
    x->n_tensors = o->n_state;
    int ok = meta_add(x, "train.format", "1") &&
             meta_add(x, "train.epoch", "%d", pos->epoch) &&
             meta_add(x, "train.batch", "%ld", pos->batch) &&
             meta_add(x, "train.epochs", "%d", c->epochs) &&
             meta_add(x, "train.steps", "%lld", (long long)o->steps) &&
             meta_add(x, "train.loss_sum", "%.17g", pos->loss_sum) &&
             meta_add(x, "train.loss_count", "%.17g", pos->loss_count) &&
             meta_add(x, "train.images", "%zu", n_train) &&
             meta_add(x, "train.optim", "%s", dn_optim_name(c->optim.kind)) &&
             meta_add(x, "train.schedule", "%s", dn_sched_name(c->sched.kind)) &&
             meta_add(x, "train.config", "%s", recipe);
    if (!ok)
        return dn_fail(err, DN_ERR_ARG, "training metadata does not fit in a checkpoint");
    return dn_model_save(m, c->checkpoint, x, err);
}

/* Largest epoch count a checkpoint may record, so that it fits an int
 * with room for the steps arithmetic. */
#define MAX_EPOCHS 1000000

/* Integer metadata `key` of a checkpoint, in 0..max; a missing, malformed
 * or out-of-range value is a bad file (DN_ERR_FORMAT naming the key). */
static dn_status meta_count(const dn_file_extras *x, const char *key, long long max,
                            long long *out, dn_error *err)
{
    const char *v = dn_file_extras_get(x, key);
    if (!v)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint has no \"%s\" metadata (was it "
                       "written by 'digitnet train'?)", key);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0 || n > max)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint metadata \"%s\" is \"%.40s\", expected "
                       "an integer in 0..%lld", key, v, max);
    *out = n;
    return DN_OK;
}

static int meta_double(const dn_file_extras *x, const char *key, double *out)
{
    const char *v = dn_file_extras_get(x, key);
    if (!v || !*v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (*end || !isfinite(d))
        return 0;
    *out = d;
    return 1;
}

static int json_num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return 1;
}

static int json_flag(json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        return 0;
    *out = json_is_true(v);
    return 1;
}

/* The recipe's own limits, whoever set it (defined with check_config). */
static dn_status check_recipe(const dn_train_config *c, dn_error *err);

dn_status dn_train_config_from_checkpoint(const dn_file_extras *x, dn_train_config *c,
                                          int *epochs_done, dn_error *err)
{
    const char *text = x ? dn_file_extras_get(x, "train.config") : NULL;
    long long epoch;
    if (!text)
        return dn_fail(err, DN_ERR_FORMAT, "not a training checkpoint: no train.config and "
                       "train.epoch metadata (was it written by 'digitnet train'?)");
    dn_status st = meta_count(x, "train.epoch", MAX_EPOCHS, &epoch, err);
    if (st)
        return st;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config is not a JSON object: %s",
                       jerr.text);
    }
    dn_train_config r = *c;
    double batch, step_size, val, limit;
    const struct {
        const char *key;
        double *num;        /* a number, or */
        int *flag;          /* a boolean */
        double max;         /* numbers: at most this (and >= 0 when max > 0) */
    } fields[] = {
        {"batch", &batch, NULL, 1e6},
        {"lr", &r.optim.lr, NULL, 0},
        {"weight_decay", &r.optim.weight_decay, NULL, 0},
        {"momentum", &r.optim.momentum, NULL, 0},
        {"dampening", &r.optim.dampening, NULL, 0},
        {"nesterov", NULL, &r.optim.nesterov, 0},
        {"rho", &r.optim.rho, NULL, 0},
        {"eps", &r.optim.eps, NULL, 0},
        {"beta1", &r.optim.beta1, NULL, 0},
        {"beta2", &r.optim.beta2, NULL, 0},
        {"amsgrad", NULL, &r.optim.amsgrad, 0},
        {"step_size", &step_size, NULL, 1e9},
        {"gamma", &r.sched.gamma, NULL, 0},
        {"eta_min", &r.sched.eta_min, NULL, 0},
        {"pct_start", &r.sched.pct_start, NULL, 0},
        {"div_factor", &r.sched.div_factor, NULL, 0},
        {"final_div_factor", &r.sched.final_div_factor, NULL, 0},
        {"augment", NULL, &r.augment, 0},
        {"val", &val, NULL, UINT32_MAX},
        {"limit", &limit, NULL, UINT32_MAX},
    };
    const char *bad = NULL;
    const char *oname = json_string_value(json_object_get(j, "optim"));
    const char *sname = json_string_value(json_object_get(j, "schedule"));
    const char *seed = json_string_value(json_object_get(j, "seed"));
    char *end = NULL;
    if (!oname || dn_optim_parse(oname, &r.optim.kind, NULL))
        bad = "optim";
    else if (!sname || dn_sched_parse(sname, &r.sched.kind, NULL))
        bad = "schedule";
    else if (!seed || (r.seed = strtoull(seed, &end, 10), *end))
        bad = "seed";
    for (size_t i = 0; !bad && i < sizeof fields / sizeof fields[0]; i++) {
        int ok = fields[i].num ? json_num(j, fields[i].key, fields[i].num)
                               : json_flag(j, fields[i].key, fields[i].flag);
        if (ok && fields[i].max > 0)
            ok = *fields[i].num >= 0 && *fields[i].num <= fields[i].max;
        if (!ok)
            bad = fields[i].key;
    }
    json_decref(j);
    if (bad)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config: \"%s\" is missing or "
                       "out of range: %.200s", bad, text);
    r.batch = (int)batch;
    r.sched.step_size = (int)step_size;
    r.val = (size_t)val;
    r.limit = (size_t)limit;
    /* Values the trainer would refuse are the file's fault, not the
     * caller's; and what was read must write back to the same text, or
     * resuming would find "a different recipe" that nobody asked for. */
    dn_error why = {0};
    if (check_recipe(&r, &why))
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config has a bad value: %s",
                       why.msg);
    char *again = recipe_json(&r);
    int same = again && !strcmp(again, text);
    free(again);
    if (!same)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config is not as digitnet "
                       "writes it (edited or corrupt): %.200s", text);
    *c = r;
    if (epochs_done)
        *epochs_done = (int)epoch;
    return DN_OK;
}

/* Loads the optimizer state and position a checkpoint recorded, checking
 * that they belong to this recipe and this model. */
static dn_status restore(const dn_file_extras *x, const char *recipe, dn_optim *o,
                         train_pos *pos, size_t n_train, long batches, dn_error *err)
{
    const char *saved = dn_file_extras_get(x, "train.config");
    long long epoch, batch, steps, images;
    dn_status st = meta_count(x, "train.epoch", MAX_EPOCHS, &epoch, err);
    if (!st)
        st = meta_count(x, "train.batch", INT32_MAX, &batch, err);
    if (!st)
        st = meta_count(x, "train.steps", INT64_MAX / 2, &steps, err);
    if (!st)
        st = meta_count(x, "train.images", UINT32_MAX, &images, err);
    if (st)
        return st;
    if (!saved || !meta_double(x, "train.loss_sum", &pos->loss_sum) ||
        !meta_double(x, "train.loss_count", &pos->loss_count))
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint: training metadata is missing or "
                       "malformed (train.config, train.loss_sum, train.loss_count)");
    if (strcmp(saved, recipe) != 0)
        return dn_fail(err, DN_ERR_ARG, "the training recipe differs from the checkpoint's "
                       "(%.300s); resume with the checkpoint's settings", saved);
    if ((size_t)images != n_train)
        return dn_fail(err, DN_ERR_ARG, "the checkpoint was trained on %lld images, this run "
                       "has %zu (another dataset, --limit or --val?)", images, n_train);
    if (batch >= batches || steps != epoch * batches + batch)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint: position epoch %lld batch %lld with "
                       "%lld steps does not fit %ld batches per epoch", epoch, batch, steps,
                       batches);
    for (int i = 0; i < o->n_state; i++) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s", o->state_name[i]);
        int found = 0;
        for (int t = 0; t < x->n_tensors; t++) {
            if (strcmp(x->tensors[t].name, name) != 0)
                continue;
            if (x->tensors[t].len != o->n || !x->tensors[t].data)
                return dn_fail(err, DN_ERR_FORMAT, "checkpoint: %s has %zu values, the "
                               "model %zu parameters", name, x->tensors[t].len, o->n);
            memcpy(o->state[i], x->tensors[t].data, o->n * sizeof(float));
            found = 1;
        }
        if (!found)
            return dn_fail(err, DN_ERR_FORMAT, "checkpoint: optimizer state %s is missing",
                           name);
    }
    o->steps = steps;
    pos->epoch = (int)epoch;
    pos->batch = (long)batch;
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Training                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct train_job {
    const dn_model *m;
    const dn_dataset *ds;
    const dn_train_config *cfg;
    lane *lanes;
    const uint32_t *perm;   /* (n_train) this epoch's order */
    size_t start;           /* first position of the batch in perm */
    int bs;                 /* images in this batch */
    int epoch;              /* 0-based */
    float **grads;          /* (chunks) each (n_params) */
    double *chunk_loss;     /* (chunks) summed loss of each chunk */
    atomic_int next;
    atomic_int failed;
} train_job;

static void train_chunks(void *ctx, int tid)
{
    train_job *j = ctx;
    lane *ln = &j->lanes[tid];
    const dn_dataset *ds = j->ds;
    const dn_train_config *c = j->cfg;
    size_t plane = (size_t)ds->rows * ds->cols;
    int nchunks = (j->bs + DN_TRAIN_CHUNK - 1) / DN_TRAIN_CHUNK;
    float scale = 1.0f / (float)j->bs;
    for (;;) {
        int ch = atomic_fetch_add(&j->next, 1);
        if (ch >= nchunks)
            break;
        int lo = ch * DN_TRAIN_CHUNK;
        int B = j->bs - lo < DN_TRAIN_CHUNK ? j->bs - lo : DN_TRAIN_CHUNK;
        for (int b = 0; b < B; b++) {
            uint32_t i = j->perm[j->start + (size_t)(lo + b)];
            float *x = ln->x + (size_t)b * plane; // (rows, cols)
            if (c->augment)
                dn_augment_image(ds->images + (size_t)i * plane, (int)ds->rows, (int)ds->cols,
                                 dn_key(c->seed, DN_STREAM_AUGMENT, (uint64_t)j->epoch, i),
                                 ds->mean, ds->std, x);
            else
                dn_dataset_image(ds, i, x);
            ln->labels[b] = ds->labels[i];
            ln->keys[b] = dn_key(c->seed, DN_STREAM_DROPOUT, (uint64_t)j->epoch, i);
        }
        if (!dn_model_forward(j->m, ln->work, ln->x, B, DN_MODE_TRAIN, ln->keys)) {
            atomic_store(&j->failed, 1);
            continue;
        }
        j->chunk_loss[ch] = dn_model_loss(j->m, ln->work, ln->labels, B) * B;
        dn_model_backward(j->m, ln->work, ln->labels, B, scale, j->grads[ch]);
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
} update_job;

static void update_slices(void *ctx, int tid)
{
    update_job *u = ctx;
    /* Slices of whole 64-byte lines, so threads never share a cache line. */
    size_t per = (u->n + (size_t)u->threads - 1) / (size_t)u->threads;
    per = (per + 15) & ~(size_t)15;
    size_t lo = per * (size_t)tid, hi = lo + per < u->n ? lo + per : u->n;
    if (lo >= hi)
        return;
    for (int c = 1; c < u->used; c++)
        dn_add_floats(u->grads[0] + lo, u->grads[c] + lo, hi - lo);
    dn_optim_step_range(u->optim, u->params, u->grads[0], u->lr, lo, hi);
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

/* Everything a run allocates, freed in one place. */
typedef struct trainer {
    pool pool;
    lane *lanes;
    int n_lanes;
    dn_optim optim;
    uint32_t *perm;         /* (n_train) */
    float *grad_block;      /* (chunks, stride) */
    float **grads;          /* (chunks) pointers into grad_block */
    double *chunk_loss;     /* (chunks) */
    double *nll;            /* (n_eval) */
    uint8_t *hit;           /* (n_eval) */
    dn_file_extras *extras; /* checkpoint being written */
    char *recipe;
} trainer;

static void trainer_free(trainer *t)
{
    if (t->pool.n)
        pool_stop(&t->pool);
    lanes_free(t->lanes, t->n_lanes);
    dn_optim_free(&t->optim);
    free(t->perm);
    dn_free(t->grad_block);
    free(t->grads);
    free(t->chunk_loss);
    free(t->nll);
    free(t->hit);
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
    return check_recipe(c, err);
}

static dn_status check_recipe(const dn_train_config *c, dn_error *err)
{
    if (c->batch < 1 || c->batch > 1000000)
        return dn_fail(err, DN_ERR_ARG, "batch size must be in 1..1000000, got %d", c->batch);
    if (c->sched.kind == DN_SCHED_STEP && c->sched.step_size < 1)
        return dn_fail(err, DN_ERR_ARG, "step schedule: step size must be >= 1 epoch, got %d",
                       c->sched.step_size);
    if (!(c->sched.gamma > 0) || !isfinite(c->sched.gamma))
        return dn_fail(err, DN_ERR_ARG, "schedule gamma must be > 0, got %g", c->sched.gamma);
    if (c->sched.kind == DN_SCHED_ONECYCLE &&
        (!(c->sched.pct_start >= 0 && c->sched.pct_start <= 1) || !(c->sched.div_factor > 0) ||
         !(c->sched.final_div_factor > 0)))
        return dn_fail(err, DN_ERR_ARG, "one-cycle schedule: pct_start must be in [0, 1] and "
                       "the div factors > 0");
    return dn_optim_check(&c->optim, err);
}

dn_status dn_train(dn_model *m, const dn_dataset *train, const dn_dataset *test,
                   const dn_train_config *cfg, const dn_file_extras *resume, dn_error *err)
{
    if (!m || !train || !cfg)
        return dn_fail(err, DN_ERR_ARG, "dn_train: NULL model, dataset or config");
    dn_status st = check_config(cfg, train, err);
    if (!st)
        st = check_fit(m, train, "training", err);
    if (!st && test && !cfg->val)
        st = check_fit(m, test, "test", err);
    if (st)
        return st;

    /* Training images are [0, n_train); validation ones the last val. */
    size_t n_train = train->n - cfg->val;
    if (cfg->limit && cfg->limit < n_train)
        n_train = cfg->limit;
    const dn_dataset *eval_ds = cfg->val ? train : test;
    size_t eval_first = cfg->val ? train->n - cfg->val : 0;
    size_t n_eval = cfg->val ? cfg->val : test ? test->n : 0;
    const char *split = cfg->val ? "val" : test ? "test" : NULL;
    long batches = (long)((n_train + (size_t)cfg->batch - 1) / (size_t)cfg->batch);
    int nchunks = (cfg->batch + DN_TRAIN_CHUNK - 1) / DN_TRAIN_CHUNK;
    int threads = resolve_threads(cfg->threads);

    /* The model file records what the inputs were normalised with. */
    m->mean = train->mean;
    m->std = train->std;
    snprintf(m->dataset, sizeof m->dataset, "%s", train->name);

    trainer t;
    memset(&t, 0, sizeof t);
    t.recipe = recipe_json(cfg);
    t.n_lanes = threads;
    t.lanes = lanes_new(m, threads, EVAL_CHUNK > DN_TRAIN_CHUNK ? EVAL_CHUNK : DN_TRAIN_CHUNK);
    t.perm = malloc(n_train * sizeof *t.perm);
    size_t stride = (m->n_params + 15) & ~(size_t)15, gtotal = 0;
    if (dn_mul_size(stride, (size_t)nchunks, &gtotal))
        t.grad_block = dn_alloc_floats(gtotal);
    t.grads = calloc((size_t)nchunks, sizeof *t.grads);
    t.chunk_loss = calloc((size_t)nchunks, sizeof *t.chunk_loss);
    t.nll = malloc((n_eval ? n_eval : 1) * sizeof *t.nll);
    t.hit = malloc(n_eval ? n_eval : 1);
    t.extras = calloc(1, sizeof *t.extras);
    if (!t.recipe || !t.lanes || !t.perm || !t.grad_block || !t.grads || !t.chunk_loss ||
        !t.nll || !t.hit || !t.extras) {
        trainer_free(&t);
        return dn_fail(err, DN_ERR_NOMEM, "out of memory setting up training (%d threads, "
                       "batch %d, %zu parameters)", threads, cfg->batch, m->n_params);
    }
    for (int c = 0; c < nchunks; c++)
        t.grads[c] = t.grad_block + (size_t)c * stride;
    st = dn_optim_init(&t.optim, &cfg->optim, m->n_params, err);
    train_pos pos = {0, 0, 0, 0};
    if (!st && resume)
        st = restore(resume, t.recipe, &t.optim, &pos, n_train, batches, err);
    if (!st)
        st = pool_start(&t.pool, threads, err);
    if (st) {
        trainer_free(&t);
        return st;
    }

    for (int e = pos.epoch; e < cfg->epochs && !st; e++) {
        double t0 = now_seconds(), lr = cfg->optim.lr;
        size_t images_here = 0;
        shuffle(t.perm, n_train, cfg->seed, e);
        dn_train_progress p;
        memset(&p, 0, sizeof p);
        p.epoch = e + 1;
        p.epochs = cfg->epochs;
        p.batches = batches;
        p.images = n_train;
        for (long b = e == pos.epoch ? pos.batch : 0; b < batches; b++) {
            size_t start = (size_t)b * (size_t)cfg->batch;
            int bs = (int)(n_train - start < (size_t)cfg->batch ? n_train - start
                                                                 : (size_t)cfg->batch);
            train_job j;
            memset(&j, 0, sizeof j);
            j.m = m;
            j.ds = train;
            j.cfg = cfg;
            j.lanes = t.lanes;
            j.perm = t.perm;
            j.start = start;
            j.bs = bs;
            j.epoch = e;
            j.grads = t.grads;
            j.chunk_loss = t.chunk_loss;
            atomic_init(&j.next, 0);
            atomic_init(&j.failed, 0);
            pool_run(&t.pool, train_chunks, &j);
            if (atomic_load(&j.failed)) {
                st = dn_fail(err, DN_ERR_SHAPE, "epoch %d, batch %ld: the forward pass "
                             "refused the batch", e + 1, b + 1);
                break;
            }
            /* Chunk order, whatever thread computed which chunk. */
            int used = (bs + DN_TRAIN_CHUNK - 1) / DN_TRAIN_CHUNK;
            double loss = t.chunk_loss[0];
            for (int c = 1; c < used; c++)
                loss += t.chunk_loss[c];
            if (!isfinite(loss)) {
                st = dn_fail(err, DN_ERR_NUMERIC, "epoch %d, batch %ld of %ld: the loss is "
                             "%g; training diverged, try a lower learning rate (this one "
                             "was %g)", e + 1, b + 1, batches, loss / bs,
                             dn_sched_lr(&cfg->sched, cfg->optim.lr, e, cfg->epochs, b,
                                         batches));
                break;
            }
            lr = dn_sched_lr(&cfg->sched, cfg->optim.lr, e, cfg->epochs, b, batches);
            update_job u = {&t.optim, m->params, t.grads, used, m->n_params, lr, t.pool.n};
            pool_run(&t.pool, update_slices, &u);
            dn_optim_step_end(&t.optim);
            pos.loss_sum += loss;
            pos.loss_count += bs;
            pos.epoch = e;
            pos.batch = b + 1;
            images_here += (size_t)bs;

            p.batch = b + 1;
            p.lr = lr;
            p.train_loss = pos.loss_sum / pos.loss_count;
            p.seconds = now_seconds() - t0;
            p.images_per_s = p.seconds > 0 ? (double)images_here / p.seconds : 0;
            if (cfg->progress && cfg->progress(&p, cfg->user) && b + 1 < batches) {
                if (cfg->checkpoint) {
                    st = save_checkpoint(m, cfg, t.recipe, &t.optim, &pos, n_train, t.extras,
                                         err);
                    if (st)
                        break;
                }
                st = dn_fail(err, DN_ERR_INTERRUPTED, "stopped in epoch %d after batch %ld "
                             "of %ld%s%s", e + 1, b + 1, batches,
                             cfg->checkpoint ? "; checkpoint written to " : "",
                             cfg->checkpoint ? cfg->checkpoint : "");
                break;
            }
        }
        if (st)
            break;

        /* End of the epoch: evaluate, checkpoint, report. */
        p.seconds = now_seconds() - t0;
        p.images_per_s = p.seconds > 0 ? (double)images_here / p.seconds : 0;
        p.lr = lr;
        p.batch = batches;
        p.train_loss = pos.loss_count > 0 ? pos.loss_sum / pos.loss_count : NAN;
        p.epoch_done = 1;
        p.split = split;
        p.eval_loss = NAN;
        p.eval_acc = NAN;
        p.eval_acc_se = NAN;
        if (split && n_eval) {
            size_t correct = 0;
            st = eval_run(&t.pool, t.lanes, EVAL_CHUNK, m, eval_ds, eval_first, n_eval, t.nll,
                          t.hit, NULL, &p.eval_loss, &correct, err);
            if (st)
                break;
            p.eval_n = n_eval;
            p.eval_acc = (double)correct / (double)n_eval;
            p.eval_acc_se = sqrt(p.eval_acc * (1 - p.eval_acc) / (double)n_eval);
        }
        pos.epoch = e + 1;
        pos.batch = 0;
        pos.loss_sum = 0;
        pos.loss_count = 0;
        if (cfg->checkpoint) {
            st = save_checkpoint(m, cfg, t.recipe, &t.optim, &pos, n_train, t.extras, err);
            if (st)
                break;
        }
        p.seconds = now_seconds() - t0;
        if (cfg->progress && cfg->progress(&p, cfg->user) && e + 1 < cfg->epochs) {
            st = dn_fail(err, DN_ERR_INTERRUPTED, "stopped after epoch %d of %d%s%s", e + 1,
                         cfg->epochs, cfg->checkpoint ? "; checkpoint written to " : "",
                         cfg->checkpoint ? cfg->checkpoint : "");
            break;
        }
    }
    /* Zero epochs still leave a model file (the initial weights) that a
     * later run can resume. */
    if (!st && !resume && cfg->epochs == 0 && cfg->checkpoint)
        st = save_checkpoint(m, cfg, t.recipe, &t.optim, &pos, n_train, t.extras, err);
    trainer_free(&t);
    return st;
}
