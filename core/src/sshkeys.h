/* SPDX-License-Identifier: Apache-2.0 */
/* sshkeys.h: SSH keys as vault entries and their scopes. A key is a vault entry of type
 * "ssh-ed25519": the 32-byte seed is the secret; the metadata holds the public key, its
 * fingerprint and comment. Scopes are names a container is run with (`run --ssh-scope S`); the
 * links key<->scope and container->scope live in the state store (ssh_links,
 * ssh_container_scopes). Never prints; never puts key material in a message. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>

#include "sshkey.h"
#include "vault.h"

#define SSH_SCOPE_MAX 64

/* [A-Za-z0-9][A-Za-z0-9._-]*, at most SSH_SCOPE_MAX. */
bool ssh_scope_is_valid(const char *scope);

/* Creates the tables when missing (idempotent). */
int sshkeys_schema(sqlite3 *db, terok_error *err);

typedef struct sshkey_info {
    const char *name;
    uint8_t pk[SSHKEY_PK_BYTES];
    const char *comment; /* may be NULL */
    const char *fingerprint;
    int64_t created_at;
} sshkey_info;
/* Return non-zero to stop. */
typedef int (*sshkey_info_cb)(void *userdata, const sshkey_info *k);

/* Store a key under name (replacing an SSH key of that name; -EEXIST when the name holds a
 * vault entry of another type). */
int sshkeys_put(vault *v, const char *name, const sshkey *k, terok_error *err);
/* The public side of one key: -ENOENT when absent, -EMEDIUMTYPE when the entry is not an SSH
 * key (both with a message). */
int sshkeys_find(vault *v, const char *name, sshkey_info_cb cb, void *userdata, terok_error *err);
/* Every SSH key in the vault. */
int sshkeys_list(vault *v, sshkey_info_cb cb, void *userdata, terok_error *err);
/* The private key of name, checked against pk (the public key the caller trusts). */
int sshkeys_load(vault *v, const char *name, sshkey *ret, terok_error *err);

/* Links (state store). link/unlink return 1 when something changed, 0 when it already was so. */
int sshkeys_link(sqlite3 *db, const char *scope, const char *name, terok_error *err);
int sshkeys_unlink(sqlite3 *db, const char *scope, const char *name, terok_error *err);
int sshkeys_unlink_all(sqlite3 *db, const char *name, terok_error *err);
/* Scopes of a key, in link order; NULL-terminated, caller frees (strv_free). */
int sshkeys_scopes_of(sqlite3 *db, const char *name, char ***ret, terok_error *err);
/* Key names linked to a scope, in link order. */
int sshkeys_keys_of(sqlite3 *db, const char *scope, char ***ret, terok_error *err);
/* The keys of a scope that exist in the vault, in link order (what the agent offers). */
int sshkeys_scope_identities(vault *v, sqlite3 *db, const char *scope, sshkey_info_cb cb,
                             void *userdata, terok_error *err);

/* Which scope a container runs with (set by run, read by the daemon, removed by rm). */
int sshkeys_container_set(sqlite3 *db, const char *container, const char *scope, terok_error *err);
/* 0 and *ret (caller frees) or -ENOENT without a message. */
int sshkeys_container_scope(sqlite3 *db, const char *container, char **ret, terok_error *err);
int sshkeys_container_forget(sqlite3 *db, const char *container, terok_error *err);
