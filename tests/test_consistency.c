/*
 * test_consistency.c - the same network everywhere: the first 1,000 MNIST
 * test images go to every runtime digitnet's model runs in, and each must
 * give the C API's log-probabilities within 1e-4 and the same predictions:
 *
 *   the C API            dn_model_forward, batches of 100 (the reference)
 *   the command          digitnet eval --logprobs-out
 *   ONNX Runtime         digitnet export --onnx, run by npm onnxruntime-node
 *   WebAssembly, node    out/web/digitnet.js (make web), one image a call
 *   WebAssembly, Chromium  the same in headless Chromium, served over HTTP
 *                        and opened from file:// (tools/wasm_browser.py)
 *
 * and the pictures of tests/fixtures/digits go through the native and the
 * WebAssembly preprocessing (decoding included), which must give the same
 * 28x28.
 *   the HTTP server      digitnet serve, POST /api/predict/batch, when the
 *                        command has it
 *
 * Each runtime gets the raw pixels and normalises them as its model file
 * (or the ONNX file's metadata) says, as a user of that runtime would.
 * The model is the lecture's (tests/fixtures/mnist-model.safetensors).
 */
#include "runtimes.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MODEL "tests/fixtures/mnist-model.safetensors"
#define N 1000
#define K 10
#define TOL 1e-4

static char out[1 << 16];

/* What every test compares with, made once by the group set-up. */
static uint8_t *pixels;     // (N, 28, 28) raw bytes
static float *ref;          // (N, K) the C API's log-probabilities
static float mean, std;

static const char *bin(void)
{
    const char *b = getenv("DN_BIN");
    return b && *b ? b : "./digitnet";
}

static int setup(void **state)
{
    (void)state;
    dn_dataset ds;
    dn_error err = {0};
    if (t_load_mnist(&ds, "test") != 0)
        return -1;
    if (!ds.n)
        return 0; /* each test then skips, saying why (t_need_mnist) */
    dn_model *m = dn_model_load(MODEL, NULL, &err);
    if (!m) {
        print_error("%s\n", err.msg);
        dn_dataset_free(&ds);
        return -1;
    }
    mean = m->mean;
    std = m->std;
    pixels = malloc((size_t)N * 784);
    ref = malloc((size_t)N * K * sizeof *ref);
    float *x = malloc((size_t)100 * 784 * sizeof *x);
    dn_work *w = dn_work_new(m, 100);
    int ok = pixels && ref && x && w && dn_model_classes(m) == K;
    for (int b = 0; ok && b < N; b += 100) {
        for (int i = 0; i < 100; i++)
            dn_dataset_image(&ds, (size_t)(b + i), x + (size_t)i * 784);
        const float *lp = dn_model_forward(m, w, x, 100, DN_MODE_EVAL, NULL);
        ok = lp != NULL;
        if (ok)
            memcpy(ref + (size_t)b * K, lp, 100 * K * sizeof *lp);
    }
    if (ok)
        memcpy(pixels, ds.images, (size_t)N * 784);
    dn_work_free(w);
    free(x);
    dn_model_free(m);
    dn_dataset_free(&ds);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(pixels);
    free(ref);
    return 0;
}

static void need_reference(void)
{
    t_need_mnist();
    assert_non_null(pixels);
}

/* The raw pixels in a file, for the runtimes that read them. */
static const char *pixels_file(void)
{
    static char path[512];
    if (!path[0]) {
        t_tmppath(path, sizeof path, "pixels.u8");
        t_write_file(path, pixels, (size_t)N * 784);
    }
    return path;
}

/* ------------------------------------------------------------------------ */
/* The runtimes                                                             */
/* ------------------------------------------------------------------------ */

static void test_cli(void **state)
{
    (void)state;
    need_reference();
    char res[512];
    t_tmppath(res, sizeof res, "cli.f32");
    int rc = t_run(out, sizeof out,
                   "eval --model %s --data '%s' --limit %d --threads 1 --logprobs-out '%s'",
                   MODEL, t_mnist_dir(), N, res);
    if (rc != 0)
        fail_msg("eval: exit %d:\n%s", rc, out);
    float *got = t_read_floats(res, (size_t)N * K);
    t_compare_logp("digitnet eval (the command)", ref, got, N, K, TOL);
    free(got);
}

static void test_onnx_runtime(void **state)
{
    (void)state;
    need_reference();
    char onnx[512], in[512], res[512];
    t_tmppath(onnx, sizeof onnx, "model.onnx");
    t_tmppath(in, sizeof in, "onnx_in.f32");
    t_tmppath(res, sizeof res, "onnx_out.f32");
    int rc = t_run(out, sizeof out, "export --model %s --onnx '%s'", MODEL, onnx);
    if (rc != 0)
        fail_msg("export: exit %d:\n%s", rc, out);
    float *x = t_normalise(pixels, N, mean, std);
    t_write_floats(in, x, (size_t)N * 784);
    free(x);
    rc = t_sh(out, sizeof out, "node tools/node/ort_run.js '%s' '%s' %dx1x28x28 '%s'", onnx, in,
              N, res);
    if (rc == 3 || rc == 127)
        t_missing("ONNX Runtime for node is not installed (scripts/install-node-deps)");
    if (rc != 0)
        fail_msg("ort_run: exit %d: %s", rc, out);
    float *got = t_read_floats(res, (size_t)N * K);
    t_compare_logp("ONNX Runtime (onnxruntime-node)", ref, got, N, K, TOL);
    free(got);
}

static const char *web_dir(void)
{
    const char *web = getenv("DN_WEB_DIR");
    return web && *web ? web : "out/web";
}

static void test_wasm_node(void **state)
{
    (void)state;
    need_reference();
    char res[512];
    t_tmppath(res, sizeof res, "wasm.f32");
    int rc = t_sh(out, sizeof out, "node tools/node/wasm_run.js '%s' %s '%s' %d '%s' 1000", web_dir(),
                  MODEL, pixels_file(), N, res);
    if (rc == 3 || rc == 127)
        t_missing("the WebAssembly build is missing (make web builds out/web)");
    if (rc != 0)
        fail_msg("wasm_run: exit %d: %s", rc, out);
    print_message("%s", out);
    float *got = t_read_floats(res, (size_t)N * K);
    t_compare_logp("WebAssembly in node (out/web/digitnet.js)", ref, got, N, K, TOL);
    free(got);
}

static void wasm_in_chromium(const char *how, const char *flag)
{
    need_reference();
    char res[512], what[128];
    t_tmppath(res, sizeof res, "chromium.f32");
    int rc = t_sh(out, sizeof out,
                  "/usr/bin/python3 tools/wasm_browser.py '%s' %s '%s' %d '%s' --repeat 1000 %s",
                  web_dir(), MODEL, pixels_file(), N, res, flag);
    if (rc == 3 || rc == 127)
        t_missing(out);
    if (rc != 0)
        fail_msg("wasm_browser: exit %d: %s", rc, out);
    print_message("%s", out);
    float *got = t_read_floats(res, (size_t)N * K);
    snprintf(what, sizeof what, "WebAssembly in headless Chromium, %s", how);
    t_compare_logp(what, ref, got, N, K, TOL);
    free(got);
}

static void test_wasm_chromium(void **state)
{
    (void)state;
    wasm_in_chromium("served over HTTP", "");
}

static void test_wasm_chromium_file(void **state)
{
    (void)state;
    wasm_in_chromium("opened from file://", "--file");
}

/* The drawings and photos of tests/fixtures/digits, decoded and prepared as
 * MNIST was by the WebAssembly build and natively. */
static void test_wasm_preprocess(void **state)
{
    (void)state;
    static const char *const pictures[] = {
        "0-pencil.jpg", "1-blue-ink.png", "2-chalk.bmp", "3-canvas.png", "4-pencil.jpg",
        "5-blue-ink.png", "6-chalk.bmp", "7-canvas.png", "8-pencil.jpg", "9-blue-ink.png",
    };
    enum { NP = sizeof pictures / sizeof pictures[0] };
    char list[2048] = "", res[512];
    for (int i = 0; i < NP; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, " tests/fixtures/digits/%s", pictures[i]);
    }
    t_tmppath(res, sizeof res, "prep.f32");
    int rc = t_sh(out, sizeof out, "node tools/node/wasm_prep.js '%s' %s '%s'%s", web_dir(),
                  MODEL, res, list);
    if (rc == 3 || rc == 127)
        t_missing("the WebAssembly build is missing (make web builds out/web)");
    if (rc != 0)
        fail_msg("wasm_prep: exit %d: %s", rc, out);
    float *got = t_read_floats(res, (size_t)NP * 784);
    double worst = 0;
    for (int i = 0; i < NP; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/digits/%s", pictures[i]);
        dn_image img;
        dn_error err = {0};
        float want[784];
        if (dn_image_load(path, &img, &err) != DN_OK ||
            dn_image_preprocess(&img, want, NULL, &err) != DN_OK)
            fail_msg("%s", err.msg);
        dn_image_free(&img);
        for (int p = 0; p < 784; p++) {
            double d = fabs((double)want[p] - got[(size_t)i * 784 + p]);
            if (d > 1e-6)
                fail_msg("%s: pixel %d: WebAssembly %.9g, native %.9g", path, p,
                         (double)got[(size_t)i * 784 + p], (double)want[p]);
            worst = d > worst ? d : worst;
        }
    }
    print_message("WebAssembly preprocessing of %d pictures (PNG, JPEG, BMP): max abs "
                  "difference %.3g from the native\n", NP, worst);
    free(got);
}

/* ---- the HTTP server ----------------------------------------------------- */

/* A port nobody listens on now (the kernel's choice for port 0). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Images [first, first + n) as the API takes a batch: [{"pixels": [784
 * values]}, ...] (about 280 kB for 100, well under the 1 MiB a body may
 * have). */
#define HTTP_BATCH 100

static void write_batch_json(const char *path, int first, int n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputc('[', f);
    for (int i = first; i < first + n; i++) {
        fputs(i > first ? ",{\"pixels\":[" : "{\"pixels\":[", f);
        for (int p = 0; p < 784; p++)
            fprintf(f, p ? ",%d" : "%d", pixels[(size_t)i * 784 + p]);
        fputs("]}", f);
    }
    fputc(']', f);
    assert_int_equal(fclose(f), 0);
}

/* The log_probabilities of an answer to a batch of n into got (n, K). */
static void read_batch_answer(const char *path, int n, float *got)
{
    json_error_t je;
    json_t *arr = json_load_file(path, 0, &je);
    if (!json_is_array(arr) || json_array_size(arr) != (size_t)n)
        fail_msg("%s: not an array of %d results (%s)", path, n, je.text);
    for (int i = 0; i < n; i++) {
        json_t *lp = json_object_get(json_array_get(arr, (size_t)i), "log_probabilities");
        if (json_array_size(lp) != K)
            fail_msg("result %d has no %d log_probabilities", i, K);
        for (int c = 0; c < K; c++)
            got[(size_t)i * K + c] = (float)json_number_value(json_array_get(lp, (size_t)c));
    }
    json_decref(arr);
}

static void test_http_server(void **state)
{
    (void)state;
    need_reference();
    if (t_run(out, sizeof out, "serve --help") != 0) {
        print_message("skipped: this digitnet has no 'serve' command yet\n");
        skip();
    }
    if (t_sh(NULL, 0, "command -v curl") != 0)
        t_missing("curl is missing (scripts/install-deps installs it)");
    int port = free_port();
    char log[512], body[512], answer[512], name[32];
    t_tmppath(log, sizeof log, "serve.log");
    t_tmppath(body, sizeof body, "batch.json");

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(127);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        execl(bin(), bin(), "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", p,
              "--threads", "2", (char *)NULL);
        _exit(127);
    }
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        up = t_sh(NULL, 0, "curl -sf -m 2 http://127.0.0.1:%d/healthz", port) == 0;
        if (!up)
            sleep_ms(100);
    }
    /* Nothing in here may fail the test before the server is stopped. */
    int rc = up ? 0 : -1, first = 0;
    for (; up && first < N; first += HTTP_BATCH) {
        write_batch_json(body, first, HTTP_BATCH);
        snprintf(name, sizeof name, "answer%d.json", first);
        rc = t_sh(out, sizeof out,
                  "curl -sS -f -m 60 -H 'Content-Type: application/json' --data-binary @'%s' "
                  "-o '%s' 'http://127.0.0.1:%d/api/predict/batch?raw=1'", body,
                  t_tmppath(answer, sizeof answer, name), port);
        if (rc != 0)
            break;
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    if (!up) {
        char *text = t_read_file(log, NULL);
        fail_msg("digitnet serve did not answer /healthz within 10 s:\n%s", text ? text : "");
    }
    if (rc != 0)
        fail_msg("POST /api/predict/batch (images %d..%d): curl exit %d: %s", first,
                 first + HTTP_BATCH - 1, rc, out);
    float *got = malloc((size_t)N * K * sizeof *got);
    assert_non_null(got);
    for (first = 0; first < N; first += HTTP_BATCH) {
        snprintf(name, sizeof name, "answer%d.json", first);
        read_batch_answer(t_tmppath(answer, sizeof answer, name), HTTP_BATCH,
                          got + (size_t)first * K);
    }
    t_compare_logp("the HTTP server (POST /api/predict/batch)", ref, got, N, K, TOL);
    free(got);
    /* SIGTERM is a clean stop. */
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_onnx_runtime),
        cmocka_unit_test(test_wasm_node),
        cmocka_unit_test(test_wasm_chromium),
        cmocka_unit_test(test_wasm_chromium_file),
        cmocka_unit_test(test_wasm_preprocess),
        cmocka_unit_test(test_http_server),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
