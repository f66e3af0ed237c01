/*
 * idx.c - IDX files (the MNIST container format), plain or gzip-compressed.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of dimensions),
 * one big-endian uint32 per dimension, then the elements. MNIST images are
 * 0x00000803 (uint8, 3 dims: n, rows, cols) and labels 0x00000801 (uint8,
 * 1 dim: n).
 *
 * The header is untrusted: every size is computed with overflow checks, and
 * memory grows as data actually arrives, never past what the header claims.
 * A tiny .gz that claims gigabytes therefore costs only what it really
 * decompresses to before it is refused as truncated. Offsets in messages are
 * byte offsets into the (decompressed) IDX stream.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u

/* First allocation for data whose size is not known from the file system
 * (gzip, pipes); doubled as data arrives. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
/* gzread takes an unsigned int length; read in pieces well below it. */
#define IDX_MAX_READ ((size_t)1 << 30)

/* ------------------------------------------------------------------------ */
/* A byte source: a plain file or a gzip stream                             */
/* ------------------------------------------------------------------------ */

typedef struct idx_src {
    const char *path;
    FILE *f;           /* plain file, or NULL */
    gzFile gz;         /* gzip stream, or NULL */
    int size_known;    /* plain regular file: size is the file's size */
    uint64_t size;
    uint64_t pos;      /* bytes consumed so far (decompressed for gzip) */
} idx_src;

static const char *src_kind(const idx_src *s)
{
    return s->gz ? " (decompressed)" : "";
}

/* What zlib said about a stream that ended early ("unexpected end of
 * file"), for the truncation message; "" for plain files. */
static const char *src_note(idx_src *s, char *buf, size_t size)
{
    buf[0] = 0;
    if (s->gz) {
        int zerr = 0;
        const char *zmsg = gzerror(s->gz, &zerr);
        if (zerr != Z_OK && zmsg && *zmsg)
            snprintf(buf, size, "; gzip: %s", zmsg);
    }
    return buf;
}

/* Opens path and decides by its first two bytes (1f 8b) whether it is
 * gzip, so that a .gz without the suffix, or a plain file named .gz, still
 * reads correctly. */
static dn_status src_open(idx_src *s, const char *path, dn_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dn_fail(err, DN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return dn_fail(err, DN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return dn_fail(err, DN_ERR_IO, "%s: is a directory, expected an IDX file", path);
    }
    unsigned char m[2] = {0, 0};
    size_t got = fread(m, 1, 2, f);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return dn_fail(err, DN_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (got == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        fclose(f);
        s->gz = gzopen(path, "rb");
        if (!s->gz)
            return dn_fail(err, DN_ERR_IO, "%s: cannot open: %s", path,
                           errno ? strerror(errno) : "out of memory");
        gzbuffer(s->gz, 1u << 17);
        return DN_OK;
    }
    if (fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return dn_fail(err, DN_ERR_IO, "%s: cannot seek: %s", path, strerror(e));
    }
    s->f = f;
    if (S_ISREG(st.st_mode)) {
        s->size_known = 1;
        s->size = (uint64_t)st.st_size;
    }
    return DN_OK;
}

static void src_close(idx_src *s)
{
    if (s->f)
        fclose(s->f);
    if (s->gz)
        gzclose(s->gz);
    s->f = NULL;
    s->gz = NULL;
}

/* Reads up to n bytes into buf; *got is how many arrived (fewer only at
 * the end of the stream). Fails on a read error or a corrupt gzip stream. */
static dn_status src_read(idx_src *s, void *buf, size_t n, size_t *got, dn_error *err)
{
    unsigned char *p = buf;
    size_t total = 0;
    while (total < n) {
        size_t want = n - total;
        if (want > IDX_MAX_READ)
            want = IDX_MAX_READ;
        size_t r;
        if (s->gz) {
            int k = gzread(s->gz, p + total, (unsigned)want);
            if (k < 0) {
                int zerr = 0;
                const char *zmsg = gzerror(s->gz, &zerr);
                return dn_fail(err, DN_ERR_FORMAT,
                               "%s: offset %llu (decompressed): corrupt gzip stream: %s",
                               s->path, (unsigned long long)(s->pos + total),
                               zmsg && *zmsg ? zmsg : "read error");
            }
            r = (size_t)k;
        } else {
            r = fread(p + total, 1, want, s->f);
            if (r < want && ferror(s->f))
                return dn_fail(err, DN_ERR_IO, "%s: offset %llu: read error: %s", s->path,
                               (unsigned long long)(s->pos + total + r), strerror(errno));
        }
        total += r;
        if (r < want)
            break;
    }
    s->pos += total;
    *got = total;
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Header and payload                                                       */
/* ------------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static const char *magic_name(uint32_t magic)
{
    return magic == IDX_MAGIC_IMAGES ? "IDX images" : "IDX labels";
}

/* Reads and checks the magic and the dims (ndims of them, each nonzero);
 * names[i] says what dim i counts, for messages. */
static dn_status read_header(idx_src *s, uint32_t magic, int ndims, const char *const *names,
                             uint32_t *dims, dn_error *err)
{
    unsigned char h[16];
    size_t need = 4 + 4 * (size_t)ndims, got;
    dn_status st = src_read(s, h, need, &got, err);
    if (st)
        return st;
    if (got < 4)
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: offset %zu%s: file ends inside the header, expected a 4-byte "
                       "magic 0x%08x (%s)",
                       s->path, got, src_kind(s), (unsigned)magic, magic_name(magic));
    uint32_t found = be32(h);
    if (found != magic) {
        const char *hint = "";
        if (found == IDX_MAGIC_IMAGES)
            hint = "; this is an IDX images file";
        else if (found == IDX_MAGIC_LABELS)
            hint = "; this is an IDX labels file";
        else if ((found >> 16) != 0)
            hint = "; not an IDX file";
        return dn_fail(err, DN_ERR_FORMAT, "%s: offset 0: bad magic 0x%08x, expected 0x%08x (%s)%s",
                       s->path, (unsigned)found, (unsigned)magic, magic_name(magic), hint);
    }
    if (got < need)
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: offset %zu%s: file ends inside the header, expected %zu header "
                       "bytes (%d dimensions)",
                       s->path, got, src_kind(s), need, ndims);
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %d: %s is 0, expected at least 1",
                           s->path, 4 + 4 * i, names[i]);
    }
    return DN_OK;
}

/* Reads exactly `size` payload bytes that follow a header of hdr bytes and
 * checks that nothing follows them. desc describes the payload for
 * messages ("10000 images of 28x28"). */
static dn_status read_payload(idx_src *s, size_t hdr, size_t size, const char *desc,
                              uint8_t **out, dn_error *err)
{
    *out = NULL;
    if (s->size_known) {
        /* hdr + size cannot overflow: the caller checked it against SIZE_MAX. */
        uint64_t want = (uint64_t)hdr + size;
        if (s->size < want)
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset %llu: truncated: file ends after %llu bytes, expected "
                           "%llu (%zu header bytes + %s)",
                           s->path, (unsigned long long)s->size, (unsigned long long)s->size,
                           (unsigned long long)want, hdr, desc);
        if (s->size > want)
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset %llu: %llu trailing bytes after %s, expected the end of "
                           "the file",
                           s->path, (unsigned long long)want,
                           (unsigned long long)(s->size - want), desc);
    }
    /* Known sizes are allocated at once; otherwise grow as data arrives. */
    size_t cap = s->size_known || size < IDX_FIRST_CHUNK ? size : IDX_FIRST_CHUNK;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return dn_fail(err, DN_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s", s->path, cap,
                       desc);
    size_t have = 0;
    for (;;) {
        size_t got;
        dn_status st = src_read(s, buf + have, cap - have, &got, err);
        if (st) {
            free(buf);
            return st;
        }
        have += got;
        if (have < cap) {
            char note[128];
            free(buf);
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset %llu%s: truncated: data ends after %llu bytes, expected "
                           "%llu (%zu header bytes + %s)%s",
                           s->path, (unsigned long long)(hdr + have), src_kind(s),
                           (unsigned long long)(hdr + have), (unsigned long long)hdr + size,
                           hdr, desc, src_note(s, note, sizeof note));
        }
        if (cap == size)
            break;
        size_t ncap = cap > size / 2 ? size : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return dn_fail(err, DN_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s", s->path,
                           ncap, desc);
        }
        buf = nb;
        cap = ncap;
    }
    /* One more byte must not exist. For gzip this read also makes zlib
     * check the stream's CRC and length trailer. */
    unsigned char extra;
    size_t got;
    dn_status st = src_read(s, &extra, 1, &got, err);
    if (st) {
        free(buf);
        return st;
    }
    if (got) {
        free(buf);
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: offset %llu%s: trailing bytes after %s, expected the end of the file",
                       s->path, (unsigned long long)hdr + size, src_kind(s), desc);
    }
    *out = buf;
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* Public readers                                                           */
/* ------------------------------------------------------------------------ */

dn_status dn_idx_read_images(const char *path, uint8_t **pixels, size_t *n, uint32_t *rows,
                             uint32_t *cols, dn_error *err)
{
    if (!path || !pixels || !n || !rows || !cols)
        return dn_fail(err, DN_ERR_ARG, "dn_idx_read_images: NULL argument");
    *pixels = NULL;
    idx_src s;
    dn_status st = src_open(&s, path, err);
    if (st)
        return st;
    static const char *const names[3] = {"image count", "row count", "column count"};
    uint32_t d[3];
    st = read_header(&s, IDX_MAGIC_IMAGES, 3, names, d, err);
    if (st) {
        src_close(&s);
        return st;
    }
    /* Overflow-safe n * rows * cols + 16: a hostile header must give an
     * error, not a wrapped size or a giant allocation. */
    size_t plane, size;
    if (!dn_mul_size(d[1], d[2], &plane) || !dn_mul_size(d[0], plane, &size) ||
        size > SIZE_MAX - 16) {
        src_close(&s);
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: offset 4: header claims %u images of %ux%u, more bytes than "
                       "memory can address",
                       path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2]);
    }
    char desc[96];
    snprintf(desc, sizeof desc, "%u images of %ux%u", (unsigned)d[0], (unsigned)d[1],
             (unsigned)d[2]);
    uint8_t *buf;
    st = read_payload(&s, 16, size, desc, &buf, err);
    src_close(&s);
    if (st)
        return st;
    *pixels = buf;
    *n = d[0];
    *rows = d[1];
    *cols = d[2];
    return DN_OK;
}

dn_status dn_idx_read_labels(const char *path, uint8_t **labels, size_t *n, unsigned max_label,
                             dn_error *err)
{
    if (!path || !labels || !n)
        return dn_fail(err, DN_ERR_ARG, "dn_idx_read_labels: NULL argument");
    *labels = NULL;
    if (max_label == 0)
        return dn_fail(err, DN_ERR_ARG, "dn_idx_read_labels: max_label is 0, no label could pass");
    idx_src s;
    dn_status st = src_open(&s, path, err);
    if (st)
        return st;
    static const char *const names[1] = {"label count"};
    uint32_t count;
    st = read_header(&s, IDX_MAGIC_LABELS, 1, names, &count, err);
    if (st) {
        src_close(&s);
        return st;
    }
    char desc[64];
    snprintf(desc, sizeof desc, "%u labels", (unsigned)count);
    uint8_t *buf;
    st = read_payload(&s, 8, count, desc, &buf, err);
    src_close(&s);
    if (st)
        return st;
    for (size_t i = 0; i < count; i++) {
        if (buf[i] >= max_label) {
            unsigned bad = buf[i];
            free(buf);
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset %zu: label %u of item %zu, expected a label below %u",
                           path, 8 + i, bad, i, max_label);
        }
    }
    *labels = buf;
    *n = count;
    return DN_OK;
}
