/* SPDX-License-Identifier: Apache-2.0 */
/* A logged packet into the blocked-connection event the clearance daemon gets: shield-nft's
 * events.c (the NFLOG netlink message, then the IP/TCP/UDP headers a container crafted) and
 * shield-nft.c's on_event (the prefix filter, dedup, address to text, the domain the bundle
 * resolved it from). Both files are #included for their static decoders. Input: one selector
 * byte (even: a bare IP packet for parse_packet; odd: one NFLOG netlink datagram as recv()
 * returns it), then the bytes.
 *
 * What must hold: a packet that parses has its destination and protocol from the header of its
 * own IP version (IPv6: the end of its extension header chain), a port only for TCP/UDP/SCTP, and
 * an IPv4 destination's unused bytes zero (dedup compares all 16); an event reports an address that
 * parses back, the domain the bundle maps that address to (or none), and each destination once per
 * dedup window. */
#include "events.c"
#include "shield-nft.c"

#include "error.h"
#include "fuzz.h"
#include "loader.h"
#include "log.h"

#define DEDUP_TEST_MS 30000
#define MAX_DELIVERED 256

static struct terok_plugin self = {.label = (char *)"shield-nft", .name = (char *)"nft"};
static shield_policy snap;

typedef struct delivered {
    char ip[INET6_ADDRSTRLEN];
    uint32_t port, proto;
} delivered;

static delivered seen_out[MAX_DELIVERED];
static size_t n_seen_out;

static void snap_add(const char *domain, const char *ip)
{
    dns_addr a = {.tier = TIER_ALLOW, .expires_ms = INT64_MAX};

    a.v6 = strchr(ip, ':') != NULL;
    if (inet_pton(a.v6 ? AF_INET6 : AF_INET, ip, &a.addr) != 1)
        abort();
    snprintf(a.domain, sizeof a.domain, "%s", domain);
    if (policy_add_dns(&snap, &a) < 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    terok_plugin__host = host_table();
    terok_plugin__self = &self;
    log_set_max_level(LOG_CRIT);
    snap_add("svc.example.test", "198.51.100.7");
    snap_add("v6.example.test", "2001:db8::7");
    snap_add("mapped.example.test", "::ffff:198.51.100.8");
    return 0;
}

static bool has_port(uint32_t proto)
{
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* IPv6 extension headers parse_packet walks: after one, the protocol is the chain's end. */
static bool is_ext(uint8_t proto)
{
    return proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING || proto == IPPROTO_DSTOPTS ||
           proto == IPPROTO_FRAGMENT || proto == IPPROTO_AH;
}

static void fuzz_packet(const uint8_t *p, size_t len)
{
    static const uint8_t zero[12];
    nflog_event ev;

    memset(&ev, 0xa5, sizeof ev); /* whatever parse_packet leaves unset shows */
    if (!parse_packet(p, len, &ev))
        return;
    if (len < 20 || ev.v6 != ((p[0] >> 4) == 6) || (!ev.v6 && (p[0] >> 4) != 4))
        abort();
    if (ev.v6
            ? (len < 40 || memcmp(&ev.dst, p + 24, 16) != 0 || (ev.proto != p[6] && !is_ext(p[6])))
            : (memcmp(&ev.dst, p + 16, 4) != 0 || memcmp(ev.dst.s6_addr + 4, zero, 12) != 0 ||
               ev.proto != p[9]))
        abort();
    if (ev.dport && !has_port(ev.proto))
        abort();
}

static const char *snap_domain(bool v6, const struct in6_addr *a)
{
    for (size_t i = 0; i < snap.n_dns; i++)
        if (snap.dns[i].v6 == v6 && memcmp(&snap.dns[i].addr, a, sizeof *a) == 0)
            return snap.dns[i].domain;
    return NULL;
}

static int on_delivered(void *ud, const terok_shield_event *ev)
{
    struct in6_addr a = {0};
    bool v6 = strchr(ev->dest_ip, ':') != NULL;
    const char *domain;

    if (ev->struct_size != sizeof *ev || !streq(ev->container, "c1") || ev->protocol > 255 ||
        ev->dest_port > 65535 || (ev->dest_port && !has_port(ev->protocol)) || ev->time_ns <= 0)
        abort();
    if (inet_pton(v6 ? AF_INET6 : AF_INET, ev->dest_ip, &a) != 1)
        abort();
    domain = snap_domain(v6, &a);
    if ((domain == NULL) != (ev->domain == NULL) || (domain && !streq(domain, ev->domain)))
        abort();
    /* once per window: every message of one input arrives within it */
    for (size_t i = 0; i < n_seen_out; i++)
        if (streq(seen_out[i].ip, ev->dest_ip) && seen_out[i].port == ev->dest_port &&
            seen_out[i].proto == ev->protocol)
            abort();
    if (n_seen_out < MAX_DELIVERED) {
        snprintf(seen_out[n_seen_out].ip, sizeof seen_out[n_seen_out].ip, "%s", ev->dest_ip);
        seen_out[n_seen_out].port = ev->dest_port;
        seen_out[n_seen_out].proto = ev->protocol;
        n_seen_out++;
    }
    return 0;
}

/* The kernel frames the datagram: no message claims 2 GiB or more. (libmnl 1.0.4's
 * mnl_nlmsg_ok() compares nlmsg_len as an int, so it would follow such a length out of the
 * buffer; the container controls the payload, never the framing.) */
static bool kernel_framed(const uint8_t *buf, size_t len)
{
    size_t off = 0;

    while (len - off >= sizeof(struct nlmsghdr)) {
        uint32_t n;

        memcpy(&n, buf + off, sizeof n);
        if (n > INT32_MAX)
            return false;
        if (n < sizeof(struct nlmsghdr) || n > len - off || MNL_ALIGN(n) >= len - off)
            break;
        off += MNL_ALIGN(n);
    }
    return true;
}

/* What events_read() does with one datagram, delivering through shield-nft's on_event. */
static void fuzz_datagram(const uint8_t *data, size_t len)
{
    shield_state s = {.dedup_ms = DEDUP_TEST_MS};
    ev_source src = {.container = (char *)"c1", .fd = -EBADF, .snap = &snap};
    dispatch_ctx c = {&s, &src, on_delivered, NULL};
    read_ctx rc = {on_event, &c, 0, 0};
    uint8_t *buf;

    if (!kernel_framed(data, len))
        return;
    buf = malloc(len ? len : 1); /* aligned, as recv() into a heap buffer is */
    if (!buf)
        abort();
    memcpy(buf, data, len);
    n_seen_out = 0;
    (void)mnl_cb_run(buf, len, 0, 0, on_msg, &rc);
    if (rc.cb_error != 0 || rc.delivered < 0)
        abort();
    free(src.seen);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_datagram(data + 1, size - 1);
    else
        fuzz_packet(data + 1, size - 1);
    return 0;
}
