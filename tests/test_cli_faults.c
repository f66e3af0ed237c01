/*
 * test_cli_faults.c - `digitnet train` when the machine fails it: a full
 * disk (a small tmpfs, mounted when the test runs as root), a file size
 * limit (ulimit -f), a read-only directory, and kill -9 at random points
 * of the save window, many times. Each must leave the previous model and
 * its metrics intact, say what went wrong with the documented exit status,
 * and leave no temporary file behind after the next run; a run killed
 * between writing the model and its metrics is completed by the next one.
 */
#define _GNU_SOURCE /* unshare */
#include "runs.h"
#include "test.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SMALL "--limit 32 --batch 32 --val 64 --threads 1 --data '%s'"
#define CRC_KEY "train.metrics_crc32"

static char out[1 << 16];

/* A trained model dir/model.safetensors (epochs epochs) and its metrics
 * file, in a new directory dir under the temporary one. */
static void model_in(const char *name, int epochs, char *dir, char *m, char *j, size_t size)
{
    t_tmppath(dir, size, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(m, size, "%s/model.safetensors", dir);
    snprintf(j, size, "%s.metrics.jsonl", m);
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs %d --out '%s'", t_mnist_dir(),
                   epochs, m);
    if (rc != 0)
        fail_msg("train exited %d: %s", rc, out);
}

static const char *const model_files[] = {"model.safetensors", "model.safetensors.metrics.jsonl",
                                          NULL};

/* Fails if dir holds anything but the model and its metrics file. */
static void only_model_files(const char *dir, const char *after)
{
    char others[4096];
    if (t_other_files(dir, model_files, others, sizeof others))
        fail_msg("after %s, %s holds more than the model and metrics: %s", after, dir, others);
}

static void read_all(const char *path, char **data, size_t *n)
{
    if (!(*data = t_read_file(path, n)))
        fail_msg("cannot read %s", path);
}

/* The run failed with exit 1 and a message holding why; the model and the
 * metrics file hold what they held; nothing else is in dir. */
static void failed_cleanly(int rc, const char *why, const char *dir, const char *m,
                           const char *j, const char *md, size_t mn, const char *jd, size_t jn)
{
    if (rc != 1 || !strstr(out, why))
        fail_msg("exit %d, expected 1 and '%s': %s", rc, why, out);
    if (!t_file_is(m, md, mn) || !t_file_is(j, jd, jn))
        fail_msg("the model or its metrics changed: %s", out);
    only_model_files(dir, why);
}

/* ------------------------------------------------------------------------ */
/* Mounts (root only)                                                       */
/* ------------------------------------------------------------------------ */

/* A private mount namespace for this process and its children, so that
 * the test's mounts vanish with it; skips the test unless root. */
static void need_mounts(void)
{
    static int done;
    if (done)
        return;
    if (geteuid() != 0) {
        print_message("skipped: mounting a small tmpfs needs root (CI runs as root)\n");
        skip();
    }
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        print_message("skipped: cannot make a private mount namespace: %s\n", strerror(errno));
        skip();
    }
    done = 1;
}

static void mount_tmpfs(const char *dir, int kib)
{
    char opts[64];
    snprintf(opts, sizeof opts, "size=%dk,mode=0755", kib);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0)
        fail_msg("mount tmpfs on %s: %s", dir, strerror(errno));
}

/* ------------------------------------------------------------------------ */
/* Full disk, file size limit, read-only directory                          */
/* ------------------------------------------------------------------------ */

static void test_full_disk(void **state)
{
    (void)state;
    t_need_mnist();
    need_mounts();
    char dir[600], m[700], j[800], src[700], sm[700], sj[700];
    model_in("full-src", 2, src, sm, sj, sizeof src);
    char *md, *jd;
    size_t mn, jn;
    read_all(sm, &md, &mn);
    read_all(sj, &jd, &jn);
    /* Room for the model but not for a second copy beside it. */
    t_tmppath(dir, sizeof dir, "full");
    assert_int_equal(mkdir(dir, 0755), 0);
    mount_tmpfs(dir, (int)(mn * 3 / 2 / 1024));
    snprintf(m, sizeof m, "%s/model.safetensors", dir);
    snprintf(j, sizeof j, "%s.metrics.jsonl", m);
    t_write_file(m, md, mn);
    t_write_file(j, jd, jn);
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs 2 --out '%s'", t_mnist_dir(), m);
    failed_cleanly(rc, "No space left on device", dir, m, j, md, mn, jd, jn);
    rc = t_run(out, sizeof out, "train --resume '%s' --epochs 3 --data '%s'", m, t_mnist_dir());
    failed_cleanly(rc, "No space left on device", dir, m, j, md, mn, jd, jn);
    assert_int_equal(umount2(dir, MNT_DETACH), 0);
    /* A new model on a disk too small for it: nothing at all is left. */
    mount_tmpfs(dir, 64);
    rc = t_run(out, sizeof out, "train " SMALL " --epochs 1 --out '%s'", t_mnist_dir(), m);
    if (rc != 1 || !strstr(out, "No space left on device"))
        fail_msg("exit %d, expected 1: %s", rc, out);
    char others[4096];
    if (t_other_files(dir, NULL, others, sizeof others))
        fail_msg("a failed first run left files: %s", others);
    assert_int_equal(umount2(dir, MNT_DETACH), 0);
    free(md);
    free(jd);
}

static void test_file_size_limit(void **state)
{
    (void)state;
    t_need_mnist();
    char dir[600], m[600], j[600], log[600], args[2048];
    model_in("fsize", 2, dir, m, j, sizeof dir);
    char *md, *jd;
    size_t mn, jn;
    read_all(m, &md, &mn);
    read_all(j, &jd, &jn);
    t_tmppath(log, sizeof log, "fsize.log");
    const char *const runs[] = {"train " SMALL " --epochs 2 --out '%s'",
                                "train --data '%s' --resume '%s' --epochs 3"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, runs[i], t_mnist_dir(), m);
        /* 100 KiB: the log fits, the model (640 KiB) does not. */
        int rc = t_run_to(args, NULL, log, 100 * 1024);
        char *text = t_read_file(log, NULL);
        snprintf(out, sizeof out, "%s", text ? text : "");
        free(text);
        if (rc == 128 + SIGXFSZ)
            fail_msg("'%s' was killed by SIGXFSZ: %s", args, out);
        failed_cleanly(rc, "File too large", dir, m, j, md, mn, jd, jn);
        assert_non_null(strstr(out, "ulimit -f"));
    }
    free(md);
    free(jd);
}

static void test_read_only_directory(void **state)
{
    (void)state;
    t_need_mnist();
    char dir[600], m[600], j[600];
    model_in("read-only", 1, dir, m, j, sizeof dir);
    /* Root writes through any mode bits: a read-only mount instead. Asked
     * before anything is allocated, since skip() does not return. */
    if (geteuid() == 0)
        need_mounts();
    char *md, *jd;
    size_t mn, jn;
    read_all(m, &md, &mn);
    read_all(j, &jd, &jn);
    const char *why = "Permission denied";
    if (geteuid() == 0) {
        mount_tmpfs(dir, (int)(mn / 1024) * 2 + 64);
        t_write_file(m, md, mn);
        t_write_file(j, jd, jn);
        assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
        why = "Read-only file system";
    } else {
        assert_int_equal(chmod(dir, 0555), 0);
    }
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs 1 --out '%s'", t_mnist_dir(), m);
    failed_cleanly(rc, why, dir, m, j, md, mn, jd, jn);
    assert_non_null(strstr(out, "cannot write the model file"));
    rc = t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 10 --logprobs-out "
               "'%s/lp.f32'", m, t_mnist_dir(), dir);
    failed_cleanly(rc, why, dir, m, j, md, mn, jd, jn);
    if (geteuid() == 0)
        assert_int_equal(umount2(dir, MNT_DETACH), 0);
    else
        chmod(dir, 0755);
    free(md);
    free(jd);
}

/* ------------------------------------------------------------------------ */
/* Killed while saving                                                      */
/* ------------------------------------------------------------------------ */

/* What a checkpoint records of its metrics file, as README describes it:
 * the CRC-32 of its lines, each without "seconds" and "images_per_s" and
 * written compactly with sorted keys; 8 hex digits, "" if unreadable. */
static void crc_of(const char *path, char hex[16])
{
    char *text = t_read_file(path, NULL);
    hex[0] = 0;
    if (!text)
        return;
    uLong crc = crc32(0, Z_NULL, 0);
    for (char *line = text, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
        nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        json_t *o = json_loadb(line, n, 0, NULL);
        json_object_del(o, "seconds");
        json_object_del(o, "images_per_s");
        char *c = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17))
                    : NULL;
        if (c)
            crc = crc32(crc, (const Bytef *)c, (uInt)strlen(c));
        else
            crc = crc32(crc, (const Bytef *)line, (uInt)n);
        free(c);
        json_decref(o);
    }
    snprintf(hex, 16, "%08lx", (unsigned long)crc);
    free(text);
}

/* The model at path must load; returns its completed epochs and puts the
 * CRC of the metrics it records into want ("" if none). */
static int load_checkpoint(const char *path, char want[16])
{
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    dn_error err = {0};
    dn_model *m = dn_model_load(path, &x, &err);
    if (!m)
        fail_msg("the model does not load: %s", err.msg);
    const char *e = dn_file_extras_get(&x, "train.epoch"), *c = dn_file_extras_get(&x, CRC_KEY);
    if (!e)
        fail_msg("%s lacks train.epoch", path);
    int epoch = atoi(e);
    snprintf(want, 16, "%s", c ? c : "");
    dn_file_extras_free(&x);
    dn_model_free(m);
    return epoch;
}

/* Fails unless the metrics file holds exactly epochs 1..n, one a line. */
static void epochs_are(const char *j, int n)
{
    char *text = t_read_file(j, NULL);
    assert_non_null(text);
    int k = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        json_int_t e = json_integer_value(json_object_get(o, "epoch"));
        json_decref(o);
        if (e != ++k)
            fail_msg("%s: line %d is epoch %lld", j, k, (long long)e);
    }
    if (k != n)
        fail_msg("%s has %d epochs, the model %d", j, k, n);
    free(text);
}

/* A staged metrics file of a killed run whose CRC is want. */
static int staged_with(const char *dir, const char *want)
{
    char names[8192], path[9000], crc[16];
    if (!t_other_files(dir, model_files, names, sizeof names))
        return 0;
    int found = 0;
    for (char *name = strtok(names, " "); name && !found; name = strtok(NULL, " ")) {
        if (!strstr(name, ".metrics.jsonl.") || !strstr(name, ".tmp"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        crc_of(path, crc);
        found = !strcmp(crc, want);
    }
    return found;
}

/* What kill_once found. */
typedef struct kill_counts {
    int saving;             /* a temporary file was left: killed while saving */
    int between;            /* between the model's and the metrics' rename */
} kill_counts;

/* Kills a run at a random moment; the model left must load and either
 * its metrics file or a staged one it records must be its history. */
static void kill_once(const char *args, const char *log, const char *m, const char *j,
                      const char *dir, unsigned *seed, kill_counts *k)
{
    pid_t pid = t_spawn(args, NULL, log, 0);
    if (!t_wait_for(log, "training ", 30)) {
        kill(pid, SIGKILL);
        t_wait(pid);
        fail_msg("training did not start");
    }
    t_sleep_ms(5 + (long)(rand_r(seed) % 150));
    kill(pid, SIGKILL);
    assert_int_equal(t_wait(pid), 128 + SIGKILL);
    char want[16], have[16], names[8192];
    int epochs = load_checkpoint(m, want);
    t_other_files(dir, model_files, names, sizeof names);
    k->saving += strstr(names, ".tmp") != NULL;
    crc_of(j, have);
    if (!strcmp(have, want) || !want[0]) {
        epochs_are(j, epochs);
        return;
    }
    if (!staged_with(dir, want))
        fail_msg("after a kill the metrics file does not belong to the model (epoch %d) and "
                 "no staged one does", epochs);
    k->between++;
}

static void test_kill_9_while_saving(void **state)
{
    (void)state;
    t_need_mnist();
    char dir[600], m[600], j[600], log[600], args[2048];
    model_in("killed", 2, dir, m, j, sizeof dir);
    t_tmppath(log, sizeof log, "killed.log");
    /* One batch of 32 and 64 evaluated per epoch: most of the time goes
     * to writing the 640 KiB checkpoint, so most kills land there. */
    const char *env = getenv("DN_TEST_KILLS");
    int kills = env && atoi(env) > 0 ? atoi(env) : 24;
    kill_counts k = {0, 0};
    unsigned seed = 9;
    for (int i = 0; i < kills; i++) {
        if (i % 2)
            snprintf(args, sizeof args, "train --data '%s' --resume '%s' --epochs 100000",
                     t_mnist_dir(), m);
        else
            snprintf(args, sizeof args, "train " SMALL " --epochs 100000 --out '%s'",
                     t_mnist_dir(), m);
        kill_once(args, log, m, j, dir, &seed, &k);
    }
    /* The next run completes or removes what the kills left. */
    char want[16], have[16];
    int epochs = load_checkpoint(m, want);
    int rc = t_run(out, sizeof out, "train --data '%s' --resume '%s' --epochs %d",
                   t_mnist_dir(), m, epochs + 1);
    if (rc != 0)
        fail_msg("the run after the kills exited %d: %s", rc, out);
    only_model_files(dir, "the run after the kills");
    assert_int_equal(load_checkpoint(m, want), epochs + 1);
    crc_of(j, have);
    assert_string_equal(have, want);
    epochs_are(j, epochs + 1);
    print_message("%d kills: %d while saving, %d of them between the model's and the "
                  "metrics' rename\n", kills, k.saving, k.between);
}

/* The window between the two renames, made by hand: the next run commits
 * the staged metrics the model records, removes dead writers' temporary
 * files, and leaves a live writer's and other names alone. */
static void test_next_run_completes_staged_metrics(void **state)
{
    (void)state;
    t_need_mnist();
    char dir[600], m[600], j[600], path[800];
    model_in("staged", 2, dir, m, j, sizeof dir);
    char *jd;
    size_t jn;
    read_all(j, &jd, &jn);
    long dead = (long)t_dead_pid(), live = (long)getpid();
    snprintf(path, sizeof path, "%s.%ld-abcdef.tmp", j, dead);
    t_write_file(path, jd, jn);
    t_write_file(j, jd, (size_t)(strchr(jd, '\n') + 1 - jd)); /* epoch 1 only */
    /* Half-written files of dead writers. */
    snprintf(path, sizeof path, "%s.%ld-ghijkl.tmp", m, dead);
    t_write_file(path, "partial", 7);
    snprintf(path, sizeof path, "%s.%ld-mnopqr.tmp", j, dead);
    t_write_file(path, "partial", 7);
    static const char *const kept[] = {"model.safetensors.%ld-stuvwx.tmp",
                                       "model.safetensors.backup.tmp",
                                       "model.safetensors.12-abc.tmp"};
    for (int i = 0; i < 3; i++) {
        char name[128];
        snprintf(name, sizeof name, kept[i], live);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        t_write_file(path, "keep", 4);
    }
    int rc = t_run(out, sizeof out, "train --data '%s' --resume '%s' --epochs 3", t_mnist_dir(),
                   m);
    if (rc != 0 || !strstr(out, "completed"))
        fail_msg("exit %d, expected 0 and 'completed': %s", rc, out);
    epochs_are(j, 3);
    char others[4096], expect[512];
    t_other_files(dir, model_files, others, sizeof others);
    for (int i = 0; i < 3; i++) {
        snprintf(expect, sizeof expect, kept[i], live);
        if (!strstr(others, expect))
            fail_msg("%s was removed (left: %s)", expect, others);
    }
    if (strstr(others, "abcdef") || strstr(others, "ghijkl") || strstr(others, "mnopqr"))
        fail_msg("a dead writer's file is left: %s", others);
    free(jd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_read_only_directory),
        cmocka_unit_test(test_kill_9_while_saving),
        cmocka_unit_test(test_next_run_completes_staged_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
