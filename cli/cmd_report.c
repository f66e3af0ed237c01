/* cmd_report.c - placeholder until the subcommand lands; replaced by its owner. */
#include "cli.h"

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_fail("'report' is not built yet");
}
