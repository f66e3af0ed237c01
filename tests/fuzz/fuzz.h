/*
 * fuzz.h - what the fuzz targets share.
 *
 * Each tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput for one
 * reader of untrusted input. It is built two ways:
 *   make fuzz      with clang -fsanitize=fuzzer,address,undefined, run by
 *                  libFuzzer for SECONDS seconds on tests/fuzz/corpus/NAME;
 *                  a crash is written to tests/fuzz/crashes/NAME/
 *   make test      with tests/fuzz/replay.c as main (any compiler, with and
 *                  without ASan+UBSan), replaying tests/fuzz/corpus/NAME
 *                  and tests/fuzz/crashes/NAME, every input that ever
 *                  crashed included.
 * A target checks what the library promises besides not crashing (an
 * error is one line naming the file, what loads saves back the same ...)
 * and calls fuzz_fail when a promise is broken.
 */
#ifndef DN_FUZZ_H
#define DN_FUZZ_H

#include "digitnet.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data written to NAME in a private temporary directory (made once per
 * process, removed at exit); returns its path, valid until the next call
 * with the same name. Aborts if it cannot be written. */
const char *fuzz_file(const char *name, const void *data, size_t size);
/* The private temporary directory (with a trailing component name): for
 * readers that take a directory. */
const char *fuzz_dir(const char *name);

/* Prints "fuzz: <message>" and aborts: the library broke a promise. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A failure must come with a one-line, non-empty message (naming path, if
 * not NULL) and the status must be an error. */
void fuzz_check_error(dn_status st, const dn_error *err, const char *path);

#endif
