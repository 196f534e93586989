/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-plugins.c: `terok-sandbox plugins list [--json]`: every *.so in the configured plugin
 * directory, each probed in a child process (a plugin that crashes cannot take the CLI down),
 * with kind, name, version, ABI, capabilities, and why it was rejected. The directory comes
 * from the configuration only: the CLI takes no plugin path on its command line. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "loader.h"
#include "paths.h"
#include "terok-build-config.h"
#include "util/strv.h"

static void plugins_help(void)
{
    printf("Usage: terok-sandbox plugins list [--json]\n"
           "\n"
           "List every plugin (*.so) in the configured plugin directory ([core] plugin-dir,\n"
           "default %s). Each file is loaded in a separate process and shown\n"
           "with its kind, name, version, plugin ABI and capabilities, or why it was\n"
           "rejected; a plugin that crashes while loading is shown as crashed.\n"
           "\n"
           "Options:\n"
           "      --json   a JSON array: one object per file with file, path, kind, name,\n"
           "               version, abi (\"X.Y\" or null), caps (array), status (ok, rejected,\n"
           "               crashed) and reason (null when ok)\n"
           "  -h, --help   show this help\n"
           "\n"
           "Exit status: 0 when the directory could be listed (whatever the plugins' status),\n"
           "1 when it could not, 2 on a bad command line, 3 when the configuration cannot be\n"
           "read.\n",
           TEROK_PLUGIN_DIR);
}

/* The plugin directory the operator configured. Only the config is read: no plugin is loaded
 * and no state is touched. */
static int plugin_dir_from_config(cli *c, char **ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *fallback_user = NULL;
    paths p = {0};
    config *cfg = NULL;
    const char *sys, *user, *dir;
    int r;

    r = paths_resolve(&p, &err);
    if (r == -EOPNOTSUPP) {
        /* paths not available in this build: the same defaults, resolved here. */
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

        terok_error_clear(&err);
        sys = TEROK_SYSCONF_DIR;
        if (geteuid() != 0 && !isempty(xdg))
            r = asprintf(&fallback_user, "%s/terok-sandbox", xdg);
        else if (geteuid() != 0 && !isempty(home))
            r = asprintf(&fallback_user, "%s/.config/terok-sandbox", home);
        else
            r = 0;
        if (r < 0)
            return cli_failf(c, EXIT_FAIL, "out of memory");
        user = fallback_user;
    } else if (r < 0) {
        paths_done(&p);
        return cli_fail(c, r, &err);
    } else {
        sys = p.system_config_dir;
        user = p.user_config_dir;
    }

    r = config_load(c->config_file, sys, user, &cfg, &err);
    paths_done(&p);
    if (r == -EOPNOTSUPP) {
        /* No configuration support in this build: the compiled-in default. */
        *ret = strdup(TEROK_PLUGIN_DIR);
        return *ret ? 0 : cli_failf(c, EXIT_FAIL, "out of memory");
    }
    if (r < 0) {
        int code = cli_fail(c, r, &err);
        return code == EXIT_FAIL ? EXIT_CONFIG : code;
    }
    dir = config_get(cfg, "core", "plugin-dir");
    *ret = strdup(isempty(dir) ? TEROK_PLUGIN_DIR : dir);
    config_free(cfg);
    return *ret ? 0 : cli_failf(c, EXIT_FAIL, "out of memory");
}

typedef struct listing {
    json_object *array; /* one object per file: the --json schema, also rendered as a table */
    const char *dir;
} listing;

static json_object *json_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static int on_probe(void *userdata, const plugin_probe *pr)
{
    listing *l = userdata;
    _cleanup_free_ char *path = NULL;
    json_object *o, *caps;
    char abi[32];

    if (asprintf(&path, "%s%s%s", l->dir, l->dir[strlen(l->dir) - 1] == '/' ? "" : "/", pr->file) <
        0)
        return -ENOMEM;
    o = json_object_new_object();
    caps = json_object_new_array();
    if (!o || !caps) {
        json_object_put(o);
        json_object_put(caps);
        return -ENOMEM;
    }
    /* A probe reports ABI 0.0 when the file never got as far as a descriptor. */
    snprintf(abi, sizeof abi, "%" PRIu32 ".%" PRIu32, pr->abi_major, pr->abi_minor);
    json_object_object_add(o, "file", json_object_new_string(pr->file));
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "kind", json_str_or_null(pr->kind));
    json_object_object_add(o, "name", json_str_or_null(pr->name));
    json_object_object_add(o, "version", json_str_or_null(pr->version));
    json_object_object_add(o, "abi",
                           pr->abi_major || pr->abi_minor ? json_object_new_string(abi) : NULL);
    for (const char *const *cap = pr->caps; cap && *cap; cap++)
        json_object_array_add(caps, json_object_new_string(*cap));
    json_object_object_add(o, "caps", caps);
    json_object_object_add(o, "status", json_object_new_string(pr->status));
    json_object_object_add(o, "reason", json_str_or_null(pr->reason));
    json_object_array_add(l->array, o);
    return 0;
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void print_table(const char *dir, json_object *array)
{
    cli_table *t = cli_table_new(7, "FILE", "KIND", "NAME", "VERSION", "ABI", "CAPS", "STATUS");
    size_t n = json_object_array_length(array);

    printf("Plugin directory: %s (this terok-sandbox speaks plugin ABI %u.%u)\n", dir,
           TEROK_PLUGIN_ABI_MAJOR, TEROK_PLUGIN_ABI_MINOR);
    if (n == 0) {
        printf("No plugins (*.so) found.\n");
        cli_table_print(t);
        return;
    }
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(array, i), *caps;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *cap_list = NULL, *status = NULL;
        const char *reason = field(o, "reason");

        if (json_object_object_get_ex(o, "caps", &caps))
            for (size_t k = 0; k < json_object_array_length(caps); k++)
                (void)strv_extend(&names,
                                  json_object_get_string(json_object_array_get_idx(caps, k)));
        cap_list = names ? strv_join((const char *const *)names, ",") : NULL;
        if (reason && asprintf(&status, "%s: %s", field(o, "status"), reason) < 0)
            status = NULL;
        cli_table_add(t, field(o, "file"), field(o, "kind"), field(o, "name"), field(o, "version"),
                      field(o, "abi"), cap_list, status ? status : field(o, "status"));
    }
    cli_table_print(t);
}

static int plugins_list(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_free_ char *dir = NULL;
    listing l = {0};
    int o, r;

    optind = 0;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        switch (o) {
        case 'j':
            c->json = true;
            break;
        case 'h':
            plugins_help();
            return EXIT_OK;
        default:
            return cli_usage_error(c, "plugins list", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "plugins list", "unexpected argument '%s'", argv[optind]);

    r = plugin_dir_from_config(c, &dir);
    if (r != 0)
        return r;
    l.dir = dir;
    l.array = json_object_new_array();
    if (!l.array)
        return cli_failf(c, EXIT_FAIL, "out of memory");

    r = loader_probe_dir(dir, on_probe, &l, &err);
    if (r < 0) {
        json_object_put(l.array);
        return cli_fail(c, r, &err);
    }
    if (c->json) {
        cli_json_print(l.array);
        return EXIT_OK;
    }
    print_table(dir, l.array);
    json_object_put(l.array);
    return EXIT_OK;
}

int cmd_plugins(cli *c, int argc, char **argv)
{
    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
        plugins_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (streq(argv[1], "list"))
        return plugins_list(c, argc - 1, argv + 1);
    return cli_usage_error(c, "plugins", "unknown subcommand '%s'", argv[1]);
}
