/*
 * plan.c - the plan of the fast kernels: a model's layers grouped into
 * fused stages with their roles named, the geometry of each stage's
 * staged planes, and every buffer, sized once for max_batch (see
 * fast_impl.h). Nothing in a pass allocates.
 */
#include "fast/fast_impl.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t numel(dn_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

static int max_i(int a, int b)
{
    return a > b ? a : b;
}

static int is_kind(const dn_model *m, int l, dn_layer_kind kind)
{
    return l < m->n_layers && m->layers[l].kind == kind;
}

/* The pool a convolution can fuse: 2x2, stride 2, no padding. */
static int is_pool2(const dn_layer *L)
{
    return L->kind == DN_MAXPOOL && L->k == 2 && L->stride == 2 && L->pad == 0;
}

/* Conv geometry (see fast_impl.h for the planes' layout). */
static void conv_geometry(dn_fast_stage *s, const dn_layer *L)
{
    int H = L->in.h, W = L->in.w;
    s->C = L->in.c, s->O = L->out_ch, s->K = L->k, s->pad = L->pad, s->stride = L->stride;
    s->OH = L->out.h, s->OW = L->out.w;
    int K = s->K, pad = s->pad, st = s->stride;
    s->dwh = (s->OH - 1) * st + 1;
    s->dww = (s->OW - 1) * st + 1;
    s->NV = (s->dww + 15) / 16;
    s->NVx = (W + 15) / 16;
    /* Forward reads rows oy*stride + ky for oy up to OH (rows go in pairs)
     * and columns up to 16*NV + K - 1; the weight gradient rows up to
     * dwh + K - 1. */
    s->xs_rs = 16 * s->NV + K + 1;
    s->xs_rows = max_i((s->OH + 1) * st + K, s->dwh + 2 * K) + 1;
    s->xs_plane = (size_t)s->xs_rows * s->xs_rs;
    /* Output gradient row y starts its plane row E + y * stride, at column
     * 0 (the gradient (oy, ox) at (E + oy*stride, ox*stride)), so that the
     * weight gradient loads it aligned; K - 1 zero rows above and below
     * serve its window. The input gradient reads it from row E - q,
     * column -q, q = K - 1 - pad: the zero columns right of one row's
     * values are the left border of the next, so the row stride only has
     * to keep the values of one row out of the reach of the next row's
     * K - 1 - q columns to the left, and of the K - 1 + q to the right of
     * the last input column, W - 1. */
    s->E = K + pad + 1;
    int from = 2 * pad + 2, q = K - 1 - pad; /* from = E - q */
    s->ds_rs = (int)round16((size_t)max_i(16 * s->NV, max_i(W + K - 1 - q, s->dww + q)));
    s->ds_rows = max_i(from + H + K + 1, s->E + s->dwh + K) + 1;
    s->ds_plane = (size_t)s->ds_rows * s->ds_rs;
}

/* Groups m's layers into stages. Returns 0 for a layer sequence the plan
 * cannot hold (none that the spec language builds). */
static int build_stages(dn_fast_plan *p, const dn_model *m)
{
    int prev_drop = -1; /* the dropout2d whose output is the current tensor */
    p->n_stages = 0;
    p->head_logsoftmax = 0;
    for (int l = 0; l < m->n_layers;) {
        const dn_layer *L = &m->layers[l];
        if (L->kind == DN_FLATTEN) {
            l++;
            continue;
        }
        if (L->kind == DN_LOGSOFTMAX) {
            if (l != m->n_layers - 1)
                return 0;
            p->head_logsoftmax = 1;
            l++;
            continue;
        }
        if (p->n_stages >= DN_MAX_LAYERS)
            return 0;
        dn_fast_stage *s = &p->stages[p->n_stages++];
        memset(s, 0, sizeof *s);
        s->main = l;
        s->relu = s->pool = s->drop = -1;
        s->in_drop = prev_drop;
        s->in = L->in;
        switch (L->kind) {
        case DN_CONV: s->kind = DN_STAGE_CONV; break;
        case DN_FC: s->kind = DN_STAGE_FC; break;
        case DN_MAXPOOL: s->kind = DN_STAGE_POOL; break;
        case DN_RELU: s->kind = DN_STAGE_RELU; break;
        default: s->kind = DN_STAGE_DROP; break;
        }
        l++;
        if ((s->kind == DN_STAGE_CONV || s->kind == DN_STAGE_FC) && is_kind(m, l, DN_RELU))
            s->relu = l++;
        if (s->kind == DN_STAGE_CONV && s->relu >= 0 && L->stride == 1 && l < m->n_layers &&
            is_pool2(&m->layers[l]))
            s->pool = l++;
        if (s->kind != DN_STAGE_DROP && is_kind(m, l, DN_DROPOUT2D))
            s->drop = l++;
        s->out = m->layers[l - 1].out;
        prev_drop = s->drop >= 0 ? s->drop : s->kind == DN_STAGE_DROP ? s->main : -1;
        if (s->kind == DN_STAGE_CONV)
            conv_geometry(s, L);
        if (s->kind == DN_STAGE_FC) {
            s->C = L->in.c * L->in.h * L->in.w;
            s->O = L->out_ch;
            s->nvec = (s->C + 15) / 16;
            s->words = (s->nvec + 63) / 64;
            /* Pairs of samples keep a sparse input sparse (a block visits
             * the union of its samples' vectors) while the weights stay in
             * the cache; large weights want more samples per pass. */
            s->group = s->in_drop >= 0 && (size_t)s->C * s->O * 4 <= ((size_t)512 << 10) ? 2 : 8;
        }
    }
    return p->n_stages > 0;
}

/* Carves n elements of `size` bytes, 64-byte aligned, at *off from base
 * (NULL when only counting). */
static void *carve(char *base, size_t *off, size_t n, size_t size)
{
    void *q = base ? base + *off : NULL;
    *off += (n * size + 63) & ~(size_t)63;
    return q;
}

/* Lays out every buffer for max_batch samples from base (or, with base
 * NULL, only counts); returns the bytes needed. */
static size_t layout(dn_fast_plan *p, char *base)
{
    size_t off = 0;
    size_t mb = (size_t)p->max_batch, sub = (size_t)p->sub;
    size_t ld = p->in_ld, fco = 16, ch = 1, words = 1, vecs = 0;
    for (int i = 0; i < p->n_stages; i++) {
        dn_fast_stage *s = &p->stages[i];
        if (s->out_ld > ld)
            ld = s->out_ld;
        ch = ch > (size_t)s->in.c ? ch : (size_t)s->in.c;
        ch = ch > (size_t)s->out.c ? ch : (size_t)s->out.c;
        s->act = carve(base, &off, mb * s->out_ld, sizeof(float));
        if (s->kind == DN_STAGE_CONV) {
            size_t w = (size_t)s->O * s->C * s->K * s->K;
            s->pack = carve(base, &off, w + 16, sizeof(float));
            s->packed = carve(base, &off, 2 + (size_t)s->C + s->O, sizeof(int));
            /* Each convolution its own planes: their zero borders differ. */
            s->xs = carve(base, &off, sub * s->C * s->xs_plane + 16, sizeof(float));
            s->ds = carve(base, &off, sub * s->O * s->ds_plane + 16, sizeof(float));
            ch = ch > (size_t)s->O ? ch : (size_t)s->O;
            if (s->pool >= 0)
                s->code = carve(base, &off, mb * s->O * (s->OH / 2) * (s->OW / 2), 1);
        }
        if (s->kind == DN_STAGE_POOL)
            s->argmax = carve(base, &off, mb * numel(s->out), sizeof(int32_t));
        if (s->kind == DN_STAGE_FC) {
            s->active = carve(base, &off, mb * s->words, sizeof(uint64_t));
            fco = fco > round16((size_t)s->O) ? fco : round16((size_t)s->O);
            words = words > (size_t)s->words ? words : (size_t)s->words;
            vecs = vecs > (size_t)s->nvec ? vecs : (size_t)s->nvec;
        }
    }
    p->x = carve(base, &off, mb * p->in_ld, sizeof(float));
    p->g[0] = carve(base, &off, mb * ld, sizeof(float));
    p->g[1] = carve(base, &off, mb * ld, sizeof(float));
    p->un = carve(base, &off, words, sizeof(uint64_t));
    p->ch = (int)ch;
    p->dy = carve(base, &off, mb * fco, sizeof(float));
    p->dsum = carve(base, &off, ch, sizeof(double));
    p->keep = carve(base, &off, mb * ch, 1);
    p->keep_out = carve(base, &off, mb * ch, 1);
    p->pair = carve(base, &off, mb, 1);
    p->list = carve(base, &off, mb + 4 * ch + vecs + fco + 64, sizeof(int));
    return off;
}

dn_fast_plan *dn_fast_plan_new(const dn_model *m, int max_batch)
{
    if (!m || m->n_layers < 1 || max_batch < 1 || dn_fast_best_isa() < 0)
        return NULL;
    dn_fast_plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max_batch = max_batch;
    p->sub = max_batch < DN_TRAIN_CHUNK ? max_batch : DN_TRAIN_CHUNK;
    p->isa = dn_fast_best_isa();
    p->sparse = 1;
    p->input = m->input;
    p->in_ld = round16(numel(m->input));
    /* The classes: the last layer's outputs. */
    p->classes = (int)numel(m->layers[m->n_layers - 1].out);
    if (!build_stages(p, m)) {
        free(p);
        return NULL;
    }
    for (int i = 0; i < p->n_stages; i++) {
        dn_fast_stage *s = &p->stages[i];
        s->in_ld = i ? p->stages[i - 1].out_ld : p->in_ld;
        s->out_ld = round16(numel(s->out));
        if (s->kind == DN_STAGE_CONV) {
            size_t bytes = (2 * s->ds_plane + s->xs_plane) * sizeof(float);
            size_t fit = ((size_t)64 << 10) / bytes;
            /* A power of two, so that blocks split a chunk of 8 evenly. */
            int sub = 1;
            while (sub * 2 <= p->sub && (size_t)sub * 2 <= fit)
                sub *= 2;
            s->sub = sub;
        }
    }
    /* A convolution whose output is the next convolution's input (after
     * its pool, or at stride 1) writes that input's staged planes. chunk:
     * the largest batch whose planes every staged stage of the run holds
     * at once (see fast_impl.h). */
    for (int i = 0; i + 1 < p->n_stages; i++) {
        dn_fast_stage *s = &p->stages[i], *t = s + 1;
        if (s->kind == DN_STAGE_CONV && t->kind == DN_STAGE_CONV &&
            (s->pool >= 0 || s->stride == 1))
            s->to_next = t->staged = 1;
    }
    for (int i = 0; i < p->n_stages;) {
        int j = i, chunk = max_batch;
        while (p->stages[j].to_next) {
            j++;
            chunk = p->stages[j].sub < chunk ? p->stages[j].sub : chunk;
        }
        for (; i <= j; i++)
            p->stages[i].chunk = chunk;
    }
    /* Sizes grow with max_batch and the layers; DN_MAX_TENSOR bounds the
     * layers, so only an absurd max_batch could overflow. */
    if ((size_t)max_batch > ((size_t)1 << 20)) {
        free(p);
        return NULL;
    }
    size_t bytes = layout(p, NULL);
    /* Zeroed: the borders of every staged plane and the tails of every
     * per-sample row stay zero from here on. */
    p->block = dn_alloc_bytes(bytes);
    if (!p->block) {
        free(p);
        return NULL;
    }
    layout(p, p->block);
    return p;
}

void dn_fast_plan_free(dn_fast_plan *p)
{
    if (!p)
        return;
    dn_free(p->block);
    free(p);
}
