/* SPDX-License-Identifier: Apache-2.0 */
/* test-loader.c: the plugin loader against deliberately broken plugins (tests/fixtures/plugins):
 * every rejection with its exact message, the ownership/mode/symlink checks on copies in a
 * per-test directory, the host table, and probing a directory in child processes. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>

#include "error.h"
#include "loader.h"
#include "terok-test.h"
#include "util/strv.h"

#define HOST_ABI "1.0"

static char *plugin_dir;

static void setup(void)
{
    test_tmpdir_setup();
    plugin_dir = strdup(test_path("plugins"));
    cr_assert(mkdir(plugin_dir, 0755) == 0);
}

/* Write a whole small file at an absolute path (proc files): 0 or -1 with errno. */
static int test_write_file_abs(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void teardown(void)
{
    free(plugin_dir);
    test_tmpdir_teardown();
}

TestSuite(loader, .init = setup, .fini = teardown, .timeout = 30.);

/* Copy tests/fixtures/plugins/fx-<variant>.so to <plugin_dir>/<file> with `mode`. */
static const char *install_fixture(const char *variant, const char *file, mode_t mode)
{
    static char dst[4096];
    char src[4096], buf[65536];
    const char *build = getenv("TEROK_TEST_BUILD_DIR");
    int in, out;
    ssize_t n;

    cr_assert(build != NULL, "TEROK_TEST_BUILD_DIR not set (run through meson test)");
    snprintf(src, sizeof src, "%s/tests/fixtures/plugins/fx-%s.so", build, variant);
    snprintf(dst, sizeof dst, "%s/%s", plugin_dir, file);
    in = open(src, O_RDONLY | O_CLOEXEC);
    cr_assert(in >= 0, "fixture %s missing: %s", src, strerror(errno));
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(out >= 0, "cannot create %s", dst);
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
    cr_assert(chmod(dst, mode) == 0);
    return dst;
}

/* Load <kind>-<name>.so from plugin_dir and expect rejection `code` with exactly
 * "plugin '<dir>/<file>': <what> (plugin ABI <abi>, host 1.0)". */
static void expect_rejected(uint32_t kind, const char *name, uint64_t caps, int code,
                            const char *abi, const char *what)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    char expected[16384];
    int r;

    snprintf(expected, sizeof expected, "plugin '%s/%s-%s.so': %s (plugin ABI %s, host %s)",
             plugin_dir, plugin_kind_to_string(kind), name, what, abi, HOST_ABI);
    r = loader_load(plugin_dir, kind, name, caps, &p, &err);
    cr_assert(eq(int, r, code), "expected %d (%s), got %d: %s", code, strerror(-code), r,
              terok_error_message(&err));
    cr_assert(p == NULL, "nothing handed out on failure");
    cr_assert(eq(str, (char *)terok_error_message(&err), expected));
    cr_assert(eq(int, err.code, code));
    terok_error_clear(&err);
}

static void expect_fixture_rejected(const char *variant, int code, const char *abi,
                                    const char *what)
{
    install_fixture(variant, "runtime-fixture.so", 0644);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, code, abi, what);
}

/* --- accepted ---------------------------------------------------------------------------- */

/* Parameters hold no pointers: Criterion's workers are fresh processes (BoxFort), so only the
 * bytes of a parameter travel, not what it points to. */
struct good_case {
    char kind[16];
    uint32_t kind_id;
    uint64_t caps;
};

ParameterizedTestParameters(loader, good_plugin_of_every_kind)
{
    static struct good_case cases[] = {
        {"runtime", TEROK_PLUGIN_KIND_RUNTIME, TEROK_RUNTIME_CAP_EXEC | TEROK_RUNTIME_CAP_LOGS},
        {"vault", TEROK_PLUGIN_KIND_VAULT, TEROK_VAULT_CAP_WRITE},
        {"gate", TEROK_PLUGIN_KIND_GATE, 0},
        {"shield", TEROK_PLUGIN_KIND_SHIELD, 0},
        {"clearance", TEROK_PLUGIN_KIND_CLEARANCE, 0},
    };
    return cr_make_param_array(struct good_case, cases, ELEMENTSOF(cases));
}

ParameterizedTest(struct good_case *c, loader, good_plugin_of_every_kind)
{
    terok_error err = TEROK_ERROR_INIT;
    char variant[64], file[64], path[4096], label[64];
    plugin *p = NULL;

    snprintf(variant, sizeof variant, "good-%s", c->kind);
    snprintf(file, sizeof file, "%s-fixture.so", c->kind);
    snprintf(label, sizeof label, "%s-fixture", c->kind);
    install_fixture(variant, file, 0755);
    snprintf(path, sizeof path, "%s/%s", plugin_dir, file);

    terok_assert_ok(loader_load(plugin_dir, c->kind_id, "fixture", c->caps, &p, &err), &err);
    cr_assert(eq(u32, p->kind, c->kind_id));
    cr_assert(eq(str, p->name, "fixture"));
    cr_assert(eq(str, p->version, "1.2.3"));
    cr_assert(eq(str, p->path, path));
    cr_assert(eq(str, p->label, label));
    cr_assert(eq(u32, p->abi_major, TEROK_PLUGIN_ABI_MAJOR));
    cr_assert(eq(u32, p->abi_minor, TEROK_PLUGIN_ABI_MINOR));
    cr_assert(eq(u64, p->caps, c->caps));
    cr_assert(p->ops.runtime.open != NULL, "open is at the same place in every ops table");
    cr_assert(p->dl != NULL);
    cr_assert(plugin_unload(p) == NULL);
}

Test(loader, required_caps_present)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;

    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture",
                                TEROK_RUNTIME_CAP_EXEC, &p, &err),
                    &err);
    cr_assert(p->ops.runtime.exec != NULL);
    plugin_unload(p);
}

Test(loader, newer_plugin_with_bigger_tables_is_accepted)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;

    install_fixture("bigger", "runtime-fixture.so", 0644);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture",
                                TEROK_RUNTIME_CAP_EXEC, &p, &err),
                    &err);
    /* Every member this host knows was copied, the plugin's longer tail ignored. */
    cr_assert(eq(u32, p->ops.runtime.struct_size,
                 (uint32_t)(sizeof(terok_runtime_ops) + 8 * sizeof(void *))));
    cr_assert(p->ops.runtime.ctl != NULL && p->ops.runtime.exec != NULL);
    cr_assert(eq(u64, p->caps, TEROK_RUNTIME_CAP_EXEC));
    plugin_unload(p);
}

Test(loader, load_file_takes_kind_and_name_from_the_file_name)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    const char *path = install_fixture("good-vault", "vault-fixture.so", 0644);

    terok_assert_ok(loader_load_file(path, &p, &err), &err);
    cr_assert(eq(u32, p->kind, TEROK_PLUGIN_KIND_VAULT));
    cr_assert(eq(str, p->name, "fixture"));
    plugin_unload(p);
}

Test(loader, load_file_refuses_other_file_names)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    const char *path = install_fixture("good-runtime", "libfixture.so", 0644);
    char expected[16384];

    snprintf(expected, sizeof expected,
             "plugin '%s': file name is not <kind>-<name>.so (kinds: runtime, vault, gate, "
             "shield, clearance; name: 1-64 of a-z, 0-9, '-') (plugin ABI ?, host " HOST_ABI ")",
             path);
    cr_assert(eq(int, loader_load_file(path, &p, &err), -EINVAL));
    cr_assert(eq(str, err.message, expected));
    terok_error_clear(&err);
}

/* A plugin that stays mapped after dlclose() keeps the name "/proc/self/fd/N"; the next plugin
 * opened on the same fd number must still be the file that was checked. */
Test(loader, stale_object_name_is_not_reused)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *a = NULL, *b = NULL;

    install_fixture("nodelete", "runtime-fixture.so", 0644);
    install_fixture("good-vault", "vault-fixture.so", 0644);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &a, &err),
                    &err);
    plugin_unload(a);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_VAULT, "fixture", 0, &b, &err), &err);
    cr_assert(eq(u32, b->kind, TEROK_PLUGIN_KIND_VAULT));
    plugin_unload(b);
}

Test(loader, two_plugins_at_once)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *a = NULL, *b = NULL;

    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    install_fixture("good-clearance", "clearance-fixture.so", 0644);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &a, &err),
                    &err);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_CLEARANCE, "fixture", 0, &b, &err),
                    &err);
    cr_assert(a->dl != b->dl);
    cr_assert(eq(u32, a->kind, TEROK_PLUGIN_KIND_RUNTIME));
    cr_assert(eq(u32, b->kind, TEROK_PLUGIN_KIND_CLEARANCE));
    plugin_unload(b);
    plugin_unload(a);
}

/* --- rejected: the descriptor and the ABI ------------------------------------------------ */

Test(loader, no_init_symbol)
{
    expect_fixture_rejected("no-symbol", -ELIBBAD, "?",
                            "no symbol 'terok_plugin_init': not a terok-sandbox plugin, or not "
                            "built with TEROK_PLUGIN_DEFINE");
}

Test(loader, other_major)
{
    expect_fixture_rejected("abi-major", -EPROTO, "2.0",
                            "built for another major version of the plugin ABI; rebuild it "
                            "against this terok-sandbox's SDK");
}

Test(loader, newer_minor)
{
    expect_fixture_rejected("abi-minor", -EPROTO, "1.1",
                            "built for a newer plugin ABI than this terok-sandbox speaks; upgrade "
                            "terok-sandbox or rebuild the plugin against its SDK");
}

Test(loader, wrong_kind)
{
    expect_fixture_rejected("wrong-kind", -EPROTO, "1.0",
                            "is a vault plugin, but its file name says runtime; name it "
                            "vault-fixture.so");
}

Test(loader, unknown_kind)
{
    expect_fixture_rejected("unknown-kind", -EPROTO, "1.0", "declares unknown plugin kind 42");
}

Test(loader, name_not_matching_file)
{
    expect_fixture_rejected("wrong-name", -EPROTO, "1.0",
                            "calls itself 'other', but its file name says 'fixture'");
}

Test(loader, short_descriptor)
{
    char what[128];

    snprintf(what, sizeof what, "descriptor too short (12 bytes, ABI 1.0 needs %zu)",
             (size_t)TEROK_PLUGIN_DESC_SIZE_1_0);
    expect_fixture_rejected("short-desc", -EPROTO, "1.0", what);
}

Test(loader, no_descriptor)
{
    expect_fixture_rejected("null-desc", -EPROTO, "?",
                            "terok_plugin_init() returned no descriptor");
}

Test(loader, no_version)
{
    expect_fixture_rejected("null-version", -EPROTO, "1.0",
                            "descriptor has no version, or one that is not 1-64 printable "
                            "characters");
}

Test(loader, no_ops_table)
{
    expect_fixture_rejected("null-ops", -EPROTO, "1.0", "descriptor has no ops table");
}

Test(loader, missing_required_op)
{
    expect_fixture_rejected("missing-op", -EPROTO, "1.0", "lacks required runtime op: start");
}

Test(loader, claimed_cap_without_op)
{
    expect_fixture_rejected("cap-no-op", -EPROTO, "1.0",
                            "claims capability 'exec' but has no 'exec' op");
}

Test(loader, ops_table_too_small)
{
    char what[128];

    snprintf(what, sizeof what, "runtime ops table too short (16 bytes, ABI 1.0 needs %zu)",
             offsetof(terok_runtime_ops, ctl) + sizeof(void *));
    expect_fixture_rejected("short-ops", -EPROTO, "1.0", what);
}

Test(loader, ops_table_implausibly_large)
{
    expect_fixture_rejected("huge-ops", -EPROTO, "1.0",
                            "runtime ops table claims 8192 bytes (at most 4096 are plausible)");
}

Test(loader, required_cap_missing)
{
    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture",
                    TEROK_RUNTIME_CAP_EXEC | TEROK_RUNTIME_CAP_EVENTS | TEROK_RUNTIME_CAP_COPY,
                    -EOPNOTSUPP, "1.0",
                    "lacks capabilities the configuration requires: events, copy");
}

Test(loader, init_error_carries_the_plugins_message)
{
    expect_fixture_rejected("init-error", -ENOMEDIUM, "?",
                            "initialisation failed: cannot find the frobnicator in '/dev/frob'");
}

Test(loader, crash_in_init_takes_the_loading_process, .signal = SIGILL)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;

    /* This is why `plugins list` probes in a child: the loader cannot survive it in-process. */
    install_fixture("crash", "runtime-fixture.so", 0644);
    (void)loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &p, &err);
}

Test(loader, not_an_elf_file)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    char prefix[4096];

    test_write_file("plugins/runtime-fixture.so", "#!/bin/sh\necho hello\n", 0644);
    snprintf(prefix, sizeof prefix, "plugin '%s/runtime-fixture.so': cannot load: ", plugin_dir);
    cr_assert(eq(int, loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &p, &err),
                 -ELIBBAD));
    cr_assert(strncmp(err.message, prefix, strlen(prefix)) == 0, "got: %s", err.message);
    cr_assert(strstr(err.message, "(plugin ABI ?, host " HOST_ABI ")") != NULL, "got: %s",
              err.message);
    terok_error_clear(&err);
}

/* --- rejected: files and directories ----------------------------------------------------- */

struct mode_case {
    unsigned mode;
    char what[128];
};

ParameterizedTestParameters(loader, writable_file)
{
    static struct mode_case cases[] = {
        {0664, "file is writable by its group (mode 0664); run 'chmod go-w' on it"},
        {0646, "file is writable by others (mode 0646); run 'chmod go-w' on it"},
        {0666, "file is writable by group and others (mode 0666); run 'chmod go-w' on it"},
        {0775, "file is writable by its group (mode 0775); run 'chmod go-w' on it"},
    };
    return cr_make_param_array(struct mode_case, cases, ELEMENTSOF(cases));
}

ParameterizedTest(struct mode_case *c, loader, writable_file)
{
    install_fixture("good-runtime", "runtime-fixture.so", c->mode);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", c->what);
}

Test(loader, symlinked_file)
{
    char target[4096], link[4096];

    install_fixture("good-runtime", "real.so", 0644);
    snprintf(target, sizeof target, "%s/real.so", plugin_dir);
    snprintf(link, sizeof link, "%s/runtime-fixture.so", plugin_dir);
    cr_assert(symlink(target, link) == 0);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?",
                    "refusing symlinked plugin: install the file itself");
}

Test(loader, group_writable_directory)
{
    char what[4096];

    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    cr_assert(chmod(plugin_dir, 0775) == 0);
    snprintf(what, sizeof what,
             "plugin directory '%s' is writable by its group (mode 0775); run 'chmod go-w' on it",
             plugin_dir);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", what);
}

Test(loader, world_writable_sticky_directory)
{
    char what[4096];

    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    cr_assert(chmod(plugin_dir, 01777) == 0);
    snprintf(what, sizeof what,
             "plugin directory '%s' is writable by group and others (mode 1777); run 'chmod "
             "go-w' on it",
             plugin_dir);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", what);
}

Test(loader, file_owned_by_someone_else)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to give a file to another user");
    cr_assert(chown(install_fixture("good-runtime", "runtime-fixture.so", 0644), 65534, 65534) ==
              0);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?",
                    "file is owned by uid 65534, not by root or uid 0");
}

Test(loader, directory_owned_by_someone_else)
{
    char what[4096];

    if (geteuid() != 0)
        cr_skip_test("needs root to give a directory to another user");
    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    cr_assert(chown(plugin_dir, 65534, 65534) == 0);
    snprintf(what, sizeof what, "plugin directory '%s' is owned by uid 65534, not by root or uid 0",
             plugin_dir);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", what);
}

/* The rootless OCI hook runs in Podman's user namespace, where root is not mapped and the
 * installed (root-owned) plugins show as the overflow uid, like any other unmapped user's
 * files. There they load only when they are the very files `shield install-hooks` recorded
 * (loader_trust_unmapped), and the mode check still refuses a writable directory.
 * Exit codes: 0 loaded, 1 other refusal, 2 writable, 3 not the recorded file. */
static int load_in_userns_without_root(const char *const *trust)
{
    int go[2], done;
    pid_t child;
    char path[64], c = 0;

    cr_assert(pipe(go) == 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        terok_error err = TEROK_ERROR_INIT;
        plugin *p = NULL;
        int r;

        close(go[1]);
        loader_trust_reset();
        for (; trust && *trust; trust++)
            if (loader_trust_unmapped(*trust) < 0)
                _exit(92);
        if (unshare(CLONE_NEWUSER) < 0)
            _exit(90);
        if (read(go[0], &c, 1) != 1) /* the parent maps us: 0 -> 1000, root unmapped */
            _exit(91);
        /* become the mapped user, as the hook runs in Podman's namespace */
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
            _exit(93);
        r = loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &p, &err);
        if (r < 0)
            _exit(strstr(terok_error_message(&err), "writable by its group")             ? 2
                  : strstr(terok_error_message(&err), "'shield install-hooks' recorded") ? 3
                                                                                         : 1);
        plugin_unload(p);
        _exit(0);
    }
    close(go[0]);
    usleep(100000); /* the child has unshared (its map is still unwritten, so it waits) */
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)child);
    cr_assert(test_write_file_abs(path, "0 1000 1\n") == 0, "uid_map: %s", strerror(errno));
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)child);
    cr_assert(test_write_file_abs(path, "0 1000 1\n") == 0, "gid_map: %s", strerror(errno));
    cr_assert(write(go[1], "x", 1) == 1);
    close(go[1]);
    cr_assert(waitpid(child, &done, 0) == child);
    bool exited = WIFEXITED(done);
    cr_assert(exited, "the child died");
    return WEXITSTATUS(done);
}

static char *id_of(const char *path)
{
    struct stat st;
    char *id;

    cr_assert(lstat(path, &st) == 0, "%s", path);
    id = loader_file_id(&st);
    cr_assert(id != NULL);
    return id;
}

Test(loader, root_owned_plugin_in_a_userns_without_root)
{
    _cleanup_free_ char *dir_id = NULL, *so_id = NULL, *new_so_id = NULL;
    char so[4096], tmp[4200];

    if (geteuid() != 0)
        cr_skip_test("needs root to map a user namespace without root");
    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    /* uid 1000 on the host must reach it */
    cr_assert(chmod(test_tmp, 0755) == 0 && chmod(plugin_dir, 0755) == 0);
    snprintf(so, sizeof so, "%s/runtime-fixture.so", plugin_dir);
    dir_id = id_of(plugin_dir);
    so_id = id_of(so);

    cr_assert(load_in_userns_without_root((const char *[]){dir_id, so_id, NULL}) == 0,
              "a recorded root-owned plugin was refused where root shows as the overflow uid");
    cr_assert(load_in_userns_without_root(NULL) == 3,
              "an unmapped owner was taken for root without a record");
    cr_assert(load_in_userns_without_root((const char *[]){dir_id, NULL}) == 3,
              "the plugin file was trusted on its directory's record");
    cr_assert(chmod(plugin_dir, 0775) == 0);
    cr_assert(load_in_userns_without_root((const char *[]){dir_id, so_id, NULL}) == 2,
              "a group-writable plugin directory was accepted in the user namespace");
    cr_assert(chmod(plugin_dir, 0755) == 0);

    /* replaced after the recording (another inode): refused until recorded again */
    snprintf(tmp, sizeof tmp, "%s.new", so);
    cr_assert(link(so, tmp) == 0 && unlink(so) == 0);
    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    cr_assert(unlink(tmp) == 0);
    cr_assert(load_in_userns_without_root((const char *[]){dir_id, so_id, NULL}) == 3,
              "a replaced plugin passed on the old file's record");
    new_so_id = id_of(so);
    cr_assert(load_in_userns_without_root((const char *[]){dir_id, new_so_id, NULL}) == 0);

    /* another unmapped user's directory looks the same in there: its record is what differs */
    cr_assert(chown(plugin_dir, 1001, 1001) == 0);
    cr_assert(load_in_userns_without_root((const char *[]){new_so_id, NULL}) == 3,
              "another user's plugin directory was taken for root's");
    cr_assert(chown(plugin_dir, 0, 0) == 0);
}

Test(loader, trust_records_are_parsed_strictly)
{
    static const char *const bad[] = {
        "",
        "1",
        "1:",
        ":1",
        "1:2:",
        "1:2:3",
        "1:2:3.",
        "1:2:.4",
        "1:2:3.4:5",
        "1:2:3.4.5",
        "-1:2",
        "+1:2",
        " 1:2",
        "1:2 ",
        "1:2\n",
        "0x1:2",
        "1:2:3.1000000000",
        "99999999999999999999:1",
        "1:99999999999999999999",
        "a:b",
        "1::2",
    };

    loader_trust_reset();
    for (size_t i = 0; i < ELEMENTSOF(bad); i++)
        cr_expect(eq(int, loader_trust_unmapped(bad[i]), -EINVAL), "'%s' was accepted", bad[i]);
    cr_expect(eq(int, loader_trust_unmapped(NULL), -EINVAL));
    cr_expect(eq(int, loader_trust_unmapped("2049:131"), 0));
    cr_expect(eq(int, loader_trust_unmapped("2049:132:1764250000.999999999"), 0));
    for (int i = 2; i < LOADER_TRUSTED_MAX; i++)
        cr_expect(eq(int, loader_trust_unmapped("1:2"), 0));
    cr_expect(eq(int, loader_trust_unmapped("1:2"), -E2BIG), "the table has a bound");
    loader_trust_reset();
    cr_expect(eq(int, loader_trust_unmapped("1:2"), 0));
    loader_trust_reset();
}

/* What install-hooks records, the hook takes back: inode numbers use all 64 bits (overlayfs
 * xino keeps a layer's fsid in the top bits). */
Test(loader, trust_records_round_trip_any_inode_number)
{
    struct stat st = {.st_dev = 2049, .st_mode = S_IFREG | 0644};
    static const uint64_t inos[] = {1, INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};

    loader_trust_reset();
    st.st_ctim = (struct timespec){.tv_sec = 1764250000, .tv_nsec = 5};
    for (size_t i = 0; i < ELEMENTSOF(inos); i++) {
        _cleanup_free_ char *file_id = NULL, *dir_id = NULL;

        st.st_ino = (ino_t)inos[i];
        st.st_mode = S_IFREG | 0644;
        file_id = loader_file_id(&st);
        st.st_mode = S_IFDIR | 0755;
        dir_id = loader_file_id(&st);
        cr_assert(file_id && dir_id);
        cr_expect(eq(int, loader_trust_unmapped(file_id), 0), "'%s' refused", file_id);
        cr_expect(eq(int, loader_trust_unmapped(dir_id), 0), "'%s' refused", dir_id);
        loader_trust_reset();
    }
    cr_expect(eq(int, loader_trust_unmapped("2049:18446744073709551616"), -EINVAL));
    cr_expect(eq(int, loader_trust_unmapped("18446744073709551616:1"), -EINVAL));
    loader_trust_reset();
}

Test(loader, missing_file)
{
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "absent", 0, -ELIBACC, "?",
                    "no such file; 'terok-sandbox plugins list' shows the installed plugins");
}

Test(loader, missing_directory)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    char expected[16384], dir[4096];

    snprintf(dir, sizeof dir, "%s/nowhere", plugin_dir);
    snprintf(expected, sizeof expected,
             "plugin '%s/runtime-x.so': plugin directory '%s' does not exist (plugin ABI ?, host "
             "1.0)",
             dir, dir);
    cr_assert(eq(int, loader_load(dir, TEROK_PLUGIN_KIND_RUNTIME, "x", 0, &p, &err), -ELIBACC));
    cr_assert(eq(str, err.message, expected));
    terok_error_clear(&err);
}

Test(loader, fifo_is_not_a_plugin_and_does_not_hang)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/runtime-fixture.so", plugin_dir);
    cr_assert(mkfifo(path, 0644) == 0);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", "not a regular file");
}

Test(loader, directory_named_like_a_plugin)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/runtime-fixture.so", plugin_dir);
    cr_assert(mkdir(path, 0755) == 0);
    expect_rejected(TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, -EPERM, "?", "not a regular file");
}

/* --- names and kinds --------------------------------------------------------------------- */

struct name_case {
    char name[80];
    bool valid;
    bool null; /* pass NULL instead of name */
};

ParameterizedTestParameters(loader, names)
{
    static struct name_case cases[] = {
        {"podman", true, false},
        {"null", true, false},
        {"x-1", true, false},
        {"0", true, false},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true, false}, /* 64 */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
        {"", false, false},
        {"../x", false, false},
        {"Foo", false, false},
        {"a/b", false, false},
        {"a_b", false, false},
        {"a.b", false, false},
        {"a b", false, false},
        {"é", false, false},
        {"", false, true},
    };
    return cr_make_param_array(struct name_case, cases, ELEMENTSOF(cases));
}

ParameterizedTest(struct name_case *c, loader, names)
{
    const char *name = c->null ? NULL : c->name;

    cr_assert(eq(int, plugin_name_is_valid(name), c->valid), "'%s'", c->name);
    if (!c->valid) {
        terok_error err = TEROK_ERROR_INIT;
        plugin *p = NULL;
        char expected[256];

        snprintf(expected, sizeof expected,
                 "invalid runtime backend name '%.80s': use 1-64 characters of a-z, 0-9 and '-'",
                 c->name);
        cr_assert(eq(int, loader_load("/nonexistent", TEROK_PLUGIN_KIND_RUNTIME, name, 0, &p, &err),
                     -EINVAL));
        cr_assert(eq(str, err.message, expected));
        terok_error_clear(&err);
    }
}

Test(loader, unknown_kind_argument)
{
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;

    cr_assert(eq(int, loader_load(plugin_dir, 9, "x", 0, &p, &err), -EINVAL));
    cr_assert(eq(str, err.message, "unknown plugin kind 9"));
    terok_error_clear(&err);
}

Test(loader, kinds_and_caps)
{
    static const char *names[] = {"runtime", "vault", "gate", "shield", "clearance"};
    char *s;

    for (uint32_t k = 1; k <= 5; k++) {
        cr_assert(eq(str, (char *)plugin_kind_to_string(k), (char *)names[k - 1]));
        cr_assert(eq(int, plugin_kind_from_string(names[k - 1]), (int)k));
    }
    cr_assert(plugin_kind_to_string(0) == NULL && plugin_kind_to_string(6) == NULL);
    cr_assert(eq(int, plugin_kind_from_string("Runtime"), -EINVAL));
    cr_assert(eq(int, plugin_kind_from_string(NULL), -EINVAL));
    cr_assert(eq(str, (char *)plugin_cap_name(TEROK_PLUGIN_KIND_RUNTIME, 1), "exec"));
    cr_assert(eq(str, (char *)plugin_cap_name(TEROK_PLUGIN_KIND_VAULT, 1), "encrypted-at-rest"));
    cr_assert(eq(str, (char *)plugin_cap_name(TEROK_PLUGIN_KIND_CLEARANCE, 2), "timed-verdicts"));
    cr_assert(plugin_cap_name(TEROK_PLUGIN_KIND_RUNTIME, 40) == NULL);
    s = plugin_caps_to_string(TEROK_PLUGIN_KIND_RUNTIME, TEROK_RUNTIME_CAP_EXEC |
                                                             TEROK_RUNTIME_CAP_LOGS |
                                                             (UINT64_C(1) << 40));
    cr_assert(eq(str, s, "exec, logs, bit40"));
    free(s);
    s = plugin_caps_to_string(TEROK_PLUGIN_KIND_SHIELD, 0);
    cr_assert(eq(str, s, ""));
    free(s);
}

Test(loader, check_owner_mode_names_what_and_where)
{
    const char *path = test_write_file("sandbox.conf", "[core]\n", 0664);
    terok_error err = TEROK_ERROR_INIT;
    char expected[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    snprintf(expected, sizeof expected,
             "config file '%s' is writable by its group (mode 0664); run 'chmod go-w' on it", path);
    cr_assert(eq(int, check_owner_mode(fd, path, "config file", &err), -EPERM));
    cr_assert(eq(str, err.message, expected));
    terok_error_clear(&err);
    cr_assert(fchmod(fd, 0644) == 0);
    cr_assert(eq(int, check_owner_mode(fd, path, "config file", &err), 0));
    close(fd);
}

/* --- the host table ---------------------------------------------------------------------- */

static void call_logv(plugin *p, int prio, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    host_table()->logv(p, prio, fmt, ap);
    va_end(ap);
}

static int call_errorv(plugin *p, terok_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = host_table()->errorv(p, err, code, fmt, ap);
    va_end(ap);
    return r;
}

Test(loader, host_table_basics, .init = cr_redirect_stderr)
{
    const terok_host *h = host_table();
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    terok_secret *s = NULL;
    const void *data;
    size_t len;
    char *dup;

    cr_assert(eq(u32, h->struct_size, (uint32_t)sizeof(terok_host)));
    cr_assert(eq(u32, h->abi_major, TEROK_PLUGIN_ABI_MAJOR));
    cr_assert(eq(u32, h->abi_minor, TEROK_PLUGIN_ABI_MINOR));
    bool has = TEROK_HOST_HAS(h, runtime_dir);
    cr_assert(has, "runtime_dir is part of ABI 1.0");

    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    terok_assert_ok(loader_load(plugin_dir, TEROK_PLUGIN_KIND_RUNTIME, "fixture", 0, &p, &err),
                    &err);
    call_logv(p, LOG_WARNING, "disk %d%% full\n", 93);
    call_logv(p, LOG_ERR, "evil\033[2Jname");
    call_logv(p, LOG_DEBUG, "not shown at the default level");

    cr_assert(eq(int, call_errorv(p, &err, -ENOENT, "no container '%s'", "x"), -ENOENT));
    cr_assert(eq(str, err.message, "no container 'x'"));
    cr_assert(eq(int, call_errorv(p, &err, 0, "zero is no failure"), -EIO));
    cr_assert(eq(int, call_errorv(p, NULL, -EINVAL, "nowhere to put it"), -EINVAL));
    terok_error_clear(&err);

    dup = h->strdup("abc");
    cr_assert(eq(str, dup, "abc"));
    h->free(dup);
    cr_assert(h->strdup(NULL) == NULL);
    h->free(h->alloc(0));

    cr_assert(h->state_dir(p) == NULL);
    p->state_dir = "/state/runtime-fixture";
    p->runtime_dir = "/run/x";
    cr_assert(eq(str, (char *)h->state_dir(p), "/state/runtime-fixture"));
    cr_assert(eq(str, (char *)h->runtime_dir(p), "/run/x"));
    cr_assert(h->state_dir(NULL) == NULL);

    cr_assert(eq(int, h->secret_new(NULL, 3, &s), -EINVAL));
    cr_assert(eq(int, h->secret_peek(NULL, &data, &len), -EINVAL));
    cr_assert(eq(int, h->config_get(NULL, NULL, NULL), -EINVAL));
    (void)s;
    plugin_unload(p);

    fflush(stderr);
    cr_assert_stderr_eq_str("terok-sandbox: warning: [runtime-fixture] disk 93% full\n"
                            "terok-sandbox: [runtime-fixture] evil?[2Jname\n");
}

/* --- probing a directory ----------------------------------------------------------------- */

typedef struct seen {
    char **lines; /* "file|status|kind|name|version|abi|caps|reason" */
} seen;

static int collect(void *userdata, const plugin_probe *pr)
{
    seen *s = userdata;
    _cleanup_free_ char *caps = strv_join(pr->caps, ",");

    return strv_extendf(&s->lines, "%s|%s|%s|%s|%s|%" PRIu32 ".%" PRIu32 "|%s|%s", pr->file,
                        pr->status, strna(pr->kind), strna(pr->name), strna(pr->version),
                        pr->abi_major, pr->abi_minor, strempty(caps), strna(pr->reason));
}

static const char *line_for(seen *s, const char *file)
{
    size_t n = strlen(file);

    STRV_FOREACH(l, s->lines)
    if (strncmp(*l, file, n) == 0 && (*l)[n] == '|')
        return *l;
    cr_assert(false, "no probe result for %s", file);
    return NULL;
}

Test(loader, probe_directory)
{
    terok_error err = TEROK_ERROR_INIT;
    seen s = {0};
    char expected[16384], target[4096], link[4096];

    loader_set_probe_timeout(1000);
    install_fixture("good-runtime", "runtime-fixture.so", 0644);
    install_fixture("good-gate", "gate-fixture.so", 0644);
    install_fixture("wrong-name", "runtime-named.so", 0644);
    install_fixture("abi-major", "runtime-major.so", 0644);
    install_fixture("crash", "runtime-crash.so", 0644);
    install_fixture("hang", "runtime-hang.so", 0644);
    install_fixture("exit", "runtime-exit.so", 0644);
    install_fixture("init-error", "runtime-error.so", 0644);
    install_fixture("good-runtime", "runtime-loose.so", 0666);
    install_fixture("good-runtime", "libhelper.so", 0644);
    test_write_file("plugins/README", "not a plugin\n", 0644);
    snprintf(target, sizeof target, "%s/runtime-fixture.so", plugin_dir);
    snprintf(link, sizeof link, "%s/runtime-link.so", plugin_dir);
    cr_assert(symlink(target, link) == 0);

    terok_assert_ok(loader_probe_dir(plugin_dir, collect, &s, &err), &err);
    cr_assert(eq(sz, strv_length(s.lines), 11), "README skipped, every *.so probed");

    /* Sorted by file name. */
    cr_assert(strncmp(s.lines[0], "gate-fixture.so|", 16) == 0, "%s", s.lines[0]);
    cr_assert(strncmp(s.lines[1], "libhelper.so|", 13) == 0, "%s", s.lines[1]);

    cr_assert(eq(str, (char *)line_for(&s, "runtime-fixture.so"),
                 "runtime-fixture.so|ok|runtime|fixture|1.2.3|1.0|exec,logs|n/a"));
    cr_assert(eq(str, (char *)line_for(&s, "gate-fixture.so"),
                 "gate-fixture.so|ok|gate|fixture|1.2.3|1.0||n/a"));

    snprintf(expected, sizeof expected,
             "runtime-named.so|rejected|runtime|named|1.2.3|1.0||plugin '%s/runtime-named.so': "
             "calls itself 'other', but its file name says 'named' (plugin ABI 1.0, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-named.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-major.so|rejected|runtime|major|1.2.3|2.0||plugin '%s/runtime-major.so': "
             "built for another major version of the plugin ABI; rebuild it against this "
             "terok-sandbox's SDK (plugin ABI 2.0, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-major.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-crash.so|crashed|runtime|crash|n/a|0.0||plugin '%s/runtime-crash.so': "
             "crashed while loading: killed by SIGILL (Illegal instruction) (plugin ABI ?, host "
             "1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-crash.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-hang.so|crashed|runtime|hang|n/a|0.0||plugin '%s/runtime-hang.so': did not "
             "finish loading within 1000 ms; killed (plugin ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-hang.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-exit.so|crashed|runtime|exit|n/a|0.0||plugin '%s/runtime-exit.so': exited "
             "with status 7 while loading (plugin ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-exit.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-error.so|rejected|runtime|error|n/a|0.0||plugin '%s/runtime-error.so': "
             "initialisation failed: cannot find the frobnicator in '/dev/frob' (plugin ABI ?, "
             "host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-error.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-loose.so|rejected|runtime|loose|n/a|0.0||plugin '%s/runtime-loose.so': "
             "file is writable by group and others (mode 0666); run 'chmod go-w' on it (plugin "
             "ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-loose.so"), expected));

    snprintf(expected, sizeof expected,
             "runtime-link.so|rejected|runtime|link|n/a|0.0||plugin '%s/runtime-link.so': "
             "refusing symlinked plugin: install the file itself (plugin ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "runtime-link.so"), expected));

    snprintf(expected, sizeof expected,
             "libhelper.so|rejected|n/a|n/a|n/a|0.0||plugin '%s/libhelper.so': file name is not "
             "<kind>-<name>.so (kinds: runtime, vault, gate, shield, clearance; name: 1-64 of "
             "a-z, 0-9, '-') (plugin ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)line_for(&s, "libhelper.so"), expected));
    strv_free(s.lines);
    loader_set_probe_timeout(5000);
}

static int stop_at_first(void *userdata, const plugin_probe *pr)
{
    (*(int *)userdata)++;
    return 42;
}

Test(loader, probe_callback_stops)
{
    terok_error err = TEROK_ERROR_INIT;
    int calls = 0;

    install_fixture("good-runtime", "runtime-a.so", 0644);
    install_fixture("good-runtime", "runtime-b.so", 0644);
    cr_assert(eq(int, loader_probe_dir(plugin_dir, stop_at_first, &calls, &err), 42));
    cr_assert(eq(int, calls, 1));
}

Test(loader, probe_missing_directory)
{
    terok_error err = TEROK_ERROR_INIT;
    seen s = {0};
    char dir[1024], expected[16384];

    snprintf(dir, sizeof dir, "%s/none", plugin_dir);
    snprintf(expected, sizeof expected,
             "cannot open plugin directory '%s': No such file or directory", dir);
    cr_assert(eq(int, loader_probe_dir(dir, collect, &s, &err), -ENOENT));
    cr_assert(eq(str, err.message, expected));
    terok_error_clear(&err);
}
