/* SPDX-License-Identifier: Apache-2.0 */
/* events.h: the blocked-connection source: an NFLOG netlink socket created and bound inside a
 * container's netns (MACHINE.md §13.4), read from the host with libmnl. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "terok/plugin.h"

typedef struct nflog_event {
    char prefix[64];
    uint32_t proto; /* IPPROTO_* */
    bool v6;
    struct in6_addr dst;
    uint16_t dport;  /* 0 when not TCP/UDP */
    int64_t time_ns; /* CLOCK_REALTIME */
} nflog_event;

/* Create an NFLOG socket in pid's netns bound to `group` (copy packet headers, QTHRESH=1 so
 * nothing is batched). *ret_fd is non-blocking and close-on-exec; it pins that netns until
 * closed. */
int events_open(int64_t pid, uint32_t group, int *ret_fd, terok_error *err);
/* Read everything pending on fd (never blocks) and call cb per logged packet. A malformed
 * packet is skipped, never trusted. Returns the number of events delivered, or -errno. */
int events_read(int fd, int (*cb)(void *ud, const nflog_event *ev), void *ud, terok_error *err);
/* Prefixes the event source reports as blocked connections. */
bool event_prefix_blocked(const char *prefix);
