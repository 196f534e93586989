/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/audit.c: the vault and gate daemons' audit queue (daemon/audit.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/audit.h"
#include "log.h"

static char *dup_opt(const char *s, bool *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

int audit_row_make(audit_row *row, const char *container, const char *target, const char *method,
                   const char *path, const char *outcome, int status, uint64_t bytes_in,
                   uint64_t bytes_out, int64_t duration_us)
{
    bool failed = false;

    *row = (audit_row){
        .container = dup_opt(container ? container : "", &failed),
        .target = dup_opt(target, &failed),
        .method = dup_opt(method ? method : "", &failed),
        .path = dup_opt(path, &failed),
        .outcome = dup_opt(outcome ? outcome : "", &failed),
        .status = status,
        .bytes_in = bytes_in,
        .bytes_out = bytes_out,
        .duration_us = duration_us,
        .at = (int64_t)time(NULL),
    };
    if (!failed)
        return 0;
    audit_rows_clear(row, 1);
    return -ENOMEM;
}

void audit_rows_clear(audit_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].container);
        free(rows[i].target);
        free(rows[i].method);
        free(rows[i].path);
        free(rows[i].outcome);
        rows[i] = (audit_row){0};
    }
}

void audit_queue_init(audit_queue *q, size_t max)
{
    *q = (audit_queue){.max = max};
    pthread_mutex_init(&q->mu, NULL);
}

void audit_queue_done(audit_queue *q)
{
    audit_rows_clear(q->rows, q->n);
    free(q->rows);
    q->rows = NULL;
    q->n = 0;
    pthread_mutex_destroy(&q->mu);
}

bool audit_queue_add(audit_queue *q, audit_row *rows, size_t n)
{
    audit_row *v = NULL;

    if (n == 0)
        return true;
    pthread_mutex_lock(&q->mu);
    if (q->n + n <= q->max && (v = reallocarray(q->rows, q->n + n, sizeof(*v)))) {
        memcpy(v + q->n, rows, n * sizeof(*rows));
        q->rows = v;
        q->n += n;
    } else {
        q->dropped += n;
    }
    pthread_mutex_unlock(&q->mu);
    if (!v)
        audit_rows_clear(rows, n);
    return v != NULL;
}

size_t audit_queue_length(audit_queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->mu);
    n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* One transaction; false when the store refused (rolled back). */
static bool write_rows(sqlite3 *db, const char *service, const audit_row *rows, size_t n)
{
    sqlite3_stmt *st = NULL;
    bool ok = true;

    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit(at, service, container, target, method, path,"
                           " status, outcome, bytes_in, bytes_out, duration_us)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return false;
    }
    for (size_t i = 0; ok && i < n; i++) {
        const audit_row *a = &rows[i];

        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, a->at);
        sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->container, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, a->target, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, a->method, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, a->path, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 7, a->status);
        sqlite3_bind_text(st, 8, a->outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, (int64_t)a->bytes_in);
        sqlite3_bind_int64(st, 10, (int64_t)a->bytes_out);
        sqlite3_bind_int64(st, 11, a->duration_us);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
        return true;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

int audit_queue_flush(audit_queue *q, sqlite3 *db, pthread_mutex_t *db_mu, const char *service)
{
    audit_row *rows;
    size_t n;
    bool ok;

    pthread_mutex_lock(&q->mu);
    rows = q->rows;
    n = q->n;
    q->rows = NULL;
    q->n = 0;
    pthread_mutex_unlock(&q->mu);
    if (n == 0)
        return 0;
    pthread_mutex_lock(db_mu);
    ok = write_rows(db, service, rows, n);
    if (!ok)
        log_warning("%s: cannot write %zu audit row(s): %s; kept for the next flush", service, n,
                    sqlite3_errmsg(db));
    pthread_mutex_unlock(db_mu);
    if (ok) {
        uint64_t dropped;

        audit_rows_clear(rows, n);
        pthread_mutex_lock(&q->mu);
        dropped = q->dropped;
        q->dropped = 0;
        pthread_mutex_unlock(&q->mu);
        if (dropped)
            log_warning("%s: %" PRIu64 " audit row(s) were dropped while the store did not keep "
                        "up",
                        service, dropped);
    } else {
        (void)audit_queue_add(q, rows, n); /* after the rows queued meanwhile: `at` orders */
    }
    free(rows);
    return ok ? 0 : -EIO;
}
