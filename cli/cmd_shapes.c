/* cmd_shapes.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_shapes(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'shapes' is not built yet");
}
