/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ssh-signer.c: per-container ssh-agent sockets served from the daemon's evloop:
 * non-blocking, partial reads and writes handled, a message larger than SSH_AGENT_MAX_MESSAGE
 * closes the connection, anything else unexpected gets SSH_AGENT_FAILURE and the connection
 * goes on. Keys come from the vault per signature, never cached. Never prints. */
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "broker/ssh-agent.h"
#include "broker/ssh-signer.h"
#include "error.h"
#include "sshkeys.h"
#include "util/macro.h"

typedef struct conn conn;
typedef struct listener listener;

struct ssh_signer {
    evloop *loop;
    vault *vault;
    sqlite3 *db;
    void (*audit)(void *, const broker_audit *);
    void *audit_userdata;
    listener *listeners;
    pthread_mutex_t *mu;
};

static void lock(ssh_signer *s)
{
    if (s->mu)
        pthread_mutex_lock(s->mu);
}

static void unlock(ssh_signer *s)
{
    if (s->mu)
        pthread_mutex_unlock(s->mu);
}

struct listener {
    ssh_signer *s;
    char *container, *scope, *path;
    int fd;
    conn *conns;
    size_t n_conns;
    listener *next;
};

struct conn {
    listener *l;
    int fd;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off;
    conn *next;
};

static void conn_free(conn *c)
{
    listener *l = c->l;

    for (conn **i = &l->conns; *i; i = &(*i)->next)
        if (*i == c) {
            *i = c->next;
            break;
        }
    l->n_conns--;
    evloop_remove_io(l->s->loop, c->fd);
    close(c->fd);
    /* sign requests carry data to be signed: not secret, but not ours to leave around */
    if (c->in)
        sodium_memzero(c->in, c->in_cap);
    free(c->in);
    free(c->out);
    free(c);
}

static void listener_free(listener *l)
{
    while (l->conns)
        conn_free(l->conns);
    if (l->fd >= 0) {
        evloop_remove_io(l->s->loop, l->fd);
        close(l->fd);
    }
    if (l->path)
        (void)unlink(l->path);
    free(l->container);
    free(l->scope);
    free(l->path);
    free(l);
}

/* ---- the agent's view of one connection ---- */

static int ops_identities(void *ud, sshkey_info_cb cb, void *cb_ud)
{
    listener *l = ud;

    int r;

    if (!l->s->vault)
        return 0;
    lock(l->s);
    r = sshkeys_scope_identities(l->s->vault, l->s->db, l->scope, cb, cb_ud, NULL);
    unlock(l->s);
    return r;
}

typedef struct pick {
    const uint8_t *pk;
    char *name;
    char fp[SSHKEY_FP_SIZE];
} pick;

static int pick_cb(void *ud, const sshkey_info *k)
{
    pick *p = ud;

    if (sodium_memcmp(k->pk, p->pk, SSHKEY_PK_BYTES) != 0)
        return 0;
    p->name = strdup(k->name);
    snprintf(p->fp, sizeof p->fp, "%s", k->fingerprint);
    return 1;
}

static int ops_sign(void *ud, const uint8_t pk[SSHKEY_PK_BYTES], const uint8_t *data, size_t len,
                    uint8_t sig[SSHKEY_SIG_BYTES])
{
    listener *l = ud;
    pick p = {.pk = pk};
    sshkey k = {0};
    int64_t t0 = evloop_now_ms();
    const char *outcome = "ok";
    int r = -EPERM;

    lock(l->s);
    if (!l->s->vault)
        outcome = "no-vault";
    else if (sshkeys_scope_identities(l->s->vault, l->s->db, l->scope, pick_cb, &p, NULL) < 0)
        outcome = "vault-error";
    else if (!p.name)
        outcome = "key-not-in-scope";
    else if (sshkeys_load(l->s->vault, p.name, &k, NULL) < 0)
        outcome = "vault-error";
    else {
        r = sshkey_sign(k.seed, pk, data, len, sig, NULL);
        if (r < 0)
            outcome = "key-mismatch";
    }
    unlock(l->s);
    sshkey_done(&k); /* the seed is wiped here: one signature, no cache */
    if (!p.name)
        sshkey_fingerprint(pk, p.fp);
    if (l->s->audit) {
        broker_audit a = {
            .container = l->container,
            .route = "ssh-agent",
            .method = "SIGN",
            .path = p.fp,
            .outcome = outcome,
            .status = r < 0 ? 403 : 200,
            .bytes_in = len,
            .duration_us = (evloop_now_ms() - t0) * 1000,
        };
        l->s->audit(l->s->audit_userdata, &a);
    }
    free(p.name);
    return r;
}

static const ssh_agent_ops agent_ops = {ops_identities, ops_sign};

/* ---- I/O ---- */

static int flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -errno;
        }
        c->out_off += (size_t)k;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    return 0;
}

static int queue_reply(conn *c, uint8_t *reply, size_t n)
{
    if (!c->out) {
        c->out = reply;
        c->out_len = n;
        c->out_off = 0;
        return 0;
    }
    uint8_t *p = realloc(c->out, c->out_len + n);
    if (!p) {
        free(reply);
        return -ENOMEM;
    }
    memcpy(p + c->out_len, reply, n);
    c->out = p;
    c->out_len += n;
    free(reply);
    return 0;
}

/* Answer every whole message in the input buffer; < 0 closes the connection. */
static int process(conn *c)
{
    size_t off = 0;
    int r = 0;

    for (;;) {
        int64_t f = ssh_agent_frame(c->in + off, c->in_len - off);
        uint8_t *reply = NULL;
        size_t n = 0;

        if (f < 0) {
            r = (int)f;
            break;
        }
        if (f == 0)
            break;
        r = ssh_agent_handle(c->in + off + 4, (size_t)f - 4, &agent_ops, c->l, &reply, &n);
        sodium_memzero(c->in + off, (size_t)f);
        off += (size_t)f;
        if (r == -ENOMEM || queue_reply(c, reply, n) < 0) {
            r = -ENOMEM;
            break;
        }
        r = 0;
        /* A client that does not read its replies stops being read (no unbounded queue). */
        if (c->out_len - c->out_off > 4 * SSH_AGENT_MAX_MESSAGE)
            break;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return r;
}

static int on_conn(evloop *loop, int fd, uint32_t events, void *ud)
{
    conn *c = ud;
    int r;

    (void)loop;
    (void)fd;
    if (events & EPOLLOUT) {
        if (flush_out(c) < 0) {
            conn_free(c);
            return 0;
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        for (;;) {
            if (c->in_len == c->in_cap) {
                size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
                cap = MIN(cap, 4 + SSH_AGENT_MAX_MESSAGE);
                if (cap == c->in_cap)
                    break; /* full: process() below drains or refuses it */
                uint8_t *p = realloc(c->in, cap);
                if (!p) {
                    conn_free(c);
                    return 0;
                }
                c->in = p;
                c->in_cap = cap;
            }
            ssize_t k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
            if (k < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (k == 0) { /* half-closed: answer what came, best effort, then close */
                (void)process(c);
                (void)flush_out(c);
                conn_free(c);
                return 0;
            }
            if (k < 0) {
                conn_free(c);
                return 0;
            }
            c->in_len += (size_t)k;
            if (ssh_agent_frame(c->in, c->in_len) != 0)
                break; /* a whole message (or a refused one) is there */
        }
    }
    /* also after a flush: messages held back while the client was not reading */
    r = process(c);
    if (r < 0) {
        conn_free(c);
        return 0;
    }
    if (flush_out(c) < 0) {
        conn_free(c);
        return 0;
    }
    (void)evloop_set_io_events(c->l->s->loop, c->fd, c->out ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP));
    return 0;
}

static int on_accept(evloop *loop, int fd, uint32_t events, void *ud)
{
    listener *l = ud;

    (void)events;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        conn *c;

        if (cfd < 0)
            return 0; /* EAGAIN, or a transient error: the listener stays */
        if (l->n_conns >= SSH_SIGNER_MAX_CLIENTS) {
            close(cfd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(cfd);
            continue;
        }
        c->l = l;
        c->fd = cfd;
        if (evloop_add_io(loop, cfd, EPOLLIN | EPOLLRDHUP, on_conn, c) < 0) {
            close(cfd);
            free(c);
            continue;
        }
        c->next = l->conns;
        l->conns = c;
        l->n_conns++;
    }
}

int ssh_signer_new(evloop *l, vault *v, sqlite3 *db, void (*audit)(void *, const broker_audit *),
                   void *audit_userdata, ssh_signer **ret)
{
    ssh_signer *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    *s = (ssh_signer){l, v, db, audit, audit_userdata, NULL, NULL};
    *ret = s;
    return 0;
}

ssh_signer *ssh_signer_free(ssh_signer *s)
{
    if (!s)
        return NULL;
    while (s->listeners) {
        listener *l = s->listeners;
        s->listeners = l->next;
        listener_free(l);
    }
    free(s);
    return NULL;
}

int ssh_signer_close(ssh_signer *s, const char *container)
{
    int n = 0;

    for (listener **i = &s->listeners; *i;) {
        if (streq((*i)->container, container)) {
            listener *d = *i;
            *i = d->next;
            listener_free(d);
            n++;
        } else
            i = &(*i)->next;
    }
    return n;
}

size_t ssh_signer_listeners(ssh_signer *s)
{
    size_t n = 0;

    for (listener *i = s ? s->listeners : NULL; i; i = i->next)
        n++;
    return n;
}

int ssh_signer_open(ssh_signer *s, const char *container, const char *dir, terok_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_free_ char *scope = NULL, *path = NULL;
    listener *l;
    int r, fd;

    (void)ssh_signer_close(s, container);
    if (asprintf(&path, "%s/ssh-agent.sock", dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    lock(s);
    r = sshkeys_container_scope(s->db, container, &scope, err);
    unlock(s);
    if (r == -ENOENT) {
        (void)unlink(path);
        return 0;
    }
    if (r < 0)
        return r;
    if (strlen(path) >= sizeof sa.sun_path)
        return terok_error_set(err, -ENAMETOOLONG, "socket path '%s' is too long", path);
    memcpy(sa.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "socket: %s", strerror(errno));
    (void)unlink(path);
    /* 0666: the container's mapped uid connects through the 0711 directory (MACHINE.md §13.1) */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, 0666) < 0 ||
        listen(fd, 32) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot listen on '%s': %s", path,
                            strerror(errno));
        close(fd);
        (void)unlink(path);
        return r;
    }
    l = calloc(1, sizeof(*l));
    if (!l || !(l->container = strdup(container))) {
        free(l);
        close(fd);
        (void)unlink(path);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    l->s = s;
    l->fd = fd;
    l->scope = TAKE_PTR(scope);
    l->path = TAKE_PTR(path);
    r = evloop_add_io(s->loop, fd, EPOLLIN, on_accept, l);
    if (r < 0) {
        listener_free(l);
        return terok_error_set(err, r, "cannot watch the ssh-agent socket: %s", strerror(-r));
    }
    l->next = s->listeners;
    s->listeners = l;
    return 1;
}

void ssh_signer_set_lock(ssh_signer *s, pthread_mutex_t *mu)
{
    s->mu = mu;
}
