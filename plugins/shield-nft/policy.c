/* SPDX-License-Identifier: Apache-2.0 */
/* policy.c: target parsing (the shield's input boundary), tiers and profiles. Every target is
 * turned into a typed value here; nothing downstream ever sees the operator's text again. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "policy.h"
#include "shield-common.h"
#include "util/strv.h"

#define PROFILE_MAX_BYTES (4u << 20)
#define PROFILE_MAX_DEPTH 8

static const char *const tier_names[TIER_COUNT] = {"override", "deny", "allow"};

const char *tier_name(unsigned tier)
{
    return tier < TIER_COUNT ? tier_names[tier] : "?";
}

int tier_from_name(const char *s)
{
    for (unsigned i = 0; i < TIER_COUNT; i++)
        if (s && streq(s, tier_names[i]))
            return (int)i;
    return -EINVAL;
}

static int bad(terok_error *err, const char *value, const char *why)
{
    return terok_perr(err, -EINVAL, "target '%s' %s", Q(value), why);
}

/* Decimal 1..65535, digits only. */
static int parse_port(const char *s, uint16_t *ret)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 5)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    *ret = (uint16_t)v;
    return 0;
}

static int parse_prefix(const char *s, unsigned max, unsigned *ret)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static bool host_bits_clear(const struct in6_addr *a, unsigned bits, unsigned prefix)
{
    for (unsigned i = prefix; i < bits; i++)
        if (a->s6_addr[i / 8] & (0x80u >> (i % 8)))
            return false;
    return true;
}

static void mask_to(struct in6_addr *a, unsigned bits, unsigned prefix)
{
    for (unsigned i = prefix; i < bits; i++)
        a->s6_addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

/* Dotted quad, as strict as glibc's inet_pton (four decimal parts, 0-255, no leading zeros)
 * without its cost: the hook parses every entry of a bundle. */
static int parse_ip4(const char *s, struct in6_addr *a)
{
    unsigned part = 0, digits = 0, v = 0;

    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            if (digits > 0 && v == 0)
                return -EINVAL; /* leading zero */
            v = v * 10 + (unsigned)(*s - '0');
            if (++digits > 3 || v > 255)
                return -EINVAL;
        } else if ((*s == '.' || *s == '\0') && digits > 0) {
            a->s6_addr[part++] = (uint8_t)v;
            if (*s == '\0')
                return part == 4 ? 0 : -EINVAL;
            if (part == 4)
                return -EINVAL;
            v = digits = 0;
        } else {
            return -EINVAL;
        }
    }
}

/* "addr" or "addr/prefix" of one family into t. */
static int parse_address(const char *whole, const char *s, int family, target *t, terok_error *err)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    unsigned bits = family == AF_INET ? 32 : 128, prefix = bits;
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);

    if (alen == 0 || alen >= INET6_ADDRSTRLEN)
        return bad(err, whole,
                   family == AF_INET ? "is not a valid IPv4 address"
                                     : "is not a valid IPv6 address");
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(&t->addr, 0, sizeof t->addr);
    if (family == AF_INET ? parse_ip4(buf, &t->addr) < 0 : inet_pton(family, buf, &t->addr) != 1)
        return bad(err, whole,
                   family == AF_INET ? "is not a valid IPv4 address"
                                     : "is not a valid IPv6 address");
    if (slash && parse_prefix(slash + 1, bits, &prefix) < 0)
        return terok_perr(err, -EINVAL, "target '%s' has an invalid prefix length (0-%u)", Q(whole),
                          bits);
    if (!host_bits_clear(&t->addr, bits, prefix)) {
        char net[INET6_ADDRSTRLEN];
        struct in6_addr m = t->addr;

        mask_to(&m, bits, prefix);
        inet_ntop(family, &m, net, sizeof net);
        return terok_perr(err, -EINVAL, "target '%s' has host bits set (did you mean '%s/%u'?)",
                          Q(whole), net, prefix);
    }
    t->prefix = (uint8_t)prefix;
    if (family == AF_INET)
        t->kind = prefix == 32 ? TARGET_IP4 : TARGET_NET4;
    else
        t->kind = prefix == 128 ? TARGET_IP6 : TARGET_NET6;
    return 0;
}

/* RFC 1035 host names (LDH labels), lowercased. At least two labels; the last one not all
 * digits (so "1.2.3.999" is a bad address, not a domain). */
static int parse_domain(const char *whole, const char *s, target *t, terok_error *err)
{
    size_t n = strlen(s), label = 0, labels = 0;
    bool all_digits = true;

    t->wildcard = false;
    if (strneq(s, "*.", 2)) {
        t->wildcard = true;
        s += 2;
        n -= 2;
    }
    if (n > 0 && s[n - 1] == '.')
        n--; /* one trailing dot: fully qualified */
    if (n == 0)
        return bad(err, whole, "has an empty domain name");
    if (n > DOMAIN_MAX_LEN)
        return bad(err, whole, "is longer than 253 characters");
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? s[i] : '.';

        if (c == '.') {
            if (label == 0)
                return bad(err, whole, "has an empty label");
            if (s[i - 1] == '-')
                return bad(err, whole, "has a label ending in '-'");
            labels++;
            label = 0;
            if (i < n) {
                all_digits = true;
                t->domain[i] = '.';
            }
            continue;
        }
        if (!(isascii((unsigned char)c) && (isalnum((unsigned char)c) || c == '-')))
            return bad(err, whole,
                       "is not a valid domain name (letters, digits, '-' and '.' only; "
                       "use the punycode form for international names)");
        if (label == 0 && c == '-')
            return bad(err, whole, "has a label starting with '-'");
        if (++label > 63)
            return bad(err, whole, "has a label longer than 63 characters");
        if (!isdigit((unsigned char)c))
            all_digits = false;
        t->domain[i] = (char)tolower((unsigned char)c);
    }
    t->domain[n] = '\0';
    if (all_digits)
        return bad(err, whole, "is not a valid IPv4 address");
    if (labels < 2)
        return bad(err, whole,
                   t->wildcard ? "is too broad: a wildcard needs at least two labels"
                               : "is not a fully qualified domain name");
    t->kind = TARGET_DOMAIN;
    t->prefix = 0;
    return 0;
}

static bool looks_numeric(const char *s)
{
    for (; *s && *s != '/'; s++)
        if (!isdigit((unsigned char)*s) && *s != '.')
            return false;
    return true;
}

int target_parse(const char *s, target *ret, terok_error *err)
{
    char host[TARGET_MAX_LEN + 1];
    const char *colon;
    target t;
    int r;

    /* Only the bytes in use are set and copied (the hook parses every entry of a bundle). */
    memset(&t, 0, offsetof(target, domain));
    t.domain[0] = '\0';

    if (isempty(s))
        return terok_perr(err, -EINVAL, "target '' is empty");
    if (strlen(s) > TARGET_MAX_LEN)
        return bad(err, s, "is too long");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return bad(err, s, "contains a space, control or non-ASCII character");

    if (s[0] == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        size_t n;

        if (!close || close[1] != ':')
            return bad(err, s, "is not '[IPv6]:port'");
        n = (size_t)(close - s - 1);
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if ((r = parse_address(s, host, AF_INET6, &t, err)) < 0)
            return r;
        if (parse_port(close + 2, &t.port) < 0)
            return bad(err, s, "has an invalid port (1-65535)");
    } else if ((colon = strchr(s, ':')) && strchr(colon + 1, ':')) { /* bare IPv6 */
        if ((r = parse_address(s, s, AF_INET6, &t, err)) < 0)
            return r;
    } else {
        size_t n = colon ? (size_t)(colon - s) : strlen(s);

        memcpy(host, s, n);
        host[n] = '\0';
        if (colon && parse_port(colon + 1, &t.port) < 0)
            return bad(err, s, "has an invalid port (1-65535)");
        if (n == 0)
            return bad(err, s, "has no host before the port");
        if (strchr(host, '/') || looks_numeric(host))
            r = parse_address(s, host, AF_INET, &t, err);
        else
            r = parse_domain(s, host, &t, err);
        if (r < 0)
            return r;
    }
    memcpy(ret, &t, offsetof(target, domain));
    memcpy(ret->domain, t.domain, strlen(t.domain) + 1);
    return 0;
}

bool target_is_v6(const target *t)
{
    return t->kind == TARGET_IP6 || t->kind == TARGET_NET6;
}

static size_t put_num(char *p, unsigned v)
{
    char s[12];
    size_t n = 0, k = 0;

    do
        s[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0)
        p[k++] = s[--n];
    return k;
}

/* Hot when a bundle of 10,000 entries is written: no printf. n >= TARGET_MAX_LEN + 8. */
void target_format(const target *t, char *buf, size_t n)
{
    size_t o = 0;
    bool brackets = t->port && target_is_v6(t);

    if (n < TARGET_MAX_LEN + 8) {
        if (n)
            buf[0] = '\0';
        return;
    }
    if (t->kind == TARGET_DOMAIN) {
        size_t l = strlen(t->domain);

        if (t->wildcard) {
            memcpy(buf, "*.", 2);
            o = 2;
        }
        memcpy(buf + o, t->domain, l);
        o += l;
    } else {
        if (brackets)
            buf[o++] = '[';
        o += fmt_addr(target_is_v6(t), &t->addr, buf + o);
        if (t->kind == TARGET_NET4 || t->kind == TARGET_NET6) {
            buf[o++] = '/';
            o += put_num(buf + o, t->prefix);
        }
        if (brackets)
            buf[o++] = ']';
    }
    if (t->port) {
        buf[o++] = ':';
        o += put_num(buf + o, t->port);
    }
    buf[o] = '\0';
}

bool target_covers(const target *a, const target *b)
{
    unsigned bits;
    struct in6_addr x, y;

    if (a->kind == TARGET_DOMAIN || b->kind == TARGET_DOMAIN)
        return false;
    if (target_is_v6(a) != target_is_v6(b) || a->port != b->port || a->prefix > b->prefix)
        return false;
    bits = target_is_v6(a) ? 128 : 32;
    x = a->addr;
    y = b->addr;
    mask_to(&x, bits, a->prefix);
    mask_to(&y, bits, a->prefix);
    return memcmp(&x, &y, sizeof x) == 0;
}

static bool target_equal(const target *a, const target *b)
{
    if (a->kind != b->kind || a->port != b->port)
        return false;
    if (a->kind == TARGET_DOMAIN)
        return a->wildcard == b->wildcard && streq(a->domain, b->domain);
    return a->prefix == b->prefix && memcmp(&a->addr, &b->addr, sizeof a->addr) == 0;
}

shield_policy *shield_policy_free(shield_policy *p)
{
    if (!p)
        return NULL;
    free(p->container);
    strv_free(p->profiles);
    free(p->entries);
    free(p->dns);
    free(p->unresolved);
    free(p);
    return NULL;
}

static void merge_expiry(policy_entry *e, int64_t expires_ms)
{
    if (e->expires_ms != 0 && (expires_ms == 0 || expires_ms > e->expires_ms))
        e->expires_ms = expires_ms;
}

int policy_add(shield_policy *p, const target *t, unsigned tier, int64_t expires_ms)
{
    for (size_t i = 0; i < p->n_entries; i++) {
        policy_entry *e = &p->entries[i];

        if (e->tier == tier && target_equal(&e->t, t)) {
            merge_expiry(e, expires_ms);
            return 0;
        }
    }
    return policy_append(p, t, tier, expires_ms);
}

static uint64_t entry_hash(const policy_entry *e)
{
    uint64_t h = 1469598103934665603ull;
    const target *t = &e->t;
    unsigned char head[5] = {e->tier, t->kind, t->prefix, (unsigned char)(t->port >> 8),
                             (unsigned char)t->port};

#define MIX(b) (h = (h ^ (b)) * 1099511628211ull)
    for (size_t i = 0; i < sizeof head; i++)
        MIX(head[i]);
    if (t->kind == TARGET_DOMAIN) {
        MIX((unsigned char)t->wildcard);
        for (const char *c = t->domain; *c; c++)
            MIX((unsigned char)*c);
    } else {
        for (size_t i = 0; i < sizeof t->addr.s6_addr; i++)
            MIX(t->addr.s6_addr[i]);
    }
#undef MIX
    return h;
}

int policy_dedupe(shield_policy *p)
{
    size_t cap = 16, j = 0;
    size_t *slots;

    while (cap < p->n_entries * 2)
        cap *= 2;
    slots = calloc(cap, sizeof *slots); /* index + 1; 0 = empty */
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_entries; i++) {
        policy_entry *e = &p->entries[i];
        size_t s = (size_t)entry_hash(e) & (cap - 1);
        bool dup = false;

        for (; slots[s]; s = (s + 1) & (cap - 1)) {
            policy_entry *o = &p->entries[slots[s] - 1];

            if (o->tier == e->tier && target_equal(&o->t, &e->t)) {
                merge_expiry(o, e->expires_ms);
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        /* Move the survivor down; its slot points at its new place. */
        p->entries[j] = *e;
        slots[s] = ++j;
    }
    p->n_entries = j;
    free(slots);
    return 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

int policy_reserve(shield_policy *p, size_t n)
{
    policy_entry *ne;
    size_t bytes;

    if (n <= p->cap_entries)
        return 0;
    if (__builtin_mul_overflow(n, sizeof *ne, &bytes) || bytes > SIZE_MAX - HUGE_PAGE)
        return -ENOMEM;
    if (bytes < HUGE_PAGE) {
        ne = reallocarray(p->entries, n, sizeof *ne);
        if (!ne)
            return -ENOMEM;
    } else {
        /* An entry is about 300 bytes (a target holds room for a domain): 10,000 of them,
         * which the hook reads for every apply, span 700 pages, and on a VM a first touch of
         * a page costs tens of microseconds (35 ms for these 3 MB on the 2-vCPU test VM).
         * Huge-page aligned and advised, they fault in as two pages. Freed with free(). */
        bytes = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        ne = aligned_alloc(HUGE_PAGE, bytes);
        if (!ne)
            return -ENOMEM;
        (void)madvise(ne, bytes, MADV_HUGEPAGE);
        if (p->n_entries)
            memcpy(ne, p->entries, p->n_entries * sizeof *ne);
        free(p->entries);
        n = bytes / sizeof *ne;
    }
    p->entries = ne;
    p->cap_entries = n;
    return 0;
}

policy_entry *policy_push(shield_policy *p)
{
    if (p->n_entries == p->cap_entries &&
        policy_reserve(p, p->cap_entries ? p->cap_entries * 2 : 64) < 0)
        return NULL;
    return &p->entries[p->n_entries++];
}

/* Room for one more item in *v (n in use, *cap allocated); the capacity doubles from `first`. */
static int grow(void **v, size_t n, size_t *cap, size_t size, size_t first)
{
    size_t ncap;
    void *nv;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : first;
    nv = reallocarray(*v, ncap, size);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}
#define GROW(v, n, cap, first) grow((void **)&(v), (n), &(cap), sizeof *(v), (first))

int policy_append(shield_policy *p, const target *t, unsigned tier, int64_t expires_ms)
{
    if (GROW(p->entries, p->n_entries, p->cap_entries, 64) < 0)
        return -ENOMEM;
    p->entries[p->n_entries++] =
        (policy_entry){.t = *t, .tier = (uint8_t)tier, .expires_ms = expires_ms};
    return 0;
}

size_t policy_remove(shield_policy *p, const target *t, unsigned tier)
{
    size_t j = 0, removed = 0;

    for (size_t i = 0; i < p->n_entries; i++) {
        if (p->entries[i].tier == tier && target_equal(&p->entries[i].t, t)) {
            removed++;
            continue;
        }
        p->entries[j++] = p->entries[i];
    }
    p->n_entries = j;
    return removed;
}

int policy_add_dns(shield_policy *p, const dns_addr *a)
{
    for (size_t i = 0; i < p->n_dns; i++) {
        dns_addr *d = &p->dns[i];

        if (d->tier == a->tier && d->v6 == a->v6 && d->port == a->port &&
            streq(d->domain, a->domain) && memcmp(&d->addr, &a->addr, sizeof d->addr) == 0) {
            d->expires_ms = MAX(d->expires_ms, a->expires_ms);
            return 0;
        }
    }
    if (GROW(p->dns, p->n_dns, p->cap_dns, 16) < 0)
        return -ENOMEM;
    p->dns[p->n_dns++] = *a;
    return 0;
}

size_t policy_remove_dns(shield_policy *p, const char *domain, uint16_t port, unsigned tier)
{
    size_t j = 0, removed = 0;

    for (size_t i = 0; i < p->n_dns; i++) {
        if (p->dns[i].tier == tier && p->dns[i].port == port && streq(p->dns[i].domain, domain)) {
            removed++;
            continue;
        }
        p->dns[j++] = p->dns[i];
    }
    p->n_dns = j;
    return removed;
}

static dns_unresolved *unresolved_find(shield_policy *p, const char *domain)
{
    for (size_t i = 0; i < p->n_unresolved; i++)
        if (streq(p->unresolved[i].domain, domain))
            return &p->unresolved[i];
    return NULL;
}

int policy_unresolved_note(shield_policy *p, const char *domain, int64_t since_ms, const char *why)
{
    dns_unresolved *u = unresolved_find(p, domain);
    bool fresh = !u;

    if (fresh) {
        if (GROW(p->unresolved, p->n_unresolved, p->cap_unresolved, 4) < 0)
            return -ENOMEM;
        u = &p->unresolved[p->n_unresolved++];
        *u = (dns_unresolved){.since_ms = since_ms};
        snprintf(u->domain, sizeof u->domain, "%s", domain);
    }
    snprintf(u->why, sizeof u->why, "%s", why ? why : "");
    for (char *c = u->why; *c; c++) /* kept printable: the bundle reader refuses the rest */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return fresh;
}

bool policy_unresolved_clear(shield_policy *p, const char *domain, int64_t *ret_since_ms)
{
    dns_unresolved *u = unresolved_find(p, domain);

    if (!u)
        return false;
    if (ret_since_ms)
        *ret_since_ms = u->since_ms;
    *u = p->unresolved[--p->n_unresolved];
    return true;
}

void policy_unresolved_prune(shield_policy *p)
{
    size_t j = 0;

    for (size_t i = 0; i < p->n_unresolved; i++) {
        bool named = false;

        for (size_t k = 0; !named && k < p->n_entries; k++)
            named = p->entries[k].t.kind == TARGET_DOMAIN &&
                    streq(p->entries[k].t.domain, p->unresolved[i].domain);
        if (named)
            p->unresolved[j++] = p->unresolved[i];
    }
    p->n_unresolved = j;
}

void policy_prune(shield_policy *p, int64_t now_ms)
{
    size_t j = 0;

    for (size_t i = 0; i < p->n_entries; i++)
        if (p->entries[i].expires_ms == 0 || p->entries[i].expires_ms > now_ms)
            p->entries[j++] = p->entries[i];
    p->n_entries = j;
    j = 0;
    for (size_t i = 0; i < p->n_dns; i++)
        if (p->dns[i].expires_ms > now_ms)
            p->dns[j++] = p->dns[i];
    p->n_dns = j;
}

bool profile_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > 64 || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '-' || c == '_' || c == '.'));
        if (!ok)
            return false;
    }
    return true;
}

/* Open <dir>/<name>.conf refusing symlinks and anything but a bounded regular file. */
static int profile_open(const char *dir, const char *name, char **ret_path, FILE **ret_f)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    FILE *f;

    if (isempty(dir))
        return -ENOENT;
    if (asprintf(&path, "%s/%s.conf", dir, name) < 0)
        return -ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return negative_errno();
    if (fstat(fd, &st) < 0)
        return negative_errno();
    if (!S_ISREG(st.st_mode))
        return -EBADFD;
    if ((uint64_t)st.st_size > PROFILE_MAX_BYTES)
        return -EFBIG;
    f = fdopen(fd, "re");
    if (!f)
        return negative_errno();
    take_fd(fd);
    *ret_f = f;
    *ret_path = take_ptr(path);
    return 0;
}

static int load_profile(shield_policy *p, const char *name, const char *user_dir,
                        const char *bundled_dir, unsigned depth, terok_error *err)
{
    _cleanup_free_ char *path = NULL, *line = NULL;
    _cleanup_fclose_ FILE *f = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    ssize_t n;
    int r;

    if (!profile_name_valid(name))
        return terok_perr(err, -EINVAL,
                          "profile name '%s' is invalid (use [a-z0-9][a-z0-9_.-]*, max 64)",
                          Q(name));
    if (depth > PROFILE_MAX_DEPTH)
        return terok_perr(err, -ELOOP, "profile '%s': @include nested deeper than %d", name,
                          PROFILE_MAX_DEPTH);
    r = profile_open(user_dir, name, &path, &f);
    if (r == -ENOENT)
        r = profile_open(bundled_dir, name, &path, &f);
    if (r == -ENOENT)
        return terok_perr(err, r, "profile '%s' not found in '%s' or '%s'", name, strna(user_dir),
                          strna(bundled_dir));
    if (r < 0)
        return terok_perr(err, r, "profile '%s': cannot open: %s", name,
                          r == -EBADFD ? "not a regular file" : strerror(-r));

    while ((n = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e, *hash;
        target t;

        lineno++;
        if ((size_t)n != strlen(line))
            return terok_perr(err, -EINVAL, "%s:%u: NUL byte in profile", path, lineno);
        if ((hash = strchr(s, '#')))
            *hash = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
            *--e = '\0';
        if (*s == '\0')
            continue;
        if (strneq(s, "@include", 8) && (s[8] == ' ' || s[8] == '\t')) {
            char *inc = s + 9;

            while (*inc == ' ' || *inc == '\t')
                inc++;
            r = load_profile(p, inc, user_dir, bundled_dir, depth + 1, err);
            if (r < 0)
                return err_prefix(err, "%s:%u", path, lineno);
            continue;
        }
        if ((r = target_parse(s, &t, err)) < 0)
            return err_prefix(err, "%s:%u", path, lineno);
        if ((r = policy_append(p, &t, TIER_ALLOW, 0)) < 0)
            return terok_perr(err, r, "profile '%s': out of memory", name);
    }
    if (ferror(f))
        return terok_perr(err, -EIO, "%s: read error", path);
    return 0;
}

int policy_load_profile(shield_policy *p, const char *name, const char *user_dir,
                        const char *bundled_dir, terok_error *err)
{
    return load_profile(p, name, user_dir, bundled_dir, 0, err);
}
