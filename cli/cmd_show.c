/* cmd_show.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_show(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'show' is not built yet");
}
