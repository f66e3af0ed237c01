/*
 * stbguard.c - inputs that would make stb_image misbehave, refused before
 * it reads them.
 *
 * stb_image (Debian's libstb 0.0~git20220908) is the decoder of every
 * format but canvas PNGs. tests/fuzz/fuzz_image.c, with stb compiled into
 * the target so that the sanitizers see inside it, found two faults that
 * no caller could avoid by checking what stb reports; their inputs are
 * kept in tests/fuzz/crashes/image/:
 *
 *  - JPEG: a DHT segment's sixteen code counts fill a 257-entry size table
 *    and a 256-entry value table with as many codes as they add up to, up
 *    to 16 x 255, writing thousands of bytes past them. JPEG allows at most
 *    256 codes per table, so a table claiming more is refused.
 *  - JPEG: stb_image decodes with whatever its decoder struct and pixel
 *    buffers held before (uninitialised heap memory, so a different image
 *    on each run) when a scan uses a quantization or Huffman table that no
 *    DQT or DHT segment defined, or when a component of the frame is never
 *    coded by a scan. Such a file is refused.
 *  - BMP: a palette image's pixels may index colours past the palette
 *    the header makes room for; stb_image gives them whatever its stack
 *    held. Such a file is refused.
 *  - PGM/PPM: the header's width, height and maximum value are read into
 *    an int digit by digit with no overflow check (undefined behaviour; in
 *    practice a wrapped, wrong size). A number above INT_MAX is refused.
 *
 * JPEG: the walk follows stb's own: segments by their lengths from SOI
 * (itself after any number of fill bytes),
 * bytes that are not 0xFF skipped between segments, fill bytes (0xFF 0xFF)
 * skipped, and, after a scan header, entropy-coded data scanned byte by
 * byte to the next marker, so that a DHT between the scans of a
 * progressive JPEG is checked too. Where the two could part ways (a
 * segment stb would refuse), this check simply goes on looking.
 */
#include "image.h"
#include "internal.h"

#include <limits.h>
#include <stdlib.h>

#define M_SOI 0xD8
#define M_EOI 0xD9
#define M_SOS 0xDA
#define M_DHT 0xC4
#define M_DQT 0xDB

/* The tables defined so far, and the frame's components (stb_image reads
 * the first frame header only). */
typedef struct jpeg_state {
    unsigned dqt, dc, ac;   /* bit t: table t defined */
    int progressive, n_comp;
    long w, h;
    struct {
        uint8_t id, tq, coded;
    } comp[4];
} jpeg_state;

static void note_dqt(jpeg_state *js, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        if ((p[i] & 15) < 4)
            js->dqt |= 1u << (p[i] & 15);
        i += 1 + ((p[i] >> 4) ? 128 : 64);
    }
}

static void note_sof(jpeg_state *js, uint8_t m, const uint8_t *p, size_t len)
{
    if (js->n_comp || len < 6)
        return;
    js->progressive = m == 0xC2;
    js->h = (long)p[1] << 8 | p[2];
    js->w = (long)p[3] << 8 | p[4];
    int nc = p[5] < 4 ? p[5] : 4;
    for (int k = 0; k < nc && 6 + 3 * (size_t)k + 2 < len; k++) {
        js->comp[k].id = p[6 + 3 * k];
        js->comp[k].tq = p[6 + 3 * k + 2];
        js->n_comp = k + 1;
    }
}

/* A scan header (payload p[0..len)): the tables each of its components
 * uses are defined, as stb_image does not check. */
static dn_status check_sos(jpeg_state *js, const uint8_t *p, size_t len, size_t at,
                           const char *name, dn_error *err)
{
    if (len < 1 || len < 1 + 2 * (size_t)p[0] + 3)
        return DN_OK; /* stb refuses it */
    int ns = p[0];
    int ss = p[1 + 2 * ns], ah = p[3 + 2 * ns] >> 4;
    for (int k = 0; k < ns; k++) {
        uint8_t id = p[1 + 2 * k], td = p[2 + 2 * k] >> 4, ta = p[2 + 2 * k] & 15;
        int c = 0;
        while (c < js->n_comp && js->comp[c].id != id)
            c++;
        if (c == js->n_comp || td > 3 || ta > 3 || js->comp[c].tq > 3)
            continue; /* stb refuses these */
        const char *missing = !(js->dqt >> js->comp[c].tq & 1) ? "quantization"
                              : (!js->progressive || (ss == 0 && ah == 0)) &&
                                      !(js->dc >> td & 1) ? "Huffman DC"
                              : (!js->progressive || ss > 0) && !(js->ac >> ta & 1)
                                  ? "Huffman AC" : NULL;
        if (missing)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %zu: corrupt JPEG: a scan of "
                           "component %u uses a %s table that is not defined", name, at, id,
                           missing);
        js->comp[c].coded |= !js->progressive || (ss == 0 && ah == 0);
    }
    return DN_OK;
}

/* Every table of a DHT segment whose payload (after the length) is p[0..
 * len), with `avail` bytes readable from p: 1 byte class/id, 16 counts,
 * then as many values as the counts add up to. Like stb, a table is read
 * while the segment has bytes left, its values even past the segment, and
 * a byte past the end of the data reads as 0. */
static dn_status check_dht(const uint8_t *p, size_t len, size_t avail, size_t at,
                           unsigned *dc, unsigned *ac, const char *name, dn_error *err)
{
    size_t i = 0;
    while (i < len) {
        unsigned n = 0;
        for (size_t k = i + 1; k < i + 17; k++)
            n += k < avail ? p[k] : 0;
        if (n > 256)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %zu: corrupt JPEG: Huffman table "
                           "%u/%u has %u codes, at most 256", name, at + i,
                           i < avail ? p[i] >> 4 : 0u, i < avail ? p[i] & 15u : 0u, n);
        if (i < avail && (p[i] & 15) < 4)
            *(p[i] >> 4 ? ac : dc) |= 1u << (p[i] & 15);
        i += 17 + n;
    }
    return DN_OK;
}

static dn_status check_jpeg(const uint8_t *p, size_t n, const char *name, dn_error *err)
{
    /* stb_image takes fill bytes before the start marker too
     * (FF FF ... FF D8). */
    size_t i = 1;
    while (i < n && p[i] == 0xFF)
        i++;
    if (n < 2 || p[0] != 0xFF || i >= n || p[i] != M_SOI)
        return DN_OK;
    i++;
    int entropy = 0; /* after a scan header: coded data until a marker */
    jpeg_state js = {0};
    int eoi = 0;
    while (i + 1 < n) {
        if (p[i] != 0xFF || p[i + 1] == 0xFF) {
            i++;
            continue;
        }
        uint8_t m = p[i + 1];
        /* In coded data, FF 00 is a stuffed FF and FF D0..D7 a restart. */
        if (entropy && (m == 0x00 || (m >= 0xD0 && m <= 0xD7))) {
            i += 2;
            continue;
        }
        if (m == M_EOI) {
            eoi = 1;
            break;
        }
        if (m == M_SOI || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            i += 2; /* no length: stb refuses or ignores these */
            continue;
        }
        if (i + 4 > n)
            break;
        size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
        if (len < 2) {
            i += 2;
            continue;
        }
        size_t end = i + 2 + len < n ? i + 2 + len : n;
        dn_status st = DN_OK;
        if (m == M_DHT)
            st = check_dht(p + i + 4, len - 2, n - (i + 4), i + 4, &js.dc, &js.ac, name, err);
        else if (m == M_DQT)
            note_dqt(&js, p + i + 4, end - (i + 4));
        else if (m >= 0xC0 && m <= 0xC2)
            note_sof(&js, m, p + i + 4, end - (i + 4));
        else if (m == M_SOS)
            st = check_sos(&js, p + i + 4, end - (i + 4), i, name, err);
        if (st != DN_OK)
            return st;
        entropy = m == M_SOS;
        i = end;
    }
    /* A file that ends before its end marker is refused as truncated when
     * stb_image reads past its end; one too large, by its size. */
    if (!eoi || dn_image_check_size(js.w, js.h, name, NULL) != DN_OK)
        return DN_OK;
    for (int c = 0; c < js.n_comp; c++)
        if (!js.comp[c].coded)
            return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt JPEG: component %u of the frame is "
                           "in no scan", name, js.comp[c].id);
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* BMP                                                                      */
/* ------------------------------------------------------------------------ */

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return le16(p) | le16(p + 2) << 16;
}

/* The pixels of a palette BMP (1, 4 or 8 bits) index its palette, which
 * stb_image reads as many colours as the header leaves room for; an index
 * past them picks an entry it never set. Sizes, offsets and the palette
 * as stb_image computes them; a file it refuses for another reason (or
 * that ends early, refused as truncated) passes here. */
static dn_status check_bmp(const uint8_t *p, size_t n, const char *name, dn_error *err)
{
    if (n < 30 || p[0] != 'B' || p[1] != 'M')
        return DN_OK;
    long offset = (int32_t)le32(p + 10), hsz = (int32_t)le32(p + 14), w, h;
    unsigned bpp;
    if (hsz == 12) {
        w = (long)le16(p + 18);
        h = (long)le16(p + 20);
        bpp = le16(p + 24);
    } else {
        w = (int32_t)le32(p + 18);
        h = labs((long)(int32_t)le32(p + 22));
        bpp = le16(p + 28);
    }
    if ((bpp != 1 && bpp != 4 && bpp != 8) || offset < 0 || w <= 0 || h <= 0 ||
        (hsz != 12 && hsz != 40 && hsz != 56 && hsz != 108 && hsz != 124) ||
        dn_image_check_size(w, h, name, NULL) != DN_OK)
        return DN_OK;
    /* stb divides by 3 for the old header, shifts right by 2 (rounding
     * down) for the others. */
    long room = hsz == 12 ? offset - 14 - 24 : offset - 14 - hsz;
    long colours = hsz == 12 ? room / 3 : room >= 0 ? room / 4 : -((3 - room) / 4);
    /* None (stb refuses it) or too many (likewise); fewer than none, and
     * stb reads every pixel through a palette it never set. */
    if (colours == 0 || colours > 256)
        return DN_OK;
    if (colours < 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: corrupt BMP: its pixels start at offset %ld, "
                       "before its palette", name, offset);
    size_t row = bpp == 1 ? (size_t)(w + 7) / 8 : bpp == 4 ? (size_t)(w + 1) / 2 : (size_t)w;
    size_t stride = row + (-row & 3);
    for (long y = 0; y < h; y++) {
        size_t at = (size_t)offset + (size_t)y * stride;
        for (long x = 0; x < w; x++) {
            size_t byte = at + (size_t)x * bpp / 8;
            if (byte >= n)
                return DN_OK;
            unsigned shift = 8 - bpp - (unsigned)((size_t)x * bpp % 8);
            unsigned index = p[byte] >> shift & ((1u << bpp) - 1);
            if (index >= (unsigned)colours)
                return dn_fail(err, DN_ERR_FORMAT, "%s: offset %zu: corrupt BMP: a pixel is "
                               "colour %u of a palette of %ld", name, byte, index, colours);
        }
    }
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* PGM and PPM                                                              */
/* ------------------------------------------------------------------------ */

static int pnm_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The three numbers of a binary PGM/PPM header (P5, P6: the ones stb
 * reads), each at most INT_MAX; whitespace and # comments between them as
 * stb skips them. */
static dn_status check_pnm(const uint8_t *p, size_t n, const char *name, dn_error *err)
{
    if (n < 2 || p[0] != 'P' || (p[1] != '5' && p[1] != '6'))
        return DN_OK;
    static const char *const what[3] = {"width", "height", "maximum value"};
    size_t i = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (i < n && pnm_space(p[i]))
                i++;
            if (i >= n || p[i] != '#')
                break;
            while (i < n && p[i] != '\n' && p[i] != '\r')
                i++;
        }
        size_t start = i;
        unsigned long long v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            v = v * 10 + (unsigned)(p[i] - '0');
            if (v > INT_MAX)
                return dn_fail(err, DN_ERR_FORMAT, "%s: offset %zu: PGM/PPM %s has more "
                               "digits than any image needs", name, start, what[k]);
            i++;
        }
    }
    return DN_OK;
}

dn_status dn_stb_guard(const uint8_t *p, size_t n, const char *name, dn_error *err)
{
    dn_status st = check_jpeg(p, n, name, err);
    if (st == DN_OK)
        st = check_pnm(p, n, name, err);
    if (st == DN_OK)
        st = check_bmp(p, n, name, err);
    return st;
}
