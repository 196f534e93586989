/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-gate.c: `terok-sandbox gate add|rm|list|sync|pending|apply|review|diff|forward|backups`:
 * project mirrors, the upstream sync with held changes, what tasks pushed and getting it
 * upstream. Talks to the gate backend through core/src/gate.c; never to git directly. (The gate
 * daemon's `gate serve` and `gate stop` live with the daemon.) */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "gate.h"

static void gate_help(void)
{
    printf(
        "Usage: terok-sandbox gate COMMAND [OPTIONS]\n"
        "\n"
        "Project mirrors that tasks clone from and push to. Each task gets its own view of a\n"
        "project; its pushes stay there until you review and forward them upstream.\n"
        "\n"
        "Commands:\n"
        "  add PROJECT [--upstream URL] [--branch B] [--credential NAME]\n"
        "      [--host-key 'TYPE BASE64' | --accept-host-key]\n"
        "                                create a mirror (from URL, or empty); idempotent\n"
        "  rm PROJECT...                 remove projects (absent is not an error)\n"
        "  list [--json]                 projects, upstreams, pending changes, tasks\n"
        "  sync PROJECT [--json]         fetch upstream: creates and fast-forwards applied,\n"
        "                                rewrites and deletes held as pending\n"
        "  pending PROJECT [--json]      upstream changes held for review\n"
        "  apply PROJECT BRANCH          apply a held change (old tip backed up first)\n"
        "  review TASK [--project P] [--json]\n"
        "                                the task's branches: ahead/behind upstream, commits,\n"
        "                                diffstat\n"
        "  diff TASK BRANCH [--project P]\n"
        "                                unified diff of a task branch against upstream\n"
        "  forward TASK BRANCH [--to B] [--force] [--project P]\n"
        "                                push a task branch upstream (fast-forward only unless\n"
        "                                --force, which backs up the upstream tip first)\n"
        "  backups list PROJECT [--json] backup refs of the mirror and its task views\n"
        "  backups restore PROJECT ID    put a backed-up ref back (current tip backed up)\n"
        "  backups prune PROJECT [--older-than DURATION]\n"
        "                                drop backups older than DURATION (default 30d;\n"
        "                                0 drops all)\n"
        "  serve [--foreground] [--tcp 127.0.0.1:PORT=CONTAINER] [--max-workers N]\n"
        "                                run the gate daemon (`run --repo` starts it on demand)\n"
        "  stop                          stop the gate daemon\n"
        "\n"
        "Upstream credentials come from the vault entry named by --credential (a token, or\n"
        "USER:TOKEN, for https; an SSH key from 'terok-sandbox ssh add' for ssh:// and\n"
        "[user@]host:path), never from your own git configuration, ~/.ssh or ssh-agent.\n"
        "An ssh:// upstream's host key must be known: pinned with --host-key (a known_hosts\n"
        "line without the host), trusted on first use and recorded with --accept-host-key, or\n"
        "listed in the file [gate.git] known-hosts names. Unknown or changed keys are refused.\n"
        "\n"
        "Exit status: 0 done, 1 failed, 2 bad command line, 4 no such project, task or\n"
        "branch, 5 the gate backend could not be used.\n");
}

typedef struct gopts {
    const char *upstream, *branch, *credential, *project, *to, *older_than, *host_key;
    bool force, accept_host_key;
} gopts;

/* getopt over the subcommand's argv: --json and --help everywhere, the rest by `allowed`
 * (letters of u b c p t f o k a). Positional arguments are left in argv[optind..]. Returns -1 to go
 * on, else an exit code. */
static int parse(cli *c, int argc, char **argv, const char *cmd, const char *allowed, gopts *o)
{
    static const struct option all[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"upstream", required_argument, NULL, 'u'},
        {"branch", required_argument, NULL, 'b'},
        {"credential", required_argument, NULL, 'c'},
        {"project", required_argument, NULL, 'p'},
        {"to", required_argument, NULL, 't'},
        {"force", no_argument, NULL, 'f'},
        {"older-than", required_argument, NULL, 'o'},
        {"host-key", required_argument, NULL, 'k'},
        {"accept-host-key", no_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (gopts){0};
    optind = 0;
    while ((opt = getopt_long(argc, argv, "h", all, NULL)) >= 0) {
        if (opt == 'j') {
            c->json = true;
            continue;
        }
        if (opt == 'h') {
            gate_help();
            return EXIT_OK;
        }
        if (opt == '?' || !strchr(allowed, opt))
            return cli_usage_error(c, cmd, "unknown option '%s'", argv[optind - 1]);
        switch (opt) {
        case 'u':
            o->upstream = optarg;
            break;
        case 'b':
            o->branch = optarg;
            break;
        case 'c':
            o->credential = optarg;
            break;
        case 'p':
            o->project = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'f':
            o->force = true;
            break;
        case 'o':
            o->older_than = optarg;
            break;
        case 'k':
            o->host_key = optarg;
            break;
        case 'a':
            o->accept_host_key = true;
            break;
        }
    }
    return -1;
}

static int need_args(cli *c, const char *cmd, int argc, char **argv, int want_min, int want_max,
                     const char *what)
{
    int have = argc - optind;

    if (have < want_min)
        return cli_usage_error(c, cmd, "missing %s", what);
    if (want_max >= 0 && have > want_max)
        return cli_usage_error(c, cmd, "unexpected argument '%s'", argv[optind + want_max]);
    return -1;
}

static int open_gate(cli *c, gate *ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    int r = cli_sandbox(c, &sb);

    if (r > 0)
        return r;
    r = gate_open(sb->registry, 0, ret, &err);
    return r < 0 ? cli_fail(c, r, &err) : 0;
}

static int collect_json(void *ud, const char *json)
{
    json_object *o = json_tokener_parse(json);

    if (o)
        json_object_array_add(ud, o);
    return 0;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static void short_oid(const char *oid, char out[13])
{
    snprintf(out, 13, "%s", oid ? oid : "-");
}

/* --- projects ----------------------------------------------------------------------------- */

static int gate_cmd_add(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate add", "ubcka", &o);
    json_object *found = NULL;

    if (r >= 0 || (r = need_args(c, "gate add", argc, argv, 1, 1, "PROJECT")) >= 0)
        return r;
    if (o.host_key && o.accept_host_key)
        return cli_usage_error(c, "gate add",
                               "--host-key and --accept-host-key exclude each other");
    if ((o.host_key || o.accept_host_key) && !gate_url_is_ssh(o.upstream))
        return cli_usage_error(c, "gate add", "%s is for an ssh:// upstream",
                               o.host_key ? "--host-key" : "--accept-host-key");
    if ((r = open_gate(c, &g)) > 0)
        return r;
    {
        terok_gate_repo_spec spec = {.struct_size = sizeof spec,
                                     .name = argv[optind],
                                     .upstream_url = o.upstream,
                                     .branch = o.branch,
                                     .credential = o.credential,
                                     .flags =
                                         o.accept_host_key ? TEROK_GATE_REPO_ACCEPT_HOST_KEY : 0,
                                     .host_key = o.host_key};
        r = gate_repo_create(&g, &spec, &err);
    }
    if (r < 0)
        return cli_fail(c, r, &err);
    {
        json_object *arr = json_object_new_array();
        if (gate_repo_list(&g, collect_json, arr, &err) >= 0)
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (streq(strempty(jstr(json_object_array_get_idx(arr, i), "name")), argv[optind]))
                    found = json_object_get(json_object_array_get_idx(arr, i));
        json_object_put(arr);
    }
    if (c->json) {
        cli_json_print(found ? found : json_object_new_object());
        return EXIT_OK;
    }
    printf("project '%s' ready%s%s\n", argv[optind], o.upstream ? " from " : "",
           o.upstream ? o.upstream : "");
    /* The pinned host key is shown, so a key trusted on first use can be checked. */
    if (found && jstr(found, "host_key"))
        printf("upstream host key: %s (%s)%s\n", jstr(found, "host_key_fingerprint"),
               jstr(found, "host_key"),
               o.accept_host_key && !o.host_key ? " — trusted on first use and pinned" : "");
    json_object_put(found);
    return EXIT_OK;
}

static int gate_cmd_rm(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate rm", "", &o), rc = EXIT_OK;

    if (r >= 0 || (r = need_args(c, "gate rm", argc, argv, 1, -1, "PROJECT")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    arr = json_object_new_array();
    for (int i = optind; i < argc; i++) {
        json_object *e = json_object_new_object();
        r = gate_repo_delete(&g, argv[i], &err);
        json_object_object_add(e, "name", json_object_new_string(argv[i]));
        json_object_object_add(e, "result",
                               json_object_new_string(r == 0         ? "removed"
                                                      : r == -ENOENT ? "absent"
                                                                     : "failed"));
        if (r < 0 && r != -ENOENT) {
            json_object_object_add(e, "error", json_object_new_string(terok_error_message(&err)));
            if (!c->json)
                rc = cli_fail(c, r, &err);
            else
                rc = EXIT_FAIL;
        } else if (!c->json)
            printf("%s: %s\n", argv[i], r == 0 ? "removed" : "absent");
        terok_error_clear(&err);
        json_object_array_add(arr, e);
    }
    if (c->json)
        cli_json_print(arr);
    else
        json_object_put(arr);
    return rc;
}

static int gate_cmd_list(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    cli_table *t;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate list", "", &o);

    if (r >= 0 || (r = need_args(c, "gate list", argc, argv, 0, 0, "")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    arr = json_object_new_array();
    r = gate_repo_list(&g, collect_json, arr, &err);
    if (r < 0) {
        json_object_put(arr);
        return cli_fail(c, r, &err);
    }
    if (c->json) {
        cli_json_print(arr);
        return EXIT_OK;
    }
    t = cli_table_new(5, "PROJECT", "UPSTREAM", "HEAD", "PENDING", "TASKS");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *tasks;
        char pending[24], ntasks[24];
        const char *head = jstr(e, "head");
        snprintf(pending, sizeof pending, "%" PRId64, jint(e, "pending"));
        json_object_object_get_ex(e, "tasks", &tasks);
        snprintf(ntasks, sizeof ntasks, "%zu", tasks ? json_object_array_length(tasks) : 0);
        cli_table_add(t, jstr(e, "name"), jstr(e, "upstream"),
                      head && strneq(head, "refs/heads/", 11) ? head + 11 : head, pending, ntasks);
    }
    cli_table_print(t);
    json_object_put(arr);
    return EXIT_OK;
}

/* --- sync --------------------------------------------------------------------------------- */

static int print_records(cli *c, json_object *arr, const char *empty)
{
    if (c->json) {
        cli_json_print(arr);
        return EXIT_OK;
    }
    if (json_object_array_length(arr) == 0) {
        printf("%s\n", empty);
        json_object_put(arr);
        return EXIT_OK;
    }
    return -1;
}

static int gate_cmd_sync(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    size_t held = 0;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate sync", "", &o);

    if (r >= 0 || (r = need_args(c, "gate sync", argc, argv, 1, 1, "PROJECT")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    arr = json_object_new_array();
    r = gate_sync(&g, argv[optind], collect_json, arr, &err);
    if (r < 0) {
        json_object_put(arr);
        return cli_fail(c, r, &err);
    }
    if (print_records(c, arr, "up to date") >= 0)
        return EXIT_OK;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        char o1[13], o2[13];
        const char *why = jstr(e, "reason");
        short_oid(jstr(e, "old"), o1);
        short_oid(jstr(e, "new"), o2);
        printf("%-17s %-30s %s..%s%s%s%s%s\n", jstr(e, "action"), jstr(e, "branch"), o1, o2,
               why ? "  " : "", why ? why : "", jstr(e, "task") ? "  task " : "",
               jstr(e, "task") ? jstr(e, "task") : "");
        held += streq(strempty(jstr(e, "action")), "pending");
    }
    if (held)
        printf("%zu change(s) held: 'terok-sandbox gate pending %s', then 'gate apply'\n", held,
               argv[optind]);
    json_object_put(arr);
    return EXIT_OK;
}

static int gate_cmd_pending(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    cli_table *t;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate pending", "", &o);

    if (r >= 0 || (r = need_args(c, "gate pending", argc, argv, 1, 1, "PROJECT")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    arr = json_object_new_array();
    r = gate_pending_list(&g, argv[optind], collect_json, arr, &err);
    if (r < 0) {
        json_object_put(arr);
        return cli_fail(c, r, &err);
    }
    if (print_records(c, arr, "nothing pending") >= 0)
        return EXIT_OK;
    t = cli_table_new(5, "BRANCH", "KIND", "GATE", "UPSTREAM", "GATE-ONLY COMMITS");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        char o1[13], o2[13], n[24];
        int64_t k = jint(e, "gate_only_commits");
        short_oid(jstr(e, "gate"), o1);
        short_oid(jstr(e, "upstream"), o2);
        snprintf(n, sizeof n, "%" PRId64, k);
        cli_table_add(t, jstr(e, "branch"), jstr(e, "kind"), o1, o2, k < 0 ? NULL : n);
    }
    cli_table_print(t);
    json_object_put(arr);
    return EXIT_OK;
}

static int gate_cmd_apply(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate apply", "", &o);

    if (r >= 0 || (r = need_args(c, "gate apply", argc, argv, 2, 2, "PROJECT BRANCH")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    r = gate_pending_apply(&g, argv[optind], argv[optind + 1], &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "project", json_object_new_string(argv[optind]));
        json_object_object_add(e, "branch", json_object_new_string(argv[optind + 1]));
        json_object_object_add(e, "result", json_object_new_string("applied"));
        cli_json_print(e);
    } else
        printf("applied the held change of '%s' (old tip backed up; see 'gate backups list')\n",
               argv[optind + 1]);
    return EXIT_OK;
}

/* --- review, diff, forward --------------------------------------------------------------- */

/* The project of a task: --project, or the only project the task has a view of. */
static int task_project(cli *c, gate *g, const char *cmd, const char *task, const char *given,
                        json_object **ret_projects)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr = json_object_new_array(), *out = json_object_new_array();
    int r;

    if (given) {
        json_object_array_add(out, json_object_new_string(given));
        json_object_put(arr);
        *ret_projects = out;
        return -1;
    }
    r = gate_repo_list(g, collect_json, arr, &err);
    if (r < 0) {
        json_object_put(arr);
        json_object_put(out);
        return cli_fail(c, r, &err);
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *tasks;
        if (!json_object_object_get_ex(e, "tasks", &tasks))
            continue;
        for (size_t k = 0; k < json_object_array_length(tasks); k++)
            if (streq(json_object_get_string(json_object_array_get_idx(tasks, k)), task))
                json_object_array_add(out, json_object_new_string(jstr(e, "name")));
    }
    json_object_put(arr);
    if (json_object_array_length(out) == 0) {
        json_object_put(out);
        return cli_failf(c, EXIT_NOTFOUND, "task '%.128s' has no view of any project", task);
    }
    *ret_projects = out;
    (void)cmd;
    return -1;
}

static int one_project(cli *c, const char *cmd, json_object *projects, const char **ret)
{
    if (json_object_array_length(projects) > 1)
        return cli_usage_error(c, cmd, "the task has several projects; name one with --project");
    *ret = json_object_get_string(json_object_array_get_idx(projects, 0));
    return -1;
}

static int branch_cb(void *ud, const terok_gate_branch *b)
{
    json_object *o = json_object_new_object(), *d = json_tokener_parse(strempty(b->detail_json));

    json_object_object_add(o, "name", json_object_new_string(b->name));
    json_object_object_add(o, "oid", json_object_new_string(b->oid));
    json_object_object_add(o, "upstream_oid",
                           b->upstream_oid ? json_object_new_string(b->upstream_oid) : NULL);
    json_object_object_add(o, "ahead", json_object_new_int64(b->ahead));
    json_object_object_add(o, "behind", json_object_new_int64(b->behind));
    json_object_object_add(o, "detail", d);
    json_object_array_add(ud, o);
    return 0;
}

static int gate_cmd_review(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *projects = NULL, *all;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate review", "p", &o);

    if (r >= 0 || (r = need_args(c, "gate review", argc, argv, 1, 1, "TASK")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    if ((r = task_project(c, &g, "gate review", argv[optind], o.project, &projects)) >= 0)
        return r;
    all = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(projects); i++) {
        const char *p = json_object_get_string(json_object_array_get_idx(projects, i));
        json_object *arr = json_object_new_array();
        r = gate_review(&g, argv[optind], p, branch_cb, arr, &err);
        if (r < 0) {
            json_object_put(arr);
            json_object_put(all);
            json_object_put(projects);
            return cli_fail(c, r, &err);
        }
        for (size_t k = 0; k < json_object_array_length(arr); k++) {
            json_object *b = json_object_get(json_object_array_get_idx(arr, k));
            json_object_object_add(b, "project", json_object_new_string(p));
            json_object_array_add(all, b);
        }
        json_object_put(arr);
    }
    json_object_put(projects);
    if (c->json) {
        cli_json_print(all);
        return EXIT_OK;
    }
    for (size_t i = 0; i < json_object_array_length(all); i++) {
        json_object *b = json_object_array_get_idx(all, i), *d, *commits, *stat;
        char oid[13];
        short_oid(jstr(b, "oid"), oid);
        d = json_object_object_get(b, "detail");
        printf("%s %s  %s  +%" PRId64 " -%" PRId64 " vs %s\n", jstr(b, "project"), jstr(b, "name"),
               oid, jint(b, "ahead"), jint(b, "behind"),
               d && jstr(d, "base") ? jstr(d, "base") : "(no base)");
        commits = d ? json_object_object_get(d, "commits") : NULL;
        for (size_t k = 0; commits && k < json_object_array_length(commits); k++) {
            json_object *cm = json_object_array_get_idx(commits, k);
            short_oid(jstr(cm, "oid"), oid);
            printf("    %.12s %s\n", oid, strempty(jstr(cm, "summary")));
        }
        stat = d ? json_object_object_get(d, "diffstat") : NULL;
        if (stat)
            printf("    %" PRId64 " file(s) changed, %" PRId64 " insertion(s), %" PRId64
                   " deletion(s)\n",
                   jint(stat, "files"), jint(stat, "insertions"), jint(stat, "deletions"));
    }
    if (json_object_array_length(all) == 0)
        printf("no branches\n");
    json_object_put(all);
    return EXIT_OK;
}

static int write_text(void *ud, const char *data, size_t len)
{
    (void)ud;
    return fwrite(data, 1, len, stdout) == len ? 0 : -EIO;
}

static int gate_cmd_diff(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *projects = NULL;
    const char *project = NULL;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate diff", "p", &o);

    if (r >= 0 || (r = need_args(c, "gate diff", argc, argv, 2, 2, "TASK BRANCH")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    if ((r = task_project(c, &g, "gate diff", argv[optind], o.project, &projects)) >= 0)
        return r;
    if ((r = one_project(c, "gate diff", projects, &project)) >= 0) {
        json_object_put(projects);
        return r;
    }
    r = gate_diff(&g, argv[optind], project, argv[optind + 1], write_text, NULL, &err);
    json_object_put(projects);
    fflush(stdout);
    return r < 0 ? cli_fail(c, r, &err) : EXIT_OK;
}

static int gate_cmd_forward(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *projects = NULL;
    const char *project = NULL;
    gopts o;
    gate g;
    int r = parse(c, argc, argv, "gate forward", "ptf", &o);

    if (r >= 0 || (r = need_args(c, "gate forward", argc, argv, 2, 2, "TASK BRANCH")) >= 0)
        return r;
    if ((r = open_gate(c, &g)) > 0)
        return r;
    if ((r = task_project(c, &g, "gate forward", argv[optind], o.project, &projects)) >= 0)
        return r;
    if ((r = one_project(c, "gate forward", projects, &project)) >= 0) {
        json_object_put(projects);
        return r;
    }
    r = gate_forward(&g, argv[optind], project, argv[optind + 1], o.to,
                     o.force ? TEROK_GATE_FORWARD_FORCE : 0, &err);
    if (r < 0) {
        json_object_put(projects);
        return cli_fail(c, r, &err);
    }
    if (c->json) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "task", json_object_new_string(argv[optind]));
        json_object_object_add(e, "project", json_object_new_string(project));
        json_object_object_add(e, "branch", json_object_new_string(argv[optind + 1]));
        json_object_object_add(e, "to", json_object_new_string(o.to ? o.to : argv[optind + 1]));
        json_object_object_add(e, "forced", json_object_new_boolean(o.force));
        cli_json_print(e);
    } else
        printf("forwarded '%s' of '%s' to upstream '%s'\n", argv[optind + 1], argv[optind],
               o.to ? o.to : argv[optind + 1]);
    json_object_put(projects);
    return EXIT_OK;
}

/* --- backups ------------------------------------------------------------------------------ */

static int gate_cmd_backups(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *sub = argc > 1 ? argv[1] : NULL;
    gopts o;
    gate g;
    int r;

    if (!sub || streq(sub, "--help") || streq(sub, "-h")) {
        gate_help();
        return sub ? EXIT_OK : EXIT_USAGE;
    }
    argc--;
    argv++;
    if (streq(sub, "list")) {
        json_object *arr;
        cli_table *t;
        r = parse(c, argc, argv, "gate backups list", "", &o);
        if (r >= 0 || (r = need_args(c, "gate backups list", argc, argv, 1, 1, "PROJECT")) >= 0)
            return r;
        if ((r = open_gate(c, &g)) > 0)
            return r;
        arr = json_object_new_array();
        r = gate_backups_list(&g, argv[optind], collect_json, arr, &err);
        if (r < 0) {
            json_object_put(arr);
            return cli_fail(c, r, &err);
        }
        if (print_records(c, arr, "no backups") >= 0)
            return EXIT_OK;
        t = cli_table_new(5, "WHEN", "TASK", "REF", "OID", "ID");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i);
            char when[32] = "-", oid[13];
            time_t tt = (time_t)jint(e, "time");
            struct tm tm;
            if (tt && gmtime_r(&tt, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            short_oid(jstr(e, "oid"), oid);
            cli_table_add(t, when, jstr(e, "task"), jstr(e, "ref"), oid, jstr(e, "id"));
        }
        cli_table_print(t);
        json_object_put(arr);
        return EXIT_OK;
    }
    if (streq(sub, "restore")) {
        r = parse(c, argc, argv, "gate backups restore", "", &o);
        if (r >= 0 ||
            (r = need_args(c, "gate backups restore", argc, argv, 2, 2, "PROJECT ID")) >= 0)
            return r;
        if ((r = open_gate(c, &g)) > 0)
            return r;
        r = gate_backup_restore(&g, argv[optind], argv[optind + 1], &err);
        if (r < 0)
            return cli_fail(c, r, &err);
        if (c->json) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "restored", json_object_new_string(argv[optind + 1]));
            cli_json_print(e);
        } else
            printf("restored %s\n", argv[optind + 1]);
        return EXIT_OK;
    }
    if (streq(sub, "prune")) {
        int64_t ms = INT64_C(30) * 86400 * 1000;
        uint64_t n = 0;
        r = parse(c, argc, argv, "gate backups prune", "o", &o);
        if (r >= 0 || (r = need_args(c, "gate backups prune", argc, argv, 1, 1, "PROJECT")) >= 0)
            return r;
        if (o.older_than && parse_duration_ms(o.older_than, &ms) < 0)
            return cli_usage_error(c, "gate backups prune",
                                   "invalid --older-than '%s' (e.g. 30d, 12h, 0)", o.older_than);
        if ((r = open_gate(c, &g)) > 0)
            return r;
        r = gate_backups_prune(&g, argv[optind], ms / 1000, &n, &err);
        if (r < 0)
            return cli_fail(c, r, &err);
        if (c->json) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "pruned", json_object_new_int64((int64_t)n));
            cli_json_print(e);
        } else
            printf("pruned %" PRIu64 " backup(s)\n", n);
        return EXIT_OK;
    }
    return cli_usage_error(c, "gate backups", "unknown command '%s'", sub);
}

/* The daemon's commands: cmd-gate-daemon.c (stop) and cmd-gate-serve.c (serve, in
 * terok-sandbox-daemon; an exec of it in terok-sandbox). */
int cmd_gate_serve(cli *c, int argc, char **argv);
int cmd_gate_stop(cli *c, int argc, char **argv);

int cmd_gate(cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli *, int, char **);
    } sub[] = {
        {"add", gate_cmd_add},         {"rm", gate_cmd_rm},           {"list", gate_cmd_list},
        {"sync", gate_cmd_sync},       {"pending", gate_cmd_pending}, {"apply", gate_cmd_apply},
        {"review", gate_cmd_review},   {"diff", gate_cmd_diff},       {"forward", gate_cmd_forward},
        {"backups", gate_cmd_backups}, {"serve", cmd_gate_serve},     {"stop", cmd_gate_stop},
    };

    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        gate_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (streq(argv[1], "--json") && argc > 2) {
        c->json = true;
        argv++;
        argc--;
    }
    for (size_t i = 0; i < ELEMENTSOF(sub); i++)
        if (streq(argv[1], sub[i].name))
            return sub[i].run(c, argc - 1, argv + 1);
    return cli_usage_error(c, "gate", "unknown command '%s'", argv[1]);
}
