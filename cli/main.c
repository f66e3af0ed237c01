/*
 * main.c - the digitnet command: dispatch to a subcommand, and what holds
 * for all of them: a file size limit is an error, not a silent death, and
 * everything printed must reach standard output.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "check a dataset and print its counts and shape"},
    {"shapes", cmd_shapes, "print each layer's output shape, parameters and cost"},
    {"train", cmd_train, "train the model on MNIST and write a model file"},
    {"eval", cmd_eval, "test loss, accuracy, confusion matrix, per-class scores"},
    {"predict", cmd_predict, "log-probabilities of each class for your images"},
    {"show", cmd_show, "pictures of every layer's feature maps and filters"},
    {"report", cmd_report, "an HTML page of training curves and mistakes"},
    {"export", cmd_export, "write the model as ONNX for other runtimes"},
    {"serve", cmd_serve, "a live drawing page and an HTTP API (libmicrohttpd)"},
};

static void usage(FILE *f)
{
    fprintf(f, "digitnet %s - identify handwritten digits with a CNN\n\n"
               "usage: digitnet COMMAND [OPTIONS]   (digitnet COMMAND --help)\n\n"
               "commands:\n", DN_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexamples:\n"
               "  digitnet info --data data/mnist\n"
               "  digitnet shapes\n"
               "  digitnet train --epochs 14 --out digitnet.safetensors\n"
               "  digitnet eval --model digitnet.safetensors\n"
               "  digitnet predict --model digitnet.safetensors my-digit.png\n"
               "  digitnet show --model digitnet.safetensors --mnist-index 0 --out out/show\n"
               "  digitnet report --metrics digitnet.safetensors.metrics.jsonl \\\n"
               "      --model digitnet.safetensors --out out/report\n"
               "  digitnet export --model digitnet.safetensors --onnx digitnet.onnx\n"
               "  digitnet serve --model digitnet.safetensors --port 8080\n");
}

/* Flushes and closes standard output: output lost to a full disk, a
 * closed descriptor or /dev/full is a failure, even if the command itself
 * succeeded. Returns rc, or CLI_EXIT_FAIL after one line if rc was 0. */
static int close_stdout(int rc)
{
    int failed = ferror(stdout);
    errno = 0;
    if (fclose(stdout) != 0)
        failed = 1;
    if (!failed)
        return rc;
    fprintf(stderr, "digitnet: cannot write to standard output: %s\n",
            errno ? strerror(errno) : "an earlier write failed");
    return rc ? rc : CLI_EXIT_FAIL;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("digitnet %s\n", DN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "digitnet: unknown command '%s' (see 'digitnet --help')\n", argv[1]);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* Under a file size limit (ulimit -f) a write then fails with EFBIG,
     * which is reported and cleaned up after, instead of SIGXFSZ killing
     * the process with no message and its temporary file left behind. */
    signal(SIGXFSZ, SIG_IGN);
    return close_stdout(dispatch(argc, argv));
}
