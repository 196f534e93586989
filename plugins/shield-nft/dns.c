/* SPDX-License-Identifier: Apache-2.0 */
/* dns.c: A/AAAA with TTLs through res_nquery (libresolv), following CNAME chains only from the
 * queried name. Answers are untrusted input: sizes are bounded and only well-formed A (4 bytes)
 * and AAAA (16 bytes) records whose owner is on the chain are taken. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <strings.h>

/* <arpa/nameser.h> pulls in <sys/param.h>, whose MIN/MAX util/macro.h defines again. */
#undef MIN
#undef MAX
#include "dns.h"
#include "shield-common.h"

#define ANSWER_MAX 65536
#define CHAIN_MAX 8

static int parse_server(const char *server, struct sockaddr_in *sin)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strchr(server, ':');
    size_t n = colon ? (size_t)(colon - server) : strlen(server);
    unsigned port = 53;

    if (n == 0 || n >= sizeof host)
        return -EINVAL;
    memcpy(host, server, n);
    host[n] = '\0';
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -EINVAL;
    if (colon) {
        char *end;
        unsigned long v;

        if (colon[1] < '0' || colon[1] > '9')
            return -EINVAL;
        errno = 0;
        v = strtoul(colon + 1, &end, 10);
        if (errno || *end || v < 1 || v > 65535)
            return -EINVAL;
        port = (unsigned)v;
    }
    sin->sin_port = htons((uint16_t)port);
    return 0;
}

int dns_server_valid(const char *server, terok_error *err)
{
    struct sockaddr_in sin;

    if (isempty(server) || parse_server(server, &sin) == 0)
        return 0;
    return terok_perr(err, -EINVAL, "dns-server '%s' is not 'IPv4' or 'IPv4:port'", Q(server));
}

bool dns_addr_is_internal(bool v6, const struct in6_addr *a)
{
    const uint8_t *b = a->s6_addr;

    if (!v6)
        return b[0] == 0 || b[0] == 10 || b[0] == 127 || (b[0] == 169 && b[1] == 254) ||
               (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) || b[0] >= 224;
    return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
           IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc || IN6_IS_ADDR_V4MAPPED(a);
}

static int query(res_state st, const char *domain, int type, dns_answer *ret, size_t *n)
{
    _cleanup_free_ unsigned char *ans = malloc(ANSWER_MAX);
    char chain[CHAIN_MAX][NS_MAXDNAME];
    uint32_t chain_ttl = UINT32_MAX;
    size_t nchain = 1;
    ns_msg msg;
    int len;

    if (!ans)
        return -ENOMEM;
    len = res_nquery(st, domain, ns_c_in, type, ans, ANSWER_MAX);
    if (len < 0) {
        switch (st->res_h_errno) {
        case HOST_NOT_FOUND:
        case NO_DATA:
            return 0;
        default:
            return -EAGAIN;
        }
    }
    if (ns_initparse(ans, MIN(len, ANSWER_MAX), &msg) < 0)
        return -EBADMSG;
    snprintf(chain[0], sizeof chain[0], "%s", domain);
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr rr;
        bool on_chain = false;

        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            return -EBADMSG;
        if (ns_rr_class(rr) != ns_c_in)
            continue;
        for (size_t c = 0; c < nchain && !on_chain; c++)
            on_chain = strcasecmp(ns_rr_name(rr), chain[c]) == 0;
        if (!on_chain)
            continue;
        if (ns_rr_type(rr) == ns_t_cname && nchain < CHAIN_MAX) {
            if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr),
                                   chain[nchain], sizeof chain[nchain]) < 0)
                return -EBADMSG;
            nchain++;
            chain_ttl = MIN(chain_ttl, ns_rr_ttl(rr));
            continue;
        }
        if ((int)ns_rr_type(rr) != type || *n >= DNS_MAX_ADDRS)
            continue;
        if ((type == ns_t_a && ns_rr_rdlen(rr) != 4) ||
            (type == ns_t_aaaa && ns_rr_rdlen(rr) != 16))
            return -EBADMSG;
        dns_answer *a = &ret[(*n)++];
        memset(a, 0, sizeof *a);
        a->v6 = type == ns_t_aaaa;
        memcpy(&a->addr, ns_rr_rdata(rr), ns_rr_rdlen(rr));
        a->ttl = MIN(ns_rr_ttl(rr), chain_ttl);
    }
    return 0;
}

int dns_resolve(const char *server, const char *domain, dns_answer *ret, size_t *ret_n, char *why,
                size_t why_len)
{
    struct __res_state st;
    size_t n = 0;
    int r, r6;

    memset(&st, 0, sizeof st);
    if (res_ninit(&st) < 0) {
        snprintf(why, why_len, "cannot initialise the resolver");
        return -EIO;
    }
    if (!isempty(server)) {
        struct sockaddr_in sin;

        if (parse_server(server, &sin) < 0) {
            res_nclose(&st);
            snprintf(why, why_len, "dns-server '%s' is invalid", Q(server));
            return -EINVAL;
        }
        st.nsaddr_list[0] = sin;
        st.nscount = 1;
    }
    st.retrans = 2;
    st.retry = 2;
    st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
    /* Either family answering is enough: a resolver that refuses AAAA (some do for names they
     * only hold A records for) must not hide the A answers. */
    r = query(&st, domain, ns_t_a, ret, &n);
    r6 = query(&st, domain, ns_t_aaaa, ret, &n);
    if (r < 0 && r6 >= 0)
        r = 0;
    else if (r >= 0 && r6 < 0 && r6 != -EAGAIN)
        r = r6; /* a malformed AAAA answer is still an error */
    res_nclose(&st);
    if (r == -EAGAIN)
        snprintf(why, why_len, "cannot resolve '%s': the resolver%s%s did not answer", domain,
                 isempty(server) ? "" : " ", strempty(server));
    else if (r < 0)
        snprintf(why, why_len, "cannot resolve '%s': %s", domain,
                 r == -EBADMSG ? "malformed answer" : strerror(-r));
    if (r < 0)
        return r;
    *ret_n = n;
    return 0;
}
