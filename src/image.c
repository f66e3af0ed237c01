/*
 * image.c - the grey dn_image: allocation, resampling, and the plain
 * resize to 28 x 28 of dn_image_raw.
 */
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int dn_buf_reserve(dn_buf *b, size_t n)
{
    if (n <= b->cap)
        return 1;
    /* Not realloc: the old contents are not needed, so they are not copied. */
    void *p = malloc(n);
    if (!p)
        return 0;
    free(b->p);
    b->p = p;
    b->cap = n;
    return 1;
}

void dn_buf_release(dn_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

dn_status dn_image_alloc(dn_image *img, int w, int h, uint8_t value, dn_error *err)
{
    if (!img)
        return dn_fail(err, DN_ERR_ARG, "dn_image_alloc: NULL image");
    memset(img, 0, sizeof *img);
    if (w <= 0 || h <= 0 || w > DN_IMAGE_MAX_SIDE || h > DN_IMAGE_MAX_SIDE ||
        (long)w * h > DN_IMAGE_MAX_PIXELS)
        return dn_fail(err, DN_ERR_ARG, "image size %dx%d is out of range (1..%d per side)", w,
                       h, DN_IMAGE_MAX_SIDE);
    size_t n = (size_t)w * (size_t)h;
    img->grey = malloc(n);
    if (!img->grey)
        return dn_fail(err, DN_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    memset(img->grey, value, n);
    img->w = w;
    img->h = h;
    return DN_OK;
}

void dn_image_free(dn_image *img)
{
    if (!img)
        return;
    if (!img->borrowed)
        free(img->grey);
    memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------------------------ */
/* Resampling                                                               */
/* ------------------------------------------------------------------------ */

/* Weights that make n_out samples of an axis of n_in pixels at scale s
 * (output pixels per input pixel), output pixel o covering input
 * [origin + o / s, origin + (o + 1) / s). Shrinking averages the covered
 * area, so thin strokes turn grey instead of vanishing between samples;
 * growing interpolates bilinearly between pixel centres. Input outside
 * 0..n_in-1 is 0 if zero_outside (beyond a digit is background) and the
 * nearest edge pixel otherwise. Weights outside the input are 0. */
typedef struct axis_w {
    int taps;
    int *first; /* (n_out) input index of the first tap */
    float *w;   /* (n_out, taps) */
} axis_w;

static void axis_free(axis_w *a)
{
    free(a->first);
    free(a->w);
}

static int axis_make(axis_w *a, int n_in, int n_out, double s, double origin, int zero_outside)
{
    a->taps = s < 1.0 ? (int)ceil(1.0 / s) + 2 : 2;
    a->first = calloc((size_t)n_out, sizeof *a->first);
    a->w = calloc((size_t)n_out * (size_t)a->taps, sizeof *a->w);
    if (!a->first || !a->w)
        return 0;
    for (int o = 0; o < n_out; o++) {
        float *w = a->w + (size_t)o * (size_t)a->taps;
        if (s < 1.0) {
            double lo = origin + o / s, hi = origin + (o + 1) / s;
            int i0 = (int)floor(lo);
            a->first[o] = i0;
            for (int t = 0; t < a->taps; t++) {
                int i = i0 + t;
                /* fmin and fmax, inline (no NaN here) */
                double top = hi < i + 1.0 ? hi : i + 1.0, bottom = lo > i ? lo : (double)i;
                double ov = top - bottom;
                if (ov > 0 && i >= 0 && i < n_in)
                    w[t] = (float)(ov * s);
            }
            continue;
        }
        double u = origin + (o + 0.5) / s - 0.5;
        int i0 = (int)floor(u);
        double f = u - i0;
        if (!zero_outside) {
            /* Clamping folds a missing neighbour's weight onto the edge
             * pixel. */
            if (i0 < 0) {
                i0 = 0;
                f = 0;
            }
            if (i0 >= n_in - 1) {
                i0 = n_in - 1;
                f = 0;
            }
        }
        a->first[o] = i0;
        w[0] = i0 >= 0 && i0 < n_in ? (float)(1.0 - f) : 0.0f;
        w[1] = i0 + 1 >= 0 && i0 + 1 < n_in ? (float)f : 0.0f;
    }
    return 1;
}

/* The input columns [*c0, *c1] that some output column weighs. */
static void axis_span(const axis_w *a, int n_out, int *c0, int *c1)
{
    *c0 = INT32_MAX;
    *c1 = -1;
    for (int o = 0; o < n_out; o++)
        for (int t = 0; t < a->taps; t++)
            if (a->w[(size_t)o * (size_t)a->taps + (size_t)t] != 0.0f) {
                int i = a->first[o] + t;
                *c0 = i < *c0 ? i : *c0;
                *c1 = i > *c1 ? i : *c1;
            }
}

/* Floats the band has past its last column, so that a row's last few
 * columns are one more turn of the vector loop. */
#define BAND_PAD 16

/* band[x - c0] += wt * src[x] (0 below floor) over columns c0..c1: the one
 * pass over the input. Each lane does the scalar loop's multiply and add,
 * so the sums are the same bits either way; 16 columns below floor add
 * nothing and are skipped (their band values would only gain +0). The band
 * has BAND_PAD floats of room past column c1. */
static void band_add(float *restrict band, const uint8_t *restrict row, int c0, int c1,
                     uint8_t floor, float wt)
{
    int x = dn_image_avx2() ? dn_avx2_band(band, row, c0, c1, floor, wt) : c0;
#if defined(__SSE2__)
    const __m128i vf = _mm_set1_epi8((char)floor), z = _mm_setzero_si128();
    const __m128 vw = _mm_set1_ps(wt);
    uint8_t last[16];
    while (x <= c1) {
        __m128i v;
        if (x + 16 <= c1 + 1) {
            v = _mm_loadu_si128((const __m128i *)(row + x));
        } else {
            /* the last columns, from a copy padded with zeros */
            memset(last, 0, sizeof last);
            memcpy(last, row + x, (size_t)(c1 + 1 - x));
            v = _mm_loadu_si128((const __m128i *)last);
        }
        v = _mm_and_si128(v, _mm_cmpeq_epi8(_mm_max_epu8(v, vf), v));
        float *b = band + (x - c0);
        x += 16;
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(v, z)) == 0xffff)
            continue;
        __m128i lo = _mm_unpacklo_epi8(v, z), hi = _mm_unpackhi_epi8(v, z);
        __m128i q[4] = {_mm_unpacklo_epi16(lo, z), _mm_unpackhi_epi16(lo, z),
                        _mm_unpacklo_epi16(hi, z), _mm_unpackhi_epi16(hi, z)};
        for (int k = 0; k < 4; k++)
            _mm_storeu_ps(b + 4 * k, _mm_add_ps(_mm_loadu_ps(b + 4 * k),
                                                _mm_mul_ps(vw, _mm_cvtepi32_ps(q[k]))));
    }
#endif
    for (; x <= c1; x++) {
        uint8_t v = row[x] >= floor ? row[x] : 0;
        band[x - c0] += wt * (float)v;
    }
}

/* Output rows are made one at a time: the input rows an output row
 * covers are summed with their weights into a band (vertical first, so
 * the input is read once, row by row), and the band is then weighed along
 * x into the output pixels, all columns at once tap by tap, so that each
 * column's sum (taken in tap order, as ever) does not wait on the one
 * before. The band reaches every column a tap names, zero where no input
 * is weighed, so that no tap needs a test: a tap of weight 0 adds 0 * a
 * finite level, +0, which leaves a sum of non-negative terms as it was. */
int dn_resample_bytes(const uint8_t *src, int sw, int sh, double ox, double oy, double sx,
                      double sy, uint8_t floor, float unit, float *dst, int dw, int dh,
                      int zero_outside, dn_buf *band)
{
    axis_w ax = {0}, ay = {0};
    int ok = 0, c0, c1;
    if (!axis_make(&ax, sw, dw, sx, ox, zero_outside) ||
        !axis_make(&ay, sh, dh, sy, oy, zero_outside))
        goto done;
    axis_span(&ax, dw, &c0, &c1);
    memset(dst, 0, (size_t)dw * (size_t)dh * sizeof *dst);
    if (c1 < c0) {
        ok = 1;
        goto done;
    }
    /* the columns the taps name: b0 .. b1 */
    int b0 = c0, b1 = c1;
    for (int x = 0; x < dw; x++) {
        b0 = ax.first[x] < b0 ? ax.first[x] : b0;
        b1 = ax.first[x] + ax.taps - 1 > b1 ? ax.first[x] + ax.taps - 1 : b1;
    }
    size_t bw = (size_t)(b1 - b0 + 1) + BAND_PAD;
    if (!dn_buf_reserve(band, (size_t)dw * sizeof(double) + bw * sizeof(float)))
        goto done;
    double *acc = band->p;                  /* (dw) */
    float *b = (float *)(acc + dw);         /* (bw): column b0 + i at b[i] */
    for (int o = 0; o < dh; o++) {
        memset(b, 0, bw * sizeof *b);
        const float *wy = ay.w + (size_t)o * (size_t)ay.taps;
        for (int t = 0; t < ay.taps; t++)
            if (wy[t] != 0.0f)
                band_add(b + (c0 - b0), src + (size_t)(ay.first[o] + t) * (size_t)sw, c0, c1,
                         floor, wy[t]);
        for (int x = 0; x < dw; x++)
            acc[x] = 0;
        for (int t = 0; t < ax.taps; t++)
            for (int x = 0; x < dw; x++)
                acc[x] += (double)ax.w[(size_t)x * (size_t)ax.taps + (size_t)t] *
                          b[ax.first[x] + t - b0];
        for (int x = 0; x < dw; x++)
            dst[(size_t)o * (size_t)dw + (size_t)x] = (float)(acc[x] * unit);
    }
    ok = 1;
done:
    axis_free(&ax);
    axis_free(&ay);
    return ok;
}

dn_status dn_image_resize(const dn_image *src, int w, int h, dn_image *dst, dn_error *err)
{
    if (!src || !dst || !src->grey || src->w <= 0 || src->h <= 0)
        return dn_fail(err, DN_ERR_ARG, "dn_image_resize: no source image");
    dn_status st = dn_image_alloc(dst, w, h, 0, err);
    if (st != DN_OK)
        return st;
    snprintf(dst->name, sizeof dst->name, "%s", src->name);
    size_t n = (size_t)w * (size_t)h;
    float *tmp = malloc(n * sizeof *tmp);
    dn_buf band = {0};
    if (!tmp || !dn_resample_bytes(src->grey, src->w, src->h, 0, 0, (double)w / src->w,
                                   (double)h / src->h, 0, 1.0f, tmp, w, h, 0, &band)) {
        free(tmp);
        dn_buf_release(&band);
        dn_image_free(dst);
        return dn_fail(err, DN_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", src->w,
                       src->h, w, h);
    }
    for (size_t i = 0; i < n; i++)
        dst->grey[i] = (uint8_t)lrintf(tmp[i] < 0 ? 0 : tmp[i] > 255 ? 255 : tmp[i]);
    free(tmp);
    dn_buf_release(&band);
    return DN_OK;
}

dn_status dn_image_raw(const dn_image *img, float *out, dn_error *err)
{
    if (!img || !img->grey || img->w <= 0 || img->h <= 0 || !out)
        return dn_fail(err, DN_ERR_ARG, "dn_image_raw: no image");
    enum { N = DN_IMAGE_SIDE * DN_IMAGE_SIDE };
    if (img->w == DN_IMAGE_SIDE && img->h == DN_IMAGE_SIDE) {
        for (int i = 0; i < N; i++)
            out[i] = img->grey[i] / 255.0f;
        return DN_OK;
    }
    dn_buf band = {0};
    int ok = dn_resample_bytes(img->grey, img->w, img->h, 0, 0, (double)DN_IMAGE_SIDE / img->w,
                               (double)DN_IMAGE_SIDE / img->h, 0, 1.0f / 255, out,
                               DN_IMAGE_SIDE, DN_IMAGE_SIDE, 0, &band);
    dn_buf_release(&band);
    if (!ok)
        return dn_fail(err, DN_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", img->w,
                       img->h, DN_IMAGE_SIDE, DN_IMAGE_SIDE);
    for (int i = 0; i < N; i++)
        out[i] = out[i] < 0 ? 0 : out[i] > 1 ? 1 : out[i];
    return DN_OK;
}

void dn_image_normalize(float *x, size_t n, float mean, float std)
{
    float inv = std != 0.0f ? 1.0f / std : 1.0f;
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - mean) * inv;
}
