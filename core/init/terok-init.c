/* SPDX-License-Identifier: Apache-2.0 */
/*
 * terok-init: PID 1 of a terok container (static; works in an image without a libc).
 *
 *   terok-init [-b PORT=SOCKPATH]... -- CMD [ARGS...]
 *
 * Before the command starts, each -b whose socket exists gets a listener on 127.0.0.1:PORT;
 * every TCP connection is bridged to a fresh connection to SOCKPATH (16 KB per direction,
 * half-close propagated), so tools that only speak TCP reach the host's vault and gate sockets.
 * Then CMD runs as our child: forwarded signals, every zombie reaped, and our exit status is
 * the child's (128+signal when it was killed). No NSS (getaddrinfo, getpwnam): static-safe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BRIDGES 8
#define MAX_PAIRS 512
#define BUF_SIZE 16384

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

typedef struct bridge {
    unsigned port;
    const char *path;
    int listen_fd;
} bridge;

/* One direction: bytes read from `from`, waiting to be written to the other side. */
typedef struct half {
    char buf[BUF_SIZE];
    size_t len;
    bool eof;  /* the reading side said EOF */
    bool shut; /* we passed the EOF on with shutdown(SHUT_WR) */
} half;

typedef struct pair {
    int fd[2];   /* 0: TCP client, 1: unix socket */
    half dir[2]; /* dir[i]: read from fd[i], written to fd[1 - i] */
} pair;

static bridge bridges[MAX_BRIDGES];
static size_t n_bridges;
static pair *pairs[MAX_PAIRS];
static size_t n_pairs;

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
    va_list ap;

    fputs("terok-init: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage(void)
{
    fputs("usage: terok-init [-b PORT=SOCKPATH]... -- CMD [ARGS...]\n", stderr);
    return 2;
}

static int parse_bridge(const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *end = NULL;
    unsigned long port;

    if (!eq || eq == arg || !eq[1] || eq[1] != '/') {
        msg("bad bridge '%s': expected PORT=/absolute/socket/path", arg);
        return -1;
    }
    errno = 0;
    port = strtoul(arg, &end, 10);
    if (errno || end != eq || port == 0 || port > 65535) {
        msg("bad bridge port in '%s'", arg);
        return -1;
    }
    if (n_bridges == MAX_BRIDGES) {
        msg("too many bridges (at most %d)", MAX_BRIDGES);
        return -1;
    }
    bridges[n_bridges++] = (bridge){.port = (unsigned)port, .path = eq + 1, .listen_fd = -1};
    return 0;
}

static void open_listeners(void)
{
    for (size_t i = 0; i < n_bridges; i++) {
        bridge *b = &bridges[i];
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
        struct stat st;
        int one = 1, fd;

        if (stat(b->path, &st) < 0)
            continue; /* no such service for this container: no listener */
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
            msg("bridge 127.0.0.1:%u -> %s: %s", b->port, b->path, strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        b->listen_fd = fd;
    }
}

static void pair_free(size_t i)
{
    close(pairs[i]->fd[0]);
    close(pairs[i]->fd[1]);
    free(pairs[i]);
    pairs[i] = pairs[--n_pairs];
}

static void accept_one(bridge *b)
{
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    int c = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), s;
    pair *p;

    if (c < 0)
        return;
    if (n_pairs == MAX_PAIRS || strlen(b->path) >= sizeof u.sun_path) {
        close(c);
        return;
    }
    strncpy(u.sun_path, b->path, sizeof u.sun_path - 1);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&u, sizeof u) < 0) {
        /* fail closed: the client sees its connection closed at once */
        msg("bridge %u -> %s: %s", b->port, b->path, strerror(errno));
        if (s >= 0)
            close(s);
        close(c);
        return;
    }
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
    p = calloc(1, sizeof *p);
    if (!p) {
        close(s);
        close(c);
        return;
    }
    p->fd[0] = c;
    p->fd[1] = s;
    pairs[n_pairs++] = p;
}

/* Move bytes for pair i as far as they go without blocking; returns false when it is done. */
static bool pair_step(pair *p, const struct pollfd *pf)
{
    for (int i = 0; i < 2; i++) {
        half *h = &p->dir[i];
        int from = p->fd[i], to = p->fd[1 - i];

        if (pf[i].revents & POLLERR)
            return false;
        if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) && !h->eof && h->len < BUF_SIZE) {
            ssize_t n = recv(from, h->buf + h->len, BUF_SIZE - h->len, 0);
            if (n > 0)
                h->len += (size_t)n;
            else if (n == 0)
                h->eof = true;
            else if (errno != EAGAIN && errno != EINTR)
                return false;
        }
        if (h->len) {
            ssize_t n = send(to, h->buf, h->len, MSG_NOSIGNAL);
            if (n > 0) {
                memmove(h->buf, h->buf + n, h->len - (size_t)n);
                h->len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                return false;
        }
        if (h->eof && !h->len && !h->shut) {
            shutdown(to, SHUT_WR);
            h->shut = true;
        }
    }
    return !(p->dir[0].shut && p->dir[1].shut);
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

static pid_t spawn(char **argv, const sigset_t *old)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* child: dispositions and mask as a fresh process would have them */
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    execvp(argv[0], argv);
    msg("cannot run '%s': %s", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
}

int main(int argc, char **argv)
{
    struct pollfd pf[1 + MAX_BRIDGES + 2 * MAX_PAIRS];
    sigset_t mask, old;
    int i, sfd;
    pid_t child;

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    for (size_t k = 0; k < sizeof forwarded / sizeof *forwarded; k++)
        sigaddset(&mask, forwarded[k]);
    /* First thing: as PID 1 an unblocked signal without a handler is simply dropped; blocked
     * ones are queued and read from the signalfd (a stop right after start must not be lost). */
    if (sigprocmask(SIG_BLOCK, &mask, &old) < 0 ||
        (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        msg("signals: %s", strerror(errno));
        return 1;
    }
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            if (parse_bridge(argv[++i]) < 0)
                return 2;
        } else if (strncmp(argv[i], "-b", 2) == 0 && argv[i][2]) {
            if (parse_bridge(argv[i] + 2) < 0)
                return 2;
        } else
            return usage();
    }
    if (i + 1 >= argc)
        return usage();

    signal(SIGPIPE, SIG_IGN);
    if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        msg("cannot become a subreaper: %s", strerror(errno));

    open_listeners(); /* before the child: it may connect at once */
    child = spawn(argv + i + 1, &old);
    if (child < 0) {
        msg("fork: %s", strerror(errno));
        return 1;
    }

    for (;;) {
        nfds_t n = 0;

        pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (size_t b = 0; b < n_bridges; b++)
            pf[n++] = (struct pollfd){.fd = bridges[b].listen_fd,
                                      .events = bridges[b].listen_fd >= 0 ? POLLIN : 0};
        for (size_t k = 0; k < n_pairs; k++)
            for (int d = 0; d < 2; d++) {
                half *in = &pairs[k]->dir[d], *out = &pairs[k]->dir[1 - d];
                short ev = 0;
                if (!in->eof && in->len < BUF_SIZE)
                    ev |= POLLIN;
                if (out->len)
                    ev |= POLLOUT;
                pf[n++] = (struct pollfd){.fd = pairs[k]->fd[d], .events = ev};
            }
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            msg("poll: %s", strerror(errno));
            return 1;
        }
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo != SIGCHLD) {
                    kill(child, (int)si.ssi_signo);
                    continue;
                }
                for (;;) {
                    int status;
                    pid_t w = waitpid(-1, &status, WNOHANG);
                    if (w <= 0)
                        break;
                    if (w == child)
                        return status_code(status); /* the kernel ends the rest with us */
                }
            }
        }
        for (size_t b = 0; b < n_bridges; b++)
            if (pf[1 + b].revents & POLLIN)
                accept_one(&bridges[b]);
        /* pairs accepted just now have no pollfd yet; only step the ones that were polled */
        size_t polled = (n - 1 - n_bridges) / 2;
        for (size_t k = polled; k-- > 0;)
            if (!pair_step(pairs[k], &pf[1 + n_bridges + 2 * k]))
                pair_free(k);
    }
}
