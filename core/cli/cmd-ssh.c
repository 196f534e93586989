/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-ssh.c: `terok-sandbox ssh add|import|export|pub|list|link|unlink|rm`: ed25519 keys kept in
 * the vault and linked to scopes; a container run with `--ssh-scope S` reaches the keys of S
 * only through the vault daemon's agent socket. A private key is read from a file or standard
 * input (never argv) and written only by `export`; listings never show one. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "sshkeys.h"
#include "util/strv.h"

static void ssh_help(void)
{
    printf("Usage: terok-sandbox ssh COMMAND [OPTIONS]\n"
           "\n"
           "SSH keys (ed25519) kept in the vault. A container run with '--ssh-scope SCOPE' gets\n"
           "SSH_AUTH_SOCK=/run/terok/ssh-agent.sock: an agent that lists and signs with the keys\n"
           "linked to SCOPE. The private key never enters the container.\n"
           "\n"
           "Commands:\n"
           "  add NAME [--comment C]        generate a key (nothing changes if NAME exists)\n"
           "  import NAME FILE|-            import an unencrypted OpenSSH ed25519 private key\n"
           "        [--comment C]           from FILE or standard input\n"
           "  export NAME [--force]         the private key in OpenSSH format on standard output\n"
           "                                (refused on a terminal unless --force)\n"
           "  pub NAME                      the public key line (as 'ssh-keygen -y' prints it)\n"
           "  list [--json]                 name, type, fingerprint, comment, scopes\n"
           "  link NAME SCOPE               offer the key to containers run with SCOPE\n"
           "  unlink NAME SCOPE             stop offering it there\n"
           "  rm NAME...                    remove keys and their links (absent is not an error)\n"
           "\n"
           "NAME: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 (a vault entry name).\n"
           "SCOPE: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64.\n"
           "Every command takes --json and --help.\n"
           "\n"
           "Exit status: 0 done, 1 failed, 2 bad command line, 4 no such key, 5 the vault\n"
           "backend could not be used.\n");
}

typedef struct ssh_opts {
    const char *comment;
    bool force;
} ssh_opts;

/* --json, --help, --comment, --force; returns -1 to go on, else an exit code. */
static int parse(cli *c, int argc, char **argv, const char *cmd, bool comment, bool force,
                 ssh_opts *o)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"comment", required_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "hc:f", opts, NULL)) >= 0) {
        switch (opt) {
        case 'j':
            c->json = true;
            break;
        case 'h':
            ssh_help();
            return EXIT_OK;
        case 'c':
            if (!comment)
                return cli_usage_error(c, cmd, "--comment does not apply here");
            if (!sshkey_comment_is_valid(optarg))
                return cli_usage_error(c, cmd,
                                       "invalid --comment: at most %d characters, no control "
                                       "characters",
                                       SSHKEY_COMMENT_MAX);
            o->comment = optarg;
            break;
        case 'f':
            if (!force)
                return cli_usage_error(c, cmd, "--force does not apply here");
            o->force = true;
            break;
        default:
            return cli_usage_error(c, cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    return -1;
}

static int check_name(cli *c, const char *cmd, const char *name)
{
    if (!vault_name_is_valid(name))
        return cli_usage_error(c, cmd,
                               "invalid key name '%s': use letters, digits, '.', '_' and '-', "
                               "starting with a letter or digit, at most 128",
                               name);
    return 0;
}

static int check_scope(cli *c, const char *cmd, const char *scope)
{
    if (!ssh_scope_is_valid(scope))
        return cli_usage_error(c, cmd,
                               "invalid scope '%s': use letters, digits, '.', '_' and '-', "
                               "starting with a letter or digit, at most %d",
                               scope, SSH_SCOPE_MAX);
    return 0;
}

static int open_all(cli *c, uint64_t caps, vault *ret_vault, sqlite3 **ret_db)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    store *st;
    int r = cli_sandbox(c, &sb);

    if (r > 0)
        return r;
    if (ret_vault) {
        r = vault_open(sb->registry, caps, ret_vault, &err);
        if (r < 0)
            return cli_fail(c, r, &err);
    }
    if (ret_db) {
        r = sandbox_store(sb, &st, &err);
        if (r >= 0)
            r = sshkeys_schema(store_sqlite(st), &err);
        if (r < 0)
            return cli_fail(c, r, &err);
        *ret_db = store_sqlite(st);
    }
    return 0;
}

static json_object *key_json(const sshkey_info *k, char **scopes)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    _cleanup_free_ char *line = sshkey_public_line(k->pk, k->comment);

    json_object_object_add(o, "name", json_object_new_string(k->name));
    json_object_object_add(o, "type", json_object_new_string(SSHKEY_TYPE));
    json_object_object_add(o, "fingerprint", json_object_new_string(k->fingerprint));
    json_object_object_add(o, "comment", json_object_new_string(strempty(k->comment)));
    json_object_object_add(o, "public_key", line ? json_object_new_string(line) : NULL);
    for (char **s = scopes; s && *s; s++)
        json_object_array_add(a, json_object_new_string(*s));
    json_object_object_add(o, "scopes", a);
    return o;
}

typedef struct found {
    bool found;
    uint8_t pk[SSHKEY_PK_BYTES];
    char fp[SSHKEY_FP_SIZE];
    char *comment;
    char *name;
} found;

static int found_cb(void *ud, const sshkey_info *k)
{
    found *f = ud;

    f->found = true;
    memcpy(f->pk, k->pk, sizeof f->pk);
    snprintf(f->fp, sizeof f->fp, "%s", k->fingerprint);
    f->comment = k->comment ? strdup(k->comment) : NULL;
    f->name = strdup(k->name);
    return 1;
}

static void found_done(found *f)
{
    free(f->comment);
    free(f->name);
}

/* Report a stored key: the public line on stdout, or JSON with `changed`. */
static int report(cli *c, sqlite3 *db, const uint8_t pk[SSHKEY_PK_BYTES], const char *name,
                  const char *comment, bool changed, const char *verb)
{
    char fp[SSHKEY_FP_SIZE];
    _cleanup_strv_free_ char **scopes = NULL;
    sshkey_info k = {.name = name, .comment = comment, .fingerprint = fp};

    memcpy(k.pk, pk, SSHKEY_PK_BYTES);
    sshkey_fingerprint(pk, fp);
    (void)sshkeys_scopes_of(db, name, &scopes, NULL);
    if (c->json) {
        json_object *o = key_json(&k, scopes);
        json_object_object_add(o, "changed", json_object_new_boolean(changed));
        cli_json_print(o);
    } else {
        _cleanup_free_ char *line = sshkey_public_line(pk, comment);
        fprintf(stderr, "%s '%s' (%s)\n", verb, name, fp);
        if (line)
            printf("%s\n", line);
    }
    return EXIT_OK;
}

static int ssh_cmd_add(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    ssh_opts o = {0};
    found f = {0};
    sshkey k = {0};
    sqlite3 *db;
    vault vt;
    int r = parse(c, argc, argv, "ssh add", true, false, &o);

    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(c, "ssh add", "expected exactly one NAME");
    const char *name = argv[optind];
    if ((r = check_name(c, "ssh add", name)) > 0)
        return r;
    r = open_all(c, TEROK_VAULT_CAP_WRITE, &vt, &db);
    if (r > 0)
        return r;
    r = sshkeys_find(&vt, name, found_cb, &f, &err);
    if (r >= 0) {
        r = report(c, db, f.pk, name, f.comment, false, "SSH key exists, unchanged:");
        found_done(&f);
        return r;
    }
    if (r != -ENOENT)
        return cli_fail(c, r == -EMEDIUMTYPE ? -EEXIST : r, &err);
    terok_error_clear(&err);
    r = sshkey_generate(o.comment ? o.comment : name, &k, &err);
    if (r >= 0)
        r = sshkeys_put(&vt, name, &k, &err);
    if (r < 0) {
        sshkey_done(&k);
        return cli_fail(c, r, &err);
    }
    r = report(c, db, k.pk, name, k.comment, true, "generated SSH key");
    sshkey_done(&k);
    return r;
}

/* The whole file (or stdin) in a wiped buffer; at most SSHKEY_FILE_MAX + 1 bytes are read. */
static int read_key_file(cli *c, const char *path, terok_secret **ret)
{
    _cleanup_close_ int fd = -EBADF;
    size_t cap = SSHKEY_FILE_MAX + 1, n = 0;
    char *buf;
    ssize_t k;
    struct stat st;
    int r;

    if (streq(path, "-"))
        fd = dup(STDIN_FILENO);
    else
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cli_failf(c, errno == ENOENT ? EXIT_NOTFOUND : EXIT_FAIL, "cannot open '%s': %s",
                         path, strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_failf(c, EXIT_FAIL, "'%s' is a directory, not a key file", path);
    buf = malloc(cap);
    if (!buf)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    while (n < cap && (k = read(fd, buf + n, cap - n)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            explicit_bzero(buf, cap);
            free(buf);
            return cli_failf(c, EXIT_FAIL, "cannot read '%s': %s", path, strerror(e));
        }
        n += (size_t)k;
    }
    r = terok_secret_new(buf, n, ret);
    explicit_bzero(buf, cap);
    free(buf);
    return r < 0 ? cli_failf(c, EXIT_FAIL, "out of memory") : 0;
}

static int ssh_cmd_import(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *text = NULL;
    _cleanup_free_ char *what = NULL;
    ssh_opts o = {0};
    found f = {0};
    sshkey k = {0};
    const void *p;
    size_t n;
    sqlite3 *db;
    vault vt;
    int r = parse(c, argc, argv, "ssh import", true, false, &o);

    if (r >= 0)
        return r;
    if (optind + 2 != argc)
        return cli_usage_error(c, "ssh import",
                               "expected NAME and FILE (or '-' for standard input); the key is "
                               "never taken from the command line");
    const char *name = argv[optind], *path = argv[optind + 1];
    if ((r = check_name(c, "ssh import", name)) > 0)
        return r;
    r = read_key_file(c, path, &text);
    if (r > 0)
        return r;
    if (streq(path, "-"))
        what = strdup("standard input");
    else if (asprintf(&what, "'%s'", path) < 0)
        what = NULL;
    if (!what)
        return cli_failf(c, EXIT_FAIL, "out of memory");
    terok_secret_peek(text, &p, &n);
    r = sshkey_parse_private(p, n, what, &k, &err);
    if (r < 0) /* a bad file, whatever the code: not a backend problem */
        return cli_failf(c, EXIT_FAIL, "%s", terok_error_message(&err));
    if (o.comment) {
        free(k.comment);
        k.comment = strdup(o.comment);
    }
    r = open_all(c, TEROK_VAULT_CAP_WRITE, &vt, &db);
    if (r > 0) {
        sshkey_done(&k);
        return r;
    }
    r = sshkeys_find(&vt, name, found_cb, &f, &err);
    if (r >= 0) {
        bool same = memcmp(f.pk, k.pk, SSHKEY_PK_BYTES) == 0;
        if (!same) {
            found_done(&f);
            sshkey_done(&k);
            return cli_failf(c, EXIT_FAIL,
                             "SSH key '%s' exists and is a different key (%s); remove it first "
                             "with 'terok-sandbox ssh rm %s'",
                             name, f.fp, name);
        }
        if (!o.comment) {
            r = report(c, db, k.pk, name, f.comment, false, "SSH key exists, unchanged:");
            found_done(&f);
            sshkey_done(&k);
            return r;
        }
        found_done(&f);
    } else if (r != -ENOENT) {
        sshkey_done(&k);
        return cli_fail(c, r == -EMEDIUMTYPE ? -EEXIST : r, &err);
    }
    terok_error_clear(&err);
    r = sshkeys_put(&vt, name, &k, &err);
    if (r < 0) {
        sshkey_done(&k);
        return cli_fail(c, r, &err);
    }
    r = report(c, db, k.pk, name, k.comment, true, "imported SSH key");
    sshkey_done(&k);
    return r;
}

static int ssh_cmd_export(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    _cleanup_secret_ terok_secret *text = NULL;
    ssh_opts o = {0};
    sshkey k = {0};
    const void *p;
    size_t n, off = 0;
    vault vt;
    int r = parse(c, argc, argv, "ssh export", false, true, &o);

    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(c, "ssh export", "expected exactly one NAME");
    const char *name = argv[optind];
    if ((r = check_name(c, "ssh export", name)) > 0)
        return r;
    if (isatty(STDOUT_FILENO) && !o.force)
        return cli_failf(c, EXIT_USAGE,
                         "refusing to print the private key of '%s' on a terminal; redirect "
                         "standard output to a file, or pass --force",
                         name);
    r = open_all(c, 0, &vt, NULL);
    if (r > 0)
        return r;
    r = sshkeys_load(&vt, name, &k, &err);
    if (r >= 0)
        r = sshkey_format_private(&k, &text, &err);
    sshkey_done(&k);
    if (r < 0)
        return cli_fail(c, r, &err);
    fprintf(stderr,
            "terok-sandbox: warning: writing the private key of '%s' to standard output; keep "
            "the file 0600 and delete it when done\n",
            name);
    terok_secret_peek(text, &p, &n);
    while (off < n) {
        ssize_t w = write(STDOUT_FILENO, (const char *)p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return cli_failf(c, EXIT_FAIL, "cannot write the key: %s", strerror(errno));
        off += (size_t)w;
    }
    return EXIT_OK;
}

static int ssh_cmd_pub(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    ssh_opts o = {0};
    found f = {0};
    sqlite3 *db;
    vault vt;
    int r = parse(c, argc, argv, "ssh pub", false, false, &o);

    if (r >= 0)
        return r;
    if (optind + 1 != argc)
        return cli_usage_error(c, "ssh pub", "expected exactly one NAME");
    const char *name = argv[optind];
    if ((r = check_name(c, "ssh pub", name)) > 0)
        return r;
    r = open_all(c, 0, &vt, &db);
    if (r > 0)
        return r;
    r = sshkeys_find(&vt, name, found_cb, &f, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json)
        r = report(c, db, f.pk, name, f.comment, false, "");
    else {
        _cleanup_free_ char *line = sshkey_public_line(f.pk, f.comment);
        printf("%s\n", strempty(line));
        r = EXIT_OK;
    }
    found_done(&f);
    return r;
}

typedef struct list_acc {
    json_object *arr;
    sqlite3 *db;
} list_acc;

static int list_cb(void *ud, const sshkey_info *k)
{
    list_acc *a = ud;
    _cleanup_strv_free_ char **scopes = NULL;

    (void)sshkeys_scopes_of(a->db, k->name, &scopes, NULL);
    json_object_array_add(a->arr, key_json(k, scopes));
    return 0;
}

static int ssh_cmd_list(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    ssh_opts o = {0};
    list_acc a = {0};
    vault vt;
    int r = parse(c, argc, argv, "ssh list", false, false, &o);

    if (r >= 0)
        return r;
    if (optind != argc)
        return cli_usage_error(c, "ssh list", "unexpected argument '%s'", argv[optind]);
    r = open_all(c, 0, &vt, &a.db);
    if (r > 0)
        return r;
    a.arr = json_object_new_array();
    r = sshkeys_list(&vt, list_cb, &a, &err);
    if (r < 0) {
        json_object_put(a.arr);
        return cli_fail(c, r, &err);
    }
    if (c->json) {
        cli_json_print(a.arr);
        return EXIT_OK;
    }
    cli_table *t = cli_table_new(5, "NAME", "TYPE", "FINGERPRINT", "COMMENT", "SCOPES");
    for (size_t i = 0; i < json_object_array_length(a.arr); i++) {
        json_object *e = json_object_array_get_idx(a.arr, i), *nm, *ty, *fp, *cm, *sc;
        _cleanup_strv_free_ char **scopes = NULL;
        _cleanup_free_ char *joined = NULL;
        json_object_object_get_ex(e, "name", &nm);
        json_object_object_get_ex(e, "type", &ty);
        json_object_object_get_ex(e, "fingerprint", &fp);
        json_object_object_get_ex(e, "comment", &cm);
        json_object_object_get_ex(e, "scopes", &sc);
        for (size_t j = 0; j < json_object_array_length(sc); j++)
            (void)strv_extend(&scopes, json_object_get_string(json_object_array_get_idx(sc, j)));
        joined = scopes ? strv_join((const char *const *)scopes, ",") : NULL;
        cli_table_add(t, json_object_get_string(nm), json_object_get_string(ty),
                      json_object_get_string(fp),
                      *json_object_get_string(cm) ? json_object_get_string(cm) : NULL, joined);
    }
    cli_table_print(t);
    json_object_put(a.arr);
    return EXIT_OK;
}

static int link_or_unlink(cli *c, int argc, char **argv, bool link)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *cmd = link ? "ssh link" : "ssh unlink";
    ssh_opts o = {0};
    found f = {0};
    sqlite3 *db;
    vault vt;
    int r = parse(c, argc, argv, cmd, false, false, &o);

    if (r >= 0)
        return r;
    if (optind + 2 != argc)
        return cli_usage_error(c, cmd, "expected NAME and SCOPE");
    const char *name = argv[optind], *scope = argv[optind + 1];
    if ((r = check_name(c, cmd, name)) > 0 || (r = check_scope(c, cmd, scope)) > 0)
        return r;
    r = open_all(c, 0, link ? &vt : NULL, &db);
    if (r > 0)
        return r;
    if (link) {
        r = sshkeys_find(&vt, name, found_cb, &f, &err);
        found_done(&f);
        if (r < 0)
            return cli_fail(c, r, &err);
        r = sshkeys_link(db, scope, name, &err);
    } else
        r = sshkeys_unlink(db, scope, name, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (c->json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "name", json_object_new_string(name));
        json_object_object_add(j, "scope", json_object_new_string(scope));
        json_object_object_add(j, "changed", json_object_new_boolean(r > 0));
        cli_json_print(j);
    } else if (link)
        printf(r > 0 ? "linked '%s' to scope '%s'\n" : "'%s' was already linked to scope '%s'\n",
               name, scope);
    else
        printf(r > 0 ? "unlinked '%s' from scope '%s'\n" : "'%s' was not linked to scope '%s'\n",
               name, scope);
    return EXIT_OK;
}

static int ssh_cmd_link(cli *c, int argc, char **argv)
{
    return link_or_unlink(c, argc, argv, true);
}

static int ssh_cmd_unlink(cli *c, int argc, char **argv)
{
    return link_or_unlink(c, argc, argv, false);
}

static int ssh_cmd_rm(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    json_object *arr;
    ssh_opts o = {0};
    sqlite3 *db;
    vault vt;
    int r = parse(c, argc, argv, "ssh rm", false, false, &o);

    if (r >= 0)
        return r;
    if (optind >= argc)
        return cli_usage_error(c, "ssh rm", "expected at least one NAME");
    for (int i = optind; i < argc; i++)
        if ((r = check_name(c, "ssh rm", argv[i])) > 0)
            return r;
    r = open_all(c, TEROK_VAULT_CAP_WRITE, &vt, &db);
    if (r > 0)
        return r;
    arr = json_object_new_array();
    for (int i = optind; i < argc; i++) {
        found f = {0};
        bool removed = false;
        json_object *j;

        r = sshkeys_find(&vt, argv[i], found_cb, &f, &err);
        found_done(&f);
        if (r >= 0) {
            r = vault_remove(&vt, argv[i], &err);
            removed = r >= 0;
        }
        if (r < 0 && r != -ENOENT) {
            json_object_put(arr);
            return cli_fail(c, r, &err);
        }
        terok_error_clear(&err);
        /* links go too (also dangling ones of a key removed with 'vault rm') */
        r = sshkeys_unlink_all(db, argv[i], &err);
        if (r < 0) {
            json_object_put(arr);
            return cli_fail(c, r, &err);
        }
        j = json_object_new_object();
        json_object_object_add(j, "name", json_object_new_string(argv[i]));
        json_object_object_add(j, "removed", json_object_new_boolean(removed));
        json_object_array_add(arr, j);
        if (!c->json)
            printf(removed ? "removed SSH key '%s'\n" : "SSH key '%s' was not there\n", argv[i]);
    }
    if (c->json)
        cli_json_print(arr);
    else
        json_object_put(arr);
    return EXIT_OK;
}

int cmd_ssh(cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli *, int, char **);
    } sub[] = {
        {"add", ssh_cmd_add},       {"import", ssh_cmd_import}, {"export", ssh_cmd_export},
        {"pub", ssh_cmd_pub},       {"list", ssh_cmd_list},     {"link", ssh_cmd_link},
        {"unlink", ssh_cmd_unlink}, {"rm", ssh_cmd_rm},
    };

    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
        ssh_help();
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
    return cli_usage_error(c, "ssh", "unknown command '%s'", argv[1]);
}
