/*
 * inputs.h - what predict, show and report share: the model with a hint
 * when there is none, and inputs (image files, directories of them, MNIST
 * test images) turned into the 28 x 28 the network sees.
 */
#ifndef DN_CLI_INPUTS_H
#define DN_CLI_INPUTS_H

#include "cli.h"
#include "files.h"

/* Loads the model at cli_model_path(explicit_path). On failure prints one
 * error line (with a hint to run `digitnet train` when the file does not
 * exist) and returns NULL. Refuses models whose input is not 1x28x28. */
dn_model *cli_load_model(const char *explicit_path);

/* Loads the test split of the model's dataset, from
 * cli_data_dir(m->dataset, data_arg), into ds. Returns 0, or prints the
 * library's error and returns CLI_EXIT_FAIL (ds then holds nothing to free,
 * and dn_dataset_free on it is harmless). */
int cli_load_test_set(const dn_model *m, const char *data_arg, dn_dataset *ds);

/* Whether image files are to be taken as they are rather than given the
 * MNIST digit preprocessing: with --raw (raw set), or always for a model of
 * another dataset than mnist, since that preprocessing is for digits. */
int cli_images_raw(const dn_model *m, int raw);

typedef struct cli_input {
    char name[512];         /* the file, or "mnist test #N" */
    long index;             /* MNIST test index, or -1 */
    int label;              /* true class, or -1 if unknown */
    int prepped;            /* prep holds what preprocessing found */
    dn_prep_info prep;
    float raw[DN_IMAGE_SIDE * DN_IMAGE_SIDE]; /* (28, 28) 0..1, ink 1 */
} cli_input;

/* Decodes path and preprocesses it (MNIST-style, or only resized when raw
 * is set). Returns DN_OK or fills err. */
dn_status cli_input_image(cli_input *in, const char *path, int raw, dn_error *err);
/* Test image `index` of ds. Returns DN_OK or fills err (out of range). */
dn_status cli_input_mnist(cli_input *in, const dn_dataset *ds, long index, dn_error *err);

/* Runs the model on one input (normalised with the model's mean and std)
 * and returns its log-probabilities (classes values in w), or NULL. */
const float *cli_forward_one(const dn_model *m, dn_work *w, const cli_input *in);

#endif
