/* SPDX-License-Identifier: Apache-2.0 */
/* test-podman-spec.c: the run spec -> libpod create body mapping, field by field, without Podman
 * (the plugin's sources compiled in). Asserts the JSON Podman would receive. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "podman.h"
#include "terok-test.h"
#include <criterion/parameterized.h>

/* The plugin's host hooks, as TEROK_PLUGIN_DEFINE would set them. */
static int h_errorv(terok_plugin *p, terok_error *err, int code, const char *fmt, va_list ap)
{
    return terok_error_setv(err, code, fmt, ap);
}
static void h_logv(terok_plugin *p, int priority, const char *fmt, va_list ap)
{
}
static const terok_host host = {.struct_size = sizeof host, .logv = h_logv, .errorv = h_errorv};
const terok_host *terok_plugin__host = &host;
terok_plugin *terok_plugin__self;

static terok_error err;

static json_object *map(const terok_run_spec *s)
{
    char *text = NULL;
    json_object *j;
    int r = spec_to_json(s, &text, &err);

    cr_assert_eq(r, 0, "spec_to_json: %s", terok_error_message(&err));
    j = json_tokener_parse(text);
    cr_assert(j, "not JSON: %s", text);
    free(text);
    return j;
}

/* Value at a dotted path ("resource_limits.cpu.quota", "mounts.0.options.1"), as JSON text. */
static const char *at(json_object *j, const char *path)
{
    static char buf[4096];
    char p[256], *save = NULL;

    snprintf(p, sizeof p, "%s", path);
    for (char *k = strtok_r(p, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(j, json_type_array))
            j = json_object_array_get_idx(j, (size_t)strtoul(k, NULL, 10));
        else if (!json_object_object_get_ex(j, k, &j))
            return "<absent>";
    }
    snprintf(buf, sizeof buf, "%s",
             j ? json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE)
               : "<absent>");
    return buf;
}

static terok_run_spec base(void)
{
    static const char *const argv[] = {"/run/terok-init", "--", "sh", "-c", "echo hi", NULL};
    return (terok_run_spec){.struct_size = sizeof(terok_run_spec),
                            .name = "task-1",
                            .image = "localhost/img:1",
                            .argv = argv};
}

Test(podman_spec, minimal_executes_only_what_is_given)
{
    terok_run_spec s = base();
    json_object *j = map(&s);

    cr_assert_str_eq(at(j, "name"), "\"task-1\"");
    cr_assert_str_eq(at(j, "image"), "\"localhost/img:1\"");
    cr_assert_str_eq(at(j, "entrypoint"), "[\"/run/terok-init\",\"--\",\"sh\",\"-c\",\"echo hi\"]");
    cr_assert_str_eq(at(j, "command"), "<absent>"); /* nothing from the image is appended */
    /* every hardening bit cleared by the operator: relaxed, and visibly so */
    cr_assert_str_eq(at(j, "no_new_privileges"), "false");
    cr_assert_str_eq(at(j, "read_only_filesystem"), "false");
    cr_assert_str_eq(at(j, "seccomp_profile_path"), "\"unconfined\"");
    cr_assert_str_eq(at(j, "cap_drop"), "<absent>");
    cr_assert_str_eq(at(j, "privileged"), "<absent>");
    cr_assert_str_eq(at(j, "netns"), "<absent>");
    json_object_put(j);
}

Test(podman_spec, every_field)
{
    static const char *const env[] = {"A=1", "B=x=y", "EMPTY=", NULL};
    static const char *const labels[] = {"terok.task=t1", NULL};
    static const char *const ann[] = {"org.terok.shield=on", "k=v", NULL};
    static const char *const caps[] = {"perfmon", "net_bind_service", NULL};
    static const char *const devs[] = {"/dev/fuse", "nvidia.com/gpu=all", NULL};
    static const char *const sysctls[] = {"net.ipv4.ip_unprivileged_port_start=0", NULL};
    static const char *const hooks[] = {"org.terok.shield", NULL};
    terok_mount m[] = {
        {.type = TEROK_MOUNT_BIND,
         .flags = TEROK_MOUNT_RO | TEROK_MOUNT_SHARED_LABEL,
         .source = "/run/x/containers/t1",
         .target = "/run/terok"},
        {.type = TEROK_MOUNT_BIND,
         .flags = TEROK_MOUNT_PRIVATE_LABEL,
         .source = "/src/ws",
         .target = "/workspace",
         .options = "nosuid"},
        {.type = TEROK_MOUNT_TMPFS, .target = "/tmp", .options = "size=64m,mode=1777"},
        {.type = TEROK_MOUNT_VOLUME, .flags = TEROK_MOUNT_RO, .source = "cache", .target = "/c"},
    };
    terok_run_spec s = base();
    json_object *j;

    s.flags = TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |
              TEROK_SPEC_DEFAULT_SECCOMP | TEROK_SPEC_REMOVE_ON_EXIT | TEROK_SPEC_TTY |
              TEROK_SPEC_STDIN | TEROK_SPEC_SEALED;
    s.env = env;
    s.labels = labels;
    s.annotations = ann;
    s.hooks_annotations = hooks;
    s.cap_add = caps;
    s.devices = devs;
    s.sysctls = sysctls;
    s.mounts = m;
    s.n_mounts = 4;
    s.hostname = "box";
    s.workdir = "/workspace";
    s.user = "1000:1000";
    s.network = "slirp4netns:allow_host_loopback=true,mtu=1500";
    s.userns = "keep-id:uid=1000,gid=1000";
    s.oci_runtime = "crun";
    s.pids_limit = 128;
    s.memory_bytes = 1 << 30;
    s.cpu_millis = 1500;
    s.stop_timeout_s = 7;
    j = map(&s);

    cr_assert_str_eq(at(j, "env"), "{\"A\":\"1\",\"B\":\"x=y\",\"EMPTY\":\"\"}");
    cr_assert_str_eq(at(j, "labels"), "{\"terok.task\":\"t1\"}");
    cr_assert_str_eq(at(j, "annotations"), "{\"org.terok.shield\":\"on\",\"k\":\"v\"}");
    cr_assert_str_eq(at(j, "cap_drop"), "[\"ALL\"]");
    cr_assert_str_eq(at(j, "cap_add"), "[\"CAP_PERFMON\",\"CAP_NET_BIND_SERVICE\"]");
    cr_assert_str_eq(at(j, "no_new_privileges"), "true");
    cr_assert_str_eq(at(j, "read_only_filesystem"), "true");
    cr_assert_str_eq(at(j, "seccomp_profile_path"), "<absent>"); /* podman's default */
    cr_assert_str_eq(at(j, "remove"), "true");
    cr_assert_str_eq(at(j, "terminal"), "true");
    cr_assert_str_eq(at(j, "stdin"), "true");
    cr_assert_str_eq(at(j, "devices"),
                     "[{\"path\":\"/dev/fuse\"},{\"path\":\"nvidia.com/gpu=all\"}]");
    cr_assert_str_eq(at(j, "sysctl"), "{\"net.ipv4.ip_unprivileged_port_start\":\"0\"}");
    cr_assert_str_eq(at(j, "hostname"), "\"box\"");
    cr_assert_str_eq(at(j, "work_dir"), "\"/workspace\"");
    cr_assert_str_eq(at(j, "user"), "\"1000:1000\"");
    cr_assert_str_eq(at(j, "oci_runtime"), "\"crun\"");
    cr_assert_str_eq(at(j, "netns"), "{\"nsmode\":\"slirp4netns\"}");
    cr_assert_str_eq(at(j, "network_options"),
                     "{\"slirp4netns\":[\"allow_host_loopback=true\",\"mtu=1500\"]}");
    cr_assert_str_eq(at(j, "userns"), "{\"nsmode\":\"keep-id\",\"value\":\"uid=1000,gid=1000\"}");
    cr_assert_str_eq(at(j, "resource_limits"),
                     "{\"pids\":{\"limit\":128},\"memory\":{\"limit\":1073741824},"
                     "\"cpu\":{\"quota\":150000,\"period\":100000}}");
    cr_assert_str_eq(at(j, "stop_timeout"), "7");
    cr_assert_str_eq(at(j, "mounts.0"),
                     "{\"type\":\"bind\",\"source\":\"/run/x/containers/t1\",\"destination\":"
                     "\"/run/terok\",\"options\":[\"z\",\"rbind\",\"ro\"]}");
    cr_assert_str_eq(at(j, "mounts.1.options"), "[\"Z\",\"rbind\",\"rw\",\"nosuid\"]");
    cr_assert_str_eq(at(j, "mounts.2"),
                     "{\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"destination\":\"/tmp\","
                     "\"options\":[\"size=64m\",\"mode=1777\"]}");
    cr_assert_str_eq(at(j, "volumes.0"),
                     "{\"Name\":\"cache\",\"Dest\":\"/c\",\"Options\":[\"ro\"]}");
    cr_assert_str_eq(at(j, "privileged"), "<absent>");
    json_object_put(j);
}

/* Parameters are copied into the worker process: arrays, not pointers ("" = NULL). */
typedef struct net_case {
    char network[64], userns[32], path[48], want[128];
} net_case;

ParameterizedTestParameters(podman_spec, namespaces)
{
    static net_case cases[] = {
        {"none", "", "netns", "{\"nsmode\":\"none\"}"},
        {"bridge", "", "netns", "{\"nsmode\":\"bridge\"}"},
        {"pasta", "", "netns", "{\"nsmode\":\"pasta\"}"},
        {"pasta:--map-host-loopback,169.254.1.2", "", "network_options",
         "{\"pasta\":[\"--map-host-loopback\",\"169.254.1.2\"]}"},
        {"ns:/run/netns/t1", "", "netns", "{\"nsmode\":\"path\",\"value\":\"/run/netns/t1\"}"},
        {"", "auto", "idmappings", "{\"AutoUserNs\":true,\"AutoUserNsOpts\":{}}"},
        {"", "auto", "userns", "{\"nsmode\":\"auto\"}"},
        {"", "auto:size=2048", "idmappings.AutoUserNsOpts", "{\"Size\":2048}"},
        {"", "keep-id", "userns", "{\"nsmode\":\"keep-id\"}"},
        {"", "host", "userns", "{\"nsmode\":\"host\"}"},
    };
    return cr_make_param_array(net_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(net_case *c, podman_spec, namespaces)
{
    terok_run_spec s = base();
    json_object *j;

    s.network = c->network[0] ? c->network : NULL;
    s.userns = c->userns[0] ? c->userns : NULL;
    j = map(&s);
    cr_assert_str_eq(at(j, c->path), c->want, "%s/%s", c->network, c->userns);
    json_object_put(j);
}

typedef struct bad_case {
    char what[16];
    int code;
    char in_message[48];
} bad_case;

static void bad_spec(const char *what, terok_run_spec *s)
{
    static const char *const bad_env[] = {"=x", NULL};
    static const char *const bad_cap[] = {"CAP_SYS_ADMIN", NULL};
    static const char *const hooks[] = {"org.terok.shield", NULL};
    static terok_mount rel = {.type = TEROK_MOUNT_BIND, .source = "rel", .target = "/x"};
    static terok_mount tgt = {.type = TEROK_MOUNT_TMPFS, .target = "x"};
    static terok_mount typ = {.type = 99, .target = "/x"};

    if (!strcmp(what, "name"))
        s->name = "bad name";
    else if (!strcmp(what, "image"))
        s->image = "img;rm";
    else if (!strcmp(what, "env"))
        s->env = bad_env;
    else if (!strcmp(what, "cap"))
        s->cap_add = bad_cap;
    else if (!strcmp(what, "hooks"))
        s->hooks_annotations = hooks;
    else if (!strcmp(what, "bind"))
        s->mounts = &rel, s->n_mounts = 1;
    else if (!strcmp(what, "target"))
        s->mounts = &tgt, s->n_mounts = 1;
    else if (!strcmp(what, "type"))
        s->mounts = &typ, s->n_mounts = 1;
    else if (!strcmp(what, "net"))
        s->network = "host";
    else if (!strcmp(what, "nspath"))
        s->network = "ns:relative";
    else if (!strcmp(what, "userns"))
        s->userns = "nomap";
    else if (!strcmp(what, "autoopt"))
        s->userns = "auto:uidmapping=0:1:1";
    else if (!strcmp(what, "limits"))
        s->pids_limit = -1;
    else if (!strcmp(what, "flags"))
        s->flags = 1u << 31;
    else if (!strcmp(what, "size"))
        s->struct_size = 8;
}

ParameterizedTestParameters(podman_spec, refused)
{
    static bad_case cases[] = {
        {"name", -EINVAL, "'bad name'"},
        {"image", -EINVAL, "'img;rm'"},
        {"env", -EINVAL, "'=x'"},
        {"cap", -EINVAL, "'CAP_SYS_ADMIN'"},
        {"hooks", -EINVAL, "'org.terok.shield'"},
        {"bind", -EINVAL, "'rel'"},
        {"target", -EINVAL, "'x'"},
        {"type", -EOPNOTSUPP, "type 99"},
        {"net", -EOPNOTSUPP, "'host'"},
        {"nspath", -EINVAL, "relative"},
        {"userns", -EOPNOTSUPP, "'nomap'"},
        {"autoopt", -EOPNOTSUPP, "size=N"},
        {"limits", -EINVAL, "negative"},
        {"flags", -EOPNOTSUPP, "0x80000000"},
        {"size", -EINVAL, "struct_size 8"},
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, podman_spec, refused)
{
    terok_run_spec s = base();
    char *text = NULL;

    bad_spec(c->what, &s);
    cr_assert_eq(spec_to_json(&s, &text, &err), c->code, "%s: %s", c->what,
                 terok_error_message(&err));
    cr_assert(strstr(terok_error_message(&err), c->in_message), "%s: '%s' lacks '%s'", c->what,
              terok_error_message(&err), c->in_message);
    cr_assert_null(text);
    terok_error_clear(&err);
}

typedef struct it_collect {
    char out[64], err[64];
    size_t no, ne;
} it_collect;

static int collect(void *userdata, int stream, const void *data, size_t len)
{
    it_collect *c = userdata;
    char *b = stream == 2 ? c->err : c->out;
    size_t *n = stream == 2 ? &c->ne : &c->no;

    cr_assert_lt(*n + len, sizeof c->out);
    memcpy(b + *n, data, len);
    *n += len;
    b[*n] = 0;
    return 0;
}

Test(podman_spec, stream_demux_split_anywhere)
{
    /* frames split at every byte boundary still come out whole and in order */
    static const unsigned char wire[] = {1, 0, 0, 0, 0, 0, 0,   4,   'o', 'u',  't', '\n', 2,  0,
                                         0, 0, 0, 0, 0, 4, 'e', 'r', 'r', '\n', 1,   0,    0,  0,
                                         0, 0, 0, 0, 1, 0, 0,   0,   0,   0,    0,   1,    '!'};
    for (size_t step = 1; step <= sizeof wire; step++) {
        it_collect c = {0};
        demux d = {.emit = collect, .userdata = &c};
        for (size_t off = 0; off < sizeof wire; off += step)
            cr_assert_eq(demux_feed(&d, wire + off, MIN(step, sizeof wire - off)), 0);
        cr_assert_str_eq(c.out, "out\n!", "step %zu", step);
        cr_assert_str_eq(c.err, "err\n", "step %zu", step);
    }
}

Test(podman_spec, rfc3339)
{
    cr_assert_eq(rfc3339_to_unix("1970-01-01T00:00:10Z"), 10);
    cr_assert_eq(rfc3339_to_unix("2026-11-27T08:00:00.123456789Z"), 1795766400);
    cr_assert_eq(rfc3339_to_unix("2026-11-27T09:00:00.5+01:00"), 1795766400);
    cr_assert_eq(rfc3339_to_unix("2026-11-27T07:00:00-01:00"), 1795766400);
    cr_assert_eq(rfc3339_to_unix("0001-01-01T00:00:00Z"), 0);
    cr_assert_eq(rfc3339_to_unix("garbage"), 0);
    cr_assert_eq(rfc3339_to_unix(NULL), 0);
}

static int count_container(void *userdata, const terok_container_info *info)
{
    (*(int *)userdata)++;
    return 0;
}

static int keep_event(void *userdata, const terok_event *ev)
{
    *(terok_event *)userdata = *ev;
    return 0;
}

Test(podman_spec, hostile_answers_are_decoded_not_fatal)
{
    /* json-c asserts on array calls with anything else: a service answering Mounts or Names
     * that are not arrays must not abort the host (found by tests/fuzz podman-json) */
    static const char *const docs[] = {
        "{\"Id\":\"x\",\"Mounts\":{\"a\":1}}",
        "{\"Id\":\"x\",\"Mounts\":\"/src:/dst\",\"Names\":\"task-1\"}",
        "{\"Id\":\"x\",\"Names\":{\"0\":\"task-1\"},\"Mounts\":7}",
    };
    for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
        json_object *j = json_tokener_parse(docs[i]);
        int n = 0;

        cr_assert(j);
        cr_assert_eq(info_from_inspect(j, count_container, &n), 0);
        cr_assert_eq(info_from_list_entry(j, count_container, &n), 0);
        cr_assert_eq(n, 2, "%s", docs[i]);
        json_object_put(j);
    }
    {
        /* an event time that does not fit in nanoseconds is no time, not an overflow */
        json_object *j = json_tokener_parse("{\"Action\":\"start\",\"time\":9223372036854775807}");
        terok_event ev = {0};

        cr_assert(j);
        cr_assert_eq(event_emit(j, keep_event, &ev), 0);
        cr_assert_eq(ev.time_ns, 0);
        json_object_put(j);
        j = json_tokener_parse("{\"Action\":\"start\",\"time\":1795766400}");
        cr_assert_eq(event_emit(j, keep_event, &ev), 0);
        cr_assert_eq(ev.time_ns, INT64_C(1795766400000000000));
        json_object_put(j);
    }
}
