/* SPDX-License-Identifier: Apache-2.0 */
/* test-vault-sqlite.c: vault-sqlite through its ABI — a tiny host table (core secret.c and
 * error.c behind it), the plugin dlopen()ed from the build tree. Crypto round trips, tampering
 * with the SQLite file (flipped bytes, swapped, copied and rolled-back rows), the key-source chain
 * and its fail-closed messages, passphrase change and rekey killed mid-way, bad arguments. Every
 * error message and log line is checked for the secret values the test used. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "error.h"
#include "secret.h"
#include "terok-test.h"
#include "terok/vault.h"

/* --- the minimal host --------------------------------------------------------------------- */

struct terok_config_section {
    const char *key[16];
    const char *val[16];
    int n;
};
typedef struct terok_config_section tcfg;

static char logbuf[16384];
static size_t loglen;
/* Values that must never show up in a message or a log line. */
static const char *secrets[16];
static int n_secrets;

static void h_logv(terok_plugin *self, int prio, const char *fmt, va_list ap)
{
    int n = vsnprintf(logbuf + loglen, sizeof logbuf - loglen, fmt, ap);
    if (n > 0)
        loglen = MIN(loglen + (size_t)n, sizeof logbuf - 2);
    logbuf[loglen++] = '\n';
    logbuf[loglen] = '\0';
}

static int h_errorv(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap)
{
    return terok_error_setv(err, code, fmt, ap);
}

static void h_secret_free(terok_secret *s)
{
    terok_secret_free(s);
}

static int h_config_get(const terok_config_section *sec, const char *key, const char **ret)
{
    for (int i = 0; i < sec->n; i++)
        if (streq(sec->key[i], key)) {
            *ret = sec->val[i];
            return 0;
        }
    return -ENOENT;
}

static int h_config_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    return -ENOENT;
}

static int h_config_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    const char *v;
    char *end;
    long long n;

    if (h_config_get(sec, key, &v) < 0)
        return -ENOENT;
    n = strtoll(v, &end, 10);
    if (streq(end, "ms"))
        *ret = n;
    else if (streq(end, "s"))
        *ret = n * 1000;
    else if (streq(end, "h"))
        *ret = n * 3600 * 1000;
    else
        *ret = n;
    return 0;
}

static const char *h_state_dir(terok_plugin *self)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/state/vault-sqlite", test_tmp); /* as the registry does */
    return buf;
}

static const char *h_runtime_dir(terok_plugin *self)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/run", test_tmp);
    return buf;
}

static const terok_host host = {
    .struct_size = sizeof(terok_host),
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = h_logv,
    .errorv = h_errorv,
    .alloc = malloc,
    .free = free,
    .strdup = strdup,
    .secret_new = terok_secret_new,
    .secret_free = h_secret_free,
    .secret_peek = terok_secret_peek,
    .config_get = h_config_get,
    .config_get_bool = h_config_get_bool,
    .config_get_int = h_config_get_int,
    .state_dir = h_state_dir,
    .runtime_dir = h_runtime_dir,
};

static const terok_vault_ops *load_plugin(const char *so)
{
    const terok_plugin_desc *desc = NULL;
    terok_plugin_init_fn init;
    terok_error err = TEROK_ERROR_INIT;
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);

    cr_assert(dl, "dlopen %s: %s", so, dlerror());
    init = (terok_plugin_init_fn)(uintptr_t)dlsym(dl, TEROK_PLUGIN_INIT_SYMBOL);
    cr_assert(init);
    cr_assert_eq(init(NULL, &host, &desc, &err), 0);
    cr_assert_eq(desc->kind, (uint32_t)TEROK_PLUGIN_KIND_VAULT);
    cr_assert_str_eq(desc->name, "sqlite");
    return desc->ops;
}

static const terok_vault_ops *ops;

static void setup(void)
{
    test_tmpdir_setup();
    ops = load_plugin(VAULT_SQLITE_SO);
    loglen = 0;
    logbuf[0] = '\0';
    n_secrets = 0;
}

static void teardown(void)
{
    test_tmpdir_teardown();
}

TestSuite(vault_sqlite, .init = setup, .fini = teardown, .timeout = 60);

static void cfg_set(tcfg *c, const char *k, const char *v)
{
    for (int i = 0; i < c->n; i++)
        if (streq(c->key[i], k)) {
            c->val[i] = v;
            return;
        }
    c->key[c->n] = k;
    c->val[c->n++] = v;
}

/* A config with fast Argon2id and an explicit chain. */
static tcfg base_cfg(const char *chain)
{
    tcfg c = {.n = 0};
    cfg_set(&c, "argon2-level", "interactive");
    cfg_set(&c, "key-sources", chain);
    cfg_set(&c, "keyring-timeout", "60s");
    return c;
}

static void no_secret_in(const char *text)
{
    for (int i = 0; text && i < n_secrets; i++)
        cr_assert_null(strstr(text, secrets[i]), "secret value leaked into: %s", text);
}

static void remember_secret(const char *s)
{
    secrets[n_secrets++] = s;
}

/* Assert an error code, a substring in its message, and no secret in message or log. */
#define expect_err(expr, errp, code, needle)                                                       \
    do {                                                                                           \
        int _r = (expr);                                                                           \
        const char *_m = terok_error_message(errp);                                                \
        cr_assert_eq(_r, (code), "%s returned %d, want %d (%s)", #expr, _r, (code), _m);           \
        cr_assert(strstr(_m, (needle)), "message lacks '%s': %s", (needle), _m);                   \
        no_secret_in(_m);                                                                          \
        no_secret_in(logbuf);                                                                      \
        terok_error_clear(errp);                                                                   \
    } while (0)

static void *vopen(const tcfg *c)
{
    terok_error err = TEROK_ERROR_INIT;
    void *st = NULL;

    terok_assert_ok(ops->open(NULL, c, &st, &err), &err);
    return st;
}

static terok_secret *sec(const char *s)
{
    terok_secret *x = NULL;
    cr_assert_eq(terok_secret_new(s, strlen(s), &x), 0);
    return x;
}

static void put(void *st, const char *name, const char *value, const char *type, const char *meta)
{
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *s = sec(value);

    remember_secret(value);
    terok_assert_ok(ops->put(st, name, s, type, meta, &err), &err);
}

static void expect_value(void *st, const char *name, const char *want)
{
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *s = NULL;

    terok_assert_ok(ops->get(st, name, &s, &err), &err);
    cr_assert(terok_secret_equals(s, want, strlen(want)), "wrong value for '%s'", name);
}

static int get_rc(void *st, const char *name, terok_error *err)
{
    _cleanup_secret_ terok_secret *s = NULL;
    return ops->get(st, name, &s, err);
}

static const char *db_path(void)
{
    return test_path("state/vault-sqlite/vault.db");
}

static const char *key_path(void)
{
    return test_path("state/vault-sqlite/vault.key");
}

static void sql(const char *path, const char *stmt)
{
    sqlite3 *db;
    char *msg = NULL;

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, stmt, NULL, NULL, &msg), SQLITE_OK, "%s: %s", stmt, msg);
    sqlite3_close(db);
}

/* --- round trip --------------------------------------------------------------------------- */

typedef struct seen {
    char names[8][64];
    char meta[8][128];
    int n;
} seen;

static int list_cb(void *ud, const terok_vault_entry *e)
{
    seen *s = ud;
    cr_assert_geq(e->struct_size, sizeof *e);
    snprintf(s->names[s->n], 64, "%s:%s", e->name, e->type);
    snprintf(s->meta[s->n], 128, "%s", e->metadata ? e->metadata : "(null)");
    cr_assert_gt(e->created_at, 0);
    cr_assert_geq(e->updated_at, e->created_at);
    no_secret_in(e->name);
    no_secret_in(e->type);
    no_secret_in(e->metadata);
    s->n++;
    return 0;
}

Test(vault_sqlite, round_trip_put_get_list_remove)
{
    tcfg c = base_cfg("key-file");
    terok_error err = TEROK_ERROR_INIT;
    seen s = {.n = 0};
    void *st = vopen(&c);
    struct stat sb;

    put(st, "anthropic", "sk-ant-0123456789abcdef", "api-key", "{\"route\":\"anthropic\"}");
    put(st, "github", "ghp_SECRETSECRETSECRET", NULL, NULL);
    put(st, "gitlab.main", "glpat-xyzXYZxyzXYZ", "oauth", "{}");
    expect_value(st, "anthropic", "sk-ant-0123456789abcdef");
    expect_value(st, "github", "ghp_SECRETSECRETSECRET");
    put(st, "github", "ghp_ROTATEDROTATED", NULL, NULL); /* replace */
    expect_value(st, "github", "ghp_ROTATEDROTATED");

    terok_assert_ok(ops->list(st, list_cb, &s, &err), &err);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.names[0], "anthropic:api-key");
    cr_assert_str_eq(s.meta[0], "{\"route\":\"anthropic\"}");
    cr_assert_str_eq(s.names[1], "github:secret");
    cr_assert_str_eq(s.meta[1], "(null)");
    cr_assert_str_eq(s.names[2], "gitlab.main:oauth");

    terok_assert_ok(ops->remove(st, "gitlab.main", &err), &err);
    expect_err(get_rc(st, "gitlab.main", &err), &err, -ENOENT, "'gitlab.main'");
    expect_err(ops->remove(st, "gitlab.main", &err), &err, -ENOENT, "no entry");
    ops->close(st);

    /* A new handle (a new process in real life) sees the same values. */
    st = vopen(&c);
    expect_value(st, "anthropic", "sk-ant-0123456789abcdef");
    expect_value(st, "github", "ghp_ROTATEDROTATED");
    ops->close(st);

    cr_assert_eq(stat(db_path(), &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    cr_assert_eq(stat(key_path(), &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    no_secret_in(logbuf);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    size_t n;

    if (!f)
        return false;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

Test(vault_sqlite, values_are_not_on_disk_in_clear)
{
    tcfg c = base_cfg("key-file");
    void *st = vopen(&c);
    char wal[4200];

    put(st, "tok", "PLAINTEXT-MUST-NOT-BE-ON-DISK", NULL, "{\"note\":\"visible\"}");
    snprintf(wal, sizeof wal, "%s-wal", db_path());
    cr_assert(file_contains(db_path(), "visible") || file_contains(wal, "visible"),
              "metadata is expected in clear (it is authenticated, not secret)");
    cr_assert_not(file_contains(db_path(), "PLAINTEXT-MUST-NOT-BE-ON-DISK"));
    cr_assert_not(file_contains(wal, "PLAINTEXT-MUST-NOT-BE-ON-DISK"));
    ops->close(st);
    cr_assert_not(file_contains(db_path(), "PLAINTEXT-MUST-NOT-BE-ON-DISK"));
}

typedef struct reenter {
    void *st;
    int got;
} reenter;

static int reenter_cb(void *ud, const terok_vault_entry *e)
{
    reenter *r = ud;
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *s = NULL;

    terok_assert_ok(ops->get(r->st, e->name, &s, &err), &err);
    r->got++;
    return 0;
}

Test(vault_sqlite, list_callback_may_call_back_into_the_vault)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    reenter r = {.st = vopen(&c), .got = 0};

    put(r.st, "one", "reenter-value-1", NULL, NULL);
    put(r.st, "two", "reenter-value-2", NULL, NULL);
    terok_assert_ok(ops->list(r.st, reenter_cb, &r, &err), &err);
    cr_assert_eq(r.got, 2);
    ops->close(r.st);
}

/* --- tampering ---------------------------------------------------------------------------- */

static void *two_entries(tcfg *c)
{
    *c = base_cfg("key-file");
    void *st = vopen(c);
    put(st, "alpha", "value-of-alpha-123", "api-key", "{\"a\":1}");
    put(st, "beta", "value-of-beta-456", "api-key", "{\"b\":2}");
    return st;
}

/* Flip one bit of a stored ciphertext, as a disk error or an attacker would. */
static void flip_byte(const char *name)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    unsigned char buf[512];
    int n;

    cr_assert_eq(sqlite3_open(db_path(), &db), SQLITE_OK);
    cr_assert_eq(
        sqlite3_prepare_v2(db, "SELECT ciphertext FROM entries WHERE name=?", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    n = sqlite3_column_bytes(s, 0);
    cr_assert(n > 0 && n <= (int)sizeof buf);
    memcpy(buf, sqlite3_column_blob(s, 0), (size_t)n);
    sqlite3_finalize(s);
    buf[n / 2] ^= 0x01;
    cr_assert_eq(
        sqlite3_prepare_v2(db, "UPDATE entries SET ciphertext=? WHERE name=?", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(s, 1, buf, n, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

Test(vault_sqlite, flipped_ciphertext_byte_is_an_integrity_error)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c;
    void *st = two_entries(&c);

    flip_byte("alpha");
    expect_err(get_rc(st, "alpha", &err), &err, -EBADMSG, "entry 'alpha' failed its integrity");
    expect_value(st, "beta", "value-of-beta-456"); /* the damage stays local */
    ops->close(st);
}

Test(vault_sqlite, swapped_rows_are_detected)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c;
    void *st = two_entries(&c);

    sql(db_path(), "CREATE TEMP TABLE t AS SELECT name, nonce, ciphertext FROM entries;"
                   "UPDATE entries SET nonce = (SELECT nonce FROM t WHERE t.name != entries.name),"
                   " ciphertext = (SELECT ciphertext FROM t WHERE t.name != entries.name);");
    expect_err(get_rc(st, "alpha", &err), &err, -EBADMSG, "swapped");
    expect_err(get_rc(st, "beta", &err), &err, -EBADMSG, "integrity");
    ops->close(st);
}

Test(vault_sqlite, altered_metadata_or_type_is_detected)
{
    terok_error err = TEROK_ERROR_INIT;
    seen s = {.n = 0};
    tcfg c;
    void *st = two_entries(&c);

    sql(db_path(), "UPDATE entries SET metadata = '{\"a\":\"evil\"}' WHERE name = 'alpha'");
    expect_err(get_rc(st, "beta", &err), &err, -EBADMSG, "entry index failed");
    expect_err(ops->list(st, list_cb, &s, &err), &err, -EBADMSG, "entry index failed");
    cr_assert_eq(s.n, 0, "a tampered listing must not be delivered");
    ops->close(st);
}

Test(vault_sqlite, row_copied_from_another_vault_is_detected)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c1 = base_cfg("key-file"), c2 = base_cfg("key-file");
    char p2[4200], k2[4200], stmt[9000];
    void *a, *b;

    a = vopen(&c1);
    put(a, "shared", "vault-one-value", NULL, NULL);
    ops->close(a);
    snprintf(p2, sizeof p2, "%s/other/vault.db", test_tmp);
    snprintf(k2, sizeof k2, "%s/other/vault.key", test_tmp);
    cfg_set(&c2, "path", p2);
    cfg_set(&c2, "key-file", k2);
    b = vopen(&c2);
    put(b, "shared", "vault-two-value", NULL, NULL);
    put(b, "other", "vault-two-other", NULL, NULL);
    /* Put a's sealed value into b's row of the same name (b's header stays, so the index is
     * happy): the AD names the database and its key, so it does not open here. */
    snprintf(stmt, sizeof stmt,
             "ATTACH '%s' AS a;"
             "UPDATE main.entries SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM "
             "a.entries WHERE name='shared') WHERE name='shared';",
             db_path());
    sql(p2, stmt);
    expect_err(get_rc(b, "shared", &err), &err, -EBADMSG,
               "entry 'shared' failed its integrity check");
    expect_value(b, "other", "vault-two-other");
    /* Add a's row under a new name: the index no longer matches. */
    snprintf(stmt, sizeof stmt,
             "ATTACH '%s' AS a; INSERT INTO main.entries SELECT 'intruder', type, metadata, "
             "created_at, updated_at, version, nonce, ciphertext FROM a.entries;",
             db_path());
    sql(p2, stmt);
    expect_err(get_rc(b, "other", &err), &err, -EBADMSG, "entry index failed");
    ops->close(b);
}

Test(vault_sqlite, single_row_rollback_and_deletion_are_detected)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c;
    void *st = two_entries(&c);

    sql(db_path(), "CREATE TABLE keep AS SELECT * FROM entries WHERE name='alpha'");
    put(st, "alpha", "value-of-alpha-NEW", "api-key", "{\"a\":1}");
    expect_value(st, "alpha", "value-of-alpha-NEW");
    /* Put the old row (old version, old ciphertext: internally consistent) back. */
    sql(db_path(), "DELETE FROM entries WHERE name='alpha';"
                   "INSERT INTO entries SELECT * FROM keep; DROP TABLE keep;");
    expect_err(get_rc(st, "alpha", &err), &err, -EBADMSG, "rolled back");
    expect_err(get_rc(st, "beta", &err), &err, -EBADMSG, "entry index");
    ops->close(st);
}

Test(vault_sqlite, deleted_row_is_detected)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c;
    void *st = two_entries(&c);

    sql(db_path(), "DELETE FROM entries WHERE name='beta'");
    expect_err(get_rc(st, "alpha", &err), &err, -EBADMSG, "removed");
    ops->close(st);
}

/* --- keys --------------------------------------------------------------------------------- */

Test(vault_sqlite, wrong_key_file_is_a_clear_error)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    void *st = vopen(&c);

    put(st, "x", "xvalue-secret", NULL, NULL);
    ops->close(st);
    unlink(key_path());
    test_write_file("state/vault-sqlite/vault.key",
                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "key-file: its key does not open");
    ops->close(st);
}

Test(vault_sqlite, key_file_with_bad_mode_or_symlink_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    void *st = vopen(&c);

    put(st, "x", "xvalue-secret", NULL, NULL);
    ops->close(st);
    cr_assert_eq(chmod(key_path(), 0644), 0);
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "mode 0644");
    ops->close(st);

    cr_assert_eq(chmod(key_path(), 0600), 0);
    cr_assert_eq(rename(key_path(), test_path("real.key")), 0);
    cr_assert_eq(symlink(test_path("real.key"), key_path()), 0);
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "symlink");
    ops->close(st);

    /* A fresh vault refuses to adopt a pre-existing key file others can read. */
    c = base_cfg("key-file");
    cfg_set(&c, "path", test_path("fresh/vault.db"));
    test_write_file("fresh/vault.db.key",
                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0640);
    st = vopen(&c);
    {
        _cleanup_secret_ terok_secret *v = sec("v");
        expect_err(ops->put(st, "x", v, NULL, NULL, &err), &err, -EACCES, "mode 0640");
    }
    ops->close(st);
}

Test(vault_sqlite, passphrase_unlock_and_wrong_passphrase)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("passphrase");
    _cleanup_secret_ terok_secret *good = sec("correct horse battery");
    _cleanup_secret_ terok_secret *bad = sec("wrong horse battery");
    void *st = vopen(&c);

    remember_secret("correct horse battery");
    remember_secret("wrong horse battery");
    /* No source can make a key on its own: the vault waits for a passphrase. */
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "no key yet");
    terok_assert_ok(ops->unlock(st, good, &err), &err);
    put(st, "x", "passphrase-protected", NULL, NULL);
    ops->close(st);

    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES,
               "passphrase: no passphrase given and no passphrase-command configured");
    expect_err(ops->unlock(st, bad, &err), &err, -EACCES, "wrong passphrase");
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "locked");
    terok_assert_ok(ops->unlock(st, good, &err), &err);
    expect_value(st, "x", "passphrase-protected");
    terok_assert_ok(ops->lock(st, &err), &err);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "locked");
    ops->close(st);
}

Test(vault_sqlite, passphrase_command_feeds_the_chain)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("passphrase");
    void *st;

    remember_secret("from-a-command");
    cfg_set(&c, "passphrase-command", "printf '%s\\n' from-a-command");
    st = vopen(&c); /* provisions from the command */
    put(st, "x", "cmd-protected", NULL, NULL);
    ops->close(st);
    st = vopen(&c);
    expect_value(st, "x", "cmd-protected");
    ops->close(st);

    cfg_set(&c, "passphrase-command", "printf not-the-passphrase");
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "wrong passphrase (from passphrase-command)");
    ops->close(st);
    cfg_set(&c, "passphrase-command", "false");
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "'false' failed (exit 1)");
    ops->close(st);
    cfg_set(&c, "passphrase-command", "sleep 5");
    cfg_set(&c, "helper-timeout", "200ms");
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "timed out");
    ops->close(st);
    cfg_set(&c, "passphrase-command", "/nonexistent/helper");
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "not found");
    ops->close(st);
}

typedef struct status_copy {
    char source[64], detail[1024], location[4200];
    uint32_t flags;
    int64_t entries;
} status_copy;

static int status_cb(void *ud, const terok_vault_status *s)
{
    status_copy *c = ud;
    snprintf(c->source, sizeof c->source, "%s", s->key_source);
    snprintf(c->detail, sizeof c->detail, "%s", s->detail);
    snprintf(c->location, sizeof c->location, "%s", s->location);
    c->flags = s->flags;
    c->entries = s->entries;
    return 0;
}

static status_copy status(void *st)
{
    terok_error err = TEROK_ERROR_INIT;
    status_copy c;
    memset(&c, 0, sizeof c);
    terok_assert_ok(ops->status(st, status_cb, &c, &err), &err);
    return c;
}

Test(vault_sqlite, chain_first_working_source_wins_and_fails_closed)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("systemd-creds key-file");
    _cleanup_secret_ terok_secret *pw = sec("chain passphrase");
    terok_vault_ctl_rekey rk = {.struct_size = sizeof rk, .new_passphrase = pw};
    status_copy s;
    void *st;

    remember_secret("chain passphrase");
    /* systemd-creds missing: skipped with its reason, the key file is made and used. */
    cfg_set(&c, "systemd-creds", "/nonexistent/systemd-creds");
    st = vopen(&c);
    put(st, "x", "chain-value", NULL, NULL);
    s = status(st);
    cr_assert_str_eq(s.source, "key-file");
    cr_assert(s.flags & TEROK_VAULT_STATUS_WEAK_KEY_SOURCE);
    cr_assert(s.flags & TEROK_VAULT_STATUS_SURVIVES_REBOOT);
    cr_assert_not(s.flags & TEROK_VAULT_STATUS_LOCKED);
    cr_assert_eq(s.entries, 1);
    cr_assert_str_eq(s.location, db_path());
    ops->close(st);

    /* Add a passphrase slot; with a passphrase-command it now comes first. */
    cfg_set(&c, "key-sources", "systemd-creds passphrase key-file");
    st = vopen(&c);
    terok_assert_ok(ops->ctl(st, TEROK_VAULT_CTL_CHANGE_PASSPHRASE, &rk, &err), &err);
    ops->close(st);
    cfg_set(&c, "passphrase-command", "printf '%s' 'chain passphrase'");
    st = vopen(&c);
    expect_value(st, "x", "chain-value");
    s = status(st);
    cr_assert_str_eq(s.source, "passphrase");
    cr_assert_not(s.flags & TEROK_VAULT_STATUS_WEAK_KEY_SOURCE);
    ops->close(st);

    /* A wrong command output falls through to the next source. */
    cfg_set(&c, "passphrase-command", "printf nope");
    st = vopen(&c);
    expect_value(st, "x", "chain-value");
    cr_assert_str_eq(status(st).source, "key-file");
    ops->close(st);

    /* Everything fails: -EACCES naming each source and why. */
    unlink(key_path());
    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "no key source could open it");
    cr_assert_eq(ops->put(st, "y", pw, NULL, NULL, &err), -EACCES);
    {
        const char *m = terok_error_message(&err);
        cr_assert(strstr(m, "systemd-creds: no key slot"), "%s", m);
        cr_assert(strstr(m, "passphrase: wrong passphrase (from passphrase-command)"), "%s", m);
        cr_assert(strstr(m, "key-file: cannot open key file"), "%s", m);
        cr_assert(strstr(m, "systemd-creds") < strstr(m, "passphrase:") &&
                      strstr(m, "passphrase:") < strstr(m, "key-file:"),
                  "reasons not in chain order: %s", m);
        no_secret_in(m);
        terok_error_clear(&err);
    }
    ops->close(st);
}

Test(vault_sqlite, empty_chain_and_unknown_source_fail_closed)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("keyring");
    void *st = NULL;

    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "no key yet");
    ops->close(st);
    c = base_cfg("key-file tpm-magic");
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EINVAL, "'tpm-magic'");
    c = base_cfg("key-file key-file");
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EINVAL, "repeated");
}

static bool systemd_creds_works(void)
{
    const char *argv[] = {"sh", "-c",
                          "printf x | systemd-creds encrypt --name=t - - | "
                          "systemd-creds decrypt --name=t - - >/dev/null 2>&1",
                          NULL};
    cli_result r = test_run(NULL, argv);
    bool ok = r.exit_code == 0;
    cli_result_done(&r);
    return ok;
}

Test(vault_sqlite, systemd_creds_slot_when_available)
{
    tcfg c = base_cfg("systemd-creds key-file");
    status_copy s;
    void *st;

    if (!systemd_creds_works())
        cr_skip_test("needs a working 'systemd-creds encrypt' (host key or TPM2)");
    st = vopen(&c);
    put(st, "x", "sealed-by-systemd", NULL, NULL);
    ops->close(st);
    cr_assert_eq(access(key_path(), F_OK), -1, "no key file when systemd-creds works");
    st = vopen(&c);
    expect_value(st, "x", "sealed-by-systemd");
    s = status(st);
    cr_assert_str_eq(s.source, "systemd-creds");
    cr_assert_not(s.flags & TEROK_VAULT_STATUS_WEAK_KEY_SOURCE);
    ops->close(st);
}

Test(vault_sqlite, keyring_session_cache)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("keyring passphrase");
    _cleanup_secret_ terok_secret *pw = sec("keyring pass");
    status_copy s;
    void *st = vopen(&c);

    remember_secret("keyring pass");
    terok_assert_ok(ops->unlock(st, pw, &err), &err);
    put(st, "x", "cached-value", NULL, NULL);
    ops->close(st);
    if (strstr(logbuf, "kernel keyring")) /* a seccomp'd or keyring-less host */
        cr_skip_test("needs the kernel keyring: %s", logbuf);

    st = vopen(&c); /* no passphrase: the session key opens it */
    expect_value(st, "x", "cached-value");
    s = status(st);
    cr_assert_str_eq(s.source, "keyring");
    cr_assert_not(s.flags & TEROK_VAULT_STATUS_SURVIVES_REBOOT);
    terok_assert_ok(ops->lock(st, &err), &err);
    ops->close(st);

    st = vopen(&c);
    expect_err(get_rc(st, "x", &err), &err, -EACCES, "keyring: no session key cached");
    cr_assert(status(st).flags & TEROK_VAULT_STATUS_LOCKED);
    ops->close(st);
}

/* --- passphrase change and rekey ---------------------------------------------------------- */

Test(vault_sqlite, change_passphrase_and_rekey_keep_values)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("passphrase");
    _cleanup_secret_ terok_secret *p1 = sec("first-pass"), *p2 = sec("second-pass");
    terok_vault_ctl_rekey ch = {
        .struct_size = sizeof ch, .old_passphrase = p1, .new_passphrase = p2};
    terok_vault_ctl_rekey rk = {.struct_size = sizeof rk, .old_passphrase = p2};
    void *st = vopen(&c);

    remember_secret("first-pass");
    remember_secret("second-pass");
    terok_assert_ok(ops->unlock(st, p1, &err), &err);
    put(st, "a", "value-a-1", NULL, NULL);
    put(st, "b", "value-b-2", "oauth", "{\"k\":true}");
    expect_err(ops->ctl(st, TEROK_VAULT_CTL_CHANGE_PASSPHRASE, &rk, &err), &err, -EINVAL,
               "needs the new passphrase");
    terok_assert_ok(ops->ctl(st, TEROK_VAULT_CTL_CHANGE_PASSPHRASE, &ch, &err), &err);
    ops->close(st);

    st = vopen(&c);
    expect_err(ops->unlock(st, p1, &err), &err, -EACCES, "wrong passphrase");
    terok_assert_ok(ops->unlock(st, p2, &err), &err);
    expect_value(st, "a", "value-a-1");
    terok_assert_ok(ops->ctl(st, TEROK_VAULT_CTL_REKEY, &rk, &err), &err);
    expect_value(st, "b", "value-b-2");
    put(st, "c", "value-c-3", NULL, NULL);
    ops->close(st);

    st = vopen(&c);
    terok_assert_ok(ops->unlock(st, p2, &err), &err);
    expect_value(st, "a", "value-a-1");
    expect_value(st, "b", "value-b-2");
    expect_value(st, "c", "value-c-3");
    ops->close(st);
}

Test(vault_sqlite, rekey_by_another_handle_is_picked_up)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    terok_vault_ctl_rekey rk = {.struct_size = sizeof rk};
    void *a = vopen(&c), *b = vopen(&c);

    put(a, "x", "before-rekey", NULL, NULL);
    expect_value(b, "x", "before-rekey"); /* b holds the old data key */
    terok_assert_ok(ops->ctl(a, TEROK_VAULT_CTL_REKEY, &rk, &err), &err);
    put(b, "y", "written-by-b", NULL, NULL); /* b notices the new generation, reopens */
    expect_value(a, "y", "written-by-b");
    expect_value(b, "x", "before-rekey");
    ops->close(a);
    ops->close(b);
}

/* Run a change in a child that SIGKILLs itself at `point` (faulty plugin build), or is killed
 * by us after `delay_us` (production build). Returns the child's wait status. */
static int killed_child(const tcfg *c, const char *point, long delay_us, uint32_t op,
                        const char *oldp, const char *newp)
{
    pid_t pid = fork();
    int ws;

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        terok_error err = TEROK_ERROR_INIT;
        terok_secret *o = NULL, *n = NULL;
        void *st = NULL;
        const terok_vault_ops *fo;
        terok_vault_ctl_rekey rk = {.struct_size = sizeof rk};

        if (point)
            setenv("TEROK_VAULT_FAULT", point, 1);
        fo = load_plugin(point ? VAULT_SQLITE_FAULTY_SO : VAULT_SQLITE_SO);
        if (oldp)
            terok_secret_new(oldp, strlen(oldp), &o);
        if (newp)
            terok_secret_new(newp, strlen(newp), &n);
        rk.old_passphrase = o;
        rk.new_passphrase = n;
        if (fo->open(NULL, c, &st, &err) < 0)
            _exit(3);
        if (fo->ctl(st, op, &rk, &err) < 0)
            _exit(4);
        fo->close(st);
        _exit(0);
    }
    if (!point) {
        struct timespec ts = {.tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL); /* our own child */
    }
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    return ws;
}

/* After a crash: the old or the new passphrase opens the vault (exactly one), and every value
 * is intact. Returns 0 for old, 1 for new. */
static int which_passphrase_works(const tcfg *c, const char *oldp, const char *newp)
{
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *o = sec(oldp), *n = sec(newp);
    void *st = vopen(c);
    int rn = ops->unlock(st, n, &err), ro;

    terok_error_clear(&err);
    ro = ops->unlock(st, o, &err); /* a failed unlock leaves the handle locked */
    terok_error_clear(&err);
    cr_assert((ro == 0) != (rn == 0), "old %d, new %d: exactly one passphrase must work", ro, rn);
    if (rn == 0)
        terok_assert_ok(ops->unlock(st, n, &err), &err);
    expect_value(st, "a", "crash-value-a");
    expect_value(st, "b", "crash-value-b");
    expect_value(st, "c", "crash-value-c");
    ops->close(st);
    return rn == 0;
}

static tcfg crash_vault(void)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("passphrase");
    _cleanup_secret_ terok_secret *p = sec("old-pass");
    void *st = vopen(&c);

    remember_secret("old-pass");
    remember_secret("new-pass");
    terok_assert_ok(ops->unlock(st, p, &err), &err);
    put(st, "a", "crash-value-a", NULL, NULL);
    put(st, "b", "crash-value-b", NULL, "{}");
    put(st, "c", "crash-value-c", "oauth", NULL);
    ops->close(st);
    return c;
}

Test(vault_sqlite, change_passphrase_killed_midway_leaves_old_or_new)
{
    tcfg c = crash_vault();
    int ws;

    ws = killed_child(&c, "change-passphrase-commit", 0, TEROK_VAULT_CTL_CHANGE_PASSPHRASE,
                      "old-pass", "new-pass");
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "fault point not reached: %d", ws);
    cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 0);

    ws = killed_child(&c, "change-passphrase-committed", 0, TEROK_VAULT_CTL_CHANGE_PASSPHRASE,
                      "old-pass", "new-pass");
    cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 1);

    /* And killed from outside with the shipped plugin at moments spread over the child's whole
     * run (unlock ~0.7 s of Argon2id here, derive ~0.7 s, then the transaction). */
    for (long d = 0, cur = 1; d < 5; d++) {
        killed_child(&c, NULL, 150000 + d * 350000, TEROK_VAULT_CTL_CHANGE_PASSPHRASE,
                     cur ? "new-pass" : "old-pass", cur ? "old-pass" : "new-pass");
        cur = which_passphrase_works(&c, "old-pass", "new-pass");
    }
}

Test(vault_sqlite, rekey_killed_midway_leaves_a_working_vault)
{
    static const char *const points[] = {"rekey-row:0", "rekey-row:1", "rekey-row:2",
                                         "rekey-commit", "rekey-committed"};
    tcfg c = crash_vault();

    for (size_t i = 0; i < ELEMENTSOF(points); i++) {
        int ws = killed_child(&c, points[i], 0, TEROK_VAULT_CTL_REKEY, "old-pass", NULL);
        cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "%s not reached: %d", points[i], ws);
        cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 0, "%s", points[i]);
    }
    /* A rekey that also changes the passphrase: old before the commit, new after it. */
    cr_assert(WIFSIGNALED(
        killed_child(&c, "rekey-row:1", 0, TEROK_VAULT_CTL_REKEY, "old-pass", "new-pass")));
    cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 0);
    cr_assert(WIFSIGNALED(
        killed_child(&c, "rekey-committed", 0, TEROK_VAULT_CTL_REKEY, "old-pass", "new-pass")));
    cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 1);
    for (long d = 0; d < 4; d++) {
        killed_child(&c, NULL, 200000 + d * 300000, TEROK_VAULT_CTL_REKEY, "new-pass", NULL);
        cr_assert_eq(which_passphrase_works(&c, "old-pass", "new-pass"), 1);
    }
}

/* --- arguments ---------------------------------------------------------------------------- */

Test(vault_sqlite, null_and_invalid_arguments)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    _cleanup_secret_ terok_secret *v = sec("some-value"), *out = NULL;
    terok_vault_ctl_rekey big[2];
    void *st = vopen(&c);
    seen s = {.n = 0};

    remember_secret("some-value");
    expect_err(ops->open(NULL, &c, NULL, &err), &err, -EINVAL, "ret_state");
    expect_err(ops->put(NULL, "x", v, NULL, NULL, &err), &err, -EINVAL, "put");
    expect_err(ops->put(st, NULL, v, NULL, NULL, &err), &err, -EINVAL, "missing");
    expect_err(ops->put(st, "x", NULL, NULL, NULL, &err), &err, -EINVAL, "value");
    expect_err(ops->get(st, "x", NULL, &err), &err, -EINVAL, "ret_secret");
    expect_err(ops->get(NULL, "x", &out, &err), &err, -EINVAL, "get");
    expect_err(ops->remove(st, NULL, &err), &err, -EINVAL, "missing");
    expect_err(ops->list(st, NULL, &s, &err), &err, -EINVAL, "callback");
    expect_err(ops->status(st, NULL, NULL, &err), &err, -EINVAL, "callback");
    expect_err(ops->unlock(NULL, NULL, &err), &err, -EINVAL, "unlock");
    expect_err(ops->lock(NULL, &err), &err, -EINVAL, "lock");
    expect_err(ops->ctl(st, 99, NULL, &err), &err, -EOPNOTSUPP, "unknown ctl op 99");
    expect_err(ops->ctl(st, TEROK_VAULT_CTL_REKEY, NULL, &err), &err, -EINVAL, "needs");
    memset(big, 0, sizeof big);
    big[0].struct_size = sizeof big;
    ((unsigned char *)big)[sizeof big[0] + 3] = 1;
    expect_err(ops->ctl(st, TEROK_VAULT_CTL_REKEY, big, &err), &err, -E2BIG, "does not know");
    {
        _cleanup_secret_ terok_secret *empty = NULL;
        cr_assert_eq(terok_secret_new("", 0, &empty), 0);
        expect_err(ops->put(st, "x", empty, NULL, NULL, &err), &err, -EINVAL, "1 to");
    }
    expect_err(ops->put(st, "x", v, "Bad Type", NULL, &err), &err, -EINVAL, "'Bad Type'");
    c = base_cfg("key-file");
    cfg_set(&c, "path", "relative/vault.db");
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EINVAL, "'relative/vault.db'");
    ops->close(st);
    ops->close(NULL);
}

/* Arrays, not pointers: Criterion may run each parameter in a re-executed process. */
struct bad_name {
    char name[160];
    char shown[64];
};

static struct bad_name bad_names[] = {
    {"", "is empty"},
    {"../x", "'../x'"},
    {".hidden", "'.hidden'"},
    {"-flag", "'-flag'"},
    {"a/b", "'a/b'"},
    {"a b", "'a b'"},
    {"line\nbreak", "'line\\x0abreak'"},
    {"caf\xc3\xa9", "'caf\\xc3\\xa9'"},
    {"x;DROP TABLE entries", "'x;DROP TABLE entries'"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "longer than 128"},
};

ParameterizedTestParameters(vault_sqlite, hostile_names_are_rejected)
{
    return cr_make_param_array(struct bad_name, bad_names, ELEMENTSOF(bad_names));
}

ParameterizedTest(struct bad_name *b, vault_sqlite, hostile_names_are_rejected)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    _cleanup_secret_ terok_secret *v = sec("hostile-value");
    void *st = vopen(&c);

    remember_secret("hostile-value");
    expect_err(ops->put(st, b->name, v, NULL, NULL, &err), &err, -EINVAL, b->shown);
    expect_err(get_rc(st, b->name, &err), &err, -EINVAL, b->shown);
    expect_err(ops->remove(st, b->name, &err), &err, -EINVAL, b->shown);
    ops->close(st);
}

Test(vault_sqlite, longest_valid_name_is_accepted)
{
    tcfg c = base_cfg("key-file");
    char name[129];
    void *st = vopen(&c);

    memset(name, 'n', 128);
    name[128] = '\0';
    put(st, name, "long-name-value", NULL, NULL);
    expect_value(st, name, "long-name-value");
    ops->close(st);
}

Test(vault_sqlite, metadata_must_be_a_json_object)
{
    static const char *const bad[] = {"{", "[1,2]", "\"text\"", "{} trailing", "nope", "42", ""};
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    _cleanup_secret_ terok_secret *v = sec("meta-value");
    void *st = vopen(&c);

    remember_secret("meta-value");
    for (size_t i = 0; i < ELEMENTSOF(bad); i++)
        expect_err(ops->put(st, "m", v, NULL, bad[i], &err), &err, -EINVAL, "JSON object");
    put(st, "m", "meta-value", NULL, " {\"nested\": {\"ok\": [1, 2]}} \n");
    ops->close(st);
}

/* --- the file ----------------------------------------------------------------------------- */

Test(vault_sqlite, database_file_is_guarded)
{
    terok_error err = TEROK_ERROR_INIT;
    tcfg c = base_cfg("key-file");
    void *st = vopen(&c);

    ops->close(st);
    cr_assert_eq(chmod(db_path(), 0644), 0);
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EPERM, "mode 0644");
    cr_assert_eq(chmod(db_path(), 0600), 0);

    cfg_set(&c, "path", test_path("link.db"));
    cr_assert_eq(symlink(db_path(), test_path("link.db")), 0);
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EPERM, "symlink");

    c = base_cfg("key-file");
    sql(db_path(), "PRAGMA user_version = 99");
    expect_err(ops->open(NULL, &c, &st, &err), &err, -EPROTO, "schema version 99");
}

Test(vault_sqlite, default_chain_on_this_machine)
{
    tcfg c = {.n = 0};
    status_copy s;
    void *st;

    cfg_set(&c, "argon2-level", "interactive");
    st = vopen(&c);
    put(st, "x", "default-chain-value", NULL, NULL);
    s = status(st);
    /* An unattended fresh machine opens without a prompt: systemd-creds where it works, else the
     * key file (reported weak). */
    if (systemd_creds_works()) {
        cr_assert_str_eq(s.source, "systemd-creds");
    } else {
        cr_assert_str_eq(s.source, "key-file");
        cr_assert(s.flags & TEROK_VAULT_STATUS_WEAK_KEY_SOURCE);
    }
    cr_assert(strstr(s.detail, "Chain: systemd-creds"), "%s", s.detail);
    ops->close(st);
}
