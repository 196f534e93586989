/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-daemon.c: `terok-sandbox vault serve`: the phantom-token broker as a daemon. One
 * evloop holds the control socket (<runtime>/vault.ctl: open/close a container's socket,
 * status), one listener per container (<runtime>/containers/<name>/vault.sock), optional
 * loopback TCP listeners, and libcurl. It only reads tokens and credentials and writes audit
 * rows: it never touches git, never starts containers. Logs go to stderr (the caller redirects
 * them), never a token or a credential. */
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
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

/* Phantom tokens found in the store are remembered (by a keyed BLAKE2b of the token, never the
 * token itself) so the hot path needs no SQL (one read() of an empty inotify queue). The whole
 * cache is dropped whenever another connection committed to the state database: an inotify watch on
 * the database's directory (read by every check, and by the loop as an "urgent" watch when idle)
 * marks the cache suspect on any write to the database or its WAL, and the next check
 * then asks SQLite (`PRAGMA data_version`, which changes only for commits by *other*
 * connections, so our own audit writes do not flush it). `vault tokens revoke`, `rm` and a new
 * `run` therefore take effect on the very next request. Without inotify every check asks SQLite.
 * Expiry is re-checked against the clock each time. Unknown tokens are not cached: a flood of
 * made-up tokens cannot grow it. */
#define TOKEN_CACHE_MAX 4096
typedef struct token_cache_entry {
    uint8_t hash[crypto_generichash_BYTES];
    token_info info;
} token_cache_entry;

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
    uint8_t tc_key[crypto_generichash_KEYBYTES];
    token_cache_entry *tc;
    size_t n_tc;
    sqlite3_stmt *data_version;
    int64_t tc_version;
    int inotify_fd;
    char *db_base; /* the database's file name: events for <db_base>* mark the cache suspect */
    bool tc_suspect;
} vault_daemon;

/* ---- hooks ---- */

static void token_cache_clear(vault_daemon *d)
{
    if (d->tc)
        sodium_memzero(d->tc, d->n_tc * sizeof(*d->tc));
    d->n_tc = 0;
}

/* Drop the cache when anyone else wrote the state database since we last looked. */
static void token_cache_sync(vault_daemon *d)
{
    int64_t v = -1;

    if (!d->data_version &&
        sqlite3_prepare_v3(d->db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                           &d->data_version, NULL) != SQLITE_OK)
        d->data_version = NULL;
    if (d->data_version) {
        if (sqlite3_step(d->data_version) == SQLITE_ROW)
            v = sqlite3_column_int64(d->data_version, 0);
        sqlite3_reset(d->data_version);
    }
    if (v < 0 || v != d->tc_version)
        token_cache_clear(d);
    d->tc_version = v; /* -1 (cannot tell) never matches: nothing is served from the cache */
}

static int on_db_event(evloop *l, int fd, uint32_t events, void *ud)
{
    vault_daemon *d = ud;
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    while ((n = read(fd, b, sizeof b)) > 0)
        for (char *p = b; p < b + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_Q_OVERFLOW) ||
                (e->len && strncmp(e->name, d->db_base, strlen(d->db_base)) == 0))
                d->tc_suspect = true;
            p += sizeof(*e) + e->len;
        }
    return 0;
}

/* Watch the state database's directory; on failure every token check asks SQLite instead. */
static void watch_db(vault_daemon *d)
{
    const char *path = sqlite3_db_filename(d->db, "main");
    _cleanup_free_ char *dir = NULL;
    const char *slash;

    d->inotify_fd = -EBADF;
    if (!path || !*path || !(slash = strrchr(path, '/')))
        return;
    dir = strndup(path, (size_t)(slash - path));
    d->db_base = strdup(slash + 1);
    if (!dir || !d->db_base)
        return;
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd < 0)
        return;
    if (inotify_add_watch(d->inotify_fd, dir,
                          IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO) < 0 ||
        evloop_add_io(d->loop, d->inotify_fd, EPOLLIN, on_db_event, d) < 0 ||
        evloop_set_urgent(d->loop, d->inotify_fd) < 0) {
        log_warning("vault: cannot watch '%s' (%s); every token check reads the store", dir,
                    strerror(errno));
        close(d->inotify_fd);
        d->inotify_fd = -EBADF;
    }
}

static token_verdict verdict_of(const token_info *i, const char *container, const char *target,
                                int64_t now)
{
    if (i->expires_at && now >= i->expires_at)
        return TOKEN_EXPIRED;
    if (!container || strcmp(i->container, container) != 0)
        return TOKEN_WRONG_CONTAINER;
    if (target && strcmp(i->target, target) != 0)
        return TOKEN_WRONG_TARGET;
    return TOKEN_VALID;
}

static int hook_check(void *ud, const char *container, const char *route_name, const char *token,
                      size_t len, token_verdict *v, terok_error *err)
{
    vault_daemon *d = ud;
    uint8_t h[crypto_generichash_BYTES];
    int64_t now = (int64_t)time(NULL);
    token_info info;
    int r;

    /* Read the watch here too, not only from the loop: MHD may read a keep-alive client's next
     * request in the same pass that sent the previous answer, before the loop looks at the
     * inotify fd again (a revocation between the two was missed under ASan in CI). One
     * non-blocking read() that finds nothing is the whole cost. */
    if (d->inotify_fd >= 0)
        (void)on_db_event(d->loop, d->inotify_fd, EPOLLIN, d);
    if (d->tc_suspect || d->inotify_fd < 0) {
        d->tc_suspect = false;
        token_cache_sync(d);
    }
    crypto_generichash(h, sizeof h, (const uint8_t *)token, len, d->tc_key, sizeof d->tc_key);
    for (size_t i = 0; i < d->n_tc; i++)
        if (sodium_memcmp(d->tc[i].hash, h, sizeof h) == 0) {
            *v = verdict_of(&d->tc[i].info, container, route_name, now);
            return 0;
        }
    r = tokens_check(d->db, d->key, TOKEN_KIND_PHANTOM, token, len, container, route_name, now, v,
                     &info, err);
    if (r < 0 || *v == TOKEN_MALFORMED || *v == TOKEN_UNKNOWN || d->tc_version < 0)
        return r;
    if (d->n_tc >= TOKEN_CACHE_MAX)
        token_cache_clear(d);
    if (!d->tc && !(d->tc = calloc(TOKEN_CACHE_MAX, sizeof(*d->tc))))
        return 0; /* no cache, still a correct answer */
    memcpy(d->tc[d->n_tc].hash, h, sizeof h);
    d->tc[d->n_tc].info = info;
    d->n_tc++;
    return 0;
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

static void cred_cache_drop(vault_daemon *d, const char *name)
{
    for (cred_cache **i = &d->creds; *i;) {
        if (!name || streq((*i)->name, name)) {
            cred_cache *x = *i;
            *i = x->next;
            terok_secret_free(x->secret);
            free(x->name);
            free(x);
        } else
            i = &(*i)->next;
    }
}

/* A refreshed OAuth token set: written to the vault (one transaction in vault-sqlite), and the
 * cached copy dropped so the next request reads it back. */
static int hook_put(void *ud, const char *name, const terok_secret *value, terok_error *err)
{
    vault_daemon *d = ud;

    if (!d->have_vault)
        return terok_error_set(err, -ENODEV, "no vault backend configured");
    cred_cache_drop(d, name);
    return vault_put(&d->vault, name, value, "oauth", NULL, err);
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
    vault_daemon d = {.sb = sb, .inotify_fd = -EBADF};
    _cleanup_free_ char *ctl_path = NULL;
    const char *ca_file;
    store *st = NULL;
    int r;

    /* Memory (docs/vault.md, performance): one malloc arena per thread would give libcurl's
     * resolver threads arenas of their own; and buffers of 128 KiB and more (streaming bodies)
     * go to mmap so they are returned when the transfer ends instead of pinning the heap. */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    r = sandbox_store(sb, &st, err);
    if (r < 0)
        return r;
    d.db = store_sqlite(st);
    /* The daemon only probes tokens (cached) and appends audit rows: SQLite's default 2 MiB
     * page cache would fill with audit pages it never reads again. */
    (void)sqlite3_exec(d.db, "PRAGMA cache_size = -256", NULL, NULL, NULL);
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
    if (sodium_init() < 0) {
        r = terok_error_set(err, -EIO, "cannot initialise libsodium");
        goto out;
    }
    randombytes_buf(d.tc_key, sizeof d.tc_key);
    watch_db(&d);
    d.hooks = (broker_hooks){hook_check, hook_credential, hook_audit, &d, hook_put};
    /* --ca-file wins over [vault] ca-file; an unreadable bundle is an error now, not a TLS
     * failure on every request later */
    ca_file = o->ca_file ? o->ca_file : config_get(sb->config, "vault", "ca-file");
    if (ca_file && *ca_file && access(ca_file, R_OK) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot read the CA bundle '%s': %s", ca_file,
                            strerror(errno));
        goto out;
    }
    r = proxy_new(d.loop, &d.routes, &d.hooks, ca_file && *ca_file ? ca_file : NULL, &d.proxy, err);
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
    ctl_server_free(d.ctl);
    proxy_free(d.proxy); /* MHD reports the requests it closes: audit rows still come */
    flush_audit(&d);
    free(d.audit);
    cred_cache_drop(&d, NULL);
    token_cache_clear(&d);
    free(d.tc);
    if (d.inotify_fd >= 0) {
        evloop_remove_io(d.loop, d.inotify_fd);
        close(d.inotify_fd);
    }
    free(d.db_base);
    sqlite3_finalize(d.data_version);
    ssh_signer_free(d.signer);
    evloop_free(d.loop);
    routes_done(&d.routes);
    sodium_memzero(d.key, sizeof d.key);
    return r;
}
