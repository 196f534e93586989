/* SPDX-License-Identifier: Apache-2.0 */
/* sshkey.c: ed25519 keys and the openssh-key-v1 file format (PROTOCOL.key in OpenSSH). All
 * crypto is libsodium's; parsing trusts no length. Every buffer that held key material is wiped
 * before it is freed. Never prints, never puts key bytes in a message. */
#include <sodium.h>

#include "error.h"
#include "sshkey.h"
#include "util/base64.h"
#include "util/macro.h"

#define PEM_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define PEM_END "-----END OPENSSH PRIVATE KEY-----"
#define AUTH_MAGIC "openssh-key-v1"
#define PEM_LINE 70

void sshkey_done(sshkey *k)
{
    if (!k)
        return;
    terok_secret_free(k->seed);
    free(k->comment);
    *k = (sshkey){0};
}

bool sshkey_comment_is_valid(const char *c)
{
    size_t n;

    if (!c)
        return true;
    n = strnlen(c, SSHKEY_COMMENT_MAX + 1);
    if (n > SSHKEY_COMMENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
            return false;
    return true;
}

static int set_comment(sshkey *k, const char *c, size_t n, terok_error *err)
{
    if (!c)
        return 0;
    k->comment = strndup(c, n);
    if (!k->comment)
        return terok_error_set(err, -ENOMEM, "out of memory");
    return 0;
}

int sshkey_from_seed(const terok_secret *seed, const char *comment, sshkey *ret, terok_error *err)
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    const void *p;
    size_t n;
    sshkey k = {0};
    int r;

    if (sodium_init() < 0)
        return terok_error_set(err, -EIO, "libsodium cannot initialise");
    if (terok_secret_peek(seed, &p, &n) < 0 || n != SSHKEY_SEED_BYTES)
        return terok_error_set(err, -EBADMSG, "an ed25519 seed is %d bytes, this one is not",
                               SSHKEY_SEED_BYTES);
    if (!sshkey_comment_is_valid(comment))
        return terok_error_set(err, -EINVAL, "invalid key comment");
    crypto_sign_seed_keypair(k.pk, sk, p);
    sodium_memzero(sk, sizeof sk);
    r = terok_secret_new(p, n, &k.seed);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    r = set_comment(&k, comment, comment ? strlen(comment) : 0, err);
    if (r < 0) {
        sshkey_done(&k);
        return r;
    }
    *ret = k;
    return 0;
}

int sshkey_generate(const char *comment, sshkey *ret, terok_error *err)
{
    _cleanup_secret_ terok_secret *seed = NULL;
    unsigned char buf[SSHKEY_SEED_BYTES];
    int r;

    if (sodium_init() < 0)
        return terok_error_set(err, -EIO, "libsodium cannot initialise");
    randombytes_buf(buf, sizeof buf);
    r = terok_secret_new(buf, sizeof buf, &seed);
    sodium_memzero(buf, sizeof buf);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    return sshkey_from_seed(seed, comment, ret, err);
}

/* ---- wire encoding ---- */

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_str(uint8_t *p, const void *s, size_t n)
{
    p = put_u32(p, (uint32_t)n);
    if (n)
        memcpy(p, s, n);
    return p + n;
}

void sshkey_pub_blob(const uint8_t pk[SSHKEY_PK_BYTES], uint8_t out[SSHKEY_BLOB_BYTES])
{
    uint8_t *p = put_str(out, SSHKEY_TYPE, strlen(SSHKEY_TYPE));
    put_str(p, pk, SSHKEY_PK_BYTES);
}

/* A bounds-checked reader: every read fails rather than run past the end. */
typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static int rd_u32(rd *r, uint32_t *v)
{
    if (r->n < 4)
        return -EINVAL;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->n -= 4;
    return 0;
}

static int rd_str(rd *r, const uint8_t **s, size_t *len)
{
    uint32_t l;

    if (rd_u32(r, &l) < 0 || l > r->n)
        return -EINVAL;
    *s = r->p;
    *len = l;
    r->p += l;
    r->n -= l;
    return 0;
}

static bool str_is(const uint8_t *s, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

int sshkey_pub_blob_parse(const uint8_t *blob, size_t len, uint8_t pk[SSHKEY_PK_BYTES])
{
    rd r = {blob, len};
    const uint8_t *t, *k;
    size_t tn, kn;

    if (!blob || rd_str(&r, &t, &tn) < 0 || !str_is(t, tn, SSHKEY_TYPE) ||
        rd_str(&r, &k, &kn) < 0 || kn != SSHKEY_PK_BYTES || r.n != 0)
        return -EINVAL;
    memcpy(pk, k, SSHKEY_PK_BYTES);
    return 0;
}

void sshkey_fingerprint(const uint8_t pk[SSHKEY_PK_BYTES], char out[SSHKEY_FP_SIZE])
{
    uint8_t blob[SSHKEY_BLOB_BYTES], h[crypto_hash_sha256_BYTES];

    sshkey_pub_blob(pk, blob);
    crypto_hash_sha256(h, blob, sizeof blob);
    memcpy(out, "SHA256:", 7);
    sodium_bin2base64(out + 7, SSHKEY_FP_SIZE - 7, h, sizeof h,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

char *sshkey_pub_base64(const uint8_t pk[SSHKEY_PK_BYTES])
{
    uint8_t blob[SSHKEY_BLOB_BYTES];
    size_t n = sodium_base64_ENCODED_LEN(sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(n);

    if (!s)
        return NULL;
    sshkey_pub_blob(pk, blob);
    sodium_bin2base64(s, n, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

int sshkey_pub_base64_parse(const char *b64, uint8_t pk[SSHKEY_PK_BYTES])
{
    uint8_t blob[SSHKEY_BLOB_BYTES + 1];
    size_t n = 0;
    const char *end = NULL;

    if (!b64 || base64_decode(blob, sizeof blob, b64, strlen(b64), NULL, &n, &end) < 0 || *end)
        return -EINVAL;
    return sshkey_pub_blob_parse(blob, n, pk);
}

char *sshkey_public_line(const uint8_t pk[SSHKEY_PK_BYTES], const char *comment)
{
    _cleanup_free_ char *b = sshkey_pub_base64(pk);
    char *line = NULL;

    if (!b)
        return NULL;
    if (asprintf(&line, "%s %s%s%s", SSHKEY_TYPE, b, isempty(comment) ? "" : " ",
                 strempty(comment)) < 0)
        return NULL;
    return line;
}

/* ---- openssh-key-v1 ---- */

static void wipe_free(uint8_t *p, size_t n)
{
    if (p) {
        sodium_memzero(p, n);
        free(p);
    }
}

/* The key type a public key blob names, for messages ("ssh-rsa", "ecdsa-sha2-nistp256"): printable
 * characters only, else "unknown". */
static void blob_type(const uint8_t *blob, size_t len, char out[64])
{
    rd r = {blob, len};
    const uint8_t *t;
    size_t tn;

    memcpy(out, "unknown", sizeof "unknown");
    if (rd_str(&r, &t, &tn) < 0 || tn == 0 || tn >= 64)
        return;
    for (size_t i = 0; i < tn; i++)
        if (t[i] < 0x21 || t[i] > 0x7e)
            return;
    memcpy(out, t, tn);
    out[tn] = 0;
}

static int not_supported_type(const char *what, const char *type, terok_error *err)
{
    const char *family = strneq(type, "ssh-rsa", 7)   ? "an RSA key"
                         : strneq(type, "ecdsa-", 6)  ? "an ECDSA key"
                         : strneq(type, "sk-", 3)     ? "a security-key (FIDO) key"
                         : strneq(type, "ssh-dss", 7) ? "a DSA key"
                                                      : "a key of an unsupported type";

    return terok_error_set(err, -ENOTSUP,
                           "%s holds %s ('%s'): only ed25519 keys are supported — generate one "
                           "with 'terok-sandbox ssh add' or 'ssh-keygen -t ed25519'",
                           what, family, type);
}

static int bad(const char *what, const char *why, terok_error *err)
{
    return terok_error_set(err, -EINVAL, "%s is not a valid OpenSSH private key: %s", what, why);
}

/* Decode the PEM armour into the binary key; *ret is wiped and freed by the caller. */
static int unarmour(const char *text, size_t len, const char *what, uint8_t **ret, size_t *ret_len,
                    terok_error *err)
{
    const char *b, *e, *body;
    size_t blen, cap;
    uint8_t *bin;
    const char *stop = NULL;

    /* Text before the armour (blank lines) is tolerated; other armours are named. */
    b = memmem(text, len, "-----BEGIN ", 11);
    if (!b) {
        if ((len >= 4 && memcmp(text, "ssh-", 4) == 0) ||
            (len >= 6 && memcmp(text, "ecdsa-", 6) == 0) ||
            (len >= 3 && memcmp(text, "sk-", 3) == 0))
            return bad(what, "it is a public key; import the private key file", err);
        return bad(what, "no '" PEM_BEGIN "' line", err);
    }
    for (const char *q = text; q < b; q++)
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t')
            return bad(what, "text before the '-----BEGIN' line", err);
    size_t rest = len - (size_t)(b - text);
    if (rest < strlen(PEM_BEGIN) || memcmp(b, PEM_BEGIN, strlen(PEM_BEGIN)) != 0) {
        if (rest >= 26 && memcmp(b, "-----BEGIN RSA PRIVATE KEY", 26) == 0)
            return not_supported_type(what, "ssh-rsa", err);
        if (rest >= 25 && memcmp(b, "-----BEGIN EC PRIVATE KEY", 25) == 0)
            return not_supported_type(what, "ecdsa-sha2 (PEM)", err);
        if (rest >= 36 && memcmp(b, "-----BEGIN ENCRYPTED PRIVATE KEY----", 36) == 0)
            return terok_error_set(err, -ENOTSUP,
                                   "%s is an encrypted PKCS#8 key: only unencrypted OpenSSH "
                                   "ed25519 keys can be imported",
                                   what);
        return bad(what, "it is not in the OpenSSH format (expected '" PEM_BEGIN "')", err);
    }
    body = b + strlen(PEM_BEGIN);
    rest -= strlen(PEM_BEGIN);
    e = memmem(body, rest, PEM_END, strlen(PEM_END));
    if (!e)
        return bad(what, "no '" PEM_END "' line (truncated?)", err);
    for (const char *q = e + strlen(PEM_END); q < text + len; q++)
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t')
            return bad(what, "text after the '-----END' line", err);
    blen = (size_t)(e - body);
    cap = blen / 4 * 3 + 3;
    bin = malloc(cap ? cap : 1);
    if (!bin)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (base64_decode(bin, cap, body, blen, "\r\n\t ", ret_len, &stop) < 0 || stop != e) {
        wipe_free(bin, cap);
        return bad(what, "its base64 body is malformed", err);
    }
    *ret = bin;
    return (int)cap;
}

static int parse_binary(const uint8_t *bin, size_t n, const char *what, sshkey *ret,
                        terok_error *err)
{
    rd r = {bin, n}, pr;
    const uint8_t *cipher, *kdf, *kdfopts, *pub, *priv, *t, *pk, *sk, *comment;
    size_t cn, kn, kon, pubn, privn, tn, pkn, skn, commentn;
    uint32_t nkeys, c1, c2;
    uint8_t derived[SSHKEY_PK_BYTES], full[crypto_sign_SECRETKEYBYTES];
    char type[64];
    sshkey k = {0};
    int rr;

    if (n < sizeof AUTH_MAGIC || memcmp(bin, AUTH_MAGIC, sizeof AUTH_MAGIC) != 0)
        return bad(what, "wrong magic (not 'openssh-key-v1')", err);
    r.p += sizeof AUTH_MAGIC;
    r.n -= sizeof AUTH_MAGIC;
    if (rd_str(&r, &cipher, &cn) < 0 || rd_str(&r, &kdf, &kn) < 0 ||
        rd_str(&r, &kdfopts, &kon) < 0 || rd_u32(&r, &nkeys) < 0)
        return bad(what, "truncated header", err);
    if (nkeys != 1)
        return bad(what, "it must hold exactly one key", err);
    if (rd_str(&r, &pub, &pubn) < 0)
        return bad(what, "truncated public key", err);
    blob_type(pub, pubn, type);
    if (!str_is(cipher, cn, "none")) {
        char c[32] = "?";
        if (cn > 0 && cn < sizeof c) {
            memcpy(c, cipher, cn);
            c[cn] = 0;
            for (size_t i = 0; i < cn; i++)
                if (c[i] < 0x21 || c[i] > 0x7e)
                    c[i] = '?';
        }
        return terok_error_set(err, -ENOTSUP,
                               "%s is passphrase-protected (cipher '%s'): terok-sandbox imports "
                               "only unencrypted keys — remove the passphrase on a copy with "
                               "'ssh-keygen -p -N \"\" -f COPY', import the copy, then delete it",
                               what, c);
    }
    if (!str_is(kdf, kn, "none") || kon != 0)
        return bad(what, "an unencrypted key must have kdf 'none' and no kdf options", err);
    if (!streq(type, SSHKEY_TYPE))
        return not_supported_type(what, type, err);
    if (sshkey_pub_blob_parse(pub, pubn, derived) < 0)
        return bad(what, "malformed ed25519 public key", err);
    if (rd_str(&r, &priv, &privn) < 0)
        return bad(what, "truncated private section", err);
    if (r.n != 0)
        return bad(what, "trailing data after the private section", err);
    if (privn % 8 != 0)
        return bad(what, "private section is not a whole number of blocks", err);
    pr = (rd){priv, privn};
    if (rd_u32(&pr, &c1) < 0 || rd_u32(&pr, &c2) < 0)
        return bad(what, "truncated private section", err);
    if (c1 != c2)
        return bad(what, "check numbers differ (corrupt, or encrypted with a wrong key)", err);
    if (rd_str(&pr, &t, &tn) < 0 || rd_str(&pr, &pk, &pkn) < 0 || rd_str(&pr, &sk, &skn) < 0 ||
        rd_str(&pr, &comment, &commentn) < 0)
        return bad(what, "truncated private key", err);
    if (!str_is(t, tn, SSHKEY_TYPE))
        return bad(what, "the private key's type differs from the public key's", err);
    if (pkn != SSHKEY_PK_BYTES || memcmp(pk, derived, SSHKEY_PK_BYTES) != 0)
        return bad(what, "the private section's public key differs from the header's", err);
    if (skn != crypto_sign_SECRETKEYBYTES || memcmp(sk + 32, pk, SSHKEY_PK_BYTES) != 0)
        return bad(what, "malformed ed25519 private key", err);
    /* Padding is 1, 2, 3, ... up to the block size. */
    if (pr.n >= 8)
        return bad(what, "too much padding", err);
    for (size_t i = 0; i < pr.n; i++)
        if (pr.p[i] != (uint8_t)(i + 1))
            return bad(what, "bad padding", err);
    if (commentn > SSHKEY_COMMENT_MAX || memchr(comment, 0, commentn))
        return bad(what, "its comment is too long or has NUL bytes", err);
    {
        char c[SSHKEY_COMMENT_MAX + 1];
        memcpy(c, comment, commentn);
        c[commentn] = 0;
        if (!sshkey_comment_is_valid(c))
            return bad(what, "its comment has control characters", err);
        /* The seed must produce the public key it claims. */
        crypto_sign_seed_keypair(derived, full, sk);
        rr = memcmp(derived, pk, SSHKEY_PK_BYTES) == 0 ? 0 : -1;
        sodium_memzero(full, sizeof full);
        if (rr < 0)
            return bad(what, "its private key does not match its public key", err);
        rr = terok_secret_new(sk, SSHKEY_SEED_BYTES, &k.seed);
        if (rr < 0)
            return terok_error_set(err, rr, "out of memory");
        memcpy(k.pk, pk, SSHKEY_PK_BYTES);
        rr = set_comment(&k, commentn ? c : NULL, commentn, err);
        if (rr < 0) {
            sshkey_done(&k);
            return rr;
        }
    }
    *ret = k;
    return 0;
}

int sshkey_parse_private(const void *text, size_t len, const char *what, sshkey *ret,
                         terok_error *err)
{
    uint8_t *bin = NULL;
    size_t n = 0;
    int cap, r;

    if (sodium_init() < 0)
        return terok_error_set(err, -EIO, "libsodium cannot initialise");
    if (!text || len == 0)
        return bad(what, "it is empty", err);
    if (len > SSHKEY_FILE_MAX)
        return bad(what, "it is larger than 64 KiB", err);
    if (memchr(text, 0, len))
        return bad(what, "it has NUL bytes", err);
    cap = unarmour(text, len, what, &bin, &n, err);
    if (cap < 0)
        return cap;
    r = parse_binary(bin, n, what, ret, err);
    wipe_free(bin, (size_t)cap);
    return r;
}

int sshkey_format_private(const sshkey *k, terok_secret **ret, terok_error *err)
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk[SSHKEY_PK_BYTES], blob[SSHKEY_BLOB_BYTES];
    size_t cl = k->comment ? strlen(k->comment) : 0;
    size_t privn = 8 + (4 + 11) + (4 + 32) + (4 + 64) + (4 + cl);
    size_t pad = (8 - privn % 8) % 8;
    /* magic, "none", "none", "", nkeys, string blob, string private section */
    size_t bn = sizeof AUTH_MAGIC + (4 + 4) * 2 + 4 + 4 + (4 + sizeof blob) + (4 + privn + pad);
    size_t b64n = sodium_base64_ENCODED_LEN(bn, sodium_base64_VARIANT_ORIGINAL);
    size_t outn = strlen(PEM_BEGIN) + 1 + b64n + b64n / PEM_LINE + 1 + strlen(PEM_END) + 2;
    uint8_t *bin = NULL, *p;
    char *b64 = NULL, *out = NULL, *o;
    const void *seed;
    size_t sn;
    uint32_t check;
    int r;

    if (terok_secret_peek(k->seed, &seed, &sn) < 0 || sn != SSHKEY_SEED_BYTES)
        return terok_error_set(err, -EINVAL, "no ed25519 seed");
    bin = malloc(bn);
    b64 = malloc(b64n);
    out = malloc(outn);
    if (!bin || !b64 || !out) {
        r = terok_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    sshkey_pub_blob(pk, blob);
    check = randombytes_random();
    p = bin;
    memcpy(p, AUTH_MAGIC, sizeof AUTH_MAGIC);
    p += sizeof AUTH_MAGIC;
    p = put_str(p, "none", 4);
    p = put_str(p, "none", 4);
    p = put_str(p, "", 0);
    p = put_u32(p, 1);
    p = put_str(p, blob, sizeof blob);
    p = put_u32(p, (uint32_t)(privn + pad));
    p = put_u32(p, check);
    p = put_u32(p, check);
    p = put_str(p, SSHKEY_TYPE, 11);
    p = put_str(p, pk, sizeof pk);
    p = put_str(p, sk, sizeof sk);
    p = put_str(p, k->comment ? k->comment : "", cl);
    for (size_t i = 0; i < pad; i++)
        *p++ = (uint8_t)(i + 1);
    sodium_bin2base64(b64, b64n, bin, bn, sodium_base64_VARIANT_ORIGINAL);
    o = out;
    memcpy(o, PEM_BEGIN "\n", strlen(PEM_BEGIN) + 1);
    o += strlen(PEM_BEGIN) + 1;
    for (size_t i = 0, l = strlen(b64); i < l; i += PEM_LINE) {
        size_t m = MIN(PEM_LINE, l - i);
        memcpy(o, b64 + i, m);
        o += m;
        *o++ = '\n';
    }
    memcpy(o, PEM_END "\n", strlen(PEM_END) + 1);
    o += strlen(PEM_END) + 1;
    r = terok_secret_new(out, (size_t)(o - out), ret);
    if (r < 0)
        terok_error_set(err, r, "out of memory");
out:
    sodium_memzero(sk, sizeof sk);
    wipe_free(bin, bn);
    wipe_free((uint8_t *)b64, b64n);
    wipe_free((uint8_t *)out, outn);
    return r;
}

int sshkey_sign(const terok_secret *seed, const uint8_t pk[SSHKEY_PK_BYTES], const uint8_t *data,
                size_t len, uint8_t sig[SSHKEY_SIG_BYTES], terok_error *err)
{
    uint8_t sk[crypto_sign_SECRETKEYBYTES], derived[SSHKEY_PK_BYTES];
    const void *p;
    size_t n;
    int r = 0;

    if (terok_secret_peek(seed, &p, &n) < 0 || n != SSHKEY_SEED_BYTES)
        return terok_error_set(err, -EBADMSG, "the stored key is not an ed25519 seed");
    crypto_sign_seed_keypair(derived, sk, p);
    if (sodium_memcmp(derived, pk, SSHKEY_PK_BYTES) != 0)
        r = terok_error_set(err, -EBADMSG, "the stored key does not match its recorded public key");
    else
        crypto_sign_detached(sig, NULL, data, len, sk);
    sodium_memzero(sk, sizeof sk);
    return r;
}
