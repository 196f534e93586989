/* SPDX-License-Identifier: Apache-2.0 */
/* broker/routes.c: parsing and matching broker routes. */
#include <ctype.h>
#include <fnmatch.h>

#include "broker/routes.h"
#include "config-internal.h"
#include "error.h"
#include "util/macro.h"
#include "util/strv.h"

#define DEFAULT_TOKEN_HEADERS "authorization x-api-key private-token"
#define DEFAULT_MAX_BODY (8LL << 30)
#define DEFAULT_WS_IDLE_MS (10 * 60 * 1000)

static bool header_name_ok(const char *s)
{
    /* RFC 9110 token characters */
    if (!s || !*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool env_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 128 || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

/* http(s)://host[:port][/path], no userinfo, no query, no fragment, printable ASCII. */
static int url_check(const char *route_name, const char *key, const char *u, terok_error *err)
{
    const char *rest;

    if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    else
        return terok_error_set(err, -EINVAL,
                               "route '%s': %s '%s' must start with http:// or https://",
                               route_name, key, u);
    if (!*rest || *rest == '/')
        return terok_error_set(err, -EINVAL, "route '%s': %s '%s' has no host", route_name, key, u);
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || strchr("?#@\\", *p))
            return terok_error_set(err, -EINVAL,
                                   "route '%s': %s '%s' may not contain spaces, control "
                                   "characters, userinfo, a query or a fragment",
                                   route_name, key, u);
    return 0;
}

static char *strip_slash(const char *u)
{
    char *s = strdup(u);
    size_t n;

    if (!s)
        return NULL;
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
    return s;
}

static int add_upstream(route *rt, const char *prefix, const char *url)
{
    route_upstream *v = reallocarray(rt->upstreams, rt->n_upstreams + 1, sizeof(*v));

    if (!v)
        return -ENOMEM;
    rt->upstreams = v;
    v[rt->n_upstreams].prefix = strdup(prefix);
    v[rt->n_upstreams].url = strip_slash(url);
    if (!v[rt->n_upstreams].prefix || !v[rt->n_upstreams].url)
        return -ENOMEM;
    rt->n_upstreams++;
    return 0;
}

static int cmp_prefix_len(const void *a, const void *b)
{
    const route_upstream *x = a, *y = b;
    size_t lx = strlen(x->prefix), ly = strlen(y->prefix);

    return lx < ly ? 1 : lx > ly ? -1 : 0;
}

int route_parse(const char *name, route_get_fn get, void *ud, route *rt, terok_error *err)
{
    const char *v;
    int r;

    memset(rt, 0, sizeof(*rt));
    if (!name || !config_route_name_is_valid(name))
        return terok_error_set(err, -EINVAL,
                               "route name '%s' is invalid: use [a-z0-9][a-z0-9_-]*, at most 64",
                               name ? name : "");
    rt->name = strdup(name);
    v = get(ud, "upstream");
    if (isempty(v))
        return terok_error_set(err, -EINVAL, "route '%s': 'upstream' is required", name);
    r = url_check(name, "upstream", v, err);
    if (r < 0)
        return r;
    v = get(ud, "credential");
    if (isempty(v))
        return terok_error_set(err, -EINVAL, "route '%s': 'credential' is required", name);
    rt->credential = strdup(v);
    v = get(ud, "auth-header");
    v = isempty(v) ? "authorization" : v;
    if (!header_name_ok(v))
        return terok_error_set(err, -EINVAL, "route '%s': auth-header '%s' is not a header name",
                               name, v);
    rt->auth_header = strdup(v);
    v = get(ud, "auth-prefix");
    if (!v)
        v = strcasecmp(rt->auth_header, "authorization") == 0 ? "Bearer " : "";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < ' ' || (unsigned char)*p == 0x7f)
            return terok_error_set(
                err, -EINVAL, "route '%s': auth-prefix may not contain control characters", name);
    rt->auth_prefix = strdup(v);
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "base-url-env" : "token-env";
        v = get(ud, key);
        if (v && !env_name_ok(v))
            return terok_error_set(err, -EINVAL,
                                   "route '%s': %s '%s' is not an environment variable name", name,
                                   key, v);
        *(i ? &rt->base_url_env : &rt->token_env) = v ? strdup(v) : NULL;
    }

    /* path-upstreams = /v1/files=https://files.example /v2=https://... */
    v = get(ud, "path-upstreams");
    if (!isempty(v)) {
        _cleanup_free_ char *copy = strdup(v);
        char *save = NULL;
        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq || tok[0] != '/')
                return terok_error_set(err, -EINVAL,
                                       "route '%s': path-upstreams entry '%s' must be "
                                       "/PREFIX=URL",
                                       name, tok);
            *eq = 0;
            r = url_check(name, "path-upstreams", eq + 1, err);
            if (r < 0)
                return r;
            if (add_upstream(rt, tok, eq + 1) < 0)
                return terok_error_set(err, -ENOMEM, "out of memory");
        }
    }
    if (add_upstream(rt, "", get(ud, "upstream")) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    qsort(rt->upstreams, rt->n_upstreams, sizeof(*rt->upstreams), cmp_prefix_len);

    /* allow = GET:/v1/models POST:/v1/messages *:/v1/files/... */
    v = get(ud, "allow");
    if (!isempty(v)) {
        _cleanup_free_ char *copy = strdup(v);
        char *save = NULL;
        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            char *colon = strchr(tok, ':');
            route_rule *nv;
            if (!colon || colon == tok || colon[1] != '/')
                return terok_error_set(
                    err, -EINVAL, "route '%s': allow rule '%s' must be METHOD:/PATH", name, tok);
            *colon = 0;
            for (const char *p = tok; *p; p++)
                if (!(isupper((unsigned char)*p) || *p == '*'))
                    return terok_error_set(err, -EINVAL,
                                           "route '%s': allow rule method '%s' must be upper "
                                           "case or *",
                                           name, tok);
            nv = reallocarray(rt->rules, rt->n_rules + 1, sizeof(*nv));
            if (!nv)
                return terok_error_set(err, -ENOMEM, "out of memory");
            rt->rules = nv;
            nv[rt->n_rules].method = strdup(tok);
            nv[rt->n_rules].path = strdup(colon + 1);
            rt->n_rules++;
        }
    }

    v = get(ud, "token-headers");
    {
        _cleanup_free_ char *copy = strdup(isempty(v) ? DEFAULT_TOKEN_HEADERS : v);
        char *save = NULL;
        for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            if (!header_name_ok(tok))
                return terok_error_set(err, -EINVAL,
                                       "route '%s': token-headers entry '%s' is not a header "
                                       "name",
                                       name, tok);
            for (char *p = tok; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (strv_extend(&rt->token_headers, tok) < 0)
                return terok_error_set(err, -ENOMEM, "out of memory");
        }
    }

    v = get(ud, "oauth-token-url");
    if (!isempty(v)) {
        r = url_check(name, "oauth-token-url", v, err);
        if (r < 0)
            return r;
        rt->oauth_token_url = strdup(v);
        v = get(ud, "oauth-client-id");
        if (isempty(v))
            return terok_error_set(err, -EINVAL,
                                   "route '%s': oauth-token-url needs oauth-client-id", name);
        rt->oauth_client_id = strdup(v);
    }
    rt->max_body = DEFAULT_MAX_BODY;
    v = get(ud, "max-body");
    if (!isempty(v)) {
        uint64_t n;
        if (parse_size(v, &n) < 0 || n == 0 || n > (uint64_t)INT64_MAX)
            return terok_error_set(err, -EINVAL, "route '%s': max-body '%s' is not a size", name,
                                   v);
        rt->max_body = (long long)n;
    }
    rt->websocket = true;
    v = get(ud, "websocket");
    if (!isempty(v) && parse_bool(v, &rt->websocket) < 0)
        return terok_error_set(err, -EINVAL, "route '%s': websocket '%s' is not yes or no", name,
                               v);
    rt->scrub = true;
    v = get(ud, "scrub-responses");
    if (!isempty(v) && parse_bool(v, &rt->scrub) < 0)
        return terok_error_set(err, -EINVAL, "route '%s': scrub-responses '%s' is not yes or no",
                               name, v);
    rt->ws_idle_ms = DEFAULT_WS_IDLE_MS;
    v = get(ud, "websocket-idle");
    if (!isempty(v) && (parse_duration_ms(v, &rt->ws_idle_ms) < 0 || rt->ws_idle_ms < 1000 ||
                        rt->ws_idle_ms > 86400000))
        return terok_error_set(err, -EINVAL,
                               "route '%s': websocket-idle '%s' is not a duration from 1s to 1d",
                               name, v);
    return 0;
}

void route_done(route *rt)
{
    free(rt->name);
    free(rt->auth_header);
    free(rt->auth_prefix);
    free(rt->credential);
    free(rt->token_env);
    free(rt->base_url_env);
    strv_free(rt->token_headers);
    for (size_t i = 0; i < rt->n_upstreams; i++) {
        free(rt->upstreams[i].prefix);
        free(rt->upstreams[i].url);
    }
    free(rt->upstreams);
    for (size_t i = 0; i < rt->n_rules; i++) {
        free(rt->rules[i].method);
        free(rt->rules[i].path);
    }
    free(rt->rules);
    free(rt->oauth_token_url);
    free(rt->oauth_client_id);
    memset(rt, 0, sizeof(*rt));
}

typedef struct {
    const config *c;
    char section[96];
} cfg_get;

static const char *get_from_config(void *ud, const char *key)
{
    cfg_get *g = ud;
    return config_get(g->c, g->section, key);
}

int routes_from_config(const config *c, routes *ret, terok_error *err)
{
    const char **names = NULL;
    size_t n = config_sections_with_prefix(c, "route", &names);
    routes rs = {0};

    rs.v = calloc(n ? n : 1, sizeof(route));
    if (!rs.v)
        return terok_error_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        cfg_get g = {.c = c};
        int r;

        snprintf(g.section, sizeof g.section, "%s", names[i]);
        /* "route.NAME" */
        r = route_parse(names[i] + strlen("route."), get_from_config, &g, &rs.v[rs.n], err);
        rs.n++;
        if (r < 0) {
            routes_done(&rs);
            return r;
        }
    }
    *ret = rs;
    return 0;
}

void routes_done(routes *r)
{
    for (size_t i = 0; i < r->n; i++)
        route_done(&r->v[i]);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

const route *routes_find(const routes *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->v[i].name) == len && memcmp(r->v[i].name, name, len) == 0)
            return &r->v[i];
    return NULL;
}

const route_upstream *route_upstream_for(const route *rt, const char *path)
{
    for (size_t i = 0; i < rt->n_upstreams; i++) {
        size_t n = strlen(rt->upstreams[i].prefix);
        if (strncmp(path, rt->upstreams[i].prefix, n) == 0 &&
            (path[n] == 0 || path[n] == '/' || n == 0 || rt->upstreams[i].prefix[n - 1] == '/'))
            return &rt->upstreams[i];
    }
    return &rt->upstreams[rt->n_upstreams - 1];
}

bool route_allows(const route *rt, const char *method, const char *path)
{
    if (rt->n_rules == 0)
        return true;
    for (size_t i = 0; i < rt->n_rules; i++)
        if ((streq(rt->rules[i].method, "*") || streq(rt->rules[i].method, method)) &&
            fnmatch(rt->rules[i].path, path, 0) == 0)
            return true;
    return false;
}
