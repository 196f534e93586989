/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ssh-agent.c: ssh-agent protocol messages. Every length is checked against what is left
 * of the message; anything unexpected is a FAILURE reply, never a crash. */
#include <sodium.h>

#include "broker/ssh-agent.h"
#include "util/macro.h"

int64_t ssh_agent_frame(const uint8_t *buf, size_t len)
{
    uint32_t n;

    if (len < 4)
        return 0;
    n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n == 0 || n > SSH_AGENT_MAX_MESSAGE)
        return -EMSGSIZE;
    return len - 4 >= n ? (int64_t)n + 4 : 0;
}

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void w_bytes(wbuf *w, const void *s, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = MAX(w->cap * 2, w->n + n + 64);
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    w_bytes(w, b, 4);
}

static void w_str(wbuf *w, const void *s, size_t n)
{
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}

static void w_byte(wbuf *w, uint8_t b)
{
    w_bytes(w, &b, 1);
}

/* Set the frame length once the body is complete. */
static int w_finish(wbuf *w, uint8_t **ret, size_t *ret_len)
{
    if (w->oom) {
        free(w->p);
        return -ENOMEM;
    }
    uint32_t n = (uint32_t)(w->n - 4);
    w->p[0] = (uint8_t)(n >> 24);
    w->p[1] = (uint8_t)(n >> 16);
    w->p[2] = (uint8_t)(n >> 8);
    w->p[3] = (uint8_t)n;
    *ret = w->p;
    *ret_len = w->n;
    return 0;
}

static int failure(uint8_t **ret, size_t *ret_len)
{
    uint8_t *p = malloc(5);

    if (!p)
        return -ENOMEM;
    memcpy(p, (uint8_t[]){0, 0, 0, 1, SSH_AGENT_FAILURE}, 5);
    *ret = p;
    *ret_len = 5;
    return 0;
}

typedef struct ident_acc {
    wbuf w;
    uint32_t n;
} ident_acc;

static int ident_cb(void *ud, const sshkey_info *k)
{
    ident_acc *a = ud;
    uint8_t blob[SSHKEY_BLOB_BYTES];

    sshkey_pub_blob(k->pk, blob);
    w_str(&a->w, blob, sizeof blob);
    w_str(&a->w, strempty(k->comment), strlen(strempty(k->comment)));
    a->n++;
    return 0;
}

static int identities(const ssh_agent_ops *ops, void *ud, uint8_t **ret, size_t *ret_len)
{
    ident_acc a = {0};
    wbuf w = {0};

    if (ops->identities(ud, ident_cb, &a) < 0 || a.w.oom) {
        free(a.w.p);
        return failure(ret, ret_len);
    }
    w_u32(&w, 0);
    w_byte(&w, SSH_AGENT_IDENTITIES_ANSWER);
    w_u32(&w, a.n);
    if (a.n)
        w_bytes(&w, a.w.p, a.w.n);
    free(a.w.p);
    if (w_finish(&w, ret, ret_len) < 0)
        return failure(ret, ret_len);
    return 0;
}

static int rd_str(const uint8_t **p, size_t *left, const uint8_t **s, size_t *n)
{
    uint32_t l;

    if (*left < 4)
        return -EINVAL;
    l = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 | (*p)[3];
    *p += 4;
    *left -= 4;
    if (l > *left)
        return -EINVAL;
    *s = *p;
    *n = l;
    *p += l;
    *left -= l;
    return 0;
}

static int sign(const uint8_t *p, size_t left, const ssh_agent_ops *ops, void *ud, uint8_t **ret,
                size_t *ret_len)
{
    const uint8_t *blob, *data;
    size_t bn, dn;
    uint8_t pk[SSHKEY_PK_BYTES], sig[SSHKEY_SIG_BYTES];
    wbuf w = {0};

    /* string key blob, string data, uint32 flags (meaningless for ed25519), nothing more */
    if (rd_str(&p, &left, &blob, &bn) < 0 || rd_str(&p, &left, &data, &dn) < 0 || left != 4 ||
        sshkey_pub_blob_parse(blob, bn, pk) < 0)
        return failure(ret, ret_len);
    if (ops->sign(ud, pk, data, dn, sig) < 0)
        return failure(ret, ret_len);
    w_u32(&w, 0);
    w_byte(&w, SSH_AGENT_SIGN_RESPONSE);
    w_u32(&w, SSHKEY_SIGBLOB_BYTES);
    w_str(&w, SSHKEY_TYPE, strlen(SSHKEY_TYPE));
    w_str(&w, sig, sizeof sig);
    if (w_finish(&w, ret, ret_len) < 0)
        return failure(ret, ret_len);
    return 0;
}

int ssh_agent_handle(const uint8_t *body, size_t len, const ssh_agent_ops *ops, void *userdata,
                     uint8_t **ret, size_t *ret_len)
{
    int r;

    if (len == 0) {
        r = failure(ret, ret_len);
        return r < 0 ? r : -1;
    }
    switch (body[0]) {
    case SSH_AGENTC_REQUEST_IDENTITIES:
        r = len == 1 ? identities(ops, userdata, ret, ret_len) : failure(ret, ret_len);
        break;
    case SSH_AGENTC_SIGN_REQUEST:
        r = sign(body + 1, len - 1, ops, userdata, ret, ret_len);
        break;
    default:
        r = failure(ret, ret_len);
    }
    return r < 0 ? r : body[0];
}
