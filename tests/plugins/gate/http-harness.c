/* SPDX-License-Identifier: Apache-2.0 */
/* http-harness.c: see http-harness.h. Content-Length and chunked request bodies, Expect:
 * 100-continue, one response per connection (Connection: close). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "http-harness.h"

typedef struct conn {
    FILE *in;
    int fd;
    bool chunked;
    long long left; /* bytes left in the current chunk or the whole body */
    bool done;
    int status;
} conn;

static long read_body(void *io, void *buf, size_t len)
{
    conn *c = io;
    char line[128];
    size_t n;

    if (c->done)
        return 0;
    if (c->chunked && c->left == 0) {
        if (!fgets(line, sizeof line, c->in))
            return -1;
        c->left = strtoll(line, NULL, 16);
        if (c->left == 0) {
            while (fgets(line, sizeof line, c->in) && strcmp(line, "\r\n") != 0)
                ;
            c->done = true;
            return 0;
        }
    }
    if (!c->chunked && c->left == 0) {
        c->done = true;
        return 0;
    }
    n = fread(buf, 1, len < (size_t)c->left ? len : (size_t)c->left, c->in);
    if (n == 0)
        return -1;
    c->left -= (long long)n;
    if (c->chunked && c->left == 0 && !fgets(line, sizeof line, c->in))
        return -1;
    return (long)n;
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p = (const char *)p + k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_head(void *io, int status, const char *const *headers)
{
    conn *c = io;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d X\r\n", status);

    c->status = status;
    for (; *headers; headers++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s\r\n", *headers);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "Connection: close\r\n\r\n");
    return write_all(c->fd, buf, (size_t)n);
}

static int write_body(void *io, const void *data, size_t len)
{
    return write_all(((conn *)io)->fd, data, len);
}

static uint32_t rights_of(const char *table, const char *task)
{
    size_t tl = strlen(task);

    for (const char *p = table; p && *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == tl && strncmp(p, task, tl) == 0)
            return strncmp(eq + 1, "rw", 2) == 0 ? TEROK_GATE_READ | TEROK_GATE_WRITE
                                                 : TEROK_GATE_READ;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static void handle(int fd, plugin *p, void *st, const char *rights, FILE *log, const char *auth)
{
    char authz[1024] = "";
    char line[8192], method[16] = "", path[4096] = "", ctype[256] = "", enc[64] = "",
                     proto[300] = "";
    char task[256], repo[256], *q, *slash, *dotgit;
    conn c = {.fd = fd, .status = 0};
    terok_error err = TEROK_ERROR_INIT;
    bool expect = false;

    c.in = fdopen(dup(fd), "r");
    if (!c.in || !fgets(line, sizeof line, c.in) || sscanf(line, "%15s %4095s", method, path) != 2)
        goto out;
    while (fgets(line, sizeof line, c.in) && strcmp(line, "\r\n") != 0) {
        char *v = strchr(line, ':');
        if (!v)
            continue;
        *v++ = 0;
        while (*v == ' ')
            v++;
        v[strcspn(v, "\r\n")] = 0;
        if (!strcasecmp(line, "Content-Type"))
            snprintf(ctype, sizeof ctype, "%s", v);
        else if (!strcasecmp(line, "Content-Encoding"))
            snprintf(enc, sizeof enc, "%s", v);
        else if (!strcasecmp(line, "Git-Protocol"))
            snprintf(proto, sizeof proto, "%s", v);
        else if (!strcasecmp(line, "Content-Length"))
            c.left = strtoll(v, NULL, 10);
        else if (!strcasecmp(line, "Transfer-Encoding") && !strcasecmp(v, "chunked"))
            c.chunked = true;
        else if (!strcasecmp(line, "Expect") && !strcasecmp(v, "100-continue"))
            expect = true;
        else if (!strcasecmp(line, "Authorization"))
            snprintf(authz, sizeof authz, "%s", v);
    }
    if (auth && strcmp(authz, auth) != 0) {
        const char *h[] = {"WWW-Authenticate: Basic realm=\"test\"", "Content-Length: 0", NULL};
        write_head(&c, 401, h);
        fprintf(log, "%s %s auth=%s status=401\n", method, path, authz[0] ? "wrong" : "missing");
        fflush(log);
        goto out;
    }
    if (expect)
        write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    q = strchr(path, '?');
    if (q)
        *q++ = 0;
    /* /<task>/<repo>.git/<service_path> */
    slash = strchr(path + 1, '/');
    if (!slash || path[0] != '/')
        goto out;
    snprintf(task, sizeof task, "%.*s", (int)(slash - path - 1), path + 1);
    dotgit = strstr(slash, ".git/");
    if (!dotgit)
        goto out;
    snprintf(repo, sizeof repo, "%.*s", (int)(dotgit - slash - 1), slash + 1);
    {
        terok_gate_http req = {
            .struct_size = sizeof req,
            .rights = rights_of(rights, task),
            .container = task,
            .repo = repo,
            .method = method,
            .service_path = dotgit + 5,
            .query = q ? q : "",
            .content_type = ctype,
            .content_encoding = enc[0] ? enc : NULL,
            .git_protocol = proto[0] ? proto : NULL,
            .read_body = read_body,
            .write_head = write_head,
            .write_body = write_body,
            .io = &c,
        };
        int r = p->ops.gate.serve(st, &req, &err);
        if (r < 0 && c.status == 0) {
            const char *h[] = {"Content-Type: text/plain", NULL};
            write_head(&c, 500, h);
        }
        fprintf(log, "%s %s proto=%s enc=%s status=%d%s%s%s\n", method, dotgit + 5, proto, enc,
                c.status, auth ? " auth=ok" : "", r < 0 ? " error=" : "",
                r < 0 ? terok_error_message(&err) : "");
        fflush(log);
        terok_error_clear(&err);
    }
out:
    if (c.in)
        fclose(c.in);
}

void gate_srv_start(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                    const char *log)
{
    gate_srv_start_auth(s, so, state_dir, rights, log, NULL);
}

static void start(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                  const char *log, const char *auth, const char *config_file);

void gate_srv_start_auth(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                         const char *log, const char *auth)
{
    start(s, so, state_dir, rights, log, auth, NULL);
}

void gate_srv_start_config(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                           const char *log, const char *config_file)
{
    start(s, so, state_dir, rights, log, NULL, config_file);
}

static void start(gate_srv *s, const char *so, const char *state_dir, const char *rights,
                  const char *log, const char *auth, const char *config_file)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        abort();
    s->port = ntohs(a.sin_port);
    s->pid = fork();
    if (s->pid == 0) {
        terok_error err = TEROK_ERROR_INIT;
        plugin *p = NULL;
        void *st = NULL;
        FILE *lf;

        /* Never outlive the test (a failed assertion skips gate_srv_stop). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(92);
        lf = fopen(log, "a");

        if (!lf || loader_load_file(so, &p, &err) < 0)
            _exit(90);
        p->state_dir = state_dir;
        p->runtime_dir = state_dir;
        if (config_file) {
            config *cfg = NULL;
            /* Loaded and validated as the CLI does, so the plugin's declared keys apply. */
            if (config_load(config_file, NULL, NULL, &cfg, &err) < 0 || config_validate(cfg) > 0) {
                fprintf(lf, "config failed: %s\n", terok_error_message(&err));
                _exit(93);
            }
            p->config = config_plugin_section(cfg, "gate", "git");
        }
        if (p->ops.gate.open(p, p->config, &st, &err) < 0) {
            fprintf(lf, "open failed: %s\n", terok_error_message(&err));
            _exit(91);
        }
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            handle(fd, p, st, rights, lf, auth);
            shutdown(fd, SHUT_RDWR);
            close(fd);
        }
    }
    close(lfd);
}

void gate_srv_stop(gate_srv *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}
