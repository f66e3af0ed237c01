/*
 * digitnet.h - identify handwritten digits with a small convolutional network.
 *
 * This header is the reference manual of libdigitnet. It implements the
 * lecture "Identifying Digits with a CNN" (CNN_MNIST) in C17: MNIST readers,
 * the layers forward and backward, the model built from a textual spec,
 * safetensors model files compatible with PyTorch's state_dict, optimizers,
 * training, image preprocessing and pictures of what each layer sees.
 *
 * Conventions
 *  - Every public symbol starts with dn_.
 *  - The library never prints and never exits. Functions that can fail
 *    return a dn_status and, when given a non-NULL dn_error, fill it with one
 *    line that names the file, the offset and what was expected versus found.
 *  - Tensors are float32, row-major, NCHW. A shape comment on each buffer
 *    says its layout, e.g. (B, 16, 14, 14).
 *  - Randomness comes from explicit, seeded generators (dn_rng); streams are
 *    keyed by (seed, purpose, epoch, index) so that results do not depend on
 *    the order in which threads run.
 */
#ifndef DIGITNET_H
#define DIGITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DN_VERSION "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status and errors                                                        */
/* ------------------------------------------------------------------------ */

typedef enum dn_status {
    DN_OK = 0,
    DN_ERR_ARG,         /* invalid argument (a bad flag value, a bad spec) */
    DN_ERR_IO,          /* open/read/write/rename failed */
    DN_ERR_FORMAT,      /* a file is malformed: wrong magic, truncated ... */
    DN_ERR_NOMEM,       /* allocation failed or a size would overflow */
    DN_ERR_SHAPE,       /* shapes do not fit together */
    DN_ERR_NUMERIC,     /* a non-finite value appeared */
    DN_ERR_INTERRUPTED  /* stopped on request (SIGINT) */
} dn_status;

typedef struct dn_error {
    dn_status status;
    char msg[512];      /* one line, no trailing newline */
} dn_error;

/* Returns a short constant name for a status ("format error", ...). */
const char *dn_status_str(dn_status st);

/* ------------------------------------------------------------------------ */
/* Random numbers                                                           */
/* ------------------------------------------------------------------------ */

/* xoshiro256** state. Seed it with dn_rng_seed or dn_rng_stream. */
typedef struct dn_rng {
    uint64_t s[4];
} dn_rng;

/* Purposes of keyed streams, so that e.g. shuffling and dropout never share
 * numbers. */
enum {
    DN_STREAM_INIT = 1,     /* parameter initialisation */
    DN_STREAM_SHUFFLE = 2,  /* per-epoch permutation of the training set */
    DN_STREAM_DROPOUT = 3,  /* per-sample dropout masks */
    DN_STREAM_AUGMENT = 4   /* per-sample random affine transforms */
};

/* Mixes the words into one 64-bit key (splitmix64-based hash). */
uint64_t dn_key(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);
/* Seeds r from a 64-bit value; every value gives a valid, distinct state. */
void dn_rng_seed(dn_rng *r, uint64_t seed);
/* Next 64 random bits. */
uint64_t dn_rng_next(dn_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float dn_rng_uniform(dn_rng *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint32_t dn_rng_below(dn_rng *r, uint32_t n);

/* ------------------------------------------------------------------------ */
/* IDX files and datasets                                                   */
/* ------------------------------------------------------------------------ */

/* Normalisation used by the lecture (MNIST's mean and standard deviation). */
#define DN_MNIST_MEAN 0.1307f
#define DN_MNIST_STD 0.3081f

/* Reads an IDX image file (magic 0x00000803), plain or gzip-compressed.
 * On success *pixels is a malloc'd (n, rows, cols) uint8 array the caller
 * frees. The file size must match the header exactly. */
dn_status dn_idx_read_images(const char *path, uint8_t **pixels, size_t *n,
                             uint32_t *rows, uint32_t *cols, dn_error *err);

/* Reads an IDX label file (magic 0x00000801), plain or gzip-compressed;
 * every label must be below max_label (10 for MNIST). */
dn_status dn_idx_read_labels(const char *path, uint8_t **labels, size_t *n,
                             unsigned max_label, dn_error *err);

typedef struct dn_dataset {
    uint8_t *images;    /* (n, rows, cols) raw pixels, 0..255 */
    uint8_t *labels;    /* (n) 0..9 */
    size_t n;
    uint32_t rows, cols;
    float mean, std;    /* input normalisation */
    char name[16];      /* "mnist" or "fashion" */
    const char *const *class_names; /* 10 names */
} dn_dataset;

/* Loads split "train" or "test" of a dataset directory holding the four
 * files (train-images-idx3-ubyte ..., optionally .gz, or the dotted names
 * train-images.idx3-ubyte). name is "mnist" or "fashion" (class names). */
dn_status dn_dataset_load(dn_dataset *ds, const char *dir, const char *split,
                          const char *name, dn_error *err);
void dn_dataset_free(dn_dataset *ds);
/* Writes image i normalised ((x/255 - mean) / std) into out (rows*cols). */
void dn_dataset_image(const dn_dataset *ds, size_t i, float *out);
/* Class names of "mnist" ("0".."9") or "fashion" ("T-shirt/top", ...);
 * NULL for an unknown name. */
const char *const *dn_class_names(const char *dataset);

/* ------------------------------------------------------------------------ */
/* Model                                                                    */
/* ------------------------------------------------------------------------ */

/* The lecture's CNN_MNIST. */
#define DN_DEFAULT_SPEC                                                      \
    "conv 8 k3 p1 s1, relu, maxpool 2, dropout2d 0.5, "                      \
    "conv 16 k5 p2 s1, relu, maxpool 2, dropout2d 0.5, "                     \
    "flatten, fc 64, relu, fc 10, logsoftmax"

#define DN_MAX_LAYERS 32

typedef enum dn_layer_kind {
    DN_CONV,
    DN_RELU,
    DN_MAXPOOL,
    DN_DROPOUT2D,
    DN_FLATTEN,
    DN_FC,
    DN_LOGSOFTMAX
} dn_layer_kind;

/* A per-sample tensor shape; a vector of n elements is {n, 1, 1}. */
typedef struct dn_shape {
    int c, h, w;
} dn_shape;

typedef struct dn_layer {
    dn_layer_kind kind;
    char name[16];      /* conv1, relu1, pool1, drop1, flatten, fc1, ...;
                           parameters are "<name>.weight", "<name>.bias" as
                           in the PyTorch state_dict of CNN_MNIST */
    dn_shape in, out;
    int out_ch;         /* conv: output channels; fc: output features */
    int k, pad, stride; /* conv and maxpool */
    float p;            /* dropout2d: probability of zeroing a channel */
    size_t w_off, w_len;/* weight in dn_model.params; conv (O, I, k, k),
                           fc (O, I) as PyTorch; w_len 0 if none */
    size_t b_off, b_len;/* bias (O) */
    int64_t macs;       /* forward multiply-accumulates per sample */
} dn_layer;

typedef struct dn_model {
    int n_layers;
    dn_layer layers[DN_MAX_LAYERS];
    dn_shape input;     /* 1x28x28 */
    size_t n_params;
    float *params;      /* one 64-byte aligned block of n_params floats */
    char spec[1024];    /* canonical spec, parseable by dn_model_new */
    float mean, std;    /* input normalisation the model was trained with */
    char dataset[16];   /* "mnist" or "fashion" */
} dn_model;

/* Builds a model from a spec such as DN_DEFAULT_SPEC (NULL means the
 * default) for inputs of the given shape, runs shape inference and
 * initialises parameters as PyTorch does by default (uniform in
 * +-1/sqrt(fan_in) for weights and biases) from dn_key(seed, INIT, ...).
 * Returns NULL and fills err on a bad spec, naming the layer and shapes. */
dn_model *dn_model_new(const char *spec, dn_shape input, uint64_t seed,
                       dn_error *err);
void dn_model_free(dn_model *m);
/* Index of the layer with this name, or -1. */
int dn_model_find(const dn_model *m, const char *name);
/* Number of classes (size of the last layer's output). */
int dn_model_classes(const dn_model *m);

/* Per-batch workspace: activations, gradients, pooling arg-max indices and
 * dropout masks for up to max_batch samples. One per thread. */
typedef struct dn_work dn_work;

dn_work *dn_work_new(const dn_model *m, int max_batch);
void dn_work_free(dn_work *w);
/* Output of layer i for the last forward pass: (B, out.c, out.h, out.w). */
float *dn_work_act(dn_work *w, int layer);
/* on != 0 forces the general reference kernels for every later pass on
 * this work, which also keep each layer's output for dn_work_act; by
 * default the fast kernels run where they apply and keep only what
 * backward needs. The two give the same results (see tests). */
void dn_work_set_reference(dn_work *w, int on);
/* Dropout2d scale of layer i: (B, C), each 0 or 1/(1-p). Written by a
 * DN_MODE_TRAIN forward; read by a DN_MODE_TRAIN_FIXED_MASK forward. */
float *dn_work_mask(dn_work *w, int layer);

typedef enum dn_mode {
    DN_MODE_EVAL,               /* dropout is the identity */
    DN_MODE_TRAIN,              /* dropout masks drawn from sample keys */
    DN_MODE_TRAIN_FIXED_MASK    /* dropout masks taken from dn_work_mask */
} dn_mode;

/* Forward pass of B samples x (B, input.c, input.h, input.w), normalised.
 * In DN_MODE_TRAIN the mask of sample b in each dropout layer l is drawn
 * from dn_key(sample_keys[b], DN_STREAM_DROPOUT, l, 0), so it depends only
 * on the sample's key. Returns the last layer's output (B, classes): the
 * log-probabilities for the default model. */
const float *dn_model_forward(const dn_model *m, dn_work *w, const float *x,
                              int B, dn_mode mode,
                              const uint64_t *sample_keys);

/* The Dropout2d mask of one sample in dropout layer `layer`: scale[c] is 0
 * with probability p and 1/(1-p) otherwise, for c < channels, drawn from
 * dn_key(sample_key, DN_STREAM_DROPOUT, layer, 0). Every kernel (general or
 * fast) takes its masks from here, so they agree bit for bit. */
void dn_dropout2d_mask(uint64_t sample_key, int layer, int channels, float p,
                       float *scale);

/* Mean negative log-likelihood of labels (B) under the last forward. */
double dn_model_loss(const dn_model *m, dn_work *w, const uint8_t *labels,
                     int B);

/* Backward pass after dn_model_forward on the same work: writes into grads
 * (n_params, overwritten) the gradient of  scale * sum_b NLL(b)  with
 * respect to every parameter. scale = 1/B gives the gradient of the mean
 * loss; a trainer splitting a batch of N into chunks passes 1/N. */
void dn_model_backward(const dn_model *m, dn_work *w, const uint8_t *labels,
                       int B, float scale, float *grads);

/* ------------------------------------------------------------------------ */
/* Model files (safetensors)                                                */
/* ------------------------------------------------------------------------ */

/* A model file is safetensors: an 8-byte little-endian header length, a
 * JSON header, then raw little-endian float32 data. Parameter tensors are
 * named as PyTorch's state_dict of CNN_MNIST ("conv1.weight" ...). The
 * "__metadata__" holds at least: "format" = "digitnet", "arch" (the spec),
 * "mean", "std", "dataset", "checksum" (CRC-32 of the data section, hex).
 * Checkpoints add more tensors (e.g. "optim.square_avg") and metadata
 * (e.g. "train.epoch") through dn_file_extras. */

#define DN_FILE_MAX_TENSORS 8
#define DN_FILE_MAX_META 32

typedef struct dn_file_extras {
    int n_tensors;
    struct {
        char name[64];
        float *data;    /* len floats; after dn_model_load, malloc'd */
        size_t len;
    } tensors[DN_FILE_MAX_TENSORS];
    int n_meta;
    struct {
        char key[64];
        char value[1024];
    } meta[DN_FILE_MAX_META];
} dn_file_extras;

/* Writes m (and extras, may be NULL) to path atomically: a temporary file
 * in the same directory, fsync, rename. An existing file at path is left
 * untouched on any failure. */
dn_status dn_model_save(const dn_model *m, const char *path,
                        const dn_file_extras *extras, dn_error *err);

/* Reads a model file written by dn_model_save or by PyTorch (through
 * tools/torch_safetensors.py). Without "arch" metadata the default spec is
 * assumed; without mean/std, MNIST's. Every parameter tensor must be
 * present with dtype F32 and the shape the spec implies. If extras is not
 * NULL, other F32 tensors and all metadata except the standard keys are
 * returned in it (free with dn_file_extras_free); otherwise they are
 * ignored. A malformed or hostile file is refused with a one-line error;
 * returns NULL then. */
dn_model *dn_model_load(const char *path, dn_file_extras *extras,
                        dn_error *err);

/* Frees the tensor data that dn_model_load put in x and zeroes it. */
void dn_file_extras_free(dn_file_extras *x);
/* Value of metadata key in x, or NULL. */
const char *dn_file_extras_get(const dn_file_extras *x, const char *key);

/* ------------------------------------------------------------------------ */
/* Optimizers, schedules and training                                       */
/* ------------------------------------------------------------------------ */

/* (section owned by src/optim.c and src/train.c) */

/* ------------------------------------------------------------------------ */
/* Images: decoding, MNIST-style preprocessing, pictures                    */
/* ------------------------------------------------------------------------ */

/* (section owned by src/image.c and src/picture.c) */

#ifdef __cplusplus
}
#endif

#endif /* DIGITNET_H */
