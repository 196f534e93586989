/* SPDX-License-Identifier: Apache-2.0 */
/* shield.c: the core's calls into the configured shield backend. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "paths.h"
#include "shield.h"

#define NEED_OP(s, op, what)                                                                       \
    do {                                                                                           \
        if (!(s)->plugin->ops.shield.op)                                                           \
            return terok_error_set(err, -EOPNOTSUPP, "shield backend '%s' cannot %s",              \
                                   (s)->plugin->name, what);                                       \
    } while (0)

int shield_open(registry *r, uint64_t required_caps, shield *ret, terok_error *err)
{
    plugin *p;
    void *st;
    int rc = registry_get(r, TEROK_PLUGIN_KIND_SHIELD, required_caps, &p, &st, err);

    if (rc < 0)
        return rc;
    ret->plugin = p;
    ret->state = st;
    return 0;
}

bool shield_has_cap(const shield *s, uint64_t cap)
{
    return (s->plugin->ops.shield.caps & cap) == cap;
}

int shield_prepare(shield *s, const terok_shield_policy *policy, terok_shield_prepared *out,
                   terok_error *err)
{
    int r;

    NEED_OP(s, prepare, "prepare a policy");
    *out = (terok_shield_prepared){.struct_size = sizeof *out};
    r = s->plugin->ops.shield.prepare(s->state, policy, out, err);
    if (r < 0) {
        shield_prepared_done(out);
        return terok_error_prefix(err, "preparing the shield of '%s'", policy->container);
    }
    if (!out->annotations || !out->annotations[0]) {
        shield_prepared_done(out);
        return terok_error_set(err, -EPROTO,
                               "shield backend '%s' returned no annotations for '%s': its hook "
                               "would never run",
                               s->plugin->name, policy->container);
    }
    return 0;
}

static void host_strv_free(char **l)
{
    const terok_host *h = host_table();

    for (char **p = l; p && *p; p++)
        h->free(*p);
    h->free(l);
}

void shield_prepared_done(terok_shield_prepared *p)
{
    if (!p)
        return;
    host_table()->free(p->bundle_path);
    host_strv_free(p->annotations);
    host_strv_free(p->env);
    p->bundle_path = NULL;
    p->annotations = p->env = NULL;
}

int shield_apply(shield *s, const char *bundle_path, int64_t pid, terok_error *err)
{
    NEED_OP(s, apply, "apply a policy");
    return s->plugin->ops.shield.apply(s->state, bundle_path, pid, err);
}

int shield_cleanup(shield *s, const char *container, terok_error *err)
{
    int r;

    NEED_OP(s, cleanup, "clean up");
    r = s->plugin->ops.shield.cleanup(s->state, container, err);
    return r < 0 ? terok_error_prefix(err, "shield cleanup of '%s'", container) : r;
}

int shield_posture_set(shield *s, const char *container, uint32_t posture, terok_error *err)
{
    NEED_OP(s, posture_set, "change the posture");
    return s->plugin->ops.shield.posture_set(s->state, container, posture, err);
}

int shield_posture_get(shield *s, const char *container, uint32_t *ret, terok_error *err)
{
    NEED_OP(s, posture_get, "report the posture");
    return s->plugin->ops.shield.posture_get(s->state, container, ret, err);
}

int shield_allow(shield *s, const char *container, const char *target, int64_t duration_ms,
                 terok_error *err)
{
    NEED_OP(s, allow, "allow targets");
    if (duration_ms > 0 && !shield_has_cap(s, TEROK_SHIELD_CAP_TIMED))
        return terok_error_set(err, -EOPNOTSUPP, "shield backend '%s' cannot allow for a duration",
                               s->plugin->name);
    return s->plugin->ops.shield.allow(s->state, container, target, duration_ms, err);
}

int shield_deny(shield *s, const char *container, const char *target, terok_error *err)
{
    NEED_OP(s, deny, "deny targets");
    return s->plugin->ops.shield.deny(s->state, container, target, err);
}

int shield_rules(shield *s, const char *container, terok_shield_text_cb cb, void *userdata,
                 terok_error *err)
{
    NEED_OP(s, rules, "show its rules");
    return s->plugin->ops.shield.rules(s->state, container, cb, userdata, err);
}

int shield_ctl(shield *s, uint32_t op, void *arg, terok_error *err)
{
    NEED_OP(s, ctl, "do that");
    return s->plugin->ops.shield.ctl(s->state, op, arg, err);
}

int shield_status(shield *s, const char *container, terok_shield_text_cb cb, void *userdata,
                  terok_error *err)
{
    terok_shield_ctl_text a = {
        .struct_size = sizeof a, .container = container, .cb = cb, .userdata = userdata};

    NEED_OP(s, ctl, "report its status");
    return s->plugin->ops.shield.ctl(s->state, TEROK_SHIELD_CTL_STATUS, &a, err);
}

const char *shield_posture_name(uint32_t posture)
{
    switch (posture) {
    case TEROK_SHIELD_UP:
        return "up";
    case TEROK_SHIELD_DOWN:
        return "down";
    case TEROK_SHIELD_QUARANTINE:
        return "quarantine";
    case TEROK_SHIELD_OFFLINE:
        return "offline";
    case TEROK_SHIELD_ERROR:
        return "error";
    }
    return "unknown";
}

/* Remove every file of parent/sub (no recursion: a bundle holds files only), then sub itself. */
static int rm_flat_dir(int parent, const char *sub)
{
    int fd = openat(parent, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    int r = 0;

    if (fd < 0)
        return errno == ENOENT ? 0 : negative_errno();
    d = fdopendir(fd);
    if (!d) {
        r = negative_errno();
        close(fd);
        return r;
    }
    while ((de = readdir(d)))
        if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
            unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
            r = negative_errno();
    closedir(d);
    if (r == 0 && unlinkat(parent, sub, AT_REMOVEDIR) < 0 && errno != ENOENT)
        r = negative_errno();
    return r;
}

bool shield_has_bundle(shield *s, const char *container)
{
    _cleanup_free_ char *dir = NULL;
    struct stat st;

    if (!container_name_is_valid(container) || !s->plugin->state_dir ||
        asprintf(&dir, "%s/containers/%s/shield", s->plugin->state_dir, container) < 0)
        return false;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int shield_forget(shield *s, const char *container, terok_error *err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int fd = -EBADF;
    int r;

    if (isempty(container) || strchr(container, '/') || streq(container, ".") ||
        streq(container, ".."))
        return terok_error_set(err, -EINVAL, "container name '%s' is invalid", strna(container));
    if (!s->plugin->state_dir)
        return 0;
    if (asprintf(&dir, "%s/containers/%s", s->plugin->state_dir, container) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0
                               : terok_error_set(err, negative_errno(), "cannot open '%s': %s", dir,
                                                 strerror(errno));
    r = rm_flat_dir(fd, "shield");
    if (r < 0)
        return terok_error_set(err, r, "cannot remove the shield bundle in '%s': %s", dir,
                               strerror(-r));
    /* the hook's log (core/cli/cmd-hook.c) goes with the bundle */
    if (unlinkat(fd, "shield-hook.log", 0) < 0 && errno != ENOENT)
        return terok_error_set(err, negative_errno(), "cannot remove '%s/shield-hook.log': %s", dir,
                               strerror(errno));
    close(TAKE_FD(fd));
    if (rmdir(dir) < 0 && errno != ENOENT && errno != ENOTEMPTY)
        return terok_error_set(err, negative_errno(), "cannot remove '%s': %s", dir,
                               strerror(errno));
    return 0;
}
