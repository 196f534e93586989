/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-gate-daemon.c: `gate stop` and `gate status` (the gate daemon's control socket), in both
 * binaries; `gate serve` is cmd-gate-serve.c (terok-sandbox-daemon only). */
#include <stdio.h>

#include "cli.h"
#include "gate-serve/gate-client.h"

int cmd_gate_stop(cli *c, int argc, char **argv);
int cmd_gate_stop(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    int r;

    if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
        printf("Usage: terok-sandbox gate stop\n\nStop the gate daemon of this state dir (no "
               "daemon running is not an error).\n");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage_error(c, "gate stop", "unexpected argument '%s'", argv[1]);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = gate_client_stop(sb, &err);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        if (!c->json)
            printf("no gate daemon running\n");
        return EXIT_OK;
    }
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!c->json)
        printf("gate daemon stopped\n");
    return EXIT_OK;
}
