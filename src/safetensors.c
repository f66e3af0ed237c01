/*
 * safetensors.c - the safetensors container, and stage 1 of loading a
 * model file: the file and its header, checked against the file alone.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON (padded
 * with spaces to a multiple of 8 so that the data stays aligned), then the
 * data section, every tensor a little-endian float32 run at the offsets the
 * header gives (relative to the start of the data section).
 *
 * A model file may come from anywhere: every number in the header is
 * checked (JSON, dtypes, shapes, offsets, that the tensors tile the data
 * section exactly, the checksum) before stage 2 (src/modelfile.c) uses it,
 * and memory is bounded by the file size, which is itself bounded.
 */
#include "modelfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------------ */
/* Bytes, checksums and names                                               */
/* ------------------------------------------------------------------------ */

void dn_st_put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

float dn_st_get_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

uint32_t dn_st_crc32(const uint8_t *p, uint64_t n)
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

const char *dn_st_safe_name(char *buf, size_t size, const char *s)
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

void dn_st_fmt_shape(char *buf, size_t size, const uint64_t *dims, int ndim)
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

/* ------------------------------------------------------------------------ */
/* Stage 1: the header                                                      */
/* ------------------------------------------------------------------------ */

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
    dn_st_safe_name(nb, sizeof nb, tname);
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
    dn_st_safe_name(nb, sizeof nb, name);
    t->name = name;
    if (!name[0])
        return dn_fail(err, DN_ERR_FORMAT, "%s: a tensor with an empty name", f->path);
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
                       dn_st_safe_name(db, sizeof db, json_string_value(dt)));
    }
    dn_status st = read_uints(f, name, "shape", json_object_get(v, "shape"), t->dims,
                              ST_MAX_DIMS, &t->ndim, err);
    if (st != DN_OK)
        return st;
    dn_st_fmt_shape(sb, sizeof sb, t->dims, t->ndim);
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
                         dn_st_safe_name(na, sizeof na, prev->name),
                         dn_st_safe_name(nb, sizeof nb, t->name),
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

const char *dn_st_meta(const st_file *f, const char *key)
{
    return f->meta ? json_string_value(json_object_get(f->meta, key)) : NULL;
}

/* Reads the header length, the header text (into *hdr, malloc'd) and the
 * data section, checking each size against the file's. */
static dn_status read_parts(st_file *f, int fd, uint64_t size, char **hdr, uint64_t *hlen,
                            dn_error *err)
{
    const char *path = f->path;
    if (size < 8)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: file has %llu bytes, expected at "
                       "least the 8-byte header length of a safetensors file", path,
                       (unsigned long long)size);
    if (size > ST_MAX_FILE)
        return dn_fail(err, DN_ERR_FORMAT, "%s: file has %llu bytes, more than the 1 GiB "
                       "a model file may have", path, (unsigned long long)size);
    uint8_t lenb[8];
    dn_status st = dn_read_at(fd, path, lenb, 8, 0, err);
    if (st != DN_OK)
        return st;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | lenb[i];
    if (n < 2)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu, expected a "
                       "JSON object of at least 2 bytes", path, (unsigned long long)n);
    if (n > ST_MAX_HEADER)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu is absurd "
                       "(at most %llu)", path, (unsigned long long)n,
                       (unsigned long long)ST_MAX_HEADER);
    if (n > size - 8)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: header length %llu runs past "
                       "the end of the file (%llu bytes follow it)", path,
                       (unsigned long long)n, (unsigned long long)(size - 8));
    f->data_pos = 8 + n;
    f->data_len = size - f->data_pos;
    *hlen = n;
    *hdr = malloc((size_t)n);
    f->data = malloc(f->data_len ? (size_t)f->data_len : 1);
    if (!*hdr || !f->data)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                       (unsigned long long)size);
    st = dn_read_at(fd, path, *hdr, n, 8, err);
    if (st == DN_OK)
        st = dn_read_at(fd, path, f->data, f->data_len, f->data_pos, err);
    return st;
}

/* The header text into f->root (a JSON object) and f->meta (an object of
 * strings, or NULL). */
static dn_status parse_json(st_file *f, const char *hdr, uint64_t hlen, dn_error *err)
{
    const char *path = f->path;
    if (hdr[0] != '{')
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header starts with byte 0x%02x, "
                       "expected '{' (a JSON object)", path, (unsigned)(uint8_t)hdr[0]);
    size_t values = json_value_bound(hdr, (size_t)hlen);
    if (values > ST_MAX_VALUES)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header holds about %zu JSON "
                       "values, more than the %d a model file may have", path, values,
                       ST_MAX_VALUES);
    json_error_t je;
    f->root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!f->root)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: header is not valid JSON: %s",
                       path,
                       (unsigned long long)(8 + (uint64_t)(je.position > 0 ? je.position : 0)),
                       je.text);
    if (!json_is_object(f->root))
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 8: header is %s, expected a JSON "
                       "object", path, json_type_name(f->root));

    /* Metadata: safetensors allows only string values. */
    f->meta = json_object_get(f->root, "__metadata__");
    if (!f->meta)
        return DN_OK;
    if (!json_is_object(f->meta))
        return dn_fail(err, DN_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an "
                       "object of strings", path, json_type_name(f->meta));
    char kb[64];
    const char *key;
    json_t *val;
    json_object_foreach(f->meta, key, val) {
        /* dn_model_save refuses to write one back. */
        if (!key[0])
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata with an empty key", path);
        if (!json_is_string(val))
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\" is %s, expected a "
                           "string (safetensors metadata maps strings to strings)",
                           path, dn_st_safe_name(kb, sizeof kb, key), json_type_name(val));
    }
    return DN_OK;
}

/* Every entry but the metadata into f->t, then the tiling check. */
static dn_status parse_tensors(st_file *f, dn_error *err)
{
    size_t n_entries = json_object_size(f->root) - (f->meta ? 1 : 0);
    f->t = calloc(n_entries ? n_entries : 1, sizeof *f->t);
    if (!f->t)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", f->path);
    const char *name;
    json_t *v;
    json_object_foreach(f->root, name, v) {
        if (!strcmp(name, "__metadata__"))
            continue;
        dn_status st = parse_tensor(f, name, v, &f->t[f->n], err);
        if (st != DN_OK)
            return st;
        f->n++;
    }
    return check_tiling(f, err);
}

/* The "checksum" metadata, if present, against the data section. */
static dn_status check_sum(const st_file *f, dn_error *err)
{
    const char *sum = dn_st_meta(f, "checksum");
    if (!sum)
        return DN_OK;
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
        return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"checksum\" is \"%s\", expected 8 "
                       "hex digits", f->path, dn_st_safe_name(vb, sizeof vb, sum));
    }
    uint32_t have = dn_st_crc32(f->data, f->data_len);
    if (have != (uint32_t)want)
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset %llu: checksum mismatch: the header "
                       "says %08lx, the %llu data bytes give %08x (the file is corrupt)",
                       f->path, (unsigned long long)f->data_pos, want,
                       (unsigned long long)f->data_len, (unsigned)have);
    return DN_OK;
}

dn_status dn_st_parse(st_file *f, const char *path, dn_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd;
    uint64_t size;
    dn_status st = dn_open_regular(path, &fd, &size, err);
    if (st != DN_OK)
        return st;
    char *hdr = NULL;
    uint64_t hlen = 0;
    st = read_parts(f, fd, size, &hdr, &hlen, err);
    close(fd);
    if (st == DN_OK)
        st = parse_json(f, hdr, hlen, err);
    free(hdr);
    if (st == DN_OK)
        st = parse_tensors(f, err);
    if (st == DN_OK)
        st = check_sum(f, err);
    return st;
}

void dn_st_free(st_file *f)
{
    json_decref(f->root);
    free(f->t);
    free(f->data);
    memset(f, 0, sizeof *f);
}
