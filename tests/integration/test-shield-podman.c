/* SPDX-License-Identifier: Apache-2.0 */
/* test-shield-podman.c: the shield end to end with real rootful Podman through the CLI: the
 * private service (socket = private, so our hooks dir applies), `shield install-hooks`, `run -d`
 * with slirp4netns reaching a TCP server on the host's loopback (10.0.2.2). Default deny: the
 * server is unreachable; `shield allow` opens it without a restart; the container cannot change
 * its rules; a corrupt bundle keeps the container from starting; rm removes the bundle.
 * Bounded: every CLI call runs under timeout(1). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "terok-test.h"

#define IMG "localhost/terok-busybox:test"

static pid_t server = -1;
static int port;
static char names[2][64];

/* A loopback TCP server that greets every connection with "hello". */
static void start_server(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    server = fork();
    cr_assert(server >= 0);
    if (server == 0) {
        alarm(600);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c >= 0) {
                (void)!write(c, "hello\n", 6);
                close(c);
            }
        }
    }
    close(fd);
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

/* Podman with storage of our own: other runs on this host cannot hold our locks, and rm -rf of
 * the temporary directory removes everything. */
static void podman_wrapper(char *ret, size_t len)
{
    char script[4096], root[512];
    cli_result r;

    snprintf(root, sizeof root, "%s/podman", test_tmp);
    snprintf(script, sizeof script,
             "#!/bin/sh\nexec /usr/bin/podman --root %s/root --runroot %s/runroot --tmpdir %s/tmp "
             "\"$@\"\n",
             root, root, root);
    snprintf(ret, len, "%s", test_write_file("podman.sh", script, 0755));
    r = test_run(NULL, (const char *const[]){"timeout", "120", ret, "import", "-q",
                                             "/var/tmp/terok-busybox.tar", IMG, NULL});
    cr_assert_eq(r.exit_code, 0, "importing the test image: %s", r.err);
    cli_result_done(&r);
}

static void setup(void)
{
    char conf[4096], wrapper[1024];

    if (geteuid() != 0)
        cr_skip_test("needs root (rootful Podman)");
    if (access("/var/tmp/terok-busybox.tar", R_OK) != 0 || access("/usr/bin/podman", X_OK) != 0)
        cr_skip_test("podman or /var/tmp/terok-busybox.tar missing (scripts/setup-host.sh)");
    test_tmpdir_setup();
    podman_wrapper(wrapper, sizeof wrapper);
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = podman\n[runtime.podman]\n"
             "socket = private\ntimeout = 120s\nservice-idle = 20s\npodman = %s\n"
             "[shield]\nbackend = nft\nprofiles =\n",
             getenv("TEROK_TEST_PLUGIN_DIR"), wrapper);
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    snprintf(names[0], sizeof names[0], "shp%d-a", (int)getpid());
    snprintf(names[1], sizeof names[1], "shp%d-b", (int)getpid());
    start_server();
}

static void teardown(void)
{
    for (size_t i = 0; i < 2; i++) {
        cli_result r = CLI("rm", "-f", names[i]);
        cli_result_done(&r);
    }
    test_stop_private_podman(test_tmp);
    /* podman's overlay driver leaves its storage mounted: detach every mount under our tmpdir
     * (deepest first) so the tmpdir can go */
    test_unmount_under(test_tmp);
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    server = -1;
    test_tmpdir_teardown();
}

TestSuite(shield_podman, .init = setup, .fini = teardown, .timeout = 600);

/* nc from inside the container to the host's loopback server; true when it greeted us. */
static bool reaches_host(const char *name)
{
    char target[64];
    cli_result r;
    bool hello;

    snprintf(target, sizeof target, "nc -w 3 10.0.2.2 %d </dev/null", port);
    r = CLI("exec", name, "sh", "-c", target);
    hello = r.out && strstr(r.out, "hello");
    cli_result_done(&r);
    return hello;
}

Test(shield_podman, default_deny_live_allow_and_fail_closed)
{
    char bundle[4200], p[4300], allow[64];
    cli_result r;
    FILE *f;
    struct stat st;

    r = CLI("shield", "install-hooks");
    ok(&r, "install-hooks");
    cli_result_done(&r);

    r = CLI("run", "-d", "--name", names[0], "--network", "slirp4netns:allow_host_loopback=true",
            IMG, "sleep", "600");
    ok(&r, "run");
    cli_result_done(&r);

    /* default deny */
    cr_assert(!reaches_host(names[0]), "the shield let an unlisted host through");
    r = CLI("shield", "status", names[0], "--json");
    ok(&r, "status");
    cr_assert(strstr(r.out, "\"posture\""), "%s", r.out);
    cli_result_done(&r);

    /* live allow, no restart */
    snprintf(allow, sizeof allow, "10.0.2.2:%d", port);
    r = CLI("shield", "allow", names[0], allow);
    ok(&r, "shield allow");
    cli_result_done(&r);
    cr_assert(reaches_host(names[0]), "allowed target still refused");

    /* a restart re-applies the bundle, live decisions included */
    r = CLI("stop", names[0]);
    ok(&r, "stop");
    cli_result_done(&r);
    r = CLI("start", names[0]);
    ok(&r, "start");
    cli_result_done(&r);
    cr_assert(reaches_host(names[0]), "the live allow did not survive a restart");

    /* the container cannot alter its rules (no CAP_NET_ADMIN): busybox has no nft, so try the
     * kernel interface directly through ip(8)'s netlink: any change is refused */
    r = CLI("exec", names[0], "sh", "-c", "ip link set lo down");
    cr_assert_neq(r.exit_code, 0, "the container changed its network: %s", r.out);
    cli_result_done(&r);
    r = CLI("shield", "deny", names[0], allow);
    ok(&r, "shield deny");
    cli_result_done(&r);
    cr_assert(!reaches_host(names[0]), "denied target still answers");

    /* fail closed: a corrupt bundle keeps the container from starting */
    r = CLI("create", "--name", names[1], "--network", "slirp4netns:allow_host_loopback=true", IMG,
            "sleep", "600");
    ok(&r, "create");
    cli_result_done(&r);
    snprintf(bundle, sizeof bundle, "%s/state/shield-nft/containers/%s/shield", test_tmp, names[1]);
    snprintf(p, sizeof p, "%s/ruleset.nft", bundle);
    f = fopen(p, "ae");
    cr_assert(f, "no bundle at %s", bundle);
    fputs("flush ruleset\n", f);
    fclose(f);
    r = CLI("start", names[1]);
    cr_assert_neq(r.exit_code, 0, "a container with a corrupt bundle started");
    cli_result_done(&r);

    /* ... because the hook refused it, and said why */
    {
        char lp[4300], log[4096] = "";
        FILE *lf;

        snprintf(lp, sizeof lp, "%s/../shield-hook.log", bundle);
        lf = fopen(lp, "re");
        cr_assert(lf, "no shield-hook.log next to %s", bundle);
        log[fread(log, 1, sizeof log - 1, lf)] = 0;
        fclose(lf);
        cr_assert(strstr(log, "does not match"), "hook log: %s", log);
    }

    /* rm removes the bundle */
    r = CLI("rm", "-f", names[1]);
    ok(&r, "rm");
    cli_result_done(&r);
    cr_assert_neq(stat(bundle, &st), 0, "rm left the bundle");
    /* ... and the failed start's shield-hook.log with the container's directory */
    *strrchr(bundle, '/') = 0;
    cr_assert_neq(stat(bundle, &st), 0, "rm left '%s'", bundle);
}
