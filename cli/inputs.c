/*
 * inputs.c - the model and the inputs of predict, show and report.
 */
#include "inputs.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Fills err like the library does, for the errors found here. */
__attribute__((format(printf, 3, 4))) static dn_status fail(dn_error *err, dn_status st,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = st;
    return st;
}

dn_model *cli_load_model(const char *explicit_path)
{
    const char *path = cli_model_path(explicit_path);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        cli_fail("no model file '%s': train one with 'digitnet train' (it writes %s by "
                 "default), or give --model FILE or DIGITNET_MODEL",
                 path, CLI_DEFAULT_MODEL);
        return NULL;
    }
    dn_error err = {0};
    dn_model *m = dn_model_load(path, NULL, &err);
    if (!m) {
        cli_fail_err(&err);
        return NULL;
    }
    if (m->input.c != 1 || m->input.h != DN_IMAGE_SIDE || m->input.w != DN_IMAGE_SIDE) {
        cli_fail("%s: the model takes %dx%dx%d inputs; images are made 1x%dx%d", path,
                 m->input.c, m->input.h, m->input.w, DN_IMAGE_SIDE, DN_IMAGE_SIDE);
        dn_model_free(m);
        return NULL;
    }
    if (dn_model_check_classifier(m, 10, &err) != DN_OK) {
        cli_fail("%s: %s", path, err.msg);
        dn_model_free(m);
        return NULL;
    }
    return m;
}

int cli_load_test_set(const dn_model *m, const char *data_arg, dn_dataset *ds)
{
    dn_error err = {0};
    if (dn_dataset_load(ds, cli_data_dir(m->dataset, data_arg), "test", m->dataset, &err) !=
        DN_OK)
        return cli_fail_err(&err);
    return 0;
}

int cli_images_raw(const dn_model *m, int raw)
{
    return raw || strcmp(m->dataset, "mnist") != 0;
}

int cli_make_out_dir(const char *dir)
{
    if (cli_make_dirs(dir) != 0)
        return cli_fail("%s: cannot create the directory: %s", dir, strerror(errno));
    return 0;
}

dn_status cli_input_image(cli_input *in, const char *path, int raw, dn_error *err)
{
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", path);
    in->index = -1;
    in->label = -1;
    dn_image img;
    dn_status st = dn_image_load(path, &img, err);
    if (st != DN_OK)
        return st;
    if (raw) {
        st = dn_image_raw(&img, in->raw, err);
    } else {
        st = dn_image_preprocess(&img, in->raw, &in->prep, err);
        in->prepped = st == DN_OK;
    }
    dn_image_free(&img);
    return st;
}

dn_status cli_input_mnist(cli_input *in, const dn_dataset *ds, long index, dn_error *err)
{
    memset(in, 0, sizeof *in);
    if (index < 0 || (size_t)index >= ds->n)
        return fail(err, DN_ERR_ARG, "%s test image %ld does not exist (there are %zu: 0..%zu)",
                       ds->name, index, ds->n, ds->n ? ds->n - 1 : 0);
    if (ds->rows != DN_IMAGE_SIDE || ds->cols != DN_IMAGE_SIDE)
        return fail(err, DN_ERR_SHAPE, "%s images are %ux%u, expected %dx%d", ds->name,
                       ds->rows, ds->cols, DN_IMAGE_SIDE, DN_IMAGE_SIDE);
    snprintf(in->name, sizeof in->name, "%s test #%ld", ds->name, index);
    in->index = index;
    in->label = ds->labels[index];
    const uint8_t *px = ds->images + (size_t)index * DN_IMAGE_SIDE * DN_IMAGE_SIDE;
    for (int i = 0; i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++)
        in->raw[i] = px[i] / 255.0f;
    return DN_OK;
}

static int is_image_name(const char *name)
{
    static const char *const exts[] = {"png", "jpg", "jpeg", "bmp", "gif",
                                       "pgm", "ppm", "pnm", "tga"};
    const char *dot = strrchr(name, '.');
    if (name[0] == '.' || !dot)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (!strcasecmp(dot + 1, exts[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_free_list(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

dn_status cli_list_images(const char *dir, char ***paths, size_t *n, dn_error *err)
{
    *paths = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, DN_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **v = NULL;
    size_t len = 0, cap = 0;
    struct dirent *e;
    dn_status st = DN_OK;
    while ((e = readdir(d))) {
        if (!is_image_name(e->d_name))
            continue;
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                st = fail(err, DN_ERR_NOMEM, "%s: out of memory listing images", dir);
                break;
            }
            v = nv;
        }
        size_t sz = strlen(dir) + strlen(e->d_name) + 2;
        if (!(v[len] = malloc(sz))) {
            st = fail(err, DN_ERR_NOMEM, "%s: out of memory listing images", dir);
            break;
        }
        size_t dl = strlen(dir);
        snprintf(v[len], sz, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
        struct stat fs;
        if (stat(v[len], &fs) != 0 || !S_ISREG(fs.st_mode)) {
            free(v[len]);
            continue;
        }
        len++;
    }
    closedir(d);
    if (st != DN_OK) {
        cli_free_list(v, len);
        return st;
    }
    if (len == 0) {
        free(v);
        return fail(err, DN_ERR_IO,
                       "%s: no images in the directory (looked for .png .jpg .jpeg .bmp .gif "
                       ".pgm .ppm .pnm .tga)",
                       dir);
    }
    /* readdir's order is the file system's; sorted is reproducible. */
    qsort(v, len, sizeof *v, cmp_str);
    *paths = v;
    *n = len;
    return DN_OK;
}

int cli_parse_index_list(const char *s, long max, long **v, size_t *n)
{
    if (!s || !*s)
        return -1;
    char buf[64];
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, p, len);
        buf[len] = 0;
        long x;
        if (cli_parse_long(buf, 0, max, &x) != 0)
            return -1;
        long *nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        (*v)[(*n)++] = x;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int cli_make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int cli_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

const char *cli_class_label(const dn_model *m, int c, char *buf, size_t size)
{
    const char *const *names = dn_class_names(m->dataset);
    if (names && c >= 0 && c < 10 && strcmp(m->dataset, "mnist") != 0)
        snprintf(buf, size, "%d %s", c, names[c]);
    else
        snprintf(buf, size, "%d", c);
    return buf;
}

const float *cli_forward_one(const dn_model *m, dn_work *w, const cli_input *in)
{
    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE]; /* (1, 1, 28, 28) */
    memcpy(x, in->raw, sizeof x);
    dn_image_normalize(x, sizeof x / sizeof x[0], m->mean, m->std);
    return dn_model_forward(m, w, x, 1, DN_MODE_EVAL, NULL);
}
