/* SPDX-License-Identifier: Apache-2.0 */
/* broker/curl-loop.c: libcurl's multi_socket API on top of evloop. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/curl-loop.h"
#include "util/macro.h"

/* What we know of each socket libcurl opened through us (indexed by fd). A keep-alive
 * connection to the upstream goes idle between requests; libcurl then says CURL_POLL_REMOVE and
 * on the next request adds it again: two epoll_ctl() per request for nothing. Sockets libcurl
 * opened through our open/close callbacks therefore stay registered while idle (we know exactly
 * when they close); if an idle one reports an event (the upstream closed it), it is dropped
 * then. Other sockets (a resolver's pipe) are added and removed as libcurl says. */
enum {
    SOCK_OWNED = 1 << 0,      /* opened by libcurl through on_open, not closed yet */
    SOCK_REGISTERED = 1 << 1, /* in our epoll */
    SOCK_ACTIVE = 1 << 2,     /* libcurl wants events on it now */
    SOCK_TAKEN = 1 << 3,      /* a connect-only socket its owner watches (curl_loop_take_socket) */
};
typedef struct sock_state {
    uint8_t flags;
    uint32_t events;
} sock_state;

struct curl_loop {
    evloop *loop;
    CURLM *multi;
    int64_t timer_id;
    int idle_id;
    bool due; /* libcurl asked for a zero timeout: run it before the loop waits again */
    int running;
    sock_state *socks;
    size_t n_socks;
};

typedef struct xfer {
    curl_loop_done_cb done;
    void *userdata;
    bool keep; /* connect-only: stays in the multi once connected */
} xfer;

static void check_done(curl_loop *c)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        xfer *x = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (!x || !x->keep || result != CURLE_OK)
            curl_multi_remove_handle(c->multi, easy);
        if (x) {
            curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
            x->done(easy, result, x->userdata);
            free(x);
        }
    }
}

static sock_state *sock_get(curl_loop *c, int fd, bool grow)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= c->n_socks) {
        if (!grow)
            return NULL;
        size_t n = MAX((size_t)fd + 1, c->n_socks * 2);
        sock_state *v = reallocarray(c->socks, n, sizeof(*v));
        if (!v)
            return NULL;
        memset(v + c->n_socks, 0, (n - c->n_socks) * sizeof(*v));
        c->socks = v;
        c->n_socks = n;
    }
    return &c->socks[fd];
}

static void sock_unregister(curl_loop *c, int fd, sock_state *st)
{
    if (st && (st->flags & SOCK_REGISTERED))
        evloop_remove_io(c->loop, fd);
    if (st)
        st->flags &= (uint8_t) ~(SOCK_REGISTERED | SOCK_ACTIVE);
}

static int on_io(evloop *l, int fd, uint32_t events, void *userdata)
{
    curl_loop *c = userdata;
    sock_state *st = sock_get(c, fd, false);
    int flags = 0;

    if (st && !(st->flags & SOCK_ACTIVE)) {
        /* an idle keep-alive connection woke up (closed by the upstream): stop watching it;
         * libcurl finds it dead when it next tries to reuse it */
        sock_unregister(c, fd, st);
        return 0;
    }
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(c->multi, fd, flags, &c->running);
    check_done(c);
    return 0;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    curl_loop *c = userp;
    sock_state *st = sock_get(c, s, true);
    uint32_t ev = 0;

    if (st && (st->flags & SOCK_TAKEN))
        return 0;
    if (what == CURL_POLL_REMOVE) {
        if (st && (st->flags & SOCK_OWNED))
            st->flags &= (uint8_t)~SOCK_ACTIVE; /* stays in epoll while idle */
        else
            sock_unregister(c, s, st);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    if (st && (st->flags & SOCK_REGISTERED) && st->events == ev) {
        st->flags |= SOCK_ACTIVE;
        return 0;
    }
    if (evloop_set_io_events(c->loop, s, ev) == -ENOENT)
        (void)evloop_add_io(c->loop, s, ev, on_io, c);
    if (st) {
        st->flags |= SOCK_REGISTERED | SOCK_ACTIVE;
        st->events = ev;
    }
    return 0;
}

static curl_socket_t on_open(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    curl_loop *c = userp;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    sock_state *st;

    if (fd < 0)
        return CURL_SOCKET_BAD;
    st = sock_get(c, fd, true);
    if (st) {
        /* the number is new to the kernel: whatever we remembered for it is stale */
        if (st->flags & SOCK_REGISTERED)
            evloop_remove_io(c->loop, fd); /* fails quietly in the kernel, drops our watch */
        *st = (sock_state){.flags = SOCK_OWNED};
    }
    return fd;
}

static int on_close(void *userp, curl_socket_t fd)
{
    curl_loop *c = userp;
    sock_state *st = sock_get(c, fd, false);

    sock_unregister(c, fd, st);
    if (st)
        *st = (sock_state){0};
    return close(fd);
}

static void run_timeout(curl_loop *c)
{
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
}

static int on_timeout(evloop *l, void *userdata)
{
    curl_loop *c = userdata;

    c->timer_id = 0;
    run_timeout(c);
    return 0;
}

static bool on_idle(evloop *l, void *userdata)
{
    curl_loop *c = userdata;

    if (!c->due)
        return false;
    c->due = false;
    run_timeout(c);
    return true;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    curl_loop *c = userp;

    if (c->timer_id)
        evloop_cancel_timer(c->loop, c->timer_id);
    c->timer_id = 0;
    c->due = false;
    if (timeout_ms == 0)
        c->due = true; /* "as soon as possible": before the loop waits, not after a wait(0) */
    else if (timeout_ms > 0)
        c->timer_id = evloop_add_timer(c->loop, timeout_ms, on_timeout, c);
    return 0;
}

int curl_loop_new(evloop *l, curl_loop **ret)
{
    curl_loop *c = calloc(1, sizeof(*c));

    if (!c)
        return -ENOMEM;
    c->loop = l;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return -ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 256L);
    c->idle_id = evloop_add_idle(l, on_idle, c);
    if (c->idle_id < 0) {
        curl_multi_cleanup(c->multi);
        free(c);
        return -ENOMEM;
    }
    *ret = c;
    return 0;
}

curl_loop *curl_loop_free(curl_loop *c)
{
    if (!c)
        return NULL;
    if (c->timer_id)
        evloop_cancel_timer(c->loop, c->timer_id);
    curl_multi_cleanup(c->multi); /* closes the pooled connections through on_close */
    evloop_remove_prepare(c->loop, c->idle_id);
    for (size_t fd = 0; fd < c->n_socks; fd++)
        if (c->socks[fd].flags & SOCK_REGISTERED)
            evloop_remove_io(c->loop, (int)fd);
    free(c->socks);
    free(c);
    return NULL;
}

static int add(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata, bool keep)
{
    xfer *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    x->done = done;
    x->userdata = userdata;
    x->keep = keep;
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -EIO;
    }
    return 0;
}

int curl_loop_add(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata)
{
    return add(c, easy, done, userdata, false);
}

int curl_loop_add_connect_only(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata)
{
    return add(c, easy, done, userdata, true);
}

void curl_loop_take_socket(curl_loop *c, int fd)
{
    sock_state *st = sock_get(c, fd, true);

    sock_unregister(c, fd, st);
    if (st)
        st->flags |= SOCK_TAKEN;
}

void curl_loop_remove(curl_loop *c, CURL *easy)
{
    xfer *x = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(c->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
}

void curl_loop_kick(curl_loop *c)
{
    run_timeout(c);
}

CURLM *curl_loop_multi(curl_loop *c)
{
    return c->multi;
}
