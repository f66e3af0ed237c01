/*
 * explain.c - one prediction explained: the verdict with an honest
 * "unsure", the naive squash beside the preprocessed input, every stage's
 * values and the occlusion heat-map (see include/digitnet_explain.h).
 */
#include "digitnet_explain.h"
#include "internal.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SIDE = DN_IMAGE_SIDE, PIXELS = DN_IMAGE_SIDE * DN_IMAGE_SIDE };

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

/* ------------------------------------------------------------------------ */
/* Stages                                                                   */
/* ------------------------------------------------------------------------ */

int dn_model_stages(const dn_model *m, dn_stage *st, int max)
{
    int n = 0;
    dn_stage s;
    memset(&s, 0, sizeof s);
    s.layer = -1;
    snprintf(s.name, sizeof s.name, "input");
    s.shape = m->input;
    if (n < max)
        st[n] = s;
    n++;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        const dn_layer *prev = l > 0 ? &m->layers[l - 1] : NULL;
        const dn_layer *next = l + 1 < m->n_layers ? &m->layers[l + 1] : NULL;
        int show = 0;
        snprintf(s.name, sizeof s.name, "%s", L->name);
        switch (L->kind) {
        case DN_CONV:
            /* Shown after its ReLU: what the next layer receives. */
            show = !next || next->kind != DN_RELU;
            break;
        case DN_RELU:
            show = 1;
            if (prev && (prev->kind == DN_CONV || prev->kind == DN_FC))
                snprintf(s.name, sizeof s.name, "%s + ReLU", prev->name);
            break;
        case DN_MAXPOOL:
            show = 1;
            break;
        case DN_DROPOUT2D:
            break;
        case DN_FLATTEN:
            show = L->in.h * L->in.w > 1;
            break;
        case DN_FC:
            show = !next || (next->kind != DN_RELU && next->kind != DN_LOGSOFTMAX);
            break;
        case DN_LOGSOFTMAX:
            show = 1;
            snprintf(s.name, sizeof s.name, "output");
            break;
        }
        if (!show)
            continue;
        s.layer = l;
        s.shape = L->out;
        if (n < max)
            st[n] = s;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Confidence                                                               */
/* ------------------------------------------------------------------------ */

int dn_unsure(const float *logp, int classes, const float *x, char *why, size_t size)
{
    char local[8];
    if (!why || size == 0) {
        why = local;
        size = sizeof local;
    }
    why[0] = 0;
    double ink = 0;
    for (int i = 0; i < PIXELS; i++)
        ink += x[i];
    ink /= PIXELS;
    if (ink > DN_INK_MAX) {
        snprintf(why, size, "too much ink for a digit (%.0f %% of the 28x28; digits have at "
                            "most %.0f %%)", 100 * ink, 100 * DN_INK_MAX);
        return 1;
    }
    if (ink < DN_INK_MIN) {
        snprintf(why, size, "too little ink for a digit (%.1f %% of the 28x28; digits have at "
                            "least %.1f %%)", 100 * ink, 100 * DN_INK_MIN);
        return 1;
    }
    int best = dn_argmax(logp, classes);
    double p = exp((double)logp[best]);
    if (p < DN_SURE_PROB) {
        snprintf(why, size, "the best class has only %.0f %% (sure means at least %.0f %%)",
                 100 * p, 100 * DN_SURE_PROB);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Occlusion                                                                */
/* ------------------------------------------------------------------------ */

static int model_fits(const dn_model *m)
{
    return m && m->input.c == 1 && m->input.h == SIDE && m->input.w == SIDE;
}

/* log p(cls) - max over the other classes of log p: how many nats more
 * likely cls is than its closest rival. For a sure answer log p(cls) is
 * within 1e-7 of 0 whatever is blanked, so its own drop would show only
 * the one square that breaks it; the margin falls in proportion to what
 * each square contributed. */
static float margin(const float *lp, int k, int cls)
{
    float rival = -INFINITY;
    for (int j = 0; j < k; j++)
        if (j != cls && lp[j] > rival)
            rival = lp[j];
    return k > 1 ? lp[cls] - rival : lp[cls];
}

/* Patch origins along an axis: every stride pixels, and one flush with the
 * far edge when the steps do not land on it, so every pixel is covered. */
static int origins(int patch, int stride, int *o)
{
    int n = 0;
    for (int p = 0; p + patch <= SIDE; p += stride)
        o[n++] = p;
    if (o[n - 1] + patch < SIDE)
        o[n++] = SIDE - patch;
    return n;
}

dn_status dn_occlusion(const dn_model *m, dn_work *w, const float *x, int cls, int patch,
                       int stride, float *heat, dn_error *err)
{
    if (!model_fits(m) || !w || !x || !heat)
        return dn_fail(err, DN_ERR_ARG, "occlusion: needs a model of 1x%dx%d inputs, a work, "
                                        "an input and an output", SIDE, SIDE);
    int k = dn_model_classes(m);
    if (patch < 1 || patch > SIDE || stride < 1 || stride > SIDE || cls < 0 || cls >= k)
        return dn_fail(err, DN_ERR_ARG, "occlusion: patch %d, stride %d (1..%d) and class %d "
                                        "(0..%d) out of range", patch, stride, SIDE, cls, k - 1);
    int B = dn_work_max_batch(w);
    float *xs = malloc((size_t)B * PIXELS * sizeof *xs); /* (B, 1, 28, 28) */
    if (!xs)
        return dn_fail(err, DN_ERR_NOMEM, "occlusion: out of memory");
    float blank = (0.0f - m->mean) / m->std;
    float base[PIXELS]; /* (1, 1, 28, 28) normalised */
    memcpy(base, x, sizeof base);
    dn_image_normalize(base, PIXELS, m->mean, m->std);
    const float *lp = dn_model_forward(m, w, base, 1, DN_MODE_INFER, NULL);
    if (!lp) {
        free(xs);
        return dn_fail(err, DN_ERR_ARG, "occlusion: the work does not fit the model");
    }
    float before = margin(lp, k, cls);

    int ox[SIDE + 1], n = origins(patch, stride, ox);
    float sum[PIXELS] = {0}, count[PIXELS] = {0};
    /* The squares with ink, in batches of B; the others change nothing. */
    int todo[(SIDE + 1) * (SIDE + 1)], nt = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int any = 0;
            for (int y = ox[i]; y < ox[i] + patch && !any; y++)
                for (int xx = ox[j]; xx < ox[j] + patch; xx++)
                    any |= x[y * SIDE + xx] > 0;
            if (any)
                todo[nt++] = i * n + j;
            for (int y = ox[i]; y < ox[i] + patch; y++)
                for (int xx = ox[j]; xx < ox[j] + patch; xx++)
                    count[y * SIDE + xx] += 1;
        }
    for (int t0 = 0; t0 < nt; t0 += B) {
        int b = nt - t0 < B ? nt - t0 : B;
        for (int q = 0; q < b; q++) {
            float *c = xs + (size_t)q * PIXELS;
            int i = todo[t0 + q] / n, j = todo[t0 + q] % n;
            memcpy(c, base, sizeof base);
            for (int y = ox[i]; y < ox[i] + patch; y++)
                for (int xx = ox[j]; xx < ox[j] + patch; xx++)
                    c[y * SIDE + xx] = blank;
        }
        lp = dn_model_forward(m, w, xs, b, DN_MODE_INFER, NULL);
        for (int q = 0; q < b; q++) {
            float drop = before - margin(lp + (size_t)q * (size_t)k, k, cls);
            int i = todo[t0 + q] / n, j = todo[t0 + q] % n;
            for (int y = ox[i]; y < ox[i] + patch; y++)
                for (int xx = ox[j]; xx < ox[j] + patch; xx++)
                    sum[y * SIDE + xx] += drop;
        }
    }
    for (int p = 0; p < PIXELS; p++)
        heat[p] = count[p] > 0 ? sum[p] / count[p] : 0.0f;
    free(xs);
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Explanations                                                             */
/* ------------------------------------------------------------------------ */

static dn_status check_model(const dn_model *m, dn_work *w, dn_error *err)
{
    if (!model_fits(m) || !w)
        return dn_fail(err, DN_ERR_SHAPE, "explain: the model must take 1x%dx%d inputs",
                       SIDE, SIDE);
    if (dn_model_classes(m) > DN_EXPLAIN_MAX_CLASSES)
        return dn_fail(err, DN_ERR_SHAPE, "explain: the model has %d classes, at most %d are "
                                          "explained", dn_model_classes(m),
                       DN_EXPLAIN_MAX_CLASSES);
    return DN_OK;
}

static void verdict(dn_explanation *e)
{
    e->prediction = dn_argmax(e->logp, e->classes);
    e->probability = (float)exp((double)e->logp[e->prediction]);
    e->unsure = dn_unsure(e->logp, e->classes, e->input, e->why, sizeof e->why);
}

/* Every stage's values for e->input, from a pass of the reference
 * kernels, which keep each layer's output. */
static dn_status add_maps(const dn_model *m, dn_work *w, dn_explanation *e, dn_error *err)
{
    double t = now_us();
    e->n_stages = dn_model_stages(m, e->stages, DN_MAX_LAYERS + 1);
    size_t total = 0;
    for (int s = 0; s < e->n_stages; s++) {
        e->map_off[s] = total;
        total += (size_t)e->stages[s].shape.c * (size_t)e->stages[s].shape.h *
                 (size_t)e->stages[s].shape.w;
    }
    e->maps = malloc(total * sizeof *e->maps);
    if (!e->maps)
        return dn_fail(err, DN_ERR_NOMEM, "explain: out of memory for the feature maps");
    e->maps_len = total;
    float x[PIXELS]; /* (1, 1, 28, 28) */
    memcpy(x, e->input, sizeof x);
    dn_image_normalize(x, PIXELS, m->mean, m->std);
    dn_work_set_reference(w, 1);
    const float *lp = dn_model_forward(m, w, x, 1, DN_MODE_EVAL, NULL);
    if (lp) {
        for (int s = 0; s < e->n_stages; s++) {
            size_t len = (size_t)e->stages[s].shape.c * (size_t)e->stages[s].shape.h *
                         (size_t)e->stages[s].shape.w;
            const float *src = e->stages[s].layer < 0 ? e->input
                                                      : dn_work_act(w, e->stages[s].layer);
            memcpy(e->maps + e->map_off[s], src, len * sizeof *src);
        }
    }
    dn_work_set_reference(w, 0);
    if (!lp)
        return dn_fail(err, DN_ERR_ARG, "explain: the work does not fit the model");
    e->us_maps = now_us() - t;
    return DN_OK;
}

static dn_status add_saliency(const dn_model *m, dn_work *w, dn_explanation *e, dn_error *err)
{
    double t = now_us();
    e->patch = DN_OCCLUDE_PATCH;
    e->stride = DN_OCCLUDE_STRIDE;
    dn_status st = dn_occlusion(m, w, e->input, e->prediction, e->patch, e->stride,
                                e->saliency, err);
    e->has_saliency = st == DN_OK;
    e->us_saliency = now_us() - t;
    return st;
}

static dn_status add_extras(const dn_model *m, dn_work *w, dn_explanation *e, dn_error *err)
{
    dn_status st = DN_OK;
    if (e->flags & DN_EXPLAIN_MAPS)
        st = add_maps(m, w, e, err);
    if (st == DN_OK && (e->flags & DN_EXPLAIN_SALIENCY))
        st = add_saliency(m, w, e, err);
    return st;
}

/* The forward pass of e->input (and of e->naive_input when has_naive). */
static dn_status forward(const dn_model *m, dn_work *w, dn_explanation *e, dn_error *err)
{
    double t = now_us();
    int k = dn_model_classes(m), two = e->has_naive;
    float x[2 * PIXELS]; /* (2, 1, 28, 28) */
    memcpy(x, e->input, PIXELS * sizeof *x);
    if (two)
        memcpy(x + PIXELS, e->naive_input, PIXELS * sizeof *x);
    dn_image_normalize(x, (size_t)(1 + two) * PIXELS, m->mean, m->std);
    int one_pass = dn_work_max_batch(w) >= 1 + two;
    const float *lp = dn_model_forward(m, w, x, one_pass ? 1 + two : 1, DN_MODE_INFER, NULL);
    if (!lp)
        return dn_fail(err, DN_ERR_ARG, "explain: the work does not fit the model");
    memcpy(e->logp, lp, (size_t)k * sizeof *lp);
    if (two) {
        if (!one_pass && !(lp = dn_model_forward(m, w, x + PIXELS, 1, DN_MODE_INFER, NULL)))
            return dn_fail(err, DN_ERR_ARG, "explain: the work does not fit the model");
        memcpy(e->naive_logp, lp + (one_pass ? k : 0), (size_t)k * sizeof *lp);
        e->naive_prediction = dn_argmax(e->naive_logp, k);
    }
    e->us_forward = now_us() - t;
    return DN_OK;
}

static void start(dn_explanation *e, const dn_model *m, int flags)
{
    memset(e, 0, sizeof *e);
    e->flags = flags;
    e->classes = m ? dn_model_classes(m) : 0;
}

dn_status dn_explain_image(const dn_model *m, dn_work *w, dn_prep *prep, const dn_image *img,
                           int flags, dn_explanation *e, dn_error *err)
{
    start(e, m, flags);
    dn_status st = check_model(m, w, err);
    if (st != DN_OK)
        return st;
    double t = now_us();
    if (flags & DN_EXPLAIN_RAW) {
        st = dn_image_raw(img, e->input, err);
    } else {
        st = prep ? dn_prep_image(prep, img, e->input, &e->prep, err)
                  : dn_image_preprocess(img, e->input, &e->prep, err);
        e->prepped = st == DN_OK;
        if (st == DN_OK && (flags & DN_EXPLAIN_NAIVE)) {
            /* What resizing the whole picture gives, ink made white as
             * the preprocessing found it. */
            st = dn_image_raw(img, e->naive_input, err);
            if (st == DN_OK && e->prep.inverted)
                for (int i = 0; i < PIXELS; i++)
                    e->naive_input[i] = 1.0f - e->naive_input[i];
            e->has_naive = st == DN_OK;
        }
    }
    e->us_preprocess = now_us() - t;
    if (st == DN_OK)
        st = forward(m, w, e, err);
    if (st != DN_OK)
        return st;
    verdict(e);
    return add_extras(m, w, e, err);
}

dn_status dn_explain_input(const dn_model *m, dn_work *w, const float *x, int flags,
                           dn_explanation *e, dn_error *err)
{
    start(e, m, flags & ~(DN_EXPLAIN_NAIVE | DN_EXPLAIN_RAW));
    dn_status st = check_model(m, w, err);
    if (st != DN_OK)
        return st;
    if (!x)
        return dn_fail(err, DN_ERR_ARG, "explain: no input");
    for (int i = 0; i < PIXELS; i++)
        e->input[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
    if ((st = forward(m, w, e, err)) != DN_OK)
        return st;
    verdict(e);
    return add_extras(m, w, e, err);
}

dn_status dn_explain_batch(const dn_model *m, dn_work *w, const float *xs, int B, int flags,
                           dn_explanation *e, dn_error *err)
{
    if (B < 1 || !xs || !e)
        return dn_fail(err, DN_ERR_ARG, "explain: an empty batch");
    flags &= ~(DN_EXPLAIN_NAIVE | DN_EXPLAIN_RAW);
    for (int b = 0; b < B; b++)
        start(&e[b], m, flags);
    dn_status st = check_model(m, w, err);
    if (st != DN_OK)
        return st;
    int k = dn_model_classes(m), chunk = dn_work_max_batch(w);
    float *x = malloc((size_t)chunk * PIXELS * sizeof *x); /* (chunk, 1, 28, 28) */
    if (!x)
        return dn_fail(err, DN_ERR_NOMEM, "explain: out of memory for a batch of %d", B);
    double t = now_us();
    for (int b0 = 0; b0 < B && st == DN_OK; b0 += chunk) {
        int n = B - b0 < chunk ? B - b0 : chunk;
        for (int b = 0; b < n; b++) {
            float *in = e[b0 + b].input;
            const float *src = xs + (size_t)(b0 + b) * PIXELS;
            for (int i = 0; i < PIXELS; i++)
                in[i] = src[i] < 0 ? 0 : src[i] > 1 ? 1 : src[i];
            memcpy(x + (size_t)b * PIXELS, in, PIXELS * sizeof *x);
        }
        dn_image_normalize(x, (size_t)n * PIXELS, m->mean, m->std);
        const float *lp = dn_model_forward(m, w, x, n, DN_MODE_INFER, NULL);
        if (!lp) {
            st = dn_fail(err, DN_ERR_ARG, "explain: the work does not fit the model");
            break;
        }
        for (int b = 0; b < n; b++) {
            memcpy(e[b0 + b].logp, lp + (size_t)b * (size_t)k, (size_t)k * sizeof *lp);
            verdict(&e[b0 + b]);
        }
    }
    free(x);
    double per = (now_us() - t) / B;
    for (int b = 0; b < B && st == DN_OK; b++) {
        e[b].us_forward = per;
        st = add_extras(m, w, &e[b], err);
    }
    return st;
}

void dn_explanation_free(dn_explanation *e)
{
    if (!e)
        return;
    free(e->maps);
    e->maps = NULL;
    e->maps_len = 0;
}
