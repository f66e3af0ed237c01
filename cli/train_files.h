/*
 * train_files.h - the files a `digitnet train` run writes (cli/train_files.c):
 * the model and its metrics file, committed together, and the locks that
 * keep a second run off them.
 */
#ifndef DN_CLI_TRAIN_FILES_H
#define DN_CLI_TRAIN_FILES_H

#include "cli.h"
#include "digitnet_picture.h"

/* The metadata key of a checkpoint that ties it to its metrics file: the
 * CRC-32 (8 hex digits) of the metrics text written with it, timings left
 * out. */
#define CLI_METRICS_CRC_KEY "train.metrics_crc32"

typedef struct cli_train_files {
    const char *model;      /* --out */
    const char *metrics;    /* --metrics, or MODEL.metrics.jsonl */
    char lock_path[2][4200];/* MODEL.lock, METRICS.lock */
    int lock_fd[2];         /* -1 when not held */
    dn_text history;        /* the metrics file's text: lines kept from a
                               resumed run's file, then one per epoch */
} cli_train_files;

/* Sets up f for model and metrics (both kept as pointers), holding no
 * lock. */
void cli_train_files_init(cli_train_files *f, const char *model, const char *metrics);

/* Locks the model and the metrics file against other runs: flock on
 * MODEL.lock and METRICS.lock, created next to them (not on the files
 * themselves, which every checkpoint replaces by rename). Returns 0, or
 * prints "digitnet: M is being written by another 'digitnet train' (pid
 * N); ..." and returns CLI_EXIT_FAIL. */
int cli_train_lock(cli_train_files *f);

/* Tidies up after a run that was killed while saving, under the locks: a
 * staged metrics file that the model records as its own (the kill came
 * between the two renames) is committed; every other temporary file of a
 * dead writer of the model or metrics file is removed. Returns 0, or
 * CLI_EXIT_FAIL after one line. */
int cli_train_recover(cli_train_files *f);

/* Releases the locks and removes the lock files; frees the history. */
void cli_train_files_free(cli_train_files *f);

/* The dn_train_saver of `digitnet train` (user: its cli_train_run): stages
 * the metrics text next to the metrics file, writes the model with the
 * text's CRC-32 under CLI_METRICS_CRC_KEY, then commits the metrics file.
 * A failure before the model's rename leaves both files as they were; a
 * kill between the two renames is put right by cli_train_recover. */
dn_status cli_train_save(const dn_model *m, const char *path, dn_file_extras *x, void *user,
                         dn_error *err);

#endif
