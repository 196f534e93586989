/* SPDX-License-Identifier: Apache-2.0 */
/* tokens.h: core-owned bearer tokens for containers: vault phantom tokens ("terok-p-…", bound to
 * a container and a broker route) and gate tokens ("terok-g-…", bound to a container, a repo
 * and rights). 256 random bits each; only a keyed hash (HMAC-SHA-256 under a per-installation
 * key kept 0600 in the state dir) is stored, so a copy of the database gives no usable token.
 * Optional expiry; revocable one by one or per container. Never prints, never logs a token. */
#pragma once

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "secret.h"
#include "terok/error.h"

#define TOKEN_KEY_BYTES 32
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_PREFIX_PHANTOM "terok-p-"
#define TOKEN_PREFIX_GATE "terok-g-"
/* prefix + base64url of 32 bytes (43 chars) */
#define TOKEN_TEXT_MAX 64

enum {
    TOKEN_KIND_PHANTOM = 'p',
    TOKEN_KIND_GATE = 'g',
};

/* SQL creating the table (used by the store's migrations). */
extern const char tokens_schema_sql[];

/* Load <state_dir>/token.key (creating it, 0600, O_NOFOLLOW|O_EXCL, on first use). */
int tokens_key_load(const char *state_dir, uint8_t key[TOKEN_KEY_BYTES], terok_error *err);

typedef struct token_binding {
    int kind;              /* TOKEN_KIND_* */
    const char *container; /* the container it was minted for */
    const char *target;    /* route name (phantom) or repo (gate) */
    uint32_t rights;       /* gate: TEROK_GATE_READ/WRITE; phantom: 0 */
    int64_t expires_at;    /* unix seconds; 0 = until revoked */
} token_binding;

/* Mint: stores the hash and returns the token text (a secret; wiped on free) and its id. */
int tokens_mint(sqlite3 *db, const uint8_t key[TOKEN_KEY_BYTES], const token_binding *b,
                terok_secret **ret_token, int64_t *ret_id, terok_error *err);

/* Verdict of a lookup. Never an error for a bad token: errors are for a broken store. */
typedef enum token_verdict {
    TOKEN_VALID = 0,
    TOKEN_MALFORMED, /* not a token of this kind at all */
    TOKEN_UNKNOWN,   /* well-formed, but never minted or revoked */
    TOKEN_EXPIRED,
    TOKEN_WRONG_CONTAINER,
    TOKEN_WRONG_TARGET,
} token_verdict;

typedef struct token_info {
    int64_t id;
    char container[128];
    char target[128];
    uint32_t rights;
    int64_t expires_at;
} token_info;

/* Check a presented token against the container whose socket it arrived on and the target it
 * asks for (NULL target: any). Constant-time over the token bytes; *ret_info is filled for
 * TOKEN_VALID, WRONG_CONTAINER and WRONG_TARGET (for the audit). */
int tokens_check(sqlite3 *db, const uint8_t key[TOKEN_KEY_BYTES], int kind, const char *token,
                 size_t token_len, const char *container, const char *target, int64_t now,
                 token_verdict *ret_verdict, token_info *ret_info, terok_error *err);
const char *token_verdict_to_string(token_verdict v);

/* Revoke: one token by id, or every token of a container (kind 0 = all kinds). Returns the count.
 * Like tokens_mint, each commits on its own (autocommit) and then bumps the token epoch: do not
 * wrap them in a transaction, the bump would come before the commit. */
int tokens_revoke_id(sqlite3 *db, int64_t id, terok_error *err);
int tokens_revoke_container(sqlite3 *db, const char *container, int kind, terok_error *err);

/* Listing, masked: the cb gets the binding and a display form like "terok-p-…a1b2" built from
 * the hash (the token itself is not stored, so it cannot be shown). */
typedef int (*tokens_list_cb)(void *userdata, const token_info *info, int kind, const char *masked,
                              int64_t created_at);
int tokens_list(sqlite3 *db, const char *container, tokens_list_cb cb, void *userdata,
                terok_error *err);

/* The token epoch: <directory of the database>/tokens.epoch, one 64-bit counter that every token
 * write above bumps (an atomic add through a shared mapping) after its commit. The vault daemon
 * maps it read-only and compares it on each check, so a revocation by another process is seen on
 * the very next request without a syscall. 0600, owned by the user of the state dir (rootless:
 * the user, rootful: root); a file that is not ours is refused. Never truncate it while a daemon
 * runs (its mapping would fault). */
#define TOKENS_EPOCH_FILE "tokens.epoch"
typedef _Atomic uint64_t tokens_epoch;

/* Map <dir>/tokens.epoch, creating it (0600, 8 zero bytes) if missing; read-only unless
 * writable. It must be ours and 0600; for root, the directory owner's (root working on a
 * user's state directory gives the file it made, or an older root-owned one, to that user, whose
 * daemon maps it). Free with tokens_epoch_unmap(). */
int tokens_epoch_map(const char *dir, bool writable, tokens_epoch **ret, terok_error *err);
tokens_epoch *tokens_epoch_unmap(tokens_epoch *e);

static inline uint64_t tokens_epoch_read(const tokens_epoch *e)
{
    /* acquire: a reader that sees a bump then sees the commit before it */
    return atomic_load_explicit((tokens_epoch *)e, memory_order_acquire);
}

/* After a committed token change on db: bump the epoch next to its file. Best effort: the
 * change is committed whatever this returns, and a daemon that missed the bump still sees the
 * write through its inotify watch of the directory (a loop turn later, not on the very next
 * check). An in-memory database has no epoch (0). */
int tokens_epoch_bump(sqlite3 *db, terok_error *err);
