/* SPDX-License-Identifier: Apache-2.0 */
/* test-podman-ops.c: every runtime op of runtime-podman against the real Podman service
 * (rootful, and rootless when run as the test user): exit codes, signals through terok-init,
 * exec captured and with a TTY, logs, copy_in, inspect, list, events, image_inspect. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "podman-it.h"

TestSuite(podman, .init = it_setup, .fini = it_teardown, .timeout = 180);

static const char *const sleep_argv[] = {"/run/terok-init", "--", "sleep", "300", NULL};

/* A running container with terok-init as PID 1 (so SIGTERM is forwarded). */
static char *start_sleeper(it_spec *sp, const char *suffix, terok_mount *m)
{
    char *id = NULL;

    *m = it_init_mount();
    it_spec_init(sp, suffix, sleep_argv);
    sp->s.mounts = m;
    sp->s.n_mounts = 1;
    IT_OK(ops->create(st, &sp->s, &id, &err));
    IT_OK(ops->start(st, id, &err));
    return id;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

Test(podman, exit_code_passthrough)
{
    static const char *const argv[] = {"sh", "-c", "echo hello; echo oops >&2; exit 3", NULL};
    it_spec sp;
    it_output o;
    char *id = NULL;

    it_spec_init(&sp, "exit3", argv);
    cr_assert_eq(it_run(&sp.s, &o, &id), 3);
    cr_assert_str_eq(o.out, "hello\n");
    cr_assert_str_eq(o.err, "oops\n");
    /* start of a finished container's twin and remove semantics */
    IT_OK(ops->remove(st, id, 0, &err));
    cr_assert_eq(ops->remove(st, id, 0, &err), -ENOENT);
    cr_assert(strstr(terok_error_message(&err), "no container"), "%s", terok_error_message(&err));
    terok_error_clear(&err);
    harness_free(id);
}

/* Until PID 1 has its signal mask, podman's SIGTERM would be dropped (PID 1 semantics). */
static void wait_ready(const char *id)
{
    static const char *const argv[] = {"cat", "/proc/1/status", NULL};
    it_output o = {0};
    terok_exec_spec ex = {.struct_size = sizeof ex,
                          .argv = argv,
                          .stdin_fd = -1,
                          .stdout_fd = -1,
                          .stderr_fd = -1,
                          .output = it_output_cb};
    int code;

    ex.userdata = &o;
    for (int i = 0; i < 100; i++) {
        memset(&o, 0, sizeof o);
        IT_OK(ops->exec(st, id, &ex, &code, &err));
        if (strstr(o.out, "SigBlk:\t0000000000000000") == NULL && strstr(o.out, "SigBlk:"))
            return;
        usleep(20000);
    }
    cr_assert_fail("PID 1 never blocked its signals");
}

Test(podman, stop_forwards_sigterm_143)
{
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "stop", &m);
    int code = -1;
    int64_t t0;

    wait_ready(id);
    t0 = now_ms();
    IT_OK(ops->stop(st, id, 10, &err));
    cr_assert_lt(now_ms() - t0, 5000, "stop waited for the timeout: SIGTERM not forwarded?");
    IT_OK(ops->wait(st, id, 10000, &code, &err));
    cr_assert_eq(code, 143);
    IT_OK(ops->stop(st, id, 10, &err)); /* already stopped: 0 */
    harness_free(id);
}

Test(podman, kill9_gives_137)
{
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "kill", &m);
    int code = -1;

    IT_OK(ops->kill(st, id, SIGKILL, &err));
    IT_OK(ops->wait(st, id, 10000, &code, &err));
    cr_assert_eq(code, 137);
    harness_free(id);
}

Test(podman, wait_times_out)
{
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "waitto", &m);
    int code = -1;

    int64_t t0 = now_ms();

    cr_assert_eq(ops->wait(st, id, 300, &code, &err), -ETIMEDOUT);
    cr_assert(strstr(terok_error_message(&err), "still running after 300 ms"), "%s",
              terok_error_message(&err));
    cr_assert_lt(now_ms() - t0, 3000);
    terok_error_clear(&err);
    /* the handle is usable after the aborted call */
    IT_OK(ops->kill(st, id, SIGKILL, &err));
    IT_OK(ops->wait(st, id, 10000, &code, &err));
    cr_assert_eq(code, 137);
    harness_free(id);
}

Test(podman, exec_captured)
{
    static const char *const argv[] = {"sh", "-c", "echo out; echo err >&2; echo $FOO; exit 5",
                                       NULL};
    static const char *const env[] = {"FOO=bar", NULL};
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "exec", &m);
    terok_exec_spec ex = {.struct_size = sizeof ex,
                          .argv = argv,
                          .env = env,
                          .stdin_fd = -1,
                          .stdout_fd = -1,
                          .stderr_fd = -1,
                          .output = it_output_cb};
    it_output o = {0};
    int code = -1;

    ex.userdata = &o;
    IT_OK(ops->exec(st, id, &ex, &code, &err));
    cr_assert_eq(code, 5);
    cr_assert_str_eq(o.out, "out\nbar\n");
    cr_assert_str_eq(o.err, "err\n");
    harness_free(id);
}

Test(podman, exec_tty_and_stdin)
{
    static const char *const tty_argv[] = {"sh", "-c", "tty; sleep 0.3; stty size; echo hi-tty",
                                           NULL};
    static const char *const cat_argv[] = {"sh", "-c", "cat; echo done", NULL};
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "exectty", &m);
    terok_exec_spec ex = {.struct_size = sizeof ex,
                          .flags = TEROK_EXEC_TTY,
                          .argv = tty_argv,
                          .stdin_fd = -1,
                          .stdout_fd = -1,
                          .stderr_fd = -1,
                          .tty_rows = 30,
                          .tty_cols = 90,
                          .output = it_output_cb};
    it_output o = {0};
    int code = -1, p[2];

    ex.userdata = &o;
    IT_OK(ops->exec(st, id, &ex, &code, &err));
    cr_assert_eq(code, 0);
    cr_assert(strstr(o.out, "/dev/pts/"), "no pty: %s", o.out);
    cr_assert(strstr(o.out, "30 90\r\n"), "size not applied: %s", o.out);
    cr_assert(strstr(o.out, "hi-tty\r\n"), "%s", o.out);

    /* interactive without a TTY: stdin EOF reaches the process */
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "hello-stdin\n", 12), 12);
    close(p[1]);
    memset(&o, 0, sizeof o);
    ex.flags = TEROK_EXEC_INTERACTIVE;
    ex.argv = cat_argv;
    ex.stdin_fd = p[0];
    IT_OK(ops->exec(st, id, &ex, &code, &err));
    close(p[0]);
    cr_assert_eq(code, 0);
    cr_assert_str_eq(o.out, "hello-stdin\ndone\n");
    harness_free(id);
}

Test(podman, exec_to_fds)
{
    static const char *const argv[] = {"sh", "-c", "echo to-fd", NULL};
    it_spec sp;
    terok_mount m;
    char *id = start_sleeper(&sp, "execfd", &m);
    char path[512], buf[64] = {0};
    int fd, code = -1;

    snprintf(path, sizeof path, "%s/out", tmp);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    terok_exec_spec ex = {
        .struct_size = sizeof ex, .argv = argv, .stdin_fd = -1, .stdout_fd = fd, .stderr_fd = -1};
    IT_OK(ops->exec(st, id, &ex, &code, &err));
    cr_assert_eq(code, 0);
    cr_assert_eq(pread(fd, buf, sizeof buf - 1, 0), 6);
    cr_assert_str_eq(buf, "to-fd\n");
    close(fd);
    harness_free(id);
}

Test(podman, logs_tail)
{
    static const char *const argv[] = {"sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done",
                                       NULL};
    it_spec sp;
    it_output o;
    char *id = NULL;
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = 2};

    it_spec_init(&sp, "logs", argv);
    cr_assert_eq(it_run(&sp.s, &o, &id), 0);
    cr_assert_str_eq(o.out, "line1\nline2\nline3\nline4\nline5\n");
    memset(&o, 0, sizeof o);
    IT_OK(ops->logs(st, id, &lo, it_output_cb, &o, &err));
    cr_assert_str_eq(o.out, "line4\nline5\n");
    harness_free(id);
}

Test(podman, copy_in_file_and_tree)
{
    static const char *const argv[] = {
        "sh", "-c",
        "cat /workspace/tree/a.txt /workspace/tree/sub/b.txt /etc/one.conf "
        "/workspace/into/c.txt",
        NULL};
    it_spec sp;
    it_output o;
    char path[512], *id = NULL;
    int code = -1;
    FILE *f;

    snprintf(path, sizeof path, "%s/src/sub", tmp);
    cr_assert_eq(mkdir(strndup(path, strlen(path) - 4), 0755), 0);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/src/a.txt", tmp);
    f = fopen(path, "w");
    fputs("A\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/src/sub/b.txt", tmp);
    f = fopen(path, "w");
    fputs("B\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/one", tmp);
    f = fopen(path, "w");
    fputs("ONE\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/c.txt", tmp);
    f = fopen(path, "w");
    fputs("C\n", f);
    fclose(f);

    it_spec_init(&sp, "copy", argv);
    IT_OK(ops->create(st, &sp.s, &id, &err));
    snprintf(path, sizeof path, "%s/src", tmp);
    IT_OK(ops->copy_in(st, id, path, "/workspace/tree", &err)); /* tree becomes a new dir */
    snprintf(path, sizeof path, "%s/one", tmp);
    IT_OK(ops->copy_in(st, id, path, "/etc/one.conf", &err)); /* file under a new name */
    snprintf(path, sizeof path, "%s/c.txt", tmp);
    IT_OK(ops->copy_in(st, id, path, "/workspace/into/", &err)); /* parent made on the way */
    cr_assert_lt(ops->copy_in(st, id, "/nonexistent-terok", "/x", &err), 0);
    terok_error_clear(&err);
    IT_OK(ops->start(st, id, &err));
    IT_OK(ops->wait(st, id, 30000, &code, &err));
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};
    memset(&o, 0, sizeof o);
    IT_OK(ops->logs(st, id, &lo, it_output_cb, &o, &err));
    cr_assert_eq(code, 0, "%s", o.all);
    cr_assert_str_eq(o.out, "A\nB\nONE\nC\n");
    harness_free(id);
}

typedef struct seen_info {
    terok_container_info i;
    char id[80], name[96], image[128];
    char label[128], annotation[128], mount[256];
    int calls;
} seen_info;

static int keep_info(void *userdata, const terok_container_info *info)
{
    seen_info *s = userdata;

    s->i = *info;
    s->calls++;
    snprintf(s->id, sizeof s->id, "%s", info->id);
    snprintf(s->name, sizeof s->name, "%s", info->name);
    snprintf(s->image, sizeof s->image, "%s", info->image);
    for (const char *const *l = info->labels; l && *l; l++)
        if (strncmp(*l, "terok.it.k=", 11) == 0)
            snprintf(s->label, sizeof s->label, "%s", *l);
    for (const char *const *a = info->annotations; a && *a; a++)
        if (strncmp(*a, "org.terok.it=", 13) == 0)
            snprintf(s->annotation, sizeof s->annotation, "%s", *a);
    for (const char *const *m = info->mounts; m && *m; m++)
        if (strstr(*m, ":/run/terok-init"))
            snprintf(s->mount, sizeof s->mount, "%s", *m);
    cr_assert(info->raw_json && strstr(info->raw_json, "\"Id\""));
    s->i.raw_json = NULL;
    s->i.labels = s->i.annotations = s->i.mounts = NULL;
    return 0;
}

Test(podman, inspect_fields)
{
    static const char *const annotations[] = {"org.terok.it=yes", NULL};
    it_spec sp;
    terok_mount m = it_init_mount();
    seen_info s = {0};
    char *id = NULL;
    int code;

    it_spec_init(&sp, "inspect", sleep_argv);
    sp.labels[2] = "terok.it.k=v1";
    sp.s.annotations = annotations;
    sp.s.mounts = &m;
    sp.s.n_mounts = 1;
    IT_OK(ops->create(st, &sp.s, &id, &err));
    IT_OK(ops->inspect(st, sp.name, keep_info, &s, &err));
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.i.state, TEROK_CONTAINER_CREATED);
    cr_assert_str_eq(s.id, id);
    cr_assert_str_eq(s.name, sp.name);
    cr_assert(strstr(s.image, "terok-busybox"), "%s", s.image);
    cr_assert_str_eq(s.label, "terok.it.k=v1");
    cr_assert_str_eq(s.annotation, "org.terok.it=yes");
    cr_assert(strstr(s.mount, ":/run/terok-init:ro"), "mount '%s'", s.mount);
    cr_assert_gt(s.i.created_at, 1600000000);

    IT_OK(ops->start(st, id, &err));
    IT_OK(ops->inspect(st, id, keep_info, &s, &err));
    cr_assert_eq(s.i.state, TEROK_CONTAINER_RUNNING);
    cr_assert_gt(s.i.pid, 1);
    cr_assert_geq(s.i.started_at, s.i.created_at);
    cr_assert_lt(s.i.started_at - time(NULL), 60);

    IT_OK(ops->kill(st, id, SIGKILL, &err));
    IT_OK(ops->wait(st, id, 10000, &code, &err));
    IT_OK(ops->inspect(st, id, keep_info, &s, &err));
    cr_assert_eq(s.i.state, TEROK_CONTAINER_EXITED);
    cr_assert_eq(s.i.exit_code, 137);
    cr_assert_geq(s.i.finished_at, s.i.started_at);

    cr_assert_eq(ops->inspect(st, "it-no-such-container", keep_info, &s, &err), -ENOENT);
    terok_error_clear(&err);
    harness_free(id);
}

Test(podman, list_by_label_and_prefix)
{
    static const char *const argv[] = {"true", NULL};
    char label[96], prefix[96];
    const char *labels[] = {label, NULL};
    terok_list_filter f = {.struct_size = sizeof f, .flags = TEROK_LIST_ALL, .labels = labels};
    int n = 0;

    snprintf(label, sizeof label, "terok.it.list=%d", (int)getpid());
    for (int i = 0; i < 4; i++) {
        it_spec sp;
        char sfx[16], *id = NULL;
        snprintf(sfx, sizeof sfx, "%s%d", i < 3 ? "la" : "lb", i);
        it_spec_init(&sp, sfx, argv);
        sp.labels[2] = label;
        IT_OK(ops->create(st, &sp.s, &id, &err));
        harness_free(id);
    }
    IT_OK(ops->list(st, &f, it_count_cb, &n, &err));
    cr_assert_eq(n, 4);
    snprintf(prefix, sizeof prefix, "it-%d-la", (int)getpid());
    f.name_prefix = prefix;
    n = 0;
    IT_OK(ops->list(st, &f, it_count_cb, &n, &err));
    cr_assert_eq(n, 3);
    f.flags = 0; /* running only: none */
    n = 0;
    IT_OK(ops->list(st, &f, it_count_cb, &n, &err));
    cr_assert_eq(n, 0);
}

static int ignore_image(void *ud, const terok_image_info *i)
{
    return 0;
}

Test(podman, image_inspect)
{
    cr_assert_eq(
        ops->image_inspect(st, "localhost/terok-no-such-image:latest", ignore_image, NULL, &err),
        -ENOENT);
    cr_assert_str_eq(terok_error_message(&err), "image 'localhost/terok-no-such-image:latest' "
                                                "not found locally (terok-sandbox never pulls)");
    terok_error_clear(&err);
}

static int image_cb(void *userdata, const terok_image_info *info)
{
    *(int *)userdata = info->id && strlen(info->id) == 64 && info->entrypoint && info->cmd;
    return 0;
}

Test(podman, image_inspect_present)
{
    int ok = 0;

    IT_OK(ops->image_inspect(st, IT_IMAGE, image_cb, &ok, &err));
    cr_assert(ok);
}

typedef struct ev_state {
    pthread_mutex_t lock;
    char target[96];
    int any, created, started, died, died_code;
    int r;
    terok_error err;
    void *state;
    char label[96];
} ev_state;

static int on_event(void *userdata, const terok_event *ev)
{
    ev_state *e = userdata;
    int stop;

    pthread_mutex_lock(&e->lock);
    e->any++;
    if (ev->name && strcmp(ev->name, e->target) == 0) {
        if (strcmp(ev->action, "create") == 0)
            e->created++;
        else if (strcmp(ev->action, "start") == 0)
            e->started++;
        else if (strcmp(ev->action, "died") == 0) {
            e->died++;
            e->died_code = ev->exit_code;
        }
    }
    stop = e->died > 0;
    pthread_mutex_unlock(&e->lock);
    return stop;
}

static void *events_thread(void *arg)
{
    ev_state *e = arg;
    const char *labels[] = {e->label, NULL};
    terok_list_filter f = {.struct_size = sizeof f, .labels = labels};

    e->r = ops->events(e->state, &f, on_event, e, &e->err);
    return NULL;
}

Test(podman, events_create_start_died)
{
    static const char *const argv[] = {"sh", "-c", "exit 4", NULL};
    static const harness_kv cfg[] = {{"service-idle", "60s"}, {NULL, NULL}};
    ev_state e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    it_spec sp;

    snprintf(e.label, sizeof e.label, "terok.it.ev=%d", (int)getpid());
    IT_OK(harness_open(ops, cfg, &e.state, &err));
    cr_assert_eq(pthread_create(&t, NULL, events_thread, &e), 0);
    /* until the stream is connected nothing is seen: poke with throw-away containers */
    for (int i = 0; i < 50; i++) {
        it_spec warm;
        char sfx[16], *id = NULL;
        int any;
        pthread_mutex_lock(&e.lock);
        any = e.any;
        pthread_mutex_unlock(&e.lock);
        if (any)
            break;
        snprintf(sfx, sizeof sfx, "evw%d", i);
        it_spec_init(&warm, sfx, argv);
        warm.labels[2] = e.label;
        IT_OK(ops->create(st, &warm.s, &id, &err));
        IT_OK(ops->remove(st, id, 0, &err));
        harness_free(id);
        usleep(100000);
    }
    it_spec_init(&sp, "ev", argv);
    sp.labels[2] = e.label;
    snprintf(e.target, sizeof e.target, "%s", sp.name);
    cr_assert_eq(it_run(&sp.s, NULL, NULL), 4);
    pthread_join(t, NULL);
    cr_assert_eq(e.r, 0, "events: %s", terok_error_message(&e.err));
    cr_assert_eq(e.created, 1);
    cr_assert_eq(e.started, 1);
    cr_assert_eq(e.died, 1);
    cr_assert_eq(e.died_code, 4);
    ops->close(e.state);
}

Test(podman, bad_input_rejected_before_podman)
{
    static const char *const argv[] = {"true", NULL};
    static const char *const bad_env[] = {"NOEQUALS", NULL};
    struct {
        terok_run_spec s;
        char tail[16];
    } big;
    it_spec sp;
    char *id = NULL;

    it_spec_init(&sp, "bad", argv);
    sp.s.name = "../etc";
    cr_assert_eq(ops->create(st, &sp.s, &id, &err), -EINVAL);
    cr_assert(strstr(terok_error_message(&err), "'../etc'"));
    terok_error_clear(&err);

    it_spec_init(&sp, "bad", argv);
    sp.s.env = bad_env;
    cr_assert_eq(ops->create(st, &sp.s, &id, &err), -EINVAL);
    cr_assert(strstr(terok_error_message(&err), "'NOEQUALS'"));
    terok_error_clear(&err);

    it_spec_init(&sp, "bad", argv);
    sp.s.network = "host";
    cr_assert_eq(ops->create(st, &sp.s, &id, &err), -EOPNOTSUPP);
    terok_error_clear(&err);

    it_spec_init(&sp, "bad", argv);
    sp.s.flags = 1u << 20;
    cr_assert_eq(ops->create(st, &sp.s, &id, &err), -EOPNOTSUPP);
    terok_error_clear(&err);

    /* a newer host set a field we do not know: refuse rather than ignore */
    it_spec_init(&sp, "bad", argv);
    memset(&big, 0, sizeof big);
    big.s = sp.s;
    big.s.struct_size = sizeof big;
    big.tail[3] = 1;
    cr_assert_eq(ops->create(st, &big.s, &id, &err), -E2BIG);
    terok_error_clear(&err);
    big.tail[3] = 0;
    IT_OK(ops->create(st, &big.s, &id, &err)); /* zero tail is fine */
    harness_free(id);

    cr_assert_eq(ops->start(st, "a/b", &err), -EINVAL);
    terok_error_clear(&err);
    cr_assert_eq(ops->remove(st, "it-no-such-container", TEROK_REMOVE_FORCE, &err), -ENOENT);
    terok_error_clear(&err);
}

Test(podman, podman_error_message_verbatim)
{
    static const char *const argv[] = {"true", NULL};
    it_spec sp;
    char *id = NULL;

    it_spec_init(&sp, "dup", argv);
    IT_OK(ops->create(st, &sp.s, &id, &err));
    harness_free(id);
    cr_assert_eq(ops->create(st, &sp.s, &id, &err), -EEXIST);
    cr_assert(strncmp(terok_error_message(&err), "creating container 'it-", 23) == 0, "%s",
              terok_error_message(&err));
    cr_assert(strstr(terok_error_message(&err), "is already in use"), "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
}

Test(podman, ctl_info)
{
    terok_runtime_ctl_info info = {.struct_size = sizeof info};

    IT_OK(ops->ctl(st, TEROK_RUNTIME_CTL_INFO, &info, &err));
    cr_assert_eq(!!info.rootless, rootless);
    cr_assert(info.api_version && info.api_version[0] >= '4', "%s", info.api_version);
    cr_assert(info.endpoint && info.endpoint[0] == '/');
    cr_assert_eq(ops->ctl(st, 0x12345, NULL, &err), -EOPNOTSUPP);
    terok_error_clear(&err);
    cr_assert(ops->caps & TEROK_RUNTIME_CAP_EXEC);
    cr_assert_eq(!!(ops->caps & TEROK_RUNTIME_CAP_ROOTLESS), rootless);
}

/* ctl START_ATTACHED: everything the container prints from its first instruction arrives, stdout
 * and stderr apart; the exit status is known when the stream ends. */
Test(podman, start_attached_streams_and_knows_the_status)
{
    static const char *const argv[] = {"sh", "-c", "echo first; echo oops >&2; exit 9", NULL};
    it_spec sp;
    it_output o = {0};
    char *id = NULL;
    terok_exec_spec io = {.struct_size = sizeof io,
                          .stdin_fd = -1,
                          .stdout_fd = -1,
                          .stderr_fd = -1,
                          .output = it_output_cb,
                          .userdata = &o};
    terok_runtime_ctl_attach a = {.struct_size = sizeof a, .io = &io, .exit_code = -1};
    int code = -1;

    it_spec_init(&sp, "attach", argv);
    IT_OK(ops->create(st, &sp.s, &id, &err));
    a.ref = id;
    IT_OK(ops->ctl(st, TEROK_RUNTIME_CTL_START_ATTACHED, &a, &err));
    cr_assert_str_eq(o.out, "first\n");
    cr_assert_str_eq(o.err, "oops\n");
    cr_assert_eq(a.exit_code, 9, "exit code %d", a.exit_code);
    IT_OK(ops->wait(st, id, 60000, &code, &err));
    cr_assert_eq(code, 9);
    harness_free(id);
}

/* With a TTY: the initial size is applied right after the start (libpod has no size at create). */
Test(podman, start_attached_tty_gets_its_size)
{
    static const char *const argv[] = {"sh", "-c", "sleep 1; stty size; tty", NULL};
    it_spec sp;
    it_output o = {0};
    char *id = NULL;
    terok_exec_spec io = {.struct_size = sizeof io,
                          .flags = TEROK_EXEC_TTY,
                          .stdin_fd = -1,
                          .stdout_fd = -1,
                          .stderr_fd = -1,
                          .tty_rows = 33,
                          .tty_cols = 111,
                          .output = it_output_cb,
                          .userdata = &o};
    terok_runtime_ctl_attach a = {.struct_size = sizeof a, .io = &io, .exit_code = -1};

    it_spec_init(&sp, "attachtty", argv);
    sp.s.flags |= TEROK_SPEC_TTY;
    IT_OK(ops->create(st, &sp.s, &id, &err));
    a.ref = id;
    IT_OK(ops->ctl(st, TEROK_RUNTIME_CTL_START_ATTACHED, &a, &err));
    cr_assert(strstr(o.out, "33 111\r\n"), "%s", o.out);
    cr_assert(strstr(o.out, "/dev/pts/"), "%s", o.out);
    cr_assert_eq(a.exit_code, 0);
    harness_free(id);
}

/* Bad input: an invalid reference, and exec-only fields. Nothing is created or started. */
Test(podman, start_attached_rejects_bad_input)
{
    static const char *const argv[] = {"true", NULL};
    terok_exec_spec io = {
        .struct_size = sizeof io, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    terok_runtime_ctl_attach a = {.struct_size = sizeof a, .ref = "../x", .io = &io};

    cr_assert_eq(ops->ctl(st, TEROK_RUNTIME_CTL_START_ATTACHED, &a, &err), -EINVAL);
    cr_assert(strstr(terok_error_message(&err), "'../x'"), "%s", terok_error_message(&err));
    terok_error_clear(&err);
    a.ref = "it-nope";
    io.argv = argv;
    cr_assert_eq(ops->ctl(st, TEROK_RUNTIME_CTL_START_ATTACHED, &a, &err), -EINVAL);
    terok_error_clear(&err);
    io.argv = NULL;
    cr_assert_eq(ops->ctl(st, TEROK_RUNTIME_CTL_START_ATTACHED, &a, &err), -ENOENT);
    cr_assert(strstr(terok_error_message(&err), "it-nope"), "%s", terok_error_message(&err));
    terok_error_clear(&err);
}
