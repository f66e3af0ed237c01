/*
 * fuzz_spec.c - the model spec parser (dn_spec_build) and dn_model_new.
 *
 * Three bytes give the input shape (1..4 channels, 1..256 rows and
 * columns), the rest is the spec text. A spec that builds must give a
 * canonical text that builds again to the same layers; a small one must
 * also make a model (parameters allocated and initialised). A bad spec is
 * one line naming the problem.
 */
#include "fuzz.h"
#include "model.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    dn_shape in = {1 + data[0] % 4, 1 + data[1], 1 + data[2]};
    char *spec = malloc(size - 3 + 1);
    if (!spec)
        return 0;
    memcpy(spec, data + 3, size - 3);
    spec[size - 3] = 0;

    static dn_model a, b;
    dn_error err = {0};
    dn_status st = dn_spec_build(&a, spec, in, &err);
    if (st != DN_OK) {
        fuzz_check_error(st, &err, NULL);
        free(spec);
        return 0;
    }
    st = dn_spec_build(&b, a.spec, in, &err);
    if (st != DN_OK)
        fuzz_fail("the canonical spec '%s' of '%s' does not build: %s", a.spec, spec, err.msg);
    if (strcmp(a.spec, b.spec) || a.n_layers != b.n_layers || a.n_params != b.n_params ||
        memcmp(a.layers, b.layers, sizeof a.layers))
        fuzz_fail("the canonical spec '%s' builds another model than '%s'", a.spec, spec);
    dn_error cerr = {0};
    if (dn_model_check_classifier(&a, 10, &cerr) != DN_OK)
        fuzz_check_error(cerr.status, &cerr, NULL);
    if (a.n_params <= 100000) {
        dn_model *m = dn_model_new(spec, in, 7, &err);
        if (!m)
            fuzz_fail("dn_model_new refuses '%s', which builds: %s", spec, err.msg);
        if (strcmp(m->spec, a.spec) || m->n_params != a.n_params)
            fuzz_fail("dn_model_new and dn_spec_build disagree on '%s'", spec);
        dn_model_free(m);
    }
    free(spec);
    return 0;
}
