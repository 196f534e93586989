/* SPDX-License-Identifier: Apache-2.0 */
/* test-daemon.c: the daemon plumbing: event loop timers and wake-ups, the control socket
 * (round trip, malformed and oversized requests, foreign peers dropped), and libmicrohttpd on
 * our own Unix socket driven by the loop, including a suspended connection resumed from
 * another thread; idle hooks (same-thread wake-ups without a wait) and urgent fds; the audit
 * queue the vault and gate daemons write through. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "daemon/audit.h"
#include "daemon/ctl.h"
#include "daemon/evloop.h"
#include "daemon/httpd.h"
#include "store.h"
#include "terok-test.h"

TestSuite(daemon, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 30);

static int fired;
static int on_timer(evloop *l, void *ud)
{
    fired++;
    if (ud)
        evloop_exit(l, 7);
    return 0;
}

Test(daemon, timers_fire_in_order_and_exit_code_returns)
{
    evloop *l = NULL;

    cr_assert(eq(int, evloop_new(&l), 0));
    evloop_add_timer(l, 5, on_timer, NULL);
    int64_t cancelled = evloop_add_timer(l, 1, on_timer, NULL);
    evloop_cancel_timer(l, cancelled);
    evloop_add_timer(l, 20, on_timer, (void *)1);
    cr_assert(eq(int, evloop_run(l), 7));
    cr_assert(eq(int, fired, 2), "the cancelled timer must not fire");
    evloop_free(l);
}

static void *waker(void *arg)
{
    usleep(20000);
    evloop_wake(arg);
    return NULL;
}
static void on_wake(evloop *l, int *t, void *ud)
{
    evloop_exit(l, 0);
}

Test(daemon, wake_from_another_thread_breaks_the_wait)
{
    evloop *l = NULL;
    pthread_t th;

    cr_assert(eq(int, evloop_new(&l), 0));
    evloop_on_wake(l, on_wake, NULL);
    pthread_create(&th, NULL, waker, l);
    cr_assert(eq(int, evloop_run(l), 0));
    pthread_join(th, NULL);
    evloop_free(l);
}

/* ---- control socket ---- */

static json_object *echo_handler(void *ud, const struct ucred *peer, json_object *req,
                                 terok_error *err)
{
    json_object *op = NULL, *reply;

    json_object_object_get_ex(req, "op", &op);
    if (!op || strcmp(json_object_get_string(op), "ping") != 0) {
        terok_error_set(err, -EINVAL, "unknown op '%s'", op ? json_object_get_string(op) : "");
        return NULL;
    }
    reply = json_object_new_object();
    json_object_object_add(reply, "ok", json_object_new_boolean(1));
    json_object_object_add(reply, "uid", json_object_new_int((int)peer->uid));
    return reply;
}

static bool listening(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool ok;

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Runs a ctl server in a forked child until killed; returns its pid. */
static pid_t serve_ctl(const char *path)
{
    pid_t pid = fork();

    cr_assert(pid >= 0);
    if (pid == 0) {
        evloop *l = NULL;
        ctl_server *s = NULL;
        terok_error err = TEROK_ERROR_INIT;
        if (evloop_new(&l) < 0 || ctl_server_new(l, path, echo_handler, NULL, &s, &err) < 0)
            _exit(3);
        evloop_run(l);
        _exit(0);
    }
    /* the file appears at bind(), before listen(): wait until a connect is accepted (a loaded
     * machine showed ECONNREFUSED in between) */
    for (int i = 0; i < 1000 && !listening(path); i++)
        usleep(5000);
    return pid;
}

static void stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(daemon, ctl_round_trip_and_error_reply)
{
    const char *path = test_path("svc.ctl");
    pid_t pid = serve_ctl(path);
    terok_error err = TEROK_ERROR_INIT;
    json_object *req = json_tokener_parse("{\"op\":\"ping\"}"), *reply = NULL, *uid;
    struct stat st;

    cr_assert(eq(int, stat(path, &st), 0));
    cr_assert(eq(int, (int)(st.st_mode & 0777), 0600), "control socket must be 0600");
    terok_assert_ok(ctl_call(path, req, 2000, &reply, &err), &err);
    cr_assert(json_object_object_get_ex(reply, "uid", &uid));
    cr_assert(eq(int, json_object_get_int(uid), (int)geteuid()));
    json_object_put(reply);
    json_object_put(req);

    req = json_tokener_parse("{\"op\":\"rm -rf\"}");
    cr_assert(eq(int, ctl_call(path, req, 2000, &reply, &err), -EREMOTEIO));
    cr_assert(eq(str, err.message, "unknown op 'rm -rf'"));
    terok_error_clear(&err);
    json_object_put(req);
    stop(pid);
}

static char *raw_exchange(const char *path, const void *msg, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    static char buf[4096];
    ssize_t n;

    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(send(fd, msg, len, 0) == (ssize_t)len);
    n = recv(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

Test(daemon, ctl_malformed_requests_get_errors_and_the_daemon_keeps_serving)
{
    const char *path = test_path("svc.ctl");
    pid_t pid = serve_ctl(path);
    static char big[CTL_MAX_MESSAGE + 100];
    struct {
        const char *msg;
        size_t len;
        const char *expect;
    } cases[] = {
        {"not json", 8, "malformed request: expected one JSON object"},
        {"[1,2]", 5, "malformed request: expected one JSON object"},
        {"{\"op\":\"ping\"} trailing", 22, "malformed request: expected one JSON object"},
        {"{\"op\":\"ping\"\0}", 14, "malformed request: expected one JSON object"},
        {"{\"op\":", 6, "malformed request: expected one JSON object"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = raw_exchange(path, cases[i].msg, cases[i].len);
        cr_expect(strstr(r, cases[i].expect) != NULL, "case %zu got '%s'", i, r);
    }
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    cr_expect(strstr(raw_exchange(path, big, sizeof big), "request too large") != NULL);
    /* still serving */
    cr_expect(strstr(raw_exchange(path, "{\"op\":\"ping\"}", 13), "\"ok\":true") != NULL);
    stop(pid);
}

/* ---- the open/close/stop/status ops of the per-container daemons (vault, gate) ---- */

typedef struct fake_daemon {
    char opened[64], closed[64];
    int stops;
} fake_daemon;

static int fake_open(void *ud, const char *container, terok_error *err)
{
    fake_daemon *d = ud;

    if (strcmp(container, "bad") == 0)
        return terok_error_set(err, -EINVAL, "container name '%s' is not valid", container);
    snprintf(d->opened, sizeof d->opened, "%s", container);
    return 0;
}

static void fake_close(void *ud, const char *container)
{
    snprintf(((fake_daemon *)ud)->closed, sizeof((fake_daemon *)ud)->closed, "%s", container);
}

static void fake_status(void *ud, json_object *reply)
{
    json_object_object_add(reply, "listeners", json_object_new_int(3));
}

static void fake_stop(void *ud)
{
    ((fake_daemon *)ud)->stops++;
}

Test(daemon, container_ops_dispatch_and_refuse_malformed_requests)
{
    static const ctl_container_ops ops = {"test", fake_open, fake_close, fake_status, fake_stop};
    static const struct {
        const char *req, *error;
    } bad[] = {
        {"{}", "request without an 'op'"},
        {"{\"op\": 7}", "request without an 'op'"},
        {"{\"op\": null}", "request without an 'op'"},
        {"{\"op\": \"open\"}", "'open' needs a 'container'"},
        {"{\"op\": \"close\", \"container\": [\"a\"]}", "'close' needs a 'container'"},
        {"{\"op\": \"open\", \"container\": \"bad\"}", "container name 'bad' is not valid"},
        {"{\"op\": \"rm\\n-rf\", \"container\": \"a\"}", "unknown op 'rm\n-rf'"},
        {"{\"op\": \"OPEN\", \"container\": \"a\"}", "unknown op 'OPEN'"},
        /* json-c keeps the NUL; C would read "open" and "a" */
        {"{\"op\": \"open\\u0000x\", \"container\": \"a\"}",
         "'op' is too long or contains a NUL byte"},
        {"{\"op\": \"open\", \"container\": \"a\\u0000b\"}",
         "'container' is too long or contains a NUL byte"},
    };
    struct ucred peer = {.pid = 1, .uid = 0, .gid = 0};
    fake_daemon d = {0};
    json_object *req, *reply, *v;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        terok_error err = TEROK_ERROR_INIT;

        req = json_tokener_parse(bad[i].req);
        cr_assert(req != NULL, "case %zu is not JSON", i);
        reply = ctl_container_dispatch(&ops, &d, &peer, req, &err);
        cr_expect(reply == NULL, "case %zu answered", i);
        cr_expect(err.message && strcmp(err.message, bad[i].error) == 0, "case %zu: '%s'", i,
                  err.message);
        json_object_put(reply);
        json_object_put(req);
        terok_error_clear(&err);
    }
    cr_assert(d.opened[0] == 0 && d.closed[0] == 0 && d.stops == 0, "a refused request acted");

    static const char *const good[] = {
        "{\"op\": \"open\", \"container\": \"a\"}", "{\"op\": \"close\", \"container\": \"b\"}",
        "{\"op\": \"status\"}", "{\"op\": \"ping\", \"extra\": 1}", "{\"op\": \"stop\"}"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        terok_error err = TEROK_ERROR_INIT;

        req = json_tokener_parse(good[i]);
        reply = ctl_container_dispatch(&ops, &d, &peer, req, &err);
        cr_assert(reply != NULL, "'%s': %s", good[i], err.message);
        cr_assert(json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v));
        cr_assert(json_object_object_get_ex(reply, "pid", &v) &&
                  json_object_get_int(v) == getpid());
        cr_assert(json_object_object_get_ex(reply, "listeners", &v) && json_object_get_int(v) == 3);
        json_object_put(reply);
        json_object_put(req);
    }
    cr_assert_str_eq(d.opened, "a");
    cr_assert_str_eq(d.closed, "b");
    cr_assert_eq(d.stops, 1);
}

Test(daemon, ctl_drops_a_peer_of_another_uid)
{
    struct passwd *pw = getpwnam("nobody");
    const char *path = test_path("svc.ctl");
    pid_t pid, c;
    int st;

    cr_assert(pw != NULL, "needs the 'nobody' user");
    cr_assert(geteuid() == 0, "needs root to act as another uid");
    pid = serve_ctl(path);
    chmod(test_tmp, 0755);
    chmod(path, 0666); /* only the peer check stands in the way now */
    c = fork();
    if (c == 0) {
        json_object *req = json_tokener_parse("{\"op\":\"ping\"}"), *reply = NULL;
        terok_error err = TEROK_ERROR_INIT;
        if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(3);
        _exit(ctl_call(path, req, 2000, &reply, &err) < 0 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    bool refused = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    cr_assert(refused, "a foreign uid must get no answer");
    stop(pid);
}

/* ---- HTTP on our own Unix socket ---- */

typedef struct {
    struct MHD_Connection *conn;
    httpd *h;
} suspended;
static suspended held;

static void *resumer(void *arg)
{
    usleep(50000);
    MHD_resume_connection(held.conn);
    httpd_wake(held.h);
    return NULL;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    const char *who = cls;
    struct MHD_Response *resp;
    enum MHD_Result r;
    char body[256];

    if (strcmp(url, "/slow") == 0 && !*con_cls) {
        /* first call: suspend, resumed by another thread */
        static pthread_t th;
        *con_cls = (void *)1;
        held.conn = c;
        MHD_suspend_connection(c);
        pthread_create(&th, NULL, resumer, NULL);
        pthread_detach(th);
        return MHD_YES;
    }
    snprintf(body, sizeof body, "%s %s %s", who, method, url);
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    r = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static char *http_get(const char *path, const char *url)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    static char buf[4096];
    char req[256];
    size_t off = 0;
    ssize_t n;

    strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", url);
    cr_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    while ((n = read(fd, buf + off, sizeof buf - 1 - off)) > 0)
        off += (size_t)n;
    buf[off] = 0;
    close(fd);
    return buf;
}

static void *client_thread(void *arg)
{
    char **out = arg;
    out[1] = strdup(http_get(out[0], "/slow"));
    out[3] = strdup(http_get(out[2], "/fast"));
    return NULL;
}

static int quit_when_done(evloop *l, void *ud)
{
    evloop_exit(l, 0);
    return 0;
}

Test(daemon, httpd_serves_per_socket_identity_and_resumes_suspended_connections)
{
    evloop *l = NULL;
    httpd *a = NULL, *b = NULL;
    terok_error err = TEROK_ERROR_INIT;
    httpd_config ca = {.handler = handler, .cls = "ctr-A"},
                 cb = {.handler = handler, .cls = "ctr-B"};
    char *io[4] = {NULL};
    pthread_t th;
    struct stat st;

    cr_assert(eq(int, evloop_new(&l), 0));
    terok_assert_ok(httpd_listen_unix(l, test_path("a.sock"), 0666, &ca, &a, &err), &err);
    terok_assert_ok(httpd_listen_unix(l, test_path("b.sock"), 0666, &cb, &b, &err), &err);
    held.h = a;
    cr_assert(eq(int, stat(test_path("a.sock"), &st), 0));
    cr_assert(eq(int, (int)(st.st_mode & 0777), 0666));
    io[0] = strdup(test_path("a.sock"));
    io[2] = strdup(test_path("b.sock"));
    pthread_create(&th, NULL, client_thread, io);
    /* run the loop until the client thread is done */
    for (int i = 0; i < 500 && !io[3]; i++) {
        evloop_add_timer(l, 20, quit_when_done, NULL);
        evloop_run(l);
    }
    pthread_join(th, NULL);
    cr_assert(io[1] && strstr(io[1], "200 OK") && strstr(io[1], "ctr-A GET /slow"), "got '%s'",
              io[1]);
    cr_assert(io[3] && strstr(io[3], "ctr-B GET /fast"), "got '%s'", io[3]);
    for (int k = 0; k < 4; k++)
        free(io[k]);
    httpd_free(a);
    httpd_free(b);
    cr_assert(access(test_path("a.sock"), F_OK) != 0, "socket file removed on free");
    evloop_free(l);
}

static int on_term(evloop *l, int signo, uint32_t ev, void *ud)
{
    evloop_exit(l, signo);
    return 0;
}

Test(daemon, sigterm_ends_the_loop)
{
    evloop *l = NULL;

    cr_assert(eq(int, evloop_new(&l), 0));
    cr_assert(eq(int, evloop_add_signal(l, SIGTERM, on_term, NULL), 0));
    cr_assert(eq(int, evloop_add_signal(l, SIGUSR1, on_term, NULL), 0));
    kill(getpid(), SIGTERM);
    cr_assert(eq(int, evloop_run(l), SIGTERM));
    evloop_free(l);
}

/* Idle hooks: one hook's work makes work for another (as a resumed MHD connection does for
 * libcurl); both run, round after round, before the loop waits — a pending 10 s timer never
 * delays them — and the rounds are bounded when a hook always has work. */
static int idle_a, idle_b, busy_calls;
static bool b_has_work;
static bool hook_a(evloop *l, void *ud)
{
    if (idle_a >= 3)
        return false;
    idle_a++;
    b_has_work = true; /* work for b */
    return true;
}
static bool hook_b(evloop *l, void *ud)
{
    if (!b_has_work)
        return false;
    b_has_work = false;
    if (++idle_b == 3)
        evloop_exit(l, 5);
    return true;
}
static bool hook_busy(evloop *l, void *ud)
{
    if (++busy_calls >= 20)
        evloop_exit(l, 6);
    return true; /* always has work: the loop must still poll its fds between rounds */
}
static int never(evloop *l, void *ud)
{
    return -1;
}

Test(daemon, idle_hooks_run_before_waiting_and_in_bounded_rounds)
{
    evloop *l = NULL;
    int64_t t0;

    cr_assert(eq(int, evloop_new(&l), 0));
    evloop_add_timer(l, 10000, never, NULL);
    cr_assert(evloop_add_idle(l, hook_a, NULL) > 0);
    cr_assert(evloop_add_idle(l, hook_b, NULL) > 0);
    t0 = evloop_now_ms();
    cr_assert(eq(int, evloop_run(l), 5));
    cr_assert(evloop_now_ms() - t0 < 2000, "the loop waited although hooks had work");
    cr_assert(eq(int, idle_a, 3));
    cr_assert(eq(int, idle_b, 3));
    evloop_free(l);

    cr_assert(eq(int, evloop_new(&l), 0));
    evloop_add_timer(l, 10000, never, NULL);
    int id = evloop_add_idle(l, hook_busy, NULL);
    cr_assert(id > 0);
    cr_assert(eq(int, evloop_run(l), 6));
    cr_assert(eq(int, busy_calls, 20), "8 rounds, a zero wait, 8 more...");
    evloop_remove_prepare(l, id);
    evloop_free(l);
}

/* An urgent fd is dispatched before the others that became ready in the same wait (the vault
 * daemon's database watch must be seen before the requests that arrived with it). */
static char order[8];
static int on_fd(evloop *l, int fd, uint32_t ev, void *ud)
{
    char c;

    (void)!read(fd, &c, 1);
    strncat(order, ud, sizeof order - strlen(order) - 1);
    if (strlen(order) == 2)
        evloop_exit(l, 0);
    return 0;
}

Test(daemon, urgent_fds_are_dispatched_first)
{
    for (int round = 0; round < 2; round++) {
        evloop *l = NULL;
        int a[2], b[2];

        order[0] = 0;
        cr_assert(eq(int, evloop_new(&l), 0));
        cr_assert(pipe(a) == 0 && pipe(b) == 0);
        /* registration order differs per round; the urgent one must win both times */
        if (round == 0) {
            cr_assert(evloop_add_io(l, a[0], EPOLLIN, on_fd, "n") == 0);
            cr_assert(evloop_add_io(l, b[0], EPOLLIN, on_fd, "u") == 0);
        } else {
            cr_assert(evloop_add_io(l, b[0], EPOLLIN, on_fd, "u") == 0);
            cr_assert(evloop_add_io(l, a[0], EPOLLIN, on_fd, "n") == 0);
        }
        cr_assert(evloop_set_urgent(l, b[0]) == 0);
        cr_assert(eq(int, evloop_set_urgent(l, 12345), -ENOENT));
        cr_assert(write(a[1], "x", 1) == 1 && write(b[1], "x", 1) == 1);
        cr_assert(eq(int, evloop_run(l), 0));
        cr_assert(eq(str, order, "un"), "round %d", round);
        evloop_free(l);
        close(a[0]);
        close(a[1]);
        close(b[0]);
        close(b[1]);
    }
}

/* ---- the vault and gate daemons' audit queue (daemon/audit.c), on a real store ---- */

static int64_t audit_count(sqlite3 *db, const char *where)
{
    sqlite3_stmt *st = NULL;
    char *sql = NULL;
    int64_t n = -1;

    cr_assert(asprintf(&sql, "SELECT count(*) FROM audit WHERE %s", where) > 0);
    cr_assert(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    free(sql);
    return n;
}

static void queue_rows(audit_queue *q, int n, const char *target)
{
    for (int i = 0; i < n; i++) {
        audit_row row;
        cr_assert(eq(int,
                     audit_row_make(&row, "task-a", target, "POST", i % 2 ? NULL : "/v1/x", "ok",
                                    200, (uint64_t)i, 7, 1000),
                     0));
        cr_assert(audit_queue_add(q, &row, 1));
    }
}

Test(daemon, audit_rows_survive_a_refused_write_and_the_queue_is_bounded)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    store *st = NULL;
    audit_queue q;
    sqlite3 *db;

    cr_assert(eq(int, store_open(test_tmp, &st, &err), 0), "%s", err.message);
    db = store_sqlite(st);
    audit_queue_init(&q, 8);

    queue_rows(&q, 3, "route-a");
    cr_assert(eq(int, audit_queue_flush(&q, db, &mu, "vault"), 0));
    cr_assert(eq(i64, audit_count(db, "service = 'vault' AND container = 'task-a'"), 3));
    cr_assert(eq(i64, audit_count(db, "path IS NULL"), 1), "a NULL path stays NULL");
    cr_assert(eq(sz, audit_queue_length(&q), 0));

    /* The store refuses (a writer holds it): nothing is lost, the rows wait for the next flush. */
    sqlite3 *other = NULL;
    char *path = NULL;
    cr_assert(asprintf(&path, "%s", sqlite3_db_filename(db, "main")) > 0);
    cr_assert(sqlite3_open(path, &other) == SQLITE_OK);
    cr_assert(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_busy_timeout(db, 0);
    queue_rows(&q, 4, "repo-b");
    cr_assert(eq(int, audit_queue_flush(&q, db, &mu, "gate"), -EIO));
    cr_assert(eq(sz, audit_queue_length(&q), 4), "the refused rows are queued again");

    /* Full: rows beyond the bound are dropped, not held. */
    queue_rows(&q, 4, "repo-b");
    audit_row extra;
    cr_assert(
        eq(int, audit_row_make(&extra, "task-a", "repo-b", "GET", "x", "ok", 200, 0, 0, 0), 0));
    cr_assert(audit_queue_add(&q, &extra, 1) == false, "a full queue took a row");
    cr_assert(eq(sz, audit_queue_length(&q), 8));

    cr_assert(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    cr_assert(eq(int, audit_queue_flush(&q, db, &mu, "gate"), 0));
    cr_assert(eq(i64, audit_count(db, "service = 'gate' AND target = 'repo-b'"), 8));
    cr_assert(eq(i64, audit_count(db, "1"), 11));

    /* What is still queued at the end is freed (ASan/valgrind see no leak). */
    queue_rows(&q, 2, NULL);
    audit_queue_done(&q);
    free(path);
    store_close(st);
}
