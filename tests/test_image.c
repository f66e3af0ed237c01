/*
 * test_image.c - decoding and MNIST-style preprocessing.
 *
 * The preprocessing is checked against MNIST itself: a test digit made
 * large, black on white and off-centre, as a photo of it would be, must
 * come back to nearly the same 28 x 28 pixels; a trained model must still
 * read 1,000 such digits (sizes, positions and file formats random) at
 * MNIST-like accuracy. Bad files must fail with one line naming them.
 * Test images are built here in C; the upscaling uses stb_image_resize and
 * the encoding stb_image_write, not the code under test.
 */
#include "test.h"

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
    for (int i = 0; i < n; i++) {
        pred[i] = 0;
        for (int c = 1; c < k; c++)
            if (lp[i * k + c] > lp[i * k + pred[i]])
                pred[i] = c;
    }
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
    assert_int_equal(dn_image_alloc(img, cw, ch, 1.0f, NULL), DN_OK);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float v = big[y * size + x];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            img->px[(size_t)(y + oy) * (size_t)cw + (size_t)(x + ox)] = 1.0f - v;
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

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
} membuf;

static void append(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->len + (size_t)size > m->cap) {
        m->cap = 2 * (m->len + (size_t)size);
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

/* img as 8-bit grey, encoded as PNG (jpeg 0) or JPEG (quality q). */
static membuf encode(const dn_image *img, int jpeg, int q)
{
    size_t n = (size_t)img->w * (size_t)img->h;
    unsigned char *g = malloc(n);
    assert_non_null(g);
    for (size_t i = 0; i < n; i++)
        g[i] = (unsigned char)lrintf(img->px[i] * 255.0f);
    membuf m = {0};
    int ok = jpeg ? stbi_write_jpg_to_func(append, &m, img->w, img->h, 1, g, q)
                  : stbi_write_png_to_func(append, &m, img->w, img->h, 1, g, img->w);
    assert_true(ok);
    free(g);
    return m;
}

static void expect_error(dn_status st, const dn_error *err, const char *name, const char *what)
{
    if (st == DN_OK)
        fail_msg("%s: accepted, expected an error about %s", name, what);
    if (!strstr(err->msg, name))
        fail_msg("error does not name the file %s: %s", name, err->msg);
    if (what && !strstr(err->msg, what))
        fail_msg("error for %s lacks '%s': %s", name, what, err->msg);
    if (strchr(err->msg, '\n'))
        fail_msg("error is not one line: %s", err->msg);
}

/* ---- decoding ----------------------------------------------------------- */

static void test_decode_formats(void **state)
{
    (void)state;
    /* A 3x2 RGB picture with known colours, through PNG and BMP. */
    const unsigned char rgb[3 * 2 * 3] = {255, 255, 255, 0, 0, 0, 255, 0, 0,
                                          0,   255, 0,   0, 0, 255, 128, 128, 128};
    const float want[6] = {1, 0, 0.299f, 0.587f, 0.114f, 128 / 255.0f};
    char path[512];
    membuf m = {0};
    assert_true(stbi_write_png_to_func(append, &m, 3, 2, 3, rgb, 9));
    t_write_file(t_tmppath(path, sizeof path, "rgb.png"), m.p, m.len);
    free(m.p);
    dn_image img;
    dn_error err = {0};
    assert_int_equal(dn_image_load(path, &img, &err), DN_OK);
    assert_int_equal(img.w, 3);
    assert_int_equal(img.h, 2);
    for (int i = 0; i < 6; i++)
        assert_float_equal(img.px[i], want[i], 1e-3);
    assert_string_equal(img.name, path);
    dn_image_free(&img);

    assert_int_equal(stbi_write_bmp(t_tmppath(path, sizeof path, "rgb.bmp"), 3, 2, 3, rgb), 1);
    assert_int_equal(dn_image_load(path, &img, &err), DN_OK);
    for (int i = 0; i < 6; i++)
        assert_float_equal(img.px[i], want[i], 1e-3);
    dn_image_free(&img);

    /* GIF: a 1x1 picture whose one pixel is palette entry 0, black in the
     * first file and white in the second. */
    char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00"
                 "\x00\x01\x00\x01\x00\x00\x02\x02" "D\x01\x00;";
    for (int white = 0; white < 2; white++) {
        memset(gif + 13, white ? 0xff : 0, 3);
        memset(gif + 16, white ? 0 : 0xff, 3);
        assert_int_equal(dn_image_load_memory(gif, sizeof gif - 1, "x.gif", &img, &err), DN_OK);
        assert_int_equal(img.w * img.h, 1);
        assert_float_equal(img.px[0], (float)white, 1e-6);
        dn_image_free(&img);
    }

    /* PGM, as netpbm writes it. */
    const char pgm[] = "P5\n# a comment\n2 2\n255\n\x00\x40\x80\xff";
    assert_int_equal(dn_image_load_memory(pgm, sizeof pgm - 1, "x.pgm", &img, &err), DN_OK);
    assert_float_equal(img.px[1], 64 / 255.0f, 1e-6);
    assert_float_equal(img.px[3], 1.0f, 1e-6);
    dn_image_free(&img);
}

static void test_decode_transparent(void **state)
{
    (void)state;
    /* Strokes on a transparent canvas, as a browser drawing exports them:
     * the background takes the colour that keeps the strokes visible. */
    unsigned char rgba[4 * 4 * 4] = {0};
    for (int ink = 0; ink < 2; ink++) {
        for (int i = 0; i < 16; i++) {
            unsigned char *p = rgba + 4 * i;
            int stroke = i % 4 == 1;
            p[0] = p[1] = p[2] = ink ? 255 : 0;
            p[3] = stroke ? 255 : 0;
        }
        membuf m = {0};
        assert_true(stbi_write_png_to_func(append, &m, 4, 4, 4, rgba, 16));
        dn_image img;
        dn_error err = {0};
        assert_int_equal(dn_image_load_memory(m.p, m.len, "canvas.png", &img, &err), DN_OK);
        free(m.p);
        for (int i = 0; i < 16; i++) {
            float stroke = ink ? 1.0f : 0.0f;
            assert_float_equal(img.px[i], (i % 4 == 1 ? stroke : 1.0f - stroke), 1e-6);
        }
        dn_image_free(&img);
    }
}

static void test_decode_bad(void **state)
{
    (void)state;
    char path[512];
    dn_image img;
    dn_error err = {0};
    dn_status st;

    st = dn_image_load(t_tmppath(path, sizeof path, "missing.png"), &img, &err);
    expect_error(st, &err, "missing.png", "cannot open");

    t_write_file(t_tmppath(path, sizeof path, "empty.png"), "", 0);
    st = dn_image_load(path, &img, &err);
    expect_error(st, &err, "empty.png", "empty");

    const char text[] = "this is not an image\n";
    t_write_file(t_tmppath(path, sizeof path, "text.png"), text, sizeof text - 1);
    st = dn_image_load(path, &img, &err);
    expect_error(st, &err, "text.png", "not an image");

    st = dn_image_load(t_tmpdir(), &img, &err);
    expect_error(st, &err, t_tmpdir(), "not a regular file");

    /* A real PNG cut short at every length: never accepted, never a crash
     * (the ASan run checks the second part). */
    static unsigned char px[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        px[i] = (unsigned char)(i * 7 ^ i >> 3);
    membuf m = {0};
    assert_true(stbi_write_png_to_func(append, &m, 64, 64, 1, px, 64));
    int refused = 0;
    for (size_t cut = 0; cut < m.len; cut += 1 + cut / 8) {
        st = dn_image_load_memory(m.p, cut, "cut.png", &img, &err);
        if (st == DN_OK)
            dn_image_free(&img);
        else
            refused++;
        if (st != DN_OK && !strstr(err.msg, "cut.png"))
            fail_msg("unnamed error: %s", err.msg);
    }
    assert_true(refused > 0);
    t_write_file(t_tmppath(path, sizeof path, "truncated.png"), m.p, m.len - 30);
    st = dn_image_load(path, &img, &err);
    expect_error(st, &err, "truncated.png", NULL);
    free(m.p);

    /* Headers claiming absurd sizes, refused before any pixel is
     * allocated: 100000 x 100000 as PGM and as PNG (valid IHDR CRC). */
    const char huge[] = "P5\n100000 100000\n255\n\x01\x02\x03";
    st = dn_image_load_memory(huge, sizeof huge - 1, "huge.pgm", &img, &err);
    expect_error(st, &err, "huge.pgm", "100000x100000");
    static const unsigned char huge_png[] = {
        0x89, 'P',  'N',  'G',  0x0d, 0x0a, 0x1a, 0x0a, 0,    0,    0,    13,   'I',  'H',
        'D',  'R',  0x00, 0x01, 0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0, 8,    0,    0,    0,
        0,    0x8d, 0x39, 0x54, 0x14, 0,    0,    0,    0,    'I',  'E',  'N',  'D',  0xae,
        0x42, 0x60, 0x82};
    st = dn_image_load_memory(huge_png, sizeof huge_png, "huge.png", &img, &err);
    expect_error(st, &err, "huge.png", NULL);
    const char wide[] = "P5\n9000 10\n255\n";
    st = dn_image_load_memory(wide, sizeof wide - 1, "wide.pgm", &img, &err);
    expect_error(st, &err, "wide.pgm", "9000x10");

    /* Zero width. */
    const char zero[] = "P5\n0 5\n255\n";
    st = dn_image_load_memory(zero, sizeof zero - 1, "zero.pgm", &img, &err);
    expect_error(st, &err, "zero.pgm", NULL);
}

/* ---- resizing ----------------------------------------------------------- */

static void test_resize(void **state)
{
    (void)state;
    dn_image a, b;
    dn_error err = {0};
    /* Shrinking averages areas: 3 -> 2 splits the middle pixel. */
    assert_int_equal(dn_image_alloc(&a, 3, 1, 0, &err), DN_OK);
    a.px[0] = 0.0f;
    a.px[1] = 0.3f;
    a.px[2] = 0.9f;
    assert_int_equal(dn_image_resize(&a, 2, 1, &b, &err), DN_OK);
    assert_float_equal(b.px[0], 0.1f, 1e-6);  /* (0 + 0.5 * 0.3) / 1.5 */
    assert_float_equal(b.px[1], 0.7f, 1e-6);  /* (0.5 * 0.3 + 0.9) / 1.5 */
    dn_image_free(&b);
    /* Growing interpolates between pixel centres and clamps at the edges. */
    assert_int_equal(dn_image_resize(&a, 6, 1, &b, &err), DN_OK);
    const float want[6] = {0.0f, 0.075f, 0.225f, 0.45f, 0.75f, 0.9f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(b.px[i], want[i], 1e-6);
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
    memcpy(img.px, src, sizeof src);
    assert_int_equal(dn_image_raw(&img, out, &err), DN_OK);
    assert_memory_equal(out, src, sizeof src);
    dn_image_free(&img);
    /* Twice the size by pixel doubling: area averaging undoes it. */
    assert_int_equal(dn_image_alloc(&img, 2 * SIDE, 2 * SIDE, 0, &err), DN_OK);
    for (int y = 0; y < 2 * SIDE; y++)
        for (int x = 0; x < 2 * SIDE; x++)
            img.px[y * 2 * SIDE + x] = src[(y / 2) * SIDE + x / 2];
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
        memcpy(img.px, src, sizeof src);
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
    const float levels[3] = {1.0f, 0.0f, 0.6f};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dn_image_alloc(&img, 50, 40, levels[k], &err), DN_OK);
        snprintf(img.name, sizeof img.name, "blank%d.png", k);
        /* Paper grain: +-4 % around the background. */
        for (int i = 0; i < 50 * 40; i++)
            img.px[i] += (float)((i * 7919) % 9 - 4) / 100.0f * (levels[k] == 1.0f ? -1 : 1);
        dn_status st = dn_image_preprocess(&img, out, NULL, &err);
        expect_error(st, &err, img.name, "no digit found");
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
            img.px[y * 400 + x] = 0.0f;
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
    assert_int_equal(dn_image_alloc(&img, 800, 800, 1.0f, &err), DN_OK);
    /* A "7": a top bar and a diagonal, one pixel wide. */
    for (int x = 200; x <= 600; x++)
        img.px[100 * 800 + x] = 0.0f;
    for (int y = 100; y <= 700; y++)
        img.px[y * 800 + 600 - (y - 100) / 2] = 0.0f;
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
            membuf f = encode(&img, i % 3 == 2, 85);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_formats),
        cmocka_unit_test(test_decode_transparent),
        cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_preprocess_identity),
        cmocka_unit_test(test_preprocess_roundtrip),
        cmocka_unit_test(test_blank),
        cmocka_unit_test(test_speck),
        cmocka_unit_test(test_hairline),
        cmocka_unit_test(test_preprocess_keeps_prediction),
        cmocka_unit_test(test_acceptance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
