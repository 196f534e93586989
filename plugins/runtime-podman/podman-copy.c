/* SPDX-License-Identifier: Apache-2.0 */
/* podman-copy.c: copy_in. The tar stream comes from `tar` (posix_spawn, argv, no shell) through
 * a pipe straight into a chunked PUT …/containers/{id}/archive; we never write tar ourselves.
 * Semantics (as `podman cp SRC[/.] CTR:DEST`): DEST an existing directory -> a directory's
 * contents merge into it, a file lands inside it; "DEST/" is such a directory, made when missing;
 * otherwise SRC becomes DEST (libpod's `rename`
 * maps the archive's top entry to DEST's name under DEST's parent, created when missing). */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "podman.h"

extern char **environ;

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static char *b64_decode(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    uint32_t acc = 0;
    int bits = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            continue;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    out[o] = 0;
    return out;
}

/* 1 when `path` is a directory in the container, 0 when it is something else or absent. */
static int dest_is_dir(podman *p, const char *ref, const char *esc_path, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *url = NULL, *doc = NULL;
    api_request rq = API_REQUEST_INIT;
    json_object *j, *d = NULL;
    int r;

    if (asprintf(&url, "/containers/%s/archive?path=%s", ref, esc_path) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    rq.method = "HEAD";
    rq.path = url;
    if ((r = api_call(p, &rq, &rs, err)) < 0)
        return r;
    if (rs.status == 404 || !rs.path_stat)
        return 0;
    if (rs.status != 200)
        return api_error(&rs, err, "looking at the destination in container '%s'", ref);
    if (!(doc = b64_decode(rs.path_stat)) || !(j = json_tokener_parse(doc)))
        return 0;
    r = json_object_object_get_ex(j, "isDir", &d) && json_object_get_boolean(d);
    json_object_put(j);
    return r;
}

static int spawn_tar(const char *dir, const char *name, int out_fd, int err_fd, pid_t *ret_pid)
{
    const char *argv[] = {"tar", "-C", dir, "-cf", "-", "--", name, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    int r;

    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    r = posix_spawnp(ret_pid, "tar", &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return -r;
}

/* "/a/b/c" -> "/a/b" and "c" (no trailing slashes expected; "/x" -> "/" and "x"). */
static int path_split(const char *path, char **ret_dir, char **ret_name)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return -EINVAL;
    *ret_dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    *ret_name = strdup(slash + 1);
    return *ret_dir && *ret_name ? 0 : -ENOMEM;
}

static char *read_all(int fd)
{
    api_buf b = {0};
    char buf[1024];
    ssize_t n;

    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof buf)) > 0 && b.len < 4096)
        if (api_buf_append(&b, buf, (size_t)n) < 0)
            break;
    if (b.data)
        b.data[strcspn(b.data, "\n")] = 0;
    return b.data;
}

int podman_copy_in(podman *p, const char *ref, const char *host_path, const char *container_path,
                   terok_error *err)
{
    _cleanup_free_ char *src = NULL, *srcdir = NULL, *srcname = NULL, *dst = NULL, *dstdir = NULL,
                        *dstname = NULL, *esc = NULL, *url = NULL, *rename = NULL,
                        *esc_rename = NULL, *tar_err = NULL;
    _cleanup_close_ int rd = -EBADF, wr = -EBADF, errfd = -EBADF, lock = -EBADF;
    _cleanup_response_ api_response rs = {0};
    api_request rq = API_REQUEST_INIT;
    struct stat st;
    int pipefd[2], r, status = 0, into;
    bool slash;
    pid_t pid;

    if (isempty(host_path) || isempty(container_path) || container_path[0] != '/')
        return terok_perr(err, -EINVAL,
                          "copy into '%s': need a host path and an absolute "
                          "container path",
                          ref);
    if (!(src = realpath(host_path, NULL)))
        return terok_perr(err, negative_errno(), "copy into '%s': '%s': %s", ref, host_path,
                          strerror(errno));
    if (stat(src, &st) < 0)
        return terok_perr(err, negative_errno(), "'%s': %s", src, strerror(errno));
    if (streq(src, "/"))
        return terok_perr(err, -EINVAL, "copy into '%s': refusing to copy the host's '/'", ref);
    if (path_split(src, &srcdir, &srcname) < 0 || !(dst = strdup(container_path)) ||
        !(esc = api_escape(p, container_path)))
        return terok_perr(err, -ENOMEM, "out of memory");
    slash = strlen(dst) > 1 && dst[strlen(dst) - 1] == '/';
    while (strlen(dst) > 1 && dst[strlen(dst) - 1] == '/')
        dst[strlen(dst) - 1] = 0;

    /* "DEST/" names a directory, made when missing; else look at what DEST is */
    into = slash ? 1 : dest_is_dir(p, ref, esc, err);
    if (into < 0)
        return into;
    if (into && S_ISDIR(st.st_mode)) {
        /* contents merge into the existing directory */
        free(srcdir);
        srcdir = TAKE_PTR(src);
        free(srcname);
        if (!(srcname = strdup(".")))
            return terok_perr(err, -ENOMEM, "out of memory");
    } else if (!into) {
        json_object *m = json_object_new_object();

        if (!m || path_split(dst, &dstdir, &dstname) < 0) {
            json_object_put(m);
            return terok_perr(err, -ENOMEM, "out of memory");
        }
        free(esc);
        esc = api_escape(p, dstdir);
        json_object_object_add(m, srcname, json_object_new_string(strempty(dstname)));
        rename = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
        json_object_put(m);
        if (!esc || !dstname || !rename || !(esc_rename = api_escape(p, rename)))
            return terok_perr(err, -ENOMEM, "out of memory");
        if (isempty(dstname) || streq(dstname, ".") || streq(dstname, ".."))
            return terok_perr(err, -EINVAL, "copy into '%s': bad destination '%s'", ref,
                              container_path);
    }
    /* noOverwriteDirNonDir: as `podman cp` without --overwrite, a directory never replaces a
     * file of the container (or the reverse) */
    if (asprintf(&url, "/containers/%s/archive?path=%s&noOverwriteDirNonDir=true%s%s", ref, esc,
                 esc_rename ? "&rename=" : "", strempty(esc_rename)) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return terok_perr(err, negative_errno(), "pipe: %s", strerror(errno));
    rd = pipefd[0];
    wr = pipefd[1];
    errfd = memfd_create("terok-tar-stderr", MFD_CLOEXEC);
    if (errfd < 0)
        return terok_perr(err, negative_errno(), "memfd_create: %s", strerror(errno));
    if ((r = spawn_tar(srcdir, srcname, wr, errfd, &pid)) < 0)
        return terok_perr(err, r, "running tar: %s", strerror(-r));
    closep(&wr);
    wr = -EBADF;

    lock = storage_lock(p);
    rq.method = "PUT";
    rq.path = url;
    rq.upload_fd = rd;
    rq.timeout_ms = -1; /* large trees take what they take */
    r = api_call(p, &rq, &rs, err);
    closep(&rd); /* a tar still writing gets EPIPE rather than blocking */
    rd = -EBADF;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        tar_err = read_all(errfd);
        if (r >= 0 && (rs.status < 200 || rs.status >= 300))
            return api_error(&rs, err, "copying '%s' into container '%s' at '%s'", host_path, ref,
                             container_path);
        return terok_perr(err, -EIO, "copying '%s' into container '%s': tar failed: %s", host_path,
                          ref, tar_err ? tar_err : "(no message)");
    }
    if (r < 0)
        return r;
    if (rs.status < 200 || rs.status >= 300)
        return api_error(&rs, err, "copying '%s' into container '%s' at '%s'", host_path, ref,
                         container_path);
    return 0;
}
