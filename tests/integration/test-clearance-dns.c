/* SPDX-License-Identifier: Apache-2.0 */
/* test-clearance-dns.c: the clearance daemon follows DNS by itself. The real daemon
 * (`terok-sandbox clearance serve`, own state and runtime dirs) watches a "container" that is
 * a process in a network namespace of ours (the veth topology of test-shield-netns.c, dnsmasq in
 * the server netns as the host's resolver): the shield bundle is prepared and applied through
 * the plugin, the daemon finds it on its rescan, attaches and schedules the shield's DNS refresh.
 * Nobody calls refresh by hand: when dnsmasq's answer changes, the new address connects within
 * seconds and the old one is refused once its element times out. Also: a blocked event names a
 * domain allowed live after the daemon attached (and its new address after a re-resolution),
 * a refresh of a corrupt or vanished bundle is logged once while the daemon keeps serving, and
 * refreshes stop when the container does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shield/harness.h"
#include "store.h"
#include "terok-test.h"

#define SRV "198.51.100.2"
#define OTHER "198.51.100.3"
#define MOVED "198.51.100.4"
#define CTR "ctr"

static shield_h h;
static topo t;
static pid_t dnsmasq = -1;
static int daemon_pid;
static char sock_path[100];

static const int ports[] = {8090, 8091, 8092, 0};

static void start_dnsmasq(const char *hosts)
{
    dnsmasq = topo_dnsmasq(&t, SRV, test_write_file("hosts", hosts, 0644));
    cr_assert(dnsmasq > 0, "dnsmasq did not come up");
}

/* The answers change: dnsmasq re-reads --addn-hosts on SIGHUP. */
static void dns_change(const char *hosts)
{
    test_write_file("hosts", hosts, 0644);
    kill(dnsmasq, SIGHUP);
}

static void prep_apply(const char *const *allow)
{
    static const char *const none[] = {NULL};
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = CTR,
                               .profiles = none,
                               .allow = allow,
                               .dns_resolver = SRV};
    terok_shield_prepared out = {.struct_size = sizeof out};
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->prepare(h.state, &pol, &out, &err), &err);
    terok_assert_ok(h.ops->apply(h.state, out.bundle_path, t.container, &err), &err);
    free(out.bundle_path);
    for (char **a = out.annotations; a && *a; a++)
        free(*a);
    free(out.annotations);
}

static void setup(void)
{
    char conf[2048], sd[4096];
    const char *msg;
    store *st = NULL;
    terok_error err = TEROK_ERROR_INIT;
    container_rec rec = {
        .name = CTR, .image = "img", .runtime = "podman", .spec_json = "{}", .created_at = 1};
    const char *allow[] = {"svc.example.test:8090", NULL};
    /* the plugin's config as the daemon reads it: TTL 2 s from dnsmasq, floor 1 s */
    const char *cfg[] = {"dns-server=" SRV, "dns-ttl-floor=1000", "dns-ttl-ceiling=3000",
                         "event-dedup=30000", NULL};
    cli_result r;

    if (geteuid() != 0)
        cr_skip_test("needs root (network namespaces)");
    if (access("/usr/sbin/dnsmasq", X_OK) != 0)
        cr_skip_test("needs dnsmasq (scripts/setup-host.sh installs dnsmasq-base)");
    test_tmpdir_setup();
    cr_assert(getenv("TEROK_TEST_PLUGIN_DIR"), "run through meson test");
    cr_assert_eq(topo_up(&t, 0), 0, "topology");
    cr_assert_eq(topo_servers(&t, ports), 0, "servers");
    start_dnsmasq("198.51.100.2 svc.example.test\n198.51.100.3 new.example.test\n");
    /* The host (this process, the daemon it starts) resolves through the test resolver. */
    cr_assert_eq(topo_enter_server(&t), 0);
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\nbackend = nft\n"
             "[shield.nft]\ndns-server = " SRV "\ndns-ttl-floor = 1s\ndns-ttl-ceiling = 3s\n"
             "event-dedup = 30s\ndefault-profiles =\n",
             getenv("TEROK_TEST_PLUGIN_DIR"));
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    terok_assert_ok(store_open(test_path("state"), &st, &err), &err);
    terok_assert_ok(store_container_add(st, &rec, &err), &err);
    store_close(st);
    /* The bundle where the daemon's shield looks for it: <state>/shield-nft. */
    snprintf(sd, sizeof sd, "%s/state/shield-nft", test_tmp);
    cr_assert_eq(sh_load(&h, sd, cfg, &msg), 0, "load: %s", msg);
    prep_apply(allow);
    r = TEST_CLI("clearance", "serve", "--json");
    cr_assert_eq(r.exit_code, 0, "clearance serve: %s", r.err);
    {
        json_object *o = json_tokener_parse(r.out), *p = NULL;

        cr_assert(o && json_object_object_get_ex(o, "pid", &p), "%s", r.out);
        daemon_pid = json_object_get_int(p);
        json_object_put(o);
    }
    cli_result_done(&r);
    snprintf(sock_path, sizeof sock_path, "%s/run/clearance.ctl", test_tmp);
}

static void teardown(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGTERM);
        for (int i = 0; i < 250 && test_pid_alive(daemon_pid); i++)
            usleep(20000);
        if (test_pid_alive(daemon_pid))
            kill(daemon_pid, SIGKILL);
    }
    daemon_pid = 0;
    sh_unload(&h);
    if (dnsmasq > 0)
        kill_wait(dnsmasq);
    dnsmasq = -1;
    topo_down(&t);
    test_tmpdir_teardown();
}

TestSuite(clearance_dns, .init = setup, .fini = teardown, .timeout = 120);

static json_object *req(const char *text)
{
    static char in[70000];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct pollfd p;
    json_object *o;
    ssize_t n;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s: %s", sock_path,
                 strerror(errno));
    cr_assert_eq(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the daemon did not answer within 5 s");
    n = recv(fd, in, sizeof in - 1, 0);
    close(fd);
    cr_assert_gt(n, 0, "the daemon closed the connection");
    in[n] = 0;
    o = json_tokener_parse(in);
    cr_assert(o, "the reply is not JSON: %s", in);
    return o;
}

static int64_t get_int(json_object *o, const char *key, int64_t def)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : def;
}

/* The container's entry in `status` (NULL: not attached). *ret_status to put. */
typedef struct ctr_status {
    bool attached;
    int64_t refreshes, failures, next_ms; /* next_ms -1: no timer */
} ctr_status;

static ctr_status status(void)
{
    json_object *o = req("{\"op\":\"status\"}"), *arr = NULL, *ok = NULL;
    ctr_status s = {.next_ms = -1};

    cr_assert(json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok), "%s",
              json_object_to_json_string(o));
    cr_assert(json_object_object_get_ex(o, "attached", &arr));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i), *n = NULL;

        if (!json_object_object_get_ex(c, "container", &n) ||
            strcmp(json_object_get_string(n), CTR) != 0)
            continue;
        s.attached = true;
        s.refreshes = get_int(c, "refreshes", 0);
        s.failures = get_int(c, "refresh_failures", 0);
        s.next_ms = get_int(c, "next_refresh_ms", -1);
    }
    json_object_put(o);
    return s;
}

/* Attached and refreshed at least `n` times, within timeout_ms. */
static ctr_status wait_refreshes(int64_t n, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    ctr_status s;

    do {
        s = status();
        if (s.attached && s.refreshes >= n)
            return s;
        usleep(50000);
    } while (mono_ms() < end);
    cr_assert_fail("the daemon did not refresh '%s' %lld time(s) within %d ms (attached %d, "
                   "refreshes %lld, failures %lld)",
                   CTR, (long long)n, timeout_ms, s.attached, (long long)s.refreshes,
                   (long long)s.failures);
    return s;
}

static bool refused(int e)
{
    return e != 0 && e != ETIMEDOUT;
}

#define ALLOWED(ip, port)                                                                          \
    cr_assert_eq(probe_connect(t.container, ip, port, 2000), 0, "%s:%d should answer", ip, port)
#define REFUSED(ip, port)                                                                          \
    do {                                                                                           \
        int _e = probe_connect(t.container, ip, port, 2000);                                       \
        cr_assert(refused(_e), "%s:%d should be refused, got %d (%s)", ip, port, _e,               \
                  strerror(_e));                                                                   \
    } while (0)

Test(clearance_dns, daemon_follows_dns_change_without_manual_refresh)
{
    ctr_status s = wait_refreshes(1, 5000);
    int64_t t0, t_new, t_old = -1, before;
    int e;

    /* 80 % of the 2 s TTL */
    s = status();
    cr_assert(s.next_ms >= 0 && s.next_ms <= 1600, "next refresh in %lld ms", (long long)s.next_ms);
    ALLOWED(SRV, 8090);
    REFUSED(MOVED, 8090);
    before = s.refreshes;
    {
        cli_result r = TEST_CLI("clearance", "status");

        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cr_assert(strstr(r.out, CTR) && strstr(r.out, " in "), "%s", r.out);
        cr_assert(strstr(r.out, "watching 1 container(s)") && !strstr(r.out, "not shown"), "%s",
                  r.out);
        cr_log_info("clearance status:\n%s", r.out);
        cli_result_done(&r);
    }

    dns_change("198.51.100.4 svc.example.test\n198.51.100.3 new.example.test\n");
    t0 = mono_ms();
    /* the new address: once the answer's TTL ran out of dnsmasq's and a refresh ran */
    while ((e = probe_connect(t.container, MOVED, 8090, 1000)) != 0 && mono_ms() - t0 < 8000)
        usleep(100000);
    cr_assert_eq(e, 0, "%s:8090 not allowed 8 s after the DNS change (%s)", MOVED, strerror(e));
    t_new = mono_ms() - t0;
    /* the old address: no longer re-added, its element times out (TTL 2 s) */
    while (mono_ms() - t0 < 10000) {
        if (refused(probe_connect(t.container, SRV, 8090, 1000))) {
            t_old = mono_ms() - t0;
            break;
        }
        usleep(100000);
    }
    cr_assert_geq(t_old, 0, "%s:8090 still answers 10 s after the DNS change", SRV);
    cr_log_info("DNS change -> new address allowed in %lld ms, old refused in %lld ms",
                (long long)t_new, (long long)t_old);
    /* and stays so: the refreshes go on, the new address with them */
    usleep(2500 * 1000);
    ALLOWED(MOVED, 8090);
    REFUSED(SRV, 8090);
    s = status();
    cr_assert_geq(s.refreshes - before, 2, "refreshes: %lld, then %lld", (long long)before,
                  (long long)s.refreshes);
    cr_assert_eq(s.failures, 0);
}

/* The pending request for ip:port, waiting up to 3 s; its domain ("" when none) into dom. */
static void pending_domain(const char *ip, int port, char *dom, size_t len)
{
    int64_t end = mono_ms() + 3000;

    do {
        json_object *o = req("{\"op\":\"pending\",\"container\":\"" CTR "\"}"), *arr = NULL;

        cr_assert(json_object_object_get_ex(o, "pending", &arr), "%s",
                  json_object_to_json_string(o));
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *p = json_object_array_get_idx(arr, i), *d = NULL, *dm = NULL;

            if (!json_object_object_get_ex(p, "dest", &d) ||
                strcmp(json_object_get_string(d), ip) != 0 || get_int(p, "port", 0) != port)
                continue;
            snprintf(dom, len, "%s",
                     json_object_object_get_ex(p, "domain", &dm) ? json_object_get_string(dm) : "");
            json_object_put(o);
            return;
        }
        json_object_put(o);
        usleep(50000);
    } while (mono_ms() < end);
    cr_assert_fail("no pending request for %s:%d within 3 s", ip, port);
}

Test(clearance_dns, event_names_domain_allowed_live_and_its_new_address)
{
    terok_error err = {0, NULL};
    char dom[300];
    ctr_status s;

    wait_refreshes(1, 5000);
    /* Allowed live after the daemon attached (the way `shield allow` does, another process):
     * a connect to another port is blocked, and the event knows the domain. */
    terok_assert_ok(h.ops->allow(h.state, CTR, "new.example.test:8090", 0, &err), &err);
    ALLOWED(OTHER, 8090);
    REFUSED(OTHER, 8091);
    pending_domain(OTHER, 8091, dom, sizeof dom);
    cr_assert_str_eq(dom, "new.example.test");
    /* Re-resolved by the daemon to a new address: events there name it too. */
    s = status();
    dns_change("198.51.100.2 svc.example.test\n198.51.100.4 new.example.test\n");
    wait_refreshes(s.refreshes + 2, 6000);
    {
        int64_t end = mono_ms() + 6000;

        while (probe_connect(t.container, MOVED, 8090, 1000) != 0 && mono_ms() < end)
            usleep(100000);
    }
    ALLOWED(MOVED, 8090);
    REFUSED(MOVED, 8092);
    pending_domain(MOVED, 8092, dom, sizeof dom);
    cr_assert_str_eq(dom, "new.example.test");
}

static int count_in_log(const char *needle)
{
    FILE *f = fopen(test_path("state/logs/clearance.log"), "re");
    char line[4096];
    int n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void wait_log(const char *needle, int n, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    char line[4096];
    FILE *f;

    while (count_in_log(needle) < n && mono_ms() < end)
        usleep(100000);
    cr_assert_geq(count_in_log(needle), n, "'%s' not logged %d time(s) within %d ms", needle, n,
                  timeout_ms);
    /* what the operator reads */
    f = fopen(test_path("state/logs/clearance.log"), "re");
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, needle))
            cr_log_info("daemon log: %s", line);
    if (f)
        fclose(f);
}

Test(clearance_dns, refresh_of_corrupt_or_missing_bundle_is_logged_daemon_keeps_serving)
{
    const char *failed = "DNS refresh of 'ctr' failed";
    char bj[4096], *good;
    ctr_status s;
    FILE *f;
    long n;

    wait_refreshes(1, 5000);
    snprintf(bj, sizeof bj, "%s/state/shield-nft/containers/" CTR "/shield/shield.json", test_tmp);
    f = fopen(bj, "re");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    good = calloc(1, (size_t)n + 1);
    cr_assert(good && fread(good, 1, (size_t)n, f) == (size_t)n);
    fclose(f);

    /* Corrupt: the next refresh (at once: the bundle changed) fails, logged with the reason. */
    test_write_file("state/shield-nft/containers/" CTR "/shield/shield.json", "{\"format\": 7",
                    0600);
    wait_log(failed, 1, 5000);
    s = status();
    cr_assert(s.attached && s.failures >= 1, "still attached, failure counted");
    {
        cli_result r = TEST_CLI("clearance", "status");

        cr_assert_eq(r.exit_code, 0, "%s", r.err);
        cr_assert(strstr(r.out, "DNS REFRESH") && strstr(r.out, "failing ("), "%s", r.out);
        cli_result_done(&r);
    }
    /* Retried (5 s) but not logged again. */
    {
        int64_t end = mono_ms() + 8000;

        while ((s = status()).failures < 2 && mono_ms() < end)
            usleep(100000);
    }
    cr_assert_geq(s.failures, 2, "retried");
    cr_assert_eq(count_in_log(failed), 1, "a failure is logged once until it works again");
    /* Repaired: the change is seen on the next rescan, before the backoff (10 s) ran out. */
    test_write_file("state/shield-nft/containers/" CTR "/shield/shield.json", good, 0600);
    free(good);
    wait_log("DNS refresh of 'ctr' works again", 1, 4000);
    s = status();
    cr_assert_eq(s.failures, 0);
    ALLOWED(SRV, 8090);

    /* Gone: the bundle directory removed under the daemon. */
    {
        char dir[4096];
        const char *rm[] = {"rm", "-rf", dir, NULL};

        snprintf(dir, sizeof dir, "%s/state/shield-nft/containers/" CTR "/shield", test_tmp);
        cr_assert_eq(sh_run(rm, NULL, 0), 0);
    }
    wait_log(failed, 2, 5000);
    s = status(); /* still serving */
    cr_assert(daemon_pid > 0 && test_pid_alive(daemon_pid));
    kill(daemon_pid, SIGTERM);
    for (int i = 0; i < 250 && test_pid_alive(daemon_pid); i++)
        usleep(20000);
    cr_assert(!test_pid_alive(daemon_pid), "the daemon exits on SIGTERM");
    daemon_pid = 0;
}

static int64_t bundle_mtime_ns(void)
{
    char bj[4096];
    struct stat st;

    snprintf(bj, sizeof bj, "%s/state/shield-nft/containers/" CTR "/shield/shield.json", test_tmp);
    cr_assert_eq(stat(bj, &st), 0, "%s: %s", bj, strerror(errno));
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

Test(clearance_dns, refreshes_stop_when_the_container_stops)
{
    int64_t end, m;
    ctr_status s;

    wait_refreshes(2, 6000);
    /* The container's process goes (a zombie until teardown reaps it: the pidfd fires). */
    kill(t.container, SIGKILL);
    end = mono_ms() + 3000;
    while ((s = status()).attached && mono_ms() < end)
        usleep(50000);
    cr_assert(!s.attached, "still attached 3 s after the container stopped");
    /* A refresh rewrites the bundle: none for 3 s (the interval was 1.6 s), no failure logged. */
    usleep(300 * 1000); /* a child started just before the detach finishes */
    m = bundle_mtime_ns();
    usleep(3000 * 1000);
    cr_assert_eq(bundle_mtime_ns(), m, "the bundle was refreshed after the container stopped");
    cr_assert_eq(count_in_log("DNS refresh of 'ctr' failed"), 0);
}
