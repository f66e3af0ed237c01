/*
 * protobuf.h - a writer for the protocol-buffers wire format, enough for
 * src/onnx.c; not part of the public API.
 *
 * A message is built in a dn_pb buffer field by field; a nested message is
 * built in a buffer of its own and appended with dn_pb_message, which
 * writes its length first (the wire format needs the length before the
 * bytes). A failed allocation sets oom and turns later appends into
 * no-ops, so a caller checks once, at the end.
 *
 * Wire types used: 0 (varint: int32, int64, enums), 2 (length-delimited:
 * strings, bytes, nested messages, packed repeated integers) and 5
 * (fixed32: float).
 */
#ifndef DN_PROTOBUF_H
#define DN_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct dn_pb {
    uint8_t *buf;
    size_t len, cap;
    int oom;
} dn_pb;

/* The bytes of v as a base-128 varint, least significant group first. */
void dn_pb_varint(dn_pb *b, uint64_t v);
/* Field `field` of wire type 0. A negative int64 is sent as its 64-bit
 * two's complement (ten bytes), as protobuf's int64 is. */
void dn_pb_int(dn_pb *b, int field, int64_t v);
/* Field of wire type 5: v as 4 little-endian bytes. */
void dn_pb_float(dn_pb *b, int field, float v);
/* Field of wire type 2 holding n bytes. */
void dn_pb_bytes(dn_pb *b, int field, const void *p, size_t n);
/* The same for a NUL-terminated string (without the NUL). */
void dn_pb_string(dn_pb *b, int field, const char *s);
/* The same for the bytes of the message built in child; child is left
 * as it was, and its oom passes on to b. */
void dn_pb_message(dn_pb *b, int field, const dn_pb *child);
/* A packed repeated int64 field: n varints in one length-delimited
 * field. */
void dn_pb_packed_ints(dn_pb *b, int field, const int64_t *v, int n);
/* Field of wire type 2 holding n floats as 4 little-endian bytes each,
 * whatever the host's byte order (a TensorProto's raw_data). */
void dn_pb_float_bytes(dn_pb *b, int field, const float *v, size_t n);
/* Frees the buffer and zeroes b. */
void dn_pb_free(dn_pb *b);

#endif
