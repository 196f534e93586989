/* SPDX-License-Identifier: Apache-2.0 */
/* gate.h: core wrappers over the gate backend's ops: a NULL op or a missing capability is
 * -EOPNOTSUPP with a message naming the backend; names are checked before the plugin sees them;
 * context is added to every error. The only way core code reaches a gate plugin. Never prints.
 * Upstream credentials are fetched from the vault here and lent to the plugin for one call. */
#pragma once

#include <stdbool.h>

#include "registry.h"
#include "terok/gate.h"

typedef struct gate {
    plugin *plugin;
    void *state;
    registry *registry; /* for the vault, when a repo names a credential */
} gate;

int gate_open(registry *r, uint64_t required_caps, gate *ret, terok_error *err);
bool gate_has_cap(const gate *g, uint64_t cap);

/* A project (repo) name: [a-z0-9][a-z0-9._-]*, at most 64, no "..". */
bool gate_repo_name_is_valid(const char *name);
/* A branch name a client may push and the operator may name: what git check-ref-format accepts
 * for refs/heads/<name>, at most 200. */
bool gate_branch_name_is_valid(const char *name);

/* ssh://, ssh+git://, git+ssh:// or scp-like [user@]host:path. */
bool gate_url_is_ssh(const char *url);

int gate_repo_create(gate *g, const terok_gate_repo_spec *spec, terok_error *err);
/* -ENOENT (no message prefix) when absent: callers word idempotence themselves. */
int gate_repo_delete(gate *g, const char *repo, terok_error *err);
int gate_repo_list(gate *g, terok_gate_json_cb cb, void *userdata, terok_error *err);
/* The credential name a repo was created with (NULL: none). *ret is the caller's. */
int gate_repo_credential(gate *g, const char *repo, char **ret, terok_error *err);
int gate_sync(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata, terok_error *err);
int gate_pending_list(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata,
                      terok_error *err);
int gate_pending_apply(gate *g, const char *repo, const char *ref, terok_error *err);
int gate_grant(gate *g, const char *container, const char *repo, uint32_t rights, terok_error *err);
int gate_revoke(gate *g, const char *container, const char *repo, terok_error *err);
/* *ret_decision is TEROK_DECISION_DENY on any error. */
int gate_authorize(gate *g, const char *container, const char *repo, uint32_t operation,
                   uint32_t *ret_decision, terok_error *err);
int gate_serve(gate *g, const terok_gate_http *req, terok_error *err);
int gate_review(gate *g, const char *container, const char *repo, terok_gate_branch_cb cb,
                void *userdata, terok_error *err);
int gate_diff(gate *g, const char *container, const char *repo, const char *branch,
              terok_gate_text_cb cb, void *userdata, terok_error *err);
int gate_forward(gate *g, const char *container, const char *repo, const char *branch,
                 const char *to_branch, uint32_t flags, terok_error *err);
int gate_backups_list(gate *g, const char *repo, terok_gate_json_cb cb, void *userdata,
                      terok_error *err);
int gate_backup_restore(gate *g, const char *repo, const char *backup, terok_error *err);
int gate_backups_prune(gate *g, const char *repo, int64_t older_than_seconds, uint64_t *ret_pruned,
                       terok_error *err);
int gate_ctl(gate *g, uint32_t op, void *arg, terok_error *err);
