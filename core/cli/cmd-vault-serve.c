/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-vault-serve.c: `terok-sandbox vault serve` (the broker daemon) and `vault tokens
 * list|revoke` (phantom tokens, shown masked: the token itself is never stored). */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "broker/vault-client.h"
#include "broker/vault-daemon.h"
#include "cli.h"
#include "log.h"
#include "tokens.h"
#include "util/strv.h"

#define MAX_TCP 8

static void serve_help(void)
{
    printf("Usage: terok-sandbox vault serve [OPTIONS]\n"
           "\n"
           "Run the phantom-token broker. Containers reach it on their own socket\n"
           "(<runtime>/containers/<name>/vault.sock, /run/terok/vault.sock inside); a request\n"
           "/<route>/<path> is forwarded to the route's upstream with the real credential\n"
           "in place of the container's phantom token. `run` starts the daemon on demand.\n"
           "\n"
           "Options:\n"
           "      --foreground               stay in the foreground (default: detach once\n"
           "                                 ready and print the daemon's pid)\n"
           "      --tcp ADDR:PORT=CONTAINER  also listen on a loopback TCP port, every request\n"
           "                                 on it counting as CONTAINER (tests, benchmarks)\n"
           "      --ca-file FILE             extra CA bundle for upstream TLS\n"
           "  -h, --help                     show this help\n");
}

static int parse_tcp(const char *s, vault_tcp_listener *ret, char **owned)
{
    char *copy = strdup(s), *colon, *eq;
    int64_t port;

    if (!copy)
        return -ENOMEM;
    colon = strrchr(copy, ':');
    eq = colon ? strchr(colon, '=') : NULL;
    if (!colon || !eq || colon == copy) {
        free(copy);
        return -EINVAL;
    }
    *colon = 0;
    *eq = 0;
    if (parse_int64(colon + 1, 0, 65535, &port) < 0 || !container_name_is_valid(eq + 1) ||
        strcmp(copy, "127.0.0.1") != 0) {
        free(copy);
        return -EINVAL;
    }
    *ret = (vault_tcp_listener){copy, (uint16_t)port, eq + 1};
    *owned = copy;
    return 0;
}

typedef struct ready_pipe {
    int fd;
} ready_pipe;

static void on_ready(void *ud)
{
    ready_pipe *p = ud;
    char b = 1;

    if (p->fd >= 0) {
        (void)!write(p->fd, &b, 1);
        close(p->fd);
        p->fd = -1;
    }
}

int cmd_vault_serve(cli *c, int argc, char **argv);
int cmd_vault_serve(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"tcp", required_argument, NULL, 't'},
        {"ca-file", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    vault_tcp_listener tcp[MAX_TCP];
    char *owned[MAX_TCP] = {NULL};
    vault_daemon_opts o = {.tcp = tcp};
    bool foreground = false;
    ready_pipe rp = {-1};
    sandbox *sb;
    int opt, r;

    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        switch (opt) {
        case 'f':
            foreground = true;
            break;
        case 't':
            if (o.n_tcp >= MAX_TCP)
                return cli_usage_error(c, "vault serve", "at most %d --tcp listeners", MAX_TCP);
            if (parse_tcp(optarg, &tcp[o.n_tcp], &owned[o.n_tcp]) < 0)
                return cli_usage_error(c, "vault serve",
                                       "invalid --tcp '%s': expected 127.0.0.1:PORT=CONTAINER",
                                       optarg);
            o.n_tcp++;
            break;
        case 'a':
            o.ca_file = optarg;
            break;
        case 'h':
            serve_help();
            return EXIT_OK;
        default:
            return cli_usage_error(c, "vault serve", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error(c, "vault serve", "unexpected argument '%s'", argv[optind]);

    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    if (vault_client_ping(sb, NULL) == 0)
        return cli_failf(c, EXIT_FAIL, "a vault daemon already serves '%s'", sb->paths.runtime_dir);

    if (!foreground) {
        int p[2];
        pid_t pid;
        char b = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
            return cli_failf(c, EXIT_FAIL, "pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
            return cli_failf(c, EXIT_FAIL, "fork: %s", strerror(errno));
        if (pid > 0) {
            close(p[1]);
            ssize_t k = read(p[0], &b, 1);
            close(p[0]);
            if (k != 1)
                return cli_failf(c, EXIT_FAIL, "the vault daemon failed to start");
            if (c->json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "pid", json_object_new_int(pid));
                cli_json_print(j);
            } else
                printf("vault daemon running (pid %d)\n", (int)pid);
            return EXIT_OK;
        }
        close(p[0]);
        rp.fd = p[1];
        (void)setsid();
    }
    o.ready = on_ready;
    o.ready_userdata = &rp;
    /* The broker holds credentials in memory: no core dumps, not ptrace-able by same-uid peers
     * (main() already did this for every command). */
    r = vault_daemon_run(sb, &o, &err);
    for (size_t i = 0; i < o.n_tcp; i++)
        free(owned[i]);
    if (r < 0)
        return cli_fail(c, r, &err);
    return EXIT_OK;
}

/* ---- tokens ---- */

static void tokens_help(void)
{
    printf("Usage: terok-sandbox vault tokens list [--container NAME] [--json]\n"
           "       terok-sandbox vault tokens revoke ID... | --container NAME\n"
           "\n"
           "Phantom tokens are stored only as keyed hashes: a listing shows a handle derived\n"
           "from the hash, the container and route it is bound to, and its expiry.\n");
}

typedef struct list_ctx {
    json_object *arr;
} list_ctx;

static int token_cb(void *ud, const token_info *i, int kind, const char *masked, int64_t created)
{
    list_ctx *l = ud;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64(i->id));
    json_object_object_add(o, "kind",
                           json_object_new_string(kind == TOKEN_KIND_GATE ? "gate" : "phantom"));
    json_object_object_add(o, "token", json_object_new_string(masked));
    json_object_object_add(o, "container", json_object_new_string(i->container));
    json_object_object_add(o, "target", json_object_new_string(i->target));
    json_object_object_add(o, "expires_at",
                           i->expires_at ? json_object_new_int64(i->expires_at) : NULL);
    json_object_object_add(o, "created_at", json_object_new_int64(created));
    json_object_array_add(l->arr, o);
    return 0;
}

int cmd_vault_tokens(cli *c, int argc, char **argv);
int cmd_vault_tokens(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"container", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *container = NULL, *sub;
    sandbox *sb;
    store *st;
    int o, r;

    if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
        tokens_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    sub = argv[1];
    argv++;
    argc--;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        if (o == 'c')
            container = optarg;
        else if (o == 'j')
            c->json = true;
        else if (o == 'h') {
            tokens_help();
            return EXIT_OK;
        } else
            return cli_usage_error(c, "vault tokens", "unknown option");
    }
    if (container && !container_name_is_valid(container))
        return cli_usage_error(c, "vault tokens", "invalid container name '%s'", container);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = sandbox_store(sb, &st, &err);
    if (r < 0)
        return cli_fail(c, r, &err);

    if (streq(sub, "list")) {
        list_ctx l = {json_object_new_array()};

        if (optind != argc)
            return cli_usage_error(c, "vault tokens list", "unexpected '%s'", argv[optind]);
        r = tokens_list(store_sqlite(st), container, token_cb, &l, &err);
        if (r < 0) {
            json_object_put(l.arr);
            return cli_fail(c, r, &err);
        }
        if (c->json) {
            cli_json_print(l.arr);
            return EXIT_OK;
        }
        cli_table *t = cli_table_new(6, "ID", "KIND", "TOKEN", "CONTAINER", "TARGET", "EXPIRES");
        for (size_t i = 0; i < json_object_array_length(l.arr); i++) {
            json_object *e = json_object_array_get_idx(l.arr, i), *v[6];
            const char *keys[] = {"id", "kind", "token", "container", "target", "expires_at"};
            for (int k = 0; k < 6; k++)
                json_object_object_get_ex(e, keys[k], &v[k]);
            cli_table_add(t, json_object_get_string(v[0]), json_object_get_string(v[1]),
                          json_object_get_string(v[2]), json_object_get_string(v[3]),
                          json_object_get_string(v[4]),
                          v[5] ? json_object_get_string(v[5]) : "never");
        }
        cli_table_print(t);
        json_object_put(l.arr);
        return EXIT_OK;
    }
    if (streq(sub, "revoke")) {
        int total = 0;

        if (container && optind != argc)
            return cli_usage_error(c, "vault tokens revoke", "give IDs or --container, not both");
        if (!container && optind == argc)
            return cli_usage_error(c, "vault tokens revoke", "expected ID... or --container");
        if (container) {
            r = tokens_revoke_container(store_sqlite(st), container, 0, &err);
            if (r < 0)
                return cli_fail(c, r, &err);
            total = r;
        }
        for (int i = optind; i < argc; i++) {
            int64_t id;
            if (parse_int64(argv[i], 1, INT64_MAX, &id) < 0)
                return cli_usage_error(c, "vault tokens revoke", "invalid token id '%s'", argv[i]);
            r = tokens_revoke_id(store_sqlite(st), id, &err);
            if (r < 0)
                return cli_fail(c, r, &err);
            total += r;
        }
        if (c->json) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "revoked", json_object_new_int(total));
            cli_json_print(j);
        } else
            printf("revoked %d token(s)\n", total);
        return EXIT_OK;
    }
    return cli_usage_error(c, "vault tokens", "unknown command '%s'", sub);
}

int cmd_vault_stop(cli *c, int argc, char **argv);
int cmd_vault_stop(cli *c, int argc, char **argv)
{
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    sandbox *sb;
    int r;

    if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
        printf("Usage: terok-sandbox vault stop\n\nStop the vault daemon of this state dir (no "
               "daemon running is not an error).\n");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage_error(c, "vault stop", "unexpected argument '%s'", argv[1]);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = vault_client_stop(sb, &err);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        if (!c->json)
            printf("no vault daemon running\n");
        return EXIT_OK;
    }
    if (r < 0)
        return cli_fail(c, r, &err);
    if (!c->json)
        printf("vault daemon stopped\n");
    return EXIT_OK;
}
