/*
 * fuzz_image.c - decoding any image format stb accepts (PNG, JPEG, BMP,
 * GIF, PGM/PPM, TGA, ...) from memory, then MNIST-style preprocessing,
 * through the public API a caller uses.
 *
 * A decoded image must have a sane size; the 28 x 28 network input made
 * from it must be in [0, 1]; and a dn_prep reused across inputs (as a
 * server does) must give exactly what the one-shot calls give.
 */
#include "fuzz.h"
#include "internal.h"

#include <math.h>
#include <string.h>

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

/* One reused dn_prep for the whole run, as a server keeps one per thread:
 * what an earlier input left in its buffers must not change a later
 * result. */
static dn_prep *shared;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* stb's info reads what the library's guard refuses (JPEG tables, PNM
     * numbers), so the guard comes first here as well. */
    int w, h, comp;
    if (dn_stb_guard(data, size, "fuzz.img", NULL) == DN_OK && size <= 0x7fffffff &&
        stbi_info_from_memory(data, (int)size, &w, &h, &comp) &&
        (long)w * h > FUZZ_MAX_PIXELS && (long)w * h <= DN_IMAGE_MAX_PIXELS)
        return 0;
    if (!shared && !(shared = dn_prep_new()))
        fuzz_fail("dn_prep_new: out of memory");

    dn_image img, reused;
    dn_error err = {0}, err2 = {0};
    dn_status st = dn_image_load_memory(data, size, "fuzz.img", &img, &err);
    dn_status st2 = dn_prep_load_memory(shared, data, size, "fuzz.img", &reused, &err2);
    if (st != st2)
        fuzz_fail("dn_image_load_memory gives %d, dn_prep_load_memory %d", (int)st, (int)st2);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, "fuzz.img");
        return 0;
    }
    if (img.w < 1 || img.h < 1 || img.w > DN_IMAGE_MAX_SIDE || img.h > DN_IMAGE_MAX_SIDE ||
        (long)img.w * img.h > DN_IMAGE_MAX_PIXELS)
        fuzz_fail("an image of %dx%d decoded", img.w, img.h);
    size_t n = (size_t)img.w * (size_t)img.h;
    if (reused.w != img.w || reused.h != img.h || memcmp(reused.grey, img.grey, n) != 0)
        fuzz_fail("a reused dn_prep decodes another image");

    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE], y[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
    dn_prep_info info, info2;
    st = dn_image_preprocess(&img, x, &info, &err);
    st2 = dn_prep_image(shared, &reused, y, &info2, &err2);
    if (st != st2 || (st == DN_OK && memcmp(x, y, sizeof x) != 0))
        fuzz_fail("a reused dn_prep preprocesses differently (%d, %d)", (int)st, (int)st2);
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
