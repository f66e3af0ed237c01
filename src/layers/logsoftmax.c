/*
 * logsoftmax.c - log_softmax over the last axis and the negative
 * log-likelihood loss, forward and backward.
 */
#include "layers/layers.h"

#include <math.h>
#include <string.h>

void dn_logsoftmax_forward(float *out, const float *inp, int B, int n)
{
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * n;   // (n)
        float *y = out + (size_t)b * n;         // (n)
        /* Subtracting the max keeps exp() in range whatever the logits;
         * the sum runs in double because a confident network puts almost
         * all of it in one term. */
        float mx = x[0];
        for (int i = 1; i < n; i++)
            if (x[i] > mx)
                mx = x[i];
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += exp((double)x[i] - mx);
        double lse = mx + log(s);
        for (int i = 0; i < n; i++)
            y[i] = (float)((double)x[i] - lse);
    }
}

void dn_logsoftmax_backward(float *dinp, const float *dout, const float *out,
                            int B, int n)
{
    for (int b = 0; b < B; b++) {
        const float *dy = dout + (size_t)b * n;
        const float *y = out + (size_t)b * n;
        float *dx = dinp + (size_t)b * n;
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += dy[i];
        for (int i = 0; i < n; i++)
            dx[i] = (float)(dy[i] - exp((double)y[i]) * s);
    }
}

double dn_nll_forward(const float *logp, const uint8_t *labels, int B, int n)
{
    double s = 0.0;
    for (int b = 0; b < B; b++) {
        if (labels[b] >= n)
            return NAN;
        s -= logp[(size_t)b * n + labels[b]];
    }
    return B > 0 ? s / B : 0.0;
}

void dn_nll_backward(float *dlogp, const uint8_t *labels, int B, int n,
                     float scale)
{
    memset(dlogp, 0, (size_t)B * n * sizeof *dlogp);
    for (int b = 0; b < B; b++)
        if (labels[b] < n)
            dlogp[(size_t)b * n + labels[b]] = -scale;
}
