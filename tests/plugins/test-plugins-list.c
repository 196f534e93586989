/* SPDX-License-Identifier: Apache-2.0 */
/* test-plugins-list.c: `terok-sandbox plugins list` as the operator runs it: the plugin dir from
 * --config, every *.so probed in a child (a crashing plugin shows as crashed, the CLI survives),
 * the --json schema, exit codes. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "terok-test.h"

static char *plugin_dir;

static void setup(void)
{
    test_tmpdir_setup();
    plugin_dir = strdup(test_path("plugins"));
    cr_assert(mkdir(plugin_dir, 0755) == 0);
}

static void teardown(void)
{
    free(plugin_dir);
    test_tmpdir_teardown();
}

TestSuite(plugins_list, .init = setup, .fini = teardown, .timeout = 60.);

static void install_fixture(const char *variant, const char *file)
{
    char src[4096], dst[4096], buf[65536];
    const char *build = getenv("TEROK_TEST_BUILD_DIR");
    ssize_t n;
    int in, out;

    cr_assert(build != NULL, "TEROK_TEST_BUILD_DIR not set (run through meson test)");
    snprintf(src, sizeof src, "%s/tests/fixtures/plugins/fx-%s.so", build, variant);
    snprintf(dst, sizeof dst, "%s/%s", plugin_dir, file);
    in = open(src, O_RDONLY | O_CLOEXEC);
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(in >= 0 && out >= 0, "cannot copy %s", src);
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

static const char *config_for(const char *dir)
{
    char buf[4096];

    snprintf(buf, sizeof buf, "[core]\nplugin-dir = %s\n", dir);
    return test_write_file("sandbox.conf", buf, 0600);
}

static json_object *entry(json_object *array, const char *file)
{
    for (size_t i = 0; i < json_object_array_length(array); i++) {
        json_object *o = json_object_array_get_idx(array, i), *f;
        if (json_object_object_get_ex(o, "file", &f) && streq(json_object_get_string(f), file))
            return o;
    }
    cr_assert(false, "no entry for %s", file);
    return NULL;
}

static const char *str_of(json_object *o, const char *key)
{
    json_object *v;

    cr_assert(json_object_object_get_ex(o, key, &v), "key '%s' present (null allowed)", key);
    return v ? json_object_get_string(v) : NULL;
}

Test(plugins_list, json_schema_and_statuses)
{
    char expected[8192];
    json_object *array, *o, *caps;

    install_fixture("good-runtime", "runtime-fixture.so");
    install_fixture("crash", "runtime-crash.so");
    install_fixture("wrong-name", "runtime-named.so");
    cli_result r = TEST_CLI("--config", config_for(plugin_dir), "plugins", "list", "--json");

    cr_assert(eq(int, r.exit_code, 0), "stderr: %s", r.err);
    array = json_tokener_parse(r.out);
    cr_assert(array && json_object_is_type(array, json_type_array), "JSON array: %s", r.out);
    cr_assert(eq(sz, json_object_array_length(array), 3));

    o = entry(array, "runtime-fixture.so");
    snprintf(expected, sizeof expected, "%s/runtime-fixture.so", plugin_dir);
    cr_assert(eq(str, (char *)str_of(o, "path"), expected));
    cr_assert(eq(str, (char *)str_of(o, "kind"), "runtime"));
    cr_assert(eq(str, (char *)str_of(o, "name"), "fixture"));
    cr_assert(eq(str, (char *)str_of(o, "version"), "1.2.3"));
    cr_assert(eq(str, (char *)str_of(o, "abi"), "1.0"));
    cr_assert(eq(str, (char *)str_of(o, "status"), "ok"));
    cr_assert(str_of(o, "reason") == NULL);
    cr_assert(json_object_object_get_ex(o, "caps", &caps));
    cr_assert(eq(str, (char *)json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PLAIN),
                 "[\"exec\",\"logs\"]"));

    o = entry(array, "runtime-crash.so");
    snprintf(expected, sizeof expected,
             "plugin '%s/runtime-crash.so': crashed while loading: killed by SIGILL (Illegal "
             "instruction) (plugin ABI ?, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)str_of(o, "status"), "crashed"));
    cr_assert(eq(str, (char *)str_of(o, "reason"), expected));
    cr_assert(str_of(o, "abi") == NULL && str_of(o, "version") == NULL);

    o = entry(array, "runtime-named.so");
    snprintf(expected, sizeof expected,
             "plugin '%s/runtime-named.so': calls itself 'other', but its file name says 'named' "
             "(plugin ABI 1.0, host 1.0)",
             plugin_dir);
    cr_assert(eq(str, (char *)str_of(o, "status"), "rejected"));
    cr_assert(eq(str, (char *)str_of(o, "reason"), expected));
    json_object_put(array);
    cli_result_done(&r);
}

Test(plugins_list, human_table)
{
    install_fixture("good-runtime", "runtime-fixture.so");
    install_fixture("crash", "runtime-crash.so");
    cli_result r = TEST_CLI("--config", config_for(plugin_dir), "plugins", "list");
    char expected[8192];

    cr_assert(eq(int, r.exit_code, 0), "stderr: %s", r.err);
    snprintf(expected, sizeof expected,
             "Plugin directory: %s (this terok-sandbox speaks plugin ABI 1.0)\n"
             "\n"
             "FILE                KIND     NAME     VERSION  ABI  CAPS       STATUS\n"
             "runtime-crash.so    runtime  crash    -        -    -          crashed: plugin "
             "'%s/runtime-crash.so': crashed while loading: killed by SIGILL (Illegal "
             "instruction) (plugin ABI ?, host 1.0)\n"
             "runtime-fixture.so  runtime  fixture  1.2.3    1.0  exec,logs  ok\n",
             plugin_dir, plugin_dir);
    cr_assert(eq(str, r.out, expected));
    cli_result_done(&r);
}

Test(plugins_list, missing_directory)
{
    char dir[1024], expected[8192];

    snprintf(dir, sizeof dir, "%s/absent", plugin_dir);
    cli_result r = TEST_CLI("--config", config_for(dir), "plugins", "list");
    snprintf(expected, sizeof expected,
             "terok-sandbox: cannot open plugin directory '%s': No such file or directory\n", dir);
    cr_assert(eq(int, r.exit_code, 4));
    cr_assert(eq(str, r.err, expected));
    cli_result_done(&r);
}

Test(plugins_list, usage)
{
    cli_result r = TEST_CLI("plugins", "list", "/some/dir");

    cr_assert(eq(int, r.exit_code, 2), "the CLI takes no plugin path");
    cr_assert(eq(str, r.err,
                 "terok-sandbox plugins list: unexpected argument '/some/dir'\n"
                 "Try 'terok-sandbox plugins list --help'.\n"));
    cli_result_done(&r);

    r = TEST_CLI("plugins", "--help");
    cr_assert(eq(int, r.exit_code, 0));
    cr_assert(strstr(r.out, "Usage: terok-sandbox plugins list [--json]") != NULL);
    cli_result_done(&r);

    r = TEST_CLI("plugins");
    cr_assert(eq(int, r.exit_code, 2));
    cli_result_done(&r);

    r = TEST_CLI("plugins", "frobnicate");
    cr_assert(eq(int, r.exit_code, 2));
    cli_result_done(&r);
}
