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
 * the old file or the complete new one, never a half-written one.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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
    uint64_t len;
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

/* Writes the parts to path through a temporary file in the same directory
 * (so that rename is atomic), synced before the rename so that a crash
 * leaves either the old file or the complete new one. */
dn_status dn_write_atomic_parts(const char *path, const void *const *parts,
                              const size_t *sizes, int nparts, dn_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", path);
    /* The ".tmp" suffix matches .gitignore should a crash leave one. */
    snprintf(tmp, plen + 16, "%s.XXXXXX.tmp", path);
    int fd = mkstemps(tmp, 4);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return dn_fail(err, DN_ERR_IO, "%s: cannot create a temporary file "
                       "next to it: %s", path, strerror(e));
    }
    /* mkstemp makes the file 0600; our files are plain shareable files. */
    struct stat sb;
    mode_t mode = stat(path, &sb) == 0 ? (sb.st_mode & 0777) : 0644;
    (void)fchmod(fd, mode);

    const char *what = "write";
    for (int i = 0; i < nparts; i++)
        if (sizes[i] && write_all(fd, parts[i], sizes[i]) != 0)
            goto fail;
    what = "sync";
    if (fsync(fd) != 0)
        goto fail;
    what = "close";
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    what = "rename the temporary file onto";
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);

    /* Make the rename itself durable; a failure here loses nothing that
     * the caller could act on, so it is not reported. */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            strcpy(dir, ".");
        else if (slash == dir)
            slash[1] = 0;
        else
            *slash = 0;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return DN_OK;

fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return dn_fail(err, DN_ERR_IO, "%s: cannot %s it: %s", path, what, strerror(e));
}

dn_status dn_file_write_atomic(const char *path, const void *data, size_t size, dn_error *err)
{
    if (!path || (!data && size))
        return dn_fail(err, DN_ERR_ARG, "dn_file_write_atomic: NULL argument");
    const void *parts[1] = {data};
    size_t sizes[1] = {size};
    return dn_write_atomic_parts(path, parts, sizes, 1, err);
}
