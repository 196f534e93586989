/* SPDX-License-Identifier: Apache-2.0 */
/* vault-db.h: the vault's SQLite file — creation (0600, O_NOFOLLOW, owner check), pragmas (WAL,
 * synchronous=FULL, secure_delete, busy timeout), the versioned schema and its migrations, and
 * plain row access for meta, keyslots and entries. Knows nothing about keys: every blob it
 * reads or writes is already sealed. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "terok/plugin.h"
#include "vault-crypto.h"

#define VDB_SCHEMA_VERSION 1

/* Opens (creating the file and any missing parent directories, 0700) and migrates. */
int vdb_open(const char *path, sqlite3 **ret, terok_error *err);
void vdb_close(sqlite3 *db);

int vdb_exec(sqlite3 *db, const char *sql, terok_error *err);
int vdb_begin_read(sqlite3 *db, terok_error *err);
int vdb_begin_write(sqlite3 *db, terok_error *err); /* BEGIN IMMEDIATE */
int vdb_commit(sqlite3 *db, terok_error *err);
void vdb_rollback(sqlite3 *db);   /* no-op outside a transaction */
void vdb_checkpoint(sqlite3 *db); /* truncate the WAL: old wrapped keys leave the disk */

/* meta: db_id (blob), key_gen, counter (ints), index_mac (blob). -ENOENT when absent. */
int vdb_meta_get_int(sqlite3 *db, const char *key, int64_t *ret);
int vdb_meta_set_int(sqlite3 *db, const char *key, int64_t v);
int vdb_meta_get_blob(sqlite3 *db, const char *key, void *buf, size_t len);
int vdb_meta_set_blob(sqlite3 *db, const char *key, const void *buf, size_t len);

typedef struct vdb_slot {
    char source[32];
    unsigned char *params; /* malloc'd: public parameters (salt+limits, sealed blob, ...) */
    size_t params_len;
    unsigned char nonce[VC_NONCE_BYTES];
    unsigned char wrapped[VC_WRAPPED_BYTES];
} vdb_slot;
void vdb_slots_free(vdb_slot *s, size_t n);
int vdb_slots_load(sqlite3 *db, vdb_slot **ret, size_t *ret_n);
int vdb_slot_put(sqlite3 *db, const vdb_slot *s);
int vdb_slot_delete(sqlite3 *db, const char *source);
int vdb_slots_clear(sqlite3 *db);

typedef struct vdb_entry {
    char *name, *type, *metadata; /* metadata may be NULL */
    int64_t created_at, updated_at, version;
    unsigned char nonce[VC_NONCE_BYTES];
    unsigned char *ct; /* NULL when loaded without ciphertext */
    size_t ct_len;
} vdb_entry;
void vdb_entry_done(vdb_entry *e);
int vdb_entry_get(sqlite3 *db, const char *name, vdb_entry *ret); /* -ENOENT */
int vdb_entry_put(sqlite3 *db, const vdb_entry *e);               /* upsert */
int vdb_entry_delete(sqlite3 *db, const char *name);              /* -ENOENT */
/* In name order; with_ct loads ciphertexts too. cb returning < 0 stops and is returned. */
typedef int (*vdb_entry_cb)(void *ud, const vdb_entry *e);
int vdb_entry_foreach(sqlite3 *db, bool with_ct, vdb_entry_cb cb, void *ud);
int64_t vdb_entry_count(sqlite3 *db);
