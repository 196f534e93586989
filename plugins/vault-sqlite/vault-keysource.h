/* SPDX-License-Identifier: Apache-2.0 */
/* vault-keysource.h: where a key-encryption key (KEK) comes from. Each source either yields a
 * 32-byte KEK (in guarded memory) or says, in one operator-readable phrase, why it could not.
 * Sources: systemd-creds (a random KEK sealed by `systemd-creds encrypt`, the sealed blob kept in
 * the key slot), the kernel keyring (a random session KEK under the user keyring with a timeout,
 * filled by unlock), a passphrase (Argon2id; from the unlock argument or passphrase-command), a
 * key file (0600, owned by us, O_NOFOLLOW). No function here touches the database. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vault-crypto.h"

typedef enum ks_kind {
    KS_SYSTEMD_CREDS,
    KS_KEYRING,
    KS_PASSPHRASE,
    KS_KEY_FILE,
    KS_MAX,
} ks_kind;

const char *ks_name(ks_kind k);
int ks_from_name(const char *s); /* ks_kind or -EINVAL */
bool ks_survives_reboot(ks_kind k);
bool ks_is_weak(ks_kind k);

/* "systemd-creds keyring passphrase key-file" → kinds in order. Unknown or repeated names →
 * -EINVAL with *ret_bad pointing at a malloc'd copy of the offending word. */
int ks_parse_chain(const char *s, ks_kind chain[KS_MAX], size_t *ret_n, char **ret_bad);

typedef struct ks_config {
    unsigned char dbid[VC_DBID_BYTES]; /* names the keyring key and the sealed credential */
    char *creds_binary;                /* "systemd-creds" */
    char *creds_with_key;              /* auto|host|tpm2|host+tpm2 */
    char *key_file;                    /* absolute path */
    char **passphrase_argv;            /* NULL when no passphrase-command is configured */
    int timeout_ms;                    /* for helpers */
    int64_t keyring_timeout_s;
} ks_config;
void ks_config_done(ks_config *c);

/* Every function returns 0 or -errno; on failure *ret_reason (malloc'd, may be left NULL on
 * ENOMEM) says why, never containing key material. */

/* systemd-creds: seal a fresh KEK → blob for the slot's params; unseal a slot's blob → KEK. */
int ks_creds_seal(const ks_config *c, const unsigned char *kek, unsigned char **ret_blob,
                  size_t *ret_len, char **ret_reason);
int ks_creds_unseal(const ks_config *c, const void *blob, size_t len, unsigned char *ret_kek,
                    char **ret_reason);

/* Kernel keyring (user keyring, key type "user"). read: -ENOKEY when absent or expired. */
int ks_keyring_read(const ks_config *c, unsigned char *ret_kek, char **ret_reason);
int ks_keyring_store(const ks_config *c, const unsigned char *kek, char **ret_reason);
int ks_keyring_forget(const ks_config *c); /* 0 also when there was nothing */
bool ks_keyring_present(const ks_config *c);

/* passphrase-command: its stdout with one trailing newline removed, in sodium_malloc memory
 * (*ret_pass freed with sodium_free). -ENOENT when none is configured. */
int ks_passphrase_command(const ks_config *c, unsigned char **ret_pass, size_t *ret_len,
                          char **ret_reason);

/* Key file: 64 hex digits (a 256-bit key) and an optional newline. read refuses a file that is
 * a symlink, not regular, not ours, or readable/writable by group or others. create makes it
 * with O_EXCL|O_NOFOLLOW, mode 0600; -EEXIST when someone else won. */
int ks_key_file_read(const ks_config *c, unsigned char *ret_kek, char **ret_reason);
int ks_key_file_create(const ks_config *c, unsigned char *ret_kek, char **ret_reason);
bool ks_key_file_present(const ks_config *c);
