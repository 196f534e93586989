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
#include "daemon/spawn.h"
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
    /* the clearance daemon needs neither libcurl nor libmicrohttpd: it is terok-sandbox */
    return daemon_spawn(sb, config_file, "clearance", true, clearance_client_ping, err);
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
