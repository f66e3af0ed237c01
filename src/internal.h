/*
 * internal.h - helpers shared inside libdigitnet; not part of the public API.
 */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

#include "digitnet.h"

#include <stddef.h>

#if defined(__GNUC__)
#define DN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DN_PRINTF(a, b)
#endif

/* Fills err (if not NULL) with a formatted one-line message and returns st. */
dn_status dn_fail(dn_error *err, dn_status st, const char *fmt, ...)
    DN_PRINTF(3, 4);

/* 64-byte aligned, zeroed allocation of n floats (or bytes); NULL on
 * overflow or failure. Free with dn_free. */
float *dn_alloc_floats(size_t n);
void *dn_alloc_bytes(size_t n);
void dn_free(void *p);

/* Writes the concatenation of nparts buffers to path atomically (temporary
 * file PATH.PID-XXXXXX.tmp in the same directory, fsync, rename, fsync of
 * the directory; dn_file_stage and dn_file_commit in one). The
 * file keeps the mode of the one it replaces (0644 for a new one). On any
 * failure the temporary file is removed and an existing file at path is
 * left untouched. */
dn_status dn_write_atomic_parts(const char *path, const void *const *parts,
                                const size_t *sizes, int nparts, dn_error *err);

/* dst[i] += src[i] for i < n; vectorised (src/optim.c is built at -O3).
 * The sum of each element is the same as a plain loop's, bit for bit. */
void dn_add_floats(float *restrict dst, const float *restrict src, size_t n);
/* Non-zero if none of v[0..n) is NaN or infinite; vectorised likewise,
 * cheap enough to run on every parameter after every optimizer step. */
int dn_floats_finite(const float *v, size_t n);

/* a * b into *out; returns 0 on overflow. */
static inline int dn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a)
        return 0;
    *out = a * b;
    return 1;
}

#endif /* DN_INTERNAL_H */
