/*
 * serve_api.c - the routes of `digitnet serve`: each turns a complete
 * request into a reply, JSON for the API (errors too: {"error": "..."}),
 * the embedded files for the page. web/openapi.json describes them.
 */
#include "serve.h"
#include "digitnet_picture.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { PIXELS = DN_IMAGE_SIDE * DN_IMAGE_SIDE };

static const struct {
    const char *path, *name, *method;
} routes[ROUTE_COUNT] = {
    [ROUTE_PAGE] = {NULL, "page", "GET"},
    [ROUTE_PREDICT] = {"/api/predict", "/api/predict", "POST"},
    [ROUTE_BATCH] = {"/api/predict/batch", "/api/predict/batch", "POST"},
    [ROUTE_MODEL] = {"/api/model", "/api/model", "GET"},
    [ROUTE_SAMPLE] = {"/api/sample", "/api/sample", "GET"},
    [ROUTE_OPENAPI] = {"/api/openapi.json", "/api/openapi.json", "GET"},
    [ROUTE_HEALTH] = {"/healthz", "/healthz", "GET"},
    [ROUTE_METRICS] = {"/metrics", "/metrics", "GET"},
    [ROUTE_NONE] = {NULL, "none", NULL},
};

serve_route serve_route_of(const char *path)
{
    for (int r = 0; r < ROUTE_COUNT; r++)
        if (routes[r].path && !strcmp(path, routes[r].path))
            return (serve_route)r;
    return serve_asset_find(path) ? ROUTE_PAGE : ROUTE_NONE;
}

const char *serve_route_name(serve_route r)
{
    return routes[r].name;
}

const char *serve_route_method(serve_route r)
{
    return routes[r].method;
}

const serve_asset *serve_asset_find(const char *path)
{
    if (!strcmp(path, "/"))
        path = "/index.html";
    for (size_t i = 0; i < serve_n_assets; i++)
        if (!strcmp(path, serve_assets[i].path))
            return &serve_assets[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

static const char mime_json[] = "application/json";

static void reply_json(serve_reply *rep, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7))
                : NULL;
    json_decref(o);
    if (!s) {
        serve_error(rep, 500, "out of memory writing the answer");
        return;
    }
    rep->status = status;
    rep->type = mime_json;
    rep->body = s;
    rep->len = strlen(s);
    rep->is_static = 0;
}

void serve_error(serve_reply *rep, int status, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    rep->status = status;
    rep->type = mime_json;
    rep->is_static = s == NULL;
    /* Out of memory even for this: a fixed answer. */
    rep->body = s ? s : (char *)"{\"error\":\"out of memory\"}";
    rep->len = strlen(rep->body);
}

static void reply_text(serve_reply *rep, int status, const char *type, char *body, size_t len)
{
    rep->status = status;
    rep->type = type;
    rep->body = body;
    rep->len = len;
    rep->is_static = 0;
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

/* Decodes an encoded picture into img, whose pixels belong to prep until
 * its next picture; 0, or -1 with the reply set. */
static int decode(dn_prep *prep, const serve_input *in, const char *name, dn_image *img,
                  serve_reply *rep)
{
    dn_error err = {0};
    if (dn_prep_load_memory(prep, in->data, in->size, name, img, &err) != DN_OK) {
        serve_error(rep, 400, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* The status for an explanation that failed: no digit is the client's
 * picture (422), a full memory or a broken model is ours. */
static int explain_status(const dn_error *err)
{
    return err->status == DN_ERR_FORMAT ? 422 : 500;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

/* Whether route r takes a body of media type `type`: pictures and JSON
 * for one prediction, JSON for a batch. 0, or -1 with a 415 in rep. */
static int body_type_ok(serve_route r, const char *content_type, serve_reply *rep)
{
    char type[64];
    serve_media_type(content_type, type, sizeof type);
    if (!strcmp(type, "application/json"))
        return 0;
    if (r == ROUTE_PREDICT && (!strncmp(type, "image/", 6) ||
                               !strcmp(type, "application/octet-stream")))
        return 0;
    if (r == ROUTE_BATCH)
        serve_error(rep, 415, "a batch is application/json (an array of {\"pixels\": [...]} "
                              "or {\"image\": \"data:...\"} objects), not %s%s%s",
                    type[0] ? "'" : "", type[0] ? type : "a body without Content-Type",
                    type[0] ? "'" : "");
    else
        serve_error(rep, 415, "Content-Type %s%s%s is not taken here: send image/png, "
                              "image/jpeg (any picture the decoder reads) or application/json",
                    type[0] ? "'" : "", type[0] ? type : "missing", type[0] ? "'" : "");
    return -1;
}

/* The request's JSON body, or NULL with a 400 in rep. */
static json_t *body_json(const serve_request *req, serve_reply *rep)
{
    json_error_t jerr;
    json_t *o = json_loadb(req->body, req->len, 0, &jerr);
    if (!o)
        serve_error(rep, 400, "bad JSON at line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    return o;
}

/* The one input of POST /api/predict: a picture, or JSON. 0, or -1 with
 * the reply set. */
static int predict_input(const serve_request *req, serve_input *in, serve_reply *rep)
{
    char type[64], msg[512];
    memset(in, 0, sizeof *in);
    serve_media_type(req->content_type, type, sizeof type);
    if (strcmp(type, "application/json") != 0) {
        if (body_type_ok(ROUTE_PREDICT, req->content_type, rep) != 0)
            return -1;
        in->data = (const unsigned char *)req->body;
        in->size = req->len;
        return 0;
    }
    json_t *o = body_json(req, rep);
    if (!o)
        return -1;
    int bad = serve_input_json(o, in, msg, sizeof msg);
    json_decref(o);
    if (bad)
        serve_error(rep, 400, "%s", msg);
    return bad;
}

static void predict(const serve_request *req, serve_reply *rep)
{
    double t0 = now_us();
    int flags;
    char msg[512];
    serve_input in;
    if (serve_query_flags(req, &flags, msg, sizeof msg) != 0) {
        serve_error(rep, 400, "%s", msg);
        return;
    }
    if (predict_input(req, &in, rep) != 0)
        return;
    serve_model *sm = serve_model_acquire();
    dn_work *w = sm ? serve_work(sm, flags & DN_EXPLAIN_SALIENCY) : NULL;
    dn_prep *prep = serve_prep();
    dn_explanation e;
    memset(&e, 0, sizeof e);
    dn_error err = {0};
    double decode_us = 0;
    dn_status st = DN_ERR_NOMEM;
    if (!w || !prep) {
        serve_error(rep, 503, "no model workspace (out of memory)");
    } else if (in.is_pixels) {
        st = dn_explain_input(sm->m, w, in.x, flags, &e, &err);
    } else {
        dn_image img;
        double td = now_us();
        if (decode(prep, &in, "body", &img, rep) == 0) {
            decode_us = now_us() - td;
            st = dn_explain_image(sm->m, w, prep, &img, flags, &e, &err);
            dn_image_free(&img);
        } else {
            st = DN_ERR_FORMAT;
            err.status = DN_OK; /* the reply is set */
        }
    }
    if (st != DN_OK && err.status != DN_OK) {
        serve_error(rep, explain_status(&err), "%s", err.msg);
    } else if (st == DN_OK) {
        e.us_decode = decode_us;
        e.us_total = now_us() - t0;
        char *s = dn_explanation_json(&e, &err);
        if (!s)
            serve_error(rep, 500, "%s", err.msg);
        else
            reply_text(rep, 200, mime_json, s, strlen(s));
        serve_metrics_predictions(1);
    }
    dn_explanation_free(&e);
    serve_input_free(&in);
    serve_model_release(sm);
}

/* What a batch keeps of each input besides its 28 x 28. */
typedef struct batch_item {
    int prepped;
    dn_prep_info prep;
    double decode_us;
} batch_item;

/* Each input of the array to its 28 x 28 in xs (n, 28, 28). 0, or -1 with
 * the reply set (naming the item). */
static int batch_inputs(json_t *arr, int flags, float *xs, batch_item *items,
                        serve_reply *rep)
{
    dn_prep *prep = serve_prep();
    if (!prep) {
        serve_error(rep, 503, "out of memory for the pictures");
        return -1;
    }
    char msg[512], name[32];
    dn_error err = {0};
    for (size_t i = 0; i < json_array_size(arr); i++) {
        serve_input in;
        float *x = xs + i * PIXELS;
        if (serve_input_json(json_array_get(arr, i), &in, msg, sizeof msg) != 0) {
            serve_error(rep, 400, "item %zu: %s", i, msg);
            return -1;
        }
        if (in.is_pixels) {
            memcpy(x, in.x, sizeof in.x);
            continue;
        }
        double td = now_us();
        dn_image img;
        snprintf(name, sizeof name, "item %zu", i);
        int bad = decode(prep, &in, name, &img, rep);
        serve_input_free(&in);
        if (bad)
            return -1;
        items[i].decode_us = now_us() - td;
        items[i].prepped = !(flags & DN_EXPLAIN_RAW);
        dn_status st = items[i].prepped ? dn_prep_image(prep, &img, x, &items[i].prep, &err)
                                        : dn_image_raw(&img, x, &err);
        dn_image_free(&img);
        if (st != DN_OK) {
            serve_error(rep, explain_status(&err), "%s", err.msg);
            return -1;
        }
    }
    return 0;
}

/* The answers as one JSON array into rep. */
static void batch_answer(dn_explanation *e, const batch_item *items, size_t n, double t0,
                         serve_reply *rep)
{
    dn_text t = {0};
    dn_error err = {0};
    double total = now_us() - t0;
    dn_text_printf(&t, "[");
    for (size_t i = 0; i < n && !t.oom; i++) {
        e[i].prepped = items[i].prepped;
        e[i].prep = items[i].prep;
        e[i].us_decode = items[i].decode_us;
        e[i].us_total = total;
        char *s = dn_explanation_json(&e[i], &err);
        t.oom |= !s;
        dn_text_printf(&t, "%s%s", i ? "," : "", s ? s : "");
        free(s);
    }
    dn_text_printf(&t, "]");
    if (t.oom) {
        dn_text_free(&t);
        serve_error(rep, 500, "out of memory writing the answer");
        return;
    }
    reply_text(rep, 200, mime_json, t.s, t.len);
}

static void batch(const serve_request *req, serve_reply *rep)
{
    double t0 = now_us();
    int flags;
    char msg[512];
    if (serve_query_flags(req, &flags, msg, sizeof msg) != 0) {
        serve_error(rep, 400, "%s", msg);
        return;
    }
    if (body_type_ok(ROUTE_BATCH, req->content_type, rep) != 0)
        return;
    json_t *arr = body_json(req, rep);
    if (!arr)
        return;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (!json_is_array(arr) || n < 1 || n > SERVE_MAX_BATCH) {
        serve_error(rep, 400, "a batch is a JSON array of 1 to %d inputs, not %s of %zu",
                    SERVE_MAX_BATCH, json_is_array(arr) ? "an array" : "something else", n);
        json_decref(arr);
        return;
    }
    float *xs = malloc(n * PIXELS * sizeof *xs); /* (n, 28, 28) */
    dn_explanation *e = calloc(n, sizeof *e);
    batch_item *items = calloc(n, sizeof *items);
    serve_model *sm = serve_model_acquire();
    dn_work *w = sm ? serve_work(sm, 1) : NULL;
    dn_error err = {0};
    /* Each input to its 28 x 28, then all of them through the network
     * together. */
    if (!xs || !e || !items || !w)
        serve_error(rep, 503, "out of memory for a batch of %zu", n);
    else if (batch_inputs(arr, flags, xs, items, rep) != 0)
        ;
    else if (dn_explain_batch(sm->m, w, xs, (int)n, flags, e, &err) != DN_OK)
        serve_error(rep, explain_status(&err), "%s", err.msg);
    else {
        batch_answer(e, items, n, t0, rep);
        serve_metrics_predictions((long)n);
    }
    for (size_t i = 0; e && i < n; i++)
        dn_explanation_free(&e[i]);
    free(xs);
    free(e);
    free(items);
    serve_model_release(sm);
    json_decref(arr);
}

static void model(serve_reply *rep)
{
    serve_model *sm = serve_model_acquire();
    char *s = sm ? malloc(sm->about_len + 1) : NULL;
    if (!s) {
        serve_error(rep, 503, "no model");
    } else {
        memcpy(s, sm->about, sm->about_len + 1);
        reply_text(rep, 200, mime_json, s, sm->about_len);
    }
    serve_model_release(sm);
}

static void sample(const serve_request *req, serve_reply *rep)
{
    serve_model *sm = serve_model_acquire();
    if (!sm) {
        serve_error(rep, 503, "no model");
        return;
    }
    if (!sm->has_test) {
        serve_error(rep, 404, "%s (run 'make data' or start with --data DIR)", sm->test_note);
        serve_model_release(sm);
        return;
    }
    const dn_dataset *ds = &sm->test;
    const char *v = req->arg(req->ctx, "index");
    long index;
    if (v) {
        if (cli_parse_long(v, 0, 999999999, &index) != 0) {
            serve_error(rep, 400, "index wants a whole number >= 0, not '%s'", v);
            serve_model_release(sm);
            return;
        }
        if ((size_t)index >= ds->n) {
            serve_error(rep, 404, "there is no %s test image %ld (there are %zu: 0..%zu)",
                        ds->name, index, ds->n, ds->n - 1);
            serve_model_release(sm);
            return;
        }
    } else {
        /* Any image: a per-thread generator seeded from the clock. */
        static _Thread_local dn_rng rng;
        static _Thread_local int seeded;
        if (!seeded) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            dn_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
                                  (uint64_t)(uintptr_t)&rng);
            seeded = 1;
        }
        index = (long)dn_rng_below(&rng, (uint32_t)ds->n);
    }
    dn_error err = {0};
    char *s = dn_sample_json(ds, (size_t)index, &err);
    if (s)
        reply_text(rep, 200, mime_json, s, strlen(s));
    else
        serve_error(rep, 500, "%s", err.msg);
    serve_model_release(sm);
}

static void health(serve_reply *rep)
{
    serve_model *sm = serve_model_acquire();
    if (!sm) {
        serve_error(rep, 503, "no model");
        return;
    }
    reply_json(rep, 200,
               json_pack("{s:s,s:s,s:i,s:s,s:s}", "status", "ok", "model", sm->path,
                         "generation", (int)sm->generation, "loaded_at", sm->loaded_at,
                         "version", DN_VERSION));
    serve_model_release(sm);
}

static void asset(const serve_asset *a, serve_reply *rep)
{
    rep->status = 200;
    rep->type = a->type;
    rep->body = (char *)a->data;
    rep->len = a->size;
    rep->is_static = 1;
}

/* 404 and 405: 0, or -1 with the answer in rep. */
static int route_ok(const serve_request *req, serve_route r, serve_reply *rep)
{
    if (r == ROUTE_NONE) {
        serve_error(rep, 404, "no such route: %s (the API is under /api/, see "
                              "/api/openapi.json)", req->path);
        return -1;
    }
    const char *want = serve_route_method(r);
    int head = !strcmp(req->method, "HEAD") && !strcmp(want, "GET");
    if (strcmp(req->method, want) != 0 && !head) {
        serve_error(rep, 405, "%s takes %s, not %s", req->path, want, req->method);
        return -1;
    }
    return 0;
}

int serve_prepare(const serve_request *req, long long content_length, serve_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    serve_route r = serve_route_of(req->path);
    if (route_ok(req, r, rep) != 0)
        return 0;
    if (r != ROUTE_PREDICT && r != ROUTE_BATCH) {
        serve_handle(req, rep);
        return 0;
    }
    if (content_length > SERVE_MAX_BODY) {
        serve_error(rep, 413, "the body is %lld bytes; at most %d are read", content_length,
                    SERVE_MAX_BODY);
        return 0;
    }
    return body_type_ok(r, req->content_type, rep) == 0;
}

void serve_handle(const serve_request *req, serve_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    serve_route r = serve_route_of(req->path);
    if (route_ok(req, r, rep) != 0)
        return;
    switch (r) {
    case ROUTE_PAGE: asset(serve_asset_find(req->path), rep); break;
    case ROUTE_OPENAPI: asset(serve_asset_find("/openapi.json"), rep); break;
    case ROUTE_PREDICT: predict(req, rep); break;
    case ROUTE_BATCH: batch(req, rep); break;
    case ROUTE_MODEL: model(rep); break;
    case ROUTE_SAMPLE: sample(req, rep); break;
    case ROUTE_HEALTH: health(rep); break;
    case ROUTE_METRICS: {
        size_t len = 0;
        char *s = serve_metrics_text(&len);
        if (s)
            reply_text(rep, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
        else
            serve_error(rep, 500, "out of memory writing the metrics");
        break;
    }
    case ROUTE_NONE:
    case ROUTE_COUNT: break;
    }
}
