/* SPDX-License-Identifier: Apache-2.0 */
/* cli.h: what the command-group files of terok-sandbox share. The CLI is the only place that
 * prints to the operator and chooses an exit code. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "daemon/tcp-listener.h"
#include "error.h"
#include "sandbox.h"

/* Exit codes (documented in `terok-sandbox --help` and docs/cli.md). Commands that pass on a
 * container's exit status (run in the foreground, exec) use 125 for their own failures, like
 * podman, and 126/127 when the command could not be run / was not found. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,     /* the operation failed */
    EXIT_USAGE = 2,    /* bad command line */
    EXIT_CONFIG = 3,   /* the configuration is invalid */
    EXIT_NOTFOUND = 4, /* no such container (or other named object) */
    EXIT_PLUGIN = 5,   /* a backend could not be loaded or lacks what is needed */
    EXIT_PASSTHROUGH_FAIL = 125,
};

typedef struct cli {
    const char *config_file; /* --config */
    bool json;               /* --json given before or after the command */
    sandbox *sandbox;        /* opened on first use */
    const char *argv0;
    char **argv; /* the process's own argv, for handing a command to terok-sandbox-daemon */
} cli;

typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
} cli_command;

/* Open the sandbox (config + registry) on first use; prints the error and returns an exit code
 * (> 0) on failure, 0 on success. */
int cli_sandbox(cli *c, sandbox **ret);
/* Print "terok-sandbox: <message>" (or a JSON error object with --json) and return the exit
 * code that fits r (-ENOENT -> EXIT_NOTFOUND, -EPROTO/-ELIBBAD/-ENODEV -> EXIT_PLUGIN, ...). */
int cli_fail(cli *c, int r, const terok_error *err);
/* Same, for a message of our own. */
int cli_failf(cli *c, int exit_code, const char *fmt, ...) _printf_(3, 4);
/* Usage error: "terok-sandbox <cmd>: <message>\nTry 'terok-sandbox <cmd> --help'." -> EXIT_USAGE */
int cli_usage_error(cli *c, const char *cmd, const char *fmt, ...) _printf_(3, 4);

/* Print a JSON value (pretty on a TTY, compact otherwise) followed by a newline; takes ownership.
 */
void cli_json_print(json_object *o);
/* Whether colour may be used on stdout (TTY and NO_COLOR unset). */
bool cli_color(void);

/* A simple aligned table for human output. */
typedef struct cli_table cli_table;
cli_table *cli_table_new(size_t ncols, ...); /* column headers */
void cli_table_add(cli_table *t, ...);       /* ncols strings (NULL shows as "-") */
void cli_table_print(cli_table *t);          /* prints and frees */

/* Strict number parsing for options: prints a usage error naming the option and value. */
int cli_parse_int(cli *c, const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
                  int64_t *ret);

/* A signal given as a name (TERM, SIGTERM, sigint; RTMIN+n) or a number from 1 to 64. */
int cli_parse_signal(const char *s, int *ret);

/* Replace this process with terok-sandbox-daemon running the same command line (the daemons
 * live there so the CLI loads neither libcurl nor libmicrohttpd). Returns only on failure. */
int cli_exec_daemon(cli *c);

/* `SERVICE serve` without --foreground. The parent waits until the daemon is ready, prints
 * "SERVICE daemon running (pid N)" (--json: {"pid": N}) and returns the exit code (>= 0) to
 * end with. The child returns CLI_DETACHED: a session leader with stdin on /dev/null and
 * stdout/stderr appended to <state>/logs/SERVICE.log (nothing of the caller's stays open), and
 * *ret_ready_fd to hand to cli_daemon_ready() once it serves. */
#define CLI_DETACHED (-1)
int cli_daemon_detach(cli *c, sandbox *sb, const char *service, int *ret_ready_fd);
/* The daemons' ready callback: userdata is the int fd from cli_daemon_detach (-1: none). */
void cli_daemon_ready(void *userdata);
/* The start of `SERVICE serve`, after its options: the sandbox, a refusal when a SERVICE daemon
 * already answers for this runtime directory (ping), then cli_daemon_detach() unless
 * foreground. Returns CLI_DETACHED where the daemon is to run (*ret_sb, and *ret_ready_fd for
 * cli_daemon_ready(): -1 in the foreground), else the exit code to end with. */
int cli_serve_start(cli *c, const char *service, bool foreground,
                    int (*ping)(sandbox *sb, terok_error *err), sandbox **ret_sb,
                    int *ret_ready_fd);
/* The `--tcp 127.0.0.1:PORT=CONTAINER` listeners of `SERVICE serve` (tests and benchmarks). */
#define CLI_MAX_TCP 8
typedef struct cli_tcp {
    tcp_listener v[CLI_MAX_TCP];
    char *owned[CLI_MAX_TCP]; /* what v[i]'s strings point into */
    size_t n;
} cli_tcp;
/* One more --tcp value. 0, or the usage error's exit code. */
int cli_serve_tcp(cli *c, const char *cmd, const char *arg, cli_tcp *t);
void cli_tcp_done(cli_tcp *t);

/* Command groups (one file each). */
int cmd_run(cli *c, int argc, char **argv);
int cmd_create(cli *c, int argc, char **argv);
int cmd_start(cli *c, int argc, char **argv);
int cmd_stop(cli *c, int argc, char **argv);
int cmd_kill(cli *c, int argc, char **argv);
int cmd_rm(cli *c, int argc, char **argv);
int cmd_exec(cli *c, int argc, char **argv);
int cmd_logs(cli *c, int argc, char **argv);
int cmd_ps(cli *c, int argc, char **argv);
int cmd_inspect(cli *c, int argc, char **argv);
int cmd_wait(cli *c, int argc, char **argv);
int cmd_config(cli *c, int argc, char **argv);
int cmd_plugins(cli *c, int argc, char **argv);
int cmd_vault(cli *c, int argc, char **argv);
int cmd_gate(cli *c, int argc, char **argv);
int cmd_ssh(cli *c, int argc, char **argv);
int cmd_shield(cli *c, int argc, char **argv);
int cmd_hook(cli *c, int argc, char **argv);
int cmd_clearance(cli *c, int argc, char **argv);
