/*
 * kern_fc.h - the fully connected stage of the fast kernels: blocks of
 * samples x outputs over the input vectors that hold kept channels.
 * Included by kern.h only (see there), once per instruction set.
 */
/* ------------------------------------------------------------------------ */
/* Fully connected stage                                                    */
/* ------------------------------------------------------------------------ */

/* Input vectors of one sample that hold a kept channel of the dropout
 * before the layer (all of them without one): bits of act (words). */
static void fc_active(const dn_fast_stage *s, const dn_fast_pass *a, int b, int sparse,
                      uint64_t *act)
{
    const float *mask = mask_of(a, s->in_drop);
    memset(act, 0, (size_t)s->words * sizeof *act);
    if (!sparse || !mask) {
        for (int v = 0; v < s->nvec; v++)
            act[v / 64] |= (uint64_t)1 << (v % 64);
        return;
    }
    int Cd = a->m->layers[s->in_drop].out.c, hw = s->C / Cd;
    for (int c = 0; c < Cd; c++)
        if (mask[(size_t)b * Cd + c] != 0.0f)
            for (int v = c * hw / 16; v <= (c * hw + hw - 1) / 16; v++)
                act[v / 64] |= (uint64_t)1 << (v % 64);
}

/* Samples per pass over the weights: the plan's choice for an input that
 * a dropout mask makes sparse (pairs keep the union of their vectors
 * small); without one every sample holds every vector, and the most
 * samples per pass share each weight loaded. */
static int fc_group(const dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a)
{
    return min_i(mask_of(a, s->in_drop) && p->sparse ? s->group : G_MAX, G_MAX);
}

/* Weight vector v of row wr: 16 floats, or the tail of the row. */
KI v16 wvec(const float *wr, int v, int full, int tail)
{
    return v < full ? ld(wr + 16 * v) : ldn(wr + 16 * v, tail);
}

/* z[g * J + j] = sum over the input vectors in act (words) of row j0 + j
 * of W times sample g's input, for G samples. Rows past O repeat the last
 * (their sums are not used). */
KI void fc_block(const int G, const int J, const float *W, int I, int O, int j0,
                 const float *const *x, const uint64_t *act, int words, float *z)
{
    const int full = I / 16, tail = I % 16;
    v16 acc[FC_ACC];
    const float *wr[FC_ACC];
    for (int k = 0; k < G * J; k++)
        acc[k] = splat(0.0f);
    for (int j = 0; j < J; j++)
        wr[j] = W + (size_t)min_i(j0 + j, O - 1) * I;
    for (int wd = 0; wd < words; wd++)
        for (uint64_t bits = act[wd]; bits; bits &= bits - 1) {
            int v = wd * 64 + __builtin_ctzll(bits);
            v16 xv[G_MAX];
            for (int g = 0; g < G; g++)
                xv[g] = ld(x[g] + 16 * v);
            for (int j = 0; j < J; j++) {
                v16 w = wvec(wr[j], v, full, tail);
                for (int g = 0; g < G; g++)
                    acc[g * J + j] = fma16(w, xv[g], acc[g * J + j]);
            }
        }
    if (G * J == 16) {
        hsum16(acc, z);
    } else {
        for (int k = 0; k < G * J; k++)
            z[k] = hsum(acc[k]);
    }
}

static void fc_forward(dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a,
                       const float *in)
{
    const dn_layer *L = &a->m->layers[s->main];
    const float *W = a->params + L->w_off, *bias = a->params + L->b_off;
    const float *mask_out = mask_of(a, s->drop);
    const int I = s->C, O = s->O, words = s->words;
    for (int b = 0; b < a->B; b++)
        fc_active(s, a, b, p->sparse, s->active + (size_t)b * words);
    int gmax = fc_group(p, s, a);
    for (int b0 = 0; b0 < a->B; b0 += gmax) {
        int G = min_i(gmax, a->B - b0);
        G = G >= 8 ? 8 : G >= 4 ? 4 : G >= 2 ? 2 : 1;
        G = min_i(G, G_MAX);
        const float *x[8];
        memset(p->un, 0, (size_t)words * sizeof *p->un);
        for (int g = 0; g < G; g++) {
            x[g] = in + (size_t)(b0 + g) * s->in_ld;
            for (int wd = 0; wd < words; wd++)
                p->un[wd] |= s->active[(size_t)(b0 + g) * words + wd];
        }
        int J = FC_ACC / G;
        float z[FC_ACC];
        for (int j0 = 0; j0 < O; j0 += J) {
            switch (G) {
            case 1: fc_block(1, FC_ACC, W, I, O, j0, x, p->un, words, z); break;
            case 2: if (G_MAX >= 2) fc_block(2, FC_ACC / 2, W, I, O, j0, x, p->un, words, z); break;
            case 4: if (G_MAX >= 4) fc_block(4, FC_ACC / 4, W, I, O, j0, x, p->un, words, z); break;
            default: if (G_MAX >= 8) fc_block(8, FC_ACC / 8, W, I, O, j0, x, p->un, words, z); break;
            }
            for (int g = 0; g < G; g++) {
                float *y = s->act + (size_t)(b0 + g) * s->out_ld;
                const float *sc = mask_out ? mask_out + (size_t)(b0 + g) * O : NULL;
                for (int j = 0; j < J && j0 + j < O; j++) {
                    float v = z[g * J + j] + bias[j0 + j];
                    if (s->relu >= 0)
                        v = v > 0.0f ? v : 0.0f;
                    y[j0 + j] = sc ? v * sc[j0 + j] : v;
                }
            }
        }
        b0 -= gmax - G; /* a short block took fewer samples */
    }
}

/* The input gradient of G samples on the input vectors vl[0..nv): the
 * sum over the outputs jl[0..nj) of dy (G, dyld) times the weight rows,
 * into dx (G, ld). */
KI void fc_dx_block(const int G, const float *W, int I, const float *dy, size_t dyld,
                    const int *jl, int nj, const int *vl, int nv, float *dx, size_t ld)
{
    const int KV = FC_ACC / G, full = I / 16, tail = I % 16;
    for (int t0 = 0; t0 < nv; t0 += KV) {
        int nt = min_i(KV, nv - t0);
        v16 acc[FC_ACC];
        for (int k = 0; k < FC_ACC; k++)
            acc[k] = splat(0.0f);
        for (int jj = 0; jj < nj; jj++) {
            const float *wr = W + (size_t)jl[jj] * I;
            v16 d[G_MAX];
            for (int g = 0; g < G; g++)
                d[g] = splat(dy[(size_t)g * dyld + jl[jj]]);
            for (int t = 0; t < KV; t++) {
                v16 w = wvec(wr, vl[t0 + (t < nt ? t : 0)], full, tail);
                for (int g = 0; g < G; g++)
                    acc[g * KV + t] = fma16(d[g], w, acc[g * KV + t]);
            }
        }
        for (int g = 0; g < G; g++)
            for (int t = 0; t < nt; t++)
                st(dx + (size_t)g * ld + 16 * vl[t0 + t], acc[g * KV + t]);
    }
}

static void fc_backward(dn_fast_plan *p, const dn_fast_stage *s, const dn_fast_pass *a,
                        const float *in, const float *gout, float *gin)
{
    const dn_layer *L = &a->m->layers[s->main];
    const float *W = a->params + L->w_off;
    float *dw = a->grads + L->w_off, *db = a->grads + L->b_off;
    const float *mask_out = mask_of(a, s->drop);
    const int I = s->C, O = s->O, B = a->B, words = s->words, full = I / 16, tail = I % 16;
    const size_t dyld = (O + 15) & ~15;
    /* The gradient at the layer's output through dropout and ReLU. */
    for (int b = 0; b < B; b++) {
        const float *g = gout + (size_t)b * s->out_ld, *y = s->act + (size_t)b * s->out_ld;
        const float *sc = mask_out ? mask_out + (size_t)b * O : NULL;
        float *dy = p->dy + (size_t)b * dyld;
        for (int j = 0; j < O; j++) {
            float v = sc ? g[j] * sc[j] : g[j];
            dy[j] = s->relu >= 0 && !(y[j] > 0.0f) ? 0.0f : v;
        }
    }
    for (int j = 0; j < O; j++) {
        double sum = 0.0;
        for (int b = 0; b < B; b++)
            sum += p->dy[(size_t)b * dyld + j];
        db[j] = (float)sum;
    }
    /* The weight gradient, input vector by input vector over the samples
     * that hold it (listed without a branch: Dropout2d makes the flags
     * random, and a branch on them mispredicts every other time), sixteen
     * rows at a time: every element written once. */
    int *hold = p->list;
    for (int v = 0; v < s->nvec; v++) {
        int nb = 0;
        for (int b = 0; b < B; b++) {
            hold[nb] = b;
            nb += (int)(s->active[(size_t)b * words + v / 64] >> (v % 64) & 1);
        }
        for (int j0 = 0; j0 < O; j0 += FC_ACC) {
            v16 acc[FC_ACC];
            for (int j = 0; j < FC_ACC; j++)
                acc[j] = splat(0.0f);
            for (int u = 0; u < nb; u++) {
                int b = hold[u];
                v16 xv = ld(in + (size_t)b * s->in_ld + 16 * v);
                const float *dy = p->dy + (size_t)b * dyld + j0;
                for (int j = 0; j < FC_ACC; j++)
                    acc[j] = fma16(splat(dy[j]), xv, acc[j]);
            }
            int n = v < full ? 16 : tail;
            for (int j = 0; j < FC_ACC && j0 + j < O; j++)
                stn(dw + (size_t)(j0 + j) * I + 16 * v, acc[j], n);
        }
    }
    if (!gin)
        return;
    /* The input gradient, a few samples at a time over the union of their
     * vectors and the outputs whose gradient is not zero: each weight
     * vector loaded serves every sample of the block. */
    int *vl = p->list, *jl = p->list + s->nvec + 1;
    int gmax = fc_group(p, s, a);
    for (int b0 = 0; b0 < B; b0 += gmax) {
        int G = min_i(gmax, B - b0);
        G = G >= 8 ? 8 : G >= 4 ? 4 : G >= 2 ? 2 : 1;
        G = min_i(G, G_MAX);
        memset(p->un, 0, (size_t)words * sizeof *p->un);
        for (int g = 0; g < G; g++)
            for (int wd = 0; wd < words; wd++)
                p->un[wd] |= s->active[(size_t)(b0 + g) * words + wd];
        int nv = 0, nj = 0;
        for (int v = 0; v < s->nvec; v++)
            if (p->un[v / 64] >> (v % 64) & 1)
                vl[nv++] = v;
        for (int j = 0; j < O; j++)
            for (int g = 0; g < G; g++)
                if (p->dy[(size_t)(b0 + g) * dyld + j] != 0.0f) {
                    jl[nj++] = j;
                    break;
                }
        switch (G) {
        case 1: fc_dx_block(1, W, I, p->dy + (size_t)b0 * dyld, dyld, jl, nj, vl, nv, gin + (size_t)b0 * s->in_ld, s->in_ld); break;
        case 2: if (G_MAX >= 2) fc_dx_block(2, W, I, p->dy + (size_t)b0 * dyld, dyld, jl, nj, vl, nv, gin + (size_t)b0 * s->in_ld, s->in_ld); break;
        case 4: if (G_MAX >= 4) fc_dx_block(4, W, I, p->dy + (size_t)b0 * dyld, dyld, jl, nj, vl, nv, gin + (size_t)b0 * s->in_ld, s->in_ld); break;
        default: if (G_MAX >= 8) fc_dx_block(8, W, I, p->dy + (size_t)b0 * dyld, dyld, jl, nj, vl, nv, gin + (size_t)b0 * s->in_ld, s->in_ld); break;
        }
        /* Vectors a sample does not hold get no gradient. */
        for (int g = 0; g < G; g++) {
            const uint64_t *act = s->active + (size_t)(b0 + g) * words;
            float *gb = gin + (size_t)(b0 + g) * s->in_ld;
            for (int v = 0; v < s->nvec; v++)
                if (!(act[v / 64] >> (v % 64) & 1))
                    memset(gb + 16 * v, 0, 16 * sizeof *gb);
        }
        b0 -= gmax - G; /* a short block took fewer samples */
    }
}

