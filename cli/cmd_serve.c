/*
 * cmd_serve.c - `digitnet serve`: the live page and the HTTP API. Options,
 * start, and the main thread's life afterwards: it only waits for signals
 * (SIGHUP reloads the model, SIGINT and SIGTERM stop), while
 * libmicrohttpd's threads answer requests.
 */
#include "options.h"
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: digitnet serve [OPTIONS]\n"
        "\n"
        "Serves a page where you draw a digit and watch the network answer as you\n"
        "draw (probabilities, the 28x28 it sees, every layer's feature maps, which\n"
        "strokes mattered), and an HTTP API for the same (GET /api/openapi.json\n"
        "describes it). Loads the model once; prints the address to open and one\n"
        "access-log line per request. Ctrl-C (SIGINT) or SIGTERM stops after the\n"
        "requests in flight; SIGHUP reloads the model file (a file that does not\n"
        "load is refused and the model before keeps serving).\n"
        "\n"
        "options:\n"
        "  --model FILE         model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 or ::\n"
        "                       for every interface)\n"
        "  --port N             port (default 8080; 0 picks a free one)\n"
        "  --threads N          request threads (default: one per core)\n"
        "  --data DIR           dataset directory for the test digits and the model's\n"
        "                       test accuracy (default: $DIGITNET_DATA or " CLI_DEFAULT_DATA ")\n"
        "  --per-ip N           open connections per client address (default 128)\n"
        "  --max-connections N  open connections in all (default 1024)\n"
        "  --timeout S          close a connection idle for S seconds (default 10)\n"
        "  --access-log FILE    where the access log goes: a file (appended), - for\n"
        "                       standard output (the default), or none\n"
        "  -h, --help           this help\n"
        "\n"
        "examples:\n"
        "  digitnet serve --model out/lecture.safetensors\n"
        "  digitnet serve --port 0 --access-log none\n"
        "  curl -s --data-binary @digit.png -H 'Content-Type: image/png' \\\n"
        "      http://127.0.0.1:8080/api/predict\n"
        "  kill -HUP $(pidof digitnet)      # after writing a new model file\n");
}

typedef struct options {
    const char *model, *data, *log;
    long port, threads, per_ip, max_conn, timeout;
    serve_options http;
} options;

/* 0, CLI_HELP, or CLI_EXIT_USAGE after one line. */
static int parse(int argc, char **argv, options *o)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    memset(o, 0, sizeof *o);
    o->log = "-";
    o->port = 8080;
    o->threads = cores > 0 ? cores : 1;
    o->per_ip = 128;
    o->max_conn = 1024;
    o->timeout = 10;
    o->http.host = "127.0.0.1";
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&o->model),
        CLI_OPT_DATA(&o->data),
        {.name = "host", .kind = CLI_STRING, .target = &o->http.host},
        {.name = "port", .kind = CLI_LONG, .target = &o->port, .min = 0, .max = 65535,
         .bad = "--port wants 0..65535, not '%s'"},
        CLI_OPT_THREADS(&o->threads),
        {.name = "per-ip", .kind = CLI_LONG, .target = &o->per_ip, .min = 1, .max = 100000,
         .bad = "--per-ip wants 1..100000, not '%s'"},
        {.name = "max-connections", .kind = CLI_LONG, .target = &o->max_conn, .min = 1,
         .max = 100000, .bad = "--max-connections wants 1..100000, not '%s'"},
        {.name = "timeout", .kind = CLI_LONG, .target = &o->timeout, .min = 1, .max = 3600,
         .bad = "--timeout wants 1..3600 seconds, not '%s'"},
        {.name = "access-log", .kind = CLI_STRING, .target = &o->log},
    };
    const cli_spec spec = {"serve", usage, opts, CLI_N(opts), 0};
    int next;
    int rc = cli_parse(&spec, argc, argv, &next, NULL);
    o->http.port = (int)o->port;
    o->http.threads = (int)o->threads;
    o->http.per_ip = (int)o->per_ip;
    o->http.max_conn = (int)o->max_conn;
    o->http.timeout_s = (int)o->timeout;
    o->http.log_fd = -1;
    return rc;
}

static void print_address(const char *host, int port)
{
    int v6 = strchr(host, ':') != NULL;
    printf("open http://%s%s%s:%d/ in a browser (the API: http://%s%s%s:%d/api/openapi.json)\n",
           v6 ? "[" : "", host, v6 ? "]" : "", port, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

int cmd_serve(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    const char *path = cli_model_path(o.model);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return cli_fail("no model file '%s': train one with 'digitnet train' (it writes %s by "
                        "default), or give --model FILE or DIGITNET_MODEL",
                        path, CLI_DEFAULT_MODEL);
    if (!strcmp(o.log, "-"))
        o.http.log_fd = STDOUT_FILENO;
    else if (strcmp(o.log, "none") != 0 &&
             (o.http.log_fd = open(o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        return cli_fail("%s: cannot open the access log: %s", o.log, strerror(errno));

    /* Signals are taken by this thread alone, with sigwait: blocked before
     * libmicrohttpd starts its threads, which inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    dn_error err = {0};
    if (serve_model_load(path, o.data, &err) != DN_OK)
        return cli_fail_err(&err);
    int port = 0;
    serve_http *h = serve_http_start(&o.http, &port, &err);
    if (!h) {
        serve_model_shutdown();
        return cli_fail_err(&err);
    }
    serve_model *sm = serve_model_acquire();
    printf("digitnet serve: %s, %zu parameters, ", path, sm->m->n_params);
    if (sm->has_test)
        printf("test set %s (%zu images); ", sm->test.name, sm->test.n);
    else
        printf("%s; ", sm->test_note);
    printf("%d threads, pid %ld\n", o.http.threads, (long)getpid());
    serve_model_release(sm);
    print_address(o.http.host, port);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            dn_error rerr = {0};
            if (serve_model_load(path, o.data, &rerr) == DN_OK) {
                sm = serve_model_acquire();
                serve_log(STDERR_FILENO, "reloaded %s: generation %u", path, sm->generation);
                serve_model_release(sm);
                serve_metrics_reload(1);
            } else {
                sm = serve_model_acquire();
                serve_log(STDERR_FILENO, "reload refused, still serving generation %u: %s",
                          sm->generation, rerr.msg);
                serve_model_release(sm);
                serve_metrics_reload(0);
            }
            continue;
        }
        serve_log(STDERR_FILENO, "stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        int left = serve_http_stop(h, 10000);
        if (left)
            serve_log(STDERR_FILENO, "%d requests were still running after 10 s", left);
        serve_model_shutdown();
        if (o.http.log_fd > STDERR_FILENO)
            close(o.http.log_fd);
        return 0;
    }
}
