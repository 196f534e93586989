/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/audit.h: the request rows the vault and gate daemons keep in the store's audit table
 * (store.c, migration 1 -> 2). Serving threads queue rows; the loop thread writes a queue in one
 * transaction per flush, off the request path. A row owns its strings. The queue is bounded:
 * when the store does not keep up, new rows are dropped and counted rather than held without
 * limit; the rows of a write the store refused go back to the queue for the next flush. Never
 * holds a secret: the callers pass names, paths and outcomes only. */
#pragma once

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct audit_row {
    char *container, *target, *method, *path, *outcome; /* target (route, repo), path: or NULL */
    int status;
    uint64_t bytes_in, bytes_out;
    int64_t duration_us;
    int64_t at; /* seconds since the epoch */
} audit_row;

/* A row with copies of the strings and the time now; -ENOMEM (nothing held) when out of memory. */
int audit_row_make(audit_row *row, const char *container, const char *target, const char *method,
                   const char *path, const char *outcome, int status, uint64_t bytes_in,
                   uint64_t bytes_out, int64_t duration_us);
/* The rows' strings (not the array). */
void audit_rows_clear(audit_row *rows, size_t n);

typedef struct audit_queue {
    pthread_mutex_t mu;
    audit_row *rows;
    size_t n, max;
    uint64_t dropped; /* rows refused because the queue was full */
} audit_queue;

void audit_queue_init(audit_queue *q, size_t max);
/* Frees what is still queued. */
void audit_queue_done(audit_queue *q);
/* Append n rows, taking them; false when they do not fit (then they are freed and counted as
 * dropped). Any thread. */
bool audit_queue_add(audit_queue *q, audit_row *rows, size_t n);
size_t audit_queue_length(audit_queue *q);
/* Write every queued row to db's audit table as `service` in one transaction, db_mu held
 * around it. When the store refuses, the rows go back to the queue (as far as they fit), the
 * failure is logged once per flush and -EIO returned. */
int audit_queue_flush(audit_queue *q, sqlite3 *db, pthread_mutex_t *db_mu, const char *service);
