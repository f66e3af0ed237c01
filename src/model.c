/*
 * model.c - the layer sequence: building a model from its spec, parameter
 * initialisation, the per-batch workspace, and the forward and backward
 * passes. The fast kernels (src/fast/) run every model; the general kernels
 * (src/layers/) are the reference they are tested against, and run when
 * asked for (dn_work_set_reference) or when the fast kernels were not built.
 */
#include "digitnet.h"
#include "fast.h"
#include "internal.h"
#include "layers/layers.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Model                                                                    */
/* ------------------------------------------------------------------------ */

/* PyTorch's default for Conv2d and Linear: kaiming_uniform_(a = sqrt(5)) on
 * the weight, which is uniform in +-gain * sqrt(3 / fan_in) with
 * gain = sqrt(2 / (1 + 5)), i.e. +-1/sqrt(fan_in); the bias is uniform in
 * the same +-1/sqrt(fan_in). Each layer draws from its own stream, so
 * adding a layer does not change the others' initial values. */
static void init_layer(dn_model *m, int l, uint64_t seed)
{
    dn_layer *L = &m->layers[l];
    if (!L->w_len)
        return;
    size_t fan_in = L->w_len / (size_t)L->out_ch;
    float bound = (float)(1.0 / sqrt((double)fan_in));
    dn_rng r;
    dn_rng_seed(&r, dn_key(seed, DN_STREAM_INIT, (uint64_t)l, 0));
    float *wt = m->params + L->w_off; // (O, I, k, k) or (O, I)
    for (size_t i = 0; i < L->w_len; i++)
        wt[i] = (2.0f * dn_rng_uniform(&r) - 1.0f) * bound;
    float *bs = m->params + L->b_off; // (O)
    for (size_t i = 0; i < L->b_len; i++)
        bs[i] = (2.0f * dn_rng_uniform(&r) - 1.0f) * bound;
}

dn_model *dn_model_new(const char *spec, dn_shape input, uint64_t seed,
                       dn_error *err)
{
    dn_model *m = calloc(1, sizeof *m);
    if (!m) {
        dn_fail(err, DN_ERR_NOMEM, "out of memory for a model");
        return NULL;
    }
    if (dn_spec_build(m, spec, input, err) != DN_OK) {
        free(m);
        return NULL;
    }
    m->params = dn_alloc_floats(m->n_params);
    if (!m->params) {
        dn_fail(err, DN_ERR_NOMEM, "out of memory for %zu parameters", m->n_params);
        free(m);
        return NULL;
    }
    for (int l = 0; l < m->n_layers; l++)
        init_layer(m, l, seed);
    m->mean = DN_MNIST_MEAN;
    m->std = DN_MNIST_STD;
    snprintf(m->dataset, sizeof m->dataset, "mnist");
    return m;
}

void dn_model_free(dn_model *m)
{
    if (!m)
        return;
    dn_free(m->params);
    free(m);
}

int dn_model_find(const dn_model *m, const char *name)
{
    if (!m || !name)
        return -1;
    for (int l = 0; l < m->n_layers; l++)
        if (!strcmp(m->layers[l].name, name))
            return l;
    return -1;
}

int dn_model_classes(const dn_model *m)
{
    if (!m || m->n_layers < 1)
        return 0;
    dn_shape s = m->layers[m->n_layers - 1].out;
    return s.c * s.h * s.w;
}

static size_t numel(dn_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* ------------------------------------------------------------------------ */
/* Workspace                                                                */
/* ------------------------------------------------------------------------ */

struct dn_work {
    int max_batch;
    int n_layers;           /* of the model it was made for */
    dn_shape input;
    size_t n_params;
    dn_layer layers[DN_MAX_LAYERS]; /* its layers, for the shape check */
    int reference;          /* force the general kernels */
    /* What the last forward was, for loss and backward. */
    int B;                  /* 0: no forward yet */
    dn_mode mode;
    int ran_fast;           /* the fast kernels ran it */
    float *x;                       // (max_batch, input) copy of the input
    float *act[DN_MAX_LAYERS];      // (max_batch, out) each layer's output
    int32_t *argmax[DN_MAX_LAYERS]; // (max_batch, out) maxpool layers only
    float *mask[DN_MAX_LAYERS];     // (max_batch, C) dropout2d layers only
    float *grad[2];                 // (max_batch, largest tensor) ping-pong
    dn_fast_plan *fast;             /* NULL: the fast kernels were not built */
};

dn_work *dn_work_new(const dn_model *m, int max_batch)
{
    if (!m || max_batch < 1 || m->n_layers < 1)
        return NULL;
    dn_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->max_batch = max_batch;
    w->n_layers = m->n_layers;
    w->input = m->input;
    w->n_params = m->n_params;
    memcpy(w->layers, m->layers, sizeof w->layers);
    size_t Bz = (size_t)max_batch, largest = numel(m->input), n;
    int ok = dn_mul_size(Bz, numel(m->input), &n) && (w->x = dn_alloc_floats(n));
    for (int l = 0; ok && l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        size_t out = numel(L->out);
        if (out > largest)
            largest = out;
        ok = dn_mul_size(Bz, out, &n) && (w->act[l] = dn_alloc_floats(n));
        if (ok && L->kind == DN_MAXPOOL)
            ok = dn_mul_size(n, sizeof(int32_t), &n) && (w->argmax[l] = dn_alloc_bytes(n));
        if (ok && L->kind == DN_DROPOUT2D) {
            ok = dn_mul_size(Bz, (size_t)L->out.c, &n) && (w->mask[l] = dn_alloc_floats(n));
            /* A fixed-mask pass before anyone wrote a mask keeps all. */
            for (size_t i = 0; ok && i < n; i++)
                w->mask[l][i] = 1.0f;
        }
    }
    for (int g = 0; ok && g < 2; g++)
        ok = dn_mul_size(Bz, largest, &n) && (w->grad[g] = dn_alloc_floats(n));
    /* The fast kernels' plan and buffers, made here so that no pass
     * allocates; without it every pass runs the general kernels. */
    if (ok)
        w->fast = dn_fast_plan_new(m, max_batch);
    if (!ok) {
        dn_work_free(w);
        return NULL;
    }
    return w;
}

void dn_work_free(dn_work *w)
{
    if (!w)
        return;
    dn_fast_plan_free(w->fast);
    dn_free(w->x);
    for (int l = 0; l < DN_MAX_LAYERS; l++) {
        dn_free(w->act[l]);
        dn_free(w->argmax[l]);
        dn_free(w->mask[l]);
    }
    dn_free(w->grad[0]);
    dn_free(w->grad[1]);
    free(w);
}

float *dn_work_act(dn_work *w, int layer)
{
    if (!w || layer < 0 || layer >= w->n_layers)
        return NULL;
    return w->act[layer];
}

float *dn_work_mask(dn_work *w, int layer)
{
    if (!w || layer < 0 || layer >= w->n_layers)
        return NULL;
    return w->mask[layer];
}

void dn_work_set_reference(dn_work *w, int on)
{
    if (w)
        w->reference = on != 0;
}

int dn_work_max_batch(const dn_work *w)
{
    return w ? w->max_batch : 0;
}

dn_fast_plan *dn_work_fast(dn_work *w)
{
    return w ? w->fast : NULL;
}

static int same_shape(dn_shape a, dn_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* The work must have been made for a model with these shapes: the same
 * layers with the same sizes (a dropout probability may differ). */
static int work_fits(const dn_model *m, const dn_work *w)
{
    if (w->n_layers != m->n_layers || w->n_params != m->n_params ||
        !same_shape(w->input, m->input))
        return 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *a = &w->layers[l], *b = &m->layers[l];
        if (a->kind != b->kind || !same_shape(a->in, b->in) || !same_shape(a->out, b->out) ||
            a->out_ch != b->out_ch || a->k != b->k || a->pad != b->pad ||
            a->stride != b->stride || a->w_off != b->w_off || a->b_off != b->b_off)
            return 0;
    }
    return 1;
}

/* The dropout scales of this pass, per layer: drawn once from the sample
 * keys into the work's masks (DN_MODE_TRAIN), the masks as they are
 * (DN_MODE_TRAIN_FIXED_MASK), or none (evaluation). */
static void pass_masks(const dn_model *m, dn_work *w, int B, dn_mode mode,
                       const uint64_t *sample_keys, const float *masks[DN_MAX_LAYERS])
{
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        masks[l] = NULL;
        if (L->kind != DN_DROPOUT2D || mode == DN_MODE_EVAL || mode == DN_MODE_INFER)
            continue;
        if (mode == DN_MODE_TRAIN)
            for (int b = 0; b < B; b++)
                dn_dropout2d_mask(sample_keys[b], l, L->in.c, L->p,
                                  w->mask[l] + (size_t)b * L->in.c);
        masks[l] = w->mask[l];
    }
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */
/* ------------------------------------------------------------------------ */

const float *dn_model_forward(const dn_model *m, dn_work *w, const float *x,
                              int B, dn_mode mode,
                              const uint64_t *sample_keys)
{
    if (!m || !w || !x || B < 1 || B > w->max_batch || !work_fits(m, w) ||
        (unsigned)mode > (unsigned)DN_MODE_INFER || (mode == DN_MODE_TRAIN && !sample_keys))
        return NULL;
    w->B = 0;
    const float *masks[DN_MAX_LAYERS];
    pass_masks(m, w, B, mode, sample_keys, masks);
    float *logp = w->act[m->n_layers - 1]; // (B, classes)
    w->ran_fast = w->fast && !w->reference;
    if (w->ran_fast) {
        dn_fast_forward(w->fast, m, x, B, masks, mode == DN_MODE_INFER, logp);
        w->B = B;
        w->mode = mode;
        return logp;
    }

    /* Backward needs the first layer's input after the caller may have
     * reused x for the next batch. */
    memcpy(w->x, x, (size_t)B * numel(m->input) * sizeof *x);
    const float *P = m->params;
    const float *in = w->x; // (B, L->in)
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        float *out = w->act[l]; // (B, L->out)
        size_t n = (size_t)B * numel(L->out);
        switch (L->kind) {
        case DN_CONV:
            dn_conv2d_forward(out, in, P + L->w_off, P + L->b_off, B, L->in.c, L->in.h,
                              L->in.w, L->out_ch, L->k, L->pad, L->stride);
            break;
        case DN_RELU:
            dn_relu_forward(out, in, n);
            break;
        case DN_MAXPOOL:
            dn_maxpool_forward(out, w->argmax[l], in, B, L->in.c, L->in.h, L->in.w, L->k,
                               L->pad, L->stride);
            break;
        case DN_DROPOUT2D:
            dn_dropout2d_forward(out, in, masks[l], B, L->in.c, L->in.h * L->in.w);
            break;
        case DN_FLATTEN:
            /* NCHW is already the (B, C*H*W) row-major layout. */
            memcpy(out, in, n * sizeof *out);
            break;
        case DN_FC:
            dn_linear_forward(out, in, P + L->w_off, P + L->b_off, B, L->in.c, L->out_ch);
            break;
        case DN_LOGSOFTMAX:
            dn_logsoftmax_forward(out, in, B, L->in.c);
            break;
        }
        in = out;
    }
    w->B = B;
    w->mode = mode;
    return w->act[m->n_layers - 1];
}

double dn_model_loss(const dn_model *m, dn_work *w, const uint8_t *labels,
                     int B)
{
    if (!m || !w || !labels || B < 1 || B > w->B || !work_fits(m, w))
        return NAN;
    return dn_nll_forward(w->act[m->n_layers - 1], labels, B, dn_model_classes(m));
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */
/* ------------------------------------------------------------------------ */

void dn_model_backward(const dn_model *m, dn_work *w, const uint8_t *labels,
                       int B, float scale, float *grads)
{
    if (!m || !w || !labels || !grads || !work_fits(m, w))
        return;
    if (B < 1 || B != w->B || w->mode == DN_MODE_INFER) {
        memset(grads, 0, m->n_params * sizeof *grads);
        return;
    }
    if (w->ran_fast) {
        /* The fast forward kept only what its own backward needs, so the
         * general kernels cannot take over here. It writes every gradient
         * element, so there is nothing to clear first. */
        const float *masks[DN_MAX_LAYERS];
        for (int l = 0; l < m->n_layers; l++)
            masks[l] = m->layers[l].kind == DN_DROPOUT2D && w->mode != DN_MODE_EVAL
                           ? w->mask[l] : NULL;
        dn_fast_backward(w->fast, m, masks, w->act[m->n_layers - 1], labels, B, scale, grads);
        return;
    }
    memset(grads, 0, m->n_params * sizeof *grads);

    const float *P = m->params;
    float *dout = w->grad[0], *dinp = w->grad[1];
    int last = m->n_layers - 1;
    dn_nll_backward(dout, labels, B, dn_model_classes(m), scale);
    for (int l = last; l >= 0; l--) {
        const dn_layer *L = &m->layers[l];
        const float *in = l > 0 ? w->act[l - 1] : w->x; // (B, L->in)
        /* Nobody needs the gradient of the input image. */
        float *din = l > 0 ? dinp : NULL;
        size_t n = (size_t)B * numel(L->in);
        switch (L->kind) {
        case DN_CONV:
            dn_conv2d_backward(din, grads + L->w_off, grads + L->b_off, dout, in,
                               P + L->w_off, B, L->in.c, L->in.h, L->in.w, L->out_ch, L->k,
                               L->pad, L->stride);
            break;
        case DN_RELU:
            if (din)
                dn_relu_backward(din, dout, in, n);
            break;
        case DN_MAXPOOL:
            if (din)
                dn_maxpool_backward(din, dout, w->argmax[l], B, L->in.c, L->in.h, L->in.w,
                                    L->out.h, L->out.w);
            break;
        case DN_DROPOUT2D:
            if (din)
                dn_dropout2d_backward(din, dout, w->mode == DN_MODE_EVAL ? NULL : w->mask[l],
                                      B, L->in.c, L->in.h * L->in.w);
            break;
        case DN_FLATTEN:
            /* Same layout on both sides: the gradient passes as is. */
            continue;
        case DN_FC:
            dn_linear_backward(din, grads + L->w_off, grads + L->b_off, dout, in,
                               P + L->w_off, B, L->in.c, L->out_ch);
            break;
        case DN_LOGSOFTMAX:
            if (din)
                dn_logsoftmax_backward(din, dout, w->act[l], B, L->in.c);
            break;
        }
        float *t = dout;
        dout = dinp;
        dinp = t;
    }
}
