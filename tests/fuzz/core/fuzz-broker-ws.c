/* SPDX-License-Identifier: Apache-2.0 */
/* The vault broker's WebSocket passthrough where it reads what others send (broker/ws.c,
 * broker/proxy.c; their static functions, hence the includes). First byte: the mode.
 *   0: the upstream's answer head, read as handshake_io reads it (head_feed, in reads of a size
 *      the second byte picks), answered through give_answer to proxy.c's on_ws_answer. Every
 *      header line passed on is "Name: value" with a name the upstream sent at a line's start
 *      and no CR, LF or NUL; a 101 with Upgrade: websocket is answered, anything else refused
 *      with a message; hop-by-hop headers never reach the client.
 *   1: one request header "Name:value" through proxy.c's field_iter: accepted only when the
 *      name is a token and the value has no control character but HTAB.
 *   2: a request path through proxy.c's path_ok: accepted paths have no dot segment, no
 *      control character, no encoded '.', '/' or '\'.
 *   3: the handshake request build_request writes upstream: the path and query (after path_ok,
 *      as begin() checks them) on a route's upstream, then "Name:value" request headers
 *      separated by NUL (those field_iter accepts, as header_iter formats them).
 *      A built head is one request line, Host, the headers, an empty line: nothing the
 *      container sent can start a line of its own.
 *   a first byte of 0xf0 or more: the tunnel's frame tracker (broker/ws-frames.h) on the
 *      upstream's bytes, fed in pieces the second byte sizes: it names the same incomplete frame
 *      as the bytes fed at once, never more bytes than were fed, and none once lost. */
#include "../../../core/src/broker/ws.c"

#include "../../../core/src/broker/proxy.c"
#include "fuzz.h"

#define UPSTREAM "http://upstream.example:8080/base"

typedef struct answer {
    bool called;
    int status;
    const char *error;
} answer;

static route rt;

/* One connection object for every input, cleared for each: a fresh 512 KiB calloc per input
 * would cost more than the parsing. */
static ws_conn *new_conn(void)
{
    static ws_conn *w;

    if (!w && !(w = malloc(sizeof(*w))))
        abort();
    memset(w, 0, sizeof(*w));
    w->up_fd = w->client_fd = -1;
    return w;
}

/* ws_conn_free but the free(w). */
static void done_conn(ws_conn *w)
{
    teardown(w);
    strv_free(w->headers);
    free(w->field);
    free(w->value);
}

static const char *route_get(void *userdata, const char *key)
{
    if (streq(key, "upstream"))
        return UPSTREAM;
    if (streq(key, "credential"))
        return "fuzz-cred";
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_max_level(LOG_ERR);
    if (sodium_init() < 0 || route_parse("fuzz", route_get, NULL, &rt, NULL) < 0)
        abort();
    return 0;
}

/* The name of "Name: value" appears as a field name in the head the upstream sent. */
static bool name_was_sent(const char *line, const char *head, size_t n)
{
    size_t nl = (size_t)(strchr(line, ':') - line);

    for (size_t i = 0; i + nl + 2 <= n; i++)
        if (head[i] == '\n' && memcmp(head + i + 1, line, nl) == 0 && head[i + 1 + nl] == ':')
            return true;
    return false;
}

static void check_answer(void *userdata, int status, char *const *headers, const char *error)
{
    answer *a = userdata;
    req q = {.rt = &rt, .resp_length = -1};
    bool upgrade_websocket = false;

    a->called = true;
    a->status = status;
    a->error = error;
    on_ws_answer(&q, status, headers, error);
    for (char *const *h = headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        if (colon && (size_t)(colon - *h) == 7 && strncasecmp(*h, "upgrade", 7) == 0)
            upgrade_websocket = token_is(colon + 1, "websocket");
    }
    if (!error && status == 101 && upgrade_websocket) {
        if (!q.ws_answered || q.fail_status)
            abort();
        STRV_FOREACH(h, q.resp_headers)
        {
            const char *colon = strchr(*h, ':');
            if (!colon || is_hop_by_hop(*h, (size_t)(colon - *h)) ||
                strncasecmp(*h, "content-length:", 15) == 0 || strncasecmp(*h, "date:", 5) == 0)
                abort();
        }
    } else if (q.ws_answered || q.fail_status != 502 || !q.fail_message || !*q.fail_message)
        abort(); /* refused, with a reason */
    clear_response(&q);
    free(q.ws_message);
}

static void answer_head(const uint8_t *data, size_t size)
{
    ws_conn *w = new_conn();
    answer a = {0};
    size_t chunk = data[0] ? data[0] : 4096, off = 1;

    w->answer = check_answer;
    w->answer_data = &a;
    http_parser_init(&w->parser, HTTP_RESPONSE);
    w->parser.data = w;
    /* handshake_io's reading half, with the reads taken from the input */
    while (w->answer) {
        size_t got = MIN(chunk, size - off), used;
        const char *bad;

        if (got == 0) {
            give_answer(w, 0, "closed before answering");
            break;
        }
        bad = head_feed(w, (const char *)data + off, got, &used);
        if (used > got)
            abort();
        if (bad) {
            give_answer(w, 0, bad);
            break;
        }
        off += got;
        if (!w->head_done)
            continue;
        if (w->head_bytes > WS_HEAD_MAX || w->parser.http_major != 1 || w->parser.http_minor != 1)
            abort();
        STRV_FOREACH(h, w->headers)
        {
            if (!strchr(*h, ':') || strpbrk(*h, "\r\n") ||
                !name_was_sent(*h, (const char *)data + 1, off - 1)) {
                fprintf(stderr, "header line passed on: '%s'\n", *h);
                abort();
            }
        }
        give_answer(w, (int)w->parser.status_code, NULL);
    }
    if (!a.called)
        abort(); /* once, whatever came */
    done_conn(w);
}

static void header_field(const uint8_t *data, size_t size)
{
    const char *colon = memchr(data, ':', size);
    size_t kn = colon ? (size_t)(colon - (const char *)data) : size;
    char *key = fuzz_strndup(data, kn);
    char *value = colon ? fuzz_strndup((const uint8_t *)colon + 1, size - kn - 1) : NULL;
    size_t vn = colon ? size - kn - 1 : 0;
    bool bad = false;

    if (field_iter(&bad, MHD_HEADER_KIND, key, kn, value, vn) == MHD_YES) {
        if (bad || kn == 0)
            abort();
        for (size_t i = 0; i < kn; i++)
            if (!isalnum((unsigned char)key[i]) && !strchr("!#$%&'*+-.^_`|~", key[i]))
                abort();
        for (size_t i = 0; i < vn; i++)
            if (((unsigned char)value[i] < ' ' && value[i] != '\t') || value[i] == 0x7f)
                abort();
    } else if (!bad)
        abort();
    free(key);
    free(value);
}

static void request_path(const uint8_t *data, size_t size)
{
    char *p = fuzz_strndup(data, size); /* a NUL ends it, as MHD's C string */

    if (p[0] == '/' && path_ok(p)) { /* begin() checks the '/' first */
        for (const char *c = p; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '#' || *c == '\\')
                abort();
        if (strstr(p, "/./") || strstr(p, "/../") || strcasestr(p, "%2e") || strcasestr(p, "%2f") ||
            strcasestr(p, "%5c"))
            abort();
        size_t n = strlen(p);
        if ((n >= 2 && streq(p + n - 2, "/.")) || (n >= 3 && streq(p + n - 3, "/..")))
            abort();
    }
    free(p);
}

/* begin()'s path_ok, then the origin URL and build_request. */
static void handshake_request(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tn = nul ? (size_t)(nul - data) : size, n_lines = 0;
    char *target = fuzz_strndup(data, tn), *q = strchr(target, '?'), *url = NULL;
    struct curl_slist *headers = NULL;
    ws_conn *w = new_conn();

    if (q)
        *q = 0;
    if (target[0] != '/' || !path_ok(target))
        goto out;
    if (q)
        *q = '?';
    if (asprintf(&url, "%s%s", route_upstream_for(&rt, target)->url, target) < 0)
        abort();
    /* header_iter's lines: "Name: value" of the fields field_iter let through */
    for (size_t off = tn + 1; off < size;) {
        const uint8_t *end = memchr(data + off, 0, size - off);
        size_t ln = end ? (size_t)(end - data - off) : size - off;
        char *field = fuzz_strndup(data + off, ln), *colon = strchr(field, ':'), *line = NULL;
        bool bad = false;

        off += ln + 1;
        if (colon)
            *colon = 0;
        if (field_iter(&bad, MHD_HEADER_KIND, field, strlen(field), colon ? colon + 1 : NULL,
                       colon ? strlen(colon + 1) : 0) == MHD_YES) {
            struct curl_slist *l;

            if (asprintf(&line, "%s: %s", field, colon ? colon + 1 : "") < 0 ||
                !(l = curl_slist_append(headers, line)))
                abort();
            headers = l;
            n_lines++;
        }
        free(line);
        free(field);
    }
    if (build_request(w, url, headers) == 0) {
        const char *r = w->request;
        size_t crlf = 0;

        if (strlen(r) != w->request_len || !strneq(r, "GET /", 5) || w->request_len < 4 ||
            !streq(r + w->request_len - 4, "\r\n\r\n"))
            abort();
        for (size_t i = 0; i < w->request_len; i++) {
            if (r[i] == '\n' && (i == 0 || r[i - 1] != '\r'))
                abort();
            if (r[i] == '\r' && r[i + 1] != '\n')
                abort();
            crlf += r[i] == '\n';
        }
        if (crlf != n_lines + 3)
            abort(); /* the request line, Host, each header, the end of the head */
        if (strchr(strchr(r, ' ') + 1, ' ') != strstr(r, " HTTP/1.1\r\n"))
            abort(); /* the request target is one word */
    }
out:
    for (struct curl_slist *h = headers; h; h = h->next)
        sodium_memzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    done_conn(w);
    free(url);
    free(target);
}

static void frame_ends(const uint8_t *data, size_t size)
{
    ws_frames whole = {0}, pieces = {0};
    size_t piece = 1 + data[0] % 64;
    uint64_t open = 0;

    data++, size--;
    for (size_t at = 0; at < size; at += piece) {
        size_t n = MIN(piece, size - at);

        open = ws_frames_feed(&pieces, data + at, n);
        if (open > at + n || (pieces.lost && open != 0))
            abort();
    }
    if (ws_frames_feed(&whole, data, size) != open || whole.lost != pieces.lost)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (data[0] >= 0xf0) {
        frame_ends(data + 1, size - 1);
        return 0;
    }
    switch (data[0] % 4) {
    case 0:
        answer_head(data + 1, size - 1);
        break;
    case 1:
        header_field(data + 1, size - 1);
        break;
    case 2:
        request_path(data + 1, size - 1);
        break;
    case 3:
        handshake_request(data + 1, size - 1);
        break;
    }
    return 0;
}
