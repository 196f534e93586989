/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-route.h: what the gate daemon lets through, decided before any git runs: the
 * four smart-HTTP endpoints of a `<repo>.git` (and nothing else), and the gate token taken from
 * HTTP Basic auth. Pure functions over the raw (never percent-decoded) request, so the rules are
 * table-tested without a server. Never prints. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define GATE_REPO_MAX 64

typedef enum gate_service {
    GATE_SVC_NONE = 0,
    GATE_SVC_UPLOAD_PACK,  /* fetch, clone */
    GATE_SVC_RECEIVE_PACK, /* push */
} gate_service;

typedef struct gate_route {
    char repo[GATE_REPO_MAX + 1];
    gate_service service;
    const char *service_path; /* "info/refs" | "git-upload-pack" | "git-receive-pack" */
    const char *query;        /* "service=git-upload-pack" ... or "" */
    bool is_post;
} gate_route;

/* The route of a request, or the HTTP status to answer with: 400 malformed path (control
 * characters, '%', '\\', "//", dot segments), 404 no such endpoint, 405 wrong method for an
 * endpoint. `path` is the raw path without the query; `service_arg` the value of the one query
 * argument `service` (NULL when absent); `n_args` how many query arguments there were. */
int gate_route_parse(const char *method, const char *path, const char *service_arg, size_t n_args,
                     gate_route *ret);

/* A project name as the gate accepts it: [a-z0-9][a-z0-9._-]*, at most 64, no "..", not ending
 * in ".git" or ".lock". */
bool gate_route_repo_is_valid(const char *name, size_t len);

/* The gate token of an `Authorization: Basic ...` value: the user name when it has the gate
 * token prefix, else the password when that has it, else the user name. Writes at most cap-1
 * bytes and a NUL into buf (wiped by the caller); returns the length, 0 when there is no
 * credential at all, -EINVAL for a malformed header. */
int gate_route_basic_token(const char *authorization, char *buf, size_t cap);

const char *gate_service_name(gate_service s); /* "git-upload-pack", ... or "-" */
