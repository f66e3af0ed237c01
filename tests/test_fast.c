/*
 * test_fast.c - the fast kernels (src/fast/) against the general reference
 * kernels, on every instruction set this machine runs.
 *
 * Forward log-probabilities must agree within 1e-5 (relative, or absolute
 * below 1), every parameter gradient within 1e-4 of its tensor's largest
 * magnitude; dropout masks bit for bit; and the dropout-sparse kernels
 * must give exactly the values of the dense computation (the skipped
 * terms are exact zeros). Batches of 1, 3 and 64; evaluation, training
 * with drawn masks, fixed masks with every channel dropped and none.
 * Inputs look like MNIST: a flat background (so pooling windows tie, and
 * the first-maximum rule matters) with random strokes.
 */
#include "test.h"

#include "fast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 64
#define PIX (28 * 28)
#define NCLS 10

typedef struct fixture {
    dn_model *m;
    dn_work *ref;       /* general kernels */
    dn_work *fast;      /* fast kernels, sparse */
    dn_work *dense;     /* fast kernels, no skipping */
    float *x;           // (MAXB, 1, 28, 28)
    uint8_t y[MAXB];
    uint64_t keys[MAXB];
    float *g_ref, *g_fast, *g_dense; // (n_params)
} fixture;

static void fill_inputs(fixture *f, uint64_t seed)
{
    dn_rng r;
    dn_rng_seed(&r, seed);
    const float bg = (0.0f - DN_MNIST_MEAN) / DN_MNIST_STD;
    for (int i = 0; i < MAXB * PIX; i++)
        f->x[i] = dn_rng_uniform(&r) < 0.7f ? bg : bg + 3.2f * dn_rng_uniform(&r);
    /* Sample 1 is all background: every window ties. */
    for (int i = 0; i < PIX; i++)
        f->x[PIX + i] = bg;
    for (int b = 0; b < MAXB; b++) {
        f->y[b] = (uint8_t)dn_rng_below(&r, NCLS);
        f->keys[b] = dn_key(seed, DN_STREAM_DROPOUT, 7, (uint64_t)b);
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    dn_error err;
    f->m = dn_model_new(NULL, (dn_shape){1, 28, 28}, 42, &err);
    assert_non_null(f->m);
    f->ref = dn_work_new(f->m, MAXB);
    f->fast = dn_work_new(f->m, MAXB);
    f->dense = dn_work_new(f->m, MAXB);
    assert_true(f->ref && f->fast && f->dense);
    dn_work_set_reference(f->ref, 1);
    assert_int_equal(dn_fast_set_sparse(f->dense, 0), 0);
    f->x = malloc(MAXB * PIX * sizeof *f->x);
    f->g_ref = malloc(f->m->n_params * sizeof(float));
    f->g_fast = malloc(f->m->n_params * sizeof(float));
    f->g_dense = malloc(f->m->n_params * sizeof(float));
    assert_true(f->x && f->g_ref && f->g_fast && f->g_dense);
    fill_inputs(f, 5);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dn_work_free(f->ref);
    dn_work_free(f->fast);
    dn_work_free(f->dense);
    dn_model_free(f->m);
    free(f->x);
    free(f->g_ref);
    free(f->g_fast);
    free(f->g_dense);
    free(f);
    return 0;
}

/* Log-probabilities within 1e-5 relative (absolute below magnitude 1). */
static void expect_close_logp(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        float tol = 1e-5f * fmaxf(1.0f, fabsf(want[i]));
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s: log-prob %d is %.9g, reference %.9g", what, i, got[i], want[i]);
    }
}

/* Each parameter tensor's gradient within 1e-4 of its largest magnitude. */
static void expect_close_grads(const dn_model *m, const float *got, const float *want,
                               const char *what)
{
    for (int l = 0; l < m->n_layers; l++) {
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

/* Forward (and backward) on the three works; compares them. */
static void compare(fixture *f, int isa, int B, dn_mode mode, const char *what)
{
    const dn_model *m = f->m;
    char label[160];
    snprintf(label, sizeof label, "%s, %s, B=%d", what, dn_fast_isa_name(isa), B);
    assert_int_equal(dn_fast_set_isa(f->fast, isa), isa);
    assert_int_equal(dn_fast_set_isa(f->dense, isa), isa);
    const uint64_t *keys = mode == DN_MODE_TRAIN ? f->keys : NULL;
    const float *lr = dn_model_forward(m, f->ref, f->x, B, mode, keys);
    const float *lf = dn_model_forward(m, f->fast, f->x, B, mode, keys);
    const float *ld = dn_model_forward(m, f->dense, f->x, B, mode, keys);
    assert_true(lr && lf && ld);
    /* The fast path ran: it keeps none of the per-layer outputs. */
    const float *c1 = dn_work_act(f->fast, 0); // (B, 8, 28, 28)
    for (int i = 0; i < B * 8 * PIX; i++)
        if (c1[i] != 0.0f)
            fail_msg("%s: the general kernels ran instead of the fast ones", label);
    assert_null(*dn_work_fast_slot(f->ref));
    expect_close_logp(lf, lr, B * NCLS, label);
    expect_equal(lf, ld, (size_t)B * NCLS, label);
    if (mode == DN_MODE_TRAIN) {
        int layers[2] = {3, 7}, ch[2] = {8, 16};
        for (int d = 0; d < 2; d++)
            assert_memory_equal(dn_work_mask(f->fast, layers[d]), dn_work_mask(f->ref, layers[d]),
                                (size_t)B * ch[d] * sizeof(float));
    }
    assert_true(fabs(dn_model_loss(m, f->fast, f->y, B) - dn_model_loss(m, f->ref, f->y, B)) <
                1e-5);

    float scale = 1.0f / (float)B;
    memset(f->g_fast, 0xff, m->n_params * sizeof(float)); /* NaN: must be overwritten */
    dn_model_backward(m, f->ref, f->y, B, scale, f->g_ref);
    dn_model_backward(m, f->fast, f->y, B, scale, f->g_fast);
    dn_model_backward(m, f->dense, f->y, B, scale, f->g_dense);
    expect_close_grads(m, f->g_fast, f->g_ref, label);
    expect_equal(f->g_fast, f->g_dense, m->n_params, label);
    /* The comparison means something: gradients are not all zero. */
    double norm = 0;
    for (size_t i = 0; i < m->n_params; i++)
        norm += fabs(f->g_ref[i]);
    assert_true(norm > 1e-3);
}

/* Sets the fixed masks of the three works: per sample, pattern 0 keeps
 * every channel, 1 drops every channel, 2 alternates, 3 keeps one. */
static void set_masks(fixture *f, int B, int pattern)
{
    dn_work *ws[3] = {f->ref, f->fast, f->dense};
    int layers[2] = {3, 7}, ch[2] = {8, 16};
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < 2; d++) {
            float *mk = dn_work_mask(ws[k], layers[d]);
            for (int b = 0; b < B; b++)
                for (int c = 0; c < ch[d]; c++) {
                    int pat = pattern >= 0 ? pattern : (b + d) % 4;
                    float v = pat == 0 ? 2.0f
                              : pat == 1 ? 0.0f
                              : pat == 2 ? (float)((c + b) % 2) * 2.0f
                                         : (c == b % ch[d] ? 2.0f : 0.0f);
                    mk[(size_t)b * ch[d] + c] = v;
                }
        }
}

static void for_each_isa(fixture *f, void (*run)(fixture *, int))
{
    int best = dn_fast_best_isa();
    assert_true(best >= DN_FAST_ISA_C);
    for (int isa = DN_FAST_ISA_C; isa <= best; isa++)
        if (dn_fast_set_isa(f->fast, isa) == isa)
            run(f, isa);
}

static void run_eval(fixture *f, int isa)
{
    int sizes[3] = {1, 3, 64};
    for (int i = 0; i < 3; i++)
        compare(f, isa, sizes[i], DN_MODE_EVAL, "eval");
}

static void run_train(fixture *f, int isa)
{
    int sizes[3] = {1, 3, 64};
    for (int i = 0; i < 3; i++)
        compare(f, isa, sizes[i], DN_MODE_TRAIN, "train");
}

static void run_fixed(fixture *f, int isa)
{
    const char *names[4] = {"none dropped", "all dropped", "alternate", "one kept"};
    for (int pat = 0; pat < 4; pat++) {
        set_masks(f, 3, pat);
        compare(f, isa, 3, DN_MODE_TRAIN_FIXED_MASK, names[pat]);
    }
    set_masks(f, 64, -1);
    compare(f, isa, 64, DN_MODE_TRAIN_FIXED_MASK, "mixed masks");
}

static void test_eval_matches_reference(void **state)
{
    for_each_isa(*state, run_eval);
}

static void test_train_matches_reference(void **state)
{
    for_each_isa(*state, run_train);
}

static void test_fixed_masks_match_reference(void **state)
{
    for_each_isa(*state, run_fixed);
}

/* Dropout with p = 0 keeps everything; p = 1 drops everything. */
static void test_extreme_dropout(void **state)
{
    fixture *f = *state;
    float saved[2] = {f->m->layers[3].p, f->m->layers[7].p};
    for (int k = 0; k < 2; k++) {
        f->m->layers[3].p = f->m->layers[7].p = k ? 1.0f : 0.0f;
        compare(f, dn_fast_best_isa(), 3, DN_MODE_TRAIN, k ? "p=1" : "p=0");
    }
    f->m->layers[3].p = saved[0];
    f->m->layers[7].p = saved[1];
}

/* Pooling windows whose four values tie exactly, with different
 * neighbourhoods: with only the centre tap of each kernel non-zero, an
 * input of constant 4x4 blocks makes every pool1 and pool2 window tie, and
 * the weight gradient of the other taps tells which position got the
 * gradient (the first in scan order, as PyTorch). */
static void run_ties(fixture *f, int isa)
{
    dn_model *m = f->m;
    float *saved = malloc(m->n_params * sizeof *saved);
    assert_non_null(saved);
    memcpy(saved, m->params, m->n_params * sizeof *saved);
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
                f->x[b * PIX + y * 28 + x] = 2.0f * dn_rng_uniform(&q);
            }
    compare(f, isa, 3, DN_MODE_EVAL, "ties");
    memcpy(m->params, saved, m->n_params * sizeof *saved);
    free(saved);
    fill_inputs(f, 5);
}

static void test_pool_ties_match_reference(void **state)
{
    for_each_isa(*state, run_ties);
}

/* A model of another shape is left to the general kernels. */
static void test_other_models_not_taken(void **state)
{
    (void)state;
    dn_error err;
    dn_model *m = dn_model_new(NULL, (dn_shape){1, 28, 28}, 1, &err);
    assert_non_null(m);
    assert_int_equal(dn_fast_supports(m), 1);
    dn_model_free(m);
    m = dn_model_new("conv 8 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, "
                     "conv 16 k5 p2 s1, relu, maxpool 2, dropout2d 0.5, "
                     "flatten, fc 32, relu, fc 10, logsoftmax",
                     (dn_shape){1, 28, 28}, 1, &err);
    assert_non_null(m);
    assert_int_equal(dn_fast_supports(m), 0);
    dn_work *w = dn_work_new(m, 2);
    float x[2 * PIX] = {0};
    assert_non_null(dn_model_forward(m, w, x, 2, DN_MODE_EVAL, NULL));
    assert_null(*dn_work_fast_slot(w));
    dn_work_free(w);
    dn_model_free(m);
}

/* Instruction-set names and the fallback for an unknown request. */
static void test_isa_selection(void **state)
{
    fixture *f = *state;
    int best = dn_fast_best_isa();
    assert_string_equal(dn_fast_isa_name(DN_FAST_ISA_C), "c");
    assert_string_equal(dn_fast_isa_name(DN_FAST_ISA_AVX512), "avx512");
    assert_string_equal(dn_fast_isa_name(99), "none");
    assert_int_equal(dn_fast_set_isa(f->fast, 99), best);
    assert_int_equal(dn_fast_set_isa(f->fast, -1), best);
    assert_int_equal(dn_fast_set_isa(f->fast, DN_FAST_ISA_C), DN_FAST_ISA_C);
    assert_int_equal(dn_fast_set_isa(f->fast, -1), best);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_matches_reference),
        cmocka_unit_test(test_train_matches_reference),
        cmocka_unit_test(test_fixed_masks_match_reference),
        cmocka_unit_test(test_extreme_dropout),
        cmocka_unit_test(test_pool_ties_match_reference),
        cmocka_unit_test(test_other_models_not_taken),
        cmocka_unit_test(test_isa_selection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
