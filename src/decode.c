/*
 * decode.c - image files and bytes to a grey dn_image.
 *
 * Canvas PNGs go through png.c; every other format (and any PNG png.c
 * leaves) through stb_image (Debian libstb). stb_image completes a file
 * that ends early with zeros, so it reads here through callbacks that
 * know where the data ends: a decoder that asks for a byte past the end
 * has met a truncated file, and the image is refused. Sizes are checked
 * from the header before any pixel is allocated.
 */
#include "image.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

/* What the first bytes say the file is, for messages. */
static const char *format_name(const uint8_t *d, size_t n)
{
    if (dn_png_signature(d, n))
        return "PNG";
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return "JPEG";
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return "BMP";
    if (n >= 4 && !memcmp(d, "GIF8", 4))
        return "GIF";
    if (n >= 4 && !memcmp(d, "8BPS", 4))
        return "PSD";
    if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6'))
        return d[1] == '5' ? "PGM" : "PPM";
    if (n >= 2 && d[0] == '#' && d[1] == '?')
        return "HDR";
    if (n >= 4 && !memcmp(d, "\x53\x80\xf6\x34", 4))
        return "PIC";
    return "TGA";
}

dn_status dn_image_check_size(long w, long h, const char *name, dn_error *err)
{
    if (w > DN_IMAGE_MAX_SIDE || h > DN_IMAGE_MAX_SIDE || w * h > DN_IMAGE_MAX_PIXELS)
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: image is %ldx%ld, too large (at most %dx%d, %ld Mpixel)", name, w, h,
                       DN_IMAGE_MAX_SIDE, DN_IMAGE_MAX_SIDE, DN_IMAGE_MAX_PIXELS >> 20);
    return DN_OK;
}

/* ---- stb_image, bounded ------------------------------------------------- */

/* The data stb_image reads, and whether it asked for more than there is.
 * stb_image reads in two ways: refilling its own 128-byte buffer, which
 * may come back short at the end of a whole file, and reading a block
 * straight into pixels (stbi__getn), which its TGA, PNM and HDR readers
 * do without checking that the block came whole. The first read of a
 * decode is always a refill, so that buffer's address tells the two apart:
 * a refill at the end, or a block that cannot be read whole, means the
 * decoder needs bytes past the end of the data. */
typedef struct bounded {
    const uint8_t *data;
    size_t size, pos;
    const char *refill;
    int past_end;
} bounded;

static int bounded_read(void *user, char *out, int n)
{
    bounded *b = user;
    if (n <= 0)
        return 0;
    if (!b->refill)
        b->refill = out;
    size_t left = b->size - b->pos;
    if (left == 0 || (out != b->refill && left < (size_t)n)) {
        b->past_end = 1;
        if (left == 0)
            return 0;
    }
    size_t k = left < (size_t)n ? left : (size_t)n;
    memcpy(out, b->data + b->pos, k);
    b->pos += k;
    return (int)k;
}

static void bounded_skip(void *user, int n)
{
    bounded *b = user;
    if (n > 0 && (size_t)n > b->size - b->pos) {
        b->past_end = 1;
        b->pos = b->size;
    } else if (n > 0) {
        b->pos += (size_t)n;
    }
}

static int bounded_eof(void *user)
{
    const bounded *b = user;
    return b->pos >= b->size;
}

static const stbi_io_callbacks bounded_io = {bounded_read, bounded_skip, bounded_eof};

/* Header dimensions stb_image's own checks would hide behind "unknown image
 * type" (it tries the next format when one refuses a size): the 32-bit
 * fields of PNG, BMP and PSD. 0 if the header does not say. */
static int header_size(const uint8_t *d, size_t n, long *w, long *h)
{
    if (dn_png_signature(d, n) && n >= 24 && !memcmp(d + 12, "IHDR", 4)) {
        *w = (long)((uint32_t)d[16] << 24 | (uint32_t)d[17] << 16 | d[18] << 8 | d[19]);
        *h = (long)((uint32_t)d[20] << 24 | (uint32_t)d[21] << 16 | d[22] << 8 | d[23]);
        return 1;
    }
    if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        /* little-endian, the height negative for a top-down image */
        int32_t x = (int32_t)((uint32_t)d[18] | (uint32_t)d[19] << 8 | (uint32_t)d[20] << 16 |
                              (uint32_t)d[21] << 24);
        int32_t y = (int32_t)((uint32_t)d[22] | (uint32_t)d[23] << 8 | (uint32_t)d[24] << 16 |
                              (uint32_t)d[25] << 24);
        *w = labs((long)x);
        *h = labs((long)y);
        return 1;
    }
    if (n >= 22 && !memcmp(d, "8BPS", 4)) {
        *h = (long)((uint32_t)d[14] << 24 | (uint32_t)d[15] << 16 | d[16] << 8 | d[17]);
        *w = (long)((uint32_t)d[18] << 24 | (uint32_t)d[19] << 16 | d[20] << 8 | d[21]);
        return 1;
    }
    return 0;
}

/* Decodes any format stb_image reads into p->grey; refuses a file stb_image
 * would have completed with zeros. */
static dn_status stb_decode(dn_prep *p, const uint8_t *data, size_t size, const char *name,
                            int *w, int *h, dn_error *err)
{
    const char *format = format_name(data, size);
    /* Two of stb_image's readers cannot be guarded from outside: on a cut
     * file the Radiance one loops for ever (a run length of 0) and the
     * Softimage one crashes. Neither is a format for a picture of a digit. */
    if (!strcmp(format, "HDR") || !strcmp(format, "PIC"))
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: %s images are not read (use PNG, JPEG, BMP, GIF, PGM/PPM, TGA or PSD)",
                       name, format);
    /* Files on which stb_image itself goes wrong, even for info. */
    dn_status guard = dn_stb_guard(data, size, name, err);
    if (guard != DN_OK)
        return guard;
    /* The header from memory, where stb_image goes back to the first byte
     * before each format it tries. Through callbacks it can only go back
     * to the start of its 128-byte buffer: a format tried after one that
     * read further (a corrupt JPEG's tables) would parse the middle of the
     * file, past what the guard checked (fuzz_image found a PGM header at
     * byte 158 of a JPEG whose width overflowed stb's int). size is at
     * most DN_IMAGE_MAX_FILE. */
    int n = 0;
    long hw, hh;
    if (!stbi_info_from_memory(data, (int)size, w, h, &n)) {
        if (header_size(data, size, &hw, &hh) && dn_image_check_size(hw, hh, name, NULL))
            return dn_image_check_size(hw, hh, name, err);
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: not an image this program reads (PNG, JPEG, BMP, GIF, PGM/PPM, TGA, "
                       "PSD): %s",
                       name, stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
    }
    if (*w <= 0 || *h <= 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: image has zero size (%dx%d)", name, *w, *h);
    dn_status st = dn_image_check_size(*w, *h, name, err);
    if (st != DN_OK)
        return st;

    bounded b = {data, size, 0, NULL, 0};
    int dw = 0, dh = 0;
    uint8_t *px = stbi_load_from_callbacks(&bounded_io, &b, &dw, &dh, &n, 0);
    if (px && b.past_end) {
        stbi_image_free(px);
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: truncated %s file (the image needs more than its %zu bytes)", name,
                       format, size);
    }
    if (!px)
        return dn_fail(err, DN_ERR_FORMAT, "%s: cannot decode the %s image: %s", name, format,
                       b.past_end ? "the file is truncated"
                       : stbi_failure_reason() ? stbi_failure_reason() : "corrupt data");
    size_t count = (size_t)dw * (size_t)dh;
    if (dw != *w || dh != *h || n < 1 || n > 4) {
        stbi_image_free(px);
        return dn_fail(err, DN_ERR_FORMAT, "%s: decoded %dx%dx%d, header said %dx%d", name, dw,
                       dh, n, *w, *h);
    }
    int has_alpha = n == 2 || n == 4;
    if (!dn_buf_reserve(&p->grey, count) || (has_alpha && !dn_buf_reserve(&p->alpha, count))) {
        stbi_image_free(px);
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, dw, dh);
    }
    dn_alpha_sum sum = {0, 0, 0};
    dn_grey_from_channels(px, n, count, p->grey.p, has_alpha ? p->alpha.p : NULL, &sum);
    if (has_alpha)
        dn_grey_fill_transparent(p->grey.p, p->alpha.p, count, &sum);
    stbi_image_free(px);
    return DN_OK;
}

/* ---- the public entry points -------------------------------------------- */

dn_status dn_prep_load_memory(dn_prep *p, const void *data, size_t size, const char *name,
                              dn_image *img, dn_error *err)
{
    if (!img)
        return dn_fail(err, DN_ERR_ARG, "dn_prep_load_memory: NULL image");
    memset(img, 0, sizeof *img);
    if (!name)
        name = "image";
    if (!p)
        return dn_fail(err, DN_ERR_ARG, "%s: NULL dn_prep", name);
    if (!data && size)
        return dn_fail(err, DN_ERR_ARG, "%s: NULL data", name);
    if (size == 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: empty file, not an image", name);
    if (size > (size_t)DN_IMAGE_MAX_FILE)
        return dn_fail(err, DN_ERR_FORMAT, "%s: %zu bytes, more than the %ld MB an image may have",
                       name, size, DN_IMAGE_MAX_FILE >> 20);
    int w = 0, h = 0, st = DN_PNG_OTHER;
    if (dn_png_signature(data, size))
        st = dn_png_decode(p, data, size, name, &w, &h, err);
    if (st == DN_PNG_OTHER)
        st = stb_decode(p, data, size, name, &w, &h, err);
    if (st != DN_OK)
        return (dn_status)st;
    img->w = w;
    img->h = h;
    img->grey = p->grey.p;
    img->borrowed = 1;
    snprintf(img->name, sizeof img->name, "%s", name);
    return DN_OK;
}

dn_status dn_image_load_memory(const void *data, size_t size, const char *name, dn_image *img,
                               dn_error *err)
{
    dn_prep p;
    memset(&p, 0, sizeof p);
    dn_status st = dn_prep_load_memory(&p, data, size, name, img, err);
    if (st == DN_OK) {
        p.grey.p = NULL; /* the image keeps its pixels */
        img->borrowed = 0;
    }
    dn_prep_release(&p);
    return st;
}

dn_status dn_image_load(const char *path, dn_image *img, dn_error *err)
{
    if (!img || !path)
        return dn_fail(err, DN_ERR_ARG, "dn_image_load: NULL argument");
    memset(img, 0, sizeof *img);
    /* A regular file only, opened without blocking on a FIFO or device. */
    uint8_t *buf = NULL;
    size_t size = 0;
    dn_status st = dn_read_regular(path, DN_IMAGE_MAX_FILE, &buf, &size, err);
    if (st != DN_OK)
        return st;
    st = dn_image_load_memory(buf, size, path, img, err);
    free(buf);
    return st;
}
