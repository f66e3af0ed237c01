/*
 * test_cli_train.c - `digitnet train` and `digitnet eval` as a user runs
 * them: bad flags (exit 2, the existing model file untouched), a small run
 * with its metrics file, bit-identical results across thread counts and an
 * interrupted-then-resumed run, Ctrl-C (exit 130 with a valid checkpoint),
 * and the evaluation report.
 */
#include "test.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A quick recipe: 128 images in 4 batches, 64 held out for validation. */
#define SMALL "--limit 128 --batch 32 --val 64 --data '%s'"

static char out[1 << 16];

static void test_bad_flags_exit_2_and_keep_model(void **state)
{
    (void)state;
    t_need_mnist();
    char model[512], cmd[2048];
    t_tmppath(model, sizeof model, "existing.safetensors");
    static const char original[] = "not really a model, but it must stay as it is";
    t_write_file(model, original, sizeof original);
    static const char *const bad[] = {
        "--bogus",
        "--epochs -1",
        "--epochs many",
        "--batch 0",
        "--lr -1",
        "--lr",
        "--optim rmsprop",
        "--schedule linear",
        "--preset fastest",
        "--betas 0.9",
        "--momentum 0.9",            /* momentum is for sgd */
        "--optim sgd --nesterov",    /* nesterov needs momentum */
        "--threads 0",
        "--arch 'conv 8 k3, bogus 3'",
        "--data /nonexistent/mnist",
        "--resume /dev/null --lr 0.5",
        "--val 60000",
        "stray-argument",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "train --data '%s' --out '%s' %s", t_mnist_dir(), model,
                 bad[i]);
        if (strstr(bad[i], "--data "))
            snprintf(cmd, sizeof cmd, "train --out '%s' %s", model, bad[i]);
        int rc = t_run(out, sizeof out, "%s", cmd);
        if (rc != 2)
            fail_msg("'%s' exited %d, expected 2: %s", bad[i], rc, out);
        /* One clear line. */
        assert_non_null(strstr(out, "digitnet"));
        int newlines = 0;
        for (const char *c = out; *c; c++)
            newlines += *c == '\n';
        if (newlines != 1)
            fail_msg("'%s' printed %d lines, expected one: %s", bad[i], newlines, out);
        size_t n;
        char *now = t_read_file(model, &n);
        assert_non_null(now);
        assert_int_equal(n, sizeof original);
        assert_memory_equal(now, original, n);
        free(now);
    }
    /* An unwritable output path: its directory does not exist. */
    char bad_out[600];
    snprintf(bad_out, sizeof bad_out, "%s/no/such/dir/m.safetensors", t_tmpdir());
    assert_int_equal(t_run(out, sizeof out, "train --data '%s' --out '%s'", t_mnist_dir(),
                           bad_out),
                     2);
    assert_non_null(strstr(out, "cannot write"));
    assert_int_equal(t_run(out, sizeof out, "train --help"), 0);
    assert_non_null(strstr(out, "examples:"));
}

/* Reads a whole model file; fails the test if it is missing. */
static char *slurp(const char *path, size_t *n)
{
    char *s = t_read_file(path, n);
    if (!s)
        fail_msg("cannot read %s", path);
    return s;
}

static void test_small_run_metrics_threads_and_resume(void **state)
{
    (void)state;
    t_need_mnist();
    char a[512], b[512], metrics[600];
    t_tmppath(a, sizeof a, "a.safetensors");
    t_tmppath(b, sizeof b, "b.safetensors");
    int rc = t_run(out, sizeof out, "train " SMALL " --epochs 2 --threads 2 --out '%s'",
                   t_mnist_dir(), a);
    if (rc != 0)
        fail_msg("train exited %d: %s", rc, out);
    assert_non_null(strstr(out, "epoch  2/2"));
    assert_non_null(strstr(out, "val acc"));
    assert_non_null(strstr(out, "+-"));

    /* The metrics file: one object per epoch with exactly these keys. */
    snprintf(metrics, sizeof metrics, "%s.metrics.jsonl", a);
    size_t n;
    char *text = slurp(metrics, &n);
    static const char *const keys[] = {"epoch", "lr", "train_loss", "test_loss", "test_acc",
                                       "test_acc_se", "seconds", "images_per_s", "split"};
    char *line = text;
    int lines = 0;
    for (char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = 0;
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (!json_is_object(j))
            fail_msg("metrics line %d is not a JSON object: %s", lines + 1, line);
        assert_int_equal(json_object_size(j), sizeof keys / sizeof keys[0]);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            assert_non_null(json_object_get(j, keys[k]));
        assert_int_equal(json_integer_value(json_object_get(j, "epoch")), lines + 1);
        assert_string_equal(json_string_value(json_object_get(j, "split")), "val");
        double acc = json_number_value(json_object_get(j, "test_acc"));
        double se = json_number_value(json_object_get(j, "test_acc_se"));
        assert_true(acc >= 0 && acc <= 1);
        assert_float_equal(se, sqrt(acc * (1 - acc) / 64), 1e-5);
        assert_float_equal(json_number_value(json_object_get(j, "lr")), lines ? 0.7 : 1.0,
                           1e-12);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 2);
    free(text);

    /* One thread, stopped after epoch 1, resumed to 2: the same file. */
    rc = t_run(out, sizeof out, "train " SMALL " --epochs 1 --threads 1 --out '%s'",
               t_mnist_dir(), b);
    assert_int_equal(rc, 0);
    rc = t_run(out, sizeof out, "train --resume '%s' --epochs 2 --threads 1 --data '%s'", b,
               t_mnist_dir());
    if (rc != 0)
        fail_msg("resume exited %d: %s", rc, out);
    assert_non_null(strstr(out, "resuming"));
    size_t na, nb;
    char *fa = slurp(a, &na), *fb = slurp(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
    /* The resumed run's metrics file holds both epochs. */
    snprintf(metrics, sizeof metrics, "%s.metrics.jsonl", b);
    text = slurp(metrics, &n);
    assert_non_null(strstr(text, "{\"epoch\":1,"));
    assert_non_null(strstr(text, "{\"epoch\":2,"));
    free(text);

    /* eval: the report, the same for 1 and 2 threads and any batch. */
    rc = t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 300 --json --threads 1 "
               "--misclassified 3", a, t_mnist_dir());
    assert_int_equal(rc, 0);
    char *one = strdup(out);
    rc = t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 300 --json --threads 2 "
               "--batch 7 --misclassified 3", a, t_mnist_dir());
    assert_int_equal(rc, 0);
    assert_string_equal(one, out);
    free(one);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 300);
    json_t *cm = json_object_get(j, "confusion");
    assert_int_equal(json_array_size(cm), 10);
    json_int_t total = 0, diag = 0;
    for (size_t t = 0; t < 10; t++)
        for (size_t p = 0; p < 10; p++) {
            json_int_t v = json_integer_value(json_array_get(json_array_get(cm, t), p));
            total += v;
            if (t == p)
                diag += v;
        }
    assert_int_equal(total, 300);
    assert_int_equal(diag, json_integer_value(json_object_get(j, "correct")));
    assert_float_equal(json_number_value(json_object_get(j, "accuracy")), diag / 300.0, 1e-9);
    assert_int_equal(json_array_size(json_object_get(j, "per_class")), 10);
    json_t *mis = json_object_get(j, "misclassified");
    assert_true(json_array_size(mis) == 3 || (size_t)(300 - diag) < 3);
    json_decref(j);

    rc = t_run(out, sizeof out, "eval --model '%s' --data '%s' --limit 300", a, t_mnist_dir());
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "confusion matrix"));
    assert_non_null(strstr(out, "precision"));
    assert_non_null(strstr(out, "+-"));
}

static void test_eval_missing_model(void **state)
{
    (void)state;
    char missing[512];
    t_tmppath(missing, sizeof missing, "missing.safetensors");
    int rc = t_run(out, sizeof out, "eval --model '%s' --data '%s'", missing, t_mnist_dir());
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "digitnet train"));
    assert_int_equal(t_run(out, sizeof out, "eval --bogus"), 2);
}

/* Starts `digitnet train ARGS` with stdout and stderr to log; returns the
 * pid. */
static pid_t spawn_train(const char *args, const char *log)
{
    const char *bin = getenv("DN_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s train %s >'%s' 2>&1 </dev/null",
             bin && *bin ? bin : "./digitnet", args, log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until the log shows the training header (the data is loaded and
 * training is about to start); 0 on timeout. */
static int wait_for_start(const char *log, double seconds)
{
    for (double t = 0; t < seconds; t += 0.02) {
        char *s = t_read_file(log, NULL);
        int started = s && strstr(s, "training ") != NULL;
        free(s);
        if (started)
            return 1;
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    return 0;
}

/* eval --logprobs-out writes (N, 10) float32 log-probabilities that agree
 * with what predict prints for the same test images. */
static void test_eval_logprobs_out(void **state)
{
    (void)state;
    t_need_mnist();
    char path[512], text[16384];
    t_tmppath(path, sizeof path, "logp.f32");
    assert_int_equal(t_run(text, sizeof text, "eval --model tests/fixtures/mnist-model.safetensors "
                                            "--data '%s' --limit 3 --logprobs-out '%s'",
                           t_mnist_dir(), path), 0);
    size_t size = 0;
    char *raw = t_read_file(path, &size);
    assert_non_null(raw);
    assert_int_equal(size, 3 * 10 * sizeof(float));
    float lp[30];
    memcpy(lp, raw, sizeof lp);
    free(raw);

    assert_int_equal(t_run(text, sizeof text, "predict --model tests/fixtures/mnist-model.safetensors "
                                            "--data '%s' --mnist-index 0,1,2 --json",
                           t_mnist_dir()), 0);
    const char *line = text;
    for (int i = 0; i < 3; i++) {
        json_error_t jerr;
        json_t *o = json_loadb(line, strcspn(line, "\n"), 0, &jerr);
        assert_non_null(o);
        json_t *arr = json_object_get(o, "log_probs");
        assert_int_equal(json_array_size(arr), 10);
        double sum = 0;
        for (int k = 0; k < 10; k++) {
            assert_float_equal(lp[i * 10 + k], json_real_value(json_array_get(arr, k)), 1e-4);
            sum += exp(lp[i * 10 + k]);
        }
        assert_float_equal(sum, 1.0, 1e-5);
        json_decref(o);
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
}

static void test_ctrl_c_writes_checkpoint_exit_130(void **state)
{
    (void)state;
    t_need_mnist();
    char model[512], log[512], args[2048];
    t_tmppath(model, sizeof model, "interrupted.safetensors");
    t_tmppath(log, sizeof log, "interrupted.log");
    /* Far more work than the test waits for. */
    snprintf(args, sizeof args, "--data '%s' --limit 50000 --val 64 --batch 32 --epochs 3 "
             "--threads 2 --out '%s'", t_mnist_dir(), model);
    pid_t pid = spawn_train(args, log);
    if (!wait_for_start(log, 30)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("training did not start");
    }
    nanosleep(&(struct timespec){0, 300000000}, NULL);
    assert_int_equal(kill(pid, SIGINT), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char *text = t_read_file(log, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 130)
        fail_msg("expected exit 130, got status %d: %s", status, text ? text : "");
    assert_non_null(strstr(text, "--resume"));
    free(text);

    /* The checkpoint is a valid model file that records where it stopped. */
    dn_file_extras x;
    memset(&x, 0, sizeof x);
    dn_error err = {0};
    dn_model *m = dn_model_load(model, &x, &err);
    if (!m)
        fail_msg("checkpoint: %s", err.msg);
    dn_train_config c;
    dn_train_defaults(&c);
    int done = -1;
    assert_int_equal(dn_train_config_from_checkpoint(&x, &c, &done, &err), DN_OK);
    assert_int_equal(done, 0);
    assert_int_equal(c.batch, 32);
    assert_int_equal(c.limit, 50000);
    const char *batch = dn_file_extras_get(&x, "train.batch");
    assert_non_null(batch);
    assert_true(atoi(batch) >= 1);
    dn_file_extras_free(&x);
    dn_model_free(m);

    /* A second Ctrl-C does not wait for the batch. */
    char log2[512];
    t_tmppath(log2, sizeof log2, "twice.log");
    pid = spawn_train(args, log2);
    if (!wait_for_start(log2, 30)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("training did not start");
    }
    nanosleep(&(struct timespec){0, 200000000}, NULL);
    kill(pid, SIGINT);
    nanosleep(&(struct timespec){0, 10000000}, NULL);
    kill(pid, SIGINT);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 130) {
        text = t_read_file(log2, NULL);
        fail_msg("two Ctrl-C: expected exit 130, got status 0x%x: %s", (unsigned)status,
                 text ? text : "");
    }
}

/* For t_in_child: runs the digitnet arguments arg, output into msg. */
static int child_run(void *arg, char *msg, size_t size)
{
    return t_run(msg, size, "%s", (const char *)arg);
}

/* A FIFO given as the model is refused at once; it was opened and waited
 * on forever. */
static void test_fifo_model_refused(void **state)
{
    (void)state;
    char fifo[512], args[1200], msg[2048];
    t_tmppath(fifo, sizeof fifo, "model.fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "eval --model '%s' --data '%s'", fifo, t_mnist_dir());
    int rc = t_in_child(child_run, args, 20, NULL, msg, sizeof msg);
    if (rc < 0) {
        /* It hung: let the stuck reader go, so that it does not outlive
         * the test. */
        int fd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0)
            close(fd);
    }
    if (rc != 1 || !strstr(msg, fifo) || !strstr(msg, "FIFO"))
        fail_msg("eval --model FIFO: wanted exit 1 naming the FIFO, got %d: %s", rc, msg);
}

/* Saves m with extras x to path after applying one edit to a metadata
 * value (key, value) or nothing (key NULL). */
static void save_variant(const dn_model *m, dn_file_extras *x, const char *path,
                         const char *key, const char *value)
{
    char keep[1024] = "";
    int at = -1;
    for (int i = 0; key && i < x->n_meta; i++)
        if (!strcmp(x->meta[i].key, key))
            at = i;
    if (key) {
        assert_true(at >= 0);
        snprintf(keep, sizeof keep, "%s", x->meta[at].value);
        snprintf(x->meta[at].value, sizeof x->meta[at].value, "%s", value);
    }
    dn_error err = {0};
    if (dn_model_save(m, path, x, &err) != DN_OK)
        fail_msg("dn_model_save: %s", err.msg);
    if (key)
        snprintf(x->meta[at].value, sizeof x->meta[at].value, "%s", keep);
}

/* Checkpoints with corrupt values: exit 1 naming the file and the key (a
 * bad file), not exit 2 pointing at flags nobody gave. */
static void test_bad_checkpoint_exit_1(void **state)
{
    (void)state;
    char ck[512], bad[512];
    t_tmppath(ck, sizeof ck, "ck.safetensors");
    t_tmppath(bad, sizeof bad, "ck-bad.safetensors");
    assert_int_equal(t_run(out, sizeof out, "train " SMALL " --epochs 1 --threads 1 --out '%s'",
                           t_mnist_dir(), ck),
                     0);
    dn_error err = {0};
    dn_file_extras x;
    dn_model *m = dn_model_load(ck, &x, &err);
    if (!m)
        fail_msg("dn_model_load: %s", err.msg);
    const char *cfg = dn_file_extras_get(&x, "train.config");
    assert_non_null(cfg);
    char neg_lr[1024];
    const char *lr = strstr(cfg, "\"lr\":1.0");
    assert_non_null(lr);
    snprintf(neg_lr, sizeof neg_lr, "%.*s\"lr\":-1.0%s", (int)(lr - cfg), cfg,
             lr + strlen("\"lr\":1.0"));

    static const struct {
        const char *key, *phrase;
    } cases[] = {
        {"train.epoch", "\"train.epoch\" is \"99999999999\""},
        {"train.config", "learning rate must be >= 0"},
        {"train.batch", "\"train.batch\" is \"x\""},
    };
    const char *values[] = {"99999999999", neg_lr, "x"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        save_variant(m, &x, bad, cases[i].key, values[i]);
        int rc = t_run(out, sizeof out, "train --resume '%s' --epochs 3 --data '%s'", bad,
                       t_mnist_dir());
        if (rc != 1 || !strstr(out, bad) || !strstr(out, cases[i].phrase) ||
            strstr(out, "--help"))
            fail_msg("resume with bad %s: wanted exit 1 naming the file and '%s', got %d: %s",
                     cases[i].key, cases[i].phrase, rc, out);
    }

    /* NaN in the optimizer state: written as a marker value, then patched
     * in the file (save refuses NaN), with the checksum key renamed so
     * that only the value is wrong. */
    float *sq = NULL;
    for (int i = 0; i < x.n_tensors; i++)
        if (!strcmp(x.tensors[i].name, "optim.square_avg"))
            sq = x.tensors[i].data;
    assert_non_null(sq);
    const float marker = 1234567.0f, nan = NAN;
    sq[7] = marker;
    save_variant(m, &x, bad, NULL, NULL);
    size_t n;
    char *b = t_read_file(bad, &n);
    assert_non_null(b);
    char *sum = strstr(b + 8, "\"checksum\":");
    assert_non_null(sum);
    memcpy(sum, "\"checksun\":", strlen("\"checksun\":"));
    size_t hit = 8;
    while (hit + 4 <= n && memcmp(b + hit, &marker, 4) != 0)
        hit++;
    assert_true(hit + 4 <= n);
    memcpy(b + hit, &nan, 4);
    t_write_file(bad, b, n);
    free(b);
    int rc = t_run(out, sizeof out, "train --resume '%s' --epochs 3 --data '%s'", bad,
                   t_mnist_dir());
    if (rc != 1 || !strstr(out, bad) || !strstr(out, "optim.square_avg") || !strstr(out, "NaN"))
        fail_msg("resume with NaN optimizer state: wanted exit 1 naming the tensor, got %d: %s",
                 rc, out);
    dn_file_extras_free(&x);
    dn_model_free(m);
}

/* A spec that does not end in 10 log-probabilities is a bad --arch: exit
 * 2 before anything is written. */
static void test_arch_not_a_classifier(void **state)
{
    (void)state;
    char model[512], metrics[600];
    t_tmppath(model, sizeof model, "keep.safetensors");
    snprintf(metrics, sizeof metrics, "%s.metrics.jsonl", model);
    static const char original[] = "an earlier model";
    static const char history[] = "{\"epoch\":1}\n";
    t_write_file(model, original, sizeof original);
    t_write_file(metrics, history, strlen(history));
    static const char *const specs[] = {"conv 8, relu", "flatten, fc 10",
                                        "flatten, fc 12, logsoftmax"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        int rc = t_run(out, sizeof out, "train " SMALL " --epochs 1 --arch '%s' --out '%s'",
                       t_mnist_dir(), specs[i], model);
        if (rc != 2 || !strstr(out, "10 log-probabilities"))
            fail_msg("--arch '%s': wanted exit 2, got %d: %s", specs[i], rc, out);
        size_t n;
        char *now = t_read_file(model, &n);
        assert_non_null(now);
        assert_memory_equal(now, original, sizeof original);
        free(now);
        now = t_read_file(metrics, &n);
        assert_non_null(now);
        assert_string_equal(now, history);
        free(now);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_flags_exit_2_and_keep_model),
        cmocka_unit_test(test_small_run_metrics_threads_and_resume),
        cmocka_unit_test(test_eval_missing_model),
        cmocka_unit_test(test_eval_logprobs_out),
        cmocka_unit_test(test_ctrl_c_writes_checkpoint_exit_130),
        cmocka_unit_test(test_fifo_model_refused),
        cmocka_unit_test(test_bad_checkpoint_exit_1),
        cmocka_unit_test(test_arch_not_a_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
