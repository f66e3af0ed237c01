/*
 * explain_json.c - the JSON answers of the page's back-ends: an
 * explanation as POST /api/predict gives it, a model as GET /api/model
 * does, and a test image as GET /api/sample does (the shapes are described in include/digitnet_explain.h and in
 * web/openapi.json).
 *
 * Written straight into one growing buffer rather than built as a tree of
 * JSON values: the answer is made for every request the server takes, and
 * building 800 values to print them cost a fifth of a request's time
 * (profiled under wrk). Every string written is either a fixed key or text
 * escaped here; the tests read every answer back with jansson.
 */
#include "digitnet_explain.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *s;
    size_t len, cap;
    int oom;
} out;

/* Room for n more bytes and the NUL; 0 when out of memory. */
static int reserve(out *o, size_t n)
{
    if (o->oom)
        return 0;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->s, cap);
        if (!p) {
            o->oom = 1;
            return 0;
        }
        o->s = p;
        o->cap = cap;
    }
    return 1;
}

static void put(out *o, const char *s, size_t n)
{
    if (!reserve(o, n))
        return;
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = 0;
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_int(out *o, long v)
{
    char b[24];
    int n = sizeof b;
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    do {
        b[--n] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (v < 0)
        b[--n] = '-';
    put(o, b + n, sizeof b - (size_t)n);
}

/* v with `digits` significant digits; null for a non-finite value (a
 * broken model), which JSON cannot carry as a number. */
static void put_num(out *o, double v, int digits)
{
    if (!isfinite(v)) {
        puts_(o, "null");
        return;
    }
    char b[DN_FORMAT_MAX];
    put(o, b, (size_t)dn_format_g(b, v, digits));
}

/* A JSON string of s, escaped. */
static void put_str(out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t plain = 0;
        while (s[plain] && s[plain] != '"' && s[plain] != '\\' &&
               (unsigned char)s[plain] >= 0x20)
            plain++;
        if (plain) {
            /* a stretch that needs no escape, in one piece */
            put(o, s, plain);
            s += plain - 1;
        } else if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(o, e, 6);
        }
    }
    put(o, "\"", 1);
}

static void key(out *o, const char *k)
{
    /* Every key follows a value or the opening brace. */
    if (o->len && o->s[o->len - 1] != '{')
        put(o, ",", 1);
    put_str(o, k);
    put(o, ":", 1);
}

static void floats(out *o, const float *v, size_t n, int digits)
{
    put(o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(o, ",", 1);
        put_num(o, v[i], digits);
    }
    put(o, "]", 1);
}

/* The 784 levels 0..255 of x (0..1), written straight into the buffer:
 * they are most of every answer. */
static void levels(out *o, const float *x)
{
    enum { N = DN_IMAGE_SIDE * DN_IMAGE_SIDE };
    if (!reserve(o, 4 * N + 2))
        return;
    char *b = o->s + o->len;
    *b++ = '[';
    for (int i = 0; i < N; i++) {
        float v = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
        /* lrintf(v * 255) without the library call: adding and taking away
         * 1.5 * 2^23 rounds to a whole number, half to even, as lrintf
         * does in the default rounding mode */
        const float big = 12582912.0f;
        int l = (int)((v * 255.0f + big) - big);
        if (l >= 100)
            *b++ = (char)('0' + l / 100);
        if (l >= 10)
            *b++ = (char)('0' + l / 10 % 10);
        *b++ = (char)('0' + l % 10);
        *b++ = ',';
    }
    b[-1] = ']';
    *b = 0;
    o->len = (size_t)(b - o->s);
}

static void probabilities(out *o, const float *logp, int k)
{
    float p[DN_EXPLAIN_MAX_CLASSES];
    for (int c = 0; c < k; c++)
        p[c] = (float)exp((double)logp[c]);
    floats(o, p, (size_t)k, 7);
}

static void range(const float *v, size_t n, float *lo, float *hi)
{
    float a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        a = v[i] < a ? v[i] : a;
        b = v[i] > b ? v[i] : b;
    }
    *lo = a <= b ? a : 0;
    *hi = a <= b ? b : 0;
}

static void preprocess(out *o, const dn_prep_info *p)
{
    put(o, "{", 1);
    key(o, "inverted");
    puts_(o, p->inverted ? "true" : "false");
    key(o, "background");
    put_num(o, p->background, 4);
    key(o, "box");
    put(o, "[", 1);
    const int box[4] = {p->box_x, p->box_y, p->box_w, p->box_h};
    for (int i = 0; i < 4; i++) {
        if (i)
            put(o, ",", 1);
        put_int(o, box[i]);
    }
    put(o, "]", 1);
    key(o, "scale");
    put_num(o, p->scale, 4);
    key(o, "offset");
    put(o, "[", 1);
    put_int(o, p->off_x);
    put(o, ",", 1);
    put_int(o, p->off_y);
    put(o, "]", 1);
    key(o, "stroke");
    put_num(o, p->stroke, 3);
    put(o, "}", 1);
}

static void naive(out *o, const dn_explanation *e)
{
    put(o, "{", 1);
    key(o, "input");
    levels(o, e->naive_input);
    key(o, "prediction");
    put_int(o, e->naive_prediction);
    key(o, "probability");
    put_num(o, exp((double)e->naive_logp[e->naive_prediction]), 7);
    key(o, "log_probabilities");
    floats(o, e->naive_logp, (size_t)e->classes, 7);
    put(o, "}", 1);
}

static void maps(out *o, const dn_explanation *e)
{
    put(o, "[", 1);
    for (int s = 0; s < e->n_stages; s++) {
        const dn_stage *st = &e->stages[s];
        size_t n = (size_t)st->shape.c * (size_t)st->shape.h * (size_t)st->shape.w;
        const float *v = e->maps + e->map_off[s];
        float lo, hi;
        range(v, n, &lo, &hi);
        put(o, s ? ",{" : "{", s ? 2 : 1);
        key(o, "name");
        put_str(o, st->name);
        key(o, "layer");
        if (st->layer < 0)
            puts_(o, "null");
        else
            put_int(o, st->layer);
        key(o, "shape");
        put(o, "[", 1);
        put_int(o, st->shape.c);
        put(o, ",", 1);
        put_int(o, st->shape.h);
        put(o, ",", 1);
        put_int(o, st->shape.w);
        put(o, "]", 1);
        key(o, "min");
        put_num(o, lo, 4);
        key(o, "max");
        put_num(o, hi, 4);
        key(o, "values");
        floats(o, v, n, 4);
        put(o, "}", 1);
    }
    put(o, "]", 1);
}

static void saliency(out *o, const dn_explanation *e)
{
    float lo, hi;
    range(e->saliency, DN_IMAGE_SIDE * DN_IMAGE_SIDE, &lo, &hi);
    put(o, "{", 1);
    key(o, "class");
    put_int(o, e->prediction);
    key(o, "patch");
    put_int(o, e->patch);
    key(o, "stride");
    put_int(o, e->stride);
    key(o, "min");
    put_num(o, lo, 4);
    key(o, "max");
    put_num(o, hi, 4);
    key(o, "values");
    floats(o, e->saliency, DN_IMAGE_SIDE * DN_IMAGE_SIDE, 4);
    put(o, "}", 1);
}

static void timing(out *o, const dn_explanation *e)
{
    const double v[6] = {e->us_decode, e->us_preprocess, e->us_forward,
                         e->us_maps,   e->us_saliency,   e->us_total};
    static const char *const keys[6] = {"decode", "preprocess", "forward",
                                        "maps",   "saliency",   "total"};
    put(o, "{", 1);
    for (int i = 0; i < 6; i++) {
        key(o, keys[i]);
        /* Tenths of a microsecond, as plain decimals. */
        char b[DN_FORMAT_MAX];
        if (isfinite(v[i]))
            put(o, b, (size_t)dn_format_f(b, v[i], 1));
        else
            puts_(o, "null");
    }
    put(o, "}", 1);
}

char *dn_explanation_json(const dn_explanation *e, dn_error *err)
{
    out o = {0};
    if (!e) {
        dn_fail(err, DN_ERR_ARG, "dn_explanation_json: no explanation");
        return NULL;
    }
    int k = e->classes;
    put(&o, "{", 1);
    key(&o, "prediction");
    put_int(&o, e->prediction);
    key(&o, "probability");
    put_num(&o, e->probability, 7);
    key(&o, "unsure");
    puts_(&o, e->unsure ? "true" : "false");
    key(&o, "unsure_reason");
    if (e->unsure)
        put_str(&o, e->why);
    else
        puts_(&o, "null");
    key(&o, "probabilities");
    probabilities(&o, e->logp, k);
    key(&o, "log_probabilities");
    floats(&o, e->logp, (size_t)k, 7);
    key(&o, "input");
    levels(&o, e->input);
    if (e->prepped) {
        key(&o, "preprocess");
        preprocess(&o, &e->prep);
    }
    if (e->has_naive) {
        key(&o, "naive");
        naive(&o, e);
    }
    if (e->maps) {
        key(&o, "maps");
        maps(&o, e);
    }
    if (e->has_saliency) {
        key(&o, "saliency");
        saliency(&o, e);
    }
    key(&o, "timing_us");
    timing(&o, e);
    put(&o, "}", 1);
    if (o.oom) {
        free(o.s);
        dn_fail(err, DN_ERR_NOMEM, "out of memory writing the answer as JSON");
        return NULL;
    }
    return o.s;
}

/* ------------------------------------------------------------------------ */
/* The model                                                                */
/* ------------------------------------------------------------------------ */

static void shape(out *o, dn_shape s)
{
    put(o, "[", 1);
    put_int(o, s.c);
    put(o, ",", 1);
    put_int(o, s.h);
    put(o, ",", 1);
    put_int(o, s.w);
    put(o, "]", 1);
}

/* Layer l's own text in the canonical spec ("conv 8 k3 p1 s1"). */
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
    snprintf(buf, size, "%.*s", (int)strcspn(p, ","), p);
}

static void layers(out *o, const dn_model *m)
{
    put(o, "[", 1);
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        char spec[128];
        layer_spec(m, l, spec, sizeof spec);
        put(o, l ? ",{" : "{", l ? 2 : 1);
        key(o, "name");
        put_str(o, L->name);
        key(o, "spec");
        put_str(o, spec);
        key(o, "input");
        shape(o, L->in);
        key(o, "output");
        shape(o, L->out);
        key(o, "parameters");
        put_int(o, (long)(L->w_len + L->b_len));
        key(o, "macs");
        put_int(o, (long)L->macs);
        put(o, "}", 1);
    }
    put(o, "]", 1);
}

static void stages(out *o, const dn_model *m)
{
    dn_stage st[DN_MAX_LAYERS + 1];
    int n = dn_model_stages(m, st, DN_MAX_LAYERS + 1);
    put(o, "[", 1);
    for (int s = 0; s < n; s++) {
        put(o, s ? ",{" : "{", s ? 2 : 1);
        key(o, "name");
        put_str(o, st[s].name);
        key(o, "layer");
        if (st[s].layer < 0)
            puts_(o, "null");
        else
            put_int(o, st[s].layer);
        key(o, "shape");
        shape(o, st[s].shape);
        put(o, "}", 1);
    }
    put(o, "]", 1);
}

char *dn_model_json(const dn_model *m, const char *file, size_t test_correct, size_t test_n,
                    const char *provenance, dn_error *err)
{
    if (!m) {
        dn_fail(err, DN_ERR_ARG, "dn_model_json: no model");
        return NULL;
    }
    out o = {0};
    int k = dn_model_classes(m);
    int64_t macs = 0;
    for (int l = 0; l < m->n_layers; l++)
        macs += m->layers[l].macs;
    put(&o, "{", 1);
    key(&o, "file");
    put_str(&o, file ? file : "");
    key(&o, "spec");
    put_str(&o, m->spec);
    key(&o, "dataset");
    put_str(&o, m->dataset);
    key(&o, "input");
    shape(&o, m->input);
    key(&o, "classes");
    put_int(&o, k);
    key(&o, "class_names");
    const char *const *names = dn_class_names(m->dataset);
    put(&o, "[", 1);
    for (int c = 0; c < k; c++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", c);
        if (c)
            put(&o, ",", 1);
        put_str(&o, names && c < 10 ? names[c] : buf);
    }
    put(&o, "]", 1);
    key(&o, "parameters");
    put_int(&o, (long)m->n_params);
    key(&o, "macs");
    put_int(&o, (long)macs);
    key(&o, "mean");
    put_num(&o, m->mean, 7);
    key(&o, "std");
    put_num(&o, m->std, 7);
    key(&o, "layers");
    layers(&o, m);
    key(&o, "stages");
    stages(&o, m);
    key(&o, "test");
    if (test_n > 0) {
        double se, acc = dn_accuracy(test_correct, test_n, &se);
        put(&o, "{", 1);
        key(&o, "accuracy");
        put_num(&o, acc, 7);
        key(&o, "standard_error");
        put_num(&o, se, 7);
        key(&o, "images");
        put_int(&o, (long)test_n);
        put(&o, "}", 1);
    } else {
        puts_(&o, "null");
    }
    key(&o, "provenance");
    if (provenance)
        put_str(&o, provenance);
    else
        puts_(&o, "null");
    put(&o, "}", 1);
    if (o.oom) {
        free(o.s);
        dn_fail(err, DN_ERR_NOMEM, "out of memory writing the model as JSON");
        return NULL;
    }
    return o.s;
}

char *dn_sample_json(const dn_dataset *ds, size_t index, dn_error *err)
{
    if (!ds || index >= ds->n) {
        dn_fail(err, DN_ERR_ARG, "dn_sample_json: no test image %zu", index);
        return NULL;
    }
    enum { PX = DN_IMAGE_SIDE * DN_IMAGE_SIDE };
    const uint8_t *px = ds->images + index * PX;
    const char *const *names = dn_class_names(ds->name);
    int label = ds->labels[index];
    out o = {0};
    put(&o, "{", 1);
    key(&o, "dataset");
    put_str(&o, ds->name);
    key(&o, "index");
    put_int(&o, (long)index);
    key(&o, "count");
    put_int(&o, (long)ds->n);
    key(&o, "label");
    put_int(&o, label);
    key(&o, "class");
    put_str(&o, names ? names[label] : "");
    key(&o, "pixels");
    put(&o, "[", 1);
    for (int i = 0; i < PX; i++) {
        if (i)
            put(&o, ",", 1);
        put_int(&o, px[i]);
    }
    put(&o, "]}", 2);
    if (o.oom) {
        free(o.s);
        dn_fail(err, DN_ERR_NOMEM, "out of memory writing a test image as JSON");
        return NULL;
    }
    return o.s;
}
