/*
 * prep.c - MNIST-style preprocessing of a grey image.
 *
 * It repeats how MNIST itself was made (LeCun et al.): the digit's
 * bounding box scaled to fit 20 x 20 with anti-aliasing, then placed in
 * 28 x 28 by its centre of mass. A network trained on MNIST has only ever
 * seen digits framed that way, so a photo framed any other way is
 * classified far worse.
 *
 * Everything before the final resampling works on bytes and bitmaps: the
 * ink (difference from the background) is one byte per pixel, the
 * thresholds below are exact fractions of the strongest ink, the
 * connected blobs of ink are found as runs of a bitmap, and the bounding
 * box, area and outline of the solid ink are counted 64 pixels at a time.
 * The only full-size buffers are those of the dn_prep, reused from one
 * image to the next.
 */
#include "image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Ink that differs from the background by less than this fraction of the
 * strongest ink is paper grain, JPEG ringing or sensor noise. */
#define NOISE 0.2f
/* Below this contrast between the strongest ink and the background an
 * image is taken as blank rather than stretched into a guess. */
#define MIN_CONTRAST 0.1f
/* Connected blobs of ink lighter than 1/SPECK_DEN of the heaviest one are
 * specks of dust; left in, one speck in a corner would double the bounding
 * box and shrink the digit to half its size. */
#define SPECK_DEN 50
/* Ink at least this strong (as a fraction of the strongest) spans the
 * 20 x 20 box. */
#define BOX_INK 0.4f
/* Output pixels kept around the box for that halo. */
#define HALO 2
/* Strokes thinner than this many network pixels are thickened. */
#define THIN 0.8f

dn_prep *dn_prep_new(void)
{
    return calloc(1, sizeof(dn_prep));
}

void dn_prep_release(dn_prep *p)
{
    dn_buf *bufs[] = {&p->idat,  &p->rows,  &p->pixels, &p->grey,      &p->alpha, &p->ink,
                      &p->kept,  &p->solid, &p->runs,   &p->row_first, &p->mass,  &p->band};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        dn_buf_release(bufs[i]);
    dn_png_release(p);
}

void dn_prep_free(dn_prep *p)
{
    if (!p)
        return;
    dn_prep_release(p);
    free(p);
}

/* ---- background and ink ------------------------------------------------- */

/* Median of the grey levels in a frame around the image, a few pixels
 * thick: the background, even where the digit runs into an edge. */
/* n pixels of the frame into the histograms: a plain stretch (one grey
 * level, as a background is) in one step. */
static void frame_hist(uint32_t hist[4][256], const uint8_t *p, int n)
{
    if (n > 1 && !memcmp(p, p + 1, (size_t)n - 1)) {
        hist[0][p[0]] += (uint32_t)n;
        return;
    }
    for (int x = 0; x < n; x++)
        hist[x & 3][p[x]]++;
}

static uint8_t border_median(const uint8_t *g, int w, int h)
{
    /* Four histograms, so that runs of one grey level (a plain border)
     * do not wait on each other's increments. */
    uint32_t hist[4][256];
    memset(hist, 0, sizeof hist);
    size_t total = 0;
    int t = 1 + (w < h ? w : h) / 64;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = g + (size_t)y * (size_t)w;
        if (y < t || y >= h - t || w - t <= t) {
            /* a whole row, 16 pixels at a time */
            int x = 0;
            for (; x + 16 <= w; x += 16)
                frame_hist(hist, row + x, 16);
            frame_hist(hist, row + x, w - x);
            total += (size_t)w;
        } else {
            /* its two ends */
            frame_hist(hist, row, t);
            frame_hist(hist, row + w - t, t);
            total += 2 * (size_t)t;
        }
    }
    size_t half = (total + 1) / 2, run = 0;
    for (int b = 0; b < 256; b++) {
        run += (size_t)hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b];
        if (run >= half)
            return (uint8_t)b;
    }
    return 255;
}

/* ink[i] = how far g[i] is from the background towards the ink (dark ink
 * on light paper if inverted); returns the strongest. */
static uint8_t ink_plane(const uint8_t *restrict g, size_t n, uint8_t bg, int inverted,
                         uint8_t *restrict ink)
{
    uint8_t peak = 0;
    size_t i = dn_image_avx2() ? dn_avx2_ink(g, n, bg, inverted, ink, &peak) : 0;
#if defined(__SSE2__)
    __m128i vb = _mm_set1_epi8((char)bg), top = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(g + i));
        __m128i d = inverted ? _mm_subs_epu8(vb, v) : _mm_subs_epu8(v, vb);
        _mm_storeu_si128((__m128i *)(ink + i), d);
        top = _mm_max_epu8(top, d);
    }
    uint8_t lanes[16];
    _mm_storeu_si128((__m128i *)lanes, top);
    for (int k = 0; k < 16; k++)
        peak = lanes[k] > peak ? lanes[k] : peak;
#endif
    for (; i < n; i++) {
        uint8_t d = (uint8_t)(inverted ? (g[i] < bg ? bg - g[i] : 0) : (g[i] > bg ? g[i] - bg : 0));
        ink[i] = d;
        peak = d > peak ? d : peak;
    }
    return peak;
}

/* Set bits of x, without the POPCNT instruction the baseline x86-64 lacks
 * (the builtin would call a table-driven libgcc function). */
static inline int popcount64(uint64_t x)
{
    x -= (x >> 1) & 0x5555555555555555u;
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (int)((x * 0x0101010101010101u) >> 56);
}

/* Ink k (0..255 from the background bg) as a fraction of peak_f, computed
 * in single precision from the two grey levels as the float pipeline this
 * replaces did: a pixel that lies exactly on a threshold (ink 51 of 255 is
 * 1/5) then falls on the side it always fell, dark ink on light paper
 * included, where 1 - 0.8f rounds below 0.2. */
static float ink_fraction(uint8_t bg, int inverted, int k, float peak_f)
{
    float b = bg / 255.0f;
    float d = inverted ? b - (bg - k) / 255.0f : (bg + k) / 255.0f - b;
    return d / peak_f;
}

/* The weakest ink that is at least the fraction t of the strongest. */
static uint8_t first_ink_at(uint8_t bg, int inverted, uint8_t peak, float peak_f, float t)
{
    int k = 1;
    while (k < peak && ink_fraction(bg, inverted, k, peak_f) < t)
        k++;
    return (uint8_t)k;
}

/* Bits of row (w bytes) at or above lo into kept and at or above hi into
 * solid, 64 pixels a word, bit j of word k for pixel 64 k + j; bits past w
 * are 0. */
static void row_bits(const uint8_t *row, int w, uint8_t lo, uint8_t hi, uint64_t *kept,
                     uint64_t *solid)
{
    int words = (w + 63) / 64;
    for (int k = 0; k < words; k++) {
        const uint8_t *p = row + 64 * k;
        int n = w - 64 * k < 64 ? w - 64 * k : 64, j = 0;
        uint64_t kb = 0, sb = 0;
#if defined(__SSE2__)
        const __m128i vlo = _mm_set1_epi8((char)lo), vhi = _mm_set1_epi8((char)hi);
        uint8_t last[16];
        for (; j < n; j += 16) {
            const uint8_t *q = p + j;
            if (n - j < 16) {
                /* the row's last pixels, padded with zeros (below lo) */
                memset(last, 0, sizeof last);
                memcpy(last, q, (size_t)(n - j));
                q = last;
            }
            __m128i v = _mm_loadu_si128((const __m128i *)q);
            /* v >= t exactly when max(v, t) == v, unsigned */
            unsigned mk = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, vlo), v));
            unsigned ms = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, vhi), v));
            kb |= (uint64_t)mk << j;
            sb |= (uint64_t)ms << j;
        }
        j = n;
#endif
        for (; j < n; j++) {
            kb |= (uint64_t)(p[j] >= lo) << j;
            sb |= (uint64_t)(p[j] >= hi) << j;
        }
        kept[k] = kb;
        solid[k] = sb;
    }
}

/* ---- connected blobs of ink --------------------------------------------- */

/* The first pixel at or after x whose bit is set (want 1) or clear (want
 * 0) in a row bitmap of width w; w if there is none. */
static int next_bit(const uint64_t *bits, int x, int w, int want)
{
    int k = x >> 6, words = (w + 63) >> 6;
    uint64_t flip = want ? 0 : ~(uint64_t)0;
    if (k >= words)
        return w;
    uint64_t b = (bits[k] ^ flip) & (~(uint64_t)0 << (x & 63));
    while (!b) {
        if (++k >= words)
            return w;
        b = bits[k] ^ flip;
    }
    int r = 64 * k + __builtin_ctzll(b);
    return r < w ? r : w;
}

static int32_t find_root(dn_run *r, int32_t i)
{
    while (r[i].parent != i) {
        r[i].parent = r[r[i].parent].parent;
        i = r[i].parent;
    }
    return i;
}

/* Joins two blobs; the lower index is the root, so every root is its
 * blob's first run. */
static void unite(dn_run *r, int32_t a, int32_t b)
{
    a = find_root(r, a);
    b = find_root(r, b);
    if (a < b)
        r[b].parent = a;
    else if (b < a)
        r[a].parent = b;
}

/* Runs in the kept bitmap (h rows of `words`); hw: the processor has POPCNT
 * (see solid_box_with). */
static inline __attribute__((always_inline)) size_t count_runs_with(const uint64_t *kept, int h,
                                                                    int words, int hw)
{
    size_t n = 0;
    for (int y = 0; y < h; y++) {
        const uint64_t *row = kept + (size_t)y * (size_t)words;
        uint64_t carry = 0;
        for (int k = 0; k < words; k++) {
            uint64_t starts = row[k] & ~(row[k] << 1 | carry);
            n += (size_t)(hw ? __builtin_popcountll(starts) : popcount64(starts));
            carry = row[k] >> 63;
        }
    }
    return n;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt"))) static size_t count_runs_popcnt(const uint64_t *kept, int h,
                                                                   int words)
{
    return count_runs_with(kept, h, words, 1);
}
#endif

static size_t count_runs(const uint64_t *kept, int h, int words)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (dn_image_popcnt())
        return count_runs_popcnt(kept, h, words);
#endif
    return count_runs_with(kept, h, words, 0);
}

/* The runs of row y, each its own blob, joined to the runs of row y - 1
 * that touch it (8-connected: overlapping or diagonal). */
static int32_t label_row(dn_run *runs, int32_t n, int32_t prev, const uint64_t *bits, int w)
{
    int32_t first = n;
    for (int x = next_bit(bits, 0, w, 1); x < w; x = next_bit(bits, x, w, 1)) {
        int end = next_bit(bits, x, w, 0);
        runs[n] = (dn_run){(uint16_t)x, (uint16_t)(end - 1), n};
        n++;
        x = end;
    }
    for (int32_t i = prev, j = first; i < first && j < n;) {
        if (runs[i].x1 + 1 < runs[j].x0)
            i++;
        else if (runs[j].x1 + 1 < runs[i].x0)
            j++;
        else {
            unite(runs, i, j);
            if (runs[i].x1 < runs[j].x1)
                i++;
            else
                j++;
        }
    }
    return n;
}

/* Removes the 8-connected blobs of kept ink whose total ink is below
 * 1/SPECK_DEN of the heaviest blob's: their ink is zeroed and their solid
 * bits cleared. 0 if out of memory. */
static int remove_specks(dn_prep *p, int w, int h, int words)
{
    const uint64_t *kept = p->kept.p;
    size_t total = count_runs(kept, h, words);
    if (total > INT32_MAX - 1 || !dn_buf_reserve(&p->runs, total * sizeof(dn_run)) ||
        !dn_buf_reserve(&p->mass, total * sizeof(uint64_t)) ||
        !dn_buf_reserve(&p->row_first, ((size_t)h + 1) * sizeof(int32_t)))
        return 0;
    dn_run *runs = p->runs.p;
    uint64_t *mass = p->mass.p;
    int32_t *row_first = p->row_first.p, n = 0, prev = 0;
    uint8_t *ink = p->ink.p;
    int32_t roots = 0;
    for (int y = 0; y < h; y++) {
        row_first[y] = n;
        int32_t next = label_row(runs, n, prev, kept + (size_t)y * (size_t)words, w);
        prev = n;
        n = next;
    }
    row_first[h] = n;
    for (int32_t i = 0; i < n; i++)
        roots += runs[i].parent == i;
    if (roots <= 1)
        return 1; /* one blob, the digit: nothing to weigh */
    /* Each run's ink, then each blob's on its root. Roots come first in
     * their blob, so a run adds to a sum that is not read again for it. */
    for (int y = 0; y < h; y++)
        for (int32_t i = row_first[y]; i < row_first[y + 1]; i++) {
            const uint8_t *row = ink + (size_t)y * (size_t)w;
            uint64_t m = 0;
            for (int x = runs[i].x0; x <= runs[i].x1; x++)
                m += row[x];
            mass[i] = m;
        }
    uint64_t heaviest = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t r = find_root(runs, i);
        if (r != i)
            mass[r] += mass[i];
    }
    for (int32_t i = 0; i < n; i++)
        if (runs[i].parent == i && mass[i] > heaviest)
            heaviest = mass[i];
    uint64_t *solid = p->solid.p;
    for (int y = 0; y < h; y++)
        for (int32_t i = row_first[y]; i < row_first[y + 1]; i++) {
            if (mass[find_root(runs, i)] * SPECK_DEN >= heaviest)
                continue;
            uint64_t *srow = solid + (size_t)y * (size_t)words;
            for (int x = runs[i].x0; x <= runs[i].x1; x++) {
                ink[(size_t)y * (size_t)w + (size_t)x] = 0;
                srow[x >> 6] &= ~((uint64_t)1 << (x & 63));
            }
        }
    return 1;
}

/* ---- the box of solid ink ----------------------------------------------- */

typedef struct solid_stats {
    int x0, y0, x1, y1;     /* bounding box, inclusive; x1 < 0 if none */
    double area, edges;     /* pixels, and pixel sides facing non-solid */
} solid_stats;

/* Counts, a word of 64 pixels at a time, the bounding box, area and
 * outline of the solid bitmap (h rows of `words`; outside is not solid).
 * Each run in a row has one left and one right side on its outline; the
 * top and bottom sides between two rows are the bits in which they
 * differ. hw: the processor has POPCNT (the baseline x86-64 does not, and
 * the builtin would then call a table-driven libgcc function). */
static inline __attribute__((always_inline)) solid_stats
solid_box_with(const uint64_t *solid, int h, int words, int hw)
{
#define POP(x) (hw ? __builtin_popcountll(x) : popcount64(x))
    solid_stats s = {INT32_MAX, INT32_MAX, -1, -1, 0, 0};
    uint64_t area = 0, runs = 0, rims = 0;
    for (int y = 0; y <= h; y++) {
        const uint64_t *row = y < h ? solid + (size_t)y * (size_t)words : NULL;
        const uint64_t *up = y > 0 ? solid + (size_t)(y - 1) * (size_t)words : NULL;
        for (int k = 0; k < words; k++) {
            uint64_t v = row ? row[k] : 0, u = up ? up[k] : 0;
            if (!(v | u))
                continue;
            rims += (uint64_t)POP(v ^ u);
            if (!v)
                continue;
            area += (uint64_t)POP(v);
            runs += (uint64_t)POP(v & ~(v << 1 | (k > 0 ? row[k - 1] >> 63 : 0)));
            int lo = 64 * k + __builtin_ctzll(v), hi = 64 * k + 63 - __builtin_clzll(v);
            s.x0 = lo < s.x0 ? lo : s.x0;
            s.x1 = hi > s.x1 ? hi : s.x1;
            s.y0 = y < s.y0 ? y : s.y0;
            s.y1 = y;
        }
    }
#undef POP
    s.area = (double)area;
    s.edges = (double)(2 * runs + rims);
    return s;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt"))) static solid_stats solid_box_popcnt(const uint64_t *solid,
                                                                       int h, int words)
{
    return solid_box_with(solid, h, words, 1);
}
#endif

static solid_stats solid_box(const uint64_t *solid, int h, int words)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (dn_image_popcnt())
        return solid_box_popcnt(solid, h, words);
#endif
    return solid_box_with(solid, h, words, 0);
}

/* ---- the 28 x 28 -------------------------------------------------------- */

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

/* Pastes patch (ph, pw) into out (28, 28) with its centre of mass on pixel
 * (14, 14), whole pixels as in MNIST (its digits' centres of mass are
 * spread +-0.29 px around it: rounding). 0 if the patch is empty. */
static int paste_centred(const float *patch, int pw, int ph, float *out, dn_prep_info *inf)
{
    double m = 0, mx = 0, my = 0;
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            double v = patch[y * pw + x];
            m += v;
            mx += v * x;
            my += v * y;
        }
    if (!(m > 0))
        return 0;
    int c = DN_IMAGE_SIDE / 2;
    inf->off_x = (int)lround(c - mx / m);
    inf->off_y = (int)lround(c - my / m);
    memset(out, 0, DN_IMAGE_SIDE * DN_IMAGE_SIDE * sizeof *out);
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++) {
            int ox = x + inf->off_x, oy = y + inf->off_y;
            if (ox < 0 || oy < 0 || ox >= DN_IMAGE_SIDE || oy >= DN_IMAGE_SIDE)
                continue;
            float v = patch[y * pw + x];
            out[oy * DN_IMAGE_SIDE + ox] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    return 1;
}

/* Scales the ink in the box to DN_IMAGE_BOX on its longer side, thickens
 * hairlines, and centres it into out. */
static dn_status frame_digit(dn_prep *p, const dn_image *img, uint8_t lo, uint8_t peak,
                             const solid_stats *s, float *out, dn_prep_info *inf, dn_error *err)
{
    enum { PMAX = DN_IMAGE_BOX + 2 * HALO };
    const char *name = img->name[0] ? img->name : "image";
    inf->box_x = s->x0;
    inf->box_y = s->y0;
    inf->box_w = s->x1 - s->x0 + 1;
    inf->box_h = s->y1 - s->y0 + 1;
    /* Both axes use the same scale so the digit keeps its shape. The
     * output grid starts on the box's edge, as MNIST's boxes sit on its
     * pixel grid, and reaches HALO output pixels beyond it for the faint
     * halo of the strokes. */
    double sc = (double)DN_IMAGE_BOX / (inf->box_w > inf->box_h ? inf->box_w : inf->box_h);
    inf->scale = (float)sc;
    int pw = (int)lround(inf->box_w * sc), ph = (int)lround(inf->box_h * sc);
    pw = (pw < 1 ? 1 : pw) + 2 * HALO;
    ph = (ph < 1 ? 1 : ph) + 2 * HALO;
    float patch[PMAX * PMAX]; /* (ph, pw) */
    if (!dn_resample_bytes(p->ink.p, img->w, img->h, s->x0 - HALO / sc, s->y0 - HALO / sc, sc,
                           sc, lo, 1.0f / peak, patch, pw, ph, 1, &p->band))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    /* A stroke of length L and width W has area L W and outline 2 L, so
     * W = 2 area / outline. MNIST's strokes are 2 px wide (median; 1.3 at
     * the 5th percentile). A thin pen on a large image shrinks to a faint
     * hairline the network has never seen: bring it to full strength and
     * thicken it by one pixel. */
    inf->stroke = (float)(2.0 * s->area / (s->edges > 0 ? s->edges : 1) * sc);
    if (inf->stroke < THIN)
        thicken(patch, pw, ph);
    if (!paste_centred(patch, pw, ph, out, inf))
        return dn_fail(err, DN_ERR_FORMAT, "%s: no digit found", name);
    return DN_OK;
}

dn_status dn_prep_image(dn_prep *p, const dn_image *img, float *out, dn_prep_info *info,
                        dn_error *err)
{
    if (!p || !img || !img->grey || img->w <= 0 || img->h <= 0 || !out)
        return dn_fail(err, DN_ERR_ARG, "dn_image_preprocess: no image");
    const char *name = img->name[0] ? img->name : "image";
    int w = img->w, h = img->h, words = (w + 63) / 64;
    size_t n = (size_t)w * (size_t)h, nbits = (size_t)h * (size_t)words * sizeof(uint64_t);
    dn_prep_info inf;
    memset(&inf, 0, sizeof inf);
    if (!dn_buf_reserve(&p->ink, n) || !dn_buf_reserve(&p->kept, nbits) ||
        !dn_buf_reserve(&p->solid, nbits))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);

    uint8_t bg = border_median(img->grey, w, h);
    inf.background = bg / 255.0f;
    inf.inverted = bg >= 128;
    uint8_t peak = ink_plane(img->grey, n, bg, inf.inverted, p->ink.p);
    float peak_f = ink_fraction(bg, inf.inverted, peak, 1.0f);
    inf.contrast = peak_f;
    if (!(peak_f >= MIN_CONTRAST))
        return dn_fail(err, DN_ERR_FORMAT,
                       "%s: no digit found (nothing stands out from the %s background by more "
                       "than %.0f%%)",
                       name, inf.inverted ? "light" : "dark", MIN_CONTRAST * 100);
    /* The ink is stretched to full contrast (MNIST's strokes are saturated
     * whatever pen and paper a photo shows); what is kept, and what counts
     * as solid, are fixed fractions of the strongest ink. */
    uint8_t lo = first_ink_at(bg, inf.inverted, peak, peak_f, NOISE);
    uint8_t hi = first_ink_at(bg, inf.inverted, peak, peak_f, BOX_INK);
    for (int y = 0; y < h; y++)
        row_bits((const uint8_t *)p->ink.p + (size_t)y * (size_t)w, w, lo, hi,
                 (uint64_t *)p->kept.p + (size_t)y * (size_t)words,
                 (uint64_t *)p->solid.p + (size_t)y * (size_t)words);
    if (!remove_specks(p, w, h, words))
        return dn_fail(err, DN_ERR_NOMEM, "%s: out of memory", name);
    /* The bounding box is that of the solid ink: a faint halo around the
     * strokes (anti-aliasing, blur, a smooth upscale) is kept in the crop
     * but does not count towards the 20 pixels, as in MNIST. */
    solid_stats s = solid_box(p->solid.p, h, words);
    if (s.x1 < 0)
        return dn_fail(err, DN_ERR_FORMAT, "%s: no digit found", name);
    dn_status st = frame_digit(p, img, lo, peak, &s, out, &inf, err);
    if (st == DN_OK && info)
        *info = inf;
    return st;
}

dn_status dn_image_preprocess(const dn_image *img, float *out, dn_prep_info *info,
                              dn_error *err)
{
    dn_prep p;
    memset(&p, 0, sizeof p);
    dn_status st = dn_prep_image(&p, img, out, info, err);
    dn_prep_release(&p);
    return st;
}
