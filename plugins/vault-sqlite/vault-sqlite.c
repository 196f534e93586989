/* SPDX-License-Identifier: Apache-2.0 */
/* vault-sqlite.c: the vault-sqlite plugin's ops — configuration, argument validation and the
 * entry operations (put/get/list/remove/status). Values are sealed per entry (vault-crypto.c)
 * under a data key managed by vault-keys.c. Never prints, never exits, never logs a value, and
 * no error message carries secret material. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "terok/vault.h"
#include "vault-db.h"
#include "vault-spawn.h"
#include "vault-state.h"

#define HOST terok_plugin__host
#define NAME_MAX_LEN 128
#define TYPE_MAX_LEN 64
#define METADATA_MAX (64u * 1024)
#define VALUE_MAX (1u << 20)
#define DEFAULT_CHAIN "systemd-creds keyring passphrase key-file"

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("path", TEROK_CONFIG_PATH, "",
                     "Vault database file (default: <state-dir>/vault-sqlite/vault.db)")
        TEROK_CONFIG_KEY("key-sources", TEROK_CONFIG_STRING, DEFAULT_CHAIN,
                         "Key sources tried in order: systemd-creds keyring passphrase key-file")
            TEROK_CONFIG_KEY("key-file", TEROK_CONFIG_PATH, "",
                             "Key file, 0600 (default: vault.key beside the database; weak)")
                TEROK_CONFIG_KEY("passphrase-command", TEROK_CONFIG_STRING, "",
                                 "Command printing the passphrase on stdout (no shell)")
                    TEROK_CONFIG_KEY("helper-timeout", TEROK_CONFIG_DURATION, "30s",
                                     "Time limit for passphrase-command and systemd-creds")
                        TEROK_CONFIG_KEY("keyring-timeout", TEROK_CONFIG_DURATION, "8h",
                                         "How long 'vault unlock' keeps the key in the kernel "
                                         "keyring")
                            TEROK_CONFIG_KEY("argon2-level",
                                             TEROK_CONFIG_ENUM("interactive|moderate|sensitive"),
                                             "moderate", "Argon2id cost for new passphrase slots")
                                TEROK_CONFIG_KEY("systemd-creds", TEROK_CONFIG_STRING,
                                                 "systemd-creds", "The systemd-creds program")
                                    TEROK_CONFIG_KEY("systemd-creds-key",
                                                     TEROK_CONFIG_ENUM("auto|host|tpm2|host+tpm2"),
                                                     "auto",
                                                     "systemd-creds --with-key= for new slots"));

/* --- helpers ------------------------------------------------------------------------------ */

/* Quote a caller-controlled string for a message: printable ASCII kept, the rest as \xHH,
 * truncated. Names and types only; never used on a value. */
static const char *quote(const char *s, char out[200])
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    for (; *p && o < 180; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, 200 - o, "\\x%02x", *p);
    }
    if (*p)
        o += (size_t)snprintf(out + o, 200 - o, "...");
    out[o] = '\0';
    return out;
}

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

static int check_name(vault *v, const char *name, terok_error *err)
{
    char q[200];
    size_t len;

    if (!name)
        return terok_perr(err, -EINVAL, "vault: entry name is missing");
    len = strnlen(name, NAME_MAX_LEN + 1);
    if (len == 0)
        return terok_perr(err, -EINVAL, "vault: entry name is empty");
    if (len > NAME_MAX_LEN)
        return terok_perr(err, -EINVAL, "vault: entry name '%s' is longer than %d characters",
                          quote(name, q), NAME_MAX_LEN);
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i], i == 0))
            return terok_perr(err, -EINVAL,
                              "vault: invalid entry name '%s': use [A-Za-z0-9][A-Za-z0-9._-]*",
                              quote(name, q));
    (void)v;
    return 0;
}

static int check_type(const char *type, terok_error *err)
{
    char q[200];
    size_t len = strnlen(type, TYPE_MAX_LEN + 1);
    bool ok = len > 0 && len <= TYPE_MAX_LEN;

    for (size_t i = 0; ok && i < len; i++) {
        char c = type[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             (i > 0 && (c == '.' || c == '_' || c == '-'));
    }
    if (!ok)
        return terok_perr(err, -EINVAL,
                          "vault: invalid entry type '%s': use [a-z0-9][a-z0-9._-]*, at most %d",
                          quote(type, q), TYPE_MAX_LEN);
    return 0;
}

static int check_metadata(const char *meta, terok_error *err)
{
    struct json_tokener *tok;
    struct json_object *o;
    size_t len = strnlen(meta, METADATA_MAX + 1), end;
    int r = 0;

    if (len > METADATA_MAX)
        return terok_perr(err, -EINVAL, "vault: metadata is larger than %u bytes", METADATA_MAX);
    tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    o = json_tokener_parse_ex(tok, meta, (int)len);
    end = json_tokener_get_parse_end(tok);
    while (end < len &&
           (meta[end] == ' ' || meta[end] == '\n' || meta[end] == '\t' || meta[end] == '\r'))
        end++;
    if (!o || end != len || !json_object_is_type(o, json_type_object))
        r = terok_perr(err, -EINVAL, "vault: metadata must be a JSON object (got %s at offset %zu)",
                       !o           ? json_tokener_error_desc(json_tokener_get_error(tok))
                       : end != len ? "trailing text"
                                    : "a JSON value that is not an object",
                       end);
    json_object_put(o);
    json_tokener_free(tok);
    return r;
}

/* Every op starting a key-needing transaction goes through here: keys_ensure(), begin, check
 * the generation again (another process may rekey in between), retry a few times. */
static int begin_with_keys(vault *v, bool write, terok_error *err)
{
    for (int attempt = 0;; attempt++) {
        int r = keys_ensure(v, err);
        if (r < 0)
            return r;
        r = write ? vdb_begin_write(v->db, err) : vdb_begin_read(v->db, err);
        if (r < 0)
            return r;
        r = keys_check_gen(v, attempt < 3 ? NULL : err);
        if (r != -EAGAIN || attempt >= 3) {
            if (r < 0)
                vdb_rollback(v->db);
            return r;
        }
        vdb_rollback(v->db);
        keys_drop(v);
    }
}

static int entry_integrity_error(vault *v, const char *name, terok_error *err)
{
    char q[200];

    return terok_perr(err, -EBADMSG,
                      "vault '%s': entry '%s' failed its integrity check — its ciphertext or "
                      "header was modified, swapped with another entry's, or copied from another "
                      "vault; restore the file from a backup",
                      v->path, quote(name, q));
}

/* --- ops ---------------------------------------------------------------------------------- */

static int cfg_str(const terok_config_section *cfg, const char *key, const char *def,
                   const char **ret, terok_error *err)
{
    int r;

    *ret = def;
    if (!cfg)
        return 0;
    r = HOST->config_get(cfg, key, ret);
    if (r == -ENOENT || (r >= 0 && isempty(*ret))) {
        *ret = def;
        return 0;
    }
    if (r < 0)
        return terok_perr(err, r, "vault: cannot read config key '%s'", key);
    return 0;
}

static int cfg_ms(const terok_config_section *cfg, const char *key, int64_t def, int64_t *ret,
                  terok_error *err)
{
    int r;

    *ret = def;
    if (!cfg)
        return 0;
    r = HOST->config_get_int(cfg, key, ret);
    if (r == -ENOENT) {
        *ret = def;
        return 0;
    }
    if (r < 0 || *ret <= 0)
        return terok_perr(err, r < 0 ? r : -EINVAL, "vault: bad value for config key '%s'", key);
    return 0;
}

static char *path_join(const char *a, const char *b)
{
    char *p = NULL;

    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static void vault_free(vault *v)
{
    if (!v)
        return;
    keys_drop(v);
    vdb_close(v->db);
    ks_config_done(&v->ks);
    free(v->path);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static int vs_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                   terok_error *err)
{
    vault *v = NULL;
    const char *path, *chain, *key_file, *cmd, *level, *creds, *creds_key;
    _cleanup_free_ char *bad = NULL, *dir = NULL;
    int64_t helper_ms, keyring_ms;
    int r;

    if (!ret_state)
        return terok_perr(err, -EINVAL, "vault: open needs ret_state");
    if (vc_init() < 0)
        return terok_perr(err, -EIO, "vault: libsodium failed to initialise");
    if ((r = cfg_str(cfg, "path", NULL, &path, err)) < 0 ||
        (r = cfg_str(cfg, "key-sources", DEFAULT_CHAIN, &chain, err)) < 0 ||
        (r = cfg_str(cfg, "key-file", NULL, &key_file, err)) < 0 ||
        (r = cfg_str(cfg, "passphrase-command", NULL, &cmd, err)) < 0 ||
        (r = cfg_str(cfg, "argon2-level", "moderate", &level, err)) < 0 ||
        (r = cfg_str(cfg, "systemd-creds", "systemd-creds", &creds, err)) < 0 ||
        (r = cfg_str(cfg, "systemd-creds-key", "auto", &creds_key, err)) < 0 ||
        (r = cfg_ms(cfg, "helper-timeout", 30000, &helper_ms, err)) < 0 ||
        (r = cfg_ms(cfg, "keyring-timeout", 8 * 3600 * 1000, &keyring_ms, err)) < 0)
        return r;
    if (path && path[0] != '/')
        return terok_perr(err, -EINVAL, "vault: path '%s' must be absolute", path);
    if (key_file && key_file[0] != '/')
        return terok_perr(err, -EINVAL, "vault: key-file '%s' must be absolute", key_file);
    if (!path) {
        const char *state = HOST->state_dir(self);
        if (isempty(state))
            return terok_perr(err, -EINVAL, "vault: no state directory and no 'path' configured");
        /* the host already hands us our own <state>/vault-sqlite directory */
        dir = strdup(state);
        if (!dir)
            return -ENOMEM;
    }

    v = calloc(1, sizeof *v);
    if (!v)
        return -ENOMEM;
    v->opened_by = -1;
    {
        /* Recursive: list/status callbacks may call back into the same handle. */
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&v->mu, &a);
        pthread_mutexattr_destroy(&a);
    }
    v->path = path ? strdup(path) : path_join(dir, "vault.db");
    if (!v->path)
        goto oom;
    r = ks_parse_chain(chain, v->chain, &v->chain_len, &bad);
    if (r < 0) {
        char q[200];
        r = terok_perr(err, r,
                       "vault: unknown or repeated key source '%s' in key-sources; choose from "
                       "systemd-creds keyring passphrase key-file",
                       bad ? quote(bad, q) : "?");
        goto fail;
    }
    if (vc_argon2_level(level, &v->opslimit, &v->memlimit) < 0) {
        r = terok_perr(err, -EINVAL,
                       "vault: argon2-level '%s' is not one of "
                       "interactive|moderate|sensitive",
                       level);
        goto fail;
    }
    if (!streq(creds_key, "auto") && !streq(creds_key, "host") && !streq(creds_key, "tpm2") &&
        !streq(creds_key, "host+tpm2")) {
        r = terok_perr(err, -EINVAL,
                       "vault: systemd-creds-key '%s' is not one of "
                       "auto|host|tpm2|host+tpm2",
                       creds_key);
        goto fail;
    }
    v->ks.creds_binary = strdup(creds);
    v->ks.creds_with_key = strdup(creds_key);
    if (key_file)
        v->ks.key_file = strdup(key_file);
    else if (dir)
        v->ks.key_file = path_join(dir, "vault.key");
    else if (asprintf(&v->ks.key_file, "%s.key", path) < 0) /* beside a configured database */
        v->ks.key_file = NULL;
    if (!v->ks.creds_binary || !v->ks.creds_with_key || !v->ks.key_file)
        goto oom;
    if (cmd) {
        r = split_command(cmd, &v->ks.passphrase_argv);
        if (r < 0) {
            r = terok_perr(err, r,
                           "vault: passphrase-command cannot be parsed (unbalanced "
                           "quotes?)");
            goto fail;
        }
    }
    v->ks.timeout_ms = (int)MIN(helper_ms, (int64_t)INT32_MAX);
    v->ks.keyring_timeout_s = (keyring_ms + 999) / 1000;

    r = vdb_open(v->path, &v->db, err);
    if (r < 0)
        goto fail;
    r = vdb_meta_get_blob(v->db, "db_id", v->dbid, sizeof v->dbid);
    if (r < 0) {
        r = terok_perr(err, -EBADMSG, "vault '%s': the database id is missing or malformed",
                       v->path);
        goto fail;
    }
    memcpy(v->ks.dbid, v->dbid, sizeof v->dbid);
    keys_provision_quietly(v);
    *ret_state = v;
    return 0;
oom:
    r = terok_perr(err, -ENOMEM, "vault: out of memory");
fail:
    vault_free(v);
    return r;
}

static void vs_close(void *state)
{
    vault_free(state);
}

static int do_put(void *state, const char *name, const terok_secret *value, const char *type,
                  const char *metadata, terok_error *err)
{
    vault *v = state;
    vdb_entry e = {0}, old = {0};
    unsigned char digest[VC_MAC_BYTES];
    const void *data;
    size_t len;
    int64_t counter, now = (int64_t)time(NULL);
    int r;

    if (!v || !value)
        return terok_perr(err, -EINVAL, "vault: put needs a vault and a value");
    if ((r = check_name(v, name, err)) < 0)
        return r;
    if (!type)
        type = "secret";
    if ((r = check_type(type, err)) < 0)
        return r;
    if (metadata && (r = check_metadata(metadata, err)) < 0)
        return r;
    r = HOST->secret_peek(value, &data, &len);
    if (r < 0)
        return terok_perr(err, r, "vault: cannot read the value to store");
    if (len == 0 || len > VALUE_MAX)
        return terok_perr(err, -EINVAL, "vault: the value must be 1 to %u bytes (got %zu)",
                          VALUE_MAX, len);

    r = begin_with_keys(v, true, err);
    if (r < 0)
        return r;
    r = index_verify(v, err);
    if (r < 0)
        goto fail;
    r = vdb_meta_get_int(v->db, "counter", &counter);
    if (r < 0)
        goto dberr;
    r = vdb_entry_get(v->db, name, &old);
    if (r < 0 && r != -ENOENT)
        goto dberr;
    e.name = (char *)name;
    e.type = (char *)type;
    e.metadata = (char *)metadata;
    e.created_at = r >= 0 ? old.created_at : now;
    e.updated_at = now;
    e.version = ++counter;
    e.ct_len = len + VC_TAG_BYTES;
    e.ct = malloc(e.ct_len);
    if (!e.ct) {
        r = -ENOMEM;
        goto dberr;
    }
    {
        vc_entry_header h = {name, type, metadata, e.created_at, e.updated_at, e.version};
        vc_entry_digest(v->dbid, v->key_gen, &h, digest);
        vc_seal_entry(v->entry_key, digest, data, len, e.nonce, e.ct);
    }
    r = vdb_entry_put(v->db, &e);
    if (r < 0)
        goto dberr;
    r = index_update(v, counter, err);
    if (r < 0)
        goto fail;
    r = vdb_commit(v->db, err);
    if (r < 0)
        goto fail;
    free(e.ct);
    vdb_entry_done(&old);
    return 0;
dberr:
    r = terok_perr(err, r, "vault '%s': cannot store entry: %s", v->path,
                   r == -ENOMEM ? "out of memory" : sqlite3_errmsg(v->db));
fail:
    vdb_rollback(v->db);
    free(e.ct);
    vdb_entry_done(&old);
    return r;
}

static int do_get(void *state, const char *name, terok_secret **ret_secret, terok_error *err)
{
    vault *v = state;
    vdb_entry e = {0};
    unsigned char digest[VC_MAC_BYTES], *plain = NULL;
    char q[200];
    int r;

    if (!v || !ret_secret)
        return terok_perr(err, -EINVAL, "vault: get needs a vault and ret_secret");
    if ((r = check_name(v, name, err)) < 0)
        return r;
    r = begin_with_keys(v, false, err);
    if (r < 0)
        return r;
    r = index_verify(v, err);
    if (r < 0)
        goto out;
    r = vdb_entry_get(v->db, name, &e);
    if (r == -ENOENT) {
        r = terok_perr(err, -ENOENT, "vault: no entry '%s'", quote(name, q));
        goto out;
    }
    if (r < 0) {
        r = r == -EBADMSG ? entry_integrity_error(v, name, err)
                          : terok_perr(err, r, "vault '%s': cannot read entry: %s", v->path,
                                       sqlite3_errmsg(v->db));
        goto out;
    }
    {
        vc_entry_header h = {e.name, e.type, e.metadata, e.created_at, e.updated_at, e.version};
        vc_entry_digest(v->dbid, v->key_gen, &h, digest);
    }
    plain = sodium_malloc(e.ct_len - VC_TAG_BYTES + 1);
    if (!plain) {
        r = terok_perr(err, -ENOMEM, "vault: out of memory");
        goto out;
    }
    if (vc_open_entry(v->entry_key, digest, e.nonce, e.ct, e.ct_len, plain) < 0) {
        r = entry_integrity_error(v, name, err);
        goto out;
    }
    r = HOST->secret_new(plain, e.ct_len - VC_TAG_BYTES, ret_secret);
    if (r < 0)
        r = terok_perr(err, r, "vault: cannot allocate the secret");
out:
    vdb_rollback(v->db);
    if (plain)
        sodium_free(plain); /* wipes */
    vdb_entry_done(&e);
    return r;
}

static int do_remove(void *state, const char *name, terok_error *err)
{
    vault *v = state;
    int64_t counter;
    char q[200];
    int r;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: remove needs a vault");
    if ((r = check_name(v, name, err)) < 0)
        return r;
    r = begin_with_keys(v, true, err);
    if (r < 0)
        return r;
    r = index_verify(v, err);
    if (r < 0)
        goto fail;
    r = vdb_meta_get_int(v->db, "counter", &counter);
    if (r >= 0)
        r = vdb_entry_delete(v->db, name);
    if (r == -ENOENT) {
        r = terok_perr(err, -ENOENT, "vault: no entry '%s'", quote(name, q));
        goto fail;
    }
    if (r < 0) {
        r = terok_perr(err, r, "vault '%s': cannot remove entry: %s", v->path,
                       sqlite3_errmsg(v->db));
        goto fail;
    }
    r = index_update(v, counter + 1, err);
    if (r >= 0)
        r = vdb_commit(v->db, err);
    if (r >= 0)
        return 0;
fail:
    vdb_rollback(v->db);
    return r;
}

typedef struct list_rows {
    vdb_entry *v;
    size_t n;
} list_rows;

static int list_collect(void *ud, const vdb_entry *e)
{
    list_rows *l = ud;
    vdb_entry *nv = realloc(l->v, (l->n + 1) * sizeof *nv);

    if (!nv)
        return -ENOMEM;
    l->v = nv;
    l->v[l->n] = (vdb_entry){.created_at = e->created_at, .updated_at = e->updated_at};
    l->v[l->n].name = strdup(e->name);
    l->v[l->n].type = strdup(e->type);
    l->v[l->n].metadata = e->metadata ? strdup(e->metadata) : NULL;
    l->n++;
    if (!l->v[l->n - 1].name || !l->v[l->n - 1].type || (e->metadata && !l->v[l->n - 1].metadata))
        return -ENOMEM;
    return 0;
}

static int do_list(void *state, terok_vault_entry_cb cb, void *userdata, terok_error *err)
{
    vault *v = state;
    list_rows l = {0};
    int r;

    if (!v || !cb)
        return terok_perr(err, -EINVAL, "vault: list needs a vault and a callback");
    r = begin_with_keys(v, false, err);
    if (r < 0)
        return r;
    r = index_verify(v, err); /* a listing is authenticated too: names, types, metadata */
    if (r >= 0) {
        r = vdb_entry_foreach(v->db, false, list_collect, &l);
        if (r < 0)
            r = terok_perr(err, r, "vault '%s': cannot list entries: %s", v->path, strerror(-r));
    }
    vdb_rollback(v->db);
    /* Callbacks run outside the transaction: they may call back into the vault. */
    for (size_t i = 0; r >= 0 && i < l.n; i++) {
        terok_vault_entry ent = {
            .struct_size = sizeof ent,
            .name = l.v[i].name,
            .type = l.v[i].type,
            .metadata = l.v[i].metadata,
            .created_at = l.v[i].created_at,
            .updated_at = l.v[i].updated_at,
        };
        int q = cb(userdata, &ent);
        if (q < 0)
            r = q;
    }
    for (size_t i = 0; i < l.n; i++)
        vdb_entry_done(&l.v[i]);
    free(l.v);
    return r;
}

/* Status never unseals, never runs a helper: it reports what is in memory, else which source
 * would open the vault, judged from slots and cheap presence checks. */
static int do_status(void *state, terok_vault_status_cb cb, void *userdata, terok_error *err)
{
    vault *v = state;
    bool has[KS_MAX] = {false}, present[KS_MAX] = {false};
    char detail[1024], chain[512] = "";
    size_t cl = 0;
    int src = -1;
    int64_t entries;
    terok_vault_status st = {.struct_size = sizeof st};

    if (!v || !cb)
        return terok_perr(err, -EINVAL, "vault: status needs a vault and a callback");
    if (keys_probe(v, has) < 0)
        return terok_perr(err, -EIO, "vault '%s': cannot read key slots: %s", v->path,
                          sqlite3_errmsg(v->db));
    entries = vdb_entry_count(v->db);
    for (size_t i = 0; i < v->chain_len; i++) {
        ks_kind k = v->chain[i];
        const char *what;

        switch (k) {
        case KS_SYSTEMD_CREDS:
            present[k] = has[k];
            what = has[k] ? "sealed slot" : "no slot";
            break;
        case KS_KEYRING:
            present[k] = has[k] && ks_keyring_present(&v->ks);
            what = present[k] ? "session key cached" : "no session key";
            break;
        case KS_PASSPHRASE:
            present[k] = has[k] && v->ks.passphrase_argv;
            what = !has[k]      ? "no slot"
                   : present[k] ? "slot, passphrase-command"
                                : "slot, needs "
                                  "unlock";
            break;
        case KS_KEY_FILE:
            present[k] = has[k] && ks_key_file_present(&v->ks);
            what = !has[k] ? "no slot" : present[k] ? "slot, file present" : "slot, file missing";
            break;
        default:
            what = "?";
        }
        cl += (size_t)snprintf(chain + cl, sizeof chain - MIN(cl, sizeof chain), "%s%s (%s)",
                               cl ? ", " : "", ks_name(k), what);
        cl = MIN(cl, sizeof chain - 1);
        if (src < 0 && present[k])
            src = (int)k;
    }
    if (v->dek)
        src = v->opened_by;
    if (src < 0) {
        bool any = false;
        for (int k = 0; k < KS_MAX; k++)
            any = any || has[k];
        st.flags |= TEROK_VAULT_STATUS_LOCKED;
        st.key_source = "none";
        snprintf(detail, sizeof detail,
                 any ? "Locked: no source opens it without you — run 'terok-sandbox vault unlock'. "
                       "Chain: %s."
                     : "No key yet: set a passphrase with 'terok-sandbox vault unlock' or add "
                       "key-file to key-sources. Chain: %s.",
                 chain);
    } else {
        ks_kind k = (ks_kind)src;
        st.key_source = ks_name(k);
        if (ks_survives_reboot(k))
            st.flags |= TEROK_VAULT_STATUS_SURVIVES_REBOOT;
        if (ks_is_weak(k))
            st.flags |= TEROK_VAULT_STATUS_WEAK_KEY_SOURCE;
        snprintf(detail, sizeof detail, "%s %s%s. Chain: %s.",
                 v->dek ? "Unlocked through" : "Opens through", ks_name(k),
                 k == KS_KEY_FILE  ? " — weak: the key file sits on the same disk as the data"
                 : k == KS_KEYRING ? " — a session cache that ends at its timeout or reboot"
                 : k == KS_SYSTEMD_CREDS ? " (sealed by the host key or TPM2)"
                                         : "",
                 chain);
    }
    st.detail = detail;
    st.location = v->path;
    st.entries = entries < 0 ? 0 : entries;
    return cb(userdata, &st);
}

static int do_unlock(void *state, const terok_secret *passphrase, terok_error *err)
{
    if (!state)
        return terok_perr(err, -EINVAL, "vault: unlock needs a vault");
    return keys_unlock(state, passphrase, err);
}

static int do_lock(void *state, terok_error *err)
{
    if (!state)
        return terok_perr(err, -EINVAL, "vault: lock needs a vault");
    return keys_lock(state, err);
}

static int do_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    const terok_vault_ctl_rekey *rk = arg;

    if (!state)
        return terok_perr(err, -EINVAL, "vault: ctl needs a vault");
    if (op != TEROK_VAULT_CTL_CHANGE_PASSPHRASE && op != TEROK_VAULT_CTL_REKEY)
        return terok_perr(err, -EOPNOTSUPP, "vault: unknown ctl op %u", op);
    if (!rk || rk->struct_size < sizeof *rk)
        return terok_perr(err, -EINVAL, "vault: ctl op %u needs a terok_vault_ctl_rekey", op);
    if (!terok_struct_tail_is_zero(rk, rk->struct_size, sizeof *rk))
        return terok_perr(err, -E2BIG, "vault: ctl argument has fields this plugin does not know");
    if (op == TEROK_VAULT_CTL_CHANGE_PASSPHRASE)
        return keys_change_passphrase(state, rk, err);
    return keys_rekey(state, rk, err);
}

/* One handle may be shared by a daemon's threads: each op holds the handle's mutex, so one
 * op's SQLite transaction never interleaves with another's on the same connection. */
#define LOCKED(v, call)                                                                            \
    do {                                                                                           \
        int r_;                                                                                    \
        pthread_mutex_lock(&(v)->mu);                                                              \
        r_ = (call);                                                                               \
        pthread_mutex_unlock(&(v)->mu);                                                            \
        return r_;                                                                                 \
    } while (0)

static int vs_put(void *state, const char *name, const terok_secret *value, const char *type,
                  const char *metadata, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: put needs a vault and a value");
    LOCKED(v, do_put(v, name, value, type, metadata, err));
}

static int vs_get(void *state, const char *name, terok_secret **ret_secret, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: get needs a vault and ret_secret");
    LOCKED(v, do_get(v, name, ret_secret, err));
}

static int vs_remove(void *state, const char *name, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: remove needs a vault");
    LOCKED(v, do_remove(v, name, err));
}

static int vs_list(void *state, terok_vault_entry_cb cb, void *userdata, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: list needs a vault and a callback");
    LOCKED(v, do_list(v, cb, userdata, err));
}

static int vs_status(void *state, terok_vault_status_cb cb, void *userdata, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: status needs a vault and a callback");
    LOCKED(v, do_status(v, cb, userdata, err));
}

static int vs_unlock(void *state, const terok_secret *passphrase, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: unlock needs a vault");
    LOCKED(v, do_unlock(v, passphrase, err));
}

static int vs_lock(void *state, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: lock needs a vault");
    LOCKED(v, do_lock(v, err));
}

static int vs_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    vault *v = state;

    if (!v)
        return terok_perr(err, -EINVAL, "vault: ctl needs a vault");
    LOCKED(v, do_ctl(v, op, arg, err));
}

static const terok_vault_ops ops = {
    .struct_size = sizeof(terok_vault_ops),
    .caps = TEROK_VAULT_CAP_PERSISTENT | TEROK_VAULT_CAP_ENCRYPTED_AT_REST | TEROK_VAULT_CAP_WRITE |
            TEROK_VAULT_CAP_NEEDS_UNLOCK,
    .open = vs_open,
    .close = vs_close,
    .put = vs_put,
    .get = vs_get,
    .remove = vs_remove,
    .list = vs_list,
    .status = vs_status,
    .unlock = vs_unlock,
    .lock = vs_lock,
    .ctl = vs_ctl,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_VAULT, "sqlite", "0.1.0", &ops)
