/* SPDX-License-Identifier: Apache-2.0 */
/* broker/routes.h: vault broker routes from the [route.NAME] sections (DESIGN §5): where a
 * route's requests go, which credential is injected and how, which requests are allowed, and
 * where the container finds its phantom token. Never prints. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "terok/error.h"

typedef struct route_upstream {
    char *prefix; /* request path prefix ("/v1/files"), "" for the default */
    char *url;    /* upstream base URL, no trailing slash */
} route_upstream;

typedef struct route_rule {
    char *method; /* "GET", or "*" */
    char *path;   /* fnmatch(3) pattern over the request path */
} route_rule;

typedef struct route {
    char *name;                /* [a-z0-9][a-z0-9_-]* */
    char *auth_header;         /* header the credential goes into, e.g. "x-api-key" */
    char *auth_prefix;         /* e.g. "Bearer " */
    char *credential;          /* vault entry name */
    char *token_env;           /* env var the container reads its phantom token from */
    char *base_url_env;        /* env var for http://127.0.0.1:9419/<name> */
    char **token_headers;      /* where the phantom is looked for, lower case */
    route_upstream *upstreams; /* longest prefix first; the last one has prefix "" */
    size_t n_upstreams;
    route_rule *rules; /* empty: everything allowed */
    size_t n_rules;
    char *oauth_token_url;
    char *oauth_client_id;
    long long max_body; /* request body cap, bytes */
    bool websocket;     /* upgrades passed through (else 403) */
    int64_t ws_idle_ms; /* a tunnel idle this long is closed */
    bool scrub;         /* answers that repeat the credential get it masked (scrub-responses) */
} route;

typedef struct routes {
    route *v;
    size_t n;
} routes;

/* Build from config; a bad route is an error naming the section and value. */
int routes_from_config(const config *c, routes *ret, terok_error *err);
void routes_done(routes *r);
const route *routes_find(const routes *r, const char *name, size_t len);
/* The upstream base for a request path (longest prefix). */
const route_upstream *route_upstream_for(const route *rt, const char *path);
bool route_allows(const route *rt, const char *method, const char *path);
/* Parse one route from key/value getters (used by config and tests). */
typedef const char *(*route_get_fn)(void *userdata, const char *key);
int route_parse(const char *name, route_get_fn get, void *userdata, route *ret, terok_error *err);
void route_done(route *rt);
