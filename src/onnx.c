/*
 * onnx.c - a model as an ONNX file, for inference in other runtimes.
 *
 * The file is an onnx.ModelProto (onnx/onnx.proto, which Debian's
 * python3-onnx ships) in protobuf's wire format, written by src/protobuf.c.
 * Each layer of the spec becomes one standard operator of the default
 * domain; Dropout2d, the identity at inference, is left out. The field
 * numbers below are onnx.proto's.
 */
#include "internal.h"
#include "protobuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* onnx.proto field numbers, message by message. */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3,
       MODEL_DOC = 6, MODEL_GRAPH = 7, MODEL_OPSET = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_DOC = 10,
       GRAPH_INPUT = 11, GRAPH_OUTPUT = 12, GRAPH_VALUE_INFO = 13 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4,
       NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { TENSOR_FLOAT = 1 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2 };
enum { TYPE_TENSOR = 1 };
enum { TYPE_TENSOR_ELEM = 1, TYPE_TENSOR_SHAPE = 2 };
enum { SHAPE_DIM = 1 };
enum { DIM_VALUE = 1, DIM_PARAM = 2 };

/* protobuf refuses messages of 2 GiB or more; keep clear of it. */
#define ONNX_MAX_BYTES ((size_t)2000 << 20)

/* The batch dimension's name: any batch size runs the same graph. */
#define BATCH_DIM "batch"

/* ------------------------------------------------------------------------ */
/* Pieces                                                                   */
/* ------------------------------------------------------------------------ */

static void attr_int(dn_pb *node, const char *name, int64_t v)
{
    dn_pb a = {0};
    dn_pb_string(&a, ATTR_NAME, name);
    dn_pb_int(&a, ATTR_I, v);
    dn_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INT);
    dn_pb_message(node, NODE_ATTRIBUTE, &a);
    dn_pb_free(&a);
}

static void attr_ints(dn_pb *node, const char *name, const int64_t *v, int n)
{
    dn_pb a = {0};
    dn_pb_string(&a, ATTR_NAME, name);
    /* repeated int64 in proto2 is unpacked unless declared packed; ONNX
     * readers accept either, but the unpacked form is what onnx writes. */
    for (int i = 0; i < n; i++)
        dn_pb_int(&a, ATTR_INTS, v[i]);
    dn_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INTS);
    dn_pb_message(node, NODE_ATTRIBUTE, &a);
    dn_pb_free(&a);
}

/* kernel_shape, pads and strides of a square window (Conv, MaxPool). */
static void attr_window(dn_pb *node, const dn_layer *L)
{
    int64_t k[2] = {L->k, L->k}, s[2] = {L->stride, L->stride};
    int64_t p[4] = {L->pad, L->pad, L->pad, L->pad}; /* begins, then ends */
    attr_ints(node, "kernel_shape", k, 2);
    attr_ints(node, "pads", p, 4);
    attr_ints(node, "strides", s, 2);
}

/* A float tensor's type with a symbolic batch first, then the sample's
 * shape: (batch, c, h, w), or (batch, n) for a flat one. */
static void value_info(dn_pb *graph, int field, const char *name, dn_shape s, int flat)
{
    dn_pb shape = {0}, tensor = {0}, type = {0}, vi = {0}, dim = {0};
    int64_t dims[3] = {s.c, s.h, s.w};
    dn_pb_string(&dim, DIM_PARAM, BATCH_DIM);
    dn_pb_message(&shape, SHAPE_DIM, &dim);
    for (int i = 0; i < (flat ? 1 : 3); i++) {
        dim.len = 0;
        dn_pb_int(&dim, DIM_VALUE, dims[i]);
        dn_pb_message(&shape, SHAPE_DIM, &dim);
    }
    dn_pb_int(&tensor, TYPE_TENSOR_ELEM, TENSOR_FLOAT);
    dn_pb_message(&tensor, TYPE_TENSOR_SHAPE, &shape);
    dn_pb_message(&type, TYPE_TENSOR, &tensor);
    dn_pb_string(&vi, VALUE_NAME, name);
    dn_pb_message(&vi, VALUE_TYPE, &type);
    dn_pb_message(graph, field, &vi);
    dn_pb_free(&dim);
    dn_pb_free(&shape);
    dn_pb_free(&tensor);
    dn_pb_free(&type);
    dn_pb_free(&vi);
}

static void initializer(dn_pb *graph, const char *name, const int64_t *dims, int ndim,
                        const float *data, size_t n)
{
    dn_pb t = {0};
    for (int i = 0; i < ndim; i++)
        dn_pb_int(&t, TENSOR_DIMS, dims[i]);
    dn_pb_int(&t, TENSOR_DATA_TYPE, TENSOR_FLOAT);
    dn_pb_string(&t, TENSOR_NAME, name);
    dn_pb_float_bytes(&t, TENSOR_RAW_DATA, data, n);
    dn_pb_message(graph, GRAPH_INITIALIZER, &t);
    dn_pb_free(&t);
}

/* "conv1.weight" (O, I, k, k) or (O, I) and "conv1.bias" (O): the names
 * of the safetensors file and of PyTorch's state_dict. */
static void layer_params(dn_pb *graph, const dn_model *m, const dn_layer *L, char *wname,
                         char *bname, size_t size)
{
    int64_t wd[4] = {L->out_ch, L->in.c, L->k, L->k}, bd[1] = {L->out_ch};
    snprintf(wname, size, "%s.weight", L->name);
    snprintf(bname, size, "%s.bias", L->name);
    initializer(graph, wname, wd, L->kind == DN_CONV ? 4 : 2, m->params + L->w_off, L->w_len);
    initializer(graph, bname, bd, 1, m->params + L->b_off, L->b_len);
}

/* The shortest decimal that reads back as v (0.1307, not 0.130700007). */
static void fmt_float(char *buf, size_t size, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

static void metadata(dn_pb *model, const char *key, const char *value)
{
    dn_pb e = {0};
    dn_pb_string(&e, ENTRY_KEY, key);
    dn_pb_string(&e, ENTRY_VALUE, value);
    dn_pb_message(model, MODEL_METADATA, &e);
    dn_pb_free(&e);
}

/* ------------------------------------------------------------------------ */
/* The graph                                                                */
/* ------------------------------------------------------------------------ */

/* One node per layer that computes something. in is the name of the
 * tensor the layer reads, out the name it writes. */
static void layer_node(dn_pb *graph, const dn_model *m, const dn_layer *L, const char *in,
                       const char *out)
{
    static const char *const op[] = {
        [DN_CONV] = "Conv", [DN_RELU] = "Relu", [DN_MAXPOOL] = "MaxPool",
        [DN_FLATTEN] = "Flatten", [DN_FC] = "Gemm", [DN_LOGSOFTMAX] = "LogSoftmax",
    };
    char wname[40], bname[40];
    dn_pb node = {0};
    if (L->kind == DN_CONV || L->kind == DN_FC)
        layer_params(graph, m, L, wname, bname, sizeof wname);
    dn_pb_string(&node, NODE_INPUT, in);
    if (L->kind == DN_CONV || L->kind == DN_FC) {
        dn_pb_string(&node, NODE_INPUT, wname);
        dn_pb_string(&node, NODE_INPUT, bname);
    }
    dn_pb_string(&node, NODE_OUTPUT, out);
    dn_pb_string(&node, NODE_NAME, L->name);
    dn_pb_string(&node, NODE_OP_TYPE, op[L->kind]);
    switch (L->kind) {
    case DN_CONV:
    case DN_MAXPOOL:
        /* MaxPool's padding never wins a window in ONNX, as in PyTorch and
         * src/layers/maxpool.c, where it is never read. */
        attr_window(&node, L);
        break;
    case DN_FLATTEN:
    case DN_LOGSOFTMAX:
        attr_int(&node, "axis", 1);
        break;
    case DN_FC:
        /* y = x W^T + b with W stored (O, I) as PyTorch's Linear. */
        attr_int(&node, "transB", 1);
        break;
    default:
        break;
    }
    dn_pb_message(graph, GRAPH_NODE, &node);
    dn_pb_free(&node);
}

static void build_graph(dn_pb *graph, const dn_model *m, const char *output)
{
    /* The last layer that computes something writes the graph's output. */
    int last = -1;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].kind != DN_DROPOUT2D)
            last = l;
    dn_pb_string(graph, GRAPH_NAME, "digitnet");
    const char *cur = "input";
    int flat = 0;
    for (int l = 0; l <= last; l++) {
        const dn_layer *L = &m->layers[l];
        if (L->kind == DN_DROPOUT2D)
            continue;
        const char *out = l == last ? output : L->name;
        layer_node(graph, m, L, cur, out);
        flat |= L->kind == DN_FLATTEN;
        if (l != last)
            value_info(graph, GRAPH_VALUE_INFO, out, L->out, flat);
        cur = L->name;
    }
    if (last < 0) {
        /* Only dropout: the network is the identity. */
        dn_pb node = {0};
        dn_pb_string(&node, NODE_INPUT, "input");
        dn_pb_string(&node, NODE_OUTPUT, output);
        dn_pb_string(&node, NODE_OP_TYPE, "Identity");
        dn_pb_message(graph, GRAPH_NODE, &node);
        dn_pb_free(&node);
    }
    dn_shape out_shape = m->layers[m->n_layers - 1].out;
    value_info(graph, GRAPH_INPUT, "input", m->input, 0);
    value_info(graph, GRAPH_OUTPUT, output, out_shape, flat);
}

/* What a runtime must do to an image before the graph sees it. */
static void add_metadata(dn_pb *model, const dn_model *m, const char *output)
{
    char v[1024], mean[32], std[32];
    fmt_float(mean, sizeof mean, m->mean);
    fmt_float(std, sizeof std, m->std);
    metadata(model, "digitnet.arch", m->spec);
    snprintf(v, sizeof v, "%dx%dx%d", m->input.c, m->input.h, m->input.w);
    metadata(model, "digitnet.input", v);
    metadata(model, "digitnet.version", DN_VERSION);
    metadata(model, "dataset", m->dataset);
    metadata(model, "normalization.mean", mean);
    metadata(model, "normalization.std", std);
    snprintf(v, sizeof v,
             "input = (pixel / 255 - %s) / %s, for pixels 0..255 with the %s white (255) "
             "on black (0), float32 NCHW",
             mean, std, strcmp(m->dataset, "mnist") ? "object" : "digit");
    metadata(model, "normalization", v);
    if (!strcmp(m->dataset, "mnist"))
        metadata(model, "preprocessing",
                 "as MNIST was made (digitnet predict does this to any picture): grey; the "
                 "background is the median of the border, inverted if light so that ink is "
                 "white on black; faint noise dropped; cropped to the ink's bounding box; "
                 "scaled to fit 20x20 keeping the aspect ratio; pasted into 28x28 with the "
                 "centre of mass on pixel (14, 14); then normalised as 'normalization' says");
    else
        metadata(model, "preprocessing",
                 "none beyond a resize to the input size: the images are taken as they are, "
                 "then normalised as 'normalization' says");
    const char *const *names = dn_class_names(m->dataset);
    if (names && dn_model_classes(m) == 10) {
        size_t len = 0;
        v[0] = 0;
        for (int c = 0; c < 10; c++)
            len += (size_t)snprintf(v + len, sizeof v - len, "%s%s", c ? "," : "", names[c]);
        metadata(model, "classes", v);
    }
    const dn_layer *L = &m->layers[m->n_layers - 1];
    snprintf(v, sizeof v, "%s: %s of the %d classes; the largest is the prediction", output,
             L->kind == DN_LOGSOFTMAX ? "log-probabilities" : "scores", dn_model_classes(m));
    metadata(model, "output", v);
}

/* ------------------------------------------------------------------------ */
/* Public                                                                   */
/* ------------------------------------------------------------------------ */

dn_status dn_onnx_encode(const dn_model *m, uint8_t **out, size_t *size, dn_error *err)
{
    if (out)
        *out = NULL;
    if (size)
        *size = 0;
    if (!m || !out || !size)
        return dn_fail(err, DN_ERR_ARG, "dn_onnx_encode: NULL argument");
    if (m->n_layers < 1)
        return dn_fail(err, DN_ERR_ARG, "dn_onnx_encode: the model has no layers");
    if (m->n_params > (ONNX_MAX_BYTES - (1 << 20)) / sizeof(float))
        return dn_fail(err, DN_ERR_ARG,
                       "the model's %zu parameters take more than the 2 GB an ONNX file may "
                       "hold",
                       m->n_params);
    const char *output =
        m->layers[m->n_layers - 1].kind == DN_LOGSOFTMAX ? "log_probs" : "output";

    dn_pb model = {0}, graph = {0}, opset = {0};
    dn_pb_int(&model, MODEL_IR_VERSION, DN_ONNX_IR_VERSION);
    dn_pb_string(&model, MODEL_PRODUCER_NAME, "digitnet");
    dn_pb_string(&model, MODEL_PRODUCER_VERSION, DN_VERSION);
    char doc[1200];
    snprintf(doc, sizeof doc, "digitnet model: %s", m->spec);
    dn_pb_string(&model, MODEL_DOC, doc);
    build_graph(&graph, m, output);
    dn_pb_message(&model, MODEL_GRAPH, &graph);
    dn_pb_string(&opset, OPSET_DOMAIN, "");
    dn_pb_int(&opset, OPSET_VERSION, DN_ONNX_OPSET);
    dn_pb_message(&model, MODEL_OPSET, &opset);
    add_metadata(&model, m, output);
    dn_pb_free(&graph);
    dn_pb_free(&opset);
    if (model.oom) {
        dn_pb_free(&model);
        return dn_fail(err, DN_ERR_NOMEM, "out of memory encoding the model as ONNX");
    }
    *out = model.buf;
    *size = model.len;
    return DN_OK;
}

dn_status dn_onnx_save(const dn_model *m, const char *path, dn_error *err)
{
    if (!path)
        return dn_fail(err, DN_ERR_ARG, "dn_onnx_save: NULL path");
    uint8_t *buf;
    size_t n;
    dn_status st = dn_onnx_encode(m, &buf, &n, err);
    if (st != DN_OK)
        return st;
    st = dn_file_write_atomic(path, buf, n, err);
    free(buf);
    return st;
}
