/* SPDX-License-Identifier: Apache-2.0 */
/* loader.h: finding, checking and loading plugins (DESIGN §3). Only the backend the config names
 * is loaded, by name [a-z0-9-]+, from the configured directory; directory and file must be owned
 * by root or the operator and writable by no one else; the opened file is checked and that very
 * file dlopen()ed (RTLD_NOW|RTLD_LOCAL via /proc/self/fd); the ABI is checked on both sides;
 * the ops table is copied by struct_size into a zeroed host struct. Every rejection names the
 * file and both ABI versions. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "terok/clearance.h"
#include "terok/gate.h"
#include "terok/plugin.h"
#include "terok/runtime.h"
#include "terok/shield.h"
#include "terok/vault.h"

/* Host-side handle of a loaded plugin (opaque to plugins as terok_plugin). */
struct terok_plugin {
    char *path;  /* <dir>/<kind>-<name>.so */
    char *label; /* "<kind>-<name>", the log prefix */
    uint32_t kind;
    char *name;
    char *version;
    uint32_t abi_major, abi_minor;
    uint64_t caps;
    void *dl;
    const terok_config_section *config; /* may be NULL */
    const char *state_dir;              /* borrowed from the registry's paths */
    const char *runtime_dir;
    union {
        terok_runtime_ops runtime;
        terok_vault_ops vault;
        terok_gate_ops gate;
        terok_shield_ops shield;
        terok_clearance_ops clearance;
    } ops;
};
typedef struct terok_plugin plugin;

const char *plugin_kind_to_string(uint32_t kind); /* "runtime", ...; NULL if unknown */
int plugin_kind_from_string(const char *s);       /* TEROK_PLUGIN_KIND_* or -EINVAL */
bool plugin_name_is_valid(const char *name);      /* [a-z0-9-]+, at most 64 */
/* Caps names for display: writes "exec,logs" etc. Returns a static table entry per bit. */
const char *plugin_cap_name(uint32_t kind, unsigned bit);
/* "exec, logs" for a caps mask (unknown bits as "bitN"); caller frees; NULL on OOM. */
char *plugin_caps_to_string(uint32_t kind, uint64_t caps);

/* Owner/mode policy: owner root or the caller's euid, no group/other write. `what` names it in
 * the message ("plugin directory", "plugin", "config file"). */
int check_owner_mode(int fd, const char *path, const char *what, terok_error *err);

/* Inside a user namespace that does not map root (the rootless OCI hook), root's files show as
 * the overflow uid like any other unmapped user's. Such a file or directory passes the owner
 * check only when its identity was recorded outside, where the owner is visible: `shield
 * install-hooks` records the plugin directory and the shield plugin with loader_file_id() and
 * the hook hands them back to loader_trust_unmapped(). "DEV:INO" (a directory) or
 * "DEV:INO:SEC.NSEC" (a file, with its change time). -EINVAL when malformed, -E2BIG past
 * LOADER_TRUSTED_MAX. */
#define LOADER_TRUSTED_MAX 8
char *loader_file_id(const struct stat *st); /* caller frees; NULL on OOM */
int loader_trust_unmapped(const char *id);
void loader_trust_reset(void);

/* Load <dir>/<kind>-<name>.so. `required_caps` are checked against the plugin's ops caps. */
int loader_load(const char *dir, uint32_t kind, const char *name, uint64_t required_caps,
                plugin **ret, terok_error *err);
/* Load a given file for probing (kind and name come from the file name). */
int loader_load_file(const char *path, plugin **ret, terok_error *err);
plugin *plugin_unload(plugin *p);

/* The host table handed to plugins (host.c). */
const terok_host *host_table(void);

/* `plugins list`: probe every *.so in dir, each in a forked child so a crashing plugin cannot
 * take the caller down. One callback per file, sorted by file name. */
typedef struct plugin_probe {
    const char *file;   /* base name */
    const char *status; /* "ok", "rejected", "crashed" */
    const char *kind;   /* may be NULL when rejected */
    const char *name;
    const char *version;
    uint32_t abi_major, abi_minor;
    const char *const *caps; /* cap names */
    const char *reason;      /* when not ok */
} plugin_probe;
typedef int (*plugin_probe_cb)(void *userdata, const plugin_probe *probe);
int loader_probe_dir(const char *dir, plugin_probe_cb cb, void *userdata, terok_error *err);
/* How long one probe child may take before it is killed and shown as crashed (default 5000). */
void loader_set_probe_timeout(unsigned timeout_ms);
