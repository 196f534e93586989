/* SPDX-License-Identifier: Apache-2.0 */
/* vault-keysource.c: the four key sources. Each returns a KEK or a reason; none of them logs,
 * and no reason ever quotes key material or helper output other than a helper's stderr line. */
#include <fcntl.h>
#include <linux/keyctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vault-keysource.h"
#include "vault-spawn.h"

static const char *const names[KS_MAX] = {
    [KS_SYSTEMD_CREDS] = "systemd-creds",
    [KS_KEYRING] = "keyring",
    [KS_PASSPHRASE] = "passphrase",
    [KS_KEY_FILE] = "key-file",
};

const char *ks_name(ks_kind k)
{
    return k < KS_MAX ? names[k] : "?";
}

int ks_from_name(const char *s)
{
    for (int k = 0; k < KS_MAX; k++)
        if (streq(s, names[k]))
            return k;
    return -EINVAL;
}

bool ks_survives_reboot(ks_kind k)
{
    return k != KS_KEYRING;
}

bool ks_is_weak(ks_kind k)
{
    return k == KS_KEY_FILE;
}

int ks_parse_chain(const char *s, ks_kind chain[KS_MAX], size_t *ret_n, char **ret_bad)
{
    bool seen[KS_MAX] = {false};
    size_t n = 0;
    const char *p = s;

    *ret_bad = NULL;
    while (*p) {
        size_t len = strcspn(p, " \t,");
        if (len == 0) {
            p++;
            continue;
        }
        char word[32] = "";
        int k = -EINVAL;
        if (len < sizeof word) {
            memcpy(word, p, len);
            k = ks_from_name(word);
        }
        if (k < 0 || seen[k]) {
            *ret_bad = strndup(p, MIN(len, (size_t)64));
            return -EINVAL;
        }
        seen[k] = true;
        chain[n++] = (ks_kind)k;
        p += len;
    }
    *ret_n = n;
    return 0;
}

void ks_config_done(ks_config *c)
{
    free(c->creds_binary);
    free(c->creds_with_key);
    free(c->key_file);
    c->passphrase_argv = strv_free_(c->passphrase_argv);
    c->creds_binary = c->creds_with_key = c->key_file = NULL;
}

static int reason(char **ret, int code, const char *fmt, ...) _printf_(3, 4);
static int reason(char **ret, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(ret, fmt, ap) < 0)
        *ret = NULL;
    va_end(ap);
    return code;
}

/* --- systemd-creds ------------------------------------------------------------------------ */

static int creds_run(const ks_config *c, const char *verb, const void *in, size_t len,
                     spawn_result *res, char **ret_reason)
{
    char dbhex[2 * VC_DBID_BYTES + 1], name[64], withkey[64];
    int r;

    vc_hex(c->dbid, VC_DBID_BYTES, dbhex);
    snprintf(name, sizeof name, "--name=terok-vault-%s", dbhex);
    snprintf(withkey, sizeof withkey, "--with-key=%s", c->creds_with_key);
    char *argv[] = {c->creds_binary, (char *)verb, name, withkey, "-", "-", NULL};
    if (streq(verb, "decrypt")) /* decrypt takes no --with-key */
        argv[3] = "-", argv[4] = "-", argv[5] = NULL;

    r = spawn_capture(argv, in, len, c->timeout_ms, res);
    if (r == -ENOENT)
        return reason(ret_reason, -ENOENT, "'%s' is not installed", c->creds_binary);
    if (r == -ETIMEDOUT)
        return reason(ret_reason, r, "'%s %s' timed out", c->creds_binary, verb);
    if (r < 0)
        return reason(ret_reason, r, "cannot run '%s': %s", c->creds_binary, strerror(-r));
    if (res->status != 0) {
        r = reason(ret_reason, -ENOKEY, "'%s %s' failed (exit %d)%s%s%s", c->creds_binary, verb,
                   res->status, res->errline[0] ? ": '" : "", res->errline,
                   res->errline[0] ? "'" : "");
        spawn_result_done(res);
        return r;
    }
    return 0;
}

int ks_creds_seal(const ks_config *c, const unsigned char *kek, unsigned char **ret_blob,
                  size_t *ret_len, char **ret_reason)
{
    spawn_result res;
    int r;

    r = creds_run(c, "encrypt", kek, VC_KEY_BYTES, &res, ret_reason);
    if (r < 0)
        return r;
    if (res.out_len == 0) {
        spawn_result_done(&res);
        return reason(ret_reason, -EIO, "'%s encrypt' printed nothing", c->creds_binary);
    }
    /* The sealed blob is ciphertext: an ordinary heap copy is fine. */
    *ret_blob = malloc(res.out_len);
    if (!*ret_blob) {
        spawn_result_done(&res);
        return -ENOMEM;
    }
    memcpy(*ret_blob, res.out, res.out_len);
    *ret_len = res.out_len;
    spawn_result_done(&res);
    return 0;
}

int ks_creds_unseal(const ks_config *c, const void *blob, size_t len, unsigned char *ret_kek,
                    char **ret_reason)
{
    spawn_result res;
    int r;

    r = creds_run(c, "decrypt", blob, len, &res, ret_reason);
    if (r < 0)
        return r;
    if (res.out_len != VC_KEY_BYTES) {
        spawn_result_done(&res);
        return reason(ret_reason, -EBADMSG, "'%s decrypt' returned a key of the wrong size",
                      c->creds_binary);
    }
    memcpy(ret_kek, res.out, VC_KEY_BYTES);
    spawn_result_done(&res);
    return 0;
}

/* --- kernel keyring ----------------------------------------------------------------------- */

/* Possessor: everything; same uid: view/read/write/search/setattr (a daemon started outside the
 * login session may not "possess" the user keyring); group/other: nothing. */
#define KEY_PERM 0x3f2f0000u

static void keyring_desc(const ks_config *c, char out[80])
{
    char dbhex[2 * VC_DBID_BYTES + 1];

    vc_hex(c->dbid, VC_DBID_BYTES, dbhex);
    snprintf(out, 80, "terok-sandbox:vault-kek:%s", dbhex);
}

static long key_search(const ks_config *c)
{
    char desc[80];

    keyring_desc(c, desc);
    return syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0);
}

static const char *keyring_errmsg(int e)
{
    switch (e) {
    case ENOKEY:
        return "no session key cached (run 'terok-sandbox vault unlock')";
    case EKEYEXPIRED:
        return "the session key expired (run 'terok-sandbox vault unlock')";
    case EKEYREVOKED:
        return "the session key was revoked (vault locked)";
    case ENOSYS:
        return "the kernel keyring is not available (keyctl: ENOSYS)";
    case EPERM:
    case EACCES:
        return "the kernel keyring refused access (blocked by seccomp or permissions)";
    case EDQUOT:
        return "the kernel keyring quota is exhausted";
    default:
        return NULL;
    }
}

int ks_keyring_read(const ks_config *c, unsigned char *ret_kek, char **ret_reason)
{
    unsigned char buf[VC_KEY_BYTES + 1];
    long id, n;
    int e;

    id = key_search(c);
    if (id < 0)
        goto fail;
    n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf, 0);
    if (n < 0)
        goto fail;
    if (n != VC_KEY_BYTES) {
        sodium_memzero(buf, sizeof buf);
        return reason(ret_reason, -EBADMSG, "the cached session key has the wrong size");
    }
    memcpy(ret_kek, buf, VC_KEY_BYTES);
    sodium_memzero(buf, sizeof buf);
    return 0;
fail:
    e = errno;
    if (keyring_errmsg(e))
        return reason(ret_reason, e == EKEYEXPIRED || e == EKEYREVOKED ? -ENOKEY : -e, "%s",
                      keyring_errmsg(e));
    return reason(ret_reason, -e, "keyctl failed: %s", strerror(e));
}

bool ks_keyring_present(const ks_config *c)
{
    return key_search(c) >= 0;
}

int ks_keyring_store(const ks_config *c, const unsigned char *kek, char **ret_reason)
{
    char desc[80];
    long id;
    int e;

    keyring_desc(c, desc);
    id = syscall(SYS_add_key, "user", desc, kek, (size_t)VC_KEY_BYTES, KEY_SPEC_USER_KEYRING);
    if (id < 0)
        goto fail;
    if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, KEY_PERM, 0, 0) < 0 ||
        syscall(SYS_keyctl, KEYCTL_SET_TIMEOUT, id, (unsigned long)c->keyring_timeout_s, 0, 0) <
            0) {
        e = errno;
        syscall(SYS_keyctl, KEYCTL_INVALIDATE, id, 0, 0, 0);
        errno = e;
        goto fail;
    }
    return 0;
fail:
    e = errno;
    if (keyring_errmsg(e) && e != ENOKEY)
        return reason(ret_reason, -e, "%s", keyring_errmsg(e));
    return reason(ret_reason, -e, "cannot add the session key: %s", strerror(e));
}

int ks_keyring_forget(const ks_config *c)
{
    long id = key_search(c);

    if (id < 0)
        return 0;
    if (syscall(SYS_keyctl, KEYCTL_INVALIDATE, id, 0, 0, 0) < 0 &&
        syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING, 0, 0) < 0)
        return negative_errno();
    return 0;
}

/* --- passphrase-command ------------------------------------------------------------------- */

int ks_passphrase_command(const ks_config *c, unsigned char **ret_pass, size_t *ret_len,
                          char **ret_reason)
{
    spawn_result res;
    unsigned char *p;
    size_t n;
    int r;

    if (!c->passphrase_argv)
        return reason(ret_reason, -ENOENT,
                      "no passphrase given and no passphrase-command configured");
    r = spawn_capture(c->passphrase_argv, NULL, 0, c->timeout_ms, &res);
    if (r == -ENOENT)
        return reason(ret_reason, r, "passphrase-command '%s' not found", c->passphrase_argv[0]);
    if (r == -ETIMEDOUT)
        return reason(ret_reason, r, "passphrase-command '%s' timed out after %d ms",
                      c->passphrase_argv[0], c->timeout_ms);
    if (r < 0)
        return reason(ret_reason, r, "passphrase-command '%s' failed: %s", c->passphrase_argv[0],
                      strerror(-r));
    if (res.status != 0) {
        r = reason(ret_reason, -ENOKEY, "passphrase-command '%s' failed (exit %d)%s%s%s",
                   c->passphrase_argv[0], res.status, res.errline[0] ? ": '" : "", res.errline,
                   res.errline[0] ? "'" : "");
        spawn_result_done(&res);
        return r;
    }
    n = res.out_len;
    if (n > 0 && res.out[n - 1] == '\n')
        n--;
    if (n > 0 && res.out[n - 1] == '\r')
        n--;
    if (n == 0) {
        spawn_result_done(&res);
        return reason(ret_reason, -ENOKEY, "passphrase-command '%s' printed nothing",
                      c->passphrase_argv[0]);
    }
    p = sodium_malloc(n);
    if (!p) {
        spawn_result_done(&res);
        return -ENOMEM;
    }
    memcpy(p, res.out, n);
    spawn_result_done(&res);
    *ret_pass = p;
    *ret_len = n;
    return 0;
}

/* --- key file ----------------------------------------------------------------------------- */

bool ks_key_file_present(const ks_config *c)
{
    struct stat st;

    return lstat(c->key_file, &st) == 0;
}

int ks_key_file_read(const ks_config *c, unsigned char *ret_kek, char **ret_reason)
{
    _cleanup_close_ int fd = -EBADF;
    unsigned char buf[2 * VC_KEY_BYTES + 3], key[VC_KEY_BYTES];
    struct stat st;
    size_t len = 0, bin_len = 0;
    ssize_t n;
    int r = 0;

    fd = open(c->key_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return reason(ret_reason, -EPERM, "key file '%s' is a symlink; refusing it",
                          c->key_file);
        return reason(ret_reason, -e, "cannot open key file '%s': %s", c->key_file, strerror(e));
    }
    if (fstat(fd, &st) < 0)
        return reason(ret_reason, negative_errno(), "cannot stat key file '%s'", c->key_file);
    if (!S_ISREG(st.st_mode))
        return reason(ret_reason, -EPERM, "key file '%s' is not a regular file", c->key_file);
    if (st.st_uid != geteuid())
        return reason(ret_reason, -EPERM,
                      "key file '%s' is owned by uid %u, not by us (uid %u); refusing it",
                      c->key_file, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return reason(ret_reason, -EPERM,
                      "key file '%s' has mode %04o; refusing it — it must be 0600 "
                      "(chmod 600 '%s')",
                      c->key_file, (unsigned)(st.st_mode & 07777), c->key_file);
    while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = reason(ret_reason, negative_errno(), "cannot read key file '%s'", c->key_file);
            goto out;
        }
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len != 2 * VC_KEY_BYTES ||
        sodium_hex2bin(key, sizeof key, (const char *)buf, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != VC_KEY_BYTES) {
        r = reason(ret_reason, -EBADMSG,
                   "key file '%s' is malformed (expected 64 hex digits, a 256-bit key)",
                   c->key_file);
        goto out;
    }
    vc_key_file_kek(key, ret_kek);
out:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(key, sizeof key);
    return r;
}

int ks_key_file_create(const ks_config *c, unsigned char *ret_kek, char **ret_reason)
{
    _cleanup_close_ int fd = -EBADF;
    unsigned char key[VC_KEY_BYTES];
    char hex[2 * VC_KEY_BYTES + 2];
    size_t off = 0, len;
    int r = 0;

    fd = open(c->key_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        return reason(ret_reason, -e, "cannot create key file '%s': %s", c->key_file, strerror(e));
    }
    randombytes_buf(key, sizeof key);
    vc_hex(key, sizeof key, hex);
    len = 2 * VC_KEY_BYTES;
    hex[len++] = '\n';
    while (off < len) {
        ssize_t n = write(fd, hex + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = reason(ret_reason, n < 0 ? negative_errno() : -EIO, "cannot write key file '%s'",
                       c->key_file);
            unlink(c->key_file);
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0) {
        r = reason(ret_reason, negative_errno(), "cannot sync key file '%s'", c->key_file);
        unlink(c->key_file);
        goto out;
    }
    vc_key_file_kek(key, ret_kek);
out:
    sodium_memzero(key, sizeof key);
    sodium_memzero(hex, sizeof hex);
    return r;
}
