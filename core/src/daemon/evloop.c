/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/evloop.c: epoll + eventfd + signalfd + a small timer list. Single-threaded except for
 * evloop_wake(). Never prints. */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>

#include "daemon/evloop.h"
#include "util/macro.h"

typedef struct io_watch {
    int fd;
    bool removed;
    bool urgent;
    evloop_io_cb cb;
    void *userdata;
    struct io_watch *next;
} io_watch;

typedef struct timer {
    int64_t id, due;
    evloop_timer_cb cb;
    void *userdata;
    struct timer *next;
} timer;

typedef struct prepare {
    int id;
    evloop_prepare_cb cb;
    evloop_idle_cb idle;
    void *userdata;
    struct prepare *next;
} prepare;

struct evloop {
    int epfd, wakefd, sigfd;
    sigset_t sigs;
    io_watch *watches;
    timer *timers;
    prepare *prepares;
    int64_t next_timer_id;
    int next_prepare_id;
    evloop_prepare_cb wake_cb;
    void *wake_userdata;
    struct {
        int signo;
        evloop_io_cb cb;
        void *userdata;
    } sighandlers[8];
    size_t n_sighandlers;
    bool exiting;
    int exit_code;
};

int64_t evloop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int evloop_new(evloop **ret)
{
    evloop *l = calloc(1, sizeof(*l));
    struct epoll_event ev = {.events = EPOLLIN};

    if (!l)
        return -ENOMEM;
    l->sigfd = -EBADF;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wakefd < 0) {
        int r = negative_errno();
        evloop_free(l);
        return r;
    }
    ev.data.fd = l->wakefd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
        int r = negative_errno();
        evloop_free(l);
        return r;
    }
    sigemptyset(&l->sigs);
    *ret = l;
    return 0;
}

evloop *evloop_free(evloop *l)
{
    if (!l)
        return NULL;
    for (io_watch *w = l->watches, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    for (timer *t = l->timers, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    for (prepare *p = l->prepares, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    if (l->sigfd >= 0) {
        close(l->sigfd);
        sigprocmask(SIG_UNBLOCK, &l->sigs, NULL);
    }
    if (l->wakefd >= 0)
        close(l->wakefd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l);
    return NULL;
}

static io_watch *find_watch(evloop *l, int fd)
{
    for (io_watch *w = l->watches; w; w = w->next)
        if (w->fd == fd && !w->removed)
            return w;
    return NULL;
}

int evloop_add_io(evloop *l, int fd, uint32_t events, evloop_io_cb cb, void *userdata)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    io_watch *w;

    if (fd < 0 || !cb || find_watch(l, fd))
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int r = negative_errno();
        free(w);
        return r;
    }
    *w = (io_watch){.fd = fd, .cb = cb, .userdata = userdata, .next = l->watches};
    l->watches = w;
    return 0;
}

int evloop_set_io_events(evloop *l, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};

    if (!find_watch(l, fd))
        return -ENOENT;
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? negative_errno() : 0;
}

int evloop_set_urgent(evloop *l, int fd)
{
    io_watch *w = find_watch(l, fd);

    if (!w)
        return -ENOENT;
    w->urgent = true;
    return 0;
}

int evloop_remove_io(evloop *l, int fd)
{
    io_watch *w = find_watch(l, fd);

    if (!w)
        return -ENOENT;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->removed = true; /* freed after the current dispatch round */
    return 0;
}

static void reap_removed(evloop *l)
{
    for (io_watch **p = &l->watches; *p;) {
        if ((*p)->removed) {
            io_watch *d = *p;
            *p = d->next;
            free(d);
        } else
            p = &(*p)->next;
    }
}

int64_t evloop_add_timer(evloop *l, int64_t ms, evloop_timer_cb cb, void *userdata)
{
    timer *t = calloc(1, sizeof(*t));

    if (!t)
        return -ENOMEM;
    *t = (timer){.id = ++l->next_timer_id,
                 .due = evloop_now_ms() + MAX(ms, 0),
                 .cb = cb,
                 .userdata = userdata};
    /* keep sorted by due time */
    timer **p = &l->timers;
    while (*p && (*p)->due <= t->due)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    return t->id;
}

void evloop_cancel_timer(evloop *l, int64_t id)
{
    for (timer **p = &l->timers; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            timer *d = *p;
            *p = d->next;
            free(d);
            return;
        }
}

int evloop_add_prepare(evloop *l, evloop_prepare_cb cb, void *userdata)
{
    prepare *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    *p = (prepare){.id = ++l->next_prepare_id, .cb = cb, .userdata = userdata, .next = l->prepares};
    l->prepares = p;
    return p->id;
}

int evloop_add_idle(evloop *l, evloop_idle_cb cb, void *userdata)
{
    prepare *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    *p = (prepare){
        .id = ++l->next_prepare_id, .idle = cb, .userdata = userdata, .next = l->prepares};
    l->prepares = p;
    return p->id;
}

void evloop_remove_prepare(evloop *l, int id)
{
    for (prepare **p = &l->prepares; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            prepare *d = *p;
            *p = d->next;
            free(d);
            return;
        }
}

void evloop_wake(evloop *l)
{
    uint64_t one = 1;

    (void)!write(l->wakefd, &one, sizeof one);
}

void evloop_on_wake(evloop *l, evloop_prepare_cb cb, void *userdata)
{
    l->wake_cb = cb;
    l->wake_userdata = userdata;
}

static int on_signal(evloop *l, int fd, uint32_t events, void *userdata)
{
    struct signalfd_siginfo si;

    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        for (size_t i = 0; i < l->n_sighandlers; i++)
            if (l->sighandlers[i].signo == (int)si.ssi_signo) {
                int r =
                    l->sighandlers[i].cb(l, (int)si.ssi_signo, events, l->sighandlers[i].userdata);
                if (r < 0)
                    return r;
            }
    return 0;
}

int evloop_add_signal(evloop *l, int signo, evloop_io_cb cb, void *userdata)
{
    int fd;

    if (l->n_sighandlers >= ELEMENTSOF(l->sighandlers))
        return -ENOSPC;
    sigaddset(&l->sigs, signo);
    if (sigprocmask(SIG_BLOCK, &l->sigs, NULL) < 0)
        return negative_errno();
    fd = signalfd(l->sigfd >= 0 ? l->sigfd : -1, &l->sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return negative_errno();
    if (l->sigfd < 0) {
        int r = evloop_add_io(l, fd, EPOLLIN, on_signal, NULL);
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    l->sigfd = fd;
    l->sighandlers[l->n_sighandlers].signo = signo;
    l->sighandlers[l->n_sighandlers].cb = cb;
    l->sighandlers[l->n_sighandlers].userdata = userdata;
    l->n_sighandlers++;
    return 0;
}

void evloop_exit(evloop *l, int code)
{
    l->exiting = true;
    l->exit_code = code;
}

static int run_due_timers(evloop *l)
{
    int64_t now = evloop_now_ms();

    while (l->timers && l->timers->due <= now) {
        timer *t = l->timers;
        l->timers = t->next;
        int r = t->cb(l, t->userdata);
        free(t);
        if (r < 0)
            return r;
    }
    return 0;
}

static int dispatch(evloop *l, struct epoll_event *evs, int n, bool urgent)
{
    for (int i = 0; i < n && !l->exiting; i++) {
        int fd = evs[i].data.fd, r;

        if (fd == l->wakefd) {
            if (urgent)
                continue;
            uint64_t v;
            (void)!read(l->wakefd, &v, sizeof v);
            if (l->wake_cb)
                l->wake_cb(l, NULL, l->wake_userdata);
            continue;
        }
        io_watch *w = find_watch(l, fd);
        if (!w || w->urgent != urgent)
            continue;
        r = w->cb(l, fd, evs[i].events, w->userdata);
        if (r < 0)
            return r;
    }
    return 0;
}

int evloop_run(evloop *l)
{
    struct epoll_event evs[256];

    l->exiting = false;
    l->exit_code = 0;
    while (!l->exiting) {
        int timeout = -1, n, r;

        r = run_due_timers(l);
        if (r < 0)
            return r;
        if (l->exiting)
            break;
        /* Idle hooks until none has work left (bounded, so fds are not starved), then the
         * prepare hooks, which may only lower the timeout. */
        bool busy = true;
        for (int round = 0; busy && round < 8 && !l->exiting; round++) {
            busy = false;
            for (prepare *p = l->prepares; p; p = p->next)
                if (p->idle && p->idle(l, p->userdata))
                    busy = true;
        }
        if (busy)
            timeout = 0;
        for (prepare *p = l->prepares; p; p = p->next)
            if (p->cb)
                p->cb(l, &timeout, p->userdata);
        if (l->timers) {
            int64_t d = l->timers->due - evloop_now_ms();
            d = MAX(d, 0);
            if (timeout < 0 || d < timeout)
                timeout = (int)MIN(d, INT32_MAX);
        }
        n = epoll_wait(l->epfd, evs, (int)ELEMENTSOF(evs), timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        /* urgent watches first: what they report must be known before other fds are served */
        r = dispatch(l, evs, n, true);
        if (r >= 0)
            r = dispatch(l, evs, n, false);
        if (r < 0)
            return r;
        reap_removed(l);
    }
    return l->exit_code;
}
