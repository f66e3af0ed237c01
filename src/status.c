/*
 * status.c - error reporting and aligned allocation.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
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

/* calloc, aligned to 64 bytes by hand (the pointer calloc gave is kept
 * just below the block for dn_free): a large calloc gets fresh zero pages
 * from the kernel without writing them, so a buffer a pass never uses
 * (the general kernels' outputs, when the fast kernels run) costs neither
 * a memset nor resident memory, where aligned_alloc + memset touched
 * every page. */
void *dn_alloc_bytes(size_t n)
{
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n || rounded > SIZE_MAX - 128)
        return NULL;
    if (rounded == 0)
        rounded = 64;
    char *raw = calloc(1, rounded + 128);
    if (!raw)
        return NULL;
    char *p = (char *)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    memcpy(p - sizeof(void *), &raw, sizeof raw);
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
    if (!p)
        return;
    void *raw;
    memcpy(&raw, (char *)p - sizeof(void *), sizeof raw);
    free(raw);
}
