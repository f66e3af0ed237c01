/*
 * cmd_info.c - `digitnet info`: load both splits of a dataset, check them,
 * and print their sizes, shapes, label counts and pixel statistics.
 *
 * Both splits are loaded before anything is printed, so a broken copy gives
 * one error line and no half table.
 */
#include "cli.h"

#include <getopt.h>
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

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"dataset", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *name = "mnist";
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 's':
            if (!dn_class_names(optarg))
                return cli_usage("info", "unknown dataset '%s', expected mnist or fashion",
                                 optarg);
            name = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return cli_usage("info", "option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return cli_usage("info", "unknown option '-%c'", optopt);
            return cli_usage("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("info", "unexpected argument '%s'", argv[optind]);

    const char *dir = cli_data_dir(name, data);
    static const char *const splits[2] = {"train", "test"};
    dn_dataset ds[2];
    dn_error err = {0};
    for (int s = 0; s < 2; s++) {
        if (dn_dataset_load(&ds[s], dir, splits[s], name, &err) != DN_OK) {
            if (s)
                dn_dataset_free(&ds[0]);
            if (err.status == DN_ERR_IO && !strcmp(name, "mnist"))
                return cli_fail("%s (run 'make data', or pass --data DIR)", err.msg);
            return cli_fail_err(&err);
        }
    }

    printf("%s in %s\n\n", name, dir);
    printf("split  images  shape    pixel mean  pixel std\n");
    for (int s = 0; s < 2; s++) {
        double mean, std;
        pixel_stats(&ds[s], &mean, &std);
        char shape[32];
        snprintf(shape, sizeof shape, "1x%ux%u", (unsigned)ds[s].rows, (unsigned)ds[s].cols);
        printf("%-5s  %6zu  %-7s  %10.4f  %9.4f\n", splits[s], ds[s].n, shape, mean, std);
    }

    size_t count[2][10] = {{0}};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < ds[s].n; i++)
            count[s][ds[s].labels[i]]++;
    printf("\nclass          train   test\n");
    int named = strcmp(name, "mnist") != 0;
    for (int k = 0; k < 10; k++) {
        char label[32];
        if (named)
            snprintf(label, sizeof label, "%d %s", k, ds[0].class_names[k]);
        else
            snprintf(label, sizeof label, "%s", ds[0].class_names[k]);
        printf("%-13s %6zu  %5zu\n", label, count[0][k], count[1][k]);
    }
    printf("total         %6zu  %5zu\n", ds[0].n, ds[1].n);
    printf("\nmodel input: (x/255 - %.4f) / %.4f\n", ds[0].mean, ds[0].std);

    dn_dataset_free(&ds[0]);
    dn_dataset_free(&ds[1]);
    return 0;
}
