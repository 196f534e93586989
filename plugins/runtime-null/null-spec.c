/* SPDX-License-Identifier: Apache-2.0 */
/* null-spec.c: the run spec exactly as received, as JSON, so tests can assert what the core
 * composed (hardening flags, mounts, env, labels). */
#include <string.h>

#include "null.h"

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *strv_array(const char *const *l)
{
    json_object *a = json_object_new_array();

    for (const char *const *p = l; p && *p; p++)
        json_object_array_add(a, json_object_new_string(*p));
    return a;
}

/* "K=V" list as an object; "K" alone maps to "". */
static json_object *kv_object(const char *const *l)
{
    json_object *o = json_object_new_object();

    for (const char *const *p = l; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        size_t k = eq ? (size_t)(eq - *p) : strlen(*p);
        char key[1024];

        if (k >= sizeof key)
            continue;
        memcpy(key, *p, k);
        key[k] = 0;
        json_object_object_add(o, key, json_object_new_string(eq ? eq + 1 : ""));
    }
    return o;
}

static const char *mount_type(uint32_t t)
{
    switch (t) {
    case TEROK_MOUNT_BIND:
        return "bind";
    case TEROK_MOUNT_TMPFS:
        return "tmpfs";
    case TEROK_MOUNT_VOLUME:
        return "volume";
    default:
        return "unknown";
    }
}

static json_object *mounts_array(const terok_run_spec *spec)
{
    json_object *a = json_object_new_array();

    for (size_t i = 0; spec->mounts && i < spec->n_mounts; i++) {
        const terok_mount *m = &spec->mounts[i];
        json_object *o = json_object_new_object();

        json_object_object_add(o, "type", json_object_new_string(mount_type(m->type)));
        json_object_object_add(o, "source", str_or_null(m->source));
        json_object_object_add(o, "target", str_or_null(m->target));
        json_object_object_add(o, "options", str_or_null(m->options));
        json_object_object_add(o, "read_only", json_object_new_boolean(m->flags & TEROK_MOUNT_RO));
        json_object_object_add(o, "selinux",
                               (m->flags & TEROK_MOUNT_PRIVATE_LABEL)  ? json_object_new_string("Z")
                               : (m->flags & TEROK_MOUNT_SHARED_LABEL) ? json_object_new_string("z")
                                                                       : NULL);
        json_object_array_add(a, o);
    }
    return a;
}

json_object *null_spec_to_json(const terok_run_spec *spec)
{
    json_object *o = json_object_new_object();
    static const struct {
        uint32_t bit;
        const char *name;
    } flags[] = {
        {TEROK_SPEC_CAP_DROP_ALL, "cap_drop_all"},
        {TEROK_SPEC_NO_NEW_PRIVS, "no_new_privileges"},
        {TEROK_SPEC_READ_ONLY_ROOT, "read_only_root"},
        {TEROK_SPEC_DEFAULT_SECCOMP, "default_seccomp"},
        {TEROK_SPEC_REMOVE_ON_EXIT, "remove_on_exit"},
        {TEROK_SPEC_TTY, "tty"},
        {TEROK_SPEC_STDIN, "stdin"},
        {TEROK_SPEC_SEALED, "sealed"},
    };

    json_object_object_add(o, "flags", json_object_new_int64(spec->flags));
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        json_object_object_add(o, flags[i].name,
                               json_object_new_boolean((spec->flags & flags[i].bit) != 0));
    json_object_object_add(o, "argv", strv_array(spec->argv));
    json_object_object_add(o, "env", strv_array(spec->env));
    json_object_object_add(o, "labels", kv_object(spec->labels));
    json_object_object_add(o, "annotations", kv_object(spec->annotations));
    json_object_object_add(o, "cap_add", strv_array(spec->cap_add));
    json_object_object_add(o, "devices", strv_array(spec->devices));
    json_object_object_add(o, "sysctls", strv_array(spec->sysctls));
    json_object_object_add(o, "mounts", mounts_array(spec));
    json_object_object_add(o, "hostname", str_or_null(spec->hostname));
    json_object_object_add(o, "workdir", str_or_null(spec->workdir));
    json_object_object_add(o, "user", str_or_null(spec->user));
    json_object_object_add(o, "network", str_or_null(spec->network));
    json_object_object_add(o, "userns", str_or_null(spec->userns));
    json_object_object_add(o, "oci_runtime", str_or_null(spec->oci_runtime));
    json_object_object_add(o, "seccomp_profile", str_or_null(spec->seccomp_profile));
    json_object_object_add(o, "pids_limit", json_object_new_int64(spec->pids_limit));
    json_object_object_add(o, "memory_bytes", json_object_new_int64(spec->memory_bytes));
    json_object_object_add(o, "cpu_millis", json_object_new_int64(spec->cpu_millis));
    json_object_object_add(o, "stop_timeout_s", json_object_new_int64(spec->stop_timeout_s));
    json_object_object_add(o, "hooks_annotations", strv_array(spec->hooks_annotations));
    return o;
}
