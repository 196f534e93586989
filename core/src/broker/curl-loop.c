/* SPDX-License-Identifier: Apache-2.0 */
/* broker/curl-loop.c: libcurl's multi_socket API on top of evloop. */
#include <sys/epoll.h>

#include "broker/curl-loop.h"
#include "util/macro.h"

struct curl_loop {
    evloop *loop;
    CURLM *multi;
    int64_t timer_id;
    int running;
};

typedef struct xfer {
    curl_loop_done_cb done;
    void *userdata;
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
        curl_multi_remove_handle(c->multi, easy);
        if (x) {
            curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
            x->done(easy, result, x->userdata);
            free(x);
        }
    }
}

static int on_io(evloop *l, int fd, uint32_t events, void *userdata)
{
    curl_loop *c = userdata;
    int flags = 0;

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
    uint32_t ev = 0;

    if (what == CURL_POLL_REMOVE) {
        evloop_remove_io(c->loop, s);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev |= EPOLLOUT;
    if (evloop_set_io_events(c->loop, s, ev) == -ENOENT)
        (void)evloop_add_io(c->loop, s, ev, on_io, c);
    return 0;
}

static int on_timeout(evloop *l, void *userdata)
{
    curl_loop *c = userdata;

    c->timer_id = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    curl_loop *c = userp;

    if (c->timer_id)
        evloop_cancel_timer(c->loop, c->timer_id);
    c->timer_id = 0;
    if (timeout_ms >= 0)
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
    *ret = c;
    return 0;
}

curl_loop *curl_loop_free(curl_loop *c)
{
    if (!c)
        return NULL;
    if (c->timer_id)
        evloop_cancel_timer(c->loop, c->timer_id);
    curl_multi_cleanup(c->multi);
    free(c);
    return NULL;
}

int curl_loop_add(curl_loop *c, CURL *easy, curl_loop_done_cb done, void *userdata)
{
    xfer *x = calloc(1, sizeof(*x));

    if (!x)
        return -ENOMEM;
    x->done = done;
    x->userdata = userdata;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -EIO;
    }
    return 0;
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
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
}

CURLM *curl_loop_multi(curl_loop *c)
{
    return c->multi;
}
