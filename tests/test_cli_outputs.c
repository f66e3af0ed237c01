/*
 * test_cli_outputs.c - what the digitnet command writes, and never loses:
 * outputs that name an input or each other are refused (exit 2) before
 * anything is written; a new `train` does not empty the metrics file of
 * the model it replaces, and a run that diverges keeps both; a second run
 * on the same files is refused by the lock; a repeated flag and
 * `--epochs 0` are usage errors; output lost on standard output is a
 * failure (exit 1) for every command.
 */
#include "runs.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A quick recipe: 64 images in 2 batches, 64 held out. */
#define SMALL "--limit 64 --batch 32 --val 64 --data '%s'"

static char out[1 << 16];

/* A file's bytes, to compare with later. */
typedef struct kept {
    char path[600];
    char *data;
    size_t size;
} kept;

static void keep(kept *k, const char *path)
{
    snprintf(k->path, sizeof k->path, "%s", path);
    k->data = t_read_file(path, &k->size);
    if (!k->data)
        fail_msg("cannot read %s", path);
}

/* Fails unless the file still holds what keep() saw; frees it. */
static void still(kept *k, const char *after)
{
    if (!t_file_is(k->path, k->data, k->size))
        fail_msg("%s changed (after: %s)", k->path, after);
    free(k->data);
    k->data = NULL;
}

/* One line naming the command, exit 2. */
static void refused(int rc, const char *what)
{
    if (rc != 2)
        fail_msg("%s: exit %d, expected 2: %s", what, rc, out);
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    if (lines != 1 || !strstr(out, "digitnet"))
        fail_msg("%s: expected one line naming digitnet: %s", what, out);
}

/* A trained model M with its metrics file, in the temporary directory. */
static void small_model(const char *name, int epochs, char *m, char *metrics, size_t size)
{
    t_tmppath(m, size, name);
    snprintf(metrics, size, "%s.metrics.jsonl", m);
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs %d --threads 2 --out '%s'",
                   t_mnist_dir(), epochs, m);
    if (rc != 0)
        fail_msg("train exited %d: %s", rc, out);
}

static void test_train_outputs_collide(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], j[600], data[700], link[700];
    small_model("collide.safetensors", 1, m, j, sizeof m);
    kept km, kj;
    const char *const same[] = {
        "--resume '%1$s' --metrics '%1$s'",           /* the checkpoint itself */
        "--resume '%1$s' --out '%1$s.b' --metrics '%1$s'",
        "--out '%1$s.c' --metrics '%1$s.c'",
        "--out '%1$s.d' --metrics '%1$s.d.lock'",      /* the model's lock file */
        "--resume '%1$s' --metrics '%2$s'",            /* the same through a symlink */
    };
    snprintf(link, sizeof link, "%s.link", m);
    assert_int_equal(symlink(m, link), 0);
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char args[2048];
        snprintf(args, sizeof args, same[i], m, link);
        keep(&km, m);
        keep(&kj, j);
        refused(t_run(out, sizeof out, "train %s --data '%s'", args, t_mnist_dir()), args);
        assert_true(strstr(out, "same file") || strstr(out, "would overwrite"));
        still(&km, args);
        still(&kj, args);
    }
    /* A data file as an output: the test's data directory holds links to
     * the real files, so that even a failure here could only replace a
     * link. */
    char dir[600];
    t_tmppath(dir, sizeof dir, "data-links");
    assert_int_equal(mkdir(dir, 0755), 0);
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char real[4096];
    assert_non_null(realpath(t_mnist_dir(), real));
    for (int i = 0; i < 4; i++) {
        char from[4200], to[700];
        snprintf(from, sizeof from, "%s/%s", real, names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    snprintf(data, sizeof data, "%s/t10k-labels-idx1-ubyte", dir);
    refused(t_run(out, sizeof out, "train --data '%s' --limit 64 --batch 32 --val 64 "
                  "--out '%s.e' --metrics '%s'", dir, m, data), "--metrics DATA");
    assert_non_null(strstr(out, "test labels"));
    struct stat st;
    assert_int_equal(lstat(data, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void test_eval_predict_show_report_outputs_collide(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], link[700], pic[700], dir[600], args[3000];
    t_tmppath(m, sizeof m, "fixture.safetensors");
    t_copy("tests/fixtures/mnist-model.safetensors", m);
    snprintf(link, sizeof link, "%s.link", m);
    assert_int_equal(symlink(m, link), 0);
    kept km;

    keep(&km, m);
    refused(t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 10 --logprobs-out "
                  "'%s'", m, t_mnist_dir(), m), "eval --logprobs-out MODEL");
    assert_non_null(strstr(out, "--logprobs-out"));
    refused(t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 10 --logprobs-out "
                  "'%s'", link, t_mnist_dir(), m), "eval --logprobs-out MODEL via a link");
    refused(t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 0 "
                  "--save-input '%s'", m, t_mnist_dir(), m), "predict --save-input MODEL");
    still(&km, "predict");

    /* --save-input FILE with two inputs writes FILE-0.png and FILE-1.png:
     * the second is an input. */
    t_tmppath(pic, sizeof pic, "seen-1.png");
    t_copy("tests/fixtures/digits/3-canvas.png", pic);
    t_tmppath(dir, sizeof dir, "seen.png");
    keep(&km, pic);
    refused(t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 0 '%s' "
                  "--save-input '%s'", m, t_mnist_dir(), pic, dir), "predict FILE-1.png");
    still(&km, "predict FILE-1.png");

    /* show: an earlier picture of the same directory as the input. */
    t_tmppath(dir, sizeof dir, "show");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(pic, sizeof pic, "%s/input.png", dir);
    t_copy("tests/fixtures/digits/3-canvas.png", pic);
    keep(&km, pic);
    refused(t_run(out, sizeof out, "show --model '%s' --out '%s' '%s'", m, dir, pic),
            "show input.png");
    still(&km, "show");

    /* report: the metrics file is the page it would write. */
    snprintf(pic, sizeof pic, "%s/index.html", dir);
    t_write_file(pic, "{\"epoch\":1}\n", 12);
    keep(&km, pic);
    snprintf(args, sizeof args, "report --model '%s' --data '%s' --limit 50 --out '%s' "
             "--metrics '%s'", m, t_mnist_dir(), dir, pic);
    refused(t_run(out, sizeof out, "%s", args), "report --metrics DIR/index.html");
    still(&km, "report");
    /* Different files are fine. */
    assert_int_equal(t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 10 "
                           "--logprobs-out '%s.f32'", m, t_mnist_dir(), m), 0);
}

static void test_repeated_flags_and_zero_epochs(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], j[600];
    small_model("twice.safetensors", 1, m, j, sizeof m);
    kept km, kj;
    keep(&km, m);
    keep(&kj, j);
    static const char *const twice[] = {
        "train --out '%s' --epochs 2 --epochs 3 --limit 64 --val 64 --data '%s'",
        "train --out '%s' --lr 0.5 --lr=0.1 --limit 64 --val 64 --data '%s'",
        "eval --model '%s' --limit 5 --limit 6 --data '%s'",
        "predict --model '%s' --raw --raw --data '%s' --mnist-index 0",
        "show --model '%s' --out x --out y --data '%s' --mnist-index 0",
    };
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        refused(t_run(out, sizeof out, twice[i], m, t_mnist_dir()), twice[i]);
        assert_non_null(strstr(out, "given twice"));
    }
    /* --mnist-index is documented to repeat. */
    assert_int_equal(t_run(out, sizeof out, "predict --model '%s' --data '%s' --mnist-index 0 "
                           "--mnist-index 1,2", m, t_mnist_dir()), 0);
    assert_non_null(strstr(out, "mnist test #2"));
    /* A new run of 0 epochs would replace a trained model with random
     * weights. */
    refused(t_run(out, sizeof out, "train " SMALL " --epochs 0 --out '%s'", t_mnist_dir(), m),
            "--epochs 0");
    assert_non_null(strstr(out, "--epochs 0"));
    still(&km, "--epochs 0");
    still(&kj, "--epochs 0");
    assert_int_equal(t_run(out, sizeof out, "train --help"), 0);
    assert_non_null(strstr(out, "given twice"));
}

/* A new run replaces the model and its metrics together: killed in its
 * first epoch, or diverged, it leaves both as they were. */
static void test_new_run_keeps_metrics_until_it_checkpoints(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], j[600], log[600], args[2048];
    small_model("history.safetensors", 2, m, j, sizeof m);
    kept km, kj;
    keep(&km, m);
    keep(&kj, j);
    t_tmppath(log, sizeof log, "history.log");
    snprintf(args, sizeof args, "train --data '%s' --limit 50000 --batch 32 --val 64 "
             "--epochs 2 --threads 2 --out '%s'", t_mnist_dir(), m);
    pid_t pid = t_spawn(args, NULL, log, 0);
    int started = t_wait_for(log, "training ", 30);
    t_sleep_ms(300);
    kill(pid, SIGKILL);
    t_wait(pid);
    assert_true(started);
    still(&km, "a new run killed in epoch 1");
    still(&kj, "a new run killed in epoch 1");

    keep(&km, m);
    keep(&kj, j);
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs 2 --eps 0 --out '%s'",
                   t_mnist_dir(), m);
    if (rc != 1 || !strstr(out, "diverged"))
        fail_msg("--eps 0: exit %d, expected 1 and 'diverged': %s", rc, out);
    assert_non_null(strstr(out, "NaN or infinite"));
    still(&km, "a diverged run");
    still(&kj, "a diverged run");
    /* The model still works. */
    assert_int_equal(t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 20", m,
                           t_mnist_dir()), 0);
}

static void test_second_run_on_the_same_files_is_refused(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], other[600], log[600], args[2048], lock[700];
    t_tmppath(m, sizeof m, "locked.safetensors");
    t_tmppath(other, sizeof other, "other.safetensors");
    t_tmppath(log, sizeof log, "locked.log");
    snprintf(args, sizeof args, "train --data '%s' --limit 50000 --batch 32 --val 64 "
             "--epochs 3 --threads 1 --out '%s'", t_mnist_dir(), m);
    pid_t pid = t_spawn(args, NULL, log, 0);
    if (!t_wait_for(log, "training ", 30)) {
        kill(pid, SIGKILL);
        t_wait(pid);
        fail_msg("training did not start");
    }
    char holder[32];
    snprintf(holder, sizeof holder, "pid %ld", (long)pid);
    const char *const second[] = {"--out '%s'", "--out '%s.x' --metrics '%s.metrics.jsonl'",
                                  "--resume '%s'"};
    for (int i = 0; i < 3; i++) {
        char flags[1400];
        snprintf(flags, sizeof flags, second[i], m, m);
        /* --resume takes the checkpoint's recipe, no recipe flags. */
        int rc = i < 2 ? t_run(out, sizeof out, "train " SMALL " %s", t_mnist_dir(), flags)
                       : t_run(out, sizeof out, "train --data '%s' %s", t_mnist_dir(), flags);
        if (rc != 1 || !strstr(out, "another 'digitnet train'") || !strstr(out, holder))
            fail_msg("second run '%s': exit %d, expected 1 naming %s: %s", flags, rc, holder,
                     out);
    }
    kill(pid, SIGINT);
    assert_int_equal(t_wait(pid), 130);
    /* The lock files go with the run; the files are whole. */
    snprintf(lock, sizeof lock, "%s.lock", m);
    assert_int_not_equal(access(lock, F_OK), 0);
    snprintf(lock, sizeof lock, "%s.metrics.jsonl.lock", m);
    assert_int_not_equal(access(lock, F_OK), 0);
    assert_int_equal(t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 20", m,
                           t_mnist_dir()), 0);
}

/* Every command, its standard output on a full device: exit 1 with a
 * message, not 0. */
static void test_standard_output_errors_exit_1(void **state)
{
    (void)state;
    t_need_mnist();
    char m[600], j[600], err[600], dir[600], args[3000];
    small_model("stdout.safetensors", 1, m, j, sizeof m);
    t_tmppath(err, sizeof err, "stdout.err");
    t_tmppath(dir, sizeof dir, "stdout-pages");
    const char *const cmds[] = {
        "--help",
        "--version",
        "shapes",
        "info --data '%2$s'",
        "eval --model '%1$s' --data '%2$s' --limit 50",
        "eval --model '%1$s' --data '%2$s' --limit 50 --json",
        "predict --model '%1$s' --data '%2$s' --mnist-index 0,1",
        "show --model '%1$s' --data '%2$s' --mnist-index 0 --out '%3$s'",
        "report --model '%1$s' --data '%2$s' --limit 50 --out '%3$s'",
        "train --data '%2$s' --limit 64 --batch 32 --val 64 --epochs 1 --out '%1$s.new'",
        "train --help",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        snprintf(args, sizeof args, cmds[i], m, t_mnist_dir(), dir);
        int rc = t_run_to(args, "/dev/full", err, 0);
        char *text = t_read_file(err, NULL);
        if (rc != 1 || !text || !strstr(text, "standard output"))
            fail_msg("'%s' > /dev/full: exit %d, expected 1 and a message: %s", args, rc,
                     text ? text : "");
        free(text);
    }
}

/* A metrics file that is a FIFO: refused at once, not waited on. */
static void test_metrics_fifo_refused(void **state)
{
    (void)state;
    char m[600], fifo[600], log[600], args[2048];
    t_tmppath(m, sizeof m, "fifo-model.safetensors");
    t_copy("tests/fixtures/mnist-model.safetensors", m);
    t_tmppath(fifo, sizeof fifo, "metrics.fifo");
    t_tmppath(log, sizeof log, "fifo.log");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    snprintf(args, sizeof args, "report --model '%s' --metrics '%s' --out '%s.d'", m, fifo, m);
    int rc = t_wait_within(t_spawn(args, NULL, log, 0), 10);
    char *text = t_read_file(log, NULL);
    if (rc != 1 || !text || !strstr(text, "FIFO"))
        fail_msg("report --metrics FIFO: exit %d (-2: hung), expected 1: %s", rc,
                 text ? text : "");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_outputs_collide),
        cmocka_unit_test(test_eval_predict_show_report_outputs_collide),
        cmocka_unit_test(test_repeated_flags_and_zero_epochs),
        cmocka_unit_test(test_new_run_keeps_metrics_until_it_checkpoints),
        cmocka_unit_test(test_second_run_on_the_same_files_is_refused),
        cmocka_unit_test(test_standard_output_errors_exit_1),
        cmocka_unit_test(test_metrics_fifo_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
