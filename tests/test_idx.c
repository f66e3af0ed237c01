/*
 * test_idx.c - IDX readers and datasets: the real MNIST and Fashion-MNIST
 * files, the names they come under, and broken files written at test time,
 * each of which must give its own status and a message naming the file and
 * the problem.
 */
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR T_FASHION_DIR

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* An IDX images file of n images rows x cols with pixel (i, j) = (i + j) %
 * 256, followed by `extra` zero bytes; malloc'd, its size in *size. */
static uint8_t *idx_images(uint32_t n, uint32_t rows, uint32_t cols, size_t extra,
                           size_t *size)
{
    size_t data = (size_t)n * rows * cols;
    uint8_t *b = calloc(1, 16 + data + extra);
    assert_non_null(b);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < data; i++)
        b[16 + i] = (uint8_t)(i * 7 % 256);
    *size = 16 + data + extra;
    return b;
}

/* An IDX labels file of n labels, label i = i % 10. */
static uint8_t *idx_labels(uint32_t n, size_t *size)
{
    uint8_t *b = calloc(1, 8 + (size_t)n);
    assert_non_null(b);
    put_be32(b, 0x801);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)(i % 10);
    *size = 8 + (size_t)n;
    return b;
}

static void write_gz(const char *path, const void *data, size_t size)
{
    gzFile gz = gzopen(path, "wb9");
    assert_non_null(gz);
    if (size)
        assert_int_equal(gzwrite(gz, data, (unsigned)size), (int)size);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0)
        fail_msg("cannot create %s", path);
}

static void link_to(const char *target, const char *dir, const char *name)
{
    char path[4096], abs_target[4096];
    if (target[0] != '/') {
        char cwd[512];
        assert_non_null(getcwd(cwd, sizeof cwd));
        snprintf(abs_target, sizeof abs_target, "%s/%s", cwd, target);
    } else {
        snprintf(abs_target, sizeof abs_target, "%s", target);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (symlink(abs_target, path) != 0)
        fail_msg("cannot link %s to %s", path, abs_target);
}

/* The status must be `want` and the message must name the file and hold
 * every needle (NULL-terminated list). */
static void expect_error(dn_status got, const dn_error *err, dn_status want, const char *file,
                         ...)
{
    if (got != want)
        fail_msg("status %s, expected %s; message: %s", dn_status_str(got),
                 dn_status_str(want), err->msg);
    assert_int_equal(err->status, want);
    if (file && !strstr(err->msg, file))
        fail_msg("message does not name %s: %s", file, err->msg);
    if (strchr(err->msg, '\n'))
        fail_msg("message is not one line: %s", err->msg);
    va_list ap;
    va_start(ap, file);
    const char *needle;
    while ((needle = va_arg(ap, const char *)) != NULL)
        if (!strstr(err->msg, needle))
            fail_msg("message lacks '%s': %s", needle, err->msg);
    va_end(ap);
}

static dn_status read_images(const char *path, dn_error *err)
{
    uint8_t *px = (uint8_t *)1;
    size_t n = 0;
    uint32_t r = 0, c = 0;
    dn_status st = dn_idx_read_images(path, &px, &n, &r, &c, err);
    if (st == DN_OK)
        free(px);
    else
        assert_null(px);
    return st;
}

static dn_status read_labels(const char *path, unsigned max_label, dn_error *err)
{
    uint8_t *lb = (uint8_t *)1;
    size_t n = 0;
    dn_status st = dn_idx_read_labels(path, &lb, &n, max_label, err);
    if (st == DN_OK)
        free(lb);
    else
        assert_null(lb);
    return st;
}

static void check_counts(const dn_dataset *ds, const size_t *want)
{
    size_t count[10] = {0};
    for (size_t i = 0; i < ds->n; i++) {
        assert_true(ds->labels[i] < 10);
        count[ds->labels[i]]++;
    }
    for (int k = 0; k < 10; k++)
        if (count[k] != want[k])
            fail_msg("%s class %d: %zu labels, expected %zu", ds->name, k, count[k], want[k]);
}

/* Mean and standard deviation of x/255 over every pixel. */
static void pixel_stats(const dn_dataset *ds, double *mean, double *std)
{
    size_t hist[256] = {0};
    size_t total = ds->n * ds->rows * ds->cols;
    for (size_t i = 0; i < total; i++)
        hist[ds->images[i]]++;
    double s = 0, s2 = 0;
    for (int v = 0; v < 256; v++) {
        s += (double)hist[v] * (v / 255.0);
        s2 += (double)hist[v] * (v / 255.0) * (v / 255.0);
    }
    *mean = s / (double)total;
    *std = sqrt(s2 / (double)total - *mean * *mean);
}

/* ------------------------------------------------------------------------ */
/* The real files                                                           */
/* ------------------------------------------------------------------------ */

static void test_mnist_train(void **state)
{
    (void)state;
    t_need_mnist();
    dn_dataset ds;
    dn_error err = {0};
    dn_status st = dn_dataset_load(&ds, t_mnist_dir(), "train", "mnist", &err);
    if (st)
        fail_msg("%s (run scripts/fetch-mnist)", err.msg);
    assert_int_equal(ds.n, 60000);
    assert_int_equal(ds.rows, 28);
    assert_int_equal(ds.cols, 28);
    assert_string_equal(ds.name, "mnist");
    assert_string_equal(ds.class_names[3], "3");
    static const size_t want[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    check_counts(&ds, want);
    /* The first training digit is the well-known 5. */
    assert_int_equal(ds.labels[0], 5);
    double mean, std;
    pixel_stats(&ds, &mean, &std);
    assert_float_equal(mean, 0.1307, 1e-4);
    assert_float_equal(std, 0.3081, 1e-4);
    assert_float_equal(ds.mean, DN_MNIST_MEAN, 0);
    assert_float_equal(ds.std, DN_MNIST_STD, 0);
    dn_dataset_free(&ds);
    assert_null(ds.images);
    assert_int_equal(ds.n, 0);
}

static void test_mnist_test(void **state)
{
    (void)state;
    t_need_mnist();
    dn_dataset ds;
    dn_error err = {0};
    dn_status st = dn_dataset_load(&ds, t_mnist_dir(), "test", "mnist", &err);
    if (st)
        fail_msg("%s (run scripts/fetch-mnist)", err.msg);
    assert_int_equal(ds.n, 10000);
    assert_int_equal(ds.rows, 28);
    assert_int_equal(ds.cols, 28);
    static const size_t want[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    check_counts(&ds, want);
    /* The lecture's first example is the test set's first digit, a 7. */
    assert_int_equal(ds.labels[0], 7);

    /* Normalisation: (x/255 - mean) / std, computed as torchvision does. */
    float img[28 * 28];
    dn_dataset_image(&ds, 0, img);
    for (int j = 0; j < 28 * 28; j++) {
        float want_v = ((float)ds.images[j] / 255.0f - 0.1307f) / 0.3081f;
        assert_float_equal(img[j], want_v, 0);
    }
    assert_float_equal(img[0], -0.4242129f, 1e-6);
    /* The last image too: its brightest pixel maps where it should. */
    dn_dataset_image(&ds, 9999, img);
    const uint8_t *last = ds.images + 9999 * 28 * 28;
    int at = 0;
    for (int j = 1; j < 28 * 28; j++)
        at = last[j] > last[at] ? j : at;
    assert_true(last[at] >= 250);
    assert_float_equal(img[at], ((float)last[at] / 255.0f - 0.1307f) / 0.3081f, 0);
    dn_dataset_free(&ds);
}

static void test_mnist_readers(void **state)
{
    (void)state;
    t_need_mnist();
    char path[1024];
    dn_error err = {0};
    uint8_t *lb = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", t_mnist_dir());
    assert_int_equal(dn_idx_read_labels(path, &lb, &n, 10, &err), DN_OK);
    assert_int_equal(n, 10000);
    assert_int_equal(lb[0], 7);
    assert_int_equal(lb[1], 2);
    assert_int_equal(lb[2], 1);
    free(lb);
    /* Label 9 occurs, so 9 classes must be refused, naming the first one:
     * the test set's eighth item (index 7) is a 9. */
    expect_error(read_labels(path, 9, &err), &err, DN_ERR_FORMAT, path, "label 9 of item 7",
                 "offset 15", "below 9", NULL);
    /* The exact message of the brief. */
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", t_mnist_dir());
    expect_error(read_labels(path, 10, &err), &err, DN_ERR_FORMAT, NULL, NULL);
    char want[1200];
    snprintf(want, sizeof want,
             "%s: offset 0: bad magic 0x00000803, expected 0x00000801 (IDX labels)", path);
    if (strncmp(err.msg, want, strlen(want)))
        fail_msg("got '%s', expected it to start with '%s'", err.msg, want);
    assert_int_equal(read_labels(path, 0, &err), DN_ERR_ARG);
}

static void test_fashion_gz(void **state)
{
    (void)state;
    t_need_fashion();
    dn_dataset ds;
    dn_error err = {0};
    static const char *const splits[2] = {"train", "test"};
    static const size_t sizes[2] = {60000, 10000};
    for (int s = 0; s < 2; s++) {
        if (dn_dataset_load(&ds, FASHION_DIR, splits[s], "fashion", &err))
            fail_msg("%s", err.msg);
        assert_int_equal(ds.n, sizes[s]);
        assert_int_equal(ds.rows, 28);
        size_t want[10];
        for (int k = 0; k < 10; k++)
            want[k] = sizes[s] / 10;
        check_counts(&ds, want);
        assert_string_equal(ds.name, "fashion");
        assert_string_equal(ds.class_names[0], "T-shirt/top");
        assert_string_equal(ds.class_names[9], "Ankle boot");
        /* The dataset's documented normalisation is its training set's. */
        if (s == 0) {
            double mean, std;
            pixel_stats(&ds, &mean, &std);
            assert_float_equal(mean, ds.mean, 1e-4);
            assert_float_equal(std, ds.std, 1e-4);
        }
        dn_dataset_free(&ds);
    }
}

static void test_names(void **state)
{
    (void)state;
    t_need_mnist();
    char dir[1024], path[2048];
    dn_error err = {0};
    dn_dataset ds;
    /* Dotted names, as some mirrors ship them. */
    t_tmppath(dir, sizeof dir, "dotted");
    make_dir(dir);
    static const char *const files[4][2] = {
        {"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"},
        {"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"},
        {"train-images-idx3-ubyte", "train-images.idx3-ubyte"},
        {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"},
    };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", t_mnist_dir(), files[i][0]);
        link_to(path, dir, files[i][1]);
    }
    if (dn_dataset_load(&ds, dir, "test", "mnist", &err))
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 10000);
    dn_dataset_free(&ds);
    /* Only the test split is there. */
    expect_error(dn_dataset_load(&ds, dir, "train", "mnist", &err), &err, DN_ERR_IO,
                 "train-images-idx3-ubyte", "not found", NULL);

    /* gzip is recognised by its magic bytes, not its name: a compressed file
     * without .gz and a plain file named .gz both read. */
    t_tmppath(dir, sizeof dir, "mixed");
    make_dir(dir);
    size_t isz, lsz;
    uint8_t *img = idx_images(3, 28, 28, 0, &isz);
    uint8_t *lab = idx_labels(3, &lsz);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_gz(path, img, isz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    t_write_file(path, lab, lsz);
    if (dn_dataset_load(&ds, dir, "train", "mnist", &err))
        fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 3);
    assert_memory_equal(ds.images, img + 16, 3 * 28 * 28);
    assert_memory_equal(ds.labels, lab + 8, 3);
    dn_dataset_free(&ds);
    free(img);
    free(lab);

    /* Odd but valid shapes read; only the dataset insists on 28x28. */
    t_tmppath(path, sizeof path, "odd-shape");
    img = idx_images(2, 3, 5, 0, &isz);
    t_write_file(path, img, isz);
    uint8_t *px = NULL;
    size_t n;
    uint32_t r, c;
    assert_int_equal(dn_idx_read_images(path, &px, &n, &r, &c, &err), DN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(r, 3);
    assert_int_equal(c, 5);
    assert_memory_equal(px, img + 16, 30);
    free(px);
    free(img);

    assert_string_equal(dn_class_names("mnist")[0], "0");
    assert_string_equal(dn_class_names("fashion")[4], "Coat");
    assert_null(dn_class_names("cifar"));
    assert_null(dn_class_names(NULL));
}

/* ------------------------------------------------------------------------ */
/* Broken files                                                             */
/* ------------------------------------------------------------------------ */

static void test_broken_headers(void **state)
{
    (void)state;
    char path[1024];
    dn_error err = {0};
    uint8_t b[32] = {0};

    t_tmppath(path, sizeof path, "empty-images");
    t_write_file(path, b, 0);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "offset 0",
                 "ends inside the header", "0x00000803", NULL);

    t_tmppath(path, sizeof path, "short-header-images");
    put_be32(b, 0x803);
    put_be32(b + 4, 1);
    put_be32(b + 8, 28);
    t_write_file(path, b, 12);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "offset 12",
                 "ends inside the header", "16 header bytes", NULL);

    t_tmppath(path, sizeof path, "wrong-magic");
    put_be32(b, 0x12345678);
    t_write_file(path, b, 16);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path,
                 "offset 0: bad magic 0x12345678, expected 0x00000803 (IDX images)",
                 "not an IDX file", NULL);

    t_tmppath(path, sizeof path, "labels-as-images");
    size_t lsz;
    uint8_t *lab = idx_labels(5, &lsz);
    t_write_file(path, lab, lsz);
    free(lab);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path,
                 "bad magic 0x00000801, expected 0x00000803", "IDX labels file", NULL);

    /* Each zero dimension is named. */
    static const char *const what[3] = {"image count is 0", "row count is 0",
                                        "column count is 0"};
    static const char *const where[3] = {"offset 4", "offset 8", "offset 12"};
    for (int d = 0; d < 3; d++) {
        size_t isz;
        uint8_t *img = idx_images(1, 2, 2, 0, &isz);
        put_be32(img + 4 + 4 * d, 0);
        t_tmppath(path, sizeof path, "zero-dim");
        t_write_file(path, img, isz);
        free(img);
        expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, what[d], where[d],
                     NULL);
    }
    t_tmppath(path, sizeof path, "zero-labels");
    put_be32(b, 0x801);
    put_be32(b + 4, 0);
    t_write_file(path, b, 8);
    expect_error(read_labels(path, 10, &err), &err, DN_ERR_FORMAT, path, "label count is 0",
                 NULL);

    /* (2^32-1)^3 bytes cannot be computed in 64 bits: an error, no malloc. */
    t_tmppath(path, sizeof path, "overflow-dims");
    put_be32(b, 0x803);
    put_be32(b + 4, 0xffffffffu);
    put_be32(b + 8, 0xffffffffu);
    put_be32(b + 12, 0xffffffffu);
    t_write_file(path, b, 32);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "4294967295 images",
                 "more bytes than memory can address", NULL);

    t_tmppath(path, sizeof path, "missing-file");
    expect_error(read_images(path, &err), &err, DN_ERR_IO, path, "cannot open", NULL);
    expect_error(read_labels(t_tmpdir(), 10, &err), &err, DN_ERR_IO, t_tmpdir(),
                 "is a directory", NULL);
    assert_int_equal(dn_idx_read_images(NULL, NULL, NULL, NULL, NULL, &err), DN_ERR_ARG);
}

static void test_broken_sizes(void **state)
{
    (void)state;
    char path[1024];
    dn_error err = {0};
    size_t isz;

    /* One byte missing from the last image. */
    uint8_t *img = idx_images(4, 28, 28, 0, &isz);
    t_tmppath(path, sizeof path, "truncated-images");
    t_write_file(path, img, isz - 1);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "offset 3151",
                 "truncated", "expected 3152", "4 images of 28x28", NULL);

    /* One byte too many. */
    t_tmppath(path, sizeof path, "trailing-images");
    free(img);
    img = idx_images(4, 28, 28, 1, &isz);
    t_write_file(path, img, isz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "offset 3152",
                 "1 trailing bytes", NULL);
    free(img);

    /* A label outside 0..9. */
    size_t lsz;
    uint8_t *lab = idx_labels(20, &lsz);
    lab[8 + 13] = 10;
    t_tmppath(path, sizeof path, "label-10");
    t_write_file(path, lab, lsz);
    expect_error(read_labels(path, 10, &err), &err, DN_ERR_FORMAT, path,
                 "offset 21: label 10 of item 13, expected a label below 10", NULL);
    free(lab);

    /* Labels file shorter than it claims. */
    lab = idx_labels(20, &lsz);
    t_tmppath(path, sizeof path, "truncated-labels");
    t_write_file(path, lab, lsz - 5);
    expect_error(read_labels(path, 10, &err), &err, DN_ERR_FORMAT, path, "truncated",
                 "offset 23", "20 labels", NULL);
    free(lab);
}

static void test_broken_gzip(void **state)
{
    (void)state;
    char path[1024];
    dn_error err = {0};
    size_t isz;

    /* A tiny .gz whose header claims 2^32-1 images of 32767x32767 (about
     * 2^62 bytes): more than any gzip file of its size can expand to, so
     * it is refused before anything is allocated or decompressed. */
    uint8_t *img = idx_images(2, 28, 28, 0, &isz);
    put_be32(img + 4, 0xffffffffu);
    put_be32(img + 8, 0x7fff);
    put_be32(img + 12, 0x7fff);
    t_tmppath(path, sizeof path, "huge-claim.gz");
    write_gz(path, img, isz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "truncated",
                 "gzip file of", "decompresses to at most", NULL);
    /* The same claim in a plain file is refused from its size alone. */
    t_tmppath(path, sizeof path, "huge-claim");
    t_write_file(path, img, isz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "truncated",
                 "file ends after 1584 bytes", NULL);
    free(img);

    /* Extra bytes inside the compressed stream. */
    img = idx_images(2, 28, 28, 3, &isz);
    t_tmppath(path, sizeof path, "trailing.gz");
    write_gz(path, img, isz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "offset 1584 (decompressed)",
                 "trailing bytes", NULL);
    free(img);

    /* A stream with damaged deflate data or CRC must not pass as data. */
    img = idx_images(40, 28, 28, 0, &isz);
    t_tmppath(path, sizeof path, "corrupt.gz");
    write_gz(path, img, isz);
    size_t gsz;
    char *gz = t_read_file(path, &gsz);
    assert_non_null(gz);
    assert_true(gsz > 64);
    for (size_t i = gsz / 2; i < gsz / 2 + 8; i++)
        gz[i] ^= 0x5a;
    t_write_file(path, gz, gsz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "gzip", NULL);
    /* Only the CRC-32 of the trailer damaged: caught by the end-of-file
     * read that confirms nothing follows. */
    write_gz(path, img, isz);
    free(gz);
    gz = t_read_file(path, &gsz);
    gz[gsz - 6] ^= 1;
    t_write_file(path, gz, gsz);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "corrupt gzip stream",
                 NULL);

    /* A .gz cut in half: truncated, with zlib's note. */
    write_gz(path, img, isz);
    free(gz);
    gz = t_read_file(path, &gsz);
    t_tmppath(path, sizeof path, "cut.gz");
    t_write_file(path, gz, gsz / 2);
    expect_error(read_images(path, &err), &err, DN_ERR_FORMAT, path, "truncated",
                 "(decompressed)", NULL);
    free(gz);
    free(img);

    /* An HTML error page saved under a .gz name. */
    static const char html[] = "<html><body>404 Not Found</body></html>\n";
    t_tmppath(path, sizeof path, "t10k-labels-idx1-ubyte.gz");
    t_write_file(path, html, sizeof html - 1);
    expect_error(read_labels(path, 10, &err), &err, DN_ERR_FORMAT, path, "bad magic 0x3c68746d",
                 "not an IDX file", NULL);
}

static void test_broken_datasets(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    dn_error err = {0};
    dn_dataset ds;
    size_t isz, lsz;

    /* Images and labels that disagree on the count. */
    t_tmppath(dir, sizeof dir, "count-mismatch");
    make_dir(dir);
    uint8_t *img = idx_images(5, 28, 28, 0, &isz);
    uint8_t *lab = idx_labels(4, &lsz);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    t_write_file(path, img, isz);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    expect_error(dn_dataset_load(&ds, dir, "test", "mnist", &err), &err, DN_ERR_FORMAT, path,
                 "4 labels, expected 5", "t10k-images-idx3-ubyte", NULL);
    assert_null(ds.images);
    free(img);
    free(lab);

    /* Valid IDX files of the wrong size for the model. */
    t_tmppath(dir, sizeof dir, "wrong-shape");
    make_dir(dir);
    img = idx_images(2, 32, 32, 0, &isz);
    lab = idx_labels(2, &lsz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    t_write_file(path, img, isz);
    expect_error(dn_dataset_load(&ds, dir, "train", "mnist", &err), &err, DN_ERR_SHAPE, path,
                 "images are 32x32, expected 28x28", NULL);
    free(img);
    free(lab);

    /* A broken labels file inside a dataset reports the file's own error. */
    t_tmppath(dir, sizeof dir, "bad-labels");
    make_dir(dir);
    img = idx_images(3, 28, 28, 0, &isz);
    lab = idx_labels(3, &lsz);
    lab[8 + 2] = 200;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    t_write_file(path, img, isz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    expect_error(dn_dataset_load(&ds, dir, "train", "mnist", &err), &err, DN_ERR_FORMAT, path,
                 "label 200 of item 2", NULL);
    free(img);
    free(lab);

    /* Missing files and directories, and bad arguments. */
    t_tmppath(dir, sizeof dir, "no-such-dir");
    expect_error(dn_dataset_load(&ds, dir, "train", "mnist", &err), &err, DN_ERR_IO, dir,
                 "no such data directory", NULL);
    t_tmppath(dir, sizeof dir, "bad-labels");
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    expect_error(dn_dataset_load(&ds, dir, "test", "mnist", &err), &err, DN_ERR_IO, path,
                 "not found", NULL);
    expect_error(dn_dataset_load(&ds, dir, "valid", "mnist", &err), &err, DN_ERR_ARG, NULL,
                 "unknown split 'valid'", NULL);
    expect_error(dn_dataset_load(&ds, dir, "train", "cifar", &err), &err, DN_ERR_ARG, NULL,
                 "unknown dataset 'cifar'", NULL);
}

/* ------------------------------------------------------------------------ */
/* Hostile headers cost nothing (memory measured in a child)                */
/* ------------------------------------------------------------------------ */

/* Memory a refusal may take: well below the tens of megabytes a reader
 * that trusted the header would decompress or allocate. */
#define REFUSAL_KB (16 * 1024)

/* A gzip file of the IDX header hdr (hlen bytes) followed by `zeros` zero
 * bytes: a stream that really decompresses to that much, as a bomb does. */
static void write_gz_zeros(const char *path, const uint8_t *hdr, size_t hlen, size_t zeros)
{
    gzFile gz = gzopen(path, "wb1");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, hdr, (unsigned)hlen), (int)hlen);
    static const uint8_t block[1 << 16];
    for (size_t done = 0; done < zeros; done += sizeof block) {
        size_t n = zeros - done < sizeof block ? zeros - done : sizeof block;
        assert_int_equal(gzwrite(gz, block, (unsigned)n), (int)n);
    }
    assert_int_equal(gzclose(gz), Z_OK);
}

static void images_header(uint8_t *h, uint32_t n, uint32_t rows, uint32_t cols)
{
    put_be32(h, 0x803);
    put_be32(h + 4, n);
    put_be32(h + 8, rows);
    put_be32(h + 12, cols);
}

/* For t_in_child: the status of reading images (arg: a path), the
 * message into msg. */
static int child_read_images(void *arg, char *msg, size_t size)
{
    dn_error err = {0};
    uint8_t *px = NULL;
    size_t n;
    uint32_t r, c;
    dn_status st = dn_idx_read_images(arg, &px, &n, &r, &c, &err);
    free(px);
    snprintf(msg, size, "%s", err.msg);
    return (int)st;
}

static int child_read_labels(void *arg, char *msg, size_t size)
{
    dn_error err = {0};
    uint8_t *lb = NULL;
    size_t n;
    dn_status st = dn_idx_read_labels(arg, &lb, &n, 10, &err);
    free(lb);
    snprintf(msg, size, "%s", err.msg);
    return (int)st;
}

/* arg: the directory of a "train" split. */
static int child_load_dataset(void *arg, char *msg, size_t size)
{
    dn_error err = {0};
    dn_dataset ds;
    dn_status st = dn_dataset_load(&ds, arg, "train", "mnist", &err);
    dn_dataset_free(&ds);
    snprintf(msg, size, "%s", err.msg);
    return (int)st;
}

/* Runs fn(path) in a child and checks it failed with `want`, quickly and
 * cheaply, with a message naming path and holding phrase. */
static void expect_cheap_refusal(int (*fn)(void *, char *, size_t), const char *path,
                                 dn_status want, const char *phrase)
{
    char msg[512];
    long grew = 0;
    int rc = t_in_child(fn, (void *)path, 20, &grew, msg, sizeof msg);
    if (rc != (int)want || !strstr(msg, path) || !strstr(msg, phrase))
        fail_msg("%s: wanted %s mentioning '%s', got %d: %s", path, dn_status_str(want), phrase,
                 rc, msg);
    if (grew > REFUSAL_KB)
        fail_msg("%s: refusing took %ld KB of memory (at most %d expected): %s", path, grew,
                 REFUSAL_KB, msg);
    if (getenv("DN_TEST_VERBOSE"))
        print_message("refused with %ld KB: %s\n", grew, msg);
}

static void test_gzip_false_headers(void **state)
{
    (void)state;
    char path[1024];
    uint8_t h[16];

    /* The bomb, scaled down: a .gz of a few hundred KB whose 64 MB
     * of zeros follow a header claiming 4,294,967,295 images. Trusting
     * the header meant decompressing all of it before "truncated". */
    images_header(h, 0xffffffffu, 28, 28);
    t_tmppath(path, sizeof path, "bomb-count.gz");
    write_gz_zeros(path, h, sizeof h, (size_t)64 << 20);
    expect_cheap_refusal(child_read_images, path, DN_ERR_FORMAT, "decompresses to at most");

    /* One 65535x65535 image (4 GB) in the same few hundred KB. */
    images_header(h, 1, 65535, 65535);
    t_tmppath(path, sizeof path, "bomb-side.gz");
    write_gz_zeros(path, h, sizeof h, (size_t)64 << 20);
    expect_cheap_refusal(child_read_images, path, DN_ERR_FORMAT, "1 images of 65535x65535");

    /* Labels: 4,294,967,295 claimed, 64 MB present. */
    put_be32(h, 0x801);
    put_be32(h + 4, 0xffffffffu);
    t_tmppath(path, sizeof path, "bomb-labels.gz");
    write_gz_zeros(path, h, 8, (size_t)64 << 20);
    expect_cheap_refusal(child_read_labels, path, DN_ERR_FORMAT, "4294967295 labels");
}

static void test_dataset_checks_headers_first(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    uint8_t h[16];
    size_t lsz;

    /* Four 4096x4096 images that really are in the file (64 MB of zeros,
     * within deflate's ratio): the dataset wants 28x28, which the header
     * already tells, so no pixel may be read. */
    t_tmppath(dir, sizeof dir, "big-side");
    make_dir(dir);
    uint8_t *lab = idx_labels(4, &lsz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    free(lab);
    images_header(h, 4, 4096, 4096);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz_zeros(path, h, sizeof h, (size_t)64 << 20);
    expect_cheap_refusal(child_load_dataset, dir, DN_ERR_SHAPE, "4096x4096, expected 28x28");

    /* 85,000 real 28x28 images (64 MB) but 10 labels: the counts are
     * compared from the two headers before either payload. */
    t_tmppath(dir, sizeof dir, "many-images");
    make_dir(dir);
    lab = idx_labels(10, &lsz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    free(lab);
    images_header(h, 85000, 28, 28);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz_zeros(path, h, sizeof h, (size_t)85000 * 784);
    expect_cheap_refusal(child_load_dataset, dir, DN_ERR_FORMAT, "10 labels, expected 85000");
}

/* A FIFO where a file is expected must be refused at once: opening one
 * for reading waits for a writer that never comes. */
static void test_fifo_refused(void **state)
{
    (void)state;
    char path[2048], dir[1024];
    t_tmppath(path, sizeof path, "fifo-idx");
    if (mkfifo(path, 0600) != 0)
        fail_msg("mkfifo %s failed", path);
    expect_cheap_refusal(child_read_images, path, DN_ERR_IO, "is a FIFO");
    expect_cheap_refusal(child_read_labels, path, DN_ERR_IO, "is a FIFO");
    expect_cheap_refusal(child_read_images, "/dev/zero", DN_ERR_IO, "is a device");

    /* A dataset whose images file is a FIFO. */
    t_tmppath(dir, sizeof dir, "fifo-dataset");
    make_dir(dir);
    size_t lsz;
    uint8_t *lab = idx_labels(3, &lsz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    t_write_file(path, lab, lsz);
    free(lab);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    if (mkfifo(path, 0600) != 0)
        fail_msg("mkfifo %s failed", path);
    expect_cheap_refusal(child_load_dataset, dir, DN_ERR_IO, "is a FIFO");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mnist_train),     cmocka_unit_test(test_mnist_test),
        cmocka_unit_test(test_mnist_readers),   cmocka_unit_test(test_fashion_gz),
        cmocka_unit_test(test_names),           cmocka_unit_test(test_broken_headers),
        cmocka_unit_test(test_broken_sizes),    cmocka_unit_test(test_broken_gzip),
        cmocka_unit_test(test_broken_datasets), cmocka_unit_test(test_gzip_false_headers),
        cmocka_unit_test(test_dataset_checks_headers_first),
        cmocka_unit_test(test_fifo_refused),
    };
    return cmocka_run_group_tests_name("idx", tests, NULL, NULL);
}
