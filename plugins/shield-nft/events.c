/* SPDX-License-Identifier: Apache-2.0 */
/* events.c: NFLOG from a container's netns. The socket is made by a forked child that joins
 * the netns (as nft-apply does), binds the group with QTHRESH=1, and hands the fd back over a
 * socketpair with SCM_RIGHTS. Payloads are packets the container crafted: every offset is
 * bounds-checked and nothing from them is used but addresses, protocol and port. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "events.h"
#include "nft-ruleset.h"
#include "nft-apply.h"
#include "shield-common.h"

#define COPY_RANGE 128 /* IPv6 header + a TCP/UDP header fit */
#define NL_BUF 8192
#define READ_BUF 65536

bool event_prefix_blocked(const char *prefix)
{
    return streq(prefix, PFX_DENY) || streq(prefix, PFX_PRIVATE) || streq(prefix, PFX_BLOCKED) ||
           streq(prefix, PFX_QUARANTINE);
}

/* Send one config message and wait for its ACK. */
static int nflog_config(struct mnl_socket *nl, uint32_t group, int what, uint32_t seq)
{
    char buf[NL_BUF];
    struct nlmsghdr *nlh =
        nflog_nlmsg_put_header(buf, NFULNL_MSG_CONFIG, AF_UNSPEC, (uint16_t)group);
    unsigned portid = mnl_socket_get_portid(nl);
    ssize_t n;

    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    if (what == 0)
        nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_BIND);
    else if (what == 1)
        nflog_attr_put_cfg_mode(nlh, NFULNL_COPY_PACKET, COPY_RANGE);
    else
        mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(1));
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        return negative_errno();
    n = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (n < 0)
        return negative_errno();
    if (mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
        return negative_errno();
    return 0;
}

static int send_fd(int sock, int fd)
{
    char c = 'F';
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

    memset(u.buf, 0, sizeof u.buf);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : negative_errno();
}

static int recv_fd(int sock, int *ret_fd, int *ret_status)
{
    int32_t status = 0;
    struct iovec iov = {.iov_base = &status, .iov_len = sizeof status};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm;
    ssize_t n;

    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return negative_errno();
    for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
            return 0;
        }
    /* No fd: the child sent its failure status instead ('F' never arrives alone). */
    *ret_status = n >= (ssize_t)sizeof status ? status : -EIO;
    return -ENOMSG;
}

static _noreturn_ void child_main(int sock, int pidfd, int pid, uint32_t group)
{
    struct mnl_socket *nl;
    const char *what = "";
    int32_t status;
    int r;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((r = netns_join(pidfd, pid, &what)) < 0)
        goto fail;
    what = "netlink socket";
    nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        r = negative_errno();
        goto fail;
    }
    what = "NFLOG bind";
    if ((r = nflog_config(nl, group, 0, 1)) < 0)
        goto fail;
    what = "NFLOG copy mode";
    if ((r = nflog_config(nl, group, 1, 2)) < 0)
        goto fail;
    what = "NFLOG queue threshold";
    if ((r = nflog_config(nl, group, 2, 3)) < 0)
        goto fail;
    if (send_fd(sock, mnl_socket_get_fd(nl)) < 0)
        _exit(1);
    _exit(0);
fail:
    status = r;
    (void)write_fd_all(sock, &status, sizeof status);
    (void)write_fd_all(sock, what, strlen(what));
    _exit(1);
}

int events_open(int64_t pid, uint32_t group, int *ret_fd, terok_error *err)
{
    _cleanup_close_ int pidfd = -EBADF, a = -EBADF, b = -EBADF;
    int sv[2], fd = -EBADF, status = 0, r, ws;
    pid_t child;

    pidfd = pidfd_open_pid(pid);
    if (pidfd < 0)
        return terok_perr(err, -ESRCH, "no process %lld", (long long)pid);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return terok_perr(err, negative_errno(), "socketpair: %s", strerror(errno));
    a = sv[0];
    b = sv[1];
    child = fork();
    if (child < 0)
        return terok_perr(err, negative_errno(), "fork: %s", strerror(errno));
    if (child == 0) {
        close(a);
        child_main(b, pidfd, (int)pid, group);
    }
    closep(&b);
    b = -EBADF;
    r = recv_fd(a, &fd, &status);
    while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
        ;
    if (r == -ENOMSG)
        return terok_perr(err, status < 0 ? status : -EIO,
                          "cannot open the NFLOG source in the netns of pid %lld: %s",
                          (long long)pid, strerror(status < 0 ? -status : EIO));
    if (r < 0)
        return terok_perr(err, r, "receiving the NFLOG socket: %s", strerror(-r));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        r = negative_errno();
        close(fd);
        return terok_perr(err, r, "fcntl: %s", strerror(-r));
    }
    *ret_fd = fd;
    return 0;
}

typedef struct read_ctx {
    int (*cb)(void *ud, const nflog_event *ev);
    void *ud;
    int delivered;
    int cb_error;
} read_ctx;

/* Destination, protocol and port from an IP packet; false when it does not hold together. */
static bool parse_packet(const uint8_t *p, size_t len, nflog_event *ev)
{
    size_t off;
    uint8_t proto;

    if (len < 1)
        return false;
    if ((p[0] >> 4) == 4) {
        size_t ihl = (size_t)(p[0] & 0x0f) * 4;

        if (len < 20 || ihl < 20 || ihl > len)
            return false;
        ev->v6 = false;
        memset(&ev->dst, 0, sizeof ev->dst);
        memcpy(&ev->dst, p + 16, 4);
        proto = p[9];
        off = ihl;
        if ((p[6] & 0x1f) != 0 || p[7] != 0)
            off = SIZE_MAX; /* a non-first fragment has no transport header */
    } else if ((p[0] >> 4) == 6) {
        if (len < 40)
            return false;
        ev->v6 = true;
        memcpy(&ev->dst, p + 24, 16);
        proto = p[6];
        off = 40;
        /* Extension headers before the transport one (RFC 8200 §4.1): a few, each inside the
         * packet; a chain cut short leaves its last extension as the protocol, without port. */
        for (int i = 0; i < 8; i++) {
            size_t hl;

            if (proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING || proto == IPPROTO_DSTOPTS)
                hl = off + 2 <= len ? ((size_t)p[off + 1] + 1) * 8 : 0;
            else if (proto == IPPROTO_AH)
                hl = off + 2 <= len ? ((size_t)p[off + 1] + 2) * 4 : 0;
            else if (proto == IPPROTO_FRAGMENT)
                hl = off + 8 <= len ? 8 : 0;
            else
                break;
            if (hl == 0 || off + hl > len)
                break;
            if (proto == IPPROTO_FRAGMENT && (((p[off + 2] << 8) | p[off + 3]) & 0xfff8)) {
                proto = p[off];
                off = SIZE_MAX; /* a non-first fragment has no transport header */
                break;
            }
            proto = p[off];
            off += hl;
        }
    } else {
        return false;
    }
    ev->proto = proto;
    ev->dport = 0;
    if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) &&
        off != SIZE_MAX && off + 4 <= len)
        ev->dport = (uint16_t)((p[off + 2] << 8) | p[off + 3]);
    return true;
}

static int on_msg(const struct nlmsghdr *nlh, void *data)
{
    read_ctx *c = data;
    struct nlattr *attr[NFULA_MAX + 1] = {0};
    nflog_event ev = {0};
    struct timespec ts;

    if (nflog_nlmsg_parse(nlh, attr) < 0 || !attr[NFULA_PAYLOAD])
        return MNL_CB_OK;
    if (attr[NFULA_PREFIX]) {
        const char *pfx = mnl_attr_get_payload(attr[NFULA_PREFIX]);
        size_t n = strnlen(pfx, mnl_attr_get_payload_len(attr[NFULA_PREFIX]));

        snprintf(ev.prefix, sizeof ev.prefix, "%.*s", (int)MIN(n, sizeof ev.prefix - 1), pfx);
    }
    if (!parse_packet(mnl_attr_get_payload(attr[NFULA_PAYLOAD]),
                      mnl_attr_get_payload_len(attr[NFULA_PAYLOAD]), &ev))
        return MNL_CB_OK;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (c->cb) {
        int r = c->cb(c->ud, &ev);

        if (r < 0) {
            c->cb_error = r;
            return MNL_CB_STOP;
        }
    }
    c->delivered++;
    return MNL_CB_OK;
}

int events_read(int fd, int (*cb)(void *ud, const nflog_event *ev), void *ud, terok_error *err)
{
    _cleanup_free_ char *buf = malloc(READ_BUF);
    read_ctx c = {cb, ud, 0, 0};

    if (!buf)
        return terok_perr(err, -ENOMEM, "out of memory");
    for (;;) {
        ssize_t n = recv(fd, buf, READ_BUF, MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (errno == ENOBUFS) /* overrun: events were lost, keep reading */
                continue;
            return terok_perr(err, negative_errno(), "reading NFLOG: %s", strerror(errno));
        }
        if (n == 0)
            break;
        if (mnl_cb_run(buf, (size_t)n, 0, 0, on_msg, &c) < 0 && c.cb_error == 0)
            continue; /* a malformed message: skip the datagram */
        if (c.cb_error < 0)
            return terok_perr(err, c.cb_error, "event callback failed");
    }
    return c.delivered;
}
