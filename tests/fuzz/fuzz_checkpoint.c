/*
 * fuzz_checkpoint.c - a training checkpoint as `digitnet train --resume`
 * reads it: dn_model_load with extras, dn_train_config_from_checkpoint
 * (the recipe), then dn_train with the checkpoint, which restores the
 * optimizer state and the position and trains what is left of one more
 * epoch on a tiny in-memory dataset.
 *
 * The seeds are checkpoints of "maxpool 28, flatten, fc 10, logsoftmax"
 * (20 parameters) trained on 8 images, so that a resumed epoch takes
 * microseconds. Whatever the bytes, a refusal is one line; a bad value in
 * the recipe is a bad file (DN_ERR_FORMAT), and a recipe that was
 * accepted must not be refused by dn_train as a usage error (DN_ERR_ARG),
 * which would blame the user for the file.
 */
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

#define N_IMAGES 16

static dn_dataset tiny;

static const dn_dataset *tiny_set(void)
{
    static uint8_t images[N_IMAGES * 28 * 28], labels[N_IMAGES];
    if (!tiny.n) {
        for (size_t i = 0; i < sizeof images; i++)
            images[i] = (uint8_t)(i * 37 % 251);
        for (int i = 0; i < N_IMAGES; i++)
            labels[i] = (uint8_t)(i % 10);
        tiny.images = images;
        tiny.labels = labels;
        tiny.n = N_IMAGES;
        tiny.rows = tiny.cols = 28;
        tiny.mean = DN_MNIST_MEAN;
        tiny.std = DN_MNIST_STD;
        snprintf(tiny.name, sizeof tiny.name, "mnist");
        tiny.class_names = dn_class_names("mnist");
    }
    return &tiny;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("checkpoint.safetensors", data, size);
    dn_error err = {0};
    dn_file_extras x;
    dn_model *m = dn_model_load(path, &x, &err);
    if (!m) {
        fuzz_check_error(err.status, &err, path);
        return 0;
    }
    dn_train_config cfg;
    dn_train_defaults(&cfg);
    int done = 0;
    dn_status st = dn_train_config_from_checkpoint(&x, &cfg, &done, &err);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, NULL);
        if (st != DN_ERR_FORMAT)
            fuzz_fail("a bad checkpoint refused as %d, not as a bad file: %s", (int)st, err.msg);
    } else if (m->n_params <= 4096 && cfg.batch <= 64 && (cfg.limit ? cfg.limit : N_IMAGES) <= 64) {
        /* Resume for the rest of one more epoch, writing nothing. */
        cfg.epochs = done + 1;
        cfg.threads = 1;
        cfg.checkpoint = NULL;
        cfg.progress = NULL;
        st = dn_train(m, tiny_set(), NULL, &cfg, &x, &err);
        if (st != DN_OK) {
            fuzz_check_error(st, &err, NULL);
            /* The one usage error left: the data does not fit the
             * checkpoint ("trained on N images, this run has M"). */
            if (st == DN_ERR_ARG && !strstr(err.msg, " images"))
                fuzz_fail("an accepted checkpoint refused as a usage error: %s", err.msg);
        }
    }
    dn_file_extras_free(&x);
    dn_model_free(m);
    return 0;
}
