/*
 * test_image.c - MNIST-style preprocessing.
 *
 * The preprocessing is checked against MNIST itself: a test digit made
 * large, black on white and off-centre, as a photo of it would be, must
 * come back to nearly the same 28 x 28 pixels; a trained model must still
 * read 1,000 such digits (sizes, positions and file formats random) at
 * MNIST-like accuracy; canvas drawings must give what the float pipeline
 * this replaced gave. Test images are built here in C; the upscaling uses
 * stb_image_resize and the encoding stb_image_write, not the code under
 * test. Decoding is tested in test_decode.c.
 */
#include "canvas.h"
#include "imagetest.h"
#include "prep_before.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <stb_image_resize.h>
#include <stb_image_write.h>

#define SIDE DN_IMAGE_SIDE
#define NPX (SIDE * SIDE)

/* ---- helpers ------------------------------------------------------------ */

typedef struct mnist {
    uint8_t *px;
    uint8_t *labels;
    size_t n;
} mnist;

/* MNIST's test split, or skip when it is not there. */
static void load_mnist(mnist *m)
{
    t_need_mnist();
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", t_mnist_dir());
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", t_mnist_dir());
    uint32_t rows, cols;
    size_t nl;
    dn_error err = {0};
    if (dn_idx_read_images(ip, &m->px, &m->n, &rows, &cols, &err) != DN_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(rows, SIDE);
    assert_int_equal(cols, SIDE);
    assert_int_equal(dn_idx_read_labels(lp, &m->labels, &nl, 10, &err), DN_OK);
    assert_int_equal(nl, m->n);
}

static void free_mnist(mnist *m)
{
    free(m->px);
    free(m->labels);
}

static const char *model_path(void)
{
    const char *p = getenv("DIGITNET_TEST_MODEL");
    return p && *p ? p : "tests/fixtures/mnist-model.safetensors";
}

/* The committed trained model, or skip when it is not there yet. */
static dn_model *load_model(void)
{
    struct stat st;
    if (stat(model_path(), &st) != 0) {
        print_message("no trained model at %s, skipping\n", model_path());
        skip();
    }
    dn_error err = {0};
    dn_model *m = dn_model_load(model_path(), NULL, &err);
    if (!m)
        fail_msg("%s", err.msg);
    return m;
}

/* Classes of n preprocessed inputs (n, 28, 28) in 0..1. */
static void classify(const dn_model *m, const float *raw, int n, int *pred)
{
    dn_work *w = dn_work_new(m, n);
    assert_non_null(w);
    float *x = malloc((size_t)n * NPX * sizeof *x);
    assert_non_null(x);
    memcpy(x, raw, (size_t)n * NPX * sizeof *x);
    dn_image_normalize(x, (size_t)n * NPX, m->mean, m->std);
    const float *lp = dn_model_forward(m, w, x, n, DN_MODE_EVAL, NULL);
    int k = dn_model_classes(m);
    for (int i = 0; i < n; i++)
        pred[i] = dn_argmax(lp + (size_t)i * (size_t)k, k);
    free(x);
    dn_work_free(w);
}

/* MNIST digit i as 0..1 floats. */
static void digit(const mnist *m, size_t i, float *out)
{
    for (int k = 0; k < NPX; k++)
        out[k] = m->px[i * NPX + (size_t)k] / 255.0f;
}

/* Digit `src` upscaled to size x size with filter, drawn black on white
 * into a fresh cw x ch image at (ox, oy). */
static void photo(const float *src, int size, stbir_filter filter, int cw, int ch, int ox, int oy,
                  dn_image *img)
{
    float *big = malloc((size_t)size * (size_t)size * sizeof *big);
    assert_non_null(big);
    assert_true(stbir_resize_float_generic(src, SIDE, SIDE, 0, big, size, size, 0, 1, -1, 0,
                                           STBIR_EDGE_ZERO, filter, STBIR_COLORSPACE_LINEAR,
                                           NULL));
    assert_int_equal(dn_image_alloc(img, cw, ch, 255, NULL), DN_OK);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float v = big[y * size + x];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            img->grey[(size_t)(y + oy) * (size_t)cw + (size_t)(x + ox)] =
                (uint8_t)lrintf(255 * (1.0f - v));
        }
    free(big);
}

static double mean_abs(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += fabs((double)a[i] - b[i]);
    return s / n;
}

/* ---- resizing ----------------------------------------------------------- */

static void test_resize(void **state)
{
    (void)state;
    dn_image a, b;
    dn_error err = {0};
    /* Shrinking averages areas: 3 -> 2 splits the middle pixel. */
    assert_int_equal(dn_image_alloc(&a, 3, 1, 0, &err), DN_OK);
    a.grey[1] = 60;
    a.grey[2] = 180;
    assert_int_equal(dn_image_resize(&a, 2, 1, &b, &err), DN_OK);
    assert_int_equal(b.grey[0], 20);  /* (0 + 0.5 * 60) / 1.5 */
    assert_int_equal(b.grey[1], 140); /* (0.5 * 60 + 180) / 1.5 */
    dn_image_free(&b);
    /* Growing interpolates between pixel centres and clamps at the edges. */
    assert_int_equal(dn_image_resize(&a, 6, 1, &b, &err), DN_OK);
    const uint8_t want[6] = {0, 15, 45, 90, 150, 180};
    assert_memory_equal(b.grey, want, 6);
    dn_image_free(&b);
    dn_image_free(&a);
}

/* ---- preprocessing ------------------------------------------------------ */

static void test_raw(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    float src[NPX], out[NPX];
    digit(&m, 0, src);
    dn_image img;
    dn_error err = {0};
    assert_int_equal(dn_image_alloc(&img, SIDE, SIDE, 0, &err), DN_OK);
    memcpy(img.grey, m.px, NPX);
    assert_int_equal(dn_image_raw(&img, out, &err), DN_OK);
    assert_memory_equal(out, src, sizeof src);
    dn_image_free(&img);
    /* Twice the size by pixel doubling: area averaging undoes it. */
    assert_int_equal(dn_image_alloc(&img, 2 * SIDE, 2 * SIDE, 0, &err), DN_OK);
    for (int y = 0; y < 2 * SIDE; y++)
        for (int x = 0; x < 2 * SIDE; x++)
            img.grey[y * 2 * SIDE + x] = m.px[(y / 2) * SIDE + x / 2];
    assert_int_equal(dn_image_raw(&img, out, &err), DN_OK);
    for (int i = 0; i < NPX; i++)
        assert_float_equal(out[i], src[i], 1e-6);
    dn_image_free(&img);
    free_mnist(&m);
}

/* An MNIST digit is already preprocessed: once more changes little. */
static void test_preprocess_identity(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    double total = 0;
    for (size_t i = 0; i < 200; i++) {
        float src[NPX], out[NPX];
        digit(&m, i, src);
        dn_image img;
        assert_int_equal(dn_image_alloc(&img, SIDE, SIDE, 0, NULL), DN_OK);
        memcpy(img.grey, m.px + i * NPX, NPX);
        dn_prep_info info;
        dn_error err = {0};
        assert_int_equal(dn_image_preprocess(&img, out, &info, &err), DN_OK);
        assert_false(info.inverted);
        total += mean_abs(out, src, NPX);
        dn_image_free(&img);
    }
    print_message("MNIST digit preprocessed again: mean |error| %.4f\n", total / 200);
    assert_true(total / 200 < 0.01);
    free_mnist(&m);
}

/* Digits 200 px tall, black on white, off-centre on a larger canvas. */
static void test_preprocess_roundtrip(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    const int n = 200;
    double sum[2] = {0}, worst[2] = {0}, shift = 0;
    for (int f = 0; f < 2; f++) {
        /* Box is pixel replication (sharp), triangle is bilinear (soft). */
        stbir_filter filter = f ? STBIR_FILTER_TRIANGLE : STBIR_FILTER_BOX;
        for (int i = 0; i < n; i++) {
            float src[NPX], out[NPX];
            digit(&m, (size_t)i, src);
            dn_image img;
            photo(src, 200, filter, 331, 260, 17 + (i * 37) % 110, 9 + (i * 11) % 50, &img);
            dn_prep_info info;
            dn_error err = {0};
            if (dn_image_preprocess(&img, out, &info, &err) != DN_OK)
                fail_msg("digit %d: %s", i, err.msg);
            assert_true(info.inverted);
            double e = mean_abs(out, src, NPX);
            sum[f] += e;
            worst[f] = e > worst[f] ? e : worst[f];
            dn_image_free(&img);
            if (f == 0) {
                /* For scale: the digit against itself one pixel over. */
                float moved[NPX] = {0};
                for (int k = 0; k < NPX; k++)
                    moved[k] = k % SIDE ? src[k - 1] : 0;
                shift += mean_abs(moved, src, NPX);
            }
        }
    }
    print_message("round trip of %d digits at 200x200: mean |error| %.4f (pixel replication), "
                  "%.4f (bilinear); worst %.4f, %.4f; a 1 px shift is %.4f\n",
                  n, sum[0] / n, sum[1] / n, worst[0], worst[1], shift / n);
    assert_true(sum[0] / n < 0.015);
    assert_true(sum[1] / n < 0.035);
    assert_true(worst[1] < 0.12);
    assert_true(sum[1] / n < 0.6 * shift / n);
    free_mnist(&m);
}

static void test_preprocess_keeps_prediction(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    dn_model *model = load_model();
    enum { N = 100 };
    float *orig = malloc(N * NPX * sizeof *orig), *back = malloc(N * NPX * sizeof *back);
    assert_non_null(orig);
    assert_non_null(back);
    for (int i = 0; i < N; i++) {
        digit(&m, (size_t)i, orig + i * NPX);
        dn_image img;
        photo(orig + i * NPX, 200, STBIR_FILTER_TRIANGLE, 300, 300, 60 + i % 40, 30, &img);
        dn_error err = {0};
        assert_int_equal(dn_image_preprocess(&img, back + i * NPX, NULL, &err), DN_OK);
        dn_image_free(&img);
    }
    int p0[N], p1[N], same = 0;
    classify(model, orig, N, p0);
    classify(model, back, N, p1);
    for (int i = 0; i < N; i++)
        same += p0[i] == p1[i];
    print_message("%d of %d predictions unchanged by the round trip\n", same, N);
    assert_true(same >= N - 2);
    free(orig);
    free(back);
    dn_model_free(model);
    free_mnist(&m);
}

static void test_blank(void **state)
{
    (void)state;
    dn_image img;
    float out[NPX];
    dn_error err = {0};
    const int levels[3] = {255, 0, 153};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dn_image_alloc(&img, 50, 40, (uint8_t)levels[k], &err), DN_OK);
        snprintf(img.name, sizeof img.name, "blank%d.png", k);
        /* Paper grain: +-4 % around the background. */
        for (int i = 0; i < 50 * 40; i++) {
            int v = levels[k] + ((i * 7919) % 9 - 4) * 255 / 100 * (levels[k] == 255 ? -1 : 1);
            img.grey[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        dn_status st = dn_image_preprocess(&img, out, NULL, &err);
        t_expect_error(st, &err, img.name, "no digit found");
        assert_int_equal(st, DN_ERR_FORMAT);
        dn_image_free(&img);
    }
}

/* A speck of dust far from the digit must not move or shrink it. */
static void test_speck(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    float src[NPX], clean[NPX], dusty[NPX];
    digit(&m, 3, src);
    dn_image img;
    dn_error err = {0};
    photo(src, 140, STBIR_FILTER_TRIANGLE, 400, 300, 30, 40, &img);
    assert_int_equal(dn_image_preprocess(&img, clean, NULL, &err), DN_OK);
    for (int y = 280; y < 283; y++)
        for (int x = 380; x < 383; x++)
            img.grey[y * 400 + x] = 0;
    assert_int_equal(dn_image_preprocess(&img, dusty, NULL, &err), DN_OK);
    assert_memory_equal(clean, dusty, sizeof clean);
    dn_image_free(&img);
    free_mnist(&m);
}

/* A 1 px pen on a large canvas: the hairline is brought up to MNIST's
 * stroke width and strength instead of fading to grey. */
static void test_hairline(void **state)
{
    (void)state;
    dn_image img;
    dn_error err = {0};
    dn_prep_info info;
    float out[NPX];
    assert_int_equal(dn_image_alloc(&img, 800, 800, 255, &err), DN_OK);
    /* A "7": a top bar and a diagonal, one pixel wide. */
    for (int x = 200; x <= 600; x++)
        img.grey[100 * 800 + x] = 0;
    for (int y = 100; y <= 700; y++)
        img.grey[y * 800 + 600 - (y - 100) / 2] = 0;
    assert_int_equal(dn_image_preprocess(&img, out, &info, &err), DN_OK);
    float peak = 0;
    int solid = 0;
    for (int i = 0; i < NPX; i++) {
        peak = out[i] > peak ? out[i] : peak;
        solid += out[i] >= 0.5f;
    }
    print_message("hairline: stroke %.2f px before thickening, %d solid pixels\n", info.stroke,
                  solid);
    assert_true(info.stroke < 0.8f);
    assert_true(peak > 0.95f);
    /* About 20 + 30 px of stroke, at least 1.5 px wide. */
    assert_true(solid >= 60);
    dn_image_free(&img);
}

/* Acceptance: 1,000 MNIST test digits as photos 40 to 240 px tall at a
 * random place on a larger white canvas, a third of them through PNG and a
 * third through JPEG (quality 85) files. */
static void test_acceptance(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    dn_model *model = load_model();
    enum { N = 1000 };
    float *x = malloc(N * NPX * sizeof *x);
    assert_non_null(x);
    dn_rng rng;
    dn_rng_seed(&rng, 20240905);
    uint8_t labels[N];
    double prep_s = 0;
    for (int i = 0; i < N; i++) {
        size_t idx = dn_rng_below(&rng, (uint32_t)m.n);
        labels[i] = m.labels[idx];
        float src[NPX];
        digit(&m, idx, src);
        int size = 40 + (int)dn_rng_below(&rng, 200);
        int cw = size + (int)dn_rng_below(&rng, 120), ch = size + (int)dn_rng_below(&rng, 120);
        dn_image img;
        photo(src, size, i % 2 ? STBIR_FILTER_TRIANGLE : STBIR_FILTER_CATMULLROM, cw, ch,
              (int)dn_rng_below(&rng, (uint32_t)(cw - size + 1)),
              (int)dn_rng_below(&rng, (uint32_t)(ch - size + 1)), &img);
        dn_error err = {0};
        if (i % 3) {
            t_membuf f = t_encode(&img, i % 3 == 2, 85);
            dn_image_free(&img);
            char name[32];
            snprintf(name, sizeof name, "digit%d.%s", i, i % 3 == 2 ? "jpg" : "png");
            assert_int_equal(dn_image_load_memory(f.p, f.len, name, &img, &err), DN_OK);
            free(f.p);
        }
        clock_t t0 = clock();
        if (dn_image_preprocess(&img, x + (size_t)i * NPX, NULL, &err) != DN_OK)
            fail_msg("digit %d (test #%zu): %s", i, idx, err.msg);
        prep_s += (double)(clock() - t0) / CLOCKS_PER_SEC;
        dn_image_free(&img);
    }
    int pred[N], right = 0;
    classify(model, x, N, pred);
    for (int i = 0; i < N; i++)
        right += pred[i] == labels[i];
    print_message("acceptance: %d of %d photos of MNIST digits classified right (%.1f %%); "
                  "preprocessing %.2f ms each\n",
                  right, N, 100.0 * right / N, 1000 * prep_s / N);
    assert_true(right >= 970);
    free(x);
    dn_model_free(model);
    free_mnist(&m);
}

/* ---- canvas drawings against the float pipeline ------------------------ */

/* Canvas drawings of MNIST test digits (every style: black or white
 * strokes, opaque or transparent, a blue pen) through the byte pipeline
 * and through the float pipeline it replaced (tests/support/prep_before.c):
 * black and white drawings give the same 28 x 28 to float rounding; a
 * coloured pen differs only by the luma now being whole grey levels. */
static void test_canvas_matches_before(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    enum { N = 100 };
    float *fast = malloc(N * NPX * sizeof *fast), *ref = malloc(N * NPX * sizeof *ref);
    assert_non_null(fast);
    assert_non_null(ref);
    dn_prep *p = dn_prep_new();
    assert_non_null(p);
    double worst_bw = 0, colour_sum = 0;
    int colour_n = 0;
    t_canvas_style style[N];
    for (int i = 0; i < N; i++) {
        t_canvas c;
        assert_int_equal(t_canvas_draw(m.px + (size_t)i * NPX, (uint64_t)i, &c), 0);
        style[i] = c.style;
        dn_image img;
        dn_error err = {0};
        t_grey g;
        if (dn_prep_load_memory(p, c.png, c.len, "canvas.png", &img, &err) != DN_OK ||
            dn_prep_image(p, &img, fast + i * NPX, NULL, &err) != DN_OK)
            fail_msg("canvas %d: %s", i, err.msg);
        assert_int_equal(t_before_decode(c.png, c.len, &g), 0);
        assert_int_equal(t_before_preprocess(&g, ref + i * NPX, NULL, &err), DN_OK);
        t_before_free(&g);
        t_canvas_free(&c);
        double d = 0;
        for (int k = 0; k < NPX; k++)
            d = fmax(d, fabs((double)fast[i * NPX + k] - ref[i * NPX + k]));
        if (style[i] == T_CANVAS_BLUE_ON_WHITE) {
            colour_sum += mean_abs(fast + i * NPX, ref + i * NPX, NPX);
            colour_n++;
        } else {
            worst_bw = fmax(worst_bw, d);
        }
    }
    print_message("canvas drawings, byte vs float pipeline: black/white max |diff| %.2g; "
                  "blue pen mean |diff| %.2g\n", worst_bw, colour_sum / colour_n);
    assert_true(worst_bw <= 1e-5);
    assert_true(colour_sum / colour_n <= 1e-3);
    struct stat st;
    if (stat(model_path(), &st) == 0) {
        dn_model *model = load_model();
        int pf[N], pr[N];
        classify(model, fast, N, pf);
        classify(model, ref, N, pr);
        for (int i = 0; i < N; i++)
            if (style[i] != T_CANVAS_BLUE_ON_WHITE && pf[i] != pr[i])
                fail_msg("canvas %d: predicted %d, the float pipeline %d", i, pf[i], pr[i]);
        dn_model_free(model);
    }
    dn_prep_free(p);
    free(fast);
    free(ref);
    free_mnist(&m);
}

/* One dn_prep over canvases of every size, large after small and small
 * after large: the same outputs as a fresh one each time. */
static void test_prep_reuse(void **state)
{
    (void)state;
    mnist m;
    load_mnist(&m);
    dn_prep *p = dn_prep_new();
    assert_non_null(p);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 20; k++) {
            int i = pass ? 19 - k : k;
            t_canvas c;
            assert_int_equal(t_canvas_draw(m.px + (size_t)i * NPX, (uint64_t)i, &c), 0);
            dn_image a, b;
            dn_prep_info ia, ib;
            float oa[NPX], ob[NPX];
            dn_error err = {0};
            assert_int_equal(dn_prep_load_memory(p, c.png, c.len, "c.png", &a, &err), DN_OK);
            assert_true(a.borrowed);
            assert_int_equal(dn_prep_image(p, &a, oa, &ia, &err), DN_OK);
            assert_int_equal(dn_image_load_memory(c.png, c.len, "c.png", &b, &err), DN_OK);
            assert_false(b.borrowed);
            assert_memory_equal(a.grey, b.grey, (size_t)a.w * (size_t)a.h);
            assert_int_equal(dn_image_preprocess(&b, ob, &ib, &err), DN_OK);
            assert_memory_equal(oa, ob, sizeof oa);
            assert_memory_equal(&ia, &ib, sizeof ia);
            dn_image_free(&a); /* borrowed: leaves p's pixels */
            dn_image_free(&b);
            t_canvas_free(&c);
        }
    dn_prep_free(p);
    free_mnist(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_preprocess_identity),
        cmocka_unit_test(test_preprocess_roundtrip),
        cmocka_unit_test(test_blank),
        cmocka_unit_test(test_speck),
        cmocka_unit_test(test_hairline),
        cmocka_unit_test(test_preprocess_keeps_prediction),
        cmocka_unit_test(test_acceptance),
        cmocka_unit_test(test_canvas_matches_before),
        cmocka_unit_test(test_prep_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
