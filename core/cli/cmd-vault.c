/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-vault.c: `terok-sandbox vault status|unlock|lock|add|list|rm|show-meta`. A secret is read
 * from standard input or a TTY prompt with echo off, never from the command line; listings show
 * names, types and metadata, never values. */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <termios.h>
#include <time.h>

#include "cli.h"
#include "secret.h"
#include "util/strv.h"
#include "vault.h"

#define SECRET_MAX (1u << 20)

static void vault_help(void)
{
    printf("Usage: terok-sandbox vault COMMAND [OPTIONS]\n"
           "\n"
           "The credentials the broker injects for containers. A value is read from standard\n"
           "input (or a prompt with echo off on a terminal), never from the command line, and\n"
           "is never shown again.\n"
           "\n"
           "Commands:\n"
           "  status [--json]               where the key comes from, locked or not, entries\n"
           "  unlock [--passphrase-stdin]   unlock for this session (backends that need it)\n"
           "  lock                          forget the session's key\n"
           "  add NAME [--type T] [--meta JSON]\n"
           "                                store or replace a credential (value from stdin)\n"
           "  list [--json]                 names, types and metadata; never values\n"
           "  rm NAME...                    remove credentials (absent is not an error)\n"
           "  show-meta NAME [--json]       one entry's type and metadata\n"
           "  serve [--foreground]          run the broker daemon (see 'vault serve --help')\n"
           "  stop                          stop the broker daemon\n"
           "  tokens list|revoke            phantom tokens, masked (see 'vault tokens --help')\n"
           "  audit [--container NAME] [--limit N] [--json]\n"
           "                                the broker's requests (never a secret)\n"
           "\n"
           "Exit status: 0 done, 1 failed, 2 bad command line, 4 no such entry, 5 the vault\n"
           "backend could not be used.\n");
}

/* Read a line from the terminal with echo off. */
static int prompt_tty(const char *prompt, char *buf, size_t size, size_t *ret_len)
{
    FILE *tty = fopen("/dev/tty", "r+e");
    struct termios old, quiet;
    size_t n;
    int r = 0;

    if (!tty)
        return -ENOTTY;
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) < 0) {
        fclose(tty);
        return -ENOTTY;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    (void)tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    if (!fgets(buf, (int)size, tty))
        r = -EIO;
    (void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (r < 0)
        return r;
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    *ret_len = n;
    return 0;
}

/* The secret from stdin (a pipe or file: everything, one trailing newline dropped) or, on a
 * terminal, a prompt with echo off (twice when confirm). */
static int read_secret(cli *c, const char *what, bool confirm, terok_secret **ret)
{
    _cleanup_free_ char *buf = malloc(SECRET_MAX + 1), *again = malloc(4096);
    size_t n = 0, m = 0;
    int r;

    if (!buf || !again)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    if (isatty(STDIN_FILENO)) {
        char prompt[160];

        snprintf(prompt, sizeof prompt, "%s: ", what);
        r = prompt_tty(prompt, buf, 4096, &n);
        if (r == 0 && confirm) {
            snprintf(prompt, sizeof prompt, "%s (again): ", what);
            r = prompt_tty(prompt, again, 4096, &m);
            if (r == 0 && (m != n || memcmp(buf, again, n) != 0))
                r = -EBADMSG;
        }
        explicit_bzero(again, 4096);
        if (r == -EBADMSG) {
            explicit_bzero(buf, SECRET_MAX);
            return cli_failf(c, EXIT_FAIL, "the two entries differ; nothing was stored");
        }
    } else {
        ssize_t k;
        r = 0;
        while (n <= SECRET_MAX && (k = read(STDIN_FILENO, buf + n, SECRET_MAX + 1 - n)) > 0)
            n += (size_t)k;
        if (n > SECRET_MAX) {
            explicit_bzero(buf, SECRET_MAX + 1);
            return cli_failf(c, EXIT_FAIL, "%s on standard input is larger than %u bytes", what,
                             SECRET_MAX);
        }
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (r < 0) {
        explicit_bzero(buf, SECRET_MAX + 1);
        return cli_failf(c, EXIT_FAIL, "cannot read %s: %s", what, strerror(-r));
    }
    if (n == 0) {
        explicit_bzero(buf, SECRET_MAX + 1);
        return cli_failf(c, EXIT_FAIL, "empty %s; nothing was stored", what);
    }
    r = terok_secret_new(buf, n, ret);
    explicit_bzero(buf, SECRET_MAX + 1);
    if (r < 0)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    return 0;
}

static int open_vault(cli *c, uint64_t caps, vault *ret)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    int r = cli_sandbox(c, &sb);

    if (r > 0)
        return r;
    r = vault_open(sb->registry, caps, ret, &err);
    return r < 0 ? cli_fail(c, r, &err) : 0;
}

/* Options shared by the subcommands: --json and --help anywhere. Returns -1 to go on. */
static int parse_common(cli *c, int argc, char **argv, const char *cmd, const char *extra_short,
                        const struct option *extra, int (*on_opt)(int o, const char *arg, void *ud),
                        void *ud)
{
    struct option opts[16];
    char shortopts[32];
    size_t n = 0;
    int o;

    opts[n++] = (struct option){"json", no_argument, NULL, 'j'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    for (const struct option *e = extra; e && e->name && n < 14; e++)
        opts[n++] = *e;
    opts[n] = (struct option){NULL, 0, NULL, 0};
    snprintf(shortopts, sizeof shortopts, "h%s", extra_short ? extra_short : "");
    while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) >= 0) {
        if (o == 'j')
            c->json = true;
        else if (o == 'h') {
            vault_help();
            return EXIT_OK;
        } else if (o == '?')
            return cli_usage_error(c, cmd, "unknown option");
        else if (on_opt) {
            int r = on_opt(o, optarg, ud);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}

static int status_cb(void *ud, const terok_vault_status *s)
{
    json_object **out = ud;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "locked",
                           json_object_new_boolean(s->flags & TEROK_VAULT_STATUS_LOCKED));
    json_object_object_add(o, "key_source",
                           s->key_source ? json_object_new_string(s->key_source) : NULL);
    json_object_object_add(o, "survives_reboot",
                           json_object_new_boolean(s->flags & TEROK_VAULT_STATUS_SURVIVES_REBOOT));
    json_object_object_add(o, "weak_key_source",
                           json_object_new_boolean(s->flags & TEROK_VAULT_STATUS_WEAK_KEY_SOURCE));
    json_object_object_add(o, "detail", s->detail ? json_object_new_string(s->detail) : NULL);
    json_object_object_add(o, "location", s->location ? json_object_new_string(s->location) : NULL);
    json_object_object_add(o, "entries", json_object_new_int64(s->entries));
    *out = o;
    return 0;
}

static int vault_cmd_status(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *o = NULL, *v;
    vault vt;
    int r = parse_common(c, argc, argv, "vault status", NULL, NULL, NULL, NULL);

    if (r >= 0)
        return r;
    r = open_vault(c, 0, &vt);
    if (r > 0)
        return r;
    r = vault_status(&vt, status_cb, &o, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    json_object_object_add(o, "backend", json_object_new_string(vt.plugin->name));
    if (c->json) {
        cli_json_print(o);
        return EXIT_OK;
    }
    printf("backend:    %s\n", vt.plugin->name);
    json_object_object_get_ex(o, "locked", &v);
    printf("state:      %s\n", json_object_get_boolean(v) ? "locked" : "unlocked");
    json_object_object_get_ex(o, "key_source", &v);
    printf("key source: %s", v ? json_object_get_string(v) : "-");
    json_object_object_get_ex(o, "survives_reboot", &v);
    printf(" (%s", json_object_get_boolean(v) ? "survives a reboot" : "gone after a reboot");
    json_object_object_get_ex(o, "weak_key_source", &v);
    printf("%s)\n", json_object_get_boolean(v) ? "; weaker: the key sits beside the data" : "");
    json_object_object_get_ex(o, "detail", &v);
    if (v)
        printf("            %s\n", json_object_get_string(v));
    json_object_object_get_ex(o, "location", &v);
    printf("location:   %s\n", v ? json_object_get_string(v) : "-");
    json_object_object_get_ex(o, "entries", &v);
    printf("entries:    %" PRId64 "\n", json_object_get_int64(v));
    json_object_put(o);
    return EXIT_OK;
}

static int unlock_opt(int o, const char *arg, void *ud)
{
    if (o == 'p')
        *(bool *)ud = true;
    return -1;
}

static int vault_cmd_unlock(cli *c, int argc, char **argv)
{
    static const struct option extra[] = {{"passphrase-stdin", no_argument, NULL, 'p'},
                                          {NULL, 0, NULL, 0}};
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *pass = NULL;
    bool from_stdin = false;
    vault vt;
    int r = parse_common(c, argc, argv, "vault unlock", NULL, extra, unlock_opt, &from_stdin);

    if (r >= 0)
        return r;
    r = open_vault(c, 0, &vt);
    if (r > 0)
        return r;
    if (!vault_has_cap(&vt, TEROK_VAULT_CAP_NEEDS_UNLOCK)) {
        if (!c->json)
            printf("vault backend '%s' needs no unlocking\n", vt.plugin->name);
        return EXIT_OK;
    }
    if (from_stdin || isatty(STDIN_FILENO)) {
        r = read_secret(c, "vault passphrase", false, &pass);
        if (r > 0)
            return r;
    }
    r = vault_unlock(&vt, pass, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!c->json)
        printf("vault unlocked\n");
    return EXIT_OK;
}

static int vault_cmd_lock(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    vault vt;
    int r = parse_common(c, argc, argv, "vault lock", NULL, NULL, NULL, NULL);

    if (r >= 0)
        return r;
    r = open_vault(c, 0, &vt);
    if (r > 0)
        return r;
    r = vault_lock(&vt, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!c->json)
        printf("vault locked\n");
    return EXIT_OK;
}

typedef struct add_opts {
    const char *type, *meta;
} add_opts;

static int add_opt(int o, const char *arg, void *ud)
{
    add_opts *a = ud;

    if (o == 't')
        a->type = arg;
    else if (o == 'm')
        a->meta = arg;
    return -1;
}

static int vault_cmd_add(cli *c, int argc, char **argv)
{
    static const struct option extra[] = {{"type", required_argument, NULL, 't'},
                                          {"meta", required_argument, NULL, 'm'},
                                          {NULL, 0, NULL, 0}};
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *value = NULL;
    add_opts a = {.type = "api-key"};
    json_object *meta = NULL;
    vault vt;
    int r = parse_common(c, argc, argv, "vault add", "t:m:", extra, add_opt, &a);

    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(c, "vault add",
                               "expected exactly one NAME (the value is read from standard "
                               "input, never from the command line)");
    const char *name = argv[optind];
    if (!vault_name_is_valid(name))
        return cli_usage_error(c, "vault add",
                               "invalid name '%s': use letters, digits, '.', '_' and '-', "
                               "starting with a letter or digit, at most 128",
                               name);
    if (a.meta) {
        meta = json_tokener_parse(a.meta);
        bool ok = meta && json_object_is_type(meta, json_type_object);
        json_object_put(meta);
        if (!ok)
            return cli_usage_error(c, "vault add", "--meta '%s' is not a JSON object", a.meta);
    }
    r = open_vault(c, TEROK_VAULT_CAP_WRITE, &vt);
    if (r > 0)
        return r;
    r = read_secret(c, "value", true, &value);
    if (r > 0)
        return r;
    r = vault_put(&vt, name, value, a.type, a.meta, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "stored", json_object_new_boolean(1));
        cli_json_print(o);
    } else
        printf("stored '%s'\n", name);
    return EXIT_OK;
}

static json_object *entry_json(const terok_vault_entry *e)
{
    json_object *o = json_object_new_object();
    json_object *meta = e->metadata ? json_tokener_parse(e->metadata) : NULL;

    json_object_object_add(o, "name", json_object_new_string(e->name));
    json_object_object_add(o, "type", e->type ? json_object_new_string(e->type) : NULL);
    json_object_object_add(o, "metadata", meta);
    json_object_object_add(o, "created_at", json_object_new_int64(e->created_at));
    json_object_object_add(o, "updated_at", json_object_new_int64(e->updated_at));
    return o;
}

static int list_cb(void *ud, const terok_vault_entry *e)
{
    json_object_array_add(ud, entry_json(e));
    return 0;
}

static int vault_cmd_list(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    vault vt;
    int r = parse_common(c, argc, argv, "vault list", NULL, NULL, NULL, NULL);

    if (r >= 0)
        return r;
    r = open_vault(c, 0, &vt);
    if (r > 0)
        return r;
    arr = json_object_new_array();
    r = vault_list(&vt, list_cb, arr, &err);
    if (r < 0) {
        json_object_put(arr);
        return cli_fail(c, r, &err);
    }
    if (c->json) {
        cli_json_print(arr);
        return EXIT_OK;
    }
    cli_table *t = cli_table_new(4, "NAME", "TYPE", "UPDATED", "METADATA");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *n, *ty, *u, *m;
        char when[32] = "-";
        json_object_object_get_ex(e, "name", &n);
        json_object_object_get_ex(e, "type", &ty);
        json_object_object_get_ex(e, "updated_at", &u);
        json_object_object_get_ex(e, "metadata", &m);
        time_t tt = (time_t)json_object_get_int64(u);
        struct tm tm;
        if (tt && gmtime_r(&tt, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        cli_table_add(t, json_object_get_string(n), ty ? json_object_get_string(ty) : NULL, when,
                      m ? json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN) : NULL);
    }
    cli_table_print(t);
    json_object_put(arr);
    return EXIT_OK;
}

static int vault_cmd_rm(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr = json_object_new_array();
    vault vt;
    int r = parse_common(c, argc, argv, "vault rm", NULL, NULL, NULL, NULL);

    if (r >= 0) {
        json_object_put(arr);
        return r;
    }
    if (optind >= argc) {
        json_object_put(arr);
        return cli_usage_error(c, "vault rm", "expected at least one NAME");
    }
    r = open_vault(c, TEROK_VAULT_CAP_WRITE, &vt);
    if (r > 0) {
        json_object_put(arr);
        return r;
    }
    for (int i = optind; i < argc; i++) {
        json_object *o = json_object_new_object();
        r = vault_remove(&vt, argv[i], &err);
        if (r < 0 && r != -ENOENT) {
            json_object_put(o);
            json_object_put(arr);
            return cli_fail(c, r, &err);
        }
        terok_error_clear(&err);
        json_object_object_add(o, "name", json_object_new_string(argv[i]));
        json_object_object_add(o, "removed", json_object_new_boolean(r >= 0));
        json_object_array_add(arr, o);
        if (!c->json)
            printf(r >= 0 ? "removed '%s'\n" : "'%s' was not there\n", argv[i]);
    }
    if (c->json)
        cli_json_print(arr);
    else
        json_object_put(arr);
    return EXIT_OK;
}

typedef struct find {
    const char *name;
    json_object *found;
} find;

static int find_cb(void *ud, const terok_vault_entry *e)
{
    find *f = ud;

    if (strcmp(e->name, f->name) == 0) {
        f->found = entry_json(e);
        return 1;
    }
    return 0;
}

static int vault_cmd_show_meta(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    find f = {0};
    vault vt;
    int r = parse_common(c, argc, argv, "vault show-meta", NULL, NULL, NULL, NULL);

    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(c, "vault show-meta", "expected exactly one NAME");
    f.name = argv[optind];
    r = open_vault(c, 0, &vt);
    if (r > 0)
        return r;
    r = vault_list(&vt, find_cb, &f, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!f.found)
        return cli_failf(c, EXIT_NOTFOUND, "no vault entry '%s'", f.name);
    if (c->json)
        cli_json_print(f.found);
    else {
        printf("%s\n", json_object_to_json_string_ext(f.found, JSON_C_TO_STRING_PRETTY |
                                                                   JSON_C_TO_STRING_SPACED));
        json_object_put(f.found);
    }
    return EXIT_OK;
}

int cmd_vault_serve(cli *c, int argc, char **argv);
int cmd_vault_tokens(cli *c, int argc, char **argv);
int cmd_vault_stop(cli *c, int argc, char **argv);
int cmd_vault_audit(cli *c, int argc, char **argv);

int cmd_vault(cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli *, int, char **);
    } sub[] = {
        {"status", vault_cmd_status},       {"unlock", vault_cmd_unlock},
        {"lock", vault_cmd_lock},           {"add", vault_cmd_add},
        {"list", vault_cmd_list},           {"rm", vault_cmd_rm},
        {"show-meta", vault_cmd_show_meta}, {"serve", cmd_vault_serve},
        {"stop", cmd_vault_stop},           {"tokens", cmd_vault_tokens},
        {"audit", cmd_vault_audit},
    };

    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        vault_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (streq(argv[1], "--json") && argc > 2) {
        c->json = true;
        argv++;
        argc--;
    }
    for (size_t i = 0; i < ELEMENTSOF(sub); i++)
        if (streq(argv[1], sub[i].name)) {
            optind = 0;
            return sub[i].run(c, argc - 1, argv + 1);
        }
    return cli_usage_error(c, "vault", "unknown command '%s'", argv[1]);
}
