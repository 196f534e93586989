/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder. */
#include "cli.h"
int cmd_run(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_create(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_start(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_stop(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_rm(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_exec(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_logs(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_ps(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_inspect(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
int cmd_wait(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
