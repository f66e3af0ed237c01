/*
 * runs.h - for the tests of what `digitnet` leaves on disk: running it in
 * the background (with a file size limit, or standard output to a chosen
 * file), waiting for what it prints, and comparing and listing files.
 */
#ifndef DN_TEST_RUNS_H
#define DN_TEST_RUNS_H

#include <stddef.h>
#include <sys/types.h>

/* The digitnet command ($DN_BIN or ./digitnet). */
const char *t_bin(void);

/* Starts `digitnet ARGS` (a shell argument string) with stdin from
 * /dev/null, stdout to `out` and stderr to `log` (out NULL: both to log).
 * fsize > 0 caps the size of any file it writes (setrlimit RLIMIT_FSIZE,
 * what `ulimit -f` does). Returns the pid. */
pid_t t_spawn(const char *args, const char *out, const char *log, long fsize);
/* Waits for pid; its exit code, 128 + the signal that killed it, or -1. */
int t_wait(pid_t pid);
/* The same, but kills pid after `seconds` and returns -2 (a hang). */
int t_wait_within(pid_t pid, double seconds);
/* Runs t_spawn and t_wait. */
int t_run_to(const char *args, const char *out, const char *log, long fsize);
/* Waits until the file log contains text; 0 after `seconds`. */
int t_wait_for(const char *log, const char *text, double seconds);
/* Sleeps ms milliseconds. */
void t_sleep_ms(long ms);

/* Copies a file; fails the test on error. */
void t_copy(const char *from, const char *to);
/* Non-zero if the file at path holds exactly size bytes equal to data. */
int t_file_is(const char *path, const char *data, size_t size);
/* The names in dir other than those listed in keep (a NULL-terminated
 * list), joined by spaces into buf; returns how many. */
int t_other_files(const char *dir, const char *const *keep, char *buf, size_t size);

/* The pid of a process that has exited (for names of dead writers). */
pid_t t_dead_pid(void);

#endif
