/*
 * fileio.c - atomic file writes, shared by model files, pictures and pages.
 *
 * Everything digitnet writes goes through here: a temporary file in the
 * same directory (so rename is atomic), synced before the rename, so that
 * a crash or a full disk leaves either the old file or the complete new
 * one, never a half-written one.
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
