/*
 * vec.h - the 16-float vector the fast kernels are written in (kern.h),
 * for each instruction set. With AVX-512 it is one GNU C vector (one zmm
 * register); otherwise it is a struct of 16/VN native vectors (two ymm
 * with AVX2, four xmm with the baseline), because compilers keep a 64-byte
 * GNU vector in memory when the target has no 64-byte registers. Included
 * by kern.h only, after DN_KERN_ISA is set.
 */
#ifndef DN_FAST_VEC_H
#define DN_FAST_VEC_H

#include <stdint.h>
#include <string.h>

#define KI static inline __attribute__((always_inline))

#if DN_KERN_ISA == 2

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef float v8_ __attribute__((vector_size(32)));
typedef float v4_ __attribute__((vector_size(16)));
typedef int32_t vi8_ __attribute__((vector_size(32)));
typedef uint8_t vb16_ __attribute__((vector_size(16)));
typedef uint8_t vb8_ __attribute__((vector_size(8)));

KI v16 ld(const float *p)
{
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

KI void st(float *p, v16 v)
{
    memcpy(p, &v, sizeof v);
}

KI vi16 ldi(const int32_t *p)
{
    vi16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

KI v16 splat(float x)
{
    return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

KI vi16 splati(int32_t x)
{
    return (vi16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

KI v16 vadd(v16 a, v16 b)
{
    return a + b;
}

KI v16 vscale(v16 a, float s)
{
    return a * s;
}

KI v16 fma16(v16 a, v16 b, v16 c)
{
    return (v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}

KI vi16 vgt(v16 a, v16 b)
{
    return a > b;
}

KI vi16 veqi(vi16 a, vi16 b)
{
    return a == b;
}

KI vi16 vandi(vi16 a, vi16 b)
{
    return a & b;
}

KI vi16 vaddi(vi16 a, vi16 b)
{
    return a + b;
}

/* m ? a : b lane by lane (m all ones or all zeros); bitwise, so a NaN in
 * a lane not chosen cannot leak. */
KI v16 sel(vi16 m, v16 a, v16 b)
{
    return (v16)(((vi16)a & m) | ((vi16)b & ~m));
}

KI vi16 seli(vi16 m, vi16 a, vi16 b)
{
    return (a & m) | (b & ~m);
}

/* Sum of the 16 lanes, always in the same tree order. */
KI float hsum(v16 a)
{
    v8_ s8 = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) +
             __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
    v4_ s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) +
             __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/* The lane sums of 16 vectors v[0..16) into out[0..16): a transposing
 * tree, four shuffle-and-add levels for all 16 instead of four each. */
KI void hsum16(const v16 *v, float *out)
{
    v16 t[8], u[4], w[2];
    for (int k = 0; k < 8; k++) {
        v16 a = v[2 * k], b = v[2 * k + 1];
        t[k] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22,
                                       23) +
               __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                       30, 31);
    }
    /* t[k]: lanes 0..7 partial sums of v[2k], 8..15 of v[2k+1]. */
    for (int k = 0; k < 4; k++)
        u[k] = __builtin_shufflevector(t[2 * k], t[2 * k + 1], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9,
                                       10, 11, 24, 25, 26, 27) +
               __builtin_shufflevector(t[2 * k], t[2 * k + 1], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13,
                                       14, 15, 28, 29, 30, 31);
    /* u[k]: four lanes each of v[4k], v[4k+2], v[4k+1], v[4k+3]. */
    for (int k = 0; k < 2; k++)
        w[k] = __builtin_shufflevector(u[2 * k], u[2 * k + 1], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9,
                                       24, 25, 12, 13, 28, 29) +
               __builtin_shufflevector(u[2 * k], u[2 * k + 1], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11,
                                       26, 27, 14, 15, 30, 31);
    /* w[k]: two lanes each of v[8k + 0, 4, 2, 6, 1, 5, 3, 7]. */
    v16 z = __builtin_shufflevector(w[0], w[1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28,
                                    14, 30) +
            __builtin_shufflevector(w[0], w[1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29,
                                    15, 31);
    /* z lane 2m: v[bitrev3(m)], lane 2m+1: v[8 + bitrev3(m)]. */
    st(out, __builtin_shufflevector(z, z, 0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15));
}

/* The first 7 lanes of v into dst[0..6]. */
KI void st7(float *dst, v16 v)
{
    _mm512_mask_storeu_ps(dst, (__mmask16)0x7f, (__m512)v);
}

/* Lanes 0..n-1 from p (0 <= n <= 16), the rest 0; nothing past p + n is
 * read. */
KI v16 ldn(const float *p, int n)
{
    return (v16)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}

/* Lanes 0..n-1 of v to p (0 <= n <= 16). */
KI void stn(float *p, v16 v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}

/* Lanes 0..7 from p, the rest 0. */
KI v16 ld8(const float *p)
{
    v8_ g;
    memcpy(&g, p, sizeof g);
    return __builtin_shufflevector(g, (v8_){0}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                   15);
}

/* Even and odd lanes of the 32 lanes (a, b). */
KI v16 evens(v16 a, v16 b)
{
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
                                   30);
}

KI v16 odds(v16 a, v16 b)
{
    return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29,
                                   31);
}

/* Lanes 0..7 of v, each twice; lanes 8..15 of v, each twice. */
#define TWICE_LO_(v) __builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
#define TWICE_HI_(v) \
    __builtin_shufflevector(v, v, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)
#define SWAP_(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)

KI v16 twice_lo(v16 v)
{
    return TWICE_LO_(v);
}

KI v16 twice_hi(v16 v)
{
    return TWICE_HI_(v);
}

KI vi16 twice_lo_i(vi16 v)
{
    return TWICE_LO_(v);
}

KI vi16 twice_hi_i(vi16 v)
{
    return TWICE_HI_(v);
}

/* Lanes 8..15 then 0..7. */
KI v16 swap_halves(v16 v)
{
    return SWAP_(v);
}

KI vi16 swap_halves_i(vi16 v)
{
    return SWAP_(v);
}

/* The first n (8 or 16) lanes of c, each 0..255, as bytes. */
KI void codes_st(uint8_t *dst, vi16 c, const int n)
{
    vb16_ b = __builtin_convertvector(c, vb16_);
    memcpy(dst, &b, (size_t)n);
}

/* n (8 or 16) bytes as the first n lanes; the rest 0. */
KI vi16 codes_ld(const uint8_t *src, const int n)
{
    if (n == 16) {
        vb16_ b;
        memcpy(&b, src, 16);
        return __builtin_convertvector(b, vi16);
    }
    vb8_ b;
    memcpy(&b, src, 8);
    vi8_ c = __builtin_convertvector(b, vi8_);
    return __builtin_shufflevector(c, (vi8_){0}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                   15);
}

/* The first n <= 16 lanes of c, each 0..255, as bytes to dst. */
KI void codes_stn(uint8_t *dst, vi16 c, int n)
{
    vb16_ b = __builtin_convertvector(c, vb16_);
    _mm_mask_storeu_epi8(dst, (__mmask16)((1u << n) - 1), (__m128i)b);
}

/* n <= 16 bytes as the first n lanes; the rest 0. */
KI vi16 codes_ldn(const uint8_t *src, int n)
{
    __m128i b = _mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), src);
    return __builtin_convertvector((vb16_)b, vi16);
}

/* n <= 8 bytes, each twice, as the first 2n lanes; the rest 0. */
KI vi16 codes_ldn_twice(const uint8_t *src, int n)
{
    __m128i b = _mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), src);
    return (vi16)_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));
}

#else /* a struct of native vectors */

#if DN_KERN_ISA == 1
#define VN 8
#define EV_ 0, 2, 4, 6, 8, 10, 12, 14
#define OD_ 1, 3, 5, 7, 9, 11, 13, 15
#define TWL_ 0, 0, 1, 1, 2, 2, 3, 3
#define TWH_ 4, 4, 5, 5, 6, 6, 7, 7
#else
#define VN 4
#define EV_ 0, 2, 4, 6
#define OD_ 1, 3, 5, 7
#define TWL_ 0, 0, 1, 1
#define TWH_ 2, 2, 3, 3
#endif
#define NP (16 / VN)

typedef float vnf __attribute__((vector_size(VN * 4)));
typedef int32_t vni __attribute__((vector_size(VN * 4)));
typedef uint8_t vnb __attribute__((vector_size(VN)));
typedef float v4_n __attribute__((vector_size(16)));
typedef struct v16 {
    vnf p[NP];
} v16;
typedef struct vi16 {
    vni p[NP];
} vi16;

/* One native vector: a load and a broadcast. */
KI vnf ldvn(const float *p)
{
    vnf v;
    memcpy(&v, p, sizeof v);
    return v;
}

KI vnf bcvn(float x)
{
#if VN == 8
    return (vnf){x, x, x, x, x, x, x, x};
#else
    return (vnf){x, x, x, x};
#endif
}

KI v16 ld(const float *p)
{
    v16 v;
    for (int k = 0; k < NP; k++)
        memcpy(&v.p[k], p + k * VN, sizeof v.p[k]);
    return v;
}

KI void st(float *p, v16 v)
{
    for (int k = 0; k < NP; k++)
        memcpy(p + k * VN, &v.p[k], sizeof v.p[k]);
}

KI vi16 ldi(const int32_t *p)
{
    vi16 v;
    for (int k = 0; k < NP; k++)
        memcpy(&v.p[k], p + k * VN, sizeof v.p[k]);
    return v;
}

/* A broadcast, lane by lane: `(vnf){0} + x` would be an addition (x +
 * 0.0f cannot fold, as -0.0f + 0.0f is +0.0f) before the broadcast, one
 * more instruction and its latency on every weight a convolution loads. */
KI v16 splat(float x)
{
    v16 v;
#if VN == 8
    vnf b = {x, x, x, x, x, x, x, x};
#else
    vnf b = {x, x, x, x};
#endif
    for (int k = 0; k < NP; k++)
        v.p[k] = b;
    return v;
}

KI vi16 splati(int32_t x)
{
    vi16 v;
#if VN == 8
    vni b = {x, x, x, x, x, x, x, x};
#else
    vni b = {x, x, x, x};
#endif
    for (int k = 0; k < NP; k++)
        v.p[k] = b;
    return v;
}

#define MAP2_(T, a, b, expr)                                                 \
    T r_;                                                                    \
    for (int k = 0; k < NP; k++)                                             \
        r_.p[k] = (expr);                                                    \
    return r_;

KI v16 vadd(v16 a, v16 b)
{
    MAP2_(v16, a, b, a.p[k] + b.p[k])
}

KI v16 vscale(v16 a, float s)
{
    MAP2_(v16, a, a, a.p[k] * s)
}

/* kern_avx2.c turns on contraction for its file, so this is one vfmadd
 * per ymm half there; plain multiply and add on the baseline. */
KI v16 fma16(v16 a, v16 b, v16 c)
{
    MAP2_(v16, a, b, a.p[k] * b.p[k] + c.p[k])
}

KI vi16 vgt(v16 a, v16 b)
{
    MAP2_(vi16, a, b, a.p[k] > b.p[k])
}

KI vi16 veqi(vi16 a, vi16 b)
{
    MAP2_(vi16, a, b, a.p[k] == b.p[k])
}

KI vi16 vandi(vi16 a, vi16 b)
{
    MAP2_(vi16, a, b, a.p[k] & b.p[k])
}

KI vi16 vaddi(vi16 a, vi16 b)
{
    MAP2_(vi16, a, b, a.p[k] + b.p[k])
}

KI v16 sel(vi16 m, v16 a, v16 b)
{
    MAP2_(v16, a, b, (vnf)(((vni)a.p[k] & m.p[k]) | ((vni)b.p[k] & ~m.p[k])))
}

KI vi16 seli(vi16 m, vi16 a, vi16 b)
{
    MAP2_(vi16, a, b, (a.p[k] & m.p[k]) | (b.p[k] & ~m.p[k]))
}

KI float hsum(v16 a)
{
    vnf s = a.p[0];
    for (int k = 1; k < NP; k++)
        s += a.p[k];
    float t = 0.0f;
    for (int i = 0; i < VN; i++)
        t += s[i];
    return t;
}

KI void hsum16(const v16 *v, float *out)
{
    for (int i = 0; i < 16; i++)
        out[i] = hsum(v[i]);
}

KI void st7(float *dst, v16 v)
{
    float t[16];
    st(t, v);
    memcpy(dst, t, 7 * sizeof *t);
}

#if DN_KERN_ISA == 1
/* The first n lanes (0 <= n <= 16), with AVX2's masked moves: lanes past
 * n are neither read (so no fault past the end) nor written. */
KI vni lanes_below(int m)
{
    return (vni){0, 1, 2, 3, 4, 5, 6, 7} < m;
}

KI v16 ldn(const float *p, int n)
{
    v16 v;
    for (int k = 0; k < NP; k++) {
        int m = n - VN * k;
        v.p[k] = m >= VN  ? ldvn(p + VN * k)
                 : m <= 0 ? (vnf){0}
                          : (vnf)_mm256_maskload_ps(p + VN * k, (__m256i)lanes_below(m));
    }
    return v;
}

KI void stn(float *p, v16 v, int n)
{
    for (int k = 0; k < NP; k++) {
        int m = n - VN * k;
        if (m >= VN)
            memcpy(p + VN * k, &v.p[k], sizeof v.p[k]);
        else if (m > 0)
            _mm256_maskstore_ps(p + VN * k, (__m256i)lanes_below(m), (__m256)v.p[k]);
    }
}
#else
KI v16 ldn(const float *p, int n)
{
    float t[16] = {0};
    memcpy(t, p, (size_t)n * sizeof *t);
    return ld(t);
}

KI void stn(float *p, v16 v, int n)
{
    float t[16];
    st(t, v);
    memcpy(p, t, (size_t)n * sizeof *t);
}
#endif

KI v16 ld8(const float *p)
{
    v16 v;
    for (int k = 0; k < NP; k++) {
        if (k * VN < 8)
            memcpy(&v.p[k], p + k * VN, sizeof v.p[k]);
        else
            v.p[k] = (vnf){0};
    }
    return v;
}

/* Part k of the result takes parts 2k and 2k+1 of the 32 lanes (a, b). */
KI v16 evens(v16 a, v16 b)
{
    v16 r;
    for (int k = 0; k < NP; k++) {
        vnf x = 2 * k < NP ? a.p[2 * k] : b.p[2 * k - NP];
        vnf y = 2 * k + 1 < NP ? a.p[2 * k + 1] : b.p[2 * k + 1 - NP];
        r.p[k] = __builtin_shufflevector(x, y, EV_);
    }
    return r;
}

KI v16 odds(v16 a, v16 b)
{
    v16 r;
    for (int k = 0; k < NP; k++) {
        vnf x = 2 * k < NP ? a.p[2 * k] : b.p[2 * k - NP];
        vnf y = 2 * k + 1 < NP ? a.p[2 * k + 1] : b.p[2 * k + 1 - NP];
        r.p[k] = __builtin_shufflevector(x, y, OD_);
    }
    return r;
}

/* Part k of twice_lo holds lanes k*VN/2 .. of v, each twice. */
#define TWICE_(T, v, base)                                                   \
    T r_;                                                                    \
    for (int k = 0; k < NP; k++)                                             \
        r_.p[k] = k % 2 ? __builtin_shufflevector(v.p[base + k / 2], v.p[base + k / 2], TWH_) \
                        : __builtin_shufflevector(v.p[base + k / 2], v.p[base + k / 2], TWL_); \
    return r_;

KI v16 twice_lo(v16 v)
{
    TWICE_(v16, v, 0)
}

KI v16 twice_hi(v16 v)
{
    TWICE_(v16, v, NP / 2)
}

KI vi16 twice_lo_i(vi16 v)
{
    TWICE_(vi16, v, 0)
}

KI vi16 twice_hi_i(vi16 v)
{
    TWICE_(vi16, v, NP / 2)
}

KI v16 swap_halves(v16 v)
{
    v16 r;
    for (int k = 0; k < NP; k++)
        r.p[k] = v.p[(k + NP / 2) % NP];
    return r;
}

KI vi16 swap_halves_i(vi16 v)
{
    vi16 r;
    for (int k = 0; k < NP; k++)
        r.p[k] = v.p[(k + NP / 2) % NP];
    return r;
}

KI void codes_st(uint8_t *dst, vi16 c, const int n)
{
    for (int k = 0; k < NP; k++)
        if (k * VN < n) {
            vnb b = __builtin_convertvector(c.p[k], vnb);
            memcpy(dst + k * VN, &b, VN);
        }
}

KI vi16 codes_ld(const uint8_t *src, const int n)
{
    vi16 c;
    for (int k = 0; k < NP; k++) {
        if (k * VN < n) {
            vnb b;
            memcpy(&b, src + k * VN, VN);
            c.p[k] = __builtin_convertvector(b, vni);
        } else {
            c.p[k] = (vni){0};
        }
    }
    return c;
}

KI void codes_stn(uint8_t *dst, vi16 c, int n)
{
    uint8_t t[16];
    codes_st(t, c, 16);
    memcpy(dst, t, (size_t)n);
}

KI vi16 codes_ldn(const uint8_t *src, int n)
{
    uint8_t t[16] = {0};
    memcpy(t, src, (size_t)n);
    return codes_ld(t, 16);
}

KI vi16 codes_ldn_twice(const uint8_t *src, int n)
{
    uint8_t t[16] = {0};
    for (int i = 0; i < n; i++)
        t[2 * i] = t[2 * i + 1] = src[i];
    return codes_ld(t, 16);
}

#endif

/* v, kept in a register: the compiler may otherwise fold one load into
 * every FMA that uses it, and the loads, not the FMAs, set the pace. */
KI v16 pin(v16 v)
{
#if DN_KERN_ISA == 2
    __asm__("" : "+v"(v));
#endif
    return v;
}

/* The weight gradient's working vector "vw": WV floats, a v16 except
 * with AVX2, where it is one ymm so that the accumulators and operands
 * fit the 16 registers. (On the baseline, without FMA, the narrower
 * blocks measured slower.) */
#if DN_KERN_ISA != 1
#define WV 16
typedef v16 vw;

KI vw ldw(const float *p)
{
    return pin(ld(p));
}

KI vw fmaw(vw a, vw b, vw c)
{
    return fma16(a, b, c);
}

KI float hsumw(vw a)
{
    return hsum(a);
}
#else
#define WV VN
typedef vnf vw;

KI vw ldw(const float *p)
{
    return ldvn(p);
}

KI vw fmaw(vw a, vw b, vw c)
{
    return a * b + c;
}

/* Lanes summed in one fixed tree order. */
KI float hsumw(vw a)
{
    v4_n s = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (s[0] + s[2]) + (s[1] + s[3]);
}
#endif

/* a > b ? a : b lane by lane, the general kernels' comparison (a NaN in
 * either gives b): vmaxps is exactly that. */
KI v16 vmax(v16 a, v16 b)
{
#if DN_KERN_ISA == 2
    return (v16)_mm512_max_ps((__m512)a, (__m512)b);
#else
    return sel(vgt(a, b), a, b);
#endif
}

/* ReLU as the general kernel: x > 0 ? x : 0 (NaN and -0 give 0). */
KI v16 relu(v16 x)
{
    return vmax(x, splat(0.0f));
}

#endif
