/*
 * cmd_info.c - `digitnet info`: load both splits of a dataset, check them,
 * and print their sizes, shapes, label counts and pixel statistics.
 *
 * Both splits are loaded before anything is printed, so a broken copy gives
 * one error line and no half table.
 */
#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: digitnet info [--data DIR] [--dataset mnist|fashion]\n"
            "\n"
            "Loads the training and test splits, checks every file (magic, sizes,\n"
            "labels, 28x28 images) and prints per split the number of images, their\n"
            "shape, the pixel mean and standard deviation of x/255, and how many\n"
            "images each class has.\n"
            "\n"
            "options:\n"
            "  --data DIR         directory of the four IDX files, plain or .gz\n"
            "                     (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA " for mnist,\n"
            "                     " CLI_DEFAULT_FASHION " for fashion)\n"
            "  --dataset NAME     mnist (default) or fashion (class names)\n"
            "  -h, --help         this help\n"
            "\n"
            "examples:\n"
            "  digitnet info\n"
            "  digitnet info --data ~/Downloads/mnist\n"
            "  digitnet info --dataset fashion\n"
            "\n"
            "exit status: 0 the data is sound, 1 a file is missing or broken, 2 usage error\n");
}

/* Mean and standard deviation of x/255 over every pixel of the split,
 * from a histogram so that the sums are exact and the pass is cheap. */
static void pixel_stats(const dn_dataset *ds, double *mean, double *std)
{
    size_t hist[256] = {0};
    size_t total = ds->n * ds->rows * ds->cols;
    for (size_t i = 0; i < total; i++)
        hist[ds->images[i]]++;
    double s = 0, s2 = 0;
    for (int v = 0; v < 256; v++) {
        double x = v / 255.0;
        s += (double)hist[v] * x;
        s2 += (double)hist[v] * x * x;
    }
    *mean = s / (double)total;
    double var = s2 / (double)total - *mean * *mean;
    *std = sqrt(var > 0 ? var : 0);
}

/* Both splits of a dataset, loaded before anything is printed. */
typedef struct info {
    const char *name, *dir;
    dn_dataset ds[2];       /* train, test */
} info;

static const char *const splits[2] = {"train", "test"};

/* Loads both splits into in; on failure prints one line and returns the
 * exit code, with nothing to free. */
static int load_splits(info *in)
{
    dn_error err = {0};
    for (int s = 0; s < 2; s++) {
        if (dn_dataset_load(&in->ds[s], in->dir, splits[s], in->name, &err) != DN_OK) {
            if (s)
                dn_dataset_free(&in->ds[0]);
            if (err.status == DN_ERR_IO && !strcmp(in->name, "mnist"))
                return cli_fail("%s (run 'make data', or pass --data DIR)", err.msg);
            return cli_fail_err(&err);
        }
    }
    return 0;
}

static void print_info(const info *in)
{
    printf("%s in %s\n\n", in->name, in->dir);
    printf("split  images  shape    pixel mean  pixel std\n");
    for (int s = 0; s < 2; s++) {
        double mean, std;
        pixel_stats(&in->ds[s], &mean, &std);
        char shape[32];
        snprintf(shape, sizeof shape, "1x%ux%u", (unsigned)in->ds[s].rows,
                 (unsigned)in->ds[s].cols);
        printf("%-5s  %6zu  %-7s  %10.4f  %9.4f\n", splits[s], in->ds[s].n, shape, mean, std);
    }
    size_t count[2][10] = {{0}};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < in->ds[s].n; i++)
            count[s][in->ds[s].labels[i]]++;
    printf("\nclass          train   test\n");
    for (int k = 0; k < 10; k++) {
        char label[32];
        printf("%-13s %6zu  %5zu\n", cli_class_label(in->name, k, label, sizeof label),
               count[0][k], count[1][k]);
    }
    printf("total         %6zu  %5zu\n", in->ds[0].n, in->ds[1].n);
    printf("\nmodel input: (x/255 - %.4f) / %.4f\n", in->ds[0].mean, in->ds[0].std);
}

int cmd_info(int argc, char **argv)
{
    const char *data = NULL, *name = "mnist";
    const cli_opt opts[] = {
        CLI_OPT_DATA(&data),
        CLI_OPT_DATASET(&name, 0),
    };
    const cli_spec spec = {"info", usage, opts, CLI_N(opts), 0};
    int next, rc = cli_parse(&spec, argc, argv, &next, NULL);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    info in = {name, cli_data_dir(name, data), {{0}}};
    if ((rc = load_splits(&in)) != 0)
        return rc;
    print_info(&in);
    dn_dataset_free(&in.ds[0]);
    dn_dataset_free(&in.ds[1]);
    return 0;
}
