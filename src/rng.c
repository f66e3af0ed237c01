/*
 * rng.c - xoshiro256** generator and splitmix64-keyed streams.
 *
 * Every random draw in digitnet comes from a stream keyed by what it is for
 * (initialisation, shuffling, dropout, augmentation) and where (epoch,
 * sample index), so the numbers a sample sees never depend on batch size
 * or on how work is split between threads.
 */
#include "digitnet.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dn_key(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ purpose;
    h = splitmix64(&x);
    x = h ^ a;
    h = splitmix64(&x);
    x = h ^ b;
    return splitmix64(&x);
}

void dn_rng_seed(dn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t dn_rng_next(dn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dn_rng_uniform(dn_rng *r)
{
    return (float)(dn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

uint32_t dn_rng_below(dn_rng *r, uint32_t n)
{
    /* Lemire's multiply-and-reject: unbiased for every n. */
    uint64_t m = (uint64_t)(uint32_t)(dn_rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(dn_rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
