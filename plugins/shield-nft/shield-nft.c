/* SPDX-License-Identifier: Apache-2.0 */
/* shield-nft.c: the shield ops: prepare (policy -> bundle), apply (bundle -> nft in the
 * container's netns, fail closed), live posture/allow/deny/rules, DNS refresh, status and the
 * NFLOG event source. Never prints, never exits: errors go to terok_error, notes to terok_plog. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle.h"
#include "dns.h"
#include "events.h"
#include "nft-apply.h"
#include "nft-ruleset.h"
#include "policy.h"
#include "shield-common.h"
#include "terok/shield.h"
#include "util/strv.h"

#ifndef SHIELD_PROFILES_DIR
#define SHIELD_PROFILES_DIR "/usr/share/terok-sandbox/shield/profiles"
#endif

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("profiles-dir", TEROK_CONFIG_PATH, SHIELD_PROFILES_DIR,
                     "Directory of the bundled profiles (<name>.conf)")
        TEROK_CONFIG_KEY("user-profiles-dir", TEROK_CONFIG_STRING, "",
                         "Operator profiles, searched first; empty: "
                         "$XDG_CONFIG_HOME/terok-sandbox/shield/profiles")
            TEROK_CONFIG_KEY("default-profiles", TEROK_CONFIG_STRING, "dev-standard",
                             "Profiles used when a run names none (comma-separated)")
                TEROK_CONFIG_KEY("nflog-group", TEROK_CONFIG_INT ":1:65535", "100",
                                 "NFLOG group every verdict is logged to")
                    TEROK_CONFIG_KEY("dns-server", TEROK_CONFIG_STRING, "",
                                     "Resolver for domain targets: empty for the system "
                                     "resolver, or IPv4[:port]")
                        TEROK_CONFIG_KEY("dns-ttl-floor", TEROK_CONFIG_DURATION, "30s",
                                         "Shortest lifetime of a resolved address")
                            TEROK_CONFIG_KEY("dns-ttl-ceiling", TEROK_CONFIG_DURATION, "1h",
                                             "Longest lifetime of a resolved address")
                                TEROK_CONFIG_KEY("dns-private", TEROK_CONFIG_BOOL, "no",
                                                 "Let DNS answers open private, loopback and "
                                                 "link-local addresses (rebinding risk)")
                                    TEROK_CONFIG_KEY("chunk-size", TEROK_CONFIG_INT ":100:4000",
                                                     "4000",
                                                     "Set elements per nft transaction "
                                                     "(rootless netlink limit)")
                                        TEROK_CONFIG_KEY("event-dedup", TEROK_CONFIG_DURATION,
                                                         "30s",
                                                         "Report a blocked destination once "
                                                         "per this window"));

#define DEDUP_MAX 1024

typedef struct seen {
    struct in6_addr ip;
    uint16_t port;
    uint8_t proto;
    int64_t at_ms;
} seen;

typedef struct ev_source {
    char *container;
    int64_t pid; /* whose netns the socket is in */
    int fd;
    seen *seen;
    size_t n_seen;
    shield_policy *snap; /* for IP -> domain */
    /* shield.json the snapshot was read from: a live allow/deny or a refresh (another process,
     * or the daemon's refresh child) replaces the file, and the snapshot is read again */
    dev_t snap_dev;
    ino_t snap_ino;
    int64_t snap_mtime_ns;
} ev_source;

typedef struct shield_state {
    char *state_dir;
    char *profiles_dir;
    char *user_profiles_dir;
    char **default_profiles;
    char *dns_server;
    int64_t ttl_floor_ms, ttl_ceiling_ms, dedup_ms;
    uint32_t nflog_group;
    size_t chunk;
    bool dns_private;
    ev_source *sources;
    size_t n_sources;
} shield_state;

static const terok_host *H(void)
{
    return terok_plugin__host;
}

static int cfg_str(const terok_config_section *cfg, const char *key, const char *def, char **ret)
{
    const char *v = NULL;

    if (!cfg || H()->config_get(cfg, key, &v) < 0 || !v)
        v = def;
    *ret = strdup(v);
    return *ret ? 0 : -ENOMEM;
}

static int64_t cfg_int(const terok_config_section *cfg, const char *key, int64_t def)
{
    int64_t v;

    if (!cfg || H()->config_get_int(cfg, key, &v) < 0)
        return def;
    return v;
}

static void sources_close(shield_state *s, const char *container)
{
    size_t j = 0;

    for (size_t i = 0; i < s->n_sources; i++) {
        ev_source *e = &s->sources[i];

        if (container && !streq(e->container, container)) {
            s->sources[j++] = *e;
            continue;
        }
        if (e->fd >= 0)
            close(e->fd);
        free(e->container);
        free(e->seen);
        shield_policy_free(e->snap);
    }
    s->n_sources = j;
}

static void shield_close(void *state)
{
    shield_state *s = state;

    if (!s)
        return;
    sources_close(s, NULL);
    free(s->sources);
    free(s->state_dir);
    free(s->profiles_dir);
    free(s->user_profiles_dir);
    strv_free(s->default_profiles);
    free(s->dns_server);
    free(s);
}

static int split_list(const char *v, char ***ret)
{
    _cleanup_strv_free_ char **l = NULL;
    _cleanup_free_ char *copy = strdup(v);
    char *save = NULL;

    if (!copy)
        return -ENOMEM;
    for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
        if (strv_extend(&l, t) < 0)
            return -ENOMEM;
    if (!l && !(l = calloc(1, sizeof(char *))))
        return -ENOMEM;
    *ret = take_ptr(l);
    return 0;
}

static int shield_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                       terok_error *err)
{
    if (!ret_state)
        return terok_perr(err, -EINVAL, "open: no place for the state");
    shield_state *s = calloc(1, sizeof *s);
    _cleanup_free_ char *defaults = NULL;
    const char *sd = H()->state_dir(self);
    int r = 0;

    if (!s)
        return terok_perr(err, -ENOMEM, "out of memory");
    if (isempty(sd) || sd[0] != '/') {
        shield_close(s);
        return terok_perr(err, -EINVAL, "the host gave no absolute state directory");
    }
    s->state_dir = strdup(sd);
    r |= !s->state_dir;
    r |= cfg_str(cfg, "profiles-dir", SHIELD_PROFILES_DIR, &s->profiles_dir);
    r |= cfg_str(cfg, "user-profiles-dir", "", &s->user_profiles_dir);
    r |= cfg_str(cfg, "default-profiles", "dev-standard", &defaults);
    r |= cfg_str(cfg, "dns-server", "", &s->dns_server);
    if (r || split_list(defaults, &s->default_profiles) < 0) {
        shield_close(s);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    if (isempty(s->user_profiles_dir)) {
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

        free(s->user_profiles_dir);
        s->user_profiles_dir = NULL;
        if (!isempty(xdg) && xdg[0] == '/')
            r = asprintf(&s->user_profiles_dir, "%s/terok-sandbox/shield/profiles", xdg);
        else if (!isempty(home) && home[0] == '/')
            r = asprintf(&s->user_profiles_dir, "%s/.config/terok-sandbox/shield/profiles", home);
        if (r < 0)
            s->user_profiles_dir = NULL;
    }
    s->nflog_group = (uint32_t)cfg_int(cfg, "nflog-group", 100);
    s->ttl_floor_ms = cfg_int(cfg, "dns-ttl-floor", 30000);
    s->ttl_ceiling_ms = cfg_int(cfg, "dns-ttl-ceiling", 3600000);
    s->dedup_ms = cfg_int(cfg, "event-dedup", 30000);
    s->chunk = (size_t)cfg_int(cfg, "chunk-size", SHIELD_CHUNK_DEFAULT);
    if (cfg) {
        int b = 0;

        if (H()->config_get_bool(cfg, "dns-private", &b) >= 0)
            s->dns_private = b;
    }
    if (s->nflog_group < 1 || s->nflog_group > 65535 || s->ttl_floor_ms < 1 ||
        s->ttl_ceiling_ms < s->ttl_floor_ms || s->chunk < 1 || s->chunk > SHIELD_CHUNK_DEFAULT ||
        (r = dns_server_valid(s->dns_server, err)) < 0) {
        shield_close(s);
        return r < 0 ? r
                     : terok_perr(err, -EINVAL,
                                  "shield config out of range (nflog-group 1-65535, "
                                  "dns-ttl-floor <= dns-ttl-ceiling, chunk-size <= 4000)");
    }
    *ret_state = s;
    return 0;
}

/* ---- helpers shared by the ops ---- */

static int64_t ttl_clamp(const shield_state *s, uint32_t ttl_s)
{
    int64_t ms = (int64_t)ttl_s * 1000;

    return MIN(MAX(ms, s->ttl_floor_ms), s->ttl_ceiling_ms);
}

#define WHY_LEN 512

/* Resolve one domain entry into p's dns list; kernel commands for the addresses go to cmds
 * (may be NULL). *ret_n counts the addresses admitted. On failure `why` says what failed: the
 * resolver's error, -ENODATA for a name without addresses, or -EADDRNOTAVAIL when every address
 * it gave is internal and refused. */
static int resolve_entry(const shield_state *s, shield_policy *p, const policy_entry *e,
                         int64_t now, strbuf *cmds, size_t *ret_n, int64_t *ret_min_ms, char *why)
{
    dns_answer ans[DNS_MAX_ADDRS];
    size_t n = 0, admitted = 0, internal = 0;
    char first_internal[INET6_ADDRSTRLEN] = "";
    int r;

    if ((r = dns_resolve(s->dns_server, e->t.domain, ans, &n, why, WHY_LEN)) < 0)
        return r;
    if (n == 0) { /* NXDOMAIN or no data: the resolver answered, the name has no address */
        snprintf(why, WHY_LEN, "cannot resolve '%s': no A or AAAA record", e->t.domain);
        return -ENODATA;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t life = ttl_clamp(s, ans[i].ttl);
        dns_addr a = {.tier = e->tier, .v6 = ans[i].v6, .port = e->t.port, .addr = ans[i].addr};

        if (e->tier != TIER_DENY && !s->dns_private &&
            dns_addr_is_internal(ans[i].v6, &ans[i].addr)) {
            if (internal++ == 0)
                inet_ntop(ans[i].v6 ? AF_INET6 : AF_INET, &ans[i].addr, first_internal,
                          sizeof first_internal);
            continue;
        }
        if (e->expires_ms)
            life = MIN(life, e->expires_ms - now);
        if (life <= 0)
            continue;
        snprintf(a.domain, sizeof a.domain, "%s", e->t.domain);
        a.expires_ms = now + life;
        if ((r = policy_add_dns(p, &a)) < 0) {
            snprintf(why, WHY_LEN, "out of memory");
            return r;
        }
        if (cmds)
            dns_element_add(cmds, &a, life, true);
        if (ret_min_ms)
            *ret_min_ms = *ret_min_ms < 0 ? life : MIN(*ret_min_ms, life);
        admitted++;
    }
    if (internal && !admitted) {
        snprintf(why, WHY_LEN,
                 "'%s' resolved only to internal addresses (%s%s): not allowed (dns-private=no)",
                 e->t.domain, first_internal, internal > 1 ? ", ..." : "");
        return -EADDRNOTAVAIL;
    }
    if (internal)
        terok_plog(TEROK_LOG_INFO,
                   "%s: '%s' resolved to %zu internal address(es) too, e.g. %s: those are not "
                   "allowed (dns-private=no)",
                   p->container, e->t.domain, internal, first_internal);
    if (ret_n)
        *ret_n = admitted;
    return 0;
}

/* The first success after failures is a notice; the failure record goes. */
static void note_resolved(shield_policy *p, const char *domain, int64_t now)
{
    int64_t since;

    if (policy_unresolved_clear(p, domain, &since))
        terok_plog(TEROK_LOG_NOTICE, "%s: '%s' resolves again (it failed for %llds)", p->container,
                   domain, (long long)MAX((now - since) / 1000, 0));
}

/* resolve_entry for the paths where a failure is not the caller's error (prepare, refresh, a
 * deny): a domain's failure is logged once when it starts, then at debug level while it lasts
 * (refreshes retry it every few seconds); the record lives in the bundle. */
static int resolve_logged(const shield_state *s, shield_policy *p, const policy_entry *e,
                          int64_t now, strbuf *cmds, int64_t *ret_min_ms)
{
    char why[WHY_LEN];
    int r = resolve_entry(s, p, e, now, cmds, NULL, ret_min_ms, why), fresh;

    if (r == -ENOMEM) {
        terok_plog(TEROK_LOG_ERR, "%s: resolving '%s': out of memory", p->container, e->t.domain);
        return r;
    }
    if (r >= 0) {
        note_resolved(p, e->t.domain, now);
        return 0;
    }
    fresh = policy_unresolved_note(p, e->t.domain, now, why);
    if (fresh != 0)
        terok_plog(TEROK_LOG_WARNING,
                   "%s: %s (default deny holds for it; retried at each refresh, logged again "
                   "once it resolves)",
                   p->container, why);
    else
        terok_plog(TEROK_LOG_DEBUG, "%s: still: %s", p->container, why);
    return r;
}

static int bundle_path_of(const shield_state *s, const char *container, char **ret,
                          terok_error *err)
{
    if (!container_name_valid(container))
        return terok_perr(err, -EINVAL, "container name '%s' is invalid", Q(container));
    if (asprintf(ret, "%s/containers/%s/shield", s->state_dir, container) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    return 0;
}

static int render_and_write(const shield_state *s, int dirfd, const shield_policy *p,
                            terok_error *err)
{
    _cleanup_strv_free_ char **txs = NULL;
    int r;

    (void)s;
    if ((r = ruleset_render(p, 0, &txs)) < 0)
        return terok_perr(err, r, "rendering the ruleset: %s", strerror(-r));
    return bundle_write(dirfd, p, txs[0], err);
}

/* ---- prepare ---- */

static int add_targets(shield_policy *p, const char *const *list, unsigned tier, terok_error *err)
{
    for (const char *const *t = list; t && *t; t++) {
        target x;
        int r;

        if ((r = target_parse(*t, &x, err)) < 0)
            return err_prefix(err, "%s", tier_name(tier));
        if ((r = policy_append(p, &x, tier, 0)) < 0)
            return terok_perr(err, r, "out of memory");
    }
    return 0;
}

static char **host_strv(const char *const *l)
{
    size_t n = strv_length((char *const *)l);
    char **out = H()->alloc((n + 1) * sizeof(char *));

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = H()->strdup(l[i]))) {
            while (i > 0)
                H()->free(out[--i]);
            H()->free(out);
            return NULL;
        }
    out[n] = NULL;
    return out;
}

static int shield_prepare(void *state, const terok_shield_policy *policy,
                          terok_shield_prepared *out, terok_error *err)
{
    shield_state *s = state;
    _cleanup_policy_ shield_policy *p = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    _cleanup_free_ char *path = NULL, *ann = NULL;
    int64_t now = now_realtime_ms();
    const char *const *profiles;
    int r;

    if (!s || !policy || !out)
        return terok_perr(err, -EINVAL, "prepare: missing argument");
    if (policy->struct_size < sizeof *policy ||
        !terok_struct_tail_is_zero(policy, policy->struct_size, sizeof *policy))
        return terok_perr(err, -E2BIG, "prepare: policy struct from a newer host");
    if (!container_name_valid(policy->container))
        return terok_perr(err, -EINVAL, "container name '%s' is invalid", Q(policy->container));
    if (!(p = calloc(1, sizeof *p)) || !(p->container = strdup(policy->container)))
        return terok_perr(err, -ENOMEM, "out of memory");
    p->nflog_group = s->nflog_group;
    p->chunk = (uint32_t)s->chunk;
    p->ttl_floor_ms = s->ttl_floor_ms;
    p->posture = TEROK_SHIELD_UP;
    p->rootless = policy->rootless != 0;
    if (!isempty(policy->dns_resolver)) {
        if ((r = target_parse(policy->dns_resolver, &p->resolver, err)) < 0)
            return err_prefix(err, "dns resolver");
        if ((p->resolver.kind != TARGET_IP4 && p->resolver.kind != TARGET_IP6) || p->resolver.port)
            return terok_perr(err, -EINVAL, "dns resolver '%s' must be one IP address",
                              Q(policy->dns_resolver));
        p->has_resolver = true;
    }
    profiles = policy->profiles ? policy->profiles : (const char *const *)s->default_profiles;
    for (const char *const *n = profiles; n && *n; n++) {
        if ((r = policy_load_profile(p, *n, s->user_profiles_dir, s->profiles_dir, err)) < 0)
            return r;
        if (strv_extend(&p->profiles, *n) < 0)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    if ((r = add_targets(p, policy->allow, TIER_ALLOW, err)) < 0 ||
        (r = add_targets(p, policy->deny, TIER_DENY, err)) < 0 ||
        (r = add_targets(p, policy->override, TIER_OVERRIDE, err)) < 0)
        return r;
    if ((r = policy_dedupe(p)) < 0 || (r = ruleset_collapse(p)) < 0)
        return terok_perr(err, r, "out of memory");
    /* Domains are resolved now so the first packet finds its address; a domain that does not
     * resolve is not fatal (default deny still holds) and a refresh retries it. */
    for (size_t i = 0, n = p->n_entries; i < n; i++) {
        policy_entry e = p->entries[i];

        if (e.t.kind == TARGET_DOMAIN && resolve_logged(s, p, &e, now, NULL, NULL) == -ENOMEM)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    if ((r = bundle_dir_create(s->state_dir, p->container, &dirfd, &path, err)) < 0 ||
        (r = bundle_lock(dirfd, err)) < 0)
        return err_prefix(err, "shield prepare '%s'", p->container);
    (void)bundle_runtime_remove(dirfd);
    if ((r = render_and_write(s, dirfd, p, err)) < 0)
        return err_prefix(err, "shield prepare '%s'", p->container);
    if (asprintf(&ann, "org.terok.shield.bundle=%s", path) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    {
        const char *anns[] = {ann, "org.terok.shield.version=1", NULL};

        out->annotations = host_strv(anns);
        out->bundle_path = H()->strdup(path);
        out->env = NULL;
        if (!out->annotations || !out->bundle_path)
            return terok_perr(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- apply / verify ---- */

static int same_netns_as_us(int64_t pid)
{
    char path[64];
    struct stat a, b;

    snprintf(path, sizeof path, "/proc/%lld/ns/net", (long long)pid);
    if (stat(path, &a) < 0)
        return negative_errno();
    if (stat("/proc/self/ns/net", &b) < 0)
        return negative_errno();
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* Outside the initial user namespace (a rootless hook, or an operator who is not root) netlink
 * cannot force large socket buffers and refuses one transaction much above 5,000 elements
 * (MACHINE.md §5): load in chunks there. Root in the initial namespace loads in one go. */
static bool needs_chunks(const shield_policy *p)
{
    unsigned long a, b, c;
    FILE *f;
    int n;

    if (p->rootless || geteuid() != 0)
        return true;
    f = fopen("/proc/self/uid_map", "re");
    if (!f)
        return true;
    n = fscanf(f, "%lu %lu %lu", &a, &b, &c);
    fclose(f);
    return !(n == 3 && a == 0 && b == 0 && c == 4294967295ul);
}

/* Check what the kernel holds against the posture we expect (posture 0: only report it). */
static int check_probe(const shield_policy *p, uint32_t posture, const chain_probe *pr,
                       uint32_t *ret_found, terok_error *err)
{
    uint32_t found = TEROK_SHIELD_ERROR;

    if (pr->present && strneq(pr->mark, POSTURE_MARK, strlen(POSTURE_MARK))) {
        int x = posture_from_name(pr->mark + strlen(POSTURE_MARK));

        if (x == TEROK_SHIELD_UP || x == TEROK_SHIELD_DOWN || x == TEROK_SHIELD_QUARANTINE)
            found = (uint32_t)x;
    }
    if (ret_found)
        *ret_found = found;
    if (posture) {
        int want_policy = posture == TEROK_SHIELD_DOWN;
        unsigned want_rules = ruleset_output_rule_count(p, posture);

        if (!pr->present)
            return terok_perr(err, -EPROTO, "verify: no shield output chain in the netns");
        if (found != posture || pr->policy != want_policy || pr->rules != want_rules)
            return terok_perr(err, -EPROTO,
                              "verify: output chain is not the %s ruleset (marker %s, policy "
                              "%s, %u rules, expected %u)",
                              posture_name(posture), posture_name(found),
                              pr->policy ? "accept" : "drop", pr->rules, want_rules);
    }
    return 0;
}

static int shield_apply(void *state, const char *bundle_path, int64_t pid, terok_error *err)
{
    shield_state *s = state;
    _cleanup_close_ int dirfd = -EBADF;
    _cleanup_policy_ shield_policy *p = NULL;
    _cleanup_free_ char *stored = NULL;
    _cleanup_strv_free_ char **txs = NULL, **timed = NULL, **all = NULL;
    _cleanup_(nft_job_abortp) nft_job *job = NULL;
    chain_probe probe;
    int64_t now = now_realtime_ms();
    bundle_runtime rt = {.pid = pid, .applied_ms = now};
    size_t chunk, len = 0;
    int r, rs;

    if (!s)
        return terok_perr(err, -EINVAL, "apply: no state");
    if (pid <= 0 || proc_starttime(pid, &rt.starttime) < 0)
        return terok_perr(err, -ESRCH, "shield apply: no process %lld", (long long)pid);
    if ((r = same_netns_as_us(pid)) != 0)
        return terok_perr(err, r < 0 ? r : -EPERM,
                          r < 0 ? "shield apply: cannot inspect the netns of pid %lld"
                                : "shield apply: pid %lld shares this process's network "
                                  "namespace; refusing to firewall the host",
                          (long long)pid);
    if ((r = bundle_dir_open(bundle_path, &dirfd, err)) < 0 || (r = bundle_lock(dirfd, err)) < 0 ||
        (r = bundle_read(dirfd, &p, &stored, err)) < 0)
        return err_prefix(err, "shield apply");
    policy_prune(p, now);
    /* Never run text from disk: render again from the validated policy and insist it is what
     * prepare wrote (catches edits and version skew). */
    if ((r = ruleset_render(p, 0, &txs)) < 0)
        return terok_perr(err, r, "shield apply: rendering: %s", strerror(-r));
    if (!streq(txs[0], stored))
        return terok_perr(err, -EBADMSG,
                          "shield apply '%s': the stored ruleset does not match the bundle's "
                          "policy (edited by hand, or written by another version)",
                          Q(bundle_path));
    chunk = needs_chunks(p) ? p->chunk : 0;
    if (chunk) {
        strv_free(txs);
        txs = NULL;
        if ((r = ruleset_render(p, chunk, &txs)) < 0)
            return terok_perr(err, r, "shield apply: rendering: %s", strerror(-r));
    }
    if ((r = ruleset_render_timed(p, now, p->ttl_floor_ms, chunk, &timed)) < 0)
        return terok_perr(err, r, "shield apply: rendering: %s", strerror(-r));
    if (strv_extend_strv(&all, (const char *const *)txs) < 0 ||
        strv_extend_strv(&all, (const char *const *)timed) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    /* Fork only now: a helper forked before the validation above shares every page we then
     * write (copy-on-write faults with TLB shootdowns on both sides: at 10,000 entries that
     * cost more than the helper's own set-up it overlapped). The child loads while we stage
     * runtime.json; it is renamed into place only on success; any failure aborts it. */
    for (char **t = all; t && *t; t++)
        len += strlen(*t);
    if ((r = nft_job_start(pid, NFT_RUN_PROBE | (len >= NFT_LARGE_TX_BYTES ? NFT_RUN_LARGE : 0),
                           &job, err)) < 0)
        return err_prefix(err, "shield apply");
    nft_job_send(job, (const char *const *)all);
    rs = bundle_runtime_stage(dirfd, &rt, NULL);
    r = nft_job_wait(take_ptr(job), NULL, &probe, err);
    if (r >= 0)
        r = check_probe(p, p->posture, &probe, NULL, err);
    if (r >= 0 && rs < 0)
        r = terok_perr(err, rs, "cannot record runtime.json: %s", strerror(-rs));
    if (r >= 0)
        r = bundle_runtime_commit(dirfd, err);
    if (r < 0) {
        bundle_discard(dirfd);
        return err_prefix(err, "shield apply '%s' (pid %lld)", p->container, (long long)pid);
    }
    return 0;
}

/* A live operation: the bundle locked and read, and whether the container runs. */
typedef struct live {
    int dirfd;
    shield_policy *p;
    bool running;
    bundle_runtime rt;
} live;

static void live_done(live *l)
{
    if (l->dirfd >= 0)
        close(l->dirfd);
    shield_policy_free(l->p);
    l->dirfd = -EBADF;
    l->p = NULL;
}

static int live_open(shield_state *s, const char *container, live *l, terok_error *err)
{
    _cleanup_free_ char *path = NULL;
    uint64_t st;
    int r;

    *l = (live){.dirfd = -EBADF};
    if (!s)
        return terok_perr(err, -EINVAL, "no state");
    if ((r = bundle_path_of(s, container, &path, err)) < 0)
        return r;
    if ((r = bundle_dir_open(path, &l->dirfd, err)) < 0 || (r = bundle_lock(l->dirfd, err)) < 0 ||
        (r = bundle_read(l->dirfd, &l->p, NULL, err)) < 0) {
        live_done(l);
        return err_prefix(err, "shield '%s'", container);
    }
    policy_prune(l->p, now_realtime_ms());
    r = bundle_runtime_read(l->dirfd, &l->rt, NULL);
    l->running = r >= 0 && proc_starttime(l->rt.pid, &st) >= 0 && st == l->rt.starttime;
    return 0;
}

/* Run cmds (if the container runs and there are any), then persist the policy. Kernel first:
 * the bundle never claims what the kernel refused. */
static int live_commit(shield_state *s, live *l, strbuf *cmds, terok_error *err)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_strv_free_ char **txs = NULL;
    nft_job *job = NULL;
    int r, rs;

    if ((r = sb_done(cmds, &text)) < 0)
        return terok_perr(err, r, "out of memory");
    if (l->running && *text) {
        const char *one[] = {text, NULL};

        if ((r = nft_job_start(l->rt.pid, 0, &job, err)) < 0)
            return err_prefix(err, "shield '%s'", l->p->container);
        nft_job_send(job, one);
    }
    /* The bundle is rendered and fsynced while the child changes the kernel, and renamed into
     * place only once the kernel took it. */
    policy_unresolved_prune(l->p); /* a domain no entry names has no failure to remember */
    rs = ruleset_render(l->p, 0, &txs);
    if (rs >= 0)
        rs = bundle_stage(l->dirfd, l->p, txs[0], err);
    if (job && (r = nft_job_wait(job, NULL, NULL, err)) < 0) {
        bundle_discard(l->dirfd);
        return err_prefix(err, "shield '%s'", l->p->container);
    }
    if (rs < 0) {
        bundle_discard(l->dirfd);
        return rs == -ENOMEM
                   ? terok_perr(err, rs, "out of memory")
                   : err_prefix(err, "shield '%s': applied, but not recorded", l->p->container);
    }
    (void)s;
    return bundle_commit(l->dirfd, err);
}

static int shield_verify(void *state, const char *container, int64_t pid, terok_error *err)
{
    chain_probe probe;
    live l;
    int r;

    if ((r = live_open(state, container, &l, err)) < 0)
        return r;
    if (pid <= 0) {
        if (!l.running) {
            live_done(&l);
            return terok_perr(err, -ESRCH, "shield verify '%s': container is not running",
                              container);
        }
        pid = l.rt.pid;
    }
    r = nft_run_probe(pid, NULL, NFT_RUN_PROBE, NULL, &probe, err);
    if (r >= 0)
        r = check_probe(l.p, l.p->posture, &probe, NULL, err);
    live_done(&l);
    return r < 0 ? err_prefix(err, "shield verify '%s'", container) : 0;
}

static int shield_cleanup(void *state, const char *container, terok_error *err)
{
    shield_state *s = state;
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    int r;

    if (!s)
        return terok_perr(err, -EINVAL, "no state");
    if ((r = bundle_path_of(s, container, &path, err)) < 0)
        return r;
    sources_close(s, container);
    /* Idempotent: a missing bundle means there is nothing left to release. The bundle itself
     * stays (a restart re-applies it); rm removes the container's state directory. */
    if (bundle_dir_open(path, &dirfd, NULL) < 0)
        return 0;
    if ((r = bundle_lock(dirfd, err)) < 0)
        return r;
    if ((r = bundle_runtime_remove(dirfd)) < 0)
        return terok_perr(err, r, "shield cleanup '%s': %s", container, strerror(-r));
    return 0;
}

/* ---- posture ---- */

static int shield_posture_set(void *state, const char *container, uint32_t posture,
                              terok_error *err)
{
    _cleanup_free_ char *text = NULL;
    chain_probe probe;
    live l;
    int r;

    if (posture != TEROK_SHIELD_UP && posture != TEROK_SHIELD_DOWN &&
        posture != TEROK_SHIELD_QUARANTINE)
        return terok_perr(err, -EINVAL, "posture %u cannot be set (up, down, quarantine)", posture);
    if ((r = live_open(state, container, &l, err)) < 0)
        return r;
    if (l.running) {
        if ((r = ruleset_render_posture(l.p, posture, &text)) < 0) {
            live_done(&l);
            return terok_perr(err, r, "out of memory");
        }
        const char *txs[] = {text, NULL};
        /* One transaction: the chains switch atomically, the sets keep their elements. */
        r = nft_run_probe(l.rt.pid, txs, NFT_RUN_PROBE, NULL, &probe, err);
        if (r >= 0)
            r = check_probe(l.p, posture, &probe, NULL, err);
        if (r < 0) {
            live_done(&l);
            return err_prefix(err, "shield %s '%s'", posture_name(posture), container);
        }
    }
    l.p->posture = posture;
    r = render_and_write(state, l.dirfd, l.p, err);
    live_done(&l);
    return r;
}

static int shield_posture_get(void *state, const char *container, uint32_t *ret_posture,
                              terok_error *err)
{
    chain_probe probe;
    uint32_t found = TEROK_SHIELD_ERROR;
    live l;
    int r;

    if (!ret_posture)
        return terok_perr(err, -EINVAL, "posture_get: no output");
    if ((r = live_open(state, container, &l, err)) < 0)
        return r;
    if (!l.running) {
        live_done(&l);
        *ret_posture = TEROK_SHIELD_OFFLINE;
        return 0;
    }
    /* No table where one should be is the ERROR posture, not a failure to report it. */
    if (nft_run_probe(l.rt.pid, NULL, NFT_RUN_PROBE, NULL, &probe, NULL) >= 0)
        (void)check_probe(l.p, 0, &probe, &found, NULL);
    if (found == TEROK_SHIELD_ERROR)
        terok_plog(TEROK_LOG_WARNING, "%s: no recognisable shield table in the container's netns",
                   container);
    live_done(&l);
    *ret_posture = found;
    return 0;
}

/* ---- allow / deny ---- */

static policy_entry *find_entry(shield_policy *p, unsigned tier, const target *t)
{
    char a[TARGET_MAX_LEN + 8], b[TARGET_MAX_LEN + 8];

    target_format(t, a, sizeof a);
    for (size_t i = 0; i < p->n_entries; i++) {
        if (p->entries[i].tier != tier)
            continue;
        target_format(&p->entries[i].t, b, sizeof b);
        if (streq(a, b))
            return &p->entries[i];
    }
    return NULL;
}

static bool interval_kind(const target *t)
{
    return t->port || t->kind == TARGET_NET4 || t->kind == TARGET_NET6;
}

static bool same_set(const target *a, const target *b)
{
    return a->kind != TARGET_DOMAIN && b->kind != TARGET_DOMAIN &&
           target_is_v6(a) == target_is_v6(b) && interval_kind(a) == interval_kind(b) &&
           (a->port != 0) == (b->port != 0) &&
           (a->port || (a->kind == TARGET_NET4 || a->kind == TARGET_NET6) ==
                           (b->kind == TARGET_NET4 || b->kind == TARGET_NET6));
}

/* Remove the exact target from a tier: policy and kernel (idempotent element removal). */
static void drop_from_tier(shield_policy *p, unsigned tier, const target *t, strbuf *cmds)
{
    if (t->kind == TARGET_DOMAIN) {
        for (size_t i = 0; i < p->n_dns; i++)
            if (p->dns[i].tier == tier && p->dns[i].port == t->port &&
                streq(p->dns[i].domain, t->domain))
                dns_element_remove(cmds, &p->dns[i]);
        policy_remove_dns(p, t->domain, t->port, tier);
    } else if (find_entry(p, tier, t)) {
        element_remove(cmds, tier, t);
    }
    policy_remove(p, t, tier);
}

/* Add t to tier with expiry (0: permanent), keeping interval sets free of nesting. Returns 1
 * when an existing entry already covers it (nothing to do). */
static int add_to_tier(shield_policy *p, unsigned tier, const target *t, int64_t expires,
                       int64_t now, strbuf *cmds, terok_error *err)
{
    char a[TARGET_MAX_LEN + 8], b[TARGET_MAX_LEN + 8];
    int r;

    for (size_t i = 0; i < p->n_entries; i++) {
        policy_entry *e = &p->entries[i];
        bool outlives = e->expires_ms == 0 || (expires != 0 && e->expires_ms >= expires);

        if (e->tier != tier || !same_set(&e->t, t))
            continue;
        if (target_covers(&e->t, t) && outlives)
            return 1;
        if (interval_kind(t) && target_covers(t, &e->t) && !outlives) {
            continue; /* nested and shorter-lived: replaced below */
        }
        if (interval_kind(t) && (target_covers(t, &e->t) || target_covers(&e->t, t))) {
            target_format(t, a, sizeof a);
            target_format(&e->t, b, sizeof b);
            return terok_perr(err, -EEXIST,
                              "'%s' overlaps '%s' in the %s tier with a longer lifetime; "
                              "nft interval sets cannot nest ranges",
                              a, b, tier_name(tier));
        }
    }
    /* Replace what t supersedes: a shorter-lived identical entry, nested shorter ranges. */
    for (size_t i = 0; i < p->n_entries;) {
        policy_entry *e = &p->entries[i];

        if (e->tier == tier && same_set(&e->t, t) && target_covers(t, &e->t)) {
            target old = e->t;

            element_remove(cmds, tier, &old);
            policy_remove(p, &old, tier);
            continue;
        }
        i++;
    }
    if ((r = policy_add(p, t, tier, expires)) < 0)
        return terok_perr(err, r, "out of memory");
    element_add(cmds, tier, t, expires ? expires - now : 0);
    return 0;
}

static int live_change(shield_state *s, const char *container, const char *text, unsigned tier,
                       int64_t duration_ms, terok_error *err)
{
    strbuf cmds = {0};
    int64_t now = now_realtime_ms(), expires = duration_ms > 0 ? now + duration_ms : 0;
    unsigned other = tier == TIER_ALLOW ? TIER_DENY : TIER_ALLOW;
    target t;
    live l;
    int r;

    if (duration_ms < 0)
        return terok_perr(err, -EINVAL, "duration %lld ms is negative", (long long)duration_ms);
    if ((r = target_parse(text, &t, err)) < 0)
        return r;
    if ((r = live_open(s, container, &l, err)) < 0)
        return r;
    /* The latest decision on the same target wins: allow lifts its deny and vice versa. */
    drop_from_tier(l.p, other, &t, &cmds);
    if (t.kind == TARGET_DOMAIN) {
        policy_entry e = {.t = t, .tier = (uint8_t)tier, .expires_ms = expires};
        size_t n = 0;

        policy_remove_dns(l.p, t.domain, t.port, tier);
        if ((r = policy_add(l.p, &t, tier, expires)) < 0) {
            r = terok_perr(err, r, "out of memory");
            goto out;
        }
        char why[WHY_LEN];

        if (tier == TIER_ALLOW) {
            /* The operator asked for it: a failure is theirs to see, as the error. */
            if ((r = resolve_entry(s, l.p, &e, now, &cmds, &n, NULL, why)) < 0) {
                r = terok_perr(err, r, "%s", why);
                goto out;
            }
            if (n == 0) {
                r = terok_perr(err, -ENOENT, "'%s' has no usable A/AAAA records", t.domain);
                goto out;
            }
            note_resolved(l.p, t.domain, now);
        } else if ((r = resolve_logged(s, l.p, &e, now, &cmds, NULL)) == -ENOMEM) {
            r = terok_perr(err, r, "out of memory");
            goto out;
        }
        /* A deny that cannot resolve is still recorded: default deny holds meanwhile and a
         * refresh retries. */
    } else if ((r = add_to_tier(l.p, tier, &t, expires, now, &cmds, err)) < 0) {
        goto out;
    }
    r = live_commit(s, &l, &cmds, err);
out:
    sb_free(&cmds);
    live_done(&l);
    return r < 0 ? r : 0;
}

static int shield_allow(void *state, const char *container, const char *what, int64_t duration_ms,
                        terok_error *err)
{
    return live_change(state, container, what, TIER_ALLOW, duration_ms, err);
}

static int shield_deny(void *state, const char *container, const char *what, terok_error *err)
{
    return live_change(state, container, what, TIER_DENY, 0, err);
}

/* ---- rules, refresh, status ---- */

static int shield_rules(void *state, const char *container, terok_shield_text_cb cb, void *userdata,
                        terok_error *err)
{
    _cleanup_free_ char *out = NULL;
    live l;
    int r;

    if (!cb)
        return terok_perr(err, -EINVAL, "rules: no callback");
    if ((r = live_open(state, container, &l, err)) < 0)
        return r;
    if (!l.running) {
        live_done(&l);
        return terok_perr(err, -ESRCH,
                          "shield rules '%s': container is not running (no ruleset loaded)",
                          container);
    }
    {
        const char *txs[] = {"list table " SHIELD_FAMILY " " SHIELD_TABLE "\n", NULL};

        r = nft_run_in_netns(l.rt.pid, txs, NFT_RUN_OUTPUT, &out, err);
    }
    live_done(&l);
    if (r < 0)
        return err_prefix(err, "shield rules '%s'", container);
    return cb(userdata, out, strlen(out));
}

static int ctl_refresh(shield_state *s, terok_shield_ctl_refresh *a, terok_error *err)
{
    strbuf cmds = {0};
    int64_t now = now_realtime_ms(), min_ms = -1;
    bool any = false;
    live l;
    int r = 0;

    if (!a || a->struct_size < sizeof *a)
        return terok_perr(err, -EINVAL, "refresh: bad argument");
    if ((r = live_open(s, a->container, &l, err)) < 0)
        return r;
    for (size_t i = 0, n = l.p->n_entries; i < n; i++) {
        policy_entry e = l.p->entries[i];

        if (e.t.kind != TARGET_DOMAIN)
            continue;
        any = true;
        (void)resolve_logged(s, l.p, &e, now, l.running ? &cmds : NULL, &min_ms);
    }
    r = live_commit(s, &l, &cmds, err);
    sb_free(&cmds);
    live_done(&l);
    if (r < 0)
        return r;
    /* Re-resolve before the shortest lifetime runs out (80%: no gap at expiry). */
    a->ret_next_ms = !any ? -1 : min_ms < 0 ? s->ttl_floor_ms : MAX(min_ms * 4 / 5, 1);
    return 0;
}

static json_object *strings_json(const shield_policy *p, unsigned tier)
{
    json_object *arr = json_object_new_array();
    char buf[TARGET_MAX_LEN + 8];

    for (size_t i = 0; arr && i < p->n_entries; i++) {
        if (p->entries[i].tier != tier)
            continue;
        target_format(&p->entries[i].t, buf, sizeof buf);
        if (p->entries[i].expires_ms) {
            json_object *o = json_object_new_object();

            json_object_object_add(o, "target", json_object_new_string(buf));
            json_object_object_add(o, "expires_ms",
                                   json_object_new_int64(p->entries[i].expires_ms));
            json_object_array_add(arr, o);
        } else {
            json_object_array_add(arr, json_object_new_string(buf));
        }
    }
    return arr;
}

static int ctl_status(shield_state *s, terok_shield_ctl_text *a, terok_error *err)
{
    uint32_t posture = TEROK_SHIELD_OFFLINE;
    json_object *root, *tiers, *dns;
    const char *text;
    live l;
    int r;

    if (!a || a->struct_size < sizeof *a || !a->cb)
        return terok_perr(err, -EINVAL, "status: bad argument");
    if ((r = shield_posture_get(s, a->container, &posture, err)) < 0)
        return r;
    if ((r = live_open(s, a->container, &l, err)) < 0)
        return r;
    root = json_object_new_object();
    tiers = json_object_new_object();
    dns = json_object_new_array();
    json_object_object_add(root, "container", json_object_new_string(l.p->container));
    json_object_object_add(root, "posture", json_object_new_string(posture_name(posture)));
    json_object_object_add(root, "configured_posture",
                           json_object_new_string(posture_name(l.p->posture)));
    json_object_object_add(root, "running", json_object_new_boolean(l.running));
    if (l.running)
        json_object_object_add(root, "pid", json_object_new_int64(l.rt.pid));
    json_object_object_add(root, "nflog_group", json_object_new_int64(l.p->nflog_group));
    {
        json_object *pr = json_object_new_array();

        STRV_FOREACH(n, l.p->profiles)
        json_object_array_add(pr, json_object_new_string(*n));
        json_object_object_add(root, "profiles", pr);
    }
    for (unsigned t = 0; t < TIER_COUNT; t++)
        json_object_object_add(tiers, tier_name(t), strings_json(l.p, t));
    json_object_object_add(root, "tiers", tiers);
    for (size_t i = 0; i < l.p->n_dns; i++) {
        const dns_addr *d = &l.p->dns[i];
        json_object *o = json_object_new_object();
        char ip[INET6_ADDRSTRLEN];

        inet_ntop(d->v6 ? AF_INET6 : AF_INET, &d->addr, ip, sizeof ip);
        json_object_object_add(o, "domain", json_object_new_string(d->domain));
        json_object_object_add(o, "tier", json_object_new_string(tier_name(d->tier)));
        json_object_object_add(o, "addr", json_object_new_string(ip));
        if (d->port)
            json_object_object_add(o, "port", json_object_new_int(d->port));
        json_object_object_add(o, "expires_ms", json_object_new_int64(d->expires_ms));
        json_object_array_add(dns, o);
    }
    json_object_object_add(root, "dns", dns);
    {
        json_object *un = json_object_new_array();

        for (size_t i = 0; i < l.p->n_unresolved; i++) {
            const dns_unresolved *u = &l.p->unresolved[i];
            json_object *o = json_object_new_object();

            json_object_object_add(o, "domain", json_object_new_string(u->domain));
            json_object_object_add(o, "since_ms", json_object_new_int64(u->since_ms));
            json_object_object_add(o, "error", json_object_new_string(u->why));
            json_object_array_add(un, o);
        }
        json_object_object_add(root, "dns_unresolved", un);
    }
    live_done(&l);
    text = json_object_to_json_string_ext(root,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    r = text ? a->cb(a->userdata, text, strlen(text)) : terok_perr(err, -ENOMEM, "out of memory");
    json_object_put(root);
    return r;
}

static int ctl_events(shield_state *s, uint32_t op, terok_shield_ctl_events *a, terok_error *err);

static int shield_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    switch (op) {
    case TEROK_SHIELD_CTL_REFRESH:
        return ctl_refresh(state, arg, err);
    case TEROK_SHIELD_CTL_STATUS:
        return ctl_status(state, arg, err);
    case TEROK_SHIELD_CTL_EVENTS_OPEN:
    case TEROK_SHIELD_CTL_EVENTS_CLOSE:
        return ctl_events(state, op, arg, err);
    default:
        return -EOPNOTSUPP;
    }
}

/* ---- events ---- */

static ev_source *source_find(shield_state *s, const char *container)
{
    for (size_t i = 0; i < s->n_sources; i++)
        if (streq(s->sources[i].container, container))
            return &s->sources[i];
    return NULL;
}

/* The container's event source, opened in the netns of the pid it runs as now; a source of an
 * earlier run (another pid) is replaced. */
static int source_open(shield_state *s, const char *container, ev_source **ret, terok_error *err)
{
    ev_source *e, *ns;
    live l;
    int fd, r;

    if ((r = live_open(s, container, &l, err)) < 0)
        return r;
    if (!l.running) {
        live_done(&l);
        sources_close(s, container);
        return terok_perr(err, -ESRCH, "shield events '%s': container is not running", container);
    }
    if ((e = source_find(s, container)) && e->pid == l.rt.pid) {
        live_done(&l);
        *ret = e;
        return 0;
    }
    sources_close(s, container);
    if ((r = events_open(l.rt.pid, l.p->nflog_group, &fd, err)) < 0) {
        live_done(&l);
        return err_prefix(err, "shield events '%s'", container);
    }
    ns = reallocarray(s->sources, s->n_sources + 1, sizeof *ns);
    if (!ns) {
        close(fd);
        live_done(&l);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    s->sources = ns;
    e = &s->sources[s->n_sources];
    *e = (ev_source){
        .container = strdup(container), .pid = l.rt.pid, .fd = fd, .snap = take_ptr(l.p)};
    {
        struct stat st;

        if (fstatat(l.dirfd, BUNDLE_FILE, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
            e->snap_dev = st.st_dev;
            e->snap_ino = st.st_ino;
            e->snap_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
    }
    live_done(&l);
    if (!e->container) {
        close(fd);
        shield_policy_free(e->snap);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    s->n_sources++;
    *ret = e;
    return 0;
}

static int shield_events_fd(void *state, const char *container, int *ret_fd, terok_error *err)
{
    shield_state *s = state;
    ev_source *e;
    int r;

    if (!s || !ret_fd)
        return terok_perr(err, -EINVAL, "events_fd: bad argument");
    if ((e = source_find(s, container))) {
        *ret_fd = e->fd;
        return 0;
    }
    if ((r = source_open(s, container, &e, err)) < 0)
        return r;
    *ret_fd = e->fd;
    return 0;
}

static int ctl_events(shield_state *s, uint32_t op, terok_shield_ctl_events *a, terok_error *err)
{
    ev_source *e;
    int r;

    if (!s || !a || a->struct_size < sizeof *a || !a->container)
        return terok_perr(err, -EINVAL, "events: bad argument");
    if (op == TEROK_SHIELD_CTL_EVENTS_CLOSE) {
        sources_close(s, a->container);
        return 0;
    }
    if ((r = source_open(s, a->container, &e, err)) < 0)
        return r;
    a->ret_fd = e->fd;
    a->ret_pid = e->pid;
    return 0;
}

typedef struct dispatch_ctx {
    shield_state *s;
    ev_source *src;
    terok_shield_event_cb cb;
    void *ud;
} dispatch_ctx;

/* True when this destination was reported within the dedup window (and records it). */
static bool dedup(shield_state *s, ev_source *src, const nflog_event *ev)
{
    int64_t now = ev->time_ns / 1000000;
    size_t oldest = 0;

    if (s->dedup_ms <= 0)
        return false;
    for (size_t i = 0; i < src->n_seen; i++) {
        seen *x = &src->seen[i];

        if (x->port == ev->dport && x->proto == ev->proto &&
            memcmp(&x->ip, &ev->dst, sizeof x->ip) == 0) {
            if (now - x->at_ms < s->dedup_ms)
                return true;
            x->at_ms = now;
            return false;
        }
        if (x->at_ms < src->seen[oldest].at_ms)
            oldest = i;
    }
    if (src->n_seen < DEDUP_MAX) {
        seen *n = reallocarray(src->seen, src->n_seen + 1, sizeof *n);

        if (!n)
            return false;
        src->seen = n;
        oldest = src->n_seen++;
    }
    src->seen[oldest] = (seen){ev->dst, ev->dport, (uint8_t)ev->proto, now};
    return false;
}

static int on_event(void *ud, const nflog_event *ev)
{
    dispatch_ctx *c = ud;
    char ip[INET6_ADDRSTRLEN];
    const char *domain = NULL;
    terok_shield_event out;

    if (!event_prefix_blocked(ev->prefix) || dedup(c->s, c->src, ev))
        return 0;
    inet_ntop(ev->v6 ? AF_INET6 : AF_INET, &ev->dst, ip, sizeof ip);
    for (size_t i = 0; c->src->snap && i < c->src->snap->n_dns; i++) {
        const dns_addr *a = &c->src->snap->dns[i];

        if (a->v6 == ev->v6 && memcmp(&a->addr, &ev->dst, sizeof a->addr) == 0) {
            domain = a->domain;
            break;
        }
    }
    out = (terok_shield_event){.struct_size = sizeof out,
                               .protocol = ev->proto,
                               .container = c->src->container,
                               .dest_ip = ip,
                               .dest_port = ev->dport,
                               .domain = domain,
                               .time_ns = ev->time_ns};
    return c->cb(c->ud, &out);
}

/* Read the bundle's policy again when shield.json was replaced since the snapshot (every
 * write is tmp + rename: a new inode). Without the lock: the rename is atomic, and a reader
 * must not wait behind a refresh that is resolving. A bundle that cannot be read keeps the old
 * snapshot: naming a domain is a convenience, the verdict is the kernel's. */
static void source_sync_snap(shield_state *s, ev_source *src)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    shield_policy *p = NULL;
    struct stat st;
    int64_t mt;

    if (bundle_path_of(s, src->container, &path, NULL) < 0 ||
        bundle_dir_open(path, &dirfd, NULL) < 0 ||
        fstatat(dirfd, BUNDLE_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (src->snap && st.st_dev == src->snap_dev && st.st_ino == src->snap_ino &&
        mt == src->snap_mtime_ns)
        return;
    if (bundle_read(dirfd, &p, NULL, NULL) < 0)
        return;
    policy_prune(p, now_realtime_ms());
    shield_policy_free(src->snap);
    src->snap = p;
    src->snap_dev = st.st_dev;
    src->snap_ino = st.st_ino;
    src->snap_mtime_ns = mt;
}

static int shield_events_dispatch(void *state, const char *container, terok_shield_event_cb cb,
                                  void *userdata, terok_error *err)
{
    shield_state *s = state;
    dispatch_ctx c = {s, NULL, cb, userdata};

    if (!s || !cb)
        return terok_perr(err, -EINVAL, "events_dispatch: bad argument");
    if (!(c.src = source_find(s, container)))
        return terok_perr(err, -ENOENT, "shield events '%s': no event source (call events_fd)",
                          Q(container));
    source_sync_snap(s, c.src);
    return events_read(c.src->fd, on_event, &c, err);
}

static const terok_shield_ops ops = {
    .struct_size = sizeof(terok_shield_ops),
    .caps = TEROK_SHIELD_CAP_EGRESS | TEROK_SHIELD_CAP_DNS | TEROK_SHIELD_CAP_LIVE |
            TEROK_SHIELD_CAP_EVENTS | TEROK_SHIELD_CAP_ROOTLESS | TEROK_SHIELD_CAP_TIMED,
    .open = shield_open,
    .close = shield_close,
    .prepare = shield_prepare,
    .apply = shield_apply,
    .verify = shield_verify,
    .cleanup = shield_cleanup,
    .posture_set = shield_posture_set,
    .posture_get = shield_posture_get,
    .allow = shield_allow,
    .deny = shield_deny,
    .rules = shield_rules,
    .events_fd = shield_events_fd,
    .events_dispatch = shield_events_dispatch,
    .ctl = shield_ctl,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_SHIELD, "nft", "0.1.0", &ops)
