/*
 * fileio.c - how the library touches files: opening what it reads, and
 * writing atomically.
 *
 * Reading: every file the library reads (model files, IDX files, images)
 * is opened here without blocking and checked to be a regular file before
 * a byte is read, so that a FIFO, a device or a directory named by mistake
 * (or by an attacker) gives a clear error instead of a hang or an endless
 * read, and the reader knows the real size to check a header against.
 *
 * Writing: a temporary file in the same directory (so rename is atomic),
 * synced before the rename, so that a crash or a full disk leaves either
 * the old file or the complete new one, never a half-written one; in two
 * steps (stage, commit) when several files change together, and the
 * temporary files of writers that died are found again.
 */
#include "internal.h"

#include <ctype.h>
#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "a special file";
}

dn_status dn_open_regular(const char *path, int *fd, uint64_t *size, dn_error *err)
{
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait
     * forever; for a regular file it changes nothing. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0)
        return dn_fail(err, DN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return dn_fail(err, DN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return dn_fail(err, DN_ERR_IO, "%s: is %s, not a regular file", path,
                       file_kind(st.st_mode));
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0)
        (void)fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    *size = (uint64_t)st.st_size;
    return DN_OK;
}

dn_status dn_read_at(int fd, const char *path, void *buf, uint64_t n, uint64_t pos,
                     dn_error *err)
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

dn_status dn_read_regular(const char *path, uint64_t max, uint8_t **data, size_t *size,
                          dn_error *err)
{
    *data = NULL;
    *size = 0;
    int fd;
    uint64_t len = 0;
    dn_status st = dn_open_regular(path, &fd, &len, err);
    if (st)
        return st;
    if (len > max || len > SIZE_MAX - 1) {
        close(fd);
        return dn_fail(err, DN_ERR_FORMAT, "%s: %llu bytes, more than the %llu this file "
                       "may have", path, (unsigned long long)len, (unsigned long long)max);
    }
    /* One spare byte, so that an empty file still gets a buffer. */
    uint8_t *buf = malloc((size_t)len + 1);
    if (!buf) {
        close(fd);
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory reading %llu bytes", path,
                       (unsigned long long)len);
    }
    st = dn_read_at(fd, path, buf, len, 0, err);
    close(fd);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    *size = (size_t)len;
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The system's reason for a failed write, with what to do about a file
 * size limit (write() fails with EFBIG once SIGXFSZ is ignored). */
static const char *why_not(int e)
{
    if (e == EFBIG)
        return "File too large (over this process's file size limit, see ulimit -f)";
    return strerror(e);
}

/* The directory part of path ("." for a bare name), malloc'd. */
static char *dir_of(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return NULL;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    return dir;
}

/* Writes the parts to a new temporary file PATH.PID-XXXXXX.tmp (in the
 * same directory as path, so that rename is atomic; the pid tells a later
 * run whether its writer is still alive) and syncs it. */
static dn_status stage_parts(const char *path, const void *const *parts, const size_t *sizes,
                             int nparts, char **tmp_out, dn_error *err)
{
    *tmp_out = NULL;
    size_t size = strlen(path) + 40;
    char *tmp = malloc(size);
    if (!tmp)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", path);
    /* The ".tmp" suffix matches .gitignore should a crash leave one. */
    snprintf(tmp, size, "%s.%ld-XXXXXX.tmp", path, (long)getpid());
    int fd = mkstemps(tmp, 4);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return dn_fail(err, DN_ERR_IO, "%s: cannot create a temporary file next to it: %s",
                       path, why_not(e));
    }
    /* mkstemp makes the file 0600; our files are plain shareable files. */
    struct stat sb;
    mode_t mode = stat(path, &sb) == 0 ? (sb.st_mode & 0777) : 0644;
    (void)fchmod(fd, mode);

    const char *what = "write";
    int ok = 1;
    for (int i = 0; ok && i < nparts; i++)
        ok = !sizes[i] || write_all(fd, parts[i], sizes[i]) == 0;
    if (ok && (what = "sync", fsync(fd) != 0))
        ok = 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        e = errno;
        what = "close";
        ok = 0;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return dn_fail(err, DN_ERR_IO, "%s: cannot %s it: %s", path, what, why_not(e));
    }
    *tmp_out = tmp;
    return DN_OK;
}

dn_status dn_file_commit(char *tmp, const char *path, dn_error *err)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        dn_file_discard(tmp);
        return dn_fail(err, DN_ERR_IO, "%s: cannot rename the temporary file onto it: %s",
                       path, why_not(e));
    }
    free(tmp);
    /* Make the rename itself durable; a failure here loses nothing that
     * the caller could act on, so it is not reported. */
    char *dir = dir_of(path);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    return DN_OK;
}

void dn_file_discard(char *tmp)
{
    if (tmp)
        unlink(tmp);
    free(tmp);
}

dn_status dn_write_atomic_parts(const char *path, const void *const *parts,
                              const size_t *sizes, int nparts, dn_error *err)
{
    char *tmp;
    dn_status st = stage_parts(path, parts, sizes, nparts, &tmp, err);
    return st ? st : dn_file_commit(tmp, path, err);
}

dn_status dn_file_stage(const char *path, const void *data, size_t size, char **tmp,
                        dn_error *err)
{
    if (!path || !tmp || (!data && size))
        return dn_fail(err, DN_ERR_ARG, "dn_file_stage: NULL argument");
    const void *parts[1] = {data};
    size_t sizes[1] = {size};
    return stage_parts(path, parts, sizes, 1, tmp, err);
}

/* Whether name (in the directory of path) is PATH.PID-XXXXXX.tmp, a
 * temporary file of path; *pid gets PID. */
static int temp_of(const char *name, const char *base, long *pid)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || name[bl] != '.')
        return 0;
    char *end;
    const char *digits = name + bl + 1;
    if (*digits < '1' || *digits > '9')
        return 0;
    errno = 0;
    *pid = strtol(digits, &end, 10);
    if (errno || *pid > INT_MAX || *end != '-' || strlen(end + 1) != 6 + 4 ||
        strcmp(end + 7, ".tmp") != 0)
        return 0;
    for (int i = 1; i <= 6; i++)
        if (!isalnum((unsigned char)end[i]))
            return 0;
    return 1;
}

/* Whether process pid is gone (so its temporary files are orphans). A
 * process we may not signal is alive. */
static int dead(long pid)
{
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

dn_status dn_file_stale(const char *path, char ***names, size_t *n, dn_error *err)
{
    *names = NULL;
    *n = 0;
    char *dir = dir_of(path);
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        int e = dir ? errno : ENOMEM;
        free(dir);
        return dn_fail(err, DN_ERR_IO, "%s: cannot list its directory: %s", path, strerror(e));
    }
    dn_status st = DN_OK;
    size_t cap = 0;
    struct dirent *e;
    long pid;
    while (!st && (e = readdir(d)) != NULL) {
        if (!temp_of(e->d_name, base, &pid) || !dead(pid))
            continue;
        char **grown = *n < cap ? *names : realloc(*names, (cap = 2 * cap + 4) * sizeof *grown);
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *full = grown ? malloc(len) : NULL;
        if (grown)
            *names = grown;
        if (!full) {
            st = dn_fail(err, DN_ERR_NOMEM, "%s: out of memory listing its directory", path);
            break;
        }
        snprintf(full, len, "%s/%s", dir, e->d_name);
        (*names)[(*n)++] = full;
    }
    closedir(d);
    free(dir);
    if (st) {
        for (size_t i = 0; i < *n; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
    }
    return st;
}

dn_status dn_file_write_atomic(const char *path, const void *data, size_t size, dn_error *err)
{
    if (!path || (!data && size))
        return dn_fail(err, DN_ERR_ARG, "dn_file_write_atomic: NULL argument");
    const void *parts[1] = {data};
    size_t sizes[1] = {size};
    return dn_write_atomic_parts(path, parts, sizes, 1, err);
}
