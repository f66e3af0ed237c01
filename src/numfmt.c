/*
 * numfmt.c - numbers written as printf's "%.*g" and "%.*f" would write
 * them, character for character, without printf.
 *
 * The server writes some thirty numbers into every answer (the page's
 * feature maps, thousands), and glibc's printf converts each through its
 * multi-precision code: a few hundred nanoseconds a number, a tenth of a
 * request's time. Here a double m 2^e (m below 2^53) is scaled to the
 * digits wanted in 128-bit integers, exactly, and rounded half to even
 * as glibc rounds; a number that does not fit that arithmetic (very large
 * or very small exponents, which an answer seldom has) is left to
 * snprintf, so every number comes out the same either way.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 u128; /* GCC and Clang on 64-bit targets */

static const uint64_t pow10_64[20] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
    1000000000u, 10000000000u, 100000000000u, 1000000000000u, 10000000000000u,
    100000000000000u, 1000000000000000u, 10000000000000000u, 100000000000000000u,
    1000000000000000000u, 10000000000000000000u};

/* Bits needed to hold x. */
static int bit_length(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
    return hi ? 128 - __builtin_clzll(hi) : lo ? 64 - __builtin_clzll(lo) : 0;
}

/* 5^k for k <= 54 (below 2^128). */
static u128 pow5(int k)
{
    static const uint64_t t[28] = {
        1u, 5u, 25u, 125u, 625u, 3125u, 15625u, 78125u, 390625u, 1953125u, 9765625u,
        48828125u, 244140625u, 1220703125u, 6103515625u, 30517578125u, 152587890625u,
        762939453125u, 3814697265625u, 19073486328125u, 95367431640625u,
        476837158203125u, 2384185791015625u, 11920928955078125u, 59604644775390625u,
        298023223876953125u, 1490116119384765625u, 7450580596923828125u};
    return k < 28 ? t[k] : (u128)t[27] * t[k - 27];
}

/* m 2^e 10^k (m below 2^53, not 0) rounded down into *q, and whether
 * the rest is below, at or above one half (-1, 0, 1) into *half; 0 when
 * the arithmetic would not fit 128 bits or *q would not fit 64. */
static int scaled(uint64_t m, int e, int k, uint64_t *q, int *half)
{
    if (k > 54 || k < -54)
        return 0;
    /* m 2^e 10^k = m 5^k 2^(e + k), or m 2^(e + K) / 5^K for k = -K. */
    int s = e + k;
    u128 num = m, den = 1;
    if (k >= 0) {
        u128 p = pow5(k);
        if (bit_length(p) + 53 > 127)
            return 0;
        num *= p;
    } else {
        den = pow5(-k);
    }
    if (s >= 0) {
        if (bit_length(num) + s > 127)
            return 0;
        num <<= s;
    } else if (k >= 0) {
        /* a power of two below: a shift */
        if (-s > 126) {
            *q = 0;
            *half = -1;
            return bit_length(num) <= 126;
        }
        u128 r = num & (((u128)1 << -s) - 1), h = (u128)1 << (-s - 1);
        num >>= -s;
        if (num >> 64)
            return 0;
        *q = (uint64_t)num;
        *half = r < h ? -1 : r > h;
        return 1;
    } else {
        if (bit_length(den) - s > 127)
            return 0;
        den <<= -s;
    }
    u128 qq = num / den, r = num - qq * den;
    if (qq >> 64)
        return 0;
    *q = (uint64_t)qq;
    *half = 2 * r < den ? -1 : 2 * r > den;
    return 1;
}

/* q rounded half to even by the rest's half. */
static uint64_t round_even(uint64_t q, int half)
{
    return q + (half > 0 || (half == 0 && (q & 1)));
}

/* The decimal digits of q into b; returns how many. */
static int digits_of(uint64_t q, char *b)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + (int)(q % 10));
        q /= 10;
    } while (q);
    for (int i = 0; i < n; i++)
        b[i] = t[n - 1 - i];
    return n;
}

/* |v| (finite, not 0) as m 2^e with m an integer below 2^53; returns
 * the binary exponent of its leading bit. */
static int split(double v, uint64_t *m, int *e)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    int be = (int)(u >> 52 & 0x7ff);
    *m = u & (((uint64_t)1 << 52) - 1);
    if (be) {
        *m |= (uint64_t)1 << 52;
        *e = be - 1075;
    } else {
        *e = -1074;
    }
    return *e + 63 - __builtin_clzll(*m);
}

/* "%.*g" of a finite non-zero v into b; returns the length or 0. */
static int fast_g(char *b, double v, int p)
{
    uint64_t m, q;
    int e, half;
    /* the decimal exponent from the binary one (log10(2) = 78913 / 2^18,
     * rounded down), perhaps one too low */
    int x = split(v, &m, &e) * 78913;
    x = x >= 0 ? x >> 18 : -((-x + (1 << 18) - 1) >> 18);
    uint64_t lo = pow10_64[p - 1], hi = pow10_64[p];
    for (int tries = 0;; tries++) {
        if (tries == 3 || !scaled(m, e, p - 1 - x, &q, &half))
            return 0;
        if (q < lo)
            x--;
        else if (q >= hi)
            x++;
        else
            break;
    }
    q = round_even(q, half);
    if (q == hi) {
        /* rounded up to the next power of ten */
        q = lo;
        x++;
    }
    char d[24];
    digits_of(q, d); /* exactly p digits */
    int nd = p;
    int n = 0;
    if (v < 0)
        b[n++] = '-';
    if (x < -4 || x >= p) {
        /* d.ddde+XX */
        while (nd > 1 && d[nd - 1] == '0')
            nd--;
        b[n++] = d[0];
        if (nd > 1) {
            b[n++] = '.';
            memcpy(b + n, d + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        int ax = x < 0 ? -x : x;
        b[n++] = 'e';
        b[n++] = x < 0 ? '-' : '+';
        if (ax >= 100)
            b[n++] = (char)('0' + ax / 100);
        b[n++] = (char)('0' + ax / 10 % 10);
        b[n++] = (char)('0' + ax % 10);
        return n;
    }
    /* fixed: x + 1 digits before the point when x >= 0 */
    int point = x + 1; /* digits of d before the point; <= 0: leading zeros */
    while (nd > point && nd > 0 && d[nd - 1] == '0')
        nd--;
    if (point <= 0) {
        b[n++] = '0';
        b[n++] = '.';
        for (int i = 0; i < -point; i++)
            b[n++] = '0';
        memcpy(b + n, d, (size_t)nd);
        return n + nd;
    }
    memcpy(b + n, d, (size_t)point);
    n += point;
    if (nd > point) {
        b[n++] = '.';
        memcpy(b + n, d + point, (size_t)(nd - point));
        n += nd - point;
    }
    return n;
}

/* "%.*f" of a finite v into b; returns the length or 0. */
static int fast_f(char *b, double v, int p)
{
    uint64_t q = 0;
    if (v != 0) {
        uint64_t m;
        int e, half;
        split(v, &m, &e);
        if (!scaled(m, e, p, &q, &half))
            return 0;
        q = round_even(q, half);
        if (q >= pow10_64[19])
            return 0;
    }
    char d[24];
    int nd = digits_of(q, d), n = 0;
    if (signbit(v))
        b[n++] = '-';
    if (nd <= p) {
        /* below 1: zeros in front */
        memmove(d + (p + 1 - nd), d, (size_t)nd);
        memset(d, '0', (size_t)(p + 1 - nd));
        nd = p + 1;
    }
    memcpy(b + n, d, (size_t)(nd - p));
    n += nd - p;
    if (p > 0) {
        b[n++] = '.';
        memcpy(b + n, d + nd - p, (size_t)p);
        n += p;
    }
    return n;
}
#endif

int dn_format_g(char *b, double v, int digits)
{
    int p = digits < 1 ? 1 : digits > 17 ? 17 : digits;
#if defined(__SIZEOF_INT128__)
    if (v == 0 && !signbit(v)) {
        b[0] = '0';
        b[1] = 0;
        return 1;
    }
    int n = isfinite(v) && v != 0 ? fast_g(b, v, p) : 0;
    if (n > 0) {
        b[n] = 0;
        return n;
    }
#endif
    return snprintf(b, DN_FORMAT_MAX, "%.*g", p, v);
}

int dn_format_f(char *b, double v, int decimals)
{
    int p = decimals < 0 ? 0 : decimals > 17 ? 17 : decimals;
    int n = 0;
#if defined(__SIZEOF_INT128__)
    n = isfinite(v) && fabs(v) < 1e15 ? fast_f(b, v, p) : 0;
    if (n > 0) {
        b[n] = 0;
        return n;
    }
#endif
    n = snprintf(b, DN_FORMAT_MAX, "%.*f", p, v);
    return n < DN_FORMAT_MAX ? n : DN_FORMAT_MAX - 1;
}
