/*
 * train_progress.h - what `digitnet train` shows while it runs
 * (cli/train_progress.c).
 */
#ifndef DN_CLI_TRAIN_PROGRESS_H
#define DN_CLI_TRAIN_PROGRESS_H

#include "cli.h"

struct cli_train_files;

/* State of the progress display; the user pointer of the callback and of
 * the checkpoint writer (cli_train_save). */
typedef struct cli_train_run {
    int tty;                /* stdout is a terminal: live line */
    struct cli_train_files *files; /* the model, its metrics and lock */
    double last_draw;       /* seconds into the epoch of the last redraw */
    int drawn;              /* a live line is on the screen */
} cli_train_run;

/* The dn_train_callback: the live line after a batch (at most five times
 * a second), the epoch's line after an epoch, and its metrics line added
 * to the text written with the checkpoint. Asks the trainer to stop after
 * a Ctrl-C. */
int cli_train_progress(const dn_train_progress *p, void *user);

/* Installs the Ctrl-C handler, to stay until the command ends: a Ctrl-C
 * that comes while the checkpoint is written or the command winds up
 * exits 130 too. */
void cli_train_catch_sigint(void);

/* The two lines before training: data, sizes, threads; optimizer and
 * schedule. */
void cli_train_describe(const dn_train_config *c, const dn_model *m, size_t n_train,
                        size_t n_eval, const char *split, int threads);

#endif
