/* SPDX-License-Identifier: Apache-2.0 */
/* The gate daemon's decisions before any git runs (gate-route.c): gate_route_parse over the
 * raw request and gate_route_basic_token over the Authorization value. Input: one flags byte
 * (bits 0-1: number of query arguments; bit 2: a `service` argument is present), then the
 * method, the path, the service argument and the Authorization value, separated by '\n'.
 * A routed request is exactly "/<valid repo>.git/<endpoint>" with the method the endpoint takes;
 * a token fits the daemon's buffer and reads back from a header built around it. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gate-serve/gate-route.h"
#include "tokens.h"
#include "util/macro.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

/* The next '\n'-separated field of *s (NULL when none is left). */
static char *field(char **s)
{
    char *f = *s, *nl;

    if (!f)
        return NULL;
    nl = strchr(f, '\n');
    if (nl) {
        *nl = 0;
        *s = nl + 1;
    } else
        *s = NULL;
    return f;
}

static void check_route(const char *method, const char *path, const char *service, size_t n_args)
{
    gate_route r;
    char want[256];
    int st = gate_route_parse(method, path, service, n_args, &r);

    if (st != 0 && st != 400 && st != 404 && st != 405)
        abort();
    if (st != 0)
        return;
    if (!gate_route_repo_is_valid(r.repo, strlen(r.repo)) || r.service == GATE_SVC_NONE)
        abort();
    snprintf(want, sizeof want, "/%s.git/%s", r.repo, r.service_path);
    if (!streq(want, path))
        abort(); /* nothing else of the path slips through */
    if (streq(r.service_path, "info/refs")) {
        if (!streq(method, "GET") || n_args != 1 || !service ||
            !streq(service, gate_service_name(r.service)) || !strneq(r.query, "service=", 8) ||
            !streq(r.query + 8, service) || r.is_post)
            abort();
    } else if (!streq(method, "POST") || n_args != 0 || *r.query || !r.is_post ||
               !streq(r.service_path, gate_service_name(r.service)))
        abort();
}

static void check_token(const char *auth)
{
    char tok[TOKEN_TEXT_MAX + 1], again[TOKEN_TEXT_MAX + 1];
    int n = gate_route_basic_token(auth, tok, sizeof tok);

    if (n < 0) {
        if (tok[0])
            abort(); /* nothing is left behind on a refusal */
        return;
    }
    if ((size_t)n >= sizeof tok || strlen(tok) != (size_t)n)
        abort();
    if (n == 0 || strchr(tok, ':'))
        return;
    {
        /* "Basic base64(tok:)" gives tok back: the user name, as the password is empty */
        char raw[TOKEN_TEXT_MAX + 2],
            hdr[16 + sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_ORIGINAL)];
        size_t rn = (size_t)n + 1;

        memcpy(raw, tok, (size_t)n);
        raw[n] = ':';
        memcpy(hdr, "Basic ", 6);
        sodium_bin2base64(hdr + 6, sizeof hdr - 6, (const unsigned char *)raw, rn,
                          sodium_base64_VARIANT_ORIGINAL);
        if (gate_route_basic_token(hdr, again, sizeof again) != n || !streq(again, tok))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *rest, *method, *path, *service, *auth;

    if (size < 1)
        return 0;
    s = fuzz_strndup(data + 1, size - 1);
    rest = s;
    method = field(&rest);
    path = field(&rest);
    service = field(&rest);
    auth = rest; /* the rest, '\n' and all */
    check_route(method, path ? path : "", data[0] & 4 ? service : NULL, data[0] & 3);
    check_token(auth);
    free(s);
    return 0;
}
