/* SPDX-License-Identifier: Apache-2.0 */
/* paths.h: where configuration, state and runtime files live (DESIGN §6). Root uses
 * /etc/terok-sandbox, /var/lib/terok-sandbox, /run/terok-sandbox; everyone else the XDG
 * equivalents. TEROK_SANDBOX_STATE_DIR / TEROK_SANDBOX_RUNTIME_DIR override (tests use them). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "terok/error.h"

typedef struct paths {
    char *system_config_dir; /* /etc/terok-sandbox */
    char *user_config_dir;   /* $XDG_CONFIG_HOME/terok-sandbox, NULL for root */
    char *state_dir;         /* /var/lib/terok-sandbox or $XDG_STATE_HOME/terok-sandbox */
    char *runtime_dir;       /* /run/terok-sandbox or $XDG_RUNTIME_DIR/terok-sandbox */
    bool root;
} paths;

/* Resolves (does not create). */
int paths_resolve(paths *p, terok_error *err);
void paths_done(paths *p);

/* mkdir -p with `mode` for every created component below an existing parent; an existing final
 * directory must be owned by us and not group/world-writable (else -EPERM with a message). */
int mkdir_safe(const char *path, mode_t mode, terok_error *err);
/* A container name is a single safe path component: [a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}. */
bool container_name_is_valid(const char *name);
/* paths_resolve() for a given uid (0 = the root layout); tests use it to check both layouts. */
int paths_resolve_as(paths *p, uid_t uid, terok_error *err);

/* The daemon executable (terok-sandbox-daemon: the CLI plus the HTTP daemons, which link libcurl
 * and libmicrohttpd the CLI does without): next to this binary (the build tree), else the
 * installed libexec copy. NULL when there is none. */
char *daemon_exe_path(void);
