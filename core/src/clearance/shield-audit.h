/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/shield-audit.h: the shield's audit trail in the state store (table shield_events):
 * blocked connections the clearance daemon saw, counts of events it suppressed under load, and
 * the operator's verdicts. Rows hold only addresses, ports, protocols, domain names, container
 * names and uids: nothing a container sent beyond its packet headers, never a secret. Never
 * prints. */
#pragma once

#include <json-c/json.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "terok/error.h"

typedef struct shield_audit_row {
    int64_t id; /* filled when read */
    int64_t at_ms;
    const char *container;
    const char *kind;    /* "blocked", "suppressed", "allow", "deny" */
    const char *dest_ip; /* or NULL */
    int32_t dest_port;   /* 0: none */
    int32_t protocol;    /* IPPROTO_*, -1: none */
    const char *domain;  /* when the shield knew it, else NULL */
    const char *target;  /* verdicts: the target the shield was given */
    int64_t count;       /* suppressed: events not recorded one by one; verdicts: requests */
    int64_t actor_uid;   /* verdicts: the operator's uid; -1 otherwise */
} shield_audit_row;

/* Append rows in one transaction. */
int shield_audit_append(sqlite3 *db, const shield_audit_row *rows, size_t n, terok_error *err);

typedef struct shield_audit_query {
    const char *container; /* NULL: every container */
    int64_t since_ms;      /* 0: from the start */
    int64_t after_id;      /* 0: from the start (--follow resumes here) */
    int64_t limit;         /* 0: no limit (the newest `limit` rows, oldest first) */
} shield_audit_query;
typedef int (*shield_audit_cb)(void *userdata, const shield_audit_row *r);
/* Rows oldest first. The cb's row is valid during the call only. */
int shield_audit_list(sqlite3 *db, const shield_audit_query *q, shield_audit_cb cb, void *userdata,
                      terok_error *err);

/* One row as a JSON object (id, time (RFC 3339 UTC), at_ms, container, kind, dest, port,
 * protocol, domain, target, count, actor_uid; absent fields omitted). */
json_object *shield_audit_row_json(const shield_audit_row *r);
/* "tcp", "udp", "icmp", "icmpv6", "sctp", or the number. buf: at least 12 bytes. */
const char *ip_proto_name(int proto, char *buf, size_t len);
