/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-run.c: `run` and `create`: parse the request (stopping at the image: everything after it
 * is the container's command), create through the core, then for `run` start, stream the output
 * and pass the container's exit status on (foreground), or print the name (detached). */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "cli-container.h"
#include "log.h"
#include "spec.h"
#include "sshkeys.h"
#include "util/strv.h"
#include "wiring.h"

/* A string vector that grows geometrically: a command line may carry many -e options. */
typedef struct vec {
    char **v;
    size_t n, cap;
} vec;

static int vec_push(vec *v, const char *s)
{
    if (v->n + 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        char **t = reallocarray(v->v, cap, sizeof(char *));
        if (!t)
            return -ENOMEM;
        v->v = t;
        v->cap = cap;
    }
    v->v[v->n] = strdup(s);
    if (!v->v[v->n])
        return -ENOMEM;
    v->v[++v->n] = NULL;
    return 0;
}

/* Hand the vector over as a strv (NULL when empty). */
static char **vec_take(vec *v)
{
    char **r = v->v;

    *v = (vec){0};
    return r;
}

static void vec_done(vec *v)
{
    strv_free(v->v);
    *v = (vec){0};
}

enum {
    OPT_RM = 0x100,
    OPT_NAME,
    OPT_ENV_FILE,
    OPT_NETWORK,
    OPT_PIDS,
    OPT_MEMORY,
    OPT_CPUS,
    OPT_CAP_ADD,
    OPT_GPUS,
    OPT_DEVICE,
    OPT_HOSTNAME,
    OPT_ANNOTATION,
    OPT_ENTRYPOINT,
    OPT_USERNS,
    OPT_RUNTIME,
    OPT_NO_RO,
    OPT_ALLOW_NNP,
    OPT_NO_CAP_DROP,
    OPT_NO_SECCOMP,
    OPT_NO_SHIELD,
    OPT_ROUTE,
    OPT_NO_ROUTES,
    OPT_REPO,
    OPT_SSH_SCOPE,
    OPT_TOKEN_TTL,
    OPT_SHIELD_ALLOW,
    OPT_SHIELD_DENY,
    OPT_JSON,
    OPT_SEALED,
};

static void help(const char *cmd)
{
    bool run = streq(cmd, "run");

    printf("Usage: terok-sandbox %s [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n", cmd);
    if (run)
        printf("Create and start a hardened container. In the foreground (the default) its\n"
               "output is streamed and terok-sandbox exits with the container's exit status;\n"
               "125 means terok-sandbox itself failed.\n\n");
    else
        printf("Create a hardened container without starting it; prints its name.\n\n");
    printf("Options (everything after IMAGE is the container's command):\n");
    if (run)
        printf("  -d, --detach               start in the background and print the name\n");
    printf("      --rm                   remove the container when it exits\n"
           "      --name NAME            container name (default: terok-<8 hex digits>)\n"
           "  -e, --env KEY=VALUE        set an environment variable (repeatable)\n"
           "      --env-file FILE        read KEY=VALUE lines from FILE\n"
           "  -v, --volume HOST:TARGET[:OPTS]  bind-mount HOST (OPTS: ro, rw, z, Z, live)\n"
           "      --sealed               copy the volumes in before the start instead of\n"
           "                             mounting them (except 'live' ones): nothing the\n"
           "                             container writes reaches the host\n"
           "      --network MODE         none, slirp4netns[:OPTS], pasta[:OPTS], bridge, "
           "ns:/PATH\n"
           "      --pids-limit N         at most N processes (0 = unlimited)\n"
           "      --memory SIZE          memory limit, e.g. 512M, 2G (0 = unlimited)\n"
           "      --cpus N               CPU limit, e.g. 1.5 (0 = unlimited)\n"
           "      --cap-add CAP          grant a capability from [container] grantable-caps\n"
           "      --gpus SELECTOR        all, nvidia[:N], amd[:N], intel[:N]\n"
           "      --device DEV           /dev/PATH[:/dev/PATH[:rwm]] or a CDI name\n"
           "      --hostname NAME        the container's hostname\n"
           "  -w, --workdir DIR          working directory (default /workspace)\n"
           "  -u, --user USER[:GROUP]    user to run as\n"
           "  -l, --label KEY=VALUE      add a label (org.terok.* is reserved)\n"
           "      --annotation KEY=VALUE add an allowed annotation\n"
           "      --entrypoint CMD       replace the image's entrypoint (drops its Cmd)\n"
           "      --userns MODE          auto[:OPTS] or keep-id[:OPTS]\n"
           "      --runtime NAME         OCI runtime: crun or krun\n"
           "  -t, --tty                  allocate a TTY\n"
           "  -i, --interactive          keep stdin open\n"
           "      --repo PROJECT[:rw]    reach the gate's PROJECT (read-only; ':rw' may push)\n"
           "                             as $TEROK_GATE_REPO_<PROJECT> (repeatable; see\n"
           "                             'terok-sandbox gate --help')\n"
           "      --json                 print {\"name\", \"id\"} instead of the name\n"
           "\n"
           "Egress shield (default deny; see 'terok-sandbox shield --help'):\n"
           "      --allow TARGET         allow IP, CIDR, HOST:PORT or domain (repeatable)\n"
           "      --deny TARGET          deny it, even where a profile allows (repeatable)\n"
           "\n"
           "Relaxing the hardening (each is recorded and shown by 'inspect'):\n"
           "      --no-read-only         writable root filesystem\n"
           "      --allow-new-privileges allow setuid binaries to gain privileges\n"
           "      --no-cap-drop          keep the runtime's default capabilities\n"
           "      --no-seccomp           no seccomp filter\n"
           "      --no-shield            run without the egress shield, knowingly\n"
           "      --route NAME           wire only this broker route (repeatable; default:\n"
           "                             every [route.*] in the config)\n"
           "      --no-routes            wire no broker route: no phantom tokens\n"
           "      --ssh-scope SCOPE      offer the SSH keys linked to SCOPE through an agent\n"
           "                             (SSH_AUTH_SOCK=/run/terok/ssh-agent.sock; see 'ssh')\n"
           "      --token-ttl DURATION   phantom tokens expire after DURATION (e.g. 8h;\n"
           "                             default: valid until rm)\n"
           "  -h, --help                 show this help\n");
}

static int read_env_file(cli *c, const char *cmd, bool pt, const char *path, vec *env)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    ssize_t k;

    if (!f)
        return cli_usage_error_pt(c, cmd, pt, "cannot read env file '%s': %s", path,
                                  strerror(errno));
    while ((k = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)k))
            return cli_usage_error_pt(c, cmd, pt, "env file '%s' line %u contains a NUL byte", path,
                                      lineno);
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
            line[--k] = 0;
        const char *s = line + strspn(line, " \t");
        if (!*s || *s == '#')
            continue;
        if (!strchr(s, '=')) {
            /* "KEY" alone passes the host's value on, like podman; absent keys are skipped. */
            const char *v = getenv(s);
            _cleanup_free_ char *kv = NULL;
            if (!v)
                continue;
            if (asprintf(&kv, "%s=%s", s, v) < 0 || vec_push(env, kv) < 0)
                return cli_failf(c, pt ? EXIT_PASSTHROUGH_FAIL : EXIT_FAIL, "out of memory");
            continue;
        }
        if (vec_push(env, s) < 0)
            return cli_failf(c, pt ? EXIT_PASSTHROUGH_FAIL : EXIT_FAIL, "out of memory");
    }
    return 0;
}

typedef struct run_opts {
    run_request req;
    bool detach;
    bool json;
} run_opts;

/* Parses argv into o. Returns 0, or an exit code (> 0) after printing the problem. */
static int parse(cli *c, const char *cmd, int argc, char **argv, run_opts *o)
{
    static const struct option opts[] = {
        {"detach", no_argument, NULL, 'd'},
        {"rm", no_argument, NULL, OPT_RM},
        {"name", required_argument, NULL, OPT_NAME},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"volume", required_argument, NULL, 'v'},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"net", required_argument, NULL, OPT_NETWORK},
        {"pids-limit", required_argument, NULL, OPT_PIDS},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"cap-add", required_argument, NULL, OPT_CAP_ADD},
        {"gpus", required_argument, NULL, OPT_GPUS},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"label", required_argument, NULL, 'l'},
        {"annotation", required_argument, NULL, OPT_ANNOTATION},
        {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
        {"userns", required_argument, NULL, OPT_USERNS},
        {"runtime", required_argument, NULL, OPT_RUNTIME},
        {"no-read-only", no_argument, NULL, OPT_NO_RO},
        {"allow-new-privileges", no_argument, NULL, OPT_ALLOW_NNP},
        {"no-cap-drop", no_argument, NULL, OPT_NO_CAP_DROP},
        {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
        {"no-shield", no_argument, NULL, OPT_NO_SHIELD},
        {"route", required_argument, NULL, OPT_ROUTE},
        {"no-routes", no_argument, NULL, OPT_NO_ROUTES},
        {"repo", required_argument, NULL, OPT_REPO},
        {"ssh-scope", required_argument, NULL, OPT_SSH_SCOPE},
        {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
        {"allow", required_argument, NULL, OPT_SHIELD_ALLOW},
        {"deny", required_argument, NULL, OPT_SHIELD_DENY},
        {"tty", no_argument, NULL, 't'},
        {"interactive", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, OPT_JSON},
        {"sealed", no_argument, NULL, OPT_SEALED},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool is_run = streq(cmd, "run");
    vec env = {0}, labels = {0}, annotations = {0}, caps = {0}, gpus = {0}, devices = {0};
    run_request *r = &o->req;
    int opt, code = 0;
    int64_t v;

    /* Look for -d first: it decides whether failures exit 125 or with our own codes. */
    for (int i = 1; is_run && i < argc && argv[i][0] == '-'; i++)
        if (streq(argv[i], "-d") || streq(argv[i], "--detach"))
            o->detach = true;
    bool pt = is_run && !o->detach;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, is_run ? "+:de:v:w:u:l:tih" : "+:e:v:w:u:l:tih", opts,
                              NULL)) >= 0) {
        switch (opt) {
        case 'h':
            help(cmd);
            code = -1;
            goto out;
        case 'd':
            if (!is_run) {
                code = cli_usage_error_pt(c, cmd, false, "unknown option '-d'");
                goto out;
            }
            o->detach = true;
            break;
        case OPT_RM:
            r->remove_on_exit = true;
            break;
        case OPT_NAME:
            r->name = optarg;
            break;
        case 'e':
            if (vec_push(&env, optarg) < 0)
                goto oom;
            break;
        case OPT_ENV_FILE:
            code = read_env_file(c, cmd, pt, optarg, &env);
            if (code)
                goto out;
            break;
        case 'v': {
            _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
            volume_req vr;
            if (spec_parse_volume(optarg, &vr, &err) < 0) {
                code = cli_usage_error_pt(c, cmd, pt, "%s", terok_error_message(&err));
                goto out;
            }
            volume_req *t = reallocarray(r->volumes, r->n_volumes + 1, sizeof(*t));
            if (!t) {
                free(vr.source);
                free(vr.target);
                goto oom;
            }
            r->volumes = t;
            r->volumes[r->n_volumes++] = vr;
            break;
        }
        case OPT_NETWORK:
            r->network = optarg;
            break;
        case OPT_PIDS:
            if (parse_int64(optarg, 0, INT32_MAX, &v) < 0) {
                code = cli_usage_error_pt(c, cmd, pt,
                                          "invalid value '%s' for --pids-limit: expected an "
                                          "integer from 0 to %d",
                                          optarg, INT32_MAX);
                goto out;
            }
            r->pids_limit = v;
            break;
        case OPT_MEMORY: {
            uint64_t bytes;
            if (parse_size(optarg, &bytes) < 0 || bytes > INT64_MAX) {
                code = cli_usage_error_pt(c, cmd, pt,
                                          "invalid value '%s' for --memory: expected a size "
                                          "like 512M or 2G",
                                          optarg);
                goto out;
            }
            r->memory_bytes = (int64_t)bytes;
            break;
        }
        case OPT_CPUS:
            if (spec_parse_cpus(optarg, &r->cpu_millis) < 0) {
                code = cli_usage_error_pt(c, cmd, pt,
                                          "invalid value '%s' for --cpus: expected a number "
                                          "like 1.5",
                                          optarg);
                goto out;
            }
            break;
        case OPT_CAP_ADD:
            if (vec_push(&caps, optarg) < 0)
                goto oom;
            break;
        case OPT_GPUS:
            if (vec_push(&gpus, optarg) < 0)
                goto oom;
            break;
        case OPT_DEVICE:
            if (vec_push(&devices, optarg) < 0)
                goto oom;
            break;
        case OPT_HOSTNAME:
            r->hostname = optarg;
            break;
        case 'w':
            r->workdir = optarg;
            break;
        case 'u':
            r->user = optarg;
            break;
        case 'l':
            if (vec_push(&labels, optarg) < 0)
                goto oom;
            break;
        case OPT_ANNOTATION:
            if (vec_push(&annotations, optarg) < 0)
                goto oom;
            break;
        case OPT_ENTRYPOINT:
            strv_free(r->entrypoint);
            r->entrypoint = NULL;
            if (strv_extend(&r->entrypoint, optarg) < 0)
                goto oom;
            break;
        case OPT_USERNS:
            r->userns = optarg;
            break;
        case OPT_RUNTIME:
            r->oci_runtime = optarg;
            break;
        case OPT_NO_RO:
            r->read_only = 0;
            break;
        case OPT_ALLOW_NNP:
            r->no_new_privs = 0;
            break;
        case OPT_NO_CAP_DROP:
            r->cap_drop_all = 0;
            break;
        case OPT_NO_SECCOMP:
            r->default_seccomp = 0;
            break;
        case OPT_NO_SHIELD:
            r->no_shield = true;
            break;
        case OPT_ROUTE:
            if (strv_extend(&r->routes, optarg) < 0)
                return cli_failf(c, EXIT_PASSTHROUGH_FAIL, "out of memory");
            break;
        case OPT_NO_ROUTES:
            r->no_routes = true;
            break;
        case OPT_REPO: {
            _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
            char project[128];
            uint32_t rights;
            if (wiring_parse_repo(optarg, project, sizeof project, &rights, &err) < 0) {
                code = cli_usage_error_pt(c, cmd, pt, "%s", terok_error_message(&err));
                goto out;
            }
            if (strv_extend(&r->repos, optarg) < 0)
                goto oom;
            break;
        }
        case OPT_SSH_SCOPE:
            if (!ssh_scope_is_valid(optarg)) {
                code =
                    cli_usage_error_pt(c, cmd, pt,
                                       "invalid --ssh-scope '%s': use [A-Za-z0-9][A-Za-z0-9._-]*, "
                                       "at most %d",
                                       optarg, SSH_SCOPE_MAX);
                goto out;
            }
            r->ssh_scope = optarg;
            break;
        case OPT_TOKEN_TTL: {
            int64_t ms;
            /* whole seconds: tokens expire on the second (tokens.c) */
            if (parse_duration_ms(optarg, &ms) < 0 || ms < 1000 || ms % 1000 != 0 ||
                ms > 366LL * 24 * 3600 * 1000) {
                code = cli_usage_error_pt(c, cmd, pt,
                                          "invalid --token-ttl '%s': expected a duration in whole "
                                          "seconds between 1s and 366d, e.g. 90s, 8h",
                                          optarg);
                goto out;
            }
            r->token_ttl_s = ms / 1000;
            break;
        }
        case OPT_SHIELD_ALLOW:
        case OPT_SHIELD_DENY:
            if (isempty(optarg)) {
                code = cli_usage_error_pt(c, cmd, pt, "--%s needs a target",
                                          opt == OPT_SHIELD_ALLOW ? "allow" : "deny");
                goto out;
            }
            if (strv_extend(opt == OPT_SHIELD_ALLOW ? &r->shield_allow : &r->shield_deny, optarg) <
                0)
                goto oom;
            break;
        case 't':
            r->tty = true;
            break;
        case 'i':
            r->interactive = true;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        case OPT_SEALED:
            r->sealed = true;
            break;
        default:
            code = cli_getopt_error(c, cmd, pt, opt, argv);
            goto out;
        }
    }
    if (optind >= argc) {
        code = cli_usage_error_pt(c, cmd, pt, "an IMAGE is required");
        goto out;
    }
    r->image = argv[optind++];
    for (int i = optind; i < argc; i++)
        if (strv_extend(&r->command, argv[i]) < 0)
            goto oom;
    r->env = vec_take(&env);
    r->labels = vec_take(&labels);
    r->annotations = vec_take(&annotations);
    r->cap_add = vec_take(&caps);
    r->gpus = vec_take(&gpus);
    r->devices = vec_take(&devices);
    o->json = c->json;
    goto out;
oom:
    code = cli_failf(c, pt ? EXIT_PASSTHROUGH_FAIL : EXIT_FAIL, "out of memory");
out:
    vec_done(&env);
    vec_done(&labels);
    vec_done(&annotations);
    vec_done(&caps);
    vec_done(&gpus);
    vec_done(&devices);
    return code;
}

static void print_created(cli *c, sandbox *sb, const char *name)
{
    if (c->json) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        container_rec rec = {0};
        store *st;
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(name));
        if (sandbox_store(sb, &st, &err) >= 0 && store_container_get(st, name, &rec, &err) >= 0)
            json_object_object_add(o, "id", rec.id ? json_object_new_string(rec.id) : NULL);
        container_rec_done(&rec);
        cli_json_print(o);
        return;
    }
    printf("%s\n", name);
}

/* The failure of a foreground run: printed, exit 125. */
static int fail(cli *c, bool pt, int r, const terok_error *err)
{
    if (!pt)
        return cli_fail(c, r, err);
    return cli_failf(c, EXIT_PASSTHROUGH_FAIL, "%s", terok_error_message(err));
}

/* The foreground run: the container's stdio attached (a TTY and the operator's keys with -it),
 * started, streamed until it ends; then its exit status is ours. A runtime that cannot attach
 * gets start + logs -f + wait (no -i/-t there). */
/* Blocked connections go to the clearance daemon; one that cannot be reached is a warning (the
 * shield enforces the policy regardless). */
static void watch_events(sandbox *sb, const char *name, bool attach)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;

    if (sandbox_watch_events(sb, name, attach, &err) < 0)
        log_warning("blocked connections of '%s' are not being collected: %s", name,
                    terok_error_message(&err));
}

static int foreground(cli *c, sandbox *sb, const char *name, bool tty, bool interactive, bool rm)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    terok_exec_spec io = {.struct_size = sizeof io,
                          .stdin_fd = -1,
                          .stdout_fd = STDOUT_FILENO,
                          .stderr_fd = STDERR_FILENO};
    int r, exit_code = -1;

    if (tty) {
        io.flags |= TEROK_EXEC_TTY;
        cli_terminal_size(&io);
        r = cli_watch_resize(&io);
        if (r < 0)
            log_warning("the container's terminal will not follow this one's size: %s",
                        strerror(-r));
    }
    if (interactive) {
        io.flags |= TEROK_EXEC_INTERACTIVE;
        io.stdin_fd = STDIN_FILENO;
    }
    fflush(stdout);
    if (tty && interactive)
        cli_raw_terminal(); /* the keys (Ctrl-C too) go to the container's terminal */
    else if ((r = cli_sig_proxy_start(c->config_file, name)) < 0)
        log_warning("signals to terok-sandbox will not reach '%s': %s", name, strerror(-r));
    r = sandbox_start_attached(sb, name, &io, &exit_code, &err);
    cli_restore_terminal();
    cli_unwatch_resize();
    if (r == -EOPNOTSUPP && !tty && !interactive) {
        terok_logs_opts lo = {.struct_size = sizeof lo, .flags = TEROK_LOGS_FOLLOW, .tail = -1};

        terok_error_clear(&err);
        r = sandbox_start(sb, name, &err);
        if (r >= 0) {
            r = sandbox_logs(sb, name, &lo, cli_output_to_fds, NULL, &err);
            if (r < 0 && r != -EOPNOTSUPP)
                log_warning("cannot stream the output of '%s': %s", name,
                            terok_error_message(&err));
            terok_error_clear(&err);
            r = 0;
        }
    }
    if (r < 0) {
        int code = fail(c, true, r, &err);
        cli_sig_proxy_stop();
        if (rm)
            (void)sandbox_remove(sb, name, true, NULL, NULL);
        return code;
    }
    /* the runtime may have read the status already: asking again would wait for its cleanup */
    if (exit_code < 0) {
        r = sandbox_wait(sb, name, -1, &exit_code, &err);
        if (r < 0) {
            cli_sig_proxy_stop();
            return fail(c, true, r, &err);
        }
    }
    cli_sig_proxy_stop();
    if (rm) {
        r = sandbox_remove(sb, name, true, NULL, &err);
        if (r < 0)
            log_warning("cannot remove '%s': %s", name, terok_error_message(&err));
    }
    return exit_code;
}

static int do_create(cli *c, const char *cmd, int argc, char **argv, bool start)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *name = NULL;
    sandbox_notes notes = {0};
    run_opts o = {0};
    sandbox *sb;
    bool pt, rm, tty, interactive;
    int r, code;

    run_request_init(&o.req);
    code = parse(c, cmd, argc, argv, &o);
    if (code) {
        run_request_done(&o.req);
        return code < 0 ? EXIT_OK : code;
    }
    pt = start && !o.detach;
    rm = o.req.remove_on_exit;
    tty = o.req.tty;
    interactive = o.req.interactive;
    /* In the foreground we remove it ourselves after reading the exit status. */
    if (pt)
        o.req.remove_on_exit = false;

    code = cli_sandbox(c, &sb);
    if (code) {
        run_request_done(&o.req);
        return pt ? EXIT_PASSTHROUGH_FAIL : code;
    }
    r = sandbox_create(sb, &o.req, &notes, &name, &err);
    cli_print_notes(&notes);
    sandbox_notes_done(&notes);
    run_request_done(&o.req);
    if (r < 0)
        return fail(c, pt, r, &err);
    if (!start) {
        print_created(c, sb, name);
        return EXIT_OK;
    }
    if (o.detach) {
        r = sandbox_start(sb, name, &err);
        if (r < 0) {
            code = fail(c, false, r, &err);
            if (rm)
                (void)sandbox_remove(sb, name, true, NULL, NULL);
            return code;
        }
        watch_events(sb, name, true);
        print_created(c, sb, name);
        return EXIT_OK;
    }
    watch_events(sb, name, false);
    return foreground(c, sb, name, tty, interactive, rm);
}

int cmd_run(cli *c, int argc, char **argv)
{
    return do_create(c, "run", argc, argv, true);
}

int cmd_create(cli *c, int argc, char **argv)
{
    return do_create(c, "create", argc, argv, false);
}
