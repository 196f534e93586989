/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/clearance-daemon.c: `terok-sandbox clearance serve`. One evloop holds the control
 * socket, one NFLOG source per running shielded container (TEROK_SHIELD_CTL_EVENTS_OPEN: made
 * in the container's netns by the shield, MACHINE.md §13.4) and a pidfd of the process that
 * source belongs to: the NFLOG fd never reports a hang-up, the pidfd does when the container
 * stops. A rescan every second attaches to containers that (re)started, after a restart of the
 * daemon too; a container is retried only when its shield bundle's runtime.json changed, so a
 * stopped container costs a stat(2) per second.
 *
 * Every event is rate-limited per container, appended to the audit and queued as a pending
 * request (CLEARANCE_PENDING_MAX per container). A verdict (`clearance allow|deny`, later the
 * desktop backend) must cite a pending request; it is applied with the shield's live allow/deny,
 * audited with the operator's uid, and clears the requests it answers. A container that stops
 * takes its pending requests with it. Logs go to stderr (the caller redirects them).
 *
 * DNS: each attached container's domains are re-resolved with TEROK_SHIELD_CTL_REFRESH right
 * after attaching and then at the ret_next_ms the shield returns (80 % of the shortest address
 * lifetime), so rotating answers are followed and stale addresses lapse. A refresh runs in a
 * forked child (res_nquery blocks for seconds when the resolver is down; the loop must keep
 * reading events); a failure is logged once and retried with backoff. A bundle changed by
 * someone else (a live allow of a new domain) is refreshed at once, so its address does not
 * outlive its TTL waiting for a timer armed before it existed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "clearance/clearance-daemon.h"
#include "clearance/shield-audit.h"
#include "daemon/ctl.h"
#include "error.h"
#include "log.h"
#include "shield.h"
#include "util/macro.h"

#define AUDIT_QUEUE_MAX 4096
#define DEST_MAX 300
#define REFRESH_RETRY_MS 5000      /* first retry after a failed refresh, doubled each time */
#define REFRESH_RETRY_MAX_MS 60000 /* up to this */

typedef struct pending {
    uint64_t id;
    char ip[INET6_ADDRSTRLEN];
    uint32_t port, proto;
    char *domain;
    int64_t first_ms, last_ms; /* realtime */
    uint64_t count;
} pending;

typedef struct clearance_daemon clearance_daemon;

typedef struct watch {
    clearance_daemon *d;
    char *name;
    int fd;    /* NFLOG source, owned by the shield; -1 when detached */
    int pidfd; /* ours */
    int64_t pid;
    /* runtime.json as last tried: a new attempt only when it changed */
    bool rt_known;
    dev_t rt_dev;
    ino_t rt_ino;
    int64_t rt_mtime_ns;
    pending *pend;
    size_t n_pend;
    int64_t win_start; /* monotonic ms */
    uint32_t win_n;
    uint64_t suppressed; /* not yet written as a row */
    uint64_t events;
    uint64_t invalid; /* events dropped by event_is_sane() */
    bool seen;
    /* DNS refresh: one timer or one child at a time */
    int64_t rf_timer;     /* evloop timer id; 0: none */
    int64_t rf_due_ms;    /* monotonic, when rf_timer fires */
    pid_t rf_pid;         /* the child refreshing now; 0: none */
    int rf_fd;            /* its result pipe */
    uint32_t rf_failures; /* in a row; logged on the first */
    uint64_t rf_count;    /* refreshes that worked */
    bool rf_off;          /* the shield has no refresh: never asked again */
    /* shield.json as our last refresh attempt left it: a change by anyone else asks for one */
    bool bj_known;
    dev_t bj_dev;
    ino_t bj_ino;
    int64_t bj_mtime_ns;
} watch;

/* An audit row owning its strings. */
typedef struct queued {
    shield_audit_row row;
    char *container, *dest_ip, *domain, *target;
} queued;

struct clearance_daemon {
    sandbox *sb;
    evloop *loop;
    sqlite3 *db;
    store *st;
    shield sh;
    ctl_server *ctl;
    char *ctl_path;
    struct stat ctl_st;
    watch **w;
    size_t n_w;
    uint64_t next_id;
    queued *q;
    size_t n_q;
    uint64_t q_dropped;
    int64_t rescan_timer;
    pid_t *reap; /* refresh children of detached containers, still finishing */
    size_t n_reap;
};

static int64_t now_realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int clearance_ctl_path(const char *runtime_dir, char **ret)
{
    return asprintf(ret, "%s/clearance.ctl", runtime_dir) < 0 ? -ENOMEM : 0;
}

/* ---- audit ---- */

static void queue_row(clearance_daemon *d, const shield_audit_row *r)
{
    queued *q, *nq;

    if (d->n_q >= AUDIT_QUEUE_MAX) { /* the store is not keeping up: count, do not grow */
        d->q_dropped++;
        return;
    }
    nq = reallocarray(d->q, d->n_q + 1, sizeof *nq);
    if (!nq) {
        d->q_dropped++;
        return;
    }
    d->q = nq;
    q = &d->q[d->n_q];
    *q = (queued){.row = *r};
    q->container = strdup(r->container);
    q->dest_ip = r->dest_ip ? strdup(r->dest_ip) : NULL;
    q->domain = r->domain ? strdup(r->domain) : NULL;
    q->target = r->target ? strdup(r->target) : NULL;
    if (!q->container || (r->dest_ip && !q->dest_ip) || (r->domain && !q->domain) ||
        (r->target && !q->target)) {
        free(q->container);
        free(q->dest_ip);
        free(q->domain);
        free(q->target);
        d->q_dropped++;
        return;
    }
    q->row.container = q->container;
    q->row.dest_ip = q->dest_ip;
    q->row.domain = q->domain;
    q->row.target = q->target;
    d->n_q++;
}

static void flush_audit(clearance_daemon *d)
{
    _cleanup_free_ shield_audit_row *rows = NULL;
    terok_error err = TEROK_ERROR_INIT;

    if (d->n_q == 0)
        return;
    rows = calloc(d->n_q, sizeof *rows);
    if (!rows)
        return;
    for (size_t i = 0; i < d->n_q; i++)
        rows[i] = d->q[i].row;
    if (shield_audit_append(d->db, rows, d->n_q, &err) < 0) {
        /* rows stay queued (bounded); the next event or rescan retries */
        log_warning("clearance: cannot write the audit: %s", terok_error_message(&err));
        terok_error_clear(&err);
        return;
    }
    for (size_t i = 0; i < d->n_q; i++) {
        free(d->q[i].container);
        free(d->q[i].dest_ip);
        free(d->q[i].domain);
        free(d->q[i].target);
    }
    d->n_q = 0;
}

/* ---- watches ---- */

static watch *watch_find(clearance_daemon *d, const char *name)
{
    for (size_t i = 0; i < d->n_w; i++)
        if (streq(d->w[i]->name, name))
            return d->w[i];
    return NULL;
}

static watch *watch_get(clearance_daemon *d, const char *name)
{
    watch *w = watch_find(d, name), **nw;

    if (w)
        return w;
    nw = reallocarray(d->w, d->n_w + 1, sizeof *nw);
    if (!nw)
        return NULL;
    d->w = nw;
    w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(name))) {
        free(w);
        return NULL;
    }
    w->d = d;
    w->fd = w->pidfd = w->rf_fd = -EBADF;
    d->w[d->n_w++] = w;
    return w;
}

static void pending_clear(watch *w)
{
    for (size_t i = 0; i < w->n_pend; i++)
        free(w->pend[i].domain);
    free(w->pend);
    w->pend = NULL;
    w->n_pend = 0;
}

static void write_suppressed(watch *w)
{
    if (w->suppressed == 0)
        return;
    queue_row(w->d, &(shield_audit_row){.at_ms = now_realtime_ms(),
                                        .container = w->name,
                                        .kind = "suppressed",
                                        .protocol = -1,
                                        .count = (int64_t)w->suppressed,
                                        .actor_uid = -1});
    w->suppressed = 0;
}

/* ---- DNS refresh ---- */

/* What a refresh child reports (one write, below PIPE_BUF: atomic). */
typedef struct refresh_msg {
    int32_t r;
    int32_t reserved;
    int64_t next_ms;
    char why[496];
} refresh_msg;

static void reap_children(clearance_daemon *d, bool wait)
{
    size_t j = 0;

    for (size_t i = 0; i < d->n_reap; i++) {
        pid_t r;

        while ((r = waitpid(d->reap[i], NULL, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
            ;
        if (r == 0)
            d->reap[j++] = d->reap[i];
    }
    d->n_reap = j;
}

/* Stat <plugin state>/containers/<name>/shield/shield.json. */
static int bundle_json_stat(clearance_daemon *d, watch *w, struct stat *st)
{
    _cleanup_free_ char *p = NULL;

    if (!d->sh.plugin->state_dir)
        return -ENOENT;
    if (asprintf(&p, "%s/containers/%s/shield/shield.json", d->sh.plugin->state_dir, w->name) < 0)
        return -ENOMEM;
    return stat(p, st) < 0 ? negative_errno() : 0;
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int on_refresh_timer(evloop *l, void *userdata);

static void refresh_arm(watch *w, int64_t ms)
{
    if (w->rf_timer)
        evloop_cancel_timer(w->d->loop, w->rf_timer);
    w->rf_timer = evloop_add_timer(w->d->loop, ms, on_refresh_timer, w);
    w->rf_due_ms = evloop_now_ms() + ms;
    if (w->rf_timer <= 0) {
        w->rf_timer = 0;
        log_warning("clearance: cannot schedule the DNS refresh of '%s'", w->name);
    }
}

/* No more refreshes for this run of the container. A child still running finishes its
 * transaction (killing it could leave the bundle half-staged) and is reaped later. */
static void refresh_stop(watch *w)
{
    clearance_daemon *d = w->d;

    if (w->rf_timer)
        evloop_cancel_timer(d->loop, w->rf_timer);
    w->rf_timer = 0;
    if (w->rf_pid > 0) {
        pid_t *nr = reallocarray(d->reap, d->n_reap + 1, sizeof *nr);

        evloop_remove_io(d->loop, w->rf_fd);
        close(w->rf_fd);
        if (nr) {
            d->reap = nr;
            d->reap[d->n_reap++] = w->rf_pid;
        } else {
            (void)waitpid(w->rf_pid, NULL, 0);
        }
    }
    w->rf_pid = 0;
    w->rf_fd = -EBADF;
    w->rf_failures = 0;
    w->bj_known = false;
}

static void refresh_result(watch *w, int r, int64_t next_ms, const char *why)
{
    struct stat st;

    if (r == -EOPNOTSUPP) {
        log_notice("clearance: shield backend '%s' cannot refresh DNS; domains of '%s' are "
                   "resolved only when the container starts",
                   w->d->sh.plugin->name, w->name);
        w->rf_off = true;
        return;
    }
    /* the bundle as this attempt left it: a later change (a live allow, an operator repairing
     * it during a backoff) asks for a refresh at once */
    w->bj_known = bundle_json_stat(w->d, w, &st) >= 0;
    if (w->bj_known) {
        w->bj_dev = st.st_dev;
        w->bj_ino = st.st_ino;
        w->bj_mtime_ns = mtime_ns(&st);
    }
    if (r < 0) {
        int64_t delay = REFRESH_RETRY_MS;

        for (uint32_t i = 1; i < w->rf_failures + 1 && delay < REFRESH_RETRY_MAX_MS; i++)
            delay *= 2;
        delay = MIN(delay, REFRESH_RETRY_MAX_MS);
        if (w->rf_failures++ == 0)
            log_warning("clearance: DNS refresh of '%s' failed: %s — retrying every %d-%d s "
                        "(logged once until it works again); its resolved addresses lapse "
                        "meanwhile, check 'shield status %s'",
                        w->name, why, REFRESH_RETRY_MS / 1000, REFRESH_RETRY_MAX_MS / 1000,
                        w->name);
        refresh_arm(w, delay);
        return;
    }
    if (w->rf_failures)
        log_notice("clearance: DNS refresh of '%s' works again (after %u failure(s))", w->name,
                   w->rf_failures);
    w->rf_failures = 0;
    w->rf_count++;
    if (next_ms < 0) /* no domains: nothing to follow until the bundle changes */
        return;
    refresh_arm(w, MAX(next_ms, 1));
}

static int on_refresh_done(evloop *l, int fd, uint32_t events, void *userdata)
{
    watch *w = userdata;
    refresh_msg m = {0};
    ssize_t n;

    while ((n = read(fd, &m, sizeof m)) < 0 && errno == EINTR)
        ;
    evloop_remove_io(l, fd);
    close(fd);
    /* the child exits right after its one write (or has died): this wait is short */
    while (waitpid(w->rf_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    w->rf_pid = 0;
    w->rf_fd = -EBADF;
    if (n != (ssize_t)sizeof m) {
        m.r = -EPIPE;
        snprintf(m.why, sizeof m.why, "the refresh process died without an answer");
    }
    m.why[sizeof m.why - 1] = 0;
    refresh_result(w, m.r, m.next_ms, m.why);
    return 0;
}

static _Noreturn void refresh_child(clearance_daemon *d, watch *w, int fd)
{
    terok_shield_ctl_refresh a = {.struct_size = sizeof a, .container = w->name, .ret_next_ms = -1};
    terok_error err = TEROK_ERROR_INIT;
    refresh_msg m = {0};

    m.r = shield_ctl(&d->sh, TEROK_SHIELD_CTL_REFRESH, &a, &err);
    m.next_ms = a.ret_next_ms;
    if (m.r < 0)
        snprintf(m.why, sizeof m.why, "%s", terok_error_message(&err));
    (void)!write(fd, &m, sizeof m);
    _exit(0);
}

static void refresh_start(watch *w)
{
    clearance_daemon *d = w->d;
    int p[2], r;
    pid_t pid;

    if (w->fd < 0 || w->rf_pid > 0 || w->rf_off)
        return;
    if (pipe2(p, O_CLOEXEC) < 0) {
        r = negative_errno();
        refresh_result(w, r, -1, strerror(-r));
        return;
    }
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        refresh_child(d, w, p[1]);
    }
    close(p[1]);
    if (pid < 0) {
        r = negative_errno();
        close(p[0]);
        refresh_result(w, r, -1, "cannot fork the refresh process");
        return;
    }
    w->rf_pid = pid;
    w->rf_fd = p[0];
    r = evloop_add_io(d->loop, p[0], EPOLLIN, on_refresh_done, w);
    if (r < 0) { /* wait for it here rather than lose it */
        refresh_msg m = {0};

        (void)!read(p[0], &m, sizeof m);
        close(p[0]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        w->rf_pid = 0;
        w->rf_fd = -EBADF;
        refresh_result(w, m.r, m.next_ms, m.why);
    }
}

static int on_refresh_timer(evloop *l, void *userdata)
{
    watch *w = userdata;

    w->rf_timer = 0;
    refresh_start(w);
    return 0;
}

/* Rescan: a bundle someone else changed since our last refresh attempt (a live allow/deny of a
 * domain, a verdict, a repair during a backoff) is refreshed now, so the next timer covers its
 * shortest lifetime. */
static void refresh_check_bundle(watch *w)
{
    struct stat st;

    if (w->fd < 0 || w->rf_pid > 0 || w->rf_off || !w->bj_known ||
        bundle_json_stat(w->d, w, &st) < 0)
        return;
    if (st.st_dev == w->bj_dev && st.st_ino == w->bj_ino && mtime_ns(&st) == w->bj_mtime_ns)
        return;
    w->bj_known = false;
    log_info("clearance: the shield bundle of '%s' changed; refreshing its DNS", w->name);
    refresh_arm(w, 0);
}

static int on_event(void *userdata, const terok_shield_event *ev);

/* Read what is pending on the source, then stop watching it. Pending requests go: a verdict
 * for a container that no longer runs cannot be applied live. */
static void detach(watch *w, const char *why)
{
    clearance_daemon *d = w->d;
    terok_shield_ctl_events a = {.struct_size = sizeof a, .container = w->name};

    if (w->fd >= 0) {
        (void)d->sh.plugin->ops.shield.events_dispatch(d->sh.state, w->name, on_event, w, NULL);
        evloop_remove_io(d->loop, w->fd);
        (void)shield_ctl(&d->sh, TEROK_SHIELD_CTL_EVENTS_CLOSE, &a, NULL);
        log_info("clearance: detached from '%s' (%s)", w->name, why);
    }
    if (w->pidfd >= 0) {
        evloop_remove_io(d->loop, w->pidfd);
        close(w->pidfd);
    }
    refresh_stop(w);
    w->fd = w->pidfd = -EBADF;
    w->pid = 0;
    write_suppressed(w);
    pending_clear(w);
    flush_audit(d);
}

static void watch_drop(clearance_daemon *d, watch *w)
{
    detach(w, "removed");
    for (size_t i = 0; i < d->n_w; i++)
        if (d->w[i] == w) {
            d->w[i] = d->w[--d->n_w];
            break;
        }
    free(w->name);
    free(w);
}

/* Same destination (address, port, protocol): one request, counted. */
static void pending_add(watch *w, const terok_shield_event *ev)
{
    int64_t now = ev->time_ns / 1000000;
    pending *p, *np;

    for (size_t i = 0; i < w->n_pend; i++) {
        p = &w->pend[i];
        if (p->port == ev->dest_port && p->proto == ev->protocol && streq(p->ip, ev->dest_ip)) {
            p->count++;
            p->last_ms = now;
            return;
        }
    }
    if (w->n_pend >= CLEARANCE_PENDING_MAX) {
        free(w->pend[0].domain);
        memmove(w->pend, w->pend + 1, (w->n_pend - 1) * sizeof *w->pend);
        w->n_pend--;
    } else {
        np = reallocarray(w->pend, w->n_pend + 1, sizeof *np);
        if (!np)
            return;
        w->pend = np;
    }
    p = &w->pend[w->n_pend];
    *p = (pending){.id = ++w->d->next_id,
                   .port = ev->dest_port,
                   .proto = ev->protocol,
                   .domain = ev->domain ? strdup(ev->domain) : NULL,
                   .first_ms = now,
                   .last_ms = now,
                   .count = 1};
    snprintf(p->ip, sizeof p->ip, "%s", ev->dest_ip);
    w->n_pend++;
    /* Here the clearance backend (desktop notification) will be asked; its verdict comes back
     * through apply_verdict() like the terminal's. */
}

/* What a shield plugin reports becomes an audit row, a pending request and, on a verdict, a
 * shield target: an address that is not one, a port or protocol out of range is dropped (the
 * plugin may be third-party code); a domain that is not a host name is left out. */
static bool event_is_sane(const terok_shield_event *ev)
{
    unsigned char a[sizeof(struct in6_addr)];

    if (!ev || ev->struct_size < offsetof(terok_shield_event, time_ns) + sizeof ev->time_ns ||
        !ev->dest_ip || strnlen(ev->dest_ip, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN)
        return false;
    if (inet_pton(strchr(ev->dest_ip, ':') ? AF_INET6 : AF_INET, ev->dest_ip, a) != 1)
        return false;
    return ev->dest_port <= 65535 && ev->protocol <= 255;
}

static bool domain_is_sane(const char *s)
{
    size_t n = s ? strnlen(s, DEST_MAX + 1) : 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i]))
            return false;
    return true;
}

static int on_event(void *userdata, const terok_shield_event *ev_in)
{
    watch *w = userdata;
    int64_t now = evloop_now_ms();
    terok_shield_event ev_buf;
    const terok_shield_event *ev = &ev_buf;

    if (!event_is_sane(ev_in)) {
        if (w->invalid++ == 0)
            log_warning("clearance: the shield reported an event of '%s' that names no valid "
                        "destination: dropped (status counts them as invalid_events)",
                        w->name);
        return 0;
    }
    ev_buf = *ev_in;
    if (ev_buf.domain && !domain_is_sane(ev_buf.domain))
        ev_buf.domain = NULL;
    w->events++;
    if (now - w->win_start >= 1000) {
        w->win_start = now;
        w->win_n = 0;
    }
    if (w->win_n >= CLEARANCE_RATE_MAX) {
        w->suppressed++;
        return 0;
    }
    w->win_n++;
    queue_row(w->d, &(shield_audit_row){.at_ms = ev->time_ns / 1000000,
                                        .container = w->name,
                                        .kind = "blocked",
                                        .dest_ip = ev->dest_ip,
                                        .dest_port = (int32_t)ev->dest_port,
                                        .protocol = (int32_t)ev->protocol,
                                        .domain = ev->domain,
                                        .actor_uid = -1});
    pending_add(w, ev);
    return 0;
}

static int on_nflog(evloop *l, int fd, uint32_t events, void *userdata)
{
    watch *w = userdata;
    clearance_daemon *d = w->d;
    terok_error err = TEROK_ERROR_INIT;
    int r;

    r = d->sh.plugin->ops.shield.events_dispatch(d->sh.state, w->name, on_event, w, &err);
    if (r < 0) {
        log_warning("clearance: events of '%s': %s", w->name, terok_error_message(&err));
        if (r != -ENOMEM && r != -EINTR)
            detach(w, "event source failed");
    }
    terok_error_clear(&err);
    flush_audit(d);
    return 0;
}

static int on_pid_exit(evloop *l, int fd, uint32_t events, void *userdata)
{
    detach(userdata, "container stopped");
    return 0;
}

static int attach(clearance_daemon *d, watch *w, terok_error *err)
{
    terok_shield_ctl_events a = {.struct_size = sizeof a, .container = w->name, .ret_fd = -1};
    int pidfd, r;

    if (w->fd >= 0)
        return 0;
    r = shield_ctl(&d->sh, TEROK_SHIELD_CTL_EVENTS_OPEN, &a, err);
    if (r < 0)
        return r;
    if (a.ret_fd < 0 || a.ret_pid <= 0) {
        (void)shield_ctl(&d->sh, TEROK_SHIELD_CTL_EVENTS_CLOSE, &a, NULL);
        return terok_error_set(err, -EPROTO, "shield backend '%s' gave no event source for '%s'",
                               d->sh.plugin->name, w->name);
    }
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)a.ret_pid, 0);
    if (pidfd < 0) {
        r = negative_errno();
        (void)shield_ctl(&d->sh, TEROK_SHIELD_CTL_EVENTS_CLOSE, &a, NULL);
        return terok_error_set(err, r, "container '%s' (pid %lld) is gone: %s", w->name,
                               (long long)a.ret_pid, strerror(-r));
    }
    r = evloop_add_io(d->loop, a.ret_fd, EPOLLIN, on_nflog, w);
    if (r >= 0) {
        r = evloop_add_io(d->loop, pidfd, EPOLLIN, on_pid_exit, w);
        if (r < 0)
            evloop_remove_io(d->loop, a.ret_fd);
    }
    if (r < 0) {
        close(pidfd);
        (void)shield_ctl(&d->sh, TEROK_SHIELD_CTL_EVENTS_CLOSE, &a, NULL);
        return terok_error_set(err, r, "watching the events of '%s': %s", w->name, strerror(-r));
    }
    w->fd = a.ret_fd;
    w->pidfd = pidfd;
    w->pid = a.ret_pid;
    log_info("clearance: attached to '%s' (pid %lld)", w->name, (long long)a.ret_pid);
    /* the addresses prepare resolved may be old by now (a restart, a daemon started late) */
    if (!w->rf_off)
        refresh_arm(w, 0);
    return 0;
}

/* ---- rescan ---- */

/* runtime.json of the container's bundle (docs/shield.md): present while the shield is applied;
 * a new one (inode, mtime) means the container started again. */
static bool runtime_changed(clearance_daemon *d, watch *w)
{
    _cleanup_free_ char *p = NULL;
    struct stat st;
    int64_t mt;

    if (!d->sh.plugin->state_dir)
        return !w->rt_known;
    if (asprintf(&p, "%s/containers/%s/shield/runtime.json", d->sh.plugin->state_dir, w->name) < 0)
        return false;
    if (stat(p, &st) < 0) {
        w->rt_known = false;
        return false;
    }
    mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (w->rt_known && w->rt_dev == st.st_dev && w->rt_ino == st.st_ino && w->rt_mtime_ns == mt)
        return false;
    w->rt_known = true;
    w->rt_dev = st.st_dev;
    w->rt_ino = st.st_ino;
    w->rt_mtime_ns = mt;
    return true;
}

static int rescan_cb(void *userdata, const container_rec *rec)
{
    clearance_daemon *d = userdata;
    watch *w = watch_get(d, rec->name);
    terok_error err = TEROK_ERROR_INIT;

    if (!w)
        return 0;
    w->seen = true;
    if (w->fd >= 0 || !runtime_changed(d, w))
        return 0;
    if (attach(d, w, &err) < 0 && err.code != -ESRCH && err.code != -ENOENT)
        log_warning("clearance: cannot attach to '%s': %s", w->name, terok_error_message(&err));
    terok_error_clear(&err);
    return 0;
}

/* False when our control socket is no longer ours: then this daemon has nothing left to serve. */
static bool ctl_still_ours(clearance_daemon *d)
{
    struct stat st;

    return stat(d->ctl_path, &st) == 0 && st.st_dev == d->ctl_st.st_dev &&
           st.st_ino == d->ctl_st.st_ino;
}

static void rescan(clearance_daemon *d)
{
    terok_error err = TEROK_ERROR_INIT;

    for (size_t i = 0; i < d->n_w; i++)
        d->w[i]->seen = false;
    if (store_container_list(d->st, rescan_cb, d, &err) < 0) {
        log_warning("clearance: cannot list containers: %s", terok_error_message(&err));
        terok_error_clear(&err);
        return;
    }
    for (size_t i = 0; i < d->n_w;) {
        watch *w = d->w[i];

        if (!w->seen) {
            watch_drop(d, w); /* removed from the store: rm */
            continue;
        }
        write_suppressed(w);
        refresh_check_bundle(w);
        i++;
    }
    reap_children(d, false);
    if (d->q_dropped) {
        log_warning("clearance: %llu audit rows dropped (the state store is not keeping up)",
                    (unsigned long long)d->q_dropped);
        d->q_dropped = 0;
    }
    flush_audit(d);
}

static int on_rescan(evloop *l, void *userdata)
{
    clearance_daemon *d = userdata;

    d->rescan_timer = 0;
    if (!ctl_still_ours(d)) {
        log_notice("clearance: control socket '%s' was removed or replaced; exiting", d->ctl_path);
        evloop_exit(l, 0);
        return 0;
    }
    rescan(d);
    d->rescan_timer = evloop_add_timer(l, CLEARANCE_RESCAN_MS, on_rescan, d);
    return 0;
}

/* ---- control ---- */

/* A container name from the request: valid and managed by us. */
static const char *req_container(clearance_daemon *d, json_object *req, bool required,
                                 terok_error *err)
{
    container_rec rec = {0};
    const char *n = ctl_req_string(req, "container", 128, err, required);
    int r;

    if (!n)
        return NULL;
    if (!container_name_is_valid(n)) {
        terok_error_set(err, -EINVAL, "invalid container name '%s'", n);
        return NULL;
    }
    r = store_container_get(d->st, n, &rec, err);
    if (r == -ENOENT) {
        terok_error_set(err, -ENOENT, "no such container '%s'", n);
        return NULL;
    }
    if (r < 0)
        return NULL;
    container_rec_done(&rec);
    return n;
}

static json_object *ok_reply(void)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

static json_object *pending_json(const watch *w, const pending *p)
{
    json_object *o = json_object_new_object();
    char pb[12];

    json_object_object_add(o, "id", json_object_new_int64((int64_t)p->id));
    json_object_object_add(o, "container", json_object_new_string(w->name));
    json_object_object_add(o, "dest", json_object_new_string(p->ip));
    if (p->port)
        json_object_object_add(o, "port", json_object_new_int((int)p->port));
    json_object_object_add(o, "protocol",
                           json_object_new_string(ip_proto_name((int)p->proto, pb, sizeof pb)));
    if (p->domain)
        json_object_object_add(o, "domain", json_object_new_string(p->domain));
    json_object_object_add(o, "first_ms", json_object_new_int64(p->first_ms));
    json_object_object_add(o, "last_ms", json_object_new_int64(p->last_ms));
    json_object_object_add(o, "count", json_object_new_int64((int64_t)p->count));
    return o;
}

/* A reply's list grows while the reply still fits one ctl message (CTL_MAX_MESSAGE: a longer
 * one is never sent) and holds at most max entries; what is left off is counted. In order:
 * nothing is added after the first entry that did not fit. */
typedef struct bounded_list {
    json_object *arr;
    size_t n, max, left, bytes;
} bounded_list;

static bool bounded_full(const bounded_list *b)
{
    return b->left || b->n >= b->max;
}

/* e: the next entry, or NULL once bounded_full() (it is only counted). */
static void bounded_add(bounded_list *b, json_object *e)
{
    const char *t = e ? json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN) : NULL;

    if (t && b->bytes + strlen(t) + 1 <= CTL_MAX_MESSAGE) {
        b->bytes += strlen(t) + 1;
        json_object_array_add(b->arr, e);
        b->n++;
        return;
    }
    json_object_put(e);
    b->left++;
}

static json_object *attached_json(const watch *w)
{
    json_object *c = json_object_new_object();

    json_object_object_add(c, "container", json_object_new_string(w->name));
    json_object_object_add(c, "pid", json_object_new_int64(w->pid));
    json_object_object_add(c, "events", json_object_new_int64((int64_t)w->events));
    if (w->invalid)
        json_object_object_add(c, "invalid_events", json_object_new_int64((int64_t)w->invalid));
    json_object_object_add(c, "pending", json_object_new_int64((int64_t)w->n_pend));
    json_object_object_add(c, "refreshes", json_object_new_int64((int64_t)w->rf_count));
    json_object_object_add(c, "refresh_failures", json_object_new_int64(w->rf_failures));
    if (w->rf_timer)
        json_object_object_add(
            c, "next_refresh_ms",
            json_object_new_int64(MAX(w->rf_due_ms - evloop_now_ms(), (int64_t)0)));
    return c;
}

/* Every attached container that fits one reply; "watching" counts them all. */
static json_object *status_reply(clearance_daemon *d)
{
    json_object *o = ok_reply();
    /* {"ok":true,"pid":N,"shield":"...","attached":[],"watching":N,"left_off":N} */
    bounded_list b = {.arr = json_object_new_array(), .max = SIZE_MAX, .bytes = 256};

    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(o, "shield", json_object_new_string(d->sh.plugin->name));
    for (size_t i = 0; i < d->n_w; i++)
        if (d->w[i]->fd >= 0)
            bounded_add(&b, bounded_full(&b) ? NULL : attached_json(d->w[i]));
    json_object_object_add(o, "attached", b.arr);
    json_object_object_add(o, "watching", json_object_new_int64((int64_t)(b.n + b.left)));
    if (b.left)
        json_object_object_add(o, "left_off", json_object_new_int64((int64_t)b.left));
    return o;
}

/* At most CLEARANCE_REPLY_MAX entries, in one ctl message; the rest are counted in left_off. */
static json_object *pending_reply(clearance_daemon *d, const char *only)
{
    json_object *o = ok_reply();
    /* {"ok":true,"pending":[],"left_off":N} */
    bounded_list b = {.arr = json_object_new_array(), .max = CLEARANCE_REPLY_MAX, .bytes = 64};

    for (size_t i = 0; i < d->n_w; i++) {
        watch *w = d->w[i];

        if (only && !streq(w->name, only))
            continue;
        for (size_t k = 0; k < w->n_pend; k++)
            bounded_add(&b, bounded_full(&b) ? NULL : pending_json(w, &w->pend[k]));
    }
    json_object_object_add(o, "pending", b.arr);
    if (b.left)
        json_object_object_add(o, "left_off", json_object_new_int64((int64_t)b.left));
    return o;
}

/* What a verdict names: a pending id ("7"), or an address or domain with an optional port
 * ("1.2.3.4", "1.2.3.4:443", "[2001:db8::1]:443", "example.com:443"). */
typedef struct dest_ref {
    uint64_t id;             /* > 0: by id */
    char host[DEST_MAX + 1]; /* lower case, no trailing dot */
    bool is_ip, v6;
    struct in6_addr addr;
    uint32_t port; /* 0: any */
} dest_ref;

static int parse_dest(const char *s, dest_ref *r, terok_error *err)
{
    size_t n = strlen(s);
    const char *host = s, *port = NULL;
    size_t hn = n;

    *r = (dest_ref){0};
    if (n == 0 || n > DEST_MAX)
        return terok_error_set(err, -EINVAL, "destination must be 1-%d characters", DEST_MAX);
    if (strspn(s, "0123456789") == n) {
        if (n > 19 || (r->id = strtoull(s, NULL, 10)) == 0)
            return terok_error_set(err, -EINVAL, "invalid request id '%s'", s);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-:[]*_", s[i]))
            return terok_error_set(
                err, -EINVAL, "destination '%.80s' contains a character that is not allowed", s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (!close || (close[1] != 0 && close[1] != ':'))
            return terok_error_set(err, -EINVAL, "invalid destination '%s'", s);
        host = s + 1;
        hn = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : NULL;
    } else if (strchr(s, ':') && strchr(s, ':') == strrchr(s, ':')) {
        port = strchr(s, ':') + 1;
        hn = (size_t)(port - 1 - s);
    }
    if (port) {
        char *end;
        unsigned long v = strtoul(port, &end, 10);

        if (!*port || *end || v == 0 || v > 65535 || strspn(port, "0123456789") != strlen(port))
            return terok_error_set(err, -EINVAL, "invalid port in destination '%s'", s);
        r->port = (uint32_t)v;
    }
    if (hn == 0 || hn > DEST_MAX)
        return terok_error_set(err, -EINVAL, "invalid destination '%s'", s);
    for (size_t i = 0; i < hn; i++)
        r->host[i] = (char)tolower((unsigned char)host[i]);
    r->host[hn] = 0;
    if (hn > 1 && r->host[hn - 1] == '.')
        r->host[hn - 1] = 0;
    if (inet_pton(AF_INET6, r->host, &r->addr) == 1) {
        r->is_ip = r->v6 = true;
    } else if (s[0] == '[') {
        return terok_error_set(err, -EINVAL,
                               "invalid destination '%s': brackets hold an IPv6 address", s);
    } else {
        struct in_addr a4;

        if (inet_pton(AF_INET, r->host, &a4) == 1) {
            r->is_ip = true;
            memcpy(&r->addr, &a4, sizeof a4);
        } else if (strchr(r->host, ':') || strchr(r->host, '[') || strchr(r->host, ']')) {
            return terok_error_set(err, -EINVAL, "invalid destination '%s'", s);
        }
    }
    return 0;
}

static bool dest_matches(const dest_ref *r, const pending *p)
{
    if (r->id)
        return p->id == r->id;
    if (r->port && r->port != p->port)
        return false;
    if (r->is_ip) {
        struct in6_addr a = {0};
        bool v6 = strchr(p->ip, ':') != NULL;

        if (v6 != r->v6 || inet_pton(v6 ? AF_INET6 : AF_INET, p->ip, &a) != 1)
            return false;
        return memcmp(&a, &r->addr, v6 ? 16 : 4) == 0;
    }
    return p->domain && strcasecmp(p->domain, r->host) == 0;
}

/* The shield target a verdict applies: what the operator named, or for an id the request's
 * domain (when known) or address, with its port. */
static int verdict_target(const dest_ref *r, const pending *p, char *buf, size_t len)
{
    const char *host = r->id ? (p->domain ? p->domain : p->ip) : r->host;
    uint32_t port = r->id ? p->port : r->port;
    bool brackets = port && strchr(host, ':');
    int n;

    if (port)
        n = snprintf(buf, len, "%s%s%s:%u", brackets ? "[" : "", host, brackets ? "]" : "", port);
    else
        n = snprintf(buf, len, "%s", host);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static json_object *apply_verdict(clearance_daemon *d, const struct ucred *peer, json_object *req,
                                  terok_error *err)
{
    const char *name, *dest, *action;
    json_object *jfor = NULL, *o;
    char target[DEST_MAX + 16];
    int64_t for_ms = 0;
    dest_ref ref;
    watch *w;
    pending *first = NULL;
    size_t matched = 0;
    bool allow;
    int r;

    if (!(name = req_container(d, req, true, err)) ||
        !(dest = ctl_req_string(req, "dest", DEST_MAX, err, true)) ||
        !(action = ctl_req_string(req, "action", 16, err, true)))
        return NULL;
    if (!streq(action, "allow") && !streq(action, "deny")) {
        terok_error_set(err, -EINVAL, "invalid action '%s' (allow or deny)", action);
        return NULL;
    }
    allow = streq(action, "allow");
    if (json_object_object_get_ex(req, "for_ms", &jfor) &&
        !json_object_is_type(jfor, json_type_null)) {
        if (!json_object_is_type(jfor, json_type_int) || !allow ||
            (for_ms = json_object_get_int64(jfor)) <= 0 || for_ms > INT64_C(366) * 86400000) {
            terok_error_set(err, -EINVAL, "'for_ms' must be a positive duration of an allow");
            return NULL;
        }
    }
    if (parse_dest(dest, &ref, err) < 0)
        return NULL;
    w = watch_find(d, name);
    for (size_t i = 0; w && i < w->n_pend; i++)
        if (dest_matches(&ref, &w->pend[i])) {
            if (!first)
                first = &w->pend[i];
            matched++;
        }
    if (!first) {
        terok_error_set(err, -ENOENT, "no pending request of '%s' matches '%s'", name, dest);
        return NULL;
    }
    if (verdict_target(&ref, first, target, sizeof target) < 0) {
        terok_error_set(err, -EINVAL, "destination '%s' is too long", dest);
        return NULL;
    }
    r = allow ? shield_allow(&d->sh, name, target, for_ms, err)
              : shield_deny(&d->sh, name, target, err);
    if (r < 0) {
        /* the requests stay pending: the operator can retry */
        terok_error_prefix(err, "%s '%s' for '%s'", action, target, name);
        return NULL;
    }
    queue_row(d, &(shield_audit_row){.at_ms = now_realtime_ms(),
                                     .container = name,
                                     .kind = action,
                                     .dest_ip = first->ip,
                                     .dest_port = (int32_t)first->port,
                                     .protocol = (int32_t)first->proto,
                                     .domain = first->domain,
                                     .target = target,
                                     .count = (int64_t)matched,
                                     .actor_uid = (int64_t)peer->uid});
    flush_audit(d);
    log_info("clearance: %s %s for '%s' (uid %u, %zu request(s))", action, target, name,
             (unsigned)peer->uid, matched);
    /* clear what the verdict answered */
    size_t j = 0;
    for (size_t i = 0; i < w->n_pend; i++) {
        if (dest_matches(&ref, &w->pend[i]))
            free(w->pend[i].domain);
        else
            w->pend[j++] = w->pend[i];
    }
    w->n_pend = j;
    o = ok_reply();
    json_object_object_add(o, "container", json_object_new_string(name));
    json_object_object_add(o, "action", json_object_new_string(action));
    json_object_object_add(o, "target", json_object_new_string(target));
    json_object_object_add(o, "requests", json_object_new_int64((int64_t)matched));
    if (for_ms)
        json_object_object_add(o, "duration_ms", json_object_new_int64(for_ms));
    return o;
}

static json_object *on_ctl(void *userdata, const struct ucred *peer, json_object *req,
                           terok_error *err)
{
    clearance_daemon *d = userdata;
    const char *op = ctl_req_string(req, "op", 32, err, true), *name;
    watch *w;

    if (!op)
        return NULL;
    if (streq(op, "ping") || streq(op, "status"))
        return status_reply(d);
    if (streq(op, "attach")) {
        if (!(name = req_container(d, req, true, err)) || !(w = watch_get(d, name)))
            return name ? (terok_error_set(err, -ENOMEM, "out of memory"), NULL) : NULL;
        if (attach(d, w, err) < 0) {
            /* already stopped again (a short-lived container): nothing to watch */
            if (err->code != -ESRCH)
                return NULL;
            terok_error_clear(err);
        }
        (void)runtime_changed(d, w); /* this start is handled */
        return status_reply(d);
    }
    if (streq(op, "detach") || streq(op, "forget")) {
        /* forget (rm) works for a container the store no longer holds */
        name = ctl_req_string(req, "container", 128, err, true);
        if (!name)
            return NULL;
        if (!container_name_is_valid(name)) {
            terok_error_set(err, -EINVAL, "invalid container name '%s'", name);
            return NULL;
        }
        if ((w = watch_find(d, name))) {
            if (streq(op, "forget"))
                watch_drop(d, w);
            else
                detach(w, "asked to");
        }
        return status_reply(d);
    }
    if (streq(op, "pending")) {
        json_object *v = NULL;

        if (json_object_object_get_ex(req, "container", &v) && v) {
            if (!(name = req_container(d, req, true, err)))
                return NULL;
            return pending_reply(d, name);
        }
        return pending_reply(d, NULL);
    }
    if (streq(op, "verdict"))
        return apply_verdict(d, peer, req, err);
    if (streq(op, "stop")) {
        log_info("clearance: stop requested by uid %u", (unsigned)peer->uid);
        evloop_exit(d->loop, 0);
        return ok_reply();
    }
    terok_error_set(err, -EINVAL, "unknown op '%s'", op);
    return NULL;
}

static int on_signal(evloop *l, int signo, uint32_t events, void *userdata)
{
    log_info("clearance: signal %d, shutting down", signo);
    evloop_exit(l, 0);
    return 0;
}

int clearance_daemon_run(sandbox *sb, const clearance_daemon_opts *o, terok_error *err)
{
    clearance_daemon d = {.sb = sb};
    int r;

    r = sandbox_store(sb, &d.st, err);
    if (r < 0)
        return r;
    d.db = store_sqlite(d.st);
    r = shield_open(sb->registry, TEROK_SHIELD_CAP_EVENTS, &d.sh, err);
    if (r < 0)
        return terok_error_prefix(err, "the clearance daemon needs a shield with events");
    if (!d.sh.plugin->ops.shield.events_dispatch)
        return terok_error_set(err, -EOPNOTSUPP, "shield backend '%s' has no events_dispatch",
                               d.sh.plugin->name);
    r = evloop_new(&d.loop);
    if (r < 0)
        return terok_error_set(err, r, "cannot create the event loop");
    r = mkdir_safe(sb->paths.runtime_dir, 0700, err);
    if (r < 0)
        goto out;
    if (clearance_ctl_path(sb->paths.runtime_dir, &d.ctl_path) < 0) {
        r = terok_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    r = ctl_server_new(d.loop, d.ctl_path, on_ctl, &d, &d.ctl, err);
    if (r < 0)
        goto out;
    if (stat(d.ctl_path, &d.ctl_st) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot stat '%s': %s", d.ctl_path,
                            strerror(errno));
        goto out;
    }
    r = evloop_add_signal(d.loop, SIGTERM, on_signal, &d);
    if (r >= 0)
        r = evloop_add_signal(d.loop, SIGINT, on_signal, &d);
    if (r < 0) {
        terok_error_set(err, r, "cannot handle signals: %s", strerror(-r));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    /* containers that run now: attached before anyone is told we are ready */
    rescan(&d);
    d.rescan_timer = evloop_add_timer(d.loop, CLEARANCE_RESCAN_MS, on_rescan, &d);
    if (o && o->ready)
        o->ready(o->ready_userdata);
    log_info("clearance: serving on '%s' (shield '%s')", d.ctl_path, d.sh.plugin->name);
    r = evloop_run(d.loop);
    if (r < 0)
        terok_error_set(err, r, "event loop failed: %s", strerror(-r));
out:
    while (d.n_w > 0)
        watch_drop(&d, d.w[0]);
    free(d.w);
    reap_children(&d, true);
    free(d.reap);
    flush_audit(&d);
    for (size_t i = 0; i < d.n_q; i++) {
        free(d.q[i].container);
        free(d.q[i].dest_ip);
        free(d.q[i].domain);
        free(d.q[i].target);
    }
    free(d.q);
    /* a socket that another daemon took over stays */
    if (d.ctl && !ctl_still_ours(&d))
        ctl_server_keep_path(d.ctl);
    ctl_server_free(d.ctl);
    free(d.ctl_path);
    evloop_free(d.loop);
    return r;
}
