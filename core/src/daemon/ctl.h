/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/ctl.h: a daemon's control socket (<runtime>/<service>.ctl): AF_UNIX SOCK_SEQPACKET,
 * mode 0600, every peer checked with SO_PEERCRED (root or the daemon's own uid), one JSON object
 * per message, at most CTL_MAX_MESSAGE bytes. Requests {"op": "...", ...}; replies
 * {"ok": true, ...} or {"ok": false, "error": "..."}. Never prints. */
#pragma once

#include <json-c/json.h>
#include <sys/socket.h>

#include "daemon/evloop.h"
#include "terok/error.h"

#define CTL_MAX_MESSAGE (64 * 1024)
#define CTL_MAX_CLIENTS 64

typedef struct ctl_server ctl_server;

/* Handle one request: return the reply (ownership passes to the server), or NULL for
 * {"ok":false,"error":<err message>} built from *err. */
typedef json_object *(*ctl_handler)(void *userdata, const struct ucred *peer, json_object *request,
                                    terok_error *err);

/* Bind (replacing a stale socket file), chmod 0600, listen, and serve from the loop. */
int ctl_server_new(evloop *l, const char *path, ctl_handler handler, void *userdata,
                   ctl_server **ret, terok_error *err);
/* Serve an already-bound listening fd (socket activation). */
int ctl_server_adopt(evloop *l, int fd, ctl_handler handler, void *userdata, ctl_server **ret,
                     terok_error *err);
ctl_server *ctl_server_free(ctl_server *s); /* unlinks the socket it created */
/* Leave the socket file alone at free (it was replaced: another daemon's now). */
void ctl_server_keep_path(ctl_server *s);

/* A string member of a request: NULL with err set when it is missing (and required), not a
 * string, longer than max or holding a NUL byte (json-c keeps "\u0000"; C would cut there). */
const char *ctl_req_string(json_object *req, const char *key, size_t max, terok_error *err,
                           bool required);

/* The ops every daemon with per-container sockets (vault, gate) answers: "open" and "close"
 * (with "container"), "stop", "status", "ping". The reply is {"ok": true, "pid"} plus what
 * status adds. */
typedef struct ctl_container_ops {
    const char *service; /* "vault", "gate": the log lines' prefix */
    int (*open)(void *userdata, const char *container, terok_error *err);
    void (*close)(void *userdata, const char *container);
    void (*status)(void *userdata, json_object *reply);
    void (*stop)(void *userdata);
} ctl_container_ops;
json_object *ctl_container_dispatch(const ctl_container_ops *ops, void *userdata,
                                    const struct ucred *peer, json_object *request,
                                    terok_error *err);

/* Client: send one request, wait for the reply (timeout_ms), return it (caller owns). A reply
 * with ok=false becomes -EREMOTEIO with the daemon's message. -ECONNREFUSED/-ENOENT when no
 * daemon listens. */
int ctl_call(const char *path, json_object *request, int timeout_ms, json_object **ret_reply,
             terok_error *err);
