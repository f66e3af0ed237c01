/*
 * pool.h - the threads of the trainer and the evaluator (src/pool.c): a
 * persistent pool that runs one job on every thread, and the buffers each
 * thread works in. Internal to libdigitnet.
 */
#ifndef DN_POOL_H
#define DN_POOL_H

#include "digitnet.h"

#include <pthread.h>
#include <stdatomic.h>

/* n threads including the caller: n - 1 workers wait for a job, run it
 * with their thread id and report back. Started once per training or
 * evaluation run, so that no thread is created per batch. A thread that
 * waits (a worker for the next job, the caller for the workers) spins for
 * up to DN_POOL_SPIN_US before it sleeps on the condition variable:
 * training runs two jobs per batch, a millisecond apart, and waking a
 * sleeping thread costs tens of microseconds each time on a virtual
 * machine. Only while the threads are no more than the online cores, so
 * that a spinning thread never takes a core from a working one. gen, busy and quit change under mu (busy also without it, going
 * down) and are read without it while spinning. */
#define DN_POOL_SPIN_US 200
typedef struct dn_pool {
    int n;
    int spin;               /* spin before sleeping: n <= the online cores */
    int started;            /* workers created */
    pthread_t *threads;     /* (n - 1) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong gen;       /* job generation; workers run each once */
    atomic_int busy;        /* workers still in the current job */
    atomic_int quit;
    void (*fn)(void *ctx, int tid);
    void *ctx;
} dn_pool;

/* Starts n - 1 workers. On failure p holds nothing to stop. */
dn_status dn_pool_start(dn_pool *p, int n, dn_error *err);
/* Runs fn(ctx, tid) on every thread (the caller is tid 0) and returns when
 * all are done. */
void dn_pool_run(dn_pool *p, void (*fn)(void *ctx, int tid), void *ctx);
/* Joins the workers and zeroes p; harmless on a zeroed pool. */
void dn_pool_stop(dn_pool *p);
/* The thread count to use for a requested one (<= 0: all online cores),
 * capped at DN_POOL_MAX_THREADS. */
#define DN_POOL_MAX_THREADS 256
int dn_pool_threads(int requested);

/* One thread's buffers for chunks of up to `chunk` images. */
typedef struct dn_scratch {
    dn_work *work;
    float *x;               /* (chunk, C*H*W) normalised inputs */
    uint8_t *labels;        /* (chunk) */
    uint64_t *keys;         /* (chunk) per-image dropout keys */
} dn_scratch;

/* n scratch sets for model m; reference != 0 sets their works to the
 * general reference kernels (dn_work_set_reference). NULL if out of
 * memory. */
dn_scratch *dn_scratch_new(const dn_model *m, int n, int chunk, int reference);
/* Frees n sets made by dn_scratch_new; harmless on NULL. */
void dn_scratch_free(dn_scratch *s, int n);

#endif
