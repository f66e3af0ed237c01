/*
 * image.h - what the image files share inside the library: the reusable
 * scratch of a dn_prep, grey conversion, and resampling of byte planes.
 *
 *   decode.c   file and memory -> dn_image (format checks, stb_image)
 *   png.c      the fast PNG path (libdeflate), PNGs as canvases export them
 *   grey.c     decoded channels -> one grey byte plane (alpha filled)
 *   prep.c     MNIST-style preprocessing on the grey bytes
 *   image_x86.c  the byte loops again for AVX2
 *   image.c    dn_image itself, resizing, dn_image_raw
 */
#ifndef DN_IMAGE_H
#define DN_IMAGE_H

#include "internal.h"

#include <stdint.h>

/* A buffer that only grows, so that a dn_prep used for many images of
 * similar size stops allocating after the first. */
typedef struct dn_buf {
    void *p;
    size_t cap; /* bytes */
} dn_buf;

/* Makes b hold at least n bytes (contents not kept); 0 if out of memory. */
int dn_buf_reserve(dn_buf *b, size_t n);
void dn_buf_release(dn_buf *b);

/* A run of kept ink in one row, for the connected components. */
typedef struct dn_run {
    uint16_t x0, x1;    /* inclusive */
    int32_t parent;     /* union-find over runs */
} dn_run;

struct dn_prep {
    /* decoding */
    struct libdeflate_decompressor *inflater;
    dn_buf idat;        /* PNG image data of several IDAT chunks, joined */
    dn_buf rows;        /* inflated PNG rows (h, 1 + w * channels) */
    dn_buf pixels;      /* PNG: the row unfiltered, and a copy of the row
                         * above, (2, w * channels) */
    dn_buf grey;        /* the image dn_prep_load_memory lends, (h, w) */
    dn_buf alpha;       /* its opacity while it is decoded, (h, w) */
    /* preprocessing */
    dn_buf ink;         /* (h, w) difference from the background */
    dn_buf kept, solid; /* (h, words) bitmaps of kept and of solid ink */
    dn_buf runs;        /* dn_run per run of kept ink */
    dn_buf row_first;   /* (h + 1) index of each row's first run */
    dn_buf mass;        /* uint64 ink per run, then per component */
    dn_buf band;        /* resampling: an output row's sums, and the band of
                         * input rows it weighs */
};

/* Frees every buffer of p (p itself stays). */
void dn_prep_release(dn_prep *p);

/* ---- grey conversion (grey.c) ----------------------------------------- */

/* Opacity statistics gathered while converting, to choose the colour that
 * transparent pixels take once the whole image is seen. */
typedef struct dn_alpha_sum {
    uint64_t seen;      /* sum of alpha * grey */
    uint64_t weight;    /* sum of alpha */
    int translucent;    /* some alpha below 255 */
} dn_alpha_sum;

/* count pixels of n (1..4) interleaved 8-bit channels (grey, grey+alpha,
 * RGB, RGBA) to grey (ITU-R 601 luma, rounded) in g and, for n 2 and 4,
 * opacity in a, adding to *sum. */
void dn_grey_from_channels(const uint8_t *src, int n, size_t count, uint8_t *g,
                           uint8_t *a, dn_alpha_sum *sum);
/* Luma of one RGB pixel, as dn_grey_from_channels computes it. */
static inline uint8_t dn_luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}
/* The opacity statistics of count pixels of grey g and opacity a, as
 * dn_grey_from_channels adds them up, into *sum (overwritten); seen and
 * weight are counted only when some pixel is translucent, the only case
 * in which dn_grey_fill_transparent reads them. */
void dn_alpha_stats(const uint8_t *g, const uint8_t *a, size_t count, dn_alpha_sum *sum);
/* Blends the count pixels of g over the colour that contrasts with what is
 * drawn (white behind dark strokes, black behind light ones), if any pixel
 * was translucent. */
void dn_grey_fill_transparent(uint8_t *g, const uint8_t *a, size_t count,
                              const dn_alpha_sum *sum);

/* ---- AVX2 (image_x86.c) ----------------------------------------------- */

/* Whether the processor has AVX2 (the functions below may be called), and
 * whether it has POPCNT (for code built with target("popcnt")). */
int dn_image_avx2(void);
int dn_image_popcnt(void);
/* The loops of rgba_chunk, dn_grey_fill_transparent, ink_plane and
 * band_add, 32 (16 for band) pixels at a time, with the same results; each
 * returns how many pixels (band: the next column) it did. */
size_t dn_avx2_rgba(const uint8_t *src, size_t count, uint8_t *g, uint8_t *a,
                    dn_alpha_sum *sum);
size_t dn_avx2_fill(uint8_t *g, const uint8_t *a, size_t count, uint32_t fill);
size_t dn_avx2_ink(const uint8_t *g, size_t n, uint8_t bg, int inverted, uint8_t *ink,
                   uint8_t *peak);
int dn_avx2_band(float *band, const uint8_t *row, int c0, int c1, uint8_t floor, float wt);
/* For each whole span of `span` bytes (a multiple of 32) in s (n bytes),
 * whether it is all zero, into zero[k]; returns how many spans it did. */
size_t dn_avx2_zero_spans(const uint8_t *s, size_t n, size_t span, uint8_t *zero);

/* ---- PNG (png.c) ------------------------------------------------------- */

/* Returned by dn_png_decode for a valid-looking PNG it leaves to
 * stb_image (interlaced, 1/2/4/16-bit, or unusual streams). */
#define DN_PNG_OTHER 1

/* Decodes the PNG in data into p->grey (and p->alpha while blending) as
 * *w x *h grey bytes. Returns DN_OK, DN_PNG_OTHER, or an error status
 * with err filled naming name (truncated, corrupt, too large). */
int dn_png_decode(dn_prep *p, const uint8_t *data, size_t size, const char *name,
                  int *w, int *h, dn_error *err);
/* Frees p's inflater. */
void dn_png_release(dn_prep *p);
/* The PNG signature's 8 bytes. */
int dn_png_signature(const uint8_t *data, size_t size);

/* Fails with "too large" naming the size unless w x h is within the
 * DN_IMAGE_MAX_* bounds. */
dn_status dn_image_check_size(long w, long h, const char *name, dn_error *err);

/* ---- resampling (image.c) --------------------------------------------- */

/* Resamples the byte plane src (sh, sw) into dst (dh, dw) floats: output
 * pixel (0, 0) starts at input (ox, oy), sx and sy output pixels per input
 * pixel; area averaging along an axis that shrinks, bilinear along one that
 * grows. Input values below floor count as 0, the rest as value * unit.
 * Outside the input is 0 if zero_outside, else the nearest edge pixel.
 * band is scratch. Returns 0 if out of memory. */
int dn_resample_bytes(const uint8_t *src, int sw, int sh, double ox, double oy, double sx,
                      double sy, uint8_t floor, float unit, float *dst, int dw, int dh,
                      int zero_outside, dn_buf *band);

#endif /* DN_IMAGE_H */
