/* SPDX-License-Identifier: Apache-2.0 */
/* test-cli-config.c: `terok-sandbox config check|show` as the operator sees them: exit codes,
 * FILE:LINE messages, the --json schemas, origins, help and usage errors, and that no plugin
 * is loaded on the way. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "terok-test.h"

TestSuite(cli_config, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 30.);

/* A config using the fixture plugin dir ([runtime] backend = keys) plus `extra`. The fixture
 * leaves a marker file if it is ever loaded. */
static const char *keys_config(const char *extra)
{
    char buf[8192];

    setenv("TEROK_TEST_KEYS_LOADED_MARKER", test_path("loaded"), 1);
    snprintf(buf, sizeof buf, "[core]\nplugin-dir = %s\n[runtime]\nbackend = keys\n%s",
             getenv("TEROK_TEST_KEYS_PLUGIN_DIR"), extra);
    return test_write_file("keys.conf", buf, 0600);
}

static json_object *parse_json(const char *s)
{
    json_object *o = json_tokener_parse(s);

    cr_assert(o != NULL, "not JSON: '%s'", s);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;

    cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
              json_object_to_json_string(o));
    return v;
}

static const char *get_str(json_object *o, const char *key)
{
    return json_object_get_string(get(o, key));
}

Test(cli_config, check_ok)
{
    const char *path = test_write_config("[container]\npids-limit = 100\n");
    cli_result r = TEST_CLI("--config", path, "config", "check");

    cr_assert(eq(int, r.exit_code, 0), "stderr: %s", r.err);
    cr_assert(eq(str, r.out, "config: OK (1 file)\n"));
    cr_assert(eq(str, r.err, ""));
    cli_result_done(&r);
}

Test(cli_config, check_reports_every_problem_and_exits_3)
{
    const char *path = test_write_config("[container]\npids-limit = lots\nmemory = 1.5G\n"
                                         "[bogus]\n[core]\nlog-level = loud\n");
    cli_result r = TEST_CLI("--config", path, "config", "check");
    char want[8192];

    snprintf(want, sizeof want,
             "%s:6: invalid value 'lots' for 'pids-limit' in [container]: expected an integer "
             "from 1 to 4194304\n"
             "%s:7: invalid value '1.5G' for 'memory' in [container]: expected a size (bytes, or "
             "with a K, M, G or T suffix) of at least 6M\n"
             "%s:8: unknown section [bogus]\n"
             "%s:10: invalid value 'loud' for 'log-level' in [core]: expected one of: err, "
             "warning, notice, info, debug\n"
             "terok-sandbox: config: 4 problems found\n",
             path, path, path, path);
    cr_assert(eq(int, r.exit_code, 3));
    cr_assert(eq(str, r.out, ""));
    cr_assert(eq(str, r.err, want));
    cli_result_done(&r);
}

Test(cli_config, warnings_do_not_fail)
{
    const char *path = test_write_config("[vault]\nbackend = none\n[vault.sqlite]\n");
    cli_result r = TEST_CLI("--config", path, "config", "check");
    char want[4096];

    snprintf(want, sizeof want,
             "%s:7: warning: section [vault.sqlite] configures backend 'sqlite' but [vault] "
             "backend is 'none'; it is ignored\n",
             path);
    cr_assert(eq(int, r.exit_code, 0));
    cr_assert(eq(str, r.err, want));
    cr_assert(eq(str, r.out, "config: OK (1 file)\n"));
    cli_result_done(&r);
}

Test(cli_config, check_json_schema)
{
    const char *path = test_write_config("[core]\nlog-level = loud\n");
    cli_result r = TEST_CLI("--config", path, "config", "check", "--json");
    json_object *o, *p;

    cr_assert(eq(int, r.exit_code, 3));
    o = parse_json(r.out);
    cr_assert(json_object_get_boolean(get(o, "ok")) == 0);
    cr_assert(eq(sz, json_object_array_length(get(o, "files")), 1));
    cr_assert(eq(str, (char *)json_object_get_string(json_object_array_get_idx(get(o, "files"), 0)),
                 (char *)path));
    cr_assert(eq(sz, json_object_array_length(get(o, "problems")), 1));
    p = json_object_array_get_idx(get(o, "problems"), 0);
    cr_assert(eq(str, (char *)get_str(p, "file"), (char *)path));
    cr_assert(eq(int, json_object_get_int(get(p, "line")), 6));
    cr_assert(eq(str, (char *)get_str(p, "message"),
                 "invalid value 'loud' for 'log-level' in [core]: expected one of: err, warning, "
                 "notice, info, debug"));
    cr_assert(eq(str, (char *)get_str(p, "severity"), "error"));
    json_object_put(o);
    cli_result_done(&r);

    /* --json before the command, and a clean file. */
    path = test_write_config("");
    r = TEST_CLI("--json", "--config", path, "config", "check");
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse_json(r.out);
    cr_assert(json_object_get_boolean(get(o, "ok")) == 1);
    cr_assert(eq(sz, json_object_array_length(get(o, "problems")), 0));
    json_object_put(o);
    cli_result_done(&r);
}

Test(cli_config, env_selects_the_file)
{
    const char *path = test_write_config("[core]\nlog-level = loud\n");
    cli_result r;

    setenv("TEROK_SANDBOX_CONFIG", path, 1);
    r = TEST_CLI("config", "check");
    cr_assert(eq(int, r.exit_code, 3));
    cr_assert(strstr(r.err, path) != NULL, "%s", r.err);
    cli_result_done(&r);
}

Test(cli_config, missing_explicit_file)
{
    cli_result r = TEST_CLI("--config", "/nonexistent/sandbox.conf", "config", "check");

    cr_assert(eq(int, r.exit_code, 3));
    cr_assert(
        eq(str, r.err, "terok-sandbox: config file '/nonexistent/sandbox.conf' does not exist\n"));
    cli_result_done(&r);
}

Test(cli_config, group_writable_file_is_refused)
{
    const char *path = test_write_file("gw.conf", "[core]\nlog-level = debug\n", 0620);
    cli_result r;
    char want[8192];

    chmod(path, 0620);
    r = TEST_CLI("--config", path, "config", "check");
    snprintf(want, sizeof want,
             "%s: refusing a config file writable by group or others (mode 0620); run 'chmod "
             "go-w %s'\nterok-sandbox: config: 1 problem found\n",
             path, path);
    cr_assert(eq(int, r.exit_code, 3));
    cr_assert(eq(str, r.err, want));
    cli_result_done(&r);
}

Test(cli_config, plugin_keys_checked_without_loading_the_plugin)
{
    const char *path = keys_config("[runtime.keys]\ntimeout = soon\nsocket = /run/x\n");
    cli_result r = TEST_CLI("--config", path, "config", "check");
    char want[4096];

    snprintf(want, sizeof want,
             "%s:6: invalid value 'soon' for 'timeout' in [runtime.keys]: expected a duration "
             "(such as 500ms, 10s, 5m, 2h or 1d)\nterok-sandbox: config: 1 problem found\n",
             path);
    cr_assert(eq(int, r.exit_code, 3));
    cr_assert(eq(str, r.err, want));
    cli_result_done(&r);

    r = TEST_CLI("--config", path, "config", "show");
    cr_assert(eq(int, r.exit_code, 0));
    cli_result_done(&r);
    cr_assert(access(test_path("loaded"), F_OK) != 0, "the plugin was loaded");
}

Test(cli_config, show_origins_human)
{
    const char *path = keys_config("[core]\nlog-level = debug\n[runtime.keys]\nretries = 5\n"
                                   "[route.anthropic]\nupstream = https://api.anthropic.com\n"
                                   "auth-prefix = \"\"\n");
    cli_result r = TEST_CLI("--config", path, "config", "show");
    char want[4096];

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    snprintf(want, sizeof want, "\n[core]\n");
    cr_assert(strstr(r.out, want) != NULL, "%s", r.out);
    snprintf(want, sizeof want, "log-level = debug                        # %s:6\n", path);
    cr_assert(strstr(r.out, want) != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "cpus = 2                                 # default\n") != NULL, "%s",
              r.out);
    snprintf(want, sizeof want,
             "[runtime.keys]\nsocket = auto                            # default\n"
             "timeout = 30s                            # default\n"
             "retries = 5                              # %s:8\n",
             path);
    cr_assert(strstr(r.out, want) != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "auth-prefix = \"\"") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "auth-header = Authorization") != NULL, "%s", r.out);
    cli_result_done(&r);
}

Test(cli_config, show_json_schema)
{
    const char *path = keys_config("[core]\nlog-level = debug\n");
    cli_result r = TEST_CLI("--config", path, "config", "show", "--json");
    json_object *o, *s, *k;
    char origin[4096];

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse_json(r.out);
    cr_assert(eq(sz, json_object_array_length(get(o, "files")), 1));
    cr_assert(eq(sz, json_object_array_length(get(o, "problems")), 0));
    s = get(o, "sections");
    k = get(get(s, "core"), "log-level");
    snprintf(origin, sizeof origin, "%s:6", path);
    cr_assert(eq(str, (char *)get_str(k, "value"), "debug"));
    cr_assert(eq(str, (char *)get_str(k, "origin"), origin));
    k = get(get(s, "container"), "memory");
    cr_assert(eq(str, (char *)get_str(k, "value"), "2G"));
    cr_assert(eq(str, (char *)get_str(k, "origin"), "default"));
    k = get(get(s, "runtime.keys"), "mode");
    cr_assert(eq(str, (char *)get_str(k, "value"), "auto"));
    cr_assert(eq(str, (char *)get_str(get(get(s, "runtime"), "backend"), "value"), "keys"));
    json_object_put(o);
    cli_result_done(&r);
}

Test(cli_config, help)
{
    static const char *const cmds[][3] = {
        {"config", "--help", NULL},
        {"config", "check", "--help"},
        {"config", "show", "-h"},
    };
    static const char *const usage[] = {
        "Usage: terok-sandbox config COMMAND",
        "Usage: terok-sandbox config check",
        "Usage: terok-sandbox config show",
    };

    for (size_t i = 0; i < 3; i++) {
        cli_result r = cmds[i][2] ? TEST_CLI(cmds[i][0], cmds[i][1], cmds[i][2])
                                  : TEST_CLI(cmds[i][0], cmds[i][1]);
        cr_assert(eq(int, r.exit_code, 0));
        cr_assert(strncmp(r.out, usage[i], strlen(usage[i])) == 0, "%s", r.out);
        cli_result_done(&r);
    }
}

Test(cli_config, usage_errors)
{
    cli_result r = TEST_CLI("config");

    cr_assert(eq(int, r.exit_code, 2));
    cr_assert(eq(str, r.err,
                 "terok-sandbox config: missing command: check or show\n"
                 "Try 'terok-sandbox config --help'.\n"));
    cli_result_done(&r);

    r = TEST_CLI("config", "frob");
    cr_assert(eq(int, r.exit_code, 2));
    cr_assert(strstr(r.err, "unknown command 'frob'") != NULL, "%s", r.err);
    cli_result_done(&r);

    r = TEST_CLI("config", "check", "extra");
    cr_assert(eq(int, r.exit_code, 2));
    cr_assert(eq(str, r.err,
                 "terok-sandbox config check: unexpected argument 'extra'\n"
                 "Try 'terok-sandbox config check --help'.\n"));
    cli_result_done(&r);

    r = TEST_CLI("config", "show", "--bogus");
    cr_assert(eq(int, r.exit_code, 2));
    cr_assert(eq(str, r.err,
                 "terok-sandbox config show: unknown option '--bogus'\n"
                 "Try 'terok-sandbox config show --help'.\n"));
    cli_result_done(&r);
}
