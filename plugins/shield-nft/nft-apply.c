/* SPDX-License-Identifier: Apache-2.0 */
/* nft-apply.c: libnftables in another process's network namespace (MACHINE.md §13.3). The
 * fork keeps setns() away from the caller: CLONE_NEWUSER demands a single-threaded caller and a
 * namespace switch must never leak into a daemon. The child never prints and never returns. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/nsfs.h>
#include <malloc.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "nft-apply.h"
#include "shield-common.h"

#define CHILD_TIMEOUT_MS 30000
#define OUTPUT_MAX (64u << 20)

/* Report header the child writes first: status (0 or -errno), the failing transaction, the
 * probe of the output chain. */
typedef struct report {
    int32_t status;
    int32_t failed_tx;
    chain_probe probe;
} report;

#define UDATA_RULE_COMMENT 0 /* libnftnl's NFTNL_UDATA_RULE_COMMENT */
#define PROBE_TABLE "terok_shield"
#define PROBE_CHAIN "output"

static int probe_rule_cb(const struct nlmsghdr *nlh, void *data)
{
    chain_probe *p = data;
    const struct nlattr *a;

    if (p->rules++ > 0)
        return MNL_CB_OK;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
    {
        const uint8_t *u, *end;

        if (mnl_attr_get_type(a) != NFTA_RULE_USERDATA)
            continue;
        u = mnl_attr_get_payload(a);
        end = u + mnl_attr_get_payload_len(a);
        /* TLVs of {type u8, len u8, value}; the comment is NUL-terminated by nft. */
        while (u + 2 <= end && u + 2 + u[1] <= end) {
            if (u[0] == UDATA_RULE_COMMENT && u[1] > 0) {
                size_t n = strnlen((const char *)u + 2, u[1]);

                snprintf(p->mark, sizeof p->mark, "%.*s", (int)n, (const char *)u + 2);
            }
            u += 2 + u[1];
        }
    }
    return MNL_CB_OK;
}

static int probe_chain_cb(const struct nlmsghdr *nlh, void *data)
{
    chain_probe *p = data;
    const struct nlattr *a;

    p->present = 1;
    mnl_attr_for_each(a, nlh,
                      sizeof(struct nfgenmsg)) if (mnl_attr_get_type(a) == NFTA_CHAIN_POLICY &&
                                                   mnl_attr_get_payload_len(a) >= sizeof(uint32_t))
        p->policy = ntohl(mnl_attr_get_u32(a)) == NF_ACCEPT;
    return MNL_CB_OK;
}

static int probe_query(struct mnl_socket *nl, uint16_t type, uint16_t flags, uint32_t seq,
                       mnl_cb_t cb, chain_probe *p)
{
    char buf[16384];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    struct nfgenmsg *g;
    unsigned portid = mnl_socket_get_portid(nl);
    ssize_t n;
    int r;

    nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    g = mnl_nlmsg_put_extra_header(nlh, sizeof *g);
    g->nfgen_family = NFPROTO_INET;
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    mnl_attr_put_strz(nlh, type == NFT_MSG_GETRULE ? NFTA_RULE_TABLE : NFTA_CHAIN_TABLE,
                      PROBE_TABLE);
    mnl_attr_put_strz(nlh, type == NFT_MSG_GETRULE ? NFTA_RULE_CHAIN : NFTA_CHAIN_NAME,
                      PROBE_CHAIN);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        return negative_errno();
    do {
        n = mnl_socket_recvfrom(nl, buf, sizeof buf);
        if (n < 0)
            return negative_errno();
        r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, p);
    } while (r > 0 && (flags & NLM_F_DUMP));
    if (r < 0)
        return errno == ENOENT ? 0 : negative_errno();
    return 0;
}

static int probe_output_chain(chain_probe *p)
{
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    int r;

    memset(p, 0, sizeof *p);
    if (!nl)
        return negative_errno();
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        r = negative_errno();
        mnl_socket_close(nl);
        return r;
    }
    r = probe_query(nl, NFT_MSG_GETCHAIN, 0, 1, probe_chain_cb, p);
    if (r >= 0 && p->present)
        r = probe_query(nl, NFT_MSG_GETRULE, NLM_F_DUMP, 2, probe_rule_cb, p);
    mnl_socket_close(nl);
    return r;
}

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
    /* p is at the space before field 3 (state); starttime is field 22 */
    for (int field = 3; field < 22; field++) {
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

static void child_report(int fd, int status, int failed, const chain_probe *probe, const char *text)
{
    report h = {status, failed, {0}};

    if (probe)
        h.probe = *probe;
    (void)write_fd_all(fd, &h, sizeof h);
    if (text)
        (void)write_fd_all(fd, text, strlen(text));
}

/* Transactions travel parent -> child as: u32 count, then per transaction u32 length + bytes.
 * A short read (the parent aborted) ends the child without touching the netns. */
static int read_exact(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = read(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -EPIPE;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static char **read_txs(int fd)
{
    uint32_t n, len;
    char **txs;

    if (read_exact(fd, &n, sizeof n) < 0 || n > 1024)
        return NULL;
    txs = calloc(n + 1, sizeof(char *));
    for (uint32_t i = 0; txs && i < n; i++) {
        if (read_exact(fd, &len, sizeof len) < 0 || len > OUTPUT_MAX ||
            !(txs[i] = malloc((size_t)len + 1)) || read_exact(fd, txs[i], len) < 0)
            return NULL; /* the child exits right after; no need to free */
        txs[i][len] = '\0';
    }
    return txs;
}

typedef struct child_args {
    int fd, in;
    unsigned flags;
    bool thread; /* child_run runs in a thread of its own */
} child_args;

/* glibc's heap of a thread arena: HEAP_MAX_SIZE (2 * DEFAULT_MMAP_THRESHOLD_MAX) bytes aligned
 * to their size. */
#define ARENA_HEAP_SIZE ((uintptr_t)64 << 20)

/* Back this thread's malloc arena with transparent huge pages. libnftables touches tens of MB
 * for 10,000 elements; page faults are the costliest thing it does on a VM (about 2,500 of them
 * at 10,000 entries, each a trip through the hypervisor), and 2 MB pages cut them tenfold:
 * libnftables' CPU time at 10,000 elements falls from about 90 to 50 ms. Only a hint: when THP
 * is off, or the allocator is not glibc's (ASan), nothing changes. */
static void arena_hugepages(void)
{
    void *p = malloc(1);

    if (p)
        (void)madvise((void *)((uintptr_t)p & ~(ARENA_HEAP_SIZE - 1)), ARENA_HEAP_SIZE,
                      MADV_HUGEPAGE);
    free(p);
}

/* The child's work after it entered the netns; it always ends the process. */
static void *child_run(void *arg)
{
    const child_args *a = arg;
    int fd = a->fd;
    unsigned flags = a->flags;
    struct nft_ctx *ctx = NULL;
    char msg[256];
    char **txs;
    int r, i;

    /* Set up libnftables while the parent sends the transactions. */
    if (!(flags & NFT_RUN_NOCTX)) {
        if (a->thread)
            arena_hugepages();
        ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!ctx || nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
            child_report(fd, -ENOMEM, -1, NULL, "cannot set up libnftables");
            _exit(1);
        }
        if (flags & NFT_RUN_JSON)
            nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
        if (flags & NFT_RUN_DRY)
            nft_ctx_set_dry_run(ctx, true);
    }
    txs = read_txs(a->in);
    if (!txs)
        _exit(2); /* aborted: nothing was applied */
    for (i = 0; ctx && txs[i]; i++) {
        if (nft_run_cmd_from_buffer(ctx, txs[i]) != 0) {
            const char *e = nft_ctx_get_error_buffer(ctx);

            child_report(fd, -EPROTO, i, NULL, e && *e ? e : "nft failed without a message");
            _exit(1);
        }
    }
    if (flags & NFT_RUN_PROBE) {
        chain_probe probe;

        if ((r = probe_output_chain(&probe)) < 0) {
            snprintf(msg, sizeof msg, "reading back the output chain: %s", strerror(-r));
            child_report(fd, r, -1, NULL, msg);
            _exit(1);
        }
        child_report(fd, 0, -1, &probe,
                     ctx && (flags & NFT_RUN_OUTPUT) ? nft_ctx_get_output_buffer(ctx) : NULL);
        _exit(0);
    }
    child_report(fd, 0, -1, NULL,
                 ctx && (flags & NFT_RUN_OUTPUT) ? nft_ctx_get_output_buffer(ctx) : NULL);
    _exit(0);
}

static _noreturn_ void child_main(int fd, int in, int pidfd, pid_t pid, unsigned flags)
{
    child_args a = {fd, in, flags, false};
    const char *what = "";
    char msg[256];
    pthread_t th;
    int r;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pidfd >= 0 && (r = netns_join(pidfd, pid, &what)) < 0) {
        snprintf(msg, sizeof msg, "cannot enter the network namespace of pid %d (%s): %s", (int)pid,
                 what, strerror(-r));
        child_report(fd, r, -1, NULL, msg);
        _exit(1);
    }
    if ((flags & NFT_RUN_LARGE) && !(flags & NFT_RUN_NOCTX)) {
        /* libnftables makes several hundred thousand small allocations for 10,000 elements. In
         * this forked child the main heap is the caller's, fragmented and shared copy-on-write:
         * allocations walked its free lists and touching a reused chunk copied a page (twice
         * the kernel and malloc time of a fresh `nft -f`). A thread, created after the
         * namespaces were joined (it inherits them), gets a fresh malloc arena of its own; with
         * the top pad set first, glibc maps that arena's whole heap at once, which lets
         * arena_hugepages() back it with huge pages. */
        mallopt(M_TOP_PAD, 64 << 20);
        a.thread = true;
        if (pthread_create(&th, NULL, child_run, &a) == 0) {
            pthread_join(th, NULL);
            _exit(1); /* not reached: child_run ends the process */
        }
        a.thread = false;
    }
    child_run(&a);
    _exit(1);
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

struct nft_job {
    pid_t child;
    int report_fd; /* child -> parent */
    int tx_fd;     /* parent -> child */
    int64_t pid;
};

int nft_job_start(int64_t pid, unsigned flags, nft_job **ret, terok_error *err)
{
    _cleanup_close_ int pidfd = -EBADF;
    int rep[2], tx[2];
    nft_job *j;

    if (pid > INT32_MAX)
        return terok_perr(err, -ESRCH, "pid %lld is out of range", (long long)pid);
    if (pid > 0) {
        pidfd = pidfd_open_pid(pid);
        if (pidfd < 0)
            return terok_perr(err, negative_errno(), "pid %lld: %s", (long long)pid,
                              strerror(errno));
    }
    if (!(j = calloc(1, sizeof *j)))
        return terok_perr(err, -ENOMEM, "out of memory");
    if (pipe2(rep, O_CLOEXEC) < 0) {
        free(j);
        return terok_perr(err, negative_errno(), "pipe: %s", strerror(errno));
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tx) < 0) {
        int e = errno;

        close(rep[0]);
        close(rep[1]);
        free(j);
        return terok_perr(err, -e, "pipe: %s", strerror(e));
    }
    j->child = fork();
    if (j->child < 0) {
        int e = errno;

        close(rep[0]), close(rep[1]), close(tx[0]), close(tx[1]);
        free(j);
        return terok_perr(err, -e, "fork: %s", strerror(e));
    }
    if (j->child == 0) {
        close(rep[0]);
        close(tx[1]);
        child_main(rep[1], tx[0], pidfd, (pid_t)pid, flags);
    }
    close(rep[1]);
    close(tx[0]);
    /* Parent writes on tx[1], child reads tx[0]. */
    j->report_fd = rep[0];
    j->tx_fd = tx[1];
    j->pid = pid;
    *ret = j;
    return 0;
}

void nft_job_abort(nft_job *j)
{
    int st;

    if (!j)
        return;
    if (j->tx_fd >= 0)
        close(j->tx_fd); /* the child sees a short read and leaves without applying anything */
    kill(j->child, SIGKILL);
    while (waitpid(j->child, &st, 0) < 0 && errno == EINTR)
        ;
    close(j->report_fd);
    free(j);
}

/* send(MSG_NOSIGNAL): a child that already left must not SIGPIPE the caller (a daemon). */
static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return negative_errno();
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int send_txs(int fd, const char *const *txs)
{
    uint32_t n = 0;
    int r;

    while (txs && txs[n])
        n++;
    if ((r = send_all(fd, &n, sizeof n)) < 0)
        return r;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)strlen(txs[i]);

        if ((r = send_all(fd, &len, sizeof len)) < 0 || (r = send_all(fd, txs[i], len)) < 0)
            return r;
    }
    return 0;
}

void nft_job_send(nft_job *j, const char *const *txs)
{
    /* A child that failed early (setns) has closed its end: its report says why. */
    (void)send_txs(j->tx_fd, txs);
    close(j->tx_fd);
    j->tx_fd = -EBADF;
}

int nft_job_finish(nft_job *j, const char *const *txs, char **ret_output, chain_probe *ret_probe,
                   terok_error *err)
{
    nft_job_send(j, txs);
    return nft_job_wait(j, ret_output, ret_probe, err);
}

int nft_job_wait(nft_job *j, char **ret_output, chain_probe *ret_probe, terok_error *err)
{
    _cleanup_free_ char *buf = NULL;
    int64_t pid = j->pid;
    size_t len = 0;
    int r, status;
    report h;

    if (j->tx_fd >= 0) {
        close(j->tx_fd);
        j->tx_fd = -EBADF;
    }
    r = read_report(j->report_fd, j->child, &buf, &len);
    while (waitpid(j->child, &status, 0) < 0 && errno == EINTR)
        ;
    close(j->report_fd);
    free(j);
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
    if (ret_probe)
        *ret_probe = h.probe;
    if (ret_output) {
        char *out = strdup(buf + sizeof h);

        if (!out)
            return terok_perr(err, -ENOMEM, "out of memory");
        *ret_output = out;
    }
    return 0;
}

int nft_run_in_netns(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                     terok_error *err)
{
    return nft_run_probe(pid, txs, flags & ~(unsigned)NFT_RUN_PROBE, ret_output, NULL, err);
}

int nft_run_probe(int64_t pid, const char *const *txs, unsigned flags, char **ret_output,
                  chain_probe *ret_probe, terok_error *err)
{
    nft_job *j;
    int r;

    if (!txs || !txs[0])
        flags |= NFT_RUN_NOCTX; /* a read-back only: no libnftables context needed */
    if ((r = nft_job_start(pid, flags, &j, err)) < 0)
        return r;
    return nft_job_finish(j, txs, ret_output, ret_probe, err);
}
