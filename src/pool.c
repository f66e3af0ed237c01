/*
 * pool.c - a persistent thread pool and each thread's scratch buffers, for
 * the trainer (src/train.c) and the evaluator (src/evaluate.c).
 */
#include "pool.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pool_arg {
    dn_pool *p;
    int tid;
} pool_arg;

static void *pool_worker(void *arg)
{
    dn_pool *p = ((pool_arg *)arg)->p;
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

void dn_pool_stop(dn_pool *p)
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

dn_status dn_pool_start(dn_pool *p, int n, dn_error *err)
{
    memset(p, 0, sizeof *p);
    p->n = n;
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
