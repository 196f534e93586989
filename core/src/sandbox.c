/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox.c: the container lifecycle (DESIGN §7): open config + registry, create (validate,
 * compose, record, create through the runtime, roll back on failure), start/stop/rm/wait/exec/
 * logs, and the store+runtime views behind ps and inspect. Only terok-managed containers are
 * touched. Never prints. */
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"
#include "terok-build-config.h"
#include "runtime.h"
#include "sandbox.h"
#include "clearance/clearance-client.h"
#include "shield.h"
#include "spec.h"
#include "wiring.h"
#include "util/strv.h"

/* ------------------------------------------------------------------ open/close */

int sandbox_open(const char *config_file, sandbox **ret, terok_error *err)
{
    const config_problem *probs = NULL;
    sandbox *s;
    int r, n;

    s = calloc(1, sizeof(*s));
    if (!s)
        return terok_error_set(err, -ENOMEM, "out of memory");
    r = paths_resolve(&s->paths, err);
    if (r < 0)
        goto fail;
    if (config_file && !(s->config_file = strdup(config_file))) {
        r = terok_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    r = config_load(config_file, s->paths.system_config_dir, s->paths.user_config_dir, &s->config,
                    err);
    if (r < 0)
        goto fail;
    n = config_validate(s->config);
    if (n < 0) {
        r = terok_error_set(err, n, "cannot validate the configuration: %s", strerror(-n));
        goto fail;
    }
    size_t np = n > 0 ? config_problems(s->config, &probs) : 0;
    if (np > 0) {
        const config_problem *p = &probs[0];
        /* name the first error, not a warning that sorts before it */
        for (size_t i = 0; i < np; i++)
            if (!probs[i].warning) {
                p = &probs[i];
                break;
            }
        char more[96] = "";

        if (n > 1)
            snprintf(more, sizeof more, " (and %d more problem%s)", n - 1, n > 2 ? "s" : "");
        if (p->file)
            r = terok_error_set(err, -EBADMSG,
                                "invalid configuration: %s:%u: %s%s — run 'terok-sandbox config "
                                "check'",
                                p->file, p->line, p->message, more);
        else
            r = terok_error_set(err, -EBADMSG,
                                "invalid configuration: %s%s — run 'terok-sandbox config check'",
                                p->message, more);
        goto fail;
    }
    r = registry_new(s->config, &s->paths, &s->registry, err);
    if (r < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    sandbox_free(s);
    return r;
}

sandbox *sandbox_free(sandbox *s)
{
    if (!s)
        return NULL;
    store_close(s->store);
    registry_free(s->registry);
    config_free(s->config);
    paths_done(&s->paths);
    free(s->config_file);
    free(s);
    return NULL;
}

int sandbox_store(sandbox *s, store **ret, terok_error *err)
{
    int r;

    if (!s->store) {
        r = store_open(s->paths.state_dir, &s->store, err);
        if (r < 0)
            return r;
    }
    *ret = s->store;
    return 0;
}

const char *container_state_name(uint32_t state)
{
    static const char *const names[] = {
        [TEROK_CONTAINER_UNKNOWN] = "unknown",   [TEROK_CONTAINER_CREATED] = "created",
        [TEROK_CONTAINER_RUNNING] = "running",   [TEROK_CONTAINER_PAUSED] = "paused",
        [TEROK_CONTAINER_STOPPED] = "stopped",   [TEROK_CONTAINER_EXITED] = "exited",
        [TEROK_CONTAINER_REMOVING] = "removing",
    };

    return state < ELEMENTSOF(names) && names[state] ? names[state] : "unknown";
}

/* ------------------------------------------------------------------ requests and notes */

void run_request_init(run_request *r)
{
    *r = (run_request){
        .pids_limit = -1,
        .memory_bytes = -1,
        .cpu_millis = -1,
        .read_only = -1,
        .no_new_privs = -1,
        .cap_drop_all = -1,
        .default_seccomp = -1,
    };
}

void run_request_done(run_request *r)
{
    if (!r)
        return;
    strv_free(r->command);
    strv_free(r->entrypoint);
    strv_free(r->env);
    strv_free(r->labels);
    strv_free(r->annotations);
    strv_free(r->cap_add);
    strv_free(r->devices);
    strv_free(r->gpus);
    strv_free(r->routes);
    strv_free(r->repos);
    strv_free(r->shield_allow);
    strv_free(r->shield_deny);
    for (size_t i = 0; i < r->n_volumes; i++) {
        free(r->volumes[i].source);
        free(r->volumes[i].target);
    }
    free(r->volumes);
    run_request_init(r);
}

void sandbox_notes_done(sandbox_notes *n)
{
    if (!n)
        return;
    n->warnings = strv_free(n->warnings);
}

/* ------------------------------------------------------------------ create */

typedef struct image_copy {
    char **entrypoint;
    char **cmd;
    bool oom;
} image_copy;

static int image_cb(void *userdata, const terok_image_info *info)
{
    image_copy *ic = userdata;

    ic->entrypoint = strv_copy(info->entrypoint);
    ic->cmd = strv_copy(info->cmd);
    ic->oom = !ic->entrypoint || !ic->cmd;
    return 0;
}

static int generate_name(store *st, char **ret, terok_error *err)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        container_rec rec = {0};
        uint32_t rnd;
        char *name = NULL;

        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
            return terok_error_set(err, negative_errno(), "getrandom: %s", strerror(errno));
        if (asprintf(&name, "terok-%08x", rnd) < 0)
            return terok_error_set(err, -ENOMEM, "out of memory");
        if (store_container_get(st, name, &rec, NULL) == -ENOENT) {
            *ret = name;
            return 0;
        }
        container_rec_done(&rec);
        free(name);
    }
    return terok_error_set(err, -EEXIST, "cannot find a free container name");
}

/* terok-init on this host: $TEROK_SANDBOX_INIT (development and tests), the installed
 * libexec copy, or the build tree next to this binary. NULL when there is none. */
static char *find_init(void)
{
    const char *env = getenv("TEROK_SANDBOX_INIT");
    char self[PATH_MAX], *p = NULL;
    ssize_t n;

    if (env && env[0] == '/' && access(env, X_OK) == 0)
        return strdup(env);
    if (access(TEROK_LIBEXEC_DIR "/terok-init", X_OK) == 0)
        return strdup(TEROK_LIBEXEC_DIR "/terok-init");
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = 0;
    if (asprintf(&p, "%s/init/terok-init", self) < 0)
        return NULL;
    if (access(p, X_OK) == 0)
        return p;
    free(p);
    return NULL;
}

static int load_policy(sandbox *s, runtime *rt, spec_policy *pol, terok_error *err)
{
    terok_runtime_ctl_info info = {.struct_size = sizeof info};
    int r = spec_policy_load(s->config, pol, err);

    if (r < 0)
        return r;
    /* Every container runs under terok-init (reaping, signals, the service bridges). */
    pol->init_binary = find_init();
    if (!pol->init_binary && !streq(rt->plugin->name, "null")) {
        spec_policy_done(pol);
        return terok_error_set(err, -ENOENT,
                               "terok-init was not found (looked in '%s' and next to this "
                               "binary); reinstall terok-sandbox",
                               TEROK_LIBEXEC_DIR);
    }
    /* A user namespace by default: keep-id rootless (the task's files stay the operator's),
     * auto rootful (each container its own range of subordinate ids). */
    if (runtime_ctl(rt, TEROK_RUNTIME_CTL_INFO, &info, NULL) >= 0 &&
        !streq(rt->plugin->name, "null")) {
        pol->userns_default = strdup(info.rootless ? "keep-id" : "auto");
        if (!pol->userns_default) {
            spec_policy_done(pol);
            return terok_error_set(err, -ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* Profiles from "[shield] profiles" (comma or space separated); NULL when the key is unset, so the
 * backend uses its default-profiles. */
static int config_profiles(const config *cfg, char ***ret)
{
    const char *v = config_get(cfg, "shield", "profiles");
    const char *origin = config_origin(cfg, "shield", "profiles");
    char **l = NULL;

    *ret = NULL;
    if (!v || !origin || streq(origin, "default"))
        return 0;
    if (!(l = calloc(1, sizeof(char *))))
        return -ENOMEM;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ", \t");

        if (n > 0 && strv_consume(&l, strndup(p, n)) < 0) {
            strv_free(l);
            return -ENOMEM;
        }
        p += n;
        p += strspn(p, ", \t");
    }
    *ret = l;
    return 0;
}

/* Sealed mode: every volume but the live ones is copied into the created container (the host
 * directory is never mounted, so nothing the container writes reaches it). A directory's
 * content lands in TARGET (made when missing), a file becomes TARGET. */
static int copy_volumes_in(runtime *rt, const run_request *req, const char *name, terok_error *err)
{
    for (size_t i = 0; i < req->n_volumes; i++) {
        const volume_req *v = &req->volumes[i];
        _cleanup_free_ char *dest = NULL;
        struct stat st;
        int r;

        if (v->live)
            continue;
        if (stat(v->source, &st) < 0)
            return terok_error_set(err, negative_errno(), "sealed volume source '%s': %s",
                                   v->source, strerror(errno));
        if (asprintf(&dest, "%s%s", v->target, S_ISDIR(st.st_mode) ? "/" : "") < 0)
            return terok_error_set(err, -ENOMEM, "out of memory");
        r = runtime_copy_in(rt, name, v->source, dest, err);
        if (r < 0) {
            (void)terok_error_prefix(err, "sealed container '%s': volume '%s:%s'", name, v->source,
                                     v->target);
            return r;
        }
    }
    return 0;
}

/* Prepare the container's shield: fail closed, the run is refused when this fails. */
static int shield_setup(sandbox *s, runtime *rt, const run_request *req, const char *name,
                        composed_spec *cs, terok_error *err)
{
    terok_runtime_ctl_info info = {.struct_size = sizeof info};
    terok_shield_prepared out = {0};
    _cleanup_strv_free_ char **profiles = NULL;
    const char *resolver = config_get(s->config, "shield", "dns-resolver");
    shield sh;
    int r;

    r = shield_open(s->registry, TEROK_SHIELD_CAP_EGRESS, &sh, err);
    if (r < 0)
        goto refuse;
    if (!(rt->plugin->ops.runtime.caps & TEROK_RUNTIME_CAP_HOOKS)) {
        r = terok_error_set(err, -EOPNOTSUPP,
                            "the '%s' runtime cannot run OCI hooks, so the shield could never "
                            "be applied",
                            rt->plugin->name);
        goto refuse;
    }
    if (config_profiles(s->config, &profiles) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    terok_shield_policy pol = {
        .struct_size = sizeof pol,
        .container = name,
        .profiles = (const char *const *)profiles,
        .allow = (const char *const *)req->shield_allow,
        .deny = (const char *const *)req->shield_deny,
        .dns_resolver = isempty(resolver) ? NULL : resolver,
        .rootless = runtime_ctl(rt, TEROK_RUNTIME_CTL_INFO, &info, NULL) >= 0 ? info.rootless
                                                                              : geteuid() != 0,
    };
    r = shield_prepare(&sh, &pol, &out, err);
    if (r >= 0)
        r = spec_add_shield(cs, out.bundle_path, out.annotations, out.env, err);
    shield_prepared_done(&out);
    if (r < 0) {
        (void)shield_cleanup(&sh, name, NULL);
        (void)shield_forget(&sh, name, NULL);
        goto refuse;
    }
    return 0;
refuse:
    return terok_error_prefix(err,
                              "refusing to run '%s' without its egress shield (pass --no-shield, "
                              "or set [shield] backend = none, to run it unshielded knowingly)",
                              name);
}

/* Undo shield_setup: the bundle goes with the container. */
static void shield_teardown(sandbox *s, const char *name)
{
    shield sh;

    if (shield_open(s->registry, 0, &sh, NULL) < 0)
        return;
    (void)shield_cleanup(&sh, name, NULL);
    (void)shield_forget(&sh, name, NULL);
}

int sandbox_create(sandbox *s, const run_request *req, sandbox_notes *notes, char **ret_name,
                   terok_error *err)
{
    _cleanup_(composed_spec_freep) composed_spec *cs = NULL;
    _cleanup_free_ char *name = NULL, *id = NULL;
    spec_policy pol = {0};
    image_copy img = {0};
    container_rec rec = {0};
    wiring w = {0};
    store *st = NULL;
    bool shielded = false;
    runtime rt;
    int r;

    if (!s || !req || !ret_name)
        return terok_error_set(err, -EINVAL, "sandbox_create: missing argument");

    /* 1. Everything checked before anything exists. */
    r = runtime_get(s->registry, 0, &rt, err);
    if (r < 0)
        return r;
    r = load_policy(s, &rt, &pol, err);
    if (r < 0)
        return r;
    r = spec_validate(req, &pol, err);
    if (r < 0)
        goto out;

    /* 2. Name, image config and composed spec: still nothing written. */
    r = sandbox_store(s, &st, err);
    if (r < 0)
        goto out;
    if (req->name) {
        name = strdup(req->name);
        if (!name) {
            r = terok_error_set(err, -ENOMEM, "out of memory");
            goto out;
        }
        if (store_container_get(st, name, &rec, NULL) == 0) {
            container_rec_done(&rec);
            r = terok_error_set(err, -EEXIST, "container '%s' already exists", name);
            goto out;
        }
    } else {
        r = generate_name(st, &name, err);
        if (r < 0)
            goto out;
    }
    r = runtime_image_inspect(&rt, req->image, image_cb, &img, err);
    if (r == -ENOENT)
        r = terok_error_set(err, -ENOENT,
                            "image '%s' is not available to the '%s' runtime: pull or build it "
                            "first",
                            req->image, rt.plugin->name);
    if (r >= 0 && img.oom)
        r = terok_error_set(err, -ENOMEM, "out of memory");
    if (r < 0)
        goto out;
    r = spec_compose(req, name, &pol, img.entrypoint, img.cmd, notes, &cs, err);
    if (r < 0)
        goto out;
    shielded = !req->no_shield && !streq(pol.shield_backend, "none");
    if (shielded) {
        r = shield_setup(s, &rt, req, name, cs, err);
        if (r < 0)
            goto out;
    }

    /* 3. Record first, so a concurrent create of the same name loses cleanly at the store. */
    rec = (container_rec){
        .name = name,
        .image = (char *)req->image,
        .runtime = rt.plugin->name,
        .spec_json = cs->json,
        .created_at = (int64_t)time(NULL),
    };
    r = store_container_add(st, &rec, err);
    rec = (container_rec){0};
    if (r < 0) {
        if (shielded && r != -EEXIST) /* on -EEXIST the bundle is the other container's */
            shield_teardown(s, name);
        goto out;
    }

    /* 4. Wire it to the host services: runtime dir, phantom tokens, the broker's socket. */
    r = wiring_setup(s, name, req->no_routes ? (char *[]){NULL} : req->routes, req->repos,
                     req->token_ttl_s, s->config_file, &w, err);
    if (r < 0) {
        (void)store_container_remove(st, name, NULL);
        if (shielded)
            shield_teardown(s, name);
        goto out;
    }
    if (r >= 0 && req->ssh_scope) {
        r = wiring_ssh(s, name, req->ssh_scope, s->config_file, &w, err);
        if (r >= 0 && !w.ssh_wired && notes)
            (void)strv_extendf(&notes->warnings,
                               "SSH scope '%s' has no keys linked: the container gets no agent",
                               req->ssh_scope);
        if (r < 0) {
            wiring_rollback(s, name, &w);
            (void)store_container_remove(st, name, NULL);
            if (shielded)
                shield_teardown(s, name);
            goto out;
        }
    }
    r = spec_wire(cs, w.run_dir, w.env, err);
    if (r < 0) {
        wiring_rollback(s, name, &w);
        (void)store_container_remove(st, name, NULL);
        if (shielded)
            shield_teardown(s, name);
        goto out;
    }

    /* 5. Create in the runtime; undo everything on any failure after this point. */
    r = runtime_create(&rt, &cs->spec, &id, err);
    if (r < 0) {
        wiring_rollback(s, name, &w);
        (void)store_container_remove(st, name, NULL);
        if (shielded)
            shield_teardown(s, name);
        goto out;
    }
    r = store_container_set_id(st, name, id, err);
    /* 6. Sealed: the volumes' content goes in now, before anything runs in there. */
    if (r >= 0 && req->sealed)
        r = copy_volumes_in(&rt, req, name, err);
    if (r < 0) {
        (void)runtime_remove(&rt, name, TEROK_REMOVE_FORCE | TEROK_REMOVE_VOLUMES, NULL);
        wiring_rollback(s, name, &w);
        (void)store_container_remove(st, name, NULL);
        if (shielded)
            shield_teardown(s, name);
        goto out;
    }
    *ret_name = name;
    name = NULL;
    r = 0;
out:
    wiring_done(&w);
    strv_free(img.entrypoint);
    strv_free(img.cmd);
    spec_policy_done(&pol);
    return r;
}

/* ------------------------------------------------------------------ by name */

/* The store's record of a managed container; -ENOENT with a message when we do not manage it. */
static int lookup(sandbox *s, const char *name, container_rec *ret, terok_error *err)
{
    store *st;
    int r;

    if (!s || isempty(name))
        return terok_error_set(err, -EINVAL, "no container name given");
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = store_container_get(st, name, ret, err);
    if (r == -ENOENT)
        return terok_error_set(err, -ENOENT, "no such container '%s'", name);
    return r;
}

static int managed_runtime(sandbox *s, const char *name, container_rec *rec, runtime *rt,
                           uint64_t caps, terok_error *err)
{
    int r = lookup(s, name, rec, err);

    if (r < 0)
        return r;
    r = runtime_get(s->registry, caps, rt, err);
    if (r < 0)
        container_rec_done(rec);
    return r;
}

/* The runtime of a recorded container, for calls that need nothing else of its record. */
static int runtime_of(sandbox *s, const char *name, uint64_t caps, runtime *rt, terok_error *err)
{
    container_rec rec = {0};
    int r = managed_runtime(s, name, &rec, rt, caps, err);

    if (r >= 0)
        container_rec_done(&rec);
    return r;
}

int sandbox_start(sandbox *s, const char *name, terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, 0, &rt, err);

    return r < 0 ? r : runtime_start(&rt, name, err);
}

int sandbox_watch_events(sandbox *s, const char *name, bool attach, terok_error *err)
{
    shield sh;
    int r;

    if (!registry_backend_name(s->registry, TEROK_PLUGIN_KIND_SHIELD) ||
        shield_open(s->registry, 0, &sh, NULL) < 0 ||
        !shield_has_cap(&sh, TEROK_SHIELD_CAP_EVENTS) || !shield_has_bundle(&sh, name))
        return 0;
    r = clearance_client_ensure(s, s->config_file, err);
    if (r < 0 || !attach)
        return r;
    return clearance_client_attach(s, name, err);
}

int sandbox_start_attached(sandbox *s, const char *name, const terok_exec_spec *io,
                           int *ret_exit_code, terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, 0, &rt, err);

    return r < 0 ? r : runtime_start_attached(&rt, name, io, ret_exit_code, err);
}

int sandbox_stop(sandbox *s, const char *name, int64_t timeout_s, terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, 0, &rt, err);

    if (r < 0)
        return r;
    if (timeout_s < 0) {
        spec_policy pol;
        r = spec_policy_load(s->config, &pol, err);
        if (r < 0)
            return r;
        timeout_s = pol.stop_timeout_s;
        spec_policy_done(&pol);
    }
    return runtime_stop(&rt, name, timeout_s, err);
}

int sandbox_kill(sandbox *s, const char *name, int signo, terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, 0, &rt, err);

    return r < 0 ? r : runtime_kill(&rt, name, signo, err);
}

typedef struct label_probe {
    bool found, managed;
} label_probe;

static int label_probe_cb(void *userdata, const terok_container_info *info)
{
    label_probe *p = userdata;

    p->found = true;
    p->managed = strv_contains(info->labels, TEROK_LABEL_MANAGED "=1");
    return 0;
}

/* rm: release what the shield holds for the container and remove its bundle. A container created
 * without a shield, or a shield switched off since, leaves nothing to do. */
static int shield_remove(sandbox *s, const char *name, terok_error *err)
{
    shield sh;
    int r;

    if (!registry_backend_name(s->registry, TEROK_PLUGIN_KIND_SHIELD))
        return 0;
    /* A shield that cannot be loaded now holds nothing live for us to release; rm still works
     * (the bundle is inert without the hook). */
    if (shield_open(s->registry, 0, &sh, NULL) < 0)
        return 0;
    r = shield_cleanup(&sh, name, err);
    if (r >= 0)
        r = shield_forget(&sh, name, err);
    return r < 0 ? r : 0;
}

int sandbox_remove(sandbox *s, const char *name, bool force, bool *ret_existed, terok_error *err)
{
    container_rec rec = {0};
    label_probe probe = {0};
    bool have_rec, in_runtime = true;
    store *st;
    runtime rt;
    int r;

    if (!s || isempty(name))
        return terok_error_set(err, -EINVAL, "no container name given");
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = store_container_get(st, name, &rec, err);
    if (r < 0 && r != -ENOENT)
        return r;
    have_rec = r == 0;
    container_rec_done(&rec);

    r = runtime_get(s->registry, 0, &rt, err);
    if (r < 0)
        return r;
    if (!have_rec) {
        /* Not ours on record: remove it only if it carries our label (a leftover of a crash
         * between runtime create and the store), never someone else's container. */
        r = runtime_inspect(&rt, name, label_probe_cb, &probe, err);
        if (r == -ENOENT || (r >= 0 && !probe.found)) {
            terok_error_clear(err);
            if (ret_existed)
                *ret_existed = false;
            return 0;
        }
        if (r < 0)
            return r;
        if (!probe.managed)
            return terok_error_set(err, -EPERM,
                                   "container '%s' is not managed by terok-sandbox; refusing "
                                   "to remove it",
                                   name);
    }
    r = runtime_remove(&rt, name, (force ? TEROK_REMOVE_FORCE : 0) | TEROK_REMOVE_VOLUMES, err);
    if (r == -ENOENT) {
        terok_error_clear(err);
        in_runtime = false;
    } else if (r < 0) {
        return r;
    }
    r = wiring_teardown(s, name, err);
    if (r < 0)
        return r;
    /* a clearance daemon, if one runs, drops the container's pending requests */
    (void)clearance_client_forget(s, name, NULL);
    r = shield_remove(s, name, err);
    if (r < 0)
        return r;
    if (have_rec) {
        r = store_container_remove(st, name, err);
        if (r < 0)
            return r;
    }
    if (ret_existed)
        *ret_existed = have_rec || in_runtime;
    return 0;
}

int sandbox_wait(sandbox *s, const char *name, int64_t timeout_ms, int *ret_exit_code,
                 terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, 0, &rt, err);

    return r < 0 ? r : runtime_wait(&rt, name, timeout_ms, ret_exit_code, err);
}

int sandbox_exec(sandbox *s, const char *name, const terok_exec_spec *spec, int *ret_exit_code,
                 terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, TEROK_RUNTIME_CAP_EXEC, &rt, err);

    return r < 0 ? r : runtime_exec(&rt, name, spec, ret_exit_code, err);
}

int sandbox_logs(sandbox *s, const char *name, const terok_logs_opts *o, terok_output_cb cb,
                 void *userdata, terok_error *err)
{
    runtime rt;
    int r = runtime_of(s, name, TEROK_RUNTIME_CAP_LOGS, &rt, err);

    return r < 0 ? r : runtime_logs(&rt, name, o, cb, userdata, err);
}

/* ------------------------------------------------------------------ views */

typedef struct rec_list {
    container_rec *v;
    size_t n;
    bool *seen;
} rec_list;

static int collect_rec(void *userdata, const container_rec *r)
{
    rec_list *l = userdata;
    container_rec *t = reallocarray(l->v, l->n + 1, sizeof(*t));

    if (!t)
        return -ENOMEM;
    l->v = t;
    t[l->n] = (container_rec){
        .name = strdup(r->name),
        .id = r->id ? strdup(r->id) : NULL,
        .image = strdup(r->image),
        .runtime = strdup(r->runtime),
        .spec_json = strdup(r->spec_json),
        .created_at = r->created_at,
    };
    l->n++;
    if (!t[l->n - 1].name || !t[l->n - 1].image || !t[l->n - 1].runtime || !t[l->n - 1].spec_json)
        return -ENOMEM;
    return 0;
}

static void rec_list_done(rec_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        container_rec_done(&l->v[i]);
    free(l->v);
    free(l->seen);
    *l = (rec_list){0};
}

typedef struct join {
    rec_list *recs;
    container_view_cb cb;
    void *userdata;
    int stopped;
} join;

static int join_cb(void *userdata, const terok_container_info *info)
{
    join *j = userdata;
    container_view v = {.info = info};

    for (size_t i = 0; i < j->recs->n; i++)
        if (info->name && streq(j->recs->v[i].name, info->name)) {
            v.rec = &j->recs->v[i];
            j->recs->seen[i] = true;
            break;
        }
    j->stopped = j->cb(j->userdata, &v);
    return j->stopped;
}

static bool spec_removes_on_exit(const char *spec_json)
{
    json_object *o = json_tokener_parse(spec_json), *v;
    bool b = false;

    if (o && json_object_object_get_ex(o, "remove_on_exit", &v))
        b = json_object_get_boolean(v);
    json_object_put(o);
    return b;
}

int sandbox_list(sandbox *s, bool all, container_view_cb cb, void *userdata, terok_error *err)
{
    static const char *const managed[] = {TEROK_LABEL_MANAGED "=1", NULL};
    terok_list_filter f = {
        .struct_size = sizeof f, .flags = all ? TEROK_LIST_ALL : 0, .labels = managed};
    rec_list recs = {0};
    join j = {.recs = &recs, .cb = cb, .userdata = userdata};
    store *st;
    runtime rt;
    int r;

    if (!s || !cb)
        return terok_error_set(err, -EINVAL, "sandbox_list: missing argument");
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = store_container_list(st, collect_rec, &recs, err);
    if (r == -ENOMEM)
        r = terok_error_set(err, r, "out of memory");
    if (r >= 0 && !(recs.seen = calloc(recs.n + 1, sizeof(bool))))
        r = terok_error_set(err, -ENOMEM, "out of memory");
    if (r >= 0)
        r = runtime_get(s->registry, 0, &rt, err);
    if (r >= 0)
        r = runtime_list(&rt, &f, join_cb, &j, err);
    if (r < 0 || j.stopped || !all)
        goto out;
    /* Records the runtime no longer knows: an ephemeral container the runtime removed on exit
     * is forgotten; anything else is shown, so the operator can see and rm it. */
    for (size_t i = 0; i < recs.n; i++) {
        if (recs.seen[i])
            continue;
        if (recs.v[i].id && spec_removes_on_exit(recs.v[i].spec_json)) {
            (void)store_container_remove(st, recs.v[i].name, NULL);
            continue;
        }
        container_view v = {.rec = &recs.v[i]};
        if (cb(userdata, &v) != 0)
            break;
    }
out:
    rec_list_done(&recs);
    return r < 0 ? r : 0;
}

typedef struct one {
    const container_rec *rec;
    container_view_cb cb;
    void *userdata;
    bool called, unmanaged;
} one;

static int one_cb(void *userdata, const terok_container_info *info)
{
    one *o = userdata;
    container_view v = {.rec = o->rec, .info = info};

    if (!o->rec && !strv_contains(info->labels, TEROK_LABEL_MANAGED "=1")) {
        o->unmanaged = true;
        return 0;
    }
    o->called = true;
    return o->cb(o->userdata, &v);
}

int sandbox_inspect(sandbox *s, const char *name, container_view_cb cb, void *userdata,
                    terok_error *err)
{
    container_rec rec = {0};
    one o = {.cb = cb, .userdata = userdata};
    store *st;
    runtime rt;
    int r;

    if (!s || isempty(name) || !cb)
        return terok_error_set(err, -EINVAL, "sandbox_inspect: missing argument");
    r = sandbox_store(s, &st, err);
    if (r < 0)
        return r;
    r = store_container_get(st, name, &rec, err);
    if (r < 0 && r != -ENOENT)
        return r;
    if (r == 0)
        o.rec = &rec;
    r = runtime_get(s->registry, 0, &rt, err);
    if (r >= 0)
        r = runtime_inspect(&rt, name, one_cb, &o, err);
    if (r == -ENOENT && o.rec) {
        /* Recorded but the runtime lost it: still show what we know. */
        terok_error_clear(err);
        container_view v = {.rec = o.rec};
        r = cb(userdata, &v);
        r = r < 0 ? r : 0;
    } else if ((r == -ENOENT && !o.rec) || (r >= 0 && o.unmanaged)) {
        r = terok_error_set(err, -ENOENT, "no such container '%s'", name);
    }
    container_rec_done(&rec);
    return r < 0 ? r : 0;
}
