/*
 * conv2d.c - 2-D convolution (cross-correlation, as PyTorch's Conv2d),
 * forward and backward.
 *
 * No im2col: for each (output channel, input channel, kernel tap) the tap
 * weight is broadcast over the output rows it touches, so the innermost
 * loop is a contiguous axpy along an output row when stride is 1. The range
 * of output columns whose input column falls inside the image is computed
 * once per tap, so the inner loop carries no bounds test: padding is
 * simply the part of the window that is never read.
 */
#include "layers/layers.h"

#include <string.h>

/* Output columns ox whose input column ox * stride - pad + kx lies in
 * [0, W): [lo, hi). */
static void tap_range(int *lo, int *hi, int kx, int pad, int stride, int W,
                      int OW)
{
    int off = kx - pad; /* ix = ox * stride + off */
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / stride + 1;
    *lo = l;
    *hi = h < OW ? h : OW;
    if (*hi < *lo)
        *hi = *lo;
}

/* Offset in the input plane of the pixel under tap kx at output column lo
 * of input row iy; never negative because lo is the first column whose
 * tap falls inside the image. */
static inline size_t first_input(int iy, int W, int lo, int kx, int pad,
                                 int stride)
{
    return (size_t)iy * W + (size_t)(lo * stride + kx - pad);
}

/* y[j] += a * x[j * stride]; stride 1 gets its own loop so that the
 * compiler vectorises the common case. */
static inline void axpy(float *restrict y, float a, const float *restrict x, int n,
                        int stride)
{
    if (stride == 1)
        for (int j = 0; j < n; j++)
            y[j] += a * x[j];
    else
        for (int j = 0; j < n; j++)
            y[j] += a * x[j * stride];
}

/* y[j * stride] += a * x[j]. */
static inline void axpy_scatter(float *restrict y, float a, const float *restrict x, int n,
                                int stride)
{
    if (stride == 1)
        for (int j = 0; j < n; j++)
            y[j] += a * x[j];
    else
        for (int j = 0; j < n; j++)
            y[j * stride] += a * x[j];
}

void dn_conv2d_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int B, int C, int H, int W, int O,
                       int k, int pad, int stride)
{
    int OH = dn_window_out(H, k, pad, stride);
    int OW = dn_window_out(W, k, pad, stride);
    size_t in_plane = (size_t)H * W, out_plane = (size_t)OH * OW;
    for (int b = 0; b < B; b++) {
        const float *inb = inp + (size_t)b * C * in_plane; // (C, H, W)
        for (int o = 0; o < O; o++) {
            float *outp = out + ((size_t)b * O + o) * out_plane; // (OH, OW)
            float b0 = bias ? bias[o] : 0.0f;
            for (size_t i = 0; i < out_plane; i++)
                outp[i] = b0;
            for (int c = 0; c < C; c++) {
                const float *inc = inb + (size_t)c * in_plane;
                const float *wc = weight + ((size_t)o * C + c) * k * k; // (k, k)
                for (int ky = 0; ky < k; ky++) {
                    for (int kx = 0; kx < k; kx++) {
                        float wv = wc[ky * k + kx];
                        int lo, hi;
                        tap_range(&lo, &hi, kx, pad, stride, W, OW);
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            float *orow = outp + (size_t)oy * OW + lo;
                            const float *irow = inc + first_input(iy, W, lo, kx, pad, stride);
                            axpy(orow, wv, irow, hi - lo, stride);
                        }
                    }
                }
            }
        }
    }
}

void dn_conv2d_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int B, int C, int H, int W,
                        int O, int k, int pad, int stride)
{
    int OH = dn_window_out(H, k, pad, stride);
    int OW = dn_window_out(W, k, pad, stride);
    size_t in_plane = (size_t)H * W, out_plane = (size_t)OH * OW;
    if (dinp)
        memset(dinp, 0, (size_t)B * C * in_plane * sizeof *dinp);
    for (int b = 0; b < B; b++) {
        const float *inb = inp + (size_t)b * C * in_plane;        // (C, H, W)
        float *dinb = dinp ? dinp + (size_t)b * C * in_plane : NULL;
        for (int o = 0; o < O; o++) {
            const float *doutp = dout + ((size_t)b * O + o) * out_plane; // (OH, OW)
            if (dbias) {
                /* Reductions over a whole plane run in double so that the
                 * reference gradients do not drift with the image size. */
                double s = 0.0;
                for (size_t i = 0; i < out_plane; i++)
                    s += doutp[i];
                dbias[o] += (float)s;
            }
            for (int c = 0; c < C; c++) {
                const float *inc = inb + (size_t)c * in_plane;
                float *dinc = dinb ? dinb + (size_t)c * in_plane : NULL;
                const float *wc = weight + ((size_t)o * C + c) * k * k; // (k, k)
                float *dwc = dweight + ((size_t)o * C + c) * k * k;    // (k, k)
                for (int ky = 0; ky < k; ky++) {
                    for (int kx = 0; kx < k; kx++) {
                        float wv = wc[ky * k + kx];
                        double acc = 0.0;
                        int lo, hi;
                        tap_range(&lo, &hi, kx, pad, stride, W, OW);
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            const float *drow = doutp + (size_t)oy * OW + lo;
                            size_t ioff = first_input(iy, W, lo, kx, pad, stride);
                            const float *irow = inc + ioff;
                            for (int j = 0; j < hi - lo; j++)
                                acc += (double)drow[j] * irow[j * stride];
                            if (dinc)
                                axpy_scatter(dinc + ioff, wv, drow, hi - lo, stride);
                        }
                        dwc[ky * k + kx] += (float)acc;
                    }
                }
            }
        }
    }
}
