/* SPDX-License-Identifier: Apache-2.0 */
/* loader.c: checking and loading one plugin file (DESIGN §3, style-anchors C7). The file that was
 * checked is the file that is loaded: openat(O_NOFOLLOW), fstat, dlopen("/proc/self/fd/N").
 * Every rejection reads "plugin '<file>': <problem> (plugin ABI X.Y, host A.B)". Never prints;
 * never loads a file the caller did not name (probing every file happens in probe.c's children). */
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"
#include "error.h"
#include "loader-internal.h"
#include "loader.h"

/* --- what each kind must provide --------------------------------------------------------- */

#define OPS_SIZE_1_0(type) (offsetof(type, ctl) + sizeof(void (*)(void)))
#define OP(type, member, cap)                                                                      \
    {                                                                                              \
#member, offsetof(type, member), (cap)                                                     \
    }
#define ALWAYS 0

/* Required ops: `cap` 0 means every plugin of the kind has it; otherwise the op is required when
 * the plugin claims that capability (a claimed capability without its op is a rejection). */
static const op_req runtime_reqs[] = {
    OP(terok_runtime_ops, open, ALWAYS),
    OP(terok_runtime_ops, close, ALWAYS),
    OP(terok_runtime_ops, create, ALWAYS),
    OP(terok_runtime_ops, start, ALWAYS),
    OP(terok_runtime_ops, stop, ALWAYS),
    OP(terok_runtime_ops, kill, ALWAYS),
    OP(terok_runtime_ops, remove, ALWAYS),
    OP(terok_runtime_ops, wait, ALWAYS),
    OP(terok_runtime_ops, inspect, ALWAYS),
    OP(terok_runtime_ops, list, ALWAYS),
    OP(terok_runtime_ops, image_inspect, ALWAYS),
    OP(terok_runtime_ops, exec, TEROK_RUNTIME_CAP_EXEC),
    OP(terok_runtime_ops, exec, TEROK_RUNTIME_CAP_TTY),
    OP(terok_runtime_ops, logs, TEROK_RUNTIME_CAP_LOGS),
    OP(terok_runtime_ops, events, TEROK_RUNTIME_CAP_EVENTS),
    OP(terok_runtime_ops, copy_in, TEROK_RUNTIME_CAP_COPY),
};

static const op_req vault_reqs[] = {
    OP(terok_vault_ops, open, ALWAYS),
    OP(terok_vault_ops, close, ALWAYS),
    OP(terok_vault_ops, get, ALWAYS),
    OP(terok_vault_ops, list, ALWAYS),
    OP(terok_vault_ops, status, ALWAYS),
    OP(terok_vault_ops, put, TEROK_VAULT_CAP_WRITE),
    OP(terok_vault_ops, remove, TEROK_VAULT_CAP_WRITE),
    OP(terok_vault_ops, unlock, TEROK_VAULT_CAP_NEEDS_UNLOCK),
    OP(terok_vault_ops, lock, TEROK_VAULT_CAP_NEEDS_UNLOCK),
};

static const op_req gate_reqs[] = {
    OP(terok_gate_ops, open, ALWAYS),
    OP(terok_gate_ops, close, ALWAYS),
    OP(terok_gate_ops, repo_create, ALWAYS),
    OP(terok_gate_ops, repo_delete, ALWAYS),
    OP(terok_gate_ops, repo_list, ALWAYS),
    OP(terok_gate_ops, grant, ALWAYS),
    OP(terok_gate_ops, revoke, ALWAYS),
    OP(terok_gate_ops, authorize, ALWAYS),
    OP(terok_gate_ops, review, ALWAYS),
    OP(terok_gate_ops, diff, ALWAYS),
    OP(terok_gate_ops, serve, TEROK_GATE_CAP_SMART_HTTP),
    OP(terok_gate_ops, sync, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, pending_list, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, pending_apply, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, forward, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, backups_list, TEROK_GATE_CAP_BACKUPS),
    OP(terok_gate_ops, backup_restore, TEROK_GATE_CAP_BACKUPS),
};

static const op_req shield_reqs[] = {
    OP(terok_shield_ops, open, ALWAYS),
    OP(terok_shield_ops, close, ALWAYS),
    OP(terok_shield_ops, prepare, ALWAYS),
    OP(terok_shield_ops, apply, ALWAYS),
    OP(terok_shield_ops, verify, ALWAYS),
    OP(terok_shield_ops, cleanup, ALWAYS),
    OP(terok_shield_ops, posture_get, ALWAYS),
    OP(terok_shield_ops, rules, ALWAYS),
    OP(terok_shield_ops, posture_set, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, allow, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, deny, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, events_fd, TEROK_SHIELD_CAP_EVENTS),
    OP(terok_shield_ops, events_dispatch, TEROK_SHIELD_CAP_EVENTS),
};

static const op_req clearance_reqs[] = {
    OP(terok_clearance_ops, open, ALWAYS),   OP(terok_clearance_ops, close, ALWAYS),
    OP(terok_clearance_ops, ask, ALWAYS),    OP(terok_clearance_ops, cancel, ALWAYS),
    OP(terok_clearance_ops, get_fd, ALWAYS), OP(terok_clearance_ops, dispatch, ALWAYS),
};

/* Capability names by bit, as `plugins list` and rejections show them. */
static const char *const runtime_caps[] = {"rootless", "exec",  "logs", "events",
                                           "copy",     "hooks", "tty"};
static const char *const vault_caps[] = {"persistent", "encrypted-at-rest", "write",
                                         "needs-unlock"};
static const char *const gate_caps[] = {"upstream", "smart-http", "protocol-v2", "backups"};
static const char *const shield_caps[] = {"egress", "dns", "live", "events", "rootless", "timed"};
static const char *const clearance_caps[] = {"interactive", "desktop", "timed-verdicts"};

#define KIND(n, type, reqs, caps)                                                                  \
    {                                                                                              \
        n, sizeof(type), OPS_SIZE_1_0(type), reqs, ELEMENTSOF(reqs), caps, ELEMENTSOF(caps)        \
    }
static const kind_info kinds[] = {
    [TEROK_PLUGIN_KIND_RUNTIME] = KIND("runtime", terok_runtime_ops, runtime_reqs, runtime_caps),
    [TEROK_PLUGIN_KIND_VAULT] = KIND("vault", terok_vault_ops, vault_reqs, vault_caps),
    [TEROK_PLUGIN_KIND_GATE] = KIND("gate", terok_gate_ops, gate_reqs, gate_caps),
    [TEROK_PLUGIN_KIND_SHIELD] = KIND("shield", terok_shield_ops, shield_reqs, shield_caps),
    [TEROK_PLUGIN_KIND_CLEARANCE] =
        KIND("clearance", terok_clearance_ops, clearance_reqs, clearance_caps),
};

/* Every ops table starts {uint32 struct_size; uint32 reserved0; uint64 caps}: read them alike. */
_Static_assert(offsetof(terok_runtime_ops, caps) == 8 && offsetof(terok_vault_ops, caps) == 8 &&
                   offsetof(terok_gate_ops, caps) == 8 && offsetof(terok_shield_ops, caps) == 8 &&
                   offsetof(terok_clearance_ops, caps) == 8,
               "ops tables share their header");
#define OPS_SIZE_MAX 4096u /* sanity bound on an ops table a plugin claims */

const kind_info *kind_info_get(uint32_t kind)
{
    if (kind == 0 || kind >= ELEMENTSOF(kinds) || !kinds[kind].name)
        return NULL;
    return &kinds[kind];
}

const char *plugin_kind_to_string(uint32_t kind)
{
    const kind_info *k = kind_info_get(kind);

    return k ? k->name : NULL;
}

int plugin_kind_from_string(const char *s)
{
    if (!s)
        return -EINVAL;
    for (uint32_t k = 1; k < ELEMENTSOF(kinds); k++)
        if (streq(s, kinds[k].name))
            return (int)k;
    return -EINVAL;
}

bool plugin_name_is_valid(const char *name)
{
    size_t n = 0;

    if (!name)
        return false;
    for (const char *c = name; *c; c++, n++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return false;
    return n > 0 && n <= PLUGIN_NAME_MAX;
}

const char *plugin_cap_name(uint32_t kind, unsigned bit)
{
    const kind_info *k = kind_info_get(kind);

    if (!k || bit >= k->n_caps)
        return NULL;
    return k->caps[bit];
}

char *plugin_caps_to_string(uint32_t kind, uint64_t caps)
{
    _cleanup_strv_free_ char **names = NULL;

    for (unsigned bit = 0; bit < 64; bit++) {
        if (!(caps & (UINT64_C(1) << bit)))
            continue;
        const char *n = plugin_cap_name(kind, bit);
        if ((n ? strv_extend(&names, n) : strv_extendf(&names, "bit%u", bit)) < 0)
            return NULL;
    }
    return names ? strv_join((const char *const *)names, ", ") : strdup("");
}

/* --- ownership and mode ------------------------------------------------------------------ */

/* The uid root's files show as when we run in a user namespace that does not map the initial
 * namespace's root (the rootless OCI hook runs in Podman's: the installed plugins, owned by
 * root, appear as the overflow uid), else (uid_t)-1. Such a namespace cannot tell root from
 * any other unmapped owner: a file showing this uid is accepted only when it is one whose
 * identity was recorded outside (loader_trust_unmapped). */
static uid_t unmapped_root_uid(void)
{
    static int cached = -1;
    static uid_t overflow = (uid_t)-1;
    char line[128];
    FILE *f;

    if (cached >= 0)
        return cached ? overflow : (uid_t)-1;
    cached = 0;
    f = fopen("/proc/self/uid_map", "re");
    if (!f)
        return (uid_t)-1;
    bool root_mapped = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long inside, outside, count;

        if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) == 3 && outside == 0 &&
            count > 0)
            root_mapped = true;
    }
    fclose(f);
    if (root_mapped)
        return (uid_t)-1;
    f = fopen("/proc/sys/kernel/overflowuid", "re");
    if (f) {
        unsigned long v;

        if (fscanf(f, "%lu", &v) == 1 && v > 0 && v < UINT32_MAX) {
            overflow = (uid_t)v;
            cached = 1;
        }
        fclose(f);
    }
    return cached ? overflow : (uid_t)-1;
}

/* Identities recorded outside the user namespace (`shield install-hooks` passes them to the
 * hook): there root's files are told from any other unmapped owner's by being these very
 * files. A directory by device and inode; a file by its change time too (a chown, chmod or
 * write after the recording changes it). */
typedef struct trusted_id {
    dev_t dev;
    ino_t ino;
    bool has_ctime;
    struct timespec ctime;
} trusted_id;
static trusted_id trusted[LOADER_TRUSTED_MAX];
static size_t n_trusted;

char *loader_file_id(const struct stat *st)
{
    char *s = NULL;

    if (S_ISDIR(st->st_mode))
        return asprintf(&s, "%ju:%ju", (uintmax_t)st->st_dev, (uintmax_t)st->st_ino) < 0 ? NULL : s;
    return asprintf(&s, "%ju:%ju:%jd.%09ld", (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
                    (intmax_t)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec) < 0
               ? NULL
               : s;
}

/* Decimal digits only, the whole uint64_t range: inode numbers use the top bits (overlayfs
 * keeps a layer's fsid there with xino, NFS file ids are any 64-bit value). */
static int parse_u64_digits(const char *s, uint64_t *ret)
{
    uint64_t v = 0;

    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (*s < '0' || *s > '9' || v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *ret = v;
    return 0;
}

int loader_trust_unmapped(const char *id)
{
    _cleanup_free_ char *copy = NULL;
    char *f[4] = {NULL}, *dot;
    uint64_t dev, ino;
    int64_t v[4] = {0};
    size_t n = 0;
    trusted_id t = {0};

    if (n_trusted >= ELEMENTSOF(trusted))
        return -E2BIG;
    if (!id || !(copy = strdup(id)))
        return id ? -ENOMEM : -EINVAL;
    /* DEV:INO (a directory) or DEV:INO:SEC.NSEC (a file), decimal digits only */
    for (char *p = copy; p && n < 3; n++) {
        f[n] = p;
        p = strchr(p, ':');
        if (p)
            *p++ = '\0';
        if (p && n == 2)
            return -EINVAL;
    }
    if (n == 3) {
        dot = strchr(f[2], '.');
        if (!dot)
            return -EINVAL;
        *dot = '\0';
        f[3] = dot + 1;
        n = 4;
    }
    if (n != 2 && n != 4)
        return -EINVAL;
    if (parse_u64_digits(f[0], &dev) < 0 || parse_u64_digits(f[1], &ino) < 0)
        return -EINVAL;
    for (size_t i = 2; i < n; i++)
        if (parse_int64(f[i], 0, i == 3 ? 999999999 : INT64_MAX, &v[i]) < 0)
            return -EINVAL;
    t.dev = (dev_t)dev;
    t.ino = (ino_t)ino;
    if ((uint64_t)t.dev != dev || (uint64_t)t.ino != ino)
        return -EINVAL;
    if (n == 4) {
        t.has_ctime = true;
        t.ctime = (struct timespec){.tv_sec = (time_t)v[2], .tv_nsec = (long)v[3]};
    }
    trusted[n_trusted++] = t;
    return 0;
}

void loader_trust_reset(void)
{
    n_trusted = 0;
}

static bool is_trusted(const struct stat *st)
{
    for (size_t i = 0; i < n_trusted; i++)
        if (trusted[i].dev == st->st_dev && trusted[i].ino == st->st_ino &&
            (!trusted[i].has_ctime || (trusted[i].ctime.tv_sec == st->st_ctim.tv_sec &&
                                       trusted[i].ctime.tv_nsec == st->st_ctim.tv_nsec)))
            return true;
    return false;
}

int owner_mode_problem(const struct stat *st, char *buf, size_t len)
{
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
    uid_t unmapped = unmapped_root_uid(), self = geteuid();

    if (self == unmapped)
        self = 0; /* we are unmapped ourselves: "our" files would be anyone's */
    if (st->st_uid != 0 && st->st_uid != self && st->st_uid == unmapped && !is_trusted(st)) {
        snprintf(buf, len,
                 "owned by an unmapped user (uid %u here), not as 'shield install-hooks' "
                 "recorded it; run that again",
                 (unsigned)st->st_uid);
        return -EPERM;
    }
    if (st->st_uid != 0 && st->st_uid != self && st->st_uid != unmapped) {
        snprintf(buf, len, "owned by uid %u, not by root or uid %u", (unsigned)st->st_uid,
                 (unsigned)self);
        return -EPERM;
    }
    if (w) {
        snprintf(buf, len, "writable by %s (mode %04o); run 'chmod go-w' on it",
                 w == (S_IWGRP | S_IWOTH) ? "group and others"
                 : w == S_IWGRP           ? "its group"
                                          : "others",
                 (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

int check_owner_mode(int fd, const char *path, const char *what, terok_error *err)
{
    struct stat st;
    char why[192];

    if (fstat(fd, &st) < 0) {
        int r = negative_errno();
        return terok_error_set(err, r, "cannot stat %s '%s': %s", what, path, strerror(-r));
    }
    if (owner_mode_problem(&st, why, sizeof why) < 0)
        return terok_error_set(err, -EPERM, "%s '%s' is %s", what, path, why);
    return 0;
}

/* --- rejections -------------------------------------------------------------------------- */

char *load_ctx_vformat(const load_ctx *l, const char *fmt, va_list ap)
{
    _cleanup_free_ char *what = NULL;
    char abi[32];
    char *m = NULL;

    if (vasprintf(&what, fmt, ap) < 0)
        return NULL;
    if (l->abi_known)
        snprintf(abi, sizeof abi, "%" PRIu32 ".%" PRIu32, l->abi_major, l->abi_minor);
    else
        snprintf(abi, sizeof abi, "?");
    if (asprintf(&m, "plugin '%s': %s (plugin ABI %s, host %u.%u)", l->path, what, abi,
                 TEROK_PLUGIN_ABI_MAJOR, TEROK_PLUGIN_ABI_MINOR) < 0)
        return NULL;
    return m;
}

int load_ctx_reject(const load_ctx *l, terok_error *err, int code, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    m = load_ctx_vformat(l, fmt, ap);
    va_end(ap);
    return terok_error_set(err, code, "%s", m ? m : "plugin rejected (out of memory)");
}

void load_ctx_done(load_ctx *l)
{
    l->path = free_null(l->path);
    l->kind = free_null(l->kind);
    l->name = free_null(l->name);
    l->version = free_null(l->version);
}

/* A version string is shown to the operator: keep it short and printable. */
static bool version_is_sane(const char *v)
{
    size_t n = 0;

    for (; v[n]; n++)
        if (n >= 64 || (unsigned char)v[n] < 0x20 || (unsigned char)v[n] >= 0x7f)
            return false;
    return n > 0;
}

/* --- loading ----------------------------------------------------------------------------- */

plugin *plugin_unload(plugin *p)
{
    if (!p)
        return NULL;
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p->label);
    free(p->name);
    free(p->version);
    free(p);
    return NULL;
}

/* dlopen the file behind *fd. glibc recognises an already-loaded object by its name first: if
 * an object that could not be unloaded still carries "/proc/self/fd/N" from an earlier load,
 * dlopen() would hand back that one. Move to another fd number until the name is fresh. */
static void *dlopen_fd(int *fd)
{
    char proc[64];

    for (unsigned attempt = 0; attempt < 64; attempt++) {
        struct link_map *lm = NULL;
        bool stale;
        void *h;
        int nfd;

        snprintf(proc, sizeof proc, "/proc/self/fd/%d", *fd);
        h = dlopen(proc, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        if (!h)
            return dlopen(proc, RTLD_NOW | RTLD_LOCAL);
        /* Loaded already: under another name it is this same file (glibc matched the inode),
         * which is fine; under this very name it is a stale object from a closed fd. */
        stale = dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && streq(lm->l_name, proc);
        dlclose(h);
        if (!stale)
            return dlopen(proc, RTLD_NOW | RTLD_LOCAL);
        nfd = fcntl(*fd, F_DUPFD_CLOEXEC, *fd + 1);
        if (nfd < 0)
            break;
        close(*fd);
        *fd = nfd;
    }
    return NULL;
}

static int check_ops(const load_ctx *l, const kind_info *ki, plugin *p, uint64_t required_caps,
                     terok_error *err)
{
    _cleanup_strv_free_ char **missing = NULL;
    uint64_t absent;

    for (size_t i = 0; i < ki->n_reqs; i++) {
        void (*fn)(void);

        if (ki->reqs[i].cap)
            continue;
        memcpy(&fn, (const char *)&p->ops + ki->reqs[i].offset, sizeof fn);
        if (!fn && strv_extend(&missing, ki->reqs[i].name) < 0)
            return -ENOMEM;
    }
    if (missing) {
        _cleanup_free_ char *list = strv_join((const char *const *)missing, ", ");
        return load_ctx_reject(l, err, -EPROTO, "lacks required %s op%s: %s", ki->name,
                               strv_length(missing) > 1 ? "s" : "", strna(list));
    }

    for (size_t i = 0; i < ki->n_reqs; i++) {
        void (*fn)(void);
        unsigned bit;

        if (!ki->reqs[i].cap || !(p->caps & ki->reqs[i].cap))
            continue;
        memcpy(&fn, (const char *)&p->ops + ki->reqs[i].offset, sizeof fn);
        if (fn)
            continue;
        bit = (unsigned)__builtin_ctzll(ki->reqs[i].cap);
        return load_ctx_reject(l, err, -EPROTO, "claims capability '%s' but has no '%s' op",
                               ki->caps[bit], ki->reqs[i].name);
    }

    absent = required_caps & ~p->caps;
    if (absent) {
        _cleanup_free_ char *names = plugin_caps_to_string(p->kind, absent);
        return load_ctx_reject(l, err, -EOPNOTSUPP,
                               "lacks capabilities the configuration requires: %s", strna(names));
    }
    return 0;
}

/* The descriptor is the plugin's: read only what its struct_size covers. */
static int check_desc(load_ctx *l, const kind_info *ki, plugin *p, const terok_plugin_desc *desc,
                      uint64_t required_caps, terok_error *err)
{
    const kind_info *declared;
    uint32_t ops_size;

    if (!desc)
        return load_ctx_reject(l, err, -EPROTO, "terok_plugin_init() returned no descriptor");
    if (desc->struct_size >= offsetof(terok_plugin_desc, abi_minor) + sizeof(uint32_t)) {
        l->abi_known = true;
        l->abi_major = desc->abi_major;
        l->abi_minor = desc->abi_minor;
    }
    if (desc->struct_size < TEROK_PLUGIN_DESC_SIZE_1_0)
        return load_ctx_reject(l, err, -EPROTO,
                               "descriptor too short (%" PRIu32 " bytes, ABI 1.0 needs %zu)",
                               desc->struct_size, (size_t)TEROK_PLUGIN_DESC_SIZE_1_0);
    if (desc->version && version_is_sane(desc->version) && !l->version)
        l->version = strdup(desc->version);
    if (desc->abi_major != TEROK_PLUGIN_ABI_MAJOR)
        return load_ctx_reject(l, err, -EPROTO,
                               "built for another major version of the plugin ABI; rebuild it "
                               "against this terok-sandbox's SDK");
    if (desc->abi_minor > TEROK_PLUGIN_ABI_MINOR)
        return load_ctx_reject(l, err, -EPROTO,
                               "built for a newer plugin ABI than this terok-sandbox speaks; "
                               "upgrade terok-sandbox or rebuild the plugin against its SDK");
    if (desc->kind != p->kind) {
        declared = kind_info_get(desc->kind);
        if (!declared)
            return load_ctx_reject(l, err, -EPROTO, "declares unknown plugin kind %" PRIu32,
                                   desc->kind);
        return load_ctx_reject(l, err, -EPROTO,
                               "is a %s plugin, but its file name says %s; name it %s-%s.so",
                               declared->name, ki->name, declared->name, p->name);
    }
    if (!desc->name)
        return load_ctx_reject(l, err, -EPROTO, "descriptor has no name");
    if (!streq(desc->name, p->name))
        return load_ctx_reject(l, err, -EPROTO, "calls itself '%.64s', but its file name says '%s'",
                               plugin_name_is_valid(desc->name) ? desc->name : "(invalid)",
                               p->name);
    if (!desc->version || !version_is_sane(desc->version))
        return load_ctx_reject(l, err, -EPROTO,
                               "descriptor has no version, or one that is not 1-64 printable "
                               "characters");
    if (!desc->ops)
        return load_ctx_reject(l, err, -EPROTO, "descriptor has no ops table");

    memcpy(&ops_size, desc->ops, sizeof ops_size);
    if (ops_size < ki->ops_size_1_0)
        return load_ctx_reject(l, err, -EPROTO,
                               "%s ops table too short (%" PRIu32 " bytes, ABI 1.0 needs %zu)",
                               ki->name, ops_size, ki->ops_size_1_0);
    if (ops_size > OPS_SIZE_MAX)
        return load_ctx_reject(l, err, -EPROTO,
                               "%s ops table claims %" PRIu32 " bytes (at most %u are plausible)",
                               ki->name, ops_size, OPS_SIZE_MAX);
    /* Members the plugin lacks read NULL; members this host does not know are ignored. */
    memset(&p->ops, 0, sizeof p->ops);
    memcpy(&p->ops, desc->ops, MIN((size_t)ops_size, ki->ops_size));
    memcpy(&p->caps, (const char *)&p->ops + 8, sizeof p->caps);

    p->version = strdup(desc->version);
    if (!p->version)
        return -ENOMEM;
    p->abi_major = desc->abi_major;
    p->abi_minor = desc->abi_minor;
    return check_ops(l, ki, p, required_caps, err);
}

int loader_load_ctx(const char *dir, uint32_t kind, const char *name, uint64_t required_caps,
                    load_ctx *l, plugin **ret, terok_error *err)
{
    _cleanup_(plugin_unloadp) plugin *p = NULL;
    _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
    _cleanup_free_ char *file = NULL;
    _cleanup_error_ terok_error perr = TEROK_ERROR_INIT;
    const terok_plugin_desc *desc = NULL;
    const kind_info *ki = kind_info_get(kind);
    terok_plugin_init_fn init;
    struct stat st;
    void *sym;
    char why[160];
    int r;

    if (!ki)
        return terok_error_set(err, -EINVAL, "unknown plugin kind %" PRIu32, kind);
    if (!plugin_name_is_valid(name))
        return terok_error_set(err, -EINVAL,
                               "invalid %s backend name '%.80s': use 1-%d characters of a-z, 0-9 "
                               "and '-'",
                               ki->name, strempty(name), PLUGIN_NAME_MAX);
    if (isempty(dir))
        return terok_error_set(err, -EINVAL, "no plugin directory configured");
    if (asprintf(&file, "%s-%s.so", ki->name, name) < 0)
        return -ENOMEM;
    if (!l->path && asprintf(&l->path, "%s%s%s", dir, str_endswith(dir, "/") ? "" : "/", file) < 0)
        return -ENOMEM;
    if (!l->kind && !(l->kind = strdup(ki->name)))
        return -ENOMEM;
    if (!l->name && !(l->name = strdup(name)))
        return -ENOMEM;

    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        r = negative_errno();
        /* -ELIBACC, not -ENOENT: a missing plugin is a backend problem (exit 5), not a
         * missing container or object (exit 4) */
        if (r == -ENOENT)
            return load_ctx_reject(l, err, -ELIBACC, "plugin directory '%s' does not exist", dir);
        return load_ctx_reject(l, err, r, "cannot open plugin directory '%s': %s", dir,
                               strerror(-r));
    }
    if (fstat(dfd, &st) < 0)
        return load_ctx_reject(l, err, negative_errno(), "cannot stat plugin directory '%s'", dir);
    if (owner_mode_problem(&st, why, sizeof why) < 0)
        return load_ctx_reject(l, err, -EPERM, "plugin directory '%s' is %s", dir, why);

    /* O_NONBLOCK: a FIFO planted under the plugin's name must not hang us before fstat. */
    fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        r = negative_errno();
        if (r == -ELOOP)
            return load_ctx_reject(l, err, -EPERM,
                                   "refusing symlinked plugin: install the file itself");
        if (r == -ENOENT)
            return load_ctx_reject(l, err, -ELIBACC,
                                   "no such file; 'terok-sandbox plugins list' shows the "
                                   "installed plugins");
        return load_ctx_reject(l, err, r, "cannot open: %s", strerror(-r));
    }
    if (fstat(fd, &st) < 0)
        return load_ctx_reject(l, err, negative_errno(), "cannot stat the opened file");
    if (!S_ISREG(st.st_mode))
        return load_ctx_reject(l, err, -EPERM, "not a regular file");
    if (owner_mode_problem(&st, why, sizeof why) < 0)
        return load_ctx_reject(l, err, -EPERM, "file is %s", why);

    p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->kind = kind;
    p->path = strdup(l->path);
    p->name = strdup(name);
    if (!p->path || !p->name || asprintf(&p->label, "%s-%s", ki->name, name) < 0)
        return -ENOMEM;

    p->dl = dlopen_fd(&fd);
    if (!p->dl) {
        const char *e = dlerror();
        return load_ctx_reject(l, err, -ELIBBAD, "cannot load: %s", e ? e : "dlopen failed");
    }
    sym = dlsym(p->dl, TEROK_PLUGIN_INIT_SYMBOL);
    if (!sym)
        return load_ctx_reject(l, err, -ELIBBAD,
                               "no symbol '%s': not a terok-sandbox plugin, or not built with "
                               "TEROK_PLUGIN_DEFINE",
                               TEROK_PLUGIN_INIT_SYMBOL);
    memcpy(&init, &sym, sizeof init); /* POSIX: a data pointer from dlsym() is the function */

    r = init(p, host_table(), &desc, &perr);
    if (r < 0)
        return load_ctx_reject(l, err, r, "initialisation failed: %s",
                               perr.message ? perr.message : strerror(-r));
    r = check_desc(l, ki, p, desc, required_caps, err);
    if (r < 0)
        return r;

    *ret = take_ptr(&p);
    return 0;
}

int loader_load(const char *dir, uint32_t kind, const char *name, uint64_t required_caps,
                plugin **ret, terok_error *err)
{
    _cleanup_(load_ctx_done) load_ctx l = {0};

    return loader_load_ctx(dir, kind, name, required_caps, &l, ret, err);
}

int plugin_file_parse(const char *file, uint32_t *ret_kind, char **ret_name)
{
    for (uint32_t k = 1; k < ELEMENTSOF(kinds); k++) {
        size_t kl = strlen(kinds[k].name), fl = strlen(file);
        _cleanup_free_ char *name = NULL;

        if (fl <= kl + 1 + 3 || !strneq(file, kinds[k].name, kl) || file[kl] != '-' ||
            !str_endswith(file, ".so"))
            continue;
        name = strndup(file + kl + 1, fl - kl - 1 - 3);
        if (!name)
            return -ENOMEM;
        if (!plugin_name_is_valid(name))
            return -EINVAL;
        *ret_kind = k;
        *ret_name = take_ptr(&name);
        return 0;
    }
    return -EINVAL;
}

int loader_load_file_ctx(const char *path, load_ctx *l, plugin **ret, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *name = NULL;
    const char *slash = strrchr(path, '/');
    const char *file = slash ? slash + 1 : path;
    uint32_t kind;
    int r;

    if (!l->path && !(l->path = strdup(path)))
        return -ENOMEM;
    r = plugin_file_parse(file, &kind, &name);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return load_ctx_reject(l, err, -EINVAL,
                               "file name is not <kind>-<name>.so (kinds: runtime, vault, gate, "
                               "shield, clearance; name: 1-%d of a-z, 0-9, '-')",
                               PLUGIN_NAME_MAX);
    dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -ENOMEM;
    return loader_load_ctx(dir, kind, name, 0, l, ret, err);
}

int loader_load_file(const char *path, plugin **ret, terok_error *err)
{
    _cleanup_(load_ctx_done) load_ctx l = {0};

    return loader_load_file_ctx(path, &l, ret, err);
}
