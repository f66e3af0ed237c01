/*
 * train_progress.c - what `digitnet train` shows while it runs: the recipe
 * before it starts, a live progress line on a terminal, one line per epoch
 * (also added to the metrics file's text), and Ctrl-C.
 *
 * Ctrl-C: the first one lets the current batch finish, writes a checkpoint
 * (mid-epoch; `--resume` continues from that very batch with bit-identical
 * results) and exits 130; a second one exits 130 at once.
 */
#include "train_progress.h"

#include "metrics_file.h"
#include "train_files.h"

#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted)
        _exit(CLI_EXIT_INTERRUPTED);
    interrupted = 1;
    static const char msg[] = "\ndigitnet: finishing this batch and writing a checkpoint "
                              "(Ctrl-C again to quit at once)\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
}

void cli_train_catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void fmt_eta(double s, char *buf, size_t size)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, size, "?");
    else if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, size, "%ds", (int)s);
}

/* The line a terminal shows during an epoch, redrawn in place. */
static void live_line(cli_train_run *r, const dn_train_progress *p)
{
    r->last_draw = p->seconds;
    char eta[32];
    double per_batch = p->seconds / (double)(p->batch > 0 ? p->batch : 1);
    fmt_eta(per_batch * (double)(p->batches - p->batch), eta, sizeof eta);
    printf("\r\033[Kepoch %2d/%d  [%5ld/%ld]  %6.0f img/s  loss %.4f  ETA %s", p->epoch,
           p->epochs, p->batch, p->batches, p->images_per_s, p->train_loss, eta);
    fflush(stdout);
    r->drawn = 1;
}

int cli_train_progress(const dn_train_progress *p, void *user)
{
    cli_train_run *r = user;
    if (!p->epoch_done) {
        if (r->tty && (p->seconds - r->last_draw >= 0.2 || p->batch == 1))
            live_line(r, p);
        return interrupted;
    }
    if (r->drawn)
        printf("\r\033[K");
    r->drawn = 0;
    r->last_draw = 0;
    printf("epoch %2d/%d  lr %.4g  train loss %.4f", p->epoch, p->epochs, p->lr, p->train_loss);
    if (p->split)
        printf("  %s loss %.4f  %s acc %.2f +- %.2f %%", p->split, p->eval_loss, p->split,
               100 * p->eval_acc, 100 * p->eval_acc_se);
    printf("  %.1f s  (%.0f img/s)\n", p->seconds, p->images_per_s);
    fflush(stdout);
    if (r->files)
        cli_metrics_line(&r->files->history, p);
    return interrupted;
}

void cli_train_describe(const dn_train_config *c, const dn_model *m, size_t n_train, size_t n_eval,
                     const char *split, int threads)
{
    const dn_optim_config *o = &c->optim;
    printf("training %zu parameters on %zu %s images (%s: %zu), batch %d, %d epochs, seed %llu, "
           "%d threads\n",
           m->n_params, n_train, m->dataset, split ? split : "no evaluation", n_eval, c->batch,
           c->epochs, (unsigned long long)c->seed, threads);
    printf("kernels: %s\n", c->reference ? "general reference kernels" : dn_kernels());
    printf("%s lr %g", dn_optim_name(o->kind), o->lr);
    switch (o->kind) {
    case DN_OPTIM_ADADELTA: printf(" rho %g eps %g", o->rho, o->eps); break;
    case DN_OPTIM_SGD:
        printf(" momentum %g%s", o->momentum, o->nesterov ? " nesterov" : "");
        break;
    case DN_OPTIM_ADAM:
    case DN_OPTIM_ADAMW:
        printf(" betas %g,%g eps %g%s", o->beta1, o->beta2, o->eps, o->amsgrad ? " amsgrad" : "");
        break;
    }
    if (o->weight_decay > 0)
        printf(" weight decay %g", o->weight_decay);
    printf(", schedule %s", dn_sched_name(c->sched.kind));
    if (c->sched.kind == DN_SCHED_STEP)
        printf(" (gamma %g every %d epochs)", c->sched.gamma, c->sched.step_size);
    printf("%s\n", c->augment ? ", augmented" : "");
    fflush(stdout);
}
