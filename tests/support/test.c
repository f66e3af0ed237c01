/*
 * test.c - helpers shared by the digitnet tests.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *t_mnist_dir(void)
{
    const char *d = getenv("DIGITNET_TEST_DATA");
    return d && *d ? d : "data/mnist";
}

const char *t_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/dntest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            fail_msg("cannot create a temporary directory");
    }
    return dir;
}

char *t_tmppath(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", t_tmpdir(), name);
    return buf;
}

void t_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (size)
        assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

char *t_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (size)
            *size = n;
    }
    return buf;
}

int t_run(char *out, size_t out_size, const char *fmt, ...)
{
    char args[4096], cmd[8192], outpath[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("DN_BIN");
    static int counter;
    snprintf(outpath, sizeof outpath, "%s/run%d.out", t_tmpdir(), counter++);
    snprintf(cmd, sizeof cmd, "%s %s >'%s' 2>&1 </dev/null", bin && *bin ? bin : "./digitnet",
             args, outpath);
    int st = system(cmd);
    if (out && out_size) {
        size_t n = 0;
        char *text = t_read_file(outpath, &n);
        snprintf(out, out_size, "%s", text ? text : "");
        free(text);
    }
    unlink(outpath);
    if (st == -1)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}
