/*
 * modelfile.h - what the model-file reader and writer share; not public.
 *
 *   src/safetensors.c    the container: little-endian floats, CRC-32, and
 *                        stage 1 of loading (the file and its header,
 *                        checked against the file alone)
 *   src/modelfile.c      stage 2 of loading (the model the metadata
 *                        describes, its parameters from the tensors) and
 *                        the tensor shapes and names both directions use
 *   src/modelfile_save.c writing a model and its extras
 */
#ifndef DN_MODELFILE_H
#define DN_MODELFILE_H

#include "internal.h"

#include <jansson.h>
#include <stdint.h>

/* Limits. The default model's file is about 217 KB; these leave room for
 * far bigger specs and checkpoints while refusing what no model needs. The
 * header limit is the one the reference safetensors implementation uses. */
#define ST_MAX_FILE ((uint64_t)1 << 30)
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* jansson needs tens of bytes per value, so a 100 MB header of "[0,0,..."
 * could take gigabytes; a model file has a few hundred values. */
#define ST_MAX_VALUES 65536
#define ST_MAX_DIMS 8

/* One tensor of a parsed header. */
typedef struct st_tensor {
    const char *name;       /* owned by the JSON tree */
    int ndim;
    uint64_t dims[ST_MAX_DIMS];
    uint64_t nelem;
    uint64_t begin, end;    /* byte offsets in the data section */
    int used;               /* taken as a model parameter */
} st_tensor;

/* A safetensors file after stage 1: every tensor F32 with a size that
 * matches its offsets, the tensors tiling the data section exactly, the
 * metadata all strings and the checksum (if any) right. */
typedef struct st_file {
    const char *path;
    json_t *root;
    json_t *meta;           /* the "__metadata__" object or NULL */
    st_tensor *t;
    size_t n;
    uint8_t *data;          /* the data section */
    uint64_t data_len;
    uint64_t data_pos;      /* file offset of the data section */
} st_file;

/* Stage 1: reads path (a regular file, at most ST_MAX_FILE bytes) and
 * checks everything that needs no model. On failure f still holds what
 * was read; st_free releases it either way. */
dn_status dn_st_parse(st_file *f, const char *path, dn_error *err);
void dn_st_free(st_file *f);
/* A metadata string, or NULL. */
const char *dn_st_meta(const st_file *f, const char *key);

/* Little-endian float32 whatever the host's byte order. */
void dn_st_put_f32(uint8_t *p, float v);
float dn_st_get_f32(const uint8_t *p);
/* CRC-32 (zlib's) of n bytes, the "checksum" metadata. */
uint32_t dn_st_crc32(const uint8_t *p, uint64_t n);
/* A name from a file made safe to quote in a one-line message: printable
 * ASCII only, cut with "..." to fit size. Returns buf. */
const char *dn_st_safe_name(char *buf, size_t size, const char *s);
/* "[16,8,5,5]" into buf. */
void dn_st_fmt_shape(char *buf, size_t size, const uint64_t *dims, int ndim);

/* The shape a layer's weight (which 0) or bias (which 1) has in the file:
 * conv (O, I, k, k), fc (O, I), bias (O) as in PyTorch's state_dict.
 * Returns 0 if the layer has no such parameter. */
int dn_st_param_shape(const dn_layer *l, int which, uint64_t *dims, int *ndim);
uint64_t dn_st_shape_elems(const uint64_t *dims, int ndim);
/* Metadata keys the model itself uses; every other key is an extra. */
int dn_st_is_standard_key(const char *key);
/* What load accepts for the dataset name and the input shape; save checks
 * the same so that it never writes a file it would refuse. */
int dn_st_valid_dataset(const char *s, size_t cap);
int dn_st_valid_input(dn_shape in);

/* Refuses a tensor holding NaN or an infinity: DN_ERR_NUMERIC naming path,
 * the tensor, the first such element and how many there are. `action`
 * says what is refused ("not saved", "not loaded"). */
dn_status dn_st_check_finite(const char *path, const char *tensor, const float *v, size_t n,
                             const char *action, dn_error *err);

#endif
