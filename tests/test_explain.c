/*
 * test_explain.c - one prediction explained (include/digitnet_explain.h):
 * the stages `digitnet show` draws, the "unsure" verdict measured on MNIST
 * and on scribbles, the occlusion heat-map, the naive squash, the feature
 * maps against the layers' own outputs, batches against single inputs,
 * and the JSON answer of `digitnet serve`.
 */
#include "test.h"
#include "digitnet_explain.h"
#include "internal.h"
#include "digitnet_picture.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_MODEL "tests/fixtures/mnist-model.safetensors"

static dn_model *model;
static dn_work *work;
static dn_dataset test_set;

static int setup(void **state)
{
    (void)state;
    dn_error err = {0};
    model = dn_model_load(FIXTURE_MODEL, NULL, &err);
    if (!model)
        fail_msg("%s", err.msg);
    work = dn_work_new(model, 16);
    return t_load_mnist(&test_set, "test");
}

static int teardown(void **state)
{
    (void)state;
    dn_work_free(work);
    dn_model_free(model);
    dn_dataset_free(&test_set);
    return 0;
}

static void mnist_input(size_t i, float *x)
{
    for (int p = 0; p < 784; p++)
        x[p] = test_set.images[i * 784 + (size_t)p] / 255.0f;
}

/* Antialiased thick segment from (x0, y0) to (x1, y1), radius r, ink 1,
 * into canvas (W, W). */
static void segment(float *c, int W, float x0, float y0, float x1, float y1, float r)
{
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            float px = (float)x + 0.5f - x0, py = (float)y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            float a = r + 0.5f - sqrtf(ex * ex + ey * ey);
            a = a < 0 ? 0 : a > 1 ? 1 : a;
            if (a > c[y * W + x])
                c[y * W + x] = a;
        }
}

static void test_stages(void **state)
{
    (void)state;
    dn_stage st[DN_MAX_LAYERS + 1];
    int n = dn_model_stages(model, st, DN_MAX_LAYERS + 1);
    static const struct {
        const char *name;
        int layer, c, h, w;
    } want[] = {{"input", -1, 1, 28, 28},       {"conv1 + ReLU", 1, 8, 28, 28},
                {"pool1", 2, 8, 14, 14},        {"conv2 + ReLU", 5, 16, 14, 14},
                {"pool2", 6, 16, 7, 7},         {"flatten", 8, 784, 1, 1},
                {"fc1 + ReLU", 10, 64, 1, 1},   {"output", 12, 10, 1, 1}};
    assert_int_equal(n, 8);
    for (int s = 0; s < n; s++) {
        assert_string_equal(st[s].name, want[s].name);
        assert_int_equal(st[s].layer, want[s].layer);
        assert_int_equal(st[s].shape.c, want[s].c);
        assert_int_equal(st[s].shape.h, want[s].h);
        assert_int_equal(st[s].shape.w, want[s].w);
    }
    /* Asked for fewer, it still says how many there are. */
    assert_int_equal(dn_model_stages(model, st, 2), 8);

    /* Another spec: a conv without ReLU is shown itself; an fc before the
     * output is not. */
    dn_error err = {0};
    dn_model *m = dn_model_new("conv 4 k3, maxpool 2, flatten, fc 10, logsoftmax",
                               (dn_shape){1, 28, 28}, 1, &err);
    assert_non_null(m);
    n = dn_model_stages(m, st, DN_MAX_LAYERS + 1);
    assert_int_equal(n, 5);
    assert_string_equal(st[1].name, "conv1");
    assert_string_equal(st[2].name, "pool1");
    assert_string_equal(st[3].name, "flatten");
    assert_string_equal(st[4].name, "output");
    dn_model_free(m);
}

/* The rule: probability and ink. */
static void test_unsure(void **state)
{
    (void)state;
    float lp[10], x[784], why_x[784];
    char why[128];
    for (int c = 0; c < 10; c++)
        lp[c] = c == 3 ? logf(0.995f) : logf(0.005f / 9);
    for (int i = 0; i < 784; i++)
        x[i] = i % 7 == 0; /* 14 % ink */
    assert_int_equal(dn_unsure(lp, 10, x, why, sizeof why), 0);
    assert_string_equal(why, "");
    lp[3] = logf(0.95f);
    assert_int_equal(dn_unsure(lp, 10, x, why, sizeof why), 1);
    assert_non_null(strstr(why, "95 %"));
    lp[3] = logf(0.995f);
    for (int i = 0; i < 784; i++)
        why_x[i] = i % 2; /* 50 % ink: a filled area */
    assert_int_equal(dn_unsure(lp, 10, why_x, why, sizeof why), 1);
    assert_non_null(strstr(why, "too much ink"));
    memset(why_x, 0, sizeof why_x);
    why_x[400] = 1;
    assert_int_equal(dn_unsure(lp, 10, why_x, NULL, 0), 1);
}

/* The verdict on what the network was trained for, and on what it was
 * not: MNIST's test digits are mostly sure, random scribbles mostly not
 * (the figures in include/digitnet_explain.h). */
static void test_unsure_measured(void **state)
{
    (void)state;
    t_need_mnist();
    float x[784];
    int unsure = 0;
    for (size_t i = 0; i < test_set.n; i++) {
        dn_explanation e;
        dn_error err = {0};
        mnist_input(i, x);
        assert_int_equal(dn_explain_input(model, work, x, 0, &e, &err), DN_OK);
        unsure += e.unsure;
        dn_explanation_free(&e);
    }
    dn_rng rng;
    dn_rng_seed(&rng, 5);
    enum { W = 140 };
    static float canvas[W * W];
    int scribbles = 0, unsure_scribbles = 0;
    for (int k = 0; k < 300; k++) {
        memset(canvas, 0, sizeof canvas);
        int segs = 3 + (int)dn_rng_below(&rng, 12);
        float r = 2 + 7 * dn_rng_uniform(&rng);
        float px = 20 + 100 * dn_rng_uniform(&rng), py = 20 + 100 * dn_rng_uniform(&rng);
        for (int s = 0; s < segs; s++) {
            float nx = 10 + 120 * dn_rng_uniform(&rng), ny = 10 + 120 * dn_rng_uniform(&rng);
            segment(canvas, W, px, py, nx, ny, r);
            px = nx;
            py = ny;
        }
        static uint8_t grey[W * W];
        for (int i = 0; i < W * W; i++)
            grey[i] = (uint8_t)lrintf(canvas[i] * 255.0f);
        dn_image img = {.w = W, .h = W, .grey = grey, .borrowed = 1};
        dn_explanation e;
        dn_error err = {0};
        if (dn_explain_image(model, work, NULL, &img, 0, &e, &err) == DN_OK) {
            scribbles++;
            unsure_scribbles += e.unsure;
        }
        dn_explanation_free(&e);
    }
    double fd = 100.0 * unsure / (double)test_set.n, fs = 100.0 * unsure_scribbles / scribbles;
    print_message("unsure: %.1f %% of MNIST's test digits, %.1f %% of %d scribbles\n", fd, fs,
                  scribbles);
    assert_true(fd < 12);
    assert_true(fs > 70);
}

/* The heat-map: a digit's ink is where it is hot, blank squares are 0
 * outside the digit, and blanking the hottest ink costs the answer more
 * than blanking the coldest. */
static void test_occlusion(void **state)
{
    (void)state;
    float x[784], heat[784];
    if (test_set.n)
        mnist_input(0, x);
    else
        for (int i = 0; i < 784; i++)
            x[i] = (i % 28 >= 12 && i % 28 < 16 && i / 28 > 4 && i / 28 < 23) ? 1.0f : 0.0f;
    dn_error err = {0};
    dn_explanation e;
    assert_int_equal(dn_explain_input(model, work, x, DN_EXPLAIN_SALIENCY, &e, &err), DN_OK);
    int c = e.prediction;
    assert_true(e.has_saliency);
    assert_int_equal(dn_occlusion(model, work, x, c, DN_OCCLUDE_PATCH, DN_OCCLUDE_STRIDE, heat,
                                  &err), DN_OK);
    assert_memory_equal(heat, e.saliency, sizeof heat);
    dn_explanation_free(&e);
    /* Far from any ink, no square changes anything. */
    assert_true(heat[0] == 0.0f && heat[27] == 0.0f && heat[783] == 0.0f);
    /* The inked pixels, coldest first. */
    int idx[784], n = 0;
    for (int i = 0; i < 784; i++)
        if (x[i] > 0)
            idx[n++] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && heat[idx[j]] < heat[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    float hot[784], cold[784];
    memcpy(hot, x, sizeof hot);
    memcpy(cold, x, sizeof cold);
    for (int k = 0; k < n / 4; k++) {
        cold[idx[k]] = 0;
        hot[idx[n - 1 - k]] = 0;
    }
    dn_explanation eh, ec;
    assert_int_equal(dn_explain_input(model, work, hot, 0, &eh, &err), DN_OK);
    assert_int_equal(dn_explain_input(model, work, cold, 0, &ec, &err), DN_OK);
    float mh = -INFINITY, mc = -INFINITY;
    for (int j = 0; j < 10; j++)
        if (j != c) {
            mh = fmaxf(mh, eh.logp[j]);
            mc = fmaxf(mc, ec.logp[j]);
        }
    print_message("margin of %d with the hottest quarter blanked %.2f, coldest %.2f\n", c,
                  eh.logp[c] - mh, ec.logp[c] - mc);
    assert_true(eh.logp[c] - mh < ec.logp[c] - mc);
    dn_explanation_free(&eh);
    dn_explanation_free(&ec);

    assert_int_equal(dn_occlusion(model, work, x, 10, 4, 2, heat, &err), DN_ERR_ARG);
    assert_int_equal(dn_occlusion(model, work, x, 0, 0, 2, heat, &err), DN_ERR_ARG);
    assert_int_equal(dn_occlusion(model, work, x, 0, 4, 29, heat, &err), DN_ERR_ARG);
}

/* The maps are the layers' outputs, the answer that of a plain forward
 * pass, and a batch answers as its inputs alone do. */
static void test_maps_and_batch(void **state)
{
    (void)state;
    float xs[3 * 784];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < 784; i++)
            xs[b * 784 + i] = test_set.n ? test_set.images[(size_t)(b + 10) * 784 + (size_t)i] / 255.0f
                                         : (float)((i * (b + 3)) % 11 == 0);
    dn_error err = {0};
    dn_explanation e;
    assert_int_equal(dn_explain_input(model, work, xs, DN_EXPLAIN_MAPS, &e, &err), DN_OK);
    assert_int_equal(e.n_stages, 8);
    dn_work *ref = dn_work_new(model, 1);
    dn_work_set_reference(ref, 1);
    float x[784];
    memcpy(x, xs, sizeof x);
    dn_image_normalize(x, 784, model->mean, model->std);
    const float *lp = dn_model_forward(model, ref, x, 1, DN_MODE_EVAL, NULL);
    for (int c = 0; c < 10; c++)
        assert_float_equal(e.logp[c], lp[c], 1e-5);
    for (int s = 1; s < e.n_stages; s++) {
        size_t n = (size_t)e.stages[s].shape.c * e.stages[s].shape.h * e.stages[s].shape.w;
        assert_memory_equal(e.maps + e.map_off[s], dn_work_act(ref, e.stages[s].layer),
                            n * sizeof(float));
    }
    assert_memory_equal(e.maps, xs, 784 * sizeof(float));
    dn_explanation_free(&e);
    dn_work_free(ref);

    dn_explanation be[3];
    assert_int_equal(dn_explain_batch(model, work, xs, 3, DN_EXPLAIN_SALIENCY, be, &err), DN_OK);
    for (int b = 0; b < 3; b++) {
        dn_explanation one;
        assert_int_equal(dn_explain_input(model, work, xs + b * 784, DN_EXPLAIN_SALIENCY, &one,
                                          &err), DN_OK);
        assert_int_equal(be[b].prediction, one.prediction);
        for (int c = 0; c < 10; c++)
            assert_float_equal(be[b].logp[c], one.logp[c], 1e-5);
        for (int i = 0; i < 784; i++)
            assert_float_equal(be[b].saliency[i], one.saliency[i], 1e-4);
        dn_explanation_free(&one);
        dn_explanation_free(&be[b]);
    }
}

/* A picture: preprocessed as `digitnet predict` does; the naive squash is
 * the whole picture shrunk, ink made white. */
static void test_image_and_json(void **state)
{
    (void)state;
    dn_error err = {0};
    dn_image img;
    assert_int_equal(dn_image_load("tests/fixtures/digits/7-canvas.png", &img, &err), DN_OK);
    dn_explanation e;
    dn_prep *prep = dn_prep_new();
    assert_non_null(prep);
    assert_int_equal(dn_explain_image(model, work, prep, &img, DN_EXPLAIN_NAIVE | DN_EXPLAIN_MAPS |
                                                                   DN_EXPLAIN_SALIENCY, &e, &err),
                     DN_OK);
    dn_prep_free(prep);
    float pre[784], raw[784];
    dn_prep_info info;
    assert_int_equal(dn_image_preprocess(&img, pre, &info, &err), DN_OK);
    assert_memory_equal(e.input, pre, sizeof pre);
    assert_true(e.prepped);
    assert_int_equal(e.prep.box_w, info.box_w);
    assert_int_equal(dn_image_raw(&img, raw, &err), DN_OK);
    assert_true(e.has_naive);
    for (int i = 0; i < 784; i++)
        assert_float_equal(e.naive_input[i], info.inverted ? 1 - raw[i] : raw[i], 1e-6);
    assert_int_equal(e.prediction, 7);

    char *s = dn_explanation_json(&e, &err);
    assert_non_null(s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("not JSON: %s", je.text);
    static const char *const keys[] = {"prediction", "probability", "unsure", "unsure_reason",
                                       "probabilities", "log_probabilities", "input", "preprocess",
                                       "naive", "maps", "saliency", "timing_us"};
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(o, k, v)
    {
        assert_true(i < sizeof keys / sizeof keys[0]);
        assert_string_equal(k, keys[i]);
        i++;
    }
    assert_int_equal(i, sizeof keys / sizeof keys[0]);
    assert_int_equal(json_integer_value(json_object_get(o, "prediction")), 7);
    json_t *in = json_object_get(o, "input");
    for (size_t p = 0; p < 784; p++)
        assert_int_equal(json_integer_value(json_array_get(in, p)), lrintf(pre[p] * 255));
    assert_true(json_is_null(json_object_get(o, "unsure_reason")) == !e.unsure);
    json_decref(o);
    free(s);
    dn_explanation_free(&e);
    dn_image_free(&img);

    /* A model the page cannot explain. */
    dn_model *m = dn_model_new("flatten, fc 100, logsoftmax", (dn_shape){1, 28, 28}, 1, &err);
    dn_work *w = dn_work_new(m, 1);
    float x[784] = {0};
    assert_int_equal(dn_explain_input(m, w, x, 0, &e, &err), DN_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "100 classes"));
    dn_explanation_free(&e);
    dn_work_free(w);
    dn_model_free(m);
}

/* The model as GET /api/model describes it. */
static void test_model_json(void **state)
{
    (void)state;
    dn_error err = {0};
    char *s = dn_model_json(model, "m.safetensors", 9828, 10000, "a \"quoted\" note", &err);
    assert_non_null(s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("not JSON: %s: %s", je.text, s);
    assert_string_equal(json_string_value(json_object_get(o, "file")), "m.safetensors");
    assert_string_equal(json_string_value(json_object_get(o, "spec")), model->spec);
    assert_int_equal(json_integer_value(json_object_get(o, "parameters")), 54186);
    assert_int_equal(json_integer_value(json_object_get(o, "macs")), 734464);
    assert_int_equal(json_integer_value(json_object_get(o, "classes")), 10);
    json_t *layers = json_object_get(o, "layers");
    assert_int_equal(json_array_size(layers), 13);
    json_t *conv2 = json_array_get(layers, 4);
    assert_string_equal(json_string_value(json_object_get(conv2, "spec")), "conv 16 k5 p2 s1");
    assert_int_equal(json_integer_value(json_object_get(conv2, "parameters")), 3216);
    assert_int_equal(json_array_size(json_object_get(o, "stages")), 8);
    json_t *test = json_object_get(o, "test");
    assert_float_equal(json_number_value(json_object_get(test, "accuracy")), 0.9828, 1e-9);
    assert_float_equal(json_number_value(json_object_get(test, "standard_error")),
                       sqrt(0.9828 * 0.0172 / 10000), 1e-7);
    assert_string_equal(json_string_value(json_object_get(o, "provenance")), "a \"quoted\" note");
    json_decref(o);
    free(s);
    s = dn_model_json(model, NULL, 0, 0, NULL, &err);
    o = json_loads(s, 0, NULL);
    assert_true(json_is_null(json_object_get(o, "test")));
    assert_true(json_is_null(json_object_get(o, "provenance")));
    json_decref(o);
    free(s);
}

/* The answer's numbers are written without printf (src/numfmt.c), and
 * must come out exactly as printf writes them: powers of ten, halfway
 * cases, the smallest and largest doubles, then random floats (the
 * network's outputs are floats) and random doubles at every precision. */
static void check_format(double v, int digits, long *bad)
{
    char want[400], got[DN_FORMAT_MAX];
    snprintf(want, sizeof want, "%.*g", digits < 1 ? 1 : digits, v);
    int n = dn_format_g(got, v, digits);
    if (strcmp(want, got) != 0 || n != (int)strlen(want)) {
        if ((*bad)++ < 5)
            print_message("%%.%dg of %.17g: printf %s, dn_format_g %s\n", digits, v, want, got);
    }
    if (!(fabs(v) < 1e20))
        return;
    snprintf(want, sizeof want, "%.*f", digits, v);
    n = dn_format_f(got, v, digits);
    if (strcmp(want, got) != 0 || n != (int)strlen(want)) {
        if ((*bad)++ < 5)
            print_message("%%.%df of %.17g: printf %s, dn_format_f %s\n", digits, v, want, got);
    }
}

static void test_numbers_as_printf(void **state)
{
    (void)state;
    static const double edges[] = {
        0, 0.5, 1.5, 2.5, 0.25, 0.125, 0.375, 1e-5, 9.9999995e-5, 1e-4, 9.99999949e-5, 9.9999995,
        99999.995, 999999.5, 9999999.5, 0.05, 0.15, 1, 10, 100, 1e6, 1e7, 1e15, 1e16, 1e17,
        1e22, 1e23, 123456789012345678.0, 4.9406564584124654e-324, 2.2250738585072014e-308,
        1.7976931348623157e308, 1e-30, 0.1f, 1.f / 3, 2.f / 3, 1e-45f, 3.4028235e38f};
    long bad = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        for (int d = 0; d <= 17; d++) {
            check_format(edges[i], d, &bad);
            check_format(-edges[i], d, &bad);
        }
    dn_rng r;
    dn_rng_seed(&r, 20261202);
    for (int i = 0; i < 200000; i++) {
        uint64_t u = dn_rng_next(&r);
        uint32_t u32 = (uint32_t)u;
        float f;
        double d;
        memcpy(&f, &u32, sizeof f);
        memcpy(&d, &u, sizeof d);
        if (isfinite(f)) {
            check_format(f, 7, &bad);
            check_format(f, 4, &bad);
            check_format(f, i % 18, &bad);
        }
        if (isfinite(d))
            check_format(d, i % 18, &bad);
        /* numbers of a few digits, where halfway cases are common */
        check_format((double)(u % 2000000) / (double)(1 + (u >> 40) % 1000), i % 18, &bad);
        check_format((double)(u % 100000) * 0.05, 1, &bad);
    }
    assert_int_equal(bad, 0);
    /* A value no fast path takes still comes out right, and in bounds. */
    char b[DN_FORMAT_MAX];
    assert_int_equal(dn_format_f(b, 1e300, 1), DN_FORMAT_MAX - 1);
    assert_int_equal(dn_format_g(b, NAN, 7), 3);
    assert_string_equal(b, "nan");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stages),
        cmocka_unit_test(test_unsure),
        cmocka_unit_test(test_unsure_measured),
        cmocka_unit_test(test_occlusion),
        cmocka_unit_test(test_maps_and_batch),
        cmocka_unit_test(test_image_and_json),
        cmocka_unit_test(test_model_json),
        cmocka_unit_test(test_numbers_as_printf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
