/*
 * idx.c - IDX files (the MNIST container format), plain or gzip-compressed.
 *
 * An IDX file is a 4-byte magic (0, 0, element type, number of dimensions),
 * one big-endian uint32 per dimension, then the elements. MNIST images are
 * 0x00000803 (uint8, 3 dims: n, rows, cols) and labels 0x00000801 (uint8,
 * 1 dim: n).
 *
 * The header is untrusted: every size is computed with overflow checks and
 * compared with the file before anything is allocated: a plain file must
 * have exactly the size its header implies, and a gzip file cannot claim
 * more than deflate could ever expand it to. Memory for a gzip stream then
 * grows as data actually arrives, never past what the header claims.
 * Offsets in messages are byte offsets into the (decompressed) IDX stream.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u

/* First allocation for data whose size is not known from the file system
 * (gzip); doubled as data arrives. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)
/* Deflate's largest possible expansion (RFC 1951: a 258-byte match in
 * under two bits): no gzip file decompresses to more than this many times
 * its own size. */
#define IDX_GZIP_MAX_RATIO 1032u
/* gzread takes an unsigned int length; read in pieces well below it. */
#define IDX_MAX_READ ((size_t)1 << 30)

/* ------------------------------------------------------------------------ */
/* A byte source: a plain file or a gzip stream                             */
/* ------------------------------------------------------------------------ */

typedef struct idx_src {
    const char *path;
    FILE *f;           /* plain file, or NULL */
    gzFile gz;         /* gzip stream, or NULL */
    uint64_t size;     /* the file's size (compressed for gzip) */
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

/* Opens path (a regular file, see dn_open_regular) and decides by its
 * first two bytes (1f 8b) whether it is gzip, so that a .gz without the
 * suffix, or a plain file named .gz, still reads correctly. */
static dn_status src_open(idx_src *s, const char *path, dn_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    int fd;
    uint64_t size;
    dn_status st = dn_open_regular(path, &fd, &size, err);
    if (st)
        return st;
    unsigned char m[2] = {0, 0};
    if (size >= 2 && (st = dn_read_at(fd, path, m, 2, 0, err)) != DN_OK) {
        close(fd);
        return st;
    }
    s->size = size;
    if (m[0] == 0x1f && m[1] == 0x8b) {
        /* gzdopen takes the descriptor (gzclose closes it) and reads from
         * its current offset, which pread left at 0. */
        s->gz = gzdopen(fd, "rb");
        if (!s->gz) {
            close(fd);
            return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory opening a gzip stream", path);
        }
        gzbuffer(s->gz, 1u << 17);
        return DN_OK;
    }
    s->f = fdopen(fd, "rb");
    if (!s->f) {
        int e = errno;
        close(fd);
        return dn_fail(err, DN_ERR_IO, "%s: cannot open: %s", path, strerror(e));
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

/* Checks the payload size a header implies against the file itself, before
 * anything is allocated. A plain file must be exactly that long. A gzip
 * file can only be bounded: deflate never expands by more than 1032:1
 * (a 258-byte match coded in under 2 bits), so a header claiming more
 * than that from the compressed size is a lie, refused at once instead of
 * after decompressing gigabytes. */
static dn_status check_size(const idx_src *s, size_t hdr, size_t size, const char *desc,
                            dn_error *err)
{
    /* hdr + size cannot overflow: the caller checked it against SIZE_MAX. */
    uint64_t want = (uint64_t)hdr + size;
    if (s->gz) {
        uint64_t most = s->size > UINT64_MAX / IDX_GZIP_MAX_RATIO
                            ? UINT64_MAX
                            : s->size * IDX_GZIP_MAX_RATIO;
        if (want > most)
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset 4 (decompressed): header claims %s, %llu bytes, but a "
                           "gzip file of %llu bytes decompresses to at most %llu (truncated "
                           "or a false header)",
                           s->path, desc, (unsigned long long)want,
                           (unsigned long long)s->size, (unsigned long long)most);
        return DN_OK;
    }
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
                       s->path, (unsigned long long)want, (unsigned long long)(s->size - want),
                       desc);
    return DN_OK;
}

/* Reads exactly `size` payload bytes that follow a header of hdr bytes
 * (check_size passed) and checks that nothing follows them. desc describes
 * the payload for messages ("10000 images of 28x28"). */
static dn_status read_payload(idx_src *s, size_t hdr, size_t size, const char *desc,
                              uint8_t **out, dn_error *err)
{
    *out = NULL;
    /* A plain file's size is known to be right, so it is allocated at
     * once; a gzip stream's memory grows as data actually arrives. */
    size_t cap = !s->gz || size < IDX_FIRST_CHUNK ? size : IDX_FIRST_CHUNK;
    uint8_t *buf = malloc(cap ? cap : 1);
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
/* Headers                                                                  */
/* ------------------------------------------------------------------------ */

/* What an IDX header says, with the payload size it implies. */
typedef struct idx_head {
    uint32_t dims[3];       /* images: n, rows, cols; labels: n */
    size_t hdr, size;       /* header and payload bytes */
    char desc[96];          /* "10000 images of 28x28", for messages */
} idx_head;

/* Opens path, reads its header and checks the payload size the header
 * implies against the file (check_size). On success s is open at the
 * start of the payload; on failure it is closed. */
static dn_status open_checked(idx_src *s, const char *path, int images, idx_head *h,
                              dn_error *err)
{
    static const char *const image_dims[3] = {"image count", "row count", "column count"};
    static const char *const label_dims[1] = {"label count"};
    memset(h, 0, sizeof *h);
    dn_status st = src_open(s, path, err);
    if (st)
        return st;
    uint32_t *d = h->dims;
    if (images)
        st = read_header(s, IDX_MAGIC_IMAGES, 3, image_dims, d, err);
    else
        st = read_header(s, IDX_MAGIC_LABELS, 1, label_dims, d, err);
    if (st) {
        src_close(s);
        return st;
    }
    h->hdr = images ? 16 : 8;
    if (!images) {
        h->size = d[0];
        snprintf(h->desc, sizeof h->desc, "%u labels", (unsigned)d[0]);
    } else {
        /* Overflow-safe n * rows * cols + 16: a hostile header must give
         * an error, not a wrapped size or a giant allocation. */
        size_t plane;
        if (!dn_mul_size(d[1], d[2], &plane) || !dn_mul_size(d[0], plane, &h->size) ||
            h->size > SIZE_MAX - 16) {
            src_close(s);
            return dn_fail(err, DN_ERR_FORMAT,
                           "%s: offset 4: header claims %u images of %ux%u, more bytes than "
                           "memory can address",
                           path, (unsigned)d[0], (unsigned)d[1], (unsigned)d[2]);
        }
        snprintf(h->desc, sizeof h->desc, "%u images of %ux%u", (unsigned)d[0],
                 (unsigned)d[1], (unsigned)d[2]);
    }
    st = check_size(s, h->hdr, h->size, h->desc, err);
    if (st)
        src_close(s);
    return st;
}

dn_status dn_idx_read_header(const char *path, int images, uint32_t *dims, dn_error *err)
{
    idx_src s;
    idx_head h;
    dn_status st = open_checked(&s, path, images, &h, err);
    if (st)
        return st;
    src_close(&s);
    memcpy(dims, h.dims, (images ? 3 : 1) * sizeof *dims);
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
    idx_head h;
    dn_status st = open_checked(&s, path, 1, &h, err);
    if (st)
        return st;
    uint8_t *buf;
    st = read_payload(&s, h.hdr, h.size, h.desc, &buf, err);
    src_close(&s);
    if (st)
        return st;
    *pixels = buf;
    *n = h.dims[0];
    *rows = h.dims[1];
    *cols = h.dims[2];
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
    idx_head h;
    dn_status st = open_checked(&s, path, 0, &h, err);
    if (st)
        return st;
    uint8_t *buf;
    st = read_payload(&s, h.hdr, h.size, h.desc, &buf, err);
    src_close(&s);
    if (st)
        return st;
    uint32_t count = h.dims[0];
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
