/* SPDX-License-Identifier: Apache-2.0 */
/* test-cli-ssh.c: `terok-sandbox ssh` as an operator uses it (vault-sqlite, runtime-null), checked
 * against the real OpenSSH tools: ssh-keygen agrees on fingerprints and reads exported keys,
 * ssh-add lists the keys of a container's scope through the vault daemon's agent socket, and a
 * real ssh authenticates to a local sshd through it. Hostile agent clients do not stop the
 * daemon; no private key appears in an error message, log or audit row. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "secret.h"
#include "sshkey.h"
#include "store.h"
#include "tokens.h"
#include "terok-test.h"

extern char **environ;

#define IMAGE "localhost/null:latest"
#define CLI(...) TEST_CLI(__VA_ARGS__)
#define RUN(...) test_run(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_EXIT(res, code)                                                                     \
    cr_assert_eq((res).exit_code, (code), "exit %d, expected %d\nstdout: %s\nstderr: %s",          \
                 (res).exit_code, (code), (res).out, (res).err)

static pid_t sshd_pid;

static void setup(void)
{
    char conf[1024];

    test_tmpdir_setup();
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\nbackend = none\n"
             "[vault]\nbackend = sqlite\n[vault.sqlite]\nkey-sources = key-file\n",
             getenv("TEROK_TEST_PLUGIN_DIR"));
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    unsetenv("SSH_AUTH_SOCK");
    sshd_pid = 0;
}

static void teardown(void)
{
    cli_result r = CLI("vault", "stop");

    cli_result_done(&r);
    if (sshd_pid > 0) {
        kill(sshd_pid, SIGTERM);
        waitpid(sshd_pid, NULL, 0);
    }
    unsetenv("SSH_AUTH_SOCK");
    test_tmpdir_teardown();
    unsetenv("TEROK_SANDBOX_CONFIG");
}

TestSuite(cli_ssh, .init = setup, .fini = teardown);

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *b = calloc(1, 1 << 20);
    size_t n;

    cr_assert(f, "cannot open %s", path);
    n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

/* "SHA256:..." of `ssh-keygen -l -f path`. */
static char *keygen_fp(const char *path)
{
    cli_result r = RUN("ssh-keygen", "-l", "-f", path);
    char *fp, *sp;

    EXPECT_EXIT(r, 0);
    fp = strstr(r.out, "SHA256:");
    cr_assert(fp, "%s", r.out);
    sp = strchr(fp, ' ');
    fp = strndup(fp, (size_t)(sp - fp));
    cli_result_done(&r);
    return fp;
}

static json_object *list_json(void)
{
    cli_result r = CLI("ssh", "list", "--json");
    json_object *o;

    EXPECT_EXIT(r, 0);
    o = json_tokener_parse(r.out);
    cr_assert(o && json_object_is_type(o, json_type_array), "%s", r.out);
    cli_result_done(&r);
    return o;
}

static json_object *find_key(json_object *arr, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *n;
        if (json_object_object_get_ex(e, "name", &n) && streq(json_object_get_string(n), name))
            return e;
    }
    return NULL;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;

    cr_assert(json_object_object_get_ex(o, k, &v), "no '%s'", k);
    return json_object_get_string(v);
}

/* Export NAME into <tmp>/NAME.key (0600); returns the path. */
static const char *export_key(const char *name)
{
    cli_result r = CLI("ssh", "export", name);
    char rel[64];
    const char *p;

    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.err, "warning"), "export warns: %s", r.err);
    snprintf(rel, sizeof rel, "%s.key", name);
    p = test_write_file(rel, r.out, 0600);
    cli_result_done(&r);
    return p;
}

/* Secrets of a key file, for "never appears" checks: the seed (base64, hex) and the body lines. */
typedef struct key_marks {
    char seed_b64[64], seed_hex[80];
    char *lines[16];
    size_t n;
} key_marks;

static void marks_of(const char *key_path, key_marks *m)
{
    terok_error err = TEROK_ERROR_INIT;
    char *text = slurp(key_path), *save = NULL, *copy;
    sshkey k = {0};
    const void *p;
    size_t n;

    memset(m, 0, sizeof *m);
    terok_assert_ok(sshkey_parse_private(text, strlen(text), "key", &k, &err), &err);
    terok_secret_peek(k.seed, &p, &n);
    sodium_bin2base64(m->seed_b64, sizeof m->seed_b64, p, n, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2hex(m->seed_hex, sizeof m->seed_hex, p, n);
    sshkey_done(&k);
    copy = strdup(text);
    for (char *l = strtok_r(copy, "\n", &save); l && m->n < 16; l = strtok_r(NULL, "\n", &save))
        if (!strstr(l, "-----"))
            m->lines[m->n++] = strdup(l);
    free(copy);
    free(text);
}

static void assert_no_marks(const char *where, const char *text, const key_marks *m)
{
    cr_assert(!strstr(text, m->seed_b64), "the seed (base64) appears in %s", where);
    cr_assert(!strstr(text, m->seed_hex), "the seed (hex) appears in %s", where);
    cr_assert(!strstr(text, "PRIVATE KEY"), "a private key appears in %s", where);
    for (size_t i = 0; i < m->n; i++)
        cr_assert(!strstr(text, m->lines[i]), "a private key line appears in %s", where);
}

static void marks_done(key_marks *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->lines[i]);
}

/* ---- the key commands ---- */

Test(cli_ssh, help_everywhere)
{
    static const char *subs[] = {"add", "import", "export", "pub", "list", "link", "unlink", "rm"};
    cli_result r = CLI("ssh", "--help");

    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "Usage: terok-sandbox ssh"));
    cli_result_done(&r);
    for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
        r = CLI("ssh", subs[i], "--help");
        EXPECT_EXIT(r, 0);
        cr_assert(strstr(r.out, "Usage: terok-sandbox ssh"), "%s --help", subs[i]);
        cli_result_done(&r);
    }
    r = CLI("ssh");
    EXPECT_EXIT(r, 2);
    cli_result_done(&r);
    r = CLI("ssh", "frobnicate");
    EXPECT_EXIT(r, 2);
    cr_assert(strstr(r.err, "'frobnicate'"), "%s", r.err);
    cli_result_done(&r);
    r = CLI("--help");
    cr_assert(strstr(r.out, "ssh"), "the top-level help names ssh");
    cli_result_done(&r);
}

Test(cli_ssh, add_pub_export_agree_with_ssh_keygen)
{
    cli_result r = CLI("ssh", "add", "deploy", "--comment", "deploy key");
    json_object *arr, *k;
    char *line, *fp_pub, *fp_priv;
    const char *pub, *priv;

    EXPECT_EXIT(r, 0);
    cr_assert(strncmp(r.out, "ssh-ed25519 AAAA", 16) == 0, "%s", r.out);
    line = strdup(r.out);
    cli_result_done(&r);

    r = CLI("ssh", "pub", "deploy");
    EXPECT_EXIT(r, 0);
    cr_assert_str_eq(r.out, line);
    cr_assert(strstr(r.out, " deploy key\n"));
    pub = test_write_file("deploy.pub", r.out, 0644);
    cli_result_done(&r);

    arr = list_json();
    k = find_key(arr, "deploy");
    cr_assert(k);
    cr_assert_str_eq(field(k, "type"), "ssh-ed25519");
    cr_assert_str_eq(field(k, "comment"), "deploy key");
    fp_pub = keygen_fp(pub);
    cr_assert_str_eq(field(k, "fingerprint"), fp_pub, "ssh-keygen -l on the public key");

    priv = export_key("deploy");
    fp_priv = keygen_fp(priv);
    cr_assert_str_eq(fp_priv, fp_pub, "ssh-keygen -l on the exported key");
    r = RUN("ssh-keygen", "-y", "-f", priv);
    EXPECT_EXIT(r, 0);
    cr_assert_str_eq(r.out, line, "ssh-keygen -y on the exported key gives `ssh pub`");
    cli_result_done(&r);

    /* idempotent: same key, nothing regenerated */
    r = CLI("ssh", "add", "deploy");
    EXPECT_EXIT(r, 0);
    cr_assert_str_eq(r.out, line);
    cr_assert(strstr(r.err, "unchanged"), "%s", r.err);
    cli_result_done(&r);
    r = CLI("ssh", "add", "deploy", "--json");
    EXPECT_EXIT(r, 0);
    json_object *o = json_tokener_parse(r.out);
    cr_assert_eq(json_object_get_boolean(json_object_object_get(o, "changed")), 0);
    cr_assert_str_eq(field(o, "fingerprint"), fp_pub);
    json_object_put(o);
    cli_result_done(&r);

    /* the listing never holds a private key */
    r = CLI("ssh", "list");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, fp_pub));
    key_marks m;
    marks_of(priv, &m);
    assert_no_marks("ssh list", r.out, &m);
    cli_result_done(&r);
    r = CLI("vault", "list", "--json");
    EXPECT_EXIT(r, 0);
    assert_no_marks("vault list", r.out, &m);
    cr_assert(strstr(r.out, "\"ssh-ed25519\""), "%s", r.out);
    cli_result_done(&r);
    marks_done(&m);
    json_object_put(arr);
    free(line);
    free(fp_pub);
    free(fp_priv);
}

Test(cli_ssh, import_from_file_and_stdin)
{
    const char *kf = test_path("id_test");
    cli_result r = RUN("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imported@x", "-f", kf);
    char *fp, *text, pubp[512];

    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    fp = keygen_fp(kf);
    r = CLI("ssh", "import", "imp", kf);
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.err, fp), "%s", r.err);
    snprintf(pubp, sizeof pubp, "%s.pub", kf);
    char *pub = slurp(pubp);
    cr_assert_str_eq(r.out, pub, "the public line is ssh-keygen's");
    cli_result_done(&r);

    /* the same key again, from standard input: unchanged */
    text = slurp(kf);
    r = test_cli(text, (const char *const[]){"ssh", "import", "imp", "-", NULL});
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.err, "unchanged"), "%s", r.err);
    cli_result_done(&r);
    r = test_cli(text, (const char *const[]){"ssh", "import", "imp2", "-", "--json", NULL});
    EXPECT_EXIT(r, 0);
    json_object *o = json_tokener_parse(r.out);
    cr_assert_str_eq(field(o, "fingerprint"), fp);
    cr_assert_str_eq(field(o, "comment"), "imported@x");
    json_object_put(o);
    cli_result_done(&r);

    /* another key under a taken name: refused, the old one stays */
    const char *kf2 = test_path("id_other");
    r = RUN("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", kf2);
    cli_result_done(&r);
    r = CLI("ssh", "import", "imp", kf2);
    EXPECT_EXIT(r, 1);
    cr_assert(strstr(r.err, "different key"), "%s", r.err);
    cli_result_done(&r);
    r = CLI("ssh", "pub", "imp");
    cr_assert_str_eq(r.out, pub);
    cli_result_done(&r);

    /* the key is never taken from argv */
    r = CLI("ssh", "import", "imp3");
    EXPECT_EXIT(r, 2);
    cli_result_done(&r);
    free(pub);
    free(text);
    free(fp);
}

Test(cli_ssh, foreign_and_hostile_key_files_are_refused)
{
    static const struct {
        const char *type, *bits, *pass, *expect;
    } gen[] = {
        {"ed25519", NULL, "secret-pass", "passphrase-protected"},
        {"rsa", "2048", "", "RSA key ('ssh-rsa')"},
        {"ecdsa", "256", "", "ECDSA key ('ecdsa-sha2-nistp256')"},
    };
    cli_result r;
    json_object *before, *after;

    r = CLI("ssh", "add", "keep");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    before = list_json();
    for (size_t i = 0; i < ELEMENTSOF(gen); i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "k%zu", i);
        const char *p = test_path(rel);
        char path[512];
        snprintf(path, sizeof path, "%s", p);
        r = gen[i].bits ? RUN("ssh-keygen", "-q", "-t", gen[i].type, "-b", gen[i].bits, "-N",
                              gen[i].pass, "-f", path)
                        : RUN("ssh-keygen", "-q", "-t", gen[i].type, "-N", gen[i].pass, "-f", path);
        EXPECT_EXIT(r, 0);
        cli_result_done(&r);
        r = CLI("ssh", "import", "bad", path);
        cr_assert_neq(r.exit_code, 0, "%s was imported", gen[i].type);
        cr_assert(strstr(r.err, gen[i].expect), "%s: %s", gen[i].type, r.err);
        cr_assert(strstr(r.err, path), "the message names the file: %s", r.err);
        cli_result_done(&r);
    }
    /* a real key, broken: truncated, wrong magic, check numbers differing */
    const char *good = export_key("keep");
    key_marks m;
    marks_of(good, &m);
    char *text = slurp(good);
    uint8_t bin[1024];
    size_t n = 0;
    const char *b = strchr(text, '\n') + 1, *e = strstr(text, "-----END");
    cr_assert(sodium_base642bin(bin, sizeof bin, b, (size_t)(e - b), "\n", &n, NULL,
                                sodium_base64_VARIANT_ORIGINAL) == 0);
    for (int v = 0; v < 4; v++) {
        uint8_t c[1024];
        size_t cn = n;
        char b64[2048], file[4096];
        memcpy(c, bin, n);
        if (v == 0)
            cn = n / 2; /* truncated */
        else if (v == 1)
            c[0] = 'X'; /* wrong magic */
        else if (v == 2)
            c[n - 1 - 5 - 8] ^= 0xff; /* somewhere in the private section */
        else
            c[15] = 0x7f; /* cipher name length: overlong */
        sodium_bin2base64(b64, sizeof b64, c, cn, sodium_base64_VARIANT_ORIGINAL);
        snprintf(file, sizeof file,
                 "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n",
                 b64);
        r = test_cli(file, (const char *const[]){"ssh", "import", "broken", "-", NULL});
        cr_assert_eq(r.exit_code, 1, "variant %d: exit %d %s", v, r.exit_code, r.err);
        cr_assert(strstr(r.err, "standard input is not a valid OpenSSH private key"), "%d: %s", v,
                  r.err);
        assert_no_marks("an import error", r.err, &m);
        assert_no_marks("an import error", r.out, &m);
        cli_result_done(&r);
    }
    /* nothing was stored by any refusal */
    after = list_json();
    cr_assert_str_eq(json_object_to_json_string(before), json_object_to_json_string(after));
    json_object_put(before);
    json_object_put(after);
    marks_done(&m);
    free(text);
}

Test(cli_ssh, bad_names_scopes_and_comments_are_named)
{
    static const char *const cmds[][5] = {
        {"ssh", "add", "../evil", NULL},          {"ssh", "pub", "a b", NULL},
        {"ssh", "export", "-x-", NULL},           {"ssh", "rm", "ok", "bad/name", NULL},
        {"ssh", "link", "ok", "bad scope", NULL}, {"ssh", "import", "$x", "-", NULL},
    };
    static const char *const named[] = {"'../evil'",  "'a b'",       NULL,
                                        "'bad/name'", "'bad scope'", "'$x'"};
    cli_result r;

    for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
        r = test_cli("", cmds[i]);
        EXPECT_EXIT(r, 2);
        if (named[i])
            cr_assert(strstr(r.err, named[i]), "%s: %s", named[i], r.err);
        cli_result_done(&r);
    }
    r = CLI("ssh", "add", "k", "--comment", "line\nbreak");
    EXPECT_EXIT(r, 2);
    cr_assert(strstr(r.err, "--comment"), "%s", r.err);
    cli_result_done(&r);
    char long_scope[80];
    memset(long_scope, 's', 65);
    long_scope[65] = 0;
    r = CLI("ssh", "link", "k", long_scope);
    EXPECT_EXIT(r, 2);
    cli_result_done(&r);
    /* a vault entry of another type is not an SSH key */
    r = test_cli("api-secret-value", (const char *const[]){"vault", "add", "tok", NULL});
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    r = CLI("ssh", "add", "tok");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.err, "'tok'") && strstr(r.err, "not an SSH key"), "%s", r.err);
    cli_result_done(&r);
    r = CLI("ssh", "rm", "tok");
    cr_assert_neq(r.exit_code, 0);
    cli_result_done(&r);
    r = CLI("ssh", "pub", "nosuch");
    EXPECT_EXIT(r, 4);
    cr_assert(strstr(r.err, "'nosuch'"), "%s", r.err);
    cli_result_done(&r);
}

Test(cli_ssh, link_unlink_rm_are_idempotent)
{
    cli_result r = CLI("ssh", "add", "k1");
    json_object *arr, *o;

    cli_result_done(&r);
    r = CLI("ssh", "link", "k1", "proj", "--json");
    EXPECT_EXIT(r, 0);
    o = json_tokener_parse(r.out);
    cr_assert(json_object_get_boolean(json_object_object_get(o, "changed")));
    json_object_put(o);
    cli_result_done(&r);
    r = CLI("ssh", "link", "k1", "proj");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "already"), "%s", r.out);
    cli_result_done(&r);
    r = CLI("ssh", "link", "k1", "other");
    cli_result_done(&r);
    r = CLI("ssh", "link", "nokey", "proj");
    EXPECT_EXIT(r, 4);
    cli_result_done(&r);

    arr = list_json();
    json_object *sc = json_object_object_get(find_key(arr, "k1"), "scopes");
    cr_assert_eq(json_object_array_length(sc), 2);
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(sc, 0)), "proj");
    json_object_put(arr);

    r = CLI("ssh", "unlink", "k1", "other");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    r = CLI("ssh", "unlink", "k1", "other");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "was not linked"), "%s", r.out);
    cli_result_done(&r);
    r = CLI("ssh", "rm", "k1");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    r = CLI("ssh", "rm", "k1", "--json");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "\"removed\":false"), "%s", r.out);
    cli_result_done(&r);
    /* the links went with the key: a new k1 is linked nowhere */
    r = CLI("ssh", "add", "k1");
    cli_result_done(&r);
    arr = list_json();
    cr_assert_eq(json_object_array_length(json_object_object_get(find_key(arr, "k1"), "scopes")),
                 0);
    json_object_put(arr);
}

Test(cli_ssh, export_refuses_a_terminal)
{
    cli_result r = CLI("ssh", "add", "tty");
    char cmd[2048];

    cli_result_done(&r);
    /* script(1) gives the CLI a pseudo-terminal as stdout */
    snprintf(cmd, sizeof cmd, "%s ssh export tty", getenv("TEROK_TEST_CLI"));
    r = RUN("script", "-qec", cmd, "/dev/null");
    cr_assert_neq(r.exit_code, 0);
    cr_assert(strstr(r.out, "refusing to print the private key of 'tty' on a terminal"), "%s",
              r.out);
    cr_assert(!strstr(r.out, "PRIVATE KEY-----"), "%s", r.out);
    cli_result_done(&r);
    snprintf(cmd, sizeof cmd, "%s ssh export --force tty", getenv("TEROK_TEST_CLI"));
    r = RUN("script", "-qec", cmd, "/dev/null");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "-----BEGIN OPENSSH PRIVATE KEY-----"), "%s", r.out);
    cr_assert(strstr(r.out, "warning"), "%s", r.out);
    cli_result_done(&r);
}

/* ---- the agent ---- */

static const char *agent_sock(const char *container)
{
    char rel[128];

    snprintf(rel, sizeof rel, "run/containers/%s/ssh-agent.sock", container);
    return test_path(rel);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s: %s", path,
              strerror(errno));
    return fd;
}

/* Read one reply (or EOF: returns 0) within 5 s. */
static ssize_t read_reply(int fd, uint8_t *buf, size_t cap)
{
    struct pollfd p = {fd, POLLIN, 0};
    size_t n = 0;

    while (n < 4 ||
           n < 4 + ((size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3])) {
        cr_assert(poll(&p, 1, 5000) == 1, "no reply within 5 s");
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0)
            return n == 0 ? 0 : -1;
        n += (size_t)k;
    }
    return (ssize_t)n;
}

static void run_with_scope(const char *name, const char *scope)
{
    cli_result r = CLI("run", "-d", "--name", name, "--ssh-scope", scope, IMAGE, "sleep");

    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
}

static char *ssh_add(const char *sock, const char *flag, int want_exit)
{
    cli_result r;
    char *out;

    setenv("SSH_AUTH_SOCK", sock, 1);
    r = RUN("ssh-add", flag);
    unsetenv("SSH_AUTH_SOCK");
    EXPECT_EXIT(r, want_exit);
    out = strdup(r.out);
    cli_result_done(&r);
    return out;
}

Test(cli_ssh, ssh_add_lists_the_scope_and_hostile_clients_do_not_stop_the_daemon)
{
    cli_result r;
    json_object *arr;
    char *out, fp_a[64], fp_b[64];
    uint8_t buf[1024];
    int fd;

    r = CLI("ssh", "add", "ka", "--comment", "key a");
    cli_result_done(&r);
    r = CLI("ssh", "add", "kb");
    cli_result_done(&r);
    r = CLI("ssh", "link", "ka", "team");
    cli_result_done(&r);
    r = CLI("ssh", "link", "kb", "elsewhere");
    cli_result_done(&r);
    arr = list_json();
    snprintf(fp_a, sizeof fp_a, "%s", field(find_key(arr, "ka"), "fingerprint"));
    snprintf(fp_b, sizeof fp_b, "%s", field(find_key(arr, "kb"), "fingerprint"));
    json_object_put(arr);

    run_with_scope("c1", "team");
    out = ssh_add(agent_sock("c1"), "-l", 0);
    cr_assert(strstr(out, fp_a), "ssh-add -l lists the scope's key: %s", out);
    cr_assert(strstr(out, "key a"), "%s", out);
    cr_assert(!strstr(out, fp_b), "another scope's key is not offered: %s", out);
    free(out);

    /* hostile clients */
    static const uint8_t unknown[] = {0, 0, 0, 1, 99};
    fd = connect_unix(agent_sock("c1"));
    cr_assert(write(fd, unknown, sizeof unknown) == sizeof unknown);
    cr_assert_eq(read_reply(fd, buf, sizeof buf), 5);
    cr_assert_eq(buf[4], 5, "unknown type -> SSH_AGENT_FAILURE");
    /* the same connection goes on: identities, one byte at a time (partial reads) */
    static const uint8_t ids[] = {0, 0, 0, 1, 11};
    for (size_t i = 0; i < sizeof ids; i++) {
        cr_assert(write(fd, ids + i, 1) == 1);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_gt(read_reply(fd, buf, sizeof buf), 9);
    cr_assert_eq(buf[4], 12);
    cr_assert_eq(buf[8], 1, "one identity");
    /* a sign request for kb (not in this scope) -> FAILURE */
    {
        r = CLI("ssh", "pub", "kb");
        char *sp = strchr(r.out, ' ') + 1, *e = strchr(sp, ' ');
        uint8_t blob[64], req[256];
        size_t bn = 0, o = 0;
        cr_assert(sodium_base642bin(blob, sizeof blob, sp, e ? (size_t)(e - sp) : strlen(sp) - 1,
                                    NULL, &bn, NULL, sodium_base64_VARIANT_ORIGINAL) == 0);
        cli_result_done(&r);
        size_t body = 1 + 4 + bn + 4 + 4 + 4;
        req[o++] = 0, req[o++] = 0, req[o++] = 0, req[o++] = (uint8_t)body;
        req[o++] = 13;
        req[o++] = 0, req[o++] = 0, req[o++] = 0, req[o++] = (uint8_t)bn;
        memcpy(req + o, blob, bn);
        o += bn;
        memcpy(req + o, "\0\0\0\4data\0\0\0\0", 12);
        o += 12;
        cr_assert(write(fd, req, o) == (ssize_t)o);
        cr_assert_eq(read_reply(fd, buf, sizeof buf), 5);
        cr_assert_eq(buf[4], 5, "sign with a key of another scope -> FAILURE");
    }
    close(fd);
    /* zero length, huge length, just over the bound: the connection is closed */
    static const uint8_t zero[] = {0, 0, 0, 0}, huge[] = {0xff, 0xff, 0xff, 0xff},
                         over[] = {0, 4, 0, 1, 11};
    const uint8_t *bad[] = {zero, huge, over};
    size_t badn[] = {sizeof zero, sizeof huge, sizeof over};
    for (size_t i = 0; i < 3; i++) {
        fd = connect_unix(agent_sock("c1"));
        cr_assert(write(fd, bad[i], badn[i]) == (ssize_t)badn[i]);
        cr_assert_eq(read_reply(fd, buf, sizeof buf), 0, "case %zu: closed without a reply", i);
        close(fd);
    }
    /* truncated message then hang-up; and more clients than allowed at once */
    fd = connect_unix(agent_sock("c1"));
    cr_assert(write(fd, "\0\0\0\x20\x0d\0", 6) == 6);
    close(fd);
    int many[40];
    for (size_t i = 0; i < ELEMENTSOF(many); i++)
        many[i] = connect_unix(agent_sock("c1"));
    for (size_t i = 0; i < ELEMENTSOF(many); i++)
        close(many[i]);
    /* still serving */
    out = ssh_add(agent_sock("c1"), "-l", 0);
    cr_assert(strstr(out, fp_a), "after the hostile clients: %s", out);
    free(out);
    /* ssh-add's own extras are refused (not a full agent): adding, deleting, locking */
    out = ssh_add(agent_sock("c1"), "-D", 1);
    free(out);
    out = ssh_add(agent_sock("c1"), "-l", 0);
    cr_assert(strstr(out, fp_a), "-D deleted nothing: %s", out);
    free(out);

    /* a half-closed client still gets its answer */
    fd = connect_unix(agent_sock("c1"));
    cr_assert(write(fd, ids, sizeof ids) == sizeof ids);
    shutdown(fd, SHUT_WR);
    cr_assert_gt(read_reply(fd, buf, sizeof buf), 9);
    cr_assert_eq(buf[4], 12);
    close(fd);

    /* a restarted daemon reopens the agent socket of the live container */
    r = CLI("vault", "stop");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    for (int i = 0; i < 100 && access(agent_sock("c1"), F_OK) == 0; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(access(agent_sock("c1"), F_OK) != 0, "the stopped daemon removed its socket");
    /* (the detached daemon keeps its stdio: do not let it hold our capture pipes) */
    r = RUN("sh", "-c", "exec \"$TEROK_TEST_CLI\" vault serve >/dev/null 2>&1");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    out = ssh_add(agent_sock("c1"), "-l", 0);
    cr_assert(strstr(out, fp_a), "after a daemon restart: %s", out);
    free(out);

    /* unlink: the running container's agent stops offering it at once */
    r = CLI("ssh", "unlink", "ka", "team");
    cli_result_done(&r);
    out = ssh_add(agent_sock("c1"), "-l", 1);
    cr_assert(strstr(out, "no identities"), "%s", out);
    free(out);

    /* rm closes the socket */
    r = CLI("rm", "-f", "c1");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    cr_assert(access(agent_sock("c1"), F_OK) != 0, "the socket is gone after rm");
}

Test(cli_ssh, agent_only_for_a_scope_with_keys)
{
    cli_result r;

    r = CLI("run", "-d", "--name", "plain", IMAGE, "sleep");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    cr_assert(access(agent_sock("plain"), F_OK) != 0, "no --ssh-scope: no agent socket");
    r = CLI("run", "-d", "--name", "empty", "--ssh-scope", "nokeys", IMAGE, "sleep");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.err, "SSH scope 'nokeys' has no keys"), "%s", r.err);
    cli_result_done(&r);
    cr_assert(access(agent_sock("empty"), F_OK) != 0, "a scope without keys: no agent socket");
    r = CLI("run", "-d", "--name", "bad", "--ssh-scope", "no/good", IMAGE, "sleep");
    EXPECT_EXIT(r, 2);
    cr_assert(strstr(r.err, "'no/good'"), "%s", r.err);
    cli_result_done(&r);
    r = CLI("ps", "-a", "--json");
    cr_assert(!strstr(r.out, "\"bad\""), "a refused run leaves nothing: %s", r.out);
    cli_result_done(&r);
}

/* ---- a real sshd ---- */

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

static uint16_t start_sshd(const char *authorized)
{
    char cfg[2048], portarg[16];
    const char *hk = test_path("sshd_host_key");
    uint16_t port = free_port();
    cli_result r;
    char hkp[512];

    snprintf(hkp, sizeof hkp, "%s", hk);
    r = RUN("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hkp);
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    test_write_file("authorized_keys", authorized, 0600);
    snprintf(cfg, sizeof cfg,
             "ListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\n"
             "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
             "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
             hkp, test_path("authorized_keys"));
    const char *cf = test_write_file("sshd_config", cfg, 0600);
    snprintf(portarg, sizeof portarg, "%u", port);
    (void)mkdir("/run/sshd", 0755); /* sshd's privilege separation directory */
    int logfd = open(test_path("sshd.log"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    const char *argv[] = {"/usr/sbin/sshd", "-D", "-e", "-f", cf, "-p", portarg, NULL};
    cr_assert(posix_spawn(&sshd_pid, argv[0], &fa, NULL, (char *const *)argv, environ) == 0,
              "needs openssh-server (scripts/setup-host.sh)");
    posix_spawn_file_actions_destroy(&fa);
    close(logfd);
    for (int i = 0; i < 100; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("sshd did not listen: %s", slurp(test_path("sshd.log")));
    return 0;
}

Test(cli_ssh, real_ssh_authenticates_through_the_signer)
{
    cli_result r;
    char *pub, portarg[16], user_host[128];
    struct passwd *pw = getpwuid(geteuid());

    r = CLI("ssh", "add", "login", "--comment", "terok test");
    EXPECT_EXIT(r, 0);
    pub = strdup(r.out);
    cli_result_done(&r);
    r = CLI("ssh", "link", "login", "ci");
    cli_result_done(&r);
    run_with_scope("task", "ci");
    snprintf(portarg, sizeof portarg, "%u", start_sshd(pub));
    snprintf(user_host, sizeof user_host, "%s@127.0.0.1", pw->pw_name);

    setenv("SSH_AUTH_SOCK", agent_sock("task"), 1);
    r = RUN("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=publickey", "-o",
            "IdentityFile=none", "-p", portarg, user_host, "echo", "signed-by-terok");
    unsetenv("SSH_AUTH_SOCK");
    EXPECT_EXIT(r, 0);
    cr_assert_str_eq(r.out, "signed-by-terok\n");
    cli_result_done(&r);
    char *log = slurp(test_path("sshd.log"));
    cr_assert(strstr(log, "Accepted publickey"), "%s", log);

    /* an unlinked key does not log in: the agent no longer offers it */
    r = CLI("ssh", "unlink", "login", "ci");
    cli_result_done(&r);
    setenv("SSH_AUTH_SOCK", agent_sock("task"), 1);
    r = RUN("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=publickey", "-o",
            "IdentityFile=none", "-p", portarg, user_host, "true");
    unsetenv("SSH_AUTH_SOCK");
    cr_assert_eq(r.exit_code, 255, "%s", r.err);
    cli_result_done(&r);

    /* the signature was audited: container, key fingerprint; nothing signed appears */
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert(sqlite3_open(test_path("state/state.db"), &db) == SQLITE_OK);
    cr_assert(sqlite3_prepare_v2(db,
                                 "SELECT container, target, method, path, outcome FROM audit "
                                 "WHERE target = 'ssh-agent'",
                                 -1, &st, NULL) == SQLITE_OK);
    int rows = 0;
    json_object *arr = list_json();
    const char *fp = field(find_key(arr, "login"), "fingerprint");
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "task");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 2), "SIGN");
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), fp);
        cr_assert_str_eq((const char *)sqlite3_column_text(st, 4), "ok");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    cr_assert_geq(rows, 1, "a signature is audited");

    /* an exported key works with the real ssh on its own (no agent) */
    char priv[512];
    snprintf(priv, sizeof priv, "%s", export_key("login"));
    r = RUN("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=publickey", "-o",
            "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-i", priv, "-p", portarg, user_host,
            "echo", "exported-key-ok");
    EXPECT_EXIT(r, 0);
    cr_assert_str_eq(r.out, "exported-key-ok\n");
    cli_result_done(&r);

    /* the private key is nowhere in the daemon's log, the audit or sshd's log */
    key_marks m;
    marks_of(priv, &m);
    char *vlog = slurp(test_path("state/logs/vault.log"));
    assert_no_marks("vault.log", vlog, &m);
    assert_no_marks("sshd.log", log, &m);
    r = RUN("sqlite3", test_path("state/state.db"), ".dump");
    EXPECT_EXIT(r, 0);
    assert_no_marks("the state store", r.out, &m);
    cli_result_done(&r);
    marks_done(&m);
    free(vlog);
    free(log);
    free(pub);
    json_object_put(arr);
}

/* A route whose credential names an SSH key: the broker refuses (502) before any byte goes
 * upstream, so the private key never leaves the host. */
Test(cli_ssh, a_route_cannot_send_an_ssh_key_upstream)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    uint8_t key[TOKEN_KEY_BYTES];
    terok_secret *tok = NULL;
    store *st = NULL;
    int64_t id;
    char conf[2048], tcp[64], url[128], hdr[256];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    cr_assert(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(listen(lfd, 8) == 0);
    cr_assert(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = null\n[shield]\nbackend = none\n"
             "[vault]\nbackend = sqlite\n[vault.sqlite]\nkey-sources = key-file\n"
             "[route.leak]\nupstream = http://127.0.0.1:%u\nauth-header = x-api-key\n"
             "credential = k1\ntoken-env = LEAK_KEY\n",
             getenv("TEROK_TEST_PLUGIN_DIR"), ntohs(sa.sin_port));
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    cli_result r = CLI("ssh", "add", "k1");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);

    const char *state = getenv("TEROK_SANDBOX_STATE_DIR");
    cr_assert(store_open(state, &st, &err) == 0, "%s", err.message);
    cr_assert(tokens_key_load(state, key, &err) == 0, "%s", err.message);
    token_binding b = {.kind = TOKEN_KIND_PHANTOM, .container = "t1", .target = "leak"};
    cr_assert(tokens_mint(store_sqlite(st), key, &b, &tok, &id, &err) == 0, "%s", err.message);
    const void *td;
    size_t tl;
    cr_assert(terok_secret_peek(tok, &td, &tl) == 0);
    snprintf(hdr, sizeof hdr, "x-api-key: %.*s", (int)tl, (const char *)td);
    terok_secret_free(tok);
    store_close(st);

    uint16_t port = free_port();
    snprintf(tcp, sizeof tcp, "127.0.0.1:%u=t1", port);
    r = CLI("vault", "serve", "--tcp", tcp);
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/leak/v1/x", port);
    r = RUN("curl", "-s", "-w", "\n%{http_code}", "-H", hdr, url);
    cr_assert(strstr(r.out, "\n502") != NULL, "expected 502: %s (stderr %s)", r.out, r.err);
    cli_result_done(&r);
    cr_assert(accept(lfd, NULL, NULL) < 0 && errno == EAGAIN, "the broker connected upstream");
    close(lfd);
    /* The operator learns why from the daemon's log (the detached daemon writes there). */
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/logs/vault.log", state);
    char *log = slurp(logp);
    cr_assert(log && strstr(log, "'k1' is an SSH key"), "vault.log: %s", log ? log : "(none)");
    free(log);
}
