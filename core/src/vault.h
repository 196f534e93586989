/* SPDX-License-Identifier: Apache-2.0 */
/* vault.h: core wrappers over the vault backend's ops: a NULL op or a missing capability is
 * -EOPNOTSUPP with a message naming the backend; context is added to every error. The only way
 * core code reaches a vault plugin. Never prints, never sees a secret it does not hand on. */
#pragma once

#include "registry.h"
#include "terok/vault.h"

typedef struct vault {
    plugin *plugin;
    void *state;
} vault;

int vault_open(registry *r, uint64_t required_caps, vault *ret, terok_error *err);

int vault_put(vault *v, const char *name, const terok_secret *value, const char *type,
              const char *metadata, terok_error *err);
int vault_get(vault *v, const char *name, terok_secret **ret, terok_error *err);
int vault_remove(vault *v, const char *name, terok_error *err);
int vault_list(vault *v, terok_vault_entry_cb cb, void *userdata, terok_error *err);
int vault_status(vault *v, terok_vault_status_cb cb, void *userdata, terok_error *err);
int vault_unlock(vault *v, const terok_secret *passphrase, terok_error *err);
int vault_lock(vault *v, terok_error *err);
int vault_ctl(vault *v, uint32_t op, void *arg, terok_error *err);
bool vault_has_cap(const vault *v, uint64_t cap);
/* A name the vault and the CLI accept: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128. */
bool vault_name_is_valid(const char *name);
