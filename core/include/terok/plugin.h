/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/plugin.h: the one contract a terok-sandbox plugin is built against.
 *
 * A plugin is a shared object `<kind>-<name>.so` exporting exactly one symbol,
 * terok_plugin_init(). It reaches the host only through the terok_host table it is handed
 * (build with -Wl,-z,defs and a version script exporting only that symbol) and describes
 * itself with a terok_plugin_desc whose `ops` points to the kind's ops table
 * (runtime.h, vault.h, gate.h, shield.h, clearance.h).
 *
 * ABI rules (both sides check):
 *  - a different TEROK_PLUGIN_ABI_MAJOR is refused by host and plugin;
 *  - a plugin built for a newer minor than the host is refused by the host;
 *  - structs only ever grow at the end; each starts with its own struct_size; the host copies
 *    an ops table into a zeroed struct of its own size, so members a plugin lacks read NULL;
 *  - a struct the host passes to a plugin that is larger than the plugin knows must have an
 *    all-zero tail, else the plugin returns -E2BIG (terok_struct_tail_is_zero() checks it);
 *  - no enum-typed fields: uint32_t plus an enum of values.
 *
 * Ownership: memory a plugin hands to the host comes from host->alloc/strdup; memory the host
 * hands to a plugin stays the host's. Descriptor strings and ops tables are static storage.
 * Errors: return 0 or a negative errno, and fill `err` with terok_perr(). Plugins never print
 * and never exit; they log with terok_plog(). Decisions are out-parameters: an error is a deny.
 */
#ifndef TEROK_PLUGIN_H
#define TEROK_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "terok/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEROK_PLUGIN_ABI_MAJOR 1u /* bump: every plugin must be rebuilt */
#define TEROK_PLUGIN_ABI_MINOR 0u /* bump: something was appended somewhere */
#define TEROK_PLUGIN_INIT_SYMBOL "terok_plugin_init"
/* ELF section holding a plugin's config-key declarations; the host reads it from the file
 * without running any plugin code (see TEROK_PLUGIN_CONFIG_KEYS). */
#define TEROK_PLUGIN_KEYS_SECTION ".terok.config"

enum {
    TEROK_PLUGIN_KIND_RUNTIME = 1,
    TEROK_PLUGIN_KIND_VAULT = 2,
    TEROK_PLUGIN_KIND_GATE = 3,
    TEROK_PLUGIN_KIND_SHIELD = 4,
    TEROK_PLUGIN_KIND_CLEARANCE = 5,
};

/* syslog priorities, repeated so the header needs no <syslog.h>. */
enum {
    TEROK_LOG_ERR = 3,
    TEROK_LOG_WARNING = 4,
    TEROK_LOG_NOTICE = 5,
    TEROK_LOG_INFO = 6,
    TEROK_LOG_DEBUG = 7,
};

/* Decisions are never return codes (C4). Any error from the op that produced one is DENY. */
enum {
    TEROK_DECISION_ABSTAIN = 0,
    TEROK_DECISION_ALLOW = 1,
    TEROK_DECISION_DENY = 2,
};

/* Opaque host-side handles. */
typedef struct terok_plugin terok_plugin;                 /* one per loaded plugin */
typedef struct terok_config_section terok_config_section; /* the plugin's own [kind.name] */
typedef struct terok_secret terok_secret;                 /* host-owned, wiped on free */

/* The table the host gives every plugin. Grows at the end only; a plugin built against a newer
 * SDK tests TEROK_HOST_HAS(host, member) before calling a member added after 1.0. */
typedef struct terok_host {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t reserved0;

    /* --- ABI 1.0 --- */
    /* Log one line; the host prefixes "[<kind>-<name>] " and routes it to the operator's log. */
    void (*logv)(terok_plugin *self, int priority, const char *fmt, va_list ap);
    /* Format into *err (may be NULL) and return `code` (always < 0; 0 becomes -EIO). */
    int (*errorv)(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap);
    /* Memory that crosses toward the host. */
    void *(*alloc)(size_t n);
    void (*free)(void *p);
    char *(*strdup)(const char *s);
    /* Secrets: copied into locked, wiped memory. peek borrows; the pointer lives as long as s. */
    int (*secret_new)(const void *data, size_t len, terok_secret **ret_secret);
    void (*secret_free)(terok_secret *s);
    int (*secret_peek)(const terok_secret *s, const void **ret_data, size_t *ret_len);
    /* Config: effective value of a declared key in the plugin's own section (default applied).
     * Returns 0 and sets *ret_value (borrowed, valid while the section lives), -ENOENT when the
     * key has no value, -EINVAL when it was not declared. Typed getters parse as config check
     * validated, so they do not fail on a checked config. */
    int (*config_get)(const terok_config_section *sec, const char *key, const char **ret_value);
    int (*config_get_bool)(const terok_config_section *sec, const char *key, int *ret_value);
    int (*config_get_int)(const terok_config_section *sec, const char *key, int64_t *ret_value);
    /* Paths the operator configured for state; the plugin keeps its files under
     * <state_dir>/<kind>-<name>/ and its sockets under <runtime_dir>/. Borrowed strings. */
    const char *(*state_dir)(terok_plugin *self);
    const char *(*runtime_dir)(terok_plugin *self);
    /* ABI 1.0 ends here; append only */
} terok_host;

#define TEROK_HOST_HAS(h, member)                                                                  \
    (offsetof(terok_host, member) + sizeof((h)->member) <= (h)->struct_size && (h)->member)

/* The plugin's self-description. Static storage in the plugin. */
typedef struct terok_plugin_desc {
    uint32_t struct_size; /* sizeof(terok_plugin_desc) as the plugin was compiled */
    uint32_t abi_major;   /* TEROK_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;   /* TEROK_PLUGIN_ABI_MINOR */
    uint32_t kind;        /* TEROK_PLUGIN_KIND_* */
    const char *name;     /* "null": must match the file name runtime-null.so */
    const char *version;  /* the plugin's own version */
    const void *ops;      /* const terok_<kind>_ops *, static storage */
    /* ABI 1.0 ends here; append only */
} terok_plugin_desc;

/* The 1.0 size of the descriptor; the host refuses anything shorter. */
#define TEROK_PLUGIN_DESC_SIZE_1_0 (offsetof(terok_plugin_desc, ops) + sizeof(const void *))

typedef int (*terok_plugin_init_fn)(terok_plugin *self, const terok_host *host,
                                    const terok_plugin_desc **ret_desc, terok_error *err);

/* Config key types, written in a key declaration as the type string. */
#define TEROK_CONFIG_STRING "string"
#define TEROK_CONFIG_PATH "path"         /* absolute path */
#define TEROK_CONFIG_BOOL "bool"         /* yes/no/true/false/on/off/1/0 */
#define TEROK_CONFIG_INT "int"           /* signed 64-bit; "int:MIN:MAX" bounds it */
#define TEROK_CONFIG_SIZE "size"         /* bytes with K/M/G/T suffixes (1024-based) */
#define TEROK_CONFIG_DURATION "duration" /* 500ms, 10s, 5m, 2h, 1d; stored as milliseconds */
#define TEROK_CONFIG_ENUM(choices) "enum:" choices /* "enum:auto|rootful|rootless" */

/* One key declaration: name, type, default ("" = none), help. Field separator \037, record
 * separator \036 (ASCII unit/record separators) so help text may hold any printable text. */
#define TEROK_CONFIG_KEY(name, type, def, help) name "\037" type "\037" def "\037" help "\036"

/*
 * Plugin-side helpers. A plugin source file says:
 *
 *     TEROK_PLUGIN_CONFIG_KEYS(
 *         TEROK_CONFIG_KEY("socket", TEROK_CONFIG_STRING, "auto", "Podman API socket, or 'auto'")
 *         TEROK_CONFIG_KEY("timeout", TEROK_CONFIG_DURATION, "30s", "API call timeout"));
 *     static const terok_runtime_ops ops = { .struct_size = sizeof ops, ... };
 *     TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_RUNTIME, "podman", "0.1.0", &ops)
 *
 * and then uses terok_plog()/terok_perr() anywhere in the plugin.
 */
#if defined(__GNUC__) || defined(__clang__)
#define TEROK_PLUGIN_EXPORT __attribute__((visibility("default")))
#define TEROK_PLUGIN_HIDDEN __attribute__((visibility("hidden")))
#define TEROK_PLUGIN_CONFIG_KEYS(decls)                                                            \
    __attribute__((section(TEROK_PLUGIN_KEYS_SECTION), used,                                       \
                   aligned(1))) static const char terok_plugin__config_keys[] = decls
#else
#define TEROK_PLUGIN_EXPORT
#define TEROK_PLUGIN_HIDDEN
#define TEROK_PLUGIN_CONFIG_KEYS(decls) static const char terok_plugin__config_keys[] = decls
#endif

/* Set by TEROK_PLUGIN_DEFINE's init; hidden, so each plugin has its own. */
extern TEROK_PLUGIN_HIDDEN const terok_host *terok_plugin__host;
extern TEROK_PLUGIN_HIDDEN terok_plugin *terok_plugin__self;

static inline void terok_plog(int priority, const char *fmt, ...) TEROK_PRINTF(2, 3);
static inline void terok_plog(int priority, const char *fmt, ...)
{
    va_list ap;

    if (!terok_plugin__host)
        return;
    va_start(ap, fmt);
    terok_plugin__host->logv(terok_plugin__self, priority, fmt, ap);
    va_end(ap);
}

/* Fill *err (may be NULL) and return `code`, a negative errno. `%m` is not supported: pass
 * strerror(-code) yourself. */
static inline int terok_perr(terok_error *err, int code, const char *fmt, ...) TEROK_PRINTF(3, 4);
static inline int terok_perr(terok_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (!terok_plugin__host)
        return code < 0 ? code : -5 /* EIO */;
    va_start(ap, fmt);
    r = terok_plugin__host->errorv(terok_plugin__self, err, code, fmt, ap);
    va_end(ap);
    return r;
}

/* For a struct handed in by the host: nonzero when every byte past `known` (the size this
 * plugin was built with) up to `given` is zero, i.e. no newer field is set that we would ignore. */
static inline int terok_struct_tail_is_zero(const void *s, size_t given, size_t known)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    for (i = known; i < given; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Defines terok_plugin_init(): refuses a host of another major, records host and self, and
 * hands back the descriptor. Use once per plugin, at file scope, without a trailing semicolon. */
#define TEROK_PLUGIN_DEFINE(kind_, name_, version_, ops_)                                          \
    TEROK_PLUGIN_HIDDEN const terok_host *terok_plugin__host;                                      \
    TEROK_PLUGIN_HIDDEN terok_plugin *terok_plugin__self;                                          \
    static const terok_plugin_desc terok_plugin__desc = {sizeof(terok_plugin_desc),                \
                                                         TEROK_PLUGIN_ABI_MAJOR,                   \
                                                         TEROK_PLUGIN_ABI_MINOR,                   \
                                                         (kind_),                                  \
                                                         (name_),                                  \
                                                         (version_),                               \
                                                         (ops_)};                                  \
    TEROK_PLUGIN_EXPORT int terok_plugin_init(terok_plugin *self, const terok_host *host,          \
                                              const terok_plugin_desc **ret_desc,                  \
                                              terok_error *err);                                   \
    TEROK_PLUGIN_EXPORT int terok_plugin_init(terok_plugin *self, const terok_host *host,          \
                                              const terok_plugin_desc **ret_desc,                  \
                                              terok_error *err)                                    \
    {                                                                                              \
        (void)err;                                                                                 \
        if (!host || !ret_desc || host->abi_major != TEROK_PLUGIN_ABI_MAJOR ||                     \
            host->struct_size < offsetof(terok_host, runtime_dir) + sizeof(host->runtime_dir))     \
            return -71 /* EPROTO: we cannot even report through this host */;                      \
        terok_plugin__host = host;                                                                 \
        terok_plugin__self = self;                                                                 \
        *ret_desc = &terok_plugin__desc;                                                           \
        return 0;                                                                                  \
    }

#ifdef __cplusplus
}
#endif

#endif /* TEROK_PLUGIN_H */
