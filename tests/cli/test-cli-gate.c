/* SPDX-License-Identifier: Apache-2.0 */
/* test-cli-gate.c: `terok-sandbox gate ...` through the binary with the real gate-git plugin,
 * real git and file:// upstreams: exit codes, messages naming bad values, --json shapes,
 * idempotence, review/diff/forward of a task's work, sync with held changes, backups, and an
 * upstream credential that goes from the vault through the core to the upstream and nowhere
 * else. Task views are granted by loading the plugin in-process on the same state dir (the
 * `run --repo` wiring is the gate daemon's). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "../plugins/gate/http-harness.h"
#include "loader.h"
#include "terok-test.h"

static void setup(void)
{
    test_tmpdir_setup();
    setenv("TEROK_SANDBOX_CONFIG", test_write_config("[vault.sqlite]\nkey-sources = key-file\n"),
           1);
    setenv("GIT_AUTHOR_NAME", "Test Author", 1);
    setenv("GIT_AUTHOR_EMAIL", "author@example.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "Test Author", 1);
    setenv("GIT_COMMITTER_EMAIL", "author@example.invalid", 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
}

static gate_srv srv;

static void teardown(void)
{
    gate_srv_stop(&srv);
    test_tmpdir_teardown();
}

TestSuite(cli_gate, .init = setup, .fini = teardown, .timeout = 120);

#define R(...) TEST_CLI(__VA_ARGS__)
#define GIT TEST_GIT

#define commit_file(work, file, msg) test_commit_file(work, file, NULL, msg)

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

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* file:// upstream with one commit on main; returns the URL (static). */
static const char *upstream(char **ret_work)
{
    static char url[1200];
    char bare[1024], work[1024];

    snprintf(bare, sizeof bare, "%s/up.git", test_tmp);
    snprintf(work, sizeof work, "%s/upwork", test_tmp);
    free(GIT("init", "-q", "--bare", "-b", "main", bare));
    free(GIT("init", "-q", "-b", "main", work));
    commit_file(work, "readme", "upstream one");
    free(GIT("-C", work, "push", "-q", bare, "main"));
    snprintf(url, sizeof url, "file://%s", bare);
    if (ret_work)
        *ret_work = strdup(work);
    return url;
}

static const char *state_dir(void)
{
    static char p[1024];

    snprintf(p, sizeof p, "%s/state/gate-git", test_tmp);
    return p;
}

/* Grant a task a view in-process, on the state the CLI uses. */
static void grant(const char *task, const char *repo, uint32_t rights)
{
    char so[1024];
    terok_error err = TEROK_ERROR_INIT;
    plugin *p = NULL;
    void *st = NULL;

    snprintf(so, sizeof so, "%s/gate-git.so", getenv("TEROK_TEST_PLUGIN_DIR"));
    terok_assert_ok(loader_load_file(so, &p, &err), &err);
    p->state_dir = state_dir();
    p->runtime_dir = state_dir();
    terok_assert_ok(p->ops.gate.open(p, NULL, &st, &err), &err);
    terok_assert_ok(p->ops.gate.grant(st, task, repo, rights, &err), &err);
    p->ops.gate.close(st);
    plugin_unload(p);
}

static const char *task_repo(const char *task, const char *repo)
{
    static char p[1200];

    snprintf(p, sizeof p, "%s/tasks/%s/%s.git", state_dir(), task, repo);
    return p;
}

/* task-a pushes branch "feature" (2 commits) into its view. */
static void task_work(void)
{
    char w[1200];

    snprintf(w, sizeof w, "%s/taskwork", test_tmp);
    grant("task-a", "proj", TEROK_GATE_READ | TEROK_GATE_WRITE);
    free(GIT("clone", "-q", task_repo("task-a", "proj"), w));
    free(GIT("-C", w, "checkout", "-q", "-b", "feature"));
    commit_file(w, "f1", "feature one");
    commit_file(w, "f2", "feature two");
    free(GIT("-C", w, "push", "-q", "origin", "feature"));
}

Test(cli_gate, help_and_usage_errors)
{
    cli_result r = R("gate", "--help");

    cr_expect(eq(int, r.exit_code, 0));
    cr_expect(contains(r.out, "forward TASK BRANCH [--to B]"), "%s", r.out);
    cli_result_done(&r);
    r = R("gate");
    cr_expect(eq(int, r.exit_code, 2));
    cli_result_done(&r);
    r = R("gate", "frobnicate");
    cr_expect(eq(int, r.exit_code, 2));
    cr_expect(contains(r.err, "'frobnicate'"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add");
    cr_expect(eq(int, r.exit_code, 2));
    cr_expect(contains(r.err, "missing PROJECT"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add", "a", "b");
    cr_expect(eq(int, r.exit_code, 2));
    cr_expect(contains(r.err, "'b'"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add", "x", "--bogus");
    cr_expect(eq(int, r.exit_code, 2));
    cli_result_done(&r);
    r = R("gate", "backups", "prune", "x", "--older-than", "soon");
    cr_expect(eq(int, r.exit_code, 2));
    cr_expect(contains(r.err, "'soon'"), "%s", r.err);
    cli_result_done(&r);
}

/* `gate serve` and `vault serve` share their option handling and start-up (cli_serve_*). */
Test(cli_gate, serve_usage_errors_and_a_second_daemon)
{
    const char *svc[] = {"gate", "vault"};

    for (size_t i = 0; i < ELEMENTSOF(svc); i++) {
        cli_result r = R(svc[i], "serve", "--tcp", "10.0.0.1:1=box");
        cr_expect(eq(int, r.exit_code, 2), "%s", svc[i]);
        cr_expect(contains(r.err, "invalid --tcp '10.0.0.1:1=box'"), "%s", r.err);
        cli_result_done(&r);
        r = R(svc[i], "serve", "--tcp", "127.0.0.1:0=a", "--tcp", "127.0.0.1:0=b", "--tcp",
              "127.0.0.1:0=c", "--tcp", "127.0.0.1:0=d", "--tcp", "127.0.0.1:0=e", "--tcp",
              "127.0.0.1:0=f", "--tcp", "127.0.0.1:0=g", "--tcp", "127.0.0.1:0=h", "--tcp",
              "127.0.0.1:0=i");
        cr_expect(eq(int, r.exit_code, 2), "%s", svc[i]);
        cr_expect(contains(r.err, "at most 8 --tcp listeners"), "%s", r.err);
        cli_result_done(&r);
        r = R(svc[i], "serve", "extra");
        cr_expect(eq(int, r.exit_code, 2));
        cr_expect(contains(r.err, "'extra'"), "%s", r.err);
        cli_result_done(&r);
    }
    cli_result r = R("gate", "serve", "--max-workers", "0");
    cr_expect(eq(int, r.exit_code, 2));
    cr_expect(contains(r.err, "'0'"), "%s", r.err);
    cli_result_done(&r);

    /* detached, then refused a second time while it answers */
    r = R("gate", "serve");
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    int pid = 0;
    cr_assert(sscanf(r.out, "gate daemon running (pid %d)", &pid) == 1, "%s", r.out);
    cli_result_done(&r);
    r = R("gate", "serve");
    cr_expect(eq(int, r.exit_code, 1));
    cr_expect(contains(r.err, "a gate daemon already serves"), "%s", r.err);
    cli_result_done(&r);
    cr_assert(kill(pid, SIGTERM) == 0);
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
        usleep(50 * 1000);
}

Test(cli_gate, add_list_rm_with_json_and_idempotence)
{
    const char *url = upstream(NULL);
    cli_result r = R("gate", "add", "proj", "--upstream", url);
    json_object *o, *e;

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add", "proj", "--upstream", url, "--json");
    cr_expect(eq(int, r.exit_code, 0), "idempotent: %s", r.err);
    o = parse(r.out);
    cr_expect_str_eq(jstr(o, "name"), "proj");
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "add", "proj", "--upstream", "file:///other.git");
    cr_expect(eq(int, r.exit_code, 1));
    cr_expect(contains(r.err, "'proj' exists"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add", "empty");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "list", "--json");
    cr_assert(eq(int, r.exit_code, 0));
    o = parse(r.out);
    cr_assert(eq(sz, json_object_array_length(o), 2));
    e = json_object_array_get_idx(o, 1);
    cr_expect_str_eq(jstr(e, "name"), "proj");
    cr_expect_str_eq(jstr(e, "upstream"), url);
    cr_expect_str_eq(jstr(e, "head"), "refs/heads/main");
    cr_expect(json_object_is_type(json_object_object_get(e, "tasks"), json_type_array));
    cr_expect(json_object_is_type(json_object_object_get(e, "pending"), json_type_int));
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "list");
    cr_expect(contains(r.out, "PROJECT") && contains(r.out, "proj"), "%s", r.out);
    cli_result_done(&r);
    r = R("gate", "rm", "proj", "never", "--json");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse(r.out);
    cr_expect_str_eq(jstr(json_object_array_get_idx(o, 0), "result"), "removed");
    cr_expect_str_eq(jstr(json_object_array_get_idx(o, 1), "result"), "absent");
    json_object_put(o);
    cli_result_done(&r);
}

Test(cli_gate, hostile_names_are_refused_naming_the_value)
{
    static const char *const bad[] = {
        "../x",
        "a/b",
        "-rf",
        "..",
        "UP",
        "x.git",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    struct stat st;

    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        cli_result r = R("gate", "add", "--", bad[i]);
        cr_expect(eq(int, r.exit_code, 1), "%s: %d %s", bad[i], r.exit_code, r.err);
        cr_expect(contains(r.err, bad[i]), "message names '%s': %s", bad[i], r.err);
        cli_result_done(&r);
    }
    cr_expect(stat(test_path("state/gate-git/x"), &st) < 0);
    {
        cli_result r = R("gate", "add", "proj", "--branch", "a..b");
        cr_expect(eq(int, r.exit_code, 1));
        cr_expect(contains(r.err, "'a..b'"), "%s", r.err);
        cli_result_done(&r);
        r = R("gate", "add", "proj", "--upstream", "ext::sh -c id");
        cr_expect(eq(int, r.exit_code, 1));
        cli_result_done(&r);
    }
}

Test(cli_gate, review_diff_forward)
{
    const char *url = upstream(NULL);
    cli_result r = R("gate", "add", "proj", "--upstream", url);
    json_object *o, *f;
    char upbare[1200];

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    task_work();
    r = R("gate", "review", "task-a", "--json");
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse(r.out);
    f = NULL;
    for (size_t i = 0; i < json_object_array_length(o); i++)
        if (!strcmp(jstr(json_object_array_get_idx(o, i), "name"), "feature"))
            f = json_object_array_get_idx(o, i);
    cr_assert(f != NULL, "%s", r.out);
    cr_expect_str_eq(jstr(f, "project"), "proj");
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(f, "ahead")), 2));
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(f, "behind")), 0));
    cr_expect(eq(sz,
                 json_object_array_length(
                     json_object_object_get(json_object_object_get(f, "detail"), "commits")),
                 2));
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "review", "task-a");
    cr_expect(contains(r.out, "feature one") && contains(r.out, "2 file(s) changed"), "%s", r.out);
    cli_result_done(&r);
    r = R("gate", "diff", "task-a", "feature");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cr_expect(contains(r.out, "diff --git a/f1 b/f1") && contains(r.out, "+feature two"), "%s",
              r.out);
    cli_result_done(&r);
    r = R("gate", "diff", "task-a", "no-such");
    cr_expect(eq(int, r.exit_code, 4), "%s", r.err);
    cr_expect(contains(r.err, "'no-such'"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "review", "task-zzz");
    cr_expect(eq(int, r.exit_code, 4));
    cli_result_done(&r);
    r = R("gate", "forward", "task-a", "feature", "--to", "main", "--json");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse(r.out);
    cr_expect_str_eq(jstr(o, "to"), "main");
    json_object_put(o);
    cli_result_done(&r);
    snprintf(upbare, sizeof upbare, "%s/up.git", test_tmp);
    {
        _cleanup_free_ char *up = GIT("--git-dir", upbare, "rev-parse", "main"),
                            *mine = GIT("--git-dir", task_repo("task-a", "proj"), "rev-parse",
                                        "feature");
        cr_expect_str_eq(up, mine);
    }
}

Test(cli_gate, forward_non_fast_forward_needs_force_and_backs_up)
{
    char *upwork = NULL;
    const char *url = upstream(&upwork);
    cli_result r = R("gate", "add", "proj", "--upstream", url);
    json_object *o;

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    task_work();
    commit_file(upwork, "other", "someone else upstream");
    free(GIT("-C", upwork, "push", "-q", url + 7, "main"));
    r = R("gate", "forward", "task-a", "feature", "--to", "main");
    cr_expect(eq(int, r.exit_code, 1));
    cr_expect(contains(r.err, "--force"), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "forward", "task-a", "feature", "--to", "main", "--force");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "backups", "list", "proj", "--json");
    cr_expect(eq(int, r.exit_code, 0));
    o = parse(r.out);
    cr_assert(eq(sz, json_object_array_length(o), 1), "%s", r.out);
    cr_expect_str_eq(jstr(json_object_array_get_idx(o, 0), "ref"), "refs/upstream/main");
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "backups", "prune", "proj", "--older-than", "0", "--json");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse(r.out);
    cr_expect(eq(i64, json_object_get_int64(json_object_object_get(o, "pruned")), 1));
    json_object_put(o);
    cli_result_done(&r);
    free(upwork);
}

Test(cli_gate, sync_pending_apply)
{
    char *upwork = NULL;
    const char *url = upstream(&upwork);
    cli_result r = R("gate", "add", "proj", "--upstream", url);
    json_object *o;

    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    free(GIT("-C", upwork, "commit", "-q", "--amend", "-m", "rewritten"));
    free(GIT("-C", upwork, "push", "-q", "--force", url + 7, "main"));
    r = R("gate", "sync", "proj", "--json");
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    o = parse(r.out);
    cr_expect_str_eq(jstr(json_object_array_get_idx(o, 0), "action"), "pending");
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "sync", "proj");
    cr_expect(contains(r.out, "held"), "%s", r.out);
    cli_result_done(&r);
    r = R("gate", "pending", "proj", "--json");
    o = parse(r.out);
    cr_expect_str_eq(jstr(json_object_array_get_idx(o, 0), "kind"), "upstream-rewrite");
    json_object_put(o);
    cli_result_done(&r);
    r = R("gate", "apply", "proj", "nothing-here");
    cr_expect(eq(int, r.exit_code, 4), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "apply", "proj", "main");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "pending", "proj");
    cr_expect(contains(r.out, "nothing pending"), "%s", r.out);
    cli_result_done(&r);
    r = R("gate", "sync", "nope");
    cr_expect(eq(int, r.exit_code, 4), "%s", r.err);
    cli_result_done(&r);
    free(upwork);
}

Test(cli_gate, unreachable_upstream_names_the_url)
{
    cli_result r = R("gate", "add", "proj", "--upstream", "http://127.0.0.1:9/nothing.git");
    struct stat st;

    cr_expect(eq(int, r.exit_code, 1));
    cr_expect(contains(r.err, "http://127.0.0.1:9/nothing.git"), "%s", r.err);
    cr_expect(stat(test_path("state/gate-git/projects/proj.git"), &st) < 0);
    cli_result_done(&r);
}

/* The credential: stored in the vault, lent by the core for the one fetch/push, sent to the
 * upstream as Basic auth, and never in a message, the mirror's config or the event log. */
Test(cli_gate, vault_credential_reaches_the_upstream_and_nothing_else)
{
    static const char token[] = "s3cr3t-upstream-token";
    /* base64("x-access-token:s3cr3t-upstream-token") */
    static const char auth[] = "Basic eC1hY2Nlc3MtdG9rZW46czNjcjN0LXVwc3RyZWFtLXRva2Vu";
    char so[1024], upstate[1024], url[256], w[1200];
    _cleanup_free_ char *log = NULL;
    cli_result r;

    /* The "upstream" is another gate-git instance behind the test HTTP harness, demanding
     * the token. */
    snprintf(so, sizeof so, "%s/gate-git.so", getenv("TEROK_TEST_PLUGIN_DIR"));
    snprintf(upstate, sizeof upstate, "%s/upstream-gate", test_tmp);
    mkdir(upstate, 0700);
    {
        terok_error err = TEROK_ERROR_INIT;
        plugin *p = NULL;
        void *st = NULL;
        terok_gate_repo_spec spec = {.struct_size = sizeof spec, .name = "up"};
        terok_assert_ok(loader_load_file(so, &p, &err), &err);
        p->state_dir = upstate;
        p->runtime_dir = upstate;
        terok_assert_ok(p->ops.gate.open(p, NULL, &st, &err), &err);
        terok_assert_ok(p->ops.gate.repo_create(st, &spec, &err), &err);
        terok_assert_ok(
            p->ops.gate.grant(st, "up-task", "up", TEROK_GATE_READ | TEROK_GATE_WRITE, &err), &err);
        p->ops.gate.close(st);
        plugin_unload(p);
    }
    snprintf(w, sizeof w, "%s/upstream-tasks/up-task/up.git", upstate);
    {
        char seed[1200];
        snprintf(seed, sizeof seed, "%s/seed", test_tmp);
        free(GIT("init", "-q", "-b", "main", seed));
        commit_file(seed, "readme", "upstream behind auth");
        snprintf(w, sizeof w, "%s/tasks/up-task/up.git", upstate);
        free(GIT("-C", seed, "push", "-q", w, "main"));
    }
    gate_srv_start_auth(&srv, so, upstate, "up-task=rw", test_path("up.log"), auth);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/up-task/up.git", srv.port);

    /* Without the credential in the vault: refused, naming it; nothing created. */
    r = R("gate", "add", "proj", "--upstream", url, "--credential", "upstream-token");
    cr_expect(eq(int, r.exit_code, 4), "%s", r.err);
    cr_expect(contains(r.err, "'upstream-token'"), "%s", r.err);
    cli_result_done(&r);
    /* A wrong credential: refused by the upstream, and not repeated in the message. */
    r = test_cli("wrong-token-xyz", (const char *const[]){"vault", "add", "upstream-token", NULL});
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "add", "proj", "--upstream", url, "--credential", "upstream-token");
    cr_expect(eq(int, r.exit_code, 1), "%s", r.err);
    cr_expect(contains(r.err, "refused the lent credential"), "%s", r.err);
    cr_expect(contains(r.err, "wrong-token-xyz") + contains(r.out, "wrong-token-xyz") == 0, "%s",
              r.err);
    cli_result_done(&r);
    r = test_cli(token, (const char *const[]){"vault", "add", "upstream-token", NULL});
    cr_assert(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    /* A project without --credential gets no credential at all (not the operator's). */
    r = R("gate", "add", "anon", "--upstream", url);
    cr_expect(eq(int, r.exit_code, 1));
    cr_expect(contains(r.err, token) == 0);
    cli_result_done(&r);
    r = R("gate", "add", "proj", "--upstream", url, "--credential", "upstream-token");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cr_expect(contains(r.err, token) + contains(r.out, token) == 0);
    cli_result_done(&r);
    task_work();
    r = R("gate", "forward", "task-a", "feature");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    r = R("gate", "sync", "proj", "--json");
    cr_expect(eq(int, r.exit_code, 0), "%s", r.err);
    cli_result_done(&r);
    {
        _cleanup_free_ char *b = GIT("--git-dir", w, "rev-parse", "feature"),
                            *t = GIT("--git-dir", task_repo("task-a", "proj"), "rev-parse",
                                     "feature");
        cr_expect_str_eq(b, t, "forward landed behind auth");
    }
    gate_srv_stop(&srv);
    log = calloc(1, 65536);
    {
        FILE *f = fopen(test_path("up.log"), "r");
        cr_assert(f != NULL);
        (void)!fread(log, 1, 65535, f);
        fclose(f);
    }
    cr_expect(contains(log, "POST git-receive-pack proto= enc= status=200 auth=ok"), "%s", log);
    cr_expect(contains(log, "auth=missing status=401"), "anon sent nothing: %s", log);
    cr_expect(contains(log, "auth=wrong status=401"), "the wrong token was tried once: %s", log);
    /* The token is nowhere on disk in the gate's state in clear. */
    {
        const char *argv[] = {"grep", "-r", "-l", token, state_dir(), NULL};
        cli_result g = test_run(NULL, argv);
        cr_expect(eq(int, g.exit_code, 1), "token found in: %s", g.out);
        cli_result_done(&g);
    }
}
