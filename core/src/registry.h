/* SPDX-License-Identifier: Apache-2.0 */
/* registry.h: the configured backends. Loads a kind's backend on first use (only that one),
 * checks the capabilities the config asks of it, and opens one instance with its config
 * section. Wrappers in runtime.h etc. call through it. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "loader.h"
#include "paths.h"

typedef struct registry registry;

int registry_new(config *cfg, const paths *p, registry **ret, terok_error *err);
registry *registry_free(registry *r); /* closes instances, then unloads */

/* The configured backend name for a kind ("podman"), or NULL when the kind is set to "none". */
const char *registry_backend_name(registry *r, uint32_t kind);
/* Load and open the kind's backend. *ret_plugin and *ret_state are borrowed from the registry.
 * -ENODEV (with a message) when the kind is configured as "none". */
int registry_get(registry *r, uint32_t kind, uint64_t required_caps, plugin **ret_plugin,
                 void **ret_state, terok_error *err);
