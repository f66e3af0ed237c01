/*
 * presets.c - named training recipes as library data, so that the command
 * (`digitnet train --preset NAME`), the benchmarks and any program using
 * the library reproduce the same runs. Adding a recipe is one entry in
 * `presets` below: dn_train_preset, the command's help and its error
 * messages all read the table.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void dn_train_defaults(dn_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 14;
    c->batch = 64;
    c->seed = 1;
    c->threads = 0;
    dn_optim_defaults(&c->optim, DN_OPTIM_ADADELTA);
    dn_sched_defaults(&c->sched, DN_SCHED_STEP);
}

/* PyTorch's MNIST example, which the lecture trains with: the defaults. */
static void preset_lecture(dn_train_config *c)
{
    (void)c;
}

/* For the lecture's architecture (the same spec, so the same model file
 * layout): augmentation, Adam with a one-cycle schedule peaking at 5e-3,
 * 40 epochs. Chosen on a 10 000-image validation split (the last 10 000
 * training images; the test set was not used):
 *   adam  one-cycle 5e-3, 40 epochs   val loss 0.0313  acc 99.11 % (seed 2:
 *                                     0.0331, 99.07 %)
 *   adam  cosine 3e-3, 40 epochs      0.0313  99.11 %
 *   adamw one-cycle 5e-3, 60 epochs   0.0321  99.11 %
 *   adadelta gamma 0.9, 30 epochs     0.0413  98.92 %
 *   sgd nesterov 0.9 cosine, 40       0.0531  98.50 %
 *   the first without augmentation    0.0435  99.02 %
 * The heavy Dropout2d(0.5) on 8 and 16 channels makes this small net
 * underfit rather than overfit, so what helps is many varied steps at a
 * well-shaped learning rate. */
static void preset_best(dn_train_config *c)
{
    c->epochs = 40;
    c->batch = 64;
    c->augment = 1;
    dn_optim_defaults(&c->optim, DN_OPTIM_ADAM);
    c->optim.lr = 5e-3;
    dn_sched_defaults(&c->sched, DN_SCHED_ONECYCLE);
}

/* A wider network than the lecture's, trained as `best` is: two 3x3
 * convolutions of 32 and 64 channels, each with ReLU and 2x2 max-pooling,
 * one Dropout2d(0.25), fc 128. Chosen on the 10 000-image validation split
 * (--val 10000; the test set was not used), all with --augment and Adam
 * one-cycle 5e-3:
 *   this network, 15 epochs                       val loss 0.0275  acc 99.42 %
 *                                                 (99.45 % after epoch 13)
 *   conv 16 k3 + conv 32 k5, dropout2d 0.25 once,
 *   fc 128, 20 epochs (stopped after 17)          0.0314  99.27 % (99.34 %
 *                                                 after epoch 16)
 * 12 epochs, not 15, to stay near five minutes on the project's 2-core
 * machine (2,770 images/s there when it is not shared; 60 000 x 12 images).
 * On all 60 000 training images it reaches 99.48 +- 0.07 % test accuracy,
 * a hair under the 99.5 % aimed for (issue 11); 15 epochs would likely
 * pass it but take longer than five minutes. Tried since: a Dropout2d(0.25)
 * before the second convolution too (its input a quarter sparse, about 16 %
 * less work per image, so 15 epochs fit the same time): 99.46 +- 0.07 %
 * test after 15 epochs (99.48 % after 13), no better, so not taken. */
static void preset_wide(dn_train_config *c)
{
    c->epochs = 12;
    c->augment = 1;
    dn_optim_defaults(&c->optim, DN_OPTIM_ADAM);
    c->optim.lr = 5e-3;
    dn_sched_defaults(&c->sched, DN_SCHED_ONECYCLE);
}

#define WIDE_SPEC                                                            \
    "conv 32 k3 p1 s1, relu, maxpool 2, conv 64 k3 p1 s1, relu, maxpool 2, "  \
    "dropout2d 0.25, flatten, fc 128, relu, fc 10, logsoftmax"

/* The summaries are what `digitnet train --help` shows for each name. */
static const struct {
    const char *name;
    const char *summary;
    void (*apply)(dn_train_config *c); /* on top of dn_train_defaults */
    const char *spec;                  /* the network; NULL: the lecture's */
} presets[] = {
    {"lecture", "Adadelta lr 1.0, StepLR gamma 0.7, batch 64, 14 epochs (98.5 % test accuracy)",
     preset_lecture, NULL},
    {"best", "--augment, Adam lr 5e-3, one-cycle, 40 epochs (99.1 %)", preset_best, NULL},
    {"wide", "its own network (conv 32 k3 + conv 64 k3, fc 128), --augment, Adam lr 5e-3, "
             "one-cycle, 12 epochs (99.48 %)", preset_wide, WIDE_SPEC},
};

#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

const char *dn_train_preset_name(int i, const char **summary)
{
    if (i < 0 || i >= N_PRESETS)
        return NULL;
    if (summary)
        *summary = presets[i].summary;
    return presets[i].name;
}

const char *dn_train_preset_spec(const char *name)
{
    for (int i = 0; name && i < N_PRESETS; i++)
        if (!strcmp(name, presets[i].name))
            return presets[i].spec;
    return NULL;
}

dn_status dn_train_preset(const char *name, dn_train_config *c, dn_error *err)
{
    for (int i = 0; name && i < N_PRESETS; i++) {
        if (strcmp(name, presets[i].name) != 0)
            continue;
        dn_train_defaults(c);
        presets[i].apply(c);
        return DN_OK;
    }
    /* "lecture or best", "lecture, best or wide", ... */
    char choices[256] = "";
    for (int i = 0; i < N_PRESETS; i++) {
        size_t len = strlen(choices);
        snprintf(choices + len, sizeof choices - len, "%s%s",
                 i == 0 ? "" : i == N_PRESETS - 1 ? " or " : ", ", presets[i].name);
    }
    return dn_fail(err, DN_ERR_ARG, "unknown preset '%s', expected %s", name ? name : "(null)",
                   choices);
}
