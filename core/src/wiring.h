/* SPDX-License-Identifier: Apache-2.0 */
/* wiring.h: what connects a container to the host services (DESIGN §7 step 2): its runtime
 * directory (<runtime>/containers/<name>/, 0711, bind-mounted read-only at /run/terok), a
 * phantom token per broker route it may use (env: the route's token-env and base-url-env ->
 * http://127.0.0.1:9419/<route> through terok-init's bridge), and the vault daemon's socket for
 * it. Everything is undone on failure and on rm. Never prints. */
#pragma once

#include "sandbox.h"

typedef struct wiring {
    char *run_dir; /* <runtime>/containers/<name> */
    char **env;    /* "K=V" to add to the container (phantom tokens: secret, wiped on done) */
    bool vault_opened;
    bool dir_created;
} wiring;

/* routes: names to wire, or NULL for every configured route. token_ttl_s: the tokens expire
 * that many seconds from now (0: valid until revoked or rm). */
int wiring_setup(sandbox *s, const char *name, char *const *routes, int64_t token_ttl_s,
                 const char *config_file, wiring *w, terok_error *err);
/* Undo a setup that did not lead to a container (revoke, close, remove the dir). */
void wiring_rollback(sandbox *s, const char *name, wiring *w);
void wiring_done(wiring *w);
/* rm: revoke the container's tokens, close its sockets, remove its runtime dir. Idempotent. */
int wiring_teardown(sandbox *s, const char *name, terok_error *err);
int wiring_run_dir(sandbox *s, const char *name, char **ret);
