/*
 * options.h - the subcommands' options as tables: each command lists what
 * it takes (the options several commands share are defined once below)
 * and cli_parse reads argv against the list, checks every value and prints
 * one usage line for anything wrong.
 */
#ifndef DN_CLI_OPTIONS_H
#define DN_CLI_OPTIONS_H

#include "cli.h"

typedef enum cli_opt_kind {
    CLI_FLAG,       /* no value: *(int *)target = 1 */
    CLI_STRING,     /* *(const char **)target = the value */
    CLI_LONG,       /* *(long *)target, an integer in [min, max] */
    CLI_DOUBLE,     /* *(double *)target, a number in [min, max] */
    CLI_CUSTOM      /* parse(cmd, value, target) */
} cli_opt_kind;

/* Option flags. */
#define CLI_POSITIVE 1u /* CLI_DOUBLE: must also be > 0 */
#define CLI_RECIPE 2u   /* train: part of the recipe (refused with --resume) */
#define CLI_MULTI 4u    /* may be given more than once (each value is taken);
                           any other option given twice is refused */

typedef struct cli_opt {
    const char *name;       /* long name without "--" */
    char short_name;        /* 0 for none */
    cli_opt_kind kind;
    void *target;
    double min, max;        /* CLI_LONG, CLI_DOUBLE */
    const char *bad;        /* the usage line for a bad value; %s is the value */
    /* CLI_CUSTOM: stores the value, or prints a usage line and returns
     * CLI_EXIT_USAGE. */
    int (*parse)(const char *cmd, const char *value, void *target);
    unsigned flags;
} cli_opt;

/* What a subcommand accepts. */
typedef struct cli_spec {
    const char *cmd;            /* the subcommand, for messages */
    void (*usage)(FILE *f);     /* its help, for -h and --help */
    const cli_opt *opts;
    int n_opts;
    int positional;             /* non-zero if it takes arguments */
} cli_spec;

/* cli_parse's result after -h or --help (the help is on stdout). */
#define CLI_HELP (-1)

/* Parses argv[1..argc) against s. Returns 0 with *next set to the index of
 * the first argument that is not an option; CLI_HELP; or CLI_EXIT_USAGE
 * after printing one line (unknown option, missing or bad value, an
 * option given twice without CLI_MULTI, an argument where none is
 * taken). If flagged is not NULL it gets the name
 * of the first option given that has CLI_RECIPE, or NULL. */
int cli_parse(const cli_spec *s, int argc, char **argv, int *next, const char **flagged);

/* The number of entries of an option table. */
#define CLI_N(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* Custom parsers. */
/* --dataset: mnist or fashion; target is a const char *. */
int cli_parse_dataset(const char *cmd, const char *value, void *target);

/* A list of integers such as "0,1,2", each in [0, max]: appended to *v (n
 * of them, grown with realloc). Returns 0, or -1 on a bad list. */
int cli_parse_index_list(const char *s, long max, long **v, size_t *n);

/* Options that several commands take, defined once. */
#define CLI_OPT_MODEL(t) {.name = "model", .kind = CLI_STRING, .target = (t)}
#define CLI_OPT_DATA(t) {.name = "data", .kind = CLI_STRING, .target = (t)}
#define CLI_OPT_OUT(t) {.name = "out", .kind = CLI_STRING, .target = (t)}
#define CLI_OPT_JSON(t) {.name = "json", .kind = CLI_FLAG, .target = (t)}
#define CLI_OPT_RAW(t) {.name = "raw", .kind = CLI_FLAG, .target = (t)}
#define CLI_OPT_DATASET(t, f)                                                                \
    {.name = "dataset", .kind = CLI_CUSTOM, .target = (t), .parse = cli_parse_dataset,       \
     .flags = (f)}
#define CLI_OPT_THREADS(t)                                                                   \
    {.name = "threads", .kind = CLI_LONG, .target = (t), .min = 1, .max = 256,               \
     .bad = "--threads must be an integer in 1..256, got '%s'"}
#define CLI_OPT_LIMIT(t, f)                                                                  \
    {.name = "limit", .kind = CLI_LONG, .target = (t), .min = 1, .max = 1000000000,          \
     .bad = "--limit must be an integer >= 1, got '%s'", .flags = (f)}

#endif
