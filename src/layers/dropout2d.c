/*
 * dropout2d.c - channel dropout (PyTorch's Dropout2d), forward, backward
 * and the per-sample masks.
 *
 * A mask depends only on (sample key, layer), never on the batch a sample
 * lands in or on the thread that runs it, so a run is reproducible and the
 * general and fast kernels agree bit for bit.
 */
#include "layers/layers.h"

#include "digitnet.h"

void dn_dropout2d_mask(uint64_t sample_key, int layer, int channels, float p,
                       float *scale)
{
    dn_rng r;
    dn_rng_seed(&r, dn_key(sample_key, DN_STREAM_DROPOUT, (uint64_t)layer, 0));
    /* As PyTorch: keep with probability 1 - p and scale the kept channels
     * by 1/(1-p) so the expected activation is unchanged. p >= 1 drops
     * everything (no division by zero); p <= 0 keeps everything. */
    float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (int c = 0; c < channels; c++) {
        float u = dn_rng_uniform(&r); // [0, 1)
        scale[c] = u < p ? 0.0f : keep;
    }
}

void dn_dropout2d_forward(float *out, const float *inp, const float *scale,
                          int B, int C, int HW)
{
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float s = scale ? scale[bc] : 1.0f;
        const float *i = inp + bc * HW;
        float *o = out + bc * HW;
        for (int j = 0; j < HW; j++)
            o[j] = i[j] * s;
    }
}

void dn_dropout2d_backward(float *dinp, const float *dout, const float *scale,
                           int B, int C, int HW)
{
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float s = scale ? scale[bc] : 1.0f;
        const float *d = dout + bc * HW;
        float *di = dinp + bc * HW;
        for (int j = 0; j < HW; j++)
            di[j] = d[j] * s;
    }
}
