/*
 * spec.c - the textual model spec: parsing, shape inference, parameter
 * layout and the canonical spec text.
 *
 * A spec is a comma-separated list of layers, e.g. DN_DEFAULT_SPEC:
 *   conv O [kK] [pP] [sS]   Conv2d to O channels (k3 p0 s1 by default)
 *   relu
 *   maxpool N               k=N stride=N pad=0, or maxpool kK [sS] [pP]
 *                           (stride defaults to k, as in PyTorch)
 *   dropout2d [P]           Dropout2d, P = 0.5 by default
 *   flatten
 *   fc N                    Linear to N features (after flatten)
 *   logsoftmax              log_softmax over the features; last layer only
 * Whitespace around words and commas is free. Layers are named as the
 * PyTorch module would name them (conv1, fc2, ...) so that parameter names
 * are the state_dict keys of CNN_MNIST.
 */
#include "model.h"
#include "internal.h"
#include "layers/layers.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM 65536
#define MAX_ITEM 96

/* What an option left out of a spec means: conv k3 p0 s1 (PyTorch's
 * padding and stride; the lecture's first kernel), dropout2d 0.5
 * (PyTorch's p). maxpool's stride defaults to its kernel, set apart. */
#define DEFAULT_KERNEL 3
#define DEFAULT_PAD 0
#define DEFAULT_STRIDE 1
#define DEFAULT_DROPOUT 0.5f

/* What the parser keeps while it walks the list, for error messages. */
typedef struct spec_item {
    int index;              /* 1-based position in the list */
    char text[MAX_ITEM];    /* the item, whitespace collapsed */
} spec_item;

static const char *shape_str(char *buf, size_t size, dn_shape s, int flat)
{
    if (flat)
        snprintf(buf, size, "%d", s.c);
    else
        snprintf(buf, size, "%dx%dx%d", s.c, s.h, s.w);
    return buf;
}

/* Strict integer: digits only, within [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_prob(const char *s, float *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0.0 || v > 1.0)
        return -1;
    *out = (float)v;
    return 0;
}

static dn_status item_fail(dn_error *err, dn_status st, const spec_item *it,
                           const char *what)
{
    return dn_fail(err, st, "layer %d '%s': %s", it->index, it->text, what);
}

/* Splits the item into words (in place, at most 8). */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    for (char *p = s;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == max)
            return -1;
        words[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = 0;
    }
    return n;
}

/* Parses "conv", "maxpool", "dropout2d" and "fc" options after the word:
 * one positional number and letter-prefixed integers kN pN sN, each at
 * most once. Fills the layer, leaving absent values at their defaults. */
static dn_status parse_options(dn_layer *L, char **words, int n,
                               const spec_item *it, dn_error *err)
{
    int seen_pos = 0, seen_k = 0, seen_p = 0, seen_s = 0;
    char msg[160];
    for (int i = 1; i < n; i++) {
        const char *w = words[i];
        int v;
        if (isdigit((unsigned char)w[0]) || w[0] == '.') {
            if (seen_pos++)
                return item_fail(err, DN_ERR_ARG, it, "more than one plain number");
            if (L->kind == DN_DROPOUT2D) {
                if (parse_prob(w, &L->p) < 0) {
                    snprintf(msg, sizeof msg,
                             "bad probability '%s' (expected a number in [0, 1])", w);
                    return item_fail(err, DN_ERR_ARG, it, msg);
                }
                continue;
            }
            if (parse_int(w, 1, MAX_DIM, &v) < 0) {
                snprintf(msg, sizeof msg, "bad number '%s' (expected an integer in 1..%d)", w,
                         MAX_DIM);
                return item_fail(err, DN_ERR_ARG, it, msg);
            }
            if (L->kind == DN_MAXPOOL) {
                L->k = v;
                if (!seen_s)
                    L->stride = v;
            } else {
                L->out_ch = v;
            }
            continue;
        }
        int *dst = NULL, *seen = NULL, lo = 1;
        if (L->kind == DN_CONV || L->kind == DN_MAXPOOL) {
            if (w[0] == 'k')
                dst = &L->k, seen = &seen_k;
            else if (w[0] == 's')
                dst = &L->stride, seen = &seen_s;
            else if (w[0] == 'p')
                dst = &L->pad, seen = &seen_p, lo = 0;
        }
        if (!dst) {
            snprintf(msg, sizeof msg, "unknown option '%s'", w);
            return item_fail(err, DN_ERR_ARG, it, msg);
        }
        if ((*seen)++) {
            snprintf(msg, sizeof msg, "option '%c' given twice", w[0]);
            return item_fail(err, DN_ERR_ARG, it, msg);
        }
        if (parse_int(w + 1, lo, 1024, &v) < 0) {
            snprintf(msg, sizeof msg, "bad number in '%s' (expected %c followed by %d..1024)",
                     w, w[0], lo);
            return item_fail(err, DN_ERR_ARG, it, msg);
        }
        *dst = v;
        /* "maxpool k3" pools with stride 3 unless told otherwise. */
        if (L->kind == DN_MAXPOOL && dst == &L->k && !seen_s && !seen_pos)
            L->stride = v;
    }
    if (L->kind == DN_MAXPOOL && seen_pos && seen_k)
        return item_fail(err, DN_ERR_ARG, it, "give the window either as 'maxpool N' or as 'kN'");
    if ((L->kind == DN_CONV || L->kind == DN_FC) && !seen_pos)
        return item_fail(err, DN_ERR_ARG, it,
                         L->kind == DN_CONV ? "missing the number of output channels"
                                            : "missing the number of output features");
    if (L->kind == DN_MAXPOOL && !seen_pos && !seen_k)
        return item_fail(err, DN_ERR_ARG, it, "missing the window size ('maxpool 2' or 'k2')");
    return DN_OK;
}

/* Appends the canonical text of L to buf. */
static int canonical(char *buf, size_t size, const dn_layer *L)
{
    size_t len = strlen(buf);
    const char *sep = len ? ", " : "";
    char *p = buf + len;
    size_t room = size - len;
    int n = 0;
    switch (L->kind) {
    case DN_CONV:
        n = snprintf(p, room, "%sconv %d k%d p%d s%d", sep, L->out_ch, L->k, L->pad, L->stride);
        break;
    case DN_RELU:
        n = snprintf(p, room, "%srelu", sep);
        break;
    case DN_MAXPOOL:
        if (L->stride == L->k && L->pad == 0)
            n = snprintf(p, room, "%smaxpool %d", sep, L->k);
        else
            n = snprintf(p, room, "%smaxpool k%d s%d p%d", sep, L->k, L->stride, L->pad);
        break;
    case DN_DROPOUT2D: {
        /* The shortest text that reads back as the same float: "%g" would
         * turn 0.1111111111 into 0.111111, another dropout rate once the
         * spec is saved in a model file and read back. */
        char num[32];
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(num, sizeof num, "%.*g", digits, (double)L->p);
            if ((float)strtod(num, NULL) == L->p)
                break;
        }
        n = snprintf(p, room, "%sdropout2d %s", sep, num);
        break;
    }
    case DN_FLATTEN:
        n = snprintf(p, room, "%sflatten", sep);
        break;
    case DN_FC:
        n = snprintf(p, room, "%sfc %d", sep, L->out_ch);
        break;
    case DN_LOGSOFTMAX:
        n = snprintf(p, room, "%slogsoftmax", sep);
        break;
    }
    return n >= 0 && (size_t)n < room ? 0 : -1;
}

static int64_t numel(dn_shape s)
{
    return (int64_t)s.c * s.h * s.w;
}

/* Shape inference for one layer: fills L->in (given), L->out, names,
 * parameter lengths and macs. */
static dn_status infer(dn_layer *L, int *flat, int is_last, const spec_item *it,
                       dn_error *err)
{
    char a[48], b[48], msg[200];
    dn_shape in = L->in;
    int64_t n_in = numel(in);
    L->out = in;
    switch (L->kind) {
    case DN_CONV:
    case DN_MAXPOOL:
    case DN_DROPOUT2D:
        if (*flat) {
            snprintf(msg, sizeof msg, "needs an image (CxHxW) input but gets the flat %s",
                     shape_str(a, sizeof a, in, 1));
            return item_fail(err, DN_ERR_SHAPE, it, msg);
        }
        if (L->kind == DN_DROPOUT2D)
            break;
        if (L->kind == DN_MAXPOOL && L->pad > L->k / 2) {
            snprintf(msg, sizeof msg, "padding %d is more than half the window %d", L->pad, L->k);
            return item_fail(err, DN_ERR_SHAPE, it, msg);
        }
        L->out.c = L->kind == DN_CONV ? L->out_ch : in.c;
        L->out.h = dn_window_out(in.h, L->k, L->pad, L->stride);
        L->out.w = dn_window_out(in.w, L->k, L->pad, L->stride);
        if (L->out.h <= 0 || L->out.w <= 0) {
            dn_shape z = L->out;
            z.h = z.h < 0 ? 0 : z.h;
            z.w = z.w < 0 ? 0 : z.w;
            snprintf(msg, sizeof msg, "input %s gives %s", shape_str(a, sizeof a, in, 0),
                     shape_str(b, sizeof b, z, 0));
            return item_fail(err, DN_ERR_SHAPE, it, msg);
        }
        if (L->kind == DN_CONV) {
            L->w_len = (size_t)L->out_ch * in.c * L->k * L->k;
            L->b_len = (size_t)L->out_ch;
            L->macs = (int64_t)L->out_ch * L->out.h * L->out.w * in.c * L->k * L->k;
        }
        break;
    case DN_RELU:
        break;
    case DN_FLATTEN:
        L->out = (dn_shape){(int)n_in, 1, 1};
        *flat = 1;
        break;
    case DN_FC:
        if (!*flat) {
            snprintf(msg, sizeof msg, "needs a flat input but gets %s: add 'flatten' before it",
                     shape_str(a, sizeof a, in, 0));
            return item_fail(err, DN_ERR_SHAPE, it, msg);
        }
        L->out = (dn_shape){L->out_ch, 1, 1};
        L->w_len = (size_t)L->out_ch * in.c;
        L->b_len = (size_t)L->out_ch;
        L->macs = (int64_t)L->out_ch * in.c;
        break;
    case DN_LOGSOFTMAX:
        if (!is_last)
            return item_fail(err, DN_ERR_SHAPE, it, "logsoftmax must be the last layer");
        if (!*flat) {
            snprintf(msg, sizeof msg, "needs a flat input but gets %s: add 'flatten' before it",
                     shape_str(a, sizeof a, in, 0));
            return item_fail(err, DN_ERR_SHAPE, it, msg);
        }
        break;
    }
    if (numel(L->out) > DN_MAX_TENSOR) {
        snprintf(msg, sizeof msg, "output %s is larger than %lld values per sample",
                 shape_str(a, sizeof a, L->out, *flat), (long long)DN_MAX_TENSOR);
        return item_fail(err, DN_ERR_SHAPE, it, msg);
    }
    return DN_OK;
}

static void name_layer(dn_layer *L, int counts[])
{
    static const char *const stem[] = {
        [DN_CONV] = "conv", [DN_RELU] = "relu", [DN_MAXPOOL] = "pool",
        [DN_DROPOUT2D] = "drop", [DN_FLATTEN] = "flatten", [DN_FC] = "fc",
        [DN_LOGSOFTMAX] = "logsoftmax",
    };
    int n = ++counts[L->kind];
    /* There is one flatten and one logsoftmax in any sensible net; they
     * keep the plain names PyTorch code would use. */
    if ((L->kind == DN_FLATTEN || L->kind == DN_LOGSOFTMAX) && n == 1)
        snprintf(L->name, sizeof L->name, "%s", stem[L->kind]);
    else
        snprintf(L->name, sizeof L->name, "%s%d", stem[L->kind], n);
}

/* The layer kinds by their word in a spec. */
static const struct {
    const char *word;
    dn_layer_kind kind;
    int takes_options;
} kinds[] = {
    {"conv", DN_CONV, 1},       {"relu", DN_RELU, 0},
    {"maxpool", DN_MAXPOOL, 1}, {"dropout2d", DN_DROPOUT2D, 1},
    {"flatten", DN_FLATTEN, 0}, {"fc", DN_FC, 1},
    {"logsoftmax", DN_LOGSOFTMAX, 0},
};

/* Item i (0-based) of the list starting at *p: its words (at most 8, in
 * raw, split in place) and its text for messages; *p moves past it. */
static dn_status read_item(const char **p, int i, char *raw, size_t size, char **words,
                           int *nw, spec_item *it, dn_error *err)
{
    const char *end = strchr(*p, ',');
    size_t len = end ? (size_t)(end - *p) : strlen(*p);
    *it = (spec_item){.index = i + 1};
    if (len >= size)
        return dn_fail(err, DN_ERR_ARG, "layer %d: text too long (%zu characters)", i + 1, len);
    memcpy(raw, *p, len);
    raw[len] = 0;
    *p = end ? end + 1 : *p + len;
    *nw = split_words(raw, words, 8);
    if (*nw < 0)
        return dn_fail(err, DN_ERR_ARG, "layer %d: too many words", i + 1);
    for (int j = 0; j < *nw; j++) {
        size_t tl = strlen(it->text);
        snprintf(it->text + tl, sizeof it->text - tl, "%s%s", j ? " " : "", words[j]);
    }
    if (*nw == 0)
        return dn_fail(err, DN_ERR_ARG, "layer %d: empty (two commas in a row, or a "
                                        "comma at an end?)", i + 1);
    return DN_OK;
}

/* The layer's kind and options from its words, with the defaults where an
 * option is absent; values that do not apply to the kind are zero. */
static dn_status parse_layer(dn_layer *L, char **words, int nw, const spec_item *it,
                             dn_error *err)
{
    int found = -1;
    for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
        if (!strcmp(words[0], kinds[j].word))
            found = (int)j;
    if (found < 0)
        return item_fail(err, DN_ERR_ARG, it,
                         "unknown layer (expected conv, relu, maxpool, dropout2d, flatten, "
                         "fc or logsoftmax)");
    L->kind = kinds[found].kind;
    L->k = DEFAULT_KERNEL;
    L->stride = DEFAULT_STRIDE;
    L->pad = DEFAULT_PAD;
    L->p = DEFAULT_DROPOUT;
    if (!kinds[found].takes_options && nw > 1)
        return item_fail(err, DN_ERR_ARG, it, "takes no options");
    dn_status st = parse_options(L, words, nw, it, err);
    if (st != DN_OK)
        return st;
    if (L->kind != DN_CONV && L->kind != DN_MAXPOOL)
        L->k = L->stride = 0;
    if (L->kind != DN_DROPOUT2D)
        L->p = 0.0f;
    return DN_OK;
}

dn_status dn_spec_build(dn_model *m, const char *spec, dn_shape input,
                        dn_error *err)
{
    if (!spec)
        spec = DN_DEFAULT_SPEC;
    if (input.c < 1 || input.h < 1 || input.w < 1 || input.c > MAX_DIM ||
        input.h > MAX_DIM || input.w > MAX_DIM || numel(input) > DN_MAX_TENSOR)
        return dn_fail(err, DN_ERR_ARG, "bad input shape %dx%dx%d", input.c, input.h, input.w);

    /* Count the items first so that "logsoftmax not last" can be told at
     * the logsoftmax itself. */
    int n_items = 1;
    for (const char *p = spec; *p; p++)
        n_items += *p == ',';
    if (n_items > DN_MAX_LAYERS)
        return dn_fail(err, DN_ERR_ARG, "spec has %d layers; at most %d are supported",
                       n_items, DN_MAX_LAYERS);

    memset(m->layers, 0, sizeof m->layers);
    m->n_layers = 0;
    m->input = input;
    m->spec[0] = 0;
    int counts[DN_LOGSOFTMAX + 1] = {0};
    int flat = 0;
    size_t offset = 0;
    const char *p = spec;
    for (int i = 0; i < n_items; i++) {
        char raw[MAX_ITEM], *words[8];
        int nw;
        spec_item it;
        dn_layer *L = &m->layers[i];
        dn_status st = read_item(&p, i, raw, sizeof raw, words, &nw, &it, err);
        if (!st)
            st = parse_layer(L, words, nw, &it, err);
        L->in = i ? m->layers[i - 1].out : input;
        if (!st)
            st = infer(L, &flat, i == n_items - 1, &it, err);
        if (st != DN_OK)
            return st;
        name_layer(L, counts);
        if (L->w_len) {
            L->w_off = offset;
            L->b_off = offset + L->w_len;
            offset += L->w_len + L->b_len;
            if (offset > ((size_t)1 << 31))
                return item_fail(err, DN_ERR_SHAPE, &it, "too many parameters");
        }
        if (canonical(m->spec, sizeof m->spec, L) < 0)
            return dn_fail(err, DN_ERR_ARG, "spec is too long");
        m->n_layers = i + 1;
    }
    m->n_params = offset;
    return DN_OK;
}

dn_status dn_model_check_classifier(const dn_model *m, int classes, dn_error *err)
{
    if (!m || m->n_layers < 1)
        return dn_fail(err, DN_ERR_ARG, "dn_model_check_classifier: no model");
    const dn_layer *last = &m->layers[m->n_layers - 1];
    int outputs = dn_model_classes(m);
    if (last->kind == DN_LOGSOFTMAX && outputs == classes)
        return DN_OK;
    /* The last item of the canonical spec, as the user would write it. */
    const char *tail = strrchr(m->spec, ',');
    tail = tail ? tail + 1 : m->spec;
    while (*tail == ' ')
        tail++;
    char fix[64];
    if (outputs == classes)
        snprintf(fix, sizeof fix, "add 'logsoftmax' at the end");
    else if (last->kind == DN_LOGSOFTMAX)
        snprintf(fix, sizeof fix, "make the last fc 'fc %d'", classes);
    else
        snprintf(fix, sizeof fix, "finish the spec with 'fc %d, logsoftmax'", classes);
    return dn_fail(err, DN_ERR_SHAPE, "the model ends in '%s' with %d outputs, but a "
                   "classifier of %d classes must end in %d log-probabilities: %s", tail,
                   outputs, classes, classes, fix);
}
