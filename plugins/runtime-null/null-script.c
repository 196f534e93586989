/* SPDX-License-Identifier: Apache-2.0 */
/* null-script.c: the deterministic interpreter that stands in for a container's processes.
 *
 * The argv is a list of commands separated by ";" tokens. Leading wrapper words
 * ("/bin/null-init", "/run/terok-init", "--") are skipped, and a command is named by its base
 * name ("/bin/echo" is "echo"):
 *
 *   echo WORDS...        a line on stdout          echo-err WORDS...  a line on stderr
 *   exit N               stop with status N        true / false       status 0 / 1
 *   sleep [ANY]          start: stay running until stop/kill (exec: no-op)
 *   printenv [KEY...]    the environment, or the named values (status 1 if one is missing)
 *   cat [PATH...]        a file copied in with copy_in; exec -i without PATH copies stdin
 *   fail-start MESSAGE   start fails with MESSAGE  fail-create MESSAGE  create fails
 *   anything else        "null-init: 'X': command not found" on stderr, status 127
 *
 * Without sleep, a started container runs its script and exits with the last status. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "null.h"
#include "util/macro.h"

static bool is_wrapper(const char *a)
{
    return streq(a, "/bin/null-init") || streq(a, "/run/terok-init") || streq(a, "--");
}

static const char *base_name(const char *a)
{
    const char *s = strrchr(a, '/');

    return s && s[1] ? s + 1 : a;
}

char *null_join(const char *const *w, size_t n)
{
    if (n == SIZE_MAX)
        for (n = 0; w && w[n];)
            n++;
    size_t len = 1;
    char *s, *e;

    for (size_t i = 0; i < n; i++)
        len += strlen(w[i]) + 1;
    s = malloc(len);
    if (!s)
        return NULL;
    e = s;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(w[i]);
        if (i)
            *e++ = ' ';
        memcpy(e, w[i], k);
        e += k;
    }
    *e = 0;
    return s;
}

static int emit(const script_io *io, int stream, const char *text)
{
    return io && io->line ? io->line(io->userdata, stream, text) : 0;
}

static int emit_words(const script_io *io, int stream, const char *const *w, size_t n)
{
    _cleanup_free_ char *s = null_join(w, n);

    return s ? emit(io, stream, s) : -ENOMEM;
}

static const char *env_lookup(const script_io *io, const char *key)
{
    const char *found = NULL;
    size_t k = strlen(key);
    const char *const *lists[] = {io->env, io->exec_env};

    for (size_t l = 0; l < 2; l++)
        for (const char *const *p = lists[l]; p && *p; p++)
            if (strncmp(*p, key, k) == 0 && (*p)[k] == '=')
                found = *p + k + 1;
    return found;
}

static int cmd_printenv(const script_io *io, const char *const *w, size_t n)
{
    int status = 0;

    if (n == 0) {
        const char *const *lists[] = {io->env, io->exec_env};
        for (size_t l = 0; l < 2; l++)
            for (const char *const *p = lists[l]; p && *p; p++)
                emit(io, 1, *p);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = env_lookup(io, w[i]);
        if (v)
            emit(io, 1, v);
        else
            status = 1;
    }
    return status;
}

/* Emit a file's lines; a trailing partial line is emitted too. */
static int emit_fd_lines(const script_io *io, int fd)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    ssize_t k;

    while ((k = read(fd, chunk, sizeof chunk)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (len + (size_t)k + 1 > cap) {
            size_t ncap = (len + (size_t)k + 1) * 2;
            char *t = realloc(buf, ncap);
            if (!t)
                return -ENOMEM;
            buf = t;
            cap = ncap;
        }
        memcpy(buf + len, chunk, (size_t)k);
        len += (size_t)k;
    }
    if (!buf)
        return 0;
    buf[len] = 0;
    for (char *line = buf, *nl; line < buf + len; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = buf + len;
        *nl = 0;
        emit(io, 1, line);
    }
    return 0;
}

static int cmd_cat(const script_io *io, const char *const *w, size_t n)
{
    int status = 0;

    if (n == 0) {
        if (io->stdin_fd >= 0)
            return emit_fd_lines(io, io->stdin_fd) < 0 ? 1 : 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096], msg[4200];
        _cleanup_close_ int fd = -EBADF;

        if (io->fs_root && null_container_path_ok(w[i])) {
            snprintf(path, sizeof path, "%s%s", io->fs_root, w[i]);
            fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            snprintf(msg, sizeof msg, "cat: %s: No such file or directory", w[i]);
            emit(io, 2, msg);
            status = 1;
            continue;
        }
        if (emit_fd_lines(io, fd) < 0)
            status = 1;
    }
    return status;
}

static int parse_status(const char *s)
{
    char *end = NULL;
    long v;

    if (!s)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 255)
        return 2; /* like sh: "exit: Illegal number" */
    return (int)v;
}

int script_run(const char *const *argv, int mode, const script_io *io, script_result *ret)
{
    size_t i = 0;
    int status = 0;

    *ret = (script_result){0};
    /* terok-init and its options up to "--" stand for the real init: skip them */
    if (argv && argv[0] && streq(argv[0], "/run/terok-init")) {
        while (argv[i] && !streq(argv[i], "--"))
            i++;
    }
    while (argv && argv[i] && is_wrapper(argv[i]))
        i++;

    while (argv && argv[i]) {
        const char *const *w;
        const char *cmd;
        size_t n = 0;

        if (streq(argv[i], ";")) {
            i++;
            continue;
        }
        cmd = base_name(argv[i]);
        w = argv + i + 1;
        while (w[n] && !streq(w[n], ";"))
            n++;
        i += n + 1;

        if (streq(cmd, "fail-create") || streq(cmd, "fail-start")) {
            bool ours = (mode == SCRIPT_CREATE) == streq(cmd, "fail-create");
            if (ours && mode != SCRIPT_EXEC) {
                ret->fail_msg = n ? null_join(w, n) : strdup(cmd);
                return ret->fail_msg ? -EIO : -ENOMEM;
            }
            continue;
        }
        if (mode == SCRIPT_CREATE)
            continue;

        if (streq(cmd, "echo")) {
            status = emit_words(io, 1, w, n) < 0 ? 1 : 0;
        } else if (streq(cmd, "echo-err")) {
            status = emit_words(io, 2, w, n) < 0 ? 1 : 0;
        } else if (streq(cmd, "exit")) {
            ret->exit_code = parse_status(n ? w[0] : NULL);
            return 0;
        } else if (streq(cmd, "true")) {
            status = 0;
        } else if (streq(cmd, "false")) {
            status = 1;
        } else if (streq(cmd, "sleep")) {
            if (mode == SCRIPT_START) {
                ret->sleeping = true;
                ret->exit_code = 0;
                return 0;
            }
            status = 0;
        } else if (streq(cmd, "printenv")) {
            status = cmd_printenv(io, w, n);
        } else if (streq(cmd, "cat")) {
            status = cmd_cat(io, w, n);
        } else {
            char msg[512];
            snprintf(msg, sizeof msg, "null-init: '%.400s': command not found", cmd);
            emit(io, 2, msg);
            ret->exit_code = 127;
            return 0;
        }
    }
    ret->exit_code = status;
    return 0;
}
