/* SPDX-License-Identifier: Apache-2.0 */
/* podman-exec.c: exec in a running container. The session is created with a normal call; it is
 * started on a second, CONNECT_ONLY libcurl handle with a hand-written request carrying
 * `Upgrade: tcp` (libpod answers 101 and the connection becomes the raw stream), then pumped
 * with poll(): stdin_fd -> container, container -> output callback or fds (8-byte frames
 * demultiplexed without a TTY, raw bytes with one). The exit code comes from …/exec/{id}/json. */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "podman.h"
#include "util/strv.h"

static inline void curl_cleanupp(CURL **c)
{
    if (*c)
        curl_easy_cleanup(*c);
}

typedef struct pump {
    const terok_exec_spec *spec;
    demux dm;
    bool tty;
    int out_r;        /* first output error */
    uint64_t sent[3]; /* bytes passed on per stream (1 stdout, 2 stderr) */
    uint64_t skip[3]; /* tail recovery: bytes of each stream to drop before passing on */
} pump;

static int emit(void *userdata, int stream, const void *data, size_t len)
{
    pump *pu = userdata;
    const terok_exec_spec *s = pu->spec;
    int i = stream == 2 ? 2 : 1, fd;

    if (pu->skip[i]) {
        size_t k = (size_t)MIN((uint64_t)len, pu->skip[i]);
        pu->skip[i] -= k;
        data = (const char *)data + k;
        len -= k;
        if (!len)
            return 0;
    }
    pu->sent[i] += len;

    if (s->output)
        return s->output(s->userdata, stream, data, len) ? -ECANCELED : 0;
    fd = stream == 2 ? s->stderr_fd : s->stdout_fd;
    if (fd < 0)
        return 0;
    if (write_all(fd, data, len) < 0 && !pu->out_r)
        pu->out_r = negative_errno(); /* keep draining so the session can end */
    return 0;
}

static int feed(pump *pu, const void *data, size_t len)
{
    return pu->tty ? emit(pu, 1, data, len) : demux_feed(&pu->dm, data, len);
}

static int send_all(CURL *c, curl_socket_t fd, const char *data, size_t len)
{
    while (len) {
        size_t n = 0;
        CURLcode cc = curl_easy_send(c, data, len, &n);

        if (cc == CURLE_AGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return negative_errno();
            continue;
        }
        if (cc != CURLE_OK)
            return -ECONNRESET;
        data += n;
        len -= n;
    }
    return 0;
}

/* Read the response head (and whatever stream bytes came with it) into *head. Returns the
 * HTTP status and sets *body_off to the first byte after the blank line. */
static int read_head(CURL *c, curl_socket_t fd, api_buf *head, size_t *body_off)
{
    for (;;) {
        char buf[4096];
        size_t n = 0;
        CURLcode cc = curl_easy_recv(c, buf, sizeof buf, &n);
        char *end;

        if (cc == CURLE_AGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 30000) == 0)
                return -ETIMEDOUT;
            continue;
        }
        if (cc != CURLE_OK || n == 0)
            return -ECONNRESET;
        if (api_buf_append(head, buf, n) < 0)
            return -ENOMEM;
        end = strstr(head->data, "\r\n\r\n");
        if (end) {
            *body_off = (size_t)(end + 4 - head->data);
            if (head->len < 12 || !strneq(head->data, "HTTP/1.", 7))
                return -EPROTO;
            return (int)strtol(head->data + 9, NULL, 10);
        }
        if (head->len > 65536)
            return -EPROTO;
    }
}

static int start_body(const terok_exec_spec *s, char **ret)
{
    bool tty = s->flags & TEROK_EXEC_TTY;

    if (tty && s->tty_rows && s->tty_cols)
        return asprintf(ret, "{\"Detach\":false,\"Tty\":true,\"h\":%u,\"w\":%u}",
                        (unsigned)s->tty_rows, (unsigned)s->tty_cols) < 0
                   ? -ENOMEM
                   : 0;
    return asprintf(ret, "{\"Detach\":false,\"Tty\":%s}", tty ? "true" : "false") < 0 ? -ENOMEM : 0;
}

/* The fd of 4-byte {rows, cols} records, or -1 (older hosts pass a shorter struct). */
static int resize_fd_of(const terok_exec_spec *s)
{
    if (!(s->flags & TEROK_EXEC_RESIZE_FD) || !(s->flags & TEROK_EXEC_TTY) ||
        s->struct_size < offsetof(terok_exec_spec, resize_fd) + sizeof(int))
        return -1;
    return s->resize_fd;
}

/* POST <resize_path>?h=R&w=C on the state's handle (idle while a hijacked stream runs). A
 * failed resize never ends the session: the process may just have exited. */
static void resize(podman *p, const char *resize_path, unsigned rows, unsigned cols)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    api_request rq = API_REQUEST_INIT;

    if (!rows || !cols || asprintf(&path, "%s?h=%u&w=%u", resize_path, rows, cols) < 0)
        return;
    rq.method = "POST";
    rq.path = path;
    if (api_call(p, &rq, &rs, NULL) < 0 || rs.status < 200 || rs.status >= 300)
        terok_plog(TEROK_LOG_DEBUG, "resizing the TTY via %s: HTTP %ld", resize_path, rs.status);
}

/* Drain the resize fd; apply the last complete record. */
static void resize_from_fd(podman *p, int fd, const char *resize_path)
{
    unsigned char buf[256];
    uint16_t rc[2];
    ssize_t n = read(fd, buf, sizeof buf);

    if (n < (ssize_t)sizeof rc)
        return;
    memcpy(rc, buf + (n / sizeof rc - 1) * sizeof rc, sizeof rc);
    resize(p, resize_path, rc[0], rc[1]);
}

/* One hijacked stream: `POST <path>` with `Upgrade: tcp` on a second, CONNECT_ONLY handle
 * (libpod answers 101 or 200 and the connection becomes the raw stream), then `upgraded` (e.g.
 * the container's start, on the state's own handle), then the pump until the far side closes. */
typedef struct hijack {
    const char *path;        /* below PODMAN_API */
    const char *body;        /* JSON, or NULL */
    const char *what;        /* for error messages */
    const char *resize_path; /* "/exec/<id>/resize" or "/containers/<ref>/resize" */
    bool resize_at_start;    /* send the initial size once upgraded (attach has no size field) */
    bool storage_lock;       /* hold the storage lock until the answer (attach initialises) */
    int (*upgraded)(podman *p, void *data, terok_error *err);
    void *data;
    uint64_t *ret_sent; /* [3]: bytes passed on per stream, or NULL */
} hijack;

static int pump_stream(podman *p, const hijack *h, const terok_exec_spec *s, terok_error *err)
{
    _cleanup_(curl_cleanupp) CURL *c = curl_easy_init();
    _cleanup_free_ char *req = NULL;
    _cleanup_close_ int lock = -EBADF;
    api_buf head = {0};
    pump pu = {.spec = s, .tty = s->flags & TEROK_EXEC_TTY};
    bool interactive = (s->flags & TEROK_EXEC_INTERACTIVE) && s->stdin_fd >= 0, in_eof = false;
    int rfd = resize_fd_of(s);
    curl_socket_t fd = CURL_SOCKET_BAD;
    size_t off = 0;
    int status, r = 0;

    pu.dm = (demux){.emit = emit, .userdata = &pu};
    if (!c || asprintf(&req,
                       "POST " PODMAN_API "%s HTTP/1.1\r\nHost: d\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s",
                       h->path, h->body ? strlen(h->body) : 0, strempty(h->body)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    if ((!p->socket || p->broken) && (r = service_connect(p, err)) < 0)
        return r;
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, p->socket);
    curl_easy_setopt(c, CURLOPT_URL, "http://d/");
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    if (curl_easy_perform(c) != CURLE_OK ||
        curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD)
        return terok_perr(err, -ECONNREFUSED, "podman service at '%s' does not answer", p->socket);
    if (h->storage_lock)
        lock = storage_lock(p);
    if ((r = send_all(c, fd, req, strlen(req))) < 0)
        goto lost;
    status = read_head(c, fd, &head, &off);
    closep(&lock);
    lock = -EBADF;
    if (status < 0) {
        r = status;
        goto lost;
    }
    if (status != 101 && status != 200) {
        /* an error document follows (Content-Length); read it all for Podman's message */
        const char *cl = strcasestr(head.data, "\r\nContent-Length:");
        size_t want = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
        api_response rs = {.status = status};

        while (want && head.len - off < want && want < 65536) {
            char buf[4096];
            size_t got = 0;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            CURLcode cc = curl_easy_recv(c, buf, sizeof buf, &got);

            if (cc == CURLE_AGAIN && poll(&pfd, 1, 2000) > 0)
                continue;
            if (cc != CURLE_OK || got == 0 || api_buf_append(&head, buf, got) < 0)
                break;
        }
        rs.body.data = head.data + off;
        rs.body.len = head.len - off;
        r = api_error(&rs, err, "%s", h->what);
        api_buf_free(&head);
        return r;
    }
    if (h->upgraded && (r = h->upgraded(p, h->data, err)) < 0) {
        api_buf_free(&head);
        return r;
    }
    if (h->resize_at_start && (s->flags & TEROK_EXEC_TTY))
        resize(p, h->resize_path, s->tty_rows, s->tty_cols);
    if (head.len > off)
        r = feed(&pu, head.data + off, head.len - off);
    api_buf_free(&head);

    while (r == 0) {
        struct pollfd pfd[3] = {{.fd = fd, .events = POLLIN},
                                {.fd = interactive && !in_eof ? s->stdin_fd : -1, .events = POLLIN},
                                {.fd = rfd, .events = POLLIN}};
        char buf[16384];

        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            r = negative_errno();
            break;
        }
        if (pfd[2].revents & POLLIN)
            resize_from_fd(p, rfd, h->resize_path);
        else if (pfd[2].revents) /* the host closed its end: no more resizes */
            rfd = -1;
        if (pfd[0].revents) {
            size_t got = 0;
            CURLcode cc = curl_easy_recv(c, buf, sizeof buf, &got);
            if (cc == CURLE_AGAIN)
                continue;
            if (cc != CURLE_OK) {
                r = -ECONNRESET;
                goto lost;
            }
            if (got == 0)
                break; /* the session ended */
            r = feed(&pu, buf, got);
        }
        if (pfd[1].revents) {
            ssize_t got = read(s->stdin_fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                /* stdin ended: half-close so the process sees EOF on its stdin */
                in_eof = true;
                shutdown(fd, SHUT_WR);
                continue;
            }
            if ((r = send_all(c, fd, buf, (size_t)got)) < 0)
                goto lost;
        }
    }
    if (h->ret_sent)
        memcpy(h->ret_sent, pu.sent, sizeof pu.sent);
    if (r == -ECANCELED)
        return terok_perr(err, r, "%s: the output consumer stopped reading", h->what);
    if (r < 0)
        return terok_perr(err, r, "%s: %s", h->what, strerror(-r));
    if (pu.out_r < 0)
        return terok_perr(err, pu.out_r, "%s: writing the output: %s", h->what,
                          strerror(-pu.out_r));
    return 0;
lost:
    api_buf_free(&head);
    p->broken = true;
    return terok_perr(err, r, "podman service at '%s' stopped answering (%s): %s", p->socket,
                      h->what, strerror(-r));
}

/* Start exec session `id` and pump its stream until the container side closes. */
static int attach(podman *p, const char *id, const terok_exec_spec *s, terok_error *err)
{
    _cleanup_free_ char *body = NULL, *path = NULL, *rpath = NULL;
    hijack h = {.what = "exec session"};

    if (start_body(s, &body) < 0 || asprintf(&path, "/exec/%s/start", id) < 0 ||
        asprintf(&rpath, "/exec/%s/resize", id) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    h.path = path;
    h.body = body;
    h.resize_path = rpath;
    return pump_stream(p, &h, s, err);
}

/* An exec spec from a host of ABI 1.0 (no resize_fd) or later. */
static int exec_spec_check(const terok_exec_spec *s, terok_error *err)
{
    size_t known = sizeof *s;

    if (s && s->struct_size < known)
        known = TEROK_EXEC_SPEC_SIZE_1_0;
    return check_struct(s, s ? s->struct_size : 0, known, "exec spec", err);
}

#define EXEC_EXIT_WAIT_MS 30000

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static int exit_code(podman *p, const char *id, int *ret, terok_error *err)
{
    _cleanup_free_ char *path = NULL;

    if (asprintf(&path, "/exec/%s/json", id) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    /* The stream can close a moment before the exit code is recorded: Podman records it when
     * its exec cleanup process runs, and that process waits for the storage lock, so a busy
     * host (other containers starting, stopping) can delay it by seconds. Poll with backoff
     * for up to EXEC_EXIT_WAIT_MS. */
    struct timespec t0;
    long pause_ms = 5;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        _cleanup_response_ api_response rs = {0};
        api_request rq = API_REQUEST_INIT;
        json_object *j, *v = NULL, *running = NULL;
        int r;

        rq.method = "GET";
        rq.path = path;
        if ((r = api_call(p, &rq, &rs, err)) < 0)
            return r;
        if (rs.status != 200)
            return api_error(&rs, err, "reading exec session %.12s", id);
        if (!(j = api_json(&rs)))
            return terok_perr(err, -EPROTO, "exec session %.12s: unreadable answer", id);
        json_object_object_get_ex(j, "Running", &running);
        if (!running || !json_object_get_boolean(running)) {
            json_object_object_get_ex(j, "ExitCode", &v);
            *ret = v ? json_object_get_int(v) : -1;
            json_object_put(j);
            return 0;
        }
        json_object_put(j);
        if (elapsed_ms(&t0) >= EXEC_EXIT_WAIT_MS)
            break;
        nanosleep(&(struct timespec){0, pause_ms * 1000 * 1000}, NULL);
        pause_ms = MIN(pause_ms * 2, 100L);
    }
    return terok_perr(err, -ETIMEDOUT,
                      "exec session %.12s still running %d s after its stream ended", id,
                      EXEC_EXIT_WAIT_MS / 1000);
}

int podman_exec(podman *p, const char *ref, const terok_exec_spec *s, int *ret_exit_code,
                terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL, *id = NULL;
    json_object *o = NULL, *j = NULL;
    api_request rq = API_REQUEST_INIT;
    bool tty, interactive;
    int r, code = -1;

    if ((r = exec_spec_check(s, err)) < 0)
        return r;
    if (!s->argv || !s->argv[0])
        return terok_perr(err, -EINVAL, "exec: empty command");
    if (s->flags & ~(uint32_t)(TEROK_EXEC_TTY | TEROK_EXEC_INTERACTIVE | TEROK_EXEC_RESIZE_FD))
        return terok_perr(err, -EOPNOTSUPP, "exec: unknown flags 0x%x", s->flags);
    tty = s->flags & TEROK_EXEC_TTY;
    interactive = (s->flags & TEROK_EXEC_INTERACTIVE) && s->stdin_fd >= 0;

    o = json_object_new_object();
    if (!o)
        return terok_perr(err, -ENOMEM, "out of memory");
    {
        json_object *cmd = json_object_new_array(), *env = json_object_new_array();
        for (const char *const *a = s->argv; cmd && *a; a++)
            json_object_array_add(cmd, json_object_new_string(*a));
        for (const char *const *e = s->env; env && e && *e; e++) {
            if (!strchr(*e, '=')) {
                json_object_put(cmd);
                json_object_put(env);
                json_object_put(o);
                return terok_perr(err, -EINVAL, "exec environment entry '%s' is not KEY=VALUE", *e);
            }
            json_object_array_add(env, json_object_new_string(*e));
        }
        json_object_object_add(o, "Cmd", cmd);
        json_object_object_add(o, "Env", env);
        json_object_object_add(o, "AttachStdin", json_object_new_boolean(interactive));
        json_object_object_add(o, "AttachStdout", json_object_new_boolean(1));
        json_object_object_add(o, "AttachStderr", json_object_new_boolean(1));
        json_object_object_add(o, "Tty", json_object_new_boolean(tty));
        if (s->user)
            json_object_object_add(o, "User", json_object_new_string(s->user));
        if (s->workdir)
            json_object_object_add(o, "WorkingDir", json_object_new_string(s->workdir));
    }
    if (asprintf(&path, "/containers/%s/exec", ref) < 0) {
        json_object_put(o);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    rq.method = "POST";
    rq.path = path;
    rq.json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    r = api_call(p, &rq, &rs, err);
    json_object_put(o);
    if (r < 0)
        return r;
    if (rs.status != 201)
        return api_error(&rs, err, "exec in container '%s'", ref);
    j = api_json(&rs);
    id = json_str(j, "Id") ? strdup(json_str(j, "Id")) : NULL;
    json_object_put(j);
    if (!id || !ref_is_valid(id))
        return terok_perr(err, -EPROTO, "exec in container '%s': no session id in the answer", ref);
    if ((r = attach(p, id, s, err)) < 0)
        return r;
    if ((r = exit_code(p, id, &code, err)) < 0)
        return r;
    *ret_exit_code = code;
    return 0;
}

int podman_start(podman *p, const char *ref, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int lock = -EBADF;
    api_request rq = API_REQUEST_INIT;
    int r;

    if (asprintf(&path, "/containers/%s/start", ref) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    rq.method = "POST";
    rq.path = path;
    lock = storage_lock(p);
    if ((r = api_call(p, &rq, &rs, err)) < 0)
        return r;
    if (rs.status == 204 || rs.status == 304) /* 304: already running */
        return 0;
    return api_error(&rs, err, "starting container '%s'", ref);
}

static int start_now(podman *p, void *data, terok_error *err)
{
    return podman_start(p, data, err);
}

/* The exit status of a container whose stream just ended, read from inspect as soon as Podman
 * has seen the exit (state "stopped"). libpod's wait for "exited" would also wait for Podman's
 * `container cleanup` process (a fresh podman process) to finish, ~200 ms later. -1 when it
 * does not show within ~1 s (the caller then waits). */
static int32_t quick_exit_code(podman *p, const char *ref)
{
    _cleanup_free_ char *path = NULL;

    if (asprintf(&path, "/containers/%s/json", ref) < 0)
        return -1;
    for (int tries = 0; tries < 200; tries++) {
        _cleanup_response_ api_response rs = {0};
        api_request rq = API_REQUEST_INIT;
        json_object *j, *st = NULL, *v = NULL;
        const char *status;
        int32_t code = -1;
        bool done;

        rq.method = "GET";
        rq.path = path;
        if (api_call(p, &rq, &rs, NULL) < 0 || rs.status != 200 || !(j = api_json(&rs)))
            return -1;
        json_object_object_get_ex(j, "State", &st);
        status = json_str(st, "Status");
        done = status && (streq(status, "stopped") || streq(status, "exited"));
        if (done && json_object_object_get_ex(st, "ExitCode", &v))
            code = json_object_get_int(v);
        json_object_put(j);
        if (done)
            return code >= 0 && code <= 255 ? code : -1;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    return -1;
}

/* Podman 4.3's attach stream sometimes ends before the last output of a container that exits
 * at once (its attach handler stops copying when it sees the exit; conmon has written the rest
 * to the container log by then). Once the container has stopped, read its log and pass on what
 * the stream missed: each stream's first `sent` bytes are dropped, the rest goes out the same
 * way. The log repeats the whole output, so this is done only up to TAIL_RECOVERY_MAX bytes of
 * output; best effort (a log driver that cannot be read just leaves the stream's output). */
#define TAIL_RECOVERY_MAX (8u << 20)

static int tail_sink(void *userdata, const char *data, size_t len)
{
    return demux_feed(&((pump *)userdata)->dm, data, len);
}

static void recover_tail(podman *p, const char *ref, const terok_exec_spec *s,
                         const uint64_t sent[3])
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    api_request rq = API_REQUEST_INIT;
    pump pu = {.spec = s, .skip = {0, sent[1], sent[2]}};

    if (sent[1] + sent[2] > TAIL_RECOVERY_MAX ||
        asprintf(&path, "/containers/%s/logs?stdout=true&stderr=true&follow=false", ref) < 0)
        return;
    /* libpod frames logs even for TTY containers (all of it stream 1, as the TTY sent it) */
    pu.dm = (demux){.emit = emit, .userdata = &pu};
    rq.method = "GET";
    rq.path = path;
    rq.sink = tail_sink;
    rq.sink_data = &pu;
    if (api_call(p, &rq, &rs, NULL) < 0 || rs.status != 200)
        terok_plog(TEROK_LOG_DEBUG, "container '%s': its log could not be read for the tail", ref);
    else if (pu.sent[1] + pu.sent[2])
        terok_plog(TEROK_LOG_DEBUG,
                   "container '%s': %llu byte(s) the attach stream missed came "
                   "from its log",
                   ref, (unsigned long long)(pu.sent[1] + pu.sent[2]));
}

int podman_start_attached(podman *p, terok_runtime_ctl_attach *a, terok_error *err)
{
    uint64_t sent[3] = {0};
    const terok_exec_spec *s;
    _cleanup_free_ char *path = NULL, *rpath = NULL, *what = NULL;
    hijack h = {.resize_at_start = true, .storage_lock = true, .upgraded = start_now};
    bool interactive;
    int r;

    if (!a || a->struct_size < sizeof *a)
        return terok_perr(err, -EINVAL, "start attached: struct too small");
    if (!ref_is_valid(a->ref))
        return terok_perr(err, -EINVAL, "container reference '%s' is not a valid name or id",
                          strna(a->ref));
    s = a->io;
    if ((r = exec_spec_check(s, err)) < 0)
        return r;
    if (s->argv || s->env || s->user || s->workdir)
        return terok_perr(err, -EINVAL, "start attached: argv, env, user and workdir are exec's");
    if (s->flags & ~(uint32_t)(TEROK_EXEC_TTY | TEROK_EXEC_INTERACTIVE | TEROK_EXEC_RESIZE_FD))
        return terok_perr(err, -EOPNOTSUPP, "start attached: unknown flags 0x%x", s->flags);
    interactive = (s->flags & TEROK_EXEC_INTERACTIVE) && s->stdin_fd >= 0;
    /* detachKeys= (empty): every byte the operator types goes to the container, ^P^Q too */
    if (asprintf(&path,
                 "/containers/%s/attach?stream=true&logs=false&stdout=true&stderr=true&stdin=%s"
                 "&detachKeys=",
                 a->ref, interactive ? "true" : "false") < 0 ||
        asprintf(&rpath, "/containers/%s/resize", a->ref) < 0 ||
        asprintf(&what, "attaching to container '%s'", a->ref) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    h.path = path;
    h.resize_path = rpath;
    h.data = (void *)a->ref;
    h.what = what;
    h.ret_sent = sent;
    a->exit_code = -1;
    if ((r = pump_stream(p, &h, s, err)) < 0)
        return r;
    a->exit_code = quick_exit_code(p, a->ref);
    if (a->exit_code >= 0) /* stopped: its log is complete */
        recover_tail(p, a->ref, s, sent);
    return 0;
}
