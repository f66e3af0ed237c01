/*
 * make_corpus.c - writes the seed corpora of the fuzz targets into
 * tests/fuzz/corpus/<target>/ (`make fuzz-corpus`; the output is
 * committed). Small, valid files of each kind, a few near misses, and the
 * hostile files of issue 9, so that libFuzzer starts deep in each reader.
 * Everything is made with the library itself, zlib and stb_image_write.
 */
#include "digitnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

static const char *root = "tests/fuzz/corpus";

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, detail);
    exit(1);
}

static void put(const char *target, const char *name, const void *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(root, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        die(path, strerror(errno));
}

/* put() with a leading byte (the fuzz_idx mode). */
static void put_mode(const char *name, unsigned mode, const void *data, size_t size)
{
    uint8_t *b = malloc(size + 1);
    if (!b)
        die(name, "out of memory");
    b[0] = (uint8_t)mode;
    memcpy(b + 1, data, size);
    put("idx", name, b, size + 1);
    free(b);
}

static void be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static size_t gzip(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("zlib", "deflateInit2");
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("zlib", "deflate");
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

/* ------------------------------------------------------------------------ */

static size_t idx_images(uint8_t *b, uint32_t n, uint32_t rows, uint32_t cols)
{
    be32(b, 0x803);
    be32(b + 4, n);
    be32(b + 8, rows);
    be32(b + 12, cols);
    for (size_t i = 0; i < (size_t)n * rows * cols; i++)
        b[16 + i] = (uint8_t)(i * 29 % 256);
    return 16 + (size_t)n * rows * cols;
}

static size_t idx_labels(uint8_t *b, uint32_t n)
{
    be32(b, 0x801);
    be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)(i % 10);
    return 8 + n;
}

static void idx_corpus(void)
{
    static uint8_t img[16 + 2 * 784], lab[8 + 16], gz[4096], both[4096];
    size_t ni = idx_images(img, 2, 28, 28), nl = idx_labels(lab, 2);
    put_mode("images-2x28x28", 0, img, ni);
    put_mode("images-2x28x28-gzipped", 1, img, ni);
    put_mode("images-2x28x28.gz", 0, gz, gzip(img, ni, gz, sizeof gz));
    put_mode("images-truncated", 0, img, ni - 5);
    size_t small = idx_images(img, 3, 2, 5);
    put_mode("images-3x2x5", 0, img, small);
    put_mode("labels-2", 2, lab, nl);
    put_mode("labels-10-gzipped", 3, lab, idx_labels(lab, 10));
    put_mode("labels-10.gz", 2, gz, gzip(lab, 8 + 10, gz, sizeof gz));
    lab[8 + 3] = 10;
    put_mode("labels-bad-label", 2, lab, 8 + 10);
    /* Datasets: two bytes give the length of the images file. */
    ni = idx_images(img, 2, 28, 28);
    nl = idx_labels(lab, 2);
    both[0] = (uint8_t)(ni >> 8);
    both[1] = (uint8_t)ni;
    memcpy(both + 2, img, ni);
    memcpy(both + 2 + ni, lab, nl);
    put_mode("dataset-2", 4, both, 2 + ni + nl);
    put_mode("dataset-2-gzipped", 5, both, 2 + ni + nl);
    nl = idx_labels(lab, 3);
    memcpy(both + 2 + ni, lab, nl);
    put_mode("dataset-count-mismatch", 4, both, 2 + ni + nl);
    /* Issue 9: a header claiming 4,294,967,295 images, gzipped. */
    uint8_t h[16];
    be32(h, 0x803);
    be32(h + 4, 0xffffffffu);
    be32(h + 8, 28);
    be32(h + 12, 28);
    put_mode("issue9-count-claim.gz", 0, gz, gzip(h, 16, gz, sizeof gz));
    be32(h + 4, 1);
    be32(h + 8, 65535);
    be32(h + 12, 65535);
    put_mode("issue9-side-claim.gz", 0, gz, gzip(h, 16, gz, sizeof gz));
}

/* ------------------------------------------------------------------------ */

/* Copies the file at path (then removed) into the corpus: the library
 * writes by rename, so the file must be opened anew after. */
static void put_file(const char *target, const char *name, const char *path)
{
    static uint8_t buf[1 << 20];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || n == 0 || n == sizeof buf)
        die(path, "cannot read it back");
    fclose(f);
    remove(path);
    put(target, name, buf, n);
}

static void save(const char *target, const char *name, const char *spec, dn_shape in,
                 const dn_file_extras *x)
{
    dn_error err = {0};
    dn_model *m = dn_model_new(spec, in, 3, &err);
    if (!m)
        die(spec, err.msg);
    char tmp[] = "/tmp/make_corpus.XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        die("mkstemp", strerror(errno));
    if (dn_model_save(m, tmp, x, &err) != DN_OK)
        die(tmp, err.msg);
    dn_model_free(m);
    close(fd);
    put_file(target, name, tmp);
}

static void model_corpus(void)
{
    dn_shape in = {1, 4, 4};
    save("modelfile", "fc-1x4x4", "flatten, fc 10, logsoftmax", in, NULL);
    dn_shape in6 = {1, 6, 6};
    save("modelfile", "conv-1x6x6",
         "conv 2 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, flatten, fc 3, relu, fc 10, "
         "logsoftmax",
         in6, NULL);
    dn_shape in2 = {2, 5, 3};
    save("modelfile", "maxpool-2x5x3", "maxpool k2 s1 p1, conv 1 k2, flatten, fc 2", in2, NULL);
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    float v[4] = {0.5f, -1.0f, 0.0f, 2.0f};
    x.n_tensors = 1;
    snprintf(x.tensors[0].name, sizeof x.tensors[0].name, "optim.square_avg");
    x.tensors[0].data = v;
    x.tensors[0].len = 4;
    x.n_meta = 1;
    snprintf(x.meta[0].key, sizeof x.meta[0].key, "train.epoch");
    snprintf(x.meta[0].value, sizeof x.meta[0].value, "1");
    save("modelfile", "fc-with-extras", "flatten, fc 10, logsoftmax", in, &x);
    /* Issue 9's 80-byte file: a 2-billion-parameter spec, no tensors. */
    static const char issue[] =
        "{\"__metadata__\":{\"arch\":\"flatten, fc 32767\",\"input\":\"1x256x256\"}}";
    uint8_t b[80];
    size_t hl = sizeof issue - 1, padded = (hl + 7) & ~(size_t)7;
    memset(b, ' ', sizeof b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, issue, hl);
    put("modelfile", "issue9-80-bytes", b, 8 + padded);
}

static void spec_corpus(void)
{
    static const struct {
        const char *name;
        uint8_t c, h, w;
        const char *spec;
    } s[] = {
        {"default", 0, 27, 27, DN_DEFAULT_SPEC},
        {"fc", 0, 3, 3, "flatten, fc 10, logsoftmax"},
        {"options", 2, 15, 9, "conv 4 k5 p2 s2, relu, maxpool k3 s2 p1, dropout2d 0.25, "
                              "flatten, fc 7"},
        {"spaces", 0, 27, 27, "  conv   8 , relu,maxpool 2 ,flatten,fc 10 ,logsoftmax "},
        {"bad-shape", 0, 1, 1, "conv 8 k5, maxpool 2"},
        {"bad-word", 0, 27, 27, "conv 8, softmax"},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        size_t n = strlen(s[i].spec);
        uint8_t b[512];
        b[0] = s[i].c;
        b[1] = s[i].h;
        b[2] = s[i].w;
        memcpy(b + 3, s[i].spec, n);
        put("spec", s[i].name, b, 3 + n);
    }
}

/* ------------------------------------------------------------------------ */

static void write_func(void *ctx, void *data, int size)
{
    FILE *f = ctx;
    fwrite(data, 1, (size_t)size, f);
}

/* An image written by stb_image_write into memory (kind 0 PNG, 1 BMP,
 * 2 TGA, 3 JPEG); malloc'd, its size in *n. */
static char *stb_encode(const char *name, int kind, int w, int h, int comp, const uint8_t *px,
                        size_t *n)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, n);
    int ok = 0;
    if (f) {
        if (kind == 0)
            ok = stbi_write_png_to_func(write_func, f, w, h, comp, px, w * comp);
        else if (kind == 1)
            ok = stbi_write_bmp_to_func(write_func, f, w, h, comp, px);
        else if (kind == 2)
            ok = stbi_write_tga_to_func(write_func, f, w, h, comp, px);
        else
            ok = stbi_write_jpg_to_func(write_func, f, w, h, comp, px, 80);
        fclose(f);
    }
    if (!ok)
        die(name, "stb_image_write failed");
    return buf;
}

/* An image written by stb_image_write into memory, then put(). */
static void put_stb(const char *name, int kind, int w, int h, int comp, const uint8_t *px)
{
    size_t n = 0;
    char *buf = stb_encode(name, kind, w, h, comp, px, &n);
    put("image", name, buf, n);
    /* The issue's truncated files: the same, cut short. */
    char cut[64];
    snprintf(cut, sizeof cut, "%s-truncated", name);
    put("image", cut, buf, n * 2 / 3);
    free(buf);
}

/* A GIF of a w x h grey image in four levels, LZW-coded with a clear code
 * before every pair of pixels so that codes stay 3 bits wide (valid, if
 * not small). Returns its size in out. */
static size_t gif_grey4(uint8_t *out, const uint8_t *grey, int w, int h)
{
    size_t n = 0;
    static const uint8_t head[] = {'G', 'I', 'F', '8', '9', 'a'};
    memcpy(out, head, 6);
    n = 6;
    out[n++] = (uint8_t)w, out[n++] = 0, out[n++] = (uint8_t)h, out[n++] = 0;
    out[n++] = 0x81; /* global colour table of 4 entries */
    out[n++] = 0, out[n++] = 0;
    for (int i = 0; i < 12; i++)
        out[n++] = (uint8_t)(i / 3 * 85);
    out[n++] = 0x2c;
    for (int i = 0; i < 4; i++)
        out[n++] = 0;
    out[n++] = (uint8_t)w, out[n++] = 0, out[n++] = (uint8_t)h, out[n++] = 0, out[n++] = 0;
    out[n++] = 2; /* LZW minimum code size: clear 4, end 5 */
    uint8_t codes[512];
    size_t bits = 0;
    memset(codes, 0, sizeof codes);
    for (int i = 0; i <= w * h; i++) {
        int seq[2], k = 0;
        if (i == w * h)
            seq[k++] = 5;
        else {
            if (i % 2 == 0)
                seq[k++] = 4;
            seq[k++] = grey[i] / 64;
        }
        for (int j = 0; j < k; j++)
            for (int b = 0; b < 3; b++, bits++)
                codes[bits / 8] |= (uint8_t)(((seq[j] >> b) & 1) << (bits % 8));
    }
    size_t len = (bits + 7) / 8;
    out[n++] = (uint8_t)len;
    memcpy(out + n, codes, len);
    n += len;
    out[n++] = 0;
    out[n++] = 0x3b;
    return n;
}

static void image_corpus(void)
{
    /* A "7" in a 12 x 12 picture: dark strokes on a light background. */
    enum { W = 12, H = 12 };
    uint8_t grey[W * H], rgb[W * H * 3], rgba[W * H * 4];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int ink = (y == 2 && x >= 3 && x <= 9) || (y > 2 && y < 10 && x == 9 - (y - 2) / 2);
            int i = y * W + x;
            grey[i] = ink ? 30 : 230;
            rgb[3 * i] = ink ? 20 : 240;
            rgb[3 * i + 1] = ink ? 40 : 235;
            rgb[3 * i + 2] = ink ? 160 : 220;
            memcpy(rgba + 4 * i, rgb + 3 * i, 3);
            rgba[4 * i + 3] = ink ? 255 : 0;
        }
    }
    put_stb("grey.png", 0, W, H, 1, grey);
    put_stb("rgba.png", 0, W, H, 4, rgba);
    put_stb("rgb.bmp", 1, W, H, 3, rgb);
    put_stb("grey.tga", 2, W, H, 1, grey);
    put_stb("rgb.jpg", 3, W, H, 3, rgb);
    /* PGM and PPM, binary and ASCII. */
    char hdr[64];
    uint8_t b[64 + W * H * 3];
    int hl = snprintf(hdr, sizeof hdr, "P5\n%d %d\n255\n", W, H);
    memcpy(b, hdr, (size_t)hl);
    memcpy(b + hl, grey, W * H);
    put("image", "grey.pgm", b, (size_t)hl + W * H);
    put("image", "grey.pgm-truncated", b, (size_t)hl + W * H / 2);
    hl = snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", W, H);
    memcpy(b, hdr, (size_t)hl);
    memcpy(b + hl, rgb, W * H * 3);
    put("image", "rgb.ppm", b, (size_t)hl + W * H * 3);
    static const char ascii[] = "P2\n3 2\n15\n0 15 3\n7 9 1\n";
    put("image", "ascii.pgm", ascii, sizeof ascii - 1);
    uint8_t gif[1024];
    size_t gn = gif_grey4(gif, grey, W, H);
    put("image", "grey.gif", gif, gn);
    put("image", "grey.gif-truncated", gif, gn * 2 / 3);
    /* A header claiming 100000 x 100000 (issue 9). */
    static const uint8_t huge_pgm[] = "P5\n100000 100000\n255\n\0\0\0\0";
    put("image", "issue9-huge.pgm", huge_pgm, sizeof huge_pgm - 1);
}

/* ------------------------------------------------------------------------ */

static int stop_after_batch(const dn_train_progress *p, void *user)
{
    (void)user;
    return !p->epoch_done && p->batch == 1;
}

/* Checkpoints of a 20-parameter model trained on 8 of 16 synthetic images
 * (the fuzz target's dataset): after an epoch, mid-epoch, other optimizers. */
static void checkpoint_corpus(void)
{
    static uint8_t images[16 * 28 * 28], labels[16];
    for (size_t i = 0; i < sizeof images; i++)
        images[i] = (uint8_t)(i * 37 % 251);
    for (int i = 0; i < 16; i++)
        labels[i] = (uint8_t)(i % 10);
    dn_dataset ds = {images, labels, 16, 28, 28, DN_MNIST_MEAN, DN_MNIST_STD, "mnist",
                     dn_class_names("mnist")};
    static const struct {
        const char *name;
        dn_optim_kind optim;
        dn_sched_kind sched;
        int stop;
    } runs[] = {
        {"adadelta-step-epoch1", DN_OPTIM_ADADELTA, DN_SCHED_STEP, 0},
        {"adadelta-step-mid-epoch", DN_OPTIM_ADADELTA, DN_SCHED_STEP, 1},
        {"adam-onecycle-epoch1", DN_OPTIM_ADAM, DN_SCHED_ONECYCLE, 0},
        {"sgd-cosine-epoch1", DN_OPTIM_SGD, DN_SCHED_COSINE, 0},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        dn_error err = {0};
        dn_shape in = {1, 28, 28};
        dn_model *m = dn_model_new("maxpool 28, flatten, fc 10, logsoftmax", in, 1, &err);
        if (!m)
            die("checkpoint model", err.msg);
        char tmp[] = "/tmp/make_corpus.XXXXXX";
        int fd = mkstemp(tmp);
        if (fd < 0)
            die("mkstemp", strerror(errno));
        dn_train_config c;
        dn_train_defaults(&c);
        dn_optim_defaults(&c.optim, runs[i].optim);
        dn_sched_defaults(&c.sched, runs[i].sched);
        if (runs[i].optim == DN_OPTIM_SGD)
            c.optim.momentum = 0.9;
        c.epochs = 1;
        c.batch = 4;
        c.limit = 8;
        c.threads = 1;
        c.checkpoint = tmp;
        c.progress = runs[i].stop ? stop_after_batch : NULL;
        dn_status st = dn_train(m, &ds, NULL, &c, NULL, &err);
        if (st != DN_OK && !(runs[i].stop && st == DN_ERR_INTERRUPTED))
            die(runs[i].name, err.msg);
        dn_model_free(m);
        close(fd);
        put_file("checkpoint", runs[i].name, tmp);
    }
}

/* ------------------------------------------------------------------------ */

/* A request for fuzz_http: head (request line and headers, without the
 * blank line) and body; "Content-Length: ?" in head is filled in by the
 * target. */
static void put_request(const char *name, const char *head, const void *body, size_t n)
{
    size_t hn = strlen(head);
    char *b = malloc(hn + 4 + n);
    if (!b)
        die(name, "out of memory");
    memcpy(b, head, hn);
    memcpy(b + hn, "\r\n\r\n", 4);
    if (n)
        memcpy(b + hn + 4, body, n);
    put("http", name, b, hn + 4 + n);
    free(b);
}

static char *base64(const char *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    if (!out)
        die("base64", "out of memory");
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)data[i] << 16;
        v |= i + 1 < n ? (uint32_t)(uint8_t)data[i + 1] << 8 : 0;
        v |= i + 2 < n ? (uint8_t)data[i + 2] : 0;
        *o++ = abc[v >> 18];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Every route of `digitnet serve` answered, and the requests it refuses:
 * wrong method, unknown path, Content-Type, size, JSON, base64, flags. */
static void http_corpus(void)
{
    /* A "1": a bar down the middle of a 28 x 28, white on black as the
     * API's pixels are, and as a PNG of dark ink on white. */
    uint8_t px[28 * 28], ink[28 * 28];
    for (int i = 0; i < 28 * 28; i++) {
        int on = i % 28 >= 13 && i % 28 <= 15 && i / 28 >= 4 && i / 28 <= 23;
        px[i] = on ? 255 : 0;
        ink[i] = on ? 20 : 235;
    }
    size_t png_n;
    char *png = stb_encode("http png", 0, 28, 28, 1, ink, &png_n);
    char *png64 = base64(png, png_n);
    char pixels[4096];
    size_t pn = (size_t)snprintf(pixels, sizeof pixels, "{\"pixels\":[");
    for (int i = 0; i < 28 * 28; i++)
        pn += (size_t)snprintf(pixels + pn, sizeof pixels - pn, "%s%d", i ? "," : "", px[i]);
    pn += (size_t)snprintf(pixels + pn, sizeof pixels - pn, "]}");
    size_t jn = strlen(png64) + 64;
    char *image = malloc(jn), *bare = malloc(jn), *batch = malloc(jn + pn + 8);
    if (!image || !bare || !batch)
        die("http corpus", "out of memory");
    snprintf(image, jn, "{\"image\":\"data:image/png;base64,%s\"}", png64);
    snprintf(bare, jn, "{\"image\":\"%s\"}", png64);
    snprintf(batch, jn + pn + 8, "[%s,%s]", pixels, image);

    static const char *const gets[][2] = {
        {"get-page", "GET / HTTP/1.1\r\nHost: localhost"},
        {"head-index", "HEAD /index.html HTTP/1.1\r\nHost: localhost"},
        {"get-model", "GET /api/model HTTP/1.1\r\nHost: localhost"},
        {"get-openapi", "GET /api/openapi.json HTTP/1.1\r\nHost: localhost"},
        {"get-healthz", "GET /healthz HTTP/1.0"},
        {"get-metrics", "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close"},
        {"get-sample", "GET /api/sample HTTP/1.1\r\nHost: localhost"},
        {"get-sample-3", "GET /api/sample?index=3 HTTP/1.1\r\nHost: localhost"},
        {"get-sample-past", "GET /api/sample?index=10 HTTP/1.1\r\nHost: localhost"},
        {"get-sample-bad", "GET /api/sample?index=-1&index=x HTTP/1.1\r\nHost: localhost"},
        {"get-predict", "GET /api/predict HTTP/1.1\r\nHost: localhost"},
        {"delete-healthz", "DELETE /healthz HTTP/1.1\r\nHost: localhost"},
        {"get-none", "GET /api/nothing/../model%00 HTTP/1.1\r\nHost: localhost"},
        {"too-big", "POST /api/predict HTTP/1.1\r\nHost: localhost\r\n"
                    "Content-Type: image/png\r\nContent-Length: 2000000"},
        {"bad-line", "BLAH\r\nHost: localhost"},
        {"no-colon", "GET /healthz HTTP/1.1\r\nHost localhost\r\n: empty"},
    };
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++)
        put_request(gets[i][0], gets[i][1], NULL, 0);
    static const char pipelined[] =
        "GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /favicon.svg HTTP/1.1\r\nHost: localhost\r\n\r\n"
        "GET /backend-http.js HTTP/1.1\r\nHost: localhost\r\n\r\n";
    put("http", "get-assets-pipelined", pipelined, sizeof pipelined - 1);
    static const char http09[] = "GET /\r\n";
    put("http", "http-0.9", http09, sizeof http09 - 1);

#define POST(path, type) "POST " path " HTTP/1.1\r\nHost: localhost\r\nContent-Type: " type \
                         "\r\nContent-Length: ?"
    put_request("predict-png", POST("/api/predict", "image/png"), png, png_n);
    put_request("predict-png-flags", POST("/api/predict?maps=1&naive=true&raw=0", "image/png"),
                png, png_n);
    put_request("predict-png-raw", POST("/api/predict?raw", "application/octet-stream"), png,
                png_n);
    put_request("predict-png-cut", POST("/api/predict", "image/jpeg"), png, png_n / 2);
    put_request("predict-pixels-saliency",
                POST("/api/predict?saliency=1", "application/json; charset=utf-8"), pixels, pn);
    put_request("predict-image", POST("/api/predict", "application/json"), image,
                strlen(image));
    put_request("predict-bare-base64", POST("/api/predict?maps=1", "Application/JSON"), bare,
                strlen(bare));
    put_request("batch", POST("/api/predict/batch?raw=1&naive=1", "application/json"), batch,
                strlen(batch));
    put_request("batch-empty", POST("/api/predict/batch", "application/json"), "[]", 2);
    put_request("batch-text", POST("/api/predict/batch", "text/plain"), batch, strlen(batch));
    put_request("predict-bad-json", POST("/api/predict", "application/json"), pixels, pn / 2);
    put_request("predict-bad-flag", POST("/api/predict?maps=2", "image/png"), png, png_n);
    static const char both[] = "{\"pixels\":[0,300],\"image\":\"data:,x\"}";
    put_request("predict-both", POST("/api/predict", "application/json"), both,
                sizeof both - 1);
    static const char bad64[] = "{\"image\":\"data:image/png;base64,iVBOR*\"}";
    put_request("predict-bad-base64", POST("/api/predict", "application/json"), bad64,
                sizeof bad64 - 1);
    put_request("predict-no-type",
                "POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: ?", png, png_n);
    put_request("predict-length-short",
                "POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                "Content-Length: 7", png, png_n);
#undef POST
    /* The PNG in two chunks. */
    char *chunked = malloc(png_n + 256);
    if (!chunked)
        die("http corpus", "out of memory");
    size_t half = png_n / 2, cn = 0;
    cn += (size_t)sprintf(chunked, "%zx\r\n", half);
    memcpy(chunked + cn, png, half);
    cn += half;
    cn += (size_t)sprintf(chunked + cn, "\r\n%zx\r\n", png_n - half);
    memcpy(chunked + cn, png + half, png_n - half);
    cn += png_n - half;
    cn += (size_t)sprintf(chunked + cn, "\r\n0\r\n\r\n");
    put_request("predict-chunked",
                "POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                "Transfer-Encoding: chunked", chunked, cn);
    free(chunked);
    free(png);
    free(png64);
    free(image);
    free(bare);
    free(batch);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        root = argv[1];
    idx_corpus();
    model_corpus();
    spec_corpus();
    image_corpus();
    checkpoint_corpus();
    http_corpus();
    printf("make_corpus: seeds written under %s/\n", root);
    return 0;
}
