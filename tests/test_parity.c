/*
 * test_parity.c - the default model against PyTorch 1.13 running the
 * lecture's CNN_MNIST, on 8 real MNIST test images, from the values that
 * tools/make_fixtures.py stored in tests/fixtures/parity.bin (format
 * described there): log-probabilities, loss and every parameter gradient,
 * in eval mode and in one training pass with fixed Dropout2d masks; and
 * single layers on odd shapes (F.conv2d k5 p2 s2 on 7x9, F.max_pool2d on
 * inputs full of ties and a few NaNs).
 *
 * Tolerances (float32 on both sides, different summation orders):
 *   forward values   |a - b| <= 1e-5 * max(|b|, 1)
 *   gradients        |a - b| <= 1e-4 * max(|b|, 1e-2 * max|b| over the
 *                    tensor), i.e. relative, except that entries far below
 *                    the tensor's scale (where the float cancellation of
 *                    PyTorch's own sums dominates) are held to 1e-6 of
 *                    that scale.
 * Each check also asserts the reference is non-trivial, so that a fixture
 * full of zeros cannot pass.
 */
#include "test.h"

#include "layers/layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/parity.bin"
#define BATCH 8

/* ------------------------------------------------------------------------ */
/* Fixture loader                                                           */
/* ------------------------------------------------------------------------ */

typedef struct section {
    char name[64];
    char type[8];
    size_t count;
    const unsigned char *data;
} section;

typedef struct fixture {
    char *buf;
    int n;
    section s[128];
} fixture;

static fixture fx;

static size_t type_size(const char *t)
{
    return !strcmp(t, "u8") ? 1 : !strcmp(t, "i32") || !strcmp(t, "f32") ? 4
                                 : !strcmp(t, "f64") ? 8 : 0;
}

static int load_fixture(void **state)
{
    (void)state;
    size_t size;
    fx.buf = t_read_file(FIXTURE, &size);
    if (!fx.buf) {
        fprintf(stderr, "cannot read %s (run from the repository root)\n", FIXTURE);
        return -1;
    }
    const char *magic = "dnfixture 1\n";
    if (size < strlen(magic) || memcmp(fx.buf, magic, strlen(magic)))
        return -1;
    size_t pos = strlen(magic);
    for (;;) {
        const char *nl = memchr(fx.buf + pos, '\n', size - pos);
        if (!nl || fx.n == 128)
            return -1;
        char line[128];
        size_t len = (size_t)(nl - (fx.buf + pos));
        if (len >= sizeof line)
            return -1;
        memcpy(line, fx.buf + pos, len);
        line[len] = 0;
        pos += len + 1;
        if (!strcmp(line, "end"))
            return 0;
        section *s = &fx.s[fx.n];
        if (sscanf(line, "%63s %7s %zu", s->name, s->type, &s->count) != 3)
            return -1;
        size_t bytes = s->count * type_size(s->type);
        if (!type_size(s->type) || bytes > size - pos)
            return -1;
        s->data = (const unsigned char *)fx.buf + pos;
        pos += bytes;
        fx.n++;
    }
}

static int free_fixture(void **state)
{
    (void)state;
    free(fx.buf);
    return 0;
}

static const section *find(const char *name, const char *type, size_t count)
{
    for (int i = 0; i < fx.n; i++) {
        if (strcmp(fx.s[i].name, name))
            continue;
        if (strcmp(fx.s[i].type, type) || fx.s[i].count != count)
            fail_msg("fixture %s: %s[%zu], expected %s[%zu]", name, fx.s[i].type,
                     fx.s[i].count, type, count);
        return &fx.s[i];
    }
    fail_msg("fixture has no section %s", name);
    return NULL;
}

/* A float section copied out (the file gives no alignment); free it. */
static float *get_f32(const char *name, size_t count)
{
    const section *s = find(name, "f32", count);
    float *v = malloc(count * sizeof *v);
    assert_non_null(v);
    memcpy(v, s->data, count * sizeof *v);
    return v;
}

static void get_i32(const char *name, int32_t *out, size_t count)
{
    memcpy(out, find(name, "i32", count)->data, count * sizeof *out);
}

static double get_f64(const char *name)
{
    double v;
    memcpy(&v, find(name, "f64", 1)->data, sizeof v);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Comparisons                                                              */
/* ------------------------------------------------------------------------ */

/* Worst differences seen, printed at the end for the record. */
static double worst_fwd_abs, worst_fwd_rel, worst_grad_abs, worst_grad_rel;

static void check_forward(const char *what, const float *a, const float *b, size_t n)
{
    double maxb = 0.0, max_abs = 0.0, max_rel = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), scale = fmax(fabs(b[i]), 1.0);
        maxb = fmax(maxb, fabs(b[i]));
        max_abs = fmax(max_abs, d);
        max_rel = fmax(max_rel, d / scale);
        if (!(d <= 1e-5 * scale))
            fail_msg("%s[%zu]: %.9g vs PyTorch %.9g (diff %.3g)", what, i, a[i], b[i], d);
    }
    worst_fwd_abs = fmax(worst_fwd_abs, max_abs);
    worst_fwd_rel = fmax(worst_fwd_rel, max_rel);
    if (getenv("DN_TEST_VERBOSE"))
        printf("  %-32s max |diff| %.3g, max |diff|/max(|ref|,1) %.3g\n", what, max_abs,
               max_rel);
    if (!(maxb > 1e-3))
        fail_msg("%s: the reference is all (near) zero", what);
}

static void check_grad(const char *what, const float *a, const float *b, size_t n)
{
    double maxb = 0.0;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        maxb = fmax(maxb, fabs(b[i]));
        nonzero += b[i] != 0.0f;
    }
    if (!(maxb > 1e-6) || nonzero < n / 10)
        fail_msg("%s: the reference gradient is trivial (max %g, %zu of %zu non-zero)", what,
                 maxb, nonzero, n);
    double max_abs = 0.0, max_rel = 0.0, max_pure = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), scale = fmax(fabs(b[i]), 1e-2 * maxb);
        max_abs = fmax(max_abs, d);
        max_rel = fmax(max_rel, d / scale);
        if (b[i] != 0.0f)
            max_pure = fmax(max_pure, d / fabs(b[i]));
        if (!(d <= 1e-4 * scale))
            fail_msg("%s[%zu]: %.9g vs PyTorch %.9g (diff %.3g, tensor max %.3g)", what, i,
                     a[i], b[i], d, maxb);
    }
    worst_grad_abs = fmax(worst_grad_abs, max_abs);
    worst_grad_rel = fmax(worst_grad_rel, max_rel);
    if (getenv("DN_TEST_VERBOSE"))
        printf("  %-32s max |diff| %.3g (tensor max %.3g), rel %.3g (plain rel %.3g)\n",
               what, max_abs, maxb, max_rel, max_pure);
}

/* ------------------------------------------------------------------------ */
/* The model with PyTorch's weights                                         */
/* ------------------------------------------------------------------------ */

static dn_model *model_from_fixture(void)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(NULL, (dn_shape){1, 28, 28}, 7, &err);
    if (!m)
        fail_msg("dn_model_new: %s", err.msg);
    size_t loaded = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        if (!L->w_len)
            continue;
        char name[96];
        snprintf(name, sizeof name, "param.%s.weight", L->name);
        float *v = get_f32(name, L->w_len);
        memcpy(m->params + L->w_off, v, L->w_len * sizeof *v);
        free(v);
        snprintf(name, sizeof name, "param.%s.bias", L->name);
        v = get_f32(name, L->b_len);
        memcpy(m->params + L->b_off, v, L->b_len * sizeof *v);
        free(v);
        loaded += L->w_len + L->b_len;
    }
    assert_int_equal(loaded, m->n_params);
    assert_int_equal(m->n_params, 54186);
    return m;
}

static void labels_of(uint8_t *labels)
{
    memcpy(labels, find("labels", "u8", BATCH)->data, BATCH);
}

/* Runs one case ("eval" or "train") with the work in reference mode or
 * not, and compares everything the fixture holds for it. */
static void run_case(const char *which, int reference)
{
    dn_model *m = model_from_fixture();
    dn_work *w = dn_work_new(m, BATCH);
    assert_non_null(w);
    dn_work_set_reference(w, reference);
    float *x = get_f32("input", (size_t)BATCH * 784);
    uint8_t labels[BATCH];
    labels_of(labels);
    int train = !strcmp(which, "train");
    if (train) {
        static const char *const drops[] = {"drop1", "drop2"};
        for (int i = 0; i < 2; i++) {
            int l = dn_model_find(m, drops[i]);
            assert_true(l >= 0);
            char name[64];
            snprintf(name, sizeof name, "train.mask.%s", drops[i]);
            size_t n = (size_t)BATCH * m->layers[l].in.c;
            float *mask = get_f32(name, n);
            size_t zeros = 0;
            for (size_t j = 0; j < n; j++)
                zeros += mask[j] == 0.0f;
            assert_true(zeros > 0 && zeros < n); /* the masks do something */
            memcpy(dn_work_mask(w, l), mask, n * sizeof *mask);
            free(mask);
        }
    }
    const float *logp = dn_model_forward(m, w, x, BATCH, train ? DN_MODE_TRAIN_FIXED_MASK
                                                               : DN_MODE_EVAL, NULL);
    assert_non_null(logp);
    char name[96];
    snprintf(name, sizeof name, "%s.logp", which);
    float *ref = get_f32(name, BATCH * 10);
    check_forward(name, logp, ref, BATCH * 10);
    free(ref);

    snprintf(name, sizeof name, "%s.loss", which);
    double loss = dn_model_loss(m, w, labels, BATCH), ref_loss = get_f64(name);
    if (!(fabs(loss - ref_loss) <= 1e-5 * fmax(fabs(ref_loss), 1.0)))
        fail_msg("%s: %.9g vs PyTorch %.9g", name, loss, ref_loss);
    worst_fwd_abs = fmax(worst_fwd_abs, fabs(loss - ref_loss));

    if (reference && !train) {
        /* Intermediates, to tell which layer went wrong. */
        static const char *const acts[] = {"conv2", "fc1"};
        for (int i = 0; i < 2; i++) {
            int l = dn_model_find(m, acts[i]);
            size_t n = (size_t)BATCH * m->layers[l].out.c * m->layers[l].out.h *
                       m->layers[l].out.w;
            snprintf(name, sizeof name, "eval.act.%s", acts[i]);
            ref = get_f32(name, n);
            check_forward(name, dn_work_act(w, l), ref, n);
            free(ref);
        }
    }

    float *grads = calloc(m->n_params, sizeof *grads);
    assert_non_null(grads);
    dn_model_backward(m, w, labels, BATCH, 1.0f / BATCH, grads);
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        if (!L->w_len)
            continue;
        snprintf(name, sizeof name, "%s.grad.%s.weight", which, L->name);
        ref = get_f32(name, L->w_len);
        check_grad(name, grads + L->w_off, ref, L->w_len);
        free(ref);
        snprintf(name, sizeof name, "%s.grad.%s.bias", which, L->name);
        ref = get_f32(name, L->b_len);
        check_grad(name, grads + L->b_off, ref, L->b_len);
        free(ref);
    }
    free(grads);
    free(x);
    dn_work_free(w);
    dn_model_free(m);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

/* The library normalises raw pixels exactly as torchvision does. */
static void test_input_normalisation(void **state)
{
    (void)state;
    float *norm = get_f32("norm", 2);
    assert_true(norm[0] == DN_MNIST_MEAN && norm[1] == DN_MNIST_STD);
    float *x = get_f32("input", (size_t)BATCH * 784);
    dn_dataset ds = {0};
    ds.images = (uint8_t *)find("input.u8", "u8", (size_t)BATCH * 784)->data;
    ds.n = BATCH;
    ds.rows = ds.cols = 28;
    ds.mean = DN_MNIST_MEAN;
    ds.std = DN_MNIST_STD;
    float img[784];
    for (int b = 0; b < BATCH; b++) {
        dn_dataset_image(&ds, (size_t)b, img);
        for (int i = 0; i < 784; i++)
            if (img[i] != x[b * 784 + i])
                fail_msg("image %d pixel %d: %.9g vs torchvision %.9g", b, i, img[i],
                         x[b * 784 + i]);
    }
    free(x);
    free(norm);
}

static void test_eval_reference(void **state)
{
    (void)state;
    run_case("eval", 1);
}

static void test_train_fixed_mask_reference(void **state)
{
    (void)state;
    run_case("train", 1);
}

/* The default path (the fast kernels where they apply) must agree too. */
static void test_eval_default_path(void **state)
{
    (void)state;
    run_case("eval", 0);
}

static void test_train_fixed_mask_default_path(void **state)
{
    (void)state;
    run_case("train", 0);
}

/* F.conv2d on an odd shape: 3 -> 5 channels, 7x9, k5 p2 s2. */
static void test_conv_layer(void **state)
{
    (void)state;
    int32_t cf[8];
    get_i32("conv.config", cf, 8);
    int B = cf[0], C = cf[1], H = cf[2], W = cf[3], O = cf[4], k = cf[5], pad = cf[6],
        stride = cf[7];
    assert_true(k == 5 && pad == 2 && stride == 2 && C == 3 && O == 5 && H != W);
    int OH = dn_window_out(H, k, pad, stride), OW = dn_window_out(W, k, pad, stride);
    size_t n_in = (size_t)B * C * H * W, n_w = (size_t)O * C * k * k,
           n_out = (size_t)B * O * OH * OW;
    float *x = get_f32("conv.input", n_in), *wt = get_f32("conv.weight", n_w),
          *b = get_f32("conv.bias", (size_t)O), *dout = get_f32("conv.dout", n_out);
    float *out = calloc(n_out, 4), *dinp = calloc(n_in, 4), *dw = calloc(n_w, 4),
          *db = calloc((size_t)O, 4);
    assert_true(out && dinp && dw && db);
    dn_conv2d_forward(out, x, wt, b, B, C, H, W, O, k, pad, stride);
    dn_conv2d_backward(dinp, dw, db, dout, x, wt, B, C, H, W, O, k, pad, stride);
    static const char *const names[4] = {"conv.out", "conv.dinp", "conv.dweight", "conv.dbias"};
    float *mine[4] = {out, dinp, dw, db};
    size_t lens[4] = {n_out, n_in, n_w, (size_t)O};
    for (int i = 0; i < 4; i++) {
        float *ref = get_f32(names[i], lens[i]);
        if (i == 0)
            check_forward(names[i], mine[i], ref, lens[i]);
        else
            check_grad(names[i], mine[i], ref, lens[i]);
        free(ref);
    }
    free(x), free(wt), free(b), free(dout), free(out), free(dinp), free(dw), free(db);
}

/* F.max_pool2d on small integers (many ties, NaNs in pool3): the same
 * maxima and the gradient routed to the same places. */
static void test_maxpool_ties(void **state)
{
    (void)state;
    for (int c = 1; c <= 3; c++) {
        char name[32];
        int32_t cf[7];
        snprintf(name, sizeof name, "pool%d.config", c);
        get_i32(name, cf, 7);
        int B = cf[0], C = cf[1], H = cf[2], W = cf[3], k = cf[4], pad = cf[5], stride = cf[6];
        int OH = dn_window_out(H, k, pad, stride), OW = dn_window_out(W, k, pad, stride);
        size_t n_in = (size_t)B * C * H * W, n_out = (size_t)B * C * OH * OW;
        snprintf(name, sizeof name, "pool%d.input", c);
        float *x = get_f32(name, n_in);
        snprintf(name, sizeof name, "pool%d.dout", c);
        float *dout = get_f32(name, n_out);
        snprintf(name, sizeof name, "pool%d.out", c);
        float *ref_out = get_f32(name, n_out);
        snprintf(name, sizeof name, "pool%d.dinp", c);
        float *ref_dinp = get_f32(name, n_in);
        float *out = calloc(n_out, 4), *dinp = calloc(n_in, 4);
        int32_t *arg = calloc(n_out, sizeof *arg);
        assert_true(out && dinp && arg);
        dn_maxpool_forward(out, arg, x, B, C, H, W, k, pad, stride);
        dn_maxpool_backward(dinp, dout, arg, B, C, H, W, OH, OW);
        size_t nans = 0, ties = 0;
        for (size_t i = 0; i < n_out; i++) {
            nans += isnan(ref_out[i]);
            if (!(out[i] == ref_out[i] || (isnan(out[i]) && isnan(ref_out[i]))))
                fail_msg("pool%d out[%zu]: %g vs PyTorch %g", c, i, out[i], ref_out[i]);
        }
        for (size_t i = 0; i < n_in; i++) {
            ties += x[i] == 2.0f; /* the largest value, met in most windows */
            if (!(fabs(dinp[i] - ref_dinp[i]) <= 1e-6))
                fail_msg("pool%d dinp[%zu]: %g vs PyTorch %g (ties go to the first max)", c, i,
                         dinp[i], ref_dinp[i]);
        }
        assert_true(ties > n_in / 5);
        assert_true(c < 3 || nans > 0);
        free(x), free(dout), free(ref_out), free(ref_dinp), free(out), free(dinp), free(arg);
    }
}

/* The fixture itself is PyTorch's and the model's: the eval loss of an
 * untrained net is near ln 10 and the gradients differ between cases. */
static void test_fixture_sane(void **state)
{
    (void)state;
    double e = get_f64("eval.loss"), t = get_f64("train.loss");
    assert_true(fabs(e - log(10.0)) < 0.2);
    assert_true(e != t);
    float *ge = get_f32("eval.grad.conv1.weight", 72), *gt = get_f32("train.grad.conv1.weight", 72);
    assert_true(memcmp(ge, gt, 72 * sizeof *ge) != 0);
    free(ge);
    free(gt);
}

static int report(void **state)
{
    (void)state;
    printf("parity vs PyTorch: forward max abs %.3g rel %.3g; gradients max abs %.3g "
           "rel %.3g\n", worst_fwd_abs, worst_fwd_rel, worst_grad_abs, worst_grad_rel);
    return free_fixture(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_sane),
        cmocka_unit_test(test_input_normalisation),
        cmocka_unit_test(test_conv_layer),
        cmocka_unit_test(test_maxpool_ties),
        cmocka_unit_test(test_eval_reference),
        cmocka_unit_test(test_train_fixed_mask_reference),
        cmocka_unit_test(test_eval_default_path),
        cmocka_unit_test(test_train_fixed_mask_default_path),
    };
    return cmocka_run_group_tests(tests, load_fixture, report);
}
