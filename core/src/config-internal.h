/* SPDX-License-Identifier: Apache-2.0 */
/* config-internal.h: what the config files (config.c, config-load.c, config-validate.c,
 * config-schema.c, parse-util.c, plugin-keys.c) share. Not for other modules: use config.h. */
#pragma once

#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"
#include "error.h"
#include "util/macro.h"

#define CONFIG_MAX_LINE 4096          /* bytes per line, without the newline */
#define CONFIG_MAX_FILE (1024 * 1024) /* bytes per file */
#define CONFIG_MAX_PROBLEMS 1000      /* beyond this, further problems are dropped */

/* One `key = value` as read, in read order (later entries win). */
typedef struct config_entry {
    char *section;
    char *key;
    char *value;
    size_t file; /* index into config.files */
    unsigned line;
    char *origin; /* "FILE:LINE" */
} config_entry;

/* One `[section]` header as read. */
typedef struct config_section_ref {
    char *name;
    size_t file;
    unsigned line;
} config_section_ref;

/* A plugin's section with its declared keys; what plugins see as terok_config_section. */
struct terok_config_section {
    config *config;
    char *kind;
    char *name;
    char *section; /* "<kind>.<name>" */
    config_key *keys;
    size_t n_keys;
    bool schema_read; /* tried */
    int schema_error; /* < 0 when the plugin file could not be read */
    char *schema_message;
};

struct config {
    char **files; /* read, in order */
    config_entry *entries;
    size_t n_entries;
    config_section_ref *sections;
    size_t n_sections;
    config_problem *problems;
    size_t n_problems;
    struct terok_config_section **plugins;
    size_t n_plugins;
    const char **prefix_result; /* config_sections_with_prefix() */
    bool validated;
};

/* config.c */
int config_problem_add(config *c, const char *file, unsigned line, bool warning, const char *fmt,
                       ...) _printf_(5, 6);
int config_entry_add(config *c, size_t file, unsigned line, const char *section, const char *key,
                     const char *value);
int config_section_ref_add(config *c, size_t file, unsigned line, const char *name);
const config_entry *config_find(const config *c, const char *section, const char *key);
/* The schema of a plugin section, read from <plugin-dir>/<kind>-<name>.so on first use. */
struct terok_config_section *config_plugin_schema(config *c, const char *kind, const char *name);
/* Effective value of a typed key as a number: int, size (bytes), duration (ms), decimal
 * (thousandths). */
int config_value_to_int(const char *type, const char *value, int64_t *ret);

/* config-load.c: owner/mode policy for a config file or directory (or, in validation, a plugin
 * file): owned by root or the euid, not group/other-writable, of the expected file type. On
 * refusal returns -EPERM and a message ("refusing ...; run '...'") in *ret_why. */
int config_check_owner_mode(const struct stat *st, const char *path, const char *what, bool dir,
                            char **ret_why);

/* config-schema.c */
typedef struct config_schema_section {
    const char *name;
    const config_key *keys;
    size_t n_keys;
} config_schema_section;
extern const config_schema_section config_core_schema[];
extern const size_t config_core_schema_n;
extern const config_schema_section config_route_schema; /* [route.NAME] */
extern const char *const config_plugin_kinds[];         /* "runtime", ..., NULL */
const config_schema_section *config_core_section(const char *name);
const config_key *config_schema_key(const config_schema_section *s, const char *key);
bool config_kind_is_valid(const char *kind);
bool config_route_name_is_valid(const char *name);

/* parse-util.c */
/* Like config_check_value(); value NULL checks only the type string. -EPROTO: unknown type. */
int config_check_type(const char *type, const char *value, char **ret_why);
bool config_type_is_valid(const char *type);
bool envvar_name_is_valid(const char *s);
bool backend_name_is_valid(const char *s); /* [a-z0-9-]{1,64} */
bool cap_name_is_valid(const char *s);
int parse_decimal_milli(const char *s, int64_t *ret);
/* NULL when s[0..n) is UTF-8 without NUL or control characters other than tab; else what is
 * wrong ("contains a NUL byte", ...), possibly formatted into tmp. */
const char *config_text_problem(const unsigned char *s, size_t n, char *tmp, size_t sz);
