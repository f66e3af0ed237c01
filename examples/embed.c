/*
 * embed.c - digitnet inside your own C program: load a model file, run one
 * MNIST test image through it, print the log-probability of each class.
 *
 *   make build/examples/embed && build/examples/embed [MODEL] [DATA_DIR]
 */
#include <digitnet.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    dn_error err = {0};
    dn_model *m = dn_model_load(argc > 1 ? argv[1] : "out/model.safetensors", NULL, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    dn_dataset test;
    if (dn_dataset_load(&test, argc > 2 ? argv[2] : "data/mnist", "test", "mnist", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    float x[DN_IMAGE_SIDE * DN_IMAGE_SIDE]; /* (1, 1, 28, 28) normalised */
    dn_dataset_image(&test, 0, x);
    dn_work *w = dn_work_new(m, 1);        /* buffers for batches of 1 */
    const float *logp = w ? dn_model_forward(m, w, x, 1, DN_MODE_INFER, NULL) : NULL;
    if (!logp) {
        fprintf(stderr, "the model does not take a 1x28x28 image\n");
        return 1;
    }
    for (int k = 0; k < 10; k++)
        printf("%d: %.4f\n", k, logp[k]);
    dn_work_free(w);
    dn_dataset_free(&test);
    dn_model_free(m);
    return 0;
}
