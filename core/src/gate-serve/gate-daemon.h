/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-daemon.h: `terok-sandbox gate serve`, the git gate daemon. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/tcp-listener.h"
#include "sandbox.h"

typedef tcp_listener gate_tcp_listener;

typedef struct gate_daemon_opts {
    const gate_tcp_listener *tcp; /* tests and benchmarks */
    size_t n_tcp;
    unsigned max_workers;          /* concurrent git requests; 0: 8 */
    void (*ready)(void *userdata); /* called once everything listens */
    void *ready_userdata;
} gate_daemon_opts;

/* Runs until SIGTERM/SIGINT or a `stop` on the control socket. */
int gate_daemon_run(sandbox *sb, const gate_daemon_opts *o, terok_error *err);
