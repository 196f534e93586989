/* SPDX-License-Identifier: Apache-2.0 */
/* shield-bench.c: shield-nft against its baseline, same run, medians (bench/shield runs it).
 *  1. apply: the plugin's apply (what the OCI hook calls) into a fresh netns vs a bare
 *     `nft -f` of the same rendered ruleset into a fresh netns, at 10, 1,000, 10,000 entries;
 *  2. live allow: allow op -> first successful connect from the container netns;
 *  3. blocked packet -> NFLOG event delivered by events_dispatch, and -> audit row written by
 *     the clearance daemon (`terok-sandbox clearance serve`, what `shield logs` reads). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shield/harness.h"

static int runs = 11;
static char tmp[] = "/tmp/shield-bench.XXXXXX";

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* CPU time (user + system) of this process and its reaped children, in ms. */
static double cpu_ms(void)
{
    struct rusage a, b;

    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) *
               1e3 +
           (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
                    b.ru_stime.tv_usec) /
               1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const terok_error *err)
{
    fprintf(stderr, "shield-bench: %s: %s\n", what, err && err->message ? err->message : "");
    exit(1);
}

/* A process alone in a fresh network namespace: the "container". Like a real container's
 * init it is its own program (exec'd), not a fork of the caller that shares the caller's pages
 * copy-on-write: a paused fork would charge every later write of the benchmark process (and so
 * of the plugin's apply running in it) a page copy that no OCI hook pays. */
static pid_t fresh_netns(void)
{
    int p[2];
    char c;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        die("pipe", NULL);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (unshare(CLONE_NEWNET) == 0)
            execl("/bin/sleep", "sleep", "infinity", (char *)NULL);
        (void)!write(p[1], "x", 1);
        _exit(1);
    }
    close(p[1]);
    /* EOF: the exec closed the pipe, the namespace is in place */
    if (read(p[0], &c, 1) != 0)
        die("fresh netns", NULL);
    close(p[0]);
    return pid;
}

static char **targets(int n)
{
    char **l = calloc((size_t)n + 1, sizeof(char *));

    for (int i = 0; i < n; i++) {
        int b = (i / 240) % 250, c = i % 240;
        int r;

        switch (i % 4) {
        case 0:
            r = asprintf(&l[i], "11.%d.%d.%d", b, c, 1 + i % 7);
            break;
        case 1:
            r = asprintf(&l[i], "111.%d.%d.0/24", b, c);
            break;
        case 2:
            r = asprintf(&l[i], "61.%d.%d.%d:%d", b, c, 1 + i % 7, 1 + i % 1000);
            break;
        default:
            r = asprintf(&l[i], "2001:db8:%x::%x", i / 65536 + 1, i % 65536 + 1);
        }
        if (r < 0)
            die("asprintf", NULL);
    }
    return l;
}

static const char *const none[] = {NULL};

static char *prepare(shield_h *h, const char *name, const char *const *allow)
{
    terok_shield_policy pol = {.struct_size = sizeof pol,
                               .container = name,
                               .profiles = none,
                               .allow = allow,
                               .dns_resolver = "198.51.100.2"};
    terok_shield_prepared out = {.struct_size = sizeof out};
    terok_error err = {0, NULL};
    char *path;

    if (h->ops->prepare(h->state, &pol, &out, &err) < 0)
        die("prepare", &err);
    path = out.bundle_path;
    for (char **a = out.annotations; a && *a; a++)
        free(*a);
    free(out.annotations);
    return path;
}

/* The bundle's rendered ruleset, as prepare stored it: the very text bare nft -f loads. */
static void ruleset_file(const char *bundle, char *file, size_t n)
{
    snprintf(file, n, "%s/ruleset.nft", bundle);
}

static double bare_nft(pid_t ctr, const char *file)
{
    double t0 = now_ms();
    pid_t c = fork();
    int st;

    if (c == 0) {
        char path[64];
        int fd, null = open("/dev/null", O_WRONLY);

        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)ctr);
        fd = open(path, O_RDONLY);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            _exit(126);
        dup2(null, 1);
        execl("/usr/sbin/nft", "nft", "-f", file, (char *)NULL);
        _exit(127);
    }
    waitpid(c, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("bare nft -f failed", NULL);
    return now_ms() - t0;
}

static void bench_apply(shield_h *h)
{
    static const int sizes[] = {10, 1000, 10000};

    printf("apply into a fresh netns (median of %d)\n", runs);
    printf("  %-8s %12s %12s %8s   %s\n", "entries", "plugin ms", "nft -f ms", "ratio",
           "(cpu ms: plugin / nft -f)");
    for (size_t s = 0; s < 3; s++) {
        char name[32], file[4200];
        char **t = targets(sizes[s]);
        char *bundle;
        double ours[64], base[64], cours[64], cbase[64];

        snprintf(name, sizeof name, "bench%d", sizes[s]);
        bundle = prepare(h, name, (const char *const *)t);
        ruleset_file(bundle, file, sizeof file);
        for (int i = 0; i < runs; i++) {
            pid_t a = fresh_netns(), b = fresh_netns();

            /* alternate which goes first: the first into a fresh netns pays for what the
             * kernel sets up once (caches, nf_tables state) */
            if (i % 2) {
                double c0 = cpu_ms();
                base[i] = bare_nft(b, file);
                cbase[i] = cpu_ms() - c0;
            }
            {
                terok_error err = {0, NULL};
                double c0 = cpu_ms(), t0 = now_ms();

                if (h->ops->apply(h->state, bundle, a, &err) < 0)
                    die("apply", &err);
                ours[i] = now_ms() - t0;
                cours[i] = cpu_ms() - c0;
            }
            if (!(i % 2)) {
                double c0 = cpu_ms();
                base[i] = bare_nft(b, file);
                cbase[i] = cpu_ms() - c0;
            }
            kill_wait(a);
            kill_wait(b);
        }
        double mo = median(ours, runs), mb = median(base, runs);
        printf("  %-8d %12.2f %12.2f %7.2fx  %-22s (%.1f / %.1f)\n", sizes[s], mo, mb, mo / mb,
               mo <= mb ? "ok (target <= 1.0x)" : "MISSES target <= 1.0x", median(cours, runs),
               median(cbase, runs));
        for (int i = 0; i < sizes[s]; i++)
            free(t[i]);
        free(t);
        free(bundle);
    }
}

static int noop_event(void *ud, const terok_shield_event *ev)
{
    (void)ud;
    (void)ev;
    return 0;
}

/* ---- through the clearance daemon ---- */

static int cli_run(const char *const *argv)
{
    pid_t c = fork();
    int st;

    if (c == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int64_t blocked_rows(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM shield_events WHERE kind = 'blocked'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Blocked connect -> the row `shield logs` shows, written by the daemon: the daemon runs as the
 * operator would have it (`clearance serve`), on a state dir whose shield bundle is the one this
 * benchmark applied, with a store record for the container. */
static void bench_daemon(topo *t)
{
    const char *cli = getenv("SHIELD_BENCH_CLI");
    char conf[4300], dbp[4300], env[4400], *plugdir = getenv("SHIELD_BENCH_PLUGIN_DIR");
    double lat[64];
    sqlite3 *db = NULL;
    FILE *f;

    if (!cli || !plugdir) {
        printf("blocked connect -> audit row via the clearance daemon: skipped "
               "(SHIELD_BENCH_CLI or SHIELD_BENCH_PLUGIN_DIR unset)\n");
        return;
    }
    snprintf(conf, sizeof conf, "%s/sandbox.conf", tmp);
    f = fopen(conf, "we");
    if (!f)
        die("config", NULL);
    fprintf(f, "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\nbackend = nft\n",
            plugdir);
    fclose(f);
    setenv("TEROK_SANDBOX_CONFIG", conf, 1);
    snprintf(env, sizeof env, "%s/sb", tmp);
    setenv("TEROK_SANDBOX_STATE_DIR", env, 1);
    snprintf(env, sizeof env, "%s/run", tmp);
    setenv("TEROK_SANDBOX_RUNTIME_DIR", env, 1);
    if (cli_run((const char *[]){cli, "clearance", "serve", NULL}) != 0)
        die("clearance serve", NULL);
    snprintf(dbp, sizeof dbp, "%s/sb/state.db", tmp);
    if (sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die("opening the state store", NULL);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db,
                     "INSERT INTO containers(name, image, runtime, spec_json, created_at)"
                     " VALUES ('live', 'bench', 'null', '{}', 0)",
                     NULL, NULL, NULL) != SQLITE_OK)
        die("recording the container", NULL);
    /* the daemon's rescan (every second) attaches to it */
    for (int i = 0; i < 50; i++) {
        int64_t before = blocked_rows(db);
        double t0 = now_ms();

        if (probe_connect(t->container, "198.51.100.2", 40000 + i, 1000) == 0)
            die("blocked port answered", NULL);
        while (blocked_rows(db) == before && now_ms() - t0 < 200)
            usleep(500);
        if (blocked_rows(db) > before)
            break;
        if (i == 49)
            die("the clearance daemon never recorded an event", NULL);
    }
    for (int i = 0; i < runs; i++) {
        int64_t before = blocked_rows(db);
        double t0 = now_ms();

        if (probe_connect(t->container, "198.51.100.2", 30000 + i, 1000) == 0)
            die("blocked port answered", NULL);
        while (blocked_rows(db) == before && now_ms() - t0 < 2000)
            usleep(250);
        lat[i] = now_ms() - t0;
    }
    sqlite3_close(db);
    cli_run((const char *[]){cli, "clearance", "stop", NULL});
    double m = median(lat, runs);
    printf("blocked connect -> audit row via the clearance daemon: median %.2f ms "
           "(target <= 20 ms) %s\n",
           m, m <= 20 ? "ok" : "MISSES");
}

static void bench_live(shield_h *h)
{
    static const int ports[] = {8090, 8091, 0};
    const char *allow[] = {"198.51.100.2:8090", NULL};
    double lat[64], ev[64];
    topo t;
    char *bundle;
    terok_error err = {0, NULL};
    int fd;

    if (topo_up(&t, 0) < 0 || topo_servers(&t, ports) < 0)
        die("topology", NULL);
    bundle = prepare(h, "live", allow);
    if (h->ops->apply(h->state, bundle, t.container, &err) < 0)
        die("apply", &err);
    for (int i = 0; i < runs; i++) {
        double t0;

        if (h->ops->deny(h->state, "live", "198.51.100.2:8091", &err) < 0)
            die("deny", &err);
        if (probe_connect(t.container, "198.51.100.2", 8091, 1000) == 0)
            die("deny did not take", NULL);
        t0 = now_ms();
        if (h->ops->allow(h->state, "live", "198.51.100.2:8091", 0, &err) < 0)
            die("allow", &err);
        if (probe_connect(t.container, "198.51.100.2", 8091, 1000) != 0)
            die("allow did not take", NULL);
        lat[i] = now_ms() - t0;
    }
    double ml = median(lat, runs);
    printf("live allow -> first successful connect: median %.2f ms (target <= 20 ms) %s\n", ml,
           ml <= 20 ? "ok" : "MISSES");

    if (h->ops->events_fd(h->state, "live", &fd, &err) < 0)
        die("events_fd", &err);
    for (int i = 0; i < runs; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        double t0 = now_ms();
        int got = 0;

        /* A new port each time: the event source deduplicates per destination. */
        if (probe_connect(t.container, "198.51.100.2", 20000 + i, 1000) == 0)
            die("blocked port answered", NULL);
        while (!got && poll(&p, 1, 2000) > 0) {
            got = h->ops->events_dispatch(h->state, "live", noop_event, NULL, &err) > 0;
        }
        ev[i] = got ? now_ms() - t0 : 2000;
    }
    double me = median(ev, runs);
    printf("blocked connect -> NFLOG event: median %.2f ms (target <= 20 ms) %s\n", me,
           me <= 20 ? "ok" : "MISSES");
    {
        /* the daemon binds the container's NFLOG group itself: let go of ours */
        terok_shield_ctl_events a = {.struct_size = sizeof a, .container = "live"};

        if (h->ops->ctl(h->state, TEROK_SHIELD_CTL_EVENTS_CLOSE, &a, &err) < 0)
            die("events close", &err);
    }
    bench_daemon(&t);
    free(bundle);
    topo_down(&t);
}

int main(int argc, char **argv)
{
    shield_h h;
    const char *msg;
    char sd[256];

    if (argc > 1) {
        char *end;
        long v = strtol(argv[1], &end, 10);

        if (*end || v < 1 || v > 63) {
            fprintf(stderr, "usage: shield-bench [RUNS (1-63)]\n");
            return 2;
        }
        runs = (int)v;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "shield-bench: needs root (network namespaces)\n");
        return 77;
    }
    if (!mkdtemp(tmp))
        die("mkdtemp", NULL);
    /* the plugin's state dir as the registry names it (<state>/shield-nft), so the clearance
     * daemon on <tmp>/sb finds the bundles */
    snprintf(sd, sizeof sd, "%s/sb/shield-nft", tmp);
    SH_RUN("mkdir", "-p", sd);
    if (sh_load(&h, sd, (const char *[]){"event-dedup=0", NULL}, &msg) < 0) {
        fprintf(stderr, "shield-bench: %s\n", msg);
        return 1;
    }
    bench_apply(&h);
    bench_live(&h);
    sh_unload(&h);
    if (getenv("SHIELD_BENCH_KEEP"))
        printf("kept %s\n", tmp);
    else
        SH_RUN("rm", "-rf", tmp);
    return 0;
}
