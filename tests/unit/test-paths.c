/* SPDX-License-Identifier: Apache-2.0 */
/* test-paths.c: the root and XDG layouts, env overrides, mkdir_safe's refusals, container names. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <sys/stat.h>

#include "paths.h"
#include "terok-build-config.h"
#include "terok-test.h"

TestSuite(paths, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 10);

Test(paths, root_layout)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    unsetenv("TEROK_SANDBOX_STATE_DIR");
    unsetenv("TEROK_SANDBOX_RUNTIME_DIR");
    terok_assert_ok(paths_resolve_as(&p, 0, &err), &err);
    cr_assert(p.root);
    cr_assert(eq(str, p.system_config_dir, TEROK_SYSCONF_DIR));
    cr_assert(p.user_config_dir == NULL);
    cr_assert(eq(str, p.state_dir, "/var/lib/terok-sandbox"));
    cr_assert(eq(str, p.runtime_dir, "/run/terok-sandbox"));
    paths_done(&p);
}

Test(paths, user_layout_follows_xdg)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    unsetenv("TEROK_SANDBOX_STATE_DIR");
    unsetenv("TEROK_SANDBOX_RUNTIME_DIR");
    setenv("HOME", "/home/alice", 1);
    setenv("XDG_CONFIG_HOME", "/cfg", 1);
    setenv("XDG_STATE_HOME", "/st", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    terok_assert_ok(paths_resolve_as(&p, 1000, &err), &err);
    cr_assert(p.root == false);
    cr_assert(eq(str, p.user_config_dir, "/cfg/terok-sandbox"));
    cr_assert(eq(str, p.state_dir, "/st/terok-sandbox"));
    cr_assert(eq(str, p.runtime_dir, "/run/user/1000/terok-sandbox"));
    paths_done(&p);
}

Test(paths, user_layout_defaults_without_xdg)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    unsetenv("TEROK_SANDBOX_STATE_DIR");
    unsetenv("TEROK_SANDBOX_RUNTIME_DIR");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", "/home/alice", 1);
    terok_assert_ok(paths_resolve_as(&p, 1000, &err), &err);
    cr_assert(eq(str, p.user_config_dir, "/home/alice/.config/terok-sandbox"));
    cr_assert(eq(str, p.state_dir, "/home/alice/.local/state/terok-sandbox"));
    cr_assert(eq(str, p.runtime_dir, "/home/alice/.local/state/terok-sandbox/run"),
              "no session runtime dir: stay in the user's own state dir");
    paths_done(&p);
}

Test(paths, relative_xdg_is_ignored)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    setenv("HOME", "/home/alice", 1);
    setenv("XDG_CONFIG_HOME", "relative/cfg", 1);
    terok_assert_ok(paths_resolve_as(&p, 1000, &err), &err);
    cr_assert(eq(str, p.user_config_dir, "/home/alice/.config/terok-sandbox"));
    paths_done(&p);
}

Test(paths, overrides_win_for_root_and_users)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    setenv("TEROK_SANDBOX_STATE_DIR", "/x/state", 1);
    setenv("TEROK_SANDBOX_RUNTIME_DIR", "/x/run", 1);
    terok_assert_ok(paths_resolve_as(&p, 0, &err), &err);
    cr_assert(eq(str, p.state_dir, "/x/state"));
    cr_assert(eq(str, p.runtime_dir, "/x/run"));
    paths_done(&p);
    terok_assert_ok(paths_resolve_as(&p, 1000, &err), &err);
    cr_assert(eq(str, p.state_dir, "/x/state"));
    paths_done(&p);
}

Test(paths, relative_override_is_refused)
{
    terok_error err = TEROK_ERROR_INIT;
    paths p;

    setenv("TEROK_SANDBOX_STATE_DIR", "state", 1);
    cr_assert(eq(int, paths_resolve(&p, &err), -EINVAL));
    cr_assert(eq(str, err.message, "$TEROK_SANDBOX_STATE_DIR='state' is not an absolute path"));
    terok_error_clear(&err);
}

Test(paths, mkdir_safe_creates_with_mode)
{
    terok_error err = TEROK_ERROR_INIT;
    struct stat st;

    umask(022);
    terok_assert_ok(mkdir_safe(test_path("a/b/c"), 0700, &err), &err);
    cr_assert(stat(test_path("a/b/c"), &st) == 0);
    cr_assert(eq(u32, st.st_mode & 07777, 0700));
    cr_assert(stat(test_path("a/b"), &st) == 0);
    cr_assert(eq(u32, st.st_mode & 07777, 0700));
    terok_assert_ok(mkdir_safe(test_path("a/b/c/"), 0700, &err), &err); /* exists: fine */
}

Test(paths, mkdir_safe_refuses_writable_symlink_and_relative)
{
    terok_error err = TEROK_ERROR_INIT;
    char msg[4096];

    cr_assert(mkdir(test_path("open"), 0700) == 0 && chmod(test_path("open"), 0777) == 0);
    cr_assert(eq(int, mkdir_safe(test_path("open"), 0700, &err), -EPERM));
    snprintf(msg, sizeof msg,
             "'%s' is writable by group or others (mode 0777); refusing to use it — run 'chmod "
             "go-w %s'",
             test_path("open"), test_path("open"));
    cr_assert(eq(str, err.message, msg));

    cr_assert(symlink("/tmp", test_path("link")) == 0);
    cr_assert(eq(int, mkdir_safe(test_path("link"), 0700, &err), -ENOTDIR));
    cr_assert(eq(int, mkdir_safe("rel/dir", 0700, &err), -EINVAL));
    cr_assert(eq(str, err.message, "'rel/dir' is not an absolute path"));
    test_write_file("file", "x", 0600);
    cr_assert(eq(int, mkdir_safe(test_path("file"), 0700, &err), -ENOTDIR));
    terok_error_clear(&err);
}

Test(paths, mkdir_safe_refuses_foreign_owner)
{
    terok_error err = TEROK_ERROR_INIT;

    cr_assert(mkdir(test_path("theirs"), 0755) == 0);
    if (geteuid() != 0)
        cr_skip_test("needs root to chown a directory to another user");
    cr_assert(chown(test_path("theirs"), 4242, 4242) == 0);
    cr_assert(eq(int, mkdir_safe(test_path("theirs"), 0700, &err), -EPERM));
    terok_error_clear(&err);
}

typedef struct name_case {
    const char *name;
    bool valid;
} name_case;

static const name_case name_cases[] = {
    {"a", true},
    {"web-1", true},
    {"A.b_c-9", true},
    {"0abc", true},
    {"123456789012345678901234567890123456789012345678901234567890123", true},
    {"1234567890123456789012345678901234567890123456789012345678901234", false},
    {"", false},
    {".", false},
    {"..", false},
    {"-x", false},
    {"_x", false},
    {"a/b", false},
    {"../etc", false},
    {"a b", false},
    {"a\nb", false},
    {"a:b", false},
    {"ä", false},
};

/* Criterion runs each parameter in a fresh process (other ASLR base): pass indices, not
 * pointers into our own data. */
ParameterizedTestParameters(paths, container_names)
{
    static size_t idx[ELEMENTSOF(name_cases)];

    for (size_t i = 0; i < ELEMENTSOF(idx); i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, ELEMENTSOF(idx));
}

ParameterizedTest(size_t *i, paths, container_names)
{
    const name_case *c = &name_cases[*i];

    cr_assert(container_name_is_valid(c->name) == c->valid, "'%s' should be %s", c->name,
              c->valid ? "valid" : "invalid");
}

Test(paths, null_name_is_invalid)
{
    cr_assert(eq(int, container_name_is_valid(NULL), 0));
}
