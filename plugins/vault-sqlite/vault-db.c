/* SPDX-License-Identifier: Apache-2.0 */
/* vault-db.c: the vault's SQLite file, schema migrations and row access. Sees only sealed
 * blobs; never logs row contents. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "vault-db.h"

#define BUSY_TIMEOUT_MS 5000

static int sql_err(int rc)
{
    switch (rc) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EBADMSG;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    default:
        return -EIO;
    }
}

static void stmt_finalize(sqlite3_stmt **s)
{
    if (*s)
        sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalize)

int vdb_exec(sqlite3 *db, const char *sql, terok_error *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return terok_perr(err, sql_err(rc), "vault database: %s", sqlite3_errmsg(db));
    return 0;
}

int vdb_begin_read(sqlite3 *db, terok_error *err)
{
    return vdb_exec(db, "BEGIN", err);
}

int vdb_begin_write(sqlite3 *db, terok_error *err)
{
    return vdb_exec(db, "BEGIN IMMEDIATE", err);
}

int vdb_commit(sqlite3 *db, terok_error *err)
{
    return vdb_exec(db, "COMMIT", err);
}

void vdb_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

void vdb_checkpoint(sqlite3 *db)
{
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* --- creation and migrations -------------------------------------------------------------- */

static int mkdir_parents(const char *path, terok_error *err)
{
    _cleanup_free_ char *dir = strdup(path);
    struct stat st;
    char *slash;

    if (!dir)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return terok_perr(err, negative_errno(), "vault: cannot create '%s': %s", dir,
                              strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return terok_perr(err, negative_errno(), "vault: cannot create '%s': %s", dir,
                          strerror(errno));
    if (lstat(dir, &st) < 0)
        return terok_perr(err, negative_errno(), "vault: cannot stat '%s': %s", dir,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return terok_perr(err, -EPERM,
                          "vault: directory '%s' must be a directory owned by uid %u and not "
                          "group/world-writable (chmod 700 '%s')",
                          dir, (unsigned)geteuid(), dir);
    return 0;
}

/* Create the file ourselves (0600, O_NOFOLLOW) so SQLite never creates it with the umask, and
 * refuse one that others can read: the -wal/-shm files inherit this mode. */
static int prepare_file(const char *path, terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    struct stat st;

    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return terok_perr(err, -EPERM, "vault: '%s' is a symlink; refusing it", path);
        return terok_perr(err, -e, "vault: cannot open '%s': %s", path, strerror(e));
    }
    if (fstat(fd, &st) < 0)
        return terok_perr(err, negative_errno(), "vault: cannot stat '%s'", path);
    if (!S_ISREG(st.st_mode))
        return terok_perr(err, -EPERM, "vault: '%s' is not a regular file", path);
    if (st.st_uid != geteuid())
        return terok_perr(err, -EPERM, "vault: '%s' is owned by uid %u, not by us (uid %u)", path,
                          (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return terok_perr(err, -EPERM,
                          "vault: '%s' has mode %04o; it must be 0600 (chmod 600 '%s')", path,
                          (unsigned)(st.st_mode & 07777), path);
    return 0;
}

static int migrate_1(sqlite3 *db, terok_error *err)
{
    unsigned char dbid[VC_DBID_BYTES];
    int r;

    r = vdb_exec(db,
                 "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value NOT NULL);"
                 "CREATE TABLE keyslots("
                 "  source TEXT PRIMARY KEY NOT NULL,"
                 "  params BLOB NOT NULL,"
                 "  nonce BLOB NOT NULL,"
                 "  wrapped BLOB NOT NULL,"
                 "  created_at INTEGER NOT NULL);"
                 "CREATE TABLE entries("
                 "  name TEXT PRIMARY KEY NOT NULL,"
                 "  type TEXT NOT NULL,"
                 "  metadata TEXT,"
                 "  created_at INTEGER NOT NULL,"
                 "  updated_at INTEGER NOT NULL,"
                 "  version INTEGER NOT NULL,"
                 "  nonce BLOB NOT NULL,"
                 "  ciphertext BLOB NOT NULL);",
                 err);
    if (r < 0)
        return r;
    randombytes_buf(dbid, sizeof dbid);
    r = vdb_meta_set_blob(db, "db_id", dbid, sizeof dbid);
    if (r >= 0)
        r = vdb_meta_set_int(db, "counter", 0);
    if (r >= 0)
        r = vdb_meta_set_int(db, "key_gen", 0);
    if (r < 0)
        return terok_perr(err, r, "vault database: cannot initialise: %s", sqlite3_errmsg(db));
    return 0;
}

/* Index i migrates from user_version i to i+1; each runs in its own transaction. */
static int (*const migrations[])(sqlite3 *, terok_error *) = {migrate_1};

static int migrate(sqlite3 *db, const char *path, terok_error *err)
{
    int64_t version;
    int r;

    for (;;) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char sql[64];

        r = vdb_begin_write(db, err);
        if (r < 0)
            return r;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            vdb_rollback(db);
            return terok_perr(err, -EBADMSG, "vault: '%s' is not a vault database: %s", path,
                              sqlite3_errmsg(db));
        }
        version = sqlite3_column_int64(st, 0);
        if (version == VDB_SCHEMA_VERSION) {
            vdb_rollback(db);
            return 0;
        }
        if (version < 0 || version > VDB_SCHEMA_VERSION) {
            vdb_rollback(db);
            return terok_perr(err, -EPROTO,
                              "vault: '%s' has schema version %" PRId64
                              ", newer than this plugin knows (%d); upgrade terok-sandbox",
                              path, version, VDB_SCHEMA_VERSION);
        }
        r = migrations[version](db, err);
        snprintf(sql, sizeof sql, "PRAGMA user_version = %" PRId64, version + 1);
        if (r >= 0)
            r = vdb_exec(db, sql, err);
        if (r >= 0)
            r = vdb_commit(db, err);
        if (r < 0) {
            vdb_rollback(db);
            return r;
        }
    }
}

int vdb_open(const char *path, sqlite3 **ret, terok_error *err)
{
    sqlite3 *db = NULL;
    int r, rc;

    r = mkdir_parents(path, err);
    if (r < 0)
        return r;
    r = prepare_file(path, err);
    if (r < 0)
        return r;
    rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = terok_perr(err, sql_err(rc), "vault: cannot open '%s': %s", path,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 0);
    r = vdb_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;"
                 "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
                 err);
    if (r >= 0)
        r = migrate(db, path, err);
    if (r < 0) {
        sqlite3_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

void vdb_close(sqlite3 *db)
{
    if (db)
        sqlite3_close(db);
}

/* --- meta --------------------------------------------------------------------------------- */

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

    return rc == SQLITE_OK ? 0 : sql_err(rc);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int vdb_meta_get_int(sqlite3 *db, const char *key, int64_t *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r, rc;

    r = prepare(db, "SELECT value FROM meta WHERE key = ?", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sql_err(rc);
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
        return -EBADMSG;
    *ret = sqlite3_column_int64(st, 0);
    return 0;
}

int vdb_meta_set_int(sqlite3 *db, const char *key, int64_t v)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return step_done(st);
}

int vdb_meta_get_blob(sqlite3 *db, const char *key, void *buf, size_t len)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r, rc;

    r = prepare(db, "SELECT value FROM meta WHERE key = ?", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sql_err(rc);
    if (sqlite3_column_type(st, 0) != SQLITE_BLOB || (size_t)sqlite3_column_bytes(st, 0) != len)
        return -EBADMSG;
    memcpy(buf, sqlite3_column_blob(st, 0), len);
    return 0;
}

int vdb_meta_set_blob(sqlite3 *db, const char *key, const void *buf, size_t len)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    return step_done(st);
}

/* --- keyslots ----------------------------------------------------------------------------- */

void vdb_slots_free(vdb_slot *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i].params);
    free(s);
}

static bool blob_is(sqlite3_stmt *st, int col, size_t len)
{
    return sqlite3_column_type(st, col) == SQLITE_BLOB &&
           (size_t)sqlite3_column_bytes(st, col) == len;
}

int vdb_slots_load(sqlite3 *db, vdb_slot **ret, size_t *ret_n)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    vdb_slot *v = NULL;
    size_t n = 0;
    int r, rc;

    r = prepare(db, "SELECT source, params, nonce, wrapped FROM keyslots ORDER BY source", &st);
    if (r < 0)
        return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(st, 0);
        int plen = sqlite3_column_bytes(st, 1);
        vdb_slot *nv;

        if (!src || strlen(src) >= sizeof v->source || !blob_is(st, 2, VC_NONCE_BYTES) ||
            !blob_is(st, 3, VC_WRAPPED_BYTES) || plen < 0) {
            vdb_slots_free(v, n);
            return -EBADMSG;
        }
        nv = realloc(v, (n + 1) * sizeof *v);
        if (!nv) {
            vdb_slots_free(v, n);
            return -ENOMEM;
        }
        v = nv;
        v[n] = (vdb_slot){0};
        snprintf(v[n].source, sizeof v[n].source, "%s", src);
        v[n].params = malloc((size_t)plen + 1);
        if (!v[n].params) {
            vdb_slots_free(v, n);
            return -ENOMEM;
        }
        if (plen)
            memcpy(v[n].params, sqlite3_column_blob(st, 1), (size_t)plen);
        v[n].params_len = (size_t)plen;
        memcpy(v[n].nonce, sqlite3_column_blob(st, 2), VC_NONCE_BYTES);
        memcpy(v[n].wrapped, sqlite3_column_blob(st, 3), VC_WRAPPED_BYTES);
        n++;
    }
    if (rc != SQLITE_DONE) {
        vdb_slots_free(v, n);
        return sql_err(rc);
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int vdb_slot_put(sqlite3 *db, const vdb_slot *s)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db,
                "INSERT OR REPLACE INTO keyslots(source, params, nonce, wrapped, created_at) "
                "VALUES(?, ?, ?, ?, strftime('%s','now'))",
                &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, s->source, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, s->params_len ? (const void *)s->params : "", (int)s->params_len,
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, s->nonce, VC_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, s->wrapped, VC_WRAPPED_BYTES, SQLITE_STATIC);
    return step_done(st);
}

int vdb_slot_delete(sqlite3 *db, const char *source)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db, "DELETE FROM keyslots WHERE source = ?", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    return step_done(st);
}

int vdb_slots_clear(sqlite3 *db)
{
    return sqlite3_exec(db, "DELETE FROM keyslots", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* --- entries ------------------------------------------------------------------------------ */

void vdb_entry_done(vdb_entry *e)
{
    free(e->name);
    free(e->type);
    free(e->metadata);
    free(e->ct);
    *e = (vdb_entry){0};
}

static int entry_from_row(sqlite3_stmt *st, bool with_ct, vdb_entry *e)
{
    const char *name = (const char *)sqlite3_column_text(st, 0);
    const char *type = (const char *)sqlite3_column_text(st, 1);
    const char *meta = (const char *)sqlite3_column_text(st, 2);

    *e = (vdb_entry){0};
    if (!name || !type || !blob_is(st, 6, VC_NONCE_BYTES))
        return -EBADMSG;
    e->name = strdup(name);
    e->type = strdup(type);
    e->metadata = meta ? strdup(meta) : NULL;
    if (!e->name || !e->type || (meta && !e->metadata)) {
        vdb_entry_done(e);
        return -ENOMEM;
    }
    e->created_at = sqlite3_column_int64(st, 3);
    e->updated_at = sqlite3_column_int64(st, 4);
    e->version = sqlite3_column_int64(st, 5);
    memcpy(e->nonce, sqlite3_column_blob(st, 6), VC_NONCE_BYTES);
    if (with_ct) {
        int n = sqlite3_column_bytes(st, 7);
        if (sqlite3_column_type(st, 7) != SQLITE_BLOB || n < (int)VC_TAG_BYTES) {
            vdb_entry_done(e);
            return -EBADMSG;
        }
        e->ct = malloc((size_t)n);
        if (!e->ct) {
            vdb_entry_done(e);
            return -ENOMEM;
        }
        memcpy(e->ct, sqlite3_column_blob(st, 7), (size_t)n);
        e->ct_len = (size_t)n;
    }
    return 0;
}

#define ENTRY_COLUMNS "name, type, metadata, created_at, updated_at, version, nonce, ciphertext"

int vdb_entry_get(sqlite3 *db, const char *name, vdb_entry *ret)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r, rc;

    r = prepare(db, "SELECT " ENTRY_COLUMNS " FROM entries WHERE name = ?", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sql_err(rc);
    return entry_from_row(st, true, ret);
}

int vdb_entry_put(sqlite3 *db, const vdb_entry *e)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db, "INSERT OR REPLACE INTO entries(" ENTRY_COLUMNS ") VALUES(?,?,?,?,?,?,?,?)",
                &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->type, -1, SQLITE_STATIC);
    if (e->metadata)
        sqlite3_bind_text(st, 3, e->metadata, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, e->created_at);
    sqlite3_bind_int64(st, 5, e->updated_at);
    sqlite3_bind_int64(st, 6, e->version);
    sqlite3_bind_blob(st, 7, e->nonce, VC_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, e->ct, (int)e->ct_len, SQLITE_STATIC);
    return step_done(st);
}

int vdb_entry_delete(sqlite3 *db, const char *name)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r;

    r = prepare(db, "DELETE FROM entries WHERE name = ?", &st);
    if (r < 0)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    r = step_done(st);
    if (r < 0)
        return r;
    return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int vdb_entry_foreach(sqlite3 *db, bool with_ct, vdb_entry_cb cb, void *ud)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int r, rc;

    r = prepare(db, "SELECT " ENTRY_COLUMNS " FROM entries ORDER BY name", &st);
    if (r < 0)
        return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        vdb_entry e;
        r = entry_from_row(st, with_ct, &e);
        if (r < 0)
            return r;
        r = cb(ud, &e);
        vdb_entry_done(&e);
        if (r < 0)
            return r;
    }
    return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

int64_t vdb_entry_count(sqlite3 *db)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (prepare(db, "SELECT count(*) FROM entries", &st) < 0 || sqlite3_step(st) != SQLITE_ROW)
        return -EIO;
    return sqlite3_column_int64(st, 0);
}
