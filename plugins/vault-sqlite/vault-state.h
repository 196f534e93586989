/* SPDX-License-Identifier: Apache-2.0 */
/* vault-state.h: one open vault, shared by the ops (vault-sqlite.c) and key management
 * (vault-keys.c). The data key and its subkeys live only in sodium_malloc() memory. */
#pragma once

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "terok/vault.h"
#include "vault-crypto.h"
#include "vault-keysource.h"

typedef struct vault {
    pthread_mutex_t mu; /* held by every op (vault-sqlite.c) */
    sqlite3 *db;
    char *path;
    ks_config ks;
    ks_kind chain[KS_MAX];
    size_t chain_len;
    unsigned long long opslimit; /* Argon2id for new passphrase slots */
    size_t memlimit;
    unsigned char dbid[VC_DBID_BYTES];

    /* Unlocked: all three set, for key generation key_gen, opened through opened_by. */
    unsigned char *dek, *entry_key, *index_key;
    int64_t key_gen;
    int opened_by; /* ks_kind, or -1 */
} vault;

bool vault_chain_has(const vault *v, ks_kind k);

/* Forget the keys held in memory. */
void keys_drop(vault *v);

/* Make sure the in-memory keys match the database's current key generation, unlocking through
 * the configured chain (and provisioning a fresh vault) when needed. -EACCES when locked. */
int keys_ensure(vault *v, terok_error *err);
/* Inside a transaction: -EAGAIN when another process rekeyed since keys_ensure(). */
int keys_check_gen(vault *v, terok_error *err);

/* The unlock/lock ops. passphrase NULL: use the chain. */
int keys_unlock(vault *v, const terok_secret *passphrase, terok_error *err);
int keys_lock(vault *v, terok_error *err);
/* First-use provisioning at open(); failures are logged, not returned (status explains). */
void keys_provision_quietly(vault *v);

int keys_change_passphrase(vault *v, const terok_vault_ctl_rekey *arg, terok_error *err);
int keys_rekey(vault *v, const terok_vault_ctl_rekey *arg, terok_error *err);

/* The index MAC over every entry header (inside a transaction, with keys). */
int index_verify(vault *v, terok_error *err);
int index_update(vault *v, int64_t counter, terok_error *err);

/* Slot presence for status (no unsealing, no helper runs). */
int keys_probe(vault *v, bool ret_has_slot[KS_MAX]);

/* Test builds only (vault-sqlite-faulty.so): TEROK_VAULT_FAULT=<point>[:<n>] makes the process
 * SIGKILL itself there, to prove a crash mid-transaction leaves a working vault. */
#ifdef TEROK_VAULT_FAULT_INJECTION
void fault_point(const char *point, long n);
#else
#define fault_point(point, n) ((void)0)
#endif
