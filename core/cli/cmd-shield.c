/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-shield.c: `terok-sandbox shield ...`: live egress decisions on a container (allow, deny,
 * up, down, quarantine), its status and ruleset, and install-hooks, which writes the
 * annotation-gated OCI hook JSON into the hooks directory the Podman runtime hands its private
 * service. Every operation maps onto one shield plugin op (core/src/shield.h). */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clearance/shield-audit.h"
#include "cli.h"
#include "loader.h"
#include "shield.h"
#include "spec.h"
#include "terok-build-config.h"

static void shield_help(void)
{
    printf("Usage: terok-sandbox shield COMMAND [OPTIONS] ...\n"
           "\n"
           "The egress shield of running containers: default deny, changed live without a\n"
           "restart.\n"
           "\n"
           "Commands:\n"
           "  allow CONTAINER TARGET [--for DURATION]  allow IP, CIDR, HOST:PORT or a domain\n"
           "                                           (for a while: 30s, 10m, 2h)\n"
           "  deny CONTAINER TARGET                    deny it (beats an allow)\n"
           "  up CONTAINER                             enforce (the default posture)\n"
           "  down CONTAINER                           let everything out, logged (denies hold)\n"
           "  quarantine CONTAINER                     nothing out, open connections cut\n"
           "  status CONTAINER [--json]                posture and policy\n"
           "  rules CONTAINER                          the ruleset as loaded\n"
           "  logs CONTAINER [--follow] [--json] [--since WHEN]\n"
           "                                           blocked connections and verdicts from\n"
           "                                           the audit (WHEN: 10m, 2h, or\n"
           "                                           2026-01-31T12:00:00Z); --json: one\n"
           "                                           object per line\n"
           "  install-hooks [--hooks-dir DIR]          write the OCI hooks that apply the shield\n"
           "                                           when a container starts (idempotent)\n"
           "\n"
           "Options:\n"
           "  -h, --help   show this help (also after a command)\n"
           "\n"
           "Exit status: 0 done, 1 failed, 2 bad command line, 4 no such container,\n"
           "5 the shield backend could not be used.\n");
}

/* --help anywhere, else the positional arguments after the command (argv[0]). */
static int parse(cli *c, const char *cmd, int argc, char **argv, int npos, const char **pos,
                 const char **for_arg, const char **hooks_dir)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"for", required_argument, NULL, 'f'},
        {"hooks-dir", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int o, n = 0;

    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            shield_help();
            return -1;
        case 'j':
            c->json = true;
            break;
        case 'f':
            if (!for_arg)
                return cli_usage_error(c, "shield", "%s takes no --for", cmd);
            *for_arg = optarg;
            break;
        case 'H':
            if (!hooks_dir)
                return cli_usage_error(c, "shield", "%s takes no --hooks-dir", cmd);
            *hooks_dir = optarg;
            break;
        default:
            return cli_usage_error(c, "shield", "unknown option for '%s'", cmd);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (n >= npos)
            return cli_usage_error(c, "shield", "too many arguments for '%s'", cmd);
        pos[n++] = argv[i];
    }
    if (n < npos)
        return cli_usage_error(c, "shield", "'%s' needs %s", cmd,
                               npos == 2 ? "a CONTAINER and a TARGET" : "a CONTAINER");
    return 0;
}

/* The shield of a container we manage. */
static int open_for(cli *c, const char *name, shield *ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    container_rec rec = {0};
    sandbox *sb;
    store *st;
    int r;

    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = sandbox_store(sb, &st, &err);
    if (r >= 0)
        r = store_container_get(st, name, &rec, &err);
    if (r == -ENOENT)
        return cli_failf(c, EXIT_NOTFOUND, "no such container '%s'", name);
    if (r < 0)
        return cli_fail(c, r, &err);
    container_rec_done(&rec);
    r = shield_open(sb->registry, 0, ret, &err);
    if (r < 0)
        return cli_fail(c, r == -ENODEV ? -ENODEV : r, &err);
    return 0;
}

static int text_cb(void *userdata, const char *data, size_t len)
{
    (void)userdata;
    return fwrite(data, 1, len, stdout) == len ? 0 : -EIO;
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static int buf_cb(void *userdata, const char *data, size_t len)
{
    buf *b = userdata;
    char *t = realloc(b->p, b->n + len + 1);

    if (!t)
        return -ENOMEM;
    memcpy(t + b->n, data, len);
    b->n += len;
    t[b->n] = 0;
    b->p = t;
    return 0;
}

static int do_live(cli *c, const char *cmd, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *pos[2] = {0}, *for_arg = NULL;
    bool target = streq(cmd, "allow") || streq(cmd, "deny");
    int64_t ms = 0;
    shield sh;
    int r;

    r = parse(c, cmd, argc, argv, target ? 2 : 1, pos, streq(cmd, "allow") ? &for_arg : NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    if (for_arg && (parse_duration_ms(for_arg, &ms) < 0 || ms <= 0))
        return cli_usage_error(c, "shield", "invalid --for '%s' (e.g. 30s, 10m, 2h)", for_arg);
    r = open_for(c, pos[0], &sh);
    if (r > 0)
        return r;
    if (streq(cmd, "allow"))
        r = shield_allow(&sh, pos[0], pos[1], ms, &err);
    else if (streq(cmd, "deny"))
        r = shield_deny(&sh, pos[0], pos[1], &err);
    else
        r = shield_posture_set(&sh, pos[0],
                               streq(cmd, "up")     ? TEROK_SHIELD_UP
                               : streq(cmd, "down") ? TEROK_SHIELD_DOWN
                                                    : TEROK_SHIELD_QUARANTINE,
                               &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "container", json_object_new_string(pos[0]));
        json_object_object_add(o, "action", json_object_new_string(cmd));
        if (target)
            json_object_object_add(o, "target", json_object_new_string(pos[1]));
        if (ms > 0)
            json_object_object_add(o, "duration_ms", json_object_new_int64(ms));
        cli_json_print(o);
    } else if (target) {
        printf("%s: %s %s%s%s\n", pos[0], streq(cmd, "allow") ? "allowed" : "denied", pos[1],
               for_arg ? " for " : "", for_arg ? for_arg : "");
    } else {
        printf("%s: shield %s\n", pos[0], cmd);
    }
    return EXIT_OK;
}

static int do_status(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *pos[1] = {0};
    buf b = {0};
    uint32_t posture = TEROK_SHIELD_ERROR;
    shield sh;
    json_object *o;
    int r;

    r = parse(c, "status", argc, argv, 1, pos, NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = open_for(c, pos[0], &sh);
    if (r > 0)
        return r;
    r = shield_posture_get(&sh, pos[0], &posture, &err);
    if (r >= 0)
        r = shield_status(&sh, pos[0], buf_cb, &b, &err);
    if (r < 0) {
        free(b.p);
        return cli_fail(c, r, &err);
    }
    o = b.p ? json_tokener_parse(b.p) : NULL;
    free(b.p);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return cli_failf(c, EXIT_PLUGIN, "the shield backend gave no status for '%s'", pos[0]);
    }
    json_object_object_add(o, "posture", json_object_new_string(shield_posture_name(posture)));
    if (c->json) {
        cli_json_print(o);
        return EXIT_OK;
    }
    printf("container: %s\nposture:   %s\n", pos[0], shield_posture_name(posture));
    json_object_object_foreach(o, k, v)
    {
        if (streq(k, "posture") || streq(k, "container"))
            continue;
        printf("%-10s %s\n", k, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(o);
    return EXIT_OK;
}

static int do_rules(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *pos[1] = {0};
    shield sh;
    int r;

    r = parse(c, "rules", argc, argv, 1, pos, NULL, NULL);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = open_for(c, pos[0], &sh);
    if (r > 0)
        return r;
    r = shield_rules(&sh, pos[0], text_cb, NULL, &err);
    return r < 0 ? cli_fail(c, r, &err) : EXIT_OK;
}

/* ------------------------------------------------------------------ logs */

static volatile sig_atomic_t logs_stop;

static void logs_on_signal(int sig)
{
    (void)sig;
    logs_stop = 1;
}

/* "10m" (that long ago) or "YYYY-MM-DDTHH:MM:SS[Z]" (UTC) -> unix ms. */
static int parse_since(const char *s, int64_t *ret)
{
    int64_t ms;
    struct tm tm = {0};
    const char *end;

    if (parse_duration_ms(s, &ms) == 0 && ms >= 0) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        *ret = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - ms;
        return 0;
    }
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && !streq(end, "Z")))
        return -EINVAL;
    *ret = (int64_t)timegm(&tm) * 1000;
    return 0;
}

typedef struct logs_ctx {
    bool json;
    int64_t last_id;
    size_t rows;
} logs_ctx;

static int log_row_cb(void *userdata, const shield_audit_row *r)
{
    logs_ctx *l = userdata;
    json_object *o = shield_audit_row_json(r);
    char pb[12];

    l->last_id = r->id;
    l->rows++;
    if (!o)
        return -ENOMEM;
    if (l->json) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        json_object *t = NULL;
        bool v6 = r->dest_ip && strchr(r->dest_ip, ':');

        json_object_object_get_ex(o, "time", &t);
        printf("%s %-10s", json_object_get_string(t), r->kind);
        if (streq(r->kind, "suppressed"))
            printf(" %lld more blocked connection(s) not recorded one by one (rate limit)",
                   (long long)r->count);
        else if (r->dest_ip) {
            if (r->protocol >= 0)
                printf(" %s", ip_proto_name(r->protocol, pb, sizeof pb));
            if (r->dest_port > 0)
                printf(" %s%s%s:%d", v6 ? "[" : "", r->dest_ip, v6 ? "]" : "", r->dest_port);
            else
                printf(" %s", r->dest_ip);
            if (r->domain)
                printf(" (%s)", r->domain);
        }
        if (r->target)
            printf(" -> %s %s", r->kind, r->target);
        if (r->actor_uid >= 0)
            printf(" by uid %lld", (long long)r->actor_uid);
        putchar('\n');
    }
    json_object_put(o);
    return ferror(stdout) ? -EPIPE : 0;
}

static int count_row_cb(void *userdata, const shield_audit_row *r)
{
    ((logs_ctx *)userdata)->rows++;
    return 0;
}

static int do_logs(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"follow", no_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    shield_audit_query q = {0};
    container_rec rec = {0};
    const char *name = NULL;
    bool follow = false, known;
    logs_ctx l = {0};
    sandbox *sb;
    store *st;
    int o, r;

    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "hf", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            shield_help();
            return EXIT_OK;
        case 'j':
            c->json = true;
            break;
        case 'f':
            follow = true;
            break;
        case 's':
            if (parse_since(optarg, &q.since_ms) < 0)
                return cli_usage_error(c, "shield",
                                       "invalid --since '%s' (a duration like 10m, or "
                                       "YYYY-MM-DDTHH:MM:SSZ)",
                                       optarg);
            break;
        default:
            return cli_usage_error(c, "shield", "unknown option for 'logs'");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(c, "shield", "'logs' needs one CONTAINER");
    name = argv[optind];
    if (!container_name_is_valid(name))
        return cli_usage_error(c, "shield", "invalid container name '%s'", name);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = sandbox_store(sb, &st, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    r = store_container_get(st, name, &rec, &err);
    if (r < 0 && r != -ENOENT)
        return cli_fail(c, r, &err);
    known = r == 0;
    container_rec_done(&rec);
    terok_error_clear(&err);
    l.json = c->json;
    q.container = name;
    r = shield_audit_list(store_sqlite(st), &q, log_row_cb, &l, &err);
    if (r < 0)
        return r == -EPIPE ? EXIT_FAIL : cli_fail(c, r, &err);
    /* a removed container's audit stays readable; a name never seen is an error */
    if (!known && l.rows == 0 && !follow) {
        logs_ctx any = {.json = c->json};
        shield_audit_query all = {.container = name, .limit = 1};

        r = shield_audit_list(store_sqlite(st), &all, count_row_cb, &any, &err);
        if (r < 0)
            return cli_fail(c, r, &err);
        if (any.rows == 0)
            return cli_failf(c, EXIT_NOTFOUND, "no such container '%s'", name);
    }
    if (!follow)
        return EXIT_OK;
    signal(SIGINT, logs_on_signal);
    signal(SIGTERM, logs_on_signal);
    signal(SIGPIPE, SIG_IGN);
    fflush(stdout);
    /* the daemon commits every event at once: polling the indexed table is cheap */
    while (!logs_stop) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        nanosleep(&ts, NULL);
        q.after_id = l.last_id;
        r = shield_audit_list(store_sqlite(st), &q, log_row_cb, &l, &err);
        if (r == -EPIPE || fflush(stdout) != 0)
            return EXIT_OK; /* the reader went away */
        if (r < 0 && r != -EBUSY)
            return cli_fail(c, r, &err);
        terok_error_clear(&err);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ install-hooks */

static int write_hook(const char *dir, const char *file, const char *json, terok_error *err)
{
    _cleanup_free_ char *path = NULL, *tmp = NULL;
    _cleanup_close_ int fd = -EBADF;
    size_t n = strlen(json);

    if (asprintf(&path, "%s/%s", dir, file) < 0 || asprintf(&tmp, "%s/.%s.tmp", dir, file) < 0)
        return terok_error_set(err, -ENOMEM, "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return terok_error_set(err, negative_errno(), "cannot write '%s': %s", tmp,
                               strerror(errno));
    if (write(fd, json, n) != (ssize_t)n || fsync(fd) < 0 || fchmod(fd, 0644) < 0) {
        int r = terok_error_set(err, -EIO, "cannot write '%s': %s", tmp, strerror(errno));
        (void)unlink(tmp);
        return r;
    }
    if (rename(tmp, path) < 0) {
        int r = terok_error_set(err, negative_errno(), "cannot rename to '%s': %s", path,
                                strerror(errno));
        (void)unlink(tmp);
        return r;
    }
    return 0;
}

static char *hook_json(const char *self, const char *plugin_dir, const char *backend,
                       const char *const *trust, const char *stage)
{
    json_object *o = json_object_new_object(), *h = json_object_new_object();
    json_object *args = json_object_new_array(), *when = json_object_new_object();
    json_object *ann = json_object_new_object(), *stages = json_object_new_array();
    char *s;

    json_object_object_add(o, "version", json_object_new_string("1.0.0"));
    json_object_object_add(h, "path", json_object_new_string(self));
    json_object_array_add(args, json_object_new_string("terok-sandbox"));
    json_object_array_add(args, json_object_new_string("hook"));
    json_object_array_add(args, json_object_new_string("--plugin-dir"));
    json_object_array_add(args, json_object_new_string(plugin_dir));
    json_object_array_add(args, json_object_new_string("--backend"));
    json_object_array_add(args, json_object_new_string(backend));
    for (; *trust; trust++) {
        json_object_array_add(args, json_object_new_string("--trust"));
        json_object_array_add(args, json_object_new_string(*trust));
    }
    json_object_array_add(args, json_object_new_string(stage));
    json_object_object_add(h, "args", args);
    json_object_object_add(h, "timeout", json_object_new_int(60));
    json_object_object_add(o, "hook", h);
    json_object_object_add(ann, "^org\\.terok\\.shield\\.bundle$", json_object_new_string(".+"));
    json_object_object_add(when, "annotations", ann);
    json_object_object_add(o, "when", when);
    json_object_array_add(stages, json_object_new_string(stage));
    json_object_object_add(o, "stages", stages);
    s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static int do_install_hooks(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *dflt = NULL, *cj = NULL, *pj = NULL, *so = NULL, *dir_id = NULL,
                        *so_id = NULL;
    const char *hooks_dir = NULL, *plugin_dir, *backend, *trust[3] = {NULL};
    struct stat st;
    char self[PATH_MAX];
    sandbox *sb;
    ssize_t n;
    int r;

    r = parse(c, "install-hooks", argc, argv, 0, NULL, NULL, &hooks_dir);
    if (r != 0)
        return r < 0 ? EXIT_OK : r;
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    backend = registry_backend_name(sb->registry, TEROK_PLUGIN_KIND_SHIELD);
    if (!backend)
        return cli_failf(c, EXIT_PLUGIN,
                         "no shield backend is configured ([shield] backend = "
                         "none): there is no hook to install");
    plugin_dir = config_get(sb->config, "core", "plugin-dir");
    if (isempty(plugin_dir))
        plugin_dir = TEROK_PLUGIN_DIR;
    if (!hooks_dir) {
        hooks_dir = config_get(sb->config, "runtime.podman", "hooks-dir");
        if (isempty(hooks_dir)) {
            if (asprintf(&dflt, "%s/runtime-podman/hooks.d", sb->paths.state_dir) < 0)
                return cli_failf(c, EXIT_FAIL, "out of memory");
            hooks_dir = dflt;
        }
    }
    if (hooks_dir[0] != '/' || plugin_dir[0] != '/')
        return cli_failf(c, EXIT_FAIL,
                         "the hooks directory '%s' and plugin directory '%s' must "
                         "be absolute",
                         hooks_dir, plugin_dir);
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return cli_failf(c, EXIT_FAIL, "cannot find this binary: %s", strerror(errno));
    self[n] = 0;
    /* the default lives in our state, 0700 like the rest of it */
    r = mkdir_safe(hooks_dir, dflt ? 0700 : 0755, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    /* Where root is not mapped (Podman's rootless user namespace) the hook cannot see that the
     * plugin directory and the plugin are root's: it trusts these very files instead. */
    if (stat(plugin_dir, &st) < 0)
        return cli_failf(c, EXIT_PLUGIN, "cannot stat plugin directory '%s': %s", plugin_dir,
                         strerror(errno));
    trust[0] = dir_id = loader_file_id(&st);
    if (asprintf(&so, "%s/shield-%s.so", plugin_dir, backend) < 0)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    if (lstat(so, &st) < 0)
        return cli_failf(c, EXIT_PLUGIN, "cannot use the shield plugin '%s': %s", so,
                         strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cli_failf(c, EXIT_PLUGIN, "the shield plugin '%s' is not a regular file", so);
    trust[1] = so_id = loader_file_id(&st);
    if (!dir_id || !so_id)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    cj = hook_json(self, plugin_dir, backend, trust, "createRuntime");
    pj = hook_json(self, plugin_dir, backend, trust, "poststop");
    if (!cj || !pj)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    r = write_hook(hooks_dir, "terok-shield-createRuntime.json", cj, &err);
    if (r >= 0)
        r = write_hook(hooks_dir, "terok-shield-poststop.json", pj, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "hooks_dir", json_object_new_string(hooks_dir));
        json_object_object_add(o, "binary", json_object_new_string(self));
        json_object_object_add(o, "plugin_dir", json_object_new_string(plugin_dir));
        cli_json_print(o);
    } else {
        printf("installed the shield hooks in %s\n", hooks_dir);
    }
    return EXIT_OK;
}

int cmd_shield(cli *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (!sub || streq(sub, "-h") || streq(sub, "--help") || streq(sub, "help")) {
        shield_help();
        return sub ? EXIT_OK : EXIT_USAGE;
    }
    if (streq(sub, "allow") || streq(sub, "deny") || streq(sub, "up") || streq(sub, "down") ||
        streq(sub, "quarantine"))
        return do_live(c, sub, argc - 1, argv + 1);
    if (streq(sub, "status"))
        return do_status(c, argc - 1, argv + 1);
    if (streq(sub, "rules"))
        return do_rules(c, argc - 1, argv + 1);
    if (streq(sub, "logs"))
        return do_logs(c, argc - 1, argv + 1);
    if (streq(sub, "install-hooks"))
        return do_install_hooks(c, argc - 1, argv + 1);
    return cli_usage_error(c, "shield", "unknown command '%s'", sub);
}
