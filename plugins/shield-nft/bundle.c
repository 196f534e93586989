/* SPDX-License-Identifier: Apache-2.0 */
/* bundle.c: reading and writing the shield bundle (see bundle.h). The bundle is the only input
 * the OCI hook trusts, so reading it fails closed: wrong owner or mode, a symlink, an unknown
 * version, a target that does not parse, or any field out of range is an error. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bundle.h"
#include "nft-ruleset.h"
#include "shield-common.h"
#include "util/strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object, json_object_put)
#define _cleanup_json_ _cleanup_(json_object_putp)

bool container_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};

    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define RESOLVE_STRICT (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static int check_owner_mode(int fd, const char *what, const char *path, bool dir, terok_error *err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return terok_perr(err, negative_errno(), "%s '%s': %s", what, path, strerror(errno));
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return terok_perr(err, -EBADFD, "%s '%s' is not a %s", what, path,
                          dir ? "directory" : "regular file");
    if (st.st_uid != geteuid())
        return terok_perr(err, -EPERM, "%s '%s' is owned by uid %u, expected %u", what, path,
                          (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 022)
        return terok_perr(err, -EPERM, "%s '%s' is group- or world-writable (mode %04o)", what,
                          path, (unsigned)(st.st_mode & 07777));
    return 0;
}

static int mkdir_open(int parent, const char *name, const char *shown, int *ret, terok_error *err)
{
    int fd;

    if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
        return terok_perr(err, negative_errno(), "cannot create '%s': %s", shown, strerror(errno));
    fd = openat2_(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                  RESOLVE_STRICT | RESOLVE_BENEATH);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s%s", shown, strerror(errno),
                          errno == ELOOP ? " (a symlink?)" : "");
    *ret = fd;
    return 0;
}

int bundle_dir_create(const char *state_dir, const char *name, int *ret_dirfd, char **ret_path,
                      terok_error *err)
{
    _cleanup_close_ int base = -EBADF, c1 = -EBADF, c2 = -EBADF, c3 = -EBADF;
    _cleanup_free_ char *path = NULL;
    int r;

    if (isempty(state_dir) || state_dir[0] != '/')
        return terok_perr(err, -EINVAL, "state dir '%s' is not an absolute path", Q(state_dir));
    if (!container_name_valid(name))
        return terok_perr(err, -EINVAL, "container name '%s' is invalid", Q(name));
    if (asprintf(&path, "%s/containers/%s/shield", state_dir, name) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    /* The state dir itself is the operator's; create it if missing, then walk down without
     * following links. */
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return terok_perr(err, negative_errno(), "cannot create '%s': %s", state_dir,
                          strerror(errno));
    base =
        openat2_(AT_FDCWD, state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_MAGICLINKS);
    if (base < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", state_dir,
                          strerror(errno));
    if ((r = mkdir_open(base, "containers", path, &c1, err)) < 0 ||
        (r = mkdir_open(c1, name, path, &c2, err)) < 0 ||
        (r = mkdir_open(c2, "shield", path, &c3, err)) < 0)
        return r;
    if ((r = check_owner_mode(c3, "bundle dir", path, true, err)) < 0)
        return r;
    *ret_dirfd = take_fd(c3);
    *ret_path = take_ptr(path);
    return 0;
}

int bundle_dir_open(const char *path, int *ret_dirfd, terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    int r;

    if (isempty(path) || path[0] != '/')
        return terok_perr(err, -EINVAL, "bundle path '%s' is not absolute", Q(path));
    if (strlen(path) >= 4096 || strstr(path, "/../") || strstr(path, "/./"))
        return terok_perr(err, -EINVAL, "bundle path '%s' is not canonical", Q(path));
    fd = openat2_(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_STRICT);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot open bundle '%s': %s%s", Q(path),
                          strerror(errno), errno == ELOOP ? " (symlink in the path)" : "");
    if ((r = check_owner_mode(fd, "bundle dir", path, true, err)) < 0)
        return r;
    *ret_dirfd = take_fd(fd);
    return 0;
}

int bundle_lock(int dirfd, terok_error *err)
{
    while (flock(dirfd, LOCK_EX) < 0)
        if (errno != EINTR)
            return terok_perr(err, negative_errno(), "cannot lock the bundle: %s", strerror(errno));
    return 0;
}

static int read_file(int dirfd, const char *name, char **ret, terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    int r;

    fd =
        openat2_(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0, RESOLVE_STRICT | RESOLVE_BENEATH);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", name, strerror(errno));
    if ((r = check_owner_mode(fd, "bundle file", name, false, err)) < 0)
        return r;
    r = read_fd_all(fd, BUNDLE_MAX_BYTES, ret, NULL);
    if (r < 0)
        return terok_perr(err, r, "cannot read '%s': %s", name,
                          r == -EFBIG ? "larger than 64 MiB" : strerror(-r));
    return 0;
}

static void tmp_name(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, ".%s.%d.tmp", name, (int)getpid());
}

/* Write and fsync <name>'s temporary file; stage_commit() renames it into place. */
static int stage_file(int dirfd, const char *name, const char *data, size_t len, terok_error *err)
{
    char tmp[64];
    _cleanup_close_ int fd = -EBADF;
    int r;

    tmp_name(name, tmp, sizeof tmp);
    (void)unlinkat(dirfd, tmp, 0);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot create '%s': %s", tmp, strerror(errno));
    if ((r = write_fd_all(fd, data, len)) < 0 || (fsync(fd) < 0 && (r = negative_errno()))) {
        (void)unlinkat(dirfd, tmp, 0);
        return terok_perr(err, r, "cannot write '%s': %s", tmp, strerror(-r));
    }
    return 0;
}

static int stage_commit(int dirfd, const char *name, terok_error *err)
{
    char tmp[64];
    int r;

    tmp_name(name, tmp, sizeof tmp);
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        r = negative_errno();
        (void)unlinkat(dirfd, tmp, 0);
        return terok_perr(err, r, "cannot rename '%s': %s", name, strerror(-r));
    }
    return 0;
}

static void stage_discard(int dirfd, const char *name)
{
    char tmp[64];

    tmp_name(name, tmp, sizeof tmp);
    (void)unlinkat(dirfd, tmp, 0);
}

static json_object *parse_json(const char *s, const char *name, terok_error *err, int *r)
{
    json_tokener *tok = json_tokener_new_ex(16);
    size_t len = strlen(s);
    json_object *o;

    if (!tok) {
        *r = terok_perr(err, -ENOMEM, "out of memory");
        return NULL;
    }
    o = json_tokener_parse_ex(tok, s, (int)MIN(len, (size_t)INT32_MAX));
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        enum json_tokener_error e = json_tokener_get_error(tok);
        /* an input that ends inside a value leaves the tokener waiting for more */
        *r = terok_perr(err, -EBADMSG, "'%s' is not valid JSON (%s)", name,
                        e == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(e));
        json_object_put(o);
        o = NULL;
    } else if (json_tokener_get_parse_end(tok) != len) {
        *r = terok_perr(err, -EBADMSG, "'%s' has data after its JSON object (at byte %zu)", name,
                        json_tokener_get_parse_end(tok));
        json_object_put(o);
        o = NULL;
    } else if (!json_object_is_type(o, json_type_object)) {
        *r = terok_perr(err, -EBADMSG, "'%s' holds a JSON %s, not an object", name,
                        json_type_to_name(json_object_get_type(o)));
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static json_object *get(json_object *o, const char *key, json_type type)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

static int get_int(json_object *o, const char *key, int64_t min, int64_t max, int64_t *ret)
{
    json_object *v = get(o, key, json_type_int);
    int64_t x;

    if (!v)
        return -EBADMSG;
    errno = 0;
    x = json_object_get_int64(v);
    if (errno || x < min || x > max)
        return -ERANGE;
    *ret = x;
    return 0;
}

static int bad_field(terok_error *err, const char *field)
{
    return terok_perr(err, -EBADMSG, "bundle: field '%s' is missing or invalid", field);
}

static size_t count_lines(const char *s)
{
    size_t n = *s ? 1 : 0;

    for (; (s = strchr(s, '\n')); s++)
        n++;
    return n;
}

static int read_entries(shield_policy *p, json_object *root, terok_error *err)
{
    json_object *tiers = get(root, "entries", json_type_object), *timed;
    int r;

    if (!tiers)
        return bad_field(err, "entries");
    /* Permanent entries are one newline-separated string per tier: a target never holds a
     * newline (target_parse refuses control characters), and one JSON string of 10,000 lines
     * parses several times faster than an array of 10,000 strings (the hook's hot path). */
    for (unsigned tier = 0; tier < TIER_COUNT; tier++) {
        json_object *v = get(tiers, tier_name(tier), json_type_string);
        const char *s;
        size_t len;

        if (!v)
            return bad_field(err, tier_name(tier));
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (strlen(s) != len)
            return bad_field(err, tier_name(tier));
        if ((r = policy_reserve(p, p->n_entries + count_lines(s))) < 0)
            return terok_perr(err, r, "out of memory");
        while (*s) {
            const char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            char one[TARGET_MAX_LEN + 2];
            policy_entry *e;

            if (n > TARGET_MAX_LEN) {
                snprintf(one, sizeof one, "%.*s", TARGET_MAX_LEN + 1, s);
            } else {
                memcpy(one, s, n);
                one[n] = '\0';
            }
            if (!(e = policy_push(p)))
                return terok_perr(err, -ENOMEM, "out of memory");
            if ((r = target_parse(one, &e->t, err)) < 0) {
                p->n_entries--;
                return err_prefix(err, "bundle: %s entry", tier_name(tier));
            }
            e->tier = (uint8_t)tier;
            e->expires_ms = 0;
            s += n + (nl ? 1 : 0);
        }
    }
    if (!(timed = get(root, "timed", json_type_array)))
        return bad_field(err, "timed");
    for (size_t i = 0; i < json_object_array_length(timed); i++) {
        json_object *e = json_object_array_get_idx(timed, i), *tv, *sv;
        int64_t exp;
        int tier;
        target t;

        if (!json_object_is_type(e, json_type_object) || !(tv = get(e, "tier", json_type_string)) ||
            (tier = tier_from_name(json_object_get_string(tv))) < 0 ||
            !(sv = get(e, "target", json_type_string)) ||
            get_int(e, "expires_ms", 1, INT64_MAX, &exp) < 0)
            return bad_field(err, "timed");
        if ((r = target_parse(json_object_get_string(sv), &t, err)) < 0)
            return err_prefix(err, "bundle: timed entry");
        if ((r = policy_append(p, &t, (unsigned)tier, exp)) < 0)
            return terok_perr(err, r, "out of memory");
    }
    /* No dedupe: prepare wrote unique entries; duplicates from an edit change nothing (the
     * renderer merges them) and the ruleset comparison catches any other edit. */
    return 0;
}

static int read_dns(shield_policy *p, json_object *root, terok_error *err)
{
    json_object *arr = get(root, "dns", json_type_array);
    int r;

    if (!arr)
        return bad_field(err, "dns");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *dv, *tv, *av;
        dns_addr a = {0};
        int64_t port, exp;
        int tier;
        target t;

        if (!json_object_is_type(e, json_type_object) ||
            !(dv = get(e, "domain", json_type_string)) ||
            !(tv = get(e, "tier", json_type_string)) ||
            (tier = tier_from_name(json_object_get_string(tv))) < 0 ||
            !(av = get(e, "addr", json_type_string)) || get_int(e, "port", 0, 65535, &port) < 0 ||
            get_int(e, "expires_ms", 1, INT64_MAX, &exp) < 0)
            return bad_field(err, "dns");
        /* The domain and the address go through the same parser as any target. */
        if ((r = target_parse(json_object_get_string(dv), &t, err)) < 0 ||
            t.kind != TARGET_DOMAIN || t.port || t.wildcard)
            return r < 0 ? err_prefix(err, "bundle: dns entry") : bad_field(err, "dns.domain");
        snprintf(a.domain, sizeof a.domain, "%s", t.domain);
        if ((r = target_parse(json_object_get_string(av), &t, err)) < 0 ||
            (t.kind != TARGET_IP4 && t.kind != TARGET_IP6) || t.port)
            return r < 0 ? err_prefix(err, "bundle: dns entry") : bad_field(err, "dns.addr");
        a.tier = (uint8_t)tier;
        a.v6 = t.kind == TARGET_IP6;
        a.addr = t.addr;
        a.port = (uint16_t)port;
        a.expires_ms = exp;
        if ((r = policy_add_dns(p, &a)) < 0)
            return terok_perr(err, r, "out of memory");
    }
    return 0;
}

/* Optional: the domains whose last resolution failed (policy.h, dns_unresolved). */
static int read_unresolved(shield_policy *p, json_object *root, terok_error *err)
{
    json_object *arr;
    int r;

    if (!json_object_object_get_ex(root, "dns_unresolved", &arr))
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return bad_field(err, "dns_unresolved");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *dv, *wv;
        const char *why;
        int64_t since;
        target t;

        if (!json_object_is_type(e, json_type_object) ||
            !(dv = get(e, "domain", json_type_string)) ||
            !(wv = get(e, "error", json_type_string)) ||
            get_int(e, "since_ms", 1, INT64_MAX, &since) < 0)
            return bad_field(err, "dns_unresolved");
        why = json_object_get_string(wv);
        if (json_object_get_string_len(wv) > UNRESOLVED_WHY_MAX)
            return bad_field(err, "dns_unresolved.error");
        for (const char *c = why; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return bad_field(err, "dns_unresolved.error");
        if ((r = target_parse(json_object_get_string(dv), &t, err)) < 0 ||
            t.kind != TARGET_DOMAIN || t.port || t.wildcard)
            return r < 0 ? err_prefix(err, "bundle: dns_unresolved entry")
                         : bad_field(err, "dns_unresolved.domain");
        if ((r = policy_unresolved_note(p, t.domain, since, why)) < 0)
            return terok_perr(err, r, "out of memory");
    }
    return 0;
}

int bundle_read(int dirfd, shield_policy **ret_policy, char **ret_ruleset, terok_error *err)
{
    _cleanup_free_ char *text = NULL, *ruleset = NULL;
    _cleanup_json_ json_object *root = NULL;
    _cleanup_policy_ shield_policy *p = NULL;
    json_object *v, *arr;
    int64_t n;
    int r;

    if ((r = read_file(dirfd, BUNDLE_FILE, &text, err)) < 0)
        return r;
    if (!(root = parse_json(text, BUNDLE_FILE, err, &r)))
        return r;
    if (!(v = get(root, "format", json_type_string)) ||
        !streq(json_object_get_string(v), BUNDLE_FORMAT))
        return terok_perr(err, -EBADMSG, "'%s' is not a shield bundle", BUNDLE_FILE);
    if (get_int(root, "version", 0, INT32_MAX, &n) < 0)
        return bad_field(err, "version");
    if (n != BUNDLE_VERSION)
        return terok_perr(err, -EPROTONOSUPPORT,
                          "bundle version %lld is not the supported version %d (re-create the "
                          "container)",
                          (long long)n, BUNDLE_VERSION);
    if (!(p = calloc(1, sizeof *p)))
        return terok_perr(err, -ENOMEM, "out of memory");
    if (!(v = get(root, "container", json_type_string)) ||
        !container_name_valid(json_object_get_string(v)))
        return bad_field(err, "container");
    if (!(p->container = strdup(json_object_get_string(v))))
        return terok_perr(err, -ENOMEM, "out of memory");
    if (get_int(root, "nflog_group", 1, 65535, &n) < 0)
        return bad_field(err, "nflog_group");
    p->nflog_group = (uint32_t)n;
    if (!(v = get(root, "posture", json_type_string)) ||
        (r = posture_from_name(json_object_get_string(v))) < 0 || r > TEROK_SHIELD_QUARANTINE)
        return bad_field(err, "posture");
    p->posture = (uint32_t)r;
    if (get_int(root, "chunk", 1, 4000, &n) < 0)
        return bad_field(err, "chunk");
    p->chunk = (uint32_t)n;
    if (get_int(root, "ttl_floor_ms", 1, INT32_MAX, &p->ttl_floor_ms) < 0)
        return bad_field(err, "ttl_floor_ms");
    if (!(v = get(root, "rootless", json_type_boolean)))
        return bad_field(err, "rootless");
    p->rootless = json_object_get_boolean(v);
    if ((v = get(root, "resolver", json_type_string))) {
        if ((r = target_parse(json_object_get_string(v), &p->resolver, err)) < 0)
            return err_prefix(err, "bundle: resolver");
        if ((p->resolver.kind != TARGET_IP4 && p->resolver.kind != TARGET_IP6) || p->resolver.port)
            return bad_field(err, "resolver");
        p->has_resolver = true;
    }
    if (!(arr = get(root, "profiles", json_type_array)))
        return bad_field(err, "profiles");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *s = json_object_array_get_idx(arr, i);

        if (!json_object_is_type(s, json_type_string) ||
            !profile_name_valid(json_object_get_string(s)))
            return bad_field(err, "profiles");
        if (strv_extend(&p->profiles, json_object_get_string(s)) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    if ((r = read_entries(p, root, err)) < 0 || (r = read_dns(p, root, err)) < 0 ||
        (r = read_unresolved(p, root, err)) < 0)
        return r;
    if (ret_ruleset) {
        if ((r = read_file(dirfd, RULESET_FILE, &ruleset, err)) < 0)
            return r;
        *ret_ruleset = take_ptr(ruleset);
    }
    *ret_policy = take_ptr(p);
    return 0;
}

static int add_str(json_object *arr, const char *s)
{
    json_object *v = json_object_new_string(s);

    if (!v || json_object_array_add(arr, v) < 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static int add_kv(json_object *o, const char *k, json_object *v)
{
    if (!v || json_object_object_add(o, k, v) < 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static int policy_to_json(const shield_policy *p, json_object **ret)
{
    _cleanup_json_ json_object *root = json_object_new_object();
    strbuf tiers[TIER_COUNT] = {{0}};
    json_object *entries = json_object_new_object(), *timed = json_object_new_array(),
                *dns = json_object_new_array(), *profiles = json_object_new_array();
    char buf[TARGET_MAX_LEN + 8];
    int r = 0;

    r |= add_kv(root, "format", json_object_new_string(BUNDLE_FORMAT));
    r |= add_kv(root, "version", json_object_new_int(BUNDLE_VERSION));
    r |= add_kv(root, "container", json_object_new_string(p->container));
    r |= add_kv(root, "updated_ms", json_object_new_int64(now_realtime_ms()));
    r |= add_kv(root, "rootless", json_object_new_boolean(p->rootless));
    r |= add_kv(root, "nflog_group", json_object_new_int64(p->nflog_group));
    r |= add_kv(root, "chunk", json_object_new_int64(p->chunk));
    r |= add_kv(root, "ttl_floor_ms", json_object_new_int64(p->ttl_floor_ms));
    r |= add_kv(root, "posture", json_object_new_string(posture_name(p->posture)));
    if (p->has_resolver) {
        target_format(&p->resolver, buf, sizeof buf);
        r |= add_kv(root, "resolver", json_object_new_string(buf));
    }
    r |= add_kv(root, "profiles", profiles);
    STRV_FOREACH(s, p->profiles)
    r |= add_str(profiles, *s);
    r |= add_kv(root, "entries", entries);
    r |= add_kv(root, "timed", timed);
    r |= add_kv(root, "dns", dns);
    if (r)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_entries; i++) {
        const policy_entry *e = &p->entries[i];

        target_format(&e->t, buf, sizeof buf);
        if (e->expires_ms == 0) {
            if (tiers[e->tier].len)
                sb_putn(&tiers[e->tier], "\n", 1);
            sb_puts(&tiers[e->tier], buf);
            continue;
        }
        json_object *o = json_object_new_object();
        if (!o || json_object_array_add(timed, o) < 0) {
            json_object_put(o);
            r = -ENOMEM;
            break;
        }
        r |= add_kv(o, "tier", json_object_new_string(tier_name(e->tier)));
        r |= add_kv(o, "target", json_object_new_string(buf));
        r |= add_kv(o, "expires_ms", json_object_new_int64(e->expires_ms));
    }
    for (size_t i = 0; r == 0 && i < p->n_dns; i++) {
        const dns_addr *a = &p->dns[i];
        json_object *o = json_object_new_object();
        char ip[ADDR_BUF];

        if (!o || json_object_array_add(dns, o) < 0) {
            json_object_put(o);
            r = -ENOMEM;
            break;
        }
        fmt_addr(a->v6, &a->addr, ip);
        r |= add_kv(o, "domain", json_object_new_string(a->domain));
        r |= add_kv(o, "tier", json_object_new_string(tier_name(a->tier)));
        r |= add_kv(o, "port", json_object_new_int(a->port));
        r |= add_kv(o, "addr", json_object_new_string(ip));
        r |= add_kv(o, "expires_ms", json_object_new_int64(a->expires_ms));
    }
    if (r == 0 && p->n_unresolved > 0) {
        json_object *un = json_object_new_array();

        r |= add_kv(root, "dns_unresolved", un);
        for (size_t i = 0; r == 0 && i < p->n_unresolved; i++) {
            json_object *o = json_object_new_object();

            if (!o || json_object_array_add(un, o) < 0) {
                json_object_put(o);
                r = -ENOMEM;
                break;
            }
            r |= add_kv(o, "domain", json_object_new_string(p->unresolved[i].domain));
            r |= add_kv(o, "since_ms", json_object_new_int64(p->unresolved[i].since_ms));
            r |= add_kv(o, "error", json_object_new_string(p->unresolved[i].why));
        }
    }
    for (unsigned t = 0; t < TIER_COUNT; t++) {
        char *joined = NULL;

        if (r)
            sb_free(&tiers[t]);
        else if (sb_done(&tiers[t], &joined) < 0)
            r = -ENOMEM;
        else
            r |= add_kv(entries, tier_name(t), json_object_new_string(joined));
        free(joined);
    }
    if (r)
        return -ENOMEM;
    *ret = take_ptr(root);
    return 0;
}

int bundle_write(int dirfd, const shield_policy *p, const char *ruleset, terok_error *err)
{
    int r = bundle_stage(dirfd, p, ruleset, err);

    return r < 0 ? r : bundle_commit(dirfd, err);
}

int bundle_commit(int dirfd, terok_error *err)
{
    int r;

    /* The ruleset first: a crash between the two renames leaves a pair that no longer
     * matches, which apply refuses (fail closed). */
    if ((r = stage_commit(dirfd, RULESET_FILE, err)) < 0) {
        stage_discard(dirfd, BUNDLE_FILE);
        return r;
    }
    return stage_commit(dirfd, BUNDLE_FILE, err);
}

void bundle_discard(int dirfd)
{
    stage_discard(dirfd, RULESET_FILE);
    stage_discard(dirfd, BUNDLE_FILE);
    stage_discard(dirfd, RUNTIME_FILE);
}

int bundle_stage(int dirfd, const shield_policy *p, const char *ruleset, terok_error *err)
{
    _cleanup_json_ json_object *root = NULL;
    const char *s;
    int r;

    if ((r = stage_file(dirfd, RULESET_FILE, ruleset, strlen(ruleset), err)) < 0)
        return r;
    if ((r = policy_to_json(p, &root)) < 0)
        return terok_perr(err, r, "out of memory");
    s = json_object_to_json_string_ext(root,
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return terok_perr(err, -ENOMEM, "out of memory");
    return stage_file(dirfd, BUNDLE_FILE, s, strlen(s), err);
}

int bundle_runtime_read(int dirfd, bundle_runtime *ret, terok_error *err)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_json_ json_object *root = NULL;
    int64_t pid, st, at;
    int r;

    if (faccessat(dirfd, RUNTIME_FILE, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        return -ENOENT;
    if ((r = read_file(dirfd, RUNTIME_FILE, &text, err)) < 0)
        return r;
    if (!(root = parse_json(text, RUNTIME_FILE, err, &r)))
        return r;
    if (get_int(root, "pid", 1, INT32_MAX, &pid) < 0 ||
        get_int(root, "starttime", 0, INT64_MAX, &st) < 0 ||
        get_int(root, "applied_ms", 0, INT64_MAX, &at) < 0)
        return terok_perr(err, -EBADMSG, "'%s' is malformed", RUNTIME_FILE);
    *ret = (bundle_runtime){pid, (uint64_t)st, at};
    return 0;
}

int bundle_runtime_commit(int dirfd, terok_error *err)
{
    return stage_commit(dirfd, RUNTIME_FILE, err);
}

int bundle_runtime_stage(int dirfd, const bundle_runtime *rt, terok_error *err)
{
    char buf[160];
    int n =
        snprintf(buf, sizeof buf, "{\"pid\":%lld,\"starttime\":%llu,\"applied_ms\":%lld}\n",
                 (long long)rt->pid, (unsigned long long)rt->starttime, (long long)rt->applied_ms);

    return stage_file(dirfd, RUNTIME_FILE, buf, (size_t)n, err);
}

int bundle_runtime_remove(int dirfd)
{
    if (unlinkat(dirfd, RUNTIME_FILE, 0) < 0 && errno != ENOENT)
        return negative_errno();
    return 0;
}
