/*
 * fuzz_idx.c - the IDX readers and dn_dataset_load, plain and gzip.
 *
 * The first byte chooses what the rest is:
 *   bit 0  gzip-compress it first (so that mutations of the IDX content
 *          also reach the gzip path; bit 0 clear and a .gz input test the
 *          gzip decoder itself)
 *   bit 1  an IDX labels file instead of an images file
 *   bit 2  a dataset directory: two more bytes give the length of the
 *          images file, the labels file is what follows
 * A file that reads must have exactly the size its header gives, labels
 * below 10, and a dataset 28x28 images as many as its labels.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* data as a gzip stream (malloc'd into *out); 0 if zlib refuses. */
static int gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *out_size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    size_t cap = deflateBound(&z, (uLong)size) + 32;
    *out = malloc(cap);
    if (!*out) {
        deflateEnd(&z);
        return 0;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    int ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
    *out_size = z.total_out;
    deflateEnd(&z);
    if (!ok)
        free(*out);
    return ok;
}

/* Writes data (compressed when gz) as dir/name or as a file called name;
 * returns the path. */
static const char *put(const char *dir, const char *name, const uint8_t *data, size_t size,
                       int gz)
{
    uint8_t *z = NULL;
    size_t zn = 0;
    if (gz && !gzip(data, size, &z, &zn))
        fuzz_fail("zlib could not compress %zu bytes", size);
    char rel[256];
    snprintf(rel, sizeof rel, "%s%s%s%s", dir ? dir : "", dir ? "/" : "", name, gz ? ".gz" : "");
    const char *path = fuzz_file(rel, gz ? z : data, gz ? zn : size);
    free(z);
    return path;
}

static void read_one(const uint8_t *data, size_t size, int gz, int labels)
{
    /* A plain file (not compressed here, not gzip by its magic) must have
     * exactly the size its header implies. */
    int plain = !gz && !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b);
    const char *path = put(NULL, labels ? "labels" : "images", data, size, gz);
    dn_error err = {0};
    uint8_t *v = NULL;
    size_t n = 0;
    if (labels) {
        dn_status st = dn_idx_read_labels(path, &v, &n, 10, &err);
        if (st != DN_OK) {
            fuzz_check_error(st, &err, path);
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (v[i] >= 10)
                fuzz_fail("label %u accepted", v[i]);
        if (plain && size != 8 + n)
            fuzz_fail("%zu labels read from a file of %zu bytes", n, size);
    } else {
        uint32_t rows = 0, cols = 0;
        dn_status st = dn_idx_read_images(path, &v, &n, &rows, &cols, &err);
        if (st != DN_OK) {
            fuzz_check_error(st, &err, path);
            return;
        }
        if (!n || !rows || !cols)
            fuzz_fail("a zero dimension accepted");
        if (plain && size != 16 + n * rows * cols)
            fuzz_fail("%zu images of %ux%u read from a file of %zu bytes", n, rows, cols, size);
        /* Every pixel is readable (ASan checks the bounds). */
        unsigned sum = 0;
        for (size_t i = 0; i < n * rows * cols; i++)
            sum += v[i];
        (void)sum;
    }
    free(v);
}

static void read_dataset(const uint8_t *data, size_t size, int gz)
{
    if (size < 2)
        return;
    size_t split = (size_t)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    if (split > size)
        split = size;
    const char *dir = fuzz_dir("ds");
    /* Only one name of each kind may exist, or find_file picks the other. */
    char path[600];
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, names[i], gz ? "" : ".gz");
        remove(path);
    }
    put("ds", names[0], data, split, gz);
    put("ds", names[1], data + split, size - split, gz);
    dn_dataset ds;
    dn_error err = {0};
    dn_status st = dn_dataset_load(&ds, dir, "train", "mnist", &err);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, NULL);
        if (ds.images || ds.labels || ds.n)
            fuzz_fail("a failed dn_dataset_load left data behind");
        return;
    }
    if (ds.rows != 28 || ds.cols != 28 || !ds.n)
        fuzz_fail("a dataset of %zu %ux%u images accepted", ds.n, ds.rows, ds.cols);
    for (size_t i = 0; i < ds.n; i++)
        if (ds.labels[i] >= 10)
            fuzz_fail("label %u accepted", ds.labels[i]);
    float x[28 * 28];
    dn_dataset_image(&ds, ds.n - 1, x);
    dn_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    if (mode & 4)
        read_dataset(data + 1, size - 1, mode & 1);
    else
        read_one(data + 1, size - 1, mode & 1, (mode >> 1) & 1);
    return 0;
}
