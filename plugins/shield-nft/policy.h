/* SPDX-License-Identifier: Apache-2.0 */
/* policy.h: shield targets parsed into typed values, profiles, and the tiered policy a bundle
 * holds. Nothing here talks to the kernel or the network; nothing here renders nft syntax. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "terok/shield.h"
#include "util/macro.h"

#define TARGET_MAX_LEN 300 /* longest accepted target text: "[v6]:port" or a 253-char domain */
#define DOMAIN_MAX_LEN 253

enum {
    TARGET_IP4 = 1, /* one IPv4 address */
    TARGET_NET4,    /* IPv4 CIDR with prefix < 32 */
    TARGET_IP6,
    TARGET_NET6,
    TARGET_DOMAIN, /* resolved on the host; never rendered into nft */
};

/* Tier order is precedence order: an override beats a deny, a deny beats an allow. */
enum {
    TIER_OVERRIDE = 0,
    TIER_DENY = 1,
    TIER_ALLOW = 2,
    TIER_COUNT = 3,
};

typedef struct target {
    uint8_t kind;
    uint8_t prefix;                  /* 32/128 for single addresses */
    uint16_t port;                   /* 0: any port */
    bool wildcard;                   /* "*.example.com": the apex is resolved; see docs/shield.md */
    struct in6_addr addr;            /* IPv4 stored in the first 4 bytes */
    char domain[DOMAIN_MAX_LEN + 1]; /* lowercased, no trailing dot */
} target;

/* Parse an operator- or profile-supplied target. -EINVAL with a message naming the value in
 * single quotes on anything that is not exactly one of: IPv4, IPv4/prefix, IPv6, IPv6/prefix,
 * domain, "*." domain, each optionally with ":port" (IPv6 as "[addr]:port"). */
int target_parse(const char *s, target *ret, terok_error *err);
/* Canonical text of a target (the form bundles store and comparisons use). */
void target_format(const target *t, char *buf, size_t n);
bool target_is_v6(const target *t);
/* Nonzero when a's address range contains b's and the ports match (CIDRs nest or are disjoint). */
bool target_covers(const target *a, const target *b);

const char *tier_name(unsigned tier);
int tier_from_name(const char *s);

/* A policy entry: a target in a tier, permanent (expires_ms 0) or until a CLOCK_REALTIME ms. */
typedef struct policy_entry {
    target t;
    uint8_t tier;
    int64_t expires_ms;
} policy_entry;

/* A host-resolved address of a domain entry: lives until expires_ms (the clamped DNS TTL). */
typedef struct dns_addr {
    uint8_t tier;
    uint8_t v6;
    uint16_t port;
    struct in6_addr addr;
    int64_t expires_ms;
    char domain[DOMAIN_MAX_LEN + 1];
} dns_addr;

/* A domain entry that did not resolve at the last attempt. Kept in the bundle, so the failure is
 * logged once (when it starts) rather than at every refresh, and `shield status` can name it. */
#define UNRESOLVED_WHY_MAX 200
typedef struct dns_unresolved {
    int64_t since_ms; /* CLOCK_REALTIME ms of the first failed attempt */
    char domain[DOMAIN_MAX_LEN + 1];
    char why[UNRESOLVED_WHY_MAX + 1];
} dns_unresolved;

typedef struct shield_policy {
    char *container;
    char **profiles;
    policy_entry *entries;
    size_t n_entries, cap_entries;
    dns_addr *dns;
    size_t n_dns, cap_dns;
    dns_unresolved *unresolved;
    size_t n_unresolved, cap_unresolved;
    bool has_resolver;
    target resolver; /* TARGET_IP4/IP6 without port when has_resolver */
    uint32_t nflog_group;
    uint32_t posture; /* TEROK_SHIELD_UP/DOWN/QUARANTINE */
    bool rootless;
    /* Settings of the preparing side the hook must reproduce without any config. */
    uint32_t chunk;       /* elements per nft transaction */
    int64_t ttl_floor_ms; /* shortest lifetime of a (re)loaded timed element */
} shield_policy;

shield_policy *shield_policy_free(shield_policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(shield_policy, shield_policy_free)
#define _cleanup_policy_ _cleanup_(shield_policy_freep)

/* Add an entry. With dedupe, an identical (tier, target) entry is merged keeping the longer
 * lifetime. Returns 0, or -ENOMEM. */
int policy_add(shield_policy *p, const target *t, unsigned tier, int64_t expires_ms);
/* Bulk variant: append without looking for duplicates; call policy_dedupe() once after. */
int policy_append(shield_policy *p, const target *t, unsigned tier, int64_t expires_ms);
int policy_reserve(shield_policy *p, size_t n);
/* A new, uninitialised last entry (drop it again with p->n_entries--), or NULL. */
policy_entry *policy_push(shield_policy *p);
/* Merge identical (tier, target) entries, first occurrence kept, longer lifetime wins. O(n). */
int policy_dedupe(shield_policy *p);
/* Remove entries of `tier` whose canonical text equals t's; returns how many. */
size_t policy_remove(shield_policy *p, const target *t, unsigned tier);
int policy_add_dns(shield_policy *p, const dns_addr *a);
/* Remove the resolved addresses of a domain (any port) in a tier; returns how many. */
size_t policy_remove_dns(shield_policy *p, const char *domain, uint16_t port, unsigned tier);
/* Record that domain did not resolve (why: what failed, cut to UNRESOLVED_WHY_MAX). Returns 1
 * when the domain was not recorded yet (a new failure: log it), 0 when it was (why is updated),
 * or -ENOMEM. */
int policy_unresolved_note(shield_policy *p, const char *domain, int64_t since_ms, const char *why);
/* Forget a domain's failure record. Returns true, with the record's since_ms, if there was one
 * (it resolves again: log that). */
bool policy_unresolved_clear(shield_policy *p, const char *domain, int64_t *ret_since_ms);
/* Drop the records of domains no entry names any more. */
void policy_unresolved_prune(shield_policy *p);
/* Drop timed entries and addresses that expired before now_ms. */
void policy_prune(shield_policy *p, int64_t now_ms);

/* Profiles: "<dir>/<name>.conf", one target per line, '#' comments, "@include <name>". The user
 * dir (may be NULL) is searched before the bundled dir. Entries land in TIER_ALLOW. Errors name
 * file:line and the value. */
int policy_load_profile(shield_policy *p, const char *name, const char *user_dir,
                        const char *bundled_dir, terok_error *err);
/* Profile names: [a-z0-9][a-z0-9_.-]{0,63}, no "..". */
bool profile_name_valid(const char *name);
