/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/clearance-client.h: how the CLI reaches the clearance daemon. Never prints. */
#pragma once

#include <json-c/json.h>

#include "sandbox.h"

/* One request (consumed: the caller's reference is dropped), one reply (caller owns). */
int clearance_client_call(sandbox *sb, json_object *request, int timeout_ms,
                          json_object **ret_reply, terok_error *err);
int clearance_client_ping(sandbox *sb, terok_error *err);
/* Ping, or start `terok-sandbox [--config F] clearance serve --foreground` detached (logging to
 * <state>/logs/clearance.log) and wait for it. */
int clearance_client_ensure(sandbox *sb, const char *config_file, terok_error *err);
/* Ask the daemon to read the events of a container that just started. */
int clearance_client_attach(sandbox *sb, const char *container, terok_error *err);
/* rm: stop watching the container and drop its pending requests (no daemon: nothing to do). */
int clearance_client_forget(sandbox *sb, const char *container, terok_error *err);
/* -ENOENT/-ECONNREFUSED when none runs. */
int clearance_client_stop(sandbox *sb, terok_error *err);
