/* SPDX-License-Identifier: Apache-2.0 */
/* null-fs.c: each fake container's small file tree under <state>/fs/<name>/, filled by copy_in
 * (regular files, directories and symlinks copied as such, nothing followed) and read by `cat`. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "null.h"
#include "util/macro.h"

bool null_container_path_ok(const char *p)
{
    if (!p || p[0] != '/')
        return false;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        size_t len = strcspn(s, "/");
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return false;
        s += len;
    }
    return true;
}

static int mkdir_parents_at(int rootfd, const char *rel)
{
    char buf[PATH_MAX];

    snprintf(buf, sizeof buf, "%s", rel);
    for (char *p = buf; *p; p++) {
        if (*p != '/' || p == buf)
            continue;
        *p = 0;
        if (mkdirat(rootfd, buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

static int copy_file(int srcfd, int dstdir, const char *name, mode_t mode)
{
    _cleanup_close_ int out = -EBADF;
    char buf[65536];
    ssize_t k;

    (void)unlinkat(dstdir, name, 0);
    out = openat(dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
    if (out < 0)
        return -errno;
    while ((k = read(srcfd, buf, sizeof buf)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (ssize_t off = 0; off < k;) {
            ssize_t w = write(out, buf + off, (size_t)(k - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            off += w;
        }
    }
    return 0;
}

/* Copy the entry `name` of srcdir to `dname` in dstdir, recursively, never following links. */
static int copy_entry(int srcdir, const char *name, int dstdir, const char *dname, int depth)
{
    struct stat st;

    if (depth > 64)
        return -ELOOP;
    if (fstatat(srcdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t k = readlinkat(srcdir, name, target, sizeof target - 1);
        if (k < 0)
            return -errno;
        target[k] = 0;
        (void)unlinkat(dstdir, dname, 0);
        return symlinkat(target, dstdir, dname) < 0 ? -errno : 0;
    }
    if (S_ISREG(st.st_mode)) {
        _cleanup_close_ int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
            return -errno;
        return copy_file(in, dstdir, dname, st.st_mode);
    }
    if (S_ISDIR(st.st_mode)) {
        _cleanup_close_ int sub = -EBADF, dsub = -EBADF;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (mkdirat(dstdir, dname, st.st_mode & 0777) < 0 && errno != EEXIST)
            return -errno;
        dsub = openat(dstdir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        sub = openat(srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dsub < 0 || sub < 0)
            return -errno;
        d = fdopendir(sub);
        if (!d)
            return -errno;
        sub = -EBADF; /* owned by d now */
        while (r >= 0 && (de = readdir(d)))
            if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                r = copy_entry(dirfd(d), de->d_name, dsub, de->d_name, depth + 1);
        closedir(d);
        return r;
    }
    return 0; /* devices, fifos, sockets: not copied */
}

int null_copy_in(nullrt *n, const char *name, const char *host_path, const char *container_path,
                 terok_error *err)
{
    _cleanup_free_ char *root = NULL, *hp = NULL, *rel = NULL;
    _cleanup_close_ int rootfd = -EBADF, srcdir = -EBADF, dstdir = -EBADF;
    const char *base, *dst;
    struct stat st;
    int r;

    if (!host_path || host_path[0] != '/')
        return terok_perr(err, -EINVAL, "host path '%s' is not absolute",
                          host_path ? host_path : "");
    if (!null_container_path_ok(container_path))
        return terok_perr(err, -EINVAL,
                          "container path '%s' must be absolute without '..' components",
                          container_path ? container_path : "");
    if (lstat(host_path, &st) < 0)
        return terok_perr(err, negative_errno(), "cannot read '%s': %s", host_path,
                          strerror(errno));
    if (asprintf(&root, "%s/fs/%s", n->dir, name) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    {
        char fsdir[4096];
        snprintf(fsdir, sizeof fsdir, "%s/fs", n->dir);
        (void)mkdir(fsdir, 0700);
    }
    if (mkdir(root, 0755) < 0 && errno != EEXIST)
        return terok_perr(err, negative_errno(), "cannot create '%s': %s", root, strerror(errno));
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", root, strerror(errno));

    /* podman cp semantics, simplified: into an existing directory (or a path ending in '/')
     * under the source's base name, else to exactly that path. */
    while (*container_path == '/')
        container_path++;
    rel = strdup(*container_path ? container_path : ".");
    hp = strdup(host_path);
    if (!rel || !hp)
        return terok_perr(err, -ENOMEM, "out of memory");
    size_t rl = strlen(rel);
    bool into = rl && rel[rl - 1] == '/';
    while (rl > 1 && rel[rl - 1] == '/')
        rel[--rl] = 0;
    struct stat dst_st;
    if (streq(rel, ".") ||
        (fstatat(rootfd, rel, &dst_st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(dst_st.st_mode)))
        into = true;

    char *slash = strrchr(hp, '/');
    *slash = 0;
    base = slash[1] ? slash + 1 : ".";
    srcdir = open(*hp ? hp : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (srcdir < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", host_path,
                          strerror(errno));

    if (into) {
        if (!streq(rel, ".") && mkdirat(rootfd, rel, 0755) < 0 && errno != EEXIST)
            return terok_perr(err, negative_errno(), "cannot create '%s': %s", rel,
                              strerror(errno));
        dstdir = openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        dst = base;
    } else {
        r = mkdir_parents_at(rootfd, rel);
        if (r < 0)
            return terok_perr(err, r, "cannot create parents of '/%s': %s", rel, strerror(-r));
        char *ds = strrchr(rel, '/');
        if (ds) {
            *ds = 0;
            dstdir = openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            dst = ds + 1;
        } else {
            dstdir = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
            dst = rel;
        }
    }
    if (dstdir < 0)
        return terok_perr(err, negative_errno(), "cannot open the destination: %s",
                          strerror(errno));
    r = copy_entry(srcdir, base, dstdir, dst, 0);
    if (r < 0)
        return terok_perr(err, r, "copying '%s': %s", host_path, strerror(-r));
    return 0;
}

static int remove_tree_at(int dirfd_, const char *name, int depth)
{
    struct stat st;

    if (depth > 128)
        return -ELOOP;
    if (fstatat(dirfd_, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(dirfd_, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
            return -errno;
        d = fdopendir(fd);
        if (!d) {
            close(fd);
            return -errno;
        }
        while ((de = readdir(d)))
            if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                (void)remove_tree_at(dirfd(d), de->d_name, depth + 1);
        closedir(d);
        return unlinkat(dirfd_, name, AT_REMOVEDIR) < 0 ? -errno : 0;
    }
    return unlinkat(dirfd_, name, 0) < 0 ? -errno : 0;
}

int null_fs_remove(nullrt *n, const char *name)
{
    char fsdir[4096];
    _cleanup_close_ int fd = -EBADF;

    snprintf(fsdir, sizeof fsdir, "%s/fs", n->dir);
    fd = open(fsdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    return remove_tree_at(fd, name, 0);
}
