/* SPDX-License-Identifier: Apache-2.0 */
/* cli-util.c: error reporting, JSON and table output shared by the command groups. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "daemon/spawn.h"
#include "log.h"
#include "util/strv.h"

int cli_sandbox(cli *c, sandbox **ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    int r;

    if (!c->sandbox) {
        r = sandbox_open(c->config_file, &c->sandbox, &err);
        if (r < 0)
            return cli_fail(c, r, &err);
    }
    *ret = c->sandbox;
    return 0;
}

static int exit_code_for(int r)
{
    switch (r) {
    case -ENOENT:
    case -ESRCH:
        return EXIT_NOTFOUND;
    case -EPROTO:
    case -ELIBBAD:
    case -ELIBACC:
    case -ENODEV:
    case -EOPNOTSUPP:
        return EXIT_PLUGIN;
    case -EBADMSG:
        return EXIT_CONFIG;
    case -EINVAL:
    case -E2BIG:
        return EXIT_FAIL;
    default:
        return EXIT_FAIL;
    }
}

static void print_error(cli *c, const char *message, int exit_code)
{
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object *e = json_object_new_object();

        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(e, "exit_code", json_object_new_int(exit_code));
        json_object_object_add(o, "error", e);
        /* Errors go to stderr even in JSON mode so stdout stays a clean document. */
        fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return;
    }
    fprintf(stderr, "terok-sandbox: %s\n", message);
}

int cli_fail(cli *c, int r, const terok_error *err)
{
    int code = exit_code_for(r);

    print_error(c, err && err->message ? err->message : strerror(r < 0 ? -r : EIO), code);
    return code;
}

int cli_failf(cli *c, int exit_code, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    print_error(c, m ? m : "out of memory", exit_code);
    return exit_code;
}

int cli_usage_error(cli *c, const char *cmd, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (c->json) {
        print_error(c, m ? m : "out of memory", EXIT_USAGE);
        return EXIT_USAGE;
    }
    fprintf(stderr, "terok-sandbox%s%s: %s\nTry 'terok-sandbox%s%s --help'.\n", cmd ? " " : "",
            strempty(cmd), m ? m : "out of memory", cmd ? " " : "", strempty(cmd));
    return EXIT_USAGE;
}

bool cli_color(void)
{
    return isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
}

void cli_json_print(json_object *o)
{
    int flags = isatty(STDOUT_FILENO) ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                      : JSON_C_TO_STRING_PLAIN;

    fputs(json_object_to_json_string_ext(o, flags | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
    fputc('\n', stdout);
    json_object_put(o);
}

int cli_parse_int(cli *c, const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
                  int64_t *ret)
{
    int r = parse_int64(s, min, max, ret);

    if (r < 0)
        return cli_usage_error(
            c, cmd, "invalid value '%s' for %s: expected an integer from %" PRId64 " to %" PRId64,
            s, opt, min, max);
    return 0;
}

struct cli_table {
    size_t ncols;
    char **cells; /* row-major strv */
};

cli_table *cli_table_new(size_t ncols, ...)
{
    cli_table *t = calloc(1, sizeof(*t));
    va_list ap;

    if (!t)
        return NULL;
    t->ncols = ncols;
    va_start(ap, ncols);
    for (size_t i = 0; i < ncols; i++)
        (void)strv_extend(&t->cells, va_arg(ap, const char *));
    va_end(ap);
    return t;
}

void cli_table_add(cli_table *t, ...)
{
    va_list ap;

    if (!t)
        return;
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        (void)strv_extend(&t->cells, s ? s : "-");
    }
    va_end(ap);
}

/* Columns on the terminal: UTF-8 continuation bytes take none. */
static size_t display_width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

void cli_table_print(cli_table *t)
{
    size_t n, rows, w[32] = {0};

    if (!t)
        return;
    n = strv_length(t->cells);
    rows = t->ncols ? n / t->ncols : 0;
    for (size_t i = 0; i < n && t->ncols <= ELEMENTSOF(w); i++)
        w[i % t->ncols] = MAX(w[i % t->ncols], display_width(t->cells[i]));
    for (size_t r = 0; r < rows; r++) {
        for (size_t col = 0; col < t->ncols; col++) {
            const char *s = t->cells[r * t->ncols + col];
            if (col + 1 == t->ncols)
                printf("%s\n", s);
            else
                printf("%s%*s  ", s, (int)(w[col] - display_width(s)), "");
        }
    }
    strv_free(t->cells);
    free(t);
}

int cli_daemon_detach(cli *c, sandbox *sb, const char *service, int *ret_ready_fd)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    int p[2], lfd, nfd;
    pid_t pid;
    char b = 0;

    if (pipe2(p, O_CLOEXEC) < 0)
        return cli_failf(c, EXIT_FAIL, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        return cli_failf(c, EXIT_FAIL, "fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        ssize_t k = read(p[0], &b, 1);
        close(p[0]);
        if (k != 1)
            return cli_failf(c, EXIT_FAIL,
                             "the %s daemon failed to start (see <state>/logs/%s.log)", service,
                             service);
        if (c->json) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "pid", json_object_new_int(pid));
            cli_json_print(j);
        } else
            printf("%s daemon running (pid %d)\n", service, (int)pid);
        return EXIT_OK;
    }
    close(p[0]);
    (void)setsid();
    /* Nothing of the caller's stays open: a caller reading our output through a pipe would
     * otherwise wait for the daemon's end. */
    lfd = daemon_log_open(sb, service, NULL, &err);
    if (lfd < 0)
        _exit(cli_fail(c, lfd, &err));
    nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nfd < 0 || dup2(nfd, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
        _exit(EXIT_FAIL);
    close(lfd);
    close(nfd);
    *ret_ready_fd = p[1];
    return CLI_DETACHED;
}

void cli_daemon_ready(void *userdata)
{
    int *fd = userdata;
    char b = 1;

    if (*fd >= 0) {
        (void)!write(*fd, &b, 1);
        close(*fd);
        *fd = -1;
    }
}

int cli_serve_start(cli *c, const char *service, bool foreground,
                    int (*ping)(sandbox *sb, terok_error *err), sandbox **ret_sb, int *ret_ready_fd)
{
    sandbox *sb;
    int r;

    *ret_ready_fd = -1;
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    if (ping(sb, NULL) == 0)
        return cli_failf(c, EXIT_FAIL, "a %s daemon already serves '%s'", service,
                         sb->paths.runtime_dir);
    if (!foreground) {
        r = cli_daemon_detach(c, sb, service, ret_ready_fd);
        if (r != CLI_DETACHED)
            return r;
    }
    *ret_sb = sb;
    return CLI_DETACHED;
}

int cli_serve_tcp(cli *c, const char *cmd, const char *arg, cli_tcp *t)
{
    if (t->n >= CLI_MAX_TCP)
        return cli_usage_error(c, cmd, "at most %d --tcp listeners", CLI_MAX_TCP);
    if (tcp_listener_parse(arg, &t->v[t->n], &t->owned[t->n]) < 0)
        return cli_usage_error(c, cmd, "invalid --tcp '%s': expected 127.0.0.1:PORT=CONTAINER",
                               arg);
    t->n++;
    return 0;
}

void cli_tcp_done(cli_tcp *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->owned[i]);
    t->n = 0;
}

int cli_parse_signal(const char *s, int *ret)
{
    const char *n = s;
    int64_t v;

    if (isempty(s))
        return -EINVAL;
    if (parse_int64(s, 1, 64, &v) == 0) {
        *ret = (int)v;
        return 0;
    }
    if (strncasecmp(n, "SIG", 3) == 0)
        n += 3;
    if (strncasecmp(n, "RTMIN+", 6) == 0 && parse_int64(n + 6, 0, SIGRTMAX - SIGRTMIN, &v) == 0) {
        *ret = SIGRTMIN + (int)v;
        return 0;
    }
    for (int i = 1; i < SIGRTMIN; i++) {
        const char *a = sigabbrev_np(i);
        if (a && strcasecmp(a, n) == 0) {
            *ret = i;
            return 0;
        }
    }
    return -EINVAL;
}
