/* SPDX-License-Identifier: Apache-2.0 */
/* podman-service.c: which Podman service we talk to. A configured socket, else the user's
 * (rootless) or the system's (rootful) service when it answers, else a private
 * `podman system service` on <runtime_dir>/runtime-podman/podman.sock that we start (with the
 * shield's hooks dir), share between invocations under a lock, and that exits when idle. */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "podman.h"

extern char **environ;

#define SERVICE_START_TIMEOUT_MS 5000

static size_t on_ping_header(char *data, size_t size, size_t n, void *userdata)
{
    static const char h[] = "Libpod-Api-Version:";
    char **ver = userdata;
    size_t len = size * n;

    if (len > sizeof h && strncasecmp(data, h, sizeof h - 1) == 0) {
        const char *v = data + sizeof h - 1;
        size_t vl = len - (sizeof h - 1);
        while (vl && isspace((unsigned char)*v))
            v++, vl--;
        while (vl && isspace((unsigned char)v[vl - 1]))
            vl--;
        free(*ver);
        *ver = strndup(v, vl);
    }
    return len;
}

static size_t discard(char *data, size_t size, size_t n, void *userdata)
{
    return size * n;
}

int service_ping(podman *p, const char *sock, char **ret_version, terok_error *err)
{
    _cleanup_free_ char *ver = NULL;
    long status = 0;
    CURLcode cc;

    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return terok_perr(err, -ENAMETOOLONG, "socket path '%s' is too long for AF_UNIX", sock);
    curl_easy_reset(p->curl);
    curl_easy_setopt(p->curl, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(p->curl, CURLOPT_URL, "http://d" PODMAN_API "/_ping");
    curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, p->curl_err);
    curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, on_ping_header);
    curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, &ver);
    curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, discard);
    p->curl_err[0] = 0;
    cc = curl_easy_perform(p->curl);
    if (cc != CURLE_OK)
        return terok_perr(err, -ECONNREFUSED, "podman service at '%s' does not answer: %s", sock,
                          p->curl_err[0] ? p->curl_err : curl_easy_strerror(cc));
    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return terok_perr(err, -EPROTO, "'%s' answered _ping with HTTP %ld: not a Podman service",
                          sock, status);
    if (!ver)
        return terok_perr(err, -EPROTO,
                          "'%s' sent no Libpod-Api-Version header: a Docker-compatible service, "
                          "not Podman's libpod API",
                          sock);
    if (strtol(ver, NULL, 10) < PODMAN_MIN_API_MAJOR)
        return terok_perr(err, -EPROTONOSUPPORT,
                          "podman service at '%s' speaks libpod API %s; terok-sandbox needs %d.0 "
                          "or newer",
                          sock, ver, PODMAN_MIN_API_MAJOR);
    if (ret_version)
        *ret_version = TAKE_PTR(ver);
    return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = strdup(path);

    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return negative_errno();
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return negative_errno();
    return 0;
}

int storage_lock(podman *p)
{
    _cleanup_free_ char *path = NULL;
    int fd;

    if (!p->private_dir || mkdir_p(p->private_dir, 0700) < 0 ||
        asprintf(&path, "%s/storage.lock", p->private_dir) < 0)
        return -EBADF;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -EBADF; /* best effort: never fail an operation for want of this lock */
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            close(fd);
            return -EBADF;
        }
    return fd;
}

static int use(podman *p, const char *sock, char *version, bool is_private)
{
    char *s = strdup(sock);

    if (!s) {
        free(version);
        return -ENOMEM;
    }
    free(p->socket);
    free(p->api_version);
    p->socket = s;
    p->api_version = version;
    p->is_private = is_private;
    p->broken = false;
    return 0;
}

static void reap(podman *p)
{
    if (p->service_pid > 0 && waitpid(p->service_pid, NULL, WNOHANG) == p->service_pid)
        p->service_pid = 0;
}

static int spawn_service(podman *p, const char *sock, pid_t *ret_pid, terok_error *err)
{
    _cleanup_free_ char *log = NULL, *listen = NULL;
    _cleanup_close_ int logfd = -EBADF;
    char timearg[48];
    const char *argv[10];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    size_t n = 0;
    pid_t pid;
    int r;

    if (asprintf(&log, "%s/service.log", p->plugin_state) < 0 ||
        asprintf(&listen, "unix://%s", sock) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0)
        return terok_perr(err, negative_errno(), "opening '%s': %s", log, strerror(errno));
    snprintf(timearg, sizeof timearg, "--time=%lld", (long long)p->idle_s);
    argv[n++] = p->podman_binary;
    if (p->hooks_dir) {
        argv[n++] = "--hooks-dir";
        argv[n++] = p->hooks_dir;
    }
    argv[n++] = "system";
    argv[n++] = "service";
    argv[n++] = timearg;
    argv[n++] = listen;
    argv[n] = NULL;

    sigemptyset(&none);
    sigemptyset(&def);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGHUP,  SIGINT,
                                SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ELEMENTSOF(reset); i++)
        sigaddset(&def, reset[i]);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, logfd, 1);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* its own session: it outlives us and our terminal's signals */
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    r = posix_spawnp(&pid, p->podman_binary, &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (r != 0)
        return terok_perr(err, -r, "starting '%s system service': %s", p->podman_binary,
                          strerror(r));
    terok_plog(TEROK_LOG_INFO, "started private podman service (pid %d) on '%s', log '%s'",
               (int)pid, sock, log);
    *ret_pid = pid;
    return 0;
}

static void write_pidfile(podman *p, pid_t pid)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int fd = -EBADF;
    char buf[32];
    int n;

    if (asprintf(&path, "%s/podman.pid", p->private_dir) < 0)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    if (fd < 0 || write(fd, buf, n) != n)
        terok_plog(TEROK_LOG_WARNING, "cannot write '%s': %s", path, strerror(errno));
}

/* The pid in our pidfile when it is still a `podman … system service … unix://<sock>`. */
static pid_t recorded_service(podman *p, const char *sock)
{
    _cleanup_free_ char *pidfile = NULL, *proc = NULL, *listen = NULL;
    _cleanup_close_ int fd = -EBADF;
    char buf[4096];
    ssize_t n;
    long pid;

    if (asprintf(&pidfile, "%s/podman.pid", p->private_dir) < 0 ||
        asprintf(&listen, "unix://%s", sock) < 0)
        return 0;
    fd = open(pidfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || (n = read(fd, buf, sizeof buf - 1)) <= 0)
        return 0;
    buf[n] = 0;
    pid = strtol(buf, NULL, 10);
    closep(&fd);
    if (pid <= 1 || pid > INT32_MAX || asprintf(&proc, "/proc/%ld/cmdline", pid) < 0)
        return 0;
    fd = open(proc, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (n = read(fd, buf, sizeof buf - 1)) <= 0)
        return 0;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++) /* argv is NUL-separated */
        if (!buf[i])
            buf[i] = ' ';
    return strstr(buf, " system service ") && strstr(buf, listen) ? (pid_t)pid : 0;
}

/* A service of ours that is alive but does not answer (a loaded machine, or wedged): give it
 * more time, then end it, so that we never leave a second service beside it. */
static void retire_unanswering(podman *p, const char *sock)
{
    pid_t pid = recorded_service(p, sock);

    if (!pid)
        return;
    for (int i = 0; i < 10; i++) {
        if (service_ping(p, sock, NULL, NULL) >= 0)
            return;
        nanosleep(&(struct timespec){0, 500 * 1000 * 1000}, NULL);
    }
    terok_plog(TEROK_LOG_WARNING,
               "private podman service (pid %d) on '%s' does not answer; restarting it", (int)pid,
               sock);
    kill(pid, SIGTERM);
    for (int i = 0; i < 40 && kill(pid, 0) == 0; i++) {
        waitpid(pid, NULL, WNOHANG);
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
}

static int private_ensure(podman *p, terok_error *err)
{
    _cleanup_free_ char *sock = NULL, *lock = NULL, *version = NULL;
    _cleanup_close_ int lockfd = -EBADF;
    pid_t pid = 0;
    int r;

    if (!p->private_dir || !p->plugin_state)
        return terok_perr(err, -EINVAL, "no runtime/state directory for a private podman service");
    if ((r = mkdir_p(p->private_dir, 0700)) < 0)
        return terok_perr(err, r, "creating '%s': %s", p->private_dir, strerror(-r));
    if ((r = mkdir_p(p->plugin_state, 0700)) < 0)
        return terok_perr(err, r, "creating '%s': %s", p->plugin_state, strerror(-r));
    if (asprintf(&sock, "%s/podman.sock", p->private_dir) < 0 ||
        asprintf(&lock, "%s/podman.lock", p->private_dir) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");

    /* One starter at a time across processes and threads (flock is per open file). */
    lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0)
        return terok_perr(err, negative_errno(), "opening '%s': %s", lock, strerror(errno));
    while (flock(lockfd, LOCK_EX) < 0)
        if (errno != EINTR)
            return terok_perr(err, negative_errno(), "locking '%s': %s", lock, strerror(errno));

    if (service_ping(p, sock, &version, NULL) >= 0)
        return use(p, sock, TAKE_PTR(version), true);
    retire_unanswering(p, sock);
    if (service_ping(p, sock, &version, NULL) >= 0)
        return use(p, sock, TAKE_PTR(version), true);
    if (unlink(sock) < 0 && errno != ENOENT)
        return terok_perr(err, negative_errno(), "removing stale '%s': %s", sock, strerror(errno));
    if ((r = spawn_service(p, sock, &pid, err)) < 0)
        return r;
    p->service_pid = pid;
    write_pidfile(p, pid);

    for (int waited = 0; waited < SERVICE_START_TIMEOUT_MS; waited += 10) {
        int status;

        if (waitpid(pid, &status, WNOHANG) == pid) {
            p->service_pid = 0;
            return terok_perr(err, -ECHILD,
                              "private podman service exited at start (status %d); see "
                              "'%s/service.log'",
                              WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                              p->plugin_state);
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        if (access(sock, F_OK) < 0)
            continue;
        if (service_ping(p, sock, &version, NULL) >= 0)
            return use(p, sock, TAKE_PTR(version), true);
    }
    return terok_perr(err, -ETIMEDOUT,
                      "private podman service on '%s' did not answer within %d ms; see "
                      "'%s/service.log'",
                      sock, SERVICE_START_TIMEOUT_MS, p->plugin_state);
}

int service_connect(podman *p, terok_error *err)
{
    _cleanup_free_ char *cand = NULL, *version = NULL;
    int r;

    reap(p);
    if (streq(p->configured, "private"))
        return private_ensure(p, err);
    if (!streq(p->configured, "auto")) {
        r = service_ping(p, p->configured, &version, err);
        if (r < 0)
            return r;
        return use(p, p->configured, TAKE_PTR(version), false);
    }
    if (p->rootless) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (!isempty(xdg) && asprintf(&cand, "%s/podman/podman.sock", xdg) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    } else if (!(cand = strdup("/run/podman/podman.sock")))
        return terok_perr(err, -ENOMEM, "out of memory");
    if (cand && access(cand, F_OK) == 0) {
        r = service_ping(p, cand, &version, NULL);
        if (r >= 0)
            return use(p, cand, TAKE_PTR(version), false);
        /* an answering but unusable service (too old) is an error, not a reason to start ours */
        if (r == -EPROTONOSUPPORT)
            return service_ping(p, cand, NULL, err);
        terok_plog(TEROK_LOG_DEBUG, "'%s' does not answer; using a private service", cand);
    }
    return private_ensure(p, err);
}
