/*
 * imagetest.h - what test_image and test_decode share: encoded files in
 * memory and the check that an error is one line naming the file.
 */
#ifndef DN_TEST_IMAGETEST_H
#define DN_TEST_IMAGETEST_H

#include "test.h"

/* A growing byte buffer that stb_image_write's *_to_func can fill. */
typedef struct t_membuf {
    unsigned char *p;
    size_t len, cap;
} t_membuf;

/* stbi_write_func that appends to the t_membuf ctx. */
void t_membuf_append(void *ctx, void *data, int size);
/* img encoded as PNG (jpeg 0) or JPEG (quality q). */
t_membuf t_encode(const dn_image *img, int jpeg, int q);
/* Fails the test unless st is an error whose one-line message names name
 * and contains what (if not NULL). */
void t_expect_error(dn_status st, const dn_error *err, const char *name, const char *what);

#endif
