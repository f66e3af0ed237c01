/*
 * cmd_shapes.c - `digitnet shapes`: the dimensionality table the lecture
 * walks through, one row per layer with its output shape, parameter count
 * and multiply-accumulates, for the default model or any --arch spec.
 */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: digitnet shapes [--arch SPEC] [--input CxHxW]\n"
            "\n"
            "Prints each layer of the network with its output shape, its number of\n"
            "parameters and its multiply-accumulates per image, then the totals.\n"
            "A spec whose shapes do not fit is refused, naming the layer.\n"
            "\n"
            "options:\n"
            "  -a, --arch SPEC     layers, comma-separated (default: the lecture's CNN)\n"
            "                      conv O [kK] [pP] [sS], relu, maxpool N | maxpool kK [sS] [pP],\n"
            "                      dropout2d [P], flatten, fc N, logsoftmax\n"
            "  -i, --input CxHxW   input shape (default 1x28x28)\n"
            "  -h, --help          this help\n"
            "\n"
            "default spec:\n"
            "  %s\n"
            "\n"
            "examples:\n"
            "  digitnet shapes\n"
            "  digitnet shapes --arch 'conv 32 k3 p1, relu, maxpool 2, flatten, fc 10, logsoftmax'\n"
            "  digitnet shapes --input 1x32x32\n",
            DN_DEFAULT_SPEC);
}

/* --input "CxHxW" with each part in 1..65535; target is a dn_shape. */
static int parse_shape(const char *cmd, const char *value, void *target)
{
    long v[3];
    const char *s = value;
    for (int i = 0; i < 3; i++) {
        const char *end = i < 2 ? strchr(s, 'x') : s + strlen(s);
        char part[16];
        if (!end || end == s || (size_t)(end - s) >= sizeof part)
            return cli_usage(cmd, "bad --input '%s', expected CxHxW such as 1x28x28", value);
        memcpy(part, s, (size_t)(end - s));
        part[end - s] = 0;
        if (cli_parse_long(part, 1, 65535, &v[i]) < 0)
            return cli_usage(cmd, "bad --input '%s', expected CxHxW such as 1x28x28", value);
        s = end + (i < 2);
    }
    *(dn_shape *)target = (dn_shape){(int)v[0], (int)v[1], (int)v[2]};
    return 0;
}

/* 1234567 -> "1,234,567". */
static const char *thousands(char *buf, size_t size, long long v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t j = 0;
    if (v < 0 && j + 1 < size)
        buf[j++] = '-';
    for (int i = 0; i < n && j + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = 0;
    return buf;
}

/* The spec text of layer l inside the canonical spec (items are separated
 * by ", "). */
static void layer_text(const dn_model *m, int l, char *buf, size_t size)
{
    const char *p = m->spec;
    for (int i = 0; i < l && p; i++) {
        p = strchr(p, ',');
        if (p)
            p += 2;
    }
    if (!p) {
        buf[0] = 0;
        return;
    }
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), p);
}

static void print_shapes(const dn_model *m)
{
    dn_shape input = m->input;
    printf("input %dx%dx%d, %d layers: %s\n\n", input.c, input.h, input.w, m->n_layers,
           m->spec);
    printf("%3s  %-11s %-20s %-10s %10s %12s\n", "#", "layer", "spec", "output", "params",
           "MACs");
    char shape[48], text[128], n1[32], n2[32];
    snprintf(shape, sizeof shape, "%dx%dx%d", input.c, input.h, input.w);
    printf("%3s  %-11s %-20s %s\n", "", "input", "", shape);
    long long total_params = 0, total_macs = 0;
    int flat = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        flat |= L->kind == DN_FLATTEN || L->kind == DN_FC;
        if (flat)
            snprintf(shape, sizeof shape, "%d", L->out.c * L->out.h * L->out.w);
        else
            snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        layer_text(m, l, text, sizeof text);
        long long params = (long long)(L->w_len + L->b_len);
        total_params += params;
        total_macs += L->macs;
        printf("%3d  %-11s %-20s %-10s %10s %12s\n", l + 1, L->name, text, shape,
               thousands(n1, sizeof n1, params), thousands(n2, sizeof n2, L->macs));
    }
    printf("\n%3s  %-11s %-20s %-10s %10s %12s\n", "", "total", "", "",
           thousands(n1, sizeof n1, total_params), thousands(n2, sizeof n2, total_macs));
    printf("\n%s parameters (%s bytes as float32); %s multiply-accumulates per image\n",
           thousands(n1, sizeof n1, total_params),
           thousands(text, sizeof text, total_params * 4), thousands(n2, sizeof n2, total_macs));
}

int cmd_shapes(int argc, char **argv)
{
    const char *arch = NULL;
    dn_shape input = DN_INPUT_SHAPE;
    const cli_opt opts[] = {
        {.name = "arch", .short_name = 'a', .kind = CLI_STRING, .target = &arch},
        {.name = "input", .short_name = 'i', .kind = CLI_CUSTOM, .target = &input,
         .parse = parse_shape},
    };
    const cli_spec spec = {"shapes", usage, opts, CLI_N(opts), 0};
    int next, rc = cli_parse(&spec, argc, argv, &next, NULL);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    dn_error err = {0};
    dn_model *m = dn_model_new(arch, input, 0, &err);
    if (!m)
        return cli_usage("shapes", "%s", err.msg);
    print_shapes(m);
    dn_model_free(m);
    return 0;
}
