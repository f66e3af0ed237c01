/*
 * cmd_eval.c - `digitnet eval`: score a model file on the test set.
 *
 * Prints the test loss, the accuracy with its standard error, the
 * confusion matrix, per-class precision, recall and F1, the most confused
 * pairs, and optionally the misclassified images with their
 * log-probabilities; --json gives the same as one JSON object. Evaluation
 * runs in batches over threads and does not depend on either.
 */
#include "cli.h"

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
        "exit status: 0 evaluated, 1 missing or broken model or data, 2 usage error\n");
}

typedef struct pair {
    int t, p;
    size_t count;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->t != y->t)
        return x->t - y->t;
    return x->p - y->p;
}

static int argmax(const float *row, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},
        {"dataset", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'},
        {"misclassified", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"limit", required_argument, NULL, 'l'},
        {"logprobs-out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_arg = NULL, *data = NULL, *dataset = NULL, *logp_out = NULL;
    long threads = 0, batch = 100, mis = 0, limit = 0;
    int json = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_arg = optarg; break;
        case 'd': data = optarg; break;
        case 's':
            if (!dn_class_names(optarg))
                return cli_usage("eval", "unknown dataset '%s', expected mnist or fashion", optarg);
            dataset = optarg;
            break;
        case 't':
            if (cli_parse_long(optarg, 1, 256, &threads))
                return cli_usage("eval", "--threads must be an integer in 1..256, got '%s'", optarg);
            break;
        case 'b':
            if (cli_parse_long(optarg, 1, 4096, &batch))
                return cli_usage("eval", "--batch must be an integer in 1..4096, got '%s'", optarg);
            break;
        case 'x':
            if (cli_parse_long(optarg, 0, 1000000, &mis))
                return cli_usage("eval", "--misclassified must be an integer >= 0, got '%s'",
                                 optarg);
            break;
        case 'j': json = 1; break;
        case 'o': logp_out = optarg; break;
        case 'l':
            if (cli_parse_long(optarg, 1, 1000000000, &limit))
                return cli_usage("eval", "--limit must be an integer >= 1, got '%s'", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return cli_usage("eval", "option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return cli_usage("eval", "unknown option '-%c'", optopt);
            return cli_usage("eval", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("eval", "unexpected argument '%s'", argv[optind]);

    const char *path = cli_model_path(model_arg);
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_fail("no model file '%s' (%s); train one with: digitnet train --out %s", path,
                        strerror(errno), path);
    dn_error err = {0};
    dn_model *m = dn_model_load(path, NULL, &err);
    if (!m)
        return cli_fail_err(&err);
    if (!dataset)
        dataset = dn_class_names(m->dataset) ? m->dataset : "mnist";
    const char *dir = cli_data_dir(dataset, data);
    dn_dataset ds;
    if (dn_dataset_load(&ds, dir, "test", dataset, &err)) {
        dn_model_free(m);
        if (err.status == DN_ERR_IO)
            return cli_fail("%s (run 'make data', or pass --data DIR)", err.msg);
        return cli_fail_err(&err);
    }
    if (limit > 0 && (size_t)limit < ds.n)
        ds.n = (size_t)limit;
    /* The model says how its inputs were normalised; use that. */
    ds.mean = m->mean;
    ds.std = m->std;
    int K = dn_model_classes(m);
    float *logp = malloc(ds.n * (size_t)(K > 0 ? K : 1) * sizeof *logp); // (n, K)
    size_t *conf = calloc((size_t)K * (size_t)K, sizeof *conf);           // (K, K)
    pair *pairs = calloc((size_t)K * (size_t)K, sizeof *pairs);
    double loss = NAN;
    size_t correct = 0;
    int rc = 0;
    if (K != 10)
        rc = cli_fail("%s: the model has %d outputs, the %s test set 10 classes", path, K,
                      dataset);
    else if (!logp || !conf || !pairs)
        rc = cli_fail("out of memory");
    else if (dn_evaluate(m, &ds, 0, ds.n, (int)threads, (int)batch, logp, &loss, &correct, &err))
        rc = cli_fail("%s: %s", path, err.msg);
    /* For comparing with other frameworks (tools/torch_safetensors.py check):
     * the raw log-probabilities, float32 in this machine's byte order. */
    else if (logp_out &&
             dn_file_write_atomic(logp_out, logp, ds.n * (size_t)K * sizeof *logp, &err))
        rc = cli_fail_err(&err);
    if (rc) {
        free(logp);
        free(conf);
        free(pairs);
        dn_dataset_free(&ds);
        dn_model_free(m);
        return rc;
    }

    size_t n = ds.n;
    for (size_t i = 0; i < n; i++)
        conf[ds.labels[i] * K + argmax(logp + i * K, K)]++;
    double acc = n ? (double)correct / (double)n : NAN;
    double se = n ? sqrt(acc * (1 - acc) / (double)n) : NAN;
    double prec[10], rec[10], f1[10];
    size_t support[10];
    for (int k = 0; k < K; k++) {
        size_t tp = conf[k * K + k], pred = 0, truth = 0;
        for (int j = 0; j < K; j++) {
            pred += conf[j * K + k];
            truth += conf[k * K + j];
        }
        support[k] = truth;
        prec[k] = pred ? (double)tp / (double)pred : 0;
        rec[k] = truth ? (double)tp / (double)truth : 0;
        f1[k] = prec[k] + rec[k] > 0 ? 2 * prec[k] * rec[k] / (prec[k] + rec[k]) : 0;
    }
    int np = 0;
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++)
            if (t != p && conf[t * K + p])
                pairs[np++] = (pair){t, p, conf[t * K + p]};
    qsort(pairs, (size_t)np, sizeof *pairs, pair_cmp);
    int top = np < 5 ? np : 5;
    const char *const *names = ds.class_names;

    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(path));
        json_object_set_new(o, "dataset", json_string(dataset));
        json_object_set_new(o, "n", json_integer((json_int_t)n));
        json_object_set_new(o, "loss", json_real(loss));
        json_object_set_new(o, "accuracy", json_real(acc));
        json_object_set_new(o, "accuracy_se", json_real(se));
        json_object_set_new(o, "correct", json_integer((json_int_t)correct));
        json_t *cm = json_array();
        for (int t = 0; t < K; t++) {
            json_t *row = json_array();
            for (int p = 0; p < K; p++)
                json_array_append_new(row, json_integer((json_int_t)conf[t * K + p]));
            json_array_append_new(cm, row);
        }
        json_object_set_new(o, "confusion", cm);
        json_t *pc = json_array();
        for (int k = 0; k < K; k++)
            json_array_append_new(pc, json_pack("{s:i, s:s, s:f, s:f, s:f, s:I}", "class", k,
                                                "name", names[k], "precision", prec[k], "recall",
                                                rec[k], "f1", f1[k], "support",
                                                (json_int_t)support[k]));
        json_object_set_new(o, "per_class", pc);
        json_t *cp = json_array();
        for (int i = 0; i < top; i++)
            json_array_append_new(cp, json_pack("{s:i, s:i, s:I}", "true", pairs[i].t, "pred",
                                                pairs[i].p, "count", (json_int_t)pairs[i].count));
        json_object_set_new(o, "confused_pairs", cp);
        json_t *ml = json_array();
        for (size_t i = 0, shown = 0; i < n && shown < (size_t)mis; i++) {
            const float *row = logp + i * K;
            int p = argmax(row, K);
            if (p == ds.labels[i])
                continue;
            json_t *lp = json_array();
            for (int k = 0; k < K; k++)
                json_array_append_new(lp, json_real(row[k]));
            json_array_append_new(ml, json_pack("{s:I, s:i, s:i, s:o}", "index", (json_int_t)i,
                                                "true", ds.labels[i], "pred", p, "logp", lp));
            shown++;
        }
        if (mis > 0)
            json_object_set_new(o, "misclassified", ml);
        else
            json_decref(ml);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("%s on %zu %s test images\n", path, n, dataset);
        printf("test loss %.4f   accuracy %.2f +- %.2f %%   (%zu correct, %zu wrong)\n\n", loss,
               100 * acc, 100 * se, correct, n - correct);
        printf("confusion matrix (rows: true, columns: predicted)\n      ");
        for (int p = 0; p < K; p++)
            printf("%6d", p);
        printf("\n");
        for (int t = 0; t < K; t++) {
            printf("  %2d  ", t);
            for (int p = 0; p < K; p++)
                printf("%6zu", conf[t * K + p]);
            printf("\n");
        }
        printf("\nclass          precision  recall     F1  support\n");
        for (int k = 0; k < K; k++) {
            char label[32];
            if (strcmp(names[k], "0") && k < 10 && strcmp(dataset, "mnist"))
                snprintf(label, sizeof label, "%d %s", k, names[k]);
            else
                snprintf(label, sizeof label, "%s", names[k]);
            printf("%-14s %9.4f %7.4f %6.4f %8zu\n", label, prec[k], rec[k], f1[k], support[k]);
        }
        if (top) {
            printf("\nmost confused (true -> predicted)\n");
            for (int i = 0; i < top; i++)
                printf("  %s -> %s  %zu\n", names[pairs[i].t], names[pairs[i].p], pairs[i].count);
        }
        if (mis > 0) {
            printf("\nmisclassified (first %ld)\n  index  true  pred  logp(true)  logp(pred)\n",
                   mis);
            for (size_t i = 0, shown = 0; i < n && shown < (size_t)mis; i++) {
                const float *row = logp + i * K;
                int p = argmax(row, K);
                if (p == ds.labels[i])
                    continue;
                printf("  %5zu  %4d  %4d  %10.4f  %10.4f\n", i, ds.labels[i], p,
                       row[ds.labels[i]], row[p]);
                shown++;
            }
        }
    }
    free(logp);
    free(conf);
    free(pairs);
    dn_dataset_free(&ds);
    dn_model_free(m);
    return 0;
}
