/* SPDX-License-Identifier: Apache-2.0 */
/* spec-validate.c: checking a run request before anything is created. Every rejection names the
 * offending value in single quotes (clipped and with control characters escaped, so a hostile
 * value cannot garble the operator's terminal). Pure: the only I/O is stat() of volume sources. */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "error.h"
#include "spec.h"
#include "util/strv.h"

#define CLIP_MAX 96

/* A printable rendering of an operator-supplied value for a message. */
static const char *clip(const char *s, char buf[static CLIP_MAX * 4 + 8])
{
    size_t o = 0, i = 0;

    for (; s && s[i] && i < CLIP_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (s && s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}
#define Q(s) clip((s), (char[CLIP_MAX * 4 + 8]){0})

static bool has_ctl_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int check_env(char *const *env, terok_error *err)
{
    size_t n = strv_length(env), bytes = 0;

    if (n > SPEC_MAX_ENV)
        return terok_error_set(err, -E2BIG, "too many environment variables: %zu (at most %d)", n,
                               SPEC_MAX_ENV);
    STRV_FOREACH(e, env)
    {
        const char *eq = strchr(*e, '=');

        bytes += strlen(*e) + 1;
        if (!eq)
            return terok_error_set(err, -EINVAL,
                                   "invalid environment entry '%s': expected KEY=VALUE", Q(*e));
        bool ok = eq > *e && !(**e >= '0' && **e <= '9');
        for (const char *p = *e; ok && p < eq; p++)
            ok = is_alnum(*p) || *p == '_';
        if (!ok) {
            _cleanup_free_ char *key = strndup(*e, (size_t)(eq - *e));
            return terok_error_set(err, -EINVAL,
                                   "invalid environment variable name '%s': use "
                                   "[A-Za-z_][A-Za-z0-9_]*",
                                   Q(key));
        }
    }
    if (bytes > SPEC_MAX_ENV_BYTES)
        return terok_error_set(err, -E2BIG, "environment too large: %zu bytes (at most %d)", bytes,
                               SPEC_MAX_ENV_BYTES);
    return 0;
}

static int check_argv(const char *what, char *const *argv, terok_error *err)
{
    size_t n = strv_length(argv), bytes = 0;

    if (n > SPEC_MAX_ARGV)
        return terok_error_set(err, -E2BIG, "%s has too many arguments: %zu (at most %d)", what, n,
                               SPEC_MAX_ARGV);
    STRV_FOREACH(a, argv)
    bytes += strlen(*a) + 1;
    if (bytes > SPEC_MAX_ARGV_BYTES)
        return terok_error_set(err, -E2BIG, "%s too large: %zu bytes (at most %d)", what, bytes,
                               SPEC_MAX_ARGV_BYTES);
    return 0;
}

static bool key_is_managed(const char *key, size_t len)
{
    size_t p = strlen(SPEC_MANAGED_PREFIX);

    return (len >= p && strneq(key, SPEC_MANAGED_PREFIX, p)) ||
           (len == p - 1 && strneq(key, SPEC_MANAGED_PREFIX, p - 1));
}

/* What a user may annotate (upstream's SAFE_ANNOTATION_KEYS, minus the ones we manage). */
static const char *const safe_annotations[] = {"dossier.meta_path", "krun.cpus", NULL};

static int check_kv_list(const char *what, char *const *l, bool annotation, terok_error *err)
{
    if (strv_length(l) > SPEC_MAX_LABELS)
        return terok_error_set(err, -E2BIG, "too many %ss: %zu (at most %d)", what, strv_length(l),
                               SPEC_MAX_LABELS);
    STRV_FOREACH(e, l)
    {
        const char *eq = strchr(*e, '=');
        size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
        _cleanup_free_ char *key = strndup(*e, klen);

        if (!key)
            return terok_error_set(err, -ENOMEM, "out of memory");
        if (!eq || klen == 0 || has_ctl_or_space(key))
            return terok_error_set(err, -EINVAL,
                                   "invalid %s '%s': expected KEY=VALUE with a non-empty key "
                                   "without whitespace or control characters",
                                   what, Q(*e));
        if (key_is_managed(key, klen))
            return terok_error_set(err, -EINVAL,
                                   "%s '%s' is managed by terok-sandbox and cannot be set", what,
                                   Q(key));
        if (has_ctl(eq + 1))
            return terok_error_set(err, -EINVAL,
                                   "invalid value for %s '%s': control characters are not allowed",
                                   what, Q(key));
        if (annotation && !strv_contains(safe_annotations, key)) {
            _cleanup_free_ char *allowed = strv_join(safe_annotations, ", ");
            return terok_error_set(err, -EINVAL, "annotation '%s' is not allowed (allowed: %s)",
                                   Q(key), strempty(allowed));
        }
    }
    return 0;
}

/* Lower-case, without a "cap_" prefix. */
static char *cap_normalize(const char *s)
{
    char *c;

    if (strncasecmp(s, "cap_", 4) == 0)
        s += 4;
    c = strdup(s);
    for (char *p = c; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return c;
}

static int check_caps(char *const *caps, const spec_policy *pol, terok_error *err)
{
    if (strv_length(caps) > SPEC_MAX_LIST)
        return terok_error_set(err, -E2BIG, "too many capabilities: %zu", strv_length(caps));
    STRV_FOREACH(c, caps)
    {
        _cleanup_free_ char *n = cap_normalize(*c);

        if (!n)
            return terok_error_set(err, -ENOMEM, "out of memory");
        if (!strv_contains((const char *const *)pol->grantable_caps, n)) {
            _cleanup_free_ char *g = strv_join((const char *const *)pol->grantable_caps, ", ");
            return terok_error_set(err, -EINVAL, "capability '%s' is not grantable (grantable: %s)",
                                   Q(*c), isempty(g) ? "none" : g);
        }
    }
    return 0;
}

/* Normalise an absolute container path ("//a/./b/" -> "/a/b"); -EINVAL on ".." components. */
static int normalize_target(const char *t, char **ret)
{
    char *out = malloc(strlen(t) + 2), *o = out;

    if (!out)
        return -ENOMEM;
    for (const char *s = t; *s;) {
        while (*s == '/')
            s++;
        size_t len = strcspn(s, "/");
        if (len == 0)
            break;
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            free(out);
            return -EINVAL;
        }
        if (!(len == 1 && s[0] == '.')) {
            *o++ = '/';
            memcpy(o, s, len);
            o += len;
        }
        s += len;
    }
    if (o == out)
        *o++ = '/';
    *o = 0;
    *ret = out;
    return 0;
}

static bool path_is_under(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    return strneq(p, dir, n) && (p[n] == 0 || p[n] == '/');
}

static int check_volumes(const volume_req *v, size_t n, terok_error *err)
{
    _cleanup_strv_free_ char **seen = NULL;
    struct stat st;

    if (n > SPEC_MAX_VOLUMES)
        return terok_error_set(err, -E2BIG, "too many volumes: %zu (at most %d)", n,
                               SPEC_MAX_VOLUMES);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *t = NULL;
        const char *target = v[i].target, *source = v[i].source;

        if (isempty(target) || target[0] != '/')
            return terok_error_set(err, -EINVAL, "volume target '%s' must be an absolute path",
                                   Q(target));
        if (has_ctl(target) || strchr(target, ':') || strchr(target, ','))
            return terok_error_set(err, -EINVAL,
                                   "volume target '%s' must not contain control characters, ':' "
                                   "or ','",
                                   Q(target));
        if (normalize_target(target, &t) < 0)
            return terok_error_set(err, -EINVAL, "volume target '%s' must not contain '..'",
                                   Q(target));
        if (streq(t, "/"))
            return terok_error_set(
                err, -EINVAL, "volume target '%s' would replace the container's root", Q(target));
        if (path_is_under(t, SPEC_MANAGED_DIR) || path_is_under(t, SPEC_INIT_PATH))
            return terok_error_set(err, -EINVAL,
                                   "volume target '%s' is managed by terok-sandbox (%s and %s "
                                   "are reserved)",
                                   Q(target), SPEC_MANAGED_DIR, SPEC_INIT_PATH);
        if (strv_contains((const char *const *)seen, t))
            return terok_error_set(err, -EINVAL, "volume target '%s' is given twice", Q(target));
        if (strv_extend(&seen, t) < 0)
            return terok_error_set(err, -ENOMEM, "out of memory");

        if (isempty(source) || source[0] != '/')
            return terok_error_set(err, -EINVAL, "volume source '%s' must be an absolute path",
                                   Q(source));
        if (has_ctl(source) || strchr(source, ':') || strchr(source, ','))
            return terok_error_set(err, -EINVAL,
                                   "volume source '%s' must not contain control characters, ':' "
                                   "or ','",
                                   Q(source));
        if (stat(source, &st) < 0)
            return terok_error_set(err, -ENOENT, "volume source '%s' does not exist", Q(source));
        if (v[i].label & ~(uint32_t)(TEROK_MOUNT_SHARED_LABEL | TEROK_MOUNT_PRIVATE_LABEL) ||
            v[i].label == (TEROK_MOUNT_SHARED_LABEL | TEROK_MOUNT_PRIVATE_LABEL))
            return terok_error_set(err, -EINVAL, "volume '%s': choose one of z and Z", Q(target));
    }
    return 0;
}

static int check_network(const char *n, terok_error *err)
{
    static const char *const with_opts[] = {"slirp4netns", "pasta", NULL};

    if (!n)
        return 0;
    if (streq(n, "none") || streq(n, "bridge"))
        return 0;
    for (const char *const *p = with_opts; *p; p++) {
        size_t k = strlen(*p);
        if (streq(n, *p) || (strneq(n, *p, k) && n[k] == ':' && n[k + 1] && !has_ctl(n + k)))
            return 0;
    }
    if (strneq(n, "ns:/", 4) && !has_ctl_or_space(n) && !strstr(n, "/../") &&
        !(strlen(n) >= 3 && streq(n + strlen(n) - 3, "/..")))
        return 0;
    return terok_error_set(err, -EINVAL,
                           "network '%s' is not allowed (use none, slirp4netns[:OPTIONS], "
                           "pasta[:OPTIONS], bridge or ns:/PATH)",
                           Q(n));
}

static bool hostname_is_valid(const char *h)
{
    size_t n = strlen(h), label = 0;

    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        label++;
    }
    return label > 0 && h[n - 1] != '-';
}

static bool user_is_valid(const char *u)
{
    /* NAME or UID, optionally :GROUP or :GID. */
    int part = 0;
    size_t len = 0;

    if (!*u)
        return false;
    for (const char *p = u; *p; p++) {
        if (*p == ':') {
            if (len == 0 || ++part > 1)
                return false;
            len = 0;
            continue;
        }
        if (!is_alnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return false;
        if (len == 0 && (*p == '-' || *p == '.'))
            return false;
        len++;
    }
    return len > 0 && len <= 64;
}

static bool device_is_valid(const char *d)
{
    if (strneq(d, "/dev/", 5)) {
        /* /dev/x[:/dev/y[:rwm]] */
        const char *c1 = strchr(d, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (has_ctl_or_space(d) || strstr(d, "/../") || strstr(d, "/.."))
            return false;
        if (c1 && !strneq(c1 + 1, "/dev/", 5))
            return false;
        if (c2 && (!c2[1] || strspn(c2 + 1, "rwm") != strlen(c2 + 1) || strchr(c2 + 1, ':')))
            return false;
        return true;
    }
    /* CDI: vendor.tld/class=name */
    const char *slash = strchr(d, '/'), *eq = strchr(d, '=');
    if (!slash || !eq || eq < slash || slash == d || !eq[1] || has_ctl_or_space(d))
        return false;
    for (const char *p = d; p < slash; p++)
        if (!is_alnum(*p) && *p != '.' && *p != '-')
            return false;
    return strchr(d, '.') && strchr(d, '.') < slash;
}

static int check_gpus(char *const *gpus, terok_error *err)
{
    _cleanup_strv_free_ char **devs = NULL;

    if (strv_length(gpus) > SPEC_MAX_LIST)
        return terok_error_set(err, -E2BIG, "too many GPU selectors: %zu", strv_length(gpus));
    STRV_FOREACH(g, gpus)
    {
        int r = spec_gpu_devices(*g, &devs, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int spec_validate(const run_request *req, const spec_policy *pol, terok_error *err)
{
    static const char *const oci_runtimes[] = {"crun", "krun", NULL};
    int r;

    if (!req || !pol)
        return terok_error_set(err, -EINVAL, "no run request");
    if (req->name && !container_name_is_valid(req->name))
        return terok_error_set(err, -EINVAL,
                               "invalid container name '%s': use 1-63 characters of "
                               "[a-zA-Z0-9_.-], starting with a letter or digit",
                               Q(req->name));
    if (isempty(req->image) || has_ctl_or_space(req->image) || strlen(req->image) > 255)
        return terok_error_set(err, -EINVAL,
                               "invalid image reference '%s': it must be 1-255 characters "
                               "without whitespace or control characters",
                               Q(req->image));
    r = check_argv("the command", req->command, err);
    if (r >= 0)
        r = check_argv("the entrypoint", req->entrypoint, err);
    if (r >= 0)
        r = check_env(req->env, err);
    if (r >= 0)
        r = check_kv_list("label", req->labels, false, err);
    if (r >= 0)
        r = check_kv_list("annotation", req->annotations, true, err);
    if (r >= 0)
        r = check_caps(req->cap_add, pol, err);
    if (r >= 0)
        r = check_volumes(req->volumes, req->n_volumes, err);
    if (r >= 0)
        r = check_network(req->network, err);
    if (r >= 0)
        r = check_gpus(req->gpus, err);
    if (r < 0)
        return r;

    if (strv_length(req->devices) > SPEC_MAX_LIST)
        return terok_error_set(err, -E2BIG, "too many devices: %zu", strv_length(req->devices));
    STRV_FOREACH(d, req->devices)
    if (!device_is_valid(*d))
        return terok_error_set(err, -EINVAL,
                               "invalid device '%s': use /dev/PATH[:/dev/PATH[:rwm]] or a CDI "
                               "name vendor.com/class=name",
                               Q(*d));
    if (req->hostname && !hostname_is_valid(req->hostname))
        return terok_error_set(err, -EINVAL,
                               "invalid hostname '%s': use dot-separated labels of [a-zA-Z0-9-], "
                               "at most 63 characters",
                               Q(req->hostname));
    if (req->workdir && (req->workdir[0] != '/' || has_ctl(req->workdir)))
        return terok_error_set(err, -EINVAL, "working directory '%s' must be an absolute path",
                               Q(req->workdir));
    if (req->user && !user_is_valid(req->user))
        return terok_error_set(err, -EINVAL,
                               "invalid user '%s': use NAME or UID, optionally with :GROUP or :GID",
                               Q(req->user));
    if (req->userns && !streq(req->userns, "auto") && !streq(req->userns, "keep-id") &&
        !(strneq(req->userns, "keep-id:", 8) && !has_ctl_or_space(req->userns)) &&
        !(strneq(req->userns, "auto:", 5) && !has_ctl_or_space(req->userns)))
        return terok_error_set(err, -EINVAL,
                               "user namespace '%s' is not allowed (use auto[:OPTIONS] or "
                               "keep-id[:OPTIONS])",
                               Q(req->userns));
    if (req->oci_runtime && !strv_contains(oci_runtimes, req->oci_runtime))
        return terok_error_set(err, -EINVAL,
                               "OCI runtime '%s' is not allowed (allowed: crun, krun)",
                               Q(req->oci_runtime));
    if (req->pids_limit < -1)
        return terok_error_set(err, -EINVAL, "invalid pids limit %" PRId64, req->pids_limit);
    if (req->memory_bytes < -1)
        return terok_error_set(err, -EINVAL, "invalid memory limit %" PRId64, req->memory_bytes);
    if (req->cpu_millis < -1)
        return terok_error_set(err, -EINVAL, "invalid CPU limit %" PRId64, req->cpu_millis);
    return 0;
}

int spec_gpu_devices(const char *selector, char ***devices, terok_error *err)
{
    const char *colon;
    char vendor[16];
    long idx = -1;
    int r = 0;

    if (isempty(selector))
        goto bad;
    if (streq(selector, "all"))
        return strv_extend(devices, "nvidia.com/gpu=all") < 0 ? -ENOMEM : 0;
    colon = strchr(selector, ':');
    if ((size_t)(colon ? colon - selector : (ptrdiff_t)strlen(selector)) >= sizeof vendor)
        goto bad;
    snprintf(vendor, sizeof vendor, "%.*s",
             (int)(colon ? colon - selector : (ptrdiff_t)strlen(selector)), selector);
    if (colon) {
        char *end = NULL;
        if (!colon[1] || colon[1] < '0' || colon[1] > '9')
            goto bad;
        errno = 0;
        idx = strtol(colon + 1, &end, 10);
        if (errno || *end || idx < 0 || idx > 127)
            goto bad;
    }
    if (streq(vendor, "nvidia")) {
        r = idx < 0 ? strv_extend(devices, "nvidia.com/gpu=all")
                    : strv_extendf(devices, "nvidia.com/gpu=%ld", idx);
    } else if (streq(vendor, "amd")) {
        r = strv_extend(devices, "/dev/kfd");
        if (r >= 0)
            r = idx < 0 ? strv_extend(devices, "/dev/dri")
                        : strv_extendf(devices, "/dev/dri/renderD%ld", 128 + idx);
    } else if (streq(vendor, "intel")) {
        r = idx < 0 ? strv_extend(devices, "/dev/dri")
                    : strv_extendf(devices, "/dev/dri/renderD%ld", 128 + idx);
    } else {
        goto bad;
    }
    return r < 0 ? terok_error_set(err, -ENOMEM, "out of memory") : 0;
bad:
    return terok_error_set(err, -EINVAL,
                           "invalid GPU selector '%s': use all, nvidia[:N], amd[:N] or intel[:N]",
                           Q(selector));
}

int spec_parse_cpus(const char *s, int64_t *ret_millis)
{
    int64_t whole = 0, frac = 0;
    int digits = 0;
    const char *p = s;

    if (isempty(s))
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > 100000)
            return -ERANGE;
    }
    if (p == s && *p != '.')
        return -EINVAL;
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++digits > 3)
                return -EINVAL;
            frac = frac * 10 + (*p - '0');
        }
        if (digits == 0)
            return -EINVAL;
        for (int i = digits; i < 3; i++)
            frac *= 10;
    }
    if (*p)
        return -EINVAL;
    *ret_millis = whole * 1000 + frac;
    return 0;
}

int spec_parse_volume(const char *s, volume_req *ret, terok_error *err)
{
    _cleanup_strv_free_ char **opts = NULL;
    const char *c1, *c2;
    volume_req v = {0};

    c1 = s ? strchr(s, ':') : NULL;
    if (!c1 || c1 == s || !c1[1])
        return terok_error_set(err, -EINVAL, "invalid volume '%s': use HOST:TARGET[:OPTIONS]",
                               Q(s));
    c2 = strchr(c1 + 1, ':');
    v.source = strndup(s, (size_t)(c1 - s));
    v.target = c2 ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) : strdup(c1 + 1);
    if (!v.source || !v.target)
        goto oom;
    if (c2) {
        const char *o = c2 + 1;
        if (!*o)
            goto bad_opt;
        while (*o) {
            size_t len = strcspn(o, ",");
            if (len == 2 && strneq(o, "ro", 2))
                v.read_only = true;
            else if (len == 2 && strneq(o, "rw", 2))
                v.read_only = false;
            else if (len == 1 && *o == 'z')
                v.label |= TEROK_MOUNT_SHARED_LABEL;
            else if (len == 1 && *o == 'Z')
                v.label |= TEROK_MOUNT_PRIVATE_LABEL;
            else if (len == 4 && strneq(o, "live", 4))
                v.live = true;
            else
                goto bad_opt;
            o += len;
            if (*o == ',' && !*++o)
                goto bad_opt;
        }
    }
    *ret = v;
    return 0;
bad_opt:
    free(v.source);
    free(v.target);
    return terok_error_set(err, -EINVAL,
                           "invalid volume options in '%s': use a comma list of ro, rw, z, Z, live",
                           Q(s));
oom:
    free(v.source);
    free(v.target);
    return terok_error_set(err, -ENOMEM, "out of memory");
}
