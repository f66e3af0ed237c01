/*
 * jpegcheck.c - refuses the JPEG Huffman tables that overflow stb_image.
 *
 * stb_image (Debian's libstb 0.0~git20220908) reads a DHT segment's sixteen
 * code counts and fills its 257-entry size table and 256-entry value table
 * with as many codes as they add up to, up to 16 x 255: a hostile JPEG
 * writes thousands of bytes past them (found by tests/fuzz/fuzz_image.c;
 * the input is kept in tests/fuzz/crashes/image/). JPEG allows at most 256
 * codes per table, so a table claiming more is refused here, before stb
 * sees the file.
 *
 * The walk follows stb's own: segments by their lengths from SOI, bytes
 * that are not 0xFF skipped between segments, fill bytes (0xFF 0xFF)
 * skipped, and, after a scan header, entropy-coded data scanned byte by
 * byte to the next marker, so that a DHT between the scans of a
 * progressive JPEG is checked too. Where the two could part ways (a
 * segment stb would refuse), this check simply goes on looking.
 */
#include "internal.h"

#define M_SOI 0xD8
#define M_EOI 0xD9
#define M_SOS 0xDA
#define M_DHT 0xC4

/* Every table of a DHT segment whose payload (after the length) is p[0..
 * len), with `avail` bytes readable from p: 1 byte class/id, 16 counts,
 * then as many values as the counts add up to. Like stb, a table is read
 * while the segment has bytes left, its values even past the segment. */
static dn_status check_dht(const uint8_t *p, size_t len, size_t avail, size_t at,
                           const char *name, dn_error *err)
{
    size_t i = 0;
    while (i < len && i + 17 <= avail) {
        unsigned n = 0;
        for (int k = 0; k < 16; k++)
            n += p[i + 1 + (size_t)k];
        if (n > 256)
            return dn_fail(err, DN_ERR_FORMAT, "%s: offset %zu: corrupt JPEG: Huffman table "
                           "%u/%u has %u codes, at most 256", name, at + i, p[i] >> 4,
                           p[i] & 15u, n);
        i += 17 + n;
    }
    return DN_OK;
}

dn_status dn_jpeg_check(const uint8_t *p, size_t n, const char *name, dn_error *err)
{
    if (n < 2 || p[0] != 0xFF || p[1] != M_SOI)
        return DN_OK;
    size_t i = 2;
    int entropy = 0; /* after a scan header: coded data until a marker */
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
        if (m == M_EOI)
            break;
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
        if (m == M_DHT) {
            dn_status st = check_dht(p + i + 4, len - 2, n - (i + 4), i + 4, name, err);
            if (st != DN_OK)
                return st;
        }
        entropy = m == M_SOS;
        i = end;
    }
    return DN_OK;
}
