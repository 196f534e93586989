/* SPDX-License-Identifier: Apache-2.0 */
/* vault-crypto.c: AEAD, key wrapping, entry digests, the index MAC and Argon2id (libsodium).
 * Never logs and never formats key or plaintext bytes. */
#include <errno.h>
#include <string.h>

#include "vault-crypto.h"

/* Domain-separation labels: changing one is a format change. */
#define LABEL_SLOT "terok-vault/keyslot/v1"
#define LABEL_ENTRY "terok-vault/entry/v1"
#define LABEL_INDEX "terok-vault/index/v1"
#define LABEL_KEYFILE "terok-vault/key-file/v1"
#define KDF_CONTEXT "tvltsubk" /* crypto_kdf_CONTEXTBYTES == 8 */

int vc_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

unsigned char *vc_key_new(void)
{
    return sodium_malloc(VC_KEY_BYTES);
}

unsigned char *vc_key_random(void)
{
    unsigned char *k = vc_key_new();

    if (k)
        randombytes_buf(k, VC_KEY_BYTES);
    return k;
}

unsigned char *vc_key_free(unsigned char *k)
{
    if (k)
        sodium_free(k); /* wipes */
    return NULL;
}

unsigned char *vc_key_dup(const unsigned char *k)
{
    unsigned char *d = vc_key_new();

    if (d)
        memcpy(d, k, VC_KEY_BYTES);
    return d;
}

int vc_derive_subkeys(const unsigned char *dek, unsigned char *ret_entry_key,
                      unsigned char *ret_index_key)
{
    if (crypto_kdf_derive_from_key(ret_entry_key, VC_KEY_BYTES, 1, KDF_CONTEXT, dek) != 0 ||
        crypto_kdf_derive_from_key(ret_index_key, VC_KEY_BYTES, 2, KDF_CONTEXT, dek) != 0)
        return -EIO;
    return 0;
}

/* Length-prefixed fields, so ("ab","c") and ("a","bc") never hash alike. */
static void h_bytes(crypto_generichash_state *st, const void *p, size_t n)
{
    unsigned char len[8];
    uint64_t v = n;

    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(v >> (8 * i));
    crypto_generichash_update(st, len, sizeof len);
    if (n)
        crypto_generichash_update(st, p, n);
}

static void h_str(crypto_generichash_state *st, const char *s)
{
    h_bytes(st, s, strlen(s));
}

static void h_i64(crypto_generichash_state *st, int64_t v)
{
    unsigned char b[8];
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    crypto_generichash_update(st, b, sizeof b);
}

static void slot_ad(const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen, const char *source,
                    const void *params, size_t params_len, unsigned char ad[VC_MAC_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, VC_MAC_BYTES);
    h_str(&st, LABEL_SLOT);
    h_bytes(&st, dbid, VC_DBID_BYTES);
    h_i64(&st, key_gen);
    h_str(&st, source);
    h_bytes(&st, params, params_len);
    crypto_generichash_final(&st, ad, VC_MAC_BYTES);
}

void vc_wrap_dek(const unsigned char *kek, const unsigned char *dek,
                 const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen, const char *source,
                 const void *params, size_t params_len, unsigned char ret_nonce[VC_NONCE_BYTES],
                 unsigned char ret_wrapped[VC_WRAPPED_BYTES])
{
    unsigned char ad[VC_MAC_BYTES];

    slot_ad(dbid, key_gen, source, params, params_len, ad);
    randombytes_buf(ret_nonce, VC_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ret_wrapped, NULL, dek, VC_KEY_BYTES, ad, sizeof ad,
                                               NULL, ret_nonce, kek);
}

int vc_unwrap_dek(const unsigned char *kek, const unsigned char dbid[VC_DBID_BYTES],
                  int64_t key_gen, const char *source, const void *params, size_t params_len,
                  const unsigned char nonce[VC_NONCE_BYTES],
                  const unsigned char wrapped[VC_WRAPPED_BYTES], unsigned char *ret_dek)
{
    unsigned char ad[VC_MAC_BYTES];

    slot_ad(dbid, key_gen, source, params, params_len, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(ret_dek, NULL, NULL, wrapped, VC_WRAPPED_BYTES,
                                                   ad, sizeof ad, nonce, kek) != 0) {
        sodium_memzero(ret_dek, VC_KEY_BYTES);
        return -EBADMSG;
    }
    return 0;
}

void vc_entry_digest(const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen,
                     const vc_entry_header *h, unsigned char ret_digest[VC_MAC_BYTES])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, VC_MAC_BYTES);
    h_str(&st, LABEL_ENTRY);
    h_bytes(&st, dbid, VC_DBID_BYTES);
    h_i64(&st, key_gen);
    h_str(&st, h->name);
    h_str(&st, h->type);
    h_i64(&st, h->metadata ? 1 : 0);
    if (h->metadata)
        h_str(&st, h->metadata);
    h_i64(&st, h->created_at);
    h_i64(&st, h->updated_at);
    h_i64(&st, h->version);
    crypto_generichash_final(&st, ret_digest, VC_MAC_BYTES);
}

void vc_seal_entry(const unsigned char *entry_key, const unsigned char digest[VC_MAC_BYTES],
                   const void *plain, size_t len, unsigned char ret_nonce[VC_NONCE_BYTES],
                   unsigned char *ret_ct)
{
    randombytes_buf(ret_nonce, VC_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(ret_ct, NULL, plain, len, digest, VC_MAC_BYTES, NULL,
                                               ret_nonce, entry_key);
}

int vc_open_entry(const unsigned char *entry_key, const unsigned char digest[VC_MAC_BYTES],
                  const unsigned char nonce[VC_NONCE_BYTES], const unsigned char *ct, size_t ct_len,
                  unsigned char *ret_plain)
{
    if (ct_len < VC_TAG_BYTES)
        return -EBADMSG;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(ret_plain, NULL, NULL, ct, ct_len, digest,
                                                   VC_MAC_BYTES, nonce, entry_key) != 0) {
        sodium_memzero(ret_plain, ct_len - VC_TAG_BYTES);
        return -EBADMSG;
    }
    return 0;
}

void vc_index_begin(vc_index *ix, const unsigned char *index_key,
                    const unsigned char dbid[VC_DBID_BYTES], int64_t key_gen, int64_t counter)
{
    crypto_generichash_init(&ix->st, index_key, VC_KEY_BYTES, VC_MAC_BYTES);
    h_str(&ix->st, LABEL_INDEX);
    h_bytes(&ix->st, dbid, VC_DBID_BYTES);
    h_i64(&ix->st, key_gen);
    h_i64(&ix->st, counter);
    ix->count = 0;
}

void vc_index_add(vc_index *ix, const unsigned char digest[VC_MAC_BYTES])
{
    crypto_generichash_update(&ix->st, digest, VC_MAC_BYTES);
    ix->count++;
}

void vc_index_end(vc_index *ix, unsigned char ret_mac[VC_MAC_BYTES])
{
    h_i64(&ix->st, (int64_t)ix->count);
    crypto_generichash_final(&ix->st, ret_mac, VC_MAC_BYTES);
    sodium_memzero(&ix->st, sizeof ix->st);
}

int vc_argon2_level(const char *level, unsigned long long *ret_ops, size_t *ret_mem)
{
    if (!level || strcmp(level, "moderate") == 0) {
        *ret_ops = crypto_pwhash_argon2id_OPSLIMIT_MODERATE;
        *ret_mem = crypto_pwhash_argon2id_MEMLIMIT_MODERATE;
    } else if (strcmp(level, "interactive") == 0) {
        *ret_ops = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
        *ret_mem = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
    } else if (strcmp(level, "sensitive") == 0) {
        *ret_ops = crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE;
        *ret_mem = crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;
    } else
        return -EINVAL;
    return 0;
}

int vc_pwhash(const void *pass, size_t pass_len, const unsigned char salt[VC_SALT_BYTES],
              unsigned long long opslimit, size_t memlimit, unsigned char *ret_kek)
{
    if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE ||
        opslimit > 2 * crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE ||
        memlimit < crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE / 2 ||
        memlimit > (size_t)2 * crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE)
        return -EINVAL;
    if (crypto_pwhash(ret_kek, VC_KEY_BYTES, pass, pass_len, salt, opslimit, memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -ENOMEM; /* the only documented failure: the memory limit could not be met */
    return 0;
}

void vc_key_file_kek(const unsigned char file_key[VC_KEY_BYTES], unsigned char *ret_kek)
{
    crypto_generichash(ret_kek, VC_KEY_BYTES, (const unsigned char *)LABEL_KEYFILE,
                       strlen(LABEL_KEYFILE), file_key, VC_KEY_BYTES);
}

void vc_hex(const unsigned char *in, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, in, n);
}
