/*
 * grey.c - decoded pixels to the one grey byte plane everything after
 * decoding works on.
 *
 * Luma is ITU-R 601 in 16-bit fixed point, rounded, so a grey pixel
 * (r = g = b) keeps its value exactly. A drawing on a transparent canvas
 * is blended over whichever of white or black contrasts with what is drawn,
 * decided once the whole image is seen: black strokes become black on
 * white, white strokes white on black.
 */
#include "image.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Pixels per call of the inner loops, so that their sums fit 32 bits
 * (255 * 255 * 65536 < 2^32). */
#define CHUNK 65536

/* Pixels i..count-1 of n = 2 (grey, alpha) or 4 (RGBA) channels, one at a
 * time: the whole of grey+alpha, and what the vector loops leave of RGBA. */
static void alpha_pixels(const uint8_t *src, int n, size_t i, size_t count, uint8_t *g,
                         uint8_t *a, dn_alpha_sum *sum)
{
    uint32_t seen = 0, weight = 0;
    uint8_t low = 255;
    for (; i < count; i++) {
        const uint8_t *q = src + (size_t)n * i;
        uint8_t l = n == 4 ? dn_luma(q[0], q[1], q[2]) : q[0], o = q[n - 1];
        g[i] = l;
        a[i] = o;
        seen += (uint32_t)l * o;
        weight += o;
        low = o < low ? o : low;
    }
    sum->seen += seen;
    sum->weight += weight;
    sum->translucent |= low != 255;
}

#if defined(__SSE2__)
/* Luma of 4 RGBA pixels in 32-bit lanes, as dn_luma: 38470 does not fit a
 * signed 16-bit factor, so g is weighed as 32768 g (a shift) + 5702 g. */
static inline __m128i luma4(__m128i v)
{
    const __m128i rb_w = _mm_set1_epi32(7471 << 16 | 19595), g_w = _mm_set1_epi32(5702);
    const __m128i low8 = _mm_set1_epi32(0x00ff00ff), low16 = _mm_set1_epi32(0xffff);
    __m128i rb = _mm_and_si128(v, low8), ga = _mm_srli_epi16(v, 8);
    __m128i y = _mm_add_epi32(_mm_madd_epi16(rb, rb_w), _mm_madd_epi16(ga, g_w));
    y = _mm_add_epi32(y, _mm_slli_epi32(_mm_and_si128(ga, low16), 15));
    return _mm_srli_epi32(_mm_add_epi32(y, _mm_set1_epi32(32768)), 16);
}

/* 16 RGBA pixels to 16 grey and 16 alpha bytes; adds alpha * grey to the
 * 32-bit lanes of *seen and alpha to the 64-bit lanes of *weight. */
static inline void rgba16(const uint8_t *src, uint8_t *g, uint8_t *a, __m128i *seen,
                          __m128i *weight, __m128i *low)
{
    __m128i v[4], y[4], o[4];
    for (int k = 0; k < 4; k++) {
        v[k] = _mm_loadu_si128((const __m128i *)(src + 16 * k));
        y[k] = luma4(v[k]);
        o[k] = _mm_srli_epi32(v[k], 24);
    }
    __m128i y01 = _mm_packs_epi32(y[0], y[1]), y23 = _mm_packs_epi32(y[2], y[3]);
    __m128i o01 = _mm_packs_epi32(o[0], o[1]), o23 = _mm_packs_epi32(o[2], o[3]);
    __m128i a8 = _mm_packus_epi16(o01, o23);
    _mm_storeu_si128((__m128i *)g, _mm_packus_epi16(y01, y23));
    _mm_storeu_si128((__m128i *)a, a8);
    *seen = _mm_add_epi32(*seen, _mm_add_epi32(_mm_madd_epi16(y01, o01), _mm_madd_epi16(y23, o23)));
    *weight = _mm_add_epi64(*weight, _mm_sad_epu8(a8, _mm_setzero_si128()));
    *low = _mm_min_epu8(*low, a8);
}
#endif

static void rgba_chunk(const uint8_t *src, size_t count, uint8_t *g, uint8_t *a,
                       dn_alpha_sum *sum)
{
    size_t i = dn_image_avx2() ? dn_avx2_rgba(src, count, g, a, sum) : 0;
#if defined(__SSE2__)
    __m128i vs = _mm_setzero_si128(), vw = _mm_setzero_si128(), vl = _mm_set1_epi8(-1);
    for (; i + 16 <= count; i += 16)
        rgba16(src + 4 * i, g + i, a + i, &vs, &vw, &vl);
    uint32_t s4[4];
    uint64_t w2[2];
    _mm_storeu_si128((__m128i *)s4, vs);
    _mm_storeu_si128((__m128i *)w2, vw);
    sum->seen += (uint64_t)s4[0] + s4[1] + s4[2] + s4[3];
    sum->weight += w2[0] + w2[1];
    sum->translucent |= _mm_movemask_epi8(_mm_cmpeq_epi8(vl, _mm_set1_epi8(-1))) != 0xffff;
#endif
    alpha_pixels(src, 4, i, count, g, a, sum);
}

void dn_grey_from_channels(const uint8_t *src, int n, size_t count, uint8_t *g, uint8_t *a,
                           dn_alpha_sum *sum)
{
    if (n == 1) {
        memcpy(g, src, count);
        return;
    }
    if (n == 3) {
        for (size_t i = 0; i < count; i++)
            g[i] = dn_luma(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
        return;
    }
    for (size_t done = 0; done < count; done += CHUNK) {
        size_t k = count - done < CHUNK ? count - done : CHUNK;
        if (n == 2)
            alpha_pixels(src + 2 * done, 2, 0, k, g + done, a + done, sum);
        else
            rgba_chunk(src + 4 * done, k, g + done, a + done, sum);
    }
}

void dn_alpha_stats(const uint8_t *g, const uint8_t *a, size_t count, dn_alpha_sum *sum)
{
    memset(sum, 0, sizeof *sum);
    /* An opaque picture (most canvases) needs only the minimum. */
    size_t i = 0;
    uint8_t low = 255;
#if defined(__SSE2__)
    __m128i vl = _mm_set1_epi8(-1);
    for (; i + 16 <= count; i += 16)
        vl = _mm_min_epu8(vl, _mm_loadu_si128((const __m128i *)(a + i)));
    low = _mm_movemask_epi8(_mm_cmpeq_epi8(vl, _mm_set1_epi8(-1))) == 0xffff ? 255 : 0;
#endif
    for (; i < count; i++)
        low = a[i] < low ? a[i] : low;
    if (low == 255)
        return;
    sum->translucent = 1;
    for (size_t done = 0; done < count; done += CHUNK) {
        size_t k = count - done < CHUNK ? count - done : CHUNK, j = 0;
        const uint8_t *gc = g + done, *ac = a + done;
        uint64_t seen = 0, weight = 0;
#if defined(__SSE2__)
        const __m128i z = _mm_setzero_si128();
        __m128i vs = z, vw = z;
        for (; j + 16 <= k; j += 16) {
            __m128i gv = _mm_loadu_si128((const __m128i *)(gc + j));
            __m128i av = _mm_loadu_si128((const __m128i *)(ac + j));
            vs = _mm_add_epi32(vs, _mm_madd_epi16(_mm_unpacklo_epi8(gv, z), _mm_unpacklo_epi8(av, z)));
            vs = _mm_add_epi32(vs, _mm_madd_epi16(_mm_unpackhi_epi8(gv, z), _mm_unpackhi_epi8(av, z)));
            vw = _mm_add_epi64(vw, _mm_sad_epu8(av, z));
        }
        uint32_t s4[4];
        uint64_t w2[2];
        _mm_storeu_si128((__m128i *)s4, vs);
        _mm_storeu_si128((__m128i *)w2, vw);
        seen = (uint64_t)s4[0] + s4[1] + s4[2] + s4[3];
        weight = w2[0] + w2[1];
#endif
        for (; j < k; j++) {
            seen += (uint64_t)gc[j] * ac[j];
            weight += ac[j];
        }
        sum->seen += seen;
        sum->weight += weight;
    }
}

void dn_grey_fill_transparent(uint8_t *g, const uint8_t *a, size_t count,
                              const dn_alpha_sum *sum)
{
    if (!sum->translucent)
        return;
    /* The mean grey of what is visible, weighted by opacity, below half:
     * dark strokes, so a white background (and a fully transparent image
     * stays black). */
    uint32_t fill = sum->weight > 0 && 2 * sum->seen < 255 * sum->weight ? 255 : 0;
    size_t i = dn_image_avx2() ? dn_avx2_fill(g, a, count, fill) : 0;
#if defined(__SSE2__)
    /* (x + 1 + (x >> 8)) >> 8 is x / 255 for every x below 65535 */
    const __m128i z = _mm_setzero_si128(), full = _mm_set1_epi16(255);
    const __m128i f = _mm_set1_epi16((short)fill), half = _mm_set1_epi16(127);
    for (; i + 16 <= count; i += 16) {
        __m128i gv = _mm_loadu_si128((const __m128i *)(g + i));
        __m128i av = _mm_loadu_si128((const __m128i *)(a + i));
        __m128i r[2];
        for (int k = 0; k < 2; k++) {
            __m128i g16 = k ? _mm_unpackhi_epi8(gv, z) : _mm_unpacklo_epi8(gv, z);
            __m128i a16 = k ? _mm_unpackhi_epi8(av, z) : _mm_unpacklo_epi8(av, z);
            __m128i x = _mm_add_epi16(_mm_mullo_epi16(g16, a16),
                                      _mm_mullo_epi16(f, _mm_sub_epi16(full, a16)));
            x = _mm_add_epi16(x, half);
            r[k] = _mm_srli_epi16(
                _mm_add_epi16(_mm_add_epi16(x, _mm_set1_epi16(1)), _mm_srli_epi16(x, 8)), 8);
        }
        _mm_storeu_si128((__m128i *)(g + i), _mm_packus_epi16(r[0], r[1]));
    }
#endif
    for (; i < count; i++)
        g[i] = (uint8_t)(((uint32_t)g[i] * a[i] + fill * (255u - a[i]) + 127u) / 255u);
}
