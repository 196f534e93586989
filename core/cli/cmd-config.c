/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-config.c: `terok-sandbox config check|show`. Reads and validates the configuration
 * without loading any plugin (plugin keys come from the files' ELF sections, never dlopen). */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "paths.h"
#include "terok-build-config.h"

static void config_help(void)
{
    printf("Usage: terok-sandbox config COMMAND [--json]\n"
           "\n"
           "Check or show the configuration: %s/sandbox.conf and sandbox.conf.d/*.conf,\n"
           "then $XDG_CONFIG_HOME/terok-sandbox/ the same way (later wins), or only the file\n"
           "given with --config or $TEROK_SANDBOX_CONFIG. No plugin is loaded.\n"
           "\n"
           "Commands:\n"
           "  check   report every problem as FILE:LINE: message (exit 3 if any)\n"
           "  show    print the effective configuration and where each value came from\n"
           "\n"
           "Options:\n"
           "      --json   machine-readable output\n"
           "  -h, --help   show this help\n",
           TEROK_SYSCONF_DIR);
}

static void check_help(void)
{
    printf("Usage: terok-sandbox config check [--json]\n"
           "\n"
           "Read the configuration files and check every section, key and value against the\n"
           "keys the core and the configured plugins declare (read from the plugin files, not\n"
           "loaded). Problems go to stderr as FILE:LINE: message.\n"
           "\n"
           "Exit status: 0 valid (warnings allowed), 3 problems found.\n"
           "JSON: {\"ok\":bool,\"files\":[...],\"problems\":[{\"file\",\"line\",\"message\","
           "\"severity\"}]}\n");
}

static void show_help(void)
{
    printf("Usage: terok-sandbox config show [--json]\n"
           "\n"
           "Print the effective configuration: every core key, the configured backends'\n"
           "sections and the routes, each with its origin (FILE:LINE or 'default').\n"
           "\n"
           "JSON: {\"files\":[...],\"sections\":{SECTION:{KEY:{\"value\",\"origin\"}}},"
           "\"problems\":[...]}\n");
}

/* Until paths.c resolves them: the same rules, without creating anything. */
static int fallback_dirs(char **ret_system, char **ret_user)
{
    const char *xdg = secure_getenv("XDG_CONFIG_HOME");
    const char *home = secure_getenv("HOME");
    struct passwd *pw;
    int r = 0;

    *ret_system = strdup(TEROK_SYSCONF_DIR);
    *ret_user = NULL;
    if (!*ret_system)
        return -ENOMEM;
    if (geteuid() == 0)
        return 0;
    if (!isempty(xdg) && xdg[0] == '/')
        r = asprintf(ret_user, "%s/terok-sandbox", xdg);
    else {
        if (isempty(home) || home[0] != '/') {
            pw = getpwuid(geteuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (home)
            r = asprintf(ret_user, "%s/.config/terok-sandbox", home);
    }
    if (r < 0) {
        *ret_user = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Loads and validates; returns 0, or the exit code after printing why it could not. */
static int load(cli *c, config **ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *sys = NULL, *user = NULL;
    paths p = {0};
    int r;

    r = paths_resolve(&p, &err);
    if (r >= 0) {
        sys = p.system_config_dir ? strdup(p.system_config_dir) : NULL;
        user = p.user_config_dir ? strdup(p.user_config_dir) : NULL;
        if ((p.system_config_dir && !sys) || (p.user_config_dir && !user))
            r = -ENOMEM;
        paths_done(&p);
    } else if (r == -EOPNOTSUPP) {
        terok_error_clear(&err);
        r = fallback_dirs(&sys, &user);
    } else
        return cli_fail(c, r, &err);
    if (r < 0)
        return cli_fail(c, r, NULL);
    r = config_load(c->config_file, sys, user, ret, &err);
    if (r < 0)
        return cli_failf(c, EXIT_CONFIG, "%s", terok_error_message(&err));
    (void)config_validate(*ret);
    return 0;
}

static json_object *files_json(const config *cfg)
{
    json_object *a = json_object_new_array();

    for (const char *const *f = config_files(cfg); *f; f++)
        json_object_array_add(a, json_object_new_string(*f));
    return a;
}

static json_object *problems_json(const config *cfg)
{
    const config_problem *p;
    size_t n = config_problems(cfg, &p);
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "file", p[i].file ? json_object_new_string(p[i].file) : NULL);
        json_object_object_add(o, "line", json_object_new_int64(p[i].line));
        json_object_object_add(o, "message", json_object_new_string(p[i].message));
        json_object_object_add(o, "severity",
                               json_object_new_string(p[i].warning ? "warning" : "error"));
        json_object_array_add(a, o);
    }
    return a;
}

static void print_problems(const config *cfg)
{
    const config_problem *p;
    size_t n = config_problems(cfg, &p);

    for (size_t i = 0; i < n; i++) {
        const char *sev = p[i].warning ? "warning: " : "";
        if (p[i].file && p[i].line)
            fprintf(stderr, "%s:%u: %s%s\n", p[i].file, p[i].line, sev, p[i].message);
        else if (p[i].file)
            fprintf(stderr, "%s: %s%s\n", p[i].file, sev, p[i].message);
        else
            fprintf(stderr, "%s%s\n", sev, p[i].message);
    }
}

static int do_check(cli *c)
{
    _cleanup_(config_freep) config *cfg = NULL;
    size_t nfiles = 0;
    int r, errors;

    r = load(c, &cfg);
    if (r > 0)
        return r;
    errors = config_validate(cfg);
    for (const char *const *f = config_files(cfg); *f; f++)
        nfiles++;
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(errors == 0));
        json_object_object_add(o, "files", files_json(cfg));
        json_object_object_add(o, "problems", problems_json(cfg));
        cli_json_print(o);
        return errors ? EXIT_CONFIG : EXIT_OK;
    }
    print_problems(cfg);
    if (errors) {
        fprintf(stderr, "terok-sandbox: config: %d problem%s found\n", errors,
                errors == 1 ? "" : "s");
        return EXIT_CONFIG;
    }
    if (nfiles)
        printf("config: OK (%zu file%s)\n", nfiles, nfiles == 1 ? "" : "s");
    else
        printf("config: OK (no config file; compiled-in defaults)\n");
    return EXIT_OK;
}

typedef struct show_state {
    json_object *sections; /* JSON mode */
    char *section;         /* human mode: the section being printed */
} show_state;

/* Quote what would not read back the same: empty, edge spaces, a leading quote, comments. */
static bool needs_quotes(const char *v)
{
    size_t n = strlen(v);

    return n == 0 || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t' ||
           v[0] == '"' || strstr(v, " #") || strstr(v, " ;");
}

static int show_one(void *userdata, const char *section, const char *key, const char *value,
                    const char *origin)
{
    show_state *st = userdata;

    if (st->sections) {
        json_object *s, *o = json_object_new_object();
        if (!json_object_object_get_ex(st->sections, section, &s)) {
            s = json_object_new_object();
            json_object_object_add(st->sections, section, s);
        }
        json_object_object_add(o, "value", json_object_new_string(value));
        json_object_object_add(o, "origin", json_object_new_string(origin));
        json_object_object_add(s, key, o);
        return 0;
    }
    if (!st->section || !streq(st->section, section)) {
        free(st->section);
        st->section = strdup(section);
        if (!st->section)
            return -ENOMEM;
        printf("\n[%s]\n", section);
    }
    char *line = NULL;
    int r = needs_quotes(value) ? asprintf(&line, "%s = \"%s\"", key, value)
                                : asprintf(&line, "%s = %s", key, value);
    if (r < 0)
        return -ENOMEM;
    printf("%-40s # %s\n", line, origin);
    free(line);
    return 0;
}

static int do_show(cli *c)
{
    _cleanup_(config_freep) config *cfg = NULL;
    show_state st = {0};
    int r, errors;

    r = load(c, &cfg);
    if (r > 0)
        return r;
    errors = config_validate(cfg);
    if (c->json) {
        json_object *o = json_object_new_object();
        st.sections = json_object_new_object();
        r = config_foreach(cfg, show_one, &st);
        json_object_object_add(o, "files", files_json(cfg));
        json_object_object_add(o, "sections", st.sections);
        json_object_object_add(o, "problems", problems_json(cfg));
        if (r < 0) {
            json_object_put(o);
            return cli_fail(c, r, NULL);
        }
        cli_json_print(o);
        return EXIT_OK;
    }
    printf("# terok-sandbox effective configuration\n");
    if (!*config_files(cfg))
        printf("# no config file: compiled-in defaults\n");
    for (const char *const *f = config_files(cfg); *f; f++)
        printf("# read %s\n", *f);
    r = config_foreach(cfg, show_one, &st);
    free(st.section);
    if (r < 0)
        return cli_fail(c, r, NULL);
    if (errors)
        fprintf(stderr,
                "terok-sandbox: config: the configuration has %d problem%s; run 'terok-sandbox "
                "config check'\n",
                errors, errors == 1 ? "" : "s");
    return EXIT_OK;
}

int cmd_config(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    void (*help)(void) = config_help;
    const char *sub = NULL, *name = "config";
    int o;

    opterr = 0; /* our own message, naming the command */
    /* Options before the subcommand, then the subcommand's own (the same two). */
    for (int pass = 0; pass < 2; pass++) {
        while ((o = getopt_long(argc, argv, pass ? "h" : "+h", opts, NULL)) >= 0) {
            switch (o) {
            case 'j':
                c->json = true;
                break;
            case 'h':
                help();
                return EXIT_OK;
            default:
                return cli_usage_error(c, name, "unknown option '%s'", argv[optind - 1]);
            }
        }
        if (pass == 1)
            break;
        if (optind >= argc)
            return cli_usage_error(c, "config", "missing command: check or show");
        sub = argv[optind];
        if (streq(sub, "check"))
            help = check_help, name = "config check";
        else if (streq(sub, "show"))
            help = show_help, name = "config show";
        else
            return cli_usage_error(c, "config", "unknown command '%s'", sub);
        argc -= optind;
        argv += optind;
        optind = 0;
    }
    if (optind < argc)
        return cli_usage_error(c, name, "unexpected argument '%s'", argv[optind]);
    return streq(sub, "check") ? do_check(c) : do_show(c);
}
