/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-client.h: the CLI side of the vault daemon. */
#pragma once

#include "sandbox.h"

int vault_client_ping(sandbox *sb, terok_error *err);
/* Ping, or start `terok-sandbox [--config F] vault serve --foreground` detached and wait for it. */
int vault_client_ensure(sandbox *sb, const char *config_file, terok_error *err);
int vault_client_open(sandbox *sb, const char *container, terok_error *err);
int vault_client_close(sandbox *sb, const char *container, terok_error *err);
/* Ask a running daemon to exit; -ENOENT/-ECONNREFUSED when none runs. */
int vault_client_stop(sandbox *sb, terok_error *err);
