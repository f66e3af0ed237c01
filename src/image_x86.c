/*
 * image_x86.c - the image path's byte loops, 32 pixels at a time, for
 * processors with AVX2 (checked with __builtin_cpu_supports). Each does
 * exactly the integer or single-precision arithmetic of the SSE2 and scalar
 * loops it stands in for, so results do not depend on the processor. Each
 * returns how far it got; the caller finishes the tail. (AVX-512 was tried
 * for the RGBA conversion: 13 % faster, as it is bound by memory traffic,
 * not worth a third code path.)
 */
#include "image.h"

#include <stdatomic.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif

/* Luma of 8 RGBA pixels in 32-bit lanes (see luma4 in grey.c). */
static inline __m256i luma8(__m256i v)
{
    const __m256i rb_w = _mm256_set1_epi32(7471 << 16 | 19595), g_w = _mm256_set1_epi32(5702);
    const __m256i low8 = _mm256_set1_epi32(0x00ff00ff), low16 = _mm256_set1_epi32(0xffff);
    __m256i rb = _mm256_and_si256(v, low8), ga = _mm256_srli_epi16(v, 8);
    __m256i y = _mm256_add_epi32(_mm256_madd_epi16(rb, rb_w), _mm256_madd_epi16(ga, g_w));
    y = _mm256_add_epi32(y, _mm256_slli_epi32(_mm256_and_si256(ga, low16), 15));
    return _mm256_srli_epi32(_mm256_add_epi32(y, _mm256_set1_epi32(32768)), 16);
}

size_t dn_avx2_rgba(const uint8_t *src, size_t count, uint8_t *g, uint8_t *a,
                    dn_alpha_sum *sum)
{
    /* packs work within 128-bit lanes; this puts the pixels back in order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i seen = _mm256_setzero_si256(), weight = _mm256_setzero_si256();
    __m256i low = _mm256_set1_epi8(-1);
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m256i y[4], o[4];
        for (int k = 0; k < 4; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(src + 4 * i + 32 * k));
            y[k] = luma8(v);
            o[k] = _mm256_srli_epi32(v, 24);
        }
        __m256i y01 = _mm256_packs_epi32(y[0], y[1]), y23 = _mm256_packs_epi32(y[2], y[3]);
        __m256i o01 = _mm256_packs_epi32(o[0], o[1]), o23 = _mm256_packs_epi32(o[2], o[3]);
        __m256i a8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(o01, o23), order);
        __m256i g8 = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(y01, y23), order);
        _mm256_storeu_si256((__m256i *)(g + i), g8);
        _mm256_storeu_si256((__m256i *)(a + i), a8);
        seen = _mm256_add_epi32(seen, _mm256_add_epi32(_mm256_madd_epi16(y01, o01),
                                                       _mm256_madd_epi16(y23, o23)));
        weight = _mm256_add_epi64(weight, _mm256_sad_epu8(a8, _mm256_setzero_si256()));
        low = _mm256_min_epu8(low, a8);
    }
    uint32_t s8[8];
    uint64_t w4[4];
    _mm256_storeu_si256((__m256i *)s8, seen);
    _mm256_storeu_si256((__m256i *)w4, weight);
    for (int k = 0; k < 8; k++)
        sum->seen += s8[k];
    sum->weight += w4[0] + w4[1] + w4[2] + w4[3];
    sum->translucent |=
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(low, _mm256_set1_epi8(-1))) != -1;
    return i;
}

size_t dn_avx2_fill(uint8_t *g, const uint8_t *a, size_t count, uint32_t fill)
{
    const __m256i z = _mm256_setzero_si256(), full = _mm256_set1_epi16(255);
    const __m256i f = _mm256_set1_epi16((short)fill), half = _mm256_set1_epi16(127);
    const __m256i one = _mm256_set1_epi16(1);
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m256i gv = _mm256_loadu_si256((const __m256i *)(g + i));
        __m256i av = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            __m256i g16 = k ? _mm256_unpackhi_epi8(gv, z) : _mm256_unpacklo_epi8(gv, z);
            __m256i a16 = k ? _mm256_unpackhi_epi8(av, z) : _mm256_unpacklo_epi8(av, z);
            __m256i x = _mm256_add_epi16(_mm256_mullo_epi16(g16, a16),
                                         _mm256_mullo_epi16(f, _mm256_sub_epi16(full, a16)));
            x = _mm256_add_epi16(x, half); /* then / 255 as in grey.c */
            r[k] = _mm256_srli_epi16(
                _mm256_add_epi16(_mm256_add_epi16(x, one), _mm256_srli_epi16(x, 8)), 8);
        }
        _mm256_storeu_si256((__m256i *)(g + i), _mm256_packus_epi16(r[0], r[1]));
    }
    return i;
}

size_t dn_avx2_ink(const uint8_t *g, size_t n, uint8_t bg, int inverted, uint8_t *ink,
                   uint8_t *peak)
{
    __m256i vb = _mm256_set1_epi8((char)bg), top = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(g + i));
        __m256i d = inverted ? _mm256_subs_epu8(vb, v) : _mm256_subs_epu8(v, vb);
        _mm256_storeu_si256((__m256i *)(ink + i), d);
        top = _mm256_max_epu8(top, d);
    }
    uint8_t lanes[32];
    _mm256_storeu_si256((__m256i *)lanes, top);
    for (int k = 0; k < 32; k++)
        *peak = lanes[k] > *peak ? lanes[k] : *peak;
    return i;
}

size_t dn_avx2_zero_spans(const uint8_t *s, size_t n, size_t span, uint8_t *zero)
{
    size_t k = 0;
    for (; (k + 1) * span <= n; k++) {
        const uint8_t *p = s + k * span;
        __m256i acc = _mm256_setzero_si256();
        for (size_t i = 0; i < span; i += 32)
            acc = _mm256_or_si256(acc, _mm256_loadu_si256((const __m256i *)(p + i)));
        zero[k] = (uint8_t)_mm256_testz_si256(acc, acc);
    }
    return k;
}

int dn_avx2_band(float *band, const uint8_t *row, int c0, int c1, uint8_t floor, float wt)
{
    const __m128i vf = _mm_set1_epi8((char)floor);
    const __m256 vw = _mm256_set1_ps(wt);
    int x = c0;
    for (; x + 16 <= c1 + 1; x += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(row + x));
        v = _mm_and_si128(v, _mm_cmpeq_epi8(_mm_max_epu8(v, vf), v));
        if (_mm_testz_si128(v, v))
            continue; /* all below floor: the band would gain +0 */
        float *b = band + (x - c0);
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
        _mm256_storeu_ps(b, _mm256_add_ps(_mm256_loadu_ps(b), _mm256_mul_ps(vw, lo)));
        _mm256_storeu_ps(b + 8, _mm256_add_ps(_mm256_loadu_ps(b + 8), _mm256_mul_ps(vw, hi)));
    }
    return x;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* What the processor has, asked once (the image loops ask for every row or
 * span): bit 0 known, bit 1 AVX2, bit 2 POPCNT. */
static int features(void)
{
    static _Atomic int known;
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (!k) {
        __builtin_cpu_init();
        k = 1 | (__builtin_cpu_supports("avx2") ? 2 : 0) | (__builtin_cpu_supports("popcnt") ? 4 : 0);
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k;
}

int dn_image_avx2(void)
{
    return (features() & 2) != 0;
}

int dn_image_popcnt(void)
{
    return (features() & 4) != 0;
}

#else

/* Off x86 (arm64, WebAssembly) there is no AVX2: dn_image_avx2 says so,
 * the callers never call the others, and the portable loops do every
 * pixel. The others exist so that the callers link everywhere. */
int dn_image_avx2(void)
{
    return 0;
}

int dn_image_popcnt(void)
{
    return 0;
}

size_t dn_avx2_rgba(const uint8_t *src, size_t count, uint8_t *g, uint8_t *a,
                    dn_alpha_sum *sum)
{
    (void)src, (void)count, (void)g, (void)a, (void)sum;
    return 0;
}

size_t dn_avx2_fill(uint8_t *g, const uint8_t *a, size_t count, uint32_t fill)
{
    (void)g, (void)a, (void)count, (void)fill;
    return 0;
}

size_t dn_avx2_ink(const uint8_t *g, size_t n, uint8_t bg, int inverted, uint8_t *ink,
                   uint8_t *peak)
{
    (void)g, (void)n, (void)bg, (void)inverted, (void)ink, (void)peak;
    return 0;
}

size_t dn_avx2_zero_spans(const uint8_t *s, size_t n, size_t span, uint8_t *zero)
{
    (void)s, (void)n, (void)span, (void)zero;
    return 0;
}

int dn_avx2_band(float *band, const uint8_t *row, int c0, int c1, uint8_t floor, float wt)
{
    (void)band, (void)row, (void)c1, (void)floor, (void)wt;
    return c0;
}

#endif
