/* SPDX-License-Identifier: Apache-2.0 */
/* nft-ruleset.c: renders nft text from typed policy values (see nft-ruleset.h). Only
 * inet_ntop output, integers and the constants of this file are ever written. */
#include <arpa/inet.h>
#include <stdio.h>

#include "nft-ruleset.h"
#include "util/strv.h"

/* Set kinds per tier and family. The split keeps nft interval sets free of overlaps we cannot
 * control: single addresses and resolved domain addresses live in hash sets (never conflict),
 * CIDRs and address:port ranges in interval sets (collapsed when rendered). */
enum {
    SETK_IP,      /* single address */
    SETK_NET,     /* CIDR */
    SETK_PORT,    /* address-or-CIDR . port */
    SETK_DNS,     /* resolved domain address */
    SETK_DNSPORT, /* resolved domain address . port */
    SETK_COUNT,
};
#define SET_ID(tier, kind, v6) (((tier)*SETK_COUNT + (kind)) * 2 + (v6))
#define SET_COUNT (TIER_COUNT * SETK_COUNT * 2)

static const char *const setk_names[SETK_COUNT] = {"ip", "net", "port", "dns", "dnsport"};

static void set_name(unsigned id, char *buf, size_t n)
{
    unsigned v6 = id % 2, kind = (id / 2) % SETK_COUNT, tier = id / 2 / SETK_COUNT;

    snprintf(buf, n, "%s_%s%c", tier_name(tier), setk_names[kind], v6 ? '6' : '4');
}

static unsigned target_set(unsigned tier, const target *t)
{
    unsigned v6 = target_is_v6(t);

    if (t->port)
        return SET_ID(tier, SETK_PORT, v6);
    if (t->kind == TARGET_NET4 || t->kind == TARGET_NET6)
        return SET_ID(tier, SETK_NET, v6);
    return SET_ID(tier, SETK_IP, v6);
}

static unsigned dns_set(const dns_addr *a)
{
    return SET_ID(a->tier, a->port ? SETK_DNSPORT : SETK_DNS, a->v6);
}

const char *posture_name(uint32_t posture)
{
    switch (posture) {
    case TEROK_SHIELD_UP:
        return "up";
    case TEROK_SHIELD_DOWN:
        return "down";
    case TEROK_SHIELD_QUARANTINE:
        return "quarantine";
    case TEROK_SHIELD_OFFLINE:
        return "offline";
    case TEROK_SHIELD_ERROR:
        return "error";
    default:
        return "?";
    }
}

int posture_from_name(const char *s)
{
    for (uint32_t p = TEROK_SHIELD_UP; p <= TEROK_SHIELD_ERROR; p++)
        if (s && streq(s, posture_name(p)))
            return (int)p;
    return -EINVAL;
}

static void put_addr(strbuf *b, bool v6, const struct in6_addr *a)
{
    char s[ADDR_BUF];

    sb_putn(b, s, fmt_addr(v6, a, s));
}

static void put_uint(strbuf *b, const char *pre, unsigned v)
{
    char s[16];
    size_t n = sizeof s;

    do
        s[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n > 0);
    sb_puts(b, pre);
    sb_putn(b, s + n, sizeof s - n);
}

static void put_target_elem(strbuf *b, const target *t)
{
    put_addr(b, target_is_v6(t), &t->addr);
    if (t->kind == TARGET_NET4 || t->kind == TARGET_NET6)
        put_uint(b, "/", t->prefix);
    if (t->port)
        put_uint(b, " . ", t->port);
}

static void put_dns_elem(strbuf *b, const dns_addr *a)
{
    put_addr(b, a->v6, &a->addr);
    if (a->port)
        put_uint(b, " . ", a->port);
}

static void put_timeout(strbuf *b, int64_t ms)
{
    if (ms > 0)
        sb_printf(b, " timeout %lldms", (long long)ms);
}

static void set_decl(strbuf *b, unsigned id)
{
    char name[32];
    unsigned v6 = id % 2, kind = (id / 2) % SETK_COUNT;
    const char *addr = v6 ? "ipv6_addr" : "ipv4_addr";

    set_name(id, name, sizeof name);
    sb_printf(b, "\tset %s {\n\t\ttype %s%s\n\t\tflags %stimeout\n", name, addr,
              kind == SETK_PORT || kind == SETK_DNSPORT ? " . inet_service" : "",
              kind == SETK_NET || kind == SETK_PORT ? "interval, " : "");
}

static void rule(strbuf *b, const char *chain, const char *fmt, ...) _printf_(3, 4);
static void rule(strbuf *b, const char *chain, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sb_printf(b, "add rule " SHIELD_FAMILY " " SHIELD_TABLE " %s %s\n", chain, line);
}

#define REJECT "reject with icmpx admin-prohibited"

static void tier_rules(strbuf *b, unsigned tier, uint32_t group, unsigned *count)
{
    static const char *const pfx[TIER_COUNT] = {PFX_OVERRIDE, PFX_DENY, PFX_ALLOW};
    const char *verdict = tier == TIER_DENY ? REJECT : "accept";

    for (unsigned kind = 0; kind < SETK_COUNT; kind++)
        for (unsigned v6 = 0; v6 < 2; v6++) {
            char name[32];
            const char *ip = v6 ? "ip6" : "ip";

            set_name(SET_ID(tier, kind, v6), name, sizeof name);
            if (kind == SETK_PORT || kind == SETK_DNSPORT)
                rule(b, "output",
                     "meta l4proto { tcp, udp } %s daddr . th dport @%s log prefix \"%s\" group %u "
                     "counter %s",
                     ip, name, pfx[tier], group, verdict);
            else
                rule(b, "output", "%s daddr @%s log prefix \"%s\" group %u counter %s", ip, name,
                     pfx[tier], group, verdict);
            (*count)++;
        }
}

/* The chain bodies of a posture, as "add rule" lines; *count gets the output rule count. */
static void posture_rules(strbuf *b, const shield_policy *p, uint32_t posture, unsigned *count)
{
    uint32_t g = p->nflog_group;

    *count = 0;
    rule(b, "output", "counter comment \"" POSTURE_MARK "%s\"", posture_name(posture));
    rule(b, "output", "oifname \"lo\" accept");
    rule(b, "input", "iifname \"lo\" accept");
    *count += 2;
    if (posture == TEROK_SHIELD_QUARANTINE) {
        rule(b, "output", "log prefix \"" PFX_QUARANTINE "\" group %u counter", g);
        rule(b, "output", "meta l4proto tcp reject with tcp reset");
        rule(b, "output", REJECT);
        rule(b, "input", "counter drop");
        *count += 3;
        return;
    }
    rule(b, "output", "ct state established,related accept");
    rule(b, "input", "ct state established,related accept");
    /* Neighbour discovery is link-local plumbing any IPv6 destination needs; MLD reports are
     * dropped quietly so they do not flood the event source. */
    rule(b, "output",
         "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } "
         "accept");
    rule(b, "output", "icmpv6 type { mld-listener-report, mld2-listener-report } drop");
    rule(b, "input",
         "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
         "accept");
    rule(b, "input", "counter drop");
    *count += 3;
    if (p->has_resolver) {
        const char *ip = target_is_v6(&p->resolver) ? "ip6" : "ip";
        char a[INET6_ADDRSTRLEN];

        inet_ntop(target_is_v6(&p->resolver) ? AF_INET6 : AF_INET, &p->resolver.addr, a, sizeof a);
        rule(b, "output", "%s daddr %s udp dport 53 counter accept", ip, a);
        rule(b, "output", "%s daddr %s tcp dport 53 counter accept", ip, a);
        *count += 2;
    }
    tier_rules(b, TIER_OVERRIDE, g, count);
    tier_rules(b, TIER_DENY, g, count);
    tier_rules(b, TIER_ALLOW, g, count);
    /* Private ranges come after the allow tier so an operator can allow a LAN host. They stay
     * rejected in the down posture too (upstream does the same). */
    rule(b, "output",
         "ip daddr { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16 } log prefix "
         "\"" PFX_PRIVATE "\" group %u counter " REJECT,
         g);
    rule(b, "output",
         "ip6 daddr { fc00::/7, fe80::/10 } log prefix \"" PFX_PRIVATE "\" group %u "
         "counter " REJECT,
         g);
    *count += 2;
    if (posture == TEROK_SHIELD_DOWN)
        rule(b, "output", "ct state new log prefix \"" PFX_BYPASS "\" group %u counter accept", g);
    else
        rule(b, "output", "log prefix \"" PFX_BLOCKED "\" group %u counter " REJECT, g);
    *count += 1;
}

static void chain_decls(strbuf *b, uint32_t posture, bool inline_decl)
{
    const char *out_policy = posture == TEROK_SHIELD_DOWN ? "accept" : "drop";

    if (inline_decl) {
        sb_printf(b,
                  "\tchain output {\n\t\ttype filter hook output priority filter; policy %s;\n"
                  "\t}\n",
                  out_policy);
        sb_puts(b, "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
                   "\t}\n");
    } else {
        sb_puts(b, "flush chain " SHIELD_FAMILY " " SHIELD_TABLE " output\n");
        sb_puts(b, "flush chain " SHIELD_FAMILY " " SHIELD_TABLE " input\n");
        sb_printf(b,
                  "chain " SHIELD_FAMILY " " SHIELD_TABLE
                  " output { type filter hook output priority filter; policy %s; }\n",
                  out_policy);
        sb_puts(b, "chain " SHIELD_FAMILY " " SHIELD_TABLE
                   " input { type filter hook input priority filter; policy drop; }\n");
    }
}

unsigned ruleset_output_rule_count(const shield_policy *p, uint32_t posture)
{
    strbuf b = {0};
    unsigned n;

    posture_rules(&b, p, posture, &n);
    sb_free(&b);
    return n;
}

int ruleset_render_posture(const shield_policy *p, uint32_t posture, char **ret)
{
    strbuf b = {0};
    unsigned n;

    chain_decls(&b, posture, false);
    posture_rules(&b, p, posture, &n);
    return sb_done(&b, ret);
}

/* Elements are emitted as "add element" lines grouped per set; a new transaction starts when
 * the current one holds `chunk` elements. */
typedef struct emitter {
    char **txs;
    strbuf cur;
    size_t in_tx, chunk;
    int open_set; /* set id of the open "add element ... {" or -1 */
    int r;
} emitter;

static void em_close_set(emitter *em)
{
    if (em->open_set >= 0)
        sb_puts(&em->cur, " }\n");
    em->open_set = -1;
}

static void em_flush(emitter *em)
{
    char *s;
    int r;

    em_close_set(em);
    if (em->cur.len == 0)
        return;
    r = sb_done(&em->cur, &s);
    if (r >= 0)
        r = strv_consume(&em->txs, s);
    if (r < 0)
        em->r = r;
    em->in_tx = 0;
}

static strbuf *em_elem(emitter *em, unsigned set)
{
    char name[32];

    if (em->in_tx >= em->chunk)
        em_flush(em);
    if (em->open_set != (int)set) {
        em_close_set(em);
        set_name(set, name, sizeof name);
        sb_printf(&em->cur, "add element " SHIELD_FAMILY " " SHIELD_TABLE " %s { ", name);
        em->open_set = (int)set;
    } else {
        sb_puts(&em->cur, ", ");
    }
    em->in_tx++;
    return &em->cur;
}

static int em_done(emitter *em, char ***ret)
{
    em_flush(em);
    if (em->r >= 0 && em->cur.oom)
        em->r = -ENOMEM;
    if (em->r < 0) {
        strv_free(em->txs);
        sb_free(&em->cur);
        return em->r;
    }
    if (!em->txs && !(em->txs = calloc(1, sizeof(char *))))
        return -ENOMEM;
    *ret = em->txs;
    return 0;
}

/* Sort key of a permanent element: set, port, first address, prefix. */
typedef struct elem_ref {
    unsigned set;
    const target *t;
    size_t idx;
} elem_ref;

static int elem_cmp(const void *a, const void *b)
{
    const elem_ref *x = a, *y = b;
    int c;

    if (x->set != y->set)
        return x->set < y->set ? -1 : 1;
    if (x->t->port != y->t->port)
        return x->t->port < y->t->port ? -1 : 1;
    if ((c = memcmp(&x->t->addr, &y->t->addr, sizeof x->t->addr)))
        return c;
    return (int)x->t->prefix - (int)y->t->prefix;
}

static void range_end(const target *t, struct in6_addr *end)
{
    unsigned bits = target_is_v6(t) ? 128 : 32;

    *end = t->addr;
    for (unsigned i = t->prefix; i < bits; i++)
        end->s6_addr[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

/* Permanent elements grouped per set, in policy order (a stable counting sort: the hook's
 * hot path, no comparisons). Nesting inside interval sets was removed by ruleset_collapse()
 * when the policy was made; a bundle edited to nest ranges fails the ruleset comparison. */
static int emit_permanent(emitter *em, const shield_policy *p)
{
    _cleanup_free_ const target **refs = calloc(p->n_entries + 1, sizeof *refs);
    size_t start[SET_COUNT + 1] = {0};

    if (!refs)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_entries; i++)
        if (p->entries[i].expires_ms == 0 && p->entries[i].t.kind != TARGET_DOMAIN)
            start[target_set(p->entries[i].tier, &p->entries[i].t) + 1]++;
    for (unsigned id = 0; id < SET_COUNT; id++)
        start[id + 1] += start[id];
    {
        size_t fill[SET_COUNT];

        memcpy(fill, start, sizeof fill);
        for (size_t i = 0; i < p->n_entries; i++)
            if (p->entries[i].expires_ms == 0 && p->entries[i].t.kind != TARGET_DOMAIN)
                refs[fill[target_set(p->entries[i].tier, &p->entries[i].t)]++] = &p->entries[i].t;
    }
    for (unsigned id = 0; id < SET_COUNT; id++)
        for (size_t k = start[id]; k < start[id + 1]; k++)
            put_target_elem(em_elem(em, id), refs[k]);
    return em->r;
}

int ruleset_collapse(shield_policy *p)
{
    _cleanup_free_ elem_ref *refs = calloc(p->n_entries + 1, sizeof *refs);
    _cleanup_free_ bool *drop = calloc(p->n_entries + 1, sizeof *drop);
    struct in6_addr end = {0};
    size_t n = 0, j = 0;
    bool have_end = false;

    if (!refs || !drop)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_entries; i++) {
        const policy_entry *e = &p->entries[i];
        unsigned set;

        if (e->expires_ms != 0 || e->t.kind == TARGET_DOMAIN)
            continue;
        set = target_set(e->tier, &e->t);
        if ((set / 2) % SETK_COUNT == SETK_NET || (set / 2) % SETK_COUNT == SETK_PORT)
            refs[n++] = (elem_ref){set, &e->t, i};
    }
    /* CIDRs nest or are disjoint: sorted by start, a range that starts inside the previous
     * kept one is nested in it. */
    qsort(refs, n, sizeof *refs, elem_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (refs[i].set != refs[i - 1].set || refs[i].t->port != refs[i - 1].t->port))
            have_end = false;
        if (have_end && memcmp(&refs[i].t->addr, &end, sizeof end) <= 0) {
            drop[refs[i].idx] = true;
            continue;
        }
        range_end(refs[i].t, &end);
        have_end = true;
    }
    for (size_t i = 0; i < p->n_entries; i++)
        if (!drop[i])
            p->entries[j++] = p->entries[i];
    p->n_entries = j;
    return 0;
}

/* A timed element inside a permanent range of the same set would overlap it: skip it, the
 * permanent one already admits it. */
static bool timed_covered(const shield_policy *p, const policy_entry *e, unsigned id)
{
    unsigned kind = (id / 2) % SETK_COUNT;

    if (kind != SETK_NET && kind != SETK_PORT)
        return false;
    for (size_t j = 0; j < p->n_entries; j++) {
        const policy_entry *o = &p->entries[j];

        if (o != e && o->t.kind != TARGET_DOMAIN && target_set(o->tier, &o->t) == id &&
            target_covers(&o->t, &e->t) && (o->expires_ms == 0 || o->expires_ms >= e->expires_ms))
            return true;
    }
    return false;
}

int ruleset_render(const shield_policy *p, size_t chunk, char ***ret_txs)
{
    emitter em = {.chunk = chunk ? chunk : SIZE_MAX, .open_set = -1};
    unsigned n;
    int r;

    /* "add" then "delete" makes the replace work whether or not the table exists: exactly one
     * terok table per netns, replaced atomically with the first transaction. */
    sb_puts(&em.cur, "add table " SHIELD_FAMILY " " SHIELD_TABLE "\n"
                     "delete table " SHIELD_FAMILY " " SHIELD_TABLE "\n"
                     "table " SHIELD_FAMILY " " SHIELD_TABLE " {\n"
                     "\tcomment \"managed by terok-sandbox shield-nft; do not edit\"\n");
    for (unsigned id = 0; id < SET_COUNT; id++) {
        set_decl(&em.cur, id);
        sb_puts(&em.cur, "\t}\n");
    }
    chain_decls(&em.cur, p->posture, true);
    sb_puts(&em.cur, "}\n");
    posture_rules(&em.cur, p, p->posture, &n);
    if ((r = emit_permanent(&em, p)) < 0) {
        sb_free(&em.cur);
        strv_free(em.txs);
        return r;
    }
    return em_done(&em, ret_txs);
}

int ruleset_render_timed(const shield_policy *p, int64_t now_ms, int64_t min_timeout_ms,
                         size_t chunk, char ***ret_txs)
{
    emitter em = {.chunk = chunk ? chunk : SIZE_MAX, .open_set = -1};

    for (unsigned id = 0; id < SET_COUNT; id++) {
        for (size_t i = 0; i < p->n_entries; i++) {
            const policy_entry *e = &p->entries[i];
            strbuf *b;

            if (e->expires_ms == 0 || e->t.kind == TARGET_DOMAIN ||
                target_set(e->tier, &e->t) != id || e->expires_ms <= now_ms ||
                timed_covered(p, e, id))
                continue;
            b = em_elem(&em, id);
            put_target_elem(b, &e->t);
            put_timeout(b, MAX(e->expires_ms - now_ms, min_timeout_ms));
        }
        for (size_t i = 0; i < p->n_dns; i++) {
            const dns_addr *a = &p->dns[i];
            strbuf *b;

            if (dns_set(a) != id)
                continue;
            b = em_elem(&em, id);
            put_dns_elem(b, a);
            put_timeout(b, MAX(a->expires_ms - now_ms, min_timeout_ms));
        }
    }
    return em_done(&em, ret_txs);
}

static void element_cmd(strbuf *b, const char *verb, unsigned set)
{
    char name[32];

    set_name(set, name, sizeof name);
    sb_printf(b, "%s element " SHIELD_FAMILY " " SHIELD_TABLE " %s { ", verb, name);
}

void element_add(strbuf *b, unsigned tier, const target *t, int64_t timeout_ms)
{
    element_cmd(b, "add", target_set(tier, t));
    put_target_elem(b, t);
    put_timeout(b, timeout_ms);
    sb_puts(b, " }\n");
}

void element_remove(strbuf *b, unsigned tier, const target *t)
{
    element_cmd(b, "add", target_set(tier, t));
    put_target_elem(b, t);
    sb_puts(b, " }\n");
    element_cmd(b, "delete", target_set(tier, t));
    put_target_elem(b, t);
    sb_puts(b, " }\n");
}

void dns_element_remove(strbuf *b, const dns_addr *a)
{
    element_cmd(b, "add", dns_set(a));
    put_dns_elem(b, a);
    sb_puts(b, " }\n");
    element_cmd(b, "delete", dns_set(a));
    put_dns_elem(b, a);
    sb_puts(b, " }\n");
}

void dns_element_add(strbuf *b, const dns_addr *a, int64_t timeout_ms, bool refresh)
{
    /* nft keeps an existing element's timeout on "add"; add+delete+add resets it. */
    if (refresh)
        dns_element_remove(b, a);
    element_cmd(b, "add", dns_set(a));
    put_dns_elem(b, a);
    put_timeout(b, timeout_ms);
    sb_puts(b, " }\n");
}
