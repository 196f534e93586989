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
 *
 *   proto-proxy PORT UPSTREAM_HOST UPSTREAM_PORT TOKEN CREDENTIAL [THREADS [--raw]]
 *   (the token is read from PROTO_TOKEN when TOKEN is "-")
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
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
                    "[THREADS [--raw]]\n");
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
    if (!token)
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
    pthread_t t[16];
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    pthread_join(t[0], NULL);
    return 0;
}
