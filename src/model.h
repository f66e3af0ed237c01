/*
 * model.h - what src/model.c and src/spec.c share; not public.
 */
#ifndef DN_MODEL_H
#define DN_MODEL_H

#include "digitnet.h"

/* Parses spec (NULL means DN_DEFAULT_SPEC) for inputs of shape `input` and
 * fills m's layers, n_layers, input, spec (canonical text), parameter
 * offsets, n_params and macs; m->params is left alone. On a bad spec
 * returns DN_ERR_ARG or DN_ERR_SHAPE with a message that names the layer
 * (1-based index and text) and the shapes. */
dn_status dn_spec_build(dn_model *m, const char *spec, dn_shape input,
                        dn_error *err);

/* The fast kernels' plan of a work (NULL when they were not built), for
 * tests and benchmarks that pick an instruction set or dense mode. */
typedef struct dn_fast_plan dn_fast_plan;
dn_fast_plan *dn_work_fast(dn_work *w);

/* The largest batch w takes (its max_batch), for library code that runs
 * several passes in batches of it (src/explain.c). */
int dn_work_max_batch(const dn_work *w);

/* Largest per-sample tensor a model may hold (elements), so that every
 * index inside a plane or a sample fits comfortably in an int. */
#define DN_MAX_TENSOR ((int64_t)1 << 26)

#endif
