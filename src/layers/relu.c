/*
 * relu.c - rectified linear unit, forward and backward.
 */
#include "layers/layers.h"

void dn_relu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void dn_relu_backward(float *dinp, const float *dout, const float *inp,
                      size_t n)
{
    /* PyTorch's threshold_backward passes the gradient only where the
     * output is strictly positive, so the subgradient at 0 is 0. */
    for (size_t i = 0; i < n; i++)
        dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}
