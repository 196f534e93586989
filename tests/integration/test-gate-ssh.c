/* SPDX-License-Identifier: Apache-2.0 */
/* test-gate-ssh.c: ssh:// upstreams through the binary, against a real OpenSSH server on
 * loopback (our own config, host key, port and no pid file, UsePAM no: no clash with a system
 * sshd): `gate add` with a pinned, a first-use or a known-hosts (hashed) host key mirrors an
 * upstream bare repo, `gate sync` follows it, a task's push lands upstream with `gate forward`,
 * all signed with a vault SSH key; an unknown or changed host key is refused naming host and
 * SHA256 fingerprint with the mirror untouched; a key the server does not authorize is a clear
 * authentication error; a token where an SSH key belongs (and the reverse) is refused; the
 * private key is in no output, log or file of the gate. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "loader.h"
#include "sshkey.h"
#include "terok-test.h"

extern char **environ;

#define R(...) TEST_CLI(__VA_ARGS__)
#define GIT TEST_GIT

#define commit_file(work, file, msg) test_commit_file(work, file, NULL, msg)
#define EXPECT_EXIT(res, code)                                                                     \
    cr_assert_eq((res).exit_code, (code), "exit %d, expected %d\nstdout: %s\nstderr: %s",          \
                 (res).exit_code, (code), (res).out, (res).err)

static pid_t sshd_pid;
static uint16_t sshd_port;
static char *outputs; /* every CLI output of the test, for the no-secret check */

static void setup(void)
{
    char extra[2048];

    test_tmpdir_setup();
    snprintf(extra, sizeof extra,
             "[vault]\nbackend = sqlite\n[vault.sqlite]\nkey-sources = key-file\n"
             "[gate]\nbackend = git\n[gate.git]\nknown-hosts = %s/known_hosts\n",
             test_tmp);
    setenv("TEROK_SANDBOX_CONFIG", test_write_config(extra), 1);
    setenv("GIT_AUTHOR_NAME", "Test Author", 1);
    setenv("GIT_AUTHOR_EMAIL", "author@example.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "Test Author", 1);
    setenv("GIT_COMMITTER_EMAIL", "author@example.invalid", 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    unsetenv("SSH_AUTH_SOCK"); /* never used: prove it by having none */
    sshd_pid = 0;
    outputs = strdup("");
}

static void sshd_stop(void)
{
    if (sshd_pid > 0) {
        kill(sshd_pid, SIGTERM);
        waitpid(sshd_pid, NULL, 0);
    }
    sshd_pid = 0;
}

static void teardown(void)
{
    cli_result r = R("vault", "stop");

    cli_result_done(&r);
    sshd_stop();
    free(outputs);
    test_tmpdir_teardown();
    unsetenv("TEROK_SANDBOX_CONFIG");
}

TestSuite(gate_ssh, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *b = NULL;
    size_t n = 0;

    if (!f)
        return strdup("");
    if (getdelim(&b, &n, 0, f) < 0) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b ? b : strdup("");
}

static void keep(const cli_result *r)
{
    char *n = NULL;

    cr_assert(asprintf(&n, "%s%s%s", outputs, r->out ? r->out : "", r->err ? r->err : "") > 0);
    free(outputs);
    outputs = n;
}

/* The CLI, its output kept for the no-secret check. */
static cli_result cli(const char *const *argv)
{
    cli_result r = test_cli(NULL, argv);

    keep(&r);
    return r;
}
#define C(...) cli((const char *const[]){__VA_ARGS__, NULL})

static const char *path_of(const char *name)
{
    static char p[4][1200];
    static int k;
    char *o = p[k++ % 4];

    snprintf(o, 1200, "%s/%s", test_tmp, name);
    return o;
}

/* The upstream: a bare repo with one commit on main, and a work tree to add more. */
static void upstream_init(void)
{
    free(GIT("init", "-q", "--bare", "-b", "main", path_of("up.git")));
    free(GIT("init", "-q", "-b", "main", path_of("upwork")));
    commit_file(path_of("upwork"), "readme", "upstream one");
    free(GIT("-C", path_of("upwork"), "push", "-q", path_of("up.git"), "main"));
}

static void upstream_commit(const char *msg)
{
    commit_file(path_of("upwork"), "readme", msg);
    free(GIT("-C", path_of("upwork"), "push", "-q", path_of("up.git"), "main"));
}

static char *rev(const char *gitdir, const char *ref)
{
    return GIT("--git-dir", gitdir, "rev-parse", ref);
}

static const char *url(void)
{
    static char u[1400];

    snprintf(u, sizeof u, "ssh://root@127.0.0.1:%u%s", sshd_port, path_of("up.git"));
    return u;
}

static uint16_t free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &l) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A fresh host key of type (ssh-keygen -t) in <tmp>/<name> (and .pub). */
static void host_key_of(const char *name, const char *type)
{
    const char *p = path_of(name);
    char pub[1300];
    cli_result r;

    snprintf(pub, sizeof pub, "%s.pub", p);
    unlink(p);
    unlink(pub);
    r = test_run(NULL,
                 (const char *const[]){"ssh-keygen", "-q", "-t", type, "-N", "", "-f", p, NULL});
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
}

static void host_key(const char *name)
{
    host_key_of(name, "ed25519");
}

/* "ssh-ed25519 AAAA..." (no comment) and the fingerprint of a host key. */
static char *host_pub(const char *name)
{
    char pub[1300], *text, *sp;

    snprintf(pub, sizeof pub, "%s.pub", path_of(name));
    text = slurp(pub);
    sp = strchr(text, ' ');
    cr_assert(sp);
    sp = strchr(sp + 1, ' ');
    if (sp)
        *sp = 0;
    return text;
}

static char *fingerprint(const char *name)
{
    char pub[1300], *fp;
    cli_result r;

    snprintf(pub, sizeof pub, "%s.pub", path_of(name));
    r = test_run(NULL, (const char *const[]){"ssh-keygen", "-l", "-E", "sha256", "-f", pub, NULL});
    EXPECT_EXIT(r, 0);
    fp = strdup(strchr(r.out, ' ') + 1);
    *strchr(fp, ' ') = 0;
    cli_result_done(&r);
    return fp;
}

/* sshd on loopback as root, with host key <tmp>/<hk> (and <tmp>/<hk2> unless NULL) and
 * authorized_keys holding `authorized`; the same port across restarts of a test. */
static void sshd_start2(const char *hk, const char *hk2, const char *authorized)
{
    char cfg[4096], portarg[16];
    posix_spawn_file_actions_t fa;
    int logfd;

    if (!sshd_port)
        sshd_port = free_port();
    test_write_file("authorized_keys", authorized, 0600);
    snprintf(cfg, sizeof cfg,
             "ListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\n"
             "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
             "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n%s%s\n",
             path_of(hk), path_of("authorized_keys"), hk2 ? "HostKey " : "",
             hk2 ? path_of(hk2) : "");
    test_write_file("sshd_config", cfg, 0600);
    snprintf(portarg, sizeof portarg, "%u", sshd_port);
    (void)mkdir("/run/sshd", 0755); /* sshd's privilege separation directory */
    logfd = open(path_of("sshd.log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    cr_assert(logfd >= 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    const char *argv[] = {"/usr/sbin/sshd",       "-D", "-e",    "-f",
                          path_of("sshd_config"), "-p", portarg, NULL};
    cr_assert(posix_spawn(&sshd_pid, argv[0], &fa, NULL, (char *const *)argv, environ) == 0,
              "needs openssh-server (scripts/setup-host.sh)");
    posix_spawn_file_actions_destroy(&fa);
    close(logfd);
    for (int i = 0; i < 100; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(sshd_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("sshd did not listen: %s", slurp(path_of("sshd.log")));
}

static void sshd_start(const char *hk, const char *authorized)
{
    sshd_start2(hk, NULL, authorized);
}

/* A vault SSH key; returns its public line. */
static char *vault_key(const char *name)
{
    cli_result r = C("ssh", "add", name, "--comment", "gate test");
    char *pub;

    EXPECT_EXIT(r, 0);
    pub = strdup(r.out);
    cli_result_done(&r);
    return pub;
}

static char *vault_key_fp(const char *name)
{
    cli_result r = C("ssh", "list", "--json");
    json_object *arr = json_tokener_parse(r.out), *v;
    char *fp = NULL;

    cr_assert(arr, "%s", r.out);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *k = json_object_array_get_idx(arr, i);
        if (json_object_object_get_ex(k, "name", &v) && streq(json_object_get_string(v), name) &&
            json_object_object_get_ex(k, "fingerprint", &v))
            fp = strdup(json_object_get_string(v));
    }
    json_object_put(arr);
    cli_result_done(&r);
    cr_assert(fp, "no key '%s'", name);
    return fp;
}

static const char *state_dir(void)
{
    static char p[1024];

    snprintf(p, sizeof p, "%s/state/gate-git", test_tmp);
    return p;
}

static const char *mirror(void)
{
    static char p[1200];

    snprintf(p, sizeof p, "%s/projects/demo.git", state_dir());
    return p;
}

static const char *task_repo(const char *task)
{
    static char p[1200];

    snprintf(p, sizeof p, "%s/tasks/%s/demo.git", state_dir(), task);
    return p;
}

/* Grant a task a view in-process, on the state the CLI uses. */
static void grant(const char *task)
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
    terok_assert_ok(p->ops.gate.grant(st, task, "demo", TEROK_GATE_READ | TEROK_GATE_WRITE, &err),
                    &err);
    p->ops.gate.close(st);
    plugin_unload(p);
}

/* The vault key's secrets, as the "never appears" checks look for them. */
static void assert_no_secret(const char *key, const char *where, const char *text)
{
    terok_error err = TEROK_ERROR_INIT;
    cli_result r = test_cli(NULL, (const char *const[]){"ssh", "export", key, NULL});
    char b64[64], hex[80], *save = NULL;
    sshkey k = {0};
    const void *p;
    size_t n;

    EXPECT_EXIT(r, 0);
    terok_assert_ok(sshkey_parse_private(r.out, strlen(r.out), "key", &k, &err), &err);
    terok_secret_peek(k.seed, &p, &n);
    sodium_bin2base64(b64, sizeof b64, p, n, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2hex(hex, sizeof hex, p, n);
    sshkey_done(&k);
    cr_assert(!strstr(text, b64), "the private key (base64) appears in %s", where);
    cr_assert(!strstr(text, hex), "the private key (hex) appears in %s", where);
    cr_assert(!strstr(text, "PRIVATE KEY"), "a private key appears in %s", where);
    for (char *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (!strstr(l, "-----"))
            cr_assert(!strstr(text, l), "a private key line appears in %s", where);
    cli_result_done(&r);
}

/* The usual world: the upstream repository, the vault's key for it, host key "hostkey" and an
 * sshd with that host key that takes the vault's key. Returns the key's public half. */
static char *ssh_world(void)
{
    char *pub;

    upstream_init();
    pub = vault_key("upstream-key");
    host_key("hostkey");
    sshd_start("hostkey", pub);
    return pub;
}

/* ---- tests ---- */

Test(gate_ssh, pinned_host_key_sync_and_forward)
{
    _cleanup_free_ char *pub = NULL, *hk = NULL, *fp = NULL, *log = NULL, *files = NULL;
    cli_result r;

    pub = ssh_world();
    hk = host_pub("hostkey");
    fp = fingerprint("hostkey");

    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key", "--host-key",
          hk);
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, fp), "the pinned key is shown: %s", r.out);
    cli_result_done(&r);
    {
        _cleanup_free_ char *a = rev(mirror(), "main"), *b = rev(path_of("up.git"), "main");
        cr_assert_str_eq(a, b, "the mirror is the upstream's");
    }
    r = C("gate", "list", "--json");
    cr_assert(strstr(r.out, "\"host_key_fingerprint\":\"") && strstr(r.out, fp), "%s", r.out);
    cli_result_done(&r);

    /* sync follows the upstream over SSH */
    upstream_commit("upstream two");
    r = C("gate", "sync", "demo");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    {
        _cleanup_free_ char *a = rev(mirror(), "main"), *b = rev(path_of("up.git"), "main");
        cr_assert_str_eq(a, b, "sync brought the new commit");
    }

    /* a task's push lands upstream */
    grant("task-a");
    free(GIT("clone", "-q", task_repo("task-a"), path_of("taskwork")));
    commit_file(path_of("taskwork"), "f1", "from the task");
    free(GIT("-C", path_of("taskwork"), "push", "-q", "origin", "main"));
    r = C("gate", "forward", "task-a", "main");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    {
        _cleanup_free_ char *a = rev(task_repo("task-a"), "main"),
                            *b = rev(path_of("up.git"), "main");
        cr_assert_str_eq(a, b, "forward landed in the upstream over SSH");
    }
    log = slurp(path_of("sshd.log"));
    cr_assert(strstr(log, "Accepted publickey for root"), "%s", log);

    /* the private key is in no output, in sshd's log, nor in any file of the gate */
    assert_no_secret("upstream-key", "the CLI's output", outputs);
    assert_no_secret("upstream-key", "sshd.log", log);
    r = test_run(NULL, (const char *const[]){"grep", "-ra", "PRIVATE\\|terok", state_dir(), NULL});
    files = strdup(r.out);
    cli_result_done(&r);
    assert_no_secret("upstream-key", "the gate's files", files);
}

Test(gate_ssh, unknown_host_key_is_refused_with_its_fingerprint)
{
    _cleanup_free_ char *pub = NULL, *fp = NULL;
    char name[64];
    cli_result r;

    pub = ssh_world();
    fp = fingerprint("hostkey");
    snprintf(name, sizeof name, "'[127.0.0.1]:%u'", sshd_port);

    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "unknown SSH host key") && strstr(r.err, name) && strstr(r.err, fp),
              "%s", r.err);
    cli_result_done(&r);
    r = C("gate", "list", "--json");
    cr_assert(!strstr(r.out, "\"demo\""), "a refused add leaves no project: %s", r.out);
    cli_result_done(&r);
    /* never the operator's ~/.ssh: a known_hosts there that trusts the key changes nothing */
    mkdir(path_of("home/.ssh"), 0700);
    {
        _cleanup_free_ char *hk = host_pub("hostkey");
        char line[2048];
        snprintf(line, sizeof line, "[127.0.0.1]:%u %s\n", sshd_port, hk);
        test_write_file("home/.ssh/known_hosts", line, 0600);
    }
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key");
    cr_assert_neq(r.exit_code, 0, "~/.ssh/known_hosts must not be trusted");
    cr_assert(strstr(r.err, "unknown SSH host key"), "%s", r.err);
    cli_result_done(&r);
    cr_assert(!strstr(slurp(path_of("sshd.log")), "Accepted publickey"),
              "nothing authenticated to an unverified host");
}

Test(gate_ssh, changed_host_key_is_refused_and_the_mirror_untouched)
{
    _cleanup_free_ char *pub = NULL, *fp1 = NULL, *fp2 = NULL, *before = NULL, *after = NULL;
    cli_result r;

    pub = ssh_world();
    fp1 = fingerprint("hostkey");
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key",
          "--accept-host-key");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, fp1) && strstr(r.out, "trusted on first use"), "%s", r.out);
    cli_result_done(&r);
    before = rev(mirror(), "main");

    /* the server comes back with another host key */
    upstream_commit("upstream two");
    sshd_stop();
    host_key("hostkey2");
    fp2 = fingerprint("hostkey2");
    sshd_start("hostkey2", pub);
    r = C("gate", "sync", "demo");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "CHANGED") && strstr(r.err, fp2) && strstr(r.err, fp1), "%s", r.err);
    cli_result_done(&r);
    after = rev(mirror(), "main");
    cr_assert_str_eq(before, after, "the mirror moved after a refused sync");
    r = C("gate", "list", "--json");
    cr_assert(strstr(r.out, fp1) && !strstr(r.out, fp2), "the pin stays: %s", r.out);
    cli_result_done(&r);

    /* --accept-host-key does not override a pin either */
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key",
          "--accept-host-key");
    EXPECT_EXIT(r, 0); /* idempotent: the project exists as asked; its pin is unchanged */
    cli_result_done(&r);
    r = C("gate", "sync", "demo");
    cr_assert_neq(r.exit_code, 0, "%s", r.out);
    cli_result_done(&r);
}

Test(gate_ssh, known_hosts_file_with_hashed_entries)
{
    _cleanup_free_ char *pub = NULL, *hk = NULL, *other = NULL;
    char line[2048];
    cli_result r;

    pub = ssh_world();
    host_key("otherkey");
    hk = host_pub("hostkey");
    other = host_pub("otherkey");

    /* another host's key, then ours, hashed as ssh-keygen -H writes them */
    snprintf(line, sizeof line, "example.invalid %s\n[127.0.0.1]:%u %s\n", other, sshd_port, hk);
    test_write_file("known_hosts", line, 0600);
    r = test_run(NULL,
                 (const char *const[]){"ssh-keygen", "-H", "-f", path_of("known_hosts"), NULL});
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    {
        _cleanup_free_ char *kh = slurp(path_of("known_hosts"));
        cr_assert(strstr(kh, "|1|") && !strstr(kh, "127.0.0.1"), "hashed: %s", kh);
    }
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);

    /* the file now lists another key for the host: changed, refused */
    snprintf(line, sizeof line, "[127.0.0.1]:%u %s\n", sshd_port, other);
    test_write_file("known_hosts", line, 0600);
    r = C("gate", "sync", "demo");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "CHANGED") && strstr(r.err, "known_hosts"), "%s", r.err);
    cli_result_done(&r);

    /* and a @revoked key is refused even when listed */
    snprintf(line, sizeof line, "@revoked * %s\n[127.0.0.1]:%u %s\n", hk, sshd_port, hk);
    test_write_file("known_hosts", line, 0600);
    r = C("gate", "sync", "demo");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "@revoked"), "%s", r.err);
    cli_result_done(&r);
}

/* A known-hosts file is the operator's, but a hostile or broken one must not crash the gate, be
 * read past a line, or let a broken line stand in for the host: every malformed line is skipped
 * and only a well-formed line for this host and key lets the connection through. */
Test(gate_ssh, malformed_known_hosts_lines_are_skipped)
{
    _cleanup_free_ char *pub = NULL, *hk = NULL, *fp = NULL, *hk_type = NULL, *huge = NULL;
    const char *hk_b64;
    char name[64], line[4096];
    FILE *f;
    cli_result r;

    pub = ssh_world();
    hk = host_pub("hostkey");
    fp = fingerprint("hostkey");
    snprintf(name, sizeof name, "[127.0.0.1]:%u", sshd_port);
    hk_b64 = strchr(hk, ' ');
    cr_assert(hk_b64 != NULL, "host key: %s", hk);
    hk_type = strndup(hk, (size_t)(hk_b64 - hk));
    hk_b64++;
    huge = malloc(200001);
    cr_assert(huge);
    memset(huge, 'A', 200000);
    huge[200000] = '\0';

    f = fopen(path_of("known_hosts"), "we");
    cr_assert(f);
    /* hashed entries cut short, with bad base64, an oversized salt, a wrong-length hash */
    fprintf(f, "|1| %s\n|1|| %s\n|1|abc %s\n|1|@@@@|@@@@ %s\n", hk, hk, hk, hk);
    fprintf(f, "|1|%.120s|AAAAAAAAAAAAAAAAAAAAAAAAAAA= %s\n", huge, hk);
    fprintf(f, "|1|c2FsdA==|c2hvcnQ= %s\n", hk);
    /* the host with a key that is no key: wrong type word, truncated or bad base64, no key */
    fprintf(f, "%s %s\n%s %s AAAA\n%s %s %.12s\n%s %s !!!!\n%s\n%s %s\n", name, hk_b64, name,
            hk_type, name, hk_type, hk_b64, name, hk_type, name, name, hk_type);
    /* a marker alone, an unknown marker, a certificate authority (not supported) */
    fprintf(f, "@revoked\n@bogus %s %s\n@cert-authority %s %s\n", name, hk, name, hk);
    /* negated patterns win over a matching one; binary junk; a 200 KB line; no newline */
    fprintf(f, "*,!%s %s\n", name, hk);
    fputs("\x01\x02\xff\xfe \x7f\x80\n", f);
    fwrite("127.0.0.1\0 ", 1, 12, f);
    fprintf(f, "%s\n", hk);
    fprintf(f, "%s %s %s\n", name, hk_type, huge);
    fprintf(f, "%s", huge);
    cr_assert(fclose(f) == 0);

    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key");
    cr_assert_neq(r.exit_code, 0, "a malformed line stood in for the host: %s", r.out);
    cr_assert(strstr(r.err, "unknown SSH host key") && strstr(r.err, name) && strstr(r.err, fp),
              "%s", r.err);
    cli_result_done(&r);

    /* the same junk with one good line among it (the last, unterminated junk line ended) */
    f = fopen(path_of("known_hosts"), "ae");
    cr_assert(f);
    snprintf(line, sizeof line, "\n%s %s\n", name, hk);
    fputs(line, f);
    fprintf(f, "|1|%.40s\n", huge);
    cr_assert(fclose(f) == 0);
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
}

Test(gate_ssh, a_key_the_server_does_not_authorize_is_a_clear_error)
{
    _cleanup_free_ char *pub = NULL, *other = NULL, *fp = NULL;
    cli_result r;

    upstream_init();
    pub = vault_key("upstream-key");
    other = vault_key("other-key");
    fp = vault_key_fp("upstream-key");
    host_key("hostkey");
    sshd_start("hostkey", other);
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key",
          "--accept-host-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "refused SSH key") && strstr(r.err, fp) && strstr(r.err, "'root'"),
              "%s", r.err);
    cli_result_done(&r);
    r = C("gate", "list", "--json");
    cr_assert(!strstr(r.out, "\"demo\""), "%s", r.out);
    cli_result_done(&r);
    assert_no_secret("upstream-key", "the CLI's output", outputs);
}

Test(gate_ssh, credential_kind_must_fit_the_upstream)
{
    _cleanup_free_ char *pub = NULL;
    char file_url[1300];
    cli_result r;

    pub = ssh_world();
    r = test_cli("not-an-ssh-key", (const char *const[]){"vault", "add", "a-token", NULL});
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "a-token",
          "--accept-host-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "'a-token' is not an SSH key"), "%s", r.err);
    cli_result_done(&r);
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "no-such",
          "--accept-host-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "'no-such'") && !strstr(r.err, "SSH key"), "%s", r.err);
    cli_result_done(&r);
    snprintf(file_url, sizeof file_url, "file://%s", path_of("up.git"));
    r = C("gate", "add", "demo", "--upstream", file_url, "--credential", "upstream-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "'upstream-key' is an SSH key"), "%s", r.err);
    cli_result_done(&r);
    r = C("gate", "add", "demo", "--upstream", file_url, "--accept-host-key");
    EXPECT_EXIT(r, 2);
    cli_result_done(&r);
    r = C("gate", "add", "demo", "--upstream", url(), "--host-key", "ssh-ed25519 bm90IGEga2V5");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "not 'TYPE BASE64'"), "%s", r.err);
    cli_result_done(&r);
    /* scp-like URLs are accepted as ssh (the refusal is about the host, not the URL) */
    r = C("gate", "add", "scp", "--upstream", "git@127.0.0.1:nowhere.git", "--credential",
          "upstream-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(!strstr(r.err, "is not https://"), "%s", r.err);
    cli_result_done(&r);
}

/* A server with ECDSA and Ed25519 host keys: libssh2 negotiates ECDSA, so an Ed25519 pin (or a
 * known-hosts listing only the Ed25519 key) is refused with a message saying which key type was
 * offered; the ECDSA pin works. */
Test(gate_ssh, host_key_type_the_server_negotiates)
{
    _cleanup_free_ char *pub = NULL, *ed = NULL, *ec = NULL, *ec_fp = NULL;
    char line[2048];
    cli_result r;

    upstream_init();
    pub = vault_key("upstream-key");
    host_key("hostkey");
    host_key_of("hostkey_ec", "ecdsa");
    ed = host_pub("hostkey");
    ec = host_pub("hostkey_ec");
    ec_fp = fingerprint("hostkey_ec");
    sshd_start2("hostkey", "hostkey_ec", pub);

    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key", "--host-key",
          ed);
    cr_assert_neq(r.exit_code, 0, "%s", r.out);
    cr_assert(strstr(r.err, "offered its ecdsa-sha2-nistp256 host key") && strstr(r.err, ec_fp) &&
                  strstr(r.err, "pinned a ssh-ed25519 key"),
              "%s", r.err);
    cli_result_done(&r);
    r = C("gate", "add", "demo", "--upstream", url(), "--credential", "upstream-key", "--host-key",
          ec);
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);

    snprintf(line, sizeof line, "[127.0.0.1]:%u %s\n", sshd_port, ed);
    test_write_file("known_hosts", line, 0600);
    r = C("gate", "add", "other", "--upstream", url(), "--credential", "upstream-key");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "lists only keys of other types") && strstr(r.err, ec_fp), "%s", r.err);
    cli_result_done(&r);
}
