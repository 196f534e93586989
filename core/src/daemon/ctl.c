/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/ctl.c: control sockets for daemons and their clients. Input is bounded and parsed with
 * json-c; a peer that is not root or our uid is dropped before it sends anything. */
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon/ctl.h"
#include "error.h"
#include "log.h"
#include "util/macro.h"

typedef struct ctl_client {
    int fd;
    struct ucred peer;
    struct ctl_client *next;
} ctl_client;

struct ctl_server {
    evloop *loop;
    int fd;
    char *path; /* NULL when adopted */
    ctl_handler handler;
    void *userdata;
    ctl_client *clients;
    size_t n_clients;
};

const char *ctl_req_string(json_object *req, const char *key, size_t max, terok_error *err,
                           bool required)
{
    json_object *v = NULL;
    const char *s;

    if (!json_object_object_get_ex(req, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            terok_error_set(err, -EINVAL, "request without '%s'", key);
        return NULL;
    }
    if (!json_object_is_type(v, json_type_string)) {
        terok_error_set(err, -EINVAL, "'%s' must be a string", key);
        return NULL;
    }
    s = json_object_get_string(v);
    if (strlen(s) > max || (size_t)json_object_get_string_len(v) != strlen(s)) {
        terok_error_set(err, -EINVAL, "'%s' is too long or contains a NUL byte", key);
        return NULL;
    }
    return s;
}

json_object *ctl_container_dispatch(const ctl_container_ops *ops, void *userdata,
                                    const struct ucred *peer, json_object *req, terok_error *err)
{
    json_object *op = NULL, *name = NULL, *reply;
    const char *o, *n;

    json_object_object_get_ex(req, "op", &op);
    json_object_object_get_ex(req, "container", &name);
    if (!op || !json_object_is_type(op, json_type_string)) {
        terok_error_set(err, -EINVAL, "request without an 'op'");
        return NULL;
    }
    if (!(o = ctl_req_string(req, "op", SIZE_MAX, err, true)))
        return NULL;
    if (streq(o, "open") || streq(o, "close")) {
        if (!name || !json_object_is_type(name, json_type_string)) {
            terok_error_set(err, -EINVAL, "'%s' needs a 'container'", o);
            return NULL;
        }
        if (!(n = ctl_req_string(req, "container", SIZE_MAX, err, true)))
            return NULL;
        if (streq(o, "open")) {
            if (ops->open(userdata, n, err) < 0)
                return NULL;
            log_info("%s: opened the socket of '%s'", ops->service, n);
        } else {
            ops->close(userdata, n);
            log_info("%s: closed the socket of '%s'", ops->service, n);
        }
    } else if (streq(o, "stop")) {
        log_info("%s: stop requested by uid %u", ops->service, (unsigned)peer->uid);
        ops->stop(userdata);
    } else if (!streq(o, "status") && !streq(o, "ping")) {
        terok_error_set(err, -EINVAL, "unknown op '%s'", o);
        return NULL;
    }
    reply = json_object_new_object();
    json_object_object_add(reply, "ok", json_object_new_boolean(1));
    json_object_object_add(reply, "pid", json_object_new_int((int)getpid()));
    ops->status(userdata, reply);
    return reply;
}

static int sockaddr_for(const char *path, struct sockaddr_un *sa, terok_error *err)
{
    size_t n = strlen(path);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n >= sizeof(sa->sun_path))
        return terok_error_set(err, -ENAMETOOLONG,
                               "socket path '%s' is too long (%zu bytes, at most %zu)", path, n,
                               sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, n);
    return 0;
}

static void client_drop(ctl_server *s, ctl_client *c)
{
    for (ctl_client **p = &s->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    evloop_remove_io(s->loop, c->fd);
    close(c->fd);
    free(c);
    s->n_clients--;
}

static int send_json(int fd, json_object *o)
{
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(t);

    if (n > CTL_MAX_MESSAGE)
        return -EMSGSIZE;
    return send(fd, t, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : negative_errno();
}

static json_object *error_reply(const char *message)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(message));
    return o;
}

static int on_client(evloop *l, int fd, uint32_t events, void *userdata)
{
    ctl_server *s = userdata;
    ctl_client *c = NULL;
    char *buf;
    ssize_t n;

    for (ctl_client *i = s->clients; i; i = i->next)
        if (i->fd == fd)
            c = i;
    if (!c)
        return 0;
    buf = malloc(CTL_MAX_MESSAGE + 1);
    if (!buf)
        return 0;
    n = recv(fd, buf, CTL_MAX_MESSAGE + 1, MSG_TRUNC | MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
        free(buf);
        client_drop(s, c);
        return 0;
    }
    if (n < 0) {
        free(buf);
        return 0;
    }

    json_object *reply = NULL, *req = NULL;
    if (n > CTL_MAX_MESSAGE)
        reply = error_reply("request too large");
    else {
        json_tokener *tok = json_tokener_new_ex(32);
        buf[n] = 0;
        req = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
        if (!req || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != (size_t)n ||
            !json_object_is_type(req, json_type_object))
            reply = error_reply("malformed request: expected one JSON object");
        if (tok)
            json_tokener_free(tok);
    }
    free(buf);
    if (!reply) {
        terok_error err = TEROK_ERROR_INIT;
        reply = s->handler(s->userdata, &c->peer, req, &err);
        if (!reply)
            reply = error_reply(terok_error_message(&err));
        terok_error_clear(&err);
    }
    if (req)
        json_object_put(req);
    if (send_json(fd, reply) < 0)
        client_drop(s, c);
    json_object_put(reply);
    return 0;
}

static int on_accept(evloop *l, int fd, uint32_t events, void *userdata)
{
    ctl_server *s = userdata;

    for (;;) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (cfd < 0)
            return 0; /* EAGAIN, or a transient failure: the loop goes on */
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
            (cred.uid != 0 && cred.uid != geteuid()) || s->n_clients >= CTL_MAX_CLIENTS) {
            close(cfd);
            continue;
        }
        ctl_client *c = calloc(1, sizeof(*c));
        if (!c || evloop_add_io(l, cfd, EPOLLIN, on_client, s) < 0) {
            free(c);
            close(cfd);
            continue;
        }
        c->fd = cfd;
        c->peer = cred;
        c->next = s->clients;
        s->clients = c;
        s->n_clients++;
    }
}

int ctl_server_adopt(evloop *l, int fd, ctl_handler handler, void *userdata, ctl_server **ret,
                     terok_error *err)
{
    ctl_server *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return terok_error_set(err, -ENOMEM, "out of memory");
    *s = (ctl_server){.loop = l, .fd = fd, .handler = handler, .userdata = userdata};
    r = evloop_add_io(l, fd, EPOLLIN, on_accept, s);
    if (r < 0) {
        free(s);
        return terok_error_set(err, r, "watching the control socket: %s", strerror(-r));
    }
    *ret = s;
    return 0;
}

int ctl_server_new(evloop *l, const char *path, ctl_handler handler, void *userdata,
                   ctl_server **ret, terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    struct sockaddr_un sa;
    ctl_server *s = NULL;
    int r;

    r = sockaddr_for(path, &sa, err);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "socket: %s", strerror(errno));
    (void)unlink(path); /* a stale socket from a dead daemon */
    mode_t old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r < 0)
        return terok_error_set(err, negative_errno(), "cannot bind control socket '%s': %s", path,
                               strerror(errno));
    if (listen(fd, 16) < 0)
        return terok_error_set(err, negative_errno(), "listen on '%s': %s", path, strerror(errno));
    r = ctl_server_adopt(l, fd, handler, userdata, &s, err);
    if (r < 0) {
        unlink(path);
        return r;
    }
    fd = -EBADF;
    s->path = strdup(path);
    *ret = s;
    return 0;
}

ctl_server *ctl_server_free(ctl_server *s)
{
    if (!s)
        return NULL;
    while (s->clients)
        client_drop(s, s->clients);
    evloop_remove_io(s->loop, s->fd);
    close(s->fd);
    if (s->path) {
        unlink(s->path);
        free(s->path);
    }
    free(s);
    return NULL;
}

void ctl_server_keep_path(ctl_server *s)
{
    if (s) {
        free(s->path);
        s->path = NULL;
    }
}

int ctl_call(const char *path, json_object *request, int timeout_ms, json_object **ret_reply,
             terok_error *err)
{
    _cleanup_close_ int fd = -EBADF;
    _cleanup_free_ char *buf = NULL;
    struct sockaddr_un sa;
    struct pollfd p;
    json_object *reply, *ok;
    ssize_t n;
    int r;

    r = sockaddr_for(path, &sa, err);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return terok_error_set(err, negative_errno(), "cannot reach daemon at '%s': %s", path,
                               strerror(errno));
    r = send_json(fd, request);
    if (r < 0)
        return terok_error_set(err, r, "sending to '%s': %s", path, strerror(-r));
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    r = poll(&p, 1, timeout_ms);
    if (r == 0)
        return terok_error_set(err, -ETIMEDOUT, "daemon at '%s' did not answer within %d ms", path,
                               timeout_ms);
    if (r < 0)
        return terok_error_set(err, negative_errno(), "waiting for '%s': %s", path,
                               strerror(errno));
    buf = malloc(CTL_MAX_MESSAGE + 1);
    if (!buf)
        return terok_error_set(err, -ENOMEM, "out of memory");
    n = recv(fd, buf, CTL_MAX_MESSAGE, 0);
    if (n <= 0)
        return terok_error_set(err, n < 0 ? negative_errno() : -ECONNRESET,
                               "daemon at '%s' closed the connection without an answer", path);
    buf[n] = 0;
    reply = json_tokener_parse(buf);
    if (!reply || !json_object_is_type(reply, json_type_object)) {
        json_object_put(reply);
        return terok_error_set(err, -EBADMSG, "malformed reply from '%s'", path);
    }
    if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)) {
        json_object *e = NULL;
        json_object_object_get_ex(reply, "error", &e);
        r = terok_error_set(err, -EREMOTEIO, "%s",
                            e ? json_object_get_string(e) : "daemon refused the request");
        json_object_put(reply);
        return r;
    }
    *ret_reply = reply;
    return 0;
}
