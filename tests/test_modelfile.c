/*
 * test_modelfile.c - safetensors model files: round trips, PyTorch
 * fixtures in both directions, hostile files and failed saves.
 *
 * Fixtures (written by tools/torch_safetensors.py, see its header):
 *   tests/fixtures/torch_model.safetensors  CNN_MNIST, torch.manual_seed(0)
 *       and 300 Adam steps, saved with {"format": "pt"} metadata only
 *   tests/fixtures/torch_logprobs_100.bin   its eval-mode log-probabilities
 *       of the first 100 MNIST test images, raw float32 (100, 10)
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE_MODEL "tests/fixtures/torch_model.safetensors"
#define FIXTURE_LOGPROBS "tests/fixtures/torch_logprobs_100.bin"
#define N_IMAGES 100

static const dn_shape mnist_input = {1, 28, 28};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static dn_model *new_model(const char *spec, uint64_t seed)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(spec, mnist_input, seed, &err);
    if (!m)
        fail_msg("dn_model_new: %s", err.msg);
    return m;
}

static void save_ok(const dn_model *m, const char *path, const dn_file_extras *x)
{
    dn_error err = {0};
    dn_status st = dn_model_save(m, path, x, &err);
    if (st != DN_OK)
        fail_msg("dn_model_save: %s", err.msg);
}

static dn_model *load_ok(const char *path, dn_file_extras *x)
{
    dn_error err = {0};
    dn_model *m = dn_model_load(path, x, &err);
    if (!m)
        fail_msg("dn_model_load: %s", err.msg);
    return m;
}

/* Asserts that loading path fails with one line that starts with the path
 * and contains phrase, and that extras come back empty. */
static void expect_refused(const char *path, const char *phrase)
{
    dn_error err = {0};
    dn_file_extras x;
    memset(&x, 0x55, sizeof x);
    dn_model *m = dn_model_load(path, &x, &err);
    if (m || strncmp(err.msg, path, strlen(path)) != 0 || !strstr(err.msg, phrase) ||
        strchr(err.msg, '\n') || err.status == DN_OK) {
        dn_model_free(m);
        fail_msg("load of %s: wanted a refusal mentioning \"%s\", got %s: \"%s\"", path,
                 phrase, m ? "a model" : dn_status_str(err.status), err.msg);
    }
    assert_int_equal(x.n_tensors, 0);
    assert_int_equal(x.n_meta, 0);
    /* Without extras the same file must be refused the same way. */
    dn_error err2 = {0};
    assert_null(dn_model_load(path, NULL, &err2));
    if (getenv("DN_TEST_VERBOSE"))
        print_message("refused: %s\n", err.msg);
}

/* A safetensors file from its parts: an 8-byte length (hlen_override if
 * not ~0), the header text and data_len bytes of data. */
static void write_st(const char *path, const char *header, uint64_t hlen_override,
                     const void *data, size_t data_len)
{
    size_t hl = strlen(header);
    uint64_t n = hlen_override != ~(uint64_t)0 ? hlen_override : hl;
    size_t size = 8 + hl + data_len;
    unsigned char *buf = calloc(1, size);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data && data_len)
        memcpy(buf + 8 + hl, data, data_len);
    t_write_file(path, buf, size);
    free(buf);
}

/* Splits a model file into its header text (malloc'd, NUL-terminated) and
 * data (malloc'd). */
static void split_file(const char *path, char **header, unsigned char **data,
                       size_t *data_len)
{
    size_t size = 0;
    unsigned char *raw = (unsigned char *)t_read_file(path, &size);
    assert_non_null(raw);
    assert_true(size >= 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | raw[i];
    assert_true(n <= size - 8);
    *header = malloc(n + 1);
    assert_non_null(*header);
    memcpy(*header, raw + 8, n);
    (*header)[n] = 0;
    *data_len = size - 8 - n;
    *data = malloc(*data_len + 1);
    assert_non_null(*data);
    memcpy(*data, raw + 8 + n, *data_len);
    free(raw);
}

/* Writes dst as src with the first occurrence of `from` in its header
 * replaced by `to` (the data section unchanged). */
static void edit_header(const char *src, const char *dst, const char *from, const char *to)
{
    char *h;
    unsigned char *d;
    size_t dl;
    split_file(src, &h, &d, &dl);
    char *at = strstr(h, from);
    if (!at)
        fail_msg("'%s' not in the header of %s", from, src);
    size_t nh = strlen(h) - strlen(from) + strlen(to);
    char *out = malloc(nh + 1);
    assert_non_null(out);
    size_t pre = (size_t)(at - h);
    memcpy(out, h, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    write_st(dst, out, ~(uint64_t)0, d, dl);
    free(out);
    free(h);
    free(d);
}

static char *tmp(char *buf, const char *name)
{
    return t_tmppath(buf, 512, name);
}

/* The first n MNIST test images, normalised as the model expects. */
static float *mnist_test_images(int n, const dn_model *m)
{
    dn_dataset ds;
    dn_error err = {0};
    t_need_mnist();
    if (dn_dataset_load(&ds, t_mnist_dir(), "test", "mnist", &err) != DN_OK)
        fail_msg("dn_dataset_load: %s", err.msg);
    assert_true(ds.n >= (size_t)n && ds.rows == 28 && ds.cols == 28);
    ds.mean = m->mean;
    ds.std = m->std;
    float *x = malloc((size_t)n * 784 * sizeof *x); // (n, 1, 28, 28)
    assert_non_null(x);
    for (int i = 0; i < n; i++)
        dn_dataset_image(&ds, (size_t)i, x + (size_t)i * 784);
    dn_dataset_free(&ds);
    return x;
}

/* Eval-mode log-probabilities (n, 10) of the first n test images. */
static float *logprobs(const dn_model *m, int n)
{
    float *x = mnist_test_images(n, m);
    dn_work *w = dn_work_new(m, n);
    assert_non_null(w);
    const float *y = dn_model_forward(m, w, x, n, DN_MODE_EVAL, NULL);
    assert_non_null(y);
    float *out = malloc((size_t)n * 10 * sizeof *out);
    assert_non_null(out);
    memcpy(out, y, (size_t)n * 10 * sizeof *out);
    dn_work_free(w);
    free(x);
    return out;
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp"))
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */
/* ------------------------------------------------------------------------ */

static void test_roundtrip_bit_identical(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "rt.safetensors");
    dn_model *m = new_model(NULL, 42);
    m->mean = 0.123456789f;
    m->std = 0.987654321f;
    snprintf(m->dataset, sizeof m->dataset, "fashion");
    /* Values a text format would lose: -0, the smallest denormal, the
     * largest float (non-finite values are refused, see
     * test_nonfinite_refused). */
    m->params[0] = -0.0f;
    m->params[1] = 1e-45f;
    m->params[2] = FLT_MAX;
    m->params[3] = -FLT_MAX;

    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float sq[1000], one = 7.5f;
    for (int i = 0; i < 1000; i++)
        sq[i] = (float)i * 0.001f - 0.3f;
    x.n_tensors = 3;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "optim.square_avg");
    x.tensors[0].data = sq;
    x.tensors[0].len = 1000;
    snprintf(x.tensors[1].name, sizeof x.tensors[1].name, "train.step");
    x.tensors[1].data = &one;
    x.tensors[1].len = 1;
    snprintf(x.tensors[2].name, sizeof x.tensors[2].name, "empty");
    x.tensors[2].data = NULL;
    x.tensors[2].len = 0;
    x.n_meta = 2;
    snprintf(x.meta[0].key, sizeof x.meta[0].key, "train.epoch");
    snprintf(x.meta[0].value, sizeof x.meta[0].value, "3");
    snprintf(x.meta[1].key, sizeof x.meta[1].key, "note");
    snprintf(x.meta[1].value, sizeof x.meta[1].value, "quote \" backslash \\ tab \t, \xc3\xa9");
    save_ok(m, path, &x);

    dn_file_extras y;
    dn_model *l = load_ok(path, &y);
    assert_int_equal(l->n_params, m->n_params);
    assert_memory_equal(l->params, m->params, m->n_params * sizeof(float));
    assert_string_equal(l->spec, m->spec);
    assert_memory_equal(&l->mean, &m->mean, sizeof m->mean);
    assert_memory_equal(&l->std, &m->std, sizeof m->std);
    assert_string_equal(l->dataset, "fashion");
    assert_int_equal(l->input.c, 1);
    assert_int_equal(l->input.h, 28);
    assert_int_equal(l->n_layers, m->n_layers);

    assert_int_equal(y.n_tensors, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(y.tensors[i].name, x.tensors[i].name);
        assert_int_equal(y.tensors[i].len, x.tensors[i].len);
        assert_non_null(y.tensors[i].data);
        if (x.tensors[i].len)
            assert_memory_equal(y.tensors[i].data, x.tensors[i].data,
                                x.tensors[i].len * sizeof(float));
    }
    assert_int_equal(y.n_meta, 2);
    assert_string_equal(dn_file_extras_get(&y, "train.epoch"), "3");
    assert_string_equal(dn_file_extras_get(&y, "note"), x.meta[1].value);
    /* Standard keys belong to the model, not to the extras. */
    assert_null(dn_file_extras_get(&y, "arch"));
    assert_null(dn_file_extras_get(&y, "checksum"));
    assert_null(dn_file_extras_get(&y, "missing"));
    assert_null(dn_file_extras_get(NULL, "note"));
    dn_file_extras_free(&y);
    assert_int_equal(y.n_tensors, 0);
    assert_null(y.tensors[0].data);
    dn_file_extras_free(NULL);

    /* Without extras the extra tensors are simply skipped. */
    dn_model *l2 = load_ok(path, NULL);
    assert_memory_equal(l2->params, m->params, m->n_params * sizeof(float));
    dn_model_free(l2);

    /* Saving what was loaded gives the same bytes. */
    char path2[512];
    tmp(path2, "rt2.safetensors");
    save_ok(l, path2, &x);
    size_t s1, s2;
    char *b1 = t_read_file(path, &s1), *b2 = t_read_file(path2, &s2);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1);
    free(b2);
    dn_model_free(l);
    dn_model_free(m);
}

static void test_roundtrip_other_arch(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "small.safetensors");
    const char *spec = "conv 4 k5 p0 s2, relu, flatten, fc 12, relu, fc 10, logsoftmax";
    dn_error err = {0};
    dn_shape in = {1, 20, 24};
    dn_model *m = dn_model_new(spec, in, 9, &err);
    if (!m)
        fail_msg("dn_model_new: %s", err.msg);
    save_ok(m, path, NULL);
    dn_model *l = load_ok(path, NULL);
    assert_string_equal(l->spec, m->spec);
    assert_int_equal(l->input.c, 1);
    assert_int_equal(l->input.h, 20);
    assert_int_equal(l->input.w, 24);
    assert_int_equal(l->n_params, m->n_params);
    assert_memory_equal(l->params, m->params, m->n_params * sizeof(float));
    assert_int_not_equal(strcmp(l->spec, DN_DEFAULT_SPEC), 0);
    dn_model_free(l);
    dn_model_free(m);
}

/* The bytes on disk follow the spec: aligned header, PyTorch names and
 * shapes, the documented metadata, a checksum of the data section. */
static void test_file_layout(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "layout.safetensors");
    dn_model *m = new_model(NULL, 1);
    save_ok(m, path, NULL);
    char *h;
    unsigned char *d;
    size_t dl;
    split_file(path, &h, &d, &dl);
    assert_int_equal(strlen(h) % 8, 0);
    assert_int_equal(h[0], '{');
    assert_int_equal(dl, m->n_params * sizeof(float));
    assert_non_null(strstr(h, "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[8,1,3,3],"
                              "\"data_offsets\":[0,288]}"));
    assert_non_null(strstr(h, "\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[64,784]"));
    assert_non_null(strstr(h, "\"fc2.bias\":{\"dtype\":\"F32\",\"shape\":[10]"));
    assert_non_null(strstr(h, "\"format\":\"digitnet\""));
    assert_non_null(strstr(h, "\"mean\":\"0.130700007\""));
    assert_non_null(strstr(h, "\"std\":\"0.308099985\""));
    assert_non_null(strstr(h, "\"dataset\":\"mnist\""));
    assert_non_null(strstr(h, "\"version\":\"" DN_VERSION "\""));
    char arch[1200];
    snprintf(arch, sizeof arch, "\"arch\":\"%s\"", m->spec);
    assert_non_null(strstr(h, arch));
    /* conv1.weight's first value, little-endian. */
    uint32_t u = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
                 (uint32_t)d[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    assert_memory_equal(&f, &m->params[m->layers[0].w_off], 4);
    free(h);
    free(d);
    dn_model_free(m);
}

/* ------------------------------------------------------------------------ */
/* PyTorch                                                                  */
/* ------------------------------------------------------------------------ */

/* A file PyTorch wrote ({"format": "pt"} only, tensors in name order) loads
 * with the defaults and gives PyTorch's log-probabilities. */
static void test_torch_fixture_logprobs(void **state)
{
    (void)state;
    dn_file_extras x;
    dn_model *m = load_ok(FIXTURE_MODEL, &x);
    dn_model *ref = new_model(NULL, 0);
    assert_string_equal(m->spec, ref->spec);
    assert_true(m->mean == DN_MNIST_MEAN && m->std == DN_MNIST_STD);
    assert_string_equal(m->dataset, "mnist");
    assert_int_equal(x.n_tensors, 0);
    assert_int_equal(x.n_meta, 0);
    dn_model_free(ref);

    size_t size = 0;
    float *want = (float *)t_read_file(FIXTURE_LOGPROBS, &size);
    assert_non_null(want);
    assert_int_equal(size, N_IMAGES * 10 * sizeof(float));
    float *got = logprobs(m, N_IMAGES);
    double max_diff = 0;
    int agree = 0;
    float spread = 0;
    for (int i = 0; i < N_IMAGES; i++) {
        int a = 0, b = 0;
        for (int c = 0; c < 10; c++) {
            double dd = fabs((double)got[i * 10 + c] - (double)want[i * 10 + c]);
            if (!(dd <= max_diff))
                max_diff = dd; /* NaN sticks */
            if (got[i * 10 + c] > got[i * 10 + a])
                a = c;
            if (want[i * 10 + c] > want[i * 10 + b])
                b = c;
            if (-want[i * 10 + c] > spread)
                spread = -want[i * 10 + c];
        }
        agree += a == b;
    }
    print_message("torch -> digitnet: max |logp diff| = %.3g over %d images\n", max_diff,
                  N_IMAGES);
    /* A fixture of near-uniform outputs would prove little. */
    assert_true(spread > 10);
    assert_true(max_diff < 1e-4);
    assert_int_equal(agree, N_IMAGES);
    free(got);
    free(want);
    dn_model_free(m);
}

/* digitnet -> PyTorch: a model saved here loads strictly into CNN_MNIST and
 * gives the same log-probabilities. Needs /usr/bin/python3 with torch;
 * skipped without it, or with DN_TEST_TORCH=0. */
static void test_torch_reads_our_file(void **state)
{
    (void)state;
    const char *env = getenv("DN_TEST_TORCH");
    if (env && !strcmp(env, "0"))
        skip();
    if (system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        print_message("skipped: /usr/bin/python3 cannot import torch\n");
        skip();
    }
    /* PyTorch's trained fixture with every parameter changed, so that what
     * PyTorch reads can only have come from this save. */
    dn_model *m = load_ok(FIXTURE_MODEL, NULL);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 1.0f + 0.25f * sinf((float)i);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float st[4] = {1, 2, 3, 4};
    x.n_tensors = 1;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "optim.exp_avg");
    x.tensors[0].data = st;
    x.tensors[0].len = 4;
    x.n_meta = 1;
    snprintf(x.meta[0].key, sizeof x.meta[0].key, "train.epoch");
    snprintf(x.meta[0].value, sizeof x.meta[0].value, "1");
    char path[512], lp_path[512], out_path[512];
    tmp(path, "ours.safetensors");
    tmp(lp_path, "ours_logprobs.bin");
    tmp(out_path, "check.out");
    save_ok(m, path, &x);
    float *lp = logprobs(m, N_IMAGES);
    t_write_file(lp_path, lp, N_IMAGES * 10 * sizeof(float));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "nice /usr/bin/python3 tools/torch_safetensors.py --data '%s' check '%s' "
             "--n %d --logprobs '%s' >'%s' 2>&1",
             t_mnist_dir(), path, N_IMAGES, lp_path, out_path);
    int rc = system(cmd);
    char *out = t_read_file(out_path, NULL);
    assert_non_null(out);
    const char *at = strstr(out, "max abs diff ");
    double diff = at ? strtod(at + strlen("max abs diff "), NULL) : INFINITY;
    print_message("digitnet -> torch: %s", out);
    if (rc != 0 || !at || !(diff < 1e-4))
        fail_msg("torch_safetensors.py check failed (status %d): %s", rc, out);
    free(out);
    free(lp);
    dn_model_free(m);
}

/* ------------------------------------------------------------------------ */
/* Hostile files                                                            */
/* ------------------------------------------------------------------------ */

/* Files broken before any model is involved: each is refused with a line
 * naming the file and the problem. */
static void test_hostile_headers(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        uint64_t hlen;      /* ~0: the header's own length */
        size_t data_len;
        const char *phrase;
    } cases[] = {
        /* the length field */
        {"{}", 0, 0, "header length 0"},
        {"{}", 1000, 0, "runs past the end of the file"},
        {"{}", (uint64_t)1 << 62, 0, "is absurd"},
        {"{}", 200u << 20, 0, "is absurd"},
        /* the JSON */
        {"{\"a\":", ~(uint64_t)0, 0, "not valid JSON"},
        {"{\"a\" 1}", ~(uint64_t)0, 0, "not valid JSON"},
        {"[1, 2]  ", ~(uint64_t)0, 0, "expected '{'"},
        {"  {}    ", ~(uint64_t)0, 0, "expected '{'"},
        {"{} trailing", ~(uint64_t)0, 0, "not valid JSON"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         ~(uint64_t)0, 8, "duplicate"},
        {"{\"\xff\xfe\":1}", ~(uint64_t)0, 0, "not valid JSON"},
        /* metadata */
        {"{\"__metadata__\":{\"mean\":0.5}}", ~(uint64_t)0, 0,
         "metadata \"mean\" is a real number, expected a string"},
        {"{\"__metadata__\":{\"format\":null}}", ~(uint64_t)0, 0, "is null, expected a string"},
        {"{\"__metadata__\":[\"a\"]}", ~(uint64_t)0, 0, "\"__metadata__\" is an array"},
        /* tensor entries */
        {"{\"conv1.weight\":5}", ~(uint64_t)0, 0, "tensor 'conv1.weight': entry is an integer"},
        {"{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4, "no \"dtype\""},
        {"{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4, "no \"shape\""},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", ~(uint64_t)0, 4, "no \"data_offsets\""},
        {"{\"t\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "\"dtype\" is an integer, expected a string"},
        {"{\"t\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "dtype \"F16\", expected \"F32\""},
        {"{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", ~(uint64_t)0, 8,
         "dtype \"F64\""},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "\"shape\" is a string, expected an array"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "shape[0] is -1"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "shape[0] is a real number"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
         "\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4, "more elements than any file can hold"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,2],"
         "\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4, "more elements than any file can hold"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],"
         "\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4, "not valid JSON"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
         ~(uint64_t)0, 4, "\"shape\" has 9 entries"},
        /* offsets */
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", ~(uint64_t)0, 4,
         "expected [begin, end]"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", ~(uint64_t)0, 4,
         "end before they begin"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "hold 4 bytes but shape [2] of F32 needs 8"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", ~(uint64_t)0, 4,
         "run past the end of the data section"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", ~(uint64_t)0, 4,
         "data_offsets[0] is -4"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[18446744073709551612,18446744073709551616]}}", ~(uint64_t)0, 4,
         "not valid JSON"},
        /* the data section must be tiled exactly */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", ~(uint64_t)0, 12,
         "tensors 'a' and 'b' overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 4,
         "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", ~(uint64_t)0, 12,
         "bytes [4,8) of the data section belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", ~(uint64_t)0, 12,
         "8 bytes after the last tensor belong to no tensor"},
        {"{}", ~(uint64_t)0, 16, "16 bytes of data but no tensors"},
        /* checksum format */
        {"{\"__metadata__\":{\"checksum\":\"0x12\"}}", ~(uint64_t)0, 0,
         "\"checksum\" is \"0x12\", expected 8 hex digits"},
        {"{\"__metadata__\":{\"checksum\":\"\"}}", ~(uint64_t)0, 0, "expected 8 hex digits"},
    };
    static const unsigned char zeros[64];
    char path[512], name[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "hostile-%02zu.safetensors", i);
        tmp(path, name);
        write_st(path, cases[i].header, cases[i].hlen, zeros, cases[i].data_len);
        expect_refused(path, cases[i].phrase);
    }
    /* An embedded NUL byte in the header. */
    tmp(path, "hostile-nul.safetensors");
    write_st(path, "{\"a\":1}", ~(uint64_t)0, NULL, 0);
    {
        size_t size;
        char *b = t_read_file(path, &size);
        b[8 + 3] = 0;
        t_write_file(path, b, size);
        free(b);
    }
    expect_refused(path, "not valid JSON");
}

static void test_hostile_sizes(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "short.safetensors");
    t_write_file(path, "", 0);
    expect_refused(path, "file has 0 bytes, expected at least the 8-byte header length");
    t_write_file(path, "\x02\0\0\0\0\0\0", 7);
    expect_refused(path, "file has 7 bytes");

    /* A sparse file over 1 GiB is refused from its size alone. */
    tmp(path, "huge.safetensors");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    int ok = ftruncate(fileno(f), ((off_t)1 << 30) + 8) == 0;
    fclose(f);
    if (ok)
        expect_refused(path, "more than the 1 GiB");
    unlink(path);

    /* Nesting deeper than jansson allows, and a flood of tiny values. */
    size_t depth = 5000, n = 2 * depth + 16;
    char *h = malloc(n + 1);
    assert_non_null(h);
    strcpy(h, "{\"a\":");
    size_t at = strlen(h);
    for (size_t i = 0; i < depth; i++)
        h[at++] = '[';
    for (size_t i = 0; i < depth; i++)
        h[at++] = ']';
    h[at++] = '}';
    h[at] = 0;
    tmp(path, "deep.safetensors");
    write_st(path, h, ~(uint64_t)0, NULL, 0);
    expect_refused(path, "not valid JSON");
    free(h);
    n = 2 * 70000 + 16;
    h = malloc(n + 1);
    assert_non_null(h);
    strcpy(h, "{\"a\":[");
    at = strlen(h);
    for (size_t i = 0; i < 70000; i++) {
        h[at++] = '0';
        h[at++] = ',';
    }
    h[at - 1] = ']';
    h[at++] = '}';
    h[at] = 0;
    tmp(path, "flood.safetensors");
    write_st(path, h, ~(uint64_t)0, NULL, 0);
    expect_refused(path, "more than the 65536 a model file may have");
    free(h);

    /* Not a file at all. */
    expect_refused(t_tmpdir(), "not a regular file");
    tmp(path, "does-not-exist.safetensors");
    expect_refused(path, "cannot open");
}

/* Files whose header is sound but which do not make the model. */
static void test_hostile_model(void **state)
{
    (void)state;
    char good[512], path[512];
    tmp(good, "good.safetensors");
    dn_model *m = new_model(NULL, 3);
    save_ok(m, good, NULL);
    dn_model_free(m);

    tmp(path, "missing.safetensors");
    edit_header(good, path, "\"conv2.bias\"", "\"conv2.biax\"");
    expect_refused(path, "no tensor 'conv2.bias' (shape [16]), which the architecture needs");

    tmp(path, "transposed.safetensors");
    edit_header(good, path, "\"shape\":[64,784]", "\"shape\":[784,64]");
    expect_refused(path, "tensor 'fc1.weight': shape [784,64] but the architecture needs [64,784]");

    tmp(path, "wrong-rank.safetensors");
    edit_header(good, path, "\"shape\":[8,1,3,3]", "\"shape\":[8,9]");
    expect_refused(path, "tensor 'conv1.weight': shape [8,9] but the architecture needs [8,1,3,3]");

    /* An arch whose fc1 is narrower than the tensors in the file. */
    tmp(path, "arch-mismatch.safetensors");
    edit_header(good, path, "fc 64", "fc 32");
    expect_refused(path, "tensor 'fc1.weight': shape [64,784] but the architecture needs [32,784]");

    tmp(path, "bad-arch.safetensors");
    edit_header(good, path, "\"arch\":\"", "\"arch\":\"bogus 3, ");
    expect_refused(path, "metadata \"arch\": layer 1");

    tmp(path, "bad-input.safetensors");
    edit_header(good, path, "\"input\":\"1x28x28\"", "\"input\":\"1x28\"");
    expect_refused(path, "metadata \"input\" is \"1x28\"");

    tmp(path, "bad-mean.safetensors");
    edit_header(good, path, "\"mean\":\"0.130700007\"", "\"mean\":\"nan\"");
    expect_refused(path, "metadata \"mean\" is \"nan\", expected a finite number");

    tmp(path, "bad-std.safetensors");
    edit_header(good, path, "\"std\":\"0.308099985\"", "\"std\":\"0\"");
    expect_refused(path, "metadata \"std\" is \"0\", expected a positive number");

    tmp(path, "bad-dataset.safetensors");
    edit_header(good, path, "\"dataset\":\"mnist\"", "\"dataset\":\"a-very-long-dataset-name\"");
    expect_refused(path, "metadata \"dataset\"");

    /* One flipped bit in the data is caught by the checksum. */
    tmp(path, "flipped.safetensors");
    size_t size;
    char *b = t_read_file(good, &size);
    assert_non_null(b);
    b[size - 100] ^= 0x04;
    t_write_file(path, b, size);
    free(b);
    expect_refused(path, "checksum mismatch");
    /* ... and without a checksum the same file loads (as PyTorch's would). */
    char nosum[512];
    tmp(nosum, "nosum.safetensors");
    edit_header(path, nosum, "\"checksum\":", "\"checksun\":");
    dn_model *l = load_ok(nosum, NULL);
    dn_model_free(l);
}

/* Extras that dn_model_save would refuse to write back are refused when
 * read (found by fuzz_modelfile: an empty metadata key loaded, then the
 * model could not be saved). */
static void test_extras_save_would_refuse(void **state)
{
    (void)state;
    char good[512], path[512];
    tmp(good, "extras-roundtrip.safetensors");
    dn_model *m = new_model("flatten, fc 10, logsoftmax", 6);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float v[3] = {1, 2, 3};
    x.n_tensors = 1;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "optim.square_avg");
    x.tensors[0].data = v;
    x.tensors[0].len = 3;
    save_ok(m, good, &x);
    dn_model_free(m);

    tmp(path, "empty-key.safetensors");
    edit_header(good, path, "\"format\":", "\"\":");
    expect_refused(path, "metadata with an empty key");
    tmp(path, "empty-tensor-name.safetensors");
    edit_header(good, path, "\"optim.square_avg\":", "\"\":");
    expect_refused(path, "a tensor with an empty name");
}

/* Extra tensors beyond what dn_file_extras holds are an error only when
 * the caller asked for them. */
static void test_too_many_extras(void **state)
{
    (void)state;
    char good[512], path[512];
    tmp(good, "extras-good.safetensors");
    dn_model *m = new_model(NULL, 4);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float v[DN_FILE_MAX_TENSORS];
    x.n_tensors = DN_FILE_MAX_TENSORS;
    for (int i = 0; i < DN_FILE_MAX_TENSORS; i++) {
        v[i] = (float)i;
        snprintf(x.tensors[i].name, sizeof x.tensors[i].name, "extra%d", i);
        x.tensors[i].data = &v[i];
        x.tensors[i].len = 1;
    }
    save_ok(m, good, &x);
    dn_file_extras y;
    dn_model *l = load_ok(good, &y);
    assert_int_equal(y.n_tensors, DN_FILE_MAX_TENSORS);
    assert_true(y.tensors[DN_FILE_MAX_TENSORS - 1].data[0] == (float)(DN_FILE_MAX_TENSORS - 1));
    dn_file_extras_free(&y);
    dn_model_free(l);

    dn_model_free(m);

    /* Nine extras written through a bigger hand-made header. */
    m = new_model("flatten, fc 10, logsoftmax", 5);
    char hdr[4096];
    int at = snprintf(hdr, sizeof hdr,
                      "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[10,784],"
                      "\"data_offsets\":[0,31360]},\"fc1.bias\":{\"dtype\":\"F32\","
                      "\"shape\":[10],\"data_offsets\":[31360,31400]},"
                      "\"__metadata__\":{\"arch\":\"flatten, fc 10, logsoftmax\"}");
    for (int i = 0; i < DN_FILE_MAX_TENSORS + 1; i++)
        at += snprintf(hdr + at, sizeof hdr - (size_t)at,
                       ",\"e%d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                       i, 31400 + 4 * i, 31404 + 4 * i);
    snprintf(hdr + at, sizeof hdr - (size_t)at, "}");
    size_t dl = 31400 + 4 * (DN_FILE_MAX_TENSORS + 1);
    unsigned char *data = calloc(1, dl);
    assert_non_null(data);
    tmp(path, "nine-extras.safetensors");
    write_st(path, hdr, ~(uint64_t)0, data, dl);
    free(data);
    dn_error err = {0};
    dn_file_extras z;
    assert_null(dn_model_load(path, &z, &err));
    assert_non_null(strstr(err.msg, "more than 8 tensors besides the parameters"));
    assert_int_equal(z.n_tensors, 0);
    l = load_ok(path, NULL);
    assert_int_equal(l->n_params, m->n_params);
    dn_model_free(l);
    dn_model_free(m);
}

/* ------------------------------------------------------------------------ */
/* Saving that fails                                                        */
/* ------------------------------------------------------------------------ */

static void expect_save_fails(const dn_model *m, const char *path, const dn_file_extras *x,
                              dn_status want, const char *phrase)
{
    dn_error err = {0};
    dn_status st = dn_model_save(m, path, x, &err);
    if (st != want || err.status != want || strncmp(err.msg, path, strlen(path)) != 0 ||
        !strstr(err.msg, phrase))
        fail_msg("save to %s: wanted %s mentioning \"%s\", got %s: \"%s\"", path,
                 dn_status_str(want), phrase, dn_status_str(st), err.msg);
    if (getenv("DN_TEST_VERBOSE"))
        print_message("save refused: %s\n", err.msg);
}

static void test_save_unwritable(void **state)
{
    (void)state;
    dn_model *m = new_model(NULL, 6);
    expect_save_fails(m, "/nonexistent-dir-for-digitnet/m.safetensors", NULL, DN_ERR_IO,
                      "cannot create a temporary file");
    char file[512], path[600];
    tmp(file, "plain-file");
    t_write_file(file, "x", 1);
    snprintf(path, sizeof path, "%s/m.safetensors", file);
    expect_save_fails(m, path, NULL, DN_ERR_IO, "Not a directory");
    /* A directory in the way: the rename fails and the temp file goes. */
    tmp(path, "a-directory");
    assert_int_equal(mkdir(path, 0755), 0);
    char inside[700];
    snprintf(inside, sizeof inside, "%s/keep", path);
    t_write_file(inside, "k", 1);
    expect_save_fails(m, path, NULL, DN_ERR_IO, "cannot rename");
    assert_int_equal(count_tmp_files(t_tmpdir()), 0);
    dn_model_free(m);
}

/* A save that fails part-way (the disk "fills up") leaves the old file as it
 * was and no temporary file behind. */
static void test_failed_save_keeps_old_file(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "keep.safetensors");
    dn_model *old = new_model(NULL, 7);
    save_ok(old, path, NULL);
    size_t before_size;
    char *before = t_read_file(path, &before_size);
    assert_non_null(before);

    dn_model *m = new_model(NULL, 8);
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 64 * 1024; /* the file needs ~217 KB */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    dn_error err = {0};
    dn_status st = dn_model_save(m, path, NULL, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, DN_ERR_IO);
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
    assert_non_null(strstr(err.msg, "cannot write"));

    size_t after_size;
    char *after = t_read_file(path, &after_size);
    assert_non_null(after);
    assert_int_equal(after_size, before_size);
    assert_memory_equal(after, before, before_size);
    assert_int_equal(count_tmp_files(t_tmpdir()), 0);
    /* The old file still loads as the old model. */
    dn_model *l = load_ok(path, NULL);
    assert_memory_equal(l->params, old->params, old->n_params * sizeof(float));
    dn_model_free(l);
    free(before);
    free(after);
    dn_model_free(m);
    dn_model_free(old);
}

static void test_save_bad_arguments(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "bad-extras.safetensors");
    dn_model *m = new_model(NULL, 10);
    dn_file_extras x;
    float v = 1;
    memset(&x, 0, sizeof x);
    x.n_tensors = 1;
    x.tensors[0].data = &v;
    x.tensors[0].len = 1;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "fc1.weight");
    expect_save_fails(m, path, &x, DN_ERR_ARG, "has the name of a model parameter");
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "__metadata__");
    expect_save_fails(m, path, &x, DN_ERR_ARG, "reserved name");
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "ok");
    x.tensors[0].data = NULL;
    expect_save_fails(m, path, &x, DN_ERR_ARG, "has no data");
    x.tensors[0].data = &v;
    x.n_tensors = DN_FILE_MAX_TENSORS + 1;
    expect_save_fails(m, path, &x, DN_ERR_ARG, "expected 0..8");
    x.n_tensors = 2;
    x.tensors[1] = x.tensors[0];
    expect_save_fails(m, path, &x, DN_ERR_ARG, "appears twice");
    snprintf(x.tensors[1].name, sizeof x.tensors[1].name, "bad\xc3");
    expect_save_fails(m, path, &x, DN_ERR_ARG, "extra tensor 1: name is not valid UTF-8");
    x.n_tensors = 0;
    x.n_meta = 1;
    snprintf(x.meta[0].key, sizeof x.meta[0].key, "arch");
    snprintf(x.meta[0].value, sizeof x.meta[0].value, "fc 10");
    expect_save_fails(m, path, &x, DN_ERR_ARG, "reserved for the model");
    snprintf(x.meta[0].key, sizeof x.meta[0].key, "note");
    snprintf(x.meta[0].value, sizeof x.meta[0].value, "\xff not utf-8");
    expect_save_fails(m, path, &x, DN_ERR_ARG, "extras metadata 0: key or value is not valid UTF-8");
    /* A model whose file would not load back is not written. */
    m->std = 0;
    expect_save_fails(m, path, NULL, DN_ERR_ARG, "would not load back");
    m->std = 1;
    m->dataset[0] = 0;
    expect_save_fails(m, path, NULL, DN_ERR_ARG, "would not load back");
    /* Nothing was written by any of these. */
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(count_tmp_files(t_tmpdir()), 0);
    dn_model_free(m);
}

/* Removes dir and what is in it (this process's private temporary
 * directory: ~1 MB of model files per run); DN_TEST_KEEP=1 keeps it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    const char *keep = getenv("DN_TEST_KEEP");
    if (!keep || strcmp(keep, "1") != 0)
        remove_tree(t_tmpdir());
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Hostile files that would cost memory or time, and non-finite values      */
/* ------------------------------------------------------------------------ */

/* For t_in_child: the status of loading the model file arg. */
static int child_load(void *arg, char *msg, size_t size)
{
    dn_error err = {0};
    dn_file_extras x;
    dn_model *m = dn_model_load(arg, &x, &err);
    dn_status st = m ? DN_OK : err.status;
    dn_model_free(m);
    dn_file_extras_free(&x);
    snprintf(msg, size, "%s", err.msg);
    return (int)st;
}

static void expect_cheap_refusal(const char *path, dn_status want, const char *phrase)
{
    char msg[512];
    long grew = 0;
    int rc = t_in_child(child_load, (void *)path, 20, &grew, msg, sizeof msg);
    if (rc != (int)want || strncmp(msg, path, strlen(path)) != 0 || !strstr(msg, phrase))
        fail_msg("%s: wanted %s mentioning '%s', got %d: %s", path, dn_status_str(want),
                 phrase, rc, msg);
    /* A few MB at most; the network these files claim needs hundreds. */
    if (grew > 16 * 1024)
        fail_msg("%s: refusing took %ld KB of memory: %s", path, grew, msg);
    if (getenv("DN_TEST_VERBOSE"))
        print_message("refused with %ld KB: %s\n", grew, msg);
}

/* A tiny file whose metadata describes a huge network must be refused
 * from the sizes alone, before the network is built. */
static void test_small_file_huge_spec(void **state)
{
    (void)state;
    char path[512];
    /* The file is "flatten, fc 32767" on 1x256x256 (8.6 GB); this
     * one needs 1000 x 65536 floats (262 MB), which building the model
     * first would allocate and fill. */
    tmp(path, "huge-spec.safetensors");
    write_st(path, "{\"__metadata__\":{\"arch\":\"flatten, fc 1000\",\"input\":\"1x256x256\"}}",
             ~(uint64_t)0, NULL, 0);
    expect_cheap_refusal(path, DN_ERR_FORMAT, "needs 65537000 parameters");
    tmp(path, "issue-80-bytes.safetensors");
    write_st(path, "{\"__metadata__\":{\"arch\":\"flatten, fc 32767\",\"input\":\"1x256x256\"}}",
             ~(uint64_t)0, NULL, 0);
    expect_cheap_refusal(path, DN_ERR_FORMAT, "but the data section holds 0 bytes");

    /* Enough bytes for the count but not the right tensors: refused by
     * name before the parameters are allocated. */
    static float data[1000 * 16 + 1000];
    char hdr[512];
    snprintf(hdr, sizeof hdr, "{\"x\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":"
             "[0,%zu]},\"__metadata__\":{\"arch\":\"flatten, fc 1000\",\"input\":\"1x4x4\"}}",
             sizeof data / 4, sizeof data);
    tmp(path, "wrong-names.safetensors");
    write_st(path, hdr, ~(uint64_t)0, data, sizeof data);
    expect_cheap_refusal(path, DN_ERR_FORMAT, "no tensor 'fc1.weight'");
}

static void test_fifo_refused(void **state)
{
    (void)state;
    char path[512];
    tmp(path, "model.fifo");
    if (mkfifo(path, 0600) != 0)
        fail_msg("mkfifo %s failed", path);
    expect_cheap_refusal(path, DN_ERR_IO, "is a FIFO (named pipe), not a regular file");
    expect_cheap_refusal("/dev/null", DN_ERR_IO, "is a device, not a regular file");
}

/* Writes a copy of src with one float of tensor `name` (element k) set to
 * v, the checksum metadata renamed so that only the value is wrong. */
static void poison(const char *src, const char *dst, const char *name, size_t k, float v)
{
    char *h;
    unsigned char *d;
    size_t dl;
    split_file(src, &h, &d, &dl);
    char key[96];
    snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\"", name);
    char *at = strstr(h, key);
    if (!at)
        fail_msg("no tensor %s in %s", name, src);
    char *offs = strstr(at, "\"data_offsets\":[");
    assert_non_null(offs);
    size_t begin = strtoull(offs + strlen("\"data_offsets\":["), NULL, 10);
    assert_true(begin + 4 * k + 4 <= dl);
    memcpy(d + begin + 4 * k, &v, 4);
    char *sum = strstr(h, "\"checksum\":");
    if (sum)
        memcpy(sum, "\"checksun\":", strlen("\"checksun\":"));
    write_st(dst, h, ~(uint64_t)0, d, dl);
    free(h);
    free(d);
}

static void test_nonfinite_refused(void **state)
{
    (void)state;
    char good[512], path[512];
    tmp(good, "finite.safetensors");
    dn_model *m = new_model(NULL, 8);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float sq[10] = {0};
    x.n_tensors = 1;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "optim.square_avg");
    x.tensors[0].data = sq;
    x.tensors[0].len = 10;
    save_ok(m, good, &x);

    /* Loading: a NaN or an infinity in a parameter, and NaN in a
     * checkpoint's optimizer state, each named. */
    tmp(path, "nan-param.safetensors");
    poison(good, path, "fc2.bias", 3, NAN);
    expect_refused(path, "tensor 'fc2.bias': element 3 of 10 is NaN (1 non-finite values)");
    tmp(path, "inf-param.safetensors");
    poison(good, path, "conv1.weight", 0, -INFINITY);
    expect_refused(path, "tensor 'conv1.weight': element 0 of 72 is -Inf");
    tmp(path, "nan-optim.safetensors");
    poison(good, path, "optim.square_avg", 9, NAN);
    expect_refused(path, "tensor 'optim.square_avg': element 9 of 10 is NaN");
    dn_error err = {0};
    assert_null(dn_model_load(path, NULL, &err));
    assert_int_equal(err.status, DN_ERR_NUMERIC);

    /* Saving: refused, and the file already there is left as it was. */
    size_t before_size, after_size;
    char *before = t_read_file(good, &before_size);
    assert_non_null(before);
    m->params[m->layers[0].w_off + 5] = NAN;
    m->params[m->n_params - 1] = INFINITY;
    expect_save_fails(m, good, &x, DN_ERR_NUMERIC,
                      "tensor 'conv1.weight': element 5 of 72 is NaN (1 non-finite values)");
    m->params[m->layers[0].w_off + 5] = 0;
    expect_save_fails(m, good, NULL, DN_ERR_NUMERIC, "tensor 'fc2.bias': element 9 of 10 is +Inf");
    m->params[m->n_params - 1] = 0;
    sq[4] = NAN;
    expect_save_fails(m, good, &x, DN_ERR_NUMERIC, "tensor 'optim.square_avg': element 4");
    char *after = t_read_file(good, &after_size);
    assert_non_null(after);
    assert_int_equal(before_size, after_size);
    assert_memory_equal(before, after, before_size);
    free(before);
    free(after);
    dn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_bit_identical),
        cmocka_unit_test(test_roundtrip_other_arch),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_torch_fixture_logprobs),
        cmocka_unit_test(test_torch_reads_our_file),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_hostile_model),
        cmocka_unit_test(test_too_many_extras),
        cmocka_unit_test(test_extras_save_would_refuse),
        cmocka_unit_test(test_save_unwritable),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_save_bad_arguments),
        cmocka_unit_test(test_small_file_huge_spec),
        cmocka_unit_test(test_fifo_refused),
        cmocka_unit_test(test_nonfinite_refused),
    };
    return cmocka_run_group_tests_name("modelfile", tests, NULL, teardown_tmpdir);
}
