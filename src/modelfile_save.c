/*
 * modelfile_save.c - writing a model (and a checkpoint's extras) as a
 * safetensors file, atomically.
 *
 * Everything that could make the file unloadable is refused before a byte
 * is written: extras that collide with the model's names, metadata that
 * is not UTF-8, a normalisation or input shape load would refuse, and any
 * non-finite number. The file is then written through a temporary file and
 * renamed into place (dn_write_atomic_parts), so an existing model survives
 * any failure.
 */
#include "modelfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (dn_st_is_standard_key(key))
            return dn_fail(err, DN_ERR_ARG, "%s: extras metadata key '%s' is "
                           "reserved for the model", path, key);
        for (int j = 0; j < i; j++)
            if (!strcmp(key, x->meta[j].key))
                return dn_fail(err, DN_ERR_ARG, "%s: extras metadata key '%s' "
                               "appears twice", path, key);
    }
    return DN_OK;
}

/* Parameters in layer order, weight before bias, then the extras, into
 * out[] (2 * DN_MAX_LAYERS + DN_FILE_MAX_TENSORS entries), each checked to
 * be finite. *total gets the data section's size. */
static dn_status collect_tensors(const dn_model *m, const char *path, const dn_file_extras *x,
                                 st_out *out, int *n_out, uint64_t *total, dn_error *err)
{
    int n = 0;
    uint64_t bytes = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *ly = &m->layers[l];
        for (int which = 0; which < 2; which++) {
            st_out *o = &out[n];
            if (!dn_st_param_shape(ly, which, o->dims, &o->ndim))
                continue;
            size_t off = which ? ly->b_off : ly->w_off;
            o->len = which ? ly->b_len : ly->w_len;
            if (dn_st_shape_elems(o->dims, o->ndim) != o->len || off > m->n_params ||
                o->len > m->n_params - off)
                return dn_fail(err, DN_ERR_ARG, "%s: layer %s: parameter block "
                               "does not match its shape", path, ly->name);
            snprintf(o->name, sizeof o->name, "%s.%s", ly->name, which ? "bias" : "weight");
            o->data = m->params + off;
            bytes += o->len * 4;
            n++;
        }
    }
    for (int i = 0; x && i < x->n_tensors; i++) {
        st_out *o = &out[n++];
        snprintf(o->name, sizeof o->name, "%s", x->tensors[i].name);
        o->data = x->tensors[i].data;
        o->len = x->tensors[i].len;
        o->dims[0] = o->len;
        o->ndim = 1;
        bytes += o->len * 4;
    }
    if (bytes > ST_MAX_FILE)
        return dn_fail(err, DN_ERR_ARG, "%s: %llu bytes of tensors, more than a "
                       "model file may hold", path, (unsigned long long)bytes);
    for (int i = 0; i < n; i++) {
        dn_status st = dn_st_check_finite(path, out[i].name, out[i].data, (size_t)out[i].len,
                                          "not saved", err);
        if (st != DN_OK)
            return st;
    }
    *n_out = n;
    *total = bytes;
    return DN_OK;
}

/* The metadata object: the standard keys, then the extras'. Returns 0 if
 * a value could not be encoded. */
static int add_metadata(json_t *meta, const dn_model *m, const dn_file_extras *x,
                        const uint8_t *data, uint64_t total)
{
    char input[64], mean[32], std[32], sum[16];
    snprintf(input, sizeof input, "%dx%dx%d", m->input.c, m->input.h, m->input.w);
    snprintf(mean, sizeof mean, "%.9g", (double)m->mean);
    snprintf(std, sizeof std, "%.9g", (double)m->std);
    snprintf(sum, sizeof sum, "%08x", (unsigned)dn_st_crc32(data, total));
    const char *const kv[][2] = {
        {"format", "digitnet"}, {"arch", m->spec}, {"input", input},
        {"mean", mean},         {"std", std},      {"dataset", m->dataset},
        {"checksum", sum},      {"version", DN_VERSION},
    };
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof kv / sizeof kv[0]; i++)
        ok = json_set_str(meta, kv[i][0], kv[i][1]);
    for (int i = 0; ok && x && i < x->n_meta; i++)
        ok = json_set_str(meta, x->meta[i].key, x->meta[i].value);
    return ok;
}

/* One tensor's header entry {"dtype", "shape", "data_offsets"} at byte
 * `at` of the data section. Returns 0 when out of memory. */
static int add_tensor_entry(json_t *root, const st_out *o, uint64_t at)
{
    json_t *t = json_object(), *shape = json_array(), *offs = json_array();
    int good = t && shape && offs && json_set_str(t, "dtype", "F32");
    for (int d = 0; good && d < o->ndim; d++)
        good = json_array_append_new(shape, json_integer((json_int_t)o->dims[d])) == 0;
    good = good && json_array_append_new(offs, json_integer((json_int_t)at)) == 0 &&
           json_array_append_new(offs, json_integer((json_int_t)(at + o->len * 4))) == 0;
    if (good) {
        good = json_object_set_new(t, "shape", shape) == 0;
        shape = NULL;
        good = good && json_object_set_new(t, "data_offsets", offs) == 0;
        offs = NULL;
        good = good && json_object_set_new(root, o->name, t) == 0;
        t = NULL;
    }
    json_decref(t);
    json_decref(shape);
    json_decref(offs);
    return good;
}

/* The header (8-byte length, JSON padded with spaces so that the data
 * section starts 8-aligned) into *hdr (malloc'd) of *hlen bytes. */
static dn_status encode_header(const dn_model *m, const char *path, const dn_file_extras *x,
                               const st_out *out, int n_out, const uint8_t *data,
                               uint64_t total, char **hdr, size_t *hlen, dn_error *err)
{
    dn_status st = DN_ERR_NOMEM;
    char *text = NULL;
    json_t *root = json_object();
    json_t *meta = root ? json_object() : NULL;
    /* json_object_set_new takes meta even when it fails. */
    if (!meta || json_object_set_new(root, "__metadata__", meta) != 0)
        goto nomem;
    if (!add_metadata(meta, m, x, data, total)) {
        /* Only arch can still be refused here (the rest was checked). */
        st = dn_fail(err, DN_ERR_ARG, "%s: metadata could not be encoded (is the "
                     "spec valid UTF-8?)", path);
        goto done;
    }
    uint64_t at = 0;
    for (int i = 0; i < n_out; i++) {
        if (!add_tensor_entry(root, &out[i], at))
            goto nomem;
        at += out[i].len * 4;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text)
        goto nomem;
    size_t tlen = strlen(text), padded = (tlen + 7) & ~(size_t)7;
    if (8 + (uint64_t)padded + total > ST_MAX_FILE) {
        st = dn_fail(err, DN_ERR_ARG, "%s: %llu bytes, more than the 1 GiB a model "
                     "file may have", path, (unsigned long long)(8 + padded + total));
        goto done;
    }
    *hdr = malloc(8 + padded);
    if (!*hdr)
        goto nomem;
    for (int i = 0; i < 8; i++)
        (*hdr)[i] = (char)(uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(*hdr + 8, text, tlen);
    memset(*hdr + 8 + tlen, ' ', padded - tlen);
    *hlen = 8 + padded;
    st = DN_OK;
    goto done;
nomem:
    st = dn_fail(err, DN_ERR_NOMEM, "%s: out of memory while saving", path);
done:
    free(text);
    json_decref(root);
    return st;
}

/* What save refuses about the model itself, before anything else. */
static dn_status check_model(const dn_model *m, const char *path, dn_error *err)
{
    if (!m || (m->n_params && !m->params) || m->n_layers < 0 || m->n_layers > DN_MAX_LAYERS)
        return dn_fail(err, DN_ERR_ARG, "%s: no model to save", path);
    if (!isfinite(m->mean) || !isfinite(m->std) || !(m->std > 0) ||
        !dn_st_valid_dataset(m->dataset, sizeof m->dataset) || !dn_st_valid_input(m->input))
        return dn_fail(err, DN_ERR_ARG, "%s: the model's mean %g, std %g, dataset or "
                       "input %dx%dx%d would not load back", path, (double)m->mean,
                       (double)m->std, m->input.c, m->input.h, m->input.w);
    return DN_OK;
}

dn_status dn_model_save(const dn_model *m, const char *path, const dn_file_extras *extras,
                        dn_error *err)
{
    if (!path || !*path)
        return dn_fail(err, DN_ERR_ARG, "dn_model_save: no path");
    dn_status st = check_model(m, path, err);
    if (st == DN_OK && extras)
        st = check_extras(m, path, extras, err);
    st_out out[2 * DN_MAX_LAYERS + DN_FILE_MAX_TENSORS];
    int n_out = 0;
    uint64_t total = 0;
    if (st == DN_OK)
        st = collect_tensors(m, path, extras, out, &n_out, &total, err);
    if (st != DN_OK)
        return st;

    uint8_t *data = malloc(total ? (size_t)total : 1);
    if (!data)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory while saving", path);
    uint64_t at = 0;
    for (int i = 0; i < n_out; i++)
        for (uint64_t j = 0; j < out[i].len; j++, at += 4)
            dn_st_put_f32(data + at, out[i].data[j]);
    char *hdr = NULL;
    size_t hlen = 0;
    st = encode_header(m, path, extras, out, n_out, data, total, &hdr, &hlen, err);
    if (st == DN_OK) {
        const void *parts[2] = {hdr, data};
        size_t sizes[2] = {hlen, (size_t)total};
        st = dn_write_atomic_parts(path, parts, sizes, 2, err);
    }
    free(hdr);
    free(data);
    return st;
}
