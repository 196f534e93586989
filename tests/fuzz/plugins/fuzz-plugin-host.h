/* SPDX-License-Identifier: Apache-2.0 */
/* The host table the plugin fuzz targets hand to a plugin compiled into them: errors into a
 * terok_error, logging into a buffer (never printed: the fuzzer's output stays readable, and the
 * last line can be checked for secrets), secrets in plain heap memory, config from a fixed list. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "terok/plugin.h"

/* NULL-terminated key, value pairs the config getters answer from; set before opening. */
extern const char *const *fuzz_host_config;
/* state_dir and runtime_dir. */
extern const char *fuzz_host_dir;
/* The last line the plugin logged ("" when none). */
extern char fuzz_host_last_log[1024];

/* The plugin compiled into the target defines it (TEROK_PLUGIN_DEFINE). */
TEROK_PLUGIN_EXPORT int terok_plugin_init(terok_plugin *self, const terok_host *host,
                                          const terok_plugin_desc **ret_desc, terok_error *err);

/* The plugin's terok_plugin_init through our table; returns its ops. Aborts when the plugin
 * refuses the table. */
const void *fuzz_host_init(void);
/* Free the message and reset the record. */
void fuzz_error_clear(terok_error *err);
/* Whether the n bytes at p occur inside s (a NUL-terminated message). */
bool fuzz_mem_in(const char *s, const void *p, size_t n);
