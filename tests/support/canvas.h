/*
 * canvas.h - MNIST digits drawn as a person draws on a web page's canvas:
 * the digit's centre line traced with a round brush of uniform width on a
 * 200-400 px canvas, exported as an RGBA PNG. Used by test_image (fast
 * preprocessing against today's, on drawings) and bench/bench_prep (the
 * canvas set it times, and the files it writes with --write).
 */
#ifndef DN_TEST_CANVAS_H
#define DN_TEST_CANVAS_H

#include <stddef.h>
#include <stdint.h>

/* How the strokes and the background look. */
typedef enum t_canvas_style {
    T_CANVAS_BLACK_ON_WHITE,    /* opaque, as a canvas filled white first */
    T_CANVAS_WHITE_ON_BLACK,    /* opaque, MNIST's own polarity */
    T_CANVAS_BLACK_ON_CLEAR,    /* black strokes, transparent background */
    T_CANVAS_WHITE_ON_CLEAR,    /* white strokes, transparent background */
    T_CANVAS_BLUE_ON_WHITE,     /* a coloured pen on white paper */
    T_CANVAS_STYLES
} t_canvas_style;

typedef struct t_canvas {
    unsigned char *png;     /* the encoded file (malloc'd) */
    size_t len;
    int w, h;               /* canvas size, each 200..400 */
    int brush;              /* stroke width in canvas pixels */
    t_canvas_style style;
} t_canvas;

/* Draws the 28x28 MNIST digit px (0..255, ink high) as canvas number seed:
 * size, place, digit height (35-85 % of the canvas), brush width and style
 * all follow from seed (style = seed % T_CANVAS_STYLES). Returns 0 and
 * fills c on success, -1 if out of memory or the digit has no ink. */
int t_canvas_draw(const uint8_t *px, uint64_t seed, t_canvas *c);
void t_canvas_free(t_canvas *c);

#endif
