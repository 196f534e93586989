/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-client.c: how the CLI reaches the vault daemon: ping its control socket, start
 * it on demand (terok-sandbox-daemon `vault serve`, detached, logging to <state>/logs/vault.log),
 * and ask it to open or close a container's socket. Never prints. */
#include "broker/vault-client.h"
#include "broker/vault-daemon.h"
#include "daemon/ctl.h"
#include "daemon/spawn.h"
#include "error.h"
#include "util/macro.h"

int vault_ctl_path(const char *runtime_dir, char **ret)
{
    return asprintf(ret, "%s/vault.ctl", runtime_dir) < 0 ? -ENOMEM : 0;
}

static int call(sandbox *sb, const char *op, const char *container, int timeout_ms,
                terok_error *err)
{
    return daemon_call(sb, "vault", op, container, timeout_ms, err);
}

int vault_client_ping(sandbox *sb, terok_error *err)
{
    return call(sb, "ping", NULL, 2000, err);
}

int vault_client_ensure(sandbox *sb, const char *config_file, terok_error *err)
{
    return daemon_spawn(sb, config_file, "vault", false, vault_client_ping, err);
}

int vault_client_open(sandbox *sb, const char *container, terok_error *err)
{
    int r = call(sb, "open", container, 5000, err);

    return r < 0 ? terok_error_prefix(err, "vault daemon: opening the socket of '%s'", container)
                 : 0;
}

int vault_client_close(sandbox *sb, const char *container, terok_error *err)
{
    return call(sb, "close", container, 5000, err);
}

int vault_client_stop(sandbox *sb, terok_error *err)
{
    return call(sb, "stop", NULL, 5000, err);
}
