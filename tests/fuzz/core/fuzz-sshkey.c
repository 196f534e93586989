/* SPDX-License-Identifier: Apache-2.0 */
/* sshkey.c's parsers of key files and public keys, all on every input: sshkey_parse_private
 * (the input as the file; and, when the input is a binary openssh-key-v1 body, that body in
 * its PEM armour, so mutations reach the binary checks), sshkey_pub_base64_parse (the input as
 * the middle word of a public key line) and sshkey_pub_blob_parse (the input as a wire blob).
 * An accepted private key is consistent and survives sshkey_format_private; a refusal names
 * the source and carries no control characters; an accepted public key is exactly the
 * canonical encoding of the key it yields. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "sshkey.h"

#define WHAT "'fuzz-key'"
#define MAGIC "openssh-key-v1" /* with its NUL */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

static void check_refusal(const terok_error *err)
{
    const char *m = terok_error_message(err);

    if (!m || (!strstr(m, WHAT) && !strstr(m, "out of memory")))
        abort(); /* a refusal says which file */
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort(); /* nothing raw from the file reaches a message */
}

static void check_key(const sshkey *k)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *text = NULL;
    const void *seed, *seed2, *t;
    size_t sn, sn2, tn;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    sshkey again = {0};

    if (terok_secret_peek(k->seed, &seed, &sn) < 0 || sn != SSHKEY_SEED_BYTES)
        abort();
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof sk);
    if (memcmp(pk, k->pk, sizeof pk) != 0)
        abort(); /* the seed is the key it claims */
    if (!sshkey_comment_is_valid(k->comment) || (k->comment && !*k->comment))
        abort();
    /* format -> parse gives the same key back */
    if (sshkey_format_private(k, &text, &err) < 0 || terok_secret_peek(text, &t, &tn) < 0 ||
        sshkey_parse_private(t, tn, WHAT, &again, &err) < 0)
        abort();
    if (memcmp(again.pk, k->pk, SSHKEY_PK_BYTES) != 0 ||
        terok_secret_peek(again.seed, &seed2, &sn2) < 0 || sn2 != sn ||
        memcmp(seed, seed2, sn) != 0 ||
        !streq(again.comment ? again.comment : "", k->comment ? k->comment : ""))
        abort();
    sshkey_done(&again);
    terok_secret_free(text);
    terok_error_clear(&err);
}

static void parse_private(const void *text, size_t len)
{
    terok_error err = TEROK_ERROR_INIT;
    sshkey k = {0};

    if (sshkey_parse_private(text, len, WHAT, &k, &err) == 0) {
        check_key(&k);
        sshkey_done(&k);
    } else
        check_refusal(&err);
    terok_error_clear(&err);
}

static char *armour(const uint8_t *bin, size_t n)
{
    size_t bn = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(bn), *out = NULL;

    if (!b)
        abort();
    sodium_bin2base64(b, bn, bin, n, sodium_base64_VARIANT_ORIGINAL);
    if (asprintf(&out,
                 "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n",
                 b) < 0)
        abort();
    free(b);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pk[SSHKEY_PK_BYTES], blob[SSHKEY_BLOB_BYTES];

    parse_private(data, size);
    if (size >= sizeof MAGIC && memcmp(data, MAGIC, sizeof MAGIC) == 0 &&
        size <= SSHKEY_FILE_MAX / 2) {
        char *t = armour(data, size);
        parse_private(t, strlen(t));
        free(t);
    }

    if (sshkey_pub_blob_parse(data, size, pk) == 0) {
        sshkey_pub_blob(pk, blob);
        if (size != sizeof blob || memcmp(blob, data, size) != 0)
            abort();
    }

    {
        char *s = fuzz_strndup(data, size);
        if (sshkey_pub_base64_parse(s, pk) == 0) {
            char *b = sshkey_pub_base64(pk);
            char fp[SSHKEY_FP_SIZE];
            if (!b || !streq(b, s))
                abort(); /* only the canonical encoding is accepted */
            sshkey_fingerprint(pk, fp);
            if (!strneq(fp, "SHA256:", 7) || strlen(fp) != 7 + 43)
                abort();
            free(b);
        }
        free(s);
    }
    return 0;
}
