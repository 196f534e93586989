/* SPDX-License-Identifier: Apache-2.0 */
/* test-clearance-ctl.c: the clearance daemon's control socket under hostile input. The real
 * daemon (`terok-sandbox clearance serve`) on a state dir of its own; every malformed, oversized,
 * mistyped or malicious request gets {"ok": false, "error": ...} naming what was wrong, and the
 * daemon keeps serving. Peers of another uid are dropped, connections beyond the limit are
 * refused without harm, and a daemon whose socket is taken away exits. No Podman needed. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "terok-test.h"

static char sock_path[100];
static int daemon_pid;

static void setup(void)
{
    char conf[1024];
    cli_result r;
    store *st = NULL;
    terok_error err = TEROK_ERROR_INIT;
    container_rec rec = {
        .name = "victim", .image = "img", .runtime = "podman", .spec_json = "{}", .created_at = 1};

    test_tmpdir_setup();
    cr_assert(getenv("TEROK_TEST_PLUGIN_DIR"), "run through meson test");
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\nbackend = nft\n",
             getenv("TEROK_TEST_PLUGIN_DIR"));
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    /* a container on record, so verdicts get as far as the pending queue */
    terok_assert_ok(store_open(test_path("state"), &st, &err), &err);
    terok_assert_ok(store_container_add(st, &rec, &err), &err);
    store_close(st);
    r = TEST_CLI("clearance", "serve", "--json");
    cr_assert_eq(r.exit_code, 0, "clearance serve: %s", r.err);
    {
        json_object *o = json_tokener_parse(r.out), *p = NULL;

        cr_assert(o && json_object_object_get_ex(o, "pid", &p), "%s", r.out);
        daemon_pid = json_object_get_int(p);
        json_object_put(o);
    }
    cli_result_done(&r);
    snprintf(sock_path, sizeof sock_path, "%s/run/clearance.ctl", test_tmp);
}

static void teardown(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        for (int i = 0; i < 100 && test_pid_alive(daemon_pid); i++)
            usleep(20000);
        if (test_pid_alive(daemon_pid))
            kill(daemon_pid, SIGKILL);
    }
    daemon_pid = 0;
    test_tmpdir_teardown();
}

TestSuite(clearance_ctl, .init = setup, .fini = teardown, .timeout = 120);

static int connect_ctl(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s: %s", sock_path,
                 strerror(errno));
    return fd;
}

/* Send raw bytes, return the parsed reply (NULL: the daemon closed the connection). */
static json_object *raw(const void *buf, size_t len)
{
    static char in[70000];
    struct pollfd p;
    json_object *o;
    ssize_t n;
    int fd = connect_ctl();

    cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len, "send: %s", strerror(errno));
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the daemon did not answer within 5 s");
    n = recv(fd, in, sizeof in - 1, 0);
    close(fd);
    if (n <= 0)
        return NULL;
    in[n] = 0;
    o = json_tokener_parse(in);
    cr_assert(o, "the reply is not JSON: %s", in);
    return o;
}

static json_object *req(const char *text)
{
    return raw(text, strlen(text));
}

static bool reply_ok(json_object *o)
{
    json_object *v = NULL;

    return o && json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

static void still_serving(void)
{
    json_object *o = req("{\"op\":\"ping\"}");

    cr_assert(reply_ok(o), "the daemon stopped serving after hostile input");
    json_object_put(o);
    cr_assert(test_pid_alive(daemon_pid), "the daemon died");
}

/* The request is refused with an error that contains `want`. */
static void refused(const char *text, const char *want)
{
    json_object *o = req(text), *e = NULL;

    cr_assert(o, "no reply to %s", text);
    cr_assert(!reply_ok(o), "accepted: %s", text);
    cr_assert(json_object_object_get_ex(o, "error", &e), "no error for %s", text);
    cr_assert(strstr(json_object_get_string(e), want), "error for %.120s is '%s', wanted '%s'",
              text, json_object_get_string(e), want);
    json_object_put(o);
    still_serving();
}

typedef struct hostile {
    char text[400];
    char want[80];
} hostile;

static const hostile cases[] = {
    {"not json at all", "malformed request"},
    {"[1,2,3]", "malformed request"},
    {"{\"op\":\"ping\"} trailing", "malformed request"},
    {"{\"op\":\"ping\"", "malformed request"},
    {"{}", "request without 'op'"},
    {"{\"op\":5}", "'op' must be a string"},
    {"{\"op\":null}", "request without 'op'"},
    {"{\"op\":\"launch-missiles\"}", "unknown op 'launch-missiles'"},
    {"{\"op\":\"attach\"}", "request without 'container'"},
    {"{\"op\":\"attach\",\"container\":\"../../etc\"}", "invalid container name '../../etc'"},
    {"{\"op\":\"attach\",\"container\":\"a\\u0000b\"}", "contains a NUL byte"},
    {"{\"op\":\"attach\",\"container\":\"ghost\"}", "no such container 'ghost'"},
    {"{\"op\":\"attach\",\"container\":[\"victim\"]}", "'container' must be a string"},
    {"{\"op\":\"forget\",\"container\":\"x;rm -rf /\"}", "invalid container name 'x;rm -rf /'"},
    {"{\"op\":\"pending\",\"container\":123}", "'container' must be a string"},
    {"{\"op\":\"pending\",\"container\":\"ghost\"}", "no such container 'ghost'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"action\":\"allow\"}",
     "request without 'dest'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4\"}",
     "request without 'action'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4\",\"action\":\"maybe\"}",
     "invalid action 'maybe'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4; flush ruleset\","
     "\"action\":\"allow\"}",
     "contains a character that is not allowed"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"a.com\\nflush ruleset\","
     "\"action\":\"allow\"}",
     "contains a character that is not allowed"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"\\\"quoted\\\"\","
     "\"action\":\"deny\"}",
     "contains a character that is not allowed"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"\",\"action\":\"deny\"}",
     "destination must be 1-300 characters"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4:99999\","
     "\"action\":\"deny\"}",
     "invalid port in destination '1.2.3.4:99999'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"[::1\",\"action\":\"deny\"}",
     "invalid destination '[::1'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"[example.com]:443\","
     "\"action\":\"allow\"}",
     "invalid destination '[example.com]:443': brackets hold an IPv6 address"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"[1.2.3.4]\",\"action\":\"deny\"}",
     "invalid destination '[1.2.3.4]': brackets hold an IPv6 address"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"0\",\"action\":\"deny\"}",
     "invalid request id '0'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"99999999999999999999\","
     "\"action\":\"deny\"}",
     "invalid request id"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4\",\"action\":\"allow\","
     "\"for_ms\":-5}",
     "'for_ms' must be a positive duration"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4\",\"action\":\"allow\","
     "\"for_ms\":\"1h\"}",
     "'for_ms' must be a positive duration"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4\",\"action\":\"deny\","
     "\"for_ms\":1000}",
     "'for_ms' must be a positive duration of an allow"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"1.2.3.4:443\",\"action\":\"allow\"}",
     "no pending request of 'victim' matches '1.2.3.4:443'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"example.com\",\"action\":\"allow\"}",
     "no pending request of 'victim' matches 'example.com'"},
    {"{\"op\":\"verdict\",\"container\":\"victim\",\"dest\":\"7\",\"action\":\"allow\"}",
     "no pending request of 'victim' matches '7'"},
};

ParameterizedTestParameters(clearance_ctl, hostile_request)
{
    return cr_make_param_array(hostile, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(const hostile *h, clearance_ctl, hostile_request)
{
    refused(h->text, h->want);
}

Test(clearance_ctl, oversized_and_deep_messages)
{
    size_t n = 70 * 1024;
    char *big = malloc(n);

    cr_assert(big);
    memset(big, ' ', n);
    memcpy(big, "{\"op\":\"ping\",\"x\":\"", 18);
    big[n - 2] = '"';
    big[n - 1] = '}';
    json_object *o = raw(big, n), *e = NULL;
    cr_assert(o && !reply_ok(o));
    json_object_object_get_ex(o, "error", &e);
    cr_assert_str_eq(json_object_get_string(e), "request too large");
    json_object_put(o);
    free(big);
    still_serving();

    /* nesting far beyond the parser's depth limit */
    char deep[4200] = "{\"op\":\"ping\",\"x\":";
    size_t k = strlen(deep);
    for (int i = 0; i < 2000; i++)
        deep[k++] = '[';
    for (int i = 0; i < 2000; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = 0;
    refused(deep, "malformed request");

    /* an empty datagram and a connection that sends nothing */
    int fd = connect_ctl();
    (void)send(fd, "", 0, MSG_NOSIGNAL);
    close(fd);
    fd = connect_ctl();
    close(fd);
    still_serving();
}

Test(clearance_ctl, too_many_clients_then_recovers)
{
    int fds[80];

    for (int i = 0; i < 80; i++)
        fds[i] = connect_ctl(); /* the listen backlog takes them; the daemon drops the excess */
    usleep(200000);
    for (int i = 0; i < 80; i++)
        close(fds[i]);
    usleep(200000);
    still_serving();
}

Test(clearance_ctl, other_uid_is_dropped)
{
    pid_t child;
    int st;

    /* open the way to the socket for everyone: the peer-credential check still holds */
    cr_assert_eq(chmod(test_tmp, 0755), 0);
    cr_assert_eq(chmod(test_path("run"), 0755), 0);
    cr_assert_eq(chmod(sock_path, 0666), 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct pollfd p;
        char in[256];
        int fd;

        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(10);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            _exit(11);
        (void)send(fd, "{\"op\":\"stop\"}", 13, MSG_NOSIGNAL);
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) != 1)
            _exit(12);
        _exit(recv(fd, in, sizeof in, 0) > 0 ? 13 : 0); /* closed without an answer */
    }
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "a peer of another uid got an answer or could not connect (status %d)",
              WEXITSTATUS(st));
    still_serving();
}

Test(clearance_ctl, exits_when_its_socket_is_taken_away)
{
    cr_assert_eq(unlink(sock_path), 0);
    for (int i = 0; i < 60 && test_pid_alive(daemon_pid); i++)
        usleep(100000);
    cr_assert(!test_pid_alive(daemon_pid), "the daemon outlived its control socket");
    daemon_pid = 0;
}
