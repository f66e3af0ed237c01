/*
 * test_stbguard.c - the inputs on which stb_image itself goes wrong are
 * refused before it reads them (src/stbguard.c): JPEG Huffman tables that
 * overflow its tables, JPEG scans with undefined tables or a component in
 * no scan, BMP pixels past the palette, PGM/PPM header numbers that
 * overflow its int; real
 * JPEGs and PGMs still load.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *n)
{
    unsigned char *b = (unsigned char *)t_read_file(path, n);
    if (!b)
        fail_msg("cannot read %s", path);
    return b;
}

/* Offset of the first DHT marker (FF C4) in b, or 0. */
static size_t find_dht(const unsigned char *b, size_t n)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC4)
            return i;
    return 0;
}

static void expect_load(const unsigned char *b, size_t n, const char *name, dn_status want,
                        const char *phrase)
{
    dn_image img;
    dn_error err = {0};
    dn_status st = dn_image_load_memory(b, n, name, &img, &err);
    if (st != want || (phrase && (!strstr(err.msg, phrase) || !strstr(err.msg, name))))
        fail_msg("%s: wanted %s%s%s, got %s: %s", name, dn_status_str(want),
                 phrase ? " mentioning " : "", phrase ? phrase : "", dn_status_str(st), err.msg);
    dn_image_free(&img);
}

static void test_oversized_tables_refused(void **state)
{
    (void)state;
    /* The input fuzz_image found: a table of 684 codes. */
    size_t n;
    unsigned char *b =
        slurp("tests/fuzz/crashes/image/crash-db9608f93b09b344dde6cc133405bba5aa8f8033", &n);
    expect_load(b, n, "fuzz-crash.jpg", DN_ERR_FORMAT, "Huffman table 0/0 has 684 codes");
    free(b);
    /* The second: a table whose counts the file cuts off. stb reads the
     * missing bytes as 0, and those present add up to 2256. */
    b = slurp("tests/fuzz/crashes/image/crash-230192ce7b20d90ea7f4c05356790588a5875636", &n);
    expect_load(b, n, "fuzz-crash2.jpg", DN_ERR_FORMAT, "has 2256 codes, at most 256");
    free(b);
    /* The third: fill bytes before the start marker (FF FF D8), which stb
     * skips as it skips them before any marker. */
    b = slurp("tests/fuzz/crashes/image/crash-e709719bbfe0a0de1fbf0f0fdd79aef4bb557a1c", &n);
    expect_load(b, n, "fuzz-crash4.jpg", DN_ERR_FORMAT, "codes, at most 256");
    free(b);
    /* A corrupt JPEG with a PGM header at byte 158, which stb_image read
     * (overflowing its int) when it looked for the size through callbacks
     * after the JPEG reader had gone past its first 128 bytes: refused
     * without reading it (the sanitizer pass of make test would stop on
     * the overflow). */
    b = slurp("tests/fuzz/crashes/image/crash-d40ff84732c6e76153dc9811c379eb1d4980d897", &n);
    expect_load(b, n, "fuzz-crash5.jpg", DN_ERR_FORMAT, "fuzz-crash5.jpg");
    free(b);

    /* A valid JPEG whose first table's counts are raised to 255 each. */
    b = slurp("tests/fixtures/digits/0-pencil.jpg", &n);
    expect_load(b, n, "pencil.jpg", DN_OK, NULL);
    size_t at = find_dht(b, n);
    assert_true(at > 0 && at + 4 + 17 < n);
    for (int k = 0; k < 16; k++)
        b[at + 5 + k] = 255;
    expect_load(b, n, "pencil-4080-codes.jpg", DN_ERR_FORMAT, "has 4080 codes, at most 256");
    /* 257 codes: one too many. */
    memset(b + at + 5, 0, 16);
    b[at + 5 + 15] = 255;
    b[at + 5 + 14] = 2;
    expect_load(b, n, "pencil-257-codes.jpg", DN_ERR_FORMAT, "has 257 codes");
    free(b);
}

/* Offset of the first marker FF m in b, or 0. */
static size_t find_marker(const unsigned char *b, size_t n, unsigned char m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == m)
            return i;
    return 0;
}

static void test_undefined_tables_refused(void **state)
{
    (void)state;
    /* The input fuzz_image found: its DQT marker is damaged, so its scans
     * dequantize with whatever stb's decoder struct held (a different
     * picture on each run). */
    size_t n;
    unsigned char *b =
        slurp("tests/fuzz/crashes/image/crash-fa5a7992cbb20d688bd68904c00136b384d84cd5", &n);
    expect_load(b, n, "fuzz-crash3.jpg", DN_ERR_FORMAT,
                "component 1 uses a quantization table that is not defined");
    free(b);

    b = slurp("tests/fixtures/digits/4-pencil.jpg", &n);
    size_t sos = find_marker(b, n, 0xDA), dqt = find_marker(b, n, 0xDB);
    assert_true(sos > 0 && dqt > 0 && sos + 6 < n);
    /* Its first scan names a component the frame does not have: the
     * frame's first component is in no scan. */
    unsigned char id = b[sos + 5];
    b[sos + 5] = 0x77;
    expect_load(b, n, "no-scan.jpg", DN_ERR_FORMAT, "of the frame is in no scan");
    b[sos + 5] = id;
    /* The DQT turned into an APP15 segment (skipped): no table defined. */
    b[dqt + 1] = 0xEF;
    expect_load(b, n, "no-dqt.jpg", DN_ERR_FORMAT, "quantization table that is not defined");
    b[dqt + 1] = 0xDB;
    /* Likewise the Huffman tables. */
    size_t dht = find_marker(b, n, 0xC4);
    assert_true(dht > 0);
    b[dht + 1] = 0xEF;
    expect_load(b, n, "no-dht.jpg", DN_ERR_FORMAT, "Huffman");
    b[dht + 1] = 0xC4;
    expect_load(b, n, "pencil.jpg", DN_OK, NULL);
    free(b);
}

/* A 2 x 1 8-bit BMP with a palette of two colours, its pixels a and b. */
static size_t palette_bmp(unsigned char *b, unsigned char a, unsigned char c)
{
    memset(b, 0, 66);
    b[0] = 'B', b[1] = 'M', b[2] = 66;
    b[10] = 62;                 /* pixels after 14 + 40 + 2 x 4 bytes */
    b[14] = 40;                 /* BITMAPINFOHEADER */
    b[18] = 2, b[22] = 1;       /* 2 x 1 */
    b[26] = 1, b[28] = 8;       /* 1 plane, 8 bits */
    b[54] = b[55] = b[56] = 0;  /* colour 0 black, colour 1 white */
    b[58] = b[59] = b[60] = 255;
    b[62] = a, b[63] = c;
    return 66;
}

static void test_bmp_palette_refused(void **state)
{
    (void)state;
    /* The input fuzz_image found: pixels at offset 1, so that stb reads
     * every pixel through a palette of -12 colours it never set. */
    size_t n;
    unsigned char *b =
        slurp("tests/fuzz/crashes/image/crash-aae7e4f3fd376cd3aaaafc0c47f4738cc56463da", &n);
    expect_load(b, n, "fuzz-crash.bmp", DN_ERR_FORMAT, "before its palette");
    free(b);
    unsigned char bmp[66];
    n = palette_bmp(bmp, 0, 1);
    expect_load(bmp, n, "palette.bmp", DN_OK, NULL);
    n = palette_bmp(bmp, 1, 2);
    expect_load(bmp, n, "past-palette.bmp", DN_ERR_FORMAT, "colour 2 of a palette of 2");
}

static void test_pnm_numbers_refused(void **state)
{
    (void)state;
    /* The input fuzz_image found: a width of 36 digits. */
    size_t n;
    unsigned char *b =
        slurp("tests/fuzz/crashes/image/crash-c246785a9e779843911b0753d040991c0128fa22", &n);
    expect_load(b, n, "fuzz-crash.pgm", DN_ERR_FORMAT, "PGM/PPM width has more digits");
    free(b);
    static const struct {
        const char *text, *phrase;
    } cases[] = {
        {"P5 2147483648 1 255\n", "width has more digits"},
        {"P6\n# a comment\n2 99999999999\n255\n", "height has more digits"},
        {"P5 2 2 4294967551\n", "maximum value has more digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_load((const unsigned char *)cases[i].text, strlen(cases[i].text), "big.pgm",
                    DN_ERR_FORMAT, cases[i].phrase);
    /* INT_MAX itself is only a size the decoder refuses as too large. */
    static const char edge[] = "P5 2147483647 1 255\n";
    expect_load((const unsigned char *)edge, sizeof edge - 1, "edge.pgm", DN_ERR_FORMAT,
                "2147483647");
    static const unsigned char ok[] = "P5\n# two by one\n2 1\n255\n\x10\xf0";
    expect_load(ok, sizeof ok - 1, "ok.pgm", DN_OK, NULL);
}

static void test_real_jpegs_load(void **state)
{
    (void)state;
    static const char *const files[] = {
        "tests/fixtures/digits/0-pencil.jpg", "tests/fixtures/digits/4-pencil.jpg",
        "tests/fixtures/digits/8-pencil.jpg", "tests/fuzz/corpus/image/rgb.jpg",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t n;
        unsigned char *b = slurp(files[i], &n);
        expect_load(b, n, files[i], DN_OK, NULL);
        free(b);
    }
    /* Not JPEG at all: nothing to check, the decoder decides. */
    static const unsigned char png_sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    expect_load(png_sig, sizeof png_sig, "short.png", DN_ERR_FORMAT, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_tables_refused),
        cmocka_unit_test(test_undefined_tables_refused),
        cmocka_unit_test(test_bmp_palette_refused),
        cmocka_unit_test(test_pnm_numbers_refused),
        cmocka_unit_test(test_real_jpegs_load),
    };
    return cmocka_run_group_tests_name("stbguard", tests, NULL, NULL);
}
