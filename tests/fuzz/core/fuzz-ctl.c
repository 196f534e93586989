/* SPDX-License-Identifier: Apache-2.0 */
/* A daemon's control socket end to end: a ctl_server (daemon/ctl.c) on a private socket, served
 * by its evloop with ctl_container_dispatch behind it (the vault and gate daemons' handler, with
 * ops that check the container name as theirs do and touch nothing); the input is one request
 * message sent by a client. Every request gets exactly one reply: a JSON object with a boolean
 * "ok"; a refusal has a non-empty "error" that names an unknown op; only the five ops succeed. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/evloop.h"
#include "error.h"
#include "fuzz.h"
#include "log.h"
#include "paths.h"
#include "util/macro.h"

#define REPLY_TIMEOUT_MS 5000

static evloop *loop;
static ctl_server *server;
static char *dir, *sock_path;

typedef struct exchange {
    int fd;
    char reply[CTL_MAX_MESSAGE + 1];
    ssize_t n;
} exchange;

static int mock_open(void *ud, const char *container, terok_error *err)
{
    if (!container_name_is_valid(container))
        return terok_error_set(err, -EINVAL, "invalid container name '%s'", container);
    return 0;
}

static void mock_close(void *ud, const char *container)
{
}

static void mock_status(void *ud, json_object *reply)
{
    json_object_object_add(reply, "listeners", json_object_new_int64(0));
}

static void mock_stop(void *ud)
{
    /* The daemons leave their loop here; ours has a reply to deliver first. */
}

static const ctl_container_ops ops = {"fuzz", mock_open, mock_close, mock_status, mock_stop};

static json_object *on_ctl(void *ud, const struct ucred *peer, json_object *req, terok_error *err)
{
    return ctl_container_dispatch(&ops, ud, peer, req, err);
}

static void cleanup(void)
{
    server = ctl_server_free(server);
    loop = evloop_free(loop);
    if (dir)
        (void)rmdir(dir);
    free(sock_path);
    free(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/terok-fuzz-ctl.XXXXXX";
    terok_error err = TEROK_ERROR_INIT;

    log_set_max_level(LOG_ERR); /* open/close/stop log at info */
    if (!mkdtemp(tmpl) || !(dir = strdup(tmpl)) || asprintf(&sock_path, "%s/f.ctl", dir) < 0 ||
        evloop_new(&loop) < 0 || ctl_server_new(loop, sock_path, on_ctl, NULL, &server, &err) < 0)
        abort();
    atexit(cleanup);
    return 0;
}

static int on_reply(evloop *l, int fd, uint32_t events, void *userdata)
{
    exchange *x = userdata;

    x->n = recv(fd, x->reply, sizeof x->reply - 1, MSG_DONTWAIT);
    if (x->n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    evloop_exit(l, 0);
    return 0;
}

static int on_timeout(evloop *l, void *userdata)
{
    fprintf(stderr, "no reply from the control socket within %d ms\n", REPLY_TIMEOUT_MS);
    abort();
}

/* The request as the server would see it, when it is a JSON object: its op, else NULL. */
static json_object *parse_request(const uint8_t *data, size_t size, const char **ret_op)
{
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *req = NULL, *op;
    char *s = fuzz_strndup(data, size);

    *ret_op = NULL;
    if (!tok)
        abort();
    req = json_tokener_parse_ex(tok, s, (int)size);
    free(s);
    if (req &&
        (json_tokener_get_error(tok) != json_tokener_success ||
         json_tokener_get_parse_end(tok) != size || !json_object_is_type(req, json_type_object))) {
        json_object_put(req);
        req = NULL;
    }
    json_tokener_free(tok);
    if (req && json_object_object_get_ex(req, "op", &op) &&
        json_object_is_type(op, json_type_string))
        *ret_op = json_object_get_string(op);
    return req;
}

static void check_reply(const exchange *x, const uint8_t *data, size_t size)
{
    json_object *reply = json_tokener_parse(x->reply), *ok, *e;
    const char *op;
    json_object *req = parse_request(data, size, &op);

    if (!reply || !json_object_is_type(reply, json_type_object) ||
        !json_object_object_get_ex(reply, "ok", &ok) || !json_object_is_type(ok, json_type_boolean))
        abort();
    if (json_object_get_boolean(ok)) {
        if (!op || !(streq(op, "open") || streq(op, "close") || streq(op, "stop") ||
                     streq(op, "status") || streq(op, "ping")))
            abort();
    } else {
        if (!json_object_object_get_ex(reply, "error", &e) ||
            !json_object_is_type(e, json_type_string) || !*json_object_get_string(e))
            abort();
        if (op && size <= CTL_MAX_MESSAGE &&
            !(streq(op, "open") || streq(op, "close") || streq(op, "stop") || streq(op, "status") ||
              streq(op, "ping")) &&
            !strstr(json_object_get_string(e), op))
            abort(); /* an unknown op is named */
    }
    json_object_put(req);
    json_object_put(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static exchange x;
    int64_t timer;

    /* An empty message reads as the peer's hang-up; larger ones than a socket buffer holds
     * cannot be sent in one. */
    if (size == 0 || size > 2 * CTL_MAX_MESSAGE)
        return 0;
    x.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    x.n = -1;
    memcpy(sa.sun_path, sock_path, strlen(sock_path));
    if (x.fd < 0 || connect(x.fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        send(x.fd, data, size, MSG_NOSIGNAL) != (ssize_t)size)
        abort();
    if (evloop_add_io(loop, x.fd, EPOLLIN, on_reply, &x) < 0 ||
        (timer = evloop_add_timer(loop, REPLY_TIMEOUT_MS, on_timeout, NULL)) < 0)
        abort();
    if (evloop_run(loop) < 0)
        abort();
    evloop_cancel_timer(loop, timer);
    evloop_remove_io(loop, x.fd);
    close(x.fd);
    if (x.n <= 0)
        abort(); /* every request is answered */
    x.reply[x.n] = 0;
    check_reply(&x, data, size);
    return 0;
}
