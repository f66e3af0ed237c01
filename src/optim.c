/*
 * optim.c - optimizers (Adadelta, SGD, Adam, AdamW) and learning-rate
 * schedules (StepLR, cosine annealing, one-cycle, constant).
 *
 * The update rules follow PyTorch 1.13's torch.optim definitions element by
 * element, in float32 with the hyper-parameters rounded to float where
 * PyTorch's tensor-times-scalar kernels round them, so that a digitnet run
 * can be compared with a PyTorch one (tests/test_optim.c checks against
 * values dumped by tools/optim_fixtures.py). Schedules are closed forms of
 * PyTorch's chainable schedulers; they agree to rounding.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Names and defaults                                                       */
/* ------------------------------------------------------------------------ */

static const char *const optim_names[] = {"adadelta", "sgd", "adam", "adamw"};
static const char *const sched_names[] = {"none", "step", "cosine", "onecycle"};
#define N_OPTIM ((int)(sizeof optim_names / sizeof optim_names[0]))
#define N_SCHED ((int)(sizeof sched_names / sizeof sched_names[0]))

/* Index of name in names[n], or -1 (also for NULL). */
static int find_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

const char *dn_optim_name(dn_optim_kind kind)
{
    if ((unsigned)kind < (unsigned)N_OPTIM)
        return optim_names[kind];
    return "unknown";
}

dn_status dn_optim_parse(const char *name, dn_optim_kind *kind, dn_error *err)
{
    int i = find_name(optim_names, N_OPTIM, name);
    if (i >= 0) {
        *kind = (dn_optim_kind)i;
        return DN_OK;
    }
    return dn_fail(err, DN_ERR_ARG, "unknown optimizer '%s', expected adadelta, sgd, adam or adamw",
                   name ? name : "(null)");
}

void dn_optim_defaults(dn_optim_config *c, dn_optim_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->rho = 0.9;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    switch (kind) {
    case DN_OPTIM_ADADELTA:
        c->lr = 1.0;
        c->eps = 1e-6;
        break;
    case DN_OPTIM_SGD:
        c->lr = 0.01;
        c->eps = 1e-8;
        break;
    case DN_OPTIM_ADAM:
        c->lr = 1e-3;
        c->eps = 1e-8;
        break;
    case DN_OPTIM_ADAMW:
        c->lr = 1e-3;
        c->eps = 1e-8;
        c->weight_decay = 1e-2;
        break;
    }
}

dn_status dn_optim_check(const dn_optim_config *c, dn_error *err)
{
    if ((unsigned)c->kind > DN_OPTIM_ADAMW)
        return dn_fail(err, DN_ERR_ARG, "unknown optimizer kind %d", (int)c->kind);
    const char *name = dn_optim_name(c->kind);
    if (!(c->lr >= 0) || !isfinite(c->lr))
        return dn_fail(err, DN_ERR_ARG, "%s: learning rate must be >= 0, got %g", name, c->lr);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return dn_fail(err, DN_ERR_ARG, "%s: weight decay must be >= 0, got %g", name,
                       c->weight_decay);
    switch (c->kind) {
    case DN_OPTIM_ADADELTA:
        if (!(c->rho >= 0 && c->rho <= 1))
            return dn_fail(err, DN_ERR_ARG, "adadelta: rho must be in [0, 1], got %g", c->rho);
        if (!(c->eps >= 0) || !isfinite(c->eps))
            return dn_fail(err, DN_ERR_ARG, "adadelta: eps must be >= 0, got %g", c->eps);
        break;
    case DN_OPTIM_SGD:
        if (!(c->momentum >= 0) || !isfinite(c->momentum))
            return dn_fail(err, DN_ERR_ARG, "sgd: momentum must be >= 0, got %g", c->momentum);
        if (!(c->dampening >= 0 && c->dampening <= 1))
            return dn_fail(err, DN_ERR_ARG, "sgd: dampening must be in [0, 1], got %g",
                           c->dampening);
        /* PyTorch refuses this too: Nesterov's look-ahead needs a buffer
         * that is a plain running sum. */
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return dn_fail(err, DN_ERR_ARG,
                           "sgd: nesterov needs momentum > 0 and dampening 0 (momentum %g, "
                           "dampening %g)",
                           c->momentum, c->dampening);
        break;
    case DN_OPTIM_ADAM:
    case DN_OPTIM_ADAMW:
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
            return dn_fail(err, DN_ERR_ARG, "%s: betas must be in [0, 1), got (%g, %g)", name,
                           c->beta1, c->beta2);
        if (!(c->eps >= 0) || !isfinite(c->eps))
            return dn_fail(err, DN_ERR_ARG, "%s: eps must be >= 0, got %g", name, c->eps);
        break;
    }
    return DN_OK;
}

/* ------------------------------------------------------------------------ */
/* State                                                                    */
/* ------------------------------------------------------------------------ */

dn_status dn_optim_init(dn_optim *o, const dn_optim_config *c, size_t n, dn_error *err)
{
    memset(o, 0, sizeof *o);
    dn_status st = dn_optim_check(c, err);
    if (st)
        return st;
    o->cfg = *c;
    o->n = n;
    switch (c->kind) {
    case DN_OPTIM_ADADELTA:
        o->n_state = 2;
        o->state_name[0] = "square_avg";
        o->state_name[1] = "acc_delta";
        break;
    case DN_OPTIM_SGD:
        o->n_state = c->momentum != 0 ? 1 : 0;
        o->state_name[0] = "momentum_buffer";
        break;
    case DN_OPTIM_ADAM:
    case DN_OPTIM_ADAMW:
        o->n_state = c->amsgrad ? 3 : 2;
        o->state_name[0] = "exp_avg";
        o->state_name[1] = "exp_avg_sq";
        o->state_name[2] = "max_exp_avg_sq";
        break;
    }
    if (o->n_state == 0)
        return DN_OK;
    /* One block; each slice starts on a 64-byte boundary. */
    size_t stride = (n + 15) & ~(size_t)15, total;
    if (stride < n || !dn_mul_size(stride, (size_t)o->n_state, &total)) {
        memset(o, 0, sizeof *o);
        return dn_fail(err, DN_ERR_NOMEM, "optimizer state for %zu parameters is too large", n);
    }
    float *block = dn_alloc_floats(total);
    if (!block) {
        memset(o, 0, sizeof *o);
        return dn_fail(err, DN_ERR_NOMEM, "cannot allocate optimizer state (%zu floats)", total);
    }
    for (int i = 0; i < o->n_state; i++)
        o->state[i] = block + (size_t)i * stride;
    return DN_OK;
}

void dn_optim_free(dn_optim *o)
{
    if (!o)
        return;
    dn_free(o->state[0]);
    memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------------------ */
/* Update rules                                                             */
/* ------------------------------------------------------------------------ */

/* Scalars are rounded to float exactly where PyTorch's float32 kernels
 * round them (tensor.mul_(rho), .add_(x, alpha=a) ...), and each line below
 * is one of PyTorch's tensor operations, in its order. */

/* The loop of one Adadelta step; `decay` is a constant after inlining, so
 * each variant is a straight loop the compiler vectorises (with restrict,
 * and -fno-math-errno for this file so that sqrtf needs no errno path).
 * The operations and their order are PyTorch's, element by element. */
static inline void adadelta_loop(float *restrict p, const float *restrict g,
                                 float *restrict square_avg, float *restrict acc_delta,
                                 size_t n, float rho, float one_m_rho, float eps,
                                 float wd, float neg_lr, int decay)
{
    for (size_t i = 0; i < n; i++) {
        float grad = g[i];
        if (decay)
            grad = grad + wd * p[i];
        square_avg[i] = square_avg[i] * rho + one_m_rho * (grad * grad);
        float std = sqrtf(square_avg[i] + eps);
        float delta = sqrtf(acc_delta[i] + eps) / std * grad;
        acc_delta[i] = acc_delta[i] * rho + one_m_rho * (delta * delta);
        p[i] = p[i] + neg_lr * delta;
    }
}

/* Each step_* updates elements [lo, hi) only; p and g point at element 0. */
static void step_adadelta(dn_optim *o, float *p, const float *g, double lr, size_t lo,
                          size_t hi)
{
    const dn_optim_config *c = &o->cfg;
    float *square_avg = o->state[0] + lo; /* (hi - lo) */
    float *acc_delta = o->state[1] + lo;  /* (hi - lo) */
    p += lo;
    g += lo;
    const float rho = (float)c->rho, one_m_rho = (float)(1 - c->rho);
    const float eps = (float)c->eps, wd = (float)c->weight_decay, neg_lr = (float)-lr;
    if (c->weight_decay != 0)
        adadelta_loop(p, g, square_avg, acc_delta, hi - lo, rho, one_m_rho, eps, wd, neg_lr, 1);
    else
        adadelta_loop(p, g, square_avg, acc_delta, hi - lo, rho, one_m_rho, eps, wd, neg_lr, 0);
}

void dn_add_floats(float *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

int dn_floats_finite(const float *v, size_t n)
{
    /* NaN and Inf are the values whose exponent bits are all set: an
     * integer compare and OR, which vectorise even for SSE2 (an unsigned
     * max would need SSE4.1, a float compare chain does not vectorise). */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, v + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

static void step_sgd(dn_optim *o, float *p, const float *g, double lr, size_t lo, size_t hi)
{
    const dn_optim_config *c = &o->cfg;
    const float wd = (float)c->weight_decay, neg_lr = (float)-lr;
    const float mom = (float)c->momentum, one_m_damp = (float)(1 - c->dampening);
    float *buf = o->state[0]; /* (n), or NULL without momentum */
    /* PyTorch starts the buffer as a copy of the first (decayed) gradient,
     * without dampening; after that buf = mom * buf + (1 - dampening) * d. */
    int first = o->steps == 0;
    for (size_t i = lo; i < hi; i++) {
        float d = g[i];
        if (c->weight_decay != 0)
            d = d + wd * p[i];
        if (buf) {
            if (first)
                buf[i] = d;
            else
                buf[i] = buf[i] * mom + one_m_damp * d;
            d = c->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] = p[i] + neg_lr * d;
    }
}

static void step_adam(dn_optim *o, float *p, const float *g, double lr, size_t lo, size_t hi)
{
    const dn_optim_config *c = &o->cfg;
    float *exp_avg = o->state[0];    /* (n) */
    float *exp_avg_sq = o->state[1]; /* (n) */
    float *max_sq = o->state[2];     /* (n), amsgrad only */
    const int decoupled = c->kind == DN_OPTIM_ADAMW;
    const float b1 = (float)c->beta1, one_m_b1 = (float)(1 - c->beta1);
    const float b2 = (float)c->beta2, one_m_b2 = (float)(1 - c->beta2);
    const float wd = (float)c->weight_decay, eps = (float)c->eps;
    const float decay = (float)(1 - lr * c->weight_decay);
    /* Bias corrections in double, as PyTorch computes them in Python from
     * the step count after incrementing it. */
    double step = (double)(o->steps + 1);
    double bc1 = 1 - pow(c->beta1, step);
    double bc2_sqrt = sqrt(1 - pow(c->beta2, step));
    const float neg_step_size = (float)-(lr / bc1);
    const float bc2s = (float)bc2_sqrt;
    for (size_t i = lo; i < hi; i++) {
        float grad = g[i];
        if (decoupled)
            p[i] = p[i] * decay;
        else if (c->weight_decay != 0)
            grad = grad + wd * p[i];
        exp_avg[i] = exp_avg[i] * b1 + one_m_b1 * grad;
        exp_avg_sq[i] = exp_avg_sq[i] * b2 + one_m_b2 * (grad * grad);
        float v = exp_avg_sq[i];
        if (max_sq) {
            if (v > max_sq[i])
                max_sq[i] = v;
            v = max_sq[i];
        }
        float denom = sqrtf(v) / bc2s + eps;
        p[i] = p[i] + neg_step_size * (exp_avg[i] / denom);
    }
}

void dn_optim_step_range(dn_optim *o, float *params, const float *grads, double lr, size_t lo,
                         size_t hi)
{
    if (hi > o->n)
        hi = o->n;
    if (lo >= hi)
        return;
    switch (o->cfg.kind) {
    case DN_OPTIM_ADADELTA:
        step_adadelta(o, params, grads, lr, lo, hi);
        break;
    case DN_OPTIM_SGD:
        step_sgd(o, params, grads, lr, lo, hi);
        break;
    case DN_OPTIM_ADAM:
    case DN_OPTIM_ADAMW:
        step_adam(o, params, grads, lr, lo, hi);
        break;
    }
}

void dn_optim_step_end(dn_optim *o)
{
    o->steps++;
}

void dn_optim_step(dn_optim *o, float *params, const float *grads, double lr)
{
    dn_optim_step_range(o, params, grads, lr, 0, o->n);
    dn_optim_step_end(o);
}

/* ------------------------------------------------------------------------ */
/* Schedules                                                                */
/* ------------------------------------------------------------------------ */

const char *dn_sched_name(dn_sched_kind kind)
{
    if ((unsigned)kind < (unsigned)N_SCHED)
        return sched_names[kind];
    return "unknown";
}

dn_status dn_sched_parse(const char *name, dn_sched_kind *kind, dn_error *err)
{
    int i = find_name(sched_names, N_SCHED, name);
    if (i >= 0) {
        *kind = (dn_sched_kind)i;
        return DN_OK;
    }
    return dn_fail(err, DN_ERR_ARG, "unknown schedule '%s', expected step, cosine, onecycle or none",
                   name ? name : "(null)");
}

void dn_sched_defaults(dn_sched_config *s, dn_sched_kind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->step_size = 1;
    s->gamma = 0.7;
    s->eta_min = 0;
    s->pct_start = 0.3;
    s->div_factor = 25;
    s->final_div_factor = 1e4;
}

/* PyTorch's OneCycleLR._annealing_cos. */
static double anneal_cos(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1);
}

double dn_sched_lr(const dn_sched_config *s, double lr, int epoch, int epochs, long batch,
                   long batches)
{
    switch (s->kind) {
    case DN_SCHED_NONE:
        return lr;
    case DN_SCHED_STEP: {
        int k = s->step_size > 0 ? epoch / s->step_size : 0;
        /* Repeated multiplication, as the chainable StepLR does. */
        for (int i = 0; i < k; i++)
            lr *= s->gamma;
        return lr;
    }
    case DN_SCHED_COSINE:
        if (epochs <= 0)
            return lr;
        return s->eta_min + (lr - s->eta_min) * (1 + cos(M_PI * epoch / epochs)) / 2;
    case DN_SCHED_ONECYCLE: {
        double total = (double)epochs * (double)batches;
        double step = (double)epoch * (double)batches + (double)batch;
        double initial = lr / s->div_factor;
        double min_lr = initial / s->final_div_factor;
        /* The two phases of PyTorch's OneCycleLR (three_phase=False): the
         * rise ends at step pct_start * total - 1, the fall at total - 1. */
        double end1 = s->pct_start * total - 1, end2 = total - 1;
        if (step <= end1)
            return anneal_cos(initial, lr, end1 > 0 ? step / end1 : 1);
        if (end2 <= end1)
            return min_lr;
        return anneal_cos(lr, min_lr, (step - end1) / (end2 - end1));
    }
    }
    return lr;
}
