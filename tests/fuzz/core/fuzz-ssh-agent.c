/* SPDX-License-Identifier: Apache-2.0 */
/* The ssh-agent protocol as the signer runs it on a connection: the input is the byte stream a
 * client sends, cut into frames by ssh_agent_frame and answered by ssh_agent_handle, with two
 * fixed in-memory ed25519 keys behind the ops (no vault). Every reply is one well-formed frame;
 * an IDENTITIES_ANSWER lists exactly our keys; a SIGN_RESPONSE carries a valid signature by the
 * key asked for over the data asked for; anything else is FAILURE. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ssh-agent.h"
#include "fuzz.h"
#include "sshkey.h"

#define N_KEYS 2

static sshkey keys[N_KEYS];
static const char *const comments[N_KEYS] = {"fuzz@terok", NULL};

typedef struct signed_req {
    bool called, ok;
    uint8_t pk[SSHKEY_PK_BYTES];
    const uint8_t *data;
    size_t len;
} signed_req;

static void free_keys(void)
{
    for (size_t i = 0; i < N_KEYS; i++)
        sshkey_done(&keys[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        uint8_t seed[SSHKEY_SEED_BYTES];
        terok_secret *s = NULL;

        memset(seed, (int)(0x41 + i), sizeof seed);
        if (terok_secret_new(seed, sizeof seed, &s) < 0 ||
            sshkey_from_seed(s, comments[i], &keys[i], NULL) < 0)
            abort();
        terok_secret_free(s);
    }
    atexit(free_keys);
    return 0;
}

static int ops_identities(void *ud, sshkey_info_cb cb, void *cb_ud)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        sshkey_info k = {.name = "k", .comment = keys[i].comment, .fingerprint = "-"};
        memcpy(k.pk, keys[i].pk, SSHKEY_PK_BYTES);
        if (cb(cb_ud, &k) != 0)
            break;
    }
    return 0;
}

static int ops_sign(void *ud, const uint8_t pk[SSHKEY_PK_BYTES], const uint8_t *data, size_t len,
                    uint8_t sig[SSHKEY_SIG_BYTES])
{
    signed_req *s = ud;

    s->called = true;
    memcpy(s->pk, pk, SSHKEY_PK_BYTES);
    s->data = data;
    s->len = len;
    for (size_t i = 0; i < N_KEYS; i++)
        if (memcmp(pk, keys[i].pk, SSHKEY_PK_BYTES) == 0) {
            s->ok = sshkey_sign(keys[i].seed, pk, data, len, sig, NULL) == 0;
            return s->ok ? 0 : -EPERM;
        }
    return -EPERM;
}

static const ssh_agent_ops ops = {ops_identities, ops_sign};

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A string at *p of what is left; advances. */
static bool take_str(const uint8_t **p, size_t *left, const uint8_t **s, size_t *n)
{
    if (*left < 4 || get_u32(*p) > *left - 4)
        return false;
    *n = get_u32(*p);
    *s = *p + 4;
    *p += 4 + *n;
    *left -= 4 + *n;
    return true;
}

static void check_identities(const uint8_t *p, size_t left)
{
    uint32_t n;

    if (left < 4 || (n = get_u32(p)) != N_KEYS)
        abort();
    p += 4;
    left -= 4;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *blob, *comment;
        size_t bn, cn;
        uint8_t pk[SSHKEY_PK_BYTES];

        if (!take_str(&p, &left, &blob, &bn) || !take_str(&p, &left, &comment, &cn) ||
            sshkey_pub_blob_parse(blob, bn, pk) < 0 || memcmp(pk, keys[i].pk, sizeof pk) != 0)
            abort();
        if (cn != (keys[i].comment ? strlen(keys[i].comment) : 0) ||
            (cn && memcmp(comment, keys[i].comment, cn) != 0))
            abort();
    }
    if (left != 0)
        abort();
}

static void check_signature(const uint8_t *p, size_t left, const signed_req *s)
{
    const uint8_t *sigblob, *type, *sig;
    size_t sbn, tn, sn;

    if (!s->called || !s->ok || !take_str(&p, &left, &sigblob, &sbn) || left != 0 ||
        sbn != SSHKEY_SIGBLOB_BYTES)
        abort();
    left = sbn;
    p = sigblob;
    if (!take_str(&p, &left, &type, &tn) || tn != strlen(SSHKEY_TYPE) ||
        memcmp(type, SSHKEY_TYPE, tn) != 0 || !take_str(&p, &left, &sig, &sn) ||
        sn != SSHKEY_SIG_BYTES || left != 0)
        abort();
    if (crypto_sign_verify_detached(sig, s->data, s->len, s->pk) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    for (;;) {
        int64_t f = ssh_agent_frame(data + off, size - off);
        signed_req s = {0};
        uint8_t *reply = NULL;
        size_t n = 0;
        int r;

        if (f < 0) {
            if (f != -EMSGSIZE || size - off < 4)
                abort();
            break; /* the signer closes the connection */
        }
        if (f == 0)
            break; /* waits for more */
        if (f < 5 || (size_t)f > size - off || f - 4 > SSH_AGENT_MAX_MESSAGE)
            abort();
        r = ssh_agent_handle(data + off + 4, (size_t)f - 4, &ops, &s, &reply, &n);
        if (r != data[off + 4] || !reply || n < 5 || get_u32(reply) != n - 4)
            abort(); /* the request type, and one whole frame back */
        switch (reply[4]) {
        case SSH_AGENT_FAILURE:
            if (n != 5 || (s.called && s.ok))
                abort(); /* a signature made is a signature sent */
            break;
        case SSH_AGENT_IDENTITIES_ANSWER:
            if (r != SSH_AGENTC_REQUEST_IDENTITIES || f != 5)
                abort();
            check_identities(reply + 5, n - 5);
            break;
        case SSH_AGENT_SIGN_RESPONSE:
            if (r != SSH_AGENTC_SIGN_REQUEST)
                abort();
            check_signature(reply + 5, n - 5, &s);
            break;
        default:
            abort();
        }
        free(reply);
        off += (size_t)f;
    }
    return 0;
}
