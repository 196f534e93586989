/* SPDX-License-Identifier: Apache-2.0 */
/* test-cli-container.c: the container lifecycle through the terok-sandbox binary on
 * runtime-null: exit codes (passthrough, 125, documented codes), --json schemas, separate
 * invocations sharing state, ps showing managed containers only, rejections leaving no state.
 * The --help and usage tests need nothing; the rest need config_load and the loader. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "terok-test.h"

static void setup(void)
{
    test_tmpdir_setup();
    setenv("TEROK_SANDBOX_CONFIG", test_write_config(NULL), 1);
}

TestSuite(cli_container, .init = setup, .fini = test_tmpdir_teardown, .timeout = 60);

#define R(...) TEST_CLI(__VA_ARGS__)

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);

    cr_assert(o != NULL, "not JSON: %s", s);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;

    cr_assert(json_object_object_get_ex(o, key, &v), "no key '%s' in %s", key,
              json_object_to_json_string(o));
    return v;
}

static void expect(cli_result *r, int code)
{
    cr_assert(eq(int, r->exit_code, code), "exit %d (expected %d)\nstdout: %s\nstderr: %s",
              r->exit_code, code, r->out, r->err);
}

static void run_detached(const char *name, const char *cmd1, const char *cmd2)
{
    cli_result r = R("run", "-d", "--name", name, "localhost/null:latest", cmd1, cmd2);
    char want[128];

    snprintf(want, sizeof want, "%s\n", name);
    expect(&r, 0);
    cr_assert(eq(str, r.out, want));
    cli_result_done(&r);
}

/* ------------------------------------------------------------------ no plugin needed */

Test(cli_container, help_on_every_command_loads_nothing)
{
    const char *cmds[] = {"run",  "create", "start", "stop",    "rm",
                          "exec", "logs",   "ps",    "inspect", "wait"};

    /* A config that cannot even be read: --help must not look at it. */
    setenv("TEROK_SANDBOX_CONFIG", "/nonexistent/sandbox.conf", 1);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_result r = R(cmds[i], "--help");
        char want[64];
        snprintf(want, sizeof want, "Usage: terok-sandbox %s", cmds[i]);
        expect(&r, 0);
        cr_assert(contains(r.out, want), "%s --help: %s", cmds[i], r.out);
        cli_result_done(&r);
    }
}

Test(cli_container, usage_errors)
{
    struct {
        const char *const argv[5];
        int code;
        const char *msg;
    } cases[] = {
        {{"run", NULL}, 125, "terok-sandbox run: an IMAGE is required"},
        {{"run", "-d", NULL}, 2, "terok-sandbox run: an IMAGE is required"},
        {{"create", NULL}, 2, "terok-sandbox create: an IMAGE is required"},
        {{"run", "--bogus", "img", NULL}, 125, "terok-sandbox run: unknown option '--bogus'"},
        {{"run", "--name", NULL}, 125, "terok-sandbox run: option '--name' needs a value"},
        {{"run", "--pids-limit", "lots", "img"},
         125,
         "invalid value 'lots' for --pids-limit: expected an integer from 0 to 2147483647"},
        {{"run", "--cpus", "x", "img"}, 125, "invalid value 'x' for --cpus"},
        {{"run", "-v", "/only", "img"}, 125, "invalid volume '/only': use HOST:TARGET[:OPTIONS]"},
        {{"run", "--token-ttl", "soon", "img"},
         125,
         "invalid --token-ttl 'soon': expected a duration"},
        {{"create", "--token-ttl", "1500ms", "img"}, 2, "invalid --token-ttl '1500ms'"},
        {{"run", "-d", "--token-ttl", "0s"}, 2, "invalid --token-ttl '0s'"},
        {{"vault", "audit", "--limit", "0"}, 2, "invalid --limit '0': expected 1 to 1000000"},
        {{"vault", "audit", "--container", "../x"}, 2, "invalid container name '../x'"},
        {{"exec", "onlyname", NULL}, 125, "a container NAME and a COMMAND are required"},
        {{"rm", NULL}, 2, "terok-sandbox rm: a container NAME is required"},
        {{"stop", "-t", "x", "c"}, 2, "invalid value 'x' for --time"},
        {{"logs", NULL}, 2, "exactly one container NAME is required"},
        {{"ps", "extra", NULL}, 2, "unexpected argument 'extra'"},
        {{"inspect", NULL}, 2, "a container NAME is required"},
        {{"wait", NULL}, 2, "a container NAME is required"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = test_cli(NULL, cases[i].argv);
        cr_assert(eq(int, r.exit_code, cases[i].code), "case %zu (%s): exit %d, stderr %s", i,
                  cases[i].argv[0], r.exit_code, r.err);
        cr_assert(contains(r.err, cases[i].msg), "case %zu: %s", i, r.err);
        cli_result_done(&r);
    }
}

Test(cli_container, env_file_with_nul_is_refused)
{
    const char *f = test_write_file("env", "A=1\n", 0600);
    FILE *fp = fopen(f, "ae");

    fwrite("B=x\0y\n", 1, 6, fp);
    fclose(fp);
    cli_result r = R("run", "--env-file", f, "localhost/null:latest");
    expect(&r, 125);
    cr_assert(contains(r.err, "line 2 contains a NUL byte"), "%s", r.err);
    cli_result_done(&r);
}

/* ------------------------------------------------------------------ lifecycle (config + loader) */

Test(cli_container, run_foreground_passes_the_exit_code_on)
{
    cli_result r = R("run", "localhost/null:latest", "exit", "3");

    expect(&r, 3);
    cr_assert(eq(str, r.out, ""));
    cr_assert(contains(r.err, "WARNING: container '"), "%s", r.err);
    cr_assert(contains(r.err, "runs unshielded ([shield] backend = none)"), "%s", r.err);
    cli_result_done(&r);
}

/* Fail closed: a configured shield that cannot be used refuses the run and leaves nothing. */
static void shield_config(const char *backend)
{
    char buf[1024];

    snprintf(buf, sizeof buf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\n"
             "backend = %s\n",
             getenv("TEROK_TEST_PLUGIN_DIR"), backend);
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("shield.conf", buf, 0600), 1);
}

static void assert_refused(const char *name, const char *why)
{
    cli_result r =
        R("run", "-d", "--name", name, "--allow", "10.0.0.1", "localhost/null:latest", "exit", "0");

    cr_assert(r.exit_code != 0, "run was not refused: %s", r.out);
    cr_assert(eq(str, r.out, ""));
    cr_assert(contains(r.err, why), "%s", r.err);
    cli_result_done(&r);

    /* the same state, seen through a config that loads */
    setenv("TEROK_SANDBOX_CONFIG", test_write_config(NULL), 1);
    r = R("ps", "-a", "--json");
    expect(&r, 0);
    cr_assert(contains(r.out, name) == 0, "refused run left a container: %s", r.out);
    cli_result_done(&r);
}

Test(cli_container, unusable_shield_refuses_the_run_and_leaves_no_state)
{
    /* runtime-null runs no OCI hooks: the shield could never be applied */
    shield_config("nft");
    assert_refused("guarded",
                   "refusing to run 'guarded' without its egress shield (pass --no-shield");
    /* --no-shield is the explicit way out, and the refused name is free */
    shield_config("nft");
    cli_result r =
        R("run", "-d", "--no-shield", "--name", "guarded", "localhost/null:latest", "exit", "0");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "guarded\n"));
    cr_assert(contains(r.err, "runs unshielded (--no-shield)"), "%s", r.err);
    cli_result_done(&r);
}

Test(cli_container, missing_shield_plugin_refuses_the_run)
{
    shield_config("no-such-shield");
    assert_refused("orphan", "plugin 'shield-no-such-shield' not found");
}

Test(cli_container, run_foreground_streams_output)
{
    cli_result r = R("run", "--no-shield", "localhost/null:latest", "echo", "hello", "world", ";",
                     "echo-err", "oops", ";", "exit", "0");

    expect(&r, 0);
    cr_assert(eq(str, r.out, "hello world\n"));
    cr_assert(contains(r.err, "oops\n"));
    cr_assert(contains(r.err, "runs unshielded (--no-shield)"), "%s", r.err);
    cli_result_done(&r);
}

Test(cli_container, run_uses_the_image_cmd_and_rm_removes)
{
    cli_result r = R("run", "--rm", "--name", "once", "localhost/null:latest");

    expect(&r, 0);
    cr_assert(eq(str, r.out, "hello\n"), "the image's Cmd: %s", r.out);
    cli_result_done(&r);
    r = R("ps", "--all", "--json");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "[]\n"));
    cli_result_done(&r);
}

Test(cli_container, run_failure_is_125_and_leaves_no_state)
{
    cli_result r = R("run", "-v", "/tmp:/run/terok", "localhost/null:latest");

    expect(&r, 125);
    cr_assert(contains(r.err, "volume target '/run/terok' is managed by terok-sandbox"), "%s",
              r.err);
    cli_result_done(&r);
    r = R("run", "-l", "org.terok.managed=0", "localhost/null:latest");
    expect(&r, 125);
    cli_result_done(&r);
    r = R("run", "docker.io/unknown", "exit", "0");
    expect(&r, 125);
    cr_assert(contains(r.err, "image 'docker.io/unknown' is not available"), "%s", r.err);
    cli_result_done(&r);
    r = R("run", "-d", "--network", "host", "localhost/null:latest");
    expect(&r, 1);
    cli_result_done(&r);
    r = R("ps", "--all", "--json");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "[]\n"));
    cli_result_done(&r);
}

Test(cli_container, detached_run_ps_inspect_json)
{
    cli_result r;
    json_object *a, *o, *spec, *rel;

    r = R("--json", "run", "-d", "--name", "web", "--no-read-only", "-e", "API_TOKEN=sekrit",
          "localhost/null:latest", "sleep");
    expect(&r, 0);
    o = parse(r.out);
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "name")), "web"));
    cr_assert(eq(sz, strlen(json_object_get_string(get(o, "id"))), 64));
    json_object_put(o);
    cli_result_done(&r);

    r = R("ps", "--json");
    expect(&r, 0);
    a = parse(r.out);
    cr_assert(eq(sz, json_object_array_length(a), 1));
    o = json_object_array_get_idx(a, 0);
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "name")), "web"));
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "state")), "running"));
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "image")), "localhost/null:latest"));
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "runtime")), "null"));
    cr_assert(json_object_get_boolean(get(o, "managed")));
    get(o, "id");
    get(o, "status");
    get(o, "exit_code");
    get(o, "created_at");
    json_object_put(a);
    cli_result_done(&r);

    r = R("inspect", "--json", "web");
    expect(&r, 0);
    a = parse(r.out);
    o = json_object_array_get_idx(a, 0);
    spec = get(o, "spec");
    cr_assert(json_object_get_boolean(get(get(spec, "hardening"), "cap_drop_all")));
    cr_assert(json_object_get_boolean(get(get(spec, "hardening"), "no_new_privileges")));
    cr_assert(json_object_get_boolean(get(get(spec, "hardening"), "read_only_root")) == 0);
    rel = get(spec, "relaxations");
    cr_assert(contains(json_object_to_json_string(rel),
                       "{ \"setting\": \"read_only_root\", \"source\": \"command line "
                       "(--no-read-only)\" }"),
              "%s", json_object_to_json_string(rel));
    cr_assert(
        eq(str, (char *)json_object_get_string(get(get(o, "labels"), "org.terok.managed")), "1"));
    cr_assert(contains(r.out, "sekrit") == 0, "env secrets never shown: %s", r.out);
    json_object_put(a);
    cli_result_done(&r);
}

Test(cli_container, logs_exec_stop_wait_across_invocations)
{
    cli_result r;

    r = R("run", "-d", "--name", "box", "localhost/null:latest", "echo", "one", ";", "echo", "two",
          ";", "sleep");
    expect(&r, 0);
    cli_result_done(&r);

    r = R("logs", "box");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "one\ntwo\n"));
    cli_result_done(&r);
    r = R("logs", "--tail", "1", "box");
    cr_assert(eq(str, r.out, "two\n"));
    cli_result_done(&r);

    r = R("exec", "-e", "X=42", "box", "printenv", "X", ";", "echo-err", "e", ";", "exit", "7");
    expect(&r, 7);
    cr_assert(eq(str, r.out, "42\n"));
    cr_assert(eq(str, r.err, "e\n"));
    cli_result_done(&r);

    r = R("wait", "--timeout", "100ms", "box");
    expect(&r, 1);
    cr_assert(contains(r.err, "timed out after 100 ms"), "%s", r.err);
    cli_result_done(&r);

    r = R("stop", "box");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "box\n"));
    cli_result_done(&r);

    r = R("wait", "box");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "143\n"));
    cli_result_done(&r);
    r = R("wait", "--json", "box");
    cr_assert(eq(str, r.out, "[{\"name\":\"box\",\"exit_code\":143}]\n"));
    cli_result_done(&r);

    r = R("exec", "box", "echo", "x");
    expect(&r, 125);
    cr_assert(contains(r.err, "is not running"), "%s", r.err);
    cli_result_done(&r);

    r = R("logs", "-f", "box"); /* not running: follow ends at once */
    expect(&r, 0);
    cr_assert(eq(str, r.out, "one\ntwo\n"));
    cli_result_done(&r);
}

Test(cli_container, create_then_start)
{
    cli_result r = R("create", "--name", "later", "localhost/null:latest", "exit", "9");

    expect(&r, 0);
    cr_assert(eq(str, r.out, "later\n"));
    cli_result_done(&r);
    r = R("ps", "-a", "--json");
    cr_assert(contains(r.out, "\"state\":\"created\""), "%s", r.out);
    cli_result_done(&r);
    r = R("start", "--json", "later");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "[{\"name\":\"later\",\"started\":true}]\n"));
    cli_result_done(&r);
    r = R("wait", "later");
    cr_assert(eq(str, r.out, "9\n"));
    cli_result_done(&r);
}

Test(cli_container, rm_is_idempotent)
{
    cli_result r;

    run_detached("gone", "sleep", NULL);
    r = R("rm", "gone");
    expect(&r, 1);
    cr_assert(contains(r.err, "is running"), "%s", r.err);
    cli_result_done(&r);
    r = R("rm", "--json", "-f", "gone", "never");
    expect(&r, 0);
    cr_assert(eq(str, r.out,
                 "[{\"name\":\"gone\",\"existed\":true,\"removed\":true},"
                 "{\"name\":\"never\",\"existed\":false,\"removed\":true}]\n"));
    cli_result_done(&r);
    r = R("rm", "gone");
    expect(&r, 0);
    cli_result_done(&r);
}

Test(cli_container, unknown_containers_exit_4)
{
    const char *cmds[][2] = {
        {"start", "x"}, {"stop", "x"}, {"inspect", "x"}, {"logs", "x"}, {"wait", "x"}};

    for (size_t i = 0; i < 5; i++) {
        cli_result r = R(cmds[i][0], cmds[i][1]);
        expect(&r, 4);
        cr_assert(contains(r.err, "no such container 'x'"), "%s: %s", cmds[i][0], r.err);
        cli_result_done(&r);
    }
    cli_result r = R("--json", "stop", "x");
    expect(&r, 4);
    json_object *e = parse(r.err);
    cr_assert(eq(int, json_object_get_int(get(get(e, "error"), "exit_code")), 4));
    json_object_put(e);
    cli_result_done(&r);
}

Test(cli_container, ps_shows_only_managed_containers)
{
    char path[4096];
    json_object *doc, *labels;
    cli_result r;

    run_detached("mine", "sleep", NULL);
    /* Plant a container the runtime has but terok-sandbox did not create. */
    snprintf(path, sizeof path, "%s/state/runtime-null/containers/mine.json", test_tmp);
    doc = json_object_from_file(path);
    cr_assert(doc != NULL);
    json_object_object_add(doc, "name", json_object_new_string("foreign"));
    json_object_object_add(doc, "id", json_object_new_string("f0f0"));
    labels = json_object_new_object();
    json_object_object_add(get(doc, "spec"), "labels", labels);
    snprintf(path, sizeof path, "%s/state/runtime-null/containers/foreign.json", test_tmp);
    cr_assert(json_object_to_file(path, doc) == 0);
    json_object_put(doc);

    r = R("ps", "-q");
    expect(&r, 0);
    cr_assert(eq(str, r.out, "mine\n"));
    cli_result_done(&r);
    r = R("rm", "-f", "foreign");
    expect(&r, 1);
    cr_assert(contains(r.err, "is not managed by terok-sandbox"), "%s", r.err);
    cli_result_done(&r);
}

Test(cli_container, invalid_config_exits_3)
{
    cli_result r;

    setenv("TEROK_SANDBOX_CONFIG", test_write_config("[container]\nno-such-key = 1\n"), 1);
    r = R("ps");
    expect(&r, 3);
    cr_assert(contains(r.err, "sandbox.conf:6:"), "%s", r.err);
    cli_result_done(&r);
}

/* ------------------------------------------------------------------ shield CLI */

Test(cli_container, shield_install_hooks_writes_gated_hooks_idempotently)
{
    char dir[4200], path[4300];
    json_object *o, *args;

    shield_config("nft");
    snprintf(dir, sizeof dir, "%s/hooks.d", test_tmp);
    for (int i = 0; i < 2; i++) {
        cli_result r = R("shield", "install-hooks", "--hooks-dir", dir);
        expect(&r, 0);
        cli_result_done(&r);
    }
    snprintf(path, sizeof path, "%s/terok-shield-createRuntime.json", dir);
    o = json_object_from_file(path);
    cr_assert(o != NULL, "no hook JSON at %s", path);
    cr_assert(eq(str, (char *)json_object_get_string(get(o, "version")), "1.0.0"));
    cr_assert(eq(str,
                 (char *)json_object_get_string(
                     get(get(get(o, "when"), "annotations"), "^org\\.terok\\.shield\\.bundle$")),
                 ".+"));
    cr_assert(eq(str,
                 (char *)json_object_get_string(json_object_array_get_idx(get(o, "stages"), 0)),
                 "createRuntime"));
    cr_assert(access(json_object_get_string(get(get(o, "hook"), "path")), X_OK) == 0);
    args = get(get(o, "hook"), "args");
    cr_assert(eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 1)), "hook"));
    cr_assert(eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 3)),
                 getenv("TEROK_TEST_PLUGIN_DIR")));
    /* the plugin directory and the shield plugin, as they are now (see loader_file_id) */
    {
        char dir_id[64], so_id[96], so[4200];
        struct stat st;

        cr_assert(stat(getenv("TEROK_TEST_PLUGIN_DIR"), &st) == 0);
        snprintf(dir_id, sizeof dir_id, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
        snprintf(so, sizeof so, "%s/shield-nft.so", getenv("TEROK_TEST_PLUGIN_DIR"));
        cr_assert(lstat(so, &st) == 0);
        snprintf(so_id, sizeof so_id, "%ju:%ju:%jd.%09ld", (uintmax_t)st.st_dev,
                 (uintmax_t)st.st_ino, (intmax_t)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
        cr_assert(
            eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 6)), "--trust"));
        cr_assert(
            eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 7)), dir_id));
        cr_assert(
            eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 9)), so_id));
    }
    cr_assert(eq(str, (char *)json_object_get_string(json_object_array_get_idx(args, 10)),
                 "createRuntime"));
    cr_assert(eq(sz, json_object_array_length(args), 11));
    json_object_put(o);
    snprintf(path, sizeof path, "%s/terok-shield-poststop.json", dir);
    cr_assert(access(path, R_OK) == 0);
}

Test(cli_container, shield_commands_name_the_container)
{
    cli_result r = R("shield", "allow", "ghost", "10.0.0.1");

    expect(&r, 4);
    cr_assert(contains(r.err, "no such container 'ghost'"), "%s", r.err);
    cli_result_done(&r);

    r = R("shield", "allow", "ghost");
    expect(&r, 2);
    cli_result_done(&r);
    r = R("shield", "allow", "ghost", "10.0.0.1", "--for", "soon");
    expect(&r, 2);
    cr_assert(contains(r.err, "invalid --for 'soon'"), "%s", r.err);
    cli_result_done(&r);
    r = R("shield", "frobnicate");
    expect(&r, 2);
    cli_result_done(&r);
    r = R("shield", "status", "--help");
    expect(&r, 0);
    cr_assert(contains(r.out, "install-hooks"), "%s", r.out);
    cli_result_done(&r);
    /* backend none: the container exists, the shield does not */
    run_detached("open", "exit", "0");
    r = R("shield", "status", "open");
    expect(&r, 5);
    cr_assert(contains(r.err, "no shield backend is configured"), "%s", r.err);
    cli_result_done(&r);
}
