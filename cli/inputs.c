/*
 * inputs.c - the model and the inputs of predict, show and report: image
 * files and MNIST test images turned into what the network sees.
 */
#include "inputs.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

dn_model *cli_load_model(const char *explicit_path)
{
    const char *path = cli_model_path(explicit_path);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        cli_fail("no model file '%s': train one with 'digitnet train' (it writes %s by "
                 "default), or give --model FILE or DIGITNET_MODEL",
                 path, CLI_DEFAULT_MODEL);
        return NULL;
    }
    dn_error err = {0};
    dn_model *m = dn_model_load(path, NULL, &err);
    if (!m) {
        cli_fail_err(&err);
        return NULL;
    }
    if (m->input.c != DN_INPUT_CHANNELS || m->input.h != DN_IMAGE_SIDE ||
        m->input.w != DN_IMAGE_SIDE) {
        cli_fail("%s: the model takes %dx%dx%d inputs; images are made 1x%dx%d", path,
                 m->input.c, m->input.h, m->input.w, DN_IMAGE_SIDE, DN_IMAGE_SIDE);
        dn_model_free(m);
        return NULL;
    }
    if (dn_model_check_classifier(m, 10, &err) != DN_OK) {
        cli_fail("%s: %s", path, err.msg);
        dn_model_free(m);
        return NULL;
    }
    return m;
}

int cli_load_test_set(const dn_model *m, const char *data_arg, dn_dataset *ds)
{
    dn_error err = {0};
    if (dn_dataset_load(ds, cli_data_dir(m->dataset, data_arg), "test", m->dataset, &err) !=
        DN_OK)
        return cli_fail_err(&err);
    return 0;
}

int cli_images_raw(const dn_model *m, int raw)
{
    return raw || strcmp(m->dataset, "mnist") != 0;
}

dn_status cli_input_image(cli_input *in, const char *path, int raw, dn_error *err)
{
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "%s", path);
    in->index = -1;
    in->label = -1;
    dn_image img;
    dn_status st = dn_image_load(path, &img, err);
    if (st != DN_OK)
        return st;
    if (raw) {
        st = dn_image_raw(&img, in->raw, err);
    } else {
        st = dn_image_preprocess(&img, in->raw, &in->prep, err);
        in->prepped = st == DN_OK;
    }
    dn_image_free(&img);
    return st;
}

dn_status cli_input_mnist(cli_input *in, const dn_dataset *ds, long index, dn_error *err)
{
    memset(in, 0, sizeof *in);
    if (index < 0 || (size_t)index >= ds->n)
        return cli_error(err, DN_ERR_ARG, "%s test image %ld does not exist (there are %zu: 0..%zu)",
                       ds->name, index, ds->n, ds->n ? ds->n - 1 : 0);
    if (ds->rows != DN_IMAGE_SIDE || ds->cols != DN_IMAGE_SIDE)
        return cli_error(err, DN_ERR_SHAPE, "%s images are %ux%u, expected %dx%d", ds->name,
                       ds->rows, ds->cols, DN_IMAGE_SIDE, DN_IMAGE_SIDE);
    snprintf(in->name, sizeof in->name, "%s test #%ld", ds->name, index);
    in->index = index;
    in->label = ds->labels[index];
    const uint8_t *px = ds->images + (size_t)index * DN_IMAGE_SIDE * DN_IMAGE_SIDE;
    for (int i = 0; i < DN_IMAGE_SIDE * DN_IMAGE_SIDE; i++)
        in->raw[i] = px[i] / 255.0f;
    return DN_OK;
}

const float *cli_forward_one(const dn_model *m, dn_work *w, const cli_input *in)
{
    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE]; /* (1, 1, 28, 28) */
    memcpy(x, in->raw, sizeof x);
    dn_image_normalize(x, sizeof x / sizeof x[0], m->mean, m->std);
    return dn_model_forward(m, w, x, 1, DN_MODE_INFER, NULL);
}
