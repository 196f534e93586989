/* SPDX-License-Identifier: Apache-2.0 */
/* gate-git.c: the gate-git plugin's configuration, instance, project mirrors (create, delete,
 * list) and per-task views (grant, revoke, authorize), and ctl. A project is a bare mirror
 * <root>/projects/<p>.git; a task granted it gets its own bare repo
 * <root>/tasks/<container>/<p>.git borrowing the mirror's objects through
 * objects/info/alternates, so one task's pushes are invisible to every other task. Never prints,
 * never exits. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gate-state.h"

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("path", TEROK_CONFIG_PATH, "",
                     "Where mirrors and task repos live (default: <state-dir>/gate-git)")
        TEROK_CONFIG_KEY("git", TEROK_CONFIG_STRING, "git",
                         "The git program that serves clients (searched in PATH at open)")
            TEROK_CONFIG_KEY("max-push-size", TEROK_CONFIG_SIZE, "2G",
                             "Largest pack a task may push (receive.maxInputSize)")
                TEROK_CONFIG_KEY("allow-delete", TEROK_CONFIG_BOOL, "yes",
                                 "Tasks may delete branches of their own view (backed up)")
                    TEROK_CONFIG_KEY("allow-force-push", TEROK_CONFIG_BOOL, "yes",
                                     "Tasks may force-push in their own view (backed up)")
                        TEROK_CONFIG_KEY("serve-timeout", TEROK_CONFIG_DURATION, "1h",
                                         "A served git request running longer is killed")
                            TEROK_CONFIG_KEY("known-hosts", TEROK_CONFIG_PATH, "",
                                             "OpenSSH known_hosts file trusted for ssh:// "
                                             "upstreams (besides per-project pinned keys)"));

/* --- instance ------------------------------------------------------------------------------ */

static int cfg_str(const terok_config_section *cfg, const char *key, const char *def,
                   const char **ret)
{
    int r = cfg ? HOST->config_get(cfg, key, ret) : -ENOENT;

    if (r == -ENOENT || r == -EINVAL) {
        *ret = def;
        return 0;
    }
    return r;
}

static void cfg_bool(const terok_config_section *cfg, const char *key, bool def, bool *ret)
{
    int v;

    *ret = (cfg && HOST->config_get_bool(cfg, key, &v) == 0) ? v != 0 : def;
}

static void cfg_int(const terok_config_section *cfg, const char *key, int64_t def, int64_t *ret)
{
    int64_t v;

    *ret = (cfg && HOST->config_get_int(cfg, key, &v) == 0) ? v : def;
}

static char *find_program(const char *name)
{
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = NULL;
    char *save = NULL;

    if (strchr(name, '/'))
        return name[0] == '/' && access(name, X_OK) == 0 ? strdup(name) : NULL;
    copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (!copy)
        return NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *p = NULL;
        if (d[0] != '/' || asprintf(&p, "%s/%s", d, name) < 0)
            continue;
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static void gg_free(gg *g)
{
    if (!g)
        return;
    if (g->cred)
        HOST->secret_free(g->cred);
    free(g->ssh_pub);
    free(g->known_hosts);
    pthread_mutex_destroy(&g->cred_lock);
    gg_adv_free_all(g);
    pthread_mutex_destroy(&g->adv_lock);
    free(g->root);
    free(g->git);
    free(g->home);
    free(g->hooks);
    free(g);
    git_libgit2_shutdown();
}

static void gg_close(void *state)
{
    gg_free(state);
}

static int gg_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                   terok_error *err)
{
    const char *path, *git, *known_hosts, *state_dir = HOST->state_dir(self);
    gg *g;
    int r;

    if (!ret_state)
        return terok_perr(err, -EINVAL, "gate: no place for the instance");
    if (cfg_str(cfg, "path", "", &path) < 0 || cfg_str(cfg, "git", "git", &git) < 0 ||
        cfg_str(cfg, "known-hosts", "", &known_hosts) < 0)
        return terok_perr(err, -EINVAL, "gate: cannot read the [gate.git] section");
    if (!*path && !state_dir)
        return terok_perr(err, -EINVAL, "gate: no state directory and no [gate.git] path");
    if (git_libgit2_init() < 0)
        return terok_perr(err, -EIO, "gate: cannot initialise libgit2");
    g = calloc(1, sizeof *g);
    if (!g) {
        git_libgit2_shutdown();
        return -ENOMEM;
    }
    pthread_mutex_init(&g->cred_lock, NULL);
    pthread_mutex_init(&g->adv_lock, NULL);
    g->root = strdup(*path ? path : state_dir);
    cfg_int(cfg, "max-push-size", INT64_C(2) << 30, &g->max_push);
    cfg_bool(cfg, "allow-delete", true, &g->allow_delete);
    cfg_bool(cfg, "allow-force-push", true, &g->allow_force);
    cfg_int(cfg, "serve-timeout", INT64_C(3600000), &g->timeout_ms);
    if (*known_hosts && !(g->known_hosts = strdup(known_hosts))) {
        gg_free(g);
        return -ENOMEM;
    }
    if (!g->root || asprintf(&g->home, "%s/home", g->root) < 0 ||
        asprintf(&g->hooks, "%s/hooks", g->root) < 0) {
        gg_free(g);
        return -ENOMEM;
    }
    g->git = find_program(git);
    if (!g->git) {
        char q[200];
        gg_free(g);
        return terok_perr(err, -ENOENT, "gate: git program '%s' not found (set [gate.git] git)",
                          gg_quote(git, q));
    }
    {
        const char *dirs[] = {"projects", "tasks", "home", "hooks"};
        r = gg_mkdir_p(g->root, 0700);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dirs); i++) {
            _cleanup_free_ char *d = NULL;
            if (asprintf(&d, "%s/%s", g->root, dirs[i]) < 0)
                r = -ENOMEM;
            else if (mkdir(d, 0700) < 0 && errno != EEXIST)
                r = negative_errno();
        }
        if (r < 0) {
            int e = terok_perr(err, r, "gate: cannot create '%s': %s", g->root, strerror(-r));
            gg_free(g);
            return e;
        }
    }
    /* The operator's own git config (url rewrites, credential helpers, proxies) never applies:
     * libgit2 looks for global/XDG/system config only in our empty home. Process-wide, which is
     * right for every libgit2 user in a terok process. */
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, g->home);
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, g->home);
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, g->home);
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_PROGRAMDATA, g->home);
    *ret_state = g;
    return 0;
}

/* --- projects ------------------------------------------------------------------------------ */

static int set_config(git_repository *repo, const char *const *kv, terok_error *err)
{
    _cleanup_(git_config_freep) git_config *cfg = NULL;

    if (git_repository_config(&cfg, repo) < 0)
        return gg_git_fail(err, -EIO, "gate: opening repository config");
    for (; kv[0]; kv += 2)
        if (kv[1] && git_config_set_string(cfg, kv[0], kv[1]) < 0)
            return gg_git_fail(err, -EIO, "gate: setting '%s'", kv[0]);
    return 0;
}

static int init_bare(const char *path, const char *head_branch, bool odb_aside,
                     git_repository **ret, terok_error *err)
{
    git_repository_init_options o;

    git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    _cleanup_free_ char *head = NULL, *objects = NULL, *odb = NULL;

    if (asprintf(&head, "refs/heads/%s", head_branch) < 0)
        return -ENOMEM;
    o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT | GIT_REPOSITORY_INIT_MKDIR;
    o.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
    o.initial_head = head;
    if (git_repository_init_ext(ret, path, &o) < 0)
        return gg_git_fail(err, -EIO, "gate: creating '%s'", path);
    if (!odb_aside)
        return 0;
    git_repository_free(TAKE_PTR(*ret));
    /* A mirror keeps its object database in odb/, objects being a symlink to it. For every
     * alternate whose real path ends in "/objects" git lists that repository's refs with
     * core.alternateRefsCommand, a process each time a task's view advertises its refs or
     * checks a push's connectivity; under any other name it skips them, which is what the
     * gate wants (the mirror's refs are not offered through alternates). git and libgit2
     * follow the symlink; `git clone --local` of the mirror itself does not (use file://).
     * Task views keep a plain objects/: operators clone those by path. */
    if (asprintf(&objects, "%s/objects", path) < 0 || asprintf(&odb, "%s/odb", path) < 0)
        return -ENOMEM;
    if (rename(objects, odb) < 0 || symlink("odb", objects) < 0)
        return terok_perr(err, negative_errno(), "gate: creating '%s': %s", objects,
                          strerror(errno));
    if (git_repository_open_bare(ret, path) < 0)
        return gg_git_fail(err, -EIO, "gate: opening '%s'", path);
    return 0;
}

/* Copy every ref under `from_ns` of src to `to_ns` in dst (same oids). */
static int copy_refs(git_repository *src, const char *glob, size_t strip, const char *to_ns,
                     git_repository *dst, bool overwrite, terok_error *err)
{
    _cleanup_(git_reference_iterator_freep) git_reference_iterator *it = NULL;
    git_reference *ref;
    int r;

    if (git_reference_iterator_glob_new(&it, src, glob) < 0)
        return gg_git_fail(err, -EIO, "gate: listing refs");
    while ((r = git_reference_next(&ref, it)) == 0) {
        _cleanup_free_ char *name = NULL;
        git_reference *out = NULL;
        const git_oid *oid = git_reference_target(ref);
        int c = 0;

        if (oid && asprintf(&name, "%s%s", to_ns, git_reference_name(ref) + strip) >= 0)
            c = git_reference_create(&out, dst, name, oid, overwrite, "terok: seed");
        git_reference_free(out);
        git_reference_free(ref);
        if (c < 0 && c != GIT_EEXISTS)
            return gg_git_fail(err, -EIO, "gate: writing '%s'", name ? name : "?");
    }
    return r == GIT_ITEROVER ? 0 : gg_git_fail(err, -EIO, "gate: listing refs");
}

static int same_or_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && streq(a, b));
}

static int gg_repo_create(void *state, const terok_gate_repo_spec *spec, terok_error *err)
{
    gg *g = state;
    _cleanup_free_ char *path = NULL, *tmp = NULL, *head = NULL, *host_key_text = NULL;
    _cleanup_(git_repository_freep) git_repository *repo = NULL;
    const char *branch, *host_key = NULL;
    char q[200];
    struct stat st;
    int r;

    if (!g || !spec)
        return terok_perr(err, -EINVAL, "gate: no repository spec");
    if (spec->struct_size < offsetof(terok_gate_repo_spec, credential) + sizeof(char *))
        return terok_perr(err, -EINVAL, "gate: repository spec too small");
    if (!terok_struct_tail_is_zero(spec, spec->struct_size, sizeof *spec))
        return terok_perr(err, -E2BIG, "gate: repository spec has fields this plugin lacks");
    if ((r = gg_check_repo(spec->name, err)) < 0)
        return r;
    if (spec->upstream_url && (r = gg_check_url(spec->upstream_url, err)) < 0)
        return r;
    if (spec->branch && (r = gg_check_branch(spec->branch, "default branch", err)) < 0)
        return r;
    if (spec->credential && !*spec->credential)
        return terok_perr(err, -EINVAL, "gate: an empty credential name");
    if (spec->flags & ~TEROK_GATE_REPO_ACCEPT_HOST_KEY)
        return terok_perr(err, -EINVAL, "gate: unknown repository flags 0x%x", spec->flags);
    if (spec->struct_size > offsetof(terok_gate_repo_spec, host_key) && spec->host_key)
        host_key = spec->host_key;
    if ((host_key || (spec->flags & TEROK_GATE_REPO_ACCEPT_HOST_KEY)) &&
        !gg_url_is_ssh(spec->upstream_url))
        return terok_perr(err, -EINVAL,
                          "gate: a host key (--host-key, --accept-host-key) is for ssh:// "
                          "upstreams only");
    if (host_key) {
        _cleanup_free_ uint8_t *blob = NULL;
        size_t len = 0;
        if (gg_parse_host_key(host_key, &blob, &len) < 0)
            return terok_perr(err, -EINVAL,
                              "gate: host key '%s' is not 'TYPE BASE64' as in known_hosts",
                              gg_quote(host_key, q));
        host_key_text = gg_host_key_text(blob, len); /* without the comment */
        if (!host_key_text)
            return -ENOMEM;
    }
    path = gg_mirror_path(g, spec->name);
    if (!path)
        return -ENOMEM;
    if (lstat(path, &st) == 0) {
        _cleanup_free_ char *up = NULL, *cred = NULL, *br = NULL, *hk = NULL;
        if ((r = gg_open_mirror(g, spec->name, &repo, err)) < 0)
            return r;
        up = gg_repo_meta(repo, "upstream");
        cred = gg_repo_meta(repo, "credential");
        br = gg_repo_meta(repo, "branch");
        hk = gg_repo_meta(repo, "hostkey");
        if (same_or_null(up, spec->upstream_url) && same_or_null(cred, spec->credential) &&
            (!spec->branch || same_or_null(br, spec->branch)) &&
            (!host_key_text || same_or_null(hk, host_key_text)))
            return 0; /* idempotent */
        return terok_perr(err, -EEXIST,
                          "gate: project '%s' exists with another upstream, branch, credential or "
                          "host key (see 'terok-sandbox gate list')",
                          gg_quote(spec->name, q));
    }
    if (asprintf(&tmp, "%s/projects/.%s.tmp-%d", g->root, spec->name, (int)getpid()) < 0)
        return -ENOMEM;
    (void)gg_rmtree(tmp);
    if ((r = init_bare(tmp, spec->branch ? spec->branch : "main", true, &repo, err)) < 0)
        goto fail;
    {
        const char *kv[] = {"core.logAllRefUpdates",
                            "always",
                            "gc.auto",
                            "0",
                            "gc.pruneExpire",
                            "never",
                            "receive.autogc",
                            "false",
                            "terok.upstream",
                            spec->upstream_url,
                            "terok.credential",
                            spec->credential,
                            "terok.branch",
                            spec->branch,
                            "terok.hostkey",
                            host_key_text,
                            NULL};
        if ((r = set_config(repo, kv, err)) < 0)
            goto fail;
    }
    if (spec->upstream_url) {
        if ((r = gg_need_credential(g, spec->name, repo, err)) < 0 ||
            (r = gg_fetch_upstream(g, spec->name, repo, spec->upstream_url,
                                   spec->flags & TEROK_GATE_REPO_ACCEPT_HOST_KEY, NULL, &head,
                                   err)) < 0)
            goto fail;
        branch = spec->branch ? spec->branch : head ? head : "main";
        if ((r = copy_refs(repo, GG_UPSTREAM_NS "*", strlen(GG_UPSTREAM_NS), "refs/heads/", repo,
                           false, err)) < 0 ||
            (r = copy_refs(repo, GG_UPSTREAM_TAGS_NS "*", strlen(GG_UPSTREAM_TAGS_NS), "refs/tags/",
                           repo, false, err)) < 0)
            goto fail;
        {
            _cleanup_free_ char *target = NULL;
            git_reference *h = NULL;
            if (asprintf(&target, "refs/heads/%s", branch) < 0) {
                r = -ENOMEM;
                goto fail;
            }
            if (git_reference_symbolic_create(&h, repo, "HEAD", target, 1, "terok: head") < 0) {
                r = gg_git_fail(err, -EIO, "gate: setting HEAD");
                goto fail;
            }
            git_reference_free(h);
            {
                const char *kv[] = {"terok.branch", branch, NULL};
                if ((r = set_config(repo, kv, err)) < 0)
                    goto fail;
            }
        }
    }
    if (spec->upstream_url)
        (void)gg_mirror_repack(g, git_repository_path(repo)); /* best effort; logs */
    git_repository_free(TAKE_PTR(repo));
    if (rename(tmp, path) < 0) {
        r = negative_errno();
        (void)gg_rmtree(tmp);
        if (r == -ENOTEMPTY || r == -EEXIST)
            return gg_repo_create(state, spec, err); /* made concurrently: same spec is fine */
        return terok_perr(err, r == -ENOTEMPTY || r == -EEXIST ? -EEXIST : r,
                          "gate: cannot create project '%s': %s", gg_quote(spec->name, q),
                          strerror(-r));
    }
    terok_plog(TEROK_LOG_INFO, "project '%s' created", spec->name);
    return 0;
fail:
    git_repository_free(TAKE_PTR(repo));
    (void)gg_rmtree(tmp);
    return r;
}

/* Call cb(ud, container) for every task dir that holds a view of repo. */
static int for_each_task(gg *g, const char *repo, int (*cb)(void *, const char *), void *ud)
{
    _cleanup_free_ char *dir = NULL;
    DIR *d;
    struct dirent *de;
    int r = 0;

    if (asprintf(&dir, "%s/tasks", g->root) < 0)
        return -ENOMEM;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : negative_errno();
    while (r == 0 && (de = readdir(d))) {
        _cleanup_free_ char *p = NULL;
        struct stat st;
        if (de->d_name[0] == '.' || gg_check_container(de->d_name, NULL) < 0)
            continue;
        p = gg_task_path(g, de->d_name, repo);
        if (p && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            r = cb(ud, de->d_name);
    }
    closedir(d);
    return r;
}

struct busy {
    gg *g;
    const char *repo;
    char first[GG_CONTAINER_MAX + 1];
    size_t active;
};

static int busy_cb(void *ud, const char *container)
{
    struct busy *b = ud;
    git_repository *t = NULL;

    if (gg_open_task(b->g, container, b->repo, &t, NULL) == 0) {
        if (gg_task_rights(t) && !b->active++)
            snprintf(b->first, sizeof b->first, "%s", container);
        git_repository_free(t);
    }
    return 0;
}

static int rm_task_cb(void *ud, const char *container)
{
    struct busy *b = ud;
    _cleanup_free_ char *p = gg_task_path(b->g, container, b->repo);

    return p ? gg_rmtree(p) : -ENOMEM;
}

static int gg_repo_delete(void *state, const char *repo, terok_error *err)
{
    gg *g = state;
    _cleanup_free_ char *path = NULL, *grave = NULL;
    struct busy b = {.g = g, .repo = repo};
    struct stat st;
    char q[200];
    int r;

    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_repo(repo, err)) < 0)
        return r;
    path = gg_mirror_path(g, repo);
    if (!path || asprintf(&grave, "%s/projects/.%s.rm-%d", g->root, repo, (int)getpid()) < 0)
        return -ENOMEM;
    if (lstat(path, &st) < 0)
        return terok_perr(err, -ENOENT, "gate: no project '%s'", gg_quote(repo, q));
    (void)for_each_task(g, repo, busy_cb, &b);
    if (b.active)
        return terok_perr(err, -EBUSY,
                          "gate: project '%s' is granted to %zu task(s) (first: '%s'); remove "
                          "those containers first",
                          gg_quote(repo, q), b.active, b.first);
    /* Task views borrow the mirror's objects: they go first, then the mirror (renamed away
     * first so a half-deleted mirror is never seen under its name). */
    if ((r = for_each_task(g, repo, rm_task_cb, &b)) < 0)
        return terok_perr(err, r, "gate: removing task views of '%s': %s", gg_quote(repo, q),
                          strerror(-r));
    if (rename(path, grave) < 0)
        return terok_perr(err, negative_errno(), "gate: removing '%s': %s", path, strerror(errno));
    r = gg_rmtree(grave);
    if (r < 0)
        return terok_perr(err, r, "gate: removing '%s': %s", grave, strerror(-r));
    terok_plog(TEROK_LOG_INFO, "project '%s' removed", repo);
    return 0;
}

static int count_pending(git_repository *repo)
{
    _cleanup_free_ char *p = NULL;
    json_object *o;
    int n = 0;

    if (asprintf(&p, "%s/terok-pending.json", git_repository_path(repo)) < 0)
        return 0;
    o = json_object_from_file(p);
    if (o && json_object_is_type(o, json_type_object))
        n = json_object_object_length(o);
    json_object_put(o);
    return n;
}

static int task_list_cb(void *ud, const char *container)
{
    json_object_array_add(ud, json_object_new_string(container));
    return 0;
}

/* "host_key" ("TYPE BASE64") and "host_key_fingerprint" of a project's pinned upstream key. */
static void add_host_key(json_object *o, git_repository *repo)
{
    _cleanup_free_ char *hk = gg_repo_meta(repo, "hostkey");
    _cleanup_free_ uint8_t *blob = NULL;
    char fp[GG_FP_SIZE];
    size_t len = 0;

    json_object_object_add(o, "host_key", hk ? json_object_new_string(hk) : NULL);
    if (hk && gg_parse_host_key(hk, &blob, &len) == 0) {
        gg_key_fingerprint(blob, len, fp);
        json_object_object_add(o, "host_key_fingerprint", json_object_new_string(fp));
    } else
        json_object_object_add(o, "host_key_fingerprint", NULL);
}

static int gg_repo_list(void *state, terok_gate_json_cb cb, void *ud, terok_error *err)
{
    gg *g = state;
    _cleanup_free_ char *dir = NULL;
    struct dirent **names = NULL;
    int n, r = 0;

    if (!g || !cb)
        return terok_perr(err, -EINVAL, "gate: no callback");
    if (asprintf(&dir, "%s/projects", g->root) < 0)
        return -ENOMEM;
    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return errno == ENOENT ? 0 : terok_perr(err, negative_errno(), "gate: listing '%s'", dir);
    for (int i = 0; i < n; i++) {
        char name[GG_REPO_MAX + 8];
        size_t l = strlen(names[i]->d_name);
        git_repository *repo = NULL;
        json_object *o, *tasks;
        git_reference *head = NULL;

        if (r == 0 && l > 4 && streq(names[i]->d_name + l - 4, ".git") && l - 4 <= GG_REPO_MAX) {
            memcpy(name, names[i]->d_name, l - 4);
            name[l - 4] = '\0';
            if (gg_check_repo(name, NULL) == 0 && gg_open_mirror(g, name, &repo, NULL) == 0) {
                char *up = gg_repo_meta(repo, "upstream"), *cred = gg_repo_meta(repo, "credential"),
                     *br = gg_repo_meta(repo, "branch");
                o = json_object_new_object();
                tasks = json_object_new_array();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "path",
                                       json_object_new_string(git_repository_path(repo)));
                json_object_object_add(o, "upstream", up ? json_object_new_string(up) : NULL);
                json_object_object_add(o, "branch", br ? json_object_new_string(br) : NULL);
                json_object_object_add(o, "credential", cred ? json_object_new_string(cred) : NULL);
                add_host_key(o, repo);
                if (git_reference_lookup(&head, repo, "HEAD") == 0 &&
                    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
                    json_object_object_add(
                        o, "head", json_object_new_string(git_reference_symbolic_target(head)));
                git_reference_free(head);
                json_object_object_add(o, "pending", json_object_new_int(count_pending(repo)));
                (void)for_each_task(g, name, task_list_cb, tasks);
                json_object_object_add(o, "tasks", tasks);
                r = gg_emit(cb, ud, o);
                free(up);
                free(cred);
                free(br);
                git_repository_free(repo);
            }
        }
        free(names[i]);
    }
    free(names);
    return r < 0 ? r : 0;
}

/* --- grants ------------------------------------------------------------------------------- */

static int write_alternates(const char *task_path, const char *mirror_objects, terok_error *err)
{
    _cleanup_free_ char *p = NULL, *line = NULL;
    _cleanup_close_ int fd = -EBADF;
    size_t n;

    if (asprintf(&p, "%s/objects/info", task_path) < 0 ||
        asprintf(&line, "%s\n", mirror_objects) < 0)
        return -ENOMEM;
    if (gg_mkdir_p(p, 0700) < 0)
        return terok_perr(err, negative_errno(), "gate: creating '%s'", p);
    free(p);
    if (asprintf(&p, "%s/objects/info/alternates", task_path) < 0)
        return -ENOMEM;
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    n = strlen(line);
    if (fd < 0 || write(fd, line, n) != (ssize_t)n)
        return terok_perr(err, -EIO, "gate: writing '%s'", p);
    return 0;
}

static int gg_grant(void *state, const char *container, const char *repo, uint32_t rights,
                    terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *mirror = NULL, *task = NULL;
    _cleanup_free_ char *path = NULL, *tmp = NULL, *dir = NULL, *objects = NULL;
    _cleanup_(git_reference_freep) git_reference *mhead = NULL;
    const char *rights_s, *head = "refs/heads/main";
    char q[200];
    struct stat st;
    int r;

    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0)
        return r;
    if (rights & TEROK_GATE_WRITE)
        rights_s = "write";
    else if (rights == TEROK_GATE_READ)
        rights_s = "read";
    else
        return terok_perr(err, -EINVAL, "gate: invalid rights %u", rights);
    if ((r = gg_open_mirror(g, repo, &mirror, err)) < 0)
        return r;
    path = gg_task_path(g, container, repo);
    dir = gg_task_dir(g, container);
    if (!path || !dir)
        return -ENOMEM;
    if (lstat(path, &st) == 0) {
        /* Granted before (or revoked and granted again): keep the task's work, update rights. */
        const char *kv[] = {"terok.rights", rights_s, NULL};
        if ((r = gg_open_task(g, container, repo, &task, err)) < 0)
            return r;
        return set_config(task, kv, err);
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return terok_perr(err, negative_errno(), "gate: creating '%s': %s", dir, strerror(errno));
    if (asprintf(&tmp, "%s/.%s.tmp-%d", dir, repo, (int)getpid()) < 0 ||
        asprintf(&objects, "%sobjects", git_repository_path(mirror)) < 0)
        return -ENOMEM;
    (void)gg_rmtree(tmp);
    if (git_reference_lookup(&mhead, mirror, "HEAD") == 0 &&
        git_reference_type(mhead) == GIT_REFERENCE_SYMBOLIC)
        head = git_reference_symbolic_target(mhead);
    if ((r = init_bare(tmp, head + strlen("refs/heads/"), false, &task, err)) < 0)
        goto fail;
    git_repository_free(TAKE_PTR(task));
    /* Alternates first, then reopen, so the object database sees the mirror's objects. */
    if ((r = write_alternates(tmp, objects, err)) < 0)
        goto fail;
    if (git_repository_open_bare(&task, tmp) < 0) {
        r = gg_git_fail(err, -EIO, "gate: opening '%s'", tmp);
        goto fail;
    }
    {
        const char *kv[] = {"core.logAllRefUpdates",
                            "always",
                            "gc.auto",
                            "0",
                            "gc.pruneExpire",
                            "never",
                            "receive.autogc",
                            "false",
                            "terok.rights",
                            rights_s,
                            "terok.project",
                            repo,
                            NULL};
        if ((r = set_config(task, kv, err)) < 0)
            goto fail;
    }
    if ((r = copy_refs(mirror, "refs/heads/*", 0, "", task, false, err)) < 0 ||
        (r = copy_refs(mirror, "refs/tags/*", 0, "", task, false, err)) < 0)
        goto fail;
    git_repository_free(TAKE_PTR(task));
    if (rename(tmp, path) < 0) {
        if (errno == ENOTEMPTY || errno == EEXIST) {
            /* A concurrent grant made the view first: keep its, set the rights. */
            const char *kv[] = {"terok.rights", rights_s, NULL};
            (void)gg_rmtree(tmp);
            if ((r = gg_open_task(g, container, repo, &task, err)) < 0)
                return r;
            return set_config(task, kv, err);
        }
        r = terok_perr(err, negative_errno(), "gate: creating the view of '%s' for '%s': %s",
                       gg_quote(repo, q), container, strerror(errno));
        goto fail;
    }
    terok_plog(TEROK_LOG_INFO, "granted '%s' to '%s' (%s)", repo, container, rights_s);
    return 0;
fail:
    git_repository_free(TAKE_PTR(task));
    (void)gg_rmtree(tmp);
    return r;
}

static int gg_revoke(void *state, const char *container, const char *repo, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *task = NULL;
    const char *kv[] = {"terok.rights", "none", NULL};
    int r;

    if (!g)
        return terok_perr(err, -EINVAL, "gate: no instance");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0)
        return r;
    /* The view stays for review and forward; it is served no more. Absent is not an error. */
    if (gg_open_task(g, container, repo, &task, NULL) < 0)
        return 0;
    return set_config(task, kv, err);
}

static int gg_authorize(void *state, const char *container, const char *repo, uint32_t operation,
                        uint32_t *ret_decision, terok_error *err)
{
    gg *g = state;
    _cleanup_(git_repository_freep) git_repository *task = NULL;
    uint32_t rights;
    int r;

    if (!g || !ret_decision)
        return terok_perr(err, -EINVAL, "gate: no place for the decision");
    if ((r = gg_check_container(container, err)) < 0 || (r = gg_check_repo(repo, err)) < 0)
        return r;
    if (operation != TEROK_GATE_READ && operation != TEROK_GATE_WRITE)
        return terok_perr(err, -EINVAL, "gate: unknown operation %u", operation);
    if (gg_open_task(g, container, repo, &task, NULL) < 0) {
        *ret_decision = TEROK_DECISION_DENY;
        return 0;
    }
    rights = gg_task_rights(task);
    *ret_decision = (rights & operation) == operation ? TEROK_DECISION_ALLOW : TEROK_DECISION_DENY;
    return 0;
}

/* --- ctl ----------------------------------------------------------------------------------- */

static int lend(gg *g, terok_gate_credential *c, terok_error *err)
{
    const void *data;
    size_t len;
    terok_secret *copy = NULL;
    _cleanup_free_ uint8_t *pub = NULL;
    bool ssh;
    int r;

    if (c->struct_size < offsetof(terok_gate_credential, ssh_public_key) || !c->repo)
        return terok_perr(err, -EINVAL, "gate: bad credential request");
    if (!terok_struct_tail_is_zero(c, c->struct_size, sizeof *c))
        return terok_perr(err, -E2BIG, "gate: credential request has fields this plugin lacks");
    if ((r = gg_check_repo(c->repo, err)) < 0)
        return r;
    ssh = c->struct_size >= sizeof *c && c->ssh_sign;
    if (ssh && c->secret)
        return terok_perr(err, -EINVAL, "gate: a credential is a secret or an SSH signer");
    if (ssh) {
        _cleanup_free_ char *text = NULL;
        if (!c->ssh_public_key || c->ssh_public_key_len < 8 || c->ssh_public_key_len > 16384 ||
            !(pub = malloc(c->ssh_public_key_len)))
            return terok_perr(err, -EINVAL, "gate: an SSH signer without its public key");
        memcpy(pub, c->ssh_public_key, c->ssh_public_key_len);
        /* the blob must name its type, as the SSH protocol sends it */
        text = gg_host_key_text(pub, c->ssh_public_key_len);
        if (!text)
            return terok_perr(err, -EINVAL, "gate: a malformed SSH public key");
    } else if (c->secret) {
        if (HOST->secret_peek(c->secret, &data, &len) < 0 || HOST->secret_new(data, len, &copy) < 0)
            return terok_perr(err, -ENOMEM, "gate: cannot hold the credential");
    }
    pthread_mutex_lock(&g->cred_lock);
    if (g->cred)
        HOST->secret_free(g->cred);
    free(g->ssh_pub);
    g->cred = copy;
    g->ssh_sign = ssh ? c->ssh_sign : NULL;
    g->ssh_signer = ssh ? c->ssh_signer : NULL;
    g->ssh_pub_len = ssh ? c->ssh_public_key_len : 0;
    g->ssh_pub = ssh ? TAKE_PTR(pub) : NULL;
    snprintf(g->cred_repo, sizeof g->cred_repo, "%s", copy || ssh ? c->repo : "");
    pthread_mutex_unlock(&g->cred_lock);
    return 0;
}

static int gg_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    gg *g = state;

    switch (op) {
    case TEROK_GATE_CTL_BACKUPS_PRUNE:
        if (!g || !arg)
            return terok_perr(err, -EINVAL, "gate: prune needs an argument");
        return gg_backups_prune(g, arg, err);
    case TEROK_GATE_CTL_CREDENTIAL:
        if (!g || !arg)
            return terok_perr(err, -EINVAL, "gate: credential needs an argument");
        return lend(g, arg, err);
    default:
        return terok_perr(err, -EOPNOTSUPP, "gate: unknown ctl opcode %u", op);
    }
}

static const terok_gate_ops ops = {
    .struct_size = sizeof(terok_gate_ops),
    .caps = TEROK_GATE_CAP_UPSTREAM | TEROK_GATE_CAP_SMART_HTTP | TEROK_GATE_CAP_PROTOCOL_V2 |
            TEROK_GATE_CAP_BACKUPS,
    .open = gg_open,
    .close = gg_close,
    .repo_create = gg_repo_create,
    .repo_delete = gg_repo_delete,
    .repo_list = gg_repo_list,
    .sync = gg_sync_and_upkeep,
    .pending_list = gg_pending_list,
    .pending_apply = gg_pending_apply,
    .grant = gg_grant,
    .revoke = gg_revoke,
    .authorize = gg_authorize,
    .serve = gg_serve,
    .review = gg_review,
    .diff = gg_diff,
    .forward = gg_forward,
    .backups_list = gg_backups_list,
    .backup_restore = gg_backup_restore,
    .ctl = gg_ctl,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_GATE, "git", "0.1.0", &ops)
