/*
 * internal.h - helpers shared inside libdigitnet; not part of the public API.
 */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

#include "digitnet.h"

#include <stddef.h>
#include <stdint.h>

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

/* Opens path for reading and checks, without blocking, that it is a
 * regular file: a FIFO, device, socket or directory is refused at once
 * (DN_ERR_IO "PATH: is a FIFO (named pipe), not a regular file")
 * instead of hanging in open or read. On success *fd is a blocking,
 * close-on-exec descriptor the caller closes and *size the file's size;
 * on failure *fd is -1. Every file the library reads is opened here. */
dn_status dn_open_regular(const char *path, int *fd, uint64_t *size, dn_error *err);

/* Reads exactly n bytes at offset pos of fd (opened from path, named in
 * messages). DN_ERR_IO on a read error, DN_ERR_FORMAT if the file ends
 * first (it shrank after its size was taken). */
dn_status dn_read_at(int fd, const char *path, void *buf, uint64_t n, uint64_t pos,
                     dn_error *err);

/* Reads the whole regular file at path (opened with dn_open_regular) into
 * a malloc'd buffer *data of *size bytes, which has one spare byte after
 * the end. A file over max bytes is DN_ERR_FORMAT before anything is
 * allocated. */
dn_status dn_read_regular(const char *path, uint64_t max, uint8_t **data, size_t *size,
                          dn_error *err);

/* Reads only the header of an IDX file (images != 0: 0x00000803 with
 * n, rows, cols into dims[0..2]; else labels 0x00000801 with n into
 * dims[0]) and checks the size it implies against the file, as
 * dn_idx_read_images does before reading any payload; so a caller can
 * compare two files' headers before paying for either payload. */
dn_status dn_idx_read_header(const char *path, int images, uint32_t *dims, dn_error *err);

/* DN_ERR_FORMAT naming name for the inputs on which stb_image itself goes
 * wrong (src/stbguard.c): a JPEG Huffman table of more than 256 codes,
 * which overflows stb's tables, and a PGM/PPM header number above INT_MAX,
 * which overflows its int. Other data passes. Called before stb sees it. */
dn_status dn_stb_guard(const uint8_t *p, size_t n, const char *name, dn_error *err);

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

/* Room for any number dn_format_g or dn_format_f writes, NUL included. */
#define DN_FORMAT_MAX 48
/* v as snprintf's "%.*g" (digits 1..17) or "%.*f" (decimals 0..17) writes
 * it, character for character, into b (DN_FORMAT_MAX bytes), several
 * times faster (src/numfmt.c); returns the length. dn_format_f cuts a
 * number of 30 or more integer digits to DN_FORMAT_MAX - 1 characters. */
int dn_format_g(char *b, double v, int digits);
int dn_format_f(char *b, double v, int decimals);

/* a * b into *out; returns 0 on overflow. */
static inline int dn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a)
        return 0;
    *out = a * b;
    return 1;
}

#endif /* DN_INTERNAL_H */
