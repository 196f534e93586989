/* SPDX-License-Identifier: Apache-2.0 */
/* probe.c: `plugins list` support: load every *.so of a directory, each in its own forked child
 * that reports on a pipe as JSON and exits, so a plugin that crashes, exits or hangs in its
 * constructors or init cannot take the caller down. The parent treats the child's report as
 * untrusted text. Never prints. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "error.h"
#include "loader-internal.h"
#include "loader.h"

#define PROBE_REPORT_MAX (64u * 1024u)

static unsigned probe_timeout_ms = 5000;

void loader_set_probe_timeout(unsigned timeout_ms)
{
    probe_timeout_ms = timeout_ms ? timeout_ms : 1;
}

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void json_add_str(json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* In the child: load, describe, write, _exit. Nothing here returns. */
_noreturn_ static void probe_child(const char *path, int wfd)
{
    _cleanup_(load_ctx_done) load_ctx l = {0};
    terok_error err = TEROK_ERROR_INIT;
    struct rlimit no_core = {0, 0};
    plugin *p = NULL;
    json_object *o, *caps;
    const char *s;
    int devnull, r;
    size_t len;

    /* A plugin's stray output must not end up in `plugins list --json`; a crash leaves no core. */
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull >= 0)
        (void)dup2(devnull, STDOUT_FILENO);
    (void)setrlimit(RLIMIT_CORE, &no_core);

    r = loader_load_file_ctx(path, &l, &p, &err);
    o = json_object_new_object();
    if (!o)
        _exit(3);
    json_add_str(o, "status", r < 0 ? "rejected" : "ok");
    json_add_str(o, "kind", l.kind);
    json_add_str(o, "name", l.name);
    json_add_str(o, "version", l.version);
    if (l.abi_known) {
        json_object_object_add(o, "abi_major", json_object_new_int64(l.abi_major));
        json_object_object_add(o, "abi_minor", json_object_new_int64(l.abi_minor));
    }
    caps = json_object_new_array();
    if (p)
        for (unsigned bit = 0; bit < 64; bit++) {
            char buf[16];
            const char *n;

            if (!(p->caps & (UINT64_C(1) << bit)))
                continue;
            n = plugin_cap_name(p->kind, bit);
            if (!n) {
                snprintf(buf, sizeof buf, "bit%u", bit);
                n = buf;
            }
            json_object_array_add(caps, json_object_new_string(n));
        }
    json_object_object_add(o, "caps", caps);
    if (r < 0)
        json_add_str(o, "reason", terok_error_message(&err));

    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    len = strlen(s);
    while (len > 0) {
        ssize_t k = write(wfd, s, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(4);
        s += k;
        len -= (size_t)k;
    }
    /* No plugin_unload(): _exit() releases everything, and a plugin's destructors must not get
     * another chance to misbehave. */
    _exit(0);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's report until EOF or the deadline. Returns 1 on EOF, 0 on timeout. */
static int read_report(int fd, char *buf, size_t cap, size_t *ret_len)
{
    int64_t deadline = now_ms() + probe_timeout_ms;
    size_t n = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t k;
        int r;

        if (left <= 0)
            return 0;
        r = poll(&pfd, 1, (int)MIN(left, (int64_t)INT32_MAX));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : 0;
        k = read(fd, buf + n, cap - n - 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            buf[n] = 0;
            *ret_len = n;
            return 1;
        }
        n += (size_t)k;
        if (n >= cap - 1) { /* oversized report: stop reading; parsing will fail */
            buf[n] = 0;
            *ret_len = n;
            return 1;
        }
    }
}

/* The report comes from a process that ran plugin code: keep its strings printable. */
static char *sanitized(json_object *o, const char *key)
{
    json_object *v;
    char *s;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    s = strdup(json_object_get_string(v));
    for (char *c = s; c && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return s;
}

typedef struct probe_result {
    char *status, *kind, *name, *version, *reason;
    char **caps;
    bool abi_known;
    uint32_t abi_major, abi_minor;
} probe_result;

static void probe_result_done(probe_result *pr)
{
    free(pr->status);
    free(pr->kind);
    free(pr->name);
    free(pr->version);
    free(pr->reason);
    strv_free(pr->caps);
}

static int parse_report(const char *buf, probe_result *pr)
{
    json_object *o = json_tokener_parse(buf), *v;
    int r = -EBADMSG;

    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    pr->status = sanitized(o, "status");
    if (!pr->status || (!streq(pr->status, "ok") && !streq(pr->status, "rejected")))
        goto out;
    pr->kind = sanitized(o, "kind");
    pr->name = sanitized(o, "name");
    pr->version = sanitized(o, "version");
    pr->reason = sanitized(o, "reason");
    if (json_object_object_get_ex(o, "abi_major", &v)) {
        pr->abi_major = (uint32_t)json_object_get_int64(v);
        pr->abi_known = json_object_object_get_ex(o, "abi_minor", &v);
        pr->abi_minor = pr->abi_known ? (uint32_t)json_object_get_int64(v) : 0;
    }
    if (json_object_object_get_ex(o, "caps", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v) && i < 64; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (json_object_is_type(e, json_type_string) &&
                strv_extend(&pr->caps, json_object_get_string(e)) < 0) {
                r = -ENOMEM;
                goto out;
            }
        }
    r = 0;
out:
    json_object_put(o);
    return r;
}

static char *crash_reason(const char *path, const probe_result *pr, const char *fmt, ...)
    _printf_(3, 4);
static char *crash_reason(const char *path, const probe_result *pr, const char *fmt, ...)
{
    load_ctx l = {.path = (char *)path, .abi_known = pr->abi_known};
    va_list ap;
    char *m;

    va_start(ap, fmt);
    m = load_ctx_vformat(&l, fmt, ap);
    va_end(ap);
    return m;
}

static int probe_one(const char *dir, const char *file, plugin_probe_cb cb, void *userdata,
                     terok_error *err)
{
    _cleanup_free_ char *path = NULL, *buf = NULL;
    _cleanup_(probe_result_done) probe_result pr = {0};
    _cleanup_close_ int rfd = -EBADF;
    plugin_probe probe;
    size_t len = 0;
    int pfd[2], st, r, got;
    uint32_t kind;
    pid_t pid;

    if (asprintf(&path, "%s%s%s", dir, str_endswith(dir, "/") ? "" : "/", file) < 0)
        return -ENOMEM;
    buf = malloc(PROBE_REPORT_MAX);
    if (!buf)
        return -ENOMEM;
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return terok_error_set(err, negative_errno(), "cannot create a pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        r = negative_errno();
        close(pfd[0]);
        close(pfd[1]);
        return terok_error_set(err, r, "cannot fork to probe '%s': %s", path, strerror(-r));
    }
    if (pid == 0) {
        close(pfd[0]);
        probe_child(path, pfd[1]);
    }
    close(pfd[1]);
    rfd = pfd[0];

    got = read_report(rfd, buf, PROBE_REPORT_MAX, &len);
    if (got <= 0)
        (void)kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return terok_error_set(err, negative_errno(), "cannot reap the probe of '%s'", path);

    {
        _cleanup_free_ char *name = NULL;
        if (plugin_file_parse(file, &kind, &name) == 0) {
            pr.kind = strdup(plugin_kind_to_string(kind));
            pr.name = take_ptr(&name);
        }
    }

    if (got <= 0) {
        pr.status = strdup("crashed");
        pr.reason = crash_reason(path, &pr, "did not finish loading within %u ms; killed",
                                 probe_timeout_ms);
    } else if (WIFSIGNALED(st)) {
        pr.status = strdup("crashed");
        pr.reason = crash_reason(path, &pr, "crashed while loading: killed by SIG%s (%s)",
                                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?",
                                 strsignal(WTERMSIG(st)));
    } else {
        probe_result parsed = {0};

        if (WEXITSTATUS(st) == 0 && parse_report(buf, &parsed) == 0) {
            probe_result_done(&pr);
            pr = parsed;
        } else {
            probe_result_done(&parsed);
            free(pr.status);
            free(pr.reason);
            pr.status = strdup("crashed");
            pr.reason =
                crash_reason(path, &pr, "exited with status %d while loading", WEXITSTATUS(st));
        }
    }
    if (!pr.status)
        return -ENOMEM;

    probe = (plugin_probe){
        .file = file,
        .status = pr.status,
        .kind = pr.kind,
        .name = pr.name,
        .version = pr.version,
        .abi_major = pr.abi_known ? pr.abi_major : 0,
        .abi_minor = pr.abi_known ? pr.abi_minor : 0,
        .caps = (const char *const *)pr.caps,
        .reason = pr.reason,
    };
    return cb(userdata, &probe);
}

int loader_probe_dir(const char *dir, plugin_probe_cb cb, void *userdata, terok_error *err)
{
    _cleanup_strv_free_ char **files = NULL;
    _cleanup_close_ int dfd = -EBADF;
    DIR *d;
    struct dirent *de;
    size_t n;
    int r;

    if (isempty(dir))
        return terok_error_set(err, -EINVAL, "no plugin directory configured");
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        r = negative_errno();
        return terok_error_set(err, r, "cannot open plugin directory '%s': %s", dir, strerror(-r));
    }
    d = fdopendir(dfd);
    if (!d)
        return terok_error_set(err, negative_errno(), "cannot read plugin directory '%s'", dir);
    dfd = -EBADF; /* owned by d now */
    while ((errno = 0, de = readdir(d))) {
        if (de->d_name[0] == '.' || !str_endswith(de->d_name, ".so"))
            continue;
        if (strv_length(files) >= 4096)
            break;
        if (strv_extend(&files, de->d_name) < 0) {
            closedir(d);
            return -ENOMEM;
        }
    }
    r = errno ? -errno : 0;
    closedir(d);
    if (r < 0)
        return terok_error_set(err, r, "cannot read plugin directory '%s': %s", dir, strerror(-r));

    n = strv_length(files);
    if (n > 1)
        qsort(files, n, sizeof *files, strcmp_ptr);
    for (size_t i = 0; i < n; i++) {
        r = probe_one(dir, files[i], cb, userdata, err);
        if (r != 0)
            return r;
    }
    return 0;
}
