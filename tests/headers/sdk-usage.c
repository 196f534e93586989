/* SPDX-License-Identifier: Apache-2.0 */
/* sdk-usage.c: the SDK's plugin-side macros as a plugin author writes them (plugin.h's example),
 * compiled as strict C11 by tests/headers/meson.build: a macro that only builds in gnu mode or
 * that trips -pedantic would break every third-party plugin built with -Werror. */
#include <stddef.h>

#include "terok/clearance.h"
#include "terok/gate.h"
#include "terok/plugin.h"
#include "terok/runtime.h"
#include "terok/shield.h"
#include "terok/vault.h"

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("socket", TEROK_CONFIG_STRING, "auto", "Podman API socket, or 'auto'")
        TEROK_CONFIG_KEY("timeout", TEROK_CONFIG_DURATION, "30s", "API call timeout")
            TEROK_CONFIG_KEY("mode", TEROK_CONFIG_ENUM("auto|rootful|rootless"), "auto",
                             "How to reach Podman"));

static int example_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                        terok_error *err)
{
    const char *socket = NULL;
    int r;

    (void)self;
    if (!ret_state)
        return terok_perr(err, -22, "%s: no place for the state", "open");
    r = terok_plugin__host->config_get(cfg, "socket", &socket);
    if (r < 0)
        return terok_perr(err, r, "cannot read 'socket'");
    if (TEROK_HOST_HAS(terok_plugin__host, runtime_dir))
        terok_plog(TEROK_LOG_DEBUG, "runtime dir %s", terok_plugin__host->runtime_dir(self));
    *ret_state = NULL;
    return 0;
}

static void example_close(void *state)
{
    (void)state;
}

static const terok_runtime_ops example_ops = {
    sizeof(terok_runtime_ops),
    0,
    TEROK_RUNTIME_CAP_ROOTLESS,
    example_open,
    example_close,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_RUNTIME, "example", "0.1.0", &example_ops)
