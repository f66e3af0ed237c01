/*
 * files.c - the file system as the subcommands need it: output
 * directories (mkdir -p), checking that a file can be written before a long
 * run, opening a file to read without blocking on a FIFO, and the image
 * files of a directory.
 */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p: creates dir and its parents. Returns 0, or -1 with errno. */
static int make_dirs(const char *dir)
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

int cli_make_out_dir(const char *dir)
{
    if (make_dirs(dir) != 0)
        return cli_fail("%s: cannot create the directory: %s", dir, strerror(errno));
    return 0;
}

int cli_check_writable(const char *path, char *why, size_t size)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(why, size, "it is a directory");
        return CLI_EXIT_USAGE;
    }
    char dir[4096], tmp[4200];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    /* Named as the library names path's temporary files, so that a kill
     * between here and the unlink leaves a file the next run clears away
     * with the other stale ones (dn_file_stale). */
    snprintf(tmp, sizeof tmp, "%s.%ld-XXXXXX.tmp", path, (long)getpid());
    int fd = mkstemps(tmp, 4);
    if (fd < 0) {
        int e = errno;
        snprintf(why, size, "cannot create files in '%s': %s", dir, strerror(e));
        return e == ENOENT || e == ENOTDIR ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    close(fd);
    unlink(tmp);
    return 0;
}

FILE *cli_fopen_regular(const char *path, int *missing, char *why, size_t size)
{
    if (missing)
        *missing = 0;
    /* O_NONBLOCK: a FIFO without a writer would otherwise block open. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (missing)
            *missing = e == ENOENT;
        snprintf(why, size, "%s", strerror(e));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, size, "it is %s, not a regular file",
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                                                                            : "a special file");
        close(fd);
        return NULL;
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(why, size, "%s", strerror(errno));
        close(fd);
    }
    return f;
}

int cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
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
        return cli_error(err, DN_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
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
                st = cli_error(err, DN_ERR_NOMEM, "%s: out of memory listing images", dir);
                break;
            }
            v = nv;
        }
        size_t sz = strlen(dir) + strlen(e->d_name) + 2;
        if (!(v[len] = malloc(sz))) {
            st = cli_error(err, DN_ERR_NOMEM, "%s: out of memory listing images", dir);
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
        return cli_error(err, DN_ERR_IO,
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
