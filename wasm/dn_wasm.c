/*
 * dn_wasm.c - libdigitnet's calls for a web page, compiled to WebAssembly
 * by `make web` together with the library's own src/ files.
 *
 * The page (through wasm/api.js) loads a model file's bytes, turns a
 * picture into the 28x28 the network sees, and runs the network on it,
 * with every layer's output for the feature maps. Everything is done by
 * the library; this file only holds the state a page keeps between calls
 * (the model, its work buffers, the last input) and hands out pointers
 * into it. Functions return 0 (or a pointer) on success and -1 (or NULL)
 * on failure, with the library's one-line message in dnw_error().
 */
#include "digitnet.h"

#include <emscripten.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE DN_IMAGE_SIDE
#define PIXELS (SIDE * SIDE)

/* The page's state for one model. */
typedef struct dnw {
    dn_model *m;
    dn_work *fast;          /* one image, fast kernels where they apply */
    dn_work *ref;           /* one image, every layer's output kept */
    dn_work *batch;         /* up to max_batch images */
    int max_batch;
    float input[PIXELS];    // (28, 28) 0..1, ink 1: what the network sees
    float x[PIXELS];        // (28, 28) normalised
    float *xb;              // (max_batch, 28, 28) normalised batch
    dn_prep_info prep;
    char *model_json;       /* dnw_model_json's answer */
    char *prep_json;        /* dnw_prep_json's answer */
} dnw;

static dn_error last;

static int failed(const dn_error *err)
{
    last = *err;
    return -1;
}

static void fail_msg(const char *msg)
{
    last.status = DN_ERR_ARG;
    snprintf(last.msg, sizeof last.msg, "%s", msg);
}

EMSCRIPTEN_KEEPALIVE const char *dnw_error(void)
{
    return last.msg;
}

EMSCRIPTEN_KEEPALIVE void dnw_free(dnw *h)
{
    if (!h)
        return;
    dn_work_free(h->fast);
    dn_work_free(h->ref);
    dn_work_free(h->batch);
    dn_model_free(h->m);
    free(h->xb);
    free(h->model_json);
    free(h->prep_json);
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
    dn_model *m = dn_model_load(path, NULL, &err);
    remove(path);
    if (!m) {
        failed(&err);
        return NULL;
    }
    if (m->input.c != 1 || m->input.h != SIDE || m->input.w != SIDE) {
        snprintf(last.msg, sizeof last.msg, "%s: the model takes %dx%dx%d inputs; pictures are made 1x%dx%d",
                 name, m->input.c, m->input.h, m->input.w, SIDE, SIDE);
        dn_model_free(m);
        return NULL;
    }
    dnw *h = calloc(1, sizeof *h);
    if (h) {
        h->m = m;
        h->fast = dn_work_new(m, 1);
        h->ref = dn_work_new(m, 1);
    }
    if (!h || !h->fast || !h->ref) {
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
 * out.w) values, shaped as dnw_model_json says. */
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

static const char *kind_name(dn_layer_kind k)
{
    static const char *const names[] = {
        [DN_CONV] = "conv", [DN_RELU] = "relu", [DN_MAXPOOL] = "maxpool",
        [DN_DROPOUT2D] = "dropout2d", [DN_FLATTEN] = "flatten", [DN_FC] = "fc",
        [DN_LOGSOFTMAX] = "logsoftmax",
    };
    return names[k];
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

/* The model for the page's model panel, as JSON: spec, dataset,
 * normalisation, parameters, class names and each layer with its output
 * shape, parameters and multiply-accumulates. */
EMSCRIPTEN_KEEPALIVE const char *dnw_model_json(dnw *h)
{
    const dn_model *m = h->m;
    json_t *layers = json_array(), *classes = json_array();
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        json_array_append_new(layers, json_pack("{s:s,s:s,s:[iii],s:I,s:I}", "name", L->name,
                                                "kind", kind_name(L->kind), "shape", L->out.c,
                                                L->out.h, L->out.w, "params",
                                                (json_int_t)(L->w_len + L->b_len), "macs",
                                                (json_int_t)L->macs));
    }
    const char *const *names = dn_class_names(m->dataset);
    for (int c = 0; c < dn_model_classes(m); c++) {
        char label[16];
        snprintf(label, sizeof label, "%d", c);
        json_array_append_new(classes, json_string(names && c < 10 ? names[c] : label));
    }
    json_t *o = json_pack("{s:s,s:s,s:f,s:f,s:I,s:[iii],s:o,s:o}", "spec", m->spec, "dataset",
                          m->dataset, "mean", (double)m->mean, "std", (double)m->std, "params",
                          (json_int_t)m->n_params, "input", m->input.c, m->input.h,
                          m->input.w, "classes", classes, "layers", layers);
    free(h->model_json);
    h->model_json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return h->model_json;
}
