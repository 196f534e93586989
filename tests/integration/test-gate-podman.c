/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate-podman.c: the gate end to end with real `git` inside real Podman containers
 * (rootful as root; rootless as the test user through run-rootless.sh) started by
 * `terok-sandbox run --repo`: the task reaches the gate at
 * http://127.0.0.1:9418 through terok-init's bridge to /run/terok/gate.sock and clones, pushes
 * (a > 1 MiB pack with default git settings: chunked), force-pushes (a backup is made), fetches,
 * speaks protocol v2; no token -> 401, a read-only grant cannot push (403), another task's
 * token on this task's socket -> 403. The image is localhost/terok-git:test (busybox plus the
 * host's git, scripts/make-git-image.sh, imported by scripts/setup-host.sh). */
#include <signal.h>
#include <sys/stat.h>

#include "gate-serve/gate-client.h"
#include "gate.h"
#include "sandbox.h"
#include "terok-test.h"

#define IMAGE "localhost/terok-git:test"
#define IMAGE_TAR "/var/tmp/terok-git.tar"

static char prefix[32];
static char label[64];

static const char *N(const char *sfx)
{
    static char b[4][64];
    static int k;
    char *p = b[k++ % 4];

    snprintf(p, 64, "%s%s", prefix, sfx);
    return p;
}

static void setup(void)
{
    static const char conf[] = "[core]\nplugin-dir = %s\n"
                               "[runtime]\nbackend = podman\n"
                               "[runtime.podman]\nsocket = private\nservice-idle = 120s\n"
                               "[gate]\nbackend = git\n"
                               "[shield]\nbackend = none\n";
    const char *dir = getenv("TEROK_TEST_PLUGIN_DIR");
    char buf[4096], home[1024] = "", xdg_config[1024] = "";
    cli_result r;

    cr_assert(dir, "TEROK_TEST_PLUGIN_DIR is not set (run through meson test)");
    /* rootless Podman keeps its storage and storage.conf under $HOME/XDG_CONFIG_HOME: keep the
     * user's (our config comes from TEROK_SANDBOX_CONFIG, which replaces the chain) */
    snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
    snprintf(xdg_config, sizeof xdg_config, "%s",
             getenv("XDG_CONFIG_HOME") ? getenv("XDG_CONFIG_HOME") : "");
    test_tmpdir_setup();
    if (geteuid() != 0) {
        if (*home)
            setenv("HOME", home, 1);
        if (*xdg_config)
            setenv("XDG_CONFIG_HOME", xdg_config, 1);
        else
            unsetenv("XDG_CONFIG_HOME");
    }
    snprintf(prefix, sizeof prefix, "gate%d-", (int)getpid());
    snprintf(label, sizeof label, "label=terok.gate.it=%d", (int)getpid());
    snprintf(buf, sizeof buf, conf, dir);
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", buf, 0600), 1);
    r = test_run(NULL, (const char *const[]){"podman", "image", "exists", IMAGE, NULL});
    if (r.exit_code != 0) {
        cli_result_done(&r);
        cr_assert(access(IMAGE_TAR, R_OK) == 0, "no image %s and no %s: run scripts/setup-host.sh",
                  IMAGE, IMAGE_TAR);
        r = test_run(NULL, (const char *const[]){"podman", "import", "-q", IMAGE_TAR, IMAGE, NULL});
        cr_assert(r.exit_code == 0, "podman import: %s", r.err);
    }
    cli_result_done(&r);
}

static void teardown(void)
{
    const char *sh[] = {"sh",
                        "-c",
                        "ids=$(podman ps -aq --filter \"$1\"); "
                        "[ -z \"$ids\" ] || podman rm -f -t 0 $ids",
                        "sh",
                        label,
                        NULL};
    sandbox *sb = NULL;
    cli_result r;

    if (!test_tmp)
        return;
    r = test_run(NULL, sh);
    cli_result_done(&r);
    if (sandbox_open(NULL, &sb, NULL) >= 0) {
        (void)gate_client_stop(sb, NULL);
        sandbox_free(sb);
    }
    test_stop_private_podman(test_tmp);
    test_tmpdir_teardown();
    unsetenv("TEROK_SANDBOX_CONFIG");
}

TestSuite(gate_podman, .init = setup, .fini = teardown, .timeout = 600);

static const char writer[] =
    "set -e; export HOME=/tmp GIT_TERMINAL_PROMPT=0; cd /tmp\n"
    "git config --global user.email task@test.invalid; git config --global user.name task\n"
    "git config --global init.defaultBranch main\n"
    "U=$TEROK_GATE_REPO_DEMO\n"
    "NOTOK=$(echo \"$U\" | sed 's|//[^@]*@|//|')\n"
    "if git ls-remote \"$NOTOK\" 2>/tmp/e; then echo NO-TOKEN-ACCEPTED; exit 1; fi\n"
    "grep -q 'could not read Username' /tmp/e && echo NO-TOKEN-401\n"
    "git clone -q \"$U\" w 2>/dev/null; cd w\n"
    "echo hello >a; git add a; git commit -qm one; git push -q origin HEAD:main\n"
    "GIT_TRACE_PACKET=/tmp/pk git ls-remote origin >/dev/null\n"
    "grep -q 'version 2' /tmp/pk && echo PROTOCOL-V2\n"
    "dd if=/dev/urandom of=big bs=1048576 count=3 2>/dev/null; git add big; git commit -qm big\n"
    "GIT_TRACE_CURL=/tmp/tc GIT_TRACE_CURL_NO_DATA=1 git push -q origin HEAD:main\n"
    "grep -qi 'transfer-encoding: chunked' /tmp/tc && echo CHUNKED-PUSH\n"
    "git commit -q --amend -m rewritten; git push -q -f origin HEAD:main && echo FORCE-PUSHED\n"
    "cd /tmp; git clone -q \"$U\" c2; test -s c2/big && echo CLONED\n"
    "cd w; echo more >b; git add b; git commit -qm more; git push -q origin HEAD:main\n"
    "cd /tmp/c2; git fetch -q; git log --format=%s origin/main | grep -q more && echo FETCHED\n";

static const char reader[] =
    "set -e; export HOME=/tmp GIT_TERMINAL_PROMPT=0; cd /tmp\n"
    "git config --global user.email task@test.invalid; git config --global user.name task\n"
    "git clone -q \"$TEROK_GATE_REPO_DEMO\" r && echo RO-CLONED\n"
    "cd r; echo x >x; git add x; git commit -qm ro\n"
    "if git push -q origin HEAD:main 2>/tmp/e; then echo RO-PUSHED; exit 1; fi\n"
    "grep -q 403 /tmp/e && echo RO-PUSH-403\n"
    "if git ls-remote \"$FOREIGN\" 2>/tmp/f; then echo FOREIGN-ACCEPTED; exit 1; fi\n"
    "grep -q 403 /tmp/f && echo FOREIGN-403\n";

static int count_json(void *ud, const char *json)
{
    (*(int *)ud)++;
    return 0;
}

Test(gate_podman, git_in_containers)
{
    terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *foreign = NULL, *log = NULL;
    const char *a = N("a"), *b = N("b");
    char lbl[80];
    sandbox *sb = NULL;
    int backups = 0;
    cli_result r;
    gate g;

    snprintf(lbl, sizeof lbl, "%s", label + strlen("label="));
    terok_assert_ok(sandbox_open(NULL, &sb, &err), &err);
    terok_assert_ok(gate_open(sb->registry, 0, &g, &err), &err);
    terok_gate_repo_spec demo = {.struct_size = sizeof demo, .name = "demo", .branch = "main"};
    terok_assert_ok(gate_repo_create(&g, &demo, &err), &err);

    /* the writer: a long-lived task, driven by exec */
    r = TEST_CLI("run", "-d", "--name", a, "-l", lbl, "--repo", "demo:rw", IMAGE, "sleep", "600");
    cr_assert(r.exit_code == 0, "run --repo: %s", r.err);
    cli_result_done(&r);
    r = TEST_CLI("exec", a, "sh", "-c", writer);
    cr_assert(r.exit_code == 0, "writer failed (%d)\nstdout: %s\nstderr: %s", r.exit_code, r.out,
              r.err);
    for (const char *const *m = (const char *const[]){"NO-TOKEN-401", "PROTOCOL-V2", "CHUNKED-PUSH",
                                                      "FORCE-PUSHED", "CLONED", "FETCHED", NULL};
         *m; m++)
        cr_assert(strstr(r.out, *m), "writer: no %s in\n%s\nstderr: %s", *m, r.out, r.err);
    cli_result_done(&r);
    terok_assert_ok(gate_backups_list(&g, "demo", count_json, &backups, &err), &err);
    cr_assert(backups >= 1, "the force-push made no backup");

    /* the reader: read-only grant, and the writer's token presented on its own socket */
    r = TEST_CLI("exec", a, "sh", "-c", "echo \"$TEROK_GATE_REPO_DEMO\"");
    cr_assert(r.exit_code == 0 && strstr(r.out, "terok-g-"));
    r.out[strcspn(r.out, "\n")] = 0;
    cr_assert(asprintf(&foreign, "FOREIGN=%s", r.out) > 0);
    cli_result_done(&r);
    r = TEST_CLI("run", "--rm", "--name", b, "-l", lbl, "--repo", "demo", "-e", foreign, IMAGE,
                 "sh", "-c", reader);
    cr_assert(r.exit_code == 0, "reader failed (%d)\nstdout: %s\nstderr: %s", r.exit_code, r.out,
              r.err);
    for (const char *const *m =
             (const char *const[]){"RO-CLONED", "RO-PUSH-403", "FOREIGN-403", NULL};
         *m; m++)
        cr_assert(strstr(r.out, *m), "reader: no %s in\n%s", *m, r.out);
    cli_result_done(&r);

    r = TEST_CLI("rm", "-f", a);
    cr_assert(r.exit_code == 0, "rm: %s", r.err);
    cli_result_done(&r);
    _cleanup_free_ char *sock = NULL, *logpath = NULL;
    struct stat st;
    cr_assert(gate_socket_path(sb->paths.runtime_dir, a, &sock) == 0);
    cr_assert(stat(sock, &st) < 0, "rm left the gate socket");
    cr_assert(asprintf(&logpath, "%s/logs/gate.log", sb->paths.state_dir) > 0);
    FILE *f = fopen(logpath, "re");
    cr_assert(f, "no gate daemon log");
    size_t n = 0;
    if (getdelim(&log, &n, 0, f) < 0) {
        free(log);
        log = strdup("");
    }
    fclose(f);
    cr_assert(!strstr(log, "terok-g-"), "a token reached the gate daemon's log");
    sandbox_free(sb);
}
