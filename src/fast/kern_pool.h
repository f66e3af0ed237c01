/*
 * kern_pool.h - the pooling, ReLU and dropout stages of the fast kernels
 * that are not fused into a convolution: plain loops.
 * Included by kern.h only (see there), once per instruction set.
 */
/* ------------------------------------------------------------------------ */
/* Pooling, ReLU and dropout stages                                         */
/* ------------------------------------------------------------------------ */

/* Max pooling as the general kernel (PyTorch's rule: the first maximum in
 * scan order, a NaN wins), then the dropout scale. */
static void pool_forward(const dn_fast_stage *s, const dn_fast_pass *a, const float *in)
{
    const dn_layer *L = &a->m->layers[s->main];
    const float *mask = mask_of(a, s->drop);
    int C = s->in.c, H = s->in.h, W = s->in.w, OH = s->out.h, OW = s->out.w;
    for (int b = 0; b < a->B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = in + (size_t)b * s->in_ld + (size_t)c * H * W;
            float *y = s->act + (size_t)b * s->out_ld + (size_t)c * OH * OW;
            int32_t *am = s->argmax + ((size_t)b * C + c) * OH * OW;
            float f = mask ? mask[(size_t)b * C + c] : 1.0f;
            for (int oy = 0; oy < OH; oy++) {
                int y0 = oy * L->stride - L->pad, y1 = min_i(y0 + L->k, H);
                y0 = y0 < 0 ? 0 : y0;
                for (int ox = 0; ox < OW; ox++) {
                    int x0 = ox * L->stride - L->pad, x1 = min_i(x0 + L->k, W);
                    x0 = x0 < 0 ? 0 : x0;
                    float best = -INFINITY;
                    int32_t at = y0 * W + x0;
                    for (int yy = y0; yy < y1; yy++)
                        for (int xx = x0; xx < x1; xx++) {
                            float v = x[yy * W + xx];
                            if (v > best || isnan(v))
                                best = v, at = yy * W + xx;
                        }
                    y[oy * OW + ox] = best * f;
                    am[oy * OW + ox] = at;
                }
            }
        }
}

static void pool_backward(const dn_fast_stage *s, const dn_fast_pass *a, const float *gout,
                          float *gin)
{
    const float *mask = mask_of(a, s->drop);
    int C = s->in.c, HW = s->in.h * s->in.w, OHW = s->out.h * s->out.w;
    for (int b = 0; b < a->B; b++) {
        float *gi = gin + (size_t)b * s->in_ld;
        memset(gi, 0, (size_t)C * HW * sizeof *gi);
        for (int c = 0; c < C; c++) {
            const float *g = gout + (size_t)b * s->out_ld + (size_t)c * OHW;
            const int32_t *am = s->argmax + ((size_t)b * C + c) * OHW;
            float f = mask ? mask[(size_t)b * C + c] : 1.0f;
            for (int i = 0; i < OHW; i++)
                gi[(size_t)c * HW + am[i]] += g[i] * f;
        }
    }
}

/* relu [dropout] or dropout alone, element by element. */
static void elementwise_forward(const dn_fast_stage *s, const dn_fast_pass *a, const float *in)
{
    const float *mask = mask_of(a, s->kind == DN_STAGE_DROP ? s->main : s->drop);
    int C = s->in.c, HW = s->in.h * s->in.w;
    for (int b = 0; b < a->B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = in + (size_t)b * s->in_ld + (size_t)c * HW;
            float *y = s->act + (size_t)b * s->out_ld + (size_t)c * HW;
            float f = mask ? mask[(size_t)b * C + c] : 1.0f;
            for (int i = 0; i < HW; i++) {
                float v = s->kind == DN_STAGE_RELU ? (x[i] > 0.0f ? x[i] : 0.0f) : x[i];
                y[i] = v * f;
            }
        }
}

static void elementwise_backward(const dn_fast_stage *s, const dn_fast_pass *a, const float *in,
                                 const float *gout, float *gin)
{
    const float *mask = mask_of(a, s->kind == DN_STAGE_DROP ? s->main : s->drop);
    int C = s->in.c, HW = s->in.h * s->in.w;
    for (int b = 0; b < a->B; b++)
        for (int c = 0; c < C; c++) {
            const float *x = in + (size_t)b * s->in_ld + (size_t)c * HW;
            const float *g = gout + (size_t)b * s->out_ld + (size_t)c * HW;
            float *gi = gin + (size_t)b * s->in_ld + (size_t)c * HW;
            float f = mask ? mask[(size_t)b * C + c] : 1.0f;
            for (int i = 0; i < HW; i++)
                gi[i] = s->kind == DN_STAGE_RELU && !(x[i] > 0.0f) ? 0.0f : g[i] * f;
        }
}

