/*
 * fuzz_image.c - decoding any image format stb accepts (PNG, JPEG, BMP,
 * GIF, PGM/PPM, TGA, ...) from memory, then MNIST-style preprocessing,
 * through the public API a caller uses.
 *
 * A decoded image must have a sane size and grey values in [0, 1]; the
 * 28 x 28 network input made from it must be finite and in [0, 1].
 */
#include "fuzz.h"
#include "internal.h"

#include <math.h>

/* stb_image's decoders compiled into the target, so that libFuzzer sees
 * their branches and the sanitizers check their memory accesses: the
 * library links Debian's libstb, which is not instrumented. The
 * executable's definitions take precedence over the shared library's, and
 * the header is the one libstb was built from. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

/* Images up to this many pixels are decoded. Larger ones that the library
 * would accept (up to DN_IMAGE_MAX_PIXELS) cost a tenth of a second each,
 * and libFuzzer, drawn to them by the new paths of every row, would spend
 * its time there; headers beyond the library's limit still go through. */
#define FUZZ_MAX_PIXELS (1L << 18)

static void check_input(const float *x, const char *what)
{
    for (int i = 0; i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            fuzz_fail("%s: pixel %d of the 28x28 input is %g", what, i, (double)x[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* stb's info reads JPEG tables too, so the library's guard against
     * the ones that overflow them comes first here as well. */
    int w, h, comp;
    if (dn_jpeg_check(data, size, "fuzz.img", NULL) == DN_OK && size <= 0x7fffffff &&
        stbi_info_from_memory(data, (int)size, &w, &h, &comp) &&
        (long)w * h > FUZZ_MAX_PIXELS && (long)w * h <= DN_IMAGE_MAX_PIXELS)
        return 0;
    dn_image img;
    dn_error err = {0};
    dn_status st = dn_image_load_memory(data, size, "fuzz.img", &img, &err);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, "fuzz.img");
        return 0;
    }
    if (img.w < 1 || img.h < 1 || img.w > DN_IMAGE_MAX_SIDE || img.h > DN_IMAGE_MAX_SIDE ||
        (long)img.w * img.h > DN_IMAGE_MAX_PIXELS)
        fuzz_fail("an image of %dx%d decoded", img.w, img.h);
    for (long i = 0; i < (long)img.w * img.h; i++)
        if (!(img.px[i] >= 0.0f && img.px[i] <= 1.0f))
            fuzz_fail("grey value %g at pixel %ld", (double)img.px[i], i);

    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
    dn_prep_info info;
    st = dn_image_preprocess(&img, x, &info, &err);
    if (st == DN_OK)
        check_input(x, "preprocess");
    else
        fuzz_check_error(st, &err, NULL);
    st = dn_image_raw(&img, x, &err);
    if (st == DN_OK)
        check_input(x, "raw");
    else
        fuzz_check_error(st, &err, NULL);
    dn_image_free(&img);
    return 0;
}
