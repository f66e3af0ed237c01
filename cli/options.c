/*
 * options.c - reading a subcommand's argv against its option table
 * (getopt_long underneath), and the value parsers the tables share.
 */
#include "options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Enough for the longest table (train's) and --help. */
#define MAX_OPTS 48

/* Stores value into o's target; returns 0 or CLI_EXIT_USAGE. */
static int take_value(const char *cmd, const cli_opt *o, const char *value)
{
    switch (o->kind) {
    case CLI_FLAG:
        *(int *)o->target = 1;
        return 0;
    case CLI_STRING:
        *(const char **)o->target = value;
        return 0;
    case CLI_LONG:
        if (cli_parse_long(value, (long)o->min, (long)o->max, (long *)o->target) != 0)
            return cli_usage(cmd, o->bad, value);
        return 0;
    case CLI_DOUBLE:
        if (cli_parse_double(value, o->min, o->max, (double *)o->target) != 0 ||
            ((o->flags & CLI_POSITIVE) && !(*(double *)o->target > 0)))
            return cli_usage(cmd, o->bad, value);
        return 0;
    case CLI_CUSTOM:
        return o->parse(cmd, value, o->target);
    }
    return cli_usage(cmd, "option '--%s' is not understood", o->name);
}

/* getopt_long's tables for s: long options return 256 + their index. */
static void build_tables(const cli_spec *s, struct option *lo, char *shorts, size_t size)
{
    size_t k = 0;
    shorts[k++] = ':'; /* report a missing value as ':' */
    for (int i = 0; i < s->n_opts; i++) {
        const cli_opt *o = &s->opts[i];
        lo[i] = (struct option){o->name, o->kind == CLI_FLAG ? no_argument : required_argument,
                                NULL, 256 + i};
        if (o->short_name && k + 3 < size) {
            shorts[k++] = o->short_name;
            if (o->kind != CLI_FLAG)
                shorts[k++] = ':';
        }
    }
    lo[s->n_opts] = (struct option){"help", no_argument, NULL, 'h'};
    lo[s->n_opts + 1] = (struct option){NULL, 0, NULL, 0};
    shorts[k++] = 'h';
    shorts[k] = 0;
}

/* The table entry for what getopt_long returned, or NULL. */
static const cli_opt *find(const cli_spec *s, int c)
{
    if (c >= 256 && c < 256 + s->n_opts)
        return &s->opts[c - 256];
    for (int i = 0; i < s->n_opts; i++)
        if (s->opts[i].short_name && s->opts[i].short_name == c)
            return &s->opts[i];
    return NULL;
}

int cli_parse(const cli_spec *s, int argc, char **argv, int *next, const char **flagged)
{
    struct option lo[MAX_OPTS + 2];
    char shorts[2 * MAX_OPTS + 4];
    if (s->n_opts > MAX_OPTS)
        return cli_usage(s->cmd, "too many options in the table (at most %d)", MAX_OPTS);
    build_tables(s, lo, shorts, sizeof shorts);
    if (flagged)
        *flagged = NULL;
    unsigned char seen[MAX_OPTS] = {0};
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const cli_opt *o = find(s, c);
        if (c == 'h' && !o) {
            s->usage(stdout);
            return CLI_HELP;
        }
        if (c == ':')
            return cli_usage(s->cmd, "option '%s' needs a value", argv[optind - 1]);
        if (!o) {
            if (optopt && optopt < 256)
                return cli_usage(s->cmd, "unknown option '-%c'", optopt);
            return cli_usage(s->cmd, "unknown option '%s'", argv[optind - 1]);
        }
        /* Last-wins would silently drop a value the user typed. */
        if (seen[o - s->opts]++ && !(o->flags & CLI_MULTI))
            return cli_usage(s->cmd, "option '--%s' given twice", o->name);
        if (flagged && !*flagged && (o->flags & CLI_RECIPE))
            *flagged = o->name;
        int rc = take_value(s->cmd, o, optarg);
        if (rc)
            return rc;
    }
    if (!s->positional && optind < argc)
        return cli_usage(s->cmd, "unexpected argument '%s'", argv[optind]);
    *next = optind;
    return 0;
}

int cli_parse_dataset(const char *cmd, const char *value, void *target)
{
    if (!dn_class_names(value))
        return cli_usage(cmd, "unknown dataset '%s', expected mnist or fashion", value);
    *(const char **)target = value;
    return 0;
}

int cli_parse_index_list(const char *s, long max, long **v, size_t *n)
{
    if (!s || !*s)
        return -1;
    char buf[64];
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, p, len);
        buf[len] = 0;
        long x;
        if (cli_parse_long(buf, 0, max, &x) != 0)
            return -1;
        long *nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        (*v)[(*n)++] = x;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}
