/*
 * train_files.c - the model file and its metrics file belong together:
 * `digitnet train` never empties the metrics file ahead of time, but keeps
 * its text in memory and writes it with each checkpoint, and two runs never
 * write the same files at once.
 *
 * The commit. For each checkpoint the metrics text is staged (written to a
 * temporary file and synced), the model is written with the text's CRC-32
 * in its metadata and renamed into place, and then the staged metrics file
 * is renamed onto the old one. The CRC leaves out the timings ("seconds",
 * "images_per_s"), so that two runs of one recipe still write the same
 * model file bit for bit. Before the model's rename both files are
 * the old ones; after the second rename both are new. A kill between the
 * two renames leaves the new model, the old metrics file and the staged
 * one whose CRC the model records: the next run commits it (roll forward).
 *
 * The lock. flock on MODEL.lock and METRICS.lock. It cannot be on the
 * model itself: every checkpoint renames a new inode onto that name, and a
 * lock on the old inode would no longer exclude anyone. A lock file is
 * removed by its holder while it still holds the lock; a run that locks a
 * file checks that the name still leads to it, and tries again if not.
 */
#include "train_files.h"

#include "files.h"
#include "train_progress.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

void cli_train_files_init(cli_train_files *f, const char *model, const char *metrics)
{
    memset(f, 0, sizeof *f);
    f->model = model;
    f->metrics = metrics;
    f->lock_fd[0] = f->lock_fd[1] = -1;
    snprintf(f->lock_path[0], sizeof f->lock_path[0], "%s.lock", model);
    snprintf(f->lock_path[1], sizeof f->lock_path[1], "%s.lock", metrics);
}

/* The pid a lock file records, or 0. */
static long holder_of(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return strtol(buf, NULL, 10);
}

/* Locks the file at path: its descriptor, or -1 with errno (EWOULDBLOCK:
 * another process holds it, its pid in *holder). */
static int take_lock(const char *path, long *holder)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            *holder = e == EWOULDBLOCK ? holder_of(fd) : 0;
            close(fd);
            errno = e;
            return -1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino) {
            /* For the message of a run that finds it taken. */
            char pid[32];
            int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            int told = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) == len;
            (void)told; /* the pid is only for messages */
            return fd;
        }
        close(fd); /* its holder removed it as we opened it: the next one */
    }
    errno = EAGAIN;
    return -1;
}

int cli_train_lock(cli_train_files *f)
{
    const char *files[2] = {f->model, f->metrics}, *flags[2] = {"--out", "--metrics"};
    for (int i = 0; i < 2; i++) {
        long holder = 0;
        if ((f->lock_fd[i] = take_lock(f->lock_path[i], &holder)) >= 0)
            continue;
        if (errno != EWOULDBLOCK)
            return cli_fail("%s: cannot lock it: %s", f->lock_path[i], strerror(errno));
        char who[64] = "";
        if (holder > 0)
            snprintf(who, sizeof who, " (pid %ld)", holder);
        return cli_fail("%s is being written by another 'digitnet train'%s; wait for it to "
                        "finish or choose another %s", files[i], who, flags[i]);
    }
    return 0;
}

void cli_train_files_free(cli_train_files *f)
{
    for (int i = 1; i >= 0; i--)
        if (f->lock_fd[i] >= 0) {
            unlink(f->lock_path[i]);
            close(f->lock_fd[i]);
            f->lock_fd[i] = -1;
        }
    dn_text_free(&f->history);
}

/* ------------------------------------------------------------------------ */
/* Recovery                                                                 */
/* ------------------------------------------------------------------------ */

/* The CRC-32 that ties a metrics text to its model: over each line with
 * its timings left out (a line that is not a JSON object as it is). */
static uLong history_crc(const char *text, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < len;) {
        const char *line = text + at, *nl = memchr(line, '\n', len - at);
        size_t n = nl ? (size_t)(nl - line) + 1 : len - at;
        at += n;
        json_t *o = json_loadb(line, n, 0, NULL);
        char *canon = NULL;
        if (json_is_object(o)) {
            json_object_del(o, "seconds");
            json_object_del(o, "images_per_s");
            canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        }
        json_decref(o);
        if (canon)
            crc = crc32(crc, (const Bytef *)canon, (uInt)strlen(canon));
        else
            crc = crc32(crc, (const Bytef *)line, (uInt)n);
        free(canon);
    }
    return crc;
}

/* history_crc of the file at path as 8 hex digits into hex; 0 if it
 * cannot be read. */
static int file_crc(const char *path, char *hex, size_t size)
{
    char why[256];
    FILE *in = cli_fopen_regular(path, NULL, why, sizeof why);
    if (!in)
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, mem);
    int ok = mem && !ferror(in);
    if (mem && fclose(mem) != 0)
        ok = 0;
    fclose(in);
    if (ok)
        snprintf(hex, size, "%08lx", (unsigned long)history_crc(text, len));
    free(text);
    return ok;
}

/* What the model at path records as its metrics file's CRC-32; 0 if it
 * records none (not a checkpoint of this version, not a model at all). */
static int model_wants(const char *path, char *hex, size_t size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    dn_error err = {0};
    dn_model *m = dn_model_load(path, &x, &err);
    const char *v = m ? dn_file_extras_get(&x, CLI_METRICS_CRC_KEY) : NULL;
    int found = v && strlen(v) == 8;
    if (found)
        snprintf(hex, size, "%s", v);
    dn_file_extras_free(&x);
    dn_model_free(m);
    return found;
}

/* The stale temporary files of path: the one whose CRC is want (if want
 * is not NULL and path's own CRC is not) is committed onto path, the
 * others removed. Returns 1 if one was committed, 0 if not, -1 after an
 * error line. */
static int tidy(const char *path, const char *want)
{
    char **stale;
    size_t n;
    dn_error err = {0};
    if (dn_file_stale(path, &stale, &n, &err) != DN_OK) {
        cli_fail_err(&err);
        return -1;
    }
    char have[16] = "", crc[16];
    if (want && file_crc(path, have, sizeof have) && !strcmp(have, want))
        want = NULL;
    int committed = 0;
    for (size_t i = 0; i < n; i++) {
        if (want && !committed && file_crc(stale[i], crc, sizeof crc) && !strcmp(crc, want)) {
            committed = dn_file_commit(stale[i], path, &err) == DN_OK;
            if (!committed)
                cli_fail_err(&err);
            continue;
        }
        unlink(stale[i]);
        free(stale[i]);
    }
    free(stale);
    return committed;
}

int cli_train_recover(cli_train_files *f)
{
    char want[16];
    int has_link = model_wants(f->model, want, sizeof want);
    int done = tidy(f->metrics, has_link ? want : NULL);
    if (done < 0 || tidy(f->model, NULL) < 0)
        return CLI_EXIT_FAIL;
    if (done)
        printf("completed %s: the run that wrote %s was stopped between writing the model "
               "and its metrics\n", f->metrics, f->model);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The commit                                                               */
/* ------------------------------------------------------------------------ */

dn_status cli_train_save(const dn_model *m, const char *path, dn_file_extras *x, void *user,
                         dn_error *err)
{
    cli_train_files *f = ((cli_train_run *)user)->files;
    const dn_text *t = &f->history;
    if (t->oom)
        return cli_error(err, DN_ERR_NOMEM, "%s: out of memory for its text", f->metrics);
    const char *text = t->s ? t->s : "";
    uLong crc = history_crc(text, t->len);
    if (x->n_meta >= DN_FILE_MAX_META)
        return cli_error(err, DN_ERR_ARG, "%s: no room for the metrics checksum in the "
                         "checkpoint's metadata", path);
    snprintf(x->meta[x->n_meta].key, sizeof x->meta[x->n_meta].key, "%s", CLI_METRICS_CRC_KEY);
    snprintf(x->meta[x->n_meta].value, sizeof x->meta[x->n_meta].value, "%08lx",
             (unsigned long)crc);
    x->n_meta++;
    char *staged;
    dn_status st = dn_file_stage(f->metrics, text, t->len, &staged, err);
    if (st)
        return st;
    if ((st = dn_model_save(m, path, x, err)) != DN_OK) {
        dn_file_discard(staged);
        return st;
    }
    return dn_file_commit(staged, f->metrics, err);
}
