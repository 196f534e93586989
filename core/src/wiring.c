/* SPDX-License-Identifier: Apache-2.0 */
/* wiring.c: per-container runtime dir, phantom tokens and the vault daemon's socket. */
#include <sodium.h>
#include <sys/stat.h>

#include "broker/routes.h"
#include "broker/vault-client.h"
#include "error.h"
#include "spec.h"
#include "sshkeys.h"
#include "tokens.h"
#include "util/strv.h"
#include "wiring.h"

#define BRIDGE_VAULT_URL "http://127.0.0.1:9419"

int wiring_run_dir(sandbox *s, const char *name, char **ret)
{
    return asprintf(ret, "%s/containers/%s", s->paths.runtime_dir, name) < 0 ? -ENOMEM : 0;
}

static int make_run_dir(sandbox *s, const char *name, wiring *w, terok_error *err)
{
    _cleanup_free_ char *parent = NULL;
    int r;

    r = mkdir_safe(s->paths.runtime_dir, 0700, err);
    if (r < 0)
        return r;
    if (asprintf(&parent, "%s/containers", s->paths.runtime_dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    /* 0700 parent: other host users never reach a container's sockets (MACHINE.md §13.1). */
    r = mkdir_safe(parent, 0700, err);
    if (r < 0)
        return r;
    r = wiring_run_dir(s, name, &w->run_dir);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    if (mkdir(w->run_dir, 0711) < 0) {
        if (errno != EEXIST)
            return terok_error_set(err, negative_errno(), "cannot create '%s': %s", w->run_dir,
                                   strerror(errno));
    } else
        w->dir_created = true;
    /* 0711: the container's mapped uid may traverse to the 0666 sockets, never list. */
    if (chmod(w->run_dir, 0711) < 0)
        return terok_error_set(err, negative_errno(), "cannot chmod '%s': %s", w->run_dir,
                               strerror(errno));
    return 0;
}

int wiring_setup(sandbox *s, const char *name, char *const *want, const char *config_file,
                 wiring *w, terok_error *err)
{
    routes rs = {0};
    uint8_t key[TOKEN_KEY_BYTES];
    store *st;
    size_t minted = 0;
    int r;

    *w = (wiring){0};
    r = make_run_dir(s, name, w, err);
    if (r < 0)
        goto fail;
    r = routes_from_config(s->config, &rs, err);
    if (r < 0)
        goto fail;
    for (char *const *wn = want; wn && *wn; wn++)
        if (!routes_find(&rs, *wn, strlen(*wn))) {
            r = terok_error_set(err, -ENOENT, "no broker route '%s' is configured", *wn);
            goto fail;
        }
    if (rs.n == 0 || (want && !*want))
        goto done; /* nothing to broker: no tokens, no daemon */

    r = sandbox_store(s, &st, err);
    if (r < 0)
        goto fail;
    r = tokens_key_load(s->paths.state_dir, key, err);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < rs.n; i++) {
        const route *rt = &rs.v[i];
        terok_secret *tok = NULL;
        const void *p;
        size_t n;

        if (want && !strv_contains((const char *const *)want, rt->name))
            continue;
        token_binding b = {TOKEN_KIND_PHANTOM, name, rt->name, 0, 0};
        r = tokens_mint(store_sqlite(st), key, &b, &tok, NULL, err);
        if (r < 0)
            goto fail;
        minted++;
        terok_secret_peek(tok, &p, &n);
        if (rt->token_env)
            r = strv_extendf(&w->env, "%s=%.*s", rt->token_env, (int)n, (const char *)p);
        terok_secret_free(tok);
        if (r >= 0 && rt->base_url_env)
            r = strv_extendf(&w->env, "%s=%s/%s", rt->base_url_env, BRIDGE_VAULT_URL, rt->name);
        if (r < 0) {
            r = terok_error_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
    }
    sodium_memzero(key, sizeof key);
    if (minted > 0) {
        r = vault_client_ensure(s, config_file, err);
        if (r < 0)
            goto fail;
        r = vault_client_open(s, name, err);
        if (r < 0)
            goto fail;
        w->vault_opened = true;
    }
done:
    routes_done(&rs);
    return 0;
fail:
    sodium_memzero(key, sizeof key);
    routes_done(&rs);
    wiring_rollback(s, name, w);
    return r;
}

void wiring_done(wiring *w)
{
    for (char **e = w->env; e && *e; e++)
        sodium_memzero(*e, strlen(*e));
    strv_free(w->env);
    free(w->run_dir);
    *w = (wiring){0};
}

void wiring_rollback(sandbox *s, const char *name, wiring *w)
{
    store *st;

    if (sandbox_store(s, &st, NULL) >= 0) {
        (void)tokens_revoke_container(store_sqlite(st), name, 0, NULL);
        if (w->ssh_wired)
            (void)sshkeys_container_forget(store_sqlite(st), name, NULL);
    }
    if (w->vault_opened)
        (void)vault_client_close(s, name, NULL);
    if (w->dir_created && w->run_dir)
        (void)rmdir(w->run_dir);
    wiring_done(w);
}

int wiring_teardown(sandbox *s, const char *name, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *sock = NULL;
    store *st;
    int r;

    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = tokens_revoke_container(store_sqlite(st), name, 0, err);
    if (r < 0)
        return r;
    r = sshkeys_container_forget(store_sqlite(st), name, err);
    if (r < 0)
        return r;
    /* Close the socket if a daemon runs; a stopped daemon will not reopen it (no record). */
    (void)vault_client_close(s, name, NULL);
    if (wiring_run_dir(s, name, &dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (asprintf(&sock, "%s/vault.sock", dir) >= 0)
        (void)unlink(sock);
    free(sock);
    sock = NULL;
    if (asprintf(&sock, "%s/ssh-agent.sock", dir) >= 0)
        (void)unlink(sock);
    if (rmdir(dir) < 0 && errno != ENOENT)
        return terok_error_set(err, negative_errno(), "cannot remove '%s': %s", dir,
                               strerror(errno));
    return 0;
}

int wiring_ssh(sandbox *s, const char *name, const char *scope, const char *config_file, wiring *w,
               terok_error *err)
{
    _cleanup_strv_free_ char **keys = NULL;
    store *st;
    int r;

    if (!ssh_scope_is_valid(scope))
        return terok_error_set(err, -EINVAL,
                               "invalid SSH scope '%s': use [A-Za-z0-9][A-Za-z0-9._-]*, at most %d",
                               strempty(scope), SSH_SCOPE_MAX);
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = sshkeys_keys_of(store_sqlite(st), scope, &keys, err);
    if (r < 0 || !keys[0])
        return r; /* no keys: no agent, no SSH_AUTH_SOCK */
    r = sshkeys_container_set(store_sqlite(st), name, scope, err);
    if (r < 0)
        return r;
    w->ssh_wired = true;
    if (strv_extend(&w->env, "SSH_AUTH_SOCK=" SPEC_MANAGED_DIR "/ssh-agent.sock") < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = vault_client_ensure(s, config_file, err);
    if (r < 0)
        return r;
    /* (re)open: the daemon opens ssh-agent.sock now that the scope is recorded */
    r = vault_client_open(s, name, err);
    if (r < 0)
        return r;
    w->vault_opened = true;
    return 0;
}
