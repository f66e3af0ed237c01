/*
 * linear.c - fully connected layer (PyTorch's Linear, weight (O, I)),
 * forward and backward.
 */
#include "layers/layers.h"

#include <string.h>

void dn_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int B, int I, int O)
{
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * I;   // (I)
        float *y = out + (size_t)b * O;         // (O)
        for (int o = 0; o < O; o++) {
            const float *wrow = weight + (size_t)o * I; // (I)
            float s = 0.0f;
            for (int i = 0; i < I; i++)
                s += x[i] * wrow[i];
            y[o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

void dn_linear_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp,
                        const float *weight, int B, int I, int O)
{
    if (dinp) {
        memset(dinp, 0, (size_t)B * I * sizeof *dinp);
        for (int b = 0; b < B; b++) {
            float *dx = dinp + (size_t)b * I;           // (I)
            for (int o = 0; o < O; o++) {
                float d = dout[(size_t)b * O + o];
                const float *wrow = weight + (size_t)o * I;
                for (int i = 0; i < I; i++)
                    dx[i] += d * wrow[i];
            }
        }
    }
    for (int o = 0; o < O; o++) {
        float *dwrow = dweight + (size_t)o * I;         // (I)
        double db = 0.0;
        for (int b = 0; b < B; b++) {
            float d = dout[(size_t)b * O + o];
            const float *x = inp + (size_t)b * I;
            db += d;
            for (int i = 0; i < I; i++)
                dwrow[i] += d * x[i];
        }
        if (dbias)
            dbias[o] += (float)db;
    }
}
