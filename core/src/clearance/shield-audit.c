/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/shield-audit.c: the shield_events table (store migration 2 -> 3). Prepared
 * statements only. */
#include <netinet/in.h>
#include <stdio.h>
#include <time.h>

#include "clearance/shield-audit.h"
#include "error.h"
#include "util/macro.h"

static int db_error(sqlite3 *db, terok_error *err, const char *what)
{
    int rc = sqlite3_errcode(db);

    return terok_error_set(err, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : -EIO,
                           "shield audit: %s: %s", what, sqlite3_errmsg(db));
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int shield_audit_append(sqlite3 *db, const shield_audit_row *rows, size_t n, terok_error *err)
{
    sqlite3_stmt *st = NULL;
    int r = 0;

    if (n == 0)
        return 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(db, err, "starting a transaction");
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO shield_events(at_ms, container, kind, dest_ip, dest_port,"
                           " protocol, domain, target, count, actor_uid)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        r = db_error(db, err, "preparing");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const shield_audit_row *a = &rows[i];

        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, a->at_ms);
        sqlite3_bind_text(st, 2, a->container, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
        bind_opt_text(st, 4, a->dest_ip);
        if (a->dest_port > 0)
            sqlite3_bind_int(st, 5, a->dest_port);
        else
            sqlite3_bind_null(st, 5);
        if (a->protocol >= 0)
            sqlite3_bind_int(st, 6, a->protocol);
        else
            sqlite3_bind_null(st, 6);
        bind_opt_text(st, 7, a->domain);
        bind_opt_text(st, 8, a->target);
        sqlite3_bind_int64(st, 9, a->count > 0 ? a->count : 1);
        if (a->actor_uid >= 0)
            sqlite3_bind_int64(st, 10, a->actor_uid);
        else
            sqlite3_bind_null(st, 10);
        if (sqlite3_step(st) != SQLITE_DONE) {
            r = db_error(db, err, "inserting");
            goto fail;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        r = db_error(db, err, "committing");
        goto fail;
    }
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL
                                                     : (const char *)sqlite3_column_text(st, i);
}

int shield_audit_list(sqlite3 *db, const shield_audit_query *q, shield_audit_cb cb, void *userdata,
                      terok_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc, r = 0;

    /* the newest `limit` rows, handed out oldest first */
    if (sqlite3_prepare_v2(db,
                           "SELECT * FROM (SELECT id, at_ms, container, kind, dest_ip, dest_port,"
                           " protocol, domain, target, count, actor_uid FROM shield_events"
                           " WHERE (?1 IS NULL OR container = ?1) AND at_ms >= ?2 AND id > ?3"
                           " ORDER BY id DESC LIMIT ?4) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "preparing");
    bind_opt_text(st, 1, q->container);
    sqlite3_bind_int64(st, 2, q->since_ms);
    sqlite3_bind_int64(st, 3, q->after_id);
    sqlite3_bind_int64(st, 4, q->limit > 0 ? q->limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        shield_audit_row row = {
            .id = sqlite3_column_int64(st, 0),
            .at_ms = sqlite3_column_int64(st, 1),
            .container = col_text(st, 2),
            .kind = col_text(st, 3),
            .dest_ip = col_text(st, 4),
            .dest_port = sqlite3_column_int(st, 5),
            .protocol = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6),
            .domain = col_text(st, 7),
            .target = col_text(st, 8),
            .count = sqlite3_column_int64(st, 9),
            .actor_uid =
                sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 10),
        };
        r = cb(userdata, &row);
        if (r < 0)
            break;
    }
    if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = db_error(db, err, "reading");
    sqlite3_finalize(st);
    return r < 0 ? r : 0;
}

const char *ip_proto_name(int proto, char *buf, size_t len)
{
    switch (proto) {
    case IPPROTO_TCP:
        return "tcp";
    case IPPROTO_UDP:
        return "udp";
    case IPPROTO_ICMP:
        return "icmp";
    case IPPROTO_ICMPV6:
        return "icmpv6";
    case IPPROTO_SCTP:
        return "sctp";
    }
    snprintf(buf, len, "%d", proto);
    return buf;
}

json_object *shield_audit_row_json(const shield_audit_row *r)
{
    json_object *o = json_object_new_object();
    char t[96], pb[12];
    time_t secs = (time_t)(r->at_ms / 1000);
    struct tm tm;

    if (!o)
        return NULL;
    if (r->id > 0)
        json_object_object_add(o, "id", json_object_new_int64(r->id));
    gmtime_r(&secs, &tm);
    snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(r->at_ms % 1000));
    json_object_object_add(o, "time", json_object_new_string(t));
    json_object_object_add(o, "at_ms", json_object_new_int64(r->at_ms));
    json_object_object_add(o, "container", json_object_new_string(r->container));
    json_object_object_add(o, "kind", json_object_new_string(r->kind));
    if (r->dest_ip)
        json_object_object_add(o, "dest", json_object_new_string(r->dest_ip));
    if (r->dest_port > 0)
        json_object_object_add(o, "port", json_object_new_int(r->dest_port));
    if (r->protocol >= 0)
        json_object_object_add(o, "protocol",
                               json_object_new_string(ip_proto_name(r->protocol, pb, sizeof pb)));
    if (r->domain)
        json_object_object_add(o, "domain", json_object_new_string(r->domain));
    if (r->target)
        json_object_object_add(o, "target", json_object_new_string(r->target));
    json_object_object_add(o, "count", json_object_new_int64(r->count));
    if (r->actor_uid >= 0)
        json_object_object_add(o, "actor_uid", json_object_new_int64(r->actor_uid));
    return o;
}
