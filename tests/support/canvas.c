/*
 * canvas.c - MNIST digits drawn with a round brush on a canvas (see
 * canvas.h). The digit is enlarged 4x, thresholded and thinned to its
 * centre line (Zhang-Suen); each pair of neighbouring centre-line pixels
 * becomes a segment drawn with an anti-aliased round brush, as a browser
 * draws a pointer stroke with lineCap "round".
 */
#include "canvas.h"

#include "digitnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#define GRID 112 /* the digit's 28 px enlarged 4x, where it is thinned */

/* The digit enlarged 4x (bilinear between pixel centres), ink >= half. */
static void enlarge(const uint8_t *px, uint8_t *mask)
{
    for (int y = 0; y < GRID; y++)
        for (int x = 0; x < GRID; x++) {
            float u = (x + 0.5f) / 4 - 0.5f, v = (y + 0.5f) / 4 - 0.5f;
            int x0 = (int)floorf(u), y0 = (int)floorf(v);
            float fx = u - x0, fy = v - y0, sum = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int sx = x0 + dx, sy = y0 + dy;
                    if (sx < 0 || sy < 0 || sx >= 28 || sy >= 28)
                        continue;
                    sum += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * px[sy * 28 + sx];
                }
            mask[y * GRID + x] = sum >= 128;
        }
}

/* One Zhang-Suen sub-iteration; returns how many pixels it removed. */
static int thin_pass(uint8_t *m, uint8_t *del, int second)
{
    int removed = 0;
    memset(del, 0, GRID * GRID);
    for (int y = 1; y < GRID - 1; y++)
        for (int x = 1; x < GRID - 1; x++) {
            const uint8_t *c = m + y * GRID + x;
            if (!*c)
                continue;
            /* p2..p9 clockwise from north */
            int p[8] = {c[-GRID], c[-GRID + 1], c[1],        c[GRID + 1],
                        c[GRID],  c[GRID - 1],  c[-1],       c[-GRID - 1]};
            int b = 0, a = 0;
            for (int i = 0; i < 8; i++) {
                b += p[i];
                a += !p[i] && p[(i + 1) % 8];
            }
            if (b < 2 || b > 6 || a != 1)
                continue;
            int ok = second ? !(p[0] && p[2] && p[6]) && !(p[0] && p[4] && p[6])
                            : !(p[0] && p[2] && p[4]) && !(p[2] && p[4] && p[6]);
            if (ok) {
                del[y * GRID + x] = 1;
                removed++;
            }
        }
    for (int i = 0; i < GRID * GRID; i++)
        m[i] &= (uint8_t)!del[i];
    return removed;
}

/* Distance from (px, py) to the segment (ax, ay)-(bx, by). */
static float seg_dist(float px, float py, float ax, float ay, float bx, float by)
{
    float dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float ex = px - (ax + t * dx), ey = py - (ay + t * dy);
    return sqrtf(ex * ex + ey * ey);
}

/* Raises cov (h, w) to the brush's coverage of the segment a-b. */
static void stroke(float *cov, int w, int h, float ax, float ay, float bx, float by, float r)
{
    int x0 = (int)floorf(fminf(ax, bx) - r - 1), x1 = (int)ceilf(fmaxf(ax, bx) + r + 1);
    int y0 = (int)floorf(fminf(ay, by) - r - 1), y1 = (int)ceilf(fmaxf(ay, by) + r + 1);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= w ? w - 1 : x1;
    y1 = y1 >= h ? h - 1 : y1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float c = r + 0.5f - seg_dist(x + 0.5f, y + 0.5f, ax, ay, bx, by);
            c = c < 0 ? 0 : c > 1 ? 1 : c;
            float *p = cov + (size_t)y * (size_t)w + (size_t)x;
            *p = c > *p ? c : *p;
        }
}

static void write_png(void *ctx, void *data, int size)
{
    t_canvas *c = ctx;
    unsigned char *p = realloc(c->png, c->len + (size_t)size);
    if (!p) {
        free(c->png);
        c->png = NULL;
        c->len = 0;
        return;
    }
    memcpy(p + c->len, data, (size_t)size);
    c->png = p;
    c->len += (size_t)size;
}

/* cov (h, w) in the colours of c->style, encoded into c->png. */
static int encode(const float *cov, t_canvas *c)
{
    size_t n = (size_t)c->w * (size_t)c->h;
    unsigned char *rgba = malloc(4 * n);
    if (!rgba)
        return -1;
    static const unsigned char ink[T_CANVAS_STYLES][3] = {
        {0, 0, 0}, {255, 255, 255}, {0, 0, 0}, {255, 255, 255}, {20, 40, 190}};
    static const unsigned char paper[T_CANVAS_STYLES][4] = {
        {255, 255, 255, 255}, {0, 0, 0, 255}, {0, 0, 0, 0}, {0, 0, 0, 0}, {255, 255, 255, 255}};
    const unsigned char *fg = ink[c->style], *bg = paper[c->style];
    int clear = bg[3] == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char *q = rgba + 4 * i;
        float a = cov[i];
        for (int k = 0; k < 3; k++)
            q[k] = clear ? (a > 0 ? fg[k] : 0)
                         : (unsigned char)lrintf(fg[k] * a + bg[k] * (1 - a));
        q[3] = clear ? (unsigned char)lrintf(255 * a) : 255;
    }
    c->png = NULL;
    c->len = 0;
    int ok = stbi_write_png_to_func(write_png, c, c->w, c->h, 4, rgba, 4 * c->w);
    free(rgba);
    return ok && c->png ? 0 : -1;
}

int t_canvas_draw(const uint8_t *px, uint64_t seed, t_canvas *c)
{
    memset(c, 0, sizeof *c);
    uint8_t *mask = malloc(2 * GRID * GRID);
    if (!mask)
        return -1;
    uint8_t *del = mask + GRID * GRID;
    enlarge(px, mask);
    while (thin_pass(mask, del, 0) + thin_pass(mask, del, 1) > 0) {
    }
    int gx0 = GRID, gy0 = GRID, gx1 = -1, gy1 = -1;
    for (int y = 0; y < GRID; y++)
        for (int x = 0; x < GRID; x++)
            if (mask[y * GRID + x]) {
                gx0 = x < gx0 ? x : gx0;
                gx1 = x > gx1 ? x : gx1;
                gy0 = y < gy0 ? y : gy0;
                gy1 = y > gy1 ? y : gy1;
            }
    if (gx1 < 0) {
        free(mask);
        return -1;
    }

    dn_rng rng;
    dn_rng_seed(&rng, dn_key(seed, 0x63616e766173, 0, 0));
    c->style = (t_canvas_style)(seed % T_CANVAS_STYLES);
    c->w = 200 + (int)dn_rng_below(&rng, 201);
    c->h = 200 + (int)dn_rng_below(&rng, 201);
    /* The centre line's height on the canvas, the brush in proportion to
     * it (MNIST's strokes are 10-15 % of a digit's height), and the scale
     * from the grid, narrowed if the digit would not fit across. */
    float height = c->h * (0.35f + 0.5f * dn_rng_uniform(&rng));
    float brush = height * (0.08f + 0.08f * dn_rng_uniform(&rng));
    brush = brush < 3 ? 3 : brush;
    float k = height / (float)(gy1 - gy0 + 1);
    float room = c->w - brush - 4;
    if ((gx1 - gx0 + 1) * k > room)
        k = room / (float)(gx1 - gx0 + 1);
    float r = brush / 2;
    float spanx = (gx1 - gx0 + 1) * k, spany = (gy1 - gy0 + 1) * k;
    float ox = r + 2 + dn_rng_uniform(&rng) * (c->w - spanx - 2 * r - 4);
    float oy = r + 2 + dn_rng_uniform(&rng) * (c->h - spany - 2 * r - 4);
    c->brush = (int)lrintf(brush);

    float *cov = calloc((size_t)c->w * (size_t)c->h, sizeof *cov);
    if (!cov) {
        free(mask);
        return -1;
    }
    static const int nb[4][2] = {{1, 0}, {0, 1}, {1, 1}, {-1, 1}};
    for (int y = gy0; y <= gy1; y++)
        for (int x = gx0; x <= gx1; x++) {
            if (!mask[y * GRID + x])
                continue;
            float ax = ox + (x - gx0 + 0.5f) * k, ay = oy + (y - gy0 + 0.5f) * k;
            stroke(cov, c->w, c->h, ax, ay, ax, ay, r);
            for (int i = 0; i < 4; i++) {
                int qx = x + nb[i][0], qy = y + nb[i][1];
                if (qx >= 0 && qx < GRID && qy < GRID && mask[qy * GRID + qx])
                    stroke(cov, c->w, c->h, ax, ay, ax + nb[i][0] * k, ay + nb[i][1] * k, r);
            }
        }
    free(mask);
    int st = encode(cov, c);
    free(cov);
    return st;
}

void t_canvas_free(t_canvas *c)
{
    free(c->png);
    memset(c, 0, sizeof *c);
}
