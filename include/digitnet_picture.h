/*
 * digitnet_picture.h - pictures and pages of what the network sees: colour
 * maps, grids of feature maps drawn as PNG files, and the HTML text and
 * inline SVG charts of the pages that `digitnet show`, `digitnet report`
 * and `digitnet serve` write. Part of libdigitnet, apart from digitnet.h
 * because a program that only classifies digits does not need it.
 *
 * Everything here is deterministic (no time stamps, no randomness, fixed
 * number formats), so the same model and input give the same bytes.
 */
#ifndef DIGITNET_PICTURE_H
#define DIGITNET_PICTURE_H

#include "digitnet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Colour maps, canvases and grids of maps (src/picture.c)                  */
/* ------------------------------------------------------------------------ */

/* An RGB picture being drawn. */
typedef struct dn_canvas {
    int w, h;
    uint8_t *rgb;       /* (h, w, 3) */
} dn_canvas;

/* Colour maps: a value t in [0, 1] (clamped; NaN is drawn magenta) to
 * 0xRRGGBB. VIRIDIS is sequential and reads in grey, for values >= 0 such
 * as ReLU outputs; DIVERGING runs blue - white - red with white at 0.5, for
 * signed values such as weights on a range symmetric about 0. */
typedef enum dn_colormap {
    DN_CMAP_GREY,
    DN_CMAP_VIRIDIS,
    DN_CMAP_DIVERGING
} dn_colormap;

uint32_t dn_colormap_rgb(dn_colormap map, float t);

/* Frees the pixels and zeroes c; harmless on a zeroed canvas. */
void dn_canvas_free(dn_canvas *c);

/* Geometry of a grid of n maps of h x w values each drawn at `scale`,
 * `cols` to a row, with `gap` pixels between maps and around the grid. Map
 * k's top-left pixel is at (cell_x(k), cell_y(k)). */
typedef struct dn_grid {
    int n, cols, rows;
    int h, w, scale, gap;
    int width, height;  /* of the whole picture */
} dn_grid;

dn_grid dn_grid_layout(int n, int h, int w, int cols, int scale, int gap);
int dn_grid_cell_x(const dn_grid *g, int k);
int dn_grid_cell_y(const dn_grid *g, int k);
/* Draws maps (n, h, w) as laid out by g on a new canvas with a light grey
 * background, every map on the same lo..hi range so that they compare. */
dn_status dn_grid_draw(const dn_grid *g, const float *maps, float lo,
                       float hi, dn_colormap cmap, dn_canvas *out,
                       dn_error *err);

/* ------------------------------------------------------------------------ */
/* PNG files (src/picture.c)                                                */
/* ------------------------------------------------------------------------ */

/* Encodes pixels (h, w, channels) with channels 1 (grey), 3 (RGB) or 4
 * (RGBA) as PNG into a malloc'd buffer. Deterministic. */
dn_status dn_png_encode(const uint8_t *px, int w, int h, int channels,
                        uint8_t **png, size_t *size, dn_error *err);
/* Writes pixels as a PNG file atomically (see dn_file_write_atomic). */
dn_status dn_png_write(const char *path, const uint8_t *px, int w, int h,
                       int channels, dn_error *err);
/* Writes c as a PNG file atomically. */
dn_status dn_canvas_write_png(const dn_canvas *c, const char *path,
                              dn_error *err);

/* ------------------------------------------------------------------------ */
/* HTML text and SVG charts (src/html.c)                                    */
/* ------------------------------------------------------------------------ */

/* A growing text buffer for HTML and SVG. A failed allocation sets oom and
 * makes later appends no-ops, so callers check once at the end. */
typedef struct dn_text {
    char *s;            /* NUL-terminated; NULL until the first append */
    size_t len, cap;
    int oom;
} dn_text;

void dn_text_printf(dn_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s with &, <, >, " and ' escaped for HTML text and attributes. */
void dn_text_html(dn_text *t, const char *s);
void dn_text_free(dn_text *t);

/* One line of a line chart: n points (x[i], y[i]), with a vertical error
 * bar of +-err[i] when err is not NULL. */
typedef struct dn_series {
    const char *name;
    const double *x, *y, *err;
    int n;
    uint32_t rgb;
} dn_series;

/* Appends an inline <svg> line chart of ns series with axes, ticks, axis
 * labels and a legend, width x height pixels. Non-finite points are
 * skipped. */
void dn_svg_line_chart(dn_text *t, const dn_series *s, int ns,
                       const char *title, const char *xlabel,
                       const char *ylabel, int width, int height);
/* Appends an inline <svg> bar chart of n values (labels[i] under bar i,
 * value printed on it) with bar `mark` highlighted (-1 for none). Bars
 * start at 0, so negative values such as log-probabilities hang down. */
void dn_svg_bar_chart(dn_text *t, const float *v, int n,
                      const char *const *labels, int mark, const char *title,
                      int width, int height);

#ifdef __cplusplus
}
#endif

#endif /* DIGITNET_PICTURE_H */
