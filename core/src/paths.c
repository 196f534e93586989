/* SPDX-License-Identifier: Apache-2.0 */
/* paths.c: resolving the config/state/runtime directories and creating directories safely.
 * Resolution never creates anything; mkdir_safe refuses directories someone else could write. */
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>

#include "error.h"
#include "paths.h"
#include "terok-build-config.h"

#define APP "terok-sandbox"

static bool path_is_absolute(const char *s)
{
    return s && s[0] == '/';
}

/* An absolute value of an environment variable, or NULL (XDG: relative values are ignored). */
static const char *env_abs(const char *name)
{
    const char *v = getenv(name);

    return path_is_absolute(v) ? v : NULL;
}

static int home_dir(uid_t uid, const char **ret, terok_error *err)
{
    const char *h = env_abs("HOME");
    struct passwd *pw;

    if (!h) {
        pw = getpwuid(uid);
        if (!pw || !path_is_absolute(pw->pw_dir))
            return terok_error_set(
                err, -ENOENT, "cannot find the home directory of uid %u: set $HOME", (unsigned)uid);
        h = pw->pw_dir;
    }
    *ret = h;
    return 0;
}

/* An override must be absolute: a relative one would silently depend on the cwd. */
static int env_override(const char *name, char **ret, terok_error *err)
{
    const char *v = getenv(name);

    *ret = NULL;
    if (isempty(v))
        return 0;
    if (!path_is_absolute(v))
        return terok_error_set(err, -EINVAL, "$%s='%s' is not an absolute path", name, v);
    *ret = strdup(v);
    return *ret ? 1 : -ENOMEM;
}

int paths_resolve_as(paths *p, uid_t uid, terok_error *err)
{
    const char *home = NULL, *x;
    paths t = {.root = uid == 0};
    int r;

    t.system_config_dir = strdup(TEROK_SYSCONF_DIR);
    if (!t.system_config_dir)
        goto oom;

    if (!t.root) {
        r = home_dir(uid, &home, err);
        if (r < 0)
            goto fail;
        x = env_abs("XDG_CONFIG_HOME");
        r = x ? asprintf(&t.user_config_dir, "%s/" APP, x)
              : asprintf(&t.user_config_dir, "%s/.config/" APP, home);
        if (r < 0)
            goto oom;
    }

    r = env_override("TEROK_SANDBOX_STATE_DIR", &t.state_dir, err);
    if (r < 0)
        goto fail;
    if (!t.state_dir) {
        if (t.root)
            r = asprintf(&t.state_dir, "/var/lib/" APP);
        else if ((x = env_abs("XDG_STATE_HOME")))
            r = asprintf(&t.state_dir, "%s/" APP, x);
        else
            r = asprintf(&t.state_dir, "%s/.local/state/" APP, home);
        if (r < 0)
            goto oom;
    }

    r = env_override("TEROK_SANDBOX_RUNTIME_DIR", &t.runtime_dir, err);
    if (r < 0)
        goto fail;
    if (!t.runtime_dir) {
        if (t.root)
            r = asprintf(&t.runtime_dir, "/run/" APP);
        else if ((x = env_abs("XDG_RUNTIME_DIR")))
            r = asprintf(&t.runtime_dir, "%s/" APP, x);
        else
            /* No session runtime dir (cron, su): stay in the user's own state dir rather than a
             * guessable /tmp name someone else could pre-create. */
            r = asprintf(&t.runtime_dir, "%s/run", t.state_dir);
        if (r < 0)
            goto oom;
    }

    *p = t;
    return 0;
oom:
    r = terok_error_set(err, -ENOMEM, "out of memory");
fail:
    paths_done(&t);
    return r;
}

int paths_resolve(paths *p, terok_error *err)
{
    return paths_resolve_as(p, geteuid(), err);
}

void paths_done(paths *p)
{
    if (!p)
        return;
    free(p->system_config_dir);
    free(p->user_config_dir);
    free(p->state_dir);
    free(p->runtime_dir);
    *p = (paths){0};
}

static int check_dir_fd(int fd, const char *path, terok_error *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return terok_error_set(err, negative_errno(), "cannot stat '%s': %s", path,
                               strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return terok_error_set(err, -ENOTDIR, "'%s' is not a directory", path);
    if (st.st_uid != geteuid())
        return terok_error_set(err, -EPERM,
                               "'%s' is owned by uid %u, not by us (uid %u); refusing to use it",
                               path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return terok_error_set(err, -EPERM,
                               "'%s' is writable by group or others (mode %04o); refusing to "
                               "use it — run 'chmod go-w %s'",
                               path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

int mkdir_safe(const char *path, mode_t mode, terok_error *err)
{
    _cleanup_free_ char *buf = NULL;
    _cleanup_close_ int fd = -EBADF;
    size_t n;

    if (!path_is_absolute(path))
        return terok_error_set(err, -EINVAL, "'%s' is not an absolute path", strna(path));
    buf = strdup(path);
    if (!buf)
        return terok_error_set(err, -ENOMEM, "out of memory");
    n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = 0;

    for (char *s = buf + 1;; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char c = *s;
        *s = 0;
        if (mkdir(buf, mode) == 0) {
            /* The umask may have narrowed it; set exactly what was asked. */
            if (chmod(buf, mode) < 0)
                return terok_error_set(err, negative_errno(), "cannot chmod '%s': %s", buf,
                                       strerror(errno));
        } else if (errno != EEXIST) {
            return terok_error_set(err, negative_errno(), "cannot create directory '%s': %s", buf,
                                   strerror(errno));
        }
        *s = c;
        if (!c)
            break;
    }

    fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return terok_error_set(err, -ENOTDIR,
                                   "'%s' is not a directory (or is a symlink); refusing to use it",
                                   buf);
        return terok_error_set(err, negative_errno(), "cannot open '%s': %s", buf, strerror(errno));
    }
    return check_dir_fd(fd, buf, err);
}

bool container_name_is_valid(const char *name)
{
    size_t n;

    if (isempty(name))
        return false;
    n = strlen(name);
    if (n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

char *daemon_exe_path(void)
{
    char self[PATH_MAX], *p = NULL, *slash;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    if (n > 0) {
        self[n] = 0;
        slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            if (asprintf(&p, "%s/terok-sandbox-daemon", self) < 0)
                return NULL;
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    if (access(TEROK_LIBEXEC_DIR "/terok-sandbox-daemon", X_OK) == 0)
        return strdup(TEROK_LIBEXEC_DIR "/terok-sandbox-daemon");
    return NULL;
}
