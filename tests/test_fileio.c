/*
 * test_fileio.c - atomic writes in the library: the two steps (stage,
 * commit or discard) and what each leaves on disk, temporary files named
 * after their writer, the orphans of dead writers found (and nothing
 * else), and a file size limit reported as an error with nothing left
 * behind.
 */
#include "runs.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A new directory under the temporary one. */
static void new_dir(const char *name, char *dir, size_t size)
{
    t_tmppath(dir, size, name);
    assert_int_equal(mkdir(dir, 0755), 0);
}

static void test_stage_commit_discard(void **state)
{
    (void)state;
    char dir[600], path[700], others[1024], expect[128];
    new_dir("stage", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/file", dir);
    t_write_file(path, "old", 3);
    dn_error err = {0};
    char *tmp = NULL;
    assert_int_equal(dn_file_stage(path, "new!", 4, &tmp, &err), DN_OK);
    assert_non_null(tmp);
    /* PATH.PID-XXXXXX.tmp, next to path, complete; path untouched. */
    snprintf(expect, sizeof expect, "/file.%ld-", (long)getpid());
    assert_non_null(strstr(tmp, expect));
    assert_int_equal(strlen(strstr(tmp, expect)) - strlen(expect), 6 + 4);
    assert_string_equal(tmp + strlen(tmp) - 4, ".tmp");
    assert_true(t_file_is(tmp, "new!", 4));
    assert_true(t_file_is(path, "old", 3));
    assert_int_equal(dn_file_commit(tmp, path, &err), DN_OK);
    assert_true(t_file_is(path, "new!", 4));
    const char *const only[] = {"file", NULL};
    assert_int_equal(t_other_files(dir, only, others, sizeof others), 0);

    assert_int_equal(dn_file_stage(path, "newer", 5, &tmp, &err), DN_OK);
    dn_file_discard(tmp);
    assert_true(t_file_is(path, "new!", 4));
    assert_int_equal(t_other_files(dir, only, others, sizeof others), 0);
    /* A directory that does not exist: an error naming the file. */
    snprintf(path, sizeof path, "%s/no/file", dir);
    assert_int_equal(dn_file_stage(path, "x", 1, &tmp, &err), DN_ERR_IO);
    assert_null(tmp);
    assert_non_null(strstr(err.msg, path));
}

static int listed(char **names, size_t n, const char *suffix)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) >= strlen(suffix) &&
            !strcmp(names[i] + strlen(names[i]) - strlen(suffix), suffix))
            return 1;
    return 0;
}

static void test_stale_lists_only_dead_writers_files(void **state)
{
    (void)state;
    char dir[600], path[700], name[700];
    new_dir("stale", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    t_write_file(path, "model", 5);
    long dead = (long)t_dead_pid(), live = (long)getpid();
    const struct {
        const char *fmt;
        long pid;
        int stale;
    } files[] = {
        {"m.safetensors.%ld-abcDEF.tmp", 0, 1},          /* a dead writer's */
        {"m.safetensors.%ld-a1b2c3.tmp", 0, 1},
        {"m.safetensors.%ld-abcdef.tmp", 1, 0},          /* this process's: alive */
        {"m.safetensors.metrics.jsonl.%ld-abcdef.tmp", 0, 0}, /* another file's */
        {"m.safetensors.%ld-abcde.tmp", 0, 0},           /* not our pattern */
        {"m.safetensors.%ld-abcdefg.tmp", 0, 0},
        {"m.safetensors.%ld-abc-ef.tmp", 0, 0},
        {"m.safetensors.x%ld-abcdef.tmp", 0, 0},
        {"m.safetensors.%ld-abcdef.tmpx", 0, 0},
        {"n.safetensors.%ld-abcdef.tmp", 0, 0},
    };
    size_t nf = sizeof files / sizeof files[0];
    for (size_t i = 0; i < nf; i++) {
        snprintf(name, sizeof name, "%s/", dir);
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, files[i].fmt, files[i].pid ? live : dead);
        t_write_file(name, "x", 1);
    }
    char **stale = NULL;
    size_t n = 0;
    dn_error err = {0};
    assert_int_equal(dn_file_stale(path, &stale, &n, &err), DN_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < nf; i++) {
        snprintf(name, sizeof name, files[i].fmt, files[i].pid ? live : dead);
        char suffix[720];
        snprintf(suffix, sizeof suffix, "/%s", name);
        if (listed(stale, n, suffix) != files[i].stale)
            fail_msg("%s: listed %d, expected %d", name, !files[i].stale, files[i].stale);
    }
    for (size_t i = 0; i < n; i++)
        free(stale[i]);
    free(stale);
    snprintf(path, sizeof path, "%s/none/m", dir);
    assert_int_equal(dn_file_stale(path, &stale, &n, &err), DN_ERR_IO);
}

/* In a child with SIGXFSZ ignored and a 4 KiB file size limit: writing
 * 64 KiB over an existing file fails with a message naming the limit, and
 * leaves the old file and nothing else. */
static void test_file_size_limit_is_an_error(void **state)
{
    (void)state;
    char dir[600], path[700], msg[512];
    new_dir("fsize", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/f", dir);
    t_write_file(path, "old", 3);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        static char big[65536];
        dn_error err = {0};
        dn_status st = dn_file_write_atomic(path, big, sizeof big, &err);
        ssize_t w = write(fds[1], err.msg, strlen(err.msg) + 1);
        _exit(st == DN_ERR_IO && w > 0 ? 0 : 1);
    }
    close(fds[1]);
    ssize_t r = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    msg[r > 0 ? r : 0] = 0;
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child status 0x%x: %s", (unsigned)status, msg);
    assert_non_null(strstr(msg, "File too large"));
    assert_non_null(strstr(msg, "ulimit -f"));
    assert_true(t_file_is(path, "old", 3));
    char others[1024];
    const char *const only[] = {"f", NULL};
    if (t_other_files(dir, only, others, sizeof others))
        fail_msg("left behind: %s", others);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_commit_discard),
        cmocka_unit_test(test_stale_lists_only_dead_writers_files),
        cmocka_unit_test(test_file_size_limit_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
