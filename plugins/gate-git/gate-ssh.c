/* SPDX-License-Identifier: Apache-2.0 */
/* gate-ssh.c: ssh:// upstreams. The host key the upstream offers is checked, before any
 * authentication, against the project's pinned key or the [gate.git] known-hosts file (OpenSSH
 * format, hashed entries too) and refused when unknown or changed, naming host and SHA256
 * fingerprint; libgit2's own verdict (the operator's known_hosts) is never consulted. The client
 * key is the vault SSH key the core lent as a signer: libssh2 gets only its public blob and a
 * sign callback that asks the core, so the private key never enters this process's libgit2,
 * libssh2 or disk. Never prints. */
#include <ctype.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <strings.h>

#include "gate-state.h"
#include "util/base64.h"

static const char *const ssh_schemes[] = {"ssh://", "ssh+git://", "git+ssh://"};

static const char *ssh_rest(const char *url)
{
    for (size_t i = 0; i < ELEMENTSOF(ssh_schemes); i++)
        if (strneq(url, ssh_schemes[i], strlen(ssh_schemes[i])))
            return url + strlen(ssh_schemes[i]);
    return NULL;
}

bool gg_url_is_scp(const char *url)
{
    const char *colon, *slash;

    if (!url || url[0] == '/' || strstr(url, "://"))
        return false;
    colon = strchr(url, ':');
    slash = strchr(url, '/');
    return colon && colon > url && (!slash || colon < slash);
}

bool gg_url_is_ssh(const char *url)
{
    return url && (ssh_rest(url) || gg_url_is_scp(url));
}

int gg_ssh_endpoint(const char *url, char *host, size_t host_size, int *ret_port, char *user,
                    size_t user_size)
{
    const char *rest = ssh_rest(url), *end, *at, *h, *hend, *p = NULL;
    bool scp = !rest;
    long port = 22;

    if (!rest && !gg_url_is_scp(url))
        return -EINVAL;
    if (!rest)
        rest = url;
    end = scp ? rest + strlen(rest) : rest + strcspn(rest, "/");
    /* user@ ends at the last '@' before the path; in scp-like form before the first ':' (which
     * is the path's, or inside a bracketed host after any user@) */
    at = NULL;
    for (const char *s = rest, *e = scp ? strchr(rest, ':') : end; s < e; s++)
        if (*s == '@')
            at = s;
    h = at ? at + 1 : rest;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (!hend || hend >= end)
            return -EINVAL;
        h++;
        if (hend[1] == ':')
            p = hend + 2;
    } else {
        hend = h + strcspn(h, ":/");
        if (hend > end)
            hend = end;
        if (*hend == ':')
            p = hend + 1;
    }
    if (scp)
        p = NULL; /* scp-like: what follows ':' is the path; the port is 22 */
    if (hend == h || (size_t)(hend - h) >= host_size || h[0] == '-')
        return -EINVAL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    if (p && *p && *p != '/') {
        char *e;
        errno = 0;
        port = strtol(p, &e, 10);
        if (errno || e == p || (*e && *e != '/') || port < 1 || port > 65535)
            return -EINVAL;
    }
    *ret_port = (int)port;
    if (user && user_size) {
        user[0] = '\0';
        if (at && (size_t)(at - rest) < user_size && !memchr(rest, ':', (size_t)(at - rest))) {
            memcpy(user, rest, (size_t)(at - rest));
            user[at - rest] = '\0';
        }
    }
    return 0;
}

/* --- host keys ----------------------------------------------------------------------------- */

/* The type name inside a key blob (string type, ...) into out; false when malformed. */
static bool blob_type(const uint8_t *blob, size_t len, char *out, size_t out_size)
{
    uint32_t n;

    if (len < 4)
        return false;
    n = (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3];
    if (n == 0 || n > len - 4 || n >= out_size)
        return false;
    memcpy(out, blob + 4, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] < 0x21 || out[i] > 0x7e)
            return false;
    return true;
}

void gg_key_fingerprint(const uint8_t *blob, size_t len, char out[GG_FP_SIZE])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
                                       sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];

    crypto_hash_sha256(h, blob, len);
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    snprintf(out, GG_FP_SIZE, "SHA256:%s", b64);
}

/* "TYPE BASE64" (words split by blanks) into a blob; the type word must be the blob's. */
static int parse_key_words(const char *type, size_t type_len, const char *b64, size_t b64_len,
                           uint8_t **ret, size_t *ret_len)
{
    _cleanup_free_ uint8_t *blob = NULL;
    char t[64];
    size_t n = 0;

    if (b64_len == 0 || b64_len > 16384 || type_len == 0)
        return -EINVAL;
    blob = malloc(b64_len);
    if (!blob)
        return -ENOMEM;
    if (base64_decode(blob, b64_len, b64, b64_len, NULL, &n, NULL) < 0 ||
        !blob_type(blob, n, t, sizeof t) || strlen(t) != type_len || !strneq(t, type, type_len))
        return -EINVAL;
    *ret = TAKE_PTR(blob);
    *ret_len = n;
    return 0;
}

int gg_parse_host_key(const char *line, uint8_t **ret, size_t *ret_len)
{
    const char *t, *b;
    size_t tl, bl;

    if (!line)
        return -EINVAL;
    t = line + strspn(line, " \t");
    tl = strcspn(t, " \t");
    b = t + tl + strspn(t + tl, " \t");
    bl = strcspn(b, " \t\r\n");
    return parse_key_words(t, tl, b, bl, ret, ret_len);
}

char *gg_host_key_text(const uint8_t *blob, size_t len)
{
    char t[64], *out = NULL;
    size_t b64_size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    _cleanup_free_ char *b64 = malloc(b64_size);

    if (!b64 || !blob_type(blob, len, t, sizeof t))
        return NULL;
    sodium_bin2base64(b64, b64_size, blob, len, sodium_base64_VARIANT_ORIGINAL);
    return asprintf(&out, "%s %s", t, b64) < 0 ? NULL : out;
}

/* OpenSSH pattern: '*' and '?' wildcards, case-insensitive. A mismatch goes back to the last
 * '*' only (what an earlier one could take, the last one takes too), so a known_hosts pattern
 * of many stars costs length x length, not an exponential. */
static bool glob_match(const char *p, const char *pe, const char *s)
{
    const char *star = NULL, *retry = NULL;

    while (*s) {
        if (p < pe && *p == '*') {
            star = ++p;
            retry = s;
        } else if (p < pe &&
                   (*p == '?' || tolower((unsigned char)*p) == tolower((unsigned char)*s))) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++retry;
        } else
            return false;
    }
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

/* |1|base64(salt)|base64(HMAC-SHA1(salt, name)) */
static bool hashed_match(const char *e, size_t len, const char *name)
{
    uint8_t salt[64], want[64], got[EVP_MAX_MD_SIZE];
    size_t sl = 0, wl = 0;
    unsigned int gl = 0;
    const char *bar;

    if (len < 4 || !strneq(e, "|1|", 3))
        return false;
    e += 3;
    len -= 3;
    bar = memchr(e, '|', len);
    if (!bar || base64_decode(salt, sizeof salt, e, (size_t)(bar - e), NULL, &sl, NULL) < 0 ||
        base64_decode(want, sizeof want, bar + 1, len - (size_t)(bar - e) - 1, NULL, &wl, NULL) <
            0 ||
        wl != 20)
        return false;
    if (!HMAC(EVP_sha1(), salt, (int)sl, (const unsigned char *)name, strlen(name), got, &gl) ||
        gl != 20)
        return false;
    return sodium_memcmp(got, want, 20) == 0;
}

/* Whether a known_hosts host field names `name`: 1 yes, 0 no (a negated pattern that matches
 * is a no too). */
static int hosts_match(const char *f, size_t len, const char *name)
{
    bool hit = false;

    if (len >= 3 && strneq(f, "|1|", 3))
        return hashed_match(f, len, name);
    for (const char *s = f, *end = f + len; s < end;) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        const char *pe = c ? c : end;
        bool neg = *s == '!';
        if (glob_match(s + neg, pe, name)) {
            if (neg)
                return 0;
            hit = true;
        }
        s = pe + 1;
    }
    return hit;
}

/* KH_OTHER_TYPE: the host is listed, but only with keys of other types than the one offered. */
enum { KH_UNKNOWN, KH_MATCH, KH_CHANGED, KH_OTHER_TYPE, KH_REVOKED };

/* Look the key up for name ("host" or "[host]:port") in an OpenSSH known_hosts file. */
static int known_hosts_lookup(const char *path, const char *name, const uint8_t *key,
                              size_t key_len, int *ret)
{
    _cleanup_free_ char *line = NULL;
    FILE *f = fopen(path, "re");
    size_t cap = 0;
    bool match = false, other = false, other_type = false, revoked = false;
    char want[64] = "";

    *ret = KH_UNKNOWN;
    if (!f)
        return negative_errno();
    (void)blob_type(key, key_len, want, sizeof want);
    while (getline(&line, &cap, f) > 0) {
        const char *w[4];
        size_t wl[4], n = 0;
        const char *s = line;
        bool is_revoked = false;

        while (n < 4) {
            s += strspn(s, " \t");
            if (!*s || *s == '\n' || *s == '#')
                break;
            w[n] = s;
            wl[n] = strcspn(s, " \t\r\n");
            s += wl[n];
            n++;
        }
        if (n >= 1 && w[0][0] == '@') {
            if (wl[0] == 8 && strneq(w[0], "@revoked", 8))
                is_revoked = true;
            else
                continue; /* @cert-authority: certificates are not supported */
            memmove(w, w + 1, sizeof w[0] * 3);
            memmove(wl, wl + 1, sizeof wl[0] * 3);
            n--;
        }
        if (n < 3 || !hosts_match(w[0], wl[0], name))
            continue;
        {
            _cleanup_free_ uint8_t *blob = NULL;
            size_t bl = 0;
            bool same;
            if (parse_key_words(w[1], wl[1], w[2], wl[2], &blob, &bl) < 0)
                continue;
            same = bl == key_len && memcmp(blob, key, bl) == 0;
            if (is_revoked && same)
                revoked = true;
            else if (!is_revoked && same)
                match = true;
            else if (!is_revoked && wl[1] == strlen(want) && strneq(w[1], want, wl[1]))
                other = true;
            else if (!is_revoked)
                other_type = true;
        }
    }
    fclose(f);
    *ret = revoked      ? KH_REVOKED
           : match      ? KH_MATCH
           : other      ? KH_CHANGED
           : other_type ? KH_OTHER_TYPE
                        : KH_UNKNOWN;
    return 0;
}

int gg_cert_cb(git_cert *cert, int valid, const char *host_, void *payload)
{
    gg_remote_ctx *ctx = payload;
    const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
    const uint8_t *key;
    char host[256], name[300], fp[GG_FP_SIZE], q[200], type[64], ptype[64] = "?";
    _cleanup_free_ char *text = NULL;
    int port, kh = KH_UNKNOWN, r;

    (void)valid; /* libgit2's verdict comes from a known_hosts we never trust */
    (void)host_;
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
        return GIT_PASSTHROUGH; /* TLS: libgit2 verifies against the system CAs */
    if (!(hk->type & GIT_CERT_SSH_RAW) || !hk->hostkey || hk->hostkey_len == 0 ||
        gg_ssh_endpoint(ctx->url, host, sizeof host, &port, NULL, 0) < 0) {
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: the SSH host key of upstream '%s' cannot be checked; refused",
                 gg_quote(ctx->url, q));
        return -1;
    }
    key = (const uint8_t *)hk->hostkey;
    gg_key_fingerprint(key, hk->hostkey_len, fp);
    text = gg_host_key_text(key, hk->hostkey_len);
    if (!text || !blob_type(key, hk->hostkey_len, type, sizeof type)) {
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: upstream '%s' offered a malformed SSH host key; refused",
                 gg_quote(ctx->url, q));
        return -1;
    }
    if (port == 22)
        snprintf(name, sizeof name, "%s", host);
    else
        snprintf(name, sizeof name, "[%s]:%d", host, port);
    gg_quote(name, q);
    if (ctx->host_key) {
        _cleanup_free_ uint8_t *pin = NULL;
        size_t pl = 0;
        char pfp[GG_FP_SIZE];
        if (gg_parse_host_key(ctx->host_key, &pin, &pl) < 0) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: the host key pinned for '%s' is damaged; refused", q);
            return -1;
        }
        if (pl == hk->hostkey_len && memcmp(pin, key, pl) == 0)
            return 0;
        gg_key_fingerprint(pin, pl, pfp);
        if (!blob_type(pin, pl, ptype, sizeof ptype) || !streq(ptype, type)) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: '%s' offered its %s host key %s (%s), but the project pinned a %s key "
                     "(%s); refused — the gate's SSH library negotiates ECDSA before Ed25519, so "
                     "verify the %s key and pin it instead",
                     q, type, fp, text ? text : "?", ptype, pfp, type);
            return -1;
        }
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: the SSH host key of '%s' CHANGED: it offers %s %s, the project pinned %s; "
                 "refused, nothing fetched or pushed (if the change is expected, re-add the "
                 "project with the new --host-key)",
                 q, type, fp, pfp);
        return -1;
    }
    if (ctx->g->known_hosts) {
        r = known_hosts_lookup(ctx->g->known_hosts, name, key, hk->hostkey_len, &kh);
        if (r < 0 && r != -ENOENT) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: cannot read known-hosts '%s': %s; host key of '%s' refused",
                     ctx->g->known_hosts, strerror(-r), q);
            return -1;
        }
    }
    switch (kh) {
    case KH_MATCH:
        break;
    case KH_REVOKED:
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: the SSH host key of '%s' (%s) is marked @revoked in '%s'; refused", q, fp,
                 ctx->g->known_hosts);
        return -1;
    case KH_CHANGED:
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: the SSH host key of '%s' CHANGED: it offers %s %s, which '%s' does not "
                 "list for it; refused, nothing fetched or pushed",
                 q, type, fp, ctx->g->known_hosts);
        return -1;
    case KH_OTHER_TYPE:
        snprintf(ctx->why, sizeof ctx->why,
                 "gate: '%s' offered its %s host key %s (%s), and '%s' lists only keys of other "
                 "types for it; refused — verify this key and add it there (ssh-keyscan lists "
                 "every key of a host)",
                 q, type, fp, text ? text : "?", ctx->g->known_hosts);
        return -1;
    default:
        if (!ctx->accept_new) {
            snprintf(ctx->why, sizeof ctx->why,
                     "gate: unknown SSH host key of '%s': %s (%s); refused — verify it, then "
                     "pin it with 'gate add --host-key \"%s\"' (or --accept-host-key) or list it "
                     "in [gate.git] known-hosts",
                     q, fp, text, text);
            return -1;
        }
    }
    if (ctx->accept_new && !ctx->seen_key)
        ctx->seen_key = TAKE_PTR(text); /* recorded by the caller: trust on first use */
    return 0;
}

/* --- client key ---------------------------------------------------------------------------- */

/* libssh2 frees the signature with its allocator: libgit2 creates sessions with the default
 * one, malloc/free. */
static int sign_cb(LIBSSH2_SESSION *session, unsigned char **sig, size_t *sig_len,
                   const unsigned char *data, size_t data_len, void **abstract)
{
    gg_remote_ctx *ctx = *abstract;
    uint8_t buf[GG_SIG_MAX];
    size_t n = 0;
    int r = -EACCES;

    (void)session;
    pthread_mutex_lock(&ctx->g->cred_lock);
    if (ctx->g->ssh_sign && streq(ctx->g->cred_repo, ctx->repo))
        r = ctx->g->ssh_sign(ctx->g->ssh_signer, data, data_len, buf, sizeof buf, &n);
    pthread_mutex_unlock(&ctx->g->cred_lock);
    if (r < 0 || n == 0 || n > sizeof buf) {
        snprintf(ctx->why, sizeof ctx->why, "gate: the vault could not sign for the upstream: %s",
                 strerror(r < 0 ? -r : EIO));
        return -1;
    }
    *sig = malloc(n);
    if (!*sig)
        return -1;
    memcpy(*sig, buf, n);
    *sig_len = n;
    return 0;
}

int gg_ssh_credential(git_credential **out, gg_remote_ctx *ctx, const char *user)
{
    _cleanup_free_ uint8_t *pub = NULL;
    size_t len;

    pthread_mutex_lock(&ctx->g->cred_lock);
    len = ctx->g->ssh_pub_len;
    pub = ctx->g->ssh_sign && streq(ctx->g->cred_repo, ctx->repo) ? malloc(len) : NULL;
    if (pub)
        memcpy(pub, ctx->g->ssh_pub, len);
    pthread_mutex_unlock(&ctx->g->cred_lock);
    if (!pub)
        return -ENOENT;
    return git_credential_ssh_custom_new(out, user, (const char *)pub, len, sign_cb, ctx) < 0 ? -EIO
                                                                                              : 0;
}
