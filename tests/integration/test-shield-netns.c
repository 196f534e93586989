/* SPDX-License-Identifier: Apache-2.0 */
/* test-shield-netns.c: shield-nft enforcing for real. Each test builds its own pair of network
 * namespaces (client = "the container", server with TCP listeners and, for DNS, dnsmasq) joined
 * by a veth link, applies a bundle to a process in the client netns and probes from there:
 * allowed answers, denied and private are refused, live allow/deny/timed allow, postures,
 * NFLOG events, DNS TTL following, no NET_ADMIN for the container, and the rootless path. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shield/harness.h"
#include "terok-test.h"

#define SRV "198.51.100.2"
#define CTR "ctr"

static shield_h h;
static topo t;
static char bundle[4096];
static pid_t dnsmasq = -1;

static const int ports[] = {8090, 8091, 8092, 0};

static void load(const char *const *extra)
{
    const char *cfg[16] = {"dns-ttl-floor=1000", "dns-ttl-ceiling=3000", "event-dedup=30000"};
    size_t n = 3;
    char sd[4096];
    const char *msg;

    for (; extra && *extra; extra++)
        cfg[n++] = *extra;
    cfg[n] = NULL;
    snprintf(sd, sizeof sd, "%s/state", test_tmp);
    cr_assert_eq(sh_load(&h, sd, cfg, &msg), 0, "load: %s", msg);
}

static void setup(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root (network namespaces)");
    test_tmpdir_setup();
    cr_assert_eq(topo_up(&t, 0), 0, "topology");
    cr_assert_eq(topo_servers(&t, ports), 0, "servers");
    load(NULL);
}

static void teardown(void)
{
    sh_unload(&h);
    if (dnsmasq > 0)
        kill_wait(dnsmasq);
    dnsmasq = -1;
    topo_down(&t);
    test_tmpdir_teardown();
}

TestSuite(shield_netns, .init = setup, .fini = teardown, .timeout = 60);

static void prep_apply(const char *const *allow, const char *const *deny)
{
    static const char *const none[] = {NULL};
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = CTR,
                               .profiles = none,
                               .allow = allow,
                               .deny = deny,
                               .dns_resolver = SRV};
    terok_shield_prepared out = {.struct_size = sizeof out};
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->prepare(h.state, &pol, &out, &err), &err);
    snprintf(bundle, sizeof bundle, "%s", out.bundle_path);
    free(out.bundle_path);
    for (char **a = out.annotations; a && *a; a++)
        free(*a);
    free(out.annotations);
    terok_assert_ok(h.ops->apply(h.state, bundle, t.container, &err), &err);
}

static char *rules(void)
{
    text_buf b = {0};
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->rules(h.state, CTR, text_collect, &b, &err), &err);
    return b.s;
}

static long counter(const char *needle)
{
    char *r = rules();
    long n = counter_sum(r, needle);

    free(r);
    return n;
}

static uint32_t posture(void)
{
    terok_error err = {0, NULL};
    uint32_t p = 0;

    terok_assert_ok(h.ops->posture_get(h.state, CTR, &p, &err), &err);
    return p;
}

static void set_posture(uint32_t p)
{
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->posture_set(h.state, CTR, p, &err), &err);
}

static void allow(const char *what, int64_t ms)
{
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->allow(h.state, CTR, what, ms, &err), &err);
}

static void deny(const char *what)
{
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->deny(h.state, CTR, what, &err), &err);
}

#define ALLOWED(ip, port)                                                                          \
    cr_assert_eq(probe_connect(t.container, ip, port, 2000), 0, "%s:%d should answer", ip, port)
/* Refused means refused at once by our reject, not a silent timeout. */
#define REFUSED(ip, port)                                                                          \
    do {                                                                                           \
        int _e = probe_connect(t.container, ip, port, 2000);                                       \
        cr_assert(_e != 0 && _e != ETIMEDOUT, "%s:%d should be refused, got %d (%s)", ip, port,    \
                  _e, strerror(_e));                                                               \
    } while (0)

Test(shield_netns, allowed_answers_denied_refused)
{
    const char *a[] = {SRV ":8090", NULL};
    long before;

    ALLOWED(SRV, 8091); /* no shield yet: everything answers */
    prep_apply(a, NULL);
    cr_assert_eq(posture(), TEROK_SHIELD_UP);
    ALLOWED(SRV, 8090);
    before = counter("terok-blocked");
    REFUSED(SRV, 8091);
    REFUSED("198.51.100.3", 8090);
    cr_assert_eq(counter("terok-blocked"), before + 2, "each refusal is counted");
    cr_assert_gt(counter("terok-allow"), 0);
}

Test(shield_netns, private_range_refused_unless_allowed)
{
    const char *a[] = {SRV ":8090", NULL};

    prep_apply(a, NULL);
    REFUSED("10.231.0.2", 8090);
    cr_assert_eq(counter("terok-private"), 1);
    allow("10.231.0.0/24", 0);
    ALLOWED("10.231.0.2", 8090);
}

Test(shield_netns, live_allow_then_deny)
{
    const char *a[] = {SRV ":8090", NULL};
    int64_t t0, t1;

    prep_apply(a, NULL);
    REFUSED(SRV, 8091);
    t0 = mono_ms();
    allow(SRV ":8091", 0);
    cr_assert_eq(probe_connect(t.container, SRV, 8091, 2000), 0);
    t1 = mono_ms();
    cr_log_info("live allow -> connected in %lld ms", (long long)(t1 - t0));
    deny(SRV ":8091");
    REFUSED(SRV, 8091);
    cr_assert_gt(counter("terok-deny"), 0);
    /* A deny beats what the policy allowed; a later allow lifts it again. */
    deny(SRV);
    REFUSED(SRV, 8090);
    allow(SRV, 0);
    ALLOWED(SRV, 8090);
    ALLOWED(SRV, 8092);
}

Test(shield_netns, timed_allow_expires)
{
    prep_apply(NULL, NULL);
    REFUSED(SRV, 8092);
    allow(SRV ":8092", 1500);
    ALLOWED(SRV, 8092);
    usleep(2000 * 1000);
    REFUSED(SRV, 8092);
    allow("198.51.100.0/24", 1200);
    ALLOWED("198.51.100.3", 8090);
    usleep(1600 * 1000);
    REFUSED("198.51.100.3", 8090);
}

Test(shield_netns, quarantine_cuts_established_flow)
{
    const char *a[] = {SRV ":8090", NULL};
    held_conn c;

    prep_apply(a, NULL);
    cr_assert_eq(conn_open(&c, t.container, SRV, 8090), 0);
    cr_assert_eq(conn_ping(&c, 2000), 0, "flow works before");
    set_posture(TEROK_SHIELD_QUARANTINE);
    cr_assert_eq(posture(), TEROK_SHIELD_QUARANTINE);
    cr_assert_neq(conn_ping(&c, 2000), 0, "established flow must be cut");
    conn_close(&c);
    REFUSED(SRV, 8090);
    cr_assert_gt(counter("terok-quarantine"), 0);
    set_posture(TEROK_SHIELD_UP);
    ALLOWED(SRV, 8090);
    REFUSED(SRV, 8091);
}

Test(shield_netns, down_posture_allows_and_logs)
{
    const char *a[] = {SRV ":8090", NULL};
    const char *d[] = {SRV ":8092", NULL};

    prep_apply(a, d);
    REFUSED(SRV, 8091);
    set_posture(TEROK_SHIELD_DOWN);
    cr_assert_eq(posture(), TEROK_SHIELD_DOWN);
    ALLOWED(SRV, 8091);
    cr_assert_eq(counter("terok-bypass"), 1, "bypassed connection logged and counted");
    REFUSED(SRV, 8092);          /* explicit denies still hold */
    REFUSED("10.231.0.2", 8090); /* and private ranges */
    set_posture(TEROK_SHIELD_UP);
    REFUSED(SRV, 8091);
}

Test(shield_netns, live_decisions_survive_reapply)
{
    const char *a[] = {SRV ":8090", NULL};
    terok_error err = {0, NULL};
    char pid[16];

    prep_apply(a, NULL);
    allow(SRV ":8091", 0);
    deny(SRV ":8090");
    set_posture(TEROK_SHIELD_QUARANTINE);
    /* A stop/start: the netns comes back empty and the hook applies the bundle again. */
    snprintf(pid, sizeof pid, "%d", (int)t.container);
    cr_assert_eq(SH_RUN("nsenter", "-t", pid, "-n", "nft", "flush", "ruleset"), 0);
    cr_assert_eq(posture(), TEROK_SHIELD_ERROR, "no table in a running container is ERROR");
    terok_assert_ok(h.ops->apply(h.state, bundle, t.container, &err), &err);
    cr_assert_eq(posture(), TEROK_SHIELD_QUARANTINE);
    set_posture(TEROK_SHIELD_UP);
    ALLOWED(SRV, 8091);
    REFUSED(SRV, 8090);
    terok_assert_ok(h.ops->verify(h.state, CTR, t.container, &err), &err);
}

typedef struct got_events {
    int n;
    terok_shield_event ev[8];
    char ip[8][64], domain[8][256];
} got_events;

static int on_event(void *ud, const terok_shield_event *ev)
{
    got_events *g = ud;

    if (g->n < 8) {
        g->ev[g->n] = *ev;
        snprintf(g->ip[g->n], 64, "%s", ev->dest_ip);
        snprintf(g->domain[g->n], 256, "%s", ev->domain ? ev->domain : "");
        g->n++;
    }
    return 0;
}

static void wait_events(int fd, got_events *g, int timeout_ms)
{
    terok_error err = {0, NULL};
    int64_t end = mono_ms() + timeout_ms;

    while (g->n == 0 && mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (poll(&p, 1, (int)(end - mono_ms())) > 0)
            cr_assert_geq(h.ops->events_dispatch(h.state, CTR, on_event, g, &err), 0, "%s",
                          err.message);
    }
}

Test(shield_netns, nflog_event_for_blocked_connect)
{
    const char *a[] = {SRV ":8090", NULL};
    terok_error err = {0, NULL};
    got_events g = {0};
    int fd = -1;
    int64_t t0;

    prep_apply(a, NULL);
    terok_assert_ok(h.ops->events_fd(h.state, CTR, &fd, &err), &err);
    cr_assert_geq(fd, 0);
    ALLOWED(SRV, 8090); /* allowed traffic is not an event */
    t0 = mono_ms();
    REFUSED(SRV, 8091);
    wait_events(fd, &g, 2000);
    cr_assert_eq(g.n, 1, "one blocked event");
    cr_log_info("blocked -> event in %lld ms", (long long)(mono_ms() - t0));
    cr_assert_str_eq(g.ip[0], SRV);
    cr_assert_eq(g.ev[0].dest_port, 8091);
    cr_assert_eq(g.ev[0].protocol, 6);
    cr_assert_str_eq(g.ev[0].container, CTR);
    /* Same destination again within the dedup window: no new event; another port: one. */
    g.n = 0;
    REFUSED(SRV, 8091);
    REFUSED(SRV, 8092);
    wait_events(fd, &g, 2000);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.ev[0].dest_port, 8092);
    terok_assert_ok(h.ops->cleanup(h.state, CTR, &err), &err);
}

Test(shield_netns, container_cannot_alter_rules)
{
    const char *a[] = {SRV ":8090", NULL};
    char pid[16], out[4096];
    /* As an unprivileged uid, and as uid 0 with every capability dropped (--cap-drop=ALL). */
    const char *const nobody[] = {
        "nsenter",        "-t",  pid,     "-n",      "setpriv", "--reuid=65534", "--regid=65534",
        "--clear-groups", "nft", "flush", "ruleset", NULL};
    const char *const nocaps[] = {
        "nsenter", "-t",    pid,       "-n", "setpriv", "--inh-caps=-all", "--bounding-set=-all",
        "nft",     "flush", "ruleset", NULL};

    prep_apply(a, NULL);
    snprintf(pid, sizeof pid, "%d", (int)t.container);
    cr_assert_neq(sh_run(nobody, out, sizeof out), 0);
    cr_assert_neq(sh_run(nocaps, out, sizeof out), 0);
    cr_assert_eq(posture(), TEROK_SHIELD_UP);
    REFUSED(SRV, 8091);
}

static void start_dnsmasq(const char *hosts)
{
    dnsmasq = topo_dnsmasq(&t, SRV, test_write_file("hosts", hosts, 0644));
    cr_assert(dnsmasq > 0, "dnsmasq did not come up");
}

/* dnsmasq on the server side answering `hosts`, and the plugin reloaded to resolve through it
 * from the server netns, as the host would. */
static void dns_world(const char *hosts)
{
    if (access("/usr/sbin/dnsmasq", X_OK) != 0)
        cr_skip_test("needs dnsmasq (scripts/setup-host.sh installs dnsmasq-base)");
    start_dnsmasq(hosts);
    cr_assert_eq(topo_enter_server(&t), 0);
    sh_unload(&h);
    load((const char *[]){"dns-server=" SRV, NULL});
}

Test(shield_netns, domain_allow_follows_ttl)
{
    const char *a[] = {"svc.example.test:8090", NULL};
    const char *d[] = {"bad.example.test", NULL};
    terok_shield_ctl_refresh rf = {.struct_size = sizeof rf, .container = CTR};
    terok_error err = {0, NULL};
    got_events g = {0};
    int fd;

    dns_world("198.51.100.2 svc.example.test\n198.51.100.3 bad.example.test\n");
    prep_apply(a, d);
    ALLOWED(SRV, 8090);
    REFUSED(SRV, 8091);            /* the domain was allowed on 8090 only */
    REFUSED("198.51.100.4", 8090); /* not (yet) the domain's address */
    /* The container may ask its resolver, and only it. */
    cr_assert_eq(probe_dns(t.container, SRV, "svc.example.test", 1000), 0);
    cr_assert_neq(probe_dns(t.container, "198.51.100.4", "svc.example.test", 500), 0);
    /* A denied domain: the event carries its name. */
    terok_assert_ok(h.ops->events_fd(h.state, CTR, &fd, &err), &err);
    REFUSED("198.51.100.3", 8090);
    wait_events(fd, &g, 2000);
    cr_assert_geq(g.n, 1);
    cr_assert_str_eq(g.domain[0], "bad.example.test");
    cr_assert_gt(counter("terok-deny"), 0);

    /* The service moves; after its TTL (2 s) a refresh follows it and the old address lapses. */
    test_write_file("hosts", "198.51.100.4 svc.example.test\n198.51.100.3 bad.example.test\n",
                    0644);
    kill(dnsmasq, SIGHUP);
    usleep(2300 * 1000);
    terok_assert_ok(h.ops->ctl(h.state, TEROK_SHIELD_CTL_REFRESH, &rf, &err), &err);
    cr_assert(rf.ret_next_ms > 0 && rf.ret_next_ms <= 3000, "next refresh %lld",
              (long long)rf.ret_next_ms);
    ALLOWED("198.51.100.4", 8090);
    REFUSED(SRV, 8090);
}

static json_object *status(void)
{
    terok_error err = {0, NULL};
    text_buf b = {0};
    terok_shield_ctl_text st = {
        .struct_size = sizeof st, .container = CTR, .cb = text_collect, .userdata = &b};
    json_object *o;

    terok_assert_ok(h.ops->ctl(h.state, TEROK_SHIELD_CTL_STATUS, &st, &err), &err);
    o = json_tokener_parse(b.s);
    cr_assert(o, "status is not JSON: %s", b.s);
    free(b.s);
    return o;
}

/* The domains `shield status` names as not resolving, comma-joined ("" for none). */
static void unresolved(char *buf, size_t n)
{
    json_object *o = status(), *arr, *v;
    size_t len = 0;

    buf[0] = 0;
    cr_assert(json_object_object_get_ex(o, "dns_unresolved", &arr) &&
              json_object_is_type(arr, json_type_array));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        cr_assert(json_object_object_get_ex(e, "since_ms", &v) && json_object_get_int64(v) > 0);
        cr_assert(json_object_object_get_ex(e, "error", &v) &&
                  strstr(json_object_get_string(v), "cannot resolve"));
        cr_assert(json_object_object_get_ex(e, "domain", &v));
        len +=
            (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", json_object_get_string(v));
    }
    json_object_put(o);
}

/* The test resolver's names from now on (dnsmasq rereads its hosts file on SIGHUP). */
static void set_hosts(const char *hosts)
{
    test_write_file("hosts", hosts, 0644);
    kill(dnsmasq, SIGHUP);
    usleep(300 * 1000);
}

static void refresh(void)
{
    terok_shield_ctl_refresh rf = {.struct_size = sizeof rf, .container = CTR};
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->ctl(h.state, TEROK_SHIELD_CTL_REFRESH, &rf, &err), &err);
}

/* A domain that does not resolve is logged when it starts failing, not at every refresh (the
 * clearance daemon refreshes every few seconds); `shield status` names it meanwhile; the first
 * success is a notice and lets the traffic through; a new failure is logged again. */
Test(shield_netns, unresolved_domain_logged_once)
{
    const char *a[] = {"svc.example.test:8090", "late.example.test:8091", NULL};
    char names[512];

    dns_world("198.51.100.2 svc.example.test\n");
    sh_log_reset();
    prep_apply(a, NULL);
    ALLOWED(SRV, 8090);
    REFUSED(SRV, 8091);
    cr_assert_eq(sh_log_count(TEROK_LOG_WARNING, "late.example.test"), 1, "last log: %s",
                 sh_last_log());
    cr_assert_eq(sh_log_count(TEROK_LOG_WARNING, "svc.example.test"), 0);
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "late.example.test");

    for (int i = 0; i < 3; i++)
        refresh();
    cr_assert_eq(sh_log_count(TEROK_LOG_WARNING, "late.example.test"), 1,
                 "a refresh logged the same failure again");
    cr_assert_geq(sh_log_count(TEROK_LOG_DEBUG, "late.example.test"), 3);
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "late.example.test");

    /* It appears: the next refresh admits it, says so once, and status forgets the failure. */
    set_hosts("198.51.100.2 svc.example.test\n198.51.100.2 late.example.test\n");
    refresh();
    ALLOWED(SRV, 8091);
    cr_assert_eq(sh_log_count(TEROK_LOG_NOTICE, "'late.example.test' resolves again"), 1);
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "");
    refresh();
    cr_assert_eq(sh_log_count(TEROK_LOG_NOTICE, "resolves again"), 1);

    /* Gone again: a new failure, logged again, once. */
    set_hosts("198.51.100.2 svc.example.test\n");
    refresh();
    refresh();
    cr_assert_eq(sh_log_count(TEROK_LOG_WARNING, "late.example.test"), 2);
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "late.example.test");

    /* A timed allow whose domain stops resolving: its record goes when the entry expires. */
    set_hosts("198.51.100.2 svc.example.test\n198.51.100.2 brief.example.test\n");
    allow("brief.example.test:8092", 2500);
    set_hosts("198.51.100.2 svc.example.test\n");
    refresh();
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "late.example.test,brief.example.test");
    usleep(2500 * 1000);
    refresh();
    unresolved(names, sizeof names);
    cr_assert_str_eq(names, "late.example.test");
}

Test(shield_netns, status_json)
{
    const char *a[] = {SRV ":8090", NULL};
    terok_error err = {0, NULL};
    text_buf b = {0};
    terok_shield_ctl_text st = {
        .struct_size = sizeof st, .container = CTR, .cb = text_collect, .userdata = &b};
    json_object *o, *v;

    prep_apply(a, NULL);
    allow(SRV ":8092", 60000);
    terok_assert_ok(h.ops->ctl(h.state, TEROK_SHIELD_CTL_STATUS, &st, &err), &err);
    o = json_tokener_parse(b.s);
    cr_assert(o, "%s", b.s);
    cr_assert(json_object_object_get_ex(o, "posture", &v));
    cr_assert_str_eq(json_object_get_string(v), "up");
    cr_assert(json_object_object_get_ex(o, "running", &v) && json_object_get_boolean(v));
    cr_assert(strstr(b.s, "\"198.51.100.2:8092\""), "%s", b.s);
    cr_assert(strstr(b.s, "\"expires_ms\""), "%s", b.s);
    json_object_put(o);
    free(b.s);
}

/* ---- rootless: the operator (terokci) owns the container's user namespace ---- */

#define CI_UID 1001

static void report(int fd, int r, const terok_error *err)
{
    char line[1024];

    snprintf(line, sizeof line, "%d %s\n", r, err->message ? err->message : "");
    (void)!write(fd, line, strlen(line));
}

/* In a child as terokci: prepare with 10,000 extra elements, apply, then a live allow. */
static _Noreturn void rootless_child(int fd, const char *state, pid_t ctr)
{
    shield_h hh;
    const char *msg;
    terok_error err = {0, NULL};
    static const char *const none[] = {NULL};
    char **allow = calloc(10002, sizeof(char *));
    terok_shield_prepared out = {.struct_size = sizeof out};
    int r;

    if (setgroups(0, NULL) < 0 || setresgid(CI_UID, CI_UID, CI_UID) < 0 ||
        setresuid(CI_UID, CI_UID, CI_UID) < 0)
        _exit(10);
    setenv("HOME", state, 1);
    if (sh_load(&hh, state, (const char *[]){"chunk-size=4000", NULL}, &msg) < 0)
        _exit(11);
    allow[0] = SRV ":8090";
    for (int i = 1; i <= 10000; i++)
        if (asprintf(&allow[i], "100.%d.%d.%d", 64 + i / 60000, (i / 240) % 250, i % 240 + 1) < 0)
            _exit(12);
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = CTR,
                               .profiles = none,
                               .allow = (const char *const *)allow,
                               .rootless = 1};
    r = hh.ops->prepare(hh.state, &pol, &out, &err);
    report(fd, r, &err);
    if (r < 0)
        _exit(0);
    r = hh.ops->apply(hh.state, out.bundle_path, ctr, &err);
    report(fd, r, &err);
    r = hh.ops->allow(hh.state, CTR, SRV ":8091", 0, &err);
    report(fd, r, &err);
    _exit(0);
}

static void rootless_setup(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to build the test user's topology");
    if (getpwuid(CI_UID) == NULL)
        cr_skip_test("needs the rootless test user (uid %d, scripts/setup-host.sh)", CI_UID);
    test_tmpdir_setup();
}

TestSuite(shield_rootless, .init = rootless_setup, .fini = teardown, .timeout = 120);

Test(shield_rootless, userns_apply_chunked_10k_and_live_allow)
{
    char state[4096], buf[8192] = "";
    int p[2], st;
    size_t len = 0;
    ssize_t n;
    pid_t ctr, child;

    chmod(test_tmp, 0755);
    ctr = spawn_userns_sleeper(CI_UID, CI_UID);
    cr_assert_gt(ctr, 0, "unshare -rn as uid %d", CI_UID);
    cr_assert_eq(topo_up(&t, ctr), 0);
    cr_assert_eq(topo_servers(&t, ports), 0);
    snprintf(state, sizeof state, "%s/ci-state", test_tmp);
    cr_assert_eq(mkdir(state, 0700), 0);
    cr_assert_eq(chown(state, CI_UID, CI_UID), 0);
    cr_assert_eq(pipe(p), 0);
    child = fork();
    if (child == 0) {
        close(p[0]);
        rootless_child(p[1], state, ctr);
    }
    close(p[1]);
    while ((n = read(p[0], buf + len, sizeof buf - len - 1)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    waitpid(child, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    cr_assert_str_eq(buf, "0 \n0 \n0 \n", "prepare/apply/allow as uid %d: %s", CI_UID, buf);
    ALLOWED(SRV, 8090);
    ALLOWED(SRV, 8091);
    REFUSED(SRV, 8092);
    kill_wait(ctr);
}
