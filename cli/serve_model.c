/*
 * serve_model.c - the model `digitnet serve` answers with: loaded whole,
 * described once (the GET /api/model answer, its test accuracy measured on
 * load), replaced atomically on reload while requests in flight keep the
 * one they started with; and each thread's workspace for it.
 */
#include "serve.h"

#include <jansson.h>
#include <math.h>
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

/* The layer's own text in the canonical spec ("conv 8 k3 p1 s1"). */
static void layer_spec(const dn_model *m, int l, char *buf, size_t size)
{
    const char *p = m->spec;
    for (int i = 0; i < l && p; i++)
        if ((p = strchr(p, ',')))
            p++;
    buf[0] = 0;
    if (!p)
        return;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, ",");
    snprintf(buf, size, "%.*s", (int)n, p);
}

static json_t *shape_json(dn_shape s)
{
    return json_pack("[iii]", s.c, s.h, s.w);
}

/* The GET /api/model answer: what the model is, its layers and shapes,
 * its stages as the page draws them, and its test accuracy. */
static json_t *describe(const serve_model *sm, const dn_file_extras *x, double acc, size_t n)
{
    const dn_model *m = sm->m;
    json_t *layers = json_array();
    int64_t macs = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        char spec[128];
        layer_spec(m, l, spec, sizeof spec);
        macs += L->macs;
        json_array_append_new(
            layers, json_pack("{s:s,s:s,s:o,s:o,s:I,s:I}", "name", L->name, "spec", spec, "input",
                              shape_json(L->in), "output", shape_json(L->out), "parameters",
                              (json_int_t)(L->w_len + L->b_len), "macs", (json_int_t)L->macs));
    }
    dn_stage st[DN_MAX_LAYERS + 1];
    int ns = dn_model_stages(m, st, DN_MAX_LAYERS + 1);
    json_t *stages = json_array();
    for (int s = 0; s < ns; s++)
        json_array_append_new(stages, json_pack("{s:s,s:o,s:o}", "name", st[s].name, "layer",
                                                st[s].layer < 0 ? json_null()
                                                                : json_integer(st[s].layer),
                                                "shape", shape_json(st[s].shape)));
    int k = dn_model_classes(m);
    const char *const *names = dn_class_names(m->dataset);
    json_t *classes = json_array();
    for (int c = 0; c < k; c++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", c);
        json_array_append_new(classes, json_string(names && c < 10 ? names[c] : buf));
    }
    json_t *test = json_null();
    if (n > 0)
        test = json_pack("{s:f,s:f,s:I,s:s}", "accuracy", acc, "standard_error",
                         sqrt(acc * (1 - acc) / (double)n), "images", (json_int_t)n, "measured",
                         "on load, by this server");
    const char *prov = x ? dn_file_extras_get(x, "provenance") : NULL;
    return json_pack("{s:s,s:s,s:i,s:s,s:s,s:o,s:i,s:o,s:I,s:I,s:f,s:f,s:o,s:o,s:o,s:o}", "file",
                     sm->path, "loaded_at", sm->loaded_at, "generation", (int)sm->generation,
                     "spec", m->spec, "dataset", m->dataset, "input", shape_json(m->input),
                     "classes", k, "class_names", classes, "parameters",
                     (json_int_t)m->n_params, "macs", (json_int_t)macs, "mean", (double)m->mean,
                     "std", (double)m->std, "layers", layers, "stages", stages, "test", test,
                     "provenance", prov ? json_string(prov) : json_null());
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
    double acc = 0;
    size_t correct = 0;
    const char *dir = cli_data_dir(sm->m->dataset, data_dir);
    if (dn_dataset_load(&sm->test, dir, "test", sm->m->dataset, &derr) == DN_OK) {
        sm->has_test = 1;
        if (dn_evaluate(sm->m, &sm->test, 0, sm->test.n, 1, 250, NULL, NULL, &correct, &derr) ==
            DN_OK)
            acc = (double)correct / (double)sm->test.n;
    } else {
        snprintf(sm->test_note, sizeof sm->test_note, "no %s test set: %s", sm->m->dataset,
                 derr.msg);
    }

    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(sm->loaded_at, sizeof sm->loaded_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sm->generation = ++generations;
    json_t *about = describe(sm, x, acc, sm->has_test ? sm->test.n : 0);
    dn_file_extras_free(x);
    free(x);
    sm->about = about ? json_dumps(about, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                              JSON_REAL_PRECISION(7))
                      : NULL;
    json_decref(about);
    if (!sm->about) {
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
