/*
 * cmd_report.c - `digitnet report`: one HTML page on a trained model: the
 * training curves from its metrics file, the confusion matrix on the test
 * set, and the test digits it gets most wrong.
 *
 * The charts are inline SVG and the matrix an HTML table, so the page is
 * one file plus the pictures of the mistakes, and opens without a server.
 */
#include "inputs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: digitnet report [OPTIONS] --out DIR\n"
        "\n"
        "Writes DIR/index.html: the loss and accuracy per epoch from the metrics\n"
        "file that 'digitnet train' writes (one JSON object per epoch), the\n"
        "confusion matrix of the model on the test set as a heat map, and the\n"
        "test digits with the highest loss (the model's worst mistakes) as\n"
        "pictures with their true and predicted labels. Files are replaced\n"
        "atomically.\n"
        "\n"
        "options:\n"
        "  --out DIR            where to write index.html and the pictures (needed)\n"
        "  --model FILE         model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --metrics FILE       JSON lines per epoch (default: MODEL.metrics.jsonl\n"
        "                       when it exists; without one there are no curves)\n"
        "  --data DIR           dataset directory (default: $DIGITNET_DATA or\n"
        "                       " CLI_DEFAULT_DATA ")\n"
        "  --top N              how many of the worst test digits to show (24)\n"
        "  --limit N            evaluate only the first N test images (quick runs)\n"
        "  --threads N          threads for the evaluation (default: all cores)\n"
        "  -h, --help           this help\n"
        "\n"
        "examples:\n"
        "  digitnet report --model out/model.safetensors --out out/report\n"
        "  digitnet report --metrics run.jsonl --model run.safetensors --out r --top 48\n");
}

enum { O_MODEL = 256, O_DATA, O_METRICS, O_OUT, O_TOP, O_THREADS, O_LIMIT };

/* One epoch of the metrics file; NAN where a figure is missing or null. */
typedef struct epoch_row {
    double epoch, lr, train_loss, test_loss, test_acc, test_acc_se, seconds;
} epoch_row;

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int cmp_epoch(const void *a, const void *b)
{
    double x = ((const epoch_row *)a)->epoch, y = ((const epoch_row *)b)->epoch;
    return (x > y) - (x < y);
}

/* Reads the metrics file; a later line for the same epoch (a resumed run)
 * replaces an earlier one. Returns the number of rows, or -1 after
 * printing an error. *split gets the evaluation split's name. */
static int read_metrics(const char *path, epoch_row **rows, char *split, size_t split_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_fail("cannot read metrics file '%s': %s", path, strerror(errno));
        return -1;
    }
    epoch_row *v = NULL;
    int n = 0, cap = 0, line_no = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) != -1) {
        line_no++;
        size_t i = 0;
        while (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')
            i++;
        if (!line[i])
            continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!json_is_object(o) || !isfinite(num(o, "epoch"))) {
            cli_fail("%s:%d: not a metrics line (a JSON object with \"epoch\"): %s", path,
                     line_no, o ? "no epoch" : je.text);
            json_decref(o);
            free(line);
            free(v);
            fclose(f);
            return -1;
        }
        epoch_row r = {num(o, "epoch"),    num(o, "lr"),          num(o, "train_loss"),
                       num(o, "test_loss"), num(o, "test_acc"),   num(o, "test_acc_se"),
                       num(o, "seconds")};
        const char *sp = json_string_value(json_object_get(o, "split"));
        if (sp && strcmp(sp, "none"))
            snprintf(split, split_size, "%s", sp);
        json_decref(o);
        int j = 0;
        while (j < n && v[j].epoch != r.epoch)
            j++;
        if (j == n) {
            if (n == cap) {
                cap = cap ? 2 * cap : 32;
                epoch_row *nv = realloc(v, (size_t)cap * sizeof *nv);
                if (!nv) {
                    free(line);
                    free(v);
                    fclose(f);
                    cli_fail("out of memory reading %s", path);
                    return -1;
                }
                v = nv;
            }
            n++;
        }
        v[j] = r;
    }
    free(line);
    fclose(f);
    qsort(v, (size_t)n, sizeof *v, cmp_epoch);
    *rows = v;
    return n;
}

static void curves(dn_text *t, const epoch_row *r, int n, const char *split)
{
    double *x = malloc((size_t)n * 7 * sizeof *x);
    if (!x) {
        t->oom = 1;
        return;
    }
    double *trl = x + n, *tel = x + 2 * n, *acc = x + 3 * n, *se = x + 4 * n, *lr = x + 5 * n;
    double *sec = x + 6 * n;
    double total_s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = r[i].epoch;
        trl[i] = r[i].train_loss;
        tel[i] = r[i].test_loss;
        acc[i] = 100 * r[i].test_acc;
        se[i] = 100 * r[i].test_acc_se;
        lr[i] = r[i].lr;
        sec[i] = r[i].seconds;
        total_s += isfinite(sec[i]) ? sec[i] : 0;
    }
    char tl[64], al[64];
    snprintf(tl, sizeof tl, "%s loss", split);
    snprintf(al, sizeof al, "%s accuracy (%%), +-1 standard error", split);
    dn_series loss[2] = {{"train loss (mean over the epoch)", x, trl, NULL, n, 0x4C72B0},
                         {tl, x, tel, NULL, n, 0xE8772E}};
    dn_series accs = {al, x, acc, se, n, 0x2CA02C};
    dn_series lrs = {"learning rate", x, lr, NULL, n, 0x7F7F7F};
    dn_text_printf(t, "<h2>Training</h2>\n<p>%d epochs, %.0f s of training in all.", n, total_s);
    const epoch_row *last = &r[n - 1];
    if (isfinite(last->test_acc))
        dn_text_printf(t, " After epoch %.0f: %s accuracy <b>%.2f &plusmn; %.2f %%</b>, %s loss "
                          "%.4f.", last->epoch, split, 100 * last->test_acc,
                       100 * (isfinite(last->test_acc_se) ? last->test_acc_se : 0), split,
                       last->test_loss);
    dn_text_printf(t, "</p>\n<div class=\"charts\">\n");
    dn_svg_line_chart(t, loss, 2, "loss per epoch (negative log-likelihood)", "epoch",
                      "loss", 560, 320);
    dn_svg_line_chart(t, &accs, 1, "accuracy per epoch", "epoch", "accuracy (%)", 560, 320);
    dn_svg_line_chart(t, &lrs, 1, "learning rate", "epoch", "learning rate", 560, 220);
    dn_text_printf(t, "</div>\n");
    free(x);
}

/* Background for a share 0..1 of a row: white to dark blue. */
static uint32_t heat(double share)
{
    double s = sqrt(share < 0 ? 0 : share > 1 ? 1 : share); /* small errors stay visible */
    int r = (int)lround(255 - s * (255 - 8)), g = (int)lround(255 - s * (255 - 48));
    int b = (int)lround(255 - s * (255 - 107));
    return (uint32_t)(r << 16 | g << 8 | b);
}

static void confusion(dn_text *t, const dn_model *m, const size_t *cm, int k, size_t n)
{
    char label[64];
    size_t right = 0;
    for (int i = 0; i < k; i++)
        right += cm[i * k + i];
    dn_text_printf(t, "<h2>Confusion matrix</h2>\n<p>%zu test images, %zu right (%.2f %%). Row: "
                      "the true class; column: the predicted class; each cell the count, "
                      "shaded by its share of the row. Recall is the row's diagonal share, "
                      "precision the column's.</p>\n<table class=\"cm\">\n<tr><th>true \\ "
                      "predicted</th>",
                   n, right, n ? 100.0 * right / n : 0.0);
    for (int j = 0; j < k; j++) {
        dn_text_printf(t, "<th>");
        dn_text_html(t, cli_class_label(m, j, label, sizeof label));
        dn_text_printf(t, "</th>");
    }
    dn_text_printf(t, "<th>recall</th></tr>\n");
    for (int i = 0; i < k; i++) {
        size_t row = 0;
        for (int j = 0; j < k; j++)
            row += cm[i * k + j];
        dn_text_printf(t, "<tr><th>");
        dn_text_html(t, cli_class_label(m, i, label, sizeof label));
        dn_text_printf(t, "</th>");
        for (int j = 0; j < k; j++) {
            size_t c = cm[i * k + j];
            double share = row ? (double)c / row : 0;
            uint32_t bg = heat(share);
            dn_text_printf(t, "<td style=\"background:#%06X;color:%s\"%s>%zu</td>", (unsigned)bg,
                           share > 0.3 ? "#fff" : "#222", i == j ? " class=\"diag\"" : "", c);
        }
        dn_text_printf(t, "<td class=\"sum\">%.2f %%</td></tr>\n",
                       row ? 100.0 * cm[i * k + i] / row : 0.0);
    }
    dn_text_printf(t, "<tr><th>precision</th>");
    for (int j = 0; j < k; j++) {
        size_t col = 0;
        for (int i = 0; i < k; i++)
            col += cm[i * k + j];
        dn_text_printf(t, "<td class=\"sum\">%.1f %%</td>", col ? 100.0 * cm[j * k + j] / col : 0.0);
    }
    dn_text_printf(t, "<td></td></tr>\n</table>\n");
}

typedef struct miss {
    size_t i;
    float loss;
} miss;

static int cmp_miss(const void *a, const void *b)
{
    const miss *x = a, *y = b;
    if (x->loss != y->loss)
        return x->loss < y->loss ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

static const char *style_css =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#f6f6f6;max-width:1240px}\n"
    "h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.15em;margin:22px 0 6px}\n"
    ".charts svg{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 12px 12px 0;"
    "vertical-align:top}\n"
    "table.cm{border-collapse:collapse;background:#fff;font-size:.95em}\n"
    "table.cm th,table.cm td{border:1px solid #ddd;padding:4px 8px;text-align:right;"
    "min-width:38px}\n"
    "table.cm td.diag{font-weight:bold;outline:2px solid #333;outline-offset:-2px}\n"
    "table.cm td.sum{background:#f0f0f0;color:#222}\n"
    ".miss{display:inline-block;background:#fff;border:1px solid #ddd;border-radius:6px;"
    "margin:0 8px 8px 0;padding:6px;text-align:center;font-size:.85em;width:132px}\n"
    ".miss img{display:block;margin:0 auto 4px;image-rendering:pixelated}\n"
    ".miss b{color:#B2182B}\n";

int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"data", required_argument, NULL, O_DATA},
        {"metrics", required_argument, NULL, O_METRICS},
        {"out", required_argument, NULL, O_OUT},
        {"top", required_argument, NULL, O_TOP},
        {"threads", required_argument, NULL, O_THREADS},
        {"limit", required_argument, NULL, O_LIMIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_arg = NULL, *data_arg = NULL, *metrics = NULL, *out = NULL;
    long top = 24, threads = 0, limit = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_arg = optarg; break;
        case O_DATA: data_arg = optarg; break;
        case O_METRICS: metrics = optarg; break;
        case O_OUT: out = optarg; break;
        case O_TOP:
            if (cli_parse_long(optarg, 0, 1000, &top) != 0)
                return cli_usage("report", "--top wants a number from 0 to 1000, not '%s'",
                                 optarg);
            break;
        case O_THREADS:
            if (cli_parse_long(optarg, 0, 256, &threads) != 0)
                return cli_usage("report", "--threads wants a number from 0 to 256, not '%s'",
                                 optarg);
            break;
        case O_LIMIT:
            if (cli_parse_long(optarg, 1, 100000000, &limit) != 0)
                return cli_usage("report", "--limit wants a number >= 1, not '%s'", optarg);
            break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage("report", "%s needs a value", argv[optind - 1]);
        default: return cli_usage("report", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("report", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_usage("report", "--out DIR is needed");

    const char *model_path = cli_model_path(model_arg);
    char default_metrics[4096];
    if (!metrics) {
        struct stat st;
        snprintf(default_metrics, sizeof default_metrics, "%s.metrics.jsonl", model_path);
        if (stat(default_metrics, &st) == 0)
            metrics = default_metrics;
    }
    epoch_row *rows = NULL;
    char split[16] = "test";
    int n_rows = 0;
    if (metrics && (n_rows = read_metrics(metrics, &rows, split, sizeof split)) < 0)
        return CLI_EXIT_FAIL;

    dn_model *m = cli_load_model(model_arg);
    if (!m) {
        free(rows);
        return CLI_EXIT_FAIL;
    }
    int status = 0, k = dn_model_classes(m);
    dn_error err = {0};
    dn_dataset ds;
    memset(&ds, 0, sizeof ds);
    float *lp = NULL;
    size_t *cm = NULL;
    miss *misses = NULL;
    dn_text t = {0};
    if ((status = cli_load_test_set(m, data_arg, &ds)) != 0)
        goto done;
    size_t n_eval = limit > 0 && (size_t)limit < ds.n ? (size_t)limit : ds.n;
    if ((status = cli_make_out_dir(out)) != 0)
        goto done;
    lp = malloc(n_eval * (size_t)k * sizeof *lp); /* (n, classes) */
    cm = calloc((size_t)k * (size_t)k, sizeof *cm);
    misses = malloc(n_eval * sizeof *misses);
    if (!lp || !cm || !misses) {
        status = cli_fail("out of memory for %zu test images", n_eval);
        goto done;
    }
    double loss = 0;
    size_t correct = 0;
    if (dn_evaluate(m, &ds, 0, n_eval, (int)threads, 250, lp, &loss, &correct, &err) != DN_OK) {
        status = cli_fail_err(&err);
        goto done;
    }
    size_t n_miss = 0;
    for (size_t i = 0; i < n_eval; i++) {
        int p = cli_argmax(lp + i * (size_t)k, k), y = ds.labels[i];
        if (y < k)
            cm[y * k + p]++;
        if (p != y)
            misses[n_miss++] = (miss){i, -lp[i * (size_t)k + (y < k ? y : 0)]};
    }
    qsort(misses, n_miss, sizeof *misses, cmp_miss);

    dn_text_printf(&t, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<title>digitnet report: ");
    dn_text_html(&t, model_path);
    dn_text_printf(&t, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>digitnet report: ",
                   style_css);
    dn_text_html(&t, model_path);
    dn_text_printf(&t, "</h1>\n<p>Model <code>");
    dn_text_html(&t, m->spec);
    char set[96];
    if (n_eval < ds.n)
        snprintf(set, sizeof set, "the first %zu of %zu test images", n_eval, ds.n);
    else
        snprintf(set, sizeof set, "%zu test images", n_eval);
    dn_text_printf(&t, "</code>, %zu parameters, %s. On %s: accuracy <b>%.2f &plusmn; %.2f "
                       "%%</b>, mean loss %.4f.</p>\n",
                   m->n_params, m->dataset, set, 100.0 * correct / n_eval,
                   100.0 * sqrt((double)correct / n_eval * (1 - (double)correct / n_eval) /
                                n_eval),
                   loss);
    if (n_rows > 0) {
        curves(&t, rows, n_rows, split);
    } else {
        dn_text_printf(&t, "<h2>Training</h2>\n<p>No training curves: ");
        if (metrics)
            dn_text_printf(&t, "the metrics file <code>");
        else
            dn_text_printf(&t, "no metrics file was given and <code>");
        dn_text_html(&t, metrics ? metrics : default_metrics);
        dn_text_printf(&t, "</code> %s.</p>\n", metrics ? "has no epochs" : "does not exist");
    }
    confusion(&t, m, cm, k, n_eval);

    size_t shown = n_miss < (size_t)top ? n_miss : (size_t)top;
    dn_text_printf(&t, "<h2>The %zu worst mistakes</h2>\n<p>%zu of %zu test images are "
                       "classified wrong. These have the highest loss, &minus;log p(true "
                       "class): the model was most sure of a wrong answer. Each is the 28x28 "
                       "image shown 4x.</p>\n<div>\n",
                   shown, n_miss, n_eval);
    for (size_t r = 0; r < shown && !status; r++) {
        size_t i = misses[r].i;
        const float *l = lp + i * (size_t)k;
        int p = cli_argmax(l, k), y = ds.labels[i];
        char file[64], path[4096], tl[64], pl[64];
        snprintf(file, sizeof file, "wrong-%02zu.png", r + 1);
        snprintf(path, sizeof path, "%s/%s", out, file);
        float px[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
        for (int q = 0; q < DN_IMAGE_SIDE * DN_IMAGE_SIDE; q++)
            px[q] = ds.images[i * DN_IMAGE_SIDE * DN_IMAGE_SIDE + (size_t)q] / 255.0f;
        dn_grid g = dn_grid_layout(1, DN_IMAGE_SIDE, DN_IMAGE_SIDE, 1, 4, 0);
        dn_canvas cv;
        if (dn_grid_draw(&g, px, 0, 1, DN_CMAP_GREY, &cv, &err) != DN_OK ||
            dn_canvas_write_png(&cv, path, &err) != DN_OK)
            status = cli_fail_err(&err);
        dn_canvas_free(&cv);
        dn_text_printf(&t, "<div class=\"miss\"><img src=\"%s\" width=\"%d\" height=\"%d\" "
                           "alt=\"test image %zu\">#%zu: true ", file, g.width, g.height, i, i);
        dn_text_html(&t, cli_class_label(m, y, tl, sizeof tl));
        dn_text_printf(&t, "<br>predicted <b>");
        dn_text_html(&t, cli_class_label(m, p, pl, sizeof pl));
        dn_text_printf(&t, "</b><br>p %.1f&nbsp;%%, loss %.2f</div>\n",
                       100.0 * exp((double)l[p]), misses[r].loss);
    }
    dn_text_printf(&t, "</div>\n</body>\n</html>\n");
    if (!status) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.html", out);
        if (t.oom)
            status = cli_fail("out of memory writing %s", path);
        else if (dn_file_write_atomic(path, t.s, t.len, &err) != DN_OK)
            status = cli_fail_err(&err);
        else
            printf("wrote %s (test accuracy %.2f %%, %zu mistakes, %zu shown)\n", path,
                   100.0 * correct / n_eval, n_miss, shown);
    }
done:
    dn_text_free(&t);
    free(misses);
    free(cm);
    free(lp);
    free(rows);
    dn_dataset_free(&ds);
    dn_model_free(m);
    return status;
}
