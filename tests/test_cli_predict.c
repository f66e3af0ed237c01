/*
 * test_cli_predict.c - `digitnet predict`: the lecture's table, JSON lines,
 * the 28x28 it saves, the drawings in tests/fixtures/digits, bad files,
 * a missing model, and usage errors with their exit codes.
 *
 * Tests that need the trained model (tests/fixtures/mnist-model.safetensors,
 * or $DIGITNET_TEST_MODEL) or MNIST skip when they are missing.
 */
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

static char out[1 << 17];

static void must_contain(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("output lacks '%s':\n%.3000s", needle, text);
}

static const char *model(void)
{
    const char *p = getenv("DIGITNET_TEST_MODEL");
    p = p && *p ? p : "tests/fixtures/mnist-model.safetensors";
    struct stat st;
    if (stat(p, &st) != 0) {
        print_message("no trained model at %s, skipping\n", p);
        skip();
    }
    return p;
}

/* The JSON objects of output lines that start with '{'. */
static int json_lines(const char *text, json_t **objs, int max)
{
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && *p == '{') {
            json_error_t je;
            objs[n] = json_loadb(p, len, 0, &je);
            if (!objs[n])
                fail_msg("not JSON: %.*s (%s)", (int)len, p, je.text);
            n++;
        }
        p += len + (e ? 1 : 0);
    }
    return n;
}

static double logsumexp(json_t *arr)
{
    double mx = -INFINITY, s = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) mx = fmax(mx, json_number_value(v));
    json_array_foreach(arr, i, v) s += exp(json_number_value(v) - mx);
    return mx + log(s);
}

/* ---- the lecture's table ------------------------------------------------- */

static void test_table(void **state)
{
    (void)state;
    t_need_mnist();
    const char *m = model();
    int rc = t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 0",
                   m, t_mnist_dir());
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    /* Header, five rows "a: v   b: v" with classes a and a+5, the mark on
     * exactly one, and the verdict. */
    char *line = strtok(out, "\n");
    assert_non_null(line);
    assert_string_equal(line, "mnist test #0 (true label 7)");
    int marked = -1;
    for (int r = 0; r < 5; r++) {
        line = strtok(NULL, "\n");
        assert_non_null(line);
        int a, b;
        double va, vb;
        char rest[64] = "";
        int got = sscanf(line, "%d: %lf%*[ <]%d: %lf%63[^\n]", &a, &va, &b, &vb, rest);
        if (got < 4 || a != r || b != r + 5 || va > 0 || vb > 0)
            fail_msg("table row %d malformed: '%s'", r, line);
        /* Four decimals, as the lecture prints them. */
        const char *dot = strchr(line, '.');
        assert_non_null(dot);
        assert_true(dot[5] == ' ' || dot[5] == 0);
        if (strstr(line, " <  "))
            marked = a;
        else if (strcmp(rest, " <") == 0)
            marked = b;
    }
    assert_int_equal(marked, 7);
    line = strtok(NULL, "\n");
    assert_non_null(line);
    must_contain(line, "predicted 7 (");
    must_contain(line, "right");
    /* The lecture's example: class 7 at 0.0000 for this very digit. */
    rc = t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 0", m,
               t_mnist_dir());
    const char *seven = strstr(out, "\n2: ");
    assert_non_null(seven);
    seven = strstr(seven, "7: ");
    assert_non_null(seven);
    seven += 3;
    while (*seven == ' ')
        seven++;
    if (strncmp(seven, "0.0000 <", 8) != 0)
        fail_msg("class 7 is not at 0.0000:\n%s", out);
}

static void test_json(void **state)
{
    (void)state;
    t_need_mnist();
    const char *m = model();
    int rc = t_run(out, sizeof out,
                   "predict --model '%s' --data '%s' --json --mnist-index 0,1 --mnist-index 2",
                   m, t_mnist_dir());
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    json_t *o[8];
    int n = json_lines(out, o, 8);
    assert_int_equal(n, 3);
    const int labels[3] = {7, 2, 1};
    for (int i = 0; i < n; i++) {
        json_t *lp = json_object_get(o[i], "log_probs");
        assert_int_equal(json_array_size(lp), 10);
        /* Log-probabilities: they exponentiate to a sum of 1. */
        assert_true(fabs(logsumexp(lp)) < 1e-4);
        assert_int_equal(json_integer_value(json_object_get(o[i], "mnist_index")), i);
        assert_int_equal(json_integer_value(json_object_get(o[i], "label")), labels[i]);
        int best = (int)json_integer_value(json_object_get(o[i], "predicted"));
        for (int c = 0; c < 10; c++)
            assert_true(json_number_value(json_array_get(lp, (size_t)c)) <=
                        json_number_value(json_array_get(lp, (size_t)best)));
        assert_int_equal(best, labels[i]);
        double p = json_number_value(json_object_get(o[i], "probability"));
        assert_true(fabs(p - exp(json_number_value(json_array_get(lp, (size_t)best)))) < 1e-6);
        json_decref(o[i]);
    }
}

/* --save-input writes exactly the 28x28 the network sees: for an MNIST
 * image its pixels; and that picture fed back with --raw gives the same
 * log-probabilities. */
static void test_save_input(void **state)
{
    (void)state;
    t_need_mnist();
    const char *m = model();
    char png[512];
    t_tmppath(png, sizeof png, "seen.png");
    int rc = t_run(out, sizeof out,
                   "predict --model '%s' --data '%s' --json --save-input '%s' --mnist-index 4",
                   m, t_mnist_dir(), png);
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    json_t *a, *b;
    assert_int_equal(json_lines(out, &a, 1), 1);
    uint8_t *px;
    size_t n;
    uint32_t rows, cols;
    char ip[1024];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", t_mnist_dir());
    assert_int_equal(dn_idx_read_images(ip, &px, &n, &rows, &cols, NULL), DN_OK);
    int w, h, ch;
    unsigned char *seen = stbi_load(png, &w, &h, &ch, 1);
    assert_non_null(seen);
    assert_int_equal(w, 28);
    assert_int_equal(h, 28);
    assert_memory_equal(seen, px + 4 * 784, 784);
    stbi_image_free(seen);
    free(px);

    rc = t_run(out, sizeof out, "predict --model '%s' --json --raw '%s'", m, png);
    assert_int_equal(rc, 0);
    assert_int_equal(json_lines(out, &b, 1), 1);
    json_t *la = json_object_get(a, "log_probs"), *lb = json_object_get(b, "log_probs");
    for (size_t c = 0; c < 10; c++)
        assert_float_equal(json_number_value(json_array_get(la, c)),
                           json_number_value(json_array_get(lb, c)), 1e-4);
    json_decref(a);
    json_decref(b);
}

/* The drawings in tests/fixtures/digits: photos of pencil, blue ink,
 * chalk and a transparent canvas, named after the digit they show. */
static void test_fixture_digits(void **state)
{
    (void)state;
    const char *m = model();
    char seen[512];
    t_tmppath(seen, sizeof seen, "fx.png");
    int rc = t_run(out, sizeof out, "predict --model '%s' --json --save-input '%s' "
                   "tests/fixtures/digits", m, seen);
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    json_t *o[16];
    int n = json_lines(out, o, 16), right = 0;
    assert_int_equal(n, 10);
    for (int i = 0; i < n; i++) {
        const char *name = json_string_value(json_object_get(o[i], "input"));
        assert_non_null(name);
        const char *base = strrchr(name, '/');
        /* Sorted by name: 0-... first. */
        assert_int_equal(base[1] - '0', i);
        int pred = (int)json_integer_value(json_object_get(o[i], "predicted"));
        right += pred == i;
        if (pred != i)
            print_message("%s read as %d\n", name, pred);
        assert_non_null(json_object_get(o[i], "preprocess"));
        json_decref(o[i]);
        /* One picture per input, numbered. */
        char p[600];
        snprintf(p, sizeof p, "%.*s-%d.png", (int)(strlen(seen) - 4), seen, i);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
    }
    print_message("%d of 10 drawn digits read right\n", right);
    assert_true(right >= 9);
}

/* ---- failures ----------------------------------------------------------- */

static void test_bad_inputs(void **state)
{
    (void)state;
    const char *m = model();
    char text[512], trunc[512], empty[512], huge[512], blank[512], dir[512];
    t_write_file(t_tmppath(text, sizeof text, "notes.png"), "hello\n", 6);
    t_write_file(t_tmppath(empty, sizeof empty, "empty.jpg"), "", 0);
    const char h[] = "P5\n100000 100000\n255\n\x01";
    t_write_file(t_tmppath(huge, sizeof huge, "huge.pgm"), h, sizeof h - 1);
    size_t n;
    char *png = t_read_file("tests/fixtures/digits/1-blue-ink.png", &n);
    assert_non_null(png);
    t_write_file(t_tmppath(trunc, sizeof trunc, "cut.png"), png, n / 2);
    free(png);
    char pgm[64 + 40 * 30];
    int len = snprintf(pgm, 64, "P5\n40 30\n255\n");
    memset(pgm + len, 250, 40 * 30);
    t_write_file(t_tmppath(blank, sizeof blank, "blank.pgm"), pgm, (size_t)len + 40 * 30);
    t_tmppath(dir, sizeof dir, "nothing-here");
    mkdir(dir, 0755);

    const struct {
        const char *path, *says;
    } cases[] = {
        {text, "not an image"},   {empty, "empty"},        {huge, "100000x100000"},
        {trunc, "cut.png"},       {blank, "no digit found"}, {dir, "no images"},
        {"/nonexistent/x.png", "cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = t_run(out, sizeof out, "predict --model '%s' '%s'", m, cases[i].path);
        if (rc != 1)
            fail_msg("%s: exit %d, expected 1:\n%s", cases[i].path, rc, out);
        must_contain(out, "digitnet: ");
        must_contain(out, cases[i].says);
        const char *base = strrchr(cases[i].path, '/') + 1;
        must_contain(out, base);
    }
    /* A bad input among good ones: the good ones are still classified. */
    int rc = t_run(out, sizeof out, "predict --model '%s' tests/fixtures/digits/7-canvas.png '%s' "
                   "tests/fixtures/digits/4-pencil.jpg", m, text);
    assert_int_equal(rc, 1);
    must_contain(out, "tests/fixtures/digits/7-canvas.png\n");
    must_contain(out, "tests/fixtures/digits/4-pencil.jpg\n");
    must_contain(out, "notes.png: not an image");
}

static void test_missing_model(void **state)
{
    (void)state;
    int rc = t_run(out, sizeof out, "predict --model '%s/none.safetensors' x.png", t_tmpdir());
    assert_int_equal(rc, 1);
    must_contain(out, "none.safetensors");
    must_contain(out, "digitnet train");
    /* The default path is named when no --model is given. */
    rc = t_run(out, sizeof out, "predict x.png");
    if (rc == 1 && strstr(out, "no model file"))
        must_contain(out, "digitnet.safetensors");
}

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(t_run(out, sizeof out, "predict"), 2);
    must_contain(out, "--mnist-index");
    assert_int_equal(t_run(out, sizeof out, "predict --mnist-index 1,x"), 2);
    must_contain(out, "'1,x'");
    assert_int_equal(t_run(out, sizeof out, "predict --mnist-index -1"), 2);
    assert_int_equal(t_run(out, sizeof out, "predict --mnist-index"), 2);
    assert_int_equal(t_run(out, sizeof out, "predict --frobnicate x.png"), 2);
    must_contain(out, "--frobnicate");
    assert_int_equal(t_run(out, sizeof out, "predict --help"), 0);
    must_contain(out, "examples:");
    must_contain(out, "--save-input");
    t_need_mnist();
    const char *m = model();
    assert_int_equal(t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 10000",
                           m, t_mnist_dir()),
                     1);
    must_contain(out, "10000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),        cmocka_unit_test(test_json),
        cmocka_unit_test(test_save_input),   cmocka_unit_test(test_fixture_digits),
        cmocka_unit_test(test_bad_inputs),   cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
