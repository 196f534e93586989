/* SPDX-License-Identifier: Apache-2.0 */
/* sshkeys.c: SSH keys in the vault (seed as the secret, public side in the metadata) and their
 * scope links in the state store. Never prints, never formats key material. */
#include <ctype.h>
#include <json-c/json.h>
#include <sodium.h>
#include <time.h>

#include "error.h"
#include "sshkeys.h"
#include "util/macro.h"
#include "util/strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS ssh_links ("
                                 " scope TEXT NOT NULL,"
                                 " key TEXT NOT NULL,"
                                 " linked_at INTEGER NOT NULL,"
                                 " PRIMARY KEY (scope, key));"
                                 "CREATE INDEX IF NOT EXISTS ssh_links_key ON ssh_links(key);"
                                 "CREATE TABLE IF NOT EXISTS ssh_container_scopes ("
                                 " container TEXT PRIMARY KEY NOT NULL,"
                                 " scope TEXT NOT NULL);";

bool ssh_scope_is_valid(const char *s)
{
    size_t n;

    if (!s || !isalnum((unsigned char)s[0]))
        return false;
    n = strnlen(s, SSH_SCOPE_MAX + 1);
    if (n > SSH_SCOPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

static int db_error(sqlite3 *db, terok_error *err, const char *what)
{
    return terok_error_set(err, -EIO, "state store: %s: %s", what, sqlite3_errmsg(db));
}

int sshkeys_schema(sqlite3 *db, terok_error *err)
{
    if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(db, err, "creating the SSH tables");
    return 0;
}

/* ---- vault side ---- */

typedef struct entry_scan {
    const char *want; /* one name, or NULL for all */
    sshkey_info_cb cb;
    void *userdata;
    bool found, other_type, stopped;
    int r;
    terok_error *err;
} entry_scan;

/* The public side from an entry's metadata; -EBADMSG when it is not well formed. */
static int info_from_entry(const terok_vault_entry *e, json_object **ret_meta, sshkey_info *ret)
{
    json_object *m = e->metadata ? json_tokener_parse(e->metadata) : NULL, *pub, *c, *fp;

    if (!m || !json_object_object_get_ex(m, "public_key", &pub) ||
        !json_object_is_type(pub, json_type_string) ||
        sshkey_pub_base64_parse(json_object_get_string(pub), ret->pk) < 0) {
        json_object_put(m);
        return -EBADMSG;
    }
    ret->name = e->name;
    ret->comment =
        json_object_object_get_ex(m, "comment", &c) && json_object_is_type(c, json_type_string)
            ? json_object_get_string(c)
            : NULL;
    ret->fingerprint = json_object_object_get_ex(m, "fingerprint", &fp) &&
                               json_object_is_type(fp, json_type_string)
                           ? json_object_get_string(fp)
                           : NULL;
    ret->created_at = e->created_at;
    *ret_meta = m;
    return 0;
}

static int scan_cb(void *ud, const terok_vault_entry *e)
{
    entry_scan *s = ud;
    json_object *m = NULL;
    sshkey_info k = {0};
    char fp[SSHKEY_FP_SIZE];

    if (s->want && !streq(e->name, s->want))
        return 0;
    if (!e->type || !streq(e->type, SSHKEY_VAULT_TYPE)) {
        s->other_type = s->want != NULL;
        return s->want ? 1 : 0;
    }
    s->found = true;
    if (info_from_entry(e, &m, &k) < 0) {
        s->r = terok_error_set(s->err, -EBADMSG,
                               "vault entry '%s' has type '%s' but no valid 'public_key' in its "
                               "metadata; remove it with 'terok-sandbox vault rm %s'",
                               e->name, e->type, e->name);
        return 1;
    }
    /* The fingerprint shown is always recomputed, never trusted from metadata. */
    sshkey_fingerprint(k.pk, fp);
    k.fingerprint = fp;
    if (s->cb(s->userdata, &k) != 0)
        s->stopped = true;
    json_object_put(m);
    return s->stopped || s->want ? 1 : 0;
}

int sshkeys_find(vault *v, const char *name, sshkey_info_cb cb, void *userdata, terok_error *err)
{
    entry_scan s = {.want = name, .cb = cb, .userdata = userdata, .err = err};
    int r = vault_list(v, scan_cb, &s, err);

    if (r < 0)
        return r;
    if (s.r < 0)
        return s.r;
    if (s.other_type)
        return terok_error_set(err, -EMEDIUMTYPE,
                               "vault entry '%s' is not an SSH key (see 'terok-sandbox vault "
                               "show-meta %s')",
                               name, name);
    if (!s.found)
        return terok_error_set(err, -ENOENT, "no SSH key '%s'", name);
    return 0;
}

int sshkeys_list(vault *v, sshkey_info_cb cb, void *userdata, terok_error *err)
{
    entry_scan s = {.cb = cb, .userdata = userdata, .err = err};
    int r = vault_list(v, scan_cb, &s, err);

    return r < 0 ? r : s.r;
}

static int noop_cb(void *ud, const sshkey_info *k)
{
    (void)ud;
    (void)k;
    return 0;
}

int sshkeys_put(vault *v, const char *name, const sshkey *k, terok_error *err)
{
    _cleanup_free_ char *b64 = NULL;
    json_object *m;
    char fp[SSHKEY_FP_SIZE];
    int r;

    r = sshkeys_find(v, name, noop_cb, NULL, err);
    if (r == -EMEDIUMTYPE)
        return terok_error_set(err, -EEXIST,
                               "vault entry '%s' exists and is not an SSH key; choose another name",
                               name);
    if (r < 0 && r != -ENOENT)
        return r;
    terok_error_clear(err);
    b64 = sshkey_pub_base64(k->pk);
    m = json_object_new_object();
    if (!b64 || !m) {
        json_object_put(m);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    sshkey_fingerprint(k->pk, fp);
    json_object_object_add(m, "public_key", json_object_new_string(b64));
    json_object_object_add(m, "fingerprint", json_object_new_string(fp));
    json_object_object_add(m, "comment", json_object_new_string(strempty(k->comment)));
    r = vault_put(v, name, k->seed, SSHKEY_VAULT_TYPE,
                  json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN), err);
    json_object_put(m);
    return r;
}

typedef struct pub_of {
    uint8_t pk[SSHKEY_PK_BYTES];
    char *comment;
    bool oom;
} pub_of;

static int pub_cb(void *ud, const sshkey_info *k)
{
    pub_of *p = ud;

    memcpy(p->pk, k->pk, sizeof p->pk);
    if (k->comment && !(p->comment = strdup(k->comment)))
        p->oom = true;
    return 1;
}

int sshkeys_load(vault *v, const char *name, sshkey *ret, terok_error *err)
{
    _cleanup_secret_ terok_secret *seed = NULL;
    pub_of p = {0};
    sshkey k = {0};
    int r;

    r = sshkeys_find(v, name, pub_cb, &p, err);
    if (r >= 0 && p.oom)
        r = terok_error_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        goto out;
    r = vault_get(v, name, &seed, err);
    if (r < 0)
        goto out;
    r = sshkey_from_seed(seed, sshkey_comment_is_valid(p.comment) ? p.comment : NULL, &k, err);
    if (r < 0)
        goto out;
    if (sodium_memcmp(k.pk, p.pk, SSHKEY_PK_BYTES) != 0) {
        sshkey_done(&k);
        r = terok_error_set(err, -EBADMSG,
                            "SSH key '%s': the stored private key does not match the public key "
                            "in its metadata",
                            name);
        goto out;
    }
    *ret = k;
out:
    free(p.comment);
    return r;
}

/* ---- state store side ---- */

static int exec_bind(sqlite3 *db, const char *sql, const char *a, const char *b, int64_t c,
                     terok_error *err, const char *what)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
    int r = sshkeys_schema(db, err);

    if (r < 0)
        return r;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, what);
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (c)
        sqlite3_bind_int64(st, 3, c);
    if (sqlite3_step(st) != SQLITE_DONE)
        return db_error(db, err, what);
    return sqlite3_changes(db) > 0 ? 1 : 0;
}

int sshkeys_link(sqlite3 *db, const char *scope, const char *name, terok_error *err)
{
    return exec_bind(db, "INSERT OR IGNORE INTO ssh_links(scope, key, linked_at) VALUES (?,?,?)",
                     scope, name, (int64_t)time(NULL), err, "linking an SSH key");
}

int sshkeys_unlink(sqlite3 *db, const char *scope, const char *name, terok_error *err)
{
    return exec_bind(db, "DELETE FROM ssh_links WHERE scope = ? AND key = ?", scope, name, 0, err,
                     "unlinking an SSH key");
}

int sshkeys_unlink_all(sqlite3 *db, const char *name, terok_error *err)
{
    return exec_bind(db, "DELETE FROM ssh_links WHERE key = ?", name, NULL, 0, err,
                     "unlinking an SSH key");
}

static int column_list(sqlite3 *db, const char *sql, const char *arg, char ***ret, terok_error *err)
{
    _cleanup_(sqlite3_finalizep) sqlite3_stmt *st = NULL;
    char **l = NULL;
    int r = sshkeys_schema(db, err), s;

    if (r < 0)
        return r;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(db, err, "reading SSH links");
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if (strv_extend(&l, (const char *)sqlite3_column_text(st, 0)) < 0) {
            strv_free(l);
            return terok_error_set(err, -ENOMEM, "out of memory");
        }
    if (s != SQLITE_DONE) {
        strv_free(l);
        return db_error(db, err, "reading SSH links");
    }
    if (!l && !(l = calloc(1, sizeof(char *))))
        return terok_error_set(err, -ENOMEM, "out of memory");
    *ret = l;
    return 0;
}

int sshkeys_scopes_of(sqlite3 *db, const char *name, char ***ret, terok_error *err)
{
    return column_list(db, "SELECT scope FROM ssh_links WHERE key = ? ORDER BY linked_at, rowid",
                       name, ret, err);
}

int sshkeys_keys_of(sqlite3 *db, const char *scope, char ***ret, terok_error *err)
{
    return column_list(db, "SELECT key FROM ssh_links WHERE scope = ? ORDER BY linked_at, rowid",
                       scope, ret, err);
}

typedef struct collect {
    sshkey_info *v;
    size_t n;
    bool oom;
} collect;

static int collect_cb(void *ud, const sshkey_info *k)
{
    collect *c = ud;
    sshkey_info *v = reallocarray(c->v, c->n + 1, sizeof(*v));

    if (!v) {
        c->oom = true;
        return 1;
    }
    c->v = v;
    v[c->n] = *k;
    v[c->n].name = strdup(k->name);
    v[c->n].comment = k->comment ? strdup(k->comment) : NULL;
    v[c->n].fingerprint = strdup(k->fingerprint);
    c->n++;
    if (!v[c->n - 1].name || !v[c->n - 1].fingerprint || (k->comment && !v[c->n - 1].comment))
        c->oom = true;
    return 0;
}

int sshkeys_scope_identities(vault *v, sqlite3 *db, const char *scope, sshkey_info_cb cb,
                             void *userdata, terok_error *err)
{
    _cleanup_(strv_freep) char **names = NULL;
    collect c = {0};
    int r;

    r = sshkeys_keys_of(db, scope, &names, err);
    if (r < 0)
        return r;
    if (!names[0])
        return 0;
    r = sshkeys_list(v, collect_cb, &c, err);
    if (r >= 0 && c.oom)
        r = terok_error_set(err, -ENOMEM, "out of memory");
    for (char **n = names; r >= 0 && *n; n++)
        for (size_t i = 0; i < c.n; i++)
            if (streq(c.v[i].name, *n)) {
                if (cb(userdata, &c.v[i]) != 0)
                    goto done;
                break;
            }
done:
    for (size_t i = 0; i < c.n; i++) {
        free((char *)c.v[i].name);
        free((char *)c.v[i].comment);
        free((char *)c.v[i].fingerprint);
    }
    free(c.v);
    return r < 0 ? r : 0;
}

int sshkeys_container_set(sqlite3 *db, const char *container, const char *scope, terok_error *err)
{
    int r =
        exec_bind(db, "INSERT OR REPLACE INTO ssh_container_scopes(container, scope) VALUES (?,?)",
                  container, scope, 0, err, "recording a container's SSH scope");
    return r < 0 ? r : 0;
}

int sshkeys_container_scope(sqlite3 *db, const char *container, char **ret, terok_error *err)
{
    _cleanup_(strv_freep) char **l = NULL;
    int r = column_list(db, "SELECT scope FROM ssh_container_scopes WHERE container = ?", container,
                        &l, err);

    if (r < 0)
        return r;
    if (!l[0])
        return -ENOENT;
    *ret = TAKE_PTR(l[0]);
    return 0;
}

int sshkeys_container_forget(sqlite3 *db, const char *container, terok_error *err)
{
    int r = exec_bind(db, "DELETE FROM ssh_container_scopes WHERE container = ?", container, NULL,
                      0, err, "forgetting a container's SSH scope");
    return r < 0 ? r : 0;
}
