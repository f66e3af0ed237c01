/*
 * html.c - the text of the HTML pages: a growing buffer with HTML
 * escaping, and inline SVG line and bar charts.
 *
 * Everything here is deterministic (fixed number formats), so the same
 * figures give the same bytes.
 */
#include "digitnet_picture.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A line chart's plot area and the data range it shows. */
typedef struct plot {
    double ml, mt, pw, ph;  /* left and top margins, plot width and height */
    double x0, x1, y0, y1;  /* data range */
    double xs, ys;          /* tick steps */
} plot;

static double plot_x(const plot *p, double v)
{
    return p->ml + (v - p->x0) / (p->x1 - p->x0) * p->pw;
}

static double plot_y(const plot *p, double v)
{
    return p->mt + (p->y1 - v) / (p->y1 - p->y0) * p->ph;
}

/* The data range of the series (error bars included), widened where it is
 * empty or flat, with the y axis ending on whole ticks so that the grid
 * frames the data. */
static void plot_range(plot *p, const dn_series *s, int ns)
{
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
    p->xs = nice_step(x1 - x0, 8);
    p->ys = nice_step(y1 - y0, 5);
    p->y0 = floor(y0 / p->ys) * p->ys;
    p->y1 = ceil(y1 / p->ys) * p->ys;
    p->x0 = x0;
    p->x1 = x1;
    if (p->xs < 1 && x1 - x0 >= 2)
        p->xs = 1;
}

/* The white plot area, the grid lines with their tick labels, and the
 * axis labels. */
static void plot_axes(dn_text *t, const plot *p, const char *xlabel, const char *ylabel,
                      int height)
{
    double ml = p->ml, mt = p->mt, pw = p->pw, ph = p->ph;
    dn_text_printf(t,
                   "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" "
                   "stroke=\"#888\"/>\n",
                   ml, mt, pw, ph);
    int yd = step_decimals(p->ys), xd = step_decimals(p->xs);
    for (int i = 0; i <= 1000; i++) {
        double v = p->y0 + i * p->ys;
        if (v > p->y1 + p->ys * 1e-6)
            break;
        dn_text_printf(t,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
                       ml, ml + pw, plot_y(p, v), plot_y(p, v), ml - 4, plot_y(p, v) + 4, yd, v);
    }
    for (int i = 0; i <= 1000; i++) {
        double v = ceil(p->x0 / p->xs - 1e-9) * p->xs + i * p->xs;
        if (v > p->x1 + p->xs * 1e-6)
            break;
        dn_text_printf(t,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n",
                       plot_x(p, v), plot_x(p, v), mt, mt + ph, plot_x(p, v), mt + ph + 15, xd,
                       v);
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
}

/* Series k: its line, its points with their error bars, and its line of
 * the legend (top right inside the plot, as wide as the longest name at
 * about 7 px a character). */
static void plot_series(dn_text *t, const plot *p, const dn_series *s, int ns, int k)
{
    const dn_series *sk = &s[k];
    char col[8];
    rgb_hex(col, sk->rgb);
    dn_text_printf(t, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
    for (int i = 0; i < sk->n; i++)
        if (isfinite(sk->x[i]) && isfinite(sk->y[i]))
            dn_text_printf(t, "%.1f,%.1f ", plot_x(p, sk->x[i]), plot_y(p, sk->y[i]));
    dn_text_printf(t, "\"/>\n");
    for (int i = 0; i < sk->n; i++) {
        double x = sk->x[i], y = sk->y[i];
        if (!isfinite(x) || !isfinite(y))
            continue;
        if (sk->err && isfinite(sk->err[i]) && sk->err[i] != 0) {
            double e = fabs(sk->err[i]);
            dn_text_printf(t,
                           "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                           "stroke=\"%s\"/>\n",
                           plot_x(p, x), plot_x(p, x), plot_y(p, y - e), plot_y(p, y + e), col);
        }
        dn_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                       plot_x(p, x), plot_y(p, y), col);
    }
    size_t longest = 0;
    for (int j = 0; j < ns; j++) {
        size_t len = s[j].name ? strlen(s[j].name) : 0;
        longest = len > longest ? len : longest;
    }
    double lx = p->ml + p->pw - 32 - 7.0 * (double)longest, ly = p->mt + 16 + 16 * k;
    lx = lx < p->ml + 4 ? p->ml + 4 : lx;
    dn_text_printf(t,
                   "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">",
                   lx, lx + 18, ly - 4, ly - 4, col, lx + 24, ly);
    dn_text_html(t, sk->name ? sk->name : "");
    dn_text_printf(t, "</text>\n");
}

void dn_svg_line_chart(dn_text *t, const dn_series *s, int ns, const char *title,
                       const char *xlabel, const char *ylabel, int width, int height)
{
    plot p;
    memset(&p, 0, sizeof p);
    p.ml = 64;
    p.mt = title && *title ? 30 : 12;
    const double mr = 16, mb = 44;
    plot_range(&p, s, ns);
    p.pw = width - p.ml - mr;
    p.ph = height - p.mt - mb;
    svg_open(t, width, height, title, p.ml);
    plot_axes(t, &p, xlabel, ylabel, height);
    for (int k = 0; k < ns; k++)
        plot_series(t, &p, s, ns, k);
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
