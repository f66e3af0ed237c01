/* cmd_train.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'train' is not built yet");
}
