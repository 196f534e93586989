/* SPDX-License-Identifier: Apache-2.0 */
/* test-broker-container.c: the vault broker from inside real containers (issue 4 item 7).
 *
 * One world for the whole suite, built in main() before Criterion runs the tests (each test
 * runs in its own process and reads the world from $TEROK_BC_WORLD):
 *   - a test CA and a server certificate made with openssl; an HTTPS upstream on the host's
 *     loopback (broker-upstream.py) that logs every request it sees, headers included;
 *   - a config with rootful Podman (private service, storage of our own), vault-sqlite with a
 *     key file, [vault] ca-file = the test CA, no shield (the broker path is a Unix socket,
 *     no network), and two routes: `up` (credential stored) and `nocred` (credential absent);
 *   - the real credential stored with `vault add` from stdin;
 *   - three containers started with the real CLI (`run -d`), which starts the broker daemon:
 *     A (the main one), B (--token-ttl 1s: its tokens expire), C (its token gets revoked).
 * Inside the containers requests go through terok-init's 127.0.0.1:9419 bridge (busybox wget
 * and nc); the malformed corpus and the 1 GiB upload go from the host straight to A's
 * vault.sock. Every CLI call is bounded by timeout(1). Run it under the Podman lock. */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "terok-test.h"
#include "util/macro.h"

#define IMG "localhost/terok-busybox:test"
#define GIB (1024LL * 1024 * 1024)
#define RSS_BOUND_KIB (64 * 1024) /* a correctness bound; bench/broker has the perf target */

/* ---- the world, as the tests see it ---- */

typedef struct world {
    char dir[256];
    char name[3][64]; /* A, B, C */
    char real[80];    /* the real credential */
    char a_up[80], a_nocred[80], b_up[80], c_up[80];
    long long b_expires;
} world;

static world W;

static void world_save(void)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof p, "%s/world.bin", W.dir);
    f = fopen(p, "we");
    if (!f || fwrite(&W, sizeof W, 1, f) != 1) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
    fclose(f);
    setenv("TEROK_BC_WORLD", p, 1);
}

static void world_load(void)
{
    const char *p = getenv("TEROK_BC_WORLD");
    FILE *f = p ? fopen(p, "re") : NULL;

    cr_assert(f, "no world: TEROK_BC_WORLD=%s (the suite's main() builds it)", p ? p : "");
    cr_assert_eq(fread(&W, sizeof W, 1, f), 1);
    fclose(f);
}

static const char *wpath(const char *rel)
{
    static char bufs[4][512];
    static unsigned i;
    char *b = bufs[i++ % 4];

    snprintf(b, 512, "%s/%s", W.dir, rel);
    return b;
}

static const char *sock_of(int i)
{
    static char b[3][512];

    snprintf(b[i], sizeof b[i], "%s/run/containers/%s/vault.sock", W.dir, W.name[i]);
    return b[i];
}

/* ---- running things ---- */

static cli_result cli(const char *input, const char *const *argv)
{
    const char *full[40] = {"timeout", "180", getenv("TEROK_TEST_CLI")};
    size_t n = 3;

    for (; *argv && n < 39; argv++)
        full[n++] = *argv;
    full[n] = NULL;
    return test_run(input, full);
}
#define CLI(...) cli(NULL, (const char *const[]){__VA_ARGS__, NULL})

/* sh -c SCRIPT inside container i */
static cli_result cexec(int i, const char *script)
{
    return CLI("exec", W.name[i], "sh", "-c", script);
}

static bool has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle);
}

static int status_of(const char *resp)
{
    int st = -1;

    if (!resp || sscanf(resp, "HTTP/1.%*d %d", &st) != 1)
        return -1;
    return st;
}

/* An HTTP/1.0 request from inside container i through terok-init's bridge (nc keeps the whole
 * answer, error bodies included; busybox wget would drop them). `auth` is a shell word, e.g.
 * "x-api-key: $UP_API_KEY", or NULL. */
static cli_result creq(int i, const char *method, const char *path, const char *auth)
{
    char script[2048];

    snprintf(script, sizeof script,
             "printf '%s %s HTTP/1.0\\r\\n%s%s\\r\\n' %s | nc 127.0.0.1 9419", method, path,
             auth ? "%s" : "", auth ? "\\r\\n" : "", auth ? auth : "");
    return cexec(i, script);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    cr_assert_lt(strlen(path), sizeof sa.sun_path, "socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s: %s", path,
                 strerror(errno));
    return fd;
}

/* True once buf holds a whole response framed by Content-Length. */
static bool response_complete(const char *buf, size_t n)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4), *cl;
    long len;

    if (!end)
        return false;
    cl = strcasestr(buf, "\r\ncontent-length:");
    if (!cl || cl > end)
        return false; /* read to EOF */
    len = strtol(cl + 17, NULL, 10);
    return (size_t)(end + 4 - buf) + (size_t)len <= n;
}

/* Raw bytes to a Unix socket from the host; the answer until it is complete, EOF, or 10 s. */
static size_t raw(const char *sock, const char *req, size_t len, char *out, size_t cap)
{
    size_t off = 0, got = 0;
    int fd = connect_unix(sock);

    while (off < len) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break; /* the server may answer and close before reading everything */
        off += (size_t)k;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;

        if (got + 1 >= cap || poll(&p, 1, 10000) <= 0)
            break;
        k = read(fd, out + got, cap - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        out[got] = 0;
        if (response_complete(out, got))
            break;
    }
    out[got] = 0;
    close(fd);
    return got;
}

/* The upstream's log, whole (upstream_log) or its last record containing `needle`. */
static char *upstream_log(void)
{
    FILE *f = fopen(wpath("upstream.log"), "re");
    char *b = NULL;
    size_t n = 0;

    if (!f)
        return strdup("");
    b = calloc(1, 64 << 20);
    n = fread(b, 1, (64 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static char *last_record_with(const char *needle)
{
    _cleanup_free_ char *log = upstream_log();
    char *best = NULL;

    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, needle)) {
            free(best);
            best = strdup(line);
        }
    return best;
}

static int daemon_pid(void)
{
    json_object *req = json_object_new_object(), *reply = NULL, *pid = NULL;
    terok_error err = TEROK_ERROR_INIT;
    int r, v;

    json_object_object_add(req, "op", json_object_new_string("status"));
    r = ctl_call(wpath("run/vault.ctl"), req, 5000, &reply, &err);
    json_object_put(req);
    cr_assert(r >= 0, "the broker daemon does not answer: %s", terok_error_message(&err));
    cr_assert(json_object_object_get_ex(reply, "pid", &pid));
    v = json_object_get_int(pid);
    json_object_put(reply);
    return v;
}

static long vm_kib(int pid, const char *field)
{
    char p[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(p, sizeof p, "/proc/%d/status", pid);
    f = fopen(p, "re");
    cr_assert(f, "no %s", p);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtol(line + strlen(field) + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Every error body a test saw: checked for the real credential at the end of the test. */
static void no_secret(const char *what, const char *text)
{
    cr_assert(!has(text, W.real), "%s contains the real credential", what);
}

/* ---- 1. the credential ---- */

/* The upstream's last record containing `needle`: it names `path`, holds the real credential
 * and no phantom token. */
static char *upstream_record(const char *needle, const char *path)
{
    char *rec = last_record_with(needle);

    cr_assert(rec, "the upstream saw no request with %s", needle);
    cr_assert(has(rec, W.real), "the upstream did not get the real credential: %s", rec);
    cr_assert(!has(rec, "terok-p-"), "the phantom token reached the upstream: %s", rec);
    cr_assert(has(rec, path), "%s", rec);
    return rec;
}

Test(broker_container, upstream_gets_the_real_credential_the_container_never_does, .timeout = 240)
{
    cli_result r;
    _cleanup_free_ char *rec = NULL;

    world_load();
    /* a real client, busybox wget, through the bridge and the base URL `run` set */
    r = cexec(0, "wget -q -O - --header \"x-api-key: $UP_API_KEY\" \"$UP_BASE_URL/echo?probe=1\"");
    cr_assert_eq(r.exit_code, 0, "wget: %s %s", r.out, r.err);
    cr_assert(has(r.out, "\"ok\": true"), "%s", r.out);
    no_secret("the response", r.out);
    cli_result_done(&r);

    rec = upstream_record("probe=1", "\"/api/echo?probe=1\"");

    /* the environment of every process: PID 1 (terok-init), the task, this exec */
    r = cexec(0, "for f in /proc/[0-9]*/environ; do cat $f; echo; done | tr '\\000' '\\n'");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(has(r.out, "UP_API_KEY=terok-p-"), "the phantom is not in the env: %s", r.out);
    no_secret("the container's environment", r.out);
    cli_result_done(&r);

    /* every regular file of the container (not /proc, /sys, /dev), contents concatenated */
    r = cexec(0, "find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f "
                 "-exec cat {} + 2>/dev/null | tr -d '\\000'");
    /* NULs are dropped inside (the output is a C string here); that can only join bytes, never
     * hide the credential */
    cr_assert_gt(strlen(r.out), 500000, "the file dump looks empty (%zu bytes)", strlen(r.out));
    cr_assert(has(r.out, "/run/terok") || has(r.out, "BusyBox"), "not the container's files?");
    no_secret("a file in the container", r.out);
    cli_result_done(&r);

    /* what the operator's tools show about the container */
    r = CLI("inspect", W.name[0]);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    no_secret("inspect", r.out);
    cli_result_done(&r);
    r = CLI("logs", W.name[0]);
    no_secret("logs", r.out);
    no_secret("logs", r.err);
    cli_result_done(&r);
}

/* ---- 2. a token is bound to its container's socket ---- */

Test(broker_container, a_token_on_another_containers_socket_is_forbidden, .timeout = 120)
{
    char auth[160], out[8192];
    cli_result r;

    world_load();
    /* A's token presented inside B (its socket is B's identity) */
    snprintf(auth, sizeof auth, "'x-api-key: %s'", W.a_up);
    r = creq(1, "GET", "/up/echo", auth);
    cr_assert_eq(status_of(r.out), 403, "A's token on B's socket: %s", r.out);
    cr_assert(has(r.out, "not valid for this container"), "%s", r.out);
    no_secret("the 403 body", r.out);
    cli_result_done(&r);

    /* the same bytes straight to B's socket from the host */
    snprintf(out, sizeof out, "GET /up/echo HTTP/1.0\r\nx-api-key: %s\r\n\r\n", W.a_up);
    raw(sock_of(1), out, strlen(out), out, sizeof out);
    cr_assert_eq(status_of(out), 403, "%s", out);

    /* ... while on A's own socket it works */
    snprintf(out, sizeof out, "GET /up/echo HTTP/1.0\r\nx-api-key: %s\r\n\r\n", W.a_up);
    raw(sock_of(0), out, strlen(out), out, sizeof out);
    cr_assert_eq(status_of(out), 200, "%s", out);
}

/* ---- 3. missing, expired, revoked ---- */

Test(broker_container, missing_expired_and_revoked_tokens_are_unauthorized, .timeout = 120)
{
    char id[32] = "";
    cli_result r;

    world_load();
    r = creq(0, "GET", "/up/echo", NULL);
    cr_assert_eq(status_of(r.out), 401, "no token: %s", r.out);
    cr_assert(has(r.out, "missing phantom token"), "%s", r.out);
    no_secret("the 401 body", r.out);
    cli_result_done(&r);

    /* a token that is not one */
    r = creq(0, "GET", "/up/echo", "'Authorization: Bearer terok-p-forged'");
    cr_assert_eq(status_of(r.out), 401, "forged token: %s", r.out);
    cli_result_done(&r);

    /* B's tokens were minted with --token-ttl 1s */
    cr_assert_gt(W.b_expires, 0, "B's token has no expiry");
    while (time(NULL) < W.b_expires + 1)
        sleep(1);
    r = creq(1, "GET", "/up/echo", "\"x-api-key: $UP_API_KEY\"");
    cr_assert_eq(status_of(r.out), 401, "expired token: %s", r.out);
    cr_assert(has(r.out, "phantom token expired"), "%s", r.out);
    no_secret("the 401 body", r.out);
    cli_result_done(&r);

    /* C's token works, then the operator revokes it */
    r = creq(2, "GET", "/up/echo", "\"x-api-key: $UP_API_KEY\"");
    cr_assert_eq(status_of(r.out), 200, "C before the revocation: %s", r.out);
    cli_result_done(&r);
    r = CLI("vault", "tokens", "list", "--container", W.name[2], "--json");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    {
        json_object *arr = json_tokener_parse(r.out);
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i), *t, *v;
            if (json_object_object_get_ex(e, "target", &t) &&
                strcmp(json_object_get_string(t), "up") == 0 &&
                json_object_object_get_ex(e, "id", &v))
                snprintf(id, sizeof id, "%s", json_object_get_string(v));
        }
        json_object_put(arr);
    }
    cr_assert(id[0], "C has no token for route up: %s", r.out);
    cli_result_done(&r);
    r = CLI("vault", "tokens", "revoke", id);
    cr_assert_eq(r.exit_code, 0, "revoke: %s", r.err);
    cli_result_done(&r);
    r = creq(2, "GET", "/up/echo", "\"x-api-key: $UP_API_KEY\"");
    cr_assert_eq(status_of(r.out), 401, "revoked token: %s", r.out);
    cr_assert(has(r.out, "invalid phantom token"), "%s", r.out);
    no_secret("the 401 body", r.out);
    cli_result_done(&r);
}

/* ---- 4. no route, no credential ---- */

Test(broker_container, unknown_route_is_404_missing_credential_is_502, .timeout = 120)
{
    cli_result r;

    world_load();
    r = creq(0, "GET", "/nosuchroute/v1/x", "\"x-api-key: $UP_API_KEY\"");
    cr_assert_eq(status_of(r.out), 404, "%s", r.out);
    cr_assert(has(r.out, "no such route"), "%s", r.out);
    no_secret("the 404 body", r.out);
    cli_result_done(&r);

    r = creq(0, "GET", "/nocred/v1/x", "\"Authorization: Bearer $NOCRED_API_KEY\"");
    cr_assert_eq(status_of(r.out), 502, "%s", r.out);
    cr_assert(has(r.out, "credential 'absent-key' of route 'nocred' is not in the vault"), "%s",
              r.out);
    no_secret("the 502 body", r.out);
    cli_result_done(&r);

    /* A's `up` token does not open `nocred` */
    r = creq(0, "GET", "/nocred/v1/x", "\"x-api-key: $UP_API_KEY\"");
    cr_assert_eq(status_of(r.out), 403, "%s", r.out);
    cli_result_done(&r);
}

/* ---- 5. SSE streams ---- */

Test(broker_container, sse_first_event_arrives_before_the_upstream_finishes, .timeout = 120)
{
    _cleanup_free_ char *done = NULL;
    cli_result r;
    const char *first, *go, *second;

    world_load();
    /* The upstream sends "first" and then waits until /sse-go is requested. The task asks for
     * /sse-go only after it has read "first": if the broker held the stream back, the upstream
     * would finish on its 20 s timeout, not released by the task. */
    r = cexec(0,
              "H=\"x-api-key: $UP_API_KEY\"; "
              "wget -q -O - --header \"$H\" \"$UP_BASE_URL/sse\" | { "
              "  read -r l; echo \"got $l\"; "
              "  wget -q -O - --header \"$H\" \"$UP_BASE_URL/sse-go\" >/dev/null && echo go-sent; "
              "  cat; }");
    cr_assert_eq(r.exit_code, 0, "%s %s", r.out, r.err);
    first = strstr(r.out, "got data: first");
    go = strstr(r.out, "go-sent");
    second = strstr(r.out, "data: second");
    cr_assert(first && go && second && first < go && go < second, "stream: %s", r.out);
    cr_assert(has(r.out, "data: third"), "%s", r.out);
    cli_result_done(&r);
    done = last_record_with("sse_done");
    cr_assert(done, "the upstream did not finish the stream");
    cr_assert(has(done, "\"released_by_go\": true"),
              "the upstream finished on its timeout: the first event was held back (%s)", done);
}

/* ---- 5b. a WebSocket upgrade passes through, over TLS to the upstream ---- */

Test(broker_container, websocket_passes_through_with_the_real_credential, .timeout = 120)
{
    _cleanup_free_ char *rec = NULL, *done = NULL;
    cli_result r;

    world_load();
    /* busybox nc: the handshake and a payload, then its input ends (a half-close); the answer
     * and the echo still come back through the bridge, the broker and TLS */
    r = cexec(0, "printf 'GET /up/ws-echo HTTP/1.1\\r\\nHost: x\\r\\nConnection: Upgrade\\r\\n"
                 "Upgrade: websocket\\r\\nSec-WebSocket-Version: 13\\r\\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nx-api-key: %s\\r\\n\\r\\n"
                 "hello-through-tls' \"$UP_API_KEY\" | nc 127.0.0.1 9419");
    cr_assert_eq(r.exit_code, 0, "%s %s", r.out, r.err);
    cr_assert(has(r.out, "HTTP/1.1 101 Switching Protocols"), "%s", r.out);
    cr_assert(has(r.out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "%s", r.out);
    cr_assert(has(r.out, "\r\n\r\nhello-through-tls"), "no echo after the head: %s", r.out);
    no_secret("the WebSocket answer", r.out);
    cli_result_done(&r);

    rec = upstream_record("\"websocket\": true", "\"/api/ws-echo\"");
    done = last_record_with("ws_done");
    cr_assert(done && has(done, "\"echoed\": 17"), "the upstream's side: %s", done);
}

/* ---- 6. a 1 GiB upload in bounded memory ---- */

Test(broker_container, one_gib_upload_streams_in_bounded_memory, .timeout = 240)
{
    static char chunk[256 * 1024];
    char head[512], out[8192];
    struct timeval tv = {120, 0};
    long long sent = 0;
    size_t got = 0;
    long hwm;
    int fd, pid;

    world_load();
    pid = daemon_pid();
    fd = connect_unix(sock_of(0));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    snprintf(head, sizeof head,
             "POST /up/upload HTTP/1.1\r\nHost: broker\r\nx-api-key: %s\r\n"
             "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n"
             "Connection: close\r\n\r\n",
             W.a_up, GIB);
    cr_assert_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    memset(chunk, 'u', sizeof chunk);
    while (sent < GIB) {
        ssize_t k = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        cr_assert_gt(k, 0, "upload stopped after %lld bytes: %s", sent, strerror(errno));
        sent += k;
    }
    for (;;) {
        ssize_t k = read(fd, out + got, sizeof out - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    out[got] = 0;
    close(fd);
    cr_assert_eq(status_of(out), 200, "%s", out);
    cr_assert(has(out, "\"received\": 1073741824"), "the upstream did not get 1 GiB: %s", out);
    hwm = vm_kib(pid, "VmHWM");
    cr_assert_gt(hwm, 0);
    cr_assert_lt(hwm, RSS_BOUND_KIB, "the broker's peak RSS was %ld KiB for a 1 GiB upload", hwm);
    cr_log_info("1 GiB upload: the broker's peak RSS %ld KiB", hwm);
}

/* ---- 7. malformed HTTP ---- */

typedef struct bad_case {
    const char *name;
    const char *req; /* "%T" is replaced by A's token */
    int status;      /* what the broker answers; 0: it closes the connection without a word */
} bad_case;

/* Statuses are the precise ones: 400 for what is malformed, and libmicrohttpd's 413, 414,
 * 431 and 505 where HTTP has a more specific code. Binary bytes without a line get no answer:
 * libmicrohttpd closes the connection. */
static const bad_case corpus[] = {
    {"TLS bytes instead of HTTP", "\x16\x03\x01\x02\x10\x01\x11\x01\xfc\x03\x03\r\n\r\n", 0},
    {"text that is not HTTP", "hello there, broker\r\n\r\n", 400},
    {"request line without a version", "GET /up/echo\r\n\r\n", 400},
    {"HTTP/0.9 request", "GET /up/echo\r\n", 400},
    {"unknown HTTP version", "GET /up/echo HTTP/9.9\r\nHost: b\r\n\r\n", 505},
    {"header line without a colon", "GET /up/echo HTTP/1.1\r\nHost: b\r\nNoColon\r\n\r\n", 400},
    {"invalid characters in the method",
     "G(T /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"HTTP/1.1 without Host", "GET /up/echo HTTP/1.1\r\nx-api-key: %T\r\n\r\n", 400},
    {"bad chunk size",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nTransfer-Encoding: chunked\r\n\r\n"
     "ZZ\r\nhello\r\n0\r\n\r\n",
     400},
    {"chunk size overflowing 64 bits",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nTransfer-Encoding: chunked\r\n\r\n"
     "FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
     413},
    {"Content-Length not a number",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nContent-Length: abc\r\n\r\n", 400},
    {"negative Content-Length",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nContent-Length: -5\r\n\r\n", 400},
    {"Content-Length beyond 64 bits",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n"
     "Content-Length: 99999999999999999999999\r\n\r\n",
     413},
    {"two Content-Lengths (smuggling)",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nContent-Length: 5\r\n"
     "Content-Length: 6\r\n\r\nhello",
     400},
    {"Content-Length and chunked (smuggling)",
     "POST /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400},
    {"header injection: bare CR in a value",
     "GET /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nX-A: b\rInjected: yes\r\n\r\n", 400},
    {"header injection: obsolete line folding",
     "GET /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nX-A: b\r\n Injected: yes\r\n\r\n", 400},
    {"whitespace between field name and colon",
     "GET /up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\nX-A : b\r\n\r\n", 400},
    {"absolute-form URI to another host",
     "GET http://evil.example/up/echo HTTP/1.1\r\nHost: evil.example\r\nx-api-key: %T\r\n\r\n",
     400},
    {"absolute-form https URI",
     "GET https://127.0.0.1:1/up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"CONNECT to another host",
     "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nx-api-key: %T\r\n\r\n", 400},
    {"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"'..' out of the route", "GET /up/../nocred/x HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n",
     400},
    {"'..' before the route", "GET /../up/echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"'.' segment", "GET /up/./echo HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"percent-encoded '..'",
     "GET /up/%2e%2e/%2E%2E/etc/passwd HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"percent-encoded slash", "GET /up/..%2fx HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"backslash traversal", "GET /up\\..\\x HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n", 400},
    {"control character in the path", "GET /up/a\x01b HTTP/1.1\r\nHost: b\r\nx-api-key: %T\r\n\r\n",
     400},
    /* built below: a 70 KB header, 500 headers, a 100 KB URI */
    {"huge header", NULL, 431},
    {"too many headers", NULL, 431},
    {"huge URI", NULL, 414},
};

/* Append printf output at *o (within out[0, cap)); the buffer is sized for every case. */
static void put(char *out, size_t cap, char **o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(*o, cap - (size_t)(*o - out), fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < cap - (size_t)(*o - out), "test request buffer too small");
    *o += n;
}

static char *build_case(const bad_case *c, size_t *len)
{
    enum { CAP = 256 * 1024 };
    char *out = calloc(1, CAP), *o = out;

    cr_assert(out);
    if (!c->req) {
        if (strcmp(c->name, "huge header") == 0) {
            put(out, CAP, &o, "GET /up/echo HTTP/1.1\r\nHost: b\r\nX-Big: ");
            memset(o, 'a', 70000);
            o += 70000;
            put(out, CAP, &o, "\r\n\r\n");
        } else if (strcmp(c->name, "too many headers") == 0) {
            put(out, CAP, &o, "GET /up/echo HTTP/1.1\r\nHost: b\r\n");
            for (int i = 0; i < 500; i++)
                put(out, CAP, &o, "X-%d: %0100d\r\n", i, 0);
            put(out, CAP, &o, "\r\n");
        } else {
            put(out, CAP, &o, "GET /up/");
            memset(o, 'a', 100000);
            o += 100000;
            put(out, CAP, &o, " HTTP/1.1\r\nHost: b\r\n\r\n");
        }
        *len = (size_t)(o - out);
        return out;
    }
    for (const char *s = c->req; *s; s++) {
        if (s[0] == '%' && s[1] == 'T') {
            put(out, CAP, &o, "%s", W.a_up);
            s++;
        } else {
            cr_assert((size_t)(o - out) < CAP - 1);
            *o++ = *s;
        }
    }
    *len = (size_t)(o - out);
    return out;
}

Test(broker_container, malformed_requests_get_the_right_status_and_the_daemon_keeps_serving,
     .timeout = 180)
{
    static char out[256 * 1024];
    char ok[512];
    _cleanup_free_ char *log_before = NULL, *log_after = NULL;
    int pid;

    world_load();
    pid = daemon_pid();
    log_before = upstream_log();
    snprintf(ok, sizeof ok,
             "GET /up/echo?after-malformed HTTP/1.1\r\nHost: b\r\nx-api-key: %s\r\n"
             "Connection: close\r\n\r\n",
             W.a_up);
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++) {
        size_t len;
        _cleanup_free_ char *req = build_case(&corpus[i], &len);

        raw(sock_of(0), req, len, out, sizeof out);
        cr_expect_eq(corpus[i].status ? status_of(out) : (int)strlen(out), corpus[i].status,
                     "%s: expected %d, got: %.200s", corpus[i].name, corpus[i].status, out);
        no_secret(corpus[i].name, out);
        /* ... and a valid request right after is served */
        raw(sock_of(0), ok, strlen(ok), out, sizeof out);
        cr_assert_eq(status_of(out), 200, "after '%s' a valid request got: %.200s", corpus[i].name,
                     out);
    }
    cr_assert_eq(daemon_pid(), pid, "the daemon was restarted");

    /* Nothing a malformed request carried reached the upstream: no injected header, no
     * request for another route or path outside /api. */
    log_after = upstream_log();
    const char *added = log_after + strlen(log_before);
    cr_assert(!strstr(added, "\"injected\""), "an injected header reached the upstream: %s", added);
    cr_assert(!strstr(added, "passwd") && !strstr(added, "evil"), "%s", added);

    /* a percent-encoded CR LF stays encoded: a path, not a header */
    snprintf(ok, sizeof ok,
             "GET /up/echo%%0d%%0aInjected:%%20yes HTTP/1.1\r\nHost: b\r\nx-api-key: %s\r\n"
             "Connection: close\r\n\r\n",
             W.a_up);
    raw(sock_of(0), ok, strlen(ok), out, sizeof out);
    cr_assert_eq(status_of(out), 200, "%s", out);
    free(log_after);
    log_after = last_record_with("Injected:%20yes");
    cr_assert(log_after && !strstr(log_after, "\"injected\""), "%s",
              log_after ? log_after : "(nothing)");

    /* A NUL ends a header value or the request target there (libmicrohttpd hands C strings
     * over): nothing after it is forwarded. */
    {
        char b[512];
        size_t n;

        n = (size_t)snprintf(b, sizeof b,
                             "GET /up/echo?nul-probe HTTP/1.1\r\nHost: b\r\n"
                             "X-A: before");
        b[n++] = 0;
        n += (size_t)snprintf(b + n, sizeof b - n,
                              "after-nul\r\nx-api-key: %s\r\nConnection: close\r\n\r\n", W.a_up);
        raw(sock_of(0), b, n, out, sizeof out);
        cr_assert_eq(status_of(out), 200, "%s", out);
        free(log_after);
        log_after = last_record_with("nul-probe");
        cr_assert(log_after && strstr(log_after, "\"before\"") && !strstr(log_after, "after-nul"),
                  "%s", log_after ? log_after : "(nothing)");
    }
}

/* ---- 8. the audit ---- */

static json_object *audit_row(json_object *arr, const char *path)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *p;
        if (json_object_object_get_ex(e, "path", &p) && p &&
            strcmp(json_object_get_string(p), path) == 0)
            return e;
    }
    return NULL;
}

static const char *field(json_object *e, const char *k)
{
    json_object *v = NULL;

    cr_assert(json_object_object_get_ex(e, k, &v), "no '%s' in %s", k,
              json_object_to_json_string(e));
    return v ? json_object_get_string(v) : "(null)";
}

Test(broker_container, every_request_is_audited_without_secrets, .timeout = 120)
{
    char q[1024], body[64], ok_path[128], bad_path[128];
    json_object *arr = NULL, *ok_row = NULL, *bad_row = NULL;
    cli_result r;

    world_load();
    snprintf(body, sizeof body, "audit-%d", (int)getpid());
    snprintf(q, sizeof q,
             "wget -q -O - --header \"x-api-key: $UP_API_KEY\" --post-data %s "
             "\"$UP_BASE_URL/echo/%s\"",
             body, body);
    r = cexec(0, q);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cli_result_done(&r);
    snprintf(q, sizeof q, "/up/echo/%s-nokey", body);
    r = creq(0, "GET", q, NULL);
    cr_assert_eq(status_of(r.out), 401, "%s", r.out);
    cli_result_done(&r);

    /* what the operator reads: `vault audit`; the daemon writes rows in batches (every
     * 200 ms), so wait for both, 10 s at most */
    snprintf(ok_path, sizeof ok_path, "/echo/%s", body);
    snprintf(bad_path, sizeof bad_path, "/echo/%s-nokey", body);
    for (int i = 0; i < 100 && !(ok_row && bad_row); i++) {
        json_object_put(arr);
        r = CLI("vault", "audit", "--container", W.name[0], "--json");
        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        arr = json_tokener_parse(r.out);
        cr_assert(arr, "not JSON: %s", r.out);
        cli_result_done(&r);
        ok_row = audit_row(arr, ok_path);
        bad_row = audit_row(arr, bad_path);
        if (!(ok_row && bad_row))
            usleep(100 * 1000);
    }
    cr_assert(ok_row, "no audit row for the request");
    cr_assert_str_eq(field(ok_row, "container"), W.name[0]);
    cr_assert_str_eq(field(ok_row, "route"), "up");
    cr_assert_str_eq(field(ok_row, "method"), "POST");
    cr_assert_str_eq(field(ok_row, "status"), "200");
    cr_assert_str_eq(field(ok_row, "outcome"), "ok");
    cr_assert_eq(atoll(field(ok_row, "bytes_in")), (long long)strlen(body), "bytes in");
    cr_assert_gt(atoll(field(ok_row, "bytes_out")), 0, "bytes out");
    cr_assert_gt(atoll(field(ok_row, "duration_us")), 0, "duration");
    cr_assert(bad_row, "no audit row for the refused request");
    cr_assert_str_eq(field(bad_row, "status"), "401");
    cr_assert_str_eq(field(bad_row, "outcome"), "missing-token");
    json_object_put(arr);

    /* the table form shows the same */
    r = CLI("vault", "audit", "--container", W.name[0]);
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    cr_assert(has(r.out, ok_path) && has(r.out, "missing-token"), "%s", r.out);
    cli_result_done(&r);

    /* no row of the whole audit holds the real credential or a phantom token */
    r = CLI("vault", "audit", "--limit", "1000000", "--json");
    cr_assert_eq(r.exit_code, 0, "%s", r.err);
    arr = json_tokener_parse(r.out);
    cr_assert(arr && json_object_array_length(arr) >= 2, "%s", r.out);
    json_object_put(arr);
    no_secret("the audit", r.out);
    cr_assert(!has(r.out, "terok-p-"), "the audit holds a phantom token");
    cli_result_done(&r);

    /* the broker's log names no secret either */
    {
        FILE *f = fopen(wpath("state/logs/vault.log"), "re");
        static char logbuf[1 << 20];
        size_t n = f ? fread(logbuf, 1, sizeof logbuf - 1, f) : 0;

        if (f)
            fclose(f);
        logbuf[n] = 0;
        no_secret("the broker's log", logbuf);
        cr_assert(!strstr(logbuf, W.a_up + 8), "the broker's log holds a phantom token");
    }
}

/* ---- the world: built before the tests, removed after ---- */

static pid_t upstream = -1;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "broker-container setup: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(1);
}

static void run_ok(cli_result r, const char *what)
{
    if (r.exit_code != 0)
        die(what, r.err);
    cli_result_done(&r);
}

static void file_write(const char *rel, const char *text, mode_t mode)
{
    int fd = open(wpath(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        die("cannot write", wpath(rel));
    close(fd);
}

static void token_of(int i, const char *var, char *out, size_t n)
{
    char s[64];
    cli_result r;

    snprintf(s, sizeof s, "echo \"$%s\"", var);
    r = CLI("exec", W.name[i], "sh", "-c", s);
    if (r.exit_code != 0 || strncmp(r.out, "terok-p-", 8) != 0)
        die(var, r.out);
    r.out[strcspn(r.out, "\n")] = 0;
    snprintf(out, n, "%s", r.out);
    cli_result_done(&r);
}

static void world_setup(void)
{
    char conf[4096], script[2048], port[16] = "";
    const char *src = getenv("TEROK_TEST_SOURCE_DIR");
    unsigned char rnd[16];
    FILE *f;

    if (geteuid() != 0 || access("/usr/bin/podman", X_OK) != 0 ||
        access("/var/tmp/terok-busybox.tar", R_OK) != 0)
        die("needs root, podman and /var/tmp/terok-busybox.tar (scripts/setup-host.sh)", NULL);
    if (!src || !getenv("TEROK_TEST_CLI") || !getenv("TEROK_TEST_PLUGIN_DIR"))
        die("run through meson test", NULL);
    snprintf(W.dir, sizeof W.dir, "/tmp/terok-bc.XXXXXX");
    if (!mkdtemp(W.dir))
        die("mkdtemp", strerror(errno));
    setenv("TEROK_SANDBOX_STATE_DIR", wpath("state"), 1);
    setenv("TEROK_SANDBOX_RUNTIME_DIR", wpath("run"), 1);
    setenv("TEROK_SANDBOX_CONFIG", wpath("sandbox.conf"), 1);
    setenv("HOME", W.dir, 1);
    for (int i = 0; i < 3; i++)
        snprintf(W.name[i], sizeof W.name[i], "bc%d-%c", (int)getpid(), 'a' + i);
    f = fopen("/dev/urandom", "re");
    if (!f || fread(rnd, sizeof rnd, 1, f) != 1)
        die("no /dev/urandom", NULL);
    fclose(f);
    snprintf(W.real, sizeof W.real, "sk-real-");
    for (size_t i = 0; i < sizeof rnd; i++) {
        size_t at = strlen(W.real);
        snprintf(W.real + at, sizeof W.real - at, "%02x", rnd[i]);
    }

    /* a CA of our own and a server certificate for 127.0.0.1 */
    snprintf(script, sizeof script,
             "set -e; cd '%s'; "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=terok-test-ca -keyout ca.key -out ca.pem; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-subj /CN=127.0.0.1 -keyout server.key -out server.csr; "
             "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
             "extendedKeyUsage=serverAuth\\n' > ext.cnf; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile ext.cnf -out server.pem",
             W.dir);
    run_ok(test_run(NULL, (const char *const[]){"sh", "-c", script, NULL}), "openssl");

    /* the HTTPS upstream */
    upstream = fork();
    if (upstream == 0) {
        char py[1024];
        snprintf(py, sizeof py, "%s/tests/integration/broker-upstream.py", src);
        execl("/usr/bin/python3", "python3", py, wpath("server.pem"), wpath("server.key"),
              wpath("upstream.log"), wpath("upstream.port"), (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port[0]; i++) {
        f = fopen(wpath("upstream.port"), "re");
        if (f) {
            if (!fgets(port, sizeof port, f))
                port[0] = 0;
            fclose(f);
        } else
            usleep(50000);
    }
    if (!port[0])
        die("the upstream did not start", NULL);

    /* Podman with storage of our own (rm -rf of the directory removes everything) */
    snprintf(script, sizeof script,
             "#!/bin/sh\nexec /usr/bin/podman --root %s/podman/root --runroot %s/podman/runroot "
             "--tmpdir %s/podman/tmp \"$@\"\n",
             W.dir, W.dir, W.dir);
    file_write("podman.sh", script, 0755);
    run_ok(test_run(NULL, (const char *const[]){"timeout", "120", wpath("podman.sh"), "import",
                                                "-q", "/var/tmp/terok-busybox.tar", IMG, NULL}),
           "importing the test image");

    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n"
             "[runtime]\nbackend = podman\n"
             "[runtime.podman]\nsocket = private\ntimeout = 120s\nservice-idle = 30s\n"
             "podman = %s\n"
             "[vault]\nbackend = sqlite\nca-file = %s\n"
             "[vault.sqlite]\nkey-sources = key-file\n"
             "[shield]\nbackend = none\n"
             "[route.up]\nupstream = https://127.0.0.1:%s/api\nauth-header = x-api-key\n"
             "credential = up-key\ntoken-env = UP_API_KEY\nbase-url-env = UP_BASE_URL\n"
             "[route.nocred]\nupstream = https://127.0.0.1:%s/api\ncredential = absent-key\n"
             "token-env = NOCRED_API_KEY\nbase-url-env = NOCRED_BASE_URL\n",
             getenv("TEROK_TEST_PLUGIN_DIR"), wpath("podman.sh"), wpath("ca.pem"), port, port);
    file_write("sandbox.conf", conf, 0600);
    run_ok(cli(W.real, (const char *const[]){"vault", "add", "up-key", NULL}), "vault add");

    run_ok(CLI("run", "-d", "--name", W.name[0], IMG, "sleep", "600"), "run A");
    run_ok(CLI("run", "-d", "--name", W.name[1], "--token-ttl", "1s", IMG, "sleep", "600"),
           "run B");
    run_ok(CLI("run", "-d", "--name", W.name[2], IMG, "sleep", "600"), "run C");
    token_of(0, "UP_API_KEY", W.a_up, sizeof W.a_up);
    token_of(0, "NOCRED_API_KEY", W.a_nocred, sizeof W.a_nocred);
    token_of(1, "UP_API_KEY", W.b_up, sizeof W.b_up);
    token_of(2, "UP_API_KEY", W.c_up, sizeof W.c_up);
    {
        cli_result r = CLI("vault", "tokens", "list", "--container", W.name[1], "--json");
        json_object *arr = json_tokener_parse(r.out), *e, *v;

        if (!arr || json_object_array_length(arr) == 0 ||
            !(e = json_object_array_get_idx(arr, 0)) ||
            !json_object_object_get_ex(e, "expires_at", &v) || !v)
            die("B's tokens have no expiry", r.out);
        W.b_expires = json_object_get_int64(v);
        json_object_put(arr);
        cli_result_done(&r);
    }
    world_save();
}

static void world_teardown(void)
{
    cli_result r;

    if (!W.dir[0])
        return;
    for (int i = 0; i < 3; i++) {
        r = CLI("rm", "-f", W.name[i]);
        cli_result_done(&r);
    }
    r = CLI("vault", "stop");
    cli_result_done(&r);
    test_stop_private_podman(W.dir);
    if (upstream > 0) {
        kill(upstream, SIGKILL);
        waitpid(upstream, NULL, 0);
    }
    /* Podman leaves a conmon per exec session that runs `podman container cleanup` against our
     * storage five minutes later (--exit-delay 300), recreating the directory we remove: stop
     * every process whose command line names our directory (only ours can) */
    {
        DIR *d = opendir("/proc");
        struct dirent *de;

        while (d && (de = readdir(d))) {
            char p[64], cmd[8192];
            char *end;
            long other = strtol(de->d_name, &end, 10);
            ssize_t n;
            int fd;

            if (*end || other <= 1 || other > INT_MAX || other == getpid())
                continue;
            snprintf(p, sizeof p, "/proc/%ld/cmdline", other);
            fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            n = read(fd, cmd, sizeof cmd);
            close(fd);
            if (n > 0 && memmem(cmd, (size_t)n, W.dir, strlen(W.dir)))
                kill((pid_t)other, SIGKILL);
        }
        if (d)
            closedir(d);
    }
    /* the overlay driver leaves its storage mounted: detach every mount under our directory */
    for (int pass = 0; pass < 4; pass++) {
        FILE *m = fopen("/proc/self/mounts", "re");
        char line[8192], mp[4096];
        size_t n = strlen(W.dir);
        bool any = false;

        while (m && fgets(line, sizeof line, m))
            if (sscanf(line, "%*s %4095s", mp) == 1 && strncmp(mp, W.dir, n) == 0 &&
                umount2(mp, MNT_DETACH) == 0)
                any = true;
        if (m)
            fclose(m);
        if (!any)
            break;
    }
    r = test_run(NULL, (const char *const[]){"rm", "-rf", W.dir, NULL});
    cli_result_done(&r);
}

/* BoxFort runs each test in a fresh exec of this binary and patches `main` to jump to the
 * test instead: it finds it in the dynamic symbol table, so main must be exported (the build
 * hides symbols by default). Only the runner gets here. */
__attribute__((visibility("default"))) int main(int argc, char *argv[]);
__attribute__((visibility("default"))) int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;

    if (criterion_handle_args(argc, argv, true)) {
        world_setup();
        result = !criterion_run_all_tests(tests);
        world_teardown();
    }
    criterion_finalize(tests);
    return result;
}
