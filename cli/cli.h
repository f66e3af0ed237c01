/*
 * cli.h - what the subcommands of the digitnet command share.
 *
 * Exit codes: 0 success, 1 failure (bad file, bad data, a write error,
 * standard output included), 2 usage error (unknown option, bad value, an
 * option given twice, an output that is an input), 130 interrupted by
 * Ctrl-C.
 */
#ifndef DN_CLI_H
#define DN_CLI_H

#include "digitnet.h"

#include <stdio.h>

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_INTERRUPTED 130

/* Default paths; DIGITNET_DATA and DIGITNET_MODEL override them. */
#define CLI_DEFAULT_DATA "data/mnist"
#define CLI_DEFAULT_FASHION "/usr/share/datasets/fashion-mnist"
#define CLI_DEFAULT_MODEL "digitnet.safetensors"

/* Subcommands: argv[0] is the subcommand's name. */
int cmd_info(int argc, char **argv);
int cmd_shapes(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* "digitnet: <message>" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "digitnet: <msg>" for a library error; returns CLI_EXIT_FAIL. */
int cli_fail_err(const dn_error *err);
/* "digitnet CMD: <message> (see 'digitnet CMD --help')" on stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills err (status and one line) as the library does, for errors found
 * in the command; returns st. */
dn_status cli_error(dn_error *err, dn_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Strict number parsing: the whole string must be a number within
 * [min, max]. Return 0 on success, -1 otherwise. */
int cli_parse_long(const char *s, long min, long max, long *out);
int cli_parse_double(const char *s, double min, double max, double *out);

/* The data directory for a dataset name ("mnist" or "fashion"), honouring
 * an explicit --data value and DIGITNET_DATA (for mnist). */
const char *cli_data_dir(const char *dataset, const char *explicit_dir);
/* The model path, honouring an explicit --model and DIGITNET_MODEL. */
const char *cli_model_path(const char *explicit_path);

/* Non-zero when stdout is a terminal (for colours and live progress). */
int cli_stdout_is_tty(void);

/* The label of class c of a dataset for output: "7" for digits, "7
 * Sneaker" for Fashion-MNIST. Returns buf. */
const char *cli_class_label(const char *dataset, int c, char *buf, size_t size);

/* A log-probability as the lecture prints it: "%.4f", without a minus sign
 * on zero ("0.0000", not "-0.0000"). Returns buf. */
const char *cli_fmt_logp(char *buf, size_t size, float v);

#endif
