/*
 * test_layers.c - the general layer kernels: hand-computed small cases and
 * central finite-difference gradient checks on odd shapes (k=5 p=2,
 * stride 2, 7x9 inputs, 3 and 5 channels), for every layer kind and for a
 * whole small model.
 *
 * The kernels are float32. A check differentiates the scalar
 * L = sum(out * r) for fixed random weights r, summed in double, so that
 * the float rounding of outputs the perturbation does not touch cancels
 * exactly between L(x + eps) and L(x - eps). Inputs of ReLU and max-pool
 * are drawn on a grid with spacing 0.05 > 2 eps, so no perturbation
 * crosses a kink or a tie; for the layers that are linear in what is
 * perturbed the central difference is exact up to rounding.
 */
#include "test.h"

#include "layers/layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static float *fvec(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    return v;
}

static void fill_uniform(dn_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * dn_rng_uniform(r);
}

/* Distinct values k * 0.05 + 0.025 for a random permutation of k, centred
 * on zero: no two are closer than 0.05 and none is within 0.025 of 0. */
static void fill_grid(dn_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)i - (double)(n / 2)) * 0.05f + 0.025f;
    for (size_t i = n; i > 1; i--) {
        size_t j = dn_rng_below(r, (uint32_t)i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

static void expect_near(const char *what, const float *got, const float *want, size_t n,
                        double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol))
            fail_msg("%s[%zu] = %.9g, expected %.9g", what, i, got[i], want[i]);
}

typedef double (*loss_fn)(void *ctx);

/* Compares the analytic gradient ana of loss(ctx) with respect to x (n
 * values) with central differences. Fails on any element outside
 * atol + rtol * |ana|, and if the analytic gradient is (near) all zero or
 * non-zero in fewer than 1/8 of the places (max-pool's is sparse by
 * nature), so that a backward writing nothing cannot pass. */
static void gradcheck(const char *what, loss_fn loss, void *ctx, float *x, const float *ana,
                      size_t n, float eps, double rtol, double atol)
{
    double maxg = 0.0, worst = 0.0;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        maxg = fmax(maxg, fabs(ana[i]));
        nonzero += fabs(ana[i]) > 1e-6;
    }
    if (!(maxg > 1e-3) || nonzero * 8 < n)
        fail_msg("%s: the analytic gradient is trivial (max %g, %zu of %zu non-zero)", what,
                 maxg, nonzero, n);
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss(ctx);
        x[i] = keep - eps;
        double lm = loss(ctx);
        x[i] = keep;
        /* The step actually taken in float, not the nominal eps. */
        double h = (double)(keep + eps) - (double)(keep - eps);
        double num = (lp - lm) / h;
        double err = fabs(num - ana[i]);
        worst = fmax(worst, err / (atol + rtol * fabs(ana[i])));
        if (!(err <= atol + rtol * fabs(ana[i])))
            fail_msg("%s[%zu]: analytic %.7g, numerical %.7g", what, i, ana[i], num);
    }
    /* DN_TEST_VERBOSE=1 shows how close each check came to its limit. */
    if (getenv("DN_TEST_VERBOSE"))
        printf("  %-40s worst error / tolerance %.3f\n", what, worst);
}

static double dot(const float *a, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * r[i];
    return s;
}

/* ------------------------------------------------------------------------ */
/* Conv2d                                                                   */
/* ------------------------------------------------------------------------ */

static void test_conv_hand_plus(void **state)
{
    (void)state;
    /* A "plus" kernel with padding 1 on 1..9: each output is the pixel plus
     * its in-image 4-neighbours plus the bias. */
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[9] = {0, 1, 0, 1, 1, 1, 0, 1, 0};
    const float bias[1] = {0.5f};
    const float want[9] = {7.5f, 11.5f, 11.5f, 17.5f, 25.5f, 23.5f, 19.5f, 29.5f, 23.5f};
    float out[9];
    dn_conv2d_forward(out, in, w, bias, 1, 1, 3, 3, 1, 3, 1, 1);
    expect_near("out", out, want, 9, 0.0);

    /* Backward with dout = 1 everywhere: dbias = 9; dinp counts the taps
     * covering each pixel; dweight sums the pixels under each tap. */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const float want_dinp[9] = {3, 4, 3, 4, 5, 4, 3, 4, 3};
    const float want_dw[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    float dinp[9], dw[9] = {0}, db[1] = {0};
    dn_conv2d_backward(dinp, dw, db, ones, in, w, 1, 1, 3, 3, 1, 3, 1, 1);
    expect_near("dinp", dinp, want_dinp, 9, 0.0);
    expect_near("dweight", dw, want_dw, 9, 0.0);
    assert_true(db[0] == 9.0f);
    /* Parameter gradients accumulate; the input gradient is overwritten. */
    dn_conv2d_backward(dinp, dw, db, ones, in, w, 1, 1, 3, 3, 1, 3, 1, 1);
    assert_true(dw[4] == 90.0f && db[0] == 18.0f && dinp[4] == 5.0f);
}

static void test_conv_hand_no_flip(void **state)
{
    (void)state;
    /* Only the top-left tap set: PyTorch's Conv2d is a cross-correlation,
     * so out[y][x] = in[y-1][x-1], not in[y+1][x+1]. */
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    const float want[9] = {0, 0, 0, 0, 1, 2, 0, 4, 5};
    float out[9];
    dn_conv2d_forward(out, in, w, NULL, 1, 1, 3, 3, 1, 3, 1, 1);
    expect_near("out", out, want, 9, 0.0);
}

static void test_conv_hand_stride(void **state)
{
    (void)state;
    /* 4x5 input, 2x2 ones kernel, stride 2: 2x2 output of block sums (the
     * last column is dropped, PyTorch's floor rule); 2 input channels
     * (second one = 10 x the first) and 2 output channels (weights 1, -1). */
    float in[40];
    for (int i = 0; i < 20; i++) {
        in[i] = (float)(i + 1);
        in[20 + i] = 10.0f * (float)(i + 1);
    }
    float w[16];
    for (int i = 0; i < 8; i++) {
        w[i] = 1.0f;
        w[8 + i] = -1.0f;
    }
    const float want[8] = {176, 264, 616, 704, -176, -264, -616, -704};
    float out[8];
    dn_conv2d_forward(out, in, w, NULL, 1, 2, 4, 5, 2, 2, 0, 2);
    expect_near("out", out, want, 8, 0.0);
}

typedef struct conv_ctx {
    int B, C, H, W, O, k, pad, stride;
    float *in, *w, *b, *out, *r;
    size_t n_out;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    dn_conv2d_forward(c->out, c->in, c->w, c->b, c->B, c->C, c->H, c->W, c->O, c->k, c->pad,
                      c->stride);
    return dot(c->out, c->r, c->n_out);
}

static void conv_gradcheck(int B, int C, int H, int W, int O, int k, int pad, int stride)
{
    char what[96];
    dn_rng rng;
    dn_rng_seed(&rng, (uint64_t)(B * 1000 + C * 100 + k * 10 + stride));
    int OH = dn_window_out(H, k, pad, stride), OW = dn_window_out(W, k, pad, stride);
    assert_true(OH > 0 && OW > 0);
    conv_ctx c = {B, C, H, W, O, k, pad, stride, NULL, NULL, NULL, NULL, NULL, 0};
    size_t n_in = (size_t)B * C * H * W, n_w = (size_t)O * C * k * k;
    c.n_out = (size_t)B * O * OH * OW;
    c.in = fvec(n_in);
    c.w = fvec(n_w);
    c.b = fvec((size_t)O);
    c.out = fvec(c.n_out);
    c.r = fvec(c.n_out);
    fill_uniform(&rng, c.in, n_in, -1, 1);
    fill_uniform(&rng, c.w, n_w, -0.5f, 0.5f);
    fill_uniform(&rng, c.b, (size_t)O, -0.5f, 0.5f);
    fill_uniform(&rng, c.r, c.n_out, -1, 1);
    float *dinp = fvec(n_in), *dw = fvec(n_w), *db = fvec((size_t)O);
    dn_conv2d_backward(dinp, dw, db, c.r, c.in, c.w, B, C, H, W, O, k, pad, stride);
    snprintf(what, sizeof what, "conv B%d C%d %dx%d O%d k%d p%d s%d", B, C, H, W, O, k, pad,
             stride);
    size_t len = strlen(what);
    snprintf(what + len, sizeof what - len, " dinp");
    gradcheck(what, conv_loss, &c, c.in, dinp, n_in, 0.05f, 1e-3, 2e-5);
    snprintf(what + len, sizeof what - len, " dweight");
    gradcheck(what, conv_loss, &c, c.w, dw, n_w, 0.05f, 1e-3, 2e-5);
    snprintf(what + len, sizeof what - len, " dbias");
    gradcheck(what, conv_loss, &c, c.b, db, (size_t)O, 0.05f, 1e-3, 2e-5);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.r);
    free(dinp), free(dw), free(db);
}

static void test_conv_gradcheck(void **state)
{
    (void)state;
    conv_gradcheck(2, 3, 7, 9, 5, 5, 2, 1);  /* the lecture's conv2 kind */
    conv_gradcheck(1, 5, 7, 9, 3, 3, 1, 2);  /* stride 2, odd sizes */
    conv_gradcheck(2, 1, 6, 5, 2, 2, 0, 2);  /* even kernel, no padding */
    conv_gradcheck(1, 2, 5, 4, 3, 3, 2, 3);  /* padding 2 > k/2, stride 3 */
    conv_gradcheck(3, 3, 1, 7, 4, 1, 0, 1);  /* 1x1 kernel on a 1-row image */
}

/* ------------------------------------------------------------------------ */
/* ReLU                                                                     */
/* ------------------------------------------------------------------------ */

static void test_relu_hand(void **state)
{
    (void)state;
    const float in[4] = {-1.0f, 0.0f, 2.0f, -0.0f};
    const float want[4] = {0, 0, 2, 0};
    const float dout[4] = {5, 6, 7, 8};
    const float want_d[4] = {0, 0, 7, 0}; /* zero gradient at 0, as PyTorch */
    float out[4], d[4];
    dn_relu_forward(out, in, 4);
    dn_relu_backward(d, dout, in, 4);
    expect_near("out", out, want, 4, 0.0);
    expect_near("dinp", d, want_d, 4, 0.0);
}

typedef struct relu_ctx {
    float *in, *out, *r;
    size_t n;
} relu_ctx;

static double relu_loss(void *p)
{
    relu_ctx *c = p;
    dn_relu_forward(c->out, c->in, c->n);
    return dot(c->out, c->r, c->n);
}

static void test_relu_gradcheck(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 11);
    relu_ctx c = {fvec(3 * 5 * 7), fvec(3 * 5 * 7), fvec(3 * 5 * 7), 3 * 5 * 7};
    fill_grid(&rng, c.in, c.n);
    fill_uniform(&rng, c.r, c.n, -1, 1);
    float *d = fvec(c.n);
    dn_relu_backward(d, c.r, c.in, c.n);
    gradcheck("relu dinp", relu_loss, &c, c.in, d, c.n, 0.01f, 1e-3, 1e-4);
    free(c.in), free(c.out), free(c.r), free(d);
}

/* ------------------------------------------------------------------------ */
/* Max-pool                                                                 */
/* ------------------------------------------------------------------------ */

static void test_maxpool_hand_ties(void **state)
{
    (void)state;
    /* Window 1 holds three 3s: the first in row-major order (index 0)
     * wins; window 2 holds three 2s: index 3 (row 0) beats 6 and 7. */
    const float in[8] = {3, 3, 1, 2, 3, 0, 2, 2};
    float out[2];
    int32_t arg[2];
    dn_maxpool_forward(out, arg, in, 1, 1, 2, 4, 2, 0, 2);
    assert_true(out[0] == 3.0f && out[1] == 2.0f);
    assert_int_equal(arg[0], 0);
    assert_int_equal(arg[1], 3);
    const float dout[2] = {10, 20};
    const float want[8] = {10, 0, 0, 20, 0, 0, 0, 0};
    float d[8];
    dn_maxpool_backward(d, dout, arg, 1, 1, 2, 4, 1, 2);
    expect_near("dinp", d, want, 8, 0.0);
}

static void test_maxpool_hand_nan(void **state)
{
    (void)state;
    /* A NaN always wins and a later NaN replaces an earlier one (PyTorch
     * updates when val > max || isnan(val)): index 2, not 1. */
    const float in[4] = {1.0f, NAN, NAN, 0.0f};
    float out[1];
    int32_t arg[1];
    dn_maxpool_forward(out, arg, in, 1, 1, 2, 2, 2, 0, 2);
    assert_true(isnan(out[0]));
    assert_int_equal(arg[0], 2);
}

static void test_maxpool_hand_padding(void **state)
{
    (void)state;
    /* Padding counts as -inf: an all-negative image pools to its values,
     * not to 0; windows overlap (k3 s1 p1), so the one maximum in the
     * centre collects the gradient of all nine outputs. */
    float in[9];
    for (int i = 0; i < 9; i++)
        in[i] = -5.0f - (float)i;
    in[4] = -1.0f;
    float out[9], d[9], dout[9];
    int32_t arg[9];
    dn_maxpool_forward(out, arg, in, 1, 1, 3, 3, 3, 1, 1);
    for (int i = 0; i < 9; i++) {
        assert_true(out[i] == -1.0f);
        assert_int_equal(arg[i], 4);
        dout[i] = (float)(i + 1);
    }
    dn_maxpool_backward(d, dout, arg, 1, 1, 3, 3, 3, 3);
    for (int i = 0; i < 9; i++)
        assert_true(d[i] == (i == 4 ? 45.0f : 0.0f));

    /* k3 s2 p1 on a 1x3 image of equal values: the top-left window starts
     * in the padding; its first in-image pixel wins the tie. */
    const float flat[3] = {-2, -2, -2};
    float o2[2];
    int32_t a2[2];
    dn_maxpool_forward(o2, a2, flat, 1, 1, 1, 3, 3, 1, 2);
    assert_true(o2[0] == -2.0f && o2[1] == -2.0f);
    assert_int_equal(a2[0], 0);
    assert_int_equal(a2[1], 1);
}

typedef struct pool_ctx {
    int B, C, H, W, k, pad, stride;
    float *in, *out, *r;
    int32_t *arg;
    size_t n_out;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    dn_maxpool_forward(c->out, c->arg, c->in, c->B, c->C, c->H, c->W, c->k, c->pad, c->stride);
    return dot(c->out, c->r, c->n_out);
}

static void pool_gradcheck(int B, int C, int H, int W, int k, int pad, int stride)
{
    dn_rng rng;
    dn_rng_seed(&rng, (uint64_t)(H * 100 + W * 10 + k));
    int OH = dn_window_out(H, k, pad, stride), OW = dn_window_out(W, k, pad, stride);
    pool_ctx c = {B, C, H, W, k, pad, stride, NULL, NULL, NULL, NULL, 0};
    size_t n_in = (size_t)B * C * H * W;
    c.n_out = (size_t)B * C * OH * OW;
    c.in = fvec(n_in);
    c.out = fvec(c.n_out);
    c.r = fvec(c.n_out);
    c.arg = calloc(c.n_out, sizeof *c.arg);
    assert_non_null(c.arg);
    fill_grid(&rng, c.in, n_in);
    fill_uniform(&rng, c.r, c.n_out, -1, 1);
    pool_loss(&c);
    float *d = fvec(n_in);
    dn_maxpool_backward(d, c.r, c.arg, B, C, H, W, OH, OW);
    char what[64];
    snprintf(what, sizeof what, "maxpool %dx%d k%d p%d s%d dinp", H, W, k, pad, stride);
    gradcheck(what, pool_loss, &c, c.in, d, n_in, 0.01f, 1e-3, 1e-4);
    free(c.in), free(c.out), free(c.r), free(c.arg), free(d);
}

static void test_maxpool_gradcheck(void **state)
{
    (void)state;
    pool_gradcheck(2, 3, 7, 9, 3, 1, 2); /* overlapping windows, padding */
    pool_gradcheck(1, 5, 7, 9, 2, 0, 2); /* the lecture's kind, odd sizes */
    pool_gradcheck(2, 2, 6, 5, 3, 1, 1); /* stride 1: heavy overlap */
}

/* ------------------------------------------------------------------------ */
/* Dropout2d                                                                */
/* ------------------------------------------------------------------------ */

static void test_dropout2d_mask(void **state)
{
    (void)state;
    enum { N = 20000 };
    float *s = fvec(N), *t = fvec(N);
    /* p = 0.5: about half zero, the rest exactly 2; deterministic. */
    dn_dropout2d_mask(42, 3, N, 0.5f, s);
    size_t zeros = 0;
    for (int i = 0; i < N; i++) {
        assert_true(s[i] == 0.0f || s[i] == 2.0f);
        zeros += s[i] == 0.0f;
    }
    assert_true(zeros > N / 2 - 400 && zeros < N / 2 + 400); /* ~5.7 sigma */
    dn_dropout2d_mask(42, 3, N, 0.5f, t);
    assert_memory_equal(s, t, N * sizeof *s);
    /* Another sample or another layer draws another mask. */
    dn_dropout2d_mask(43, 3, N, 0.5f, t);
    assert_true(memcmp(s, t, N * sizeof *s) != 0);
    dn_dropout2d_mask(42, 7, N, 0.5f, t);
    assert_true(memcmp(s, t, N * sizeof *s) != 0);
    /* The first channels do not depend on how many channels there are. */
    dn_dropout2d_mask(42, 3, 5, 0.5f, t);
    assert_memory_equal(s, t, 5 * sizeof *s);
    /* p = 0.25 keeps 3/4 scaled by 4/3. */
    dn_dropout2d_mask(1, 0, N, 0.25f, s);
    zeros = 0;
    for (int i = 0; i < N; i++) {
        assert_true(s[i] == 0.0f || s[i] == 1.0f / 0.75f);
        zeros += s[i] == 0.0f;
    }
    assert_true(zeros > N / 4 - 400 && zeros < N / 4 + 400);
    /* p = 0 keeps everything as is, p = 1 drops everything (no inf). */
    dn_dropout2d_mask(1, 0, N, 0.0f, s);
    dn_dropout2d_mask(1, 0, N, 1.0f, t);
    for (int i = 0; i < N; i++)
        assert_true(s[i] == 1.0f && t[i] == 0.0f);
    free(s);
    free(t);
}

static void test_dropout2d_hand(void **state)
{
    (void)state;
    /* B=2, C=2, 3 pixels: each (sample, channel) plane scaled as one. */
    const float in[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const float scale[4] = {2, 0, 0, 2};
    const float want[12] = {2, 4, 6, 0, 0, 0, 0, 0, 0, 20, 22, 24};
    float out[12], d[12];
    dn_dropout2d_forward(out, in, scale, 2, 2, 3);
    expect_near("out", out, want, 12, 0.0);
    dn_dropout2d_backward(d, in, scale, 2, 2, 3);
    expect_near("dinp", d, want, 12, 0.0);
    /* No scale: the identity (eval mode). */
    dn_dropout2d_forward(out, in, NULL, 2, 2, 3);
    expect_near("eval", out, in, 12, 0.0);
}

typedef struct drop_ctx {
    int B, C, HW;
    float *in, *scale, *out, *r;
} drop_ctx;

static double drop_loss(void *p)
{
    drop_ctx *c = p;
    dn_dropout2d_forward(c->out, c->in, c->scale, c->B, c->C, c->HW);
    return dot(c->out, c->r, (size_t)c->B * c->C * c->HW);
}

static void test_dropout2d_gradcheck(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 5);
    drop_ctx c = {3, 5, 7 * 9, NULL, NULL, NULL, NULL};
    size_t n = (size_t)c.B * c.C * c.HW;
    c.in = fvec(n), c.out = fvec(n), c.r = fvec(n), c.scale = fvec((size_t)c.B * c.C);
    for (int b = 0; b < c.B; b++)
        dn_dropout2d_mask((uint64_t)b, 3, c.C, 0.4f, c.scale + b * c.C);
    fill_uniform(&rng, c.in, n, -1, 1);
    fill_uniform(&rng, c.r, n, -1, 1);
    float *d = fvec(n);
    dn_dropout2d_backward(d, c.r, c.scale, c.B, c.C, c.HW);
    gradcheck("dropout2d dinp", drop_loss, &c, c.in, d, n, 0.05f, 1e-3, 1e-4);
    free(c.in), free(c.out), free(c.r), free(c.scale), free(d);
}

/* ------------------------------------------------------------------------ */
/* Linear                                                                   */
/* ------------------------------------------------------------------------ */

static void test_linear_hand(void **state)
{
    (void)state;
    /* weight (O=3, I=2) as PyTorch: out[o] = sum_i w[o][i] x[i] + b[o]. */
    const float w[6] = {1, 2, 3, 4, 5, 6};
    const float b[3] = {0.5f, 0.25f, 0.125f};
    const float x[2] = {1, -1};
    const float want[3] = {-0.5f, -0.75f, -0.875f};
    float out[3];
    dn_linear_forward(out, x, w, b, 1, 2, 3);
    expect_near("out", out, want, 3, 0.0);
    const float dout[3] = {1, 0, -1};
    const float want_dx[2] = {-4, -4};
    const float want_dw[6] = {1, -1, 0, 0, -1, 1};
    float dx[2], dw[6] = {0}, db[3] = {0};
    dn_linear_backward(dx, dw, db, dout, x, w, 1, 2, 3);
    expect_near("dinp", dx, want_dx, 2, 0.0);
    expect_near("dweight", dw, want_dw, 6, 0.0);
    expect_near("dbias", db, dout, 3, 0.0);
}

typedef struct lin_ctx {
    int B, I, O;
    float *in, *w, *b, *out, *r;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    dn_linear_forward(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
    return dot(c->out, c->r, (size_t)c->B * c->O);
}

static void test_linear_gradcheck(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 9);
    lin_ctx c = {3, 7, 5, NULL, NULL, NULL, NULL, NULL};
    c.in = fvec(21), c.w = fvec(35), c.b = fvec(5), c.out = fvec(15), c.r = fvec(15);
    fill_uniform(&rng, c.in, 21, -1, 1);
    fill_uniform(&rng, c.w, 35, -1, 1);
    fill_uniform(&rng, c.b, 5, -1, 1);
    fill_uniform(&rng, c.r, 15, -1, 1);
    float *dx = fvec(21), *dw = fvec(35), *db = fvec(5);
    dn_linear_backward(dx, dw, db, c.r, c.in, c.w, 3, 7, 5);
    gradcheck("fc dinp", lin_loss, &c, c.in, dx, 21, 0.05f, 1e-3, 1e-4);
    gradcheck("fc dweight", lin_loss, &c, c.w, dw, 35, 0.05f, 1e-3, 1e-4);
    gradcheck("fc dbias", lin_loss, &c, c.b, db, 5, 0.05f, 1e-3, 1e-4);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.r), free(dx), free(dw), free(db);
}

/* ------------------------------------------------------------------------ */
/* log_softmax and NLL                                                      */
/* ------------------------------------------------------------------------ */

static void test_logsoftmax_hand(void **state)
{
    (void)state;
    /* Equal logits: log(1/n). Huge logits: no overflow, exact 0 / -1000. */
    const float in[6] = {1, 1, 1000, 0, -3, 7};
    float out[6];
    dn_logsoftmax_forward(out, in, 3, 2);
    const float want[6] = {-(float)log(2.0), -(float)log(2.0), 0, -1000,
                           (float)(-10.0 - log1p(exp(-10.0))), (float)(-log1p(exp(-10.0)))};
    expect_near("logp", out, want, 6, 1e-6);
    /* NLL: mean of -logp[label]; a bad label gives NaN. */
    const uint8_t labels[3] = {0, 1, 1};
    double nll = dn_nll_forward(out, labels, 3, 2);
    assert_true(fabs(nll - (log(2.0) + 1000.0 + log1p(exp(-10.0))) / 3.0) < 1e-4);
    const uint8_t bad[1] = {2};
    assert_true(isnan(dn_nll_forward(out, bad, 1, 2)));
    /* Backward of log_softmax + NLL is softmax - onehot, times scale. */
    float dlogp[6], dx[6];
    dn_nll_backward(dlogp, labels, 3, 2, 0.5f);
    const float want_dlogp[6] = {-0.5f, 0, 0, -0.5f, 0, -0.5f};
    expect_near("dlogp", dlogp, want_dlogp, 6, 0.0);
    dn_logsoftmax_backward(dx, dlogp, out, 3, 2);
    const float want_dx[6] = {-0.25f, 0.25f, 0.5f, -0.5f,
                              (float)(0.5 * exp(want[4])), (float)(0.5 * exp(want[5]) - 0.5)};
    expect_near("dx", dx, want_dx, 6, 1e-6);
}

typedef struct lsm_ctx {
    int B, n;
    float *in, *out;
    const uint8_t *labels;
} lsm_ctx;

static double lsm_loss(void *p)
{
    lsm_ctx *c = p;
    dn_logsoftmax_forward(c->out, c->in, c->B, c->n);
    return dn_nll_forward(c->out, c->labels, c->B, c->n);
}

static void test_logsoftmax_nll_gradcheck(void **state)
{
    (void)state;
    dn_rng rng;
    dn_rng_seed(&rng, 3);
    const uint8_t labels[3] = {4, 0, 6};
    lsm_ctx c = {3, 7, fvec(21), fvec(21), labels};
    fill_uniform(&rng, c.in, 21, -3, 3);
    float *dlogp = fvec(21), *dx = fvec(21);
    lsm_loss(&c);
    dn_nll_backward(dlogp, labels, 3, 7, 1.0f / 3);
    dn_logsoftmax_backward(dx, dlogp, c.out, 3, 7);
    gradcheck("logsoftmax+nll dinp", lsm_loss, &c, c.in, dx, 21, 3e-3f, 2e-3, 1e-4);

    /* log_softmax alone, under a random upstream gradient. */
    float *r = fvec(21), *d = fvec(21);
    fill_uniform(&rng, r, 21, -1, 1);
    dn_logsoftmax_backward(d, r, c.out, 3, 7);
    /* d/dx of sum(logsoftmax(x) * r) = r - softmax * sum(r), row by row. */
    for (int b = 0; b < 3; b++) {
        double s = 0.0;
        for (int i = 0; i < 7; i++)
            s += r[b * 7 + i];
        for (int i = 0; i < 7; i++) {
            double want = r[b * 7 + i] - exp((double)c.out[b * 7 + i]) * s;
            assert_true(fabs(d[b * 7 + i] - want) < 1e-6);
        }
    }
    free(c.in), free(c.out), free(dlogp), free(dx), free(r), free(d);
}

/* ------------------------------------------------------------------------ */
/* A whole small model, through the public API                              */
/* ------------------------------------------------------------------------ */

typedef struct model_ctx {
    dn_model *m;
    dn_work *w;
    const float *x;
    const uint8_t *labels;
    int B;
} model_ctx;

static double model_loss(void *p)
{
    model_ctx *c = p;
    assert_non_null(dn_model_forward(c->m, c->w, c->x, c->B, DN_MODE_TRAIN_FIXED_MASK, NULL));
    return dn_model_loss(c->m, c->w, c->labels, c->B);
}

static void test_model_gradcheck(void **state)
{
    (void)state;
    /* Every layer kind, 3 and 5 channels, k5 p2 s2, a 7x9 input. */
    const char *spec = "conv 5 k3 p1, relu, maxpool 2, dropout2d 0.4, conv 3 k5 p2 s2, relu, "
                       "flatten, fc 6, relu, fc 4, logsoftmax";
    dn_error err = {0};
    dn_model *m = dn_model_new(spec, (dn_shape){3, 7, 9}, 17, &err);
    if (!m)
        fail_msg("%s", err.msg);
    enum { B = 3 };
    dn_work *w = dn_work_new(m, B);
    assert_non_null(w);
    dn_work_set_reference(w, 1);
    dn_rng rng;
    dn_rng_seed(&rng, 21);
    float x[B * 3 * 7 * 9];
    fill_uniform(&rng, x, sizeof x / sizeof x[0], -1.5f, 1.5f);
    const uint8_t labels[B] = {1, 3, 0};
    int drop = dn_model_find(m, "drop1");
    assert_true(drop >= 0);
    float *mask = dn_work_mask(w, drop); // (B, 5)
    for (int b = 0; b < B; b++)
        dn_dropout2d_mask((uint64_t)b + 100, drop, 5, 0.4f, mask + b * 5);
    model_ctx c = {m, w, x, labels, B};
    model_loss(&c);
    float *g = fvec(m->n_params);
    dn_model_backward(m, w, labels, B, 1.0f / B, g);
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        if (!L->w_len)
            continue;
        char what[64];
        snprintf(what, sizeof what, "model %s.weight", L->name);
        gradcheck(what, model_loss, &c, m->params + L->w_off, g + L->w_off, L->w_len, 2e-3f,
                  2e-3, 4e-5);
        snprintf(what, sizeof what, "model %s.bias", L->name);
        gradcheck(what, model_loss, &c, m->params + L->b_off, g + L->b_off, L->b_len, 2e-3f,
                  2e-3, 4e-5);
    }
    free(g);
    dn_work_free(w);
    dn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_hand_plus),
        cmocka_unit_test(test_conv_hand_no_flip),
        cmocka_unit_test(test_conv_hand_stride),
        cmocka_unit_test(test_conv_gradcheck),
        cmocka_unit_test(test_relu_hand),
        cmocka_unit_test(test_relu_gradcheck),
        cmocka_unit_test(test_maxpool_hand_ties),
        cmocka_unit_test(test_maxpool_hand_nan),
        cmocka_unit_test(test_maxpool_hand_padding),
        cmocka_unit_test(test_maxpool_gradcheck),
        cmocka_unit_test(test_dropout2d_mask),
        cmocka_unit_test(test_dropout2d_hand),
        cmocka_unit_test(test_dropout2d_gradcheck),
        cmocka_unit_test(test_linear_hand),
        cmocka_unit_test(test_linear_gradcheck),
        cmocka_unit_test(test_logsoftmax_hand),
        cmocka_unit_test(test_logsoftmax_nll_gradcheck),
        cmocka_unit_test(test_model_gradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
