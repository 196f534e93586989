/* SPDX-License-Identifier: Apache-2.0 */
/* dns.h: host-side A/AAAA resolution that keeps the TTL (getaddrinfo drops it), through the
 * libc resolver (res_nquery) against the system resolver or one configured server. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "terok/plugin.h"

#define DNS_MAX_ADDRS 64

typedef struct dns_answer {
    bool v6;
    struct in6_addr addr; /* IPv4 in the first 4 bytes */
    uint32_t ttl;         /* seconds: the smallest TTL along the CNAME chain */
} dns_answer;

/* Check a server setting: "" (system resolver) or "IPv4[:port]". */
int dns_server_valid(const char *server, terok_error *err);

/* Resolve domain (already validated) to at most DNS_MAX_ADDRS addresses. 0 answers is not an
 * error (NXDOMAIN, no data); a resolver that does not answer is -EAGAIN. On failure `why`
 * holds the reason (DNS failures are often only worth a warning, so no terok_error here). */
int dns_resolve(const char *server, const char *domain, dns_answer *ret, size_t *ret_n, char *why,
                size_t why_len);

/* Addresses DNS must not be able to open by itself: private, loopback, link-local,
 * unspecified, multicast (DNS rebinding). */
bool dns_addr_is_internal(bool v6, const struct in6_addr *a);
