/*
 * checkpoint.c - checkpoints: the recipe as JSON, writing the optimizer
 * state and the position into a model file's extras, and reading them back
 * for an exact resume.
 *
 * A checkpoint is the model file plus the optimizer state tensors, the step
 * count and the position (epochs done, batches done in the next epoch).
 * Since nothing else carries over between batches, a run resumed from it
 * repeats the uninterrupted run's arithmetic exactly.
 */
#include "checkpoint.h"

#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The recipe as JSON                                                       */
/* ------------------------------------------------------------------------ */

typedef enum field_kind { FIELD_REAL, FIELD_INT, FIELD_SIZE, FIELD_FLAG } field_kind;

/* The numbers and flags of a recipe, written and read through this one
 * table (the seed and the optimizer and schedule names are strings, done
 * apart). Keys are sorted when written, so the text does not depend on the
 * order here; changing a key makes older checkpoints unreadable. */
static const struct recipe_field {
    const char *key;
    field_kind kind;
    size_t offset;          /* in dn_train_config */
    double min, max;        /* FIELD_INT and FIELD_SIZE: the values read back */
} fields[] = {
    {"batch", FIELD_INT, offsetof(dn_train_config, batch), 1, 1e6},
    {"lr", FIELD_REAL, offsetof(dn_train_config, optim.lr), 0, 0},
    {"weight_decay", FIELD_REAL, offsetof(dn_train_config, optim.weight_decay), 0, 0},
    {"momentum", FIELD_REAL, offsetof(dn_train_config, optim.momentum), 0, 0},
    {"dampening", FIELD_REAL, offsetof(dn_train_config, optim.dampening), 0, 0},
    {"nesterov", FIELD_FLAG, offsetof(dn_train_config, optim.nesterov), 0, 0},
    {"rho", FIELD_REAL, offsetof(dn_train_config, optim.rho), 0, 0},
    {"eps", FIELD_REAL, offsetof(dn_train_config, optim.eps), 0, 0},
    {"beta1", FIELD_REAL, offsetof(dn_train_config, optim.beta1), 0, 0},
    {"beta2", FIELD_REAL, offsetof(dn_train_config, optim.beta2), 0, 0},
    {"amsgrad", FIELD_FLAG, offsetof(dn_train_config, optim.amsgrad), 0, 0},
    {"step_size", FIELD_INT, offsetof(dn_train_config, sched.step_size), 0, 1e9},
    {"gamma", FIELD_REAL, offsetof(dn_train_config, sched.gamma), 0, 0},
    {"eta_min", FIELD_REAL, offsetof(dn_train_config, sched.eta_min), 0, 0},
    {"pct_start", FIELD_REAL, offsetof(dn_train_config, sched.pct_start), 0, 0},
    {"div_factor", FIELD_REAL, offsetof(dn_train_config, sched.div_factor), 0, 0},
    {"final_div_factor", FIELD_REAL, offsetof(dn_train_config, sched.final_div_factor), 0, 0},
    {"augment", FIELD_FLAG, offsetof(dn_train_config, augment), 0, 0},
    {"val", FIELD_SIZE, offsetof(dn_train_config, val), 0, 1e15},
    {"limit", FIELD_SIZE, offsetof(dn_train_config, limit), 0, 1e15},
};

#define N_FIELDS (sizeof fields / sizeof fields[0])

static json_t *field_json(const struct recipe_field *f, const dn_train_config *c)
{
    const char *at = (const char *)c + f->offset;
    switch (f->kind) {
    case FIELD_REAL: return json_real(*(const double *)at);
    case FIELD_INT: return json_integer(*(const int *)at);
    case FIELD_SIZE: return json_integer((json_int_t) * (const size_t *)at);
    case FIELD_FLAG: return json_boolean(*(const int *)at);
    }
    return NULL;
}

/* Reads field f of the object o into c; 0 if it is missing or out of
 * range. */
static int field_read(const struct recipe_field *f, json_t *o, dn_train_config *c)
{
    json_t *v = json_object_get(o, f->key);
    char *at = (char *)c + f->offset;
    if (f->kind == FIELD_FLAG) {
        if (!json_is_boolean(v))
            return 0;
        *(int *)at = json_is_true(v);
        return 1;
    }
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (f->kind == FIELD_REAL) {
        *(double *)at = d;
        return 1;
    }
    if (!(d >= f->min && d <= f->max))
        return 0;
    if (f->kind == FIELD_INT)
        *(int *)at = (int)d;
    else
        *(size_t *)at = (size_t)d;
    return 1;
}

char *dn_recipe_json(const dn_train_config *c)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    json_t *j = json_pack("{s:s, s:s, s:s}", "seed", seed, "optim", dn_optim_name(c->optim.kind),
                          "schedule", dn_sched_name(c->sched.kind));
    for (size_t i = 0; j && i < N_FIELDS; i++) {
        json_t *v = field_json(&fields[i], c);
        if (!v || json_object_set_new(j, fields[i].key, v) != 0) {
            json_decref(j);
            j = NULL;
        }
    }
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(j);
    return text;
}

/* The recipe of the JSON object j into r; NULL, or the key of the first
 * value that is missing or bad. */
static const char *recipe_read(json_t *j, dn_train_config *r)
{
    const char *oname = json_string_value(json_object_get(j, "optim"));
    const char *sname = json_string_value(json_object_get(j, "schedule"));
    const char *seed = json_string_value(json_object_get(j, "seed"));
    if (!oname || dn_optim_parse(oname, &r->optim.kind, NULL))
        return "optim";
    if (!sname || dn_sched_parse(sname, &r->sched.kind, NULL))
        return "schedule";
    char *end;
    if (!seed || (r->seed = strtoull(seed, &end, 10), *end))
        return "seed";
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!field_read(&fields[i], j, r))
            return fields[i].key;
    return NULL;
}

dn_status dn_recipe_check(const dn_train_config *c, dn_error *err)
{
    if (c->batch < 1 || c->batch > 1000000)
        return dn_fail(err, DN_ERR_ARG, "batch size must be in 1..1000000, got %d", c->batch);
    if (c->sched.kind == DN_SCHED_STEP && c->sched.step_size < 1)
        return dn_fail(err, DN_ERR_ARG, "step schedule: step size must be >= 1 epoch, got %d",
                       c->sched.step_size);
    if (!(c->sched.gamma > 0) || !isfinite(c->sched.gamma))
        return dn_fail(err, DN_ERR_ARG, "schedule gamma must be > 0, got %g", c->sched.gamma);
    if (c->sched.kind == DN_SCHED_ONECYCLE &&
        (!(c->sched.pct_start >= 0 && c->sched.pct_start <= 1) || !(c->sched.div_factor > 0) ||
         !(c->sched.final_div_factor > 0)))
        return dn_fail(err, DN_ERR_ARG, "one-cycle schedule: pct_start must be in [0, 1] and "
                       "the div factors > 0");
    return dn_optim_check(&c->optim, err);
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */
/* ------------------------------------------------------------------------ */

static int meta_add(dn_file_extras *x, const char *key, const char *fmt, ...)
    DN_PRINTF(3, 4);

static int meta_add(dn_file_extras *x, const char *key, const char *fmt, ...)
{
    if (x->n_meta >= DN_FILE_MAX_META)
        return 0;
    snprintf(x->meta[x->n_meta].key, sizeof x->meta[x->n_meta].key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(x->meta[x->n_meta].value, sizeof x->meta[x->n_meta].value, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof x->meta[x->n_meta].value)
        return 0;
    x->n_meta++;
    return 1;
}

/* Largest epoch count a checkpoint may record, so that it fits an int
 * with room for the steps arithmetic. */
#define MAX_EPOCHS 1000000

/* Integer metadata `key` of a checkpoint, in 0..max; a missing, malformed
 * or out-of-range value is a bad file (DN_ERR_FORMAT naming the key). */
static dn_status meta_count(const dn_file_extras *x, const char *key, long long max,
                            long long *out, dn_error *err)
{
    const char *v = dn_file_extras_get(x, key);
    if (!v)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint has no \"%s\" metadata (was it "
                       "written by 'digitnet train'?)", key);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0 || n > max)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint metadata \"%s\" is \"%.40s\", expected "
                       "an integer in 0..%lld", key, v, max);
    *out = n;
    return DN_OK;
}

static int meta_double(const dn_file_extras *x, const char *key, double *out)
{
    const char *v = dn_file_extras_get(x, key);
    if (!v || !*v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (*end || !isfinite(d))
        return 0;
    *out = d;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Writing and reading checkpoints                                          */
/* ------------------------------------------------------------------------ */

dn_status dn_checkpoint_save(const dn_model *m, const dn_train_config *c, const char *recipe,
                             const dn_optim *o, const dn_train_pos *pos, size_t n_train,
                             dn_file_extras *x, dn_error *err)
{
    memset(x, 0, sizeof *x);
    for (int i = 0; i < o->n_state; i++) {
        snprintf(x->tensors[i].name, sizeof x->tensors[i].name, "optim.%s", o->state_name[i]);
        x->tensors[i].data = o->state[i];
        x->tensors[i].len = o->n;
    }
    x->n_tensors = o->n_state;
    int ok = meta_add(x, "train.format", "1") &&
             meta_add(x, "train.epoch", "%d", pos->epoch) &&
             meta_add(x, "train.batch", "%ld", pos->batch) &&
             meta_add(x, "train.epochs", "%d", c->epochs) &&
             meta_add(x, "train.steps", "%lld", (long long)o->steps) &&
             meta_add(x, "train.loss_sum", "%.17g", pos->loss_sum) &&
             meta_add(x, "train.loss_count", "%.17g", pos->loss_count) &&
             meta_add(x, "train.images", "%zu", n_train) &&
             meta_add(x, "train.optim", "%s", dn_optim_name(c->optim.kind)) &&
             meta_add(x, "train.schedule", "%s", dn_sched_name(c->sched.kind)) &&
             meta_add(x, "train.config", "%s", recipe);
    if (!ok)
        return dn_fail(err, DN_ERR_ARG, "training metadata does not fit in a checkpoint");
    if (c->save)
        return c->save(m, c->checkpoint, x, c->user, err);
    return dn_model_save(m, c->checkpoint, x, err);
}

dn_status dn_train_config_from_checkpoint(const dn_file_extras *x, dn_train_config *c,
                                          int *epochs_done, dn_error *err)
{
    const char *text = x ? dn_file_extras_get(x, "train.config") : NULL;
    long long epoch;
    if (!text)
        return dn_fail(err, DN_ERR_FORMAT, "not a training checkpoint: no train.config and "
                       "train.epoch metadata (was it written by 'digitnet train'?)");
    dn_status st = meta_count(x, "train.epoch", MAX_EPOCHS, &epoch, err);
    if (st)
        return st;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config is not a JSON object: %s",
                       jerr.text);
    }
    dn_train_config r = *c;
    const char *bad = recipe_read(j, &r);
    json_decref(j);
    if (bad)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config: \"%s\" is missing or "
                       "out of range: %.200s", bad, text);
    /* Values the trainer would refuse are the file's fault, not the
     * caller's; and what was read must write back to the same text, or
     * resuming would find "a different recipe" that nobody asked for. */
    dn_error why = {0};
    if (dn_recipe_check(&r, &why))
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config has a bad value: %s",
                       why.msg);
    char *again = dn_recipe_json(&r);
    int same = again && !strcmp(again, text);
    free(again);
    if (!same)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint train.config is not as digitnet "
                       "writes it (edited or corrupt): %.200s", text);
    *c = r;
    if (epochs_done)
        *epochs_done = (int)epoch;
    return DN_OK;
}

/* Copies the optimizer state tensor "optim.<name>" of x into state. */
static dn_status restore_state(const dn_file_extras *x, const char *state_name, float *state,
                               size_t n, dn_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "optim.%s", state_name);
    int found = 0;
    for (int t = 0; t < x->n_tensors; t++) {
        if (strcmp(x->tensors[t].name, name) != 0)
            continue;
        if (x->tensors[t].len != n || !x->tensors[t].data)
            return dn_fail(err, DN_ERR_FORMAT, "checkpoint: %s has %zu values, the model %zu "
                           "parameters", name, x->tensors[t].len, n);
        memcpy(state, x->tensors[t].data, n * sizeof(float));
        found = 1;
    }
    if (!found)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint: optimizer state %s is missing", name);
    return DN_OK;
}

dn_status dn_checkpoint_restore(const dn_file_extras *x, const char *recipe, dn_optim *o,
                                dn_train_pos *pos, size_t n_train, long batches,
                                dn_error *err)
{
    const char *saved = dn_file_extras_get(x, "train.config");
    long long epoch, batch, steps, images;
    dn_status st = meta_count(x, "train.epoch", MAX_EPOCHS, &epoch, err);
    if (!st)
        st = meta_count(x, "train.batch", INT32_MAX, &batch, err);
    if (!st)
        st = meta_count(x, "train.steps", INT64_MAX / 2, &steps, err);
    if (!st)
        st = meta_count(x, "train.images", UINT32_MAX, &images, err);
    if (st)
        return st;
    if (!saved || !meta_double(x, "train.loss_sum", &pos->loss_sum) ||
        !meta_double(x, "train.loss_count", &pos->loss_count))
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint: training metadata is missing or "
                       "malformed (train.config, train.loss_sum, train.loss_count)");
    if (strcmp(saved, recipe) != 0)
        return dn_fail(err, DN_ERR_ARG, "the training recipe differs from the checkpoint's "
                       "(%.300s); resume with the checkpoint's settings", saved);
    if ((size_t)images != n_train)
        return dn_fail(err, DN_ERR_ARG, "the checkpoint was trained on %lld images, this run "
                       "has %zu (another dataset, --limit or --val?)", images, n_train);
    if (batch >= batches || steps != epoch * batches + batch)
        return dn_fail(err, DN_ERR_FORMAT, "checkpoint: position epoch %lld batch %lld with "
                       "%lld steps does not fit %ld batches per epoch", epoch, batch, steps,
                       batches);
    for (int i = 0; i < o->n_state; i++) {
        st = restore_state(x, o->state_name[i], o->state[i], o->n, err);
        if (st)
            return st;
    }
    o->steps = steps;
    pos->epoch = (int)epoch;
    pos->batch = (long)batch;
    return DN_OK;
}
