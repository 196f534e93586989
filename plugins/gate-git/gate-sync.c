/* SPDX-License-Identifier: Apache-2.0 */
/* gate-sync.c: the safe sync model. The upstream is fetched with libgit2 into the mirror's
 * private snapshot refs/terok/upstream/ (tags: refs/terok/upstream-tags/); then per branch a
 * create or a fast-forward is applied to refs/heads/, while an upstream rewrite or delete is held
 * as pending (<mirror>/terok-pending.json, with the gate tip it was computed against) until the
 * operator applies it. Every ref update is a compare-and-swap against the tip we read, so a
 * concurrent update wins; every destructive change is preceded by a backup ref. Upstream
 * credentials are only those the core lent for this call, never the operator's own. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "gate-state.h"

/* --- upstream access ----------------------------------------------------------------------- */

static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
                   unsigned int allowed, void *payload)
{
    gg_remote_ctx *ctx = payload;
    const void *data;
    size_t len;
    char *buf, *colon;
    int r = -1;

    (void)url;
    if (gg_url_is_ssh(ctx->url)) {
        const char *user = user_from_url && *user_from_url ? user_from_url : "git";
        char fp[GG_FP_SIZE] = "";

        /* The user name is asked first when the URL has none: not an attempt. */
        if (allowed == GIT_CREDENTIAL_USERNAME)
            return git_credential_username_new(out, user);
        pthread_mutex_lock(&ctx->g->cred_lock);
        if (ctx->g->ssh_sign)
            gg_key_fingerprint(ctx->g->ssh_pub, ctx->g->ssh_pub_len, fp);
        pthread_mutex_unlock(&ctx->g->cred_lock);
        if (ctx->attempts++ > 0) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: the upstream refused SSH key %s for user '%s' (is its public key, "
                     "'terok-sandbox ssh pub NAME', authorized there?)",
                     fp, user);
            git_error_set_str(GIT_ERROR_SSH, ctx->why);
            return -1;
        }
        if (!(allowed & GIT_CREDENTIAL_SSH_CUSTOM)) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: the upstream does not accept public key authentication for user '%s'",
                     user);
            git_error_set_str(GIT_ERROR_SSH, ctx->why);
            return -1;
        }
        r = gg_ssh_credential(out, ctx, user);
        if (r == -ENOENT)
            snprintf(ctx->why, sizeof ctx->why, "%s",
                     "gate: the ssh:// upstream asks for authentication and no SSH key is "
                     "configured for this project (gate add --credential SSH-KEY-NAME, a key "
                     "from 'terok-sandbox ssh add')");
        if (r < 0)
            git_error_set_str(GIT_ERROR_SSH, ctx->why[0] ? ctx->why : "gate: SSH credential");
        return r < 0 ? -1 : 0;
    }
    if (ctx->attempts++ > 0) {
        git_error_set_str(GIT_ERROR_NET, "the upstream refused the lent credential");
        return -1;
    }
    pthread_mutex_lock(&ctx->g->cred_lock);
    if (!ctx->g->cred || !streq(ctx->g->cred_repo, ctx->repo) ||
        !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) ||
        HOST->secret_peek(ctx->g->cred, &data, &len) < 0) {
        pthread_mutex_unlock(&ctx->g->cred_lock);
        git_error_set_str(GIT_ERROR_NET,
                          "the upstream asks for authentication and no credential is configured "
                          "for this project (gate add --credential NAME)");
        return -1;
    }
    buf = malloc(len + 1);
    if (buf) {
        memcpy(buf, data, len);
        buf[len] = '\0';
        colon = strchr(buf, ':');
        if (colon) {
            *colon = '\0';
            r = git_credential_userpass_plaintext_new(out, buf, colon + 1);
        } else
            r = git_credential_userpass_plaintext_new(
                out, user_from_url && *user_from_url ? user_from_url : "x-access-token", buf);
        explicit_bzero(buf, len + 1);
        free(buf);
    }
    pthread_mutex_unlock(&ctx->g->cred_lock);
    return r;
}

void gg_remote_callbacks(git_remote_callbacks *cb, gg_remote_ctx *ctx)
{
    git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb->credentials = cred_cb;
    cb->certificate_check = gg_cert_cb;
    cb->payload = ctx;
}

int gg_remote_fail(terok_error *err, const gg_remote_ctx *ctx, int code, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ctx->why[0])
        return terok_perr(err, code == -EHOSTUNREACH ? -EACCES : code, "%s: %s", what, ctx->why);
    return terok_perr(err, code, "%s: %s", what, gg_git_error());
}

int gg_need_credential(gg *g, const char *repo, git_repository *mirror, terok_error *err)
{
    _cleanup_free_ char *name = gg_repo_meta(mirror, "credential");
    bool lent;
    char q[200];

    if (!name)
        return 0;
    pthread_mutex_lock(&g->cred_lock);
    lent = (g->cred || g->ssh_sign) && streq(g->cred_repo, repo);
    pthread_mutex_unlock(&g->cred_lock);
    if (!lent)
        return terok_perr(err, -EACCES,
                          "gate: project '%s' needs credential '%s' from the vault and it was "
                          "not provided",
                          gg_quote(repo, q), name);
    return 0;
}

/* Pin the host key trusted on first use in the mirror's config. */
static int record_host_key(git_repository *mirror, const char *repo, const char *url,
                           const char *key, terok_error *err)
{
    _cleanup_(git_config_freep) git_config *cfg = NULL;
    _cleanup_free_ uint8_t *blob = NULL;
    char fp[GG_FP_SIZE], q[200];
    size_t len = 0;

    if (gg_parse_host_key(key, &blob, &len) < 0)
        return terok_perr(err, -EINVAL, "gate: cannot record the host key of '%s'",
                          gg_quote(url, q));
    if (git_repository_config(&cfg, mirror) < 0 ||
        git_config_set_string(cfg, "terok.hostkey", key) < 0)
        return gg_git_fail(err, -EIO, "gate: recording the host key of '%s'", gg_quote(url, q));
    gg_key_fingerprint(blob, len, fp);
    terok_plog(TEROK_LOG_NOTICE, "project '%s': trusted the SSH host key of '%s' on first use: %s",
               repo, gg_quote(url, q), fp);
    return 0;
}

int gg_fetch_upstream(gg *g, const char *repo, git_repository *mirror, const char *url,
                      bool accept_new_host_key, json_object **ret_deleted, char **ret_head,
                      terok_error *err)
{
    _cleanup_free_ char *pin = gg_repo_meta(mirror, "hostkey");
    _cleanup_(git_remote_freep) git_remote *remote = NULL;
    _cleanup_(json_object_putp) json_object *deleted = json_object_new_object();
    git_fetch_options fo;
    char *specs[] = {"+refs/heads/*:" GG_UPSTREAM_NS "*", "+refs/tags/*:" GG_UPSTREAM_TAGS_NS "*"};
    git_strarray refspecs = {specs, 2};
    _cleanup_(gg_remote_ctx_done) gg_remote_ctx ctx = {
        .g = g, .repo = repo, .url = url, .host_key = pin, .accept_new = accept_new_host_key};
    const git_remote_head **heads;
    size_t nheads;
    const char *ns[] = {GG_UPSTREAM_NS, GG_UPSTREAM_TAGS_NS};
    const char *src_ns[] = {"refs/heads/", "refs/tags/"};
    char q[200];

    if (!deleted)
        return -ENOMEM;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    if (gg_remote_new(&remote, mirror, url) < 0)
        return gg_git_fail(err, -EINVAL, "gate: upstream '%s'", gg_quote(url, q));
    gg_remote_callbacks(&fo.callbacks, &ctx);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* tags only through our refspec */
    fo.update_fetchhead = 0;
    fo.prune = GIT_FETCH_NO_PRUNE; /* we prune the snapshot ourselves, remembering what went */
    if (git_remote_fetch(remote, &refspecs, &fo, "terok: sync") < 0)
        return gg_remote_fail(err, &ctx, -EHOSTUNREACH, "gate: cannot fetch from upstream '%s'",
                              gg_quote(url, q));
    if (ctx.seen_key && !pin) {
        int r = record_host_key(mirror, repo, url, ctx.seen_key, err);
        if (r < 0)
            return r;
    }
    if (git_remote_ls(&heads, &nheads, remote) < 0)
        return gg_git_fail(err, -EIO, "gate: listing upstream '%s'", gg_quote(url, q));
    /* Snapshot refs the upstream no longer has: remembered, then removed. */
    for (size_t k = 0; k < 2; k++) {
        _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
        _cleanup_free_ char *glob = NULL;
        git_reference *ref;

        if (asprintf(&glob, "%s*", ns[k]) < 0)
            return -ENOMEM;
        if (git_reference_iterator_glob_new(&it, mirror, glob) < 0)
            return gg_git_fail(err, -EIO, "gate: listing the upstream snapshot");
        while (git_reference_next(&ref, it) == 0) {
            const char *short_ = git_reference_name(ref) + strlen(ns[k]);
            bool present = false;
            char hex[GIT_OID_HEXSZ + 1];

            for (size_t i = 0; i < nheads && !present; i++)
                present = strneq(heads[i]->name, src_ns[k], strlen(src_ns[k])) &&
                          streq(heads[i]->name + strlen(src_ns[k]), short_);
            if (!present && git_reference_target(ref)) {
                if (k == 0)
                    json_object_object_add(
                        deleted, short_,
                        json_object_new_string(gg_oid_str(git_reference_target(ref), hex)));
                if (git_reference_delete(ref) < 0)
                    terok_plog(TEROK_LOG_WARNING, "cannot drop snapshot ref '%s': %s",
                               git_reference_name(ref), gg_git_error());
            }
            git_reference_free(ref);
        }
    }
    if (ret_head) {
        git_buf b = GIT_BUF_INIT;
        *ret_head = NULL;
        if (git_remote_default_branch(&b, remote) == 0 && strneq(b.ptr, "refs/heads/", 11))
            *ret_head = strdup(b.ptr + 11);
        git_buf_dispose(&b);
    }
    if (ret_deleted)
        *ret_deleted = TAKE_PTR(deleted);
    return 0;
}

/* --- pending ------------------------------------------------------------------------------- */

static char *pending_path(git_repository *mirror)
{
    char *p = NULL;

    return asprintf(&p, "%sterok-pending.json", git_repository_path(mirror)) < 0 ? NULL : p;
}

static json_object *pending_load(git_repository *mirror)
{
    _cleanup_free_ char *p = pending_path(mirror);
    json_object *o = p && access(p, F_OK) == 0 ? json_object_from_file(p) : NULL;

    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o ? o : json_object_new_object();
}

static int pending_save(git_repository *mirror, json_object *o, terok_error *err)
{
    _cleanup_free_ char *p = pending_path(mirror), *tmp = NULL;
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
    _cleanup_close_ int fd = -EBADF;
    size_t n;

    if (!p || !text || asprintf(&tmp, "%s.tmp", p) < 0)
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) < 0 || rename(tmp, p) < 0)
        return terok_perr(err, -EIO, "gate: writing '%s': %s", p, strerror(errno));
    return 0;
}

static int lock_mirror(git_repository *mirror, terok_error *err)
{
    _cleanup_free_ char *p = NULL;
    int fd;

    if (asprintf(&p, "%sterok.lock", git_repository_path(mirror)) < 0)
        return -ENOMEM;
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        if (fd >= 0)
            close(fd);
        return terok_perr(err, -EIO, "gate: cannot lock '%s'", p);
    }
    return fd;
}

/* Commits on the gate tip that the upstream tip lacks (what applying would drop from the
 * branch; still reachable from the backup). */
static int64_t gate_only(git_repository *repo, const git_oid *gate, const git_oid *up)
{
    size_t ahead = 0, behind = 0;

    if (!up)
        return -1;
    if (git_graph_ahead_behind(&ahead, &behind, repo, gate, up) < 0)
        return -1;
    return (int64_t)ahead;
}

static json_object *record(const char *branch, const char *action, const git_oid *old,
                           const git_oid *new, const char *reason)
{
    json_object *o = json_object_new_object();
    char h[GIT_OID_HEXSZ + 1];

    json_object_object_add(o, "branch", json_object_new_string(branch));
    json_object_object_add(o, "action", json_object_new_string(action));
    json_object_object_add(o, "old", old ? json_object_new_string(gg_oid_str(old, h)) : NULL);
    json_object_object_add(o, "new", new ? json_object_new_string(gg_oid_str(new, h)) : NULL);
    if (reason)
        json_object_object_add(o, "reason", json_object_new_string(reason));
    return o;
}

static json_object *pending_entry(git_repository *mirror, const char *kind, const git_oid *gate,
                                  const git_oid *up)
{
    json_object *o = json_object_new_object();
    char h[GIT_OID_HEXSZ + 1];

    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "gate", json_object_new_string(gg_oid_str(gate, h)));
    json_object_object_add(o, "upstream", up ? json_object_new_string(gg_oid_str(up, h)) : NULL);
    json_object_object_add(o, "gate_only_commits",
                           json_object_new_int64(up ? gate_only(mirror, gate, up) : -1));
    json_object_object_add(o, "since", json_object_new_int64(gg_now()));
    return o;
}

static int head_oid(git_repository *repo, const char *branch, git_oid *ret)
{
    _cleanup_free_ char *name = NULL;

    if (asprintf(&name, "refs/heads/%s", branch) < 0)
        return -ENOMEM;
    return git_reference_name_to_id(ret, repo, name) == 0 ? 1 : 0;
}

/* Carry what sync applied to the mirror into every task view of the project, where the task
 * has not moved the branch itself: a branch the task never had is created, one still at the
 * mirror's old tip is fast-forwarded (compare-and-swap). A branch the task pushed to is left
 * alone. */
static void refresh_tasks(gg *g, const char *repo, json_object *applied, terok_gate_json_cb cb,
                          void *ud)
{
    _cleanup_free_ char *dir = NULL;
    struct dirent **names = NULL;
    int n;

    if (json_object_object_length(applied) == 0 || asprintf(&dir, "%s/tasks", g->root) < 0)
        return;
    n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *task = names[i]->d_name;
        git_repository *t = NULL;

        if (task[0] != '.' && gg_check_container(task, NULL) == 0 &&
            gg_open_task(g, task, repo, &t, NULL) == 0 && gg_task_rights(t)) {
            json_object_object_foreach(applied, branch, rec)
            {
                _cleanup_free_ char *name = NULL;
                git_reference *out = NULL;
                git_oid old, new, cur;
                bool has_old = false;
                int c = -1;
                json_object *v;

                if (asprintf(&name, "refs/heads/%s", branch) < 0 ||
                    !json_object_object_get_ex(rec, "new", &v) ||
                    git_oid_fromstr(&new, json_object_get_string(v)) < 0)
                    continue;
                if (json_object_object_get_ex(rec, "old", &v) && v &&
                    git_oid_fromstr(&old, json_object_get_string(v)) == 0)
                    has_old = true;
                if (git_reference_name_to_id(&cur, t, name) < 0)
                    c = has_old ? -1
                                : git_reference_create(&out, t, name, &new, 0,
                                                       "terok: sync from upstream");
                else if (has_old && git_oid_equal(&cur, &old))
                    c = git_reference_create_matching(&out, t, name, &new, 1, &old,
                                                      "terok: sync from upstream");
                git_reference_free(out);
                if (c == 0 && cb) {
                    json_object *o = record(branch, has_old ? "task-fast-forward" : "task-create",
                                            has_old ? &old : NULL, &new, NULL);
                    json_object_object_add(o, "task", json_object_new_string(task));
                    (void)gg_emit(cb, ud, o);
                }
            }
        }
        git_repository_free(t);
        free(names[i]);
    }
    free(names);
}

/* A mirror HEAD naming a branch the mirror does not have (an empty upstream at create, a branch
 * since deleted) follows the upstream's default branch once the mirror has it. A HEAD that
 * resolves is the operator's and is left alone. */
static void heal_head(git_repository *mirror, const char *up_head, terok_gate_json_cb cb, void *ud)
{
    _cleanup_(git_reference_freep) git_reference *h = NULL, *out = NULL;
    _cleanup_free_ char *target = NULL;
    git_oid tmp;

    if (!up_head || git_reference_lookup(&h, mirror, "HEAD") < 0 ||
        git_reference_type(h) != GIT_REFERENCE_SYMBOLIC ||
        git_reference_name_to_id(&tmp, mirror, git_reference_symbolic_target(h)) == 0 ||
        asprintf(&target, "refs/heads/%s", up_head) < 0 ||
        git_reference_name_to_id(&tmp, mirror, target) < 0)
        return;
    if (git_reference_symbolic_create(&out, mirror, "HEAD", target, 1, "terok: heal HEAD") == 0) {
        git_config *cfg = NULL;
        if (git_repository_config(&cfg, mirror) == 0) {
            (void)git_config_set_string(cfg, "terok.branch", up_head);
            git_config_free(cfg);
        }
        (void)gg_emit(cb, ud, record(up_head, "head", NULL, &tmp, "HEAD follows the upstream's"));
    }
}

int gg_sync(void *state, const char *repo, terok_gate_json_cb cb, void *ud, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    _cleanup_(json_object_putp) json_object *deleted = NULL, *old_pending = NULL,
                                            *pending = json_object_new_object(),
                                            *applied = json_object_new_object();
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    _cleanup_free_ char *url = NULL, *up_head = NULL;
    _cleanup_close_ int lockfd = -EBADF;
    git_reference *ref;
    int r;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: sync needs a callback");
    if ((r = gg_check_repo(repo, err)) < 0 || (r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    url = gg_repo_meta(mirror, "upstream");
    if (!url)
        return gg_emit(cb, ud, record("*", "none", NULL, NULL, "the project has no upstream"));
    if ((r = gg_need_credential(g, repo, mirror, err)) < 0)
        return r;
    if ((lockfd = lock_mirror(mirror, err)) < 0)
        return lockfd;
    if ((r = gg_fetch_upstream(g, repo, mirror, url, false, &deleted, &up_head, err)) < 0)
        return r;
    old_pending = pending_load(mirror);
    if (git_reference_iterator_glob_new(&it, mirror, GG_UPSTREAM_NS "*") < 0)
        return gg_git_fail(err, -EIO, "gate: listing the upstream snapshot");
    while ((r = git_reference_next(&ref, it)) == 0) {
        const char *branch = git_reference_name(ref) + strlen(GG_UPSTREAM_NS);
        const git_oid *up = git_reference_target(ref);
        _cleanup_free_ char *name = NULL;
        git_reference *out = NULL;
        json_object *rec = NULL;
        git_oid gate;
        int have, c;

        if (!up || asprintf(&name, "refs/heads/%s", branch) < 0) {
            git_reference_free(ref);
            continue;
        }
        have = head_oid(mirror, branch, &gate);
        if (!have) {
            c = git_reference_create(&out, mirror, name, up, 0, "terok: sync create");
            rec = c == 0 ? record(branch, "create", NULL, up, NULL)
                         : record(branch, "skipped", NULL, up, "created concurrently");
            if (c == 0)
                json_object_object_add(applied, branch, record(branch, "create", NULL, up, NULL));
        } else if (git_oid_equal(&gate, up)) {
            rec = NULL; /* in sync */
        } else if (git_graph_descendant_of(mirror, up, &gate) == 1) {
            c = git_reference_create_matching(&out, mirror, name, up, 1, &gate,
                                              "terok: sync fast-forward");
            rec = c == 0 ? record(branch, "fast-forward", &gate, up, NULL)
                         : record(branch, "skipped", &gate, up,
                                  "the branch changed concurrently; the concurrent update wins");
            if (c == 0)
                json_object_object_add(applied, branch,
                                       record(branch, "fast-forward", &gate, up, NULL));
        } else if (git_graph_descendant_of(mirror, &gate, up) == 1) {
            rec = record(branch, "gate-ahead", &gate, up, "the gate has commits upstream lacks");
        } else {
            json_object_object_add(pending, branch,
                                   pending_entry(mirror, "upstream-rewrite", &gate, up));
            rec = record(branch, "pending", &gate, up,
                         "upstream rewrote the branch; held until 'gate apply'");
        }
        git_reference_free(out);
        git_reference_free(ref);
        if (rec && (c = gg_emit(cb, ud, rec)) != 0)
            return c < 0 ? c : 0;
    }
    if (r != GIT_ITEROVER)
        return gg_git_fail(err, -EIO, "gate: listing the upstream snapshot");
    /* Deletes: new ones from this fetch, and older ones still valid. */
    json_object_object_foreach(old_pending, b0, v0)
    {
        json_object *kind;
        if (json_object_object_get_ex(v0, "kind", &kind) &&
            streq(json_object_get_string(kind), "upstream-delete") &&
            !json_object_object_get_ex(deleted, b0, NULL))
            json_object_object_add(deleted, b0, json_object_new_string(""));
    }
    json_object_object_foreach(deleted, branch, v)
    {
        _cleanup_free_ char *snap = NULL;
        git_oid gate, tmp;
        (void)v;
        if (!head_oid(mirror, branch, &gate) || asprintf(&snap, GG_UPSTREAM_NS "%s", branch) < 0)
            continue;
        if (git_reference_name_to_id(&tmp, mirror, snap) == 0)
            continue; /* back upstream */
        json_object_object_add(pending, branch,
                               pending_entry(mirror, "upstream-delete", &gate, NULL));
        if ((r = gg_emit(cb, ud,
                         record(branch, "pending", &gate, NULL,
                                "upstream deleted the branch; held until 'gate apply'"))) != 0)
            return r < 0 ? r : 0;
    }
    /* New upstream tags are created; a moved tag is only reported. */
    {
        _cleanup_(git_reference_iterator_freep) git_reference_iterator *ti = NULL;
        if (git_reference_iterator_glob_new(&ti, mirror, GG_UPSTREAM_TAGS_NS "*") == 0)
            while (git_reference_next(&ref, ti) == 0) {
                const char *tag = git_reference_name(ref) + strlen(GG_UPSTREAM_TAGS_NS);
                const git_oid *up = git_reference_target(ref);
                _cleanup_free_ char *name = NULL;
                git_reference *out = NULL;
                git_oid cur;
                if (up && asprintf(&name, "refs/tags/%s", tag) >= 0) {
                    if (git_reference_name_to_id(&cur, mirror, name) < 0) {
                        if (git_reference_create(&out, mirror, name, up, 0, "terok: sync tag") == 0)
                            (void)gg_emit(cb, ud, record(name, "create", NULL, up, NULL));
                    } else if (!git_oid_equal(&cur, up))
                        (void)gg_emit(cb, ud,
                                      record(name, "tag-moved", &cur, up,
                                             "upstream moved the tag; the gate keeps its own"));
                }
                git_reference_free(out);
                git_reference_free(ref);
            }
    }
    refresh_tasks(g, repo, applied, cb, ud);
    heal_head(mirror, up_head, cb, ud);
    return pending_save(mirror, pending, err);
}

int gg_pending_list(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                    terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    _cleanup_(json_object_putp) json_object *pending = NULL;
    int r;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: pending needs a callback");
    if ((r = gg_check_repo(repo, err)) < 0 || (r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    pending = pending_load(mirror);
    json_object_object_foreach(pending, branch, v)
    {
        json_object *o = json_object_get(v);
        json_object_object_add(o, "branch", json_object_new_string(branch));
        if ((r = gg_emit(cb, ud, o)) != 0)
            return r < 0 ? r : 0;
    }
    return 0;
}

int gg_pending_apply(void *state, const char *repo, const char *ref, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    _cleanup_(json_object_putp) json_object *pending = NULL;
    _cleanup_(git_reference_freep) git_reference *cur = NULL, *out = NULL;
    _cleanup_free_ char *name = NULL, *backup = NULL;
    _cleanup_close_ int lockfd = -EBADF;
    json_object *e, *v;
    const char *branch, *kind;
    git_oid gate, up;
    char q[200], h1[GIT_OID_HEXSZ + 1], h2[GIT_OID_HEXSZ + 1];
    int r;

    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_repo(repo, err)) < 0)
        return r;
    if (!ref || !*ref)
        return terok_perr(err, -EINVAL, "gate: a branch to apply is required");
    branch = strneq(ref, "refs/heads/", 11) ? ref + 11 : ref;
    if ((r = gg_check_branch(branch, "branch", err)) < 0)
        return r;
    if ((r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    if ((lockfd = lock_mirror(mirror, err)) < 0)
        return lockfd;
    pending = pending_load(mirror);
    if (!json_object_object_get_ex(pending, branch, &e))
        return terok_perr(err, -ENOENT, "gate: nothing pending for branch '%s' of '%s'",
                          gg_quote(branch, q), repo);
    kind = json_object_object_get_ex(e, "kind", &v) ? json_object_get_string(v) : "";
    if (!json_object_object_get_ex(e, "gate", &v) ||
        git_oid_fromstr(&gate, json_object_get_string(v)) < 0)
        return terok_perr(err, -EBADMSG, "gate: pending entry for '%s' is damaged",
                          gg_quote(branch, q));
    if (asprintf(&name, "refs/heads/%s", branch) < 0)
        return -ENOMEM;
    /* Compare-and-swap: the branch must still be where it was when sync held the change. */
    if (git_reference_lookup(&cur, mirror, name) < 0 || !git_reference_target(cur) ||
        !git_oid_equal(git_reference_target(cur), &gate))
        return terok_perr(err, -ESTALE,
                          "gate: branch '%s' changed since the change was held (expected %s, now "
                          "%s); nothing applied — run 'gate sync' again",
                          gg_quote(branch, q), gg_oid_str(&gate, h1),
                          cur && git_reference_target(cur)
                              ? gg_oid_str(git_reference_target(cur), h2)
                              : "absent");
    if ((r = gg_backup_ref(mirror, name, &gate, &backup, err)) < 0)
        return r;
    if (streq(kind, "upstream-rewrite")) {
        if (!json_object_object_get_ex(e, "upstream", &v) ||
            git_oid_fromstr(&up, json_object_get_string(v)) < 0)
            return terok_perr(err, -EBADMSG, "gate: pending entry for '%s' is damaged", branch);
        r = git_reference_create_matching(&out, mirror, name, &up, 1, &gate,
                                          "terok: apply upstream rewrite");
    } else if (streq(kind, "upstream-delete")) {
        r = git_reference_delete(cur);
    } else
        return terok_perr(err, -EBADMSG, "gate: unknown pending kind for '%s'", branch);
    if (r == GIT_EMODIFIED)
        return terok_perr(err, -ESTALE,
                          "gate: branch '%s' changed while applying; the concurrent update wins",
                          gg_quote(branch, q));
    if (r < 0)
        return gg_git_fail(err, -EIO, "gate: applying '%s'", branch);
    /* kind points into the entry: log before the entry goes. */
    terok_plog(TEROK_LOG_NOTICE, "applied %s of '%s' in '%s' (backup %s)", kind, branch, repo,
               backup);
    json_object_object_del(pending, branch);
    return pending_save(mirror, pending, err);
}
