/* SPDX-License-Identifier: Apache-2.0 */
/* wiring.c: per-container runtime dir, phantom tokens and the vault daemon's socket, gate
 * tokens, grants and the gate daemon's socket. */
#include <ctype.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "broker/routes.h"
#include "broker/vault-client.h"
#include "error.h"
#include "gate-serve/gate-client.h"
#include "gate.h"
#include "spec.h"
#include "sshkeys.h"
#include "tokens.h"
#include "util/strv.h"
#include "wiring.h"

#define BRIDGE_VAULT_URL "http://127.0.0.1:9419"
#define BRIDGE_GATE_HOSTPORT "127.0.0.1:9418"

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

int wiring_parse_repo(const char *arg, char *buf, size_t cap, uint32_t *ret_rights,
                      terok_error *err)
{
    const char *colon = strrchr(arg, ':');
    size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
    uint32_t rights = TEROK_GATE_READ;

    if (colon) {
        if (streq(colon + 1, "rw"))
            rights |= TEROK_GATE_WRITE;
        else if (!streq(colon + 1, "ro"))
            return terok_error_set(err, -EINVAL,
                                   "invalid --repo '%s': the access after ':' must be 'ro' or 'rw'",
                                   arg);
    }
    if (n >= cap)
        return terok_error_set(err, -EINVAL, "invalid --repo '%s': project name too long", arg);
    memcpy(buf, arg, n);
    buf[n] = 0;
    if (!gate_repo_name_is_valid(buf))
        return terok_error_set(err, -EINVAL,
                               "invalid --repo '%s': a project name is [a-z0-9][a-z0-9._-]*, at "
                               "most 64, no '..'",
                               arg);
    *ret_rights = rights;
    return 0;
}

/* TEROK_GATE_REPO_<PROJECT>: upper case, '.' and '-' as '_'. */
static void repo_env_key(const char *repo, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "TEROK_GATE_REPO_%s", repo);

    for (size_t i = strlen("TEROK_GATE_REPO_"); i < n && i < cap; i++)
        buf[i] = buf[i] == '.' || buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

static int wire_repos(sandbox *s, const char *name, char *const *repos, const char *config_file,
                      wiring *w, terok_error *err)
{
    _cleanup_strv_free_ char **names = NULL, **keys = NULL;
    uint8_t key[TOKEN_KEY_BYTES];
    uint32_t rights[64];
    size_t n = 0;
    store *st;
    gate g;
    int r;

    /* Everything checked before anything is minted or granted. */
    for (char *const *a = repos; *a; a++) {
        char project[128], envk[160];

        if (n >= ELEMENTSOF(rights))
            return terok_error_set(err, -E2BIG, "at most %zu --repo options", ELEMENTSOF(rights));
        r = wiring_parse_repo(*a, project, sizeof project, &rights[n], err);
        if (r < 0)
            return r;
        repo_env_key(project, envk, sizeof envk);
        if (strv_contains((const char *const *)names, project))
            return terok_error_set(err, -EINVAL, "--repo '%s' given twice", project);
        if (strv_contains((const char *const *)keys, envk))
            return terok_error_set(err, -EINVAL,
                                   "--repo '%s' and another project both map to %s; rename one",
                                   project, envk);
        if (strv_extend(&names, project) < 0 || strv_extend(&keys, envk) < 0)
            return terok_error_set(err, -ENOMEM, "out of memory");
        n++;
    }
    r = gate_open(s->registry, TEROK_GATE_CAP_SMART_HTTP, &g, err);
    if (r < 0)
        return terok_error_prefix(err, "--repo needs the gate");
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = tokens_key_load(s->paths.state_dir, key, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        token_binding b = {TOKEN_KIND_GATE, name, names[i], rights[i], 0};
        terok_secret *tok = NULL;
        const void *p;
        size_t len;

        r = gate_grant(&g, name, names[i], rights[i], err);
        if (r < 0) {
            terok_error_prefix(err, "--repo '%s'", names[i]);
            goto out;
        }
        if (strv_extend(&w->granted, names[i]) < 0) {
            (void)gate_revoke(&g, name, names[i], NULL);
            r = terok_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        r = tokens_mint(store_sqlite(st), key, &b, &tok, NULL, err);
        if (r < 0)
            goto out;
        terok_secret_peek(tok, &p, &len);
        r = strv_extendf(&w->env, "%s=http://%.*s@" BRIDGE_GATE_HOSTPORT "/%s.git", keys[i],
                         (int)len, (const char *)p, names[i]);
        if (r >= 0 && i == 0)
            r = strv_extendf(&w->env, "TEROK_GATE_URL=http://%.*s@" BRIDGE_GATE_HOSTPORT "/",
                             (int)len, (const char *)p);
        terok_secret_free(tok);
        if (r < 0) {
            r = terok_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    }
    {
        _cleanup_free_ char *list = strv_join((const char *const *)names, " ");
        if (!list || strv_extendf(&w->env, "TEROK_GATE_REPOS=%s", list) < 0) {
            r = terok_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
    }
    r = gate_client_ensure(s, config_file, err);
    if (r < 0)
        goto out;
    r = gate_client_open(s, name, err);
    if (r < 0)
        goto out;
    w->gate_opened = true;
out:
    sodium_memzero(key, sizeof key);
    return r;
}

int wiring_setup(sandbox *s, const char *name, char *const *want, char *const *repos,
                 int64_t token_ttl_s, const char *config_file, wiring *w, terok_error *err)
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
    if (repos && *repos) {
        r = wire_repos(s, name, repos, config_file, w, err);
        if (r < 0)
            goto fail;
    }
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
        token_binding b = {TOKEN_KIND_PHANTOM, name, rt->name, 0,
                           token_ttl_s > 0 ? (int64_t)time(NULL) + token_ttl_s : 0};
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
    strv_free(w->granted);
    free(w->run_dir);
    *w = (wiring){0};
}

static void unlink_in_run_dir(sandbox *s, const char *name, const char *file)
{
    _cleanup_free_ char *p = NULL;

    if (asprintf(&p, "%s/containers/%s/%s", s->paths.runtime_dir, name, file) >= 0)
        (void)unlink(p);
}

void wiring_rollback(sandbox *s, const char *name, wiring *w)
{
    store *st;
    gate g;

    if (sandbox_store(s, &st, NULL) >= 0) {
        (void)tokens_revoke_container(store_sqlite(st), name, 0, NULL);
        if (w->ssh_wired)
            (void)sshkeys_container_forget(store_sqlite(st), name, NULL);
    }
    if (w->gate_opened)
        (void)gate_client_close(s, name, NULL);
    unlink_in_run_dir(s, name, "gate.sock");
    if (w->granted && gate_open(s->registry, 0, &g, NULL) >= 0)
        STRV_FOREACH(p, w->granted)
    (void)gate_revoke(&g, name, *p, NULL);
    if (w->vault_opened)
        (void)vault_client_close(s, name, NULL);
    if (w->dir_created && w->run_dir)
        (void)rmdir(w->run_dir);
    wiring_done(w);
}

static int collect_repo(void *ud, const token_info *info, int kind, const char *masked,
                        int64_t created_at)
{
    char ***repos = ud;

    if (kind != TOKEN_KIND_GATE || strv_contains((const char *const *)*repos, info->target))
        return 0;
    return strv_extend(repos, info->target) < 0 ? -ENOMEM : 0;
}

int wiring_teardown(sandbox *s, const char *name, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *sock = NULL;
    _cleanup_strv_free_ char **repos = NULL;
    store *st;
    int r;

    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    /* The repos it was granted are those of its gate tokens: the backend's views go first, so
     * a failure leaves the tokens for the next (idempotent) rm to find. */
    r = tokens_list(store_sqlite(st), name, collect_repo, &repos, err);
    if (r < 0)
        return r;
    if (repos) {
        gate g;
        (void)gate_client_close(s, name, NULL);
        r = gate_open(s->registry, 0, &g, err);
        if (r < 0)
            return terok_error_prefix(err, "revoking the repos of '%s'", name);
        STRV_FOREACH(p, repos)
        {
            r = gate_revoke(&g, name, *p, err);
            if (r < 0 && r != -ENOENT)
                return terok_error_prefix(err, "revoking '%s' of '%s'", *p, name);
        }
    }
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
    unlink_in_run_dir(s, name, "gate.sock");
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
