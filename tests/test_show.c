/*
 * test_show.c - pictures: colour maps, grid geometry, PNG files, SVG charts,
 * and `digitnet show` end to end on a hand-set model whose first layer's
 * output is known, so that the colour of every map pixel can be predicted.
 */
#include "test.h"

#include "digitnet_picture.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb_image.h>

static char out[1 << 16];

static void must_contain(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("text lacks '%s':\n%.2000s", needle, text);
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Decoded RGB of a PNG; fails the test if it does not decode. */
static unsigned char *load_rgb(const char *path, int *w, int *h)
{
    int n;
    unsigned char *p = stbi_load(path, w, h, &n, 3);
    if (!p)
        fail_msg("%s: %s", path, stbi_failure_reason());
    return p;
}

static uint32_t pixel(const unsigned char *rgb, int w, int x, int y)
{
    const unsigned char *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* Colours equal within `tol` levels per channel. */
static void colour_near(uint32_t got, uint32_t want, int tol, const char *what)
{
    for (int sh = 0; sh <= 16; sh += 8) {
        int a = (int)(got >> sh & 0xFF), b = (int)(want >> sh & 0xFF);
        if (abs(a - b) > tol)
            fail_msg("%s: colour #%06X, expected #%06X", what, (unsigned)got, (unsigned)want);
    }
}

/* No temporary file of an atomic write is left in dir. */
static void no_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("left over in %s: %s", dir, e->d_name);
    closedir(d);
}

/* ---- library ------------------------------------------------------------ */

static void test_colormaps(void **state)
{
    (void)state;
    /* Viridis' published end and middle colours, RdBu's ends and centre. */
    assert_int_equal(dn_colormap_rgb(DN_CMAP_VIRIDIS, 0.0f), 0x440154);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_VIRIDIS, 0.5f), 0x21908C);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_VIRIDIS, 1.0f), 0xFDE725);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_DIVERGING, 0.0f), 0x2166AC);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_DIVERGING, 0.5f), 0xF7F7F7);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_DIVERGING, 1.0f), 0xB2182B);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_GREY, 0.5f), 0x808080);
    /* Clamped outside 0..1; NaN stands out. */
    assert_int_equal(dn_colormap_rgb(DN_CMAP_VIRIDIS, -3.0f), 0x440154);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_GREY, 7.0f), 0xFFFFFF);
    assert_int_equal(dn_colormap_rgb(DN_CMAP_VIRIDIS, NAN), 0xFF00FF);
    /* Viridis gets lighter all the way (it reads in grey). */
    double last = -1;
    for (int i = 0; i <= 64; i++) {
        uint32_t c = dn_colormap_rgb(DN_CMAP_VIRIDIS, i / 64.0f);
        double l = 0.299 * (c >> 16) + 0.587 * (c >> 8 & 0xFF) + 0.114 * (c & 0xFF);
        assert_true(l > last);
        last = l;
    }
}

static void test_grid_geometry(void **state)
{
    (void)state;
    /* conv2's 16 maps of 14x14 at 8x, 8 to a row, 6 px apart. */
    dn_grid g = dn_grid_layout(16, 14, 14, 8, 8, 6);
    assert_int_equal(g.rows, 2);
    assert_int_equal(g.width, 6 + 8 * (112 + 6));
    assert_int_equal(g.height, 6 + 2 * (112 + 6));
    assert_int_equal(dn_grid_cell_x(&g, 9), 6 + 118);
    assert_int_equal(dn_grid_cell_y(&g, 9), 6 + 118);
    /* Fewer maps than columns: the grid shrinks to them. */
    g = dn_grid_layout(3, 2, 2, 8, 1, 1);
    assert_int_equal(g.cols, 3);
    assert_int_equal(g.width, 1 + 3 * 3);
}

static void test_grid_pixels(void **state)
{
    (void)state;
    /* Two 2x3 maps: every pixel's colour follows from its value. */
    const float maps[12] = {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0};
    dn_grid g = dn_grid_layout(2, 2, 3, 2, 5, 3);
    dn_canvas c;
    dn_error err = {0};
    assert_int_equal(dn_grid_draw(&g, maps, 0, 5, DN_CMAP_VIRIDIS, &c, &err), DN_OK);
    char path[512];
    t_tmppath(path, sizeof path, "grid.png");
    assert_int_equal(dn_canvas_write_png(&c, path, &err), DN_OK);
    dn_canvas_free(&c);
    int w, h;
    unsigned char *rgb = load_rgb(path, &w, &h);
    assert_int_equal(w, 3 + 2 * (15 + 3));
    assert_int_equal(h, 3 + 10 + 3);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int dy = 0; dy < 5; dy += 4)
                    for (int dx = 0; dx < 5; dx += 4) {
                        int x = dn_grid_cell_x(&g, k) + j * 5 + dx;
                        int y = dn_grid_cell_y(&g, k) + i * 5 + dy;
                        uint32_t want = dn_colormap_rgb(DN_CMAP_VIRIDIS, maps[k * 6 + i * 3 + j] / 5);
                        colour_near(pixel(rgb, w, x, y), want, 0, "grid pixel");
                    }
    /* The gaps are background, not map. */
    colour_near(pixel(rgb, w, 1, 1), 0xE4E4E4, 0, "gap");
    colour_near(pixel(rgb, w, 3 + 15 + 1, 8), 0xE4E4E4, 0, "gap between maps");
    free(rgb);
    no_leftovers(t_tmpdir());
}

static void test_png_files(void **state)
{
    (void)state;
    uint8_t px[5 * 4];
    for (int i = 0; i < 20; i++)
        px[i] = (uint8_t)(i * 13);
    uint8_t *a, *b;
    size_t na, nb;
    dn_error err = {0};
    assert_int_equal(dn_png_encode(px, 5, 4, 1, &a, &na, &err), DN_OK);
    assert_int_equal(dn_png_encode(px, 5, 4, 1, &b, &nb, &err), DN_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na); /* deterministic */
    int w, h, n;
    unsigned char *d = stbi_load_from_memory(a, (int)na, &w, &h, &n, 1);
    assert_non_null(d);
    assert_int_equal(w, 5);
    assert_int_equal(h, 4);
    assert_memory_equal(d, px, 20);
    stbi_image_free(d);
    free(a);
    free(b);
    assert_int_not_equal(dn_png_encode(px, 5, 4, 2, &a, &na, &err), DN_OK);

    /* An atomic write into a missing directory fails naming the file; one
     * over an existing file replaces it whole. */
    char path[512];
    t_tmppath(path, sizeof path, "no-such-dir/x.png");
    assert_int_not_equal(dn_png_write(path, px, 5, 4, 1, &err), DN_OK);
    must_contain(err.msg, "no-such-dir/x.png");
    t_tmppath(path, sizeof path, "x.png");
    t_write_file(path, "old", 3);
    assert_int_equal(dn_png_write(path, px, 5, 4, 1, &err), DN_OK);
    size_t size;
    char *got = t_read_file(path, &size);
    assert_non_null(got);
    assert_int_equal(memcmp(got, "\x89PNG", 4), 0);
    free(got);
    no_leftovers(t_tmpdir());
}

static void test_text_and_svg(void **state)
{
    (void)state;
    dn_text t = {0};
    dn_text_html(&t, "<a href=\"x\">&'</a>");
    assert_string_equal(t.s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    dn_text_free(&t);

    const float lp[10] = {-42.6972f, -46.8689f, -29.2313f, -21.1472f, -27.0222f,
                          -23.9541f, -60.7476f, -0.0f,     -25.9002f, -17.0474f};
    const char *names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "<9>"};
    dn_svg_bar_chart(&t, lp, 10, names, 7, "log p", 600, 260);
    assert_false(t.oom);
    assert_int_equal(count(t.s, "<svg"), 1);
    assert_int_equal(count(t.s, "<rect"), 10);
    assert_int_equal(count(t.s, "#E8772E"), 1); /* the marked bar */
    must_contain(t.s, "&lt;9&gt;");
    must_contain(t.s, ">-60.75<");
    must_contain(t.s, ">0.00<");
    /* The longest bar is the least likely class and reaches the bottom. */
    must_contain(t.s, "</svg>");
    dn_text_free(&t);

    const double x[4] = {1, 2, 3, 4}, y[4] = {0.5, NAN, 0.25, 0.125}, e[4] = {0.1, 0, 0, 0};
    dn_series s = {"loss", x, y, e, 4, 0x123456};
    dn_svg_line_chart(&t, &s, 1, "a <title>", "epoch", "loss", 400, 300);
    assert_false(t.oom);
    must_contain(t.s, "a &lt;title&gt;");
    assert_int_equal(count(t.s, "<circle"), 3); /* NaN point skipped */
    assert_int_equal(count(t.s, "stroke=\"#123456\""), 3); /* line, error bar, legend */
    dn_text_free(&t);
}

/* ---- digitnet show on a hand-set model ---------------------------------- */

#define SIDE 28

/* conv1 keeps only its centre tap: map c is relu(s[c] * x + b[c]) of the
 * normalised input x. */
static const float tap[8] = {1.0f, -0.5f, 1.0f, -0.5f, 1.0f, -0.5f, 1.0f, -0.5f};
static const float bias[8] = {-0.3f, -0.2f, -0.1f, 0.0f, 0.1f, 0.2f, 0.3f, 0.4f};

static uint8_t input_byte(int y, int x)
{
    return (uint8_t)((x * 9 + y * 5) % 256);
}

/* Writes the hand-set model and the input picture; returns the model. */
static dn_model *hand_model(char *model_path, size_t msize, char *img_path, size_t isize)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(NULL, (dn_shape){1, SIDE, SIDE}, 7, &err);
    if (!m)
        fail_msg("%s", err.msg);
    int l = dn_model_find(m, "conv1");
    assert_true(l >= 0);
    float *w = m->params + m->layers[l].w_off; /* (8, 1, 3, 3) */
    float *b = m->params + m->layers[l].b_off;
    for (int c = 0; c < 8; c++) {
        for (int i = 0; i < 9; i++)
            w[c * 9 + i] = i == 4 ? tap[c] : 0.0f;
        b[c] = bias[c];
    }
    t_tmppath(model_path, msize, "hand.safetensors");
    if (dn_model_save(m, model_path, NULL, &err) != DN_OK)
        fail_msg("%s", err.msg);
    char pgm[64 + SIDE * SIDE];
    int n = snprintf(pgm, sizeof pgm, "P5\n%d %d\n255\n", SIDE, SIDE);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            pgm[n++] = (char)input_byte(y, x);
    t_tmppath(img_path, isize, "pattern.pgm");
    t_write_file(img_path, pgm, (size_t)n);
    return m;
}

static void test_show_known_activations(void **state)
{
    (void)state;
    char model[512], img[512], dir[512], path[1024];
    dn_model *m = hand_model(model, sizeof model, img, sizeof img);
    t_tmppath(dir, sizeof dir, "show1");
    int rc = t_run(out, sizeof out, "show --model '%s' --raw '%s' --out '%s'", model, img, dir);
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);

    /* The expected conv1 + ReLU maps and their common range. */
    static float act[8][SIDE][SIDE];
    float hi = 0;
    for (int c = 0; c < 8; c++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                float v = input_byte(y, x) / 255.0f;
                dn_image_normalize(&v, 1, m->mean, m->std);
                float a = tap[c] * v + bias[c];
                act[c][y][x] = a > 0 ? a : 0;
                hi = act[c][y][x] > hi ? act[c][y][x] : hi;
            }

    /* Input: 28x28 at 8x, grey. */
    int w, h;
    snprintf(path, sizeof path, "%s/input.png", dir);
    unsigned char *rgb = load_rgb(path, &w, &h);
    assert_int_equal(w, 224);
    assert_int_equal(h, 224);
    for (int y = 0; y < SIDE; y += 3)
        for (int x = 0; x < SIDE; x += 5) {
            uint8_t g = input_byte(y, x);
            colour_near(pixel(rgb, w, 8 * x + 3, 8 * y + 5), (uint32_t)g << 16 | g << 8 | g, 0,
                        "input pixel");
        }
    free(rgb);

    /* conv1 + ReLU: 8 maps of 28x28 at 4x (112 px), 8 to a row, 6 px gap. */
    snprintf(path, sizeof path, "%s/conv1-relu.png", dir);
    rgb = load_rgb(path, &w, &h);
    dn_grid g = dn_grid_layout(8, SIDE, SIDE, 8, 4, 6);
    assert_int_equal(w, g.width);
    assert_int_equal(h, g.height);
    assert_int_equal(w, 6 + 8 * 118);
    for (int c = 0; c < 8; c++)
        for (int y = 0; y < SIDE; y += 3)
            for (int x = 0; x < SIDE; x += 2) {
                uint32_t want = dn_colormap_rgb(DN_CMAP_VIRIDIS, act[c][y][x] / hi);
                char what[64];
                snprintf(what, sizeof what, "conv1 map %d at (%d, %d)", c, y, x);
                colour_near(pixel(rgb, w, dn_grid_cell_x(&g, c) + 4 * x + 1,
                                  dn_grid_cell_y(&g, c) + 4 * y + 2),
                            want, 1, what);
            }
    free(rgb);

    /* pool1: the 2x2 maxima, on the same range (max pooling keeps the
     * largest value), 14x14 at 8x. */
    snprintf(path, sizeof path, "%s/pool1.png", dir);
    rgb = load_rgb(path, &w, &h);
    g = dn_grid_layout(8, 14, 14, 8, 8, 6);
    assert_int_equal(w, g.width);
    assert_int_equal(h, g.height);
    for (int c = 0; c < 8; c++)
        for (int y = 0; y < 14; y += 3)
            for (int x = 0; x < 14; x += 2) {
                float v = fmaxf(fmaxf(act[c][2 * y][2 * x], act[c][2 * y][2 * x + 1]),
                                fmaxf(act[c][2 * y + 1][2 * x], act[c][2 * y + 1][2 * x + 1]));
                colour_near(pixel(rgb, w, dn_grid_cell_x(&g, c) + 8 * x + 4,
                                  dn_grid_cell_y(&g, c) + 8 * y + 4),
                            dn_colormap_rgb(DN_CMAP_VIRIDIS, v / hi), 1, "pool1 pixel");
            }
    free(rgb);

    /* conv1's filters: red where +1, blue-ish where -0.5, white at 0. */
    snprintf(path, sizeof path, "%s/filters-conv1.png", dir);
    rgb = load_rgb(path, &w, &h);
    g = dn_grid_layout(8, 3, 3, 8, 40, 6);
    assert_int_equal(w, g.width);
    assert_int_equal(h, g.height);
    for (int c = 0; c < 8; c++) {
        int x0 = dn_grid_cell_x(&g, c), y0 = dn_grid_cell_y(&g, c);
        colour_near(pixel(rgb, w, x0 + 60, y0 + 60),
                    dn_colormap_rgb(DN_CMAP_DIVERGING, (tap[c] + 1) / 2), 0, "filter centre");
        colour_near(pixel(rgb, w, x0 + 20, y0 + 100), 0xF7F7F7, 0, "zero tap");
    }
    free(rgb);

    /* Every other stage exists with the shape it should have. */
    const char *files[] = {"conv2-relu.png", "pool2.png", "flatten.png", "fc1-relu.png",
                           "filters-conv2.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        rgb = load_rgb(path, &w, &h);
        free(rgb);
        if (!strcmp(files[i], "conv2-relu.png"))
            assert_int_equal(w, dn_grid_layout(16, 14, 14, 8, 8, 6).width);
        if (!strcmp(files[i], "pool2.png"))
            assert_int_equal(h, dn_grid_layout(16, 7, 7, 8, 16, 6).height);
        if (!strcmp(files[i], "filters-conv2.png")) {
            assert_int_equal(w, dn_grid_layout(128, 5, 5, 8, 12, 6).width);
            assert_int_equal(h, dn_grid_layout(128, 5, 5, 8, 12, 6).height);
        }
    }

    /* The page: stages in data-flow order with their shapes as text. */
    snprintf(path, sizeof path, "%s/index.html", dir);
    char *html = t_read_file(path, NULL);
    assert_non_null(html);
    must_contain(html, "1x28x28 &rarr; 8x28x28 &rarr; 8x14x14 &rarr; 16x14x14 &rarr; 16x7x7 "
                       "&rarr; 784 &rarr; 64 &rarr; 10");
    const char *order[] = {"src=\"input.png\"",   "src=\"conv1-relu.png\"",
                           "src=\"filters-conv1.png\"", "src=\"pool1.png\"",
                           "src=\"conv2-relu.png\"",    "src=\"filters-conv2.png\"",
                           "src=\"pool2.png\"",   "src=\"flatten.png\"",
                           "src=\"fc1-relu.png\"", "<svg"};
    const char *at = html;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *p = strstr(at, order[i]);
        if (!p)
            fail_msg("index.html lacks %s after the stage before", order[i]);
        at = p;
    }
    char range[64];
    snprintf(range, sizeof range, "%.4g <span class=\"scale\"", 0.0);
    must_contain(html, range);
    snprintf(range, sizeof range, "</span> %.4g &nbsp;", hi);
    must_contain(html, range);
    free(html);
    no_leftovers(dir);
    dn_model_free(m);
}

static void test_show_deterministic(void **state)
{
    (void)state;
    char model[512], img[512], d1[512], d2[512];
    dn_model *m = hand_model(model, sizeof model, img, sizeof img);
    dn_model_free(m);
    t_tmppath(d1, sizeof d1, "det1");
    t_tmppath(d2, sizeof d2, "det2");
    /* A drawing that goes through preprocessing too. */
    const char *digit = "tests/fixtures/digits/3-canvas.png";
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' %s --out '%s'", model, digit, d1),
                     0);
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' %s --out '%s'", model, digit, d2),
                     0);
    DIR *d = opendir(d1);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/%s", d1, e->d_name);
        snprintf(p2, sizeof p2, "%s/%s", d2, e->d_name);
        size_t n1, n2;
        char *a = t_read_file(p1, &n1), *b = t_read_file(p2, &n2);
        assert_non_null(a);
        if (!b || n1 != n2 || memcmp(a, b, n1) != 0)
            fail_msg("%s differs between two runs", e->d_name);
        free(a);
        free(b);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 10); /* 9 pictures and index.html */
}

static void test_show_errors(void **state)
{
    (void)state;
    char model[512], img[512], dir[512];
    dn_model *m = hand_model(model, sizeof model, img, sizeof img);
    dn_model_free(m);
    t_tmppath(dir, sizeof dir, "err");
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' '%s'", model, img), 2);
    must_contain(out, "--out");
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' --out '%s'", model, dir), 2);
    assert_int_equal(
        t_run(out, sizeof out, "show --model '%s' '%s' '%s' --out '%s'", model, img, img, dir), 2);
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' --mnist-index x --out '%s'",
                           model, dir),
                     2);
    assert_int_equal(t_run(out, sizeof out, "show --bogus"), 2);
    assert_int_equal(t_run(out, sizeof out, "show --help"), 0);
    must_contain(out, "examples:");
    char bad[512];
    t_tmppath(bad, sizeof bad, "bad.png");
    t_write_file(bad, "GIF89a", 6);
    assert_int_equal(t_run(out, sizeof out, "show --model '%s' '%s' --out '%s'", model, bad, dir),
                     1);
    must_contain(out, "bad.png");
    assert_int_equal(t_run(out, sizeof out, "show --model '%s/none.safetensors' '%s' --out '%s'",
                           t_tmpdir(), img, dir),
                     1);
    must_contain(out, "digitnet train");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colormaps),
        cmocka_unit_test(test_grid_geometry),
        cmocka_unit_test(test_grid_pixels),
        cmocka_unit_test(test_png_files),
        cmocka_unit_test(test_text_and_svg),
        cmocka_unit_test(test_show_known_activations),
        cmocka_unit_test(test_show_deterministic),
        cmocka_unit_test(test_show_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
