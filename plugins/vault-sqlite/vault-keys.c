/* SPDX-License-Identifier: Apache-2.0 */
/* vault-keys.c: the data key's life — provisioning a fresh vault, unlocking through the key-source
 * chain (first working source wins, every failure recorded for the operator), the kernel keyring
 * session cache, lock, and the index MAC. Passphrase change and rekey are in vault-rekey.c.
 * Never logs key material. */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "vault-db.h"
#include "vault-keys.h"

#define HOST terok_plugin__host

#ifdef TEROK_VAULT_FAULT_INJECTION
void fault_point(const char *point, long n)
{
    const char *f = getenv("TEROK_VAULT_FAULT");
    size_t len = strlen(point);

    if (!f || strncmp(f, point, len) != 0)
        return;
    if (f[len] == '\0' || (f[len] == ':' && strtol(f + len + 1, NULL, 10) == n))
        raise(SIGKILL);
}
#endif

bool vault_chain_has(const vault *v, ks_kind k)
{
    for (size_t i = 0; i < v->chain_len; i++)
        if (v->chain[i] == k)
            return true;
    return false;
}

void keys_trail_add(trail *t, ks_kind k, const char *why)
{
    int n = snprintf(t->buf + t->len, sizeof t->buf - t->len, "%s%s: %s", t->len ? "; " : "",
                     ks_name(k), why ? why : "failed (out of memory)");
    if (n > 0)
        t->len = MIN(t->len + (size_t)n, sizeof t->buf - 1);
}

void keys_drop(vault *v)
{
    v->dek = vc_key_free(v->dek);
    v->entry_key = vc_key_free(v->entry_key);
    v->index_key = vc_key_free(v->index_key);
    v->key_gen = 0;
    v->opened_by = -1;
}

/* Takes ownership of dek. */
int keys_set(vault *v, unsigned char *dek, int64_t key_gen, int by)
{
    unsigned char *ek = vc_key_new(), *ik = vc_key_new();

    if (!ek || !ik || vc_derive_subkeys(dek, ek, ik) < 0) {
        vc_key_free(ek);
        vc_key_free(ik);
        vc_key_free(dek);
        return -ENOMEM;
    }
    keys_drop(v);
    v->dek = dek;
    v->entry_key = ek;
    v->index_key = ik;
    v->key_gen = key_gen;
    v->opened_by = by;
    return 0;
}

/* --- passphrase slots --------------------------------------------------------------------- */

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* KEK from a passphrase (the argument, or passphrase-command) and a slot's salt and limits. */
static int passphrase_kek(vault *v, const terok_secret *pass, const unsigned char *params,
                          size_t params_len, unsigned char *kek, char **why)
{
    unsigned char *cmd_pass = NULL;
    const void *p;
    size_t n;
    int r;

    if (params_len != PW_PARAMS_LEN) {
        *why = strdup("the passphrase slot is malformed");
        return -EBADMSG;
    }
    if (pass) {
        r = HOST->secret_peek(pass, &p, &n);
        if (r < 0)
            return r;
    } else {
        r = ks_passphrase_command(&v->ks, &cmd_pass, &n, why);
        if (r < 0)
            return r;
        p = cmd_pass;
    }
    if (n == 0) {
        *why = strdup("the passphrase is empty");
        r = -EINVAL;
    } else {
        r = vc_pwhash(p, n, params, get_u64(params + VC_SALT_BYTES),
                      (size_t)get_u64(params + VC_SALT_BYTES + 8), kek);
        if (r == -EINVAL)
            *why = strdup("the passphrase slot has out-of-range Argon2id limits (altered?)");
        else if (r < 0)
            *why = strdup("not enough memory for Argon2id");
    }
    if (cmd_pass)
        sodium_free(cmd_pass);
    return r;
}

/* A new passphrase slot's params (fresh salt, configured limits) and KEK. */
int keys_passphrase_new(vault *v, const terok_secret *pass, unsigned char *params,
                        unsigned char *kek, char **why)
{
    randombytes_buf(params, VC_SALT_BYTES);
    put_u64(params + VC_SALT_BYTES, v->opslimit);
    put_u64(params + VC_SALT_BYTES + 8, v->memlimit);
    return passphrase_kek(v, pass, params, PW_PARAMS_LEN, kek, why);
}

/* --- slots -------------------------------------------------------------------------------- */

const vdb_slot *keys_slot_find(const vdb_slot *s, size_t n, ks_kind k)
{
    for (size_t i = 0; i < n; i++)
        if (streq(s[i].source, ks_name(k)))
            return &s[i];
    return NULL;
}

/* Fill a new slot: copies params, wraps dek under kek for (dbid, key_gen, source). */
int keys_slot_make(vault *v, ks_kind k, const unsigned char *kek, const void *params,
                   size_t params_len, const unsigned char *dek, int64_t key_gen, vdb_slot *s)
{
    *s = (vdb_slot){0};
    snprintf(s->source, sizeof s->source, "%s", ks_name(k));
    s->params = malloc(params_len + 1);
    if (!s->params)
        return -ENOMEM;
    if (params_len)
        memcpy(s->params, params, params_len);
    s->params_len = params_len;
    vc_wrap_dek(kek, dek, v->dbid, key_gen, s->source, s->params, s->params_len, s->nonce,
                s->wrapped);
    return 0;
}

/* The KEK for an existing slot of source k. */
static int slot_kek(vault *v, ks_kind k, const vdb_slot *s, const terok_secret *pass,
                    unsigned char *kek, char **why)
{
    switch (k) {
    case KS_SYSTEMD_CREDS:
        return ks_creds_unseal(&v->ks, s->params, s->params_len, kek, why);
    case KS_KEYRING:
        return ks_keyring_read(&v->ks, kek, why);
    case KS_PASSPHRASE:
        return passphrase_kek(v, pass, s->params, s->params_len, kek, why);
    case KS_KEY_FILE:
        return ks_key_file_read(&v->ks, kek, why);
    default:
        return -EINVAL;
    }
}

int keys_load_slots(vault *v, int64_t *ret_gen, vdb_slot **ret, size_t *ret_n, terok_error *err)
{
    int r;

    r = vdb_begin_read(v->db, err);
    if (r < 0)
        return r;
    r = vdb_meta_get_int(v->db, "key_gen", ret_gen);
    if (r >= 0)
        r = vdb_slots_load(v->db, ret, ret_n);
    vdb_rollback(v->db);
    if (r < 0)
        return terok_perr(err, r, "vault '%s': cannot read key slots: %s", v->path, strerror(-r));
    return 0;
}

/* --- the index MAC ------------------------------------------------------------------------ */

typedef struct ix_ctx {
    vc_index ix;
    const unsigned char *dbid;
    int64_t key_gen;
} ix_ctx;

static int ix_cb(void *ud, const vdb_entry *e)
{
    ix_ctx *c = ud;
    unsigned char d[VC_MAC_BYTES];
    vc_entry_header h = {e->name, e->type, e->metadata, e->created_at, e->updated_at, e->version};

    vc_entry_digest(c->dbid, c->key_gen, &h, d);
    vc_index_add(&c->ix, d);
    return 0;
}

static int index_compute(sqlite3 *db, const unsigned char *dbid, const unsigned char *index_key,
                         int64_t key_gen, int64_t counter, unsigned char mac[VC_MAC_BYTES])
{
    ix_ctx c = {.dbid = dbid, .key_gen = key_gen};
    int r;

    vc_index_begin(&c.ix, index_key, dbid, key_gen, counter);
    r = vdb_entry_foreach(db, false, ix_cb, &c);
    vc_index_end(&c.ix, mac);
    return r;
}

int keys_index_store(sqlite3 *db, const unsigned char *dbid, const unsigned char *index_key,
                     int64_t key_gen, int64_t counter)
{
    unsigned char mac[VC_MAC_BYTES];
    int r;

    r = index_compute(db, dbid, index_key, key_gen, counter, mac);
    if (r >= 0)
        r = vdb_meta_set_int(db, "counter", counter);
    if (r >= 0)
        r = vdb_meta_set_blob(db, "index_mac", mac, sizeof mac);
    return r;
}

int index_update(vault *v, int64_t counter, terok_error *err)
{
    int r = keys_index_store(v->db, v->dbid, v->index_key, v->key_gen, counter);

    if (r < 0)
        return terok_perr(err, r, "vault '%s': cannot update the entry index: %s", v->path,
                          sqlite3_errmsg(v->db));
    return 0;
}

int index_verify(vault *v, terok_error *err)
{
    unsigned char want[VC_MAC_BYTES], got[VC_MAC_BYTES];
    int64_t counter;
    int r;

    r = vdb_meta_get_int(v->db, "counter", &counter);
    if (r >= 0)
        r = vdb_meta_get_blob(v->db, "index_mac", want, sizeof want);
    if (r >= 0)
        r = index_compute(v->db, v->dbid, v->index_key, v->key_gen, counter, got);
    if (r == -ENOMEM)
        return terok_perr(err, r, "vault '%s': out of memory", v->path);
    if (r < 0 || sodium_memcmp(want, got, sizeof want) != 0)
        return terok_perr(err, -EBADMSG,
                          "vault '%s': the entry index failed its integrity check — entries were "
                          "added, removed, altered or rolled back outside terok-sandbox; restore "
                          "the file from a backup",
                          v->path);
    return 0;
}

int keys_check_gen(vault *v, terok_error *err)
{
    int64_t gen;
    int r = vdb_meta_get_int(v->db, "key_gen", &gen);

    if (r < 0)
        return terok_perr(err, r, "vault '%s': cannot read the key generation", v->path);
    if (!v->dek || gen != v->key_gen)
        return terok_perr(err, -EAGAIN, "vault '%s' was rekeyed by another process; retry",
                          v->path);
    return 0;
}

/* --- provisioning ------------------------------------------------------------------------- */

/* A new slot for source k during provisioning or rekey. 0 with *made set when a slot was made,
 * 0 without when the source has nothing to offer now (reason in *why), < 0 on a hard error. */
int keys_slot_provision(vault *v, ks_kind k, const terok_secret *pass, const vdb_slot *old,
                        bool have_other, const unsigned char *dek, int64_t gen, vdb_slot *out,
                        bool *made, char **why)
{
    _cleanup_key_ unsigned char *kek = vc_key_new();
    _cleanup_free_ unsigned char *blob = NULL;
    unsigned char params[PW_PARAMS_LEN];
    size_t blob_len = 0;
    int r;

    *made = false;
    if (!kek)
        return -ENOMEM;
    switch (k) {
    case KS_SYSTEMD_CREDS:
        randombytes_buf(kek, VC_KEY_BYTES);
        r = ks_creds_seal(&v->ks, kek, &blob, &blob_len, why);
        if (r < 0)
            return old ? r : 0; /* an existing slot we cannot renew is a hard error */
        r = keys_slot_make(v, k, kek, blob, blob_len, dek, gen, out);
        break;
    case KS_KEYRING:
        /* Only a live session key carries over; otherwise unlock fills it again later. */
        r = ks_keyring_read(&v->ks, kek, why);
        if (r < 0)
            return 0;
        r = keys_slot_make(v, k, kek, NULL, 0, dek, gen, out);
        break;
    case KS_PASSPHRASE:
        if (!pass && !old && !v->ks.passphrase_argv) {
            *why = strdup("no passphrase given and no passphrase-command configured");
            return 0;
        }
        if (old && !pass) {
            /* Keep the current passphrase: it must open the old slot (proves it is current). */
            _cleanup_key_ unsigned char *check = vc_key_new();
            if (!check)
                return -ENOMEM;
            r = passphrase_kek(v, NULL, old->params, old->params_len, kek, why);
            if (r < 0)
                return r;
            if (vc_unwrap_dek(kek, v->dbid, v->key_gen, old->source, old->params, old->params_len,
                              old->nonce, old->wrapped, check) < 0 ||
                sodium_memcmp(check, v->dek, VC_KEY_BYTES) != 0) {
                *why = strdup("passphrase-command's passphrase does not open the current slot");
                return -EACCES;
            }
            memcpy(params, old->params, PW_PARAMS_LEN);
        } else {
            r = keys_passphrase_new(v, pass, params, kek, why);
            if (r < 0)
                return pass ? r : 0;
        }
        r = keys_slot_make(v, k, kek, params, PW_PARAMS_LEN, dek, gen, out);
        break;
    case KS_KEY_FILE:
        /* The unattended default: only when it already held a slot or nothing else can. */
        if (!old && have_other) {
            *why = strdup("not needed (a stronger source holds a slot)");
            return 0;
        }
        if (ks_key_file_present(&v->ks) || old)
            r = ks_key_file_read(&v->ks, kek, why);
        else {
            r = ks_key_file_create(&v->ks, kek, why);
            if (r == -EEXIST) /* another process created it first: use theirs */
                r = ks_key_file_read(&v->ks, kek, why);
            else if (r >= 0)
                terok_plog(TEROK_LOG_NOTICE,
                           "created key file '%s' (weak: it sits beside the data; set a "
                           "passphrase or use systemd-creds)",
                           v->ks.key_file);
        }
        if (r < 0)
            return r;
        r = keys_slot_make(v, k, kek, NULL, 0, dek, gen, out);
        break;
    default:
        return -EINVAL;
    }
    if (r >= 0)
        *made = true;
    return r;
}

/* 1: provisioned and unlocked; 0: someone else provisioned first; < 0: error. */
static int provision(vault *v, const terok_secret *pass, terok_error *err)
{
    _cleanup_key_ unsigned char *dek = vc_key_random();
    vdb_slot slots[KS_MAX];
    size_t n = 0;
    trail t = {.len = 0};
    int64_t existing, counter;
    int r;

    if (!dek)
        return -ENOMEM;
    for (size_t i = 0; i < v->chain_len; i++) {
        ks_kind k = v->chain[i];
        _cleanup_(free_charp) char *why = NULL;
        bool made;

        r = keys_slot_provision(v, k, k == KS_PASSPHRASE ? pass : NULL, NULL, n > 0, dek, 1,
                                &slots[n], &made, &why);
        if (r < 0) {
            keys_trail_add(&t, k, why);
            for (size_t j = 0; j < n; j++)
                free(slots[j].params);
            return terok_perr(err, r == -ENOMEM ? r : -EACCES,
                              "vault '%s': cannot create its key: %s", v->path, t.buf);
        }
        if (made)
            n++;
        else if (k != KS_KEYRING)
            keys_trail_add(&t, k, why);
    }
    if (n == 0)
        return terok_perr(err, -EACCES,
                          "vault '%s' has no key yet and no configured source can create one "
                          "(%s) — set a passphrase with 'terok-sandbox vault unlock' or add "
                          "key-file to key-sources",
                          v->path, t.len ? t.buf : "key-sources is empty");

    r = vdb_begin_write(v->db, err);
    if (r < 0)
        goto out;
    r = vdb_meta_get_int(v->db, "key_gen", &existing);
    if (r >= 0 && existing != 0) { /* lost the race: keep theirs */
        vdb_rollback(v->db);
        r = 0;
        goto out;
    }
    if (r >= 0 && vdb_entry_count(v->db) != 0)
        r = -EBADMSG; /* entries without a key: not ours to overwrite */
    if (r >= 0)
        r = vdb_meta_get_int(v->db, "counter", &counter);
    for (size_t i = 0; r >= 0 && i < n; i++)
        r = vdb_slot_put(v->db, &slots[i]);
    if (r >= 0)
        r = vdb_meta_set_int(v->db, "key_gen", 1);
    if (r >= 0) {
        unsigned char ek[VC_KEY_BYTES], ik[VC_KEY_BYTES];
        r = vc_derive_subkeys(dek, ek, ik);
        if (r >= 0)
            r = keys_index_store(v->db, v->dbid, ik, 1, counter);
        sodium_memzero(ek, sizeof ek);
        sodium_memzero(ik, sizeof ik);
    }
    if (r < 0) {
        vdb_rollback(v->db);
        r = terok_perr(err, r, "vault '%s': cannot store its key slots: %s", v->path,
                       r == -EBADMSG ? "it holds entries but no key" : strerror(-r));
        goto out;
    }
    r = vdb_commit(v->db, err);
    if (r < 0) {
        vdb_rollback(v->db);
        goto out;
    }
    r = keys_set(v, take_key(&dek), 1, ks_from_name(slots[0].source));
    if (r >= 0) {
        terok_plog(TEROK_LOG_INFO, "vault '%s': created its key, %zu key slot(s), first %s%s%s",
                   v->path, n, slots[0].source, t.len ? "; not used: " : "", t.buf);
        r = 1;
    }
out:
    for (size_t j = 0; j < n; j++)
        free(slots[j].params);
    return r;
}

void keys_provision_quietly(vault *v)
{
    terok_error e = TEROK_ERROR_INIT;
    vdb_slot *slots = NULL;
    size_t n = 0;
    int64_t gen;

    if (keys_load_slots(v, &gen, &slots, &n, NULL) < 0)
        return;
    vdb_slots_free(slots, n);
    if (gen != 0)
        return;
    if (provision(v, NULL, &e) < 0)
        terok_plog(TEROK_LOG_WARNING, "%s", e.message ? e.message : "cannot create the key");
    free(e.message);
}

/* --- unlock ------------------------------------------------------------------------------- */

int keys_try_unlock(vault *v, const terok_secret *pass, bool pass_only, terok_error *err)
{
    vdb_slot *slots = NULL;
    size_t n = 0;
    int64_t gen;
    trail t = {.len = 0};
    int r;

    r = keys_load_slots(v, &gen, &slots, &n, err);
    if (r < 0)
        return r;
    if (gen == 0) {
        vdb_slots_free(slots, n);
        r = provision(v, pass, err);
        if (r != 0)
            return r < 0 ? r : 0;
        return keys_try_unlock(v, pass, pass_only, err); /* provisioned by someone else */
    }
    for (size_t i = 0; i < v->chain_len; i++) {
        ks_kind k = v->chain[i];
        const vdb_slot *s = keys_slot_find(slots, n, k);
        _cleanup_(free_charp) char *why = NULL;
        _cleanup_key_ unsigned char *kek = vc_key_new(), *dek = vc_key_new();

        if (pass_only && k != KS_PASSPHRASE)
            continue;
        if (!kek || !dek) {
            r = -ENOMEM;
            goto out;
        }
        if (!s) {
            keys_trail_add(&t, k,
                           k == KS_KEYRING
                               ? "no session key cached (run 'terok-sandbox vault unlock')"
                               : "no key slot for this source");
            continue;
        }
        r = slot_kek(v, k, s, pass, kek, &why);
        if (r == -ENOMEM)
            goto out;
        if (r < 0) {
            keys_trail_add(&t, k, why);
            continue;
        }
        r = vc_unwrap_dek(kek, v->dbid, gen, s->source, s->params, s->params_len, s->nonce,
                          s->wrapped, dek);
        if (r < 0) {
            if (k == KS_PASSPHRASE && pass) {
                r = terok_perr(err, -EACCES, "vault '%s': wrong passphrase", v->path);
                goto out;
            }
            keys_trail_add(
                &t, k,
                k == KS_PASSPHRASE
                    ? "wrong passphrase (from passphrase-command)"
                    : "its key does not open this vault (wrong key, or the slot was altered)");
            continue;
        }
        r = keys_set(v, take_key(&dek), gen, (int)k);
        goto out;
    }
    if (pass_only && !keys_slot_find(slots, n, KS_PASSPHRASE))
        r = terok_perr(err, -EACCES,
                       "vault '%s' has no passphrase slot — set one with change-passphrase",
                       v->path);
    else
        r = terok_perr(err, -EACCES,
                       "vault '%s' is locked: no key source could open it — tried %s — run "
                       "'terok-sandbox vault unlock' or fix key-sources",
                       v->path, t.len ? t.buf : "nothing (key-sources is empty)");
out:
    vdb_slots_free(slots, n);
    return r;
}

int keys_ensure(vault *v, terok_error *err)
{
    int64_t gen;
    int r;

    r = vdb_meta_get_int(v->db, "key_gen", &gen);
    if (r < 0)
        return terok_perr(err, r, "vault '%s': cannot read the key generation", v->path);
    if (v->dek && gen == v->key_gen)
        return 0;
    keys_drop(v);
    return keys_try_unlock(v, NULL, false, err);
}

/* After an unlock through another source: a fresh (or the still-live) session key in the user
 * keyring with the configured timeout, and a keyring slot wrapping the DEK under it. A failure
 * here does not undo the unlock; it is logged. */
static void keyring_cache(vault *v)
{
    _cleanup_key_ unsigned char *kek = vc_key_new();
    _cleanup_(free_charp) char *why = NULL;
    vdb_slot s = {.params = NULL};
    int r;

    if (!kek || !vault_chain_has(v, KS_KEYRING) || v->opened_by == KS_KEYRING)
        return;
    if (ks_keyring_read(&v->ks, kek, &why) < 0) {
        free_charp(&why);
        randombytes_buf(kek, VC_KEY_BYTES);
    }
    r = ks_keyring_store(&v->ks, kek, &why);
    if (r < 0) {
        terok_plog(TEROK_LOG_WARNING, "vault '%s': cannot cache the key in the kernel keyring: %s",
                   v->path, why ? why : strerror(-r));
        return;
    }
    r = keys_slot_make(v, KS_KEYRING, kek, NULL, 0, v->dek, v->key_gen, &s);
    if (r >= 0)
        r = vdb_begin_write(v->db, NULL);
    if (r >= 0) {
        r = keys_check_gen(v, NULL);
        if (r >= 0)
            r = vdb_slot_put(v->db, &s);
        if (r >= 0)
            r = vdb_commit(v->db, NULL);
        if (r < 0)
            vdb_rollback(v->db);
    }
    free(s.params);
    if (r < 0) {
        ks_keyring_forget(&v->ks);
        terok_plog(TEROK_LOG_WARNING, "vault '%s': cannot record the keyring slot: %s", v->path,
                   strerror(-r));
    }
}

int keys_unlock(vault *v, const terok_secret *pass, terok_error *err)
{
    int r;

    if (pass && !vault_chain_has(v, KS_PASSPHRASE))
        return terok_perr(err, -EINVAL,
                          "vault '%s': a passphrase was given but 'passphrase' is not in "
                          "key-sources",
                          v->path);
    keys_drop(v);
    r = keys_try_unlock(v, pass, pass != NULL, err);
    if (r < 0)
        return r;
    keyring_cache(v);
    return 0;
}

int keys_lock(vault *v, terok_error *err)
{
    int r;

    keys_drop(v);
    r = ks_keyring_forget(&v->ks);
    if (r < 0)
        return terok_perr(err, r,
                          "vault '%s': cannot remove the session key from the kernel "
                          "keyring: %s",
                          v->path, strerror(-r));
    /* The slot is useless without the kernel key; remove it so status is truthful. */
    if (vdb_begin_write(v->db, NULL) >= 0) {
        if (vdb_slot_delete(v->db, ks_name(KS_KEYRING)) < 0 || vdb_commit(v->db, NULL) < 0)
            vdb_rollback(v->db);
    }
    return 0;
}

int keys_probe(vault *v, bool has[KS_MAX])
{
    vdb_slot *slots = NULL;
    size_t n = 0;
    int64_t gen;
    int r;

    r = keys_load_slots(v, &gen, &slots, &n, NULL);
    if (r < 0)
        return r;
    for (int k = 0; k < KS_MAX; k++)
        has[k] = keys_slot_find(slots, n, (ks_kind)k) != NULL;
    vdb_slots_free(slots, n);
    return 0;
}
