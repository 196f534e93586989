/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-daemon.c: `terok-sandbox vault serve`: the phantom-token broker as a daemon. One
 * evloop holds the control socket (<runtime>/vault.ctl: open/close a container's socket,
 * status), one listener per container (<runtime>/containers/<name>/vault.sock), optional
 * loopback TCP listeners, and libcurl. It only reads tokens and credentials and writes audit
 * rows: it never touches git, never starts containers. Logs go to stderr (the caller redirects
 * them), never a token or a credential. */
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "broker/proxy.h"
#include "broker/ssh-signer.h"
#include "broker/vault-daemon.h"
#include "daemon/ctl.h"
#include "error.h"
#include "log.h"
#include "sshkeys.h"
#include "tokens.h"
#include "util/macro.h"
#include "vault.h"

#define AUDIT_FLUSH_ROWS 512
#define AUDIT_FLUSH_MS 200

typedef struct audit_row {
    char *container, *route, *method, *path, *outcome;
    int status;
    uint64_t bytes_in, bytes_out;
    int64_t duration_us, at;
} audit_row;

/* Credentials are cached for a few seconds: a vault read per request would cost more than the
 * proxying itself. Values stay in terok_secret (locked, wiped); a changed credential is picked
 * up when its entry expires. */
#define CRED_CACHE_MS 5000
typedef struct cred_cache {
    char *name;
    terok_secret *secret;
    int64_t expires;
    struct cred_cache *next;
} cred_cache;

typedef struct vault_daemon {
    sandbox *sb;
    evloop *loop;
    sqlite3 *db;
    uint8_t key[TOKEN_KEY_BYTES];
    vault vault;
    bool have_vault;
    routes routes;
    broker_hooks hooks;
    proxy *proxy;
    ssh_signer *signer; /* ssh-agent.sock of containers run with an SSH scope */
    ctl_server *ctl;
    audit_row *audit;
    size_t n_audit;
    int64_t audit_timer;
    cred_cache *creds;
} vault_daemon;

/* ---- hooks ---- */

static int hook_check(void *ud, const char *container, const char *route_name, const char *token,
                      size_t len, token_verdict *v, terok_error *err)
{
    vault_daemon *d = ud;

    return tokens_check(d->db, d->key, TOKEN_KIND_PHANTOM, token, len, container, route_name,
                        (int64_t)time(NULL), v, NULL, err);
}

typedef struct type_probe {
    const char *name;
    bool ssh;
} type_probe;

static int probe_type(void *ud, const terok_vault_entry *e)
{
    type_probe *p = ud;

    if (streq(e->name, p->name) && e->type && strncmp(e->type, "ssh-", 4) == 0)
        p->ssh = true;
    return 0;
}

static int hook_credential(void *ud, const char *name, const terok_secret **ret, terok_error *err)
{
    vault_daemon *d = ud;
    int64_t now = evloop_now_ms();
    terok_secret *s = NULL;
    cred_cache *c;
    int r;

    if (!d->have_vault)
        return terok_error_set(err, -ENODEV, "no vault backend configured");
    for (cred_cache **i = &d->creds; *i;) {
        if ((*i)->expires <= now) { /* drop every stale entry, not only this name's */
            cred_cache *x = *i;
            *i = x->next;
            terok_secret_free(x->secret);
            free(x->name);
            free(x);
        } else if (streq((*i)->name, name)) {
            *ret = (*i)->secret;
            return 0;
        } else
            i = &(*i)->next;
    }
    /* An SSH key is for the signer only: a route naming one would send the private key upstream. */
    type_probe tp = {name, false};
    r = vault_list(&d->vault, probe_type, &tp, err);
    if (r < 0)
        return r;
    if (tp.ssh)
        return terok_error_set(err, -EPERM,
                               "vault entry '%s' is an SSH key: a route cannot send it as a "
                               "credential",
                               name);
    r = vault_get(&d->vault, name, &s, err);
    if (r < 0)
        return r;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        terok_secret_free(s);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    c->secret = s;
    c->expires = now + CRED_CACHE_MS;
    c->next = d->creds;
    d->creds = c;
    *ret = s;
    return 0;
}

static int flush_audit(vault_daemon *d)
{
    sqlite3_stmt *st = NULL;

    if (d->n_audit == 0)
        return 0;
    if (sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db,
                           "INSERT INTO audit(at, service, container, target, method, path,"
                           " status, outcome, bytes_in, bytes_out, duration_us)"
                           " VALUES (?,'vault',?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        log_warning("vault: cannot write audit rows: %s", sqlite3_errmsg(d->db));
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return -EIO; /* rows stay queued; retried at the next flush */
    }
    for (size_t i = 0; i < d->n_audit; i++) {
        audit_row *a = &d->audit[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, a->at);
        sqlite3_bind_text(st, 2, a->container, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, a->route, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, a->method, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, a->path, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, a->status);
        sqlite3_bind_text(st, 7, a->outcome, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, (int64_t)a->bytes_in);
        sqlite3_bind_int64(st, 9, (int64_t)a->bytes_out);
        sqlite3_bind_int64(st, 10, a->duration_us);
        (void)sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return -EIO;
    }
    for (size_t i = 0; i < d->n_audit; i++) {
        audit_row *a = &d->audit[i];
        free(a->container);
        free(a->route);
        free(a->method);
        free(a->path);
        free(a->outcome);
    }
    d->n_audit = 0;
    return 0;
}

static int on_audit_timer(evloop *l, void *ud)
{
    vault_daemon *d = ud;

    d->audit_timer = 0;
    (void)flush_audit(d);
    return 0;
}

static void hook_audit(void *ud, const broker_audit *a)
{
    vault_daemon *d = ud;
    audit_row *v;

    /* Rows are batched: one transaction per flush keeps the audit off the request path. */
    if (d->n_audit >= 4 * AUDIT_FLUSH_ROWS)
        return; /* the store is not keeping up; do not grow without bound */
    v = reallocarray(d->audit, d->n_audit + 1, sizeof(*v));
    if (!v)
        return;
    d->audit = v;
    v[d->n_audit++] = (audit_row){
        .container = strdup(a->container),
        .route = a->route ? strdup(a->route) : NULL,
        .method = strdup(a->method ? a->method : ""),
        .path = a->path ? strdup(a->path) : NULL,
        .outcome = strdup(a->outcome ? a->outcome : ""),
        .status = a->status,
        .bytes_in = a->bytes_in,
        .bytes_out = a->bytes_out,
        .duration_us = a->duration_us,
        .at = (int64_t)time(NULL),
    };
    if (d->n_audit >= AUDIT_FLUSH_ROWS)
        (void)flush_audit(d);
    else if (!d->audit_timer)
        d->audit_timer = evloop_add_timer(d->loop, AUDIT_FLUSH_MS, on_audit_timer, d);
}

/* ---- container sockets ---- */

int vault_socket_path(const char *runtime_dir, const char *container, char **ret)
{
    return asprintf(ret, "%s/containers/%s/vault.sock", runtime_dir, container) < 0 ? -ENOMEM : 0;
}

static int open_container(vault_daemon *d, const char *name, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *sock = NULL;
    int r;

    if (!container_name_is_valid(name))
        return terok_error_set(err, -EINVAL, "invalid container name '%s'", name);
    if (asprintf(&dir, "%s/containers", d->sb->paths.runtime_dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    /* <runtime>/containers 0700 keeps other users out; <name>/ 0711 lets the container's
     * mapped uid reach the 0666 socket through the bind mount (MACHINE.md §13.1). */
    r = mkdir_safe(dir, 0700, err);
    if (r < 0)
        return r;
    free(dir);
    dir = NULL;
    if (asprintf(&dir, "%s/containers/%s", d->sb->paths.runtime_dir, name) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return terok_error_set(err, negative_errno(), "cannot create '%s': %s", dir,
                               strerror(errno));
    (void)chmod(dir, 0711);
    r = vault_socket_path(d->sb->paths.runtime_dir, name, &sock);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    r = proxy_listen_unix(d->proxy, name, sock, err);
    if (r < 0)
        return r;
    r = ssh_signer_open(d->signer, name, dir, err);
    if (r > 0)
        log_info("vault: ssh-agent socket of '%s' open", name);
    return r < 0 ? r : 0;
}

static int reopen_cb(void *ud, const container_rec *rec)
{
    vault_daemon *d = ud;
    terok_error err = TEROK_ERROR_INIT;

    if (open_container(d, rec->name, &err) < 0)
        log_warning("vault: cannot reopen the socket of '%s': %s", rec->name,
                    terok_error_message(&err));
    terok_error_clear(&err);
    return 0;
}

static json_object *on_ctl(void *ud, const struct ucred *peer, json_object *req, terok_error *err)
{
    vault_daemon *d = ud;
    json_object *op = NULL, *name = NULL, *reply;

    json_object_object_get_ex(req, "op", &op);
    json_object_object_get_ex(req, "container", &name);
    if (!op || !json_object_is_type(op, json_type_string)) {
        terok_error_set(err, -EINVAL, "request without an 'op'");
        return NULL;
    }
    const char *o = json_object_get_string(op);
    if (streq(o, "open") || streq(o, "close")) {
        if (!name || !json_object_is_type(name, json_type_string)) {
            terok_error_set(err, -EINVAL, "'%s' needs a 'container'", o);
            return NULL;
        }
        const char *n = json_object_get_string(name);
        if (streq(o, "open")) {
            if (open_container(d, n, err) < 0)
                return NULL;
            log_info("vault: opened the socket of '%s'", n);
        } else {
            proxy_close(d->proxy, n);
            ssh_signer_close(d->signer, n);
            log_info("vault: closed the socket of '%s'", n);
        }
    } else if (streq(o, "stop")) {
        log_info("vault: stop requested by uid %u", (unsigned)peer->uid);
        evloop_exit(d->loop, 0);
    } else if (!streq(o, "status") && !streq(o, "ping")) {
        terok_error_set(err, -EINVAL, "unknown op '%s'", o);
        return NULL;
    }
    reply = json_object_new_object();
    json_object_object_add(reply, "ok", json_object_new_boolean(1));
    json_object_object_add(reply, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(reply, "listeners",
                           json_object_new_int64((int64_t)proxy_listeners(d->proxy)));
    json_object_object_add(reply, "routes", json_object_new_int64((int64_t)d->routes.n));
    json_object_object_add(reply, "ssh_listeners",
                           json_object_new_int64((int64_t)ssh_signer_listeners(d->signer)));
    return reply;
}

static int on_signal(evloop *l, int signo, uint32_t events, void *ud)
{
    log_info("vault: signal %d, shutting down", signo);
    evloop_exit(l, 0);
    return 0;
}

int vault_daemon_run(sandbox *sb, const vault_daemon_opts *o, terok_error *err)
{
    vault_daemon d = {.sb = sb};
    _cleanup_free_ char *ctl_path = NULL;
    store *st = NULL;
    int r;

    r = sandbox_store(sb, &st, err);
    if (r < 0)
        return r;
    d.db = store_sqlite(st);
    r = tokens_key_load(sb->paths.state_dir, d.key, err);
    if (r < 0)
        return r;
    r = routes_from_config(sb->config, &d.routes, err);
    if (r < 0)
        return terok_error_prefix(err, "vault routes");
    if (registry_backend_name(sb->registry, TEROK_PLUGIN_KIND_VAULT)) {
        r = vault_open(sb->registry, 0, &d.vault, err);
        if (r < 0)
            goto out;
        d.have_vault = true;
    }
    r = evloop_new(&d.loop);
    if (r < 0) {
        terok_error_set(err, r, "cannot create the event loop");
        goto out;
    }
    d.hooks = (broker_hooks){hook_check, hook_credential, hook_audit, &d};
    r = proxy_new(d.loop, &d.routes, &d.hooks, o->ca_file, &d.proxy, err);
    if (r < 0)
        goto out;
    r = sshkeys_schema(d.db, err);
    if (r >= 0 &&
        ssh_signer_new(d.loop, d.have_vault ? &d.vault : NULL, d.db, hook_audit, &d, &d.signer) < 0)
        r = terok_error_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        goto out;
    r = mkdir_safe(sb->paths.runtime_dir, 0700, err);
    if (r < 0)
        goto out;
    r = vault_ctl_path(sb->paths.runtime_dir, &ctl_path);
    if (r < 0)
        goto out;
    r = ctl_server_new(d.loop, ctl_path, on_ctl, &d, &d.ctl, err);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < o->n_tcp; i++) {
        uint16_t port = 0;
        r = proxy_listen_tcp(d.proxy, o->tcp[i].container, o->tcp[i].address, o->tcp[i].port, &port,
                             err);
        if (r < 0)
            goto out;
        log_notice("vault: listening on %s:%u for '%s'", o->tcp[i].address, port,
                   o->tcp[i].container);
    }
    /* Sockets of containers that exist survive a daemon restart. */
    (void)store_container_list(st, reopen_cb, &d, NULL);
    r = evloop_add_signal(d.loop, SIGTERM, on_signal, &d);
    if (r >= 0)
        r = evloop_add_signal(d.loop, SIGINT, on_signal, &d);
    if (r < 0) {
        terok_error_set(err, r, "cannot handle signals: %s", strerror(-r));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if (o->ready)
        o->ready(o->ready_userdata);
    log_info("vault: serving %zu route(s) on '%s'", d.routes.n, ctl_path);
    r = evloop_run(d.loop);
    if (r < 0)
        terok_error_set(err, r, "event loop failed: %s", strerror(-r));
out:
    flush_audit(&d);
    free(d.audit);
    while (d.creds) {
        cred_cache *x = d.creds;
        d.creds = x->next;
        terok_secret_free(x->secret);
        free(x->name);
        free(x);
    }
    ctl_server_free(d.ctl);
    ssh_signer_free(d.signer);
    proxy_free(d.proxy);
    evloop_free(d.loop);
    routes_done(&d.routes);
    sodium_memzero(d.key, sizeof d.key);
    return r;
}
