/* SPDX-License-Identifier: Apache-2.0 */
/* store.h: the state store (DESIGN §6): one SQLite database in WAL mode under the state dir,
 * schema-versioned with forward migrations. Every writer runs in a transaction (BEGIN
 * IMMEDIATE, busy timeout), so concurrent CLI invocations and daemons serialise instead of
 * corrupting. Holds containers and their wiring; later: tokens (hashed), grants, shield
 * decisions, audit. Never prints. */
#pragma once

#include <stdint.h>

#include "terok/error.h"
#include "util/macro.h"

typedef struct store store;

#define STORE_SCHEMA_VERSION 3

/* Opens (creating, 0600, O_NOFOLLOW semantics) <state_dir>/state.db and migrates it. A database
 * from a newer schema than we know is refused with a message naming both versions. */
int store_open(const char *state_dir, store **ret, terok_error *err);
store *store_close(store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(store, store_close)
int store_schema_version(store *s);
/* The connection, for modules that keep their own tables in the store (tokens, audit). Borrowed;
 * use it from the thread that opened the store only. */
struct sqlite3 *store_sqlite(store *s);

int store_begin(store *s, terok_error *err); /* BEGIN IMMEDIATE */
int store_commit(store *s, terok_error *err);
void store_rollback(store *s);

/* A container the core manages. */
typedef struct container_rec {
    char *name;
    char *id; /* runtime id, NULL before create succeeded */
    char *image;
    char *runtime;   /* backend name, e.g. "null", "podman" */
    char *spec_json; /* the spec as applied (hardening and relaxations), JSON object text */
    int64_t created_at;
} container_rec;
void container_rec_done(container_rec *r);

/* Insert; -EEXIST (with a message naming it) when the name is taken. */
int store_container_add(store *s, const container_rec *r, terok_error *err);
int store_container_set_id(store *s, const char *name, const char *id, terok_error *err);
/* -ENOENT when absent (no message set: callers word it). */
int store_container_get(store *s, const char *name, container_rec *ret, terok_error *err);
/* Idempotent: 0 when absent, 1 when a row was removed. */
int store_container_remove(store *s, const char *name, terok_error *err);
typedef int (*store_container_cb)(void *userdata, const container_rec *r);
int store_container_list(store *s, store_container_cb cb, void *userdata, terok_error *err);
