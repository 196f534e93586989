/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-daemon.c: `terok-sandbox gate serve`. One evloop holds the control socket
 * (<runtime>/gate.ctl: open/close a container's socket, status, stop), the signals and the audit
 * flush; the container sockets (<runtime>/containers/<name>/gate.sock) and optional loopback TCP
 * listeners are libmicrohttpd daemons with a thread per connection (gate-http.c), because the
 * backend's serve() blocks while git runs. Tokens are checked against the store under a lock
 * (the store's connection is single-threaded). It never sees a credential: upstream work is
 * the CLI's. Logs go to stderr, never a token. */
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/audit.h"
#include "daemon/ctl.h"
#include "daemon/spawn.h"
#include "error.h"
#include "gate-serve/gate-client.h"
#include "gate-serve/gate-daemon.h"
#include "gate-serve/gate-http.h"
#include "gate.h"
#include "log.h"
#include "paths.h"
#include "tokens.h"
#include "util/macro.h"

#define AUDIT_FLUSH_MS 200
#define AUDIT_MAX_QUEUED 2048

typedef struct gate_daemon {
    sandbox *sb;
    evloop *loop;
    sqlite3 *db;
    pthread_mutex_t db_mu; /* the store connection is opened without SQLite's own mutex */
    uint8_t key[TOKEN_KEY_BYTES];
    gate gate;
    gate_hooks hooks;
    gate_http *http;
    ctl_server *ctl;

    audit_queue audit;
    int64_t audit_timer; /* loop thread only */
} gate_daemon;

/* ---- hooks (connection and worker threads) ---- */

static int hook_check(void *ud, const char *container, const char *repo, const char *token,
                      size_t len, token_verdict *v, uint32_t *rights, terok_error *err)
{
    gate_daemon *d = ud;
    token_info info = {0};
    int r;

    pthread_mutex_lock(&d->db_mu);
    r = tokens_check(d->db, d->key, TOKEN_KIND_GATE, token, len, container, repo,
                     (int64_t)time(NULL), v, &info, err);
    pthread_mutex_unlock(&d->db_mu);
    if (r >= 0)
        *rights = *v == TOKEN_VALID ? info.rights : 0;
    return r;
}

static int hook_serve(void *ud, const terok_gate_http *req, terok_error *err)
{
    gate_daemon *d = ud;

    return gate_serve(&d->gate, req, err);
}

static int hook_authorize(void *ud, const char *container, const char *repo, uint32_t operation,
                          uint32_t *ret_decision, terok_error *err)
{
    gate_daemon *d = ud;

    return gate_authorize(&d->gate, container, repo, operation, ret_decision, err);
}

static void hook_audit(void *ud, const gate_audit *a)
{
    gate_daemon *d = ud;
    audit_row row;

    log_debug("gate: '%s' %s %s of '%s' -> %d %s (%" PRIu64 " B in, %" PRIu64 " B out, %" PRId64
              " ms)",
              a->container, a->method, a->path, strna(a->repo), a->status, a->outcome, a->bytes_in,
              a->bytes_out, a->duration_us / 1000);
    if (audit_row_make(&row, a->container, a->repo, a->method, a->path, a->outcome, a->status,
                       a->bytes_in, a->bytes_out, a->duration_us) == 0)
        (void)audit_queue_add(&d->audit, &row, 1);
    evloop_wake(d->loop); /* the loop arms the flush timer */
}

/* ---- audit flush (loop thread) ---- */

static int on_audit_timer(evloop *l, void *ud)
{
    gate_daemon *d = ud;

    d->audit_timer = 0;
    (void)audit_queue_flush(&d->audit, d->db, &d->db_mu, "gate");
    return 0;
}

static void on_wake(evloop *l, int *timeout_ms, void *ud)
{
    gate_daemon *d = ud;
    bool pending;

    pending = audit_queue_length(&d->audit) > 0;
    if (pending && !d->audit_timer)
        d->audit_timer = evloop_add_timer(l, AUDIT_FLUSH_MS, on_audit_timer, d);
}

/* ---- container sockets ---- */

static int open_container(gate_daemon *d, const char *name, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *sock = NULL;
    int r;

    r = daemon_container_dir(d->sb, name, &dir, err);
    if (r < 0)
        return r;
    if (gate_socket_path(d->sb->paths.runtime_dir, name, &sock) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    return gate_http_listen_unix(d->http, name, sock, err);
}

static int has_gate_token(void *ud, const token_info *info, int kind, const char *masked,
                          int64_t created_at)
{
    bool *found = ud;

    if (kind == TOKEN_KIND_GATE)
        *found = true;
    return 0;
}

static int reopen_cb(void *ud, const container_rec *rec)
{
    gate_daemon *d = ud;
    terok_error err = TEROK_ERROR_INIT;
    bool found = false;

    /* Only containers wired to a repo had a gate socket. */
    (void)tokens_list(d->db, rec->name, has_gate_token, &found, NULL);
    if (found && open_container(d, rec->name, &err) < 0)
        log_warning("gate: cannot reopen the socket of '%s': %s", rec->name,
                    terok_error_message(&err));
    else if (found)
        log_info("gate: reopened the socket of '%s'", rec->name);
    terok_error_clear(&err);
    return 0;
}

static int ctl_open(void *ud, const char *container, terok_error *err)
{
    return open_container(ud, container, err);
}

static void ctl_close(void *ud, const char *container)
{
    /* waits for that container's connection threads: its requests are short or dead */
    gate_http_close(((gate_daemon *)ud)->http, container);
}

static void ctl_status(void *ud, json_object *reply)
{
    gate_daemon *d = ud;

    json_object_object_add(reply, "listeners",
                           json_object_new_int64((int64_t)gate_http_listeners(d->http)));
    json_object_object_add(reply, "backend", json_object_new_string(d->gate.plugin->name));
}

static void ctl_stop(void *ud)
{
    evloop_exit(((gate_daemon *)ud)->loop, 0);
}

static json_object *on_ctl(void *ud, const struct ucred *peer, json_object *req, terok_error *err)
{
    static const ctl_container_ops ops = {"gate", ctl_open, ctl_close, ctl_status, ctl_stop};

    return ctl_container_dispatch(&ops, ud, peer, req, err);
}

static int on_signal(evloop *l, int signo, uint32_t events, void *ud)
{
    log_info("gate: signal %d, shutting down", signo);
    evloop_exit(l, 0);
    return 0;
}

int gate_daemon_run(sandbox *sb, const gate_daemon_opts *o, terok_error *err)
{
    gate_daemon d = {.sb = sb};
    _cleanup_free_ char *ctl_path = NULL;
    store *st = NULL;
    int r;

    pthread_mutex_init(&d.db_mu, NULL);
    audit_queue_init(&d.audit, AUDIT_MAX_QUEUED);
    /* Every thread (MHD's, the workers) inherits this mask: the loop's signalfd alone takes
     * SIGTERM/SIGINT, never a connection thread's default action. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    r = sandbox_store(sb, &st, err);
    if (r < 0)
        goto out;
    d.db = store_sqlite(st);
    r = tokens_key_load(sb->paths.state_dir, d.key, err);
    if (r < 0)
        goto out;
    r = gate_open(sb->registry, TEROK_GATE_CAP_SMART_HTTP, &d.gate, err);
    if (r < 0) {
        terok_error_prefix(err, "gate backend");
        goto out;
    }
    r = evloop_new(&d.loop);
    if (r < 0) {
        terok_error_set(err, r, "cannot create the event loop");
        goto out;
    }
    d.hooks = (gate_hooks){hook_check, hook_serve, hook_audit, &d, NULL};
    /* A backend without a policy of its own leaves the decision to the token. */
    if (d.gate.plugin->ops.gate.authorize)
        d.hooks.authorize = hook_authorize;
    r = gate_http_new(&d.hooks, o->max_workers, &d.http, err);
    if (r < 0)
        goto out;
    evloop_on_wake(d.loop, on_wake, &d);
    r = mkdir_safe(sb->paths.runtime_dir, 0700, err);
    if (r < 0)
        goto out;
    r = gate_ctl_path(sb->paths.runtime_dir, &ctl_path);
    if (r < 0) {
        terok_error_set(err, r, "out of memory");
        goto out;
    }
    r = ctl_server_new(d.loop, ctl_path, on_ctl, &d, &d.ctl, err);
    if (r < 0)
        goto out;
    for (size_t i = 0; i < o->n_tcp; i++) {
        uint16_t port = 0;
        r = gate_http_listen_tcp(d.http, o->tcp[i].container, o->tcp[i].address, o->tcp[i].port,
                                 &port, err);
        if (r < 0)
            goto out;
        log_notice("gate: listening on %s:%u for '%s'", o->tcp[i].address, port,
                   o->tcp[i].container);
    }
    /* Sockets of containers that exist survive a daemon restart. The TCP listeners already
     * serve: the store's connection is shared with their token checks. */
    pthread_mutex_lock(&d.db_mu);
    (void)store_container_list(st, reopen_cb, &d, NULL);
    pthread_mutex_unlock(&d.db_mu);
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
    log_info("gate: serving with backend '%s' on '%s'", d.gate.plugin->name, ctl_path);
    r = evloop_run(d.loop);
    if (r < 0)
        terok_error_set(err, r, "event loop failed: %s", strerror(-r));
out:
    ctl_server_free(d.ctl);
    gate_http_free(d.http); /* stops the listeners, waits for running git requests */
    if (d.db)
        (void)audit_queue_flush(&d.audit, d.db, &d.db_mu, "gate");
    audit_queue_done(&d.audit);
    evloop_free(d.loop);
    sodium_memzero(d.key, sizeof d.key);
    pthread_mutex_destroy(&d.db_mu);
    return r;
}
