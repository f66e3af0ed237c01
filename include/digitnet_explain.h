/*
 * digitnet_explain.h - one prediction explained: the answer with an honest
 * "unsure", the 28x28 the network saw beside a naive squash of the same
 * picture, every layer's feature maps and an occlusion heat-map of which
 * strokes mattered; and the same as JSON.
 *
 * This is what the page of `digitnet serve` shows. It is computed here, in
 * the library, so that the HTTP server and an in-browser (WebAssembly)
 * build of the library give the same answers, in the same JSON, from the
 * same code. Conventions as in digitnet.h: nothing prints or exits,
 * failures come back as a dn_status and a one-line dn_error.
 */
#ifndef DIGITNET_EXPLAIN_H
#define DIGITNET_EXPLAIN_H

#include "digitnet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Stages: what is worth a picture, in the order the data flows            */
/* ------------------------------------------------------------------------ */

typedef struct dn_stage {
    int layer;          /* whose output (dn_work_act); -1 for the input */
    char name[40];      /* "input", "conv1 + ReLU", "pool1", "flatten",
                           "fc1 + ReLU", "output" */
    dn_shape shape;     /* of that output; a vector of n is {n, 1, 1} */
} dn_stage;

/* The stages `digitnet show` draws: the input, then each layer output that
 * the next layer reads after its nonlinearity (a conv or fc followed by a
 * ReLU is shown after the ReLU), every max-pool, the flatten when its
 * input is a set of maps, an fc not followed by a ReLU, and the output.
 * Dropout is the identity at inference and is not a stage. Writes at most
 * max stages into st and returns how many there are (which may exceed
 * max). DN_MAX_LAYERS + 1 always suffices. */
int dn_model_stages(const dn_model *m, dn_stage *st, int max);

/* ------------------------------------------------------------------------ */
/* Confidence                                                               */
/* ------------------------------------------------------------------------ */

/* A prediction is called unsure when its probability is below
 * DN_SURE_PROB, or when the input's ink (the mean of the 28x28 in 0..1)
 * is outside [DN_INK_MIN, DN_INK_MAX], a range that holds every MNIST
 * test digit but not a filled area or a speck. A network trained with a
 * softmax answers something for any input, and often confidently: with
 * the lecture's model (98.54 % test accuracy), half of a set of random
 * scribbles get a probability above 0.9, but only a fifth above 0.99,
 * against 93 % of MNIST's test digits and 90 % of canvas drawings of them
 * (tests/test_explain.c holds these figures for the committed model). */
#define DN_SURE_PROB 0.99f
#define DN_INK_MIN 0.02f
#define DN_INK_MAX 0.35f

/* The verdict on log-probabilities logp (classes) for input x (28, 28) in
 * 0..1, ink 1. Returns 1 if unsure and then writes a short reason into why
 * (size bytes; may be NULL), "" otherwise. */
int dn_unsure(const float *logp, int classes, const float *x, char *why,
              size_t size);

/* ------------------------------------------------------------------------ */
/* Occlusion                                                                */
/* ------------------------------------------------------------------------ */

/* Which parts of the input drove class cls: every patch x patch square at
 * a step of stride pixels is set to background (0) in turn, and the drop
 * in cls's log-probability margin over its closest rival, log p(cls) -
 * max_{j != cls} log p(j) (before minus after; positive where the square
 * supported cls), is spread over the square's pixels. The margin rather
 * than log p(cls) itself, because a sure answer has log p(cls) within
 * 1e-7 of 0 whatever is blanked, while the margin falls in proportion to
 * what each square contributed. heat (28, 28) gets,
 * for each pixel, the mean drop over the squares covering it; squares
 * without ink change nothing and are not run. x is (28, 28) in 0..1, ink
 * 1, not normalised; w is a work for m of any batch size (the occluded
 * copies run in batches of its size; its activations are overwritten).
 * DN_ERR_ARG for a patch or stride out of 1..28, a class out of range or a
 * model whose input is not 1x28x28. */
dn_status dn_occlusion(const dn_model *m, dn_work *w, const float *x,
                       int cls, int patch, int stride, float *heat,
                       dn_error *err);

/* The squares the page's heat-map uses: 4 x 4 pixels every 2, 169 places. */
#define DN_OCCLUDE_PATCH 4
#define DN_OCCLUDE_STRIDE 2

/* ------------------------------------------------------------------------ */
/* One prediction explained                                                 */
/* ------------------------------------------------------------------------ */

#define DN_EXPLAIN_MAX_CLASSES 64

enum {
    DN_EXPLAIN_MAPS = 1,        /* every stage's values */
    DN_EXPLAIN_SALIENCY = 2,    /* the occlusion heat-map */
    DN_EXPLAIN_NAIVE = 4,       /* the naive squash and its answer */
    DN_EXPLAIN_RAW = 8          /* no MNIST-style preprocessing */
};

typedef struct dn_explanation {
    int flags;              /* the DN_EXPLAIN_* asked for */
    int classes;
    int prediction;         /* arg-max of logp (the first on ties) */
    float probability;      /* exp(logp[prediction]) */
    int unsure;             /* see dn_unsure */
    char why[96];           /* its reason, "" when sure */
    float logp[DN_EXPLAIN_MAX_CLASSES];             /* (classes) */
    float input[DN_IMAGE_SIDE * DN_IMAGE_SIDE];     /* (28, 28) 0..1, ink 1:
                                                       what the network saw */
    int prepped;            /* prep holds what preprocessing found */
    dn_prep_info prep;
    /* DN_EXPLAIN_NAIVE, for a picture that was preprocessed: the whole
     * picture squashed to 28 x 28 (ink made white as preprocessing would),
     * without cropping, scaling to the box or centring, and its answer. */
    int has_naive;
    float naive_input[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
    float naive_logp[DN_EXPLAIN_MAX_CLASSES];
    int naive_prediction;
    /* DN_EXPLAIN_MAPS: the stages and their values one after the other,
     * stage k's (shape.c, shape.h, shape.w) at maps + map_off[k]. */
    int n_stages;
    dn_stage stages[DN_MAX_LAYERS + 1];
    size_t map_off[DN_MAX_LAYERS + 1];
    float *maps;            /* malloc'd; freed by dn_explanation_free */
    size_t maps_len;
    /* DN_EXPLAIN_SALIENCY: dn_occlusion for the prediction. */
    int has_saliency;
    int patch, stride;
    float saliency[DN_IMAGE_SIDE * DN_IMAGE_SIDE];  /* (28, 28) */
    /* Microseconds spent; decode and total are the caller's to fill (the
     * library does not see them), the rest are measured here. */
    double us_decode, us_preprocess, us_forward, us_maps, us_saliency,
        us_total;
} dn_explanation;

/* Explains img: MNIST-style preprocessing (dn_prep_image with prep's
 * buffers, or dn_image_preprocess when prep is NULL; with DN_EXPLAIN_RAW
 * only dn_image_raw), one forward pass with the fast kernels where they
 * apply (so the log-probabilities are those of `digitnet predict` for the
 * same picture), then what flags ask for. w is a work for m (any batch
 * size; DN_EXPLAIN_NAIVE runs both inputs as one batch when it has room
 * for 2); it is left in its default (fast) mode. e is overwritten; free it
 * with dn_explanation_free whatever this returns. Fails as the
 * preprocessing does ("no digit found" ...), or with DN_ERR_SHAPE for a
 * model whose input is not 1x28x28 or that has more than
 * DN_EXPLAIN_MAX_CLASSES classes. */
dn_status dn_explain_image(const dn_model *m, dn_work *w, dn_prep *prep,
                           const dn_image *img, int flags,
                           dn_explanation *e, dn_error *err);
/* The same for an input that is already the network's: x (28, 28) in 0..1,
 * ink 1 (an MNIST image / 255). DN_EXPLAIN_NAIVE and DN_EXPLAIN_RAW do not
 * apply and are ignored. */
dn_status dn_explain_input(const dn_model *m, dn_work *w, const float *x,
                           int flags, dn_explanation *e, dn_error *err);
/* Explains B inputs xs (B, 28, 28) as one batch: the forward passes run
 * B at a time (in chunks of the work's batch size) and each e[b] gets
 * prediction, logp, unsure and input; flags add maps and saliency per
 * input. e (B) is overwritten; free each. */
dn_status dn_explain_batch(const dn_model *m, dn_work *w, const float *xs,
                           int B, int flags, dn_explanation *e,
                           dn_error *err);
void dn_explanation_free(dn_explanation *e);

/* The explanation as the JSON object that `digitnet serve` answers to
 * POST /api/predict (see web/openapi.json for the schema):
 *   prediction, probability, unsure, unsure_reason (null when sure),
 *   probabilities (classes), log_probabilities (classes),
 *   input (784 integers 0..255, rows top to bottom: what the network saw,
 *   rounded to whole levels),
 *   preprocess {inverted, background, box [x, y, w, h], scale,
 *   offset [x, y], stroke} when it ran,
 *   naive {input, prediction, probability, log_probabilities} with
 *   DN_EXPLAIN_NAIVE,
 *   maps [{name, layer, shape [c, h, w], min, max, values}] with
 *   DN_EXPLAIN_MAPS (values flat in (c, h, w) order, 4 significant digits),
 *   saliency {class, patch, stride, min, max, values (784)} with
 *   DN_EXPLAIN_SALIENCY,
 *   timing_us {decode, preprocess, forward, maps, saliency, total}.
 * Keys in that order; numbers finite. Returns a malloc'd NUL-terminated
 * string, or NULL (DN_ERR_NOMEM) when out of memory. */
char *dn_explanation_json(const dn_explanation *e, dn_error *err);

/* The model as the JSON object that `digitnet serve` answers to GET
 * /api/model, so that every back-end of the page describes a model alike:
 *   file (as given; "" for NULL), spec, dataset, input [c, h, w], classes,
 *   class_names, parameters, macs (per image), mean, std,
 *   layers [{name, spec, input, output, parameters, macs}],
 *   stages [{name, layer (null for the input), shape}] (dn_model_stages),
 *   test {accuracy, standard_error, images} from test_correct right of
 *   test_n images (dn_accuracy), or null when test_n is 0,
 *   provenance (may be NULL: null).
 * Keys in that order. Returns a malloc'd NUL-terminated string, or NULL
 * (DN_ERR_NOMEM). */
char *dn_model_json(const dn_model *m, const char *file, size_t test_correct,
                    size_t test_n, const char *provenance, dn_error *err);

/* Image index of ds (28 x 28) as the JSON object that `digitnet serve`
 * answers to GET /api/sample: dataset, index, count (images in ds),
 * label, class (its name), pixels (784 integers 0..255, rows top to
 * bottom). Keys in that order. Returns a malloc'd NUL-terminated string,
 * or NULL (DN_ERR_ARG for an index out of range, DN_ERR_NOMEM). */
char *dn_sample_json(const dn_dataset *ds, size_t index, dn_error *err);

#ifdef __cplusplus
}
#endif

#endif /* DIGITNET_EXPLAIN_H */
