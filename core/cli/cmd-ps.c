/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-ps.c: `ps` (terok-managed containers only, by label) and `inspect` (the runtime's view
 * joined with the applied spec: hardening and relaxations). Stable JSON schemas: see
 * docs/cli.md. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli-container.h"
#include "util/strv.h"

enum {
    OPT_JSON = 0x100,
};

static const char *view_name(const container_view *v)
{
    return v->rec ? v->rec->name : v->info->name;
}

static const char *view_state(const container_view *v)
{
    /* Recorded, but the runtime no longer has it. */
    return v->info ? container_state_name(v->info->state) : "missing";
}

static json_object *kv_object(const char *const *l)
{
    json_object *o = json_object_new_object();

    for (const char *const *p = l; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        _cleanup_free_ char *k = strndup(*p, eq ? (size_t)(eq - *p) : strlen(*p));
        if (k)
            json_object_object_add(o, k, json_object_new_string(eq ? eq + 1 : ""));
    }
    return o;
}

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* The ps row; inspect adds to it. */
static json_object *view_summary(const container_view *v)
{
    json_object *o = json_object_new_object();
    const terok_container_info *i = v->info;

    json_object_object_add(o, "name", json_object_new_string(view_name(v)));
    json_object_object_add(o, "id", jstr(i && i->id ? i->id : v->rec ? v->rec->id : NULL));
    json_object_object_add(o, "image", jstr(i && i->image ? i->image : v->rec->image));
    json_object_object_add(o, "runtime", jstr(v->rec ? v->rec->runtime : NULL));
    json_object_object_add(o, "state", json_object_new_string(view_state(v)));
    json_object_object_add(o, "status", jstr(i ? i->status : "not known to the runtime"));
    json_object_object_add(
        o, "exit_code",
        i && i->state == TEROK_CONTAINER_EXITED ? json_object_new_int(i->exit_code) : NULL);
    json_object_object_add(o, "created_at",
                           json_object_new_int64(v->rec ? v->rec->created_at
                                                 : i    ? i->created_at
                                                        : 0));
    json_object_object_add(o, "managed", json_object_new_boolean(v->rec != NULL));
    return o;
}

static int ps_json_cb(void *userdata, const container_view *v)
{
    json_object_array_add(userdata, view_summary(v));
    return 0;
}

static void created_ago(int64_t t, char *buf, size_t len)
{
    int64_t d = (int64_t)time(NULL) - t;

    if (t <= 0)
        snprintf(buf, len, "-");
    else if (d < 60)
        snprintf(buf, len, "%" PRId64 " seconds ago", d < 0 ? 0 : d);
    else if (d < 3600)
        snprintf(buf, len, "%" PRId64 " minutes ago", d / 60);
    else if (d < 86400)
        snprintf(buf, len, "%" PRId64 " hours ago", d / 3600);
    else
        snprintf(buf, len, "%" PRId64 " days ago", d / 86400);
}

static int ps_table_cb(void *userdata, const container_view *v)
{
    char id[13] = "", created[64];
    const char *full = v->info && v->info->id ? v->info->id : v->rec ? v->rec->id : NULL;

    if (full)
        snprintf(id, sizeof id, "%.12s", full);
    created_ago(v->rec ? v->rec->created_at : v->info->created_at, created, sizeof created);
    cli_table_add(userdata, view_name(v), full ? id : NULL,
                  v->info && v->info->image ? v->info->image : v->rec->image, view_state(v),
                  v->info ? v->info->status : "not known to the runtime", created);
    return 0;
}

static int ps_quiet_cb(void *userdata, const container_view *v)
{
    printf("%s\n", view_name(v));
    return 0;
}

int cmd_ps(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"quiet", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    bool all = false, quiet = false;
    sandbox *sb;
    int o, r, k;

    opterr = 0;
    while ((o = getopt_long(argc, argv, ":aqh", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            printf("Usage: terok-sandbox ps [-a] [-q] [--json]\n\n"
                   "List terok-managed containers (running ones unless --all).\n\n"
                   "  -a, --all     include created and exited containers\n"
                   "  -q, --quiet   print names only\n"
                   "      --json    print an array of {\"name\", \"id\", \"image\", \"runtime\",\n"
                   "                \"state\", \"status\", \"exit_code\", \"created_at\", "
                   "\"managed\"}\n"
                   "  -h, --help    show this help\n");
            return EXIT_OK;
        case 'a':
            all = true;
            break;
        case 'q':
            quiet = true;
            break;
        case OPT_JSON:
            c->json = true;
            break;
        default:
            return cli_getopt_error(c, "ps", false, o, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "ps", "unexpected argument '%s'", argv[optind]);
    k = cli_sandbox(c, &sb);
    if (k)
        return k;
    if (c->json) {
        json_object *arr = json_object_new_array();
        r = sandbox_list(sb, all, ps_json_cb, arr, &err);
        if (r < 0) {
            json_object_put(arr);
            return cli_fail(c, r, &err);
        }
        cli_json_print(arr);
        return EXIT_OK;
    }
    if (quiet) {
        r = sandbox_list(sb, all, ps_quiet_cb, NULL, &err);
        return r < 0 ? cli_fail(c, r, &err) : EXIT_OK;
    }
    cli_table *t = cli_table_new(6, "NAME", "ID", "IMAGE", "STATE", "STATUS", "CREATED");
    r = sandbox_list(sb, all, ps_table_cb, t, &err);
    cli_table_print(t);
    return r < 0 ? cli_fail(c, r, &err) : EXIT_OK;
}

static int inspect_cb(void *userdata, const container_view *v)
{
    json_object *o = view_summary(v), *spec = NULL;
    const terok_container_info *i = v->info;

    if (i) {
        json_object *mounts = json_object_new_array();
        for (const char *const *m = i->mounts; m && *m; m++)
            json_object_array_add(mounts, json_object_new_string(*m));
        json_object_object_add(o, "pid", json_object_new_int64(i->pid));
        json_object_object_add(o, "started_at", json_object_new_int64(i->started_at));
        json_object_object_add(o, "finished_at", json_object_new_int64(i->finished_at));
        json_object_object_add(o, "labels", kv_object(i->labels));
        json_object_object_add(o, "annotations", kv_object(i->annotations));
        json_object_object_add(o, "mounts", mounts);
    }
    if (v->rec)
        spec = json_tokener_parse(v->rec->spec_json);
    /* The spec as applied: hardening, relaxations, shield. */
    json_object_object_add(o, "spec", spec);
    json_object_array_add(userdata, o);
    return 0;
}

int cmd_inspect(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_object *arr;
    sandbox *sb;
    int o, code = 0, k;

    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
        switch (o) {
        case 'h':
            printf("Usage: terok-sandbox inspect [--json] NAME...\n\n"
                   "Print, as a JSON array, each container's state, labels, mounts and the\n"
                   "spec as applied: \"spec.hardening\" (what is enforced) and\n"
                   "\"spec.relaxations\" (what the operator turned off, and where).\n"
                   "The output is always JSON; --json is accepted for symmetry.\n\n"
                   "  -h, --help   show this help\n");
            return EXIT_OK;
        case OPT_JSON:
            c->json = true;
            break;
        default:
            return cli_getopt_error(c, "inspect", false, o, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error(c, "inspect", "a container NAME is required");
    k = cli_sandbox(c, &sb);
    if (k)
        return k;
    arr = json_object_new_array();
    for (int i = optind; i < argc; i++) {
        _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
        int r = sandbox_inspect(sb, argv[i], inspect_cb, arr, &err);
        if (r < 0) {
            k = cli_fail(c, r, &err);
            if (!code)
                code = k;
        }
    }
    cli_json_print(arr);
    return code;
}
