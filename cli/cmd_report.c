/*
 * cmd_report.c - `digitnet report`: one HTML page on a trained model: the
 * training curves from its metrics file, the confusion matrix on the test
 * set, and the test digits it gets most wrong.
 *
 * The charts are inline SVG and the matrix an HTML table, so the page is
 * one file plus the pictures of the mistakes, and opens without a server.
 */
#include "inputs.h"
#include "metrics_file.h"
#include "options.h"
#include "page.h"
#include "paths.h"

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
        "  digitnet report --metrics run.jsonl --model run.safetensors --out r --top 48\n"
        "\n"
        "exit status: 0 written, 1 a missing or broken file or a write error\n"
        "(standard output included), 2 usage error (also: a page or picture that\n"
        "would overwrite the model, the metrics file or the test set)\n");
}

static void curves(dn_text *t, const cli_epoch_row *r, int n, const char *split)
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
    const cli_epoch_row *last = &r[n - 1];
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

/* What the command was asked. */
typedef struct report_opts {
    const char *model, *data, *metrics, *out;
    long top, threads, limit;
} report_opts;

/* A misclassified test image and its loss. */
typedef struct miss {
    size_t i;
    float loss;
} miss;

/* What the page shows. */
typedef struct report {
    const char *model_path;
    const char *metrics;        /* the metrics file read, or NULL */
    char default_metrics[4096]; /* MODEL.metrics.jsonl */
    cli_epoch_row *rows;        /* (n_rows) one per epoch */
    int n_rows;
    char split[16];             /* what the epochs were evaluated on */
    dn_model *m;
    dn_dataset ds;
    size_t n_eval;              /* the first n_eval test images */
    int k;                      /* classes */
    float *lp;                  /* (n_eval, k) log-probabilities */
    double loss, acc, se;
    size_t correct;
    size_t *cm;                 /* (k, k) confusion matrix */
    dn_class_scores *scores;    /* (k) */
    miss *misses;               /* (n_miss) worst first */
    size_t n_miss;
} report;

static void report_free(report *r)
{
    free(r->rows);
    free(r->lp);
    free(r->cm);
    free(r->scores);
    free(r->misses);
    dn_dataset_free(&r->ds);
    dn_model_free(r->m);
}

static int parse(int argc, char **argv, report_opts *o)
{
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&o->model),
        CLI_OPT_DATA(&o->data),
        {.name = "metrics", .kind = CLI_STRING, .target = &o->metrics},
        CLI_OPT_OUT(&o->out),
        {.name = "top", .kind = CLI_LONG, .target = &o->top, .min = 0, .max = 1000,
         .bad = "--top wants a number from 0 to 1000, not '%s'"},
        CLI_OPT_THREADS(&o->threads),
        CLI_OPT_LIMIT(&o->limit, 0),
    };
    const cli_spec spec = {"report", usage, opts, CLI_N(opts), 0};
    int next, rc = cli_parse(&spec, argc, argv, &next, NULL);
    if (!rc && !o->out)
        return cli_usage("report", "--out DIR is needed");
    return rc;
}

/* The training curves: the metrics file given, or MODEL.metrics.jsonl
 * when it exists. */
static int load_curves(const report_opts *o, report *r)
{
    r->model_path = cli_model_path(o->model);
    r->metrics = o->metrics;
    snprintf(r->split, sizeof r->split, "test");
    if (!r->metrics) {
        struct stat st;
        snprintf(r->default_metrics, sizeof r->default_metrics, "%s.metrics.jsonl",
                 r->model_path);
        if (stat(r->default_metrics, &st) == 0)
            r->metrics = r->default_metrics;
    }
    if (r->metrics &&
        (r->n_rows = cli_metrics_read(r->metrics, &r->rows, r->split, sizeof r->split)) < 0)
        return CLI_EXIT_FAIL;
    return 0;
}

static int cmp_miss(const void *a, const void *b)
{
    const miss *x = a, *y = b;
    if (x->loss != y->loss)
        return x->loss < y->loss ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The model on the test set: accuracy, confusion matrix, per-class scores
 * and the mistakes, worst (highest loss) first. */
static int evaluate(const report_opts *o, report *r)
{
    dn_error err = {0};
    int rc;
    if (!(r->m = cli_load_model(o->model)))
        return CLI_EXIT_FAIL;
    if ((rc = cli_load_test_set(r->m, o->data, &r->ds)) != 0 ||
        (rc = cli_make_out_dir(o->out)) != 0)
        return rc;
    int k = r->k = dn_model_classes(r->m);
    r->n_eval = o->limit > 0 && (size_t)o->limit < r->ds.n ? (size_t)o->limit : r->ds.n;
    r->lp = malloc(r->n_eval * (size_t)k * sizeof *r->lp);
    r->cm = calloc((size_t)k * (size_t)k, sizeof *r->cm);
    r->scores = calloc((size_t)k, sizeof *r->scores);
    r->misses = malloc(r->n_eval * sizeof *r->misses);
    if (!r->lp || !r->cm || !r->scores || !r->misses)
        return cli_fail("out of memory for %zu test images", r->n_eval);
    if (dn_evaluate(r->m, &r->ds, 0, r->n_eval, (int)o->threads, 250, r->lp, &r->loss,
                    &r->correct, &err) != DN_OK)
        return cli_fail_err(&err);
    r->acc = dn_accuracy(r->correct, r->n_eval, &r->se);
    dn_confusion_add(r->cm, k, r->lp, r->ds.labels, r->n_eval);
    dn_class_scores_of(r->cm, k, r->scores);
    for (size_t i = 0; i < r->n_eval; i++) {
        const float *l = r->lp + i * (size_t)k;
        int y = r->ds.labels[i];
        if (dn_argmax(l, k) != y)
            r->misses[r->n_miss++] = (miss){i, -l[y < k ? y : 0]};
    }
    qsort(r->misses, r->n_miss, sizeof *r->misses, cmp_miss);
    return 0;
}

/* The heading: the model and how it did on the test images. */
static void page_head(dn_text *t, const report *r)
{
    cli_page_open(t, "digitnet report: ", r->model_path, style_css);
    dn_text_printf(t, "<h1>digitnet report: ");
    dn_text_html(t, r->model_path);
    dn_text_printf(t, "</h1>\n<p>Model <code>");
    dn_text_html(t, r->m->spec);
    char set[96];
    if (r->n_eval < r->ds.n)
        snprintf(set, sizeof set, "the first %zu of %zu test images", r->n_eval, r->ds.n);
    else
        snprintf(set, sizeof set, "%zu test images", r->n_eval);
    dn_text_printf(t, "</code>, %zu parameters, %s. On %s: accuracy <b>%.2f &plusmn; %.2f "
                      "%%</b>, mean loss %.4f.</p>\n",
                   r->m->n_params, r->m->dataset, set, 100 * r->acc, 100 * r->se, r->loss);
}

static void training(dn_text *t, const report *r)
{
    if (r->n_rows > 0) {
        curves(t, r->rows, r->n_rows, r->split);
        return;
    }
    dn_text_printf(t, "<h2>Training</h2>\n<p>No training curves: ");
    if (r->metrics)
        dn_text_printf(t, "the metrics file <code>");
    else
        dn_text_printf(t, "no metrics file was given and <code>");
    dn_text_html(t, r->metrics ? r->metrics : r->default_metrics);
    dn_text_printf(t, "</code> %s.</p>\n", r->metrics ? "has no epochs" : "does not exist");
}

/* The confusion matrix as a table shaded by each cell's share of its row,
 * with recall at the end of each row and precision under each column. */
static void confusion(dn_text *t, const report *r)
{
    char label[64];
    int k = r->k;
    dn_text_printf(t, "<h2>Confusion matrix</h2>\n<p>%zu test images, %zu right (%.2f %%). Row: "
                      "the true class; column: the predicted class; each cell the count, "
                      "shaded by its share of the row. Recall is the row's diagonal share, "
                      "precision the column's.</p>\n<table class=\"cm\">\n<tr><th>true \\ "
                      "predicted</th>",
                   r->n_eval, r->correct, 100 * r->acc);
    for (int j = 0; j < k; j++) {
        dn_text_printf(t, "<th>");
        dn_text_html(t, cli_class_label(r->m->dataset, j, label, sizeof label));
        dn_text_printf(t, "</th>");
    }
    dn_text_printf(t, "<th>recall</th></tr>\n");
    for (int i = 0; i < k; i++) {
        size_t row = r->scores[i].support;
        dn_text_printf(t, "<tr><th>");
        dn_text_html(t, cli_class_label(r->m->dataset, i, label, sizeof label));
        dn_text_printf(t, "</th>");
        for (int j = 0; j < k; j++) {
            size_t c = r->cm[i * k + j];
            double share = row ? (double)c / row : 0;
            dn_text_printf(t, "<td style=\"background:#%06X;color:%s\"%s>%zu</td>",
                           (unsigned)heat(share), share > 0.3 ? "#fff" : "#222",
                           i == j ? " class=\"diag\"" : "", c);
        }
        dn_text_printf(t, "<td class=\"sum\">%.2f %%</td></tr>\n", 100 * r->scores[i].recall);
    }
    dn_text_printf(t, "<tr><th>precision</th>");
    for (int j = 0; j < k; j++)
        dn_text_printf(t, "<td class=\"sum\">%.1f %%</td>", 100 * r->scores[j].precision);
    dn_text_printf(t, "<td></td></tr>\n</table>\n");
}

/* The picture of the w-th worst mistake (from 0). */
static void wrong_file(size_t w, char *buf, size_t size)
{
    snprintf(buf, size, "wrong-%02zu.png", w + 1);
}

/* The page and its pictures must not overwrite the model, the metrics
 * file or the test set. */
static int check_files(const report_opts *o, const report *r, size_t shown)
{
    cli_paths p = {0};
    char path[4200], file[64];
    snprintf(path, sizeof path, "%s/index.html", o->out);
    cli_paths_add(&p, 1, "--out's page", path);
    for (size_t w = 0; w < shown; w++) {
        wrong_file(w, file, sizeof file);
        snprintf(path, sizeof path, "%s/%s", o->out, file);
        cli_paths_add(&p, 1, "--out's picture", path);
    }
    cli_paths_add(&p, 0, "the model file", r->model_path);
    if (r->metrics)
        cli_paths_add(&p, 0, "the metrics file", r->metrics);
    cli_paths_add_data(&p, cli_data_dir(r->m->dataset, o->data), "test");
    return cli_paths_check("report", &p);
}

/* The worst mistakes, each as a picture written to the page's directory. */
static int mistakes(dn_text *t, const report *r, const char *out, size_t shown)
{
    const int side = DN_IMAGE_SIDE, zoom = 4;
    dn_text_printf(t, "<h2>The %zu worst mistakes</h2>\n<p>%zu of %zu test images are "
                      "classified wrong. These have the highest loss, &minus;log p(true "
                      "class): the model was most sure of a wrong answer. Each is the 28x28 "
                      "image shown 4x.</p>\n<div>\n",
                   shown, r->n_miss, r->n_eval);
    for (size_t w = 0; w < shown; w++) {
        size_t i = r->misses[w].i;
        const float *l = r->lp + i * (size_t)r->k;
        int p = dn_argmax(l, r->k), y = r->ds.labels[i];
        char file[64], tl[64], pl[64];
        wrong_file(w, file, sizeof file);
        float px[DN_IMAGE_SIDE * DN_IMAGE_SIDE];
        for (int q = 0; q < side * side; q++)
            px[q] = r->ds.images[i * (size_t)(side * side) + (size_t)q] / 255.0f;
        dn_grid g = dn_grid_layout(1, side, side, 1, zoom, 0);
        int rc = cli_grid_png(out, file, &g, px, 0, 1, DN_CMAP_GREY);
        if (rc)
            return rc;
        dn_text_printf(t, "<div class=\"miss\"><img src=\"%s\" width=\"%d\" height=\"%d\" "
                          "alt=\"test image %zu\">#%zu: true ", file, g.width, g.height, i, i);
        dn_text_html(t, cli_class_label(r->m->dataset, y, tl, sizeof tl));
        dn_text_printf(t, "<br>predicted <b>");
        dn_text_html(t, cli_class_label(r->m->dataset, p, pl, sizeof pl));
        dn_text_printf(t, "</b><br>p %.1f&nbsp;%%, loss %.2f</div>\n",
                       100.0 * exp((double)l[p]), r->misses[w].loss);
    }
    dn_text_printf(t, "</div>\n");
    return 0;
}

int cmd_report(int argc, char **argv)
{
    report_opts o = {.top = 24};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    report r;
    memset(&r, 0, sizeof r);
    dn_text t = {0};
    size_t shown = 0;
    char path[4096];
    if ((rc = load_curves(&o, &r)) == 0 && (rc = evaluate(&o, &r)) == 0) {
        shown = r.n_miss < (size_t)o.top ? r.n_miss : (size_t)o.top;
        page_head(&t, &r);
        training(&t, &r);
        confusion(&t, &r);
        if ((rc = check_files(&o, &r, shown)) == 0)
            rc = mistakes(&t, &r, o.out, shown);
    }
    if (!rc && (rc = cli_page_write(&t, o.out, path, sizeof path)) == 0)
        printf("wrote %s (test accuracy %.2f %%, %zu mistakes, %zu shown)\n", path,
               100 * r.acc, r.n_miss, shown);
    dn_text_free(&t);
    report_free(&r);
    return rc;
}
