/* SPDX-License-Identifier: Apache-2.0 */
/* http-harness.h: a tiny one-connection-at-a-time HTTP/1.1 server for tests that puts the real
 * `git` client in front of a gate plugin's serve op (no authentication: the path names the task,
 * /<task>/<repo>.git/<service>, and a fixed table gives its rights). Test code only. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "loader.h"

typedef struct gate_srv {
    pid_t pid;
    int port;
} gate_srv;

/* Fork a server child that loads `so` with state dir `state_dir`, opens it, and serves
 * forever. `rights` is "task-a=rw,task-b=r". Every request is logged as one line to `log`:
 * "<METHOD> <service_path> proto=<Git-Protocol> enc=<Content-Encoding> status=<n>". */
void gate_srv_start(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                    const char *log);
/* Same, requiring the exact header value "Authorization: <auth>" (401 with a Basic challenge
 * otherwise). The log line says auth=ok|missing|wrong, never the value. */
void gate_srv_start_auth(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                         const char *log, const char *auth);
/* Same, opening the plugin with the [gate.git] section of config file `config` (the
 * operator's policy: max-push-size, allow-force-push, ...). */
void gate_srv_start_config(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                           const char *log, const char *config);
void gate_srv_stop(gate_srv *s);
