/*
 * protobuf.c - the protocol-buffers wire format, written (see protobuf.h).
 *
 * Only what the ONNX export needs: a tag is (field << 3 | wire type) as a
 * varint; varints carry 7 bits a byte, least significant first, the high
 * bit set on every byte but the last.
 */
#include "protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* Room for n more bytes; sets oom (and returns 0) when there is none. */
static int reserve(dn_pb *b, size_t n)
{
    if (b->oom)
        return 0;
    if (n <= b->cap - b->len)
        return 1;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) {
        b->oom = 1;
        return 0;
    }
    b->buf = nb;
    b->cap = cap;
    return 1;
}

static void append(dn_pb *b, const void *p, size_t n)
{
    if (n && reserve(b, n)) {
        memcpy(b->buf + b->len, p, n);
        b->len += n;
    }
}

void dn_pb_varint(dn_pb *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    append(b, tmp, n);
}

static void tag(dn_pb *b, int field, int wire)
{
    dn_pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void dn_pb_int(dn_pb *b, int field, int64_t v)
{
    tag(b, field, WIRE_VARINT);
    dn_pb_varint(b, (uint64_t)v);
}

static void put_le32(uint8_t *p, uint32_t u)
{
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

void dn_pb_float(dn_pb *b, int field, float v)
{
    uint32_t u;
    uint8_t p[4];
    memcpy(&u, &v, 4);
    put_le32(p, u);
    tag(b, field, WIRE_FIXED32);
    append(b, p, 4);
}

void dn_pb_bytes(dn_pb *b, int field, const void *p, size_t n)
{
    tag(b, field, WIRE_LEN);
    dn_pb_varint(b, n);
    append(b, p, n);
}

void dn_pb_string(dn_pb *b, int field, const char *s)
{
    dn_pb_bytes(b, field, s, strlen(s));
}

void dn_pb_message(dn_pb *b, int field, const dn_pb *child)
{
    if (child->oom)
        b->oom = 1;
    dn_pb_bytes(b, field, child->buf, child->len);
}

void dn_pb_packed_ints(dn_pb *b, int field, const int64_t *v, int n)
{
    dn_pb body = {0};
    for (int i = 0; i < n; i++)
        dn_pb_varint(&body, (uint64_t)v[i]);
    dn_pb_message(b, field, &body);
    dn_pb_free(&body);
}

void dn_pb_float_bytes(dn_pb *b, int field, const float *v, size_t n)
{
    if (n > SIZE_MAX / 4) {
        b->oom = 1;
        return;
    }
    tag(b, field, WIRE_LEN);
    dn_pb_varint(b, n * 4);
    if (!reserve(b, n * 4))
        return;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_le32(b->buf + b->len + 4 * i, u);
    }
    b->len += n * 4;
}

void dn_pb_free(dn_pb *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}
