/*
 * serve.h - what the files of `digitnet serve` share.
 *
 *   cmd_serve.c      options, start, signals (reload, stop)
 *   serve_http.c     libmicrohttpd: requests, bodies, limits, access log
 *   serve_api.c      the routes: predict, batch, model, sample, health ...
 *   serve_model.c    the model being served, reloaded whole on SIGHUP, and
 *                    each thread's workspace for it
 *   serve_metrics.c  counters and latency histograms, Prometheus text
 *   serve_assets     the page (the files of web/), embedded at build time
 *                    (build/.../gen/web_assets.c, made by tools/embed.c)
 */
#ifndef DN_SERVE_H
#define DN_SERVE_H

#include "cli.h"
#include "digitnet_explain.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

/* Largest request body read; a bigger one is refused with 413 as soon as
 * its Content-Length is known, before its first byte is read. */
#define SERVE_MAX_BODY (1024 * 1024)
/* Largest batch of POST /api/predict/batch. */
#define SERVE_MAX_BATCH 256
/* Batch size of a thread's large workspace: the occlusion heat-map and
 * the batch route run in chunks of this many. */
#define SERVE_WORK_BATCH 32

/* ------------------------------------------------------------------------ */
/* The model being served                                                   */
/* ------------------------------------------------------------------------ */

typedef struct serve_model {
    dn_model *m;
    unsigned generation;    /* 1 for the first load, +1 per reload */
    atomic_int refs;        /* requests using it, plus one while current */
    char path[1024];
    char loaded_at[32];     /* ISO 8601, UTC */
    char *about;            /* the GET /api/model answer, JSON */
    size_t about_len;
    dn_dataset test;        /* the model's test split, if it was found */
    int has_test;
    char test_note[600];    /* why there is no test split */
} serve_model;

/* Loads path (and the test split of its dataset from data_dir, NULL for
 * the default) and makes it the model served; the one before stays alive
 * until its last request ends. On failure nothing changes and err says
 * why. Not thread-safe against itself: call from one thread. */
dn_status serve_model_load(const char *path, const char *data_dir, dn_error *err);
/* The current model with a reference the caller releases. */
serve_model *serve_model_acquire(void);
void serve_model_release(serve_model *sm);
/* Drops the current model (at exit). */
void serve_model_shutdown(void);
/* This thread's workspace for sm (made on first use, remade after a
 * reload, freed when the thread ends): for batches of 2, or with large
 * for SERVE_WORK_BATCH (the occlusion map and the batch route), which
 * only the threads that answer such requests pay for. NULL when out of
 * memory. */
dn_work *serve_work(const serve_model *sm, int large);
/* This thread's buffers for decoding and preprocessing pictures (kept for
 * the thread's life, so that requests allocate no full-size image); NULL
 * when out of memory. */
dn_prep *serve_prep(void);

/* ------------------------------------------------------------------------ */
/* Routes and replies                                                       */
/* ------------------------------------------------------------------------ */

typedef enum serve_route {
    ROUTE_PAGE,             /* /, /index.html and the page's files */
    ROUTE_PREDICT,
    ROUTE_BATCH,
    ROUTE_MODEL,
    ROUTE_SAMPLE,
    ROUTE_OPENAPI,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_NONE,             /* no such route */
    ROUTE_COUNT
} serve_route;

/* The route of a path ("/api/predict"), its name for metrics, and the
 * method it takes ("GET" or "POST"). */
serve_route serve_route_of(const char *path);
const char *serve_route_name(serve_route r);
const char *serve_route_method(serve_route r);

typedef struct serve_reply {
    int status;
    const char *type;       /* Content-Type */
    char *body;             /* malloc'd, or points into static data */
    size_t len;
    int is_static;          /* body is not to be freed */
} serve_reply;

/* A request as the routes see it: the body is complete. */
typedef struct serve_request {
    const char *method, *path;
    const char *content_type;       /* may be NULL */
    const char *body;
    size_t len;
    /* Query argument key, or NULL. */
    const char *(*arg)(void *ctx, const char *key);
    void *ctx;
} serve_request;

/* Decides what can be decided from the headers (req->body is empty):
 * returns 1 when the body is to be read, then answered by serve_handle;
 * returns 0 with the answer in rep otherwise: a route that takes no body,
 * or an error that the body cannot change (no such route 404, wrong
 * method 405, a Content-Length over SERVE_MAX_BODY 413 (content_length is
 * -1 when not given), a Content-Type not taken 415). */
int serve_prepare(const serve_request *req, long long content_length, serve_reply *rep);
/* Answers req, body complete, into rep (never fails: errors are JSON
 * replies). */
void serve_handle(const serve_request *req, serve_reply *rep);
/* ------------------------------------------------------------------------ */
/* Request parts (serve_input.c)                                            */
/* ------------------------------------------------------------------------ */

/* The DN_EXPLAIN_* flags asked for by the query (maps, saliency, naive,
 * raw: each 1, true, empty, 0 or false). 0, or -1 with msg. */
int serve_query_flags(const serve_request *req, int *flags, char *msg, size_t size);
/* The media type of a Content-Type (may be NULL) without parameters, lower
 * case, into buf ("" when there is none). */
void serve_media_type(const char *content_type, char *buf, size_t size);

/* One input of the API, before the network: an encoded picture or the
 * network's own 28 x 28. */
typedef struct serve_input {
    int is_pixels;
    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE]; /* (28, 28) 0..1 when is_pixels */
    unsigned char *owned;       /* decoded base64, freed by serve_input_free */
    const unsigned char *data;  /* the encoded picture */
    size_t size;
} serve_input;

/* {"pixels": [784 numbers 0..255]} or {"image": a data: URL with ;base64,
 * or bare base64} into in (overwritten). 0, or -1 with msg naming the
 * problem (in then holds nothing to free). */
int serve_input_json(json_t *o, serve_input *in, char *msg, size_t size);
void serve_input_free(serve_input *in);

/* rep = {"error": msg} with status. */
void serve_error(serve_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* Embedded page                                                            */
/* ------------------------------------------------------------------------ */

typedef struct serve_asset {
    const char *path;       /* "/index.html" */
    const char *type;
    const unsigned char *data;
    size_t size;
} serve_asset;

extern const serve_asset serve_assets[];
extern const size_t serve_n_assets;
/* The asset at path ("/" is "/index.html"), or NULL. */
const serve_asset *serve_asset_find(const char *path);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

/* Counts one finished request. */
void serve_metrics_request(serve_route r, int status, double us);
void serve_metrics_predictions(long n);
void serve_metrics_reload(int ok);
/* The Prometheus text exposition (format 0.0.4), malloc'd. */
char *serve_metrics_text(size_t *len);

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct serve_options {
    const char *host;       /* numeric address or name to bind */
    int port;               /* 0: any free port */
    int threads;
    int per_ip;             /* connections per client address */
    int max_conn;           /* connections in all */
    int timeout_s;          /* idle connection timeout */
    int log_fd;             /* access log; -1 for none */
} serve_options;

typedef struct serve_http serve_http;

/* Starts the thread pool listening as o says; NULL and err on failure
 * (the address in use, ...). *port gets the port bound. */
serve_http *serve_http_start(const serve_options *o, int *port, dn_error *err);
/* The same request handling on a daemon with no listening socket and no
 * thread of its own: the caller hands it connections (MHD_add_connection)
 * and runs it (MHD_run). The HTTP fuzz target (tests/fuzz/fuzz_http.c)
 * writes raw requests to it over socket pairs, so that libmicrohttpd's
 * parser and the routes are fuzzed together. NULL if it cannot start. */
struct MHD_Daemon;
struct MHD_Daemon *serve_http_start_external(int access_log_fd);
/* Stops accepting, lets the requests in flight finish (up to grace_ms),
 * then stops. Returns how many were still running when it gave up. */
int serve_http_stop(serve_http *h, int grace_ms);

/* One line on the access log (and stderr for notices): "<time> <text>". */
void serve_log(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
