/* SPDX-License-Identifier: Apache-2.0 */
/* wiring.h: what connects a container to the host services (DESIGN §7 step 2): its runtime
 * directory (<runtime>/containers/<name>/, 0711, bind-mounted read-only at /run/terok), a
 * phantom token per broker route it may use (env: the route's token-env and base-url-env ->
 * http://127.0.0.1:9419/<route> through terok-init's bridge), and the vault daemon's socket for
 * it; for each `--repo <project>[:rw]` a gate token bound to (container, project, rights), the
 * gate backend's grant (the task's own view of the project) and the gate daemon's socket
 * (env: TEROK_GATE_REPO_<PROJECT> = http://<token>@127.0.0.1:9418/<project>.git, ready for
 * `git clone`/origin; TEROK_GATE_URL = http://<token>@127.0.0.1:9418/ for the first project;
 * TEROK_GATE_REPOS = the projects, space-separated). Everything is undone on failure and on rm.
 * Never prints. */
#pragma once

#include "sandbox.h"

typedef struct wiring {
    char *run_dir; /* <runtime>/containers/<name> */
    char **env;    /* "K=V" to add to the container (phantom tokens: secret, wiped on done) */
    bool vault_opened;
    bool gate_opened;
    bool dir_created;
    char **granted; /* projects the gate backend granted (for rollback) */
    bool ssh_wired; /* an SSH scope with keys: scope recorded, SSH_AUTH_SOCK set */
} wiring;

/* routes: names to wire, or NULL for every configured route. repos: "project[:ro|:rw]" (default
 * read-only), or NULL. token_ttl_s: the phantom tokens expire that many seconds from now (0:
 * valid until revoked or rm). */
int wiring_setup(sandbox *s, const char *name, char *const *routes, char *const *repos,
                 int64_t token_ttl_s, const char *config_file, wiring *w, terok_error *err);
/* Parse "project[:ro|:rw]": the project (into buf) and TEROK_GATE_READ[|WRITE]. */
int wiring_parse_repo(const char *arg, char *buf, size_t cap, uint32_t *ret_rights,
                      terok_error *err);
/* Undo a setup that did not lead to a container (revoke, close, remove the dir). */
void wiring_rollback(sandbox *s, const char *name, wiring *w);
void wiring_done(wiring *w);
/* rm: revoke the container's tokens, close its sockets, remove its runtime dir. Idempotent. */
int wiring_teardown(sandbox *s, const char *name, terok_error *err);
int wiring_run_dir(sandbox *s, const char *name, char **ret);
/* After wiring_setup: when scope has SSH keys linked, record it as the container's scope, add
 * SSH_AUTH_SOCK=/run/terok/ssh-agent.sock and have the vault daemon open the container's
 * ssh-agent.sock. A scope without keys wires nothing (w->ssh_wired stays false). */
int wiring_ssh(sandbox *s, const char *name, const char *scope, const char *config_file, wiring *w,
               terok_error *err);
