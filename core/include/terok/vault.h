/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok/vault.h: the credential store interface (vault-sqlite, vault-secretservice, yours).
 *
 * A vault keeps named secrets and their metadata. It never hands out a value except through
 * get(), and never lists values. Secrets cross the ABI as host-owned terok_secret objects
 * (locked memory, wiped on free). Phantom tokens, routes and audit belong to the core.
 */
#ifndef TEROK_VAULT_H
#define TEROK_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "terok/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TEROK_VAULT_CAP_PERSISTENT (UINT64_C(1) << 0)        /* survives a reboot */
#define TEROK_VAULT_CAP_ENCRYPTED_AT_REST (UINT64_C(1) << 1) /* values encrypted on disk */
#define TEROK_VAULT_CAP_WRITE (UINT64_C(1) << 2)             /* put/remove work */
#define TEROK_VAULT_CAP_NEEDS_UNLOCK (UINT64_C(1) << 3)      /* unlock before use */

/* One entry as listed: never a value. */
typedef struct terok_vault_entry {
    uint32_t struct_size;
    uint32_t reserved0;
    const char *name;
    const char *type;     /* "api-key", "oauth", "ssh-ed25519", "password", ... */
    const char *metadata; /* JSON object text, or NULL */
    int64_t created_at;   /* unix seconds */
    int64_t updated_at;
} terok_vault_entry;
typedef int (*terok_vault_entry_cb)(void *userdata, const terok_vault_entry *entry);

#define TEROK_VAULT_STATUS_LOCKED (1u << 0)
#define TEROK_VAULT_STATUS_SURVIVES_REBOOT (1u << 1) /* the key source survives a reboot */
#define TEROK_VAULT_STATUS_WEAK_KEY_SOURCE (1u << 2) /* e.g. a key file next to the data */
typedef struct terok_vault_status {
    uint32_t struct_size;
    uint32_t flags;         /* TEROK_VAULT_STATUS_* */
    const char *key_source; /* "systemd-creds", "keyring", "passphrase", "key-file", ... */
    const char *detail;     /* one sentence for the operator */
    const char *location;   /* where the data lives */
    int64_t entries;
} terok_vault_status;
typedef int (*terok_vault_status_cb)(void *userdata, const terok_vault_status *status);

typedef struct terok_vault_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t caps; /* TEROK_VAULT_CAP_* */

    /* --- ABI 1.0 --- */
    int (*open)(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                terok_error *err);
    void (*close)(void *state);
    /* Store or replace. type and metadata (JSON object text) may be NULL. Needs CAP_WRITE. */
    int (*put)(void *state, const char *name, const terok_secret *value, const char *type,
               const char *metadata, terok_error *err);
    /* *ret_secret from host->secret_new; -ENOENT when absent; -EACCES when locked. */
    int (*get)(void *state, const char *name, terok_secret **ret_secret, terok_error *err);
    int (*remove)(void *state, const char *name, terok_error *err); /* -ENOENT when absent */
    int (*list)(void *state, terok_vault_entry_cb cb, void *userdata, terok_error *err);
    int (*status)(void *state, terok_vault_status_cb cb, void *userdata, terok_error *err);
    /* NEEDS_UNLOCK backends: passphrase may be NULL to use the configured key sources. */
    int (*unlock)(void *state, const terok_secret *passphrase, terok_error *err);
    int (*lock)(void *state, terok_error *err);
    int (*ctl)(void *state, uint32_t op, void *arg, terok_error *err);
    /* --- append below this line only; bump TEROK_PLUGIN_ABI_MINOR --- */
} terok_vault_ops;

#define TEROK_VAULT_OPS_SIZE_1_0 (offsetof(terok_vault_ops, ctl) + sizeof(void (*)(void)))

enum {
    TEROK_VAULT_CTL_CHANGE_PASSPHRASE = 1, /* arg: terok_vault_ctl_rekey * */
    TEROK_VAULT_CTL_REKEY = 2,             /* arg: terok_vault_ctl_rekey * */
};
typedef struct terok_vault_ctl_rekey {
    uint32_t struct_size;
    uint32_t reserved0;
    const terok_secret *old_passphrase; /* NULL: from the key sources */
    const terok_secret *new_passphrase; /* NULL: a fresh random key for REKEY */
} terok_vault_ctl_rekey;

#ifdef __cplusplus
}
#endif

#endif /* TEROK_VAULT_H */
