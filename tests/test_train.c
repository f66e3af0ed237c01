/*
 * test_train.c - the trainer through the library API on a small subset of
 * MNIST: bit-identical weights for the same seed and for 1 or 2 threads,
 * exact resume (after an epoch and mid-epoch), learning, divergence
 * detection, evaluation independent of threads, and augmentation.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TRAIN 128 /* training images: 4 batches of 32 */
#define N_VAL 64   /* held out from the end of the training file */

static dn_dataset train_set;

static int setup(void **state)
{
    (void)state;
    return t_load_mnist(&train_set, "train");
}

static int teardown(void **state)
{
    (void)state;
    dn_dataset_free(&train_set);
    return 0;
}

/* Figures of each finished epoch, and an optional stop request. */
typedef struct record {
    int epochs_seen;
    double train_loss[8], eval_loss[8], eval_acc[8];
    int stop_epoch;         /* 1-based epoch in which to stop, 0: never */
    long stop_batch;        /* ... after this batch */
    long calls;
} record;

static int on_progress(const dn_train_progress *p, void *user)
{
    record *r = user;
    r->calls++;
    if (p->epoch_done && r->epochs_seen < 8) {
        r->train_loss[r->epochs_seen] = p->train_loss;
        r->eval_loss[r->epochs_seen] = p->eval_loss;
        r->eval_acc[r->epochs_seen] = p->eval_acc;
        r->epochs_seen++;
    }
    return !p->epoch_done && p->epoch == r->stop_epoch && p->batch == r->stop_batch;
}

static void small_config(dn_train_config *c, record *r)
{
    dn_train_defaults(c);
    c->epochs = 2;
    c->limit = N_TRAIN;
    c->batch = 32;
    c->val = N_VAL;
    c->threads = 2;
    c->progress = on_progress;
    c->user = r;
}

static dn_model *new_model(uint64_t seed)
{
    dn_error err = {0};
    dn_shape in = {1, 28, 28};
    dn_model *m = dn_model_new(NULL, in, seed, &err);
    if (!m)
        fail_msg("dn_model_new: %s", err.msg);
    return m;
}

/* Trains a fresh model with c and returns it. */
static dn_model *train_new(const dn_train_config *c)
{
    dn_model *m = new_model(c->seed);
    dn_error err = {0};
    dn_status st = dn_train(m, &train_set, NULL, c, NULL, &err);
    if (st != DN_OK)
        fail_msg("dn_train: %s", err.msg);
    return m;
}

static void assert_same_params(const dn_model *a, const dn_model *b)
{
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
}

/* One uninterrupted reference run shared by the tests below. */
static dn_model *reference;
static record reference_rec;

static const dn_model *get_reference(void)
{
    if (!reference) {
        dn_train_config c;
        memset(&reference_rec, 0, sizeof reference_rec);
        small_config(&c, &reference_rec);
        reference = train_new(&c);
    }
    return reference;
}

static void test_same_seed_bit_identical(void **state)
{
    (void)state;
    t_need_mnist();
    const dn_model *a = get_reference();
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    dn_model *b = train_new(&c);
    assert_same_params(a, b);
    /* The training really changed the weights. */
    dn_model *init = new_model(c.seed);
    assert_memory_not_equal(init->params, b->params, b->n_params * sizeof(float));
    /* A different seed gives other weights. */
    c.seed = 2;
    c.epochs = 1;
    dn_model *d = train_new(&c);
    assert_memory_not_equal(d->params, b->params, b->n_params * sizeof(float));
    dn_model_free(init);
    dn_model_free(b);
    dn_model_free(d);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    t_need_mnist();
    const dn_model *a = get_reference(); /* 2 threads */
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    c.threads = 1;
    dn_model *b = train_new(&c);
    assert_same_params(a, b);
    assert_true(r.train_loss[1] == reference_rec.train_loss[1]);
    assert_true(r.eval_loss[1] == reference_rec.eval_loss[1]);
    dn_model_free(b);
}

/* Interrupted after stop_epoch/stop_batch (0: after the first epoch), then
 * resumed from the checkpoint file with 1 thread. */
static void resume_case(int stop_epoch, long stop_batch)
{
    const dn_model *a = get_reference();
    char path[512];
    t_tmppath(path, sizeof path, "resume.safetensors");
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    c.checkpoint = path;
    dn_error err = {0};
    dn_model *m = new_model(c.seed);
    if (stop_epoch) {
        r.stop_epoch = stop_epoch;
        r.stop_batch = stop_batch;
        assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_INTERRUPTED);
        assert_non_null(strstr(err.msg, path));
    } else {
        c.epochs = 1;
        assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_OK);
    }
    dn_model_free(m);

    dn_file_extras x;
    memset(&x, 0, sizeof x);
    m = dn_model_load(path, &x, &err);
    if (!m)
        fail_msg("dn_model_load: %s", err.msg);
    dn_train_config rc;
    dn_train_defaults(&rc);
    int done = -1;
    assert_int_equal(dn_train_config_from_checkpoint(&x, &rc, &done, &err), DN_OK);
    assert_int_equal(done, stop_epoch ? stop_epoch - 1 : 1);
    assert_int_equal(rc.limit, N_TRAIN);
    assert_int_equal(rc.val, N_VAL);
    assert_int_equal(rc.optim.kind, DN_OPTIM_ADADELTA);
    assert_true(rc.optim.lr == 1.0 && rc.sched.gamma == 0.7);
    record r2 = {0};
    rc.epochs = 2;
    rc.threads = 1;
    rc.checkpoint = path;
    rc.progress = on_progress;
    rc.user = &r2;
    assert_int_equal(dn_train(m, &train_set, NULL, &rc, &x, &err), DN_OK);
    assert_same_params(a, m);
    /* The epoch's train loss is carried over a mid-epoch stop too. */
    assert_true(r2.train_loss[r2.epochs_seen - 1] == reference_rec.train_loss[1]);

    /* A checkpoint refuses a recipe other than its own. */
    dn_model_free(m);
    dn_file_extras_free(&x);
    m = dn_model_load(path, &x, &err);
    assert_non_null(m);
    rc.optim.lr = 0.5;
    rc.epochs = 3;
    assert_int_equal(dn_train(m, &train_set, NULL, &rc, &x, &err), DN_ERR_ARG);
    assert_non_null(strstr(err.msg, "recipe"));
    dn_model_free(m);
    dn_file_extras_free(&x);
}

static void test_resume_after_epoch_bit_identical(void **state)
{
    (void)state;
    t_need_mnist();
    resume_case(0, 0);
}

static void test_resume_mid_epoch_bit_identical(void **state)
{
    (void)state;
    t_need_mnist();
    resume_case(2, 1);
    resume_case(1, 3);
}

static void test_loss_decreases(void **state)
{
    (void)state;
    t_need_mnist();
    get_reference();
    assert_int_equal(reference_rec.epochs_seen, 2);
    /* Chance is ln 10 = 2.30. Two epochs of 4 steps on 128 images move
     * both losses down clearly (by about 0.15). */
    assert_true(reference_rec.train_loss[1] < reference_rec.train_loss[0] - 0.05);
    assert_true(reference_rec.eval_loss[1] < reference_rec.eval_loss[0] - 0.05);
    assert_true(reference_rec.eval_loss[1] < 2.25);
    /* A progress call per batch and one per epoch: 2 * (4 + 1). */
    assert_int_equal(reference_rec.calls, 10);
}

static void test_divergence_is_reported(void **state)
{
    (void)state;
    t_need_mnist();
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    dn_optim_defaults(&c.optim, DN_OPTIM_SGD);
    c.optim.lr = 1e30;
    dn_model *m = new_model(1);
    dn_error err = {0};
    assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "epoch 1"));
    assert_non_null(strstr(err.msg, "batch"));
    assert_non_null(strstr(err.msg, "lower learning rate"));
    dn_model_free(m);
}

static void test_bad_config(void **state)
{
    (void)state;
    t_need_mnist();
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    dn_model *m = new_model(1);
    dn_error err = {0};
    c.batch = 0;
    assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_ARG);
    c.batch = 64;
    c.val = train_set.n;
    assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_ARG);
    assert_non_null(strstr(err.msg, "validation"));
    c.val = N_VAL;
    c.optim.rho = 2;
    assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_ARG);
    dn_model_free(m);
}

static void test_evaluate_independent_of_threads(void **state)
{
    (void)state;
    t_need_mnist();
    const dn_model *m = get_reference();
    size_t n = 300, first = train_set.n - n;
    int K = dn_model_classes(m);
    float *a = malloc(n * K * sizeof *a), *b = malloc(n * K * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    double la, lb;
    size_t ca, cb;
    dn_error err = {0};
    assert_int_equal(dn_evaluate(m, &train_set, first, n, 1, 64, a, &la, &ca, &err), DN_OK);
    assert_int_equal(dn_evaluate(m, &train_set, first, n, 2, 7, b, &lb, &cb, &err), DN_OK);
    assert_memory_equal(a, b, n * K * sizeof *a);
    assert_true(la == lb);
    assert_int_equal(ca, cb);
    /* The loss is the mean of -logp[label] and rows are log-probabilities. */
    double sum = 0;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = a + i * K;
        sum -= row[train_set.labels[first + i]];
        double total = 0;
        int best = 0;
        for (int k = 0; k < K; k++) {
            total += exp(row[k]);
            if (row[k] > row[best])
                best = k;
        }
        assert_float_equal(total, 1.0, 1e-4);
        hits += best == train_set.labels[first + i];
    }
    assert_float_equal(la, sum / n, 1e-9);
    assert_int_equal(ca, hits);
    assert_int_equal(dn_evaluate(m, &train_set, train_set.n - 5, 10, 1, 8, NULL, NULL, NULL,
                                 &err),
                     DN_ERR_ARG);
    free(a);
    free(b);
}

static void test_augment(void **state)
{
    (void)state;
    t_need_mnist();
    enum { R = 28, C = 28 };
    uint8_t img[R * C];
    float a[R * C], b[R * C];
    const float mean = DN_MNIST_MEAN, std = DN_MNIST_STD;
    /* Blank stays blank; a full frame stays full in the middle. */
    memset(img, 0, sizeof img);
    dn_augment_image(img, R, C, 42, mean, std, a);
    for (int i = 0; i < R * C; i++)
        assert_float_equal(a[i], (0 - mean) / std, 1e-6);
    memset(img, 255, sizeof img);
    dn_augment_image(img, R, C, 42, mean, std, a);
    for (int y = 8; y < 20; y++)
        for (int x = 8; x < 20; x++)
            assert_float_equal(a[y * C + x], (1 - mean) / std, 1e-5);

    /* A real digit: same key, same picture; other keys, other pictures
     * that keep most of the ink (the digit stays in the frame). */
    const uint8_t *digit = train_set.images;
    double ink = 0;
    for (int i = 0; i < R * C; i++)
        ink += digit[i] / 255.0;
    dn_augment_image(digit, R, C, 7, mean, std, a);
    dn_augment_image(digit, R, C, 7, mean, std, b);
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (uint64_t k = 0; k < 50; k++) {
        dn_augment_image(digit, R, C, dn_key(1, DN_STREAM_AUGMENT, 0, k), mean, std, b);
        differ += memcmp(a, b, sizeof a) != 0;
        double got = 0;
        for (int i = 0; i < R * C; i++)
            got += b[i] * std + mean;
        /* Scale 0.9..1.1 changes the area by 0.81..1.21. */
        assert_true(got > 0.75 * ink && got < 1.3 * ink);
    }
    assert_true(differ >= 49);
}

/* A model that does not end in 10 log-probabilities is neither trained
 * nor evaluated: without logsoftmax the "loss" goes negative, and "conv 8,
 * relu" would train on 5408 "classes". */
static void test_classifier_required(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *phrase;
    } cases[] = {
        {"conv 8, relu", "ends in 'relu' with 5408 outputs"},
        {"flatten, fc 10", "add 'logsoftmax' at the end"},
        {"flatten, fc 5, logsoftmax", "make the last fc 'fc 10'"},
        {"flatten, fc 64, relu", "finish the spec with 'fc 10, logsoftmax'"},
    };
    dn_shape in = {1, 28, 28};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_error err = {0};
        dn_model *m = dn_model_new(cases[i].spec, in, 1, &err);
        assert_non_null(m);
        record r = {0};
        dn_train_config c;
        small_config(&c, &r);
        c.epochs = 1;
        assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_ERR_SHAPE);
        if (!strstr(err.msg, cases[i].phrase))
            fail_msg("dn_train of '%s': %s", cases[i].spec, err.msg);
        assert_int_equal(r.calls, 0);
        memset(&err, 0, sizeof err);
        assert_int_equal(dn_evaluate(m, &train_set, 0, 10, 1, 10, NULL, NULL, NULL, &err),
                         DN_ERR_SHAPE);
        assert_non_null(strstr(err.msg, cases[i].phrase));
        assert_int_equal(dn_model_check_classifier(m, 10, &err), DN_ERR_SHAPE);
        dn_model_free(m);
    }
    dn_error err = {0};
    dn_model *m = new_model(1);
    assert_int_equal(dn_model_check_classifier(m, 10, &err), DN_OK);
    assert_int_equal(dn_model_check_classifier(m, 5, &err), DN_ERR_SHAPE);
    assert_int_equal(dn_model_check_classifier(NULL, 10, &err), DN_ERR_ARG);
    dn_model_free(m);
}

/* Sets metadata key of x to value (which must exist). */
static void set_meta(dn_file_extras *x, const char *key, const char *value)
{
    for (int i = 0; i < x->n_meta; i++) {
        if (!strcmp(x->meta[i].key, key)) {
            snprintf(x->meta[i].value, sizeof x->meta[i].value, "%s", value);
            return;
        }
    }
    fail_msg("no metadata %s", key);
}

/* train.config with `from` replaced by `to`. */
static void edit_config(dn_file_extras *x, const char *from, const char *to)
{
    const char *cfg = dn_file_extras_get(x, "train.config");
    assert_non_null(cfg);
    const char *at = strstr(cfg, from);
    if (!at)
        fail_msg("'%s' not in %s", from, cfg);
    char buf[1024];
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
    set_meta(x, "train.config", buf);
}

/* Corrupt values in a checkpoint are the file's fault (DN_ERR_FORMAT
 * naming the key), never a usage error and never wrapped or cast into
 * something else. */
static void test_checkpoint_bad_values(void **state)
{
    (void)state;
    char path[512];
    t_tmppath(path, sizeof path, "bad-values.safetensors");
    record r = {0};
    dn_train_config c;
    small_config(&c, &r);
    c.epochs = 1;
    c.checkpoint = path;
    dn_model *m = new_model(1);
    dn_error err = {0};
    assert_int_equal(dn_train(m, &train_set, NULL, &c, NULL, &err), DN_OK);
    dn_model_free(m);

    static const struct {
        const char *key, *from, *to, *phrase;
    } cases[] = {
        {"train.epoch", NULL, "99999999999", "\"train.epoch\" is \"99999999999\""},
        {"train.epoch", NULL, "-1", "\"train.epoch\" is \"-1\""},
        {"train.config", "\"lr\":1.0", "\"lr\":-1.0", "learning rate must be >= 0"},
        {"train.config", "\"batch\":32", "\"batch\":32.5", "not as digitnet writes it"},
        {"train.config", "\"val\":64", "\"val\":1e300", "\"val\" is missing or out of range"},
        {"train.config", "\"gamma\":0.69999999999999996", "\"gamma\":0",
         "gamma must be > 0"},
        {"train.config", "\"optim\":\"adadelta\"", "\"optim\":\"rmsprop\"", "\"optim\""},
        {"train.config", "\"seed\":\"1\"", "\"seed\":\"-1\"", "not as digitnet writes it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_file_extras x;
        m = dn_model_load(path, &x, &err);
        if (!m)
            fail_msg("dn_model_load: %s", err.msg);
        if (cases[i].from)
            edit_config(&x, cases[i].from, cases[i].to);
        else
            set_meta(&x, cases[i].key, cases[i].to);
        dn_train_config rc;
        dn_train_defaults(&rc);
        int done = -7;
        memset(&err, 0, sizeof err);
        dn_status st = dn_train_config_from_checkpoint(&x, &rc, &done, &err);
        if (st != DN_ERR_FORMAT || !strstr(err.msg, cases[i].phrase) ||
            !strstr(err.msg, cases[i].key))
            fail_msg("case %zu: wanted a format error naming %s ('%s'), got %s (done %d): %s",
                     i, cases[i].key, cases[i].phrase, dn_status_str(st), done, err.msg);
        assert_int_equal(done, -7);
        dn_file_extras_free(&x);
        dn_model_free(m);
    }

    /* Position metadata the resumed run reads: named too. */
    dn_file_extras x;
    m = dn_model_load(path, &x, &err);
    assert_non_null(m);
    set_meta(&x, "train.batch", "4294967296000");
    dn_train_config rc;
    dn_train_defaults(&rc);
    assert_int_equal(dn_train_config_from_checkpoint(&x, &rc, NULL, &err), DN_OK);
    rc.epochs = 2;
    assert_int_equal(dn_train(m, &train_set, NULL, &rc, &x, &err), DN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "\"train.batch\""));
    dn_file_extras_free(&x);
    dn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_bit_identical),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_resume_after_epoch_bit_identical),
        cmocka_unit_test(test_resume_mid_epoch_bit_identical),
        cmocka_unit_test(test_loss_decreases),
        cmocka_unit_test(test_divergence_is_reported),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_evaluate_independent_of_threads),
        cmocka_unit_test(test_augment),
        cmocka_unit_test(test_classifier_required),
        cmocka_unit_test(test_checkpoint_bad_values),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    dn_model_free(reference);
    return rc;
}
