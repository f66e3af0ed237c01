/*
 * layers.h - the general layer kernels, forward and backward side by side.
 *
 * These are the reference kernels: written for clarity and exactness first
 * (the fast kernels in src/fast/ are tested against them), with loops
 * ordered so that the innermost one walks contiguous memory. Conventions,
 * as in llm.c: outputs first, then inputs, then sizes; the gradient of x is
 * dx. Tensors are NCHW float32. Backward kernels overwrite the input
 * gradient (dinp) and accumulate (+=) into parameter gradients, so that a
 * caller can sum over chunks; dinp may be NULL when nobody needs it (the
 * first layer). No kernel allocates memory.
 */
#ifndef DN_LAYERS_H
#define DN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a convolution or pooling along one axis (PyTorch's floor
 * rule); <= 0 when the window does not fit. */
static inline int dn_window_out(int n, int k, int pad, int stride)
{
    if (n + 2 * pad < k)
        return 0;
    return (n + 2 * pad - k) / stride + 1;
}

/* Conv2d, square k x k kernel, zero padding, same stride on both axes.
 *   out    (B, O, OH, OW)      inp (B, C, H, W)
 *   weight (O, C, k, k)        bias (O), may be NULL */
void dn_conv2d_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int B, int C, int H, int W, int O,
                       int k, int pad, int stride);
/* dinp (B, C, H, W) overwritten (may be NULL); dweight (O, C, k, k) and
 * dbias (O) accumulated (dbias may be NULL). */
void dn_conv2d_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int B, int C, int H, int W,
                        int O, int k, int pad, int stride);

/* ReLU on n values. */
void dn_relu_forward(float *out, const float *inp, size_t n);
/* dinp = dout where inp > 0, else 0 (PyTorch's rule: zero at 0). */
void dn_relu_backward(float *dinp, const float *dout, const float *inp,
                      size_t n);

/* Max pooling, k x k window, stride, padding that counts as -inf.
 *   out (B, C, OH, OW)   argmax (B, C, OH, OW): index iy * W + ix of the
 *   maximum in its input plane   inp (B, C, H, W)
 * Ties keep the first maximum in row-major scan order and a NaN wins, as
 * PyTorch's CPU kernel (it updates when val > max || isnan(val)). */
void dn_maxpool_forward(float *out, int32_t *argmax, const float *inp,
                        int B, int C, int H, int W, int k, int pad,
                        int stride);
/* dinp (B, C, H, W) overwritten: each dout goes to its arg-max (summed
 * where windows overlap). */
void dn_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax,
                         int B, int C, int H, int W, int OH, int OW);

/* Dropout2d: out[b, c, :] = inp[b, c, :] * scale[b, c]; scale (B, C) holds
 * 0 or 1/(1-p) (see dn_dropout2d_mask); scale NULL is the identity. */
void dn_dropout2d_forward(float *out, const float *inp, const float *scale,
                          int B, int C, int HW);
void dn_dropout2d_backward(float *dinp, const float *dout, const float *scale,
                           int B, int C, int HW);

/* Fully connected: out (B, O) = inp (B, I) weight^T (O, I) + bias (O). */
void dn_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int B, int I, int O);
/* dinp (B, I) overwritten (may be NULL); dweight (O, I), dbias (O)
 * accumulated. */
void dn_linear_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int B, int I, int O);

/* log_softmax over each row of n: out (B, n), inp (B, n). */
void dn_logsoftmax_forward(float *out, const float *inp, int B, int n);
/* dinp = dout - exp(out) * sum(dout), row by row; out is the forward's. */
void dn_logsoftmax_backward(float *dinp, const float *dout, const float *out,
                            int B, int n);

/* Mean negative log-likelihood of labels (B) under logp (B, n); NAN if a
 * label is >= n. */
double dn_nll_forward(const float *logp, const uint8_t *labels, int B, int n);
/* Gradient of scale * sum_b NLL_b: dlogp (B, n) overwritten, -scale at each
 * label, 0 elsewhere (a label >= n contributes nothing). */
void dn_nll_backward(float *dlogp, const uint8_t *labels, int B, int n,
                     float scale);

#endif
