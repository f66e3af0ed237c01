/*
 * dn_wasm.c - libdigitnet's calls for a web page, compiled to WebAssembly
 * by `make web` together with the library's own src/ files.
 *
 * The page (through wasm/api.js) loads a model file's bytes, turns a
 * picture into the 28x28 the network sees, and runs the network on it,
 * with every layer's output for the feature maps; and, for the page of
 * `digitnet serve` run without a server (web/backend-wasm.js), explains a
 * prediction and describes the model in the very JSON the server answers
 * (dn_explain_image, dn_explanation_json, dn_model_json). Everything is
 * done by the library; this file only holds the state a page keeps
 * between calls (the model, its work buffers, the last input, a test set)
 * and hands out pointers into it. Functions return 0 (or a pointer) on
 * success and -1 (or NULL) on failure, with the library's one-line
 * message in dnw_error() and the HTTP status the server would answer in
 * dnw_error_status().
 */
#include "digitnet.h"
#include "digitnet_explain.h"

#include <emscripten.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SIDE DN_IMAGE_SIDE
#define PIXELS (SIDE * SIDE)

/* The page's state for one model. */
typedef struct dnw {
    dn_model *m;
    dn_work *fast;          /* one image, fast kernels where they apply */
    dn_work *ref;           /* one image, every layer's output kept */
    dn_work *batch;         /* up to max_batch images */
    dn_work *explain;       /* the occlusion map's batches */
    dn_prep *pictures;      /* decoding and preprocessing buffers */
    dn_dataset test;        /* the test images shipped with the page */
    size_t test_correct;    /* of them, right */
    char *provenance;       /* the model file's, or NULL */
    int max_batch;
    float input[PIXELS];    // (28, 28) 0..1, ink 1: what the network sees
    float x[PIXELS];        // (28, 28) normalised
    float *xb;              // (max_batch, 28, 28) normalised batch
    dn_prep_info prep;
    char *model_json;       /* dnw_model_json's answer */
    char *prep_json;        /* dnw_prep_json's answer */
    char *answer;           /* dnw_explain's or dnw_sample's last answer */
} dnw;

static dn_error last;
static int last_http;

static int failed(const dn_error *err)
{
    last = *err;
    last_http = 500;
    return -1;
}

static void fail_msg(const char *msg)
{
    last.status = DN_ERR_ARG;
    last_http = 500;
    snprintf(last.msg, sizeof last.msg, "%s", msg);
}

EMSCRIPTEN_KEEPALIVE const char *dnw_error(void)
{
    return last.msg;
}

/* The status `digitnet serve` answers for the last failure: 400 a picture
 * that does not decode, 404 no such test image, 422 a picture without a
 * digit, 500 the rest. */
EMSCRIPTEN_KEEPALIVE int dnw_error_status(void)
{
    return last_http;
}

EMSCRIPTEN_KEEPALIVE void dnw_free(dnw *h)
{
    if (!h)
        return;
    dn_work_free(h->fast);
    dn_work_free(h->ref);
    dn_work_free(h->batch);
    dn_work_free(h->explain);
    dn_prep_free(h->pictures);
    dn_dataset_free(&h->test);
    dn_model_free(h->m);
    free(h->xb);
    free(h->model_json);
    free(h->prep_json);
    free(h->answer);
    free(h->provenance);
    free(h);
}

/* A model from the bytes of its file, named name in messages. The file
 * goes through the library's own loader (with all its checks) by way of
 * the in-memory file system. The model must take 1x28x28 images. */
EMSCRIPTEN_KEEPALIVE dnw *dnw_load(const uint8_t *bytes, size_t size, const char *name)
{
    dn_error err = {0};
    char path[300];
    snprintf(path, sizeof path, "/tmp/%s", name && *name && !strchr(name, '/') ? name : "model");
    if (dn_file_write_atomic(path, bytes, size, &err) != DN_OK) {
        failed(&err);
        return NULL;
    }
    /* The metadata, for the provenance (some 40 KB: not on the stack). */
    dn_file_extras *x = calloc(1, sizeof *x);
    dn_model *m = x ? dn_model_load(path, x, &err) : NULL;
    remove(path);
    if (!m) {
        if (x)
            failed(&err);
        else
            fail_msg("out of memory loading the model");
        free(x);
        return NULL;
    }
    if (m->input.c != 1 || m->input.h != SIDE || m->input.w != SIDE ||
        dn_model_classes(m) > DN_EXPLAIN_MAX_CLASSES) {
        snprintf(last.msg, sizeof last.msg,
                 "%s: the model takes %dx%dx%d inputs and has %d classes; pictures are made "
                 "1x%dx%d and at most %d classes are explained", name, m->input.c, m->input.h,
                 m->input.w, dn_model_classes(m), SIDE, SIDE, DN_EXPLAIN_MAX_CLASSES);
        last_http = 500;
        dn_file_extras_free(x);
        free(x);
        dn_model_free(m);
        return NULL;
    }
    const char *prov = dn_file_extras_get(x, "provenance");
    dnw *h = calloc(1, sizeof *h);
    if (h) {
        h->m = m;
        h->fast = dn_work_new(m, 1);
        h->ref = dn_work_new(m, 1);
        /* Batches as the server's for the occlusion map. */
        h->explain = dn_work_new(m, 32);
        h->pictures = dn_prep_new();
        h->provenance = prov ? strdup(prov) : NULL;
    }
    dn_file_extras_free(x);
    free(x);
    if (!h || !h->fast || !h->ref || !h->explain || !h->pictures || (prov && !h->provenance)) {
        fail_msg("out of memory for the model's work buffers");
        if (h)
            dnw_free(h);
        else
            dn_model_free(m);
        return NULL;
    }
    dn_work_set_reference(h->ref, 1);
    return h;
}

EMSCRIPTEN_KEEPALIVE int dnw_classes(const dnw *h)
{
    return dn_model_classes(h->m);
}

EMSCRIPTEN_KEEPALIVE int dnw_layers(const dnw *h)
{
    return h->m->n_layers;
}

/* The buffer the page writes a 28x28 image into (0..1, ink 1), and where
 * dnw_preprocess puts what it made of a picture. */
EMSCRIPTEN_KEEPALIVE float *dnw_input(dnw *h)
{
    return h->input;
}

/* The network on dnw_input: the log-probabilities (classes values). With
 * maps set, the reference kernels run and keep every layer's output for
 * dnw_act; without, the fast ones. */
EMSCRIPTEN_KEEPALIVE const float *dnw_forward(dnw *h, int maps)
{
    memcpy(h->x, h->input, sizeof h->x);
    dn_image_normalize(h->x, PIXELS, h->m->mean, h->m->std);
    const float *lp = dn_model_forward(h->m, maps ? h->ref : h->fast, h->x, 1, DN_MODE_EVAL, NULL);
    if (!lp)
        fail_msg("the model's forward pass failed");
    return lp;
}

/* Layer l's output of the last dnw_forward with maps: (out.c, out.h,
 * out.w) values, shaped as the layers' "output" of dnw_model_json. */
EMSCRIPTEN_KEEPALIVE const float *dnw_act(dnw *h, int l)
{
    return dn_work_act(h->ref, l);
}

/* A buffer for n normalised images (n, 28, 28), for dnw_forward_batch. */
EMSCRIPTEN_KEEPALIVE float *dnw_batch_input(dnw *h, int n)
{
    if (n < 1)
        return NULL;
    if (n > h->max_batch) {
        dn_work_free(h->batch);
        free(h->xb);
        h->max_batch = 0;
        h->batch = dn_work_new(h->m, n);
        h->xb = malloc((size_t)n * PIXELS * sizeof *h->xb);
        if (!h->batch || !h->xb) {
            fail_msg("out of memory for a batch");
            return NULL;
        }
        h->max_batch = n;
    }
    return h->xb;
}

/* The network on the first n images of dnw_batch_input, as one batch:
 * (n, classes) log-probabilities. */
EMSCRIPTEN_KEEPALIVE const float *dnw_forward_batch(dnw *h, int n)
{
    if (n < 1 || n > h->max_batch) {
        fail_msg("dnw_forward_batch: call dnw_batch_input with this size first");
        return NULL;
    }
    const float *lp = dn_model_forward(h->m, h->batch, h->xb, n, DN_MODE_EVAL, NULL);
    if (!lp)
        fail_msg("the model's forward pass failed");
    return lp;
}

/* A picture file's bytes (PNG, JPEG, ...) into dnw_input: MNIST-style
 * preprocessing, or with raw set only a resize (for images that already
 * look like MNIST). */
EMSCRIPTEN_KEEPALIVE int dnw_preprocess(dnw *h, const uint8_t *bytes, size_t size, int raw)
{
    dn_error err = {0};
    dn_image img;
    if (dn_image_load_memory(bytes, size, "picture", &img, &err) != DN_OK)
        return failed(&err);
    memset(&h->prep, 0, sizeof h->prep);
    dn_status st = raw ? dn_image_raw(&img, h->input, &err)
                       : dn_image_preprocess(&img, h->input, &h->prep, &err);
    dn_image_free(&img);
    return st == DN_OK ? 0 : failed(&err);
}

/* What dnw_preprocess found (the last call), as JSON. */
EMSCRIPTEN_KEEPALIVE const char *dnw_prep_json(dnw *h)
{
    const dn_prep_info *p = &h->prep;
    json_t *o = json_pack("{s:b,s:f,s:f,s:[iiii],s:f,s:[ii],s:f}", "inverted", p->inverted,
                          "background", (double)p->background, "contrast", (double)p->contrast,
                          "box", p->box_x, p->box_y, p->box_w, p->box_h, "scale",
                          (double)p->scale, "offset", p->off_x, p->off_y, "stroke",
                          (double)p->stroke);
    free(h->prep_json);
    h->prep_json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return h->prep_json;
}

/* ------------------------------------------------------------------------ */
/* What `digitnet serve` answers, from the same library calls               */
/* ------------------------------------------------------------------------ */

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

/* s (a malloc'd answer, or NULL after a failure in err) kept in
 * h->answer until the next, which frees it. */
static const char *answer(dnw *h, char *s, const dn_error *err)
{
    if (!s) {
        failed(err);
        return NULL;
    }
    free(h->answer);
    h->answer = s;
    return s;
}

static int explain_flags(int maps, int saliency, int naive, int raw)
{
    return (maps ? DN_EXPLAIN_MAPS : 0) | (saliency ? DN_EXPLAIN_SALIENCY : 0) |
           (naive ? DN_EXPLAIN_NAIVE : 0) | (raw ? DN_EXPLAIN_RAW : 0);
}

/* One explained prediction as the server's POST /api/predict answers it
 * (dn_explanation_json): for a picture file's bytes when bytes is not
 * NULL, else for dnw_input (the {"pixels": ...} body). The string is the
 * module's until the next call. */
EMSCRIPTEN_KEEPALIVE const char *dnw_explain(dnw *h, const uint8_t *bytes, size_t size, int maps,
                                             int saliency, int naive, int raw)
{
    double t0 = now_us();
    int flags = explain_flags(maps, saliency, naive, raw);
    dn_error err = {0};
    dn_explanation e;
    dn_status st;
    double decode_us = 0;
    if (bytes) {
        dn_image img;
        if (dn_prep_load_memory(h->pictures, bytes, size, "body", &img, &err) != DN_OK) {
            failed(&err);
            last_http = 400;
            return NULL;
        }
        decode_us = now_us() - t0;
        st = dn_explain_image(h->m, h->explain, h->pictures, &img, flags, &e, &err);
        dn_image_free(&img);
    } else {
        st = dn_explain_input(h->m, h->explain, h->input, flags, &e, &err);
    }
    const char *s = NULL;
    if (st != DN_OK) {
        failed(&err);
        /* No digit in the picture is the picture's fault, as for the
         * server. */
        last_http = err.status == DN_ERR_FORMAT ? 422 : 500;
    } else {
        e.us_decode = decode_us;
        e.us_total = now_us() - t0;
        s = answer(h, dn_explanation_json(&e, &err), &err);
    }
    dn_explanation_free(&e);
    return s;
}

/* The test images shipped with the page, from the bytes of the dataset's
 * two test files (plain or gzip): loaded by the library's reader and
 * scored, for the model panel's accuracy (as the server scores its test
 * set on load) and for dnw_sample. Returns how many images, or -1. */
EMSCRIPTEN_KEEPALIVE int dnw_load_test(dnw *h, const uint8_t *images, size_t n_images,
                                       const uint8_t *labels, size_t n_labels)
{
    dn_error err = {0};
    char dir[] = "/tmp/test-set", ipath[300], lpath[300];
    dn_dataset_free(&h->test);
    h->test_correct = 0;
    mkdir(dir, 0700);
    /* Written under the names the reader looks for (gzip is known by its
     * first bytes). */
    dn_status st = dn_dataset_files(dir, "test", ipath, lpath, sizeof ipath, &err);
    if (st == DN_OK)
        st = dn_file_write_atomic(ipath, images, n_images, &err);
    if (st == DN_OK)
        st = dn_file_write_atomic(lpath, labels, n_labels, &err);
    if (st == DN_OK)
        st = dn_dataset_load(&h->test, dir, "test", h->m->dataset, &err);
    remove(ipath);
    remove(lpath);
    if (st == DN_OK)
        st = dn_evaluate(h->m, &h->test, 0, h->test.n, 1, 250, NULL, NULL, &h->test_correct,
                         &err);
    if (st != DN_OK) {
        dn_dataset_free(&h->test);
        return failed(&err);
    }
    return (int)h->test.n;
}

/* Test image index as the server's GET /api/sample answers it. */
EMSCRIPTEN_KEEPALIVE const char *dnw_sample(dnw *h, int index)
{
    const dn_dataset *ds = &h->test;
    if (index < 0 || (size_t)index >= ds->n) {
        snprintf(last.msg, sizeof last.msg, "there is no %s test image %d (there are %zu%s)",
                 h->m->dataset, index, ds->n, ds->n ? " shipped with the page" : "");
        last_http = 404;
        return NULL;
    }
    dn_error err = {0};
    return answer(h, dn_sample_json(ds, (size_t)index, &err), &err);
}

/* The model as the server's GET /api/model describes it (dn_model_json,
 * without the server's loaded_at and generation), file named file, scored
 * on the test images of dnw_load_test (none: test is null). */
EMSCRIPTEN_KEEPALIVE const char *dnw_model_json(dnw *h, const char *file)
{
    dn_error err = {0};
    char *s = dn_model_json(h->m, file, h->test_correct, h->test.n, h->provenance, &err);
    if (!s) {
        failed(&err);
        return NULL;
    }
    free(h->model_json);
    h->model_json = s;
    return s;
}
