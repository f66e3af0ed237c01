/*
 * runtimes.c - helpers of the cross-runtime tests (see runtimes.h).
 */
#include "runtimes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void t_missing(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && *ci && strcmp(ci, "0") && strcmp(ci, "false"))
        fail_msg("%s (CI is set: its set-up must have installed it)", why);
    print_message("skipped: %s\n", why);
    skip();
}

uint8_t *t_mnist_pixels(size_t n, uint8_t **labels)
{
    t_need_mnist();
    dn_dataset ds;
    dn_error err = {0};
    if (dn_dataset_load(&ds, t_mnist_dir(), "test", "mnist", &err) != DN_OK)
        fail_msg("%s", err.msg);
    assert_true(ds.n >= n);
    size_t bytes = n * 28 * 28;
    uint8_t *px = malloc(bytes);
    assert_non_null(px);
    memcpy(px, ds.images, bytes);
    if (labels) {
        *labels = malloc(n);
        assert_non_null(*labels);
        memcpy(*labels, ds.labels, n);
    }
    dn_dataset_free(&ds);
    return px;
}

float *t_normalise(const uint8_t *px, size_t n, float mean, float std)
{
    float *x = malloc(n * 28 * 28 * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n * 28 * 28; i++)
        x[i] = (px[i] / 255.0f - mean) / std;
    return x;
}

void t_write_floats(const char *path, const float *v, size_t n)
{
    t_write_file(path, v, n * sizeof *v);
}

float *t_read_floats(const char *path, size_t n)
{
    size_t size = 0;
    char *bytes = t_read_file(path, &size);
    if (!bytes)
        fail_msg("%s: cannot read it", path);
    if (size != n * sizeof(float))
        fail_msg("%s: %zu bytes, expected %zu float32 values", path, size, n);
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    memcpy(v, bytes, size);
    free(bytes);
    return v;
}

static int argmax(const float *v, int k, float *gap)
{
    int best = 0, second = -1;
    for (int c = 1; c < k; c++) {
        if (v[c] > v[best]) {
            second = best;
            best = c;
        } else if (second < 0 || v[c] > v[second]) {
            second = c;
        }
    }
    *gap = second < 0 ? INFINITY : v[best] - v[second];
    return best;
}

double t_compare_logp(const char *what, const float *ref, const float *got, size_t n, int k,
                      double tol)
{
    double worst = 0;
    size_t ties = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = ref + i * (size_t)k, *g = got + i * (size_t)k;
        for (int c = 0; c < k; c++) {
            double d = fabs((double)r[c] - (double)g[c]);
            if (!(d <= tol))
                fail_msg("%s: sample %zu class %d: %.9g, expected %.9g (difference %.3g, "
                         "tolerance %.3g)", what, i, c, (double)g[c], (double)r[c], d, tol);
            if (d > worst)
                worst = d;
        }
        float gap_r, gap_g;
        int br = argmax(r, k, &gap_r), bg = argmax(g, k, &gap_g);
        if (gap_r <= tol) {
            ties++;
            continue;
        }
        if (br != bg)
            fail_msg("%s: sample %zu: predicted %d, expected %d", what, i, bg, br);
    }
    if (ties * 100 > n)
        fail_msg("%s: %zu of %zu samples are near-ties; the comparison says too little", what,
                 ties, n);
    print_message("%s: %zu samples, max abs difference %.3g, same predictions\n", what, n, worst);
    return worst;
}
