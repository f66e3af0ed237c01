/*
 * paths.h - the files a command reads and writes, checked before anything
 * is written so that no output overwrites an input or another output
 * (cli/paths.c).
 */
#ifndef DN_CLI_PATHS_H
#define DN_CLI_PATHS_H

#include "cli.h"

/* A list of the files a command touches: each with what it is, for the
 * message ("--logprobs-out", "the model file"), and whether it is written. */
typedef struct cli_paths {
    struct cli_path {
        char *what, *path;
        int output;
    } *v;
    size_t n, cap;
    int oom;
} cli_paths;

/* Adds a file (what and path are copied). */
void cli_paths_add(cli_paths *p, int output, const char *what, const char *path);
/* Adds the image and label files of split ("train" or "test") of the
 * dataset in dir as inputs. */
void cli_paths_add_data(cli_paths *p, const char *dir, const char *split);
/* Refuses a command that would write one file twice or write over one it
 * reads: every output is compared with every other file of the list, by
 * device and inode when both exist (a symbolic or hard link is the same
 * file) and by resolved path when neither does. Returns 0, or prints
 * one line ("digitnet eval: --logprobs-out 'm' would overwrite the model
 * file 'm'; choose another path", or "... and ... are the same file") and
 * returns CLI_EXIT_USAGE (CLI_EXIT_FAIL when out of memory). Frees the
 * list either way. */
int cli_paths_check(const char *cmd, cli_paths *p);
void cli_paths_free(cli_paths *p);

/* Non-zero if a and b name the same file, as cli_paths_check compares. */
int cli_same_file(const char *a, const char *b);

#endif
