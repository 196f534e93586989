/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/httpd.c: libmicrohttpd in external-epoll mode on our own listening sockets. */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon/httpd.h"
#include "error.h"
#include "log.h"
#include "util/macro.h"

struct httpd {
    evloop *loop;
    struct MHD_Daemon *mhd;
    int listen_fd;
    int epoll_fd; /* MHD's, watched by our loop */
    int prepare_id, idle_id;
    char *path;
    uint16_t port;
    atomic_bool kick; /* set by httpd_wake(): run MHD even without an fd event */
    bool settle;      /* a request completed: MHD will re-add its socket (see on_idle) */
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
};

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    /* MHD warns about TCP options on AF_UNIX sockets; nothing an operator can act on. */
    log_fullv(LOG_DEBUG, fmt, ap);
}

static int on_ready(evloop *l, int fd, uint32_t events, void *userdata)
{
    httpd *h = userdata;

    (void)MHD_run(h->mhd);
    return 0;
}

/* Work MHD has without an fd event: a connection resumed on this thread (httpd_kick) or one
 * MHD already knows to be ready (timeout 0: its edge-triggered epoll will not report it again).
 * Each MHD_run() costs an epoll_wait() on MHD's fd, but none of these can be skipped: after a
 * resumed connection's answer MHD needs one run to finish the request and one to find the
 * socket drained (perf, docs/architecture.md); fewer runs stall keep-alive clients. */
static bool on_idle(evloop *l, void *userdata)
{
    httpd *h = userdata;
    MHD_UNSIGNED_LONG_LONG t;

    if (atomic_exchange(&h->kick, false) || (MHD_get_timeout(h->mhd, &t) == MHD_YES && t == 0)) {
        (void)MHD_run(h->mhd);
        return true;
    }
    if (h->settle) {
        /* A keep-alive connection that was suspended goes back into MHD's epoll set only when
         * its next read finds nothing (EPOLL_CTL_ADD), and the ADD reports it writable at
         * once: one more run now takes that edge, instead of the loop waking for it. */
        h->settle = false;
        (void)MHD_run(h->mhd);
        return true; /* it may have started work (a pipelined request): look again */
    }
    return false;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    httpd *h = cls;

    h->settle = true;
    if (h->completed)
        h->completed(h->completed_cls, c, con_cls, why);
}

static void on_prepare(evloop *l, int *timeout_ms, void *userdata)
{
    httpd *h = userdata;
    MHD_UNSIGNED_LONG_LONG t;

    if (atomic_load(&h->kick)) { /* woken from another thread between the idle rounds */
        *timeout_ms = 0;
        return;
    }
    if (MHD_get_timeout(h->mhd, &t) != MHD_YES)
        return;
    if (t > INT32_MAX)
        t = INT32_MAX;
    if (*timeout_ms < 0 || (int)t < *timeout_ms)
        *timeout_ms = (int)t;
}

static int start(evloop *l, int fd, const httpd_config *c, httpd *h, terok_error *err)
{
    const union MHD_DaemonInfo *info;
    int r;

    h->loop = l;
    h->listen_fd = fd;
    h->epoll_fd = -EBADF;
    h->prepare_id = 0;
    h->idle_id = 0;
    h->completed = c->completed;
    h->completed_cls = c->completed_cls;
    h->mhd = MHD_start_daemon(
        MHD_USE_ERROR_LOG | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE, 0, NULL,
        NULL, c->handler, c->cls,
        /* 0.9.75: the logger must be the first option */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, c->connection_limit ? c->connection_limit : 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout ? c->connection_timeout : 60u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(c->connection_memory ? c->connection_memory : 32 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        c->unescape ? MHD_OPTION_UNESCAPE_CALLBACK : MHD_OPTION_END, c->unescape, NULL,
        MHD_OPTION_END);
    if (!h->mhd)
        return terok_error_set(err, -EIO, "cannot start the HTTP server");
    h->listen_fd = -EBADF; /* MHD owns it now and closes it in MHD_stop_daemon() */
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        return terok_error_set(err, -EIO, "HTTP server has no epoll fd");
    h->epoll_fd = info->epoll_fd;
    r = evloop_add_io(l, h->epoll_fd, EPOLLIN, on_ready, h);
    if (r < 0)
        return terok_error_set(err, r, "watching the HTTP server: %s", strerror(-r));
    r = evloop_add_prepare(l, on_prepare, h);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    h->prepare_id = r;
    r = evloop_add_idle(l, on_idle, h);
    if (r < 0)
        return terok_error_set(err, r, "out of memory");
    h->idle_id = r;
    return 0;
}

int httpd_bind_unix(const char *path, mode_t mode, terok_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    int fd, r;

    if (n >= sizeof sa.sun_path)
        return terok_error_set(err, -ENAMETOOLONG, "socket path '%s' is too long (%zu bytes)", path,
                               n);
    memcpy(sa.sun_path, path, n);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "socket: %s", strerror(errno));
    (void)unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || chmod(path, mode) < 0 ||
        listen(fd, 128) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot listen on '%s': %s", path,
                            strerror(errno));
        close(fd);
        unlink(path);
        return r;
    }
    return fd;
}

static int bind_tcp(const char *ipv4, uint16_t port, bool reuseport, uint16_t *ret_port,
                    terok_error *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t len = sizeof sa;
    int fd, one = 1, r;

    if (inet_pton(AF_INET, ipv4, &sa.sin_addr) != 1)
        return terok_error_set(err, -EINVAL, "invalid listen address '%s'", ipv4);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "socket: %s", strerror(errno));
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        r = terok_error_set(err, negative_errno(), "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return r;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        r = terok_error_set(err, negative_errno(), "cannot listen on %s:%u: %s", ipv4, port,
                            strerror(errno));
        close(fd);
        return r;
    }
    *ret_port = ntohs(sa.sin_port);
    return fd;
}

int httpd_bind_tcp(const char *ipv4, uint16_t port, uint16_t *ret_port, terok_error *err)
{
    return bind_tcp(ipv4, port, false, ret_port, err);
}

int httpd_bind_tcp_reuseport(const char *ipv4, uint16_t port, uint16_t *ret_port, terok_error *err)
{
    return bind_tcp(ipv4, port, true, ret_port, err);
}

int httpd_listen_fd(evloop *l, int fd, const httpd_config *c, httpd **ret, terok_error *err)
{
    httpd *h = calloc(1, sizeof(*h));
    int r;

    if (!h) {
        close(fd);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    r = start(l, fd, c, h, err);
    if (r < 0) {
        httpd_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

int httpd_listen_unix(evloop *l, const char *path, mode_t mode, const httpd_config *c, httpd **ret,
                      terok_error *err)
{
    httpd *h;
    int fd, r;

    fd = httpd_bind_unix(path, mode, err);
    if (fd < 0)
        return fd;
    h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        unlink(path);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    h->path = strdup(path);
    r = start(l, fd, c, h, err);
    if (r < 0) {
        httpd_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

int httpd_listen_tcp(evloop *l, const char *ipv4, uint16_t port, const httpd_config *c, httpd **ret,
                     terok_error *err)
{
    uint16_t bound = 0;
    httpd *h;
    int fd, r;

    fd = httpd_bind_tcp(ipv4, port, &bound, err);
    if (fd < 0)
        return fd;
    h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    h->port = bound;
    r = start(l, fd, c, h, err);
    if (r < 0) {
        httpd_free(h);
        return r;
    }
    *ret = h;
    return 0;
}

httpd *httpd_free(httpd *h)
{
    if (!h)
        return NULL;
    if (h->prepare_id > 0)
        evloop_remove_prepare(h->loop, h->prepare_id);
    if (h->idle_id > 0)
        evloop_remove_prepare(h->loop, h->idle_id);
    if (h->epoll_fd >= 0)
        evloop_remove_io(h->loop, h->epoll_fd);
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->path) {
        unlink(h->path);
        free(h->path);
    }
    free(h);
    return NULL;
}

uint16_t httpd_port(const httpd *h)
{
    return h->port;
}

struct MHD_Daemon *httpd_mhd(httpd *h)
{
    return h->mhd;
}

void httpd_kick(httpd *h)
{
    atomic_store(&h->kick, true);
}

void httpd_wake(httpd *h)
{
    atomic_store(&h->kick, true);
    evloop_wake(h->loop);
}
