/*
 * fast.c - entry points of the fast kernels (see src/fast.h): choosing the
 * instruction set at run time and handing a pass to the kernels of that
 * set. The arithmetic is in src/fast/kern.h, compiled once per
 * instruction set; the plan in src/fast/plan.c.
 */
#include "fast/fast_impl.h"

#include <string.h>

static int isa_supported(int isa)
{
#if defined(DN_FAST_KERNELS_X86)
    __builtin_cpu_init();
    if (isa == DN_FAST_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == DN_FAST_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(DN_FAST_KERNELS)
    return isa == DN_FAST_ISA_C;
#else
    (void)isa;
    return 0;
#endif
}

int dn_fast_best_isa(void)
{
    for (int isa = DN_FAST_ISA_AVX512; isa >= DN_FAST_ISA_C; isa--)
        if (isa_supported(isa))
            return isa;
    return -1;
}

const char *dn_fast_isa_name(int isa)
{
    switch (isa) {
    case DN_FAST_ISA_C:
        return "c";
    case DN_FAST_ISA_AVX2:
        return "avx2";
    case DN_FAST_ISA_AVX512:
        return "avx512";
    default:
        return "none";
    }
}

const char *dn_kernels(void)
{
    switch (dn_fast_best_isa()) {
    case DN_FAST_ISA_C:
        return "fast kernels, portable C";
    case DN_FAST_ISA_AVX2:
        return "fast kernels, AVX2";
    case DN_FAST_ISA_AVX512:
        return "fast kernels, AVX-512";
    default:
        return "general reference kernels";
    }
}

int dn_fast_set_isa(dn_fast_plan *p, int isa)
{
    if (!p)
        return -1;
    p->isa = isa >= 0 && isa_supported(isa) ? isa : dn_fast_best_isa();
    return p->isa;
}

int dn_fast_set_sparse(dn_fast_plan *p, int on)
{
    if (!p)
        return -1;
    p->sparse = on != 0;
    return p->sparse;
}

void dn_fast_forward(dn_fast_plan *p, const dn_model *m, const float *x, int B,
                     const float *const *masks, int infer, float *logp)
{
    dn_fast_pass a;
    memset(&a, 0, sizeof a);
    a.m = m, a.params = m->params, a.masks = masks, a.x = x, a.logp = logp, a.B = B;
    a.infer = infer != 0;
    switch (p->isa) {
#if defined(DN_FAST_KERNELS_X86)
    case DN_FAST_ISA_AVX512:
        dn_fast_fwd_avx512(p, &a);
        break;
    case DN_FAST_ISA_AVX2:
        dn_fast_fwd_avx2(p, &a);
        break;
#endif
    default:
#if defined(DN_FAST_KERNELS)
        dn_fast_fwd_c(p, &a);
#endif
        break;
    }
}

void dn_fast_backward(dn_fast_plan *p, const dn_model *m, const float *const *masks,
                      const float *logp, const uint8_t *labels, int B, float scale,
                      float *grads)
{
    dn_fast_pass a;
    memset(&a, 0, sizeof a);
    a.m = m, a.params = m->params, a.masks = masks, a.logp_fwd = logp, a.labels = labels;
    a.scale = scale, a.grads = grads, a.B = B;
    switch (p->isa) {
#if defined(DN_FAST_KERNELS_X86)
    case DN_FAST_ISA_AVX512:
        dn_fast_bwd_avx512(p, &a);
        break;
    case DN_FAST_ISA_AVX2:
        dn_fast_bwd_avx2(p, &a);
        break;
#endif
    default:
#if defined(DN_FAST_KERNELS)
        dn_fast_bwd_c(p, &a);
#endif
        break;
    }
}
