/*
 * imagetest.c - see imagetest.h.
 */
#include "imagetest.h"

#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

void t_membuf_append(void *ctx, void *data, int size)
{
    t_membuf *m = ctx;
    if (m->len + (size_t)size > m->cap) {
        m->cap = 2 * (m->len + (size_t)size);
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

t_membuf t_encode(const dn_image *img, int jpeg, int q)
{
    t_membuf m = {0};
    int ok = jpeg ? stbi_write_jpg_to_func(t_membuf_append, &m, img->w, img->h, 1, img->grey, q)
                  : stbi_write_png_to_func(t_membuf_append, &m, img->w, img->h, 1, img->grey,
                                           img->w);
    assert_true(ok);
    return m;
}

void t_expect_error(dn_status st, const dn_error *err, const char *name, const char *what)
{
    if (st == DN_OK)
        fail_msg("%s: accepted, expected an error about %s", name, what ? what : "it");
    if (!strstr(err->msg, name))
        fail_msg("error does not name the file %s: %s", name, err->msg);
    if (what && !strstr(err->msg, what))
        fail_msg("error for %s lacks '%s': %s", name, what, err->msg);
    if (strchr(err->msg, '\n'))
        fail_msg("error is not one line: %s", err->msg);
}
