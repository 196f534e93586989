/* SPDX-License-Identifier: Apache-2.0 */
/* shield-nft's input boundary: the bundle the OCI hook trusts (shield.json, runtime.json), the
 * target parser behind every allow/deny/profile line, profile files and fmt_addr. Input: one
 * selector byte ('0' bundle, '1' target, '2' profile, '3' address bytes, '4' runtime.json; any
 * other value is a bundle), then the text. The files live in a private directory of ours
 * (/dev/shm when there is one), since bundle_read() takes a directory fd.
 *
 * What must hold (policy.h, bundle.h, shield-common.h): a refused input leaves an error; an
 * accepted target is typed, in range, prints in canonical form and parses back to itself; an
 * accepted bundle holds only values in range, renders a ruleset, and reads back equal after
 * bundle_write() (prepare writes what the hook reads); fmt_addr() prints what inet_ntop does. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "error.h"
#include "fuzz.h"
#include "loader.h"
#include "log.h"
#include "nft-ruleset.h"
#include "policy.h"
#include "shield-common.h"
#include "util/strv.h"

const terok_host *terok_plugin__host;
terok_plugin *terok_plugin__self;

static struct terok_plugin self = {.label = (char *)"shield-nft", .name = (char *)"nft"};
static char dir[64];
static int dirfd_ = -1;

static void cleanup(void)
{
    static const char *const names[] = {BUNDLE_FILE, RULESET_FILE, RUNTIME_FILE, "fz.conf",
                                        "base.conf"};

    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        (void)unlinkat(dirfd_, names[i], 0);
    close(dirfd_);
    (void)rmdir(dir);
}

static void put_file(const char *name, const void *data, size_t size)
{
    int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0 || write_fd_all(fd, data, size) < 0)
        abort();
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    terok_plugin__host = host_table();
    terok_plugin__self = &self;
    log_set_max_level(LOG_CRIT);
    snprintf(dir, sizeof dir, "%s/fuzz-shield-XXXXXX", base);
    if (!mkdtemp(dir) || (dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        abort();
    atexit(cleanup);
    /* what "@include base" finds */
    put_file("base.conf", "example.com\n10.0.0.0/8\n", 23);
    return 0;
}

static bool target_eq(const target *a, const target *b)
{
    return a->kind == b->kind && a->prefix == b->prefix && a->port == b->port &&
           a->wildcard == b->wildcard && memcmp(&a->addr, &b->addr, sizeof a->addr) == 0 &&
           streq(a->domain, b->domain);
}

/* No bit set past the prefix: host bits are refused, and IPv4 leaves bytes 4-15 zero. */
static bool host_bits_zero(const target *t)
{
    for (unsigned i = t->prefix; i < 128; i++)
        if (t->addr.s6_addr[i / 8] & (0x80u >> (i % 8)))
            return false;
    return true;
}

/* An accepted target: typed, in range, canonical text that parses back to the same value. */
static void check_target(const target *t)
{
    char buf[TARGET_MAX_LEN + 8], again[TARGET_MAX_LEN + 8];
    terok_error err = TEROK_ERROR_INIT;
    target back;

    switch (t->kind) {
    case TARGET_IP4:
    case TARGET_NET4:
        if ((t->kind == TARGET_IP4) != (t->prefix == 32) || t->prefix > 32 || !host_bits_zero(t))
            abort();
        break;
    case TARGET_IP6:
    case TARGET_NET6:
        if ((t->kind == TARGET_IP6) != (t->prefix == 128) || !host_bits_zero(t))
            abort();
        break;
    case TARGET_DOMAIN: {
        size_t n = strlen(t->domain);

        if (t->prefix || n == 0 || n > DOMAIN_MAX_LEN || t->domain[0] == '.' ||
            t->domain[n - 1] == '.' ||
            strspn(t->domain, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
            abort();
        break;
    }
    default:
        abort();
    }
    if (t->kind != TARGET_DOMAIN && t->wildcard)
        abort();
    target_format(t, buf, sizeof buf);
    if (strlen(buf) == 0 || strlen(buf) > TARGET_MAX_LEN)
        abort();
    if (target_parse(buf, &back, &err) < 0) {
        fprintf(stderr, "canonical '%s' refused: %s\n", buf, err.message);
        abort();
    }
    if (!target_eq(t, &back))
        abort();
    target_format(&back, again, sizeof again);
    if (!streq(buf, again))
        abort();
    if (t->kind != TARGET_DOMAIN && !target_covers(t, t))
        abort();
}

static void check_policy(const shield_policy *p)
{
    if (!container_name_valid(p->container) || p->nflog_group < 1 || p->nflog_group > 65535 ||
        p->posture > TEROK_SHIELD_QUARANTINE || p->chunk < 1 || p->chunk > 4000 ||
        p->ttl_floor_ms < 1 || p->ttl_floor_ms > INT32_MAX)
        abort();
    STRV_FOREACH(s, p->profiles)
    if (!profile_name_valid(*s))
        abort();
    if (p->has_resolver) {
        check_target(&p->resolver);
        if ((p->resolver.kind != TARGET_IP4 && p->resolver.kind != TARGET_IP6) || p->resolver.port)
            abort();
    }
    for (size_t i = 0; i < p->n_entries; i++) {
        if (p->entries[i].tier >= TIER_COUNT || p->entries[i].expires_ms < 0)
            abort();
        check_target(&p->entries[i].t);
    }
    for (size_t i = 0; i < p->n_dns; i++) {
        const dns_addr *a = &p->dns[i];

        if (a->tier >= TIER_COUNT || a->expires_ms < 1 || isempty(a->domain))
            abort();
    }
    for (size_t i = 0; i < p->n_unresolved; i++) {
        const dns_unresolved *u = &p->unresolved[i];

        if (u->since_ms < 1 || isempty(u->domain) || strlen(u->why) > UNRESOLVED_WHY_MAX)
            abort();
        for (const char *c = u->why; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                abort();
    }
}

static bool strv_eq(char **a, char **b)
{
    size_t n = strv_length(a);

    if (n != strv_length(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!streq(a[i], b[i]))
            return false;
    return true;
}

static bool policy_eq(const shield_policy *a, const shield_policy *b)
{
    if (!streq(a->container, b->container) || a->nflog_group != b->nflog_group ||
        a->posture != b->posture || a->rootless != b->rootless || a->chunk != b->chunk ||
        a->ttl_floor_ms != b->ttl_floor_ms || a->has_resolver != b->has_resolver ||
        (a->has_resolver && !target_eq(&a->resolver, &b->resolver)) ||
        !strv_eq(a->profiles, b->profiles) || a->n_entries != b->n_entries ||
        a->n_dns != b->n_dns || a->n_unresolved != b->n_unresolved)
        return false;
    for (size_t i = 0; i < a->n_entries; i++)
        if (a->entries[i].tier != b->entries[i].tier ||
            a->entries[i].expires_ms != b->entries[i].expires_ms ||
            !target_eq(&a->entries[i].t, &b->entries[i].t))
            return false;
    for (size_t i = 0; i < a->n_dns; i++) {
        const dns_addr *x = &a->dns[i], *y = &b->dns[i];

        if (x->tier != y->tier || x->v6 != y->v6 || x->port != y->port ||
            x->expires_ms != y->expires_ms || memcmp(&x->addr, &y->addr, sizeof x->addr) != 0 ||
            !streq(x->domain, y->domain))
            return false;
    }
    for (size_t i = 0; i < a->n_unresolved; i++)
        if (a->unresolved[i].since_ms != b->unresolved[i].since_ms ||
            !streq(a->unresolved[i].domain, b->unresolved[i].domain) ||
            !streq(a->unresolved[i].why, b->unresolved[i].why))
            return false;
    return true;
}

/* Only constants, integers and addresses are rendered (nft-ruleset.h). */
static void check_rendered(char **txs)
{
    STRV_FOREACH(tx, txs)
    for (const char *c = *tx; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') || (unsigned char)*c >= 0x7f)
            abort();
    strv_free(txs);
}

static void refused(int r, const terok_error *err)
{
    if (r >= 0 || !err->message || err->code != r)
        abort();
}

static void fuzz_bundle(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    shield_policy *p = NULL, *again = NULL;
    char **txs = NULL;
    int r;

    put_file(BUNDLE_FILE, data, size);
    r = bundle_read(dirfd_, &p, NULL, &err);
    if (r < 0) {
        refused(r, &err);
        terok_error_clear(&err);
        return;
    }
    if (!p || err.message)
        abort();
    check_policy(p);
    if (ruleset_render(p, 0, &txs) < 0 || !txs)
        abort();
    check_rendered(txs);
    if (ruleset_render(p, p->chunk, &txs) < 0)
        abort();
    check_rendered(txs);
    if (ruleset_render_timed(p, 1, p->ttl_floor_ms, p->chunk, &txs) < 0)
        abort();
    check_rendered(txs);
    /* What prepare writes, the hook reads back unchanged. */
    if (bundle_write(dirfd_, p, "", &err) < 0 || bundle_read(dirfd_, &again, NULL, &err) < 0) {
        fprintf(stderr, "re-reading an accepted bundle: %s\n", err.message);
        abort();
    }
    if (!policy_eq(p, again))
        abort();
    shield_policy_free(again);
    shield_policy_free(p);
}

static void fuzz_target(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    char *s = fuzz_strndup(data, size);
    target t;
    int r = target_parse(s, &t, &err);

    if (r < 0) {
        /* -EINVAL with a message naming the value in single quotes (policy.h) */
        refused(r, &err);
        if (r != -EINVAL || strncmp(err.message, "target '", 8) != 0)
            abort();
    } else {
        if (err.message)
            abort();
        check_target(&t);
    }
    terok_error_clear(&err);
    free(s);
}

static void fuzz_profile(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    shield_policy *p = calloc(1, sizeof *p);
    int r;

    if (!p)
        abort();
    put_file("fz.conf", data, size);
    r = policy_load_profile(p, "fz", dir, NULL, &err);
    if (r < 0) {
        refused(r, &err);
    } else {
        for (size_t i = 0; i < p->n_entries; i++) {
            if (p->entries[i].tier != TIER_ALLOW || p->entries[i].expires_ms != 0)
                abort();
            check_target(&p->entries[i].t);
        }
    }
    terok_error_clear(&err);
    shield_policy_free(p);
}

static void fuzz_addr(const uint8_t *data, size_t size)
{
    struct in6_addr a = {0};
    char ours[ADDR_BUF], libc[INET6_ADDRSTRLEN];
    bool v6 = size > 4;
    size_t n;

    memcpy(&a, data, MIN(size, sizeof a));
    n = fmt_addr(v6, &a, ours);
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, &a, libc, sizeof libc))
        abort();
    if (n != strlen(ours) || !streq(ours, libc)) {
        fprintf(stderr, "fmt_addr '%s', inet_ntop '%s'\n", ours, libc);
        abort();
    }
}

static void fuzz_runtime(const uint8_t *data, size_t size)
{
    terok_error err = TEROK_ERROR_INIT;
    bundle_runtime rt;
    int r;

    put_file(RUNTIME_FILE, data, size);
    r = bundle_runtime_read(dirfd_, &rt, &err);
    if (r < 0)
        refused(r, &err);
    else if (rt.pid < 1 || rt.pid > INT32_MAX || rt.applied_ms < 0 || (int64_t)rt.starttime < 0)
        abort();
    terok_error_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] & 7) {
    case 1:
        fuzz_target(data + 1, size - 1);
        break;
    case 2:
        fuzz_profile(data + 1, size - 1);
        break;
    case 3:
        fuzz_addr(data + 1, size - 1);
        break;
    case 4:
        fuzz_runtime(data + 1, size - 1);
        break;
    default:
        fuzz_bundle(data + 1, size - 1);
        break;
    }
    return 0;
}
