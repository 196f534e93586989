/* SPDX-License-Identifier: Apache-2.0 */
/* test-podman-hardening.c: what the container itself sees when the spec asks for hardening (and
 * when the operator relaxed it), terok-init as PID 1 (signals, zombies, the TCP->unix bridge),
 * 10 concurrent launches, and recovery after the Podman service is killed mid-operation. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "podman-it.h"
#include "terok-test.h"

TestSuite(podman_hardening, .init = it_setup, .fini = it_teardown, .timeout = 240);

static const char *probe_script =
    "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
    "touch /x 2>/dev/null && echo root=rw || echo root=ro; "
    "touch /tmp/x && echo tmp=rw; "
    "echo uidmap=$(head -n1 /proc/self/uid_map | tr -s ' '); "
    "echo id=$(id -u); "
    "echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max); "
    "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
    "cat /sys/fs/cgroup/memory.max)";

static bool has_line(const char *out, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = out; (p = strstr(p, line)); p += n)
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
            return true;
    return false;
}

static int ignore_container(void *ud, const terok_container_info *i)
{
    return 0;
}

Test(podman_hardening, hardened_as_seen_from_inside)
{
    const char *argv[] = {"sh", "-c", probe_script, NULL};
    terok_mount tmpfs = {.type = TEROK_MOUNT_TMPFS, .target = "/tmp", .options = "size=8m"};
    it_spec sp;
    it_output o;
    char want[64];

    it_spec_init(&sp, "hard", argv);
    it_harden(&sp);
    sp.s.mounts = &tmpfs;
    sp.s.n_mounts = 1;
    cr_assert_eq(it_run(&sp.s, &o, NULL), 0, "%s", o.all);
    cr_assert(has_line(o.out, "CapEff:\t0000000000000000"), "%s", o.out);
    cr_assert(has_line(o.out, "CapBnd:\t0000000000000000"), "%s", o.out);
    cr_assert(has_line(o.out, "NoNewPrivs:\t1"), "%s", o.out);
    cr_assert(has_line(o.out, "Seccomp:\t2"), "%s", o.out);
    cr_assert(has_line(o.out, "root=ro"), "%s", o.out);
    cr_assert(has_line(o.out, "tmp=rw"), "%s", o.out);
    /* a user namespace, not the host's identity map */
    cr_assert(!has_line(o.out, "uidmap= 0 0 4294967295") &&
                  !has_line(o.out, "uidmap=0 0 4294967295"),
              "%s", o.out);
    if (rootless) {
        /* keep-id: the operator's own uid inside */
        snprintf(want, sizeof want, "id=%u", (unsigned)getuid());
        cr_assert(has_line(o.out, want), "%s", o.out);
    } else {
        /* auto: container root is a high subordinate id on the host */
        cr_assert(has_line(o.out, "id=0"), "%s", o.out);
        {
            const char *u = strstr(o.out, "uidmap=");
            unsigned long inside = 1, outside = 0;
            cr_assert(u && sscanf(u + 7, "%lu %lu", &inside, &outside) == 2, "%s", o.out);
            cr_assert(inside == 0 && outside >= 2147483647UL, "%s", o.out);
        }
        /* cgroup v1 rootless ignores limits (podman warns); rootful applies them */
        cr_assert(has_line(o.out, "pids=128"), "%s", o.out);
        cr_assert(has_line(o.out, "mem=67108864"), "%s", o.out);
    }
}

/* The core gives every container an anonymous volume at /workspace; the test image has a
 * root-owned /workspace, which Podman 4.3 copies onto a fresh anonymous volume's owner. The
 * task's uid (keep-id: the operator's) must still be able to write there, and removing the
 * container removes the volume. */
static int count_anon_volumes(const char *name)
{
    char filter[160];
    const char *argv[] = {"podman", "volume", "ls", "-q", "--filter", filter, NULL};
    cli_result r;
    int n = 0;

    snprintf(filter, sizeof filter, "label=io.terok.anonymous-volume=%s", name);
    r = test_run(NULL, argv);
    cr_assert_eq(r.exit_code, 0, "podman volume ls: %s", r.err);
    for (const char *c = r.out; c && *c; c++)
        n += *c == '\n';
    cli_result_done(&r);
    return n;
}

Test(podman_hardening, workspace_writable_by_the_task)
{
    const char *argv[] = {"sh", "-c",
                          "echo id=$(id -u); touch /workspace/f && echo ws=rw; "
                          "echo owner=$(stat -c %u /workspace/f)",
                          NULL};
    terok_mount ms[] = {
        {.type = TEROK_MOUNT_TMPFS, .target = "/tmp", .options = "size=8m"},
        {.type = TEROK_MOUNT_VOLUME, .target = "/workspace"}, /* anonymous, as the core adds */
    };
    it_spec sp;
    it_output o;
    char *id = NULL;
    char want[64];

    it_spec_init(&sp, "workspace", argv);
    it_harden(&sp);
    sp.s.mounts = ms;
    sp.s.n_mounts = 2;
    cr_assert_eq(it_run(&sp.s, &o, &id), 0, "%s", o.all);
    snprintf(want, sizeof want, "id=%u", rootless ? (unsigned)getuid() : 0u);
    cr_assert(has_line(o.out, want), "%s", o.out);
    cr_assert(has_line(o.out, "ws=rw"), "%s", o.all);
    snprintf(want, sizeof want, "owner=%u", rootless ? (unsigned)getuid() : 0u);
    cr_assert(has_line(o.out, want), "%s", o.out);
    if (rootless)
        cr_assert_eq(count_anon_volumes(sp.name), 1);
    IT_OK(ops->remove(st, id, TEROK_REMOVE_FORCE | TEROK_REMOVE_VOLUMES, &err));
    harness_free(id);
    cr_assert_eq(count_anon_volumes(sp.name), 0);
}

Test(podman_hardening, relaxations_are_executed)
{
    const char *argv[] = {"sh", "-c", probe_script, NULL};
    it_spec sp;
    it_output o;

    it_spec_init(&sp, "relaxed", argv);
    sp.s.flags = 0; /* the operator cleared every hardening bit */
    it_run(&sp.s, &o, NULL);
    cr_assert(!has_line(o.out, "CapEff:\t0000000000000000"), "%s", o.out);
    cr_assert(has_line(o.out, "NoNewPrivs:\t0"), "%s", o.out);
    cr_assert(has_line(o.out, "Seccomp:\t0"), "%s", o.out);
    cr_assert(has_line(o.out, "root=rw"), "%s", o.out);
}

Test(podman_hardening, init_exit_code_and_zombies)
{
    /* an orphaned grandchild exits and must be reaped by PID 1 */
    const char *argv[] = {"/run/terok-init",
                          "--",
                          "sh",
                          "-c",
                          "(sleep 0.2 &); sleep 1; "
                          "echo pid1=$(cat /proc/1/comm); "
                          "echo zombies=$(ps -o stat | grep -c '^Z'); exit 7",
                          NULL};
    terok_mount m = it_init_mount();
    it_spec sp;
    it_output o;

    it_spec_init(&sp, "initz", argv);
    it_harden(&sp);
    sp.s.mounts = &m;
    sp.s.n_mounts = 1;
    cr_assert_eq(it_run(&sp.s, &o, NULL), 7, "%s", o.all);
    cr_assert(has_line(o.out, "pid1=terok-init"), "%s", o.out);
    cr_assert(has_line(o.out, "zombies=0"), "%s", o.out);
}

Test(podman_hardening, init_forwards_sigterm_to_trap)
{
    const char *argv[] = {"/run/terok-init",
                          "--",
                          "sh",
                          "-c",
                          "trap 'echo child-got-TERM; exit 0' TERM; echo ready; "
                          "while :; do sleep 0.1; done",
                          NULL};
    terok_mount m = it_init_mount();
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};
    it_spec sp;
    it_output o = {0};
    char *id = NULL;
    int code = -1;

    it_spec_init(&sp, "initterm", argv);
    it_harden(&sp);
    sp.s.mounts = &m;
    sp.s.n_mounts = 1;
    IT_OK(ops->create(st, &sp.s, &id, &err));
    IT_OK(ops->start(st, id, &err));
    for (int i = 0; i < 100 && !strstr(o.out, "ready"); i++) {
        usleep(50000);
        memset(&o, 0, sizeof o);
        IT_OK(ops->logs(st, id, &lo, it_output_cb, &o, &err));
    }
    IT_OK(ops->stop(st, id, 10, &err));
    IT_OK(ops->wait(st, id, 10000, &code, &err));
    memset(&o, 0, sizeof o);
    IT_OK(ops->logs(st, id, &lo, it_output_cb, &o, &err));
    cr_assert(has_line(o.out, "child-got-TERM"), "%s", o.out);
    cr_assert_eq(code, 0);
    harness_free(id);
}

/* Host side of the bridge test: a one-line echo server on a unix socket. */
typedef struct echo_server {
    int fd;
    int served;
} echo_server;

static void *echo_thread(void *arg)
{
    echo_server *e = arg;

    for (;;) {
        char buf[256], reply[300];
        ssize_t n;
        int c = accept4(e->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return NULL;
        n = read(c, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            n = snprintf(reply, sizeof reply, "echo:%s", buf);
            if (write(c, reply, (size_t)n) == n)
                e->served++;
        }
        close(c);
    }
}

Test(podman_hardening, bridge_tcp_to_host_unix_socket)
{
    const char *argv[] = {"/run/terok-init",
                          "-b",
                          "9419=/run/terok/vault.sock",
                          "-b",
                          "9418=/run/terok/gate.sock",
                          "--",
                          "sh",
                          "-c",
                          "echo ping-bridge | nc 127.0.0.1 9419; "
                          "nc 127.0.0.1 9418 </dev/null && echo gate=listening || echo gate=none",
                          NULL};
    terok_mount m[2] = {it_init_mount()};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    echo_server e = {0};
    char dir[80];
    pthread_t t;
    it_spec sp;
    it_output o;

    cr_assert_lt(snprintf(dir, sizeof dir, "%s/sock", tmp), (int)sizeof dir);
    cr_assert_eq(mkdir(dir, 0711), 0);
    cr_assert_eq(chmod(dir, 0711), 0);
    snprintf(a.sun_path, sizeof a.sun_path, "%s/vault.sock", dir);
    e.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(e.fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(chmod(a.sun_path, 0666), 0);
    cr_assert_eq(listen(e.fd, 8), 0);
    cr_assert_eq(pthread_create(&t, NULL, echo_thread, &e), 0);

    m[1] = (terok_mount){
        .type = TEROK_MOUNT_BIND, .flags = TEROK_MOUNT_RO, .source = dir, .target = "/run/terok"};
    it_spec_init(&sp, "bridge", argv);
    it_harden(&sp);
    sp.s.mounts = m;
    sp.s.n_mounts = 2;
    cr_assert_eq(it_run(&sp.s, &o, NULL), 0, "%s", o.all);
    cr_assert(has_line(o.out, "echo:ping-bridge"), "%s", o.all);
    /* no gate.sock on the host: no listener, the connection is refused */
    cr_assert(has_line(o.out, "gate=none"), "%s", o.all);
    cr_assert_eq(e.served, 1);
    shutdown(e.fd, SHUT_RDWR);
    close(e.fd);
}

typedef struct launch {
    int index;
    int r;
    char msg[512];
    char name[96];
} launch;

static void *launch_thread(void *arg)
{
    static const harness_kv cfg[] = {{"service-idle", "60s"}, {NULL, NULL}};
    static const char *const argv[] = {"sleep", "120", NULL};
    launch *l = arg;
    terok_error e = TEROK_ERROR_INIT;
    void *state = NULL;
    char sfx[16], *id = NULL;
    it_spec sp;

    snprintf(sfx, sizeof sfx, "conc%d", l->index);
    it_spec_init(&sp, sfx, argv);
    snprintf(l->name, sizeof l->name, "%s", sp.name);
    sp.s.name = l->name;
    l->r = harness_open(ops, cfg, &state, &e);
    if (l->r >= 0)
        l->r = ops->create(state, &sp.s, &id, &e);
    if (l->r >= 0)
        l->r = ops->start(state, id, &e);
    if (l->r < 0)
        snprintf(l->msg, sizeof l->msg, "%s", terok_error_message(&e));
    terok_error_clear(&e);
    harness_free(id);
    ops->close(state);
    return NULL;
}

Test(podman_hardening, ten_concurrent_launches)
{
    launch l[10];
    pthread_t t[10];
    const char *labels[] = {run_label, NULL};
    terok_list_filter f = {.struct_size = sizeof f, .labels = labels};
    int n = 0;

    for (int i = 0; i < 10; i++) {
        l[i] = (launch){.index = i};
        cr_assert_eq(pthread_create(&t[i], NULL, launch_thread, &l[i]), 0);
    }
    for (int i = 0; i < 10; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 10; i++)
        cr_assert_geq(l[i].r, 0, "launch %d: %s", i, l[i].msg);
    IT_OK(ops->list(st, &f, it_count_cb, &n, &err));
    cr_assert_eq(n, 10);
}

Test(podman_hardening, remove_auto_userns_repeatedly)
{
    /* podman's `unlinkat …/userdata/shm: device or resource busy` counts as removed when the
     * container is gone afterwards */
    static const char *const argv[] = {"sleep", "60", NULL};

    for (int i = 0; i < 5; i++) {
        it_spec sp;
        char sfx[16], *id = NULL;
        snprintf(sfx, sizeof sfx, "rm%d", i);
        it_spec_init(&sp, sfx, argv);
        it_harden(&sp);
        IT_OK(ops->create(st, &sp.s, &id, &err));
        IT_OK(ops->start(st, id, &err));
        IT_OK(ops->remove(st, id, TEROK_REMOVE_FORCE, &err));
        cr_assert_eq(ops->inspect(st, id, NULL, NULL, &err), -ENOENT);
        terok_error_clear(&err);
        harness_free(id);
    }
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;

    if (!f)
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

typedef struct killer {
    char pidfile[512];
    pid_t killed;
} killer;

static void *kill_thread(void *arg)
{
    killer *k = arg;

    usleep(700000);
    k->killed = read_pid(k->pidfile);
    if (k->killed > 0)
        kill(k->killed, SIGKILL);
    return NULL;
}

static int never_stop(void *userdata, const terok_event *ev)
{
    return 0;
}

/* Killed while streaming events: a call that holds no container lock inside Podman, so killing
 * it cannot leave libpod state wedged for the rest of the machine. */
Test(podman_hardening, service_killed_mid_operation_recovers)
{
    static const char *const argv[] = {"true", NULL};
    harness_kv cfg[] = {{"socket", "private"}, {"service-idle", "20s"}, {NULL, NULL}};
    const char *labels[] = {run_label, NULL};
    terok_list_filter f = {.struct_size = sizeof f, .labels = labels};
    char state_dir[300], run_dir[300];
    killer k = {0};
    void *ps = NULL;
    pthread_t t;
    it_spec sp;
    char *id = NULL;
    int code = -1, r;
    pid_t second;

    /* its own private service, so killing it disturbs no other test */
    snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
    snprintf(run_dir, sizeof run_dir, "%s/run", tmp);
    snprintf(k.pidfile, sizeof k.pidfile, "%s/runtime-podman/podman.pid", run_dir);
    harness_set_dirs(state_dir, run_dir);
    IT_OK(harness_open(ops, cfg, &ps, &err));
    IT_OK(ops->list(ps, &f, ignore_container, NULL, &err)); /* starts the service */

    cr_assert_eq(pthread_create(&t, NULL, kill_thread, &k), 0);
    r = ops->events(ps, &f, never_stop, NULL, &err);
    pthread_join(t, NULL);
    cr_assert_gt(k.killed, 0, "no service pid in %s", k.pidfile);
    cr_assert_eq(r, -ECONNRESET, "events returned %d: %s", r, terok_error_message(&err));
    cr_assert(strstr(terok_error_message(&err), "stopped answering"), "%s",
              terok_error_message(&err));
    cr_assert(strstr(terok_error_message(&err), run_dir), "%s", terok_error_message(&err));
    terok_error_clear(&err);

    /* the next calls start a new private service and work */
    it_spec_init(&sp, "svckill", argv);
    IT_OK(ops->create(ps, &sp.s, &id, &err));
    IT_OK(ops->start(ps, id, &err));
    IT_OK(ops->wait(ps, id, 30000, &code, &err));
    cr_assert_eq(code, 0);
    second = read_pid(k.pidfile);
    cr_assert(second > 0 && second != k.killed);
    IT_OK(ops->remove(ps, id, TEROK_REMOVE_FORCE, &err));
    harness_free(id);
    ops->close(ps);
    kill(second, SIGTERM);
}
