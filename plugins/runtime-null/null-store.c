/* SPDX-License-Identifier: Apache-2.0 */
/* null-store.c: runtime-null's persisted state: container documents written atomically under a
 * flock()ed lock file, the call log and the event log. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "null.h"
#include "util/macro.h"

int64_t null_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void null_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

char **null_strv_free(char **l)
{
    for (char **p = l; p && *p; p++)
        free(*p);
    free(l);
    return NULL;
}

int null_strv_push(char ***l, size_t *n, const char *s)
{
    char **t = realloc(*l, (*n + 2) * sizeof(char *));

    if (!t)
        return -ENOMEM;
    *l = t;
    t[*n] = strdup(s);
    if (!t[*n]) {
        t[*n] = NULL;
        return -ENOMEM;
    }
    t[++*n] = NULL;
    return 0;
}

const char *null_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int64_t null_int(json_object *o, const char *key, int64_t def)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return def;
    return json_object_get_int64(v);
}

bool null_name_is_valid(const char *name)
{
    if (!name || !*name || strlen(name) > 63)
        return false;
    for (const char *p = name; *p; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == name || (*p != '_' && *p != '.' && *p != '-')))
            return false;
    }
    return true;
}

int null_lock(nullrt *n, bool exclusive, terok_error *err)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof path, "%s/lock", n->dir);
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", path, strerror(errno));
    while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
        if (errno == EINTR)
            continue;
        int r = negative_errno();
        close(fd);
        return terok_perr(err, r, "cannot lock '%s': %s", path, strerror(-r));
    }
    return fd;
}

void null_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

static void doc_path(nullrt *n, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/containers/%s.json", n->dir, name);
}

int null_load(nullrt *n, const char *name, json_object **ret, terok_error *err)
{
    char path[4096];
    json_object *doc;

    if (!null_name_is_valid(name))
        return -ENOENT;
    doc_path(n, name, path, sizeof path);
    if (access(path, F_OK) < 0)
        return -ENOENT;
    doc = json_object_from_file(path);
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return terok_perr(err, -EBADMSG, "container document '%s' is unreadable: %s", path,
                          json_util_get_last_err() ? json_util_get_last_err() : "not an object");
    }
    *ret = doc;
    return 0;
}

int null_resolve(nullrt *n, const char *ref, json_object **ret, terok_error *err)
{
    char **names = NULL;
    json_object *found = NULL;
    size_t reflen;
    int r;

    if (!ref || !*ref)
        return terok_perr(err, -EINVAL, "no container given");
    r = null_load(n, ref, ret, err);
    if (r != -ENOENT)
        return r;
    /* An id or a unique id prefix, as podman accepts. */
    reflen = strlen(ref);
    r = null_names(n, &names, err);
    if (r < 0)
        return r;
    for (char **p = names; p && *p; p++) {
        json_object *doc = NULL;
        const char *id;

        if (null_load(n, *p, &doc, NULL) < 0)
            continue;
        id = null_str(doc, "id");
        if (id && strncmp(id, ref, reflen) == 0) {
            if (found) {
                json_object_put(doc);
                json_object_put(found);
                null_strv_free(names);
                return terok_perr(err, -EINVAL, "container id prefix '%s' is ambiguous", ref);
            }
            found = doc;
        } else {
            json_object_put(doc);
        }
    }
    null_strv_free(names);
    if (!found)
        return terok_perr(err, -ENOENT, "no such container '%s'", ref);
    *ret = found;
    return 0;
}

int null_save(nullrt *n, json_object *doc, terok_error *err)
{
    char path[4096], tmp[4096];
    const char *name = null_str(doc, "name"), *s;
    _cleanup_close_ int fd = -EBADF;
    size_t len, off = 0;

    if (!null_name_is_valid(name))
        return terok_perr(err, -EINVAL, "invalid container name '%s'", name ? name : "");
    doc_path(n, name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/containers/.%s.json.tmp", n->dir, name);
    s = json_object_to_json_string_ext(doc,
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    len = strlen(s);
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return terok_perr(err, negative_errno(), "cannot create '%s': %s", tmp, strerror(errno));
    while (off < len) {
        ssize_t k = write(fd, s + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int r = k < 0 ? negative_errno() : -EIO;
            (void)unlink(tmp);
            return terok_perr(err, r, "cannot write '%s': %s", tmp, strerror(-r));
        }
        off += (size_t)k;
    }
    if (rename(tmp, path) < 0) {
        int r = negative_errno();
        (void)unlink(tmp);
        return terok_perr(err, r, "cannot rename '%s': %s", tmp, strerror(-r));
    }
    return 0;
}

int null_delete(nullrt *n, const char *name, terok_error *err)
{
    char path[4096];

    doc_path(n, name, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT)
        return terok_perr(err, negative_errno(), "cannot remove '%s': %s", path, strerror(errno));
    (void)null_fs_remove(n, name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int null_names(nullrt *n, char ***ret, terok_error *err)
{
    char path[4096], **l = NULL;
    size_t count = 0;
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof path, "%s/containers", n->dir);
    d = opendir(path);
    if (!d)
        return terok_perr(err, negative_errno(), "cannot open '%s': %s", path, strerror(errno));
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        char name[256];

        if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), de->d_name);
        if (!null_name_is_valid(name))
            continue;
        if (null_strv_push(&l, &count, name) < 0) {
            closedir(d);
            null_strv_free(l);
            return terok_perr(err, -ENOMEM, "out of memory");
        }
    }
    closedir(d);
    if (count)
        qsort(l, count, sizeof(char *), cmp_str);
    *ret = l;
    return (int)count;
}

int64_t null_next_seq(nullrt *n)
{
    char path[4096], buf[32] = {0};
    int64_t seq = 1;
    FILE *f;

    snprintf(path, sizeof path, "%s/seq", n->dir);
    f = fopen(path, "re");
    if (f) {
        if (fgets(buf, sizeof buf, f))
            seq = strtoll(buf, NULL, 10) + 1;
        fclose(f);
    }
    if (seq < 1)
        seq = 1;
    f = fopen(path, "we");
    if (f) {
        fprintf(f, "%lld\n", (long long)seq);
        fclose(f);
    }
    return seq;
}

static void append_line(nullrt *n, const char *file, const char *line)
{
    char path[4096];
    _cleanup_close_ int fd = -EBADF;
    size_t len = strlen(line);

    snprintf(path, sizeof path, "%s/%s", n->dir, file);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    /* One write per line: O_APPEND keeps lines of concurrent processes whole. */
    (void)!write(fd, line, len);
}

void null_call(nullrt *n, const char *fmt, ...)
{
    _cleanup_free_ char *m = NULL, *line = NULL;
    va_list ap;

    if (!n->call_log)
        return;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    if (!m)
        return;
    /* One line per call, whatever the arguments hold. */
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (asprintf(&line, "%s\n", m) < 0)
        return;
    append_line(n, "calls.log", line);
}

void null_event(nullrt *n, json_object *doc, const char *action, int exit_code)
{
    json_object *ev = json_object_new_object(), *labels = NULL, *spec;
    _cleanup_free_ char *line = NULL;

    if (!ev)
        return;
    json_object_object_add(ev, "time_ns", json_object_new_int64(null_now_ns()));
    json_object_object_add(ev, "action", json_object_new_string(action));
    json_object_object_add(ev, "id",
                           json_object_new_string(null_str(doc, "id") ? null_str(doc, "id") : ""));
    json_object_object_add(
        ev, "name", json_object_new_string(null_str(doc, "name") ? null_str(doc, "name") : ""));
    json_object_object_add(ev, "exit_code", json_object_new_int(exit_code));
    if (json_object_object_get_ex(doc, "spec", &spec) &&
        json_object_object_get_ex(spec, "labels", &labels))
        json_object_object_add(ev, "labels", json_object_get(labels));
    if (asprintf(&line, "%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN)) >= 0)
        append_line(n, "events.log", line);
    json_object_put(ev);
}
