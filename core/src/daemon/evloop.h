/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/evloop.h: the single-threaded epoll loop every daemon runs (DESIGN §1: one loop per
 * daemon process holding its control socket, one libmicrohttpd daemon per container socket,
 * timers, NFLOG fds, and an eventfd to wake it from other threads). Never prints. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct evloop evloop;

/* Called with the epoll events that fired. A negative return stops the loop with that code. */
typedef int (*evloop_io_cb)(evloop *l, int fd, uint32_t events, void *userdata);
/* Called once when the timer fires. Negative stops the loop. */
typedef int (*evloop_timer_cb)(evloop *l, void *userdata);
/* Called before each wait; may lower *timeout_ms (-1 = none yet) for fds that need a deadline. */
typedef void (*evloop_prepare_cb)(evloop *l, int *timeout_ms, void *userdata);

int evloop_new(evloop **ret);
evloop *evloop_free(evloop *l);

/* Watch fd (not owned) for EPOLLIN/EPOLLOUT...; one watch per fd. */
int evloop_add_io(evloop *l, int fd, uint32_t events, evloop_io_cb cb, void *userdata);
int evloop_set_io_events(evloop *l, int fd, uint32_t events);
/* Dispatch this fd's events before the others of the same wait (e.g. an invalidation signal
 * that must be seen before the requests that arrived with it). */
int evloop_set_urgent(evloop *l, int fd);
/* Safe from inside any callback, including the fd's own. */
int evloop_remove_io(evloop *l, int fd);

/* One-shot timer after `ms` milliseconds (monotonic). Returns a positive id. */
int64_t evloop_add_timer(evloop *l, int64_t ms, evloop_timer_cb cb, void *userdata);
void evloop_cancel_timer(evloop *l, int64_t id);

/* Called before each wait, repeatedly (up to 8 rounds) while any idle hook returns true ("I did
 * work, and may have made work for others"): how same-thread wake-ups (a resumed MHD connection,
 * a transfer libcurl wants run at once) happen without an eventfd or an extra epoll_wait(0). */
typedef bool (*evloop_idle_cb)(evloop *l, void *userdata);
int evloop_add_idle(evloop *l, evloop_idle_cb cb, void *userdata); /* removed like a prepare hook */

/* One prepare hook per owner; returns an id for removal. */
int evloop_add_prepare(evloop *l, evloop_prepare_cb cb, void *userdata);
void evloop_remove_prepare(evloop *l, int id);

/* Thread-safe: wakes a blocked evloop_run() (prepare hooks run again). */
void evloop_wake(evloop *l);
/* Calls cb when the loop is woken (after a wake from another thread). */
void evloop_on_wake(evloop *l, evloop_prepare_cb cb, void *userdata);

/* Handle these signals in the loop (they are blocked for the process). */
int evloop_add_signal(evloop *l, int signo, evloop_io_cb cb, void *userdata);

/* Runs until evloop_exit() or a callback fails; returns the exit code (0) or the failure. */
int evloop_run(evloop *l);
void evloop_exit(evloop *l, int code);
/* Monotonic milliseconds. */
int64_t evloop_now_ms(void);
