/* SPDX-License-Identifier: Apache-2.0 */
/* harness.c: plugin loading with a minimal host table, and netns plumbing for the shield tests
 * and bench (see harness.h). Test code: it may print to stderr for diagnosis. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

struct terok_config_section {
    char **kv;
};
struct terok_plugin {
    int dummy;
};

static struct terok_plugin plugin_self;
static struct terok_config_section section;
static char *state_dir_s;
static char last_log[2048];

#define LOG_KEEP 256
static struct {
    int prio;
    char msg[512];
} logs[LOG_KEEP];
static size_t n_logs;

static void h_logv(terok_plugin *self, int prio, const char *fmt, va_list ap)
{
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    if (n_logs < LOG_KEEP) {
        logs[n_logs].prio = prio;
        memcpy(logs[n_logs].msg, last_log, sizeof logs[n_logs].msg - 1); /* cut, terminated */
        n_logs++;
    }
    if (getenv("SH_VERBOSE"))
        fprintf(stderr, "[shield-nft] <%d> %s\n", prio, last_log);
}

static int h_errorv(terok_plugin *self, terok_error *err, int code, const char *fmt, va_list ap)
{
    char *m = NULL;

    if (code >= 0)
        code = -EIO;
    if (!err)
        return code;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    free(err->message);
    err->message = m;
    err->code = code;
    return code;
}

static char *h_strdup(const char *s)
{
    return strdup(s);
}

static const char *kv_get(const char *key)
{
    size_t n = strlen(key);

    for (char **p = section.kv; p && *p; p++)
        if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
            return *p + n + 1;
    return NULL;
}

static int h_config_get(const terok_config_section *sec, const char *key, const char **ret)
{
    const char *v = kv_get(key);

    if (!v)
        return -ENOENT;
    *ret = v;
    return 0;
}

static int h_config_get_int(const terok_config_section *sec, const char *key, int64_t *ret)
{
    const char *v = kv_get(key);

    if (!v)
        return -ENOENT;
    *ret = strtoll(v, NULL, 10);
    return 0;
}

static int h_config_get_bool(const terok_config_section *sec, const char *key, int *ret)
{
    const char *v = kv_get(key);

    if (!v)
        return -ENOENT;
    *ret = strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
    return 0;
}

static const char *h_state_dir(terok_plugin *self)
{
    return state_dir_s;
}

static const char *h_runtime_dir(terok_plugin *self)
{
    return "/tmp";
}

static const terok_host host = {
    .struct_size = sizeof(terok_host),
    .abi_major = TEROK_PLUGIN_ABI_MAJOR,
    .abi_minor = TEROK_PLUGIN_ABI_MINOR,
    .logv = h_logv,
    .errorv = h_errorv,
    .alloc = malloc,
    .free = free,
    .strdup = h_strdup,
    .config_get = h_config_get,
    .config_get_bool = h_config_get_bool,
    .config_get_int = h_config_get_int,
    .state_dir = h_state_dir,
    .runtime_dir = h_runtime_dir,
};

const char *sh_last_log(void)
{
    return last_log;
}

size_t sh_log_count(int prio, const char *needle)
{
    size_t n = 0;

    for (size_t i = 0; i < n_logs; i++)
        n += logs[i].prio == prio && strstr(logs[i].msg, needle);
    return n;
}

void sh_log_reset(void)
{
    n_logs = 0;
}

void sh_err_clear(terok_error *e)
{
    free(e->message);
    e->message = NULL;
    e->code = 0;
}

int sh_load(shield_h *h, const char *state_dir, const char *const *cfg, const char **msg)
{
    const char *dir = getenv("TEROK_TEST_PLUGIN_DIR");
    char path[4096];
    terok_plugin_init_fn init;
    terok_error err = {0, NULL};
    size_t n = 0;
    int r;

    memset(h, 0, sizeof *h);
    snprintf(path, sizeof path, "%s/shield-nft.so", dir ? dir : ".");
    h->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) {
        *msg = dlerror();
        return -ENOENT;
    }
    init = (terok_plugin_init_fn)(uintptr_t)dlsym(h->dl, TEROK_PLUGIN_INIT_SYMBOL);
    if (!init) {
        *msg = "no terok_plugin_init";
        return -ENOENT;
    }
    state_dir_s = strdup(state_dir);
    h->state_dir = state_dir_s;
    while (cfg && cfg[n])
        n++;
    section.kv = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        section.kv[i] = strdup(cfg[i]);
    if ((r = init(&plugin_self, &host, &h->desc, &err)) < 0) {
        *msg = "init failed";
        return r;
    }
    if (h->desc->kind != TEROK_PLUGIN_KIND_SHIELD) {
        *msg = "not a shield plugin";
        return -EINVAL;
    }
    h->ops = h->desc->ops;
    if ((r = h->ops->open(&plugin_self, &section, &h->state, &err)) < 0) {
        static char buf[1024];

        snprintf(buf, sizeof buf, "open: %s", err.message ? err.message : "?");
        sh_err_clear(&err);
        *msg = buf;
        return r;
    }
    *msg = "";
    return 0;
}

void sh_unload(shield_h *h)
{
    if (h->ops && h->state)
        h->ops->close(h->state);
    if (h->dl)
        dlclose(h->dl);
    for (char **p = section.kv; p && *p; p++)
        free(*p);
    free(section.kv);
    section.kv = NULL;
    free(state_dir_s);
    state_dir_s = NULL;
    memset(h, 0, sizeof *h);
}

int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sh_run(const char *const *argv, char *out, size_t outlen)
{
    posix_spawn_file_actions_t fa;
    int pfd[2] = {-1, -1}, status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    if (out && pipe2(pfd, O_CLOEXEC) == 0)
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!getenv("SH_VERBOSE"))
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return 127;
    }
    posix_spawn_file_actions_destroy(&fa);
    if (out) {
        size_t len = 0;
        ssize_t n;

        close(pfd[1]);
        while ((n = read(pfd[0], out + len, outlen - len - 1)) > 0)
            len += (size_t)n;
        out[len] = '\0';
        close(pfd[0]);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int setns_pid(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0), r;

    if (fd < 0)
        return -errno;
    r = setns(fd, CLONE_NEWNET);
    close(fd);
    return r < 0 ? -errno : 0;
}

static int setns_named(const char *name)
{
    char path[128];
    int fd, r;

    snprintf(path, sizeof path, "/run/netns/%s", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    r = setns(fd, CLONE_NEWNET);
    close(fd);
    return r < 0 ? -errno : 0;
}

pid_t spawn_netns_sleeper(const char *netns_name)
{
    pid_t pid = fork();

    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setns_named(netns_name) < 0)
            _exit(1);
        for (;;)
            pause();
    }
    return pid;
}

static ino_t netns_ino(pid_t pid)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    return stat(path, &st) < 0 ? 0 : st.st_ino;
}

pid_t spawn_userns_sleeper(uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    ino_t mine = netns_ino(getpid());

    if (pid == 0) {
        char *const argv[] = {"unshare", "-rn", "/bin/sleep", "1000", NULL};
        char *const envp[] = {"PATH=/usr/bin:/bin", NULL};

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
            _exit(1);
        execve("/usr/bin/unshare", argv, envp);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        char path[64], comm[32] = "";
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        if ((f = fopen(path, "re"))) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        if (strncmp(comm, "sleep", 5) == 0 && netns_ino(pid) != mine)
            return pid;
        usleep(10000);
    }
    kill_wait(pid);
    return -1;
}

void kill_wait(pid_t pid)
{
    int st;

    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

static unsigned topo_seq;

int topo_up(topo *t, pid_t container_pid)
{
    char cpid[16];
    int pid = (int)getpid(), seq = (int)topo_seq++;
    int r = 0;

    memset(t, 0, sizeof *t);
    snprintf(t->srv_ns, sizeof t->srv_ns, "tss%d_%d", pid, seq);
    snprintf(t->veth_c, sizeof t->veth_c, "vc%d_%d", pid, seq);
    snprintf(t->veth_s, sizeof t->veth_s, "vs%d_%d", pid, seq);
    r |= SH_RUN("ip", "netns", "add", t->srv_ns);
    if (container_pid <= 0) {
        snprintf(t->cli_ns, sizeof t->cli_ns, "tsc%d_%d", pid, seq);
        r |= SH_RUN("ip", "netns", "add", t->cli_ns);
        t->container = spawn_netns_sleeper(t->cli_ns);
    } else {
        t->container = container_pid;
    }
    if (r || t->container <= 0)
        return -EIO;
    for (int i = 0; i < 100 && netns_ino(t->container) == netns_ino(getpid()); i++)
        usleep(5000);
    snprintf(cpid, sizeof cpid, "%d", (int)t->container);
    r |= SH_RUN("ip", "link", "add", t->veth_c, "type", "veth", "peer", "name", t->veth_s);
    r |= SH_RUN("ip", "link", "set", t->veth_c, "netns", cpid);
    r |= SH_RUN("ip", "link", "set", t->veth_s, "netns", t->srv_ns);
    r |= SH_RUN("nsenter", "-t", cpid, "-n", "ip", "link", "set", "lo", "up");
    r |= SH_RUN("nsenter", "-t", cpid, "-n", "ip", "addr", "add", "198.51.100.1/24", "dev",
                t->veth_c);
    r |=
        SH_RUN("nsenter", "-t", cpid, "-n", "ip", "addr", "add", "10.231.0.1/24", "dev", t->veth_c);
    r |= SH_RUN("nsenter", "-t", cpid, "-n", "ip", "link", "set", t->veth_c, "up");
    r |= SH_RUN("ip", "-n", t->srv_ns, "link", "set", "lo", "up");
    r |= SH_RUN("ip", "-n", t->srv_ns, "addr", "add", "198.51.100.2/24", "dev", t->veth_s);
    r |= SH_RUN("ip", "-n", t->srv_ns, "addr", "add", "198.51.100.3/24", "dev", t->veth_s);
    r |= SH_RUN("ip", "-n", t->srv_ns, "addr", "add", "198.51.100.4/24", "dev", t->veth_s);
    r |= SH_RUN("ip", "-n", t->srv_ns, "addr", "add", "10.231.0.2/24", "dev", t->veth_s);
    r |= SH_RUN("ip", "-n", t->srv_ns, "link", "set", t->veth_s, "up");
    return r ? -EIO : 0;
}

void topo_down(topo *t)
{
    if (t->servers > 0)
        kill_wait(t->servers);
    if (t->cli_ns[0]) {
        kill_wait(t->container);
        SH_RUN("ip", "netns", "del", t->cli_ns);
    }
    if (t->srv_ns[0])
        SH_RUN("ip", "netns", "del", t->srv_ns); /* takes the veth pair with it */
    memset(t, 0, sizeof *t);
}

int topo_enter_server(topo *t)
{
    return setns_named(t->srv_ns);
}

static void serve_conn(int c)
{
    char buf[4096];
    ssize_t n;

    /* A client whose netns vanished never closes: bound the life of each connection. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(20);
    if (write(c, "hello\n", 6) != 6)
        _exit(0);
    while ((n = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, (size_t)n) != n)
            break;
    _exit(0);
}

int topo_servers(topo *t, const int *ports)
{
    int ready[2];
    char c = 0;

    if (pipe2(ready, O_CLOEXEC) < 0)
        return -errno;
    t->servers = fork();
    if (t->servers == 0) {
        struct pollfd pfd[16];
        int n = 0;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_IGN);
        if (setns_named(t->srv_ns) < 0)
            _exit(1);
        for (; ports[n] && n < 16; n++) {
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[n])};
            int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0)
                _exit(2);
            pfd[n] = (struct pollfd){.fd = s, .events = POLLIN};
        }
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        for (;;) {
            if (poll(pfd, (nfds_t)n, -1) < 0)
                continue;
            for (int i = 0; i < n; i++) {
                int cfd;

                if (!(pfd[i].revents & POLLIN))
                    continue;
                cfd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0)
                    continue;
                if (fork() == 0)
                    serve_conn(cfd);
                close(cfd);
            }
        }
    }
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1)
        c = 0;
    close(ready[0]);
    return c == 'r' ? 0 : -EIO;
}

/* Connect with a timeout and read the greeting; 0 or a positive errno. */
static int do_connect(const char *ip, int port, int timeout_ms, int *ret_fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct pollfd pfd;
    char buf[16];
    int s, e = 0;
    socklen_t el = sizeof e;

    inet_pton(AF_INET, ip, &a.sin_addr);
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        return errno;
    pfd = (struct pollfd){.fd = s, .events = POLLOUT};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return ETIMEDOUT;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e)
        return e;
    pfd = (struct pollfd){.fd = s, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return ETIMEDOUT;
    if (read(s, buf, sizeof buf) < 5 || strncmp(buf, "hello", 5) != 0)
        return errno ? errno : EPROTO;
    if (ret_fd)
        *ret_fd = s;
    else
        close(s);
    return 0;
}

int probe_connect(pid_t pid, const char *ip, int port, int timeout_ms)
{
    pid_t c = fork();
    int st;

    if (c == 0) {
        if (setns_pid(pid) < 0)
            _exit(200);
        _exit(do_connect(ip, port, timeout_ms, NULL) & 0xff);
    }
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static int do_dns(const char *server, const char *name, int timeout_ms)
{
    unsigned char q[512], a[512];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
    struct pollfd pfd;
    size_t n = 12;
    int s;
    ssize_t got;

    memset(q, 0, sizeof q);
    q[0] = 0x12, q[1] = 0x34, q[2] = 0x01, q[5] = 1; /* id, RD, one question */
    for (const char *p = name; *p;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);

        q[n++] = (unsigned char)l;
        memcpy(q + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    q[n++] = 0;
    q[n++] = 0, q[n++] = 1, q[n++] = 0, q[n++] = 1; /* A, IN */
    inet_pton(AF_INET, server, &sa.sin_addr);
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0 || send(s, q, n, 0) < 0)
        return errno;
    pfd = (struct pollfd){.fd = s, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return ETIMEDOUT;
    got = recv(s, a, sizeof a, 0);
    if (got < 0)
        return errno;
    return got >= 12 && a[0] == 0x12 && a[1] == 0x34 ? 0 : EPROTO;
}

int probe_dns(pid_t pid, const char *server, const char *name, int timeout_ms)
{
    pid_t c = fork();
    int st;

    if (c == 0) {
        if (setns_pid(pid) < 0)
            _exit(200);
        _exit(do_dns(server, name, timeout_ms) & 0xff);
    }
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

int conn_open(held_conn *hc, pid_t pid, const char *ip, int port)
{
    int sv[2];
    unsigned char status = 255;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return errno;
    hc->child = fork();
    if (hc->child == 0) {
        int fd = -1, r;
        char cmd;

        close(sv[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (setns_pid(pid) < 0)
            _exit(1);
        r = do_connect(ip, port, 2000, &fd);
        status = (unsigned char)r;
        if (write(sv[1], &status, 1) != 1 || r)
            _exit(0);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        signal(SIGPIPE, SIG_IGN);
        while (read(sv[1], &cmd, 1) == 1 && cmd == 'p') {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            char buf[64];
            ssize_t n;

            r = 0;
            if (write(fd, "ping\n", 5) != 5)
                r = errno;
            else if (poll(&pfd, 1, 2000) <= 0)
                r = ETIMEDOUT;
            else if ((n = read(fd, buf, sizeof buf)) <= 0)
                r = n == 0 ? ECONNRESET : errno;
            else if (strncmp(buf, "ping", 4) != 0)
                r = EPROTO;
            status = (unsigned char)r;
            if (write(sv[1], &status, 1) != 1)
                break;
        }
        _exit(0);
    }
    close(sv[1]);
    hc->ctl = sv[0];
    if (read(hc->ctl, &status, 1) != 1)
        return EIO;
    return status;
}

int conn_ping(held_conn *hc, int timeout_ms)
{
    unsigned char status = 255;

    (void)timeout_ms;
    if (write(hc->ctl, "p", 1) != 1 || read(hc->ctl, &status, 1) != 1)
        return EIO;
    return status;
}

void conn_close(held_conn *hc)
{
    if (hc->ctl > 0)
        close(hc->ctl);
    kill_wait(hc->child);
    memset(hc, 0, sizeof *hc);
}

int text_collect(void *ud, const char *data, size_t len)
{
    text_buf *b = ud;
    char *n = realloc(b->s, b->len + len + 1);

    if (!n)
        return -ENOMEM;
    memcpy(n + b->len, data, len);
    b->len += len;
    n[b->len] = '\0';
    b->s = n;
    return 0;
}

long counter_sum(const char *rules, const char *needle)
{
    long sum = 0;

    for (const char *line = rules; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        const char *c;

        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
        if (strstr(buf, needle) && (c = strstr(buf, "counter packets ")))
            sum += strtol(c + 16, NULL, 10);
        line = end ? end + 1 : NULL;
    }
    return sum;
}

pid_t topo_dnsmasq(topo *t, const char *listen_ip, const char *hosts_file)
{
    char hosts_arg[4200], listen_arg[64];
    pid_t pid;

    snprintf(hosts_arg, sizeof hosts_arg, "--addn-hosts=%s", hosts_file);
    snprintf(listen_arg, sizeof listen_arg, "--listen-address=%s", listen_ip);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        const char *argv[] = {"ip",
                              "netns",
                              "exec",
                              t->srv_ns,
                              "dnsmasq",
                              "--keep-in-foreground",
                              "--no-resolv",
                              "--no-hosts",
                              hosts_arg,
                              "--local-ttl=2",
                              "--local=/example.test/",
                              listen_arg,
                              "--bind-interfaces",
                              "--port=53",
                              "--user=root",
                              "--conf-file=/dev/null",
                              "--pid-file",
                              NULL};
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(null, 1);
        dup2(null, 2);
        execvp("ip", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        if (probe_dns(t->container, listen_ip, "svc.example.test", 200) == 0)
            return pid;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}
