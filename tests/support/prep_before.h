/*
 * prep_before.h - the image path before the byte pipeline, frozen as an
 * oracle (see prep_before.c).
 */
#ifndef DN_TEST_PREP_BEFORE_H
#define DN_TEST_PREP_BEFORE_H

#include "digitnet.h"

/* A grey float image, 0 black and 1 white, as dn_image was. */
typedef struct t_grey {
    int w, h;
    float *px; /* (h, w) */
} t_grey;

/* stb_image at the file's channels, then grey as before (alpha filled with
 * the contrasting colour). Returns 0, or -1 if stb refuses the data. */
int t_before_decode(const void *data, size_t size, t_grey *img);
void t_before_free(t_grey *img);
/* The float preprocessing, as dn_image_preprocess was. */
dn_status t_before_preprocess(const t_grey *img, float *out, dn_prep_info *info,
                              dn_error *err);

#endif
