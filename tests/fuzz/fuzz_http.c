/*
 * fuzz_http.c - the HTTP side of `digitnet serve`: the bytes a client sends
 * on one connection, written to a real libmicrohttpd daemon in this
 * process over a socket pair, so that libmicrohttpd's parser, the server's
 * request handling (cli/serve_http.c) and every route (serve_api.c,
 * serve_input.c, serve_model.c, serve_metrics.c) run as `digitnet serve`
 * runs them, on a real model (tests/fixtures/mnist-model.safetensors)
 * loaded once, with a test split of ten pictures for GET /api/sample.
 *
 * The input is one request or several (pipelined), as sent. One
 * convenience keeps libFuzzer's changes to a body from being wasted on a
 * Content-Length that no longer fits: in the first request, a header line
 * "Content-Length: ?" becomes the length of everything after the blank
 * line that ends the headers. Any other Content-Length goes as written.
 *
 * Besides not crashing, the server must answer or close every connection
 * (no hang, no connection left open), begin each answer with an HTTP
 * status line, and never answer 500: bad input is the client's error.
 */
#define _GNU_SOURCE /* memmem */
#include "fuzz.h"
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MODEL "tests/fixtures/mnist-model.safetensors"
#define N_TEST 10
/* Seconds a connection may take before it counts as a hang. */
#define HANG_S 10

static struct MHD_Daemon *daemon_;

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* Ten 28 x 28 pictures and their labels as the MNIST test split, in a
 * directory of their own; returns it. */
static const char *tiny_test_split(void)
{
    static uint8_t images[16 + N_TEST * 28 * 28], labels[8 + N_TEST];
    be32(images, 0x803);
    be32(images + 4, N_TEST);
    be32(images + 8, 28);
    be32(images + 12, 28);
    for (size_t i = 16; i < sizeof images; i++)
        images[i] = (uint8_t)(i * 37 % 251);
    be32(labels, 0x801);
    be32(labels + 4, N_TEST);
    for (int i = 0; i < N_TEST; i++)
        labels[8 + i] = (uint8_t)i;
    const char *dir = fuzz_dir("data");
    fuzz_file("data/t10k-images-idx3-ubyte", images, sizeof images);
    fuzz_file("data/t10k-labels-idx1-ubyte", labels, sizeof labels);
    return dir;
}

static void stop(void)
{
    MHD_stop_daemon(daemon_);
    serve_model_shutdown();
}

static void start(void)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tiny_test_split());
    dn_error err = {0};
    if (serve_model_load(MODEL, dir, &err) != DN_OK)
        fuzz_fail("cannot load the model (run from the top of the checkout): %s", err.msg);
    serve_model *sm = serve_model_acquire();
    int has_test = sm && sm->has_test;
    serve_model_release(sm);
    if (!has_test)
        fuzz_fail("the test split in %s was not loaded", dir);
    /* The access log is written, to nowhere: its formatting of hostile
     * methods and paths is fuzzed too. */
    int log = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (log < 0 || !(daemon_ = serve_http_start_external(log)))
        fuzz_fail("libmicrohttpd does not start");
    atexit(stop);
}

/* The input with "Content-Length: ?" filled in (see the top); malloc'd,
 * its size in *n. */
static char *fill_length(const uint8_t *data, size_t size, size_t *n)
{
    static const char ask[] = "\nContent-Length: ?\r";
    const char *s = (const char *)data;
    const char *end = memmem(s, size, "\r\n\r\n", 4);
    const char *at = end ? memmem(s, (size_t)(end - s) + 1, ask, sizeof ask - 1) : NULL;
    char len[24] = "";
    if (at)
        snprintf(len, sizeof len, "%zu", size - (size_t)(end + 4 - s));
    size_t keep = at ? (size_t)(at - s) + sizeof ask - 3 : size; /* up to "? " */
    char *out = malloc(size + sizeof len);
    if (!out)
        fuzz_fail("out of memory");
    memcpy(out, s, keep);
    *n = keep;
    if (at) {
        memcpy(out + *n, len, strlen(len));
        *n += strlen(len);
        memcpy(out + *n, at + sizeof ask - 2, size - keep - 1);
        *n += size - keep - 1;
    }
    return out;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Sends req on a new connection, running the daemon until it has closed
 * the connection; the first bytes of its answers into head (NUL-ended). */
static void exchange(const char *req, size_t n, char *head, size_t cap)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        fuzz_fail("socketpair: %s", strerror(errno));
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    /* The client's address as the server would see it over loopback. */
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(daemon_, sv[1], (const struct sockaddr *)&peer, sizeof peer) !=
        MHD_YES)
        fuzz_fail("MHD_add_connection refused a connection");
    size_t sent = 0, got = 0;
    int shut = 0;
    double t0 = seconds();
    for (;;) {
        if (sent < n) {
            ssize_t w = send(sv[0], req + sent, n - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                sent = n; /* the server closed: the rest is not read */
        }
        if (sent == n && !shut) {
            shutdown(sv[0], SHUT_WR);
            shut = 1;
        }
        MHD_run(daemon_);
        char buf[65536];
        ssize_t r;
        while ((r = recv(sv[0], buf, sizeof buf, 0)) > 0) {
            size_t k = got + 1 < cap ? cap - 1 - got : 0;
            k = k < (size_t)r ? k : (size_t)r;
            memcpy(head + got, buf, k);
            got += k;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (seconds() - t0 > HANG_S)
            fuzz_fail("the server neither answered nor closed within %d s", HANG_S);
    }
    head[got] = 0;
    close(sv[0]);
    /* The daemon has closed its end; it forgets the connection on its
     * next turn. */
    for (int i = 0;; i++) {
        MHD_run(daemon_);
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!di || di->num_connections == 0)
            break;
        if (i == 100)
            fuzz_fail("a connection the server closed is still open");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!daemon_)
        start();
    size_t n;
    char *req = fill_length(data, size, &n);
    char head[64];
    exchange(req, n, head, sizeof head);
    free(req);
    /* An answer begins "HTTP/1.1 200 " (libmicrohttpd may also close
     * without one, on bytes that are no request). */
    if (head[0] && (strncmp(head, "HTTP/1.", 7) != 0 || strlen(head) < 13 ||
                    head[8] != ' ' || head[12] != ' '))
        fuzz_fail("an answer that does not begin with a status line: %.40s", head);
    size_t len;
    char *metrics = serve_metrics_text(&len);
    if (!metrics)
        fuzz_fail("out of memory for the metrics");
    const char *e500 = strstr(metrics, "status=\"500\"} ");
    if (e500)
        fuzz_fail("the server answered 500: %.120s", e500);
    free(metrics);
    return 0;
}
