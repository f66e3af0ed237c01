/*
 * bench_prep.c - PNG bytes to the network's 28 x 28, per canvas drawing,
 * before and after the byte pipeline, side by side in one run.
 *
 *   build/bench/bench/bench_prep [--data DIR] [--model FILE] [--n N]
 *                                [--reps R] [--write DIR]
 *
 * Draws the first N MNIST test digits (default 680) as canvas PNGs
 * (tests/support/canvas.c: thick uniform strokes on 200-400 px canvases,
 * black on white, white on black, either on a transparent background, and a
 * blue pen), then times, interleaved image by image so that both see the
 * same load on a shared machine, best of R rounds per image; each round
 * runs each path over all canvases in turn, as a server would:
 *   before  the frozen path of commit 7d152b5 (tests/support/prep_before.c):
 *           stb_image + float grey, then the float preprocessing;
 *   after   dn_prep_load_memory + dn_prep_image with one reused dn_prep, as
 *           `digitnet serve` runs them;
 *   plain   dn_image_load_memory + dn_image_preprocess, a dn_prep per call.
 * It also compares the 28 x 28 outputs (largest difference per image) and,
 * with the model, the predictions. With --write DIR it writes the PNGs to
 * DIR (canvas-NNNN-dL.png, L the true digit) for `digitnet predict DIR`.
 *
 * Output: "key value" lines (scripts/bench makes the table).
 */
#include "canvas.h"
#include "digitnet.h"
#include "prep_before.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NPX (DN_IMAGE_SIDE * DN_IMAGE_SIDE)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best time of each stage of one path for one image, over the rounds. */
typedef struct timing {
    double decode, prep;
} timing;

static void keep_best(timing *best, double decode, double prep)
{
    if (decode + prep < best->decode + best->prep) {
        best->decode = decode;
        best->prep = prep;
    }
}

typedef struct opts {
    const char *data, *model, *write;
    int n, reps;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){"data/mnist", "tests/fixtures/mnist-model.safetensors", NULL, 680, 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_prep: %s needs a value\n", a);
            return 0;
        }
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--write"))
            o->write = v;
        else if (!strcmp(a, "--n"))
            o->n = atoi(v);
        else if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else {
            fprintf(stderr, "bench_prep: unknown option %s\n", a);
            return 0;
        }
        i++;
    }
    return o->n > 0 && o->reps > 0;
}

/* Predicted classes of n inputs (n, 28, 28) in 0..1. */
static void classify(const dn_model *m, const float *raw, int n, int *pred)
{
    float *x = malloc((size_t)n * NPX * sizeof *x);
    dn_work *w = dn_work_new(m, n);
    if (!x || !w) {
        fprintf(stderr, "bench_prep: out of memory\n");
        exit(1);
    }
    memcpy(x, raw, (size_t)n * NPX * sizeof *x);
    dn_image_normalize(x, (size_t)n * NPX, m->mean, m->std);
    const float *lp = dn_model_forward(m, w, x, n, DN_MODE_EVAL, NULL);
    int k = dn_model_classes(m);
    for (int i = 0; i < n; i++)
        pred[i] = dn_argmax(lp + (size_t)i * (size_t)k, k);
    dn_work_free(w);
    free(x);
}

/* Draws the canvases; writes them to dir if not NULL. */
static t_canvas *draw_all(const opts *o, const uint8_t *px, const uint8_t *labels, size_t avail)
{
    t_canvas *cv = calloc((size_t)o->n, sizeof *cv);
    if (!cv || (size_t)o->n > avail)
        return NULL;
    if (o->write)
        mkdir(o->write, 0755);
    for (int i = 0; i < o->n; i++) {
        if (t_canvas_draw(px + (size_t)i * NPX, (uint64_t)i, &cv[i]) != 0) {
            fprintf(stderr, "bench_prep: cannot draw test digit %d\n", i);
            exit(1);
        }
        if (o->write) {
            char path[4096];
            snprintf(path, sizeof path, "%s/canvas-%04d-d%d.png", o->write, i, labels[i]);
            if (dn_file_write_atomic(path, cv[i].png, cv[i].len, NULL) != DN_OK) {
                fprintf(stderr, "bench_prep: cannot write %s\n", path);
                exit(1);
            }
        }
    }
    return cv;
}

/* Times path k (0 before, 1 after, 2 plain) on canvas c, keeping the best
 * time in *best and the output in out. Returns 0 if the path fails. */
static int run_path(int k, const t_canvas *c, dn_prep *p, float *out, timing *best)
{
    dn_error err = {0};
    double t0 = now_s(), t1, t2;
    int ok;
    if (k == 0) {
        t_grey g;
        ok = t_before_decode(c->png, c->len, &g) == 0;
        t1 = now_s();
        ok = ok && t_before_preprocess(&g, out, NULL, &err) == DN_OK;
        t2 = now_s();
        t_before_free(&g);
    } else {
        dn_image img;
        ok = (k == 1 ? dn_prep_load_memory(p, c->png, c->len, "canvas", &img, &err)
                     : dn_image_load_memory(c->png, c->len, "canvas", &img, &err)) == DN_OK;
        t1 = now_s();
        ok = ok && (k == 1 ? dn_prep_image(p, &img, out, NULL, &err)
                           : dn_image_preprocess(&img, out, NULL, &err)) == DN_OK;
        t2 = now_s();
        dn_image_free(&img);
    }
    keep_best(best, t1 - t0, t2 - t1);
    if (!ok)
        fprintf(stderr, "bench_prep: %s\n", err.msg);
    return ok;
}

/* The three paths in turn, each over every canvas in one pass (as a server
 * would run one of them), R rounds; best time per canvas and path. */
static int run_all(const opts *o, const t_canvas *cv, float *const outs[3], timing *best)
{
    dn_prep *p = dn_prep_new();
    if (!p)
        return 0;
    for (int i = 0; i < 3 * o->n; i++)
        best[i] = (timing){1e9, 1e9};
    for (int r = 0; r < o->reps; r++)
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < o->n; i++)
                if (!run_path(k, &cv[i], p, outs[k] + (size_t)i * NPX, &best[3 * i + k])) {
                    fprintf(stderr, "bench_prep: canvas %d failed\n", i);
                    dn_prep_free(p);
                    return 0;
                }
    dn_prep_free(p);
    return 1;
}

/* Largest and mean |before - after| over images whose style is in [s0, s1]. */
static void compare(const opts *o, const t_canvas *cv, const float *before, const float *after,
                    int s0, int s1, const char *key)
{
    double worst = 0, total = 0;
    int images = 0, differ = 0;
    for (int i = 0; i < o->n; i++) {
        if ((int)cv[i].style < s0 || (int)cv[i].style > s1)
            continue;
        double d = 0;
        for (int j = 0; j < NPX; j++) {
            double e = fabs((double)before[(size_t)i * NPX + j] - after[(size_t)i * NPX + j]);
            d = e > d ? e : d;
            total += e;
        }
        worst = d > worst ? d : worst;
        differ += d > 1e-5;
        images++;
    }
    printf("prep_%s_images %d\nprep_%s_max_diff %.3g\nprep_%s_mean_diff %.3g\n"
           "prep_%s_over_1e-5 %d\n",
           key, images, key, worst, key, images ? total / ((double)images * NPX) : 0, key,
           differ);
}

int main(int argc, char **argv)
{
    opts o;
    if (!parse(argc, argv, &o))
        return 2;
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", o.data);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte", o.data);
    uint8_t *px = NULL, *labels = NULL;
    size_t n = 0, nl = 0;
    uint32_t rows, cols;
    dn_error err = {0};
    if (dn_idx_read_images(ip, &px, &n, &rows, &cols, &err) != DN_OK ||
        dn_idx_read_labels(lp, &labels, &nl, 10, &err) != DN_OK || rows * cols != NPX) {
        fprintf(stderr, "bench_prep: %s\n", err.msg[0] ? err.msg : "MNIST is not 28x28");
        return 1;
    }
    t_canvas *cv = draw_all(&o, px, labels, n);
    float *before = malloc((size_t)o.n * NPX * sizeof *before);
    float *after = malloc((size_t)o.n * NPX * sizeof *after);
    float *plain = malloc((size_t)o.n * NPX * sizeof *plain);
    timing *best = malloc((size_t)o.n * 3 * sizeof *best);
    float *const outs[3] = {before, after, plain};
    if (!cv || !before || !after || !plain || !best) {
        fprintf(stderr, "bench_prep: out of memory (or fewer than %d test digits)\n", o.n);
        return 1;
    }
    if (!run_all(&o, cv, outs, best))
        return 1;
    if (memcmp(after, plain, (size_t)o.n * NPX * sizeof *after) != 0) {
        fprintf(stderr, "bench_prep: dn_prep_image and dn_image_preprocess differ\n");
        return 1;
    }
    timing sum[3] = {{0, 0}, {0, 0}, {0, 0}};
    for (int i = 0; i < o.n; i++)
        for (int k = 0; k < 3; k++) {
            sum[k].decode += best[3 * i + k].decode;
            sum[k].prep += best[3 * i + k].prep;
        }
    const char *names[3] = {"before", "after", "plain"};
    printf("prep_n %d\nprep_reps %d\n", o.n, o.reps);
    for (int k = 0; k < 3; k++)
        printf("prep_%s_decode_us %.2f\nprep_%s_prep_us %.2f\nprep_%s_us %.2f\n", names[k],
               1e6 * sum[k].decode / o.n, names[k], 1e6 * sum[k].prep / o.n, names[k],
               1e6 * (sum[k].decode + sum[k].prep) / o.n);
    printf("prep_speedup %.2f\n", (sum[0].decode + sum[0].prep) / (sum[1].decode + sum[1].prep));
    compare(&o, cv, before, after, T_CANVAS_BLACK_ON_WHITE, T_CANVAS_WHITE_ON_CLEAR, "bw");
    compare(&o, cv, before, after, T_CANVAS_BLUE_ON_WHITE, T_CANVAS_BLUE_ON_WHITE, "colour");

    dn_model *m = dn_model_load(o.model, NULL, &err);
    if (m) {
        int *pb = malloc((size_t)o.n * sizeof *pb), *pa = malloc((size_t)o.n * sizeof *pa);
        classify(m, before, o.n, pb);
        classify(m, after, o.n, pa);
        int same = 0, right = 0;
        for (int i = 0; i < o.n; i++) {
            same += pb[i] == pa[i];
            right += pa[i] == labels[i];
            if (pb[i] != pa[i])
                fprintf(stderr, "bench_prep: canvas %d (style %d, digit %d): predicted %d before, "
                        "%d after\n", i, (int)cv[i].style, labels[i], pb[i], pa[i]);
        }
        printf("prep_same_prediction %d\nprep_right %d\n", same, right);
        free(pb);
        free(pa);
        dn_model_free(m);
    } else {
        fprintf(stderr, "bench_prep: no predictions compared: %s\n", err.msg);
    }
    for (int i = 0; i < o.n; i++)
        t_canvas_free(&cv[i]);
    free(cv);
    free(before);
    free(after);
    free(plain);
    free(best);
    free(px);
    free(labels);
    return 0;
}
