/* SPDX-License-Identifier: Apache-2.0 */
/* vault-sqlite's decoding of what it stores and reads back: the key-source chain, the key file,
 * sealed entries and wrapped key slots (hostile, and honest ones with one thing altered), entry
 * and key-slot rows of the database altered behind the plugin's back, the name, type and
 * metadata checks, and passphrase-command's splitting. Input: one selector byte, then the case's
 * own layout. The promises checked: altered or forged ciphertext never opens, a failed open
 * leaves no plaintext behind, a refusal says why, and no message carries key material or the
 * value. The vault lives in a temporary directory with a key-file source. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-plugin-host.h"
#include "fuzz.h"

#include "vault-keys.h"
#include "vault-sqlite.c"

#define MARK "S3CR3T-"

static char dir[] = "/tmp/fz-vault-XXXXXX";
static char db_path[64], key_path[64], kf_path[64];
static const terok_vault_ops *vops;
static void *state;
static unsigned char dek0[VC_KEY_BYTES];
static vdb_slot slot0;

/* --- input ---------------------------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t n;
} cursor;

static uint8_t take_u8(cursor *c)
{
    uint8_t v = 0;

    if (c->n) {
        v = *c->p++;
        c->n--;
    }
    return v;
}

static uint16_t take_u16(cursor *c)
{
    uint16_t hi = take_u8(c);

    return (uint16_t)(hi << 8 | take_u8(c));
}

/* n bytes (fewer when the input ends), zero-padded into out. */
static void take_into(cursor *c, void *out, size_t n)
{
    size_t k = MIN(n, c->n);

    memset(out, 0, n);
    memcpy(out, c->p, k);
    c->p += k;
    c->n -= k;
}

/* A length byte, then that many bytes, as a string (cut at a NUL). */
static char *take_str(cursor *c)
{
    size_t len = take_u8(c);
    char *s;

    len = MIN(len, c->n);
    s = fuzz_strndup(c->p, len);

    c->p += len;
    c->n -= len;
    return s;
}

/* --- checks --------------------------------------------------------------------------------- */

static bool all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Keys are shown as hex nowhere: no message may hold a run of 12 hex digits (neither the
 * messages' own text nor our paths have one). */
static void no_key_material(const char *msg)
{
    size_t run = 0;

    for (const char *s = msg; s && *s; s++) {
        bool hex = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F');
        run = hex ? run + 1 : 0;
        if (run >= 12)
            abort();
    }
}

static void no_value(const char *msg)
{
    if (msg && strstr(msg, MARK))
        abort(); /* the value (it starts with MARK) in a message */
}

static void refusal(const terok_error *err, int r)
{
    if (r >= 0 || !err->message || err->code != r)
        abort(); /* a refusal is an errno and says why */
    no_key_material(err->message);
    no_value(err->message);
    no_value(fuzz_host_last_log);
}

/* --- cases ---------------------------------------------------------------------------------- */

static void chain(const char *s)
{
    ks_kind c[KS_MAX];
    size_t n = 99;
    char *bad = NULL;
    int r = ks_parse_chain(s, c, &n, &bad);

    if (r == 0) {
        bool seen[KS_MAX] = {false};
        if (bad || n > KS_MAX)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (c[i] >= KS_MAX || seen[c[i]] || !strstr(s, ks_name(c[i])))
                abort(); /* known, once, and from the input */
            seen[c[i]] = true;
        }
    } else if (r != -EINVAL || !bad || strlen(bad) > 64 || !fuzz_mem_in(s, bad, strlen(bad)))
        abort(); /* the refusal names the word, cut at 64 */
    free(bad);
}

static void key_file(const uint8_t *data, size_t size)
{
    ks_config cfg = {.key_file = kf_path};
    unsigned char kek[VC_KEY_BYTES], key[VC_KEY_BYTES], want[VC_KEY_BYTES];
    char *why = NULL;
    size_t len = size, bin = 0;
    int fd, r;

    unlink(kf_path);
    fd = open(kf_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) < 0)
        abort();
    memset(kek, 0, sizeof kek);
    r = ks_key_file_read(&cfg, kek, &why);
    if (len && data[len - 1] == '\n')
        len--;
    /* 64 hex digits and at most one newline, else nothing */
    bool good = len == 2 * VC_KEY_BYTES && size <= 2 * VC_KEY_BYTES + 1 &&
                sodium_hex2bin(key, sizeof key, (const char *)data, len, NULL, &bin, NULL) == 0 &&
                bin == VC_KEY_BYTES;
    if (good != (r == 0))
        abort();
    if (r == 0) {
        vc_key_file_kek(key, want);
        if (memcmp(kek, want, sizeof kek) != 0)
            abort();
    } else {
        if (!why || !strstr(why, kf_path))
            abort(); /* says why, naming the file */
        no_key_material(why);
    }
    free(why);
}

static const unsigned char ek0[VC_KEY_BYTES] = "fuzz entry key, 32 bytes long!!";
static const unsigned char dbid0[VC_DBID_BYTES] = "fuzz database!!";

/* A forged entry: header, nonce and ciphertext all from the input. */
static void entry_forged(cursor *c)
{
    char *name = take_str(c), *type = take_str(c), *meta = take_str(c);
    uint8_t flags = take_u8(c);
    vc_entry_header h = {name, type, flags & 1 ? NULL : meta, 0, 0, 0};
    unsigned char digest[VC_MAC_BYTES], nonce[VC_NONCE_BYTES];
    unsigned char *ct, *plain, *again;
    size_t n;

    h.created_at = take_u16(c);
    h.updated_at = take_u16(c);
    h.version = take_u16(c);
    take_into(c, nonce, sizeof nonce);
    n = c->n;
    ct = malloc(n ? n : 1);
    plain = malloc(n ? n : 1);
    again = malloc(n ? n : 1);
    if (!ct || !plain || !again)
        abort();
    memcpy(ct, c->p, n);
    memset(plain, 0xa5, n);
    vc_entry_digest(dbid0, 1, &h, digest);
    if (vc_open_entry(ek0, digest, nonce, ct, n, plain) == 0) {
        /* it opened: then it is exactly what sealing that plaintext gives (authentic) */
        crypto_aead_xchacha20poly1305_ietf_encrypt(again, NULL, plain, n - VC_TAG_BYTES, digest,
                                                   VC_MAC_BYTES, NULL, nonce, ek0);
        if (memcmp(again, ct, n) != 0)
            abort();
    } else if (n >= VC_TAG_BYTES && !all_zero(plain, n - VC_TAG_BYTES))
        abort(); /* a failed open wipes what it decrypted */
    free(ct);
    free(plain);
    free(again);
    free(name);
    free(type);
    free(meta);
}

/* An honest entry with one thing altered: it must not open; unaltered, it must open as sealed. */
static void entry_tampered(cursor *c)
{
    uint8_t what = take_u8(c), mask = take_u8(c);
    uint16_t pos = take_u16(c);
    char *name = take_str(c), *type = take_str(c), *meta = take_str(c);
    unsigned char digest[VC_MAC_BYTES], nonce[VC_NONCE_BYTES], ek[VC_KEY_BYTES];
    unsigned char dbid[VC_DBID_BYTES];
    vc_entry_header h = {name, type, meta, 1714557600, 1714557601, 7};
    int64_t gen = 3;
    size_t n = c->n, ct_len = n + VC_TAG_BYTES;
    unsigned char *ct = malloc(ct_len), *plain = malloc(ct_len);
    bool changed = mask != 0;
    int r;

    if (!ct || !plain)
        abort();
    memcpy(ek, ek0, sizeof ek);
    memcpy(dbid, dbid0, sizeof dbid);
    vc_entry_digest(dbid, gen, &h, digest);
    vc_seal_entry(ek, digest, c->p, n, nonce, ct);
    switch (what % 11) {
    case 0:
        ct[pos % ct_len] ^= mask;
        break;
    case 1:
        nonce[pos % sizeof nonce] ^= mask;
        break;
    case 2:
        h.created_at ^= (int64_t)mask << (pos % 56);
        break;
    case 3:
        h.updated_at ^= (int64_t)mask << (pos % 56);
        break;
    case 4:
        h.version ^= (int64_t)mask << (pos % 56);
        break;
    case 5:
        gen ^= (int64_t)mask << (pos % 56);
        break;
    case 6:
        dbid[pos % sizeof dbid] ^= mask;
        break;
    case 7: /* a name or type cut or changed (a NUL cuts it, still a change) */
        if (!*name && !*type)
            changed = false;
        else if (*name && (pos & 1 || !*type))
            name[pos % strlen(name)] ^= mask;
        else
            type[pos % strlen(type)] ^= mask;
        break;
    case 8: /* metadata: absent is not empty */
        if (mask & 1)
            h.metadata = NULL;
        else if (*meta)
            meta[pos % strlen(meta)] ^= mask;
        else
            changed = false;
        break;
    case 9: /* cut short */
        changed = mask && pos % (ct_len + 1) > 0;
        if (changed)
            ct_len -= pos % (ct_len + 1);
        break;
    case 10:
        ek[pos % sizeof ek] ^= mask;
        break;
    }
    vc_entry_digest(dbid, gen, &h, digest);
    memset(plain, 0xa5, ct_len);
    r = vc_open_entry(ek, digest, nonce, ct, ct_len, plain);
    if (changed && r == 0)
        abort(); /* altered data opened */
    if (changed && r != -EBADMSG)
        abort();
    if (changed && ct_len >= VC_TAG_BYTES && !all_zero(plain, ct_len - VC_TAG_BYTES))
        abort();
    if (!changed && (r != 0 || (n && memcmp(plain, c->p, n) != 0)))
        abort(); /* the honest entry opens as it was sealed */
    free(ct);
    free(plain);
    free(name);
    free(type);
    free(meta);
}

/* An honest key slot with one thing altered: the DEK must not come out. */
static void slot_tampered(cursor *c)
{
    uint8_t what = take_u8(c), mask = take_u8(c);
    uint16_t pos = take_u16(c);
    char *source = take_str(c);
    size_t plen = c->n;
    unsigned char *params = malloc(plen ? plen : 1);
    unsigned char kek[VC_KEY_BYTES], dek[VC_KEY_BYTES], out[VC_KEY_BYTES];
    unsigned char nonce[VC_NONCE_BYTES], wrapped[VC_WRAPPED_BYTES], dbid[VC_DBID_BYTES];
    int64_t gen = 1;
    bool changed = mask != 0;
    int r;

    if (!params)
        abort();
    memcpy(params, c->p, plen);
    memcpy(kek, ek0, sizeof kek);
    memcpy(dbid, dbid0, sizeof dbid);
    memset(dek, 0x5c, sizeof dek);
    vc_wrap_dek(kek, dek, dbid, gen, source, params, plen, nonce, wrapped);
    switch (what % 7) {
    case 0:
        wrapped[pos % sizeof wrapped] ^= mask;
        break;
    case 1:
        nonce[pos % sizeof nonce] ^= mask;
        break;
    case 2: /* the salt, limits or sealed blob */
        if (plen)
            params[pos % plen] ^= mask;
        else
            changed = false;
        break;
    case 3: /* parameters cut short: a downgrade */
        changed = mask && plen && pos % (plen + 1) > 0;
        if (changed)
            plen -= pos % (plen + 1);
        break;
    case 4: /* moved to another source */
        if (*source)
            source[pos % strlen(source)] ^= mask;
        else
            changed = false;
        break;
    case 5: /* another generation or database */
        if (pos & 1)
            gen ^= (int64_t)mask << (pos % 56);
        else
            dbid[pos % sizeof dbid] ^= mask;
        break;
    case 6:
        kek[pos % sizeof kek] ^= mask;
        break;
    }
    memset(out, 0xa5, sizeof out);
    r = vc_unwrap_dek(kek, dbid, gen, source, params, plen, nonce, wrapped, out);
    if (changed && (r != -EBADMSG || !all_zero(out, sizeof out)))
        abort(); /* refused, and nothing of the DEK left behind */
    if (!changed && (r != 0 || memcmp(out, dek, sizeof dek) != 0))
        abort();
    free(params);
    free(source);
}

static int sql_set(sqlite3 *db, const char *sql, cursor *c)
{
    sqlite3_stmt *st = NULL;
    uint8_t kind = take_u8(c);
    size_t len = take_u8(c);
    int rc;

    len = MIN(len, c->n);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        abort();
    switch (kind % 5) {
    case 0:
        sqlite3_bind_blob(st, 1, c->p, (int)len, SQLITE_TRANSIENT);
        break;
    case 1:
        sqlite3_bind_text(st, 1, (const char *)c->p, (int)len, SQLITE_TRANSIENT);
        break;
    case 2: {
        int64_t v = 0;
        for (size_t i = 0; i < MIN(len, (size_t)8); i++)
            v = (int64_t)((uint64_t)v << 8 | c->p[i]);
        sqlite3_bind_int64(st, 1, v);
        break;
    }
    case 3:
        sqlite3_bind_double(st, 1, len ? (double)c->p[0] / 3.0 : -0.0);
        break;
    case 4:
        sqlite3_bind_null(st, 1);
        break;
    }
    c->p += len;
    c->n -= len;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : 0;
}

/* The index MAC again over whatever the rows say now: an attacker without the key cannot, but
 * this gets the altered row past the index to the entry's own check. A row the index cannot
 * read (a nonce of the wrong size) stays unindexed. */
static void reindex(vault *v)
{
    int64_t counter = 0;

    if (vdb_begin_write(v->db, NULL) < 0)
        abort();
    if (vdb_meta_get_int(v->db, "counter", &counter) < 0 ||
        keys_index_store(v->db, v->dbid, v->index_key, v->key_gen, counter) < 0 ||
        vdb_commit(v->db, NULL) < 0)
        vdb_rollback(v->db);
}

static int list_cb(void *userdata, const terok_vault_entry *e)
{
    (void)userdata;
    if (!e->name || !e->type)
        abort();
    no_value(e->name);
    no_value(e->type);
    no_value(e->metadata);
    return 0;
}

/* A stored entry whose row is altered in one column, then read back and listed. */
static void entry_row(cursor *c)
{
    static const char *const cols[] = {"name",       "type",    "metadata", "created_at",
                                       "updated_at", "version", "nonce",    "ciphertext"};
    vault *v = state;
    terok_error err = TEROK_ERROR_INIT;
    terok_secret *value = NULL, *got = NULL;
    char sql[96], *meta;
    uint8_t col = take_u8(c);
    size_t vlen;
    const void *p;
    size_t n;
    unsigned char plain[64];
    int r;

    meta = col & 0x80 ? strdup("{\"scope\":\"x\"}") : NULL;
    memcpy(plain, MARK, strlen(MARK));
    take_into(c, plain + strlen(MARK), 8);
    vlen = strlen(MARK) + 8;
    if (vdb_exec(v->db, "DELETE FROM entries", NULL) < 0)
        abort();
    reindex(v);
    if (HOST->secret_new(plain, vlen, &value) < 0 ||
        vops->put(state, "e1", value, "password", meta, &err) < 0)
        abort();
    snprintf(sql, sizeof sql, "UPDATE entries SET %s = ?1", cols[col % ELEMENTSOF(cols)]);
    (void)sql_set(v->db, sql, c);
    reindex(v);
    fuzz_host_last_log[0] = 0;
    r = vops->get(state, "e1", &got, &err);
    if (r == 0) {
        /* read back: only ever the value that was stored */
        if (HOST->secret_peek(got, &p, &n) < 0 || n != vlen || memcmp(p, plain, n) != 0)
            abort();
        HOST->secret_free(got);
    } else
        refusal(&err, r);
    fuzz_error_clear(&err);
    r = vops->list(state, list_cb, NULL, &err);
    if (r < 0)
        refusal(&err, r);
    fuzz_error_clear(&err);
    HOST->secret_free(value);
    free(meta);
}

/* The key-file slot altered in one column: unlocking gives the vault's DEK or nothing. */
static void slot_row(cursor *c)
{
    static const char *const cols[] = {"source", "params", "nonce", "wrapped"};
    vault *v = state;
    terok_error err = TEROK_ERROR_INIT;
    char sql[96];
    int r;

    snprintf(sql, sizeof sql, "UPDATE keyslots SET %s = ?1", cols[take_u8(c) % ELEMENTSOF(cols)]);
    (void)sql_set(v->db, sql, c);
    keys_drop(v);
    r = keys_ensure(v, &err);
    if (r == 0) {
        if (!v->dek || memcmp(v->dek, dek0, sizeof dek0) != 0)
            abort(); /* another DEK came out of an altered slot */
    } else
        refusal(&err, r);
    fuzz_error_clear(&err);
    /* put the slot back as it was */
    keys_drop(v);
    if (vdb_slots_clear(v->db) < 0 || vdb_slot_put(v->db, &slot0) < 0 || keys_ensure(v, NULL) < 0)
        abort();
}

static void names(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    char *s = fuzz_strndup(data, size), q[200];
    int r;

    if (quote(s, q) != q || strlen(q) >= 200)
        abort();
    for (const char *t = q; *t; t++)
        if (*t < 0x20 || *t >= 0x7f)
            abort(); /* quoted: printable only */
    r = check_name(state, s, &err);
    if (r < 0 && (!err.message || (*s && !strstr(err.message, quote(s, q)))))
        abort(); /* a refused name is named */
    fuzz_error_clear(&err);
    r = check_type(s, &err);
    if (r < 0 && (!err.message || !strstr(err.message, quote(s, q))))
        abort();
    fuzz_error_clear(&err);
    r = check_metadata(s, &err);
    if (r < 0 && !err.message)
        abort();
    fuzz_error_clear(&err);
    free(s);
}

static void command(const char *s)
{
    char **argv = NULL;
    int r = split_command(s, &argv);
    size_t total = 0;

    if (r == 0) {
        if (!argv || !argv[0])
            abort();
        for (char **a = argv; *a; a++)
            total += strlen(*a);
        if (total > strlen(s))
            abort(); /* words come from the input, quotes and escapes removed */
        strv_free_(argv);
    } else if (r != -EINVAL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = {data + 1, size ? size - 1 : 0};
    char *s;

    if (size < 1)
        return 0;
    s = fuzz_strndup(data + 1, size - 1);
    switch (data[0] % 9) {
    case 0:
        chain(s);
        break;
    case 1:
        key_file(data + 1, size - 1);
        break;
    case 2:
        entry_forged(&c);
        break;
    case 3:
        entry_tampered(&c);
        break;
    case 4:
        slot_tampered(&c);
        break;
    case 5:
        entry_row(&c);
        break;
    case 6:
        slot_row(&c);
        break;
    case 7:
        names(data + 1, size - 1);
        break;
    case 8:
        command(s);
        break;
    }
    free(s);
    return 0;
}

static void cleanup(void)
{
    static const char *const files[] = {"vault.db", "vault.db-wal", "vault.db-shm", "vault.key",
                                        "kf"};
    char p[128];

    if (vops && state)
        vops->close(state);
    for (size_t i = 0; i < ELEMENTSOF(files); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *config[9];
    static const char section = 0;
    terok_error err = TEROK_ERROR_INIT;
    vault *v;
    vdb_slot *slots = NULL;
    size_t n = 0;
    int64_t gen;

    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    snprintf(db_path, sizeof db_path, "%s/vault.db", dir);
    snprintf(key_path, sizeof key_path, "%s/vault.key", dir);
    snprintf(kf_path, sizeof kf_path, "%s/kf", dir);
    config[0] = "path";
    config[1] = db_path;
    config[2] = "key-sources";
    config[3] = "key-file";
    config[4] = "key-file";
    config[5] = key_path;
    fuzz_host_config = config;
    fuzz_host_dir = dir;
    vops = fuzz_host_init();
    if (vops->open(NULL, (const terok_config_section *)&section, &state, &err) < 0)
        abort();
    v = state;
    /* The harness's commits need not reach the disk. */
    if (vdb_exec(v->db, "PRAGMA synchronous=OFF", NULL) < 0 || keys_ensure(v, &err) < 0 ||
        keys_load_slots(v, &gen, &slots, &n, NULL) < 0 || n != 1)
        abort();
    memcpy(dek0, v->dek, sizeof dek0);
    slot0 = slots[0];
    free(slots);
    return 0;
}
