/*
 * serve_model.c - the model `digitnet serve` answers with: loaded whole,
 * described once (the GET /api/model answer, its test accuracy measured on
 * load), replaced atomically on reload while requests in flight keep the
 * one they started with; and each thread's workspace for it.
 */
#include "serve.h"
#include "digitnet_picture.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static serve_model *current;
static unsigned generations;

static void model_free(serve_model *sm)
{
    if (!sm)
        return;
    dn_model_free(sm->m);
    dn_dataset_free(&sm->test);
    free(sm->about);
    free(sm);
}

serve_model *serve_model_acquire(void)
{
    pthread_mutex_lock(&current_lock);
    serve_model *sm = current;
    if (sm)
        atomic_fetch_add(&sm->refs, 1);
    pthread_mutex_unlock(&current_lock);
    return sm;
}

void serve_model_release(serve_model *sm)
{
    if (sm && atomic_fetch_sub(&sm->refs, 1) == 1)
        model_free(sm);
}

void serve_model_shutdown(void)
{
    pthread_mutex_lock(&current_lock);
    serve_model *sm = current;
    current = NULL;
    pthread_mutex_unlock(&current_lock);
    serve_model_release(sm);
}

dn_status serve_model_load(const char *path, const char *data_dir, dn_error *err)
{
    serve_model *sm = calloc(1, sizeof *sm);
    if (!sm) {
        err->status = DN_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return DN_ERR_NOMEM;
    }
    dn_file_extras *x = calloc(1, sizeof *x);
    if (!x) {
        free(sm);
        err->status = DN_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return DN_ERR_NOMEM;
    }
    snprintf(sm->path, sizeof sm->path, "%s", path);
    sm->m = dn_model_load(path, x, err);
    if (!sm->m) {
        free(x);
        free(sm);
        return err->status;
    }
    if (sm->m->input.c != 1 || sm->m->input.h != DN_IMAGE_SIDE ||
        sm->m->input.w != DN_IMAGE_SIDE || dn_model_classes(sm->m) > DN_EXPLAIN_MAX_CLASSES) {
        err->status = DN_ERR_SHAPE;
        snprintf(err->msg, sizeof err->msg,
                 "%s: the model takes %dx%dx%d inputs and has %d classes; served are models of "
                 "1x%dx%d inputs and at most %d classes",
                 path, sm->m->input.c, sm->m->input.h, sm->m->input.w, dn_model_classes(sm->m),
                 DN_IMAGE_SIDE, DN_IMAGE_SIDE, DN_EXPLAIN_MAX_CLASSES);
        dn_file_extras_free(x);
        free(x);
        model_free(sm);
        return DN_ERR_SHAPE;
    }

    /* The test split: for GET /api/sample and the accuracy shown in the
     * model panel, measured here rather than trusted from the file. */
    dn_error derr = {0};
    size_t correct = 0, tested = 0;
    const char *dir = cli_data_dir(sm->m->dataset, data_dir);
    if (dn_dataset_load(&sm->test, dir, "test", sm->m->dataset, &derr) == DN_OK) {
        sm->has_test = 1;
        if (dn_evaluate(sm->m, &sm->test, 0, sm->test.n, 1, 250, NULL, NULL, &correct, &derr) ==
            DN_OK)
            tested = sm->test.n;
    } else {
        snprintf(sm->test_note, sizeof sm->test_note, "no %s test set: %s", sm->m->dataset,
                 derr.msg);
    }

    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(sm->loaded_at, sizeof sm->loaded_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sm->generation = ++generations;
    /* The library's description, with when this server loaded it. */
    char *about = dn_model_json(sm->m, path, correct, tested,
                                dn_file_extras_get(x, "provenance"), err);
    dn_file_extras_free(x);
    free(x);
    dn_text head = {0};
    if (about)
        dn_text_printf(&head, "{\"loaded_at\":\"%s\",\"generation\":%u,%s", sm->loaded_at,
                       sm->generation, about + 1);
    free(about);
    sm->about = head.oom ? NULL : head.s;
    if (!sm->about) {
        free(head.s);
        model_free(sm);
        err->status = DN_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory describing %s", path);
        return DN_ERR_NOMEM;
    }
    sm->about_len = strlen(sm->about);
    atomic_init(&sm->refs, 1);

    pthread_mutex_lock(&current_lock);
    serve_model *old = current;
    current = sm;
    pthread_mutex_unlock(&current_lock);
    serve_model_release(old);
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Each thread's workspace                                                  */
/* ------------------------------------------------------------------------ */

typedef struct worker {
    dn_work *w[2];          /* batches of 2 (one answer and its naive
                               squash), and of SERVE_WORK_BATCH */
    unsigned generation[2]; /* of the model each was made for */
    dn_prep *prep;
} worker;

static pthread_key_t worker_key;
static pthread_once_t worker_once = PTHREAD_ONCE_INIT;

static void worker_free(void *p)
{
    worker *wk = p;
    dn_work_free(wk->w[0]);
    dn_work_free(wk->w[1]);
    dn_prep_free(wk->prep);
    free(wk);
}

static void worker_key_make(void)
{
    pthread_key_create(&worker_key, worker_free);
}

static worker *this_worker(void)
{
    pthread_once(&worker_once, worker_key_make);
    worker *wk = pthread_getspecific(worker_key);
    if (!wk && (wk = calloc(1, sizeof *wk)))
        pthread_setspecific(worker_key, wk);
    return wk;
}

dn_prep *serve_prep(void)
{
    worker *wk = this_worker();
    if (wk && !wk->prep)
        wk->prep = dn_prep_new();
    return wk ? wk->prep : NULL;
}

dn_work *serve_work(const serve_model *sm, int large)
{
    worker *wk = this_worker();
    if (!wk)
        return NULL;
    int k = large != 0;
    if (!wk->w[k] || wk->generation[k] != sm->generation) {
        /* A reload may change the architecture: a work fits one model's
         * shapes. */
        dn_work_free(wk->w[k]);
        wk->w[k] = dn_work_new(sm->m, k ? SERVE_WORK_BATCH : 2);
        wk->generation[k] = sm->generation;
    }
    return wk->w[k];
}
