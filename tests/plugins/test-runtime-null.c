/* SPDX-License-Identifier: Apache-2.0 */
/* test-runtime-null.c: runtime-null through its ABI, loaded with dlopen() and a minimal host
 * table of our own (independent of the loader): every op, persistence across instances,
 * concurrent writers, the scripted interpreter, and NULL/invalid arguments. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loader.h"
#include "terok-test.h"
#include "terok/runtime.h"

/* ------------------------------------------------------------------ harness */

static char h_state[2048];
static struct terok_plugin h_self;

static void h_logv(terok_plugin *self, int prio, const char *fmt, va_list ap)
{
}

static int h_errorv(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap)
{
    char *m = NULL;

    if (code >= 0)
        code = -EIO;
    if (!err)
        return code;
    free(err->message);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    err->message = m;
    err->code = code;
    return code;
}

static int h_cfg(const terok_config_section *sec, const char *key, const char **ret)
{
    return -ENOENT;
}
static int h_cfg_bool(const terok_config_section *sec, const char *key, int *ret)
{
    return -ENOENT;
}
static int h_cfg_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    return -ENOENT;
}
static const char *h_state_dir(terok_plugin *self)
{
    return h_state;
}
static const char *h_runtime_dir(terok_plugin *self)
{
    return h_state;
}

static const terok_host host = {
    .struct_size = sizeof(terok_host),
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = h_logv,
    .errorv = h_errorv,
    .alloc = malloc,
    .free = free,
    .strdup = strdup,
    .config_get = h_cfg,
    .config_get_bool = h_cfg_bool,
    .config_get_int = h_cfg_int,
    .state_dir = h_state_dir,
    .runtime_dir = h_runtime_dir,
};

static void *dl;
static const terok_plugin_desc *desc;
static const terok_runtime_ops *ops;
static void *st;
static terok_error err;

static void *open_instance(void)
{
    void *s = NULL;

    terok_assert_ok(ops->open(&h_self, NULL, &s, &err), &err);
    return s;
}

static void setup(void)
{
    char path[4096];
    terok_plugin_init_fn init;

    test_tmpdir_setup();
    snprintf(h_state, sizeof h_state, "%s/state/runtime-null", test_tmp);
    snprintf(path, sizeof path, "%s/runtime-null.so", getenv("TEROK_TEST_PLUGIN_DIR"));
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cr_assert(dl != NULL, "dlopen %s: %s", path, dlerror());
    *(void **)&init = dlsym(dl, TEROK_PLUGIN_INIT_SYMBOL);
    cr_assert(init != NULL);
    terok_assert_ok(init(&h_self, &host, &desc, &err), &err);
    ops = desc->ops;
    st = open_instance();
}

static void teardown(void)
{
    if (ops && st)
        ops->close(st);
    st = NULL;
    free(err.message);
    err = (terok_error){0};
    if (dl)
        dlclose(dl);
    dl = NULL;
    test_tmpdir_teardown();
}

TestSuite(runtime_null, .init = setup, .fini = teardown, .timeout = 30);

/* ------------------------------------------------------------------ helpers */

static const char *const no_strv[] = {NULL};

static terok_run_spec spec_for(const char *name, const char *const *argv)
{
    static const char *const labels[] = {"org.terok.managed=1", "team=blue", NULL};
    static const char *const env[] = {"FOO=bar", "PATH=/bin", NULL};
    static const terok_mount mounts[] = {
        {TEROK_MOUNT_TMPFS, 0, NULL, "/tmp", "mode=1777"},
        {TEROK_MOUNT_BIND, TEROK_MOUNT_RO, "/etc", "/host-etc", NULL},
    };
    terok_run_spec s = {
        .struct_size = sizeof s,
        .flags = TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |
                 TEROK_SPEC_DEFAULT_SECCOMP,
        .name = name,
        .image = "localhost/null:latest",
        .argv = argv,
        .env = env,
        .labels = labels,
        .annotations = no_strv,
        .cap_add = no_strv,
        .mounts = mounts,
        .n_mounts = 2,
        .pids_limit = 512,
        .network = "none",
    };
    return s;
}

static char *create_ok(const char *name, const char *const *argv)
{
    terok_run_spec s = spec_for(name, argv);
    char *id = NULL;

    terok_assert_ok(ops->create(st, &s, &id, &err), &err);
    cr_assert(id && strlen(id) == 64);
    return id;
}

static char *slurp(const char *rel)
{
    char path[4096];
    FILE *f;
    char *b = calloc(1, 1 << 20);

    snprintf(path, sizeof path, "%s/%s", h_state, rel);
    f = fopen(path, "re");
    if (!f)
        return b;
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

typedef struct capture {
    char out[8192];
    char errb[8192];
} capture;

static int capture_cb(void *ud, int stream, const void *data, size_t len)
{
    capture *c = ud;
    char *b = stream == 2 ? c->errb : c->out;

    strncat(b, data, MIN(len, 8191 - strlen(b)));
    return 0;
}

static int run_wait(const char *name)
{
    int code = -1;

    terok_assert_ok(ops->wait(st, name, 5000, &code, &err), &err);
    return code;
}

typedef struct info_copy {
    uint32_t state;
    int exit_code;
    char name[64];
    char raw[16384];
    char labels[1024];
    char mounts[1024];
    int calls;
} info_copy;

static int info_cb(void *ud, const terok_container_info *i)
{
    info_copy *c = ud;

    c->calls++;
    c->state = i->state;
    c->exit_code = i->exit_code;
    snprintf(c->name, sizeof c->name, "%s", i->name);
    snprintf(c->raw, sizeof c->raw, "%s", i->raw_json ? i->raw_json : "");
    c->labels[0] = c->mounts[0] = 0;
    for (const char *const *p = i->labels; p && *p; p++)
        snprintf(c->labels + strlen(c->labels), sizeof c->labels - strlen(c->labels), "%s;", *p);
    for (const char *const *p = i->mounts; p && *p; p++)
        snprintf(c->mounts + strlen(c->mounts), sizeof c->mounts - strlen(c->mounts), "%s;", *p);
    return 0;
}

/* criterion's cr_assert wants an int-valued expression starting with an identifier */
static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}
#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ------------------------------------------------------------------ tests */

Test(runtime_null, descriptor)
{
    cr_assert(eq(str, (char *)desc->name, "null"));
    cr_assert(eq(u32, desc->kind, TEROK_PLUGIN_KIND_RUNTIME));
    cr_assert(eq(u32, desc->abi_major, TEROK_PLUGIN_ABI_MAJOR));
    cr_assert(ops->struct_size >= TEROK_RUNTIME_OPS_SIZE_1_0);
    cr_assert(0 != (ops->caps & TEROK_RUNTIME_CAP_EXEC));
    cr_assert(0 != (ops->caps & TEROK_RUNTIME_CAP_LOGS));
    cr_assert(0 != (ops->caps & TEROK_RUNTIME_CAP_COPY));
    cr_assert(0 != (ops->caps & TEROK_RUNTIME_CAP_EVENTS));
    cr_assert(0 == (ops->caps & TEROK_RUNTIME_CAP_HOOKS), "runtime-null runs no OCI hooks");
    cr_assert(ops->create && ops->start && ops->stop && ops->kill && ops->remove && ops->wait &&
              ops->inspect && ops->list && ops->exec && ops->logs && ops->copy_in &&
              ops->image_inspect && ops->events && ops->ctl);
}

Test(runtime_null, create_records_the_spec_and_the_call)
{
    info_copy ic = {0};
    char *id = create_ok("c1", ARGV("/bin/null-init", "echo", "hi"));
    char *calls;

    terok_assert_ok(ops->inspect(st, "c1", info_cb, &ic, &err), &err);
    calls = slurp("calls.log");
    cr_assert(eq(int, ic.calls, 1));
    cr_assert(eq(u32, ic.state, TEROK_CONTAINER_CREATED));
    cr_assert(contains(ic.raw, "\"cap_drop_all\":true"), "%s", ic.raw);
    cr_assert(contains(ic.raw, "\"no_new_privileges\":true"));
    cr_assert(contains(ic.raw, "\"read_only_root\":true"));
    cr_assert(contains(ic.raw, "\"pids_limit\":512"));
    cr_assert(contains(ic.raw, "\"network\":\"none\""));
    cr_assert(contains(ic.raw, "\"env\":[\"FOO=bar\",\"PATH=/bin\"]"), "%s", ic.raw);
    cr_assert(contains(ic.raw, "\"target\":\"/tmp\""));
    cr_assert(contains(ic.labels, "org.terok.managed=1;"), "%s", ic.labels);
    cr_assert(contains(ic.mounts, "/etc:/host-etc:ro;"), "%s", ic.mounts);
    cr_assert(contains(calls, "create c1 localhost/null:latest\n"), "%s", calls);
    cr_assert(contains(calls, "inspect c1\n"));
    free(calls);
    free(id);
}

Test(runtime_null, duplicate_name_and_unknown_image)
{
    terok_run_spec s = spec_for("c1", ARGV("echo", "x"));
    char *id = create_ok("c1", ARGV("echo", "x")), *id2 = NULL;

    cr_assert(eq(int, ops->create(st, &s, &id2, &err), -EEXIST));
    cr_assert(eq(str, err.message, "container name 'c1' is already in use"));
    s.name = "c2";
    s.image = "docker.io/evil:latest";
    cr_assert(eq(int, ops->create(st, &s, &id2, &err), -ENOENT));
    cr_assert(eq(str, err.message, "image 'docker.io/evil:latest' not known"));
    cr_assert(id2 == NULL);
    free(id);
}

Test(runtime_null, start_runs_the_script_and_exits_with_its_status)
{
    capture cap = {0};
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};

    free(create_ok("c1", ARGV("/bin/null-init", "echo", "hello", "world", ";", "echo-err", "oops",
                              ";", "exit", "3", ";", "echo", "never")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    cr_assert(eq(int, run_wait("c1"), 3));
    terok_assert_ok(ops->logs(st, "c1", &lo, capture_cb, &cap, &err), &err);
    cr_assert(eq(str, cap.out, "hello world\n"));
    cr_assert(eq(str, cap.errb, "oops\n"));
}

Test(runtime_null, unknown_command_exits_127)
{
    capture cap = {0};
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = -1};

    free(create_ok("c1", ARGV("/usr/bin/frobnicate", "--now")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    cr_assert(eq(int, run_wait("c1"), 127));
    terok_assert_ok(ops->logs(st, "c1", &lo, capture_cb, &cap, &err), &err);
    cr_assert(eq(str, cap.errb, "null-init: 'frobnicate': command not found\n"));
}

Test(runtime_null, sleep_runs_until_stopped)
{
    int code = -1;
    info_copy ic = {0};

    free(create_ok("c1", ARGV("echo", "up", ";", "sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->start(st, "c1", &err), &err); /* already running: no-op */
    terok_assert_ok(ops->inspect(st, "c1", info_cb, &ic, &err), &err);
    cr_assert(eq(u32, ic.state, TEROK_CONTAINER_RUNNING));
    cr_assert(eq(int, ops->wait(st, "c1", 50, &code, &err), -ETIMEDOUT));
    cr_assert(eq(str, err.message, "timed out after 50 ms"));
    terok_assert_ok(ops->stop(st, "c1", 10, &err), &err);
    cr_assert(eq(int, run_wait("c1"), 128 + SIGTERM));
    terok_assert_ok(ops->stop(st, "c1", 10, &err), &err); /* stopped already: 0 */
    cr_assert(eq(int, ops->kill(st, "c1", SIGKILL, &err), -EINVAL));
    cr_assert(eq(str, err.message, "container 'c1' is not running"));
}

Test(runtime_null, kill_exits_with_the_signal)
{
    free(create_ok("c1", ARGV("sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->kill(st, "c1", SIGKILL, &err), &err);
    cr_assert(eq(int, run_wait("c1"), 128 + SIGKILL));
}

Test(runtime_null, wait_in_another_process_sees_the_stop)
{
    pid_t pid;
    int status;

    free(create_ok("c1", ARGV("sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        void *s2 = NULL;
        int code = -1;
        if (ops->open(&h_self, NULL, &s2, NULL) < 0 || ops->wait(s2, "c1", 5000, &code, NULL) < 0)
            _exit(99);
        _exit(code);
    }
    usleep(100 * 1000);
    terok_assert_ok(ops->stop(st, "c1", 1, &err), &err);
    cr_assert(waitpid(pid, &status, 0) == pid);
    cr_assert(eq(int, WEXITSTATUS(status), 128 + SIGTERM));
}

Test(runtime_null, fail_start_and_fail_create)
{
    terok_run_spec s = spec_for("c2", ARGV("fail-create", "no", "space", "left"));
    char *id = NULL;
    info_copy ic = {0};

    free(create_ok("c1", ARGV("fail-start", "cannot", "exec", "init")));
    cr_assert(eq(int, ops->start(st, "c1", &err), -EIO));
    cr_assert(eq(str, err.message, "cannot exec init"));
    terok_assert_ok(ops->inspect(st, "c1", info_cb, &ic, &err), &err);
    cr_assert(eq(u32, ic.state, TEROK_CONTAINER_CREATED));

    cr_assert(eq(int, ops->create(st, &s, &id, &err), -EIO));
    cr_assert(eq(str, err.message, "no space left"));
    cr_assert(eq(int, ops->inspect(st, "c2", info_cb, &ic, &err), -ENOENT));
    cr_assert(eq(str, err.message, "no such container 'c2'"));
}

Test(runtime_null, remove)
{
    free(create_ok("c1", ARGV("sleep")));
    cr_assert(eq(int, ops->remove(st, "nope", 0, &err), -ENOENT));
    cr_assert(eq(str, err.message, "no such container 'nope'"));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    cr_assert(eq(int, ops->remove(st, "c1", 0, &err), -EBUSY));
    cr_assert(
        eq(str, err.message, "container 'c1' is running: stop it first or remove it with force"));
    terok_assert_ok(ops->remove(st, "c1", TEROK_REMOVE_FORCE, &err), &err);
    cr_assert(eq(int, ops->remove(st, "c1", TEROK_REMOVE_FORCE, &err), -ENOENT));
}

Test(runtime_null, remove_on_exit)
{
    terok_run_spec s = spec_for("c1", ARGV("exit", "0"));
    info_copy ic = {0};
    char *id = NULL;

    s.flags |= TEROK_SPEC_REMOVE_ON_EXIT;
    terok_assert_ok(ops->create(st, &s, &id, &err), &err);
    free(id);
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    cr_assert(eq(int, ops->inspect(st, "c1", info_cb, &ic, &err), -ENOENT));
}

Test(runtime_null, id_and_unique_prefix_resolve)
{
    info_copy ic = {0};
    char *id = create_ok("c1", ARGV("true")), prefix[13];

    free(create_ok("c2", ARGV("true")));
    snprintf(prefix, sizeof prefix, "%.12s", id);
    terok_assert_ok(ops->inspect(st, id, info_cb, &ic, &err), &err);
    cr_assert(eq(str, ic.name, "c1"));
    terok_assert_ok(ops->inspect(st, prefix, info_cb, &ic, &err), &err);
    cr_assert(eq(str, ic.name, "c1"));
    free(id);
}

typedef struct names {
    char buf[4096];
} names;

static int names_cb(void *ud, const terok_container_info *i)
{
    names *n = ud;

    snprintf(n->buf + strlen(n->buf), sizeof n->buf - strlen(n->buf), "%s,", i->name);
    return 0;
}

Test(runtime_null, list_filters)
{
    static const char *const managed[] = {"org.terok.managed=1", NULL};
    static const char *const blue[] = {"team", NULL};
    static const char *const red[] = {"team=red", NULL};
    terok_list_filter f = {.struct_size = sizeof f};
    terok_run_spec s = spec_for("other", ARGV("sleep"));
    names n = {0};
    char *id = NULL;

    s.labels = no_strv;
    terok_assert_ok(ops->create(st, &s, &id, &err), &err);
    free(id);
    free(create_ok("b-run", ARGV("sleep")));
    free(create_ok("a-exited", ARGV("true")));
    terok_assert_ok(ops->start(st, "b-run", &err), &err);
    terok_assert_ok(ops->start(st, "a-exited", &err), &err);
    terok_assert_ok(ops->start(st, "other", &err), &err);

    terok_assert_ok(ops->list(st, &f, names_cb, &n, &err), &err);
    cr_assert(eq(str, n.buf, "b-run,other,"), "running only: %s", n.buf);
    n.buf[0] = 0;
    f.flags = TEROK_LIST_ALL;
    f.labels = managed;
    terok_assert_ok(ops->list(st, &f, names_cb, &n, &err), &err);
    cr_assert(eq(str, n.buf, "a-exited,b-run,"), "%s", n.buf);
    n.buf[0] = 0;
    f.labels = blue;
    f.name_prefix = "b-";
    terok_assert_ok(ops->list(st, &f, names_cb, &n, &err), &err);
    cr_assert(eq(str, n.buf, "b-run,"));
    n.buf[0] = 0;
    f.labels = red;
    f.name_prefix = NULL;
    terok_assert_ok(ops->list(st, &f, names_cb, &n, &err), &err);
    cr_assert(eq(str, n.buf, ""));
}

Test(runtime_null, exec_output_and_status)
{
    static const char *const xenv[] = {"FOO=override", "EXTRA=1", NULL};
    capture cap = {0};
    terok_exec_spec e = {.struct_size = sizeof e,
                         .argv = ARGV("echo", "from", "exec", ";", "printenv", "FOO", "EXTRA", ";",
                                      "echo-err", "warn", ";", "exit", "7"),
                         .env = xenv,
                         .stdin_fd = -1,
                         .stdout_fd = -1,
                         .stderr_fd = -1,
                         .output = capture_cb,
                         .userdata = &cap};
    int code = -1;

    free(create_ok("c1", ARGV("sleep")));
    cr_assert(eq(int, ops->exec(st, "c1", &e, &code, &err), -EINVAL));
    cr_assert(eq(str, err.message, "container 'c1' is not running"));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->exec(st, "c1", &e, &code, &err), &err);
    cr_assert(eq(int, code, 7));
    cr_assert(eq(str, cap.out, "from exec\noverride\n1\n"));
    cr_assert(eq(str, cap.errb, "warn\n"));
}

Test(runtime_null, exec_writes_to_fds_and_reads_stdin)
{
    int in[2], out[2];
    char buf[256] = {0};
    int code = -1;
    terok_exec_spec e = {
        .struct_size = sizeof e, .flags = TEROK_EXEC_INTERACTIVE, .argv = ARGV("cat")};

    free(create_ok("c1", ARGV("sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    cr_assert(pipe(in) == 0 && pipe(out) == 0);
    cr_assert(write(in[1], "line one\nline two\n", 18) == 18);
    close(in[1]);
    e.stdin_fd = in[0];
    e.stdout_fd = out[1];
    e.stderr_fd = -1;
    terok_assert_ok(ops->exec(st, "c1", &e, &code, &err), &err);
    close(out[1]);
    cr_assert(read(out[0], buf, sizeof buf - 1) > 0);
    cr_assert(eq(str, buf, "line one\nline two\n"));
    cr_assert(eq(int, code, 0));
}

Test(runtime_null, logs_tail_and_timestamps)
{
    capture cap = {0};
    terok_logs_opts lo = {.struct_size = sizeof lo, .tail = 2};

    free(create_ok("c1", ARGV("echo", "1", ";", "echo", "2", ";", "echo", "3")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->logs(st, "c1", &lo, capture_cb, &cap, &err), &err);
    cr_assert(eq(str, cap.out, "2\n3\n"));
    memset(&cap, 0, sizeof cap);
    lo.tail = 1;
    lo.flags = TEROK_LOGS_TIMESTAMPS | TEROK_LOGS_FOLLOW; /* not running: follow ends at once */
    terok_assert_ok(ops->logs(st, "c1", &lo, capture_cb, &cap, &err), &err);
    cr_assert(strlen(cap.out) == strlen("2024-01-01T00:00:00.000000000Z 3\n"), "%s", cap.out);
    cr_assert(contains(cap.out, "Z 3\n"));
}

Test(runtime_null, logs_follow_ends_when_the_container_stops)
{
    capture cap = {0};
    terok_logs_opts lo = {.struct_size = sizeof lo, .flags = TEROK_LOGS_FOLLOW, .tail = -1};
    pid_t pid;

    free(create_ok("c1", ARGV("echo", "before", ";", "sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    pid = fork();
    if (pid == 0) {
        void *s2 = NULL;
        usleep(100 * 1000);
        _exit(ops->open(&h_self, NULL, &s2, NULL) < 0 || ops->stop(s2, "c1", 1, NULL) < 0);
    }
    terok_assert_ok(ops->logs(st, "c1", &lo, capture_cb, &cap, &err), &err);
    cr_assert(eq(str, cap.out, "before\n"));
    waitpid(pid, NULL, 0);
}

Test(runtime_null, copy_in_then_cat)
{
    capture cap = {0};
    terok_exec_spec e = {.struct_size = sizeof e,
                         .argv = ARGV("cat", "/work/dir/a.txt", ";", "cat", "/etc/nothing"),
                         .stdin_fd = -1,
                         .output = capture_cb,
                         .userdata = &cap};
    char *doc;
    int code = -1;

    test_write_file("src/dir/a.txt", "alpha\n", 0644);
    free(create_ok("c1", ARGV("sleep")));
    terok_assert_ok(ops->copy_in(st, "c1", test_path("src/dir"), "/work/", &err), &err);
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->exec(st, "c1", &e, &code, &err), &err);
    cr_assert(eq(str, cap.out, "alpha\n"));
    cr_assert(eq(str, cap.errb, "cat: /etc/nothing: No such file or directory\n"));
    cr_assert(eq(int, code, 1));
    doc = slurp("containers/c1.json");
    cr_assert(contains(doc, "\"container_path\":\"/work/\""), "%s", doc);
    free(doc);
    cr_assert(eq(int, ops->copy_in(st, "c1", test_path("src"), "/../escape", &err), -EINVAL));
    cr_assert(eq(str, err.message,
                 "container path '/../escape' must be absolute without '..' components"));
}

typedef struct img {
    char entry[256], cmd[256];
} img;

static int img_cb(void *ud, const terok_image_info *i)
{
    img *m = ud;

    for (const char *const *p = i->entrypoint; p && *p; p++)
        snprintf(m->entry + strlen(m->entry), sizeof m->entry - strlen(m->entry), "%s|", *p);
    for (const char *const *p = i->cmd; p && *p; p++)
        snprintf(m->cmd + strlen(m->cmd), sizeof m->cmd - strlen(m->cmd), "%s|", *p);
    return 0;
}

Test(runtime_null, image_inspect)
{
    img m = {0};

    terok_assert_ok(ops->image_inspect(st, "localhost/null:latest", img_cb, &m, &err), &err);
    cr_assert(eq(str, m.entry, "/bin/null-init|"));
    cr_assert(eq(str, m.cmd, "echo|hello|"));
    memset(&m, 0, sizeof m);
    terok_assert_ok(ops->image_inspect(st, "null-cmd", img_cb, &m, &err), &err);
    cr_assert(eq(str, m.entry, ""));
    cr_assert(eq(int, ops->image_inspect(st, "busybox", img_cb, &m, &err), -ENOENT));
    cr_assert(eq(str, err.message, "image 'busybox' not known"));
}

typedef struct evs {
    char buf[1024];
    int n, stop_after;
} evs;

static int ev_cb(void *ud, const terok_event *e)
{
    evs *v = ud;

    snprintf(v->buf + strlen(v->buf), sizeof v->buf - strlen(v->buf), "%s:%s:%d,", e->action,
             e->name, e->exit_code);
    return ++v->n >= v->stop_after;
}

Test(runtime_null, events_replay_and_filter)
{
    static const char *const managed[] = {"org.terok.managed=1", NULL};
    terok_list_filter f = {.struct_size = sizeof f, .labels = managed};
    evs v = {.stop_after = 3};

    free(create_ok("c1", ARGV("exit", "4")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    terok_assert_ok(ops->events(st, &f, ev_cb, &v, &err), &err);
    cr_assert(eq(str, v.buf, "create:c1:-1,start:c1:-1,died:c1:4,"));
}

Test(runtime_null, events_follow_new_ones)
{
    evs v = {.stop_after = 2};
    pid_t pid = fork();

    if (pid == 0) {
        void *s2 = NULL;
        char *id = NULL;
        terok_run_spec s = spec_for("late", ARGV("true"));
        usleep(100 * 1000);
        _exit(ops->open(&h_self, NULL, &s2, NULL) < 0 || ops->create(s2, &s, &id, NULL) < 0 ||
              ops->start(s2, "late", NULL) < 0);
    }
    terok_assert_ok(ops->events(st, NULL, ev_cb, &v, &err), &err);
    cr_assert(eq(str, v.buf, "create:late:-1,start:late:-1,"));
    waitpid(pid, NULL, 0);
}

Test(runtime_null, ctl)
{
    terok_runtime_ctl_info info = {.struct_size = sizeof info};

    terok_assert_ok(ops->ctl(st, TEROK_RUNTIME_CTL_INFO, &info, &err), &err);
    cr_assert(eq(str, (char *)info.api_version, "null-1"));
    cr_assert(eq(str, (char *)info.endpoint, h_state));
    cr_assert(eq(int, ops->ctl(st, 0x4242, NULL, &err), -EOPNOTSUPP));
    cr_assert(eq(str, err.message, "ctl op 16962 is not supported by runtime-null"));
}

Test(runtime_null, state_persists_across_instances)
{
    void *s2;
    info_copy ic = {0};

    free(create_ok("c1", ARGV("sleep")));
    terok_assert_ok(ops->start(st, "c1", &err), &err);
    s2 = open_instance();
    terok_assert_ok(ops->inspect(s2, "c1", info_cb, &ic, &err), &err);
    cr_assert(eq(u32, ic.state, TEROK_CONTAINER_RUNNING));
    ops->close(s2);
}

Test(runtime_null, concurrent_creators_in_two_processes)
{
    terok_list_filter f = {.struct_size = sizeof f, .flags = TEROK_LIST_ALL};
    names n = {0};
    pid_t pids[2];
    int count = 0;

    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            void *s2 = NULL;
            if (ops->open(&h_self, NULL, &s2, NULL) < 0)
                _exit(1);
            for (int i = 0; i < 25; i++) {
                char name[32], *id = NULL;
                snprintf(name, sizeof name, "p%d-%02d", p, i);
                terok_run_spec s = spec_for(name, ARGV("true"));
                if (ops->create(s2, &s, &id, NULL) < 0 || ops->start(s2, name, NULL) < 0)
                    _exit(2);
                free(id);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < 2; p++) {
        int status;
        cr_assert(waitpid(pids[p], &status, 0) == pids[p]);
        cr_assert(eq(int, WEXITSTATUS(status), 0));
    }
    terok_assert_ok(ops->list(st, &f, names_cb, &n, &err), &err);
    for (char *p = n.buf; (p = strchr(p, ',')); p++)
        count++;
    cr_assert(eq(int, count, 50), "%s", n.buf);
}

Test(runtime_null, null_and_invalid_arguments)
{
    terok_run_spec s = spec_for("c1", ARGV("true"));
    terok_exec_spec e = {.struct_size = sizeof e, .argv = ARGV("true")};
    char *id = NULL;
    int code;

    cr_assert(eq(int, ops->create(NULL, &s, &id, &err), -EINVAL));
    cr_assert(err.message != NULL && *err.message);
    cr_assert(eq(int, ops->create(st, NULL, &id, &err), -EINVAL));
    cr_assert(eq(int, ops->create(st, &s, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->start(st, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->stop(st, NULL, 1, &err), -EINVAL));
    cr_assert(eq(int, ops->kill(st, NULL, 9, &err), -EINVAL));
    cr_assert(eq(int, ops->remove(st, NULL, 0, &err), -EINVAL));
    cr_assert(eq(int, ops->wait(st, "c1", 1, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->inspect(st, "c1", NULL, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->list(st, NULL, NULL, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->exec(st, "c1", NULL, &code, &err), -EINVAL));
    cr_assert(eq(int, ops->logs(st, NULL, NULL, capture_cb, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->copy_in(st, "c1", NULL, "/x", &err), -EINVAL));
    cr_assert(eq(int, ops->image_inspect(st, NULL, img_cb, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->events(st, NULL, NULL, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->ctl(NULL, TEROK_RUNTIME_CTL_INFO, NULL, &err), -EINVAL));
    cr_assert(eq(int, ops->exec(st, "c1", &e, NULL, &err), -EINVAL));
    ops->close(NULL); /* accepts NULL */

    s.name = "../../etc";
    cr_assert(eq(int, ops->create(st, &s, &id, &err), -EINVAL));
    cr_assert(eq(str, err.message, "invalid container name '../../etc'"));
    s.name = "c1";
    s.argv = no_strv;
    cr_assert(eq(int, ops->create(st, &s, &id, &err), -EINVAL));
    cr_assert(eq(str, err.message, "create 'c1': empty argv"));
    cr_assert(eq(int, ops->kill(st, "c1", 0, &err), -EINVAL));
}

Test(runtime_null, newer_struct_with_unknown_fields_is_refused)
{
    struct {
        terok_run_spec s;
        uint64_t newer;
    } big = {.s = spec_for("c1", ARGV("true")), .newer = 1};
    char *id = NULL;

    big.s.struct_size = sizeof big;
    cr_assert(eq(int, ops->create(st, &big.s, &id, &err), -E2BIG));
    big.newer = 0;
    terok_assert_ok(ops->create(st, &big.s, &id, &err), &err);
    free(id);
    big.s.struct_size = 8;
    big.s.name = "c2";
    cr_assert(eq(int, ops->create(st, &big.s, &id, &err), -EINVAL));
}

Test(runtime_null, state_dir_is_private)
{
    struct stat sb;

    cr_assert(stat(h_state, &sb) == 0);
    cr_assert(eq(u32, sb.st_mode & 0777, 0700));
}
