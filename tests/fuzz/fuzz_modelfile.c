/*
 * fuzz_modelfile.c - dn_model_load on arbitrary bytes: the safetensors
 * header, the metadata, the model the spec in it describes, the tensors.
 *
 * What loads must be whole (finite parameters, every layer's block inside
 * the parameters), must save, and must load back from that file as the
 * same model; a small one also runs forward. A refusal is one line
 * starting with the file's name.
 */
#include "fuzz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_model(const dn_model *m)
{
    if (m->n_layers < 1 || m->n_layers > DN_MAX_LAYERS)
        fuzz_fail("a model of %d layers", m->n_layers);
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *ly = &m->layers[l];
        if (ly->w_off + ly->w_len > m->n_params || ly->b_off + ly->b_len > m->n_params)
            fuzz_fail("layer %s's parameters run past the block", ly->name);
    }
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i]))
            fuzz_fail("a non-finite parameter loaded (index %zu)", i);
}

/* Saving what loaded, then loading that, gives the same model. */
static void round_trip(const dn_model *m, dn_file_extras *x)
{
    const char *again = fuzz_file("again.safetensors", "", 0);
    dn_error err = {0};
    dn_status st = dn_model_save(m, again, x, &err);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, again);
        fuzz_fail("a model that loaded does not save: %s", err.msg);
    }
    dn_file_extras y;
    dn_model *b = dn_model_load(again, &y, &err);
    if (!b)
        fuzz_fail("a saved model does not load back: %s", err.msg);
    if (strcmp(b->spec, m->spec) || b->n_params != m->n_params ||
        memcmp(b->params, m->params, m->n_params * sizeof(float)) ||
        memcmp(&b->mean, &m->mean, sizeof m->mean) || memcmp(&b->std, &m->std, sizeof m->std) ||
        strcmp(b->dataset, m->dataset) || y.n_tensors != x->n_tensors || y.n_meta != x->n_meta)
        fuzz_fail("a saved model loads back different");
    dn_file_extras_free(&y);
    dn_model_free(b);
}

/* A forward pass of one sample, for models small enough to be quick. */
static void forward(const dn_model *m)
{
    int64_t macs = 0, acts = 0;
    for (int l = 0; l < m->n_layers; l++) {
        macs += m->layers[l].macs;
        acts += (int64_t)m->layers[l].out.c * m->layers[l].out.h * m->layers[l].out.w;
    }
    if (macs > 1000000 || acts > 1000000)
        return;
    dn_work *w = dn_work_new(m, 1);
    size_t n = (size_t)m->input.c * m->input.h * m->input.w;
    float *x = malloc(n * sizeof *x);
    if (!w || !x)
        fuzz_fail("out of memory for a small model");
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i % 7) - 3.0f;
    if (!dn_model_forward(m, w, x, 1, DN_MODE_EVAL, NULL))
        fuzz_fail("forward refused a model that loaded");
    free(x);
    dn_work_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("model.safetensors", data, size);
    dn_error err = {0};
    dn_file_extras x;
    dn_model *m = dn_model_load(path, &x, &err);
    if (!m) {
        fuzz_check_error(err.status, &err, path);
        if (strncmp(err.msg, path, strlen(path)) != 0)
            fuzz_fail("a refusal that does not start with the file: %s", err.msg);
        if (x.n_tensors || x.n_meta)
            fuzz_fail("a refused file left extras behind");
        return 0;
    }
    check_model(m);
    dn_error cerr = {0};
    if (dn_model_check_classifier(m, 10, &cerr) != DN_OK)
        fuzz_check_error(cerr.status, &cerr, NULL);
    round_trip(m, &x);
    forward(m);
    dn_file_extras_free(&x);
    dn_model_free(m);
    return 0;
}
