/*
 * metrics_file.h - the metrics file (cli/metrics_file.c): what `train`
 * writes with every checkpoint, one JSON object per epoch and line
 *   {"epoch":1,"lr":1,"train_loss":0.326,"test_loss":0.088,"test_acc":0.9715,
 *    "test_acc_se":0.0017,"seconds":0.6,"images_per_s":116110,"split":"test"}
 * (null where a figure does not exist), and what `report` reads back.
 */
#ifndef DN_CLI_METRICS_FILE_H
#define DN_CLI_METRICS_FILE_H

#include "cli.h"
#include "digitnet_picture.h"

/* Appends to t the lines of the metrics file at path for epochs up to
 * keep: what a resumed run keeps (later epochs came from a run that went
 * further than its checkpoint; a torn line is dropped). A missing file
 * adds nothing. Returns 0, or CLI_EXIT_FAIL after one line when the file
 * cannot be read. */
int cli_metrics_kept(const char *path, int keep, dn_text *t);

/* Appends the line of a finished epoch (p->epoch_done) to t. `train` keeps
 * the whole file's text and writes it with each checkpoint
 * (cli/train_files.c). */
void cli_metrics_line(dn_text *t, const dn_train_progress *p);

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
