/*
 * picture.c - pictures of what the network sees: colour maps, grids of
 * feature maps drawn on a canvas, and PNG files.
 *
 * Everything here is deterministic (no time stamps, no randomness, fixed
 * number formats), so the same model and input give the same bytes.
 */
#include "digitnet_picture.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

/* ------------------------------------------------------------------------ */
/* Colour maps                                                              */
/* ------------------------------------------------------------------------ */

/* Viridis sampled at nine evenly spaced points (the colours R's
 * viridis(9) lists); linear interpolation between them stays within a few
 * levels of the full 256-entry map. Perceptually uniform, so equal steps
 * in value look like equal steps in colour, and it still reads in grey. */
static const uint32_t viridis9[9] = {0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21908C,
                                     0x27AD81, 0x5DC863, 0xAADC32, 0xFDE725};
/* ColorBrewer's RdBu, blue for negative, near-white at zero, red for
 * positive. */
static const uint32_t rdbu7[7] = {0x2166AC, 0x67A9CF, 0xD1E5F0, 0xF7F7F7,
                                  0xFDDBC7, 0xEF8A62, 0xB2182B};

static uint32_t lerp_table(const uint32_t *tab, int n, float t)
{
    float u = t * (float)(n - 1);
    int i = (int)u;
    if (i >= n - 1)
        return tab[n - 1];
    float f = u - (float)i;
    uint32_t a = tab[i], b = tab[i + 1], out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        float ca = (float)((a >> sh) & 0xFF), cb = (float)((b >> sh) & 0xFF);
        uint32_t c = (uint32_t)lrintf(ca + (cb - ca) * f);
        out |= (c > 255 ? 255 : c) << sh;
    }
    return out;
}

uint32_t dn_colormap_rgb(dn_colormap map, float t)
{
    if (isnan(t))
        return 0xFF00FF;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    switch (map) {
    case DN_CMAP_VIRIDIS:
        return lerp_table(viridis9, 9, t);
    case DN_CMAP_DIVERGING:
        return lerp_table(rdbu7, 7, t);
    case DN_CMAP_GREY:
        break;
    }
    uint32_t g = (uint32_t)lrintf(t * 255.0f);
    return g << 16 | g << 8 | g;
}

/* ------------------------------------------------------------------------ */
/* Canvas and grids                                                         */
/* ------------------------------------------------------------------------ */

/* Fills a rectangle, clipped to the canvas. */
static void canvas_fill(dn_canvas *c, int x, int y, int w, int h, uint32_t rgb)
{
    int xa = x < 0 ? 0 : x, ya = y < 0 ? 0 : y;
    int xb = x + w > c->w ? c->w : x + w, yb = y + h > c->h ? c->h : y + h;
    for (int yy = ya; yy < yb; yy++)
        for (int xx = xa; xx < xb; xx++) {
            uint8_t *p = c->rgb + ((size_t)yy * (size_t)c->w + (size_t)xx) * 3;
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

/* Allocates a w x h canvas filled with colour bg (0xRRGGBB). */
static dn_status canvas_new(dn_canvas *c, int w, int h, uint32_t bg, dn_error *err)
{
    memset(c, 0, sizeof *c);
    if (w <= 0 || h <= 0 || w > 32768 || h > 32768)
        return dn_fail(err, DN_ERR_ARG, "picture size %dx%d is out of range", w, h);
    c->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!c->rgb)
        return dn_fail(err, DN_ERR_NOMEM, "out of memory for a %dx%d picture", w, h);
    c->w = w;
    c->h = h;
    canvas_fill(c, 0, 0, w, h, bg);
    return DN_OK;
}

void dn_canvas_free(dn_canvas *c)
{
    if (!c)
        return;
    free(c->rgb);
    memset(c, 0, sizeof *c);
}

/* Draws map (h, w) with its top-left at (x, y), each value a scale x scale
 * block coloured by map((v - lo) / (hi - lo)); clipped to the canvas. */
static void canvas_map(dn_canvas *c, int x, int y, const float *map, int h, int w, int scale,
                       float lo, float hi, dn_colormap cmap)
{
    float range = hi - lo;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            float v = map[(size_t)i * (size_t)w + (size_t)j];
            float t = range > 0 ? (v - lo) / range : cmap == DN_CMAP_DIVERGING ? 0.5f : 0.0f;
            if (isnan(v))
                t = v;
            canvas_fill(c, x + j * scale, y + i * scale, scale, scale, dn_colormap_rgb(cmap, t));
        }
}

dn_grid dn_grid_layout(int n, int h, int w, int cols, int scale, int gap)
{
    dn_grid g;
    memset(&g, 0, sizeof g);
    g.n = n > 0 ? n : 0;
    g.cols = cols < 1 ? 1 : cols > g.n && g.n > 0 ? g.n : cols;
    g.rows = g.n ? (g.n + g.cols - 1) / g.cols : 0;
    g.h = h;
    g.w = w;
    g.scale = scale < 1 ? 1 : scale;
    g.gap = gap < 0 ? 0 : gap;
    g.width = g.gap + g.cols * (w * g.scale + g.gap);
    g.height = g.gap + g.rows * (h * g.scale + g.gap);
    return g;
}

int dn_grid_cell_x(const dn_grid *g, int k)
{
    return g->gap + (k % g->cols) * (g->w * g->scale + g->gap);
}

int dn_grid_cell_y(const dn_grid *g, int k)
{
    return g->gap + (k / g->cols) * (g->h * g->scale + g->gap);
}

dn_status dn_grid_draw(const dn_grid *g, const float *maps, float lo, float hi, dn_colormap cmap,
                       dn_canvas *out, dn_error *err)
{
    if (!g || !maps || !out || g->n <= 0 || g->h <= 0 || g->w <= 0)
        return dn_fail(err, DN_ERR_ARG, "dn_grid_draw: empty grid");
    dn_status st = canvas_new(out, g->width, g->height, 0xE4E4E4, err);
    if (st != DN_OK)
        return st;
    size_t per = (size_t)g->h * (size_t)g->w;
    for (int k = 0; k < g->n; k++)
        canvas_map(out, dn_grid_cell_x(g, k), dn_grid_cell_y(g, k), maps + (size_t)k * per,
                      g->h, g->w, g->scale, lo, hi, cmap);
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} membuf;

static void membuf_append(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->oom || size <= 0)
        return;
    if (m->len + (size_t)size > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + (size_t)size)
            cap *= 2;
        uint8_t *np = realloc(m->p, cap);
        if (!np) {
            m->oom = 1;
            return;
        }
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

dn_status dn_png_encode(const uint8_t *px, int w, int h, int channels, uint8_t **png,
                        size_t *size, dn_error *err)
{
    if (!px || !png || !size)
        return dn_fail(err, DN_ERR_ARG, "dn_png_encode: NULL argument");
    *png = NULL;
    *size = 0;
    if (w <= 0 || h <= 0 || w > 32768 || h > 32768 ||
        (channels != 1 && channels != 3 && channels != 4))
        return dn_fail(err, DN_ERR_ARG, "cannot encode a %dx%dx%d picture as PNG", w, h,
                       channels);
    membuf m = {0};
    int ok = stbi_write_png_to_func(membuf_append, &m, w, h, channels, px, w * channels);
    if (!ok || m.oom || !m.len) {
        free(m.p);
        return dn_fail(err, m.oom ? DN_ERR_NOMEM : DN_ERR_IO, "PNG encoding of %dx%d failed", w,
                       h);
    }
    *png = m.p;
    *size = m.len;
    return DN_OK;
}

dn_status dn_png_write(const char *path, const uint8_t *px, int w, int h, int channels,
                       dn_error *err)
{
    uint8_t *png;
    size_t size;
    dn_status st = dn_png_encode(px, w, h, channels, &png, &size, err);
    if (st != DN_OK) {
        if (err)
            dn_fail(err, st, "%s: %s", path ? path : "?", err->msg);
        return st;
    }
    st = dn_file_write_atomic(path, png, size, err);
    free(png);
    return st;
}

dn_status dn_canvas_write_png(const dn_canvas *c, const char *path, dn_error *err)
{
    if (!c || !c->rgb)
        return dn_fail(err, DN_ERR_ARG, "%s: empty picture", path ? path : "?");
    return dn_png_write(path, c->rgb, c->w, c->h, 3, err);
}
