/* SPDX-License-Identifier: Apache-2.0 */
/* tokens.c: minting and checking container tokens; only keyed hashes are stored. */
#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"
#include "tokens.h"
#include "util/macro.h"

const char tokens_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " hash BLOB NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL,"
    " container TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " rights INTEGER NOT NULL DEFAULT 0,"
    " expires_at INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tokens_container ON tokens(container);";

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

static int db_error(sqlite3 *db, terok_error *err, const char *what)
{
    return terok_error_set(err, -EIO, "token store: %s: %s", what, sqlite3_errmsg(db));
}

int tokens_key_load(const char *state_dir, uint8_t key[TOKEN_KEY_BYTES], terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    ssize_t n;

    if (sodium_init() < 0)
        return terok_error_set(err, -EIO, "libsodium cannot initialise");
    if (asprintf(&path, "%s/token.key", state_dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        uint8_t fresh[TOKEN_KEY_BYTES];

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) /* another process won the race: read theirs */
            return tokens_key_load(state_dir, key, err);
        if (fd < 0)
            return terok_error_set(err, negative_errno(), "cannot create '%s': %s", path,
                                   strerror(errno));
        randombytes_buf(fresh, sizeof fresh);
        n = write(fd, fresh, sizeof fresh);
        if (n != (ssize_t)sizeof fresh || fsync(fd) < 0) {
            sodium_memzero(fresh, sizeof fresh);
            unlink(path);
            return terok_error_set(err, -EIO, "cannot write '%s'", path);
        }
        memcpy(key, fresh, sizeof fresh);
        sodium_memzero(fresh, sizeof fresh);
        return 0;
    }
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "cannot open '%s': %s", path,
                               strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid())
        return terok_error_set(err, -EPERM,
                               "refusing token key '%s': it must be a regular file owned by uid "
                               "%u with mode 0600",
                               path, (unsigned)geteuid());
    n = read(fd, key, TOKEN_KEY_BYTES);
    if (n != TOKEN_KEY_BYTES)
        return terok_error_set(err, -EBADMSG, "token key '%s' is damaged (%zd bytes, want %d)",
                               path, n, TOKEN_KEY_BYTES);
    return 0;
}

static const char *prefix_for(int kind)
{
    return kind == TOKEN_KIND_GATE ? TOKEN_PREFIX_GATE : TOKEN_PREFIX_PHANTOM;
}

static void token_hash(const uint8_t key[TOKEN_KEY_BYTES], const char *token, size_t len,
                       uint8_t out[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, TOKEN_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

int tokens_mint(sqlite3 *db, const uint8_t key[TOKEN_KEY_BYTES], const token_binding *b,
                terok_secret **ret_token, int64_t *ret_id, terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
    uint8_t raw[TOKEN_RANDOM_BYTES], hash[crypto_auth_hmacsha256_BYTES];
    char text[TOKEN_TEXT_MAX + 8];
    size_t plen;
    int r;

    if (sodium_init() < 0)
        return terok_error_set(err, -EIO, "libsodium cannot initialise");
    if (!b || !b->container || !b->target ||
        (b->kind != TOKEN_KIND_PHANTOM && b->kind != TOKEN_KIND_GATE))
        return terok_error_set(err, -EINVAL, "minting a token: invalid binding");
    plen = strlen(prefix_for(b->kind));
    memcpy(text, prefix_for(b->kind), plen);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text + plen, sizeof text - plen, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    token_hash(key, text, strlen(text), hash);

    if (sqlite3_prepare_v2(db,
                           "INSERT INTO tokens(hash, kind, container, target, rights, expires_at,"
                           " created_at) VALUES (?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        sodium_memzero(text, sizeof text);
        return db_error(db, err, "preparing insert");
    }
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, b->kind);
    sqlite3_bind_text(st, 3, b->container, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, b->target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, b->rights);
    sqlite3_bind_int64(st, 6, b->expires_at);
    sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE) {
        sodium_memzero(text, sizeof text);
        return db_error(db, err, "storing a token");
    }
    r = terok_secret_new(text, strlen(text), ret_token);
    sodium_memzero(text, sizeof text);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    if (ret_id)
        *ret_id = sqlite3_last_insert_rowid(db);
    (void)tokens_epoch_bump(db, NULL);
    return 0;
}

static bool token_well_formed(int kind, const char *t, size_t len)
{
    size_t plen = strlen(prefix_for(kind));

    /* 43 base64url characters after the prefix, nothing else */
    if (len != plen + 43 || memcmp(t, prefix_for(kind), plen) != 0)
        return false;
    for (size_t i = plen; i < len; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int tokens_check(sqlite3 *db, const uint8_t key[TOKEN_KEY_BYTES], int kind, const char *token,
                 size_t token_len, const char *container, const char *target, int64_t now,
                 token_verdict *ret_verdict, token_info *ret_info, terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
    uint8_t hash[crypto_auth_hmacsha256_BYTES];
    token_info info = {0};
    int rc;

    *ret_verdict = TOKEN_MALFORMED;
    if (!token || !token_well_formed(kind, token, token_len))
        return 0;
    token_hash(key, token, token_len, hash);
    /* Lookup by the keyed hash: an index probe, so timing reveals nothing about the token. */
    if (sqlite3_prepare_v2(db,
                           "SELECT id, container, target, rights, expires_at FROM tokens"
                           " WHERE hash = ? AND kind = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "preparing lookup");
    sqlite3_bind_blob(st, 1, hash, sizeof hash, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, kind);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *ret_verdict = TOKEN_UNKNOWN;
        return 0;
    }
    if (rc != SQLITE_ROW)
        return db_error(db, err, "looking up a token");
    info.id = sqlite3_column_int64(st, 0);
    snprintf(info.container, sizeof info.container, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(info.target, sizeof info.target, "%s", (const char *)sqlite3_column_text(st, 2));
    info.rights = (uint32_t)sqlite3_column_int64(st, 3);
    info.expires_at = sqlite3_column_int64(st, 4);
    if (info.expires_at && now >= info.expires_at)
        *ret_verdict = TOKEN_EXPIRED;
    else if (!container || strcmp(info.container, container) != 0)
        *ret_verdict = TOKEN_WRONG_CONTAINER;
    else if (target && strcmp(info.target, target) != 0)
        *ret_verdict = TOKEN_WRONG_TARGET;
    else
        *ret_verdict = TOKEN_VALID;
    if (ret_info)
        *ret_info = info;
    return 0;
}

const char *token_verdict_to_string(token_verdict v)
{
    static const char *const names[] = {
        [TOKEN_VALID] = "valid",
        [TOKEN_MALFORMED] = "malformed",
        [TOKEN_UNKNOWN] = "unknown",
        [TOKEN_EXPIRED] = "expired",
        [TOKEN_WRONG_CONTAINER] = "wrong-container",
        [TOKEN_WRONG_TARGET] = "wrong-target",
    };
    return (unsigned)v < ELEMENTSOF(names) ? names[v] : "unknown";
}

static int bump_if_changed(sqlite3 *db)
{
    int n = sqlite3_changes(db);

    if (n > 0)
        (void)tokens_epoch_bump(db, NULL);
    return n;
}

int tokens_revoke_id(sqlite3 *db, int64_t id, terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, "DELETE FROM tokens WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "preparing revoke");
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_error(db, err, "revoking a token");
    return bump_if_changed(db);
}

int tokens_revoke_container(sqlite3 *db, const char *container, int kind, terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, "DELETE FROM tokens WHERE container = ? AND (? = 0 OR kind = ?)", -1,
                           &st, NULL) != SQLITE_OK)
        return db_error(db, err, "preparing revoke");
    sqlite3_bind_text(st, 1, container, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_int(st, 3, kind);
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_error(db, err, "revoking tokens");
    return bump_if_changed(db);
}

int tokens_list(sqlite3 *db, const char *container, tokens_list_cb cb, void *userdata,
                terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db,
                           "SELECT id, kind, container, target, rights, expires_at, created_at,"
                           " hash FROM tokens WHERE (? IS NULL OR container = ?) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "preparing list");
    sqlite3_bind_text(st, 1, container, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, container, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        token_info info = {.id = sqlite3_column_int64(st, 0)};
        int kind = sqlite3_column_int(st, 1);
        const uint8_t *h = sqlite3_column_blob(st, 7);
        char masked[48];

        snprintf(info.container, sizeof info.container, "%s",
                 (const char *)sqlite3_column_text(st, 2));
        snprintf(info.target, sizeof info.target, "%s", (const char *)sqlite3_column_text(st, 3));
        info.rights = (uint32_t)sqlite3_column_int64(st, 4);
        info.expires_at = sqlite3_column_int64(st, 5);
        /* The token is not stored; show a stable handle derived from its hash instead. */
        snprintf(masked, sizeof masked, "%s…%02x%02x%02x", prefix_for(kind), h ? h[0] : 0,
                 h ? h[1] : 0, h ? h[2] : 0);
        rc = cb(userdata, &info, kind, masked, sqlite3_column_int64(st, 6));
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    if (rc != SQLITE_DONE)
        return db_error(db, err, "listing tokens");
    return 0;
}

int tokens_epoch_map(const char *dir, bool writable, tokens_epoch **ret, terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int fd = -EBADF;
    struct stat st, dst;
    uid_t owner;
    void *p;

    if (asprintf(&path, "%s/" TOKENS_EPOCH_FILE, dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    /* No O_EXCL: racing creators all open the same file, and growing it to its size below is
     * idempotent (ftruncate to the current length changes nothing, so no bump is lost). */
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "cannot open '%s': %s", path,
                               strerror(errno));
    if (fstat(fd, &st) < 0 || stat(dir, &dst) < 0)
        return terok_error_set(err, negative_errno(), "cannot stat '%s': %s", path,
                               strerror(errno));
    /* root working on a user's state directory (sudo with its paths): the file belongs to the
     * directory's owner, whose daemon maps it, as it would had the user made it */
    if (geteuid() == 0 && st.st_uid == 0 && dst.st_uid != 0 && S_ISREG(st.st_mode)) {
        if (fchown(fd, dst.st_uid, dst.st_gid) < 0)
            return terok_error_set(err, negative_errno(), "cannot give '%s' to uid %u: %s", path,
                                   (unsigned)dst.st_uid, strerror(errno));
        st.st_uid = dst.st_uid;
    }
    /* Anyone else who could write it could set it back to a value a daemon has seen. */
    owner = geteuid() == 0 ? dst.st_uid : geteuid();
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != owner)
        return terok_error_set(err, -EPERM,
                               "refusing token epoch '%s': it must be a regular file owned by "
                               "uid %u with mode 0600",
                               path, (unsigned)owner);
    if (st.st_size < (off_t)sizeof(tokens_epoch) && ftruncate(fd, sizeof(tokens_epoch)) < 0)
        return terok_error_set(err, negative_errno(), "cannot size '%s': %s", path,
                               strerror(errno));
    p = mmap(NULL, sizeof(tokens_epoch), PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd,
             0);
    if (p == MAP_FAILED)
        return terok_error_set(err, negative_errno(), "cannot map '%s': %s", path, strerror(errno));
    *ret = p;
    return 0;
}

tokens_epoch *tokens_epoch_unmap(tokens_epoch *e)
{
    if (e)
        (void)munmap((void *)e, sizeof(*e));
    return NULL;
}

int tokens_epoch_bump(sqlite3 *db, terok_error *err)
{
    const char *file = sqlite3_db_filename(db, "main");
    _cleanup_free_ char *dir = NULL;
    const char *slash;
    tokens_epoch *e = NULL;
    int r;

    if (!file || !*file || !(slash = strrchr(file, '/')))
        return 0;
    dir = strndup(file, (size_t)(slash - file));
    if (!dir)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = tokens_epoch_map(dir, true, &e, err);
    if (r < 0)
        return r;
    /* release: the commit (already done) is ordered before the new value */
    atomic_fetch_add_explicit(e, 1, memory_order_release);
    tokens_epoch_unmap(e);
    return 0;
}
