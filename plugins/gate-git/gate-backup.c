/* SPDX-License-Identifier: Apache-2.0 */
/* gate-backup.c: backup refs, listed, restored and pruned. A backup is a ref
 * refs/terok/backup/<ref without refs/>/<YYYYmmddTHHMMSSZ>-<sha12> in the repository that holds
 * its objects: the mirror (sync apply, forced forward: upstream/<branch>) or a task's view (its
 * own force-pushes and deletes). A backup id is the ref name, prefixed "<task>:" for a task's.
 * Nothing ever runs gc, so a backup's objects stay until the backup is pruned. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "gate-state.h"

/* Split a backup ref into the ref it saved (refs/...) and its time. */
static int parse_backup(const char *name, char **ret_ref, int64_t *ret_time)
{
    const char *rest, *slash;
    struct tm tm = {0};
    char *end;

    if (!strneq(name, GG_BACKUP_NS, strlen(GG_BACKUP_NS)))
        return -EINVAL;
    rest = name + strlen(GG_BACKUP_NS);
    slash = strrchr(rest, '/');
    if (!slash || slash == rest)
        return -EINVAL;
    end = strptime(slash + 1, "%Y%m%dT%H%M%SZ", &tm);
    if (!end || *end != '-')
        return -EINVAL;
    if (ret_time)
        *ret_time = (int64_t)timegm(&tm);
    if (ret_ref && asprintf(ret_ref, "refs/%.*s", (int)(slash - rest), rest) < 0)
        return -ENOMEM;
    return 0;
}

typedef int (*backup_fn)(void *ud, git_repository *repo, const char *task, git_reference *ref);

static int each_backup(git_repository *repo, const char *task, backup_fn fn, void *ud)
{
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    git_reference *ref;
    int r = 0;

    if (git_reference_iterator_glob_new(&it, repo, GG_BACKUP_NS "*") < 0)
        return -EIO;
    while (r == 0 && git_reference_next(&ref, it) == 0) {
        r = fn(ud, repo, task, ref);
        git_reference_free(ref);
    }
    return r;
}

/* Mirror first, then every task view of the project. */
static int each_repo_backup(gg *g, const char *repo, git_repository *mirror, backup_fn fn, void *ud)
{
    _cleanup_free_ char *dir = NULL;
    struct dirent **names = NULL;
    int n, r;

    if ((r = each_backup(mirror, NULL, fn, ud)) != 0)
        return r;
    if (asprintf(&dir, "%s/tasks", g->root) < 0)
        return -ENOMEM;
    n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        git_repository *t = NULL;
        if (r == 0 && names[i]->d_name[0] != '.' &&
            gg_check_container(names[i]->d_name, NULL) == 0 &&
            gg_open_task(g, names[i]->d_name, repo, &t, NULL) == 0) {
            r = each_backup(t, names[i]->d_name, fn, ud);
            git_repository_free(t);
        }
        free(names[i]);
    }
    free(names);
    return r;
}

struct list_ctx {
    terok_gate_json_cb cb;
    void *ud;
};

static int list_one(void *ud, git_repository *repo, const char *task, git_reference *ref)
{
    struct list_ctx *c = ud;
    _cleanup_free_ char *saved = NULL, *id = NULL;
    const git_oid *oid = git_reference_target(ref);
    char h[GIT_OID_HEXSZ + 1];
    int64_t t = 0;
    json_object *o;

    (void)repo;
    if (!oid || parse_backup(git_reference_name(ref), &saved, &t) < 0)
        return 0;
    if (asprintf(&id, "%s%s%s", task ? task : "", task ? ":" : "", git_reference_name(ref)) < 0)
        return -ENOMEM;
    o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "task", task ? json_object_new_string(task) : NULL);
    json_object_object_add(o, "ref", json_object_new_string(saved));
    json_object_object_add(o, "oid", json_object_new_string(gg_oid_str(oid, h)));
    json_object_object_add(o, "time", json_object_new_int64(t));
    return gg_emit(c->cb, c->ud, o);
}

int gg_backups_list(void *state, const char *repo, terok_gate_json_cb cb, void *ud,
                    terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    struct list_ctx c = {cb, ud};
    int r;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: backups list needs a callback");
    if ((r = gg_check_repo(repo, err)) < 0 || (r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    r = each_repo_backup(g, repo, mirror, list_one, &c);
    if (r == -EIO)
        return gg_git_fail(err, r, "gate: listing backups of '%s'", repo);
    return r < 0 ? r : 0;
}

int gg_backup_restore(void *state, const char *repo, const char *backup, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *target = NULL;
    _cleanup_(git_reference_freep) git_reference *bref = NULL, *cur = NULL, *out = NULL;
    _cleanup_free_ char *task = NULL, *saved = NULL, *pre = NULL;
    const char *name = backup, *colon;
    const git_oid *oid;
    char q[200];
    int r, valid = 0;

    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_repo(repo, err)) < 0)
        return r;
    if (!backup || !*backup)
        return terok_perr(err, -EINVAL, "gate: a backup id is required");
    if (strnlen(backup, 1024) >= 1024)
        return terok_perr(err, -EINVAL, "gate: backup id '%s' is too long", gg_quote(backup, q));
    colon = strchr(backup, ':');
    if (colon) {
        task = strndup(backup, (size_t)(colon - backup));
        if (!task)
            return -ENOMEM;
        if ((r = gg_check_container(task, err)) < 0)
            return r;
        name = colon + 1;
    }
    if (git_reference_name_is_valid(&valid, name) < 0 || !valid ||
        parse_backup(name, &saved, NULL) < 0)
        return terok_perr(err, -EINVAL, "gate: '%s' is not a backup id (see 'gate backups list')",
                          gg_quote(backup, q));
    if (!strneq(saved, "refs/heads/", 11) && !strneq(saved, "refs/tags/", 10))
        return terok_perr(err, -EINVAL,
                          "gate: backup '%s' is of the upstream's '%s'; restore it upstream with "
                          "'gate forward --force' from a task branch",
                          gg_quote(backup, q), saved);
    r = task ? gg_open_task(g, task, repo, &target, err) : gg_open_mirror(g, repo, &target, err);
    if (r < 0)
        return r;
    if (git_reference_lookup(&bref, target, name) < 0 || !(oid = git_reference_target(bref)))
        return terok_perr(err, -ENOENT, "gate: no backup '%s' in '%s'", gg_quote(backup, q), repo);
    if (git_reference_lookup(&cur, target, saved) == 0 && git_reference_target(cur)) {
        if (git_oid_equal(git_reference_target(cur), oid))
            return 0;
        /* The tip being replaced is itself kept first. */
        if ((r = gg_backup_ref(target, saved, git_reference_target(cur), &pre, err)) < 0)
            return r;
        r = git_reference_create_matching(&out, target, saved, oid, 1, git_reference_target(cur),
                                          "terok: restore backup");
    } else
        r = git_reference_create(&out, target, saved, oid, 0, "terok: restore backup");
    if (r == GIT_EMODIFIED || r == GIT_EEXISTS)
        return terok_perr(err, -ESTALE,
                          "gate: '%s' changed while restoring; the concurrent update wins", saved);
    if (r < 0)
        return gg_git_fail(err, -EIO, "gate: restoring '%s'", saved);
    terok_plog(TEROK_LOG_NOTICE, "restored '%s' in '%s'%s%s from %s", saved, repo,
               task ? " of task " : "", task ? task : "", name);
    return 0;
}

struct prune_ctx {
    int64_t cutoff; /* backups at or before this time go */
    uint64_t pruned;
};

static int prune_one(void *ud, git_repository *repo, const char *task, git_reference *ref)
{
    struct prune_ctx *c = ud;
    int64_t t;

    (void)repo;
    (void)task;
    if (parse_backup(git_reference_name(ref), NULL, &t) < 0 || t > c->cutoff)
        return 0;
    if (git_reference_delete(ref) == 0)
        c->pruned++;
    return 0;
}

int gg_backups_prune(gg *g, terok_gate_prune *p, terok_error *err)
{
    _cleanup_(git_repository_freep) git_repository *mirror = NULL;
    struct prune_ctx c = {0};
    int r;

    if (p->struct_size < offsetof(terok_gate_prune, ret_pruned) + sizeof(uint64_t))
        return terok_perr(err, -EINVAL, "gate: prune request too small");
    if (p->older_than_seconds < 0)
        return terok_perr(err, -EINVAL, "gate: a negative backup age");
    if ((r = gg_check_repo(p->repo, err)) < 0 || (r = gg_open_mirror(g, p->repo, &mirror, err)) < 0)
        return r;
    c.cutoff = p->older_than_seconds == 0 ? INT64_MAX : gg_now() - p->older_than_seconds;
    r = each_repo_backup(g, p->repo, mirror, prune_one, &c);
    if (r < 0)
        return gg_git_fail(err, r, "gate: pruning backups of '%s'", p->repo);
    p->ret_pruned = c.pruned;
    return 0;
}
