/* cmd_eval.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'eval' is not built yet");
}
