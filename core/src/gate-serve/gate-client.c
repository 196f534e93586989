/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-client.c: reach the gate daemon: ping, start on demand, open or close a
 * container's socket, stop. Never prints. */
#include "daemon/ctl.h"
#include "daemon/spawn.h"
#include "error.h"
#include "gate-serve/gate-client.h"
#include "util/macro.h"

int gate_ctl_path(const char *runtime_dir, char **ret)
{
    return asprintf(ret, "%s/gate.ctl", runtime_dir) < 0 ? -ENOMEM : 0;
}

int gate_socket_path(const char *runtime_dir, const char *container, char **ret)
{
    return asprintf(ret, "%s/containers/%s/gate.sock", runtime_dir, container) < 0 ? -ENOMEM : 0;
}

static int call(sandbox *sb, const char *op, const char *container, int timeout_ms,
                terok_error *err)
{
    return daemon_call(sb, "gate", op, container, timeout_ms, err);
}

int gate_client_ping(sandbox *sb, terok_error *err)
{
    return call(sb, "ping", NULL, 2000, err);
}

int gate_client_ensure(sandbox *sb, const char *config_file, terok_error *err)
{
    return daemon_spawn(sb, config_file, "gate", false, gate_client_ping, err);
}

int gate_client_open(sandbox *sb, const char *container, terok_error *err)
{
    int r = call(sb, "open", container, 5000, err);

    return r < 0 ? terok_error_prefix(err, "gate daemon: opening the socket of '%s'", container)
                 : 0;
}

int gate_client_close(sandbox *sb, const char *container, terok_error *err)
{
    return call(sb, "close", container, 5000, err);
}

int gate_client_stop(sandbox *sb, terok_error *err)
{
    return call(sb, "stop", NULL, 5000, err);
}
