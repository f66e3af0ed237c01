/*
 * paths.c - no output of a command may overwrite one of its inputs or
 * another of its outputs (`train --resume M --metrics M` would destroy the
 * checkpoint, `eval --logprobs-out MODEL` the model). Files are compared as
 * the system sees them: the same device and inode for files that exist, so
 * "./m", "dir/../m" and a link to m are all m; the resolved directory and
 * name for files that do not exist yet.
 */
#include "paths.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cli_paths_add(cli_paths *p, int output, const char *what, const char *path)
{
    if (p->oom)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        struct cli_path *v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            p->oom = 1;
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    struct cli_path *e = &p->v[p->n];
    e->what = strdup(what);
    e->path = strdup(path);
    e->output = output;
    if (!e->what || !e->path) {
        free(e->what);
        free(e->path);
        p->oom = 1;
        return;
    }
    p->n++;
}

void cli_paths_add_data(cli_paths *p, const char *dir, const char *split)
{
    char images[4096], labels[4096], what[64];
    dn_error err = {0};
    if (dn_dataset_files(dir, split, images, labels, sizeof images, &err) != DN_OK)
        return;
    snprintf(what, sizeof what, "the %s images", split);
    cli_paths_add(p, 0, what, images);
    snprintf(what, sizeof what, "the %s labels", split);
    cli_paths_add(p, 0, what, labels);
}

void cli_paths_free(cli_paths *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].what);
        free(p->v[i].path);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* What identifies a file: device and inode if it exists, else its
 * resolved path (the directory through realpath, then the name). */
typedef struct file_id {
    int exists;
    dev_t dev;
    ino_t ino;
    char *name;             /* malloc'd; when it does not exist */
    size_t index;           /* in the cli_paths list */
} file_id;

static int file_id_of(const char *path, file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(path, &st) == 0) {
        id->exists = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return 0;
    }
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(path) + PATH_MAX + 2;
    if (!(id->name = malloc(len)))
        return -1;
    if (realpath(dir, real))
        snprintf(id->name, len, "%s/%s", real, base);
    else
        snprintf(id->name, len, "%s", path);
    return 0;
}

static int cmp_id(const void *pa, const void *pb)
{
    const file_id *a = pa, *b = pb;
    if (a->exists != b->exists)
        return a->exists - b->exists;
    if (!a->exists) {
        int c = strcmp(a->name, b->name);
        return c ? c : (a->index > b->index) - (a->index < b->index);
    }
    if (a->dev != b->dev)
        return a->dev < b->dev ? -1 : 1;
    if (a->ino != b->ino)
        return a->ino < b->ino ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int same_id(const file_id *a, const file_id *b)
{
    if (a->exists != b->exists)
        return 0;
    return a->exists ? a->dev == b->dev && a->ino == b->ino : !strcmp(a->name, b->name);
}

int cli_same_file(const char *a, const char *b)
{
    file_id x = {0}, y = {0};
    int same = file_id_of(a, &x) == 0 && file_id_of(b, &y) == 0 && same_id(&x, &y);
    free(x.name);
    free(y.name);
    return same;
}

/* The first pair in the sorted ids [lo, hi) of one file that involves an
 * output, preferring an input as the other file; 1 with *out and *other
 * set, or 0. */
static int pick_pair(const file_id *ids, size_t lo, size_t hi, const cli_paths *p,
                     size_t *out, size_t *other)
{
    size_t o = hi, in = hi;
    for (size_t k = lo; k < hi; k++) {
        const struct cli_path *e = &p->v[ids[k].index];
        if (e->output && o == hi)
            o = k;
        else if (!e->output && in == hi)
            in = k;
    }
    if (o == hi)
        return 0;
    *out = ids[o].index;
    *other = ids[in < hi ? in : (o + 1 < hi ? o + 1 : lo)].index;
    return 1;
}

int cli_paths_check(const char *cmd, cli_paths *p)
{
    file_id *ids = p->oom ? NULL : calloc(p->n ? p->n : 1, sizeof *ids);
    int rc = ids ? 0 : cli_fail("out of memory checking the files of %s", cmd);
    for (size_t i = 0; !rc && i < p->n; i++) {
        if (file_id_of(p->v[i].path, &ids[i]) != 0)
            rc = cli_fail("out of memory checking the files of %s", cmd);
        ids[i].index = i;
    }
    if (!rc)
        qsort(ids, p->n, sizeof *ids, cmp_id);
    /* Of several collisions, the one of the earliest output in the list
     * (the options the user gave come before derived names). */
    size_t best = p->n, best_other = 0;
    for (size_t lo = 0, hi; !rc && lo < p->n; lo = hi) {
        for (hi = lo + 1; hi < p->n && same_id(&ids[lo], &ids[hi]); hi++)
            ;
        size_t o, other;
        if (hi - lo > 1 && pick_pair(ids, lo, hi, p, &o, &other) && o < best) {
            best = o;
            best_other = other;
        }
    }
    if (!rc && best < p->n) {
        const struct cli_path *a = &p->v[best], *b = &p->v[best_other];
        rc = cli_usage(cmd, b->output ? "%s '%s' and %s '%s' are the same file; choose "
                                        "another path"
                                      : "%s '%s' would overwrite %s '%s'; choose another path",
                       a->what, a->path, b->what, b->path);
    }
    for (size_t i = 0; ids && i < p->n; i++)
        free(ids[i].name);
    free(ids);
    cli_paths_free(p);
    return rc;
}
