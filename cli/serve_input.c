/*
 * serve_input.c - the parts of an API request before any answer: the query
 * flags, the media type, and an input given as JSON ({"pixels": [...]} or
 * {"image": "data:...;base64,..."}) with its base64 decoded.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = DN_IMAGE_SIDE * DN_IMAGE_SIDE };

/* A 0/1 query flag into *on; 0, or -1 for a value that is neither. */
static int flag(const serve_request *req, const char *key, int *on)
{
    const char *v = req->arg(req->ctx, key);
    *on = 0;
    if (!v)
        return 0;
    if (!strcmp(v, "1") || !strcmp(v, "true") || !*v)
        *on = 1;
    else if (strcmp(v, "0") && strcmp(v, "false"))
        return -1;
    return 0;
}

int serve_query_flags(const serve_request *req, int *flags, char *msg, size_t size)
{
    static const struct {
        const char *key;
        int bit;
    } known[] = {{"maps", DN_EXPLAIN_MAPS},
                 {"saliency", DN_EXPLAIN_SALIENCY},
                 {"naive", DN_EXPLAIN_NAIVE},
                 {"raw", DN_EXPLAIN_RAW}};
    *flags = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int on;
        if (flag(req, known[i].key, &on) != 0) {
            snprintf(msg, size, "query flag %s wants 0 or 1, not '%s'", known[i].key,
                     req->arg(req->ctx, known[i].key));
            return -1;
        }
        *flags |= on ? known[i].bit : 0;
    }
    return 0;
}

void serve_media_type(const char *ct, char *buf, size_t size)
{
    size_t n = 0;
    while (ct && *ct == ' ')
        ct++;
    for (; ct && *ct && *ct != ';' && *ct != ' ' && n + 1 < size; ct++)
        buf[n++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct - 'A' + 'a' : *ct);
    buf[n] = 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 (standard or URL alphabet, padding optional, no other
 * characters) into a malloc'd buffer. NULL on a bad character. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *out_len = o;
    return out;
}

void serve_input_free(serve_input *in)
{
    free(in->owned);
    in->owned = NULL;
}

int serve_input_json(json_t *o, serve_input *in, char *msg, size_t size)
{
    memset(in, 0, sizeof *in);
    if (!json_is_object(o)) {
        snprintf(msg, size, "expected an object with \"pixels\" or \"image\"");
        return -1;
    }
    json_t *px = json_object_get(o, "pixels"), *im = json_object_get(o, "image");
    if (!!px == !!im) {
        snprintf(msg, size, "give exactly one of \"pixels\" (784 values 0..255, a 28x28 image "
                            "white on black) and \"image\" (a data: URL of a PNG or JPEG)");
        return -1;
    }
    if (px) {
        if (!json_is_array(px) || json_array_size(px) != PIXELS) {
            snprintf(msg, size, "\"pixels\" must be an array of %d numbers 0..255 (28x28, rows "
                                "top to bottom), not %s of %zu", PIXELS,
                     json_is_array(px) ? "an array" : "something else",
                     json_is_array(px) ? json_array_size(px) : (size_t)0);
            return -1;
        }
        for (size_t i = 0; i < PIXELS; i++) {
            json_t *v = json_array_get(px, i);
            double d = json_number_value(v);
            if (!json_is_number(v) || !(d >= 0 && d <= 255)) {
                snprintf(msg, size, "\"pixels\"[%zu] must be a number 0..255", i);
                return -1;
            }
            in->x[i] = (float)(d / 255.0);
        }
        in->is_pixels = 1;
        return 0;
    }
    const char *s = json_string_value(im);
    if (!s) {
        snprintf(msg, size, "\"image\" must be a string: a data: URL such as "
                            "\"data:image/png;base64,iVBOR...\"");
        return -1;
    }
    size_t n = json_string_length(im);
    if (!strncmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n);
        if (!comma || comma - s < 7 || strncmp(comma - 7, ";base64", 7) != 0) {
            snprintf(msg, size, "\"image\" is a data: URL without ';base64,'");
            return -1;
        }
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    in->owned = b64_decode(s, n, &in->size);
    if (!in->owned) {
        snprintf(msg, size, "\"image\" is not valid base64");
        return -1;
    }
    in->data = in->owned;
    return 0;
}
