/* SPDX-License-Identifier: Apache-2.0 */
/* vault-spawn.c: posix_spawn a helper with pipes for stdin/stdout/stderr and a deadline. The
 * child's stdout may be key material: it goes straight into sodium_malloc() memory. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "vault-spawn.h"
#include "util/macro.h"

extern char **environ;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

void spawn_result_done(spawn_result *r)
{
    if (r->out)
        sodium_free(r->out);
    r->out = NULL;
    r->out_len = 0;
}

static void keep_errline(spawn_result *r, size_t *len, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && *len + 1 < sizeof r->errline; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            if (*len > 0) { /* only the first non-empty line */
                *len = sizeof r->errline;
                return;
            }
            continue;
        }
        r->errline[(*len)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        r->errline[*len] = '\0';
    }
}

int spawn_capture(char *const argv[], const void *in, size_t in_len, int timeout_ms,
                  spawn_result *ret)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    size_t in_off = 0, errlen = 0;
    int64_t deadline = now_ms() + timeout_ms;
    bool overflow = false, timed_out = false;
    pid_t pid;
    int r, st;

    *ret = (spawn_result){0};
    ret->out = sodium_malloc(SPAWN_OUT_MAX);
    if (!ret->out)
        return -ENOMEM;
    /* stdin is a socket so a child that exits early costs us EPIPE from send(MSG_NOSIGNAL),
     * never a SIGPIPE in the host process. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pin) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
        pipe2(perr, O_CLOEXEC) < 0) {
        r = negative_errno();
        goto fail;
    }
    r = -posix_spawn_file_actions_init(&fa);
    if (r < 0)
        goto fail;
    /* dup2 clears FD_CLOEXEC on the targets; every other fd we hold stays close-on-exec. */
    if (posix_spawn_file_actions_adddup2(&fa, pin[0], 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, pout[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, perr[1], 2) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        r = -ENOMEM;
        goto fail;
    }
    r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r < 0)
        goto fail;
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    pin[0] = pout[1] = perr[1] = -1;
    if (in_len == 0)
        close_pair(pin);

    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd pfd[3];
        int n = 0, left = (int)(deadline - now_ms());
        char buf[512];

        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (pout[0] >= 0)
            pfd[n++] = (struct pollfd){.fd = pout[0], .events = POLLIN};
        if (perr[0] >= 0)
            pfd[n++] = (struct pollfd){.fd = perr[0], .events = POLLIN};
        if (pin[1] >= 0)
            pfd[n++] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
        if (poll(pfd, (nfds_t)n, left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (pfd[i].fd == pin[1]) {
                ssize_t w = send(pin[1], (const char *)in + in_off, in_len - in_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0)
                    in_off += (size_t)w;
                if ((w < 0 && errno != EAGAIN) || in_off == in_len)
                    close_pair(pin);
            } else if (pfd[i].fd == pout[0]) {
                ssize_t k;
                if (ret->out_len == SPAWN_OUT_MAX) {
                    overflow = true;
                    k = read(pout[0], buf, sizeof buf);
                } else
                    k = read(pout[0], ret->out + ret->out_len, SPAWN_OUT_MAX - ret->out_len);
                if (k > 0 && !overflow)
                    ret->out_len += (size_t)k;
                if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
                    close(pout[0]);
                    pout[0] = -1;
                }
            } else {
                ssize_t k = read(perr[0], buf, sizeof buf);
                if (k > 0)
                    keep_errline(ret, &errlen, buf, (size_t)k);
                if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
                    close(perr[0]);
                    perr[0] = -1;
                }
            }
        }
    }
    close_pair(pin);
    close_pair(pout);
    close_pair(perr);
    if (timed_out)
        kill(pid, SIGKILL); /* our own child, by pid */
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            r = negative_errno();
            goto fail;
        }
    if (WIFEXITED(st))
        ret->status = WEXITSTATUS(st);
    else
        ret->status = 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (timed_out) {
        r = -ETIMEDOUT;
        goto fail;
    }
    if (overflow) {
        r = -E2BIG;
        goto fail;
    }
    /* posix_spawnp reports a missing program as exit 127 from the child on glibc. */
    if (ret->status == 127 && ret->out_len == 0 && errlen == 0) {
        r = -ENOENT;
        goto fail;
    }
    return 0;
fail:
    close_pair(pin);
    close_pair(pout);
    close_pair(perr);
    spawn_result_done(ret);
    return r;
}

char **strv_free_(char **v)
{
    if (v) {
        for (char **p = v; *p; p++)
            free(*p);
        free(v);
    }
    return NULL;
}

int split_command(const char *s, char ***ret)
{
    char **v = NULL, *cur = NULL;
    size_t n = 0, len = 0;
    bool in_word = false;

    cur = malloc(strlen(s) + 1);
    if (!cur)
        return -ENOMEM;
    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                char **nv = realloc(v, (n + 2) * sizeof *v);
                if (!nv)
                    goto oom;
                v = nv;
                cur[len] = '\0';
                v[n] = strdup(cur);
                if (!v[n])
                    goto oom;
                v[++n] = NULL;
                len = 0;
                in_word = false;
            }
            if (c == '\0')
                break;
            continue;
        }
        in_word = true;
        if (c == '\'') {
            for (p++; *p && *p != '\''; p++)
                cur[len++] = *p;
            if (!*p)
                goto bad;
        } else if (c == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                cur[len++] = *p;
            }
            if (!*p)
                goto bad;
        } else if (c == '\\') {
            if (!p[1])
                goto bad;
            cur[len++] = *++p;
        } else
            cur[len++] = c;
    }
    free(cur);
    if (n == 0) {
        free(v);
        return -EINVAL;
    }
    *ret = v;
    return 0;
bad:
    free(cur);
    if (v)
        v[n] = NULL;
    strv_free_(v);
    return -EINVAL;
oom:
    free(cur);
    if (v)
        v[n] = NULL;
    strv_free_(v);
    return -ENOMEM;
}
