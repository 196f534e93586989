/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/gate.h: the git gate interface (gate-git, yours).
 *
 * A gate keeps a mirror per project, gives each task its own view of it, serves the task's
 * smart-HTTP requests on the task's own socket, and holds pushed work until the operator
 * reviews and forwards it upstream. Gate tokens are minted, hashed and checked by the core; the
 * gate sees only the (container, repo, rights) a verified token stands for.
 */
#ifndef TEROK_GATE_H
#define TEROK_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEROK_GATE_CAP_UPSTREAM (UINT64_C(1) << 0) /* sync from and forward to an upstream */
#define TEROK_GATE_CAP_SMART_HTTP (UINT64_C(1) << 1)
#define TEROK_GATE_CAP_PROTOCOL_V2 (UINT64_C(1) << 2)
#define TEROK_GATE_CAP_BACKUPS (UINT64_C(1) << 3)

/* Rights of a grant, and operations asked of authorize(). */
enum {
    TEROK_GATE_READ = 1,
    TEROK_GATE_WRITE = 2, /* implies read */
};

/* terok_gate_repo_spec.flags */
/* Trust the SSH host key an ssh:// upstream offers when the project is created, and pin it
 * (trust on first use; the key is recorded and shown). A key that contradicts a known-hosts
 * entry is still refused. */
#define TEROK_GATE_REPO_ACCEPT_HOST_KEY (1u << 0)

typedef struct terok_gate_repo_spec {
    uint32_t struct_size;
    uint32_t flags;           /* TEROK_GATE_REPO_* */
    const char *name;         /* project name, [a-z0-9][a-z0-9._-]* */
    const char *upstream_url; /* NULL: an empty repository */
    const char *branch;       /* default branch, NULL: upstream's HEAD or "main" */
    const char *credential;   /* vault entry for upstream auth, or NULL */
    /* --- grows here; a plugin reads a field only when struct_size covers it --- */
    /* The ssh:// upstream's host key, pinned: "TYPE BASE64" as in known_hosts (a trailing
     * comment is ignored), or NULL. */
    const char *host_key;
} terok_gate_repo_spec;

/* A smart-HTTP request already authenticated by the core. Body and response flow through the
 * callbacks so neither is ever held whole. */
typedef struct terok_gate_http {
    uint32_t struct_size;
    uint32_t rights; /* what the verified token grants: TEROK_GATE_READ/WRITE */
    const char *container;
    const char *repo;
    const char *method;       /* "GET" | "POST" */
    const char *service_path; /* "info/refs" | "git-upload-pack" | "git-receive-pack" */
    const char *query;        /* raw query string, or "" */
    const char *content_type;
    const char *content_encoding;
    const char *git_protocol; /* Git-Protocol header, or NULL */
    /* Read up to len request-body bytes; returns count, 0 at end, < 0 on error. */
    long (*read_body)(void *io, void *buf, size_t len);
    /* Status and headers (NULL-terminated "Name: value") once, then body chunks. */
    int (*write_head)(void *io, int status, const char *const *headers);
    int (*write_body)(void *io, const void *data, size_t len);
    void *io;
} terok_gate_http;

/* Review: one pushed branch of a task. */
typedef struct terok_gate_branch {
    uint32_t struct_size;
    uint32_t flags;
    const char *name;
    const char *oid;
    const char *upstream_oid; /* NULL when upstream has no such branch */
    int64_t ahead;
    int64_t behind;
    const char *detail_json; /* commits and diffstat as JSON text */
} terok_gate_branch;
typedef int (*terok_gate_branch_cb)(void *userdata, const terok_gate_branch *branch);

/* A generic record for repos, pending ops and backups: JSON object text per item. */
typedef int (*terok_gate_json_cb)(void *userdata, const char *json);

/* Text output in chunks (diffs). Nonzero stops. */
typedef int (*terok_gate_text_cb)(void *userdata, const char *data, size_t len);

#define TEROK_GATE_FORWARD_FORCE (1u << 0)

/* ctl opcodes of the gate kind (ABI 1.0 adds no op for these; a backend that lacks one answers
 * -EOPNOTSUPP). Structs passed as `arg` start with struct_size and grow at the end only. */
enum {
    /* Remove backup refs older than a cutoff. arg: terok_gate_prune *. */
    TEROK_GATE_CTL_BACKUPS_PRUNE = 0x0101,
    /* Lend the upstream credential of a repo for the following sync/forward calls of this
     * instance (the plugin copies a secret with host->secret_new and keeps an SSH signer only
     * until it is forgotten), or forget it (nothing lent).
     * arg: terok_gate_credential *. The core fetches the secret from the vault. */
    TEROK_GATE_CTL_CREDENTIAL = 0x0102,
};

typedef struct terok_gate_prune {
    uint32_t struct_size;
    uint32_t flags;
    const char *repo;
    int64_t older_than_seconds; /* backups older than this go; 0: every backup */
    uint64_t ret_pruned;        /* out: how many were removed */
} terok_gate_prune;

/* Signs `len` bytes of data with the lent SSH key: writes the raw signature (ed25519: 64
 * bytes; no type wrapping) into sig (room for sig_cap bytes) and its length into *ret_len.
 * Returns 0 or -errno. Valid only until the credential is forgotten. */
typedef int (*terok_gate_ssh_sign_fn)(void *signer, const uint8_t *data, size_t len, uint8_t *sig,
                                      size_t sig_cap, size_t *ret_len);

/* A credential is either a secret (a token for https upstreams) or an SSH signer (a vault SSH
 * key for ssh:// upstreams: the core keeps the private key and signs on request, so it never
 * enters the plugin). Nothing lent (secret and ssh_sign NULL) forgets. */
typedef struct terok_gate_credential {
    uint32_t struct_size;
    uint32_t flags;
    const char *repo;
    const terok_secret *secret; /* "TOKEN" or "USER:TOKEN", or NULL */
    /* --- grows here; a plugin reads a field only when struct_size covers it --- */
    const uint8_t *ssh_public_key; /* the key's wire blob (string type, string key) */
    size_t ssh_public_key_len;
    terok_gate_ssh_sign_fn ssh_sign; /* NULL: no SSH key lent */
    void *ssh_signer;
} terok_gate_credential;

typedef struct terok_gate_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t caps; /* TEROK_GATE_CAP_* */

    /* --- ABI 1.0 --- */
    int (*open)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                terok_error *err);
    void (*close)(void *state);
    int (*repo_create)(void *state, const terok_gate_repo_spec *spec, terok_error *err);
    int (*repo_delete)(void *state, const char *repo, terok_error *err);
    int (*repo_list)(void *state, terok_gate_json_cb cb, void *userdata, terok_error *err);
    /* Safe sync: creates and fast-forwards applied, rewrites/deletes held as pending. */
    int (*sync)(void *state, const char *repo, terok_gate_json_cb cb, void *userdata,
                terok_error *err);
    int (*pending_list)(void *state, const char *repo, terok_gate_json_cb cb, void *userdata,
                        terok_error *err);
    int (*pending_apply)(void *state, const char *repo, const char *ref, terok_error *err);
    /* Set up / tear down the task's view of repo. */
    int (*grant)(void *state, const char *container, const char *repo, uint32_t rights,
                 terok_error *err);
    int (*revoke)(void *state, const char *container, const char *repo, terok_error *err);
    /* Policy beyond the token (e.g. protected refs): *ret_decision TEROK_DECISION_*. */
    int (*authorize)(void *state, const char *container, const char *repo, uint32_t operation,
                     uint32_t *ret_decision, terok_error *err);
    /* Serve one authenticated smart-HTTP request. */
    int (*serve)(void *state, const terok_gate_http *req, terok_error *err);
    int (*review)(void *state, const char *container, const char *repo, terok_gate_branch_cb cb,
                  void *userdata, terok_error *err);
    /* Unified diff of a pushed branch against upstream. */
    int (*diff)(void *state, const char *container, const char *repo, const char *branch,
                terok_gate_text_cb cb, void *userdata, terok_error *err);
    int (*forward)(void *state, const char *container, const char *repo, const char *branch,
                   const char *to_branch, uint32_t flags, terok_error *err);
    int (*backups_list)(void *state, const char *repo, terok_gate_json_cb cb, void *userdata,
                        terok_error *err);
    int (*backup_restore)(void *state, const char *repo, const char *backup, terok_error *err);
    int (*ctl)(void *state, uint32_t op, void *arg, terok_error *err);
    /* --- append below this line only; bump TEROK_PLUGIN_ABI_MINOR --- */
} terok_gate_ops;

#ifdef __cplusplus
}
#endif

#endif /* TEROK_GATE_H */
