/* SPDX-License-Identifier: Apache-2.0 */
/* test-terok-init.c: terok-init on the host (not PID 1, so as a subreaper): exit codes, exec
 * failures, usage errors, signal forwarding, and the TCP -> unix bridge carrying 4 MB
 * byte-exact both ways with half-close propagated. In-container behaviour is in
 * test-podman-hardening.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "terok-test.h"

extern char **environ;

static const char *init(void)
{
    const char *p = getenv("TEROK_TEST_INIT");
    cr_assert(p, "TEROK_TEST_INIT is not set");
    return p;
}

static int run(const char *const *args, char **ret_err)
{
    const char *argv[16] = {init()};
    size_t n = 1;
    cli_result r;
    int code;

    while (*args && n < 15)
        argv[n++] = *args++;
    argv[n] = NULL;
    r = test_run(NULL, argv);
    code = r.exit_code;
    if (ret_err)
        *ret_err = strdup(r.err ? r.err : "");
    cli_result_done(&r);
    return code;
}

Test(terok_init, exit_codes)
{
    char *e = NULL;

    cr_assert_eq(run((const char *[]){"--", "sh", "-c", "exit 7", NULL}, NULL), 7);
    cr_assert_eq(run((const char *[]){"--", "true", NULL}, NULL), 0);
    cr_assert_eq(run((const char *[]){"--", "sh", "-c", "kill -9 $$", NULL}, NULL), 137);
    cr_assert_eq(run((const char *[]){"--", "/nonexistent/prog", NULL}, &e), 127);
    cr_assert(strstr(e, "terok-init: cannot run '/nonexistent/prog': No such file"), "%s", e);
    free(e);
    cr_assert_eq(run((const char *[]){"--", "/etc/passwd", NULL}, &e), 126);
    free(e);
    cr_assert_eq(run((const char *[]){"sh", NULL}, &e), 2); /* no "--" */
    cr_assert(strstr(e, "usage:"), "%s", e);
    free(e);
    cr_assert_eq(run((const char *[]){"-b", "99999=/x", "--", "true", NULL}, &e), 2);
    free(e);
    cr_assert_eq(run((const char *[]){"-b", "80=relative", "--", "true", NULL}, &e), 2);
    free(e);
}

static pid_t spawn(const char *const *argv, int out_fd)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

Test(terok_init, forwards_sigterm)
{
    const char *argv[] = {init(),
                          "--",
                          "sh",
                          "-c",
                          "trap 'echo got-TERM; exit 0' TERM; echo ready; "
                          "while :; do sleep 0.05; done",
                          NULL};
    char buf[256] = {0};
    size_t len = 0;
    int p[2], status;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    pid = spawn(argv, p[1]);
    close(p[1]);
    while (!strstr(buf, "ready\n") && len < sizeof buf - 1) {
        ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
        cr_assert_gt(n, 0);
        len += (size_t)n;
    }
    kill(pid, SIGTERM);
    while (len < sizeof buf - 1) {
        ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert(strstr(buf, "got-TERM"), "%s", buf);
    close(p[0]);
}

/* Echo server for the bridge: echoes until EOF, then half-closes. */
static void *echo_all(void *arg)
{
    int lfd = *(int *)arg;

    for (;;) {
        char buf[65536];
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ssize_t n;
        if (c < 0)
            return NULL;
        while ((n = read(c, buf, sizeof buf)) > 0)
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(c, buf + off, (size_t)(n - off));
                if (w <= 0)
                    break;
                off += w;
            }
        shutdown(c, SHUT_WR);
        close(c);
    }
}

static int tcp_connect(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < 200; i++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        usleep(10000);
    }
    return -1;
}

Test(terok_init, bridge_bytes_exact_with_half_close, .timeout = 60)
{
    char dir[] = "/tmp/terok-init-test.XXXXXX", bspec[300], sleeparg[] = "30";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    unsigned port = 20000 + (unsigned)(getpid() % 20000);
    size_t total = 4u << 20, sent = 0, got = 0;
    unsigned char *out = malloc(total), *in = malloc(total);
    int lfd, fd, status;
    pthread_t t;
    pid_t pid;

    cr_assert(mkdtemp(dir));
    snprintf(a.sun_path, sizeof a.sun_path, "%s/vault.sock", dir);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, 8), 0);
    cr_assert_eq(pthread_create(&t, NULL, echo_all, &lfd), 0);
    snprintf(bspec, sizeof bspec, "%u=%s", port, a.sun_path);
    pid = spawn((const char *[]){init(), "-b", bspec, "--", "/bin/sleep", sleeparg, NULL}, -1);

    for (size_t i = 0; i < total; i++)
        out[i] = (unsigned char)(i * 7 + i / 4093);
    fd = tcp_connect(port);
    cr_assert_geq(fd, 0, "cannot connect to the bridge on %u", port);
    while (got < total || sent < total) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        cr_assert_gt(poll(&pf, 1, 10000), 0, "bridge stalled at sent=%zu got=%zu", sent, got);
        if ((pf.revents & POLLOUT) && sent < total) {
            ssize_t n = send(fd, out + sent, MIN(total - sent, (size_t)65536), MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            if (sent == total)
                shutdown(fd, SHUT_WR); /* must reach the unix side as EOF */
        }
        if (pf.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, in + got, total - got, MSG_DONTWAIT);
            cr_assert_neq(n, 0, "early EOF after %zu bytes", got);
            if (n > 0)
                got += (size_t)n;
        }
    }
    cr_assert_eq(memcmp(in, out, total), 0);
    {
        char c;
        cr_assert_eq(recv(fd, &c, 1, 0), 0, "the server's EOF did not come through");
    }
    close(fd);
    kill(pid, SIGTERM);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "status %d", status);
    unlink(a.sun_path);
    rmdir(dir);
    free(in);
    free(out);
}
