/*
 * explain_json.c - an explanation as the JSON answer of POST /api/predict
 * (the shape is described above dn_explanation_json and in
 * web/openapi.json).
 */
#include "digitnet_explain.h"
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

/* A number for JSON: non-finite values (a broken model) become null,
 * which JSON can carry, instead of failing the whole answer. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* v rounded to `digits` significant digits, so that the answer is not
 * padded with digits nobody can see in a picture. */
static double round_sig(double v, int digits)
{
    if (v == 0 || !isfinite(v))
        return v;
    double p = pow(10.0, digits - 1 - (int)floor(log10(fabs(v))));
    return round(v * p) / p;
}

static json_t *floats(const float *v, size_t n, int digits)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, num(digits ? round_sig(v[i], digits) : v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* x (28, 28) in 0..1 as 784 integer levels 0..255. */
static json_t *levels(const float *x)
{
    json_t *a = json_array();
    for (int i = 0; a && i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++) {
        float v = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
        if (json_array_append_new(a, json_integer(lrintf(v * 255.0f))) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *probabilities(const float *logp, int k)
{
    float p[DN_EXPLAIN_MAX_CLASSES];
    for (int c = 0; c < k; c++)
        p[c] = (float)exp((double)logp[c]);
    return floats(p, (size_t)k, 0);
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

static json_t *maps_json(const dn_explanation *e)
{
    json_t *a = json_array();
    for (int s = 0; a && s < e->n_stages; s++) {
        const dn_stage *st = &e->stages[s];
        size_t n = (size_t)st->shape.c * (size_t)st->shape.h * (size_t)st->shape.w;
        const float *v = e->maps + e->map_off[s];
        float lo, hi;
        range(v, n, &lo, &hi);
        json_t *o = json_pack("{s:s,s:o,s:[iii],s:o,s:o,s:o}", "name", st->name, "layer",
                              st->layer < 0 ? json_null() : json_integer(st->layer), "shape",
                              st->shape.c, st->shape.h, st->shape.w, "min",
                              num(round_sig(lo, 4)), "max", num(round_sig(hi, 4)), "values",
                              floats(v, n, 4));
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *timing(const dn_explanation *e)
{
    const double v[6] = {e->us_decode, e->us_preprocess, e->us_forward,
                         e->us_maps,   e->us_saliency,   e->us_total};
    static const char *const keys[6] = {"decode", "preprocess", "forward",
                                        "maps",   "saliency",   "total"};
    json_t *o = json_object();
    for (int i = 0; o && i < 6; i++)
        json_object_set_new(o, keys[i], num(round(v[i] * 10) / 10));
    return o;
}

static json_t *answer(const dn_explanation *e)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int k = e->classes;
    int bad = 0;
    bad |= json_object_set_new(o, "prediction", json_integer(e->prediction));
    bad |= json_object_set_new(o, "probability", num(e->probability));
    bad |= json_object_set_new(o, "unsure", json_boolean(e->unsure));
    bad |= json_object_set_new(o, "unsure_reason", e->unsure ? json_string(e->why) : json_null());
    bad |= json_object_set_new(o, "probabilities", probabilities(e->logp, k));
    bad |= json_object_set_new(o, "log_probabilities", floats(e->logp, (size_t)k, 0));
    bad |= json_object_set_new(o, "input", levels(e->input));
    if (e->prepped) {
        const dn_prep_info *p = &e->prep;
        bad |= json_object_set_new(
            o, "preprocess",
            json_pack("{s:b,s:o,s:[iiii],s:o,s:[ii],s:o}", "inverted", p->inverted,
                      "background", num(round_sig(p->background, 4)), "box", p->box_x,
                      p->box_y, p->box_w, p->box_h, "scale", num(round_sig(p->scale, 4)),
                      "offset", p->off_x, p->off_y, "stroke", num(round_sig(p->stroke, 3))));
    }
    if (e->has_naive) {
        float pr = (float)exp((double)e->naive_logp[e->naive_prediction]);
        bad |= json_object_set_new(
            o, "naive",
            json_pack("{s:o,s:i,s:o,s:o}", "input", levels(e->naive_input), "prediction",
                      e->naive_prediction, "probability", num(pr), "log_probabilities",
                      floats(e->naive_logp, (size_t)k, 0)));
    }
    if (e->maps)
        bad |= json_object_set_new(o, "maps", maps_json(e));
    if (e->has_saliency) {
        float lo, hi;
        range(e->saliency, DN_IMAGE_SIDE * DN_IMAGE_SIDE, &lo, &hi);
        bad |= json_object_set_new(
            o, "saliency",
            json_pack("{s:i,s:i,s:i,s:o,s:o,s:o}", "class", e->prediction, "patch", e->patch,
                      "stride", e->stride, "min", num(round_sig(lo, 4)), "max",
                      num(round_sig(hi, 4)), "values",
                      floats(e->saliency, DN_IMAGE_SIDE * DN_IMAGE_SIDE, 4)));
    }
    bad |= json_object_set_new(o, "timing_us", timing(e));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *dn_explanation_json(const dn_explanation *e, dn_error *err)
{
    json_t *o = e ? answer(e) : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7))
                : NULL;
    json_decref(o);
    if (!s)
        dn_fail(err, DN_ERR_NOMEM, "out of memory writing the answer as JSON");
    return s;
}
