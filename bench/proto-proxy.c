/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/proto-proxy: a measurement, not a product (bench/broker's `floor` row). What a
 * phantom-token proxy costs per request on this machine when neither libmicrohttpd nor a libcurl
 * transfer per request is in the way: one epoll loop per thread, requests and answers framed by
 * http-parser (the library broker/ws.c already uses), the token checked by a keyed BLAKE2b hash,
 * the credential injected, hop-by-hop headers dropped, the answer searched for the credential,
 * and the upstream connection opened by libcurl (CURLOPT_CONNECT_ONLY, as the WebSocket tunnel
 * does) and then driven with curl_easy_send/curl_easy_recv, or with plain send/recv (--raw).
 * One upstream connection per client connection; keep-alive requests without a body, answers of
 * at most 16 KiB, no audit: enough to know the floor, nothing a container should talk to.
 * With --mhd (one loop) the container side is libmicrohttpd's instead, driven as the broker
 * drives it (external epoll, the request suspended until the upstream answers, resumed with the
 * answer), and upstream connections are pooled: what replacing only the broker's libcurl
 * transfers would leave.
 *
 *   proto-proxy PORT UPSTREAM_HOST UPSTREAM_PORT TOKEN CREDENTIAL [THREADS [--raw|--mhd]]
 *   (the token is read from PROTO_TOKEN when TOKEN is "-")
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <http_parser.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 16384 };

static int g_port, g_up_port, g_raw;
static const char *g_up_host, *g_credential;
static unsigned char g_key[32], g_token_hash[32];

struct conn {
    int fd;    /* client */
    int up_fd; /* upstream socket */
    CURL *up;  /* libcurl's handle of it (NULL with --raw) */
    http_parser req_parser, resp_parser;
    char in[BUF];
    size_t in_len;
    char out[BUF];
    size_t out_len;
    char up_req[BUF];
    size_t up_req_len;
    char url[1024];
    size_t url_len;
    char field[128];
    size_t field_len;
    int in_value, header_is_key, token_ok, req_done, resp_done, resp_headers_done;
    char resp_head[4096];
    size_t resp_head_len;
    int status;
    int field_is_hop;
    struct mreq *owner; /* --mhd: the request this upstream connection serves, NULL when idle */
};

static void die(const char *what)
{
    fprintf(stderr, "proto-proxy: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int append(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n > cap)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

/* ---- request side ---- */
static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    return append(c->url, sizeof c->url, &c->url_len, at, n);
}
static int on_req_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->in_value) {
        c->in_value = 0;
        c->field_len = 0;
    }
    return append(c->field, sizeof c->field, &c->field_len, at, n);
}
static int on_req_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (!c->in_value) {
        c->in_value = 1;
        c->header_is_key = c->field_len == 9 && strncasecmp(c->field, "x-api-key", 9) == 0;
        c->field_is_hop = (c->field_len == 10 && strncasecmp(c->field, "connection", 10) == 0) ||
                          (c->field_len == 4 && strncasecmp(c->field, "host", 4) == 0);
        if (!c->header_is_key && !c->field_is_hop) {
            append(c->up_req, sizeof c->up_req, &c->up_req_len, c->field, c->field_len);
            append(c->up_req, sizeof c->up_req, &c->up_req_len, ": ", 2);
        }
    }
    if (c->header_is_key) {
        unsigned char h[32];
        crypto_generichash(h, sizeof h, (const unsigned char *)at, n, g_key, sizeof g_key);
        c->token_ok = sodium_memcmp(h, g_token_hash, sizeof h) == 0;
        return 0;
    }
    if (c->field_is_hop)
        return 0;
    return append(c->up_req, sizeof c->up_req, &c->up_req_len, at, n) ||
           append(c->up_req, sizeof c->up_req, &c->up_req_len, "\r\n", 2);
}
static int on_req_begin(http_parser *p)
{
    struct conn *c = p->data;
    /* the copied headers; the request line goes in front once the URL is known */
    c->url_len = c->field_len = c->up_req_len = 0;
    c->in_value = 1;
    c->token_ok = 0;
    return 0;
}
static int on_req_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->req_done = 1;
    http_parser_pause(p, 1);
    return 0;
}
static http_parser_settings req_settings = {
    .on_message_begin = on_req_begin,
    .on_url = on_url,
    .on_header_field = on_req_field,
    .on_header_value = on_req_value,
    .on_message_complete = on_req_complete,
};

/* ---- answer side ---- */
static int on_status(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    c->status = p->status_code;
    char line[64];
    int k = snprintf(line, sizeof line, "HTTP/1.1 %d ", p->status_code);
    append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, line, (size_t)k);
    return append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, at, n);
}
static int on_resp_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->in_value) {
        c->in_value = 0;
        c->field_len = 0;
    }
    return append(c->field, sizeof c->field, &c->field_len, at, n);
}
static int on_resp_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (!c->in_value) {
        c->in_value = 1;
        c->field_is_hop = (c->field_len == 10 && strncasecmp(c->field, "connection", 10) == 0) ||
                          (c->field_len == 10 && strncasecmp(c->field, "keep-alive", 10) == 0);
        if (!c->field_is_hop) {
            append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, "\r\n", 2);
            append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, c->field, c->field_len);
            append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, ": ", 2);
        }
    }
    if (c->field_is_hop)
        return 0;
    return append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, at, n);
}
static int on_resp_headers(http_parser *p)
{
    struct conn *c = p->data;
    c->resp_headers_done = 1;
    return append(c->resp_head, sizeof c->resp_head, &c->resp_head_len, "\r\n\r\n", 4);
}
static int on_resp_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    /* the broker masks a credential the upstream repeats: the floor pays the same search */
    char *hit = memmem(at, n, g_credential, strlen(g_credential));
    if (hit)
        memset(hit, '*', strlen(g_credential));
    return append(c->out, sizeof c->out, &c->out_len, at, n);
}
static int on_resp_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->resp_done = 1;
    return 0;
}
static int on_resp_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->resp_head_len = 0;
    c->resp_headers_done = 0;
    c->in_value = 1;
    return 0;
}
static http_parser_settings resp_settings = {
    .on_message_begin = on_resp_begin,
    .on_status = on_status,
    .on_header_field = on_resp_field,
    .on_header_value = on_resp_value,
    .on_headers_complete = on_resp_headers,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
};

static int up_open(struct conn *c)
{
    if (g_raw) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_up_port)};
        inet_pton(AF_INET, g_up_host, &a.sin_addr);
        c->up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(c->up_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return connect(c->up_fd, (struct sockaddr *)&a, sizeof a);
    }
    char url[256];
    snprintf(url, sizeof url, "http://%s:%d/", g_up_host, g_up_port);
    c->up = curl_easy_init();
    curl_easy_setopt(c->up, CURLOPT_URL, url);
    curl_easy_setopt(c->up, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->up, CURLOPT_PROXY, "");
    if (curl_easy_perform(c->up) != CURLE_OK)
        return -1;
    curl_socket_t s;
    curl_easy_getinfo(c->up, CURLINFO_ACTIVESOCKET, &s);
    c->up_fd = s;
    return 0;
}

static ssize_t up_send(struct conn *c, const char *b, size_t n)
{
    if (g_raw)
        return send(c->up_fd, b, n, MSG_NOSIGNAL);
    size_t sent = 0;
    return curl_easy_send(c->up, b, n, &sent) == CURLE_OK ? (ssize_t)sent : -1;
}

static ssize_t up_recv(struct conn *c, char *b, size_t n)
{
    if (g_raw)
        return recv(c->up_fd, b, n, 0);
    size_t got = 0;
    CURLcode rc = curl_easy_recv(c->up, b, n, &got);
    if (rc == CURLE_AGAIN) {
        errno = EAGAIN;
        return -1;
    }
    return rc == CURLE_OK ? (ssize_t)got : -1;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->up_fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->up)
        curl_easy_cleanup(c->up);
    else if (c->up_fd >= 0)
        close(c->up_fd);
    c->up = NULL;
    c->up_fd = -1;
}

/* a client's bytes: parse; a complete request goes upstream */
static int client_readable(struct conn *c)
{
    ssize_t got = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
    if (got <= 0)
        return got < 0 && errno == EAGAIN ? 0 : -1;
    c->in_len += (size_t)got;
    c->req_done = 0;
    size_t used = http_parser_execute(&c->req_parser, &req_settings, c->in, c->in_len);
    if (HTTP_PARSER_ERRNO(&c->req_parser) != HPE_OK &&
        HTTP_PARSER_ERRNO(&c->req_parser) != HPE_PAUSED) {
        static const char bad[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send(c->fd, bad, sizeof bad - 1, MSG_NOSIGNAL);
        return -1;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (!c->req_done)
        return 0;
    http_parser_pause(&c->req_parser, 0);
    if (!c->token_ok) {
        static const char no[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        return send(c->fd, no, sizeof no - 1, MSG_NOSIGNAL) < 0 ? -1 : 0;
    }
    /* the request line and the credential go in front of the copied headers */
    char head[2048];
    const char *path = c->url;
    if (c->url_len > 6 && memcmp(c->url, "/bench", 6) == 0)
        path = c->url + 6;
    int k = snprintf(head, sizeof head, "%s %.*s HTTP/1.1\r\nHost: %s:%d\r\nx-api-key: %s\r\n",
                     http_method_str((enum http_method)c->req_parser.method),
                     (int)(c->url_len - (size_t)(path - c->url)), path, g_up_host, g_up_port,
                     g_credential);
    char all[BUF + 2048];
    memcpy(all, head, (size_t)k);
    memcpy(all + k, c->up_req, c->up_req_len);
    memcpy(all + k + c->up_req_len, "\r\n", 2);
    size_t n = (size_t)k + c->up_req_len + 2;
    http_parser_init(&c->resp_parser, HTTP_RESPONSE);
    c->resp_parser.data = c;
    c->resp_done = 0;
    c->out_len = 0;
    return up_send(c, all, n) == (ssize_t)n ? 0 : -1;
}

static int upstream_readable(struct conn *c)
{
    char buf[BUF];
    ssize_t got = up_recv(c, buf, sizeof buf);
    if (got <= 0)
        return got < 0 && errno == EAGAIN ? 0 : -1;
    http_parser_execute(&c->resp_parser, &resp_settings, buf, (size_t)got);
    if (HTTP_PARSER_ERRNO(&c->resp_parser) != HPE_OK)
        return -1;
    if (!c->resp_done)
        return 0; /* whole answers of at most BUF bytes only (bench/broker's small body) */
    struct iovec iov[2] = {{c->resp_head, c->resp_head_len}, {c->out, c->out_len}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    return sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int g_lfd = -1;

/* ---- --mhd: the container side served by libmicrohttpd, as the broker does ---- */

struct mreq {
    struct MHD_Connection *mc;
    struct conn *up; /* the upstream connection while the request is out */
    struct MHD_Response *resp;
    int status;
    bool suspended;
};

static struct conn *g_idle[1024];
static int g_nidle, g_ep;

static void up_drop(struct conn *c)
{
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->up_fd, NULL);
    if (c->up)
        curl_easy_cleanup(c->up);
    else
        close(c->up_fd);
    free(c);
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct conn *c = cls;

    (void)kind;
    if (strcasecmp(key, "x-api-key") == 0 || strcasecmp(key, "host") == 0 ||
        strcasecmp(key, "connection") == 0)
        return MHD_YES;
    if (append(c->up_req, sizeof c->up_req, &c->up_req_len, key, strlen(key)) ||
        append(c->up_req, sizeof c->up_req, &c->up_req_len, ": ", 2) ||
        append(c->up_req, sizeof c->up_req, &c->up_req_len, value, strlen(value)) ||
        append(c->up_req, sizeof c->up_req, &c->up_req_len, "\r\n", 2))
        return MHD_NO;
    return MHD_YES;
}

static enum MHD_Result queue_empty(struct MHD_Connection *mc, unsigned status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result res = MHD_queue_response(mc, status, r);

    MHD_destroy_response(r);
    return res;
}

static enum MHD_Result on_mhd_request(void *cls, struct MHD_Connection *mc, const char *url,
                                      const char *method, const char *version, const char *upload,
                                      size_t *upload_size, void **con_cls)
{
    struct mreq *q = *con_cls;

    (void)cls, (void)version, (void)upload;
    if (q) {
        if (*upload_size)
            return MHD_NO; /* no bodies here */
        if (!q->resp) {    /* the final call, before the answer: wait for it (as the broker does) */
            q->suspended = true;
            MHD_suspend_connection(mc);
            return MHD_YES;
        }
        enum MHD_Result res = MHD_queue_response(mc, (unsigned)q->status, q->resp);
        MHD_destroy_response(q->resp);
        q->resp = NULL;
        return res;
    }
    q = calloc(1, sizeof *q);
    if (!q)
        return MHD_NO;
    q->mc = mc;
    *con_cls = q;
    const char *tok = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "x-api-key");
    unsigned char h[32];
    if (!tok || (crypto_generichash(h, sizeof h, (const unsigned char *)tok, strlen(tok), g_key,
                                    sizeof g_key),
                 sodium_memcmp(h, g_token_hash, sizeof h) != 0))
        return queue_empty(mc, 401);
    struct conn *c;
    if (g_nidle)
        c = g_idle[--g_nidle];
    else { /* a new upstream connection, watched (tagged by the low bit) */
        c = calloc(1, sizeof *c);
        if (!c)
            return MHD_NO;
        if (up_open(c) < 0) {
            free(c);
            return queue_empty(mc, 502);
        }
        struct epoll_event ue = {.events = EPOLLIN, .data.ptr = (char *)c + 1};
        epoll_ctl(g_ep, EPOLL_CTL_ADD, c->up_fd, &ue);
    }
    c->up_req_len = 0;
    const char *path = strncmp(url, "/bench", 6) == 0 ? url + 6 : url;
    char head[2048];
    int k = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nx-api-key: %s\r\n",
                     method, path, g_up_host, g_up_port, g_credential);
    if (k < 0 || (size_t)k >= sizeof head ||
        append(c->up_req, sizeof c->up_req, &c->up_req_len, head, (size_t)k) ||
        MHD_get_connection_values(mc, MHD_HEADER_KIND, copy_header, c) < 0 ||
        append(c->up_req, sizeof c->up_req, &c->up_req_len, "\r\n", 2) ||
        up_send(c, c->up_req, c->up_req_len) != (ssize_t)c->up_req_len) {
        up_drop(c);
        return queue_empty(mc, 502);
    }
    http_parser_init(&c->resp_parser, HTTP_RESPONSE);
    c->resp_parser.data = c;
    c->resp_done = 0;
    c->out_len = 0;
    c->owner = q;
    q->up = c;
    return MHD_YES;
}

/* The upstream answered (or an idle connection closed): the answer becomes the suspended
 * request's response, the request resumes, the connection goes back to the pool. */
static void mhd_upstream_readable(struct conn *c)
{
    char buf[BUF];
    ssize_t got = up_recv(c, buf, sizeof buf);
    struct mreq *q = c->owner;

    if (got < 0 && errno == EAGAIN)
        return;
    if (got > 0 && q)
        http_parser_execute(&c->resp_parser, &resp_settings, buf, (size_t)got);
    if (got > 0 && q && HTTP_PARSER_ERRNO(&c->resp_parser) == HPE_OK && !c->resp_done)
        return;
    if (q && got > 0 && c->resp_done) {
        q->resp = MHD_create_response_from_buffer(c->out_len, c->out, MHD_RESPMEM_MUST_COPY);
        q->status = c->status;
        /* the kept headers, one "\r\nName: value" each after the status line */
        char *line = strstr(c->resp_head, "\r\n");
        while (q->resp && line && line[2] && line[2] != '\r') {
            char *name = line + 2, *end = strstr(name, "\r\n"), *colon = strchr(name, ':');
            if (!end || !colon || colon > end)
                break;
            *colon = *end = 0;
            if (strcasecmp(name, "content-length") != 0 &&
                strcasecmp(name, "transfer-encoding") != 0)
                MHD_add_response_header(q->resp, name, colon + 2);
            *end = '\r';
            line = end;
        }
        q->up = NULL;
        c->owner = NULL;
        g_idle[g_nidle++] = c;
        if (q->suspended)
            MHD_resume_connection(q->mc);
        return;
    }
    /* closed, failed or a broken answer */
    if (q) {
        q->up = NULL;
        q->status = 502;
        q->resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (q->suspended)
            MHD_resume_connection(q->mc);
    } else
        for (int i = 0; i < g_nidle; i++)
            if (g_idle[i] == c)
                g_idle[i] = g_idle[--g_nidle];
    up_drop(c);
}

static void on_mhd_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                             enum MHD_RequestTerminationCode why)
{
    struct mreq *q = *con_cls;

    (void)cls, (void)mc, (void)why;
    if (!q)
        return;
    if (q->up)
        up_drop(q->up); /* the client left while the upstream was asked */
    if (q->resp)
        MHD_destroy_response(q->resp);
    free(q);
    *con_cls = NULL;
}

static int mhd_main(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    int marker;

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)g_port, NULL, NULL, on_mhd_request,
        NULL, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_mhd_completed, NULL,
        MHD_OPTION_END);
    if (!d)
        die("MHD_start_daemon");
    struct epoll_event me = {.events = EPOLLIN, .data.ptr = &marker};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd, &me);
    for (;;) {
        struct epoll_event evs[64];
        MHD_UNSIGNED_LONG_LONG t;
        int timeout = MHD_get_timeout(d, &t) == MHD_YES ? (t > 1000 ? 1000 : (int)t) : 1000;
        int n = epoll_wait(g_ep, evs, 64, timeout);

        for (int i = 0; i < n; i++)
            if (evs[i].data.ptr != &marker)
                mhd_upstream_readable((struct conn *)((uintptr_t)evs[i].data.ptr & ~(uintptr_t)1));
        MHD_run(d);
    }
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    int lfd = g_lfd;
    int one = 1;
    if (lfd < 0) {
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1024) < 0)
            die("listen");
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | (g_lfd >= 0 ? EPOLLEXCLUSIVE : 0),
                             .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[64];
    struct conn *dead[64];
    int ndead = 0;
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct conn *c = calloc(1, sizeof *c);
                c->fd = fd;
                c->up_fd = -1;
                if (up_open(c) < 0) {
                    close(fd);
                    free(c);
                    continue;
                }
                http_parser_init(&c->req_parser, HTTP_REQUEST);
                c->req_parser.data = c;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                /* the upstream side: tagged by the low bit */
                struct epoll_event ue = {.events = EPOLLIN, .data.ptr = (char *)c + 1};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->up_fd, &ue);
                continue;
            }
            uintptr_t v = (uintptr_t)evs[i].data.ptr;
            struct conn *c = (struct conn *)(v & ~(uintptr_t)1);
            if (c->fd < 0)
                continue;
            int rc = (v & 1) ? upstream_readable(c) : client_readable(c);
            if (rc < 0) {
                conn_close(ep, c);
                dead[ndead++] = c;
            }
        }
        for (int i = 0; i < ndead; i++)
            free(dead[i]);
        ndead = 0;
    }
    return NULL;
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: proto-proxy PORT UPSTREAM_HOST UPSTREAM_PORT TOKEN|- CREDENTIAL "
                    "[THREADS [--raw|--mhd]]\n");
    exit(2);
}

static int number(const char *s, long lo, long hi)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < lo || v > hi) {
        fprintf(stderr, "proto-proxy: '%s' is not a number from %ld to %ld\n", s, lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc < 6)
        usage();
    g_port = number(argv[1], 1, 65535);
    g_up_host = argv[2];
    g_up_port = number(argv[3], 1, 65535);
    g_credential = argv[5];
    const char *token = strcmp(argv[4], "-") == 0 ? getenv("PROTO_TOKEN") : argv[4];
    int threads = argc > 6 ? number(argv[6], 1, 16) : 1;
    g_raw = argc > 7 && strcmp(argv[7], "--raw") == 0;
    bool mhd = argc > 7 && strcmp(argv[7], "--mhd") == 0;
    if (!token || (argc > 7 && !g_raw && !mhd) || (mhd && threads != 1))
        usage();
    /* more than one loop: one shared listening socket, each loop woken alone (as nginx does) */
    if (threads > 1) {
        int one = 1;
        g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        setsockopt(g_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(g_lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(g_lfd, 1024) < 0)
            die("listen");
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    randombytes_buf(g_key, sizeof g_key);
    crypto_generichash(g_token_hash, sizeof g_token_hash, (const unsigned char *)token,
                       strlen(token), g_key, sizeof g_key);
    if (mhd)
        return mhd_main();
    pthread_t t[16];
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    pthread_join(t[0], NULL);
    return 0;
}
