/* SPDX-License-Identifier: Apache-2.0 */
/* runtime-null.c: the runtime ops of runtime-null, a real fake: containers persist under the
 * plugin's state dir so separate CLI invocations see the same ones; their "processes" are the
 * deterministic scripts of null-script.c. Never prints, never runs anything. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "null.h"
#include "terok/runtime.h"
#include "util/macro.h"

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("call-log", TEROK_CONFIG_BOOL, "yes",
                     "Append one line per operation to calls.log in the plugin's state dir")
        TEROK_CONFIG_KEY("events-follow", TEROK_CONFIG_BOOL, "yes",
                         "events: keep following new events until the consumer stops"));

static inline void json_putp(json_object **o)
{
    if (*o)
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static inline void unlockp(int *fd)
{
    null_unlock(*fd);
    *fd = -1;
}
#define _cleanup_lock_ _cleanup_(unlockp)

static const char *s_or(const char *s, const char *def)
{
    return s ? s : def;
}

/* A struct the host hands us: at least its 1.0 size, and nothing set that we do not know. */
static int check_struct(const void *s, uint32_t given, size_t min, size_t known, const char *what,
                        terok_error *err)
{
    if (given < min)
        return terok_perr(err, -EINVAL, "%s: struct_size %u is below the 1.0 size %zu", what, given,
                          min);
    if (given > known && !terok_struct_tail_is_zero(s, given, known))
        return terok_perr(err, -E2BIG, "%s: fields newer than this plugin are set", what);
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];

    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

/* ------------------------------------------------------------------ open/close */

static int null_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                     terok_error *err)
{
    nullrt *n;
    const char *dir;
    char sub[4096];
    int v, r;

    if (!ret_state)
        return terok_perr(err, -EINVAL, "open: ret_state is NULL");
    dir = terok_plugin__host->state_dir(self);
    if (!dir || dir[0] != '/')
        return terok_perr(err, -EINVAL, "no usable state dir ('%s')", dir ? dir : "");
    n = calloc(1, sizeof(*n));
    if (!n || !(n->dir = strdup(dir))) {
        free(n);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    n->call_log = true;
    n->events_follow = true;
    n->poll_ms = 10;
    if (cfg) {
        if (terok_plugin__host->config_get_bool(cfg, "call-log", &v) == 0)
            n->call_log = v;
        if (terok_plugin__host->config_get_bool(cfg, "events-follow", &v) == 0)
            n->events_follow = v;
    }
    snprintf(sub, sizeof sub, "%s/containers", dir);
    r = mkdir_p(sub, 0700);
    if (r < 0 || chmod(dir, 0700) < 0) {
        r = r < 0 ? r : negative_errno();
        free(n->dir);
        free(n);
        return terok_perr(err, r, "cannot create state dir '%s': %s", dir, strerror(-r));
    }
    *ret_state = n;
    return 0;
}

static void null_close(void *state)
{
    nullrt *n = state;

    if (!n)
        return;
    free(n->dir);
    free(n);
}

/* ------------------------------------------------------------------ images */

static const struct fake_image {
    const char *ref;
    const char *id;
    const char *const *entrypoint;
    const char *const *cmd;
} images[] = {
    {"localhost/null:latest", "0000000000000000000000000000000000000000000000000000000000000001",
     (const char *const[]){"/bin/null-init", NULL}, (const char *const[]){"echo", "hello", NULL}},
    {"localhost/null-cmd:latest",
     "0000000000000000000000000000000000000000000000000000000000000002",
     (const char *const[]){NULL}, (const char *const[]){"echo", "hello from cmd", NULL}},
    {"localhost/null-sleep:latest",
     "0000000000000000000000000000000000000000000000000000000000000003",
     (const char *const[]){"/bin/null-init", NULL}, (const char *const[]){"sleep", NULL}},
    {"localhost/null-empty:latest",
     "0000000000000000000000000000000000000000000000000000000000000004",
     (const char *const[]){NULL}, (const char *const[]){NULL}},
};

/* Exact reference, or without ":latest", or without "localhost/". */
static const struct fake_image *find_image(const char *ref)
{
    char buf[512];

    if (!ref)
        return NULL;
    for (size_t i = 0; i < ELEMENTSOF(images); i++) {
        const char *r = images[i].ref;
        if (streq(ref, r) || streq(ref, images[i].id))
            return &images[i];
        snprintf(buf, sizeof buf, "localhost/%s", ref);
        if (streq(buf, r))
            return &images[i];
        if (!strchr(ref, ':')) {
            snprintf(buf, sizeof buf, "%s:latest", ref);
            if (streq(buf, r))
                return &images[i];
            snprintf(buf, sizeof buf, "localhost/%s:latest", ref);
            if (streq(buf, r))
                return &images[i];
        }
    }
    return NULL;
}

static int null_image_inspect(void *state, const char *image, terok_image_cb cb, void *userdata,
                              terok_error *err)
{
    nullrt *n = state;
    const struct fake_image *im;
    static const char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};

    if (!n || !image || !cb)
        return terok_perr(err, -EINVAL, "image_inspect: missing argument");
    null_call(n, "image_inspect %s", image);
    im = find_image(image);
    if (!im)
        return terok_perr(err, -ENOENT, "image '%s' not known", image);
    terok_image_info info = {
        .struct_size = sizeof info,
        .id = im->id,
        .entrypoint = im->entrypoint,
        .cmd = im->cmd,
        .env = env,
        .user = "",
        .workdir = "/",
    };
    (void)cb(userdata, &info);
    return 0;
}

/* ------------------------------------------------------------------ create */

static uint64_t fnv64(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static void make_id(const char *name, int64_t seq, char out[65])
{
    char key[128];

    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s/%lld/%d", name, (long long)seq, i);
        snprintf(out + 16 * i, 17, "%016llx",
                 (unsigned long long)fnv64(key, UINT64_C(14695981039346656037)));
    }
}

static int null_create(void *state, const terok_run_spec *spec, char **ret_id, terok_error *err)
{
    nullrt *n = state;
    _cleanup_lock_ int lock = -1;
    _cleanup_json_ json_object *doc = NULL, *old = NULL;
    script_result res;
    char id[65];
    int64_t seq;
    int r;

    if (!n || !spec || !ret_id)
        return terok_perr(err, -EINVAL, "create: missing argument");
    r = check_struct(spec, spec->struct_size, sizeof(terok_run_spec), sizeof(terok_run_spec),
                     "run spec", err);
    if (r < 0)
        return r;
    if (!null_name_is_valid(spec->name))
        return terok_perr(err, -EINVAL, "invalid container name '%s'", s_or(spec->name, ""));
    if (!spec->image || !*spec->image)
        return terok_perr(err, -EINVAL, "create '%s': no image", spec->name);
    if (!spec->argv || !spec->argv[0])
        return terok_perr(err, -EINVAL, "create '%s': empty argv", spec->name);
    for (size_t i = 0; spec->mounts && i < spec->n_mounts; i++)
        if (!spec->mounts[i].target || spec->mounts[i].target[0] != '/')
            return terok_perr(err, -EINVAL, "create '%s': mount %zu has no absolute target",
                              spec->name, i);

    lock = null_lock(n, true, err);
    if (lock < 0)
        return lock;
    null_call(n, "create %s %s", spec->name, spec->image);
    if (!find_image(spec->image))
        return terok_perr(err, -ENOENT, "image '%s' not known", spec->image);
    r = null_load(n, spec->name, &old, err);
    if (r == 0)
        return terok_perr(err, -EEXIST, "container name '%s' is already in use", spec->name);
    if (r != -ENOENT)
        return r;
    r = script_run(spec->argv, SCRIPT_CREATE, NULL, &res);
    if (r < 0) {
        r = terok_perr(err, r, "%s", res.fail_msg ? res.fail_msg : "create failed");
        free(res.fail_msg);
        return r;
    }

    seq = null_next_seq(n);
    make_id(spec->name, seq, id);
    doc = json_object_new_object();
    json_object_object_add(doc, "id", json_object_new_string(id));
    json_object_object_add(doc, "name", json_object_new_string(spec->name));
    json_object_object_add(doc, "image", json_object_new_string(spec->image));
    json_object_object_add(doc, "seq", json_object_new_int64(seq));
    json_object_object_add(doc, "state", json_object_new_string("created"));
    json_object_object_add(doc, "exit_code", json_object_new_int(0));
    json_object_object_add(doc, "created_at", json_object_new_int64(time(NULL)));
    json_object_object_add(doc, "started_at", json_object_new_int64(0));
    json_object_object_add(doc, "finished_at", json_object_new_int64(0));
    json_object_object_add(doc, "spec", null_spec_to_json(spec));
    json_object_object_add(doc, "log", json_object_new_array());
    json_object_object_add(doc, "copies", json_object_new_array());
    r = null_save(n, doc, err);
    if (r < 0)
        return r;
    null_event(n, doc, "create", -1);
    *ret_id = terok_plugin__host->strdup(id);
    if (!*ret_id) {
        (void)null_delete(n, spec->name, NULL);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------------ state changes */

static json_object *doc_spec(json_object *doc)
{
    json_object *s = NULL;

    json_object_object_get_ex(doc, "spec", &s);
    return s;
}

static bool doc_flag(json_object *doc, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(doc_spec(doc), key, &v) && json_object_get_boolean(v);
}

static const char *doc_state(json_object *doc)
{
    return s_or(null_str(doc, "state"), "unknown");
}

/* strv view of a JSON array of strings; the strings are borrowed from the array. */
static const char **array_view(json_object *a)
{
    size_t len = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    const char **v = calloc(len + 1, sizeof(char *));

    for (size_t i = 0; v && i < len; i++)
        v[i] = json_object_get_string(json_object_array_get_idx(a, i));
    return v;
}

static json_object *spec_get(json_object *doc, const char *key)
{
    json_object *v = NULL;

    json_object_object_get_ex(doc_spec(doc), key, &v);
    return v;
}

/* Mark exited; removes the container when the spec asked for it. Caller holds the lock and
 * saves unless *removed. */
static int set_exited(nullrt *n, json_object *doc, int code, bool *removed, terok_error *err)
{
    json_object_object_add(doc, "state", json_object_new_string("exited"));
    json_object_object_add(doc, "exit_code", json_object_new_int(code));
    json_object_object_add(doc, "pid", json_object_new_int(0));
    json_object_object_add(doc, "finished_at", json_object_new_int64(time(NULL)));
    null_event(n, doc, "died", code);
    *removed = false;
    if (doc_flag(doc, "remove_on_exit")) {
        null_event(n, doc, "remove", -1);
        *removed = true;
        return null_delete(n, null_str(doc, "name"), err);
    }
    return 0;
}

static int append_log_line(void *userdata, int stream, const char *text)
{
    json_object *log = userdata, *e = json_object_new_object();

    json_object_object_add(e, "stream", json_object_new_int(stream));
    json_object_object_add(e, "text", json_object_new_string(text));
    json_object_object_add(e, "time_ns", json_object_new_int64(null_now_ns()));
    json_object_array_add(log, e);
    return 0;
}

static int fs_root_of(nullrt *n, const char *name, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/fs/%s", n->dir, name) >= (int)len ? -ENAMETOOLONG : 0;
}

static int null_start(void *state, const char *ref, terok_error *err)
{
    nullrt *n = state;
    _cleanup_lock_ int lock = -1;
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ const char **argv = NULL, **env = NULL;
    json_object *log = NULL;
    script_result res;
    char fsroot[4096];
    bool removed;
    int r;

    if (!n || !ref)
        return terok_perr(err, -EINVAL, "start: missing argument");
    lock = null_lock(n, true, err);
    if (lock < 0)
        return lock;
    null_call(n, "start %s", ref);
    r = null_resolve(n, ref, &doc, err);
    if (r < 0)
        return r;
    if (streq(doc_state(doc), "running"))
        return 0;

    argv = array_view(spec_get(doc, "argv"));
    env = array_view(spec_get(doc, "env"));
    json_object_object_get_ex(doc, "log", &log);
    if (!argv || !env || !log)
        return terok_perr(err, -ENOMEM, "out of memory");
    fs_root_of(n, null_str(doc, "name"), fsroot, sizeof fsroot);
    script_io io = {
        .line = append_log_line, .userdata = log, .env = env, .fs_root = fsroot, .stdin_fd = -1};
    r = script_run(argv, SCRIPT_START, &io, &res);
    if (r < 0) {
        r = terok_perr(err, r, "%s", res.fail_msg ? res.fail_msg : "start failed");
        free(res.fail_msg);
        return r;
    }
    json_object_object_add(doc, "started_at", json_object_new_int64(time(NULL)));
    json_object_object_add(doc, "finished_at", json_object_new_int64(0));
    null_event(n, doc, "start", -1);
    if (res.sleeping) {
        json_object_object_add(doc, "state", json_object_new_string("running"));
        json_object_object_add(doc, "pid", json_object_new_int64(10000 + null_int(doc, "seq", 0)));
        return null_save(n, doc, err);
    }
    r = set_exited(n, doc, res.exit_code, &removed, err);
    if (r < 0 || removed)
        return r;
    return null_save(n, doc, err);
}

/* Stop/kill a running container: it "dies" with 128 + signo. */
static int signal_exit(nullrt *n, const char *op, const char *ref, int signo, bool must_run,
                       terok_error *err)
{
    _cleanup_lock_ int lock = -1;
    _cleanup_json_ json_object *doc = NULL;
    bool removed;
    int r;

    lock = null_lock(n, true, err);
    if (lock < 0)
        return lock;
    r = null_resolve(n, ref, &doc, err);
    if (r < 0)
        return r;
    if (!streq(doc_state(doc), "running")) {
        if (must_run)
            return terok_perr(err, -EINVAL, "container '%s' is not running", ref);
        return 0;
    }
    null_event(n, doc, op, -1);
    r = set_exited(n, doc, 128 + signo, &removed, err);
    if (r < 0 || removed)
        return r;
    return null_save(n, doc, err);
}

static int null_stop(void *state, const char *ref, int64_t timeout_s, terok_error *err)
{
    nullrt *n = state;

    if (!n || !ref)
        return terok_perr(err, -EINVAL, "stop: missing argument");
    null_call(n, "stop %s %lld", ref, (long long)timeout_s);
    return signal_exit(n, "stop", ref, SIGTERM, false, err);
}

static int null_kill(void *state, const char *ref, int signo, terok_error *err)
{
    nullrt *n = state;

    if (!n || !ref)
        return terok_perr(err, -EINVAL, "kill: missing argument");
    if (signo <= 0 || signo >= 65)
        return terok_perr(err, -EINVAL, "invalid signal %d", signo);
    null_call(n, "kill %s %d", ref, signo);
    return signal_exit(n, "kill", ref, signo, true, err);
}

static int null_remove(void *state, const char *ref, uint32_t flags, terok_error *err)
{
    nullrt *n = state;
    _cleanup_lock_ int lock = -1;
    _cleanup_json_ json_object *doc = NULL;
    int r;

    if (!n || !ref)
        return terok_perr(err, -EINVAL, "remove: missing argument");
    lock = null_lock(n, true, err);
    if (lock < 0)
        return lock;
    null_call(n, "remove %s%s", ref, flags & TEROK_REMOVE_FORCE ? " force" : "");
    r = null_resolve(n, ref, &doc, err);
    if (r < 0)
        return r;
    if (streq(doc_state(doc), "running")) {
        if (!(flags & TEROK_REMOVE_FORCE))
            return terok_perr(err, -EBUSY,
                              "container '%s' is running: stop it first or remove it with force",
                              ref);
        null_event(n, doc, "kill", -1);
        null_event(n, doc, "died", 128 + SIGKILL);
    }
    r = null_delete(n, null_str(doc, "name"), err);
    if (r < 0)
        return r;
    null_event(n, doc, "remove", -1);
    return 0;
}

/* ------------------------------------------------------------------ wait */

static int null_wait(void *state, const char *ref, int64_t timeout_ms, int *ret_exit_code,
                     terok_error *err)
{
    nullrt *n = state;
    int64_t deadline;
    bool logged = false;

    if (!n || !ref || !ret_exit_code)
        return terok_perr(err, -EINVAL, "wait: missing argument");
    deadline = timeout_ms < 0 ? INT64_MAX : null_now_ns() / 1000000 + timeout_ms;
    for (;;) {
        _cleanup_json_ json_object *doc = NULL;
        int lock = null_lock(n, false, err), r;

        if (lock < 0)
            return lock;
        if (!logged) {
            null_call(n, "wait %s", ref);
            logged = true;
        }
        r = null_resolve(n, ref, &doc, err);
        null_unlock(lock);
        if (r < 0)
            return r;
        if (streq(doc_state(doc), "exited")) {
            *ret_exit_code = (int)null_int(doc, "exit_code", 0);
            return 0;
        }
        if (null_now_ns() / 1000000 >= deadline)
            return terok_perr(err, -ETIMEDOUT, "timed out after %lld ms", (long long)timeout_ms);
        null_sleep_ms(n->poll_ms);
    }
}

/* ------------------------------------------------------------------ inspect / list */

static uint32_t state_code(const char *s)
{
    if (streq(s, "created"))
        return TEROK_CONTAINER_CREATED;
    if (streq(s, "running"))
        return TEROK_CONTAINER_RUNNING;
    if (streq(s, "exited"))
        return TEROK_CONTAINER_EXITED;
    return TEROK_CONTAINER_UNKNOWN;
}

static char **kv_strv(json_object *o)
{
    char **l = NULL;
    size_t n = 0;
    char buf[8192];

    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            snprintf(buf, sizeof buf, "%s=%s", k, s_or(json_object_get_string(v), ""));
            if (null_strv_push(&l, &n, buf) < 0)
                return null_strv_free(l);
        }
    }
    if (!l)
        l = calloc(1, sizeof(char *));
    return l;
}

static char **mounts_strv(json_object *a)
{
    char **l = NULL;
    size_t n = 0, len = a ? json_object_array_length(a) : 0;
    char buf[8192];

    for (size_t i = 0; i < len; i++) {
        json_object *m = json_object_array_get_idx(a, i), *ro = NULL;
        json_object_object_get_ex(m, "read_only", &ro);
        snprintf(buf, sizeof buf, "%s:%s%s", s_or(null_str(m, "source"), null_str(m, "type")),
                 s_or(null_str(m, "target"), ""), json_object_get_boolean(ro) ? ":ro" : "");
        if (null_strv_push(&l, &n, buf) < 0)
            return null_strv_free(l);
    }
    if (!l)
        l = calloc(1, sizeof(char *));
    return l;
}

static int call_with_info(json_object *doc, terok_container_cb cb, void *userdata)
{
    char **labels = kv_strv(spec_get(doc, "labels"));
    char **annotations = kv_strv(spec_get(doc, "annotations"));
    char **mounts = mounts_strv(spec_get(doc, "mounts"));
    const char *st = doc_state(doc);
    char status[64];
    int r;

    if (!labels || !annotations || !mounts) {
        r = -ENOMEM;
        goto out;
    }
    if (streq(st, "exited"))
        snprintf(status, sizeof status, "Exited (%lld)", (long long)null_int(doc, "exit_code", 0));
    else if (streq(st, "running"))
        snprintf(status, sizeof status, "Up");
    else
        snprintf(status, sizeof status, "Created");
    terok_container_info info = {
        .struct_size = sizeof info,
        .state = state_code(st),
        .id = null_str(doc, "id"),
        .name = null_str(doc, "name"),
        .image = null_str(doc, "image"),
        .status = status,
        .pid = null_int(doc, "pid", 0),
        .exit_code = (int32_t)null_int(doc, "exit_code", 0),
        .created_at = null_int(doc, "created_at", 0),
        .started_at = null_int(doc, "started_at", 0),
        .finished_at = null_int(doc, "finished_at", 0),
        .labels = (const char *const *)labels,
        .annotations = (const char *const *)annotations,
        .mounts = (const char *const *)mounts,
        .raw_json = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE),
    };
    r = cb(userdata, &info);
out:
    null_strv_free(labels);
    null_strv_free(annotations);
    null_strv_free(mounts);
    return r;
}

static int null_inspect(void *state, const char *ref, terok_container_cb cb, void *userdata,
                        terok_error *err)
{
    nullrt *n = state;
    _cleanup_json_ json_object *doc = NULL;
    int lock, r;

    if (!n || !ref || !cb)
        return terok_perr(err, -EINVAL, "inspect: missing argument");
    lock = null_lock(n, false, err);
    if (lock < 0)
        return lock;
    null_call(n, "inspect %s", ref);
    r = null_resolve(n, ref, &doc, err);
    null_unlock(lock); /* never call out while holding the lock */
    if (r < 0)
        return r;
    r = call_with_info(doc, cb, userdata);
    return r == -ENOMEM ? terok_perr(err, r, "out of memory") : 0;
}

static bool labels_match(json_object *labels, const char *const *want)
{
    for (const char *const *w = want; w && *w; w++) {
        const char *eq = strchr(*w, '=');
        size_t k = eq ? (size_t)(eq - *w) : strlen(*w);
        char key[1024];
        json_object *v;

        if (k >= sizeof key)
            return false;
        memcpy(key, *w, k);
        key[k] = 0;
        if (!labels || !json_object_object_get_ex(labels, key, &v))
            return false;
        if (eq && !streq(s_or(json_object_get_string(v), ""), eq + 1))
            return false;
    }
    return true;
}

static bool filter_match(const terok_list_filter *f, const char *name, json_object *labels)
{
    if (!f)
        return true;
    if (f->name_prefix && strncmp(s_or(name, ""), f->name_prefix, strlen(f->name_prefix)) != 0)
        return false;
    return labels_match(labels, f->labels);
}

static int null_list(void *state, const terok_list_filter *f, terok_container_cb cb, void *userdata,
                     terok_error *err)
{
    nullrt *n = state;
    char **names = NULL;
    json_object *docs;
    int lock, r;

    if (!n || !cb)
        return terok_perr(err, -EINVAL, "list: missing argument");
    if (f) {
        r = check_struct(f, f->struct_size, sizeof(*f), sizeof(*f), "list filter", err);
        if (r < 0)
            return r;
    }
    lock = null_lock(n, false, err);
    if (lock < 0)
        return lock;
    null_call(n, "list%s", f && (f->flags & TEROK_LIST_ALL) ? " all" : "");
    r = null_names(n, &names, err);
    docs = json_object_new_array();
    for (char **p = names; r >= 0 && p && *p; p++) {
        json_object *doc = NULL;

        if (null_load(n, *p, &doc, NULL) < 0)
            continue;
        if ((!f || !(f->flags & TEROK_LIST_ALL)) && !streq(doc_state(doc), "running")) {
            json_object_put(doc);
            continue;
        }
        if (!filter_match(f, null_str(doc, "name"), spec_get(doc, "labels"))) {
            json_object_put(doc);
            continue;
        }
        json_object_array_add(docs, doc);
    }
    null_unlock(lock);
    null_strv_free(names);
    if (r < 0) {
        json_object_put(docs);
        return r;
    }
    r = 0;
    for (size_t i = 0; i < json_object_array_length(docs); i++) {
        int k = call_with_info(json_object_array_get_idx(docs, i), cb, userdata);
        if (k == -ENOMEM)
            r = terok_perr(err, k, "out of memory");
        if (k != 0)
            break;
    }
    json_object_put(docs);
    return r;
}

/* ------------------------------------------------------------------ exec */

typedef struct exec_out {
    const terok_exec_spec *spec;
} exec_out;

static void write_all(int fd, const char *s, size_t len)
{
    while (fd >= 0 && len) {
        ssize_t k = write(fd, s, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        s += k;
        len -= (size_t)k;
    }
}

static int exec_line(void *userdata, int stream, const char *text)
{
    const terok_exec_spec *spec = ((exec_out *)userdata)->spec;
    size_t len = strlen(text);
    char *buf = malloc(len + 1);

    if (!buf)
        return -ENOMEM;
    memcpy(buf, text, len);
    buf[len] = '\n';
    if (spec->flags & TEROK_EXEC_TTY)
        stream = 1; /* one stream on a terminal */
    if (spec->output)
        (void)spec->output(spec->userdata, stream, buf, len + 1);
    else
        write_all(stream == 2 ? spec->stderr_fd : spec->stdout_fd, buf, len + 1);
    free(buf);
    return 0;
}

static int null_exec(void *state, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                     terok_error *err)
{
    nullrt *n = state;
    _cleanup_json_ json_object *doc = NULL;
    _cleanup_free_ const char **env = NULL;
    _cleanup_free_ char *joined = NULL;
    script_result res;
    char fsroot[4096];
    exec_out out;
    int lock, r;

    if (!n || !ref || !spec || !ret_exit_code)
        return terok_perr(err, -EINVAL, "exec: missing argument");
    r = check_struct(spec, spec->struct_size, sizeof(*spec), sizeof(*spec), "exec spec", err);
    if (r < 0)
        return r;
    if (!spec->argv || !spec->argv[0])
        return terok_perr(err, -EINVAL, "exec: empty command");
    lock = null_lock(n, false, err);
    if (lock < 0)
        return lock;
    joined = null_join(spec->argv, spec->argv ? SIZE_MAX : 0);
    null_call(n, "exec %s %s", ref, joined ? joined : "");
    r = null_resolve(n, ref, &doc, err);
    null_unlock(lock);
    if (r < 0)
        return r;
    if (!streq(doc_state(doc), "running"))
        return terok_perr(err, -EINVAL, "container '%s' is not running", ref);
    env = array_view(spec_get(doc, "env"));
    if (!env)
        return terok_perr(err, -ENOMEM, "out of memory");
    fs_root_of(n, null_str(doc, "name"), fsroot, sizeof fsroot);
    out.spec = spec;
    script_io io = {
        .line = exec_line,
        .userdata = &out,
        .env = env,
        .exec_env = spec->env,
        .fs_root = fsroot,
        .stdin_fd = (spec->flags & TEROK_EXEC_INTERACTIVE) ? spec->stdin_fd : -1,
    };
    r = script_run(spec->argv, SCRIPT_EXEC, &io, &res);
    free(res.fail_msg);
    if (r < 0)
        return terok_perr(err, r, "exec failed");
    *ret_exit_code = res.exit_code;
    return 0;
}

/* ------------------------------------------------------------------ logs */

static int emit_log(json_object *e, const terok_logs_opts *o, terok_output_cb cb, void *userdata)
{
    const char *text = s_or(null_str(e, "text"), "");
    int stream = (int)null_int(e, "stream", 1);
    char ts[64] = "";
    _cleanup_free_ char *buf = NULL;
    int len;

    if (o && (o->flags & TEROK_LOGS_TIMESTAMPS)) {
        int64_t ns = null_int(e, "time_ns", 0);
        time_t sec = (time_t)(ns / 1000000000);
        struct tm tm;
        char base[32];

        gmtime_r(&sec, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts, sizeof ts, "%s.%09lldZ ", base, (long long)(ns % 1000000000));
    }
    len = asprintf(&buf, "%s%s\n", ts, text);
    if (len < 0)
        return -ENOMEM;
    return cb(userdata, stream, buf, (size_t)len);
}

static int null_logs(void *state, const char *ref, const terok_logs_opts *o, terok_output_cb cb,
                     void *userdata, terok_error *err)
{
    nullrt *n = state;
    size_t next = 0;
    bool first = true;
    int r;

    if (!n || !ref || !cb)
        return terok_perr(err, -EINVAL, "logs: missing argument");
    if (o) {
        r = check_struct(o, o->struct_size, sizeof(*o), sizeof(*o), "logs options", err);
        if (r < 0)
            return r;
    }
    for (;;) {
        _cleanup_json_ json_object *doc = NULL;
        json_object *log = NULL;
        size_t len;
        int lock = null_lock(n, false, err);

        if (lock < 0)
            return lock;
        if (first)
            null_call(n, "logs %s", ref);
        r = null_resolve(n, ref, &doc, err);
        null_unlock(lock);
        if (r < 0)
            return first ? r : 0; /* removed while following: the stream just ends */
        json_object_object_get_ex(doc, "log", &log);
        len = log ? json_object_array_length(log) : 0;
        if (first && o && o->tail >= 0 && (size_t)o->tail < len)
            next = len - (size_t)o->tail;
        first = false;
        if (next > len) /* the container was recreated under the same name */
            next = len;
        for (; next < len; next++)
            if (emit_log(json_object_array_get_idx(log, next), o, cb, userdata) != 0)
                return 0;
        if (!o || !(o->flags & TEROK_LOGS_FOLLOW) || !streq(doc_state(doc), "running"))
            return 0;
        null_sleep_ms(n->poll_ms);
    }
}

/* ------------------------------------------------------------------ copy_in */

static int null_copy_in_op(void *state, const char *ref, const char *host_path,
                           const char *container_path, terok_error *err)
{
    nullrt *n = state;
    _cleanup_lock_ int lock = -1;
    _cleanup_json_ json_object *doc = NULL;
    json_object *copies = NULL, *c;
    int r;

    if (!n || !ref || !host_path || !container_path)
        return terok_perr(err, -EINVAL, "copy_in: missing argument");
    lock = null_lock(n, true, err);
    if (lock < 0)
        return lock;
    null_call(n, "copy_in %s %s %s", ref, host_path, container_path);
    r = null_resolve(n, ref, &doc, err);
    if (r < 0)
        return r;
    r = null_copy_in(n, null_str(doc, "name"), host_path, container_path, err);
    if (r < 0)
        return r;
    if (!json_object_object_get_ex(doc, "copies", &copies)) {
        copies = json_object_new_array();
        json_object_object_add(doc, "copies", copies);
    }
    c = json_object_new_object();
    json_object_object_add(c, "host_path", json_object_new_string(host_path));
    json_object_object_add(c, "container_path", json_object_new_string(container_path));
    json_object_array_add(copies, c);
    return null_save(n, doc, err);
}

/* ------------------------------------------------------------------ events */

static int event_from_line(const char *line, const terok_list_filter *f, terok_event_cb cb,
                           void *userdata, bool *stop)
{
    _cleanup_json_ json_object *ev = json_tokener_parse(line);
    json_object *labels = NULL;
    char **lv;
    int r;

    if (!ev || !json_object_is_type(ev, json_type_object))
        return 0; /* a torn line: skip */
    json_object_object_get_ex(ev, "labels", &labels);
    if (!filter_match(f, null_str(ev, "name"), labels))
        return 0;
    lv = kv_strv(labels);
    if (!lv)
        return -ENOMEM;
    terok_event e = {
        .struct_size = sizeof e,
        .exit_code = (int32_t)null_int(ev, "exit_code", -1),
        .action = s_or(null_str(ev, "action"), ""),
        .id = s_or(null_str(ev, "id"), ""),
        .name = s_or(null_str(ev, "name"), ""),
        .labels = (const char *const *)lv,
        .time_ns = null_int(ev, "time_ns", 0),
    };
    r = cb(userdata, &e);
    null_strv_free(lv);
    *stop = r != 0;
    return 0;
}

static int null_events(void *state, const terok_list_filter *f, terok_event_cb cb, void *userdata,
                       terok_error *err)
{
    nullrt *n = state;
    char path[4096];
    _cleanup_fclose_ FILE *fp = NULL;
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    bool stop = false;

    if (!n || !cb)
        return terok_perr(err, -EINVAL, "events: missing argument");
    null_call(n, "events");
    snprintf(path, sizeof path, "%s/events.log", n->dir);
    for (;;) {
        if (!fp) {
            int fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd < 0)
                return terok_perr(err, negative_errno(), "cannot open '%s': %s", path,
                                  strerror(errno));
            fp = fdopen(fd, "r");
            if (!fp) {
                close(fd);
                return terok_perr(err, -ENOMEM, "out of memory");
            }
        }
        long pos = ftell(fp);
        ssize_t k = getline(&line, &cap, fp);
        if (k > 0 && line[k - 1] == '\n') {
            int r = event_from_line(line, f, cb, userdata, &stop);
            if (r < 0)
                return terok_perr(err, r, "out of memory");
            if (stop)
                return 0;
            continue;
        }
        /* At the end (or a line still being written): follow, or stop here. */
        if (!n->events_follow)
            return 0;
        clearerr(fp);
        if (pos >= 0)
            (void)fseek(fp, pos, SEEK_SET);
        null_sleep_ms(n->poll_ms);
    }
}

/* ------------------------------------------------------------------ ctl */

static int null_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    nullrt *n = state;

    if (!n)
        return terok_perr(err, -EINVAL, "ctl: missing state");
    if (op == TEROK_RUNTIME_CTL_INFO) {
        terok_runtime_ctl_info *info = arg;
        if (!info || info->struct_size < sizeof(*info))
            return terok_perr(err, -EINVAL, "ctl INFO: bad argument");
        info->rootless = geteuid() != 0;
        info->api_version = "null-1";
        info->endpoint = n->dir;
        return 0;
    }
    return terok_perr(err, -EOPNOTSUPP, "ctl op %u is not supported by runtime-null", op);
}

static const terok_runtime_ops ops = {
    .struct_size = sizeof(terok_runtime_ops),
    .caps = TEROK_RUNTIME_CAP_ROOTLESS | TEROK_RUNTIME_CAP_EXEC | TEROK_RUNTIME_CAP_LOGS |
            TEROK_RUNTIME_CAP_EVENTS | TEROK_RUNTIME_CAP_COPY,
    .open = null_open,
    .close = null_close,
    .create = null_create,
    .start = null_start,
    .stop = null_stop,
    .kill = null_kill,
    .remove = null_remove,
    .wait = null_wait,
    .inspect = null_inspect,
    .list = null_list,
    .exec = null_exec,
    .logs = null_logs,
    .copy_in = null_copy_in_op,
    .image_inspect = null_image_inspect,
    .events = null_events,
    .ctl = null_ctl,
};

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_RUNTIME, "null", "0.1.0", &ops)
