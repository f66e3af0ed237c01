/*
 * serve_metrics.c - what GET /metrics reports, in the Prometheus text
 * format: requests by route and status, a latency histogram per route,
 * predictions served, model reloads, resident memory.
 *
 * Counters are relaxed atomics: each request adds to a few of them, and
 * a reader may see one request's counts half added, as Prometheus allows.
 */
#include "serve.h"
#include "digitnet_picture.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The statuses the server sends; anything else is counted as "other". */
static const int statuses[] = {200, 400, 404, 405, 413, 415, 422, 500, 503};
enum { N_STATUS = sizeof statuses / sizeof statuses[0] + 1 };

/* Bucket upper bounds, seconds. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                 0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
enum { N_BUCKET = sizeof buckets / sizeof buckets[0] };

static _Atomic uint64_t requests[ROUTE_COUNT][N_STATUS];
static _Atomic uint64_t hist[ROUTE_COUNT][N_BUCKET + 1]; /* last: +Inf */
static _Atomic uint64_t sum_us[ROUTE_COUNT];
static _Atomic uint64_t predictions;
static _Atomic uint64_t reloads[2]; /* refused, ok */

static int status_index(int status)
{
    for (int i = 0; i < N_STATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return N_STATUS - 1;
}

void serve_metrics_request(serve_route r, int status, double us)
{
    atomic_fetch_add_explicit(&requests[r][status_index(status)], 1, memory_order_relaxed);
    int b = 0;
    while (b < N_BUCKET && us > buckets[b] * 1e6)
        b++;
    atomic_fetch_add_explicit(&hist[r][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_us[r], (uint64_t)(us > 0 ? us : 0), memory_order_relaxed);
}

void serve_metrics_predictions(long n)
{
    atomic_fetch_add_explicit(&predictions, (uint64_t)n, memory_order_relaxed);
}

void serve_metrics_reload(int ok)
{
    atomic_fetch_add_explicit(&reloads[ok != 0], 1, memory_order_relaxed);
}

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

char *serve_metrics_text(size_t *len)
{
    dn_text t = {0};
    dn_text_printf(&t, "# HELP digitnet_http_requests_total HTTP requests answered, by route "
                       "and status.\n# TYPE digitnet_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (int s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&requests[r][s], memory_order_relaxed);
            if (!v)
                continue;
            char code[16];
            if (s < N_STATUS - 1)
                snprintf(code, sizeof code, "%d", statuses[s]);
            else
                snprintf(code, sizeof code, "other");
            dn_text_printf(&t, "digitnet_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                           serve_route_name((serve_route)r), code, (unsigned long long)v);
        }
    dn_text_printf(&t, "# HELP digitnet_http_request_duration_seconds Time from a request's "
                       "headers to its answer being sent.\n"
                       "# TYPE digitnet_http_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        uint64_t cum = 0;
        for (int b = 0; b <= N_BUCKET; b++)
            cum += atomic_load_explicit(&hist[r][b], memory_order_relaxed);
        if (!cum)
            continue;
        const char *name = serve_route_name((serve_route)r);
        cum = 0;
        for (int b = 0; b <= N_BUCKET; b++) {
            cum += atomic_load_explicit(&hist[r][b], memory_order_relaxed);
            if (b < N_BUCKET)
                dn_text_printf(&t, "digitnet_http_request_duration_seconds_bucket{route=\"%s\","
                                   "le=\"%g\"} %llu\n", name, buckets[b],
                               (unsigned long long)cum);
            else
                dn_text_printf(&t, "digitnet_http_request_duration_seconds_bucket{route=\"%s\","
                                   "le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        }
        dn_text_printf(&t, "digitnet_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                       name, atomic_load_explicit(&sum_us[r], memory_order_relaxed) * 1e-6);
        dn_text_printf(&t, "digitnet_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                       name, (unsigned long long)cum);
    }
    dn_text_printf(&t, "# HELP digitnet_predictions_total Images classified (a batch counts "
                       "each image).\n# TYPE digitnet_predictions_total counter\n"
                       "digitnet_predictions_total %llu\n",
                   (unsigned long long)atomic_load(&predictions));
    dn_text_printf(&t, "# HELP digitnet_model_reloads_total Model reloads asked for by SIGHUP, "
                       "by result.\n# TYPE digitnet_model_reloads_total counter\n"
                       "digitnet_model_reloads_total{result=\"ok\"} %llu\n"
                       "digitnet_model_reloads_total{result=\"refused\"} %llu\n",
                   (unsigned long long)atomic_load(&reloads[1]),
                   (unsigned long long)atomic_load(&reloads[0]));
    serve_model *sm = serve_model_acquire();
    if (sm) {
        dn_text_printf(&t, "# HELP digitnet_model_generation Loads of the model file so far "
                           "(1 + successful reloads).\n# TYPE digitnet_model_generation gauge\n"
                           "digitnet_model_generation %u\n", sm->generation);
        serve_model_release(sm);
    }
    dn_text_printf(&t, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                       "# TYPE process_resident_memory_bytes gauge\n"
                       "process_resident_memory_bytes %ld\n", resident_bytes());
    if (t.oom) {
        dn_text_free(&t);
        return NULL;
    }
    *len = t.len;
    return t.s;
}
