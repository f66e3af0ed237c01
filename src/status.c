/*
 * status.c - error reporting and aligned allocation.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dn_status_str(dn_status st)
{
    switch (st) {
    case DN_OK: return "ok";
    case DN_ERR_ARG: return "invalid argument";
    case DN_ERR_IO: return "i/o error";
    case DN_ERR_FORMAT: return "format error";
    case DN_ERR_NOMEM: return "out of memory";
    case DN_ERR_SHAPE: return "shape error";
    case DN_ERR_NUMERIC: return "numeric error";
    case DN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

dn_status dn_fail(dn_error *err, dn_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = st;
        /* Keep the message on one line whatever it quotes. */
        for (char *c = err->msg; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    }
    return st;
}

void *dn_alloc_bytes(size_t n)
{
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n)
        return NULL;
    if (rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

float *dn_alloc_floats(size_t n)
{
    size_t bytes;
    if (!dn_mul_size(n, sizeof(float), &bytes))
        return NULL;
    return dn_alloc_bytes(bytes);
}

void dn_free(void *p)
{
    free(p);
}
