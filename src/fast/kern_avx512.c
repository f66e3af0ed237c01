/*
 * kern_avx512.c - the fast kernels compiled for AVX-512 (F, BW, VL, DQ)
 * with FMA, run only where the processor has them (fast.c checks
 * __builtin_cpu_supports). See kern.h.
 */
#include "fast/fast_impl.h"

#if defined(DN_FAST_KERNELS_X86)
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#endif
#define DN_KERN_ISA 2
#define DN_KERN_NAME(x) x##_avx512
#include "fast/kern.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int dn_kern_avx512_unused;
#endif
