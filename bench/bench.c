/*
 * bench.c - digitnet's speed on this machine, through the public API.
 *
 *   build/bench/bench [--data DIR] [--specs lecture,wide,deep] [--threads 1,2]
 *                     [--limit N] [--eval-limit N] [--latency-runs N]
 *                     [--eval-batch N] [--kernels] [--preset NAME]
 *
 * Three networks (issue 11): "lecture" (the lecture's CNN_MNIST), "wide"
 * (16 and 32 channels, fc 128) and "deep" (four 3x3 convolutions of 32 and
 * 64 channels, fc 256); see k_specs. Measures, for each network and each
 * thread count:
 *   - one training epoch with dn_train (a library preset, dn_train_preset:
 *     "lecture" unless --preset says otherwise - batch 64, Adadelta +
 *     StepLR, seed 1; no evaluation inside the epoch), or the
 *     first --limit images of it, reported per image and per 60k epoch;
 *   - evaluation throughput of dn_evaluate over the 10k test images;
 * and once:
 *   - one-image latency of dn_model_forward with batch 1 (median, p99);
 *   - peak RSS of this process while training (the datasets are loaded).
 * With --kernels it also times the forward+backward of one chunk of
 * DN_TRAIN_CHUNK images (and a forward of one image) on one thread through
 * each kernel variant: the general reference kernels, and the fast kernels
 * per instruction set, dense (no dropout skipping) and sparse - the
 * before/after table of which optimisation gave what.
 *
 * Output: one "key value" line per figure (scripts/bench makes the table),
 * each key starting with the network's name, e.g. "wide_c_2t_train_img_s
 * 41000". Flop counts are printed too: dense-
 * equivalent flops per trained image (forward + backward as if no channel
 * were dropped) and the expected flops the dropout-sparse kernels do.
 */
#include "digitnet.h"
#include "fast.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1e3; /* kB on Linux */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Flops per image of the model: forward, and a training step (forward +
 * weight and input gradients, none for the image itself), dense and with
 * the expected dropout skipping (a conv or fc layer after a dropout2d of
 * probability p sees a fraction 1-p of its input channels; one before a
 * dropout2d computes a fraction 1-p of its output channels). */
typedef struct flops {
    double fwd, train_dense, train_sparse;
} flops;

static flops count_flops(const dn_model *m)
{
    flops f = {0, 0, 0};
    int first_param = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        if (L->kind != DN_CONV && L->kind != DN_FC)
            continue;
        double macs = (double)L->macs;
        /* Fraction of the input channels kept: the nearest dropout before
         * this layer (after the previous parameter layer). */
        double keep_in = 1, keep_out = 1;
        for (int k = l - 1; k >= 0 && m->layers[k].kind != DN_CONV && m->layers[k].kind != DN_FC;
             k--)
            if (m->layers[k].kind == DN_DROPOUT2D)
                keep_in = 1 - m->layers[k].p;
        for (int k = l + 1; k < m->n_layers && m->layers[k].kind != DN_CONV &&
                            m->layers[k].kind != DN_FC; k++)
            if (m->layers[k].kind == DN_DROPOUT2D)
                keep_out = 1 - m->layers[k].p;
        double passes = first_param ? 2 : 3; /* forward, dW, (dX) */
        f.fwd += 2 * macs;
        f.train_dense += 2 * macs * passes;
        f.train_sparse += 2 * macs * passes * keep_in * keep_out;
        first_param = 0;
    }
    return f;
}

typedef struct epoch_clock {
    double seconds;
    size_t images;
} epoch_clock;

static int on_progress(const dn_train_progress *p, void *user)
{
    epoch_clock *c = user;
    if (p->epoch_done) {
        c->seconds = p->seconds;
        c->images = p->images;
    }
    return 0;
}

/* The networks of the benchmark, as issue 11 names them. */
static const struct bench_spec {
    const char *name, *spec;
} k_specs[] = {
    {"lecture", DN_DEFAULT_SPEC},
    {"wide", "conv 16 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, conv 32 k5 p2 s1, relu, "
             "maxpool 2, dropout2d 0.5, flatten, fc 128, relu, fc 10, logsoftmax"},
    {"deep", "conv 32 k3 p1, relu, conv 32 k3 p1, relu, maxpool 2, dropout2d 0.25, "
             "conv 64 k3 p1, relu, conv 64 k3 p1, relu, maxpool 2, dropout2d 0.25, "
             "flatten, fc 256, relu, fc 10, logsoftmax"},
};
#define N_SPECS ((int)(sizeof k_specs / sizeof k_specs[0]))

/* One training epoch (or its first `limit` images) from a fresh model.
 * Returns seconds per image, or -1 on failure. */
static double bench_train(const char *spec, const dn_dataset *train, int threads, size_t limit,
                          const char *preset)
{
    dn_error err;
    dn_model *m = dn_model_new(spec, (dn_shape)DN_INPUT_SHAPE, 1, &err);
    if (!m) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return -1;
    }
    dn_train_config cfg;
    if (dn_train_preset(preset, &cfg, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        dn_model_free(m);
        return -1;
    }
    cfg.epochs = 1;
    cfg.threads = threads;
    cfg.limit = limit;
    epoch_clock clk = {0, 0};
    cfg.progress = on_progress;
    cfg.user = &clk;
    dn_status st = dn_train(m, train, NULL, &cfg, NULL, &err);
    dn_model_free(m);
    if (st) {
        fprintf(stderr, "bench: training: %s\n", err.msg);
        return -1;
    }
    return clk.images ? clk.seconds / (double)clk.images : -1;
}

/* Evaluation of the whole test set; returns images per second. */
static double bench_eval(const dn_model *m, const dn_dataset *test, size_t count, int threads,
                         int batch)
{
    dn_error err;
    double best = 0;
    for (int r = 0; r < 2; r++) {
        double t0 = now_s();
        if (dn_evaluate(m, test, 0, count, threads, batch, NULL, NULL, NULL, &err)) {
            fprintf(stderr, "bench: eval: %s\n", err.msg);
            return -1;
        }
        double ips = (double)count / (now_s() - t0);
        if (ips > best)
            best = ips;
    }
    return best;
}

/* One image through dn_model_forward with batch 1, runs times. */
static int bench_latency(const dn_model *m, const dn_dataset *test, int runs, double *median,
                         double *p99)
{
    dn_work *w = dn_work_new(m, 1);
    double *t = malloc((size_t)runs * sizeof *t);
    float x[28 * 28]; // (1, 1, 28, 28)
    if (!w || !t) {
        dn_work_free(w);
        free(t);
        return -1;
    }
    dn_dataset_image(test, 0, x);
    for (int i = 0; i < 50; i++)
        dn_model_forward(m, w, x, 1, DN_MODE_EVAL, NULL);
    for (int i = 0; i < runs; i++) {
        dn_dataset_image(test, (size_t)i % test->n, x);
        double t0 = now_s();
        dn_model_forward(m, w, x, 1, DN_MODE_EVAL, NULL);
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    *median = t[runs / 2] * 1e6;
    *p99 = t[(int)(0.99 * runs) < runs ? (int)(0.99 * runs) : runs - 1] * 1e6;
    dn_work_free(w);
    free(t);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Kernel variants: one chunk's forward + backward on one thread            */
/* ------------------------------------------------------------------------ */

/* Best time of a training step (forward + backward) or an evaluation
 * forward over a chunk of B images, repeated for about `budget` seconds;
 * seconds per image. */
static double time_step(const dn_model *m, dn_work *w, const float *x, const uint8_t *y,
                        const uint64_t *keys, int B, float *grads, int train, double budget)
{
    double best = 1e30, spent = 0;
    for (int r = 0; r < 1000 && (r < 5 || spent < budget); r++) {
        double t0 = now_s();
        if (train) {
            dn_model_forward(m, w, x, B, DN_MODE_TRAIN, keys);
            dn_model_backward(m, w, y, B, 1.0f / (float)B, grads);
        } else {
            dn_model_forward(m, w, x, B, DN_MODE_EVAL, NULL);
        }
        double dt = now_s() - t0;
        spent += dt;
        if (dt < best)
            best = dt;
    }
    return best / B;
}

static void bench_kernels(const char *name, const dn_model *m, const dn_dataset *train)
{
    enum { B = DN_TRAIN_CHUNK };
    float x[B * 28 * 28];   // (B, 1, 28, 28)
    uint8_t y[B];
    uint64_t keys[B];
    for (int b = 0; b < B; b++) {
        dn_dataset_image(train, (size_t)b, x + b * 28 * 28);
        y[b] = train->labels[b];
        keys[b] = dn_key(1, DN_STREAM_DROPOUT, 0, (uint64_t)b);
    }
    float *grads = calloc(m->n_params, sizeof *grads);
    dn_work *w = dn_work_new(m, B);
    if (!grads || !w) {
        free(grads);
        dn_work_free(w);
        return;
    }
    /* The reference kernels. */
    dn_work_set_reference(w, 1);
    printf("%s_kern_reference_train_us %.2f\n", name,
           1e6 * time_step(m, w, x, y, keys, B, grads, 1, 0.3));
    printf("%s_kern_reference_fwd1_us %.2f\n", name,
           1e6 * time_step(m, w, x, y, keys, 1, grads, 0, 0.2));
    dn_work_set_reference(w, 0);
    /* Each instruction set the machine has, dense then sparse. */
    dn_fast_plan *fp = dn_work_fast(w);
    for (int isa = DN_FAST_ISA_C; fp && isa <= DN_FAST_ISA_AVX512; isa++) {
        if (dn_fast_set_isa(fp, isa) != isa)
            continue;
        const char *iname = dn_fast_isa_name(isa);
        for (int sparse = 0; sparse <= 1; sparse++) {
            dn_fast_set_sparse(fp, sparse);
            printf("%s_kern_%s_%s_train_us %.2f\n", name, iname, sparse ? "sparse" : "dense",
                   1e6 * time_step(m, w, x, y, keys, B, grads, 1, 0.3));
        }
        printf("%s_kern_%s_fwd1_us %.2f\n", name, iname,
               1e6 * time_step(m, w, x, y, keys, 1, grads, 0, 0.2));
        printf("%s_kern_%s_fwd%d_us %.2f\n", name, iname, B,
               1e6 * time_step(m, w, x, y, keys, B, grads, 0, 0.2));
    }
    dn_work_free(w);
    free(grads);
}

static int parse_threads(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 256)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

/* Every figure of one network. Returns 0, or 1 on a failure. */
static int bench_spec(const struct bench_spec *bs, const dn_dataset *train,
                      const dn_dataset *test, const int *threads, int n_threads, size_t limit,
                      size_t eval_limit, int runs, int eval_batch, int kernels,
                      const char *preset)
{
    const char *name = bs->name;
    dn_error err;
    dn_model *m = dn_model_new(bs->spec, (dn_shape)DN_INPUT_SHAPE, 1, &err);
    if (!m) {
        fprintf(stderr, "bench: %s: %s\n", name, err.msg);
        return 1;
    }
    flops f = count_flops(m);
    printf("%s_spec %s\n", name, m->spec);
    printf("%s_flops_fwd %.0f\n%s_flops_train_dense %.0f\n%s_flops_train_sparse %.0f\n", name,
           f.fwd, name, f.train_dense, name, f.train_sparse);
    fflush(stdout);
    for (int t = 0; t < n_threads; t++) {
        double spi = bench_train(bs->spec, train, threads[t], limit, preset);
        if (spi <= 0)
            return 1;
        printf("%s_c_%dt_train_img_s %.1f\n", name, threads[t], 1.0 / spi);
        printf("%s_c_%dt_train_s_per_epoch %.3f\n", name, threads[t], spi * 60000.0);
        printf("%s_c_peak_rss_train_mb %.1f\n", name, peak_rss_mb());
        fflush(stdout);
    }
    /* The weights do not change the cost of evaluation. */
    size_t count = eval_limit && eval_limit < test->n ? eval_limit : test->n;
    for (int t = 0; t < n_threads; t++) {
        double ips = bench_eval(m, test, count, threads[t], eval_batch);
        if (ips <= 0)
            return 1;
        printf("%s_c_%dt_eval_img_s %.1f\n", name, threads[t], ips);
        fflush(stdout);
    }
    double med, p99;
    if (bench_latency(m, test, runs, &med, &p99) == 0)
        printf("%s_c_latency_us_median %.2f\n%s_c_latency_us_p99 %.2f\n", name, med, name, p99);
    if (kernels)
        bench_kernels(name, m, train);
    fflush(stdout);
    dn_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "data/mnist", *specs = "lecture,wide,deep", *preset = "lecture";
    int threads[8] = {1, 2}, n_threads = 2, runs = 1000, eval_batch = 0, kernels = 0;
    size_t limit = 0, eval_limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v)
            data = v, i++;
        else if (!strcmp(a, "--specs") && v)
            specs = v, i++;
        else if (!strcmp(a, "--threads") && v) {
            n_threads = parse_threads(v, threads, 8);
            i++;
        } else if (!strcmp(a, "--limit") && v)
            limit = (size_t)strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--eval-limit") && v)
            eval_limit = (size_t)strtoul(v, NULL, 10), i++;
        else if (!strcmp(a, "--latency-runs") && v)
            runs = atoi(v), i++;
        else if (!strcmp(a, "--eval-batch") && v)
            eval_batch = atoi(v), i++;
        else if (!strcmp(a, "--preset") && v)
            preset = v, i++;
        else if (!strcmp(a, "--kernels"))
            kernels = 1;
        else {
            fprintf(stderr, "usage: bench [--data DIR] [--specs lecture,wide,deep] "
                            "[--threads 1,2] [--limit N] [--eval-limit N] "
                            "[--latency-runs N] [--eval-batch N] [--kernels] [--preset NAME]\n");
            return 2;
        }
    }
    if (n_threads < 1 || runs < 1) {
        fprintf(stderr, "bench: bad --threads or --latency-runs\n");
        return 2;
    }
    dn_dataset train, test;
    dn_error err;
    if (dn_dataset_load(&train, data, "train", "mnist", &err) ||
        dn_dataset_load(&test, data, "test", "mnist", &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    printf("fast_isa %s\n", dn_fast_isa_name(dn_fast_best_isa()));
    int rc = 0;
    for (int s = 0; s < N_SPECS && !rc; s++) {
        /* Whole names in the comma-separated list. */
        size_t len = strlen(k_specs[s].name);
        const char *at = strstr(specs, k_specs[s].name);
        while (at && ((at != specs && at[-1] != ',') || (at[len] && at[len] != ',')))
            at = strstr(at + 1, k_specs[s].name);
        if (at)
            rc = bench_spec(&k_specs[s], &train, &test, threads, n_threads, limit, eval_limit,
                            runs, eval_batch, kernels, preset);
    }
    dn_dataset_free(&train);
    dn_dataset_free(&test);
    return rc;
}
