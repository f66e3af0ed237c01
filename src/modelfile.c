/*
 * modelfile.c - model files in safetensors: atomic saves, strict loads.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (padded
 * with spaces to a multiple of 8 so that the data stays aligned), then the
 * data section, every tensor a little-endian float32 run at the offsets the
 * header gives (relative to the start of the data section).
 *
 * A model file may come from anywhere, so loading runs in two stages:
 * st_parse checks the header against the file alone (JSON, dtypes, shapes,
 * offsets, that the tensors tile the data section exactly, the checksum)
 * and produces a table of tensors; st_match then builds the model the
 * metadata describes and takes each parameter from the table, checking its
 * shape. No number from the file is used before it has been checked, and
 * memory is bounded by the file size, which is itself bounded.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Limits. The default model's file is about 217 KB; these leave room for
 * far bigger specs and checkpoints while refusing what no model needs. The
 * header limit is the one the reference safetensors implementation uses. */
#define ST_MAX_FILE ((uint64_t)1 << 30)
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* jansson needs tens of bytes per value, so a 100 MB header of "[0,0,..."
 * could take gigabytes; a model file has a few hundred values. */
#define ST_MAX_VALUES 65536
#define ST_MAX_DIMS 8

/* Metadata keys the model itself uses; every other key is an extra. */
static const char *const standard_keys[] = {
    "format", "arch", "input", "mean", "std", "dataset", "checksum", "version",
};

/* One tensor of a parsed header. */
typedef struct st_tensor {
    const char *name;       /* owned by the JSON tree */
    int ndim;
    uint64_t dims[ST_MAX_DIMS];
    uint64_t nelem;
    uint64_t begin, end;    /* byte offsets in the data section */
    int used;               /* taken as a model parameter */
} st_tensor;

typedef struct st_file {
    const char *path;
    json_t *root;
    json_t *meta;           /* the "__metadata__" object or NULL */
    st_tensor *t;
    size_t n;
    uint8_t *data;          /* the data section */
    uint64_t data_len;
    uint64_t data_pos;      /* file offset of the data section */
} st_file;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Little-endian float32 whatever the host's byte order. */
static void put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

static float get_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

static uint32_t crc32_of(const uint8_t *p, uint64_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

/* A name from the file made safe to quote in a one-line message: printable
 * ASCII only, and short. */
static const char *safe_name(char *buf, size_t size, const char *s)
{
    size_t i = 0, limit = size - 4;
    for (; s[i] && i < limit; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = 0;
    return buf;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

static void fmt_shape(char *buf, size_t size, const uint64_t *dims, int ndim)
{
    size_t at = 0;
    buf[0] = 0;
    at += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", i ? "," : "",
                               (unsigned long long)dims[i]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

static int is_standard_key(const char *key)
{
    for (size_t i = 0; i < sizeof standard_keys / sizeof standard_keys[0]; i++)
        if (!strcmp(key, standard_keys[i]))
            return 1;
    return 0;
}

/* The shape a layer's weight (which 0) or bias (which 1) has in the file:
 * conv (O, I, k, k), fc (O, I), bias (O) as in PyTorch's state_dict. A
 * parameter of another layer kind is saved flat. Returns 0 if the layer has
 * no such parameter. */
static int param_shape(const dn_layer *l, int which, uint64_t *dims, int *ndim)
{
    size_t len = which ? l->b_len : l->w_len;
    if (len == 0)
        return 0;
    if (which == 1) {
        dims[0] = len;
        *ndim = 1;
    } else if (l->kind == DN_CONV) {
        dims[0] = (uint64_t)l->out_ch;
        dims[1] = (uint64_t)l->in.c;
        dims[2] = dims[3] = (uint64_t)l->k;
        *ndim = 4;
    } else if (l->kind == DN_FC) {
        dims[0] = (uint64_t)l->out_ch;
        dims[1] = (uint64_t)l->in.c * (uint64_t)l->in.h * (uint64_t)l->in.w;
        *ndim = 2;
    } else {
        dims[0] = len;
        *ndim = 1;
    }
    return 1;
}

static uint64_t shape_elems(const uint64_t *dims, int ndim)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    return n;
}

/* What load accepts for the dataset name and the input shape; save checks
 * the same so that it never writes a file it would refuse. */
static int valid_dataset(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap || n >= sizeof ((dn_model *)0)->dataset)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

static int valid_input(dn_shape in)
{
    return in.c >= 1 && in.h >= 1 && in.w >= 1 && in.c <= 4096 && in.h <= 4096 &&
           in.w <= 4096;
}

/* ------------------------------------------------------------------------ */
/* Saving                                                                   */
/* ------------------------------------------------------------------------ */

/* What goes into the data section, in order. */
typedef struct st_out {
    char name[80];
    const float *data;
    uint64_t dims[ST_MAX_DIMS];
    int ndim;
    uint64_t len;
} st_out;

static int json_set_str(json_t *obj, const char *key, const char *value)
{
    json_t *s = json_string(value);
    return s && json_object_set_new(obj, key, s) == 0;
}

/* jansson refuses strings that are not UTF-8; asking it up front lets save
 * name the culprit instead of failing half-way through the header. */
static int is_utf8(const char *s)
{
    json_t *probe = json_string(s);
    json_decref(probe);
    return probe != NULL;
}

/* Checks what the caller put in extras before anything is written. */
static dn_status check_extras(const dn_model *m, const char *path,
                              const dn_file_extras *x, dn_error *err)
{
    if (x->n_tensors < 0 || x->n_tensors > DN_FILE_MAX_TENSORS)
        return dn_fail(err, DN_ERR_ARG, "%s: extras hold %d tensors, expected 0..%d",
                       path, x->n_tensors, DN_FILE_MAX_TENSORS);
    if (x->n_meta < 0 || x->n_meta > DN_FILE_MAX_META)
        return dn_fail(err, DN_ERR_ARG, "%s: extras hold %d metadata entries, expected 0..%d",
                       path, x->n_meta, DN_FILE_MAX_META);
    for (int i = 0; i < x->n_tensors; i++) {
        const char *name = x->tensors[i].name;
        if (!memchr(name, 0, sizeof x->tensors[i].name) || !name[0] ||
            !strcmp(name, "__metadata__"))
            return dn_fail(err, DN_ERR_ARG, "%s: extra tensor %d has an empty, "
                           "unterminated or reserved name", path, i);
        if (!is_utf8(name))
            return dn_fail(err, DN_ERR_ARG, "%s: extra tensor %d: name is not valid "
                           "UTF-8", path, i);
        if (!x->tensors[i].data && x->tensors[i].len)
            return dn_fail(err, DN_ERR_ARG, "%s: extra tensor '%s' has no data",
                           path, name);
        if (x->tensors[i].len > (size_t)-1 / 8)
            return dn_fail(err, DN_ERR_ARG, "%s: extra tensor '%s' is too long",
                           path, name);
        for (int j = 0; j < i; j++)
            if (!strcmp(name, x->tensors[j].name))
                return dn_fail(err, DN_ERR_ARG, "%s: extra tensor '%s' appears twice",
                               path, name);
        for (int l = 0; l < m->n_layers; l++) {
            size_t nl = strlen(m->layers[l].name);
            if (!strncmp(name, m->layers[l].name, nl) &&
                (!strcmp(name + nl, ".weight") || !strcmp(name + nl, ".bias")))
                return dn_fail(err, DN_ERR_ARG, "%s: extra tensor '%s' has the "
                               "name of a model parameter", path, name);
        }
    }
    for (int i = 0; i < x->n_meta; i++) {
        const char *key = x->meta[i].key;
        if (!memchr(key, 0, sizeof x->meta[i].key) ||
            !memchr(x->meta[i].value, 0, sizeof x->meta[i].value) || !key[0])
            return dn_fail(err, DN_ERR_ARG, "%s: extras metadata %d has an empty "
                           "or unterminated key or value", path, i);
        if (!is_utf8(key) || !is_utf8(x->meta[i].value))
            return dn_fail(err, DN_ERR_ARG, "%s: extras metadata %d: key or value "
                           "is not valid UTF-8", path, i);
        if (is_standard_key(key))
            return dn_fail(err, DN_ERR_ARG, "%s: extras metadata key '%s' is "
                           "reserved for the model", path, key);
        for (int j = 0; j < i; j++)
            if (!strcmp(key, x->meta[j].key))
                return dn_fail(err, DN_ERR_ARG, "%s: extras metadata key '%s' "
                               "appears twice", path, key);
    }
    return DN_OK;
}

dn_status dn_model_save(const dn_model *m, const char *path,
                        const dn_file_extras *extras, dn_error *err)
{
    if (!path || !*path)
        return dn_fail(err, DN_ERR_ARG, "dn_model_save: no path");
    if (!m || (m->n_params && !m->params) || m->n_layers < 0 ||
        m->n_layers > DN_MAX_LAYERS)
        return dn_fail(err, DN_ERR_ARG, "%s: no model to save", path);
    if (!isfinite(m->mean) || !isfinite(m->std) || !(m->std > 0) ||
        !valid_dataset(m->dataset, sizeof m->dataset) || !valid_input(m->input))
        return dn_fail(err, DN_ERR_ARG, "%s: the model's mean %g, std %g, dataset or "
                       "input %dx%dx%d would not load back", path, (double)m->mean,
                       (double)m->std, m->input.c, m->input.h, m->input.w);
    if (extras) {
        dn_status st = check_extras(m, path, extras, err);
        if (st != DN_OK)
            return st;
    }

    /* Parameters in layer order, weight before bias, then the extras. */
    st_out out[2 * DN_MAX_LAYERS + DN_FILE_MAX_TENSORS];
    int n_out = 0;
    uint64_t total = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *ly = &m->layers[l];
        for (int which = 0; which < 2; which++) {
            st_out *o = &out[n_out];
            if (!param_shape(ly, which, o->dims, &o->ndim))
                continue;
            size_t off = which ? ly->b_off : ly->w_off;
            o->len = which ? ly->b_len : ly->w_len;
            if (shape_elems(o->dims, o->ndim) != o->len || off > m->n_params ||
                o->len > m->n_params - off)
                return dn_fail(err, DN_ERR_ARG, "%s: layer %s: parameter block "
                               "does not match its shape", path, ly->name);
            snprintf(o->name, sizeof o->name, "%s.%s", ly->name, which ? "bias" : "weight");
            o->data = m->params + off;
            total += o->len * 4;
            n_out++;
        }
    }
    for (int i = 0; extras && i < extras->n_tensors; i++) {
        st_out *o = &out[n_out++];
        snprintf(o->name, sizeof o->name, "%s", extras->tensors[i].name);
        o->data = extras->tensors[i].data;
        o->len = extras->tensors[i].len;
        o->dims[0] = o->len;
        o->ndim = 1;
        total += o->len * 4;
    }
    if (total > ST_MAX_FILE)
        return dn_fail(err, DN_ERR_ARG, "%s: %llu bytes of tensors, more than a "
                       "model file may hold", path, (unsigned long long)total);

    dn_status st = DN_ERR_NOMEM;
    json_t *root = NULL;
    char *text = NULL, *hdr = NULL;
    uint8_t *data = malloc(total ? (size_t)total : 1);
    if (!data)
        goto nomem;
    uint64_t at = 0;
    for (int i = 0; i < n_out; i++)
        for (uint64_t j = 0; j < out[i].len; j++, at += 4)
            put_f32(data + at, out[i].data[j]);

    root = json_object();
    json_t *meta = json_object();
    if (!root || !meta || json_object_set_new(root, "__metadata__", meta) != 0)
        goto nomem;
    char input[64], mean[32], std[32], sum[16];
    snprintf(input, sizeof input, "%dx%dx%d", m->input.c, m->input.h, m->input.w);
    snprintf(mean, sizeof mean, "%.9g", (double)m->mean);
    snprintf(std, sizeof std, "%.9g", (double)m->std);
    snprintf(sum, sizeof sum, "%08x", (unsigned)crc32_of(data, total));
    const char *const kv[][2] = {
        {"format", "digitnet"}, {"arch", m->spec}, {"input", input},
        {"mean", mean},         {"std", std},      {"dataset", m->dataset},
        {"checksum", sum},      {"version", DN_VERSION},
    };
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof kv / sizeof kv[0]; i++)
        ok = json_set_str(meta, kv[i][0], kv[i][1]);
    for (int i = 0; ok && extras && i < extras->n_meta; i++)
        ok = json_set_str(meta, extras->meta[i].key, extras->meta[i].value);
    if (!ok) {
        /* Only arch can still be refused here (the rest was checked). */
        st = dn_fail(err, DN_ERR_ARG, "%s: metadata could not be encoded (is the "
                     "spec valid UTF-8?)", path);
        goto done;
    }
    at = 0;
    for (int i = 0; i < n_out; i++) {
        json_t *t = json_object(), *shape = json_array(), *offs = json_array();
        int good = t && shape && offs && json_set_str(t, "dtype", "F32");
        for (int d = 0; good && d < out[i].ndim; d++)
            good = json_array_append_new(shape, json_integer((json_int_t)out[i].dims[d])) == 0;
        good = good && json_array_append_new(offs, json_integer((json_int_t)at)) == 0 &&
               json_array_append_new(offs, json_integer((json_int_t)(at + out[i].len * 4))) == 0;
        if (good) {
            good = json_object_set_new(t, "shape", shape) == 0;
            shape = NULL;
            good = good && json_object_set_new(t, "data_offsets", offs) == 0;
            offs = NULL;
            good = good && json_object_set_new(root, out[i].name, t) == 0;
            t = NULL;
        }
        json_decref(t);
        json_decref(shape);
        json_decref(offs);
        if (!good)
            goto nomem;
        at += out[i].len * 4;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text)
        goto nomem;
    /* Spaces pad the header so that the data section starts 8-aligned. */
    size_t tlen = strlen(text), hlen = (tlen + 7) & ~(size_t)7;
    if (8 + (uint64_t)hlen + total > ST_MAX_FILE) {
        st = dn_fail(err, DN_ERR_ARG, "%s: %llu bytes, more than the 1 GiB a model "
                     "file may have", path, (unsigned long long)(8 + hlen + total));
        goto done;
    }
    hdr = malloc(8 + hlen);
    if (!hdr)
        goto nomem;
    for (int i = 0; i < 8; i++)
        hdr[i] = (char)(uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(hdr + 8, text, tlen);
    memset(hdr + 8 + tlen, ' ', hlen - tlen);

    const void *parts[2] = {hdr, data};
    size_t sizes[2] = {8 + hlen, (size_t)total};
    st = dn_write_atomic_parts(path, parts, sizes, 2, err);
    goto done;

nomem:
    st = dn_fail(err, DN_ERR_NOMEM, "%s: out of memory while saving", path);
done:
    free(hdr);
    free(text);
    json_decref(root);
    free(data);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Loading, stage 1: the file and its header                                */
/* ------------------------------------------------------------------------ */

static dn_status read_at(int fd, const char *path, void *buf, uint64_t n,
                         uint64_t pos, dn_error *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = pread(fd, p, want, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return dn_fail(err, DN_ERR_IO, "%s: offset %llu: cannot read: %s", path,
                           (unsigned long long)pos, strerror(errno));
        if (r == 0)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: file ended early "
                           "(it shrank while being read)", path, (unsigned long long)pos);
        p += r;
        pos += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return DN_OK;
}

/* Counts the values a JSON text would create (commas and openings outside
 * strings) so that a header of millions of tiny values is refused before
 * jansson builds it. */
static size_t json_value_bound(const char *s, size_t n)
{
    size_t count = 1;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == '[' || c == '{') {
            count++;
        }
    }
    return count;
}

/* Reads a JSON array of non-negative integers into v (at most max). */
static dn_status read_uints(const st_file *f, const char *tname, const char *field,
                            const json_t *arr, uint64_t *v, int max, int *count,
                            dn_error *err)
{
    char nb[64];
    safe_name(nb, sizeof nb, tname);
    if (!json_is_array(arr))
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': \"%s\" is %s, expected "
                       "an array of integers", f->path, nb, field, json_type_name(arr));
    size_t n = json_array_size(arr);
    if (n > (size_t)max)
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': \"%s\" has %zu entries, "
                       "expected at most %d", f->path, nb, field, n, max);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(arr, i);
        if (!json_is_integer(x))
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': %s[%zu] is %s, "
                           "expected a non-negative integer", f->path, nb, field, i,
                           json_type_name(x));
        json_int_t val = json_integer_value(x);
        if (val < 0)
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': %s[%zu] is %lld, "
                           "expected a non-negative integer", f->path, nb, field, i,
                           (long long)val);
        v[i] = (uint64_t)val;
    }
    *count = (int)n;
    return DN_OK;
}

/* One tensor entry of the header into t. */
static dn_status parse_tensor(const st_file *f, const char *name, const json_t *v,
                              st_tensor *t, dn_error *err)
{
    char nb[64], sb[256];
    safe_name(nb, sizeof nb, name);
    t->name = name;
    if (!json_is_object(v))
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': entry is %s, expected "
                       "an object with dtype, shape and data_offsets", f->path, nb,
                       json_type_name(v));
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (!json_object_get(v, fields[i]))
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': no \"%s\"", f->path,
                           nb, fields[i]);
    const json_t *dt = json_object_get(v, "dtype");
    if (!json_is_string(dt))
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is %s, "
                       "expected a string", f->path, nb, json_type_name(dt));
    if (strcmp(json_string_value(dt), "F32") != 0) {
        char db[32];
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': dtype \"%s\", expected "
                       "\"F32\" (digitnet models are float32)", f->path, nb,
                       safe_name(db, sizeof db, json_string_value(dt)));
    }
    dn_status st = read_uints(f, name, "shape", json_object_get(v, "shape"), t->dims,
                              ST_MAX_DIMS, &t->ndim, err);
    if (st != DN_OK)
        return st;
    fmt_shape(sb, sizeof sb, t->dims, t->ndim);
    /* Bytes must fit in 64 bits; anything near that is refused later as
     * larger than the data section. */
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i] != 0 && n > (UINT64_MAX / 4) / t->dims[i])
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': shape %s has more "
                           "elements than any file can hold", f->path, nb, sb);
        n *= t->dims[i];
    }
    t->nelem = n;
    uint64_t offs[2];
    int no = 0;
    st = read_uints(f, name, "data_offsets", json_object_get(v, "data_offsets"),
                    offs, 2, &no, err);
    if (st != DN_OK)
        return st;
    if (no != 2)
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" has %d "
                       "entries, expected [begin, end]", f->path, nb, no);
    t->begin = offs[0];
    t->end = offs[1];
    if (t->end < t->begin)
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu,%llu] "
                       "end before they begin", f->path, nb, (unsigned long long)t->begin,
                       (unsigned long long)t->end);
    if (t->end > f->data_len)
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu,%llu] "
                       "run past the end of the data section (%llu bytes, at offset %llu)",
                       f->path, nb, (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)f->data_len,
                       (unsigned long long)f->data_pos);
    if (t->end - t->begin != n * 4)
        return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu,%llu] "
                       "hold %llu bytes but shape %s of F32 needs %llu", f->path, nb,
                       (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)(t->end - t->begin), sb,
                       (unsigned long long)(n * 4));
    return DN_OK;
}

static int cmp_range(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The safetensors spec wants the data section fully indexed: tensors tile
 * it with no overlap (two tensors sharing bytes) and no hole (bytes no
 * tensor owns, where anything could hide). */
static dn_status check_tiling(const st_file *f, dn_error *err)
{
    if (f->n == 0) {
        if (f->data_len)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: %llu bytes of data but "
                           "no tensors", f->path, (unsigned long long)f->data_pos,
                           (unsigned long long)f->data_len);
        return DN_OK;
    }
    const st_tensor **order = malloc(f->n * sizeof *order);
    if (!order)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->n; i++)
        order[i] = &f->t[i];
    qsort(order, f->n, sizeof *order, cmp_range);
    dn_status st = DN_OK;
    uint64_t pos = 0;
    const st_tensor *prev = NULL;
    char na[64], nb[64];
    for (size_t i = 0; i < f->n && st == DN_OK; i++) {
        const st_tensor *t = order[i];
        if (t->begin < pos)
            st = dn_fail(err, DN_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap: bytes "
                         "[%llu,%llu) and [%llu,%llu) of the data section", f->path,
                         safe_name(na, sizeof na, prev->name),
                         safe_name(nb, sizeof nb, t->name),
                         (unsigned long long)prev->begin, (unsigned long long)prev->end,
                         (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > pos)
            st = dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: bytes [%llu,%llu) of the "
                         "data section belong to no tensor", f->path,
                         (unsigned long long)(f->data_pos + pos), (unsigned long long)pos,
                         (unsigned long long)t->begin);
        if (t->end > pos) {
            pos = t->end;
            prev = t;
        }
    }
    if (st == DN_OK && pos != f->data_len)
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: %llu bytes after the last "
                     "tensor belong to no tensor", f->path,
                     (unsigned long long)(f->data_pos + pos),
                     (unsigned long long)(f->data_len - pos));
    free(order);
    return st;
}

static const char *meta_get(const st_file *f, const char *key)
{
    return f->meta ? json_string_value(json_object_get(f->meta, key)) : NULL;
}

/* Stage 1: reads path and checks everything that needs no model. */
static dn_status st_parse(st_file *f, const char *path, dn_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dn_fail(err, DN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    dn_status st = DN_OK;
    char *hdr = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = dn_fail(err, DN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = dn_fail(err, DN_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: file has %llu bytes, expected at "
                     "least the 8-byte header length of a safetensors file", path,
                     (unsigned long long)size);
        goto out;
    }
    if (size > ST_MAX_FILE) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: file has %llu bytes, more than the 1 GiB "
                     "a model file may have", path, (unsigned long long)size);
        goto out;
    }
    uint8_t lenb[8];
    if ((st = read_at(fd, path, lenb, 8, 0, err)) != DN_OK)
        goto out;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    if (hlen < 2) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu, expected a "
                     "JSON object of at least 2 bytes", path, (unsigned long long)hlen);
        goto out;
    }
    if (hlen > ST_MAX_HEADER) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu is absurd "
                     "(at most %llu)", path, (unsigned long long)hlen,
                     (unsigned long long)ST_MAX_HEADER);
        goto out;
    }
    if (hlen > size - 8) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu runs past "
                     "the end of the file (%llu bytes follow it)", path,
                     (unsigned long long)hlen, (unsigned long long)(size - 8));
        goto out;
    }
    f->data_pos = 8 + hlen;
    f->data_len = size - f->data_pos;
    hdr = malloc((size_t)hlen);
    f->data = malloc(f->data_len ? (size_t)f->data_len : 1);
    if (!hdr || !f->data) {
        st = dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                     (unsigned long long)size);
        goto out;
    }
    if ((st = read_at(fd, path, hdr, hlen, 8, err)) != DN_OK ||
        (st = read_at(fd, path, f->data, f->data_len, f->data_pos, err)) != DN_OK)
        goto out;

    if (hdr[0] != '{') {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header starts with byte 0x%02x, "
                     "expected '{' (a JSON object)", path, (unsigned)(uint8_t)hdr[0]);
        goto out;
    }
    size_t values = json_value_bound(hdr, (size_t)hlen);
    if (values > ST_MAX_VALUES) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header holds about %zu JSON "
                     "values, more than the %d a model file may have", path, values,
                     ST_MAX_VALUES);
        goto out;
    }
    json_error_t je;
    f->root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!f->root) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: header is not valid JSON: %s",
                     path, (unsigned long long)(8 + (uint64_t)(je.position > 0 ? je.position : 0)),
                     je.text);
        goto out;
    }
    if (!json_is_object(f->root)) {
        st = dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header is %s, expected a JSON "
                     "object", path, json_type_name(f->root));
        goto out;
    }

    /* Metadata: safetensors allows only string values. */
    f->meta = json_object_get(f->root, "__metadata__");
    if (f->meta) {
        char kb[64];
        const char *key;
        json_t *val;
        if (!json_is_object(f->meta)) {
            st = dn_fail(err, DN_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an "
                         "object of strings", path, json_type_name(f->meta));
            goto out;
        }
        json_object_foreach(f->meta, key, val) {
            if (!json_is_string(val)) {
                st = dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\" is %s, expected a "
                             "string (safetensors metadata maps strings to strings)",
                             path, safe_name(kb, sizeof kb, key), json_type_name(val));
                goto out;
            }
        }
    }

    size_t n_entries = json_object_size(f->root) - (f->meta ? 1 : 0);
    f->t = calloc(n_entries ? n_entries : 1, sizeof *f->t);
    if (!f->t) {
        st = dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(f->root, name, v) {
        if (!strcmp(name, "__metadata__"))
            continue;
        if ((st = parse_tensor(f, name, v, &f->t[f->n], err)) != DN_OK)
            goto out;
        f->n++;
    }
    if ((st = check_tiling(f, err)) != DN_OK)
        goto out;

    const char *sum = meta_get(f, "checksum");
    if (sum) {
        size_t sl = strlen(sum);
        unsigned long want = 0;
        int ok = sl >= 1 && sl <= 8;
        for (size_t i = 0; ok && i < sl; i++) {
            const char *hex = "0123456789abcdef0123456789ABCDEF";
            const char *at = strchr(hex, sum[i]);
            ok = sum[i] && at;
            if (ok)
                want = want << 4 | (unsigned long)((at - hex) & 15);
        }
        if (!ok) {
            char vb[32];
            st = dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"checksum\" is \"%s\", "
                         "expected 8 hex digits", path, safe_name(vb, sizeof vb, sum));
            goto out;
        }
        uint32_t have = crc32_of(f->data, f->data_len);
        if (have != (uint32_t)want) {
            st = dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: checksum mismatch: the "
                         "header says %08lx, the %llu data bytes give %08x (the file is "
                         "corrupt)", path, (unsigned long long)f->data_pos, want,
                         (unsigned long long)f->data_len, (unsigned)have);
            goto out;
        }
    }
out:
    free(hdr);
    close(fd);
    return st;
}

static void st_free(st_file *f)
{
    json_decref(f->root);
    free(f->t);
    free(f->data);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------------------ */
/* Loading, stage 2: the model                                              */
/* ------------------------------------------------------------------------ */

static st_tensor *find_tensor(st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

/* A finite float from the whole of s; 0 if it is not one. */
static int parse_float(const char *s, float *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno || !isfinite(d) || !isfinite((float)d))
        return 0;
    *out = (float)d;
    return 1;
}

static int parse_input(const char *s, dn_shape *in)
{
    int used = 0;
    dn_shape v;
    if (sscanf(s, "%dx%dx%d%n", &v.c, &v.h, &v.w, &used) != 3 || s[used] || !valid_input(v))
        return 0;
    *in = v;
    return 1;
}

static dn_status bad_meta(const st_file *f, const char *key, const char *value,
                          const char *expected, dn_error *err)
{
    char vb[64];
    return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\" is \"%s\", expected %s",
                   f->path, key, safe_name(vb, sizeof vb, value), expected);
}

/* The tensors no parameter took and the non-standard metadata, copied into
 * x (zeroed by the caller; freed by the caller on failure). */
static dn_status take_extras(const st_file *f, dn_file_extras *x, dn_error *err)
{
    char nb[64];
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[i];
        if (t->used)
            continue;
        if (x->n_tensors == DN_FILE_MAX_TENSORS)
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': more than %d tensors "
                           "besides the parameters", f->path,
                           safe_name(nb, sizeof nb, t->name), DN_FILE_MAX_TENSORS);
        if (strlen(t->name) >= sizeof x->tensors[0].name)
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': name longer than %zu "
                           "bytes", f->path, safe_name(nb, sizeof nb, t->name),
                           sizeof x->tensors[0].name - 1);
        float *d = malloc(t->nelem ? (size_t)t->nelem * sizeof(float) : sizeof(float));
        if (!d)
            return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", f->path);
        for (uint64_t j = 0; j < t->nelem; j++)
            d[j] = get_f32(f->data + t->begin + 4 * j);
        int k = x->n_tensors++;
        snprintf(x->tensors[k].name, sizeof x->tensors[k].name, "%s", t->name);
        x->tensors[k].data = d;
        x->tensors[k].len = (size_t)t->nelem;
    }
    if (!f->meta)
        return DN_OK;
    const char *key;
    json_t *val;
    json_object_foreach(f->meta, key, val) {
        if (is_standard_key(key))
            continue;
        const char *s = json_string_value(val);
        if (x->n_meta == DN_FILE_MAX_META)
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\": more than %d "
                           "entries besides the standard ones", f->path,
                           safe_name(nb, sizeof nb, key), DN_FILE_MAX_META);
        if (strlen(key) >= sizeof x->meta[0].key || strlen(s) >= sizeof x->meta[0].value)
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\": key or value too "
                           "long (at most %zu and %zu bytes)", f->path,
                           safe_name(nb, sizeof nb, key), sizeof x->meta[0].key - 1,
                           sizeof x->meta[0].value - 1);
        int k = x->n_meta++;
        snprintf(x->meta[k].key, sizeof x->meta[k].key, "%s", key);
        snprintf(x->meta[k].value, sizeof x->meta[k].value, "%s", s);
    }
    return DN_OK;
}

/* Stage 2: the model the metadata describes, its parameters from the
 * table, and what remains into extras. */
static dn_model *st_match(st_file *f, dn_file_extras *extras, dn_error *err)
{
    const char *arch = meta_get(f, "arch");
    const char *input = meta_get(f, "input");
    const char *mean = meta_get(f, "mean"), *std = meta_get(f, "std");
    const char *dataset = meta_get(f, "dataset");
    dn_shape in = DN_INPUT_SHAPE;
    float fmean = DN_MNIST_MEAN, fstd = DN_MNIST_STD;

    if (input && !parse_input(input, &in)) {
        bad_meta(f, "input", input, "CxHxW such as 1x28x28", err);
        return NULL;
    }
    if (mean && !parse_float(mean, &fmean)) {
        bad_meta(f, "mean", mean, "a finite number", err);
        return NULL;
    }
    if (std && (!parse_float(std, &fstd) || !(fstd > 0))) {
        bad_meta(f, "std", std, "a positive number", err);
        return NULL;
    }
    if (dataset && !valid_dataset(dataset, strlen(dataset) + 1)) {
        bad_meta(f, "dataset", dataset, "a short name such as \"mnist\"", err);
        return NULL;
    }

    dn_error merr = {0};
    dn_model *m = dn_model_new(arch, in, 0, &merr);
    if (!m) {
        dn_fail(err, merr.status ? merr.status : DN_ERR_ARG, "%s: metadata \"arch\": %s",
                f->path, merr.msg[0] ? merr.msg : "the model cannot be built");
        return NULL;
    }
    m->mean = fmean;
    m->std = fstd;
    snprintf(m->dataset, sizeof m->dataset, "%s", dataset ? dataset : "mnist");

    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *ly = &m->layers[l];
        for (int which = 0; which < 2; which++) {
            uint64_t dims[ST_MAX_DIMS];
            int ndim;
            if (!param_shape(ly, which, dims, &ndim))
                continue;
            char name[80], want[256], have[256];
            snprintf(name, sizeof name, "%s.%s", ly->name, which ? "bias" : "weight");
            size_t off = which ? ly->b_off : ly->w_off;
            size_t len = which ? ly->b_len : ly->w_len;
            fmt_shape(want, sizeof want, dims, ndim);
            if (shape_elems(dims, ndim) != len || off > m->n_params ||
                len > m->n_params - off) {
                dn_fail(err, DN_ERR_SHAPE, "%s: layer %s: the model's parameter block "
                        "does not match shape %s", f->path, ly->name, want);
                goto fail;
            }
            st_tensor *t = find_tensor(f, name);
            if (!t) {
                dn_fail(err, DN_ERR_FORMAT, "%s: no tensor '%s' (shape %s), which the "
                        "architecture needs", f->path, name, want);
                goto fail;
            }
            int same = t->ndim == ndim;
            for (int d = 0; same && d < ndim; d++)
                same = t->dims[d] == dims[d];
            if (!same) {
                fmt_shape(have, sizeof have, t->dims, t->ndim);
                dn_fail(err, DN_ERR_SHAPE, "%s: tensor '%s': shape %s but the "
                        "architecture needs %s", f->path, name, have, want);
                goto fail;
            }
            const uint8_t *src = f->data + t->begin;
            float *dst = m->params + off;
            for (size_t i = 0; i < len; i++)
                dst[i] = get_f32(src + 4 * i);
            t->used = 1;
        }
    }

    if (extras && take_extras(f, extras, err) != DN_OK)
        goto fail;
    return m;

fail:
    dn_model_free(m);
    return NULL;
}

dn_model *dn_model_load(const char *path, dn_file_extras *extras, dn_error *err)
{
    if (extras)
        memset(extras, 0, sizeof *extras);
    if (!path || !*path) {
        dn_fail(err, DN_ERR_ARG, "dn_model_load: no path");
        return NULL;
    }
    st_file f;
    dn_model *m = NULL;
    if (st_parse(&f, path, err) == DN_OK)
        m = st_match(&f, extras, err);
    st_free(&f);
    if (!m && extras)
        dn_file_extras_free(extras);
    return m;
}

void dn_file_extras_free(dn_file_extras *x)
{
    if (!x)
        return;
    int n = x->n_tensors < DN_FILE_MAX_TENSORS ? x->n_tensors : DN_FILE_MAX_TENSORS;
    for (int i = 0; i < n; i++)
        free(x->tensors[i].data);
    memset(x, 0, sizeof *x);
}

const char *dn_file_extras_get(const dn_file_extras *x, const char *key)
{
    if (!x || !key)
        return NULL;
    int n = x->n_meta < DN_FILE_MAX_META ? x->n_meta : DN_FILE_MAX_META;
    for (int i = 0; i < n; i++)
        if (!strcmp(x->meta[i].key, key))
            return x->meta[i].value;
    return NULL;
}
