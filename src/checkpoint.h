/*
 * checkpoint.h - what the trainer (src/train.c) writes into a model file to
 * continue a run exactly, and reads back (src/checkpoint.c). Internal to
 * libdigitnet.
 */
#ifndef DN_CHECKPOINT_H
#define DN_CHECKPOINT_H

#include "digitnet.h"

/* Where training stands; what a checkpoint records besides the weights and
 * the optimizer state. */
typedef struct dn_train_pos {
    int epoch;              /* epochs completed */
    long batch;             /* batches completed in epoch `epoch` */
    double loss_sum;        /* summed loss of those batches' images */
    double loss_count;      /* their number of images */
} dn_train_pos;

/* The recipe as one JSON object: everything that decides the arithmetic
 * (the total epoch count is kept apart, since a resume may extend it; the
 * thread count and the reference flag do not change the weights). Reals
 * have 17 significant digits, so they read back exactly. A malloc'd
 * string, or NULL if out of memory. */
char *dn_recipe_json(const dn_train_config *c);

/* The recipe's own limits (batch size, schedule, optimizer), whoever set
 * it: DN_ERR_ARG naming the first value out of range. dn_train checks them
 * as the caller's; dn_train_config_from_checkpoint as the file's. */
dn_status dn_recipe_check(const dn_train_config *c, dn_error *err);

/* Writes m to c->checkpoint (through c->save when set) with the optimizer
 * state as extra tensors and the position and recipe as metadata; x is
 * scratch space for the extras (its tensors point into o). */
dn_status dn_checkpoint_save(const dn_model *m, const dn_train_config *c, const char *recipe,
                             const dn_optim *o, const dn_train_pos *pos, size_t n_train,
                             dn_file_extras *x, dn_error *err);

/* Loads the optimizer state and the position a checkpoint's extras x
 * recorded into o and pos, checking that they belong to this recipe (the
 * JSON of dn_recipe_json), this many training images and batches per
 * epoch, and this optimizer's state sizes. */
dn_status dn_checkpoint_restore(const dn_file_extras *x, const char *recipe, dn_optim *o,
                                dn_train_pos *pos, size_t n_train, long batches,
                                dn_error *err);

#endif
