/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/httpd.h: one libmicrohttpd daemon per listening socket, driven by the daemon's evloop
 * (no MHD threads; MACHINE.md §13.5). We create, bind, chmod and listen on the socket ourselves
 * and hand it to MHD; the per-listener `cls` is the container context, so the socket a request
 * arrived on is its identity. After MHD_resume_connection() call httpd_kick() (or httpd_wake()
 * from another thread). Never prints:
 * MHD's own messages go to the log at debug level. */
#pragma once

#include <microhttpd.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/evloop.h"
#include "terok/error.h"

typedef struct httpd httpd;

typedef struct httpd_config {
    MHD_AccessHandlerCallback handler;
    void *cls;
    MHD_RequestCompletedCallback completed; /* may be NULL */
    void *completed_cls;
    unsigned connection_limit;   /* 0: 64 */
    unsigned connection_timeout; /* seconds; 0: 60 */
    size_t connection_memory;    /* per-connection pool; 0: MHD default (32 KiB) */
    /* MHD_OPTION_UNESCAPE_CALLBACK; NULL keeps MHD's percent-decoding */
    size_t (*unescape)(void *cls, struct MHD_Connection *c, char *s);
} httpd_config;

/* Unix socket at path (a stale file is replaced), chmod `mode` (0666 for container sockets). */
int httpd_listen_unix(evloop *l, const char *path, mode_t mode, const httpd_config *c, httpd **ret,
                      terok_error *err);
/* Loopback TCP (tests and benchmarks); port 0 picks one (see httpd_port). */
int httpd_listen_tcp(evloop *l, const char *ipv4, uint16_t port, const httpd_config *c, httpd **ret,
                     terok_error *err);
/* The listening sockets alone (non-blocking, close-on-exec), for servers that run MHD in its
 * own threads: return the fd or a negative errno. */
int httpd_bind_unix(const char *path, mode_t mode, terok_error *err);
int httpd_bind_tcp(const char *ipv4, uint16_t port, uint16_t *ret_port, terok_error *err);
/* The same with SO_REUSEPORT: one socket per worker thread on the same port, and the kernel
 * spreads new connections across them. */
int httpd_bind_tcp_reuseport(const char *ipv4, uint16_t port, uint16_t *ret_port, terok_error *err);
/* An MHD daemon on a listening socket bound elsewhere (a dup of a socket several worker loops
 * share: whichever is ready accepts, the others get EAGAIN). Takes fd, also on failure. */
int httpd_listen_fd(evloop *l, int fd, const httpd_config *c, httpd **ret, terok_error *err);
/* Stops the MHD daemon, closes the socket, unlinks a Unix socket file we created. */
httpd *httpd_free(httpd *h);
uint16_t httpd_port(const httpd *h);
struct MHD_Daemon *httpd_mhd(httpd *h);
/* Thread-safe: make the loop run MHD again (after MHD_resume_connection). */
void httpd_wake(httpd *h);
/* The same from the loop's own thread (a callback): the prepare hook runs MHD before the loop
 * waits again, so no eventfd write and wake-up is needed. */
void httpd_kick(httpd *h);
