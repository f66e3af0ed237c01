/*
 * test_decode.c - image files to grey images: every format stb_image
 * reads, the fast PNG path against stb_image, and hostile files: truncated
 * at every length, headers claiming absurd sizes, a FIFO for a path.
 * Files are made here: by stb_image_write, by zlib for hand-built PNGs, or
 * byte by byte.
 */
#include "imagetest.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

/* ---- helpers ------------------------------------------------------------ */

static void put32be(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_chunk(t_membuf *m, const char *type, const unsigned char *data, uint32_t len)
{
    unsigned char head[8];
    put32be(head, len);
    memcpy(head + 4, type, 4);
    t_membuf_append(m, head, 8);
    if (len)
        t_membuf_append(m, (void *)data, (int)len);
    /* (zlib's crc32 of a NULL buffer is its initial value, not the CRC) */
    uint32_t crc = (uint32_t)crc32(crc32(0, (const Bytef *)type, 4),
                                   data ? data : (const Bytef *)"", len);
    unsigned char c[4];
    put32be(c, crc);
    t_membuf_append(m, c, 4);
}

/* A PNG of w x h pixels, colour type `type` at 8 bits, from raw rows
 * (h, w * channels); row y filtered with filter (y * 3 + 1) % 5, so every
 * filter is used. plte/trns (may be NULL) are written as given. */
static t_membuf make_png(int w, int h, int type, int depth, const unsigned char *raw, int bpp,
                         const unsigned char *plte, int plte_len, const unsigned char *trns,
                         int trns_len)
{
    size_t len = (size_t)w * (size_t)bpp, stride = len + 1;
    unsigned char *f = calloc((size_t)h, stride);
    assert_non_null(f);
    for (int y = 0; y < h; y++) {
        const unsigned char *x = raw + (size_t)y * len, *b = y ? x - len : NULL;
        unsigned char *o = f + (size_t)y * stride;
        int ft = (y * 3 + 1) % 5;
        o[0] = (unsigned char)ft;
        for (size_t i = 0; i < len; i++) {
            int a = i >= (size_t)bpp ? x[i - bpp] : 0, up = b ? b[i] : 0;
            int c = b && i >= (size_t)bpp ? b[i - bpp] : 0, pred = 0;
            if (ft == 1)
                pred = a;
            else if (ft == 2)
                pred = up;
            else if (ft == 3)
                pred = (a + up) / 2;
            else if (ft == 4) {
                int p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c);
                pred = pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
            }
            o[1 + i] = (unsigned char)(x[i] - pred);
        }
    }
    uLongf zlen = compressBound((uLong)(h * stride));
    unsigned char *z = malloc(zlen);
    assert_non_null(z);
    assert_int_equal(compress2(z, &zlen, f, (uLong)(h * stride), 6), Z_OK);
    t_membuf m = {0};
    t_membuf_append(&m, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13] = {0};
    put32be(ihdr, (uint32_t)w);
    put32be(ihdr + 4, (uint32_t)h);
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = (unsigned char)type;
    put_chunk(&m, "IHDR", ihdr, 13);
    if (plte)
        put_chunk(&m, "PLTE", plte, (uint32_t)plte_len);
    if (trns)
        put_chunk(&m, "tRNS", trns, (uint32_t)trns_len);
    /* the image data split over two IDAT chunks, as large encoders do */
    put_chunk(&m, "IDAT", z, (uint32_t)(zlen / 2));
    put_chunk(&m, "IDAT", z + zlen / 2, (uint32_t)(zlen - zlen / 2));
    put_chunk(&m, "IEND", NULL, 0);
    free(z);
    free(f);
    return m;
}

/* Grey as the library defines it, from stb_image's decoding of the same
 * file: 601 luma in 16-bit fixed point; translucent images blended over the
 * colour that contrasts with what is drawn. */
static void stb_grey(const t_membuf *m, uint8_t *want, int *w, int *h)
{
    int n;
    unsigned char *px = stbi_load_from_memory(m->p, (int)m->len, w, h, &n, 0);
    assert_non_null(px);
    size_t count = (size_t)*w * (size_t)*h;
    uint64_t seen = 0, weight = 0;
    int translucent = 0;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *q = px + i * (size_t)n;
        want[i] = n >= 3 ? (uint8_t)((19595u * q[0] + 38470u * q[1] + 7471u * q[2] + 32768u) >> 16)
                         : q[0];
        if (n == 2 || n == 4) {
            seen += (uint64_t)want[i] * q[n - 1];
            weight += q[n - 1];
            translucent |= q[n - 1] != 255;
        }
    }
    unsigned fill = weight && 2 * seen < 255 * weight ? 255 : 0;
    for (size_t i = 0; translucent && i < count; i++) {
        unsigned a = px[i * (size_t)n + (size_t)n - 1];
        want[i] = (uint8_t)((want[i] * a + fill * (255 - a) + 127) / 255);
    }
    stbi_image_free(px);
}

/* Pixels with flat stretches and edges, as drawings have (flat rows above
 * make the Paeth filter's fast path run). */
static void drawing_bytes(unsigned char *raw, int w, int h, int bpp, unsigned seed)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < bpp; c++) {
                unsigned v = (unsigned)(x / 7 + y / 5) * 37u + (unsigned)c * 91u + seed;
                int stroke = (x - y + 40) % 23 < 6 || (x + 2 * y) % 31 < 3;
                raw[((size_t)y * (size_t)w + (size_t)x) * (size_t)bpp + (size_t)c] =
                    (unsigned char)(stroke ? v * 2654435761u >> 24 : (y < h / 3 ? 255 : v));
            }
}

/* A GIF of w x h palette indices (< 128) in 8-bit LZW codes: a clear code
 * every 100 pixels keeps the code width at 8 bits, so no compressor is
 * needed. */
static t_membuf make_gif(int w, int h, const unsigned char *idx)
{
    t_membuf m = {0};
    unsigned char head[13] = {'G', 'I', 'F', '8', '9', 'a', (unsigned char)w, (unsigned char)(w >> 8),
                              (unsigned char)h, (unsigned char)(h >> 8), 0xf6, 0, 0};
    t_membuf_append(&m, head, 13);
    for (int i = 0; i < 128; i++) {
        unsigned char rgb[3] = {(unsigned char)(2 * i), (unsigned char)(255 - i), (unsigned char)(i * 7)};
        t_membuf_append(&m, rgb, 3);
    }
    unsigned char desc[11] = {',', 0, 0, 0, 0, (unsigned char)w, (unsigned char)(w >> 8),
                              (unsigned char)h, (unsigned char)(h >> 8), 0, 7};
    t_membuf_append(&m, desc, 11);
    t_membuf codes = {0};
    for (int i = 0; i < w * h; i++) {
        if (i % 100 == 0)
            t_membuf_append(&codes, "\x80", 1);
        t_membuf_append(&codes, (void *)(idx + i), 1);
    }
    t_membuf_append(&codes, "\x81", 1);
    for (size_t at = 0; at < codes.len; at += 255) {
        unsigned char n = (unsigned char)(codes.len - at < 255 ? codes.len - at : 255);
        t_membuf_append(&m, &n, 1);
        t_membuf_append(&m, codes.p + at, n);
    }
    t_membuf_append(&m, "\x00;", 2);
    free(codes.p);
    return m;
}

/* A PSD (RGB, 8 bits, raw planes) of w x h from planar data (3, h, w). */
static t_membuf make_psd(int w, int h, const unsigned char *planes)
{
    unsigned char head[26 + 4 + 4 + 4 + 2] = {'8', 'B', 'P', 'S', 0, 1};
    head[13] = 3;
    put32be(head + 14, (uint32_t)h);
    put32be(head + 18, (uint32_t)w);
    head[23] = 8;
    head[25] = 3;
    t_membuf m = {0};
    t_membuf_append(&m, head, sizeof head);
    t_membuf_append(&m, (void *)planes, 3 * w * h);
    return m;
}

/* A Softimage PIC of w x h RGB pixels (interleaved), uncompressed. */
static t_membuf make_pic(int w, int h, const unsigned char *rgb)
{
    unsigned char head[104 + 4] = {0x53, 0x80, 0xf6, 0x34};
    memcpy(head + 88, "PICT", 4);
    head[92] = (unsigned char)(w >> 8);
    head[93] = (unsigned char)w;
    head[94] = (unsigned char)(h >> 8);
    head[95] = (unsigned char)h;
    head[102 - 2] = 0; /* fields */
    /* one packet: not chained, 8 bits, uncompressed, red green blue */
    head[104] = 0;
    head[105] = 8;
    head[106] = 0;
    head[107] = 0xe0;
    t_membuf m = {0};
    t_membuf_append(&m, head, sizeof head);
    t_membuf_append(&m, (void *)rgb, 3 * w * h);
    return m;
}

/* ---- formats ------------------------------------------------------------ */

static void test_decode_formats(void **state)
{
    (void)state;
    /* A 3x2 RGB picture with known colours, through PNG and BMP: grey is
     * the rounded ITU-R 601 luma. */
    const unsigned char rgb[3 * 2 * 3] = {255, 255, 255, 0, 0, 0, 255, 0, 0,
                                          0,   255, 0,   0, 0, 255, 128, 128, 128};
    const uint8_t want[6] = {255, 0, 76, 150, 29, 128};
    char path[512];
    t_membuf m = {0};
    assert_true(stbi_write_png_to_func(t_membuf_append, &m, 3, 2, 3, rgb, 9));
    t_write_file(t_tmppath(path, sizeof path, "rgb.png"), m.p, m.len);
    free(m.p);
    dn_image img;
    dn_error err = {0};
    assert_int_equal(dn_image_load(path, &img, &err), DN_OK);
    assert_int_equal(img.w, 3);
    assert_int_equal(img.h, 2);
    assert_memory_equal(img.grey, want, 6);
    assert_string_equal(img.name, path);
    dn_image_free(&img);
    assert_int_equal(stbi_write_bmp(t_tmppath(path, sizeof path, "rgb.bmp"), 3, 2, 3, rgb), 1);
    assert_int_equal(dn_image_load(path, &img, &err), DN_OK);
    assert_memory_equal(img.grey, want, 6);
    dn_image_free(&img);

    /* GIF: a 1x1 picture whose one pixel is palette entry 0, black in the
     * first file and white in the second. */
    char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00"
                 "\x00\x01\x00\x01\x00\x00\x02\x02" "D\x01\x00;";
    for (int white = 0; white < 2; white++) {
        memset(gif + 13, white ? 0xff : 0, 3);
        memset(gif + 16, white ? 0 : 0xff, 3);
        assert_int_equal(dn_image_load_memory(gif, sizeof gif - 1, "x.gif", &img, &err), DN_OK);
        assert_int_equal(img.w * img.h, 1);
        assert_int_equal(img.grey[0], white ? 255 : 0);
        dn_image_free(&img);
    }

    /* PGM, as netpbm writes it. */
    const char pgm[] = "P5\n# a comment\n2 2\n255\n\x00\x40\x80\xff";
    assert_int_equal(dn_image_load_memory(pgm, sizeof pgm - 1, "x.pgm", &img, &err), DN_OK);
    assert_int_equal(img.grey[1], 64);
    assert_int_equal(img.grey[3], 255);
    dn_image_free(&img);
}

static void test_decode_transparent(void **state)
{
    (void)state;
    /* Strokes on a transparent canvas, as a browser drawing exports them:
     * the background takes the colour that keeps the strokes visible. */
    unsigned char rgba[4 * 4 * 4] = {0};
    for (int ink = 0; ink < 2; ink++) {
        for (int i = 0; i < 16; i++) {
            unsigned char *p = rgba + 4 * i;
            p[0] = p[1] = p[2] = ink ? 255 : 0;
            p[3] = i % 4 == 1 ? 255 : 0;
        }
        t_membuf m = {0};
        assert_true(stbi_write_png_to_func(t_membuf_append, &m, 4, 4, 4, rgba, 16));
        dn_image img;
        dn_error err = {0};
        assert_int_equal(dn_image_load_memory(m.p, m.len, "canvas.png", &img, &err), DN_OK);
        free(m.p);
        for (int i = 0; i < 16; i++) {
            int stroke = ink ? 255 : 0;
            assert_int_equal(img.grey[i], i % 4 == 1 ? stroke : 255 - stroke);
        }
        dn_image_free(&img);
    }
}

/* The fast PNG path (every colour type at 8 bits, every filter, palettes
 * with transparency, image data split over chunks) gives what stb_image
 * gives; a 16-bit PNG goes to stb_image and gives the same too. */
static void test_png_fast_path(void **state)
{
    (void)state;
    enum { W = 67, H = 41 };
    static const int types[] = {0, 2, 3, 4, 6, 6, 0};
    static const int bpps[] = {1, 3, 1, 2, 4, 4, 2};
    unsigned char raw[W * H * 4], plte[3 * 40], trns[10];
    for (int i = 0; i < 40; i++) {
        plte[3 * i] = (unsigned char)(i * 6);
        plte[3 * i + 1] = (unsigned char)(255 - i * 5);
        plte[3 * i + 2] = (unsigned char)(i * 97);
    }
    for (int i = 0; i < 10; i++)
        trns[i] = (unsigned char)(i * 25);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int bpp = bpps[k], type = types[k], depth = k == 6 ? 16 : 8;
        drawing_bytes(raw, W, H, bpp, (unsigned)k * 11u);
        if (type == 3)
            for (int i = 0; i < W * H; i++)
                raw[i] %= 40;
        if (k == 5) /* RGBA, all opaque */
            for (int i = 0; i < W * H; i++)
                raw[4 * i + 3] = 255;
        t_membuf m = make_png(depth == 16 ? W / 2 : W, H, type, depth, raw, bpp,
                              type == 3 ? plte : NULL, 120, type == 3 ? trns : NULL, 10);
        uint8_t want[W * H];
        int w, h;
        stb_grey(&m, want, &w, &h);
        dn_image img;
        dn_error err = {0};
        if (dn_image_load_memory(m.p, m.len, "f.png", &img, &err) != DN_OK)
            fail_msg("colour type %d: %s", type, err.msg);
        assert_int_equal(img.w, w);
        assert_int_equal(img.h, h);
        if (memcmp(img.grey, want, (size_t)w * (size_t)h))
            fail_msg("colour type %d (depth %d): grey differs from stb_image's", type, depth);
        dn_image_free(&img);
        free(m.p);
    }
}

/* ---- hostile files ------------------------------------------------------ */

/* The file cut at every length: each cut is refused with one line naming
 * it, or (when only bytes after the image were cut, such as a GIF's
 * trailer) decodes to exactly the whole file's pixels - never to pixels
 * completed with zeros. Returns how many cuts were refused. */
static int check_cuts(const char *name, const unsigned char *data, size_t len)
{
    dn_image full, img;
    dn_error err = {0};
    if (dn_image_load_memory(data, len, name, &full, &err) != DN_OK)
        fail_msg("%s: the whole file is refused: %s", name, err.msg);
    int refused = 0;
    for (size_t cut = 1; cut < len; cut++) {
        dn_status st = dn_image_load_memory(data, cut, name, &img, &err);
        if (st != DN_OK) {
            t_expect_error(st, &err, name, NULL);
            refused++;
            continue;
        }
        if (img.w != full.w || img.h != full.h ||
            memcmp(img.grey, full.grey, (size_t)img.w * (size_t)img.h))
            fail_msg("%s cut to %zu of %zu bytes: accepted with pixels the file does not have",
                     name, cut, len);
        dn_image_free(&img);
    }
    dn_image_free(&full);
    return refused;
}

static void test_truncated_every_format(void **state)
{
    (void)state;
    enum { S = 16 };
    unsigned char px[S * S * 4], pnm[64 + S * S * 3];
    drawing_bytes(px, S, S, 4, 5);
    for (int i = 0; i < S * S * 4; i++)
        px[i] |= 1; /* no zero byte, so a zero-filled pixel always shows */
    t_membuf f[12] = {{0}};
    const char *names[12] = {"t.png", "t16.png", "t.jpg", "t.bmp", "t32.bmp", "t.tga",
                             "trle.tga", "t0.tga", "t.gif", "t.pgm", "t.ppm", "t.psd"};
    assert_true(stbi_write_png_to_func(t_membuf_append, &f[0], S, S, 4, px, 4 * S));
    f[1] = make_png(S, S, 0, 16, px, 2, NULL, 0, NULL, 0);
    assert_true(stbi_write_jpg_to_func(t_membuf_append, &f[2], S, S, 3, px, 90));
    assert_true(stbi_write_bmp_to_func(t_membuf_append, &f[3], S, S, 3, px));
    assert_true(stbi_write_bmp_to_func(t_membuf_append, &f[4], S, S, 4, px));
    stbi_write_tga_with_rle = 0;
    assert_true(stbi_write_tga_to_func(t_membuf_append, &f[5], S, S, 3, px));
    stbi_write_tga_with_rle = 1;
    assert_true(stbi_write_tga_to_func(t_membuf_append, &f[6], S, S, 3, px));
    assert_true(stbi_write_tga_to_func(t_membuf_append, &f[7], S, S, 1, px));
    unsigned char idx[S * S];
    for (int i = 0; i < S * S; i++)
        idx[i] = (unsigned char)(px[i] % 127 + 1);
    f[8] = make_gif(S, S, idx);
    for (int k = 0; k < 2; k++) {
        int n = snprintf((char *)pnm, 64, "P%d\n%d %d\n255\n", 5 + k, S, S);
        memcpy(pnm + n, px, (size_t)(S * S * (k ? 3 : 1)));
        t_membuf_append(&f[9 + k], pnm, n + S * S * (k ? 3 : 1));
    }
    f[11] = make_psd(S, S, px);
    for (int k = 0; k < 12; k++) {
        int refused = check_cuts(names[k], f[k].p, f[k].len);
        print_message("%-8s %4zu bytes: %4d of %4zu cuts refused, the rest complete\n", names[k],
                      f[k].len, refused, f[k].len - 1);
        /* at least every cut inside the pixels (the last quarter) */
        assert_true((size_t)refused >= f[k].len / 4);
        free(f[k].p);
    }
}

/* Headers claiming absurd sizes are refused as too large, naming the size,
 * before any pixel is allocated. */
static void test_huge_headers(void **state)
{
    (void)state;
    t_membuf png = {0};
    unsigned char ihdr[13] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 6};
    t_membuf_append(&png, "\x89PNG\r\n\x1a\n", 8);
    put_chunk(&png, "IHDR", ihdr, 13);
    put_chunk(&png, "IEND", NULL, 0);
    unsigned char bmp[54] = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0,
                             0xa0, 0x86, 1, 0, 0xa0, 0x86, 1, 0, 1, 0, 24};
    unsigned char psd[40] = {'8', 'B', 'P', 'S', 0, 1, 0, 0, 0, 0, 0, 0, 0, 3};
    put32be(psd + 14, 100000);
    put32be(psd + 18, 100000);
    psd[23] = 8;
    psd[25] = 3;
    unsigned char gif[32] = {'G', 'I', 'F', '8', '9', 'a', 0xff, 0xff, 0xff, 0xff, 0, 0, 0,
                             ',', 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 2, 2, 'D', 1, 0, ';'};
    unsigned char tga[18 + 3] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 24};
    unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0xff, 0xff, 0xff, 0xff, 3,
                           1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 0xff, 0xd9};
    const char pgm[] = "P5\n100000 100000\n255\n\x01\x02\x03";
    struct {
        const char *name, *size;
        const void *p;
        size_t len;
    } cases[] = {
        {"huge.png", "100000x100000", png.p, png.len}, {"huge.bmp", "100000x100000", bmp, 54},
        {"huge.psd", "100000x100000", psd, 40},        {"huge.gif", "65535x65535", gif, 29},
        {"huge.tga", "65535x65535", tga, 21},          {"huge.jpg", "65535x65535", jpg, sizeof jpg},
        {"huge.pgm", "100000x100000", pgm, sizeof pgm - 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dn_image img;
        dn_error err = {0};
        dn_status st = dn_image_load_memory(cases[i].p, cases[i].len, cases[i].name, &img, &err);
        t_expect_error(st, &err, cases[i].name, cases[i].size);
        t_expect_error(st, &err, cases[i].name, "too large");
    }
    free(png.p);
}

/* Radiance HDR and Softimage PIC are refused outright: on a cut file
 * stb_image loops for ever in the one and crashes in the other. */
static void test_refused_formats(void **state)
{
    (void)state;
    unsigned char rgb[4 * 4 * 3];
    float hdr[4 * 4 * 3];
    for (int i = 0; i < 4 * 4 * 3; i++) {
        rgb[i] = (unsigned char)(i * 5 + 1);
        hdr[i] = (float)rgb[i] / 255;
    }
    t_membuf files[2] = {make_pic(4, 4, rgb), {0}};
    assert_true(stbi_write_hdr_to_func(t_membuf_append, &files[1], 4, 4, 3, hdr));
    const char *names[2] = {"x.pic", "x.hdr"}, *what[2] = {"PIC images are not read",
                                                           "HDR images are not read"};
    for (int k = 0; k < 2; k++) {
        int w, h, n; /* stb_image reads the whole file ... */
        unsigned char *px = stbi_load_from_memory(files[k].p, (int)files[k].len, &w, &h, &n, 0);
        assert_non_null(px);
        stbi_image_free(px);
        dn_image img; /* ... but we do not */
        dn_error err = {0};
        t_expect_error(dn_image_load_memory(files[k].p, files[k].len, names[k], &img, &err), &err,
                       names[k], what[k]);
        free(files[k].p);
    }
}

static void test_decode_bad(void **state)
{
    (void)state;
    char path[512];
    dn_image img;
    dn_error err = {0};
    dn_status st;

    st = dn_image_load(t_tmppath(path, sizeof path, "missing.png"), &img, &err);
    t_expect_error(st, &err, "missing.png", "cannot open");
    t_write_file(t_tmppath(path, sizeof path, "empty.png"), "", 0);
    st = dn_image_load(path, &img, &err);
    t_expect_error(st, &err, "empty.png", "empty");
    const char text[] = "this is not an image\n";
    t_write_file(t_tmppath(path, sizeof path, "text.png"), text, sizeof text - 1);
    st = dn_image_load(path, &img, &err);
    t_expect_error(st, &err, "text.png", "not an image");
    st = dn_image_load(t_tmpdir(), &img, &err);
    t_expect_error(st, &err, t_tmpdir(), "not a regular file");

    /* A canvas-like PNG: a byte changed in the image data fails its CRC,
     * the file cut before IEND is truncated, rows missing from valid image
     * data are named. */
    unsigned char raw[40 * 30 * 4];
    drawing_bytes(raw, 40, 30, 4, 3);
    t_membuf m = make_png(40, 30, 6, 8, raw, 4, NULL, 0, NULL, 0);
    m.p[60] ^= 0x10;
    st = dn_image_load_memory(m.p, m.len, "flip.png", &img, &err);
    t_expect_error(st, &err, "flip.png", "CRC");
    m.p[60] ^= 0x10;
    st = dn_image_load_memory(m.p, m.len - 12, "noend.png", &img, &err);
    t_expect_error(st, &err, "noend.png", "truncated PNG");
    put32be(m.p + 20, 31); /* IHDR says one row more than the data has */
    put32be(m.p + 29, (uint32_t)crc32(0, m.p + 12, 17));
    st = dn_image_load_memory(m.p, m.len, "short.png", &img, &err);
    t_expect_error(st, &err, "short.png", "row 30 of 31");
    free(m.p);

    const char wide[] = "P5\n9000 10\n255\n";
    st = dn_image_load_memory(wide, sizeof wide - 1, "wide.pgm", &img, &err);
    t_expect_error(st, &err, "wide.pgm", "9000x10");
    const char zero[] = "P5\n0 5\n255\n";
    st = dn_image_load_memory(zero, sizeof zero - 1, "zero.pgm", &img, &err);
    t_expect_error(st, &err, "zero.pgm", NULL);
}

/* A path that is a FIFO is refused at once; opening it for reading would
 * wait for a writer forever (the alarm ends the test if it does). */
static void test_fifo(void **state)
{
    (void)state;
    char path[512];
    t_tmppath(path, sizeof path, "fifo.png");
    unlink(path);
    if (mkfifo(path, 0600) != 0)
        skip();
    dn_image img;
    dn_error err = {0};
    alarm(10);
    dn_status st = dn_image_load(path, &img, &err);
    alarm(0);
    t_expect_error(st, &err, "fifo.png", "not a regular file");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_formats),
        cmocka_unit_test(test_decode_transparent),
        cmocka_unit_test(test_png_fast_path),
        cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_truncated_every_format),
        cmocka_unit_test(test_huge_headers),
        cmocka_unit_test(test_refused_formats),
        cmocka_unit_test(test_fifo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
