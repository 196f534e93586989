/* SPDX-License-Identifier: Apache-2.0 */
/* daemon/spawn.c: on-demand start of terok-sandbox-daemon for a service (spawn.h). */
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "daemon/ctl.h"
#include "daemon/spawn.h"
#include "error.h"
#include "paths.h"
#include "terok-build-config.h"
#include "util/macro.h"

extern char **environ;

int daemon_container_dir(sandbox *sb, const char *name, char **ret, terok_error *err)
{
    _cleanup_free_ char *dir = NULL;
    int r;

    if (!container_name_is_valid(name))
        return terok_error_set(err, -EINVAL, "invalid container name '%s'", name);
    if (asprintf(&dir, "%s/containers", sb->paths.runtime_dir) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = mkdir_safe(dir, 0700, err);
    if (r < 0)
        return r;
    free(dir);
    dir = NULL;
    if (asprintf(&dir, "%s/containers/%s", sb->paths.runtime_dir, name) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return terok_error_set(err, negative_errno(), "cannot create '%s': %s", dir,
                               strerror(errno));
    (void)chmod(dir, 0711);
    *ret = TAKE_PTR(dir);
    return 0;
}

int daemon_log_open(sandbox *sb, const char *service, char **ret_path, terok_error *err)
{
    _cleanup_free_ char *logdir = NULL, *logpath = NULL;
    int r, fd;

    if (asprintf(&logdir, "%s/logs", sb->paths.state_dir) < 0 ||
        asprintf(&logpath, "%s/%s.log", logdir, service) < 0)
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

int daemon_spawn(sandbox *sb, const char *config_file, const char *service, bool in_cli,
                 int (*ping)(sandbox *sb, terok_error *err), terok_error *err)
{
    _cleanup_free_ char *logpath = NULL, *exe = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    const char *argv[8];
    size_t n = 0;
    pid_t pid;
    int r, fd;

    if (ping(sb, NULL) == 0)
        return 0;
    exe = in_cli ? strdup("/proc/self/exe") : daemon_exe_path();
    if (!exe && in_cli)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (!exe)
        return terok_error_set(err, -ENOENT,
                               "terok-sandbox-daemon was not found (looked next to this binary "
                               "and in '%s'); reinstall terok-sandbox",
                               TEROK_LIBEXEC_DIR);
    fd = daemon_log_open(sb, service, &logpath, err);
    if (fd < 0)
        return fd;
    argv[n++] = in_cli ? "terok-sandbox" : "terok-sandbox-daemon";
    if (config_file) {
        argv[n++] = "--config";
        argv[n++] = config_file;
    }
    argv[n++] = service;
    argv[n++] = "serve";
    argv[n++] = "--foreground";
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    /* Nothing else of ours: an inherited fd would outlive this command in the daemon (a
     * `flock LOCK terok-sandbox run ...` would stay locked for as long as the daemon runs). */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    r = posix_spawn(&pid, exe, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fd);
    if (r != 0)
        return terok_error_set(err, -r, "cannot start the %s daemon: %s", service, strerror(r));
    /* The daemon is not our child for long: it setsid()s and outlives us; reap it if it dies
     * early so the failure shows up here. */
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 25 * 1000 * 1000};
        int st;

        if (ping(sb, NULL) == 0)
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            /* another CLI may have started one at the same time: ours lost the socket race */
            if (ping(sb, NULL) == 0)
                return 0;
            return terok_error_set(err, -ECHILD,
                                   "the %s daemon exited at start (status %d); see '%s'", service,
                                   WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), logpath);
        }
        nanosleep(&ts, NULL);
    }
    return terok_error_set(err, -ETIMEDOUT, "the %s daemon did not answer within 5 s; see '%s'",
                           service, logpath);
}

int daemon_call(sandbox *sb, const char *service, const char *op, const char *container,
                int timeout_ms, terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    json_object *req = json_object_new_object(), *reply = NULL;
    int r;

    if (asprintf(&path, "%s/%s.ctl", sb->paths.runtime_dir, service) < 0 || !req) {
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
