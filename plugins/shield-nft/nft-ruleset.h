/* SPDX-License-Identifier: Apache-2.0 */
/* nft-ruleset.h: nft text rendered from a typed, validated policy. Only typed values reach the
 * output: addresses through inet_ntop, numbers through %u, everything else is a constant here.
 * No operator- or container-supplied string is ever copied into a rule. */
#pragma once

#include "policy.h"
#include "shield-common.h"

#define SHIELD_TABLE "terok_shield"
#define SHIELD_FAMILY "inet"
/* Rootless netlink refuses one transaction much above 5,000 elements (MACHINE.md §5). */
#define SHIELD_CHUNK_DEFAULT 4000
#define POSTURE_MARK "terok-shield:" /* comment of the first output rule: "terok-shield:up" */

/* Log prefixes. The event source reports the blocked ones. */
#define PFX_ALLOW "terok-allow: "
#define PFX_OVERRIDE "terok-override: "
#define PFX_DENY "terok-deny: "
#define PFX_PRIVATE "terok-private: "
#define PFX_BLOCKED "terok-blocked: "
#define PFX_BYPASS "terok-bypass: "
#define PFX_QUARANTINE "terok-quarantine: "

const char *posture_name(uint32_t posture);
int posture_from_name(const char *s); /* -EINVAL when unknown */

/* The whole ruleset for p's posture, as transactions (NULL-terminated strv): the first replaces
 * the table (sets, chains, rules, the first permanent elements); the rest add permanent
 * elements, at most `chunk` per transaction (0: no limit, one transaction). Timed elements are
 * not included (they depend on the clock): see ruleset_render_timed(). The result is a pure
 * function of p and chunk; the bundle stores the chunk 0 form. */
int ruleset_render(const shield_policy *p, size_t chunk, char ***ret_txs);
/* Drop permanent entries nested in a wider permanent entry of the same interval set (nft
 * refuses overlapping intervals). Called when a policy is made, not when it is applied. */
int ruleset_collapse(shield_policy *p);
/* Timed entries and resolved domain addresses as "add element" transactions, each with its
 * remaining lifetime at now_ms but at least min_timeout_ms. NULL-terminated, maybe empty. */
int ruleset_render_timed(const shield_policy *p, int64_t now_ms, int64_t min_timeout_ms,
                         size_t chunk, char ***ret_txs);
/* One transaction switching the chains to `posture`; sets and their elements stay. */
int ruleset_render_posture(const shield_policy *p, uint32_t posture, char **ret);
/* Expected number of rules in the output chain for a posture (verify uses it). */
unsigned ruleset_output_rule_count(const shield_policy *p, uint32_t posture);

/* Live element commands appended to b (each a complete command line). timeout_ms 0: permanent.
 * element_remove() is idempotent: "add" then "delete" in the same transaction, so it succeeds
 * whether or not the element is (still) there. element_refresh() replaces a timed element with
 * a fresh timeout the same way. */
void element_add(strbuf *b, unsigned tier, const target *t, int64_t timeout_ms);
void element_remove(strbuf *b, unsigned tier, const target *t);
void dns_element_add(strbuf *b, const dns_addr *a, int64_t timeout_ms, bool refresh);
void dns_element_remove(strbuf *b, const dns_addr *a);
