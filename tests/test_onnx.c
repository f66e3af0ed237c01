/*
 * test_onnx.c - ONNX export: the protobuf wire format against hand-encoded
 * bytes, the exported graph read back field by field, atomic saves, the
 * `export` command, Debian python3-onnx's checker (full_check) on several
 * specs, and ONNX Runtime (npm onnxruntime-node, installed by
 * scripts/install-node-deps) against digitnet on 1,000 MNIST test images
 * for the lecture's model and a model with a stride-2 convolution and a
 * padded max-pool.
 */
#include "runtimes.h"
#include "protobuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LECTURE_MODEL "tests/fixtures/mnist-model.safetensors"
/* Wider convolutions, a stride-2 convolution, a padded 3x3 max-pool with
 * stride 2, a pool whose input does not divide (7 -> 3) and a dropout. */
#define OTHER_SPEC                                                           \
    "conv 16 k5 p2 s2, relu, maxpool k3 s2 p1, conv 32 k3 p1, relu, "       \
    "maxpool 2, dropout2d 0.25, flatten, fc 32, relu, fc 10, logsoftmax"
#define N_IMAGES 1000
#define TOL 1e-4

static char out[1 << 16];

static const dn_shape mnist_input = {1, 28, 28};

static dn_model *new_model(const char *spec, dn_shape input)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(spec, input, 7, &err);
    if (!m)
        fail_msg("dn_model_new: %s", err.msg);
    return m;
}

static dn_model *load_model(const char *path)
{
    dn_error err = {0};
    dn_model *m = dn_model_load(path, NULL, &err);
    if (!m)
        fail_msg("dn_model_load: %s", err.msg);
    return m;
}

static void expect_bytes(const dn_pb *b, const char *hex)
{
    char got[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < b->len && n + 4 < sizeof got; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%02x", i ? " " : "", b->buf[i]);
    assert_false(b->oom);
    if (strcmp(got, hex))
        fail_msg("encoded '%s', expected '%s'", got, hex);
}

/* ------------------------------------------------------------------------ */
/* The wire format                                                          */
/* ------------------------------------------------------------------------ */

/* The examples of protobuf's encoding guide, and the edges of varints. */
static void test_wire_format(void **state)
{
    (void)state;
    dn_pb b = {0};
    static const struct {
        uint64_t v;
        const char *hex;
    } varints[] = {
        {0, "00"}, {1, "01"}, {127, "7f"}, {128, "80 01"}, {150, "96 01"}, {300, "ac 02"},
        {16384, "80 80 01"}, {UINT64_MAX, "ff ff ff ff ff ff ff ff ff 01"},
    };
    for (size_t i = 0; i < sizeof varints / sizeof varints[0]; i++) {
        b.len = 0;
        dn_pb_varint(&b, varints[i].v);
        expect_bytes(&b, varints[i].hex);
    }
    b.len = 0;
    dn_pb_int(&b, 1, 150); /* message Test1 { int32 a = 1; } a = 150 */
    expect_bytes(&b, "08 96 01");
    b.len = 0;
    dn_pb_int(&b, 1, -1); /* int64: ten bytes of two's complement */
    expect_bytes(&b, "08 ff ff ff ff ff ff ff ff ff 01");
    b.len = 0;
    dn_pb_string(&b, 2, "testing"); /* Test2 { string b = 2; } */
    expect_bytes(&b, "12 07 74 65 73 74 69 6e 67");
    b.len = 0;
    dn_pb_float(&b, 2, 1.0f);
    expect_bytes(&b, "15 00 00 80 3f");
    b.len = 0;
    dn_pb child = {0};
    dn_pb_int(&child, 1, 150); /* Test3 { Test1 c = 3; } */
    dn_pb_message(&b, 3, &child);
    expect_bytes(&b, "1a 03 08 96 01");
    b.len = 0;
    int64_t packed[3] = {3, 270, 86942}; /* Test4 { repeated int32 d = 4 [packed]; } */
    dn_pb_packed_ints(&b, 4, packed, 3);
    expect_bytes(&b, "22 06 03 8e 02 9e a7 05");
    b.len = 0;
    float fl[2] = {1.0f, -2.0f};
    dn_pb_float_bytes(&b, 9, fl, 2);
    expect_bytes(&b, "4a 08 00 00 80 3f 00 00 00 c0");
    b.len = 0;
    dn_pb_bytes(&b, 16, "", 0); /* a two-byte tag, an empty field */
    expect_bytes(&b, "82 01 00");
    /* A child that ran out of memory spoils its parent. */
    child.oom = 1;
    dn_pb_message(&b, 3, &child);
    assert_true(b.oom);
    dn_pb_free(&child);
    dn_pb_free(&b);
    assert_null(b.buf);
}

/* ------------------------------------------------------------------------ */
/* Reading the file back                                                    */
/* ------------------------------------------------------------------------ */

/* One field of a message: a varint / fixed32 value or a byte range. */
typedef struct pb_field {
    int num, wire;
    uint64_t v;
    const uint8_t *p;
    size_t len;
} pb_field;

typedef struct pb_msg {
    const uint8_t *p, *end;
} pb_msg;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return 1;
    }
    return 0;
}

/* The next field of m, or 0 at the end; fails the test on bad bytes. */
static int next_field(pb_msg *m, pb_field *f)
{
    if (m->p == m->end)
        return 0;
    uint64_t tag;
    assert_true(read_varint(&m->p, m->end, &tag));
    f->num = (int)(tag >> 3);
    f->wire = (int)(tag & 7);
    assert_true(f->num > 0);
    switch (f->wire) {
    case 0:
        assert_true(read_varint(&m->p, m->end, &f->v));
        break;
    case 2:
        assert_true(read_varint(&m->p, m->end, &f->v));
        assert_true(f->v <= (uint64_t)(m->end - m->p));
        f->p = m->p;
        f->len = (size_t)f->v;
        m->p += f->len;
        break;
    case 5:
        assert_true(m->end - m->p >= 4);
        f->v = (uint64_t)m->p[0] | (uint64_t)m->p[1] << 8 | (uint64_t)m->p[2] << 16 |
               (uint64_t)m->p[3] << 24;
        m->p += 4;
        break;
    default:
        fail_msg("wire type %d, which the writer never uses", f->wire);
    }
    return 1;
}

/* The k-th (0-based) field number num of the message at p, len. */
static int find_field(const uint8_t *p, size_t len, int num, int k, pb_field *f)
{
    pb_msg m = {p, p + len};
    while (next_field(&m, f))
        if (f->num == num && k-- == 0)
            return 1;
    return 0;
}

static int count_fields(const uint8_t *p, size_t len, int num)
{
    pb_field f;
    int n = 0;
    while (find_field(p, len, num, n, &f))
        n++;
    return n;
}

/* The string field num of a message, copied into buf. */
static const char *get_string(const pb_field *msg, int num, char *buf, size_t size)
{
    pb_field f;
    if (!find_field(msg->p, msg->len, num, 0, &f))
        return NULL;
    assert_int_equal(f.wire, 2);
    snprintf(buf, size, "%.*s", (int)f.len, (const char *)f.p);
    return buf;
}

static const char *metadata_get(const uint8_t *file, size_t size, const char *key, char *buf,
                                size_t bsize)
{
    pb_field e;
    char k[128];
    for (int i = 0; find_field(file, size, 14, i, &e); i++)
        if (get_string(&e, 1, k, sizeof k) && !strcmp(k, key))
            return get_string(&e, 2, buf, bsize);
    return NULL;
}

/* The dims of a ValueInfoProto's tensor type as text, "batch,1,28,28". */
static void value_dims(const pb_field *vi, char *buf, size_t size)
{
    pb_field type, tensor, shape, dim, d;
    buf[0] = 0;
    assert_true(find_field(vi->p, vi->len, 2, 0, &type));
    assert_true(find_field(type.p, type.len, 1, 0, &tensor));
    assert_true(find_field(tensor.p, tensor.len, 1, 0, &d));
    assert_int_equal(d.v, 1); /* FLOAT */
    assert_true(find_field(tensor.p, tensor.len, 2, 0, &shape));
    for (int i = 0; find_field(shape.p, shape.len, 1, i, &dim); i++) {
        size_t n = strlen(buf);
        pb_msg m = {dim.p, dim.p + dim.len};
        assert_true(next_field(&m, &d));
        if (d.num == 1)
            snprintf(buf + n, size - n, "%s%llu", i ? "," : "", (unsigned long long)d.v);
        else
            snprintf(buf + n, size - n, "%s%.*s", i ? "," : "", (int)d.len, (const char *)d.p);
    }
}

static uint8_t *encode(const dn_model *m, size_t *size)
{
    uint8_t *buf = NULL;
    dn_error err = {0};
    if (dn_onnx_encode(m, &buf, size, &err) != DN_OK)
        fail_msg("dn_onnx_encode: %s", err.msg);
    return buf;
}

/* The lecture's model read back: header, opset, the eleven operators in
 * order with their attributes, the parameters bit for bit, the shapes and
 * the metadata. */
static void test_graph_read_back(void **state)
{
    (void)state;
    dn_model *m = load_model(LECTURE_MODEL);
    size_t size;
    uint8_t *file = encode(m, &size);
    char s[1200], t[256];
    pb_field f, graph, g;

    assert_true(find_field(file, size, 1, 0, &f));
    assert_int_equal(f.v, 7);
    assert_true(find_field(file, size, 8, 0, &f));
    assert_string_equal(get_string(&f, 1, s, sizeof s), "");
    assert_true(find_field(f.p, f.len, 2, 0, &g));
    assert_int_equal(g.v, 13);
    assert_int_equal(count_fields(file, size, 8), 1);
    assert_true(find_field(file, size, 2, 0, &f));
    assert_memory_equal(f.p, "digitnet", 8);

    assert_true(find_field(file, size, 7, 0, &graph));
    static const char *const ops[] = {"Conv",    "Relu", "MaxPool", "Conv",
                                      "Relu",    "MaxPool", "Flatten", "Gemm",
                                      "Relu",    "Gemm", "LogSoftmax"};
    assert_int_equal(count_fields(graph.p, graph.len, 1), 11);
    char prev[64] = "input";
    for (int i = 0; i < 11; i++) {
        pb_field node, attr;
        assert_true(find_field(graph.p, graph.len, 1, i, &node));
        assert_string_equal(get_string(&node, 4, s, sizeof s), ops[i]);
        /* Each node reads what the one before wrote. */
        assert_string_equal(get_string(&node, 1, s, sizeof s), prev);
        get_string(&node, 2, prev, sizeof prev);
        if (i == 3) { /* conv2: k5 p2 s1 */
            int64_t want_pads[4] = {2, 2, 2, 2};
            int seen = 0;
            for (int a = 0; find_field(node.p, node.len, 5, a, &attr); a++) {
                if (strcmp(get_string(&attr, 1, t, sizeof t), "pads"))
                    continue;
                seen = 1;
                assert_int_equal(count_fields(attr.p, attr.len, 8), 4);
                for (int j = 0; j < 4; j++) {
                    assert_true(find_field(attr.p, attr.len, 8, j, &f));
                    assert_int_equal(f.v, want_pads[j]);
                }
            }
            assert_true(seen);
            assert_int_equal(count_fields(node.p, node.len, 1), 3); /* X, W, B */
        }
    }
    assert_string_equal(prev, "log_probs");

    /* Initializers: the model's parameters bit for bit. */
    assert_int_equal(count_fields(graph.p, graph.len, 5), 8);
    for (int i = 0; i < 8; i++) {
        pb_field init, raw;
        assert_true(find_field(graph.p, graph.len, 5, i, &init));
        const dn_layer *L = &m->layers[dn_model_find(m, i < 4 ? (i < 2 ? "conv1" : "conv2")
                                                              : (i < 6 ? "fc1" : "fc2"))];
        snprintf(t, sizeof t, "%s.%s", L->name, i % 2 ? "bias" : "weight");
        assert_string_equal(get_string(&init, 8, s, sizeof s), t);
        assert_true(find_field(init.p, init.len, 9, 0, &raw));
        size_t n = i % 2 ? L->b_len : L->w_len;
        assert_int_equal(raw.len, 4 * n);
        assert_memory_equal(raw.p, m->params + (i % 2 ? L->b_off : L->w_off), 4 * n);
        assert_int_equal(count_fields(init.p, init.len, 1), i % 2 ? 1 : (i < 4 ? 4 : 2));
    }

    pb_field vi;
    assert_true(find_field(graph.p, graph.len, 11, 0, &vi));
    assert_string_equal(get_string(&vi, 1, s, sizeof s), "input");
    value_dims(&vi, s, sizeof s);
    assert_string_equal(s, "batch,1,28,28");
    assert_true(find_field(graph.p, graph.len, 12, 0, &vi));
    value_dims(&vi, s, sizeof s);
    assert_string_equal(s, "batch,10");
    /* Every intermediate tensor has its shape: pool2 is 16x7x7. */
    assert_int_equal(count_fields(graph.p, graph.len, 13), 10);
    assert_true(find_field(graph.p, graph.len, 13, 5, &vi));
    assert_string_equal(get_string(&vi, 1, t, sizeof t), "pool2");
    value_dims(&vi, s, sizeof s);
    assert_string_equal(s, "batch,16,7,7");

    assert_string_equal(metadata_get(file, size, "normalization.mean", s, sizeof s), "0.1307");
    assert_string_equal(metadata_get(file, size, "normalization.std", s, sizeof s), "0.3081");
    assert_string_equal(metadata_get(file, size, "classes", s, sizeof s), "0,1,2,3,4,5,6,7,8,9");
    assert_string_equal(metadata_get(file, size, "digitnet.arch", s, sizeof s), m->spec);
    assert_string_equal(metadata_get(file, size, "dataset", s, sizeof s), "mnist");
    assert_non_null(strstr(metadata_get(file, size, "preprocessing", s, sizeof s), "20x20"));
    free(file);
    dn_model_free(m);
}

/* Specs other than the lecture's: no logsoftmax (output "output"), only a
 * dropout (an Identity), another input shape and Fashion-MNIST's names. */
static void test_graph_variants(void **state)
{
    (void)state;
    char s[512];
    pb_field graph, vi, node;
    size_t size;

    dn_model *m = new_model("conv 4 k3, relu, flatten, fc 10", mnist_input);
    uint8_t *file = encode(m, &size);
    assert_true(find_field(file, size, 7, 0, &graph));
    assert_true(find_field(graph.p, graph.len, 12, 0, &vi));
    assert_string_equal(get_string(&vi, 1, s, sizeof s), "output");
    value_dims(&vi, s, sizeof s);
    assert_string_equal(s, "batch,10");
    assert_non_null(strstr(metadata_get(file, size, "output", s, sizeof s), "scores"));
    free(file);
    dn_model_free(m);

    m = new_model("dropout2d 0.3", mnist_input);
    file = encode(m, &size);
    assert_true(find_field(file, size, 7, 0, &graph));
    assert_int_equal(count_fields(graph.p, graph.len, 1), 1);
    assert_true(find_field(graph.p, graph.len, 1, 0, &node));
    assert_string_equal(get_string(&node, 4, s, sizeof s), "Identity");
    assert_int_equal(count_fields(graph.p, graph.len, 5), 0);
    free(file);
    dn_model_free(m);

    m = new_model("conv 6 k5, relu, maxpool 2, flatten, fc 10, logsoftmax",
                  (dn_shape){3, 32, 32});
    snprintf(m->dataset, sizeof m->dataset, "fashion");
    m->mean = DN_FASHION_MEAN;
    m->std = DN_FASHION_STD;
    file = encode(m, &size);
    assert_true(find_field(file, size, 7, 0, &graph));
    assert_true(find_field(graph.p, graph.len, 11, 0, &vi));
    value_dims(&vi, s, sizeof s);
    assert_string_equal(s, "batch,3,32,32");
    assert_string_equal(metadata_get(file, size, "digitnet.input", s, sizeof s), "3x32x32");
    assert_string_equal(metadata_get(file, size, "normalization.mean", s, sizeof s), "0.286");
    assert_non_null(strstr(metadata_get(file, size, "classes", s, sizeof s),
                           ",Sandal,Shirt,Sneaker,"));
    free(file);
    dn_model_free(m);

    dn_error err = {0};
    uint8_t *buf = (uint8_t *)1;
    assert_int_equal(dn_onnx_encode(NULL, &buf, &size, &err), DN_ERR_ARG);
    assert_null(buf);
    assert_int_equal(size, 0);
}

/* ------------------------------------------------------------------------ */
/* Saving and the command                                                   */
/* ------------------------------------------------------------------------ */

static void test_save(void **state)
{
    (void)state;
    char path[512], bad[600];
    dn_error err = {0};
    dn_model *m = new_model(NULL, mnist_input);
    t_tmppath(path, sizeof path, "save.onnx");
    t_write_file(path, "old", 3);
    assert_int_equal(dn_onnx_save(m, path, &err), DN_OK);
    size_t size, want;
    char *got = t_read_file(path, &size);
    uint8_t *enc = encode(m, &want);
    assert_int_equal(size, want);
    assert_memory_equal(got, enc, size);
    free(got);
    free(enc);

    snprintf(bad, sizeof bad, "%s/no/such/dir/m.onnx", t_tmpdir());
    assert_int_equal(dn_onnx_save(m, bad, &err), DN_ERR_IO);
    assert_non_null(strstr(err.msg, bad));
    assert_null(strchr(err.msg, '\n'));
    dn_model_free(m);
}

static void test_cli_export(void **state)
{
    (void)state;
    char path[512];
    t_tmppath(path, sizeof path, "cli.onnx");
    int rc = t_run(out, sizeof out, "export --model %s --onnx '%s'", LECTURE_MODEL, path);
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    assert_non_null(strstr(out, "wrote "));
    assert_non_null(strstr(out, "opset 13"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 54186 * 4);

    assert_int_equal(t_run(out, sizeof out, "export --model %s", LECTURE_MODEL), 2);
    assert_non_null(strstr(out, "--onnx"));
    assert_int_equal(t_run(out, sizeof out, "export --onnx x.onnx --bogus"), 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    assert_int_equal(t_run(out, sizeof out, "export --onnx x.onnx extra"), 2);
    assert_int_equal(t_run(out, sizeof out, "export --help"), 0);
    assert_non_null(strstr(out, "examples:"));
    /* A missing model: one line naming it, nothing written. */
    char missing[512], target[512];
    t_tmppath(missing, sizeof missing, "missing.safetensors");
    t_tmppath(target, sizeof target, "never.onnx");
    assert_int_equal(t_run(out, sizeof out, "export --model '%s' --onnx '%s'", missing, target),
                     1);
    assert_non_null(strstr(out, missing));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    assert_int_not_equal(stat(target, &st), 0);
}

/* ------------------------------------------------------------------------ */
/* Other runtimes                                                           */
/* ------------------------------------------------------------------------ */

static void export_file(const char *model, const char *onnx)
{
    int rc = t_run(out, sizeof out, "export --model '%s' --onnx '%s'", model, onnx);
    if (rc != 0)
        fail_msg("export %s: exit %d:\n%s", model, rc, out);
}

/* A short training run of OTHER_SPEC: enough for clear predictions. */
static void train_other(const char *path)
{
    int rc = t_run(out, sizeof out,
                   "train --arch '%s' --epochs 1 --limit 1000 --threads 2 --data '%s' "
                   "--out '%s'", OTHER_SPEC, t_mnist_dir(), path);
    if (rc != 0)
        fail_msg("train: exit %d:\n%s", rc, out);
}

/* python3-onnx's checker with full_check (strict shape inference) accepts
 * every exported file, and refuses a truncated one. */
static void test_onnx_checker(void **state)
{
    (void)state;
    if (t_sh(NULL, 0, "/usr/bin/python3 -c 'import onnx'") != 0)
        t_missing("/usr/bin/python3 cannot import onnx (Debian python3-onnx, installed by "
                  "scripts/install-deps)");
    static const struct {
        const char *spec;
        dn_shape in;
    } specs[] = {
        {NULL, {1, 28, 28}},
        {OTHER_SPEC, {1, 28, 28}},
        {"conv 4 k3 s3, relu, maxpool k3 s1 p1, flatten, fc 10", {1, 28, 28}},
        {"conv 6 k5, relu, maxpool 2, conv 12 k3 p1 s2, relu, flatten, fc 10, logsoftmax",
         {3, 32, 32}},
        {"dropout2d 0.3", {1, 28, 28}},
    };
    char files[4096] = "", path[512];
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dn_model *m = new_model(specs[i].spec, specs[i].in);
        char name[32];
        snprintf(name, sizeof name, "check%zu.onnx", i);
        t_tmppath(path, sizeof path, name);
        dn_error err = {0};
        if (dn_onnx_save(m, path, &err) != DN_OK)
            fail_msg("%s", err.msg);
        size_t n = strlen(files);
        snprintf(files + n, sizeof files - n, " '%s'", path);
        dn_model_free(m);
    }
    int rc = t_sh(out, sizeof out, "/usr/bin/python3 tools/onnx_check.py%s", files);
    print_message("%s", out);
    if (rc != 0)
        fail_msg("the checker refused an exported file (exit %d)", rc);

    /* The check can fail: a file cut short is refused. */
    size_t size;
    char *bytes = t_read_file(path, &size);
    assert_non_null(bytes);
    char cut[512];
    t_tmppath(cut, sizeof cut, "cut.onnx");
    t_write_file(cut, bytes, size - 7);
    free(bytes);
    assert_int_not_equal(t_sh(out, sizeof out, "/usr/bin/python3 tools/onnx_check.py '%s'", cut),
                         0);
}

/* ONNX Runtime gives digitnet's log-probabilities within TOL and the same
 * predictions on N_IMAGES test images; returns the largest difference. */
static double compare_ort(const char *model_path, const char *what)
{
    char onnx[512], in[512], res[512];
    t_tmppath(onnx, sizeof onnx, "ort.onnx");
    t_tmppath(in, sizeof in, "ort_in.f32");
    t_tmppath(res, sizeof res, "ort_out.f32");
    export_file(model_path, onnx);

    dn_model *m = load_model(model_path);
    uint8_t *px = t_mnist_pixels(N_IMAGES, NULL);
    float *x = t_normalise(px, N_IMAGES, m->mean, m->std);
    t_write_floats(in, x, (size_t)N_IMAGES * 784);
    int rc = t_sh(out, sizeof out, "node tools/node/ort_run.js '%s' '%s' %dx1x28x28 '%s'", onnx,
                  in, N_IMAGES, res);
    if (rc == 3 || rc == 127)
        t_missing("ONNX Runtime for node is not installed (scripts/install-node-deps puts "
                  "onnxruntime-node in tools/node/node_modules)");
    if (rc != 0)
        fail_msg("ort_run: exit %d: %s", rc, out);
    float *ort = t_read_floats(res, (size_t)N_IMAGES * 10);

    /* digitnet through the C API, a batch of 100 at a time. */
    float *ref = malloc((size_t)N_IMAGES * 10 * sizeof *ref);
    dn_work *w = dn_work_new(m, 100);
    assert_non_null(ref);
    assert_non_null(w);
    for (int b = 0; b < N_IMAGES; b += 100) {
        const float *lp = dn_model_forward(m, w, x + (size_t)b * 784, 100, DN_MODE_EVAL, NULL);
        assert_non_null(lp);
        memcpy(ref + (size_t)b * 10, lp, 1000 * sizeof *lp);
    }
    double worst = t_compare_logp(what, ref, ort, N_IMAGES, 10, TOL);
    dn_work_free(w);
    free(ref);
    free(ort);
    free(x);
    free(px);
    dn_model_free(m);
    return worst;
}

static void test_ort_lecture(void **state)
{
    (void)state;
    compare_ort(LECTURE_MODEL, "ONNX Runtime vs digitnet, lecture model");
}

static void test_ort_other_spec(void **state)
{
    (void)state;
    char path[512];
    t_tmppath(path, sizeof path, "other.safetensors");
    t_need_mnist();
    train_other(path);
    compare_ort(path, "ONNX Runtime vs digitnet, " OTHER_SPEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_graph_read_back),
        cmocka_unit_test(test_graph_variants),
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_cli_export),
        cmocka_unit_test(test_onnx_checker),
        cmocka_unit_test(test_ort_lecture),
        cmocka_unit_test(test_ort_other_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
