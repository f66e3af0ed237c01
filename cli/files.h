/*
 * files.h - the file system as the subcommands need it (cli/files.c).
 */
#ifndef DN_CLI_FILES_H
#define DN_CLI_FILES_H

#include "cli.h"

/* Creates the --out directory dir and its parents. Returns 0, or prints
 * "<dir>: cannot create the directory: <reason>" and returns CLI_EXIT_FAIL. */
int cli_make_out_dir(const char *dir);

/* 0 if a file can be created next to path (and path is not a directory):
 * creates and removes a temporary file there. Otherwise the exit code with
 * the reason in why: CLI_EXIT_USAGE when path is a directory or names a
 * directory that does not exist (the argument is wrong), CLI_EXIT_FAIL
 * when the system refuses (read-only, no permission, no space). */
int cli_check_writable(const char *path, char *why, size_t size);

/* Opens path for reading if it is a regular file, without waiting on a
 * FIFO. NULL with the reason in why ("No such file or directory", "it is
 * a FIFO, not a regular file"); *missing (may be NULL) is set when the
 * file does not exist. */
FILE *cli_fopen_regular(const char *path, int *missing, char *why, size_t size);
/* Non-zero if path is a directory. */
int cli_is_dir(const char *path);

/* The image files of dir (by extension: png jpg jpeg bmp gif pgm ppm pnm
 * tga), sorted by name, as malloc'd "dir/name" paths. */
dn_status cli_list_images(const char *dir, char ***paths, size_t *n, dn_error *err);
void cli_free_list(char **paths, size_t n);

#endif
