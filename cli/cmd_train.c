/*
 * cmd_train.c - `digitnet train`: train the CNN on MNIST (or
 * Fashion-MNIST), checkpoint after every epoch, resume exactly.
 *
 * Everything that can be refused is checked before anything is written:
 * flag values, the data directory, the model architecture, that the model
 * and metrics files are neither inputs nor each other, and that they can
 * be created in their directories. A refused run exits 2 (1 when the
 * system refuses the write) and leaves an existing model file as it was.
 * The files are then locked and written together (cli/train_files.c);
 * what the run shows while it goes, and Ctrl-C, are in
 * cli/train_progress.c.
 */
#include "files.h"
#include "metrics_file.h"
#include "options.h"
#include "paths.h"
#include "train_files.h"
#include "train_progress.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The --preset paragraph of the help, from the library's list of presets:
 * "lecture: ...;  best: ...; other flags override single settings",
 * wrapped to 55 columns after the option's name. */
static void print_presets(FILE *f)
{
    char text[2048] = "";
    const char *name, *summary;
    for (int i = 0; (name = dn_train_preset_name(i, &summary)) != NULL; i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s%s: %s", i ? ";  " : "", name,
                 summary ? summary : "");
    }
    size_t len = strlen(text);
    snprintf(text + len, sizeof text - len, "; other flags override single settings");
    const int width = 55;
    const char *p = text;
    fputs("  --preset NAME        ", f);
    while ((int)strlen(p) > width) {
        int cut = width;
        while (cut > 0 && p[cut] != ' ')
            cut--;
        if (cut == 0)
            cut = width;
        int end = cut;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        fprintf(f, "%.*s\n                       ", end, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
    fprintf(f, "%s\n", p);
}

static void usage(FILE *f)
{
    fputs(
        "usage: digitnet train [OPTIONS]\n"
        "\n"
        "Trains the lecture's CNN and writes the model file (safetensors) after\n"
        "every epoch, with the optimizer state, so that --resume continues the\n"
        "run exactly. Each epoch ends with one line: train loss, test loss, test\n"
        "accuracy +- its standard error and seconds; the same figures go to the\n"
        "metrics file as one JSON object per epoch. Results are bit-identical for\n"
        "a given seed whatever the number of threads.\n"
        "\n"
        "data and model:\n"
        "  --data DIR           dataset directory (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA ")\n"
        "  --dataset NAME       mnist (default) or fashion\n"
        "  --arch SPEC          layer spec (default: the lecture's CNN_MNIST)\n"
        "  --out PATH           model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --metrics FILE       JSON lines per epoch (default: OUT.metrics.jsonl)\n"
        "  --resume FILE        continue the checkpoint FILE with its recipe; --out\n"
        "                       defaults to FILE, --epochs may extend the run\n"
        "\n"
        "recipe (defaults: PyTorch's MNIST example = --preset lecture):\n",
        f);
    print_presets(f);
    fputs(
        "  --epochs N           epochs in total (14); at least 1 for a new run\n"
        "  --batch N            images per step (64)\n"
        "  --optim NAME         adadelta (default), sgd, adam, adamw\n"
        "  --lr X               learning rate (adadelta 1.0, sgd 0.01, adam/adamw 1e-3)\n"
        "  --momentum X         sgd momentum (0)\n"
        "  --nesterov           sgd Nesterov momentum\n"
        "  --weight-decay X     L2 (adamw: decoupled; default 0, adamw 0.01)\n"
        "  --rho X              adadelta rho (0.9)\n"
        "  --eps X              adadelta 1e-6, adam/adamw 1e-8\n"
        "  --betas B1,B2        adam/adamw (0.9,0.999)\n"
        "  --amsgrad            adam/adamw AMSGrad variant\n"
        "  --schedule NAME      step (default), cosine, onecycle, none\n"
        "  --gamma X            step: decay per step (0.7)\n"
        "  --step-size N        step: epochs per decay (1)\n"
        "  --augment            random rotation +-10 deg, scale 0.9-1.1, shift +-2 px\n"
        "  --seed N             seed of initialisation, shuffling, dropout (1)\n"
        "  --val N              hold out the last N training images and report on\n"
        "                       them instead of the test set (for tuning)\n"
        "  --limit N            train on the first N images only (quick runs)\n"
        "\n"
        "running:\n"
        "  --threads N          threads (default: all cores); no effect on results\n"
        "  -h, --help           this help\n"
        "\n"
        "examples:\n"
        "  digitnet train\n"
        "  digitnet train --epochs 2 --limit 5000 --out out/quick.safetensors\n"
        "  digitnet train --preset best --out out/best.safetensors\n"
        "  digitnet train --optim sgd --lr 0.05 --momentum 0.9 --nesterov --schedule cosine\n"
        "  digitnet train --val 5000 --optim adam --lr 3e-3\n"
        "  digitnet train --resume digitnet.safetensors --epochs 20\n"
        "\n"
        "files: the model and its metrics file are replaced together after every\n"
        "epoch (each atomically, the metrics right after the model), never emptied\n"
        "ahead of time: a run that fails, diverges or is killed leaves the last\n"
        "checkpoint and the metrics of exactly its epochs. A new run's metrics file\n"
        "starts empty; a resumed run keeps the lines of the epochs its checkpoint\n"
        "holds. OUT.lock and METRICS.lock, present while a run goes, keep a second\n"
        "run off the same files. A run cleans up what a killed one left behind.\n"
        "\n"
        "exit status: 0 trained; 1 failure: bad data, diverged (a loss or parameter\n"
        "NaN or infinite), a write error (read-only directory, disk full, file size\n"
        "limit, standard output), another run holds the files; 2 usage error: a bad\n"
        "flag or value, a flag given twice, --epochs 0 for a new run, an output that\n"
        "is an input or another output, a directory that does not exist;\n"
        "130 interrupted (checkpoint written)\n",
        f);
}

/* ------------------------------------------------------------------------ */
/* Options and the recipe                                                   */
/* ------------------------------------------------------------------------ */

/* What the user gave; NAN / -1 / NULL where not given. */
typedef struct opts {
    const char *data, *dataset, *out, *metrics, *resume, *arch, *preset;
    long epochs, batch, step_size, threads, val, limit;
    int optim, schedule;    /* -1 if not given */
    double lr, momentum, wd, rho, eps, beta1, beta2, gamma;
    int nesterov, amsgrad, augment;
    int has_seed;
    unsigned long long seed;
    const char *recipe_flag; /* first flag that sets the recipe (not with --resume) */
} opts;

static int parse_optim(const char *cmd, const char *value, void *target)
{
    dn_optim_kind k;
    dn_error err = {0};
    if (dn_optim_parse(value, &k, &err))
        return cli_usage(cmd, "%s", err.msg);
    *(int *)target = (int)k;
    return 0;
}

static int parse_schedule(const char *cmd, const char *value, void *target)
{
    dn_sched_kind k;
    dn_error err = {0};
    if (dn_sched_parse(value, &k, &err))
        return cli_usage(cmd, "%s", err.msg);
    *(int *)target = (int)k;
    return 0;
}

static int parse_preset(const char *cmd, const char *value, void *target)
{
    dn_train_config scratch;
    dn_error err = {0};
    if (dn_train_preset(value, &scratch, &err))
        return cli_usage(cmd, "%s", err.msg);
    *(const char **)target = value;
    return 0;
}

static int parse_betas(const char *cmd, const char *value, void *target)
{
    opts *o = target;
    const char *comma = strchr(value, ',');
    char b1[64];
    if (!comma || (size_t)(comma - value) >= sizeof b1)
        return cli_usage(cmd, "--betas must be B1,B2 (e.g. 0.9,0.999), got '%s'", value);
    snprintf(b1, sizeof b1, "%.*s", (int)(comma - value), value);
    if (cli_parse_double(b1, 0, 0.999999, &o->beta1) ||
        cli_parse_double(comma + 1, 0, 0.999999999, &o->beta2))
        return cli_usage(cmd, "--betas must be two numbers in [0, 1), got '%s'", value);
    return 0;
}

static int parse_seed(const char *cmd, const char *value, void *target)
{
    opts *o = target;
    char *end;
    errno = 0;
    if (!*value || *value == '-' || (o->seed = strtoull(value, &end, 10), errno) || *end)
        return cli_usage(cmd, "--seed must be a non-negative integer, got '%s'", value);
    o->has_seed = 1;
    return 0;
}

#define RECIPE_LONG(nm, t, lo, hi, msg)                                                      \
    {.name = nm, .kind = CLI_LONG, .target = (t), .min = lo, .max = hi, .bad = msg,          \
     .flags = CLI_RECIPE}
#define RECIPE_DOUBLE(nm, t, lo, hi, f, msg)                                                 \
    {.name = nm, .kind = CLI_DOUBLE, .target = (t), .min = lo, .max = hi, .bad = msg,        \
     .flags = CLI_RECIPE | (f)}
#define RECIPE_CUSTOM(nm, t, fn)                                                             \
    {.name = nm, .kind = CLI_CUSTOM, .target = (t), .parse = fn, .flags = CLI_RECIPE}
#define RECIPE_FLAG(nm, t) {.name = nm, .kind = CLI_FLAG, .target = (t), .flags = CLI_RECIPE}

static int parse(int argc, char **argv, opts *o)
{
    const cli_opt table[] = {
        CLI_OPT_DATA(&o->data),
        CLI_OPT_DATASET(&o->dataset, CLI_RECIPE),
        {.name = "epochs", .kind = CLI_LONG, .target = &o->epochs, .min = 0, .max = 100000,
         .bad = "--epochs must be an integer in 0..100000, got '%s'"},
        RECIPE_LONG("batch", &o->batch, 1, 65536, "--batch must be an integer in 1..65536, got '%s'"),
        RECIPE_CUSTOM("optim", &o->optim, parse_optim),
        RECIPE_DOUBLE("lr", &o->lr, 0, 1e6, CLI_POSITIVE, "--lr must be a number > 0, got '%s'"),
        RECIPE_DOUBLE("momentum", &o->momentum, 0, 1, 0, "--momentum must be in [0, 1], got '%s'"),
        RECIPE_FLAG("nesterov", &o->nesterov),
        RECIPE_DOUBLE("weight-decay", &o->wd, 0, 1e3, 0,
                      "--weight-decay must be a number >= 0, got '%s'"),
        RECIPE_DOUBLE("rho", &o->rho, 0, 1, 0, "--rho must be in [0, 1], got '%s'"),
        RECIPE_DOUBLE("eps", &o->eps, 0, 1, 0, "--eps must be in [0, 1], got '%s'"),
        RECIPE_CUSTOM("betas", o, parse_betas),
        RECIPE_FLAG("amsgrad", &o->amsgrad),
        RECIPE_CUSTOM("schedule", &o->schedule, parse_schedule),
        RECIPE_DOUBLE("gamma", &o->gamma, 0, 10, CLI_POSITIVE,
                      "--gamma must be a number > 0, got '%s'"),
        RECIPE_LONG("step-size", &o->step_size, 1, 100000,
                    "--step-size must be an integer >= 1, got '%s'"),
        RECIPE_CUSTOM("seed", o, parse_seed),
        CLI_OPT_THREADS(&o->threads),
        CLI_OPT_OUT(&o->out),
        {.name = "metrics", .kind = CLI_STRING, .target = &o->metrics},
        {.name = "resume", .kind = CLI_STRING, .target = &o->resume},
        RECIPE_FLAG("augment", &o->augment),
        RECIPE_LONG("val", &o->val, 1, 1000000000, "--val must be an integer >= 1, got '%s'"),
        CLI_OPT_LIMIT(&o->limit, CLI_RECIPE),
        {.name = "arch", .kind = CLI_STRING, .target = &o->arch, .flags = CLI_RECIPE},
        RECIPE_CUSTOM("preset", &o->preset, parse_preset),
    };
    const cli_spec spec = {"train", usage, table, CLI_N(table), 0};
    int next;
    return cli_parse(&spec, argc, argv, &next, &o->recipe_flag);
}

/* The single flags on top of the recipe c. */
static void apply_flags(const opts *o, dn_train_config *c)
{
    if (o->epochs >= 0)
        c->epochs = (int)o->epochs;
    if (o->batch > 0)
        c->batch = (int)o->batch;
    if (!isnan(o->lr))
        c->optim.lr = o->lr;
    if (!isnan(o->momentum))
        c->optim.momentum = o->momentum;
    if (!isnan(o->wd))
        c->optim.weight_decay = o->wd;
    if (!isnan(o->rho))
        c->optim.rho = o->rho;
    if (!isnan(o->eps))
        c->optim.eps = o->eps;
    if (!isnan(o->beta1)) {
        c->optim.beta1 = o->beta1;
        c->optim.beta2 = o->beta2;
    }
    c->optim.nesterov |= o->nesterov;
    c->optim.amsgrad |= o->amsgrad;
    if (!isnan(o->gamma))
        c->sched.gamma = o->gamma;
    if (o->step_size > 0)
        c->sched.step_size = (int)o->step_size;
    c->augment |= o->augment;
    if (o->has_seed)
        c->seed = o->seed;
    if (o->val > 0)
        c->val = (size_t)o->val;
    if (o->limit > 0)
        c->limit = (size_t)o->limit;
}

/* Defaults, then the preset, then single flags. */
static int build_recipe(const opts *o, dn_train_config *c)
{
    dn_error err = {0};
    if (dn_train_preset(o->preset ? o->preset : "lecture", c, &err))
        return cli_usage("train", "%s", err.msg);
    if (o->optim >= 0 && (dn_optim_kind)o->optim != c->optim.kind)
        dn_optim_defaults(&c->optim, (dn_optim_kind)o->optim);
    if (o->schedule >= 0 && (dn_sched_kind)o->schedule != c->sched.kind)
        dn_sched_defaults(&c->sched, (dn_sched_kind)o->schedule);
    apply_flags(o, c);
    if (dn_optim_check(&c->optim, &err))
        return cli_usage("train", "%s", err.msg);
    if ((o->nesterov || o->momentum > 0) && c->optim.kind != DN_OPTIM_SGD)
        return cli_usage("train", "--momentum and --nesterov apply to --optim sgd");
    if (o->amsgrad && c->optim.kind != DN_OPTIM_ADAM && c->optim.kind != DN_OPTIM_ADAMW)
        return cli_usage("train", "--amsgrad applies to --optim adam or adamw");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The run                                                                  */
/* ------------------------------------------------------------------------ */

/* Everything a run holds, freed in one place. */
typedef struct run {
    opts o;
    dn_train_config cfg;
    dn_model *m;
    dn_file_extras resume;  /* the checkpoint's extras with --resume */
    int epochs_done;        /* by the checkpoint */
    char dataset[16];
    const char *out;        /* the model file */
    char metrics_path[4200];
    cli_train_files files;  /* the model and metrics written together, locked */
    dn_dataset train, test;
    int have_test;
} run;

static void run_free(run *r)
{
    dn_dataset_free(&r->train);
    dn_dataset_free(&r->test);
    dn_file_extras_free(&r->resume);
    dn_model_free(r->m);
    cli_train_files_free(&r->files);
}

/* --resume: the checkpoint's model and recipe; --epochs may extend it. */
static int from_checkpoint(run *r)
{
    dn_error err = {0};
    const opts *o = &r->o;
    if (!(r->m = dn_model_load(o->resume, &r->resume, &err)))
        return cli_fail_err(&err);
    dn_train_defaults(&r->cfg);
    if (dn_train_config_from_checkpoint(&r->resume, &r->cfg, &r->epochs_done, &err))
        return cli_fail("%s: %s", o->resume, err.msg);
    const char *planned = dn_file_extras_get(&r->resume, "train.epochs");
    long total;
    r->cfg.epochs = o->epochs >= 0 ? (int)o->epochs
                    : planned && !cli_parse_long(planned, 0, 100000, &total) ? (int)total
                                                                              : r->epochs_done;
    if (r->m->dataset[0])
        snprintf(r->dataset, sizeof r->dataset, "%s", r->m->dataset);
    return 0;
}

/* "cannot write the model file ..." with the exit code cli_check_writable
 * chose: 2 for a path that cannot be right, 1 when the system refuses. */
static int cannot_write(int rc, const char *what, const char *path, const char *why)
{
    if (rc == CLI_EXIT_USAGE)
        return cli_usage("train", "cannot write the %s file '%s': %s", what, path, why);
    return cli_fail("cannot write the %s file '%s': %s", what, path, why);
}

/* The model and metrics files, before anything is written: they must
 * differ from each other, from the lock files and from the checkpoint
 * --resume reads (unless the model continues it in place), and their
 * directories must take new files. Then the lock, then what a run killed
 * while saving left behind. */
static int claim_files(run *r)
{
    const opts *o = &r->o;
    r->out = o->out ? o->out : o->resume ? o->resume : cli_model_path(NULL);
    if (o->metrics)
        snprintf(r->metrics_path, sizeof r->metrics_path, "%s", o->metrics);
    else
        snprintf(r->metrics_path, sizeof r->metrics_path, "%s.metrics.jsonl", r->out);
    cli_train_files_init(&r->files, r->out, r->metrics_path);
    cli_paths p = {0};
    const char *what = o->out ? "--out" : o->resume ? "the checkpoint --resume" : "the model file";
    cli_paths_add(&p, 1, what, r->out);
    cli_paths_add(&p, 1, "--metrics", r->metrics_path);
    cli_paths_add(&p, 1, "the lock file", r->files.lock_path[0]);
    cli_paths_add(&p, 1, "the lock file", r->files.lock_path[1]);
    if (o->resume && !cli_same_file(o->resume, r->out))
        cli_paths_add(&p, 0, "the checkpoint --resume", o->resume);
    int rc = cli_paths_check("train", &p);
    char why[4400];
    if (!rc && (rc = cli_check_writable(r->out, why, sizeof why)) != 0)
        return cannot_write(rc, "model", r->out, why);
    if (!rc && (rc = cli_check_writable(r->metrics_path, why, sizeof why)) != 0)
        return cannot_write(rc, "metrics", r->metrics_path, why);
    if (!rc)
        rc = cli_train_lock(&r->files);
    return rc ? rc : cli_train_recover(&r->files);
}

/* What can still be refused once the recipe is known: the data directory,
 * outputs that are data files, the architecture. */
static int check_before(run *r)
{
    const opts *o = &r->o;
    const char *dir = cli_data_dir(r->dataset, o->data);
    if (!cli_is_dir(dir))
        return cli_usage("train", "data directory '%s' not found (run 'make data' or pass "
                         "--data DIR)", dir);
    cli_paths p = {0};
    cli_paths_add(&p, 1, "--out", r->out);
    cli_paths_add(&p, 1, "--metrics", r->metrics_path);
    cli_paths_add_data(&p, dir, "train");
    cli_paths_add_data(&p, dir, "test");
    int rc = cli_paths_check("train", &p);
    if (!rc && !r->m) {
        dn_error err = {0};
        dn_shape in = DN_INPUT_SHAPE;
        if (!(r->m = dn_model_new(o->arch ? o->arch : dn_train_preset_spec(o->preset), in,
                                  r->cfg.seed, &err)) ||
            dn_model_check_classifier(r->m, 10, &err))
            return cli_usage("train", "--arch: %s", err.msg);
    }
    return rc;
}

/* The metrics text the run starts from. A new run starts empty: the old
 * file stays as it is until the first checkpoint replaces it together with
 * the model. A resumed run keeps the lines of its checkpoint's metrics
 * file (--metrics, or CHECKPOINT.metrics.jsonl) up to the checkpoint's
 * epoch. */
static int start_history(run *r)
{
    if (!r->o.resume)
        return 0;
    char from[4200];
    if (r->o.metrics)
        snprintf(from, sizeof from, "%s", r->o.metrics);
    else
        snprintf(from, sizeof from, "%s.metrics.jsonl", r->o.resume);
    return cli_metrics_kept(from, r->epochs_done, &r->files.history);
}

/* The training split and, without --val, the test split. */
static int load_data(run *r)
{
    dn_error err = {0};
    const char *dir = cli_data_dir(r->dataset, r->o.data);
    if (dn_dataset_load(&r->train, dir, "train", r->dataset, &err))
        return cli_fail_err(&err);
    if (!r->cfg.val) {
        if (dn_dataset_load(&r->test, dir, "test", r->dataset, &err))
            return cli_fail_err(&err);
        r->have_test = 1;
    }
    if (r->cfg.val >= r->train.n)
        return cli_usage("train", "--val %zu leaves no training images (the set has %zu)",
                         r->cfg.val, r->train.n);
    return 0;
}

/* What dn_train's result means for the user. */
static int outcome(const run *r, dn_status st, const dn_error *err)
{
    if (st == DN_ERR_INTERRUPTED) {
        fprintf(stderr, "digitnet: %s (continue with: digitnet train --resume %s)\n", err->msg,
                r->out);
        return CLI_EXIT_INTERRUPTED;
    }
    if (st == DN_ERR_ARG)
        return cli_usage("train", "%s", err->msg);
    if (st)
        return cli_fail_err(err);
    printf("model written to %s (metrics: %s)\n", r->out, r->metrics_path);
    return 0;
}

static int train(run *r)
{
    const opts *o = &r->o;
    cli_train_run show = {cli_stdout_is_tty(), &r->files, 0, 0};
    snprintf(r->m->dataset, sizeof r->m->dataset, "%s", r->dataset);
    size_t n_train = r->train.n - r->cfg.val;
    if (r->cfg.limit && r->cfg.limit < n_train)
        n_train = r->cfg.limit;
    int threads = r->cfg.threads > 0 ? r->cfg.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    cli_train_describe(&r->cfg, r->m, n_train, r->cfg.val ? r->cfg.val : r->test.n,
                       r->cfg.val ? "val" : "test", threads);
    const char *mid = o->resume ? dn_file_extras_get(&r->resume, "train.batch") : NULL;
    if (o->resume && mid && strcmp(mid, "0"))
        printf("resuming %s in epoch %d after batch %s\n", o->resume, r->epochs_done + 1, mid);
    else if (o->resume)
        printf("resuming %s after %d epochs\n", o->resume, r->epochs_done);
    cli_train_catch_sigint();
    r->cfg.checkpoint = r->out;
    r->cfg.progress = cli_train_progress;
    r->cfg.save = cli_train_save;
    r->cfg.user = &show;
    dn_error err = {0};
    dn_status st = dn_train(r->m, &r->train, r->have_test ? &r->test : NULL, &r->cfg,
                            o->resume ? &r->resume : NULL, &err);
    if (show.drawn)
        printf("\n");
    fflush(stdout);
    return outcome(r, st, &err);
}

int cmd_train(int argc, char **argv)
{
    run r;
    memset(&r, 0, sizeof r);
    r.files.lock_fd[0] = r.files.lock_fd[1] = -1;
    opts *o = &r.o;
    o->epochs = o->batch = o->step_size = o->threads = o->val = o->limit = -1;
    o->optim = o->schedule = -1;
    o->lr = o->momentum = o->wd = o->rho = o->eps = o->beta1 = o->beta2 = o->gamma = NAN;
    int rc = parse(argc, argv, o);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    if (o->resume && o->recipe_flag)
        return cli_usage("train", "--%s cannot be combined with --resume: the checkpoint's "
                         "recipe continues (only --epochs, --threads, --out, --metrics and "
                         "--data may be given)", o->recipe_flag);
    if (!o->resume && o->epochs == 0)
        return cli_usage("train", "--epochs 0 trains nothing (it would replace the model "
                         "file with untrained weights); give 1 or more");
    snprintf(r.dataset, sizeof r.dataset, "%s", o->dataset ? o->dataset : "mnist");
    /* The checkpoint is read under the lock, so that no other run replaces
     * it between reading and continuing it. */
    rc = o->resume ? 0 : build_recipe(o, &r.cfg);
    if (!rc)
        rc = claim_files(&r);
    if (!rc && o->resume)
        rc = from_checkpoint(&r);
    if (!rc && o->threads > 0)
        r.cfg.threads = (int)o->threads;
    if (!rc)
        rc = check_before(&r);
    if (!rc)
        rc = load_data(&r);
    if (!rc)
        rc = start_history(&r);
    if (!rc && o->resume && r.epochs_done >= r.cfg.epochs)
        printf("nothing to do: %s has %d of %d epochs done (pass --epochs to train more)\n",
               o->resume, r.epochs_done, r.cfg.epochs);
    else if (!rc)
        rc = train(&r);
    run_free(&r);
    return rc;
}
