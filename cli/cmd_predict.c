/*
 * cmd_predict.c - `digitnet predict`: the log-probability of each class for
 * image files, directories of them, or MNIST test images, printed as the
 * lecture shows them (two columns, the predicted class marked).
 */
#include "inputs.h"

#include <getopt.h>
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
        "exit status: 0 all inputs classified, 1 an input or the model failed,\n"
        "2 usage error.\n"
        "\n"
        "examples:\n"
        "  digitnet predict --mnist-index 0,1,2\n"
        "  digitnet predict --model out/model.safetensors my-digit.png\n"
        "  digitnet predict --json photos/\n"
        "  digitnet predict --save-input seen.png my-digit.jpg\n");
}

enum { O_MODEL = 256, O_DATA, O_INDEX, O_RAW, O_JSON, O_SAVE };

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

/* "%.4f" without a minus sign on zero: the lecture prints 7: 0.0000. */
static void fmt_logp(char *buf, size_t size, float v)
{
    snprintf(buf, size, "%.4f", v);
    if (!strcmp(buf, "-0.0000"))
        snprintf(buf, size, "0.0000");
}

static void print_table(const dn_model *m, const cli_input *in, const float *lp, int k, int best,
                        int tty)
{
    char label[64], vals[64][24];
    int width = 0, lwidth = 0;
    for (int c = 0; c < k && c < 64; c++) {
        fmt_logp(vals[c], sizeof vals[c], lp[c]);
        int n = (int)strlen(vals[c]), l = (int)strlen(cli_class_label(m, c, label, sizeof label));
        width = n > width ? n : width;
        lwidth = l > lwidth ? l : lwidth;
    }
    if (in->label >= 0)
        printf("%s (true label %s)\n", in->name, cli_class_label(m, in->label, label, sizeof label));
    else
        printf("%s\n", in->name);
    /* Column-major like the lecture: 0-4 on the left, 5-9 on the right. */
    int rows = (k + 1) / 2;
    for (int r = 0; r < rows; r++) {
        for (int col = 0; col < 2; col++) {
            int c = r + col * rows;
            if (c >= k || c >= 64)
                continue;
            cli_class_label(m, c, label, sizeof label);
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
    printf("predicted %s (%.2f %%)", cli_class_label(m, best, label, sizeof label), 100.0 * p);
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
    json_object_set_new(o, "class", json_string(cli_class_label(m, best, label, sizeof label)));
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

int cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"data", required_argument, NULL, O_DATA},
        {"mnist-index", required_argument, NULL, O_INDEX},
        {"raw", no_argument, NULL, O_RAW},
        {"json", no_argument, NULL, O_JSON},
        {"save-input", required_argument, NULL, O_SAVE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_arg = NULL, *data_arg = NULL, *save = NULL;
    int raw = 0, json = 0, c;
    long *idx = NULL;
    size_t n_idx = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_arg = optarg; break;
        case O_DATA: data_arg = optarg; break;
        case O_INDEX:
            if (cli_parse_index_list(optarg, 9999999, &idx, &n_idx) != 0) {
                free(idx);
                return cli_usage("predict", "--mnist-index wants N or a list N,N,... of "
                                            "numbers >= 0, not '%s'", optarg);
            }
            break;
        case O_RAW: raw = 1; break;
        case O_JSON: json = 1; break;
        case O_SAVE: save = optarg; break;
        case 'h':
            free(idx);
            usage(stdout);
            return 0;
        case ':':
            free(idx);
            return cli_usage("predict", "%s needs a value", argv[optind - 1]);
        default:
            free(idx);
            return cli_usage("predict", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc && n_idx == 0) {
        free(idx);
        return cli_usage("predict", "give an image, a directory or --mnist-index N");
    }

    dn_model *m = cli_load_model(model_arg);
    if (!m) {
        free(idx);
        return CLI_EXIT_FAIL;
    }
    int as_raw = cli_images_raw(m, raw);
    dn_dataset ds;
    memset(&ds, 0, sizeof ds);
    dn_error err = {0};
    int status = 0;
    if (n_idx && cli_load_test_set(m, data_arg, &ds) != 0) {
        free(idx);
        dn_model_free(m);
        return CLI_EXIT_FAIL;
    }

    /* Every input in order: MNIST indices, then files and directories. */
    size_t n_paths = 0, cap = 0;
    char **paths = NULL;
    for (int a = optind; a < argc; a++) {
        struct stat st;
        char **list = NULL;
        size_t n = 0;
        if (stat(argv[a], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (cli_list_images(argv[a], &list, &n, &err) != DN_OK) {
                cli_fail_err(&err);
                status = CLI_EXIT_FAIL;
                continue;
            }
        } else {
            list = malloc(sizeof *list);
            if (list && (list[0] = strdup(argv[a])))
                n = 1;
        }
        if (n_paths + n > cap) {
            cap = 2 * (n_paths + n);
            char **np = realloc(paths, cap * sizeof *np);
            if (!np) {
                cli_free_list(list, n);
                status = cli_fail("out of memory");
                break;
            }
            paths = np;
        }
        memcpy(paths + n_paths, list, n * sizeof *list);
        n_paths += n;
        free(list);
    }

    dn_work *w = dn_work_new(m, 1);
    if (!w)
        status = cli_fail("out of memory for the model's workspace");
    int tty = !json && cli_stdout_is_tty();
    size_t total = n_idx + n_paths, shown = 0;
    for (size_t i = 0; w && i < total; i++) {
        cli_input in;
        dn_status st = i < n_idx ? cli_input_mnist(&in, &ds, idx[i], &err)
                                 : cli_input_image(&in, paths[i - n_idx], as_raw, &err);
        if (st != DN_OK) {
            if (json)
                print_json_error(i < n_idx ? "mnist" : paths[i - n_idx], err.msg);
            fflush(stdout);
            cli_fail_err(&err);
            status = CLI_EXIT_FAIL;
            continue;
        }
        if (save) {
            char path[4096];
            uint8_t px[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
            for (int p = 0; p < DN_IMAGE_SIDE * DN_IMAGE_SIDE; p++)
                px[p] = (uint8_t)lrintf(in.raw[p] * 255.0f);
            save_name(save, i, total, path, sizeof path);
            if (dn_png_write(path, px, DN_IMAGE_SIDE, DN_IMAGE_SIDE, 1, &err) != DN_OK) {
                cli_fail_err(&err);
                status = CLI_EXIT_FAIL;
            }
        }
        const float *lp = cli_forward_one(m, w, &in);
        if (!lp) {
            status = cli_fail("%s: the model's forward pass failed", in.name);
            continue;
        }
        int k = dn_model_classes(m), best = cli_argmax(lp, k);
        if (json) {
            print_json(m, &in, lp, k, best);
        } else {
            if (shown++)
                printf("\n");
            print_table(m, &in, lp, k, best, tty);
        }
        fflush(stdout);
    }
    dn_work_free(w);
    cli_free_list(paths, n_paths);
    free(idx);
    dn_dataset_free(&ds);
    dn_model_free(m);
    return status;
}
