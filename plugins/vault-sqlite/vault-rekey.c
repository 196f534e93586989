/* SPDX-License-Identifier: Apache-2.0 */
/* vault-rekey.c: passphrase change and rekey. Slow work (helpers, Argon2id) runs first; the
 * database changes in one SQLite transaction, so a crash at any point leaves the old or the new
 * key working, never neither. Never logs key material. */
#include <stdio.h>

#include "vault-db.h"
#include "vault-keys.h"

static int have_dek(vault *v, const terok_secret *old, terok_error *err)
{
    if (old) {
        keys_drop(v);
        return keys_try_unlock(v, old, true, err);
    }
    return keys_ensure(v, err);
}

int keys_change_passphrase(vault *v, const terok_vault_ctl_rekey *arg, terok_error *err)
{
    _cleanup_key_ unsigned char *kek = vc_key_new();
    _cleanup_(free_charp) char *why = NULL;
    unsigned char params[PW_PARAMS_LEN];
    vdb_slot s = {.params = NULL};
    int r;

    if (!arg->new_passphrase)
        return terok_perr(err, -EINVAL, "vault: change-passphrase needs the new passphrase");
    if (!vault_chain_has(v, KS_PASSPHRASE))
        return terok_perr(err, -EINVAL,
                          "vault '%s': 'passphrase' is not in key-sources; add it first", v->path);
    if (!kek)
        return -ENOMEM;
    r = have_dek(v, arg->old_passphrase, err);
    if (r < 0)
        return r;
    r = keys_passphrase_new(v, arg->new_passphrase, params, kek, &why);
    if (r < 0)
        return terok_perr(err, r, "vault '%s': new passphrase: %s", v->path,
                          why ? why : strerror(-r));
    r = keys_slot_make(v, KS_PASSPHRASE, kek, params, PW_PARAMS_LEN, v->dek, v->key_gen, &s);
    if (r < 0)
        return r;
    r = vdb_begin_write(v->db, err);
    if (r >= 0) {
        r = keys_check_gen(v, err);
        if (r >= 0) {
            r = vdb_slot_put(v->db, &s);
            if (r < 0)
                r = terok_perr(err, r, "vault '%s': cannot store the passphrase slot: %s", v->path,
                               sqlite3_errmsg(v->db));
        }
        fault_point("change-passphrase-commit", 0);
        if (r >= 0)
            r = vdb_commit(v->db, err);
        if (r < 0)
            vdb_rollback(v->db);
    }
    free(s.params);
    if (r < 0)
        return r;
    fault_point("change-passphrase-committed", 0);
    vdb_checkpoint(v->db); /* the old wrapped key leaves the WAL */
    return 0;
}

typedef struct rows {
    vdb_entry *v;
    size_t n;
} rows;

static int rows_cb(void *ud, const vdb_entry *e)
{
    rows *rs = ud;
    vdb_entry *nv = realloc(rs->v, (rs->n + 1) * sizeof *nv);

    if (!nv)
        return -ENOMEM;
    rs->v = nv;
    rs->v[rs->n++] = *e;
    /* ownership moved: the caller's copy must not be freed */
    *(vdb_entry *)e = (vdb_entry){0};
    return 0;
}

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        vdb_entry_done(&rs->v[i]);
    free(rs->v);
    *rs = (rows){0};
}

/* Re-encrypt every row from the current keys to (ek, gen). In the caller's transaction. */
static int reencrypt_rows(vault *v, const unsigned char *ek, int64_t gen, terok_error *err)
{
    rows rs = {0};
    int r;

    r = vdb_entry_foreach(v->db, true, rows_cb, &rs);
    if (r < 0) {
        rows_free(&rs);
        return terok_perr(err, r, "vault '%s': cannot read entries: %s", v->path, strerror(-r));
    }
    for (size_t i = 0; i < rs.n && r >= 0; i++) {
        vdb_entry *e = &rs.v[i];
        vc_entry_header h = {e->name,       e->type,       e->metadata,
                             e->created_at, e->updated_at, e->version};
        unsigned char d_old[VC_MAC_BYTES], d_new[VC_MAC_BYTES];
        size_t plen = e->ct_len - VC_TAG_BYTES;
        unsigned char *plain = sodium_malloc(plen + 1), *ct = malloc(e->ct_len);

        if (!plain || !ct) {
            r = -ENOMEM;
        } else {
            vc_entry_digest(v->dbid, v->key_gen, &h, d_old);
            r = vc_open_entry(v->entry_key, d_old, e->nonce, e->ct, e->ct_len, plain);
            if (r < 0)
                r = terok_perr(err, -EBADMSG,
                               "vault '%s': entry '%s' failed its integrity check; rekey "
                               "aborted, nothing changed",
                               v->path, e->name);
        }
        if (r >= 0) {
            vc_entry_digest(v->dbid, gen, &h, d_new);
            vc_seal_entry(ek, d_new, plain, plen, e->nonce, ct);
            free(e->ct);
            e->ct = ct;
            ct = NULL;
            r = vdb_entry_put(v->db, e);
            fault_point("rekey-row", (long)i);
        }
        if (plain)
            sodium_free(plain);
        free(ct);
    }
    rows_free(&rs);
    return r;
}

int keys_rekey(vault *v, const terok_vault_ctl_rekey *arg, terok_error *err)
{
    _cleanup_key_ unsigned char *dek = vc_key_random(), *ek = vc_key_new(), *ik = vc_key_new();
    vdb_slot *old = NULL, fresh[KS_MAX];
    size_t n_old = 0, n = 0;
    int64_t gen, counter;
    trail t = {.len = 0};
    int r;

    if (!dek || !ek || !ik)
        return -ENOMEM;
    if (arg->new_passphrase && !vault_chain_has(v, KS_PASSPHRASE))
        return terok_perr(err, -EINVAL,
                          "vault '%s': 'passphrase' is not in key-sources; add it first", v->path);
    r = have_dek(v, arg->old_passphrase, err);
    if (r < 0)
        return r;
    r = keys_load_slots(v, &gen, &old, &n_old, err);
    if (r < 0)
        return r;
    gen = v->key_gen + 1;
    r = vc_derive_subkeys(dek, ek, ik);

    /* Gather the new slots first: helpers and Argon2id run outside the transaction. */
    for (size_t i = 0; r >= 0 && i < v->chain_len; i++) {
        ks_kind k = v->chain[i];
        const vdb_slot *o = keys_slot_find(old, n_old, k);
        const terok_secret *pass = NULL;
        _cleanup_(free_charp) char *why = NULL;
        bool made;

        if (k == KS_PASSPHRASE)
            pass = arg->new_passphrase ? arg->new_passphrase : arg->old_passphrase;
        if (k == KS_PASSPHRASE && o && !arg->new_passphrase && arg->old_passphrase)
            o = NULL; /* the given old passphrase was verified by have_dek(): re-salt it */
        r = keys_slot_provision(v, k, pass, o, n > 0, dek, gen, &fresh[n], &made, &why);
        if (r < 0) {
            keys_trail_add(&t, k, why);
            r = terok_perr(err, r == -ENOMEM ? r : -EACCES,
                           "vault '%s': rekey cannot renew an existing key slot (%s); nothing "
                           "changed — pass the current passphrase or remove the source from "
                           "key-sources",
                           v->path, t.buf);
            break;
        }
        if (made)
            n++;
    }
    vdb_slots_free(old, n_old);
    if (r >= 0 && n == 0)
        r = terok_perr(err, -EACCES,
                       "vault '%s': rekey would leave no key source able to open it; nothing "
                       "changed",
                       v->path);
    if (r < 0)
        goto out;

    r = vdb_begin_write(v->db, err);
    if (r < 0)
        goto out;
    r = keys_check_gen(v, err);
    if (r >= 0)
        r = index_verify(v, err);
    if (r >= 0)
        r = reencrypt_rows(v, ek, gen, err);
    if (r >= 0) {
        int q = vdb_meta_get_int(v->db, "counter", &counter);
        if (q >= 0)
            q = vdb_meta_set_int(v->db, "key_gen", gen);
        if (q >= 0)
            q = vdb_slots_clear(v->db);
        for (size_t i = 0; q >= 0 && i < n; i++)
            q = vdb_slot_put(v->db, &fresh[i]);
        if (q >= 0)
            q = keys_index_store(v->db, v->dbid, ik, gen, counter);
        if (q < 0)
            r = terok_perr(err, q, "vault '%s': rekey failed: %s; nothing changed", v->path,
                           sqlite3_errmsg(v->db));
    }
    fault_point("rekey-commit", 0);
    if (r >= 0)
        r = vdb_commit(v->db, err);
    if (r < 0) {
        vdb_rollback(v->db);
        goto out;
    }
    fault_point("rekey-committed", 0);
    vdb_checkpoint(v->db);
    {
        int by = v->opened_by;
        r = keys_set(v, take_key(&dek), gen, by);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(fresh[i].params);
    return r;
}
