/*
 * util.c - error lines, strict number parsing, default paths and the few
 * formats every command prints the same way.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("digitnet: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_FAIL;
}

int cli_fail_err(const dn_error *err)
{
    return cli_fail("%s", err->msg[0] ? err->msg : dn_status_str(err->status));
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "digitnet %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'digitnet %s --help')\n", cmd);
    return CLI_EXIT_USAGE;
}

dn_status cli_error(dn_error *err, dn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = st;
    return st;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

const char *cli_data_dir(const char *dataset, const char *explicit_dir)
{
    if (explicit_dir && *explicit_dir)
        return explicit_dir;
    if (dataset && dataset[0] == 'f')
        return CLI_DEFAULT_FASHION;
    const char *env = getenv("DIGITNET_DATA");
    return env && *env ? env : CLI_DEFAULT_DATA;
}

const char *cli_model_path(const char *explicit_path)
{
    if (explicit_path && *explicit_path)
        return explicit_path;
    const char *env = getenv("DIGITNET_MODEL");
    return env && *env ? env : CLI_DEFAULT_MODEL;
}

int cli_stdout_is_tty(void)
{
    return isatty(STDOUT_FILENO);
}

const char *cli_class_label(const char *dataset, int c, char *buf, size_t size)
{
    const char *const *names = dn_class_names(dataset);
    if (names && c >= 0 && c < 10 && strcmp(dataset, "mnist") != 0)
        snprintf(buf, size, "%d %s", c, names[c]);
    else
        snprintf(buf, size, "%d", c);
    return buf;
}

const char *cli_fmt_logp(char *buf, size_t size, float v)
{
    snprintf(buf, size, "%.4f", v);
    if (!strcmp(buf, "-0.0000"))
        snprintf(buf, size, "0.0000");
    return buf;
}
