/*
 * test_fast.c - the fast kernels (src/fast/) against the general reference
 * kernels, on every instruction set this machine runs, for a set of specs
 * that covers every layer option: kernels 1 to 7, padding 0 to 3, strides
 * 1 and 2, odd and non-square sizes, channel counts that are not a
 * multiple of the vector width, rows of one, two and three vectors, pools
 * that do not divide their input, max-pooling with padding, pooling and
 * ReLU and dropout on their own, dropout first, fully connected layers of
 * any size, with and without a final log-softmax.
 *
 * Forward outputs must agree within 1e-5 (relative, or absolute below 1),
 * every parameter gradient within 1e-4 of its tensor's largest magnitude;
 * dropout masks bit for bit; and the dropout-sparse kernels must give
 * exactly the values of the dense computation (the skipped terms are exact
 * zeros). Batches of 1, 3 and 9 (more than one block of 8); evaluation,
 * training with drawn masks, fixed masks with every channel dropped, none,
 * alternate ones, one kept. Inputs look like MNIST: a flat background (so
 * pooling windows tie, and the first-maximum rule matters) with random
 * strokes.
 */
#include "test.h"

#include "fast.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 9

typedef struct spec_case {
    const char *name, *spec;
    dn_shape input;
} spec_case;

static const spec_case k_cases[] = {
    {"lecture", DN_DEFAULT_SPEC, {1, 28, 28}},
    {"wide", "conv 16 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, conv 32 k5 p2 s1, relu, "
             "maxpool 2, dropout2d 0.5, flatten, fc 128, relu, fc 10, logsoftmax", {1, 28, 28}},
    {"deep", "conv 5 k3 p1, relu, conv 7 k3 p1, relu, maxpool 2, dropout2d 0.25, "
             "conv 9 k3 p1, relu, maxpool 2, dropout2d 0.25, flatten, fc 20, relu, "
             "fc 10, logsoftmax", {1, 28, 28}},
    /* k7 p3 s2, padded pool k3 s2 p1, k1, k2 p1 and a pool of an odd map,
     * two input channels, a non-square input. */
    {"strided", "conv 3 k7 p3 s2, relu, maxpool k3 s2 p1, dropout2d 0.3, conv 17 k1 p0, "
                "relu, conv 5 k2 p1 s1, relu, maxpool 2, flatten, fc 13, relu, "
                "fc 7, logsoftmax", {2, 19, 23}},
    /* k4 p2 s2, k6 p3, a pool without ReLU before it, ReLU and dropout on
     * their own, k5 s2 down to 1x1. */
    {"odd", "conv 4 k4 p2 s2, conv 6 k6 p3 s1, relu, maxpool k3 s3, relu, dropout2d 0.5, "
            "conv 3 k5 p0 s2, flatten, fc 10, logsoftmax", {1, 29, 27}},
    /* Dropout first, k3 p0 into a pool, no final log-softmax. */
    {"plain", "dropout2d 0.2, conv 20 k3 p1, relu, dropout2d 0.5, conv 19 k3 p0, maxpool 2, "
              "relu, flatten, fc 33, relu, fc 10", {1, 16, 16}},
    /* Rows of three vectors, three input channels, padding 2 and 3 with
     * k5 and k7. */
    {"broad", "conv 6 k3 p1, relu, maxpool 2, conv 5 k5 p2, relu, conv 4 k7 p3 s1, "
              "relu, dropout2d 0.5, flatten, fc 10, logsoftmax", {3, 36, 40}},
};
#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))

typedef struct fixture {
    dn_model *m;
    dn_work *ref;       /* general kernels */
    dn_work *fast;      /* fast kernels, sparse */
    dn_work *dense;     /* fast kernels, no skipping */
    size_t pix;         /* input floats per sample */
    int classes;
    float *x;           // (MAXB, input)
    uint8_t y[MAXB];
    uint64_t keys[MAXB];
    float *g_ref, *g_fast, *g_dense; // (n_params)
} fixture;

static void fill_inputs(fixture *f, uint64_t seed)
{
    dn_rng r;
    dn_rng_seed(&r, seed);
    const float bg = (0.0f - DN_MNIST_MEAN) / DN_MNIST_STD;
    for (size_t i = 0; i < MAXB * f->pix; i++)
        f->x[i] = dn_rng_uniform(&r) < 0.7f ? bg : bg + 3.2f * dn_rng_uniform(&r);
    /* Sample 1 is all background: every window ties. */
    for (size_t i = 0; i < f->pix; i++)
        f->x[f->pix + i] = bg;
    for (int b = 0; b < MAXB; b++) {
        f->y[b] = (uint8_t)dn_rng_below(&r, (uint32_t)f->classes);
        f->keys[b] = dn_key(seed, DN_STREAM_DROPOUT, 7, (uint64_t)b);
    }
}

static fixture *fixture_new(const spec_case *c)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    dn_error err;
    f->m = dn_model_new(c->spec, c->input, 42, &err);
    if (!f->m)
        fail_msg("%s: %s", c->name, err.msg);
    f->ref = dn_work_new(f->m, MAXB);
    f->fast = dn_work_new(f->m, MAXB);
    f->dense = dn_work_new(f->m, MAXB);
    assert_true(f->ref && f->fast && f->dense);
    assert_non_null(dn_work_fast(f->fast));
    dn_work_set_reference(f->ref, 1);
    assert_int_equal(dn_fast_set_sparse(dn_work_fast(f->dense), 0), 0);
    f->pix = (size_t)c->input.c * c->input.h * c->input.w;
    f->classes = dn_model_classes(f->m);
    f->x = malloc(MAXB * f->pix * sizeof *f->x);
    f->g_ref = malloc(f->m->n_params * sizeof(float));
    f->g_fast = malloc(f->m->n_params * sizeof(float));
    f->g_dense = malloc(f->m->n_params * sizeof(float));
    assert_true(f->x && f->g_ref && f->g_fast && f->g_dense);
    fill_inputs(f, 5);
    return f;
}

static void fixture_free(fixture *f)
{
    dn_work_free(f->ref);
    dn_work_free(f->fast);
    dn_work_free(f->dense);
    dn_model_free(f->m);
    free(f->x);
    free(f->g_ref);
    free(f->g_fast);
    free(f->g_dense);
    free(f);
}

/* Outputs within 1e-5 relative (absolute below magnitude 1). */
static void expect_close_out(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        float tol = 1e-5f * fmaxf(1.0f, fabsf(want[i]));
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s: output %d is %.9g, reference %.9g", what, i, got[i], want[i]);
    }
}

/* Each parameter tensor's gradient within 1e-4 of its largest magnitude. */
static void expect_close_grads(const dn_model *m, const float *got, const float *want,
                               const char *what)
{
    for (int l = m->n_layers - 1; l >= 0; l--) {
        const dn_layer *L = &m->layers[l];
        size_t off[2] = {L->w_off, L->b_off}, len[2] = {L->w_len, L->b_len};
        for (int t = 0; t < 2; t++) {
            float big = 0.0f;
            for (size_t i = 0; i < len[t]; i++)
                big = fmaxf(big, fabsf(want[off[t] + i]));
            for (size_t i = 0; i < len[t]; i++) {
                float a = got[off[t] + i], b = want[off[t] + i];
                if (!(fabsf(a - b) <= 1e-4f * big + 1e-12f))
                    fail_msg("%s: %s.%s[%zu] is %.9g, reference %.9g (largest %.3g)", what,
                             L->name, t ? "bias" : "weight", i, a, b, big);
            }
        }
    }
}

/* Values equal (== , so +0 and -0 agree) element by element. */
static void expect_equal(const float *got, const float *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == want[i]))
            fail_msg("%s: element %zu is %.9g, dense %.9g", what, i, got[i], want[i]);
}

/* Forward and backward on the three works; compares them. */
static void compare(fixture *f, const char *spec, int isa, int B, dn_mode mode, const char *what)
{
    const dn_model *m = f->m;
    char label[200];
    snprintf(label, sizeof label, "%s: %s, %s, B=%d", spec, what, dn_fast_isa_name(isa), B);
    assert_int_equal(dn_fast_set_isa(dn_work_fast(f->fast), isa), isa);
    assert_int_equal(dn_fast_set_isa(dn_work_fast(f->dense), isa), isa);
    const uint64_t *keys = mode == DN_MODE_TRAIN ? f->keys : NULL;
    const float *lr = dn_model_forward(m, f->ref, f->x, B, mode, keys);
    const float *lf = dn_model_forward(m, f->fast, f->x, B, mode, keys);
    const float *ld = dn_model_forward(m, f->dense, f->x, B, mode, keys);
    assert_true(lr && lf && ld);
    /* The fast path ran: it keeps none of the per-layer outputs. */
    const float *a0 = dn_work_act(f->fast, 0);
    size_t n0 = (size_t)B * m->layers[0].out.c * m->layers[0].out.h * m->layers[0].out.w;
    for (size_t i = 0; i < n0; i++)
        if (a0[i] != 0.0f)
            fail_msg("%s: the general kernels ran instead of the fast ones", label);
    expect_close_out(lf, lr, B * f->classes, label);
    expect_equal(lf, ld, (size_t)B * f->classes, label);
    if (mode == DN_MODE_TRAIN)
        for (int l = 0; l < m->n_layers; l++)
            if (m->layers[l].kind == DN_DROPOUT2D)
                assert_memory_equal(dn_work_mask(f->fast, l), dn_work_mask(f->ref, l),
                                    (size_t)B * m->layers[l].in.c * sizeof(float));
    double loss_r = dn_model_loss(m, f->ref, f->y, B), loss_f = dn_model_loss(m, f->fast, f->y, B);
    assert_true(fabs(loss_f - loss_r) <= 1e-5 * fmax(1.0, fabs(loss_r)));

    float scale = 1.0f / (float)B;
    memset(f->g_fast, 0xff, m->n_params * sizeof(float)); /* NaN: must be overwritten */
    memset(f->g_dense, 0xff, m->n_params * sizeof(float));
    dn_model_backward(m, f->ref, f->y, B, scale, f->g_ref);
    dn_model_backward(m, f->fast, f->y, B, scale, f->g_fast);
    dn_model_backward(m, f->dense, f->y, B, scale, f->g_dense);
    expect_close_grads(m, f->g_fast, f->g_ref, label);
    expect_equal(f->g_fast, f->g_dense, m->n_params, label);
    /* The comparison means something: gradients are not all zero. */
    double norm = 0;
    for (size_t i = 0; i < m->n_params; i++)
        norm += fabs(f->g_ref[i]);
    assert_true(norm > 1e-4);
}

/* DN_MODE_INFER keeps nothing for a backward pass (no pooling arg-max,
 * no copy of the input, one sample at a time) and must give DN_MODE_EVAL's
 * bits, dense or sparse; a backward pass after it leaves every gradient 0. */
static void compare_infer(fixture *f, const char *spec, int isa, int B)
{
    const dn_model *m = f->m;
    char label[200];
    snprintf(label, sizeof label, "%s: infer, %s, B=%d", spec, dn_fast_isa_name(isa), B);
    assert_int_equal(dn_fast_set_isa(dn_work_fast(f->fast), isa), isa);
    assert_int_equal(dn_fast_set_isa(dn_work_fast(f->dense), isa), isa);
    size_t n = (size_t)B * f->classes;
    float *want = malloc(n * sizeof *want);
    assert_non_null(want);
    const float *le = dn_model_forward(m, f->fast, f->x, B, DN_MODE_EVAL, NULL);
    assert_non_null(le);
    memcpy(want, le, n * sizeof *want);
    dn_work *ws[2] = {f->fast, f->dense};
    for (int k = 0; k < 2; k++) {
        const float *li = dn_model_forward(m, ws[k], f->x, B, DN_MODE_INFER, NULL);
        assert_non_null(li);
        if (memcmp(li, want, n * sizeof *li))
            fail_msg("%s (%s): not the bits of DN_MODE_EVAL", label, k ? "dense" : "sparse");
        memset(f->g_fast, 0xff, m->n_params * sizeof(float));
        dn_model_backward(m, ws[k], f->y, B, 1.0f, f->g_fast);
        for (size_t i = 0; i < m->n_params; i++)
            if (f->g_fast[i] != 0.0f)
                fail_msg("%s: a backward pass after DN_MODE_INFER wrote gradient %zu", label, i);
    }
    free(want);
}

/* Sets the fixed masks of the three works: per sample, pattern 0 keeps
 * every channel, 1 drops every channel, 2 alternates, 3 keeps one; -1
 * mixes them by sample. */
static void set_masks(fixture *f, int B, int pattern)
{
    dn_work *ws[3] = {f->ref, f->fast, f->dense};
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < f->m->n_layers; l++) {
            if (f->m->layers[l].kind != DN_DROPOUT2D)
                continue;
            int ch = f->m->layers[l].in.c;
            float *mk = dn_work_mask(ws[k], l);
            for (int b = 0; b < B; b++)
                for (int c = 0; c < ch; c++) {
                    int pat = pattern >= 0 ? pattern : (b + l) % 4;
                    float v = pat == 0 ? 2.0f
                              : pat == 1 ? 0.0f
                              : pat == 2 ? (float)((c + b) % 2) * 2.0f
                                         : (c == b % ch ? 2.0f : 0.0f);
                    mk[(size_t)b * ch + c] = v;
                }
        }
}

static int has_dropout(const dn_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind == DN_DROPOUT2D)
            return 1;
    return 0;
}

/* Every comparison for one spec on one instruction set. */
static void run_case(const spec_case *c, int isa)
{
    fixture *f = fixture_new(c);
    int sizes[4] = {1, 3, 8, MAXB};
    for (int i = 0; i < 4; i++) {
        compare(f, c->name, isa, sizes[i], DN_MODE_EVAL, "eval");
        compare_infer(f, c->name, isa, sizes[i]);
        compare(f, c->name, isa, sizes[i], DN_MODE_TRAIN, "train");
    }
    if (has_dropout(f->m)) {
        const char *names[4] = {"none dropped", "all dropped", "alternate", "one kept"};
        for (int pat = 0; pat < 4; pat++) {
            set_masks(f, 3, pat);
            compare(f, c->name, isa, 3, DN_MODE_TRAIN_FIXED_MASK, names[pat]);
        }
        set_masks(f, MAXB, -1);
        compare(f, c->name, isa, MAXB, DN_MODE_TRAIN_FIXED_MASK, "mixed masks");
    }
    fixture_free(f);
}

static void for_each_isa(const spec_case *c)
{
    int best = dn_fast_best_isa();
    assert_true(best >= DN_FAST_ISA_C);
    for (int isa = DN_FAST_ISA_C; isa <= best; isa++)
        run_case(c, isa);
}

static void test_lecture(void **state) { (void)state; for_each_isa(&k_cases[0]); }
static void test_wide(void **state) { (void)state; for_each_isa(&k_cases[1]); }
static void test_deep(void **state) { (void)state; for_each_isa(&k_cases[2]); }
static void test_strided(void **state) { (void)state; for_each_isa(&k_cases[3]); }
static void test_odd(void **state) { (void)state; for_each_isa(&k_cases[4]); }
static void test_plain(void **state) { (void)state; for_each_isa(&k_cases[5]); }
static void test_broad(void **state) { (void)state; for_each_isa(&k_cases[6]); }

/* Dropout with p = 0 keeps everything; p = 1 drops everything. */
static void test_extreme_dropout(void **state)
{
    (void)state;
    fixture *f = fixture_new(&k_cases[0]);
    for (int k = 0; k < 2; k++) {
        for (int l = 0; l < f->m->n_layers; l++)
            if (f->m->layers[l].kind == DN_DROPOUT2D)
                f->m->layers[l].p = k ? 1.0f : 0.0f;
        compare(f, "lecture", dn_fast_best_isa(), 3, DN_MODE_TRAIN, k ? "p=1" : "p=0");
    }
    fixture_free(f);
}

/* Pooling windows whose four values tie exactly, with different
 * neighbourhoods: with only the centre tap of each kernel non-zero, an
 * input of constant 4x4 blocks makes every pool1 and pool2 window tie, and
 * the weight gradient of the other taps tells which position got the
 * gradient (the first in scan order, as PyTorch). */
static void run_ties(int isa)
{
    fixture *f = fixture_new(&k_cases[0]);
    dn_model *m = f->m;
    float *w1 = m->params + m->layers[0].w_off, *w2 = m->params + m->layers[4].w_off;
    dn_rng r;
    dn_rng_seed(&r, 9);
    for (int o = 0; o < 8; o++)
        for (int t = 0; t < 9; t++)
            w1[o * 9 + t] = t == 4 ? 0.5f + dn_rng_uniform(&r) : 0.0f;
    for (int oi = 0; oi < 16 * 8; oi++)
        for (int t = 0; t < 25; t++)
            w2[oi * 25 + t] = t == 12 ? dn_rng_uniform(&r) - 0.3f : 0.0f;
    for (int b = 0; b < 3; b++)
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                dn_rng q;
                dn_rng_seed(&q, (uint64_t)(b * 100 + (y / 4) * 7 + x / 4));
                f->x[b * 28 * 28 + y * 28 + x] = 2.0f * dn_rng_uniform(&q);
            }
    compare(f, "lecture", isa, 3, DN_MODE_EVAL, "ties");
    fixture_free(f);
}

static void test_pool_ties_match_reference(void **state)
{
    (void)state;
    for (int isa = DN_FAST_ISA_C; isa <= dn_fast_best_isa(); isa++)
        run_ties(isa);
}

/* A work refuses a model whose layers have other sizes, even with the same
 * number of layers and parameters. */
static void test_work_checks_shapes(void **state)
{
    (void)state;
    dn_error err;
    dn_model *a = dn_model_new("conv 4 k3 p1, relu, flatten, fc 10, logsoftmax",
                               (dn_shape){1, 8, 8}, 1, &err);
    dn_model *b = dn_model_new("conv 4 k3 p1 s1, relu, flatten, fc 10, logsoftmax",
                               (dn_shape){1, 8, 8}, 1, &err);
    dn_model *c = dn_model_new("conv 4 k1 p0, relu, flatten, fc 10, logsoftmax",
                               (dn_shape){1, 8, 8}, 1, &err);
    assert_true(a && b && c);
    dn_work *w = dn_work_new(a, 2);
    float x[2 * 64] = {0};
    assert_non_null(dn_model_forward(a, w, x, 2, DN_MODE_EVAL, NULL));
    assert_non_null(dn_model_forward(b, w, x, 2, DN_MODE_EVAL, NULL));
    assert_null(dn_model_forward(c, w, x, 2, DN_MODE_EVAL, NULL));
    dn_work_free(w);
    dn_model_free(a);
    dn_model_free(b);
    dn_model_free(c);
}

/* Instruction-set names, the fallback for an unknown request, and the
 * description the command prints. */
static void test_isa_selection(void **state)
{
    (void)state;
    fixture *f = fixture_new(&k_cases[0]);
    dn_fast_plan *p = dn_work_fast(f->fast);
    int best = dn_fast_best_isa();
    assert_string_equal(dn_fast_isa_name(DN_FAST_ISA_C), "c");
    assert_string_equal(dn_fast_isa_name(DN_FAST_ISA_AVX512), "avx512");
    assert_string_equal(dn_fast_isa_name(99), "none");
    assert_int_equal(dn_fast_set_isa(p, 99), best);
    assert_int_equal(dn_fast_set_isa(p, -1), best);
    assert_int_equal(dn_fast_set_isa(p, DN_FAST_ISA_C), DN_FAST_ISA_C);
    assert_int_equal(dn_fast_set_isa(p, -1), best);
    assert_non_null(strstr(dn_kernels(), "fast kernels"));
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lecture),
        cmocka_unit_test(test_wide),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_strided),
        cmocka_unit_test(test_odd),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_broad),
        cmocka_unit_test(test_extreme_dropout),
        cmocka_unit_test(test_pool_ties_match_reference),
        cmocka_unit_test(test_work_checks_shapes),
        cmocka_unit_test(test_isa_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
