/* SPDX-License-Identifier: Apache-2.0 */
/* test-shield-packet.c: shield-nft's decoding of a logged packet (events.c, #included for its
 * static parse_packet): the destination, protocol and port clearance shows for what a container
 * sent, IPv6 extension headers and fragments included, and truncated headers. */
#include <criterion/criterion.h>

#include "events.c"

/* No host table: the plugin code's log and error calls do nothing. */
const terok_host *terok_plugin__host;
terok_plugin *terok_plugin__self;

typedef struct pkt {
    uint8_t b[128];
    size_t len;
} pkt;

static pkt v6(uint8_t next)
{
    pkt p = {.len = 40};

    p.b[0] = 0x60;
    p.b[6] = next;
    p.b[7] = 64;
    p.b[23] = 1;                             /* ::1 */
    memcpy(p.b + 24, "\x20\x01\x0d\xb8", 4); /* 2001:db8::7 */
    p.b[39] = 7;
    return p;
}

static void add(pkt *p, const void *bytes, size_t n)
{
    memcpy(p->b + p->len, bytes, n);
    p->len += n;
}

/* A TCP header's first four bytes: source port 40000, destination port. */
static void tcp(pkt *p, uint16_t dport)
{
    uint8_t h[20] = {0x9c, 0x40, (uint8_t)(dport >> 8), (uint8_t)dport};

    add(p, h, sizeof h);
}

static nflog_event parse(const pkt *p, bool ok)
{
    nflog_event ev;

    memset(&ev, 0xa5, sizeof ev);
    cr_assert_eq(parse_packet(p->b, p->len, &ev), ok);
    return ev;
}

Test(shield_packet, ipv4_and_plain_ipv6)
{
    pkt p = {.len = 20};
    nflog_event ev;

    p.b[0] = 0x45;
    p.b[9] = IPPROTO_UDP;
    memcpy(p.b + 16, "\xc6\x33\x64\x07", 4); /* 198.51.100.7 */
    add(&p, "\x9c\x40\x00\x35\x00\x08\x00\x00", 8);
    ev = parse(&p, true);
    cr_expect(!ev.v6 && ev.proto == IPPROTO_UDP && ev.dport == 53);
    cr_expect(memcmp(&ev.dst, "\xc6\x33\x64\x07", 4) == 0);
    p.b[6] = 0x00;
    p.b[7] = 0x10; /* a non-first fragment: no port */
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_UDP && ev.dport == 0);

    p = v6(IPPROTO_TCP);
    tcp(&p, 443);
    ev = parse(&p, true);
    cr_expect(ev.v6 && ev.proto == IPPROTO_TCP && ev.dport == 443);
    cr_expect(ev.dst.s6_addr[0] == 0x20 && ev.dst.s6_addr[15] == 7);
}

/* A SYN behind hop-by-hop options, a routing header and destination options is TCP to its port,
 * not "protocol 0" without one. */
Test(shield_packet, ipv6_extension_headers_are_followed)
{
    pkt p = v6(IPPROTO_HOPOPTS);
    nflog_event ev;

    add(&p, (uint8_t[]){IPPROTO_ROUTING, 0, 1, 4, 0, 0, 0, 0}, 8);
    add(&p, (uint8_t[]){IPPROTO_DSTOPTS, 0, 0, 0, 0, 0, 0, 0}, 8);
    add(&p, (uint8_t[]){IPPROTO_TCP, 1, 1, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0}, 16);
    tcp(&p, 8443);
    ev = parse(&p, true);
    cr_expect_eq(ev.proto, IPPROTO_TCP);
    cr_expect_eq(ev.dport, 8443);

    /* the first fragment carries the transport header; a later one does not */
    p = v6(IPPROTO_FRAGMENT);
    add(&p, (uint8_t[]){IPPROTO_UDP, 0, 0x00, 0x01, 0, 0, 0, 9}, 8);
    add(&p, "\x9c\x40\x00\x35\x00\x08\x00\x00", 8);
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_UDP && ev.dport == 53);
    p.b[42] = 0x05;
    p.b[43] = 0x01; /* offset 160 */
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_UDP && ev.dport == 0);
}

Test(shield_packet, truncated_and_endless_chains_stop_inside_the_packet)
{
    pkt p = v6(IPPROTO_HOPOPTS);
    nflog_event ev;

    /* a hop-by-hop header claiming 2 KiB */
    add(&p, (uint8_t[]){IPPROTO_TCP, 255, 0, 0, 0, 0, 0, 0}, 8);
    tcp(&p, 443);
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_HOPOPTS && ev.dport == 0);
    /* cut inside the extension header itself */
    p = v6(IPPROTO_DSTOPTS);
    add(&p, (uint8_t[]){IPPROTO_TCP}, 1);
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_DSTOPTS && ev.dport == 0);
    /* more extension headers than any real packet: the walk gives up, no port is made up */
    p = v6(IPPROTO_DSTOPTS);
    for (int i = 0; i < 9; i++)
        add(&p, (uint8_t[]){IPPROTO_DSTOPTS, 0, 0, 0, 0, 0, 0, 0}, 8);
    ev = parse(&p, true);
    cr_expect(ev.proto == IPPROTO_DSTOPTS && ev.dport == 0);
    /* too short for an IPv6 header, and no IP at all */
    p = v6(IPPROTO_TCP);
    p.len = 39;
    parse(&p, false);
    p.b[0] = 0x50;
    p.len = 40;
    parse(&p, false);
}
