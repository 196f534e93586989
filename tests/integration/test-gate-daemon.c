/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate-daemon.c: the gate daemon (terok-sandbox gate serve) with the real gate-git backend
 * and the host's real `git` over its loopback TCP listeners: clone, fetch, push, force-push
 * (backup made), protocol v2, a push of a > 1 MiB pack with default git settings (chunked
 * request body), 401/403 for missing, foreign and read-only tokens; a table of hostile request
 * paths and headers answered 400/401/403/404/405 while the daemon keeps serving; container
 * sockets opened over the control socket and reopened after a restart; every request audited;
 * no token in the daemon's log. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "gate-serve/gate-client.h"
#include "gate.h"
#include "sandbox.h"
#include "terok-test.h"
#include "tokens.h"

extern char **environ;

/* ---------- the world: a sandbox, two projects, tokens, a daemon ---------- */

typedef struct world {
    const char *config;
    sandbox *sb;
    gate g;
    char tok_a[TOKEN_TEXT_MAX + 1];       /* ctr-a, demo, read-write */
    char tok_a_other[TOKEN_TEXT_MAX + 1]; /* ctr-a, other, read-write */
    char tok_b[TOKEN_TEXT_MAX + 1];       /* ctr-b, demo, read-write */
    char tok_r[TOKEN_TEXT_MAX + 1];       /* ctr-r, demo, read only */
    uint16_t port_a, port_r;
    pid_t daemon;
    char log[512];
} world;

static world W;

static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void mint(const char *container, const char *repo, uint32_t rights, char *out)
{
    terok_error err = TEROK_ERROR_INIT;
    uint8_t key[TOKEN_KEY_BYTES];
    terok_secret *t = NULL;
    const void *p;
    size_t n;
    store *st;

    terok_assert_ok(sandbox_store(W.sb, &st, &err), &err);
    terok_assert_ok(tokens_key_load(W.sb->paths.state_dir, key, &err), &err);
    token_binding b = {TOKEN_KIND_GATE, container, repo, rights, 0};
    terok_assert_ok(tokens_mint(store_sqlite(st), key, &b, &t, NULL, &err), &err);
    terok_secret_peek(t, &p, &n);
    cr_assert(n <= TOKEN_TEXT_MAX);
    memcpy(out, p, n);
    out[n] = 0;
    terok_secret_free(t);
    terok_assert_ok(gate_grant(&W.g, container, repo, rights, &err), &err);
}

static void daemon_start(void)
{
    const char *cli = getenv("TEROK_TEST_CLI");
    char tcp_a[64], tcp_r[64];
    int i;

    cr_assert(cli, "TEROK_TEST_CLI not set (run through meson test)");
    snprintf(tcp_a, sizeof tcp_a, "127.0.0.1:%u=ctr-a", W.port_a);
    snprintf(tcp_r, sizeof tcp_r, "127.0.0.1:%u=ctr-r", W.port_r);
    const char *argv[] = {cli,     "--config",     W.config, "--log-level", "debug", "gate",
                          "serve", "--foreground", "--tcp",  tcp_a,         "--tcp", tcp_r,
                          NULL};
    W.daemon = fork();
    cr_assert(W.daemon >= 0);
    if (W.daemon == 0) {
        /* dies with the test process, even when a test crashes before its teardown */
        int fd = open(W.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    for (i = 0; i < 200; i++) {
        if (gate_client_ping(W.sb, NULL) == 0)
            break;
        int st;
        cr_assert(waitpid(W.daemon, &st, WNOHANG) == 0, "the gate daemon exited at start");
        usleep(25 * 1000);
    }
    cr_assert(i < 200, "the gate daemon did not answer");
}

static void daemon_stop(void)
{
    int st;

    if (W.daemon <= 0)
        return;
    kill(W.daemon, SIGTERM);
    cr_assert(waitpid(W.daemon, &st, 0) == W.daemon);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gate daemon exit status %d", st);
    W.daemon = 0;
}

static void world_setup(void)
{
    terok_error err = TEROK_ERROR_INIT;

    test_tmpdir_setup();
    memset(&W, 0, sizeof W);
    W.config = strdup(test_write_config("[gate]\nbackend = git\n"));
    snprintf(W.log, sizeof W.log, "%s", test_path("gate.log"));
    terok_assert_ok(sandbox_open(W.config, &W.sb, &err), &err);
    terok_assert_ok(gate_open(W.sb->registry, TEROK_GATE_CAP_SMART_HTTP, &W.g, &err), &err);
    terok_gate_repo_spec demo = {.struct_size = sizeof demo, .name = "demo", .branch = "main"};
    terok_gate_repo_spec other = {.struct_size = sizeof other, .name = "other", .branch = "main"};
    terok_assert_ok(gate_repo_create(&W.g, &demo, &err), &err);
    terok_assert_ok(gate_repo_create(&W.g, &other, &err), &err);
    mint("ctr-a", "demo", TEROK_GATE_READ | TEROK_GATE_WRITE, W.tok_a);
    mint("ctr-a", "other", TEROK_GATE_READ | TEROK_GATE_WRITE, W.tok_a_other);
    mint("ctr-b", "demo", TEROK_GATE_READ | TEROK_GATE_WRITE, W.tok_b);
    mint("ctr-r", "demo", TEROK_GATE_READ, W.tok_r);
    W.port_a = free_port();
    W.port_r = free_port();
    mkdir(test_path("home"), 0700);
    test_write_file("home/.gitconfig",
                    "[user]\n\tname = Gate Test\n\temail = gate@test.invalid\n"
                    "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
                    0644);
    setenv("HOME", test_path("home"), 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    setenv("GIT_ASKPASS", "/bin/false", 1);
    unsetenv("GIT_TRACE_PACKET");
    unsetenv("GIT_TRACE_CURL");
    daemon_start();
}

static void world_teardown(void)
{
    daemon_stop();
    if (W.sb) /* one that `run --repo` started */
        (void)gate_client_stop(W.sb, NULL);
    W.sb = sandbox_free(W.sb);
    free((char *)W.config);
    test_tmpdir_teardown();
}

TestSuite(gate_daemon, .init = world_setup, .fini = world_teardown, .timeout = 240);

/* ---------- helpers ---------- */

static char *url(uint16_t port, const char *tok, const char *repo)
{
    char *u = NULL;

    cr_assert(asprintf(&u, "http://%s%s127.0.0.1:%u/%s.git", tok ? tok : "", tok ? "@" : "", port,
                       repo) > 0);
    return u;
}

/* git with argv, in dir; output captured. */
static cli_result git(const char *dir, const char *const *args)
{
    const char *argv[32] = {"git", "-C", dir};
    size_t n = 3;

    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return test_run(NULL, argv);
}
#define GIT(dir, ...) git(dir, (const char *const[]){__VA_ARGS__, NULL})

static void git_ok(const char *dir, const char *const *args)
{
    cli_result r = git(dir, args);

    cr_assert(r.exit_code == 0, "git %s %s failed (%d): %s", args[0], args[1] ? args[1] : "",
              r.exit_code, r.err);
    cli_result_done(&r);
}
#define GIT_OK(dir, ...) git_ok(dir, (const char *const[]){__VA_ARGS__, NULL})

static const char *local_repo(const char *name)
{
    const char *d = test_path(name);
    static char keep[4][512];
    static int k;
    char *p = keep[k++ % 4];

    snprintf(p, 512, "%s", d);
    mkdir(p, 0700);
    GIT_OK(p, "init", "-q", "-b", "main");
    return p;
}

static void commit_file(const char *repo, const char *file, const char *content, const char *msg)
{
    char rel[600];

    snprintf(rel, sizeof rel, "%s/%s", repo + strlen(test_tmp) + 1, file);
    test_write_file(rel, content, 0644);
    GIT_OK(repo, "add", file);
    GIT_OK(repo, "commit", "-q", "-m", msg);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *b = NULL;
    size_t n = 0;

    if (!f)
        return strdup("");
    if (getdelim(&b, &n, 0, f) < 0) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b ? b : strdup("");
}

static void seed_demo(void)
{
    const char *src = local_repo("seed");
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo");

    commit_file(src, "README", "hello gate\n", "first");
    GIT_OK(src, "push", "-q", u, "HEAD:refs/heads/main");
}

/* ---------- git end to end ---------- */

Test(gate_daemon, push_clone_fetch_protocol_v2)
{
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo"), *trace = NULL, *readme = NULL;
    char env_trace[600];
    cli_result r;

    seed_demo();
    snprintf(env_trace, sizeof env_trace, "GIT_TRACE_PACKET=%s", test_path("packet.trace"));
    const char *argv[] = {"env", env_trace, "git", "clone", "-q", u, test_path("clone"), NULL};
    r = test_run(NULL, argv);
    cr_assert(r.exit_code == 0, "clone failed: %s", r.err);
    cli_result_done(&r);
    readme = slurp(test_path("clone/README"));
    cr_assert_str_eq(readme, "hello gate\n");
    trace = slurp(test_path("packet.trace"));
    cr_assert(strstr(trace, "version 2"), "protocol v2 not negotiated:\n%.2000s", trace);
    cr_assert(strstr(trace, "ls-refs"), "no v2 ls-refs command in the trace");

    /* a second push from the seed, then fetch it in the clone */
    commit_file(test_path("seed"), "second", "2\n", "second");
    GIT_OK(test_path("seed"), "push", "-q", u, "HEAD:refs/heads/main");
    GIT_OK(test_path("clone"), "fetch", "-q", "origin");
    r = GIT(test_path("clone"), "log", "--format=%s", "origin/main");
    cr_assert(r.exit_code == 0);
    cr_assert(strstr(r.out, "second") && strstr(r.out, "first"), "fetched log: %s", r.out);
    cli_result_done(&r);
}

static int count_json(void *ud, const char *json)
{
    (*(int *)ud)++;
    return 0;
}

Test(gate_daemon, force_push_makes_a_backup)
{
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo");
    terok_error err = TEROK_ERROR_INIT;
    int before = 0, after = 0;
    cli_result r;

    seed_demo();
    terok_assert_ok(gate_backups_list(&W.g, "demo", count_json, &before, &err), &err);
    GIT_OK(test_path("seed"), "commit", "-q", "--amend", "-m", "rewritten");
    r = GIT(test_path("seed"), "push", "-q", u, "HEAD:refs/heads/main");
    cr_assert(r.exit_code != 0, "a non-fast-forward push without --force must be refused");
    cli_result_done(&r);
    GIT_OK(test_path("seed"), "push", "-q", "--force", u, "HEAD:refs/heads/main");
    terok_assert_ok(gate_backups_list(&W.g, "demo", count_json, &after, &err), &err);
    cr_assert(after == before + 1, "backups before %d, after %d", before, after);
}

Test(gate_daemon, big_push_with_default_settings_is_chunked)
{
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo"), *trace = NULL;
    const char *src = local_repo("big");
    unsigned char *blob = malloc(3 << 20);
    char env_trace[600];
    cli_result r;
    FILE *f;

    /* 3 MiB of noise: the pack cannot compress below git's 1 MiB http.postBuffer */
    randombytes_buf(blob, 3 << 20);
    f = fopen(test_path("big/blob.bin"), "we");
    cr_assert(f && fwrite(blob, 1, 3 << 20, f) == 3 << 20);
    fclose(f);
    free(blob);
    GIT_OK(src, "add", "blob.bin");
    GIT_OK(src, "commit", "-q", "-m", "big");
    snprintf(env_trace, sizeof env_trace, "GIT_TRACE_CURL=%s", test_path("curl.trace"));
    const char *argv[] = {"env", env_trace, "GIT_TRACE_CURL_NO_DATA=1", "git", "-C", src, "push",
                          "-q",  u,         "HEAD:refs/heads/big",      NULL};
    r = test_run(NULL, argv);
    cr_assert(r.exit_code == 0, "big push failed: %s", r.err);
    cli_result_done(&r);
    trace = slurp(test_path("curl.trace"));
    cr_assert(strcasestr(trace, "Transfer-Encoding: chunked"),
              "git did not send a chunked body (trace %.1500s)", trace);
    /* it landed: a fresh clone has the blob */
    GIT_OK(test_tmp, "clone", "-q", "-b", "big", u, test_path("bigclone"));
    struct stat stt;
    cr_assert(stat(test_path("bigclone/blob.bin"), &stt) == 0 && stt.st_size == 3 << 20);
}

Test(gate_daemon, tokens_of_others_and_read_grants_are_refused)
{
    _cleanup_free_ char *none = url(W.port_a, NULL, "demo"), *b = url(W.port_a, W.tok_b, "demo"),
                        *other = url(W.port_a, W.tok_a_other, "demo"),
                        *ro = url(W.port_r, W.tok_r, "demo"),
                        *a_on_r = url(W.port_r, W.tok_a, "demo");
    cli_result r;

    seed_demo();
    r = GIT(test_tmp, "ls-remote", none);
    cr_assert(r.exit_code != 0 && strstr(r.err, "could not read Username"), "no token: %d %s",
              r.exit_code, r.err);
    cli_result_done(&r);
    r = GIT(test_tmp, "ls-remote", b);
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "other task's token: %s", r.err);
    cli_result_done(&r);
    r = GIT(test_tmp, "ls-remote", other);
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "token for another repo: %s", r.err);
    cli_result_done(&r);
    r = GIT(test_tmp, "ls-remote", a_on_r);
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "token on another socket: %s", r.err);
    cli_result_done(&r);

    /* read grant: clone works, push is refused */
    GIT_OK(test_tmp, "clone", "-q", ro, test_path("roclone"));
    commit_file(test_path("roclone"), "x", "x\n", "from a read-only task");
    r = GIT(test_path("roclone"), "push", "-q", "origin", "HEAD:refs/heads/main");
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "read-only push: %d %s", r.exit_code,
              r.err);
    cli_result_done(&r);
}

/* ---------- hostile requests, raw on the socket ---------- */

static int raw_request(uint16_t port, const char *req, size_t len, char *head, size_t cap)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
    size_t got = 0;
    ssize_t k;

    cr_assert(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    for (size_t off = 0; off < len; off += (size_t)k) {
        /* the daemon may answer and close before a big request is all written: that is a
         * status to check, not a SIGPIPE that kills the test without a word */
        k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
    }
    shutdown(fd, SHUT_WR);
    while (got + 1 < cap && (k = read(fd, head + got, cap - 1 - got)) > 0)
        got += (size_t)k;
    head[got] = 0;
    close(fd);
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

static char *basic(const char *userpass)
{
    char *out = malloc(256);

    sodium_bin2base64(out, 256, (const unsigned char *)userpass, strlen(userpass),
                      sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* Plain data (Criterion copies parameters into the test's process). */
typedef struct hostile {
    char name[32];
    char method[8];
    char target[96];
    int auth;        /* 0 none, 1 ctr-a's demo token as user, 2 as password, 3 raw header below */
    char extra[128]; /* header lines, each ending in \r\n; "BIG": 300 KiB of header */
    int status;      /* expected; 4 = any 4xx */
} hostile;

static const hostile cases[] = {
    {"ok", "GET", "/demo.git/info/refs?service=git-upload-pack", 1, "", 200},
    {"token-as-password", "GET", "/demo.git/info/refs?service=git-upload-pack", 2, "", 200},
    {"no-token", "GET", "/demo.git/info/refs?service=git-upload-pack", 0, "", 401},
    {"bearer", "GET", "/demo.git/info/refs?service=git-upload-pack", 3,
     "Authorization: Bearer terok-g-AAAA\r\n", 401},
    {"basic-garbage", "GET", "/demo.git/info/refs?service=git-upload-pack", 3,
     "Authorization: Basic !!!***\r\n", 401},
    {"unknown-token", "GET", "/demo.git/info/refs?service=git-upload-pack", 3,
     "Authorization: Basic "
     "dGVyb2stZy1BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE6\r\n",
     401},
    {"dumb-refs", "GET", "/demo.git/info/refs", 1, "", 404},
    {"extra-arg", "GET", "/demo.git/info/refs?service=git-upload-pack&x=1", 1, "", 404},
    {"bad-service", "GET", "/demo.git/info/refs?service=git-daemon", 1, "", 404},
    {"head", "GET", "/demo.git/HEAD", 1, "", 404},
    {"objects", "GET", "/demo.git/objects/info/packs", 1, "", 404},
    {"config", "GET", "/demo.git/config", 1, "", 404},
    {"root", "GET", "/", 1, "", 404},
    {"no-dotgit", "GET", "/demo/info/refs?service=git-upload-pack", 1, "", 404},
    {"uppercase", "GET", "/Demo.git/info/refs?service=git-upload-pack", 1, "", 404},
    {"double-git", "GET", "/demo.git.git/info/refs?service=git-upload-pack", 1, "", 404},
    {"dotdot", "GET", "/../demo.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"dotdot-inner", "GET", "/demo.git/../other.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"dot", "GET", "/./demo.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"pct-name", "GET", "/%64emo.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"pct-slash", "GET", "/demo.git%2finfo%2frefs?service=git-upload-pack", 1, "", 400},
    {"pct-dotdot", "GET", "/%2e%2e/demo.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"double-slash", "GET", "//demo.git/info/refs?service=git-upload-pack", 1, "", 400},
    {"inner-double-slash", "GET", "/demo.git//info/refs?service=git-upload-pack", 1, "", 400},
    {"backslash", "GET", "/demo.git\\info/refs?service=git-upload-pack", 1, "", 400},
    {"absolute-uri", "GET", "http://evil/demo.git/info/refs?service=git-upload-pack", 1, "", 4},
    {"put", "PUT", "/demo.git/git-upload-pack", 1, "Content-Length: 0\r\n", 405},
    {"delete", "DELETE", "/demo.git/git-receive-pack", 1, "", 405},
    {"get-rpc", "GET", "/demo.git/git-upload-pack", 1, "", 405},
    {"post-refs", "POST", "/demo.git/info/refs?service=git-upload-pack", 1, "Content-Length: 0\r\n",
     405},
    {"post-query", "POST", "/demo.git/git-upload-pack?x=1", 1, "Content-Length: 0\r\n", 400},
    {"cl-and-te", "POST", "/demo.git/git-upload-pack", 1,
     "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400},
    {"two-cl", "POST", "/demo.git/git-upload-pack", 1, "Content-Length: 0\r\nContent-Length: 4\r\n",
     4},
    {"bad-chunk", "POST", "/demo.git/git-upload-pack", 1, "Transfer-Encoding: chunked\r\n", 4},
    {"huge-header", "GET", "/demo.git/info/refs?service=git-upload-pack", 1, "BIG", 4},
    {"other-repo", "GET", "/other.git/info/refs?service=git-upload-pack", 1, "", 403},
    {"push-advert-of-other", "GET", "/other.git/info/refs?service=git-receive-pack", 1, "", 403},
};

ParameterizedTestParameters(gate_daemon, hostile_requests)
{
    return cr_make_param_array(hostile, cases, ELEMENTSOF(cases));
}

ParameterizedTest(const hostile *h, gate_daemon, hostile_requests)
{
    _cleanup_free_ char *auth = NULL, *req = NULL, *big = NULL, *up = NULL;
    char head[8192];
    int status, n;

    if (h->auth == 1 || h->auth == 2) {
        char pair[200];
        snprintf(pair, sizeof pair, h->auth == 1 ? "%s:" : "x-access-token:%s", W.tok_a);
        up = basic(pair);
        cr_assert(asprintf(&auth, "Authorization: Basic %s\r\n", up) > 0);
    }
    if (streq(h->extra, "BIG")) { /* 300 KiB of header: over the connection's memory */
        big = malloc(300 * 1024 + 16);
        memcpy(big, "X-Big: ", 7);
        memset(big + 7, 'a', 300 * 1024);
        memcpy(big + 7 + 300 * 1024, "\r\n", 3);
    }
    n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n%s", h->method, h->target,
                 auth ? auth : "", big ? big : h->extra, "Connection: close\r\n",
                 strstr(h->name, "bad-chunk") ? "zz\r\nhello\r\n0\r\n\r\n" : "");
    cr_assert(n > 0);
    status = raw_request(W.port_a, req, (size_t)n, head, sizeof head);
    if (h->status == 4)
        cr_assert(status >= 400 && status < 500, "%s: got %d", h->name, status);
    else if (status != h->status) {
        _cleanup_free_ char *log = slurp(W.log);
        size_t ln = log ? strlen(log) : 0;
        cr_assert_fail("%s: got %d, want %d\n%.400s\ndaemon log (end):\n%s", h->name, status,
                       h->status, head, log ? log + (ln > 2000 ? ln - 2000 : 0) : "(none)");
    }
    if (status == 401)
        cr_assert(strstr(head, "WWW-Authenticate: Basic realm=\"terok-gate\""),
                  "%s: 401 without a Basic challenge", h->name);
    if (status == 405)
        cr_assert(strstr(head, strstr(h->target, "info/refs") ? "Allow: GET" : "Allow: POST"),
                  "%s: 405 without the right Allow header:\n%.300s", h->name, head);
    cr_assert(!strstr(head, W.tok_a), "%s: the token came back in the answer", h->name);

    /* and the daemon still serves */
    char pair[200];
    _cleanup_free_ char *req2 = NULL, *up2 = NULL;
    snprintf(pair, sizeof pair, "%s:", W.tok_a);
    up2 = basic(pair);
    n = asprintf(&req2,
                 "GET /demo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Basic %s\r\nConnection: close\r\n\r\n",
                 up2);
    cr_assert_eq(raw_request(W.port_a, req2, (size_t)n, head, sizeof head), 200);
}

/* ---------- control socket, unix sockets, restart, audit, log ---------- */

static int unix_status(const char *path, const char *req)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char head[4096];
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
    size_t got = 0;
    ssize_t k;

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -errno;
    }
    cr_assert(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    while (got + 1 < sizeof head && (k = read(fd, head + got, sizeof head - 1 - got)) > 0)
        got += (size_t)k;
    head[got] = 0;
    close(fd);
    sscanf(head, "HTTP/1.%*d %d", &status);
    return status;
}

Test(gate_daemon, container_socket_open_close_and_restart)
{
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *sock = NULL, *req = NULL, *up = NULL;
    char pair[200];
    struct stat st;
    store *s;

    snprintf(pair, sizeof pair, "%s:", W.tok_a);
    up = basic(pair);
    cr_assert(asprintf(&req,
                       "GET /demo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Basic %s\r\nConnection: close\r\n\r\n",
                       up) > 0);
    cr_assert(gate_socket_path(W.sb->paths.runtime_dir, "ctr-a", &sock) == 0);
    terok_assert_ok(gate_client_open(W.sb, "ctr-a", &err), &err);
    cr_assert(stat(sock, &st) == 0 && (st.st_mode & 07777) == 0666, "socket mode %o",
              st.st_mode & 07777);
    cr_assert_eq(unix_status(sock, req), 200);
    /* ctr-b's socket refuses ctr-a's token: the socket is the identity */
    _cleanup_free_ char *sock_b = NULL;
    cr_assert(gate_socket_path(W.sb->paths.runtime_dir, "ctr-b", &sock_b) == 0);
    terok_assert_ok(gate_client_open(W.sb, "ctr-b", &err), &err);
    cr_assert_eq(unix_status(sock_b, req), 403);

    /* a recorded container's socket comes back after a restart */
    terok_assert_ok(sandbox_store(W.sb, &s, &err), &err);
    container_rec rec = {
        .name = "ctr-a", .image = "img", .runtime = "null", .spec_json = "{}", .created_at = 1};
    terok_assert_ok(store_container_add(s, &rec, &err), &err);
    daemon_stop();
    cr_assert(unix_status(sock, req) < 0, "the socket still answers with the daemon gone");
    daemon_start();
    cr_assert_eq(unix_status(sock, req), 200);
    cr_assert(unix_status(sock_b, req) < 0, "ctr-b has no record: its socket must stay closed");

    terok_assert_ok(gate_client_close(W.sb, "ctr-a", &err), &err);
    cr_assert(unix_status(sock, req) < 0, "closed socket still answers");
}

static int audit_cb(void *ud, int ncol, char **vals, char **names)
{
    char **acc = ud, *n = NULL;

    cr_assert(asprintf(&n, "%s%s|%s|%s|%s|%s|%s\n", *acc ? *acc : "", vals[0], vals[1], vals[2],
                       vals[3], vals[4], vals[5]) > 0);
    free(*acc);
    *acc = n;
    return 0;
}

Test(gate_daemon, audited_and_no_token_in_the_log)
{
    _cleanup_free_ char *rows = NULL, *log = NULL, *bad = url(W.port_a, W.tok_b, "demo");
    terok_error err = TEROK_ERROR_INIT;
    cli_result r;
    store *s;

    seed_demo();
    r = GIT(test_tmp, "ls-remote", bad);
    cli_result_done(&r);
    usleep(600 * 1000); /* the daemon batches audit rows for 200 ms */
    daemon_stop();
    terok_assert_ok(sandbox_store(W.sb, &s, &err), &err);
    cr_assert(sqlite3_exec(store_sqlite(s),
                           "SELECT container, target, path, status, outcome, bytes_in FROM audit "
                           "WHERE service = 'gate' ORDER BY id",
                           audit_cb, &rows, NULL) == SQLITE_OK);
    cr_assert(rows, "no audit rows");
    cr_assert(strstr(rows, "ctr-a|demo|git-receive-pack|200|ok|"), "audit rows:\n%s", rows);
    cr_assert(strstr(rows, "ctr-a|demo|info/refs|403|wrong-container|0"), "audit rows:\n%s", rows);
    log = slurp(W.log);
    cr_assert(strstr(log, "gate: serving"), "daemon log: %s", log);
    cr_assert(!strstr(log, W.tok_a) && !strstr(log, W.tok_b) && !strstr(log, "terok-g-"),
              "a token reached the daemon log");
}

/* The backend's authorize() is asked after the token: a grant the backend has revoked (its
 * view is served no more) is refused with 403 even with a still valid token, and audited. */
Test(gate_daemon, backend_authorize_says_no)
{
    _cleanup_free_ char *rows = NULL, *u = url(W.port_a, W.tok_a, "demo");
    terok_error err = TEROK_ERROR_INIT;
    cli_result r;
    store *s;

    seed_demo();
    terok_assert_ok(gate_revoke(&W.g, "ctr-a", "demo", &err), &err);
    r = GIT(test_tmp, "ls-remote", u);
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "revoked in the backend: %d %s",
              r.exit_code, r.err);
    cli_result_done(&r);
    r = GIT(test_tmp, "push", "-q", u, "HEAD:refs/heads/x");
    cr_assert(r.exit_code != 0, "push after the backend revoked: %s", r.err);
    cli_result_done(&r);
    /* a grant given again is served again */
    terok_assert_ok(gate_grant(&W.g, "ctr-a", "demo", TEROK_GATE_READ, &err), &err);
    r = GIT(test_tmp, "ls-remote", u);
    cr_assert(r.exit_code == 0, "granted again: %s", r.err);
    cli_result_done(&r);
    /* the backend's read-only view refuses a push the token would allow */
    r = GIT(test_path("seed"), "push", "-q", u, "HEAD:refs/heads/y");
    cr_assert(r.exit_code != 0 && strstr(r.err, "403"), "push on a backend read grant: %s", r.err);
    cli_result_done(&r);
    usleep(600 * 1000); /* the daemon batches audit rows for 200 ms */
    daemon_stop();
    terok_assert_ok(sandbox_store(W.sb, &s, &err), &err);
    cr_assert(sqlite3_exec(store_sqlite(s),
                           "SELECT container, target, path, status, outcome, bytes_in FROM audit "
                           "WHERE service = 'gate' ORDER BY id",
                           audit_cb, &rows, NULL) == SQLITE_OK);
    cr_assert(rows && strstr(rows, "ctr-a|demo|info/refs|403|not-authorized|0"), "audit rows:\n%s",
              rows ? rows : "");
}

/* ---------- run --repo / rm through the CLI (runtime-null: no container engine) ---------- */

/* The value of K in the env the null runtime recorded for the container. */
static char *recorded_env(const char *key)
{
    char pattern[128];
    cli_result r;
    char *v = NULL;

    snprintf(pattern, sizeof pattern, "%s=[^\"]*", key);
    const char *argv[] = {"grep", "-rhoE", pattern, W.sb->paths.state_dir, NULL};
    r = test_run(NULL, argv);
    if (r.exit_code == 0) {
        char *nl = strchr(r.out, '\n');
        if (nl)
            *nl = 0;
        v = strdup(r.out + strlen(key) + 1);
    }
    cli_result_done(&r);
    return v;
}

static int count_tokens(void *ud, const token_info *info, int kind, const char *masked,
                        int64_t created_at)
{
    (*(int *)ud)++;
    return 0;
}

static int tokens_of(const char *container)
{
    terok_error err = TEROK_ERROR_INIT;
    int n = 0;
    store *s;

    terok_assert_ok(sandbox_store(W.sb, &s, &err), &err);
    terok_assert_ok(tokens_list(store_sqlite(s), container, count_tokens, &n, &err), &err);
    return n;
}

static char *auth_get(const char *repo, const char *service, const char *url_with_token)
{
    const char *tok = strstr(url_with_token, "terok-g-");
    char pair[128], *req = NULL;
    _cleanup_free_ char *up = NULL;
    size_t n = strcspn(tok, "@");

    cr_assert(tok && n < 100);
    snprintf(pair, sizeof pair, "%.*s:", (int)n, tok);
    up = basic(pair);
    cr_assert(asprintf(&req,
                       "GET /%s.git/info/refs?service=%s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Basic %s\r\nConnection: close\r\n\r\n",
                       repo, service, up) > 0);
    return req;
}

Test(gate_daemon, run_repo_wires_and_rm_revokes)
{
    _cleanup_free_ char *demo = NULL, *other = NULL, *gurl = NULL, *repos = NULL, *sock = NULL,
                        *r1 = NULL, *r2 = NULL, *r3 = NULL, *log = NULL, *logpath = NULL;
    terok_error err = TEROK_ERROR_INIT;
    struct stat st;
    cli_result r;

    daemon_stop(); /* run must start the daemon itself */
    /* as under `flock LOCK terok-sandbox run ...`: the daemon run starts must not keep it */
    int lk = open(test_path("lockfile"), O_RDWR | O_CREAT, 0600), lk2;
    cr_assert(lk >= 0 && flock(lk, LOCK_EX) == 0);
    r = TEST_CLI("--config", W.config, "run", "-d", "--name", "t1", "--repo", "demo:rw", "--repo",
                 "other", "localhost/null:latest", "true");
    cr_assert(r.exit_code == 0, "run --repo failed (%d): %s", r.exit_code, r.err);
    cli_result_done(&r);
    close(lk);
    lk2 = open(test_path("lockfile"), O_RDWR | O_CLOEXEC);
    cr_assert(flock(lk2, LOCK_EX | LOCK_NB) == 0, "the gate daemon inherited the caller's lock");
    close(lk2);
    demo = recorded_env("TEROK_GATE_REPO_DEMO");
    other = recorded_env("TEROK_GATE_REPO_OTHER");
    gurl = recorded_env("TEROK_GATE_URL");
    repos = recorded_env("TEROK_GATE_REPOS");
    cr_assert(demo && strncmp(demo, "http://terok-g-", 15) == 0 &&
                  strstr(demo, "@127.0.0.1:9418/demo.git"),
              "TEROK_GATE_REPO_DEMO=%s", strna(demo));
    cr_assert(other && strstr(other, "@127.0.0.1:9418/other.git"), "%s", strna(other));
    cr_assert(gurl && strncmp(gurl, demo, strlen(gurl) - 1) == 0 && strstr(gurl, ":9418/"),
              "TEROK_GATE_URL=%s", strna(gurl));
    cr_assert_str_eq(strna(repos), "demo other");
    cr_assert_eq(tokens_of("t1"), 2);

    cr_assert(gate_socket_path(W.sb->paths.runtime_dir, "t1", &sock) == 0);
    cr_assert(stat(sock, &st) == 0 && (st.st_mode & 07777) == 0666);
    r1 = auth_get("demo", "git-receive-pack", demo);
    r2 = auth_get("other", "git-upload-pack", other);
    r3 = auth_get("other", "git-receive-pack", other);
    cr_assert_eq(unix_status(sock, r1), 200, "read-write grant may push");
    cr_assert_eq(unix_status(sock, r2), 200, "read grant may fetch");
    cr_assert_eq(unix_status(sock, r3), 403, "read grant may not push");

    r = TEST_CLI("--config", W.config, "rm", "-f", "t1");
    cr_assert(r.exit_code == 0, "rm failed: %s", r.err);
    cli_result_done(&r);
    cr_assert_eq(tokens_of("t1"), 0, "rm left tokens behind");
    cr_assert(stat(sock, &st) < 0, "rm left the gate socket behind");
    cr_assert(gate_client_ping(W.sb, NULL) == 0);
    cr_assert(gate_client_stop(W.sb, &err) == 0);
    cr_assert(asprintf(&logpath, "%s/logs/gate.log", W.sb->paths.state_dir) > 0);
    cr_assert(stat(logpath, &st) == 0, "run did not start the daemon with its log");
    log = slurp(logpath);
    cr_assert(!strstr(log, "terok-g-"), "a token reached the daemon log");
}

Test(gate_daemon, run_repo_failure_leaves_nothing)
{
    _cleanup_free_ char *dir = NULL;
    terok_error err = TEROK_ERROR_INIT;
    container_rec rec = {0};
    struct stat st;
    store *s;
    cli_result r;

    r = TEST_CLI("--config", W.config, "run", "-d", "--name", "t2", "--repo", "demo:rw", "--repo",
                 "nosuch", "localhost/null:latest", "true");
    cr_assert(r.exit_code != 0 && strstr(r.err, "nosuch"), "run with a missing project: %d %s",
              r.exit_code, r.err);
    cr_assert(!strstr(r.err, "terok-g-"), "a token in an error message");
    cli_result_done(&r);
    terok_assert_ok(sandbox_store(W.sb, &s, &err), &err);
    cr_assert(store_container_get(s, "t2", &rec, NULL) == -ENOENT, "container record left");
    cr_assert_eq(tokens_of("t2"), 0, "tokens left");
    cr_assert(asprintf(&dir, "%s/containers/t2", W.sb->paths.runtime_dir) > 0);
    cr_assert(stat(dir, &st) < 0, "runtime dir left");

    r = TEST_CLI("--config", W.config, "run", "-d", "--repo", "Demo", "localhost/null:latest");
    cr_assert(r.exit_code == 2 && strstr(r.err, "invalid --repo 'Demo'"), "%d %s", r.exit_code,
              r.err);
    cli_result_done(&r);
    r = TEST_CLI("--config", W.config, "run", "-d", "--repo", "demo:write",
                 "localhost/null:latest");
    cr_assert(r.exit_code == 2 && strstr(r.err, "'ro' or 'rw'"), "%d %s", r.exit_code, r.err);
    cli_result_done(&r);
}

Test(gate_daemon, concurrent_clones_and_pushes)
{
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo"), *script = NULL;
    cli_result r;

    seed_demo();
    /* six clients at once (more than a listener's worker share on this machine), each clones,
     * commits and pushes its own branch */
    cr_assert(asprintf(&script,
                       "cd \"$1\" && for i in 1 2 3 4 5 6; do ("
                       "git clone -q \"$2\" c$i && cd c$i && echo $i > f$i && git add f$i && "
                       "git commit -qm c$i && git push -q origin HEAD:refs/heads/b$i"
                       ") & done; fail=0; for j in 1 2 3 4 5 6; do wait -n || fail=1; done; "
                       "exit $fail") > 0);
    const char *argv[] = {"bash", "-c", script, "sh", test_tmp, u, NULL};
    r = test_run(NULL, argv);
    cr_assert(r.exit_code == 0, "concurrent clients failed: %s", r.err);
    cli_result_done(&r);
    r = GIT(test_tmp, "ls-remote", "--heads", u);
    cr_assert(r.exit_code == 0);
    for (int i = 1; i <= 6; i++) {
        char ref[32];
        snprintf(ref, sizeof ref, "refs/heads/b%d", i);
        cr_assert(strstr(r.out, ref), "%s missing after concurrent pushes:\n%s", ref, r.out);
    }
    cli_result_done(&r);
}

Test(gate_daemon, client_going_away_mid_request_frees_the_worker)
{
    _cleanup_free_ char *req = NULL, *up = NULL, *ok = NULL;
    char pair[200], head[4096];
    int n;

    seed_demo();
    snprintf(pair, sizeof pair, "%s:", W.tok_a);
    up = basic(pair);
    /* announces a 1 MB push, sends 4 bytes, hangs up: git is started, then must be stopped */
    for (int i = 0; i < 12; i++) { /* more than the daemon's 8 workers */
        free(req);
        n = asprintf(&req,
                     "POST /demo.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Basic %s\r\n"
                     "Content-Type: application/x-git-receive-pack-request\r\n"
                     "Content-Length: 1000000\r\n\r\n0000",
                     up);
        cr_assert(n > 0);
        (void)raw_request(W.port_a, req, (size_t)n, head, sizeof head);
    }
    n = asprintf(&ok,
                 "GET /demo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Basic %s\r\nConnection: close\r\n\r\n",
                 up);
    cr_assert_eq(raw_request(W.port_a, ok, (size_t)n, head, sizeof head), 200,
                 "the daemon stopped serving after clients went away");
    _cleanup_free_ char *u = url(W.port_a, W.tok_a, "demo");
    GIT_OK(test_tmp, "clone", "-q", u, test_path("after"));
}
