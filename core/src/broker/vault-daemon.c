/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-daemon.c: `terok-sandbox vault serve`: the phantom-token broker as a daemon. The
 * main thread's evloop holds the control socket (<runtime>/vault.ctl: open/close a container's
 * socket, status), the ssh-agent sockets, signals and the audit flush; N worker threads
 * ([vault] workers, default one per online CPU) each run an evloop with their own libmicrohttpd
 * daemons on the same listening sockets (a dup of each container's socket; SO_REUSEPORT for the
 * loopback TCP listeners) and their own libcurl multi, so a connection lives on one worker from
 * accept to close. Shared: the token cache (one short lock), the SQLite connection and the vault
 * (a lock), the audit queue (batches handed to the main loop). It only reads tokens and
 * credentials and writes audit rows: it never touches git, never starts containers. Logs go to
 * stderr (the caller redirects them), never a token or a credential. */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>

#include "broker/proxy.h"
#include "broker/ssh-signer.h"
#include "broker/vault-daemon.h"
#include "daemon/audit.h"
#include "daemon/ctl.h"
#include "daemon/spawn.h"
#include "daemon/httpd.h"
#include "error.h"
#include "log.h"
#include "sshkeys.h"
#include "tokens.h"
#include "util/macro.h"
#include "util/strv.h"
#include "vault.h"

#define AUDIT_FLUSH_ROWS 512
#define AUDIT_FLUSH_MS 200
#define AUDIT_HANDOVER_ROWS 64 /* a worker hands its rows to the main loop in batches */
#define AUDIT_HANDOVER_MS 50
#define WORKERS_MAX 64

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
 * token itself) so the hot path needs no SQL and no syscall. The whole cache is dropped whenever
 * another connection committed to the state database: each check compares the token epoch
 * (tokens.h: a counter next to the database that every token write of ours bumps after its
 * commit, mapped here read-only) and, on a change, asks SQLite (`PRAGMA data_version`, which
 * changes only for commits by *other* connections, so our own audit writes do not flush it).
 * `vault tokens revoke`, `rm` and a new `run` therefore take effect on the very next request.
 * Other writers (the sqlite3 shell, a writer whose bump failed) are caught by an inotify watch on
 * the database's directory that the worker's loop reads, a loop turn later. Without the epoch
 * file every check reads that watch (one non-blocking read()); without inotify every check asks
 * SQLite. Expiry is re-checked against the clock each time. Unknown tokens are not cached: a
 * flood of made-up tokens cannot grow it. */
#define TOKEN_CACHE_MAX 4096
typedef struct token_cache_entry {
    uint8_t hash[crypto_generichash_BYTES];
    token_info info;
} token_cache_entry;

typedef struct vault_daemon vault_daemon;

/* One worker thread: a loop, a proxy (its MHD daemons and libcurl multi), a private credential
 * cache and a batch of audit rows. The main thread reaches it through call(). */
typedef struct worker {
    vault_daemon *d;
    pthread_t thread;
    bool running;
    evloop *loop;
    proxy *proxy;
    broker_hooks hooks;
    cred_cache *creds;
    uint64_t cred_gen; /* d->cred_gen when the cache was last valid */
    audit_row *audit;
    size_t n_audit;
    int64_t audit_timer;
    pthread_mutex_t mu; /* the call slot */
    pthread_cond_t cv;
    int (*call)(struct worker *w, void *arg, terok_error *err);
    void *call_arg;
    bool call_done;
    int call_r;
    terok_error *call_err;
    /* The worker's own inotify watch of the state database's directory, read by its loop (and
     * by each token check when there is no epoch); -EBADF: see store_always. */
    int inotify_fd;
    bool tc_suspect;
    bool store_always; /* no watch: every token check asks SQLite */
} worker;

/* A container's socket as the main thread holds it: workers serve dups of fd. */
typedef struct csock {
    char *container;
    char *path;
    int fd;
    struct csock *next;
} csock;

struct vault_daemon {
    sandbox *sb;
    evloop *loop; /* the main thread's */
    sqlite3 *db;
    uint8_t key[TOKEN_KEY_BYTES];
    vault vault;
    bool have_vault;
    routes routes;
    const char *ca_file;
    ssh_signer *signer; /* ssh-agent.sock of containers run with an SSH scope */
    ctl_server *ctl;
    worker *workers;
    size_t n_workers;
    csock *socks;
    /* db_mu guards d->db and d->vault (workers read tokens and credentials, the main thread
     * writes audit rows and signs); recursive, so startup can hold it around a container
     * listing whose callback opens ssh-agent sockets. Lock order: tc_mu, then db_mu. */
    pthread_mutex_t db_mu;
    /* the audit queue, filled by the workers' batches, flushed by the main loop */
    audit_queue audit;
    int64_t audit_timer;
    atomic_uint_fast64_t cred_gen; /* bumped by a credential write: every worker's cache drops */
    /* the token cache, shared by the workers: tc_mu */
    pthread_mutex_t tc_mu;
    uint8_t tc_key[crypto_generichash_KEYBYTES];
    token_cache_entry *tc;
    size_t n_tc;
    sqlite3_stmt *data_version;
    int64_t tc_version;
    tokens_epoch *epoch; /* NULL: the workers read their inotify watch on every check */
    uint64_t tc_epoch;   /* the epoch when the cache was last synced */
    bool no_db_watch;
    char *db_dir;
    char *db_base; /* the database's file name: events for <db_base>* mark the cache suspect */
};

/* ---- the token cache (any worker; tc_mu) ---- */

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

    pthread_mutex_lock(&d->db_mu);
    if (!d->data_version &&
        sqlite3_prepare_v3(d->db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                           &d->data_version, NULL) != SQLITE_OK)
        d->data_version = NULL;
    if (d->data_version) {
        if (sqlite3_step(d->data_version) == SQLITE_ROW)
            v = sqlite3_column_int64(d->data_version, 0);
        sqlite3_reset(d->data_version);
    }
    pthread_mutex_unlock(&d->db_mu);
    if (v < 0 || v != d->tc_version)
        token_cache_clear(d);
    d->tc_version = v; /* -1 (cannot tell) never matches: nothing is served from the cache */
}

/* Drain a worker's inotify queue: true when the state database (or its WAL) was written. */
static bool read_db_events(int fd, const char *base)
{
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool written = false;
    ssize_t n;

    while ((n = read(fd, b, sizeof b)) > 0)
        for (char *p = b; p < b + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_Q_OVERFLOW) || (e->len && strncmp(e->name, base, strlen(base)) == 0))
                written = true;
            p += sizeof(*e) + e->len;
        }
    return written;
}

/* Where the state database lives: every worker watches that directory. */
static void db_location(vault_daemon *d)
{
    const char *path = sqlite3_db_filename(d->db, "main");
    const char *slash;

    if (!path || !*path || !(slash = strrchr(path, '/')))
        return;
    d->db_dir = strndup(path, (size_t)(slash - path));
    d->db_base = strdup(slash + 1);
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

/* ---- hooks (worker threads) ---- */

static int hook_check(void *ud, const char *container, const char *route_name, const char *token,
                      size_t len, token_verdict *v, terok_error *err)
{
    worker *w = ud;
    vault_daemon *d = w->d;
    uint8_t h[crypto_generichash_BYTES];
    int64_t now = (int64_t)time(NULL);
    token_info info;
    int r = 0;

    crypto_generichash(h, sizeof h, (const uint8_t *)token, len, d->tc_key, sizeof d->tc_key);
    /* Without the epoch, every worker reads its own inotify watch here, before the lock: a
     * commit that came before this request is in this worker's queue, whoever else read
     * theirs. Checked here, not only from the loop: MHD may read a keep-alive client's next
     * request in the same pass that sent the previous answer (a revocation between the two was
     * missed under ASan in CI). The epoch is read under the cache lock, which is then held
     * from the sync to the insert: an entry read from the store before a commit cannot go in
     * after a sync that saw the commit (or its bump). */
    if (!d->epoch && w->inotify_fd >= 0 && read_db_events(w->inotify_fd, d->db_base))
        w->tc_suspect = true;
    pthread_mutex_lock(&d->tc_mu);
    if (d->epoch) {
        uint64_t e = tokens_epoch_read(d->epoch);
        if (e != d->tc_epoch) {
            d->tc_epoch = e;
            w->tc_suspect = true;
        }
    }
    if (w->tc_suspect || w->store_always) {
        w->tc_suspect = false;
        token_cache_sync(d);
    }
    for (size_t i = 0; i < d->n_tc; i++)
        if (sodium_memcmp(d->tc[i].hash, h, sizeof h) == 0) {
            *v = verdict_of(&d->tc[i].info, container, route_name, now);
            goto out;
        }
    pthread_mutex_lock(&d->db_mu);
    r = tokens_check(d->db, d->key, TOKEN_KIND_PHANTOM, token, len, container, route_name, now, v,
                     &info, err);
    pthread_mutex_unlock(&d->db_mu);
    if (r < 0 || *v == TOKEN_MALFORMED || *v == TOKEN_UNKNOWN || d->tc_version < 0)
        goto out;
    if (d->n_tc >= TOKEN_CACHE_MAX)
        token_cache_clear(d);
    if (!d->tc && !(d->tc = calloc(TOKEN_CACHE_MAX, sizeof(*d->tc))))
        goto out; /* no cache, still a correct answer */
    memcpy(d->tc[d->n_tc].hash, h, sizeof h);
    d->tc[d->n_tc].info = info;
    d->n_tc++;
out:
    pthread_mutex_unlock(&d->tc_mu);
    return r;
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

static void cred_cache_drop(cred_cache **head, const char *name)
{
    for (cred_cache **i = head; *i;) {
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

/* Each worker caches credentials for itself: the secret it returns stays valid until its own
 * next call, whatever the other workers do. */
static int hook_credential(void *ud, const char *name, const terok_secret **ret, terok_error *err)
{
    worker *w = ud;
    vault_daemon *d = w->d;
    int64_t now = evloop_now_ms();
    uint64_t gen = atomic_load(&d->cred_gen);
    terok_secret *s = NULL;
    cred_cache *c;
    int r;

    if (!d->have_vault)
        return terok_error_set(err, -ENODEV, "no vault backend configured");
    if (gen != w->cred_gen) { /* some worker stored a refreshed credential */
        cred_cache_drop(&w->creds, NULL);
        w->cred_gen = gen;
    }
    for (cred_cache **i = &w->creds; *i;) {
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
    pthread_mutex_lock(&d->db_mu);
    r = vault_list(&d->vault, probe_type, &tp, err);
    if (r >= 0 && tp.ssh)
        r = terok_error_set(err, -EPERM,
                            "vault entry '%s' is an SSH key: a route cannot send it as a "
                            "credential",
                            name);
    if (r >= 0)
        r = vault_get(&d->vault, name, &s, err);
    pthread_mutex_unlock(&d->db_mu);
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
    c->next = w->creds;
    w->creds = c;
    *ret = s;
    return 0;
}

/* A refreshed OAuth token set: written to the vault (one transaction in vault-sqlite), and
 * every worker's cached copy dropped so the next request reads it back. */
static int hook_put(void *ud, const char *name, const terok_secret *value, terok_error *err)
{
    worker *w = ud;
    vault_daemon *d = w->d;
    int r;

    if (!d->have_vault)
        return terok_error_set(err, -ENODEV, "no vault backend configured");
    cred_cache_drop(&w->creds, name);
    pthread_mutex_lock(&d->db_mu);
    r = vault_put(&d->vault, name, value, "oauth", NULL, err);
    pthread_mutex_unlock(&d->db_mu);
    atomic_fetch_add(&d->cred_gen, 1);
    return r;
}

/* ---- audit ---- */

static audit_row audit_row_of(const broker_audit *a)
{
    audit_row row;

    if (audit_row_make(&row, a->container, a->route, a->method, a->path, a->outcome, a->status,
                       a->bytes_in, a->bytes_out, a->duration_us) < 0)
        row = (audit_row){0};
    return row;
}

static int on_audit_timer(evloop *l, void *ud)
{
    vault_daemon *d = ud;

    d->audit_timer = 0;
    (void)audit_queue_flush(&d->audit, d->db, &d->db_mu, "vault");
    return 0;
}

/* Main thread, after rows were queued: flush a full batch now, else within AUDIT_FLUSH_MS. */
static void audit_queued(vault_daemon *d)
{
    size_t n = audit_queue_length(&d->audit);

    if (n >= AUDIT_FLUSH_ROWS)
        (void)audit_queue_flush(&d->audit, d->db, &d->db_mu, "vault");
    else if (n > 0 && !d->audit_timer)
        d->audit_timer = evloop_add_timer(d->loop, AUDIT_FLUSH_MS, on_audit_timer, d);
}

/* The ssh-agent signer's rows (main thread). */
static void hook_audit_main(void *ud, const broker_audit *a)
{
    vault_daemon *d = ud;
    audit_row row = audit_row_of(a);

    if (row.container)
        (void)audit_queue_add(&d->audit, &row, 1);
    audit_queued(d);
}

/* Worker: hand the batch to the main loop. */
static void audit_handover(worker *w)
{
    if (w->audit_timer) {
        evloop_cancel_timer(w->loop, w->audit_timer);
        w->audit_timer = 0;
    }
    if (w->n_audit == 0)
        return;
    (void)audit_queue_add(&w->d->audit, w->audit, w->n_audit);
    w->n_audit = 0;
    evloop_wake(w->d->loop); /* the main loop flushes or arms its timer */
}

static int on_handover_timer(evloop *l, void *ud)
{
    worker *w = ud;

    w->audit_timer = 0;
    audit_handover(w);
    return 0;
}

static void hook_audit(void *ud, const broker_audit *a)
{
    worker *w = ud;

    /* Rows are batched per worker, then per flush: the audit stays off the request path. */
    if (w->n_audit < AUDIT_HANDOVER_ROWS) {
        w->audit[w->n_audit] = audit_row_of(a);
        w->n_audit += w->audit[w->n_audit].container != NULL;
    }
    if (w->n_audit >= AUDIT_HANDOVER_ROWS)
        audit_handover(w);
    else if (!w->audit_timer)
        w->audit_timer = evloop_add_timer(w->loop, AUDIT_HANDOVER_MS, on_handover_timer, w);
}

/* ---- workers ---- */

/* Worker thread: the main thread's call, run when the loop is woken. */
static void on_worker_wake(evloop *l, int *timeout_ms, void *ud)
{
    worker *w = ud;
    int (*fn)(worker *, void *, terok_error *);

    pthread_mutex_lock(&w->mu);
    fn = w->call_done ? NULL : w->call;
    pthread_mutex_unlock(&w->mu);
    if (!fn)
        return;
    int r = fn(w, w->call_arg, w->call_err);
    pthread_mutex_lock(&w->mu);
    w->call_r = r;
    w->call_done = true;
    w->call = NULL;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Main thread: run fn on the worker's thread (its loop owns its MHD daemons) and wait. */
static int worker_call(worker *w, int (*fn)(worker *, void *, terok_error *), void *arg,
                       terok_error *err)
{
    int r;

    if (!w->running)
        return fn(w, arg, err);
    pthread_mutex_lock(&w->mu);
    w->call = fn;
    w->call_arg = arg;
    w->call_err = err;
    w->call_done = false;
    pthread_mutex_unlock(&w->mu);
    evloop_wake(w->loop);
    pthread_mutex_lock(&w->mu);
    while (!w->call_done)
        pthread_cond_wait(&w->cv, &w->mu);
    r = w->call_r;
    pthread_mutex_unlock(&w->mu);
    return r;
}

static void *worker_main(void *ud)
{
    worker *w = ud;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
    (void)evloop_run(w->loop);
    /* MHD reports the requests it closes: their audit rows go with the last batch */
    w->proxy = proxy_free(w->proxy);
    audit_handover(w);
    return NULL;
}

static int call_stop(worker *w, void *arg, terok_error *err)
{
    evloop_exit(w->loop, 0);
    return 0;
}

typedef struct listen_arg {
    const char *container;
    int fd; /* dup'ed for each worker */
    bool is_unix;
} listen_arg;

static int call_listen(worker *w, void *arg, terok_error *err)
{
    listen_arg *a = arg;
    int fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 3);

    if (fd < 0)
        return terok_error_set(err, negative_errno(), "dup: %s", strerror(errno));
    return proxy_listen_fd(w->proxy, a->container, fd, a->is_unix, err);
}

static int call_close(worker *w, void *arg, terok_error *err)
{
    return proxy_close(w->proxy, arg);
}

static int call_close_unix(worker *w, void *arg, terok_error *err)
{
    proxy_close_unix(w->proxy, arg);
    return 0;
}

/* Drains the queue while the worker is idle (it would overflow), remembering a write. */
static int on_worker_db_event(evloop *l, int fd, uint32_t events, void *ud)
{
    worker *w = ud;

    if (read_db_events(fd, w->d->db_base))
        w->tc_suspect = true;
    return 0;
}

static void worker_watch(worker *w)
{
    vault_daemon *d = w->d;

    if (d->no_db_watch && d->epoch)
        return; /* tests: the token epoch alone */
    if (!d->db_dir || !d->db_base) {
        w->store_always = true;
        return;
    }
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->inotify_fd < 0 ||
        inotify_add_watch(w->inotify_fd, d->db_dir,
                          IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO) < 0 ||
        evloop_add_io(w->loop, w->inotify_fd, EPOLLIN, on_worker_db_event, w) < 0) {
        log_warning("vault: cannot watch '%s' (%s); every token check reads the store", d->db_dir,
                    strerror(errno));
        if (w->inotify_fd >= 0)
            close(w->inotify_fd);
        w->inotify_fd = -EBADF;
        w->store_always = true;
    }
}

static int worker_init(vault_daemon *d, worker *w, terok_error *err)
{
    int r;

    w->d = d;
    w->inotify_fd = -EBADF;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->audit = calloc(AUDIT_HANDOVER_ROWS, sizeof(*w->audit));
    if (!w->audit)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = evloop_new(&w->loop);
    if (r < 0)
        return terok_error_set(err, r, "cannot create an event loop");
    evloop_on_wake(w->loop, on_worker_wake, w);
    worker_watch(w);
    w->hooks = (broker_hooks){hook_check, hook_credential, hook_audit, w, hook_put};
    return proxy_new(w->loop, &d->routes, &w->hooks, d->ca_file, &w->proxy, err);
}

static void workers_stop(vault_daemon *d)
{
    for (size_t i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        if (w->running) {
            (void)worker_call(w, call_stop, NULL, NULL);
            pthread_join(w->thread, NULL);
            w->running = false;
        }
    }
}

static void workers_free(vault_daemon *d)
{
    workers_stop(d);
    for (size_t i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        w->proxy = proxy_free(w->proxy);
        audit_handover(w); /* a worker that never ran */
        cred_cache_drop(&w->creds, NULL);
        w->loop = evloop_free(w->loop);
        if (w->inotify_fd >= 0)
            close(w->inotify_fd);
        free(w->audit);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    free(d->workers);
    d->workers = NULL;
    d->n_workers = 0;
}

static size_t workers_wanted(const sandbox *sb)
{
    int64_t n = 0;
    long cpus;

    if (config_get_int(sb->config, "vault", "workers", &n) == 0 && n > 0)
        return (size_t)MIN(n, (int64_t)WORKERS_MAX);
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (size_t)MIN(cpus, (long)WORKERS_MAX) : 1;
}

/* Every worker serves the socket (a dup each); fd stays the caller's. */
static int listen_everywhere(vault_daemon *d, const char *container, int fd, bool is_unix,
                             terok_error *err)
{
    listen_arg a = {container, fd, is_unix};

    for (size_t i = 0; i < d->n_workers; i++) {
        int r = worker_call(&d->workers[i], call_listen, &a, err);
        if (r < 0) {
            for (size_t j = 0; j < i; j++)
                (void)worker_call(&d->workers[j], is_unix ? call_close_unix : call_close,
                                  (void *)container, NULL);
            return r;
        }
    }
    return 0;
}

/* ---- container sockets (main thread) ---- */

int vault_socket_path(const char *runtime_dir, const char *container, char **ret)
{
    return asprintf(ret, "%s/containers/%s/vault.sock", runtime_dir, container) < 0 ? -ENOMEM : 0;
}

static void csock_drop(vault_daemon *d, const char *container, bool unlink_path)
{
    for (csock **i = &d->socks; *i;) {
        if (streq((*i)->container, container)) {
            csock *x = *i;
            *i = x->next;
            close(x->fd);
            if (unlink_path)
                (void)unlink(x->path);
            free(x->container);
            free(x->path);
            free(x);
        } else
            i = &(*i)->next;
    }
}

static size_t listener_count(vault_daemon *d)
{
    size_t n = 0;

    /* every worker serves the same sockets: the first one's count is the daemon's */
    if (d->n_workers > 0 && d->workers[0].proxy)
        n = proxy_listeners(d->workers[0].proxy);
    return n;
}

static int open_container(vault_daemon *d, const char *name, terok_error *err)
{
    _cleanup_free_ char *dir = NULL, *sock = NULL;
    _cleanup_close_ int fd = -EBADF;
    csock *c;
    int r;

    r = daemon_container_dir(d->sb, name, &dir, err);
    if (r < 0)
        return r;
    r = vault_socket_path(d->sb->paths.runtime_dir, name, &sock);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    /* A reopen binds a fresh socket file; each worker's listener of the old one is replaced
     * by the new one (TCP listeners of the container stay). */
    fd = httpd_bind_unix(sock, 0666, err);
    if (fd < 0)
        return fd;
    r = listen_everywhere(d, name, fd, true, err);
    if (r < 0) {
        (void)unlink(sock);
        return r;
    }
    csock_drop(d, name, false);
    c = calloc(1, sizeof(*c));
    if (!c || !(c->container = strdup(name))) {
        free(c);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    c->path = TAKE_PTR(sock);
    c->fd = TAKE_FD(fd);
    c->next = d->socks;
    d->socks = c;
    r = ssh_signer_open(d->signer, name, dir, err);
    if (r > 0)
        log_info("vault: ssh-agent socket of '%s' open", name);
    return r < 0 ? r : 0;
}

static void close_container(vault_daemon *d, const char *name)
{
    for (size_t i = 0; i < d->n_workers; i++)
        (void)worker_call(&d->workers[i], call_close, (void *)name, NULL);
    csock_drop(d, name, true);
    ssh_signer_close(d->signer, name);
}

static int list_cb(void *ud, const container_rec *rec)
{
    return strv_extend(ud, rec->name) < 0 ? -ENOMEM : 0;
}

/* Sockets of containers that exist survive a daemon restart. The names are read first: the
 * workers may need the store lock while they open the sockets. */
static void reopen_containers(vault_daemon *d, store *st)
{
    _cleanup_strv_free_ char **names = NULL;

    pthread_mutex_lock(&d->db_mu);
    (void)store_container_list(st, list_cb, &names, NULL);
    pthread_mutex_unlock(&d->db_mu);
    STRV_FOREACH(n, names)
    {
        terok_error err = TEROK_ERROR_INIT;

        if (open_container(d, *n, &err) < 0)
            log_warning("vault: cannot reopen the socket of '%s': %s", *n,
                        terok_error_message(&err));
        terok_error_clear(&err);
    }
}

static int ctl_open(void *ud, const char *container, terok_error *err)
{
    return open_container(ud, container, err);
}

static void ctl_close(void *ud, const char *container)
{
    close_container(ud, container);
}

static void ctl_status(void *ud, json_object *reply)
{
    vault_daemon *d = ud;

    json_object_object_add(reply, "listeners", json_object_new_int64((int64_t)listener_count(d)));
    json_object_object_add(reply, "routes", json_object_new_int64((int64_t)d->routes.n));
    json_object_object_add(reply, "ssh_listeners",
                           json_object_new_int64((int64_t)ssh_signer_listeners(d->signer)));
    json_object_object_add(reply, "workers", json_object_new_int64((int64_t)d->n_workers));
}

static void ctl_stop(void *ud)
{
    evloop_exit(((vault_daemon *)ud)->loop, 0);
}

static json_object *on_ctl(void *ud, const struct ucred *peer, json_object *req, terok_error *err)
{
    static const ctl_container_ops ops = {"vault", ctl_open, ctl_close, ctl_status, ctl_stop};

    return ctl_container_dispatch(&ops, ud, peer, req, err);
}

static int on_signal(evloop *l, int signo, uint32_t events, void *ud)
{
    log_info("vault: signal %d, shutting down", signo);
    evloop_exit(l, 0);
    return 0;
}

/* Main loop woken by a worker's audit batch. */
static void on_main_wake(evloop *l, int *timeout_ms, void *ud)
{
    audit_queued(ud);
}

/* Loopback TCP: one SO_REUSEPORT socket per worker, so the kernel spreads the connections. */
static int listen_tcp(vault_daemon *d, const vault_tcp_listener *t, uint16_t *ret_port,
                      terok_error *err)
{
    uint16_t port = t->port;

    for (size_t i = 0; i < d->n_workers; i++) {
        listen_arg a = {t->container, -EBADF, false};
        int r;

        a.fd = httpd_bind_tcp_reuseport(t->address, port, &port, err);
        if (a.fd < 0)
            return a.fd;
        r = call_listen(&d->workers[i], &a, err); /* before the threads start */
        close(a.fd);
        if (r < 0)
            return r;
    }
    *ret_port = port;
    return 0;
}

int vault_daemon_run(sandbox *sb, const vault_daemon_opts *o, terok_error *err)
{
    vault_daemon d = {.sb = sb};
    pthread_mutexattr_t ma;
    _cleanup_free_ char *ctl_path = NULL;
    const char *ca_file;
    store *st = NULL;
    int r;

    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&d.db_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    audit_queue_init(&d.audit, 4 * AUDIT_FLUSH_ROWS);
    pthread_mutex_init(&d.tc_mu, NULL);
    /* Memory (docs/vault.md, performance): one malloc arena per worker (their buffers come
     * and go on their own threads; libcurl's resolver threads share them), and buffers of
     * 128 KiB and more (streaming bodies) go to mmap so they are returned when the transfer
     * ends instead of pinning the heap. */
    d.n_workers = workers_wanted(sb);
    mallopt(M_ARENA_MAX, (int)MIN(d.n_workers + 1, (size_t)8));
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    r = sandbox_store(sb, &st, err);
    if (r < 0)
        goto out;
    d.db = store_sqlite(st);
    /* The daemon only probes tokens (cached) and appends audit rows: SQLite's default 2 MiB
     * page cache would fill with audit pages it never reads again. */
    (void)sqlite3_exec(d.db, "PRAGMA cache_size = -256", NULL, NULL, NULL);
    r = tokens_key_load(sb->paths.state_dir, d.key, err);
    if (r < 0)
        goto out;
    r = routes_from_config(sb->config, &d.routes, err);
    if (r < 0) {
        terok_error_prefix(err, "vault routes");
        goto out;
    }
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
    evloop_on_wake(d.loop, on_main_wake, &d);
    if (sodium_init() < 0) {
        r = terok_error_set(err, -EIO, "cannot initialise libsodium");
        goto out;
    }
    randombytes_buf(d.tc_key, sizeof d.tc_key);
    db_location(&d);
    d.no_db_watch = o->no_db_watch;
    if (d.db_dir) {
        terok_error e = TEROK_ERROR_INIT;
        if (tokens_epoch_map(d.db_dir, false, &d.epoch, &e) < 0)
            log_warning("vault: %s; every token check reads the inotify queue",
                        terok_error_message(&e));
        terok_error_clear(&e);
        d.tc_epoch = UINT64_MAX; /* the first check syncs */
    }
    /* --ca-file wins over [vault] ca-file; an unreadable bundle is an error now, not a TLS
     * failure on every request later */
    ca_file = o->ca_file ? o->ca_file : config_get(sb->config, "vault", "ca-file");
    if (ca_file && *ca_file && access(ca_file, R_OK) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot read the CA bundle '%s': %s", ca_file,
                            strerror(errno));
        goto out;
    }
    d.ca_file = ca_file && *ca_file ? ca_file : NULL;
    d.workers = calloc(d.n_workers, sizeof(*d.workers));
    if (!d.workers) {
        d.n_workers = 0;
        r = terok_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < d.n_workers; i++)
        d.workers[i].inotify_fd = -EBADF;
    for (size_t i = 0; i < d.n_workers; i++) {
        r = worker_init(&d, &d.workers[i], err);
        if (r < 0)
            goto out;
    }
    r = sshkeys_schema(d.db, err);
    if (r >= 0 && ssh_signer_new(d.loop, d.have_vault ? &d.vault : NULL, d.db, hook_audit_main, &d,
                                 &d.signer) < 0)
        r = terok_error_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        goto out;
    ssh_signer_set_lock(d.signer, &d.db_mu);
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
        r = listen_tcp(&d, &o->tcp[i], &port, err);
        if (r < 0)
            goto out;
        log_notice("vault: listening on %s:%u for '%s'", o->tcp[i].address, port,
                   o->tcp[i].container);
    }
    /* Signals are blocked before the workers start: they inherit the mask. */
    r = evloop_add_signal(d.loop, SIGTERM, on_signal, &d);
    if (r >= 0)
        r = evloop_add_signal(d.loop, SIGINT, on_signal, &d);
    if (r < 0) {
        terok_error_set(err, r, "cannot handle signals: %s", strerror(-r));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < d.n_workers; i++) {
        worker *w = &d.workers[i];
        r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r < 0) {
            terok_error_set(err, r, "cannot start a worker thread: %s", strerror(-r));
            goto out;
        }
        w->running = true;
    }
    reopen_containers(&d, st);
    if (o->ready)
        o->ready(o->ready_userdata);
    log_info("vault: serving %zu route(s) on '%s' with %zu worker(s)", d.routes.n, ctl_path,
             d.n_workers);
    r = evloop_run(d.loop);
    if (r < 0)
        terok_error_set(err, r, "event loop failed: %s", strerror(-r));
out:
    ctl_server_free(d.ctl);
    workers_free(&d); /* MHD reports the requests it closes: audit rows still come */
    while (d.socks)
        csock_drop(&d, d.socks->container, true);
    if (d.loop)
        (void)audit_queue_flush(&d.audit, d.db, &d.db_mu, "vault");
    audit_queue_done(&d.audit);
    token_cache_clear(&d);
    free(d.tc);
    free(d.db_dir);
    free(d.db_base);
    tokens_epoch_unmap(d.epoch);
    sqlite3_finalize(d.data_version);
    ssh_signer_free(d.signer);
    evloop_free(d.loop);
    routes_done(&d.routes);
    sodium_memzero(d.key, sizeof d.key);
    pthread_mutex_destroy(&d.db_mu);
    pthread_mutex_destroy(&d.tc_mu);
    return r;
}
