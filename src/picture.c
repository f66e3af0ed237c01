/*
 * picture.c - pictures of what the network sees: colour maps, grids of
 * feature maps, PNG files, and the inline SVG charts of the HTML pages.
 *
 * Everything here is deterministic (no time stamps, no randomness, fixed
 * number formats), so the same model and input give the same bytes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

dn_status dn_canvas_new(dn_canvas *c, int w, int h, uint32_t bg, dn_error *err)
{
    if (!c)
        return dn_fail(err, DN_ERR_ARG, "dn_canvas_new: NULL canvas");
    memset(c, 0, sizeof *c);
    if (w <= 0 || h <= 0 || w > 32768 || h > 32768)
        return dn_fail(err, DN_ERR_ARG, "picture size %dx%d is out of range", w, h);
    c->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!c->rgb)
        return dn_fail(err, DN_ERR_NOMEM, "out of memory for a %dx%d picture", w, h);
    c->w = w;
    c->h = h;
    dn_canvas_fill(c, 0, 0, w, h, bg);
    return DN_OK;
}

void dn_canvas_free(dn_canvas *c)
{
    if (!c)
        return;
    free(c->rgb);
    memset(c, 0, sizeof *c);
}

void dn_canvas_fill(dn_canvas *c, int x, int y, int w, int h, uint32_t rgb)
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

void dn_canvas_map(dn_canvas *c, int x, int y, const float *map, int h, int w, int scale, float lo,
                   float hi, dn_colormap cmap)
{
    float range = hi - lo;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            float v = map[(size_t)i * (size_t)w + (size_t)j];
            float t = range > 0 ? (v - lo) / range : cmap == DN_CMAP_DIVERGING ? 0.5f : 0.0f;
            if (isnan(v))
                t = v;
            dn_canvas_fill(c, x + j * scale, y + i * scale, scale, scale, dn_colormap_rgb(cmap, t));
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
    dn_status st = dn_canvas_new(out, g->width, g->height, 0xE4E4E4, err);
    if (st != DN_OK)
        return st;
    size_t per = (size_t)g->h * (size_t)g->w;
    for (int k = 0; k < g->n; k++)
        dn_canvas_map(out, dn_grid_cell_x(g, k), dn_grid_cell_y(g, k), maps + (size_t)k * per,
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

/* ------------------------------------------------------------------------ */
/* Text                                                                     */
/* ------------------------------------------------------------------------ */

static int text_reserve(dn_text *t, size_t extra)
{
    if (t->oom)
        return 0;
    if (t->len + extra + 1 <= t->cap)
        return 1;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            t->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = 1;
        return 0;
    }
    t->s = s;
    t->cap = cap;
    return 1;
}

void dn_text_printf(dn_text *t, const char *fmt, ...)
{
    if (!t || t->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void dn_text_html(dn_text *t, const char *s)
{
    if (!t || !s)
        return;
    for (; *s; s++) {
        switch (*s) {
        case '&': dn_text_printf(t, "&amp;"); break;
        case '<': dn_text_printf(t, "&lt;"); break;
        case '>': dn_text_printf(t, "&gt;"); break;
        case '"': dn_text_printf(t, "&quot;"); break;
        case '\'': dn_text_printf(t, "&#39;"); break;
        default: dn_text_printf(t, "%c", *s); break;
        }
    }
}

void dn_text_free(dn_text *t)
{
    if (!t)
        return;
    free(t->s);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------ */
/* SVG charts                                                               */
/* ------------------------------------------------------------------------ */

/* A step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double range, int want)
{
    if (!(range > 0))
        return 1;
    double raw = range / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Decimals needed to print multiples of step distinctly. */
static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

static void rgb_hex(char out[8], uint32_t rgb)
{
    snprintf(out, 8, "#%06X", (unsigned)(rgb & 0xFFFFFF));
}

/* The opening <svg> tag of a width x height chart and, if there is one, its
 * title in bold at the top left, x = left. */
static void svg_open(dn_text *t, int width, int height, const char *title, double left)
{
    dn_text_printf(t,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                   width, height, width, height);
    if (title && *title) {
        dn_text_printf(t, "<text x=\"%.1f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">",
                       left);
        dn_text_html(t, title);
        dn_text_printf(t, "</text>\n");
    }
}

void dn_svg_line_chart(dn_text *t, const dn_series *s, int ns, const char *title,
                       const char *xlabel, const char *ylabel, int width, int height)
{
    const double ml = 64, mr = 16, mt = title && *title ? 30 : 12, mb = 44;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i], e = s[k].err ? s[k].err[i] : 0;
            if (!isfinite(x) || !isfinite(y))
                continue;
            e = isfinite(e) ? fabs(e) : 0;
            x0 = fmin(x0, x);
            x1 = fmax(x1, x);
            y0 = fmin(y0, y - e);
            y1 = fmax(y1, y + e);
        }
    if (!(x0 <= x1)) {
        x0 = 0;
        x1 = 1;
        y0 = 0;
        y1 = 1;
    }
    if (x1 - x0 < 1e-12) {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if (y1 - y0 < 1e-12) {
        double d = fabs(y0) > 0 ? fabs(y0) * 0.05 : 0.5;
        y0 -= d;
        y1 += d;
    }
    double xs = nice_step(x1 - x0, 8), ys = nice_step(y1 - y0, 5);
    /* Axis ends on whole ticks so that the grid frames the data. */
    y0 = floor(y0 / ys) * ys;
    y1 = ceil(y1 / ys) * ys;
    if (xs < 1 && x1 - x0 >= 2)
        xs = 1;
    double pw = width - ml - mr, ph = height - mt - mb;
#define PX(v) (ml + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (mt + (y1 - (v)) / (y1 - y0) * ph)
    svg_open(t, width, height, title, ml);
    dn_text_printf(t,
                   "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" "
                   "stroke=\"#888\"/>\n",
                   ml, mt, pw, ph);
    int yd = step_decimals(ys), xd = step_decimals(xs);
    for (int i = 0; i <= 1000; i++) {
        double v = y0 + i * ys;
        if (v > y1 + ys * 1e-6)
            break;
        dn_text_printf(t,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
                       ml, ml + pw, PY(v), PY(v), ml - 4, PY(v) + 4, yd, v);
    }
    for (int i = 0; i <= 1000; i++) {
        double v = ceil(x0 / xs - 1e-9) * xs + i * xs;
        if (v > x1 + xs * 1e-6)
            break;
        dn_text_printf(t,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                       PX(v), PX(v), mt, mt + ph, PX(v), mt + ph + 15, xd, v);
    }
    if (xlabel && *xlabel) {
        dn_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ml + pw / 2,
                       height - 8);
        dn_text_html(t, xlabel);
        dn_text_printf(t, "</text>\n");
    }
    if (ylabel && *ylabel) {
        dn_text_printf(t,
                       "<text transform=\"translate(14,%.1f) rotate(-90)\" "
                       "text-anchor=\"middle\">",
                       mt + ph / 2);
        dn_text_html(t, ylabel);
        dn_text_printf(t, "</text>\n");
    }
    for (int k = 0; k < ns; k++) {
        char col[8];
        rgb_hex(col, s[k].rgb);
        dn_text_printf(t, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                       col);
        for (int i = 0; i < s[k].n; i++)
            if (isfinite(s[k].x[i]) && isfinite(s[k].y[i]))
                dn_text_printf(t, "%.1f,%.1f ", PX(s[k].x[i]), PY(s[k].y[i]));
        dn_text_printf(t, "\"/>\n");
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y))
                continue;
            if (s[k].err && isfinite(s[k].err[i]) && s[k].err[i] != 0) {
                double e = fabs(s[k].err[i]);
                dn_text_printf(t,
                               "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                               "stroke=\"%s\"/>\n",
                               PX(x), PX(x), PY(y - e), PY(y + e), col);
            }
            dn_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(x),
                           PY(y), col);
        }
        /* Legend, top right inside the plot, one line per series, as wide
         * as the longest name at about 7 px a character. */
        size_t longest = 0;
        for (int j = 0; j < ns; j++) {
            size_t len = s[j].name ? strlen(s[j].name) : 0;
            longest = len > longest ? len : longest;
        }
        double lx = ml + pw - 32 - 7.0 * (double)longest, ly = mt + 16 + 16 * k;
        lx = lx < ml + 4 ? ml + 4 : lx;
        dn_text_printf(t,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">",
                       lx, lx + 18, ly - 4, ly - 4, col, lx + 24, ly);
        dn_text_html(t, s[k].name ? s[k].name : "");
        dn_text_printf(t, "</text>\n");
    }
#undef PX
#undef PY
    dn_text_printf(t, "</svg>\n");
}

void dn_svg_bar_chart(dn_text *t, const float *v, int n, const char *const *labels, int mark,
                      const char *title, int width, int height)
{
    const double ml = 12, mr = 12, mt = title && *title ? 46 : 22, mb = 18;
    double lo = 0, hi = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            lo = fmin(lo, v[i]);
            hi = fmax(hi, v[i]);
        }
    if (hi - lo < 1e-12)
        hi = lo + 1;
    double pw = width - ml - mr, ph = height - mt - mb, slot = n > 0 ? pw / n : pw;
#define BY(val) (mt + (hi - (val)) / (hi - lo) * ph)
    svg_open(t, width, height, title, ml);
    for (int i = 0; i < n; i++) {
        double x = ml + i * slot, val = isfinite(v[i]) ? v[i] : lo;
        double ya = BY(val > 0 ? val : 0), yb = BY(val > 0 ? 0 : val);
        const char *fill = i == mark ? "#E8772E" : "#4C72B0";
        dn_text_printf(t,
                       "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                       "fill=\"%s\"/>\n",
                       x + slot * 0.15, ya, slot * 0.7, yb - ya < 1 ? 1 : yb - ya, fill);
        /* The class along the top, the value at the bar's end. */
        dn_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\"%s>",
                       x + slot / 2, mt - 8, i == mark ? " font-weight=\"bold\"" : "");
        if (labels && labels[i])
            dn_text_html(t, labels[i]);
        else
            dn_text_printf(t, "%d", i);
        double vy = val > 0 ? ya - 4 : yb + 13;
        dn_text_printf(t,
                       "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                       "font-size=\"10\"%s>%.2f</text>\n",
                       x + slot / 2, vy > height - 2 ? height - 2 : vy,
                       i == mark ? " font-weight=\"bold\"" : "",
                       isfinite(v[i]) && fabs(v[i]) >= 0.005 ? v[i] : 0.0);
    }
    dn_text_printf(t,
                   "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                   ml, ml + pw, BY(0), BY(0));
#undef BY
    dn_text_printf(t, "</svg>\n");
}
