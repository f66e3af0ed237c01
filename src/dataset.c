/*
 * dataset.c - one split of MNIST or Fashion-MNIST in memory.
 *
 * Images stay uint8 (47 MB for MNIST's training set instead of 188 MB as
 * floats) and are normalised one at a time when a batch is assembled.
 *
 * Normalisation: MNIST uses the lecture's 0.1307 / 0.3081. Fashion-MNIST
 * uses its own training-set statistics, 0.2860 / 0.3530, so that its inputs
 * are centred and scaled like MNIST's are; the model file records whichever
 * was used, so evaluation and prediction repeat it.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const mnist_names[10] = {"0", "1", "2", "3", "4",
                                            "5", "6", "7", "8", "9"};
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

const char *const *dn_class_names(const char *dataset)
{
    if (!dataset)
        return NULL;
    if (!strcmp(dataset, "mnist"))
        return mnist_names;
    if (!strcmp(dataset, "fashion"))
        return fashion_names;
    return NULL;
}

/* Finds "<prefix>-<kind>-<idx>-ubyte" in dir under the names it is
 * distributed with: as is, gzip-compressed (.gz), or with the dot that some
 * mirrors use ("t10k-images.idx3-ubyte"). Fills path with the first that
 * exists; on failure path holds the canonical name for the message. */
static int find_file(const char *dir, const char *prefix, const char *kind, const char *idx,
                     char *path, size_t size)
{
    for (int i = 0; i < 4; i++) {
        char sep = i < 2 ? '-' : '.';
        const char *gz = i % 2 ? ".gz" : "";
        int len = snprintf(path, size, "%s/%s-%s%c%s-ubyte%s", dir, prefix, kind, sep, idx, gz);
        if (len < 0 || (size_t)len >= size)
            return 0;
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
            return 1;
    }
    snprintf(path, size, "%s/%s-%s-%s-ubyte", dir, prefix, kind, idx);
    return 0;
}

/* The model's input is fixed at 1x28x28, as in the lecture. */
static dn_status check_images(const char *ipath, uint32_t rows, uint32_t cols, const char *name,
                              dn_error *err)
{
    if (rows != DN_IMAGE_SIDE || cols != DN_IMAGE_SIDE)
        return dn_fail(err, DN_ERR_SHAPE, "%s: offset 8: images are %ux%u, expected 28x28 for %s",
                       ipath, (unsigned)rows, (unsigned)cols, name);
    return DN_OK;
}

static dn_status check_counts(const char *ipath, size_t n_images, const char *lpath,
                              size_t n_labels, dn_error *err)
{
    if (n_labels != n_images)
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: offset 4: %zu labels, expected %zu to match the images in %s", lpath,
                       n_labels, n_images, ipath);
    return DN_OK;
}

dn_status dn_dataset_load(dn_dataset *ds, const char *dir, const char *split, const char *name,
                          dn_error *err)
{
    if (!ds || !dir || !split)
        return dn_fail(err, DN_ERR_ARG, "dn_dataset_load: NULL argument");
    memset(ds, 0, sizeof *ds);
    if (!name)
        name = "mnist";
    const char *const *classes = dn_class_names(name);
    if (!classes)
        return dn_fail(err, DN_ERR_ARG, "unknown dataset '%s', expected mnist or fashion", name);
    const char *prefix;
    if (!strcmp(split, "train"))
        prefix = "train";
    else if (!strcmp(split, "test"))
        prefix = "t10k";
    else
        return dn_fail(err, DN_ERR_ARG, "unknown split '%s', expected train or test", split);

    char ipath[4096], lpath[4096];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dn_fail(err, DN_ERR_IO,
                       "%s: no such data directory, expected one holding the %s files", dir,
                       name);
    if (!find_file(dir, prefix, "images", "idx3", ipath, sizeof ipath))
        return dn_fail(err, DN_ERR_IO, "%s: not found (nor .gz, nor %s-images.idx3-ubyte)", ipath,
                       prefix);
    if (!find_file(dir, prefix, "labels", "idx1", lpath, sizeof lpath))
        return dn_fail(err, DN_ERR_IO, "%s: not found (nor .gz, nor %s-labels.idx1-ubyte)", lpath,
                       prefix);

    /* Both headers first: a header claiming a 65535x65535 image, or
     * billions of images the labels do not match, is refused before
     * either payload is read. The same checks run again on what was read,
     * in case a file changed in between. */
    uint32_t d[3], n_lab;
    dn_status st2 = dn_idx_read_header(ipath, 1, d, err);
    if (!st2)
        st2 = check_images(ipath, d[1], d[2], name, err);
    if (!st2)
        st2 = dn_idx_read_header(lpath, 0, &n_lab, err);
    if (!st2)
        st2 = check_counts(ipath, d[0], lpath, n_lab, err);
    if (st2)
        return st2;

    uint8_t *images = NULL, *labels = NULL;
    size_t n_images = 0, n_labels = 0;
    uint32_t rows = 0, cols = 0;
    st2 = dn_idx_read_images(ipath, &images, &n_images, &rows, &cols, err);
    if (!st2)
        st2 = check_images(ipath, rows, cols, name, err);
    if (!st2)
        st2 = dn_idx_read_labels(lpath, &labels, &n_labels, 10, err);
    if (!st2)
        st2 = check_counts(ipath, n_images, lpath, n_labels, err);
    if (st2) {
        free(images);
        free(labels);
        return st2;
    }
    ds->images = images;
    ds->labels = labels;
    ds->n = n_images;
    ds->rows = rows;
    ds->cols = cols;
    int fashion = !strcmp(name, "fashion");
    ds->mean = fashion ? DN_FASHION_MEAN : DN_MNIST_MEAN;
    ds->std = fashion ? DN_FASHION_STD : DN_MNIST_STD;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->class_names = classes;
    return DN_OK;
}

void dn_dataset_free(dn_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* The 256 normalised pixel values for one (mean, std), by the same float32
 * expression as every pixel (torchvision's ToTensor, x / 255, then
 * Normalize, (x - mean) / std), so the table gives the same bits. Kept per
 * thread and remade only when mean or std change: its 512 divisions cost
 * more than the 784 look-ups of an image. */
typedef struct pixel_table {
    int ready;
    float mean, std;
    float value[256];
} pixel_table;

static const float *pixel_values(float mean, float std)
{
    static _Thread_local pixel_table t;
    if (!t.ready || memcmp(&t.mean, &mean, sizeof mean) || memcmp(&t.std, &std, sizeof std)) {
        for (int v = 0; v < 256; v++)
            t.value[v] = ((float)v / 255.0f - mean) / std;
        t.mean = mean, t.std = std, t.ready = 1;
    }
    return t.value;
}

void dn_dataset_image(const dn_dataset *ds, size_t i, float *out)
{
    size_t plane = (size_t)ds->rows * ds->cols;
    const uint8_t *px = ds->images + i * plane;
    const float *value = pixel_values(ds->mean, ds->std);
    for (size_t j = 0; j < plane; j++)
        out[j] = value[px[j]];
}

dn_status dn_dataset_files(const char *dir, const char *split, char *images, char *labels,
                           size_t size, dn_error *err)
{
    const char *prefix = !strcmp(split, "train") ? "train" : !strcmp(split, "test") ? "t10k"
                                                                                    : NULL;
    if (!prefix)
        return dn_fail(err, DN_ERR_ARG, "unknown split '%s', expected train or test", split);
    find_file(dir, prefix, "images", "idx3", images, size);
    find_file(dir, prefix, "labels", "idx1", labels, size);
    return DN_OK;
}
