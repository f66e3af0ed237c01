/*
 * metrics_file.c - the metrics file: one JSON object per epoch, written by
 * `train` after every epoch and read back by `report` for its curves.
 */
#include "metrics_file.h"

#include "files.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_number(dn_text *t, const char *key, double v, const char *fmt)
{
    dn_text_printf(t, "\"%s\":", key);
    if (isfinite(v))
        dn_text_printf(t, fmt, v);
    else
        dn_text_printf(t, "null");
}

void cli_metrics_line(dn_text *t, const dn_train_progress *p)
{
    dn_text_printf(t, "{\"epoch\":%d,", p->epoch);
    put_number(t, "lr", p->lr, "%.10g");
    dn_text_printf(t, ",");
    put_number(t, "train_loss", p->train_loss, "%.6f");
    dn_text_printf(t, ",");
    put_number(t, "test_loss", p->split ? p->eval_loss : NAN, "%.6f");
    dn_text_printf(t, ",");
    put_number(t, "test_acc", p->split ? p->eval_acc : NAN, "%.6f");
    dn_text_printf(t, ",");
    put_number(t, "test_acc_se", p->split ? p->eval_acc_se : NAN, "%.6f");
    dn_text_printf(t, ",");
    put_number(t, "seconds", p->seconds, "%.3f");
    dn_text_printf(t, ",");
    put_number(t, "images_per_s", p->images_per_s, "%.1f");
    dn_text_printf(t, ",\"split\":\"%s\"}\n", p->split ? p->split : "none");
}

int cli_metrics_kept(const char *path, int keep, dn_text *t)
{
    char why[256];
    int missing;
    FILE *in = cli_fopen_regular(path, &missing, why, sizeof why);
    if (!in)
        return missing ? 0 : cli_fail("cannot read the metrics file '%s': %s", path, why);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) != -1) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *e = json_object_get(j, "epoch");
        /* A line torn by a crash does not parse and is dropped. */
        if (json_is_integer(e) && json_integer_value(e) <= keep)
            dn_text_printf(t, "%s%s", line, line[strlen(line) - 1] == '\n' ? "" : "\n");
        json_decref(j);
    }
    int bad = ferror(in);
    free(line);
    fclose(in);
    if (bad)
        return cli_fail("cannot read the metrics file '%s'", path);
    return 0;
}

static double get_number(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int cmp_epoch(const void *a, const void *b)
{
    double x = ((const cli_epoch_row *)a)->epoch, y = ((const cli_epoch_row *)b)->epoch;
    return (x > y) - (x < y);
}

/* The row of one line, or 0 with an error printed (line_no counts from
 * 1). */
static int parse_line(const char *path, int line_no, const char *line, cli_epoch_row *r,
                      char *split, size_t split_size)
{
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    if (!json_is_object(o) || !isfinite(get_number(o, "epoch"))) {
        cli_fail("%s:%d: not a metrics line (a JSON object with \"epoch\"): %s", path, line_no,
                 o ? "no epoch" : je.text);
        json_decref(o);
        return 0;
    }
    *r = (cli_epoch_row){get_number(o, "epoch"),     get_number(o, "lr"),
                         get_number(o, "train_loss"), get_number(o, "test_loss"),
                         get_number(o, "test_acc"),   get_number(o, "test_acc_se"),
                         get_number(o, "seconds")};
    const char *sp = json_string_value(json_object_get(o, "split"));
    if (sp && strcmp(sp, "none"))
        snprintf(split, split_size, "%s", sp);
    json_decref(o);
    return 1;
}

/* Puts r in v (n rows, room for *cap), replacing a row of the same epoch.
 * Returns the new row count, or -1 if out of memory. */
static int keep_row(cli_epoch_row **v, int n, int *cap, const cli_epoch_row *r)
{
    int j = 0;
    while (j < n && (*v)[j].epoch != r->epoch)
        j++;
    if (j == n && n == *cap) {
        int grown = *cap ? 2 * *cap : 32;
        cli_epoch_row *nv = realloc(*v, (size_t)grown * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = grown;
    }
    (*v)[j] = *r;
    return j == n ? n + 1 : n;
}

int cli_metrics_read(const char *path, cli_epoch_row **rows, char *split, size_t split_size)
{
    char why[256];
    FILE *f = cli_fopen_regular(path, NULL, why, sizeof why);
    if (!f) {
        cli_fail("cannot read metrics file '%s': %s", path, why);
        return -1;
    }
    cli_epoch_row *v = NULL, r;
    int n = 0, cap = 0, line_no = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (n >= 0 && getline(&line, &lcap, f) != -1) {
        line_no++;
        if (!line[strspn(line, " \t\r\n")])
            continue;
        if (!parse_line(path, line_no, line, &r, split, split_size))
            n = -1;
        else if ((n = keep_row(&v, n, &cap, &r)) < 0)
            cli_fail("out of memory reading %s", path);
    }
    free(line);
    fclose(f);
    if (n < 0) {
        free(v);
        return -1;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_epoch);
    *rows = v;
    return n;
}
