/* SPDX-License-Identifier: Apache-2.0 */
/* config.h: the operator's configuration (DESIGN §5). INI files parsed with libinih: the system
 * file and its sandbox.conf.d/ drop-ins, then the user's, later wins; --config FILE or
 * $TEROK_SANDBOX_CONFIG replaces the chain. Values are checked against declared keys (the core's
 * and each configured plugin's, read from the plugin file without running it). Every value
 * remembers where it came from. Never prints. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"
#include "util/macro.h"

typedef struct config config;

/* A problem found while loading or validating: reported as "file:line: message". */
typedef struct config_problem {
    char *file;    /* NULL for problems not tied to a file */
    unsigned line; /* 0 when the problem concerns the whole file */
    char *message;
    bool warning; /* reported, but does not make the config invalid */
} config_problem;

/* A declared key (core schema, or parsed from a plugin's TEROK_PLUGIN_KEYS_SECTION). */
typedef struct config_key {
    const char *name;
    const char *type; /* TEROK_CONFIG_* type string, e.g. "int:1:65535", "enum:a|b" */
    const char *def;  /* "" = no default */
    const char *help;
} config_key;

/* Load the files. `explicit_file` (from --config; NULL to use $TEROK_SANDBOX_CONFIG or the
 * chain) replaces the chain. Content problems do not fail the load: they are collected (see
 * config_problems), and so are files refused for their owner, mode or type. Fails only when
 * nothing sensible can be built: an explicit file that does not exist (-ENOENT), out of memory.
 * `system_dir`/`user_dir` come from paths (user_dir may be NULL). */
int config_load(const char *explicit_file, const char *system_dir, const char *user_dir,
                config **ret, terok_error *err);
config *config_free(config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(config, config_free)

/* Check every value against the core schema and the schemas of the configured plugins (found in
 * the configured plugin dir; their files are read, never loaded). Adds problems; returns the
 * number of problems now recorded that are not warnings (0 = valid). Idempotent. */
int config_validate(config *c);
size_t config_problems(const config *c, const config_problem **ret);

/* Effective values: the file's value, else the declared default, else NULL. config_get_int
 * gives sizes in bytes, durations in milliseconds and decimals in thousandths. */
const char *config_get(const config *c, const char *section, const char *key);
int config_get_bool(const config *c, const char *section, const char *key, bool *ret);
int config_get_int(const config *c, const char *section, const char *key, int64_t *ret);
/* "FILE:LINE" of the value, "default", or NULL when the key has no value. */
const char *config_origin(const config *c, const char *section, const char *key);

/* Effective config for `config show`: every declared key with a value, plus the plugin sections
 * and route sections present. origin as config_origin(). Nonzero from cb stops. */
typedef int (*config_show_cb)(void *userdata, const char *section, const char *key,
                              const char *value, const char *origin);
int config_foreach(const config *c, config_show_cb cb, void *userdata);
/* Files that were read, in order (NULL-terminated, borrowed). */
const char *const *config_files(const config *c);

/* Names of sections matching "prefix.*" (e.g. "route") in file order. Borrowed strings;
 * returns count. */
size_t config_sections_with_prefix(const config *c, const char *prefix, const char ***ret);

/* The opaque section a plugin reads through the host table. Borrowed from c. Returned even when
 * the files set no key in it, so the plugin sees its declared defaults; NULL only for an invalid
 * kind or name, or out of memory. */
terok_config_section *config_plugin_section(config *c, const char *kind, const char *name);
/* Host-table implementations (plugin.h semantics). */
int config_section_get(const terok_config_section *sec, const char *key, const char **ret);
int config_section_get_bool(const terok_config_section *sec, const char *key, int *ret);
int config_section_get_int(const terok_config_section *sec, const char *key, int64_t *ret);

/* Value parsing shared by the config and the CLI (strict: whole string, range-checked). */
int parse_bool(const char *s, bool *ret);
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);
int parse_size(const char *s, uint64_t *ret);       /* "512", "64k", "1.5G" not allowed */
int parse_duration_ms(const char *s, int64_t *ret); /* "500ms", "10s", "5m", "2h", "1d", "30" = s */
/* Check `value` against a type string; on failure returns -EINVAL and a message in *ret_why. */
int config_check_value(const char *type, const char *value, char **ret_why);
/* Read a plugin's key declarations from its file (libelf; no code runs). */
int plugin_keys_read(int fd, config_key **ret_keys, size_t *ret_n, terok_error *err);
void plugin_keys_free(config_key *keys, size_t n);
