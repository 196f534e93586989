/* SPDX-License-Identifier: Apache-2.0 */
/* spec.c: hardening policy from the [container] config section, and composing the validated
 * request into the terok_run_spec the runtime executes plus the JSON record of what was applied.
 * Hardening is on unless the operator relaxed it; every relaxation is recorded with its source. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "spec.h"
#include "util/strv.h"

#define SECTION "container"

/* ------------------------------------------------------------------ policy */

static int policy_bool(const config *cfg, const char *key, bool def, bool *ret, char **origin,
                       terok_error *err)
{
    const char *v = cfg ? config_get(cfg, SECTION, key) : NULL;
    const char *o = cfg ? config_origin(cfg, SECTION, key) : NULL;

    *ret = def;
    if (v && parse_bool(v, ret) < 0)
        return terok_error_set(err, -EBADMSG, "[%s] %s: invalid boolean '%s' (%s)", SECTION, key, v,
                               strna(o));
    *origin = strdup(v ? strempty(o) : "built-in default");
    return *origin ? 0 : terok_error_set(err, -ENOMEM, "out of memory");
}

static int policy_int(const config *cfg, const char *key, int64_t def, int64_t max, int64_t *ret,
                      terok_error *err)
{
    const char *v = cfg ? config_get(cfg, SECTION, key) : NULL;

    *ret = def;
    if (v && parse_int64(v, 0, max, ret) < 0)
        return terok_error_set(
            err, -EBADMSG, "[%s] %s: invalid value '%s': expected an integer from 0 to %" PRId64,
            SECTION, key, v, max);
    return 0;
}

int spec_policy_load(const config *cfg, spec_policy *ret, terok_error *err)
{
    spec_policy p = {0};
    const char *v;
    int r;

    r = policy_int(cfg, "pids-limit", 512, INT32_MAX, &p.pids_limit, err);
    if (r < 0)
        goto fail;
    v = cfg ? config_get(cfg, SECTION, "memory") : NULL;
    if (v) {
        uint64_t bytes = 0;
        if (parse_size(v, &bytes) < 0 || bytes > INT64_MAX) {
            r = terok_error_set(err, -EBADMSG, "[%s] memory: invalid size '%s'", SECTION, v);
            goto fail;
        }
        p.memory_bytes = (int64_t)bytes;
    }
    v = cfg ? config_get(cfg, SECTION, "cpus") : NULL;
    if (v && spec_parse_cpus(v, &p.cpu_millis) < 0) {
        r = terok_error_set(err, -EBADMSG, "[%s] cpus: invalid CPU count '%s'", SECTION, v);
        goto fail;
    }
    p.stop_timeout_s = 10;
    v = cfg ? config_get(cfg, SECTION, "stop-timeout") : NULL;
    if (v) {
        int64_t ms = 0;
        if (parse_duration_ms(v, &ms) < 0 || ms < 0) {
            r = terok_error_set(err, -EBADMSG, "[%s] stop-timeout: invalid duration '%s'", SECTION,
                                v);
            goto fail;
        }
        p.stop_timeout_s = (ms + 999) / 1000;
    }
    if ((r = policy_bool(cfg, "read-only", true, &p.read_only, &p.origin_read_only, err)) < 0 ||
        (r = policy_bool(cfg, "no-new-privileges", true, &p.no_new_privs, &p.origin_no_new_privs,
                         err)) < 0 ||
        (r = policy_bool(cfg, "cap-drop-all", true, &p.cap_drop_all, &p.origin_cap_drop_all, err)) <
            0 ||
        (r = policy_bool(cfg, "seccomp", true, &p.seccomp, &p.origin_seccomp, err)) < 0)
        goto fail;

    v = cfg ? config_get(cfg, SECTION, "network") : NULL;
    if (!isempty(v) && !(p.network = strdup(v)))
        goto oom;

    /* grantable-caps: a comma or space separated list; "" grants nothing. */
    v = cfg ? config_get(cfg, SECTION, "grantable-caps") : NULL;
    if (!v)
        v = "perfmon";
    p.grantable_caps = calloc(1, sizeof(char *));
    if (!p.grantable_caps)
        goto oom;
    for (const char *s = v; *s;) {
        size_t len = strcspn(s, ", \t");
        if (len) {
            _cleanup_free_ char *c = strndup(s, len);
            if (!c)
                goto oom;
            for (char *q = c; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q - 'A' + 'a');
            if (strv_extend(&p.grantable_caps, strneq(c, "cap_", 4) ? c + 4 : c) < 0)
                goto oom;
        }
        s += len;
        s += strspn(s, ", \t");
    }

    v = cfg ? config_get(cfg, "shield", "backend") : NULL;
    p.shield_backend = strdup(isempty(v) ? "nft" : v);
    if (!p.shield_backend)
        goto oom;
    *ret = p;
    return 0;
oom:
    r = terok_error_set(err, -ENOMEM, "out of memory");
fail:
    spec_policy_done(&p);
    return r;
}

void spec_policy_done(spec_policy *p)
{
    if (!p)
        return;
    free(p->network);
    strv_free(p->grantable_caps);
    free(p->shield_backend);
    free(p->origin_read_only);
    free(p->origin_no_new_privs);
    free(p->origin_cap_drop_all);
    free(p->origin_seccomp);
    free(p->init_binary);
    free(p->userns_default);
    *p = (spec_policy){0};
}

/* ------------------------------------------------------------------ compose */

composed_spec *composed_spec_free(composed_spec *c)
{
    if (!c)
        return NULL;
    free(c->name);
    free(c->image);
    free(c->hostname);
    free(c->workdir);
    free(c->user);
    free(c->network);
    free(c->userns);
    free(c->oci_runtime);
    strv_free(c->argv);
    strv_free(c->env);
    strv_free(c->labels);
    strv_free(c->annotations);
    strv_free(c->cap_add);
    strv_free(c->devices);
    free(c->mounts);
    strv_free(c->mount_strings);
    free(c->json);
    free(c);
    return NULL;
}

static bool strv_isempty(char *const *l)
{
    return !l || !*l;
}

static int dup_or_null(const char *s, char **ret)
{
    *ret = NULL;
    if (!s)
        return 0;
    *ret = strdup(s);
    return *ret ? 0 : -ENOMEM;
}

/* A string the mounts table points at; owned by c->mount_strings. */
static const char *keep(composed_spec *c, const char *s)
{
    if (!s || strv_extend(&c->mount_strings, s) < 0)
        return NULL;
    return c->mount_strings[strv_length(c->mount_strings) - 1];
}

/* A volume that is copied into the container (sealed mode) instead of bind-mounted. */
static bool volume_is_copied(const run_request *req, const volume_req *v)
{
    return req->sealed && !v->live;
}

static bool has_target(const run_request *req, const char *t)
{
    for (size_t i = 0; i < req->n_volumes; i++) {
        const char *v = req->volumes[i].target;

        /* sealed: the content lands in what is mounted there (the workspace volume included) */
        if (volume_is_copied(req, &req->volumes[i]))
            continue;
        size_t n = strlen(t);
        /* "/tmp", "/tmp/" and "//tmp" all mean /tmp */
        while (v[0] == '/' && v[1] == '/')
            v++;
        if (strneq(v, t, n) && (v[n] == 0 || (v[n] == '/' && v[n + 1] == 0)))
            return true;
    }
    return false;
}

static int add_mount(composed_spec *c, uint32_t type, uint32_t flags, const char *source,
                     const char *target, const char *options)
{
    terok_mount *m = reallocarray(c->mounts, c->n_mounts + 1, sizeof(terok_mount));

    if (!m)
        return -ENOMEM;
    c->mounts = m;
    m = &c->mounts[c->n_mounts];
    *m = (terok_mount){.type = type, .flags = flags};
    if ((source && !(m->source = keep(c, source))) || !(m->target = keep(c, target)) ||
        (options && !(m->options = keep(c, options))))
        return -ENOMEM;
    c->n_mounts++;
    return 0;
}

static int compose_mounts(composed_spec *c, const run_request *req, const spec_policy *pol)
{
    int r;

    for (size_t i = 0; i < req->n_volumes; i++) {
        const volume_req *v = &req->volumes[i];
        if (volume_is_copied(req, v))
            continue; /* sandbox_create copies it in before the start */
        r = add_mount(c, TEROK_MOUNT_BIND, (v->read_only ? TEROK_MOUNT_RO : 0) | v->label,
                      v->source, v->target, NULL);
        if (r < 0)
            return r;
    }
    /* A read-only root still needs a scratch /tmp and a writable workspace. */
    if (!has_target(req, "/tmp")) {
        r = add_mount(c, TEROK_MOUNT_TMPFS, 0, NULL, "/tmp", "mode=1777,nosuid,nodev");
        if (r < 0)
            return r;
    }
    if (!has_target(req, "/workspace")) {
        /* source NULL: an anonymous volume, removed with the container */
        r = add_mount(c, TEROK_MOUNT_VOLUME, 0, NULL, "/workspace", NULL);
        if (r < 0)
            return r;
    }
    if (pol->init_binary) {
        r = add_mount(c, TEROK_MOUNT_BIND, TEROK_MOUNT_RO, pol->init_binary, SPEC_INIT_PATH, NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

/* argv = [terok-init --] + entrypoint + command. An explicit entrypoint drops the image's Cmd
 * (docker semantics); an explicit command replaces it. */
static int compose_argv(composed_spec *c, const run_request *req, const spec_policy *pol,
                        char *const *img_entry, char *const *img_cmd, terok_error *err)
{
    char *const *entry = req->entrypoint ? req->entrypoint : img_entry;
    char *const *cmd = !strv_isempty(req->command) ? req->command
                       : req->entrypoint           ? NULL
                                                   : img_cmd;

    c->argv = calloc(1, sizeof(char *));
    if (!c->argv)
        return -ENOMEM;
    if (strv_isempty(entry) && strv_isempty(cmd))
        return terok_error_set(
            err, -EINVAL, "image '%s' has no Entrypoint or Cmd: give a command to run", req->image);
    /* terok-init bridges the container's loopback ports to the service sockets that exist at
     * start (it skips the others), so every image reaches them without socat. */
    if (pol->init_binary &&
        (strv_extend(&c->argv, SPEC_INIT_PATH) < 0 || strv_extend(&c->argv, "-b") < 0 ||
         strv_extend(&c->argv, "9419=" SPEC_MANAGED_DIR "/vault.sock") < 0 ||
         strv_extend(&c->argv, "-b") < 0 ||
         strv_extend(&c->argv, "9418=" SPEC_MANAGED_DIR "/gate.sock") < 0 ||
         strv_extend(&c->argv, "--") < 0))
        return -ENOMEM;
    if (strv_extend_strv(&c->argv, (const char *const *)entry) < 0 ||
        strv_extend_strv(&c->argv, (const char *const *)cmd) < 0)
        return -ENOMEM;
    return 0;
}

static int add_note(sandbox_notes *notes, const char *fmt, ...) _printf_(2, 3);
static int add_note(sandbox_notes *notes, const char *fmt, ...)
{
    char *m = NULL;
    va_list ap;
    int r;

    if (!notes)
        return 0;
    va_start(ap, fmt);
    r = vasprintf(&m, fmt, ap);
    va_end(ap);
    return r < 0 ? -ENOMEM : strv_consume(&notes->warnings, m);
}

/* Env values whose key looks like a credential are never echoed back (upstream redact_env). */
static bool env_key_is_sensitive(const char *kv)
{
    static const char *const words[] = {"KEY", "TOKEN", "SECRET", "API", "PASSWORD", "PRIVATE"};
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);

    for (size_t i = 0; i < ELEMENTSOF(words); i++)
        if (memmem(kv, klen, words[i], strlen(words[i])))
            return true;
    return false;
}

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *jstrv(char *const *l)
{
    json_object *a = json_object_new_array();

    STRV_FOREACH(s, l)
    json_object_array_add(a, json_object_new_string(*s));
    return a;
}

static json_object *jkv(char *const *l)
{
    json_object *o = json_object_new_object();

    STRV_FOREACH(s, l)
    {
        const char *eq = strchr(*s, '=');
        _cleanup_free_ char *k = strndup(*s, eq ? (size_t)(eq - *s) : strlen(*s));
        if (k)
            json_object_object_add(o, k, json_object_new_string(eq ? eq + 1 : ""));
    }
    return o;
}

static void relax(json_object *list, const char *setting, const char *source)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "setting", json_object_new_string(setting));
    json_object_object_add(o, "source", json_object_new_string(source));
    json_object_array_add(list, o);
}

static int compose_json(composed_spec *c, const run_request *req, const spec_policy *pol,
                        const char *shield_reason)
{
    json_object *o = json_object_new_object(), *h = json_object_new_object();
    json_object *rel = json_object_new_array(), *mounts = json_object_new_array();
    json_object *env = json_object_new_array(), *shield = json_object_new_object();
    const terok_run_spec *s = &c->spec;
    static const struct {
        uint32_t bit;
        const char *name, *cli;
    } knobs[] = {
        {TEROK_SPEC_READ_ONLY_ROOT, "read_only_root", "--no-read-only"},
        {TEROK_SPEC_NO_NEW_PRIVS, "no_new_privileges", "--allow-new-privileges"},
        {TEROK_SPEC_CAP_DROP_ALL, "cap_drop_all", "--no-cap-drop"},
        {TEROK_SPEC_DEFAULT_SECCOMP, "default_seccomp", "--no-seccomp"},
    };
    const int reqv[] = {req->read_only, req->no_new_privs, req->cap_drop_all, req->default_seccomp};
    const char *origins[] = {pol->origin_read_only, pol->origin_no_new_privs,
                             pol->origin_cap_drop_all, pol->origin_seccomp};

    for (size_t i = 0; i < ELEMENTSOF(knobs); i++) {
        bool on = s->flags & knobs[i].bit;
        json_object_object_add(h, knobs[i].name, json_object_new_boolean(on));
        if (!on) {
            _cleanup_free_ char *src = NULL;
            if (reqv[i] >= 0 && asprintf(&src, "command line (%s)", knobs[i].cli) < 0)
                src = NULL;
            relax(rel, knobs[i].name, src ? src : strna(origins[i]));
        }
    }
    json_object_object_add(h, "cap_add", jstrv(c->cap_add));
    STRV_FOREACH(cap, c->cap_add)
    {
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "cap_add:%s", *cap) >= 0)
            relax(rel, what, "command line (--cap-add)");
    }
    json_object_object_add(h, "pids_limit", json_object_new_int64(s->pids_limit));
    json_object_object_add(h, "memory_bytes", json_object_new_int64(s->memory_bytes));
    json_object_object_add(h, "cpu_millis", json_object_new_int64(s->cpu_millis));
    json_object_object_add(h, "stop_timeout_s", json_object_new_int64(s->stop_timeout_s));
    if (s->pids_limit == 0 && pol->pids_limit > 0)
        relax(rel, "pids_limit", "command line (--pids-limit 0)");
    if (shield_reason)
        relax(rel, "shield", shield_reason);

    for (size_t i = 0; i < c->n_mounts; i++) {
        const terok_mount *m = &c->mounts[i];
        json_object *jm = json_object_new_object();
        json_object_object_add(jm, "type",
                               json_object_new_string(m->type == TEROK_MOUNT_BIND    ? "bind"
                                                      : m->type == TEROK_MOUNT_TMPFS ? "tmpfs"
                                                                                     : "volume"));
        json_object_object_add(jm, "source", jstr(m->source));
        json_object_object_add(jm, "target", jstr(m->target));
        json_object_object_add(jm, "read_only", json_object_new_boolean(m->flags & TEROK_MOUNT_RO));
        json_object_object_add(jm, "options", jstr(m->options));
        json_object_array_add(mounts, jm);
    }
    STRV_FOREACH(e, c->env)
    {
        if (env_key_is_sensitive(*e)) {
            const char *eq = strchr(*e, '=');
            _cleanup_free_ char *r = NULL;
            if (asprintf(&r, "%.*s=<redacted>", (int)(eq - *e), *e) >= 0)
                json_object_array_add(env, json_object_new_string(r));
        } else {
            json_object_array_add(env, json_object_new_string(*e));
        }
    }

    json_object_object_add(shield, "enabled", json_object_new_boolean(!shield_reason));
    json_object_object_add(shield, "backend", jstr(pol->shield_backend));
    json_object_object_add(shield, "reason", jstr(shield_reason));

    json_object_object_add(o, "name", jstr(c->name));
    json_object_object_add(o, "image", jstr(c->image));
    json_object_object_add(o, "argv", jstrv(c->argv));
    json_object_object_add(o, "env", env);
    json_object_object_add(o, "labels", jkv(c->labels));
    json_object_object_add(o, "annotations", jkv(c->annotations));
    json_object_object_add(o, "mounts", mounts);
    json_object_object_add(o, "devices", jstrv(c->devices));
    json_object_object_add(o, "hostname", jstr(c->hostname));
    json_object_object_add(o, "workdir", jstr(c->workdir));
    json_object_object_add(o, "user", jstr(c->user));
    json_object_object_add(o, "network", jstr(c->network));
    json_object_object_add(o, "userns", jstr(c->userns));
    json_object_object_add(o, "oci_runtime", jstr(c->oci_runtime));
    json_object_object_add(o, "remove_on_exit",
                           json_object_new_boolean(s->flags & TEROK_SPEC_REMOVE_ON_EXIT));
    json_object_object_add(o, "tty", json_object_new_boolean(s->flags & TEROK_SPEC_TTY));
    json_object_object_add(o, "interactive", json_object_new_boolean(s->flags & TEROK_SPEC_STDIN));
    json_object_object_add(o, "sealed", json_object_new_boolean(s->flags & TEROK_SPEC_SEALED));
    if (req->sealed) {
        json_object *copied = json_object_new_array();
        for (size_t i = 0; i < req->n_volumes; i++) {
            const volume_req *v = &req->volumes[i];
            json_object *jc;
            if (!volume_is_copied(req, v))
                continue;
            jc = json_object_new_object();
            json_object_object_add(jc, "source", jstr(v->source));
            json_object_object_add(jc, "target", jstr(v->target));
            json_object_array_add(copied, jc);
        }
        json_object_object_add(o, "copied_in", copied);
    }
    json_object_object_add(o, "hardening", h);
    json_object_object_add(o, "relaxations", rel);
    json_object_object_add(o, "shield", shield);
    c->json = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return c->json ? 0 : -ENOMEM;
}

static int pick_bool(int req, bool def)
{
    return req < 0 ? def : req > 0;
}

int spec_compose(const run_request *req, const char *name, const spec_policy *pol,
                 char *const *image_entrypoint, char *const *image_cmd, sandbox_notes *notes,
                 composed_spec **ret, terok_error *err)
{
    _cleanup_(composed_spec_freep) composed_spec *c = calloc(1, sizeof(*c));
    const char *shield_reason = NULL;
    uint32_t flags = 0;
    int r;

    if (!c)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (dup_or_null(name, &c->name) < 0 || dup_or_null(req->image, &c->image) < 0 ||
        dup_or_null(req->hostname, &c->hostname) < 0 ||
        dup_or_null(req->workdir ? req->workdir : "/workspace", &c->workdir) < 0 ||
        dup_or_null(req->user, &c->user) < 0 ||
        dup_or_null(req->network ? req->network : pol->network, &c->network) < 0 ||
        dup_or_null(req->userns ? req->userns : pol->userns_default, &c->userns) < 0 ||
        dup_or_null(req->oci_runtime, &c->oci_runtime) < 0)
        goto oom;

    r = compose_argv(c, req, pol, image_entrypoint, image_cmd, err);
    if (r == -ENOMEM)
        goto oom;
    if (r < 0)
        return r;
    c->env = strv_copy((const char *const *)req->env);
    c->labels = strv_copy((const char *const *)req->labels);
    c->annotations = strv_copy((const char *const *)req->annotations);
    c->cap_add = calloc(1, sizeof(char *));
    c->devices = strv_copy((const char *const *)req->devices);
    if (!c->env || !c->labels || !c->annotations || !c->cap_add || !c->devices)
        goto oom;
    if (strv_extend(&c->labels, TEROK_LABEL_MANAGED "=1") < 0 ||
        strv_extendf(&c->labels, TEROK_LABEL_NAME "=%s", name) < 0)
        goto oom;
    STRV_FOREACH(cap, req->cap_add)
    {
        const char *n = strncasecmp(*cap, "cap_", 4) == 0 ? *cap + 4 : *cap;
        _cleanup_free_ char *low = strdup(n);
        if (!low)
            goto oom;
        for (char *q = low; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        if (!strv_contains((const char *const *)c->cap_add, low) &&
            strv_extend(&c->cap_add, low) < 0)
            goto oom;
    }
    STRV_FOREACH(g, req->gpus)
    {
        r = spec_gpu_devices(*g, &c->devices, err);
        if (r < 0)
            return r;
    }
    r = compose_mounts(c, req, pol);
    if (r < 0)
        goto oom;

    if (pick_bool(req->cap_drop_all, pol->cap_drop_all))
        flags |= TEROK_SPEC_CAP_DROP_ALL;
    if (pick_bool(req->no_new_privs, pol->no_new_privs))
        flags |= TEROK_SPEC_NO_NEW_PRIVS;
    if (pick_bool(req->read_only, pol->read_only))
        flags |= TEROK_SPEC_READ_ONLY_ROOT;
    if (pick_bool(req->default_seccomp, pol->seccomp))
        flags |= TEROK_SPEC_DEFAULT_SECCOMP;
    if (req->remove_on_exit)
        flags |= TEROK_SPEC_REMOVE_ON_EXIT;
    if (req->tty)
        flags |= TEROK_SPEC_TTY;
    if (req->interactive)
        flags |= TEROK_SPEC_STDIN;
    if (req->sealed)
        flags |= TEROK_SPEC_SEALED;

    /* Without a shield only when the operator said so; otherwise sandbox_create prepares one
     * (spec_add_shield) or refuses the run: fail closed. */
    r = 0;
    if (req->no_shield) {
        shield_reason = "command line (--no-shield)";
        r = add_note(notes,
                     "container '%s' runs unshielded (%s): its network egress is not "
                     "filtered",
                     name, "--no-shield");
    } else if (streq(pol->shield_backend, "none")) {
        shield_reason = "config ([shield] backend = none)";
        r = add_note(notes,
                     "container '%s' runs unshielded (%s): its network egress is not "
                     "filtered",
                     name, "[shield] backend = none");
    }
    if (r < 0)
        goto oom;

    c->spec = (terok_run_spec){
        .struct_size = sizeof(terok_run_spec),
        .flags = flags,
        .name = c->name,
        .image = c->image,
        .argv = (const char *const *)c->argv,
        .env = (const char *const *)c->env,
        .labels = (const char *const *)c->labels,
        .annotations = (const char *const *)c->annotations,
        .cap_add = (const char *const *)c->cap_add,
        .devices = (const char *const *)c->devices,
        .mounts = c->mounts,
        .n_mounts = c->n_mounts,
        .hostname = c->hostname,
        .workdir = c->workdir,
        .user = c->user,
        .network = c->network,
        .userns = c->userns,
        .oci_runtime = c->oci_runtime,
        .pids_limit = req->pids_limit >= 0 ? req->pids_limit : pol->pids_limit,
        .memory_bytes = req->memory_bytes >= 0 ? req->memory_bytes : pol->memory_bytes,
        .cpu_millis = req->cpu_millis >= 0 ? req->cpu_millis : pol->cpu_millis,
        .stop_timeout_s = pol->stop_timeout_s,
    };
    if (compose_json(c, req, pol, shield_reason) < 0)
        goto oom;
    *ret = c;
    c = NULL;
    return 0;
oom:
    return terok_error_set(err, -ENOMEM, "out of memory");
}

int spec_wire(composed_spec *c, const char *run_dir, char *const *env, terok_error *err)
{
    if (run_dir &&
        add_mount(c, TEROK_MOUNT_BIND, TEROK_MOUNT_RO, run_dir, SPEC_MANAGED_DIR, NULL) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    if (strv_extend_strv(&c->env, (const char *const *)env) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    /* the arrays may have moved */
    c->spec.env = (const char *const *)c->env;
    c->spec.mounts = c->mounts;
    c->spec.n_mounts = c->n_mounts;
    return 0;
}

int spec_add_shield(composed_spec *c, const char *bundle_path, char *const *annotations,
                    char *const *env, terok_error *err)
{
    static const char *const hook_keys[] = {SPEC_SHIELD_BUNDLE_ANNOTATION, NULL};
    json_object *o = NULL, *sh, *ann;

    if (!strv_env_get((const char *const *)annotations, SPEC_SHIELD_BUNDLE_ANNOTATION))
        return terok_error_set(err, -EPROTO,
                               "the shield gave no '%s' annotation: its hook would never run",
                               SPEC_SHIELD_BUNDLE_ANNOTATION);
    if (strv_extend_strv(&c->annotations, (const char *const *)annotations) < 0 ||
        strv_extend_strv(&c->env, (const char *const *)env) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    c->spec.annotations = (const char *const *)c->annotations;
    c->spec.env = (const char *const *)c->env;
    c->spec.hooks_annotations = hook_keys;
    /* The record says where the bundle is (rm removes it) and what gates the hook. */
    o = json_tokener_parse(c->json);
    if (!o || !json_object_object_get_ex(o, "shield", &sh) ||
        !json_object_object_get_ex(o, "annotations", &ann)) {
        json_object_put(o);
        return terok_error_set(err, -ENOMEM, "out of memory");
    }
    json_object_object_add(sh, "bundle", jstr(bundle_path));
    STRV_FOREACH(a, annotations)
    {
        const char *eq = strchr(*a, '=');
        _cleanup_free_ char *k = eq ? strndup(*a, (size_t)(eq - *a)) : NULL;

        if (k)
            json_object_object_add(ann, k, json_object_new_string(eq + 1));
    }
    free(c->json);
    c->json = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return c->json ? 0 : terok_error_set(err, -ENOMEM, "out of memory");
}
