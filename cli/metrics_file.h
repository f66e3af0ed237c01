/*
 * metrics_file.h - the metrics file (cli/metrics_file.c): what `train`
 * writes after every epoch, one JSON object a line
 *   {"epoch":1,"lr":1,"train_loss":0.326,"test_loss":0.088,"test_acc":0.9715,
 *    "test_acc_se":0.0017,"seconds":0.6,"images_per_s":116110,"split":"test"}
 * (null where a figure does not exist), and what `report` reads back.
 */
#ifndef DN_CLI_METRICS_FILE_H
#define DN_CLI_METRICS_FILE_H

#include "cli.h"

/* Opens the metrics file: truncated for a new run; for a resumed one the
 * lines of epochs up to `keep` stay and later ones (from a run that went
 * further than the checkpoint) go. NULL with the reason in why. */
FILE *cli_metrics_open(const char *path, int keep, char *why, size_t size);

/* Appends the line of a finished epoch (p->epoch_done) and flushes. */
void cli_metrics_write(FILE *f, const dn_train_progress *p);

/* One epoch of the metrics file; NAN where a figure is missing or null. */
typedef struct cli_epoch_row {
    double epoch, lr, train_loss, test_loss, test_acc, test_acc_se, seconds;
} cli_epoch_row;

/* Reads the metrics file; a later line for the same epoch (a resumed run)
 * replaces an earlier one. Returns the number of rows (*rows malloc'd,
 * sorted by epoch), or -1 after printing an error. *split gets the
 * evaluation split's name. */
int cli_metrics_read(const char *path, cli_epoch_row **rows, char *split, size_t split_size);

#endif
