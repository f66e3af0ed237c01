/*
 * cmd_export.c - `digitnet export`: a model file as ONNX, for ONNX Runtime
 * and every other runtime that reads it.
 */
#include "options.h"

#include <stdio.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: digitnet export [--model FILE] --onnx OUT.onnx\n"
        "\n"
        "Writes the model as an ONNX file (IR version %d, opset %d) that ONNX Runtime\n"
        "and other runtimes run with the same results: input \"input\" (batch, 1, 28,\n"
        "28) float32, normalised; output \"log_probs\" (batch, classes). Any spec\n"
        "the model may have is written (Conv, Relu, MaxPool, Flatten, Gemm,\n"
        "LogSoftmax; dropout, which does nothing at inference, is left out). The\n"
        "model's metadata records the spec, the input normalisation, the\n"
        "preprocessing a picture needs and the class names. The file is written\n"
        "atomically: an existing OUT.onnx is replaced only by a complete file.\n"
        "\n"
        "options:\n"
        "  --model FILE    model file (default: $DIGITNET_MODEL or " CLI_DEFAULT_MODEL ")\n"
        "  --onnx FILE     the ONNX file to write\n"
        "  -h, --help      this help\n"
        "\n"
        "exit status: 0 written, 1 the model could not be read or the file written,\n"
        "2 usage error.\n"
        "\n"
        "examples:\n"
        "  digitnet export --model out/lecture.safetensors --onnx out/lecture.onnx\n"
        "  python3 -c 'import onnx; onnx.checker.check_model(\"out/lecture.onnx\", True)'\n",
        DN_ONNX_IR_VERSION, DN_ONNX_OPSET);
}

int cmd_export(int argc, char **argv)
{
    const char *model_arg = NULL, *onnx = NULL;
    const cli_opt opts[] = {
        CLI_OPT_MODEL(&model_arg),
        {.name = "onnx", .kind = CLI_STRING, .target = &onnx},
    };
    const cli_spec spec = {"export", usage, opts, CLI_N(opts), 0};
    int next, rc = cli_parse(&spec, argc, argv, &next, NULL);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    if (!onnx)
        return cli_usage("export", "give the file to write with --onnx OUT.onnx");
    if (!*onnx)
        return cli_usage("export", "--onnx wants a file name, not an empty string");

    const char *path = cli_model_path(model_arg);
    dn_error err = {0};
    dn_model *m = dn_model_load(path, NULL, &err);
    if (!m)
        return cli_fail_err(&err);
    if (dn_onnx_save(m, onnx, &err) != DN_OK) {
        dn_model_free(m);
        return cli_fail_err(&err);
    }
    printf("wrote %s (ONNX IR %d, opset %d, %zu parameters) from %s\n", onnx,
           DN_ONNX_IR_VERSION, DN_ONNX_OPSET, m->n_params, path);
    dn_model_free(m);
    return 0;
}
