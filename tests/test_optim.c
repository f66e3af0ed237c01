/*
 * test_optim.c - optimizers and schedules against PyTorch 1.13 (fixtures by
 * tools/optim_fixtures.py), a hand-computed first step of each rule, and
 * the argument checks.
 */
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/optim.json"

static json_t *load_fixture(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(FIXTURE, 0, &jerr);
    if (!root)
        fail_msg("cannot read %s: %s (line %d); run from the repository root", FIXTURE,
                 jerr.text, jerr.line);
    return root;
}

static double num(const json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return dflt;
    if (json_is_true(v))
        return 1;
    if (json_is_false(v))
        return 0;
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* |got - want| <= 1e-6 * |want|, with a floor of 1e-6 * 1e-2 so that values
 * passing through zero are not held to an impossible relative bound. */
static int close_rel(double got, double want)
{
    double tol = 1e-6 * fmax(fabs(want), 1e-2);
    return fabs(got - want) <= tol;
}

static void config_from_json(const json_t *c, dn_optim_config *cfg)
{
    dn_optim_kind kind;
    assert_int_equal(dn_optim_parse(json_string_value(json_object_get(c, "optim")), &kind, NULL),
                     DN_OK);
    dn_optim_defaults(cfg, kind);
    cfg->lr = num(c, "lr", cfg->lr);
    cfg->weight_decay = num(c, "weight_decay", cfg->weight_decay);
    cfg->momentum = num(c, "momentum", cfg->momentum);
    cfg->dampening = num(c, "dampening", cfg->dampening);
    cfg->nesterov = (int)num(c, "nesterov", cfg->nesterov);
    cfg->rho = num(c, "rho", cfg->rho);
    cfg->eps = num(c, "eps", cfg->eps);
    cfg->beta1 = num(c, "beta1", cfg->beta1);
    cfg->beta2 = num(c, "beta2", cfg->beta2);
    cfg->amsgrad = (int)num(c, "amsgrad", cfg->amsgrad);
}

static void test_optimizers_match_pytorch(void **state)
{
    (void)state;
    json_t *root = load_fixture();
    json_t *cases = json_object_get(root, "optimizers");
    assert_true(json_array_size(cases) >= 10);
    int seen[4] = {0};
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        dn_optim_config cfg;
        config_from_json(json_object_get(cs, "config"), &cfg);
        seen[cfg.kind]++;
        json_t *p0 = json_object_get(cs, "params");
        size_t n = json_array_size(p0);
        assert_true(n > 0);
        float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
        assert_non_null(p);
        assert_non_null(g);
        for (size_t i = 0; i < n; i++)
            p[i] = (float)json_number_value(json_array_get(p0, i));
        dn_optim o;
        dn_error err = {0};
        assert_int_equal(dn_optim_init(&o, &cfg, n, &err), DN_OK);
        json_t *grads = json_object_get(cs, "grads"), *after = json_object_get(cs, "after");
        json_t *lrs = json_object_get(cs, "lrs");
        size_t steps = json_array_size(grads);
        assert_true(steps >= 3);
        for (size_t s = 0; s < steps; s++) {
            json_t *gs = json_array_get(grads, s), *want = json_array_get(after, s);
            for (size_t i = 0; i < n; i++)
                g[i] = (float)json_number_value(json_array_get(gs, i));
            dn_optim_step(&o, p, g, json_number_value(json_array_get(lrs, s)));
            for (size_t i = 0; i < n; i++) {
                double w = json_number_value(json_array_get(want, i));
                if (!close_rel(p[i], w))
                    fail_msg("%s case %zu step %zu param %zu: got %.9g, PyTorch %.9g",
                             dn_optim_name(cfg.kind), k, s + 1, i, p[i], w);
            }
        }
        assert_int_equal(o.steps, (int64_t)steps);
        dn_optim_free(&o);
        free(p);
        free(g);
    }
    for (int kind = 0; kind < 4; kind++)
        assert_true(seen[kind] >= 2);
    json_decref(root);
}

static void test_schedules_match_pytorch(void **state)
{
    (void)state;
    json_t *root = load_fixture();
    json_t *cases = json_object_get(root, "schedules");
    assert_true(json_array_size(cases) >= 6);
    for (size_t k = 0; k < json_array_size(cases); k++) {
        json_t *cs = json_array_get(cases, k);
        dn_sched_kind kind;
        assert_int_equal(dn_sched_parse(json_string_value(json_object_get(cs, "schedule")),
                                        &kind, NULL),
                         DN_OK);
        dn_sched_config s;
        dn_sched_defaults(&s, kind);
        s.step_size = (int)num(cs, "step_size", s.step_size);
        s.gamma = num(cs, "gamma", s.gamma);
        s.eta_min = num(cs, "eta_min", s.eta_min);
        s.pct_start = num(cs, "pct_start", s.pct_start);
        s.div_factor = num(cs, "div_factor", s.div_factor);
        s.final_div_factor = num(cs, "final_div_factor", s.final_div_factor);
        double lr = num(cs, "lr", 0);
        int epochs = (int)num(cs, "epochs", 0);
        long batches = (long)num(cs, "batches", 1);
        json_t *want = json_object_get(cs, "lrs");
        assert_int_equal(json_array_size(want), (size_t)epochs * (size_t)batches);
        for (int e = 0; e < epochs; e++)
            for (long b = 0; b < batches; b++) {
                double w = json_number_value(json_array_get(want, (size_t)(e * batches + b)));
                /* Epoch-wise schedules must give the same rate to every
                 * batch of an epoch. */
                long bq = kind == DN_SCHED_ONECYCLE ? b : (b * 7) % batches;
                double got = dn_sched_lr(&s, lr, e, epochs, bq, batches);
                /* Cosine's last epochs are near zero, where PyTorch's
                 * recursive form and the closed form differ by rounding. */
                if (fabs(got - w) > 1e-9 * fmax(lr, 1) && !close_rel(got, w))
                    fail_msg("%s case %zu epoch %d batch %ld: got %.12g, PyTorch %.12g",
                             dn_sched_name(kind), k, e, b, got, w);
            }
    }
    json_decref(root);
}

/* A step taken in slices (as the trainer's threads do) equals the whole
 * step bit for bit, for every optimizer, over several steps. */
static void test_step_in_slices(void **state)
{
    (void)state;
    enum { N = 37 };
    const dn_optim_kind kinds[] = {DN_OPTIM_ADADELTA, DN_OPTIM_SGD, DN_OPTIM_ADAM, DN_OPTIM_ADAMW};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        dn_optim_config c;
        dn_optim_defaults(&c, kinds[k]);
        c.momentum = 0.9;
        c.weight_decay = 1e-3;
        dn_optim whole, sliced;
        assert_int_equal(dn_optim_init(&whole, &c, N, NULL), DN_OK);
        assert_int_equal(dn_optim_init(&sliced, &c, N, NULL), DN_OK);
        float pw[N], ps[N], g[N];
        for (int i = 0; i < N; i++)
            pw[i] = ps[i] = 0.1f * (float)(i % 7) - 0.3f;
        for (int step = 0; step < 4; step++) {
            for (int i = 0; i < N; i++)
                g[i] = 0.01f * (float)((i * 13 + step * 5) % 11) - 0.05f;
            dn_optim_step(&whole, pw, g, 0.01);
            /* Uneven slices, given out of order. */
            dn_optim_step_range(&sliced, ps, g, 0.01, 16, 33);
            dn_optim_step_range(&sliced, ps, g, 0.01, 0, 16);
            dn_optim_step_range(&sliced, ps, g, 0.01, 33, 1000);
            dn_optim_step_end(&sliced);
        }
        assert_memory_equal(pw, ps, sizeof pw);
        float moved = 0;
        for (int i = 0; i < N; i++)
            moved += fabsf(pw[i] - (0.1f * (float)(i % 7) - 0.3f));
        assert_true(moved > 0);
        dn_optim_free(&whole);
        dn_optim_free(&sliced);
    }
}

/* First steps worked out by hand from the update rules (all state 0). */
static void test_first_steps_by_hand(void **state)
{
    (void)state;
    dn_optim_config c;
    dn_optim o;
    float p[2], g[2] = {0.5f, -2.0f};

    /* Adadelta: v = 0.1 g^2; delta = sqrt(eps) / sqrt(v + eps) * g. */
    dn_optim_defaults(&c, DN_OPTIM_ADADELTA);
    assert_int_equal(dn_optim_init(&o, &c, 2, NULL), DN_OK);
    assert_int_equal(o.n_state, 2);
    assert_string_equal(o.state_name[0], "square_avg");
    p[0] = 1.0f, p[1] = 1.0f;
    dn_optim_step(&o, p, g, 1.0);
    for (int i = 0; i < 2; i++) {
        double v = 0.1 * g[i] * g[i];
        double delta = sqrt(1e-6) / sqrt(v + 1e-6) * g[i];
        assert_float_equal(p[i], 1.0 - delta, 1e-6);
        assert_float_equal(o.state[0][i], v, 1e-7);
        assert_float_equal(o.state[1][i], 0.1 * delta * delta, 1e-9);
    }
    dn_optim_free(&o);

    /* SGD momentum: the first buffer is the gradient itself (no dampening
     * on step 1), the second is m * buf + (1 - dampening) * g. */
    dn_optim_defaults(&c, DN_OPTIM_SGD);
    c.lr = 0.1, c.momentum = 0.9, c.dampening = 0.5;
    assert_int_equal(dn_optim_init(&o, &c, 2, NULL), DN_OK);
    p[0] = 0, p[1] = 0;
    dn_optim_step(&o, p, g, 0.1);
    assert_float_equal(o.state[0][0], 0.5, 1e-7);
    assert_float_equal(p[0], -0.05, 1e-7);
    dn_optim_step(&o, p, g, 0.1);
    assert_float_equal(o.state[0][0], 0.9 * 0.5 + 0.5 * 0.5, 1e-7);
    assert_float_equal(p[0], -0.05 - 0.1 * 0.7, 1e-7);
    dn_optim_free(&o);

    /* Adam's first step moves each parameter by lr * sign(g) (bias
     * correction makes m/sqrt(v) = g/|g|), up to eps. */
    dn_optim_defaults(&c, DN_OPTIM_ADAM);
    assert_int_equal(dn_optim_init(&o, &c, 2, NULL), DN_OK);
    p[0] = 0, p[1] = 0;
    dn_optim_step(&o, p, g, 1e-3);
    assert_float_equal(p[0], -1e-3, 1e-8);
    assert_float_equal(p[1], 1e-3, 1e-8);
    dn_optim_free(&o);

    /* AdamW decays the parameter before the Adam step, even with g = 0. */
    dn_optim_defaults(&c, DN_OPTIM_ADAMW);
    assert_float_equal(c.weight_decay, 1e-2, 0);
    assert_int_equal(dn_optim_init(&o, &c, 2, NULL), DN_OK);
    float z[2] = {0, 0};
    p[0] = 2, p[1] = -4;
    dn_optim_step(&o, p, z, 0.1);
    assert_float_equal(p[0], 2 * (1 - 0.1 * 1e-2), 1e-7);
    assert_float_equal(p[1], -4 * (1 - 0.1 * 1e-2), 1e-7);
    dn_optim_free(&o);
}

static void test_checks_and_names(void **state)
{
    (void)state;
    dn_optim_config c;
    dn_error err = {0};
    dn_optim o;
    dn_optim_defaults(&c, DN_OPTIM_SGD);
    c.nesterov = 1;
    assert_int_equal(dn_optim_init(&o, &c, 4, &err), DN_ERR_ARG);
    assert_non_null(strstr(err.msg, "nesterov"));
    assert_null(o.state[0]);
    c.momentum = 0.9;
    assert_int_equal(dn_optim_check(&c, &err), DN_OK);
    c.lr = -1;
    assert_int_equal(dn_optim_check(&c, &err), DN_ERR_ARG);
    assert_non_null(strstr(err.msg, "learning rate"));
    dn_optim_defaults(&c, DN_OPTIM_ADAM);
    c.beta2 = 1.0;
    assert_int_equal(dn_optim_check(&c, &err), DN_ERR_ARG);
    dn_optim_defaults(&c, DN_OPTIM_ADADELTA);
    c.rho = 1.5;
    assert_int_equal(dn_optim_check(&c, &err), DN_ERR_ARG);

    dn_optim_kind k;
    assert_int_equal(dn_optim_parse("adamw", &k, NULL), DN_OK);
    assert_int_equal(k, DN_OPTIM_ADAMW);
    assert_int_equal(dn_optim_parse("rmsprop", &k, &err), DN_ERR_ARG);
    assert_non_null(strstr(err.msg, "rmsprop"));
    dn_sched_kind s;
    assert_int_equal(dn_sched_parse("onecycle", &s, NULL), DN_OK);
    assert_int_equal(s, DN_SCHED_ONECYCLE);
    assert_int_equal(dn_sched_parse("linear", &s, &err), DN_ERR_ARG);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dn_optim_parse(dn_optim_name((dn_optim_kind)i), &k, NULL), DN_OK);
        assert_int_equal((int)k, i);
        assert_int_equal(dn_sched_parse(dn_sched_name((dn_sched_kind)i), &s, NULL), DN_OK);
        assert_int_equal((int)s, i);
    }

    /* SGD without momentum keeps no state; Adam with amsgrad keeps three. */
    dn_optim_defaults(&c, DN_OPTIM_SGD);
    assert_int_equal(dn_optim_init(&o, &c, 4, NULL), DN_OK);
    assert_int_equal(o.n_state, 0);
    dn_optim_free(&o);
    dn_optim_defaults(&c, DN_OPTIM_ADAM);
    c.amsgrad = 1;
    assert_int_equal(dn_optim_init(&o, &c, 1000, NULL), DN_OK);
    assert_int_equal(o.n_state, 3);
    assert_string_equal(o.state_name[2], "max_exp_avg_sq");
    assert_int_equal((uintptr_t)o.state[1] % 64, 0);
    for (size_t i = 0; i < 1000; i++)
        assert_true(o.state[2][i] == 0.0f);
    dn_optim_free(&o);
}

/* The lecture's default: StepLR(step 1, gamma 0.7) from 1.0. */
static void test_default_step_schedule(void **state)
{
    (void)state;
    dn_sched_config s;
    dn_sched_defaults(&s, DN_SCHED_STEP);
    assert_float_equal(dn_sched_lr(&s, 1.0, 0, 14, 5, 938), 1.0, 0);
    assert_float_equal(dn_sched_lr(&s, 1.0, 1, 14, 0, 938), 0.7, 1e-15);
    assert_float_equal(dn_sched_lr(&s, 1.0, 13, 14, 937, 938), pow(0.7, 13), 1e-15);
    dn_sched_defaults(&s, DN_SCHED_ONECYCLE);
    /* One-cycle starts at lr / 25, peaks at lr after 30 % of the steps and
     * ends at lr / 25 / 1e4. */
    assert_float_equal(dn_sched_lr(&s, 1.0, 0, 10, 0, 100), 1.0 / 25, 1e-12);
    assert_float_equal(dn_sched_lr(&s, 1.0, 2, 10, 99, 100), 1.0, 1e-12);
    assert_float_equal(dn_sched_lr(&s, 1.0, 9, 10, 99, 100), 1.0 / 25 / 1e4, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimizers_match_pytorch),
        cmocka_unit_test(test_schedules_match_pytorch),
        cmocka_unit_test(test_first_steps_by_hand),
        cmocka_unit_test(test_step_in_slices),
        cmocka_unit_test(test_checks_and_names),
        cmocka_unit_test(test_default_step_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
