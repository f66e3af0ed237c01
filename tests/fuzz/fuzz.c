/*
 * fuzz.c - helpers of the fuzz targets (see fuzz.h).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_base(void)
{
    if (base[0])
        nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *base_dir(void)
{
    if (!base[0]) {
        /* Shared memory when there is some: libFuzzer writes thousands of
         * files a second. */
        const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(base, sizeof base, "%s/dnfuzz.XXXXXX", root);
        if (!mkdtemp(base))
            fuzz_fail("cannot create a temporary directory in %s", root);
        atexit(remove_base);
    }
    return base;
}

const char *fuzz_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", base_dir(), name);
    mkdir(path, 0700);
    return path;
}

const char *fuzz_file(const char *name, const void *data, size_t size)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", base_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        fuzz_fail("cannot write %s", p);
    return p;
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void fuzz_check_error(dn_status st, const dn_error *err, const char *path)
{
    if (st == DN_OK)
        fuzz_fail("a failure with status DN_OK");
    if (err->status != st)
        fuzz_fail("status %d but the message says %d: %s", (int)st, (int)err->status, err->msg);
    if (!err->msg[0])
        fuzz_fail("an error without a message (status %d)", (int)st);
    if (strchr(err->msg, '\n'))
        fuzz_fail("a message of more than one line: %s", err->msg);
    if (path && !strstr(err->msg, path))
        fuzz_fail("a message that does not name %s: %s", path, err->msg);
}
