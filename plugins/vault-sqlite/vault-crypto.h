/* SPDX-License-Identifier: Apache-2.0 */
/* vault-crypto.h: the vault's cryptography (libsodium only): keys in guarded memory, the data
 * key (DEK) wrapped per key slot, entries sealed with XChaCha20-Poly1305 under associated data
 * that names the database, the key generation and the entry's whole header, an index MAC over
 * every entry header, and Argon2id for passphrases. Nothing here touches SQLite or logs. */
#pragma once

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define VC_KEY_BYTES 32u  /* DEK, KEK, subkeys */
#define VC_DBID_BYTES 16u /* random per-database id, bound into every AD */
#define VC_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VC_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define VC_WRAPPED_BYTES (VC_KEY_BYTES + VC_TAG_BYTES)
#define VC_SALT_BYTES crypto_pwhash_SALTBYTES
#define VC_MAC_BYTES 32u

int vc_init(void); /* sodium_init(); -EIO when libsodium cannot start */

/* A key lives in sodium_malloc() memory (guard pages, mlock where allowed, wiped on free). */
unsigned char *vc_key_new(void);    /* NULL on ENOMEM */
unsigned char *vc_key_random(void); /* a fresh random key, NULL on ENOMEM */
unsigned char *vc_key_free(unsigned char *k);
unsigned char *vc_key_dup(const unsigned char *k);
static inline void vc_key_freep(unsigned char **k)
{
    *k = vc_key_free(*k);
}
#define _cleanup_key_ _cleanup_(vc_key_freep)

/* Subkeys derived from the DEK: one seals entries, one MACs the index. */
int vc_derive_subkeys(const unsigned char *dek, unsigned char *ret_entry_key,
                      unsigned char *ret_index_key);

/* Wrap/unwrap the DEK for one key slot. The AD binds database id, key generation, source name
 * and the slot's public parameters (salt, Argon2 limits, sealed blob): a slot cannot be moved to
 * another database, generation or source, nor its parameters downgraded. -EBADMSG when the
 * KEK is wrong or anything bound was altered. */
void vc_wrap_dek(const unsigned char *kek, const unsigned char *dek,
                 const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen, const char *source,
                 const void *params, size_t params_len, unsigned char ret_nonce[VC_NONCE_BYTES],
                 unsigned char ret_wrapped[VC_WRAPPED_BYTES]);
int vc_unwrap_dek(const unsigned char *kek, const unsigned char dbid[VC_DBID_BYTES],
                  int64_t key_gen, const char *source, const void *params, size_t params_len,
                  const unsigned char nonce[VC_NONCE_BYTES],
                  const unsigned char wrapped[VC_WRAPPED_BYTES], unsigned char *ret_dek);

/* An entry's header: everything stored beside the ciphertext. Its digest is both the AD of the
 * entry's ciphertext and the entry's contribution to the index MAC. */
typedef struct vc_entry_header {
    const char *name;
    const char *type;
    const char *metadata; /* may be NULL (distinct from "") */
    int64_t created_at;
    int64_t updated_at;
    int64_t version; /* the database write counter when the entry was written */
} vc_entry_header;
void vc_entry_digest(const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen,
                     const vc_entry_header *h, unsigned char ret_digest[VC_MAC_BYTES]);

/* ret_ct must hold len + VC_TAG_BYTES. */
void vc_seal_entry(const unsigned char *entry_key, const unsigned char digest[VC_MAC_BYTES],
                   const void *plain, size_t len, unsigned char ret_nonce[VC_NONCE_BYTES],
                   unsigned char *ret_ct);
/* ret_plain must hold ct_len - VC_TAG_BYTES. -EBADMSG on any mismatch. */
int vc_open_entry(const unsigned char *entry_key, const unsigned char digest[VC_MAC_BYTES],
                  const unsigned char nonce[VC_NONCE_BYTES], const unsigned char *ct, size_t ct_len,
                  unsigned char *ret_plain);

/* The index MAC: keyed BLAKE2b over database id, key generation, write counter and every entry
 * digest in name order. Detects rows added, removed, altered or rolled back one by one. */
typedef struct vc_index {
    crypto_generichash_state st;
    uint64_t count;
} vc_index;
void vc_index_begin(vc_index *ix, const unsigned char *index_key,
                    const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen, int64_t counter);
void vc_index_add(vc_index *ix, const unsigned char digest[VC_MAC_BYTES]);
void vc_index_end(vc_index *ix, unsigned char ret_mac[VC_MAC_BYTES]);

/* Argon2id. Limits come from the slot and are range-checked first (a tampered slot must not
 * make us allocate gigabytes): -EINVAL outside [interactive/2, sensitive*2]. */
int vc_argon2_level(const char *level, unsigned long long *ret_ops, size_t *ret_mem);
int vc_pwhash(const void *pass, size_t pass_len, const unsigned char salt[VC_SALT_BYTES],
              unsigned long long opslimit, size_t memlimit, unsigned char *ret_kek);

/* KEK from the bytes of a key file (domain-separated). */
void vc_key_file_kek(const unsigned char file_key[VC_KEY_BYTES], unsigned char *ret_kek);

/* Lower-case hex of n bytes into out (2n+1). */
void vc_hex(const unsigned char *in, size_t n, char *out);
