/* SPDX-License-Identifier: Apache-2.0 */
/* test-spec.c: run-request validation (table-driven, hostile input, exact messages) and spec
 * composition (hardening defaults, relaxations recorded, argv from the image, GPU selectors). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <json-c/json.h>
#include <stdio.h>

#include "spec.h"
#include "terok-test.h"
#include "util/strv.h"

static char **sv(const char *a, const char *b)
{
    char **l = calloc(1, sizeof(char *));

    if (a)
        strv_extend(&l, a);
    if (b)
        strv_extend(&l, b);
    return l;
}

static void base(run_request *r)
{
    run_request_init(r);
    r->name = "ok";
    r->image = "localhost/null:latest";
}

static void add_volume(run_request *r, const char *src, const char *target)
{
    r->volumes = reallocarray(r->volumes, r->n_volumes + 1, sizeof(volume_req));
    r->volumes[r->n_volumes++] = (volume_req){.source = strdup(src), .target = strdup(target)};
}

/* ------------------------------------------------------------------ validation table */

typedef void (*mutator)(run_request *r);
typedef struct bad_case {
    const char *what;
    mutator mutate;
    int code;
    const char *message;
} bad_case;

static void m_name_slash(run_request *r)
{
    r->name = "../etc";
}
static void m_name_long(run_request *r)
{
    r->name = "a123456789012345678901234567890123456789012345678901234567890123";
}
static void m_name_ctl(run_request *r)
{
    r->name = "a\nb";
}
static void m_image_empty(run_request *r)
{
    r->image = "";
}
static void m_image_space(run_request *r)
{
    r->image = "busybox; rm -rf /";
}
static void m_env_no_eq(run_request *r)
{
    r->env = sv("JUSTKEY", NULL);
}
static void m_env_bad_key(run_request *r)
{
    r->env = sv("1BAD=x", NULL);
}
static void m_env_dash_key(run_request *r)
{
    r->env = sv("A-B=x", NULL);
}
static void m_env_empty_key(run_request *r)
{
    r->env = sv("=x", NULL);
}
static void m_label_managed(run_request *r)
{
    r->labels = sv("org.terok.managed=0", NULL);
}
static void m_label_managed_name(run_request *r)
{
    r->labels = sv("org.terok.name=x", NULL);
}
static void m_label_no_eq(run_request *r)
{
    r->labels = sv("team", NULL);
}
static void m_label_ctl(run_request *r)
{
    r->labels = sv("a=b\nc", NULL);
}
static void m_annot_managed(run_request *r)
{
    r->annotations = sv("org.terok.shield.bundle=/etc/shadow", NULL);
}
static void m_annot_unknown(run_request *r)
{
    r->annotations = sv("run.oci.hooks=/evil", NULL);
}
static void m_cap(run_request *r)
{
    r->cap_add = sv("SYS_ADMIN", NULL);
}
static void m_cap_net(run_request *r)
{
    r->cap_add = sv("perfmon", "cap_net_admin");
}
static void m_vol_rel(run_request *r)
{
    add_volume(r, "/tmp", "data");
}
static void m_vol_root(run_request *r)
{
    add_volume(r, "/tmp", "/");
}
static void m_vol_root2(run_request *r)
{
    add_volume(r, "/tmp", "//./");
}
static void m_vol_dotdot(run_request *r)
{
    add_volume(r, "/tmp", "/a/../run/terok");
}
static void m_vol_managed(run_request *r)
{
    add_volume(r, "/tmp", "/run/terok");
}
static void m_vol_managed_sub(run_request *r)
{
    add_volume(r, "/tmp", "/run/terok/vault.sock");
}
static void m_vol_managed_sneaky(run_request *r)
{
    add_volume(r, "/tmp", "//run/./terok/");
}
static void m_vol_init(run_request *r)
{
    add_volume(r, "/tmp", "/run/terok-init");
}
static void m_vol_src_rel(run_request *r)
{
    add_volume(r, "tmp", "/data");
}
static void m_vol_src_missing(run_request *r)
{
    add_volume(r, "/nonexistent/x", "/data");
}
static void m_vol_twice(run_request *r)
{
    add_volume(r, "/tmp", "/data");
    add_volume(r, "/tmp", "/data/");
}
static void m_net_host(run_request *r)
{
    r->network = "host";
}
static void m_net_container(run_request *r)
{
    r->network = "container:other";
}
static void m_net_ns_rel(run_request *r)
{
    r->network = "ns:proc/1/ns/net";
}
static void m_hostname(run_request *r)
{
    r->hostname = "-bad-";
}
static void m_hostname_us(run_request *r)
{
    r->hostname = "under_score";
}
static void m_runtime(run_request *r)
{
    r->oci_runtime = "/usr/bin/runc";
}
static void m_runtime_pad(run_request *r)
{
    r->oci_runtime = " crun";
}
static void m_gpu(run_request *r)
{
    r->gpus = sv("matrox", NULL);
}
static void m_gpu_idx(run_request *r)
{
    r->gpus = sv("nvidia:x", NULL);
}
static void m_userns(run_request *r)
{
    r->userns = "host";
}
static void m_workdir(run_request *r)
{
    r->workdir = "relative";
}
static void m_user(run_request *r)
{
    r->user = "root;id";
}
static void m_device(run_request *r)
{
    r->devices = sv("/dev/../etc/shadow", NULL);
}
static void m_pids(run_request *r)
{
    r->pids_limit = -5;
}

static void m_env_100k(run_request *r)
{
    size_t n = 100000;
    r->env = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        cr_assert(asprintf(&r->env[i], "K%zu=v", i) > 0);
}

static void m_env_huge(run_request *r)
{
    char *big = malloc(2 * 1024 * 1024 + 3);
    memset(big, 'x', 2 * 1024 * 1024 + 2);
    memcpy(big, "K=", 2);
    big[2 * 1024 * 1024 + 2] = 0;
    r->env = calloc(2, sizeof(char *));
    r->env[0] = big;
}

static const bad_case bad_cases[] = {
    {"name with slash", m_name_slash, -EINVAL,
     "invalid container name '../etc': use 1-63 characters of [a-zA-Z0-9_.-], starting with "
     "a letter or digit"},
    {"name too long", m_name_long, -EINVAL,
     "invalid container name "
     "'a123456789012345678901234567890123456789012345678901234567890123': use 1-63 "
     "characters of [a-zA-Z0-9_.-], starting with a letter or digit"},
    {"name with newline", m_name_ctl, -EINVAL,
     "invalid container name 'a\\x0ab': use 1-63 characters of [a-zA-Z0-9_.-], starting "
     "with a letter or digit"},
    {"empty image", m_image_empty, -EINVAL,
     "invalid image reference '': it must be 1-255 characters without whitespace or control "
     "characters"},
    {"image with spaces", m_image_space, -EINVAL,
     "invalid image reference 'busybox; rm -rf /': it must be 1-255 characters without "
     "whitespace or control characters"},
    {"env without =", m_env_no_eq, -EINVAL,
     "invalid environment entry 'JUSTKEY': expected KEY=VALUE"},
    {"env key starting with digit", m_env_bad_key, -EINVAL,
     "invalid environment variable name '1BAD': use [A-Za-z_][A-Za-z0-9_]*"},
    {"env key with dash", m_env_dash_key, -EINVAL,
     "invalid environment variable name 'A-B': use [A-Za-z_][A-Za-z0-9_]*"},
    {"env empty key", m_env_empty_key, -EINVAL,
     "invalid environment variable name '': use [A-Za-z_][A-Za-z0-9_]*"},
    {"100k env entries", m_env_100k, -E2BIG,
     "too many environment variables: 100000 (at most 4096)"},
    {"2 MiB env", m_env_huge, -E2BIG, "environment too large: 2097155 bytes (at most 1048576)"},
    {"managed label", m_label_managed, -EINVAL,
     "label 'org.terok.managed' is managed by terok-sandbox and cannot be set"},
    {"managed name label", m_label_managed_name, -EINVAL,
     "label 'org.terok.name' is managed by terok-sandbox and cannot be set"},
    {"label without value", m_label_no_eq, -EINVAL,
     "invalid label 'team': expected KEY=VALUE with a non-empty key without whitespace or "
     "control characters"},
    {"label value with newline", m_label_ctl, -EINVAL,
     "invalid value for label 'a': control characters are not allowed"},
    {"managed annotation", m_annot_managed, -EINVAL,
     "annotation 'org.terok.shield.bundle' is managed by terok-sandbox and cannot be set"},
    {"unknown annotation", m_annot_unknown, -EINVAL,
     "annotation 'run.oci.hooks' is not allowed (allowed: dossier.meta_path, krun.cpus)"},
    {"ungrantable cap", m_cap, -EINVAL,
     "capability 'SYS_ADMIN' is not grantable (grantable: perfmon)"},
    {"second cap ungrantable", m_cap_net, -EINVAL,
     "capability 'cap_net_admin' is not grantable (grantable: perfmon)"},
    {"relative volume target", m_vol_rel, -EINVAL, "volume target 'data' must be an absolute path"},
    {"volume on /", m_vol_root, -EINVAL, "volume target '/' would replace the container's root"},
    {"volume on //./", m_vol_root2, -EINVAL,
     "volume target '//./' would replace the container's root"},
    {"volume with ..", m_vol_dotdot, -EINVAL,
     "volume target '/a/../run/terok' must not contain '..'"},
    {"volume on /run/terok", m_vol_managed, -EINVAL,
     "volume target '/run/terok' is managed by terok-sandbox (/run/terok and "
     "/run/terok-init are reserved)"},
    {"volume under /run/terok", m_vol_managed_sub, -EINVAL,
     "volume target '/run/terok/vault.sock' is managed by terok-sandbox (/run/terok and "
     "/run/terok-init are reserved)"},
    {"volume on //run/./terok/", m_vol_managed_sneaky, -EINVAL,
     "volume target '//run/./terok/' is managed by terok-sandbox (/run/terok and "
     "/run/terok-init are reserved)"},
    {"volume on /run/terok-init", m_vol_init, -EINVAL,
     "volume target '/run/terok-init' is managed by terok-sandbox (/run/terok and "
     "/run/terok-init are reserved)"},
    {"relative volume source", m_vol_src_rel, -EINVAL,
     "volume source 'tmp' must be an absolute path"},
    {"missing volume source", m_vol_src_missing, -ENOENT,
     "volume source '/nonexistent/x' does not exist"},
    {"volume target twice", m_vol_twice, -EINVAL, "volume target '/data/' is given twice"},
    {"host network", m_net_host, -EINVAL,
     "network 'host' is not allowed (use none, slirp4netns[:OPTIONS], pasta[:OPTIONS], "
     "bridge or ns:/PATH)"},
    {"container network", m_net_container, -EINVAL,
     "network 'container:other' is not allowed (use none, slirp4netns[:OPTIONS], "
     "pasta[:OPTIONS], bridge or ns:/PATH)"},
    {"relative netns", m_net_ns_rel, -EINVAL,
     "network 'ns:proc/1/ns/net' is not allowed (use none, slirp4netns[:OPTIONS], "
     "pasta[:OPTIONS], bridge or ns:/PATH)"},
    {"bad hostname", m_hostname, -EINVAL,
     "invalid hostname '-bad-': use dot-separated labels of [a-zA-Z0-9-], at most 63 "
     "characters"},
    {"hostname with underscore", m_hostname_us, -EINVAL,
     "invalid hostname 'under_score': use dot-separated labels of [a-zA-Z0-9-], at most 63 "
     "characters"},
    {"path-shaped OCI runtime", m_runtime, -EINVAL,
     "OCI runtime '/usr/bin/runc' is not allowed (allowed: crun, krun)"},
    {"padded OCI runtime", m_runtime_pad, -EINVAL,
     "OCI runtime ' crun' is not allowed (allowed: crun, krun)"},
    {"unknown GPU vendor", m_gpu, -EINVAL,
     "invalid GPU selector 'matrox': use all, nvidia[:N], amd[:N] or intel[:N]"},
    {"bad GPU index", m_gpu_idx, -EINVAL,
     "invalid GPU selector 'nvidia:x': use all, nvidia[:N], amd[:N] or intel[:N]"},
    {"host userns", m_userns, -EINVAL,
     "user namespace 'host' is not allowed (use auto[:OPTIONS] or keep-id[:OPTIONS])"},
    {"relative workdir", m_workdir, -EINVAL,
     "working directory 'relative' must be an absolute path"},
    {"user with shell metachar", m_user, -EINVAL,
     "invalid user 'root;id': use NAME or UID, optionally with :GROUP or :GID"},
    {"device traversal", m_device, -EINVAL,
     "invalid device '/dev/../etc/shadow': use /dev/PATH[:/dev/PATH[:rwm]] or a CDI name "
     "vendor.com/class=name"},
    {"negative pids", m_pids, -EINVAL, "invalid pids limit -5"},
};

/* Criterion runs each parameter in a fresh process (other ASLR base): pass indices, not
 * pointers into our own data. */
#define INDEX_PARAMS(table)                                                                        \
    static size_t idx[ELEMENTSOF(table)];                                                          \
    for (size_t i = 0; i < ELEMENTSOF(idx); i++)                                                   \
        idx[i] = i;                                                                                \
    return cr_make_param_array(size_t, idx, ELEMENTSOF(idx))

ParameterizedTestParameters(spec, rejects)
{
    INDEX_PARAMS(bad_cases);
}

ParameterizedTest(size_t *i, spec, rejects, .timeout = 30)
{
    const bad_case *c = &bad_cases[*i];
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    c->mutate(&r);
    cr_assert(eq(int, spec_validate(&r, &pol, &err), c->code), "%s: %s", c->what,
              terok_error_message(&err));
    cr_assert(eq(str, err.message, (char *)c->message), "%s", c->what);
    terok_error_clear(&err);
    run_request_done(&r);
    spec_policy_done(&pol);
}

typedef struct good_case {
    const char *what;
    mutator mutate;
} good_case;

static void g_nothing(run_request *r)
{
    (void)r;
}
static void g_no_name(run_request *r)
{
    r->name = NULL;
}
static void g_env(run_request *r)
{
    r->env = sv("A_B=multi\nline", "EMPTY=");
}
static void g_labels(run_request *r)
{
    r->labels = sv("team=blue", "terok=fine");
}
static void g_annot(run_request *r)
{
    r->annotations = sv("krun.cpus=2", NULL);
}
static void g_cap(run_request *r)
{
    r->cap_add = sv("CAP_PERFMON", NULL);
}
static void g_vol(run_request *r)
{
    add_volume(r, "/tmp", "/data");
    add_volume(r, "/etc", "/run/terokx");
    add_volume(r, "/etc", "/run");
}
static void g_net(run_request *r)
{
    r->network = "pasta:--map-host-loopback,169.254.1.2";
}
static void g_net2(run_request *r)
{
    r->network = "ns:/proc/1/ns/net";
}
static void g_host(run_request *r)
{
    r->hostname = "build-1.example";
}
static void g_gpu(run_request *r)
{
    r->gpus = sv("nvidia:0", "amd");
}
static void g_user(run_request *r)
{
    r->user = "1000:1000";
}
static void g_dev(run_request *r)
{
    r->devices = sv("/dev/fuse", "nvidia.com/gpu=all");
}
static void g_rt(run_request *r)
{
    r->oci_runtime = "krun";
}

static const good_case good_cases[] = {
    {"defaults", g_nothing}, {"generated name", g_no_name},
    {"env", g_env},          {"labels", g_labels},
    {"annotation", g_annot}, {"cap", g_cap},
    {"volumes", g_vol},      {"pasta", g_net},
    {"netns", g_net2},       {"hostname", g_host},
    {"gpus", g_gpu},         {"user", g_user},
    {"devices", g_dev},      {"krun", g_rt},
};

ParameterizedTestParameters(spec, accepts)
{
    INDEX_PARAMS(good_cases);
}

ParameterizedTest(size_t *i, spec, accepts)
{
    const good_case *c = &good_cases[*i];
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    c->mutate(&r);
    cr_assert(eq(int, spec_validate(&r, &pol, &err), 0), "%s: %s", c->what,
              terok_error_message(&err));
    run_request_done(&r);
    spec_policy_done(&pol);
}

/* ------------------------------------------------------------------ composition */

static composed_spec *compose(run_request *r, char **entry, char **cmd, sandbox_notes *notes,
                              spec_policy *pol)
{
    terok_error err = TEROK_ERROR_INIT;
    composed_spec *c = NULL;

    terok_assert_ok(spec_validate(r, pol, &err), &err);
    terok_assert_ok(spec_compose(r, r->name ? r->name : "gen", pol, entry, cmd, notes, &c, &err),
                    &err);
    strv_free(entry);
    strv_free(cmd);
    return c;
}

/* strv_join into a buffer that lives until the next call (no leak under ASan). */
static const char *joined(char **l)
{
    static char buf[1024];
    char *j = strv_join((const char *const *)l, " ");

    snprintf(buf, sizeof buf, "%s", j ? j : "");
    free(j);
    return buf;
}

static json_object *jget(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        if (!json_object_object_get_ex(o, tok, &o))
            return NULL;
    return o;
}

Test(spec, hardening_on_by_default)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    sandbox_notes notes = {0};
    run_request r;
    composed_spec *c;
    json_object *j;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    c = compose(&r, sv("/bin/null-init", NULL), sv("echo", "hello"), &notes, &pol);
    cr_assert(eq(u32, c->spec.flags,
                 TEROK_SPEC_CAP_DROP_ALL | TEROK_SPEC_NO_NEW_PRIVS | TEROK_SPEC_READ_ONLY_ROOT |
                     TEROK_SPEC_DEFAULT_SECCOMP));
    cr_assert(eq(i64, c->spec.pids_limit, 512));
    cr_assert(eq(i64, c->spec.memory_bytes, 0));
    cr_assert(eq(i64, c->spec.stop_timeout_s, 10));
    cr_assert(eq(str, (char *)c->spec.workdir, "/workspace"));
    cr_assert(eq(str, c->argv[0], "/bin/null-init"));
    cr_assert(eq(str, c->argv[1], "echo"));
    cr_assert(eq(str, c->argv[2], "hello"));
    cr_assert(c->argv[3] == NULL);
    cr_assert(strv_contains(c->spec.labels, "org.terok.managed=1"));
    cr_assert(strv_contains(c->spec.labels, "org.terok.name=ok"));
    cr_assert(eq(sz, c->spec.n_mounts, 2));
    cr_assert(eq(u32, c->spec.mounts[0].type, TEROK_MOUNT_TMPFS));
    cr_assert(eq(str, (char *)c->spec.mounts[0].target, "/tmp"));
    cr_assert(eq(u32, c->spec.mounts[1].type, TEROK_MOUNT_VOLUME));
    cr_assert(eq(str, (char *)c->spec.mounts[1].target, "/workspace"));

    j = json_tokener_parse(c->json);
    cr_assert(j != NULL);
    cr_assert(json_object_get_boolean(jget(j, "hardening.read_only_root")));
    cr_assert(json_object_get_boolean(jget(j, "hardening.cap_drop_all")));
    cr_assert(eq(int, json_object_get_int(jget(j, "hardening.pids_limit")), 512));
    /* A shield is configured: no relaxation and no warning here; sandbox_create prepares it
     * (spec_add_shield) or refuses the run. */
    cr_assert(eq(sz, json_object_array_length(jget(j, "relaxations")), 0), "%s", c->json);
    cr_assert(json_object_get_boolean(jget(j, "shield.enabled")), "%s", c->json);
    cr_assert(jget(j, "shield.reason") == NULL, "%s", c->json);
    cr_assert(eq(sz, strv_length(notes.warnings), 0));
    json_object_put(j);
    composed_spec_free(c);
    sandbox_notes_done(&notes);
    run_request_done(&r);
    spec_policy_done(&pol);
}

Test(spec, relaxations_are_applied_and_recorded)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    sandbox_notes notes = {0};
    run_request r;
    composed_spec *c;
    json_object *j, *rel;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    r.read_only = 0;
    r.no_new_privs = 0;
    r.default_seccomp = 0;
    r.no_shield = true;
    r.pids_limit = 0;
    r.cap_add = sv("cap_PERFMON", NULL);
    c = compose(&r, NULL, sv("true", NULL), &notes, &pol);
    cr_assert(eq(u32, c->spec.flags, TEROK_SPEC_CAP_DROP_ALL));
    cr_assert(eq(str, (char *)c->spec.cap_add[0], "perfmon"));
    j = json_tokener_parse(c->json);
    rel = jget(j, "relaxations");
    cr_assert(eq(str, (char *)json_object_to_json_string_ext(rel, JSON_C_TO_STRING_PLAIN),
                 "[{\"setting\":\"read_only_root\",\"source\":\"command line (--no-read-only)\"},"
                 "{\"setting\":\"no_new_privileges\",\"source\":\"command line "
                 "(--allow-new-privileges)\"},"
                 "{\"setting\":\"default_seccomp\",\"source\":\"command line (--no-seccomp)\"},"
                 "{\"setting\":\"cap_add:perfmon\",\"source\":\"command line (--cap-add)\"},"
                 "{\"setting\":\"pids_limit\",\"source\":\"command line (--pids-limit 0)\"},"
                 "{\"setting\":\"shield\",\"source\":\"command line (--no-shield)\"}]"));
    cr_assert(eq(str, notes.warnings[0],
                 "container 'ok' runs unshielded (--no-shield): its network egress is not "
                 "filtered"));
    json_object_put(j);
    composed_spec_free(c);
    sandbox_notes_done(&notes);
    run_request_done(&r);
    spec_policy_done(&pol);
}

Test(spec, argv_composition)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;
    composed_spec *c = NULL;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    r.command = sv("exit", "3");
    c = compose(&r, sv("/bin/null-init", NULL), sv("echo", "hello"), NULL, &pol);
    cr_assert(eq(str, (char *)joined(c->argv), "/bin/null-init exit 3"));
    composed_spec_free(c);

    /* an explicit entrypoint drops the image's Cmd */
    strv_free(r.command);
    r.command = NULL;
    r.entrypoint = sv("/bin/sh", NULL);
    c = compose(&r, sv("/bin/null-init", NULL), sv("echo", "hello"), NULL, &pol);
    cr_assert(eq(str, c->argv[0], "/bin/sh"));
    cr_assert(c->argv[1] == NULL);
    composed_spec_free(c);

    /* terok-init wraps whatever runs */
    strv_free(r.entrypoint);
    r.entrypoint = NULL;
    pol.init_binary = strdup("/usr/libexec/terok-sandbox/terok-init");
    c = compose(&r, sv("/bin/null-init", NULL), sv("echo", "hello"), NULL, &pol);
    cr_assert(eq(str, (char *)joined(c->argv),
                 "/run/terok-init -b 9419=/run/terok/vault.sock -b 9418=/run/terok/gate.sock -- "
                 "/bin/null-init echo hello"));
    cr_assert(eq(str, (char *)c->spec.mounts[c->spec.n_mounts - 1].target, "/run/terok-init"));
    cr_assert(c->spec.mounts[c->spec.n_mounts - 1].flags & TEROK_MOUNT_RO);
    composed_spec_free(c);

    /* nothing to run at all */
    cr_assert(eq(int, spec_compose(&r, "ok", &pol, NULL, NULL, NULL, &c, &err), -EINVAL));
    cr_assert(eq(str, err.message,
                 "image 'localhost/null:latest' has no Entrypoint or Cmd: give a command to run"));
    terok_error_clear(&err);
    run_request_done(&r);
    spec_policy_done(&pol);
}

Test(spec, user_volumes_replace_managed_scratch_mounts)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;
    composed_spec *c;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    add_volume(&r, "/tmp", "/tmp/");
    add_volume(&r, "/etc", "/workspace");
    r.volumes[1].read_only = true;
    c = compose(&r, NULL, sv("true", NULL), NULL, &pol);
    cr_assert(eq(sz, c->spec.n_mounts, 2));
    cr_assert(eq(u32, c->spec.mounts[0].type, TEROK_MOUNT_BIND));
    cr_assert(eq(u32, c->spec.mounts[1].flags, TEROK_MOUNT_RO));
    composed_spec_free(c);
    run_request_done(&r);
    spec_policy_done(&pol);
}

/* Sealed: copied volumes are no mounts (a sealed /workspace keeps the writable volume, which
 * receives the content); a live one stays a bind mount; the record lists what is copied. */
Test(spec, sealed_volumes_are_not_mounted)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;
    composed_spec *c;
    json_object *o, *cp;
    bool sealed;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    r.sealed = true;
    add_volume(&r, "/etc", "/data");
    add_volume(&r, "/usr", "/workspace");
    add_volume(&r, "/var", "/live");
    r.volumes[2].live = true;
    c = compose(&r, NULL, sv("true", NULL), NULL, &pol);
    sealed = c->spec.flags & TEROK_SPEC_SEALED;
    cr_assert(sealed, "flags 0x%x", c->spec.flags);
    /* /live (bind), /tmp (tmpfs), /workspace (volume) */
    cr_assert(eq(sz, c->spec.n_mounts, 3));
    cr_assert(eq(u32, c->spec.mounts[0].type, TEROK_MOUNT_BIND));
    cr_assert(eq(str, (char *)c->spec.mounts[0].target, "/live"));
    cr_assert(eq(u32, c->spec.mounts[2].type, TEROK_MOUNT_VOLUME));
    cr_assert(eq(str, (char *)c->spec.mounts[2].target, "/workspace"));
    o = json_tokener_parse(c->json);
    cp = jget(o, "copied_in");
    cr_assert(cp && json_object_array_length(cp) == 2, "%s", c->json);
    cr_assert(eq(str,
                 (char *)json_object_get_string(jget(json_object_array_get_idx(cp, 0), "source")),
                 "/etc"));
    cr_assert(eq(str,
                 (char *)json_object_get_string(jget(json_object_array_get_idx(cp, 1), "target")),
                 "/workspace"));
    json_object_put(o);
    composed_spec_free(c);
    run_request_done(&r);
    spec_policy_done(&pol);
}

Test(spec, sensitive_env_values_are_redacted_in_the_record)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    run_request r;
    composed_spec *c;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    r.env = sv("ANTHROPIC_API_KEY=sk-real-secret", "LANG=C");
    c = compose(&r, NULL, sv("true", NULL), NULL, &pol);
    cr_assert(strv_contains(c->spec.env, "ANTHROPIC_API_KEY=sk-real-secret"),
              "the runtime gets the value");
    cr_assert(strstr(c->json, "sk-real-secret") == NULL, "the record never holds it");
    cr_assert(strstr(c->json, "\"ANTHROPIC_API_KEY=<redacted>\"") != NULL);
    cr_assert(strstr(c->json, "\"LANG=C\"") != NULL);
    composed_spec_free(c);
    run_request_done(&r);
    spec_policy_done(&pol);
}

Test(spec, gpu_selectors)
{
    terok_error err = TEROK_ERROR_INIT;
    char **d = NULL;

    terok_assert_ok(spec_gpu_devices("all", &d, &err), &err);
    terok_assert_ok(spec_gpu_devices("nvidia:0", &d, &err), &err);
    terok_assert_ok(spec_gpu_devices("amd", &d, &err), &err);
    terok_assert_ok(spec_gpu_devices("intel:1", &d, &err), &err);
    cr_assert(eq(str, (char *)joined(d),
                 "nvidia.com/gpu=all nvidia.com/gpu=0 /dev/kfd /dev/dri /dev/dri/renderD129"));
    strv_free(d);
}

Test(spec, parse_cpus_and_volumes)
{
    terok_error err = TEROK_ERROR_INIT;
    int64_t m;
    volume_req v;

    cr_assert(eq(int, spec_parse_cpus("1.5", &m), 0));
    cr_assert(eq(i64, m, 1500));
    cr_assert(eq(int, spec_parse_cpus("0.25", &m), 0));
    cr_assert(eq(i64, m, 250));
    cr_assert(eq(int, spec_parse_cpus("2", &m), 0));
    cr_assert(eq(i64, m, 2000));
    cr_assert(spec_parse_cpus("1.2345", &m) < 0);
    cr_assert(spec_parse_cpus("-1", &m) < 0);
    cr_assert(spec_parse_cpus("", &m) < 0);
    cr_assert(spec_parse_cpus("1e3", &m) < 0);

    terok_assert_ok(spec_parse_volume("/src:/dst:ro,Z", &v, &err), &err);
    cr_assert(eq(str, v.source, "/src"));
    cr_assert(eq(str, v.target, "/dst"));
    cr_assert(v.read_only);
    cr_assert(eq(u32, v.label, TEROK_MOUNT_PRIVATE_LABEL));
    free(v.source);
    free(v.target);
    terok_assert_ok(spec_parse_volume("/a:/b:ro,live", &v, &err), &err);
    cr_assert(v.live && v.read_only);
    free(v.source);
    free(v.target);
    cr_assert(eq(int, spec_parse_volume("/a:/b:lively", &v, &err), -EINVAL));
    terok_error_clear(&err);
    cr_assert(eq(int, spec_parse_volume("/src", &v, &err), -EINVAL));
    cr_assert(eq(str, err.message, "invalid volume '/src': use HOST:TARGET[:OPTIONS]"));
    cr_assert(eq(int, spec_parse_volume("/a:/b:exec", &v, &err), -EINVAL));
    cr_assert(eq(str, err.message,
                 "invalid volume options in '/a:/b:exec': use a comma list of ro, rw, z, Z, live"));
    terok_error_clear(&err);
}

Test(spec, policy_defaults_without_config)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    cr_assert(pol.read_only && pol.no_new_privs && pol.cap_drop_all && pol.seccomp);
    cr_assert(eq(i64, pol.pids_limit, 512));
    cr_assert(eq(str, pol.grantable_caps[0], "perfmon"));
    cr_assert(pol.grantable_caps[1] == NULL);
    cr_assert(eq(str, pol.shield_backend, "nft"));
    cr_assert(pol.network == NULL);
    spec_policy_done(&pol);
}

Test(spec, shield_annotations_gate_the_hook_and_are_recorded)
{
    terok_error err = TEROK_ERROR_INIT;
    spec_policy pol;
    sandbox_notes notes = {0};
    run_request r;
    composed_spec *c;
    json_object *j;
    char *ann[] = {"org.terok.shield.bundle=/s/containers/ok/shield", "org.terok.shield.version=1",
                   NULL};
    char *bad[] = {"org.terok.shield.version=1", NULL};

    terok_assert_ok(spec_policy_load(NULL, &pol, &err), &err);
    base(&r);
    c = compose(&r, sv("/bin/null-init", NULL), sv("echo", "hello"), &notes, &pol);
    /* no bundle annotation: the hook would never run, refused */
    cr_assert(eq(int, spec_add_shield(c, "/s", bad, NULL, &err), -EPROTO));
    cr_assert(strstr(err.message, "org.terok.shield.bundle") != NULL, "%s", err.message);
    terok_error_clear(&err);
    terok_assert_ok(spec_add_shield(c, "/s/containers/ok/shield", ann, NULL, &err), &err);
    cr_assert(
        strv_contains(c->spec.annotations, "org.terok.shield.bundle=/s/containers/ok/shield"));
    cr_assert(eq(str, (char *)c->spec.hooks_annotations[0], "org.terok.shield.bundle"));
    cr_assert(c->spec.hooks_annotations[1] == NULL);
    j = json_tokener_parse(c->json);
    cr_assert(j != NULL);
    cr_assert(eq(str, (char *)json_object_get_string(jget(j, "shield.bundle")),
                 "/s/containers/ok/shield"));
    cr_assert(json_object_get_boolean(jget(j, "shield.enabled")));
    {
        json_object *a = jget(j, "annotations"), *v = NULL;
        cr_assert(a && json_object_object_get_ex(a, "org.terok.shield.version", &v), "%s", c->json);
        cr_assert(eq(str, (char *)json_object_get_string(v), "1"));
    }
    json_object_put(j);
    composed_spec_free(c);
    sandbox_notes_done(&notes);
    run_request_done(&r);
    spec_policy_done(&pol);
}
