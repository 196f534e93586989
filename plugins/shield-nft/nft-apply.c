/* SPDX-License-Identifier: Apache-2.0 */
/* nft-apply.c: libnftables in another process's network namespace (MACHINE.md §13.3). The
 * fork keeps setns() away from the caller: CLONE_NEWUSER demands a single-threaded caller and a
 * namespace switch must never leak into a daemon. The child never prints and never returns. */
#include <fcntl.h>
#include <linux/nsfs.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "nft-apply.h"
#include "shield-common.h"

#define CHILD_TIMEOUT_MS 30000
#define OUTPUT_MAX (64u << 20)

/* Report header the child writes first: status (0 or -errno), the failing transaction. */
typedef struct report {
    int32_t status;
    int32_t failed_tx;
} report;

int pidfd_open_pid(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return -ESRCH;
    return (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
}

int proc_starttime(int64_t pid, uint64_t *ret)
{
    char path[64], buf[1024];
    _cleanup_close_ int fd = -EBADF;
    ssize_t n;
    char *p;
    unsigned long long v;

    if (pid <= 0 || pid > INT32_MAX)
        return -ESRCH;
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : negative_errno();
    n = read(fd, buf, sizeof buf - 1);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields resume after the last ')'. */
    p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    for (int field = 2; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -EIO;
    }
    if (sscanf(p, " %llu", &v) != 1)
        return -EIO;
    *ret = v;
    return 0;
}

static ino_t ns_ino(int fd)
{
    struct stat st;

    return fstat(fd, &st) < 0 ? 0 : st.st_ino;
}

/* In the child: join pid's netns through pidfd. When the netns belongs to a user namespace that
 * is not ours, a root caller usually still may enter (it owns every descendant namespace);
 * otherwise (rootless: the operator owns the container's userns) join user and net together. */
int netns_join(int pidfd, int pid, const char **what)
{
    char path[64];
    _cleanup_close_ int netfd = -EBADF, owner = -EBADF, self = -EBADF;

    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    *what = "open netns";
    netfd = open(path, O_RDONLY | O_CLOEXEC);
    if (netfd < 0)
        return negative_errno();
    /* The pid may have been reused between pidfd_open and open: the pidfd must still be live. */
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        return -ESRCH;
    *what = "NS_GET_USERNS";
    owner = ioctl(netfd, NS_GET_USERNS);
    self = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (owner < 0 || self < 0)
        return negative_errno();
    if (ns_ino(owner) == ns_ino(self) || geteuid() == 0) {
        *what = "setns(net)";
        if (setns(netfd, CLONE_NEWNET) == 0)
            return 0;
        if (errno != EPERM || ns_ino(owner) == ns_ino(self))
            return negative_errno();
    }
    *what = "setns(user+net)";
    if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNET) < 0)
        return negative_errno();
    return 0;
}

static void child_report(int fd, int status, int failed, const char *text)
{
    report h = {status, failed};

    (void)write_fd_all(fd, &h, sizeof h);
    if (text)
        (void)write_fd_all(fd, text, strlen(text));
}

static _noreturn_ void child_main(int fd, int pidfd, pid_t pid, const char *const *txs,
                                  unsigned flags)
{
    struct nft_ctx *ctx;
    const char *what = "";
    char msg[256];
    int r, i = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pidfd >= 0 && (r = netns_join(pidfd, pid, &what)) < 0) {
        snprintf(msg, sizeof msg, "cannot enter the network namespace of pid %d (%s): %s", (int)pid,
                 what, strerror(-r));
        child_report(fd, r, -1, msg);
        _exit(1);
    }
    ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        child_report(fd, -ENOMEM, -1, "nft_ctx_new failed");
        _exit(1);
    }
    if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
        child_report(fd, -ENOMEM, -1, "cannot buffer nft output");
        _exit(1);
    }
    if (flags & NFT_RUN_JSON)
        nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    if (flags & NFT_RUN_DRY)
        nft_ctx_set_dry_run(ctx, true);
    for (i = 0; txs && txs[i]; i++) {
        if (nft_run_cmd_from_buffer(ctx, txs[i]) != 0) {
            const char *e = nft_ctx_get_error_buffer(ctx);

            child_report(fd, -EPROTO, i, e && *e ? e : "nft failed without a message");
            _exit(1);
        }
    }
    child_report(fd, 0, -1, (flags & NFT_RUN_OUTPUT) ? nft_ctx_get_output_buffer(ctx) : NULL);
    _exit(0);
}

/* Read the child's report until EOF or the deadline. */
static int read_report(int fd, pid_t child, char **ret_buf, size_t *ret_len)
{
    int64_t deadline = now_monotonic_ns() + (int64_t)CHILD_TIMEOUT_MS * 1000000;
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = (deadline - now_monotonic_ns()) / 1000000;
        ssize_t n;

        if (left <= 0) {
            kill(child, SIGKILL);
            return -ETIMEDOUT;
        }
        if (poll(&pfd, 1, (int)MIN(left, INT32_MAX)) < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        if (cap - len < 65536) {
            char *nb;

            cap = cap ? cap * 2 : 131072;
            if (cap > OUTPUT_MAX + 131072)
                return -EFBIG;
            nb = realloc(buf, cap);
            if (!nb)
                return -ENOMEM;
            buf = nb;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return negative_errno();
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (!buf && !(buf = malloc(1)))
        return -ENOMEM;
    buf[len] = '\0';
    *ret_buf = take_ptr(buf);
    *ret_len = len;
    return 0;
}

int nft_run_in_netns(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                     terok_error *err)
{
    _cleanup_close_ int pidfd = -EBADF, rfd = -EBADF, wfd = -EBADF;
    _cleanup_free_ char *buf = NULL;
    int pipefd[2], r, status;
    size_t len = 0;
    report h;
    pid_t child;

    if (pid > INT32_MAX)
        return terok_perr(err, -ESRCH, "pid %lld is out of range", (long long)pid);
    if (pid > 0) {
        pidfd = pidfd_open_pid(pid);
        if (pidfd < 0)
            return terok_perr(err, negative_errno(), "pid %lld: %s", (long long)pid,
                              strerror(errno));
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return terok_perr(err, negative_errno(), "pipe: %s", strerror(errno));
    rfd = pipefd[0];
    wfd = pipefd[1];
    child = fork();
    if (child < 0)
        return terok_perr(err, negative_errno(), "fork: %s", strerror(errno));
    if (child == 0) {
        close(rfd);
        child_main(wfd, pidfd, (pid_t)pid, txs, flags);
    }
    closep(&wfd);
    wfd = -EBADF;
    r = read_report(rfd, child, &buf, &len);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return terok_perr(err, r, "nft helper for pid %lld: %s", (long long)pid,
                          r == -ETIMEDOUT ? "timed out" : strerror(-r));
    if (len < sizeof h)
        return terok_perr(err, -EIO, "nft helper for pid %lld died without a report",
                          (long long)pid);
    memcpy(&h, buf, sizeof h);
    if (h.status < 0) {
        char *text = buf + sizeof h;
        size_t tl = strlen(text);

        while (tl > 0 && (text[tl - 1] == '\n' || text[tl - 1] == ' '))
            text[--tl] = '\0';
        if (h.failed_tx >= 0)
            return terok_perr(err, h.status, "nft transaction %d failed: %s", h.failed_tx + 1,
                              text);
        return terok_perr(err, h.status, "%s", text);
    }
    if (ret_output) {
        char *out = strdup(buf + sizeof h);

        if (!out)
            return terok_perr(err, -ENOMEM, "out of memory");
        *ret_output = out;
    }
    return 0;
}
