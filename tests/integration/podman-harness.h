/* SPDX-License-Identifier: Apache-2.0 */
/* podman-harness.h: load runtime-podman.so the way the host does (dlopen, terok_plugin_init
 * with a host table) without the core loader, for integration tests and bench/launch-driver.
 * The host table routes errors to terok_error_setv and plugin logs to stderr. */
#pragma once

#include "terok/runtime.h"

/* Configuration of the plugin's section: key/value pairs, {NULL, NULL}-terminated. */
typedef struct harness_kv {
    const char *key;
    const char *value;
} harness_kv;

/* dlopen `so_path` and run terok_plugin_init; returns the ops (static in the plugin). */
int harness_load(const char *so_path, const terok_runtime_ops **ret_ops, terok_error *err);
/* Directories the host table reports to the plugin; read by the plugin at open(). */
void harness_set_dirs(const char *state_dir, const char *runtime_dir);
/* ops->open with `cfg` as the plugin's config section (may be NULL). */
int harness_open(const terok_runtime_ops *ops, const harness_kv *cfg, void **ret_state,
                 terok_error *err);
/* Free a string the plugin handed over (host->strdup). */
void harness_free(void *p);
/* Plugin log lines at or below this priority go to stderr (default TEROK_LOG_WARNING). */
void harness_set_log_level(int priority);
