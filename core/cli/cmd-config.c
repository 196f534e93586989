/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder. */
#include "cli.h"
int cmd_config(cli *c, int argc, char **argv)
{
    return cli_failf(c, EXIT_FAIL, "not built yet");
}
