/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate.c: the core's gate wrapper (core/src/gate.c): name checks before any plugin code,
 * missing ops and capabilities as -EOPNOTSUPP naming the backend, authorize failing closed. The
 * backend is the well-formed gate fixture (no upstream, no serve, no backups). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#include "gate.h"
#include "sandbox.h"
#include "terok-test.h"

static sandbox *sb;
static gate g;

static void setup(void)
{
    terok_error err = TEROK_ERROR_INIT;
    char cfg[4096];

    test_tmpdir_setup();
    snprintf(cfg, sizeof cfg,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = fixture\n[gate]\nbackend = fixture\n"
             "[shield]\nbackend = none\n[vault]\nbackend = none\n[clearance]\nbackend = none\n",
             GOOD_FIXTURE_DIR);
    terok_assert_ok(sandbox_open(test_write_file("sandbox.conf", cfg, 0600), &sb, &err), &err);
    terok_assert_ok(gate_open(sb->registry, 0, &g, &err), &err);
}

static void teardown(void)
{
    sandbox_free(sb);
    test_tmpdir_teardown();
}

TestSuite(gate_core, .init = setup, .fini = teardown, .timeout = 30);

struct name_case {
    char name[80];
    bool valid;
};

static struct name_case repo_names[] = {
    {"proj", true},
    {"a", true},
    {"p-1.x_y", true},
    {"0abc", true},
    {"", false},
    {"../x", false},
    {"a/b", false},
    {"..", false},
    {"a..b", false},
    {"-x", false},
    {".x", false},
    {"Up", false},
    {"x.git", false},
    {"x.lock", false},
    {"a b", false},
    {"a\tb", false},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
};

ParameterizedTestParameters(gate_core, repo_names)
{
    return cr_make_param_array(struct name_case, repo_names, ELEMENTSOF(repo_names));
}

ParameterizedTest(struct name_case *c, gate_core, repo_names)
{
    cr_expect(eq(int, gate_repo_name_is_valid(c->name), c->valid), "'%s'", c->name);
}

static struct name_case branch_names[] = {
    {"main", true},  {"feature/x", true}, {"v1.2", true}, {"", false},      {"-f", false},
    {"a..b", false}, {"a/", false},       {"/a", false},  {"a//b", false},  {"a.lock", false},
    {"a~1", false},  {"a^", false},       {"a:b", false}, {"a?", false},    {"a*", false},
    {"a[", false},   {"a\\b", false},     {"a b", false}, {"@", false},     {"a@{b", false},
    {"a/.b", false}, {"a.", false},       {".a", false},  {"a\x7f", false},
};

ParameterizedTestParameters(gate_core, branch_names)
{
    return cr_make_param_array(struct name_case, branch_names, ELEMENTSOF(branch_names));
}

ParameterizedTest(struct name_case *c, gate_core, branch_names)
{
    cr_expect(eq(int, gate_branch_name_is_valid(c->name), c->valid), "'%s'", c->name);
}

Test(gate_core, bad_names_never_reach_the_plugin)
{
    terok_error err = TEROK_ERROR_INIT;
    uint32_t d = 77;

    cr_expect(eq(int, gate_grant(&g, "task", "../etc", TEROK_GATE_READ, &err), -EINVAL));
    cr_expect(strstr(terok_error_message(&err), "'../etc'") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, gate_grant(&g, "-task", "proj", TEROK_GATE_READ, &err), -EINVAL));
    cr_expect(strstr(terok_error_message(&err), "'-task'") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, gate_grant(&g, "task", "proj", 0, &err), -EINVAL));
    terok_error_clear(&err);
    cr_expect(eq(int, gate_diff(&g, "task", "proj", "a..b", NULL, NULL, &err), -EINVAL));
    cr_expect(strstr(terok_error_message(&err), "'a..b'") != NULL);
    terok_error_clear(&err);
    cr_expect(eq(int, gate_authorize(&g, "task", "..", TEROK_GATE_READ, &d, &err), -EINVAL));
    cr_expect(eq(u32, d, TEROK_DECISION_DENY), "any error is a deny");
    terok_error_clear(&err);
}

Test(gate_core, missing_ops_and_caps_name_the_backend)
{
    terok_error err = TEROK_ERROR_INIT;
    terok_gate_repo_spec spec = {
        .struct_size = sizeof spec, .name = "proj", .upstream_url = "file:///x.git"};
    uint64_t n = 0;

    cr_expect(eq(int, gate_sync(&g, "proj", NULL, NULL, &err), -EOPNOTSUPP));
    cr_expect(strstr(terok_error_message(&err), "'fixture'") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, gate_repo_create(&g, &spec, &err), -EOPNOTSUPP));
    cr_expect(strstr(terok_error_message(&err), "no upstream support") != NULL, "%s",
              terok_error_message(&err));
    terok_error_clear(&err);
    cr_expect(eq(int, gate_backups_list(&g, "proj", NULL, NULL, &err), -EOPNOTSUPP));
    terok_error_clear(&err);
    cr_expect(gate_backups_prune(&g, "proj", 0, &n, &err) < 0);
    terok_error_clear(&err);
    cr_expect(gate_has_cap(&g, TEROK_GATE_CAP_SMART_HTTP) == false);
}
