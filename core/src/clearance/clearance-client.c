/* SPDX-License-Identifier: Apache-2.0 */
/* clearance/clearance-client.c: ping the clearance daemon's control socket, start it on demand
 * (the same binary, `clearance serve`, detached), and tell it about containers. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "clearance/clearance-client.h"
#include "clearance/clearance-daemon.h"
#include "daemon/ctl.h"
#include "error.h"
#include "util/macro.h"

extern char **environ;

int clearance_client_call(sandbox *sb, json_object *request, int timeout_ms,
                          json_object **ret_reply, terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    int r;

    if (!request || clearance_ctl_path(sb->paths.runtime_dir, &path) < 0) {
        json_object_put(request);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    r = ctl_call(path, request, timeout_ms, ret_reply, err);
    json_object_put(request);
    return r;
}

static int simple(sandbox *sb, const char *op, const char *container, int timeout_ms,
                  terok_error *err)
{
    json_object *req = json_object_new_object(), *reply = NULL;
    int r;

    if (req) {
        json_object_object_add(req, "op", json_object_new_string(op));
        if (container)
            json_object_object_add(req, "container", json_object_new_string(container));
    }
    r = clearance_client_call(sb, req, timeout_ms, &reply, err);
    json_object_put(reply);
    return r;
}

int clearance_client_ping(sandbox *sb, terok_error *err)
{
    return simple(sb, "ping", NULL, 2000, err);
}

int clearance_client_ensure(sandbox *sb, const char *config_file, terok_error *err)
{
    _cleanup_free_ char *logdir = NULL, *logpath = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    const char *argv[8];
    size_t n = 0;
    pid_t pid;
    int r, fd;

    if (clearance_client_ping(sb, NULL) == 0)
        return 0;
    if (asprintf(&logdir, "%s/logs", sb->paths.state_dir) < 0 ||
        asprintf(&logpath, "%s/clearance.log", logdir) < 0)
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
    argv[n++] = "terok-sandbox";
    if (config_file) {
        argv[n++] = "--config";
        argv[n++] = config_file;
    }
    argv[n++] = "clearance";
    argv[n++] = "serve";
    argv[n++] = "--foreground";
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    /* Nothing else of the caller's: a long-lived daemon must not keep a pipe, a socket or a
     * lock (flock(1) around a test run) of whoever happened to start it. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    r = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fd);
    if (r != 0)
        return terok_error_set(err, -r, "cannot start the clearance daemon: %s", strerror(r));
    for (int i = 0; i < 200; i++) {
        int st;
        struct timespec ts = {0, 25 * 1000 * 1000};

        if (clearance_client_ping(sb, NULL) == 0)
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            /* another CLI may have started one at the same time: ours lost the socket race */
            if (clearance_client_ping(sb, NULL) == 0)
                return 0;
            return terok_error_set(err, -ECHILD,
                                   "the clearance daemon exited at start (status %d); see '%s'",
                                   WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), logpath);
        }
        nanosleep(&ts, NULL);
    }
    return terok_error_set(err, -ETIMEDOUT,
                           "the clearance daemon did not answer within 5 s; see '%s'", logpath);
}

int clearance_client_attach(sandbox *sb, const char *container, terok_error *err)
{
    int r = simple(sb, "attach", container, 5000, err);

    return r < 0 ? terok_error_prefix(err, "clearance daemon: watching '%s'", container) : 0;
}

int clearance_client_forget(sandbox *sb, const char *container, terok_error *err)
{
    return simple(sb, "forget", container, 5000, err);
}

int clearance_client_stop(sandbox *sb, terok_error *err)
{
    return simple(sb, "stop", NULL, 5000, err);
}
