/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-route.c: the gate's routing and Basic-auth rules (gate-route.h). */
#include <sodium.h>
#include <strings.h>

#include "gate-serve/gate-route.h"
#include "tokens.h"
#include "util/base64.h"
#include "util/macro.h"

const char *gate_service_name(gate_service s)
{
    switch (s) {
    case GATE_SVC_UPLOAD_PACK:
        return "git-upload-pack";
    case GATE_SVC_RECEIVE_PACK:
        return "git-receive-pack";
    default:
        return "-";
    }
}

bool gate_route_repo_is_valid(const char *name, size_t n)
{
    if (n == 0 || n > GATE_REPO_MAX)
        return false;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
        if (c == '.' && i + 1 < n && name[i + 1] == '.')
            return false;
    }
    if (n >= 4 && memcmp(name + n - 4, ".git", 4) == 0)
        return false;
    return !(n >= 5 && memcmp(name + n - 5, ".lock", 5) == 0);
}

static bool path_is_clean(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *c = p; *c; c++) {
        unsigned char u = (unsigned char)*c;
        /* '%' outright: no endpoint needs an escape, so none can smuggle a '/' or a '.' past us */
        if (u <= ' ' || u >= 0x7f || u == '%' || u == '\\' || u == '#' || u == '?')
            return false;
        if (u == '/' && c[1] == '/')
            return false;
        if (u == '/' && c[1] == '.' &&
            (c[2] == '/' || c[2] == 0 || (c[2] == '.' && (c[3] == '/' || c[3] == 0))))
            return false;
    }
    return true;
}

int gate_route_parse(const char *method, const char *path, const char *service_arg, size_t n_args,
                     gate_route *ret)
{
    const char *dotgit, *rest;
    size_t n;
    bool get, post;

    *ret = (gate_route){.service_path = "", .query = ""};
    if (!method || !path || !path_is_clean(path))
        return 400;
    dotgit = strstr(path + 1, ".git/");
    if (!dotgit)
        return 404;
    n = (size_t)(dotgit - (path + 1));
    if (!gate_route_repo_is_valid(path + 1, n))
        return 404;
    rest = dotgit + 5;
    get = streq(method, "GET");
    post = streq(method, "POST");
    if (streq(rest, "info/refs")) {
        if (!get)
            return 405;
        if (!service_arg || n_args != 1)
            return 404; /* the dumb protocol: not served */
        if (streq(service_arg, "git-upload-pack")) {
            ret->service = GATE_SVC_UPLOAD_PACK;
            ret->query = "service=git-upload-pack";
        } else if (streq(service_arg, "git-receive-pack")) {
            ret->service = GATE_SVC_RECEIVE_PACK;
            ret->query = "service=git-receive-pack";
        } else
            return 404;
        ret->service_path = "info/refs";
    } else if (streq(rest, "git-upload-pack") || streq(rest, "git-receive-pack")) {
        ret->is_post = true; /* for the Allow header of a 405 */
        if (!post)
            return 405;
        if (n_args != 0)
            return 400;
        ret->service = rest[4] == 'u' ? GATE_SVC_UPLOAD_PACK : GATE_SVC_RECEIVE_PACK;
        ret->service_path =
            ret->service == GATE_SVC_UPLOAD_PACK ? "git-upload-pack" : "git-receive-pack";
        ret->is_post = true;
    } else
        return 404;
    memcpy(ret->repo, path + 1, n);
    ret->repo[n] = 0;
    return 0;
}

int gate_route_basic_token(const char *auth, char *buf, size_t cap)
{
    unsigned char raw[512];
    size_t raw_len = 0, b64_len, ulen, plen;
    const char *b64, *colon, *user, *pass, *tok;
    size_t toklen;
    const size_t plen_prefix = strlen(TOKEN_PREFIX_GATE);

    if (cap == 0)
        return -EINVAL;
    buf[0] = 0;
    if (!auth)
        return 0;
    while (*auth == ' ')
        auth++;
    if (strncasecmp(auth, "Basic", 5) != 0 || (auth[5] != ' ' && auth[5] != '\t'))
        return -EINVAL;
    b64 = auth + 6;
    while (*b64 == ' ' || *b64 == '\t')
        b64++;
    b64_len = strlen(b64);
    while (b64_len > 0 && (b64[b64_len - 1] == ' ' || b64[b64_len - 1] == '\t'))
        b64_len--;
    if (b64_len == 0 || b64_len > 4 * (sizeof raw / 3))
        return -EINVAL;
    if (base64_decode(raw, sizeof raw - 1, b64, b64_len, NULL, &raw_len, NULL) < 0) {
        sodium_memzero(raw, sizeof raw);
        return -EINVAL;
    }
    raw[raw_len] = 0;
    if (memchr(raw, 0, raw_len)) {
        sodium_memzero(raw, sizeof raw);
        return -EINVAL;
    }
    user = (const char *)raw;
    colon = memchr(raw, ':', raw_len);
    ulen = colon ? (size_t)(colon - user) : raw_len;
    pass = colon ? colon + 1 : "";
    plen = colon ? raw_len - ulen - 1 : 0;
    if (ulen >= plen_prefix && memcmp(user, TOKEN_PREFIX_GATE, plen_prefix) == 0)
        tok = user, toklen = ulen;
    else if (plen >= plen_prefix && memcmp(pass, TOKEN_PREFIX_GATE, plen_prefix) == 0)
        tok = pass, toklen = plen;
    else
        tok = user, toklen = ulen;
    if (toklen >= cap) {
        sodium_memzero(raw, sizeof raw);
        return -EINVAL;
    }
    memcpy(buf, tok, toklen);
    buf[toklen] = 0;
    sodium_memzero(raw, sizeof raw);
    return (int)toklen;
}
