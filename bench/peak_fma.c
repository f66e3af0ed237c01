/*
 * peak_fma.c - measures this machine's fp32 fused-multiply-add peak.
 *
 * Runs chains of independent FMAs (enough accumulators to cover the FMA
 * latency on every pipe) with 512-bit, 256-bit and scalar-free vectors, on
 * one thread and then on every core at once, and prints GFLOP/s (one FMA =
 * 2 flops). scripts/bench divides the network's flop rate by the best of
 * these numbers to say how close the kernels come to the machine.
 *
 *   build/bench/peak_fma [seconds-per-probe]      (default 0.3)
 *
 * Output: one "key value" line per probe, e.g.
 *   avx512_1t 81.3
 *   avx512_2t 160.2
 * with a comment line (starting with #) saying how many cores were used.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each kernel runs `iters` rounds of 16 independent FMAs and returns a value
 * that depends on all of them, so the compiler cannot drop any. */
typedef float (*peak_kernel)(long iters);

#ifdef PEAK_X86
#define FMA16(op, acc, a, b)                                                \
    acc##0 = op(acc##0, a, b); acc##1 = op(acc##1, a, b);                   \
    acc##2 = op(acc##2, a, b); acc##3 = op(acc##3, a, b);                   \
    acc##4 = op(acc##4, a, b); acc##5 = op(acc##5, a, b);                   \
    acc##6 = op(acc##6, a, b); acc##7 = op(acc##7, a, b);                   \
    acc##8 = op(acc##8, a, b); acc##9 = op(acc##9, a, b);                   \
    acc##a = op(acc##a, a, b); acc##b = op(acc##b, a, b);                   \
    acc##c = op(acc##c, a, b); acc##d = op(acc##d, a, b);                   \
    acc##e = op(acc##e, a, b); acc##f = op(acc##f, a, b);

/* Distinct starting values, so that no two chains can be merged. */
#define DECL16(T, acc, set)                                                 \
    T acc##0 = set(1.0f), acc##1 = set(1.1f), acc##2 = set(1.2f);           \
    T acc##3 = set(1.3f), acc##4 = set(1.4f), acc##5 = set(1.5f);           \
    T acc##6 = set(1.6f), acc##7 = set(1.7f), acc##8 = set(1.8f);           \
    T acc##9 = set(1.9f), acc##a = set(2.0f), acc##b = set(2.1f);           \
    T acc##c = set(2.2f), acc##d = set(2.3f), acc##e = set(2.4f);           \
    T acc##f = set(2.5f);

/* An empty asm that claims to change every chain: each FMA must run. */
#define OPAQUE16(k, v)                                                      \
    __asm__ volatile("" : "+" k(v##0), "+" k(v##1), "+" k(v##2), "+" k(v##3), \
                     "+" k(v##4), "+" k(v##5), "+" k(v##6), "+" k(v##7));   \
    __asm__ volatile("" : "+" k(v##8), "+" k(v##9), "+" k(v##a), "+" k(v##b), \
                     "+" k(v##c), "+" k(v##d), "+" k(v##e), "+" k(v##f));

static inline __attribute__((target("avx512f"), always_inline)) __m512
fma512(__m512 c, __m512 a, __m512 b)
{
    return _mm512_fmadd_ps(a, b, c);
}

__attribute__((target("avx512f"), noinline)) static float k_avx512(long iters)
{
    /* a * c + b with a slightly below 1 keeps the values bounded. */
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    DECL16(__m512, v, _mm512_set1_ps)
    for (long i = 0; i < iters; i++) {
        FMA16(fma512, v, a, b)
        OPAQUE16("v", v)
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v0, v1), _mm512_add_ps(v2, v3)),
                             _mm512_add_ps(_mm512_add_ps(v4, v5), _mm512_add_ps(v6, v7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v8, v9), _mm512_add_ps(va, vb)),
                                       _mm512_add_ps(_mm512_add_ps(vc, vd), _mm512_add_ps(ve, vf))));
    return _mm512_reduce_add_ps(s);
}

static inline __attribute__((target("avx2,fma"), always_inline)) __m256
fma256(__m256 c, __m256 a, __m256 b)
{
    return _mm256_fmadd_ps(a, b, c);
}

/* Only 16 ymm registers without AVX-512: 12 chains plus the two operands
 * (12 chains still cover 2 pipes x 4 cycles of FMA latency). */
__attribute__((target("avx2,fma"), noinline)) static float k_avx2(long iters)
{
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    DECL16(__m256, v, _mm256_set1_ps)
    for (long i = 0; i < iters; i++) {
        v0 = fma256(v0, a, b); v1 = fma256(v1, a, b); v2 = fma256(v2, a, b);
        v3 = fma256(v3, a, b); v4 = fma256(v4, a, b); v5 = fma256(v5, a, b);
        v6 = fma256(v6, a, b); v7 = fma256(v7, a, b); v8 = fma256(v8, a, b);
        v9 = fma256(v9, a, b); va = fma256(va, a, b); vb = fma256(vb, a, b);
        __asm__ volatile("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3),
                         "+x"(v4), "+x"(v5), "+x"(v6), "+x"(v7));
        __asm__ volatile("" : "+x"(v8), "+x"(v9), "+x"(va), "+x"(vb));
    }
    (void)vc, (void)vd, (void)ve, (void)vf;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)),
                             _mm256_add_ps(_mm256_add_ps(v4, v5), _mm256_add_ps(v6, v7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(v8, v9), _mm256_add_ps(va, vb)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
#endif

#ifdef PEAK_X86
/* The core clock while busy: a chain of dependent integer additions runs at
 * one per cycle on every x86 core of the last decade. */
static double clock_ghz(double secs)
{
    long iters = 1 << 20;
    double best = 0;
    for (int t = 0; t < 8; t++) {
        unsigned long x = 0;
        double t0 = now_s();
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double dt = now_s() - t0;
        double g = 8.0 * (double)iters / dt * 1e-9;
        if (g > best)
            best = g;
        if (dt < secs / 8)
            iters *= 2;
    }
    return best;
}
#endif

typedef struct probe {
    const char *name;
    peak_kernel kernel;
    int lanes;          /* fp32 lanes per vector */
    int chains;         /* FMAs per iteration */
} probe;

typedef struct job {
    peak_kernel kernel;
    long iters;
    double seconds;
    float sink;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    double t0 = now_s();
    j->sink = j->kernel(j->iters);
    j->seconds = now_s() - t0;
    return NULL;
}

/* GFLOP/s of `threads` threads each running the kernel for about `secs`;
 * the best of three tries, since the machine is shared. Returns -1 if a
 * thread cannot be started. */
static double measure(const probe *p, int threads, double secs, float *sink)
{
    /* Calibrate on one thread: iterations for about secs. */
    long iters = 1 << 16;
    job cal = {p->kernel, iters, 0, 0};
    for (;;) {
        run_job(&cal);
        if (cal.seconds > 0.02)
            break;
        cal.iters *= 2;
    }
    iters = (long)((double)cal.iters * secs / cal.seconds) + 1;
    double best = 0;
    for (int t = 0; t < 3; t++) {
        job jobs[64];
        pthread_t tid[64];
        for (int i = 0; i < threads; i++)
            jobs[i] = (job){p->kernel, iters, 0, 0};
        double t0 = now_s();
        for (int i = 1; i < threads; i++)
            if (pthread_create(&tid[i], NULL, run_job, &jobs[i]) != 0)
                return -1;
        run_job(&jobs[0]);
        for (int i = 1; i < threads; i++)
            pthread_join(tid[i], NULL);
        double wall = now_s() - t0;
        double flops = 2.0 * p->chains * p->lanes * (double)iters * threads;
        double g = flops / wall * 1e-9;
        if (g > best)
            best = g;
        for (int i = 0; i < threads; i++)
            *sink += jobs[i].sink;
    }
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    if (!(secs > 0 && secs < 60)) {
        fprintf(stderr, "usage: peak_fma [seconds-per-probe (0..60)]\n");
        return 2;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    if (cores > 64)
        cores = 64;
    probe probes[2];
    int n = 0;
#ifdef PEAK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        probes[n++] = (probe){"avx512", k_avx512, 16, 16};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        probes[n++] = (probe){"avx2", k_avx2, 8, 12};
#endif
    if (n == 0) {
        printf("# no FMA vector unit probed on this machine\n");
        return 0;
    }
    float sink = 0;
    printf("# fp32 FMA peak, GFLOP/s (1 FMA = 2 flops), %ld cores online\n", cores);
#ifdef PEAK_X86
    printf("clock_ghz %.2f\n", clock_ghz(secs));
#endif
    for (int i = 0; i < n; i++) {
        printf("%s_1t %.1f\n", probes[i].name, measure(&probes[i], 1, secs, &sink));
        if (cores > 1)
            printf("%s_%ldt %.1f\n", probes[i].name, cores,
                   measure(&probes[i], (int)cores, secs, &sink));
        fflush(stdout);
    }
    /* Keeps the results alive without printing noise. */
    if (sink == 12345.0f)
        printf("#\n");
    return 0;
}
