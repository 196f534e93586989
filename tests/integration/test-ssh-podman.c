/* SPDX-License-Identifier: Apache-2.0 */
/* test-ssh-podman.c: ssh from inside a real Podman container (hardened, terok-init, network
 * none) to a host sshd, authenticated by the vault daemon's signer through
 * SSH_AUTH_SOCK=/run/terok/ssh-agent.sock, while no private key exists anywhere the container
 * can look (environment, files). The test image has no ssh: the host's ssh client, socat and
 * their libraries are bind-mounted read-only; ssh reaches the host sshd through a unix socket
 * (socat on both ends), so the container needs no network. Run under the Podman lock. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sshkey.h"
#include "terok-test.h"

#define IMAGE "localhost/terok-busybox:test"
#define CLI(...) TEST_CLI(__VA_ARGS__)
#define RUN(...) test_run(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_EXIT(res, code)                                                                     \
    cr_assert_eq((res).exit_code, (code), "exit %d, expected %d\nstdout: %s\nstderr: %s",          \
                 (res).exit_code, (code), (res).out, (res).err)

extern char **environ;

static char label[64], name[64];
static pid_t sshd_pid, socat_pid;

static void setup(void)
{
    char conf[1024];

    test_tmpdir_setup();
    snprintf(conf, sizeof conf,
             "[core]\nplugin-dir = %s\n[runtime]\nbackend = podman\n"
             "[runtime.podman]\nsocket = private\nservice-idle = 120s\n"
             "[shield]\nbackend = none\n[vault.sqlite]\nkey-sources = key-file\n",
             getenv("TEROK_TEST_PLUGIN_DIR"));
    setenv("TEROK_SANDBOX_CONFIG", test_write_file("sandbox.conf", conf, 0600), 1);
    snprintf(label, sizeof label, "terok.ssh.it=%d", (int)getpid());
    snprintf(name, sizeof name, "sshit%d", (int)getpid());
    sshd_pid = socat_pid = 0;
}

static void stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

static void teardown(void)
{
    cli_result r = CLI("rm", "-f", name);

    cli_result_done(&r);
    r = CLI("vault", "stop");
    cli_result_done(&r);
    stop(&socat_pid);
    stop(&sshd_pid);
    /* the private Podman service of this test */
    test_stop_private_podman(test_tmp);
    test_tmpdir_teardown();
    unsetenv("TEROK_SANDBOX_CONFIG");
}

TestSuite(ssh_podman, .init = setup, .fini = teardown, .timeout = 300);

static pid_t spawn(const char *const *argv, const char *log)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    cr_assert(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) == 0,
              "cannot run %s (scripts/setup-host.sh installs it)", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    return pid;
}

static uint16_t start_sshd(const char *authorized)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sa;
    char cfg[2048], hk[512], portarg[16];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint16_t port;
    cli_result r;

    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &l) == 0);
    close(fd);
    port = ntohs(sa.sin_port);
    snprintf(hk, sizeof hk, "%s", test_path("host_key"));
    r = RUN("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hk);
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    test_write_file("authorized_keys", authorized, 0600);
    snprintf(cfg, sizeof cfg,
             "ListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\n"
             "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
             "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
             hk, test_path("authorized_keys"));
    char cf[512];
    snprintf(cf, sizeof cf, "%s", test_write_file("sshd_config", cfg, 0600));
    snprintf(portarg, sizeof portarg, "%u", port);
    (void)mkdir("/run/sshd", 0755);
    sshd_pid =
        spawn((const char *const[]){"/usr/sbin/sshd", "-D", "-e", "-f", cf, "-p", portarg, NULL},
              test_path("sshd.log"));
    return port;
}

/* socat on the host: <tmp>/fwd/sshd.sock (0666 in a 0755 dir, bind-mounted at /fwd) -> sshd. */
static void start_forwarder(uint16_t port)
{
    char listen[600], connect[64];

    cr_assert(mkdir(test_path("fwd"), 0755) == 0);
    cr_assert(chmod(test_path("fwd"), 0755) == 0);
    snprintf(listen, sizeof listen, "UNIX-LISTEN:%s,fork,mode=666", test_path("fwd/sshd.sock"));
    snprintf(connect, sizeof connect, "TCP:127.0.0.1:%u", port);
    socat_pid = spawn((const char *const[]){"/usr/bin/socat", listen, connect, NULL},
                      test_path("socat.log"));
    for (int i = 0; i < 100 && access(test_path("fwd/sshd.sock"), F_OK) != 0; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(access(test_path("fwd/sshd.sock"), F_OK) == 0, "socat did not listen");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *b = calloc(1, 1 << 20);

    cr_assert(f, "%s", path);
    b[fread(b, 1, (1 << 20) - 1, f)] = 0;
    fclose(f);
    return b;
}

Test(ssh_podman, container_logs_in_through_the_signer_without_a_key)
{
    cli_result r;
    char *pub, ld[PATH_MAX], v_ld[PATH_MAX + 64], v_fwd[600], seed_b64[64], seed_hex[80];
    terok_error err = TEROK_ERROR_INIT;

    if (access("/usr/bin/podman", X_OK) != 0)
        cr_skip_test("needs podman (scripts/setup-host.sh)");

    /* a key in the vault, linked to the scope the container runs with */
    r = CLI("ssh", "add", "gitkey", "--comment", "in the vault");
    EXPECT_EXIT(r, 0);
    pub = strdup(r.out);
    cli_result_done(&r);
    r = CLI("ssh", "link", "gitkey", "builds");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);
    /* what must never be found in the container: the seed (from an export on the host) */
    r = CLI("ssh", "export", "gitkey");
    EXPECT_EXIT(r, 0);
    {
        sshkey k = {0};
        const void *p;
        size_t n;
        terok_assert_ok(sshkey_parse_private(r.out, strlen(r.out), "export", &k, &err), &err);
        terok_secret_peek(k.seed, &p, &n);
        sodium_bin2base64(seed_b64, sizeof seed_b64, p, n, sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2hex(seed_hex, sizeof seed_hex, p, n);
        sshkey_done(&k);
    }
    cli_result_done(&r);

    start_forwarder(start_sshd(pub));

    cr_assert(realpath("/lib64/ld-linux-x86-64.so.2", ld), "no dynamic loader");
    snprintf(v_ld, sizeof v_ld, "%s:/lib64/ld-linux-x86-64.so.2:ro", ld);
    snprintf(v_fwd, sizeof v_fwd, "%s:/fwd:ro", test_path("fwd"));
    r = CLI("run", "-d", "--name", name, "-l", label, "--ssh-scope", "builds", "-v",
            "/usr/bin/ssh:/usr/bin/ssh:ro", "-v", "/usr/bin/ssh-add:/usr/bin/ssh-add:ro", "-v",
            "/usr/bin/socat:/usr/bin/socat:ro", "-v",
            "/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:ro", "-v", v_ld, "-v", v_fwd,
            IMAGE, "sleep", "300");
    EXPECT_EXIT(r, 0);
    cli_result_done(&r);

    /* the agent is there, and lists the key */
    r = CLI("exec", name, "sh", "-c", "echo \"$SSH_AUTH_SOCK\"; ssh-add -l");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "/run/terok/ssh-agent.sock\n"), "%s", r.out);
    cr_assert(strstr(r.out, "in the vault (ED25519)"), "%s", r.out);
    cli_result_done(&r);

    /* ssh to the host's sshd: authenticated by the signer */
    r = CLI("exec", name, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o",
            "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
            "IdentityFile=none", "-o", "PreferredAuthentications=publickey", "-o",
            "ProxyCommand=socat - UNIX-CONNECT:/fwd/sshd.sock", "root@sshd-host", "echo",
            "hello-from-the-host");
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "hello-from-the-host"), "%s", r.out);
    cli_result_done(&r);
    char *log = slurp(test_path("sshd.log"));
    cr_assert(strstr(log, "Accepted publickey for root"), "%s", log);
    free(log);

    /* and no private key anywhere the container can look: env, /proc, files */
    char script[1024];
    snprintf(script, sizeof script,
             "env; tr '\\000' '\\n' < /proc/1/environ; for d in /*; do case $d in "
             "/proc|/sys|/dev|/usr|/lib64) "
             ";; *) grep -rlF -e '%s' -e '%s' -e 'OPENSSH PRIVATE KEY' \"$d\" 2>/dev/null "
             "&& echo \"FOUND in $d\";; esac; done; "
             "grep -lF -e '%s' -e '%s' /proc/1/environ /proc/self/environ 2>/dev/null "
             "&& echo FOUND in environ; "
             /* the same scan finds what is there: a canary in the container's /tmp */
             "printf terok-canary-7f3a > /tmp/canary; for d in /*; do case $d in "
             "/proc|/sys|/dev|/usr|/lib64) ;; *) grep -rlF -e terok-canary-7f3a \"$d\" "
             "2>/dev/null && echo \"CANARY in $d\";; esac; done; echo scan-done",
             seed_b64, seed_hex, seed_b64, seed_hex);
    r = CLI("exec", name, "sh", "-c", script);
    EXPECT_EXIT(r, 0);
    cr_assert(strstr(r.out, "scan-done"), "%s", r.out);
    cr_assert(strstr(r.out, "CANARY in /tmp"), "the scan works: %s", r.out);
    cr_assert(!strstr(r.out, "FOUND"), "a private key is in the container: %s", r.out);
    cr_assert(!strstr(r.out, seed_b64) && !strstr(r.out, seed_hex), "%s", r.out);
    cr_assert(strstr(r.out, "SSH_AUTH_SOCK=/run/terok/ssh-agent.sock"), "%s", r.out);
    cli_result_done(&r);
    /* nor in what the engine shows about it */
    r = CLI("inspect", name, "--json");
    EXPECT_EXIT(r, 0);
    cr_assert(!strstr(r.out, seed_b64) && !strstr(r.out, "PRIVATE KEY"));
    cli_result_done(&r);
    free(pub);
}
