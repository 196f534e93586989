/* SPDX-License-Identifier: Apache-2.0 */
/* test-broker.c: the phantom-token proxy against a real loopback upstream: the upstream sees
 * the real credential and never the phantom; statuses for missing, invalid, foreign and
 * revoked tokens, unknown routes, missing credentials, disallowed requests, dead upstreams;
 * streamed responses (SSE) and uploads; redirects dropping the credential across origins;
 * malformed HTTP answered with 400 while the daemon keeps serving; every request audited;
 * answers (and WebSocket bytes) that repeat the credential masked, encoded ones refused. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "broker/proxy.h"
#include "broker/scrub.h"
#include "broker/ws-frames.h"
#include "daemon/evloop.h"
#include "terok-test.h"
#include "util/macro.h"
#include "tokens.h"

#define REAL_SECRET "sk-real-4a7f9c2e81d3"

/* ---------- the upstream: MHD with its own threads ---------- */

static struct MHD_Daemon *up1, *up2, *up3;
static uint16_t up1_port, up2_port, up3_port;

typedef struct upload_state {
    size_t bytes;
    char *headers;
    char body[4096]; /* the first bytes of the request body */
} upload_state;

static atomic_int token_endpoint_calls;

static char *hex_of(const char *s)
{
    size_t n = strlen(s);
    char *h = malloc(2 * n + 1);

    cr_assert(h != NULL);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", (unsigned char)s[i]);
    h[2 * n] = 0;
    return h;
}

/* The echo repeats every request header, the credential headers hex-encoded ("x-api-key:
 * hex:736b…"): the broker masks the credential where an answer repeats it, and the tests look
 * at what the upstream itself received (saw(), saw_anywhere()). */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *k,
                                      const char *v)
{
    char **acc = cls, *n = NULL, *h = NULL;
    bool cred = strcasecmp(k, "x-api-key") == 0 || strcasecmp(k, "authorization") == 0;

    if (cred)
        h = hex_of(v ? v : "");
    if (asprintf(&n, "%s%s: %s%s\n", *acc ? *acc : "", k, cred ? "hex:" : "",
                 cred ? h
                 : v  ? v
                      : "") < 0)
        return MHD_NO;
    free(h);
    free(*acc);
    *acc = n;
    return MHD_YES;
}

/* A streamed answer as a script: each step waits, then sends its text (NULL ends it). */
typedef struct step {
    int delay_ms;
    const char *text;
} step;

typedef struct script {
    const step *steps;
    size_t next;
} script;

static ssize_t script_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    script *sc = cls;
    const step *st = &sc->steps[sc->next];

    if (!st->text)
        return MHD_CONTENT_READER_END_OF_STREAM;
    sc->next++;
    if (st->delay_ms)
        usleep((useconds_t)st->delay_ms * 1000);
    return snprintf(buf, max, "%s", st->text);
}

static struct MHD_Response *scripted(const step *steps)
{
    script *sc = calloc(1, sizeof(*sc));

    cr_assert(sc != NULL);
    sc->steps = steps;
    return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256, script_reader, sc, free);
}

/* /sse: the upstream is still "thinking" between the events */
static const step sse_steps[] = {{0, "data: first\n\n"}, {700, "data: second\n\n"}, {0, NULL}};
/* /reflect-split: the credential the upstream got (REAL_SECRET), cut in two pieces 0.4 s apart,
 * after an event that must not wait for them; the stream ends in the credential's first bytes */
static const step split_steps[] = {
    {0, "data: before\n\ndata: sk-rea"}, {400, "l-4a7f9c2e81d3\n\n"}, {0, "tail sk-re"}, {0, NULL}};
/* /hold: a first piece that is the credential's first bytes, then 2.5 s of silence */
static const step hold_steps[] = {{0, "sk-re"}, {2500, "st\n"}, {0, NULL}};

static enum MHD_Result upstream(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *size, void **con_cls)
{
    upload_state *st = *con_cls;
    struct MHD_Response *resp;
    enum MHD_Result r;
    char *body = NULL;
    int n;

    if (!st) {
        st = calloc(1, sizeof(*st));
        *con_cls = st;
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &st->headers);
        return MHD_YES;
    }
    if (*size) {
        size_t have = strnlen(st->body, sizeof st->body - 1);
        size_t k = *size < sizeof st->body - 1 - have ? *size : sizeof st->body - 1 - have;
        memcpy(st->body + have, data, k);
        st->bytes += *size;
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/oauth/token") == 0) { /* a fake OAuth token endpoint */
        bool good = strcmp(method, "POST") == 0 && strstr(st->body, "grant_type=refresh_token") &&
                    strstr(st->body, "refresh_token=rt-good") && strstr(st->body, "client_id=cid");
        atomic_fetch_add(&token_endpoint_calls, 1);
        usleep(300 * 1000); /* a slow provider: requests pile up behind one refresh */
        const char *b = good ? "{\"access_token\":\"at-fresh\",\"token_type\":\"Bearer\","
                               "\"expires_in\":3600,\"refresh_token\":\"rt-next\"}"
                             : "{\"error\":\"invalid_grant\"}";
        resp = MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_PERSISTENT);
        r = MHD_queue_response(c, good ? 200 : 400, resp);
        MHD_destroy_response(resp);
        return r;
    }
    if (strcmp(url, "/auth-check") == 0) { /* 401 unless the fresh access token comes */
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (!a || strcmp(a, "Bearer at-fresh") != 0) {
            resp = MHD_create_response_from_buffer(13, (void *)"unauthorized\n",
                                                   MHD_RESPMEM_PERSISTENT);
            r = MHD_queue_response(c, 401, resp);
            MHD_destroy_response(resp);
            return r;
        }
    }
    if (strcmp(url, "/reflect") == 0 || strcmp(url, "/reflect-gzip") == 0) {
        /* a careless upstream: it repeats the credential it got, in a header and the body */
        const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
        if (!k)
            k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        n = asprintf(&body, "{\"error\": \"key %s is not valid here\"}", k ? k : "");
        resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "X-Echo-Key", k ? k : "");
        if (strcmp(url, "/reflect-gzip") == 0)
            MHD_add_response_header(resp, "Content-Encoding", "gzip");
        r = MHD_queue_response(c, 401, resp);
        MHD_destroy_response(resp);
        return r;
    }
    if (strcmp(url, "/hold") == 0) {
        resp = scripted(hold_steps);
    } else if (strcmp(url, "/reflect-split") == 0 || strcmp(url, "/sse") == 0) {
        resp = scripted(strcmp(url, "/sse") == 0 ? sse_steps : split_steps);
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    } else if (strcmp(url, "/redirect-same") == 0 || strcmp(url, "/redirect-cross") == 0) {
        char loc[128];
        snprintf(loc, sizeof loc, "http://127.0.0.1:%u/echo",
                 strcmp(url, "/redirect-same") == 0 ? up1_port : up2_port);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Location", loc);
        r = MHD_queue_response(c, 302, resp);
        MHD_destroy_response(resp);
        return r;
    } else {
        const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
        n = asprintf(&body, "method=%s\nurl=%s\nq=%s\nbytes=%zu\nserver=%u\n%s", method, url,
                     q ? q : "", st->bytes, cls == (void *)1 ? 1u : 2u,
                     st->headers ? st->headers : "");
        resp = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "X-Upstream", "yes");
        MHD_add_response_header(resp, "Connection", "keep-alive");
    }
    r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return r;
}

static void upstream_done(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode t)
{
    upload_state *st = *con_cls;

    if (st) {
        free(st->headers);
        free(st);
    }
}

/* idle_timeout: seconds after which the upstream closes an idle keep-alive connection (0: never) */
static struct MHD_Daemon *start_upstream(void *tag, uint16_t *port, unsigned idle_timeout)
{
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, upstream,
        tag, MHD_OPTION_NOTIFY_COMPLETED, upstream_done, NULL, MHD_OPTION_SOCK_ADDR,
        &(struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout, MHD_OPTION_END);

    cr_assert(d != NULL);
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

/* ---------- a raw upstream for WebSocket upgrades ---------- */
/* It reads a request head, records it, sends the scripted answer in one write, then (ws_echo)
 * echoes every byte (those that came with the head first) until the broker closes. A raw
 * socket, so the tests can send what no HTTP library would: broken heads, oversized ones,
 * protocol bytes glued to the 101. */

static int ws_listen_fd = -1;
static uint16_t ws_port;
static pthread_t ws_thread;
static pthread_mutex_t ws_lock = PTHREAD_MUTEX_INITIALIZER;
static char ws_answer[32768];
static size_t ws_answer_len;
static bool ws_echo;
static int ws_hold_ms;  /* without echo: keep the connection this long after answering */
static bool ws_trickle; /* write the answer a byte at a time */
static char ws_seen[8192];
static atomic_int ws_closed_by_peer; /* echo sessions that ended with the broker closing */
static char ws_reject[64];           /* a head containing this is answered 401, not the script */
static atomic_int ws_rejected;       /* handshakes answered so */

static void ws_script(const char *answer, size_t len, bool echo)
{
    pthread_mutex_lock(&ws_lock);
    memcpy(ws_answer, answer, len);
    ws_answer_len = len;
    ws_echo = echo;
    ws_hold_ms = 0;
    ws_trickle = false;
    ws_seen[0] = 0;
    ws_reject[0] = 0;
    pthread_mutex_unlock(&ws_lock);
}

static void *ws_upstream(void *arg)
{
    for (;;) {
        int c = accept4(ws_listen_fd, NULL, NULL, SOCK_CLOEXEC);
        char head[8192], answer[sizeof ws_answer], *end = NULL, buf[65536];
        size_t off = 0, len;
        struct timeval tv = {10, 0};
        bool echo;
        int hold;
        bool trickle;
        ssize_t k;

        if (c < 0)
            return NULL; /* the listener was shut down */
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (!end && off < sizeof head - 1 &&
               (k = read(c, head + off, sizeof head - 1 - off)) > 0) {
            off += (size_t)k;
            head[off] = 0;
            end = strstr(head, "\r\n\r\n");
        }
        pthread_mutex_lock(&ws_lock);
        snprintf(ws_seen, sizeof ws_seen, "%.*s", end ? (int)(end + 2 - head) : (int)off, head);
        memcpy(answer, ws_answer, ws_answer_len);
        len = ws_answer_len;
        echo = ws_echo;
        hold = ws_hold_ms;
        trickle = ws_trickle;
        if (ws_reject[0] && strstr(ws_seen, ws_reject)) {
            static const char no[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
            memcpy(answer, no, sizeof no - 1);
            len = sizeof no - 1;
            echo = false;
            atomic_fetch_add(&ws_rejected, 1);
        }
        pthread_mutex_unlock(&ws_lock);
        if (len && trickle) {
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            for (size_t i = 0; i < len; i++) {
                (void)!write(c, answer + i, 1);
                usleep(200);
            }
        } else if (len)
            (void)!write(c, answer, len);
        if (echo && end) {
            size_t rest = off - (size_t)(end + 4 - head);
            if (rest)
                (void)!write(c, end + 4, rest);
            while ((k = read(c, buf, sizeof buf)) > 0)
                if (write(c, buf, (size_t)k) != k)
                    break;
            if (k == 0)
                atomic_fetch_add(&ws_closed_by_peer, 1);
        } else if (hold)
            usleep((useconds_t)hold * 1000); /* deaf to the broker's half-close meanwhile */
        close(c);
    }
}

static void ws_upstream_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;

    ws_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(ws_listen_fd >= 0);
    cr_assert(bind(ws_listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(listen(ws_listen_fd, 16) == 0);
    cr_assert(getsockname(ws_listen_fd, (struct sockaddr *)&sa, &sl) == 0);
    ws_port = ntohs(sa.sin_port);
    ws_script("", 0, false);
    atomic_store(&ws_closed_by_peer, 0);
    pthread_create(&ws_thread, NULL, ws_upstream, NULL);
}

static void ws_upstream_stop(void)
{
    shutdown(ws_listen_fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(ws_thread, NULL);
    close(ws_listen_fd);
    ws_listen_fd = -1;
}

/* ---------- the broker under test, in its own thread ---------- */

static sqlite3 *db;
static uint8_t key[TOKEN_KEY_BYTES];
static routes rts;
static proxy *px;
static evloop *loop;
static pthread_t loop_thread;
static atomic_bool stop_loop;
static char audit_log[8192];
static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;

static int hook_check(void *ud, const char *container, const char *route_name, const char *token,
                      size_t len, token_verdict *v, terok_error *err)
{
    return tokens_check(db, key, TOKEN_KIND_PHANTOM, token, len, container, route_name, time(NULL),
                        v, NULL, err);
}

/* The OAuth route's token set, as the vault would hold it; written back by hook_put. */
static pthread_mutex_t oauth_lock = PTHREAD_MUTEX_INITIALIZER;
static terok_secret *oauth_set, *oauth_set_old;
static int oauth_puts;

static terok_secret *cred_secret;
static int hook_cred(void *ud, const char *name, const terok_secret **ret, terok_error *err)
{
    if (strcmp(name, "oauth-cred") == 0) {
        pthread_mutex_lock(&oauth_lock);
        *ret = oauth_set;
        pthread_mutex_unlock(&oauth_lock);
        return *ret ? 0 : terok_error_set(err, -ENOENT, "no credential '%s'", name);
    }
    if (strcmp(name, "cred") != 0)
        return terok_error_set(err, -ENOENT, "no credential '%s'", name);
    if (!cred_secret && terok_secret_new(REAL_SECRET, strlen(REAL_SECRET), &cred_secret) < 0)
        return -ENOMEM;
    *ret = cred_secret;
    return 0;
}

static void oauth_store(const char *json)
{
    pthread_mutex_lock(&oauth_lock);
    terok_secret_free(oauth_set_old);
    oauth_set_old = oauth_set; /* borrowed by the broker until its next hook call */
    cr_assert(terok_secret_new(json, strlen(json), &oauth_set) == 0);
    pthread_mutex_unlock(&oauth_lock);
}

static char *oauth_stored(void)
{
    const void *p;
    size_t n;
    char *s;

    pthread_mutex_lock(&oauth_lock);
    terok_secret_peek(oauth_set, &p, &n);
    s = strndup(p, n);
    pthread_mutex_unlock(&oauth_lock);
    return s;
}

static int hook_put(void *ud, const char *name, const terok_secret *value, terok_error *err)
{
    const void *p;
    size_t n;

    cr_assert(strcmp(name, "oauth-cred") == 0);
    terok_secret_peek(value, &p, &n);
    char *json = strndup(p, n);
    oauth_store(json);
    free(json);
    oauth_puts++;
    return 0;
}

static void hook_audit(void *ud, const broker_audit *a)
{
    pthread_mutex_lock(&audit_lock);
    size_t n = strlen(audit_log);
    snprintf(audit_log + n, sizeof audit_log - n, "%s %s %s %s %d %s\n", a->container,
             a->route ? a->route : "-", a->method, a->path ? a->path : "-", a->status, a->outcome);
    pthread_mutex_unlock(&audit_lock);
}

static const broker_hooks hooks = {hook_check, hook_cred, hook_audit, NULL, hook_put};

typedef struct {
    const char *k, *v;
} kv;
static const char *kv_get(void *ud, const char *name)
{
    for (kv *i = ud; i->k; i++)
        if (strcmp(i->k, name) == 0)
            return i->v;
    return NULL;
}

static void on_wake(evloop *l, int *t, void *ud)
{
    if (atomic_load(&stop_loop))
        evloop_exit(l, 0);
}

static void *run_loop(void *arg)
{
    evloop_run(loop);
    return NULL;
}

static char *sock_a, *sock_b;

static void setup(void)
{
    terok_error err = TEROK_ERROR_INIT;
    char url1[64], url2[64], pu[160], tu[96];

    test_tmpdir_setup();
    up1 = start_upstream((void *)1, &up1_port, 0);
    up2 = start_upstream((void *)2, &up2_port, 0);
    up3 = start_upstream((void *)3, &up3_port, 1);
    snprintf(url1, sizeof url1, "http://127.0.0.1:%u", up1_port);
    snprintf(url2, sizeof url2, "http://127.0.0.1:%u/", up2_port);
    snprintf(pu, sizeof pu, "/files=http://127.0.0.1:%u", up2_port);
    kv r1[] = {{"upstream", url1},
               {"credential", "cred"},
               {"auth-header", "x-api-key"},
               {"path-upstreams", pu},
               {NULL, NULL}};
    kv r2[] = {{"upstream", url1},
               {"credential", "cred"},
               {"allow", "GET:/v1/models POST:/v1/*"},
               {NULL, NULL}};
    kv r3[] = {{"upstream", url1}, {"credential", "missing"}, {NULL, NULL}};
    kv r4[] = {{"upstream", "http://127.0.0.1:1"}, {"credential", "cred"}, {NULL, NULL}};
    snprintf(tu, sizeof tu, "http://127.0.0.1:%u/oauth/token", up1_port);
    kv r5[] = {{"upstream", url1},
               {"credential", "oauth-cred"},
               {"auth-header", "Authorization"},
               {"auth-prefix", "Bearer "},
               {"token-headers", "x-api-key"},
               {"oauth-token-url", tu},
               {"oauth-client-id", "cid"},
               {NULL, NULL}};
    char url3[64];
    snprintf(url3, sizeof url3, "http://127.0.0.1:%u", up3_port);
    kv r6[] = {{"upstream", url3}, {"credential", "cred"}, {NULL, NULL}};
    char url4[64];
    ws_upstream_start();
    snprintf(url4, sizeof url4, "http://127.0.0.1:%u", ws_port);
    kv r7[] = {{"upstream", url4},
               {"credential", "cred"},
               {"auth-header", "x-api-key"},
               {"allow", "GET:/chat*"},
               {NULL, NULL}};
    kv r8[] = {{"upstream", url4}, {"credential", "cred"}, {"websocket-idle", "1s"}, {NULL, NULL}};
    kv r9[] = {{"upstream", url4}, {"credential", "cred"}, {"websocket", "no"}, {NULL, NULL}};
    kv r10[ELEMENTSOF(r5)]; /* the OAuth route on the WebSocket upstream */
    memcpy(r10, r5, sizeof r10);
    r10[0].v = url4;
    kv r11[] = {{"upstream", url1},
                {"credential", "cred"},
                {"auth-header", "x-api-key"},
                {"scrub-responses", "no"},
                {NULL, NULL}};
    rts.v = calloc(11, sizeof(route));
    terok_assert_ok(route_parse("api", kv_get, r1, &rts.v[0], &err), &err);
    terok_assert_ok(route_parse("strict", kv_get, r2, &rts.v[1], &err), &err);
    terok_assert_ok(route_parse("nocred", kv_get, r3, &rts.v[2], &err), &err);
    terok_assert_ok(route_parse("dead", kv_get, r4, &rts.v[3], &err), &err);
    terok_assert_ok(route_parse("oauth", kv_get, r5, &rts.v[4], &err), &err);
    terok_assert_ok(route_parse("idle", kv_get, r6, &rts.v[5], &err), &err);
    terok_assert_ok(route_parse("ws", kv_get, r7, &rts.v[6], &err), &err);
    terok_assert_ok(route_parse("ws-short", kv_get, r8, &rts.v[7], &err), &err);
    terok_assert_ok(route_parse("nows", kv_get, r9, &rts.v[8], &err), &err);
    terok_assert_ok(route_parse("ws-oauth", kv_get, r10, &rts.v[9], &err), &err);
    terok_assert_ok(route_parse("noscrub", kv_get, r11, &rts.v[10], &err), &err);
    rts.n = 11;
    atomic_store(&token_endpoint_calls, 0);
    oauth_puts = 0;

    cr_assert(sqlite3_open(test_path("state.db"), &db) == SQLITE_OK);
    cr_assert(sqlite3_exec(db, tokens_schema_sql, NULL, NULL, NULL) == SQLITE_OK);
    terok_assert_ok(tokens_key_load(test_tmp, key, &err), &err);

    cr_assert(evloop_new(&loop) == 0);
    evloop_on_wake(loop, on_wake, NULL);
    terok_assert_ok(proxy_new(loop, &rts, &hooks, NULL, &px, &err), &err);
    sock_a = strdup(test_path("a.sock"));
    sock_b = strdup(test_path("b.sock"));
    terok_assert_ok(proxy_listen_unix(px, "ctr-a", sock_a, &err), &err);
    terok_assert_ok(proxy_listen_unix(px, "ctr-b", sock_b, &err), &err);
    atomic_store(&stop_loop, false);
    pthread_create(&loop_thread, NULL, run_loop, NULL);
}

static void teardown(void)
{
    atomic_store(&stop_loop, true);
    evloop_wake(loop);
    pthread_join(loop_thread, NULL);
    proxy_free(px);
    evloop_free(loop);
    routes_done(&rts);
    sqlite3_close(db);
    terok_secret_free(oauth_set);
    terok_secret_free(oauth_set_old);
    oauth_set = oauth_set_old = NULL;
    MHD_stop_daemon(up1);
    MHD_stop_daemon(up2);
    MHD_stop_daemon(up3);
    ws_upstream_stop();
    free(sock_a);
    free(sock_b);
    test_tmpdir_teardown();
}

TestSuite(broker, .init = setup, .fini = teardown, .timeout = 60);

/* Token minting happens on the test thread; sqlite serialises (default threading mode). */
static char *mint(const char *container, const char *route_name, int64_t expires)
{
    terok_error err = TEROK_ERROR_INIT;
    token_binding b = {TOKEN_KIND_PHANTOM, container, route_name, 0, expires};
    terok_secret *t = NULL;
    const void *p;
    size_t n;
    char *s;

    terok_assert_ok(tokens_mint(db, key, &b, &t, NULL, &err), &err);
    terok_secret_peek(t, &p, &n);
    s = strndup(p, n);
    terok_secret_free(t);
    return s;
}

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char *headers;
    double first_byte_s, total_s;
    double t0, first_body_s; /* CLOCK_MONOTONIC at the start; the first body byte, after it */
} resp;

/* The upstream's echo holds "<prefix>hex:<hex of value>\n": it received that header so. */
static bool saw(const char *body, const char *prefix, const char *value)
{
    char *h = hex_of(value), *line = NULL;
    bool r;

    cr_assert(asprintf(&line, "%shex:%s\n", prefix, h) > 0);
    r = body && strstr(body, line) != NULL;
    free(line);
    free(h);
    return r;
}

/* value, raw or as the echo's hex, anywhere in the body */
static bool saw_anywhere(const char *body, const char *value)
{
    char *h = hex_of(value);
    bool r = body && (strstr(body, value) || strstr(body, h));

    free(h);
    return r;
}

static size_t grow(char **b, size_t *len, const char *d, size_t n)
{
    *b = realloc(*b, *len + n + 1);
    memcpy(*b + *len, d, n);
    *len += n;
    (*b)[*len] = 0;
    return n;
}
static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
    resp *r = ud;

    if (r->len == 0 && s * n > 0)
        r->first_body_s = mono_s() - r->t0;
    return grow(&r->body, &r->len, d, s * n);
}
static size_t on_hdr(char *d, size_t s, size_t n, void *ud)
{
    resp *r = ud;
    size_t l = r->headers ? strlen(r->headers) : 0;
    return grow(&r->headers, &l, d, s * n);
}

static resp request(const char *sock, const char *method, const char *path, const char *hdr1,
                    const char *hdr2, const char *body, long long body_len)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    resp r = {.t0 = mono_s()};
    char url[512];

    snprintf(url, sizeof url, "http://127.0.0.1:9419%s", path);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (hdr1)
        h = curl_slist_append(h, hdr1);
    if (hdr2)
        h = curl_slist_append(h, hdr2);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send dot segments as they are */
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    cr_assert(eq(int, curl_easy_perform(c), CURLE_OK), "request %s %s failed", method, path);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME, &r.first_byte_s);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r.total_s);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body)
        r.body = strdup("");
    return r;
}

static void resp_done(resp *r)
{
    free(r->body);
    free(r->headers);
}

static char *hdr(const char *name, const char *value)
{
    static char b[32][256];
    static int i;
    char *s = b[i++ % 32];
    snprintf(s, 256, "%s: %s", name, value);
    return s;
}

Test(broker, swaps_the_phantom_for_the_real_credential)
{
    char *tok = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/v1/echo?q=a+b%20c&x", hdr("X-Api-Key", tok),
                     "Connection: keep-alive, X-Secret-Hop", NULL, 0);

    cr_assert(eq(long, r.status, 200), "body: %s", r.body);
    cr_assert(saw(r.body, "x-api-key: ", REAL_SECRET), "upstream saw: %s", r.body);
    cr_assert(saw_anywhere(r.body, tok) == false, "the phantom must not reach the upstream");
    cr_assert(strstr(r.body, "url=/v1/echo\n") != NULL, "path forwarded: %s", r.body);
    cr_assert(strstr(r.body, "q=a b c\n") != NULL, "query forwarded raw: %s", r.body);
    cr_assert(strstr(r.headers, "X-Upstream: yes") != NULL);
    cr_assert(strstr(r.headers, REAL_SECRET) == NULL);
    resp_done(&r);
    free(tok);
}

Test(broker, statuses_for_bad_tokens_routes_and_credentials)
{
    char *a = mint("ctr-a", "api", 0), *strict = mint("ctr-a", "strict", 0);
    char *nocred = mint("ctr-a", "nocred", 0), *dead = mint("ctr-a", "dead", 0);
    char *expired = mint("ctr-a", "api", 1);
    char bearer[128];
    struct {
        const char *sock, *method, *path, *h;
        long status;
        const char *outcome;
    } cases[] = {
        {sock_a, "GET", "/api/x", NULL, 401, "missing-token"},
        {sock_a, "GET", "/api/x", "X-Api-Key: terok-p-nope", 401, "invalid-token"},
        {sock_a, "GET", "/api/x", hdr("X-Api-Key", expired), 401, "expired-token"},
        {sock_b, "GET", "/api/x", hdr("X-Api-Key", a), 403, "wrong-container"},
        {sock_a, "GET", "/strict/x", hdr("X-Api-Key", a), 403, "wrong-route"},
        {sock_a, "GET", "/nope/x", hdr("X-Api-Key", a), 404, "no-route"},
        {sock_a, "DELETE", "/strict/v1/models", hdr("X-Api-Key", strict), 403, "not-allowed"},
        {sock_a, "GET", "/strict/v1/../admin", hdr("X-Api-Key", strict), 400, "bad-path"},
        {sock_a, "GET", "/strict/v1/%2e%2e/admin", hdr("X-Api-Key", strict), 400, "bad-path"},
        {sock_a, "GET", "/nocred/x", hdr("X-Api-Key", nocred), 502, "credential-missing"},
        {sock_a, "GET", "/dead/x", hdr("X-Api-Key", dead), 502, "upstream-error"},
        {sock_a, "GET", "/strict/v1/models", hdr("Private-Token", strict), 200, "ok"},
    };

    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", strict);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp r = request(cases[i].sock, cases[i].method, cases[i].path, cases[i].h, NULL, NULL, 0);
        cr_expect(eq(long, r.status, cases[i].status), "case %zu %s: got %ld %s", i, cases[i].path,
                  r.status, r.body);
        if (cases[i].status != 200) /* our echo upstream shows what it received */
            cr_expect(strstr(r.body, REAL_SECRET) == NULL, "case %zu leaks", i);
        resp_done(&r);
    }
    resp r = request(sock_a, "POST", "/strict/v1/messages", bearer, NULL, "{}", 2);
    cr_expect(eq(long, r.status, 200), "bearer form accepted: %s", r.body);
    resp_done(&r);
    usleep(100 * 1000);
    pthread_mutex_lock(&audit_lock);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect(strstr(audit_log, cases[i].outcome) != NULL, "audit lacks '%s':\n%s",
                  cases[i].outcome, audit_log);
    cr_expect(strstr(audit_log, "ctr-b api GET /x 403 wrong-container") != NULL, "%s", audit_log);
    cr_expect(strstr(audit_log, "terok-p-") == NULL, "no token in the audit");
    pthread_mutex_unlock(&audit_lock);
    free(a);
    free(strict);
    free(nocred);
    free(dead);
    free(expired);
}

Test(broker, revoked_token_stops_working)
{
    terok_error err = TEROK_ERROR_INIT;
    char *a = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/x", hdr("X-Api-Key", a), NULL, NULL, 0);

    cr_assert(eq(long, r.status, 200));
    resp_done(&r);
    cr_assert(eq(int, tokens_revoke_container(db, "ctr-a", 0, &err), 1));
    r = request(sock_a, "GET", "/api/x", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 401));
    resp_done(&r);
    free(a);
}

Test(broker, path_upstreams_pick_the_longest_prefix)
{
    char *a = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/files/1", hdr("X-Api-Key", a), NULL, NULL, 0);

    cr_assert(strstr(r.body, "server=2\n") != NULL, "%s", r.body);
    resp_done(&r);
    r = request(sock_a, "GET", "/api/filesystem", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(strstr(r.body, "server=1\n") != NULL, "prefix is per path segment: %s", r.body);
    resp_done(&r);
    free(a);
}

Test(broker, sse_first_chunk_arrives_before_the_upstream_finishes)
{
    char *a = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/sse", hdr("X-Api-Key", a), NULL, NULL, 0);

    cr_assert(eq(long, r.status, 200));
    cr_assert(strstr(r.body, "data: first\n\ndata: second\n\n") != NULL, "%s", r.body);
    cr_assert(r.total_s - r.first_byte_s > 0.5,
              "the first event must arrive ~0.7 s before the end (first %.3f, total %.3f)",
              r.first_byte_s, r.total_s);
    resp_done(&r);
    free(a);
}

Test(broker, an_answer_repeating_the_credential_reaches_the_container_masked)
{
    char *a = mint("ctr-a", "api", 0), *raw = mint("ctr-a", "noscrub", 0);
    const char *stars = "********************"; /* as long as REAL_SECRET */
    char want[128];

    /* in a header and in a body with a Content-Length: same length, so the length holds */
    resp r = request(sock_a, "GET", "/api/reflect", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 401), "body: %s", r.body);
    snprintf(want, sizeof want, "{\"error\": \"key %s is not valid here\"}", stars);
    cr_assert(eq(str, r.body, want));
    cr_assert(strstr(r.headers, "X-Echo-Key: ********************") != NULL, "%s", r.headers);
    cr_assert(strstr(r.body, REAL_SECRET) == NULL && strstr(r.headers, REAL_SECRET) == NULL);
    resp_done(&r);

    /* split across pieces of a stream: masked, while what comes before is not held back */
    r = request(sock_a, "GET", "/api/reflect-split", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200));
    snprintf(want, sizeof want, "data: before\n\ndata: %s\n\ntail sk-re", stars);
    cr_assert(eq(str, r.body, want), "the stream's end releases a tail that began the secret");
    cr_assert(r.total_s - r.first_byte_s > 0.3,
              "the first event must not wait for the next piece (first %.3f, total %.3f)",
              r.first_byte_s, r.total_s);
    resp_done(&r);

    /* a stream that pauses after the credential's first bytes: they go out after 2 s, not
     * when (if ever) the next piece comes */
    r = request(sock_a, "GET", "/api/hold", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200));
    cr_assert(eq(str, r.body, "sk-rest\n"));
    cr_assert(r.first_body_s > 1.5 && r.first_body_s < 2.4 && r.total_s > 2.4,
              "the kept bytes came at %.2f s (the next piece at 2.5 s, total %.2f s)",
              r.first_body_s, r.total_s);
    resp_done(&r);

    /* the upstream is asked for unencoded answers; one that encodes anyway is refused */
    r = request(sock_a, "GET", "/api/echo", hdr("X-Api-Key", a), "Accept-Encoding: gzip, br", NULL,
                0);
    cr_assert(strstr(r.body, "Accept-Encoding: identity\n") != NULL, "upstream saw: %s", r.body);
    cr_assert(strstr(r.body, "gzip") == NULL);
    resp_done(&r);
    r = request(sock_a, "GET", "/api/reflect-gzip", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 502), "body: %s", r.body);
    cr_assert(strstr(r.body, "answered with a Content-Encoding") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, REAL_SECRET) == NULL && strstr(r.headers, REAL_SECRET) == NULL);
    resp_done(&r);

    /* scrub-responses = no: the operator's choice, the answer as the upstream sent it */
    r = request(sock_a, "GET", "/noscrub/reflect", hdr("X-Api-Key", raw), "Accept-Encoding: gzip",
                NULL, 0);
    cr_assert(eq(long, r.status, 401));
    cr_assert(strstr(r.body, REAL_SECRET) != NULL, "%s", r.body);
    resp_done(&r);
    r = request(sock_a, "GET", "/noscrub/echo", hdr("X-Api-Key", raw), "Accept-Encoding: gzip",
                NULL, 0);
    cr_assert(strstr(r.body, "Accept-Encoding: gzip\n") != NULL, "upstream saw: %s", r.body);
    resp_done(&r);
    free(a);
    free(raw);
}

Test(broker, upload_is_streamed_through)
{
    char *a = mint("ctr-a", "api", 0);
    size_t n = 32u << 20;
    char *body = malloc(n);
    resp r;

    memset(body, 'x', n);
    r = request(sock_a, "POST", "/api/upload", hdr("X-Api-Key", a), NULL, body, (long long)n);
    cr_assert(eq(long, r.status, 200));
    cr_assert(strstr(r.body, "bytes=33554432\n") != NULL, "%s", r.body);
    resp_done(&r);
    free(body);
    free(a);
}

Test(broker, redirects_keep_the_credential_only_within_the_origin)
{
    char *a = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/redirect-same", hdr("X-Api-Key", a), NULL, NULL, 0);

    cr_assert(eq(long, r.status, 200));
    cr_assert(saw(r.body, "x-api-key: ", REAL_SECRET), "%s", r.body);
    resp_done(&r);
    r = request(sock_a, "GET", "/api/redirect-cross", hdr("X-Api-Key", a), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200));
    cr_assert(strstr(r.body, "server=2\n") != NULL, "%s", r.body);
    cr_assert(saw_anywhere(r.body, REAL_SECRET) == false, "credential leaked across origins: %s",
              r.body);
    resp_done(&r);
    free(a);
}

Test(broker, health_needs_no_token)
{
    resp r = request(sock_b, "GET", "/-/health", NULL, NULL, NULL, 0);

    cr_assert(eq(long, r.status, 200));
    cr_assert(eq(str, r.body, "{\"status\":\"ok\"}"));
    resp_done(&r);
}

static char *raw(const char *sock, const char *data, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    static char buf[4096];
    size_t off = 0;
    ssize_t k;
    struct timeval tv = {2, 0};

    strncpy(sa.sun_path, sock, sizeof sa.sun_path - 1);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)!write(fd, data, len);
    shutdown(fd, SHUT_WR);
    while (off < sizeof buf - 1 && (k = read(fd, buf + off, sizeof buf - 1 - off)) > 0)
        off += (size_t)k;
    buf[off] = 0;
    close(fd);
    return buf;
}

Test(broker, malformed_http_gets_400_and_the_daemon_keeps_serving)
{
    static const struct {
        const char *req;
        size_t len;
    } corpus[] = {
        {"GARBAGE\r\n\r\n", 11},
        {"GET / HTTP/9.9\r\n\r\n", 18},
        {"GET /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 52},
        {"POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         78},
        {"GET /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 70},
        {"POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 61},
        {"GET /api/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 44},
        {"GET /api/\x01x HTTP/1.1\r\nHost: a\r\n\r\n", 33},
        {"GET /api/x HTTP/1.1\r\nHost: a\r\nX-Api-Key: a\0b\r\n\r\n", 47},
    };

    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        char *out = raw(sock_a, corpus[i].req, corpus[i].len);
        bool refused = strncmp(out, "HTTP/1.1 4", 10) == 0 ||
                       strncmp(out, "HTTP/1.1 505", 12) == 0 || out[0] == 0;
        cr_expect(refused, "case %zu got '%.60s'", i, out);
        cr_expect(strstr(out, "HTTP/1.1 200") == NULL, "case %zu accepted", i);
    }
    resp r = request(sock_a, "GET", "/-/health", NULL, NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200), "still serving");
    resp_done(&r);
}

/* ---------- OAuth refresh ---------- */

static void set_token_set(const char *access, const char *refresh, long long expires_at)
{
    char json[256];

    snprintf(json, sizeof json,
             "{\"access_token\":\"%s\",\"refresh_token\":\"%s\",\"expires_at\":%lld}", access,
             refresh, expires_at);
    oauth_store(json);
}

Test(broker, oauth_expired_access_token_is_refreshed_and_written_back)
{
    char *tok = mint("ctr-a", "oauth", 0), *stored;

    set_token_set("at-old", "rt-good", (long long)time(NULL) - 10);
    resp r = request(sock_a, "GET", "/oauth/echo", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200), "body: %s", r.body);
    cr_assert(saw(r.body, "Authorization: ", "Bearer at-fresh"), "upstream saw: %s", r.body);
    cr_assert(saw_anywhere(r.body, "at-old") == false);
    cr_assert(saw_anywhere(r.body, "rt-") == false, "the refresh token never goes upstream");
    resp_done(&r);
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 1));
    cr_assert(eq(int, oauth_puts, 1));
    stored = oauth_stored();
    cr_assert(strstr(stored, "\"access_token\":\"at-fresh\"") != NULL, "stored: %s", stored);
    cr_assert(strstr(stored, "\"refresh_token\":\"rt-next\"") != NULL, "stored: %s", stored);
    long long exp = strtoll(strstr(stored, "\"expires_at\":") + 13, NULL, 10);
    cr_assert(exp > (long long)time(NULL) + 3000 && exp <= (long long)time(NULL) + 3600,
              "expires_at %lld", exp);
    free(stored);

    /* the fresh token is used as it is: no second refresh */
    r = request(sock_a, "GET", "/oauth/echo", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200));
    cr_assert(saw(r.body, "Authorization: ", "Bearer at-fresh"));
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 1));
    resp_done(&r);
    free(tok);
}

Test(broker, oauth_upstream_401_refreshes_once_and_retries)
{
    char *tok = mint("ctr-a", "oauth", 0);

    /* not expired by the clock, but the upstream no longer takes it */
    set_token_set("at-stale", "rt-good", (long long)time(NULL) + 3600);
    resp r = request(sock_a, "GET", "/oauth/auth-check", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200), "body: %s", r.body);
    cr_assert(saw(r.body, "Authorization: ", "Bearer at-fresh"), "upstream saw: %s", r.body);
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 1));
    resp_done(&r);

    /* a second 401 after the refresh is the upstream's answer, passed on: no loop */
    set_token_set("at-stale", "rt-bad", (long long)time(NULL) + 3600);
    r = request(sock_a, "GET", "/oauth/auth-check", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 502), "body: %s", r.body);
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 2));
    resp_done(&r);
    free(tok);
}

Test(broker, oauth_refresh_failure_is_502_with_a_reason_and_no_secret)
{
    char *tok = mint("ctr-a", "oauth", 0);

    set_token_set("at-old", "rt-bad", (long long)time(NULL) - 10);
    resp r = request(sock_a, "GET", "/oauth/echo", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 502), "body: %s", r.body);
    cr_assert(strstr(r.body, "OAuth token refresh failed: token endpoint answered 400") != NULL,
              "body: %s", r.body);
    cr_assert(strstr(r.body, "rt-bad") == NULL && strstr(r.body, "at-old") == NULL);
    cr_assert(strstr(r.headers, "rt-bad") == NULL && strstr(r.headers, "at-old") == NULL);
    cr_assert(eq(int, oauth_puts, 0), "nothing is written back after a failure");
    resp_done(&r);
    /* the audit row is written when MHD reports the request complete, just after the answer */
    bool audited = false, leaked = true;
    for (int i = 0; i < 200 && !audited; i++) {
        pthread_mutex_lock(&audit_lock);
        audited = strstr(audit_log, "ctr-a oauth GET /echo 502 oauth-refresh-failed") != NULL;
        leaked = strstr(audit_log, "rt-bad") != NULL;
        pthread_mutex_unlock(&audit_lock);
        if (!audited)
            usleep(10000);
    }
    cr_assert(audited, "no audit row for the failed refresh");
    cr_assert(leaked == false, "a refresh token in the audit");

    /* a credential that is not a token set is refused with its own reason */
    oauth_store("sk-plain-not-json");
    r = request(sock_a, "GET", "/oauth/echo", hdr("X-Api-Key", tok), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 502));
    cr_assert(strstr(r.body, "not an OAuth token set") != NULL, "body: %s", r.body);
    cr_assert(strstr(r.body, "sk-plain") == NULL);
    resp_done(&r);
    free(tok);
}

/* ---------- WebSocket passthrough ---------- */

static double cpu_seconds(void);
static double now_s(void);

#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define WS_101                                                                                     \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"            \
    "Sec-WebSocket-Accept: " WS_ACCEPT "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"

typedef struct ws_client {
    int fd;
    int status;
    char head[4096];
    char extra[4096]; /* bytes that came after the answer's head */
    size_t n_extra;
} ws_client;

static int unix_connect(const char *sock)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {10, 0};

    strncpy(sa.sun_path, sock, sizeof sa.sun_path - 1);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Send a handshake (head lines after the request line, then `early` bytes right behind it) and
 * read the answer's head. */
static ws_client ws_open(const char *sock, const char *target, const char *lines, const char *early)
{
    ws_client w = {.fd = unix_connect(sock)};
    char req[4096], buf[8192], *end = NULL;
    size_t off = 0;
    ssize_t k;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n%s", target,
                     lines, early ? early : "");

    cr_assert(write(w.fd, req, (size_t)n) == n);
    while (!end && off < sizeof buf - 1 && (k = read(w.fd, buf + off, sizeof buf - 1 - off)) > 0) {
        off += (size_t)k;
        buf[off] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    cr_assert(end != NULL, "no answer head: '%.*s'", (int)off, buf);
    snprintf(w.head, sizeof w.head, "%.*s", (int)(end - buf), buf);
    w.n_extra = off - (size_t)(end + 4 - buf);
    memcpy(w.extra, end + 4, w.n_extra);
    cr_assert(sscanf(w.head, "HTTP/1.1 %d", &w.status) == 1, "head: %s", w.head);
    return w;
}

/* Read until `want` bytes (extra first) are in out. */
static void ws_read(ws_client *w, char *out, size_t want)
{
    size_t off = MIN(w->n_extra, want);
    ssize_t k;

    memcpy(out, w->extra, off);
    memmove(w->extra, w->extra + off, w->n_extra - off);
    w->n_extra -= off;
    while (off < want && (k = read(w->fd, out + off, want - off)) > 0)
        off += (size_t)k;
    cr_assert(eq(sz, off, want), "read %zu of %zu bytes", off, want);
}

/* Whether the answer (what came after its head, read on for up to 3 s) contains needle. */
static bool ws_body_has(ws_client *w, const char *needle)
{
    for (int i = 0; i < 30; i++) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        ssize_t k;

        w->extra[w->n_extra] = 0;
        if (strstr(w->extra, needle))
            return true;
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        k = read(w->fd, w->extra + w->n_extra, sizeof w->extra - 1 - w->n_extra);
        if (k <= 0)
            break;
        w->n_extra += (size_t)k;
    }
    w->extra[w->n_extra] = 0;
    return strstr(w->extra, needle) != NULL;
}

static char *ws_lines(const char *token)
{
    static char b[1024];

    snprintf(b, sizeof b,
             "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chat\r\n"
             "X-Api-Key: %s\r\n",
             token);
    return b;
}

/* Send n bytes through an echoing tunnel while reading n bytes back into in (both ways at once:
 * the buffers between would fill otherwise). */
static void ws_echo_all(ws_client *w, const char *out, char *in, size_t n)
{
    size_t sent = 0, recvd = 0;

    fcntl(w->fd, F_SETFL, O_NONBLOCK);
    while (recvd < n) {
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN | (sent < n ? POLLOUT : 0)};
        cr_assert(poll(&pfd, 1, 10000) > 0, "tunnel stalled at %zu sent, %zu received", sent,
                  recvd);
        if ((pfd.revents & POLLOUT) && sent < n) {
            ssize_t k = write(w->fd, out + sent, MIN(n - sent, (size_t)65536));
            if (k > 0)
                sent += (size_t)k;
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            ssize_t k = read(w->fd, in + recvd, n - recvd);
            cr_assert(k > 0, "tunnel closed after %zu bytes back", recvd);
            recvd += (size_t)k;
        }
    }
}

static bool audited(const char *line)
{
    bool found = false;

    for (int i = 0; i < 100 && !found; i++) {
        pthread_mutex_lock(&audit_lock);
        found = strstr(audit_log, line) != NULL;
        pthread_mutex_unlock(&audit_lock);
        if (!found)
            usleep(20 * 1000);
    }
    return found;
}

/* The handshake reaches the upstream with the real credential in place of the phantom, its 101
 * comes back with the upstream's Sec-WebSocket-* headers, and then bytes flow both ways: the
 * ones glued to either head included, 8 MiB each way with backpressure, in order. */
Test(broker, websocket_is_passed_through_with_the_credential_in_the_handshake)
{
    char *tok = mint("ctr-a", "ws", 0);
    static const char greet[] = "upstream-first-frame";
    char answer[sizeof WS_101 + sizeof greet], got[64];
    const size_t big = 8u << 20;
    char *out = malloc(big), *in = malloc(big);
    ws_client w;

    memcpy(answer, WS_101, sizeof WS_101 - 1);
    memcpy(answer + sizeof WS_101 - 1, greet, sizeof greet - 1);
    ws_script(answer, sizeof WS_101 - 1 + sizeof greet - 1, true);
    w = ws_open(sock_a, "/ws/chat?room=1", ws_lines(tok), "client-early");
    cr_assert(eq(int, w.status, 101), "head: %s", w.head);
    cr_assert(strcasestr(w.head, "\r\nUpgrade: websocket") != NULL, "head: %s", w.head);
    cr_assert(strcasestr(w.head, "\r\nConnection: Upgrade") != NULL, "head: %s", w.head);
    cr_assert(strstr(w.head, "Sec-WebSocket-Accept: " WS_ACCEPT) != NULL, "head: %s", w.head);
    cr_assert(strstr(w.head, "Sec-WebSocket-Protocol: chat") != NULL, "head: %s", w.head);

    /* what the upstream saw: the credential, the client's handshake fields, never the phantom */
    pthread_mutex_lock(&ws_lock);
    cr_expect(strncmp(ws_seen, "GET /chat?room=1 HTTP/1.1\r\n", 27) == 0, "%s", ws_seen);
    cr_expect(strstr(ws_seen, "x-api-key: " REAL_SECRET "\r\n") != NULL, "%s", ws_seen);
    cr_expect(strstr(ws_seen, tok) == NULL, "the phantom reached the upstream: %s", ws_seen);
    cr_expect(strstr(ws_seen, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") != NULL, "%s",
              ws_seen);
    cr_expect(strstr(ws_seen, "Upgrade: websocket\r\n") != NULL, "%s", ws_seen);
    cr_expect(strcasestr(ws_seen, "\r\nHost: 127.0.0.1:") != NULL, "%s", ws_seen);
    pthread_mutex_unlock(&ws_lock);

    /* the upstream's first bytes came with its 101; the client's early bytes come back echoed */
    ws_read(&w, got, strlen(greet) + strlen("client-early"));
    cr_assert(memcmp(got, "upstream-first-frameclient-early", 32) == 0, "got '%.32s'", got);

    for (size_t i = 0; i < big; i++)
        out[i] = (char)(i * 7 + i / 65536);
    ws_echo_all(&w, out, in, big);
    cr_assert(memcmp(in, out, big) == 0, "the echo differs");
    close(w.fd);
    cr_assert(audited("ctr-a ws GET /chat 101 ok"), "audit:\n%s", audit_log);
    for (int i = 0; i < 100 && atomic_load(&ws_closed_by_peer) < 1; i++)
        usleep(20 * 1000);
    cr_assert(eq(int, atomic_load(&ws_closed_by_peer), 1), "the upstream side was not closed");

    /* the answer a byte at a time: every header split at every place, the head still whole */
    ws_script(WS_101, sizeof WS_101 - 1, true);
    pthread_mutex_lock(&ws_lock);
    ws_trickle = true;
    pthread_mutex_unlock(&ws_lock);
    w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101), "head: %s", w.head);
    cr_assert(strstr(w.head, "Sec-WebSocket-Accept: " WS_ACCEPT) != NULL, "head: %s", w.head);
    cr_assert(strstr(w.head, "Sec-WebSocket-Protocol: chat") != NULL, "head: %s", w.head);
    cr_assert(write(w.fd, "after-trickle", 13) == 13);
    ws_read(&w, got, 13);
    cr_assert(memcmp(got, "after-trickle", 13) == 0);
    close(w.fd);

    /* a half-close: the client ends its input and still gets every byte back, then EOF */
    ws_script(WS_101, sizeof WS_101 - 1, true);
    w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101));
    cr_assert(write(w.fd, "half-closed", 11) == 11);
    shutdown(w.fd, SHUT_WR);
    ws_read(&w, got, 11);
    cr_assert(memcmp(got, "half-closed", 11) == 0, "got '%.11s'", got);
    cr_assert(eq(int, (int)read(w.fd, got, 1), 0), "no EOF after the echo");
    close(w.fd);
    cr_assert(audited("ctr-a ws GET /chat 101 ok\nctr-a ws GET /chat 101 ok"), "audit:\n%s",
              audit_log);

    /* a tunnel still open when the broker stops: closed with it (teardown must not hang) */
    ws_script(WS_101, sizeof WS_101 - 1, true);
    w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101));
    free(out);
    free(in);
    free(tok);
}

/* The client goes away for good while the upstream stays (it ignores the half-close): the
 * broker waits for it without spinning on the dead client socket, then ends the tunnel. */
Test(broker, websocket_bytes_repeating_the_credential_reach_the_client_masked)
{
    char *tok = mint("ctr-a", "ws", 0);
    const char *stars = "********************"; /* as long as REAL_SECRET */
    char answer[1024], lines[1200], got[128], want[128];
    int n;
    ws_client w;

    /* in a header of the 101 and in the bytes glued to it; then in bytes echoed back */
    n = snprintf(answer, sizeof answer,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                 "Upgrade\r\nSec-WebSocket-Accept: " WS_ACCEPT "\r\nX-Echo-Key: %s\r\n\r\n"
                 "glued %s|",
                 REAL_SECRET, REAL_SECRET);
    ws_script(answer, (size_t)n, true);
    snprintf(lines, sizeof lines, "%sSec-WebSocket-Extensions: permessage-deflate\r\n",
             ws_lines(tok));
    w = ws_open(sock_a, "/ws/chat", lines, NULL);
    cr_assert(eq(int, w.status, 101), "head: %s", w.head);
    cr_assert(strstr(w.head, "X-Echo-Key: ********************\r\n") != NULL, "head: %s", w.head);
    snprintf(want, sizeof want, "glued %s|", stars);
    ws_read(&w, got, strlen(want));
    cr_assert(memcmp(got, want, strlen(want)) == 0, "got '%.*s'", (int)strlen(want), got);
    cr_assert(write(w.fd, "echo " REAL_SECRET " end", 5 + 20 + 4) == 29);
    snprintf(want, sizeof want, "echo %s end", stars);
    ws_read(&w, got, 29);
    cr_assert(memcmp(got, want, 29) == 0, "got '%.29s'", got);
    close(w.fd);
    /* compressed frames would hide it: the extension is not offered upstream */
    pthread_mutex_lock(&ws_lock);
    cr_expect(strcasestr(ws_seen, "Sec-WebSocket-Extensions") == NULL, "%s", ws_seen);
    pthread_mutex_unlock(&ws_lock);
    free(tok);
}

/* A frame whose payload holds the credential, split over two reads by a pause: the bytes that
 * may begin the credential wait in the broker (the client could not use part of a frame anyway)
 * and the frame arrives masked. A complete frame ending in the credential's first bytes goes out at
 * once: a hold never delays a frame the client could read. (The echo upstream sends back what it
 * reads, so the frames the test writes come back as the upstream's; they are unmasked, as a
 * server's are.) */
Test(broker, websocket_frames_repeating_the_credential_are_masked_across_reads)
{
    char *tok = mint("ctr-a", "ws", 0);
    const char *payload = "data " REAL_SECRET " end of it"; /* 36 bytes */
    size_t pl = strlen(payload), cut = 5 + 10;              /* inside the credential */
    char frame[64], got[64];
    ws_client w;

    ws_script(WS_101, sizeof WS_101 - 1, true);
    w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101), "head: %s", w.head);
    frame[0] = (char)0x81; /* FIN, text */
    frame[1] = (char)pl;
    memcpy(frame + 2, payload, pl);
    cr_assert(eq(sz, (size_t)write(w.fd, frame, 2 + cut), 2 + cut));
    usleep(300 * 1000);
    /* what came so far: the frame up to where the credential may begin */
    ssize_t k = recv(w.fd, got, sizeof got, MSG_DONTWAIT);
    cr_assert(eq(sz, (size_t)k, 2 + 5), "%zd bytes: '%.*s'", k, (int)MAX(k, 0), got);
    cr_assert(eq(sz, (size_t)write(w.fd, frame + 2 + cut, pl - cut), pl - cut));
    ws_read(&w, got + 7, 2 + pl - 7);
    cr_assert(memcmp(got + 2, "data ******************** end of it", pl) == 0, "got '%.*s'",
              (int)pl, got + 2);

    /* a whole frame ending in "sk-rea": out at once, unchanged */
    const char *edge = "ends in sk-rea";
    frame[1] = (char)strlen(edge);
    memcpy(frame + 2, edge, strlen(edge));
    double t0 = now_s();
    cr_assert(eq(sz, (size_t)write(w.fd, frame, 2 + strlen(edge)), 2 + strlen(edge)));
    ws_read(&w, got, 2 + strlen(edge));
    cr_assert(now_s() - t0 < 1.0, "a complete frame was held %.2f s", now_s() - t0);
    cr_assert(memcmp(got + 2, edge, strlen(edge)) == 0);

    /* 8 MiB of 's' in one frame (the 64-bit length form), then the credential in a frame of its
     * own: every read ends in the credential's first byte, so a byte is held at every read and
     * the ring turns over many times; all of it comes back, the credential masked */
    const size_t big = 8u << 20, total = 10 + big + 2 + 20;
    char *out = malloc(total), *in = malloc(total);
    out[0] = (char)0x82;
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (char)((uint64_t)big >> (8 * (7 - i)));
    memset(out + 10, 's', big);
    out[10 + big] = (char)0x81;
    out[10 + big + 1] = 20;
    memcpy(out + 10 + big + 2, REAL_SECRET, 20);
    ws_echo_all(&w, out, in, total);
    cr_assert(memcmp(in, out, 10 + big + 2) == 0, "the frames differ");
    cr_assert(memcmp(in + 10 + big + 2, "********************", 20) == 0, "got '%.20s'",
              in + 10 + big + 2);
    free(out);
    free(in);
    close(w.fd);
    free(tok);
}

Test(broker, websocket_client_gone_while_the_upstream_stays_costs_no_cpu)
{
    char *tok = mint("ctr-a", "ws", 0);
    ws_client w;
    double t0, used;

    ws_script(WS_101, sizeof WS_101 - 1, false);
    pthread_mutex_lock(&ws_lock);
    ws_hold_ms = 2500;
    pthread_mutex_unlock(&ws_lock);
    w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101), "%s", w.head);
    close(w.fd);
    t0 = cpu_seconds();
    usleep(1500 * 1000);
    used = cpu_seconds() - t0;
    cr_assert(used < 0.3, "%.2f s of CPU in 1.5 s with a dead client: the loop spins", used);
    cr_assert(audited("ctr-a ws GET /chat 101 ok"), "audit:\n%s", audit_log);
    free(tok);
}

/* What the broker refuses itself, before any upstream is asked. */
Test(broker, websocket_requests_the_broker_refuses)
{
    char *tok = mint("ctr-a", "ws", 0), *other = mint("ctr-b", "ws", 0), lines[1200];
    static const struct {
        const char *target, *lines;
        int status;
        const char *needle;
    } cases[] = {
        {"/ws/chat", "Connection: Upgrade\r\nUpgrade: h2c\r\n", 501, "only WebSocket"},
        {"/ws/chat", "Upgrade: websocket\r\n", 400, "Connection: Upgrade"},
        {"/ws/chat", "Connection: keep-alive\r\nUpgrade: websocket\r\n", 400, "Connection"},
        {"/ws/chat", "Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n", 400,
         "no request body"},
        {"/ws/other", "Connection: Upgrade\r\nUpgrade: websocket\r\n", 403, "not allowed"},
        /* the handshake is written by hand: a value that could split it never gets there */
        {"/ws/chat",
         "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: a\rX-Evil: 1\r\n",
         400, "malformed header"},
        {"/ws/chat", "Connection: Upgrade\r\nUpgrade: websocket\r\nOrigin: a\x01b\r\n", 400,
         "malformed header"},
    };

    ws_script(WS_101, sizeof WS_101 - 1, true);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        snprintf(lines, sizeof lines, "%sX-Api-Key: %s\r\n", cases[i].lines, tok);
        ws_client w = ws_open(sock_a, cases[i].target, lines, NULL);
        cr_expect(eq(int, w.status, cases[i].status), "case %zu: %s", i, w.head);
        cr_expect(ws_body_has(&w, cases[i].needle), "case %zu: no '%s' in '%s'", i, cases[i].needle,
                  w.extra);
        close(w.fd);
    }
    /* a POST upgrade */
    {
        int fd = unix_connect(sock_a);
        char req[1024], out[1024];
        int n = snprintf(req, sizeof req,
                         "POST /ws/chat HTTP/1.1\r\nHost: a\r\n%sContent-Length: 0\r\n\r\n",
                         ws_lines(tok));
        ssize_t k;

        cr_assert(write(fd, req, (size_t)n) == n);
        k = read(fd, out, sizeof out - 1);
        out[k > 0 ? k : 0] = 0;
        cr_expect(strncmp(out, "HTTP/1.1 4", 10) == 0, "POST upgrade: %.80s", out);
        close(fd);
    }
    /* tokens first: none, another container's (on this socket), and a good one on the wrong
     * socket */
    ws_client w = ws_open(sock_a, "/ws/chat", ws_lines("terok-p-nope"), NULL);
    cr_expect(eq(int, w.status, 401), "%s", w.head);
    close(w.fd);
    w = ws_open(sock_a, "/ws/chat", ws_lines(other), NULL);
    cr_expect(eq(int, w.status, 403), "%s", w.head);
    close(w.fd);
    w = ws_open(sock_b, "/ws/chat", ws_lines(tok), NULL);
    cr_expect(eq(int, w.status, 403), "%s", w.head);
    close(w.fd);
    pthread_mutex_lock(&ws_lock);
    cr_expect(ws_seen[0] == 0, "the upstream was asked: %s", ws_seen);
    pthread_mutex_unlock(&ws_lock);
    free(tok);
    free(other);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* websocket-idle: a tunnel with traffic stays open past it; one without is closed after it.
 * websocket = no: upgrades are refused on the route. */
Test(broker, websocket_idle_limit_and_routes_without_websocket)
{
    char *tok = mint("ctr-a", "ws-short", 0), *no = mint("ctr-a", "nows", 0), got[8];
    ws_client w;
    double t0;
    ssize_t k;

    ws_script(WS_101, sizeof WS_101 - 1, true);
    w = ws_open(sock_a, "/ws-short/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101), "%s", w.head);
    for (int i = 0; i < 5; i++) { /* 2.5 s of traffic, a byte every 0.5 s: still open */
        usleep(500 * 1000);
        cr_assert(write(w.fd, "x", 1) == 1);
        ws_read(&w, got, 1);
    }
    t0 = now_s();
    k = read(w.fd, got, 1); /* then silence: the broker closes it after about 1 s */
    cr_assert(eq(int, (int)k, 0), "not closed (read %zd)", k);
    cr_assert(now_s() - t0 > 0.8 && now_s() - t0 < 9, "closed after %.2f s", now_s() - t0);
    close(w.fd);
    cr_assert(audited("ctr-a ws-short GET /chat 101 idle-timeout"), "audit:\n%s", audit_log);

    w = ws_open(sock_a, "/nows/chat", ws_lines(no), NULL);
    cr_assert(eq(int, w.status, 403), "%s", w.head);
    cr_assert(ws_body_has(&w, "not allowed on this route"), "%s", w.extra);
    close(w.fd);
    free(tok);
    free(no);
}

/* A hostile or broken upstream answer is a 502 naming what was wrong (never a value of it), the
 * credential goes nowhere else, and the daemon keeps serving. */
Test(broker, websocket_upstream_answers_that_are_not_a_switch_are_502)
{
    char *tok = mint("ctr-a", "ws", 0), *huge;
    static const struct {
        const char *answer, *needle;
    } cases[] = {
        {"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden", "answered 403"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "answered 200"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
         "other than WebSocket"},
        {"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "other than WebSocket"},
        {"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "other than HTTP/1.1"},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not valid HTTP"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgr\x01"
         "de: websocket\r\n\r\n",
         "not valid HTTP"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", "closed the connection"},
        {"", "closed the connection"},
        /* a bare CR, which http-parser would take for a line end, eating the byte after it */
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\rXConnection: Upgrade\r\n\r\n",
         "not valid HTTP"},
        {"HTTP/1.1 101 Switching Protocols\r-Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
         "not valid HTTP"},
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        ws_script(cases[i].answer, strlen(cases[i].answer), false);
        ws_client w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
        cr_expect(eq(int, w.status, 502), "case %zu: %s", i, w.head);
        cr_expect(ws_body_has(&w, cases[i].needle), "case %zu: no '%s' in '%s'", i, cases[i].needle,
                  w.extra);
        cr_expect(strstr(w.extra, REAL_SECRET) == NULL && strstr(w.head, REAL_SECRET) == NULL);
        close(w.fd);
    }
    /* a head past the limit, sent in one piece */
    huge = malloc(20050);
    int n = snprintf(huge, 20050, "HTTP/1.1 101 Switching Protocols\r\nX-Pad: ");
    memset(huge + n, 'a', 20000);
    memcpy(huge + n + 20000, "\r\n\r\n", 5);
    ws_script(huge, (size_t)n + 20004, false);
    ws_client w = ws_open(sock_a, "/ws/chat", ws_lines(tok), NULL);
    cr_expect(eq(int, w.status, 502), "%s", w.head);
    close(w.fd);
    free(huge);
    cr_assert(audited("ctr-a ws GET /chat 502 upgrade-refused"), "%s", audit_log);
    cr_assert(audited("ctr-a ws GET /chat 502 upstream-error"), "%s", audit_log);

    char *api = mint("ctr-a", "api", 0);
    resp r = request(sock_a, "GET", "/api/echo", hdr("X-Api-Key", api), NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200), "still serving");
    resp_done(&r);
    free(api);
    free(tok);
}

/* An OAuth route's handshake that the upstream answers 401 (its access token revoked before
 * its expiry) is retried once after a forced refresh, as plain requests are; a second 401 is
 * the upstream's answer (502, no loop), and a refresh that fails is a 502 that says so. */
Test(broker, websocket_on_an_oauth_route_refreshes_once_after_a_401)
{
    char *tok = mint("ctr-a", "ws-oauth", 0), got[6];

    set_token_set("at-stale", "rt-good", (long long)time(NULL) + 3600);
    ws_script(WS_101, sizeof WS_101 - 1, true);
    pthread_mutex_lock(&ws_lock);
    snprintf(ws_reject, sizeof ws_reject, "Authorization: Bearer at-stale");
    pthread_mutex_unlock(&ws_lock);
    atomic_store(&ws_rejected, 0);
    ws_client w = ws_open(sock_a, "/ws-oauth/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 101), "%s", w.head);
    cr_assert(eq(int, atomic_load(&ws_rejected), 1));
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 1));
    pthread_mutex_lock(&ws_lock);
    cr_assert(strstr(ws_seen, "Authorization: Bearer at-fresh\r\n") != NULL, "%s", ws_seen);
    cr_assert(strstr(ws_seen, "rt-") == NULL && strstr(ws_seen, tok) == NULL, "%s", ws_seen);
    pthread_mutex_unlock(&ws_lock);
    cr_assert(write(w.fd, "hello", 5) == 5);
    ws_read(&w, got, 5);
    cr_assert(memcmp(got, "hello", 5) == 0);
    close(w.fd);
    cr_assert(audited("ctr-a ws-oauth GET /chat 101 ok"), "%s", audit_log);

    /* the fresh token is refused too: one refresh, then the upstream's 401 as a 502 */
    set_token_set("at-stale", "rt-good", (long long)time(NULL) + 3600);
    pthread_mutex_lock(&ws_lock);
    snprintf(ws_reject, sizeof ws_reject, "Authorization: Bearer at-");
    pthread_mutex_unlock(&ws_lock);
    w = ws_open(sock_a, "/ws-oauth/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 502), "%s", w.head);
    cr_assert(ws_body_has(&w, "answered 401"), "%s", w.extra);
    cr_assert(eq(int, atomic_load(&ws_rejected), 3));
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 2));
    close(w.fd);

    /* the refresh itself fails */
    set_token_set("at-stale", "rt-bad", (long long)time(NULL) + 3600);
    w = ws_open(sock_a, "/ws-oauth/chat", ws_lines(tok), NULL);
    cr_assert(eq(int, w.status, 502), "%s", w.head);
    cr_assert(eq(int, atomic_load(&ws_rejected), 4));
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 3));
    cr_assert(strstr(w.head, "rt-bad") == NULL && strstr(w.extra, "rt-bad") == NULL);
    close(w.fd);
    cr_assert(audited("ctr-a ws-oauth GET /chat 502 oauth-refresh-failed"), "%s", audit_log);
    free(tok);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Pooled upstream connections stay in the loop's epoll while idle (no DEL/ADD per request):
 * when the upstream closes one, the broker must neither spin on it nor fail the next request. */
Test(broker, an_upstream_closing_idle_connections_costs_no_cpu_and_no_request)
{
    char *tok = mint("ctr-a", "idle", 0);

    for (int round = 0; round < 3; round++) {
        resp r = request(sock_a, "GET", "/idle/echo", hdr("X-Api-Key", tok), NULL, NULL, 0);
        cr_assert(eq(long, r.status, 200), "round %d: %s", round, r.body);
        cr_assert(saw(r.body, "authorization: ", "Bearer " REAL_SECRET), "%s", r.body);
        resp_done(&r);
        double t0 = cpu_seconds();
        usleep(2500 * 1000); /* the upstream drops the idle connection after 1 s */
        double used = cpu_seconds() - t0;
        cr_assert(used < 0.5, "round %d: %.2f s of CPU while idle: the loop spins", round, used);
    }
    free(tok);
}

typedef struct conc {
    const char *tok;
    resp r;
} conc;

static void *conc_request(void *arg)
{
    conc *c = arg;
    c->r = request(sock_a, "GET", "/oauth/echo", hdr("X-Api-Key", c->tok), NULL, NULL, 0);
    return NULL;
}

Test(broker, oauth_concurrent_requests_share_one_refresh_and_bodies_wait_for_it)
{
    char *tok = mint("ctr-a", "oauth", 0);
    pthread_t th[4];
    conc c[4];

    set_token_set("at-old", "rt-good", (long long)time(NULL) - 10);
    for (int i = 0; i < 4; i++) {
        c[i] = (conc){.tok = tok};
        pthread_create(&th[i], NULL, conc_request, &c[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert(eq(long, c[i].r.status, 200), "request %d: %s", i, c[i].r.body);
        cr_assert(saw(c[i].r.body, "Authorization: ", "Bearer at-fresh"));
        resp_done(&c[i].r);
    }
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 1), "one refresh for all of them");

    /* a request with a body waits for the refresh before its body is read, then streams it */
    set_token_set("at-old", "rt-good", (long long)time(NULL) - 10);
    size_t n = 300 * 1024;
    char *body = malloc(n);
    memset(body, 'b', n);
    resp r =
        request(sock_a, "POST", "/oauth/upload", hdr("X-Api-Key", tok), NULL, body, (long long)n);
    cr_assert(eq(long, r.status, 200), "body: %.200s", r.body);
    cr_assert(strstr(r.body, "bytes=307200\n") != NULL, "upstream got: %.200s", r.body);
    cr_assert(saw(r.body, "Authorization: ", "Bearer at-fresh"));
    cr_assert(eq(int, atomic_load(&token_endpoint_calls), 2));
    resp_done(&r);
    free(body);
    free(tok);
}

/* What libmicrohttpd 0.9.75 lets through and the broker must refuse itself (found by the
 * broker-container suite: a bare CR reached the upstream as an injected header). */
Test(broker, header_injection_bad_method_and_missing_host_get_400)
{
    static const char *const corpus[] = {
        "GET /api/x HTTP/1.1\r\nHost: a\r\nX-A: b\rInjected: c\r\nConnection: close\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Injected: c\r\nConnection: close\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: a\r\nX-A : b\r\nConnection: close\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n",
        "G(T /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {5, 0};
        char buf[4096];
        size_t off = 0;
        ssize_t k;

        strncpy(sa.sun_path, sock_a, sizeof sa.sun_path - 1);
        cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)!write(fd, corpus[i], strlen(corpus[i]));
        while (off < sizeof buf - 1 && (k = read(fd, buf + off, sizeof buf - 1 - off)) > 0)
            off += (size_t)k;
        buf[off] = 0;
        close(fd);
        cr_expect(strncmp(buf, "HTTP/1.1 400", 12) == 0, "case %zu got '%.80s'", i, buf);
    }
    resp r = request(sock_a, "GET", "/-/health", NULL, NULL, NULL, 0);
    cr_assert(eq(long, r.status, 200), "still serving");
    resp_done(&r);
}

/* scrub_span as the broker drives it: pieces of a stream, each searched with the tail kept from
 * the one before, against the whole text masked at once. Texts full of the credential, its
 * prefixes and near misses, cut at random places (a fixed seed: the same cases every run). */
Test(broker_scrub, a_stream_in_any_pieces_is_masked_as_the_whole_text)
{
    static const char secret[] = REAL_SECRET;
    static const char *const parts[] = {secret,
                                        "sk-",
                                        "sk-real-4a7f9c2e81d",
                                        "s",
                                        "xyz",
                                        "\n\n",
                                        "data: ",
                                        "sk-real-4a7f9c2e81d3sk-real-4a7f9c2e81d3"};
    const size_t sl = sizeof secret - 1;
    unsigned seed = 12345;

    for (int round = 0; round < 2000; round++) {
        char text[1024], whole[1024], out[1024], span[1024];
        size_t n = 0, o = 0, held = 0;

        while (n < 600) {
            const char *p = parts[(seed = seed * 1103515245 + 12345) / 65536 % ELEMENTSOF(parts)];
            size_t k = strlen(p);
            memcpy(text + n, p, k);
            n += k;
        }
        memcpy(whole, text, n);
        (void)scrub_span(whole, n, secret, sl);
        for (size_t at = 0; at < n;) {
            size_t piece = 1 + (seed = seed * 1103515245 + 12345) / 65536 % 40;
            piece = MIN(piece, n - at);
            memcpy(span + held, text + at, piece); /* span[0..held) is the kept tail */
            size_t len = held + piece;
            held = scrub_span(span, len, secret, sl);
            cr_assert(held < sl);
            memcpy(out + o, span, len - held); /* what goes out now */
            o += len - held;
            memmove(span, span + len - held, held);
            at += piece;
        }
        memcpy(out + o, span, held); /* the end releases the tail */
        o += held;
        cr_assert(eq(sz, o, n));
        cr_assert(memcmp(out, whole, n) == 0, "round %d: '%.*s' against '%.*s'", round, (int)n, out,
                  (int)n, whole);
        cr_assert(memmem(out, n, secret, sl) == NULL, "round %d", round);
    }
    char none[] = "no credential here";
    cr_assert(eq(sz, scrub_span(none, strlen(none), secret, 0), 0));
    cr_assert(eq(str, none, "no credential here"));
}

/* ws_frames_feed against frames whose boundaries the test knows: any header form (7-, 16- and
 * 64-bit lengths, masked or not), fed in random pieces; after each piece it must name exactly the
 * bytes of the frame still incomplete. A length no frame has stops the holds for good. */
Test(broker_scrub, websocket_frame_ends_are_found_in_any_pieces)
{
    static unsigned char stream[1 << 20];
    static size_t open_after[1 << 20]; /* bytes of the incomplete frame after byte i */
    unsigned seed = 777;

    for (int round = 0; round < 200; round++) {
        size_t n = 0;

        while (n < sizeof stream - 70000 - 14) {
            size_t len, h = 0, start = n;
            unsigned r = (seed = seed * 1103515245 + 12345) / 65536;
            bool masked = r & 1;

            len = r % 3 == 0 ? r % 126 : r % 3 == 1 ? 126 + r % 60000 : 65536 + r % 5000;
            if (r % 7 == 0)
                len = 0;
            stream[n + h++] = 0x82;
            if (len < 126)
                stream[n + h++] = (unsigned char)((masked ? 0x80 : 0) | len);
            else if (len <= 0xffff && r % 5 != 0) {
                stream[n + h++] = (unsigned char)((masked ? 0x80 : 0) | 126);
                stream[n + h++] = (unsigned char)(len >> 8);
                stream[n + h++] = (unsigned char)len;
            } else {
                stream[n + h++] = (unsigned char)((masked ? 0x80 : 0) | 127);
                for (int i = 7; i >= 0; i--)
                    stream[n + h++] = (unsigned char)((uint64_t)len >> (8 * i));
            }
            if (masked)
                for (int i = 0; i < 4; i++)
                    stream[n + h++] = (unsigned char)(r >> i);
            memset(stream + n + h, 'x', len);
            n += h + len;
            for (size_t i = start; i < n; i++)
                open_after[i] = i + 1 == n ? 0 : i + 1 - start;
        }
        ws_frames f = {0};
        for (size_t at = 0; at < n;) {
            size_t piece = 1 + (seed = seed * 1103515245 + 12345) / 65536 % 3000;
            piece = MIN(piece, n - at);
            uint64_t got = ws_frames_feed(&f, stream + at, piece);
            at += piece;
            cr_assert(eq(u64, got, open_after[at - 1]), "round %d, after %zu bytes", round, at);
        }
    }
    unsigned char bad[10] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    ws_frames f = {0};
    cr_assert(eq(u64, ws_frames_feed(&f, bad, sizeof bad), 0));
    cr_assert(f.lost);
    cr_assert(eq(u64,
                 ws_frames_feed(&f,
                                (const unsigned char *)"\x81\x05"
                                                       "abc",
                                5),
                 0));
}
