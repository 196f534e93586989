/* SPDX-License-Identifier: Apache-2.0 */
/* cli-tty.c: the operator's terminal for `run -it` and `exec -it`: raw mode (restored on every
 * way out: return, exit, a fatal signal) and SIGWINCH turned into {rows, cols} records on a pipe
 * the runtime reads to resize the container's TTY. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli-container.h"

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved;
static int winch_pipe[2] = {-1, -1};
static int winch_tty = -1;
static struct sigaction old_winch;

void cli_restore_terminal(void)
{
    if (termios_saved) {
        (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
        termios_saved = 0;
    }
}

static void restore_terminal_and_die(int sig)
{
    cli_restore_terminal(); /* tcsetattr is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_raw_terminal(void)
{
    static const int sigs[] = {SIGTERM, SIGHUP, SIGQUIT, SIGINT};
    static bool registered;
    struct termios raw;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return;
    raw = saved_termios;
    cfmakeraw(&raw);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], restore_terminal_and_die);
    if (!registered)
        registered = atexit(cli_restore_terminal) == 0;
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
        termios_saved = 1;
}

/* The local terminal: stdout, else stdin; -1 when neither is one. */
static int local_tty(void)
{
    struct winsize ws;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
        return STDOUT_FILENO;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        return STDIN_FILENO;
    return -1;
}

void cli_terminal_size(terok_exec_spec *spec)
{
    struct winsize ws = {0};
    int fd = local_tty();

    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        spec->tty_rows = ws.ws_row;
        spec->tty_cols = ws.ws_col;
    }
}

static void on_winch(int sig)
{
    int saved = errno;
    struct winsize ws;
    uint16_t rc[2];

    (void)sig;
    if (winch_tty >= 0 && winch_pipe[1] >= 0 && ioctl(winch_tty, TIOCGWINSZ, &ws) == 0) {
        rc[0] = ws.ws_row;
        rc[1] = ws.ws_col;
        /* a full pipe drops the record: a later one carries the size that matters */
        if (write(winch_pipe[1], rc, sizeof rc) < 0) {
        }
    }
    errno = saved;
}

int cli_watch_resize(terok_exec_spec *spec)
{
    struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};

    if (winch_pipe[0] >= 0 || (winch_tty = local_tty()) < 0)
        return 0; /* no terminal of ours: nothing will change size */
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGWINCH, &sa, &old_winch) < 0) {
        int r = -errno;
        cli_unwatch_resize();
        return r;
    }
    spec->resize_fd = winch_pipe[0];
    spec->flags |= TEROK_EXEC_RESIZE_FD;
    return 0;
}

void cli_unwatch_resize(void)
{
    if (winch_pipe[0] < 0)
        return;
    (void)sigaction(SIGWINCH, &old_winch, NULL);
    close(winch_pipe[0]);
    close(winch_pipe[1]);
    winch_pipe[0] = winch_pipe[1] = -1;
    winch_tty = -1;
}
