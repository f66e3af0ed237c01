/*
 * test_metrics.c - src/metrics.c on hand-computed cases (arg-max ties and
 * NaN, accuracy and its standard error, a confusion matrix with a class
 * never predicted and one never present, the order of the most confused
 * pairs), and the training presets (src/presets.c).
 */
#include "test.h"

#include <math.h>
#include <string.h>

static void test_argmax(void **state)
{
    (void)state;
    const float a[] = {-3.0f, -0.5f, -0.5f, -7.0f};
    assert_int_equal(dn_argmax(a, 4), 1);          /* the first of a tie */
    assert_int_equal(dn_argmax(a, 1), 0);
    assert_int_equal(dn_argmax(a, 0), 0);
    const float b[] = {-2.0f, NAN, -1.0f};
    assert_int_equal(dn_argmax(b, 3), 2);          /* NaN never wins */
    const float c[] = {NAN, 5.0f};
    assert_int_equal(dn_argmax(c, 2), 0);          /* ... nor loses its place */
}

static void test_accuracy(void **state)
{
    (void)state;
    double se = 0;
    assert_float_equal(dn_accuracy(98, 100, &se), 0.98, 1e-15);
    assert_float_equal(se, sqrt(0.98 * 0.02 / 100), 1e-15); /* 0.014 */
    assert_float_equal(se, 0.014, 1e-12);
    assert_float_equal(dn_accuracy(10, 10, &se), 1.0, 0);
    assert_float_equal(se, 0.0, 0);
    assert_true(isnan(dn_accuracy(0, 0, &se)));
    assert_true(isnan(se));
    assert_float_equal(dn_accuracy(1, 4, NULL), 0.25, 0);
}

/* Five images of three classes: labels 0 0 1 1 2 predicted 0 1 1 1 1, and
 * one with label 7 (not a class), which is not counted. */
static void confusion(size_t cm[9], size_t *right)
{
    const float logp[6][3] = {
        {-0.1f, -2.0f, -3.0f}, /* 0 -> 0 */
        {-2.0f, -0.1f, -3.0f}, /* 0 -> 1 */
        {-2.0f, -0.2f, -3.0f}, /* 1 -> 1 */
        {-2.0f, -0.3f, -3.0f}, /* 1 -> 1 */
        {-2.0f, -0.4f, -3.0f}, /* 2 -> 1 */
        {-0.1f, -2.0f, -3.0f}, /* 7 -> 0, skipped */
    };
    const uint8_t labels[6] = {0, 0, 1, 1, 2, 7};
    memset(cm, 0, 9 * sizeof *cm);
    *right = dn_confusion_add(cm, 3, &logp[0][0], labels, 6);
}

static void test_confusion_and_scores(void **state)
{
    (void)state;
    size_t cm[9], right;
    confusion(cm, &right);
    const size_t want[9] = {1, 1, 0, 0, 2, 0, 0, 1, 0};
    assert_memory_equal(cm, want, sizeof want);
    assert_int_equal(right, 3);
    dn_class_scores s[3];
    dn_class_scores_of(cm, 3, s);
    /* class 0: predicted once, right once; two images. */
    assert_float_equal(s[0].precision, 1.0, 0);
    assert_float_equal(s[0].recall, 0.5, 0);
    assert_float_equal(s[0].f1, 2 * 1.0 * 0.5 / 1.5, 1e-15);
    assert_int_equal(s[0].support, 2);
    /* class 1: predicted four times, right twice; both its images right. */
    assert_float_equal(s[1].precision, 0.5, 0);
    assert_float_equal(s[1].recall, 1.0, 0);
    assert_int_equal(s[1].support, 2);
    /* class 2: never predicted, its one image wrong: all zero. */
    assert_float_equal(s[2].precision, 0.0, 0);
    assert_float_equal(s[2].recall, 0.0, 0);
    assert_float_equal(s[2].f1, 0.0, 0);
    assert_int_equal(s[2].support, 1);
}

static void test_most_confused(void **state)
{
    (void)state;
    /* Off-diagonal counts 3, 1, 3, 2, 0, 1: ties go by (true, predicted). */
    const size_t cm[9] = {9, 3, 1, 3, 9, 2, 0, 1, 9};
    dn_confused_pair p[6];
    int n = dn_most_confused(cm, 3, p, 6);
    assert_int_equal(n, 5);
    const int want[5][3] = {{0, 1, 3}, {1, 0, 3}, {1, 2, 2}, {0, 2, 1}, {2, 1, 1}};
    for (int i = 0; i < n; i++) {
        assert_int_equal(p[i].truth, want[i][0]);
        assert_int_equal(p[i].predicted, want[i][1]);
        assert_int_equal(p[i].count, want[i][2]);
    }
    /* The first two only, and none. */
    assert_int_equal(dn_most_confused(cm, 3, p, 2), 2);
    assert_int_equal(p[0].truth * 10 + p[0].predicted, 1);
    assert_int_equal(p[1].truth * 10 + p[1].predicted, 10);
    assert_int_equal(dn_most_confused(cm, 3, p, 0), 0);
    const size_t diag[4] = {5, 0, 0, 5};
    assert_int_equal(dn_most_confused(diag, 2, p, 6), 0);
}

static void test_presets(void **state)
{
    (void)state;
    dn_train_config a, b;
    dn_error err = {0};
    dn_train_defaults(&a);
    assert_int_equal(dn_train_preset("lecture", &b, &err), DN_OK);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(a.epochs, 14);
    assert_int_equal(a.optim.kind, DN_OPTIM_ADADELTA);
    assert_int_equal(a.sched.kind, DN_SCHED_STEP);

    assert_int_equal(dn_train_preset("best", &b, &err), DN_OK);
    assert_int_equal(b.epochs, 40);
    assert_int_equal(b.batch, 64);
    assert_true(b.augment);
    assert_int_equal(b.optim.kind, DN_OPTIM_ADAM);
    assert_float_equal(b.optim.lr, 5e-3, 0);
    assert_int_equal(b.sched.kind, DN_SCHED_ONECYCLE);
    assert_int_equal(b.seed, 1);

    /* "wide" trains its own network; the others the lecture's. */
    assert_int_equal(dn_train_preset("wide", &b, &err), DN_OK);
    assert_int_equal(b.epochs, 20);
    assert_true(b.augment);
    assert_int_equal(b.optim.kind, DN_OPTIM_ADAMW);
    assert_float_equal(b.optim.lr, 2e-3, 0);
    assert_float_equal(b.optim.weight_decay, 0.15, 0);
    assert_int_equal(b.sched.kind, DN_SCHED_ONECYCLE);
    assert_null(dn_train_preset_spec("lecture"));
    assert_null(dn_train_preset_spec("best"));
    assert_null(dn_train_preset_spec("fastest"));
    dn_shape in = DN_INPUT_SHAPE;
    dn_model *m = dn_model_new(dn_train_preset_spec("wide"), in, 1, &err);
    assert_non_null(m);
    assert_int_equal(dn_model_classes(m), 10);
    assert_true(m->n_params > 54186);
    dn_model_free(m);

    /* An unknown name names the choices and leaves the config alone. */
    dn_train_config before = b;
    assert_int_equal(dn_train_preset("fastest", &b, &err), DN_ERR_ARG);
    const char *want = "unknown preset 'fastest', expected ";
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    for (int i = 0; dn_train_preset_name(i, NULL); i++)
        assert_non_null(strstr(err.msg, dn_train_preset_name(i, NULL)));
    assert_memory_equal(&b, &before, sizeof b);
    assert_int_equal(dn_train_preset(NULL, &b, &err), DN_ERR_ARG);

    /* The list ends, every name in it works, and each has a summary. */
    const char *name, *summary;
    int n = 0;
    while ((name = dn_train_preset_name(n, &summary)) != NULL) {
        assert_int_equal(dn_train_preset(name, &b, NULL), DN_OK);
        assert_non_null(summary);
        n++;
    }
    assert_true(n >= 2);
    assert_null(dn_train_preset_name(-1, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_confusion_and_scores),
        cmocka_unit_test(test_most_confused),
        cmocka_unit_test(test_presets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
