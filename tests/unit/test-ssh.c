/* SPDX-License-Identifier: Apache-2.0 */
/* test-ssh.c: sshkey (ed25519 keys, the openssh-key-v1 format against hostile files) and the
 * ssh-agent protocol handler against hostile messages. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sodium.h>
#include <stdio.h>

#include "broker/ssh-agent.h"
#include "sshkey.h"
#include "terok-test.h"

/* ---- helpers ---- */

static size_t b64_body(const char *pem, uint8_t *out, size_t cap)
{
    const char *b = strchr(pem, '\n') + 1, *e = strstr(pem, "-----END");
    size_t n = 0;

    cr_assert(sodium_base642bin(out, cap, b, (size_t)(e - b), "\n", &n, NULL,
                                sodium_base64_VARIANT_ORIGINAL) == 0);
    return n;
}

static char *armour(const uint8_t *bin, size_t n)
{
    size_t bn = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(bn), *out = NULL;

    sodium_bin2base64(b, bn, bin, n, sodium_base64_VARIANT_ORIGINAL);
    cr_assert(
        asprintf(&out,
                 "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n",
                 b) > 0);
    free(b);
    return out;
}

/* A generated key as file text and its binary body. */
typedef struct fixture_key {
    sshkey k;
    char *pem;
    uint8_t bin[1024];
    size_t n;
} fixture_key;

static void make_key(fixture_key *f, const char *comment)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *t = NULL;
    const void *p;
    size_t n;

    terok_assert_ok(sshkey_generate(comment, &f->k, &err), &err);
    terok_assert_ok(sshkey_format_private(&f->k, &t, &err), &err);
    terok_secret_peek(t, &p, &n);
    f->pem = strndup(p, n);
    terok_secret_free(t);
    f->n = b64_body(f->pem, f->bin, sizeof f->bin);
}

static void done_key(fixture_key *f)
{
    sshkey_done(&f->k);
    free(f->pem);
}

/* The message must not reveal the key: no line of the file, no seed bytes in base64. */
static void assert_no_key_in(const char *msg, const fixture_key *f)
{
    const void *seed;
    size_t sn;
    char b64[64];
    char *copy = strdup(f->pem), *save = NULL;

    terok_secret_peek(f->k.seed, &seed, &sn);
    sodium_bin2base64(b64, sizeof b64, seed, sn, sodium_base64_VARIANT_ORIGINAL);
    cr_assert(!strstr(msg, b64), "the seed appears in '%s'", msg);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strlen(l) > 16 && !strstr(l, "-----"))
            cr_assert(!strstr(msg, l), "a key line appears in '%s'", msg);
    free(copy);
}

static int parse_text(const char *text, size_t n, sshkey *k, terok_error *err)
{
    return sshkey_parse_private(text, n, "'test'", k, err);
}

/* ---- keys ---- */

Test(sshkey, generate_format_parse_round_trip)
{
    terok_error err = TEROK_ERROR_INIT;
    fixture_key f;
    sshkey k = {0};
    char fp1[SSHKEY_FP_SIZE], fp2[SSHKEY_FP_SIZE];

    make_key(&f, "me@host");
    terok_assert_ok(parse_text(f.pem, strlen(f.pem), &k, &err), &err);
    cr_assert(memcmp(k.pk, f.k.pk, 32) == 0);
    cr_assert(terok_secret_equals(k.seed, (const void *)"", 0) == 0);
    const void *a, *b;
    size_t an, bn;
    terok_secret_peek(k.seed, &a, &an);
    terok_secret_peek(f.k.seed, &b, &bn);
    cr_assert(an == 32 && bn == 32 && memcmp(a, b, 32) == 0);
    cr_assert_str_eq(k.comment, "me@host");
    sshkey_fingerprint(k.pk, fp1);
    sshkey_fingerprint(f.k.pk, fp2);
    cr_assert_str_eq(fp1, fp2);
    cr_assert(strncmp(fp1, "SHA256:", 7) == 0 && strlen(fp1) == 7 + 43, "%s", fp1);
    char *line = sshkey_public_line(k.pk, k.comment);
    cr_assert(strncmp(line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) == 0, "%s", line);
    cr_assert(strstr(line, " me@host"));
    free(line);
    sshkey_done(&k);
    done_key(&f);
}

Test(sshkey, signature_verifies_and_mismatch_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    fixture_key f, g;
    uint8_t sig[64];
    const uint8_t msg[] = "data";

    make_key(&f, NULL);
    make_key(&g, NULL);
    terok_assert_ok(sshkey_sign(f.k.seed, f.k.pk, msg, sizeof msg, sig, &err), &err);
    cr_assert(crypto_sign_verify_detached(sig, msg, sizeof msg, f.k.pk) == 0);
    cr_assert(sshkey_sign(f.k.seed, g.k.pk, msg, sizeof msg, sig, &err) == -EBADMSG);
    terok_error_clear(&err);
    done_key(&f);
    done_key(&g);
}

Test(sshkey, comments)
{
    char long_c[202];

    memset(long_c, 'a', 201);
    long_c[201] = 0;
    cr_assert(sshkey_comment_is_valid("user@host (work)"));
    cr_assert(sshkey_comment_is_valid(NULL));
    cr_assert(!sshkey_comment_is_valid("a\nb"));
    cr_assert(!sshkey_comment_is_valid("a\x1b[31m"));
    cr_assert(!sshkey_comment_is_valid("a\x7f"));
    cr_assert(!sshkey_comment_is_valid(long_c));
    long_c[200] = 0;
    cr_assert(sshkey_comment_is_valid(long_c));
}

Test(sshkey, every_truncation_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    fixture_key f;

    make_key(&f, "c");
    for (size_t cut = 0; cut < f.n; cut++) {
        char *t = armour(f.bin, cut);
        sshkey k = {0};
        int r = parse_text(t, strlen(t), &k, &err);
        cr_assert(r < 0, "a key cut at %zu bytes of %zu was accepted", cut, f.n);
        assert_no_key_in(terok_error_message(&err), &f);
        terok_error_clear(&err);
        free(t);
    }
    /* and the text itself cut anywhere */
    for (size_t cut = 0; cut < strlen(f.pem) - 1; cut += 7) {
        sshkey k = {0};
        cr_assert(parse_text(f.pem, cut, &k, &err) < 0, "text cut at %zu accepted", cut);
        terok_error_clear(&err);
    }
    done_key(&f);
}

/* Offsets of every length field in a generated key's body. */
static size_t length_fields(const uint8_t *bin, size_t n, size_t *out)
{
    size_t o = 15, k = 0; /* after "openssh-key-v1\0" */
    uint32_t l;

#define STR()                                                                                      \
    do {                                                                                           \
        out[k++] = o;                                                                              \
        l = (uint32_t)bin[o] << 24 | (uint32_t)bin[o + 1] << 16 | (uint32_t)bin[o + 2] << 8 |      \
            bin[o + 3];                                                                            \
        o += 4 + l;                                                                                \
    } while (0)
    STR();  /* cipher */
    STR();  /* kdf */
    STR();  /* kdf options */
    o += 4; /* nkeys */
    STR();  /* public blob */
    out[k++] = o;
    o += 4 + 8; /* private section length, check ints */
    STR();      /* type */
    STR();      /* pk */
    STR();      /* sk */
    STR();      /* comment */
#undef STR
    cr_assert(o <= n);
    return k;
}

Test(sshkey, overlong_and_short_lengths_are_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    static const uint32_t bad[] = {0xffffffffu, 0x80000000u, 0x10000u, 1000, 0};
    fixture_key f;
    size_t offs[16], nf;

    make_key(&f, "comment");
    nf = length_fields(f.bin, f.n, offs);
    cr_assert(nf == 9);
    for (size_t i = 0; i < nf; i++)
        for (size_t j = 0; j < ELEMENTSOF(bad); j++) {
            uint8_t b[1024];
            uint32_t orig = (uint32_t)f.bin[offs[i]] << 24 | (uint32_t)f.bin[offs[i] + 1] << 16 |
                            (uint32_t)f.bin[offs[i] + 2] << 8 | f.bin[offs[i] + 3];
            if (orig == bad[j])
                continue;
            memcpy(b, f.bin, f.n);
            b[offs[i]] = (uint8_t)(bad[j] >> 24);
            b[offs[i] + 1] = (uint8_t)(bad[j] >> 16);
            b[offs[i] + 2] = (uint8_t)(bad[j] >> 8);
            b[offs[i] + 3] = (uint8_t)bad[j];
            char *t = armour(b, f.n);
            sshkey k = {0};
            cr_assert(parse_text(t, strlen(t), &k, &err) < 0,
                      "length field %zu set to %u was accepted", i, bad[j]);
            assert_no_key_in(terok_error_message(&err), &f);
            terok_error_clear(&err);
            free(t);
        }
    done_key(&f);
}

typedef struct mutation {
    char what[32];
    int kind; /* 0 magic, 1 check int, 2 cipher, 3 nkeys, 4 padding, 5 trailing, 6 pk, 7 seed */
    char expect[32];
} mutation;

ParameterizedTestParameters(sshkey, mutations)
{
    static mutation m[] = {
        {"wrong magic", 0, "wrong magic"},
        {"check-int mismatch", 1, "check numbers differ"},
        {"cipher aes256-ctr", 2, "passphrase-protected"},
        {"two keys", 3, "exactly one key"},
        {"bad padding", 4, "padding"},
        {"trailing data", 5, ""},
        {"public key changed", 6, "differs"},
        {"seed changed", 7, "does not match"},
    };
    return cr_make_param_array(mutation, m, ELEMENTSOF(m));
}

ParameterizedTest(mutation *m, sshkey, mutations)
{
    terok_error err = TEROK_ERROR_INIT;
    fixture_key f;
    size_t offs[16];
    uint8_t b[1100];
    size_t n;
    char *t;
    sshkey k = {0};

    make_key(&f, "x");
    length_fields(f.bin, f.n, offs);
    memcpy(b, f.bin, f.n);
    n = f.n;
    switch (m->kind) {
    case 0:
        b[3] = 'X';
        break;
    case 1:
        b[offs[4] + 4] ^= 1;
        break;
    case 2: { /* cipher "none" -> "aes256-ctr": rebuild the header */
        uint8_t c[1100];
        size_t o = 0;
        memcpy(c, b, 15);
        o = 15;
        memcpy(c + o,
               "\0\0\0\x0a"
               "aes256-ctr",
               14);
        o += 14;
        memcpy(c + o, b + offs[1], n - offs[1]);
        o += n - offs[1];
        memcpy(b, c, o);
        n = o;
        break;
    }
    case 3:
        b[offs[3] - 1] = 2; /* nkeys is just before the public blob */
        break;
    case 4:
        b[n - 1] ^= 0x40;
        break;
    case 5:
        b[n++] = 0;
        break;
    case 6:
        b[offs[6] + 4] ^= 1; /* private section's pk */
        break;
    case 7:
        b[offs[7] + 4] ^= 1; /* first seed byte */
        break;
    }
    t = armour(b, n);
    cr_assert(parse_text(t, strlen(t), &k, &err) < 0, "%s was accepted", m->what);
    cr_assert(strstr(terok_error_message(&err), m->expect), "%s: %s", m->what,
              terok_error_message(&err));
    assert_no_key_in(terok_error_message(&err), &f);
    terok_error_clear(&err);
    free(t);
    done_key(&f);
}

Test(sshkey, other_armours_and_garbage)
{
    terok_error err = TEROK_ERROR_INIT;
    static const struct {
        const char *text, *expect;
    } c[] = {
        {"", "empty"},
        {"hello", "no '-----BEGIN OPENSSH PRIVATE KEY-----'"},
        {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA x", "public key"},
        {"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "RSA"},
        {"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "ECDSA"},
        {"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
         "encrypted"},
        {"-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n",
         "base64"},
        {"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "truncated"},
        {"junk\n-----BEGIN OPENSSH PRIVATE KEY-----\n", "text before"},
    };

    for (size_t i = 0; i < ELEMENTSOF(c); i++) {
        sshkey k = {0};
        cr_assert(parse_text(c[i].text, strlen(c[i].text), &k, &err) < 0, "%s", c[i].text);
        cr_assert(strstr(terok_error_message(&err), c[i].expect), "'%s': %s", c[i].text,
                  terok_error_message(&err));
        terok_error_clear(&err);
    }
}

/* libsodium 1.0.18 decodes any byte >= 0x80 as '/': text that is not base64 must not turn into
 * a key (found by tests/fuzz/core/fuzz-sshkey.c). */
Test(sshkey, non_ascii_base64_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    uint8_t pk[SSHKEY_PK_BYTES];
    sshkey k = {0};
    fixture_key f;
    char *b64;

    for (int i = 0;; i++) {
        make_key(&f, "x");
        b64 = sshkey_pub_base64(f.k.pk);
        if (strchr(b64, '/') && strchr(strchr(f.pem, '\n'), '/'))
            break;
        free(b64);
        done_key(&f);
        cr_assert(i < 100, "no key with a '/' in its base64");
    }
    cr_assert(sshkey_pub_base64_parse(b64, pk) == 0);
    *strchr(b64, '/') = (char)0xff;
    cr_assert(sshkey_pub_base64_parse(b64, pk) == -EINVAL);
    *strchr(strchr(f.pem, '\n'), '/') = (char)0xc3;
    cr_assert(parse_text(f.pem, strlen(f.pem), &k, &err) < 0);
    cr_assert(strstr(terok_error_message(&err), "base64"), "%s", terok_error_message(&err));
    terok_error_clear(&err);
    free(b64);
    done_key(&f);
}

/* ---- the agent protocol ---- */

typedef struct fake_agent {
    sshkey keys[2];
    size_t n; /* keys in scope */
    int signs;
} fake_agent;

static int fake_identities(void *ud, sshkey_info_cb cb, void *cb_ud)
{
    fake_agent *a = ud;

    for (size_t i = 0; i < a->n; i++) {
        sshkey_info k = {.name = "k", .comment = a->keys[i].comment, .fingerprint = "fp"};
        memcpy(k.pk, a->keys[i].pk, 32);
        cb(cb_ud, &k);
    }
    return 0;
}

static int fake_sign(void *ud, const uint8_t pk[32], const uint8_t *data, size_t len,
                     uint8_t sig[64])
{
    fake_agent *a = ud;

    for (size_t i = 0; i < a->n; i++)
        if (memcmp(a->keys[i].pk, pk, 32) == 0) {
            a->signs++;
            return sshkey_sign(a->keys[i].seed, pk, data, len, sig, NULL);
        }
    return -EPERM;
}

static const ssh_agent_ops fake_ops = {fake_identities, fake_sign};
static fake_agent agent;

static void agent_setup(void)
{
    terok_error err = TEROK_ERROR_INIT;

    memset(&agent, 0, sizeof agent);
    terok_assert_ok(sshkey_generate("in-scope", &agent.keys[0], &err), &err);
    terok_assert_ok(sshkey_generate("other", &agent.keys[1], &err), &err);
    agent.n = 1; /* keys[1] is not in this connection's scope */
}

static void agent_teardown(void)
{
    sshkey_done(&agent.keys[0]);
    sshkey_done(&agent.keys[1]);
}

static void handle(const uint8_t *body, size_t n, uint8_t **out, size_t *on)
{
    int r = ssh_agent_handle(body, n, &fake_ops, &agent, out, on);

    cr_assert(r != -ENOMEM);
    cr_assert(*on >= 5);
    uint32_t l = (uint32_t)(*out)[0] << 24 | (uint32_t)(*out)[1] << 16 | (uint32_t)(*out)[2] << 8 |
                 (*out)[3];
    cr_assert_eq(l, *on - 4, "reply frame length");
}

static bool is_failure(const uint8_t *out, size_t n)
{
    return n == 5 && out[4] == SSH_AGENT_FAILURE;
}

static size_t sign_request(uint8_t *b, const uint8_t pk[32], const uint8_t *data, size_t dn,
                           uint32_t flags)
{
    uint8_t blob[SSHKEY_BLOB_BYTES];
    size_t o = 0;

    sshkey_pub_blob(pk, blob);
    b[o++] = SSH_AGENTC_SIGN_REQUEST;
    b[o++] = 0, b[o++] = 0, b[o++] = 0, b[o++] = sizeof blob;
    memcpy(b + o, blob, sizeof blob);
    o += sizeof blob;
    b[o++] = (uint8_t)(dn >> 24), b[o++] = (uint8_t)(dn >> 16), b[o++] = (uint8_t)(dn >> 8),
    b[o++] = (uint8_t)dn;
    memcpy(b + o, data, dn);
    o += dn;
    b[o++] = (uint8_t)(flags >> 24), b[o++] = (uint8_t)(flags >> 16),
    b[o++] = (uint8_t)(flags >> 8), b[o++] = (uint8_t)flags;
    return o;
}

TestSuite(agent, .init = agent_setup, .fini = agent_teardown);

Test(agent, framing)
{
    uint8_t b[8] = {0, 0, 0, 1, 11};

    cr_assert_eq(ssh_agent_frame(b, 0), 0);
    cr_assert_eq(ssh_agent_frame(b, 3), 0);
    cr_assert_eq(ssh_agent_frame(b, 4), 0, "length known, body missing");
    cr_assert_eq(ssh_agent_frame(b, 5), 5);
    cr_assert_eq(ssh_agent_frame(b, 8), 5, "a second message behind is not consumed");
    memcpy(b, (uint8_t[]){0, 0, 0, 0}, 4);
    cr_assert_eq(ssh_agent_frame(b, 4), -EMSGSIZE, "zero length");
    memcpy(b, (uint8_t[]){0xff, 0xff, 0xff, 0xff}, 4);
    cr_assert_eq(ssh_agent_frame(b, 4), -EMSGSIZE, "huge length");
    memcpy(b, (uint8_t[]){0, 4, 0, 1}, 4); /* 256 KiB + 1 */
    cr_assert_eq(ssh_agent_frame(b, 4), -EMSGSIZE);
    memcpy(b, (uint8_t[]){0, 4, 0, 0}, 4); /* exactly 256 KiB: allowed, needs the bytes */
    cr_assert_eq(ssh_agent_frame(b, 8), 0);
}

Test(agent, identities_lists_only_the_scope)
{
    uint8_t req = SSH_AGENTC_REQUEST_IDENTITIES, *out = NULL, pk[32];
    size_t n;

    handle(&req, 1, &out, &n);
    cr_assert_eq(out[4], SSH_AGENT_IDENTITIES_ANSWER);
    cr_assert_eq(out[8], 1, "one key");
    cr_assert(sshkey_pub_blob_parse(out + 13, SSHKEY_BLOB_BYTES, pk) == 0);
    cr_assert(memcmp(pk, agent.keys[0].pk, 32) == 0);
    cr_assert(memmem(out, n, "in-scope", 8));
    cr_assert(!memmem(out, n, agent.keys[1].pk, 32), "the other scope's key is not listed");
    free(out);
    /* with a trailing byte: refused */
    uint8_t bad[2] = {SSH_AGENTC_REQUEST_IDENTITIES, 0};
    handle(bad, 2, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
}

Test(agent, sign_in_scope_verifies)
{
    uint8_t b[512], *out = NULL;
    const uint8_t data[] = "session-id and stuff";
    size_t n, l = sign_request(b, agent.keys[0].pk, data, sizeof data, 0);

    handle(b, l, &out, &n);
    cr_assert_eq(out[4], SSH_AGENT_SIGN_RESPONSE);
    cr_assert_eq(n, 4 + 1 + 4 + SSHKEY_SIGBLOB_BYTES);
    cr_assert(memcmp(out + 9, "\0\0\0\x0bssh-ed25519\0\0\0\x40", 19) == 0);
    cr_assert(crypto_sign_verify_detached(out + 9 + 19, data, sizeof data, agent.keys[0].pk) == 0);
    free(out);
    /* flags are ignored for ed25519 (SSH_AGENT_RSA_SHA2_512 and unknown bits) */
    l = sign_request(b, agent.keys[0].pk, data, sizeof data, 0x04 | 0x80);
    handle(b, l, &out, &n);
    cr_assert_eq(out[4], SSH_AGENT_SIGN_RESPONSE);
    free(out);
}

Test(agent, hostile_messages_get_failure)
{
    uint8_t b[512], *out = NULL;
    const uint8_t data[] = "x";
    size_t n, l;

    /* a key of another scope */
    l = sign_request(b, agent.keys[1].pk, data, sizeof data, 0);
    handle(b, l, &out, &n);
    cr_assert(is_failure(out, n), "sign with a key not in scope");
    free(out);
    cr_assert_eq(agent.signs, 0);
    /* every truncation of a valid sign request */
    l = sign_request(b, agent.keys[0].pk, data, sizeof data, 0);
    for (size_t cut = 0; cut < l; cut++) {
        handle(b, cut, &out, &n);
        cr_assert(is_failure(out, n), "sign request cut at %zu", cut);
        free(out);
    }
    /* trailing bytes */
    b[l] = 0;
    handle(b, l + 1, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
    /* huge inner lengths */
    l = sign_request(b, agent.keys[0].pk, data, sizeof data, 0);
    uint8_t h[512];
    memcpy(h, b, l);
    memcpy(h + 1, (uint8_t[]){0xff, 0xff, 0xff, 0xf0}, 4);
    handle(h, l, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
    memcpy(h, b, l);
    memcpy(h + 1 + 4 + SSHKEY_BLOB_BYTES, (uint8_t[]){0x7f, 0xff, 0xff, 0xff}, 4);
    handle(h, l, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
    /* a blob that is not ed25519 */
    memcpy(h, b, l);
    h[1 + 4 + 4 + 4] = 'X'; /* "ssh-ed25519" -> "sshXed25519" */
    handle(h, l, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
    /* unknown and unsupported types: add identity, remove all, lock, extension, 0, 255 */
    static const uint8_t types[] = {17, 19, 22, 27, 0, 255, SSH_AGENT_FAILURE, 1};
    for (size_t i = 0; i < sizeof types; i++) {
        handle(&types[i], 1, &out, &n);
        cr_assert(is_failure(out, n), "type %u", types[i]);
        free(out);
    }
    /* an empty body */
    handle(b, 0, &out, &n);
    cr_assert(is_failure(out, n));
    free(out);
    cr_assert_eq(agent.signs, 0, "nothing was signed");
}
