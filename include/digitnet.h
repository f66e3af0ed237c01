/*
 * digitnet.h - identify handwritten digits with a small convolutional network.
 *
 * This header is the reference manual of libdigitnet. It implements the
 * lecture "Identifying Digits with a CNN" (CNN_MNIST) in C17: MNIST readers,
 * the layers forward and backward, the model built from a textual spec,
 * safetensors model files compatible with PyTorch's state_dict, optimizers,
 * training, image preprocessing. Pictures of what each layer sees (PNG,
 * HTML text, SVG charts) have their own header, digitnet_picture.h.
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
/* Fashion-MNIST's own (its training set's mean and standard deviation). */
#define DN_FASHION_MEAN 0.2860f
#define DN_FASHION_STD 0.3530f

/* Reads an IDX image file (magic 0x00000803), plain or gzip-compressed
 * (told by its first bytes, 1f 8b, not by its name). On success *pixels is
 * a malloc'd (n, rows, cols) uint8 array the caller frees; on failure it is
 * NULL. Every dimension must be nonzero and the (decompressed) size must
 * match the header exactly: DN_ERR_FORMAT for a bad magic, a zero or
 * overflowing dimension, truncation, trailing bytes or a corrupt gzip
 * stream; DN_ERR_IO if the file cannot be opened or read or is not a
 * regular file (a FIFO is refused at once, not waited on). The size the
 * header implies is checked before anything is allocated: a plain file
 * must be exactly that long, and a gzip file cannot claim more than 1032
 * times its own size (deflate's largest expansion); memory for a gzip
 * stream then grows with the data actually read. */
dn_status dn_idx_read_images(const char *path, uint8_t **pixels, size_t *n,
                             uint32_t *rows, uint32_t *cols, dn_error *err);

/* Reads an IDX label file (magic 0x00000801), plain or gzip-compressed,
 * with the checks of dn_idx_read_images; every label must also be below
 * max_label (10 for MNIST; 0 is DN_ERR_ARG). *labels is malloc'd (n). */
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
 * train-images.idx3-ubyte). name is "mnist" or "fashion" (NULL: "mnist");
 * it sets class_names and mean/std (DN_MNIST_* or DN_FASHION_*). Images
 * must be 28x28 (else DN_ERR_SHAPE) and as many as the labels (else
 * DN_ERR_FORMAT); a missing directory or file is DN_ERR_IO, an unknown
 * split or name DN_ERR_ARG. Both headers are checked (28x28, equal counts,
 * sizes against the files) before either payload is read. On failure *ds
 * is zeroed. Free with dn_dataset_free (which also zeroes it). */
dn_status dn_dataset_load(dn_dataset *ds, const char *dir, const char *split,
                          const char *name, dn_error *err);
void dn_dataset_free(dn_dataset *ds);
/* The image and label files dn_dataset_load reads for split ("train" or
 * "test") in dir: the first name it accepts that exists, or the canonical
 * name when none does (size bytes each; a caller checks that what it
 * writes is not one of them). DN_ERR_ARG for an unknown split. */
dn_status dn_dataset_files(const char *dir, const char *split, char *images,
                           char *labels, size_t size, dn_error *err);
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

/* The lecture's input: one grey channel of DN_IMAGE_SIDE x DN_IMAGE_SIDE
 * (1x28x28), the shape of an MNIST image. An initialiser:
 * dn_shape in = DN_INPUT_SHAPE; */
#define DN_INPUT_CHANNELS 1
#define DN_INPUT_SHAPE {DN_INPUT_CHANNELS, DN_IMAGE_SIDE, DN_IMAGE_SIDE}

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
 * +-1/sqrt(fan_in) for weights and biases; layer l draws from
 * dn_key(seed, DN_STREAM_INIT, l, 0)). A spec is a comma-separated list
 * (extra whitespace ignored) of:  conv O [kK] [pP] [sS]  (k3 p0 s1 by
 * default),  relu,  maxpool N  (k=N stride=N pad=0) or  maxpool kK [sS]
 * [pP]  (stride k by default),  dropout2d [P]  (0.5),  flatten,  fc N
 * (needs a flat input),  logsoftmax  (last only). m->spec holds it in
 * canonical form. mean/std are MNIST's and dataset "mnist" until the
 * caller changes them.
 * Returns NULL and fills err on a bad spec, naming the layer (counted from
 * 1) and the shapes, e.g. "layer 7 'maxpool 2': input 16x1x1 gives
 * 16x0x0". */
dn_model *dn_model_new(const char *spec, dn_shape input, uint64_t seed,
                       dn_error *err);
void dn_model_free(dn_model *m);
/* Index of the layer with this name, or -1. */
int dn_model_find(const dn_model *m, const char *name);
/* Number of classes (size of the last layer's output). */
int dn_model_classes(const dn_model *m);
/* DN_OK if m can be trained or evaluated as a classifier of `classes`
 * classes: its last layer is a logsoftmax over exactly that many outputs
 * (the loss is a negative log-likelihood, and predictions are read as
 * probabilities). Otherwise DN_ERR_SHAPE, e.g. "the model ends in 'relu'
 * with 5408 outputs, but a classifier of 10 classes must end in 10
 * log-probabilities: finish the spec with 'fc 10, logsoftmax'".
 * dn_train and dn_evaluate check it with the dataset's 10 classes. */
dn_status dn_model_check_classifier(const dn_model *m, int classes, dn_error *err);

/* Per-batch workspace: activations, gradients, pooling arg-max indices and
 * dropout masks for up to max_batch samples. One per thread. */
typedef struct dn_work dn_work;

/* A work for passes of 1..max_batch samples through m or any model with
 * the same shapes; NULL if max_batch < 1 or out of memory. */
dn_work *dn_work_new(const dn_model *m, int max_batch);
void dn_work_free(dn_work *w);
/* Output of layer i for the last forward pass: (B, out.c, out.h, out.w);
 * NULL if i is out of range. */
float *dn_work_act(dn_work *w, int layer);
/* on != 0 forces the general reference kernels for every later pass on
 * this work, which also keep each layer's output for dn_work_act; by
 * default the fast kernels run where they apply and keep only what
 * backward needs. The two give the same results (see tests). */
void dn_work_set_reference(dn_work *w, int on);
/* Which kernels the passes run on this machine, for messages: "fast
 * kernels, AVX-512" (or "AVX2", "portable C"; every model runs on them),
 * or "general reference kernels" where the fast ones were not built. */
const char *dn_kernels(void);
/* Dropout2d scale of layer i: (B, C), each 0 or 1/(1-p). Written by a
 * DN_MODE_TRAIN forward; read by a DN_MODE_TRAIN_FIXED_MASK forward (all
 * ones until written). NULL unless layer i is a dropout2d. */
float *dn_work_mask(dn_work *w, int layer);

typedef enum dn_mode {
    DN_MODE_EVAL,               /* dropout is the identity */
    DN_MODE_TRAIN,              /* dropout masks drawn from sample keys */
    DN_MODE_TRAIN_FIXED_MASK,   /* dropout masks taken from dn_work_mask */
    DN_MODE_INFER               /* DN_MODE_EVAL when no dn_model_backward
                                   follows: the pass keeps nothing for one
                                   (no copy of x, no pooling arg-max), so
                                   it runs faster; the same outputs */
} dn_mode;

/* Forward pass of B samples x (B, input.c, input.h, input.w), normalised.
 * In DN_MODE_TRAIN the mask of sample b in each dropout layer l is drawn
 * from dn_key(sample_keys[b], DN_STREAM_DROPOUT, l, 0), so it depends only
 * on the sample's key. Returns the last layer's output (B, classes): the
 * log-probabilities for the default model; it lives in w until the next
 * pass. Returns NULL if B is not in 1..max_batch, w was made for a model
 * of other shapes, or keys are missing in DN_MODE_TRAIN. x may be reused
 * as soon as this returns. */
const float *dn_model_forward(const dn_model *m, dn_work *w, const float *x,
                              int B, dn_mode mode,
                              const uint64_t *sample_keys);

/* The Dropout2d mask of one sample in dropout layer `layer`: scale[c] is 0
 * with probability p and 1/(1-p) otherwise, for c < channels, drawn from
 * dn_key(sample_key, DN_STREAM_DROPOUT, layer, 0). Every kernel (general or
 * fast) takes its masks from here, so they agree bit for bit. */
void dn_dropout2d_mask(uint64_t sample_key, int layer, int channels, float p,
                       float *scale);

/* Mean negative log-likelihood of labels (B) under the last forward (the
 * first B of its samples); NAN without such a forward or if a label is not
 * below dn_model_classes(m). */
double dn_model_loss(const dn_model *m, dn_work *w, const uint8_t *labels,
                     int B);

/* Backward pass after dn_model_forward on the same work: writes into grads
 * (n_params, overwritten) the gradient of  scale * sum_b NLL(b)  with
 * respect to every parameter. scale = 1/B gives the gradient of the mean
 * loss; a trainer splitting a batch of N into chunks passes 1/N. B must be
 * the forward's B and that forward not DN_MODE_INFER (grads are left all
 * zero otherwise); dropout uses that forward's masks; a label not below
 * the class count contributes 0. */
void dn_model_backward(const dn_model *m, dn_work *w, const uint8_t *labels,
                       int B, float scale, float *grads);

/* ------------------------------------------------------------------------ */
/* Model files (safetensors)                                                */
/* ------------------------------------------------------------------------ */

/* A model file is safetensors: an 8-byte little-endian header length, a
 * JSON header (space-padded to a multiple of 8), then raw little-endian
 * float32 data. Parameter tensors are named as PyTorch's state_dict of
 * CNN_MNIST: "<layer>.weight", conv (O, I, k, k) and fc (O, I), and
 * "<layer>.bias" (O). The "__metadata__" (strings only) holds: "format" =
 * "digitnet", "arch" (the spec), "input" ("1x28x28"), "mean", "std" (%.9g,
 * so they round-trip), "dataset", "checksum" (CRC-32 of the data section,
 * 8 hex digits) and "version" (DN_VERSION); these are the standard keys.
 * Checkpoints add more tensors (e.g. "optim.square_avg"), saved after the
 * parameters as 1-D tensors, and metadata (e.g. "train.epoch") through
 * dn_file_extras. tools/torch_safetensors.py reads and writes the same
 * files on the PyTorch side. */

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
 * untouched on any failure. DN_ERR_ARG, before anything is written, for
 * extras that collide with a parameter name or a standard key, repeat a
 * name, or are not UTF-8, and for a model whose file would not load back
 * (non-finite mean, std <= 0, empty dataset); DN_ERR_NUMERIC, also
 * before anything is written, naming the first tensor (parameter or
 * extra) that holds NaN or Inf, its first such element and their count;
 * DN_ERR_IO naming path and the system's reason when the file cannot be
 * written. */
dn_status dn_model_save(const dn_model *m, const char *path,
                        const dn_file_extras *extras, dn_error *err);

/* Reads a model file written by dn_model_save or by PyTorch (through
 * tools/torch_safetensors.py). Without "arch" metadata the default spec is
 * assumed; without "input", 1x28x28; without mean/std, MNIST's; without
 * "dataset", "mnist"; without "checksum", no check. Every parameter tensor
 * must be present with the shape the spec implies. If extras is not NULL
 * it is overwritten (zeroed first; free earlier contents before): the
 * other tensors (at most DN_FILE_MAX_TENSORS, flattened) and all metadata
 * except the standard keys are returned in it (free with
 * dn_file_extras_free); otherwise they are ignored.
 * The file is untrusted: it must be a regular file of at most 1 GiB (a
 * FIFO or device is refused without waiting on it) with a header of at
 * most 100 MB of valid JSON (no empty tensor name or metadata key, which
 * dn_model_save would not write back); every tensor F32 with a non-negative shape
 * whose size matches its data_offsets; the tensors must tile the data
 * section exactly (no overlap, no hole, nothing after); the checksum, if
 * present, must match. The spec is laid out and every parameter tensor it
 * needs found with its shape before the parameters are allocated, so a
 * small file cannot make the loader allocate more than the file holds.
 * Every tensor, extras included, must be finite. Anything else is refused
 * with a one-line error that starts with path (DN_ERR_IO, DN_ERR_FORMAT,
 * DN_ERR_SHAPE, or DN_ERR_NUMERIC naming a tensor holding NaN or Inf; a bad
 * "arch" passes dn_model_new's message on) and NULL is returned, with
 * extras left zeroed. */
dn_model *dn_model_load(const char *path, dn_file_extras *extras,
                        dn_error *err);

/* Frees the tensor data that dn_model_load put in x and zeroes it. */
void dn_file_extras_free(dn_file_extras *x);
/* Value of metadata key in x, or NULL. */
const char *dn_file_extras_get(const dn_file_extras *x, const char *key);

/* ------------------------------------------------------------------------ */
/* ONNX export                                                              */
/* ------------------------------------------------------------------------ */

/* (section owned by src/onnx.c) */

#define DN_ONNX_IR_VERSION 7
#define DN_ONNX_OPSET 13

/* Encodes m for inference as an ONNX model (IR version DN_ONNX_IR_VERSION,
 * default-domain opset DN_ONNX_OPSET) into a malloc'd buffer *out of *size
 * bytes. The graph reads "input" (batch, C, H, W) float32, normalised as
 * m->mean and m->std say, for any batch size, and writes "log_probs"
 * (batch, classes) when the spec ends in logsoftmax, "output" otherwise.
 * Each layer is one standard operator: conv -> Conv (kernel_shape, pads,
 * strides), relu -> Relu, maxpool -> MaxPool (padding never wins, as
 * here and in PyTorch), flatten -> Flatten (axis 1), fc -> Gemm (transB 1),
 * logsoftmax -> LogSoftmax (axis 1); dropout2d, the identity at inference,
 * is left out. Parameters are initializers named as in the model file
 * ("conv1.weight" ...); every intermediate tensor has its shape in
 * value_info. metadata_props record "digitnet.arch", "digitnet.input",
 * "digitnet.version", "dataset", "normalization.mean", "normalization.std",
 * "normalization" and "preprocessing" (what to do to a picture before the
 * graph sees it), "classes" (comma-separated names, for 10 classes of a
 * known dataset) and "output". DN_ERR_ARG for a model of more than about
 * 2 GB (protobuf's limit), DN_ERR_NOMEM when memory runs out. */
dn_status dn_onnx_encode(const dn_model *m, uint8_t **out, size_t *size,
                         dn_error *err);
/* Writes dn_onnx_encode's bytes to path atomically (see
 * dn_file_write_atomic): an existing file at path is left untouched on any
 * failure. */
dn_status dn_onnx_save(const dn_model *m, const char *path, dn_error *err);

/* ------------------------------------------------------------------------ */
/* Optimizers, schedules and training                                       */
/* ------------------------------------------------------------------------ */

/* (section owned by src/optim.c, src/augment.c, src/presets.c, src/train.c,
 * src/evaluate.c and src/checkpoint.c) */

/* Optimizers. Each update rule is PyTorch 1.13's (torch.optim, the
 * single-tensor path) element by element, with its defaults:
 *   Adadelta  lr 1.0, rho 0.9, eps 1e-6, weight_decay 0
 *   SGD       lr 0.01, momentum 0, dampening 0, nesterov off, weight_decay 0
 *             (the momentum buffer is the first gradient itself, as PyTorch)
 *   Adam      lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0
 *             (L2: the decay is added to the gradient), amsgrad off
 *   AdamW     as Adam but weight_decay 1e-2, decoupled: params *= 1 - lr*wd
 *             before the moment update */
typedef enum dn_optim_kind {
    DN_OPTIM_ADADELTA,
    DN_OPTIM_SGD,
    DN_OPTIM_ADAM,
    DN_OPTIM_ADAMW
} dn_optim_kind;

typedef struct dn_optim_config {
    dn_optim_kind kind;
    double lr;              /* base learning rate (schedules scale it) */
    double weight_decay;
    double momentum;        /* SGD */
    double dampening;       /* SGD */
    int nesterov;           /* SGD: needs momentum > 0 and dampening 0 */
    double rho;             /* Adadelta */
    double eps;             /* Adadelta, Adam, AdamW */
    double beta1, beta2;    /* Adam, AdamW */
    int amsgrad;            /* Adam, AdamW */
} dn_optim_config;

#define DN_OPTIM_MAX_STATE 3

typedef struct dn_optim {
    dn_optim_config cfg;
    size_t n;               /* parameters updated */
    int64_t steps;          /* steps taken (Adam's bias correction, SGD's
                               first-step buffer initialisation) */
    int n_state;            /* state tensors this optimizer keeps */
    const char *state_name[DN_OPTIM_MAX_STATE]; /* PyTorch's state keys:
                               "square_avg", "acc_delta", "momentum_buffer",
                               "exp_avg", "exp_avg_sq", "max_exp_avg_sq" */
    float *state[DN_OPTIM_MAX_STATE]; /* each (n), slices of one aligned
                               zeroed block */
} dn_optim;

/* Fills c with PyTorch's defaults for kind (see above). */
void dn_optim_defaults(dn_optim_config *c, dn_optim_kind kind);
/* "adadelta", "sgd", "adam", "adamw". */
const char *dn_optim_name(dn_optim_kind kind);
/* Kind named name; DN_ERR_ARG naming the choices for an unknown name. */
dn_status dn_optim_parse(const char *name, dn_optim_kind *kind,
                         dn_error *err);
/* DN_ERR_ARG naming the first out-of-range hyper-parameter (negative lr,
 * rho or betas outside [0, 1), nesterov without momentum ...). */
dn_status dn_optim_check(const dn_optim_config *c, dn_error *err);

/* Checks c and allocates zeroed state for n parameters. On failure o holds
 * nothing to free. */
dn_status dn_optim_init(dn_optim *o, const dn_optim_config *c, size_t n,
                        dn_error *err);
void dn_optim_free(dn_optim *o);
/* One update of params (n) from grads (n) with learning rate lr (the
 * scheduled value; cfg.lr is ignored here). grads are left unchanged. */
void dn_optim_step(dn_optim *o, float *params, const float *grads,
                   double lr);
/* The same update for elements [lo, hi) only, without counting the step:
 * threads may each take a slice of one step, then one thread calls
 * dn_optim_step_end. Every element gets exactly the arithmetic of
 * dn_optim_step, which is dn_optim_step_range(o, p, g, lr, 0, n) followed
 * by dn_optim_step_end(o). */
void dn_optim_step_range(dn_optim *o, float *params, const float *grads,
                         double lr, size_t lo, size_t hi);
void dn_optim_step_end(dn_optim *o);

/* Learning-rate schedules, as PyTorch's lr_scheduler stepped the usual way:
 *   none      constant lr
 *   step      StepLR stepped per epoch: lr * gamma^(epoch / step_size)
 *             (defaults step_size 1, gamma 0.7: the MNIST example)
 *   cosine    CosineAnnealingLR stepped per epoch with T_max = epochs:
 *             eta_min + (lr - eta_min) (1 + cos(pi epoch / epochs)) / 2
 *   onecycle  OneCycleLR stepped per batch, max_lr = lr, total_steps =
 *             epochs * batches, pct_start 0.3, cosine annealing,
 *             div_factor 25, final_div_factor 1e4; the learning rate only
 *             (as cycle_momentum=False: momentum and betas stay fixed) */
typedef enum dn_sched_kind {
    DN_SCHED_NONE,
    DN_SCHED_STEP,
    DN_SCHED_COSINE,
    DN_SCHED_ONECYCLE
} dn_sched_kind;

typedef struct dn_sched_config {
    dn_sched_kind kind;
    int step_size;          /* step: epochs between decays */
    double gamma;           /* step: decay factor */
    double eta_min;         /* cosine: final learning rate */
    double pct_start;       /* onecycle: fraction of steps rising */
    double div_factor;      /* onecycle: initial lr = lr / div_factor */
    double final_div_factor;/* onecycle: final lr = initial / this */
} dn_sched_config;

/* Fills s with the defaults above for kind. */
void dn_sched_defaults(dn_sched_config *s, dn_sched_kind kind);
/* "none", "step", "cosine", "onecycle". */
const char *dn_sched_name(dn_sched_kind kind);
dn_status dn_sched_parse(const char *name, dn_sched_kind *kind,
                         dn_error *err);
/* Learning rate for batch `batch` (0-based, of `batches` per epoch) of
 * epoch `epoch` (0-based, of `epochs`), from base learning rate lr. */
double dn_sched_lr(const dn_sched_config *s, double lr, int epoch,
                   int epochs, long batch, long batches);

/* Augmentation: a random affine map per image - rotation uniform in
 * +-DN_AUG_ROTATE degrees, isotropic scale uniform in 1 +- DN_AUG_SCALE,
 * shift uniform in +-DN_AUG_SHIFT pixels on each axis - sampled bilinearly
 * (outside the image is background 0) from the raw pixels and then
 * normalised ((x/255 - mean) / std). Every draw comes from
 * dn_rng_seed(key), so an image's transform depends only on its key. */
#define DN_AUG_ROTATE 10.0
#define DN_AUG_SCALE 0.1
#define DN_AUG_SHIFT 2.0

/* src (rows, cols) uint8 -> out (rows, cols) normalised float. */
void dn_augment_image(const uint8_t *src, int rows, int cols, uint64_t key,
                      float mean, float std, float *out);

/* Training. Deterministic by construction: epoch e visits the training
 * images in the order of a Fisher-Yates permutation drawn from
 * dn_key(seed, SHUFFLE, e, 0); image i's dropout key is
 * dn_key(seed, DROPOUT, e, i) and its augmentation key
 * dn_key(seed, AUGMENT, e, i). A batch is cut into chunks of
 * dn_train_chunk(model) samples whatever the thread count; each chunk's
 * gradient goes into its own buffer and the buffers are summed in chunk
 * order, so the weights are bit-identical for any number of threads, and
 * a resumed run is bit-identical to an uninterrupted one. */
#define DN_TRAIN_CHUNK 8

/* Samples per training chunk for model m: DN_TRAIN_CHUNK, or twice that
 * for a model of more than DN_TRAIN_CHUNK_PARAMS parameters, whose
 * gradient (written per chunk, then summed) costs more than a larger
 * chunk's activations. A function of the model alone, so the weights still
 * do not depend on the thread count. */
#define DN_TRAIN_CHUNK_PARAMS 100000
int dn_train_chunk(const dn_model *m);

/* Figures handed to the progress callback after every batch and once more
 * at the end of every epoch (epoch_done = 1, evaluation figures set),
 * before that epoch's checkpoint is written, so that what the callback
 * records can be written with it (see dn_train_saver). */
typedef struct dn_train_progress {
    int epoch, epochs;      /* epoch in progress, 1-based, of epochs */
    long batch, batches;    /* batches done in this epoch, per epoch */
    size_t images;          /* training images per epoch */
    double lr;              /* learning rate of the last batch */
    double train_loss;      /* mean loss over this epoch's batches so far */
    double seconds;         /* wall time in this epoch (this process) */
    double images_per_s;    /* training throughput in this epoch */
    int epoch_done;
    const char *split;      /* evaluated on "test" or "val"; NULL: none */
    double eval_loss;       /* mean NLL on the split */
    double eval_acc;        /* fraction correct */
    double eval_acc_se;     /* sqrt(acc (1 - acc) / eval_n) */
    size_t eval_n;
} dn_train_progress;

/* Returns non-zero to ask the trainer to stop after the current batch. */
typedef int (*dn_train_callback)(const dn_train_progress *p, void *user);

/* Writes a checkpoint: m with the extras x (optimizer state, position,
 * recipe) to path, as dn_model_save does; it may add metadata to x. Set
 * in dn_train_config.save to write other files in the same step (digitnet
 * train commits its metrics file right after the model, and records in
 * the model which metrics belong to it). user is dn_train_config.user. */
typedef dn_status (*dn_train_saver)(const dn_model *m, const char *path,
                                    dn_file_extras *x, void *user,
                                    dn_error *err);

typedef struct dn_train_config {
    int epochs;             /* total epochs, counting those already done */
    int batch;              /* samples per optimizer step (64) */
    uint64_t seed;
    int threads;            /* worker threads; <= 0 means all online cores */
    dn_optim_config optim;
    dn_sched_config sched;
    int augment;            /* random affine per training image */
    size_t val;             /* > 0: hold out the last val training images
                               and evaluate on them instead of the test set */
    size_t limit;           /* > 0: train on at most the first limit images */
    const char *checkpoint; /* written after every epoch and on a stop;
                               NULL for none */
    dn_train_callback progress; /* may be NULL */
    dn_train_saver save;    /* writes the checkpoint; NULL: dn_model_save */
    void *user;
    int reference;          /* non-zero: the general reference kernels only
                               (dn_work_set_reference), for tests that pin
                               the reference arithmetic; not recorded */
} dn_train_config;

/* The MNIST example's recipe: 14 epochs, batch 64, seed 1, Adadelta lr 1.0,
 * StepLR step 1 gamma 0.7, all cores, no augmentation. The same as
 * dn_train_preset("lecture", ...). */
void dn_train_defaults(dn_train_config *c);

/* Fills c with a named recipe (the defaults above, then the preset's
 * settings): "lecture" (dn_train_defaults) or "best" (augmented Adam with a
 * one-cycle schedule, 40 epochs; see src/presets.c for how it was chosen).
 * DN_ERR_ARG naming the choices for an unknown name, c untouched. */
dn_status dn_train_preset(const char *name, dn_train_config *c, dn_error *err);
/* The name of preset i (0, 1, ... in the order above) and a one-line
 * summary of it (may be NULL); NULL past the last. */
const char *dn_train_preset_name(int i, const char **summary);
/* The layer spec preset `name` trains, for dn_model_new; NULL for the
 * lecture's network (DN_DEFAULT_SPEC) or an unknown name. */
const char *dn_train_preset_spec(const char *name);

/* Trains m on train (evaluating after each epoch on the held-out val images
 * or, without val, on test when not NULL). If resume is not NULL it is the
 * extras of a checkpoint (from dn_model_load) and m its parameters:
 * training continues from the epoch and batch it recorded with its
 * optimizer state; cfg must then hold the checkpoint's recipe (see
 * dn_train_config_from_checkpoint; epochs, threads, checkpoint and the
 * callback may differ). The checkpoint (cfg->checkpoint) is written with
 * dn_model_save after every epoch and, when the callback asks to stop,
 * after the current batch (resumable mid-epoch; a stop asked for on an
 * epoch's last batch is taken after that epoch's evaluation); then
 * DN_ERR_INTERRUPTED is returned. A fresh run of 0 epochs writes the
 * initial weights as a checkpoint. Divergence - a non-finite loss, or a
 * parameter that the optimizer step made NaN or infinite (e.g. Adadelta
 * with eps 0) - stops with DN_ERR_NUMERIC naming the epoch and batch,
 * leaving the last checkpoint as it was. */
dn_status dn_train(dn_model *m, const dn_dataset *train,
                   const dn_dataset *test, const dn_train_config *cfg,
                   const dn_file_extras *resume, dn_error *err);

/* Restores into c the recipe a checkpoint's extras record (everything
 * except epochs, threads, checkpoint and callback, which keep their values)
 * and the number of epochs it completed into *epochs_done (may be NULL).
 * DN_ERR_FORMAT if x is not a digitnet training checkpoint. */
dn_status dn_train_config_from_checkpoint(const dn_file_extras *x,
                                          dn_train_config *c,
                                          int *epochs_done, dn_error *err);

/* Evaluates images [first, first + count) of ds in DN_MODE_EVAL, in chunks
 * of `batch` spread over `threads` threads (<= 0: all cores). Writes each
 * image's log-probabilities into logp (count, classes) if not NULL, the
 * mean NLL into *loss and the number of correct arg-max predictions into
 * *correct (either may be NULL). Results do not depend on threads or
 * batch. */
dn_status dn_evaluate(const dn_model *m, const dn_dataset *ds, size_t first,
                      size_t count, int threads, int batch, float *logp,
                      double *loss, size_t *correct, dn_error *err);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

/* (section owned by src/metrics.c) What the trainer, `eval`, `report` and
 * `serve` compute from log-probabilities, each in one place. */

/* Index of the largest of v[0..n) (the first on ties; NaN never wins over
 * an earlier value); 0 when n < 1. The predicted class of a row of
 * log-probabilities. */
int dn_argmax(const float *v, int n);

/* Fraction correct, correct / n, and (if se is not NULL) its standard
 * error sqrt(p (1 - p) / n); both NAN when n is 0. */
double dn_accuracy(size_t correct, size_t n, double *se);

/* Adds the predictions of logp (n, k) for labels (n) into the confusion
 * matrix cm (k, k), cm[true * k + predicted]; labels not below k are not
 * counted. Returns how many were right. */
size_t dn_confusion_add(size_t *cm, int k, const float *logp, const uint8_t *labels, size_t n);

/* Per-class figures of a confusion matrix; a class never predicted (or
 * never present) has precision (recall) 0, and then F1 is 0. */
typedef struct dn_class_scores {
    double precision;   /* cm[c][c] / column sum */
    double recall;      /* cm[c][c] / row sum */
    double f1;          /* harmonic mean of the two */
    size_t support;     /* row sum: images of class c */
} dn_class_scores;

/* scores (k) from cm (k, k). */
void dn_class_scores_of(const size_t *cm, int k, dn_class_scores *scores);

/* One off-diagonal cell of a confusion matrix. */
typedef struct dn_confused_pair {
    int truth, predicted;
    size_t count;
} dn_confused_pair;

/* The at most max most frequent confusions of cm (k, k), most frequent
 * first (ties: by true class, then predicted class), non-zero cells only.
 * Returns how many were written to pairs. */
int dn_most_confused(const size_t *cm, int k, dn_confused_pair *pairs, int max);

/* ------------------------------------------------------------------------ */
/* Images: decoding and MNIST-style preprocessing                           */
/* ------------------------------------------------------------------------ */

/* (section owned by src/image.c; pictures of what the network sees are in
 * digitnet_picture.h) */

/* Bounds on what the decoders accept, checked from the file's header before
 * any pixel is decoded, so that a hostile header cannot make us allocate
 * gigabytes: each side at most DN_IMAGE_MAX_SIDE, at most DN_IMAGE_MAX_PIXELS
 * in all, and a file of at most DN_IMAGE_MAX_FILE bytes. */
#define DN_IMAGE_MAX_SIDE 8192
#define DN_IMAGE_MAX_PIXELS (64L * 1024 * 1024)
#define DN_IMAGE_MAX_FILE (256L * 1024 * 1024)

/* The network's input is DN_IMAGE_SIDE square; preprocessing fits the digit
 * into a DN_IMAGE_BOX square inside it, as MNIST was made. */
#define DN_IMAGE_SIDE 28
#define DN_IMAGE_BOX 20

/* A grey image, one byte a pixel: 0 is black, 255 white. */
typedef struct dn_image {
    int w, h;
    uint8_t *grey;      /* (h, w) */
    int borrowed;       /* pixels lent by a dn_prep: dn_image_free leaves them */
    char name[256];     /* file name for messages ("" if none) */
} dn_image;

/* Allocates a w x h image filled with value. */
dn_status dn_image_alloc(dn_image *img, int w, int h, uint8_t value,
                         dn_error *err);
/* Frees the pixels (unless borrowed) and zeroes img; safe on a zeroed or
 * freed image. */
void dn_image_free(dn_image *img);

/* Decodes a PNG, JPEG, BMP, GIF (first frame), PGM/PPM, TGA or PSD file
 * (not Radiance HDR nor Softimage PIC) into a grey image (ITU-R 601 luma, rounded). A transparent
 * background is filled with whichever of white or black contrasts with the
 * visible pixels, so that a drawing on a transparent canvas keeps its
 * strokes. Fails with one line naming the file for a missing, empty,
 * truncated, corrupt or oversized file (the size is read from the header
 * before any pixel is allocated), or a path that is not a regular file. */
dn_status dn_image_load(const char *path, dn_image *img, dn_error *err);
/* Same as dn_image_load for an encoded image held in memory; name is used
 * in messages and copied into img->name (may be NULL). */
dn_status dn_image_load_memory(const void *data, size_t size,
                               const char *name, dn_image *img,
                               dn_error *err);

/* Resamples src to w x h into dst (allocated here): area averaging along
 * an axis that shrinks, bilinear along one that grows. */
dn_status dn_image_resize(const dn_image *src, int w, int h, dn_image *dst,
                          dn_error *err);

/* What dn_image_preprocess found, for messages and pictures. */
typedef struct dn_prep_info {
    int inverted;           /* the background was light, so ink was dark */
    float background;       /* the background's grey level (border median) */
    float contrast;         /* |ink - background| of the strongest ink */
    int box_x, box_y;       /* the ink's bounding box in the input */
    int box_w, box_h;
    float scale;            /* input pixels -> network pixels */
    int off_x, off_y;       /* where the scaled box went in the 28 x 28 */
    float stroke;           /* estimated stroke width in network pixels */
} dn_prep_info;

/* LeCun's recipe for MNIST, applied to any photo or drawing of one digit:
 * grey; background from the median of the border, inverted if light so that
 * ink is white on black; faint differences from the background dropped as
 * noise; cropped to the ink's bounding box; scaled to fit DN_IMAGE_BOX
 * keeping the aspect ratio (area averaging when shrinking, bilinear when
 * enlarging); hairlines from a thin pen thickened to MNIST's strokes;
 * pasted into DN_IMAGE_SIDE square with the centre of mass on pixel
 * (14, 14), rounded to whole pixels as MNIST was. Writes out
 * (28, 28) in 0..1 with ink 1, not normalised; info may be NULL. An image
 * without ink fails with DN_ERR_FORMAT "no digit found". */
dn_status dn_image_preprocess(const dn_image *img, float *out,
                              dn_prep_info *info, dn_error *err);
/* For images that already look like MNIST (white on black): no inversion,
 * no cropping, only a resize to 28 x 28 when the size differs. out as for
 * dn_image_preprocess. */
dn_status dn_image_raw(const dn_image *img, float *out, dn_error *err);

/* Reusable buffers for decoding and preprocessing many images, so that a
 * server allocates nothing per request once it has seen its largest image:
 *
 *     dn_prep *p = dn_prep_new();
 *     for each request:
 *         dn_image img;
 *         if (dn_prep_load_memory(p, png, size, "request", &img, &err) == DN_OK)
 *             st = dn_prep_image(p, &img, x, &info, &err);
 *     dn_prep_free(p);
 *
 * The results are those of dn_image_load_memory and dn_image_preprocess,
 * which use a dn_prep of their own for one image. A dn_prep is used by one
 * thread at a time (one per worker thread). */
typedef struct dn_prep dn_prep;
/* NULL if out of memory. */
dn_prep *dn_prep_new(void);
void dn_prep_free(dn_prep *p);
/* dn_image_load_memory into img, whose pixels belong to p (img->borrowed):
 * valid until the next dn_prep_load_memory on p or dn_prep_free. */
dn_status dn_prep_load_memory(dn_prep *p, const void *data, size_t size,
                              const char *name, dn_image *img, dn_error *err);
/* dn_image_preprocess with p's buffers; img may be any dn_image. */
dn_status dn_prep_image(dn_prep *p, const dn_image *img, float *out,
                        dn_prep_info *info, dn_error *err);
/* x[i] = (x[i] - mean) / std for n values: the model's normalisation. */
void dn_image_normalize(float *x, size_t n, float mean, float std);

/* ------------------------------------------------------------------------ */
/* Files                                                                    */
/* ------------------------------------------------------------------------ */

/* Writes size bytes to path atomically: a temporary file in the same
 * directory, fsync, rename. An existing file at path is left untouched on
 * any failure. DN_ERR_IO names path and the system's reason (a full disk,
 * a read-only directory; for a file size limit, EFBIG, the process must
 * ignore SIGXFSZ, as the digitnet command does, or the kernel kills it). */
dn_status dn_file_write_atomic(const char *path, const void *data,
                               size_t size, dn_error *err);

/* The same in two steps, for a caller that replaces several files
 * together (digitnet train stages its metrics file, writes the model, then
 * commits the metrics). dn_file_stage writes data to a new temporary file
 * next to path, named PATH.PID-XXXXXX.tmp, and syncs it; path is not
 * touched, and *tmp gets the temporary file's name (malloc'd). On failure
 * nothing is left behind and *tmp is NULL. dn_file_commit renames tmp onto
 * path (atomic), syncs the directory and frees tmp; on failure it removes
 * the temporary file. dn_file_discard removes it and frees tmp. */
dn_status dn_file_stage(const char *path, const void *data, size_t size,
                        char **tmp, dn_error *err);
dn_status dn_file_commit(char *tmp, const char *path, dn_error *err);
void dn_file_discard(char *tmp);

/* The temporary files that atomic writes of path left behind when their
 * process died between creating and renaming them (kill -9, power cut):
 * names PATH.PID-XXXXXX.tmp in path's directory whose PID is not a running
 * process (nothing else is listed: not other names, not a live writer's
 * file). *names gets n malloc'd "DIR/NAME" strings in a malloc'd array;
 * free each and the array. DN_ERR_IO if the directory cannot be listed. */
dn_status dn_file_stale(const char *path, char ***names, size_t *n,
                        dn_error *err);

#ifdef __cplusplus
}
#endif

#endif /* DIGITNET_H */
