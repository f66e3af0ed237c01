/*
 * prep_before.c - digitnet's image path as it was before the byte
 * pipeline (commit 7d152b5): stb_image at the file's own channels, a float
 * grey image, and the float preprocessing. Kept unchanged as the oracle
 * that test_image compares the fast path with on canvas drawings, and as
 * the "before" column of bench/bench_prep. Not used by the library.
 */
#include "prep_before.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

/* The thresholds as they were (src/prep.c has the same values). */
#define DN_NOISE 0.2f
#define DN_MIN_CONTRAST 0.1f
#define DN_SPECK 0.02f
#define DN_BOX_INK 0.4f
#define DN_HALO 2
#define DN_THIN 0.8f

/* Grey from stb's 1..4 channel bytes. With alpha, transparent pixels take
 * the colour that contrasts with what is drawn: black strokes on a
 * transparent canvas become black on white, white strokes white on black. */
static void to_grey(const unsigned char *p, int n, size_t count, float *out)
{
    int has_alpha = n == 2 || n == 4;
    double seen = 0, weight = 0;
    int translucent = 0;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *q = p + i * (size_t)n;
        float l = n >= 3 ? (0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2]) / 255.0f
                         : q[0] / 255.0f;
        out[i] = l;
        if (has_alpha) {
            float a = q[n - 1] / 255.0f;
            seen += (double)a * l;
            weight += a;
            translucent |= q[n - 1] != 255;
        }
    }
    if (!has_alpha || !translucent)
        return;
    float fill = weight > 0 && seen / weight < 0.5 ? 1.0f : 0.0f;
    for (size_t i = 0; i < count; i++) {
        float a = p[i * (size_t)n + (size_t)n - 1] / 255.0f;
        out[i] = out[i] * a + fill * (1.0f - a);
    }
}

int t_before_decode(const void *data, size_t size, t_grey *img)
{
    memset(img, 0, sizeof *img);
    int w, h, n;
    unsigned char *px = stbi_load_from_memory(data, (int)size, &w, &h, &n, 0);
    if (!px)
        return -1;
    img->px = malloc((size_t)w * (size_t)h * sizeof *img->px);
    if (!img->px) {
        stbi_image_free(px);
        return -1;
    }
    img->w = w;
    img->h = h;
    to_grey(px, n, (size_t)w * (size_t)h, img->px);
    stbi_image_free(px);
    return 0;
}

void t_before_free(t_grey *img)
{
    free(img->px);
    memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------------------------ */
/* Resampling                                                               */
/* ------------------------------------------------------------------------ */

/* Weights that make n_out samples of an axis of n_in pixels at scale s
 * (output pixels per input pixel), output pixel o covering input
 * [origin + o / s, origin + (o + 1) / s). Shrinking averages the covered
 * area, so thin strokes turn grey instead of vanishing between samples;
 * growing interpolates bilinearly between pixel centres. Input outside
 * 0..n_in-1 is 0 if zero_outside (beyond a digit is background) and the
 * nearest edge pixel otherwise. Weights outside the input are 0. */
typedef struct axis_w {
    int taps;
    int *first;     /* (n_out) input index of the first tap */
    float *w;       /* (n_out, taps) */
} axis_w;

static void axis_free(axis_w *a)
{
    free(a->first);
    free(a->w);
}

static int axis_make(axis_w *a, int n_in, int n_out, double s, double origin, int zero_outside)
{
    a->taps = s < 1.0 ? (int)ceil(1.0 / s) + 2 : 2;
    a->first = calloc((size_t)n_out, sizeof *a->first);
    a->w = calloc((size_t)n_out * (size_t)a->taps, sizeof *a->w);
    if (!a->first || !a->w)
        return 0;
    for (int o = 0; o < n_out; o++) {
        float *w = a->w + (size_t)o * (size_t)a->taps;
        if (s < 1.0) {
            double lo = origin + o / s, hi = origin + (o + 1) / s;
            int i0 = (int)floor(lo);
            a->first[o] = i0;
            for (int t = 0; t < a->taps; t++) {
                int i = i0 + t;
                double ov = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (ov > 0 && i >= 0 && i < n_in)
                    w[t] = (float)(ov * s);
            }
        } else {
            double u = origin + (o + 0.5) / s - 0.5;
            int i0 = (int)floor(u);
            double f = u - i0;
            if (!zero_outside) {
                /* Clamping folds a missing neighbour's weight onto the
                 * edge pixel. */
                if (i0 < 0) {
                    i0 = 0;
                    f = 0;
                }
                if (i0 >= n_in - 1) {
                    i0 = n_in - 1;
                    f = 0;
                }
            }
            a->first[o] = i0;
            w[0] = i0 >= 0 && i0 < n_in ? (float)(1.0 - f) : 0.0f;
            w[1] = i0 + 1 >= 0 && i0 + 1 < n_in ? (float)f : 0.0f;
        }
    }
    return 1;
}

/* Resamples src (sh, sw) into dst (dh, dw) at scales sx, sy, output pixel
 * (0, 0) starting at input (ox, oy); see axis_make. */
static dn_status resample(const float *src, int sw, int sh, double ox, double oy, double sx,
                          double sy, float *dst, int dw, int dh, int zero_outside, dn_error *err)
{
    axis_w ax = {0}, ay = {0};
    float *tmp = NULL; /* (rows r0..r1, dw): only the rows the output reads */
    dn_status st = DN_OK;
    if (!axis_make(&ax, sw, dw, sx, ox, zero_outside) ||
        !axis_make(&ay, sh, dh, sy, oy, zero_outside))
        goto nomem;
    int r0 = sh, r1 = -1;
    for (int o = 0; o < dh; o++)
        for (int t = 0; t < ay.taps; t++)
            if (ay.w[(size_t)o * (size_t)ay.taps + (size_t)t] != 0.0f) {
                int i = ay.first[o] + t;
                r0 = i < r0 ? i : r0;
                r1 = i > r1 ? i : r1;
            }
    for (size_t i = 0; i < (size_t)dw * (size_t)dh; i++)
        dst[i] = 0.0f;
    if (r1 < r0)
        goto done;
    tmp = malloc((size_t)(r1 - r0 + 1) * (size_t)dw * sizeof *tmp);
    if (!tmp)
        goto nomem;
    for (int y = r0; y <= r1; y++) {
        const float *row = src + (size_t)y * (size_t)sw;
        float *trow = tmp + (size_t)(y - r0) * (size_t)dw;
        for (int o = 0; o < dw; o++) {
            const float *w = ax.w + (size_t)o * (size_t)ax.taps;
            double acc = 0;
            for (int t = 0; t < ax.taps; t++)
                if (w[t] != 0.0f)
                    acc += (double)w[t] * row[ax.first[o] + t];
            trow[o] = (float)acc;
        }
    }
    for (int o = 0; o < dh; o++) {
        const float *w = ay.w + (size_t)o * (size_t)ay.taps;
        float *out = dst + (size_t)o * (size_t)dw;
        for (int t = 0; t < ay.taps; t++) {
            if (w[t] == 0.0f)
                continue;
            const float *row = tmp + (size_t)(ay.first[o] + t - r0) * (size_t)dw;
            for (int x = 0; x < dw; x++)
                out[x] += w[t] * row[x];
        }
    }
    goto done;
nomem:
    st = dn_fail(err, DN_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", sw, sh, dw, dh);
done:
    axis_free(&ax);
    axis_free(&ay);
    free(tmp);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Preprocessing                                                            */
/* ------------------------------------------------------------------------ */

/* Median of the grey levels in a frame around the image, a few pixels
 * thick: the background, even where the digit runs into an edge. A 1024
 * bin histogram keeps it linear in the frame's size. */
static float border_median(const t_grey *img)
{
    enum { BINS = 1024 };
    size_t hist[BINS] = {0}, total = 0;
    int t = 1 + (img->w < img->h ? img->w : img->h) / 64;
    for (int y = 0; y < img->h; y++) {
        int edge_row = y < t || y >= img->h - t;
        for (int x = 0; x < img->w; x++) {
            if (!edge_row && x >= t && x < img->w - t)
                continue;
            float v = img->px[(size_t)y * (size_t)img->w + (size_t)x];
            int b = (int)(v * (BINS - 1) + 0.5f);
            b = b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
            hist[b]++;
            total++;
        }
    }
    size_t half = (total + 1) / 2, run = 0;
    for (int b = 0; b < BINS; b++) {
        run += hist[b];
        if (run >= half)
            return (float)b / (BINS - 1);
    }
    return 1.0f;
}

/* Zeroes the 8-connected blobs of ink (> 0) whose total ink is below
 * DN_SPECK of the heaviest blob's. lab is (h, w) scratch. */
static int remove_specks(float *ink, int w, int h)
{
    size_t n = (size_t)w * (size_t)h;
    int32_t *lab = malloc(n * sizeof *lab);
    size_t *stack = malloc(n * sizeof *stack);
    double *mass = NULL;
    if (!lab || !stack) {
        free(lab);
        free(stack);
        return 0;
    }
    int32_t blobs = 0;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        lab[i] = -1;
    for (size_t s = 0; s < n; s++) {
        if (ink[s] <= 0 || lab[s] >= 0)
            continue;
        if ((size_t)blobs == cap) {
            cap = cap ? 2 * cap : 64;
            double *m2 = realloc(mass, cap * sizeof *mass);
            if (!m2) {
                free(lab);
                free(stack);
                free(mass);
                return 0;
            }
            mass = m2;
        }
        double m = 0;
        size_t top = 0;
        stack[top++] = s;
        lab[s] = blobs;
        while (top) {
            size_t p = stack[--top];
            m += ink[p];
            int px = (int)(p % (size_t)w), py = (int)(p / (size_t)w);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int qx = px + dx, qy = py + dy;
                    if (qx < 0 || qy < 0 || qx >= w || qy >= h)
                        continue;
                    size_t q = (size_t)qy * (size_t)w + (size_t)qx;
                    if (ink[q] > 0 && lab[q] < 0) {
                        lab[q] = blobs;
                        stack[top++] = q;
                    }
                }
        }
        mass[blobs++] = m;
    }
    double heaviest = 0;
    for (int32_t b = 0; b < blobs; b++)
        heaviest = fmax(heaviest, mass[b]);
    for (size_t i = 0; i < n; i++)
        if (lab[i] >= 0 && mass[lab[i]] < DN_SPECK * heaviest)
            ink[i] = 0;
    free(lab);
    free(stack);
    free(mass);
    return 1;
}

/* Stretches patch (h, w) to a maximum of 1 and dilates it with a 2 x 2
 * square (each pixel the maximum of itself and its upper-left
 * neighbours), so a 1 px line becomes 2 px wide. */
static void thicken(float *patch, int w, int h)
{
    float peak = 0;
    for (int i = 0; i < w * h; i++)
        peak = patch[i] > peak ? patch[i] : peak;
    if (!(peak > 0))
        return;
    for (int y = h - 1; y >= 0; y--)
        for (int x = w - 1; x >= 0; x--) {
            float v = patch[y * w + x];
            if (x > 0 && patch[y * w + x - 1] > v)
                v = patch[y * w + x - 1];
            if (y > 0 && patch[(y - 1) * w + x] > v)
                v = patch[(y - 1) * w + x];
            if (x > 0 && y > 0 && patch[(y - 1) * w + x - 1] > v)
                v = patch[(y - 1) * w + x - 1];
            patch[y * w + x] = v / peak;
        }
}

dn_status t_before_preprocess(const t_grey *img, float *out, dn_prep_info *info, dn_error *err)
{
    if (!img || !img->px || img->w <= 0 || img->h <= 0 || !out)
        return dn_fail(err, DN_ERR_ARG, "dn_image_preprocess: no image");
    const char *name = "image";
    int w = img->w, h = img->h;
    size_t n = (size_t)w * (size_t)h;
    dn_prep_info inf;
    memset(&inf, 0, sizeof inf);

    inf.background = border_median(img);
    inf.inverted = inf.background > 0.5f;
    float *ink = malloc(n * sizeof *ink); /* (h, w), 0 = background */
    if (!ink)
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    float peak = 0;
    for (size_t i = 0; i < n; i++) {
        float d = inf.inverted ? inf.background - img->px[i] : img->px[i] - inf.background;
        ink[i] = d > 0 ? d : 0;
        peak = ink[i] > peak ? ink[i] : peak;
    }
    inf.contrast = peak;
    if (!(peak >= DN_MIN_CONTRAST)) {
        free(ink);
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: no digit found (nothing stands out from the %s background by more "
                       "than %.0f%%)",
                       name, inf.inverted ? "light" : "dark", DN_MIN_CONTRAST * 100);
    }
    /* Stretched to full contrast, since MNIST's strokes are saturated
     * whatever pen and paper a photo shows. */
    for (size_t i = 0; i < n; i++) {
        float v = ink[i] / peak;
        ink[i] = v < DN_NOISE ? 0.0f : v;
    }
    if (!remove_specks(ink, w, h)) {
        free(ink);
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    }

    /* The bounding box is that of the solid ink: a faint halo around the
     * strokes (anti-aliasing, blur, a smooth upscale) is kept in the crop
     * but does not count towards the 20 pixels, as in MNIST. */
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    double area = 0, edges = 0; /* of the solid ink, for its stroke width */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float *p = ink + (size_t)y * (size_t)w + (size_t)x;
            if (*p < DN_BOX_INK)
                continue;
            x0 = x < x0 ? x : x0;
            x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0;
            y1 = y > y1 ? y : y1;
            area++;
            edges += (x == 0 || p[-1] < DN_BOX_INK) + (x == w - 1 || p[1] < DN_BOX_INK) +
                     (y == 0 || p[-w] < DN_BOX_INK) + (y == h - 1 || p[w] < DN_BOX_INK);
        }
    if (x1 < 0) {
        free(ink);
        return dn_fail(err, DN_ERR_FORMAT, "%s: no digit found", name);
    }
    inf.box_x = x0;
    inf.box_y = y0;
    inf.box_w = x1 - x0 + 1;
    inf.box_h = y1 - y0 + 1;

    /* Scale so that the longer side is exactly DN_IMAGE_BOX; both axes use
     * the same scale so the digit keeps its shape. The output grid starts
     * on the box's edge, as MNIST's boxes sit on its pixel grid, and
     * reaches DN_HALO output pixels beyond it for the halo. */
    double s = (double)DN_IMAGE_BOX / (inf.box_w > inf.box_h ? inf.box_w : inf.box_h);
    inf.scale = (float)s;
    int pw = (int)lround(inf.box_w * s), ph = (int)lround(inf.box_h * s);
    pw = (pw < 1 ? 1 : pw) + 2 * DN_HALO;
    ph = (ph < 1 ? 1 : ph) + 2 * DN_HALO;
    float *patch = malloc((size_t)pw * (size_t)ph * sizeof *patch); /* (ph, pw) */
    if (!patch) {
        free(ink);
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    }
    dn_status st = resample(ink, w, h, x0 - DN_HALO / s, y0 - DN_HALO / s, s, s, patch, pw, ph, 1,
                            err);
    free(ink);
    if (st != DN_OK) {
        free(patch);
        return st;
    }

    /* A stroke of length L and width W has area L W and outline 2 L, so
     * W = 2 area / outline. MNIST's strokes are 2 px wide (median; 1.3 at
     * the 5th percentile). A thin pen on a large image shrinks to a faint
     * hairline the network has never seen: bring it to full strength and
     * thicken it by one pixel. */
    inf.stroke = (float)(2.0 * area / (edges > 0 ? edges : 1) * s);
    if (inf.stroke < DN_THIN)
        thicken(patch, pw, ph);

    /* Centre of mass onto pixel (14, 14), whole pixels as in MNIST (its
     * digits' centres of mass are spread +-0.29 px around it: rounding). */
    double m = 0, mx = 0, my = 0;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            double v = patch[(size_t)y * (size_t)pw + (size_t)x];
            m += v;
            mx += v * x;
            my += v * y;
        }
    if (!(m > 0)) {
        free(patch);
        return dn_fail(err, DN_ERR_FORMAT, "%s: no digit found", name);
    }
    int c = DN_IMAGE_SIDE / 2;
    inf.off_x = (int)lround(c - mx / m);
    inf.off_y = (int)lround(c - my / m);
    for (int i = 0; i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++)
        out[i] = 0.0f;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            int ox = x + inf.off_x, oy = y + inf.off_y;
            if (ox < 0 || oy < 0 || ox >= DN_IMAGE_SIDE || oy >= DN_IMAGE_SIDE)
                continue;
            float v = patch[(size_t)y * (size_t)pw + (size_t)x];
            out[oy * DN_IMAGE_SIDE + ox] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    free(patch);
    if (info)
        *info = inf;
    return DN_OK;
}
