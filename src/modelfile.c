/*
 * modelfile.c - loading a model file, stage 2: the model its metadata
 * describes, with its parameters taken from the tensors.
 *
 * Stage 1 (src/safetensors.c) has checked the file against itself. Here
 * the spec in "arch" is laid out without allocating anything, and the
 * parameter count it implies is compared with the data section, and every
 * parameter tensor with the shape the spec gives it, before memory for the
 * parameters is taken: a tiny file claiming a huge network is refused at
 * once. Every value must be finite.
 */
#include "modelfile.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* What loading and saving share                                            */
/* ------------------------------------------------------------------------ */

static const char *const standard_keys[] = {
    "format", "arch", "input", "mean", "std", "dataset", "checksum", "version",
};

int dn_st_is_standard_key(const char *key)
{
    for (size_t i = 0; i < sizeof standard_keys / sizeof standard_keys[0]; i++)
        if (!strcmp(key, standard_keys[i]))
            return 1;
    return 0;
}

/* A parameter of a layer kind other than conv and fc is saved flat. */
int dn_st_param_shape(const dn_layer *l, int which, uint64_t *dims, int *ndim)
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

uint64_t dn_st_shape_elems(const uint64_t *dims, int ndim)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    return n;
}

int dn_st_valid_dataset(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0 || n >= cap || n >= sizeof ((dn_model *)0)->dataset)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

int dn_st_valid_input(dn_shape in)
{
    return in.c >= 1 && in.h >= 1 && in.w >= 1 && in.c <= 4096 && in.h <= 4096 &&
           in.w <= 4096;
}

dn_status dn_st_check_finite(const char *path, const char *tensor, const float *v, size_t n,
                             const char *action, dn_error *err)
{
    if (dn_floats_finite(v, n))
        return DN_OK;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) && bad++ == 0)
            first = i;
    }
    char nb[64];
    return dn_fail(err, DN_ERR_NUMERIC, "%s: tensor '%s': element %zu of %zu is %s (%zu "
                   "non-finite values); %s: a model file holds finite numbers only", path,
                   dn_st_safe_name(nb, sizeof nb, tensor), first, n,
                   isnan(v[first]) ? "NaN" : v[first] > 0 ? "+Inf" : "-Inf", bad, action);
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */
/* ------------------------------------------------------------------------ */

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
    if (sscanf(s, "%dx%dx%d%n", &v.c, &v.h, &v.w, &used) != 3 || s[used] ||
        !dn_st_valid_input(v))
        return 0;
    *in = v;
    return 1;
}

static dn_status bad_meta(const st_file *f, const char *key, const char *value,
                          const char *expected, dn_error *err)
{
    char vb[64];
    return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\" is \"%s\", expected %s", f->path,
                   key, dn_st_safe_name(vb, sizeof vb, value), expected);
}

/* The model's layers from "arch" and "input" (its parameters are not
 * allocated yet), its normalisation and dataset into m. */
static dn_status read_meta(const st_file *f, dn_model *m, dn_error *err)
{
    const char *arch = dn_st_meta(f, "arch");
    const char *input = dn_st_meta(f, "input");
    const char *mean = dn_st_meta(f, "mean"), *std = dn_st_meta(f, "std");
    const char *dataset = dn_st_meta(f, "dataset");
    dn_shape in = DN_INPUT_SHAPE;
    m->mean = DN_MNIST_MEAN;
    m->std = DN_MNIST_STD;
    if (input && !parse_input(input, &in))
        return bad_meta(f, "input", input, "CxHxW such as 1x28x28", err);
    if (mean && !parse_float(mean, &m->mean))
        return bad_meta(f, "mean", mean, "a finite number", err);
    if (std && (!parse_float(std, &m->std) || !(m->std > 0)))
        return bad_meta(f, "std", std, "a positive number", err);
    if (dataset && !dn_st_valid_dataset(dataset, strlen(dataset) + 1))
        return bad_meta(f, "dataset", dataset, "a short name such as \"mnist\"", err);
    snprintf(m->dataset, sizeof m->dataset, "%s", dataset ? dataset : "mnist");

    dn_error merr = {0};
    if (dn_spec_build(m, arch, in, &merr) != DN_OK)
        return dn_fail(err, merr.status ? merr.status : DN_ERR_ARG,
                       "%s: metadata \"arch\": %s", f->path,
                       merr.msg[0] ? merr.msg : "the model cannot be built");
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

static st_tensor *find_tensor(st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

/* The tensor holding parameter `which` of layer ly, checked against the
 * shape the spec gives it; marks it used. */
static dn_status match_param(st_file *f, const dn_model *m, const dn_layer *ly, int which,
                             st_tensor **out, dn_error *err)
{
    uint64_t dims[ST_MAX_DIMS];
    int ndim;
    char name[80], want[256], have[256];
    dn_st_param_shape(ly, which, dims, &ndim);
    snprintf(name, sizeof name, "%s.%s", ly->name, which ? "bias" : "weight");
    size_t off = which ? ly->b_off : ly->w_off;
    size_t len = which ? ly->b_len : ly->w_len;
    dn_st_fmt_shape(want, sizeof want, dims, ndim);
    if (dn_st_shape_elems(dims, ndim) != len || off > m->n_params || len > m->n_params - off)
        return dn_fail(err, DN_ERR_SHAPE, "%s: layer %s: the model's parameter block does "
                       "not match shape %s", f->path, ly->name, want);
    st_tensor *t = find_tensor(f, name);
    if (!t)
        return dn_fail(err, DN_ERR_FORMAT, "%s: no tensor '%s' (shape %s), which the "
                       "architecture needs", f->path, name, want);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->dims[d] == dims[d];
    if (!same) {
        dn_st_fmt_shape(have, sizeof have, t->dims, t->ndim);
        return dn_fail(err, DN_ERR_SHAPE, "%s: tensor '%s': shape %s but the architecture "
                       "needs %s", f->path, name, have, want);
    }
    t->used = 1;
    *out = t;
    return DN_OK;
}

/* Every parameter tensor the spec needs is found and checked before the
 * parameter block is allocated, then copied into it. */
static dn_status take_params(st_file *f, dn_model *m, dn_error *err)
{
    /* The cheapest refusal first: the tensors tile the data section, so
     * a spec needing more floats than it holds cannot be satisfied. */
    if ((uint64_t)m->n_params > f->data_len / 4)
        return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"arch\" needs %zu parameters "
                       "(%llu bytes) but the data section holds %llu bytes", f->path,
                       m->n_params, (unsigned long long)m->n_params * 4,
                       (unsigned long long)f->data_len);
    st_tensor *src[2 * DN_MAX_LAYERS] = {NULL};
    for (int l = 0; l < m->n_layers; l++) {
        for (int which = 0; which < 2; which++) {
            uint64_t dims[ST_MAX_DIMS];
            int ndim;
            if (!dn_st_param_shape(&m->layers[l], which, dims, &ndim))
                continue;
            dn_status st = match_param(f, m, &m->layers[l], which, &src[2 * l + which], err);
            if (st != DN_OK)
                return st;
        }
    }
    m->params = dn_alloc_floats(m->n_params);
    if (!m->params)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for %zu parameters", f->path,
                       m->n_params);
    for (int i = 0; i < 2 * m->n_layers; i++) {
        if (!src[i])
            continue;
        const dn_layer *ly = &m->layers[i / 2];
        float *dst = m->params + (i % 2 ? ly->b_off : ly->w_off);
        const uint8_t *from = f->data + src[i]->begin;
        for (uint64_t j = 0; j < src[i]->nelem; j++)
            dst[j] = dn_st_get_f32(from + 4 * j);
        dn_status st = dn_st_check_finite(f->path, src[i]->name, dst, (size_t)src[i]->nelem,
                                          "not loaded", err);
        if (st != DN_OK)
            return st;
    }
    return DN_OK;
}

/* The tensors no parameter took, copied into x (zeroed by the caller;
 * freed by the caller on failure) or, when x is NULL, only checked to be
 * finite, so that a file is refused the same way whoever asks. */
static dn_status take_extra_tensors(const st_file *f, dn_file_extras *x, dn_error *err)
{
    char nb[64];
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = &f->t[i];
        if (t->used)
            continue;
        if (x && x->n_tensors == DN_FILE_MAX_TENSORS)
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': more than %d tensors "
                           "besides the parameters", f->path,
                           dn_st_safe_name(nb, sizeof nb, t->name), DN_FILE_MAX_TENSORS);
        if (x && strlen(t->name) >= sizeof x->tensors[0].name)
            return dn_fail(err, DN_ERR_FORMAT, "%s: tensor '%s': name longer than %zu "
                           "bytes", f->path, dn_st_safe_name(nb, sizeof nb, t->name),
                           sizeof x->tensors[0].name - 1);
        float *d = malloc(t->nelem ? (size_t)t->nelem * sizeof(float) : sizeof(float));
        if (!d)
            return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", f->path);
        for (uint64_t j = 0; j < t->nelem; j++)
            d[j] = dn_st_get_f32(f->data + t->begin + 4 * j);
        dn_status st = dn_st_check_finite(f->path, t->name, d, (size_t)t->nelem,
                                          "not loaded", err);
        if (st != DN_OK || !x) {
            free(d);
            if (st != DN_OK)
                return st;
            continue;
        }
        int k = x->n_tensors++;
        snprintf(x->tensors[k].name, sizeof x->tensors[k].name, "%s", t->name);
        x->tensors[k].data = d;
        x->tensors[k].len = (size_t)t->nelem;
    }
    return DN_OK;
}

/* The non-standard metadata into x. */
static dn_status take_extra_meta(const st_file *f, dn_file_extras *x, dn_error *err)
{
    if (!f->meta)
        return DN_OK;
    char nb[64];
    const char *key;
    json_t *val;
    json_object_foreach(f->meta, key, val) {
        if (dn_st_is_standard_key(key))
            continue;
        const char *s = json_string_value(val);
        if (x->n_meta == DN_FILE_MAX_META)
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\": more than %d "
                           "entries besides the standard ones", f->path,
                           dn_st_safe_name(nb, sizeof nb, key), DN_FILE_MAX_META);
        if (strlen(key) >= sizeof x->meta[0].key || strlen(s) >= sizeof x->meta[0].value)
            return dn_fail(err, DN_ERR_FORMAT, "%s: metadata \"%s\": key or value too "
                           "long (at most %zu and %zu bytes)", f->path,
                           dn_st_safe_name(nb, sizeof nb, key), sizeof x->meta[0].key - 1,
                           sizeof x->meta[0].value - 1);
        int k = x->n_meta++;
        snprintf(x->meta[k].key, sizeof x->meta[k].key, "%s", key);
        snprintf(x->meta[k].value, sizeof x->meta[k].value, "%s", s);
    }
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */
/* ------------------------------------------------------------------------ */

dn_model *dn_model_load(const char *path, dn_file_extras *extras, dn_error *err)
{
    if (extras)
        memset(extras, 0, sizeof *extras);
    if (!path || !*path) {
        dn_fail(err, DN_ERR_ARG, "dn_model_load: no path");
        return NULL;
    }
    st_file f;
    dn_model *m = calloc(1, sizeof *m);
    dn_status st = m ? DN_OK : dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", path);
    if (st == DN_OK)
        st = dn_st_parse(&f, path, err);
    else
        memset(&f, 0, sizeof f);
    if (st == DN_OK)
        st = read_meta(&f, m, err);
    if (st == DN_OK)
        st = take_params(&f, m, err);
    if (st == DN_OK)
        st = take_extra_tensors(&f, extras, err);
    if (st == DN_OK && extras)
        st = take_extra_meta(&f, extras, err);
    dn_st_free(&f);
    if (st != DN_OK) {
        dn_model_free(m);
        if (extras)
            dn_file_extras_free(extras);
        return NULL;
    }
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
