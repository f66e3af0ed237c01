/*
 * test.h - what every digitnet test includes: cmocka, the public API and a
 * few helpers (paths, temporary files, running the command).
 */
#ifndef DN_TEST_H
#define DN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "digitnet.h"

/* Directory of the real MNIST files (DIGITNET_TEST_DATA or data/mnist). */
const char *t_mnist_dir(void);
/* The one policy for tests that need MNIST: `make test` fetches it first
 * (scripts/fetch-mnist); a test run without it skips every test that needs
 * it, saying why, and tests/run counts the skips. t_have_mnist says whether
 * the four files are in t_mnist_dir(); t_need_mnist skips the calling test
 * when they are not. */
int t_have_mnist(void);
void t_need_mnist(void);
/* For a group setup: loads split ("train" or "test") of MNIST into ds when
 * it is there (ds stays zeroed when it is not, and the tests skip through
 * t_need_mnist). Returns 0, or -1 after a message for a copy that is there
 * but cannot be read, which fails the group. */
int t_load_mnist(dn_dataset *ds, const char *split);
/* The same for Fashion-MNIST (installed by scripts/install-deps). */
#define T_FASHION_DIR "/usr/share/datasets/fashion-mnist"
void t_need_fashion(void);
/* A fresh private temporary directory for this process (created once). */
const char *t_tmpdir(void);
/* Joins t_tmpdir() and name into a static-per-call buffer the caller copies. */
char *t_tmppath(char *buf, size_t size, const char *name);
/* Writes size bytes to path; fails the test on error. */
void t_write_file(const char *path, const void *data, size_t size);
/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL if it
 * cannot be read. */
char *t_read_file(const char *path, size_t *size);
/* Runs a shell command line with stdin from /dev/null, capturing stdout
 * and stderr into out (may be NULL). Returns the exit status (128+signal
 * if killed, -1 if it could not run). */
int t_sh(char *out, size_t out_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs the digitnet command ($DN_BIN, default ./digitnet) with a shell
 * argument string, capturing stdout and stderr into out (may be NULL).
 * Returns the exit status (128+signal if killed). */
int t_run(char *out, size_t out_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs fn(arg, msg, size) in a forked child that is killed after `seconds`
 * (so a hang fails the test instead of stalling it), with its address
 * space capped at 1 GiB more than it starts with (except under
 * AddressSanitizer, which needs terabytes). fn must not use
 * cmocka's assertions; it returns a small code and may write a message.
 * Returns that code, or -1 if the child hung or crashed; *grew_kb (may be
 * NULL) gets how far the child's peak resident memory rose during fn, and
 * msg fn's message. */
int t_in_child(int (*fn)(void *arg, char *msg, size_t size), void *arg, unsigned seconds,
               long *grew_kb, char *msg, size_t msg_size);

#endif
