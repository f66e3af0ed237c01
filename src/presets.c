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

/* A wider network than the lecture's: two 3x3 convolutions of 32 and 48
 * channels, each with ReLU and 2x2 max-pooling, one Dropout2d(0.25),
 * fc 128; --augment, AdamW lr 2e-3 (decoupled weight decay 0.15),
 * one-cycle, 20 epochs. Chosen on the 10 000-image validation split
 * (--val 10000, the last 10 000 training images; the test set was not
 * used), all with --augment and one-cycle; "conv 64" is the network this
 * preset had before (conv 32 k3 + conv 64 k3, dropout2d 0.25, fc 128):
 *   first, on the AVX2 machine:
 *   conv 64, Adam 5e-3, 15 epochs             val loss 0.0275  acc 99.42 %
 *                                             (99.45 % after epoch 13)
 *   conv 16 k3 + conv 32 k5, dropout2d 0.25 once,
 *   fc 128, Adam 5e-3, 20 epochs (stopped after 17)  0.0314  99.27 %
 *   (99.34 % after epoch 16)
 *   then on the AVX-512 machine, 20 epochs unless said:
 *   conv 64, Adam 5e-3                               0.0261  99.45 %
 *   conv 32 + conv 32 + conv 64, each pooled, Adam 5e-3  0.0271  99.38 %
 *   conv 64, AdamW 5e-3 wd 0.05                      0.0194  99.49 %
 *   conv 64, Adam 2e-3                               0.0212  99.50 %
 *   conv 64, AdamW 5e-3 wd 0.15                      0.0178  99.50 %
 *   conv 64, AdamW 2e-3 wd 0.15                      0.0185  99.53 %
 *     the same, 16 epochs                            0.0195  99.44 %
 *   conv 64, AdamW 2e-3 wd 0.4                       0.0189  99.48 %
 *   conv 64 with a Dropout2d(0.25) before it too,
 *   AdamW 2e-3 wd 0.15                               0.0190  99.52 %
 *   conv 48, AdamW 2e-3 wd 0.15 (this)               0.0171  99.49 %
 *                                         (seed 2:   0.0189  99.45 %)
 *   conv 48, AdamW 5e-3 wd 0.15                      0.0187  99.50 %
 * Weight decay is what helps (val loss 0.026 -> 0.017-0.019); the runs
 * with it all end at 99.45-99.53 %, within a standard error (0.07) of
 * each other, and 16 epochs were worse than 20. Of those, 48 channels
 * had the lowest loss (seed 1) and is the cheapest: 3.24 M
 * multiply-accumulates an image against 4.24 M, so that 20 epochs take
 * 3 min 28 s at 2 threads on the project's 2-core AVX-512 machine when it
 * is not shared (10.4 s an epoch with the test evaluation, about 6,000
 * images/s); one run while another job held a core took 5 min 55 s. On
 * all 60 000 training images it reaches 99.59 +- 0.06 % test accuracy
 * (seed 1; seed 2, run afterwards as a check: 99.60 +- 0.06 %), past the
 * 99.5 % of issue 11. Measured by an earlier session
 * on the test set, not used here: conv 64 with a Dropout2d(0.25) before it
 * too, Adam 5e-3, 15 epochs, 99.46 +- 0.07 %. */
static void preset_wide(dn_train_config *c)
{
    c->epochs = 20;
    c->augment = 1;
    dn_optim_defaults(&c->optim, DN_OPTIM_ADAMW);
    c->optim.lr = 2e-3;
    c->optim.weight_decay = 0.15;
    dn_sched_defaults(&c->sched, DN_SCHED_ONECYCLE);
}

#define WIDE_SPEC                                                            \
    "conv 32 k3 p1 s1, relu, maxpool 2, conv 48 k3 p1 s1, relu, maxpool 2, "  \
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
    {"wide", "its own network (conv 32 k3 + conv 48 k3, fc 128), --augment, AdamW lr 2e-3 "
             "weight decay 0.15, one-cycle, 20 epochs (99.59 %)", preset_wide, WIDE_SPEC},
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
