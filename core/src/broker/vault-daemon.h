/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-daemon.h: the vault broker daemon and how the CLI reaches it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/tcp-listener.h"
#include "sandbox.h"

typedef tcp_listener vault_tcp_listener;

typedef struct vault_daemon_opts {
    const vault_tcp_listener *tcp; /* tests and benchmarks */
    size_t n_tcp;
    const char *ca_file;           /* extra CA bundle for upstream TLS, or NULL */
    void (*ready)(void *userdata); /* called once everything listens */
    void *ready_userdata;
    bool no_db_watch; /* tests: no inotify watch of the state database, the token epoch alone */
} vault_daemon_opts;

/* Runs until SIGTERM/SIGINT. */
int vault_daemon_run(sandbox *sb, const vault_daemon_opts *o, terok_error *err);

int vault_ctl_path(const char *runtime_dir, char **ret);
int vault_socket_path(const char *runtime_dir, const char *container, char **ret);
