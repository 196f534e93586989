/* SPDX-License-Identifier: Apache-2.0 */
/* sshkey.h: ed25519 SSH keys: generation (libsodium), the OpenSSH private key file format
 * (openssh-key-v1, unencrypted ed25519 only, parsed strictly with every length bounds-checked),
 * the public key wire blob, `ssh-ed25519 AAAA… comment` lines and SHA256 fingerprints like
 * ssh-keygen's. The private seed lives only in a terok_secret. Never prints; no error message
 * ever carries key material. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secret.h"
#include "terok/error.h"

#define SSHKEY_TYPE "ssh-ed25519"
#define SSHKEY_VAULT_TYPE "ssh-ed25519" /* the vault entry type */
#define SSHKEY_PK_BYTES 32
#define SSHKEY_SEED_BYTES 32
#define SSHKEY_SIG_BYTES 64
#define SSHKEY_BLOB_BYTES (4 + 11 + 4 + SSHKEY_PK_BYTES)     /* string type, string pk */
#define SSHKEY_SIGBLOB_BYTES (4 + 11 + 4 + SSHKEY_SIG_BYTES) /* string type, string sig */
#define SSHKEY_COMMENT_MAX 200
#define SSHKEY_FP_SIZE 64         /* "SHA256:" + 43 + NUL fits */
#define SSHKEY_FILE_MAX (1 << 16) /* an ed25519 key file is < 1 KiB; anything larger is not one */

typedef struct sshkey {
    uint8_t pk[SSHKEY_PK_BYTES];
    terok_secret *seed; /* SSHKEY_SEED_BYTES */
    char *comment;      /* may be NULL */
} sshkey;
void sshkey_done(sshkey *k);

/* A comment we accept: no control characters (C0, DEL), at most SSHKEY_COMMENT_MAX bytes. */
bool sshkey_comment_is_valid(const char *c);

int sshkey_generate(const char *comment, sshkey *ret, terok_error *err);
/* The key from its 32-byte seed (as stored in the vault). */
int sshkey_from_seed(const terok_secret *seed, const char *comment, sshkey *ret, terok_error *err);

/* Parse an OpenSSH private key file ("-----BEGIN OPENSSH PRIVATE KEY-----"). `what` names the
 * source in messages ("'id_ed25519'", "standard input"). Encrypted keys, other key types and any
 * malformed or inconsistent content are refused with -EINVAL/-ENOTSUP and a message naming the
 * problem (never the key). */
int sshkey_parse_private(const void *text, size_t len, const char *what, sshkey *ret,
                         terok_error *err);
/* The key as an OpenSSH private key file (text), in a secret. */
int sshkey_format_private(const sshkey *k, terok_secret **ret, terok_error *err);

void sshkey_pub_blob(const uint8_t pk[SSHKEY_PK_BYTES], uint8_t out[SSHKEY_BLOB_BYTES]);
/* 0 and the key when blob is exactly an ssh-ed25519 public key blob; -EINVAL otherwise. */
int sshkey_pub_blob_parse(const uint8_t *blob, size_t len, uint8_t pk[SSHKEY_PK_BYTES]);
/* "SHA256:<base64 of SHA-256(blob), no padding>", as `ssh-keygen -l` prints it. */
void sshkey_fingerprint(const uint8_t pk[SSHKEY_PK_BYTES], char out[SSHKEY_FP_SIZE]);
/* Base64 of the blob (the middle word of a public key line). Caller frees. */
char *sshkey_pub_base64(const uint8_t pk[SSHKEY_PK_BYTES]);
int sshkey_pub_base64_parse(const char *b64, uint8_t pk[SSHKEY_PK_BYTES]);
/* "ssh-ed25519 AAAA… comment\n"-less line; caller frees. */
char *sshkey_public_line(const uint8_t pk[SSHKEY_PK_BYTES], const char *comment);

/* Ed25519 signature of data with the seed's key; -EBADMSG when the seed's public key is not pk
 * (a vault entry that does not match its metadata). */
int sshkey_sign(const terok_secret *seed, const uint8_t pk[SSHKEY_PK_BYTES], const uint8_t *data,
                size_t len, uint8_t sig[SSHKEY_SIG_BYTES], terok_error *err);
