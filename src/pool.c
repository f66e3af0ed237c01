/*
 * pool.c - a persistent thread pool and each thread's scratch buffers, for
 * the trainer (src/train.c) and the evaluator (src/evaluate.c).
 */
#include "pool.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct pool_arg {
    dn_pool *p;
    int tid;
} pool_arg;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + 1e-3 * (double)ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until ready(p, arg) holds or DN_POOL_SPIN_US pass; returns whether
 * it holds. */
static int spin_until(const dn_pool *p, int (*ready)(const dn_pool *, unsigned long),
                      unsigned long arg)
{
    double t0 = 0;
    if (!p->spin)
        return ready(p, arg);
    for (unsigned i = 0;; i++) {
        if (ready(p, arg))
            return 1;
        if ((i & 63) == 0) {
            double t = now_us();
            if (i == 0)
                t0 = t;
            else if (t - t0 > DN_POOL_SPIN_US)
                return 0;
        }
        cpu_relax();
    }
}

static int job_posted(const dn_pool *p, unsigned long seen)
{
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->quit, memory_order_acquire);
}

static int workers_done(const dn_pool *p, unsigned long unused)
{
    (void)unused;
    return atomic_load_explicit(&p->busy, memory_order_acquire) == 0;
}

static void *pool_worker(void *arg)
{
    dn_pool *p = ((pool_arg *)arg)->p;
    int tid = ((pool_arg *)arg)->tid;
    free(arg);
    unsigned long seen = 0;
    for (;;) {
        if (!spin_until(p, job_posted, seen)) {
            pthread_mutex_lock(&p->mu);
            while (!job_posted(p, seen))
                pthread_cond_wait(&p->go, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            break;
        /* gen is stored (release) after fn and ctx. */
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        p->fn(p->ctx, tid);
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            /* Under mu, so that a caller between its check of busy and
             * its wait cannot miss the signal. */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

void dn_pool_stop(dn_pool *p)
{
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->quit, 1, memory_order_release);
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

dn_status dn_pool_start(dn_pool *p, int n, dn_error *err)
{
    memset(p, 0, sizeof *p);
    atomic_init(&p->gen, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->quit, 0);
    p->n = n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->spin = cores > 0 && n <= cores;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n > 1) {
        p->threads = calloc((size_t)n - 1, sizeof *p->threads);
        if (!p->threads) {
            dn_pool_stop(p);
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
            dn_pool_stop(p);
            return dn_fail(err, DN_ERR_NOMEM, "cannot start thread %d of %d", i + 1, n);
        }
        p->started++;
    }
    return DN_OK;
}

void dn_pool_run(dn_pool *p, void (*fn)(void *, int), void *ctx)
{
    if (p->n > 1) {
        /* Every worker has finished the last job (busy is 0), so none
         * reads fn or ctx now; gen's release store publishes them. */
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->ctx = ctx;
        atomic_store_explicit(&p->busy, p->n - 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0);
    if (p->n > 1 && !spin_until(p, workers_done, 0)) {
        pthread_mutex_lock(&p->mu);
        while (!workers_done(p, 0))
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int dn_pool_threads(int requested)
{
    if (requested <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        requested = n > 0 ? (int)n : 1;
    }
    return requested > DN_POOL_MAX_THREADS ? DN_POOL_MAX_THREADS : requested;
}

void dn_scratch_free(dn_scratch *s, int n)
{
    for (int t = 0; s && t < n; t++) {
        dn_work_free(s[t].work);
        dn_free(s[t].x);
        dn_free(s[t].labels);
        dn_free(s[t].keys);
    }
    free(s);
}

dn_scratch *dn_scratch_new(const dn_model *m, int n, int chunk, int reference)
{
    dn_scratch *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return NULL;
    size_t plane = (size_t)m->input.c * m->input.h * m->input.w;
    for (int t = 0; t < n; t++) {
        s[t].work = dn_work_new(m, chunk);
        if (s[t].work)
            dn_work_set_reference(s[t].work, reference);
        s[t].x = dn_alloc_floats(plane * (size_t)chunk);
        s[t].labels = dn_alloc_bytes((size_t)chunk);
        s[t].keys = dn_alloc_bytes((size_t)chunk * sizeof(uint64_t));
        if (!s[t].work || !s[t].x || !s[t].labels || !s[t].keys) {
            dn_scratch_free(s, n);
            return NULL;
        }
    }
    return s;
}
