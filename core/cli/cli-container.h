/* SPDX-License-Identifier: Apache-2.0 */
/* cli-container.h: helpers shared by the container command files (cmd-run.c, cmd-container.c,
 * cmd-ps.c): option-error reporting, warnings, output streaming. */
#pragma once

#include "cli.h"

/* A usage error for a command whose own failures must not look like a container's exit status
 * (run in the foreground, exec): exits 125 instead of 2 when passthrough is set. */
int cli_usage_error_pt(cli *c, const char *cmd, bool passthrough, const char *fmt, ...)
    _printf_(4, 5);
/* The getopt error for the option that just failed (opterr = 0, optstring starting with ':'). */
int cli_getopt_error(cli *c, const char *cmd, bool passthrough, int o, char **argv);

/* Operator warnings collected while composing, printed loudly on stderr. */
void cli_print_notes(const sandbox_notes *n);

/* terok_output_cb writing stream 1 to stdout and 2 to stderr. */
int cli_output_to_fds(void *userdata, int stream, const void *data, size_t len);

/* The operator's terminal (cli-tty.c). Raw mode for -it when stdin is a terminal, restored by
 * cli_restore_terminal(), at exit and on SIGTERM/SIGHUP/SIGQUIT/SIGINT. */
void cli_raw_terminal(void);
void cli_restore_terminal(void);
/* The local terminal's size (stdout, else stdin) as spec's initial TTY size. */
void cli_terminal_size(terok_exec_spec *spec);
/* SIGWINCH -> {rows, cols} records on a pipe: sets spec->resize_fd and TEROK_EXEC_RESIZE_FD
 * (nothing when there is no local terminal). 0 or -errno. Undone by cli_unwatch_resize(). */
int cli_watch_resize(terok_exec_spec *spec);
void cli_unwatch_resize(void);
/* Pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 received by this process on to the
 * container `name` until cli_sig_proxy_stop() (a foreground run without a raw terminal). 0 or
 * -errno. */
int cli_sig_proxy_start(const char *config_file, const char *name);
void cli_sig_proxy_stop(void);
