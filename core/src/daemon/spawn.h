/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/spawn.h: start a daemon on demand: `terok-sandbox-daemon [--config F] <service> serve
 * --foreground`, detached (own session), logging to <state>/logs/<service>.log, and wait until
 * its control socket answers. Never prints. */
#pragma once

#include "sandbox.h"

/* Open (append, 0600, O_NOFOLLOW) <state>/logs/<service>.log, creating the directories; returns
 * the fd (close-on-exec) and, when ret_path is given, the path. */
int daemon_log_open(sandbox *sb, const char *service, char **ret_path, terok_error *err);

/* ping: 0 once the daemon answers. Returns 0 at once when it already does. */
/* in_cli: the service lives in terok-sandbox itself (this executable); else in
 * terok-sandbox-daemon (the HTTP daemons). */
int daemon_spawn(sandbox *sb, const char *config_file, const char *service, bool in_cli,
                 int (*ping)(sandbox *sb, terok_error *err), terok_error *err);

/* One control request {"op": op[, "container": container]} to <runtime>/<service>.ctl; the
 * reply is checked and dropped (ctl_call's errors: -ENOENT/-ECONNREFUSED when none runs). */
int daemon_call(sandbox *sb, const char *service, const char *op, const char *container,
                int timeout_ms, terok_error *err);

/* <runtime>/containers/<name>/, where a daemon puts a container's sockets, created if missing:
 * containers/ 0700 keeps other users out; <name>/ 0711 lets the container's mapped uid reach a
 * 0666 socket in it through the bind mount (MACHINE.md §13.1). -EINVAL for an invalid name. */
int daemon_container_dir(sandbox *sb, const char *name, char **ret, terok_error *err);
