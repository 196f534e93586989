/* SPDX-License-Identifier: Apache-2.0 */
/* test-shield-hook.c: the shield's OCI hook (`terok-sandbox hook`) as Podman runs it: the OCI
 * state on stdin, the bundle from the org.terok.shield.bundle annotation, the plugin directory
 * from the hook's own arguments. A real bundle (prepared through shield-nft) is applied to a
 * process in a network namespace of ours: the allowed server answers, the rest is refused, a
 * live allow reaches it without a restart (the hook recorded the pid), and the container cannot
 * change its rules. Fail closed: a corrupt bundle, a symlink in the path, a bundle not ours, or
 * the host's own netns make the hook exit non-zero, with the reason on stderr and in the log. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shield/harness.h"
#include "terok-test.h"

#define SRV "198.51.100.2"
#define CTR "hooked"

static shield_h h;
static topo t;
static char bundle[4096];

static const int ports[] = {8090, 8091, 0};

static void setup(void)
{
    static const char *const cfg[] = {NULL};
    char sd[4096];
    const char *msg;

    if (geteuid() != 0)
        cr_skip_test("needs root (network namespaces)");
    test_tmpdir_setup();
    cr_assert_eq(topo_up(&t, 0), 0, "topology");
    cr_assert_eq(topo_servers(&t, ports), 0, "servers");
    snprintf(sd, sizeof sd, "%s/state", test_tmp);
    cr_assert_eq(sh_load(&h, sd, cfg, &msg), 0, "load: %s", msg);
}

static void teardown(void)
{
    sh_unload(&h);
    topo_down(&t);
    test_tmpdir_teardown();
}

TestSuite(shield_hook, .init = setup, .fini = teardown, .timeout = 90);

static bool has_annotation(char **l, const char *key, const char *value)
{
    size_t n = strlen(key);

    for (; l && *l; l++)
        if (strncmp(*l, key, n) == 0 && strcmp(*l + n, value) == 0)
            return true;
    return false;
}

/* prepare only: applying is the hook's job */
static void prepare(const char *const *allow)
{
    static const char *const none[] = {NULL};
    terok_shield_policy pol = {
        .struct_size = sizeof pol, .container = CTR, .profiles = none, .allow = allow};
    terok_shield_prepared out = {.struct_size = sizeof out};
    terok_error err = {0, NULL};

    terok_assert_ok(h.ops->prepare(h.state, &pol, &out, &err), &err);
    snprintf(bundle, sizeof bundle, "%s", out.bundle_path);
    cr_assert(has_annotation(out.annotations, "org.terok.shield.bundle=", bundle));
    free(out.bundle_path);
    for (char **a = out.annotations; a && *a; a++)
        free(*a);
    free(out.annotations);
}

static cli_result hook(const char *stage, const char *path, long pid)
{
    char state[8192];

    snprintf(state, sizeof state,
             "{\"ociVersion\":\"1.0.2\",\"id\":\"abc\",\"status\":\"creating\",\"pid\":%ld,"
             "\"bundle\":\"/nonexistent\",\"annotations\":{\"org.terok.shield.bundle\":\"%s\","
             "\"org.terok.shield.version\":\"1\"}}",
             pid, path);
    return test_cli(state, (const char *const[]){"hook", "--plugin-dir",
                                                 getenv("TEROK_TEST_PLUGIN_DIR"), stage, NULL});
}

static char *hook_log(void)
{
    char p[4200];
    FILE *f;
    char *s = calloc(1, 65536);

    snprintf(p, sizeof p, "%s/../shield-hook.log", bundle);
    f = fopen(p, "re");
    if (f) {
        size_t n = fread(s, 1, 65535, f);
        s[n] = 0;
        fclose(f);
    }
    return s;
}

Test(shield_hook, applies_at_create_runtime_and_live_allow_needs_no_restart)
{
    static const char *const allow[] = {SRV ":8090", NULL};
    terok_error err = {0, NULL};
    cli_result r;

    prepare(allow);
    /* before the hook: nothing enforced */
    cr_assert_eq(probe_connect(t.container, SRV, 8091, 3000), 0);
    r = hook("createRuntime", bundle, t.container);
    cr_assert_eq(r.exit_code, 0, "hook failed: %s", r.err);
    cli_result_done(&r);

    cr_assert_eq(probe_connect(t.container, SRV, 8090, 3000), 0, "allowed target refused");
    cr_assert_neq(probe_connect(t.container, SRV, 8091, 3000), 0, "denied target answered");
    /* live: the hook recorded the pid in the bundle, so an allow reaches the running netns */
    terok_assert_ok(h.ops->allow(h.state, CTR, SRV ":8091", 0, &err), &err);
    cr_assert_eq(probe_connect(t.container, SRV, 8091, 3000), 0, "live allow did not apply");

    /* the container (no CAP_NET_ADMIN in its netns' owner userns as an unprivileged uid)
     * cannot flush the table */
    {
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)t.container);
        cli_result n =
            test_run(NULL, (const char *const[]){"nsenter", "-t", pid, "-n", "setpriv",
                                                 "--reuid=65534", "--regid=65534", "--clear-groups",
                                                 "nft", "flush", "ruleset", NULL});
        cr_assert_neq(n.exit_code, 0, "an unprivileged process flushed the ruleset");
        cli_result_done(&n);
        /* the kernel still holds the ruleset the hook loaded */
        terok_assert_ok(h.ops->verify(h.state, CTR, 0, &err), &err);
    }

    r = hook("poststop", bundle, 0);
    cr_assert_eq(r.exit_code, 0, "poststop failed: %s", r.err);
    cli_result_done(&r);
}

Test(shield_hook, corrupt_bundle_fails_closed)
{
    static const char *const allow[] = {SRV ":8090", NULL};
    char p[4200];
    cli_result r;
    FILE *f;

    prepare(allow);
    snprintf(p, sizeof p, "%s/ruleset.nft", bundle);
    f = fopen(p, "ae");
    cr_assert(f);
    fputs("flush ruleset\n", f);
    fclose(f);
    r = hook("createRuntime", bundle, t.container);
    cr_assert_neq(r.exit_code, 0, "hook accepted a corrupt bundle");
    cr_assert(strstr(r.err, "does not match"), "%s", r.err);
    cli_result_done(&r);
    char *log = hook_log();
    cr_assert(strstr(log, "does not match"), "log: %s", log);
    free(log);
}

Test(shield_hook, refuses_bad_bundle_paths_and_the_host_netns)
{
    static const char *const allow[] = {SRV ":8090", NULL};
    char link[4200], via[4300], rel[64] = "containers/" CTR "/shield";
    cli_result r;

    prepare(allow);
    /* a symlink anywhere in the path */
    snprintf(link, sizeof link, "%s/link", test_tmp);
    cr_assert_eq(symlink(test_tmp, link), 0);
    snprintf(via, sizeof via, "%s/state/%s", link, rel);
    r = hook("createRuntime", via, t.container);
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "contains a symlink"), "%s", r.err);
    cli_result_done(&r);
    /* relative, and with .. */
    r = hook("createRuntime", rel, t.container);
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "is not an absolute path"), "%s", r.err);
    cli_result_done(&r);
    snprintf(via, sizeof via, "%s/state/../state/%s", test_tmp, rel);
    r = hook("createRuntime", via, t.container);
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "is not canonical"), "%s", r.err);
    cli_result_done(&r);
    /* writable by others */
    cr_assert_eq(chmod(bundle, 0777), 0);
    r = hook("createRuntime", bundle, t.container);
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "group/world-writable"), "%s", r.err);
    cli_result_done(&r);
    cr_assert_eq(chmod(bundle, 0700), 0);
    /* never the host: our own pid shares the host netns */
    r = hook("createRuntime", bundle, (long)getpid());
    cr_assert_neq(r.exit_code, 0, "hook firewalled the host");
    cli_result_done(&r);
    /* no annotation, no JSON */
    r = test_cli("{\"pid\":1}", (const char *const[]){"hook", "createRuntime", NULL});
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "no org.terok.shield.bundle annotation"), "%s", r.err);
    cli_result_done(&r);
    r = test_cli("not json", (const char *const[]){"hook", "createRuntime", NULL});
    cr_assert_neq(r.exit_code, 0);
    cli_result_done(&r);
    /* a trust record that is not one: named, usage error, nothing applied */
    r = test_cli("{\"pid\":1}",
                 (const char *const[]){"hook", "--trust", "12:34:5x", "createRuntime", NULL});
    cr_assert_eq(r.exit_code, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--trust '12:34:5x'"), "%s", r.err);
    cli_result_done(&r);
}
