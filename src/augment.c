/*
 * augment.c - random affine distortions of training images.
 *
 * Small rotations, scalings and shifts are the distortions handwriting
 * actually has, so they add training variety without changing the label:
 * rotation within +-10 degrees (a 6 or 9 never turns into the other), scale
 * within 0.9..1.1 and shifts within +-2 pixels (MNIST digits are centred by
 * their centre of mass in a 20x20 box inside the 28x28 frame, so +-2 px
 * keeps them inside). Each output pixel is sampled bilinearly from the raw
 * uint8 image at the inverse-mapped position; outside the frame is
 * background 0. The four draws come from one generator seeded by the
 * image's key, in a fixed order, so a transform depends only on
 * (seed, epoch, image index) and not on threads or batches.
 */
#include "internal.h"

#include <math.h>

/* Pixel (x, y) of src, 0 outside the image. */
static inline float pixel(const uint8_t *src, int rows, int cols, int x, int y)
{
    if (x < 0 || y < 0 || x >= cols || y >= rows)
        return 0.0f;
    return (float)src[(size_t)y * (size_t)cols + (size_t)x];
}

void dn_augment_image(const uint8_t *src, int rows, int cols, uint64_t key, float mean,
                      float std, float *out)
{
    dn_rng r;
    dn_rng_seed(&r, key);
    double angle = (2.0 * dn_rng_uniform(&r) - 1.0) * DN_AUG_ROTATE * M_PI / 180.0;
    double scale = 1.0 + (2.0 * dn_rng_uniform(&r) - 1.0) * DN_AUG_SCALE;
    double tx = (2.0 * dn_rng_uniform(&r) - 1.0) * DN_AUG_SHIFT;
    double ty = (2.0 * dn_rng_uniform(&r) - 1.0) * DN_AUG_SHIFT;

    /* The forward map rotates and scales about the image centre, then
     * shifts; sampling needs its inverse: src = R(-a) (dst - c - t) / s + c. */
    double cx = (cols - 1) * 0.5, cy = (rows - 1) * 0.5;
    double ca = cos(angle) / scale, sa = sin(angle) / scale;
    for (int y = 0; y < rows; y++) {
        for (int x = 0; x < cols; x++) {
            double dx = x - cx - tx, dy = y - cy - ty;
            double sx = ca * dx + sa * dy + cx;
            double sy = -sa * dx + ca * dy + cy;
            double fx = floor(sx), fy = floor(sy);
            int x0 = (int)fx, y0 = (int)fy;
            float wx = (float)(sx - fx), wy = (float)(sy - fy);
            float v = 0.0f;
            /* Far outside the frame (possible only at the corners) stays 0. */
            if (x0 >= -1 && y0 >= -1 && x0 < cols && y0 < rows) {
                float top = pixel(src, rows, cols, x0, y0) * (1 - wx) +
                            pixel(src, rows, cols, x0 + 1, y0) * wx;
                float bot = pixel(src, rows, cols, x0, y0 + 1) * (1 - wx) +
                            pixel(src, rows, cols, x0 + 1, y0 + 1) * wx;
                v = top * (1 - wy) + bot * wy;
            }
            out[(size_t)y * (size_t)cols + (size_t)x] = (v / 255.0f - mean) / std;
        }
    }
}
