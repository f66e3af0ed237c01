/*
 * test_model.c - building models from specs (shapes, names, parameter
 * layout, PyTorch-style initialisation, refused specs), the workspace,
 * the passes' contracts (dropout modes, batch independence, chunked
 * gradients) and the `digitnet shapes` command.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dn_shape MNIST = {1, 28, 28};

static dn_model *build(const char *spec, dn_shape in, uint64_t seed)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(spec, in, seed, &err);
    if (!m)
        fail_msg("'%s': %s", spec ? spec : "(default)", err.msg);
    return m;
}

static void fill(float *x, size_t n, uint64_t seed)
{
    dn_rng r;
    dn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * dn_rng_uniform(&r) - 1.0f;
}

/* ------------------------------------------------------------------------ */
/* Building                                                                 */
/* ------------------------------------------------------------------------ */

static void test_default_model(void **state)
{
    (void)state;
    dn_model *m = build(NULL, MNIST, 1);
    assert_string_equal(m->spec, DN_DEFAULT_SPEC);
    assert_int_equal(m->n_params, 54186);
    assert_int_equal(m->n_layers, 13);
    assert_int_equal(dn_model_classes(m), 10);
    assert_true(((uintptr_t)m->params & 63) == 0);
    assert_true(m->mean == DN_MNIST_MEAN && m->std == DN_MNIST_STD);
    assert_string_equal(m->dataset, "mnist");
    static const struct {
        const char *name;
        dn_layer_kind kind;
        dn_shape out;
        size_t w_len, b_len;
        int64_t macs;
    } want[13] = {
        {"conv1", DN_CONV, {8, 28, 28}, 72, 8, 8 * 28 * 28 * 9},
        {"relu1", DN_RELU, {8, 28, 28}, 0, 0, 0},
        {"pool1", DN_MAXPOOL, {8, 14, 14}, 0, 0, 0},
        {"drop1", DN_DROPOUT2D, {8, 14, 14}, 0, 0, 0},
        {"conv2", DN_CONV, {16, 14, 14}, 3200, 16, 16 * 14 * 14 * 8 * 25},
        {"relu2", DN_RELU, {16, 14, 14}, 0, 0, 0},
        {"pool2", DN_MAXPOOL, {16, 7, 7}, 0, 0, 0},
        {"drop2", DN_DROPOUT2D, {16, 7, 7}, 0, 0, 0},
        {"flatten", DN_FLATTEN, {784, 1, 1}, 0, 0, 0},
        {"fc1", DN_FC, {64, 1, 1}, 50176, 64, 50176},
        {"relu3", DN_RELU, {64, 1, 1}, 0, 0, 0},
        {"fc2", DN_FC, {10, 1, 1}, 640, 10, 640},
        {"logsoftmax", DN_LOGSOFTMAX, {10, 1, 1}, 0, 0, 0},
    };
    size_t off = 0;
    for (int l = 0; l < 13; l++) {
        const dn_layer *L = &m->layers[l];
        assert_string_equal(L->name, want[l].name);
        assert_int_equal(L->kind, want[l].kind);
        assert_int_equal(L->out.c, want[l].out.c);
        assert_int_equal(L->out.h, want[l].out.h);
        assert_int_equal(L->out.w, want[l].out.w);
        assert_int_equal(L->w_len, want[l].w_len);
        assert_int_equal(L->b_len, want[l].b_len);
        assert_int_equal(L->macs, want[l].macs);
        if (l > 0)
            assert_memory_equal(&L->in, &m->layers[l - 1].out, sizeof L->in);
        /* Parameters in state_dict order, weight then bias, no gaps. */
        if (L->w_len) {
            assert_int_equal(L->w_off, off);
            assert_int_equal(L->b_off, off + L->w_len);
            off += L->w_len + L->b_len;
        }
        assert_int_equal(dn_model_find(m, want[l].name), l);
    }
    assert_int_equal(off, m->n_params);
    assert_int_equal(dn_model_find(m, "conv3"), -1);
    assert_int_equal(m->layers[3].p == 0.5f, 1);
    assert_int_equal(m->layers[4].k * 100 + m->layers[4].pad * 10 + m->layers[4].stride, 521);
    dn_model_free(m);
}

/* Uniform in +-1/sqrt(fan_in) for weights and biases, as PyTorch. */
static void test_init(void **state)
{
    (void)state;
    dn_model *a = build(NULL, MNIST, 1), *b = build(NULL, MNIST, 1), *c = build(NULL, MNIST, 2);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_true(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0);
    for (int l = 0; l < a->n_layers; l++) {
        const dn_layer *L = &a->layers[l];
        if (!L->w_len)
            continue;
        double fan_in = (double)L->w_len / L->out_ch, bound = 1.0 / sqrt(fan_in);
        const size_t offs[2] = {L->w_off, L->b_off}, lens[2] = {L->w_len, L->b_len};
        for (int t = 0; t < 2; t++) {
            double mx = 0.0, mean = 0.0;
            for (size_t i = 0; i < lens[t]; i++) {
                double v = a->params[offs[t] + i];
                assert_true(fabs(v) <= bound);
                mx = fmax(mx, fabs(v));
                mean += v;
            }
            mean /= (double)lens[t];
            /* Spread over the whole range, centred (loosely for the 8
             * biases of conv1). */
            assert_true(mx > bound * (lens[t] >= 64 ? 0.95 : 0.5));
            assert_true(fabs(mean) < bound * (lens[t] >= 64 ? 0.25 : 0.8));
        }
    }
    /* A layer's values do not depend on the layers before it. */
    dn_model *d = build("conv 4 k3, relu, flatten, fc 10, logsoftmax", MNIST, 1);
    dn_model *e = build("conv 4 k3, flatten, fc 10, logsoftmax", MNIST, 1);
    assert_memory_equal(d->params, e->params, 40 * sizeof(float));
    dn_model_free(a), dn_model_free(b), dn_model_free(c), dn_model_free(d), dn_model_free(e);
}

static void test_spec_forms(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *canonical;
    } cases[] = {
        {"  conv 8 k3 p1 s1 ,relu,maxpool 2,\tdropout2d 0.5 , conv 16 k5 p2 s1, relu, "
         "maxpool 2, dropout2d, flatten, fc 64, relu, fc 10 ,logsoftmax  ",
         DN_DEFAULT_SPEC},
        {"conv 8", "conv 8 k3 p0 s1"},
        {"conv 4 s2 p1 k5", "conv 4 k5 p1 s2"},
        {"maxpool k3 s2 p1", "maxpool k3 s2 p1"},
        {"maxpool k3", "maxpool 3"},
        {"maxpool 3 s1", "maxpool k3 s1 p0"},
        {"dropout2d", "dropout2d 0.5"},
        {"dropout2d .25", "dropout2d 0.25"},
        {"dropout2d 0", "dropout2d 0"},
        {"dropout2d 1", "dropout2d 1"},
        {"flatten, fc 5, relu, fc 3, logsoftmax", "flatten, fc 5, relu, fc 3, logsoftmax"},
        /* As many digits as the float needs (found by fuzzing: "%g" made
         * this 0.111111, another rate once saved in a model file). */
        {"dropout2d 0.1111111111", "dropout2d 0.11111111"},
        {"dropout2d 0.1", "dropout2d 0.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_model *m = build(cases[i].spec, MNIST, 0);
        assert_string_equal(m->spec, cases[i].canonical);
        /* The canonical text builds the same model. */
        dn_model *again = build(m->spec, MNIST, 0);
        assert_string_equal(again->spec, m->spec);
        assert_int_equal(again->n_params, m->n_params);
        assert_memory_equal(again->layers, m->layers, sizeof m->layers);
        dn_model_free(again);
        dn_model_free(m);
    }
    dn_model *m = build("maxpool k3 s2 p1, conv 5 k5 p2 s2", (dn_shape){3, 7, 9}, 0);
    assert_int_equal(m->layers[0].out.h * 10 + m->layers[0].out.w, 45);
    assert_int_equal(m->layers[1].out.c * 100 + m->layers[1].out.h * 10 + m->layers[1].out.w,
                     523);
    assert_string_equal(m->layers[1].name, "conv1");
    dn_model_free(m);
}

static void test_spec_refused(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        dn_status st;
        const char *msg;
    } cases[] = {
        {"conv 8 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, conv 16 k5 p2 s1, relu, "
         "maxpool 2, maxpool 2, maxpool 2, maxpool 2, maxpool 2",
         DN_ERR_SHAPE, "layer 10 'maxpool 2': input 16x1x1 gives 16x0x0"},
        {"conv 8 k29", DN_ERR_SHAPE, "layer 1 'conv 8 k29': input 1x28x28 gives 8x0x0"},
        {"conv 8, fc 10", DN_ERR_SHAPE, "layer 2 'fc 10': needs a flat input but gets 8x26x26"},
        {"flatten, conv 8", DN_ERR_SHAPE, "layer 2 'conv 8': needs an image"},
        {"flatten, dropout2d", DN_ERR_SHAPE, "layer 2 'dropout2d'"},
        {"flatten, logsoftmax, relu", DN_ERR_SHAPE, "layer 2 'logsoftmax': logsoftmax must be "
                                                    "the last layer"},
        {"conv 8, logsoftmax", DN_ERR_SHAPE, "layer 2 'logsoftmax': needs a flat input"},
        {"conv 8, relu, pool 2", DN_ERR_ARG, "layer 3 'pool 2': unknown layer"},
        {"conv eight", DN_ERR_ARG, "layer 1 'conv eight'"},
        {"conv 8x", DN_ERR_ARG, "layer 1 'conv 8x': bad number '8x'"},
        {"conv 0", DN_ERR_ARG, "bad number '0'"},
        {"conv -3", DN_ERR_ARG, "layer 1 'conv -3'"},
        {"conv", DN_ERR_ARG, "layer 1 'conv': missing the number of output channels"},
        {"fc", DN_ERR_ARG, "missing the number of output features"},
        {"conv 8 k3 k5", DN_ERR_ARG, "option 'k' given twice"},
        {"conv 8 s0", DN_ERR_ARG, "bad number in 's0'"},
        {"conv 8 q2", DN_ERR_ARG, "unknown option 'q2'"},
        {"maxpool", DN_ERR_ARG, "missing the window size"},
        {"maxpool k3 p2", DN_ERR_SHAPE, "padding 2 is more than half the window 3"},
        {"relu 2", DN_ERR_ARG, "layer 1 'relu 2': takes no options"},
        {"dropout2d 1.5", DN_ERR_ARG, "bad probability '1.5'"},
        {"dropout2d nan", DN_ERR_ARG, "layer 1 'dropout2d nan'"},
        {"conv 8,, relu", DN_ERR_ARG, "layer 2: empty"},
        {"conv 8,", DN_ERR_ARG, "layer 2: empty"},
        {"", DN_ERR_ARG, "layer 1: empty"},
        {"conv 99999", DN_ERR_ARG, "bad number '99999'"},
        {"conv 65536 k1, conv 65536 k1", DN_ERR_SHAPE, "too many parameters"},
        {"conv 65536 k1 p1000", DN_ERR_SHAPE, "larger than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_error err = {0};
        dn_model *m = dn_model_new(cases[i].spec, MNIST, 0, &err);
        if (m)
            fail_msg("'%s' was accepted", cases[i].spec);
        if (err.status != cases[i].st || !strstr(err.msg, cases[i].msg))
            fail_msg("'%s': got [%s] %s; expected [%s] ...%s...", cases[i].spec,
                     dn_status_str(err.status), err.msg, dn_status_str(cases[i].st),
                     cases[i].msg);
    }
    /* More than DN_MAX_LAYERS layers. */
    char spec[1024] = "";
    for (int i = 0; i <= DN_MAX_LAYERS; i++)
        strcat(spec, i ? ", relu" : "relu");
    dn_error err = {0};
    assert_null(dn_model_new(spec, MNIST, 0, &err));
    assert_non_null(strstr(err.msg, "at most 32"));
    spec[strlen(spec) - 6] = 0; /* exactly DN_MAX_LAYERS is fine */
    dn_model *m = build(spec, MNIST, 0);
    assert_int_equal(m->n_layers, DN_MAX_LAYERS);
    dn_model_free(m);
    /* Bad input shapes; a NULL error is allowed. */
    assert_null(dn_model_new(NULL, (dn_shape){0, 28, 28}, 0, &err));
    assert_int_equal(err.status, DN_ERR_ARG);
    assert_null(dn_model_new(NULL, (dn_shape){1, 2, 2}, 0, NULL));
}

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */
/* ------------------------------------------------------------------------ */

static void test_work_contract(void **state)
{
    (void)state;
    dn_model *m = build(NULL, MNIST, 3);
    assert_null(dn_work_new(m, 0));
    assert_null(dn_work_new(NULL, 4));
    dn_work *w = dn_work_new(m, 4);
    assert_non_null(w);
    float x[5 * 784];
    fill(x, 5 * 784, 1);
    uint64_t keys[5] = {1, 2, 3, 4, 5};
    assert_null(dn_model_forward(m, w, x, 5, DN_MODE_EVAL, NULL));   /* > max_batch */
    assert_null(dn_model_forward(m, w, x, 0, DN_MODE_EVAL, NULL));
    assert_null(dn_model_forward(m, w, x, 2, DN_MODE_TRAIN, NULL));  /* keys needed */
    assert_non_null(dn_model_forward(m, w, x, 4, DN_MODE_TRAIN, keys));
    assert_null(dn_work_mask(w, 0));
    assert_non_null(dn_work_mask(w, 3));
    assert_non_null(dn_work_act(w, 12));
    assert_null(dn_work_act(w, 13));
    assert_null(dn_work_act(w, -1));
    /* A work is tied to the shapes of its model. */
    dn_model *other = build("conv 4, flatten, fc 10, logsoftmax", MNIST, 0);
    assert_null(dn_model_forward(other, w, x, 1, DN_MODE_EVAL, NULL));
    assert_true(isnan(dn_model_loss(other, w, (const uint8_t *)"\0", 1)));
    dn_model_free(other);
    dn_work_free(w);
    dn_work_free(NULL);
    dn_model_free(m);
    dn_model_free(NULL);
}

static void test_forward_eval(void **state)
{
    (void)state;
    dn_model *m = build(NULL, MNIST, 4);
    dn_work *w = dn_work_new(m, 3);
    dn_work_set_reference(w, 1);
    float x[3 * 784];
    fill(x, 3 * 784, 2);
    const float *y = dn_model_forward(m, w, x, 3, DN_MODE_EVAL, NULL);
    assert_non_null(y);
    assert_ptr_equal(y, dn_work_act(w, 12));
    for (int b = 0; b < 3; b++) {
        double s = 0.0;
        for (int c = 0; c < 10; c++) {
            assert_true(y[b * 10 + c] <= 0.0f);
            s += exp(y[b * 10 + c]);
        }
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    /* Eval dropout is the identity; flatten keeps the layout. */
    assert_memory_equal(dn_work_act(w, 3), dn_work_act(w, 2), 3 * 8 * 14 * 14 * sizeof(float));
    assert_memory_equal(dn_work_act(w, 8), dn_work_act(w, 7), 3 * 784 * sizeof(float));
    /* The loss is the mean of -logp[label]. */
    const uint8_t labels[3] = {7, 0, 9};
    double want = -(y[7] + y[10] + y[29]) / 3.0;
    assert_true(fabs(dn_model_loss(m, w, labels, 3) - want) < 1e-6);
    assert_true(fabs(dn_model_loss(m, w, labels, 1) + y[7]) < 1e-6);
    dn_work_free(w);
    dn_model_free(m);
}

/* TRAIN draws each sample's masks from its key alone, writes them to the
 * work, and a fixed-mask pass with those masks gives the same numbers. */
static void test_forward_train_masks(void **state)
{
    (void)state;
    dn_model *m = build(NULL, MNIST, 5);
    dn_work *w = dn_work_new(m, 4), *w1 = dn_work_new(m, 1);
    dn_work_set_reference(w, 1);
    dn_work_set_reference(w1, 1);
    float x[4 * 784], y4[40], ye[40];
    fill(x, 4 * 784, 3);
    const uint64_t keys[4] = {11, 22, 33, 44};
    memcpy(y4, dn_model_forward(m, w, x, 4, DN_MODE_TRAIN, keys), sizeof y4);
    for (int l = 3; l <= 7; l += 4) {
        int C = m->layers[l].in.c;
        float want[16];
        const float *mask = dn_work_mask(w, l);
        size_t zeros = 0;
        for (int b = 0; b < 4; b++) {
            dn_dropout2d_mask(keys[b], l, C, 0.5f, want);
            assert_memory_equal(mask + b * C, want, (size_t)C * sizeof(float));
            for (int c = 0; c < C; c++)
                zeros += mask[b * C + c] == 0.0f;
        }
        assert_true(zeros > 0 && zeros < (size_t)4 * C);
    }
    /* Sample 2 alone, with its key, gets the same output row. */
    const float *y1 = dn_model_forward(m, w1, x + 2 * 784, 1, DN_MODE_TRAIN, keys + 2);
    assert_memory_equal(y1, y4 + 20, 10 * sizeof(float));
    /* Fixed masks reproduce the pass; eval differs from it. */
    assert_memory_equal(dn_model_forward(m, w, x, 4, DN_MODE_TRAIN_FIXED_MASK, NULL), y4,
                        sizeof y4);
    memcpy(ye, dn_model_forward(m, w, x, 4, DN_MODE_EVAL, NULL), sizeof ye);
    assert_true(memcmp(ye, y4, sizeof ye) != 0);
    /* Masks of all ones in fixed-mask mode equal eval. */
    for (int l = 3; l <= 7; l += 4)
        for (int i = 0; i < 4 * m->layers[l].in.c; i++)
            dn_work_mask(w, l)[i] = 1.0f;
    assert_memory_equal(dn_model_forward(m, w, x, 4, DN_MODE_TRAIN_FIXED_MASK, NULL), ye,
                        sizeof ye);
    dn_work_free(w);
    dn_work_free(w1);
    dn_model_free(m);
}

static void grads_of(dn_model *m, dn_work *w, const float *x, const uint8_t *labels, int B,
                     dn_mode mode, const uint64_t *keys, float scale, float *g)
{
    assert_non_null(dn_model_forward(m, w, x, B, mode, keys));
    dn_model_backward(m, w, labels, B, scale, g);
}

/* scale * sum_b NLL_b: chunks with scale 1/N add up to the whole batch,
 * and the gradient is linear in scale. */
static void test_backward_chunks(void **state)
{
    (void)state;
    dn_model *m = build(NULL, MNIST, 6);
    dn_work *w = dn_work_new(m, 6);
    dn_work_set_reference(w, 1);
    float x[6 * 784];
    fill(x, 6 * 784, 4);
    const uint8_t labels[6] = {0, 1, 2, 3, 4, 5};
    const uint64_t keys[6] = {1, 2, 3, 4, 5, 6};
    size_t n = m->n_params;
    float *all = calloc(n, 4), *a = calloc(n, 4), *b = calloc(n, 4), *twice = calloc(n, 4);
    assert_true(all && a && b && twice);
    grads_of(m, w, x, labels, 6, DN_MODE_TRAIN, keys, 1.0f / 6, all);
    grads_of(m, w, x, labels, 4, DN_MODE_TRAIN, keys, 1.0f / 6, a);
    grads_of(m, w, x + 4 * 784, labels + 4, 2, DN_MODE_TRAIN, keys + 4, 1.0f / 6, b);
    grads_of(m, w, x, labels, 6, DN_MODE_TRAIN, keys, 2.0f / 6, twice);
    double maxg = 0.0;
    for (size_t i = 0; i < n; i++) {
        maxg = fmax(maxg, fabs(all[i]));
        if (!(fabs((double)a[i] + b[i] - all[i]) <= 1e-6 + 1e-5 * fabs(all[i])))
            fail_msg("param %zu: chunks %g + %g, whole batch %g", i, a[i], b[i], all[i]);
        if (!(fabs(twice[i] - 2.0 * all[i]) <= 1e-6 * fabs(all[i]) + 1e-12))
            fail_msg("param %zu: scale 2/6 gives %g, 1/6 gives %g", i, twice[i], all[i]);
    }
    assert_true(maxg > 1e-3);
    /* A backward whose B is not the forward's writes zeros. */
    dn_model_backward(m, w, labels, 3, 1.0f, a);
    for (size_t i = 0; i < n; i++)
        assert_true(a[i] == 0.0f);
    free(all), free(a), free(b), free(twice);
    dn_work_free(w);
    dn_model_free(m);
}

/* The default path (fast kernels where they apply) and the reference
 * kernels agree on a model the fast kernels may take and on one they
 * will not. */
static void test_default_matches_reference(void **state)
{
    (void)state;
    static const char *const specs[] = {
        NULL, "conv 3 k5 p2 s2, relu, maxpool k3 s2 p1, dropout2d 0.3, flatten, fc 7, "
              "logsoftmax"};
    for (int s = 0; s < 2; s++) {
        dn_model *m = build(specs[s], MNIST, 8);
        dn_work *ref = dn_work_new(m, 5), *def = dn_work_new(m, 5);
        float x[5 * 784];
        fill(x, 5 * 784, 5);
        const uint8_t labels[5] = {1, 2, 3, 4, 5};
        const uint64_t keys[5] = {9, 8, 7, 6, 5};
        dn_work_set_reference(ref, 1);
        size_t n = m->n_params;
        float *g1 = calloc(n, 4), *g2 = calloc(n, 4);
        float y1[50], y2[50];
        int C = dn_model_classes(m);
        for (int mode = DN_MODE_EVAL; mode <= DN_MODE_TRAIN; mode++) {
            memcpy(y1, dn_model_forward(m, ref, x, 5, (dn_mode)mode, keys),
                   (size_t)5 * C * 4);
            dn_model_backward(m, ref, labels, 5, 0.2f, g1);
            memcpy(y2, dn_model_forward(m, def, x, 5, (dn_mode)mode, keys),
                   (size_t)5 * C * 4);
            dn_model_backward(m, def, labels, 5, 0.2f, g2);
            for (int i = 0; i < 5 * C; i++)
                assert_true(fabs(y1[i] - y2[i]) <= 1e-5 * fmax(fabs(y1[i]), 1.0));
            double maxg = 0.0;
            for (size_t i = 0; i < n; i++)
                maxg = fmax(maxg, fabs(g1[i]));
            assert_true(maxg > 1e-4);
            for (size_t i = 0; i < n; i++)
                if (!(fabs(g1[i] - g2[i]) <= 1e-4 * fmax(fabs(g1[i]), 1e-2 * maxg)))
                    fail_msg("spec %d mode %d param %zu: %g vs reference %g", s, mode, i,
                             g2[i], g1[i]);
        }
        free(g1), free(g2);
        dn_work_free(ref), dn_work_free(def);
        dn_model_free(m);
    }
}

/* ------------------------------------------------------------------------ */
/* digitnet shapes                                                          */
/* ------------------------------------------------------------------------ */

static void test_cli_shapes(void **state)
{
    (void)state;
    static char out[16384];
    assert_int_equal(t_run(out, sizeof out, "shapes"), 0);
    static const char *const want[] = {
        "1x28x28", "conv1", "8x28x28", "pool1", "8x14x14", "16x14x14", "16x7x7", "784",
        "fc1", "50,240", "3,216", "54,186", "734,464", "logsoftmax",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("'%s' missing from:\n%s", want[i], out);
    /* Rows come in layer order. */
    assert_true(strstr(out, "8x14x14") < strstr(out, "16x14x14"));
    assert_true(strstr(out, " fc1 ") < strstr(out, " fc2 "));

    assert_int_equal(t_run(out, sizeof out, "shapes --input 3x7x9 --arch "
                                            "'conv 5 k5 p2 s2, relu, maxpool k3 s2 p1, "
                                            "flatten, fc 4, logsoftmax'"), 0);
    assert_non_null(strstr(out, "5x4x5"));
    assert_non_null(strstr(out, "5x2x3"));
    assert_non_null(strstr(out, "504"));

    assert_int_equal(t_run(out, sizeof out, "shapes --arch 'conv 8 k3 p1 s1, relu, maxpool 2, "
                                            "dropout2d 0.5, conv 16 k5 p2 s1, relu, maxpool 2, "
                                            "maxpool 2, maxpool 2, maxpool 2, maxpool 2'"), 2);
    assert_non_null(strstr(out, "layer 10 'maxpool 2': input 16x1x1 gives 16x0x0"));
    assert_int_equal(t_run(out, sizeof out, "shapes --arch 'conv 8, fc 10'"), 2);
    assert_non_null(strstr(out, "layer 2 'fc 10'"));
    assert_int_equal(t_run(out, sizeof out, "shapes --input 1x28"), 2);
    assert_int_equal(t_run(out, sizeof out, "shapes --input 0x28x28"), 2);
    assert_int_equal(t_run(out, sizeof out, "shapes --bogus"), 2);
    assert_int_equal(t_run(out, sizeof out, "shapes extra"), 2);
    assert_int_equal(t_run(out, sizeof out, "shapes --arch"), 2);
    assert_int_equal(t_run(out, sizeof out, "shapes --help"), 0);
    assert_non_null(strstr(out, "examples"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_model),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_spec_forms),
        cmocka_unit_test(test_spec_refused),
        cmocka_unit_test(test_work_contract),
        cmocka_unit_test(test_forward_eval),
        cmocka_unit_test(test_forward_train_masks),
        cmocka_unit_test(test_backward_chunks),
        cmocka_unit_test(test_default_matches_reference),
        cmocka_unit_test(test_cli_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
