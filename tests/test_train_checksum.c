/*
 * test_train_checksum.c - the trained weights, bit for bit, against values
 * recorded before the trainer was restructured (issue 10): one epoch on the
 * first 2,000 MNIST training images, evaluated on the last 500 of the
 * training file (held out with val), seed 1, with the "lecture" and "best" presets, through the
 * general reference kernels and through the fast kernels, with 1 and 2
 * threads. The checksum is FNV-1a (64 bits) of the parameter block's bytes;
 * the held-out loss and accuracy after the epoch are compared exactly too.
 *
 * Re-recording rules:
 *  - The reference-path values must never change: they pin the arithmetic
 *    of the general kernels, the optimizers, the schedules, shuffling,
 *    dropout and augmentation. A change there is a change of results.
 *  - The fast-path values may be re-recorded by a rewrite of the fast
 *    kernels (issue 11) that changes the order of floating-point
 *    operations, only with the reason stated in the commit; they were
 *    recorded per instruction set (AVX-512 and AVX2 round differently)
 *    and checked where those kernels run.
 * Recorded with gcc 12 (the reference path gives the same bits at -O1
 * under ASan+UBSan and at -O2).
 */
#include "test.h"

#include "fast.h"

#include <stdio.h>
#include <string.h>

#define N_TRAIN 2000
#define N_VAL 500

typedef struct recorded {
    const char *preset;
    int reference;
    int isa; /* fast path: the kernels recorded with (DN_FAST_ISA_*) */
    uint64_t checksum;
    double val_loss, val_acc;
} recorded;

/* Both thread counts must give these (the trainer's sums do not depend
 * on the number of threads). */
static const recorded values[] = {
    {"lecture", 1, 0, 0x1c42e45c30c751e5ULL, 0.82330414013303743, 0.69399999999999995},
    {"best", 1, 0, 0x04b33a4260be019eULL, 0.598700130559504, 0.878},
    /* Re-recorded for issue 11: the fast kernels for every spec sum in
     * another order (weight gradients per channel pair over blocks of
     * samples, fully connected layers in blocks of samples); forward and
     * backward still agree with the reference within test_fast's
     * tolerances, and the held-out accuracy is the same. Re-recorded again
     * when the convolution weight gradient's output-gradient planes came to
     * start each row at column 0 (aligned loads: each lane sums other
     * columns before the lanes are added) and each (output, input) channel
     * pair came to visit only the samples that keep both: summation order
     * only; the held-out accuracy is the same. Re-recorded again when
     * stride-1 3x3 and 5x5 convolutions came to visit their taps a kernel
     * column at a time (each input row loaded once for two output rows):
     * the forward and input-gradient sums add the taps in another order.
     * Re-recorded again when a convolution's bias gradient came to be
     * summed by lane over the whole gradient map, the lanes added once
     * (not once per row). */
    {"lecture", 0, DN_FAST_ISA_AVX512, 0x45bb1e9667f2b742ULL, 0.82330420901017354, 0.69399999999999995},
    {"best", 0, DN_FAST_ISA_AVX512, 0x23d72b6cf5a86b14ULL, 0.59870012431219222, 0.878},
    /* The AVX2 kernels, recorded when they came to work on one ymm of
     * columns at a time (conv blocks of up to 5 channels, the weight
     * gradient's lanes summed per ymm); again with the taps a column at a
     * time, and the bias gradient by lane, as above (recorded on the
     * AVX-512 machine with the AVX2 kernels forced). */
    {"lecture", 0, DN_FAST_ISA_AVX2, 0xd689f70f66c3b064ULL, 0.82330416815023277, 0.69399999999999995},
    {"best", 0, DN_FAST_ISA_AVX2, 0x7cc5ab9b257a4c88ULL, 0.59870012168772524, 0.878},
};

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

static uint64_t fnv1a(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

typedef struct outcome {
    double val_loss, val_acc;
} outcome;

static int on_progress(const dn_train_progress *p, void *user)
{
    if (p->epoch_done) {
        ((outcome *)user)->val_loss = p->eval_loss;
        ((outcome *)user)->val_acc = p->eval_acc;
    }
    return 0;
}

static void check(const recorded *r, int threads)
{
    t_need_mnist();
    dn_train_config c;
    dn_error err = {0};
    assert_int_equal(dn_train_preset(r->preset, &c, &err), DN_OK);
    c.epochs = 1;
    c.limit = N_TRAIN;
    c.val = N_VAL;
    c.threads = threads;
    c.reference = r->reference;
    outcome o = {0, 0};
    c.progress = on_progress;
    c.user = &o;
    dn_shape in = DN_INPUT_SHAPE;
    dn_model *m = dn_model_new(NULL, in, c.seed, &err);
    assert_non_null(m);
    if (dn_train(m, &train_set, NULL, &c, NULL, &err) != DN_OK)
        fail_msg("dn_train: %s", err.msg);
    uint64_t got = fnv1a(m->params, m->n_params * sizeof *m->params);
    dn_model_free(m);
    if (got != r->checksum)
        fail_msg("%s, %s kernels, %d thread(s): weights checksum 0x%016llx, recorded "
                 "0x%016llx", r->preset, r->reference ? "reference" : "fast", threads,
                 (unsigned long long)got, (unsigned long long)r->checksum);
    if (o.val_loss != r->val_loss || o.val_acc != r->val_acc)
        fail_msg("%s, %s kernels, %d thread(s): held-out loss %.17g acc %.17g, recorded "
                 "%.17g %.17g", r->preset, r->reference ? "reference" : "fast", threads,
                 o.val_loss, o.val_acc, r->val_loss, r->val_acc);
}

/* The recorded fast-path values for this machine's kernels, or a skip. */
static const recorded *fast_values(const char *preset)
{
    int isa = dn_fast_best_isa();
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (!values[i].reference && values[i].isa == isa && !strcmp(values[i].preset, preset))
            return &values[i];
    print_message("no fast-path checksums are recorded for the %s kernels this machine "
                  "runs, skipping\n", dn_fast_isa_name(isa));
    skip();
    return NULL;
}

static void test_reference_lecture(void **state)
{
    (void)state;
    check(&values[0], 1);
    check(&values[0], 2);
}

static void test_reference_best(void **state)
{
    (void)state;
    check(&values[1], 2);
}

static void test_fast_lecture(void **state)
{
    (void)state;
    const recorded *r = fast_values("lecture");
    check(r, 1);
    check(r, 2);
}

static void test_fast_best(void **state)
{
    (void)state;
    const recorded *r = fast_values("best");
    check(r, 1);
    check(r, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_lecture),
        cmocka_unit_test(test_reference_best),
        cmocka_unit_test(test_fast_lecture),
        cmocka_unit_test(test_fast_best),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
