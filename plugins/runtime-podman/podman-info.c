/* SPDX-License-Identifier: Apache-2.0 */
/* podman-info.c: libpod JSON documents (container inspect, list entries, image inspect,
 * events) turned into the SDK's structs. The structs borrow from the JSON and from short-lived
 * vectors freed right after the callback returns. */
#include <stdio.h>
#include <time.h>

#include "podman.h"
#include "util/strv.h"

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;

    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* json-c asserts that its array calls get an array: anything else from the service is absent. */
static json_object *get_array(json_object *o, const char *key)
{
    json_object *v = get(o, key);

    return json_object_is_type(v, json_type_array) ? v : NULL;
}

static int64_t get_int(json_object *o, const char *key)
{
    json_object *v = get(o, key);

    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_string))
        return rfc3339_to_unix(json_object_get_string(v));
    return json_object_get_int64(v);
}

int64_t rfc3339_to_unix(const char *s)
{
    struct tm tm = {0};
    const char *p;
    int64_t t;

    if (isempty(s) || strneq(s, "0001-01-01", 10))
        return 0;
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return 0;
    t = (int64_t)timegm(&tm);
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        t -= (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
    } else if (*p != 'Z')
        return 0;
    return t;
}

char **json_map_to_strv(json_object *o)
{
    char **l = calloc(1, sizeof(char *));

    if (!l || !o || !json_object_is_type(o, json_type_object))
        return l;
    json_object_object_foreach(o, k, v)
    {
        if (strv_extendf(&l, "%s=%s", k, v ? json_object_get_string(v) : "") < 0)
            return strv_free(l);
    }
    return l;
}

static char **json_array_to_strv(json_object *a)
{
    char **l = calloc(1, sizeof(char *));
    size_t n;

    if (!l || !a || !json_object_is_type(a, json_type_array))
        return l;
    n = json_object_array_length(a);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (strv_extend(&l, v ? json_object_get_string(v) : "") < 0)
            return strv_free(l);
    }
    return l;
}

static uint32_t state_from(const char *s)
{
    static const struct {
        const char *name;
        uint32_t state;
    } map[] = {
        {"created", TEROK_CONTAINER_CREATED},     {"configured", TEROK_CONTAINER_CREATED},
        {"initialized", TEROK_CONTAINER_CREATED}, {"running", TEROK_CONTAINER_RUNNING},
        {"paused", TEROK_CONTAINER_PAUSED},       {"stopping", TEROK_CONTAINER_STOPPED},
        {"stopped", TEROK_CONTAINER_STOPPED},     {"exited", TEROK_CONTAINER_EXITED},
        {"removing", TEROK_CONTAINER_REMOVING},
    };

    for (size_t i = 0; s && i < ELEMENTSOF(map); i++)
        if (strcasecmp(s, map[i].name) == 0)
            return map[i].state;
    return TEROK_CONTAINER_UNKNOWN;
}

int info_from_inspect(json_object *j, terok_container_cb cb, void *userdata)
{
    json_object *st = get(j, "State"), *cfg = get(j, "Config"), *ms = get_array(j, "Mounts");
    _cleanup_strv_free_ char **labels = json_map_to_strv(get(cfg, "Labels"));
    _cleanup_strv_free_ char **annotations = json_map_to_strv(get(cfg, "Annotations"));
    _cleanup_strv_free_ char **mounts = calloc(1, sizeof(char *));
    const char *name = json_str(j, "Name");
    terok_container_info info = {.struct_size = sizeof info};
    if (!cb)
        return 0; /* an existence check */

    if (!labels || !annotations || !mounts)
        return -ENOMEM;
    for (size_t i = 0; ms && i < json_object_array_length(ms); i++) {
        json_object *m = json_object_array_get_idx(ms, i), *rw = get(m, "RW");
        if (strv_extendf(&mounts, "%s:%s%s", strempty(json_str(m, "Source")),
                         strempty(json_str(m, "Destination")),
                         rw && !json_object_get_boolean(rw) ? ":ro" : "") < 0)
            return -ENOMEM;
    }
    info.state = state_from(json_str(st, "Status"));
    info.id = json_str(j, "Id");
    info.name = name && name[0] == '/' ? name + 1 : name;
    info.image = json_str(j, "ImageName") ? json_str(j, "ImageName") : json_str(j, "Image");
    info.status = json_str(st, "Status");
    info.pid = get_int(st, "Pid");
    info.exit_code = (int32_t)get_int(st, "ExitCode");
    info.created_at = get_int(j, "Created");
    info.started_at = get_int(st, "StartedAt");
    info.finished_at = get_int(st, "FinishedAt");
    info.labels = (const char *const *)labels;
    info.annotations = (const char *const *)annotations;
    info.mounts = (const char *const *)mounts;
    info.raw_json = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
    return cb(userdata, &info);
}

int info_from_list_entry(json_object *j, terok_container_cb cb, void *userdata)
{
    _cleanup_strv_free_ char **labels = json_map_to_strv(get(j, "Labels"));
    _cleanup_strv_free_ char **mounts = json_array_to_strv(get(j, "Mounts"));
    _cleanup_strv_free_ char **none = calloc(1, sizeof(char *));
    json_object *names = get_array(j, "Names");
    terok_container_info info = {.struct_size = sizeof info};
    if (!cb)
        return 0; /* an existence check */

    if (!labels || !mounts || !none)
        return -ENOMEM;
    info.state = state_from(json_str(j, "State"));
    info.id = json_str(j, "Id");
    if (names && json_object_array_length(names))
        info.name = json_object_get_string(json_object_array_get_idx(names, 0));
    info.image = json_str(j, "Image");
    info.status = json_str(j, "Status");
    info.pid = get_int(j, "Pid");
    info.exit_code = (int32_t)get_int(j, "ExitCode");
    info.created_at = get_int(j, "Created");
    info.started_at = get_int(j, "StartedAt");
    info.finished_at = get_int(j, "ExitedAt");
    info.labels = (const char *const *)labels;
    info.annotations = (const char *const *)none; /* the list endpoint has none; use inspect */
    info.mounts = (const char *const *)mounts;
    info.raw_json = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
    return cb(userdata, &info);
}

int image_info_emit(json_object *j, terok_image_cb cb, void *userdata)
{
    json_object *cfg = get(j, "Config");
    _cleanup_strv_free_ char **ep = json_array_to_strv(get(cfg, "Entrypoint"));
    _cleanup_strv_free_ char **cmd = json_array_to_strv(get(cfg, "Cmd"));
    _cleanup_strv_free_ char **env = json_array_to_strv(get(cfg, "Env"));
    terok_image_info info = {.struct_size = sizeof info};
    if (!cb)
        return 0; /* an existence check */

    if (!ep || !cmd || !env)
        return -ENOMEM;
    info.id = json_str(j, "Id");
    info.entrypoint = (const char *const *)ep;
    info.cmd = (const char *const *)cmd;
    info.env = (const char *const *)env;
    info.user = json_str(cfg, "User");
    info.workdir = json_str(cfg, "WorkingDir");
    return cb(userdata, &info);
}

int event_emit(json_object *j, terok_event_cb cb, void *userdata)
{
    json_object *actor = get(j, "Actor"), *attrs = get(actor, "Attributes");
    _cleanup_strv_free_ char **labels = calloc(1, sizeof(char *));
    const char *code = json_str(attrs, "containerExitCode");
    terok_event ev = {.struct_size = sizeof ev, .exit_code = -1};
    static const char *const not_labels[] = {"containerExitCode", "image", "name", "podId", NULL};

    if (!labels)
        return -ENOMEM;
    /* Podman mixes the container's labels into Actor.Attributes with a few keys of its own. */
    if (attrs && json_object_is_type(attrs, json_type_object)) {
        json_object_object_foreach(attrs, k, v)
        {
            if (strv_contains(not_labels, k))
                continue;
            if (strv_extendf(&labels, "%s=%s", k, v ? json_object_get_string(v) : "") < 0)
                return -ENOMEM;
        }
    }
    ev.action = json_str(j, "Action") ? json_str(j, "Action") : json_str(j, "status");
    ev.id = json_str(actor, "ID") ? json_str(actor, "ID") : json_str(j, "id");
    ev.name = json_str(attrs, "name");
    ev.labels = (const char *const *)labels;
    ev.time_ns = get_int(j, "timeNano");
    if (!ev.time_ns) {
        int64_t t = get_int(j, "time");
        /* a time that does not fit in nanoseconds is no time, not an overflow */
        if (t >= INT64_MIN / 1000000000 && t <= INT64_MAX / 1000000000)
            ev.time_ns = t * 1000000000;
    }
    if (code) {
        char *end = NULL;
        long c = strtol(code, &end, 10);
        if (end != code && !*end && c >= 0 && c <= 255)
            ev.exit_code = (int32_t)c;
    }
    if (!ev.action)
        return 0;
    return cb(userdata, &ev);
}
