/*
 * test_train_commit.c - the trainer and its checkpoints: divergence (a
 * parameter the optimizer step makes NaN, which a ReLU can hide from the
 * loss) stops the run before anything is written; the progress callback
 * hears of an epoch before that epoch's checkpoint is written, and a
 * dn_train_saver writes it, so that a caller can commit its own files with
 * the model. On a small synthetic dataset: no MNIST needed.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* n random 28x28 images with labels i % 10, normalised as MNIST. */
static void synthetic(dn_dataset *ds, size_t n)
{
    memset(ds, 0, sizeof *ds);
    ds->images = malloc(n * 28 * 28);
    ds->labels = malloc(n);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    uint32_t s = 12345;
    for (size_t i = 0; i < n * 28 * 28; i++) {
        s = s * 1664525u + 1013904223u;
        ds->images[i] = (uint8_t)(s >> 24);
    }
    for (size_t i = 0; i < n; i++)
        ds->labels[i] = (uint8_t)(i % 10);
    ds->n = n;
    ds->rows = ds->cols = 28;
    ds->mean = DN_MNIST_MEAN;
    ds->std = DN_MNIST_STD;
    snprintf(ds->name, sizeof ds->name, "mnist");
    ds->class_names = names;
}

static void small_config(dn_train_config *c, const char *checkpoint)
{
    dn_train_defaults(c);
    c->epochs = 2;
    c->batch = 32;
    c->threads = 2;
    c->checkpoint = checkpoint;
}

static void test_nan_parameters_are_divergence(void **state)
{
    (void)state;
    dn_dataset ds;
    synthetic(&ds, 96);
    char path[600];
    t_tmppath(path, sizeof path, "diverged.safetensors");
    dn_train_config c;
    small_config(&c, path);
    c.optim.eps = 0; /* Adadelta: 0/0 where a gradient is 0 */
    dn_error err = {0};
    dn_shape in = DN_INPUT_SHAPE;
    dn_model *m = dn_model_new(NULL, in, 1, &err);
    assert_non_null(m);
    assert_int_equal(dn_train(m, &ds, NULL, &c, NULL, &err), DN_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "diverged"));
    assert_non_null(strstr(err.msg, "epoch 1, batch 1 of 3"));
    assert_non_null(strstr(err.msg, "eps is 0"));
    /* No checkpoint of NaN weights. */
    assert_int_not_equal(access(path, F_OK), 0);
    dn_model_free(m);
    dn_dataset_free(&ds);
}

/* What the callback and the saver saw, in order. */
typedef struct events {
    char log[256];
    const char *path;
    int bad_path;
} events;

static int on_progress(const dn_train_progress *p, void *user)
{
    events *e = user;
    if (p->epoch_done) {
        size_t len = strlen(e->log);
        snprintf(e->log + len, sizeof e->log - len, "epoch%d ", p->epoch);
    }
    return 0;
}

static dn_status on_save(const dn_model *m, const char *path, dn_file_extras *x, void *user,
                         dn_error *err)
{
    events *e = user;
    size_t len = strlen(e->log);
    snprintf(e->log + len, sizeof e->log - len, "save ");
    e->bad_path |= strcmp(path, e->path) != 0;
    /* The saver may add its own metadata. */
    snprintf(x->meta[x->n_meta].key, sizeof x->meta[x->n_meta].key, "test.note");
    snprintf(x->meta[x->n_meta].value, sizeof x->meta[x->n_meta].value, "saved by the test");
    x->n_meta++;
    return dn_model_save(m, path, x, err);
}

static void test_callback_before_checkpoint_then_saver(void **state)
{
    (void)state;
    dn_dataset ds;
    synthetic(&ds, 96);
    char path[600];
    t_tmppath(path, sizeof path, "saver.safetensors");
    events e = {"", path, 0};
    dn_train_config c;
    small_config(&c, path);
    c.progress = on_progress;
    c.save = on_save;
    c.user = &e;
    dn_error err = {0};
    dn_shape in = DN_INPUT_SHAPE;
    dn_model *m = dn_model_new(NULL, in, 1, &err);
    assert_non_null(m);
    assert_int_equal(dn_train(m, &ds, NULL, &c, NULL, &err), DN_OK);
    assert_string_equal(e.log, "epoch1 save epoch2 save ");
    assert_false(e.bad_path);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    dn_model *back = dn_model_load(path, &x, &err);
    assert_non_null(back);
    assert_string_equal(dn_file_extras_get(&x, "test.note"), "saved by the test");
    assert_string_equal(dn_file_extras_get(&x, "train.epoch"), "2");
    assert_memory_equal(back->params, m->params, m->n_params * sizeof(float));
    dn_file_extras_free(&x);
    dn_model_free(back);
    dn_model_free(m);
    dn_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nan_parameters_are_divergence),
        cmocka_unit_test(test_callback_before_checkpoint_then_saver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
