/* SPDX-License-Identifier: Apache-2.0 */
/* broker/proxy.c: where a phantom token is swapped for the real credential.
 *
 * One request = one MHD connection state (struct req) + one libcurl easy transfer, both driven
 * by the daemon's single evloop. Data moves through two bounded buffers; whichever side is
 * ahead is paused (curl: CURL_READFUNC_PAUSE / CURL_WRITEFUNC_PAUSE; MHD: suspend) until the
 * other side drains. The credential exists only in a terok_secret and in the one curl header
 * line built from it, which is wiped before it is freed. Never prints. */
#include <ctype.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <sodium.h>
#include <time.h>

#include "broker/curl-loop.h"
#include "broker/proxy.h"
#include "broker/scrub.h"
#include "broker/ws.h"
#include "daemon/httpd.h"
#include "error.h"
#include "log.h"
#include "util/macro.h"
#include "util/strv.h"

#define BUF_MAX (256 * 1024)    /* per direction, per request */
#define UPLOAD_BUF (256 * 1024) /* libcurl's upload buffer for bulk bodies */
/* easy handles kept for reuse, per proxy (worker): a handle is either in use or here, so the
 * peak under load is the busiest moment's count either way */
#define EASY_SPARE 64
#define MAX_REDIRECTS 5
#define OAUTH_MARGIN_S 60    /* refresh this long before the access token expires */
#define OAUTH_RESP_MAX 65536 /* token endpoint answers are small */

typedef struct req req;

/* One per OAuth route: the refresh in flight and the requests waiting for it. */
typedef struct oauth_state {
    struct proxy *p;
    const route *rt;
    char msg[160]; /* the last failure, for the waiters' 502 */
    CURL *easy;
    struct curl_slist *headers;
    char *form; /* the POST body (holds the refresh token): wiped before free */
    char *resp;
    size_t resp_len;
    req **waiters;
    size_t n_waiters;
    struct oauth_state *next;
} oauth_state;

typedef struct listener {
    proxy *p;
    char *container;
    httpd *h;
    bool is_unix;
    req *tunnels; /* upgraded (WebSocket) requests still open */
    struct listener *next;
} listener;

struct proxy {
    evloop *loop;
    curl_loop *curl;
    const routes *routes;
    const broker_hooks *hooks;
    char *ca_file;
    listener *listeners;
    oauth_state *oauth;
    CURL *spare[EASY_SPARE]; /* finished easy handles, reset for the next request */
    size_t n_spare;
};

typedef struct buf {
    char *data;
    size_t off, len, cap; /* bytes [off, off+len) are pending */
} buf;

typedef enum wait_reason {
    WAIT_NONE = 0,
    WAIT_UPLOAD_FULL, /* MHD has more body than we can hold */
    WAIT_HEADERS,     /* body done, upstream has not answered yet */
    WAIT_BODY,        /* the response reader has nothing to give */
    WAIT_OAUTH,       /* the route's access token is being refreshed */
} wait_reason;

struct req {
    listener *ls;
    struct MHD_Connection *conn;
    const route *rt;
    char *method;
    char *path;  /* raw path after /<route>, with leading '/' */
    char *query; /* "" or "?..." */
    char *origin_url;
    int64_t t0;
    const char *outcome;
    int status;
    uint64_t bytes_in, bytes_out;

    CURL *easy;
    struct curl_slist *req_headers;
    bool active; /* easy is in the multi */
    bool has_body;
    long long content_length;

    buf up;
    bool up_done;
    bool read_paused;

    int up_status;
    char **resp_headers; /* "Name: value" */
    long long resp_length;
    bool headers_done;
    char *location;
    int hops;
    bool redirecting;
    bool drop_credential; /* after a cross-origin redirect */
    char *cred_line;      /* "<auth-header>: <prefix><secret>", wiped before it is freed */
    size_t cred_slen;     /* the secret's length, at the end of cred_line */
    bool encoded;         /* the answer has a Content-Encoding other than identity */
    size_t held;          /* bytes at the end of down kept back: they may begin the secret */
    int64_t hold_timer;   /* releases them after SCRUB_HOLD_MS without more bytes; 0: none */

    buf down;
    bool write_paused;
    bool done;
    CURLcode result;
    char curl_error[CURL_ERROR_SIZE];

    wait_reason waiting;
    bool responded;

    bool oauth_waiting; /* in its route's oauth_state waiters */
    bool oauth_retried; /* refreshed once after an upstream 401 */
    bool retry_401;     /* this transfer's 401 is being swallowed for a retry */
    int fail_status;    /* answer this when MHD calls next (set while suspended) */
    const char *fail_outcome, *fail_message;

    bool ws;          /* a WebSocket upgrade (ws.h) */
    bool ws_answered; /* the upstream switched protocols: pass the 101 on */
    ws_conn *wsc;
    char *ws_message;         /* a failure's text (fail_message points here) */
    req *ws_next, **ws_pprev; /* in the listener's open tunnels */
};

enum { OAUTH_READY, OAUTH_WAIT, OAUTH_FAIL };
static int oauth_get(req *q, bool force);
static void fail_later(req *q, int status, const char *outcome, const char *message);

static const char *const hop_by_hop[] = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    NULL,
};

static bool is_hop_by_hop(const char *name, size_t len)
{
    for (const char *const *h = hop_by_hop; *h; h++)
        if (strlen(*h) == len && strncasecmp(name, *h, len) == 0)
            return true;
    return false;
}

/* The audit's duration in microseconds: the loop's millisecond clock made every request
 * faster than 1 ms (most of them) 0 or 1000. */
static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- buffers ---- */

static size_t buf_room(const buf *b)
{
    return BUF_MAX - b->len;
}

static int buf_append(buf *b, const char *data, size_t n)
{
    if (b->off + b->len + n > b->cap && b->off > 0) {
        /* slide the pending bytes to the front once instead of on every take */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        /* small answers get a small buffer; streams double up to BUF_MAX */
        size_t cap = b->cap ? b->cap * 2 : MAX(n, (size_t)4096);
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->off + b->len, data, n);
    b->len += n;
    return 0;
}

static size_t buf_take(buf *b, char *out, size_t max)
{
    size_t n = MIN(max, b->len);

    memcpy(out, b->data + b->off, n);
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
    return n;
}

static void buf_done(buf *b)
{
    free(b->data);
    *b = (buf){0};
}

/* ---- the credential in answers (route option scrub-responses) ---- */

/* The secret as the upstream got it, when answers are to be checked for it: the tail of
 * cred_line. Shorter secrets are not looked for (they would mask innocent bytes). */
static const char *scrub_secret(const req *q, size_t *ret_len)
{
    if (!q->rt->scrub || !q->cred_line || q->cred_slen < SCRUB_MIN)
        return NULL;
    *ret_len = q->cred_slen;
    return q->cred_line + strlen(q->rt->auth_header) + 2 + strlen(q->rt->auth_prefix);
}

/* ---- suspend / resume bookkeeping ---- */

static void wait_for(req *q, wait_reason why)
{
    if (q->waiting == WAIT_NONE)
        MHD_suspend_connection(q->conn);
    q->waiting = why;
}

static void wake_if(req *q, wait_reason why)
{
    if (q->waiting != why)
        return;
    q->waiting = WAIT_NONE;
    MHD_resume_connection(q->conn);
    httpd_kick(q->ls->h); /* we are on the loop's thread: no eventfd round trip */
}

static void wake_any(req *q)
{
    if (q->waiting != WAIT_NONE)
        wake_if(q, q->waiting);
}

/* ---- simple responses ---- */

static enum MHD_Result respond_json(req *q, int status, const char *outcome, const char *message)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    json_object *o = json_object_new_object();
    const char *text;
    char *body;
    int n;

    /* The message never contains a token or a credential: callers pass fixed text and names
     * from the configuration, escaped here. */
    if (!o)
        return MHD_NO;
    json_object_object_add(o, "error", json_object_new_string(message));
    json_object_object_add(o, "status", json_object_new_int(status));
    text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    n = text ? asprintf(&body, "%s\n", text) : -1;
    json_object_put(o);
    if (n < 0)
        return MHD_NO;
    resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    r = MHD_queue_response(q->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    q->status = status;
    q->outcome = outcome;
    q->responded = true;
    return r;
}

/* ---- curl callbacks ---- */

static size_t on_read(char *out, size_t size, size_t nitems, void *userdata)
{
    req *q = userdata;
    size_t n;

    if (q->up.len == 0) {
        if (q->up_done)
            return 0;
        q->read_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    n = buf_take(&q->up, out, size * nitems);
    wake_if(q, WAIT_UPLOAD_FULL);
    return n;
}

static void clear_response(req *q)
{
    q->resp_headers = strv_free(q->resp_headers);
    q->resp_length = -1;
    free(q->location);
    q->location = NULL;
}

static bool safe_method(const char *m)
{
    return streq(m, "GET") || streq(m, "HEAD") || streq(m, "OPTIONS");
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    req *q = userdata;
    size_t len = size * nitems, nlen;
    const char *colon, *v, *end;

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        clear_response(q);
        q->encoded = false; /* each answer's own (an interim one came first) */
        q->up_status = sp ? (int)strtol(sp + 1, NULL, 10) : 502;
        return len;
    }
    if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        if (q->up_status >= 100 && q->up_status < 200)
            return len; /* interim response; the real one follows */
        if (q->up_status >= 300 && q->up_status < 400 && q->up_status != 304 && q->location &&
            safe_method(q->method) && q->hops < MAX_REDIRECTS) {
            q->redirecting = true; /* followed when this transfer ends */
            return len;
        }
        if (q->up_status == 401 && q->rt->oauth_token_url && !q->oauth_retried && !q->has_body) {
            q->retry_401 = true; /* refresh the access token once and ask again */
            return len;
        }
        size_t sl;
        if (q->encoded && scrub_secret(q, &sl) && !streq(q->method, "HEAD") &&
            q->up_status != 204 && q->up_status != 304) {
            /* asked for identity and got something else: a body that cannot be checked for
             * the credential does not reach the container */
            fail_later(q, 502, "upstream-encoded",
                       "the upstream answered with a Content-Encoding although the broker asked "
                       "for none; it cannot be checked for the credential (route option "
                       "scrub-responses)");
            return 0;
        }
        q->headers_done = true;
        wake_if(q, WAIT_HEADERS);
        return len;
    }
    colon = memchr(line, ':', len);
    if (!colon)
        return len;
    nlen = (size_t)(colon - line);
    v = colon + 1;
    end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
        char tmp[32];
        size_t k = MIN((size_t)(end - v), sizeof tmp - 1);
        memcpy(tmp, v, k);
        tmp[k] = 0;
        q->resp_length = strtoll(tmp, NULL, 10);
        return len;
    }
    if (nlen == 8 && strncasecmp(line, "location", 8) == 0) {
        free(q->location);
        q->location = strndup(v, (size_t)(end - v));
    }
    if (nlen == 16 && strncasecmp(line, "content-encoding", 16) == 0 && end > v &&
        !(end - v == 8 && strncasecmp(v, "identity", 8) == 0))
        q->encoded = true;
    if (is_hop_by_hop(line, nlen) || (nlen == 4 && strncasecmp(line, "date", 4) == 0))
        return len;
    char *kept = strndup(line, (size_t)(end - line));
    const char *secret;
    size_t sl;
    if (kept && (secret = scrub_secret(q, &sl)))
        (void)scrub_span(kept, strlen(kept), secret, sl);
    if (strv_consume(&q->resp_headers, kept) < 0)
        return 0; /* out of memory: abort the transfer */
    return len;
}

static int on_hold_timer(evloop *l, void *userdata)
{
    req *q = userdata;

    q->hold_timer = 0;
    q->held = 0; /* the stream paused: the kept bytes were not the credential's start */
    wake_if(q, WAIT_BODY);
    return 0;
}

static void hold_cancel(req *q)
{
    if (q->hold_timer)
        evloop_cancel_timer(q->ls->p->loop, q->hold_timer);
    q->hold_timer = 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    req *q = userdata;
    size_t n = size * nmemb;

    if (q->redirecting || q->retry_401)
        return n; /* the body of a redirect we follow, or of a 401 we retry */
    if (q->down.len > 0 && n > buf_room(&q->down)) {
        q->write_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (buf_append(&q->down, data, n) < 0)
        return 0;
    const char *secret;
    size_t sl;
    if ((secret = scrub_secret(q, &sl))) {
        size_t span = n + q->held;
        q->held = scrub_span(q->down.data + q->down.off + q->down.len - span, span, secret, sl);
        hold_cancel(q);
        if (q->held) {
            int64_t id = evloop_add_timer(q->ls->p->loop, SCRUB_HOLD_MS, on_hold_timer, q);
            q->hold_timer = id > 0 ? id : 0; /* none: released at the end, or with more bytes */
        }
    }
    wake_if(q, WAIT_BODY);
    return n;
}

/* ---- the upstream transfer ---- */

static void secret_slist_free(struct curl_slist *l)
{
    /* The credential header is in this list: wipe every line before libcurl frees it. */
    for (struct curl_slist *i = l; i; i = i->next)
        sodium_memzero(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static bool same_origin(const char *a, const char *b)
{
    CURLU *ua = curl_url(), *ub = curl_url();
    char *sa = NULL, *ha = NULL, *pa = NULL, *sb = NULL, *hb = NULL, *pb = NULL;
    bool same = false;

    if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_SCHEME, &sa, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_SCHEME, &sb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_HOST, &ha, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_HOST, &hb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT) == CURLUE_OK)
        same = strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
    curl_free(sa);
    curl_free(sb);
    curl_free(ha);
    curl_free(hb);
    curl_free(pa);
    curl_free(pb);
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* Resolve Location against the current URL (libcurl's URL API does the RFC 3986 work). */
static char *resolve_location(const char *base, const char *location)
{
    CURLU *u = curl_url();
    char *out = NULL, *r = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
        if (strncmp(out, "http://", 7) == 0 || strncmp(out, "https://", 8) == 0)
            r = strdup(out);
    }
    curl_free(out);
    curl_url_cleanup(u);
    return r;
}

static enum MHD_Result header_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    req *q = cls;
    const char *connection;

    if (is_hop_by_hop(key, key_size))
        return MHD_YES;
    static const char *const drop[] = {"host",      "content-length", "expect", "authorization",
                                       "x-api-key", "private-token",  NULL};
    for (const char *const *d = drop; *d; d++)
        if (strlen(*d) == key_size && strncasecmp(key, *d, key_size) == 0)
            return MHD_YES;
    STRV_FOREACH(h, q->rt->token_headers)
    if (strlen(*h) == key_size && strncasecmp(key, *h, key_size) == 0)
        return MHD_YES;
    /* Answers are searched for the credential as plain bytes: start_transfer asks for identity,
     * and a tunnel does without permessage-deflate (compressed frames would hide it). */
    if (q->rt->scrub && !q->ws && key_size == 15 && strncasecmp(key, "accept-encoding", 15) == 0)
        return MHD_YES;
    if (q->rt->scrub && q->ws && key_size == 24 &&
        strncasecmp(key, "sec-websocket-extensions", 24) == 0)
        return MHD_YES;
    if (strlen(q->rt->auth_header) == key_size &&
        strncasecmp(key, q->rt->auth_header, key_size) == 0)
        return MHD_YES;
    /* headers the client named in Connection are hop-by-hop too */
    connection = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Connection");
    if (connection) {
        _cleanup_free_ char *c = strdup(connection);
        char *save = NULL;
        for (char *t = c ? strtok_r(c, ", ", &save) : NULL; t; t = strtok_r(NULL, ", ", &save))
            if (strlen(t) == key_size && strncasecmp(key, t, key_size) == 0)
                return MHD_YES;
    }
    char *line = NULL;
    if (asprintf(&line, "%.*s: %.*s", (int)key_size, key, (int)value_size, value ? value : "") < 0)
        return MHD_NO;
    struct curl_slist *l = curl_slist_append(q->req_headers, line);
    free(line);
    if (!l)
        return MHD_NO;
    q->req_headers = l;
    return MHD_YES;
}

static void on_done(CURL *easy, CURLcode result, void *userdata);
static int ws_begin(req *q);

static int start_transfer(req *q, const char *url)
{
    proxy *p = q->ls->p;
    CURL *e = p->n_spare ? p->spare[--p->n_spare] : curl_easy_init();

    if (!e)
        return -ENOMEM;
    q->easy = e;
    q->req_headers = NULL;
    if (MHD_get_connection_values_n(q->conn, MHD_HEADER_KIND, header_iter, q) < 0)
        return -ENOMEM;
    /* no 100-continue round trip: the container already sent us the body */
    q->req_headers = curl_slist_append(q->req_headers, "Expect:");
    /* an answer that repeats the credential is masked: it must arrive as plain bytes */
    if (q->rt->scrub && !q->ws)
        q->req_headers = curl_slist_append(q->req_headers, "Accept-Encoding: identity");
    if (!q->drop_credential) {
        q->req_headers = curl_slist_append(q->req_headers, q->cred_line);
        if (!q->req_headers)
            return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->req_headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 1200L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->curl_error);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    /* libcurl's receive buffer, per transfer: 16 KiB (its default) keeps 64 busy connections
     * at 1 MiB; a larger one bought no download speed (bench/broker) */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 16L * 1024);
    if (p->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
    if (streq(q->method, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (q->has_body && q->hops == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, q);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->content_length);
        /* libcurl's 64 KiB default sends a bulk body in twice the system calls; small bodies
         * keep it (the buffer is allocated per upload) */
        if (q->content_length < 0 || q->content_length > 64 * 1024)
            curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUF);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
    } else if (!streq(q->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
        if (streq(q->method, "POST") || streq(q->method, "PUT") || streq(q->method, "PATCH")) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        }
    }
    q->up_status = 0;
    q->redirecting = false;
    q->done = false;
    q->encoded = false;
    q->held = 0;
    hold_cancel(q);
    clear_response(q);
    if (curl_loop_add(p->curl, e, on_done, q) < 0)
        return -EIO;
    q->active = true;
    return 0;
}

/* A finished handle is kept for the next request: curl_easy_init() + cleanup per request
 * allocated and zeroed the handle and its 16 KiB receive buffer every time. The reset drops
 * every option (our header list, with the credential, is wiped and freed by the caller). */
static void easy_release(proxy *p, CURL *e, bool keep)
{
    if (keep && p->n_spare < EASY_SPARE) {
        curl_easy_reset(e);
        p->spare[p->n_spare++] = e;
    } else
        curl_easy_cleanup(e);
}

static void end_transfer(req *q)
{
    if (q->active)
        curl_loop_remove(q->ls->p->curl, q->easy);
    q->active = false;
    if (q->easy)
        /* not after a bulk upload: the handle would keep its 256 KiB upload buffer */
        easy_release(q->ls->p, q->easy,
                     !q->has_body || (q->content_length >= 0 && q->content_length <= 64 * 1024));
    q->easy = NULL;
    secret_slist_free(q->req_headers);
    q->req_headers = NULL;
}

/* The upstream answered 401 on an OAuth route: refresh the access token once (forced) and ask
 * again when it is there; the request stays suspended meanwhile. */
static void oauth_retry(req *q)
{
    q->oauth_retried = true;
    switch (oauth_get(q, true)) {
    case OAUTH_WAIT:
        q->waiting = WAIT_OAUTH; /* still suspended, now for the refresh */
        return;
    case OAUTH_READY: /* cannot happen with force; answer as a failure */
    default:
        if (!q->fail_status)
            fail_later(q, 502, "oauth-refresh-failed", "OAuth token refresh failed");
        wake_any(q);
        return;
    }
}

static void on_done(CURL *easy, CURLcode result, void *userdata)
{
    req *q = userdata;

    q->active = false;
    if (q->retry_401) {
        q->retry_401 = false;
        end_transfer(q);
        oauth_retry(q);
        return;
    }
    if (result == CURLE_OK && q->redirecting && q->location) {
        char *cur = NULL, *next;

        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &cur);
        next = resolve_location(cur ? cur : q->origin_url, q->location);
        if (next) {
            /* Once the chain leaves the route's origin, the credential stays behind for good. */
            if (!same_origin(q->origin_url, next))
                q->drop_credential = true;
            q->hops++;
            end_transfer(q);
            if (start_transfer(q, next) == 0) {
                free(next);
                return;
            }
            free(next);
        }
        q->redirecting = false; /* could not follow: hand the 3xx on */
        q->headers_done = true;
    }
    q->done = true;
    q->result = result;
    wake_any(q);
}

/* ---- the MHD side ---- */

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    req *q = cls;
    size_t n, ready = q->down.len - (q->done ? 0 : MIN(q->held, q->down.len));

    if (ready > 0) {
        n = buf_take(&q->down, out, MIN(max, ready));
        q->bytes_out += n;
        if (q->write_paused && q->easy) {
            q->write_paused = false;
            curl_easy_pause(q->easy, CURLPAUSE_CONT); /* may call on_write right away */
        }
        return (ssize_t)n;
    }
    if (q->done)
        return q->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM
                                     : MHD_CONTENT_READER_END_WITH_ERROR;
    wait_for(q, WAIT_BODY);
    return 0;
}

static enum MHD_Result queue_upstream_response(req *q)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    bool no_body = streq(q->method, "HEAD") || q->up_status == 204 || q->up_status == 304;

    if (no_body)
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    else if (q->done && q->result == CURLE_OK && q->down.off == 0) {
        /* The whole body is already here (the common small answer): hand the buffer to MHD
         * instead of streaming it through a callback block, which MHD calloc()s per response. */
        size_t n = q->down.len;
        resp = MHD_create_response_from_buffer(n, n ? q->down.data : NULL,
                                               n ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (resp && n) {
            q->down = (buf){0};
            q->bytes_out += n;
        }
    } else {
        /* MHD's block per response: large for bulk bodies, small when the body is small */
        size_t block = 64 * 1024;
        if (q->resp_length >= 0 && q->resp_length < (long long)block)
            block = MAX((size_t)q->resp_length, (size_t)4096);
        resp = MHD_create_response_from_callback(q->resp_length >= 0 ? (uint64_t)q->resp_length
                                                                     : MHD_SIZE_UNKNOWN,
                                                 block, reader, q, NULL);
    }
    if (!resp)
        return MHD_NO;
    STRV_FOREACH(h, q->resp_headers)
    {
        char *c = strchr(*h, ':');
        if (!c)
            continue;
        *c = 0;
        const char *v = c + 1;
        while (*v == ' ')
            v++;
        MHD_add_response_header(resp, *h, v);
        *c = ':';
    }
    r = MHD_queue_response(q->conn, (unsigned)q->up_status, resp);
    MHD_destroy_response(resp);
    q->status = q->up_status;
    q->outcome = "ok";
    q->responded = true;
    return r;
}

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    buf *b = cls;
    int r = buf_append(b, b->len ? "&" : "?", 1);

    r = r < 0 ? r : buf_append(b, key, key_size);
    if (value && r >= 0) {
        r = buf_append(b, "=", 1);
        r = r < 0 ? r : buf_append(b, value, value_size);
    }
    return r < 0 ? MHD_NO : MHD_YES;
}

/* Raw path checks: no control characters, no fragment, no dot segments (plain or encoded),
 * so an allow-rule cannot be walked around. */
static bool path_ok(const char *p)
{
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c == 0x7f || *c == '#' || *c == '\\')
            return false;
    for (const char *seg = p; seg && *seg;) {
        const char *next = strchr(seg + 1, '/');
        size_t n = next ? (size_t)(next - seg - 1) : strlen(seg + 1);
        const char *s = seg + 1;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        seg = next;
    }
    return !strcasestr(p, "%2e") && !strcasestr(p, "%2f") && !strcasestr(p, "%5c");
}

static enum MHD_Result count_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    unsigned *n = cls;

    if ((key_size == 14 && strncasecmp(key, "content-length", 14) == 0) ||
        (key_size == 17 && strncasecmp(key, "transfer-encoding", 17) == 0))
        (*n)++;
    return MHD_YES;
}

/* RFC 9112 §5: a field name is a token (no whitespace before the colon); a value holds no
 * CR, LF, NUL or other control character but HTAB. libmicrohttpd 0.9.75 lets all of these
 * through, and libcurl would forward a bare CR verbatim: an upstream that splits lines on CR
 * then sees headers the container injected. */
static bool field_char_ok(unsigned char c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

static enum MHD_Result field_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    bool *bad = cls;

    if (key_size == 0 || strlen(key) != key_size) {
        *bad = true;
        return MHD_NO;
    }
    for (size_t i = 0; i < key_size; i++)
        if (!isalnum((unsigned char)key[i]) && !strchr("!#$%&'*+-.^_`|~", key[i])) {
            *bad = true;
            return MHD_NO;
        }
    if (value && strlen(value) != value_size) {
        *bad = true;
        return MHD_NO;
    }
    for (size_t i = 0; value && i < value_size; i++)
        if (!field_char_ok((unsigned char)value[i])) {
            *bad = true;
            return MHD_NO;
        }
    return MHD_YES;
}

static const char *find_token(req *q, size_t *ret_len)
{
    STRV_FOREACH(h, q->rt->token_headers)
    {
        const char *v = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, *h);
        if (!v || !*v)
            continue;
        if (strncasecmp(v, "Bearer ", 7) == 0)
            v += 7;
        while (*v == ' ')
            v++;
        *ret_len = strlen(v);
        while (*ret_len > 0 && v[*ret_len - 1] == ' ')
            (*ret_len)--;
        return v;
    }
    return NULL;
}

static const char *verdict_message(token_verdict v, int *status)
{
    switch (v) {
    case TOKEN_VALID:
        *status = 200;
        return "ok";
    case TOKEN_WRONG_CONTAINER:
        *status = 403;
        return "wrong-container";
    case TOKEN_WRONG_TARGET:
        *status = 403;
        return "wrong-route";
    case TOKEN_EXPIRED:
        *status = 401;
        return "expired-token";
    default:
        *status = 401;
        return "invalid-token";
    }
}

/* ---- credentials ---- */

/* "<auth-header>: <prefix><secret>", built once per request (redirect hops reuse it); plain
 * heap, wiped on free: an mlock()ed buffer per request costs more syscalls than the proxying. */
static int set_cred_line(req *q, const void *secret, size_t slen)
{
    size_t n = strlen(q->rt->auth_header) + 2 + strlen(q->rt->auth_prefix) + slen + 1;

    if (q->cred_line) {
        explicit_bzero(q->cred_line, strlen(q->cred_line));
        free(q->cred_line);
    }
    q->cred_line = malloc(n);
    if (!q->cred_line)
        return -ENOMEM;
    snprintf(q->cred_line, n, "%s: %s%.*s", q->rt->auth_header, q->rt->auth_prefix, (int)slen,
             (const char *)secret);
    q->cred_slen = strnlen((const char *)secret, slen);
    return 0;
}

/* ---- OAuth refresh ---- */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void fail_later(req *q, int status, const char *outcome, const char *message)
{
    q->fail_status = status;
    q->fail_outcome = outcome;
    q->fail_message = message;
}

/* A json-c string holding a token: wipe it before the object is freed. */
static void json_wipe(json_object *o, const char *key)
{
    json_object *v;

    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        sodium_memzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

static json_object *json_parse_n(const char *data, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL;

    if (tok && len <= INT32_MAX)
        o = json_tokener_parse_ex(tok, data, (int)len);
    if (tok)
        json_tokener_free(tok);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static char *json_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) == 0)
        return NULL;
    return strdup(json_object_get_string(v));
}

static void token_set_free(json_object *o)
{
    json_wipe(o, "access_token");
    json_wipe(o, "refresh_token");
    json_object_put(o);
}

/* The route's stored token set. *access / *refresh are heap copies to wipe_free(). */
static int oauth_load(req *q, char **access, char **refresh, int64_t *expires_at)
{
    proxy *p = q->ls->p;
    terok_error err = TEROK_ERROR_INIT;
    const terok_secret *cred = NULL;
    const void *data;
    size_t len;
    json_object *o, *v;

    if (p->hooks->get_credential(p->hooks->userdata, q->rt->credential, &cred, &err) < 0) {
        log_warning("vault: credential '%s' for route '%s': %s", q->rt->credential, q->rt->name,
                    terok_error_message(&err));
        terok_error_clear(&err);
        fail_later(q, 502, "credential-missing", "credential unavailable");
        return -ENOENT;
    }
    terok_secret_peek(cred, &data, &len);
    o = json_parse_n(data, len);
    *access = o ? json_str(o, "access_token") : NULL;
    *refresh = o ? json_str(o, "refresh_token") : NULL;
    *expires_at =
        o && json_object_object_get_ex(o, "expires_at", &v) ? json_object_get_int64(v) : 0;
    token_set_free(o);
    if (!*access && !*refresh) {
        log_warning("vault: credential '%s' of OAuth route '%s' is not a token set (JSON with "
                    "access_token / refresh_token / expires_at)",
                    q->rt->credential, q->rt->name);
        fail_later(q, 502, "credential-invalid", "credential is not an OAuth token set");
        return -EBADMSG;
    }
    return 0;
}

static oauth_state *oauth_for(proxy *p, const route *rt)
{
    for (oauth_state *s = p->oauth; s; s = s->next)
        if (s->rt == rt)
            return s;
    oauth_state *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->p = p;
    s->rt = rt;
    s->next = p->oauth;
    p->oauth = s;
    return s;
}

/* Free a refresh transfer's handle and buffers; in_loop: its handle is still in the multi
 * (curl-loop removed it already when it reports the transfer done). */
static void oauth_transfer_free(proxy *p, oauth_state *st, bool in_loop)
{
    if (st->easy) {
        if (in_loop)
            curl_loop_remove(p->curl, st->easy);
        curl_easy_cleanup(st->easy);
    }
    st->easy = NULL;
    curl_slist_free_all(st->headers);
    st->headers = NULL;
    wipe_free(st->form);
    st->form = NULL;
    if (st->resp)
        sodium_memzero(st->resp, st->resp_len);
    free(st->resp);
    st->resp = NULL;
    st->resp_len = 0;
}

static size_t oauth_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    oauth_state *st = userdata;
    size_t n = size * nmemb;
    char *r;

    if (st->resp_len + n > OAUTH_RESP_MAX)
        return 0;
    r = malloc(st->resp_len + n + 1); /* copy, so no stale copy of a token is left by realloc */
    if (!r)
        return 0;
    if (st->resp) {
        memcpy(r, st->resp, st->resp_len);
        sodium_memzero(st->resp, st->resp_len);
        free(st->resp);
    }
    memcpy(r + st->resp_len, data, n);
    st->resp = r;
    st->resp_len += n;
    st->resp[st->resp_len] = 0;
    return n;
}

/* The refresh ended: let every waiting request go on, or answer them all with a 502. */
static void oauth_finish(proxy *p, oauth_state *st, const char *access, const char *message)
{
    req **w = st->waiters;
    size_t n = st->n_waiters;

    st->waiters = NULL;
    st->n_waiters = 0;
    for (size_t i = 0; i < n; i++) {
        req *q = w[i];
        q->oauth_waiting = false;
        if (!access)
            fail_later(q, 502, "oauth-refresh-failed", message);
        else if (set_cred_line(q, access, strlen(access)) < 0 ||
                 (q->ws ? ws_begin(q) : start_transfer(q, q->origin_url)) < 0)
            fail_later(q, 502, "upstream-error", "cannot start the upstream request");
        if (!q->fail_status && q->up_done)
            q->waiting = WAIT_HEADERS; /* still suspended: the answer wakes it */
        else
            wake_any(q);
    }
    free(w);
}

static void oauth_done(CURL *easy, CURLcode result, void *userdata)
{
    oauth_state *st = userdata;
    proxy *p = st->p;
    long status = 0;
    json_object *o = NULL, *set = NULL, *v;
    char *access = NULL, *refresh = NULL, *old_refresh = NULL;
    const char *message = "OAuth token refresh failed: token endpoint unreachable";

    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK && status != 200) {
        snprintf(st->msg, sizeof st->msg, "OAuth token refresh failed: token endpoint answered %ld",
                 status);
        message = st->msg;
    } else if (result == CURLE_OK) {
        o = st->resp ? json_parse_n(st->resp, st->resp_len) : NULL;
        access = o ? json_str(o, "access_token") : NULL;
        refresh = o ? json_str(o, "refresh_token") : NULL;
        if (!access)
            message = "OAuth token refresh failed: no access_token in the answer";
    }
    if (access) {
        int64_t expires_at = 0;
        const char *form_rt = strstr(st->form, "refresh_token=");

        if (o && json_object_object_get_ex(o, "expires_in", &v) && json_object_get_int64(v) > 0)
            expires_at = (int64_t)time(NULL) + json_object_get_int64(v);
        if (!refresh && form_rt) { /* no rotation: the old refresh token stays valid */
            form_rt += strlen("refresh_token=");
            const char *end = strchr(form_rt, '&');
            char *enc = strndup(form_rt, end ? (size_t)(end - form_rt) : strlen(form_rt));
            int n = 0;
            char *dec = enc ? curl_easy_unescape(NULL, enc, 0, &n) : NULL;
            old_refresh = dec ? strndup(dec, (size_t)n) : NULL;
            if (dec) {
                sodium_memzero(dec, (size_t)n);
                curl_free(dec);
            }
            wipe_free(enc);
        }
        set = json_object_new_object();
        json_object_object_add(set, "access_token", json_object_new_string(access));
        if (refresh || old_refresh)
            json_object_object_add(set, "refresh_token",
                                   json_object_new_string(refresh ? refresh : old_refresh));
        json_object_object_add(set, "expires_at", json_object_new_int64(expires_at));
        if (p->hooks->put_credential) {
            const char *text = json_object_to_json_string_ext(set, JSON_C_TO_STRING_PLAIN);
            terok_secret *sec = NULL;
            terok_error err = TEROK_ERROR_INIT;
            if (terok_secret_new(text, strlen(text), &sec) < 0 ||
                p->hooks->put_credential(p->hooks->userdata, st->rt->credential, sec, &err) < 0)
                log_warning("vault: cannot store the refreshed token set '%s' of route '%s': %s",
                            st->rt->credential, st->rt->name, terok_error_message(&err));
            else
                log_info("vault: refreshed the OAuth access token of route '%s'", st->rt->name);
            terok_error_clear(&err);
            terok_secret_free(sec);
            sodium_memzero((char *)text, strlen(text));
        }
    } else
        log_warning("vault: route '%s': %s", st->rt->name, message);
    st->easy = easy;
    oauth_transfer_free(p, st, false);
    oauth_finish(p, st, access, message);
    token_set_free(o);
    token_set_free(set);
    wipe_free(access);
    wipe_free(refresh);
    wipe_free(old_refresh);
}

static int oauth_start_refresh(proxy *p, oauth_state *st, const char *refresh_token)
{
    char *rt = curl_easy_escape(NULL, refresh_token, 0);
    char *id = curl_easy_escape(NULL, st->rt->oauth_client_id, 0);
    CURL *e = NULL;
    int r = -ENOMEM;

    if (!rt || !id ||
        asprintf(&st->form, "grant_type=refresh_token&refresh_token=%s&client_id=%s", rt, id) < 0) {
        st->form = NULL;
        goto out;
    }
    e = curl_easy_init();
    if (!e)
        goto out;
    st->headers = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(e, CURLOPT_URL, st->rt->oauth_token_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, st->form);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(st->form));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, st->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, oauth_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    if (p->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
    st->easy = e;
    r = curl_loop_add(p->curl, e, oauth_done, st);
    if (r < 0) {
        st->easy = NULL;
        curl_easy_cleanup(e);
        curl_slist_free_all(st->headers);
        st->headers = NULL;
    }
out:
    if (rt) {
        sodium_memzero(rt, strlen(rt));
        curl_free(rt);
    }
    curl_free(id);
    if (r < 0) {
        wipe_free(st->form);
        st->form = NULL;
    }
    return r;
}

static int oauth_wait(req *q, oauth_state *st)
{
    req **w = reallocarray(st->waiters, st->n_waiters + 1, sizeof(*w));

    if (!w)
        return -ENOMEM;
    st->waiters = w;
    w[st->n_waiters++] = q;
    q->oauth_waiting = true;
    return 0;
}

/* Before the transfer: the access token, or a refresh to wait for. force: after a 401. */
static int oauth_get(req *q, bool force)
{
    proxy *p = q->ls->p;
    oauth_state *st = oauth_for(p, q->rt);
    char *access = NULL, *refresh = NULL;
    int64_t expires_at = 0;
    int r = OAUTH_FAIL;

    if (!st) {
        fail_later(q, 502, "upstream-error", "out of memory");
        return OAUTH_FAIL;
    }
    if (st->easy) /* a refresh is in flight: its answer is ours too */
        return oauth_wait(q, st) < 0 ? OAUTH_FAIL : OAUTH_WAIT;
    if (oauth_load(q, &access, &refresh, &expires_at) < 0)
        return OAUTH_FAIL;
    if (!force && access &&
        (expires_at == 0 || (int64_t)time(NULL) + OAUTH_MARGIN_S < expires_at)) {
        r = set_cred_line(q, access, strlen(access)) < 0 ? OAUTH_FAIL : OAUTH_READY;
        if (r == OAUTH_FAIL)
            fail_later(q, 502, "upstream-error", "out of memory");
    } else if (!refresh) {
        fail_later(q, 502, "oauth-refresh-failed",
                   "OAuth access token expired and the credential has no refresh_token");
    } else if (oauth_wait(q, st) < 0 || oauth_start_refresh(p, st, refresh) < 0) {
        if (q->oauth_waiting) {
            st->n_waiters--;
            q->oauth_waiting = false;
        }
        fail_later(q, 502, "oauth-refresh-failed", "cannot start the OAuth token refresh");
    } else
        r = OAUTH_WAIT;
    wipe_free(access);
    wipe_free(refresh);
    return r;
}

static int oauth_prepare(req *q)
{
    return oauth_get(q, false);
}

static void oauth_forget(req *q)
{
    oauth_state *st;

    if (!q->oauth_waiting)
        return;
    for (st = q->ls->p->oauth; st; st = st->next)
        for (size_t i = 0; i < st->n_waiters; i++)
            if (st->waiters[i] == q) {
                st->waiters[i] = st->waiters[--st->n_waiters];
                q->oauth_waiting = false;
                return;
            }
}

/* ---- WebSocket passthrough (ws.h) ---- */

/* value is exactly token (one list element, any case, optional whitespace around it) */
static bool token_is(const char *value, const char *token)
{
    size_t n = strlen(token);

    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, token, n) != 0)
        return false;
    for (value += n; *value == ' ' || *value == '\t'; value++)
        ;
    return *value == 0;
}

static bool header_has_token(struct MHD_Connection *c, const char *name, const char *token)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    _cleanup_free_ char *copy = v ? strdup(v) : NULL;
    char *save = NULL;

    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        if (token_is(t, token))
            return true;
    return false;
}

static void ws_unlink(req *q)
{
    if (!q->ws_pprev)
        return;
    *q->ws_pprev = q->ws_next;
    if (q->ws_next)
        q->ws_next->ws_pprev = q->ws_pprev;
    q->ws_next = NULL;
    q->ws_pprev = NULL;
}

static void ws_fail(req *q, int status, const char *outcome, char *message)
{
    free(q->ws_message);
    q->ws_message = message; /* NULL on out of memory: a fixed text then */
    fail_later(q, status, outcome, message ? message : "the WebSocket upgrade failed");
}

static void on_ws_answer(void *userdata, int status, char *const *headers, const char *error)
{
    req *q = userdata;
    bool websocket = false;
    char *m = NULL;

    q->up_status = status;
    if (!error && status == 401 && q->rt->oauth_token_url && !q->oauth_retried) {
        /* As for plain requests (ws_begin frees this connection, which is closed already,
         * before it opens the next). */
        oauth_retry(q);
        return;
    }
    if (error) {
        log_info("vault: WebSocket upstream for route '%s': %s", q->rt->name, error);
        ws_fail(q, 502, "upstream-error", strdup(error));
    } else if (status != 101) {
        ws_fail(q, 502, "upgrade-refused",
                asprintf(&m, "the upstream answered %d to the WebSocket upgrade", status) < 0 ? NULL
                                                                                              : m);
    } else {
        clear_response(q);
        for (char *const *h = headers; h && *h; h++) {
            const char *colon = strchr(*h, ':');
            size_t n = colon ? (size_t)(colon - *h) : 0;

            if (!colon)
                continue;
            if (n == 7 && strncasecmp(*h, "upgrade", 7) == 0)
                websocket = token_is(colon + 1, "websocket");
            if (is_hop_by_hop(*h, n) || (n == 14 && strncasecmp(*h, "content-length", n) == 0) ||
                (n == 4 && strncasecmp(*h, "date", 4) == 0))
                continue;
            if (strv_extend(&q->resp_headers, *h) < 0) {
                ws_fail(q, 502, "upstream-error", NULL);
                wake_any(q);
                return;
            }
            const char *secret;
            size_t sl;
            if ((secret = scrub_secret(q, &sl))) {
                char *kept = q->resp_headers[strv_length(q->resp_headers) - 1];
                (void)scrub_span(kept, strlen(kept), secret, sl);
            }
        }
        if (websocket)
            q->ws_answered = true;
        else
            ws_fail(q, 502, "upgrade-refused",
                    strdup("the upstream switched to a protocol other than WebSocket"));
    }
    wake_any(q);
}

static void on_ws_closed(void *userdata, const ws_end *end)
{
    req *q = userdata;

    ws_unlink(q);
    q->bytes_in = end->bytes_up;
    q->bytes_out = end->bytes_down;
    q->outcome = end->outcome;
    /* MHD completes the request (on_completed: the audit) on its next run after the socket is
     * given back, which follows this call */
    httpd_kick(q->ls->h);
}

static void on_upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    req *q = cls;
    listener *ls = q->ls;

    /* In the listener's list first: a tunnel that ends at once unlinks itself. */
    q->ws_next = ls->tunnels;
    if (ls->tunnels)
        ls->tunnels->ws_pprev = &q->ws_next;
    ls->tunnels = q;
    q->ws_pprev = &ls->tunnels;
    if (ws_conn_attach(q->wsc, sock, urh, extra_in, extra_in_size, q->rt->ws_idle_ms, on_ws_closed,
                       q) < 0) {
        ws_unlink(q);
        q->outcome = "tunnel-error";
    }
    httpd_kick(ls->h);
}

static enum MHD_Result queue_ws_response(req *q)
{
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, q);
    enum MHD_Result r;

    if (!resp)
        return MHD_NO;
    STRV_FOREACH(h, q->resp_headers)
    {
        char *colon = strchr(*h, ':');
        const char *v;

        if (!colon)
            continue;
        *colon = 0;
        for (v = colon + 1; *v == ' '; v++)
            ;
        MHD_add_response_header(resp, *h, v);
        *colon = ':';
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    r = MHD_queue_response(q->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    q->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    q->outcome = "ok";
    q->responded = true;
    return r;
}

/* The handshake goes out on its own connection: the client's end-to-end headers (its
 * Sec-WebSocket-* among them), minus tokens and hop-by-hop ones, plus the credential. */
static int ws_begin(req *q)
{
    proxy *p = q->ls->p;
    const char *extra[] = {"Connection: Upgrade", "Upgrade: websocket",
                           q->drop_credential ? NULL : q->cred_line};
    struct curl_slist *h;

    q->wsc = ws_conn_free(q->wsc); /* a handshake answered 401, retried after a refresh */
    q->req_headers = NULL;
    if (MHD_get_connection_values_n(q->conn, MHD_HEADER_KIND, header_iter, q) < 0) {
        secret_slist_free(q->req_headers);
        q->req_headers = NULL;
        return -ENOMEM;
    }
    h = TAKE_PTR(q->req_headers);
    for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
        struct curl_slist *t = extra[i] ? curl_slist_append(h, extra[i]) : h;
        if (!t) {
            secret_slist_free(h);
            return -ENOMEM;
        }
        h = t;
    }
    const char *secret;
    size_t sl;
    int r = ws_conn_start(p->loop, p->curl, q->origin_url, h, p->ca_file, on_ws_answer, q, &q->wsc);
    if (r >= 0 && (secret = scrub_secret(q, &sl)))
        r = ws_conn_scrub(q->wsc, secret, sl);
    return r;
}

static enum MHD_Result begin(req *q, const char *url, const char *version)
{
    proxy *p = q->ls->p;
    const char *seg, *slash, *tok, *cl, *te;
    const route_upstream *up;
    token_verdict v = TOKEN_MALFORMED;
    terok_error err = TEROK_ERROR_INIT;
    size_t toklen = 0;
    int status, r;

    if (streq(url, "/-/health")) {
        q->outcome = "health";
        if (!streq(q->method, "GET") && !streq(q->method, "HEAD"))
            return respond_json(q, 405, "bad-method", "method not allowed");
        struct MHD_Response *resp = MHD_create_response_from_buffer(
            16, (void *)"{\"status\":\"ok\"}", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        enum MHD_Result res = MHD_queue_response(q->conn, 200, resp);
        MHD_destroy_response(resp);
        q->status = 200;
        q->responded = true;
        return res;
    }
    if (url[0] != '/' || !path_ok(url))
        return respond_json(q, 400, "bad-path", "malformed request path");
    /* RFC 9110 §9.1: the method is a token; libmicrohttpd passes any bytes on */
    for (const char *m = q->method; *m; m++)
        if (!isalnum((unsigned char)*m) && !strchr("!#$%&'*+-.^_`|~", *m))
            return respond_json(q, 400, "bad-method", "malformed request method");
    bool bad_field = false;
    MHD_get_connection_values_n(q->conn, MHD_HEADER_KIND, field_iter, &bad_field);
    if (bad_field)
        return respond_json(q, 400, "bad-header",
                            "malformed header field (control character, NUL or whitespace "
                            "in a name)");
    /* RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400 */
    if (streq(version, MHD_HTTP_VERSION_1_1) &&
        !MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))
        return respond_json(q, 400, "bad-host", "HTTP/1.1 request without Host");
    /* One framing header at most: two are how requests get smuggled past proxies. */
    unsigned framing = 0;
    MHD_get_connection_values_n(q->conn, MHD_HEADER_KIND, count_iter, &framing);
    if (framing > 1)
        return respond_json(q, 400, "bad-framing",
                            "conflicting Content-Length / Transfer-Encoding headers");
    seg = url + 1;
    slash = strchr(seg, '/');
    q->rt = routes_find(p->routes, seg, slash ? (size_t)(slash - seg) : strlen(seg));
    q->path = strdup(slash ? slash : "/");
    if (!q->path)
        return MHD_NO;
    if (!q->rt)
        return respond_json(q, 404, "no-route", "no such route");

    tok = find_token(q, &toklen);
    if (!tok)
        return respond_json(q, 401, "missing-token", "missing phantom token");
    r = p->hooks->check_token(p->hooks->userdata, q->ls->container, q->rt->name, tok, toklen, &v,
                              &err);
    if (r < 0) {
        log_error("vault: checking a token for '%s': %s", q->ls->container,
                  terok_error_message(&err));
        terok_error_clear(&err);
        return respond_json(q, 502, "token-store-error", "token store unavailable");
    }
    const char *outcome = verdict_message(v, &status);
    if (v != TOKEN_VALID)
        return respond_json(q, status, outcome,
                            status == 403        ? "token not valid for this container or route"
                            : v == TOKEN_EXPIRED ? "phantom token expired"
                                                 : "invalid phantom token");
    if (!route_allows(q->rt, q->method, q->path))
        return respond_json(q, 403, "not-allowed", "request not allowed by the route");
    /* Protocol upgrades: WebSocket only, passed through (docs/architecture.md, "WebSocket"). */
    const char *upgrade = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Upgrade");
    if (upgrade) {
        if (!token_is(upgrade, "websocket"))
            return respond_json(q, 501, "upgrade-unsupported",
                                "only WebSocket upgrades are proxied by the vault broker");
        if (!streq(q->method, "GET") || !streq(version, MHD_HTTP_VERSION_1_1))
            return respond_json(q, 400, "bad-upgrade", "a WebSocket upgrade is an HTTP/1.1 GET");
        if (!header_has_token(q->conn, "Connection", "upgrade"))
            return respond_json(q, 400, "bad-upgrade",
                                "a WebSocket upgrade needs 'Connection: Upgrade'");
        if (!q->rt->websocket)
            return respond_json(q, 403, "not-allowed",
                                "WebSocket upgrades are not allowed on this route");
        q->ws = true;
    }

    te = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    cl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Length");
    q->content_length = -1;
    if (cl) {
        char *end = NULL;
        errno = 0;
        q->content_length = strtoll(cl, &end, 10);
        if (errno || !end || *end || q->content_length < 0)
            return respond_json(q, 400, "bad-length", "malformed Content-Length");
        if (q->content_length > q->rt->max_body)
            return respond_json(q, 413, "too-large", "request body too large");
    }
    q->has_body = (q->content_length > 0) || (te && strcasestr(te, "chunked"));
    if (q->has_body && q->content_length == 0)
        q->content_length = -1;
    if (q->ws && (q->has_body || te))
        return respond_json(q, 400, "bad-upgrade", "a WebSocket upgrade has no request body");

    buf qs = {0};
    if (MHD_get_connection_values_n(q->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &qs) < 0) {
        buf_done(&qs);
        return MHD_NO;
    }
    /* MHD turned '+' into ' ' in arguments; a raw query has no spaces, so put them back. */
    for (size_t i = 0; i < qs.len; i++)
        if (qs.data[i] == ' ')
            qs.data[i] = '+';
    up = route_upstream_for(q->rt, q->path);
    if (asprintf(&q->origin_url, "%s%s%.*s", up->url, q->path, (int)qs.len,
                 qs.data ? qs.data : "") < 0) {
        buf_done(&qs);
        return MHD_NO;
    }
    buf_done(&qs);
    if (q->rt->oauth_token_url) {
        switch (oauth_prepare(q)) {
        case OAUTH_READY:
            break;
        case OAUTH_WAIT:
            /* A request with a body is not suspended here: MHD calls the handler again after
             * a resume in this state as if the headers had just arrived (upload_size 0, like
             * the final call), so its body would be taken as empty. It is buffered (up to
             * BUF_MAX, then suspended as usual) until the refresh starts the transfer. */
            if (!q->has_body)
                wait_for(q, WAIT_OAUTH);
            return MHD_YES;
        default:
            return respond_json(q, q->fail_status, q->fail_outcome, q->fail_message);
        }
    } else {
        const terok_secret *cred = NULL;
        const void *secret;
        size_t slen;

        r = p->hooks->get_credential(p->hooks->userdata, q->rt->credential, &cred, &err);
        if (r < 0) {
            _cleanup_free_ char *msg = NULL;

            log_warning("vault: credential '%s' for route '%s': %s", q->rt->credential, q->rt->name,
                        terok_error_message(&err));
            terok_error_clear(&err);
            /* names only (configuration, not secrets): the operator learns what to add */
            if (asprintf(&msg,
                         r == -ENOENT ? "credential '%s' of route '%s' is not in the vault"
                                      : "credential '%s' of route '%s' is unavailable (vault "
                                        "error; see the broker's log)",
                         q->rt->credential, q->rt->name) < 0)
                return MHD_NO;
            return respond_json(q, 502, r == -ENOENT ? "credential-missing" : "credential-error",
                                msg);
        }
        terok_secret_peek(cred, &secret, &slen);
        if (set_cred_line(q, secret, slen) < 0)
            return MHD_NO;
    }
    if ((q->ws ? ws_begin(q) : start_transfer(q, q->origin_url)) < 0)
        return respond_json(q, 502, "upstream-error", "cannot start the upstream request");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    listener *ls = cls;
    req *q = *con_cls;

    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q)
            return MHD_NO;
        q->ls = ls;
        q->conn = conn;
        q->t0 = now_us();
        q->resp_length = -1;
        q->method = strdup(method);
        *con_cls = q;
        if (!q->method)
            return MHD_NO;
        return begin(q, url, version);
    }
    if (q->fail_status && !q->responded) {
        *upload_size = 0;
        return respond_json(q, q->fail_status, q->fail_outcome, q->fail_message);
    }
    if (*upload_size > 0) {
        if (q->responded || q->done) { /* answered early: drop the rest of the body */
            *upload_size = 0;
            return MHD_YES;
        }
        size_t n = MIN(*upload_size, buf_room(&q->up));
        if (q->bytes_in + n > (uint64_t)q->rt->max_body) {
            end_transfer(q);
            return respond_json(q, 413, "too-large", "request body too large");
        }
        if (n > 0 && buf_append(&q->up, upload, n) < 0)
            return MHD_NO;
        q->bytes_in += n;
        *upload_size -= n;
        if (q->read_paused && q->easy && n > 0) {
            q->read_paused = false;
            curl_easy_pause(q->easy, CURLPAUSE_CONT);
        }
        if (*upload_size > 0)
            wait_for(q, WAIT_UPLOAD_FULL);
        return MHD_YES;
    }
    if (q->responded)
        return MHD_YES;
    if (q->ws) {
        q->up_done = true;
        if (q->ws_answered)
            return queue_ws_response(q);
        wait_for(q, WAIT_HEADERS);
        return MHD_YES;
    }
    if (!q->up_done) {
        q->up_done = true;
        if (q->read_paused && q->easy) {
            q->read_paused = false;
            curl_easy_pause(q->easy, CURLPAUSE_CONT);
        }
    }
    if (q->headers_done)
        return queue_upstream_response(q);
    if (q->done) {
        log_info("vault: upstream for route '%s' failed: %s", q->rt->name,
                 q->curl_error[0] ? q->curl_error : curl_easy_strerror(q->result));
        return respond_json(q, 502, "upstream-error", "upstream request failed");
    }
    wait_for(q, WAIT_HEADERS);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    listener *ls = cls;
    req *q = *con_cls;

    if (!q)
        return;
    if (ls->p->hooks->audit) {
        broker_audit a = {
            .container = ls->container,
            .route = q->rt ? q->rt->name : NULL,
            .method = q->method,
            .path = q->path,
            .outcome = why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? (q->outcome ? q->outcome : "ok")
                                                                  : "client-aborted",
            .status = q->status,
            .bytes_in = q->bytes_in,
            .bytes_out = q->bytes_out,
            .duration_us = now_us() - q->t0,
        };
        ls->p->hooks->audit(ls->p->hooks->userdata, &a);
    }
    oauth_forget(q);
    end_transfer(q);
    hold_cancel(q);
    ws_unlink(q);
    q->wsc = ws_conn_free(q->wsc);
    free(q->ws_message);
    if (q->cred_line) {
        explicit_bzero(q->cred_line, strlen(q->cred_line));
        free(q->cred_line);
    }
    clear_response(q);
    buf_done(&q->up);
    buf_done(&q->down);
    free(q->method);
    free(q->path);
    free(q->origin_url);
    free(q);
    *con_cls = NULL;
}

/* ---- listeners ---- */

int proxy_new(evloop *l, const routes *r, const broker_hooks *hooks, const char *ca_file,
              proxy **ret, terok_error *err)
{
    proxy *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(p);
        return terok_error_set(err, -EIO, "cannot initialise libsodium or libcurl");
    }
    p->loop = l;
    p->routes = r;
    p->hooks = hooks;
    p->ca_file = ca_file ? strdup(ca_file) : NULL;
    rc = curl_loop_new(l, &p->curl);
    if (rc < 0) {
        proxy_free(p);
        return terok_error_set(err, rc, "cannot set up libcurl");
    }
    *ret = p;
    return 0;
}

static listener *listener_free(listener *ls)
{
    /* Open tunnels give their sockets back to MHD before it stops (then it completes them). */
    while (ls->tunnels) {
        req *q = ls->tunnels;
        ws_unlink(q);
        q->wsc = ws_conn_free(q->wsc);
        q->outcome = "tunnel-closed"; /* by us: the container's socket or the daemon went */
    }
    httpd_free(ls->h);
    free(ls->container);
    free(ls);
    return NULL;
}

proxy *proxy_free(proxy *p)
{
    if (!p)
        return NULL;
    while (p->listeners) {
        listener *n = p->listeners->next;
        listener_free(p->listeners);
        p->listeners = n;
    }
    while (p->oauth) {
        oauth_state *n = p->oauth->next;
        oauth_transfer_free(p, p->oauth, true);
        free(p->oauth->waiters);
        free(p->oauth);
        p->oauth = n;
    }
    while (p->n_spare)
        curl_easy_cleanup(p->spare[--p->n_spare]);
    curl_loop_free(p->curl);
    free(p->ca_file);
    free(p);
    return NULL;
}

static size_t unescape_nothing(void *cls, struct MHD_Connection *c, char *s)
{
    /* Keep the path and query exactly as the client sent them: we forward, not interpret. */
    return strlen(s);
}

static int add_listener(proxy *p, const char *container, const char *path, const char *ip,
                        uint16_t port, int fd, bool is_unix, uint16_t *ret_port, terok_error *err)
{
    listener *ls = calloc(1, sizeof(*ls));
    httpd_config c = {
        .handler = on_request,
        .completed = on_completed,
        .connection_limit = 256,
        /* MHD reads a body in pieces of about half its pool; 64 or 256 KiB pools halve or
         * quarter the upload's recv()s, but MHD 0.9.75 zeroes the whole pool after every
         * request: 64 idle keep-alive connections then hold 8.6 / 20 MiB (bench/broker) */
        .connection_memory = 32 * 1024,
        .connection_timeout = 1200,
        .unescape = unescape_nothing,
    };
    int r;

    if (!ls || !(ls->container = strdup(container))) {
        free(ls);
        if (fd >= 0)
            close(fd);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    ls->p = p;
    c.cls = ls;
    c.completed_cls = ls;
    r = fd >= 0 ? httpd_listen_fd(p->loop, fd, &c, &ls->h, err)
        : path  ? httpd_listen_unix(p->loop, path, 0666, &c, &ls->h, err)
                : httpd_listen_tcp(p->loop, ip, port, &c, &ls->h, err);
    if (r < 0) {
        free(ls->container);
        free(ls);
        return r;
    }
    if (ret_port)
        *ret_port = httpd_port(ls->h);
    ls->is_unix = is_unix;
    ls->next = p->listeners;
    p->listeners = ls;
    return 0;
}

/* one socket per container: reopening replaces the old listener (TCP ones stay) */
void proxy_close_unix(proxy *p, const char *container)
{
    for (listener **i = &p->listeners; *i;) {
        if ((*i)->is_unix && streq((*i)->container, container)) {
            listener *d = *i;
            *i = d->next;
            listener_free(d);
        } else
            i = &(*i)->next;
    }
}

int proxy_listen_unix(proxy *p, const char *container, const char *path, terok_error *err)
{
    proxy_close_unix(p, container);
    return add_listener(p, container, path, NULL, 0, -EBADF, true, NULL, err);
}

int proxy_listen_tcp(proxy *p, const char *container, const char *ipv4, uint16_t port,
                     uint16_t *ret_port, terok_error *err)
{
    return add_listener(p, container, NULL, ipv4, port, -EBADF, false, ret_port, err);
}

int proxy_listen_fd(proxy *p, const char *container, int fd, bool is_unix, terok_error *err)
{
    if (is_unix)
        proxy_close_unix(p, container);
    return add_listener(p, container, NULL, NULL, 0, fd, is_unix, NULL, err);
}

int proxy_close(proxy *p, const char *container)
{
    int n = 0;

    for (listener **i = &p->listeners; *i;) {
        if (streq((*i)->container, container)) {
            listener *d = *i;
            *i = d->next;
            listener_free(d);
            n++;
        } else
            i = &(*i)->next;
    }
    return n;
}

size_t proxy_listeners(proxy *p)
{
    size_t n = 0;

    for (listener *i = p->listeners; i; i = i->next)
        n++;
    return n;
}
