/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-client.h: the CLI side of the gate daemon (its control socket
 * <runtime>/gate.ctl). Never prints. */
#pragma once

#include "sandbox.h"

int gate_ctl_path(const char *runtime_dir, char **ret);
/* <runtime>/containers/<name>/gate.sock (/run/terok/gate.sock inside). */
int gate_socket_path(const char *runtime_dir, const char *container, char **ret);

int gate_client_ping(sandbox *sb, terok_error *err);
/* Ping, or start `terok-sandbox-daemon [--config F] gate serve --foreground` detached (log in
 * <state>/logs/gate.log) and wait for it. */
int gate_client_ensure(sandbox *sb, const char *config_file, terok_error *err);
int gate_client_open(sandbox *sb, const char *container, terok_error *err);
int gate_client_close(sandbox *sb, const char *container, terok_error *err);
/* Ask a running daemon to exit; -ENOENT/-ECONNREFUSED when none runs. */
int gate_client_stop(sandbox *sb, terok_error *err);
