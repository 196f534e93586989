/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-clearance.c: `terok-sandbox clearance ...`: the daemon that collects blocked connections
 * (serve, stop, status), the queue of pending blocked destinations, and the operator's verdict
 * on one (allow, deny: applied live through the shield, no restart). The desktop notification
 * front end joins later; this is the terminal one. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "clearance/clearance-client.h"
#include "clearance/clearance-daemon.h"
#include "cli.h"
#include "config.h"
#include "log.h"

static void clearance_help(void)
{
    printf("Usage: terok-sandbox clearance COMMAND [OPTIONS] ...\n"
           "\n"
           "Blocked connections of shielded containers, and the operator's verdict on them.\n"
           "The clearance daemon reads every running shielded container's blocked connections,\n"
           "writes them to the audit ('shield logs') and keeps them as pending requests;\n"
           "'run' and 'start' start it on demand.\n"
           "\n"
           "Commands:\n"
           "  pending [CONTAINER] [--json]            blocked destinations awaiting a verdict\n"
           "  allow CONTAINER DEST [--for DURATION]   allow a pending destination live\n"
           "  deny CONTAINER DEST                     deny it (and clear the request)\n"
           "  serve [--foreground]                    run the daemon (default: detach once\n"
           "                                          ready and print its pid)\n"
           "  status [--json]                         the daemon and the containers it watches\n"
           "  stop                                    stop the daemon\n"
           "\n"
           "DEST is a request id from 'pending', or its address or domain with an optional\n"
           "port (1.2.3.4, 1.2.3.4:443, [2001:db8::1]:443, example.com:443); it must match a\n"
           "pending request. An id applies to exactly that destination and port.\n"
           "\n"
           "Options:\n"
           "  -h, --help   show this help (also after a command)\n"
           "\n"
           "Exit status: 0 done, 1 failed, 2 bad command line, 4 no such container or no\n"
           "matching request, 5 the shield backend could not be used.\n");
}

/* --help anywhere; positional arguments into pos (npos_min..npos_max). */
static int parse(cli *c, const char *cmd, int argc, char **argv, int npos_min, int npos_max,
                 const char **pos, const char **for_arg, bool *foreground)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"for", required_argument, NULL, 'f'},
        {"foreground", no_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    int o, n = 0;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            clearance_help();
            return -1;
        case 'j':
            c->json = true;
            break;
        case 'f':
            if (!for_arg)
                return cli_usage_error(c, "clearance", "%s takes no --for", cmd);
            *for_arg = optarg;
            break;
        case 'F':
            if (!foreground)
                return cli_usage_error(c, "clearance", "%s takes no --foreground", cmd);
            *foreground = true;
            break;
        default:
            return cli_usage_error(c, "clearance", "unknown option for '%s'", cmd);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (n >= npos_max)
            return cli_usage_error(c, "clearance", "too many arguments for '%s'", cmd);
        pos[n++] = argv[i];
    }
    if (n < npos_min)
        return cli_usage_error(c, "clearance", "'%s' needs %s", cmd,
                               npos_min == 2 ? "a CONTAINER and a DEST" : "a CONTAINER");
    return 0;
}

/* A reply error from the daemon keeps its message; "no such ..." maps to EXIT_NOTFOUND. */
static int daemon_fail(cli *c, int r, terok_error *err)
{
    const char *m = terok_error_message(err);

    if (r == -ENOENT || r == -ECONNREFUSED)
        return cli_failf(c, EXIT_FAIL,
                         "no clearance daemon is running ('clearance serve', or run a shielded "
                         "container)");
    if (r == -EREMOTEIO && (strstr(m, "no such container") || strstr(m, "no pending request")))
        return cli_failf(c, EXIT_NOTFOUND, "%s", m);
    return cli_fail(c, r, err);
}

static json_object *request(const char *op)
{
    json_object *o = json_object_new_object();

    if (o)
        json_object_object_add(o, "op", json_object_new_string(op));
    return o;
}

static int do_pending(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *pos[1] = {0};
    json_object *req, *reply = NULL, *arr = NULL, *left = NULL;
    sandbox *sb;
    int r;

    r = parse(c, "pending", argc, argv, 0, 1, pos, NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    if (pos[0] && !container_name_is_valid(pos[0]))
        return cli_usage_error(c, "clearance", "invalid container name '%s'", pos[0]);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    req = request("pending");
    if (req && pos[0])
        json_object_object_add(req, "container", json_object_new_string(pos[0]));
    r = clearance_client_call(sb, req, 5000, &reply, &err);
    if (r < 0)
        return daemon_fail(c, r, &err);
    json_object_object_get_ex(reply, "pending", &arr);
    json_object_object_get_ex(reply, "left_off", &left);
    if (c->json) {
        cli_json_print(arr ? json_object_get(arr) : json_object_new_array());
        json_object_put(reply);
        return EXIT_OK;
    }
    if (!arr || json_object_array_length(arr) == 0) {
        printf("no pending requests\n");
        json_object_put(reply);
        return EXIT_OK;
    }
    cli_table *t = cli_table_new(7, "ID", "CONTAINER", "DEST", "PORT", "PROTO", "DOMAIN", "COUNT");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v[7] = {0};
        const char *keys[] = {"id", "container", "dest", "port", "protocol", "domain", "count"};

        for (int k = 0; k < 7; k++)
            json_object_object_get_ex(e, keys[k], &v[k]);
        cli_table_add(t, json_object_get_string(v[0]), json_object_get_string(v[1]),
                      json_object_get_string(v[2]), v[3] ? json_object_get_string(v[3]) : NULL,
                      json_object_get_string(v[4]), v[5] ? json_object_get_string(v[5]) : NULL,
                      json_object_get_string(v[6]));
    }
    cli_table_print(t);
    if (left)
        printf("(%s more not shown)\n", json_object_get_string(left));
    json_object_put(reply);
    return EXIT_OK;
}

static int do_verdict(cli *c, const char *action, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *pos[2] = {0}, *for_arg = NULL;
    json_object *req, *reply = NULL, *target = NULL, *n = NULL;
    int64_t ms = 0;
    sandbox *sb;
    int r;

    r = parse(c, action, argc, argv, 2, 2, pos, streq(action, "allow") ? &for_arg : NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    if (!container_name_is_valid(pos[0]))
        return cli_usage_error(c, "clearance", "invalid container name '%s'", pos[0]);
    if (for_arg && (parse_duration_ms(for_arg, &ms) < 0 || ms <= 0))
        return cli_usage_error(c, "clearance", "invalid --for '%s' (e.g. 30s, 10m, 2h)", for_arg);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    req = request("verdict");
    if (req) {
        json_object_object_add(req, "container", json_object_new_string(pos[0]));
        json_object_object_add(req, "dest", json_object_new_string(pos[1]));
        json_object_object_add(req, "action", json_object_new_string(action));
        if (ms > 0)
            json_object_object_add(req, "for_ms", json_object_new_int64(ms));
    }
    /* the daemon changes the kernel in the container's netns: allow for a slow fork */
    r = clearance_client_call(sb, req, 60000, &reply, &err);
    if (r < 0)
        return daemon_fail(c, r, &err);
    json_object_object_get_ex(reply, "target", &target);
    json_object_object_get_ex(reply, "requests", &n);
    if (c->json) {
        json_object_object_del(reply, "ok");
        cli_json_print(reply);
        return EXIT_OK;
    }
    printf("%s: %s %s%s%s (%s request(s))\n", pos[0], streq(action, "allow") ? "allowed" : "denied",
           json_object_get_string(target), for_arg ? " for " : "", for_arg ? for_arg : "",
           json_object_get_string(n));
    json_object_put(reply);
    return EXIT_OK;
}

static int do_status(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *reply = NULL, *arr = NULL, *pid = NULL, *watching = NULL, *left = NULL;
    sandbox *sb;
    int r;

    r = parse(c, "status", argc, argv, 0, 0, NULL, NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = clearance_client_call(sb, request("status"), 5000, &reply, &err);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        if (c->json) {
            json_object *o = json_object_new_object();

            json_object_object_add(o, "running", json_object_new_boolean(0));
            cli_json_print(o);
        } else
            printf("no clearance daemon running\n");
        return EXIT_OK;
    }
    if (r < 0)
        return cli_fail(c, r, &err);
    json_object_object_get_ex(reply, "attached", &arr);
    json_object_object_get_ex(reply, "pid", &pid);
    if (c->json) {
        json_object_object_del(reply, "ok");
        json_object_object_add(reply, "running", json_object_new_boolean(1));
        cli_json_print(reply);
        return EXIT_OK;
    }
    json_object_object_get_ex(reply, "watching", &watching);
    json_object_object_get_ex(reply, "left_off", &left);
    printf("clearance daemon running (pid %s), watching %lld container(s)\n",
           json_object_get_string(pid),
           watching ? (long long)json_object_get_int64(watching)
                    : (long long)(arr ? json_object_array_length(arr) : 0));
    if (arr && json_object_array_length(arr) > 0) {
        cli_table *t = cli_table_new(5, "CONTAINER", "PID", "EVENTS", "PENDING", "DNS REFRESH");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i), *v[8] = {0};
            const char *keys[] = {
                "container",       "pid",       "events",        "pending", "refresh_failures",
                "next_refresh_ms", "refreshes", "invalid_events"};
            char dns[64] = "-", events[64];

            for (int k = 0; k < 8; k++)
                json_object_object_get_ex(e, keys[k], &v[k]);
            /* events the shield reported that named no destination (dropped) */
            snprintf(events, sizeof events, "%s", json_object_get_string(v[2]));
            if (v[7] && json_object_get_int64(v[7]) > 0)
                snprintf(events, sizeof events, "%s (%lld invalid)", json_object_get_string(v[2]),
                         (long long)json_object_get_int64(v[7]));
            /* failing (count) / when the next one is due / none armed (no domains) */
            if (v[4] && json_object_get_int64(v[4]) > 0)
                snprintf(dns, sizeof dns, "failing (%lld)", (long long)json_object_get_int64(v[4]));
            else if (v[5])
                snprintf(dns, sizeof dns, "in %.1fs", (double)json_object_get_int64(v[5]) / 1000);
            else if (v[6] && json_object_get_int64(v[6]) > 0)
                snprintf(dns, sizeof dns, "no domains");
            cli_table_add(t, json_object_get_string(v[0]), json_object_get_string(v[1]), events,
                          json_object_get_string(v[3]), dns);
        }
        cli_table_print(t);
    }
    if (left)
        printf("(%lld more not shown)\n", (long long)json_object_get_int64(left));
    json_object_put(reply);
    return EXIT_OK;
}

static int do_stop(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    int r;

    r = parse(c, "stop", argc, argv, 0, 0, NULL, NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = clearance_client_stop(sb, &err);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        if (!c->json)
            printf("no clearance daemon running\n");
        return EXIT_OK;
    }
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!c->json)
        printf("clearance daemon stopped\n");
    return EXIT_OK;
}

static int do_serve(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    clearance_daemon_opts o = {0};
    bool foreground = false;
    int ready_fd = -1;
    sandbox *sb;
    int r;

    r = parse(c, "serve", argc, argv, 0, 0, NULL, NULL, &foreground);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    if (clearance_client_ping(sb, NULL) == 0)
        return cli_failf(c, EXIT_FAIL, "a clearance daemon already serves '%s'",
                         sb->paths.runtime_dir);
    if (!foreground) {
        r = cli_daemon_detach(c, sb, "clearance", &ready_fd);
        if (r != CLI_DETACHED)
            return r;
    }
    o.ready = cli_daemon_ready;
    o.ready_userdata = &ready_fd;
    r = clearance_daemon_run(sb, &o, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    return EXIT_OK;
}

int cmd_clearance(cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (!sub || streq(sub, "-h") || streq(sub, "--help") || streq(sub, "help")) {
        clearance_help();
        return sub ? EXIT_OK : EXIT_USAGE;
    }
    if (streq(sub, "pending"))
        return do_pending(c, argc - 1, argv + 1);
    if (streq(sub, "allow") || streq(sub, "deny"))
        return do_verdict(c, sub, argc - 1, argv + 1);
    if (streq(sub, "status"))
        return do_status(c, argc - 1, argv + 1);
    if (streq(sub, "serve"))
        return do_serve(c, argc - 1, argv + 1);
    if (streq(sub, "stop"))
        return do_stop(c, argc - 1, argv + 1);
    return cli_usage_error(c, "clearance", "unknown command '%s'", sub);
}
