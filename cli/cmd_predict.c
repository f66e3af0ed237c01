/* cmd_predict.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_predict(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'predict' is not built yet");
}
