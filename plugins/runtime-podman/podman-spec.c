/* SPDX-License-Identifier: Apache-2.0 */
/* podman-spec.c: terok_run_spec -> libpod's create body (SpecGenerator JSON). Every field is
 * executed as given: nothing is added behind the core's back and nothing is weakened; a value
 * this mapping does not understand is refused, never dropped. `privileged` is never set. */
#include <ctype.h>

#include "podman.h"
#include "util/strv.h"

#define KNOWN_SPEC_FLAGS                                                                           \
    (TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |               \
     TEROK_SPEC_DEFAULT_SECCOMP | TEROK_SPEC_REMOVE_ON_EXIT | TEROK_SPEC_TTY | TEROK_SPEC_STDIN |  \
     TEROK_SPEC_SEALED)

static inline void json_putp(json_object **o)
{
    json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static int add(json_object *o, const char *key, json_object *v)
{
    if (!o || !v) {
        json_object_put(v);
        return -ENOMEM;
    }
    return json_object_object_add(o, key, v) < 0 ? -ENOMEM : 0;
}

static int add_str(json_object *o, const char *key, const char *v)
{
    return v ? add(o, key, json_object_new_string(v)) : 0;
}

static json_object *array_of(const char *const *l)
{
    json_object *a = json_object_new_array();

    for (const char *const *s = l; a && s && *s; s++)
        if (json_object_array_add(a, json_object_new_string(*s)) < 0) {
            json_object_put(a);
            return NULL;
        }
    return a;
}

/* "K=V" entries into a JSON object under `key`; `what` names the list in errors. */
static int add_kv_map(json_object *o, const char *key, const char *const *l, const char *what,
                      terok_error *err)
{
    _cleanup_json_ json_object *m = NULL;

    if (!l || !*l)
        return 0;
    if (!(m = json_object_new_object()))
        return terok_perr(err, -ENOMEM, "out of memory");
    for (const char *const *s = l; *s; s++) {
        const char *eq = strchr(*s, '=');
        _cleanup_free_ char *k = NULL;

        if (!eq || eq == *s)
            return terok_perr(err, -EINVAL, "%s entry '%s' is not KEY=VALUE", what, *s);
        if (!(k = strndup(*s, eq - *s)) || add_str(m, k, eq + 1) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    return add(o, key, TAKE_PTR(m)) < 0 ? terok_perr(err, -ENOMEM, "out of memory") : 0;
}

/* Split "a,b,c" onto array a (empty items skipped). */
static int split_onto(json_object *a, const char *csv)
{
    const char *s = csv;

    while (s && *s) {
        size_t n = strcspn(s, ",");
        if (n && json_object_array_add(a, json_object_new_string_len(s, (int)n)) < 0)
            return -ENOMEM;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int caps(json_object *o, const terok_run_spec *s, terok_error *err)
{
    _cleanup_json_ json_object *add_a = json_object_new_array();

    if (!add_a)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (s->flags & TEROK_SPEC_CAP_DROP_ALL) {
        static const char *const all[] = {"ALL", NULL};
        if (add(o, "cap_drop", array_of(all)) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    for (const char *const *c = s->cap_add; c && *c; c++) {
        char name[64] = "CAP_";
        size_t n = strlen(*c);

        if (n == 0 || n > sizeof name - 5 ||
            strspn(*c, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
            return terok_perr(err, -EINVAL, "capability '%s' is not a lower-case name", *c);
        for (size_t i = 0; i < n; i++)
            name[4 + i] = (char)toupper((unsigned char)(*c)[i]);
        name[4 + n] = 0;
        if (json_object_array_add(add_a, json_object_new_string(name)) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    if (json_object_array_length(add_a) && add(o, "cap_add", TAKE_PTR(add_a)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    return 0;
}

static int one_mount(json_object *mounts, json_object *volumes, const terok_mount *m,
                     terok_error *err)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    _cleanup_json_ json_object *opts = json_object_new_array();
    bool ro = m->flags & TEROK_MOUNT_RO;
    int r = 0;

    if (!o || !opts)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (isempty(m->target) || m->target[0] != '/')
        return terok_perr(err, -EINVAL, "mount target '%s' is not an absolute path",
                          strna(m->target));
    if (m->flags & ~(TEROK_MOUNT_RO | TEROK_MOUNT_SHARED_LABEL | TEROK_MOUNT_PRIVATE_LABEL))
        return terok_perr(err, -EOPNOTSUPP, "mount '%s': unknown flags 0x%x", m->target, m->flags);
    if ((m->flags & TEROK_MOUNT_SHARED_LABEL) && (m->flags & TEROK_MOUNT_PRIVATE_LABEL))
        return terok_perr(err, -EINVAL, "mount '%s': both shared (z) and private (Z) labels",
                          m->target);
    if (m->flags & TEROK_MOUNT_SHARED_LABEL)
        r |= json_object_array_add(opts, json_object_new_string("z"));
    if (m->flags & TEROK_MOUNT_PRIVATE_LABEL)
        r |= json_object_array_add(opts, json_object_new_string("Z"));

    switch (m->type) {
    case TEROK_MOUNT_BIND:
        if (isempty(m->source) || m->source[0] != '/')
            return terok_perr(err, -EINVAL, "bind mount '%s': source '%s' is not an absolute path",
                              m->target, strna(m->source));
        r |= json_object_array_add(opts, json_object_new_string("rbind"));
        r |= json_object_array_add(opts, json_object_new_string(ro ? "ro" : "rw"));
        r |= split_onto(opts, m->options);
        r |= add_str(o, "type", "bind") | add_str(o, "source", m->source);
        r |= add_str(o, "destination", m->target);
        r |= add(o, "options", TAKE_PTR(opts));
        return r || json_object_array_add(mounts, TAKE_PTR(o)) < 0
                   ? terok_perr(err, -ENOMEM, "out of memory")
                   : 0;
    case TEROK_MOUNT_TMPFS:
        if (ro)
            r |= json_object_array_add(opts, json_object_new_string("ro"));
        r |= split_onto(opts, m->options);
        r |= add_str(o, "type", "tmpfs") | add_str(o, "source", "tmpfs");
        r |= add_str(o, "destination", m->target);
        r |= add(o, "options", TAKE_PTR(opts));
        return r || json_object_array_add(mounts, TAKE_PTR(o)) < 0
                   ? terok_perr(err, -ENOMEM, "out of memory")
                   : 0;
    case TEROK_MOUNT_VOLUME:
        if (m->source && (!*m->source || !ref_is_valid(m->source)))
            return terok_perr(err, -EINVAL, "volume name '%s' is not valid", m->source);
        r |= json_object_array_add(opts, json_object_new_string(ro ? "ro" : "rw"));
        r |= split_onto(opts, m->options);
        r |= add_str(o, "Name", m->source ? m->source : ""); /* "" = anonymous */
        r |= add_str(o, "Dest", m->target);
        r |= add(o, "Options", TAKE_PTR(opts));
        return r || json_object_array_add(volumes, TAKE_PTR(o)) < 0
                   ? terok_perr(err, -ENOMEM, "out of memory")
                   : 0;
    default:
        return terok_perr(err, -EOPNOTSUPP, "mount '%s': unknown mount type %u", m->target,
                          m->type);
    }
}

static int mounts(json_object *o, const terok_run_spec *s, terok_error *err)
{
    _cleanup_json_ json_object *ms = json_object_new_array();
    _cleanup_json_ json_object *vs = json_object_new_array();

    if (!ms || !vs)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (s->n_mounts && !s->mounts)
        return terok_perr(err, -EINVAL, "n_mounts is %zu but mounts is NULL", s->n_mounts);
    for (size_t i = 0; i < s->n_mounts; i++) {
        int r = one_mount(ms, vs, &s->mounts[i], err);
        if (r < 0)
            return r;
    }
    if (json_object_array_length(ms) && add(o, "mounts", TAKE_PTR(ms)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (json_object_array_length(vs) && add(o, "volumes", TAKE_PTR(vs)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    return 0;
}

/* "mode[:opts]" -> {"nsmode": mode, "value": opts}. */
static json_object *ns(const char *mode, size_t n, const char *value)
{
    json_object *o = json_object_new_object();

    if (!o || add(o, "nsmode", json_object_new_string_len(mode, (int)n)) < 0 ||
        (value && add_str(o, "value", value) < 0)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int network(json_object *o, const char *net, terok_error *err)
{
    const char *colon = strchr(net, ':');
    size_t n = colon ? (size_t)(colon - net) : strlen(net);
    const char *opts = colon ? colon + 1 : NULL;
    int r = 0;

    if (strneq(net, "none", n) && n == 4 && !opts)
        r = add(o, "netns", ns("none", 4, NULL));
    else if (n == 6 && strneq(net, "bridge", 6) && !opts)
        r = add(o, "netns", ns("bridge", 6, NULL));
    else if ((n == 11 && strneq(net, "slirp4netns", 11)) || (n == 5 && strneq(net, "pasta", 5))) {
        r = add(o, "netns", ns(net, n, NULL));
        if (!r && !isempty(opts)) {
            json_object *nopts = json_object_new_object(), *a = json_object_new_array();
            r = !nopts || !a || split_onto(a, opts) < 0 ? -ENOMEM : 0;
            if (!r) {
                _cleanup_free_ char *mode = strndup(net, n);
                r = mode ? add(nopts, mode, a) : -ENOMEM;
                a = NULL;
            }
            json_object_put(a);
            if (!r)
                r = add(o, "network_options", nopts);
            else
                json_object_put(nopts);
        }
    } else if (n == 2 && strneq(net, "ns", 2) && opts) {
        if (opts[0] != '/')
            return terok_perr(err, -EINVAL, "network 'ns:%s': not an absolute path", opts);
        r = add(o, "netns", ns("path", 4, opts));
    } else
        return terok_perr(err, -EOPNOTSUPP,
                          "network '%s' is not one of none, slirp4netns[:opts], pasta[:opts], "
                          "bridge, ns:PATH",
                          net);
    return r < 0 ? terok_perr(err, -ENOMEM, "out of memory") : 0;
}

/* "auto[:size=N]": libpod's API (unlike the CLI) needs idmappings.AutoUserNs besides the mode. */
static int userns_auto(json_object *o, const char *opts, terok_error *err)
{
    json_object *idm = json_object_new_object(), *aopts = json_object_new_object();
    int r = add(idm, "AutoUserNs", json_object_new_boolean(1));

    for (const char *s = opts; !r && s && *s;) {
        size_t n = strcspn(s, ",");
        char *end = NULL;
        long long size;

        if (n < 6 || !strneq(s, "size=", 5)) {
            json_object_put(idm);
            json_object_put(aopts);
            return terok_perr(err, -EOPNOTSUPP, "userns 'auto:%s': only size=N is supported", opts);
        }
        size = strtoll(s + 5, &end, 10);
        if (end != s + n || size <= 0 || size > UINT32_MAX) {
            json_object_put(idm);
            json_object_put(aopts);
            return terok_perr(err, -EINVAL, "userns 'auto:%s': bad size", opts);
        }
        r = add(aopts, "Size", json_object_new_int64(size));
        s += n + (s[n] == ',');
    }
    if (!r)
        r = add(idm, "AutoUserNsOpts", aopts);
    else
        json_object_put(aopts);
    if (!r)
        r = add(o, "idmappings", idm);
    else
        json_object_put(idm);
    if (!r)
        r = add(o, "userns", ns("auto", 4, NULL));
    return r < 0 ? terok_perr(err, -ENOMEM, "out of memory") : 0;
}

static int userns(json_object *o, const char *u, terok_error *err)
{
    const char *colon = strchr(u, ':');
    size_t n = colon ? (size_t)(colon - u) : strlen(u);
    const char *opts = colon ? colon + 1 : NULL;

    if (n == 4 && strneq(u, "auto", 4))
        return userns_auto(o, opts, err);
    if ((n == 7 && strneq(u, "keep-id", 7)) || (n == 4 && strneq(u, "host", 4) && !opts))
        return add(o, "userns", ns(u, n, isempty(opts) ? NULL : opts)) < 0
                   ? terok_perr(err, -ENOMEM, "out of memory")
                   : 0;
    return terok_perr(err, -EOPNOTSUPP, "user namespace '%s' is not one of auto, keep-id, host", u);
}

static int limits(json_object *o, const terok_run_spec *s, terok_error *err)
{
    _cleanup_json_ json_object *rl = json_object_new_object();
    int r = 0;

    if (!rl)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (s->pids_limit < 0 || s->memory_bytes < 0 || s->cpu_millis < 0 || s->stop_timeout_s < 0)
        return terok_perr(err, -EINVAL, "negative resource limit or stop timeout");
    if (s->cpu_millis > INT64_MAX / 100)
        return terok_perr(err, -ERANGE, "cpu limit %lld millis is out of range",
                          (long long)s->cpu_millis);
    if (s->pids_limit) {
        json_object *p = json_object_new_object();
        r |= add(p, "limit", json_object_new_int64(s->pids_limit)) | add(rl, "pids", p);
    }
    if (s->memory_bytes) {
        json_object *m = json_object_new_object();
        r |= add(m, "limit", json_object_new_int64(s->memory_bytes)) | add(rl, "memory", m);
    }
    if (s->cpu_millis) {
        /* 1000 millis = one CPU = quota 100000 per period 100000 */
        json_object *c = json_object_new_object();
        r |= add(c, "quota", json_object_new_int64(s->cpu_millis * 100));
        r |= add(c, "period", json_object_new_int64(100000)) | add(rl, "cpu", c);
    }
    if (r)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (json_object_object_length(rl) && add(o, "resource_limits", TAKE_PTR(rl)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    return 0;
}

int spec_to_json(const terok_run_spec *s, char **ret_json, terok_error *err)
{
    _cleanup_json_ json_object *o = NULL;
    const char *text;
    uint32_t f;
    int r;

    if ((r = check_struct(s, s ? s->struct_size : 0, sizeof *s, "run spec", err)) < 0)
        return r;
    f = s->flags;
    if (f & ~KNOWN_SPEC_FLAGS)
        return terok_perr(err, -EOPNOTSUPP, "unknown run spec flags 0x%x", f & ~KNOWN_SPEC_FLAGS);
    if (!ref_is_valid(s->name))
        return terok_perr(err, -EINVAL, "container name '%s' is not valid", strna(s->name));
    if (!image_ref_is_valid(s->image))
        return terok_perr(err, -EINVAL, "image reference '%s' is not valid", strna(s->image));
    for (const char *const *k = s->hooks_annotations; k && *k; k++)
        if (!strv_env_get(s->annotations, *k))
            return terok_perr(err, -EINVAL,
                              "hook annotation '%s' is not among the annotations: the hook would "
                              "not run",
                              *k);

    if (!(o = json_object_new_object()))
        return terok_perr(err, -ENOMEM, "out of memory");
    r = add_str(o, "name", s->name) | add_str(o, "image", s->image);
    if (s->argv && s->argv[0])
        r |= add(o, "entrypoint", array_of(s->argv));
    r |= add_str(o, "hostname", s->hostname) | add_str(o, "work_dir", s->workdir) |
         add_str(o, "user", s->user) | add_str(o, "oci_runtime", s->oci_runtime);
    r |= add(o, "no_new_privileges", json_object_new_boolean(f & TEROK_SPEC_NO_NEW_PRIVS));
    r |= add(o, "read_only_filesystem", json_object_new_boolean(f & TEROK_SPEC_READ_ONLY_ROOT));
    if (s->seccomp_profile)
        r |= add_str(o, "seccomp_profile_path", s->seccomp_profile);
    else if (!(f & TEROK_SPEC_DEFAULT_SECCOMP))
        r |= add_str(o, "seccomp_profile_path", "unconfined"); /* the operator relaxed it */
    if (f & TEROK_SPEC_REMOVE_ON_EXIT)
        r |= add(o, "remove", json_object_new_boolean(1));
    if (f & TEROK_SPEC_TTY)
        r |= add(o, "terminal", json_object_new_boolean(1));
    if (f & TEROK_SPEC_STDIN)
        r |= add(o, "stdin", json_object_new_boolean(1));
    if (s->stop_timeout_s > 0)
        r |= add(o, "stop_timeout", json_object_new_int64(s->stop_timeout_s));
    if (s->devices && s->devices[0]) {
        json_object *d = json_object_new_array();
        for (const char *const *p = s->devices; d && *p; p++) {
            json_object *dev = json_object_new_object();
            r |= add_str(dev, "path", *p) | json_object_array_add(d, dev);
        }
        r |= add(o, "devices", d);
    }
    if (r)
        return terok_perr(err, -ENOMEM, "out of memory");

    if ((r = add_kv_map(o, "env", s->env, "environment", err)) < 0 ||
        (r = add_kv_map(o, "labels", s->labels, "label", err)) < 0 ||
        (r = add_kv_map(o, "annotations", s->annotations, "annotation", err)) < 0 ||
        (r = add_kv_map(o, "sysctl", s->sysctls, "sysctl", err)) < 0 || (r = caps(o, s, err)) < 0 ||
        (r = mounts(o, s, err)) < 0 || (r = limits(o, s, err)) < 0)
        return r;
    if (!isempty(s->network) && (r = network(o, s->network, err)) < 0)
        return r;
    if (!isempty(s->userns) && (r = userns(o, s->userns, err)) < 0)
        return r;

    text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text || !(*ret_json = strdup(text)))
        return terok_perr(err, -ENOMEM, "out of memory");
    return 0;
}
