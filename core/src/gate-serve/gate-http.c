/* SPDX-License-Identifier: Apache-2.0 */
/* gate-serve/gate-http.c: where a git request meets the gate backend.
 *
 * The backend's serve() blocks (it runs git and pulls the body, pushes the answer), so the gate
 * listeners use libmicrohttpd's thread-per-connection mode: the connection's thread may wait.
 * An admitted request gets a transfer (struct xfer) shared by the connection thread and one
 * worker thread running serve(): the connection thread pushes upload chunks into `in` and later
 * pulls the response from `out`; the worker reads `in` through read_body() and fills `out`
 * through write_body(). Both buffers are bounded once the response is on its way; before that
 * `out` may grow (to OUT_EARLY_MAX) so a backend that answers before it has read the whole body
 * cannot deadlock against us. Never prints, never logs a token. */
#include <microhttpd.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>

#include "daemon/httpd.h"
#include "error.h"
#include "gate-serve/gate-http.h"
#include "gate-serve/gate-route.h"
#include "log.h"
#include "util/macro.h"
#include "util/strv.h"

#define IN_MAX (1024 * 1024)
#define OUT_MAX (1024 * 1024)
#define OUT_EARLY_MAX (64 * 1024 * 1024)
#define RESPONSE_BLOCK (256 * 1024)
/* MHD's per-connection pool: request headers, the upload read buffer and the response write
 * buffer all come from it, so it is also the bound on a client's headers (a 300 KiB header is
 * refused: test-gate-daemon). Not raised for speed: 512 KiB sent no fewer pieces per clone. */
#define CONNECTION_MEMORY (128 * 1024)
#define SLOT_WAIT_S 60
#define CONNECTIONS_PER_LISTENER 32u

typedef struct listener {
    gate_http *g;
    char *container;
    struct MHD_Daemon *mhd;
    char *path; /* Unix socket file we created, or NULL */
    struct listener *next;
} listener;

struct gate_http {
    const gate_hooks *hooks;
    sem_t slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned workers; /* live worker and listener-reaper threads */
    listener *listeners;
};

typedef struct xfer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    gate_http *g;

    char *in;
    size_t in_off, in_len, in_cap;
    bool in_eof;

    bool head_set;
    int status;
    char **headers;

    char *out;
    size_t out_off, out_len, out_cap;
    bool queued;

    bool worker_done;
    int worker_rc;
    bool aborted;
    uint64_t bytes_in, bytes_out;

    gate_route route;
    char *container, *content_type, *content_encoding, *git_protocol;
    terok_gate_http req;
} xfer;

typedef struct conn_state {
    listener *ls;
    int64_t t0;
    char method[16];
    gate_route route;
    bool routed;
    const char *outcome;
    int status;
    bool responded;
    xfer *x;
} conn_state;

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the transfer ---- */

static void xfer_unref(xfer *x)
{
    bool last;

    pthread_mutex_lock(&x->mu);
    last = --x->refs == 0;
    pthread_mutex_unlock(&x->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x->in);
    free(x->out);
    strv_free(x->headers);
    free(x->container);
    free(x->content_type);
    free(x->content_encoding);
    free(x->git_protocol);
    free(x);
}

static long cb_read_body(void *io, void *buf, size_t len)
{
    xfer *x = io;
    size_t n;

    pthread_mutex_lock(&x->mu);
    while (x->in_len == x->in_off && !x->in_eof && !x->aborted)
        pthread_cond_wait(&x->cv, &x->mu);
    if (x->aborted) {
        pthread_mutex_unlock(&x->mu);
        return -EPIPE;
    }
    n = MIN(len, x->in_len - x->in_off);
    memcpy(buf, x->in + x->in_off, n);
    x->in_off += n;
    if (x->in_off == x->in_len)
        x->in_off = x->in_len = 0;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    return (long)n;
}

static int cb_write_head(void *io, int status, const char *const *headers)
{
    xfer *x = io;
    char **copy = NULL;
    int r = 0;

    if (status < 100 || status > 599)
        return -EINVAL;
    if (headers && !(copy = strv_copy(headers)))
        return -ENOMEM;
    pthread_mutex_lock(&x->mu);
    if (x->aborted)
        r = -EPIPE;
    else if (x->head_set)
        r = -EALREADY;
    else {
        x->status = status;
        x->headers = TAKE_PTR(copy);
        x->head_set = true;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    strv_free(copy);
    return r;
}

static int cb_write_body(void *io, const void *data, size_t len)
{
    xfer *x = io;
    int r = 0;

    if (len == 0)
        return 0;
    pthread_mutex_lock(&x->mu);
    if (!x->head_set) {
        pthread_mutex_unlock(&x->mu);
        return -EINVAL;
    }
    while (!x->aborted && x->queued && x->out_len - x->out_off >= OUT_MAX)
        pthread_cond_wait(&x->cv, &x->mu);
    if (x->aborted)
        r = -EPIPE;
    else if (!x->queued && x->out_len - x->out_off + len > OUT_EARLY_MAX)
        r = -EFBIG;
    else {
        if (x->out_len + len > x->out_cap && x->out_off > 0) {
            memmove(x->out, x->out + x->out_off, x->out_len - x->out_off);
            x->out_len -= x->out_off;
            x->out_off = 0;
        }
        if (x->out_len + len > x->out_cap) {
            size_t cap = MAX(x->out_cap * 2, (size_t)RESPONSE_BLOCK);
            while (cap < x->out_len + len)
                cap *= 2;
            char *p = realloc(x->out, cap);
            if (!p)
                r = -ENOMEM;
            else {
                x->out = p;
                x->out_cap = cap;
            }
        }
        if (r == 0) {
            memcpy(x->out + x->out_len, data, len);
            x->out_len += len;
            pthread_cond_broadcast(&x->cv);
        }
    }
    pthread_mutex_unlock(&x->mu);
    return r;
}

static void *worker(void *arg)
{
    xfer *x = arg;
    gate_http *g = x->g;
    terok_error err = TEROK_ERROR_INIT;
    int r;

    r = g->hooks->serve(g->hooks->userdata, &x->req, &err);
    if (r < 0)
        log_warning("gate: %s %s of '%s' for '%s' failed: %s", x->req.method, x->req.service_path,
                    x->route.repo, x->container, terok_error_message(&err));
    terok_error_clear(&err);
    pthread_mutex_lock(&x->mu);
    x->worker_done = true;
    x->worker_rc = r;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    sem_post(&g->slots);
    xfer_unref(x);
    pthread_mutex_lock(&g->mu);
    g->workers--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---- simple answers ---- */

static enum MHD_Result respond(conn_state *cs, struct MHD_Connection *c, int status,
                               const char *outcome, const char *message)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    char *body = NULL;
    int n;

    /* Fixed text only: nothing a client sent, never a token. */
    n = asprintf(&body, "%s\n", message);
    if (n < 0)
        return MHD_NO;
    resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"terok-gate\"");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", cs->route.is_post ? "POST" : "GET");
    r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    cs->status = status;
    cs->outcome = outcome;
    cs->responded = true;
    return r;
}

/* ---- request inspection ---- */

typedef struct args_scan {
    size_t n;
    const char *service;
    unsigned framing;
} args_scan;

static enum MHD_Result scan_args(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    args_scan *a = cls;

    a->n++;
    if (key_size == 7 && memcmp(key, "service", 7) == 0 && value && strlen(value) == value_size)
        a->service = value;
    return MHD_YES;
}

static enum MHD_Result scan_headers(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    args_scan *a = cls;

    if ((key_size == 14 && strncasecmp(key, "content-length", 14) == 0) ||
        (key_size == 17 && strncasecmp(key, "transfer-encoding", 17) == 0))
        a->framing++;
    return MHD_YES;
}

static char *header_dup(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

    return v ? strdup(v) : NULL;
}

static enum MHD_Result admit(conn_state *cs, struct MHD_Connection *c, uint32_t rights)
{
    gate_http *g = cs->ls->g;
    struct timespec deadline;
    pthread_attr_t attr;
    pthread_t th;
    xfer *x;
    int r;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SLOT_WAIT_S;
    while ((r = sem_timedwait(&g->slots, &deadline)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return respond(cs, c, 503, "busy", "the gate is busy; try again");
    x = calloc(1, sizeof(*x));
    if (!x) {
        sem_post(&g->slots);
        return MHD_NO;
    }
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->refs = 2; /* the connection and the worker */
    x->g = g;
    x->route = cs->route;
    x->container = strdup(cs->ls->container);
    x->content_type = header_dup(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    x->content_encoding = header_dup(c, MHD_HTTP_HEADER_CONTENT_ENCODING);
    x->git_protocol = header_dup(c, "Git-Protocol");
    x->req = (terok_gate_http){
        .struct_size = sizeof(terok_gate_http),
        .rights = rights,
        .container = x->container,
        .repo = x->route.repo,
        .method = x->route.is_post ? "POST" : "GET",
        .service_path = x->route.service_path,
        .query = x->route.query,
        .content_type = x->content_type,
        .content_encoding = x->content_encoding,
        .git_protocol = x->git_protocol,
        .read_body = cb_read_body,
        .write_head = cb_write_head,
        .write_body = cb_write_body,
        .io = x,
    };
    if (!x->container) {
        x->refs = 1;
        xfer_unref(x);
        sem_post(&g->slots);
        return MHD_NO;
    }
    if (!x->route.is_post)
        x->in_eof = true; /* a GET has no body for git to read */
    pthread_mutex_lock(&g->mu);
    g->workers++;
    pthread_mutex_unlock(&g->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    r = pthread_create(&th, &attr, worker, x);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        pthread_mutex_lock(&g->mu);
        g->workers--;
        pthread_mutex_unlock(&g->mu);
        x->refs = 1;
        xfer_unref(x);
        sem_post(&g->slots);
        log_warning("gate: cannot start a worker: %s", strerror(r));
        return respond(cs, c, 503, "busy", "the gate is busy; try again");
    }
    cs->x = x;
    return MHD_YES;
}

static enum MHD_Result begin(conn_state *cs, struct MHD_Connection *c, const char *url)
{
    gate_http *g = cs->ls->g;
    args_scan a = {0};
    token_verdict v = TOKEN_MALFORMED;
    terok_error err = TEROK_ERROR_INIT;
    char token[TOKEN_TEXT_MAX + 1];
    uint32_t rights = 0;
    int status, len, r;

    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_headers, &a);
    if (a.framing > 1)
        return respond(cs, c, 400, "bad-framing",
                       "conflicting Content-Length / Transfer-Encoding headers");
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, scan_args, &a);
    status = gate_route_parse(cs->method, url, a.service, a.n, &cs->route);
    cs->routed = status == 0 || status == 405;
    switch (status) {
    case 0:
        break;
    case 400:
        return respond(cs, c, 400, "bad-path", "malformed request");
    case 405:
        return respond(cs, c, 405, "bad-method", "method not allowed");
    default:
        return respond(cs, c, 404, "no-route", "not found");
    }
    len = gate_route_basic_token(
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), token,
        sizeof token);
    if (len < 0)
        return respond(cs, c, 401, "bad-auth", "malformed credentials");
    if (len == 0)
        return respond(cs, c, 401, "missing-token", "a gate token is required");
    r = g->hooks->check_token(g->hooks->userdata, cs->ls->container, cs->route.repo, token,
                              (size_t)len, &v, &rights, &err);
    sodium_memzero(token, sizeof token);
    if (r < 0) {
        log_error("gate: checking a token for '%s': %s", cs->ls->container,
                  terok_error_message(&err));
        terok_error_clear(&err);
        return respond(cs, c, 503, "token-store-error", "token store unavailable");
    }
    switch (v) {
    case TOKEN_VALID:
        break;
    case TOKEN_WRONG_CONTAINER:
        return respond(cs, c, 403, "wrong-container", "token not valid on this socket");
    case TOKEN_WRONG_TARGET:
        return respond(cs, c, 403, "wrong-repo", "token not valid for this repository");
    case TOKEN_EXPIRED:
        return respond(cs, c, 401, "expired-token", "gate token expired");
    default:
        return respond(cs, c, 401, "invalid-token", "invalid gate token");
    }
    if (cs->route.service == GATE_SVC_RECEIVE_PACK && !(rights & TEROK_GATE_WRITE))
        return respond(cs, c, 403, "read-only", "this task may not push to this repository");
    if (g->hooks->authorize) {
        uint32_t op = cs->route.service == GATE_SVC_RECEIVE_PACK ? TEROK_GATE_WRITE
                                                                 : TEROK_GATE_READ,
                 decision = TEROK_DECISION_DENY;

        r = g->hooks->authorize(g->hooks->userdata, cs->ls->container, cs->route.repo, op,
                                &decision, &err);
        if (r < 0) {
            log_error("gate: authorizing '%s' for '%s': %s", cs->route.repo, cs->ls->container,
                      terok_error_message(&err));
            terok_error_clear(&err);
            return respond(cs, c, 503, "authorize-error", "the gate cannot decide; try again");
        }
        /* Abstain leaves it to the token; anything else than allow or abstain is a no. */
        if (decision != TEROK_DECISION_ALLOW && decision != TEROK_DECISION_ABSTAIN)
            return respond(cs, c, 403, "not-authorized",
                           "the gate does not allow this task this repository");
    }
    return admit(cs, c, rights);
}

/* ---- the response, pulled by MHD on the connection's thread ---- */

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    xfer *x = cls;
    ssize_t r;

    pthread_mutex_lock(&x->mu);
    while (x->out_len == x->out_off && !x->worker_done && !x->aborted)
        pthread_cond_wait(&x->cv, &x->mu);
    if (x->out_len > x->out_off) {
        size_t n = MIN(max, x->out_len - x->out_off);
        memcpy(out, x->out + x->out_off, n);
        x->out_off += n;
        if (x->out_off == x->out_len)
            x->out_off = x->out_len = 0;
        x->bytes_out += n;
        pthread_cond_broadcast(&x->cv);
        r = (ssize_t)n;
    } else if (x->worker_done && x->worker_rc >= 0)
        r = MHD_CONTENT_READER_END_OF_STREAM;
    else
        r = MHD_CONTENT_READER_END_WITH_ERROR;
    pthread_mutex_unlock(&x->mu);
    return r;
}

static bool managed_header(const char *name, size_t n)
{
    static const char *const ours[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive", "date", NULL};
    for (const char *const *h = ours; *h; h++)
        if (strlen(*h) == n && strncasecmp(name, *h, n) == 0)
            return true;
    return false;
}

static enum MHD_Result finish_upload(conn_state *cs, struct MHD_Connection *c)
{
    xfer *x = cs->x;
    struct MHD_Response *resp;
    enum MHD_Result r;

    pthread_mutex_lock(&x->mu);
    x->in_eof = true;
    pthread_cond_broadcast(&x->cv);
    while (!x->head_set && !x->worker_done)
        pthread_cond_wait(&x->cv, &x->mu);
    pthread_mutex_unlock(&x->mu);
    if (!x->head_set)
        return respond(cs, c, 500, "backend-error", "the gate could not serve this request");
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, RESPONSE_BLOCK, reader, x, NULL);
    if (!resp)
        return MHD_NO;
    STRV_FOREACH(h, x->headers)
    {
        const char *colon = strchr(*h, ':');
        if (!colon || colon == *h || managed_header(*h, (size_t)(colon - *h)))
            continue;
        _cleanup_free_ char *name = strndup(*h, (size_t)(colon - *h));
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (name)
            MHD_add_response_header(resp, name, v);
    }
    pthread_mutex_lock(&x->mu);
    x->queued = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    r = MHD_queue_response(c, (unsigned)x->status, resp);
    MHD_destroy_response(resp);
    cs->status = x->status;
    cs->outcome = x->status < 400 ? "ok" : "backend-refused"; /* the backend's own 4xx/5xx */
    cs->responded = true;
    return r;
}

static enum MHD_Result push_upload(xfer *x, const char *data, size_t n)
{
    pthread_mutex_lock(&x->mu);
    while (x->in_len - x->in_off + n > IN_MAX && !x->worker_done && !x->aborted)
        pthread_cond_wait(&x->cv, &x->mu);
    if (!x->worker_done && !x->aborted) {
        if (x->in_len + n > x->in_cap && x->in_off > 0) {
            memmove(x->in, x->in + x->in_off, x->in_len - x->in_off);
            x->in_len -= x->in_off;
            x->in_off = 0;
        }
        if (x->in_len + n > x->in_cap) {
            size_t cap = MAX((size_t)IN_MAX, x->in_len + n);
            char *p = realloc(x->in, cap);
            if (!p) {
                pthread_mutex_unlock(&x->mu);
                return MHD_NO;
            }
            x->in = p;
            x->in_cap = cap;
        }
        memcpy(x->in + x->in_len, data, n);
        x->in_len += n;
        x->bytes_in += n;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    listener *ls = cls;
    conn_state *cs = *con_cls;

    if (!cs) {
        cs = calloc(1, sizeof(*cs));
        if (!cs)
            return MHD_NO;
        cs->ls = ls;
        cs->t0 = now_us();
        snprintf(cs->method, sizeof cs->method, "%s", method);
        *con_cls = cs;
        return begin(cs, c, url);
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->responded || !cs->x)
            return MHD_YES; /* answered early: the rest of the body is dropped */
        return push_upload(cs->x, upload, n);
    }
    if (cs->responded || !cs->x)
        return MHD_YES;
    return finish_upload(cs, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    listener *ls = cls;
    conn_state *cs = *con_cls;
    gate_http *g = ls->g;
    uint64_t in = 0, out = 0;
    const char *outcome;

    if (!cs)
        return;
    outcome = cs->outcome ? cs->outcome : "client-aborted";
    if (cs->x) {
        xfer *x = cs->x;
        pthread_mutex_lock(&x->mu);
        if (cs->outcome && streq(cs->outcome, "ok") &&
            (why != MHD_REQUEST_TERMINATED_COMPLETED_OK || !x->worker_done || x->worker_rc < 0))
            outcome =
                why != MHD_REQUEST_TERMINATED_COMPLETED_OK ? "client-aborted" : "backend-error";
        x->aborted = true; /* a worker still running gets -EPIPE from now on */
        in = x->bytes_in;
        out = x->bytes_out;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        xfer_unref(x);
    }
    if (g->hooks->audit) {
        gate_audit a = {
            .container = ls->container,
            .repo = cs->routed ? cs->route.repo : NULL,
            .service = gate_service_name(cs->route.service),
            .method = cs->method,
            .path = cs->routed && *cs->route.service_path ? cs->route.service_path : "-",
            .outcome = outcome,
            .status = cs->status,
            .bytes_in = in,
            .bytes_out = out,
            .duration_us = now_us() - cs->t0,
        };
        g->hooks->audit(g->hooks->userdata, &a);
    }
    free(cs);
    *con_cls = NULL;
}

/* ---- listeners ---- */

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    log_fullv(LOG_DEBUG, fmt, ap);
}

static size_t unescape_nothing(void *cls, struct MHD_Connection *c, char *s)
{
    /* Route on the bytes the client sent: a '%' anywhere is refused, never decoded. */
    return strlen(s);
}

int gate_http_new(const gate_hooks *hooks, unsigned max_workers, gate_http **ret, terok_error *err)
{
    gate_http *g = calloc(1, sizeof(*g));

    if (!g)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (sodium_init() < 0) {
        free(g);
        return terok_error_set(err, -EIO, "cannot initialise libsodium");
    }
    g->hooks = hooks;
    sem_init(&g->slots, 0, max_workers ? max_workers : 8);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    *ret = g;
    return 0;
}

static void listener_free(listener *ls)
{
    if (ls->mhd)
        MHD_stop_daemon(ls->mhd); /* joins the connection threads */
    if (ls->path) {
        unlink(ls->path);
        free(ls->path);
    }
    free(ls->container);
    free(ls);
}

gate_http *gate_http_free(gate_http *g)
{
    if (!g)
        return NULL;
    while (g->listeners) {
        listener *n = g->listeners->next;
        listener_free(g->listeners);
        g->listeners = n;
    }
    /* Workers outlive their connection only until serve() sees -EPIPE and returns. */
    pthread_mutex_lock(&g->mu);
    while (g->workers > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    sem_destroy(&g->slots);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    return NULL;
}

static void listener_retire(gate_http *g, listener *ls);

static int add_listener(gate_http *g, const char *container, int fd, const char *path,
                        terok_error *err)
{
    listener *ls = calloc(1, sizeof(*ls));

    if (!ls || !(ls->container = strdup(container)) || (path && !(ls->path = strdup(path)))) {
        if (ls)
            free(ls->container);
        free(ls);
        close(fd);
        if (path)
            unlink(path);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    ls->g = g;
    ls->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, ls,
        /* 0.9.75: the logger must be the first option */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, CONNECTIONS_PER_LISTENER, MHD_OPTION_CONNECTION_TIMEOUT, 300u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT,
        1, MHD_OPTION_NOTIFY_COMPLETED, on_completed, ls, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape_nothing, NULL, MHD_OPTION_END);
    if (!ls->mhd) {
        close(fd);
        listener_free(ls);
        return terok_error_set(err, -EIO, "cannot start the HTTP server for '%s'", container);
    }
    ls->next = g->listeners;
    g->listeners = ls;
    return 0;
}

int gate_http_listen_unix(gate_http *g, const char *container, const char *path, terok_error *err)
{
    int fd;

    for (listener **i = &g->listeners; *i;) {
        if ((*i)->path && streq((*i)->container, container)) {
            listener *d = *i;
            *i = d->next;
            listener_retire(g, d);
        } else
            i = &(*i)->next;
    }
    fd = httpd_bind_unix(path, 0666, err);
    if (fd < 0)
        return fd;
    return add_listener(g, container, fd, path, err);
}

int gate_http_listen_tcp(gate_http *g, const char *container, const char *ipv4, uint16_t port,
                         uint16_t *ret_port, terok_error *err)
{
    uint16_t bound = 0;
    int fd = httpd_bind_tcp(ipv4, port, &bound, err), r;

    if (fd < 0)
        return fd;
    r = add_listener(g, container, fd, NULL, err);
    if (r >= 0 && ret_port)
        *ret_port = bound;
    return r;
}

static void *reaper(void *arg)
{
    listener *ls = arg;
    gate_http *g = ls->g;

    listener_free(ls);
    pthread_mutex_lock(&g->mu);
    g->workers--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Stop a listener without waiting for it: MHD_stop_daemon() joins the connection threads, and a
 * request in flight holds its thread until git is done with it. The socket file goes at once. */
static void listener_retire(gate_http *g, listener *ls)
{
    pthread_attr_t attr;
    pthread_t th;
    int fd;

    if (ls->path) {
        unlink(ls->path);
        free(ls->path);
        ls->path = NULL;
    }
    fd = MHD_quiesce_daemon(ls->mhd); /* stop accepting now */
    if (fd >= 0)
        close(fd);
    pthread_mutex_lock(&g->mu);
    g->workers++;
    pthread_mutex_unlock(&g->mu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, reaper, ls) != 0)
        reaper(ls);
    pthread_attr_destroy(&attr);
}

int gate_http_close(gate_http *g, const char *container)
{
    int n = 0;

    for (listener **i = &g->listeners; *i;) {
        if (streq((*i)->container, container)) {
            listener *d = *i;
            *i = d->next;
            listener_retire(g, d);
            n++;
        } else
            i = &(*i)->next;
    }
    return n;
}

size_t gate_http_listeners(gate_http *g)
{
    size_t n = 0;

    for (listener *i = g->listeners; i; i = i->next)
        n++;
    return n;
}
