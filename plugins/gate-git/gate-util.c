/* SPDX-License-Identifier: Apache-2.0 */
/* gate-util.c: name checks, the on-disk layout, backups refs, push events and libgit2 helpers
 * shared by the gate-git plugin's ops. */
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "gate-state.h"

const char *gg_quote(const char *s, char out[200])
{
    const unsigned char *p = (const unsigned char *)(s ? s : "(null)");
    size_t o = 0;

    for (; *p && o < 180; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, 200 - o, "\\x%02x", *p);
    }
    if (*p)
        o += (size_t)snprintf(out + o, 200 - o, "...");
    out[o] = '\0';
    return out;
}

int gg_check_repo(const char *repo, terok_error *err)
{
    char q[200];
    size_t n;

    if (!repo || !*repo)
        return terok_perr(err, -EINVAL, "gate: a project name is required");
    n = strnlen(repo, GG_REPO_MAX + 1);
    if (n > GG_REPO_MAX)
        return terok_perr(err, -EINVAL, "gate: project name '%s' is longer than %d characters",
                          gg_quote(repo, q), GG_REPO_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = repo[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return terok_perr(err, -EINVAL,
                              "gate: invalid project name '%s': use [a-z0-9][a-z0-9._-]*",
                              gg_quote(repo, q));
    }
    if (strstr(repo, "..") || (n >= 4 && streq(repo + n - 4, ".git")) ||
        (n >= 5 && streq(repo + n - 5, ".lock")))
        return terok_perr(err, -EINVAL,
                          "gate: invalid project name '%s': no '..', no '.git' or '.lock' suffix",
                          gg_quote(repo, q));
    return 0;
}

int gg_check_container(const char *name, terok_error *err)
{
    char q[200];
    size_t n;

    if (!name || !*name)
        return terok_perr(err, -EINVAL, "gate: a task (container) name is required");
    n = strnlen(name, GG_CONTAINER_MAX + 1);
    if (n > GG_CONTAINER_MAX)
        return terok_perr(err, -EINVAL, "gate: task name '%s' is longer than %d characters",
                          gg_quote(name, q), GG_CONTAINER_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return terok_perr(err, -EINVAL,
                              "gate: invalid task name '%s': use [A-Za-z0-9][A-Za-z0-9._-]*",
                              gg_quote(name, q));
    }
    if (strstr(name, ".."))
        return terok_perr(err, -EINVAL, "gate: invalid task name '%s'", gg_quote(name, q));
    return 0;
}

int gg_check_branch(const char *branch, const char *what, terok_error *err)
{
    _cleanup_free_ char *full = NULL;
    char q[200];
    int valid = 0;

    if (!branch || !*branch)
        return terok_perr(err, -EINVAL, "gate: %s is required", what);
    if (strnlen(branch, GG_BRANCH_MAX + 1) > GG_BRANCH_MAX)
        return terok_perr(err, -EINVAL, "gate: %s '%s' is longer than %d characters", what,
                          gg_quote(branch, q), GG_BRANCH_MAX);
    if (asprintf(&full, "refs/heads/%s", branch) < 0)
        return -ENOMEM;
    if (branch[0] == '-' || git_reference_name_is_valid(&valid, full) < 0 || !valid)
        return terok_perr(err, -EINVAL, "gate: invalid %s '%s'", what, gg_quote(branch, q));
    return 0;
}

char *gg_mirror_path(gg *g, const char *repo)
{
    char *p = NULL;

    return asprintf(&p, "%s/projects/%s.git", g->root, repo) < 0 ? NULL : p;
}

char *gg_task_dir(gg *g, const char *container)
{
    char *p = NULL;

    return asprintf(&p, "%s/tasks/%s", g->root, container) < 0 ? NULL : p;
}

char *gg_task_path(gg *g, const char *container, const char *repo)
{
    char *p = NULL;

    return asprintf(&p, "%s/tasks/%s/%s.git", g->root, container, repo) < 0 ? NULL : p;
}

const char *gg_git_error(void)
{
    const git_error *e = git_error_last();

    return e && e->message ? e->message : "unknown libgit2 error";
}

int gg_git_fail(terok_error *err, int code, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return terok_perr(err, code, "%s: %s", what, gg_git_error());
}

static int open_bare(const char *path, const char *what, const char *name, git_repository **ret,
                     terok_error *err)
{
    struct stat st;
    char q[200];

    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return terok_perr(err, -ENOENT, "gate: no %s '%s'", what, gg_quote(name, q));
    if (git_repository_open_bare(ret, path) < 0)
        return gg_git_fail(err, -EIO, "gate: opening %s '%s'", what, gg_quote(name, q));
    return 0;
}

int gg_open_mirror(gg *g, const char *repo, git_repository **ret, terok_error *err)
{
    _cleanup_free_ char *path = gg_mirror_path(g, repo);

    if (!path)
        return -ENOMEM;
    return open_bare(path, "project", repo, ret, err);
}

int gg_open_task(gg *g, const char *container, const char *repo, git_repository **ret,
                 terok_error *err)
{
    _cleanup_free_ char *path = gg_task_path(g, container, repo);
    char q[200], q2[200];

    if (!path)
        return -ENOMEM;
    if (open_bare(path, "task repository", container, ret, err) < 0)
        return terok_perr(err, -ENOENT, "gate: task '%s' has no view of project '%s'",
                          gg_quote(container, q), gg_quote(repo, q2));
    return 0;
}

uint32_t gg_task_rights(git_repository *task)
{
    _cleanup_(git_config_freep) git_config *cfg = NULL;
    git_buf b = GIT_BUF_INIT;
    uint32_t r = 0;

    if (git_repository_config_snapshot(&cfg, task) < 0)
        return 0;
    if (git_config_get_string_buf(&b, cfg, "terok.rights") < 0)
        return 0;
    if (streq(b.ptr, "write"))
        r = TEROK_GATE_READ | TEROK_GATE_WRITE;
    else if (streq(b.ptr, "read"))
        r = TEROK_GATE_READ;
    git_buf_dispose(&b);
    return r;
}

const char *gg_oid_str(const git_oid *oid, char buf[GIT_OID_HEXSZ + 1])
{
    return git_oid_tostr(buf, GIT_OID_HEXSZ + 1, oid);
}

int64_t gg_now(void)
{
    return (int64_t)time(NULL);
}

int gg_backup_ref(git_repository *repo, const char *refname, const git_oid *oid, char **ret_name,
                  terok_error *err)
{
    _cleanup_free_ char *name = NULL;
    _cleanup_(git_reference_freep) git_reference *ref = NULL;
    char stamp[32], hex[GIT_OID_HEXSZ + 1];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    gg_oid_str(oid, hex);
    hex[12] = '\0';
    if (!strneq(refname, "refs/", 5))
        return terok_perr(err, -EINVAL, "gate: cannot back up '%s'", refname);
    if (asprintf(&name, GG_BACKUP_NS "%s/%s-%s", refname + 5, stamp, hex) < 0)
        return -ENOMEM;
    rc = git_reference_create(&ref, repo, name, oid, 0, "terok: backup");
    if (rc < 0 && rc != GIT_EEXISTS)
        return gg_git_fail(err, -EIO, "gate: writing backup ref '%s'", name);
    if (ret_name)
        *ret_name = TAKE_PTR(name);
    return 0;
}

int gg_event_append(gg *g, json_object *event)
{
    _cleanup_free_ char *path = NULL, *line = NULL;
    _cleanup_close_ int fd = -EBADF;
    const char *text = json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN);
    size_t n;

    if (!text || asprintf(&path, "%s/events.jsonl", g->root) < 0 ||
        asprintf(&line, "%s\n", text) < 0)
        return -ENOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return negative_errno();
    n = strlen(line);
    return write(fd, line, n) == (ssize_t)n ? 0 : -EIO;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int gg_rmtree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : negative_errno();
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? negative_errno() : 0;
    return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0 ? negative_errno() : 0;
}

int gg_mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = strdup(path);

    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return negative_errno();
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return negative_errno();
    return 0;
}

int gg_emit(terok_gate_json_cb cb, void *ud, json_object *o)
{
    int r = 0;

    if (!o)
        return -ENOMEM;
    if (cb)
        r = cb(ud, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return r;
}

char *gg_repo_meta(git_repository *repo, const char *key)
{
    _cleanup_(git_config_freep) git_config *cfg = NULL;
    _cleanup_free_ char *name = NULL;
    git_buf b = GIT_BUF_INIT;
    char *v;

    if (asprintf(&name, "terok.%s", key) < 0 || git_repository_config_snapshot(&cfg, repo) < 0)
        return NULL;
    if (git_config_get_string_buf(&b, cfg, name) < 0)
        return NULL;
    v = strdup(b.ptr);
    git_buf_dispose(&b);
    return v;
}

#define SCHEME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-"

int gg_check_url(const char *url, terok_error *err)
{
    static const char *const schemes[] = {"https://", "http://", "ssh://", "git://", "file://"};
    const char *rest = NULL, *sep, *at, *slash;
    char q[200];

    if (!url || !*url)
        return terok_perr(err, -EINVAL, "gate: an upstream URL is required");
    for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
        if (strneq(url, schemes[i], strlen(schemes[i])))
            rest = url + strlen(schemes[i]);
    /* A password first, whatever the scheme: the messages below quote the URL. */
    sep = strstr(url, "://");
    if (sep && sep > url && strspn(url, SCHEME_CHARS) == (size_t)(sep - url)) {
        slash = strchr(sep + 3, '/');
        at = strchr(sep + 3, '@');
        if (at && (!slash || at < slash) && memchr(sep + 3, ':', (size_t)(at - (sep + 3))))
            return terok_perr(err, -EINVAL,
                              "gate: upstream URL carries a password; store it in the vault and "
                              "name it with --credential instead");
    }
    if (strlen(url) > 2048)
        return terok_perr(err, -EINVAL, "gate: upstream URL '%s' is too long", gg_quote(url, q));
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p < 0x21 || *p == 0x7f)
            return terok_perr(err, -EINVAL,
                              "gate: upstream URL '%s' holds spaces or control characters",
                              gg_quote(url, q));
    if (!rest && url[0] == '/')
        return 0;
    if (!rest && gg_url_is_scp(url)) {
        char host[256];
        int port;
        /* [user@]host:path; no password can hide in it, and no option either: the endpoint
         * check below looks at the host, not at a user part */
        if (url[0] == '-')
            return terok_perr(err, -EINVAL, "gate: upstream URL '%s' starts with '-'",
                              gg_quote(url, q));
        if (gg_ssh_endpoint(url, host, sizeof host, &port, NULL, 0) < 0)
            return terok_perr(err, -EINVAL, "gate: upstream URL '%s' is not [user@]host:path",
                              gg_quote(url, q));
        return 0;
    }
    if (!rest)
        return terok_perr(err, -EINVAL,
                          "gate: upstream URL '%s' is not https://, http://, ssh://, git://, "
                          "file://, [user@]host:path or an absolute path",
                          gg_quote(url, q));
    if (rest[0] == '-')
        return terok_perr(err, -EINVAL, "gate: upstream URL '%s' has a host starting with '-'",
                          gg_quote(url, q));
    if (strneq(url, "ssh://", 6)) {
        char host[256];
        int port;
        /* the host and port the host key is checked for must be the ones libgit2 dials */
        if (gg_ssh_endpoint(url, host, sizeof host, &port, NULL, 0) < 0)
            return terok_perr(err, -EINVAL, "gate: upstream URL '%s' has no valid host or port",
                              gg_quote(url, q));
    }
    return 0;
}

int gg_remote_new(git_remote **ret, git_repository *repo, const char *url)
{
    git_remote_create_options o;

    /* Anonymous, and without url.*.insteadOf rewriting: the URL the operator gave is the URL
     * used. (It also keeps libgit2 1.5 away from its leaking regex path for config matching.) */
    git_remote_create_options_init(&o, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    o.repository = repo;
    o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    return git_remote_create_with_opts(ret, url, &o);
}
