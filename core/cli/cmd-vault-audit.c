/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-vault-audit.c: `vault audit`: the broker's audit rows from the state store (one per
 * request: container, route, method, path, status, outcome, bytes, duration). The rows hold
 * no token and no credential, so they are shown as stored. */
#include <getopt.h>
#include <sqlite3.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"

static void audit_help(void)
{
    printf("Usage: terok-sandbox vault audit [--container NAME] [--limit N] [--json]\n"
           "\n"
           "The broker's requests, oldest first: the last N (default 100) rows, of one\n"
           "container or of all. Never a token or a credential.\n");
}

static json_object *text_or_null(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);

    return s ? json_object_new_string((const char *)s) : NULL;
}

int cmd_vault_audit(cli *c, int argc, char **argv);
int cmd_vault_audit(cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"container", required_argument, NULL, 'c'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    _cleanup_error_ terok_error err = TEROK_ERROR_INIT;
    const char *container = NULL;
    int64_t limit = 100;
    sqlite3_stmt *st = NULL;
    json_object *arr;
    sandbox *sb;
    store *s;
    int o, r;

    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
        if (o == 'c')
            container = optarg;
        else if (o == 'n') {
            if (parse_int64(optarg, 1, 1000000, &limit) < 0)
                return cli_usage_error(c, "vault audit",
                                       "invalid --limit '%s': expected 1 to 1000000", optarg);
        } else if (o == 'j')
            c->json = true;
        else if (o == 'h') {
            audit_help();
            return EXIT_OK;
        } else
            return cli_usage_error(c, "vault audit", "unknown option");
    }
    if (optind != argc)
        return cli_usage_error(c, "vault audit", "unexpected argument '%s'", argv[optind]);
    if (container && !container_name_is_valid(container))
        return cli_usage_error(c, "vault audit", "invalid container name '%s'", container);
    r = cli_sandbox(c, &sb);
    if (r > 0)
        return r;
    r = sandbox_store(sb, &s, &err);
    if (r < 0)
        return cli_fail(c, r, &err);
    if (sqlite3_prepare_v2(store_sqlite(s),
                           "SELECT * FROM (SELECT id, at, container, target, method, path, status,"
                           " outcome, bytes_in, bytes_out, duration_us FROM audit"
                           " WHERE service = 'vault' AND (?1 IS NULL OR container = ?1)"
                           " ORDER BY id DESC LIMIT ?2) ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return cli_failf(c, EXIT_FAIL, "reading the audit: %s", sqlite3_errmsg(store_sqlite(s)));
    if (container)
        sqlite3_bind_text(st, 1, container, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    arr = json_object_new_array();
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        json_object *e = json_object_new_object();

        json_object_object_add(e, "id", json_object_new_int64(sqlite3_column_int64(st, 0)));
        json_object_object_add(e, "at", json_object_new_int64(sqlite3_column_int64(st, 1)));
        json_object_object_add(e, "container", text_or_null(st, 2));
        json_object_object_add(e, "route", text_or_null(st, 3));
        json_object_object_add(e, "method", text_or_null(st, 4));
        json_object_object_add(e, "path", text_or_null(st, 5));
        json_object_object_add(e, "status", json_object_new_int(sqlite3_column_int(st, 6)));
        json_object_object_add(e, "outcome", text_or_null(st, 7));
        json_object_object_add(e, "bytes_in", json_object_new_int64(sqlite3_column_int64(st, 8)));
        json_object_object_add(e, "bytes_out", json_object_new_int64(sqlite3_column_int64(st, 9)));
        json_object_object_add(e, "duration_us",
                               json_object_new_int64(sqlite3_column_int64(st, 10)));
        json_object_array_add(arr, e);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        json_object_put(arr);
        return cli_failf(c, EXIT_FAIL, "reading the audit: %s", sqlite3_errmsg(store_sqlite(s)));
    }
    if (c->json) {
        cli_json_print(arr);
        return EXIT_OK;
    }
    cli_table *t = cli_table_new(9, "TIME", "CONTAINER", "ROUTE", "METHOD", "PATH", "STATUS",
                                 "OUTCOME", "BYTES IN/OUT", "MS");
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v;
        char when[32] = "", status[16], bytes[48], ms[32];
        time_t at;
        struct tm tm;

        json_object_object_get_ex(e, "at", &v);
        at = (time_t)json_object_get_int64(v);
        if (localtime_r(&at, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        json_object_object_get_ex(e, "status", &v);
        snprintf(status, sizeof status, "%d", json_object_get_int(v));
        json_object_object_get_ex(e, "bytes_in", &v);
        int64_t in = json_object_get_int64(v);
        json_object_object_get_ex(e, "bytes_out", &v);
        snprintf(bytes, sizeof bytes, "%" PRId64 "/%" PRId64, in, json_object_get_int64(v));
        json_object_object_get_ex(e, "duration_us", &v);
        snprintf(ms, sizeof ms, "%.1f", (double)json_object_get_int64(v) / 1000.0);
        const char *f[4];
        const char *keys[] = {"container", "route", "method", "path"};
        for (int k = 0; k < 4; k++)
            f[k] =
                json_object_object_get_ex(e, keys[k], &v) && v ? json_object_get_string(v) : NULL;
        json_object_object_get_ex(e, "outcome", &v);
        cli_table_add(t, when, f[0], f[1], f[2], f[3], status, v ? json_object_get_string(v) : NULL,
                      bytes, ms);
    }
    cli_table_print(t);
    json_object_put(arr);
    return EXIT_OK;
}
