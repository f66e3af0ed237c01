/*
 * kern_c.c - the fast kernels for the compiler's baseline target (SSE2 on
 * x86-64, NEON on arm64 ...): the portable fallback. See kern.h.
 */
#include "fast/fast_impl.h"

#if defined(DN_FAST_KERNELS)
#define DN_KERN_ISA 0
#define DN_KERN_NAME(x) x##_c
#include "fast/kern.h"
#else
/* ISO C wants something in every translation unit. */
typedef int dn_kern_c_unused;
#endif
