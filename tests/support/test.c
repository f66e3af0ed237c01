/*
 * test.c - helpers shared by the digitnet tests.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *t_mnist_dir(void)
{
    const char *d = getenv("DIGITNET_TEST_DATA");
    return d && *d ? d : "data/mnist";
}

/* A file of the dataset under any of the names dn_dataset_load accepts:
 * plain or .gz, with "-idx" or ".idx". */
static int have_file(const char *dir, const char *stem, const char *kind)
{
    static const char *const sep[] = {"-", "."}, *const ext[] = {"", ".gz"};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            char path[1024];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s%s%s%s", dir, stem, sep[i], kind, ext[j]);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                return 1;
        }
    return 0;
}

static int have_dataset(const char *dir)
{
    return have_file(dir, "train-images", "idx3-ubyte") &&
           have_file(dir, "train-labels", "idx1-ubyte") &&
           have_file(dir, "t10k-images", "idx3-ubyte") &&
           have_file(dir, "t10k-labels", "idx1-ubyte");
}

int t_have_mnist(void)
{
    return have_dataset(t_mnist_dir());
}

void t_need_mnist(void)
{
    if (!t_have_mnist()) {
        print_message("skipped: MNIST is not in %s (scripts/fetch-mnist puts it there; "
                      "make test runs it)\n", t_mnist_dir());
        skip();
    }
}

int t_load_mnist(dn_dataset *ds, const char *split)
{
    memset(ds, 0, sizeof *ds);
    dn_error err = {0};
    if (t_have_mnist() && dn_dataset_load(ds, t_mnist_dir(), split, "mnist", &err) != DN_OK) {
        fprintf(stderr, "cannot load MNIST from %s: %s\n", t_mnist_dir(), err.msg);
        return -1;
    }
    return 0;
}

void t_need_fashion(void)
{
    if (!have_dataset(T_FASHION_DIR)) {
        print_message("skipped: Fashion-MNIST is not in " T_FASHION_DIR
                      " (scripts/install-deps installs dataset-fashion-mnist)\n");
        skip();
    }
}

static char tmp_dir[256];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Runs at exit: a test leaves no files behind unless DN_TEST_KEEP=1. */
static void remove_tmpdir(void)
{
    const char *keep = getenv("DN_TEST_KEEP");
    if (tmp_dir[0] && !(keep && *keep == '1'))
        nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *t_tmpdir(void)
{
    if (!tmp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/dntest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir))
            fail_msg("cannot create a temporary directory");
        atexit(remove_tmpdir);
    }
    return tmp_dir;
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

int t_sh(char *out, size_t out_size, const char *fmt, ...)
{
    char line[8192], cmd[9000], outpath[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    static int counter;
    snprintf(outpath, sizeof outpath, "%s/run%d.out", t_tmpdir(), counter++);
    snprintf(cmd, sizeof cmd, "( %s ) >'%s' 2>&1 </dev/null", line, outpath);
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

/* What the child of t_in_child sends back. */
typedef struct child_report {
    int rc;
    long grew_kb;
    char msg[512];
} child_report;

/* AddressSanitizer reserves terabytes of address space for its shadow, so
 * an address-space limit only works without it. */
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif

/* Caps the child's address space at what it has plus `extra` bytes, so
 * that code trusting a hostile size fails an allocation instead of
 * taking the shared machine's memory. */
static void limit_memory(size_t extra)
{
#ifndef T_ASAN
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    if (pages) {
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = pages * (size_t)sysconf(_SC_PAGESIZE) + extra;
        setrlimit(RLIMIT_AS, &rl);
    }
#else
    (void)extra;
#endif
}

static long peak_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

int t_in_child(int (*fn)(void *arg, char *msg, size_t size), void *arg, unsigned seconds,
               long *grew_kb, char *msg, size_t msg_size)
{
    int fds[2];
    if (pipe(fds) != 0)
        fail_msg("pipe failed");
    /* Not inherited by what fn runs: a hung grandchild holding the write
     * end would keep the parent waiting for the report forever. */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        close(fds[0]);
        /* The default action of SIGALRM ends the child: a hang shows up
         * as a signal, not as a test that never finishes. */
        signal(SIGALRM, SIG_DFL);
        alarm(seconds);
        limit_memory((size_t)1 << 30);
        child_report r;
        memset(&r, 0, sizeof r);
        /* A fork child's peak starts at the parent's size at the fork, so
         * the difference is what fn itself needed. */
        long before = peak_kb();
        r.rc = fn(arg, r.msg, sizeof r.msg);
        r.grew_kb = peak_kb() - before;
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    child_report r;
    memset(&r, 0, sizeof r);
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (grew_kb)
        *grew_kb = r.grew_kb;
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", got == sizeof r ? r.msg : "(the child died)");
    if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return r.rc;
}

int t_run(char *out, size_t out_size, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("DN_BIN");
    return t_sh(out, out_size, "%s %s", bin && *bin ? bin : "./digitnet", args);
}
