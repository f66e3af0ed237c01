/*
 * png.c - the PNGs a drawing canvas exports, decoded fast.
 *
 * A browser's canvas comes as an 8-bit RGBA PNG; stb_image inflates it with
 * a simple bit-by-bit decoder and spends several times longer on that than
 * everything after it. Here the image data is inflated in one call of
 * libdeflate (Debian libdeflate-dev) into a buffer the dn_prep keeps, and
 * each row is unfiltered in a row buffer and turned grey while it is in
 * the first-level cache; where a row repeats the one above (the Up
 * filter's zeros, most of a drawing's background) its grey is copied
 * rather than computed again. Only
 * non-interlaced 8-bit PNGs take this path (grey, grey+alpha, RGB, RGBA,
 * palette); any other valid PNG is left to stb_image (DN_PNG_OTHER).
 *
 * Every chunk is checked against the end of the data and its CRC, the
 * image data must inflate to exactly the rows the header promises, and the
 * file must reach IEND: a truncated or damaged file is refused, never
 * completed with zeros.
 */
#include "image.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <libdeflate.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int dn_png_signature(const uint8_t *data, size_t size)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    return size >= 8 && memcmp(data, sig, 8) == 0;
}

/* What the chunks before the image data said. */
typedef struct png_head {
    uint32_t w, h;
    int channels;           /* interleaved bytes per pixel in the rows */
    int palette;            /* colour type 3 */
    int other;              /* valid, but for stb_image */
    uint8_t pal_grey[256], pal_alpha[256];
    int pal_n, has_alpha;
    const uint8_t *idat;    /* the image data, joined if it was split */
    size_t idat_len;
} png_head;

/* Reads IHDR's fields; fails on an impossible header, a size beyond the
 * limits, or a kind this file leaves to stb_image (hd->other). */
static dn_status read_ihdr(const uint8_t *c, uint32_t len, const char *name, png_head *hd,
                           dn_error *err)
{
    if (len != 13)
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (IHDR is %u bytes, not 13)", name,
                       len);
    hd->w = be32(c);
    hd->h = be32(c + 4);
    int depth = c[8], type = c[9];
    if (hd->w == 0 || hd->h == 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: image has zero size (%ux%u)", name, hd->w,
                       hd->h);
    dn_status st = dn_image_check_size(hd->w, hd->h, name, err);
    if (st != DN_OK)
        return st;
    static const int channels[7] = {1, 0, 3, 1, 2, 0, 4};
    if (type > 6 || channels[type] == 0 || c[10] != 0 || c[11] != 0 || c[12] > 1)
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (colour type %d, methods %d/%d/%d)",
                       name, type, c[10], c[11], c[12]);
    hd->channels = channels[type];
    hd->palette = type == 3;
    hd->has_alpha = type == 4 || type == 6;
    hd->other = depth != 8 || c[12] != 0;
    return DN_OK;
}

/* PLTE and tRNS of a palette image as grey and opacity per index. */
static void read_palette(const uint8_t *c, uint32_t len, png_head *hd)
{
    hd->pal_n = (int)(len / 3);
    for (int i = 0; i < hd->pal_n; i++)
        hd->pal_grey[i] = dn_luma(c[3 * i], c[3 * i + 1], c[3 * i + 2]);
    memset(hd->pal_alpha, 255, sizeof hd->pal_alpha);
}

/* Walks the chunks from IHDR to IEND, checking each against the end of
 * the data and its CRC, and finds the image data (joined into p->idat if
 * it is split over several IDAT chunks). */
static dn_status read_chunks(dn_prep *p, const uint8_t *data, size_t size, const char *name,
                             png_head *hd, dn_error *err)
{
    size_t pos = 8, n_idat = 0;
    const uint8_t *first_idat = NULL;
    for (int index = 0;; index++) {
        if (size - pos < 12)
            return dn_fail(err, DN_ERR_FORMAT, "%s: truncated PNG (ends at byte %zu, before IEND)",
                           name, size);
        uint32_t len = be32(data + pos);
        const uint8_t *type = data + pos + 4, *c = data + pos + 8;
        if (len > 0x7fffffffu || len > size - pos - 12)
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: truncated PNG (chunk %.4s at byte %zu needs %u bytes, the file "
                           "has %zu more)",
                           name, (const char *)type, pos, len, size - pos - 12);
        if (libdeflate_crc32(0, type, (size_t)len + 4) != be32(c + len))
            return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (chunk %.4s at byte %zu fails "
                           "its CRC)", name, (const char *)type, pos);
        int is_idat = !memcmp(type, "IDAT", 4);
        if (index == 0 && memcmp(type, "IHDR", 4))
            return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (no IHDR first)", name);
        if (index == 0) {
            dn_status st = read_ihdr(c, len, name, hd, err);
            if (st != DN_OK || hd->other)
                return st;
        } else if (!memcmp(type, "PLTE", 4) && hd->palette && len % 3 == 0 && len <= 768) {
            read_palette(c, len, hd);
        } else if (!memcmp(type, "tRNS", 4)) {
            if (!hd->palette || (int)len > hd->pal_n) {
                hd->other = 1; /* a colour key: stb_image applies it */
                return DN_OK;
            }
            memcpy(hd->pal_alpha, c, len);
            hd->has_alpha = 1;
        } else if (is_idat) {
            if (n_idat == 0)
                first_idat = c;
            hd->idat_len += len;
            n_idat++;
        } else if (!memcmp(type, "IEND", 4)) {
            break;
        } else if (!(type[0] & 0x20)) {
            hd->other = 1; /* an unknown critical chunk (Apple's CgBI, ...) */
            return DN_OK;
        }
        pos += 12 + (size_t)len;
    }
    if (n_idat == 0 || (hd->palette && hd->pal_n == 0))
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (no %s)", name,
                       n_idat ? "palette" : "image data");
    if (n_idat == 1) {
        hd->idat = first_idat;
        return DN_OK;
    }
    if (!dn_buf_reserve(&p->idat, hd->idat_len))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    uint8_t *joined = p->idat.p;
    size_t at = 0;
    for (pos = 8; at < hd->idat_len;) {
        uint32_t len = be32(data + pos);
        if (!memcmp(data + pos + 4, "IDAT", 4)) {
            memcpy(joined + at, data + pos + 8, len);
            at += len;
        }
        pos += 12 + (size_t)len;
    }
    hd->idat = joined;
    return DN_OK;
}

void dn_png_release(dn_prep *p)
{
    if (p->inflater)
        libdeflate_free_decompressor(p->inflater);
    p->inflater = NULL;
}

/* Paeth's predictor: whichever of left, up and upper-left is nearest to
 * left + up - upper-left. */
static inline uint8_t paeth(int a, int b, int c)
{
    int pa = b > c ? b - c : c - b, pb = a > c ? a - c : c - a;
    int pc = a + b - 2 * c;
    pc = pc < 0 ? -pc : pc;
    return (uint8_t)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* The filters are undone from the inflated rows (s, filter byte skipped)
 * into the contiguous pixels (d), the row above being d - len. */

/* Sub: each byte plus the one bpp before it. For RGBA the running sum is
 * taken four pixels at a time (a prefix sum of 32-bit lanes, bytes added
 * without carries as the scalar loop adds them). */
static void sub_row(uint8_t *restrict d, const uint8_t *restrict s, size_t len, size_t bpp)
{
    size_t i = 0;
    for (; i < bpp; i++)
        d[i] = s[i];
#if defined(__SSE2__)
    if (bpp == 4) {
        __m128i carry = _mm_setzero_si128();
        for (i = 0; i + 16 <= len; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            v = _mm_add_epi8(v, _mm_slli_si128(v, 4));
            v = _mm_add_epi8(v, _mm_slli_si128(v, 8));
            v = _mm_add_epi8(v, carry);
            _mm_storeu_si128((__m128i *)(d + i), v);
            carry = _mm_shuffle_epi32(v, 0xff);
        }
        i = i < bpp ? bpp : i;
    }
#endif
    for (; i < len; i++)
        d[i] = (uint8_t)(s[i] + d[i - bpp]);
}

static void avg_row(uint8_t *restrict d, const uint8_t *restrict s, const uint8_t *restrict b,
                    size_t len, size_t bpp)
{
    for (size_t i = 0; i < len; i++)
        d[i] = (uint8_t)(s[i] + (((i >= bpp ? d[i - bpp] : 0) + (b ? b[i] : 0)) >> 1));
}

/* Paeth. Where the row above repeats itself (up equals upper-left, as it
 * does across a plain background) the predictor is the left pixel, so four
 * RGBA pixels at a time are undone as Sub is. */
static void paeth_row(uint8_t *restrict d, const uint8_t *restrict s, const uint8_t *restrict b,
                      size_t len, size_t bpp)
{
    size_t i = 0;
    for (; i < bpp; i++)
        d[i] = (uint8_t)(s[i] + b[i]); /* nothing on the left: up */
#if defined(__SSE2__)
    while (bpp == 4 && i + 16 <= len) {
        __m128i up = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i upleft = _mm_loadu_si128((const __m128i *)(b + i - 4));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(up, upleft)) != 0xffff) {
            for (size_t end = i + 16; i < end; i++)
                d[i] = (uint8_t)(s[i] + paeth(d[i - 4], b[i], b[i - 4]));
            continue;
        }
        int32_t left;
        memcpy(&left, d + i - 4, 4);
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        v = _mm_add_epi8(v, _mm_slli_si128(v, 4));
        v = _mm_add_epi8(v, _mm_slli_si128(v, 8));
        _mm_storeu_si128((__m128i *)(d + i), _mm_add_epi8(v, _mm_set1_epi32(left)));
        i += 16;
    }
#endif
    for (; i < len; i++)
        d[i] = (uint8_t)(s[i] + paeth(d[i - bpp], b[i], b[i - bpp]));
}

/* Undoes filter f of one row (len bytes, bpp per pixel); b is the row above
 * (NULL for the first row, which has zeros above it). Up is undone here
 * only for the first row (up_spans does the others). Returns 0 for an
 * unknown filter. */
static int unfilter(uint8_t *restrict d, const uint8_t *restrict s, const uint8_t *restrict b,
                    size_t len, size_t bpp, int f)
{
    if (f == 0 || f == 2)
        memcpy(d, s, len); /* Up only for the first row: the others go to up_spans */
    else if (f == 1 || (f == 4 && !b))
        sub_row(d, s, len, bpp); /* Paeth of the first row predicts from the left */
    else if (f == 3)
        avg_row(d, s, b, len, bpp);
    else if (f == 4)
        paeth_row(d, s, b, len, bpp);
    else
        return 0;
    return 1;
}

/* count unfiltered palette indices to grey and opacity; 0 if an index is
 * beyond the palette. */
static int palette_span(const uint8_t *idx, uint32_t count, const png_head *hd, uint8_t *g,
                        uint8_t *a)
{
    uint8_t top = 0;
    for (uint32_t x = 0; x < count; x++) {
        top = idx[x] > top ? idx[x] : top;
        g[x] = hd->pal_grey[idx[x]];
        if (a)
            a[x] = hd->pal_alpha[idx[x]];
    }
    return top < hd->pal_n;
}

/* Pixels x0..x1-1 of the unfiltered row r to grey and opacity (g and a
 * are the row's own); 0 if a palette index is beyond the palette. */
static int convert_span(const png_head *hd, const uint8_t *r, uint32_t x0, uint32_t x1,
                        uint8_t *g, uint8_t *a)
{
    if (hd->palette)
        return palette_span(r + x0, x1 - x0, hd, g + x0, a ? a + x0 : NULL);
    /* the opacity statistics are taken once the whole image is in */
    dn_alpha_sum unused = {0, 0, 0};
    size_t c = (size_t)hd->channels;
    dn_grey_from_channels(r + x0 * c, hd->channels, x1 - x0, g + x0, a ? a + x0 : NULL, &unused);
    return 1;
}

/* Whether the n bytes at p are all zero. */
static int all_zero(const uint8_t *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    __m128i acc = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16)
        acc = _mm_or_si128(acc, _mm_loadu_si128((const __m128i *)(p + i)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(acc, _mm_setzero_si128())) != 0xffff)
        return 0;
#endif
    for (; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void add_bytes(uint8_t *restrict d, const uint8_t *restrict s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(d[i] + s[i]);
}

/* Pixels per span that the Up filter's zeros are looked for in: one turn
 * of the widest conversion loop. */
#define SPAN 32

/* Row y (y > 0) filtered with Up, s its filtered bytes, r the row above it
 * (unfiltered, updated in place to this row). A drawing is mostly
 * background, and where s is zero the row repeats the one above: those
 * spans are copied from the grey (and opacity) row above, and only the
 * spans that change are added up and converted. avx2: the processor has
 * AVX2. 0 if a palette index is beyond the palette. */
static int up_spans(const png_head *hd, uint8_t *r, const uint8_t *s, uint32_t w, size_t bpp,
                    int avx2, uint8_t *g, uint8_t *a)
{
    uint8_t zero[DN_IMAGE_MAX_SIDE / SPAN + 1];
    uint32_t spans = (w + SPAN - 1) / SPAN;
    size_t k = avx2 ? dn_avx2_zero_spans(s, (size_t)w * bpp, SPAN * bpp, zero) : 0;
    for (; k < spans; k++) {
        uint32_t x = (uint32_t)k * SPAN;
        zero[k] = (uint8_t)all_zero(s + x * bpp, (w - x < SPAN ? w - x : SPAN) * bpp);
    }
    for (uint32_t k0 = 0, k1; k0 < spans; k0 = k1) {
        for (k1 = k0 + 1; k1 < spans && zero[k1] == zero[k0]; k1++)
            ;
        uint32_t x = k0 * SPAN, end = k1 * SPAN < w ? k1 * SPAN : w;
        if (zero[k0]) {
            memcpy(g + x, g - w + x, end - x);
            if (a)
                memcpy(a + x, a - w + x, end - x);
        } else {
            add_bytes(r + x * bpp, s + x * bpp, (end - x) * bpp);
            if (!convert_span(hd, r, x, end, g, a))
                return 0;
        }
    }
    return 1;
}

/* Inflates the image data into p->rows, exactly h rows of 1 + w * channels
 * bytes. */
static int inflate_rows(dn_prep *p, const png_head *hd, const char *name, size_t stride,
                        dn_error *err)
{
    size_t want = (size_t)hd->h * stride, got = 0;
    if (!p->inflater && !(p->inflater = libdeflate_alloc_decompressor()))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    if (!dn_buf_reserve(&p->rows, want))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for a %ux%u image", name, hd->w,
                       hd->h);
    /* The zlib wrapper's Adler-32 is not recomputed (it would take a third
     * of the inflating): the CRC-32 of every IDAT chunk has been checked
     * over the same compressed bytes, and the rows must come out exact. The
     * header must be a plain zlib one and the trailer must be there. */
    const uint8_t *z = hd->idat;
    size_t used = 0;
    if (hd->idat_len < 6 || (z[0] & 0x0f) != 8 || (z[0] >> 4) > 7 || (z[1] & 0x20) ||
        ((unsigned)z[0] << 8 | z[1]) % 31 != 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (image data is not a zlib stream)",
                       name);
    enum libdeflate_result r = libdeflate_deflate_decompress_ex(
        p->inflater, z + 2, hd->idat_len - 2, p->rows.p, want, &used, &got);
    if (r == LIBDEFLATE_SUCCESS && hd->idat_len - 2 - used < 4)
        return dn_fail(err, DN_ERR_FORMAT, "%s: truncated PNG (image data ends early)", name);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return DN_PNG_OTHER; /* data after the last row, which stb_image ignores */
    if (r != LIBDEFLATE_SUCCESS)
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt or truncated PNG image data", name);
    if (got != want)
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: truncated PNG (image data ends in row %zu of %u)", name,
                       got / stride, hd->h);
    return DN_OK;
}

int dn_png_decode(dn_prep *p, const uint8_t *data, size_t size, const char *name, int *w,
                  int *h, dn_error *err)
{
    png_head hd;
    memset(&hd, 0, sizeof hd);
    int st = read_chunks(p, data, size, name, &hd, err);
    if (st != DN_OK || hd.other)
        return st != DN_OK ? st : DN_PNG_OTHER;
    size_t bpp = (size_t)hd.channels, len = (size_t)hd.w * bpp, stride = len + 1;
    size_t n = (size_t)hd.w * hd.h;
    if ((st = inflate_rows(p, &hd, name, stride, err)) != DN_OK)
        return st;
    if (!dn_buf_reserve(&p->grey, n) || (hd.has_alpha && !dn_buf_reserve(&p->alpha, n)))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for a %ux%u image", name, hd.w,
                       hd.h);
    if (!dn_buf_reserve(&p->pixels, 2 * len))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for a %ux%u image", name, hd.w,
                       hd.h);
    /* Row by row, in a row buffer r that stays in the first-level cache:
     * unfiltered in place (Avg and Paeth read the row above from a copy,
     * prev), then turned grey. */
    const uint8_t *rows = p->rows.p;
    uint8_t *r = p->pixels.p, *prev = r + len, *g = p->grey.p;
    uint8_t *a = hd.has_alpha ? p->alpha.p : NULL;
    int avx2 = dn_image_avx2();
    for (uint32_t y = 0; y < hd.h; y++) {
        const uint8_t *row = rows + y * stride;
        uint8_t *gy = g + (size_t)y * hd.w, *ay = a ? a + (size_t)y * hd.w : NULL;
        int f = row[0], ok;
        if (f == 2 && y > 0) {
            ok = up_spans(&hd, r, row + 1, hd.w, bpp, avx2, gy, ay);
        } else {
            if (y > 0 && (f == 3 || f == 4))
                memcpy(prev, r, len);
            if (!unfilter(r, row + 1, y ? prev : NULL, len, bpp, f))
                return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt PNG (row %u has filter %d)",
                               name, y, f);
            ok = convert_span(&hd, r, 0, hd.w, gy, ay);
        }
        if (!ok)
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: corrupt PNG (row %u uses a colour beyond the palette)", name, y);
    }
    if (a) {
        dn_alpha_sum sum;
        dn_alpha_stats(g, a, n, &sum);
        dn_grey_fill_transparent(g, a, n, &sum);
    }
    *w = (int)hd.w;
    *h = (int)hd.h;
    return DN_OK;
}
