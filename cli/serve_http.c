/*
 * serve_http.c - HTTP for `digitnet serve` on GNU libmicrohttpd: a pool of
 * threads, each with its own epoll loop, given the connections one by one
 * by an accepting thread; bodies gathered up to SERVE_MAX_BODY (a larger
 * Content-Length is answered 413 before a byte of the body is read); one
 * access-log line per request; a drain on stop.
 *
 * libmicrohttpd parses HTTP; nothing here does. It calls `access` several
 * times per request: once with the headers, once per piece of body, and
 * once more when the body is complete, when the answer is queued.
 */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct serve_http {
    struct MHD_Daemon *d;
    int listen_fd;
    int max_conn;
    pthread_t acceptor;
    atomic_int stopping;
};

static int log_fd = -1;
static atomic_int inflight;     /* requests between headers and answer */
static atomic_int open_conns;   /* connections open */

/* How long a stop waits for requests that have arrived on an open
 * connection but are not read yet, once none is being answered. */
#define SETTLE_MS 500

/* The state of one request, kept across libmicrohttpd's calls. */
typedef struct request {
    double t0;                  /* headers received, us */
    serve_route route;
    char method[8];
    char path[160];             /* printable, for the log */
    char client[48];
    char *body;                 /* (cap) */
    size_t len, cap;
    int reads_body;             /* the route takes the body */
    int too_big;                /* the body passed SERVE_MAX_BODY */
    int status;                 /* answered with, 0 before */
    size_t bytes;               /* answer body size */
} request;

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

void serve_log(int fd, const char *fmt, ...)
{
    if (fd < 0)
        return;
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The date and time to the second, made once a second per thread. */
    static _Thread_local time_t sec = -1;
    static _Thread_local char stamp[32];
    static _Thread_local size_t stamp_len;
    if (ts.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        stamp_len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        sec = ts.tv_sec;
    }
    memcpy(line, stamp, stamp_len);
    size_t n = stamp_len;
    long ms = ts.tv_nsec / 1000000;
    char tail[6] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
                    'Z', ' '};
    memcpy(line + n, tail, sizeof tail);
    n += sizeof tail;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n += k < 0 ? 0 : (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
    line[n++] = '\n';
    /* One write per line, so that lines from several threads never
     * interleave. */
    ssize_t w = write(fd, line, n);
    (void)w;
}

/* Copies s for the log, every byte that is not printable ASCII as '?', so
 * that a hostile path cannot forge log lines. */
static void printable(char *dst, size_t size, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < size; i++)
        dst[i] = s[i] > 32 && s[i] < 127 ? s[i] : '?';
    dst[i] = 0;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, size, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, len, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, size, "-");
}

static const char *query_arg(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, request *rq, serve_reply *rep)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        rep->len, rep->body, rep->is_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (!r) {
        if (!rep->is_static)
            free(rep->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rep->type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (rq->route == ROUTE_PAGE) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data: blob:; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    } else {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (rep->status == 405)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                !strcmp(serve_route_method(rq->route), "GET") ? "GET, HEAD"
                                                                              : "POST");
    rq->status = rep->status;
    rq->bytes = rep->len;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rep->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    request *rq = *con_cls;
    if (!rq) {
        /* The headers: decide everything that does not need the body. */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&inflight, 1);
        rq->t0 = now_us();
        rq->route = serve_route_of(url);
        printable(rq->method, sizeof rq->method, method);
        printable(rq->path, sizeof rq->path, url);
        client_address(c, rq->client, sizeof rq->client);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        long long n = cl ? atoll(cl) : -1;
        serve_request req = {
            .method = method,
            .path = url,
            .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE),
            .body = "",
            .len = 0,
            .arg = query_arg,
            .ctx = c,
        };
        serve_reply rep;
        if (!serve_prepare(&req, n, &rep))
            return send_reply(c, rq, &rep);
        rq->reads_body = 1;
        if (n > 0) {
            /* Content-Length is known (and not over the limit): one
             * buffer of that size. */
            rq->cap = (size_t)n;
            if (!(rq->body = malloc(rq->cap)))
                return MHD_NO;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        /* A piece of the body. */
        size_t n = *upload_size;
        *upload_size = 0;
        if (!rq->reads_body)
            return MHD_YES;
        if (rq->len + n > SERVE_MAX_BODY) {
            /* Only a chunked body gets here (a declared length was
             * checked above): stop keeping it, and stop reading it. */
            rq->too_big = 1;
            free(rq->body);
            rq->body = NULL;
            return MHD_NO;
        }
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 16384;
            while (cap < rq->len + n)
                cap *= 2;
            cap = cap > SERVE_MAX_BODY ? SERVE_MAX_BODY : cap;
            char *b = realloc(rq->body, cap);
            if (!b)
                return MHD_NO;
            rq->body = b;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    /* The whole request is in. */
    serve_request req = {
        .method = method,
        .path = url,
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = rq->body ? rq->body : "",
        .len = rq->len,
        .arg = query_arg,
        .ctx = c,
    };
    serve_reply rep;
    serve_handle(&req, &rep);
    return send_reply(c, rq, &rep);
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    request *rq = *con_cls;
    if (!rq)
        return;
    *con_cls = NULL;
    double us = now_us() - rq->t0;
    long whole_us = (long)(us + 0.5); /* printf's %ld is cheaper than its %.0f */
    if (rq->status)
        serve_metrics_request(rq->route, rq->status, us);
    if (rq->status)
        serve_log(log_fd, "%s \"%s %s\" %d %zu %ldus", rq->client, rq->method, rq->path,
                  rq->status, rq->bytes, whole_us);
    else
        serve_log(log_fd, "%s \"%s %s\" - - %ldus (%s)", rq->client, rq->method, rq->path,
                  whole_us,
                  rq->too_big ? "body over the limit, connection closed"
                  : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timed out"
                                                                  : "closed before an answer");
    free(rq->body);
    free(rq);
    atomic_fetch_sub(&inflight, 1);
}

static void connection_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    (void)socket_context;
    atomic_fetch_add(&open_conns, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* A listening socket on host:port; -1 with err on failure. */
static int listen_on(const char *host, int port, int *bound, dn_error *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        err->status = DN_ERR_ARG;
        snprintf(err->msg, sizeof err->msg, "%s: not an address to listen on: %s", host,
                 gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        err->status = DN_ERR_IO;
        snprintf(err->msg, sizeof err->msg, "%s port %d: cannot listen: %s", host, port,
                 strerror(e));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    *bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
}

/* Accepts connections and hands each to libmicrohttpd, which gives it to
 * the thread of its pool that the descriptor's number picks: connections
 * accepted one after the other get consecutive numbers and alternate
 * between the threads. Left to accept by
 * themselves, the threads race for each connection, and one of two could
 * win 44 of 64: its requests then wait twice as long as the other's, which
 * is the slowest hundredth of all requests (the p99 latency). At the
 * connection limit it accepts nothing until one closes: the others wait
 * in the listening queue, as they would with libmicrohttpd's own accept. */
static void *acceptor(void *arg)
{
    serve_http *h = arg;
    while (!atomic_load(&h->stopping)) {
        if (atomic_load(&open_conns) >= h->max_conn) {
            pause_ms(2);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept(h->listen_fd, (struct sockaddr *)&ss, &len);
        if (fd < 0) {
            if (atomic_load(&h->stopping))
                break;
            if (errno != EINTR && errno != ECONNABORTED) {
                /* out of descriptors or memory: wait for some to be freed */
                serve_log(log_fd, "- accept: %s", strerror(errno));
                pause_ms(10);
            }
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        /* On failure (a limit reached) libmicrohttpd closes fd itself. */
        MHD_add_connection(h->d, fd, (const struct sockaddr *)&ss, len);
    }
    return NULL;
}

serve_http *serve_http_start(const serve_options *o, int *port, dn_error *err)
{
    serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        err->status = DN_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    log_fd = o->log_fd;
    h->max_conn = o->max_conn;
    h->listen_fd = listen_on(o->host, o->port, port, err);
    if (h->listen_fd < 0) {
        free(h);
        return NULL;
    }
    /* Turbo: read and write before asking epoll, which mostly succeeds on
     * a busy server (fewer system calls). The connections come from the
     * acceptor thread (no listening socket of its own). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO |
                     MHD_USE_NO_LISTEN_SOCKET;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, access_cb, NULL, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(o->threads > 1 ? o->threads : 0), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        completed_cb, NULL, MHD_OPTION_NOTIFY_CONNECTION, connection_cb, NULL, MHD_OPTION_END);
    if (!h->d || pthread_create(&h->acceptor, NULL, acceptor, h) != 0) {
        if (h->d)
            MHD_stop_daemon(h->d);
        close(h->listen_fd);
        free(h);
        err->status = DN_ERR_IO;
        snprintf(err->msg, sizeof err->msg, "libmicrohttpd could not start its threads");
        return NULL;
    }
    return h;
}

struct MHD_Daemon *serve_http_start_external(int access_log_fd)
{
    log_fd = access_log_fd;
    /* The callbacks of serve_http_start; no turbo, ITC or pool: nothing
     * but the caller's MHD_run touches this daemon. */
    return MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, access_cb, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
                            MHD_OPTION_NOTIFY_CONNECTION, connection_cb, NULL, MHD_OPTION_END);
}

int serve_http_stop(serve_http *h, int grace_ms)
{
    /* No new connections; those open finish what they started. Shutting
     * the listening socket down wakes the acceptor from accept. */
    atomic_store(&h->stopping, 1);
    shutdown(h->listen_fd, SHUT_RDWR);
    pthread_join(h->acceptor, NULL);
    close(h->listen_fd);
    /* Until nothing is being answered and, while connections are open,
     * nothing has been for SETTLE_MS: a request sent just before the
     * signal may not have been read yet. Idle keep-alive connections are
     * then closed. */
    int waited = 0, quiet = 0;
    while (waited < grace_ms) {
        if (atomic_load(&inflight) > 0)
            quiet = 0;
        else if (atomic_load(&open_conns) <= 0 || quiet >= SETTLE_MS)
            break;
        pause_ms(5);
        waited += 5;
        quiet += 5;
    }
    int left = atomic_load(&inflight);
    MHD_stop_daemon(h->d);
    free(h);
    return left;
}
