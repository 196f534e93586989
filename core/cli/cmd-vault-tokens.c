/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-vault-tokens.c: `vault tokens list|revoke` (phantom tokens, shown masked: the token itself
 * is never stored) and `vault stop`. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "broker/vault-client.h"
#include "cli.h"
#include "tokens.h"

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
