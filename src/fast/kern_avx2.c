/*
 * kern_avx2.c - the fast kernels compiled for AVX2 + FMA, run only where
 * the processor has them (fast.c checks __builtin_cpu_supports). See
 * kern.h.
 */
#include "fast/fast_impl.h"

#if defined(DN_FAST_KERNELS_X86)
#include <immintrin.h>
/* Contraction of a * b + c into one FMA, for this file only: nothing it
 * computes is compared bit for bit with a reference. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#pragma clang fp contract(fast)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=fast")
#endif
#define DN_KERN_ISA 1
#define DN_KERN_NAME(x) x##_avx2
#include "fast/kern.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int dn_kern_avx2_unused;
#endif
