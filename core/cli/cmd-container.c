/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-container.c: the per-container commands `start`, `stop`, `rm`, `wait`, `exec`, `logs`,
 * and the helpers the container command files share. Each command parses its options before
 * opening anything, so `--help` loads no plugin. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli-container.h"
#include "log.h"
#include "util/strv.h"

enum {
    OPT_JSON = 0x100,
    OPT_TAIL,
    OPT_TIMEOUT,
};

/* ------------------------------------------------------------------ shared helpers */

int cli_usage_error_pt(cli *c, const char *cmd, bool passthrough, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (passthrough && c->json)
        return cli_failf(c, EXIT_PASSTHROUGH_FAIL, "%s", m ? m : "out of memory");
    (void)cli_usage_error(c, cmd, "%s", m ? m : "out of memory");
    return passthrough ? EXIT_PASSTHROUGH_FAIL : EXIT_USAGE;
}

int cli_getopt_error(cli *c, const char *cmd, bool passthrough, int o, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (o == ':')
        return cli_usage_error_pt(c, cmd, passthrough, "option '%s' needs a value", arg);
    if (optopt && optopt < 0x100)
        return cli_usage_error_pt(c, cmd, passthrough, "unknown option '-%c'", optopt);
    return cli_usage_error_pt(c, cmd, passthrough, "unknown option '%s'", arg);
}

void cli_print_notes(const sandbox_notes *n)
{
    STRV_FOREACH(w, n ? n->warnings : NULL)
    fprintf(stderr, "WARNING: %s\n", *w);
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        len -= (size_t)k;
    }
}

int cli_output_to_fds(void *userdata, int stream, const void *data, size_t len)
{
    (void)userdata;
    write_all(stream == 2 ? STDERR_FILENO : STDOUT_FILENO, data, len);
    return 0;
}

/* ------------------------------------------------------------------ start / stop / rm */

typedef int (*per_name_fn)(sandbox *sb, const char *name, json_object *res, terok_error *err);

/* Runs fn on every name: prints the name (or a JSON array of results); the exit code is that of
 * the first failure, the others still run. */
static int for_each_name(cli *c, int argc, char **argv, int first, per_name_fn fn, const char *flag)
{
    json_object *arr = json_object_new_array();
    sandbox *sb;
    int code = 0, k;

    k = cli_sandbox(c, &sb);
    if (k) {
        json_object_put(arr);
        return k;
    }
    for (int i = first; i < argc; i++) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        json_object *res = json_object_new_object();
        int r;

        json_object_object_add(res, "name", json_object_new_string(argv[i]));
        r = fn(sb, argv[i], res, &err);
        json_object_object_add(res, flag, json_object_new_boolean(r >= 0));
        if (r < 0) {
            json_object_object_add(res, "error", json_object_new_string(terok_error_message(&err)));
            k = cli_fail(c, r, &err);
            if (!code)
                code = k;
        } else if (!c->json) {
            printf("%s\n", argv[i]);
        }
        json_object_array_add(arr, res);
    }
    if (c->json)
        cli_json_print(arr);
    else
        json_object_put(arr);
    return code;
}

/* The common [--json] [-h] NAME... form; returns 0 to go on, -1 after help, > 0 an exit code. */
static int simple_opts(cli *c, const char *cmd, int argc, char **argv, const char *usage,
                       const char *text)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;

    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
        if (o == 'h') {
            printf("Usage: terok-sandbox %s %s\n\n%s\n", cmd, usage, text);
            return -1;
        }
        if (o == OPT_JSON) {
            c->json = true;
            continue;
        }
        return cli_getopt_error(c, cmd, false, o, argv);
    }
    if (optind >= argc)
        return cli_usage_error(c, cmd, "a container NAME is required");
    return 0;
}

static int do_start(sandbox *sb, const char *name, json_object *res, terok_error *err)
{
    terok_error e = TEROK_ERROR_INIT;
    int r = sandbox_start(sb, name, err);

    if (r >= 0 && sandbox_watch_events(sb, name, true, &e) < 0)
        log_warning("blocked connections of '%s' are not being collected: %s", name,
                    terok_error_message(&e));
    terok_error_clear(&e);
    return r;
}

int cmd_start(cli *c, int argc, char **argv)
{
    int k = simple_opts(c, "start", argc, argv, "[--json] NAME...",
                        "Start created or stopped containers; prints each name.\n\n"
                        "      --json   print [{\"name\", \"started\"}]\n"
                        "  -h, --help   show this help");

    if (k)
        return k < 0 ? EXIT_OK : k;
    return for_each_name(c, argc, argv, optind, do_start, "started");
}

/* stop, kill and rm: one option of their own, --json, -h and NAME... handled by for_each_name.
 * on_opt checks the option's argument and returns 0 or an exit code. */
typedef struct names_cmd {
    const char *name, *help;
    struct option opt;     /* its own option; opt.val is the short letter */
    const char *opt_alias; /* another long name for it, or NULL */
    int (*on_opt)(cli *c, const char *arg);
    per_name_fn fn;
    const char *flag; /* the JSON member set per name */
} names_cmd;

static int run_names_cmd(cli *c, const names_cmd *n, int argc, char **argv)
{
    const struct option help = {"help", no_argument, NULL, 'h'};
    const struct option opts[] = {
        n->opt,
        n->opt_alias ? (struct option){n->opt_alias, n->opt.has_arg, NULL, n->opt.val} : help,
        {"json", no_argument, NULL, OPT_JSON},
        help,
        {NULL, 0, NULL, 0},
    };
    char shortopts[8];
    int o, k;

    snprintf(shortopts, sizeof shortopts, ":%c%sh", n->opt.val,
             n->opt.has_arg == required_argument ? ":" : "");
    opterr = 0;
    while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) >= 0) {
        if (o == 'h') {
            fputs(n->help, stdout);
            return EXIT_OK;
        }
        if (o == OPT_JSON) {
            c->json = true;
            continue;
        }
        if (o != n->opt.val)
            return cli_getopt_error(c, n->name, false, o, argv);
        if ((k = n->on_opt(c, optarg)))
            return k;
    }
    if (optind >= argc)
        return cli_usage_error(c, n->name, "a container NAME is required");
    return for_each_name(c, argc, argv, optind, n->fn, n->flag);
}

static int64_t stop_timeout = -1;

static int stop_opt(cli *c, const char *arg)
{
    if (parse_int64(arg, 0, 86400, &stop_timeout) < 0)
        return cli_usage_error(
            c, "stop", "invalid value '%s' for --time: expected seconds from 0 to 86400", arg);
    return 0;
}

static int do_stop(sandbox *sb, const char *name, json_object *res, terok_error *err)
{
    return sandbox_stop(sb, name, stop_timeout, err);
}

int cmd_stop(cli *c, int argc, char **argv)
{
    static const names_cmd n = {
        "stop",
        "Usage: terok-sandbox stop [-t SECONDS] [--json] NAME...\n\n"
        "Stop containers: SIGTERM, then SIGKILL after the grace period\n"
        "([container] stop-timeout, 10 s by default). Stopping a stopped container\n"
        "succeeds. Prints each name.\n\n"
        "  -t, --time SECONDS  grace period before SIGKILL (also --timeout)\n"
        "      --json          print [{\"name\", \"stopped\"}]\n"
        "  -h, --help          show this help\n",
        {"time", required_argument, NULL, 't'},
        "timeout",
        stop_opt,
        do_stop,
        "stopped",
    };

    return run_names_cmd(c, &n, argc, argv);
}

static int kill_signo = SIGTERM;

static int kill_opt(cli *c, const char *arg)
{
    if (cli_parse_signal(arg, &kill_signo) < 0)
        return cli_usage_error(c, "kill",
                               "invalid value '%s' for --signal: expected a signal name (TERM, "
                               "SIGINT) or a number from 1 to 64",
                               arg);
    return 0;
}

static int do_kill(sandbox *sb, const char *name, json_object *res, terok_error *err)
{
    return sandbox_kill(sb, name, kill_signo, err);
}

int cmd_kill(cli *c, int argc, char **argv)
{
    static const names_cmd n = {
        "kill",
        "Usage: terok-sandbox kill [-s SIGNAL] [--json] NAME...\n\n"
        "Send a signal to containers' main process (terok-init passes it on to the\n"
        "command). Prints each name.\n\n"
        "  -s, --signal SIGNAL  a name (TERM, SIGKILL, int) or a number from 1 to 64;\n"
        "                       TERM by default\n"
        "      --json           print [{\"name\", \"signalled\"}]\n"
        "  -h, --help           show this help\n",
        {"signal", required_argument, NULL, 's'},
        NULL,
        kill_opt,
        do_kill,
        "signalled",
    };

    return run_names_cmd(c, &n, argc, argv);
}

static bool rm_force;

static int rm_opt(cli *c, const char *arg)
{
    (void)c;
    (void)arg;
    rm_force = true;
    return 0;
}

static int do_rm(sandbox *sb, const char *name, json_object *res, terok_error *err)
{
    bool existed = false;
    int r = sandbox_remove(sb, name, rm_force, &existed, err);

    if (r >= 0)
        json_object_object_add(res, "existed", json_object_new_boolean(existed));
    return r;
}

int cmd_rm(cli *c, int argc, char **argv)
{
    static const names_cmd n = {
        "rm",
        "Usage: terok-sandbox rm [-f] [--json] NAME...\n\n"
        "Remove containers and their state. Idempotent: a container that does not\n"
        "exist counts as removed (exit 0). A running container needs -f.\n"
        "Containers not managed by terok-sandbox are never touched.\n\n"
        "  -f, --force   stop a running container first\n"
        "      --json    print [{\"name\", \"removed\", \"existed\"}]\n"
        "  -h, --help    show this help\n",
        {"force", no_argument, NULL, 'f'},
        NULL,
        rm_opt,
        do_rm,
        "removed",
    };

    return run_names_cmd(c, &n, argc, argv);
}

/* ------------------------------------------------------------------ wait */

int cmd_wait(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t timeout_ms = -1;
    json_object *arr;
    sandbox *sb;
    int o, code = 0, k;

    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            printf("Usage: terok-sandbox wait [--timeout DURATION] [--json] NAME...\n\n"
                   "Wait for containers to exit and print their exit codes, one per line.\n\n"
                   "      --timeout DURATION  give up after DURATION (500ms, 10s, 5m); exit 1\n"
                   "      --json              print [{\"name\", \"exit_code\"}]\n"
                   "  -h, --help              show this help\n");
            return EXIT_OK;
        case OPT_TIMEOUT:
            if (parse_duration_ms(optarg, &timeout_ms) < 0 || timeout_ms < 0)
                return cli_usage_error(c, "wait",
                                       "invalid value '%s' for --timeout: expected a duration "
                                       "like 500ms, 10s or 5m",
                                       optarg);
            break;
        case OPT_JSON:
            c->json = true;
            break;
        default:
            return cli_getopt_error(c, "wait", false, o, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error(c, "wait", "a container NAME is required");
    k = cli_sandbox(c, &sb);
    if (k)
        return k;
    arr = json_object_new_array();
    for (int i = optind; i < argc; i++) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        json_object *res = json_object_new_object();
        int exit_code = -1, r;

        r = sandbox_wait(sb, argv[i], timeout_ms, &exit_code, &err);
        json_object_object_add(res, "name", json_object_new_string(argv[i]));
        if (r < 0) {
            json_object_object_add(res, "exit_code", NULL);
            json_object_object_add(res, "error", json_object_new_string(terok_error_message(&err)));
            k = cli_fail(c, r, &err);
            if (!code)
                code = k;
        } else {
            json_object_object_add(res, "exit_code", json_object_new_int(exit_code));
            if (!c->json)
                printf("%d\n", exit_code);
        }
        json_object_array_add(arr, res);
    }
    if (c->json)
        cli_json_print(arr);
    else
        json_object_put(arr);
    return code;
}

/* ------------------------------------------------------------------ exec */

int cmd_exec(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"interactive", no_argument, NULL, 'i'},   {"tty", no_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},     {"user", required_argument, NULL, 'u'},
        {"workdir", required_argument, NULL, 'w'}, {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_strv_free_ char **env = NULL;
    terok_exec_spec spec = {.struct_size = sizeof spec,
                            .stdin_fd = -1,
                            .stdout_fd = STDOUT_FILENO,
                            .stderr_fd = STDERR_FILENO};
    const char *name;
    sandbox *sb;
    int o, r, exit_code = 0;

    opterr = 0;
    while ((o = getopt_long(argc, argv, "+:ite:u:w:h", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            printf("Usage: terok-sandbox exec [OPTIONS] NAME COMMAND [ARG...]\n\n"
                   "Run a command in a running container and exit with its status; 125 means\n"
                   "terok-sandbox itself failed (no such container, not running, ...).\n\n"
                   "  -i, --interactive      pass stdin to the command\n"
                   "  -t, --tty              allocate a TTY (if the runtime supports it)\n"
                   "  -e, --env KEY=VALUE    set an environment variable (repeatable)\n"
                   "  -u, --user USER        run as USER\n"
                   "  -w, --workdir DIR      run in DIR\n"
                   "  -h, --help             show this help\n");
            return EXIT_OK;
        case 'i':
            spec.flags |= TEROK_EXEC_INTERACTIVE;
            spec.stdin_fd = STDIN_FILENO;
            break;
        case 't':
            spec.flags |= TEROK_EXEC_TTY;
            break;
        case 'e':
            if (!strchr(optarg, '='))
                return cli_usage_error_pt(
                    c, "exec", true, "invalid environment entry '%s': expected KEY=VALUE", optarg);
            if (strv_extend(&env, optarg) < 0)
                return cli_failf(c, EXIT_PASSTHROUGH_FAIL, "out of memory");
            break;
        case 'u':
            spec.user = optarg;
            break;
        case 'w':
            spec.workdir = optarg;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        default:
            return cli_getopt_error(c, "exec", true, o, argv);
        }
    }
    if (argc - optind < 2)
        return cli_usage_error_pt(c, "exec", true, "a container NAME and a COMMAND are required");
    name = argv[optind];
    spec.argv = (const char *const *)argv + optind + 1;
    spec.env = (const char *const *)env;
    if (cli_sandbox(c, &sb))
        return EXIT_PASSTHROUGH_FAIL;
    fflush(stdout);
    if (spec.flags & TEROK_EXEC_TTY) {
        cli_terminal_size(&spec);
        int k = cli_watch_resize(&spec);
        if (k < 0)
            log_warning("the container's terminal will not follow this one's size: %s",
                        strerror(-k));
        if (spec.flags & TEROK_EXEC_INTERACTIVE)
            cli_raw_terminal();
    }
    r = sandbox_exec(sb, name, &spec, &exit_code, &err);
    cli_restore_terminal();
    cli_unwatch_resize();
    if (r < 0)
        return cli_failf(c, EXIT_PASSTHROUGH_FAIL, "%s", terok_error_message(&err));
    return exit_code;
}

/* ------------------------------------------------------------------ logs */

int cmd_logs(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"tail", required_argument, NULL, OPT_TAIL},
        {"timestamps", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};
    sandbox *sb;
    int o, r, k;

    opterr = 0;
    while ((o = getopt_long(argc, argv, ":fth", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            printf("Usage: terok-sandbox logs [-f] [--tail N] [-t] NAME\n\n"
                   "Print a container's output (stdout to stdout, stderr to stderr).\n\n"
                   "  -f, --follow       keep printing until the container stops\n"
                   "      --tail N       only the last N lines\n"
                   "  -t, --timestamps   prefix each line with its time (RFC 3339)\n"
                   "  -h, --help         show this help\n");
            return EXIT_OK;
        case 'f':
            lo.flags |= TEROK_LOGS_FOLLOW;
            break;
        case 't':
            lo.flags |= TEROK_LOGS_TIMESTAMPS;
            break;
        case OPT_TAIL:
            if (parse_int64(optarg, 0, INT64_MAX, &lo.tail) < 0)
                return cli_usage_error(c, "logs",
                                       "invalid value '%s' for --tail: expected a number of "
                                       "lines",
                                       optarg);
            break;
        default:
            return cli_getopt_error(c, "logs", false, o, argv);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(c, "logs", "exactly one container NAME is required");
    k = cli_sandbox(c, &sb);
    if (k)
        return k;
    fflush(stdout);
    r = sandbox_logs(sb, argv[optind], &lo, cli_output_to_fds, NULL, &err);
    return r < 0 ? cli_fail(c, r, &err) : EXIT_OK;
}
