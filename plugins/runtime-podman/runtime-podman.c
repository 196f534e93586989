/* SPDX-License-Identifier: Apache-2.0 */
/* runtime-podman.c: the runtime ops over Podman's libpod REST API (one libcurl handle per
 * state). Containers, images and events; exec and copy_in live in their own files. The plugin
 * executes the spec the core composed and never weakens it; it never prints and never exits. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "podman.h"
#include "util/strv.h"

TEROK_PLUGIN_CONFIG_KEYS(
    TEROK_CONFIG_KEY("socket", TEROK_CONFIG_STRING, "auto",
                     "Podman API socket: 'auto' (the user's or the system's service when it "
                     "answers, else a private one), 'private', or an absolute path")
        TEROK_CONFIG_KEY("hooks-dir", TEROK_CONFIG_PATH, "",
                         "OCI hooks directory handed to a private service (default "
                         "<state>/hooks.d, where the shield installs its hook)")
            TEROK_CONFIG_KEY("service-idle", TEROK_CONFIG_DURATION, "300s",
                             "A private service exits after this long without requests")
                TEROK_CONFIG_KEY("timeout", TEROK_CONFIG_DURATION, "120s",
                                 "Timeout of one API call (wait, logs -f, events and exec "
                                 "have none)")
                    TEROK_CONFIG_KEY("podman", TEROK_CONFIG_STRING, "podman",
                                     "The podman binary that runs a private service"));

#define DEFAULT_TIMEOUT_MS 120000
#define DEFAULT_IDLE_MS 300000
/* upstream watchdog: a stop must have ended `grace` after its timeout, else we kill; the
 * teardown after that must finish within `teardown`. */
#define STOP_GRACE_S 15
#define STOP_TEARDOWN_MS 60000

/* curl_global_init/cleanup are only thread-safe in libcurl builds with CURL_VERSION_THREADSAFE */
static pthread_mutex_t curl_global_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *cfg_str(const terok_config_section *cfg, const char *key, const char *def)
{
    const char *v = NULL;

    if (cfg && terok_plugin__host->config_get(cfg, key, &v) == 0 && !isempty(v))
        return v;
    return def;
}

static int64_t cfg_ms(const terok_config_section *cfg, const char *key, int64_t def)
{
    int64_t v = 0;

    if (cfg && terok_plugin__host->config_get_int(cfg, key, &v) == 0 && v > 0)
        return v;
    return def;
}

static void pm_close(void *state)
{
    podman *p = state;

    if (!p)
        return;
    if (p->curl) {
        curl_easy_cleanup(p->curl);
        pthread_mutex_lock(&curl_global_lock);
        curl_global_cleanup();
        pthread_mutex_unlock(&curl_global_lock);
    }
    free(p->socket);
    free(p->configured);
    free(p->private_dir);
    free(p->plugin_state);
    free(p->hooks_dir);
    free(p->podman_binary);
    free(p->api_version);
    free(p);
}

static int pm_open(terok_plugin *self, const terok_config_section *cfg, void **ret_state,
                   terok_error *err)
{
    const terok_host *h = terok_plugin__host;
    const char *state = h->state_dir(self), *run = h->runtime_dir(self);
    const char *sock = cfg_str(cfg, "socket", "auto"), *hooks = cfg_str(cfg, "hooks-dir", NULL);
    podman *p;
    int r;

    if (!ret_state)
        return terok_perr(err, -EINVAL, "open: no place for the state");
    if (!streq(sock, "auto") && !streq(sock, "private") && sock[0] != '/')
        return terok_perr(err, -EINVAL,
                          "socket '%s': expected 'auto', 'private' or an absolute path", sock);
    if (!(p = calloc(1, sizeof *p)))
        return terok_perr(err, -ENOMEM, "out of memory");
    pthread_mutex_lock(&curl_global_lock);
    r = curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_unlock(&curl_global_lock);
    if (r != CURLE_OK) {
        free(p);
        return terok_perr(err, -ENOMEM, "cannot initialise libcurl");
    }
    if (!(p->curl = curl_easy_init())) {
        pthread_mutex_lock(&curl_global_lock);
        curl_global_cleanup();
        pthread_mutex_unlock(&curl_global_lock);
        free(p);
        return terok_perr(err, -ENOMEM, "cannot initialise libcurl");
    }
    p->rootless = geteuid() != 0;
    p->idle_s = MAX(cfg_ms(cfg, "service-idle", DEFAULT_IDLE_MS) / 1000, (int64_t)1);
    p->timeout_ms = cfg_ms(cfg, "timeout", DEFAULT_TIMEOUT_MS);
    p->configured = strdup(sock);
    p->podman_binary = strdup(cfg_str(cfg, "podman", "podman"));
    if (!isempty(state) && asprintf(&p->plugin_state, "%s/runtime-podman", state) < 0)
        p->plugin_state = NULL;
    if (!isempty(run) && asprintf(&p->private_dir, "%s/runtime-podman", run) < 0)
        p->private_dir = NULL;
    if (hooks)
        p->hooks_dir = strdup(hooks);
    else if (!isempty(state) && asprintf(&p->hooks_dir, "%s/hooks.d", state) < 0)
        p->hooks_dir = NULL;
    if (!p->configured || !p->podman_binary || (!isempty(state) && !p->plugin_state) ||
        (!isempty(run) && !p->private_dir)) {
        pm_close(p);
        return terok_perr(err, -ENOMEM, "out of memory");
    }
    /* No connection yet: opening a state must stay cheap (plugins list, config check); the
     * first call finds or starts the service. */
    *ret_state = p;
    return 0;
}

static int bad_ref(const char *ref, terok_error *err)
{
    return terok_perr(err, -EINVAL, "container reference '%s' is not a valid name or id",
                      strna(ref));
}

/* A call with no body of interest: returns the HTTP status or a negative errno. */
static int simple(podman *p, const char *method, const char *path, int64_t timeout_ms,
                  api_response *rs, terok_error *err)
{
    api_request rq = API_REQUEST_INIT;
    int r;

    rq.method = method;
    rq.path = path;
    rq.timeout_ms = timeout_ms;
    r = api_call(p, &rq, rs, err);
    return r < 0 ? r : (int)rs->status;
}

/* Anonymous volumes under keep-id (docs/runtime-podman.md, "a writable workspace under keep-id"):
 * Podman 4.3 chowns a fresh anonymous volume to the owner of the image directory it covers
 * (libpod fixVolumePermissions), so a root-owned /workspace in the image becomes root-owned
 * in the container and the task (the operator's uid) cannot write to it; `U` is not honoured
 * for volumes. A volume created through the API with o=uid=0,gid=0 is owned by root of the
 * service's user namespace, which keep-id maps to the task's uid, and is never chowned again.
 * We create such a named volume per anonymous volume mount and remove it with the container. */
#define ANON_PREFIX "terok-anon-"
#define ANON_LABEL "io.terok.anonymous-volume"

/* keep-id with the task as the operator (no user, or the operator's numeric uid): the only case
 * where root of the service's user namespace is the task's uid. Any other user keeps the plain
 * anonymous volume (and Podman's chown of it). */
static bool task_is_operator_keep_id(const terok_run_spec *s)
{
    const char *u = s->userns;
    char *end = NULL;
    unsigned long uid;

    if (!u || !strneq(u, "keep-id", 7) || (u[7] != 0 && u[7] != ':') || strstr(u, "uid="))
        return false;
    if (isempty(s->user))
        return true;
    errno = 0;
    uid = strtoul(s->user, &end, 10);
    return !errno && end != s->user && (*end == 0 || *end == ':') && uid == (unsigned long)getuid();
}

static int volume_delete(podman *p, const char *name, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    int r;

    if (asprintf(&path, "/volumes/%s?force=true", name) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(p, "DELETE", path, 0, &rs, err);
    if (r == 204 || r == 404)
        return 0;
    return r < 0 ? r : api_error(&rs, err, "removing volume '%s'", name);
}

/* Leftovers of remove-on-exit containers (Podman removes those without us): our volumes older
 * than a minute that no container uses (a plain DELETE refuses a volume in use). The minute
 * spares a volume made just now for a container still being created; Podman 4.3's `until`
 * prune filter does not (a fresh volume was pruned), hence the client-side age. Best effort. */
static void anon_prune(podman *p)
{
    _cleanup_response_ api_response rs = {0};
    json_object *j;
    int64_t now = (int64_t)time(NULL);

    if (simple(p, "GET", "/volumes/json?filters=%7B%22label%22%3A%5B%22" ANON_LABEL "%22%5D%7D", 0,
               &rs, NULL) != 200)
        return;
    j = api_json(&rs);
    for (size_t i = 0;
         j && json_object_is_type(j, json_type_array) && i < json_object_array_length(j); i++) {
        json_object *v = json_object_array_get_idx(j, i);
        const char *name = json_str(v, "Name"), *created = json_str(v, "CreatedAt");
        int64_t t = created ? rfc3339_to_unix(created) : 0;
        _cleanup_response_ api_response d = {0};
        _cleanup_free_ char *path = NULL;

        if (!name || !strneq(name, ANON_PREFIX, sizeof ANON_PREFIX - 1) || !ref_is_valid(name) ||
            t <= 0 || now - t < 60 || asprintf(&path, "/volumes/%s", name) < 0)
            continue;
        if (simple(p, "DELETE", path, 0, &d, NULL) == 204)
            terok_plog(TEROK_LOG_DEBUG, "removed the leftover volume '%s'", name);
    }
    json_object_put(j);
}

static int anon_create(podman *p, const char *container, char **ret_name, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *name = NULL, *body = NULL;
    json_object *o, *label, *opts;
    const char *text;
    api_request rq = API_REQUEST_INIT;
    uint8_t rnd[16];
    int r;

    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return terok_perr(err, -errno, "getrandom: %s", strerror(errno));
    name = malloc(sizeof ANON_PREFIX + 2 * sizeof rnd);
    if (!name)
        return terok_perr(err, -ENOMEM, "out of memory");
    memcpy(name, ANON_PREFIX, sizeof ANON_PREFIX - 1);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(name + sizeof ANON_PREFIX - 1 + 2 * i, 3, "%02x", rnd[i]);
    o = json_object_new_object();
    label = json_object_new_object();
    opts = json_object_new_object();
    r = !o || !label || !opts;
    if (!r) {
        r |= json_object_object_add(label, ANON_LABEL, json_object_new_string(strempty(container)));
        r |= json_object_object_add(opts, "o", json_object_new_string("uid=0,gid=0"));
        r |= json_object_object_add(o, "Name", json_object_new_string(name));
        r |= json_object_object_add(o, "Label", label);
        label = NULL; /* o owns it (a failed add leaks at worst, never frees twice) */
        r |= json_object_object_add(o, "Options", opts);
        opts = NULL;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        r |= !text || !(body = strdup(text));
    }
    json_object_put(label);
    json_object_put(opts);
    json_object_put(o);
    if (r)
        return terok_perr(err, -ENOMEM, "out of memory");
    rq.method = "POST";
    rq.path = "/volumes/create";
    rq.json = body;
    if ((r = api_call(p, &rq, &rs, err)) < 0)
        return r;
    if (rs.status != 201)
        return api_error(&rs, err, "creating the workspace volume of container '%s'",
                         strna(container));
    *ret_name = TAKE_PTR(name);
    return 0;
}

static int pm_create(void *state, const terok_run_spec *spec, char **ret_id, terok_error *err)
{
    podman *p = state;
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *body = NULL;
    _cleanup_free_ terok_mount *ms = NULL;
    _cleanup_free_ char **anon = NULL;
    _cleanup_close_ int lock = -EBADF;
    size_t n_anon = 0;
    terok_run_spec copy;
    api_request rq = API_REQUEST_INIT;
    json_object *j, *warnings = NULL;
    const char *id;
    int r;

    /* Validate first: nothing (no volume) is created for a spec Podman would not get. */
    if ((r = spec_to_json(spec, &body, err)) < 0)
        return r;
    if (task_is_operator_keep_id(spec) && spec->n_mounts && spec->mounts) {
        for (size_t i = 0; i < spec->n_mounts; i++)
            n_anon += spec->mounts[i].type == TEROK_MOUNT_VOLUME && !spec->mounts[i].source;
    }
    if (n_anon) {
        ms = calloc(spec->n_mounts, sizeof *ms);
        anon = calloc(n_anon + 1, sizeof *anon);
        if (!ms || !anon)
            return terok_perr(err, -ENOMEM, "out of memory");
        anon_prune(p);
        n_anon = 0;
        for (size_t i = 0; i < spec->n_mounts; i++) {
            ms[i] = spec->mounts[i];
            if (ms[i].type != TEROK_MOUNT_VOLUME || ms[i].source)
                continue;
            if ((r = anon_create(p, spec->name, &anon[n_anon], err)) < 0)
                goto fail;
            ms[i].source = anon[n_anon++];
        }
        copy = *spec;
        copy.mounts = ms;
        spec = &copy;
        free(body);
        body = NULL;
        if ((r = spec_to_json(spec, &body, err)) < 0)
            goto fail;
    }

    rq.method = "POST";
    rq.path = "/containers/create";
    rq.json = body;
    lock = storage_lock(p); /* see storage_lock(): userns=auto creates deadlock Podman 4.3 */
    r = api_call(p, &rq, &rs, err);
    closep(&lock);
    lock = -EBADF;
    if (r < 0)
        goto fail;
    if (rs.status != 201) {
        r = api_error(&rs, err, "creating container '%s'", spec->name);
        goto fail;
    }
    j = api_json(&rs);
    id = json_str(j, "Id");
    if (!id) {
        json_object_put(j);
        r = terok_perr(err, -EPROTO, "creating container '%s': no id in the answer", spec->name);
        goto fail;
    }
    /* e.g. "Resource limits are not supported and ignored on cgroups V1 rootless systems" */
    if (json_object_object_get_ex(j, "Warnings", &warnings) &&
        json_object_is_type(warnings, json_type_array))
        for (size_t i = 0; i < json_object_array_length(warnings); i++)
            terok_plog(TEROK_LOG_WARNING, "container '%s': podman: %s", spec->name,
                       json_object_get_string(json_object_array_get_idx(warnings, i)));
    *ret_id = terok_plugin__host->strdup(id);
    json_object_put(j);
    for (size_t i = 0; anon && anon[i]; i++)
        free(anon[i]);
    return *ret_id ? 0 : terok_perr(err, -ENOMEM, "out of memory");

fail:
    for (size_t i = 0; anon && anon[i]; i++) {
        (void)volume_delete(p, anon[i], NULL);
        free(anon[i]);
    }
    return r;
}

static int pm_start(void *state, const char *ref, terok_error *err)
{
    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    return podman_start(state, ref, err);
}

static int pm_kill(void *state, const char *ref, int signo, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    int r;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (signo <= 0 || signo >= 65)
        return terok_perr(err, -EINVAL, "signal %d is not valid", signo);
    if (asprintf(&path, "/containers/%s/kill?signal=%d", ref, signo) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(state, "POST", path, 0, &rs, err);
    if (r == 204)
        return 0;
    return r < 0 ? r : api_error(&rs, err, "sending signal %d to container '%s'", signo, ref);
}

/* Wait for `condition` with a client-side timeout (libpod's wait has none). */
static int wait_for(podman *p, const char *ref, const char *condition, int64_t timeout_ms,
                    int *ret_code, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    char *end = NULL;
    long code;
    int r;

    if (asprintf(&path, "/containers/%s/wait?condition=%s&interval=10ms", ref, condition) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(p, "POST", path, timeout_ms < 0 ? -1 : MAX(timeout_ms, (int64_t)1), &rs, err);
    if (r == -ETIMEDOUT)
        return terok_perr(err, r, "container '%s' still running after %lld ms", ref,
                          (long long)timeout_ms);
    if (r < 0)
        return r;
    if (r != 200)
        return api_error(&rs, err, "waiting for container '%s'", ref);
    code = rs.body.data ? strtol(rs.body.data, &end, 10) : -1;
    if (!rs.body.data || end == rs.body.data || code < -1 || code > 255)
        return terok_perr(err, -EPROTO, "waiting for container '%s': unexpected answer '%.40s'",
                          ref, strempty(rs.body.data));
    *ret_code = (int)code;
    return 0;
}

static int pm_wait(void *state, const char *ref, int64_t timeout_ms, int *ret_exit_code,
                   terok_error *err)
{
    int code = -1, r;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if ((r = wait_for(state, ref, "exited", timeout_ms, &code, err)) < 0)
        return r;
    *ret_exit_code = code;
    return 0;
}

static int pm_stop(void *state, const char *ref, int64_t timeout_s, terok_error *err)
{
    podman *p = state;
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    int64_t budget;
    int r, code;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (timeout_s >= 0
            ? asprintf(&path, "/containers/%s/stop?timeout=%lld", ref, (long long)timeout_s) < 0
            : asprintf(&path, "/containers/%s/stop", ref) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    /* Podman applies the timeout itself; we give it that plus a grace, as upstream did. */
    budget = ((timeout_s >= 0 ? timeout_s : 10) + STOP_GRACE_S) * 1000;
    r = simple(p, "POST", path, budget, &rs, err);
    if (r == 204 || r == 304) /* 304: already stopped */
        return 0;
    if (r != -ETIMEDOUT)
        return r < 0 ? r : api_error(&rs, err, "stopping container '%s'", ref);

    terok_plog(TEROK_LOG_WARNING,
               "container '%s' did not stop within %lld s + %d s grace; killing it", ref,
               (long long)MAX(timeout_s, (int64_t)0), STOP_GRACE_S);
    r = pm_kill(p, ref, SIGKILL, NULL);
    if (r < 0 && r != -EBUSY && r != -ENOENT)
        return terok_perr(err, r,
                          "stopping container '%s': still running after the timeout "
                          "and SIGKILL failed",
                          ref);
    r = wait_for(p, ref, "exited", STOP_TEARDOWN_MS, &code, NULL);
    if (r == -ENOENT || r >= 0)
        return 0;
    return terok_perr(err, -ETIMEDOUT,
                      "stopping container '%s': killed after the stop timeout, but podman's "
                      "teardown did not finish within %d s",
                      ref, STOP_TEARDOWN_MS / 1000);
}

static bool removal_reports_error(json_object *j, const char **ret_msg)
{
    /* 200 with [{"Id":…,"Err":…}] can still carry a per-container failure */
    for (size_t i = 0;
         j && json_object_is_type(j, json_type_array) && i < json_object_array_length(j); i++) {
        const char *e = json_str(json_object_array_get_idx(j, i), "Err");
        if (!isempty(e)) {
            *ret_msg = e;
            return true;
        }
    }
    return false;
}

static int remove_container(void *state, const char *ref, uint32_t flags, terok_error *err)
{
    podman *p = state;
    _cleanup_response_ api_response rs = {0}, ex = {0};
    _cleanup_free_ char *path = NULL, *exists = NULL;
    _cleanup_close_ int lock = -EBADF;
    const char *msg = NULL;
    json_object *j = NULL;
    bool busy;
    int r;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (flags & ~(uint32_t)(TEROK_REMOVE_FORCE | TEROK_REMOVE_VOLUMES))
        return terok_perr(err, -EOPNOTSUPP, "remove: unknown flags 0x%x", flags);
    /* force = kill now (timeout=0), like `docker rm -f`; a graceful stop is stop()'s job */
    if (asprintf(&path, "/containers/%s?%s%s", ref,
                 flags & TEROK_REMOVE_FORCE ? "force=true&timeout=0" : "force=false",
                 flags & TEROK_REMOVE_VOLUMES ? "&v=true" : "") < 0 ||
        asprintf(&exists, "/containers/%s/exists", ref) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    lock = storage_lock(p);
    r = simple(p, "DELETE", path, 0, &rs, err);
    closep(&lock);
    lock = -EBADF;
    if (r < 0)
        return r;
    j = api_json(&rs);
    if (r == 200 && !removal_reports_error(j, &msg)) {
        json_object_put(j);
        return 0;
    }
    if (r != 200)
        msg = json_str(j, "message");
    /* Podman sometimes fails `unlinkat …/userdata/shm: device or resource busy` after it did
     * remove the container (MACHINE.md §2, §13.6): gone afterwards means removed. */
    busy = msg && strstr(msg, "device or resource busy");
    if (busy && simple(p, "GET", exists, 0, &ex, NULL) == 404) {
        terok_plog(TEROK_LOG_DEBUG, "container '%s' removed despite podman: %s", ref, msg);
        json_object_put(j);
        return 0;
    }
    if (r == 200) {
        r = terok_perr(err, -EIO, "removing container '%s': %s", ref, msg);
        json_object_put(j);
        return r;
    }
    json_object_put(j);
    return api_error(&rs, err, "removing container '%s'", ref);
}

/* Names of the volumes pm_create made for the container's anonymous mounts; NULL-terminated,
 * NULL when none (or the container is gone: removal then reports that). */
static char **anon_volumes_of(podman *p, const char *ref)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    json_object *j, *mounts = NULL;
    char **names = NULL;
    size_t n = 0;

    if (asprintf(&path, "/containers/%s/json", ref) < 0 ||
        simple(p, "GET", path, 0, &rs, NULL) != 200)
        return NULL;
    j = api_json(&rs);
    if (j && json_object_object_get_ex(j, "Mounts", &mounts) &&
        json_object_is_type(mounts, json_type_array)) {
        size_t len = json_object_array_length(mounts);
        names = calloc(len + 1, sizeof *names);
        for (size_t i = 0; names && i < len; i++) {
            const char *name = json_str(json_object_array_get_idx(mounts, i), "Name");
            if (name && strneq(name, ANON_PREFIX, sizeof ANON_PREFIX - 1) &&
                (names[n] = strdup(name)))
                n++;
        }
    }
    json_object_put(j);
    if (names && n == 0) {
        free(names);
        names = NULL;
    }
    return names;
}

static int pm_remove(void *state, const char *ref, uint32_t flags, terok_error *err)
{
    podman *p = state;
    _cleanup_strv_free_ char **anon = NULL;
    int r;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (flags & TEROK_REMOVE_VOLUMES)
        anon = anon_volumes_of(p, ref);
    r = remove_container(p, ref, flags, err);
    if (r < 0)
        return r;
    for (size_t i = 0; anon && anon[i]; i++) {
        int q = volume_delete(p, anon[i], NULL);
        if (q < 0)
            terok_plog(TEROK_LOG_WARNING, "container '%s' removed, its volume '%s' not: %s", ref,
                       anon[i], strerror(-q));
    }
    return 0;
}

static int pm_inspect(void *state, const char *ref, terok_container_cb cb, void *userdata,
                      terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    json_object *j;
    int r;

    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (asprintf(&path, "/containers/%s/json", ref) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(state, "GET", path, 0, &rs, err);
    if (r < 0)
        return r;
    if (r != 200)
        return api_error(&rs, err, "inspecting container '%s'", ref);
    if (!(j = api_json(&rs)))
        return terok_perr(err, -EPROTO, "inspecting container '%s': unreadable answer", ref);
    r = info_from_inspect(j, cb, userdata);
    json_object_put(j);
    if (r == -ENOMEM)
        return terok_perr(err, r, "out of memory");
    return r < 0 ? r : 0;
}

/* filters={"label":[…]} for list and events, escaped for a query string. */
static int label_filters(podman *p, const terok_list_filter *f, bool events, char **ret)
{
    json_object *o = json_object_new_object(), *l = json_object_new_array();
    int r = 0;

    if (!o || !l) {
        json_object_put(o);
        json_object_put(l);
        return -ENOMEM;
    }
    for (const char *const *s = f ? f->labels : NULL; s && *s; s++)
        r |= json_object_array_add(l, json_object_new_string(*s));
    json_object_object_add(o, "label", l);
    if (events) {
        json_object *t = json_object_new_array();
        r |= json_object_array_add(t, json_object_new_string("container"));
        json_object_object_add(o, "type", t);
    }
    *ret = r ? NULL : api_escape(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return *ret ? 0 : -ENOMEM;
}

static int pm_list(void *state, const terok_list_filter *f, terok_container_cb cb, void *userdata,
                   terok_error *err)
{
    podman *p = state;
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *filters = NULL, *path = NULL;
    const char *prefix = NULL;
    json_object *j;
    int r = 0;

    if (!cb)
        return terok_perr(err, -EINVAL, "list: no callback");
    if (f && (r = check_struct(f, f->struct_size, sizeof *f, "list filter", err)) < 0)
        return r;
    if (f && (f->flags & ~(uint32_t)TEROK_LIST_ALL))
        return terok_perr(err, -EOPNOTSUPP, "list: unknown flags 0x%x", f->flags);
    prefix = f ? f->name_prefix : NULL;
    if (label_filters(p, f, false, &filters) < 0 ||
        asprintf(&path, "/containers/json?all=%s&filters=%s",
                 f && (f->flags & TEROK_LIST_ALL) ? "true" : "false", filters) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(p, "GET", path, 0, &rs, err);
    if (r < 0)
        return r;
    if (r != 200)
        return api_error(&rs, err, "listing containers");
    j = api_json(&rs);
    if (!j || !json_object_is_type(j, json_type_array)) {
        json_object_put(j);
        return terok_perr(err, -EPROTO, "listing containers: unreadable answer");
    }
    r = 0;
    for (size_t i = 0; r == 0 && i < json_object_array_length(j); i++) {
        json_object *c = json_object_array_get_idx(j, i), *names = NULL;
        const char *name = NULL;

        if (json_object_object_get_ex(c, "Names", &names) &&
            json_object_is_type(names, json_type_array) && json_object_array_length(names))
            name = json_object_get_string(json_object_array_get_idx(names, 0));
        if (prefix && (!name || !strneq(name, prefix, strlen(prefix))))
            continue;
        r = info_from_list_entry(c, cb, userdata);
    }
    json_object_put(j);
    if (r == -ENOMEM)
        return terok_perr(err, r, "out of memory");
    return r < 0 ? r : 0;
}

typedef struct logs_ctx {
    demux dm;
    terok_output_cb cb;
    void *userdata;
} logs_ctx;

static int logs_emit(void *userdata, int stream, const void *data, size_t len)
{
    logs_ctx *c = userdata;
    return c->cb(c->userdata, stream, data, len);
}

static int logs_sink(void *userdata, const char *data, size_t len)
{
    return demux_feed(&((logs_ctx *)userdata)->dm, data, len);
}

static int pm_logs(void *state, const char *ref, const terok_logs_opts *o, terok_output_cb cb,
                   void *userdata, terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    api_request rq = API_REQUEST_INIT;
    logs_ctx ctx = {.cb = cb, .userdata = userdata};
    uint32_t flags = o ? o->flags : 0;
    char tail[32] = "all";
    int r;

    if (!cb)
        return terok_perr(err, -EINVAL, "logs: no callback");
    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    if (o && (r = check_struct(o, o->struct_size, sizeof *o, "logs options", err)) < 0)
        return r;
    if (flags & ~(uint32_t)(TEROK_LOGS_FOLLOW | TEROK_LOGS_TIMESTAMPS))
        return terok_perr(err, -EOPNOTSUPP, "logs: unknown flags 0x%x", flags);
    if (o && o->tail >= 0)
        snprintf(tail, sizeof tail, "%lld", (long long)o->tail);
    if (asprintf(&path,
                 "/containers/%s/logs?stdout=true&stderr=true&follow=%s&timestamps=%s&tail=%s", ref,
                 flags & TEROK_LOGS_FOLLOW ? "true" : "false",
                 flags & TEROK_LOGS_TIMESTAMPS ? "true" : "false", tail) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    /* libpod frames logs even for TTY containers (stream 1) */
    ctx.dm = (demux){.emit = logs_emit, .userdata = &ctx};
    rq.method = "GET";
    rq.path = path;
    rq.timeout_ms = flags & TEROK_LOGS_FOLLOW ? -1 : 0;
    rq.sink = logs_sink;
    rq.sink_data = &ctx;
    if ((r = api_call(state, &rq, &rs, err)) < 0)
        return r;
    if (rs.status != 200)
        return api_error(&rs, err, "reading logs of container '%s'", ref);
    return 0;
}

static int pm_image_inspect(void *state, const char *image, terok_image_cb cb, void *userdata,
                            terok_error *err)
{
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *path = NULL;
    json_object *j;
    int r;

    if (!cb)
        return terok_perr(err, -EINVAL, "image_inspect: no callback");
    if (!image_ref_is_valid(image))
        return terok_perr(err, -EINVAL, "image reference '%s' is not valid", strna(image));
    if (asprintf(&path, "/images/%s/json", image) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    r = simple(state, "GET", path, 0, &rs, err);
    if (r < 0)
        return r;
    if (r == 404)
        return terok_perr(err, -ENOENT, "image '%s' not found locally (terok-sandbox never pulls)",
                          image);
    if (r != 200)
        return api_error(&rs, err, "inspecting image '%s'", image);
    if (!(j = api_json(&rs)))
        return terok_perr(err, -EPROTO, "inspecting image '%s': unreadable answer", image);
    r = image_info_emit(j, cb, userdata);
    json_object_put(j);
    if (r == -ENOMEM)
        return terok_perr(err, r, "out of memory");
    return r < 0 ? r : 0;
}

typedef struct events_ctx {
    linebuf lines;
    const char *prefix;
    terok_event_cb cb;
    void *userdata;
    int r;
} events_ctx;

static int events_line(void *userdata, char *line, size_t len)
{
    events_ctx *c = userdata;
    json_object *j = json_tokener_parse(line);
    const char *name;
    json_object *actor = NULL, *attrs = NULL;

    if (!j)
        return 0; /* not ours to judge; skip a line we cannot read */
    json_object_object_get_ex(j, "Actor", &actor);
    json_object_object_get_ex(actor, "Attributes", &attrs);
    name = json_str(attrs, "name");
    if (!c->prefix || (name && strneq(name, c->prefix, strlen(c->prefix))))
        c->r = event_emit(j, c->cb, c->userdata);
    json_object_put(j);
    return c->r;
}

static int events_sink(void *userdata, const char *data, size_t len)
{
    events_ctx *c = userdata;
    int r = lines_feed(&c->lines, data, len);
    if (r < 0)
        c->r = r;
    return r;
}

static int pm_events(void *state, const terok_list_filter *f, terok_event_cb cb, void *userdata,
                     terok_error *err)
{
    podman *p = state;
    _cleanup_response_ api_response rs = {0};
    _cleanup_free_ char *filters = NULL, *path = NULL;
    api_request rq = API_REQUEST_INIT;
    events_ctx ctx = {.cb = cb, .userdata = userdata};
    int r;

    if (!cb)
        return terok_perr(err, -EINVAL, "events: no callback");
    if (f && (r = check_struct(f, f->struct_size, sizeof *f, "event filter", err)) < 0)
        return r;
    ctx.prefix = f ? f->name_prefix : NULL;
    ctx.lines = (linebuf){.emit = events_line, .userdata = &ctx};
    if (label_filters(p, f, true, &filters) < 0 ||
        asprintf(&path, "/events?stream=true&filters=%s", filters) < 0)
        return terok_perr(err, -ENOMEM, "out of memory");
    rq.method = "GET";
    rq.path = path;
    rq.timeout_ms = -1;
    rq.sink = events_sink;
    rq.sink_data = &ctx;
    r = api_call(p, &rq, &rs, err);
    linebuf_free(&ctx.lines);
    if (r < 0)
        return r;
    if (rs.status != 200)
        return api_error(&rs, err, "reading events");
    if (ctx.r < 0)
        return terok_perr(err, ctx.r, "reading events: %s", strerror(-ctx.r));
    if (rs.stopped)
        return 0;
    p->broken = true;
    return terok_perr(err, -ECONNRESET, "podman service at '%s' ended the event stream", p->socket);
}

static int pm_exec(void *state, const char *ref, const terok_exec_spec *spec, int *ret_exit_code,
                   terok_error *err)
{
    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    return podman_exec(state, ref, spec, ret_exit_code, err);
}

static int pm_copy_in(void *state, const char *ref, const char *host_path,
                      const char *container_path, terok_error *err)
{
    if (!ref_is_valid(ref))
        return bad_ref(ref, err);
    return podman_copy_in(state, ref, host_path, container_path, err);
}

static int pm_ctl(void *state, uint32_t op, void *arg, terok_error *err)
{
    podman *p = state;
    terok_runtime_ctl_info *info = arg;
    int r;

    if (op == TEROK_RUNTIME_CTL_START_ATTACHED)
        return podman_start_attached(p, arg, err);
    if (op != TEROK_RUNTIME_CTL_INFO)
        return terok_perr(err, -EOPNOTSUPP, "ctl op %u is not supported", op);
    if (!info || info->struct_size < sizeof *info)
        return terok_perr(err, -EINVAL, "ctl info: struct too small");
    if ((!p->socket || p->broken) && (r = service_connect(p, err)) < 0)
        return r;
    info->rootless = p->rootless;
    info->api_version = p->api_version;
    info->endpoint = p->socket;
    return 0;
}

static terok_runtime_ops ops = {
    .struct_size = sizeof(terok_runtime_ops),
    .caps = TEROK_RUNTIME_CAP_EXEC | TEROK_RUNTIME_CAP_LOGS | TEROK_RUNTIME_CAP_EVENTS |
            TEROK_RUNTIME_CAP_COPY | TEROK_RUNTIME_CAP_HOOKS | TEROK_RUNTIME_CAP_TTY,
    .open = pm_open,
    .close = pm_close,
    .create = pm_create,
    .start = pm_start,
    .stop = pm_stop,
    .kill = pm_kill,
    .remove = pm_remove,
    .wait = pm_wait,
    .inspect = pm_inspect,
    .list = pm_list,
    .exec = pm_exec,
    .logs = pm_logs,
    .copy_in = pm_copy_in,
    .image_inspect = pm_image_inspect,
    .events = pm_events,
    .ctl = pm_ctl,
};

/* Rootless is a property of who loads us: set before the host copies the table. */
__attribute__((constructor)) static void caps_init(void)
{
    if (geteuid() != 0)
        ops.caps |= TEROK_RUNTIME_CAP_ROOTLESS;
}

TEROK_PLUGIN_DEFINE(TEROK_PLUGIN_KIND_RUNTIME, "podman", "0.1.0", &ops)
