/* SPDX-License-Identifier: Apache-2.0 */
/* broker/proxy.h: the phantom-token reverse proxy (DESIGN §1, issue 4): one HTTP listener per
 * container (its vault.sock; the socket is the container's identity), requests
 * /<route>/<path> forwarded to the route's upstream with the real credential in place of the
 * phantom token, both bodies streamed through bounded buffers (SSE chunks pass as they come,
 * uploads are never held whole), hop-by-hop and inbound auth headers stripped, redirects of
 * safe methods followed with the credential dropped on a cross-origin hop. Every request is
 * audited through the hooks. Statuses: 401 missing/invalid/expired token, 403 token of another
 * container or route or a request the route does not allow, 404 no such route, 413 body over
 * the route's cap, 502 credential missing or upstream failure, 400 malformed. Never prints.
 *
 * OAuth routes (oauth-token-url + oauth-client-id): the credential is a JSON token set
 * {"access_token", "refresh_token", "expires_at"} (docs/vault.md). The access token is injected;
 * it is refreshed (grant_type=refresh_token, on the same libcurl loop, requests waiting for it
 * suspended) OAUTH_MARGIN_S before expires_at and once after an upstream 401 for a request
 * without a body, and the new set is written back through put_credential. A failed refresh is
 * a 502 naming the token endpoint's status, never a token. */
#pragma once

#include <stdint.h>

#include "broker/routes.h"
#include "daemon/evloop.h"
#include "secret.h"
#include "tokens.h"

typedef struct broker_audit {
    const char *container;
    const char *route; /* NULL when the request named none */
    const char *method;
    const char *path;    /* without the query */
    const char *outcome; /* "ok", "missing-token", "invalid-token", "wrong-container", ... */
    int status;
    uint64_t bytes_in, bytes_out;
    int64_t duration_us;
} broker_audit;

typedef struct broker_hooks {
    /* Check a phantom presented on `container`'s socket for `route`. */
    int (*check_token)(void *userdata, const char *container, const char *route, const char *token,
                       size_t len, token_verdict *ret_verdict, terok_error *err);
    /* The real credential, borrowed until the next call into the hooks; -ENOENT when the vault
     * has none. */
    int (*get_credential)(void *userdata, const char *name, const terok_secret **ret,
                          terok_error *err);
    void (*audit)(void *userdata, const broker_audit *a); /* may be NULL */
    void *userdata;
    /* Store a refreshed OAuth token set (routes with oauth-token-url); NULL: refreshed tokens
     * are used but not kept. */
    int (*put_credential)(void *userdata, const char *name, const terok_secret *value,
                          terok_error *err);
} broker_hooks;

typedef struct proxy proxy;

/* routes and hooks are borrowed and must outlive the proxy. ca_file: extra CA bundle for
 * upstream TLS (tests), or NULL for the system's. */
int proxy_new(evloop *l, const routes *r, const broker_hooks *hooks, const char *ca_file,
              proxy **ret, terok_error *err);
proxy *proxy_free(proxy *p);

/* A container's socket (mode 0666: the directory's 0711 and the 0700 parent keep others out). */
int proxy_listen_unix(proxy *p, const char *container, const char *path, terok_error *err);
/* Loopback TCP for tests and benchmarks; every request on it counts as `container`. */
int proxy_listen_tcp(proxy *p, const char *container, const char *ipv4, uint16_t port,
                     uint16_t *ret_port, terok_error *err);
/* A listening socket bound by the caller (the daemon's worker threads each serve a dup of the
 * same socket); takes fd, also on failure. is_unix: the container's socket, replacing the one
 * it had. */
int proxy_listen_fd(proxy *p, const char *container, int fd, bool is_unix, terok_error *err);
/* Close the container's socket only (its TCP listeners stay). */
void proxy_close_unix(proxy *p, const char *container);
/* Close every listener of a container; 0 when it had none. */
int proxy_close(proxy *p, const char *container);
size_t proxy_listeners(proxy *p);
