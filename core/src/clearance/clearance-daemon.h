/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/clearance-daemon.h: `terok-sandbox clearance serve`: the daemon that collects the
 * shield's blocked-connection events (DESIGN §1). It holds one NFLOG source per running shielded
 * container, appends every event to the shield audit (clearance/shield-audit.h), keeps a bounded
 * queue of pending blocked destinations per container for the operator, and applies the
 * operator's verdict through the shield's live allow/deny. Control socket
 * <runtime>/clearance.ctl (daemon/ctl.h). Links only core dependencies (no libcurl, no
 * libmicrohttpd). */
#pragma once

#include "sandbox.h"

#define CLEARANCE_PENDING_MAX 128 /* per container; the oldest request is dropped */
#define CLEARANCE_RATE_MAX 100    /* audit rows per container per second; more are counted */
#define CLEARANCE_RESCAN_MS 1000  /* how often containers are checked for a (re)start */
#define CLEARANCE_REPLY_MAX 300   /* pending entries in one ctl reply */

typedef struct clearance_daemon_opts {
    void (*ready)(void *userdata); /* called once the control socket listens */
    void *ready_userdata;
} clearance_daemon_opts;

/* Runs until SIGTERM/SIGINT, a "stop" request, or its control socket is taken away (removed or
 * replaced: the runtime dir is gone or another daemon took over). */
int clearance_daemon_run(sandbox *sb, const clearance_daemon_opts *o, terok_error *err);

int clearance_ctl_path(const char *runtime_dir, char **ret);
