/*
 * fuzz_image.c - decoding any image format stb accepts (PNG, JPEG, BMP,
 * GIF, PGM/PPM, TGA, ...) from memory, then MNIST-style preprocessing,
 * through the public API a caller uses.
 *
 * A decoded image must have a sane size and grey values in [0, 1]; the
 * 28 x 28 network input made from it must be finite and in [0, 1].
 */
#include "fuzz.h"

#include <math.h>

static void check_input(const float *x, const char *what)
{
    for (int i = 0; i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            fuzz_fail("%s: pixel %d of the 28x28 input is %g", what, i, (double)x[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
