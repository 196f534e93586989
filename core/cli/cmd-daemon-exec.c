/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-daemon-exec.c: in the CLI binary, the daemon commands hand the whole command line to
 * terok-sandbox-daemon, which links libcurl and libmicrohttpd so that this binary need not (every
 * CLI start would otherwise pay for loading them: DESIGN §1, bench/cli). */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "paths.h"
#include "terok-build-config.h"

int cli_exec_daemon(cli *c)
{
    char *exe = daemon_exe_path();

    if (!exe)
        return cli_failf(c, EXIT_FAIL,
                         "terok-sandbox-daemon was not found (looked next to this binary and in "
                         "'%s'); reinstall terok-sandbox",
                         TEROK_LIBEXEC_DIR);
    fflush(NULL);
    execv(exe, c->argv);
    int e = errno;
    free(exe);
    return cli_failf(c, EXIT_FAIL, "cannot run terok-sandbox-daemon: %s", strerror(e));
}

int cmd_vault_serve(cli *c, int argc, char **argv);
int cmd_vault_serve(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_exec_daemon(c);
}

int cmd_gate_serve(cli *c, int argc, char **argv);
int cmd_gate_serve(cli *c, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_exec_daemon(c);
}
