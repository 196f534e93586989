/* SPDX-License-Identifier: Apache-2.0 */
/* broker/vault-client.c: how the CLI reaches the vault daemon: ping its control socket, start
 * it on demand (terok-sandbox-daemon `vault serve`, detached, logging to <state>/logs/vault.log),
 * and ask it to open or close a container's socket. Never prints. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "broker/vault-client.h"
#include "broker/vault-daemon.h"
#include "daemon/ctl.h"
#include "error.h"
#include "paths.h"
#include "terok-build-config.h"
#include "util/macro.h"

extern char **environ;

int vault_ctl_path(const char *runtime_dir, char **ret)
{
    return asprintf(ret, "%s/vault.ctl", runtime_dir) < 0 ? -ENOMEM : 0;
}

static int call(sandbox *sb, const char *op, const char *container, int timeout_ms,
                terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    json_object *req = json_object_new_object(), *reply = NULL;
    int r;

    if (vault_ctl_path(sb->paths.runtime_dir, &path) < 0 || !req) {
        json_object_put(req);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    json_object_object_add(req, "op", json_object_new_string(op));
    if (container)
        json_object_object_add(req, "container", json_object_new_string(container));
    r = ctl_call(path, req, timeout_ms, &reply, err);
    json_object_put(req);
    json_object_put(reply);
    return r;
}

int vault_client_ping(sandbox *sb, terok_error *err)
{
    return call(sb, "ping", NULL, 2000, err);
}

int vault_log_open(sandbox *sb, char **ret_path, terok_error *err)
{
    _cleanup_free_ char *logdir = NULL, *logpath = NULL;
    int r, fd;

    if (asprintf(&logdir, "%s/logs", sb->paths.state_dir) < 0 ||
        asprintf(&logpath, "%s/vault.log", logdir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = mkdir_safe(sb->paths.state_dir, 0700, err);
    if (r < 0)
        return r;
    r = mkdir_safe(logdir, 0700, err);
    if (r < 0)
        return r;
    fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "cannot open '%s': %s", logpath,
                               strerror(errno));
    if (ret_path)
        *ret_path = TAKE_PTR(logpath);
    return fd;
}

int vault_client_ensure(sandbox *sb, const char *config_file, terok_error *err)
{
    _cleanup_free_ char *logpath = NULL, *exe = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    const char *argv[8];
    size_t n = 0;
    pid_t pid;
    int r, fd;

    if (vault_client_ping(sb, NULL) == 0)
        return 0;
    exe = daemon_exe_path();
    if (!exe)
        return terok_error_set(err, -ENOENT,
                               "terok-sandbox-daemon was not found (looked next to this binary "
                               "and in '%s'); reinstall terok-sandbox",
                               TEROK_LIBEXEC_DIR);
    fd = vault_log_open(sb, &logpath, err);
    if (fd < 0)
        return fd;
    argv[n++] = "terok-sandbox-daemon";
    if (config_file) {
        argv[n++] = "--config";
        argv[n++] = config_file;
    }
    argv[n++] = "vault";
    argv[n++] = "serve";
    argv[n++] = "--foreground";
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    r = posix_spawn(&pid, exe, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fd);
    if (r != 0)
        return terok_error_set(err, -r, "cannot start the vault daemon: %s", strerror(r));
    /* The daemon is not our child for long: it setsid()s and outlives us; reap it if it dies
     * early so the failure shows up here. */
    for (int i = 0; i < 100; i++) {
        int st;
        if (vault_client_ping(sb, NULL) == 0)
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return terok_error_set(err, -ECHILD,
                                   "the vault daemon exited at start (status %d); see '%s'",
                                   WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), logpath);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return terok_error_set(err, -ETIMEDOUT, "the vault daemon did not answer within 5 s; see '%s'",
                           logpath);
}

int vault_client_open(sandbox *sb, const char *container, terok_error *err)
{
    int r = call(sb, "open", container, 5000, err);

    return r < 0 ? terok_error_prefix(err, "vault daemon: opening the socket of '%s'", container)
                 : 0;
}

int vault_client_close(sandbox *sb, const char *container, terok_error *err)
{
    return call(sb, "close", container, 5000, err);
}

int vault_client_stop(sandbox *sb, terok_error *err)
{
    return call(sb, "stop", NULL, 5000, err);
}
