/* SPDX-License-Identifier: Apache-2.0 */
/* gate-review.c: what a task pushed, and getting it upstream. review lists the task's branches
 * with ahead/behind against the upstream snapshot (the same-named upstream branch, else the
 * project's default branch; the mirror's branches for a project without upstream), its commits
 * and a diffstat; diff streams a unified diff from the merge base; forward pushes a task branch
 * upstream with libgit2 and only the credential the core lent, refusing a non-fast-forward
 * unless forced (then the upstream's old tip is kept as a backup ref in the mirror first). */
#include <stdio.h>

#include "gate-state.h"

#define REVIEW_MAX_COMMITS 100
#define REVIEW_MAX_FILES 200

/* The ref a task branch is compared against, as an oid; 0 when none. *ret_same is whether it is
 * the same-named upstream branch. */
static int base_of(git_repository *mirror, const char *branch, git_oid *ret, bool *ret_same,
                   char **ret_name)
{
    _cleanup_free_ char *same = NULL, *def = NULL, *defbr = gg_repo_meta(mirror, "branch"),
                        *up = gg_repo_meta(mirror, "upstream");
    const char *ns = up ? GG_UPSTREAM_NS : "refs/heads/";

    *ret_same = false;
    if (asprintf(&same, "%s%s", ns, branch) < 0)
        return -ENOMEM;
    if (git_reference_name_to_id(ret, mirror, same) == 0) {
        *ret_same = true;
        *ret_name = TAKE_PTR(same);
        return 1;
    }
    if (!defbr) {
        _cleanup_(git_reference_freep) git_reference *h = NULL;
        if (git_reference_lookup(&h, mirror, "HEAD") == 0 &&
            git_reference_type(h) == GIT_REFERENCE_SYMBOLIC &&
            strneq(git_reference_symbolic_target(h), "refs/heads/", 11))
            defbr = strdup(git_reference_symbolic_target(h) + 11);
    }
    if (!defbr || asprintf(&def, "%s%s", ns, defbr) < 0)
        return 0;
    if (git_reference_name_to_id(ret, mirror, def) == 0) {
        *ret_name = TAKE_PTR(def);
        return 1;
    }
    return 0;
}

static int merge_base_tree(git_repository *task, const git_oid *tip, const git_oid *base,
                           bool has_base, git_tree **ret_old, git_tree **ret_new)
{
    _cleanup_(git_commit_freep) git_commit *c = NULL, *bc = NULL;
    git_oid mb;

    *ret_old = NULL;
    if (git_commit_lookup(&c, task, tip) < 0 || git_commit_tree(ret_new, c) < 0)
        return -EIO;
    if (has_base && git_merge_base(&mb, task, tip, base) == 0 &&
        git_commit_lookup(&bc, task, &mb) == 0 && git_commit_tree(ret_old, bc) < 0)
        return -EIO;
    return 0;
}

static json_object *detail(git_repository *task, const git_oid *tip, const git_oid *base,
                           bool has_base, const char *base_name)
{
    json_object *o = json_object_new_object(), *commits = json_object_new_array(),
                *files = json_object_new_array(), *stat = json_object_new_object();
    _cleanup_(git_revwalk_freep) git_revwalk *w = NULL;
    _cleanup_(git_tree_freep) git_tree *old = NULL, *new = NULL;
    _cleanup_(git_diff_freep) git_diff *diff = NULL;
    git_diff_stats *st = NULL;
    git_oid id;
    char h[GIT_OID_HEXSZ + 1];
    size_t n = 0;
    bool truncated = false;

    json_object_object_add(o, "base", base_name ? json_object_new_string(base_name) : NULL);
    json_object_object_add(o, "base_oid",
                           has_base ? json_object_new_string(gg_oid_str(base, h)) : NULL);
    if (git_revwalk_new(&w, task) == 0) {
        git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
        git_revwalk_push(w, tip);
        if (has_base)
            git_revwalk_hide(w, base);
        while (git_revwalk_next(&id, w) == 0) {
            git_commit *c = NULL;
            json_object *e;
            if (n++ >= REVIEW_MAX_COMMITS) {
                truncated = true;
                break;
            }
            if (git_commit_lookup(&c, task, &id) < 0)
                continue;
            e = json_object_new_object();
            json_object_object_add(e, "oid", json_object_new_string(gg_oid_str(&id, h)));
            json_object_object_add(e, "summary",
                                   json_object_new_string(strempty(git_commit_summary(c))));
            json_object_object_add(e, "author",
                                   json_object_new_string(strempty(git_commit_author(c)->name)));
            json_object_object_add(e, "time", json_object_new_int64(git_commit_time(c)));
            json_object_array_add(commits, e);
            git_commit_free(c);
        }
    }
    json_object_object_add(o, "commits", commits);
    json_object_object_add(o, "commits_truncated", json_object_new_boolean(truncated));
    if (merge_base_tree(task, tip, base, has_base, &old, &new) == 0 &&
        git_diff_tree_to_tree(&diff, task, old, new, NULL) == 0 &&
        git_diff_get_stats(&st, diff) == 0) {
        size_t nd = git_diff_num_deltas(diff);
        json_object_object_add(stat, "files",
                               json_object_new_int64((int64_t)git_diff_stats_files_changed(st)));
        json_object_object_add(stat, "insertions",
                               json_object_new_int64((int64_t)git_diff_stats_insertions(st)));
        json_object_object_add(stat, "deletions",
                               json_object_new_int64((int64_t)git_diff_stats_deletions(st)));
        for (size_t i = 0; i < nd && i < REVIEW_MAX_FILES; i++) {
            git_patch *p = NULL;
            size_t ctx, add, del;
            const git_diff_delta *d = git_diff_get_delta(diff, i);
            json_object *f = json_object_new_object();
            json_object_object_add(
                f, "path",
                json_object_new_string(d->new_file.path ? d->new_file.path : d->old_file.path));
            json_object_object_add(
                f, "status", json_object_new_string((char[2]){git_diff_status_char(d->status), 0}));
            if (git_patch_from_diff(&p, diff, i) == 0 && p &&
                git_patch_line_stats(&ctx, &add, &del, p) == 0) {
                json_object_object_add(f, "insertions", json_object_new_int64((int64_t)add));
                json_object_object_add(f, "deletions", json_object_new_int64((int64_t)del));
            }
            git_patch_free(p);
            json_object_array_add(files, f);
        }
        git_diff_stats_free(st);
    }
    json_object_object_add(stat, "per_file", files);
    json_object_object_add(o, "diffstat", stat);
    return o;
}

int gg_review(void *state, const char *container, const char *repo, terok_gate_branch_cb cb,
              void *ud, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL, *task = NULL;
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    git_reference *ref;
    int r;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: review needs a callback");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0)
        return r;
    if ((r = gg_open_mirror(g, repo, &mirror, err)) < 0 ||
        (r = gg_open_task(g, container, repo, &task, err)) < 0)
        return r;
    if (git_reference_iterator_glob_new(&it, task, "refs/heads/*") < 0)
        return gg_git_fail(err, -EIO, "gate: listing branches");
    while ((r = git_reference_next(&ref, it)) == 0) {
        const git_oid *tip = git_reference_target(ref);
        const char *name = git_reference_name(ref) + 11;
        _cleanup_free_ char *base_name = NULL;
        _cleanup_(json_object_putp) json_object *d = NULL;
        char h1[GIT_OID_HEXSZ + 1], h2[GIT_OID_HEXSZ + 1];
        size_t ahead = 0, behind = 0;
        bool same = false;
        git_oid base;
        int hb, c;

        if (!tip) {
            git_reference_free(ref);
            continue;
        }
        hb = base_of(mirror, name, &base, &same, &base_name);
        if (hb == 1) {
            if (git_graph_ahead_behind(&ahead, &behind, task, tip, &base) < 0) {
                git_reference_free(ref);
                return gg_git_fail(err, -EIO, "gate: comparing '%s'", name);
            }
        } else {
            /* No base at all: everything on the branch is ahead. */
            _cleanup_(git_revwalk_freep) git_revwalk *w = NULL;
            git_oid id;
            if (git_revwalk_new(&w, task) == 0 && git_revwalk_push(w, tip) == 0)
                while (git_revwalk_next(&id, w) == 0)
                    ahead++;
        }
        d = detail(task, tip, &base, hb == 1, base_name);
        {
            terok_gate_branch b = {
                .struct_size = sizeof b,
                .name = name,
                .oid = gg_oid_str(tip, h1),
                .upstream_oid = same ? gg_oid_str(&base, h2) : NULL,
                .ahead = (int64_t)ahead,
                .behind = (int64_t)behind,
                .detail_json = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
            };
            c = cb(ud, &b);
        }
        git_reference_free(ref);
        if (c != 0)
            return c < 0 ? c : 0;
    }
    return r == GIT_ITEROVER ? 0 : gg_git_fail(err, -EIO, "gate: listing branches");
}

struct diff_ctx {
    terok_gate_text_cb cb;
    void *ud;
    int stopped;
};

static int diff_line(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l,
                     void *payload)
{
    struct diff_ctx *c = payload;
    int r;

    (void)d;
    (void)h;
    if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
        l->origin == GIT_DIFF_LINE_DELETION) {
        char o = l->origin;
        if ((r = c->cb(c->ud, &o, 1)) != 0) {
            c->stopped = r;
            return GIT_EUSER;
        }
    }
    if ((r = c->cb(c->ud, l->content, l->content_len)) != 0) {
        c->stopped = r;
        return GIT_EUSER;
    }
    return 0;
}

int gg_diff(void *state, const char *container, const char *repo, const char *branch,
            terok_gate_text_cb cb, void *ud, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL, *task = NULL;
    _cleanup_(git_tree_freep) git_tree *old = NULL, *new = NULL;
    _cleanup_(git_diff_freep) git_diff *diff = NULL;
    _cleanup_free_ char *name = NULL, *base_name = NULL;
    struct diff_ctx c = {.cb = cb, .ud = ud};
    git_oid tip, base;
    bool same;
    char q[200];
    int r, hb;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: diff needs a callback");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0 ||
        (r = gg_check_branch(branch, "branch", err)) < 0)
        return r;
    if ((r = gg_open_mirror(g, repo, &mirror, err)) < 0 ||
        (r = gg_open_task(g, container, repo, &task, err)) < 0)
        return r;
    if (asprintf(&name, "refs/heads/%s", branch) < 0)
        return -ENOMEM;
    if (git_reference_name_to_id(&tip, task, name) < 0)
        return terok_perr(err, -ENOENT, "gate: task '%s' has no branch '%s'", container,
                          gg_quote(branch, q));
    hb = base_of(mirror, branch, &base, &same, &base_name);
    if (merge_base_tree(task, &tip, &base, hb == 1, &old, &new) < 0)
        return gg_git_fail(err, -EIO, "gate: reading '%s'", branch);
    if (git_diff_tree_to_tree(&diff, task, old, new, NULL) < 0)
        return gg_git_fail(err, -EIO, "gate: diffing '%s'", branch);
    r = git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, diff_line, &c);
    if (r == GIT_EUSER)
        return c.stopped < 0 ? c.stopped : 0;
    return r < 0 ? gg_git_fail(err, -EIO, "gate: diffing '%s'", branch) : 0;
}

struct push_ctx {
    gg_remote_ctx ctx; /* first: the credentials callback reads the payload as this */
    char *rejected;
};

static int push_ref_cb(const char *refname, const char *status, void *data)
{
    struct push_ctx *p = data;

    if (status && !p->rejected && asprintf(&p->rejected, "%s: %s", refname, status) < 0)
        p->rejected = NULL;
    return 0;
}

int gg_forward(void *state, const char *container, const char *repo, const char *branch,
               const char *to_branch, uint32_t flags, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL, *task = NULL;
    _cleanup_(git_remote_freep) git_remote *fetch_remote = NULL, *push_remote = NULL;
    _cleanup_(json_object_putp) json_object *ev = NULL;
    _cleanup_free_ char *url = NULL, *src = NULL, *fetchspec = NULL, *pushspec = NULL, *snap = NULL,
                        *backup = NULL, *upref = NULL, *pin = NULL;
    git_fetch_options fo;
    git_push_options po;
    gg_remote_ctx ctx = {.g = g, .repo = repo};
    struct push_ctx pc = {0};
    const git_remote_head **heads;
    size_t nheads;
    git_oid tip, up;
    bool has_up = false, force = flags & TEROK_GATE_FORWARD_FORCE;
    char q[200], h1[GIT_OID_HEXSZ + 1], h2[GIT_OID_HEXSZ + 1];
    int r;

    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0 ||
        (r = gg_check_branch(branch, "branch", err)) < 0 ||
        (to_branch && (r = gg_check_branch(to_branch, "upstream branch", err)) < 0))
        return r;
    if (flags & ~TEROK_GATE_FORWARD_FORCE)
        return terok_perr(err, -EINVAL, "gate: unknown forward flags 0x%x", flags);
    if (!to_branch)
        to_branch = branch;
    if ((r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    url = gg_repo_meta(mirror, "upstream");
    pin = gg_repo_meta(mirror, "hostkey");
    if (!url)
        return terok_perr(err, -EOPNOTSUPP, "gate: project '%s' has no upstream to forward to",
                          gg_quote(repo, q));
    if ((r = gg_need_credential(g, repo, mirror, err)) < 0)
        return r;
    ctx.url = url;
    ctx.host_key = pin;
    if (asprintf(&src, "refs/heads/%s", branch) < 0 ||
        asprintf(&upref, "refs/heads/%s", to_branch) < 0 ||
        asprintf(&snap, GG_UPSTREAM_NS "%s", to_branch) < 0 ||
        asprintf(&fetchspec, "+%s:%s", upref, snap) < 0 ||
        asprintf(&pushspec, "%s%s:%s", force ? "+" : "", src, upref) < 0)
        return -ENOMEM;
    /* The upstream's current tip of the target branch, with its objects, into the snapshot. */
    if (gg_remote_new(&fetch_remote, mirror, url) < 0)
        return gg_git_fail(err, -EINVAL, "gate: upstream '%s'", gg_quote(url, q));
    gg_remote_callbacks(&fo.callbacks, &ctx);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.update_fetchhead = 0;
    {
        char *specs[] = {fetchspec};
        git_strarray sa = {specs, 1};
        if (git_remote_fetch(fetch_remote, &sa, &fo, "terok: forward check") < 0)
            return gg_remote_fail(err, &ctx, -EHOSTUNREACH, "gate: cannot reach upstream '%s'",
                                  gg_quote(url, q));
    }
    if (git_remote_ls(&heads, &nheads, fetch_remote) < 0)
        return gg_git_fail(err, -EIO, "gate: listing upstream '%s'", gg_quote(url, q));
    for (size_t i = 0; i < nheads; i++)
        if (streq(heads[i]->name, upref)) {
            git_oid_cpy(&up, &heads[i]->oid);
            has_up = true;
        }
    /* Open the task view now so its object database sees what was just fetched. */
    if ((r = gg_open_task(g, container, repo, &task, err)) < 0)
        return r;
    if (git_reference_name_to_id(&tip, task, src) < 0)
        return terok_perr(err, -ENOENT, "gate: task '%s' has no branch '%s'", container,
                          gg_quote(branch, q));
    if (has_up && git_oid_equal(&up, &tip))
        return 0; /* already there */
    if (has_up && git_graph_descendant_of(task, &tip, &up) != 1) {
        if (!force)
            return terok_perr(err, -EPERM,
                              "gate: upstream branch '%s' (%s) has commits that '%s' (%s) lacks: "
                              "not a fast-forward; use --force to overwrite it (its old tip is "
                              "kept as a backup ref)",
                              to_branch, gg_oid_str(&up, h1), branch, gg_oid_str(&tip, h2));
        {
            _cleanup_free_ char *bref = NULL;
            if (asprintf(&bref, "refs/upstream/%s", to_branch) < 0)
                return -ENOMEM;
            if ((r = gg_backup_ref(mirror, bref, &up, &backup, err)) < 0)
                return r;
        }
    }
    if (gg_remote_new(&push_remote, task, url) < 0)
        return gg_git_fail(err, -EINVAL, "gate: upstream '%s'", gg_quote(url, q));
    pc.ctx = ctx;
    pc.ctx.attempts = 0;
    gg_remote_callbacks(&po.callbacks, &pc.ctx); /* pc.ctx first: one payload for both */
    po.callbacks.push_update_reference = push_ref_cb;
    {
        char *specs[] = {pushspec};
        git_strarray sa = {specs, 1};
        if (git_remote_push(push_remote, &sa, &po) < 0) {
            free(pc.rejected);
            return gg_remote_fail(err, &pc.ctx, -EIO, "gate: pushing '%s' to upstream '%s' as '%s'",
                                  branch, gg_quote(url, q), to_branch);
        }
    }
    if (pc.rejected) {
        r = terok_perr(err, -EPERM, "gate: upstream '%s' refused '%s': %s", gg_quote(url, q),
                       to_branch, pc.rejected);
        free(pc.rejected);
        return r;
    }
    ev = json_object_new_object();
    json_object_object_add(ev, "time", json_object_new_int64(gg_now()));
    json_object_object_add(ev, "event", json_object_new_string("forward"));
    json_object_object_add(ev, "container", json_object_new_string(container));
    json_object_object_add(ev, "repo", json_object_new_string(repo));
    json_object_object_add(ev, "branch", json_object_new_string(branch));
    json_object_object_add(ev, "to", json_object_new_string(to_branch));
    json_object_object_add(ev, "old", has_up ? json_object_new_string(gg_oid_str(&up, h1)) : NULL);
    json_object_object_add(ev, "new", json_object_new_string(gg_oid_str(&tip, h2)));
    json_object_object_add(ev, "forced", json_object_new_boolean(backup != NULL));
    json_object_object_add(ev, "backup", backup ? json_object_new_string(backup) : NULL);
    (void)gg_event_append(g, ev);
    terok_plog(TEROK_LOG_INFO, "forwarded '%s' of '%s' to '%s' as '%s'%s", branch, container, url,
               to_branch, backup ? " (forced; upstream's old tip backed up)" : "");
    return 0;
}
