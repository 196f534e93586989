/* SPDX-License-Identifier: Apache-2.0 */
/* terok-test.c: shared test helpers (see terok-test.h). */
#include <criterion/hooks.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "terok-test.h"

extern char **environ;
char *test_tmp;

void test_tmpdir_setup(void)
{
    char tmpl[] = "/tmp/terok-test.XXXXXX";
    char *d = mkdtemp(tmpl);
    char buf[4096];

    cr_assert(d, "mkdtemp failed");
    test_tmp = strdup(d);
    snprintf(buf, sizeof buf, "%s/state", d);
    setenv("TEROK_SANDBOX_STATE_DIR", buf, 1);
    snprintf(buf, sizeof buf, "%s/run", d);
    setenv("TEROK_SANDBOX_RUNTIME_DIR", buf, 1);
    snprintf(buf, sizeof buf, "%s/config", d);
    setenv("XDG_CONFIG_HOME", buf, 1);
    snprintf(buf, sizeof buf, "%s/home", d);
    mkdir(buf, 0700);
    setenv("HOME", buf, 1);
    unsetenv("TEROK_SANDBOX_CONFIG");
}

void test_tmpdir_teardown(void)
{
    if (test_tmp) {
        const char *argv[] = {"rm", "-rf", test_tmp, NULL};
        cli_result r = test_run(NULL, argv);
        cli_result_done(&r);
        free(test_tmp);
        test_tmp = NULL;
    }
}

pid_t test_private_podman_pid(const char *dir)
{
    char path[4200], buf[32] = "";
    char *end;
    long v;
    FILE *f;

    snprintf(path, sizeof path, "%s/run/runtime-podman/podman.pid", dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    v = strtol(buf, &end, 10);
    return v > 1 && v <= INT_MAX && (*end == '\n' || !*end) ? (pid_t)v : 0;
}

void test_stop_private_podman(const char *dir)
{
    pid_t pid = test_private_podman_pid(dir);

    if (pid > 0) /* it exits when idle anyway: do not wait for it */
        (void)kill(pid, SIGTERM);
}

void test_unmount_under(const char *dir)
{
    size_t n = strlen(dir);

    for (int pass = 0; geteuid() == 0 && pass < 4; pass++) {
        FILE *m = fopen("/proc/self/mounts", "re");
        char line[8192], mp[4096];
        bool any = false;

        while (m && fgets(line, sizeof line, m))
            if (sscanf(line, "%*s %4095s", mp) == 1 && strncmp(mp, dir, n) == 0 &&
                umount2(mp, MNT_DETACH) == 0)
                any = true;
        if (m)
            fclose(m);
        if (!any)
            break;
    }
}

const char *test_path(const char *rel)
{
    static char bufs[8][4096];
    static unsigned i;
    char *b = bufs[i++ % 8];

    snprintf(b, 4096, "%s/%s", test_tmp, rel);
    return b;
}

static void mkdir_parents(const char *path)
{
    char buf[4096];

    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
}

const char *test_write_file(const char *rel, const char *content, unsigned mode)
{
    const char *p = test_path(rel);
    FILE *f;

    mkdir_parents(p);
    f = fopen(p, "we");
    cr_assert(f, "cannot write %s", p);
    fputs(content, f);
    fclose(f);
    chmod(p, mode ? mode : 0644);
    return p;
}

const char *test_write_config(const char *extra)
{
    char buf[16384];
    const char *dir = getenv("TEROK_TEST_PLUGIN_DIR");

    cr_assert(dir, "TEROK_TEST_PLUGIN_DIR not set (run through meson test)");
    /* [shield] last, so the line numbers in `extra` stay what the tests expect */
    snprintf(buf, sizeof buf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n%s\n[shield]\nbackend = none\n",
             dir, extra ? extra : "");
    return test_write_file("sandbox.conf", buf, 0600);
}

static char *slurp_fd(int fd)
{
    size_t n = 0, cap = 4096;
    char *b = malloc(cap);
    ssize_t k;

    while (b && (k = read(fd, b + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (cap - n < 2) {
            cap *= 2;
            b = realloc(b, cap);
        }
    }
    if (b)
        b[n] = 0;
    return b;
}

cli_result test_run(const char *input, const char *const *argv)
{
    cli_result res = {.exit_code = -1};
    int in[2], out[2], err[2], st;
    posix_spawn_file_actions_t fa;
    pid_t pid;

    cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 &&
              pipe2(err, O_CLOEXEC) == 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    cr_assert(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) == 0,
              "cannot run %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (input) {
        size_t len = strlen(input), off = 0;
        while (off < len) {
            ssize_t k = write(in[1], input + off, len - off);
            if (k <= 0)
                break;
            off += (size_t)k;
        }
    }
    close(in[1]);
    /* stdout first, then stderr: outputs here are small enough for pipe buffers. */
    res.out = slurp_fd(out[0]);
    res.err = slurp_fd(err[0]);
    close(out[0]);
    close(err[0]);
    while (waitpid(pid, &st, 0) < 0)
        ;
    res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return res;
}

cli_result test_cli(const char *input, const char *const *argv)
{
    const char *cli = getenv("TEROK_TEST_CLI");
    const char *full[256];
    size_t i = 0;

    cr_assert(cli, "TEROK_TEST_CLI not set (run through meson test)");
    full[i++] = cli;
    for (; argv[i - 1] && i < 255; i++)
        full[i] = argv[i - 1];
    full[i] = NULL;
    return test_run(input, full);
}

void cli_result_done(cli_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* A private Podman service a test started (runtime-podman starts one when none answers) idles on
 * after the test for its idle timeout. Running beside the next Podman suite it is a second
 * service on the same storage, and Podman 4.3 then wedges (stuck `container cleanup`
 * processes). Every test binary stops the services its own tests started when they are done:
 * each process of a test binary carries TEROK_TEST_RUNNER_PID (the Criterion runner's pid, set
 * once at start and inherited by the test workers, the CLI they run and the services that
 * starts), so services of another test binary running at the same time are never touched. */
#define RUNNER_ENV "TEROK_TEST_RUNNER_PID"

__attribute__((constructor)) static void mark_runner(void)
{
    char b[32];

    if (getenv(RUNNER_ENV))
        return;
    snprintf(b, sizeof b, "%d", (int)getpid());
    setenv(RUNNER_ENV, b, 1);
}

static bool is_test_podman_service(const char *cmdline, size_t n)
{
    bool podman = false, service = false, ours = false;

    for (size_t i = 0; i < n; i += strlen(cmdline + i) + 1) {
        const char *a = cmdline + i;
        const char *base = strrchr(a, '/');

        if (i == 0)
            podman = streq(base ? base + 1 : a, "podman");
        else if (streq(a, "service"))
            service = true;
        else if (strncmp(a, "unix:///tmp/terok-", 18) == 0)
            ours = true;
    }
    return podman && service && ours;
}

/* Whether process `pid` carries our runner's mark. */
static bool started_by_us(long pid)
{
    char path[64], want[64], buf[65536];
    size_t wn;
    ssize_t k;
    int fd;

    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    wn = (size_t)snprintf(want, sizeof want, RUNNER_ENV "=%d", (int)getpid());
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return false;
    buf[k] = 0;
    for (size_t i = 0; i < (size_t)k; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, want, wn) == 0 && buf[i + wn] == 0)
            return true;
    return false;
}

static void stop_test_podman_services(void)
{
    pid_t pids[64];
    size_t n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) && n < 64) {
        char path[64], buf[4096];
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        ssize_t k;
        int fd;

        if (*end || pid <= 1)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0)
            continue;
        buf[k] = 0;
        if (is_test_podman_service(buf, (size_t)k) && started_by_us(pid) &&
            kill((pid_t)pid, SIGTERM) == 0)
            pids[n++] = (pid_t)pid;
    }
    closedir(d);
    for (int t = 0; t < 100; t++) {
        bool alive = false;
        for (size_t i = 0; i < n; i++) {
            (void)waitpid(pids[i], NULL, WNOHANG); /* a service the test spawned itself */
            if (kill(pids[i], 0) == 0)
                alive = true;
        }
        if (!alive)
            return;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < n; i++)
        (void)kill(pids[i], SIGKILL);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    stop_test_podman_services();
}

char *test_git_ok(const char *const *argv)
{
    cli_result r = test_run(NULL, argv);
    char *out;
    size_t n;

    cr_assert(r.exit_code == 0, "%s %s %s failed (%d): %s", argv[0], argv[1] ? argv[1] : "",
              argv[1] && argv[2] ? argv[2] : "", r.exit_code, r.err);
    out = r.out;
    n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = 0;
    free(r.err);
    return out;
}

void test_commit_file(const char *work, const char *file, const char *content, const char *msg)
{
    char path[2048];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", work, file);
    f = fopen(path, "we");
    cr_assert(f != NULL, "cannot write '%s'", path);
    if (content)
        fputs(content, f);
    else
        fprintf(f, "%s\n", msg);
    fclose(f);
    free(TEST_GIT("-C", work, "add", file));
    free(TEST_GIT("-C", work, "commit", "-q", "-m", msg));
}

bool test_pid_alive(int pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "re");
    if (!f)
        return false;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}
