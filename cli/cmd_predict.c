/*
 * cmd_predict.c - `digitnet predict`: the log-probability of each class for
 * image files, directories of them, or MNIST test images, printed as the
 * lecture shows them (two columns, the predicted class marked).
 */
#include "digitnet_picture.h"
#include "inputs.h"
#include "options.h"
#include "paths.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: digitnet predict [OPTIONS] INPUT...\n"
        "       digitnet predict [OPTIONS] --mnist-index N[,N...]\n"
        "\n"
        "Prints the log-probability of each class for every input, in two columns\n"
        "as in the lecture, marks the predicted class (bold and underlined on a\n"
        "terminal, a trailing '<' otherwise) and gives its probability. An INPUT is\n"
        "an image file (PNG, JPEG, BMP, GIF, PGM/PPM, TGA) or a directory of them\n"
        "(sorted by name). Photos and drawings are preprocessed as MNIST was made:\n"
        "ink found against the background, cropped, scaled to fit 20x20, centred\n"
        "by mass in 28x28.\n"
        "\n"
        "options:\n"
        "  --model FILE         model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --mnist-index N      MNIST test image N, with its true label; repeat the\n"
        "                       option or give a comma list (0,1,2); these come first\n"
        "  --data DIR           dataset directory for --mnist-index\n"
        "                       (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA ")\n"
        "  --raw                no preprocessing: the image already looks like MNIST\n"
        "                       (white digit on black, centred); resized to 28x28 if\n"
        "                       needed\n"
        "  --json               one JSON object per input and line\n"
        "  --save-input FILE    write the 28x28 the network sees as a PNG (with\n"
        "                       several inputs FILE-0.png, FILE-1.png, ...)\n"
        "  -h, --help           this help\n"
        "\n"
        "exit status: 0 all inputs classified, 1 an input or the model failed, or a\n"
        "write error, 2 usage error (also: --save-input naming the model or an input).\n"
        "\n"
        "examples:\n"
        "  digitnet predict --mnist-index 0,1,2\n"
        "  digitnet predict --model out/model.safetensors my-digit.png\n"
        "  digitnet predict --json photos/\n"
        "  digitnet predict --save-input seen.png my-digit.jpg\n");
}

/* The PNG name for input k of n: FILE itself for a single input. */
static void save_name(const char *base, size_t k, size_t n, char *out, size_t size)
{
    if (n == 1) {
        snprintf(out, size, "%s", base);
        return;
    }
    const char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
    if (dot && (!slash || dot > slash) && dot != base)
        snprintf(out, size, "%.*s-%zu%s", (int)(dot - base), base, k, dot);
    else
        snprintf(out, size, "%s-%zu.png", base, k);
}

/* The lecture's table for one input; a blank line first unless it is the
 * first. */
static void print_table(const dn_model *m, const cli_input *in, const float *lp, int k, int best,
                        int tty, int blank)
{
    char label[64], vals[64][24];
    int width = 0, lwidth = 0;
    for (int c = 0; c < k && c < 64; c++) {
        cli_fmt_logp(vals[c], sizeof vals[c], lp[c]);
        int n = (int)strlen(vals[c]);
        int l = (int)strlen(cli_class_label(m->dataset, c, label, sizeof label));
        width = n > width ? n : width;
        lwidth = l > lwidth ? l : lwidth;
    }
    if (blank)
        printf("\n");
    if (in->label >= 0)
        printf("%s (true label %s)\n", in->name,
               cli_class_label(m->dataset, in->label, label, sizeof label));
    else
        printf("%s\n", in->name);
    /* Column-major like the lecture: 0-4 on the left, 5-9 on the right. */
    int rows = (k + 1) / 2;
    for (int r = 0; r < rows; r++) {
        for (int col = 0; col < 2; col++) {
            int c = r + col * rows;
            if (c >= k || c >= 64)
                continue;
            cli_class_label(m->dataset, c, label, sizeof label);
            int pad = width - (int)strlen(vals[c]);
            /* Each cell keeps two columns for the mark so the right
             * column stays aligned: "2:   0.0000 <" or "2: -19.3736  ". */
            int last = col == 1 || r + rows >= k;
            printf("%s%-*s: %*s", col ? "  " : "", lwidth, label, pad, "");
            if (c == best && tty)
                printf("\033[1;4m%s\033[0m%s", vals[c], last ? "" : "  ");
            else
                printf("%s%s", vals[c], c == best ? " <" : last ? "" : "  ");
        }
        printf("\n");
    }
    double p = exp((double)lp[best]);
    printf("predicted %s (%.2f %%)", cli_class_label(m->dataset, best, label, sizeof label),
           100.0 * p);
    if (in->label >= 0)
        printf(", %s", in->label == best ? "right" : "wrong");
    printf("\n");
}

static void print_json(const dn_model *m, const cli_input *in, const float *lp, int k, int best)
{
    char label[64];
    json_t *o = json_object(), *arr = json_array();
    json_object_set_new(o, "input", json_string(in->name));
    if (in->index >= 0)
        json_object_set_new(o, "mnist_index", json_integer(in->index));
    if (in->label >= 0)
        json_object_set_new(o, "label", json_integer(in->label));
    for (int c = 0; c < k; c++)
        json_array_append_new(arr, json_real(lp[c]));
    json_object_set_new(o, "log_probs", arr);
    json_object_set_new(o, "predicted", json_integer(best));
    json_object_set_new(o, "class", json_string(cli_class_label(m->dataset, best, label, sizeof label)));
    json_object_set_new(o, "probability", json_real(exp((double)lp[best])));
    if (in->prepped) {
        json_t *pp = json_object();
        json_object_set_new(pp, "inverted", json_boolean(in->prep.inverted));
        json_object_set_new(pp, "box", json_pack("[iiii]", in->prep.box_x, in->prep.box_y,
                                                 in->prep.box_w, in->prep.box_h));
        json_object_set_new(pp, "scale", json_real(in->prep.scale));
        json_object_set_new(o, "preprocess", pp);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void print_json_error(const char *name, const char *msg)
{
    json_t *o = json_pack("{s:s,s:s}", "input", name, "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* What the command was asked. */
typedef struct predict_opts {
    const char *model, *data, *save;
    int raw, json;
    long *idx;              /* (n_idx) --mnist-index values */
    size_t n_idx;
} predict_opts;

/* --mnist-index N or N,N,...; may be given again. */
static int parse_indices(const char *cmd, const char *value, void *target)
{
    predict_opts *o = target;
    if (cli_parse_index_list(value, 9999999, &o->idx, &o->n_idx) != 0)
        return cli_usage(cmd, "--mnist-index wants N or a list N,N,... of numbers >= 0, not '%s'",
                         value);
    return 0;
}

static int parse(int argc, char **argv, predict_opts *o, int *next)
{
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&o->model),
        CLI_OPT_DATA(&o->data),
        {.name = "mnist-index", .kind = CLI_CUSTOM, .target = o, .parse = parse_indices,
         .flags = CLI_MULTI},
        CLI_OPT_RAW(&o->raw),
        CLI_OPT_JSON(&o->json),
        {.name = "save-input", .kind = CLI_STRING, .target = &o->save},
    };
    const cli_spec spec = {"predict", usage, opts, CLI_N(opts), 1};
    int rc = cli_parse(&spec, argc, argv, next, NULL);
    if (!rc && *next >= argc && o->n_idx == 0)
        return cli_usage("predict", "give an image, a directory or --mnist-index N");
    return rc;
}

/* Every file argument in order, a directory replaced by its images.
 * Returns 0, or CLI_EXIT_FAIL when an argument failed (after its error
 * line; the others are still listed). */
static int list_files(char **args, int n_args, char ***paths, size_t *n_paths)
{
    size_t cap = 0;
    int rc = 0;
    dn_error err = {0};
    for (int a = 0; a < n_args; a++) {
        struct stat st;
        char **list = NULL;
        size_t n = 0;
        if (stat(args[a], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (cli_list_images(args[a], &list, &n, &err) != DN_OK) {
                rc = cli_fail_err(&err);
                continue;
            }
        } else if ((list = malloc(sizeof *list)) && (list[0] = strdup(args[a]))) {
            n = 1;
        }
        if (*n_paths + n > cap) {
            cap = 2 * (*n_paths + n);
            char **np = realloc(*paths, cap * sizeof *np);
            if (!np) {
                cli_free_list(list, n);
                return cli_fail("out of memory");
            }
            *paths = np;
        }
        memcpy(*paths + *n_paths, list, n * sizeof *list);
        *n_paths += n;
        free(list);
    }
    return rc;
}

/* The pictures --save-input writes must not overwrite the model, an
 * input or each other. */
static int check_files(const predict_opts *o, const dn_model *m, char **paths, size_t n_paths)
{
    if (!o->save)
        return 0;
    cli_paths p = {0};
    char name[4096];
    size_t total = o->n_idx + n_paths;
    for (size_t i = 0; i < total; i++) {
        save_name(o->save, i, total, name, sizeof name);
        cli_paths_add(&p, 1, "--save-input", name);
    }
    cli_paths_add(&p, 0, "the model file", cli_model_path(o->model));
    for (size_t i = 0; i < n_paths; i++)
        cli_paths_add(&p, 0, "the input", paths[i]);
    if (o->n_idx)
        cli_paths_add_data(&p, cli_data_dir(m->dataset, o->data), "test");
    return cli_paths_check("predict", &p);
}

/* Writes the 28x28 the network sees for input i of total. */
static int save_input(const char *base, size_t i, size_t total, const cli_input *in)
{
    char path[4096];
    uint8_t px[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
    for (int p = 0; p < DN_IMAGE_SIDE * DN_IMAGE_SIDE; p++)
        px[p] = (uint8_t)lrintf(in->raw[p] * 255.0f);
    save_name(base, i, total, path, sizeof path);
    dn_error err = {0};
    if (dn_png_write(path, px, DN_IMAGE_SIDE, DN_IMAGE_SIDE, 1, &err) != DN_OK)
        return cli_fail_err(&err);
    return 0;
}

/* Each input in order (the MNIST indices, then the files): prepared, run
 * and printed. Returns 0, or CLI_EXIT_FAIL if any failed. */
static int predict_all(const predict_opts *o, const dn_model *m, const dn_dataset *ds,
                       char **paths, size_t n_paths)
{
    dn_work *w = dn_work_new(m, 1);
    if (!w)
        return cli_fail("out of memory for the model's workspace");
    int rc = 0, tty = !o->json && cli_stdout_is_tty(), as_raw = cli_images_raw(m, o->raw);
    size_t total = o->n_idx + n_paths, shown = 0;
    for (size_t i = 0; i < total; i++) {
        cli_input in;
        dn_error err = {0};
        dn_status st = i < o->n_idx ? cli_input_mnist(&in, ds, o->idx[i], &err)
                                    : cli_input_image(&in, paths[i - o->n_idx], as_raw, &err);
        if (st != DN_OK) {
            if (o->json)
                print_json_error(i < o->n_idx ? "mnist" : paths[i - o->n_idx], err.msg);
            fflush(stdout);
            rc = cli_fail_err(&err);
            continue;
        }
        if (o->save && save_input(o->save, i, total, &in) != 0)
            rc = CLI_EXIT_FAIL;
        const float *lp = cli_forward_one(m, w, &in);
        if (!lp) {
            rc = cli_fail("%s: the model's forward pass failed", in.name);
            continue;
        }
        int k = dn_model_classes(m), best = dn_argmax(lp, k);
        if (o->json)
            print_json(m, &in, lp, k, best);
        else
            print_table(m, &in, lp, k, best, tty, shown++ > 0);
        fflush(stdout);
    }
    dn_work_free(w);
    return rc;
}

int cmd_predict(int argc, char **argv)
{
    predict_opts o;
    memset(&o, 0, sizeof o);
    int next, rc = parse(argc, argv, &o, &next);
    dn_model *m = NULL;
    dn_dataset ds;
    memset(&ds, 0, sizeof ds);
    char **paths = NULL;
    size_t n_paths = 0;
    if (rc)
        goto done;
    if (!(m = cli_load_model(o.model)) ||
        (o.n_idx && cli_load_test_set(m, o.data, &ds) != 0)) {
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    rc = list_files(argv + next, argc - next, &paths, &n_paths);
    int refused = check_files(&o, m, paths, n_paths);
    if (refused) {
        rc = refused;
        goto done;
    }
    if (predict_all(&o, m, &ds, paths, n_paths) != 0)
        rc = CLI_EXIT_FAIL;
done:
    cli_free_list(paths, n_paths);
    free(o.idx);
    dn_dataset_free(&ds);
    dn_model_free(m);
    return rc == CLI_HELP ? 0 : rc;
}
