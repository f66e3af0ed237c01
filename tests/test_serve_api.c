/*
 * test_serve_api.c - `digitnet serve` as a client sees it: the command is
 * started on a free port and spoken to over real sockets. Every route,
 * every error status, answers checked against the library and against
 * `digitnet predict`, a few hundred malformed requests followed by a good
 * one, the per-address connection limit and the idle timeout, the access
 * log and the metrics, SIGHUP with a good and a bad model file, and a stop
 * on SIGTERM that lets the request in flight finish.
 */
#include "test.h"
#include "digitnet_explain.h"
#include "digitnet_picture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FIXTURE_MODEL "tests/fixtures/mnist-model.safetensors"
#define OTHER_MODEL "tests/fixtures/torch_model.safetensors"
#define CANVAS_PNG "tests/fixtures/digits/3-canvas.png"
/* One byte over the body limit of digitnet serve. */
#define SERVE_BIG (1024 * 1024 + 1)

/* ------------------------------------------------------------------------ */
/* The server                                                               */
/* ------------------------------------------------------------------------ */

typedef struct server {
    pid_t pid;
    int port;
    char model[512];        /* a copy the test may replace */
    char log[512], err[512];
} server;

static server main_srv;

static const char *bin(void)
{
    const char *b = getenv("DN_BIN");
    return b && *b ? b : "./digitnet";
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *data = t_read_file(from, &n);
    assert_non_null(data);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.part", to);
    t_write_file(tmp, data, n);
    free(data);
    /* Atomic, as `digitnet train` writes model files. */
    assert_int_equal(rename(tmp, to), 0);
}

/* Starts `digitnet serve --port 0 ARGS...` (argv NULL-terminated) and
 * reads the port it prints. */
static void server_start(server *s, const char *name, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    char f[256];
    snprintf(f, sizeof f, "%s.safetensors", name);
    t_tmppath(s->model, sizeof s->model, f);
    copy_file(FIXTURE_MODEL, s->model);
    snprintf(f, sizeof f, "%s.access.log", name);
    t_tmppath(s->log, sizeof s->log, f);
    snprintf(f, sizeof f, "%s.stderr", name);
    t_tmppath(s->err, sizeof s->err, f);
    const char *argv[40] = {bin(), "serve", "--port", "0", "--model", s->model, "--data",
                            t_have_mnist() ? t_mnist_dir() : "/nonexistent", "--access-log",
                            s->log, "--threads", "2"};
    int argc = 12;
    for (int i = 0; extra && extra[i] && argc < 38; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    int out[2];
    assert_int_equal(pipe(out), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int e = open(s->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out[1], STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        close(out[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    FILE *f2 = fdopen(out[0], "r");
    char line[1024];
    while (fgets(line, sizeof line, f2)) {
        char *u = strstr(line, "http://127.0.0.1:");
        if (u && strstr(line, "open ")) {
            s->port = atoi(u + strlen("http://127.0.0.1:"));
            break;
        }
    }
    /* The rest of stdout is not read: the access log goes to a file. */
    fclose(f2);
    if (s->port <= 0) {
        char *err = t_read_file(s->err, NULL);
        fail_msg("the server printed no address; stderr:\n%s", err ? err : "");
    }
}

/* Stops with sig and returns the exit status (128 + signal if killed). */
static int server_stop(server *s, int sig)
{
    kill(s->pid, sig);
    int st = 0;
    for (int i = 0; i < 3000; i++) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    fail_msg("the server did not stop within 30 s of signal %d", sig);
    return -1;
}

static int server_alive(const server *s)
{
    int st;
    return waitpid(s->pid, &st, WNOHANG) == 0;
}

/* ------------------------------------------------------------------------ */
/* A small HTTP client                                                      */
/* ------------------------------------------------------------------------ */

static int dial(int port, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("cannot connect to port %d: %s", port, strerror(errno));
    return fd;
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads until the peer closes or the timeout; returns a malloc'd,
 * NUL-terminated buffer and its length. */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

typedef struct reply {
    int status;
    char *raw;              /* the whole answer */
    char *head;             /* points into raw: the headers */
    char *body;             /* points into raw */
    size_t len;             /* of body */
    json_t *json;           /* body parsed, if it is JSON */
} reply;

static void reply_free(reply *r)
{
    free(r->raw);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request on its own connection ("Connection: close"); extra_headers
 * is "" or lines ending in \r\n. */
static reply request(int port, const char *method, const char *path, const char *ctype,
                     const void *body, size_t len, const char *extra_headers)
{
    reply r;
    memset(&r, 0, sizeof r);
    int fd = dial(port, 60);
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s%s",
                     method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", extra_headers ? extra_headers : "");
    if (body || !strcmp(method, "POST"))
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    assert_int_equal(send_all(fd, head, (size_t)n), 0);
    if (len)
        send_all(fd, body, len);
    size_t got;
    r.raw = read_all(fd, &got);
    close(fd);
    if (sscanf(r.raw, "HTTP/1.%*d %d", &r.status) != 1)
        fail_msg("%s %s: no HTTP answer (%zu bytes: %.200s)", method, path, got, r.raw);
    r.head = r.raw;
    char *sep = strstr(r.raw, "\r\n\r\n");
    assert_non_null(sep);
    *sep = 0;
    r.body = sep + 4;
    r.len = got - (size_t)(r.body - r.raw);
    if (strstr(r.head, "application/json"))
        r.json = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

static reply get(const char *path)
{
    return request(main_srv.port, "GET", path, NULL, NULL, 0, "");
}

static reply post(const char *path, const char *ctype, const void *body, size_t len)
{
    return request(main_srv.port, "POST", path, ctype, body, len, "");
}

/* The error status and a JSON {"error": "..."} that mentions `word`. */
static void expect_error(reply r, int status, const char *word, const char *what)
{
    if (r.status != status)
        fail_msg("%s: status %d, expected %d: %.300s", what, r.status, status, r.body);
    const char *e = json_string_value(json_object_get(r.json, "error"));
    if (!e)
        fail_msg("%s: no JSON error in %.300s", what, r.body);
    if (word && !strstr(e, word))
        fail_msg("%s: error '%s' does not mention '%s'", what, e, word);
    print_message("%d %s: %s\n", status, what, e);
    reply_free(&r);
}

static char *header(const reply *r, const char *name, char *buf, size_t size)
{
    const char *p = r->head;
    size_t n = strlen(name);
    while ((p = strstr(p, "\r\n"))) {
        p += 2;
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            size_t k = strcspn(p, "\r\n");
            snprintf(buf, size, "%.*s", (int)k, p);
            return buf;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */
/* ------------------------------------------------------------------------ */

static dn_dataset test_set;
static dn_model *model;

/* MNIST test image i as {"pixels": [...]} (or a small stand-in digit
 * without MNIST: a vertical bar, a "1"). */
static void pixels_of(int i, uint8_t *px)
{
    if (test_set.n) {
        memcpy(px, test_set.images + (size_t)i * 784, 784);
        return;
    }
    memset(px, 0, 784);
    for (int y = 5; y < 23; y++)
        for (int x = 12; x < 16; x++)
            px[y * 28 + x] = 255;
}

static char *pixels_json(const uint8_t *px)
{
    json_t *a = json_array();
    for (int i = 0; i < 784; i++)
        json_array_append_new(a, json_integer(px[i]));
    json_t *o = json_pack("{s:o}", "pixels", a);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void b64(const unsigned char *in, size_t n, dn_text *t)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        dn_text_printf(t, "%c%c%c%c", tab[v >> 18 & 63], tab[v >> 12 & 63],
                       i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '=');
    }
}

static double num_at(json_t *a, size_t i)
{
    return json_number_value(json_array_get(a, i));
}

/* The log-probabilities the library computes for px (28x28 levels). */
static void library_logp(const uint8_t *px, float *lp)
{
    float x[784];
    for (int i = 0; i < 784; i++)
        x[i] = px[i] / 255.0f;
    dn_work *w = dn_work_new(model, 1);
    dn_explanation e;
    dn_error err = {0};
    assert_int_equal(dn_explain_input(model, w, x, 0, &e, &err), DN_OK);
    memcpy(lp, e.logp, 10 * sizeof *lp);
    dn_explanation_free(&e);
    dn_work_free(w);
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dn_error err = {0};
    model = dn_model_load(FIXTURE_MODEL, NULL, &err);
    if (!model)
        fail_msg("%s", err.msg);
    if (t_load_mnist(&test_set, "test") != 0)
        return -1;
    server_start(&main_srv, "main", NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (main_srv.pid > 0 && server_alive(&main_srv))
        server_stop(&main_srv, SIGINT);
    dn_dataset_free(&test_set);
    dn_model_free(model);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

static void test_page_and_docs(void **state)
{
    (void)state;
    char buf[256];
    reply r = get("/");
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type", buf, sizeof buf), "text/html; charset=utf-8");
    assert_non_null(header(&r, "Content-Security-Policy", buf, sizeof buf));
    assert_non_null(strstr(r.body, "<canvas id=\"pad\""));
    reply_free(&r);
    static const struct {
        const char *path, *type, *has;
    } files[] = {
        {"/app.js", "text/javascript; charset=utf-8", "digitnetBackend"},
        {"/backend-http.js", "text/javascript; charset=utf-8", "api/predict"},
        {"/style.css", "text/css; charset=utf-8", "touch-action: none"},
        {"/favicon.svg", "image/svg+xml", "<svg"},
        {"/index.html", "text/html; charset=utf-8", "app.js"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        r = get(files[i].path);
        assert_int_equal(r.status, 200);
        assert_string_equal(header(&r, "Content-Type", buf, sizeof buf), files[i].type);
        assert_non_null(strstr(r.body, files[i].has));
        reply_free(&r);
    }
    r = request(main_srv.port, "HEAD", "/", NULL, NULL, 0, "");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    reply_free(&r);

    r = get("/api/openapi.json");
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "openapi")), "3.0.3");
    json_t *paths = json_object_get(r.json, "paths");
    static const char *const routes[] = {"/api/predict", "/api/predict/batch", "/api/model",
                                         "/api/sample", "/api/openapi.json", "/healthz",
                                         "/metrics"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!json_object_get(paths, routes[i]))
            fail_msg("openapi.json does not describe %s", routes[i]);
    reply_free(&r);

    r = get("/healthz");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(r.json, "generation")), 1);
    reply_free(&r);
}

static void test_model_and_sample(void **state)
{
    (void)state;
    reply r = get("/api/model");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "spec")), model->spec);
    assert_int_equal(json_integer_value(json_object_get(r.json, "parameters")), 54186);
    assert_int_equal(json_array_size(json_object_get(r.json, "layers")), 13);
    json_t *stages = json_object_get(r.json, "stages");
    assert_int_equal(json_array_size(stages), 8);
    assert_string_equal(json_string_value(json_object_get(json_array_get(stages, 1), "name")),
                        "conv1 + ReLU");
    json_t *test = json_object_get(r.json, "test");
    if (t_have_mnist()) {
        /* The fixture model's recorded accuracy, measured again. */
        double acc = json_number_value(json_object_get(test, "accuracy"));
        print_message("test accuracy measured by the server: %.4f\n", acc);
        assert_true(fabs(acc - 0.9828) < 0.0005);
        assert_int_equal(json_integer_value(json_object_get(test, "images")), 10000);
    } else {
        assert_true(json_is_null(test));
    }
    reply_free(&r);

    if (!t_have_mnist()) {
        expect_error(get("/api/sample"), 404, "test set", "sample without MNIST");
        return;
    }
    r = get("/api/sample?index=0");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "label")), 7);
    json_t *px = json_object_get(r.json, "pixels");
    assert_int_equal(json_array_size(px), 784);
    for (int i = 0; i < 784; i++)
        assert_int_equal(json_integer_value(json_array_get(px, (size_t)i)), test_set.images[i]);
    reply_free(&r);
    r = get("/api/sample");
    assert_int_equal(r.status, 200);
    json_int_t idx = json_integer_value(json_object_get(r.json, "index"));
    assert_true(idx >= 0 && idx < 10000);
    assert_int_equal(json_integer_value(json_object_get(r.json, "label")), test_set.labels[idx]);
    reply_free(&r);
    expect_error(get("/api/sample?index=abc"), 400, "index", "sample index abc");
    expect_error(get("/api/sample?index=-1"), 400, "index", "sample index -1");
    expect_error(get("/api/sample?index=10000"), 404, "10000", "sample index 10000");
}

static void test_predict(void **state)
{
    (void)state;
    /* A picture: the same answer as `digitnet predict` on the file. */
    size_t n;
    char *png = t_read_file(CANVAS_PNG, &n);
    assert_non_null(png);
    reply r = post("/api/predict", "image/png", png, n);
    assert_int_equal(r.status, 200);
    static char out[1 << 16];
    int rc = t_run(out, sizeof out, "predict --json --model '%s' '%s'", FIXTURE_MODEL, CANVAS_PNG);
    assert_int_equal(rc, 0);
    json_t *p = json_loads(out, 0, NULL);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(r.json, "prediction")),
                     json_integer_value(json_object_get(p, "predicted")));
    json_t *lp = json_object_get(r.json, "log_probabilities"), *pr = json_object_get(r.json,
                                                                                      "probabilities");
    double sum = 0;
    for (size_t c = 0; c < 10; c++) {
        assert_float_equal(num_at(lp, c), num_at(json_object_get(p, "log_probs"), c), 1e-5);
        assert_float_equal(num_at(pr, c), exp(num_at(lp, c)), 1e-6);
        sum += num_at(pr, c);
    }
    assert_float_equal(sum, 1.0, 1e-5);
    json_decref(p);
    assert_int_equal(json_array_size(json_object_get(r.json, "input")), 784);
    assert_true(json_is_object(json_object_get(r.json, "preprocess")));
    assert_true(json_is_boolean(json_object_get(r.json, "unsure")));
    json_t *timing = json_object_get(r.json, "timing_us");
    assert_true(json_number_value(json_object_get(timing, "total")) > 0);
    assert_null(json_object_get(r.json, "maps"));
    assert_null(json_object_get(r.json, "saliency"));
    print_message("%s: predicted %d in %.0f us\n", CANVAS_PNG,
                  (int)json_integer_value(json_object_get(r.json, "prediction")),
                  json_number_value(json_object_get(timing, "total")));
    json_t *first = json_incref(r.json);
    reply_free(&r);

    /* The same picture as a data: URL in JSON. */
    dn_text t = {0};
    dn_text_printf(&t, "{\"image\":\"data:image/png;base64,");
    b64((unsigned char *)png, n, &t);
    dn_text_printf(&t, "\"}");
    r = post("/api/predict", "application/json", t.s, t.len);
    assert_int_equal(r.status, 200);
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(num_at(json_object_get(r.json, "log_probabilities"), c),
                           num_at(json_object_get(first, "log_probabilities"), c), 0);
    reply_free(&r);
    dn_text_free(&t);
    json_decref(first);

    /* The network's own 28x28: exactly what the library computes. */
    uint8_t px[784];
    pixels_of(0, px);
    char *body = pixels_json(px);
    r = post("/api/predict", "application/json", body, strlen(body));
    assert_int_equal(r.status, 200);
    float ref[10];
    library_logp(px, ref);
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(num_at(json_object_get(r.json, "log_probabilities"), c), ref[c], 1e-5);
    if (t_have_mnist())
        assert_int_equal(json_integer_value(json_object_get(r.json, "prediction")), 7);
    json_t *input = json_object_get(r.json, "input");
    for (size_t i = 0; i < 784; i++)
        assert_int_equal(json_integer_value(json_array_get(input, i)), px[i]);
    assert_null(json_object_get(r.json, "preprocess"));
    reply_free(&r);

    /* raw=1: a 28x28 PNG of the same digit is taken as it is. */
    uint8_t *enc;
    size_t elen;
    dn_error err = {0};
    assert_int_equal(dn_png_encode(px, 28, 28, 1, &enc, &elen, &err), DN_OK);
    r = post("/api/predict?raw=1", "image/png", enc, elen);
    assert_int_equal(r.status, 200);
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(num_at(json_object_get(r.json, "log_probabilities"), c), ref[c], 1e-5);
    reply_free(&r);
    free(enc);
    free(body);
    free(png);
}

static void test_predict_extras(void **state)
{
    (void)state;
    size_t n;
    char *png = t_read_file(CANVAS_PNG, &n);
    reply r = post("/api/predict?maps=1&saliency=1&naive=1", "image/png", png, n);
    assert_int_equal(r.status, 200);
    json_t *maps = json_object_get(r.json, "maps");
    static const struct {
        const char *name;
        int c, h, w;
    } want[] = {{"input", 1, 28, 28},        {"conv1 + ReLU", 8, 28, 28}, {"pool1", 8, 14, 14},
                {"conv2 + ReLU", 16, 14, 14}, {"pool2", 16, 7, 7},        {"flatten", 784, 1, 1},
                {"fc1 + ReLU", 64, 1, 1},     {"output", 10, 1, 1}};
    assert_int_equal(json_array_size(maps), 8);
    for (size_t s = 0; s < 8; s++) {
        json_t *m = json_array_get(maps, s), *shape = json_object_get(m, "shape");
        assert_string_equal(json_string_value(json_object_get(m, "name")), want[s].name);
        assert_int_equal(json_integer_value(json_array_get(shape, 0)), want[s].c);
        assert_int_equal(json_integer_value(json_array_get(shape, 1)), want[s].h);
        assert_int_equal(json_integer_value(json_array_get(shape, 2)), want[s].w);
        json_t *v = json_object_get(m, "values");
        assert_int_equal(json_array_size(v), (size_t)(want[s].c * want[s].h * want[s].w));
        double lo = 1e30, hi = -1e30;
        for (size_t i = 0; i < json_array_size(v); i++) {
            lo = fmin(lo, num_at(v, i));
            hi = fmax(hi, num_at(v, i));
        }
        assert_float_equal(lo, json_number_value(json_object_get(m, "min")), 1e-3 * fabs(lo) + 1e-6);
        assert_float_equal(hi, json_number_value(json_object_get(m, "max")), 1e-3 * fabs(hi) + 1e-6);
    }
    /* The output stage is the answer's log-probabilities. */
    json_t *out = json_object_get(json_array_get(maps, 7), "values");
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(num_at(out, c), num_at(json_object_get(r.json, "log_probabilities"), c),
                           1e-3 * fabs(num_at(out, c)) + 1e-4);
    json_t *sal = json_object_get(r.json, "saliency");
    assert_int_equal(json_integer_value(json_object_get(sal, "class")),
                     json_integer_value(json_object_get(r.json, "prediction")));
    assert_int_equal(json_array_size(json_object_get(sal, "values")), 784);
    assert_true(json_number_value(json_object_get(sal, "max")) > 0);
    json_t *naive = json_object_get(r.json, "naive");
    assert_int_equal(json_array_size(json_object_get(naive, "input")), 784);
    assert_int_equal(json_array_size(json_object_get(naive, "log_probabilities")), 10);
    json_t *timing = json_object_get(r.json, "timing_us");
    assert_true(json_number_value(json_object_get(timing, "maps")) > 0);
    assert_true(json_number_value(json_object_get(timing, "saliency")) > 0);
    reply_free(&r);
    expect_error(post("/api/predict?maps=2", "image/png", png, n), 400, "maps", "maps=2");
    free(png);
}

static void test_batch(void **state)
{
    (void)state;
    uint8_t a[784], b[784];
    pixels_of(1, a);
    pixels_of(2, b);
    char *ja = pixels_json(a), *jb = pixels_json(b);
    size_t n;
    char *png = t_read_file(CANVAS_PNG, &n);
    dn_text t = {0};
    dn_text_printf(&t, "[%s,{\"image\":\"", ja);
    b64((unsigned char *)png, n, &t);
    dn_text_printf(&t, "\"},%s]", jb);
    reply r = post("/api/predict/batch", "application/json", t.s, t.len);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 3);
    /* Each answer equals the one for the input alone. */
    const char *single[3] = {ja, NULL, jb};
    for (size_t i = 0; i < 3; i++) {
        reply one = single[i] ? post("/api/predict", "application/json", single[i], strlen(single[i]))
                              : post("/api/predict", "image/png", png, n);
        assert_int_equal(one.status, 200);
        json_t *x = json_array_get(r.json, i);
        for (size_t c = 0; c < 10; c++)
            assert_float_equal(num_at(json_object_get(x, "log_probabilities"), c),
                               num_at(json_object_get(one.json, "log_probabilities"), c), 1e-5);
        assert_int_equal(json_integer_value(json_object_get(x, "prediction")),
                         json_integer_value(json_object_get(one.json, "prediction")));
        reply_free(&one);
    }
    reply_free(&r);
    dn_text_free(&t);

    expect_error(post("/api/predict/batch", "application/json", "[]", 2), 400, "1 to 256",
                 "empty batch");
    expect_error(post("/api/predict/batch", "application/json", "{}", 2), 400, "array",
                 "batch not an array");
    dn_text_printf(&t, "[");
    for (int i = 0; i < 257; i++)
        dn_text_printf(&t, "%s{\"pixels\":[]}", i ? "," : "");
    dn_text_printf(&t, "]");
    expect_error(post("/api/predict/batch", "application/json", t.s, t.len), 400, "256",
                 "batch of 257");
    dn_text_free(&t);
    dn_text_printf(&t, "[%s,{\"pixels\":[1,2,3]}]", ja);
    expect_error(post("/api/predict/batch", "application/json", t.s, t.len), 400, "item 1",
                 "batch with a bad item");
    dn_text_free(&t);
    expect_error(post("/api/predict/batch", "image/png", png, n), 415, "application/json",
                 "batch as image/png");
    free(ja);
    free(jb);
    free(png);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    char buf[128];
    expect_error(get("/nope"), 404, "no such route", "unknown route");
    expect_error(get("/api/nope"), 404, "no such route", "unknown API route");
    reply r = get("/api/predict");
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow", buf, sizeof buf), "POST");
    expect_error(r, 405, "POST", "GET /api/predict");
    r = post("/api/model", "application/json", "{}", 2);
    assert_string_equal(header(&r, "Allow", buf, sizeof buf), "GET, HEAD");
    expect_error(r, 405, "GET", "POST /api/model");
    expect_error(request(main_srv.port, "DELETE", "/healthz", NULL, NULL, 0, ""), 405, "GET",
                 "DELETE /healthz");
    expect_error(request(main_srv.port, "PUT", "/", "text/plain", "x", 1, ""), 405, "GET",
                 "PUT /");

    expect_error(post("/api/predict", "text/plain", "hello", 5), 415, "text/plain", "text/plain");
    expect_error(post("/api/predict", NULL, "hello", 5), 415, "missing", "no Content-Type");
    expect_error(post("/api/predict", "image/png", "hello", 5), 400, "not an image",
                 "not an image");
    expect_error(post("/api/predict", "image/png", "", 0), 400, "empty", "empty body");
    expect_error(post("/api/predict", "application/json", "{\"pixels\":", 10), 400, "bad JSON",
                 "bad JSON");
    expect_error(post("/api/predict", "application/json", "[1,2]", 5), 400, "object",
                 "JSON not an object");
    expect_error(post("/api/predict", "application/json", "{\"pixels\":[1,2]}", 16), 400, "784",
                 "too few pixels");
    expect_error(post("/api/predict", "application/json", "{}", 2), 400, "exactly one",
                 "neither pixels nor image");
    expect_error(post("/api/predict", "application/json", "{\"image\":\"@@@\"}", 15), 400,
                 "base64", "image not base64");
    expect_error(post("/api/predict", "application/json", "{\"image\":7}", 11), 400, "string",
                 "image not a string");
    expect_error(post("/api/predict", "application/json", "{\"image\":\"data:image/png,abc\"}", 30),
                 400, "base64", "data URL without base64");
    uint8_t px[784];
    pixels_of(0, px);
    json_t *a = json_array();
    for (int i = 0; i < 784; i++)
        json_array_append_new(a, json_integer(i == 100 ? 300 : px[i]));
    json_t *o = json_pack("{s:o}", "pixels", a);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    expect_error(post("/api/predict", "application/json", body, strlen(body)), 400,
                 "\"pixels\"[100] must be a number 0..255", "pixel 100 = 300");
    free(body);

    /* A picture without a digit: 422. */
    uint8_t white[64 * 64];
    memset(white, 255, sizeof white);
    uint8_t *enc;
    size_t elen;
    dn_error err = {0};
    assert_int_equal(dn_png_encode(white, 64, 64, 1, &enc, &elen, &err), DN_OK);
    expect_error(post("/api/predict", "image/png", enc, elen), 422, "no digit", "blank picture");
    free(enc);

    /* A picture that claims to be wider than the decoders take: a PNG
     * signature and a well-formed IHDR of 9000 x 10, nothing after. */
    unsigned char wide[33] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
                              'I',  'H', 'D', 'R', 0,    0,    0x23, 0x28, 0, 0, 0, 10, 8};
    uLong crc = crc32(0L, wide + 12, 17);
    for (int i = 0; i < 4; i++)
        wide[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
    expect_error(post("/api/predict", "image/png", wide, sizeof wide), 400, "9000",
                 "9000x10 PNG header");
}

/* A Content-Length over 1 MiB is refused from the headers: the answer
 * comes without a byte of the body sent. */
static void test_body_limit(void **state)
{
    (void)state;
    int fd = dial(main_srv.port, 10);
    const char head[] = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                        "Content-Length: 2097152\r\n\r\n";
    assert_int_equal(send_all(fd, head, sizeof head - 1), 0);
    size_t n;
    char *ans = read_all(fd, &n);
    close(fd);
    int status = 0;
    sscanf(ans, "HTTP/1.%*d %d", &status);
    print_message("2 MiB announced, nothing sent: %.60s...\n", ans);
    assert_int_equal(status, 413);
    assert_non_null(strstr(ans, "\"error\""));
    free(ans);

    /* Sent in full all the same: still 413, not a buffered body. */
    size_t big = SERVE_BIG;
    char *blob = calloc(1, big);
    reply r = post("/api/predict", "image/png", blob, big);
    expect_error(r, 413, "at most", "1 MiB + 1 body");
    free(blob);

    /* A chunked body that grows past the limit is cut off while it is
     * read: the connection closes before the client is done. */
    fd = dial(main_srv.port, 10);
    const char chead[] = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(send_all(fd, chead, sizeof chead - 1), 0);
    char chunk[65536 + 16];
    int hl = snprintf(chunk, sizeof chunk, "10000\r\n");
    memset(chunk + hl, 'x', 65536);
    memcpy(chunk + hl + 65536, "\r\n", 2);
    int sent = 0, refused = 0;
    for (; sent < 256; sent++)
        if (send_all(fd, chunk, (size_t)hl + 65536 + 2) != 0) {
            refused = 1;
            break;
        }
    if (!refused) {
        char tmp[256];
        refused = recv(fd, tmp, sizeof tmp, 0) <= 0 || strstr(tmp, " 413 ") != NULL;
    }
    close(fd);
    print_message("chunked body: refused after %d of 256 chunks of 64 KiB\n", sent);
    assert_true(refused);
    assert_true(sent < 256);
    assert_true(server_alive(&main_srv));
}

/* Hostile and broken requests, each on its own connection; then a good
 * request must still be answered. */
static void test_malformed(void **state)
{
    (void)state;
    static const char *const fixed[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET /\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/sample?index=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /api/sample?index=99999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: "
        "chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n"
        "\x89PNG\r\n\x1a\n",
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12"
        "\r\n\r\n{\"pixels\":{",
        "POST /api/predict?maps=%00 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1"
        "\r\n\r\nx",
        "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n Continuation: folded\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\r\n\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nExpect: 100-continue\r\n\r\n",
    };
    int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
    dn_rng rng;
    dn_rng_seed(&rng, 2024);
    int answered = 0, total = 0;
    char *big = malloc(200000);
    for (int k = 0; k < nfixed + 300; k++) {
        const char *req;
        size_t len;
        if (k < nfixed) {
            req = fixed[k];
            len = strlen(req);
        } else if (k < nfixed + 200) {
            /* Random bytes, sometimes after a plausible start. */
            len = 1 + dn_rng_below(&rng, 3000);
            size_t start = 0;
            if (k % 2) {
                const char *pre = k % 4 == 1 ? "POST /api/predict HTTP/1.1\r\n" : "GET /";
                start = strlen(pre);
                memcpy(big, pre, start);
            }
            for (size_t i = start; i < len + start; i++)
                big[i] = (char)dn_rng_below(&rng, 256);
            len += start;
            req = big;
        } else if (k < nfixed + 250) {
            /* Huge header lines and many headers. */
            size_t n = (size_t)snprintf(big, 200000, "GET / HTTP/1.1\r\nHost: x\r\n");
            int lines = 1 + (int)dn_rng_below(&rng, 2000);
            for (int i = 0; i < lines && n < 190000; i++)
                n += (size_t)snprintf(big + n, 200000 - n, "X-%d: %0*d\r\n", i,
                                      (int)dn_rng_below(&rng, 300), 7);
            n += (size_t)snprintf(big + n, 200000 - n, "\r\n");
            req = big;
            len = n;
        } else {
            /* A good prefix cut short anywhere. */
            static const char good[] = "POST /api/predict?maps=1 HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Type: application/json\r\nContent-Length: 30\r\n\r\n"
                                       "{\"pixels\":[0,0,0,0,0,0,0,0,0]}";
            len = 1 + dn_rng_below(&rng, sizeof good - 2);
            req = good;
        }
        int fd = dial(main_srv.port, 5);
        send_all(fd, req, len);
        shutdown(fd, SHUT_WR);
        size_t n;
        char *ans = read_all(fd, &n);
        close(fd);
        total++;
        if (n) {
            int status = 0;
            if (sscanf(ans, "HTTP/1.%*d %d", &status) != 1)
                fail_msg("request %d: an answer that is not HTTP: %.100s", k, ans);
            if (status != 200 && (status < 400 || status > 505))
                fail_msg("request %d: status %d", k, status);
            answered++;
        }
        free(ans);
        assert_true(server_alive(&main_srv));
    }
    free(big);
    print_message("%d malformed requests: %d answered with an HTTP error, the rest closed\n",
                  total, answered);
    reply r = get("/healthz");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    uint8_t px[784];
    pixels_of(0, px);
    char *body = pixels_json(px);
    r = post("/api/predict", "application/json", body, strlen(body));
    assert_int_equal(r.status, 200);
    reply_free(&r);
    free(body);
}

/* A slow or greedy client cannot hold the pool: connections per address
 * are limited and idle ones are closed. */
static void test_limits(void **state)
{
    (void)state;
    server s;
    const char *const extra[] = {"--per-ip", "4", "--timeout", "1", NULL};
    server_start(&s, "limits", extra);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = dial(s.port, 10);
        send_all(fds[i], "GET / HTTP/1.1\r\n", 16); /* headers never finished */
    }
    /* The fifth connection from this address is dropped at once. */
    int fd = dial(s.port, 5);
    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
    size_t n;
    char *ans = read_all(fd, &n);
    close(fd);
    print_message("fifth connection: %zu bytes of answer\n", n);
    assert_int_equal(n, 0);
    free(ans);
    /* The idle ones are closed after about the timeout. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 4; i++) {
        ans = read_all(fds[i], &n);
        free(ans);
        close(fds[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    print_message("idle connections closed after %.2f s (timeout 1 s)\n", waited);
    assert_true(waited < 5);
    reply r = request(s.port, "GET", "/healthz", NULL, NULL, 0, "");
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(server_stop(&s, SIGTERM), 0);
}

/* ------------------------------------------------------------------------ */
/* Log, metrics, reload, stop                                               */
/* ------------------------------------------------------------------------ */

static void test_log_and_metrics(void **state)
{
    (void)state;
    reply r = get("/metrics");
    assert_int_equal(r.status, 200);
    char buf[128];
    assert_non_null(strstr(header(&r, "Content-Type", buf, sizeof buf), "text/plain"));
    static const char *const want[] = {
        "# TYPE digitnet_http_requests_total counter",
        "digitnet_http_requests_total{route=\"/api/predict\",status=\"200\"} ",
        "digitnet_http_requests_total{route=\"/api/predict\",status=\"400\"} ",
        "digitnet_http_requests_total{route=\"none\",status=\"404\"} ",
        "# TYPE digitnet_http_request_duration_seconds histogram",
        "digitnet_http_request_duration_seconds_bucket{route=\"/api/predict\",le=\"+Inf\"} ",
        "digitnet_http_request_duration_seconds_count{route=\"/api/predict\"} ",
        "digitnet_predictions_total ",
        "digitnet_model_generation 1",
        "process_resident_memory_bytes ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(r.body, want[i]))
            fail_msg("/metrics lacks '%s':\n%s", want[i], r.body);
    long ok = 0;
    const char *p = strstr(r.body, "digitnet_http_requests_total{route=\"/api/predict\",status=\"200\"} ");
    sscanf(strchr(p, '}') + 2, "%ld", &ok);
    assert_true(ok >= 5);
    reply_free(&r);

    /* One access-log line per answered request: address, method, path,
     * status, bytes, microseconds. */
    usleep(100000);
    char *log = t_read_file(main_srv.log, NULL);
    assert_non_null(log);
    int lines = 0, predicts = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        char method[16], path[256];
        int status;
        size_t bytes;
        double us;
        const char *q = strstr(line, "Z ");
        if (q && sscanf(q, "Z 127.0.0.1 \"%15s %255[^\"]\" %d %zu %lfus", method, path, &status,
                        &bytes, &us) == 5) {
            predicts += !strcmp(path, "/api/predict") && status == 200;
            assert_true(us > 0);
        }
    }
    /* Requests that libmicrohttpd refuses while parsing never reach the
     * server's code and are not in the log; every other one is. */
    print_message("access log: %d lines, %d successful predictions\n", lines, predicts);
    assert_true(lines > 60);
    assert_true(predicts >= ok - 1);
    free(log);
}

static void test_reload(void **state)
{
    (void)state;
    uint8_t px[784];
    pixels_of(3, px);
    char *body = pixels_json(px);
    reply before = post("/api/predict", "application/json", body, strlen(body));
    assert_int_equal(before.status, 200);

    /* A good new file: served from the next request on. */
    copy_file(OTHER_MODEL, main_srv.model);
    kill(main_srv.pid, SIGHUP);
    reply r;
    int gen = 1;
    for (int i = 0; i < 500 && gen == 1; i++) {
        usleep(20000);
        r = get("/healthz");
        gen = (int)json_integer_value(json_object_get(r.json, "generation"));
        reply_free(&r);
    }
    assert_int_equal(gen, 2);
    reply after = post("/api/predict", "application/json", body, strlen(body));
    assert_int_equal(after.status, 200);
    double diff = 0;
    for (size_t c = 0; c < 10; c++)
        diff = fmax(diff, fabs(num_at(json_object_get(before.json, "log_probabilities"), c) -
                               num_at(json_object_get(after.json, "log_probabilities"), c)));
    print_message("reloaded: log-probabilities moved by up to %.3g\n", diff);
    assert_true(diff > 1e-3);

    /* A bad new file: refused, the model before keeps serving. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.part", main_srv.model);
    t_write_file(tmp, "not a model", 11);
    assert_int_equal(rename(tmp, main_srv.model), 0);
    kill(main_srv.pid, SIGHUP);
    char *err = NULL;
    for (int i = 0; i < 500; i++) {
        usleep(20000);
        free(err);
        err = t_read_file(main_srv.err, NULL);
        if (err && strstr(err, "reload refused"))
            break;
    }
    assert_non_null(err);
    if (!strstr(err, "reload refused, still serving generation 2"))
        fail_msg("no refusal in the server's stderr:\n%s", err);
    free(err);
    r = get("/healthz");
    assert_int_equal(json_integer_value(json_object_get(r.json, "generation")), 2);
    reply_free(&r);
    reply again = post("/api/predict", "application/json", body, strlen(body));
    assert_int_equal(again.status, 200);
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(num_at(json_object_get(again.json, "log_probabilities"), c),
                           num_at(json_object_get(after.json, "log_probabilities"), c), 0);
    r = get("/metrics");
    assert_non_null(strstr(r.body, "digitnet_model_reloads_total{result=\"ok\"} 1"));
    assert_non_null(strstr(r.body, "digitnet_model_reloads_total{result=\"refused\"} 1"));
    reply_free(&r);
    reply_free(&before);
    reply_free(&after);
    reply_free(&again);
    free(body);
}

/* SIGTERM while a batch is being answered: it is answered in full, then
 * the server exits 0. */
static void test_stop(void **state)
{
    (void)state;
    dn_text t = {0};
    uint8_t px[784];
    dn_text_printf(&t, "[");
    for (int i = 0; i < 64; i++) {
        pixels_of(i, px);
        char *one = pixels_json(px);
        dn_text_printf(&t, "%s%s", i ? "," : "", one);
        free(one);
    }
    dn_text_printf(&t, "]");
    int fd = dial(main_srv.port, 60);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /api/predict/batch?saliency=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", t.len);
    assert_int_equal(send_all(fd, head, (size_t)n), 0);
    assert_int_equal(send_all(fd, t.s, t.len), 0);
    /* The signal while the batch is on its way in or being answered. */
    usleep(20000);
    kill(main_srv.pid, SIGTERM);
    size_t len;
    char *ans = read_all(fd, &len);
    close(fd);
    int status = 0;
    sscanf(ans, "HTTP/1.%*d %d", &status);
    assert_int_equal(status, 200);
    json_t *arr = json_loads(strstr(ans, "\r\n\r\n") + 4, 0, NULL);
    assert_int_equal(json_array_size(arr), 64);
    json_decref(arr);
    free(ans);
    dn_text_free(&t);
    assert_int_equal(server_stop(&main_srv, SIGTERM), 0);
    char *err = t_read_file(main_srv.err, NULL);
    assert_non_null(strstr(err, "stopping on SIGTERM"));
    free(err);
    main_srv.pid = 0;
}

static void test_usage(void **state)
{
    (void)state;
    static char out[8192];
    assert_int_equal(t_run(out, sizeof out, "serve --help"), 0);
    assert_non_null(strstr(out, "--per-ip"));
    assert_int_equal(t_run(out, sizeof out, "serve --port 70000"), 2);
    assert_non_null(strstr(out, "--port"));
    assert_int_equal(t_run(out, sizeof out, "serve --threads 0"), 2);
    assert_int_equal(t_run(out, sizeof out, "serve --bogus"), 2);
    assert_int_equal(t_run(out, sizeof out, "serve --model %s/none.safetensors", t_tmpdir()), 1);
    assert_non_null(strstr(out, "digitnet train"));
    char bad[512];
    t_tmppath(bad, sizeof bad, "bad.safetensors");
    t_write_file(bad, "junk", 4);
    assert_int_equal(t_run(out, sizeof out, "serve --model %s --port 0", bad), 1);
    /* The port in use: one line naming it. */
    assert_int_equal(t_run(out, sizeof out, "serve --model %s --host 127.0.0.1 --port %d",
                           FIXTURE_MODEL, main_srv.port), 1);
    print_message("port in use: %s", out);
    assert_non_null(strstr(out, "cannot listen"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_and_docs),
        cmocka_unit_test(test_model_and_sample),
        cmocka_unit_test(test_predict),
        cmocka_unit_test(test_predict_extras),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_log_and_metrics),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
