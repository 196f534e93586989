/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ws.c: the upstream side of a WebSocket passthrough, then the tunnel (ws.h). */
#include <errno.h>
#include <http_parser.h>
#include <sodium.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "broker/scrub.h"
#include "broker/ws-frames.h"
#include "broker/ws.h"
#include "log.h"
#include "util/macro.h"
#include "util/strv.h"

#define PIPE_BUF_SIZE (256 * 1024) /* per direction */
#define PUMP_ROUNDS 64             /* then the loop gets its turn; a timer brings us back */

typedef enum ws_state {
    WS_CONNECTING, /* libcurl connects (and does TLS) */
    WS_SENDING,    /* the handshake request goes out */
    WS_READING,    /* the answer's head comes in */
    WS_ANSWERED,   /* answer given; a 101 waits for the client socket */
    WS_TUNNEL,     /* both sides joined */
    WS_CLOSED,
} ws_state;

typedef struct ring {
    char data[PIPE_BUF_SIZE];
    size_t off, len;
} ring;

struct ws_conn {
    evloop *loop;
    curl_loop *curl;
    CURL *easy;
    bool in_multi;
    ws_state state;
    int up_fd;        /* the upstream socket once connected (libcurl's) */
    bool up_watched;  /* up_fd is in our loop */
    int64_t timer_id; /* handshake deadline, idle timeout or "pump again" */
    int64_t last_io_ms, idle_ms;

    ws_answer_cb answer;
    void *answer_data;
    char *request; /* the handshake head, wiped before free (it holds the credential) */
    size_t request_len, request_off;

    http_parser parser;
    size_t head_bytes;
    bool head_done;
    bool head_cr;   /* the head's last byte read was a CR */
    char **headers; /* "Name: value" */
    char *field, *value;
    bool in_value;

    int client_fd;
    struct MHD_UpgradeResponseHandle *urh;
    bool client_watched, client_eof, up_eof;
    bool up_shut, client_shut; /* the other side's EOF passed on (shutdown SHUT_WR) */
    bool client_hup, up_hup;   /* epoll said HUP/ERR: no longer watched (it would fire forever) */
    ring up, down;             /* client -> upstream, upstream -> client */
    char *scrub;               /* the credential, masked in down (ws_conn_scrub); wiped */
    size_t scrub_len;
    ws_frames frames; /* where down's frames end, for the hold below */
    size_t held;      /* down's last bytes, which may begin the credential: not sent yet */
    uint64_t bytes_up, bytes_down;
    ws_closed_cb closed;
    void *closed_data;
};

static size_t ring_room(const ring *r)
{
    return sizeof r->data - r->off - r->len;
}

static void ring_compact(ring *r)
{
    if (r->off && r->len)
        memmove(r->data, r->data + r->off, r->len);
    r->off = 0;
}

/* ---- the answer's head ---- */

static int push_header(ws_conn *w)
{
    char *line = NULL;

    if (!w->field)
        return 0;
    if (asprintf(&line, "%s: %s", w->field, w->value ? w->value : "") < 0)
        return -ENOMEM;
    free(w->field);
    free(w->value);
    w->field = w->value = NULL;
    return strv_consume(&w->headers, line) < 0 ? -ENOMEM : 0;
}

static int append(char **s, const char *at, size_t n)
{
    size_t old = *s ? strlen(*s) : 0;
    char *p = realloc(*s, old + n + 1);

    if (!p)
        return -ENOMEM;
    memcpy(p + old, at, n);
    p[old + n] = 0;
    *s = p;
    return 0;
}

/* The last `got` bytes of down just arrived: mask the credential in them together with the bytes
 * held from before, and hold the new tail that may begin it, as far as its frame is incomplete
 * (a complete frame goes out whole at once: a request/answer protocol is never stalled; a
 * credential the upstream splits over two frames is not recognised, docs/vault.md). */
static void scrub_down(ws_conn *w, size_t got)
{
    char *end = w->down.data + w->down.off + w->down.len;
    size_t window = w->held + got, tail;
    uint64_t open;

    if (!w->scrub)
        return;
    tail = scrub_span(end - window, window, w->scrub, w->scrub_len);
    open = ws_frames_feed(&w->frames, (const unsigned char *)end - got, got);
    w->held = open < tail ? (size_t)open : tail;
}

static int on_field(http_parser *hp, const char *at, size_t n)
{
    ws_conn *w = hp->data;

    if (w->in_value) {
        if (push_header(w) < 0)
            return 1;
        w->in_value = false;
    }
    return append(&w->field, at, n) < 0;
}

static int on_value(http_parser *hp, const char *at, size_t n)
{
    ws_conn *w = hp->data;

    w->in_value = true;
    return append(&w->value, at, n) < 0;
}

static int on_head_done(http_parser *hp)
{
    ws_conn *w = hp->data;

    if (push_header(w) < 0)
        return -1;
    w->head_done = true;
    return 2; /* no body, nothing more as HTTP: what follows belongs to the new protocol */
}

static const http_parser_settings head_settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_head_done,
};

/* One read through the answer's head: *ret_used of its bytes were the head's (w->head_done once
 * it is complete). NULL, or why the answer is unusable. */
static const char *head_feed(ws_conn *w, const char *buf, size_t got, size_t *ret_used)
{
    size_t used = http_parser_execute(&w->parser, &head_settings, buf, got);

    *ret_used = used;
    if (HTTP_PARSER_ERRNO(&w->parser) != HPE_OK)
        return "the upstream's answer to the WebSocket handshake is not valid HTTP";
    /* http-parser built without HTTP_PARSER_STRICT (Debian's) ends a line at a bare CR and drops
     * the byte after it, so we would read other header names than a strict peer does; RFC 9112
     * §2.2 makes such an element invalid. */
    for (size_t i = 0; i < used; i++) {
        if (w->head_cr && buf[i] != '\n')
            return "the upstream's answer to the WebSocket handshake is not valid HTTP";
        w->head_cr = buf[i] == '\r';
    }
    /* Never more than the head's limit, counting the bytes of this read the head used. */
    w->head_bytes += used;
    if (w->head_bytes > WS_HEAD_MAX)
        return "the upstream's answer head is too large";
    if (w->head_done && (w->parser.http_major != 1 || w->parser.http_minor != 1))
        return "the upstream answered the WebSocket handshake with a version other than "
               "HTTP/1.1";
    return NULL;
}

/* ---- lifecycle ---- */

static void set_timer(ws_conn *w, int64_t ms, evloop_timer_cb cb)
{
    if (w->timer_id)
        evloop_cancel_timer(w->loop, w->timer_id);
    w->timer_id = ms >= 0 ? evloop_add_timer(w->loop, ms, cb, w) : 0;
    if (w->timer_id < 0)
        w->timer_id = 0;
}

static void wipe_request(ws_conn *w)
{
    if (w->request) {
        sodium_memzero(w->request, w->request_len);
        free(w->request);
    }
    w->request = NULL;
    w->request_len = w->request_off = 0;
}

/* Give everything back: our watches, the client socket (to MHD), the upstream connection. */
static void teardown(ws_conn *w)
{
    if (w->timer_id)
        evloop_cancel_timer(w->loop, w->timer_id);
    w->timer_id = 0;
    if (w->client_watched)
        evloop_remove_io(w->loop, w->client_fd);
    w->client_watched = false;
    if (w->urh)
        (void)MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
    w->urh = NULL;
    if (w->up_watched)
        evloop_remove_io(w->loop, w->up_fd);
    w->up_watched = false;
    if (w->in_multi)
        curl_loop_remove(w->curl, w->easy); /* closes the connect-only connection */
    w->in_multi = false;
    if (w->easy)
        curl_easy_cleanup(w->easy);
    w->easy = NULL;
    wipe_request(w);
    w->state = WS_CLOSED;
}

static void give_answer(ws_conn *w, int status, const char *error)
{
    ws_answer_cb cb = w->answer;

    w->answer = NULL;
    if (error || status != 101)
        teardown(w);
    else {
        w->state = WS_ANSWERED;
        set_timer(w, -1, NULL);
        if (w->up_watched)
            evloop_remove_io(w->loop, w->up_fd); /* watched again once the client is here */
        w->up_watched = false;
    }
    if (cb)
        cb(w->answer_data, status, w->headers, error);
}

/* Ends with the client socket given back to MHD: that may complete the request at once, and
 * the proxy's completion frees w. Nothing touches w after it. */
static void end_tunnel(ws_conn *w, const char *outcome)
{
    ws_end e = {.outcome = outcome, .bytes_up = w->bytes_up, .bytes_down = w->bytes_down};
    ws_closed_cb cb = w->closed;
    void *data = w->closed_data;
    struct MHD_UpgradeResponseHandle *urh = w->urh;

    w->closed = NULL;
    w->urh = NULL;
    teardown(w);
    if (cb)
        cb(data, &e);
    if (urh)
        (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static int on_deadline(evloop *l, void *userdata)
{
    ws_conn *w = userdata;

    w->timer_id = 0;
    if (w->state == WS_SENDING || w->state == WS_READING)
        give_answer(w, 0, "the upstream did not answer the WebSocket handshake in time");
    return 0;
}

/* ---- the handshake ---- */

static void handshake_io(ws_conn *w);

static int on_up_io(evloop *l, int fd, uint32_t events, void *userdata);

static int watch_up(ws_conn *w, uint32_t events)
{
    if (w->up_watched)
        return evloop_set_io_events(w->loop, w->up_fd, events);
    if (evloop_add_io(w->loop, w->up_fd, events, on_up_io, w) < 0)
        return -EIO;
    w->up_watched = true;
    return 0;
}

static void handshake_io(ws_conn *w)
{
    char buf[4096];

    while (w->state == WS_SENDING && w->request_off < w->request_len) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(w->easy, w->request + w->request_off,
                                     w->request_len - w->request_off, &sent);
        if (rc == CURLE_AGAIN) {
            if (watch_up(w, EPOLLOUT) < 0)
                give_answer(w, 0, "cannot watch the upstream connection");
            return;
        }
        if (rc != CURLE_OK) {
            give_answer(w, 0, "the upstream connection failed while sending the handshake");
            return;
        }
        w->request_off += sent;
    }
    if (w->state == WS_SENDING) {
        wipe_request(w); /* the credential is out of our memory as soon as it is sent */
        w->state = WS_READING;
        if (watch_up(w, EPOLLIN) < 0) {
            give_answer(w, 0, "cannot watch the upstream connection");
            return;
        }
    }
    while (w->state == WS_READING) {
        size_t got = 0, used;
        CURLcode rc = curl_easy_recv(w->easy, buf, sizeof buf, &got);
        const char *bad;

        if (rc == CURLE_AGAIN)
            return;
        if (rc != CURLE_OK || got == 0) {
            give_answer(w, 0,
                        "the upstream closed the connection before answering the "
                        "WebSocket handshake");
            return;
        }
        bad = head_feed(w, buf, got, &used);
        if (bad) {
            give_answer(w, 0, bad);
            return;
        }
        if (!w->head_done)
            continue;
        /* What came with the head belongs to the client already. */
        if (got > used) {
            memcpy(w->down.data, buf + used, got - used);
            w->down.len = got - used;
            w->bytes_down += got - used;
            scrub_down(w, got - used);
        }
        give_answer(w, (int)w->parser.status_code, NULL);
        return;
    }
}

static void on_connected(CURL *easy, CURLcode result, void *userdata)
{
    ws_conn *w = userdata;
    curl_socket_t s = CURL_SOCKET_BAD;

    if (result != CURLE_OK) {
        w->in_multi = false; /* the loop removed the failed transfer */
        give_answer(w, 0, "cannot connect to the upstream");
        return;
    }
    if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK || s == CURL_SOCKET_BAD) {
        give_answer(w, 0, "the upstream connection has no socket");
        return;
    }
    w->up_fd = (int)s;
    curl_loop_take_socket(w->curl, w->up_fd);
    w->state = WS_SENDING;
    set_timer(w, WS_HEAD_TIMEOUT_MS, on_deadline);
    handshake_io(w);
}

static bool line_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

/* The handshake head in one allocation sized up front (it holds the credential: no realloc may
 * leave a copy behind; it is wiped when sent or freed). */
static int build_request(ws_conn *w, const char *url, struct curl_slist *headers)
{
    CURLU *u = curl_url();
    char *path = NULL, *query = NULL, *host = NULL, *port = NULL, *p;
    size_t len = 0;
    int r = -EINVAL, n;

    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
    if (!line_ok(host) || !line_ok(path) || (query && !line_ok(query)))
        goto out;
    n = snprintf(NULL, 0, "GET %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\n", path, query ? "?" : "",
                 query ? query : "", host, port ? ":" : "", port ? port : "");
    if (n < 0)
        goto out;
    len = (size_t)n + 2;
    for (struct curl_slist *h = headers; h; h = h->next) {
        if (!line_ok(h->data))
            goto out;
        len += strlen(h->data) + 2;
    }
    w->request = p = malloc(len + 1);
    if (!p) {
        r = -ENOMEM;
        goto out;
    }
    p += snprintf(p, (size_t)n + 1, "GET %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\n", path,
                  query ? "?" : "", query ? query : "", host, port ? ":" : "", port ? port : "");
    for (struct curl_slist *h = headers; h; h = h->next) {
        size_t k = strlen(h->data);
        memcpy(p, h->data, k);
        memcpy(p + k, "\r\n", 2);
        p += k + 2;
    }
    memcpy(p, "\r\n", 3);
    w->request_len = len;
    r = 0;
out:
    curl_free(path);
    curl_free(query);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return r;
}

int ws_conn_start(evloop *l, curl_loop *c, const char *url, struct curl_slist *headers,
                  const char *ca_file, ws_answer_cb answer, void *userdata, ws_conn **ret)
{
    ws_conn *w = calloc(1, sizeof(*w));
    int r;

    if (!w) {
        r = -ENOMEM;
        goto fail;
    }
    w->loop = l;
    w->curl = c;
    w->up_fd = -1;
    w->client_fd = -1;
    w->answer = answer;
    w->answer_data = userdata;
    http_parser_init(&w->parser, HTTP_RESPONSE);
    w->parser.data = w;
    if ((r = build_request(w, url, headers)) < 0)
        goto fail;
    w->easy = curl_easy_init();
    if (!w->easy) {
        r = -ENOMEM;
        goto fail;
    }
    curl_easy_setopt(w->easy, CURLOPT_URL, url);
    curl_easy_setopt(w->easy, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(w->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* curl_easy_recv() reads at most this much per call (16 KiB by default); the bytes go to
     * our ring, so the buffer libcurl allocates for it is never touched */
    curl_easy_setopt(w->easy, CURLOPT_BUFFERSIZE, (long)PIPE_BUF_SIZE);
    if (ca_file)
        curl_easy_setopt(w->easy, CURLOPT_CAINFO, ca_file);
    if ((r = curl_loop_add_connect_only(c, w->easy, on_connected, w)) < 0)
        goto fail;
    w->in_multi = true;
    for (struct curl_slist *h = headers; h; h = h->next)
        sodium_memzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    *ret = w;
    return 0;
fail:
    for (struct curl_slist *h = headers; h; h = h->next)
        sodium_memzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    if (w) {
        if (w->easy)
            curl_easy_cleanup(w->easy);
        wipe_request(w);
        free(w);
    }
    return r;
}

/* ---- the tunnel ---- */

static void pump(ws_conn *w);

static int on_client_io(evloop *l, int fd, uint32_t events, void *userdata)
{
    ws_conn *w = userdata;

    if (events & (EPOLLHUP | EPOLLERR))
        w->client_hup = true;
    pump(w);
    return 0;
}

static int on_up_io(evloop *l, int fd, uint32_t events, void *userdata)
{
    ws_conn *w = userdata;

    if (w->state == WS_TUNNEL) {
        if (events & (EPOLLHUP | EPOLLERR))
            w->up_hup = true;
        pump(w);
    } else
        handshake_io(w);
    return 0;
}

static int on_tunnel_timer(evloop *l, void *userdata)
{
    ws_conn *w = userdata;
    int64_t idle;

    w->timer_id = 0;
    idle = evloop_now_ms() - w->last_io_ms;
    if (idle >= w->idle_ms) {
        end_tunnel(w, "idle-timeout");
        return 0;
    }
    pump(w); /* a round cut short, or an early wake-up: go on, re-arms the timer */
    return 0;
}

static void pump(ws_conn *w)
{
    bool progress = true, more = false;
    /* a side failed ("client" or "upstream"), or a write found a side that had already sent its
     * EOF gone altogether (gone: the tunnel is simply over) */
    const char *fail = NULL;
    bool gone = false;

    for (int round = 0; progress && round < PUMP_ROUNDS && !fail; round++) {
        progress = false;
        if (!w->client_eof && ring_room(&w->up) > 0) {
            ssize_t n = recv(w->client_fd, w->up.data + w->up.off + w->up.len, ring_room(&w->up),
                             MSG_DONTWAIT);
            if (n > 0) {
                w->up.len += (size_t)n;
                w->bytes_up += (uint64_t)n;
                progress = true;
            } else if (n == 0)
                w->client_eof = progress = true;
            else if (errno != EAGAIN && errno != EINTR)
                fail = "client";
        }
        if (w->up.len > 0) {
            size_t sent = 0;
            CURLcode rc = curl_easy_send(w->easy, w->up.data + w->up.off, w->up.len, &sent);
            if (rc == CURLE_OK && sent > 0) {
                w->up.off += sent;
                w->up.len -= sent;
                progress = true;
            } else if (rc != CURLE_OK && rc != CURLE_AGAIN) {
                fail = "upstream";
                gone = w->up_eof; /* it closed, not just its half */
            }
            if (w->up.len == 0 || ring_room(&w->up) < PIPE_BUF_SIZE / 4)
                ring_compact(&w->up);
        }
        if (!w->up_eof && ring_room(&w->down) > 0) {
            size_t got = 0;
            CURLcode rc = curl_easy_recv(w->easy, w->down.data + w->down.off + w->down.len,
                                         ring_room(&w->down), &got);
            if (rc == CURLE_OK && got > 0) {
                w->down.len += got;
                w->bytes_down += got;
                progress = true;
                scrub_down(w, got);
            } else if (rc == CURLE_OK) {
                w->up_eof = progress = true;
                w->held = 0; /* no more bytes will show what the held ones are */
            } else if (rc != CURLE_AGAIN)
                fail = "upstream";
        }
        if (w->down.len > w->held) {
            ssize_t n = send(w->client_fd, w->down.data + w->down.off, w->down.len - w->held,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                w->down.off += (size_t)n;
                w->down.len -= (size_t)n;
                progress = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fail = "client";
                gone = w->client_eof;
            }
        }
        /* also when only held bytes are left: they must never sit at the ring's end with no
         * room to read the bytes that release them */
        if (w->down.len == w->held || ring_room(&w->down) < PIPE_BUF_SIZE / 4)
            ring_compact(&w->down);
        if (progress)
            w->last_io_ms = evloop_now_ms();
        more = progress;
    }
    if (fail) {
        if (!gone)
            log_debug("vault: WebSocket tunnel: the %s side failed", fail);
        end_tunnel(w, gone ? "ok" : "tunnel-error");
        return;
    }
    /* A side's EOF goes on to the other once what it sent has (a half-close, as TCP has it:
     * `nc` ends its input that way and still reads the answer); both done, the tunnel is. */
    if (w->client_eof && w->up.len == 0 && !w->up_shut) {
        (void)shutdown(w->up_fd, SHUT_WR);
        w->up_shut = true;
    }
    if (w->up_eof && w->down.len == 0 && !w->client_shut) {
        (void)shutdown(w->client_fd, SHUT_WR);
        w->client_shut = true;
    }
    if (w->up_shut && w->client_shut) {
        end_tunnel(w, "ok");
        return;
    }
    /* A side with HUP or ERR is no longer watched: epoll reports those whatever we ask for, and
     * this round took what it had. What is still to come from it is already in its queue, read
     * when the other side's progress calls us; a write to it fails and ends the tunnel. */
    if (w->client_hup && w->client_watched) {
        evloop_remove_io(w->loop, w->client_fd);
        w->client_watched = false;
    }
    if (w->up_hup && w->up_watched) {
        evloop_remove_io(w->loop, w->up_fd);
        w->up_watched = false;
    }
    uint32_t cev = 0, uev = 0;
    if (!w->client_eof && ring_room(&w->up) > 0)
        cev |= EPOLLIN;
    if (w->down.len > w->held)
        cev |= EPOLLOUT;
    if (!w->up_eof && ring_room(&w->down) > 0)
        uev |= EPOLLIN;
    if (w->up.len > 0)
        uev |= EPOLLOUT;
    if ((w->client_watched && evloop_set_io_events(w->loop, w->client_fd, cev) < 0) ||
        (!w->up_hup && watch_up(w, uev) < 0)) {
        end_tunnel(w, "tunnel-error");
        return;
    }
    /* Both sides deaf: nothing can move any more. */
    if (w->client_hup && w->up_hup) {
        end_tunnel(w, "ok");
        return;
    }
    /* Cut short while bytes still moved (TLS may hold decrypted bytes epoll cannot see): come
     * back at once; otherwise the idle deadline. */
    set_timer(w, more ? 0 : MAX(w->idle_ms - (evloop_now_ms() - w->last_io_ms), (int64_t)1),
              on_tunnel_timer);
}

int ws_conn_attach(ws_conn *w, int sock, struct MHD_UpgradeResponseHandle *urh,
                   const char *extra_in, size_t extra_in_size, int64_t idle_ms, ws_closed_cb closed,
                   void *userdata)
{
    if (!w || w->state != WS_ANSWERED || extra_in_size > sizeof w->up.data) {
        if (urh)
            (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return -EINVAL;
    }
    w->client_fd = sock;
    w->urh = urh;
    w->idle_ms = MAX(idle_ms, (int64_t)1);
    w->closed = closed;
    w->closed_data = userdata;
    if (extra_in_size) {
        memcpy(w->up.data, extra_in, extra_in_size);
        w->up.len = extra_in_size;
        w->bytes_up += extra_in_size;
    }
    w->state = WS_TUNNEL;
    w->last_io_ms = evloop_now_ms();
    if (evloop_add_io(w->loop, sock, EPOLLIN, on_client_io, w) < 0) {
        end_tunnel(w, "tunnel-error");
        return -EIO;
    }
    w->client_watched = true;
    pump(w);
    return 0;
}

static void scrub_forget(ws_conn *w)
{
    if (w->scrub) {
        sodium_memzero(w->scrub, w->scrub_len);
        free(w->scrub);
    }
    w->scrub = NULL;
    w->scrub_len = 0;
}

int ws_conn_scrub(ws_conn *w, const char *secret, size_t len)
{
    scrub_forget(w);
    w->scrub = malloc(len ? len : 1);
    if (!w->scrub)
        return -ENOMEM;
    memcpy(w->scrub, secret, len);
    w->scrub_len = len;
    return 0;
}

ws_conn *ws_conn_free(ws_conn *w)
{
    if (!w)
        return NULL;
    teardown(w);
    scrub_forget(w);
    strv_free(w->headers);
    free(w->field);
    free(w->value);
    free(w);
    return NULL;
}
