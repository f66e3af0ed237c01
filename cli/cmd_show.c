/*
 * cmd_show.c - `digitnet show`: pictures of what every layer makes of one
 * input, and an index.html that lays them out in the order the data flows,
 * as the lecture's "dimensionality changes throughout" slide does:
 * 1x28x28 -> 8x28x28 -> 8x14x14 -> 16x14x14 -> 16x7x7 -> 784 -> 64 -> 10.
 *
 * A convolution followed by a ReLU is shown after the ReLU (what the next
 * layer receives), named "conv1 + ReLU". Dropout is the identity at
 * inference and is only mentioned. Labels, shapes and value ranges are HTML
 * text, not pixels, so they stay sharp and searchable.
 */
#include "digitnet_explain.h"
#include "inputs.h"
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
        "usage: digitnet show [OPTIONS] --out DIR (INPUT | --mnist-index N)\n"
        "\n"
        "Runs one image through the model and writes pictures of every stage to\n"
        "DIR: the 28x28 input the network sees, the feature maps of each\n"
        "convolution (after its ReLU) and pooling layer as grids, the flattened\n"
        "vector, the hidden layer, the learned filters of each convolution, and\n"
        "the log-probabilities as a bar chart. DIR/index.html lays them out in\n"
        "the order the data flows, with each stage's shape and value range.\n"
        "Files are replaced atomically; the same model and input give the same\n"
        "bytes.\n"
        "\n"
        "options:\n"
        "  --out DIR            where to write the pictures and index.html (needed)\n"
        "  --model FILE         model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --mnist-index N      MNIST test image N instead of an image file\n"
        "  --data DIR           dataset directory for --mnist-index\n"
        "                       (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA ")\n"
        "  --raw                no preprocessing of the image (see digitnet predict)\n"
        "  -h, --help           this help\n"
        "\n"
        "examples:\n"
        "  digitnet show --mnist-index 0 --out out/show\n"
        "  digitnet show --model out/model.safetensors my-digit.png --out out/mine\n"
        "  chromium out/show/index.html\n"
        "\n"
        "exit status: 0 written, 1 a missing or broken file or a write error\n"
        "(standard output included), 2 usage error (also: a page or picture that\n"
        "would overwrite the model or the input)\n");
}

/* Pixels per map: every map at least 112 px across, as MNIST's 28 at 4x. */
#define MIN_MAP_PX 112
#define GAP 6
/* The input is drawn 8x (224 px); a filter's weights so that a 3x3 filter
 * is 120 px across and a larger one 60 px. */
#define INPUT_ZOOM 8
#define SMALL_FILTER_PX 120
#define LARGE_FILTER_PX 60

/* One picture of the page. */
typedef struct stage {
    int layer;              /* whose output; -1 for the input */
    char title[64];         /* "conv1 + ReLU" */
    char file[64];          /* "conv1-relu.png" */
    char op[200];           /* how it came from the stage before */
    char shape[32];         /* "8x28x28" */
    int conv;               /* conv layer whose filters to show, or -1 */
} stage;

static void shape_str(char *buf, size_t size, dn_shape s)
{
    if (s.h == 1 && s.w == 1)
        snprintf(buf, size, "%d", s.c);
    else
        snprintf(buf, size, "%dx%dx%d", s.c, s.h, s.w);
}

/* The colour scale for values lo..hi: sequential from 0 when nothing is
 * negative (ReLU outputs), otherwise diverging and symmetric about 0 so
 * that white means 0. */
static dn_colormap pick_scale(const float *v, size_t n, float *lo, float *hi)
{
    float a = INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        a = v[i] < a ? v[i] : a;
        b = v[i] > b ? v[i] : b;
    }
    if (!(a <= b))
        a = b = 0;
    if (a >= 0) {
        *lo = 0;
        *hi = b > 0 ? b : 1;
        return DN_CMAP_VIRIDIS;
    }
    float m = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b);
    *lo = -m;
    *hi = m;
    return DN_CMAP_DIVERGING;
}

static void css_gradient(dn_text *t, dn_colormap cm)
{
    dn_text_printf(t, "linear-gradient(to right");
    for (int i = 0; i <= 8; i++)
        dn_text_printf(t, ", #%06X", (unsigned)dn_colormap_rgb(cm, i / 8.0f));
    dn_text_printf(t, ")");
}

static void range_note(dn_text *t, dn_colormap cm, float lo, float hi, const char *what)
{
    dn_text_printf(t, "<p class=\"range\">%.4g <span class=\"scale\" style=\"background:", lo);
    css_gradient(t, cm);
    dn_text_printf(t, "\"></span> %.4g &nbsp;", hi);
    dn_text_html(t, what);
    dn_text_printf(t, "</p>\n");
}

enum { LBL_NONE, LBL_CORNER, LBL_ROWS };

/* A grid picture and how its maps are labelled on the page: not at all,
 * with the map index in each map's corner, or with row numbers (and column
 * numbers when col_name is set) beside the grid. */
typedef struct figure {
    const char *file, *alt;
    int labels;
    const char *row_name, *col_name;
} figure;

/* Writes the picture to dir/f->file and appends its <div class="fig">. */
static int grid_figure(dn_text *t, const char *dir, const figure *f, const dn_grid *g,
                       const float *maps, float lo, float hi, dn_colormap cm)
{
    int rc = cli_grid_png(dir, f->file, g, maps, lo, hi, cm);
    if (rc)
        return rc;
    int rows = f->labels == LBL_ROWS;
    int pad_l = rows ? 34 : 0, pad_t = rows && f->col_name ? 16 : 0;
    dn_text_printf(t, "<div class=\"fig\" style=\"padding:%dpx 0 0 %dpx\">", pad_t, pad_l);
    dn_text_printf(t, "<img src=\"%s\" width=\"%d\" height=\"%d\" alt=\"", f->file, g->width,
                   g->height);
    dn_text_html(t, f->alt);
    dn_text_printf(t, "\">");
    if (f->labels == LBL_CORNER)
        for (int k = 0; k < g->n; k++)
            dn_text_printf(t, "<span class=\"idx\" style=\"left:%dpx;top:%dpx\">%d</span>",
                           dn_grid_cell_x(g, k), dn_grid_cell_y(g, k), k);
    for (int r = 0; rows && r < g->rows; r++)
        dn_text_printf(t, "<span class=\"lbl\" style=\"left:0;top:%dpx\" title=\"%s %d\">%d</span>",
                       pad_t + dn_grid_cell_y(g, r * g->cols) + g->h * g->scale / 2 - 7,
                       f->row_name ? f->row_name : "row", r, r);
    for (int k = 0; rows && f->col_name && k < g->cols; k++)
        dn_text_printf(t,
                       "<span class=\"lbl\" style=\"left:%dpx;top:0;width:%dpx;"
                       "text-align:center\" title=\"%s %d\">%d</span>",
                       pad_l + dn_grid_cell_x(g, k), g->w * g->scale, f->col_name, k, k);
    dn_text_printf(t, "</div>\n");
    return 0;
}

static const char *style_css =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#f6f6f6;max-width:1200px}\n"
    "h1{font-size:1.4em;margin:0 0 4px}h2{font-size:1.1em;margin:0 0 2px}\n"
    ".flow{font-family:monospace;font-size:1.05em;margin:6px 0 16px}\n"
    ".stage{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;"
    "margin:0;display:inline-block;min-width:320px}\n"
    ".shape{font-family:monospace;font-weight:bold;font-size:1.15em;margin:2px 0 8px}\n"
    ".op{color:#555;margin:6px 0 6px 28px;font-size:.95em}\n"
    ".fig{position:relative;display:inline-block;margin:4px 12px 4px 0;vertical-align:top}\n"
    ".fig img{display:block;image-rendering:pixelated}\n"
    ".idx{position:absolute;font-size:10px;line-height:12px;color:#fff;"
    "background:rgba(0,0,0,.6);padding:0 3px}\n"
    ".lbl{position:absolute;font-size:11px;line-height:14px;color:#444;width:28px;"
    "text-align:right}\n"
    ".range{font-size:.9em;color:#333;margin:4px 0}\n"
    ".scale{display:inline-block;width:140px;height:10px;vertical-align:middle;"
    "border:1px solid #999}\n"
    ".cap{font-size:.9em;color:#444;margin:2px 0 8px;max-width:900px}\n"
    "table.lp{border-collapse:collapse;font-family:monospace;font-size:1.05em}\n"
    "table.lp td{padding:1px 14px 1px 0}\n"
    "table.lp td.best{font-weight:bold;text-decoration:underline}\n";

/* ------------------------------------------------------------------------ */
/* Compute: the input, the forward pass and the stages to show              */
/* ------------------------------------------------------------------------ */

typedef struct show_opts {
    const char *model, *data, *out;
    long index;             /* --mnist-index, or -1 */
    int raw;
    const char *file;       /* the image file, or NULL */
} show_opts;

typedef struct show {
    dn_model *m;
    cli_input in;
    dn_work *w;             /* reference kernels: every layer's output kept */
    const float *lp;        /* (k) log-probabilities, in w */
    int k, best;
    stage stages[DN_MAX_LAYERS + 1];
    int ns;
} show;

static int parse(int argc, char **argv, show_opts *o)
{
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&o->model),
        CLI_OPT_DATA(&o->data),
        {.name = "mnist-index", .kind = CLI_LONG, .target = &o->index, .min = 0, .max = 9999999,
         .bad = "--mnist-index wants a number >= 0, not '%s'"},
        CLI_OPT_RAW(&o->raw),
        CLI_OPT_OUT(&o->out),
    };
    const cli_spec spec = {"show", usage, opts, CLI_N(opts), 1};
    int next, rc = cli_parse(&spec, argc, argv, &next, NULL);
    if (rc)
        return rc;
    if (!o->out)
        return cli_usage("show", "--out DIR is needed");
    if ((o->index >= 0) + (argc - next) != 1)
        return cli_usage("show", "give exactly one input: an image file or --mnist-index N");
    o->file = next < argc ? argv[next] : NULL;
    return 0;
}

/* The model, the input and the forward pass. */
static int run_model(const show_opts *o, show *s)
{
    dn_error err = {0};
    int rc;
    if (!(s->m = cli_load_model(o->model)))
        return CLI_EXIT_FAIL;
    if (o->index >= 0) {
        dn_dataset ds;
        if ((rc = cli_load_test_set(s->m, o->data, &ds)) != 0)
            return rc;
        dn_status st = cli_input_mnist(&s->in, &ds, o->index, &err);
        dn_dataset_free(&ds);
        if (st != DN_OK)
            return cli_fail_err(&err);
    } else if (cli_input_image(&s->in, o->file, cli_images_raw(s->m, o->raw), &err) != DN_OK) {
        return cli_fail_err(&err);
    }
    if ((rc = cli_make_out_dir(o->out)) != 0)
        return rc;
    /* The reference kernels keep every layer's output for the pictures. */
    if (!(s->w = dn_work_new(s->m, 1)))
        return cli_fail("out of memory for the model's workspace");
    dn_work_set_reference(s->w, 1);
    if (!(s->lp = cli_forward_one(s->m, s->w, &s->in)))
        return cli_fail("%s: the model's forward pass failed", s->in.name);
    s->k = dn_model_classes(s->m);
    s->best = dn_argmax(s->lp, s->k);
    return 0;
}

/* How layer l changes the data (op), and, should its output be a stage,
 * the stage's layer, title, file, shape and conv (the convolution whose
 * filters go with it, or -1) in st. */
static void layer_stage(const dn_model *m, int l, char *op, size_t size, stage *st)
{
    const dn_layer *L = &m->layers[l];
    const dn_layer *prev = l > 0 ? &m->layers[l - 1] : NULL;
    st->layer = l;
    st->conv = -1;
    snprintf(st->title, sizeof st->title, "%s", L->name);
    snprintf(st->file, sizeof st->file, "%s.png", L->name);
    shape_str(st->shape, sizeof st->shape, L->out);
    switch (L->kind) {
    case DN_CONV:
        snprintf(op, size, "%s: %d filters of %dx%dx%d, padding %d, stride %d", L->name,
                 L->out_ch, L->in.c, L->k, L->k, L->pad, L->stride);
        st->conv = l;
        return;
    case DN_RELU:
        snprintf(op, size, "ReLU");
        if (prev && (prev->kind == DN_CONV || prev->kind == DN_FC)) {
            snprintf(st->title, sizeof st->title, "%s + ReLU", prev->name);
            snprintf(st->file, sizeof st->file, "%s-relu.png", prev->name);
            st->conv = prev->kind == DN_CONV ? l - 1 : -1;
        }
        return;
    case DN_MAXPOOL:
        snprintf(op, size, "%s: max over %dx%d, stride %d", L->name, L->k, L->k, L->stride);
        return;
    case DN_DROPOUT2D:
        snprintf(op, size, "%s (p %.2g; the identity at inference)", L->name, L->p);
        return;
    case DN_FLATTEN:
        snprintf(op, size, "flatten: %d maps of %dx%d read row by row", L->in.c, L->in.h,
                 L->in.w);
        return;
    case DN_FC:
        snprintf(op, size, "%s: %d x %d weights", L->name, L->out_ch, L->in.c);
        return;
    case DN_LOGSOFTMAX:
        snprintf(op, size, "log-softmax");
        snprintf(st->title, sizeof st->title, "output: log-probabilities");
        st->file[0] = 0;
        return;
    }
}

/* The stages, in the order the data flows (the library's choice,
 * dn_model_stages, which the page of `digitnet serve` shows too), with the
 * operations since the stage before. */
static void plan_stages(show *s)
{
    const dn_model *m = s->m;
    dn_stage chosen[DN_MAX_LAYERS + 1];
    int n_chosen = dn_model_stages(m, chosen, DN_MAX_LAYERS + 1), k = 1;
    memset(s->stages, 0, sizeof s->stages);
    stage *in = &s->stages[0];
    in->layer = -1;
    in->conv = -1;
    snprintf(in->title, sizeof in->title, "input");
    snprintf(in->file, sizeof in->file, "input.png");
    shape_str(in->shape, sizeof in->shape, m->input);
    s->ns = 1;
    char pending[200] = ""; /* operations since the last stage shown */
    for (int l = 0; l < m->n_layers; l++) {
        char op[160] = "";
        stage *st = &s->stages[s->ns];
        layer_stage(m, l, op, sizeof op, st);
        int shown = k < n_chosen && chosen[k].layer == l;
        k += shown;
        size_t pl = strlen(pending);
        snprintf(pending + pl, sizeof pending - pl, "%s%s", pl ? " &rarr; " : "", op);
        if (!shown)
            continue;
        snprintf(st->op, sizeof st->op, "%s", pending);
        pending[0] = 0;
        s->ns++;
    }
}

/* The picture of convolution C's filters. */
static void filters_file(const dn_layer *C, char *buf, size_t size)
{
    snprintf(buf, size, "filters-%s.png", C->name);
}

/* The page and the pictures, all planned now, must not overwrite the model
 * or the input (an earlier picture given as the input, say). */
static int check_files(const show_opts *o, const show *s)
{
    cli_paths p = {0};
    char path[4200], file[64];
    snprintf(path, sizeof path, "%s/index.html", o->out);
    cli_paths_add(&p, 1, "--out's page", path);
    for (int i = 0; i < s->ns; i++) {
        const stage *st = &s->stages[i];
        if (st->file[0]) {
            snprintf(path, sizeof path, "%s/%s", o->out, st->file);
            cli_paths_add(&p, 1, "--out's picture", path);
        }
        if (st->conv >= 0) {
            filters_file(&s->m->layers[st->conv], file, sizeof file);
            snprintf(path, sizeof path, "%s/%s", o->out, file);
            cli_paths_add(&p, 1, "--out's picture", path);
        }
    }
    cli_paths_add(&p, 0, "the model file", cli_model_path(o->model));
    if (o->file)
        cli_paths_add(&p, 0, "the input", o->file);
    else
        cli_paths_add_data(&p, cli_data_dir(s->m->dataset, o->data), "test");
    return cli_paths_check("show", &p);
}

/* ------------------------------------------------------------------------ */
/* Render: the page, one section per stage                                  */
/* ------------------------------------------------------------------------ */

static void page_head(dn_text *t, const show *s, const char *model_path)
{
    const dn_model *m = s->m;
    char label[64], tl[64];
    cli_page_open(t, "digitnet show: ", s->in.name, style_css);
    dn_text_printf(t, "<h1>What the network sees: ");
    dn_text_html(t, s->in.name);
    dn_text_printf(t, "</h1>\n<p>Predicted <b>%s</b> (probability %.2f %%)",
                   cli_class_label(m->dataset, s->best, label, sizeof label),
                   100.0 * exp((double)s->lp[s->best]));
    if (s->in.label >= 0)
        dn_text_printf(t, "; true label %s (%s)",
                       cli_class_label(m->dataset, s->in.label, tl, sizeof tl),
                       s->in.label == s->best ? "right" : "wrong");
    dn_text_printf(t, ". Model <code>");
    dn_text_html(t, model_path);
    dn_text_printf(t, "</code>: <code>");
    dn_text_html(t, m->spec);
    dn_text_printf(t, "</code></p>\n<p class=\"flow\">Dimensionality throughout: ");
    for (int i = 0; i < s->ns; i++)
        dn_text_printf(t, "%s%s", i ? " &rarr; " : "", s->stages[i].shape);
    dn_text_printf(t, "</p>\n");
}

static int input_section(dn_text *t, const show *s, const char *out)
{
    const cli_input *in = &s->in;
    dn_grid g = dn_grid_layout(1, DN_IMAGE_SIDE, DN_IMAGE_SIDE, 1, INPUT_ZOOM, 0);
    figure f = {s->stages[0].file, "the 28x28 input", LBL_NONE, NULL, NULL};
    int rc = grid_figure(t, out, &f, &g, in->raw, 0, 1, DN_CMAP_GREY);
    dn_text_printf(t, "<p class=\"cap\">The 28x28 image the network sees, ink white "
                      "(0 black, 1 white), shown 8x; normalised as (x - %.4f) / %.4f "
                      "before the first layer.", s->m->mean, s->m->std);
    if (in->prepped)
        dn_text_printf(t, " Preprocessed from the file: %s background, ink box "
                          "%dx%d at (%d, %d) scaled by %.3g to fit 20x20, centred by "
                          "mass.", in->prep.inverted ? "light" : "dark", in->prep.box_w,
                       in->prep.box_h, in->prep.box_x, in->prep.box_y, in->prep.scale);
    dn_text_printf(t, "</p>\n");
    return rc;
}

/* The log-probabilities as a bar chart and as the lecture's table. */
static void output_section(dn_text *t, const show *s)
{
    int k = s->k;
    char label[64];
    dn_text_printf(t, "<div class=\"fig\">");
    const char *names[64];
    char nb[64][64];
    for (int j = 0; j < k && j < 64; j++)
        names[j] = cli_class_label(s->m->dataset, j, nb[j], sizeof nb[j]);
    dn_svg_bar_chart(t, s->lp, k < 64 ? k : 64, names, s->best, "log-probability of each class",
                     k > 10 ? 60 * k : 600, 260);
    dn_text_printf(t, "</div>\n<div class=\"fig\"><table class=\"lp\">\n");
    int rows = (k + 1) / 2;
    for (int r = 0; r < rows; r++) {
        dn_text_printf(t, "<tr>");
        for (int col = 0; col < 2; col++) {
            int cl = r + col * rows;
            if (cl >= k)
                continue;
            char v[24];
            dn_text_printf(t, "<td%s>", cl == s->best ? " class=\"best\"" : "");
            dn_text_html(t, cli_class_label(s->m->dataset, cl, label, sizeof label));
            dn_text_printf(t, ": %s</td>", cli_fmt_logp(v, sizeof v, s->lp[cl]));
        }
        dn_text_printf(t, "</tr>\n");
    }
    dn_text_printf(t, "</table></div>\n<p class=\"cap\">log p for each class; 0 is "
                      "certain, and the predicted class (underlined) is the largest. "
                      "Probabilities are e<sup>log p</sup>.</p>\n");
}

/* The filters of convolution C that made the maps before: rows are output
 * maps, columns input maps. */
static int filters_section(dn_text *t, const dn_layer *C, const float *wt, const char *out)
{
    float wlo, whi;
    pick_scale(wt, C->w_len, &wlo, &whi); /* wt (O, I, k, k) */
    float mm = fabsf(wlo) > fabsf(whi) ? fabsf(wlo) : fabsf(whi);
    if (!(mm > 0))
        mm = 1;
    int fscale = (C->k <= 3 ? SMALL_FILTER_PX : LARGE_FILTER_PX) / C->k;
    char file[64], alt[128];
    filters_file(C, file, sizeof file);
    snprintf(alt, sizeof alt, "learned filters of %s", C->name);
    dn_text_printf(t, "<h2 style=\"margin-top:12px\">learned filters of %s</h2>\n"
                      "<p class=\"shape\">%dx%dx%dx%d</p>\n",
                   C->name, C->out_ch, C->in.c, C->k, C->k);
    dn_grid g = dn_grid_layout(C->out_ch * C->in.c, C->k, C->k,
                               C->in.c > 1 ? C->in.c : C->out_ch, fscale, GAP);
    figure f = {file, alt, C->in.c == 1 ? LBL_CORNER : LBL_ROWS, "output map", "input map"};
    int rc = grid_figure(t, out, &f, &g, wt, -mm, mm, DN_CMAP_DIVERGING);
    if (rc)
        return rc;
    range_note(t, DN_CMAP_DIVERGING, -mm, mm,
               C->in.c == 1 ? "weights; blue negative, white 0, red positive; filter i makes "
                              "map i"
                            : "weights; blue negative, white 0, red positive; row o, column i: "
                              "what input map i adds to output map o");
    return 0;
}

/* The maps of a layer's output as a grid (a flattened vector as one row
 * per map of the layer before), with captions. */
static int maps_section(dn_text *t, const show *s, const stage *st, const char *out)
{
    const dn_layer *L = &s->m->layers[st->layer];
    const float *a = dn_work_act(s->w, st->layer); /* (1, out) */
    float lo, hi;
    dn_colormap cm = pick_scale(a, (size_t)L->out.c * L->out.h * L->out.w, &lo, &hi);
    char alt[128];
    snprintf(alt, sizeof alt, "%s, %s", st->title, st->shape);
    figure f = {st->file, alt, LBL_CORNER, L->kind == DN_FLATTEN ? "map" : NULL, NULL};
    const char *what;
    dn_grid g;
    if (L->kind == DN_FLATTEN) {
        /* One row per input map, so the 784 values keep their origin
         * visible. */
        g = dn_grid_layout(L->in.c, 1, L->in.h * L->in.w, 1, 8, 6);
        f.labels = LBL_ROWS;
        what = "one colour scale for the whole vector; each row is one map of the layer "
               "before, left to right its rows top to bottom";
    } else if (L->out.h == 1 && L->out.w == 1) {
        g = dn_grid_layout(1, 1, L->out.c, 1, 12, 2);
        f.labels = LBL_NONE;
        what = "one colour scale; value i of the vector at position i from the left";
    } else {
        int side = L->out.h > L->out.w ? L->out.h : L->out.w;
        g = dn_grid_layout(L->out.c, L->out.h, L->out.w, 8, (MIN_MAP_PX + side - 1) / side, GAP);
        what = "one colour scale for all maps, so they compare; the number in a corner is the "
               "map (channel) index";
    }
    int rc = grid_figure(t, out, &f, &g, a, lo, hi, cm);
    if (rc)
        return rc;
    range_note(t, cm, lo, hi, what);
    if (L->kind == DN_RELU && st->layer > 0)
        dn_text_printf(t, "<p class=\"cap\">After the ReLU: what the next layer receives. "
                          "Negative responses of %s are cut to 0 and show as the darkest "
                          "colour.</p>\n", s->m->layers[st->layer - 1].name);
    else if (L->kind == DN_MAXPOOL)
        dn_text_printf(t, "<p class=\"cap\">Each value is the largest of a %dx%d block of the "
                          "maps before: half the size, the strongest responses kept.</p>\n",
                       L->k, L->k);
    if (st->conv < 0)
        return 0;
    const dn_layer *C = &s->m->layers[st->conv];
    return filters_section(t, C, s->m->params + C->w_off, out);
}

static int render(dn_text *t, const show *s, const char *model_path, const char *out)
{
    page_head(t, s, model_path);
    int rc = 0;
    for (int i = 0; i < s->ns && !rc; i++) {
        const stage *st = &s->stages[i];
        if (i > 0)
            dn_text_printf(t, "<div class=\"op\">&darr; %s</div>\n", st->op);
        dn_text_printf(t, "<section class=\"stage\" id=\"%s\">\n<h2>",
                       st->layer < 0 ? "input" : s->m->layers[st->layer].name);
        dn_text_html(t, st->title);
        dn_text_printf(t, "</h2>\n<p class=\"shape\">%s</p>\n", st->shape);
        if (st->layer < 0)
            rc = input_section(t, s, out);
        else if (s->m->layers[st->layer].kind == DN_LOGSOFTMAX)
            output_section(t, s);
        else
            rc = maps_section(t, s, st, out);
        dn_text_printf(t, "</section>\n");
    }
    return rc;
}

int cmd_show(int argc, char **argv)
{
    show_opts o = {.index = -1};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    show s;
    memset(&s, 0, sizeof s);
    dn_text t = {0};
    char path[4096];
    if ((rc = run_model(&o, &s)) == 0) {
        plan_stages(&s);
        if ((rc = check_files(&o, &s)) == 0)
            rc = render(&t, &s, cli_model_path(o.model), o.out);
    }
    if (!rc && (rc = cli_page_write(&t, o.out, path, sizeof path)) == 0)
        printf("wrote %s and its pictures\n", path);
    dn_text_free(&t);
    dn_work_free(s.w);
    dn_model_free(s.m);
    return rc;
}
