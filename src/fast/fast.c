/*
 * fast.c - entry points of the fast kernels (see src/fast.h): recognising
 * the lecture's architecture, the per-work state, the dropout masks, and
 * choosing the instruction set at run time. The arithmetic is in
 * src/fast/kern.h, compiled once per instruction set.
 */
#include "fast/fast_impl.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The architecture                                                         */
/* ------------------------------------------------------------------------ */

static int is_layer(const dn_layer *L, dn_layer_kind kind, int c, int h, int w)
{
    return L->kind == kind && L->in.c == c && L->in.h == h && L->in.w == w;
}

static int is_conv(const dn_layer *L, int c, int hw, int o, int k, int pad)
{
    return is_layer(L, DN_CONV, c, hw, hw) && L->out_ch == o && L->k == k && L->pad == pad &&
           L->stride == 1 && L->out.c == o && L->out.h == hw && L->out.w == hw &&
           L->w_len == (size_t)o * c * k * k && L->b_len == (size_t)o;
}

static int is_pool2(const dn_layer *L, int c, int hw)
{
    return is_layer(L, DN_MAXPOOL, c, hw, hw) && L->k == 2 && L->stride == 2 && L->pad == 0 &&
           L->out.h == hw / 2 && L->out.w == hw / 2;
}

static int is_fc(const dn_layer *L, int in, int out)
{
    return is_layer(L, DN_FC, in, 1, 1) && L->out_ch == out &&
           L->w_len == (size_t)in * out && L->b_len == (size_t)out;
}

int dn_fast_supports(const dn_model *m)
{
    if (!m || m->n_layers != 13 || m->input.c != 1 || m->input.h != 28 || m->input.w != 28)
        return 0;
    const dn_layer *L = m->layers;
    return is_conv(&L[0], 1, 28, C1, 3, 1) && is_layer(&L[1], DN_RELU, C1, 28, 28) &&
           is_pool2(&L[2], C1, 28) && is_layer(&L[3], DN_DROPOUT2D, C1, 14, 14) &&
           is_conv(&L[4], C1, 14, C2, 5, 2) && is_layer(&L[5], DN_RELU, C2, 14, 14) &&
           is_pool2(&L[6], C2, 14) && is_layer(&L[7], DN_DROPOUT2D, C2, 7, 7) &&
           L[8].kind == DN_FLATTEN && L[8].out.c == FC_IN && is_fc(&L[9], FC_IN, HID) &&
           is_layer(&L[10], DN_RELU, HID, 1, 1) && is_fc(&L[11], HID, NCLS) &&
           is_layer(&L[12], DN_LOGSOFTMAX, NCLS, 1, 1);
}

/* ------------------------------------------------------------------------ */
/* Instruction sets                                                         */
/* ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

/* Carves n elements of `size` bytes, 64-byte aligned, from *at. */
static void *carve(char **at, size_t n, size_t size)
{
    void *p = *at;
    *at += (n * size + 63) & ~(size_t)63;
    return p;
}

/* Lays out every buffer of the state for max_batch samples from base (or,
 * with base NULL, only counts); returns the bytes needed. */
static size_t layout(dn_fast_state *s, char *base, size_t mb)
{
    char *at = base;
    dn_fast_state t;
    dn_fast_state *d = base ? s : &t;
    d->xpad = carve(&at, mb * XP_SIZE, sizeof(float));
    d->p1 = carve(&at, mb * C1 * PL_SIZE, sizeof(float));
    d->a2 = carve(&at, mb * A2_SIZE, sizeof(float));
    d->h = carve(&at, mb * HID, sizeof(float));
    d->dh = carve(&at, mb * HID, sizeof(float));
    d->am1 = carve(&at, mb * C1 * 14 * 16, 1);
    d->am2 = carve(&at, mb * C2 * 7 * 8, 1);
    d->s1 = carve(&at, mb * C1, sizeof(float));
    d->s2 = carve(&at, mb * C2, sizeof(float));
    d->act = carve(&at, mb, sizeof(uint64_t));
    d->list = carve(&at, mb, sizeof(int));
    d->da2 = carve(&at, A2_SIZE, sizeof(float));
    d->dy2 = carve(&at, C2 * PL_SIZE, sizeof(float));
    d->dp1 = carve(&at, C1 * 14 * 16, sizeof(float));
    d->dy1 = carve(&at, 28 * 32, sizeof(float));
    d->dw2v = carve(&at, C2 * C1 * 25 * 16, sizeof(float));
    d->dw1v = carve(&at, C1 * 9 * 16, sizeof(float));
    d->db1v = carve(&at, C1 * 16, sizeof(float));
    d->db2v = carve(&at, C2 * 16, sizeof(float));
    return (size_t)(at - base);
}

/* The work's state, made on first use; NULL if memory runs out. */
static dn_fast_state *state_of(dn_work *w)
{
    dn_fast_state **slot = dn_work_fast_slot(w);
    if (*slot)
        return *slot;
    size_t mb = (size_t)dn_work_max_batch(w);
    /* Sizes are small multiples of max_batch (about 23 kB per sample), so
     * only an absurd max_batch could overflow; refuse it. */
    if (mb > ((size_t)1 << 24))
        return NULL;
    dn_fast_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t bytes = layout(s, NULL, mb);
    /* Zeroed: the borders of every padded map stay zero from here on. */
    s->block = dn_alloc_bytes(bytes);
    if (!s->block) {
        free(s);
        return NULL;
    }
    layout(s, s->block, mb);
    s->max_batch = (int)mb;
    s->isa = dn_fast_best_isa();
    s->sparse = 1;
    *slot = s;
    return s;
}

void dn_fast_free(dn_fast_state *s)
{
    if (!s)
        return;
    dn_free(s->block);
    free(s);
}

int dn_fast_set_isa(dn_work *w, int isa)
{
    dn_fast_state *s = w ? state_of(w) : NULL;
    if (!s)
        return -1;
    s->isa = isa >= 0 && isa_supported(isa) ? isa : dn_fast_best_isa();
    return s->isa;
}

int dn_fast_set_sparse(dn_work *w, int on)
{
    dn_fast_state *s = w ? state_of(w) : NULL;
    if (!s)
        return -1;
    s->sparse = on != 0;
    return s->sparse;
}

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */
/* ------------------------------------------------------------------------ */

static void params_of(const dn_model *m, const float *P, dn_fast_pass *p)
{
    const dn_layer *L = m->layers;
    p->w_c1 = P + L[0].w_off, p->b_c1 = P + L[0].b_off;
    p->w_c2 = P + L[4].w_off, p->b_c2 = P + L[4].b_off;
    p->w_f1 = P + L[9].w_off, p->b_f1 = P + L[9].b_off;
    p->w_f2 = P + L[11].w_off, p->b_f2 = P + L[11].b_off;
}

/* The dropout scales this pass uses, into s->s1 and s->s2: drawn from the
 * sample keys (and written to the work's masks, as the general kernels
 * do), read from the work's masks, or all 1 in evaluation. */
static void masks(const dn_model *m, dn_work *w, dn_fast_state *s, int B, dn_mode mode,
                  const uint64_t *keys)
{
    static const int layer[2] = {3, 7}, ch[2] = {C1, C2};
    float *dst[2] = {s->s1, s->s2};
    for (int d = 0; d < 2; d++) {
        size_t n = (size_t)B * ch[d];
        float *wm = dn_work_mask(w, layer[d]); // (B, C)
        if (mode == DN_MODE_TRAIN) {
            for (int b = 0; b < B; b++)
                dn_dropout2d_mask(keys[b], layer[d], ch[d], m->layers[layer[d]].p,
                                  wm + (size_t)b * ch[d]);
            memcpy(dst[d], wm, n * sizeof *wm);
        } else if (mode == DN_MODE_TRAIN_FIXED_MASK) {
            memcpy(dst[d], wm, n * sizeof *wm);
        } else {
            for (size_t i = 0; i < n; i++)
                dst[d][i] = 1.0f;
        }
    }
}

static void run_forward(dn_fast_state *s, const dn_fast_pass *p)
{
    switch (s->isa) {
#if defined(DN_FAST_KERNELS_X86)
    case DN_FAST_ISA_AVX512:
        dn_fast_fwd_avx512(s, p);
        break;
    case DN_FAST_ISA_AVX2:
        dn_fast_fwd_avx2(s, p);
        break;
#endif
    default:
        dn_fast_fwd_c(s, p);
        break;
    }
}

static void run_backward(dn_fast_state *s, const dn_fast_pass *p)
{
    switch (s->isa) {
#if defined(DN_FAST_KERNELS_X86)
    case DN_FAST_ISA_AVX512:
        dn_fast_bwd_avx512(s, p);
        break;
    case DN_FAST_ISA_AVX2:
        dn_fast_bwd_avx2(s, p);
        break;
#endif
    default:
        dn_fast_bwd_c(s, p);
        break;
    }
}

int dn_fast_forward(const dn_model *m, dn_work *w, const float *x, int B,
                    dn_mode mode, const uint64_t *sample_keys)
{
#if defined(DN_FAST_KERNELS)
    if (!dn_fast_supports(m) || B < 1 || B > dn_work_max_batch(w))
        return 0;
    dn_fast_state *s = state_of(w);
    if (!s || s->isa < 0)
        return 0;
    masks(m, w, s, B, mode, sample_keys);
    dn_fast_pass p;
    memset(&p, 0, sizeof p);
    params_of(m, m->params, &p);
    p.x = x;
    p.logp = dn_work_act(w, m->n_layers - 1);
    p.B = B;
    run_forward(s, &p);
    s->B = B;
    return 1;
#else
    (void)m, (void)w, (void)x, (void)B, (void)mode, (void)sample_keys;
    return 0;
#endif
}

int dn_fast_backward(const dn_model *m, dn_work *w, const uint8_t *labels,
                     int B, float scale, float *grads)
{
    dn_fast_state *s = *dn_work_fast_slot(w);
    if (!dn_fast_supports(m) || !s || B != s->B)
        return 0;
    dn_fast_pass p;
    memset(&p, 0, sizeof p);
    params_of(m, m->params, &p);
    /* The same offsets locate each parameter's gradient. */
    const dn_layer *L = m->layers;
    p.g_c1w = grads + L[0].w_off, p.g_c1b = grads + L[0].b_off;
    p.g_c2w = grads + L[4].w_off, p.g_c2b = grads + L[4].b_off;
    p.g_f1w = grads + L[9].w_off, p.g_f1b = grads + L[9].b_off;
    p.g_f2w = grads + L[11].w_off, p.g_f2b = grads + L[11].b_off;
    p.logp = dn_work_act(w, m->n_layers - 1);
    p.labels = labels;
    p.scale = scale;
    p.B = B;
    run_backward(s, &p);
    return 1;
}
