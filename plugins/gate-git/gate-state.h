/* SPDX-License-Identifier: Apache-2.0 */
/* gate-state.h: what the gate-git plugin's files share: the instance, the on-disk layout, name
 * checks and small libgit2/JSON helpers. Nothing here prints or exits. */
#pragma once

#include <git2.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "terok/gate.h"
#include "util/macro.h"

#define HOST terok_plugin__host
#define GG_REPO_MAX 64
#define GG_CONTAINER_MAX 128
#define GG_BRANCH_MAX 200

/* Private namespaces inside our repositories; never advertised to or writable by clients. */
#define GG_NS "refs/terok/"
#define GG_UPSTREAM_NS "refs/terok/upstream/"
#define GG_UPSTREAM_TAGS_NS "refs/terok/upstream-tags/"
#define GG_BACKUP_NS "refs/terok/backup/"

typedef struct gg {
    char *root;  /* <state-dir>/gate-git, or [gate.git] path */
    char *git;   /* absolute path of the git program */
    char *home;  /* <root>/home: empty, HOME of every git we run */
    char *hooks; /* <root>/hooks: empty, core.hooksPath of every git we run */
    int64_t max_push;
    bool allow_delete;
    bool allow_force;
    int64_t timeout_ms; /* a served git that runs longer is killed */
    char *known_hosts;  /* [gate.git] known-hosts, or NULL */
    pthread_mutex_t cred_lock;
    char cred_repo[GG_REPO_MAX + 1];
    terok_secret *cred; /* lent by the core for one sync/forward; wiped on forget */
    /* or an SSH key lent as a signer (the core holds the private key) */
    terok_gate_ssh_sign_fn ssh_sign;
    void *ssh_signer;
    uint8_t *ssh_pub;
    size_t ssh_pub_len;
    /* git's ref advertisements (info/refs), kept per view while its refs stay as they were:
     * gate-serve.c */
    pthread_mutex_t adv_lock;
    struct gg_adv *adv;
    size_t n_adv;
} gg;

void gg_adv_free_all(gg *g);

/* A caller-controlled string made safe for a message: printable ASCII kept, the rest \xHH,
 * truncated. */
const char *gg_quote(const char *s, char out[200]);
int gg_check_repo(const char *repo, terok_error *err);
int gg_check_container(const char *name, terok_error *err);
int gg_check_branch(const char *branch, const char *what, terok_error *err);

/* Paths (caller frees). */
char *gg_mirror_path(gg *g, const char *repo);
char *gg_task_path(gg *g, const char *container, const char *repo);
char *gg_task_dir(gg *g, const char *container);

/* libgit2 error as text. */
const char *gg_git_error(void);
/* Fill err from the last libgit2 error: "<what>: <libgit2 message>". */
int gg_git_fail(terok_error *err, int code, const char *fmt, ...) _printf_(3, 4);

int gg_open_mirror(gg *g, const char *repo, git_repository **ret, terok_error *err);
int gg_open_task(gg *g, const char *container, const char *repo, git_repository **ret,
                 terok_error *err);

/* Rights recorded for a task's grant (0: none / revoked). */
uint32_t gg_task_rights(git_repository *task);

/* Back up what refname (refs/heads/x, refs/tags/y) pointed at, as
 * refs/terok/backup/<refname without refs/>/<YYYYmmddTHHMMSSZ>-<sha12> (no force: an identical
 * name points at the same object). *ret_name may be NULL. */
int gg_backup_ref(git_repository *repo, const char *refname, const git_oid *oid, char **ret_name,
                  terok_error *err);

/* Append one JSON event line to <root>/events.jsonl (single O_APPEND write). */
int gg_event_append(gg *g, json_object *event);

/* rm -rf of a directory we own (no symlink followed). */
int gg_rmtree(const char *path);
int gg_mkdir_p(const char *path, mode_t mode);
/* Call cb with JSON text, then put o. */
int gg_emit(terok_gate_json_cb cb, void *ud, json_object *o);
const char *gg_oid_str(const git_oid *oid, char buf[GIT_OID_HEXSZ + 1]);
int64_t gg_now(void);

/* Upstream remote callbacks with the lent credential (if any); never ambient credentials. */
typedef struct gg_remote_ctx {
    gg *g;
    const char *repo;
    const char *url;
    int attempts;
    const char *host_key; /* the project's pinned SSH host key, or NULL */
    bool accept_new;      /* trust an unknown SSH host key, and report it in seen_key */
    char *seen_key;       /* out: the host key trusted on first use ("TYPE BASE64"); caller frees */
    char why[768];        /* out: why the connection was refused (libgit2's message is vaguer) */
} gg_remote_ctx;
void gg_remote_callbacks(git_remote_callbacks *cb, gg_remote_ctx *ctx);
static inline void gg_remote_ctx_done(gg_remote_ctx *ctx)
{
    free(ctx->seen_key);
    ctx->seen_key = NULL;
}
/* A failed upstream call: "<what>: <why>", why being the refusal our callbacks explained (host
 * key, authentication), else libgit2's error. */
int gg_remote_fail(terok_error *err, const gg_remote_ctx *ctx, int code, const char *fmt, ...)
    _printf_(4, 5);
/* An anonymous remote for url on repo, with no URL rewriting from any config. */
int gg_remote_new(git_remote **ret, git_repository *repo, const char *url);
/* Whether the repo's upstream needs a credential that was not lent (fail closed). */
int gg_need_credential(gg *g, const char *repo, git_repository *mirror, terok_error *err);

/* Ops in other files. */
int gg_serve(void *state, const terok_gate_http *req, terok_error *err);
int gg_sync(void *state, const char *repo, terok_gate_json_cb cb, void *ud, terok_error *err);
int gg_pending_list(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                    terok_error *err);
int gg_pending_apply(void *state, const char *repo, const char *ref, terok_error *err);
int gg_review(void *state, const char *container, const char *repo, terok_gate_branch_cb cb,
              void *ud, terok_error *err);
int gg_diff(void *state, const char *container, const char *repo, const char *branch,
            terok_gate_text_cb cb, void *ud, terok_error *err);
int gg_forward(void *state, const char *container, const char *repo, const char *branch,
               const char *to_branch, uint32_t flags, terok_error *err);
int gg_backups_list(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                    terok_error *err);
int gg_backup_restore(void *state, const char *repo, const char *backup, terok_error *err);
int gg_backups_prune(gg *g, terok_gate_prune *p, terok_error *err);
/* Fetch the upstream into refs/terok/upstream{,-tags}/ of the mirror (sync and create). Snapshot
 * branches the upstream no longer has are removed and reported in *ret_deleted (a JSON object
 * branch -> old oid; may be NULL); *ret_head (may be NULL) is the upstream's default branch
 * name or NULL. An unreachable upstream leaves the mirror untouched and names the URL. */
int gg_fetch_upstream(gg *g, const char *repo, git_repository *mirror, const char *url,
                      bool accept_new_host_key, json_object **ret_deleted, char **ret_head,
                      terok_error *err);
/* One pack with a bitmap in the mirror at gitdir (with its trailing '/'), unreachable objects
 * kept; nothing when it already is. Under the mirror's lock. Best effort: logs its failures. */
int gg_mirror_repack(gg *g, const char *gitdir);
/* sync, then gg_mirror_repack. */
int gg_sync_and_upkeep(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                       terok_error *err);
/* The mirror's terok.<key> (NULL when unset); caller frees. */
char *gg_repo_meta(git_repository *repo, const char *key);
/* Accept https://, http://, ssh://, git://, file://, scp-like [user@]host:path and absolute
 * paths; no embedded password, no control characters, no leading dash. */
int gg_check_url(const char *url, terok_error *err);

/* --- ssh:// upstreams (gate-ssh.c) --- */
#define GG_FP_SIZE 64  /* "SHA256:" + 43 + NUL */
#define GG_SIG_MAX 512 /* room for any signature the core returns */
bool gg_url_is_scp(const char *url);
/* ssh://, ssh+git://, git+ssh:// or scp-like. */
bool gg_url_is_ssh(const char *url);
/* Host, port (22 by default) and user ("" when none; user may be NULL) of an SSH URL. */
int gg_ssh_endpoint(const char *url, char *host, size_t host_size, int *ret_port, char *user,
                    size_t user_size);
/* "TYPE BASE64 [comment]" into the key blob (caller frees); -EINVAL when malformed or when
 * TYPE is not the blob's. */
int gg_parse_host_key(const char *line, uint8_t **ret, size_t *ret_len);
/* "TYPE BASE64" of a key blob; caller frees. */
char *gg_host_key_text(const uint8_t *blob, size_t len);
/* "SHA256:..." as ssh-keygen -l prints it. */
void gg_key_fingerprint(const uint8_t *blob, size_t len, char out[GG_FP_SIZE]);
/* certificate_check: SSH host keys against the pin or known-hosts (fail closed); TLS passes. */
int gg_cert_cb(git_cert *cert, int valid, const char *host, void *payload);
/* An ssh-custom credential for user signing with the lent key; -ENOENT when none is lent. */
int gg_ssh_credential(git_credential **out, gg_remote_ctx *ctx, const char *user);

DEFINE_TRIVIAL_CLEANUP_FUNC(git_repository, git_repository_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_reference, git_reference_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_config, git_config_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_remote, git_remote_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_revwalk, git_revwalk_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_commit, git_commit_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_tree, git_tree_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_diff, git_diff_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(git_reference_iterator, git_reference_iterator_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object, json_object_put)
static inline void git_strarray_disposep(git_strarray *a)
{
    git_strarray_dispose(a);
}
