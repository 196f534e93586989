/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-http.h: the gate's HTTP side (DESIGN §1, §4 Gate): one libmicrohttpd daemon
 * per container socket (the socket is the container's identity), routing and token checks
 * before anything runs, and each admitted request served by the backend's blocking serve() on
 * a worker thread, bridged to the connection by two bounded buffers so neither body is ever
 * held whole (chunked uploads stream; responses stream as git writes them). At most
 * `max_workers` serve() calls run at once; a request that waits longer than a minute for a slot
 * gets 503. Statuses: 400 malformed path, header or auth, 401 no or unknown token (with
 * WWW-Authenticate), 403 token of another container or repo, or a push with a read grant,
 * 403 too when the backend's authorize() says no, 404 no such endpoint, 405 wrong
 * method, 503 busy or the backend's policy unavailable, 500 backend failure before its answer.
 * Never prints, never logs a token. */
#pragma once

#include <stdint.h>

#include "terok/gate.h"
#include "tokens.h"

typedef struct gate_audit {
    const char *container;
    const char *repo;    /* NULL when the request named none we accept */
    const char *service; /* "git-upload-pack", "git-receive-pack" or "-" */
    const char *method;
    const char *path; /* the endpoint ("info/refs", ...) or "-" */
    const char *outcome;
    int status;
    uint64_t bytes_in, bytes_out;
    int64_t duration_us;
} gate_audit;

/* Called from connection and worker threads, concurrently: implementations lock what they
 * share. */
typedef struct gate_hooks {
    /* Verify a token presented on `container`'s socket for `repo`; fill the verdict and, when
     * valid, the rights (TEROK_GATE_READ/WRITE). An error means the store is broken (-> 503). */
    int (*check_token)(void *userdata, const char *container, const char *repo, const char *token,
                       size_t len, token_verdict *ret_verdict, uint32_t *ret_rights,
                       terok_error *err);
    /* The backend's serve() (blocking). */
    int (*serve)(void *userdata, const terok_gate_http *req, terok_error *err);
    void (*audit)(void *userdata, const gate_audit *a); /* may be NULL */
    void *userdata;
    /* The backend's policy beyond the token, asked after the token and before serve():
     * operation TEROK_GATE_READ or TEROK_GATE_WRITE; *ret_decision TEROK_DECISION_*. An error
     * answers 503, a deny 403 (fail closed both ways). May be NULL: the token decides. */
    int (*authorize)(void *userdata, const char *container, const char *repo, uint32_t operation,
                     uint32_t *ret_decision, terok_error *err);
} gate_hooks;

typedef struct gate_http gate_http;

/* hooks is borrowed and must outlive the server. max_workers 0: 8. */
int gate_http_new(const gate_hooks *hooks, unsigned max_workers, gate_http **ret, terok_error *err);
/* Stops every listener, then waits for running serve() calls to return. */
gate_http *gate_http_free(gate_http *g);

/* A container's socket at path, mode 0666 (its 0711 directory and 0700 parent keep others
 * out); reopening replaces the container's previous Unix listener. */
int gate_http_listen_unix(gate_http *g, const char *container, const char *path, terok_error *err);
/* Loopback TCP (tests, benchmarks): every request on it counts as `container`. */
int gate_http_listen_tcp(gate_http *g, const char *container, const char *ipv4, uint16_t port,
                         uint16_t *ret_port, terok_error *err);
/* Close every listener of a container; returns how many there were. */
int gate_http_close(gate_http *g, const char *container);
size_t gate_http_listeners(gate_http *g);
