/*
 * maxpool.c - 2-D max pooling, forward and backward.
 *
 * The arg-max rule is PyTorch's CPU max_pool2d: scan the window row by row,
 * starting from the first in-image pixel with max = -inf, and take a value
 * when it is greater than the max so far or is NaN. On ties the first
 * maximum in scan order wins, which decides where backward sends the
 * gradient; padding is never read, i.e. it counts as -inf.
 */
#include "layers/layers.h"

#include <math.h>
#include <string.h>

void dn_maxpool_forward(float *out, int32_t *argmax, const float *inp,
                        int B, int C, int H, int W, int k, int pad,
                        int stride)
{
    int OH = dn_window_out(H, k, pad, stride);
    int OW = dn_window_out(W, k, pad, stride);
    for (size_t p = 0; p < (size_t)B * C; p++) {
        const float *inp_p = inp + p * H * W;       // (H, W)
        float *out_p = out + p * OH * OW;           // (OH, OW)
        int32_t *arg_p = argmax + p * OH * OW;      // (OH, OW)
        for (int oy = 0; oy < OH; oy++) {
            int y0 = oy * stride - pad, y1 = y0 + k;
            if (y0 < 0)
                y0 = 0;
            if (y1 > H)
                y1 = H;
            for (int ox = 0; ox < OW; ox++) {
                int x0 = ox * stride - pad, x1 = x0 + k;
                if (x0 < 0)
                    x0 = 0;
                if (x1 > W)
                    x1 = W;
                float best = -INFINITY;
                int32_t at = (int32_t)(y0 * W + x0);
                for (int y = y0; y < y1; y++) {
                    for (int x = x0; x < x1; x++) {
                        float v = inp_p[y * W + x];
                        if (v > best || isnan(v)) {
                            best = v;
                            at = (int32_t)(y * W + x);
                        }
                    }
                }
                out_p[oy * OW + ox] = best;
                arg_p[oy * OW + ox] = at;
            }
        }
    }
}

void dn_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax,
                         int B, int C, int H, int W, int OH, int OW)
{
    memset(dinp, 0, (size_t)B * C * H * W * sizeof *dinp);
    for (size_t p = 0; p < (size_t)B * C; p++) {
        float *dinp_p = dinp + p * H * W;           // (H, W)
        const float *dout_p = dout + p * OH * OW;   // (OH, OW)
        const int32_t *arg_p = argmax + p * OH * OW;
        for (int i = 0; i < OH * OW; i++)
            dinp_p[arg_p[i]] += dout_p[i];
    }
}
