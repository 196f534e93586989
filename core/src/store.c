/* SPDX-License-Identifier: Apache-2.0 */
/* store.c: the SQLite state store: safe creation of the file, WAL, schema migrations applied in
 * one transaction, and the containers table. Prepared statements only; never prints. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

#include "error.h"
#include "paths.h"
#include "store.h"

struct store {
    sqlite3 *db;
    char *path;
};

/* Forward migrations: migrations[i] takes the schema from version i to i + 1. Append only; a
 * released entry is never edited. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE containers ("
    "  name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 63),"
    "  id TEXT UNIQUE,"
    "  image TEXT NOT NULL,"
    "  runtime TEXT NOT NULL,"
    "  spec_json TEXT NOT NULL CHECK (json_valid(spec_json)),"
    "  created_at INTEGER NOT NULL"
    ");",
    /* 1 -> 2: phantom and gate tokens (keyed hashes only, tokens.c) and the audit trail */
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  kind INTEGER NOT NULL,"
    "  container TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  rights INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX tokens_container ON tokens(container);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  service TEXT NOT NULL,"
    "  container TEXT NOT NULL,"
    "  target TEXT,"
    "  method TEXT,"
    "  path TEXT,"
    "  status INTEGER,"
    "  outcome TEXT,"
    "  bytes_in INTEGER,"
    "  bytes_out INTEGER,"
    "  duration_us INTEGER"
    ");"
    "CREATE INDEX audit_container ON audit(container, at);",
    /* 2 -> 3: the shield's audit: blocked connections seen by the clearance daemon and the
     * operator's verdicts on them (core/src/clearance/shield-audit.c) */
    "CREATE TABLE shield_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at_ms INTEGER NOT NULL,"
    "  container TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('blocked', 'suppressed', 'allow', 'deny')),"
    "  dest_ip TEXT,"
    "  dest_port INTEGER,"
    "  protocol INTEGER,"
    "  domain TEXT,"
    "  target TEXT,"
    "  count INTEGER NOT NULL DEFAULT 1,"
    "  actor_uid INTEGER"
    ");"
    "CREATE INDEX shield_events_container ON shield_events(container, id);",
};

_Static_assert(ELEMENTSOF(migrations) == STORE_SCHEMA_VERSION,
               "STORE_SCHEMA_VERSION must equal the number of migrations");

static int sql_error(store *s, terok_error *err, int rc, const char *what)
{
    int code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED      ? -EBUSY
               : rc == SQLITE_NOMEM                          ? -ENOMEM
               : rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? -EBADMSG
               : rc == SQLITE_READONLY || rc == SQLITE_PERM  ? -EACCES
                                                             : -EIO;

    return terok_error_set(err, code, "state store '%s': %s: %s", s->path, what,
                           s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static void stmt_finalizep(sqlite3_stmt **st)
{
    if (*st)
        sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

static int prepare(store *s, const char *sql, sqlite3_stmt **ret, terok_error *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, ret, NULL);

    return rc == SQLITE_OK ? 0 : sql_error(s, err, rc, "preparing a statement");
}

static int exec_sql(store *s, const char *sql, const char *what, terok_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : sql_error(s, err, rc, what);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int read_user_version(store *s, int *ret, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r, rc;

    r = prepare(s, "PRAGMA user_version", &st, err);
    if (r < 0)
        return r;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sql_error(s, err, rc, "reading the schema version");
    *ret = sqlite3_column_int(st, 0);
    return 0;
}

static int migrate(store *s, terok_error *err)
{
    char sql[64];
    int r, v;

    /* The common case, an up-to-date store, needs no write lock. */
    r = read_user_version(s, &v, err);
    if (r < 0)
        return r;
    if (v == STORE_SCHEMA_VERSION)
        return 0;

    /* One writer at a time: a second process opening a fresh store waits here, then sees the
     * version the first one committed. */
    r = store_begin(s, err);
    if (r < 0)
        return r;
    r = read_user_version(s, &v, err);
    if (r < 0)
        goto fail;
    if (v > STORE_SCHEMA_VERSION) {
        r = terok_error_set(err, -EPROTONOSUPPORT,
                            "state store '%s' has schema version %d, newer than this "
                            "terok-sandbox supports (%d); upgrade terok-sandbox or use another "
                            "state dir",
                            s->path, v, STORE_SCHEMA_VERSION);
        goto fail;
    }
    if (v < 0) {
        r = terok_error_set(err, -EBADMSG, "state store '%s' has an invalid schema version %d",
                            s->path, v);
        goto fail;
    }
    for (int i = v; i < STORE_SCHEMA_VERSION; i++) {
        r = exec_sql(s, migrations[i], "migrating the schema", err);
        if (r < 0) {
            terok_error_prefix(err, "migration %d -> %d", i, i + 1);
            goto fail;
        }
    }
    if (v != STORE_SCHEMA_VERSION) {
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        r = exec_sql(s, sql, "recording the schema version", err);
        if (r < 0)
            goto fail;
    }
    return store_commit(s, err);
fail:
    store_rollback(s);
    return r;
}

/* Create the file ourselves so that it is 0600 from the first byte and never a symlink. */
static int create_db_file(const char *path, terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    struct stat st;

    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            return terok_error_set(err, -ELOOP, "state store '%s' is a symlink; refusing it", path);
        return terok_error_set(err, negative_errno(), "cannot open state store '%s': %s", path,
                               strerror(errno));
    }
    if (fstat(fd, &st) < 0)
        return terok_error_set(err, negative_errno(), "cannot stat '%s': %s", path,
                               strerror(errno));
    if (!S_ISREG(st.st_mode))
        return terok_error_set(err, -EINVAL, "state store '%s' is not a regular file", path);
    if (st.st_uid != geteuid())
        return terok_error_set(err, -EPERM, "state store '%s' is owned by uid %u, not by us", path,
                               (unsigned)st.st_uid);
    if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) < 0)
        return terok_error_set(err, negative_errno(), "cannot chmod '%s': %s", path,
                               strerror(errno));
    return 0;
}

int store_open(const char *state_dir, store **ret, terok_error *err)
{
    _cleanup_(store_closep) store *s = NULL;
    int r, rc;

    r = mkdir_safe(state_dir, 0700, err);
    if (r < 0)
        return terok_error_prefix(err, "state dir");
    s = calloc(1, sizeof(*s));
    if (!s || asprintf(&s->path, "%s/state.db", state_dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = create_db_file(s->path, err);
    if (r < 0)
        return r;

    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return sql_error(s, err, rc, "opening");
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);

    /* WAL lets readers (ps) run beside a writer; NORMAL sync is durable enough in WAL mode. */
    r = exec_sql(s, "PRAGMA journal_mode = WAL", "enabling WAL", err);
    if (r >= 0)
        r = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "setting pragmas",
                     err);
    if (r >= 0)
        r = migrate(s, err);
    if (r < 0)
        return r;
    *ret = s;
    s = NULL;
    return 0;
}

store *store_close(store *s)
{
    if (!s)
        return NULL;
    if (s->db)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
    return NULL;
}

struct sqlite3 *store_sqlite(store *s)
{
    return s->db;
}

int store_schema_version(store *s)
{
    int v = 0, r;

    if (!s)
        return -EINVAL;
    r = read_user_version(s, &v, NULL);
    return r < 0 ? r : v;
}

int store_begin(store *s, terok_error *err)
{
    return exec_sql(s, "BEGIN IMMEDIATE", "starting a transaction", err);
}

int store_commit(store *s, terok_error *err)
{
    return exec_sql(s, "COMMIT", "committing", err);
}

void store_rollback(store *s)
{
    if (s && s->db && !sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

void container_rec_done(container_rec *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->id);
    free(r->image);
    free(r->runtime);
    free(r->spec_json);
    *r = (container_rec){0};
}

int store_container_add(store *s, const container_rec *r, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc, k;

    if (!s || !r || !r->name || !r->image || !r->runtime || !r->spec_json)
        return terok_error_set(err, -EINVAL, "store_container_add: missing field");
    k = prepare(s,
                "INSERT INTO containers (name, id, image, runtime, spec_json, created_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &st, err);
    if (k < 0)
        return k;
    bind_text(st, 1, r->name);
    bind_text(st, 2, r->id);
    bind_text(st, 3, r->image);
    bind_text(st, 4, r->runtime);
    bind_text(st, 5, r->spec_json);
    sqlite3_bind_int64(st, 6, r->created_at);
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return terok_error_set(err, -EEXIST, "container '%s' already exists", r->name);
    if (rc != SQLITE_DONE)
        return sql_error(s, err, rc, "recording a container");
    return 0;
}

int store_container_set_id(store *s, const char *name, const char *id, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc, k;

    k = prepare(s, "UPDATE containers SET id = ?2 WHERE name = ?1", &st, err);
    if (k < 0)
        return k;
    bind_text(st, 1, name);
    bind_text(st, 2, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sql_error(s, err, rc, "recording a container id");
    if (sqlite3_changes(s->db) == 0)
        return terok_error_set(err, -ENOENT, "no such container '%s'", name);
    return 0;
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);

    return t ? strdup((const char *)t) : NULL;
}

static int row_to_rec(sqlite3_stmt *st, container_rec *ret)
{
    container_rec r = {
        .name = column_dup(st, 0),
        .id = column_dup(st, 1),
        .image = column_dup(st, 2),
        .runtime = column_dup(st, 3),
        .spec_json = column_dup(st, 4),
        .created_at = sqlite3_column_int64(st, 5),
    };

    if (!r.name || !r.image || !r.runtime || !r.spec_json ||
        (sqlite3_column_type(st, 1) != SQLITE_NULL && !r.id)) {
        container_rec_done(&r);
        return -ENOMEM;
    }
    *ret = r;
    return 0;
}

#define REC_COLUMNS "name, id, image, runtime, spec_json, created_at"

int store_container_get(store *s, const char *name, container_rec *ret, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc, k;

    k = prepare(s, "SELECT " REC_COLUMNS " FROM containers WHERE name = ?1", &st, err);
    if (k < 0)
        return k;
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sql_error(s, err, rc, "reading a container");
    k = row_to_rec(st, ret);
    return k < 0 ? terok_error_set(err, k, "out of memory") : 0;
}

int store_container_remove(store *s, const char *name, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc, k;

    k = prepare(s, "DELETE FROM containers WHERE name = ?1", &st, err);
    if (k < 0)
        return k;
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sql_error(s, err, rc, "removing a container");
    return sqlite3_changes(s->db) > 0;
}

int store_container_list(store *s, store_container_cb cb, void *userdata, terok_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc, k;

    k = prepare(s, "SELECT " REC_COLUMNS " FROM containers ORDER BY created_at, name", &st, err);
    if (k < 0)
        return k;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        container_rec r;

        k = row_to_rec(st, &r);
        if (k < 0)
            return terok_error_set(err, k, "out of memory");
        k = cb(userdata, &r);
        container_rec_done(&r);
        if (k != 0)
            return k < 0 ? k : 0;
    }
    if (rc != SQLITE_DONE)
        return sql_error(s, err, rc, "listing containers");
    return 0;
}
