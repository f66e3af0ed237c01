/*
 * cmd_eval.c - `digitnet eval`: score a model file on the test set.
 *
 * Prints the test loss, the accuracy with its standard error, the
 * confusion matrix, per-class precision, recall and F1, the most confused
 * pairs, and optionally the misclassified images with their
 * log-probabilities; --json gives the same as one JSON object. Evaluation
 * runs in batches over threads and does not depend on either.
 */
#include "options.h"
#include "paths.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: digitnet eval [--model FILE] [--data DIR] [--dataset NAME] [OPTIONS]\n"
        "\n"
        "Runs the model on every test image (dropout off) and reports the mean\n"
        "test loss (NLL), the accuracy +- its standard error sqrt(p(1-p)/n), the\n"
        "confusion matrix (rows: true class, columns: predicted), precision,\n"
        "recall and F1 per class, and the pairs confused most often.\n"
        "\n"
        "options:\n"
        "  --model FILE         model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --data DIR           dataset directory (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA ")\n"
        "  --dataset NAME       mnist or fashion (default: what the model was trained on)\n"
        "  --misclassified N    list the first N misclassified test images: index, true\n"
        "                       and predicted class and their log-probabilities\n"
        "  --json               one JSON object instead of the text report\n"
        "  --limit N            the first N test images only (quick checks)\n"
        "  --logprobs-out FILE  also write every image's log-probabilities as raw\n"
        "                       float32 (N, 10), e.g. for tools/torch_safetensors.py\n"
        "  --threads N          threads (default: all cores); no effect on results\n"
        "  --batch N            images per work item (default 100); no effect on results\n"
        "  -h, --help           this help\n"
        "\n"
        "examples:\n"
        "  digitnet eval\n"
        "  digitnet eval --model out/best.safetensors --misclassified 20\n"
        "  digitnet eval --model digitnet.safetensors --json > eval.json\n"
        "\n"
        "exit status: 0 evaluated, 1 missing or broken model or data, or a write error\n"
        "(standard output included), 2 usage error (also: --logprobs-out naming the\n"
        "model or a data file)\n");
}

/* What the command was asked. */
typedef struct eval_opts {
    const char *model, *data, *dataset, *logp_out;
    long threads, batch, mis, limit;
    int json;
} eval_opts;

/* What it found. */
typedef struct eval_result {
    const char *path;           /* the model file */
    const char *dataset;
    dn_model *m;
    dn_dataset ds;              /* the first n test images */
    int k;                      /* classes */
    float *logp;                /* (n, k) */
    double loss, acc, se;
    size_t correct;
    size_t *cm;                 /* (k, k) confusion matrix */
    dn_class_scores *scores;    /* (k) */
    dn_confused_pair pairs[5];  /* the most confused */
    int n_pairs;
    size_t *wrong;              /* (n_wrong) the first misclassified images */
    size_t n_wrong;
} eval_result;

static void eval_free(eval_result *r)
{
    free(r->logp);
    free(r->cm);
    free(r->scores);
    free(r->wrong);
    dn_dataset_free(&r->ds);
    dn_model_free(r->m);
}

static int parse(int argc, char **argv, eval_opts *o)
{
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&o->model),
        CLI_OPT_DATA(&o->data),
        CLI_OPT_DATASET(&o->dataset, 0),
        CLI_OPT_THREADS(&o->threads),
        {.name = "batch", .kind = CLI_LONG, .target = &o->batch, .min = 1, .max = 4096,
         .bad = "--batch must be an integer in 1..4096, got '%s'"},
        {.name = "misclassified", .kind = CLI_LONG, .target = &o->mis, .min = 0, .max = 1000000,
         .bad = "--misclassified must be an integer >= 0, got '%s'"},
        CLI_OPT_JSON(&o->json),
        CLI_OPT_LIMIT(&o->limit, 0),
        {.name = "logprobs-out", .kind = CLI_STRING, .target = &o->logp_out},
    };
    const cli_spec spec = {"eval", usage, opts, CLI_N(opts), 0};
    int next;
    return cli_parse(&spec, argc, argv, &next, NULL);
}

/* The model and the test images it is scored on. Returns 0 or the exit
 * code after one error line. */
static int load(const eval_opts *o, eval_result *r)
{
    r->path = cli_model_path(o->model);
    struct stat st;
    if (stat(r->path, &st) != 0)
        return cli_fail("no model file '%s' (%s); train one with: digitnet train --out %s",
                        r->path, strerror(errno), r->path);
    dn_error err = {0};
    if (!(r->m = dn_model_load(r->path, NULL, &err)))
        return cli_fail_err(&err);
    r->dataset = o->dataset ? o->dataset : dn_class_names(r->m->dataset) ? r->m->dataset
                                                                         : "mnist";
    if (dn_dataset_load(&r->ds, cli_data_dir(r->dataset, o->data), "test", r->dataset, &err)) {
        if (err.status == DN_ERR_IO)
            return cli_fail("%s (run 'make data', or pass --data DIR)", err.msg);
        return cli_fail_err(&err);
    }
    if (o->limit > 0 && (size_t)o->limit < r->ds.n)
        r->ds.n = (size_t)o->limit;
    /* The model says how its inputs were normalised; use that. */
    r->ds.mean = r->m->mean;
    r->ds.std = r->m->std;
    r->k = dn_model_classes(r->m);
    return 0;
}

/* --logprobs-out must not overwrite the model or the test set. */
static int check_files(const eval_opts *o, const eval_result *r)
{
    if (!o->logp_out)
        return 0;
    cli_paths p = {0};
    cli_paths_add(&p, 1, "--logprobs-out", o->logp_out);
    cli_paths_add(&p, 0, "the model file", r->path);
    cli_paths_add_data(&p, cli_data_dir(r->dataset, o->data), "test");
    return cli_paths_check("eval", &p);
}

/* Evaluates, then every figure the report shows. */
static int compute(const eval_opts *o, eval_result *r)
{
    dn_error err = {0};
    int k = r->k;
    size_t n = r->ds.n;
    if (k != 10)
        return cli_fail("%s: the model has %d outputs, the %s test set 10 classes", r->path, k,
                        r->dataset);
    r->logp = malloc(n * (size_t)k * sizeof *r->logp);
    r->cm = calloc((size_t)k * (size_t)k, sizeof *r->cm);
    r->scores = calloc((size_t)k, sizeof *r->scores);
    size_t most_wrong = n < (size_t)o->mis ? n : (size_t)o->mis;
    r->wrong = malloc((most_wrong ? most_wrong : 1) * sizeof *r->wrong);
    if (!r->logp || !r->cm || !r->scores || !r->wrong)
        return cli_fail("out of memory");
    if (dn_evaluate(r->m, &r->ds, 0, n, (int)o->threads, (int)o->batch, r->logp, &r->loss,
                    &r->correct, &err))
        return cli_fail("%s: %s", r->path, err.msg);
    /* For comparing with other frameworks (tools/torch_safetensors.py check):
     * the raw log-probabilities, float32 in this machine's byte order. */
    if (o->logp_out &&
        dn_file_write_atomic(o->logp_out, r->logp, n * (size_t)k * sizeof *r->logp, &err))
        return cli_fail_err(&err);
    dn_confusion_add(r->cm, k, r->logp, r->ds.labels, n);
    r->acc = dn_accuracy(r->correct, n, &r->se);
    dn_class_scores_of(r->cm, k, r->scores);
    r->n_pairs = dn_most_confused(r->cm, k, r->pairs, 5);
    for (size_t i = 0; i < n && r->n_wrong < (size_t)o->mis; i++)
        if (dn_argmax(r->logp + i * (size_t)k, k) != r->ds.labels[i])
            r->wrong[r->n_wrong++] = i;
    return 0;
}

static json_t *confusion_json(const eval_result *r)
{
    json_t *cm = json_array();
    for (int t = 0; t < r->k; t++) {
        json_t *row = json_array();
        for (int p = 0; p < r->k; p++)
            json_array_append_new(row, json_integer((json_int_t)r->cm[t * r->k + p]));
        json_array_append_new(cm, row);
    }
    return cm;
}

static json_t *scores_json(const eval_result *r)
{
    json_t *pc = json_array();
    for (int c = 0; c < r->k; c++) {
        const dn_class_scores *s = &r->scores[c];
        json_array_append_new(pc, json_pack("{s:i, s:s, s:f, s:f, s:f, s:I}", "class", c,
                                            "name", r->ds.class_names[c], "precision",
                                            s->precision, "recall", s->recall, "f1", s->f1,
                                            "support", (json_int_t)s->support));
    }
    return pc;
}

static json_t *wrong_json(const eval_result *r)
{
    json_t *ml = json_array();
    for (size_t w = 0; w < r->n_wrong; w++) {
        size_t i = r->wrong[w];
        const float *row = r->logp + i * (size_t)r->k;
        json_t *lp = json_array();
        for (int c = 0; c < r->k; c++)
            json_array_append_new(lp, json_real(row[c]));
        json_array_append_new(ml, json_pack("{s:I, s:i, s:i, s:o}", "index", (json_int_t)i,
                                            "true", r->ds.labels[i], "pred",
                                            dn_argmax(row, r->k), "logp", lp));
    }
    return ml;
}

static void print_json(const eval_opts *o, const eval_result *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "model", json_string(r->path));
    json_object_set_new(j, "dataset", json_string(r->dataset));
    json_object_set_new(j, "n", json_integer((json_int_t)r->ds.n));
    json_object_set_new(j, "loss", json_real(r->loss));
    json_object_set_new(j, "accuracy", json_real(r->acc));
    json_object_set_new(j, "accuracy_se", json_real(r->se));
    json_object_set_new(j, "correct", json_integer((json_int_t)r->correct));
    json_object_set_new(j, "confusion", confusion_json(r));
    json_object_set_new(j, "per_class", scores_json(r));
    json_t *cp = json_array();
    for (int i = 0; i < r->n_pairs; i++)
        json_array_append_new(cp, json_pack("{s:i, s:i, s:I}", "true", r->pairs[i].truth,
                                            "pred", r->pairs[i].predicted, "count",
                                            (json_int_t)r->pairs[i].count));
    json_object_set_new(j, "confused_pairs", cp);
    if (o->mis > 0)
        json_object_set_new(j, "misclassified", wrong_json(r));
    json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
    fputc('\n', stdout);
    json_decref(j);
}

static void print_confusion(const eval_result *r)
{
    size_t n = r->ds.n;
    printf("%s on %zu %s test images\n", r->path, n, r->dataset);
    printf("test loss %.4f   accuracy %.2f +- %.2f %%   (%zu correct, %zu wrong)\n\n", r->loss,
           100 * r->acc, 100 * r->se, r->correct, n - r->correct);
    printf("confusion matrix (rows: true, columns: predicted)\n      ");
    for (int p = 0; p < r->k; p++)
        printf("%6d", p);
    printf("\n");
    for (int t = 0; t < r->k; t++) {
        printf("  %2d  ", t);
        for (int p = 0; p < r->k; p++)
            printf("%6zu", r->cm[t * r->k + p]);
        printf("\n");
    }
}

static void print_scores(const eval_opts *o, const eval_result *r)
{
    const char *const *names = r->ds.class_names;
    printf("\nclass          precision  recall     F1  support\n");
    for (int c = 0; c < r->k; c++) {
        char label[32];
        const dn_class_scores *s = &r->scores[c];
        printf("%-14s %9.4f %7.4f %6.4f %8zu\n", cli_class_label(r->dataset, c, label,
               sizeof label), s->precision, s->recall, s->f1, s->support);
    }
    if (r->n_pairs) {
        printf("\nmost confused (true -> predicted)\n");
        for (int i = 0; i < r->n_pairs; i++)
            printf("  %s -> %s  %zu\n", names[r->pairs[i].truth], names[r->pairs[i].predicted],
                   r->pairs[i].count);
    }
    if (o->mis > 0) {
        printf("\nmisclassified (first %ld)\n  index  true  pred  logp(true)  logp(pred)\n",
               o->mis);
        for (size_t w = 0; w < r->n_wrong; w++) {
            size_t i = r->wrong[w];
            const float *row = r->logp + i * (size_t)r->k;
            int y = r->ds.labels[i], p = dn_argmax(row, r->k);
            printf("  %5zu  %4d  %4d  %10.4f  %10.4f\n", i, y, p, row[y], row[p]);
        }
    }
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o = {.batch = 100};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    eval_result r;
    memset(&r, 0, sizeof r);
    if ((rc = load(&o, &r)) == 0 && (rc = check_files(&o, &r)) == 0 &&
        (rc = compute(&o, &r)) == 0) {
        if (o.json) {
            print_json(&o, &r);
        } else {
            print_confusion(&r);
            print_scores(&o, &r);
        }
    }
    eval_free(&r);
    return rc;
}
