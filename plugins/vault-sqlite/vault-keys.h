/* SPDX-License-Identifier: Apache-2.0 */
/* vault-keys.h: key-slot helpers shared by vault-keys.c (provision, unlock) and vault-rekey.c
 * (passphrase change, rekey). Internal to the plugin. */
#pragma once

#include "vault-db.h"
#include "vault-state.h"

#define PW_PARAMS_LEN (VC_SALT_BYTES + 16) /* salt, opslimit, memlimit (little-endian u64) */

/* "systemd-creds: not installed; keyring: no session key cached; ..." for the fail-closed
 * message. Reasons never hold key material. */
typedef struct trail {
    char buf[2048];
    size_t len;
} trail;
void keys_trail_add(trail *t, ks_kind k, const char *why);

static inline void free_charp(char **p)
{
    free(*p);
    *p = NULL;
}

/* TAKE_PTR without a statement expression (-Wpedantic). */
static inline unsigned char *take_key(unsigned char **p)
{
    unsigned char *k = *p;

    *p = NULL;
    return k;
}

/* Takes ownership of dek; derives the subkeys. */
int keys_set(vault *v, unsigned char *dek, int64_t key_gen, int by);
int keys_try_unlock(vault *v, const terok_secret *pass, bool pass_only, terok_error *err);
int keys_load_slots(vault *v, int64_t *ret_gen, vdb_slot **ret, size_t *ret_n, terok_error *err);
const vdb_slot *keys_slot_find(const vdb_slot *s, size_t n, ks_kind k);
int keys_slot_make(vault *v, ks_kind k, const unsigned char *kek, const void *params,
                   size_t params_len, const unsigned char *dek, int64_t key_gen, vdb_slot *s);
/* A new passphrase slot's params (fresh salt, configured limits) and its KEK. */
int keys_passphrase_new(vault *v, const terok_secret *pass, unsigned char *params,
                        unsigned char *kek, char **why);
/* A new slot for source k (provisioning or rekey): 0 with *made when made; 0 without when the
 * source has nothing to offer now (reason in *why); < 0 when an existing slot cannot be
 * renewed or the source failed hard. */
int keys_slot_provision(vault *v, ks_kind k, const terok_secret *pass, const vdb_slot *old,
                        bool have_other, const unsigned char *dek, int64_t gen, vdb_slot *out,
                        bool *made, char **why);
int keys_index_store(sqlite3 *db, const unsigned char *dbid, const unsigned char *index_key,
                     int64_t key_gen, int64_t counter);
