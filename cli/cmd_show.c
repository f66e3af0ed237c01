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
#include "inputs.h"

#include <getopt.h>
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
        "  chromium out/show/index.html\n");
}

enum { O_MODEL = 256, O_DATA, O_INDEX, O_RAW, O_OUT };

/* Pixels per map: every map at least 112 px across, as MNIST's 28 at 4x. */
#define MIN_MAP_PX 112
#define GAP 6

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

/* A grid picture written to dir/file and its <div class="fig"> with map
 * labels: none, the map index in each map's corner, or row numbers (and
 * column numbers when col_name is set) beside the grid. */
static int grid_figure(dn_text *t, const char *dir, const char *file, const dn_grid *g,
                       const float *maps, float lo, float hi, dn_colormap cm, int labels,
                       const char *alt, const char *row_name, const char *col_name)
{
    dn_canvas c;
    dn_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (dn_grid_draw(g, maps, lo, hi, cm, &c, &err) != DN_OK ||
        dn_canvas_write_png(&c, path, &err) != DN_OK) {
        dn_canvas_free(&c);
        return cli_fail_err(&err);
    }
    dn_canvas_free(&c);
    int pad_l = labels == LBL_ROWS ? 34 : 0, pad_t = labels == LBL_ROWS && col_name ? 16 : 0;
    dn_text_printf(t, "<div class=\"fig\" style=\"padding:%dpx 0 0 %dpx\">", pad_t, pad_l);
    dn_text_printf(t, "<img src=\"%s\" width=\"%d\" height=\"%d\" alt=\"", file, g->width,
                   g->height);
    dn_text_html(t, alt);
    dn_text_printf(t, "\">");
    if (labels == LBL_CORNER) {
        for (int k = 0; k < g->n; k++)
            dn_text_printf(t, "<span class=\"idx\" style=\"left:%dpx;top:%dpx\">%d</span>",
                           dn_grid_cell_x(g, k), dn_grid_cell_y(g, k), k);
    } else if (labels == LBL_ROWS) {
        int cell_h = g->h * g->scale, cell_w = g->w * g->scale;
        for (int r = 0; r < g->rows; r++)
            dn_text_printf(t,
                           "<span class=\"lbl\" style=\"left:0;top:%dpx\" title=\"%s %d\">%d</span>",
                           pad_t + dn_grid_cell_y(g, r * g->cols) + cell_h / 2 - 7,
                           row_name ? row_name : "row", r, r);
        if (col_name)
            for (int k = 0; k < g->cols; k++)
                dn_text_printf(t,
                               "<span class=\"lbl\" style=\"left:%dpx;top:0;width:%dpx;"
                               "text-align:center\" title=\"%s %d\">%d</span>",
                               pad_l + dn_grid_cell_x(g, k), cell_w, col_name, k, k);
    }
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

int cmd_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"data", required_argument, NULL, O_DATA},
        {"mnist-index", required_argument, NULL, O_INDEX},
        {"raw", no_argument, NULL, O_RAW},
        {"out", required_argument, NULL, O_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_arg = NULL, *data_arg = NULL, *out = NULL;
    long index = -1;
    int raw = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model_arg = optarg; break;
        case O_DATA: data_arg = optarg; break;
        case O_INDEX:
            if (cli_parse_long(optarg, 0, 9999999, &index) != 0)
                return cli_usage("show", "--mnist-index wants a number >= 0, not '%s'", optarg);
            break;
        case O_RAW: raw = 1; break;
        case O_OUT: out = optarg; break;
        case 'h': usage(stdout); return 0;
        case ':': return cli_usage("show", "%s needs a value", argv[optind - 1]);
        default: return cli_usage("show", "unknown option '%s'", argv[optind - 1]);
        }
    }
    int n_files = argc - optind;
    if (!out)
        return cli_usage("show", "--out DIR is needed");
    if ((index >= 0) + n_files != 1)
        return cli_usage("show", "give exactly one input: an image file or --mnist-index N");

    dn_model *m = cli_load_model(model_arg);
    if (!m)
        return CLI_EXIT_FAIL;
    dn_error err = {0};
    cli_input in;
    int status = 0;
    dn_work *w = NULL;
    dn_text t = {0};
    if (index >= 0) {
        dn_dataset ds;
        if ((status = cli_load_test_set(m, data_arg, &ds)) != 0)
            goto done;
        dn_status st = cli_input_mnist(&in, &ds, index, &err);
        dn_dataset_free(&ds);
        if (st != DN_OK) {
            status = cli_fail_err(&err);
            goto done;
        }
    } else if (cli_input_image(&in, argv[optind], cli_images_raw(m, raw), &err) != DN_OK) {
        status = cli_fail_err(&err);
        goto done;
    }
    if ((status = cli_make_out_dir(out)) != 0)
        goto done;

    /* The reference kernels keep every layer's output for the pictures. */
    w = dn_work_new(m, 1);
    if (!w) {
        status = cli_fail("out of memory for the model's workspace");
        goto done;
    }
    dn_work_set_reference(w, 1);
    const float *lp = cli_forward_one(m, w, &in);
    if (!lp) {
        status = cli_fail("%s: the model's forward pass failed", in.name);
        goto done;
    }
    int k = dn_model_classes(m), best = cli_argmax(lp, k);

    /* The stages, in the order the data flows. */
    stage stages[DN_MAX_LAYERS + 1];
    int ns = 0;
    memset(stages, 0, sizeof stages);
    stages[ns].layer = -1;
    stages[ns].conv = -1;
    snprintf(stages[ns].title, sizeof stages[ns].title, "input");
    snprintf(stages[ns].file, sizeof stages[ns].file, "input.png");
    shape_str(stages[ns].shape, sizeof stages[ns].shape, m->input);
    ns++;
    char pending[200] = ""; /* operations since the last stage shown */
    for (int l = 0; l < m->n_layers; l++) {
        const dn_layer *L = &m->layers[l];
        const dn_layer *next = l + 1 < m->n_layers ? &m->layers[l + 1] : NULL;
        char op[160] = "";
        int show = 0, conv = -1;
        char title[64], file[64];
        snprintf(title, sizeof title, "%s", L->name);
        snprintf(file, sizeof file, "%s.png", L->name);
        switch (L->kind) {
        case DN_CONV:
            snprintf(op, sizeof op, "%s: %d filters of %dx%dx%d, padding %d, stride %d", L->name,
                     L->out_ch, L->in.c, L->k, L->k, L->pad, L->stride);
            if (next && next->kind == DN_RELU)
                break;
            show = 1;
            conv = l;
            break;
        case DN_RELU:
            snprintf(op, sizeof op, "ReLU");
            show = 1;
            if (l > 0 && (m->layers[l - 1].kind == DN_CONV || m->layers[l - 1].kind == DN_FC)) {
                snprintf(title, sizeof title, "%s + ReLU", m->layers[l - 1].name);
                snprintf(file, sizeof file, "%s-relu.png", m->layers[l - 1].name);
                if (m->layers[l - 1].kind == DN_CONV)
                    conv = l - 1;
            }
            break;
        case DN_MAXPOOL:
            snprintf(op, sizeof op, "%s: max over %dx%d, stride %d", L->name, L->k, L->k,
                     L->stride);
            show = 1;
            break;
        case DN_DROPOUT2D:
            snprintf(op, sizeof op, "%s (p %.2g; the identity at inference)", L->name, L->p);
            break;
        case DN_FLATTEN:
            snprintf(op, sizeof op, "flatten: %d maps of %dx%d read row by row", L->in.c,
                     L->in.h, L->in.w);
            show = L->in.h * L->in.w > 1;
            break;
        case DN_FC:
            snprintf(op, sizeof op, "%s: %d x %d weights", L->name, L->out_ch, L->in.c);
            show = !next || (next->kind != DN_RELU && next->kind != DN_LOGSOFTMAX);
            break;
        case DN_LOGSOFTMAX:
            snprintf(op, sizeof op, "log-softmax");
            show = 1;
            snprintf(title, sizeof title, "output: log-probabilities");
            file[0] = 0;
            break;
        }
        size_t pl = strlen(pending);
        snprintf(pending + pl, sizeof pending - pl, "%s%s", pl ? " &rarr; " : "", op);
        if (!show)
            continue;
        stage *s = &stages[ns++];
        s->layer = l;
        s->conv = conv;
        snprintf(s->title, sizeof s->title, "%s", title);
        snprintf(s->file, sizeof s->file, "%s", file);
        snprintf(s->op, sizeof s->op, "%s", pending);
        shape_str(s->shape, sizeof s->shape, L->out);
        pending[0] = 0;
    }

    char label[64], tl[64];
    dn_text_printf(&t, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<title>digitnet show: ");
    dn_text_html(&t, in.name);
    dn_text_printf(&t, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>What the network "
                       "sees: ", style_css);
    dn_text_html(&t, in.name);
    dn_text_printf(&t, "</h1>\n<p>Predicted <b>%s</b> (probability %.2f %%)",
                   cli_class_label(m, best, label, sizeof label), 100.0 * exp((double)lp[best]));
    if (in.label >= 0)
        dn_text_printf(&t, "; true label %s (%s)", cli_class_label(m, in.label, tl, sizeof tl),
                       in.label == best ? "right" : "wrong");
    dn_text_printf(&t, ". Model <code>");
    dn_text_html(&t, cli_model_path(model_arg));
    dn_text_printf(&t, "</code>: <code>");
    dn_text_html(&t, m->spec);
    dn_text_printf(&t, "</code></p>\n<p class=\"flow\">Dimensionality throughout: ");
    for (int i = 0; i < ns; i++)
        dn_text_printf(&t, "%s%s", i ? " &rarr; " : "", stages[i].shape);
    dn_text_printf(&t, "</p>\n");

    for (int i = 0; i < ns && !status; i++) {
        stage *s = &stages[i];
        if (i > 0)
            dn_text_printf(&t, "<div class=\"op\">&darr; %s</div>\n", s->op);
        dn_text_printf(&t, "<section class=\"stage\" id=\"%s\">\n<h2>", s->layer < 0 ? "input" :
                       m->layers[s->layer].name);
        dn_text_html(&t, s->title);
        dn_text_printf(&t, "</h2>\n<p class=\"shape\">%s</p>\n", s->shape);
        if (s->layer < 0) {
            dn_grid g = dn_grid_layout(1, DN_IMAGE_SIDE, DN_IMAGE_SIDE, 1, 8, 0);
            status = grid_figure(&t, out, s->file, &g, in.raw, 0, 1, DN_CMAP_GREY, LBL_NONE,
                                 "the 28x28 input", NULL, NULL);
            dn_text_printf(&t, "<p class=\"cap\">The 28x28 image the network sees, ink white "
                               "(0 black, 1 white), shown 8x; normalised as (x - %.4f) / %.4f "
                               "before the first layer.", m->mean, m->std);
            if (in.prepped)
                dn_text_printf(&t, " Preprocessed from the file: %s background, ink box "
                                   "%dx%d at (%d, %d) scaled by %.3g to fit 20x20, centred by "
                                   "mass.", in.prep.inverted ? "light" : "dark", in.prep.box_w,
                               in.prep.box_h, in.prep.box_x, in.prep.box_y, in.prep.scale);
            dn_text_printf(&t, "</p>\n");
        } else if (m->layers[s->layer].kind == DN_LOGSOFTMAX) {
            dn_text_printf(&t, "<div class=\"fig\">");
            const char *names[64];
            char nb[64][64];
            for (int j = 0; j < k && j < 64; j++)
                names[j] = cli_class_label(m, j, nb[j], sizeof nb[j]);
            dn_svg_bar_chart(&t, lp, k < 64 ? k : 64, names, best,
                             "log-probability of each class", k > 10 ? 60 * k : 600, 260);
            dn_text_printf(&t, "</div>\n<div class=\"fig\"><table class=\"lp\">\n");
            int rows = (k + 1) / 2;
            for (int r = 0; r < rows; r++) {
                dn_text_printf(&t, "<tr>");
                for (int col = 0; col < 2; col++) {
                    int cl = r + col * rows;
                    if (cl >= k)
                        continue;
                    char v[24];
                    snprintf(v, sizeof v, "%.4f", lp[cl]);
                    dn_text_printf(&t, "<td%s>", cl == best ? " class=\"best\"" : "");
                    dn_text_html(&t, cli_class_label(m, cl, label, sizeof label));
                    dn_text_printf(&t, ": %s</td>", strcmp(v, "-0.0000") ? v : "0.0000");
                }
                dn_text_printf(&t, "</tr>\n");
            }
            dn_text_printf(&t, "</table></div>\n<p class=\"cap\">log p for each class; 0 is "
                               "certain, and the predicted class (underlined) is the largest. "
                               "Probabilities are e<sup>log p</sup>.</p>\n");
        } else {
            const dn_layer *L = &m->layers[s->layer];
            const float *a = dn_work_act(w, s->layer); /* (1, out) */
            size_t n = (size_t)L->out.c * L->out.h * L->out.w;
            float lo, hi;
            dn_colormap cm = pick_scale(a, n, &lo, &hi);
            dn_grid g;
            int labels = LBL_CORNER;
            char alt[128];
            const char *what;
            if (L->kind == DN_FLATTEN) {
                /* One row per input map, so the 784 values keep their
                 * origin visible. */
                int per = L->in.h * L->in.w;
                g = dn_grid_layout(L->in.c, 1, per, 1, 8, 6);
                labels = LBL_ROWS;
                what = "one colour scale for the whole vector; each row is one map of the layer "
                       "before, left to right its rows top to bottom";
            } else if (L->out.h == 1 && L->out.w == 1) {
                g = dn_grid_layout(1, 1, L->out.c, 1, 12, 2);
                labels = LBL_NONE;
                what = "one colour scale; value i of the vector at position i from the left";
            } else {
                int side = L->out.h > L->out.w ? L->out.h : L->out.w;
                int scale = (MIN_MAP_PX + side - 1) / side;
                g = dn_grid_layout(L->out.c, L->out.h, L->out.w, 8, scale, GAP);
                what = "one colour scale for all maps, so they compare; the number in a corner "
                       "is the map (channel) index";
            }
            snprintf(alt, sizeof alt, "%s, %s", s->title, s->shape);
            status = grid_figure(&t, out, s->file, &g, a, lo, hi, cm, labels, alt,
                                 L->kind == DN_FLATTEN ? "map" : NULL, NULL);
            if (!status)
                range_note(&t, cm, lo, hi, what);
            if (!status && L->kind == DN_RELU && s->layer > 0) {
                dn_text_printf(&t, "<p class=\"cap\">After the ReLU: what the next layer "
                                   "receives. Negative responses of %s are cut to 0 and show as "
                                   "the darkest colour.</p>\n",
                               m->layers[s->layer - 1].name);
            } else if (!status && L->kind == DN_MAXPOOL) {
                dn_text_printf(&t, "<p class=\"cap\">Each value is the largest of a %dx%d "
                                   "block of the maps before: half the size, the strongest "
                                   "responses kept.</p>\n",
                               L->k, L->k);
            }
            if (!status && s->conv >= 0) {
                /* The filters that made these maps, rows = output map,
                 * columns = input map. */
                const dn_layer *C = &m->layers[s->conv];
                const float *wt = m->params + C->w_off; /* (O, I, k, k) */
                size_t nw = C->w_len;
                float wlo, whi;
                pick_scale(wt, nw, &wlo, &whi);
                float mm = fabsf(wlo) > fabsf(whi) ? fabsf(wlo) : fabsf(whi);
                if (!(mm > 0))
                    mm = 1;
                int fscale = (C->k <= 3 ? 120 : 60) / C->k;
                char ffile[64], falt[128];
                snprintf(ffile, sizeof ffile, "filters-%s.png", C->name);
                snprintf(falt, sizeof falt, "learned filters of %s", C->name);
                dn_text_printf(&t, "<h2 style=\"margin-top:12px\">learned filters of %s</h2>\n"
                                   "<p class=\"shape\">%dx%dx%dx%d</p>\n",
                               C->name, C->out_ch, C->in.c, C->k, C->k);
                dn_grid fg = dn_grid_layout(C->out_ch * C->in.c, C->k, C->k,
                                            C->in.c > 1 ? C->in.c : C->out_ch, fscale, GAP);
                status = grid_figure(&t, out, ffile, &fg, wt, -mm, mm, DN_CMAP_DIVERGING,
                                     C->in.c == 1 ? LBL_CORNER : LBL_ROWS, falt, "output map",
                                     "input map");
                if (!status) {
                    char note[200];
                    if (C->in.c == 1)
                        snprintf(note, sizeof note, "weights; blue negative, white 0, red "
                                                    "positive; filter i makes map i");
                    else
                        snprintf(note, sizeof note, "weights; blue negative, white 0, red "
                                 "positive; row o, column i: what input map i adds to output map "
                                 "o");
                    range_note(&t, DN_CMAP_DIVERGING, -mm, mm, note);
                }
            }
        }
        dn_text_printf(&t, "</section>\n");
    }
    dn_text_printf(&t, "</body>\n</html>\n");
    if (!status) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.html", out);
        if (t.oom)
            status = cli_fail("out of memory writing %s", path);
        else if (dn_file_write_atomic(path, t.s, t.len, &err) != DN_OK)
            status = cli_fail_err(&err);
        else
            printf("wrote %s and its pictures\n", path);
    }
done:
    dn_text_free(&t);
    dn_work_free(w);
    dn_model_free(m);
    return status;
}
