/* SPDX-License-Identifier: Apache-2.0 */
/* test-contract.c: the contract every plugin keeps, run over every *.so in
 * $TEROK_TEST_PLUGIN_DIR through the real loader: descriptor invariants, the kind's required ops,
 * caps consistent with ops, only terok_plugin_init exported, open with no config section works
 * or fails cleanly, close(NULL) is a no-op, and NULL or empty arguments give a negative errno
 * with a message (never a crash, never an out-parameter written on failure). Generic per kind:
 * a new plugin is covered by dropping it in the directory. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "error.h"
#include "loader.h"
#include "terok-test.h"

/* A test case is an index into the sorted *.so list of the directory. Criterion's workers are
 * fresh processes that only see the runner's constant data, so the parameters are a constant
 * table of indices and each worker lists the directory again (it does not change during a run). */
#define MAX_PLUGINS 64
static const int plugin_indices[MAX_PLUGINS] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
};

struct plugin_case {
    char path[1024];
    char file[256];
};

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted *.so names of $TEROK_TEST_PLUGIN_DIR; returns the count. */
static size_t list_plugins(char *names[MAX_PLUGINS])
{
    const char *dir = getenv("TEROK_TEST_PLUGIN_DIR");
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    size_t n = 0;

    while (d && (de = readdir(d)) && n < MAX_PLUGINS) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".so") != 0 || de->d_name[0] == '.')
            continue;
        names[n++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, strcmp_ptr);
    return n;
}

static struct criterion_test_params plugin_cases(void)
{
    char *names[MAX_PLUGINS];
    size_t n = list_plugins(names);

    for (size_t i = 0; i < n; i++)
        free(names[i]);
    /* None: one case, which fails saying so. */
    return cr_make_param_array(int, (void *)plugin_indices, n ? n : 1);
}

static struct plugin_case case_at(int index)
{
    struct plugin_case c = {{0}, {0}};
    char *names[MAX_PLUGINS];
    size_t n = list_plugins(names);

    if ((size_t)index < n) {
        snprintf(c.path, sizeof c.path, "%s/%s", getenv("TEROK_TEST_PLUGIN_DIR"), names[index]);
        snprintf(c.file, sizeof c.file, "%s", names[index]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return c;
}

static void contract_setup(void)
{
    test_tmpdir_setup();
}

/* runtime-podman starts a private Podman service when none answers, and it outlives the test
 * (idle timeout). Left running, it is a second service on the same storage while the podman
 * suites run, which wedges Podman 4.3: stop it with the test. */
static void stop_private_podman(void)
{
    const char *rt = getenv("TEROK_SANDBOX_RUNTIME_DIR");
    char path[4096];
    long pid = 0;
    FILE *f;

    if (!rt)
        return;
    snprintf(path, sizeof path, "%s/runtime-podman/podman.pid", rt);
    f = fopen(path, "re");
    if (!f)
        return;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1 || kill((pid_t)pid, SIGTERM) < 0)
        return;
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        (void)waitpid((pid_t)pid, NULL, WNOHANG);
        nanosleep(&ts, NULL);
    }
    if (kill((pid_t)pid, 0) == 0)
        (void)kill((pid_t)pid, SIGKILL);
}

static void contract_teardown(void)
{
    stop_private_podman();
    test_tmpdir_teardown();
}

TestSuite(contract, .init = contract_setup, .fini = contract_teardown, .timeout = 60.);

/* Load through the real loader, with private state and runtime dirs for open(). */
static plugin *load(const struct plugin_case *c)
{
    static char state[1024], run[1024];
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;

    cr_assert(c->path[0] != 0, "no plugin (*.so) in $TEROK_TEST_PLUGIN_DIR ('%s')",
              getenv("TEROK_TEST_PLUGIN_DIR") ? getenv("TEROK_TEST_PLUGIN_DIR") : "unset");
    terok_assert_ok(loader_load_file(c->path, &p, &err), &err);
    snprintf(state, sizeof state, "%s/state/%s", test_tmp, p->label);
    snprintf(run, sizeof run, "%s/run", test_tmp);
    mkdir(test_path("state"), 0700);
    cr_assert(mkdir(state, 0700) == 0 || errno == EEXIST);
    cr_assert(mkdir(run, 0700) == 0 || errno == EEXIST);
    p->state_dir = state;
    p->runtime_dir = run;
    return p;
}

/* --- per-kind tables (the contract as written down, independent of the loader's copy) ------ */

typedef struct op_spec {
    const char *name;
    size_t offset;
    uint64_t cap; /* 0: always; else required when the cap is claimed */
} op_spec;

#define OP(t, m, cap)                                                                              \
    {                                                                                              \
#m, offsetof(t, m), cap                                                                    \
    }
static const op_spec runtime_spec[] = {
    OP(terok_runtime_ops, open, 0),
    OP(terok_runtime_ops, close, 0),
    OP(terok_runtime_ops, create, 0),
    OP(terok_runtime_ops, start, 0),
    OP(terok_runtime_ops, stop, 0),
    OP(terok_runtime_ops, kill, 0),
    OP(terok_runtime_ops, remove, 0),
    OP(terok_runtime_ops, wait, 0),
    OP(terok_runtime_ops, inspect, 0),
    OP(terok_runtime_ops, list, 0),
    OP(terok_runtime_ops, image_inspect, 0),
    OP(terok_runtime_ops, exec, TEROK_RUNTIME_CAP_EXEC),
    OP(terok_runtime_ops, exec, TEROK_RUNTIME_CAP_TTY),
    OP(terok_runtime_ops, logs, TEROK_RUNTIME_CAP_LOGS),
    OP(terok_runtime_ops, events, TEROK_RUNTIME_CAP_EVENTS),
    OP(terok_runtime_ops, copy_in, TEROK_RUNTIME_CAP_COPY),
};
static const op_spec vault_spec[] = {
    OP(terok_vault_ops, open, 0),
    OP(terok_vault_ops, close, 0),
    OP(terok_vault_ops, get, 0),
    OP(terok_vault_ops, list, 0),
    OP(terok_vault_ops, status, 0),
    OP(terok_vault_ops, put, TEROK_VAULT_CAP_WRITE),
    OP(terok_vault_ops, remove, TEROK_VAULT_CAP_WRITE),
    OP(terok_vault_ops, unlock, TEROK_VAULT_CAP_NEEDS_UNLOCK),
    OP(terok_vault_ops, lock, TEROK_VAULT_CAP_NEEDS_UNLOCK),
};
static const op_spec gate_spec[] = {
    OP(terok_gate_ops, open, 0),
    OP(terok_gate_ops, close, 0),
    OP(terok_gate_ops, repo_create, 0),
    OP(terok_gate_ops, repo_delete, 0),
    OP(terok_gate_ops, repo_list, 0),
    OP(terok_gate_ops, grant, 0),
    OP(terok_gate_ops, revoke, 0),
    OP(terok_gate_ops, authorize, 0),
    OP(terok_gate_ops, review, 0),
    OP(terok_gate_ops, diff, 0),
    OP(terok_gate_ops, serve, TEROK_GATE_CAP_SMART_HTTP),
    OP(terok_gate_ops, sync, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, pending_list, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, pending_apply, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, forward, TEROK_GATE_CAP_UPSTREAM),
    OP(terok_gate_ops, backups_list, TEROK_GATE_CAP_BACKUPS),
    OP(terok_gate_ops, backup_restore, TEROK_GATE_CAP_BACKUPS),
};
static const op_spec shield_spec[] = {
    OP(terok_shield_ops, open, 0),
    OP(terok_shield_ops, close, 0),
    OP(terok_shield_ops, prepare, 0),
    OP(terok_shield_ops, apply, 0),
    OP(terok_shield_ops, verify, 0),
    OP(terok_shield_ops, cleanup, 0),
    OP(terok_shield_ops, posture_get, 0),
    OP(terok_shield_ops, rules, 0),
    OP(terok_shield_ops, posture_set, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, allow, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, deny, TEROK_SHIELD_CAP_LIVE),
    OP(terok_shield_ops, events_fd, TEROK_SHIELD_CAP_EVENTS),
    OP(terok_shield_ops, events_dispatch, TEROK_SHIELD_CAP_EVENTS),
};
static const op_spec clearance_spec[] = {
    OP(terok_clearance_ops, open, 0),   OP(terok_clearance_ops, close, 0),
    OP(terok_clearance_ops, ask, 0),    OP(terok_clearance_ops, cancel, 0),
    OP(terok_clearance_ops, get_fd, 0), OP(terok_clearance_ops, dispatch, 0),
};

static const struct kind_spec {
    const op_spec *ops;
    size_t n_ops;
    size_t size_1_0;
    unsigned n_caps;
} kind_specs[] = {
    [TEROK_PLUGIN_KIND_RUNTIME] = {runtime_spec, ELEMENTSOF(runtime_spec),
                                   offsetof(terok_runtime_ops, ctl) + sizeof(void *), 7},
    [TEROK_PLUGIN_KIND_VAULT] = {vault_spec, ELEMENTSOF(vault_spec),
                                 offsetof(terok_vault_ops, ctl) + sizeof(void *), 4},
    [TEROK_PLUGIN_KIND_GATE] = {gate_spec, ELEMENTSOF(gate_spec),
                                offsetof(terok_gate_ops, ctl) + sizeof(void *), 4},
    [TEROK_PLUGIN_KIND_SHIELD] = {shield_spec, ELEMENTSOF(shield_spec),
                                  offsetof(terok_shield_ops, ctl) + sizeof(void *), 6},
    [TEROK_PLUGIN_KIND_CLEARANCE] = {clearance_spec, ELEMENTSOF(clearance_spec),
                                     offsetof(terok_clearance_ops, ctl) + sizeof(void *), 3},
};

static bool has_op(const plugin *p, size_t offset)
{
    void (*fn)(void);

    memcpy(&fn, (const char *)&p->ops + offset, sizeof fn);
    return fn != NULL;
}

/* --- descriptor and table ------------------------------------------------------------------ */

ParameterizedTestParameters(contract, descriptor)
{
    return plugin_cases();
}

ParameterizedTest(int *idx, contract, descriptor)
{
    struct plugin_case case_ = case_at(*idx), *c = &case_;
    plugin *p = load(c);
    char expect_file[256];
    uint32_t size;

    snprintf(expect_file, sizeof expect_file, "%s-%s.so", plugin_kind_to_string(p->kind), p->name);
    cr_assert(eq(str, c->file, expect_file), "kind and name match the file name");
    cr_assert(plugin_name_is_valid(p->name));
    cr_assert(p->version && *p->version, "a version for `plugins list`");
    cr_assert(eq(u32, p->abi_major, TEROK_PLUGIN_ABI_MAJOR));
    cr_assert(p->abi_minor <= TEROK_PLUGIN_ABI_MINOR);

    memcpy(&size, &p->ops, sizeof size);
    cr_assert(size >= kind_specs[p->kind].size_1_0, "%s: ops struct_size %u below the 1.0 size",
              c->file, size);
    cr_assert(size <= 4096);
    for (unsigned bit = kind_specs[p->kind].n_caps; bit < 64; bit++) {
        uint64_t unknown = p->caps & (UINT64_C(1) << bit);
        cr_assert(unknown == 0, "%s claims unknown capability bit %u", c->file, bit);
    }
    plugin_unload(p);
}

ParameterizedTestParameters(contract, required_ops)
{
    return plugin_cases();
}

ParameterizedTest(int *idx, contract, required_ops)
{
    struct plugin_case case_ = case_at(*idx), *c = &case_;
    plugin *p = load(c);
    const struct kind_spec *k = &kind_specs[p->kind];

    for (size_t i = 0; i < k->n_ops; i++) {
        if (k->ops[i].cap && !(p->caps & k->ops[i].cap))
            continue;
        cr_expect(has_op(p, k->ops[i].offset), "%s: op '%s' missing", c->file, k->ops[i].name);
    }
    plugin_unload(p);
}

/* Plugins export only terok_plugin_init (version script) and never reach into the core
 * (-Wl,-z,defs: every undefined symbol comes from a library the plugin links). */
ParameterizedTestParameters(contract, exports_only_the_init_symbol)
{
    return plugin_cases();
}

ParameterizedTest(int *idx, contract, exports_only_the_init_symbol)
{
    struct plugin_case case_ = case_at(*idx), *c = &case_;
    Elf *e;
    Elf_Scn *scn = NULL;
    int fd, exported = 0;

    cr_assert(c->path[0] != 0, "no plugin (*.so) in $TEROK_TEST_PLUGIN_DIR");
    cr_assert(elf_version(EV_CURRENT) != EV_NONE);
    fd = open(c->path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    e = elf_begin(fd, ELF_C_READ, NULL);
    cr_assert(e != NULL, "%s is not ELF", c->file);
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        Elf_Data *data;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
            continue;
        data = elf_getdata(scn, NULL);
        for (size_t i = 0; data && sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            const char *name;

            if (!gelf_getsym(data, (int)i, &sym))
                continue;
            name = elf_strptr(e, sh.sh_link, sym.st_name);
            if (!name || !*name || GELF_ST_BIND(sym.st_info) == STB_LOCAL)
                continue;
            if (sym.st_shndx == SHN_UNDEF) {
                cr_expect(strncmp(name, "terok_", 6) != 0,
                          "%s: undefined '%s': plugins reach the host only through the host "
                          "table",
                          c->file, name);
                continue;
            }
            cr_expect(eq(str, (char *)name, "terok_plugin_init"),
                      "%s exports '%s': build with the SDK's version script", c->file, name);
            exported++;
        }
    }
    elf_end(e);
    close(fd);
    cr_assert(eq(int, exported, 1), "%s exports terok_plugin_init", c->file);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

typedef int (*open_fn)(terok_plugin *, const terok_config_section *, void **, terok_error *);
typedef int (*ctl_fn)(void *, uint32_t, void *, terok_error *);

/* open and close sit at the same place in every kind's table; ctl is last, so it moves. */
_Static_assert(offsetof(terok_runtime_ops, open) == offsetof(terok_vault_ops, open) &&
                   offsetof(terok_runtime_ops, open) == offsetof(terok_gate_ops, open) &&
                   offsetof(terok_runtime_ops, open) == offsetof(terok_shield_ops, open) &&
                   offsetof(terok_runtime_ops, open) == offsetof(terok_clearance_ops, open) &&
                   offsetof(terok_runtime_ops, close) == offsetof(terok_clearance_ops, close) &&
                   offsetof(terok_runtime_ops, close) == offsetof(terok_vault_ops, close) &&
                   offsetof(terok_runtime_ops, close) == offsetof(terok_gate_ops, close) &&
                   offsetof(terok_runtime_ops, close) == offsetof(terok_shield_ops, close),
               "open/close share their place");

static open_fn op_open(const plugin *p)
{
    return p->ops.runtime.open;
}

static ctl_fn op_ctl(const plugin *p)
{
    switch (p->kind) {
    case TEROK_PLUGIN_KIND_RUNTIME:
        return p->ops.runtime.ctl;
    case TEROK_PLUGIN_KIND_VAULT:
        return p->ops.vault.ctl;
    case TEROK_PLUGIN_KIND_GATE:
        return p->ops.gate.ctl;
    case TEROK_PLUGIN_KIND_SHIELD:
        return p->ops.shield.ctl;
    case TEROK_PLUGIN_KIND_CLEARANCE:
        return p->ops.clearance.ctl;
    }
    return NULL;
}

static void op_close(const plugin *p, void *state)
{
    p->ops.runtime.close(state);
}

ParameterizedTestParameters(contract, open_and_close)
{
    return plugin_cases();
}

ParameterizedTest(int *idx, contract, open_and_close)
{
    struct plugin_case case_ = case_at(*idx), *c = &case_;
    plugin *p = load(c);
    terok_error err = TEROK_ERROR_INIT;
    void *sentinel = &err, *a = sentinel, *b = sentinel;
    int r;

    op_close(p, NULL); /* a no-op */

    r = op_open(p)(p, NULL, &a, &err);
    if (r < 0) {
        /* Allowed (a backend may need its section or a service), but cleanly. */
        cr_assert(a == sentinel, "%s: open failed but wrote *ret_state", c->file);
        cr_assert(err.message != NULL, "%s: open failed (%d) without a message", c->file, r);
        cr_log_info("%s: open without a config section: %s", c->file, err.message);
        terok_error_clear(&err);
        cr_assert(op_open(p)(p, NULL, &a, NULL) < 0, "same failure without an error record");
        plugin_unload(p);
        return;
    }
    /* Two instances at once, closed in either order. */
    terok_assert_ok(op_open(p)(p, NULL, &b, &err), &err);
    op_close(p, a);
    op_close(p, b);
    cr_assert(op_open(p)(p, NULL, NULL, &err) < 0, "%s: open with no place for the state", c->file);
    terok_error_clear(&err);
    plugin_unload(p);
}

/* --- bad arguments ------------------------------------------------------------------------- */

static int nop_cb(void)
{
    return 0;
}
#define CB(type) ((type)(void (*)(void))nop_cb)

/* Call ops->fn(args..., &err) and ops->fn(args..., NULL): both must fail with a negative errno,
 * the first with a message and a matching code. Skipped when the plugin lacks the op. */
#define EXPECT_FAILS(ops, fn, ...)                                                                 \
    do {                                                                                           \
        if ((ops)->fn) {                                                                           \
            terok_error e_ = TEROK_ERROR_INIT;                                                     \
            int r_ = (ops)->fn(__VA_ARGS__, &e_);                                                  \
            cr_expect(r_ < 0, "%s: " #fn "(" #__VA_ARGS__ ") returned %d", c->file, r_);           \
            cr_expect(e_.message != NULL,                                                          \
                      "%s: " #fn "(" #__VA_ARGS__ ") failed without a message", c->file);          \
            bool consistent_ = !e_.message || e_.code == r_;                                       \
            cr_expect(consistent_, "%s: " #fn ": err.code %d differs from the return %d", c->file, \
                      e_.code, r_);                                                                \
            terok_error_clear(&e_);                                                                \
            r_ = (ops)->fn(__VA_ARGS__, NULL);                                                     \
            cr_expect(r_ < 0, "%s: " #fn "(" #__VA_ARGS__ ", NULL err) returned %d", c->file, r_); \
        }                                                                                          \
    } while (0)

static void bad_runtime_args(const struct plugin_case *c, const terok_runtime_ops *o, void *s)
{
    terok_run_spec empty_spec = {.struct_size = sizeof empty_spec};
    terok_exec_spec no_argv = {
        .struct_size = sizeof no_argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    char *id = (char *)"sentinel";
    int code = 12345;

    EXPECT_FAILS(o, create, s, NULL, &id);
    EXPECT_FAILS(o, create, s, &empty_spec, &id);
    cr_expect(eq(str, id, "sentinel"), "%s: create wrote *ret_id on failure", c->file);
    EXPECT_FAILS(o, start, s, NULL);
    EXPECT_FAILS(o, start, s, "");
    EXPECT_FAILS(o, stop, s, NULL, 1);
    EXPECT_FAILS(o, kill, s, NULL, 15);
    EXPECT_FAILS(o, remove, s, NULL, 0);
    EXPECT_FAILS(o, wait, s, NULL, 0, &code);
    EXPECT_FAILS(o, wait, s, "contract-x", 0, NULL);
    cr_expect(eq(int, code, 12345), "%s: wait wrote *ret_exit_code on failure", c->file);
    EXPECT_FAILS(o, inspect, s, NULL, CB(terok_container_cb), NULL);
    EXPECT_FAILS(o, inspect, s, "", CB(terok_container_cb), NULL);
    EXPECT_FAILS(o, inspect, s, "contract-x", NULL, NULL);
    EXPECT_FAILS(o, list, s, NULL, NULL, NULL);
    EXPECT_FAILS(o, image_inspect, s, NULL, CB(terok_image_cb), NULL);
    EXPECT_FAILS(o, image_inspect, s, "contract-image", NULL, NULL);
    EXPECT_FAILS(o, exec, s, NULL, &no_argv, &code);
    EXPECT_FAILS(o, exec, s, "contract-x", NULL, &code);
    EXPECT_FAILS(o, exec, s, "contract-x", &no_argv, &code);
    cr_expect(eq(int, code, 12345), "%s: exec wrote *ret_exit_code on failure", c->file);
    EXPECT_FAILS(o, logs, s, NULL, NULL, CB(terok_output_cb), NULL);
    EXPECT_FAILS(o, logs, s, "contract-x", NULL, NULL, NULL);
    EXPECT_FAILS(o, copy_in, s, NULL, "/etc/hostname", "/tmp/x");
    EXPECT_FAILS(o, copy_in, s, "contract-x", NULL, "/tmp/x");
    EXPECT_FAILS(o, copy_in, s, "contract-x", "/etc/hostname", NULL);
    EXPECT_FAILS(o, events, s, NULL, NULL, NULL);
}

static void bad_vault_args(const struct plugin_case *c, const terok_vault_ops *o, void *s)
{
    terok_secret *secret = (terok_secret *)&secret;

    EXPECT_FAILS(o, put, s, NULL, NULL, NULL, NULL);
    EXPECT_FAILS(o, put, s, "contract", NULL, NULL, NULL);
    EXPECT_FAILS(o, get, s, NULL, &secret);
    EXPECT_FAILS(o, get, s, "", &secret);
    EXPECT_FAILS(o, get, s, "contract", NULL);
    cr_expect(secret == (terok_secret *)&secret, "%s: get wrote *ret_secret on failure", c->file);
    EXPECT_FAILS(o, remove, s, NULL);
    EXPECT_FAILS(o, list, s, NULL, NULL);
    EXPECT_FAILS(o, status, s, NULL, NULL);
}

static void bad_gate_args(const struct plugin_case *c, const terok_gate_ops *o, void *s)
{
    uint32_t decision = 77;

    EXPECT_FAILS(o, repo_create, s, NULL);
    EXPECT_FAILS(o, repo_delete, s, NULL);
    EXPECT_FAILS(o, repo_delete, s, "");
    EXPECT_FAILS(o, repo_list, s, NULL, NULL);
    EXPECT_FAILS(o, sync, s, NULL, CB(terok_gate_json_cb), NULL);
    EXPECT_FAILS(o, pending_list, s, NULL, CB(terok_gate_json_cb), NULL);
    EXPECT_FAILS(o, pending_apply, s, NULL, "refs/heads/main");
    EXPECT_FAILS(o, grant, s, NULL, "repo", TEROK_GATE_READ);
    EXPECT_FAILS(o, grant, s, "contract-x", NULL, TEROK_GATE_READ);
    EXPECT_FAILS(o, revoke, s, NULL, "repo");
    EXPECT_FAILS(o, authorize, s, NULL, "repo", TEROK_GATE_READ, &decision);
    EXPECT_FAILS(o, authorize, s, "contract-x", "repo", TEROK_GATE_READ, NULL);
    cr_expect(eq(u32, decision, 77), "%s: authorize wrote a decision on failure", c->file);
    EXPECT_FAILS(o, serve, s, NULL);
    EXPECT_FAILS(o, review, s, NULL, "repo", CB(terok_gate_branch_cb), NULL);
    EXPECT_FAILS(o, review, s, "contract-x", "repo", NULL, NULL);
    EXPECT_FAILS(o, diff, s, "contract-x", "repo", NULL, CB(terok_gate_text_cb), NULL);
    EXPECT_FAILS(o, forward, s, NULL, "repo", "main", NULL, 0);
    EXPECT_FAILS(o, backups_list, s, NULL, CB(terok_gate_json_cb), NULL);
    EXPECT_FAILS(o, backup_restore, s, NULL, "b");
}

static void bad_shield_args(const struct plugin_case *c, const terok_shield_ops *o, void *s)
{
    terok_shield_policy no_container = {.struct_size = sizeof no_container};
    terok_shield_prepared out = {.struct_size = sizeof out};
    uint32_t posture = 77;
    int fd = 12345;

    EXPECT_FAILS(o, prepare, s, NULL, &out);
    EXPECT_FAILS(o, prepare, s, &no_container, &out);
    EXPECT_FAILS(o, prepare, s, &no_container, NULL);
    cr_expect(out.bundle_path == NULL && out.annotations == NULL,
              "%s: prepare filled *out on failure", c->file);
    EXPECT_FAILS(o, apply, s, NULL, 1);
    EXPECT_FAILS(o, verify, s, NULL, 1);
    EXPECT_FAILS(o, cleanup, s, NULL);
    EXPECT_FAILS(o, posture_set, s, NULL, TEROK_SHIELD_UP);
    EXPECT_FAILS(o, posture_get, s, NULL, &posture);
    EXPECT_FAILS(o, posture_get, s, "contract-x", NULL);
    cr_expect(eq(u32, posture, 77), "%s: posture_get wrote on failure", c->file);
    EXPECT_FAILS(o, allow, s, NULL, "192.0.2.1", 0);
    EXPECT_FAILS(o, allow, s, "contract-x", NULL, 0);
    EXPECT_FAILS(o, deny, s, "contract-x", NULL);
    EXPECT_FAILS(o, rules, s, NULL, CB(terok_shield_text_cb), NULL);
    EXPECT_FAILS(o, rules, s, "contract-x", NULL, NULL);
    EXPECT_FAILS(o, events_fd, s, NULL, &fd);
    EXPECT_FAILS(o, events_fd, s, "contract-x", NULL);
    cr_expect(eq(int, fd, 12345), "%s: events_fd wrote *ret_fd on failure", c->file);
    EXPECT_FAILS(o, events_dispatch, s, "contract-x", NULL, NULL);
}

static void bad_clearance_args(const struct plugin_case *c, const terok_clearance_ops *o, void *s)
{
    terok_clearance_request req = {.struct_size = sizeof req,
                                   .container = "contract-x",
                                   .dest_ip = "192.0.2.1",
                                   .dest_port = 443};
    uint64_t id = 77;

    EXPECT_FAILS(o, ask, s, NULL, &id);
    EXPECT_FAILS(o, ask, s, &req, NULL);
    cr_expect(eq(u64, id, 77), "%s: ask wrote *ret_request_id on failure", c->file);
    EXPECT_FAILS(o, get_fd, s, NULL);
    EXPECT_FAILS(o, dispatch, s, NULL, NULL);
}

ParameterizedTestParameters(contract, bad_arguments)
{
    return plugin_cases();
}

ParameterizedTest(int *idx, contract, bad_arguments)
{
    struct plugin_case case_ = case_at(*idx), *c = &case_;
    plugin *p = load(c);
    terok_error err = TEROK_ERROR_INIT;
    void *s = NULL;

    if (op_open(p)(p, NULL, &s, &err) < 0) {
        /* open_and_close checks that this failure is clean; nothing to call ops on here. */
        cr_log_info("%s: cannot open without a config section (%s); argument checks need an "
                    "instance",
                    c->file, terok_error_message(&err));
        terok_error_clear(&err);
        plugin_unload(p);
        return;
    }
    switch (p->kind) {
    case TEROK_PLUGIN_KIND_RUNTIME:
        bad_runtime_args(c, &p->ops.runtime, s);
        break;
    case TEROK_PLUGIN_KIND_VAULT:
        bad_vault_args(c, &p->ops.vault, s);
        break;
    case TEROK_PLUGIN_KIND_GATE:
        bad_gate_args(c, &p->ops.gate, s);
        break;
    case TEROK_PLUGIN_KIND_SHIELD:
        bad_shield_args(c, &p->ops.shield, s);
        break;
    case TEROK_PLUGIN_KIND_CLEARANCE:
        bad_clearance_args(c, &p->ops.clearance, s);
        break;
    }
    /* Unknown ctl opcodes (third-party range included) are -EOPNOTSUPP. */
    if (op_ctl(p)) {
        cr_expect(eq(int, op_ctl(p)(s, 0x7fffffffu, NULL, &err), -EOPNOTSUPP),
                  "%s: ctl of an unknown opcode", c->file);
        terok_error_clear(&err);
    }
    op_close(p, s);
    plugin_unload(p);
}
