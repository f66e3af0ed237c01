/*
 * runs.c - digitnet in the background, and the files it leaves (runs.h).
 */
#include "runs.h"

#include "test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *t_bin(void)
{
    const char *bin = getenv("DN_BIN");
    return bin && *bin ? bin : "./digitnet";
}

pid_t t_spawn(const char *args, const char *out, const char *log, long fsize)
{
    char cmd[8192];
    if (out)
        snprintf(cmd, sizeof cmd, "exec %s %s >'%s' 2>'%s' </dev/null", t_bin(), args, out, log);
    else
        snprintf(cmd, sizeof cmd, "exec %s %s >'%s' 2>&1 </dev/null", t_bin(), args, log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int t_wait(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int t_wait_within(pid_t pid, double seconds)
{
    for (double t = 0; t < seconds; t += 0.01) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
        if (r < 0)
            return -1;
        t_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    t_wait(pid);
    return -2;
}

int t_run_to(const char *args, const char *out, const char *log, long fsize)
{
    return t_wait(t_spawn(args, out, log, fsize));
}

void t_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int t_wait_for(const char *log, const char *text, double seconds)
{
    for (double t = 0; t < seconds; t += 0.01) {
        char *s = t_read_file(log, NULL);
        int found = s && strstr(s, text) != NULL;
        free(s);
        if (found)
            return 1;
        t_sleep_ms(10);
    }
    return 0;
}

void t_copy(const char *from, const char *to)
{
    size_t n;
    char *data = t_read_file(from, &n);
    if (!data)
        fail_msg("cannot read %s", from);
    t_write_file(to, data, n);
    free(data);
}

int t_file_is(const char *path, const char *data, size_t size)
{
    size_t n;
    char *now = t_read_file(path, &n);
    int same = now && n == size && memcmp(now, data, n) == 0;
    free(now);
    return same;
}

int t_other_files(const char *dir, const char *const *keep, char *buf, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    buf[0] = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int listed = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        for (int i = 0; keep && keep[i] && !listed; i++)
            listed = !strcmp(e->d_name, keep[i]);
        if (listed)
            continue;
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", n ? " " : "", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

pid_t t_dead_pid(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}
